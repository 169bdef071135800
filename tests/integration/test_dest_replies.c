/* test_dest_replies.c - destination replies that mean "wait" and replies
 * that stop naming a setting (dest_reply.h, dest_link.h), with real
 * redis-server processes:
 *
 *     source ──PSYNC──▶ ringsync sync ──▶ target
 *
 * Waiting (--on-error stop, so a refused command that was not retried would
 * stop the job); the source is the oracle, compared key by key:
 *   - the target runs a 1.5 s script from another connection while the
 *     source takes writes: -BUSY, retried in order;
 *   - the target runs DEBUG RELOAD (its load slowed by key-load-delay) while
 *     the source takes writes: -LOADING, retried in order;
 *   - ringsync starts while the target is still loading: its start-time
 *     checks wait too.
 * Stopping (--on-error skip, which must not skip them): OOM, READONLY,
 * NOREPLICAS, MISCONF, NOPERM, and a string past proto-max-bulk-len (the
 * reply of APPEND and the protocol error of a long SET), each met while
 * following the source, each naming the setting, with exit code 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "dataset_compare.h"
#include "redis_fixture.h"
#include "sync_watch.h"

TestSuite(dest_replies, .fini = redis_fixture_stop_all, .timeout = 120);

static const char *const source_args[] = {"--enable-debug-command", "yes",
                                          "--repl-diskless-sync-delay", "0", NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

/* A script that keeps the server busy for `us` microseconds. */
#define BUSY_SCRIPT_FOR(us)                                                                        \
    "local t = redis.call('TIME') "                                                                \
    "local s = t[1] * 1000000 + t[2] "                                                             \
    "while true do "                                                                               \
    "  local n = redis.call('TIME') "                                                              \
    "  if n[1] * 1000000 + n[2] - s > " us " then break end "                                      \
    "end "                                                                                         \
    "return 1"
#define BUSY_SCRIPT BUSY_SCRIPT_FOR("1500000")

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One burst of order-sensitive writes in dbs 0 and 1: overwrites, counters,
 * appends, deletes, list pushes (a reorder or a loss shows in the compare). */
static void write_burst(redisContext *c, int round)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 200);
    for (int i = 0; i < 100; i++) {
        int k = (round * 31 + i) % 500;
        switch (i % 7) {
        case 0:
            redis_pipeline_append(&p, "SET k:%d r%d:%d", k, round, i);
            break;
        case 1:
            redis_pipeline_append(&p, "INCR cnt:%d", k % 20);
            break;
        case 2:
            redis_pipeline_append(&p, "APPEND k:%d +%d", (k * 7) % 500, round);
            break;
        case 3:
            redis_pipeline_append(&p, "DEL k:%d", (k * 13) % 500);
            break;
        case 4:
            redis_pipeline_append(&p, "RPUSH list:%d %d", k % 10, round * 100 + i);
            break;
        case 5:
            redis_pipeline_append(&p, "SELECT 1");
            redis_pipeline_append(&p, "HSET h:%d f%d %d", k % 30, i, round);
            break;
        default:
            redis_pipeline_append(&p, "SELECT 0");
            break;
        }
    }
    redis_pipeline_append(&p, "SELECT 0");
    redis_pipeline_flush(&p);
}

/* Sends a command on c without reading its reply (it blocks the server). */
static void send_only(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cr_assert_eq(redisvAppendCommand(c, fmt, ap), REDIS_OK);
    va_end(ap);
    int done = 0;
    while (!done)
        cr_assert_eq(redisBufferWrite(c, &done), REDIS_OK);
}

static void expect_reply_ok(redisContext *c, const char *what)
{
    redisReply *r = NULL;
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "%s: %s", what, c->errstr);
    cr_assert(r->type != REDIS_REPLY_ERROR, "%s: %s", what, r->str);
    freeReplyObject(r);
}

static void expect_in_stderr(struct program *p, const char *needle)
{
    if (!stderr_has(p, needle))
        ringsync_fail(p, "ringsync's stderr lacks \"%s\"", needle);
}

