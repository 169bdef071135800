/* reply_reader.h - counts the replies a destination sends, and catches errors.
 *
 * A resumable scanner of RESP2 replies (+, -, :, $, *, nested arrays) fed in
 * pieces of any size. It does not build reply objects: for each complete
 * top-level reply it calls back with whether it is an error and, for errors
 * and simple strings, the line's first bytes. Replies to our writes are
 * "+OK", ":1" and the like, so this costs a few nanoseconds a reply.
 */
#ifndef RS_REPLY_READER_H
#define RS_REPLY_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLY_READER_LINE_MAX 256 /* bytes of an error line kept for the message */
#define REPLY_READER_DEPTH    8   /* nested arrays */

struct reply_reader {
    int state;
    int depth;
    int64_t left[REPLY_READER_DEPTH]; /* elements still to read at each array level */
    uint64_t bulk_left;               /* bulk bytes (and CRLF) still to skip */
    char type;                        /* the current line's type byte */
    bool top_is_error;                /* the top-level reply being read is an error */
    size_t line_len;
    char line[REPLY_READER_LINE_MAX];
    char top_line[REPLY_READER_LINE_MAX];
    size_t top_line_len;
    int64_t top_count;     /* elements of the top-level array being read (EXEC's reply) */
    int64_t error_element; /* the first element of it that is an error, or -1 */
};

/* Called once per complete top-level reply. line holds an error's (or a
 * simple string's) text without the type byte, truncated to
 * REPLY_READER_LINE_MAX; empty for other replies. An array with an error
 * among its elements (EXEC's reply when a queued command failed) is an error
 * too: then line is that element's text, and rr->error_element its index and
 * rr->top_count the array's length. Return 0 to go on. */
typedef int (*reply_fn)(void *ctx, bool is_error, const char *line, size_t len);

void reply_reader_init(struct reply_reader *rr);

/* Scans p[0..n). Returns 0, the callback's non-zero return, or -1 when the
 * bytes are not RESP (then the connection is unusable). */
int reply_reader_feed(struct reply_reader *rr, const char *p, size_t n, reply_fn fn, void *ctx);

#endif
