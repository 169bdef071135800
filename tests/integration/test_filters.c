/* test_filters.c - `ringsync sync` with filters (issue 16, "Filters"), with
 * real redis-server processes: a source and a target, ringsync between them
 * with
 *
 *     --filter-key-prefix a: --block-key-prefix a:secret: --filter-db 0
 *     --block-command FLUSHALL
 *
 * The oracle is the source itself, filtered by this file's own reading of
 * that rule (expected_kept): the target must hold exactly the source's keys
 * the rule keeps, database by database, each with the source's DEBUG
 * DIGEST-VALUE; ringsync's own checkpoint keys aside, and a checkpoint-like
 * key of another job ("ringsync:cp:elsewhere:w", in db 1) kept as filters
 * never touch those.
 *
 * The main test (two workers, --cross-slot skip):
 *   1. a source with keys of several prefixes (strings, a list, a hash, a
 *      set, a sorted set) in dbs 0, 1 and 2; the full sync; the target holds
 *      exactly the filtered source;
 *   2. a stream load, each command's fate known: kept as it came, dropped,
 *      sent with its kept keys only (MSET, DEL, MSETNX, a DEL inside MULTI),
 *      split by the filter and skipped (RENAME, MOVE, a RENAME inside MULTI:
 *      their kept keys stay on the target as they were), a transaction
 *      whose every command is dropped, FLUSHDB and SWAPDB of filtered dbs;
 *      ringsync catches up and the target holds the filtered source again;
 *   3. FLUSHALL (blocked) and a last dropped SET: ringsync's acknowledged
 *      offset still reaches the source's master_repl_offset, and the target
 *      keeps its keys;
 *   4. the report's counts of filtered keys and commands are the load's;
 *   5. the comparison proves it can fail: a changed kept key and an extra
 *      filtered one on the target are both seen.
 * A second test: a RENAME from a kept key to a dropped one stops the job by
 * default (exit 1), naming RENAME, the filter and its source offsets. A
 * third: bad filter values are usage errors (exit 2) naming the option.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cluster_fixture.h"
#include "proxy_fixture.h"
#include "redis_fixture.h"
#include "sync_watch.h"

#define DBS          16
#define A_KEYS       300 /* a:0 .. a:299 in db 0 */
#define SECRET_KEYS  100 /* a:secret:0 .. */
#define B_KEYS       200 /* b:0 .. */
#define EXIT_WAIT_MS 20000

TestSuite(filters, .fini = redis_fixture_stop_all, .timeout = 60);