/* Shows what ringsync said (with --verbose): how long it waited, how many
 * commands it retried. */
static void log_stderr(struct program *p)
{
    char *err = program_stderr(p, NULL);
    cr_log_info("ringsync said:\n%s", err);
    free(err);
}

/* ------------------------------------------------------------------ waiting */

static void busy_script(const char *workers)
{
    const char *const dst_args[] = {"--enable-debug-command", "yes", "--busy-reply-threshold",
                                    "100", NULL};
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = dst_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 2000 k 16");
    const char *const extra[] = {"--on-error", "stop", NULL};
    struct program *p = ringsync_start_with(src, dst, workers, extra);
    wait_snapshot_applied(p);
    write_burst(src->ctx, 0);
    wait_caught_up(src, 0, p, "before the script");

    redisContext *script = redis_fixture_connect(dst);
    send_only(script, "EVAL %s 0", BUSY_SCRIPT);
    double t0 = now_s();
    for (int round = 1; now_s() - t0 < 2.2; round++) {
        write_burst(src->ctx, round);
        sleep_ms(20);
    }
    expect_reply_ok(script, "the script");
    redisFree(script);
    wait_caught_up(src, 0, p, "after the script");
    expect_in_stderr(p, "answers -BUSY");
    expect_in_stderr(p, "waiting");
    expect_in_stderr(p, "takes writes again after");
    log_stderr(p);
    assert_dataset_equals(dst, src, "the source", "after -BUSY");
    ringsync_stop(p, "after -BUSY");
}

Test(dest_replies, a_target_busy_in_a_long_script_is_waited_for_and_ends_equal)
{
    busy_script("1");
}

/* Each worker's link meets -BUSY and retries by itself. */
Test(dest_replies, a_busy_target_is_waited_for_by_each_of_two_workers)
{
    busy_script("2");
}

Test(dest_replies, a_target_busy_past_the_retry_timeout_stops_naming_it)
{
    const char *const dst_args[] = {"--enable-debug-command", "yes", "--busy-reply-threshold",
                                    "100", NULL};
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = dst_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    const char *const extra[] = {"--target-retry-timeout", "0.5", NULL};
    struct program *p = ringsync_start_with(src, dst, "1", extra);
    wait_snapshot_applied(p);
    /* the job's checkpoint record is written first (src/CHECKPOINTS.md):
     * the busy script must meet the stream's INCR, not that record */
    long long deadline = fixture_now_ms() + 10000;
    for (;;) {
        redisReply *w =
            redis_fixture_command(dst->ctx, "GET ringsync:cp:127.0.0.1:%d:w", src->port);
        bool written = w->type == REDIS_REPLY_STRING && strstr(w->str, " stream ") != NULL;
        freeReplyObject(w);
        if (written)
            break;
        cr_assert(fixture_now_ms() < deadline, "no checkpoint record within 10 s");
        sleep_ms(10);
    }
    /* An idle link PINGs the destination every DEST_LINK_KEEPALIVE_S (0.5 s):
     * that PING must not be what meets the busy script first. So the link
     * is made busy just before (a write, applied), and the INCR follows as
     * soon as the script runs. */
    redis_fixture_exec(src->ctx, "SET warm 1");
    for (deadline = fixture_now_ms() + 10000;; sleep_ms(2)) {
        redisReply *w = redis_fixture_command(dst->ctx, "EXISTS warm");
        bool there = w->type == REDIS_REPLY_INTEGER && w->integer == 1;
        freeReplyObject(w);
        if (there)
            break;
        cr_assert(fixture_now_ms() < deadline, "SET warm not applied within 10 s");
    }
    redisContext *script = redis_fixture_connect(dst);
    /* busy for 4 s: long past the 0.5 s timeout even when a loaded box
     * delays the INCR's arrival by a second or more */
    send_only(script, "EVAL %s 0", BUSY_SCRIPT_FOR("4000000"));
    redisContext *probe = redis_fixture_connect(dst); /* -BUSY: the script runs */
    for (deadline = fixture_now_ms() + 10000;; sleep_ms(1)) {
        redisReply *x = redisCommand(probe, "PING");
        bool busy = x != NULL && x->type == REDIS_REPLY_ERROR && strncmp(x->str, "BUSY", 4) == 0;
        if (x != NULL)
            freeReplyObject(x);
        if (busy)
            break;
        cr_assert(fixture_now_ms() < deadline, "the busy script did not start within 10 s");
    }
    redisFree(probe);
    redis_fixture_exec(src->ctx, "INCR after");
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    char how[64];
    cr_assert(r.exited && r.exit_code == 1, "ringsync ended with %s, not exit 1:\n%s",
              program_result_describe(&r, how, sizeof(how)), r.err);
    cr_expect(strstr(r.err, "still answers -BUSY") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "--target-retry-timeout") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "INCR 'after' in db 0 (source offset") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "applied offset") != NULL, "%s", r.err);
    cr_log_info("ringsync said:\n%s", r.err);
    program_result_deinit(&r);
    expect_reply_ok(script, "the script");
    redisFree(script);
}

