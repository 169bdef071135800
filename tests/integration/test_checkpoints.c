/* test_checkpoints.c - never lose a write, never apply one twice (issue 15,
 * src/CHECKPOINTS.md): ringsync killed with SIGKILL at random points of the
 * stream and of the full sync, started again with the same command line,
 * ends equal to a native replica of the source; a clean stop resumes from
 * exactly where it stopped; a source that lost the offset is said plainly.
 *
 * The load is mostly counters made by INCR / INCRBY / LPUSH / APPEND /
 * HINCRBY (a command applied twice or lost shows as a wrong number), with
 * SETs, DELs, transactions and a cross-worker RENAME (a fence) among them.
 * The seed of the random kill points is logged. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_fixture.h"
#include "dataset_compare.h"
#include "redis_fixture.h"
#include "sync_watch.h"

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};
/* the source keeps what the kills need to resume (the default is 1 MB) */
static const char *const source_args[] = {"--enable-debug-command", "yes", "--repl-backlog-size",
                                          "256mb", NULL};

struct trio {
    struct redis_fixture *src, *rep, *dst; /* the source, its native replica, the destination */
};

/* populate: keys the source holds before its replica attaches (DEBUG
 * POPULATE is not replicated). */
static void trio_start(struct trio *t, const char *const *src_args, int populate)
{
    struct redis_fixture_opts so = {.extra_args = src_args ? src_args : source_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    t->src = redis_fixture_start(&so);
    if (populate > 0)
        redis_fixture_exec(t->src->ctx, "DEBUG POPULATE %d key 1000", populate);
    t->rep = redis_fixture_start(&o);
    t->dst = redis_fixture_start(&o);
    redis_fixture_replicate(t->rep, t->src, 20000);
}

/* One burst of the load: n rounds of counters and others, round r0 on. */
static void load_burst(redisContext *c, int r0, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (int i = r0; i < r0 + n; i++) {
        redis_pipeline_append(&pl, "INCR cnt:%d", i % 300);
        redis_pipeline_append(&pl, "INCRBY big:%d 7", i % 97);
        redis_pipeline_append(&pl, "LPUSH list:%d %d", i % 50, i);
        redis_pipeline_append(&pl, "APPEND app:%d x%d", i % 40, i % 10);
        redis_pipeline_append(&pl, "HINCRBY hash:%d f%d 1", i % 30, i % 7);
        redis_pipeline_append(&pl, "SET str:%d v%d", i % 500, i);
        redis_pipeline_append(&pl, "SADD set:%d m%d", i % 20, i % 13);
        if (i % 50 == 0)
            redis_pipeline_append(&pl, "DEL str:%d set:%d", (i / 50) % 500, (i / 50) % 20);
        if (i % 100 == 0) { /* a transaction: its INCRs run once, together */
            redis_pipeline_append(&pl, "MULTI");
            redis_pipeline_append(&pl, "INCR tx:a");
            redis_pipeline_append(&pl, "LPUSH tx:l %d", i);
            redis_pipeline_append(&pl, "EXEC");
        }
        if (i % 250 == 0) { /* keys of two workers' slots: a fence with --workers 2 */
            redis_pipeline_append(&pl, "SET ren:src %d", i);
            redis_pipeline_append(&pl, "RENAME ren:src ren:dst:%d", i % 3);
            redis_pipeline_append(&pl, "INCR ren:dst:%d", i % 3);
        }
    }
    redis_pipeline_flush(&pl);
}

static struct program *start(const struct trio *t, const char *workers)
{
    return ringsync_start_with(t->src, t->dst, workers, NULL);
}

/* SIGKILL, as a crash: no drain, no last checkpoint. */
static void crash(struct program *p)
{
    struct program_result r;
    program_finish(p, SIGKILL, 10000, &r);
    cr_assert(!r.exited && r.term_signal == SIGKILL, "ringsync did not die of SIGKILL: %s", r.err);
    program_result_deinit(&r);
}

TestSuite(checkpoints, .fini = redis_fixture_stop_all);

Test(checkpoints, killed_in_the_stream_ten_times_ends_equal_to_a_native_replica, .timeout = 240)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    unsigned seed = (unsigned)fixture_now_ms();
    srand(seed);
    cr_log_info("kill points: seed %u", seed);
    load_burst(t.src->ctx, 0, 2000); /* the snapshot */
    struct program *p = start(&t, "2");
    wait_snapshot_applied(p);
    int round = 2000;
    for (int k = 0; k < 10; k++) {
        /* a burst, and a kill while ringsync applies it (1..60 ms in) */
        load_burst(t.src->ctx, round, 3000);
        round += 3000;
        sleep_ms(1 + rand() % 60);
        crash(p);
        load_burst(t.src->ctx, round, 500); /* writes while it is down */
        round += 500;
        p = start(&t, k % 2 ? "2" : "1"); /* the worker count may change between runs */
        if (!program_wait_for_stderr(p, "resum", 20000))
            ringsync_fail(p, "kill %d: the restart did not resume from its checkpoints", k + 1);
        cr_assert(!stderr_has(p, "snapshot applied"), "kill %d: a full sync ran again", k + 1);
    }
    wait_caught_up(t.src, t.rep->port, p, "after ten kills");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after ten kills in the stream");
    struct program_result r;
    ringsync_stop_result(p, "after ten kills", &r);
    cr_assert(strstr(r.err, "checkpoint of job") != NULL, "no last checkpoint at the stop: %s",
              r.err);
    program_result_deinit(&r);
}

