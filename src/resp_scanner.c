/* resp_scanner.c - the replication stream's command scanner (see resp_scanner.h).
 *
 * The buffer holds [0, end); `pos` is where the next command begins. A
 * multibulk command that is not complete yet keeps how far it was parsed
 * (its count, the arguments done and where the next one starts), and the
 * next call goes on from there: a command of a million arguments arriving
 * in thousands of pieces is parsed once, not once per piece.
 *
 * What is accepted is what Redis accepts from its master (networking.c,
 * processMultibulkBuffer): lengths written as string2ll writes them (no '+',
 * no leading zero, no "-0"). So the bytes of every command handed out are
 * the canonical encoding of its arguments, and forwarding them unchanged is
 * safe. Errors point at the first bad byte, whatever the feed sizes were.
 */
#include "resp_scanner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SCANNER_INITIAL    (256 * 1024)
#define SCANNER_MAX_INLINE (64 * 1024) /* Redis's PROTO_INLINE_MAX_SIZE */

struct resp_scanner {
    char *buf;
    size_t cap, pos, end;
    size_t last_pos;   /* where the last returned command began (for unread) */
    uint64_t base_off; /* stream offset of buf[0] */
    bool failed;
    struct rs_error err;
    struct rs_slice *argv;
    size_t argv_cap;
    /* the multibulk command at pos, parsed in part (argv[0..part_k) done) */
    bool partial;
    int64_t part_argc, part_k;
    size_t part_at; /* where argument part_k begins, from pos */
};

struct resp_scanner *resp_scanner_new(uint64_t start_offset)
{
    struct resp_scanner *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cap = SCANNER_INITIAL;
    s->buf = malloc(s->cap);
    s->argv_cap = 64;
    s->argv = malloc(s->argv_cap * sizeof(*s->argv));
    if (s->buf == NULL || s->argv == NULL) {
        resp_scanner_free(s);
        return NULL;
    }
    s->base_off = start_offset;
    return s;
}

void resp_scanner_free(struct resp_scanner *s)
{
    if (s == NULL)
        return;
    free(s->buf);
    free(s->argv);
    free(s);
}

int resp_scanner_feed(struct resp_scanner *s, const void *p, size_t n)
{
    const char *old_base = s->buf + s->pos;
    if (s->end + n > s->cap) {
        size_t live = s->end - s->pos;
        if (s->pos > 0) { /* slide the unread bytes to the front */
            memmove(s->buf, s->buf + s->pos, live);
            s->base_off += s->pos;
            s->last_pos = s->last_pos >= s->pos ? s->last_pos - s->pos : 0;
            s->end = live;
            s->pos = 0;
        }
        if (s->end + n > s->cap) {
            size_t cap = s->cap;
            while (cap < s->end + n)
                cap *= 2;
            char *b = realloc(s->buf, cap);
            if (b == NULL)
                return -ENOMEM;
            s->buf = b;
            s->cap = cap;
        } else if (s->cap > 4 * SCANNER_INITIAL && s->end + n <= SCANNER_INITIAL) {
            char *b = realloc(s->buf, SCANNER_INITIAL); /* a big command passed */
            if (b != NULL) {
                s->buf = b;
                s->cap = SCANNER_INITIAL;
            }
        }
    }
    if (s->partial && s->buf + s->pos != old_base) { /* the bytes moved: so do the slices */
        for (int64_t k = 0; k < s->part_k; k++)
            s->argv[k].p = s->buf + s->pos + (s->argv[k].p - old_base);
    }
    memcpy(s->buf + s->end, p, n);
    s->end += n;
    return 0;
}

/* Reads "<integer>\r\n" at *i as Redis's string2ll would: an optional '-',
 * then "0" or a digit 1-9 and more digits. Returns 1 with *v set and *i past
 * the CRLF, 0 when more bytes are needed, or -1 with *i at the first bad byte
 * (at the number's start when its digits are fine but its value is not). */
