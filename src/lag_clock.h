/* lag_clock.h - when the source's bytes arrived, for the lag in time: the
 * arrival of the oldest byte not yet applied, measured without writing to
 * the source.
 *
 * The worker with the source records (input position, monotonic time)
 * samples as it reads, at most one per LAG_CLOCK_INTERVAL_NS: a sample's
 * time is when the first of its bytes arrived, its position the end of the
 * last, so every byte in (previous pos, pos] arrived within
 * [time, time + interval) and the lag it gives is never low and at most one
 * interval high. Samples the applied position has passed are dropped. In a
 * full ring the two neighbours whose merged sample spans the least time
 * become one (the older time, the newer position): the oldest unapplied
 * byte's sample keeps its time, and a byte's time is late by at most
 * 2 * window / (LAG_CLOCK_SAMPLES - 1) plus one interval, for a ring that
 * covers a window (an idle gap is never merged over while a shorter pair
 * exists).
 * Costs: a clock read per input read, an O(LAG_CLOCK_SAMPLES) merge at most
 * once per interval while the ring is full.
 *
 *   ring: [tail ......................... head)
 *          oldest unapplied sample         newest (still taking bytes
 *                                          until its interval passes)
 *
 * Threads: a lag_clock belongs to the thread that feeds it (the source's
 * worker); what others read of it is what the caller publishes (job.h's
 * lag_since_ns).
 */
#ifndef RS_LAG_CLOCK_H
#define RS_LAG_CLOCK_H

#include <stdint.h>

#define LAG_CLOCK_SAMPLES     256 /* a power of two */
#define LAG_CLOCK_INTERVAL_NS (10 * 1000 * 1000)

struct lag_clock_sample {
    uint64_t pos;    /* input position just after the sample's last byte */
    int64_t time_ns; /* monotonic: when its first byte arrived */
};

/* An all-zero lag_clock is an empty one at position 0. */
struct lag_clock {
    struct lag_clock_sample s[LAG_CLOCK_SAMPLES];
    uint32_t tail, head; /* s[tail % N .. head % N): the samples, oldest first */
    uint64_t read_pos;   /* input bytes read so far */
};

/* n more input bytes arrived at now_ns (monotonic, never going back). */
void lag_clock_read(struct lag_clock *c, uint64_t n, int64_t now_ns);

/* Everything up to input position pos is applied: drops the samples it
 * passed. Returns the arrival time of the oldest byte after pos, or 0 when
 * every byte read is applied. */
int64_t lag_clock_applied(struct lag_clock *c, uint64_t pos);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t lag_clock_now_ns(void);

#endif