static const char *const source_args[] = {"--enable-debug-command", "yes",
                                          "--repl-diskless-sync-delay", "0", NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

static const char *const filter_opts[] = {
    "--filter-key-prefix", "a:",       "--block-key-prefix", "a:secret:", "--filter-db", "0",
    "--block-command",     "FLUSHALL", "--cross-slot",       "skip",      NULL};

/* ----------------------------------------------------------- the oracle */

/* The filters above, as this test reads key_filter.h's rule. */
static bool expected_kept(int db, const char *key)
{
    if (strncmp(key, "ringsync:cp:", 12) == 0)
        return true; /* checkpoint keys are never filtered */
    return db == 0 && strncmp(key, "a:", 2) == 0 && strncmp(key, "a:secret:", 9) != 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool listed(const char *const *list, const char *key)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}

/* The keys of db on c (KEYS *: a few hundred), sorted; those leave() names
 * left out. The caller frees the reply (*keep) and the array. */
static size_t db_keys(redisContext *c, int db, bool (*leave)(int, const char *, const void *),
                      const void *ctx, redisReply **keep, char ***out)
{
    redis_fixture_exec(c, "SELECT %d", db);
    redisReply *r = redis_fixture_command(c, "KEYS *");
    cr_assert(r->type == REDIS_REPLY_ARRAY);
    char **keys = calloc(r->elements + 1, sizeof(*keys));
    cr_assert(keys != NULL);
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (!leave(db, r->element[i]->str, ctx))
            keys[n++] = r->element[i]->str;
    qsort(keys, n, sizeof(*keys), by_name);
    *keep = r;
    *out = keys;
    return n;
}

struct leave_ctx {
    const char *const *ignore; /* keys a skipped command left as they were */
    char own_cp[64];           /* this job's checkpoint keys: "ringsync:cp:127.0.0.1:<port>:" */
};

static bool leave_source(int db, const char *key, const void *ctx)
{
    const struct leave_ctx *l = ctx;
    return !expected_kept(db, key) || listed(l->ignore, key);
}

static bool leave_target(int db, const char *key, const void *ctx)
{
    const struct leave_ctx *l = ctx;
    (void)db;
    return strncmp(key, l->own_cp, strlen(l->own_cp)) == 0 || listed(l->ignore, key);
}

/* "db D: 'key' what" as a line of report, never past cap. */
static void put_line(char *report, size_t cap, size_t *used, int db, const char *key,
                     const char *what)
{
    if (*used + 1 >= cap)
        return;
    int w = snprintf(report + *used, cap - *used, "db %d: '%s' %s\n", db, key, what);
    if (w > 0)
        *used += (size_t)w < cap - *used ? (size_t)w : cap - *used - 1;
}

/* How many keys differ between the target and the source filtered by
 * expected_kept, in every db: missing, unexpected, or with another DEBUG
 * DIGEST-VALUE; ignore's keys (NULL-terminated) left out on both sides. The
 * first differences are named in report. */
static size_t filtered_differences(struct redis_fixture *src, struct redis_fixture *dst,
                                   const char *const *ignore, char *report, size_t cap)
{
    struct leave_ctx l = {.ignore = ignore};
    snprintf(l.own_cp, sizeof(l.own_cp), "ringsync:cp:127.0.0.1:%d:", src->port);
    size_t differences = 0, used = 0;
    report[0] = '\0';
    for (int db = 0; db < DBS; db++) {
        redisReply *rs, *rd;
        char **s, **d;
        size_t ns = db_keys(src->ctx, db, leave_source, &l, &rs, &s);
        size_t nd = db_keys(dst->ctx, db, leave_target, &l, &rd, &d);
        size_t i = 0, j = 0;
        while (i < ns || j < nd) {
            int c = i == ns ? 1 : j == nd ? -1 : strcmp(s[i], d[j]);
            if (c < 0) {
                differences++;
                put_line(report, cap, &used, db, s[i++], "missing on the target");
            } else if (c > 0) {
                differences++;
                put_line(report, cap, &used, db, d[j++], "on the target, filtered out");
            } else {
                redisReply *a = redis_fixture_command(src->ctx, "DEBUG DIGEST-VALUE %s", s[i]);
                redisReply *b = redis_fixture_command(dst->ctx, "DEBUG DIGEST-VALUE %s", d[j]);
                cr_assert(a->type == REDIS_REPLY_ARRAY && b->type == REDIS_REPLY_ARRAY &&
                          a->elements == 1 && b->elements == 1);
                if (strcmp(a->element[0]->str, b->element[0]->str) != 0) {
                    differences++;
                    put_line(report, cap, &used, db, s[i], "has another value on the target");
                }
                freeReplyObject(a);
                freeReplyObject(b);
                i++;
                j++;
            }
        }
        free(s);
        free(d);
        freeReplyObject(rs);
        freeReplyObject(rd);
    }
    redis_fixture_exec(src->ctx, "SELECT 0");
    redis_fixture_exec(dst->ctx, "SELECT 0");
    return differences;
}

static void assert_target_is_filtered_source(struct redis_fixture *src, struct redis_fixture *dst,
                                             const char *const *ignore, const char *what)
{
    char report[2048];
    size_t n = filtered_differences(src, dst, ignore, report, sizeof(report));
    cr_assert(n == 0, "%s: %zu keys of the target differ from the filtered source:\n%s", what, n,
              report);
}

/* Keys of every db of c that expected_kept drops. */
static long long filtered_out_keys(redisContext *c)
{
    long long n = 0;
    for (int db = 0; db < DBS; db++) {
        redis_fixture_exec(c, "SELECT %d", db);
        redisReply *r = redis_fixture_command(c, "KEYS *");
        for (size_t i = 0; i < r->elements; i++)
            n += !expected_kept(db, r->element[i]->str);
        freeReplyObject(r);
    }
    redis_fixture_exec(c, "SELECT 0");
    return n;
}

static long long dbsize(redisContext *c)
{
    redisReply *r = redis_fixture_command(c, "DBSIZE");
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static bool exists(redisContext *c, const char *key)
{
    redisReply *r = redis_fixture_command(c, "EXISTS %s", key);
    bool e = r->integer == 1;
    freeReplyObject(r);
    return e;
}

/* ----------------------------------------------------------- the source */

static void fill_source(redisContext *c)
{
    redis_fixture_exec(c, "DEBUG POPULATE %d a 16", A_KEYS);
    redis_fixture_exec(c, "DEBUG POPULATE %d a:secret 16", SECRET_KEYS);
    redis_fixture_exec(c, "DEBUG POPULATE %d b 16", B_KEYS);
    redis_fixture_exec(c, "RPUSH a:list 1 2 3");
    redis_fixture_exec(c, "HSET a:hash f1 v1 f2 v2");
    redis_fixture_exec(c, "SADD a:secret:set m1 m2");
    redis_fixture_exec(c, "ZADD b:zset 1 x 2 y");
    redis_fixture_exec(c, "SELECT 1");
    redis_fixture_exec(c, "DEBUG POPULATE 100 a:db1 16");
    redis_fixture_exec(c, "DEBUG POPULATE 50 b 16");
    redis_fixture_exec(c, "SET ringsync:cp:elsewhere:w another-jobs-record");
    redis_fixture_exec(c, "SELECT 2");
    redis_fixture_exec(c, "DEBUG POPULATE 20 c 16");
    redis_fixture_exec(c, "SELECT 0");
}

/* What the load below makes the filters do, counted. */
#define LOAD_DROPPED 11 /* commands dropped whole */
#define LOAD_TRIMMED 4  /* sent with their kept keys only */
#define LOAD_SKIPPED 3  /* split by the filters, no such form: skipped (--cross-slot skip) */

/* Keys the skipped commands leave on the target as they were, which the
 * source changed. */
static const char *const skipped_keys[] = {"a:4", "a:6", "a:7", NULL};

static void stream_load(redisContext *c)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 100);
    redis_pipeline_append(&p, "SET a:new 1");                            /* kept */
    redis_pipeline_append(&p, "SET b:new 1");                            /* dropped 1 */
    redis_pipeline_append(&p, "SET a:secret:new 1");                     /* dropped 2 */
    redis_pipeline_append(&p, "MSET a:m1 1 b:m1 2 a:secret:m 3 a:m2 4"); /* trimmed 1 */
    redis_pipeline_append(&p, "DEL a:0 b:0 a:secret:0");                 /* trimmed 2 */
    redis_pipeline_append(&p, "DEL b:1 b:2");                            /* dropped 3 */
    redis_pipeline_append(&p, "MSETNX a:nx1 1 b:nx1 2");                 /* trimmed 3 */
    redis_pipeline_append(&p, "UNLINK a:1 a:2");                         /* kept */
    redis_pipeline_append(&p, "INCR a:cnt");                             /* kept */
    redis_pipeline_append(&p, "LPUSH a:list x");                         /* kept */
    redis_pipeline_append(&p, "RENAME a:3 a:renamed");                   /* kept */
    redis_pipeline_append(&p, "RENAME b:3 b:renamed");                   /* dropped 4 */
    redis_pipeline_append(&p, "RENAME a:4 b:moved");                     /* skipped 1 */
    redis_pipeline_append(&p, "MULTI");
    redis_pipeline_append(&p, "SET a:tx 1");  /* kept */
    redis_pipeline_append(&p, "SET b:tx 1");  /* dropped 5 */
    redis_pipeline_append(&p, "DEL a:5 b:5"); /* trimmed 4 */
    redis_pipeline_append(&p, "EXEC");
    redis_pipeline_append(&p, "MULTI");       /* every command dropped: the whole of it */
    redis_pipeline_append(&p, "SET b:tx2 1"); /* dropped 6 */
    redis_pipeline_append(&p, "INCR b:cnt");  /* dropped 7 */
    redis_pipeline_append(&p, "EXEC");
    redis_pipeline_append(&p, "SELECT 1");
    redis_pipeline_append(&p, "SET a:db1:new 1"); /* dropped 8: db 1 */
    redis_pipeline_append(&p, "SELECT 2");
    redis_pipeline_append(&p, "FLUSHDB");    /* dropped 9 */
    redis_pipeline_append(&p, "SWAPDB 2 3"); /* dropped 10: neither db is kept */
    redis_pipeline_append(&p, "SELECT 0");
    redis_pipeline_append(&p, "MOVE a:6 1"); /* skipped 2: kept in db 0, not in db 1 */
    redis_pipeline_append(&p, "MULTI");
    redis_pipeline_append(&p, "RENAME a:7 b:7"); /* skipped 3, inside a transaction */
    redis_pipeline_append(&p, "SET a:tx3 1");    /* kept */
    redis_pipeline_append(&p, "DEL b:8");        /* dropped 11 */
    redis_pipeline_append(&p, "EXEC");
    redis_pipeline_flush(&p);
}

