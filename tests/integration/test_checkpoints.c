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
    /* the stream phase's first record is in (a kill before it redoes the
     * full sync, by design: not this test's subject) */
    wait_caught_up(t.src, t.rep->port, p, "before the kills");
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
    /* per-slot records in the cluster: the default */
    const char *const extra[] = {NULL};
    struct program *p = ringsync_start_with(t.src, c->nodes[0], "2", extra);
    wait_snapshot_applied(p);
    /* the first record of the stream phase is in: a kill before it lands
     * redoes the full sync (by design, CHECKPOINTS.md), which is not what
     * this test is about */
    wait_caught_up(t.src, t.rep->port, p, "before the kills into a cluster");
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
    const char *const extra[] = {"--timeout-ms", "1000", NULL};
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

/* ------------------------------------------- a slot migrated by hand (cluster) */

/* A burst on the keys of hash tag `tag`: counters, a list, an append (a
 * command applied twice or lost shows). */
static void tag_burst(redisContext *c, const char *tag, int r0, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (int i = r0; i < r0 + n; i++) {
        redis_pipeline_append(&pl, "INCR {%s}a", tag);
        redis_pipeline_append(&pl, "INCRBY {%s}b 3", tag);
        redis_pipeline_append(&pl, "LPUSH {%s}l %d", tag, i);
        redis_pipeline_append(&pl, "APPEND {%s}s x", tag);
    }
    redis_pipeline_flush(&pl);
}

/* n counters on the tag's key `which` alone ('a': INCR, 'b': INCRBY): the
 * records of that key's node are the slot's newest. */
static void counter_burst(redisContext *c, const char *tag, char which, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (int i = 0; i < n; i++)
        redis_pipeline_append(&pl, which == 'a' ? "INCR {%s}a" : "INCRBY {%s}b 3", tag);
    redis_pipeline_flush(&pl);
}

/* How many keys of node n match pattern (SCAN). */
static long long count_matching(redisContext *c, const char *pattern)
{
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redis_fixture_command(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN failed");
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

/* MIGRATE the keys to node `to` (the slot is open on both). */
static void migrate_keys(const struct cluster_fixture *c, int from, int to, const char *const *keys,
                         int n)
{
    for (int i = 0; i < n; i++) {
        redisReply *r = redis_fixture_command(c->nodes[from]->ctx, "MIGRATE 127.0.0.1 %d %s 0 5000",
                                              c->nodes[to]->port, keys[i]);
        cr_assert(r->type == REDIS_REPLY_STATUS, "MIGRATE %s: %s", keys[i],
                  r->type == REDIS_REPLY_ERROR ? r->str : "not +OK");
        freeReplyObject(r);
    }
}

/* DEBUG DIGEST-VALUE of key on a node (DEBUG reads the node's own keys:
 * no redirection), or NULL when the node does not hold it. */
static char *digest_on(redisContext *ctx, const char *key)
{
    redisReply *r = redis_fixture_command(ctx, "DEBUG DIGEST-VALUE %s", key);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                  (r->element[0]->type == REDIS_REPLY_STATUS ||
                   r->element[0]->type == REDIS_REPLY_STRING),
              "DEBUG DIGEST-VALUE %s: %s", key,
              r->type == REDIS_REPLY_ERROR ? r->str : "not one digest");
    char *d =
        strspn(r->element[0]->str, "0") == r->element[0]->len ? NULL : strdup(r->element[0]->str);
    freeReplyObject(r);
    return d;
}

/* While the slot migrates (split between masters 0 and 2), the tag's keys
 * equal the native replica's, each on exactly one of the two. */
static void assert_tag_keys_equal(const struct cluster_fixture *c, struct redis_fixture *rep,
                                  const char *tag, const char *what)
{
    static const char *const suffix[] = {"a", "b", "l", "s"};
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof(key), "{%s}%s", tag, suffix[i]);
        char *want = digest_on(rep->ctx, key), *d0 = digest_on(c->nodes[0]->ctx, key),
             *d2 = digest_on(c->nodes[2]->ctx, key);
        cr_assert(want != NULL, "%s: the native replica has no %s", what, key);
        cr_assert((d0 == NULL) != (d2 == NULL), "%s: %s is on %s of masters 0 and 2", what, key,
                  d0 ? "both" : "neither");
        const char *got = d0 ? d0 : d2;
        cr_assert(strcmp(got, want) == 0,
                  "%s: %s (on master %d) differs from the native replica's: a command of the "
                  "migrating slot applied twice or lost",
                  what, key, d0 ? 0 : 2);
        free(want);
        free(d0);
        free(d2);
    }
    cr_log_info("%s: the migrating slot's keys equal the native replica's", what);
}

