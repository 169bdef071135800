/* verify_check.h - `ringsync verify`'s checking threads: each scans one node
 * of one side and compares what it finds with the other side, pipelined.
 *
 * Two kinds of worker, side by side, a thread each:
 *
 *   forward (one per source node)           reverse (one per target node)
 *     SCAN the node, per mapped db            SCAN the node, per mapped db:
 *     round S, both sides: PTTL, STRLEN       the key names' digest (below)
 *              (or the 1st GETRANGE)          ... wait for every forward worker
 *     round A, source: TYPE, PTTL of the      digests equal: no extra key; else
 *              keys that are not strings      SCAN again, the source key of each
 *     round B, source: length [+ 1st chunk]   target key (db map, --db-prefix
 *              target: PTTL, length by the    undone), EXISTS k1 ... kn on a
 *              source's type [+ 1st chunk]    standalone source (one command a
 *     big values: further chunks, both        page), or EXISTS per key on the
 *              sides at once, or DEBUG        source's node
 *              DIGEST-VALUE where allowed     -> extra: on the target only
 *     -> missing, type, ttl, value
 *
 * Extra keys without asking the source: each forward worker adds the name
 * of every key it found on the target (db and name, an order-free digest,
 * value_digest.h) per target node; the reverse worker of that node adds
 * every key its SCAN returns. The same set of names gives the same digest:
 * every key of the target is then a key of the source, and the EXISTS pass
 * (a lookup per key on the source, a third of the source's work) is not
 * needed. Anything else (a real extra key, a write in flight, a key SCAN
 * returned twice) makes them differ, and the EXISTS pass runs: a wrong
 * "equal" needs two different sets of names with colliding 128-bit sums.
 *
 * A page is one SCAN reply (about --scan-count keys): every command of a
 * round is sent to each node in one write before any reply is read, so a
 * round costs one round trip per node whatever the page's size.
 *
 * Passes (live data): what differs in pass 1 is kept (up to
 * verify_config.diffs_max for all workers together; the rest only counted),
 * and checked again, after --pass-delay-ms, in each further pass; what is
 * equal by then is dropped. A key written during the scan (a running sync
 * behind by a few commands) is equal again by the next pass.
 *
 * Threads: a worker's connections and results are its own; the config is
 * shared and read-only while workers run, but for diffs_kept (atomic).
 */
#ifndef RS_VERIFY_CHECK_H
#define RS_VERIFY_CHECK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster_topology.h"
#include "dest_route.h"
#include "endpoint.h"
#include "rs_error.h"
#include "value_digest.h"

#define VERIFY_MAX_DBS 256 /* databases compared: those of dest_route */

enum verify_kind {
    VERIFY_MISSING = 0, /* on the source, not on the target */
    VERIFY_EXTRA,       /* on the target, not on the source */
    VERIFY_TYPE,        /* another type on each side */
    VERIFY_VALUE,       /* another length, or another digest */
    VERIFY_TTL,         /* one side has an expiry and not the other, or they differ */
    VERIFY_KINDS,
};

/* "missing", "extra", "type", "value", "ttl". */
const char *verify_kind_name(enum verify_kind k);

/* One difference. key is malloc'd and owned by the worker's list. */
struct verify_diff {
    enum verify_kind kind;
    int db;    /* the source db; for VERIFY_EXTRA the target db */
    char *key; /* the source key; for VERIFY_EXTRA the target key */
    size_t key_len;
    char detail[128]; /* for people: "hash of 20000 fields on each side: the digests differ" */
};

/* What every worker reads; filled by verify.c before the workers start. */
struct verify_config {
    bool is_full;             /* --mode full: values too */
    bool use_debug_digest;    /* every node of both sides answers DEBUG DIGEST-VALUE */
    int64_t ttl_tolerance_ms; /* two TTLs this close are equal */
    int64_t expiry_margin_ms; /* taken off each target TTL first (a running sync's) */
    unsigned passes;          /* 1: no rechecks */
    unsigned pass_delay_ms;
    unsigned scan_count;         /* SCAN's COUNT: keys of a page */
    int timeout_ms;              /* of silence on any connection */
    size_t diffs_max;            /* differences kept for rechecks, all workers together */
    size_t diffs_kept;           /* so far (atomic, relaxed: a budget, orders nothing) */
    struct endpoint *source_eps; /* per node */
    unsigned nsource;
    const struct cluster_topology *source_topo; /* NULL: standalone */
    struct endpoint *target_eps;
    unsigned ntarget;
    const struct cluster_topology *target_topo; /* NULL: standalone */
    struct dest_route route;                    /* source db -> target db, and --db-prefix */
    int source_dbs[VERIFY_MAX_DBS];             /* the source dbs compared (holding keys, mapped) */
    unsigned nsource_dbs;
    int target_dbs[VERIFY_MAX_DBS]; /* the target dbs scanned for extra keys */
    unsigned ntarget_dbs;
    /* the names forward workers found on each target node (see the top);
     * under lock, final once forward_left is 0 */
    pthread_mutex_t lock;
    pthread_cond_t forward_done;
    unsigned forward_left; /* forward workers still in pass 1 */
    bool is_forward_failed;
    struct value_digest *found_on_target; /* per target node */
};

/* Sets up the shared state of cfg (ntarget set) for nforward forward
 * workers; verify_config_deinit frees it. */
void verify_config_init_shared(struct verify_config *cfg, unsigned nforward);
void verify_config_deinit(struct verify_config *cfg);

/* A forward worker's pass 1 is over (found: its digests per target node,
 * NULL when it failed or never started): the reverse workers may compare. */
void verify_forward_done(struct verify_config *cfg, const struct value_digest *found);

/* One thread's work and results. Zero it, set cfg, is_reverse and node,
 * then verify_worker_start. */
struct verify_worker {
    struct verify_config *cfg; /* shared: read-only but for its counters and lock */
    bool is_reverse;           /* scans a target node (extras), else a source node */
    unsigned node;             /* index into cfg->source_eps or cfg->target_eps */
    pthread_t thread;
    bool is_started;
    /* results, read after verify_worker_join */
    struct verify_diff *diffs; /* what still differs after the last pass */
    size_t ndiffs, diffs_cap;
    uint64_t overflow[VERIFY_KINDS]; /* found in pass 1 past diffs_max: not rechecked */
    uint64_t keys;                   /* keys compared in pass 1 */
    uint64_t not_compared;           /* values no mode can read (module types, no DEBUG) */
    uint64_t pass1_us;               /* pass 1's duration */
    unsigned passes_run;
    int rc; /* 0, or a negative errno with err */
    struct rs_error err;
};

/* Starts w's thread. 0 or a negative errno (err set). */
int verify_worker_start(struct verify_worker *w);

/* Waits for it; w->rc and the results are then final. */
void verify_worker_join(struct verify_worker *w);

/* Frees w's differences. */
void verify_worker_deinit(struct verify_worker *w);

#endif
