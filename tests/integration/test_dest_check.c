/* test_dest_check.c - the start-time checks of the destination's settings
 * (src/dest_check.h), with real redis-server processes: each setting that
 * would make the destination refuse what the source can send is an error
 * (exit 1, nothing written) or a warning (exit 0), and its message names the
 * setting, both values and what to change; a CONFIG GET the destination or
 * the source refuses skips the checks with a warning; a loading destination
 * is waited for (sync.c), then checked; a destination configured right
 * passes without a word.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cluster_fixture.h"
#include "redis_fixture.h"
#include "sync_watch.h"

#define RUN_TIMEOUT_MS 60000

TestSuite(dest_check, .fini = redis_fixture_stop_all, .timeout = 120);

/* ---------------------------------------------------------------- helpers */

static void uri_of(const struct redis_fixture *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "redis://127.0.0.1:%d", f->port);
}

/* A source with a few keys; extra_args as for redis_fixture_opts (NULL: none). */
static struct redis_fixture *start_source(const char *const *extra_args)
{
    struct redis_fixture_opts so = {.extra_args = extra_args};
    struct redis_fixture *f = redis_fixture_start(&so);
    redis_fixture_exec(f->ctx, "SET s:str v");
    redis_fixture_exec(f->ctx, "RPUSH s:list a b c");
    redis_fixture_exec(f->ctx, "HSET s:hash f v");
    return f;
}

static struct redis_fixture *start_dest(const char *const *extra_args)
{
    struct redis_fixture_opts o = {.extra_args = extra_args};
    return redis_fixture_start(&o);
}

/* ringsync sync --snapshot-only from src to target (a URI), then more args
 * (NULL-terminated; NULL: none). */
static void run_sync(const struct redis_fixture *src, const char *target, const char *const *more,
                     struct program_result *r)
{
    char source[64];
    uri_of(src, source, sizeof(source));
    const char *argv[24] = {fixture_env("RS_RINGSYNC"),
                            "sync",
                            "--snapshot-only",
                            "--source",
                            source,
                            "--target",
                            target};
    int argc = 7;
    for (size_t i = 0; more != NULL && more[i] != NULL; i++) {
        cr_assert(argc < 23);
        argv[argc++] = more[i];
    }
    argv[argc] = NULL;
    int rc = program_run(argv, NULL, NULL, RUN_TIMEOUT_MS, r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
}

static void run_sync_to(const struct redis_fixture *src, const struct redis_fixture *dst,
                        const char *const *more, struct program_result *r)
{
    char target[64];
    uri_of(dst, target, sizeof(target));
    run_sync(src, target, more, r);
}

static void assert_exit(const struct program_result *r, int code, const char *what)
{
    char st[64];
    cr_assert(r->exited && r->exit_code == code,
              "%s: ringsync ended with %s, expected exit %d; stderr:\n%s", what,
              program_result_describe(r, st, sizeof(st)), code, r->err);
}

/* The line of r's stderr holding every needle (NULL-terminated), copied
 * into line; fails the test when there is none. */
static void find_line(const struct program_result *r, const char *const *needles, char *line,
                      size_t cap, const char *what)
{
    const char *p = r->err;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        snprintf(line, cap, "%.*s", (int)n, p);
        bool all = true;
        for (size_t i = 0; needles[i] != NULL && all; i++)
            all = strstr(line, needles[i]) != NULL;
        if (all)
            return;
        p += n + (nl != NULL);
    }
    cr_assert_fail("%s: no line of stderr says all of \"%s\" \"%s\" \"%s\" ...:\n%s", what,
                   needles[0], needles[1] ? needles[1] : "",
                   needles[1] && needles[2] ? needles[2] : "", r->err);
}

/* A line with every needle that is a warning ("ringsync: warning: ..."). */
static void assert_warning(const struct program_result *r, const char *const *needles,
                           const char *what)
{
    char line[2048];
    find_line(r, needles, line, sizeof(line), what);
    cr_assert(strncmp(line, "ringsync: warning: ", 19) == 0, "%s: not a warning: %s", what, line);
}

/* A line with every needle that is not a warning: the reason of exit 1. */
static void assert_error(const struct program_result *r, const char *const *needles,
                         const char *what)
{
    char line[2048];
    find_line(r, needles, line, sizeof(line), what);
    cr_assert(strncmp(line, "ringsync: warning", 17) != 0, "%s: a warning, not an error: %s", what,
              line);
}

