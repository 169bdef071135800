/* test_relay.c - `ringsync sync --target-mode relay` (src/RELAY.md, issue
 * 20): the destination becomes ringsync's replica and loads the source's
 * snapshot and stream as ringsync forwards them. Checked against a native
 * replica of the same source, key by key: after the full sync and the
 * stream, after ringsync was killed and started again (the destination's
 * own PSYNC resumes it), after a clean stop (promoted, then resumed), after
 * a link dropped by the source or the destination; the destination's settings put back
 * at the stop; strangers at the relay's port refused; what a relay cannot
 * do refused at start. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataset_compare.h"
#include "status_client.h"
#include "redis_fixture.h"
#include "sync_watch.h"
#include "write_families.h"

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};
static const char *const source_args[] = {"--enable-debug-command", "yes", "--repl-backlog-size",
                                          "64mb", NULL};

struct trio {
    struct redis_fixture *src, *rep, *dst; /* the source, its native replica, the destination */
};

static void trio_start(struct trio *t, int populate)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    t->src = redis_fixture_start(&so);
    if (populate > 0)
        redis_fixture_exec(t->src->ctx, "DEBUG POPULATE %d key 100", populate);
    t->rep = redis_fixture_start(&o);
    t->dst = redis_fixture_start(&o);
    redis_fixture_replicate(t->rep, t->src, 20000);
}

/* Counters and lists: a command lost or applied twice shows. */
static void load_burst(redisContext *c, int r0, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (int i = r0; i < r0 + n; i++) {
        redis_pipeline_append(&pl, "INCR cnt:%d", i % 300);
        redis_pipeline_append(&pl, "LPUSH list:%d %d", i % 50, i);
        redis_pipeline_append(&pl, "APPEND app:%d x%d", i % 40, i % 10);
        redis_pipeline_append(&pl, "HINCRBY hash:%d f%d 1", i % 30, i % 7);
        redis_pipeline_append(&pl, "SET str:%d v%d EX 100000", i % 500, i);
        if (i % 100 == 0) {
            redis_pipeline_append(&pl, "MULTI");
            redis_pipeline_append(&pl, "INCR cnt:%d", i % 7);
            redis_pipeline_append(&pl, "RPUSH list:%d t%d", i % 3, i);
            redis_pipeline_append(&pl, "EXEC");
        }
    }
    redis_pipeline_flush(&pl);
}

static void families(redisContext *c)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (size_t i = 0; i < write_families_one_tag_n; i++)
        redis_pipeline_append(&pl, write_families_one_tag[i]);
    redis_pipeline_flush(&pl);
}

static struct program *relay(const struct trio *t, const char *extra)
{
    const char *const more[] = {"--target-mode", "relay", extra, NULL};
    return ringsync_start_with(t->src, t->dst, "1", more);
}

static void crash(struct program *p)
{
    struct program_result r;
    program_finish(p, SIGKILL, 10000, &r);
    cr_assert(!r.exited && r.term_signal == SIGKILL, "ringsync did not die of SIGKILL: %s", r.err);
    program_result_deinit(&r);
}

static void info_field(redisContext *c, const char *section, const char *field, char *buf,
                       size_t cap)
{
    cr_assert(redis_fixture_info(c, section, field, buf, cap), "no %s in INFO %s", field, section);
}

static void config_is(redisContext *c, const char *name, const char *want, const char *what)
{
    redisReply *r = redis_fixture_command(c, "CONFIG GET %s", name);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2, "CONFIG GET %s", name);
    cr_assert_str_eq(r->element[1]->str, want, "%s: the destination's %s is '%s', not '%s'", what,
                     name, r->element[1]->str, want);
    freeReplyObject(r);
}

/* After a clean stop: a writable master with its own settings back. */
static void assert_promoted(struct redis_fixture *dst, const char *what)
{
    char role[16];
    info_field(dst->ctx, "replication", "role", role, sizeof(role));
    cr_assert_str_eq(role, "master", "%s: the destination is still a %s", what, role);
    config_is(dst->ctx, "masterauth", "", what);
    config_is(dst->ctx, "repl-diskless-load", "disabled", what);
}

/* The relay's port, from its start line ("replicates from 127.0.0.1:N"). */
static int relay_port(struct program *p)
{
    cr_assert(program_wait_for_stderr(p, "replicates from", 10000), "no start line");
    char *s = program_stderr(p, NULL);
    const char *at = strstr(s, "replicates from 127.0.0.1:");
    cr_assert(at != NULL, "start line without the address:\n%s", s);
    int port = atoi(at + strlen("replicates from 127.0.0.1:"));
    free(s);
    return port;
}

TestSuite(relay, .fini = redis_fixture_stop_all);

