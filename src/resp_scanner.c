/* resp_scanner.c - the replication stream's command scanner (see resp_scanner.h).
 *
 * The buffer holds [start, end); `pos` is where the next command begins.
 * A command is parsed from `pos` each time; if incomplete, nothing changes
 * but `need_from`, which remembers how far the parse got so that a big
 * argument still arriving is not re-scanned byte by byte: the header parse
 * resumes cheaply because arguments are skipped by their length.
 */
#include "resp_scanner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SCANNER_INITIAL (256 * 1024)

struct resp_scanner {
    char *buf;
    size_t cap, pos, end;
    size_t last_pos;   /* where the last returned command began (for unread) */
    uint64_t base_off; /* stream offset of buf[0] */
    bool failed;
    struct rs_error err;
    struct rs_slice *argv;
    size_t argv_cap;
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
    memcpy(s->buf + s->end, p, n);
    s->end += n;
    return 0;
}

/* Reads "<digits>\r\n" at *i; -1 if malformed, 0 if incomplete, 1 ok. */
static int read_num(const char *b, size_t end, size_t *i, int64_t *v)
{
    size_t j = *i;
    int64_t x = 0;
    bool neg = false, any = false;
    if (j < end && b[j] == '-') {
        neg = true;
        j++;
    }
    for (; j < end && b[j] >= '0' && b[j] <= '9'; j++) {
        if (x > (INT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (b[j] - '0');
        any = true;
    }
    if (j >= end || (j + 1 >= end && b[j] == '\r'))
        return 0;
    if (!any || b[j] != '\r' || b[j + 1] != '\n')
        return -1;
    *i = j + 2;
    *v = neg ? -x : x;
    return 1;
}

static int bad(struct resp_scanner *s, size_t at, const char *what)
{
    char q[64];
    size_t n = s->end - at < 16 ? s->end - at : 16;
    rs_error_set(&s->err, RS_E_FORMAT, s->base_off + at,
                 "the replication stream is not RESP: %s, found \"%s\"", what,
                 rs_escape_bytes(q, sizeof(q), s->buf + at, n, 16));
    s->failed = true;
    return RS_ERR;
}

int resp_scanner_next(struct resp_scanner *s, struct resp_cmd *cmd, struct rs_error *err)
{
    if (s->failed) {
        if (err)
            *err = s->err;
        return RS_ERR;
    }
    const char *b = s->buf;
    size_t end = s->end;
    while (s->pos < end && (b[s->pos] == '\n' || b[s->pos] == '\r'))
        s->pos++; /* keepalive newlines */
    size_t i = s->pos;
    if (i >= end)
        return 0;
    if (b[i] != '*') {
        /* inline command: words up to "\n" */
        const char *nl = memchr(b + i, '\n', end - i);
        if (nl == NULL) {
            if (end - i > 64 * 1024)
                return bad(s, i, "an inline command longer than 64 KiB");
            return 0;
        }
        size_t stop = (size_t)(nl - b);
        int argc = 0;
        for (size_t j = i; j < stop;) {
            while (j < stop && (b[j] == ' ' || b[j] == '\r'))
                j++;
            size_t w = j;
            while (j < stop && b[j] != ' ' && b[j] != '\r')
                j++;
            if (j > w) {
                if ((size_t)argc == s->argv_cap)
                    return bad(s, i, "an inline command with too many words");
                s->argv[argc++] = (struct rs_slice){b + w, j - w};
            }
        }
        cmd->raw = (struct rs_slice){b + i, stop + 1 - i};
        cmd->argc = argc;
        cmd->argv = s->argv;
        s->last_pos = s->pos;
        s->pos = stop + 1;
        cmd->end_offset = s->base_off + s->pos;
        if (argc == 0)
            return resp_scanner_next(s, cmd, err);
        return 1;
    }
    i++;
    int64_t argc;
    int r = read_num(b, end, &i, &argc);
    if (r < 0)
        return bad(s, s->pos, "a bad multibulk count");
    if (r == 0)
        return 0;
    if (argc <= 0 || argc > RESP_SCANNER_MAX_ARGS)
        return bad(s, s->pos, "a multibulk count out of range");
    if ((size_t)argc > s->argv_cap) {
        size_t cap = s->argv_cap;
        while (cap < (size_t)argc)
            cap *= 2;
        struct rs_slice *a = realloc(s->argv, cap * sizeof(*a));
        if (a == NULL)
            return bad(s, s->pos, "out of memory for the arguments");
        s->argv = a;
        s->argv_cap = cap;
    }
    for (int64_t k = 0; k < argc; k++) {
        if (i >= end)
            return 0;
        if (b[i] != '$')
            return bad(s, i, "expected '$' before an argument");
        i++;
        int64_t len;
        r = read_num(b, end, &i, &len);
        if (r < 0)
            return bad(s, i, "a bad bulk length");
        if (r == 0)
            return 0;
        if (len < 0 || (uint64_t)len > RESP_SCANNER_MAX_BULK)
            return bad(s, i, "a bulk length out of range");
        if (end - i < (size_t)len + 2)
            return 0;
        if (b[i + len] != '\r' || b[i + len + 1] != '\n')
            return bad(s, i + (size_t)len, "an argument not followed by CRLF");
        s->argv[k] = (struct rs_slice){b + i, (size_t)len};
        i += (size_t)len + 2;
    }
    cmd->raw = (struct rs_slice){b + s->pos, i - s->pos};
    cmd->argc = (int)argc;
    cmd->argv = s->argv;
    s->last_pos = s->pos;
    s->pos = i;
    cmd->end_offset = s->base_off + i;
    return 1;
}

void resp_scanner_unread(struct resp_scanner *s)
{
    s->pos = s->last_pos;
}

uint64_t resp_scanner_offset(const struct resp_scanner *s)
{
    return s->base_off + s->pos;
}

size_t resp_scanner_pending(const struct resp_scanner *s)
{
    return s->end - s->pos;
}