Test(checkpoints, a_clean_stop_resumes_exactly_where_it_stopped, .timeout = 120)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    load_burst(t.src->ctx, 0, 1000);
    struct program *p = start(&t, "2");
    wait_snapshot_applied(p);
    load_burst(t.src->ctx, 1000, 5000);
    struct program_result r;
    program_finish(p, SIGTERM, 30000, &r);
    cr_assert(r.exited && r.exit_code == 0, "a clean stop did not exit 0: %s", r.err);
    cr_assert(strstr(r.err, "checkpoint of job") != NULL, "no last checkpoint: %s", r.err);
    program_result_deinit(&r);
    load_burst(t.src->ctx, 6000, 1000); /* while it is stopped */
    p = start(&t, "2");
    if (!program_wait_for_stderr(p, "partial resync", 20000))
        ringsync_fail(p, "no partial resync after a clean stop");
    wait_caught_up(t.src, t.rep->port, p, "after a clean stop");
    /* it stopped with everything routed applied: nothing to drop on resume */
    cr_assert(!stderr_has(p, "were not applied again"),
              "a clean stop left commands that the resume had to drop");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after a clean stop and a resume");
    ringsync_stop(p, "after a resume");
}

Test(checkpoints, killed_in_the_full_sync_redoes_it_and_ends_equal, .timeout = 180)
{
    struct trio t;
    trio_start(&t, NULL, 200000); /* a snapshot that takes a while: 200k keys of 1 KB */
    load_burst(t.src->ctx, 0, 500);
    int cut = 0;
    for (int attempt = 0; attempt < 6 && cut < 3; attempt++) {
        struct program *p = start(&t, "2");
        cr_assert(program_wait_for_stderr(p, "ringsync", 1) || true);
        sleep_ms(150 + 100 * attempt);
        bool applied = stderr_has(p, "snapshot applied");
        crash(p);
        if (applied)
            continue; /* too late to cut it: try again, earlier in the next one */
        cut++;
        redis_fixture_exec(t.src->ctx, "INCR during:full:%d", attempt);
    }
    cr_assert(cut >= 1, "no kill landed inside a full sync");
    struct program *p = start(&t, "2");
    wait_snapshot_applied(p);
    cr_assert(stderr_has(p, "unfinished full sync"),
              "the restart did not recognise its own cut full sync");
    load_burst(t.src->ctx, 500, 1000);
    wait_caught_up(t.src, t.rep->port, p, "after full syncs cut");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after full syncs cut by SIGKILL");
    ringsync_stop(p, "after full syncs cut");
}

