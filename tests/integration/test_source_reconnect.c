/* test_source_reconnect.c - a lost source link is taken up again as a
 * native replica does (issue 15, "Reconnects"): PSYNC from the offset
 * received, nothing fetched twice, nothing missed. The source drops its
 * replicas (CLIENT KILL TYPE replica; REPLICAOF then REPLICAOF NO ONE, which
 * gives it a new replid), goes silent (SIGSTOP past --source-timeout), or
 * loses the offset from its backlog while ringsync is away (the job stops,
 * saying so). Each ends equal to a native replica of the same source, and
 * the source's own counters show partial resyncs, not full ones. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_fixture.h"
#include "dataset_compare.h"
#include "redis_fixture.h"
#include "slot.h"
#include "sync_watch.h"

static const char *const src_args[] = {"--enable-debug-command", "yes", "--repl-backlog-size",
                                       "64mb", NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

static void burst(redisContext *c, int r0, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (int i = r0; i < r0 + n; i++) {
        redis_pipeline_append(&pl, "INCR cnt:%d", i % 200);
        redis_pipeline_append(&pl, "LPUSH list:%d %d", i % 30, i);
        redis_pipeline_append(&pl, "APPEND app:%d x", i % 20);
        redis_pipeline_append(&pl, "SET str:%d v%d", i % 300, i);
    }
    redis_pipeline_flush(&pl);
}

static long long stat(redisContext *c, const char *field)
{
    return info_number(c, "stats", field);
}

TestSuite(source_reconnect, .fini = redis_fixture_stop_all);

Test(source_reconnect, a_source_that_drops_its_replicas_is_followed_with_partial_resyncs,
     .timeout = 120)
{
    struct redis_fixture_opts so = {.extra_args = src_args}, o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *rep = redis_fixture_start(&o);
    struct redis_fixture *dst = redis_fixture_start(&o);
    redis_fixture_replicate(rep, src, 20000);
    burst(src->ctx, 0, 500);
    struct program *p = ringsync_start(src, dst, "2", NULL);
    wait_snapshot_applied(p);
    long long full = stat(src->ctx, "sync_full"), partial = stat(src->ctx, "sync_partial_ok");
    for (int k = 0; k < 3; k++) {
        burst(src->ctx, 1000 * (k + 1), 1000);
        redis_fixture_exec(src->ctx, "CLIENT KILL TYPE replica");
    }
    /* REPLICAOF a master that is not there, then NO ONE: every replica link
     * closes and the source takes a new replid, keeping the old as replid2 */
    redis_fixture_exec(src->ctx, "REPLICAOF 127.0.0.1 1");
    redis_fixture_exec(src->ctx, "REPLICAOF NO ONE");
    burst(src->ctx, 5000, 1000);
    wait_caught_up(src, rep->port, p, "after the source dropped its replicas");
    cr_assert(stat(src->ctx, "sync_full") == full, "a full resync happened (%lld, was %lld)",
              stat(src->ctx, "sync_full"), full);
    cr_assert(stat(src->ctx, "sync_partial_ok") >= partial + 4,
              "ringsync and the replica made %lld partial resyncs, expected at least 4",
              stat(src->ctx, "sync_partial_ok") - partial);
    cr_assert(stderr_has(p, "reconnected to source"), "ringsync did not say it reconnected");
    assert_dataset_equals(dst, rep, "native replica", "after the source dropped its replicas");
    ringsync_stop(p, "after reconnects");
}

Test(source_reconnect, a_silent_source_is_dropped_and_reconnected, .timeout = 120)
{
    struct redis_fixture_opts so = {.extra_args = src_args}, o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *rep = redis_fixture_start(&o);
    struct redis_fixture *dst = redis_fixture_start(&o);
    redis_fixture_replicate(rep, src, 20000);
    burst(src->ctx, 0, 500);
    const char *const extra[] = {"--source-timeout", "1", "--timeout-ms", "500", NULL};
    struct program *p = ringsync_start_with(src, dst, "1", extra);
    wait_snapshot_applied(p);
    burst(src->ctx, 500, 1000);
    kill(src->pid, SIGSTOP); /* a source that neither writes nor PINGs */
    bool dropped = program_wait_for_stderr(p, "--source-timeout", 5000);
    sleep_ms(1500);
    kill(src->pid, SIGCONT);
    cr_assert(dropped, "ringsync did not notice the silent source:\n%s", program_stderr(p, NULL));
    if (!program_wait_for_stderr(p, "reconnected to source", 20000))
        ringsync_fail(p, "no reconnect after the source woke up");
    burst(src->ctx, 1500, 1000);
    wait_caught_up(src, rep->port, p, "after a silent source");
    assert_dataset_equals(dst, rep, "native replica", "after a silent source");
    ringsync_stop(p, "after a silent source");
}

