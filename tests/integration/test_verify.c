/* test_verify.c - `ringsync verify` against real redis-server processes:
 * two data sets written equal, then each kind of difference planted on one
 * side and found, on standalone servers and on a cluster of 3 masters, in
 * both directions; and a writer that changes both sides (the target a
 * little later, as a running sync would) while verify runs: reported equal
 * once the later passes see the sides converge.
 *
 * The oracle is what the test planted: each planted key must be reported
 * with its kind, and nothing else (the counts by kind are exact). Equal sets
 * first, so a verify that reports everything cannot pass; the cluster run
 * with the sides swapped turns a missing key into an extra one.
 *
 *   plant_differences(target):         kind     quick finds it?
 *     DEL   str:17                      missing  yes
 *     SET   planted:extra               extra    yes
 *     big:hash field f:12345 changed    value    no (same length): full only
 *     big:string byte 150000 changed    value    no (same length): full only
 *     PERSIST ttl:3                     ttl      yes
 *     str:5 made a list                 type     yes
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "cluster_fixture.h"
#include "redis_fixture.h"

#define SMALL_KEYS      3000
#define BIG_HASH_FIELDS 20000
#define BIG_LIST_LEN    5000
#define VERIFY_TIMEOUT  60000

TestSuite(verify, .fini = redis_fixture_stop_all, .timeout = 120);

/* ------------------------------------------------------------ writing data */

/* Where commands go: a standalone server's pipeline, or a cluster's owners. */
struct sink {
    struct redis_pipeline p;
    struct cluster_fixture_writer cw;
    bool is_cluster;
};

static void sink_init_server(struct sink *s, redisContext *c)
{
    memset(s, 0, sizeof(*s));
    redis_pipeline_init(&s->p, c, 1000);
}

static void sink_init_cluster(struct sink *s, const struct cluster_fixture *c)
{
    memset(s, 0, sizeof(*s));
    s->is_cluster = true;
    cluster_fixture_writer_init(&s->cw, c);
}

static void sink_argv(struct sink *s, int argc, const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    struct redis_pipeline *p =
        s->is_cluster ? cluster_fixture_writer_for(&s->cw, argv[1], lens[1]) : &s->p;
    redis_pipeline_append_argv(p, argc, argv, lens);
}

static void sink_done(struct sink *s)
{
    if (s->is_cluster)
        cluster_fixture_writer_deinit(&s->cw);
    else
        redis_pipeline_flush(&s->p);
}

/* The data set: strings, TTLs, every collection type, a 20k-field hash and a
 * 5000-element list (read in several chunks). The same on every call. */
static void fill(struct sink *s)
{
    char k[64], v[64], f[64];
    for (int i = 0; i < SMALL_KEYS; i++) {
        snprintf(k, sizeof(k), "str:%d", i);
        snprintf(v, sizeof(v), "value-%d", i * 31);
        sink_argv(s, 3, (const char *[]){"SET", k, v});
    }
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof(k), "ttl:%d", i);
        sink_argv(s, 5, (const char *[]){"SET", k, "x", "EX", "100000"});
    }
    for (int i = 0; i < 50; i++) {
        snprintf(k, sizeof(k), "h:%d", i);
        sink_argv(s, 6, (const char *[]){"HSET", k, "a", "1", "b", "2"});
        snprintf(k, sizeof(k), "s:%d", i);
        sink_argv(s, 5, (const char *[]){"SADD", k, "x", "y", "z"});
        snprintf(k, sizeof(k), "z:%d", i);
        sink_argv(s, 6, (const char *[]){"ZADD", k, "1", "a", "2.5", "b"});
        snprintf(k, sizeof(k), "l:%d", i);
        sink_argv(s, 5, (const char *[]){"RPUSH", k, "1", "2", "3"});
        snprintf(k, sizeof(k), "x:%d", i);
        sink_argv(s, 7, (const char *[]){"XADD", k, "1-1", "f", "v", "g", "w"});
    }
    for (int i = 0; i < BIG_HASH_FIELDS; i++) {
        snprintf(f, sizeof(f), "f:%d", i);
        snprintf(v, sizeof(v), "v:%d", i * 7);
        sink_argv(s, 4, (const char *[]){"HSET", "big:hash", f, v});
    }
    for (int i = 0; i < BIG_LIST_LEN; i++) {
        snprintf(v, sizeof(v), "e:%d", i);
        sink_argv(s, 3, (const char *[]){"RPUSH", "big:list", v});
    }
    static char big[200001];
    for (int i = 0; i < 200000; i++)
        big[i] = (char)('a' + i % 23);
    sink_argv(s, 3, (const char *[]){"SET", "big:string", big});
    for (int i = 1; i <= 3000; i++) {
        snprintf(k, sizeof(k), "%d-1", i);
        snprintf(v, sizeof(v), "v%d", i);
        sink_argv(s, 7, (const char *[]){"XADD", "big:stream", k, "f", v, "g", "w"});
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(v, sizeof(v), "m:%d", i);
        sink_argv(s, 3, (const char *[]){"SADD", "big:set", v});
        snprintf(f, sizeof(f), "%d.5", i);
        sink_argv(s, 4, (const char *[]){"ZADD", "big:zset", f, v});
    }
}

