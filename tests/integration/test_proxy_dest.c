/* test_proxy_dest.c - a destination behind nutcracker (twemproxy), 2 and 3
 * servers, with and without its hash_tag "{}" (src/PROXY_DESTINATION.md):
 * the proxy detected; a full sync of every type (streams with groups, a big
 * list in native chunks) and a stream of nearly every write command family
 * (write_families.h: commands the proxy refuses go EVAL-wrapped, keys on
 * different servers carried out as the same effects, transactions as their
 * commands) leave the union of the servers equal to a native replica of the
 * source key by key, every key on the server the proxy routes it to; what a
 * proxy cannot run stops the job naming the command and its offset; the
 * start refuses what a proxy cannot do.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

#include "dataset_compare.h"
#include "fill_sample.h"
#include "proxy_fixture.h"
#include "redis_fixture.h"
#include "sync_watch.h"
#include "write_families.h"

#define POPULATE_KEYS 20000
#define BIG_LIST_N    100000
#define SET_RUN_KEYS  3000

TestSuite(proxy_dest, .fini = redis_fixture_stop_all, .timeout = 180);

static const char *const source_args[] = {"--enable-debug-command", "yes",
                                          "--repl-diskless-sync-delay", "0", NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};
static const char *const backlog_args[] = {"--enable-debug-command",
                                           "yes",
                                           "--repl-diskless-sync-delay",
                                           "0",
                                           "--repl-backlog-size",
                                           "64mb",
                                           NULL};

static struct redis_fixture *start_with(const char *const *args)
{
    struct redis_fixture_opts o = {.extra_args = args};
    return redis_fixture_start(&o);
}

/* One key of every type, a stream with groups and a pending entry among
 * them, and a list big enough to go in native chunks. */
static void every_type_on(redisContext *c)
{
    static const char *const cmds[] = {
        "SET t:str hello",
        "SET t:ttl:str v PXAT 4102444800123",
        "RPUSH t:list a b c 1 2 3",
        "SADD t:set a b c x y z",
        "SADD t:intset 1 2 3 100000",
        "ZADD t:zset 1 a 2.5 b -inf c 1e300 d",
        "EXPIREAT t:zset 4102444800",
        "HSET t:hash f1 v1 f2 v2 f3 3",
        "XADD t:stream 1-1 f v",
        "XADD t:stream 1-2 f w g x",
        "XDEL t:stream 1-2",
        "XGROUP CREATE t:stream g 0",
        "XCLAIM t:stream g c1 0 1-1 TIME 1700000000000 RETRYCOUNT 2 FORCE",
        "PFADD t:hll a b c d",
        "SETBIT t:bits 100 1",
    };
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 1000);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        redis_pipeline_append(&p, cmds[i]);
    struct fill_rng rng = {.s = 11};
    fill_send_many(&p, "RPUSH", "t:biglist", BIG_LIST_N, 250, fill_gen_element, &rng);
    redis_pipeline_flush(&p);
}

/* Commands whose keys the proxy routes by the first alone and that have no
 * form across its servers: only sent when the proxy hashes {tags}. */
static bool needs_one_server(const char *line)
{
    static const char *const names[] = {
        "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "ZUNIONSTORE",    "ZINTERSTORE", "ZDIFFSTORE",
        "ZRANGESTORE", "BITOP",       "PFMERGE",    "GEOSEARCHSTORE", "SORT"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);
        if (strncasecmp(line, names[i], n) == 0 && line[n] == ' ')
            return true;
    }
    return false;
}

/* The stream load: every family (all of them when tagged), plain SETs the
 * router gathers into MSETs with what they must not jump over, and writes
 * over the snapshot's keys. */
