/* sync_run.h - the state of one `ringsync sync` run (and of a restore or a
 * replay, which run the same write path), shared by the sync glue (sync.c),
 * the recovery code (recovery.c) and the restore and replay commands
 * (restore_cmd.c). Internal to those three: the commands' entry points are in
 * sync.h.
 *
 * A run goes through the stages below, each of them in sync.c:
 *
 *   sync_prepare_target (the destination's nodes, checks, checkpoints;
 *                        sync_start_target in recovery.h runs it again
 *                        while the destination is lost)
 *   -> [sync_from: PSYNC handshake]   or   [restore, replay: the file's header]
 *   -> sync_parse_header_version -> sync_probe_restore -> sync_run_job
 *
 * and after a lost destination link, sync_recover (recovery.h) goes back to
 * sync_from until the job resumes or gives up.
 *
 * Threads: a run_ctx belongs to the thread that runs its job (the main
 * thread, or one thread per master of a cluster source).
 */
#ifndef RS_SYNC_RUN_H
#define RS_SYNC_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "control_link.h"
#include "dest_nodes.h"
#include "dest_route.h"
#include "endpoint.h"
#include "job.h"
#include "rs_error.h"
#include "source_link.h"
#include "proxy_target.h"
#include "sync_opts.h"

#define SYNC_HEADER_BYTES 9           /* "REDIS0011": the RDB version decides RESTORE */
#define SYNC_INITIAL_MAX  (64 * 1024) /* the buffer of input read before the workers start */

struct run_ctx {
    struct sync_opts *o; /* a proxy destination changes some (proxy_target_settle) */
    struct endpoint target;
    struct dest_nodes *nodes;   /* the target's nodes: itself, or a cluster's masters */
    struct dest_route route;    /* each key's lane and destination db */
    unsigned probe_node;        /* the node the RESTORE probe (tcl) talks to */
    bool checks_done;           /* the destination was checked already (a cluster source) */
    bool drained;               /* the run ended in a clean stop with its last record ... */
    uint64_t drained_w;         /* ... of W ... */
    int64_t drained_db;         /* ... and the source's db at W */
    bool margin_by_caller;      /* the caller takes the expiry margin off, once, at the end */
    bool source_is_shard;       /* one master of a cluster source */
    unsigned rate_share;        /* the rate limits are shared by this many jobs (0: 1) */
    bool wrote;                 /* the job wrote to the destination */
    _Atomic bool snapshot_done; /* its snapshot is applied (or it resumed): two-way's start */
    const char *source_name;
    int input_fd;
    bool input_is_socket;
    uint8_t *initial;
    size_t initial_len;
    int rdb_version;
    uint64_t rdb_len; /* UINT64_MAX when unknown */
    const char *eof_mark;
    size_t eof_mark_len;
    bool use_restore;
    struct proxy_probe proxy; /* a proxy destination: what its probes found */
    uint64_t stream_start;    /* the FULLRESYNC offset */
    bool is_replay;           /* the input is a replay's pipe: the snapshot, then the stream */
    /* replay: called once the workers run, and after they ended */
    void (*on_start)(struct job *job, void *ctx);
    void (*on_end)(void *ctx);
    void *hook_ctx;
    uint64_t applied_at_end; /* the applied offset when the workers ended */
    /* checkpoints (CHECKPOINTS.md): the job's records, how it starts */
    char job_id[CHECKPOINT_JOB_MAX];
    bool cp_on;
    const char *cp_file; /* --checkpoint file:PATH read (a proxy): checkpoint_file.h */
    char drop_prefix[CHECKPOINT_KEY_MAX]; /* two-way: the other direction's records (two_way.h) */
    bool discard_snapshot;                /* two-way reverse: the snapshot is read, not written */
    struct two_way_conflicts *conflicts;  /* both directions here: shared (two_way.h) */
    int conflict_side;                    /* 0: forward (A's writes), 1: reverse (B's) */
    struct checkpoint cp;
    enum checkpoint_start start;
    struct checkpoint_state cps;
    bool resumed;                     /* +CONTINUE: the stream only */
    const struct endpoint *source_ep; /* for reconnects (NULL: a file or a replay) */
    bool dest_lost; /* the job ended on a lost destination link, resumable (sync_recover) */
    bool dest_lost_at_start;   /* ... before its workers ran: sync_recover starts it again */
    uint64_t backlog_bytes;    /* the source's repl-backlog-size (0: not known) */
    long long *link_ids;       /* the destination links' CLIENT IDs, per node and worker */
    struct endpoint *link_eps; /* their nodes */
    unsigned link_nodes;
    unsigned shard_slot;          /* a cluster source's master: the first slot it served */
    const struct endpoint *seeds; /* ... and every node of that cluster, to find it again */
    size_t nseeds;
    char replid[SOURCE_REPLID_LEN + 1]; /* the stream's */
};

/* The db map and lanes over rc->nodes (dest_route.h), and the node of the
 * RESTORE probe's key. 0, or -1 with err. */
int sync_route_init(struct run_ctx *rc, struct rs_error *err);

/* Finds the destination's nodes (dest_nodes.h) and its db map, checks
 * every node, and leaves tcl open on the node the RESTORE probe's key
 * belongs to (rc->probe_node), for that probe once the RDB version is known
 * (rc->rdb_version). Free rc->nodes with dest_nodes_deinit either way.
 * Returns 0, or the exit code after saying why (1, or 2 for bad usage). */
int sync_prepare_target(struct run_ctx *rc, struct control_link *tcl);

/* The RDB version in a snapshot's first n bytes ("REDIS" or "VALKEY", then
 * its digits): 0 with *version, or -1 when they are no RDB header. */
int sync_parse_header_version(const uint8_t *p, size_t n, int *version);

/* Whether the destination takes a RESTORE payload of this RDB version: tries
 * one on a probe key, then deletes it. 1 yes, 0 no, -1 the destination cannot
 * be written at all, -2 the link to it was lost (either said on stderr). */
int sync_probe_restore(struct control_link *cl, int rdb_version, const struct endpoint *ep);

/* Runs the workers over rc's input until the end, a stop or a failure, and
 * reports (stderr). Returns the exit code; rc->dest_lost, applied_at_end and
 * wrote say how the job ended, and rc->input_fd is the input at the end (a
 * reconnect may have swapped it: the caller closes it). */
int sync_run_job(struct run_ctx *rc);

/* From the source link scl (open, to one source node) onwards: the
 * handshake, the RDB header, the RESTORE probe on tcl, then the job. Closes
 * scl and tcl. initial: SYNC_INITIAL_MAX bytes of the caller's. */
int sync_from(struct run_ctx *r, struct control_link *scl, struct control_link *tcl,
              const struct endpoint *source, uint8_t *initial);

/* SIGINT and SIGTERM caught (the first a clean stop, the second at once),
 * SIGPIPE ignored. */
void sync_install_signals(void);

/* True once a signal came or another job of a cluster source failed: a job
 * that waits (for its destination, for its checkpoints) gives up. */
bool sync_is_stopping(void);

/* The last signal caught (SIGINT, SIGTERM), 0 for none. */
int sync_signal_caught(void);

/* How many signals came (the second stops at once). */
int sync_signal_count(void);

/* A clean stop took the expiry margin off (the caller's remove_margin):
 * the job's w record says so, so that a resume puts it back. */
void sync_record_margin_off(struct run_ctx *rc);

#endif