/* "filters (...): K snapshot keys and C stream commands left out, T stream
 * commands sent with their kept keys only", and the skipped line. */
static void assert_report(const char *err, long long keys, long long cmds, long long trimmed,
                          long long skipped)
{
    const char *line = strstr(err, "ringsync: filters (");
    const char *counts = line ? strstr(line, "): ") : NULL;
    long long k = -1, c = -1, t = -1, s = -1;
    cr_assert(counts != NULL &&
                  sscanf(counts,
                         "): %lld snapshot keys and %lld stream commands left out, %lld stream "
                         "commands sent",
                         &k, &c, &t) == 3,
              "no filters line in the report:\n%s", err);
    const char *sl = strstr(err, "stream commands whose keys the filters split");
    cr_assert(sl != NULL, "no line for the commands skipped:\n%s", err);
    while (sl > err && sl[-1] != '\n')
        sl--;
    cr_assert(sscanf(sl, "ringsync: %lld stream commands whose", &s) == 1, "%s", sl);
    cr_expect(k == keys && c == cmds && t == trimmed && s == skipped,
              "the report counts %lld snapshot keys, %lld commands left out, %lld trimmed, %lld "
              "skipped; expected %lld, %lld, %lld, %lld:\n%s",
              k, c, t, s, keys, cmds, trimmed, skipped, err);
}

