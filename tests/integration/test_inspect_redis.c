/* test_inspect_redis.c - `ringsync inspect` against files a real Redis wrote.
 *
 * A redis-server is filled with every type and encoding Redis 7.0 writes, it
 * SAVEs, and `ringsync inspect` reads the dump.rdb. The oracle is the server:
 * its data set (SCAN, TYPE, values, PEXPIRETIME, XINFO STREAM FULL, FUNCTION
 * LIST) must equal, key by key, what inspect printed; and a second server that
 * loads the same file must hold it too.
 *
 * The sample (fill_sample.h) covers every type and encoding Redis 7.0 writes,
 * expiries, keys already expired when saved, 16 databases and two function
 * libraries.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "fill_sample.h"
#include "redis_fixture.h"
#include "redis_model.h"

#define INSPECT_TIMEOUT 60000

/* A server started with `--enable-debug-command yes` and more_args (NULL-
 * terminated, may be NULL), filled with everything, saved to DIR/dump.rdb. */
static struct redis_fixture *start_filled_server_with(const char *const *more_args)
{
    const char *args[32] = {"--enable-debug-command", "yes"};
    size_t n = 2;
    for (size_t i = 0; more_args != NULL && more_args[i] != NULL; i++) {
        cr_assert(n < sizeof(args) / sizeof(args[0]) - 1);
        args[n++] = more_args[i];
    }
    args[n] = NULL;
    struct redis_fixture_opts opts = {.extra_args = args};
    struct redis_fixture *f = redis_fixture_start(&opts);
    fill_sample(f, NULL);
    redis_fixture_exec(f->ctx, "SAVE");
    return f;
}

static struct redis_fixture *start_filled_server(void)
{
    return start_filled_server_with(NULL);
}

/* ---------------------------------------------------------------- running inspect */

