/* test_stream_spill.c - a destination slower than the source does not cost
 * the link: ringsync keeps reading the source, parks what it cannot apply yet
 * (memory, then its spill file) and ends equal to the source (issue 8, "Never
 * falling behind the source").
 *
 * The source allows its replicas a 2 MB output buffer (1 MB for 1 s); the
 * destination sleeps 3 s (DEBUG SLEEP) while the source takes a burst of about
 * 40 MB of writes. A replica that stopped reading would be dropped. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset_compare.h"
#include "redis_fixture.h"

static long long source_offset(redisContext *c)
{
    char buf[64];
    cr_assert(redis_fixture_info(c, "replication", "master_repl_offset", buf, sizeof(buf)));
    return atoll(buf);
}

/* The offset the source shows for the replica listening on `port`, or -1. */
static long long replica_offset(redisContext *c, int port)
{
    redisReply *r = redis_fixture_command(c, "INFO replication");
    char needle[32];
    snprintf(needle, sizeof(needle), "port=%d,", port);
    const char *p = strstr(r->str, needle);
    long long off = -1;
    if (p != NULL && (p = strstr(p, "offset=")) != NULL)
        off = atoll(p + 7);
    freeReplyObject(r);
    return off;
}

Test(stream_spill, a_slow_destination_does_not_cost_the_link_and_ends_equal, .timeout = 120)
{
    const char *src_args[] = {"--client-output-buffer-limit", "replica 2mb 1mb 1",
                              "--enable-debug-command", "yes", NULL};
    const char *dst_args[] = {"--enable-debug-command", "yes", NULL};
    struct redis_fixture_opts so = {.extra_args = src_args}, dopt = {.extra_args = dst_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&dopt);
    char suri[64], duri[64], spill_dir[128];
    snprintf(suri, sizeof(suri), "redis://127.0.0.1:%d", src->port);
    snprintf(duri, sizeof(duri), "redis://127.0.0.1:%d", dst->port);
    snprintf(spill_dir, sizeof(spill_dir), "%s", dst->dir);
    const char *argv[] = {fixture_env("RS_RINGSYNC"),
                          "sync",
                          "--source",
                          suri,
                          "--target",
                          duri,
                          "--listening-port",
                          "4243",
                          "--max-memory",
                          "1mb",
                          "--spill-dir",
                          spill_dir,
                          NULL};
    int e = 0;
    struct program *p = program_start(argv, NULL, &e);
    cr_assert(p != NULL, "cannot start ringsync: %s", strerror(e));
    cr_assert(program_wait_for_stderr(p, "snapshot applied", 20000), "no snapshot applied");

    /* the destination stops answering for 3 s ... */
    redisContext *sleeper = redis_fixture_connect(dst);
    redisAppendCommand(sleeper, "DEBUG SLEEP 3");
    int done = 0;
    redisBufferWrite(sleeper, &done);
    usleep(100 * 1000);
    /* ... while the source takes ~40 MB of writes (600k commands) */
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, src->ctx, 1000);
    char key[32], val[48];
    for (int i = 0; i < 600000; i++) {
        snprintf(key, sizeof(key), "k:%d", i % 200000);
        snprintf(val, sizeof(val), "value-%d-xxxxxxxxxxxxxxxxxxxxxxxx", i);
        if (i % 3 == 2)
            redis_pipeline_append(&pl, "INCR c:%d", i % 1000);
        else
            redis_pipeline_append(&pl, "SET %s %s", key, val);
    }
    redis_pipeline_flush(&pl);
    long long target = source_offset(src->ctx);
    redisReply *sr = NULL;
    redisGetReply(sleeper, (void **)&sr);
    freeReplyObject(sr);
    redisFree(sleeper);

    long long off = -1;
    for (int i = 0; i < 600 && off < target; i++) {
        usleep(50 * 1000);
        off = replica_offset(src->ctx, 4243);
        cr_assert(!program_has_exited(p), "ringsync ended: %s", program_stderr(p, NULL));
    }
    cr_assert_geq(off, target,
                  "ringsync's applied offset %lld never reached the source's %lld "
                  "(it was dropped, or fell behind)",
                  off, target);
    assert_dataset_equals(dst, src, "source", "after the burst");

    struct program_result res;
    program_finish(p, SIGINT, 10000, &res);
    cr_assert(res.exited && res.exit_code == 0, "ringsync: %s", res.err);
    cr_assert(strstr(res.err, "spill file") != NULL,
              "the burst should have gone through the spill file: %s", res.err);
    program_result_deinit(&res);
    redis_fixture_stop(dst);
    redis_fixture_stop(src);
}
