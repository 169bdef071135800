/* source_feed.h - the input side of a job, run by the worker that owns the
 * source (worker.h's struct worker_input): the snapshot's framing ($<len>
 * or the diskless EOF mark) into the RDB decoder, then the command stream
 * into the router; the applied offset (DESIGN.md §3) and what the source
 * is told of it (REPLCONF ACK, keepalives while the snapshot is applied).
 *
 *   bytes --> snapshot framing --> rdb_decoder --> snapshot_writer --+
 *         \-> (after the snapshot) router (the stream) -------------+--> batches
 *   tick: ACK <applied offset>, answers to GETACK, keepalive newlines
 *
 * Threads: the worker with the input calls every function but
 * source_feed_applied, which the main thread may call once the workers
 * are joined (and source_feed_on_read, which worker_start calls for the
 * initial bytes before the worker's thread starts). What the status reads
 * (the lag, the bytes read) is published in the job's atomics each tick.
 */
#ifndef RS_SOURCE_FEED_H
#define RS_SOURCE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lag_clock.h"
#include "source_link.h"

struct job;
struct rdb_decoder;
struct router;
struct batch_writer;
struct snapshot_writer;
struct checkpoint;
struct dest_route;
struct worker_input;

/* Caller-owned; the caller sets the fields up to `sw` (the rest start 0). */
struct source_feed {
    struct job *job;
    struct rdb_decoder *dec;
    const char *source_name;
    bool has_len;
    uint64_t left; /* with has_len: RDB bytes still to come */
    char mark[SOURCE_EOF_MARK_LEN];
    size_t mark_len, mark_seen;
    bool rdb_done;
    int source_fd; /* for keepalives; -1 for a file */
    /* the command stream after the snapshot */
    bool follow; /* go on with the stream (sync without --snapshot-only) */
    bool in_stream;
    struct router *router;
    struct batch_writer *bw;
    uint64_t stream_start; /* the FULLRESYNC offset */
    uint64_t barrier_seq;  /* batches from here on are the stream's */
    uint64_t last_ack;
    bool getack_pending; /* REPLCONF GETACK came: ACK as soon as all before it is applied */
    uint64_t getack_at;
    uint64_t stream_bytes;
    double last_ack_at;
    double t0;
    const struct snapshot_writer *sw;
    /* checkpoints (CHECKPOINTS.md), or NULL: the w record every second
     * while the applied offset moves, and the last one at a clean stop */
    const struct checkpoint *cp;
    const struct dest_route *route;
    bool cp_stream;      /* the w record says "stream" already (a resume) */
    uint64_t cp_written; /* the last W written */
    double cp_at;
    bool drain_written; /* job->drain: the last record is written */
    double drain_seen;  /* when this thread first saw job->drain (0: not yet) */
    /* rate limits (rate_limit.h), or NULL: the phase's own goes in *limit_slot
     * (the worker's input), and what each feed took is charged to it */
    struct rate_limit *limit_snapshot, *limit_stream;
    struct rate_limit **limit_slot;
    uint64_t limit_ops; /* keys read + stream commands routed, last charged */
    /* the heartbeat routed and not applied yet (heartbeat.h) */
    bool hb_pending;
    int64_t hb_ms;
    uint64_t hb_end;
    bool drain_said; /* the slow stop is said */
    /* or checkpoints in a file (checkpoint_file.h): W = the applied offset,
     * every second while it moves, and at a clean stop */
    const char *cp_file;
    const char *cp_job, *cp_target;
    /* reconnects (source_reconnect.h), on a live source: */
    struct worker_input *input; /* its last_read and last_errno */
    double stall_s;             /* --source-timeout: silent this long, the link is lost */
    bool stall_said;
    char swap_replid[SOURCE_REPLID_LEN + 1]; /* set before the swap: the stream's replid */
    char *cp_replid;                         /* the checkpoints' copy, updated at the swap */
    /* the lag in time (lag_clock.h), published in the job each tick */
    struct lag_clock lag;   /* positions: input bytes, the snapshot's included */
    uint64_t in_pos;        /* input bytes fed */
    uint64_t stream_in_pos; /* the input position where the stream begins */
};

/* A resume (+CONTINUE): the stream from f->stream_start, no snapshot. Call
 * before the workers start. */
void source_feed_resume(struct source_feed *f);

/* struct worker_input's callbacks, with ctx = the source_feed. */
int source_feed_feed(void *ctx, const uint8_t *p, size_t n, size_t *used);
int source_feed_at_eof(void *ctx);
void source_feed_tick(void *ctx);
bool source_feed_is_blocked(void *ctx);
void source_feed_on_swap(void *ctx, int fd);
void source_feed_on_read(void *ctx, size_t n);

/* The applied offset: 0 until every snapshot command has its reply, then
 * the highest offset all of whose commands the destination acknowledged.
 * Says "snapshot applied" once, when it first is. */
uint64_t source_feed_applied(struct source_feed *f);

#endif
