/* rate_limit.c - token buckets for the job's write rate (see rate_limit.h). */
#include "rate_limit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    double ops;
} presets[] = {
    {"micro", 200}, {"small", 2000}, {"medium", 5000}, {"large", 11000}, {"xlarge", 17000},
};

/* "10m" -> 10 MiB; -1 when it is not a positive number with an optional
 * k/m/g suffix. */
static double parse_amount(const char *s, size_t n, bool suffixes)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno != 0 || end == buf || !(v > 0) || v > 1e15)
        return -1;
    if (*end != '\0') {
        if (!suffixes || end[1] != '\0')
            return -1;
        switch (*end | 0x20) {
        case 'k':
            v *= 1024;
            break;
        case 'm':
            v *= 1024 * 1024;
            break;
        case 'g':
            v *= 1024.0 * 1024 * 1024;
            break;
        default:
            return -1;
        }
    }
    return v;
}

int rate_limit_parse(const char *spec, const char *option, struct rate_limit_spec *out,
                     struct rs_error *err)
{
    struct rate_limit_spec r = {0};
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (strcmp(spec, presets[i].name) == 0) {
            *out = (struct rate_limit_spec){.ops = presets[i].ops};
            return 0;
        }
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        double v = -1;
        bool ops = eq && (size_t)(eq - p) == 3 && strncmp(p, "ops", 3) == 0;
        bool bytes = eq && (size_t)(eq - p) == 5 && strncmp(p, "bytes", 5) == 0;
        if (ops || bytes)
            v = parse_amount(eq + 1, len - (size_t)(eq + 1 - p), bytes);
        if (v < 0 || (ops && r.ops > 0) || (bytes && r.bytes > 0)) {
            rs_error_set(err, RS_E_FORMAT, 0,
                         "%s takes ops=N[,bytes=M] (M with k, m or g: KiB, MiB, GiB per second) "
                         "or one of micro, small, medium, large, xlarge; not '%s'",
                         option, spec);
            return -1;
        }
        if (ops)
            r.ops = v;
        else
            r.bytes = v;
        p += len;
        if (*p == ',')
            p++;
    }
    if (!rate_limit_spec_on(&r)) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s: empty limit '%s'", option, spec);
        return -1;
    }
    *out = r;
    return 0;
}

bool rate_limit_spec_on(const struct rate_limit_spec *s)
{
    return s->ops > 0 || s->bytes > 0;
}

void rate_limit_init(struct rate_limit *rl, const struct rate_limit_spec *s, unsigned share)
{
    memset(rl, 0, sizeof(*rl));
    double k = share > 1 ? (double)share : 1;
    rl->ops_rate = s->ops / k;
    rl->bytes_rate = s->bytes / k;
    rl->ops_tokens = rl->ops_rate * RATE_LIMIT_BURST_S;
    rl->bytes_tokens = rl->bytes_rate * RATE_LIMIT_BURST_S;
}

/* A bucket never holds more than its burst, nor less than one piece's
 * worth is spent before it is looked at again. */
static void refill(double *tokens, double rate, double dt)
{
    if (rate <= 0)
        return;
    double cap = rate * RATE_LIMIT_BURST_S;
    if (cap < 1)
        cap = 1;
    *tokens += rate * dt;
    if (*tokens > cap)
        *tokens = cap;
}

bool rate_limit_allows(struct rate_limit *rl, int64_t now_ns)
{
    if (rl->last_ns != 0 && now_ns > rl->last_ns) {
        double dt = (double)(now_ns - rl->last_ns) / 1e9;
        refill(&rl->ops_tokens, rl->ops_rate, dt);
        refill(&rl->bytes_tokens, rl->bytes_rate, dt);
    }
    if (now_ns > rl->last_ns)
        rl->last_ns = now_ns;
    bool ok = (rl->ops_rate <= 0 || rl->ops_tokens >= 1) &&
              (rl->bytes_rate <= 0 || rl->bytes_tokens >= 1);
    if (!ok && rl->held_since_ns == 0) {
        rl->held_since_ns = now_ns;
        atomic_store_explicit(&rl->holding_from, now_ns, memory_order_relaxed);
    } else if (ok && rl->held_since_ns != 0) {
        atomic_fetch_add_explicit(&rl->held_ns, (uint64_t)(now_ns - rl->held_since_ns),
                                  memory_order_relaxed);
        rl->held_since_ns = 0;
        atomic_store_explicit(&rl->holding_from, 0, memory_order_relaxed);
    }
    return ok;
}

void rate_limit_take(struct rate_limit *rl, uint64_t ops, uint64_t bytes)
{
    if (rl->ops_rate > 0)
        rl->ops_tokens -= (double)ops;
    if (rl->bytes_rate > 0)
        rl->bytes_tokens -= (double)bytes;
}

uint64_t rate_limit_held_ns(const struct rate_limit *rl, int64_t now_ns)
{
    uint64_t h = atomic_load_explicit(&rl->held_ns, memory_order_relaxed);
    int64_t from = atomic_load_explicit(&rl->holding_from, memory_order_relaxed);
    return h + (from != 0 && now_ns > from ? (uint64_t)(now_ns - from) : 0);
}

bool rate_limit_holding(const struct rate_limit *rl)
{
    return atomic_load_explicit(&rl->holding_from, memory_order_relaxed) != 0;
}

void rate_limit_describe(const struct rate_limit_spec *s, char *buf, size_t cap)
{
    if (!rate_limit_spec_on(s)) {
        snprintf(buf, cap, "none");
        return;
    }
    int n = 0;
    if (s->ops > 0)
        n = snprintf(buf, cap, "ops=%.0f/s", s->ops);
    if (s->bytes > 0 && n >= 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "%sbytes=%.1f MiB/s", n > 0 ? "," : "",
                 s->bytes / (1024 * 1024));
}
