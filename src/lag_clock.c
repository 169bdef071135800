/* lag_clock.c - the arrival times of the source's bytes (see lag_clock.h). */
#include "lag_clock.h"

#include <time.h>

#include "rs_error.h"

_Static_assert((LAG_CLOCK_SAMPLES & (LAG_CLOCK_SAMPLES - 1)) == 0,
               "LAG_CLOCK_SAMPLES must be a power of two");

#define IDX(i) ((i) & (LAG_CLOCK_SAMPLES - 1))

int64_t lag_clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A full ring: samples merged two by two, each pair keeping the older time
 * (its first byte's) and the newer position, and the interval doubled. */
static void halve(struct lag_clock *c)
{
    uint32_t n = c->head - c->tail, k = 0;
    for (uint32_t i = 0; i < n; i += 2, k++) {
        struct lag_clock_sample a = c->s[IDX(c->tail + i)];
        if (i + 1 < n)
            a.pos = c->s[IDX(c->tail + i + 1)].pos;
        c->s[IDX(c->tail + k)] = a;
    }
    c->head = c->tail + k;
    c->interval_ns *= 2;
}

void lag_clock_read(struct lag_clock *c, uint64_t n, int64_t now_ns)
{
    if (n == 0)
        return;
    if (c->interval_ns == 0)
        c->interval_ns = LAG_CLOCK_INTERVAL_NS;
    c->read_pos += n;
    if (c->head != c->tail) {
        struct lag_clock_sample *last = &c->s[IDX(c->head - 1)];
        if (now_ns - last->time_ns < c->interval_ns) {
            last->pos = c->read_pos; /* within its interval: the same sample */
            return;
        }
    }
    if (c->head - c->tail == LAG_CLOCK_SAMPLES)
        halve(c);
    RS_ASSERT(c->head - c->tail < LAG_CLOCK_SAMPLES);
    c->s[IDX(c->head)] = (struct lag_clock_sample){.pos = c->read_pos, .time_ns = now_ns};
    c->head++;
}

int64_t lag_clock_applied(struct lag_clock *c, uint64_t pos)
{
    while (c->head != c->tail && c->s[IDX(c->tail)].pos <= pos)
        c->tail++;
    if (c->head == c->tail) {
        c->interval_ns = LAG_CLOCK_INTERVAL_NS; /* caught up: fine-grained again */
        return 0;
    }
    return c->s[IDX(c->tail)].time_ns;
}