/* ------------------------------------------------------------- the tests */

Test(filters, snapshot_and_stream_keep_exactly_the_filtered_keys)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    fill_source(src->ctx);
    long long snapshot_dropped = filtered_out_keys(src->ctx);
    cr_assert(snapshot_dropped > 400, "the source has %lld keys to filter", snapshot_dropped);

    struct program *p = ringsync_start_with(src, dst, "2", filter_opts);
    wait_snapshot_applied(p);
    wait_caught_up(src, -1, p, "after the snapshot");
    assert_target_is_filtered_source(src, dst, NULL, "after the snapshot");
    cr_assert(exists(dst->ctx, "a:0") && !exists(dst->ctx, "a:secret:0") &&
              !exists(dst->ctx, "b:0"));

    stream_load(src->ctx);
    wait_caught_up(src, -1, p, "after the stream load");
    assert_target_is_filtered_source(src, dst, skipped_keys, "after the stream load");
    for (size_t i = 0; skipped_keys[i] != NULL; i++)
        cr_expect(exists(dst->ctx, skipped_keys[i]),
                  "'%s' left the target, though the command that changed it was skipped",
                  skipped_keys[i]);

    /* the comparison can fail */
    char report[2048];
    redis_fixture_exec(dst->ctx, "SET a:9 changed");
    redis_fixture_exec(dst->ctx, "SET b:9 filtered");
    size_t n = filtered_differences(src, dst, skipped_keys, report, sizeof(report));
    cr_expect(n == 2 && strstr(report, "'a:9' has another value") &&
                  strstr(report, "'b:9' on the target"),
              "the comparison did not see a changed key and a filtered one (%zu):\n%s", n, report);

    /* blocked, then dropped: the last commands are all filtered */
    long long before = dbsize(dst->ctx);
    redis_fixture_exec(src->ctx, "FLUSHALL");
    redis_fixture_exec(src->ctx, "SET b:last 1");
    wait_caught_up(src, -1, p, "after FLUSHALL and a SET, both filtered");
    cr_expect_eq(dbsize(dst->ctx), before, "the target lost keys to a blocked FLUSHALL");

    struct program_result r;
    ringsync_stop_result(p, "filters", &r);
    /* FLUSHALL and SET b:last: two more dropped */
    assert_report(r.err, snapshot_dropped, LOAD_DROPPED + 2, LOAD_TRIMMED, LOAD_SKIPPED);
    program_result_deinit(&r);
}