static long long dbsize(redisContext *c)
{
    redisReply *r = redis_fixture_command(c, "DBSIZE");
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Waits until INFO section field of f equals want (10 s at most). */
static void wait_info(const struct redis_fixture *f, const char *section, const char *field,
                      const char *want)
{
    char v[64] = "";
    for (int i = 0; i < 500; i++) {
        if (redis_fixture_info(f->ctx, section, field, v, sizeof(v)) && strcmp(v, want) == 0)
            return;
        usleep(20 * 1000);
    }
    cr_assert_fail("INFO %s %s is '%s', not '%s', after 10 s", section, field, v, want);
}

/* ---------------------------------------------------------------- errors */

Test(dest_check, a_smaller_proto_max_bulk_len_stops_the_job_before_any_write)
{
    struct redis_fixture *src = start_source(NULL);
    static const char *const small[] = {"--proto-max-bulk-len", "1mb", NULL};
    struct redis_fixture *dst = start_dest(small);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 1, "proto-max-bulk-len 1mb");
    static const char *const says[] = {"proto-max-bulk-len 1048576", "536870912",
                                       "CONFIG SET proto-max-bulk-len 536870912", NULL};
    assert_error(&r, says, "proto-max-bulk-len 1mb");
    cr_assert(dbsize(dst->ctx) == 0, "the destination was written before the check stopped it");
    program_result_deinit(&r);
}

Test(dest_check, a_replica_destination_stops_the_job)
{
    struct redis_fixture *src = start_source(NULL);
    struct redis_fixture *upstream = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    redis_fixture_replicate(dst, upstream, 10000);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 1, "a replica destination");
    char of[64];
    snprintf(of, sizeof(of), "replica of 127.0.0.1:%d", upstream->port);
    const char *const says[] = {of, "role:slave", "READONLY", "REPLICAOF NO ONE", NULL};
    assert_error(&r, says, "a replica destination");
    program_result_deinit(&r);
}

Test(dest_check, a_cluster_node_given_as_standalone_stops_the_job_before_any_write)
{
    struct redis_fixture *src = start_source(NULL);
    struct cluster_fixture_opts co = {.masters = 3};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    struct program_result r;
    static const char *const standalone[] = {"--target-mode", "standalone", NULL};
    run_sync_to(src, c->nodes[1], standalone, &r);
    assert_exit(&r, 1, "a cluster node with --target-mode standalone");
    const char *const says[] = {"Redis Cluster", "cluster_enabled:1", "MOVED",
                                "--target-mode standalone", NULL};
    assert_error(&r, says, "a cluster node with --target-mode standalone");
    for (int i = 0; i < c->nnodes; i++)
        cr_assert(dbsize(c->nodes[i]->ctx) == 0, "node %d was written", i);
    program_result_deinit(&r);
    cluster_fixture_stop(c);
}

Test(dest_check, min_replicas_to_write_without_the_replicas_stops_the_job)
{
    struct redis_fixture *src = start_source(NULL);
    static const char *const minrep[] = {"--min-replicas-to-write", "1", NULL};
    struct redis_fixture *dst = start_dest(minrep);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 1, "min-replicas-to-write 1, no replica");
    static const char *const says[] = {"min-replicas-to-write 1", "0 good replicas", "NOREPLICAS",
                                       "CONFIG SET min-replicas-to-write 0", NULL};
    assert_error(&r, says, "min-replicas-to-write 1, no replica");
    program_result_deinit(&r);
}

Test(dest_check, restore_into_a_replica_stops_too_without_a_source_to_compare)
{
    struct redis_fixture *src = start_source(NULL);
    redis_fixture_exec(src->ctx, "SAVE");
    char rdb[128];
    redis_fixture_path(src, "dump.rdb", rdb, sizeof(rdb));
    struct redis_fixture *upstream = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    redis_fixture_replicate(dst, upstream, 10000);
    char target[64];
    uri_of(dst, target, sizeof(target));
    const char *const argv[] = {
        fixture_env("RS_RINGSYNC"), "restore", rdb, "--target", target, NULL};
    struct program_result r;
    int rc = program_run(argv, NULL, NULL, RUN_TIMEOUT_MS, &r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
    assert_exit(&r, 1, "restore into a replica");
    static const char *const says[] = {"role:slave", "REPLICAOF NO ONE", NULL};
    assert_error(&r, says, "restore into a replica");
    cr_assert(strstr(r.err, "not compared") == NULL, "restore has no source to compare:\n%s",
              r.err);
    program_result_deinit(&r);
}

/* ---------------------------------------------------------------- warnings */

Test(dest_check, min_replicas_to_write_with_enough_replicas_is_a_warning)
{
    struct redis_fixture *src = start_source(NULL);
    static const char *const minrep[] = {"--min-replicas-to-write", "1", NULL};
    struct redis_fixture *dst = start_dest(minrep);
    struct redis_fixture *rep = redis_fixture_start(NULL);
    redis_fixture_replicate(rep, dst, 10000);
    wait_info(dst, "replication", "min_slaves_good_slaves", "1");
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 0, "min-replicas-to-write 1, one replica");
    static const char *const says[] = {"min-replicas-to-write 1", "1 good replicas", "NOREPLICAS",
                                       NULL};
    assert_warning(&r, says, "min-replicas-to-write 1, one replica");
    cr_assert(dbsize(dst->ctx) == 3, "the snapshot was not applied:\n%s", r.err);
    program_result_deinit(&r);
}