static void fill_source(struct sink *s)
{
    fill(s);
    sink_done(s);
}

/* The target: the same data, and a sync job's checkpoint record, which is
 * never reported. */
static void fill_target(struct sink *s)
{
    fill(s);
    sink_argv(s, 3, (const char *[]){"SET", "ringsync:cp:job:w", "x"});
    sink_done(s);
}

/* The five differences of the table at the top, written on one side. */
static void plant_differences(struct sink *s)
{
    sink_argv(s, 2, (const char *[]){"DEL", "str:17"});
    sink_argv(s, 3, (const char *[]){"SET", "planted:extra", "1"});
    sink_argv(s, 4, (const char *[]){"HSET", "big:hash", "f:12345", "changed"});
    sink_argv(s, 4, (const char *[]){"SETRANGE", "big:string", "150000", "X"});
    sink_argv(s, 2, (const char *[]){"PERSIST", "ttl:3"});
    sink_argv(s, 2, (const char *[]){"DEL", "str:5"});
    sink_argv(s, 3, (const char *[]){"RPUSH", "str:5", "now-a-list"});
    sink_done(s);
}

/* ------------------------------------------------------------ running verify */

struct verify_result {
    int exit_code;
    json_object *report; /* NULL when stdout was not JSON */
    char *err;
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL, "cannot open %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void run_verify(struct verify_result *res, const char *source, const char *target,
                       const char *mode, const char *const *extra)
{
    const char *argv[32];
    int argc = 0;
    argv[argc++] = fixture_env("RS_RINGSYNC");
    argv[argc++] = "verify";
    argv[argc++] = "--source";
    argv[argc++] = source;
    argv[argc++] = "--target";
    argv[argc++] = target;
    argv[argc++] = "--mode";
    argv[argc++] = mode;
    argv[argc++] = "--json";
    argv[argc++] = "--examples";
    argv[argc++] = "100";
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    char out[64];
    snprintf(out, sizeof(out), "/tmp/rs_verify_out.%d", (int)getpid());
    struct program_result r;
    int rc = program_run(argv, NULL, out, VERIFY_TIMEOUT, &r);
    cr_assert(rc == 0, "cannot run ringsync: %s", strerror(-rc));
    char st[64];
    cr_assert(r.exited, "verify ended with %s; stderr:\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err);
    res->exit_code = r.exit_code;
    res->err = strdup(r.err);
    char *text = read_file(out);
    unlink(out);
    res->report = json_tokener_parse(text);
    cr_assert(res->report != NULL || r.exit_code == 2, "verify printed no JSON: %s\nstderr:\n%s",
              text, r.err);
    free(text);
    program_result_deinit(&r);
}

static void result_deinit(struct verify_result *res)
{
    if (res->report != NULL)
        json_object_put(res->report);
    free(res->err);
}

static long long count_of(const struct verify_result *res, const char *kind)
{
    json_object *counts, *v;
    cr_assert(json_object_object_get_ex(res->report, "counts", &counts));
    cr_assert(json_object_object_get_ex(counts, kind, &v), "no count of %s", kind);
    return json_object_get_int64(v);
}

/* The example of key `key` has kind `kind`. */
static void assert_reported(const struct verify_result *res, const char *kind, const char *key)
{
    json_object *ex;
    cr_assert(json_object_object_get_ex(res->report, "examples", &ex));
    for (size_t i = 0; i < json_object_array_length(ex); i++) {
        json_object *e = json_object_array_get_idx(ex, i), *k, *kk;
        json_object_object_get_ex(e, "key", &k);
        json_object_object_get_ex(e, "kind", &kk);
        if (strcmp(json_object_get_string(k), key) == 0) {
            cr_assert_str_eq(json_object_get_string(kk), kind, "key %s: %s", key,
                             json_object_to_json_string(e));
            return;
        }
    }
    cr_assert_fail("%s %s not reported: %s", kind, key, json_object_to_json_string(res->report));
}

static void assert_equal_sets(const char *source, const char *target, const char *mode)
{
    struct verify_result res;
    run_verify(&res, source, target, mode, (const char *[]){"--passes", "1", NULL});
    cr_assert_eq(res.exit_code, 0, "%s -> %s (%s) not equal: %s\nstderr:\n%s", source, target, mode,
                 json_object_to_json_string(res.report), res.err);
    json_object *eq;
    cr_assert(json_object_object_get_ex(res.report, "equal", &eq) && json_object_get_boolean(eq));
    json_object *n;
    json_object_object_get_ex(res.report, "source_keys", &n);
    cr_assert_geq(json_object_get_int64(n), SMALL_KEYS, "%s",
                  json_object_to_json_string(res.report));
    result_deinit(&res);
}

/* The five planted differences as seen from source to target; `swapped`:
 * they were planted on the source (a missing key is then an extra one). */
static void assert_planted(const char *source, const char *target, const char *mode, bool swapped)
{
    bool full = strcmp(mode, "full") == 0;
    struct verify_result res;
    run_verify(&res, source, target, mode,
               (const char *[]){"--passes", "2", "--pass-delay-ms", "50", NULL});
    const char *what = json_object_to_json_string(res.report);
    cr_assert_eq(res.exit_code, 1, "exit %d: %s\nstderr:\n%s", res.exit_code, what, res.err);
    cr_assert_eq(count_of(&res, "missing"), 1, "%s", what);
    cr_assert_eq(count_of(&res, "extra"), 1, "%s", what);
    cr_assert_eq(count_of(&res, "type"), 1, "%s", what);
    cr_assert_eq(count_of(&res, "ttl"), 1, "%s", what);
    cr_assert_eq(count_of(&res, "value"), full ? 2 : 0, "%s", what);
    assert_reported(&res, swapped ? "extra" : "missing", "str:17");
    assert_reported(&res, swapped ? "missing" : "extra", "planted:extra");
    assert_reported(&res, "type", "str:5");
    assert_reported(&res, "ttl", "ttl:3");
    if (full) {
        assert_reported(&res, "value", "big:hash");
        assert_reported(&res, "value", "big:string");
    }
    result_deinit(&res);
}

static const char *uri_of(const struct redis_fixture *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "redis://127.0.0.1:%d", f->port);
    return buf;
}