static int read_num(const char *b, size_t end, size_t *i, int64_t *v)
{
    size_t j = *i;
    bool neg = false;
    if (j < end && b[j] == '-') {
        neg = true;
        j++;
    }
    size_t digits = j;
    int64_t x = 0;
    for (; j < end && b[j] >= '0' && b[j] <= '9'; j++) {
        /* A leading zero, or more digits than any length we accept: the
         * number as a whole is bad, so the error points at its start. */
        if ((j > digits && b[digits] == '0') || x > (INT64_MAX - 9) / 10) {
            j = *i;
            goto bad;
        }
        x = x * 10 + (b[j] - '0');
    }
    if (j >= end)
        return 0;
    if (j == digits)
        goto bad; /* no digits */
    if (neg && x == 0) {
        j = *i; /* "-0" */
        goto bad;
    }
    if (b[j] != '\r')
        goto bad;
    if (j + 1 >= end)
        return 0;
    if (b[j + 1] != '\n') {
        j++;
        goto bad;
    }
    *i = j + 2;
    *v = neg ? -x : x;
    return 1;
bad:
    *i = j;
    return -1;
}

/* The common case of read_num, for speed: a positive number of at most 10
 * digits with its CRLF, all in the buffer. Returns true with *v set and *i
 * past the CRLF; false sends the caller to read_num, which also finds the
 * errors (a leading zero, "-", a missing CRLF, not enough bytes yet). */
static inline bool read_num_fast(const char *b, size_t end, size_t *i, int64_t *v)
{
    size_t j = *i;
    if (end - j < 12)
        return false;
    unsigned d = (unsigned)(unsigned char)b[j] - '0';
    if (d - 1 > 8) /* not 1-9 */
        return false;
    int64_t x = d;
    for (j++; j < *i + 10; j++) {
        d = (unsigned)(unsigned char)b[j] - '0';
        if (d > 9)
            break;
        x = x * 10 + d;
    }
    if (b[j] != '\r' || b[j + 1] != '\n')
        return false;
    *i = j + 2;
    *v = x;
    return true;
}

/* Fails the scanner (for good) at buf[at], quoting the bytes from there. */
static int bad(struct resp_scanner *s, size_t at, const char *what)
{
    char q[80];
    size_t n = s->end - at < 16 ? s->end - at : 16;
    rs_error_set(&s->err, RS_E_FORMAT, s->base_off + at,
                 "the replication stream is not RESP: %s, found \"%s\"", what,
                 rs_escape_bytes(q, sizeof(q), s->buf + at, n, 16));
    s->failed = true;
    return RS_ERR;
}

static bool argv_reserve(struct resp_scanner *s, size_t n)
{
    if (n <= s->argv_cap)
        return true;
    size_t cap = s->argv_cap;
    while (cap < n)
        cap *= 2;
    struct rs_slice *a = realloc(s->argv, cap * sizeof(*a));
    if (a == NULL)
        return false;
    s->argv = a;
    s->argv_cap = cap;
    return true;
}

/* The inline line at s->pos: 1 with *cmd, 0 when its newline has not come
 * yet, RS_ERR. A line of blanks is consumed and yields a command of argc 0. */
static int scan_inline(struct resp_scanner *s, struct resp_cmd *cmd)
{
    const char *b = s->buf;
    size_t i = s->pos, end = s->end;
    const char *nl = memchr(b + i, '\n', end - i);
    size_t stop = nl != NULL ? (size_t)(nl - b) : end;
    /* Checked on the line so far too, so that the verdict does not depend on
     * whether the newline came in the same feed. */
    if (stop - i > SCANNER_MAX_INLINE)
        return bad(s, i, "an inline command longer than 64 KiB");
    if (nl == NULL)
        return 0;
    int argc = 0;
    for (size_t j = i; j < stop;) {
        while (j < stop && (b[j] == ' ' || b[j] == '\r'))
            j++;
        size_t w = j;
        while (j < stop && b[j] != ' ' && b[j] != '\r')
            j++;
        if (j > w) {
            if (!argv_reserve(s, (size_t)argc + 1))
                return bad(s, i, "out of memory for the arguments");
            s->argv[argc++] = (struct rs_slice){b + w, j - w};
        }
    }
    cmd->raw = (struct rs_slice){b + i, stop + 1 - i};
    cmd->argc = argc;
    cmd->argv = s->argv;
    s->last_pos = s->pos;
    s->pos = stop + 1;
    cmd->end_offset = s->base_off + s->pos;
    return 1;
}