Test(source_reconnect, a_backlog_that_lost_the_offset_stops_the_job_saying_so, .timeout = 120)
{
    static const char *const small[] = {"--repl-backlog-size", "16kb", NULL};
    struct redis_fixture_opts so = {.extra_args = small};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    burst(src->ctx, 0, 100);
    struct program *p = ringsync_start(src, dst, "1", NULL);
    wait_snapshot_applied(p);
    kill(p->pid, SIGSTOP); /* away while the source writes past its backlog */
    long long had = info_number(src->ctx, "replication", "master_repl_offset");
    redis_fixture_exec(src->ctx, "CLIENT KILL TYPE replica");
    burst(src->ctx, 100, 3000);
    /* Redis trims its backlog a little at a time: until what ringsync needs is gone */
    long long deadline = fixture_now_ms() + 30000;
    for (int i = 0;
         info_number(src->ctx, "replication", "repl_backlog_first_byte_offset") <= had + 1; i++) {
        cr_assert(fixture_now_ms() < deadline, "the source's backlog kept offset %lld", had + 1);
        redis_fixture_exec(src->ctx, "SET trim:%d x", i % 10);
        sleep_ms(10);
    }
    kill(p->pid, SIGCONT);
    struct program_result r;
    program_finish(p, 0, 30000, &r);
    cr_assert(r.exited && r.exit_code == 1, "ringsync did not stop with 1: %s", r.err);
    cr_assert(strstr(r.err, "+FULLRESYNC") != NULL && strstr(r.err, "reconnecting") != NULL,
              "the stop does not say the source lost the offset: %s", r.err);
    program_result_deinit(&r);
}

/* The source's replica is promoted and the old master made its replica
 * (behind the same address ringsync was given): the old master closes its
 * replicas and serves them again as a replica, from the same history. */