/* ------------------------------------------------------------ tests */

Test(verify, standalone_sides_equal_then_each_planted_difference_found)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    struct sink s;
    sink_init_server(&s, src->ctx);
    fill_source(&s);
    sink_init_server(&s, dst->ctx);
    fill_target(&s);
    char a[64], b[64];
    uri_of(src, a, sizeof(a));
    uri_of(dst, b, sizeof(b));

    assert_equal_sets(a, b, "quick");
    assert_equal_sets(a, b, "full");

    sink_init_server(&s, dst->ctx);
    plant_differences(&s);
    assert_planted(a, b, "quick", false);
    assert_planted(a, b, "full", false);
    /* the same differences seen from the other side */
    assert_planted(b, a, "full", true);
    redis_fixture_stop(src);
    redis_fixture_stop(dst);
}

Test(verify, a_cluster_on_either_side)
{
    struct cluster_fixture_opts co = {.masters = 3, .replicas_per_master = 0};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    /* DEBUG allowed on both sides (the cluster fixture's nodes allow it):
     * big values are compared by DEBUG DIGEST-VALUE first, a differing one
     * read natively */
    const char *const debug[] = {"--enable-debug-command", "yes", NULL};
    struct redis_fixture_opts ro = {.extra_args = debug};
    struct redis_fixture *one = redis_fixture_start(&ro);
    struct sink s;
    sink_init_cluster(&s, c);
    fill_target(&s);
    sink_init_server(&s, one->ctx);
    fill_source(&s);
    char a[64], b[64];
    uri_of(one, a, sizeof(a));
    uri_of(c->nodes[1], b, sizeof(b)); /* any node of the cluster */

    assert_equal_sets(a, b, "full");
    assert_equal_sets(b, a, "quick");

    sink_init_cluster(&s, c);
    plant_differences(&s);
    assert_planted(a, b, "full", false); /* standalone -> cluster */
    assert_planted(b, a, "quick", true); /* cluster -> standalone */
    cluster_fixture_stop(c);
    redis_fixture_stop(one);
}