Test(dest_check, a_query_buffer_limit_below_the_source_bulk_len_is_a_warning)
{
    struct redis_fixture *src = start_source(NULL);
    static const char *const qbl[] = {"--client-query-buffer-limit", "64mb", NULL};
    struct redis_fixture *dst = start_dest(qbl);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 0, "client-query-buffer-limit 64mb");
    static const char *const says[] = {"client-query-buffer-limit 67108864",
                                       "proto-max-bulk-len 536870912", "connection closed",
                                       "CONFIG SET client-query-buffer-limit", NULL};
    assert_warning(&r, says, "client-query-buffer-limit 64mb");
    cr_assert(dbsize(dst->ctx) == 3, "the snapshot was not applied:\n%s", r.err);
    program_result_deinit(&r);
}

/* A destination that closes clients idle for 1 s, and a source that writes
 * nothing for 3 s: ringsync's links stay up (it PINGs an idle link), and
 * what the source writes afterwards arrives. Without the keepalive the
 * destination closes them and the job fails (seen before it was written). */
Test(dest_check, an_idle_timeout_on_the_destination_does_not_end_the_job_of_a_quiet_source)
{
    struct redis_fixture *src = start_source(NULL);
    static const char *const t[] = {"--timeout", "1", NULL};
    struct redis_fixture *dst = start_dest(t);
    struct program *p = ringsync_start(src, dst, "2", NULL);
    wait_snapshot_applied(p);
    sleep_ms(3000);
    cr_assert(!program_has_exited(p), "ringsync ended while the source was quiet:\n%s",
              program_stderr(p, NULL));
    redis_fixture_exec(src->ctx, "SET after:quiet 1");
    wait_caught_up(src, -1, p, "after 3 s of a quiet source, destination timeout 1");
    redisContext *fresh = redis_fixture_connect(dst); /* the test's own link timed out */
    redisReply *v = redis_fixture_command(fresh, "GET after:quiet");
    cr_assert(v->type == REDIS_REPLY_STRING && strcmp(v->str, "1") == 0,
              "the write after the quiet time did not arrive");
    freeReplyObject(v);
    redisFree(fresh);
    char *err = program_stderr(p, NULL);
    bool warned = strcasestr(err, "warning") != NULL;
    free(err);
    cr_assert(!warned, "a warning about the timeout is no longer due");
    ringsync_stop(p, "timeout 1");
}

Test(dest_check, fewer_databases_than_the_source_is_a_warning)
{
    struct redis_fixture *src = start_source(NULL);
    static const char *const dbs[] = {"--databases", "4", NULL};
    struct redis_fixture *dst = start_dest(dbs);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 0, "databases 4");
    static const char *const says[] = {"databases 4", "16", NULL};
    assert_warning(&r, says, "databases 4");
    program_result_deinit(&r);
}

/* ------------------------------------------------- CONFIG GET refused */

Test(dest_check, a_renamed_config_command_skips_the_checks_with_a_warning)
{
    struct redis_fixture *src = start_source(NULL);
    /* With it the checks would have something to say, had they run. */
    static const char *const renamed[] = {"--rename-command",     "CONFIG", "",
                                          "--proto-max-bulk-len", "1mb",    NULL};
    struct redis_fixture *dst = start_dest(renamed);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 0, "CONFIG renamed on the destination");
    static const char *const says[] = {"refused CONFIG GET", "unknown command", "not checked",
                                       NULL};
    assert_warning(&r, says, "CONFIG renamed on the destination");
    cr_assert(dbsize(dst->ctx) == 3, "the snapshot was not applied:\n%s", r.err);
    program_result_deinit(&r);
}