/* Makes the target's next load take about a second: keys in db 9 (which
 * the source does not use) loaded 50 us apart, answering -LOADING between. */
static void slow_loading(struct redis_fixture *dst)
{
    redis_fixture_exec(dst->ctx, "SELECT 9");
    redis_fixture_exec(dst->ctx, "DEBUG POPULATE 10000 filler 16");
    redis_fixture_exec(dst->ctx, "SELECT 0");
    redis_fixture_exec(dst->ctx, "CONFIG SET key-load-delay 50");
    redis_fixture_exec(dst->ctx, "CONFIG SET loading-process-events-interval-bytes 1024");
}

static void compare_without_filler(struct redis_fixture *dst, struct redis_fixture *src,
                                   const char *what)
{
    redis_fixture_exec(dst->ctx, "SELECT 9");
    redis_fixture_exec(dst->ctx, "FLUSHDB");
    redis_fixture_exec(dst->ctx, "SELECT 0");
    assert_dataset_equals(dst, src, "the source", what);
}

Test(dest_replies, a_target_that_reloads_is_waited_for_and_ends_equal)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    slow_loading(dst);
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 2000 k 16");
    const char *const extra[] = {"--on-error", "stop", "--target-nonempty", "keep", NULL};
    struct program *p = ringsync_start_with(src, dst, "1", extra);
    wait_snapshot_applied(p);
    write_burst(src->ctx, 0);
    wait_caught_up(src, 0, p, "before the reload");

    redisContext *reload = redis_fixture_connect(dst);
    send_only(reload, "DEBUG RELOAD");
    double t0 = now_s();
    for (int round = 1; now_s() - t0 < 2.0; round++) {
        write_burst(src->ctx, round);
        sleep_ms(20);
    }
    expect_reply_ok(reload, "DEBUG RELOAD");
    redisFree(reload);
    wait_caught_up(src, 0, p, "after the reload");
    expect_in_stderr(p, "answers -LOADING");
    expect_in_stderr(p, "takes writes again after");
    log_stderr(p);
    compare_without_filler(dst, src, "after -LOADING");
    ringsync_stop(p, "after -LOADING");
}

Test(dest_replies, ringsync_started_while_the_target_loads_waits_and_ends_equal)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    slow_loading(dst);
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 2000 k 16");
    redisContext *reload = redis_fixture_connect(dst);
    send_only(reload, "DEBUG RELOAD");
    redisContext *info = redis_fixture_connect(dst);
    char v[16] = "";
    double t0 = now_s();
    while (!(redis_fixture_info(info, "persistence", "loading", v, sizeof(v)) &&
             strcmp(v, "1") == 0)) {
        cr_assert(now_s() - t0 < 10, "the target never started loading");
        sleep_ms(5);
    }
    redisFree(info);
    const char *const extra[] = {"--on-error", "stop", "--target-nonempty", "keep", NULL};
    struct program *p = ringsync_start_with(src, dst, "1", extra);
    wait_snapshot_applied(p);
    expect_reply_ok(reload, "DEBUG RELOAD");
    redisFree(reload);
    expect_in_stderr(p, "answers -LOADING");
    log_stderr(p);
    write_burst(src->ctx, 1);
    wait_caught_up(src, 0, p, "after the load");
    compare_without_filler(dst, src, "after a start during -LOADING");
    ringsync_stop(p, "after a start during -LOADING");
}