static void load_stream(redisContext *c, bool tagged)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 1000);
    for (size_t i = 0; i < write_families_one_tag_n; i++)
        if (tagged || !needs_one_server(write_families_one_tag[i]))
            redis_pipeline_append(&p, write_families_one_tag[i]);
    if (tagged) { /* the *STORE family across tags: temporaries by the key written */
        static const char *const across[] = {
            "SADD {x1}s a b c",
            "SADD {x2}s c d",
            "SUNIONSTORE {x3}u {x1}s {x2}s",
            "SINTERSTORE plain:inter {x1}s {x2}s",
            "ZADD {x1}z 1 a 2 b",
            "ZADD {x2}z 3 b 4 c",
            "ZUNIONSTORE {x4}zu 2 {x1}z {x2}z WEIGHTS 1 3",
            "ZRANGESTORE {x5}zr {x2}z 0 -1",
            "SETBIT {x1}bits 3 1",
            "SETBIT {x2}bits 9 1",
            "BITOP OR {x6}bor {x1}bits {x2}bits",
            "PFADD {x1}hll a b",
            "PFADD {x2}hll c",
            "PFMERGE {x7}hll {x1}hll {x2}hll",
            "RPUSH {x1}list 3 1 2",
            "SORT {x1}list STORE {x8}sorted",
        };
        for (size_t i = 0; i < sizeof(across) / sizeof(across[0]); i++)
            redis_pipeline_append(&p, across[i]);
    }
    for (int i = 0; i < SET_RUN_KEYS; i++) {
        redis_pipeline_append(&p, "SET run:%d %d", i * 7919, i);
        if (i % 3 == 0)
            redis_pipeline_append(&p, "INCR run:%d", i * 7919);
        if (i % 7 == 0)
            redis_pipeline_append(&p, "DEL run:%d run:%d", (i - 1) * 7919, i * 7919 + 1);
        if (i % 13 == 0)
            redis_pipeline_append(&p, "APPEND run:%d z", i * 7919);
    }
    for (int i = 0; i < 2000; i++) {
        redis_pipeline_append(&p, "SET key:%d stream:%d", (i * 31) % POPULATE_KEYS, i);
        redis_pipeline_append(&p, "DEL key:%d", (i * 37 + 11) % POPULATE_KEYS);
    }
    redis_pipeline_flush(&p);
}

static void through_the_proxy_matches_a_native_replica(int servers, bool tagged,
                                                       const char *workers,
                                                       const char *const *extra)
{
    struct redis_fixture *src = start_with(source_args);
    struct redis_fixture *rep = start_with(debug_args);
    struct proxy_fixture_opts po = {.servers = servers, .hash_tag = tagged ? "{}" : NULL};
    struct proxy_fixture *pf = proxy_fixture_start(&po);
    redis_fixture_exec(src->ctx, "DEBUG POPULATE %d key 64", POPULATE_KEYS);
    every_type_on(src->ctx);
    redis_fixture_replicate(rep, src, 30000);

    char what[96];
    snprintf(what, sizeof(what), "%d servers%s, --workers %s", servers,
             tagged ? " with hash_tag {}" : "", workers);
    struct program *p = ringsync_start_ports(src->port, pf->port, workers, false, extra);
    wait_snapshot_applied(p);
    cr_assert(stderr_has(p, "is a proxy"), "%s: the proxy was not named at the start", what);
    load_stream(src->ctx, tagged);
    wait_caught_up(src, rep->port, p, what);
    assert_proxy_equals(pf, rep, "native replica", what);
    struct program_result r;
    ringsync_stop_result(p, what, &r);
    cr_assert(strstr(r.err, "went wrapped in EVAL") != NULL,
              "%s: the report does not count the commands sent wrapped:\n%s", what, r.err);
    cr_assert(strstr(r.err, "transactions went through the proxy as their commands") != NULL,
              "%s: the report does not count the transactions sent unwrapped:\n%s", what, r.err);
    cr_assert(strstr(r.err, "carried out as the same effects") != NULL,
              "%s: nothing was carried out across servers:\n%s", what, r.err);
    program_result_deinit(&r);
    assert_proxy_equals(pf, rep, "native replica", "after the stop");
    proxy_fixture_stop(pf);
}