/* Runs `ringsync inspect [extra] FILE` (FILE "-" reads stdin_path). */
static void run_inspect(const char *extra, const char *file, const char *stdin_path,
                        const char *out_path, struct program_result *r)
{
    const char *argv[5];
    int argc = 0;
    argv[argc++] = fixture_env("RS_RINGSYNC");
    argv[argc++] = "inspect";
    if (extra != NULL)
        argv[argc++] = extra;
    argv[argc++] = file;
    argv[argc] = NULL;
    int rc = program_run(argv, stdin_path, out_path, INSPECT_TIMEOUT, r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
}

static void assert_inspect_ok(const struct program_result *r, const char *what)
{
    char st[64];
    cr_assert(r->exited && r->exit_code == 0, "%s: ringsync inspect ended with %s; stderr:\n%s",
              what, program_result_describe(r, st, sizeof(st)), r->err);
}

static void load_inspect_model(struct redis_model *m, const char *path)
{
    char why[1024];
    cr_assert(redis_model_from_inspect_file(m, path, why, sizeof(why)) == 0, "%s", why);
}

static void assert_models_equal(const struct redis_model *server, const struct redis_model *file,
                                size_t expect_expired, const char *what)
{
    struct model_diff d;
    redis_model_compare(server, file, fixture_now_ms(), &d);
    cr_assert(d.differences == 0, "%s: %zu keys differ (%zu compared):\n%s", what, d.differences,
              d.keys_compared, d.report);
    cr_assert(d.expired_absent == expect_expired,
              "%s: %zu expired keys absent from the server, expected %zu:\n%s", what,
              d.expired_absent, expect_expired, d.report);
}

/* Redis 7.0's in-memory encoding -> the RDB type it saves as. */
static const struct {
    int type;
    const char *server;
    const char *file;
} encoding_map[] = {
    {MODEL_STRING, "int", "string"},
    {MODEL_STRING, "embstr", "string"},
    {MODEL_STRING, "raw", "string"},
    {MODEL_LIST, "quicklist", "list-quicklist-2"},
    {MODEL_SET, "intset", "set-intset"},
    {MODEL_SET, "hashtable", "set-hashtable"},
    {MODEL_ZSET, "listpack", "zset-listpack"},
    {MODEL_ZSET, "skiplist", "zset-skiplist-2"},
    {MODEL_HASH, "listpack", "hash-listpack"},
    {MODEL_HASH, "hashtable", "hash-hashtable"},
    {MODEL_STREAM, "stream", "stream-listpacks-2"},
};
#define ENCODINGS (sizeof(encoding_map) / sizeof(encoding_map[0]))

/* Every key's "encoding" is the RDB type its server encoding saves as, and
 * (if need_all) the fill reached every encoding of the table. */
static void assert_encodings(const struct redis_model *server, const struct redis_model *file,
                             bool need_all)
{
    bool seen[ENCODINGS] = {false};
    for (unsigned db = 0; db < MODEL_DBS; db++) {
        for (size_t i = 0; i < file->dbs[db].nkeys; i++) {
            const struct model_key *fk = &file->dbs[db].keys[i];
            const struct model_key *sk = redis_model_find(server, db, fk->key.p, fk->key.len);
            if (sk == NULL)
                continue;
            size_t e = 0;
            while (e < ENCODINGS && (encoding_map[e].type != sk->type ||
                                     strcmp(encoding_map[e].server, sk->encoding) != 0))
                e++;
            char k[128];
            model_escape(k, sizeof(k), fk->key.p, fk->key.len, 40);
            cr_assert(e < ENCODINGS,
                      "db %u key '%s': server encoding %s of a %s is not in the table", db, k,
                      sk->encoding, model_type_name(sk->type));
            cr_assert(strcmp(fk->encoding, encoding_map[e].file) == 0,
                      "db %u key '%s': inspect says encoding \"%s\", the server holds a %s %s "
                      "(saved as \"%s\")",
                      db, k, fk->encoding, model_type_name(sk->type), sk->encoding,
                      encoding_map[e].file);
            seen[e] = true;
        }
    }
    for (size_t e = 0; e < ENCODINGS && need_all; e++)
        cr_assert(seen[e], "the fill has no %s with encoding %s",
                  model_type_name(encoding_map[e].type), encoding_map[e].server);
}

TestSuite(inspect_redis, .fini = redis_fixture_stop_all, .timeout = 120);

/* Inspects f's dump.rdb (no warnings allowed) and compares what it printed
 * with the server's data set and encodings; the model of the file is left in
 * *file, its path in rdb. */
static void assert_inspect_matches_server(struct redis_fixture *f, size_t expect_expired,
                                          bool is_full_fill, struct redis_model *file, char *rdb,
                                          size_t rdb_cap)
{
    char out[128];
    redis_fixture_path(f, "dump.rdb", rdb, rdb_cap);
    redis_fixture_path(f, "inspect.jsonl", out, sizeof(out));

    struct program_result r;
    run_inspect(NULL, rdb, NULL, out, &r);
    assert_inspect_ok(&r, "inspect dump.rdb");
    cr_assert(r.err_len == 0, "inspect warned on a file Redis wrote:\n%s", r.err);
    program_result_deinit(&r);

    struct redis_model server;
    redis_model_from_server(&server, f->ctx);
    load_inspect_model(file, out);
    assert_models_equal(&server, file, expect_expired, "server that wrote the file vs inspect");
    assert_encodings(&server, file, is_full_fill);
    redis_model_free(&server);
}

Test(inspect_redis, lists_every_key_and_value_the_server_saved)
{
    struct redis_fixture *f = start_filled_server();
    struct redis_model server, file;
    redis_model_from_server(&server, f->ctx);
    fill_sample_assert_reached(&server, NULL);
    redis_model_free(&server);

    char rdb[128];
    /* expired:str, expired:hash, db3:expired */
    assert_inspect_matches_server(f, 3, true, &file, rdb, sizeof(rdb));

    /* The function libraries are the code loaded, byte for byte. */
    cr_assert_eq(file.nfunctions, 2, "inspect printed %zu function lines, expected 2",
                 file.nfunctions);
    const char *libs[] = {fill_sample_lib_mylib,
                          fill_sample_lib_other}; /* sorted as the model sorts */
    for (size_t i = 0; i < 2; i++) {
        char e[256];
        cr_assert(file.functions[i].len == strlen(libs[i]) &&
                      memcmp(file.functions[i].p, libs[i], strlen(libs[i])) == 0,
                  "function line %zu is \"%s\"", i,
                  model_escape(e, sizeof(e), file.functions[i].p, file.functions[i].len, 200));
    }

    /* The oracle the other way round: a server that loads the same file holds
     * what inspect printed (less the keys that had expired). */
    struct redis_fixture_opts opts = {.load_rdb = rdb};
    struct redis_fixture *g = redis_fixture_start(&opts);
    redis_model_from_server(&server, g->ctx);
    assert_models_equal(&server, &file, 3, "server that loaded the file vs inspect");
    redis_model_free(&server);
    redis_model_free(&file);
}

/* No LZF anywhere (every string and node raw) and a zero CRC trailer, which
 * means "not computed". */
Test(inspect_redis, reads_a_file_saved_without_compression_or_checksum)
{
    static const char *const args[] = {"--rdbcompression", "no", "--rdbchecksum", "no", NULL};
    struct redis_fixture *f = start_filled_server_with(args);
    struct redis_model file;
    char rdb[128];
    assert_inspect_matches_server(f, 3, true, &file, rdb, sizeof(rdb));
    redis_model_free(&file);
}

/* With an LRU or LFU maxmemory policy, every key is preceded by an IDLE or a
 * FREQ opcode. */
Test(inspect_redis, reads_a_file_with_lru_idle_times)
{
    static const char *const args[] = {"--maxmemory-policy", "allkeys-lru", NULL};
    struct redis_fixture *f = start_filled_server_with(args);
    struct redis_model file;
    char rdb[128];
    assert_inspect_matches_server(f, 3, true, &file, rdb, sizeof(rdb));
    redis_model_free(&file);
}

Test(inspect_redis, reads_a_file_with_lfu_frequencies)
{
    static const char *const args[] = {"--maxmemory-policy", "allkeys-lfu", NULL};
    struct redis_fixture *f = start_filled_server_with(args);
    struct redis_model file;
    char rdb[128];
    assert_inspect_matches_server(f, 3, true, &file, rdb, sizeof(rdb));
    redis_model_free(&file);
}

/* Listpacks past the limits of their header: more than 65535 elements (the
 * count then reads "unknown"), more than 64 KiB, strings of 12- and 32-bit
 * lengths inside them; a stream node of 20000 entries. */
Test(inspect_redis, reads_listpacks_past_their_header_limits)
{
    static const char *const args[] = {"--stream-node-max-bytes",
                                       "0",
                                       "--stream-node-max-entries",
                                       "100000",
                                       "--hash-max-listpack-entries",
                                       "40000",
                                       "--hash-max-listpack-value",
                                       "70000",
                                       "--zset-max-listpack-value",
                                       "70000",
                                       "--list-max-listpack-size",
                                       "-5",
                                       NULL};
    struct redis_fixture_opts opts = {.extra_args = args};
    struct redis_fixture *f = redis_fixture_start(&opts);
    struct redis_pipeline p;
    redis_pipeline_init(&p, f->ctx, 1000);
    for (int i = 1; i <= 20000; i++)
        redis_pipeline_append(&p, "XADD stream:onenode 1-%d a %d b v%d", i, i, i);
    redis_pipeline_append(&p, "XGROUP CREATE stream:onenode g 0");
    redis_pipeline_append(&p, "XREADGROUP GROUP g c COUNT 100 STREAMS stream:onenode >");
    struct fill_rng r = {.s = 42};
    fill_send_many(&p, "HSET", "hash:listpack:33k", 33000, 100, fill_gen_hash_field, &r);
    char *big = malloc(66000);
    cr_assert(big != NULL);
    fill_rng_fill(&r, big, 66000);
    redis_pipeline_append(&p, "HSET hash:listpack:bigvalues small 1 v5000 %b v66000 %b", big,
                          (size_t)5000, big, (size_t)66000);
    redis_pipeline_append(&p, "ZADD zset:listpack:bigmember 1 a 2 %b 3 %b", big, (size_t)5000,
                          big + 1, (size_t)65999);
    redis_pipeline_append(&p, "RPUSH list:bigelements small %b %b 123", big, (size_t)40000, big,
                          (size_t)5000);
    redis_pipeline_flush(&p);
    free(big);
    redis_fixture_exec(f->ctx, "SAVE");

    struct redis_model file;
    char rdb[128];
    assert_inspect_matches_server(f, 0, false, &file, rdb, sizeof(rdb));
    const struct model_key *k = redis_model_find(&file, 0, "hash:listpack:33k", 17);
    cr_assert(k != NULL && strcmp(k->encoding, "hash-listpack") == 0 && k->n == 33000,
              "hash:listpack:33k is not a 33000-field listpack hash in the file");
    redis_model_free(&file);
}

static void assert_same_file(const char *a, const char *b, const char *what)
{
    size_t la, lb;
    char *x = fixture_read_file(a, &la), *y = fixture_read_file(b, &lb);
    cr_assert(x != NULL && y != NULL, "cannot read %s or %s", a, b);
    size_t i = 0;
    while (i < la && i < lb && x[i] == y[i])
        i++;
    cr_assert(la == lb && i == la, "%s: outputs differ at byte %zu (%zu vs %zu bytes)", what, i, la,
              lb);
    free(x);
    free(y);
}

Test(inspect_redis, reads_stdin_like_a_file)
{
    struct redis_fixture *f = start_filled_server();
    char rdb[128], out_file[128], out_stdin[128], out_pipe[128];
    redis_fixture_path(f, "dump.rdb", rdb, sizeof(rdb));
    redis_fixture_path(f, "from-file.jsonl", out_file, sizeof(out_file));
    redis_fixture_path(f, "from-stdin.jsonl", out_stdin, sizeof(out_stdin));
    redis_fixture_path(f, "from-pipe.jsonl", out_pipe, sizeof(out_pipe));

    struct program_result r;
    run_inspect(NULL, rdb, NULL, out_file, &r);
    assert_inspect_ok(&r, "inspect FILE");
    program_result_deinit(&r);

    run_inspect(NULL, "-", rdb, out_stdin, &r);
    assert_inspect_ok(&r, "inspect - < FILE");
    program_result_deinit(&r);
    assert_same_file(out_file, out_stdin, "inspect FILE vs inspect - < FILE");

    /* Through a pipe, reads return what the writer has written so far. */
    const char *argv[] = {
        "sh", "-c", "cat \"$1\" | \"$2\" inspect -", "sh", rdb, fixture_env("RS_RINGSYNC"), NULL};
    int rc = program_run(argv, NULL, out_pipe, INSPECT_TIMEOUT, &r);
    cr_assert(rc == 0, "cannot run sh: %s", strerror(-rc));
    assert_inspect_ok(&r, "cat FILE | inspect -");
    program_result_deinit(&r);
    assert_same_file(out_file, out_pipe, "inspect FILE vs cat FILE | inspect -");
}

/* The per-database rows of --summary: "  db keys expires ..." then one row of
 * numbers per database. Returns the number of rows read. */
static int parse_summary_dbs(const char *text, long long keys[MODEL_DBS],
                             long long expires[MODEL_DBS], long long *total_keys,
                             long long *functions)
{
    int rows = 0;
    bool in_table = false;
    *total_keys = -1;
    *functions = -1;
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        char buf[512];
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (len >= sizeof(buf))
            len = sizeof(buf) - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl != NULL ? nl + 1 : NULL;

        char w1[32], w2[32], w3[32];
        long long db, k, e;
        if (sscanf(buf, " %31s %31s %31s", w1, w2, w3) == 3 && strcmp(w1, "db") == 0 &&
            strcmp(w2, "keys") == 0 && strcmp(w3, "expires") == 0) {
            in_table = true;
            continue;
        }
        if (in_table && sscanf(buf, " %lld %lld %lld", &db, &k, &e) == 3) {
            cr_assert(db >= 0 && db < MODEL_DBS, "summary row for db %lld", db);
            keys[db] = k;
            expires[db] = e;
            rows++;
            continue;
        }
        in_table = false;
        if (sscanf(buf, "keys %lld", &k) == 1)
            *total_keys = k;
        if (sscanf(buf, "function libraries %lld", &k) == 1)
            *functions = k;
    }
    return rows;
}