Test(checkpoints, a_source_that_lost_the_offset_is_said_plainly, .timeout = 120)
{
    static const char *const small_backlog[] = {"--enable-debug-command", "yes",
                                                "--repl-backlog-size", "16kb", NULL};
    struct trio t;
    trio_start(&t, small_backlog, 0);
    load_burst(t.src->ctx, 0, 500);
    struct program *p = start(&t, "1");
    wait_snapshot_applied(p);
    ringsync_stop(p, "before the backlog is lost");
    long long stopped_at = info_number(t.src->ctx, "replication", "master_repl_offset");
    load_burst(t.src->ctx, 500, 3000); /* far more than 16 KB of stream */
    /* Redis trims its backlog a little at a time: wait until the offset
     * after the stop is really gone from it */
    long long deadline = fixture_now_ms() + 30000;
    for (int i = 0;
         info_number(t.src->ctx, "replication", "repl_backlog_first_byte_offset") <= stopped_at + 1;
         i++) {
        cr_assert(fixture_now_ms() < deadline, "the source's backlog kept offset %lld",
                  stopped_at + 1);
        redis_fixture_exec(t.src->ctx, "SET trim:%d x", i % 10);
        sleep_ms(10);
    }
    const char *argv[] = {fixture_env("RS_RINGSYNC"),
                          "sync",
                          "--source",
                          NULL,
                          "--target",
                          NULL,
                          "--quiet",
                          NULL,
                          NULL};
    char suri[64], duri[64];
    snprintf(suri, sizeof(suri), "redis://127.0.0.1:%d", t.src->port);
    snprintf(duri, sizeof(duri), "redis://127.0.0.1:%d", t.dst->port);
    argv[3] = suri;
    argv[5] = duri;
    struct program_result r;
    cr_assert(program_run(argv, NULL, NULL, 60000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 1, "a lost backlog did not stop the job: %s", r.err);
    cr_assert(strstr(r.err, "+FULLRESYNC") != NULL && strstr(r.err, "repl-backlog-size") != NULL &&
                  strstr(r.err, "--resync-on-lost-backlog") != NULL,
              "the message does not say what happened and what to do: %s", r.err);
    program_result_deinit(&r);
    /* --resync-on-lost-backlog: flushed, synced anew, equal */
    p = ringsync_start(t.src, t.dst, "1", "--resync-on-lost-backlog");
    wait_snapshot_applied(p);
    wait_caught_up(t.src, t.rep->port, p, "after a resync");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after a resync on a lost backlog");
    ringsync_stop(p, "after a resync");
}

Test(checkpoints, checkpoint_clear_removes_the_records, .timeout = 60)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    load_burst(t.src->ctx, 0, 200);
    struct program *p = start(&t, "1");
    wait_snapshot_applied(p);
    ringsync_stop(p, "before clear");
    redisReply *k = redis_fixture_command(t.dst->ctx, "KEYS ringsync:cp:*");
    cr_assert(k->type == REDIS_REPLY_ARRAY && k->elements >= 1, "no checkpoint record was written");
    freeReplyObject(k);
    char duri[64], job[64];
    snprintf(duri, sizeof(duri), "redis://127.0.0.1:%d", t.dst->port);
    snprintf(job, sizeof(job), "127.0.0.1:%d", t.src->port);
    const char *argv[] = {
        fixture_env("RS_RINGSYNC"), "checkpoint", "clear", "--target", duri, "--job-id", job, NULL};
    struct program_result r;
    cr_assert(program_run(argv, NULL, NULL, 30000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 0, "checkpoint clear failed: %s", r.err);
    program_result_deinit(&r);
    k = redis_fixture_command(t.dst->ctx, "KEYS ringsync:cp:*");
    cr_assert(k->type == REDIS_REPLY_ARRAY && k->elements == 0, "%zu records are left",
              k->elements);
    freeReplyObject(k);
    /* without its records the job is new, and the destination is not empty */
    const char *sync_argv[] = {
        fixture_env("RS_RINGSYNC"), "sync", "--source", NULL, "--target", duri, "--quiet", NULL};
    char suri[64];
    snprintf(suri, sizeof(suri), "redis://127.0.0.1:%d", t.src->port);
    sync_argv[3] = suri;
    cr_assert(program_run(sync_argv, NULL, NULL, 30000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, "refusing") != NULL,
              "a cleared job should meet the non-empty check: %s", r.err);
    program_result_deinit(&r);
}

Test(checkpoints, killed_in_the_stream_into_a_cluster_ends_equal, .timeout = 240)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    struct cluster_fixture_opts co = {.masters = 3};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    unsigned seed = (unsigned)fixture_now_ms();
    srand(seed);
    cr_log_info("kill points: seed %u", seed);
    load_burst(t.src->ctx, 0, 1000);
    /* per-slot records in the cluster (not the default there: see the README) */
    const char *const extra[] = {"--checkpoint", "target", NULL};
    struct program *p = ringsync_start_with(t.src, c->nodes[0], "2", extra);
    wait_snapshot_applied(p);
    int round = 1000;
    for (int k = 0; k < 5; k++) {
        load_burst(t.src->ctx, round, 3000);
        round += 3000;
        sleep_ms(1 + rand() % 60);
        crash(p);
        load_burst(t.src->ctx, round, 300);
        round += 300;
        p = ringsync_start_with(t.src, c->nodes[0], k % 2 ? "2" : "1", extra);
        if (!program_wait_for_stderr(p, "resum", 20000))
            ringsync_fail(p, "cluster kill %d: the restart did not resume", k + 1);
    }
    wait_caught_up(t.src, t.rep->port, p, "after five kills into a cluster");
    assert_cluster_equals(c, t.rep, "native replica", "after five kills into a cluster");
    ringsync_stop(p, "after kills into a cluster");
    cluster_fixture_stop(c);
}

/* A destination master killed: its replica takes over; ringsync loses its
 * links to it, finds the cluster's masters again, reads its checkpoints
 * and resumes. The replica may lack the master's last writes (replication
 * is asynchronous): the records it holds are as old as its data, so what
 * it lacks is applied again. */