/* SIGKILL, writes while it is down, the same command line again: it must
 * resume from its records and end equal to the native replica (while the
 * slot migrates: its keys; after: everything). */
static struct program *crash_and_resume(struct trio *t, struct cluster_fixture *c,
                                        struct program *p, const char *tag, char which, int *round,
                                        bool migrating, const char *what)
{
    /* counters on one key, and the kill while their records are the slot's
     * newest and newer than the w record (written once a second): the
     * resume must read them where they are */
    counter_burst(t->src->ctx, tag, which, 50);
    sleep_ms(30);
    crash(p);
    tag_burst(t->src->ctx, tag, *round, 10);
    load_burst(t->src->ctx, *round, 50);
    *round += 50;
    p = ringsync_start_with(t->src, c->nodes[0], "2", NULL);
    if (!program_wait_for_stderr(p, "resum", 20000))
        ringsync_fail(p, "%s: the restart did not resume from its checkpoints", what);
    wait_caught_up(t->src, t->rep->port, p, what);
    if (migrating)
        assert_tag_keys_equal(c, t->rep, tag, what);
    else
        assert_cluster_equals(c, t->rep, "native replica", what);
    return p;
}

/* CHECKPOINTS.md, "A cluster destination": while a slot migrates, a
 * counter's record is written where a node may write it: on the node the
 * slot goes to, a key of that command alone when the node serves nothing yet
 * ("#"), then the slot's record once it came over ("+"); on the old owner,
 * once the record has left, a record of the slot kept in a slot near it
 * ("@"). Each is read back by a resume after a SIGKILL: a record missed or
 * misread applies counters twice or not at all. With the default options:
 * checkpoints are on for a cluster. */
