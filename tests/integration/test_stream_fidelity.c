/* test_stream_fidelity.c - the stream applied as a replica applies it, though
 * ringsync writes as a client to a master (issue 13, src/STREAM_FIDELITY.md).
 *
 * Each test has a source, a native replica of it (the oracle) and a target
 * that `ringsync sync` fills, with --on-error stop (the default):
 *
 *     source ──REPLICAOF──▶ native replica
 *        └──PSYNC──▶ ringsync sync ──▶ target
 *
 *   - approximate stream trims, XADD and XTRIM, MAXLEN and MINID, with and
 *     without LIMIT, alone, in MULTI/EXEC and in a script: the source
 *     propagates them as `= <threshold> LIMIT n`, which a master refuses
 *     from a client; the target must end equal to the native replica;
 *   - keys of 1-3 s TTLs read by multi-key and value-dependent commands
 *     (RENAME, COPY, LMOVE, SUNIONSTORE, ZUNIONSTORE, INCR, APPEND, a
 *     transaction, a script) while the target is stopped (SIGSTOP) for
 *     longer than the TTLs: when it resumes, every write it missed arrives
 *     after its keys' expiry times. The target must end equal to the native
 *     replica, expiries exact after ringsync stops, with no stop on the way;
 *   - the same with --expiry-margin 0 stops the job (or leaves the target
 *     different): proof that the first can fail.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "dataset_compare.h"
#include "redis_fixture.h"
#include "sync_watch.h"

#define TTL_KEYS   400  /* per round, each with a TTL of 1-3 s */
#define TTL_ROUNDS 3    /* rounds written while the target is stopped */
#define PAUSE_MS   4500 /* longer than the longest TTL */
#define MARGIN_MS  (3600 * 1000)

TestSuite(stream_fidelity, .fini = redis_fixture_stop_all, .timeout = 180);

static const char *const source_args[] = {"--enable-debug-command",
                                          "yes",
                                          "--repl-diskless-sync-delay",
                                          "0",
                                          "--stream-node-max-entries",
                                          "10",
                                          NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

struct trio {
    struct redis_fixture *src, *rep, *dst;
};

static void trio_start(struct trio *t)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    t->src = redis_fixture_start(&so);
    t->rep = redis_fixture_start(&o);
    t->dst = redis_fixture_start(&o);
    redis_fixture_replicate(t->rep, t->src, 30000);
}

/* ------------------------------------------------------ approximate trims */

static const char trim_script[] =
    "for j = 1, 20 do redis.call('XADD', KEYS[1], 'MAXLEN', '~', '30', 'LIMIT', '10', '*', 'f', j) "
    "end return redis.call('XTRIM', KEYS[1], 'MINID', '~', '0', 'LIMIT', '5')";

static const char read_script[] = "local v = redis.call('GET', KEYS[1]) "
                                  "if v then redis.call('SET', KEYS[2], v .. '!') end "
                                  "return redis.call('LPOP', KEYS[3])";

/* Streams of many 10-entry nodes, trimmed approximately in every form. */
static void approximate_trims(redisContext *c)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 500);
    for (int i = 1; i <= 3000; i++) {
        redis_pipeline_append(&p, "XADD s:maxlen MAXLEN ~ 200 LIMIT 20 %d-1 f %d", i, i);
        redis_pipeline_append(&p, "XADD s:maxlen-nolimit MAXLEN ~ 200 %d-1 f %d", i, i);
        redis_pipeline_append(&p, "XADD s:minid MINID ~ %d LIMIT 30 %d-1 f %d",
                              i > 500 ? i - 500 : 1, i, i);
        redis_pipeline_append(&p, "XADD s:nomk NOMKSTREAM MAXLEN ~ 50 LIMIT 10 %d-1 f %d", i, i);
        redis_pipeline_append(&p, "XADD s:plain %d-1 f %d", i, i);
        redis_pipeline_append(&p, "XADD s:exact MAXLEN = 100 %d-1 f %d", i, i);
    }
    for (int k = 0; k < 20; k++) {
        redis_pipeline_append(&p, "XTRIM s:plain MAXLEN ~ %d LIMIT 25", 2900 - 100 * k);
        redis_pipeline_append(&p, "XTRIM s:plain MINID ~ %d-0 LIMIT 15", 100 + 20 * k);
        redis_pipeline_append(&p, "XTRIM s:exact MAXLEN ~ %d", 90 - k);
    }
    redis_pipeline_append(&p, "MULTI");
    redis_pipeline_append(&p, "XADD s:tx MAXLEN ~ 5 LIMIT 10 1-1 f v");
    for (int i = 2; i < 200; i++)
        redis_pipeline_append(&p, "XADD s:tx MAXLEN ~ 5 LIMIT 10 %d-1 f v", i);
    redis_pipeline_append(&p, "XTRIM s:tx MINID ~ 150 LIMIT 10");
    redis_pipeline_append(&p, "EXEC");
    for (int i = 0; i < 50; i++)
        redis_pipeline_append(&p, "EVAL %s 1 s:script", trim_script);
    redis_pipeline_flush(&p);
}

