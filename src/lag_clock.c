/* lag_clock.c - the arrival times of the source's bytes (see lag_clock.h). */
#include "lag_clock.h"

#include <stdint.h>
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

/* A full ring: the two neighbours whose merged sample would span the least
 * time (from the first's time to the next sample's, or to now) become one
 * (the older time, the newer position). The spans of the ring's pairs add up
 * to at most twice its window, so the one merged spans at most
 * 2 * window / (LAG_CLOCK_SAMPLES - 1): no byte's time is later than that
 * after its sample's, and the oldest sample never loses its time. */
static void merge_closest(struct lag_clock *c, int64_t now_ns)
{
    uint32_t best = c->tail;
    int64_t best_span = INT64_MAX;
    for (uint32_t k = c->tail; k + 1 != c->head; k++) {
        int64_t end = k + 2 != c->head ? c->s[IDX(k + 2)].time_ns : now_ns;
        int64_t span = end - c->s[IDX(k)].time_ns;
        if (span < best_span) {
            best_span = span;
            best = k;
        }
    }
    c->s[IDX(best)].pos = c->s[IDX(best + 1)].pos;
    for (uint32_t k = best + 1; k + 1 != c->head; k++)
        c->s[IDX(k)] = c->s[IDX(k + 1)];
    c->head--;
}

void lag_clock_read(struct lag_clock *c, uint64_t n, int64_t now_ns)
{
    if (n == 0)
        return;
    c->read_pos += n;
    if (c->head != c->tail) {
        struct lag_clock_sample *last = &c->s[IDX(c->head - 1)];
        if (now_ns - last->time_ns < LAG_CLOCK_INTERVAL_NS) {
            last->pos = c->read_pos; /* within its interval: the same sample */
            return;
        }
    }
    if (c->head - c->tail == LAG_CLOCK_SAMPLES)
        merge_closest(c, now_ns);
    RS_ASSERT(c->head - c->tail < LAG_CLOCK_SAMPLES);
    c->s[IDX(c->head)] = (struct lag_clock_sample){.pos = c->read_pos, .time_ns = now_ns};
    c->head++;
}

int64_t lag_clock_applied(struct lag_clock *c, uint64_t pos)
{
    while (c->head != c->tail && c->s[IDX(c->tail)].pos <= pos)
        c->tail++;
    if (c->head == c->tail)
        return 0;
    return c->s[IDX(c->tail)].time_ns;
}