Test(proxy_dest, two_servers_with_a_hash_tag_match_a_native_replica_key_by_key)
{
    const char *const extra[] = {
        "--target-nonempty", "keep", "--proxy-hash-tag", "{}", "--proxy-connections", "2", NULL};
    through_the_proxy_matches_a_native_replica(2, true, "2", extra);
}

Test(proxy_dest, three_servers_without_a_tag_match_a_native_replica_key_by_key)
{
    const char *const extra[] = {"--target-nonempty", "keep", "--target-mode", "proxy", NULL};
    through_the_proxy_matches_a_native_replica(3, false, "1", extra);
}

/* ringsync's result once it ends by itself (within STOP_TIMEOUT_MS). */
static void wait_end(struct program *p, struct program_result *r)
{
    long long deadline = fixture_now_ms() + STOP_TIMEOUT_MS;
    while (!program_has_exited(p) && fixture_now_ms() < deadline)
        sleep_ms(20);
    program_finish(p, 0, 1, r);
}

Test(proxy_dest, a_store_across_servers_stops_the_job_naming_it_and_its_offset)
{
    struct redis_fixture *src = start_with(source_args);
    struct proxy_fixture_opts po = {.servers = 2};
    struct proxy_fixture *pf = proxy_fixture_start(&po);
    const char *const extra[] = {"--target-nonempty", "keep", NULL};
    struct program *p = ringsync_start_ports(src->port, pf->port, "1", true, extra);
    wait_snapshot_applied(p);
    redis_fixture_exec(src->ctx, "SADD {s}1 a b");
    redis_fixture_exec(src->ctx, "SADD {s}2 b c");
    redis_fixture_exec(src->ctx, "SUNIONSTORE {s}u {s}1 {s}2");
    struct program_result r;
    wait_end(p, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 1, "ringsync ended with %s, expected exit 1:\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err);
    cr_assert(strstr(r.err, "proxy destination cannot run SUNIONSTORE at source offset") != NULL,
              "the stop does not name the command and its offset:\n%s", r.err);
    program_result_deinit(&r);
    /* the commands before it were applied */
    redisContext *c = proxy_fixture_connect(pf);
    redisReply *x = redis_fixture_command(c, "SCARD {s}2");
    cr_assert(x->type == REDIS_REPLY_INTEGER && x->integer == 2, "SCARD {s}2 through the proxy");
    freeReplyObject(x);
    redisFree(c);
    proxy_fixture_stop(pf);
}

/* ringsync with extra against the proxy ends by itself with `code`, saying
 * `says`. */
static void start_ends_with(const struct redis_fixture *src, const struct proxy_fixture *pf,
                            const char *const *extra, int code, const char *says)
{
    struct program *p = ringsync_start_ports(src->port, pf->port, "1", true, extra);
    struct program_result r;
    wait_end(p, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == code, "ringsync ended with %s, expected exit %d:\n%s",
              program_result_describe(&r, st, sizeof(st)), code, r.err);
    cr_assert(strstr(r.err, says) != NULL, "expected \"%s\" in:\n%s", says, r.err);
    program_result_deinit(&r);
}

Test(proxy_dest, the_start_refuses_what_a_proxy_cannot_do_and_a_tag_it_does_not_hash)
{
    struct redis_fixture *src = start_with(source_args);
    struct proxy_fixture_opts po = {.servers = 2};
    struct proxy_fixture *pf = proxy_fixture_start(&po);
    start_ends_with(src, pf, NULL, 2, "pass --target-nonempty keep");
    const char *const flush[] = {"--target-nonempty", "flush", NULL};
    start_ends_with(src, pf, flush, 2, "runs no FLUSHALL");
    const char *const cp[] = {"--target-nonempty", "keep", "--checkpoint", "target", NULL};
    start_ends_with(src, pf, cp, 2, "--checkpoint target cannot be kept through the proxy");
    const char *const tag[] = {"--target-nonempty", "keep", "--proxy-hash-tag", "{}", NULL};
    start_ends_with(src, pf, tag, 1, "its hash_tag is not \"{}\"");
    proxy_fixture_stop(pf);
}

/* Absolute writes only (SET, HSET, DEL, SADD, PEXPIREAT): what a resume from
 * a file checkpoint applies again leaves the same data. */
static void absolute_load(redisContext *c, int round, int n)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 1000);
    for (int i = 0; i < n; i++) {
        unsigned k = (unsigned)(i * 2654435761u + (unsigned)round * 977u) % 50000u;
        redis_pipeline_append(&p, "SET a:%u r%d:%d", k, round, i);
        if (i % 5 == 0)
            redis_pipeline_append(&p, "HSET h:%u f%d %d", k % 500, i % 20, round);
        if (i % 7 == 0)
            redis_pipeline_append(&p, "DEL a:%u", (k * 31) % 50000u);
        if (i % 11 == 0)
            redis_pipeline_append(&p, "SADD s:%u m%d", k % 300, i);
        if (i % 13 == 0)
            redis_pipeline_append(&p, "PEXPIREAT a:%u 4102444800123", k);
    }
    redis_pipeline_flush(&p);
}