/* ----------------------------------------------------------------- stopping */

/* ringsync following src into dst with --on-error skip (what must not skip
 * these), target URI given (NULL: dst's). */
static struct program *follow(struct redis_fixture *src, struct redis_fixture *dst,
                              const char *target)
{
    /* --checkpoint none: the stream's own command is the first write to
     * meet the setting (with checkpoints the job's w record may be, and its
     * message names the same setting) */
    const char *const extra[] = {
        "--on-error", "skip", "--checkpoint", "none", target ? "--target" : NULL, target, NULL};
    struct program *p = ringsync_start_with(src, dst, "1", extra);
    wait_snapshot_applied(p);
    return p;
}

/* It exits with 1 on its own, its last words holding every needle (a run of
 * SETs goes out as one MSET: the needles name the key, not SET). */
static void expect_stop(struct program *p, const char *const *needles)
{
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    char how[64];
    cr_assert(r.exited && r.exit_code == 1, "ringsync ended with %s, not exit 1:\n%s",
              program_result_describe(&r, how, sizeof(how)), r.err);
    for (int i = 0; needles[i] != NULL; i++)
        cr_expect(strstr(r.err, needles[i]) != NULL, "stderr lacks \"%s\":\n%s", needles[i], r.err);
    cr_expect(strstr(r.err, "skipped:") == NULL, "it skipped instead of stopping:\n%s", r.err);
    program_result_deinit(&r);
}

static void start_pair(struct redis_fixture **src, struct redis_fixture **dst)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    *src = redis_fixture_start(&so);
    *dst = redis_fixture_start(&o);
    redis_fixture_exec((*src)->ctx, "SET before 1");
}

Test(dest_replies, oom_stops_naming_maxmemory)
{
    struct redis_fixture *src, *dst;
    start_pair(&src, &dst);
    struct program *p = follow(src, dst, NULL);
    long long used = info_number(dst->ctx, "memory", "used_memory");
    redis_fixture_exec(dst->ctx, "CONFIG SET maxmemory-policy noeviction");
    redis_fixture_exec(dst->ctx, "CONFIG SET maxmemory %lld", used + 512 * 1024);
    char *big = malloc(100 * 1024);
    memset(big, 'v', 100 * 1024);
    for (int i = 0; i < 30; i++)
        redis_fixture_exec(src->ctx, "SET big:%d %b", i, big, (size_t)100 * 1024);
    free(big);
    const char *const want[] = {"-OOM command not allowed",
                                "SET 'big:",
                                "in db 0",
                                "source offset",
                                "maxmemory",
                                "noeviction",
                                "on the destination",
                                NULL};
    expect_stop(p, want);
}

Test(dest_replies, readonly_stops_naming_replicaof)
{
    struct redis_fixture *src, *dst;
    start_pair(&src, &dst);
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *other = redis_fixture_start(&o);
    struct program *p = follow(src, dst, NULL);
    redis_fixture_exec(dst->ctx, "REPLICAOF 127.0.0.1 %d", other->port);
    redis_fixture_exec(src->ctx, "SET after 1");
    const char *const want[] = {"-READONLY",        "SET 'after' in db 0", "source offset",
                                "REPLICAOF NO ONE", "on the destination",  NULL};
    expect_stop(p, want);
}

Test(dest_replies, noreplicas_stops_naming_min_replicas_to_write)
{
    struct redis_fixture *src, *dst;
    start_pair(&src, &dst);
    struct program *p = follow(src, dst, NULL);
    redis_fixture_exec(dst->ctx, "CONFIG SET min-replicas-to-write 1");
    redis_fixture_exec(src->ctx, "INCR after");
    const char *const want[] = {"-NOREPLICAS", "refused INCR 'after'", "min-replicas-to-write",
                                "on the destination", NULL};
    expect_stop(p, want);
}