static void approximate_trims_match_a_native_replica(const char *workers)
{
    struct trio t;
    trio_start(&t);
    struct program *p = ringsync_start(t.src, t.dst, workers, NULL);
    wait_snapshot_applied(p);
    approximate_trims(t.src->ctx);
    wait_caught_up(t.src, t.rep->port, p, "approximate trims");
    dataset_set_target_expiry_shift(0);
    assert_dataset_equals(t.dst, t.rep, "native replica", "after approximate trims");
    /* the trims did trim: the test covers what it says */
    redisReply *r = redis_fixture_command(t.dst->ctx, "XLEN s:maxlen");
    cr_assert(r->integer < 3000 && r->integer >= 200, "s:maxlen has %lld entries", r->integer);
    freeReplyObject(r);
    ringsync_stop(p, "approximate trims");
}

Test(stream_fidelity, approximate_trims_with_limit_match_a_native_replica_one_worker)
{
    approximate_trims_match_a_native_replica("1");
}

Test(stream_fidelity, approximate_trims_with_limit_match_a_native_replica_two_workers)
{
    approximate_trims_match_a_native_replica("2");
}

/* ------------------------------------------------ short TTLs while behind */

/* Keys of 1-3 s TTLs, then the commands that read them, a few hundred ms
 * later: on the source (and a native replica) they find every key. */
static void short_ttl_round(redisContext *c, int round)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 500);
    for (int i = 0; i < TTL_KEYS; i++) {
        int px = 1000 + (i * 37) % 2000;
        redis_pipeline_append(&p, "SET r%d:str:%d v%d PX %d", round, i, i, px);
        redis_pipeline_append(&p, "SET r%d:cnt:%d %d PX %d", round, i, i, px);
        redis_pipeline_append(&p, "RPUSH r%d:list:%d a b c", round, i);
        redis_pipeline_append(&p, "PEXPIRE r%d:list:%d %d", round, i, px);
        redis_pipeline_append(&p, "SADD r%d:set:%d x y %d", round, i, i);
        redis_pipeline_append(&p, "PEXPIRE r%d:set:%d %d", round, i, px);
        redis_pipeline_append(&p, "ZADD r%d:z:%d 1 m%d", round, i, i);
        redis_pipeline_append(&p, "PEXPIRE r%d:z:%d %d", round, i, px);
    }
    redis_pipeline_flush(&p);
    sleep_ms(300);
    for (int i = 0; i < TTL_KEYS; i++) {
        switch (i % 8) {
        case 0: /* the renamed key keeps the TTL: long enough to survive the test */
            redis_pipeline_append(&p, "RENAME r%d:str:%d r%d:renamed:%d", round, i, round, i);
            redis_pipeline_append(&p, "PEXPIRE r%d:renamed:%d 600000", round, i);
            break;
        case 1:
            redis_pipeline_append(&p, "COPY r%d:str:%d r%d:copy:%d", round, i, round, i);
            redis_pipeline_append(&p, "PERSIST r%d:copy:%d", round, i);
            break;
        case 2:
            redis_pipeline_append(&p, "LMOVE r%d:list:%d keep:list:%d LEFT RIGHT", round, i, i);
            break;
        case 3:
            redis_pipeline_append(&p, "SUNIONSTORE keep:union:%d r%d:set:%d r%d:set:%d", i, round,
                                  i, round, (i + 8) % TTL_KEYS);
            break;
        case 4:
            redis_pipeline_append(&p, "ZUNIONSTORE keep:zu:%d 2 r%d:z:%d r%d:z:%d", i, round, i,
                                  round, (i + 8) % TTL_KEYS);
            break;
        case 5: /* INCR keeps the TTL of a key that is there, none of one that is not */
            redis_pipeline_append(&p, "INCR r%d:cnt:%d", round, i);
            redis_pipeline_append(&p, "APPEND r%d:str:%d +more", round, i);
            break;
        case 6:
            redis_pipeline_append(&p, "MULTI");
            redis_pipeline_append(&p, "INCRBY r%d:cnt:%d 10", round, i);
            redis_pipeline_append(&p, "GETDEL r%d:str:%d", round, i);
            redis_pipeline_append(&p, "SMOVE r%d:set:%d keep:smove:%d x", round, i, i);
            redis_pipeline_append(&p, "EXEC");
            break;
        default:
            redis_pipeline_append(&p, "EVAL %s 3 r%d:str:%d keep:script:%d r%d:list:%d",
                                  read_script, round, i, i, round, i);
            break;
        }
    }
    redis_pipeline_flush(&p);
}

/* Waits until the source has deleted every short-TTL key (SCAN expires what
 * it meets): their DELs are in the stream then. */