Test(verify, bad_usage_is_exit_2)
{
    const char *argv[] = {fixture_env("RS_RINGSYNC"),
                          "verify",
                          "--source",
                          "redis://127.0.0.1:1",
                          "--mode",
                          "fast",
                          NULL};
    struct program_result r;
    cr_assert(program_run(argv, NULL, NULL, 10000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 2, "exit %d: %s", r.exit_code, r.err);
    program_result_deinit(&r);
    /* an unreachable side: no verdict, exit 1 */
    const char *argv2[] = {
        fixture_env("RS_RINGSYNC"), "verify", "--source", "redis://127.0.0.1:1", "--target",
        "redis://127.0.0.1:1",      NULL};
    cr_assert(program_run(argv2, NULL, NULL, 10000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 1, "exit %d: %s", r.exit_code, r.err);
    cr_assert(strstr(r.err, "127.0.0.1:1") != NULL, "%s", r.err);
    program_result_deinit(&r);
}

/* ------------------------------------------------------------ live writes */

/* Writes both sides as a sync would: each batch to the source, then, a
 * little later, to the target: new keys, a field of a key written 5 batches
 * ago, a key of 10 batches ago deleted, an expiry set. No key is touched
 * twice far apart, so every difference verify sees converges within ~lag. */
struct writer {
    struct redis_fixture *src, *dst;
    volatile int stop; /* the test thread's flag; checked between batches */
    int batches;
};

static void writer_batch(redisContext *c, int b)
{
    char k[64];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof(k), "live:%d:%d", b, i);
        redisAppendCommand(c, "SET %s %d", k, b * 100 + i);
    }
    snprintf(k, sizeof(k), "live:%d:0", b - 5);
    redisAppendCommand(c, "SET %s changed-%d", k, b);
    snprintf(k, sizeof(k), "live:%d:1", b - 10);
    redisAppendCommand(c, "DEL %s", k);
    snprintf(k, sizeof(k), "live:%d:2", b - 3);
    redisAppendCommand(c, "PEXPIRE %s 600000", k);
    for (int i = 0; i < 23; i++) {
        redisReply *r;
        cr_assert(redisGetReply(c, (void **)&r) == REDIS_OK);
        freeReplyObject(r);
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    redisContext *s = redis_fixture_connect(w->src), *d = redis_fixture_connect(w->dst);
    for (int b = 0; !w->stop; b++) {
        writer_batch(s, b);
        usleep(30000); /* the target 30 ms behind */
        writer_batch(d, b);
        w->batches = b + 1;
    }
    redisFree(s);
    redisFree(d);
    return NULL;
}

Test(verify, writes_in_flight_are_not_reported_once_the_sides_converge)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    struct sink s;
    sink_init_server(&s, src->ctx);
    fill_source(&s);
    sink_init_server(&s, dst->ctx);
    fill_target(&s);
    char a[64], b[64];
    uri_of(src, a, sizeof(a));
    uri_of(dst, b, sizeof(b));

    struct writer w = {.src = src, .dst = dst};
    pthread_t t;
    cr_assert(pthread_create(&t, NULL, writer_main, &w) == 0);
    usleep(200000);
    /* the scan is slowed (small pages) so that it runs while keys are in flight */
    struct verify_result res;
    run_verify(
        &res, a, b, "full",
        (const char *[]){"--passes", "3", "--pass-delay-ms", "300", "--scan-count", "20", NULL});
    w.stop = 1;
    pthread_join(t, NULL);
    cr_assert_eq(res.exit_code, 0, "live writes reported: %s\nstderr:\n%s",
                 json_object_to_json_string(res.report), res.err);
    json_object *passes;
    json_object_object_get_ex(res.report, "passes", &passes);
    cr_log_info("%d writer batches; verify ran %d passes", w.batches,
                (int)json_object_get_int(passes));
    result_deinit(&res);

    /* a batch on the source only (the target's still to come): seen by one
     * pass, gone once the target has it */
    writer_batch(src->ctx, 100000);
    run_verify(&res, a, b, "quick", (const char *[]){"--passes", "1", NULL});
    cr_assert_eq(res.exit_code, 1, "a write in flight not seen: %s",
                 json_object_to_json_string(res.report));
    cr_assert_geq(count_of(&res, "missing"), 20, "%s", json_object_to_json_string(res.report));
    result_deinit(&res);
    writer_batch(dst->ctx, 100000);
    run_verify(&res, a, b, "quick", (const char *[]){"--passes", "1", NULL});
    cr_assert_eq(res.exit_code, 0, "%s", json_object_to_json_string(res.report));
    result_deinit(&res);
    redis_fixture_stop(src);
    redis_fixture_stop(dst);
}

/* ------------------------------------------------------------ the db map */

