/* rate_limit.h - `--rate-limit`, `--snapshot-rate-limit`, `--stream-rate-limit`:
 * how fast the job may write to the destination, in operations (keys of
 * the snapshot, commands of the stream) and bytes (of the source's input
 * they come from) per second.
 *
 * A token bucket per limit, on the worker that reads the source (the one
 * producer): it takes input only while both buckets hold tokens, and the
 * source feed charges what each piece of input turned into. No syscall per
 * command: the clock is read once per piece of input (16 KiB) at most. What
 * the source sends meanwhile waits in the spill (spill.h), so the source is
 * never slowed; the destination is. A piece may overdraw a bucket (a
 * piece's ops are known only once it is fed): the debt is paid before the
 * next piece, so the rate holds over any second or more.
 *
 *     SPEC:  ops=N[,bytes=M]  |  bytes=M  |  micro|small|medium|large|xlarge
 *            M takes k, m, g (KiB, MiB, GiB); presets are the managed
 *            service's instance classes, in ops/s: 200, 2000, 5000, 11000,
 *            17000.
 */
#ifndef RS_RATE_LIMIT_H
#define RS_RATE_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_error.h"

#define RATE_LIMIT_BURST_S 0.05 /* a bucket holds this long of its rate */

/* A limit as the options give it, per second; 0: that kind unlimited. */
struct rate_limit_spec {
    double ops, bytes;
};

struct rate_limit {
    double ops_rate, bytes_rate; /* per second; 0: that kind unlimited */
    double ops_tokens, bytes_tokens;
    int64_t last_ns;              /* the last refill; 0: never */
    int64_t held_since_ns;        /* denied since then; 0: not holding */
    _Atomic uint64_t held_ns;     /* time spent held back, ended spells */
    _Atomic int64_t holding_from; /* the spell going on (0: none), for other threads */
};

/* Parses SPEC (above) into *out. -1 with err saying what is wrong, option
 * naming the flag ("--stream-rate-limit takes ..."). */
int rate_limit_parse(const char *spec, const char *option, struct rate_limit_spec *out,
                     struct rs_error *err);

/* True when the spec limits anything. */
bool rate_limit_spec_on(const struct rate_limit_spec *s);

/* A bucket for one job: the spec's rates divided by share (the jobs of a
 * cluster source's masters share the limit evenly), full at the start. */
void rate_limit_init(struct rate_limit *rl, const struct rate_limit_spec *s, unsigned share);

/* Refills the buckets up to now_ns (monotonic) and says whether input may
 * be taken: both buckets hold a token or more. Counts the time denied. */
bool rate_limit_allows(struct rate_limit *rl, int64_t now_ns);

/* What a piece of input turned into: ops and bytes taken from the buckets
 * (which may go below zero: a debt). */
void rate_limit_take(struct rate_limit *rl, uint64_t ops, uint64_t bytes);

/* Total time held back so far, ns (any thread). */
uint64_t rate_limit_held_ns(const struct rate_limit *rl, int64_t now_ns);

/* True while it holds the input back (any thread). */
bool rate_limit_holding(const struct rate_limit *rl);

/* "ops=2000/s" or "ops=2000/s,bytes=10.0 MiB/s" or "none", for messages. */
void rate_limit_describe(const struct rate_limit_spec *s, char *buf, size_t cap);

#endif