Test(relay, a_full_sync_and_the_stream_equal_a_native_replica_and_the_stop_promotes, .timeout = 120)
{
    struct trio t;
    trio_start(&t, 20000);
    families(t.src->ctx);
    load_burst(t.src->ctx, 0, 500);
    struct program *p = relay(&t, NULL);
    wait_snapshot_applied(p);
    char role[16];
    info_field(t.dst->ctx, "replication", "role", role, sizeof(role));
    cr_assert_str_eq(role, "slave", "the destination is not a replica while the relay runs");
    load_burst(t.src->ctx, 500, 3000);
    wait_caught_up(t.src, t.rep->port, p, "the stream");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after the stream");
    /* the status server shows the relay: following, all applied */
    char *err = program_stderr(p, NULL);
    const char *at = strstr(err, "status on http://");
    cr_assert(at != NULL, "no status server:\n%s", err);
    char addr[64];
    at += strlen("status on http://");
    snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(at, "/"), at);
    free(err);
    int code = 0;
    char *body = NULL, herr[256];
    cr_assert(status_client_get(addr, "/status.txt", 5000, &code, &body, herr, sizeof(herr)) == 0,
              "GET /status.txt: %s", herr);
    cr_assert(strstr(body, "state: incremental") != NULL && strstr(body, " 0 bytes and ") != NULL &&
                  strstr(body, "ready for cut-over: yes") != NULL,
              "the relay's status:\n%s", body);
    free(body);
    ringsync_stop(p, "relay");
    assert_promoted(t.dst, "after the stop");
    redis_fixture_exec(t.dst->ctx, "SET written:after:the:cutover 1");
}

Test(relay, killed_then_stopped_cleanly_resumes_each_time_from_the_destinations_offset,
     .timeout = 180)
{
    struct trio t;
    trio_start(&t, 5000);
    struct program *p = relay(&t, NULL);
    wait_snapshot_applied(p);
    int round = 0;
    for (int k = 0; k < 3; k++) { /* killed mid-load */
        load_burst(t.src->ctx, round, 1000);
        round += 1000;
        crash(p);
        load_burst(t.src->ctx, round, 500);
        round += 500;
        char role[16];
        info_field(t.dst->ctx, "replication", "role", role, sizeof(role));
        cr_assert_str_eq(role, "slave", "a killed relay's destination is no longer a replica");
        p = relay(&t, NULL);
        if (!program_wait_for_stderr(p, "resumed with a partial resync", 20000))
            ringsync_fail(p, "kill %d: no partial resync", k);
        cr_assert(stderr_has(p, "a replica of this data already"), "kill %d: not seen as one", k);
        wait_caught_up(t.src, t.rep->port, p, "after a kill");
        assert_dataset_equals(t.dst, t.rep, "native replica", "after a kill");
    }
    /* a clean stop promotes; the same command resumes with the source's replid */
    ringsync_stop(p, "before the resume of a promoted destination");
    assert_promoted(t.dst, "clean stop");
    load_burst(t.src->ctx, round, 1000);
    round += 1000;
    p = relay(&t, NULL);
    if (!program_wait_for_stderr(p, "resumed with a partial resync", 20000))
        ringsync_fail(p, "a promoted destination was not resumed");
    cr_assert(stderr_has(p, "promoted by a relay before"), "the promoted destination not seen");
    load_burst(t.src->ctx, round, 500);
    wait_caught_up(t.src, t.rep->port, p, "after the promoted resume");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after the promoted resume");
    ringsync_stop(p, "the end");
    /* a write on the promoted destination: the next start must not resume over it */
    redis_fixture_exec(t.dst->ctx, "SET local:write 1");
    p = relay(&t, NULL);
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, "taken writes since") &&
                  strstr(r.err, "holds"),
              "a diverged destination was not refused:\n%s", r.err);
    program_result_deinit(&r);
}

Test(relay, links_dropped_by_either_side_are_resumed_without_a_full_sync, .timeout = 120)
{
    struct trio t;
    trio_start(&t, 5000);
    struct program *p = relay(&t, NULL);
    wait_snapshot_applied(p);
    for (int k = 0; k < 3; k++) {
        load_burst(t.src->ctx, k * 1000, 1000);
        wait_caught_up(t.src, t.rep->port, p, "before the drop");
        /* the source drops its replicas (ringsync, and the native one),
         * or the destination drops its link to the relay */
        redisReply *r = k % 2 == 0 ? redis_fixture_command(t.src->ctx, "CLIENT KILL TYPE replica")
                                   : redis_fixture_command(t.dst->ctx, "CLIENT KILL TYPE master");
        cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer >= 1, "no link killed");
        freeReplyObject(r);
        load_burst(t.src->ctx, k * 1000 + 1000, 200);
        wait_caught_up(t.src, t.rep->port, p, "after the drop");
    }
    assert_dataset_equals(t.dst, t.rep, "native replica", "after three drops");
    char *err = program_stderr(p, NULL);
    int fulls = 0, resumes = 0;
    for (const char *at = err; (at = strstr(at, "full sync: the source sends")) != NULL; at++)
        fulls++;
    for (const char *at = err; (at = strstr(at, "resumed with a partial resync")) != NULL; at++)
        resumes++;
    cr_assert(fulls == 1 && resumes == 3,
              "three dropped links: %d full syncs and %d partial resyncs (want 1 and 3):\n%s",
              fulls, resumes, err);
    free(err);
    ringsync_stop(p, "after the drops");
}