Test(dest_replies, misconf_stops_naming_stop_writes_on_bgsave_error)
{
    const char *const dst_args[] = {"--enable-debug-command", "yes", "--enable-protected-configs",
                                    "yes", NULL};
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = dst_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    redis_fixture_exec(src->ctx, "SET before 1");
    struct program *p = follow(src, dst, NULL);
    /* a dir that is gone: the BGSAVE child cannot create its file, even as root */
    char gone[128];
    redis_fixture_path(dst, "gone", gone, sizeof(gone));
    cr_assert_eq(mkdir(gone, 0700), 0, "%s", strerror(errno));
    redis_fixture_exec(dst->ctx, "CONFIG SET dir %s", gone);
    cr_assert_eq(rmdir(gone), 0, "%s", strerror(errno));
    redis_fixture_exec(dst->ctx, "CONFIG SET save %s", "3600 1");
    redis_fixture_exec(dst->ctx, "CONFIG SET stop-writes-on-bgsave-error yes");
    redis_fixture_exec(dst->ctx, "BGSAVE");
    char v[16] = "";
    double t0 = now_s();
    while (!(redis_fixture_info(dst->ctx, "persistence", "rdb_last_bgsave_status", v, sizeof(v)) &&
             strcmp(v, "err") == 0)) {
        cr_assert(now_s() - t0 < 10, "BGSAVE did not fail");
        sleep_ms(10);
    }
    redis_fixture_exec(src->ctx, "SET after 1");
    const char *const want[] = {"-MISCONF", "SET 'after' in db 0", "stop-writes-on-bgsave-error",
                                "on the destination", NULL};
    expect_stop(p, want);
}

Test(dest_replies, noperm_stops_naming_the_command_the_user_lacks)
{
    struct redis_fixture *src, *dst;
    start_pair(&src, &dst);
    redis_fixture_exec(dst->ctx, "ACL SETUSER rs on >pw ~* &* +@all");
    char target[96];
    snprintf(target, sizeof(target), "redis://rs:pw@127.0.0.1:%d", dst->port);
    struct program *p = follow(src, dst, target);
    redis_fixture_exec(dst->ctx, "ACL SETUSER rs -xadd");
    redis_fixture_exec(src->ctx, "XADD s 1-1 f v");
    const char *const want[] = {"-NOPERM", "refused XADD 's' in db 0",          "source offset",
                                "+xadd",   "ACL rules of the destination user", NULL};
    expect_stop(p, want);
}

Test(dest_replies, a_string_past_proto_max_bulk_len_stops_naming_it)
{
    struct redis_fixture *src, *dst;
    start_pair(&src, &dst);
    struct program *p = follow(src, dst, NULL);
    redis_fixture_exec(dst->ctx, "CONFIG SET proto-max-bulk-len 1mb");
    size_t n = 600 * 1024;
    char *half = malloc(n);
    memset(half, 'x', n);
    redis_fixture_exec(src->ctx, "SET long %b", half, n);
    redis_fixture_exec(src->ctx, "APPEND long %b", half, n); /* 1.2 MB on the source */
    free(half);
    const char *const want[] = {"string exceeds maximum allowed size (proto-max-bulk-len)",
                                "refused APPEND 'long'", "set proto-max-bulk-len",
                                "on the destination", NULL};
    expect_stop(p, want);
}

Test(dest_replies, a_bulk_past_proto_max_bulk_len_stops_naming_it)
{
    struct redis_fixture *src, *dst;
    start_pair(&src, &dst);
    struct program *p = follow(src, dst, NULL);
    redis_fixture_exec(dst->ctx, "CONFIG SET proto-max-bulk-len 1mb");
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, 'x', n);
    redis_fixture_exec(src->ctx, "SET huge %b", big, n);
    free(big);
    const char *const want[] = {"Protocol error: invalid bulk length", "SET 'huge' in db 0",
                                "set proto-max-bulk-len", NULL};
    expect_stop(p, want);
}
