/* source_feed.c - the snapshot, then the stream, into the write path; the
 * applied offset and the ACKs (see source_feed.h). */
#include "source_feed.h"

#include <inttypes.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "batch.h"
#include "checkpoint.h"
#include "checkpoint_file.h"
#include "cluster_redirect.h"
#include "dest_route.h"
#include "heartbeat.h"
#include "job.h"
#include "log.h"
#include "rdb_decoder.h"
#include "router.h"
#include "rate_limit.h"
#include "rs_error.h"
#include "snapshot_writer.h"
#include "worker.h"

#define SOURCE_FEED_ACK_MIN_S   0.00025 /* the least time between two ACKs of a moving offset */
#define SOURCE_FEED_CP_S        1.0     /* the w record is written this often while W moves */
#define SOURCE_FEED_DRAIN_SAY_S 5       /* a clean stop slower than this says what it waits for */

static void checkpoint_tick(struct source_feed *f, uint64_t w);
static void checkpoint_file_tick(struct source_feed *f, uint64_t w);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_ack(struct source_feed *f, uint64_t offset)
{
    f->last_ack = offset;
    f->last_ack_at = now_s();
    if (f->source_fd < 0)
        return; /* a replay: nobody to tell */
    source_link_send_ack(f->source_fd, offset);
}

/* The applied offset: 0 until the snapshot is applied (DESIGN.md §3). */
uint64_t source_feed_applied(struct source_feed *f)
{
    struct cluster_redirect *h = f->job->redirect;
    if (!atomic_load_explicit(&f->job->snapshot_applied, memory_order_relaxed)) {
        if (batch_writer_oldest_seq(f->bw) < f->barrier_seq ||
            (h != NULL && !cluster_redirect_idle(h)))
            return 0;
        atomic_store(&f->job->snapshot_applied, 1);
        struct snapshot_writer_stats st;
        snapshot_writer_stats(f->sw, &st);
        rs_log("snapshot applied after %.2f s: %" PRIu64 " keys written (%" PRIu64
               " with RESTORE, %" PRIu64 " with native commands), %" PRIu64 " expired and %" PRIu64
               " empty skipped; following the writes of source %s from offset %" PRIu64,
               now_s() - f->t0, st.keys, st.restored, st.native, st.expired, st.empty,
               f->source_name, f->stream_start);
    }
    uint64_t w = batch_writer_applied(f->bw, router_routed(f->router));
    if (h != NULL) { /* commands sent again to another node are not applied yet */
        uint64_t floor = cluster_redirect_floor(h);
        if (floor < w)
            w = floor;
    }
    atomic_store_explicit(&f->job->stream_applied, w, memory_order_relaxed);
    return w;
}

static int feed_fail(struct source_feed *f, const struct rs_error *err)
{
    job_fail(f->job, "the snapshot from %s is not valid: %s error at offset %" PRIu64 ": %s",
             f->source_name, rs_error_code_name(err->code), err->offset, err->msg);
    return RS_ERR;
}

static int feed_input(struct source_feed *f, const uint8_t *p, size_t n, size_t *used);

/* Charges the limit in effect what the last feed took (keys of the
 * snapshot, commands of the stream, input bytes), then puts the phase's
 * own in effect (rate_limit.h). */
static void charge(struct source_feed *f, size_t bytes)
{
    uint64_t ops = atomic_load_explicit(&f->job->keys_read, memory_order_relaxed) +
                   (f->router != NULL ? router_commands(f->router) : 0);
    if (*f->limit_slot != NULL)
        rate_limit_take(*f->limit_slot, ops - f->limit_ops, bytes);
    f->limit_ops = ops;
    *f->limit_slot = f->in_stream ? f->limit_stream : f->limit_snapshot;
}

int source_feed_feed(void *ctx, const uint8_t *p, size_t n, size_t *used)
{
    struct source_feed *f = ctx;
    int rc = feed_input(f, p, n, used);
    f->in_pos += *used;
    if (f->limit_slot != NULL)
        charge(f, *used);
    return rc;
}

void source_feed_on_read(void *ctx, size_t n)
{
    struct source_feed *f = ctx;
    lag_clock_read(&f->lag, n, lag_clock_now_ns());
}

/* --heartbeat-key: once the destination applied the heartbeat routed, the
 * lag a write on the source saw (heartbeat.h), for the status. */
static void heartbeat_seen(struct source_feed *f, uint64_t w)
{
    if (!f->hb_pending && f->router != NULL &&
        router_take_heartbeat(f->router, &f->hb_ms, &f->hb_end))
        f->hb_pending = true;
    if (!f->hb_pending || w < f->hb_end)
        return;
    int64_t now = heartbeat_now_ms();
    atomic_store_explicit(&f->job->heartbeat_lag_ms, now > f->hb_ms ? now - f->hb_ms : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&f->job->heartbeat_applied_ms, now, memory_order_relaxed);
    f->hb_pending = false;
}