Test(inspect_redis, summary_counts_the_keys_of_each_db)
{
    struct redis_fixture *f = start_filled_server();
    /* What the file holds, per db: the keyspace as SAVE saw it (expired keys
     * not yet reclaimed included: SAVE writes them). */
    long long want_keys[MODEL_DBS] = {0}, want_expires[MODEL_DBS] = {0}, want_total = 0;
    for (int db = 0; db < MODEL_DBS; db++) {
        char field[16], val[128];
        snprintf(field, sizeof(field), "db%d", db);
        if (redis_fixture_info(f->ctx, "keyspace", field, val, sizeof(val)))
            cr_assert(sscanf(val, "keys=%lld,expires=%lld", &want_keys[db], &want_expires[db]) ==
                      2);
        want_total += want_keys[db];
    }
    cr_assert(want_keys[0] > 0 && want_keys[15] > 0);

    char rdb[128], out[128];
    redis_fixture_path(f, "dump.rdb", rdb, sizeof(rdb));
    redis_fixture_path(f, "summary.txt", out, sizeof(out));
    struct program_result r;
    run_inspect("--summary", rdb, NULL, out, &r);
    assert_inspect_ok(&r, "inspect --summary");
    program_result_deinit(&r);

    char *text = fixture_read_file(out, NULL);
    cr_assert(text != NULL);
    long long keys[MODEL_DBS], expires[MODEL_DBS], total, functions;
    for (int db = 0; db < MODEL_DBS; db++)
        keys[db] = expires[db] = 0;
    int rows = parse_summary_dbs(text, keys, expires, &total, &functions);
    cr_assert(rows == MODEL_DBS, "the summary has %d database rows, expected 16:\n%s", rows, text);
    for (int db = 0; db < MODEL_DBS; db++) {
        cr_assert(keys[db] == want_keys[db] && expires[db] == want_expires[db],
                  "db %d: the summary says %lld keys, %lld with an expiry; the server saved %lld, "
                  "%lld:\n%s",
                  db, keys[db], expires[db], want_keys[db], want_expires[db], text);
    }
    cr_assert(total == want_total, "the summary says %lld keys in all, the server saved %lld:\n%s",
              total, want_total, text);
    cr_assert(functions == 2, "the summary says %lld function libraries, expected 2:\n%s",
              functions, text);
    free(text);
}

