/* stream_rewrite.c - master-only forms and shifted expiries (see
 * stream_rewrite.h). */
#include "stream_rewrite.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "decimal.h"

void stream_rewrite_init(struct stream_rewrite *rw, int64_t margin_ms)
{
    memset(rw, 0, sizeof(*rw));
    rw->margin_ms = margin_ms;
}

void stream_rewrite_deinit(struct stream_rewrite *rw)
{
    free(rw->buf);
    rw->buf = NULL;
    rw->cap = 0;
}

int64_t stream_rewrite_shift_ms(int64_t ms, int64_t margin_ms)
{
    int64_t r;
    if (__builtin_add_overflow(ms, margin_ms, &r))
        return ms;
    return r;
}

static bool is_word(const struct rs_slice *a, const char *lower)
{
    size_t n = strlen(lower);
    if (a->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((a->p[i] | 0x20) != lower[i])
            return false;
    return true;
}

/* A decimal integer as Redis's string2ll takes it (no spaces, no '+'). */
static bool parse_i64(const struct rs_slice *a, int64_t *v)
{
    if (a->len == 0 || a->len > 20)
        return false;
    size_t i = 0;
    bool neg = a->p[0] == '-';
    if (neg && a->len == 1)
        return false;
    i = neg;
    uint64_t u = 0;
    for (; i < a->len; i++) {
        if (a->p[i] < '0' || a->p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(a->p[i] - '0');
        if (u > (UINT64_MAX - d) / 10)
            return false;
        u = u * 10 + d;
    }
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

/* Replaces argument i (a number of `unit_ms` milliseconds) with itself plus
 * the margin, in rw->argv. False when it is not a number or would overflow:
 * then it stays as it was. */
static bool shift_arg(struct stream_rewrite *rw, int i, int slot, int64_t unit_ms)
{
    int64_t v, add = rw->margin_ms / unit_ms, r;
    if (!parse_i64(&rw->argv[i], &v) || __builtin_add_overflow(v, add, &r))
        return false;
    size_t n = decimal_i64(rw->nums[slot], r);
    rw->argv[i] = (struct rs_slice){rw->nums[slot], n};
    return true;
}

/* Where XADD's / XTRIM's `LIMIT n` is (its index), when the trim is exact
 * (`=` or no operator) so that LIMIT is a form only a master may send; 0
 * when there is nothing to drop. Options are read as Redis's
 * streamParseAddOrTrimArgsOrReply reads them; XADD's end at its ID. */
static int trim_limit_at(int argc, const struct rs_slice *argv, bool xadd)
{
    int limit_at = 0;
    bool approx = false;
    for (int i = 2; i < argc; i++) {
        const struct rs_slice *a = &argv[i];
        bool more = i + 1 < argc;
        if (xadd && is_word(a, "nomkstream")) {
            continue;
        } else if (more && (is_word(a, "maxlen") || is_word(a, "minid"))) {
            if (argv[i + 1].len == 1 && (argv[i + 1].p[0] == '~' || argv[i + 1].p[0] == '=')) {
                approx = argv[i + 1].p[0] == '~';
                i++;
            }
            i++; /* the threshold */
        } else if (more && is_word(a, "limit")) {
            limit_at = i;
            i++;
        } else {
            break; /* XADD's ID (or a syntax error the destination reports too) */
        }
    }
    return approx ? 0 : limit_at;
}

/* The index of the number after one of SET's / GETEX's EX PX EXAT PXAT, and
 * its unit; 0 when there is none. */
static int expiry_option_at(int argc, const struct rs_slice *argv, int from, int64_t *unit_ms)
{
    for (int i = from; i + 1 < argc; i++) {
        const struct rs_slice *a = &argv[i];
        if (is_word(a, "ex") || is_word(a, "exat")) {
            *unit_ms = 1000;
            return i + 1;
        }
        if (is_word(a, "px") || is_word(a, "pxat")) {
            *unit_ms = 1;
            return i + 1;
        }
    }
    return 0;
}

static int encode(struct stream_rewrite *rw, int argc, const struct resp_cmd *c,
                  struct resp_cmd *out)
{
    size_t need = resp_argv_size(argc, rw->argv);
    if (need > rw->cap) {
        size_t cap = rw->cap ? rw->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *b = realloc(rw->buf, cap);
        if (b == NULL)
            return -1;
        rw->buf = b;
        rw->cap = cap;
    }
    char *end = resp_put_argv(rw->buf, argc, rw->argv);
    out->raw = (struct rs_slice){rw->buf, (size_t)(end - rw->buf)};
    out->argc = argc;
    out->argv = rw->argv; /* keys still slice the received command */
    out->end_offset = c->end_offset;
    return 1;
}

int stream_rewrite_cmd(struct stream_rewrite *rw, const struct command_spec *spec,
                       const struct resp_cmd *c, struct resp_cmd *out)
{
    enum command_rewrite kind = command_rewrite_of(spec);
    if (kind == CMD_RW_NONE || c->argc > STREAM_REWRITE_MAX_ARGS)
        return 0;
    if (kind == CMD_RW_XADD || kind == CMD_RW_XTRIM) {
        int at = trim_limit_at(c->argc, c->argv, kind == CMD_RW_XADD);
        if (at == 0)
            return 0;
        int argc = 0;
        for (int i = 0; i < c->argc; i++)
            if (i != at && i != at + 1)
                rw->argv[argc++] = c->argv[i];
        rw->trims_rewritten++;
        return encode(rw, argc, c, out);
    }
    if (rw->margin_ms <= 0)
        return 0;
    int at = 0;
    int64_t unit_ms = 1;
    switch (kind) {
    case CMD_RW_ARG2_MS:
    case CMD_RW_RESTORE:
        at = c->argc > 2 ? 2 : 0;
        break;
    case CMD_RW_ARG2_S:
        at = c->argc > 2 ? 2 : 0;
        unit_ms = 1000;
        break;
    case CMD_RW_SET:
        at = expiry_option_at(c->argc, c->argv, 3, &unit_ms);
        break;
    case CMD_RW_GETEX:
        at = expiry_option_at(c->argc, c->argv, 2, &unit_ms);
        break;
    default:
        return 0;
    }
    if (at == 0)
        return 0;
    memcpy(rw->argv, c->argv, (size_t)c->argc * sizeof(c->argv[0]));
    if (kind == CMD_RW_RESTORE) { /* ttl 0: no expiry */
        int64_t ttl;
        if (!parse_i64(&rw->argv[at], &ttl) || ttl <= 0)
            return 0;
    }
    if (!shift_arg(rw, at, 0, unit_ms))
        return 0;
    rw->expiries_shifted++;
    return encode(rw, c->argc, c, out);
}
