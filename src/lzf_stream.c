/* lzf_stream.c - streaming LZF decompression (see lzf_stream.h).
 *
 * The LZF format, as liblzf writes it: a control byte c.
 *   c < 32:  a literal run of c + 1 bytes follows;
 *   c >= 32: a back-reference: length c >> 5 (7 means "add the next byte"),
 *            plus 2; offset ((c & 31) << 8) + next byte + 1 back from the end.
 */
#include "lzf_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { ST_CTRL, ST_LITERAL, ST_REF_LEN, ST_REF_OFF };

static void slide(struct lzf_stream *s);

int lzf_stream_init(struct lzf_stream *s, uint64_t expected, size_t piece)
{
    memset(s, 0, sizeof(*s));
    s->piece = piece;
    s->cap = LZF_STREAM_WINDOW + piece;
    s->buf = malloc(s->cap);
    if (s->buf == NULL)
        return -ENOMEM;
    s->expected = expected;
    s->state = ST_CTRL;
    return 0;
}

void lzf_stream_deinit(struct lzf_stream *s)
{
    free(s->buf);
    s->buf = NULL;
}

static int ready(const struct lzf_stream *s)
{
    if (s->produced == s->expected)
        return LZF_STREAM_DONE;
    return s->len - s->hist == s->piece ? LZF_STREAM_PIECE : LZF_STREAM_NEED_INPUT;
}

int lzf_stream_run(struct lzf_stream *s, const uint8_t *in, size_t len, size_t *used)
{
    size_t i = 0;
    int r;
    if (s->taken)
        slide(s);
    while ((r = ready(s)) == LZF_STREAM_NEED_INPUT) {
        size_t room = s->piece - (s->len - s->hist);
        uint64_t left = s->expected - s->produced;
        if (room > left)
            room = (size_t)left;
        if (s->state == ST_LITERAL) {
            if (i == len)
                break;
            size_t n = s->lit_left;
            if (n > len - i)
                n = len - i;
            if (n > room)
                n = room;
            memcpy(s->buf + s->len, in + i, n);
            s->len += n;
            s->produced += n;
            i += n;
            s->lit_left -= (unsigned)n;
            if (s->lit_left == 0)
                s->state = ST_CTRL;
            continue;
        }
        if (s->state == ST_CTRL && s->ref_len != 0) {
            /* copying a back-reference: needs no input */
            size_t off = s->ref_hi;
            size_t n = s->ref_len < room ? s->ref_len : room;
            if (off > s->len) {
                s->why = "back-reference before the start of the output";
                *used = i;
                return LZF_STREAM_BAD;
            }
            uint8_t *dst = s->buf + s->len;
            const uint8_t *src = dst - off;
            for (size_t k = 0; k < n; k++) /* overlapping copies repeat bytes */
                dst[k] = src[k];
            s->len += n;
            s->produced += n;
            s->ref_len -= (unsigned)n;
            continue;
        }
        if (i == len)
            break;
        uint8_t c = in[i++];
        switch (s->state) {
        case ST_CTRL:
            if (c < 32) {
                s->lit_left = c + 1u;
                if (s->lit_left > left) {
                    s->why = "literal run past the declared length";
                    *used = i;
                    return LZF_STREAM_BAD;
                }
                s->state = ST_LITERAL;
            } else {
                s->ref_len = c >> 5;
                s->ref_hi = (unsigned)(c & 31) << 8;
                s->state = s->ref_len == 7 ? ST_REF_LEN : ST_REF_OFF;
            }
            break;
        case ST_REF_LEN:
            s->ref_len += c;
            s->state = ST_REF_OFF;
            break;
        case ST_REF_OFF: {
            size_t off = s->ref_hi + c + 1u;
            s->ref_len += 2;
            if (s->ref_len > left) {
                s->why = "back-reference past the declared length";
                *used = i;
                return LZF_STREAM_BAD;
            }
            if (off > s->produced) {
                s->why = "back-reference before the start of the output";
                *used = i;
                return LZF_STREAM_BAD;
            }
            s->ref_hi = (unsigned)off; /* now the distance back */
            s->state = ST_CTRL;        /* with ref_len != 0: copy first */
            break;
        }
        }
    }
    *used = i;
    return r;
}

void lzf_stream_take(struct lzf_stream *s, const uint8_t **p, size_t *n)
{
    *p = s->buf + s->hist;
    *n = s->len - s->hist;
    s->taken = 1; /* the window moves at the next run, once the caller is done */
}

/* Drops taken output, keeping the last LZF_STREAM_WINDOW bytes for back-references. */
static void slide(struct lzf_stream *s)
{
    size_t keep = s->len < LZF_STREAM_WINDOW ? s->len : LZF_STREAM_WINDOW;
    memmove(s->buf, s->buf + s->len - keep, keep);
    s->len = keep;
    s->hist = keep;
    s->taken = 0;
}
