/* test_dest_faults.c - the destination fails under a write load of counters
 * (issue 15, "the fault suite"): its connections cut, the server killed and
 * restarted with its AOF, its memory full. ringsync waits for it, reads its
 * checkpoints again and resumes, or stops saying why and resumes when
 * started again; each ends equal to a native replica of the source (a
 * counter applied twice or lost shows as a wrong number). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset_compare.h"
#include "redis_fixture.h"
#include "sync_watch.h"

static const char *const src_args[] = {"--enable-debug-command", "yes", "--repl-backlog-size",
                                       "256mb", NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};
static const char *const aof_args[] = {
    "--enable-debug-command", "yes", "--appendonly", "yes", "--appendfsync", "always", NULL};

static void burst(redisContext *c, int r0, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (int i = r0; i < r0 + n; i++) {
        redis_pipeline_append(&pl, "INCR cnt:%d", i % 200);
        redis_pipeline_append(&pl, "INCRBY big:%d 3", i % 77);
        redis_pipeline_append(&pl, "LPUSH list:%d %d", i % 30, i);
        redis_pipeline_append(&pl, "APPEND app:%d x", i % 20);
        redis_pipeline_append(&pl, "SET str:%d v%d", i % 300, i);
        if (i % 100 == 0) {
            redis_pipeline_append(&pl, "MULTI");
            redis_pipeline_append(&pl, "INCR tx:c");
            redis_pipeline_append(&pl, "RPUSH tx:l %d", i);
            redis_pipeline_append(&pl, "EXEC");
        }
    }
    redis_pipeline_flush(&pl);
}

struct trio {
    struct redis_fixture *src, *rep, *dst;
};

static void trio_start(struct trio *t, const char *const *dst_args)
{
    struct redis_fixture_opts so = {.extra_args = src_args}, o = {.extra_args = debug_args},
                              d = {.extra_args = dst_args};
    t->src = redis_fixture_start(&so);
    t->rep = redis_fixture_start(&o);
    t->dst = redis_fixture_start(&d);
    redis_fixture_replicate(t->rep, t->src, 20000);
}

TestSuite(dest_faults, .fini = redis_fixture_stop_all);

Test(dest_faults, connections_cut_three_times_are_taken_up_again, .timeout = 120)
{
    struct trio t;
    trio_start(&t, debug_args);
    burst(t.src->ctx, 0, 500);
    struct program *p = ringsync_start(t.src, t.dst, "2", NULL);
    wait_snapshot_applied(p);
    for (int k = 0; k < 3; k++) {
        burst(t.src->ctx, 1000 * (k + 1), 1000);
        sleep_ms(5 + 20 * k);
        redis_fixture_exec(t.dst->ctx, "CLIENT KILL TYPE normal SKIPME yes");
        sleep_ms(300);
    }
    burst(t.src->ctx, 9000, 1000);
    wait_caught_up(t.src, t.rep->port, p, "after cut connections");
    cr_assert(stderr_has(p, "destination back after"), "ringsync did not say it resumed");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after the destination's links were cut");
    ringsync_stop(p, "after cut connections");
}

Test(dest_faults, a_destination_killed_and_restarted_with_its_aof_is_resumed, .timeout = 180)
{
    struct trio t;
    trio_start(&t, aof_args);
    burst(t.src->ctx, 0, 500);
    struct program *p = ringsync_start(t.src, t.dst, "2", NULL);
    wait_snapshot_applied(p);
    struct redis_fixture_opts d = {.extra_args = aof_args};
    for (int k = 0; k < 2; k++) {
        burst(t.src->ctx, 1000 * (k + 1), 2000);
        sleep_ms(10 + 30 * k);
        redis_fixture_restart(t.dst, &d, SIGKILL); /* a crash; it reloads its AOF */
        burst(t.src->ctx, 5000 + 1000 * k, 300);   /* while it is away or loading */
    }
    wait_caught_up(t.src, t.rep->port, p, "after destination restarts");
    cr_assert(stderr_has(p, "destination back after"), "ringsync did not resume");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after the destination crashed twice");
    ringsync_stop(p, "after destination restarts");
}

Test(dest_faults, a_destination_out_of_memory_stops_the_job_and_the_restart_completes,
     .timeout = 120)
{
    static const char *const small[] = {
        "--enable-debug-command", "yes",        "--maxmemory", "3mb",
        "--maxmemory-policy",     "noeviction", NULL};
    struct trio t;
    trio_start(&t, small);
    burst(t.src->ctx, 0, 200);
    struct program *p = ringsync_start(t.src, t.dst, "1", NULL);
    wait_snapshot_applied(p);
    /* more than 3 MB: the destination refuses with -OOM */
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, t.src->ctx, 500);
    for (int i = 0; i < 4000; i++)
        redis_pipeline_append(&pl, "SET fill:%d %01000d", i, i);
    redis_pipeline_flush(&pl);
    burst(t.src->ctx, 200, 500);
    struct program_result r;
    program_finish(p, 0, 30000, &r);
    cr_assert(r.exited && r.exit_code == 1, "an OOM destination did not stop the job: %s", r.err);
    cr_assert(strstr(r.err, "-OOM") != NULL && strstr(r.err, "maxmemory") != NULL &&
                  strstr(r.err, "applied offset") != NULL,
              "the stop does not name the reply, the setting and the applied offset: %s", r.err);
    program_result_deinit(&r);
    redis_fixture_exec(t.dst->ctx, "CONFIG SET maxmemory 0");
    burst(t.src->ctx, 700, 500);
    p = ringsync_start(t.src, t.dst, "1", NULL);
    if (!program_wait_for_stderr(p, "partial resync", 20000))
        ringsync_fail(p, "the restart did not resume");
    wait_caught_up(t.src, t.rep->port, p, "after memory was raised");
    assert_dataset_equals(t.dst, t.rep, "native replica", "after an OOM stop and a resume");
    ringsync_stop(p, "after an OOM stop");
}