Test(filters, a_rename_split_by_the_filter_stops_the_job_naming_it)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    redis_fixture_exec(src->ctx, "SET a:1 v");
    const char *const opts[] = {"--filter-key-prefix", "a:", NULL};
    struct program *p = ringsync_start_with(src, dst, "1", opts);
    wait_snapshot_applied(p);
    wait_caught_up(src, -1, p, "after the snapshot");
    long long before = info_number(src->ctx, "replication", "master_repl_offset");
    redis_fixture_exec(src->ctx, "RENAME a:1 b:1");
    long long end = info_number(src->ctx, "replication", "master_repl_offset");
    struct program_result r;
    program_finish(p, 0, EXIT_WAIT_MS, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 1, "ringsync ended with %s, not exit 1:\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err);
    long long from = -1, to = -1;
    const char *at = strstr(r.err, "RENAME at source offset ");
    cr_assert(at != NULL && sscanf(at, "RENAME at source offset %lld..%lld", &from, &to) == 2,
              "the failure does not name RENAME and its offsets:\n%s", r.err);
    /* its own bytes: *3 $6 RENAME $3 a:1 $3 b:1 */
    cr_expect(to - from == 34 && from >= before && to <= end,
              "offsets %lld..%lld, not the RENAME's own 34 bytes between %lld and %lld:\n%s", from,
              to, before, end, r.err);
    cr_expect(strstr(r.err, "--filter-key-prefix 'a:'") && strstr(r.err, "'a:1'") &&
                  strstr(r.err, "'b:1'") && strstr(r.err, "--cross-slot skip"),
              "the failure does not name the filter, the keys and the way out:\n%s", r.err);
    cr_expect(exists(dst->ctx, "a:1"), "the RENAME was applied in part");
    program_result_deinit(&r);
}

/* Bad filter values are usage errors (exit 2) naming the option, before
 * any connection. */