Test(relay, snapshot_only_ends_once_the_destination_loaded_it, .timeout = 60)
{
    struct trio t;
    trio_start(&t, 50000);
    families(t.src->ctx);
    const char *const more[] = {"--target-mode", "relay", "--snapshot-only", NULL};
    struct program *p = ringsync_start_with(t.src, t.dst, "1", more);
    struct program_result r;
    program_finish(p, 0, 30000, &r);
    cr_assert(r.exited && r.exit_code == 0 && strstr(r.err, "done after"),
              "--snapshot-only did not end by itself:\n%s", r.err);
    program_result_deinit(&r);
    assert_promoted(t.dst, "--snapshot-only");
    long long deadline = fixture_now_ms() + 20000;
    while (info_number(t.rep->ctx, "replication", "master_repl_offset") !=
           info_number(t.src->ctx, "replication", "master_repl_offset")) {
        cr_assert(fixture_now_ms() < deadline, "the native replica did not catch up");
        sleep_ms(20);
    }
    assert_dataset_equals(t.dst, t.rep, "native replica", "after --snapshot-only");
}

/* Anyone else at the relay's port gets nothing of the source. */
static void expect_refused(int port, const char *send, const char *want)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "cannot reach the relay");
    cr_assert(write(fd, send, strlen(send)) == (ssize_t)strlen(send));
    char buf[512];
    size_t n = 0;
    ssize_t k;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fd);
    cr_assert(strstr(buf, want) != NULL && strstr(buf, "FULLRESYNC") == NULL,
              "the relay answered '%s' with '%s'", send, buf);
}

Test(relay, strangers_at_the_relays_port_are_refused, .timeout = 60)
{
    struct trio t;
    trio_start(&t, 1000);
    struct program *p = relay(&t, NULL);
    int port = relay_port(p);
    wait_snapshot_applied(p);
    /* while the destination is served: turned away */
    expect_refused(port, "*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n", "-ERR");
    expect_refused(port, "*2\r\n$4\r\nAUTH\r\n$5\r\nguess\r\n", "-ERR");
    load_burst(t.src->ctx, 0, 200);
    wait_caught_up(t.src, t.rep->port, p, "with strangers about");
    assert_dataset_equals(t.dst, t.rep, "native replica", "with strangers about");
    ringsync_stop(p, "strangers");
}

static void expect_exit(struct trio *t, const char *const *more, int code, const char *needle)
{
    struct program *p = ringsync_start_with(t->src, t->dst, "1", more);
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    cr_assert(r.exited && r.exit_code == code && strstr(r.err, needle),
              "expected exit %d saying '%s':\n%s", code, needle, r.err);
    program_result_deinit(&r);
}

Test(relay, what_a_relay_cannot_do_is_refused_at_start, .timeout = 60)
{
    struct trio t;
    trio_start(&t, 100);
    const char *const dbmap[] = {"--target-mode", "relay", "--db-map", "0:1", NULL};
    expect_exit(&t, dbmap, 2, "--db-map");
    const char *const filt[] = {"--target-mode", "relay", "--filter-key-prefix", "a", NULL};
    expect_exit(&t, filt, 2, "filters");
    const char *const keep[] = {"--target-mode", "relay", "--target-nonempty", "keep", NULL};
    expect_exit(&t, keep, 2, "keep");
    const char *const any[] = {"--target-mode", "relay", "--relay-listen", "0.0.0.0:0", NULL};
    expect_exit(&t, any, 1, "give the one it reaches");
    /* a destination with keys of its own */
    redis_fixture_exec(t.dst->ctx, "SET mine 1");
    const char *const plain[] = {"--target-mode", "relay", NULL};
    expect_exit(&t, plain, 1, "holds 1 keys");
    config_is(t.dst->ctx, "masterauth", "", "refused at start");
    /* a destination that replicates from a server with other data */
    redis_fixture_exec(t.dst->ctx, "FLUSHALL");
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *other = redis_fixture_start(&o);
    redis_fixture_exec(other->ctx, "SET other 1");
    redis_fixture_replicate(t.dst, other, 20000);
    expect_exit(&t, plain, 1, "REPLICAOF NO ONE on it first");
}