/* The lag for the status (job.h): what was read of the stream, and when
 * the oldest byte not applied (at w) arrived. */
static void lag_tick(struct source_feed *f, uint64_t w)
{
    if (!atomic_load_explicit(&f->job->snapshot_applied, memory_order_relaxed) ||
        w < f->stream_start)
        return;
    int64_t since = lag_clock_applied(&f->lag, f->stream_in_pos + (w - f->stream_start));
    atomic_store_explicit(&f->job->lag_since_ns, since, memory_order_relaxed);
    atomic_store_explicit(&f->job->stream_read,
                          f->stream_start + (f->lag.read_pos - f->stream_in_pos),
                          memory_order_relaxed);
}

static int feed_input(struct source_feed *f, const uint8_t *p, size_t n, size_t *used)
{
    size_t off = 0;
    *used = 0;
    if (f->in_stream) {
        int rc = n == 0 ? router_resume(f->router) : router_feed(f->router, p, n);
        *used = n;
        f->stream_bytes += n;
        atomic_store_explicit(&f->job->stream_received, f->stream_start + f->stream_bytes,
                              memory_order_relaxed);
        atomic_store_explicit(&f->job->stream_cmds, router_commands(f->router),
                              memory_order_relaxed);
        if (router_take_getack(f->router)) {
            f->getack_pending = true;
            f->getack_at = router_routed(f->router);
        }
        return rc == RS_OK ? RS_OK : RS_ERR;
    }
    if (n == 0)
        return RS_OK;
    if (!f->rdb_done) {
        size_t take = f->has_len && n > f->left ? (size_t)f->left : n;
        size_t u = 0;
        struct rs_error err = {0};
        int rc = rdb_decoder_feed(f->dec, p, take, &u, &err);
        if (rc == RS_ERR) {
            if (err.code == RS_E_CONSUMER)
                return RS_ERR; /* the writer said why */
            return feed_fail(f, &err);
        }
        atomic_fetch_add_explicit(&f->job->input_bytes, u, memory_order_relaxed);
        off = u;
        if (f->has_len)
            f->left -= u;
        if (rc == RS_DONE) {
            f->rdb_done = true;
            if (f->has_len && f->left != 0) {
                job_fail(f->job,
                         "the snapshot from %s ended %" PRIu64 " bytes before the length it "
                         "announced",
                         f->source_name, f->left);
                return RS_ERR;
            }
        } else if (f->has_len && f->left == 0) {
            rdb_decoder_finish(f->dec, &err);
            return feed_fail(f, &err);
        }
    }
    if (f->rdb_done) {
        while (off < n && f->mark_seen < f->mark_len) {
            if (p[off] != (uint8_t)f->mark[f->mark_seen]) {
                job_fail(f->job, "the diskless snapshot from %s is not followed by its EOF mark",
                         f->source_name);
                return RS_ERR;
            }
            off++;
            f->mark_seen++;
        }
        if (f->mark_seen == f->mark_len) {
            if (!f->follow) {
                *used = off;
                return RS_DONE;
            }
            /* The snapshot is in: the command stream follows. Its batches
             * come after every snapshot batch; the first ACK starts the
             * stream on a source that sent the snapshot diskless. */
            f->in_stream = true;
            batch_writer_publish(f->bw);
            batch_writer_set_offset(f->bw, f->stream_start); /* snapshot batches had 0 */
            batch_writer_stream_mode(f->bw); /* per-slot order by the router; offsets per reply */
            f->barrier_seq = batch_writer_next_seq(f->bw);
            f->stream_in_pos = f->in_pos + off;
            send_ack(f, 0);
            size_t u = 0;
            int rc = feed_input(f, p + off, n - off, &u);
            *used = off + u;
            return rc;
        }
    }
    *used = off;
    return RS_OK;
}

