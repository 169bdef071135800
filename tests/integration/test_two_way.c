/* test_two_way.c - two-way sync between two standalone servers, one process
 * per direction (src/BIDIRECTIONAL.md): applications write disjoint keys on
 * both sides, with commands that must not run twice (INCR, RPUSH, HINCRBY,
 * transactions); both sides end equal key by key, counters exact, and once
 * the writes stop the offsets stay put (no write ping-pongs between them).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataset_compare.h"
#include "redis_fixture.h"
#include "sync_watch.h"

TestSuite(two_way, .fini = redis_fixture_stop_all, .timeout = 120);

static const char *const side_args[] = {"--enable-debug-command",
                                        "yes",
                                        "--repl-diskless-sync-delay",
                                        "0",
                                        "--repl-backlog-size",
                                        "16mb",
                                        NULL};

/* An application's load on one side: keys under its own prefix. */
static void app_load(redisContext *c, const char *side, int round)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 500);
    for (int i = 0; i < 600; i++) {
        redis_pipeline_append(&p, "INCR %s:count:%d", side, i % 17);
        redis_pipeline_append(&p, "RPUSH %s:list:%d r%d:%d", side, i % 5, round, i);
        redis_pipeline_append(&p, "HINCRBY %s:hash f%d 3", side, i % 11);
        redis_pipeline_append(&p, "SET %s:str:%d v%d PXAT 4102444800123", side, i % 50, i);
        /* a plain SET: gathered into an MSET, inside the marker transaction */
        redis_pipeline_append(&p, "SET %s:plain:%d v%d", side, i % 60, i);
        if (i % 9 == 0)
            redis_pipeline_append(&p, "DEL %s:str:%d %s:str:%d", side, (i + 1) % 50, side,
                                  (i + 7) % 50);
        if (i % 13 == 0)
            redis_pipeline_append(&p, "ZINCRBY %s:z 1.5 m%d", side, i % 7);
    }
    redis_pipeline_flush(&p);
    redis_fixture_exec(c, "MULTI");
    redis_fixture_exec(c, "INCR %s:tx", side);
    redis_fixture_exec(c, "SADD %s:set r%d", side, round);
    redis_fixture_exec(c, "EXEC");
}

static long long offset_of(redisContext *c)
{
    char v[32];
    cr_assert(redis_fixture_info(c, "replication", "master_repl_offset", v, sizeof(v)));
    return strtoll(v, NULL, 10);
}

/* Both directions applied everything their source holds, twice over (a
 * direction's writes move the other side's offset, which its own direction
 * then reads and drops). */
static void wait_settled(struct redis_fixture *a, struct redis_fixture *b, struct program *fwd,
                         struct program *rev)
{
    for (int round = 0; round < 2; round++) {
        wait_caught_up(a, -1, fwd, "forward");
        wait_caught_up(b, -1, rev, "reverse");
    }
}

Test(two_way, disjoint_writes_on_both_sides_converge_exactly_and_the_offsets_settle)
{
    struct redis_fixture_opts o = {.extra_args = side_args};
    struct redis_fixture *a = redis_fixture_start(&o);
    struct redis_fixture *b = redis_fixture_start(&o);
    redis_fixture_exec(a->ctx, "DEBUG POPULATE 5000 seed 32");
    app_load(a->ctx, "a", 0);

    const char *const fwd_args[] = {"--direction", "forward", "--job-id", "tw", NULL};
    const char *const rev_args[] = {"--direction", "reverse", "--job-id", "tw", NULL};
    struct program *fwd = ringsync_start_ports(a->port, b->port, "1", true, fwd_args);
    wait_snapshot_applied(fwd);
    struct program *rev = ringsync_start_ports(b->port, a->port, "1", true, rev_args);
    /* B never had a replica, so it keeps no backlog to resume from: the
     * reverse direction makes one (a replica's PSYNC, closed at once) and
     * follows from B's offset then, with no snapshot (what B held then is
     * A's data, which forward copied) */
    if (!program_wait_for_stderr(rev, "resumed with a partial resync", 20000))
        ringsync_fail(rev, "the reverse direction did not start without a snapshot");
    cr_assert(stderr_has(rev, "one made") && stderr_has(rev, "without a snapshot") &&
                  !stderr_has(rev, "snapshot applied"),
              "the reverse direction took a snapshot of B");

    for (int round = 1; round <= 3; round++) {
        app_load(a->ctx, "a", round);
        app_load(b->ctx, "b", round);
    }
    wait_settled(a, b, fwd, rev);
    assert_dataset_equals(b, a, "side A", "after the load, both directions caught up");
    redisReply *x = redis_fixture_command(b->ctx, "GET a:count:3");
    cr_assert(x->type == REDIS_REPLY_STRING && strcmp(x->str, "144") == 0,
              "a:count:3 on B is %s, not 144 (4 loads x 36): an INCR ran twice or never",
              x->type == REDIS_REPLY_STRING ? x->str : "(nil)");
    freeReplyObject(x);
    x = redis_fixture_command(a->ctx, "GET b:count:3");
    cr_assert(x->type == REDIS_REPLY_STRING && strcmp(x->str, "108") == 0,
              "b:count:3 on A is %s, not 108 (3 loads x 36)",
              x->type == REDIS_REPLY_STRING ? x->str : "(nil)");
    freeReplyObject(x);

    /* no ping-pong: after the last checkpoint records (each direction writes
     * one within a second of its last applied write), nothing but the sides'
     * own PINGs moves their offsets */
    sleep_ms(2500);
    long long oa = offset_of(a->ctx), ob = offset_of(b->ctx);
    sleep_ms(3000);
    long long da = offset_of(a->ctx) - oa, db = offset_of(b->ctx) - ob;
    cr_assert(da <= 2 * 14 && db <= 2 * 14,
              "the offsets kept moving with no application writing: A +%lld, B +%lld bytes in "
              "3 s (a PING is 14)",
              da, db);

    ringsync_stop(fwd, "forward");
    ringsync_stop(rev, "reverse");
    assert_dataset_equals(b, a, "side A", "after both stopped");
}

