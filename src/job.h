/* job.h - what the threads of one sync job share: the ring matrix, the
 * outcome, and progress counters. Everything else a worker owns alone.
 *
 *            to[i][j]: batches from producer worker i to consumer worker j
 *   worker i ==========================================> worker j
 *            <==========================================
 *            back[j][i]: the same batches, replied to, going home to i
 *
 * A batch is freed by the worker that made it (its owner), after the
 * consumer has all of its replies.
 */
#ifndef RS_JOB_H
#define RS_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "spsc_ring.h"

#define JOB_MAX_WORKERS 64
#define JOB_RING_SLOTS  1024 /* batch descriptors per ring: a power of two */

struct worker;
struct cluster_redirect;

struct job {
    unsigned nworkers;
    struct worker *workers[JOB_MAX_WORKERS];
    struct spsc_ring *to;   /* nworkers * nworkers: to[i * n + j] */
    struct spsc_ring *back; /* back[j * n + i] */

    /* The outcome: the first failure wins; every worker stops when it is set. */
    _Atomic int failed;
    _Atomic int stop;        /* asked to stop (SIGINT/SIGTERM): stop cleanly */
    _Atomic int finished;    /* the input is fully applied */
    _Atomic int source_lost; /* the source's link ended: the main thread reconnects */
    _Atomic int dest_lost;   /* the failure is a lost destination link (job_fail_lost) */
    _Atomic int drain;       /* a clean stop with checkpoints: route no more, apply what was
                                routed, write the last checkpoint, then stop */
    pthread_mutex_t fail_mu;
    char fail_msg[1024];

    /* Progress, written by workers, read by anyone (relaxed). */
    _Atomic uint64_t input_bytes;     /* snapshot bytes consumed */
    _Atomic uint64_t keys_read;       /* keys decoded */
    _Atomic uint64_t keys_skipped;    /* expired or empty keys not written */
    _Atomic uint64_t cmds_acked;      /* replies received from destinations */
    _Atomic int snapshot_applied;     /* every snapshot command has its reply */
    _Atomic uint64_t stream_received; /* source offset received so far */
    _Atomic uint64_t stream_applied;  /* the applied offset (what REPLCONF ACK says) */
    _Atomic uint64_t stream_cmds;     /* stream commands routed */
    /* For the status (status_server.h), written by the source's worker,
     * read by anyone (relaxed: each is a value of its own, none orders another). */
    _Atomic uint64_t stream_read;       /* source offset read from its socket (>= stream_received:
                                           what waits in the spill counts) */
    _Atomic int64_t lag_since_ns;       /* monotonic arrival of the oldest stream byte not
                                           applied; 0 when all are (lag_clock.h) */
    _Atomic uint64_t source_reconnects; /* the source's link taken up again */
    _Atomic uint64_t spill_bytes;       /* source bytes waiting in the spill */
    bool skip_errors;                   /* --on-error skip: count refused commands, go on */
    struct cluster_redirect *redirect;  /* a cluster destination's redirections; NULL standalone */
    double retry_timeout_s;             /* --target-retry-timeout: stop waiting after (0: never) */
    _Atomic uint64_t errors_skipped;
    _Atomic uint64_t cp_records_missed; /* a cluster record no candidate key could take */
    _Atomic uint64_t unmapped_skipped;  /* keys and commands of unmapped dbs (--db-unmapped skip) */
    _Atomic uint64_t cross_slot_skipped; /* commands a cluster cannot run (--cross-slot skip) */
    _Atomic uint64_t tx_split;           /* transactions split per slot (a cluster destination) */
    _Atomic uint64_t tx_unwrapped;       /* transactions sent as their commands (a proxy) */
    _Atomic uint64_t keyless_skipped;    /* FUNCTION / SCRIPT a proxy cannot pass, dropped */
    _Atomic uint64_t proxy_wrapped;      /* stream commands sent EVAL-wrapped through a proxy */
    _Atomic uint64_t echoes;             /* two-way: the other direction's writes, dropped */
    _Atomic uint64_t conflicts;          /* two-way: keys written on both sides in one window */
    /* the filters (key_filter.h) */
    _Atomic uint64_t filtered_keys;        /* snapshot keys dropped */
    _Atomic uint64_t filtered_cmds;        /* stream commands dropped whole */
    _Atomic uint64_t filter_trimmed;       /* stream commands sent with their kept keys only */
    _Atomic uint64_t filter_split_skipped; /* split by the filters, no form with the kept keys
                                              alone: dropped (--cross-slot skip) */
    /* --heartbeat-key (heartbeat.h): the last heartbeat's lag, and when it
     * was applied (Unix ms; 0: none yet) */
    _Atomic int64_t heartbeat_lag_ms;
    _Atomic int64_t heartbeat_applied_ms;
    /* the job's rate limits (rate_limit.h), NULL: none; read by the status */
    const struct rate_limit *limit_snapshot, *limit_stream;
};

/* Creates the ring matrix for n workers. Returns 0 or -ENOMEM. */
int job_init(struct job *job, unsigned nworkers);
void job_deinit(struct job *job);

static inline struct spsc_ring *job_ring_to(struct job *job, unsigned from, unsigned to)
{
    return &job->to[from * job->nworkers + to];
}

static inline struct spsc_ring *job_ring_back(struct job *job, unsigned from, unsigned to)
{
    return &job->back[from * job->nworkers + to];
}

/* Records the job's failure (the first one wins) and tells every worker to stop. */
void job_fail(struct job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same for a lost destination link: with checkpoints the job can be
 * resumed once the destination answers again (job->dest_lost). */
void job_fail_lost(struct job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool job_should_stop(struct job *job)
{
    return atomic_load_explicit(&job->failed, memory_order_relaxed) ||
           atomic_load_explicit(&job->stop, memory_order_relaxed) ||
           atomic_load_explicit(&job->finished, memory_order_relaxed);
}

#endif