static void wait_short_keys_gone(redisContext *c)
{
    long long deadline = fixture_now_ms() + 20000;
    for (;;) {
        size_t left = 0;
        char cursor[32] = "0";
        do {
            redisReply *r = redis_fixture_command(c, "SCAN %s MATCH r*:*:* COUNT 10000", cursor);
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            for (size_t i = 0; i < r->element[1]->elements; i++)
                if (strstr(r->element[1]->element[i]->str, ":renamed:") == NULL &&
                    strstr(r->element[1]->element[i]->str, ":copy:") == NULL)
                    left++;
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
        if (left == 0)
            return;
        cr_assert(fixture_now_ms() < deadline, "%zu short-TTL keys still on the source", left);
        sleep_ms(200);
    }
}

/* The load while the target is stopped; returns ringsync, still running
 * unless it stopped. */
static struct program *short_ttls_while_behind(struct trio *t, const char *workers,
                                               const char *margin)
{
    trio_start(t);
    const char *extra[] = {"--expiry-margin", margin, NULL};
    struct program *p = ringsync_start_with(t->src, t->dst, workers, margin ? extra : NULL);
    wait_snapshot_applied(p);
    redis_fixture_exec(t->src->ctx, "SET long:ttl v PX 500000000");
    wait_caught_up(t->src, t->rep->port, p, "before the pause");
    cr_assert(kill(t->dst->pid, SIGSTOP) == 0);
    long long t0 = fixture_now_ms();
    for (int round = 0; round < TTL_ROUNDS; round++)
        short_ttl_round(t->src->ctx, round);
    long long left = PAUSE_MS - (fixture_now_ms() - t0);
    if (left > 0)
        sleep_ms((int)left);
    cr_assert(kill(t->dst->pid, SIGCONT) == 0);
    return p;
}

static void short_ttls_while_behind_match_a_native_replica(const char *workers)
{
    struct trio t;
    struct program *p = short_ttls_while_behind(&t, workers, NULL);
    wait_caught_up(t.src, t.rep->port, p, "after the pause");
    wait_short_keys_gone(t.src->ctx);
    wait_caught_up(t.src, t.rep->port, p, "after the short keys expired");
    cr_assert(!program_has_exited(p), "ringsync stopped");
    dataset_set_target_expiry_shift(MARGIN_MS); /* while it follows */
    assert_dataset_equals(t.dst, t.rep, "native replica", "while following, after the pause");
    ringsync_stop(p, "short TTLs");
    dataset_set_target_expiry_shift(0);
    assert_dataset_equals(t.dst, t.rep, "native replica", "after the stop, expiries exact");
    /* the load did what it says: results of reads of short-TTL keys are there */
    redisReply *r =
        redis_fixture_command(t.dst->ctx, "EXISTS keep:union:3 r0:renamed:0 keep:list:2");
    cr_assert_eq(r->integer, 3, "the reads of short-TTL keys left %lld of 3 results", r->integer);
    freeReplyObject(r);
}

Test(stream_fidelity, short_ttls_read_while_ringsync_is_behind_match_a_native_replica_one_worker)
{
    short_ttls_while_behind_match_a_native_replica("1");
}

Test(stream_fidelity, short_ttls_read_while_ringsync_is_behind_match_a_native_replica_two_workers)
{
    short_ttls_while_behind_match_a_native_replica("2");
}

Test(stream_fidelity, without_the_margin_the_same_load_goes_wrong)
{
    struct trio t;
    struct program *p = short_ttls_while_behind(&t, "1", "0");
    long long deadline = fixture_now_ms() + CATCH_UP_TIMEOUT_MS;
    struct repl_view v;
    bool caught_up = false;
    while (!program_has_exited(p) && fixture_now_ms() < deadline) {
        repl_view_take(t.src->ctx, t.rep->port, &v);
        if ((caught_up = v.has_ringsync && v.ringsync_offset == v.master_offset &&
                         v.replica_offset == v.master_offset))
            break;
        sleep_ms(50);
    }
    if (program_has_exited(p)) { /* stopped: a command found its key expired */
        struct program_result r;
        program_finish(p, 0, STOP_TIMEOUT_MS, &r);
        cr_assert(r.exited && r.exit_code == 1, "ringsync ended otherwise:\n%s", r.err);
        cr_assert(strstr(r.err, "refused") != NULL, "no refused command named:\n%s", r.err);
        cr_log_info("without the margin ringsync stopped, as expected:\n%s", r.err);
        program_result_deinit(&r);
        return;
    }
    cr_assert(caught_up, "ringsync neither stopped nor caught up");
    wait_short_keys_gone(t.src->ctx);
    wait_caught_up(t.src, t.rep->port, p, "after the short keys expired");
    struct dataset_comparison c;
    dataset_set_target_expiry_shift(0);
    dataset_compare(t.dst, t.rep, &c);
    cr_assert(c.differences > 0 || !c.same_digest,
              "with --expiry-margin 0 the target still equals the native replica: the test "
              "does not make keys expire on the target before the commands that read them");
    cr_log_info("without the margin the target differs in %zu keys, as expected", c.differences);
    dataset_comparison_deinit(&c);
    ringsync_stop(p, "no margin");
}
