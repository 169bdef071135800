/* source_reconnect.c - a lost source link taken up again (see source_reconnect.h). */
#include "source_reconnect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster_topology.h"
#include "control_link.h"
#include "log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps ms, in slices, returning early when *stop is set or is_stopping()
 * says so (either may be NULL). */
static void nap(int ms, const volatile sig_atomic_t *stop, bool (*is_stopping)(void))
{
    while (ms > 0 && !(stop && *stop) && !(is_stopping && is_stopping())) {
        int k = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)k * 1000000L};
        nanosleep(&ts, NULL);
        ms -= k;
    }
}

/* A cluster shard: sr->cur becomes the master serving sr->shard_slot now,
 * as the first node that answers with a whole topology says. 0, or -1 with
 * err from the last node asked. */
static int find_shard_master(struct source_reconnect *sr, struct rs_error *err)
{
    struct cluster_topology t;
    cluster_topology_init(&t);
    for (size_t i = 0; i <= sr->nseeds; i++) {
        const struct endpoint *ep = i < sr->nseeds ? &sr->seeds[i] : &sr->cur;
        struct control_link cl = {0};
        if (control_link_open(&cl, ep, sr->timeout_ms, err) < 0)
            continue;
        int r = cluster_topology_discover(&t, &cl, ep->host, err);
        control_link_close(&cl);
        int m = r == 0 ? cluster_topology_owner(&t, (unsigned)sr->shard_slot) : -1;
        if (m >= 0) {
            const struct cluster_node *n = &t.masters[m].node;
            snprintf(sr->cur.host, sizeof(sr->cur.host), "%s", n->host);
            sr->cur.port = n->port;
            snprintf(sr->cur.name, sizeof(sr->cur.name), "%s", n->name);
            cluster_topology_deinit(&t);
            return 0;
        }
        cluster_topology_deinit(&t);
    }
    return -1;
}

/* One attempt: 1 the source answered +FULLRESYNC (final), 0 the new socket
 * is *fd, -1 try again (err says why). */
static int attempt(struct source_reconnect *sr, uint64_t received, int *fd, struct rs_error *err)
{
    struct control_link cl = {0};
    if (sr->shard_slot >= 0)
        (void)find_shard_master(sr, err); /* else the last master found: a cluster whose other
                                             shards fail still serves this one there */
    const struct endpoint *ep = sr->shard_slot >= 0 ? &sr->cur : sr->ep;
    if (control_link_open(&cl, ep, sr->timeout_ms, err) < 0)
        return -1;
    struct source_handshake_opts ho = {.listening_port = sr->listening_port,
                                       .replid = sr->replid,
                                       .offset = (int64_t)received + 1,
                                       .snapshot_wait_timeout_ms = sr->timeout_ms};
    struct source_handshake_result hr;
    if (source_link_handshake(&cl, &ho, &hr, err) < 0) {
        control_link_close(&cl);
        return -1;
    }
    if (hr.full) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "source %s answered +FULLRESYNC (replid %s, offset %" PRId64
                     ") to PSYNC %s %" PRIu64 ": its backlog no longer holds what was not "
                     "received yet, or its history changed",
                     ep->name, hr.replid, hr.offset, sr->replid, received + 1);
        control_link_close(&cl);
        return 1;
    }
    snprintf(sr->replid, sizeof(sr->replid), "%s", hr.replid);
    struct rs_slice pending;
    *fd = control_link_detach(&cl, &pending);
    size_t n = pending.len < sizeof(sr->initial) ? pending.len : sizeof(sr->initial);
    RS_ASSERT(n == pending.len); /* the control link buffers less */
    memcpy(sr->initial, pending.p, n);
    sr->initial_len = n;
    control_link_close(&cl);
    return 0;
}

