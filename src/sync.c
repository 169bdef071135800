/* sync.c - `ringsync sync` (see sync.h), and the write path's stages that
 * restore and replay (restore_cmd.c) and the recovery code (recovery.c) run
 * too (sync_run.h).
 *
 *   parse options -> check the destination (empty? eviction?) -> open the input
 *   (PSYNC handshake, or the file) -> read the RDB header -> probe RESTORE ->
 *   connect one destination link per worker -> run the workers -> report
 */
#include "sync.h"
#include "sync_opts.h"
#include "sync_run.h"
#include "two_way.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "batch.h"
#include "checkpoint.h"
#include "checkpoint_file.h"
#include "cluster_redirect.h"
#include "cross_slot.h"
#include "control_link.h"
#include "crc64.h"
#include "dest_check.h"
#include "dest_nodes.h"
#include "dest_reply.h"
#include "dest_route.h"
#include "endpoint.h"
#include "expiry_margin.h"
#include "job.h"
#include "key_filter.h"
#include "log.h"
#include "rs_error.h"
#include "rdb_decoder.h"
#include "recovery.h"
#include "router.h"
#include "slot.h"
#include "snapshot_writer.h"
#include "source_feed.h"
#include "source_link.h"
#include "source_reconnect.h"
#include "spill.h"
#include "heartbeat.h"
#include "rate_limit.h"
#include "relay.h"
#include "status_server.h"
#include "worker.h"

#define SYNC_BATCHES_PER_WORKER 64
#define SYNC_DRAIN_S            30 /* a clean stop waits this long for the destination */

static volatile sig_atomic_t sync_signal;
static volatile sig_atomic_t sync_signals; /* how many: the second stops at once */
/* One job of a cluster source failed: the others stop (sync_cluster_source). */
static volatile sig_atomic_t sync_abort;

static void on_signal(int sig)
{
    sync_signal = sig;
    sync_signals++;
}

bool sync_is_stopping(void)
{
    return sync_signals || sync_abort;
}

int sync_signal_caught(void)
{
    return sync_signal;
}

int sync_signal_count(void)
{
    return sync_signals;
}

/* ---------------------------------------------------------------- logging */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ----------------------------------------------------------------- checks */

/* Waits while the destination answers -LOADING, -BUSY ... (dest_reply.h)
 * to a PING, as the link does for writes, up to --target-retry-timeout. */
