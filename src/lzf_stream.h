/* lzf_stream.h - a streaming LZF decompressor, for strings too big to hold.
 *
 * liblzf's lzf_decompress needs the whole compressed input and the whole
 * output in memory. An RDB string of hundreds of megabytes must pass through
 * a small buffer instead, so this decoder keeps only LZF's 8 KiB back-reference
 * window plus one output piece. The RDB decoder uses liblzf for strings that
 * fit its budget and this for the rest.
 *
 * Output comes in pieces of exactly `piece` bytes (the last one shorter), so
 * the pieces do not depend on how the input was split.
 */
#ifndef RS_LZF_STREAM_H
#define RS_LZF_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define LZF_STREAM_WINDOW 8192 /* the farthest an LZF back-reference reaches */

enum {
    LZF_STREAM_NEED_INPUT = 0, /* all input used; feed more */
    LZF_STREAM_PIECE = 1,      /* a piece is ready: take it with lzf_stream_take */
    LZF_STREAM_DONE = 2,       /* all `expected` bytes produced; take the last piece */
    LZF_STREAM_BAD = -1,       /* corrupt input; why says what */
};

struct lzf_stream {
    uint8_t *buf;      /* [window kept for back-references][pending output] */
    size_t cap;        /* LZF_STREAM_WINDOW + piece */
    size_t piece;      /* output piece size */
    size_t hist;       /* bytes of buf before the pending output */
    size_t len;        /* bytes used in buf */
    uint64_t produced; /* output bytes so far */
    uint64_t expected; /* output bytes the stream must produce */
    int state;         /* what the next input byte is */
    unsigned lit_left; /* literal bytes still to copy */
    unsigned ref_len;  /* back-reference length being read */
    unsigned ref_hi;   /* high bits of the back-reference offset */
    int taken;         /* the pending piece was handed out */
    const char *why;
};

/* Prepares s to produce `expected` bytes in pieces of `piece` bytes. Returns 0
 * or -ENOMEM. */
int lzf_stream_init(struct lzf_stream *s, uint64_t expected, size_t piece);
void lzf_stream_deinit(struct lzf_stream *s);

/* Decodes from in[0..len), setting *used. Stops as soon as a piece is ready. */
int lzf_stream_run(struct lzf_stream *s, const uint8_t *in, size_t len, size_t *used);

/* The ready piece (valid until the next call); then makes room for the next. */
void lzf_stream_take(struct lzf_stream *s, const uint8_t **p, size_t *n);

#endif
