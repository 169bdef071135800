/* test_rate_limit.c - `--snapshot-rate-limit` and `--stream-rate-limit`
 * (rate_limit.h, issue 19): the full sync and the stream each go no faster
 * than their limit, in operations or bytes per second, within 5 % of it over
 * a few seconds; the status shows when a limit holds the job back; a bad
 * spec is refused naming the flag. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_compare.h"
#include "redis_fixture.h"
#include "status_client.h"
#include "sync_watch.h"

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

TestSuite(rate_limit, .fini = redis_fixture_stop_all);

static struct redis_fixture *server(void)
{
    struct redis_fixture_opts o = {.extra_args = debug_args};
    return redis_fixture_start(&o);
}

/* How long the source's offset took to be acknowledged by ringsync, from
 * t0 (ms), with the rate seen over that time. */
static double wait_acked_s(struct redis_fixture *src, struct program *p, long long t0)
{
    wait_caught_up(src, 0, p, "the limited stream");
    return (double)(fixture_now_ms() - t0) / 1000.0;
}

Test(rate_limit, the_full_sync_holds_its_ops_limit, .timeout = 60)
{
    struct redis_fixture *src = server(), *dst = server();
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 40000 key 32");
    const char *const more[] = {"--snapshot-rate-limit", "ops=10000", "--snapshot-only", NULL};
    long long t0 = fixture_now_ms();
    struct program *p = ringsync_start_with(src, dst, "1", more);
    struct program_result r;
    program_finish(p, 0, 30000, &r);
    double s = (double)(fixture_now_ms() - t0) / 1000.0;
    cr_assert(r.exited && r.exit_code == 0, "the limited full sync failed:\n%s", r.err);
    program_result_deinit(&r);
    /* 40000 keys at 10000/s: 4 s, less the bucket's first 50 ms, plus the start */
    cr_assert(s >= 3.8 && s <= 4.2 * 1.05, "40000 keys at ops=10000 took %.2f s (want 4 s +- 5%%)",
              s);
    assert_dataset_equals(dst, src, "source", "after the limited full sync");
}

Test(rate_limit, the_stream_holds_its_ops_limit_and_the_status_says_so, .timeout = 60)
{
    struct redis_fixture *src = server(), *dst = server();
    const char *const more[] = {"--stream-rate-limit", "ops=5000", "--status-addr", "127.0.0.1:0",
                                NULL};
    struct program *p = ringsync_start_ports(src->port, dst->port, "1", true, more);
    wait_snapshot_applied(p);
    cr_assert(program_wait_for_stderr(p, "status on http://", 10000), "no status line");
    char *err = program_stderr(p, NULL);
    const char *at = strstr(err, "status on http://") + strlen("status on http://");
    char addr[64];
    snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(at, "/"), at);
    free(err);
    long long t0 = fixture_now_ms();
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, src->ctx, 1000);
    for (int i = 0; i < 25000; i++) /* 25000 commands at 5000/s: 5 s */
        redis_pipeline_append(&pl, "INCR counter:%d", i % 100);
    redis_pipeline_flush(&pl);
    sleep_ms(1500);
    int code = 0;
    char *body = NULL, herr[256];
    cr_assert(status_client_get(addr, "/metrics", 5000, &code, &body, herr, sizeof(herr)) == 0,
              "GET /metrics: %s", herr);
    cr_assert(strstr(body, "\nringsync_rate_limited 1") != NULL,
              "the metrics do not say a limit holds the job back:\n%s", body);
    free(body);
    double s = wait_acked_s(src, p, t0);
    cr_assert(s >= 4.75 && s <= 5.25 + 1.0, /* + the destination's and ACKs' own pace */
              "25000 commands at ops=5000 took %.2f s (want 5 s)", s);
    cr_assert(status_client_get(addr, "/metrics", 5000, &code, &body, herr, sizeof(herr)) == 0,
              "GET /metrics: %s", herr);
    static const char held_name[] = "\nringsync_rate_limit_held_seconds_total ";
    const char *held = strstr(body, held_name);
    cr_assert(held != NULL && strtod(held + strlen(held_name), NULL) > 3.0,
              "the metrics do not count the time held back:\n%s", body);
    free(body);
    /* the last piece's debt is paid within a bucket's time; then it lets go */
    bool let_go = false;
    for (int i = 0; i < 20 && !let_go; i++, sleep_ms(50)) {
        cr_assert(status_client_get(addr, "/metrics", 5000, &code, &body, herr, sizeof(herr)) == 0,
                  "GET /metrics: %s", herr);
        let_go = strstr(body, "\nringsync_rate_limited 0") != NULL;
        free(body);
    }
    cr_assert(let_go, "still held back 1 s after it caught up");
    ringsync_stop(p, "the limited stream");
    assert_dataset_equals(dst, src, "source", "after the limited stream");
}

Test(rate_limit, the_stream_holds_its_bytes_limit, .timeout = 60)
{
    struct redis_fixture *src = server(), *dst = server();
    const char *const more[] = {"--stream-rate-limit", "bytes=256k", NULL};
    struct program *p = ringsync_start_with(src, dst, "1", more);
    wait_snapshot_applied(p);
    long long off0 = info_number(src->ctx, "replication", "master_repl_offset");
    char value[513];
    memset(value, 'v', 512);
    value[512] = '\0';
    long long t0 = fixture_now_ms();
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, src->ctx, 500);
    for (int i = 0; i < 2000; i++)
        redis_pipeline_append(&pl, "SET big:%d %s", i, value);
    redis_pipeline_flush(&pl);
    double bytes = (double)(info_number(src->ctx, "replication", "master_repl_offset") - off0);
    double s = wait_acked_s(src, p, t0), want = bytes / (256 * 1024);
    cr_assert(s >= want * 0.95 - 0.05 && s <= want * 1.05 + 1.0,
              "%.0f stream bytes at bytes=256k took %.2f s (want %.2f s)", bytes, s, want);
    ringsync_stop(p, "the byte-limited stream");
    assert_dataset_equals(dst, src, "source", "after the byte-limited stream");
}

Test(rate_limit, a_bad_spec_is_refused_naming_the_flag, .timeout = 30)
{
    struct redis_fixture *src = server(), *dst = server();
    static const char *const bad[][2] = {{"--rate-limit", "ops=0"},
                                         {"--stream-rate-limit", "fast"},
                                         {"--snapshot-rate-limit", "bytes=10x"},
                                         {"--rate-limit", "ops=5,ops=6"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const more[] = {bad[i][0], bad[i][1], NULL};
        struct program *p = ringsync_start_with(src, dst, "1", more);
        struct program_result r;
        program_finish(p, 0, 10000, &r);
        cr_assert(r.exited && r.exit_code == 2 && strstr(r.err, bad[i][0]) != NULL,
                  "%s %s: want exit 2 naming the flag:\n%s", bad[i][0], bad[i][1], r.err);
        program_result_deinit(&r);
    }
}