static int wait_target_ready(struct control_link *cl, const struct sync_opts *o,
                             const struct endpoint *ep)
{
    double t0 = now_s();
    for (bool said = false;; said = true) {
        struct control_reply rep = {0};
        struct rs_error err = {0};
        if (control_link_commandv(cl, &rep, &err, "PING", NULL) < 0) {
            rs_log("%s", err.msg);
            return 1;
        }
        bool busy = rep.r->type == REDIS_REPLY_ERROR &&
                    dest_reply_classify(rep.r->str, rep.r->len, NULL, NULL) == DEST_REPLY_RETRY;
        if (busy && o->retry_timeout_s > 0 && now_s() - t0 > o->retry_timeout_s) {
            rs_log("destination %s still answers -%s after %.0f s (--target-retry-timeout)",
                   ep->name, rep.r->str, now_s() - t0);
            control_reply_free(&rep);
            return 1;
        }
        if (busy && !said)
            rs_log("destination %s answers -%s: waiting", ep->name, rep.r->str);
        else if (!busy && said)
            rs_log("destination %s is ready after %.2f s", ep->name, now_s() - t0);
        control_reply_free(&rep);
        if (!busy)
            return 0;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Refuses, keeps or flushes a destination (node) that already holds keys. */
static int check_target(struct control_link *cl, const struct sync_opts *o,
                        const struct endpoint *ep, bool cluster_node, bool ours)
{
    struct rs_error err = {0};
    if (wait_target_ready(cl, o, ep) != 0)
        return 1;
    struct endpoint source;
    struct dest_check_opts dco = {.timeout_ms = o->timeout_ms, .cluster_node = cluster_node};
    if (o->source_uri != NULL &&
        endpoint_parse(o->source_uri, "RINGSYNC_SOURCE_PASSWORD", &source, &err) == 0)
        dco.source = &source;
    if (dest_check_run(cl, ep, &dco) != 0) /* settings that would refuse the source's writes */
        return 1;
    uint64_t keys = 0;
    if (control_link_dbsize_all(cl, &keys, &err) < 0) {
        rs_log("cannot count the keys of destination %s: %s", ep->name, err.msg);
        return 1;
    }
    if (keys > 0 && ours) {
        rs_log("destination %s holds %" PRIu64 " keys: this job's own (its checkpoints say so)",
               ep->name, keys);
    } else if (keys > 0) {
        if (o->nonempty == NONEMPTY_REFUSE) {
            rs_log("destination %s already holds %" PRIu64
                   " keys; refusing to write into it (use --target-nonempty keep to overwrite "
                   "the source's keys and keep the others, or --target-nonempty flush to empty "
                   "it first)",
                   ep->name, keys);
            return 1;
        }
        if (o->nonempty == NONEMPTY_FLUSH) {
            struct control_reply rep = {0};
            if (control_link_commandv(cl, &rep, &err, "FLUSHALL", NULL) < 0 ||
                rep.r->type == REDIS_REPLY_ERROR) {
                rs_log("cannot flush destination %s: %s", ep->name, rep.r ? rep.r->str : err.msg);
                control_reply_free(&rep);
                return 1;
            }
            control_reply_free(&rep);
            rs_log("destination %s held %" PRIu64 " keys: flushed (--target-nonempty flush)",
                   ep->name, keys);
        } else {
            rs_log("destination %s holds %" PRIu64
                   " keys: keeping them, the source's keys overwrite theirs "
                   "(--target-nonempty keep)",
                   ep->name, keys);
        }
    }
    struct control_reply rep = {0};
    if (control_link_commandv(cl, &rep, &err, "CONFIG", "GET", "maxmemory-policy", NULL) == 0 &&
        rep.r->type == REDIS_REPLY_ARRAY && rep.r->elements == 2 &&
        rep.r->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(rep.r->element[1]->str, "noeviction") != 0)
        rs_log("warning: destination %s has maxmemory-policy %s: it may evict keys silently; "
               "noeviction is safe",
               ep->name, rep.r->element[1]->str);
    control_reply_free(&rep);
    return 0;
}

/* The RESTORE probe's key: this process's own. */
static void probe_key(char *key, size_t cap)
{
    snprintf(key, cap, "ringsync:restore-probe:%ld", (long)getpid());
}

int sync_probe_restore(struct control_link *cl, int rdb_version, const struct endpoint *ep)
{
    char key[64];
    probe_key(key, sizeof(key));
    char payload[13] = {0, 1, 'x', 0, 0};
    payload[3] = (char)(rdb_version & 0xff);
    payload[4] = (char)((rdb_version >> 8) & 0xff);
    uint64_t crc = crc64_update(0, payload, 5);
    for (int i = 0; i < 8; i++)
        payload[5 + i] = (char)((crc >> (8 * i)) & 0xff);
    const char *argv[] = {"RESTORE", key, "0", payload, "REPLACE"};
    size_t lens[] = {7, strlen(key), 1, sizeof(payload), 7};
    struct control_reply rep = {0};
    struct rs_error err = {0};
    if (control_link_command(cl, &rep, &err, 5, argv, lens) < 0) {
        rs_log("%s", err.msg);
        return err.code == RS_E_TRUNCATED ? -2 : -1;
    }
    int ok = 1;
    if (rep.r->type == REDIS_REPLY_ERROR) {
        /* Only these say "not this payload" or "not this command"; anything
         * else (OOM, LOADING, READONLY ...) is the destination's state, and
         * a write would fail the same way: stop now, saying so. */
        const char *e = rep.r->str;
        if (strstr(e, "payload version") || strstr(e, "Bad data format") ||
            strncmp(e, "NOPERM", 6) == 0 || strstr(e, "unknown command")) {
            rs_log("destination %s does not take RESTORE of RDB version %d (%s): writing every "
                   "value with native commands",
                   ep->name, rdb_version, e);
            ok = 0;
        } else {
            struct dest_reply_advice adv;
            if (dest_reply_classify(e, strlen(e), "RESTORE", &adv) == DEST_REPLY_ADVICE)
                rs_log("destination %s refused a test write (RESTORE of one key): %s; %s", ep->name,
                       e, adv.text);
            else
                rs_log("destination %s refused a test write (RESTORE of one key): %s", ep->name, e);
            ok = -1;
        }
    }
    control_reply_free(&rep);
    if (ok == 1) {
        control_link_commandv(cl, &rep, &err, "DEL", key, NULL);
        control_reply_free(&rep);
    }
    return ok;
}

/* ------------------------------------------------------------------ running */

static void progress(const struct job *job, double t0, uint64_t total, bool tty)
{
    if (atomic_load(&job->snapshot_applied)) {
        uint64_t rcv = atomic_load(&job->stream_received);
        uint64_t app = atomic_load(&job->stream_applied);
        fprintf(stderr,
                "%sringsync: following: offset %" PRIu64 " received, %" PRIu64 " applied (%" PRIu64
                " bytes behind), %" PRIu64 " commands%s",
                tty ? "\r" : "", rcv, app, rcv > app ? rcv - app : 0,
                atomic_load(&job->stream_cmds), tty ? "   " : "\n");
        return;
    }
    double el = now_s() - t0;
    uint64_t bytes = atomic_load(&job->input_bytes);
    double mb = (double)bytes / 1e6;
    double rate = el > 0 ? mb / el : 0;
    char eta[48] = "";
    if (total > 0 && total != UINT64_MAX && bytes > 0 && rate > 0)
        snprintf(eta, sizeof(eta), ", %.0f%%, %.0f s left", 100.0 * (double)bytes / (double)total,
                 ((double)(total - bytes) / 1e6) / rate);
    fprintf(stderr, "%sringsync: snapshot: %.1f MB, %" PRIu64 " keys, %.1f MB/s%s%s",
            tty ? "\r" : "", mb, atomic_load(&job->keys_read), rate, eta, tty ? "   " : "\n");
}

/* Counts keys as the decoder delivers them, then passes events on. */
struct counting_sink {
    struct job *job;
    struct snapshot_writer *sw;
};

static int counting_on_event(void *ctx, const struct rdb_event *ev)
{
    struct counting_sink *cs = ctx;
    if (ev->type == RDB_EV_KEY_END)
        atomic_fetch_add_explicit(&cs->job->keys_read, 1, memory_order_relaxed);
    return snapshot_writer_on_event(cs->sw, ev);
}

/* The report's lines on the filters (key_filter.h): what they left out. */
static void report_filters(struct job *job, const struct key_filter *f,
                           const struct snapshot_writer_stats *st)
{
    char what[400];
    key_filter_describe(f, what, sizeof(what));
    rs_log("filters (%s): %" PRIu64 " snapshot keys and %" PRIu64
           " stream commands left out, %" PRIu64 " stream commands sent with their kept keys "
           "only",
           what, atomic_load(&job->filtered_keys), atomic_load(&job->filtered_cmds),
           atomic_load(&job->filter_trimmed));
    if (st->code_blocked > 0)
        rs_log("%" PRIu64 " function libraries and Lua scripts of the snapshot were not loaded "
               "(--block-command)",
               st->code_blocked);
    if (atomic_load(&job->filter_split_skipped) > 0)
        rs_log("%" PRIu64 " stream commands whose keys the filters split, with no form for the "
               "kept keys alone, were dropped (--cross-slot skip)",
               atomic_load(&job->filter_split_skipped));
}

/* Every worker is gone: the destination's expiries are made exact again
 * (expiry_margin.h). 0, or 1 after saying which are still late. */
static int remove_margin(struct run_ctx *rc, int64_t margin_ms)
{
    int status = 0;
    struct endpoint *eps;
    unsigned n;
    struct rs_error derr = {0};
    /* the masters now: a cluster may have resharded or failed over */
    if (dest_nodes_current(rc->nodes, &rc->target, rc->o->timeout_ms, &eps, &n, &derr) < 0) {
        rs_log("could not make the expiries of destination %s exact again: %s; they expire %" PRId64
               " s late (ringsync writes them --expiry-margin late while it follows)",
               rc->target.name, derr.msg[0] ? derr.msg : "out of memory", margin_ms / 1000);
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct endpoint *ep = &eps[i];
        struct control_link cl = {0};
        struct rs_error err = {0};
        uint64_t fixed = 0;
        double t0 = now_s();
        int r = control_link_open(&cl, ep, rc->o->timeout_ms, &err);
        if (r == 0)
            r = expiry_margin_remove(&cl, margin_ms, &fixed, &err);
        control_link_close(&cl);
        if (r < 0) {
            rs_log("could not make the expiries of destination %s exact again: %s; the %" PRIu64
                   " keys done so far are, the others with an expiry expire %" PRId64
                   " s late (ringsync writes them --expiry-margin late while it follows)",
                   ep->name, err.msg, fixed, margin_ms / 1000);
            status = 1;
            continue;
        }
        if (fixed > 0 && !rc->o->quiet)
            rs_log("expiries exact again: %" PRIu64 " keys of destination %s in %.2f s", fixed,
                   ep->name, now_s() - t0);
    }
    free(eps);
    return status;
}

int sync_run_job(struct run_ctx *rc)
{
    const struct sync_opts *o = rc->o;
    struct job job;
    int status = 1;
    unsigned nnodes = rc->nodes->nnodes, nfds = 0;
    int *fds = NULL;
    const char **names = NULL;
    struct worker *workers[JOB_MAX_WORKERS] = {0};
    struct batch_writer *bw = NULL;
    struct snapshot_writer *sw = NULL;
    struct rdb_decoder *dec = NULL;
    struct router *router = NULL;
    struct cross_slot *carry = NULL;
    struct spill *spill = NULL;
    struct source_reconnect *sr = NULL;

    if (job_init(&job, o->workers) < 0) {
        rs_log("out of memory");
        return 1;
    }
    job.skip_errors = o->skip_errors;
    job.retry_timeout_s = o->retry_timeout_s;
    /* one destination connection per worker and node: the lanes */
    fds = malloc(sizeof(*fds) * nnodes * o->workers);
    names = malloc(sizeof(*names) * nnodes);
    if (fds == NULL || names == NULL) {
        rs_log("out of memory");
        goto out;
    }
    struct rs_error cerr = {0};
    if (dest_nodes_connect(rc->nodes, o->workers, o->timeout_ms, fds, &cerr) < 0) {
        rs_log("%s", cerr.msg);
        /* with checkpoints, as a link lost while running: sync_recover waits */
        rc->dest_lost = rc->cp_on && rc->input_is_socket && !o->snapshot_only;
        goto out;
    }
    nfds = nnodes * o->workers;
    for (unsigned n = 0; n < nnodes; n++)
        names[n] = rc->nodes->eps[n].name;
    if (rc->cp_on && rc->input_is_socket &&
        !o->snapshot_only) { /* who to CLIENT KILL before a resume (sync_recover) */
        free(rc->link_ids);
        free(rc->link_eps);
        rc->link_ids = calloc(nfds, sizeof(*rc->link_ids));
        rc->link_eps = calloc(nnodes, sizeof(*rc->link_eps));
        if (rc->link_ids != NULL && rc->link_eps != NULL) {
            dest_nodes_client_ids(fds, nfds, rc->link_ids);
            memcpy(rc->link_eps, rc->nodes->eps, nnodes * sizeof(*rc->link_eps));
            rc->link_nodes = nnodes;
        }
    }
    rc->route.nworkers = o->workers;
    if ((rc->nodes->is_cluster || rc->nodes->is_proxy) &&
        (job.redirect = cluster_redirect_new(&job, &rc->nodes->topo, &rc->target, o->workers,
                                             o->timeout_ms)) == NULL) {
        rs_log("out of memory");
        goto out;
    }
    if (job.redirect != NULL && rc->cp_on)
        cluster_redirect_set_checkpoint(job.redirect, &rc->cp);
    bw = batch_writer_new(&job, 0, SYNC_BATCHES_PER_WORKER * o->workers * nnodes,
                          rc->route.node_cap, rc->nodes->is_cluster);
    bool follow = (rc->input_is_socket && !o->snapshot_only) || rc->is_replay;
    int64_t margin_ms = follow ? o->expiry_margin_ms : 0; /* nothing follows a lone snapshot */
    struct snapshot_writer_config swc = {
        .use_restore = rc->use_restore, .route = &rc->route, .expiry_margin_ms = margin_ms};
    swc.proxy = rc->nodes->is_proxy;
    swc.discard = rc->discard_snapshot;
    const struct key_filter *filter = key_filter_is_active(&o->filter) ? &o->filter : NULL;
    swc.filter = filter;
    if (bw != NULL && rc->nodes->is_proxy)
        batch_writer_set_proxy(bw, rc->proxy.eval, rc->target.name);
    sw = bw ? snapshot_writer_new(&swc, bw, &job) : NULL;
    struct rdb_decoder_config dc = {0};
    if (sw)
        snapshot_writer_decoder_config(sw, &dc);
    struct counting_sink cs = {&job, sw};
    dec = sw ? rdb_decoder_new(&dc, counting_on_event, &cs) : NULL;
    if (dec == NULL) {
        rs_log("out of memory");
        goto out;
    }
    if (follow) {
        if (job.redirect != NULL && (carry = cross_slot_new(&job, job.redirect)) == NULL) {
            rs_log("out of memory");
            goto out;
        }
        if (carry != NULL && rc->nodes->is_proxy)
            cross_slot_set_proxy(carry, rc->proxy.eval, rc->nodes->proxy_tag);
        struct router_config rcfg = {.route = &rc->route,
                                     .carry = carry,
                                     .source_is_shard = rc->source_is_shard,
                                     .forward_publish = o->forward_publish,
                                     .cross_slot_skip = o->cross_slot_skip,
                                     .expiry_margin_ms = margin_ms,
                                     .cp = rc->cp_on ? &rc->cp : NULL,
                                     .start_db = rc->resumed ? rc->cps.db : 0,
                                     .proxy = rc->nodes->is_proxy,
                                     .proxy_tag = rc->nodes->proxy_tag,
                                     .proxy_eval = rc->proxy.eval,
                                     .filter = filter};
        two_way_router(o, &rcfg, rc->drop_prefix, sizeof(rc->drop_prefix));
        rcfg.conflicts = rc->conflicts;
        rcfg.conflict_side = rc->conflict_side;
        rcfg.heartbeat_key = rc->source_is_shard ? NULL : o->heartbeat_key;
        router = router_new(&rcfg, bw, &job, rc->stream_start);
        if (router == NULL) {
            rs_log("out of memory");
            goto out;
        }
    }
    struct source_feed feed = {
        .follow = follow,
        .router = router,
        .bw = bw,
        .stream_start = rc->stream_start,
        .sw = sw,
        .t0 = now_s(),
        .job = &job,
        .dec = dec,
        .source_name = rc->source_name,
        .has_len = rc->rdb_len != UINT64_MAX && rc->input_is_socket,
        .left = rc->rdb_len,
        .mark_len = rc->eof_mark_len,
        .source_fd = rc->input_is_socket ? rc->input_fd : -1,
    };
    if (rc->eof_mark_len)
        memcpy(feed.mark, rc->eof_mark, rc->eof_mark_len);
    if (follow && rc->cp_on) {
        batch_writer_set_checkpoints(bw, &rc->cp);
        feed.cp = &rc->cp;
        feed.route = &rc->route;
    }
    if (follow && rc->cp_file != NULL) {
        feed.cp_file = rc->cp_file;
        feed.cp_job = rc->job_id;
        feed.cp_target = rc->target.name;
        feed.cp_replid = rc->cp.replid;
    }
    if (rc->resumed)
        source_feed_resume(&feed);
    if (rc->cp_on)
        rc->cp.margin_on = margin_ms > 0; /* what the w records say while following */
    if (rc->input_is_socket && (spill = spill_new(o->spill_dir, o->max_memory)) == NULL) {
        rs_log("out of memory");
        goto out;
    }
    struct worker_input input = {
        .spill = spill,
        .fd = rc->input_fd,
        .is_socket = rc->input_is_socket,
        .feed = source_feed_feed,
        .at_eof = source_feed_at_eof,
        .tick = source_feed_tick,
        .is_blocked = source_feed_is_blocked,
        .ctx = &feed,
        .initial = rc->initial,
        .initial_len = rc->initial_len,
        .swap_fd = -1,
        .on_swap = source_feed_on_swap,
        .on_read = source_feed_on_read,
    };
    struct rate_limit lim_snapshot, lim_stream; /* per job: a cluster source's masters share */
    rate_limit_init(&lim_snapshot, &o->snapshot_limit, rc->rate_share);
    rate_limit_init(&lim_stream, &o->stream_limit, rc->rate_share);
    if (rate_limit_spec_on(&o->snapshot_limit) || rate_limit_spec_on(&o->stream_limit)) {
        feed.limit_snapshot = rate_limit_spec_on(&o->snapshot_limit) ? &lim_snapshot : NULL;
        feed.limit_stream = rate_limit_spec_on(&o->stream_limit) ? &lim_stream : NULL;
        feed.limit_slot = &input.limit;
        input.limit = feed.in_stream ? feed.limit_stream : feed.limit_snapshot;
        job.limit_snapshot = feed.limit_snapshot;
        job.limit_stream = feed.limit_stream;
    }
    if (follow && rc->source_ep != NULL) { /* a lost link is taken up again */
        if ((sr = calloc(1, sizeof(*sr))) == NULL) {
            rs_log("out of memory");
            goto out;
        }
        *sr = (struct source_reconnect){.ep = rc->source_ep,
                                        .timeout_ms = o->timeout_ms,
                                        .listening_port = o->listening_port,
                                        .give_up_s = o->source_retry_timeout_s};
        snprintf(sr->replid, sizeof(sr->replid), "%s", rc->replid);
        sr->shard_slot = rc->source_is_shard ? (int)rc->shard_slot : -1;
        sr->seeds = rc->seeds;
        sr->nseeds = rc->nseeds;
        sr->cur = *rc->source_ep;
        feed.input = &input;
        feed.stall_s = o->source_timeout_s;
        feed.cp_replid = rc->cp_on || rc->cp_file ? rc->cp.replid : NULL;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double t0 = now_s();
    /* the worker with the input starts last, so its consumers are listening */
    int wfds[WORKER_MAX_DEST];
    for (int i = (int)o->workers - 1; i >= 0; i--) {
        for (unsigned n = 0; n < nnodes; n++)
            wfds[n] = fds[n * o->workers + (unsigned)i];
        struct worker_config wc = {
            .job = &job,
            .id = (unsigned)i,
            .cpu = ncpu > 0 ? (int)(i % ncpu) : -1,
            .ndest = nnodes,
            .dest_fds = wfds,
            .dest_names = names,
            .redirect = job.redirect,
            .node_cap = rc->route.node_cap,
            .bw = i == 0 ? bw : NULL,
            .input = i == 0 ? &input : NULL,
        };
        workers[i] = worker_start(&wc);
        if (workers[i] == NULL) {
            job_fail(&job, "cannot start worker %d", i);
            break;
        }
        for (unsigned n = 0; n < nnodes; n++)
            fds[n * o->workers + (unsigned)i] = -1; /* the worker owns them now */
    }
    if (rc->on_start)
        rc->on_start(&job, rc->hook_ctx);
    int status_h = status_server_attach(rc, &job); /* served until the workers are freed */
    struct heartbeat *hb = NULL;                   /* --heartbeat-key: written from this thread */
    if (follow && o->heartbeat_key != NULL && rc->source_ep != NULL && !rc->source_is_shard &&
        (hb = heartbeat_new(rc->source_ep, o->heartbeat_key)) == NULL)
        job_fail(&job, "out of memory");
    bool tty = isatty(STDERR_FILENO) && !o->quiet;
    double last = now_s(), drain_at = 0;
    struct backlog_watch bwatch = {0};
    while (!job_should_stop(&job)) {
        struct timespec ts = {0, 5 * 1000 * 1000}; /* how soon the end is noticed */
        nanosleep(&ts, NULL);
        if (atomic_load(&job.snapshot_applied))
            atomic_store(&rc->snapshot_done, true);
        if (hb != NULL && atomic_load(&job.snapshot_applied) && !atomic_load(&job.drain))
            heartbeat_tick(hb);
        if (rc->cp_on && atomic_load(&job.snapshot_applied))
            sync_backlog_check(rc, &bwatch, atomic_load(&job.stream_received));
        if (sync_signals == 1 && !sync_abort && drain_at == 0 &&
            (feed.cp != NULL || feed.cp_file != NULL) && atomic_load(&job.snapshot_applied)) {
            /* a clean stop: what was received is applied, then the last checkpoint */
            drain_at = now_s();
            atomic_store(&job.drain, 1);
            if (!o->quiet)
                rs_log("stopping: applying what was routed, then the last checkpoint (a second "
                       "signal stops at once)");
            continue;
        }
        if (sr != NULL && atomic_load(&job.source_lost) && !sync_signals && !sync_abort &&
            !job_should_stop(&job)) {
            double t = now_s();
            uint64_t received = atomic_load(&job.stream_received);
            struct rs_error rerr = {0};
            int fd = source_reconnect_run(sr, received, &sync_signals, &rerr);
            if (fd < 0) {
                job_fail(&job, "%s", rerr.msg);
                break;
            }
            memcpy(feed.swap_replid, sr->replid, sizeof(feed.swap_replid));
            atomic_store(&job.source_lost, 0);
            worker_input_swap(&input, fd, sr->initial, sr->initial_len);
            rs_log("reconnected to source %s after %.2f s (%u attempts): partial resync from "
                   "offset %" PRIu64 " (replid %s)",
                   sr->shard_slot >= 0 ? sr->cur.name : rc->source_ep->name, now_s() - t,
                   sr->attempts, received + 1, sr->replid);
            continue;
        }
        if ((sync_signal && drain_at == 0) || sync_signals > 1 || sync_abort ||
            (drain_at > 0 && now_s() - drain_at > SYNC_DRAIN_S)) {
            if (drain_at > 0 && sync_signals == 1 && !sync_abort)
                rs_log("the destination did not apply what was routed within %d s: stopping at "
                       "once (the next start resumes from the last checkpoint)",
                       SYNC_DRAIN_S);
            atomic_store(&job.stop, 1);
            break;
        }
        double t = now_s();
        if (!o->quiet && ((tty && t - last >= 0.2) || (!tty && t - last >= 5.0))) {
            progress(&job, t0, rc->rdb_len, tty);
            last = t;
        }
    }
    for (unsigned i = 0; i < o->workers; i++)
        if (workers[i])
            worker_join(workers[i]);
    heartbeat_free(hb);
    status_server_detach(status_h);
    for (unsigned i = 0; i < o->workers; i++) /* all joined first: none touches a freed one */
        if (workers[i])
            worker_free(workers[i]);
    rc->input_fd = input.fd; /* a reconnect swapped it: the caller closes this one */
    if (atomic_load(&job.finished) && feed.in_stream)
        source_feed_applied(&feed); /* the workers are gone: the last word on it */
    rc->applied_at_end = atomic_load(&job.stream_applied);
    /* a lost destination link: with checkpoints, sync_recover resumes the job */
    rc->dest_lost = atomic_load(&job.failed) && atomic_load(&job.dest_lost) && rc->cp_on &&
                    follow && !rc->is_replay;
    if (rc->on_end)
        rc->on_end(rc->hook_ctx);
    double el = now_s() - t0;
    if (tty)
        fputc('\n', stderr);
    struct snapshot_writer_stats st;
    snapshot_writer_stats(sw, &st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    uint64_t bytes = atomic_load(&job.input_bytes);
    if (atomic_load(&job.failed) && atomic_load(&job.snapshot_applied)) {
        rs_log("failed after %.2f s while following the source (applied offset %" PRIu64 "): %s",
               el, atomic_load(&job.stream_applied), job.fail_msg);
        status = 1;
    } else if (atomic_load(&job.failed)) {
        rs_log("failed after %.2f s, %" PRIu64 " keys read: %s", el, atomic_load(&job.keys_read),
               job.fail_msg);
        status = 1;
    } else if (atomic_load(&job.stop) && atomic_load(&job.snapshot_applied)) {
        rs_log("stopped by %s after %.2f s, %s: %" PRIu64 " stream commands routed (%" PRIu64
               " fences), applied offset %" PRIu64 " of %" PRIu64
               " received; cpu %.2f s, peak rss %ld MB",
               sync_signal == SIGTERM ? "SIGTERM" : "SIGINT", el,
               rc->is_replay ? "replaying the capture" : "following the source",
               router_commands(router), router_fences(router), atomic_load(&job.stream_applied),
               atomic_load(&job.stream_received), cpu, ru.ru_maxrss / 1024);
        if (feed.drain_written && atomic_load(&job.drain))
            rs_log("checkpoint of job %s written at offset %" PRIu64
                   "%s%s: the next start resumes from there",
                   rc->job_id, feed.cp_written, rc->cp_file ? " in " : "",
                   rc->cp_file ? rc->cp_file : "");
        status = 0;
    } else if (atomic_load(&job.stop)) {
        rs_log("stopped by %s after %.2f s: %" PRIu64 " keys read, %" PRIu64
               " bytes of the snapshot; the destination holds a partial copy",
               sync_signal == SIGTERM ? "SIGTERM" : "SIGINT", el, atomic_load(&job.keys_read),
               bytes);
        status = 0;
    } else if (rc->is_replay) {
        rs_log("replay applied: %" PRIu64 " keys of the snapshot, %" PRIu64
               " stream commands routed (%" PRIu64 " fences) up to offset %" PRIu64
               "; %.2f s, cpu %.2f s, peak rss %ld MB",
               st.keys, router_commands(router), router_fences(router),
               atomic_load(&job.stream_applied), el, cpu, ru.ru_maxrss / 1024);
        status = 0;
    } else {
        rs_log("snapshot applied: %" PRIu64 " keys written (%" PRIu64 " with RESTORE, %" PRIu64
               " with native commands), %" PRIu64 " expired and %" PRIu64 " empty skipped, %" PRIu64
               " function libraries; %.1f MB of RDB version %d in "
               "%.2f s (%.1f MB/s, %.0f keys/s); cpu %.2f s, peak rss %ld MB",
               st.keys, st.restored, st.native, st.expired, st.empty, st.functions,
               (double)bytes / 1e6, st.rdb_version, el, el > 0 ? (double)bytes / 1e6 / el : 0,
               el > 0 ? (double)st.keys / el : 0, cpu, ru.ru_maxrss / 1024);
        status = 0;
    }
    if (spill != NULL && spill_file_peak(spill) > 0)
        rs_log("the destination fell behind: up to %.1f MB of the source's stream waited in the "
               "spill file",
               (double)spill_file_peak(spill) / 1e6);
    if (atomic_load(&job.errors_skipped) > 0)
        rs_log("%" PRIu64 " commands were refused by the destination and skipped (--on-error skip)",
               atomic_load(&job.errors_skipped));
    if (atomic_load(&job.unmapped_skipped) > 0)
        rs_log("%" PRIu64 " keys and commands of databases the --db-map leaves out were dropped "
               "(--db-unmapped skip)",
               atomic_load(&job.unmapped_skipped));
    if (carry != NULL && cross_slot_count(carry) > 0)
        rs_log("%" PRIu64 " commands across hash slots were carried out as the same effects "
               "(DUMP/RESTORE, per-node steps, temporary keys)",
               cross_slot_count(carry));
    if (atomic_load(&job.cross_slot_skipped) > 0)
        rs_log("%" PRIu64 " commands the cluster cannot run were dropped (--cross-slot skip)",
               atomic_load(&job.cross_slot_skipped));
    if (job.redirect != NULL) {
        uint64_t moved, asked, resent;
        cluster_redirect_stats(job.redirect, &moved, &asked, &resent);
        if (moved + asked > 0)
            rs_log("the cluster moved slots while the job ran: %" PRIu64 " MOVED and %" PRIu64
                   " ASK replies followed, %" PRIu64 " commands sent again to the new owner",
                   moved, asked, resent);
    }
    if (router != NULL && router_resume_skipped(router) > 0)
        rs_log("resumed: %" PRIu64 " commands the checkpoints showed applied were not applied "
               "again",
               router_resume_skipped(router));
    if (atomic_load(&job.tx_split) > 0)
        rs_log("%" PRIu64 " transactions across hash slots went out as one transaction per slot "
               "(atomic per slot, not as a whole)",
               atomic_load(&job.tx_split));
    if (filter != NULL)
        report_filters(&job, filter, &st);
    if (rc->nodes->is_proxy)
        proxy_target_report(&job, st.code_skipped);
    bool wrote = atomic_load(&job.keys_read) > 0 || atomic_load(&job.snapshot_applied);
    rc->wrote = wrote;
    if (rc->cp_on && feed.drain_written) { /* a clean stop: where its last record stands */
        rc->drained = true;
        rc->drained_w = feed.cp_written;
        rc->drained_db = router_db_at(router, feed.cp_written);
    }
    if (margin_ms > 0 && wrote && !rc->margin_by_caller && !rc->dest_lost) {
        if (remove_margin(rc, margin_ms) != 0) {
            if (status == 0)
                status = 1;
        } else {
            sync_record_margin_off(rc);
        }
    }
out:
    for (unsigned i = 0; i < nfds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(names);
    cross_slot_free(carry);
    free(sr);
    cluster_redirect_free(job.redirect);
    rdb_decoder_free(dec);
    spill_free(spill);
    router_free(router);
    snapshot_writer_free(sw);
    batch_writer_free(bw);
    batch_free_in_rings(&job);
    job_deinit(&job);
    return status;
}

/* A destination that already holds keys with an expiry, with the margin
 * on: those would have the margin taken off theirs at the end too, so the
 * user must choose. 0, or 1 after saying so. */
static int check_margin(struct control_link *tcl, const struct sync_opts *o,
                        const struct endpoint *ep)
{
    uint64_t dbs = 0, expires = 0;
    struct rs_error err = {0};
    if (o->expiry_margin_ms > 0 && !o->snapshot_only &&
        expiry_margin_check_rights(tcl, ep->user, o->expiry_margin_ms, &err) < 0) {
        rs_log("%s", err.msg); /* better now than a stop that leaves expiries late */
        return 1;
    }
    if (o->expiry_margin_ms == 0 || o->expiry_margin_given || o->nonempty != NONEMPTY_KEEP)
        return 0;
    if (expiry_margin_dbs(tcl, &dbs, &expires, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    if (expires == 0)
        return 0;
    rs_log("destination %s holds %" PRIu64
           " keys with an expiry, and --target-nonempty keep keeps them: ringsync writes the "
           "source's expiries %" PRId64
           " s late while it follows and takes that off every expiry of the destination when it "
           "stops, which would shorten those keys' own; pass --expiry-margin 0 (exact expiries: "
           "a key with a short TTL may then expire on the destination before the source's "
           "commands that read it are applied while ringsync is behind) or --expiry-margin %" PRId64
           " to accept",
           ep->name, expires, o->expiry_margin_ms / 1000, o->expiry_margin_ms / 1000);
    return 1;
}

int sync_route_init(struct run_ctx *rc, struct rs_error *err)
{
    const struct sync_opts *o = rc->o;
    bool topo = rc->nodes->is_cluster || rc->nodes->is_proxy;
    if (dest_route_init(&rc->route, o->workers, topo ? &rc->nodes->topo : NULL, o->db_map,
                        o->db_unmapped_skip ? DEST_ROUTE_UNMAPPED_SKIP : DEST_ROUTE_UNMAPPED_STOP,
                        err) < 0 ||
        (o->db_prefix != NULL && dest_route_set_prefix(&rc->route, o->db_prefix, err) < 0))
        return -1;
    char key[64];
    probe_key(key, sizeof(key));
    rc->probe_node =
        topo ? (unsigned)cluster_topology_owner(&rc->nodes->topo, slot_of_key(key, strlen(key)))
             : 0;
    return 0;
}

int sync_prepare_target(struct run_ctx *rc, struct control_link *tcl)
{
    const struct sync_opts *o = rc->o;
    struct rs_error err = {0};
    struct dest_nodes_opts no = {.mode = o->target_mode,
                                 .timeout_ms = o->timeout_ms,
                                 .nworkers = o->workers,
                                 .proxy_connections = o->proxy_connections,
                                 .proxy_tag = o->proxy_tag};
    if (dest_nodes_open(rc->nodes, &rc->target, &no, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    if (rc->nodes->is_proxy && !rc->checks_done) {
        int r = proxy_target_settle(rc->o, rc->target.name);
        if (r != 0)
            return r;
    }
    if (o->checkpoint_file != NULL && !rc->nodes->is_proxy) {
        rs_log("--checkpoint file:PATH is for a proxy destination; %s keeps the job's records "
               "itself, exactly once (--checkpoint target, the default)",
               rc->target.name);
        return 2;
    }
    if (o->checkpoint_file != NULL && rc->cp_file == NULL) {
        if (checkpoint_file_read(o->checkpoint_file, rc->job_id, rc->target.name, &rc->cps, &err) <
            0) {
            rs_log("%s", err.msg);
            return 1;
        }
        rc->cp_file = o->checkpoint_file;
        rc->start = !rc->cps.found                                  ? CHECKPOINT_START_NEW
                    : strcmp(rc->cps.phase, CHECKPOINT_STREAM) == 0 ? CHECKPOINT_START_RESUME
                                                                    : CHECKPOINT_START_REDO;
        if (!o->quiet && rc->cps.found)
            rs_log("checkpoint file %s: job %s %s (replid %s, offset %" PRIu64 ")", rc->cp_file,
                   rc->job_id,
                   rc->start == CHECKPOINT_START_RESUME
                       ? "resumes; what came after the checkpoint is applied again (at least "
                         "once)"
                       : "had a full sync cut: syncing anew over what the destination holds",
                   rc->cps.replid, rc->cps.w);
    }
    if (!rc->nodes->is_cluster && !rc->nodes->is_proxy &&
        (o->db_map != NULL || o->db_prefix != NULL)) {
        rs_log("%s is for a cluster destination (database 0 only); destination %s is a "
               "standalone server, whose databases take the source's as they are",
               o->db_map ? "--db-map" : "--db-prefix", rc->target.name);
        return 2;
    }
    if (o->db_map != NULL && o->db_prefix != NULL) {
        rs_log("--db-map and --db-prefix exclude each other: --db-prefix maps every database");
        return 2;
    }
    if (sync_route_init(rc, &err) < 0) {
        rs_log("%s", err.msg);
        return 2;
    }
    if (rc->nodes->is_cluster && !o->quiet && !rc->checks_done)
        rs_log("destination %s is a cluster of %u masters: writing to each", rc->target.name,
               rc->nodes->nnodes);
    if (o->checkpoint && !rc->cp_on) {
        if (checkpoint_init(&rc->cp, rc->job_id, rc->nodes->is_cluster, o->workers) < 0) {
            rs_log("out of memory");
            return 1;
        }
        if (rc->nodes->is_cluster)
            checkpoint_set_topology(&rc->cp, &rc->nodes->topo);
        rc->cp_on = true;
        for (unsigned i = 0; i < rc->nodes->nnodes; i++) { /* a loading node cannot be read */
            struct control_link cl = {0};
            if (!dest_nodes_serves(rc->nodes, i))
                continue;
            if (control_link_open(&cl, &rc->nodes->eps[i], o->timeout_ms, &err) < 0) {
                rs_log("%s", err.msg);
                return 1;
            }
            int r = wait_target_ready(&cl, o, &rc->nodes->eps[i]);
            if (r == 0 && rc->nodes->is_cluster && checkpoint_probe_node(&cl, &err) < 0) {
                rs_log("%s", err.msg);
                r = 1;
            }
            control_link_close(&cl);
            if (r != 0)
                return 1;
        }
        if (checkpoint_start(rc->nodes, &rc->cp, o->timeout_ms, o->quiet, &rc->start, &rc->cps,
                             &err) < 0) {
            rs_log("cannot read the checkpoints of job %s: %s", rc->job_id, err.msg);
            return 1;
        }
    }
    if (rc->nodes->is_proxy) { /* its connections all reach one address */
        const struct endpoint *ep = &rc->nodes->eps[0];
        struct control_link cl = {0};
        if (control_link_open(&cl, ep, o->timeout_ms, &err) < 0) {
            rs_log("%s", err.msg);
            return 1;
        }
        int r = wait_target_ready(&cl, o, ep);
        if (r == 0 && !rc->checks_done)
            r = proxy_target_probe(ep, o->timeout_ms, o->proxy_tag, &rc->proxy);
        if (r != 0) {
            control_link_close(&cl);
            return r;
        }
        *tcl = cl;
        rc->probe_node = 0;
        return 0;
    }
    for (unsigned i = 0; i < rc->nodes->nnodes; i++) {
        const struct endpoint *ep = &rc->nodes->eps[i];
        if (!dest_nodes_serves(rc->nodes, i))
            continue; /* a failed master whose replica took over: nothing to check */
        struct control_link cl = {0};
        if (control_link_open(&cl, ep, o->timeout_ms, &err) < 0) {
            rs_log("%s", err.msg);
            return 1;
        }
        int r = rc->checks_done
                    ? 0
                    : check_target(&cl, o, ep, rc->nodes->is_cluster,
                                   rc->start != CHECKPOINT_START_NEW || rc->cps.shard_records > 0);
        if (r == 0 && o->source_uri != NULL && !rc->checks_done)
            r = check_margin(&cl, o, ep);
        if (r != 0) {
            control_link_close(&cl);
            return r;
        }
        if (i == rc->probe_node)
            *tcl = cl;
        else
            control_link_close(&cl);
    }
    return 0;
}

int sync_parse_header_version(const uint8_t *p, size_t n, int *version)
{
    if (n < SYNC_HEADER_BYTES)
        return -1;
    int digits = memcmp(p, "REDIS", 5) == 0 ? 5 : memcmp(p, "VALKEY", 6) == 0 ? 6 : 0;
    if (!digits)
        return -1;
    int v = 0;
    for (int i = digits; i < SYNC_HEADER_BYTES; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *version = v;
    return 0;
}

void sync_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int sync_run(int argc, char **argv, struct dest_nodes *nodes, struct run_ctx *r);

int sync_main(int argc, char **argv)
{
    struct dest_nodes nodes = {0};
    struct run_ctx r = {0};
    int status = sync_run(argc, argv, &nodes, &r);
    status_server_stop();
    checkpoint_deinit(&r.cp);
    checkpoint_state_free(&r.cps);
    free(r.link_ids);
    free(r.link_eps);
    dest_nodes_deinit(&nodes);
    return status;
}

int sync_from(struct run_ctx *r, struct control_link *scl, struct control_link *tcl,
              const struct endpoint *source, uint8_t *initial)
{
    const struct sync_opts *o = r->o;
    struct rs_error err = {0};
    struct source_handshake_opts ho = {.listening_port = o->listening_port};
    struct source_handshake_result hr;
    int status = 1;
    if (two_way_reverse_start(o, scl, source, &r->start, &r->cps, &r->discard_snapshot) < 0)
        goto fail;
    bool resume = r->start == CHECKPOINT_START_RESUME;
    if (resume) {
        ho.replid = r->cps.replid;
        ho.offset = (int64_t)r->cps.w + 1;
    }
    char backlog[32] = ""; /* for the warning of sync_backlog_check */
    if (control_link_info_field(scl, "replication", "repl_backlog_size", backlog, sizeof(backlog),
                                &err) == 0)
        r->backlog_bytes = strtoull(backlog, NULL, 10);
    err = (struct rs_error){0};
    /* a source that answered but cannot serve yet is waited for */
    if (source_reconnect_handshake(scl, source, o->timeout_ms, o->source_retry_timeout_s, &ho, &hr,
                                   sync_is_stopping, &err) < 0) {
        rs_log("%s", err.msg);
        goto fail;
    }
    if (!hr.full && !resume) {
        rs_log("source %s answered PSYNC ? -1 with +CONTINUE: it should have sent a snapshot",
               source->name);
        goto fail;
    }
    if (hr.full && resume && sync_lost_backlog(r, source, &hr) != 0)
        goto fail;
    snprintf(r->cp.replid, sizeof(r->cp.replid), "%s", hr.replid); /* the records' copy */
    snprintf(r->replid, sizeof(r->replid), "%s", hr.replid);
    r->source_ep = source;
    struct rs_slice pending;
    r->input_fd = control_link_detach(scl, &pending);
    RS_ASSERT(pending.len <= SYNC_INITIAL_MAX); /* the control link buffers less */
    r->initial_len = pending.len;
    memcpy(initial, pending.p, r->initial_len);
    control_link_close(scl);
    if (!hr.full) { /* a resume: the stream from the checkpoint on */
        control_link_close(tcl);
        if (r->cps.margin_on == 0 && o->expiry_margin_ms > 0 && !r->source_is_shard &&
            sync_margin_again(r) != 0) {
            close(r->input_fd);
            return 1;
        }
        r->initial = initial;
        r->resumed = true;
        r->stream_start = (uint64_t)hr.offset;
        r->cp.skip = r->cps.skip; /* what each slot has applied beyond W */
        r->cp.skip_max = r->cps.skip_max;
        r->cps.skip = NULL;
        rs_log("sync: %s -> %s, %u workers, resumed with a partial resync (replid %s, from "
               "offset %" PRId64 ")",
               source->name, r->target.name, o->workers, hr.replid, hr.offset + 1);
        status = sync_run_job(r);
        close(r->input_fd);
        return status;
    }
    if (r->cp_file != NULL &&
        checkpoint_file_write(r->cp_file, r->job_id, r->target.name, hr.replid, 0, 0,
                              CHECKPOINT_FULL_KEEP, &err) < 0) {
        rs_log("%s", err.msg);
        close(r->input_fd);
        control_link_close(tcl);
        return 1;
    }
    if (r->cp_on) {
        bool keep =
            (r->start == CHECKPOINT_START_NEW && o->nonempty == NONEMPTY_KEEP) ||
            (r->start == CHECKPOINT_START_REDO && strcmp(r->cps.phase, CHECKPOINT_FULL_KEEP) == 0);
        if (checkpoint_begin_full(r->nodes, &r->cp, o->timeout_ms, keep, &err) < 0) {
            rs_log("cannot write the checkpoint of job %s: %s", r->job_id, err.msg);
            r->dest_lost = r->dest_lost_at_start = err.code == RS_E_TRUNCATED; /* sync_recover */
            close(r->input_fd);
            control_link_close(tcl);
            return 1;
        }
    }
    while (r->initial_len < SYNC_HEADER_BYTES) { /* the RDB header decides RESTORE */
        ssize_t n =
            recv(r->input_fd, initial + r->initial_len, SYNC_HEADER_BYTES - r->initial_len, 0);
        if (n <= 0) {
            rs_log("source %s closed the connection before the snapshot began", source->name);
            close(r->input_fd);
            control_link_close(tcl);
            return 1;
        }
        r->initial_len += (size_t)n;
    }
    r->initial = initial;
    r->rdb_len = hr.rdb_len;
    r->stream_start = (uint64_t)hr.offset;
    r->eof_mark = hr.eof_mark;
    r->eof_mark_len = hr.eof_mark_len;
    int probe = 0;
    if (!o->restore_never &&
        sync_parse_header_version(initial, r->initial_len, &r->rdb_version) == 0)
        probe = sync_probe_restore(tcl, r->rdb_version, &r->nodes->eps[r->probe_node]);
    r->use_restore = probe == 1;
    control_link_close(tcl);
    if (probe < 0) {
        r->dest_lost = r->dest_lost_at_start = probe == -2; /* sync_recover starts again */
        close(r->input_fd);
        return 1;
    }
    if (!o->quiet)
        rs_log("sync: %s -> %s, %u workers, snapshot %s (replid %s offset %" PRId64 "), %s",
               source->name, r->target.name, o->workers, hr.eof_mark_len ? "diskless" : "from disk",
               hr.replid, hr.offset,
               r->use_restore ? "RESTORE for small values" : "native commands only");
    status = sync_run_job(r);
    close(r->input_fd);
    return status;
fail:
    control_link_close(scl);
    control_link_close(tcl);
    return status;
}

/* One master of a cluster source: its own job (its own destination links,
 * slot table and redirections), run beside the others'. */
struct shard_job {
    pthread_t thread;
    _Atomic bool done;
    struct run_ctx r;
    struct dest_nodes nodes;
    struct endpoint source;
    int status;
    uint8_t initial[SYNC_INITIAL_MAX];
};

static void *shard_main(void *arg)
{
    struct shard_job *sj = arg;
    struct control_link tcl = {0}, scl = {0};
    struct rs_error err = {0};
    sj->status = sync_start_target(&sj->r, &tcl); /* the checks were made once, before */
    if (sj->status == 0 && control_link_open(&scl, &sj->source, sj->r.o->timeout_ms, &err) < 0) {
        rs_log("%s", err.msg);
        sj->status = 1;
    }
    if (sj->status == 0)
        sj->status = sync_recover(&sj->r, &sj->source, sj->initial,
                                  sync_from(&sj->r, &scl, &tcl, &sj->source, sj->initial));
    else
        control_link_close(&tcl);
    if (sj->status != 0)
        sync_abort = 1; /* the others stop too: a partial copy is no copy */
    atomic_store(&sj->done, true);
    return NULL;
}

/* --topology bidirectional: the two directions of a two-way job side by
 * side (two_way.h), forward A -> B started first, reverse B -> A once
 * forward's snapshot is applied (or it resumed), each with options of its
 * own; a failure of one stops the other. */
static int sync_two_way(struct run_ctx *main_r, const struct endpoint *a)
{
    struct shard_job *jobs = calloc(2, sizeof(*jobs));
    struct sync_opts *opts = calloc(2, sizeof(*opts));
    struct two_way_conflicts *conflicts = two_way_conflicts_new(
        main_r->o->conflict_window_ms, (enum two_way_policy)main_r->o->conflict_policy);
    if (jobs == NULL || opts == NULL || conflicts == NULL) {
        free(jobs);
        free(opts);
        two_way_conflicts_free(conflicts);
        rs_log("out of memory");
        return 1;
    }
    int status = 0;
    for (int d = 0; d < 2 && status == 0; d++) {
        opts[d] = *main_r->o;
        opts[d].direction = d == 0 ? "forward" : "reverse";
        if (opts[d].job_id == NULL)
            opts[d].job_id = a->name; /* side A names it, as a one-way job's source does */
        status = two_way_settle(&opts[d]);
        struct shard_job *sj = &jobs[d];
        sj->source = d == 0 ? *a : main_r->target;
        sj->r = (struct run_ctx){.o = &opts[d],
                                 .target = d == 0 ? main_r->target : *a,
                                 .rdb_len = UINT64_MAX,
                                 .input_is_socket = true,
                                 .nodes = &sj->nodes};
        sj->r.source_name = sj->source.name;
        sj->r.conflicts = conflicts;
        sj->r.conflict_side = d;
        two_way_job_id(&opts[d], sj->r.job_id, sizeof(sj->r.job_id));
    }
    int started = 0;
    if (status == 0 && pthread_create(&jobs[0].thread, NULL, shard_main, &jobs[0]) == 0)
        started = 1;
    while (started == 1 && !atomic_load(&jobs[0].r.snapshot_done) && !atomic_load(&jobs[0].done) &&
           !sync_is_stopping() && !sync_abort) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (started == 1 && atomic_load(&jobs[0].r.snapshot_done) && !sync_is_stopping() &&
        !sync_abort && pthread_create(&jobs[1].thread, NULL, shard_main, &jobs[1]) == 0)
        started = 2;
    /* conflicts: each key copied from the winning side once its window passed */
    while (started == 2 && !atomic_load(&jobs[0].done) && !atomic_load(&jobs[1].done)) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        two_way_resolve(conflicts, a, &main_r->target, opts[0].job_id, main_r->o->timeout_ms,
                        false);
    }
    for (int d = 0; d < started; d++) {
        pthread_join(jobs[d].thread, NULL);
        if (jobs[d].status > status)
            status = jobs[d].status;
    }
    if (status == 0 && started < 2 && !sync_is_stopping())
        status = 1;
    if (started == 2) /* both applied all they read: the rest now */
        two_way_resolve(conflicts, a, &main_r->target, opts[0].job_id, main_r->o->timeout_ms, true);
    if (two_way_conflict_count(conflicts) > 0)
        rs_log("%" PRIu64 " conflicts: keys written on both sides within %" PRId64
               " ms of each other, which may differ now (logged above); compare them with "
               "ringsync verify",
               two_way_conflict_count(conflicts), main_r->o->conflict_window_ms);
    if (two_way_resolved_count(conflicts) > 0)
        rs_log("%" PRIu64 " conflicts resolved: the key copied from side %s",
               two_way_resolved_count(conflicts),
               main_r->o->conflict_policy == TWO_WAY_A_WINS ? "A" : "B");
    two_way_conflicts_free(conflicts);
    for (int d = 0; d < 2; d++) {
        dest_nodes_deinit(&jobs[d].nodes);
        checkpoint_deinit(&jobs[d].r.cp);
        checkpoint_state_free(&jobs[d].r.cps);
        free(jobs[d].r.link_ids);
        free(jobs[d].r.link_eps);
    }
    free(jobs);
    free(opts);
    return status;
}

void sync_record_margin_off(struct run_ctx *rc)
{
    if (!rc->drained)
        return;
    struct rs_error werr = {0};
    rc->cp.margin_on = false;
    if (checkpoint_write_w(rc->nodes, &rc->cp, rc->o->timeout_ms, rc->drained_w, rc->drained_db,
                           CHECKPOINT_STREAM, &werr) < 0)
        rs_log("could not record that the expiries of job %s are exact again: %s; a resume "
               "would take the margin off them once more",
               rc->job_id, werr.msg);
}

/* A cluster source's jobs resume together: when any of them recorded at a
 * clean stop that the expiries are exact, the margin goes back on every key
 * once, before any of them follows (each job's own resume does not: the
 * keys are shared). 0, or 1 when it could not. */
static int shards_margin_again(struct run_ctx *main_r, const struct shard_job *jobs, size_t n)
{
    const struct sync_opts *o = main_r->o;
    if (!o->checkpoint || o->snapshot_only || o->expiry_margin_ms <= 0)
        return 0;
    bool off = false;
    for (size_t i = 0; i < n && !off; i++) {
        struct checkpoint cp;
        struct checkpoint_state st;
        struct rs_error err = {0};
        if (checkpoint_init(&cp, jobs[i].r.job_id, main_r->nodes->is_cluster, o->workers) < 0)
            return 1;
        int r = checkpoint_read(main_r->nodes, &cp, o->timeout_ms, &st, &err);
        checkpoint_deinit(&cp);
        if (r < 0) {
            rs_log("cannot read the checkpoints of job %s: %s", jobs[i].r.job_id, err.msg);
            return 1;
        }
        off = st.found && st.margin_on == 0 && strcmp(st.phase, CHECKPOINT_STREAM) == 0;
        checkpoint_state_free(&st);
    }
    return off ? sync_margin_again(main_r) : 0;
}

/* A Redis Cluster source (scl: a link to any of its nodes): one PSYNC and
 * one job per master, side by side, each writing its masters' slots (which
 * no other master's stream touches); the expiry margin is taken off once,
 * when all have ended. */
static int sync_cluster_source(struct run_ctx *main_r, struct control_link *scl,
                               const struct endpoint *seed)
{
    struct sync_opts *o = main_r->o;
    struct cluster_topology t;
    struct rs_error err = {0};
    cluster_topology_init(&t);
    int rc = cluster_topology_discover(&t, scl, seed->host, &err);
    control_link_close(scl);
    if (rc != 0) {
        rs_log("source %s: %s", seed->name, err.msg);
        return 1;
    }
    size_t n = t.nmasters;
    struct shard_job *jobs = calloc(n, sizeof(*jobs));
    /* every node, to find a shard's master again after a failover */
    size_t nseeds = 0;
    for (size_t i = 0; i < n; i++)
        nseeds += 1 + t.masters[i].nreplicas;
    struct endpoint *seeds = calloc(nseeds, sizeof(*seeds));
    if (jobs == NULL || seeds == NULL) {
        free(jobs);
        free(seeds);
        cluster_topology_deinit(&t);
        rs_log("out of memory");
        return 1;
    }
    nseeds = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k <= t.masters[i].nreplicas; k++) {
            const struct cluster_node *nd =
                k == 0 ? &t.masters[i].node : &t.masters[i].replicas[k - 1];
            struct endpoint *e = &seeds[nseeds++];
            *e = *seed;
            snprintf(e->host, sizeof(e->host), "%s", nd->host);
            e->port = nd->port;
            snprintf(e->name, sizeof(e->name), "%s", nd->name);
        }
    if (!o->quiet)
        rs_log("source %s is a cluster of %zu masters: one replication stream from each",
               seed->name, n);
    for (size_t i = 0; i < n; i++) {
        struct shard_job *sj = &jobs[i];
        sj->source = *seed;
        snprintf(sj->source.host, sizeof(sj->source.host), "%s", t.masters[i].node.host);
        sj->source.port = t.masters[i].node.port;
        snprintf(sj->source.name, sizeof(sj->source.name), "%s", t.masters[i].node.name);
        sj->r = (struct run_ctx){.o = o,
                                 .target = main_r->target,
                                 .rdb_len = UINT64_MAX,
                                 .input_is_socket = true,
                                 .nodes = &sj->nodes,
                                 .checks_done = true,
                                 .margin_by_caller = true,
                                 .source_is_shard = true,
                                 .rate_share = (unsigned)n};
        sj->r.source_name = sj->source.name;
        unsigned first = 0; /* each master's stream is a job of its own: its first slot names it */
        while (first < SLOT_COUNT && cluster_topology_owner(&t, first) != (int)i)
            first++;
        snprintf(sj->r.job_id, sizeof(sj->r.job_id), "%.*s/%u", CHECKPOINT_JOB_MAX - 8,
                 main_r->job_id, first);
        sj->r.shard_slot = first;
        sj->r.seeds = seeds;
        sj->r.nseeds = nseeds;
    }
    size_t started = 0;
    bool ready = shards_margin_again(main_r, jobs, n) == 0; /* else said */
    for (; ready && started < n; started++)
        if (pthread_create(&jobs[started].thread, NULL, shard_main, &jobs[started]) != 0) {
            rs_log("cannot start the job of source master %s", jobs[started].source.name);
            sync_abort = 1;
            break;
        }
    int status = ready && started == n ? 0 : 1;
    bool wrote = false;
    for (size_t i = 0; i < started; i++) {
        pthread_join(jobs[i].thread, NULL);
        if (jobs[i].status > status)
            status = jobs[i].status;
        wrote |= jobs[i].r.wrote;
    }
    int64_t margin_ms = o->snapshot_only ? 0 : o->expiry_margin_ms;
    if (margin_ms > 0 && wrote) {
        if (remove_margin(main_r, margin_ms) != 0) {
            if (status == 0)
                status = 1;
        } else {
            for (size_t i = 0; i < started; i++) /* each job's record says so */
                sync_record_margin_off(&jobs[i].r);
        }
    }
    for (size_t i = 0; i < n; i++) {
        dest_nodes_deinit(&jobs[i].nodes);
        checkpoint_deinit(&jobs[i].r.cp);
        checkpoint_state_free(&jobs[i].r.cps);
        free(jobs[i].r.link_ids);
        free(jobs[i].r.link_eps);
    }
    free(jobs);
    free(seeds);
    cluster_topology_deinit(&t);
    return status;
}

/* The default job id: the source as given, its characters outside a job
 * id's set as '_'. */
static void default_job_id(char *out, size_t cap, const char *source_name)
{
    size_t n = strlen(source_name);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, source_name, n);
    out[n] = '\0';
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == ':' || *p == '/' || *p == '-'))
            *p = '_';
}

static int sync_run(int argc, char **argv, struct dest_nodes *nodes, struct run_ctx *rp)
{
    struct sync_opts o;
    int rc = sync_opts_parse(argc, argv, MODE_SYNC, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    *rp = (struct run_ctx){.o = &o, .rdb_len = UINT64_MAX, .input_is_socket = true, .nodes = nodes};
    struct endpoint source;
    struct rs_error err = {0};
    if (endpoint_parse(o.source_uri, "RINGSYNC_SOURCE_PASSWORD", &source, &err) < 0) {
        rs_log("--source: %s", err.msg);
        return 2;
    }
    if (endpoint_parse(o.target_uri, "RINGSYNC_TARGET_PASSWORD", &rp->target, &err) < 0) {
        rs_log("--target: %s", err.msg);
        return 2;
    }
    sync_install_signals();
    if (o.target_mode == DEST_NODES_RELAY && (rc = relay_settle(&o)) != 0)
        return rc;
    if ((rc = status_server_start(o.status_addr, o.cutover_lag_ms)) != 0)
        return rc;
    if (o.target_mode == DEST_NODES_RELAY) /* the destination replicates from ringsync */
        return relay_sync(&o, &source, &rp->target);
    rp->source_name = source.name;
    if (o.bidirectional)
        return sync_two_way(rp, &source);
    if ((rc = two_way_settle(&o)) != 0)
        return rc;
    if (o.direction != NULL)
        two_way_job_id(&o, rp->job_id, sizeof(rp->job_id));
    else if (o.job_id != NULL)
        snprintf(rp->job_id, sizeof(rp->job_id), "%s", o.job_id);
    else
        default_job_id(rp->job_id, sizeof(rp->job_id), source.name);
    struct control_link tcl = {0}, scl = {0};
    int status = sync_start_target(rp, &tcl); /* a destination lost meanwhile is waited for */
    if (status != 0) {
        control_link_close(&tcl);
        return status;
    }
    if (control_link_open(&scl, &source, o.timeout_ms, &err) < 0) {
        rs_log("%s", err.msg);
        control_link_close(&tcl);
        return 1;
    }
    enum cluster_mode mode = CLUSTER_MODE_STANDALONE;
    rc = cluster_mode_of(&scl, &mode, &err);
    if (rc < 0 && rc != -EPERM) { /* a user that may not INFO replicates a standalone source */
        rs_log("%s", err.msg);
        control_link_close(&scl);
        control_link_close(&tcl);
        return 1;
    }
    if (mode == CLUSTER_MODE_CLUSTER && o.heartbeat_key != NULL) {
        rs_log("--heartbeat-key: not with a cluster source yet (its key lives on one master)");
        control_link_close(&scl);
        control_link_close(&tcl);
        return 2;
    }
    if (mode == CLUSTER_MODE_CLUSTER) {
        control_link_close(&tcl);
        return sync_cluster_source(rp, &scl, &source);
    }
    static uint8_t initial[SYNC_INITIAL_MAX];
    status = sync_from(rp, &scl, &tcl, &source, initial);
    return sync_recover(rp, &source, initial, status);
}
