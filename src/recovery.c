/* recovery.c - a `ringsync sync` job taken up again from its checkpoints
 * (see recovery.h). */
#include "recovery.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "checkpoint.h"
#include "cluster_topology.h"
#include "control_link.h"
#include "dest_nodes.h"
#include "expiry_margin.h"
#include "log.h"
#include "rs_error.h"
#include "sync_opts.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------ resuming a job */

int sync_lost_backlog(struct run_ctx *r, const struct endpoint *source,
                      const struct source_handshake_result *hr)
{
    const struct sync_opts *o = r->o;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double ago = ((double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6 - (double)r->cps.at_ms) / 1e3;
    uint64_t gap = (uint64_t)hr->offset > r->cps.w ? (uint64_t)hr->offset - r->cps.w : 0;
    double rate = ago > 0 ? (double)gap / ago : 0;
    bool same = strcmp(hr->replid, r->cps.replid) == 0;
    char what[1024];
    snprintf(what, sizeof(what),
             "source %s cannot continue job %s from offset %" PRIu64 " of replid %s: it answered "
             "+FULLRESYNC (replid %s, offset %" PRId64 "): %s; %.1f MB were written since the "
             "checkpoint of %.0f s ago (%.2f MB/s)",
             source->name, r->job_id, r->cps.w + 1, r->cps.replid, hr->replid, hr->offset,
             same ? "its backlog no longer holds that offset"
                  : "its replication history changed (a restart without its data, or a failover "
                    "beyond replid2)",
             (double)gap / 1e6, ago, rate / 1e6);
    if (!o->resync_on_lost_backlog) {
        rs_log("%s. To resume after a stop this long, the source's repl-backlog-size must hold "
               "what it writes meanwhile: at least %.0f MB (the writes since the checkpoint), "
               "%.0f MB for every minute stopped at that rate. Pass --resync-on-lost-backlog to "
               "flush the destination and sync anew",
               what, (double)gap / 1e6 + 1, rate * 60 / 1e6 + 1);
        return 1;
    }
    if (r->nodes->is_proxy) { /* no FLUSHALL through it: the snapshot overwrites */
        rs_log("%s: syncing anew over what the proxy's servers hold (--resync-on-lost-backlog; "
               "a proxy cannot be flushed, so keys the source deleted meanwhile stay)",
               what);
        r->start = CHECKPOINT_START_REDO;
        snprintf(r->cps.phase, sizeof(r->cps.phase), "%s", CHECKPOINT_FULL_KEEP);
        return 0;
    }
    rs_log("%s: flushing the destination and syncing anew (--resync-on-lost-backlog)", what);
    struct rs_error err = {0};
    if (checkpoint_flush(r->nodes, o->timeout_ms, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    r->start = CHECKPOINT_START_REDO; /* flushed: a full sync as on an empty destination */
    snprintf(r->cps.phase, sizeof(r->cps.phase), "%s", CHECKPOINT_FULL);
    return 0;
}

int sync_margin_again(struct run_ctx *r)
{
    const struct sync_opts *o = r->o;
    for (unsigned i = 0; i < r->nodes->nnodes; i++) {
        if (!dest_nodes_serves(r->nodes, i))
            continue;
        struct control_link cl = {0};
        struct rs_error err = {0};
        uint64_t n = 0;
        int rc = control_link_open(&cl, &r->nodes->eps[i], o->timeout_ms, &err);
        if (rc == 0)
            rc = expiry_margin_remove(&cl, -o->expiry_margin_ms, &n, &err);
        control_link_close(&cl);
        if (rc < 0) {
            rs_log("cannot put the expiry margin back on the expiries of destination %s: %s",
                   r->nodes->eps[i].name, err.msg);
            /* lost before the workers ran: sync_recover starts the job again */
            r->dest_lost = r->dest_lost_at_start = err.code == RS_E_TRUNCATED;
            return 1;
        }
        if (n > 0 && !o->quiet)
            rs_log("expiries of %" PRIu64 " keys of destination %s written %" PRId64
                   " s later again (--expiry-margin) while the job follows",
                   n, r->nodes->eps[i].name, o->expiry_margin_ms / 1000);
    }
    return 0;
}

/* A cluster destination's nodes found again (dest_nodes_open), through the
 * target or any node it had (a master may be gone, its replica promoted):
 * r->nodes and the route are replaced. 0, or -1 with err. */
static int cluster_again(struct run_ctx *r, struct rs_error *err)
{
    const struct sync_opts *o = r->o;
    const struct cluster_topology *t = &r->nodes->topo;
    size_t nseeds = 1;
    for (size_t i = 0; i < t->nmasters; i++)
        nseeds += 1 + t->masters[i].nreplicas;
    struct endpoint *seeds = calloc(nseeds, sizeof(*seeds));
    if (seeds == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
        return -1;
    }
    size_t n = 0;
    seeds[n++] = r->target;
    for (size_t i = 0; i < t->nmasters; i++)
        for (size_t k = 0; k <= t->masters[i].nreplicas; k++) {
            const struct cluster_node *nd =
                k == 0 ? &t->masters[i].node : &t->masters[i].replicas[k - 1];
            seeds[n] = r->target;
            snprintf(seeds[n].host, sizeof(seeds[n].host), "%s", nd->host);
            seeds[n].port = nd->port;
            snprintf(seeds[n].name, sizeof(seeds[n].name), "%s", nd->name);
            n++;
        }
    int rc = -1;
    for (size_t i = 0; i < n && rc < 0; i++) {
        struct dest_nodes nd = {0};
        struct dest_nodes_opts no = {.mode = DEST_NODES_CLUSTER, .timeout_ms = o->timeout_ms};
        if (dest_nodes_open(&nd, &seeds[i], &no, err) < 0) {
            dest_nodes_deinit(&nd);
            continue;
        }
        dest_nodes_deinit(r->nodes);
        *r->nodes = nd;
        rc = sync_route_init(r, err);
    }
    free(seeds);
    return rc;
}

/* Whether the node at ep answers PING with something else than an error
 * (-LOADING ...); else err says what it did. */
static bool node_answers(const struct run_ctx *r, const struct endpoint *ep, struct rs_error *err)
{
    struct control_link cl = {0};
    bool ok = control_link_open(&cl, ep, r->o->timeout_ms, err) == 0;
    if (ok) {
        struct control_reply rep = {0};
        ok = control_link_commandv(&cl, &rep, err, "PING", NULL) == 0 &&
             rep.r->type != REDIS_REPLY_ERROR;
        if (!ok && rep.r != NULL)
            snprintf(err->msg, sizeof(err->msg), "%.100s answers %.100s", cl.name, rep.r->str);
        control_reply_free(&rep);
    }
    control_link_close(&cl);
    return ok;
}

/* The destination's nodes answer and are ready again: 0; 1 after
 * --target-retry-timeout (or a signal), saying so. Nodes not found yet (a
 * start whose dest_nodes_open failed): the target itself. */
static int wait_destination(struct run_ctx *r, double t0)
{
    const struct sync_opts *o = r->o;
    int backoff_ms = 100;
    for (;;) {
        struct rs_error err = {0};
        bool ok = true;
        if (r->nodes->is_cluster) /* a failover or a reshard since: its masters now */
            ok = cluster_again(r, &err) == 0;
        else if (r->nodes->nnodes == 0)
            ok = node_answers(r, &r->target, &err);
        for (unsigned i = 0; i < r->nodes->nnodes && ok; i++)
            if (dest_nodes_serves(r->nodes, i))
                ok = node_answers(r, &r->nodes->eps[i], &err);
        if (ok)
            return 0;
        if (sync_is_stopping() || (o->retry_timeout_s > 0 && now_s() - t0 > o->retry_timeout_s)) {
            rs_log("the destination did not come back within %.0f s (--target-retry-timeout): "
                   "%s; the same command line resumes the job from its checkpoints",
                   now_s() - t0, err.msg);
            return 1;
        }
        struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
    }
}

/* ------------------------------------------- a destination lost at the start */

/* Whether the last peer the calling thread's control links lost since
 * before (control_link_last_loss) was the destination's: a node of it, not
 * the source (which dest_check reads too, and whose loss it only warns of). */
static bool dest_lost_since(const struct run_ctx *r, const struct control_link_loss *before)
{
    struct control_link_loss now;
    control_link_last_loss(&now);
    return now.count != before->count &&
           (r->source_name == NULL || strcmp(now.name, r->source_name) != 0);
}

/* What sync_prepare_target found (the nodes, the checkpoints read) is
 * forgotten, so that it runs again from the start. */
static void forget_target(struct run_ctx *r)
{
    dest_nodes_deinit(r->nodes);
    if (r->cp_on)
        checkpoint_deinit(&r->cp);
    r->cp_on = false;
    checkpoint_state_free(&r->cps);
    memset(&r->cps, 0, sizeof(r->cps));
    r->start = CHECKPOINT_START_NEW;
}

/* sync_start_target's loop; reached: the destination answered an earlier
 * start, t0: when it was lost (0: not yet). Bounded by --target-retry-timeout
 * from t0 even while the destination answers PING at once (a step that
 * keeps losing its link, a timeout on a slow command), with a pause that
 * doubles between the starts. */
static int start_target(struct run_ctx *r, struct control_link *tcl, bool reached, double t0)
{
    const struct sync_opts *o = r->o;
    int pause_ms = 100;
    for (;;) {
        struct control_link_loss before;
        control_link_last_loss(&before);
        int status = sync_prepare_target(r, tcl);
        if (status == 0)
            return 0;
        control_link_close(tcl);
        reached |= r->nodes->nnodes > 0; /* dest_nodes_open answered: the first contact */
        if (status != 1 || !reached || !dest_lost_since(r, &before) || sync_is_stopping())
            return status;
        if (t0 == 0) {
            t0 = now_s();
            rs_log("destination %s lost while job %s started: waiting for it (--target-retry-"
                   "timeout), then starting again",
                   r->target.name, r->job_id);
        } else if (o->retry_timeout_s > 0 && now_s() - t0 > o->retry_timeout_s) {
            rs_log("destination %s was lost again and again for %.0f s (--target-retry-timeout) "
                   "while job %s started: giving up",
                   r->target.name, now_s() - t0, r->job_id);
            return 1;
        }
        if (wait_destination(r, t0) != 0)
            return 1;
        struct timespec ts = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        pause_ms = pause_ms * 2 > 5000 ? 5000 : pause_ms * 2;
        rs_log("destination %s back after %.2f s: starting job %s again", r->target.name,
               now_s() - t0, r->job_id);
        forget_target(r);
    }
}

int sync_start_target(struct run_ctx *r, struct control_link *tcl)
{
    return start_target(r, tcl, false, 0);
}

/* CLIENT KILL what the destination still has of the links of the run that
 * ended: commands they sent and the server has not read yet then never run
 * (their links were closed with RST too, worker_free). Best effort. */
static void kill_old_links(struct run_ctx *r)
{
    for (unsigned n = 0; r->link_ids != NULL && n < r->link_nodes; n++)
        dest_nodes_kill_clients(&r->link_eps[n], r->link_ids + (size_t)n * r->o->workers,
                                r->o->workers, r->o->timeout_ms);
}

/* The source could not be opened while the job is taken up again: it was
 * reached before, so it is waited for as a reconnect waits, up to
 * --source-retry-timeout from *since (set on the first call). 0 after a
 * pause (try again), 1 when that time has passed, saying so. */
static int source_pause(const struct run_ctx *r, const struct endpoint *source, double *since)
{
    double limit = r->o->source_retry_timeout_s;
    if (*since == 0)
        *since = now_s();
    if (limit > 0 && now_s() - *since > limit) {
        rs_log("source %s did not come back within %.0f s (--source-retry-timeout)", source->name,
               now_s() - *since);
        return 1;
    }
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    return 0;
}

int sync_recover(struct run_ctx *r, const struct endpoint *source, uint8_t *initial, int status)
{
    const struct sync_opts *o = r->o;
    double t0 = 0, source_t0 = 0;
    while (status != 0 && r->dest_lost && !sync_is_stopping()) {
        bool at_start = r->dest_lost_at_start;
        if (t0 == 0) {
            t0 = now_s();
            if (at_start)
                rs_log("destination %s lost while job %s started: waiting for it "
                       "(--target-retry-timeout), then starting again",
                       r->target.name, r->job_id);
            else
                rs_log("destination lost: waiting for it, then resuming job %s from its "
                       "checkpoints",
                       r->job_id);
        }
        kill_old_links(r); /* nothing sent before the loss may run after the records are read */
        if (wait_destination(r, t0) != 0)
            return status;
        kill_old_links(r);
        struct rs_error err = {0};
        struct control_link scl = {0}, tcl = {0};
        if (at_start) {
            /* the workers never ran: the start again, checks and all (the
             * destination may have come back with other keys, or none) */
            forget_target(r);
            int st = start_target(r, &tcl, true, t0);
            if (st != 0)
                return st;
        } else {
            checkpoint_state_free(&r->cps);
            free(r->cp.skip);
            r->cp.skip = NULL;
            if (checkpoint_start(r->nodes, &r->cp, o->timeout_ms, o->quiet, &r->start, &r->cps,
                                 &err) < 0) {
                /* a cluster still settling a failover answers CLUSTERDOWN: wait on */
                if (o->retry_timeout_s > 0 && now_s() - t0 > o->retry_timeout_s) {
                    rs_log("cannot read the checkpoints of job %s: %s", r->job_id, err.msg);
                    return 1;
                }
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
            if (control_link_open(&tcl, &r->nodes->eps[r->probe_node], o->timeout_ms, &err) < 0) {
                rs_log("%s", err.msg);
                continue; /* gone again: wait again */
            }
        }
        if (control_link_open(&scl, source, o->timeout_ms, &err) < 0) {
            rs_log("%s", err.msg);
            control_link_close(&tcl);
            if (source_pause(r, source, &source_t0) != 0)
                return status;
            continue;
        }
        r->dest_lost = r->dest_lost_at_start = false;
        r->resumed = false;
        if (at_start)
            rs_log("destination %s back after %.2f s: starting job %s again", r->target.name,
                   now_s() - t0, r->job_id);
        else
            rs_log("destination back after %.2f s: resuming job %s", now_s() - t0, r->job_id);
        t0 = source_t0 = 0;
        status = sync_from(r, &scl, &tcl, source, initial);
    }
    return status;
}

/* -------------------------------------------- the source's backlog size */

void sync_backlog_check(const struct run_ctx *rc, struct backlog_watch *bw, uint64_t received)
{
    if (bw->done || rc->backlog_bytes == 0)
        return;
    double t = now_s();
    if (bw->t0 == 0) {
        bw->t0 = t;
        bw->r0 = received;
        return;
    }
    if (t - bw->t0 < BACKLOG_WATCH_S)
        return;
    bw->done = true;
    double rate = (double)(received - bw->r0) / (t - bw->t0);
    if (rate <= 0 || (double)rc->backlog_bytes / rate >= 60)
        return;
    rs_log("warning: source %s writes %.2f MB/s and its repl-backlog-size (%.1f MB) holds %.0f s "
           "of that: a stop or a lost link longer than that cannot resume without a full sync; "
           "raise it (CONFIG SET repl-backlog-size) to at least %.0f MB for a minute, more for "
           "longer stops",
           rc->source_name, rate / 1e6, (double)rc->backlog_bytes / 1e6,
           (double)rc->backlog_bytes / rate, rate * 60 / 1e6 + 1);
}