int source_feed_at_eof(void *ctx)
{
    struct source_feed *f = ctx;
    struct rs_error err = {0};
    if (f->source_fd < 0 && f->in_stream)
        return RS_DONE;     /* a replay's stream ends with its last whole command */
    if (f->source_fd < 0) { /* a file: the decoder says whether it was complete */
        if (rdb_decoder_finish(f->dec, &err) == RS_DONE && f->mark_seen == f->mark_len)
            return RS_DONE;
        return feed_fail(f, &err);
    }
    if (f->in_stream && f->input != NULL) {
        /* a replica reconnects: PSYNC from what it received (source_reconnect.h) */
        int e = f->input->last_errno;
        rs_log("source %s %s%s at offset %" PRIu64 " (applied %" PRIu64 "): reconnecting",
               f->source_name, e ? "link failed: " : "closed the connection", e ? strerror(e) : "",
               f->stream_start + f->stream_bytes, source_feed_applied(f));
        atomic_store(&f->job->source_lost, 1);
        return RS_OK;
    }
    if (f->in_stream)
        job_fail(f->job,
                 "source %s closed the connection (the stream was applied up to offset %" PRIu64
                 ")",
                 f->source_name, source_feed_applied(f));
    else
        job_fail(f->job, "source %s closed the connection after %" PRIu64 " bytes of the snapshot",
                 f->source_name, rdb_decoder_offset(f->dec));
    return RS_ERR;
}

/* While the snapshot is applied, a newline now and then keeps the source from
 * timing us out (a replica loading a snapshot does the same). */