Test(checkpoints, a_slot_migrated_by_hand_keeps_exact_records_across_crashes, .timeout = 240)
{
    struct trio t;
    trio_start(&t, NULL, 0);
    /* master 2 serves nothing: the slot goes to a node without slots */
    static const struct cluster_fixture_range ranges[] = {{0, 0, 8191}, {1, 8192, 16383}};
    struct cluster_fixture_opts co = {.masters = 3, .ranges = ranges, .nranges = 2};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    char tag[16] = "";
    unsigned slot = 0;
    for (int i = 0; tag[0] == '\0'; i++) {
        char k[16];
        snprintf(k, sizeof(k), "mig%d", i);
        slot = cluster_fixture_keyslot(c, k, strlen(k));
        if (slot > 10 && slot < 8180)
            snprintf(tag, sizeof(tag), "%s", k);
    }
    cr_log_info("migrating slot %u (tag {%s}) from master 0 to master 2", slot, tag);
    load_burst(t.src->ctx, 0, 300);
    tag_burst(t.src->ctx, tag, 0, 20);
    struct program *p = ringsync_start_with(t.src, c->nodes[0], "2", NULL);
    wait_snapshot_applied(p);
    int round = 300;
    tag_burst(t.src->ctx, tag, round, 20);
    load_burst(t.src->ctx, round, 50);
    round += 50;
    wait_caught_up(t.src, t.rep->port, p, "before the migration");
    /* the slot's own record, on master 0 */
    char rec[256] = "";
    redisReply *r = redis_fixture_command(c->nodes[0]->ctx, "CLUSTER GETKEYSINSLOT %u 100", slot);
    for (size_t i = 0; i < r->elements; i++)
        if (strncmp(r->element[i]->str, "ringsync:cp:", 12) == 0)
            snprintf(rec, sizeof(rec), "%s", r->element[i]->str);
    freeReplyObject(r);
    cr_assert(rec[0] != '\0', "no checkpoint record of slot %u on master 0", slot);

    redis_fixture_exec(c->nodes[2]->ctx, "CLUSTER SETSLOT %u IMPORTING %s", slot, c->ids[0]);
    redis_fixture_exec(c->nodes[0]->ctx, "CLUSTER SETSLOT %u MIGRATING %s", slot, c->ids[2]);

    /* "#": {tag}a has moved, the record not: INCR {tag}a is answered ASK */
    char ka[32], kb[32], kl[32], ks[32];
    snprintf(ka, sizeof(ka), "{%s}a", tag);
    snprintf(kb, sizeof(kb), "{%s}b", tag);
    snprintf(kl, sizeof(kl), "{%s}l", tag);
    snprintf(ks, sizeof(ks), "{%s}s", tag);
    const char *first[] = {ka};
    migrate_keys(c, 0, 2, first, 1);
    tag_burst(t.src->ctx, tag, round, 20);
    round += 20;
    wait_caught_up(t.src, t.rep->port, p, "{tag}a moved, its record not");
    cr_assert(count_matching(c->nodes[2]->ctx, "ringsync:cp:*#*") > 0,
              "master 2 (no slots) holds no \"#\" record after commands sent to it with ASKING");
    p = crash_and_resume(&t, c, p, tag, 'a', &round, true, "killed with a \"#\" record");

    /* "@": the record has moved, {tag}b and the others not */
    const char *second[] = {rec};
    migrate_keys(c, 0, 2, second, 1);
    tag_burst(t.src->ctx, tag, round, 20);
    round += 20;
    wait_caught_up(t.src, t.rep->port, p, "the record moved, {tag}b not");
    char at_pattern[64];
    snprintf(at_pattern, sizeof(at_pattern), "ringsync:cp:*@%u", slot);
    cr_assert(count_matching(c->nodes[0]->ctx, at_pattern) > 0,
              "master 0 holds no record of slot %u in a slot near it once the slot's record left",
              slot);
    /* "+": INCR {tag}a with ASKING now finds the record on master 2 */
    p = crash_and_resume(&t, c, p, tag, 'b', &round, true, "killed with an \"@\" record");
    p = crash_and_resume(&t, c, p, tag, 'a', &round, true, "killed with a \"+\" record");

    /* the rest moves; the slot is master 2's: MOVED */
    const char *rest[] = {kb, kl, ks};
    migrate_keys(c, 0, 2, rest, 3);
    for (int i = 0; i < c->nmasters; i++)
        redis_fixture_exec(c->nodes[i]->ctx, "CLUSTER SETSLOT %u NODE %s", slot, c->ids[2]);
    tag_burst(t.src->ctx, tag, round, 20);
    round += 20;
    p = crash_and_resume(&t, c, p, tag, 'a', &round, false, "killed after the migration");
    ringsync_stop(p, "after a slot migrated by hand");
    cluster_fixture_stop(c);
}

/* A cluster's records are written by a script: a user that may not run
 * EVAL is told so at start, with what to do, before anything is written;
 * --checkpoint none then runs. */
Test(checkpoints, a_cluster_user_without_eval_is_told_at_start, .timeout = 60)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    redis_fixture_exec(src->ctx, "SET a 1");
    struct cluster_fixture_opts co = {.masters = 3};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    for (int i = 0; i < c->nmasters; i++)
        redis_fixture_exec(c->nodes[i]->ctx, "ACL SETUSER rs on >pw ~* &* +@all -eval");
    char suri[64], turi[64];
    snprintf(suri, sizeof(suri), "redis://127.0.0.1:%d", src->port);
    snprintf(turi, sizeof(turi), "redis://rs:pw@127.0.0.1:%d", c->nodes[1]->port);
    const char *argv[] = {
        fixture_env("RS_RINGSYNC"), "sync",         "--source", suri, "--target", turi,
        "--snapshot-only",          "--checkpoint", "target",   NULL};
    struct program_result r;
    cr_assert(program_run(argv, NULL, NULL, 30000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, "EVAL") != NULL &&
                  strstr(r.err, "--checkpoint none") != NULL,
              "a user without EVAL should be told at start: exit %d, stderr:\n%s", r.exit_code,
              r.err);
    program_result_deinit(&r);
    cr_assert_eq(cluster_fixture_data_keys(c), 0, "something was written before the refusal");
    argv[8] = "none";
    cr_assert(program_run(argv, NULL, NULL, 30000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 0, "--checkpoint none should run: %s", r.err);
    program_result_deinit(&r);
    cr_assert_eq(cluster_fixture_data_keys(c), 1);
    cluster_fixture_stop(c);
}