Test(two_way, each_direction_killed_mid_load_and_restarted_loses_and_doubles_nothing)
{
    struct redis_fixture_opts o = {.extra_args = side_args};
    struct redis_fixture *a = redis_fixture_start(&o);
    struct redis_fixture *b = redis_fixture_start(&o);
    app_load(a->ctx, "a", 0);
    const char *const fwd_args[] = {"--direction", "forward", "--job-id", "tk", NULL};
    const char *const rev_args[] = {"--direction", "reverse", "--job-id", "tk", NULL};
    struct program *fwd = ringsync_start_ports(a->port, b->port, "2", true, fwd_args);
    wait_snapshot_applied(fwd);
    struct program *rev = ringsync_start_ports(b->port, a->port, "1", true, rev_args);
    if (!program_wait_for_stderr(rev, "resumed with a partial resync", 20000))
        ringsync_fail(rev, "the reverse direction did not start");

    struct program_result killed;
    for (int round = 1; round <= 4; round++) {
        app_load(a->ctx, "a", round);
        app_load(b->ctx, "b", round);
        /* kill -9 one direction while it applies the round, then start it again */
        bool forward = round % 2 == 1;
        program_finish(forward ? fwd : rev, SIGKILL, 1000, &killed);
        program_result_deinit(&killed);
        if (forward)
            fwd = ringsync_start_ports(a->port, b->port, "1", true, fwd_args);
        else
            rev = ringsync_start_ports(b->port, a->port, "2", true, rev_args);
    }
    wait_settled(a, b, fwd, rev);
    cr_assert(stderr_has(fwd, "resumed with a partial resync") &&
                  stderr_has(rev, "resumed with a partial resync"),
              "a restarted direction did not resume from its checkpoints");
    assert_dataset_equals(b, a, "side A", "after kills of both directions");
    redisReply *x = redis_fixture_command(a->ctx, "GET b:count:3");
    cr_assert(x->type == REDIS_REPLY_STRING && strcmp(x->str, "144") == 0,
              "b:count:3 on A is %s, not 144 (4 loads x 36): an INCR ran twice or never",
              x->type == REDIS_REPLY_STRING ? x->str : "(nil)");
    freeReplyObject(x);
    x = redis_fixture_command(b->ctx, "GET a:count:3");
    cr_assert(x->type == REDIS_REPLY_STRING && strcmp(x->str, "180") == 0,
              "a:count:3 on B is %s, not 180 (5 loads x 36)",
              x->type == REDIS_REPLY_STRING ? x->str : "(nil)");
    freeReplyObject(x);
    ringsync_stop(fwd, "forward");
    ringsync_stop(rev, "reverse");
}