void source_feed_tick(void *ctx)
{
    struct source_feed *f = ctx;
    if (f->source_fd < 0) {
        if (f->in_stream)
            lag_tick(f, source_feed_applied(f)); /* a replay measures latency with it */
        return;
    }
    if (!f->in_stream) {
        if (now_s() - f->last_ack_at >= 1.0) {
            (void)!send(f->source_fd, "\n", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            f->last_ack_at = now_s();
        }
        return;
    }
    /* REPLCONF ACK: at once when a GETACK is answered (everything before it
     * applied: WAIT counts us) and when everything received is applied (the
     * source's INFO then shows our true lag under a steady load); within a
     * quarter of a millisecond of the applied offset moving while we are
     * behind (at most 4,000 small sends a second); every second anyway. Called every loop
     * iteration; cheap when idle. */
    uint64_t w = source_feed_applied(f);
    lag_tick(f, w);
    heartbeat_seen(f, w);
    if (f->cp != NULL)
        checkpoint_tick(f, w);
    else if (f->cp_file != NULL)
        checkpoint_file_tick(f, w);
    if (f->input != NULL && f->stall_s > 0 && !f->stall_said &&
        !atomic_load_explicit(&f->job->source_lost, memory_order_relaxed) &&
        now_s() - f->input->last_read > f->stall_s) {
        /* nothing came, not even the source's PING: the link is as good as lost */
        rs_log("source %s sent nothing for %.0f s (--source-timeout): dropping its link",
               f->source_name, f->stall_s);
        f->stall_said = true;
        shutdown(f->source_fd, SHUT_RDWR); /* the read ends: at_eof reconnects */
        return;
    }
    if (f->getack_pending && w >= f->getack_at) {
        f->getack_pending = false;
        send_ack(f, w);
        return;
    }
    double since = now_s() - f->last_ack_at;
    /* Until the first stream byte, ACK every 100 ms: a source that sent the
     * snapshot diskless starts the stream on an ACK, and may miss one that
     * came before it finished its own bookkeeping. */
    bool drained = w == f->stream_start + f->stream_bytes;
    if ((w != f->last_ack && (drained || since >= SOURCE_FEED_ACK_MIN_S)) || since >= 1.0 ||
        (f->stream_bytes == 0 && since >= 0.1))
        send_ack(f, w);
}

bool source_feed_is_blocked(void *ctx)
{
    struct source_feed *f = ctx;
    if (f->in_stream && atomic_load_explicit(&f->job->drain, memory_order_relaxed))
        return true; /* a clean stop: nothing more is routed */
    return f->in_stream && router_is_blocked(f->router);
}

void source_feed_on_swap(void *ctx, int fd)
{
    struct source_feed *f = ctx;
    f->source_fd = fd;
    f->stall_said = false;
    atomic_fetch_add_explicit(&f->job->source_reconnects, 1, memory_order_relaxed);
    if (f->cp_replid != NULL)
        memcpy(f->cp_replid, f->swap_replid, sizeof(f->swap_replid));
    send_ack(f, f->last_ack); /* the source counts us as caught up to here again */
}

void source_feed_resume(struct source_feed *f)
{
    f->in_stream = true;
    f->cp_stream = true;
    f->cp_written = f->stream_start;
    atomic_store(&f->job->snapshot_applied, 1);
    batch_writer_set_offset(f->bw, f->stream_start);
    batch_writer_stream_mode(f->bw);
    f->barrier_seq = batch_writer_next_seq(f->bw);
}

/* How far the destination has applied data (not only records, PINGs or
 * dropped commands): a record is written only when this passed the last
 * one. W moving over nothing else writes none, so two directions of a
 * two-way job never answer each other's records with records of their own
 * (src/BIDIRECTIONAL.md §3.4), and an idle source's PINGs write nothing. */
static uint64_t applied_data(const struct source_feed *f, uint64_t w)
{
    uint64_t d = batch_writer_data_end(f->bw);
    return d < w ? d : w;
}

/* The w record at W (phase stream), through the batches: on lane 0, or on
 * a cluster the lane of the record's slot. */
static void write_w(struct source_feed *f, uint64_t w)
{
    char buf[CHECKPOINT_KEY_MAX + 256];
    RS_ASSERT(checkpoint_w_size(f->cp) <= sizeof(buf));
    char *end = checkpoint_put_w(f->cp, buf, w, router_db_at(f->router, w), CHECKPOINT_STREAM);
    if (batch_writer_aux(f->bw, dest_route_lane(f->route, f->cp->w_slot), buf,
                         (size_t)(end - buf)) != 0) {
        job_fail(f->job, "out of memory while writing a checkpoint");
        return;
    }
    f->cp_written = w;
    f->cp_at = now_s();
    f->cp_stream = true;
}

/* The file's line at W (applied: every command up to it is on the
 * destination), phase stream. */
static void write_file(struct source_feed *f, uint64_t w)
{
    struct rs_error err = {0};
    if (checkpoint_file_write(f->cp_file, f->cp_job, f->cp_target, f->cp_replid, w,
                              router_db_at(f->router, w), CHECKPOINT_STREAM, &err) < 0) {
        job_fail(f->job, "%s", err.msg);
        return;
    }
    f->cp_written = w;
    f->cp_at = now_s();
    f->cp_stream = true;
}

/* A clean stop waiting on the destination: said once after
 * SOURCE_FEED_DRAIN_SAY_S, quiet or not, with what it waits for (sync.c
 * stops at once after SYNC_DRAIN_S). Returns whether nothing is pending. */
static bool drain_idle(struct source_feed *f)
{
    struct job *job = f->job;
    unsigned batches = batch_writer_outstanding(f->bw);
    bool redirects = job->redirect != NULL && !cluster_redirect_idle(job->redirect);
    if (batches == 0 && !redirects)
        return true;
    double t = now_s();
    if (f->drain_seen == 0)
        f->drain_seen = t;
    if (!f->drain_said && t - f->drain_seen >= SOURCE_FEED_DRAIN_SAY_S) {
        f->drain_said = true;
        rs_log("stopping: after %d s the destination still has not acknowledged %u batches "
               "(applied up to source offset %" PRIu64 ")%s; waiting on",
               SOURCE_FEED_DRAIN_SAY_S, batches,
               batch_writer_applied(f->bw, atomic_load(&job->stream_received)),
               redirects ? ", and redirected commands are not yet re-sent" : "");
    }
    return false;
}

/* Checkpoints in a file, every tick while following: once the snapshot is
 * applied, then every second while the applied offset moves; at a clean
 * stop, once all that was routed is applied, the last one, and the job
 * stops. (An fsync a second on this thread: a few milliseconds.) */
static void checkpoint_file_tick(struct source_feed *f, uint64_t w)
{
    struct job *job = f->job;
    if (atomic_load_explicit(&job->drain, memory_order_relaxed)) {
        if (f->drain_written || !drain_idle(f))
            return;
        write_file(f, w);
        f->drain_written = true;
        atomic_store(&job->stop, 1);
        return;
    }
    if (!atomic_load_explicit(&job->snapshot_applied, memory_order_relaxed))
        return;
    if (!f->cp_stream ||
        (applied_data(f, w) > f->cp_written && now_s() - f->cp_at >= SOURCE_FEED_CP_S))
        write_file(f, w);
}

/* Checkpoints, every tick while following: the w record once the snapshot
 * is applied, then every second while W moves; at a clean stop, once all
 * that was routed is applied, the last one, and then the job stops. */
static void checkpoint_tick(struct source_feed *f, uint64_t w)
{
    struct job *job = f->job;
    if (atomic_load_explicit(&job->drain, memory_order_relaxed)) {
        if (!drain_idle(f))
            return;
        if (!f->drain_written) {
            write_w(f, w);
            f->drain_written = true;
            batch_writer_publish(f->bw);
        } else {
            atomic_store(&job->stop, 1); /* the last record is applied */
        }
        return;
    }
    if (!atomic_load_explicit(&job->snapshot_applied, memory_order_relaxed))
        return;
    /* never below a record the router wrote in a fence's transaction: a
     * w that goes back would make a resume run that fence again */
    uint64_t floor = router_w_written(f->router);
    if (floor > f->cp_written)
        f->cp_written = floor;
    if (!f->cp_stream ||
        (applied_data(f, w) > f->cp_written && now_s() - f->cp_at >= SOURCE_FEED_CP_S))
        write_w(f, w > f->cp_written ? w : f->cp_written);
}