int source_reconnect_run(struct source_reconnect *sr, uint64_t received,
                         const volatile sig_atomic_t *stop, struct rs_error *err)
{
    double t0 = now_s();
    int backoff = SOURCE_RECONNECT_MIN_MS;
    sr->attempts = 0;
    for (;;) {
        int fd = -1;
        sr->attempts++;
        int r = attempt(sr, received, &fd, err);
        if (r == 0)
            return fd;
        if (r > 0)
            return -1;
        if (stop && *stop) {
            rs_error_set(err, RS_E_UNSUPPORTED, 0, "stopped while reconnecting to source %s",
                         sr->ep->name);
            return -1;
        }
        if (sr->give_up_s > 0 && now_s() - t0 > sr->give_up_s) {
            char last[sizeof(err->msg)];
            snprintf(last, sizeof(last), "%s", err->msg);
            rs_error_set(err, RS_E_UNSUPPORTED, 0,
                         "could not reconnect to source %s within %.0f s "
                         "(--source-retry-timeout), %u attempts; the last: %s",
                         sr->ep->name, sr->give_up_s, sr->attempts, last);
            return -1;
        }
        /* jitter: 50..100 % of the backoff, so many jobs do not retry in step */
        nap(backoff / 2 + rand() % (backoff / 2 + 1), stop, NULL);
        backoff = backoff * 2 > SOURCE_RECONNECT_MAX_MS ? SOURCE_RECONNECT_MAX_MS : backoff * 2;
    }
}

/* A failure the source may get over by itself: it cannot serve PSYNC yet
 * (-LOADING, -NOMASTERLINK, -MASTERDOWN), or the link could not be made or
 * was lost (no connection, a timeout, a closed connection). */
static bool is_transient(int rc, const struct rs_error *err)
{
    return rc == -EAGAIN || err->code == RS_E_TRUNCATED;
}

int source_reconnect_handshake(struct control_link *cl, const struct endpoint *ep, int timeout_ms,
                               double give_up_s, const struct source_handshake_opts *ho,
                               struct source_handshake_result *hr, bool (*is_stopping)(void),
                               struct rs_error *err)
{
    double t0 = now_s();
    int backoff = SOURCE_RECONNECT_MIN_MS;
    unsigned attempts = 1;
    int rc = source_link_handshake(cl, ho, hr, err);
    for (;;) {
        if (rc == 0) {
            if (attempts > 1)
                rs_log("source %s served PSYNC after %.2f s (%u attempts)", ep->name, now_s() - t0,
                       attempts);
            return 0;
        }
        if (!is_transient(rc, err))
            return rc;
        if (attempts == 1) { /* said once: what is awaited, and for how long */
            if (give_up_s > 0)
                rs_log("%s; waiting for it as a replica would, up to %.0f s "
                       "(--source-retry-timeout)",
                       err->msg, give_up_s);
            else
                rs_log("%s; waiting for it as a replica would, without a limit "
                       "(--source-retry-timeout 0)",
                       err->msg);
        }
        if (give_up_s > 0 && now_s() - t0 > give_up_s) {
            char last[sizeof(err->msg)];
            snprintf(last, sizeof(last), "%s", err->msg);
            rs_error_set(err, RS_E_UNSUPPORTED, 0,
                         "source %s could not serve PSYNC within %.0f s "
                         "(--source-retry-timeout), %u attempts; the last: %s",
                         ep->name, give_up_s, attempts, last);
            return -ETIMEDOUT;
        }
        nap(backoff / 2 + rand() % (backoff / 2 + 1), NULL, is_stopping);
        if (is_stopping != NULL && is_stopping()) {
            rs_error_set(err, RS_E_UNSUPPORTED, 0, "stopped while waiting for source %s", ep->name);
            return -EINTR;
        }
        backoff = backoff * 2 > SOURCE_RECONNECT_MAX_MS ? SOURCE_RECONNECT_MAX_MS : backoff * 2;
        control_link_close(cl);
        attempts++;
        *err = (struct rs_error){0};
        rc = control_link_open(cl, ep, timeout_ms, err);
        if (rc == 0)
            rc = source_link_handshake(cl, ho, hr, err);
    }
}