/* The file's W= value; -1 when absent. */
static long long file_w(const char *path)
{
    char *text = fixture_read_file(path, NULL);
    if (text == NULL)
        return -1;
    const char *w = strstr(text, " W=");
    long long v = w ? strtoll(w + 3, NULL, 10) : -1;
    free(text);
    return v;
}

Test(proxy_dest, file_checkpoints_resume_after_a_clean_stop_and_after_a_kill)
{
    struct redis_fixture *src = start_with(backlog_args);
    struct redis_fixture *rep = start_with(debug_args);
    struct proxy_fixture_opts po = {.servers = 2};
    struct proxy_fixture *pf = proxy_fixture_start(&po);
    absolute_load(src->ctx, 0, 5000);
    redis_fixture_replicate(rep, src, 30000);
    char path[256];
    redis_fixture_path(src, "ringsync.checkpoint", path, sizeof(path));
    char opt[300];
    snprintf(opt, sizeof(opt), "file:%s", path);
    const char *const extra[] = {"--target-nonempty", "keep", "--checkpoint", opt, NULL};

    struct program *p = ringsync_start_ports(src->port, pf->port, "2", false, extra);
    wait_snapshot_applied(p);
    absolute_load(src->ctx, 1, 20000);
    wait_caught_up(src, rep->port, p, "first run");
    ringsync_stop(p, "first run: a clean stop");
    struct repl_view v;
    repl_view_take(src->ctx, rep->port, &v);
    cr_assert_eq(file_w(path), v.master_offset,
                 "after a clean stop the file's W is everything received (the source's offset)");
    assert_proxy_equals(pf, rep, "native replica", "after a clean stop");

    absolute_load(src->ctx, 2, 20000); /* while stopped */
    p = ringsync_start_ports(src->port, pf->port, "1", false, extra);
    wait_caught_up(src, rep->port, p, "after the clean stop");
    cr_assert(stderr_has(p, "resumed with a partial resync") && !stderr_has(p, "snapshot applied"),
              "the second run did not resume from the file: %s", program_stderr(p, NULL));
    assert_proxy_equals(pf, rep, "native replica", "resumed after a clean stop");

    long long before = file_w(path);
    absolute_load(src->ctx, 3, 60000);
    struct program_result killed;
    program_finish(p, SIGKILL, 1000, &killed); /* in the middle, or soon after */
    program_result_deinit(&killed);
    absolute_load(src->ctx, 4, 5000);
    cr_assert_geq(file_w(path), before, "W never goes back");
    p = ringsync_start_ports(src->port, pf->port, "2", false, extra);
    wait_caught_up(src, rep->port, p, "after a kill");
    cr_assert(stderr_has(p, "resumed with a partial resync"), "no resume after the kill: %s",
              program_stderr(p, NULL));
    assert_proxy_equals(pf, rep, "native replica", "resumed after a kill");
    ringsync_stop(p, "last run");
    proxy_fixture_stop(pf);
}