Test(source_reconnect, a_failover_behind_the_same_address_is_followed, .timeout = 120)
{
    struct redis_fixture_opts so = {.extra_args = src_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *other = redis_fixture_start(&so); /* becomes the master */
    struct redis_fixture *dst = redis_fixture_start(&so);
    redis_fixture_replicate(other, src, 20000);
    burst(src->ctx, 0, 500);
    struct program *p = ringsync_start(src, dst, "1", NULL);
    wait_snapshot_applied(p);
    burst(src->ctx, 500, 1000);
    long long deadline = fixture_now_ms() + 20000;
    while (info_number(other->ctx, "replication", "master_repl_offset") <
           info_number(src->ctx, "replication", "master_repl_offset")) {
        cr_assert(fixture_now_ms() < deadline, "the replica did not catch up before the failover");
        sleep_ms(10);
    }
    redis_fixture_exec(other->ctx, "REPLICAOF NO ONE");
    char port[16];
    snprintf(port, sizeof(port), "%d", other->port);
    redis_fixture_exec(src->ctx, "REPLICAOF 127.0.0.1 %s", port);
    burst(other->ctx, 1500, 1000); /* the new master's writes, through the old one */
    deadline = fixture_now_ms() + 30000;
    for (;;) { /* ringsync's applied offset, as the old master (now a replica) shows it */
        struct repl_view v;
        repl_view_take(src->ctx, -1, &v);
        long long want = info_number(other->ctx, "replication", "master_repl_offset");
        if (v.has_ringsync && v.ringsync_offset == want &&
            info_number(src->ctx, "replication", "master_repl_offset") == want)
            break;
        if (program_has_exited(p) || fixture_now_ms() > deadline)
            ringsync_fail(p, "ringsync did not follow the failover:\n%s", v.text);
        sleep_ms(20);
    }
    cr_assert(stderr_has(p, "reconnected to source"), "no reconnect was said");
    assert_dataset_equals(dst, other, "new master", "after a failover of the source");
    ringsync_stop(p, "after a failover of the source");
}

/* A cluster source's master killed: its replica takes over, and the job of
 * that master finds it and goes on from the same offset. */
Test(source_reconnect, a_cluster_source_master_killed_is_followed_to_its_promoted_replica,
     .timeout = 180)
{
    struct cluster_fixture_opts co = {.masters = 3, .replicas_per_master = 1};
    struct cluster_fixture *src = cluster_fixture_start(&co);
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *dst = redis_fixture_start(&o);
    struct cluster_fixture_writer w;
    cluster_fixture_writer_init(&w, src);
    for (int i = 0; i < 3000; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "k:%d", i % 600);
        redis_pipeline_append(cluster_fixture_writer_for(&w, key, (size_t)len), "INCR %s", key);
    }
    cluster_fixture_writer_flush(&w);
    cluster_fixture_writer_deinit(&w);
    const char *const extra[] = {"--timeout-ms", "1000", NULL};
    struct program *p = ringsync_start_with(src->nodes[0], dst, "1", extra);
    wait_snapshots_applied(p, 3);
    wait_caught_up_all(src, p, "before the kill");
    /* master 1's replica (node 4) has everything, then master 1 dies (WAIT
     * would count ringsync, a replica too) */
    long long deadline = fixture_now_ms() + 10000;
    while (info_number(src->nodes[4]->ctx, "replication", "master_repl_offset") <
           info_number(src->nodes[1]->ctx, "replication", "master_repl_offset")) {
        cr_assert(fixture_now_ms() < deadline, "the replica did not catch up");
        sleep_ms(10);
    }
    cr_assert(kill(src->nodes[1]->pid, SIGKILL) == 0);
    deadline = fixture_now_ms() + 30000;
    for (;;) { /* the replica (node 4) takes over master 1's slots */
        char role[32] = "";
        redis_fixture_info(src->nodes[4]->ctx, "replication", "role", role, sizeof(role));
        if (strcmp(role, "master") == 0)
            break;
        cr_assert(fixture_now_ms() < deadline, "no failover within 30 s");
        sleep_ms(100);
    }
    sleep_ms(500); /* the other nodes learn it */
    /* the masters now: nodes 0 and 2, and node 4 for master 1's slots */
    struct redis_pipeline pl[5];
    for (int n = 0; n < 5; n++)
        if (n != 1 && n != 3)
            redis_pipeline_init(&pl[n], src->nodes[n]->ctx, 500);
    for (int i = 3000; i < 6000; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "k:%d", i % 600);
        int m = src->slot_master[slot_of_key(key, (size_t)len)];
        redis_pipeline_append(&pl[m == 1 ? 4 : m], "INCR %s", key);
    }
    for (int n = 0; n < 5; n++)
        if (n != 1 && n != 3)
            redis_pipeline_flush(&pl[n]);
    wait_caught_up_all(src, p, "after the failover");
    cr_assert(stderr_has(p, "reconnected to source"), "no reconnect was said");
    assert_cluster_equals(src, dst, "destination", "after a source master failed over");
    ringsync_stop_jobs(p, "after a source failover", 3);
    cluster_fixture_stop(src);
}

/* The source shut down (saving its RDB, with its replication id) and
 * started again: a replica continues with a partial resync, and so does
 * ringsync. */
Test(source_reconnect, a_source_restarted_with_its_data_is_followed, .timeout = 120)
{
    static const char *const saving[] = {
        "--enable-debug-command", "yes", "--repl-backlog-size", "64mb", "--save", "3600 1", NULL};
    struct redis_fixture_opts so = {.extra_args = saving}, o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *rep = redis_fixture_start(&o);
    struct redis_fixture *dst = redis_fixture_start(&o);
    redis_fixture_replicate(rep, src, 20000);
    burst(src->ctx, 0, 500);
    struct program *p = ringsync_start(src, dst, "1", NULL);
    wait_snapshot_applied(p);
    burst(src->ctx, 500, 1000);
    wait_caught_up(src, rep->port, p, "before the restart");
    redis_fixture_restart(src, &so, SIGTERM); /* SHUTDOWN: it saves, then loads it again */
    burst(src->ctx, 1500, 1000);
    wait_caught_up(src, rep->port, p, "after the source restarted");
    /* its counters start at 0 again: every resync since was partial */
    cr_assert(stat(src->ctx, "sync_full") == 0 && stat(src->ctx, "sync_partial_ok") >= 2,
              "after the restart: %lld full and %lld partial resyncs, expected 0 and 2",
              stat(src->ctx, "sync_full"), stat(src->ctx, "sync_partial_ok"));
    cr_assert(stderr_has(p, "reconnected to source"), "no reconnect was said");
    assert_dataset_equals(dst, rep, "native replica", "after the source restarted");
    ringsync_stop(p, "after a source restart");
}