/* The comparison itself must fail when the file differs: one deliberate
 * change of each kind, each caught as exactly one difference. */
enum mutation {
    MUT_STRING_BYTE,
    MUT_LIST_DROP,
    MUT_SCORE_ULP,
    MUT_HASH_VALUE,
    MUT_SET_MEMBER,
    MUT_EXPIRE,
    MUT_STREAM_PEL_COUNT,
    MUT_STREAM_CONSUMER_SEEN,
    MUT_KEY_REMOVED,
    MUT_FUNCTION,
    MUTATIONS,
};

static struct model_key *find_key(struct redis_model *m, unsigned db, const char *key)
{
    struct model_key *k = (struct model_key *)redis_model_find(m, db, key, strlen(key));
    cr_assert(k != NULL, "no key %s", key);
    return k;
}

static void mutate(struct redis_model *m, int what)
{
    struct model_key *k;
    switch (what) {
    case MUT_STRING_BYTE:
        find_key(m, 0, "str:8mib")->str.p[4 << 20] ^= 1;
        break;
    case MUT_LIST_DROP:
        k = find_key(m, 0, "list:200k");
        free(k->elems[--k->n].p);
        break;
    case MUT_SCORE_ULP:
        k = find_key(m, 0, "zset:big");
        k->scores[7] = nextafter(k->scores[7], INFINITY);
        break;
    case MUT_HASH_VALUE:
        k = find_key(m, 0, "hash:big");
        k->values[500].p[0] ^= 0x20;
        break;
    case MUT_SET_MEMBER:
        k = find_key(m, 0, "set:200k");
        k->elems[k->n - 1].p[0] = 'X';
        break;
    case MUT_EXPIRE:
        find_key(m, 0, "exp:zset")->expire_ms++;
        break;
    case MUT_STREAM_PEL_COUNT:
        find_key(m, 0, "stream:big")->stream->groups[0].pel[3].delivery_count++;
        break;
    case MUT_STREAM_CONSUMER_SEEN:
        find_key(m, 0, "stream:big")->stream->groups[0].consumers[1].seen_time_ms--;
        break;
    case MUT_KEY_REMOVED:
        /* Renaming db 9's list makes one key missing and one extra. */
        find_key(m, 9, "db9:list")->key.p[0] = 'D';
        break;
    case MUT_FUNCTION:
        m->functions[0].p[m->functions[0].len - 1] ^= 1;
        break;
    }
}

Test(inspect_redis, comparison_catches_each_kind_of_difference)
{
    struct redis_fixture *f = start_filled_server();
    char rdb[128], out[128];
    redis_fixture_path(f, "dump.rdb", rdb, sizeof(rdb));
    redis_fixture_path(f, "inspect.jsonl", out, sizeof(out));
    struct program_result r;
    run_inspect(NULL, rdb, NULL, out, &r);
    assert_inspect_ok(&r, "inspect dump.rdb");
    program_result_deinit(&r);

    struct redis_model server;
    redis_model_from_server(&server, f->ctx);
    for (int m = 0; m < MUTATIONS; m++) {
        struct redis_model file;
        load_inspect_model(&file, out);
        mutate(&file, m);
        struct model_diff d;
        redis_model_compare(&server, &file, fixture_now_ms(), &d);
        /* A renamed key or library is one missing and one extra. */
        size_t want = m == MUT_KEY_REMOVED || m == MUT_FUNCTION ? 2 : 1;
        cr_assert(d.differences == want, "mutation %d: %zu differences, expected %zu:\n%s", m,
                  d.differences, want, d.report);
        redis_model_free(&file);
    }
    redis_model_free(&server);
}
