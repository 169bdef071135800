/* sync_watch.c - ringsync sync in a test's background (sync_watch.h). */
#include "sync_watch.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/logging.h>

void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------- ringsync */

struct program *ringsync_start_with(const struct redis_fixture *src,
                                    const struct redis_fixture *dst, const char *workers,
                                    const char *const *extra)
{
    return ringsync_start_ports(src->port, dst->port, workers, true, extra);
}

struct program *ringsync_start_ports(int source_port, int target_port, const char *workers,
                                     bool quiet, const char *const *extra)
{
    char source[64], target[64];
    snprintf(source, sizeof(source), "redis://127.0.0.1:%d", source_port);
    snprintf(target, sizeof(target), "redis://127.0.0.1:%d", target_port);
    const char *argv[32] = {fixture_env("RS_RINGSYNC"),
                            "sync",
                            "--source",
                            source,
                            "--target",
                            target,
                            "--workers",
                            workers,
                            quiet ? "--quiet" : NULL};
    int argc = quiet ? 9 : 8;
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        cr_assert(argc < 31, "too many options");
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    int e = 0;
    struct program *p = program_start(argv, NULL, &e);
    cr_assert(p != NULL, "cannot start %s: %s", argv[0], strerror(e));
    return p;
}

struct program *ringsync_start(const struct redis_fixture *src, const struct redis_fixture *dst,
                               const char *workers, const char *extra)
{
    const char *const more[] = {extra, NULL};
    return ringsync_start_with(src, dst, workers, more);
}

/* What a failure should add when ringsync stopped on a signal this test did
 * not send (every SIGINT the test sends goes through ringsync_stop). */
const char *foreign_signal_hint(const char *err)
{
    return strstr(err, "stopped by SIG") != NULL
               ? "\n(ringsync was stopped by a signal this test did not send: another process "
                 "signalled it, e.g. a kill by name)"
               : "";
}

void wait_snapshot_applied(struct program *p)
{
    if (!program_wait_for_stderr(p, "snapshot applied", SNAPSHOT_TIMEOUT_MS))
        ringsync_fail(p, "no \"snapshot applied\" within %d ms", SNAPSHOT_TIMEOUT_MS);
}

bool stderr_has(const struct program *p, const char *needle)
{
    char *s = program_stderr(p, NULL);
    bool has = strstr(s, needle) != NULL;
    free(s);
    return has;
}

/* SIGINT: exit 0, "stopped by SIGINT", and everything received applied. */
void ringsync_stop(struct program *p, const char *what)
{
    struct program_result r;
    ringsync_stop_result(p, what, &r);
    program_result_deinit(&r);
}

void ringsync_stop_result(struct program *p, const char *what, struct program_result *out)
{
    struct program_result r;
    program_finish(p, SIGINT, STOP_TIMEOUT_MS, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 0, "%s: ringsync ended with %s after SIGINT; stderr:\n%s",
              what, program_result_describe(&r, st, sizeof(st)), r.err);
    const char *line = strstr(r.err, "stopped by SIGINT");
    cr_assert(line != NULL, "%s: no \"stopped by SIGINT\" line; stderr:\n%s", what, r.err);
    const char *at = strstr(line, "applied offset ");
    uint64_t applied = 0, received = 0;
    cr_assert(at != NULL &&
                  sscanf(at, "applied offset %" SCNu64 " of %" SCNu64, &applied, &received) == 2,
              "%s: the stop line does not say \"applied offset A of R\":\n%s", what, r.err);
    cr_assert(applied == received,
              "%s: stopped with offset %" PRIu64 " applied of %" PRIu64
              " received, after the load was acknowledged:\n%s",
              what, applied, received, r.err);
    *out = r;
}

/* ------------------------------------------------------- INFO replication */

/* Reads the source's master_repl_offset and the slave lines: ringsync is the
 * one with port=0, the native replica the one with replica_port. */
