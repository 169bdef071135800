/* rs_error.h - how ringsync reports bad input and broken invariants.
 *
 * Three kinds of failure, three mechanisms (../shared/STYLE.md):
 *  1. a broken invariant: RS_ASSERT aborts with the condition and file:line;
 *  2. a failing syscall or peer: a negative errno return;
 *  3. bad input: a negative return and a struct rs_error that says where
 *     (offset, phase, key), what was seen (escaped bytes) and what was expected.
 */
#ifndef RS_ERROR_H
#define RS_ERROR_H

#include <stddef.h>
#include <stdint.h>

/* Return codes of the push-driven parsers. */
enum {
    RS_OK = 0,   /* progress made; feed more when you have it */
    RS_DONE = 1, /* the input is complete (e.g. RDB EOF opcode and checksum seen) */
    RS_ERR = -1, /* bad input; the parser stays in this state */
};

/* Error codes carried in struct rs_error.code. */
enum rs_error_code {
    RS_E_NONE = 0,
    RS_E_FORMAT,      /* the bytes do not follow the format */
    RS_E_TRUNCATED,   /* the input ended before the format said it would */
    RS_E_CHECKSUM,    /* a checksum did not match */
    RS_E_UNSUPPORTED, /* a valid but unsupported construct (named in msg) */
    RS_E_LIMIT,       /* a configured size limit was exceeded */
    RS_E_CONSUMER,    /* the consumer of parsed records asked to stop */
};

struct rs_error {
    int code;        /* enum rs_error_code */
    uint64_t offset; /* byte offset in the input where the problem was found */
    char msg[256];   /* what was being read, what was found, what was expected */
};

/* Fills err (when non-NULL) with code, offset and a printf-style message. */
void rs_error_set(struct rs_error *err, int code, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes p[0..len) into out (capacity cap, always NUL-terminated when cap > 0)
 * as readable text: printable ASCII as is, '"' and '\\' escaped, every other
 * byte as \xNN. At most max_in input bytes are shown; "..." marks the cut.
 * Returns out. */
char *rs_escape_bytes(char *out, size_t cap, const void *p, size_t len, size_t max_in);

/* Names an error code ("format", "truncated", ...). */
const char *rs_error_code_name(int code);

void rs_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));

/* Kept on in release builds: a crash beats a silently doubled write. */
#define RS_ASSERT(c)                                                                               \
    do {                                                                                           \
        if (__builtin_expect(!(c), 0))                                                             \
            rs_assert_fail(#c, __FILE__, __LINE__);                                                \
    } while (0)

#endif