/* Keeps how far the command at pos was parsed: k arguments, the next at i. */
static int stop_partial(struct resp_scanner *s, int64_t argc, int64_t k, size_t i)
{
    s->partial = true;
    s->part_argc = argc;
    s->part_k = k;
    s->part_at = i - s->pos;
    return 0;
}

/* The multibulk command at s->pos ('*'): 1 with *cmd, 0, or RS_ERR. */
static int scan_multibulk(struct resp_scanner *s, struct resp_cmd *cmd)
{
    const char *b = s->buf;
    size_t end = s->end;
    size_t i;
    int64_t argc, k = 0;
    int r;
    if (s->partial) { /* go on where the last call stopped */
        argc = s->part_argc;
        k = s->part_k;
        i = s->pos + s->part_at;
    } else {
        i = s->pos + 1;
        r = read_num_fast(b, end, &i, &argc) ? 1 : read_num(b, end, &i, &argc);
        if (r < 0)
            return bad(s, i, "a bad multibulk count");
        if (r == 0)
            return 0;
        if (argc <= 0 || argc > RESP_SCANNER_MAX_ARGS)
            return bad(s, s->pos + 1, "a multibulk count out of range");
        if (!argv_reserve(s, (size_t)argc))
            return bad(s, s->pos + 1, "out of memory for the arguments");
    }
    for (; k < argc; k++) {
        if (i >= end)
            return stop_partial(s, argc, k, i);
        if (b[i] != '$')
            return bad(s, i, "expected '$' before an argument");
        i++;
        size_t num_at = i;
        int64_t len;
        r = read_num_fast(b, end, &i, &len) ? 1 : read_num(b, end, &i, &len);
        if (r < 0)
            return bad(s, i, "a bad bulk length");
        if (r == 0)
            return stop_partial(s, argc, k, num_at - 1); /* from its '$' again */
        if (len < 0 || (uint64_t)len > RESP_SCANNER_MAX_BULK)
            return bad(s, num_at, "a bulk length out of range");
        size_t after = i + (size_t)len; /* where the argument's CRLF must be */
        if (end - i > (size_t)len && b[after] != '\r')
            return bad(s, after, "an argument not followed by CRLF");
        if (end - i < (size_t)len + 2)
            return stop_partial(s, argc, k, num_at - 1);
        if (b[after + 1] != '\n')
            return bad(s, after + 1, "an argument not followed by CRLF");
        s->argv[k] = (struct rs_slice){b + i, (size_t)len};
        i = after + 2;
    }
    s->partial = false;
    cmd->raw = (struct rs_slice){b + s->pos, i - s->pos};
    cmd->argc = (int)argc;
    cmd->argv = s->argv;
    s->last_pos = s->pos;
    s->pos = i;
    cmd->end_offset = s->base_off + i;
    return 1;
}

int resp_scanner_next(struct resp_scanner *s, struct resp_cmd *cmd, struct rs_error *err)
{
    for (;;) {
        if (s->failed) {
            if (err)
                *err = s->err;
            return RS_ERR;
        }
        while (s->pos < s->end && (s->buf[s->pos] == '\n' || s->buf[s->pos] == '\r'))
            s->pos++; /* keepalive newlines */
        if (s->pos >= s->end)
            return 0;
        int r = s->buf[s->pos] == '*' ? scan_multibulk(s, cmd) : scan_inline(s, cmd);
        if (r == RS_ERR) {
            if (err)
                *err = s->err;
            return RS_ERR;
        }
        if (r == 0 || cmd->argc > 0)
            return r;
        /* a line of blanks: skipped like a newline */
    }
}

void resp_scanner_unread(struct resp_scanner *s)
{
    s->pos = s->last_pos;
    s->partial = false; /* it was complete */
}

uint64_t resp_scanner_offset(const struct resp_scanner *s)
{
    return s->base_off + s->pos;
}

size_t resp_scanner_pending(const struct resp_scanner *s)
{
    return s->end - s->pos;
}
