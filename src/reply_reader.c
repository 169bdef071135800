/* reply_reader.c - a resumable RESP2 reply skipper (see reply_reader.h). */
#include "reply_reader.h"

#include <string.h>

enum { RR_TYPE, RR_LINE, RR_BULK };

void reply_reader_init(struct reply_reader *rr)
{
    memset(rr, 0, sizeof(*rr));
    rr->error_element = -1;
}

/* A value of the current nesting level is complete: unwind finished arrays
 * and report a finished top-level reply. */
static int value_done(struct reply_reader *rr, reply_fn fn, void *ctx)
{
    while (rr->depth > 0) {
        if (--rr->left[rr->depth - 1] > 0)
            return 0;
        rr->depth--;
    }
    bool err = rr->top_is_error;
    rr->top_is_error = false;
    int rc = fn(ctx, err, rr->top_line, rr->top_line_len);
    rr->error_element = -1;
    rr->top_count = 0;
    return rc;
}

static int parse_int(const char *s, size_t n, int64_t *v)
{
    int64_t x = 0;
    bool neg = false;
    size_t i = 0;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || n > 20)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || x > (INT64_MAX - 9) / 10)
            return -1; /* not a number, or past what a length can be */
        x = x * 10 + (s[i] - '0');
    }
    *v = neg ? -x : x;
    return 0;
}

/* A complete line of rr->type with text line[0..len). */
static int line_done(struct reply_reader *rr, reply_fn fn, void *ctx)
{
    int64_t v;
    bool top = rr->depth == 0;
    if (top) {
        rr->top_line_len = 0;
        rr->top_is_error = rr->type == '-';
        rr->error_element = -1;
    }
    /* an error element of the top-level array: the first one is the reply's error */
    bool first_nested_error = rr->type == '-' && rr->depth == 1 && !rr->top_is_error;
    if (first_nested_error) {
        rr->top_is_error = true;
        rr->error_element = rr->top_count - rr->left[0];
    }
    switch (rr->type) {
    case '+':
    case '-':
        if (top || first_nested_error) {
            memcpy(rr->top_line, rr->line, rr->line_len);
            rr->top_line_len = rr->line_len;
        }
        rr->state = RR_TYPE;
        return value_done(rr, fn, ctx);
    case ':':
        rr->state = RR_TYPE;
        return value_done(rr, fn, ctx);
    case '$':
        if (parse_int(rr->line, rr->line_len, &v) < 0 || v < -1)
            return -1;
        if (v == -1) {
            rr->state = RR_TYPE;
            return value_done(rr, fn, ctx);
        }
        rr->bulk_left = (uint64_t)v + 2;
        rr->state = RR_BULK;
        return 0;
    case '*':
        if (parse_int(rr->line, rr->line_len, &v) < 0 || v < -1)
            return -1;
        rr->state = RR_TYPE;
        if (v <= 0)
            return value_done(rr, fn, ctx);
        if (rr->depth == REPLY_READER_DEPTH)
            return -1;
        if (rr->depth == 0)
            rr->top_count = v;
        rr->left[rr->depth++] = v;
        return 0;
    }
    return -1;
}

int reply_reader_feed(struct reply_reader *rr, const char *p, size_t n, reply_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        /* The common reply, for speed: a whole "+OK\r\n" or ":<n>\r\n" at the
         * top level, handed over in place (what the switch below would do). */
        if (rr->state == RR_TYPE && rr->depth == 0 && (p[i] == '+' || p[i] == ':')) {
            const char *nl = memchr(p + i, '\n', n - i < 32 ? n - i : 32);
            if (nl != NULL && nl > p + i + 1 && nl[-1] == '\r') {
                const char *line = p + i + 1;
                size_t len = p[i] == '+' ? (size_t)(nl - 1 - line) : 0; /* as the contract says */
                i = (size_t)(nl - p) + 1;
                rr->error_element = -1;
                rr->top_count = 0;
                int rc = fn(ctx, false, line, len);
                if (rc != 0)
                    return rc;
                continue;
            }
        }
        switch (rr->state) {
        case RR_TYPE:
            rr->type = p[i++];
            if (strchr("+-:$*", rr->type) == NULL || rr->type == '\0')
                return -1;
            rr->line_len = 0;
            rr->state = RR_LINE;
            break;
        case RR_LINE: {
            const char *nl = memchr(p + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (p + i)) : n - i;
            size_t room = REPLY_READER_LINE_MAX - rr->line_len;
            memcpy(rr->line + rr->line_len, p + i, take < room ? take : room);
            rr->line_len += take < room ? take : room;
            i += take;
            if (nl == NULL)
                break;
            i++; /* the '\n' */
            if (rr->line_len > 0 && rr->line[rr->line_len - 1] == '\r')
                rr->line_len--;
            int rc = line_done(rr, fn, ctx);
            if (rc != 0)
                return rc;
            break;
        }
        case RR_BULK: {
            size_t take = n - i < rr->bulk_left ? n - i : (size_t)rr->bulk_left;
            i += take;
            rr->bulk_left -= take;
            if (rr->bulk_left == 0) {
                rr->state = RR_TYPE;
                int rc = value_done(rr, fn, ctx);
                if (rc != 0)
                    return rc;
            }
            break;
        }
        }
    }
    return 0;
}