Test(filters, bad_filter_values_are_usage_errors_naming_the_option)
{
    static const char *const cases[][3] = {
        {"--filter-db", "x", "--filter-db"},
        {"--filter-db", "256", "--filter-db"},
        {"--filter-key-prefix", "", "--filter-key-prefix"},
        {"--block-command", "MULTI", "--block-command"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[] = {fixture_env("RS_RINGSYNC"),
                              "sync",
                              "--source",
                              "redis://127.0.0.1:1",
                              "--target",
                              "redis://127.0.0.1:1",
                              cases[i][0],
                              cases[i][1],
                              NULL};
        struct program_result r;
        cr_assert_eq(program_run(argv, NULL, NULL, EXIT_WAIT_MS, &r), 0);
        cr_expect(r.exited && r.exit_code == 2 && strstr(r.err, cases[i][2]) != NULL,
                  "%s '%s': exit %d, stderr:\n%s", cases[i][0], cases[i][1], r.exit_code, r.err);
        program_result_deinit(&r);
    }
}

/* Whether server c holds key: EXISTS, where a cluster node answers MOVED
 * for a key of another's slot (it holds none of those). */
static bool holds(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "EXISTS %s", key);
    cr_assert(r != NULL, "EXISTS %s: %s", key, c->errstr);
    bool has = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    cr_assert(r->type == REDIS_REPLY_INTEGER ||
                  (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED", 5) == 0),
              "EXISTS %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    return has;
}

/* The target is n servers sharing one key space (a cluster's masters, or
 * the servers behind a proxy): every key they hold is one the rule keeps,
 * and every key the rule keeps is on exactly one of them with the source's
 * DEBUG DIGEST-VALUE (the skipped commands' keys aside; those it counts as
 * left over). */
static void assert_servers_are_filtered_source(redisContext **servers, int n, redisContext *src,
                                               const char *what)
{
    redis_fixture_exec(src, "SELECT 0");
    redisReply *keys = redis_fixture_command(src, "KEYS *");
    long long kept = 0, held = 0, extra = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        if (!expected_kept(0, k) || listed(skipped_keys, k))
            continue;
        kept++;
        int where = -1;
        for (int s = 0; s < n; s++)
            if (holds(servers[s], k)) {
                cr_assert(where < 0, "%s: kept key '%s' on two servers", what, k);
                where = s;
            }
        cr_assert(where >= 0, "%s: kept key '%s' is on no server", what, k);
        redisReply *a = redis_fixture_command(src, "DEBUG DIGEST-VALUE %s", k);
        redisReply *b = redis_fixture_command(servers[where], "DEBUG DIGEST-VALUE %s", k);
        cr_assert(a->type == REDIS_REPLY_ARRAY && b->type == REDIS_REPLY_ARRAY &&
                      strcmp(a->element[0]->str, b->element[0]->str) == 0,
                  "%s: kept key '%s' differs on server %d", what, k, where);
        freeReplyObject(a);
        freeReplyObject(b);
    }
    freeReplyObject(keys);
    for (int s = 0; s < n; s++) {
        redisReply *r = redis_fixture_command(servers[s], "KEYS *");
        for (size_t i = 0; i < r->elements; i++) {
            const char *k = r->element[i]->str;
            cr_assert(expected_kept(0, k), "%s: '%s' on server %d, which the filters drop", what, k,
                      s);
            if (strncmp(k, "ringsync:cp:", 12) != 0) {
                held++;
                extra += listed(skipped_keys, k);
            }
        }
        freeReplyObject(r);
    }
    cr_assert_eq(held, kept + extra,
                 "%s: the servers hold %lld keys, the filtered source %lld (+%lld left by skipped "
                 "commands)",
                 what, held, kept, extra);
}

/* filter_opts, and --db-unmapped skip: the other job's record in db 1
 * passes the filters (records never are filtered) but a cluster or a proxy
 * has no db 1 to take it. */
static void filter_opts_one_db(const char **opts, size_t cap)
{
    size_t n = 0;
    while (filter_opts[n] != NULL && n + 3 < cap) {
        opts[n] = filter_opts[n];
        n++;
    }
    opts[n++] = "--db-unmapped";
    opts[n++] = "skip";
    opts[n] = NULL;
}

/* The snapshot, then the stream load, each checked on the servers (where
 * names the target in messages); then the clean stop. */
static void follow_and_check(struct program *p, struct redis_fixture *src, redisContext **servers,
                             int n, const char *where)
{
    char what[96];
    wait_snapshot_applied(p);
    snprintf(what, sizeof(what), "after the snapshot, %s", where);
    wait_caught_up(src, -1, p, what);
    assert_servers_are_filtered_source(servers, n, src->ctx, what);
    stream_load(src->ctx);
    snprintf(what, sizeof(what), "after the stream load, %s", where);
    wait_caught_up(src, -1, p, what);
    assert_servers_are_filtered_source(servers, n, src->ctx, what);
    ringsync_stop(p, where);
}

Test(filters, into_a_cluster_the_snapshot_and_stream_keep_exactly_the_filtered_keys, .timeout = 90)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct cluster_fixture_opts co = {.masters = 3};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    fill_source(src->ctx);
    const char *opts[16];
    filter_opts_one_db(opts, 16);
    struct program *p = ringsync_start_with(src, c->nodes[0], "2", opts);
    redisContext *masters[3] = {c->nodes[0]->ctx, c->nodes[1]->ctx, c->nodes[2]->ctx};
    follow_and_check(p, src, masters, 3, "into a cluster");
    cluster_fixture_stop(c);
}

/* Through nutcracker in front of two servers: the same. */
Test(filters, through_a_proxy_the_snapshot_and_stream_keep_exactly_the_filtered_keys, .timeout = 90)
{
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct proxy_fixture_opts po = {.servers = 2};
    struct proxy_fixture *pf = proxy_fixture_start(&po);
    fill_source(src->ctx);
    const char *opts[18];
    filter_opts_one_db(opts, 16);
    size_t n = 0;
    while (opts[n] != NULL)
        n++;
    opts[n++] = "--target-nonempty"; /* a proxy shows no key count */
    opts[n++] = "keep";
    opts[n] = NULL;
    struct program *p = ringsync_start_ports(src->port, pf->port, "2", true, opts);
    redisContext *servers[2] = {pf->servers[0]->ctx, pf->servers[1]->ctx};
    follow_and_check(p, src, servers, 2, "through a proxy");
    proxy_fixture_stop(pf);
}