static void write_db(redisContext *c, int db, const char *prefix, int n)
{
    redis_fixture_exec(c, "SELECT %d", db);
    for (int i = 0; i < n; i++)
        redis_fixture_exec(c, "SET %s%d:%d v%d", prefix, db, i, i);
    redis_fixture_exec(c, "SELECT 0");
}

Test(verify, two_source_dbs_into_one_target_db_with_db_map)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    write_db(src->ctx, 0, "k", 200);
    write_db(src->ctx, 3, "k", 200);
    /* the target's db 2 holds both; its db 0 something else, not compared */
    redis_fixture_exec(dst->ctx, "SELECT 2");
    for (int db = 0; db <= 3; db += 3)
        for (int i = 0; i < 200; i++)
            redis_fixture_exec(dst->ctx, "SET k%d:%d v%d", db, i, i);
    redis_fixture_exec(dst->ctx, "SELECT 0");
    redis_fixture_exec(dst->ctx, "SET unrelated 1");
    char a[64], b[64];
    uri_of(src, a, sizeof(a));
    uri_of(dst, b, sizeof(b));
    struct verify_result res;
    run_verify(&res, a, b, "full", (const char *[]){"--db-map", "0:2,3:2", "--passes", "1", NULL});
    cr_assert_eq(res.exit_code, 0, "%s\nstderr:\n%s", json_object_to_json_string(res.report),
                 res.err);
    cr_assert(strstr(res.err, "target db 0") != NULL, "%s", res.err);
    result_deinit(&res);

    /* one key of db 3 missing, one extra in db 2 */
    redis_fixture_exec(dst->ctx, "SELECT 2");
    redis_fixture_exec(dst->ctx, "DEL k3:7");
    redis_fixture_exec(dst->ctx, "SET k9:1 v");
    redis_fixture_exec(dst->ctx, "SELECT 0");
    run_verify(&res, a, b, "quick", (const char *[]){"--db-map", "0:2,3:2", "--passes", "1", NULL});
    const char *what = json_object_to_json_string(res.report);
    cr_assert_eq(res.exit_code, 1, "%s", what);
    cr_assert_eq(count_of(&res, "missing"), 1, "%s", what);
    cr_assert_eq(count_of(&res, "extra"), 1, "%s", what);
    assert_reported(&res, "missing", "k3:7");
    assert_reported(&res, "extra", "k9:1");
    result_deinit(&res);
    redis_fixture_stop(src);
    redis_fixture_stop(dst);
}

Test(verify, two_source_dbs_into_a_cluster_with_db_prefix)
{
    struct cluster_fixture_opts co = {.masters = 3, .replicas_per_master = 0};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    struct redis_fixture *src = redis_fixture_start(NULL);
    write_db(src->ctx, 0, "k", 300);
    write_db(src->ctx, 1, "k", 300);
    struct sink s;
    sink_init_cluster(&s, c);
    char k[64], v[16];
    for (int db = 0; db <= 1; db++)
        for (int i = 0; i < 300; i++) {
            snprintf(k, sizeof(k), "db%d:k%d:%d", db, db, i);
            snprintf(v, sizeof(v), "v%d", i);
            sink_argv(&s, 3, (const char *[]){"SET", k, v});
        }
    sink_done(&s);
    char a[64], b[64];
    uri_of(src, a, sizeof(a));
    uri_of(c->nodes[0], b, sizeof(b));
    struct verify_result res;
    run_verify(&res, a, b, "full", (const char *[]){"--db-prefix", "--passes", "1", NULL});
    cr_assert_eq(res.exit_code, 0, "%s\nstderr:\n%s", json_object_to_json_string(res.report),
                 res.err);
    result_deinit(&res);

    /* a key of db 1 changed; a key that no prefix names: extra */
    sink_init_cluster(&s, c);
    sink_argv(&s, 3, (const char *[]){"SET", "db1:k1:5", "other"});
    sink_argv(&s, 3, (const char *[]){"SET", "stray", "1"});
    sink_done(&s);
    run_verify(&res, a, b, "full", (const char *[]){"--db-prefix", "--passes", "1", NULL});
    const char *what = json_object_to_json_string(res.report);
    cr_assert_eq(res.exit_code, 1, "%s", what);
    cr_assert_eq(count_of(&res, "value"), 1, "%s", what);
    cr_assert_eq(count_of(&res, "extra"), 1, "%s", what);
    assert_reported(&res, "value", "k1:5");
    assert_reported(&res, "extra", "stray");
    result_deinit(&res);
    cluster_fixture_stop(c);
    redis_fixture_stop(src);
}
