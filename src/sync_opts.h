/* sync_opts.h - the options of `ringsync sync`, `restore` and `replay`:
 * their values, their defaults and bounds, --help. */
#ifndef RS_SYNC_OPTS_H
#define RS_SYNC_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dest_nodes.h"
#include "key_filter.h"
#include "rate_limit.h"

enum nonempty_policy { NONEMPTY_REFUSE, NONEMPTY_KEEP, NONEMPTY_FLUSH };
enum sync_mode { MODE_SYNC, MODE_RESTORE, MODE_REPLAY };

struct sync_opts {
    const char *source_uri;
    const char *target_uri;
    const char *file; /* restore: the RDB file; replay: the capture's directory */
    unsigned workers;
    int nonempty;
    bool restore_never;
    int listening_port;
    int timeout_ms;
    bool quiet;
    bool snapshot_only;
    bool forward_publish;
    bool skip_errors;
    double retry_timeout_s; /* --target-retry-timeout: 0 waits forever */
    uint64_t max_memory;
    const char *spill_dir;
    double speed;             /* replay: 1 the recorded pace, N times faster, 0 max */
    const char *json_path;    /* replay: the report as JSON */
    int64_t expiry_margin_ms; /* expiries written this much later while following */
    bool expiry_margin_given;
    enum dest_nodes_mode target_mode;      /* --target-mode */
    unsigned proxy_connections;            /* --proxy-connections, 0: the default (4) */
    bool proxy_tag;                        /* --proxy-hash-tag {} */
    const char *relay_listen;              /* --relay-listen HOST:PORT (relay.h), NULL: default */
    struct rate_limit_spec snapshot_limit; /* --snapshot-rate-limit (or --rate-limit) */
    struct rate_limit_spec stream_limit;   /* --stream-rate-limit (or --rate-limit) */
    const char *heartbeat_key;             /* --heartbeat-key (heartbeat.h), NULL: none */
    const char *db_map;                    /* --db-map, NULL: the default map */
    const char *db_prefix;                 /* --db-prefix's pattern, NULL: none */
    bool db_unmapped_skip;                 /* --db-unmapped skip */
    bool cross_slot_skip;                  /* --cross-slot skip */
    bool checkpoint; /* --checkpoint target (sync's default): CHECKPOINTS.md */
    bool checkpoint_given;
    const char *direction;         /* --direction forward|reverse (two_way.h), or NULL */
    bool bidirectional;            /* --topology bidirectional: both directions here */
    int64_t conflict_window_ms;    /* --conflict-window-ms: two writes of a key this close */
    int conflict_policy;           /* --conflict: two_way.h enum two_way_policy */
    const char *checkpoint_file;   /* --checkpoint file:PATH (a proxy): checkpoint_file.h */
    const char *job_id;            /* --job-id, NULL: the source as given */
    bool resync_on_lost_backlog;   /* --resync-on-lost-backlog */
    double source_timeout_s;       /* --source-timeout: a silent source link is lost */
    double source_retry_timeout_s; /* --source-retry-timeout: reconnecting gives up (0 never) */
    bool source_given;
    const char *status_addr;  /* --status-addr HOST:PORT or none (status_server.h) */
    double cutover_lag_ms;    /* --cutover-lag-ms: ready_for_cutover's lag threshold */
    struct key_filter filter; /* --filter-key-prefix, --block-key-prefix, --filter-db,
                                 --block-command (key_filter.h); all zero: none */
};

/* Parses argv into o (zeroed first, then the defaults). Returns 0; -1 after
 * printing --help (exit 0); 2 after saying what is wrong (bad usage). */
int sync_opts_parse(int argc, char **argv, enum sync_mode mode, struct sync_opts *o);

/* Says the value of each of mode's options in o (after sync_opts_parse,
 * defaults included) to emit, as its long option's name and the text the
 * option takes ("workers", "3"); a value not set is left out. config check's. */
void sync_opts_describe(const struct sync_opts *o, enum sync_mode mode,
                        void (*emit)(void *ctx, const char *option, const char *value), void *ctx);

/* The usage text of mode's command on f. */
void sync_opts_usage(FILE *f, enum sync_mode mode);

#endif