void repl_view_take(redisContext *src, int replica_port, struct repl_view *v)
{
    memset(v, 0, sizeof(*v));
    v->master_offset = -1;
    redisReply *r = redis_fixture_command(src, "INFO replication");
    cr_assert(r->type == REDIS_REPLY_STRING);
    snprintf(v->text, sizeof(v->text), "%s", r->str);
    for (char *line = strtok(r->str, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
        long long off;
        if (sscanf(line, "master_repl_offset:%lld", &off) == 1) {
            v->master_offset = off;
            continue;
        }
        if (strncmp(line, "slave", 5) != 0 || strchr(line, ':') == NULL)
            continue;
        const char *port = strstr(line, ",port=");
        const char *state = strstr(line, ",state=");
        const char *offset = strstr(line, ",offset=");
        if (port == NULL || state == NULL || offset == NULL)
            continue;
        int p = atoi(port + 6);
        off = atoll(offset + 8);
        if (p == 0) {
            v->has_ringsync = true;
            v->ringsync_offset = off;
            size_t n = strcspn(state + 7, ",");
            snprintf(v->ringsync_state, sizeof(v->ringsync_state), "%.*s", (int)n, state + 7);
        } else if (p == replica_port) {
            v->has_replica = true;
            v->replica_offset = off;
        }
    }
    freeReplyObject(r);
    cr_assert(v->master_offset >= 0, "no master_repl_offset in:\n%s", v->text);
}

/* Waits until the source shows ringsync as a replica (its PSYNC is in). */
void wait_ringsync_listed(struct redis_fixture *src, struct program *p)
{
    long long deadline = fixture_now_ms() + 10000;
    struct repl_view v;
    for (;;) {
        repl_view_take(src->ctx, -1, &v);
        if (v.has_ringsync)
            return;
        if (fixture_now_ms() > deadline || program_has_exited(p))
            ringsync_fail(p, "the source does not list ringsync as a replica:\n%s", v.text);
        sleep_ms(2);
    }
}

/* Waits until ringsync's applied offset (and the native replica's, when
 * replica_port > 0) equals the source's master_repl_offset. ringsync's must
 * never be past it: an ACK beyond what the source sent is a lie. */
void wait_caught_up(struct redis_fixture *src, int replica_port, struct program *p,
                    const char *what)
{
    long long deadline = fixture_now_ms() + CATCH_UP_TIMEOUT_MS;
    struct repl_view v;
    for (;;) {
        repl_view_take(src->ctx, replica_port, &v);
        cr_assert(!v.has_ringsync || v.ringsync_offset <= v.master_offset,
                  "%s: ringsync acknowledged offset %lld, past the source's %lld:\n%s", what,
                  v.ringsync_offset, v.master_offset, v.text);
        bool ringsync_done = v.has_ringsync && v.ringsync_offset == v.master_offset;
        bool replica_done =
            replica_port <= 0 || (v.has_replica && v.replica_offset == v.master_offset);
        if (ringsync_done && replica_done)
            return;
        if (program_has_exited(p))
            ringsync_fail(p, "%s: ringsync exited while catching up", what);
        if (fixture_now_ms() > deadline)
            ringsync_fail(p,
                          "%s: within %d ms, ringsync's applied offset %lld (state %s) and the "
                          "native replica's %lld did not both reach the source's %lld:\n%s",
                          what, CATCH_UP_TIMEOUT_MS, v.ringsync_offset, v.ringsync_state,
                          v.replica_offset, v.master_offset, v.text);
        sleep_ms(20);
    }
}

/* ------------------------------------------------- a cluster as the source */

/* How many times needle occurs in text. */
static int count_occurrences(const char *text, const char *needle)
{
    int n = 0;
    for (const char *s = text; (s = strstr(s, needle)) != NULL; s += strlen(needle))
        n++;
    return n;
}

void wait_snapshots_applied(struct program *p, int n)
{
    long long deadline = fixture_now_ms() + SNAPSHOT_TIMEOUT_MS;
    for (;;) {
        char *err = program_stderr(p, NULL);
        int seen = count_occurrences(err, "snapshot applied");
        free(err);
        if (seen >= n)
            return;
        if (program_has_exited(p))
            ringsync_fail(p, "ringsync exited after %d \"snapshot applied\" of %d", seen, n);
        if (fixture_now_ms() > deadline)
            ringsync_fail(p, "%d \"snapshot applied\" of %d within %d ms", seen, n,
                          SNAPSHOT_TIMEOUT_MS);
        sleep_ms(20);
    }
}

void wait_caught_up_all(const struct cluster_fixture *src, struct program *p, const char *what)
{
    struct cluster_fixture_view cv;
    cluster_fixture_view_take(src, &cv);
    cr_assert(cv.nmasters > 0, "%s: the source cluster lists no master", what);
    long long deadline = fixture_now_ms() + CATCH_UP_TIMEOUT_MS;
    for (;;) {
        char state[1024] = "";
        size_t used = 0;
        int done = 0;
        for (int i = 0; i < cv.nmasters; i++) {
            int node = cv.masters[i];
            struct repl_view v;
            repl_view_take(src->nodes[node]->ctx, -1, &v);
            cr_assert(!v.has_ringsync || v.ringsync_offset <= v.master_offset,
                      "%s: on source master node %d (port %d), ringsync acknowledged offset "
                      "%lld, past its %lld:\n%s",
                      what, node, src->nodes[node]->port, v.ringsync_offset, v.master_offset,
                      v.text);
            done += v.has_ringsync && v.ringsync_offset == v.master_offset;
            int w = snprintf(state + used, sizeof(state) - used,
                             "\n  master node %d (port %d): master_repl_offset %lld, ringsync %s",
                             node, src->nodes[node]->port, v.master_offset,
                             v.has_ringsync ? "" : "not listed");
            if (w > 0 && used + (size_t)w < sizeof(state))
                used += (size_t)w;
            if (v.has_ringsync) {
                w = snprintf(state + used, sizeof(state) - used, "at %lld (state %s)",
                             v.ringsync_offset, v.ringsync_state);
                if (w > 0 && used + (size_t)w < sizeof(state))
                    used += (size_t)w;
            }
        }
        if (done == cv.nmasters)
            return;
        if (program_has_exited(p))
            ringsync_fail(p, "%s: ringsync exited while catching up:%s", what, state);
        if (fixture_now_ms() > deadline)
            ringsync_fail(p,
                          "%s: within %d ms, ringsync's applied offset did not reach "
                          "master_repl_offset on every source master:%s",
                          what, CATCH_UP_TIMEOUT_MS, state);
        sleep_ms(20);
    }
}

void ringsync_stop_jobs_result(struct program *p, const char *what, int jobs,
                               struct program_result *out)
{
    struct program_result r;
    program_finish(p, SIGINT, STOP_TIMEOUT_MS, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 0, "%s: ringsync ended with %s after SIGINT; stderr:\n%s",
              what, program_result_describe(&r, st, sizeof(st)), r.err);
    int lines = 0;
    for (const char *line = r.err; (line = strstr(line, "stopped by SIGINT")) != NULL; line++) {
        lines++;
        const char *eol = strchr(line, '\n');
        const char *at = strstr(line, "applied offset ");
        uint64_t applied = 0, received = 0;
        cr_assert(
            at != NULL && (eol == NULL || at < eol) &&
                sscanf(at, "applied offset %" SCNu64 " of %" SCNu64, &applied, &received) == 2,
            "%s: stop line %d does not say \"applied offset A of R\":\n%s", what, lines, r.err);
        cr_assert(applied == received,
                  "%s: stop line %d: offset %" PRIu64 " applied of %" PRIu64
                  " received, after the load was acknowledged:\n%s",
                  what, lines, applied, received, r.err);
    }
    cr_assert(lines == jobs,
              "%s: %d \"stopped by SIGINT\" lines, not one per job (%d); stderr:\n%s", what, lines,
              jobs, r.err);
    *out = r;
}

void ringsync_stop_jobs(struct program *p, const char *what, int jobs)
{
    struct program_result r;
    ringsync_stop_jobs_result(p, what, jobs, &r);
    program_result_deinit(&r);
}

long long info_number(redisContext *c, const char *section, const char *field)
{
    char buf[64];
    cr_assert(redis_fixture_info(c, section, field, buf, sizeof(buf)), "no %s in INFO %s", field,
              section);
    return atoll(buf);
}