Test(dest_check, a_user_denied_config_by_acl_skips_the_checks_with_a_warning)
{
    struct redis_fixture *src = start_source(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    redis_fixture_exec(dst->ctx, "ACL SETUSER rs on >rs-pw ~* &* +@all -config");
    char target[96];
    snprintf(target, sizeof(target), "redis://rs:rs-pw@127.0.0.1:%d", dst->port);
    unsetenv("RINGSYNC_TARGET_PASSWORD");
    struct program_result r;
    run_sync(src, target, NULL, &r);
    assert_exit(&r, 0, "CONFIG denied by ACL");
    static const char *const says[] = {"refused CONFIG GET", "NOPERM", "not checked", NULL};
    assert_warning(&r, says, "CONFIG denied by ACL");
    cr_assert(dbsize(dst->ctx) == 3, "the snapshot was not applied:\n%s", r.err);
    program_result_deinit(&r);
}

Test(dest_check, a_source_refusing_config_skips_the_comparison_with_a_warning)
{
    static const char *const renamed[] = {"--rename-command", "CONFIG", "", NULL};
    struct redis_fixture *src = start_source(renamed);
    static const char *const small[] = {"--proto-max-bulk-len", "1mb", NULL};
    struct redis_fixture *dst = start_dest(small);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 0, "CONFIG renamed on the source");
    static const char *const says[] = {"source", "refused CONFIG GET", "not compared", NULL};
    assert_warning(&r, says, "CONFIG renamed on the source");
    program_result_deinit(&r);
}

/* ---------------------------------------------------------------- loading */

Test(dest_check, a_loading_destination_is_waited_for_then_checked_and_written)
{
    struct redis_fixture *src = start_source(NULL);
    static const char *const dbg[] = {"--enable-debug-command", "yes", NULL};
    struct redis_fixture *dst = start_dest(dbg);
    /* About 2 s of loading: 20000 keys, 100 us each, events served every KB. */
    redis_fixture_exec(dst->ctx, "DEBUG POPULATE 20000 load 100");
    redis_fixture_exec(dst->ctx, "CONFIG SET loading-process-events-interval-bytes 1024");
    redis_fixture_exec(dst->ctx, "CONFIG SET key-load-delay 100");
    redisContext *reloader = redis_fixture_connect(dst);
    cr_assert(redisAppendCommand(reloader, "DEBUG RELOAD") == REDIS_OK);
    int done = 0;
    while (!done)
        cr_assert(redisBufferWrite(reloader, &done) == REDIS_OK);
    redisContext *probe = redis_fixture_connect(dst);
    char v[16] = "";
    for (int i = 0; i < 500 && strcmp(v, "1") != 0; i++) {
        redis_fixture_info(probe, "persistence", "loading", v, sizeof(v));
        usleep(10 * 1000);
    }
    cr_assert(strcmp(v, "1") == 0, "the destination did not start loading");
    redisFree(probe);

    static const char *const flush[] = {"--target-nonempty", "flush", NULL};
    struct program_result r;
    run_sync_to(src, dst, flush, &r);
    assert_exit(&r, 0, "a loading destination");
    static const char *const waits[] = {"answers -LOADING", "waiting", NULL};
    static const char *const ready[] = {"is ready after", NULL};
    char line[2048];
    find_line(&r, waits, line, sizeof(line), "a loading destination");
    find_line(&r, ready, line, sizeof(line), "a loading destination");

    redisReply *rep = NULL;
    cr_assert(redisGetReply(reloader, (void **)&rep) == REDIS_OK && rep != NULL);
    cr_assert(rep->type == REDIS_REPLY_STATUS, "DEBUG RELOAD: %s", rep->str);
    freeReplyObject(rep);
    redisFree(reloader);
    cr_assert(dbsize(dst->ctx) == 3, "the snapshot was not applied after loading:\n%s", r.err);
    program_result_deinit(&r);
}

/* ---------------------------------------------------------------- all good */

Test(dest_check, a_destination_configured_right_passes_without_a_warning)
{
    struct redis_fixture *src = start_source(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    struct program_result r;
    run_sync_to(src, dst, NULL, &r);
    assert_exit(&r, 0, "defaults on both sides");
    static const char *const quiet[] = {"warning",
                                        "proto-max-bulk-len",
                                        "client-query-buffer-limit",
                                        "min-replicas",
                                        "timeout",
                                        "databases",
                                        "replica",
                                        "loading",
                                        "CONFIG GET",
                                        NULL};
    for (size_t i = 0; quiet[i] != NULL; i++)
        cr_assert(strcasestr(r.err, quiet[i]) == NULL, "a clean destination got \"%s\":\n%s",
                  quiet[i], r.err);
    cr_assert(dbsize(dst->ctx) == 3, "the snapshot was not applied:\n%s", r.err);
    program_result_deinit(&r);
}