Test(checkpoints, a_destination_master_killed_is_followed_to_its_replica, .timeout = 240)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    struct cluster_fixture_opts co = {.masters = 3, .replicas_per_master = 1};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    load_burst(t.src->ctx, 0, 1000);
    const char *const extra[] = {"--checkpoint", "target", "--timeout-ms", "1000", NULL};
    struct program *p = ringsync_start_with(t.src, c->nodes[0], "2", extra);
    wait_snapshot_applied(p);
    load_burst(t.src->ctx, 1000, 3000);
    sleep_ms(20);
    cr_assert(kill(c->nodes[1]->pid, SIGKILL) == 0);
    load_burst(t.src->ctx, 4000, 2000);
    long long deadline = fixture_now_ms() + 60000;
    for (;;) { /* master 1's replica (node 4) takes over */
        char role[32] = "";
        redis_fixture_info(c->nodes[4]->ctx, "replication", "role", role, sizeof(role));
        if (strcmp(role, "master") == 0)
            break;
        cr_assert(fixture_now_ms() < deadline, "no failover within 60 s");
        sleep_ms(100);
    }
    if (!program_wait_for_stderr(p, "destination back after", 60000))
        ringsync_fail(p, "ringsync did not resume after the failover");
    load_burst(t.src->ctx, 6000, 500);
    wait_caught_up(t.src, t.rep->port, p, "after a destination master was killed");
    assert_cluster_equals(c, t.rep, "native replica", "after a destination master was killed");
    ringsync_stop(p, "after a destination failover");
    cluster_fixture_stop(c);
}

/* The soak found it: a resume started in db 0, and the stream after a
 * partial resync has no SELECT until the source changes db. */
Test(checkpoints, a_resume_starts_in_the_db_the_stream_was_in, .timeout = 120)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    redis_fixture_exec(t.src->ctx, "SELECT 1");
    redis_fixture_exec(t.src->ctx, "SET a 1");
    struct program *p = start(&t, "1");
    wait_snapshot_applied(p);
    for (int i = 0; i < 200; i++)
        redis_fixture_exec(t.src->ctx, "INCR b");
    wait_caught_up(t.src, t.rep->port, p, "in db 1");
    sleep_ms(1500); /* the w record (once a second) moves past the SELECT */
    redis_fixture_exec(t.src->ctx, "INCR b");
    sleep_ms(1500);
    crash(p);
    for (int i = 0; i < 100; i++)
        redis_fixture_exec(t.src->ctx, "INCR b"); /* still db 1: no SELECT in the stream */
    redis_fixture_exec(t.src->ctx, "SET after x");
    p = start(&t, "1");
    wait_caught_up(t.src, t.rep->port, p, "after the resume in db 1");
    redis_fixture_exec(t.src->ctx, "SELECT 0");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after a resume in db 1");
    ringsync_stop(p, "after a resume in db 1");
}

/* The soak found it too: every clean stop took the expiry margin off every
 * expiry, also the ones an earlier stop had made exact. */
Test(checkpoints, clean_stops_and_resumes_keep_expiries_exact, .timeout = 120)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    redis_fixture_exec(t.src->ctx, "SET long v EX 100000");
    struct program *p = start(&t, "1");
    wait_snapshot_applied(p);
    for (int k = 0; k < 3; k++) {
        redis_fixture_exec(t.src->ctx, "SET during:%d v EX 50000", k);
        redis_fixture_exec(t.src->ctx, "INCR n");
        wait_caught_up(t.src, t.rep->port, p, "before a clean stop");
        ringsync_stop(p, "a clean stop");
        p = start(&t, "1");
        if (!program_wait_for_stderr(p, "partial resync", 20000))
            ringsync_fail(p, "no resume after clean stop %d", k + 1);
    }
    wait_caught_up(t.src, t.rep->port, p, "after three clean stops");
    ringsync_stop(p, "the last stop");
    /* stopped: the destination's expiries are the source's, to the ms */
    const char *keys[] = {"long", "during:0", "during:1", "during:2"};
    for (size_t i = 0; i < 4; i++) {
        redisReply *x = redis_fixture_command(t.src->ctx, "PEXPIRETIME %s", keys[i]);
        redisReply *y = redis_fixture_command(t.dst->ctx, "PEXPIRETIME %s", keys[i]);
        cr_assert(x->type == REDIS_REPLY_INTEGER && y->type == REDIS_REPLY_INTEGER);
        cr_assert_eq(y->integer, x->integer,
                     "%s expires at %lld on the destination, %lld on the source (%lld s off)",
                     keys[i], y->integer, x->integer, (y->integer - x->integer) / 1000);
        freeReplyObject(x);
        freeReplyObject(y);
    }
}
