/* status_report.h - what `/status`, `/status.txt` and `/metrics` say (the
 * status server, status_server.h), built from a snapshot of a run's
 * counters: pure functions of a struct status_snapshot, so that every field
 * and metric is tested without HTTP or threads.
 *
 *   status_server (a thread) --copies counters--> struct status_snapshot
 *        --status_report_decide--> state, ready_for_cutover
 *        --status_report_json / _metrics / _text--> the body of a reply
 *
 * A run is one job per source shard (one for a standalone source, one per
 * master of a cluster source), each writing through its destination nodes.
 * Names of fields and metrics are documented in README.md ("Status and
 * metrics"); a change here is a change there.
 *
 * Threads: any; the functions only read the snapshot (decide writes it).
 */
#ifndef RS_STATUS_REPORT_H
#define RS_STATUS_REPORT_H

#include <stdbool.h>
#include <stdint.h>

struct json_out;

enum status_state {
    STATUS_CONNECTING = 0, /* before the snapshot streams, or resuming after a lost link */
    STATUS_FULL_SYNC,      /* the snapshot is being applied */
    STATUS_INCREMENTAL,    /* following the source's writes */
    STATUS_STOPPING,       /* a signal came: applying what was routed, the last checkpoint */
    STATUS_STOPPED,        /* ended cleanly */
    STATUS_FAILED,         /* ended on an error (the reason says which) */
};
#define STATUS_STATES 6

#define STATUS_REASON_MAX     1024
#define STATUS_NAME_MAX       300
#define STATUS_ERROR_WINDOW_S 60.0 /* ready_for_cutover wants no error this recent */

/* One destination node as one source shard's job writes to it (its links
 * over every worker, added up). Counters count from the process's start. */
struct status_node {
    char name[STATUS_NAME_MAX]; /* host:port */
    uint64_t sent;              /* commands fully sent */
    uint64_t acked;             /* replies received (applied) */
    uint64_t retried;           /* refused with BUSY, LOADING ... and sent again */
    uint64_t skipped;           /* refused and skipped (--on-error skip) */
    uint64_t moved, asked;      /* MOVED and ASK replies followed */
    uint64_t reconnects;        /* the job's links opened again after a lost destination */
};

struct status_shard {
    char name[STATUS_NAME_MAX]; /* the source node (host:port) */
    char replid[48];            /* the stream's replication id ("" before the handshake) */
    enum status_state state;
    char reason[STATUS_REASON_MAX]; /* failed: why; connecting after a loss: what was lost */
    uint64_t received;              /* source offset read from the source */
    uint64_t applied;               /* offset all of whose commands the destination applied */
    bool has_lag_ms;                /* the lag in time is known (following) */
    double lag_ms;                  /* now - arrival of the oldest byte not applied */
    bool has_heartbeat;             /* --heartbeat-key: one was applied */
    double heartbeat_lag_ms;        /* its lag (heartbeat.h) */
    double heartbeat_age_s;         /* since it was applied */
    uint64_t snapshot_bytes;        /* of the snapshot, read and decoded */
    uint64_t snapshot_total;        /* its size, UINT64_MAX when unknown (diskless) */
    uint64_t snapshot_keys;
    double snapshot_elapsed_s; /* since it began */
    uint64_t stream_commands;  /* stream commands routed */
    uint64_t source_reconnects;
    unsigned first_node, nnodes; /* its nodes: snapshot->nodes[first_node ..] */
};

struct status_snapshot {
    enum status_state state;        /* set by status_report_decide */
    char reason[STATUS_REASON_MAX]; /* failed: the first failed shard's reason */
    double time_s;                  /* Unix time of the snapshot */
    double uptime_s;
    struct status_shard *shards;
    unsigned nshards;
    struct status_node *nodes;
    unsigned nnodes;
    double ops_1s, ops_60s;   /* snapshot keys and stream commands per second, 1 and 60 s */
    uint64_t spill_bytes;     /* source bytes waiting (memory and spill file) */
    bool rate_limited;        /* a rate limit holds the job back now (rate_limit.h) */
    double rate_limit_held_s; /* time the rate limits held it back, in all */
    uint64_t rss_bytes;
    double cpu_s;            /* user + system, the whole process */
    uint64_t errors;         /* all errors so far (see last_error_age_s) */
    double last_error_age_s; /* since the errors count last moved; < 0: never */
    double cutover_lag_ms;   /* --cutover-lag-ms */
    bool ready_for_cutover;  /* set by status_report_decide */
    char not_ready[512];     /* ... and why not, for a person */
};

/* "connecting", "full_sync" ... */
const char *status_state_name(enum status_state s);

/* The snapshot's state from its shards' (failed > connecting > full_sync >
 * stopping > incremental; stopped only when all are; no shard: connecting),
 * its reason, and ready_for_cutover: incremental, every shard's lag in time
 * known and under cutover_lag_ms, and no error in the last
 * STATUS_ERROR_WINDOW_S (not_ready says what is missing). */
void status_report_decide(struct status_snapshot *s);

/* A shard's snapshot time left in seconds, or < 0 when unknown (size
 * unknown, nothing read yet, or done). */
double status_report_eta_s(const struct status_shard *sh);

/* The body of /status: one JSON object (README.md lists its fields). */
void status_report_json(const struct status_snapshot *s, struct json_out *o);

/* The body of /metrics: Prometheus text exposition format 0.0.4, every
 * metric with # HELP and # TYPE, names ringsync_*, labels shard and node. */
void status_report_metrics(const struct status_snapshot *s, struct json_out *o);

/* A few lines for a person (`ringsync status`). */
void status_report_text(const struct status_snapshot *s, struct json_out *o);

#endif