Test(two_way, one_process_runs_both_directions_and_resumes_them_after_a_stop)
{
    struct redis_fixture_opts o = {.extra_args = side_args};
    struct redis_fixture *a = redis_fixture_start(&o);
    struct redis_fixture *b = redis_fixture_start(&o);
    app_load(a->ctx, "a", 0);
    const char *const args[] = {"--topology", "bidirectional", "--job-id", "tp", NULL};
    struct program *p = ringsync_start_ports(a->port, b->port, "1", true, args);
    wait_snapshot_applied(p);
    /* writes to B count from reverse's start (a replica's line on B may be
     * the link that made B's backlog) */
    if (!program_wait_for_stderr(p, "resumed with a partial resync", 20000))
        ringsync_fail(p, "the reverse direction did not start");
    for (int round = 1; round <= 2; round++) {
        app_load(a->ctx, "a", round);
        app_load(b->ctx, "b", round);
    }
    wait_settled(a, b, p, p);
    assert_dataset_equals(b, a, "side A", "one process, both directions");
    cr_assert(!stderr_has(p, "conflict: key"), "disjoint writes reported as a conflict");

    /* the same key on both sides at once: a conflict; one written on both
     * sides but far apart (past the window): none */
    redis_fixture_exec(a->ctx, "SET apart:k from-a");
    wait_settled(a, b, p, p);
    sleep_ms(1500);
    redis_fixture_exec(b->ctx, "SET apart:k from-b");
    redis_fixture_exec(a->ctx, "SET both:k from-a");
    redis_fixture_exec(b->ctx, "SET both:k from-b");
    wait_settled(a, b, p, p);
    cr_assert(stderr_has(p, "conflict: key 'both:k' written on both sides"),
              "the key written on both sides at once was not reported");
    cr_assert(!stderr_has(p, "conflict: key 'apart:k'"),
              "a key written on both sides 1.5 s apart was reported");
    sleep_ms(1500); /* past the window: the DEL is no conflict of its own */
    redis_fixture_exec(a->ctx, "DEL both:k"); /* whichever side won, one value again */
    wait_settled(a, b, p, p);
    struct program_result r;
    ringsync_stop_result(p, "both directions", &r);
    cr_assert(strstr(r.err, "1 conflicts: keys written on both sides") != NULL,
              "the report does not count the one conflict:\n%s", r.err);
    program_result_deinit(&r);

    app_load(a->ctx, "a", 3); /* while stopped */
    app_load(b->ctx, "b", 3);
    p = ringsync_start_ports(a->port, b->port, "1", true, args);
    wait_ringsync_listed(b, p);
    wait_settled(a, b, p, p);
    cr_assert(!stderr_has(p, "snapshot applied after"), "the restart did a full sync again");
    assert_dataset_equals(b, a, "side A", "after a stop and a restart");
    redisReply *x = redis_fixture_command(a->ctx, "GET b:count:3");
    cr_assert(x->type == REDIS_REPLY_STRING && strcmp(x->str, "108") == 0,
              "b:count:3 on A is %s, not 108", x->type == REDIS_REPLY_STRING ? x->str : "(nil)");
    freeReplyObject(x);
    ringsync_stop(p, "both directions, second run");
}

/* --conflict a-wins: keys written on both sides at once (two pipelines of
 * SETs on the same keys, each side its own values) converge, once the
 * window has passed, to what side A holds: each such key is copied from A
 * to B in a marked transaction, which the reverse direction drops (no
 * echo back to A). With --conflict report the same load may leave the
 * sides different; that is what this test would catch. */
Test(two_way, a_wins_makes_conflicting_keys_converge_to_side_a, .timeout = 120)
{
    struct redis_fixture_opts o = {.extra_args = side_args};
    struct redis_fixture *a = redis_fixture_start(&o);
    struct redis_fixture *b = redis_fixture_start(&o);
    const char *const args[] = {
        "--topology", "bidirectional",        "--job-id", "aw", "--conflict",
        "a-wins",     "--conflict-window-ms", "500",      NULL};
    struct program *p = ringsync_start_ports(a->port, b->port, "1", true, args);
    wait_snapshot_applied(p);
    /* the reverse direction follows B (a replica's line on B may be the
     * link that made B's backlog, gone a moment later) */
    if (!program_wait_for_stderr(p, "resumed with a partial resync", 20000))
        ringsync_fail(p, "the reverse direction did not start");
    for (int round = 0; round < 3; round++) {
        struct redis_pipeline pa, pb;
        redis_pipeline_init(&pa, a->ctx, 100);
        redis_pipeline_init(&pb, b->ctx, 100);
        for (int i = 0; i < 300; i++) {
            redis_pipeline_append(&pa, "SET c:%d a%d:%d", i, round, i);
            redis_pipeline_append(&pb, "SET c:%d b%d:%d", i, round, i);
            if (i % 50 == 0) { /* interleave the two sides' writes */
                redis_pipeline_flush(&pa);
                redis_pipeline_flush(&pb);
            }
        }
        redis_pipeline_flush(&pa);
        redis_pipeline_flush(&pb);
    }
    wait_settled(a, b, p, p);
    sleep_ms(1200); /* past the window: the copies are made, then settle */
    wait_settled(a, b, p, p);
    if (!stderr_has(p, "conflict: key 'c:"))
        ringsync_fail(p, "no conflict seen: the test proves nothing");
    cr_assert(stderr_has(p, "resolved: side A's value copied to side B"), "nothing copied");
    assert_dataset_equals(b, a, "side A", "after a-wins");
    struct program_result r;
    ringsync_stop_result(p, "a-wins", &r);
    cr_assert(strstr(r.err, "conflicts resolved: the key copied from side A") != NULL,
              "the report does not count the copies:\n%s", r.err);
    program_result_deinit(&r);
    assert_dataset_equals(b, a, "side A", "after a-wins, stopped");
}
