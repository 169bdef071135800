/* test_sync_restore.c - `ringsync restore FILE|-` writes an RDB file into a
 * target through the same write path as sync, with real redis-server
 * processes.
 *
 * The oracle is a redis-server that loads the same file itself (copied into
 * its directory as dump.rdb): after the restore, the target must hold what
 * that server holds, key by key (redis_model.h: values and PEXPIRETIME) and as
 * a whole (DEBUG DIGEST). Keys whose expiry has passed are in the file but
 * neither Redis nor ringsync loads them.
 *
 * Files: every file of $RS_TESTDATA/rdb that Redis 7.0 loads (versions 3 to
 * 10, with encodings 7.0 no longer writes), read from a path, from standard
 * input and from a pipe; corrupt_ziplist.rdb, which must be refused with the
 * offset and the encoding named; and a file written by a live server whose
 * keys expired between the SAVE and the restore.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dataset_compare.h"
#include "redis_fixture.h"
#include "redis_model.h"

#define RESTORE_TIMEOUT_MS 60000

TestSuite(sync_restore, .fini = redis_fixture_stop_all, .timeout = 120);

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

/* The Lua script kept in scriptbackup.rdb's "lua" AUX field. */
static const char scriptbackup_lua[] = "return redis.call('set', 'foo', 'bar')";

/* $RS_TESTDATA/rdb/name in buf; skips the test when the data is not there. */
static const char *testdata_path(const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/rdb/%s", fixture_env("RS_TESTDATA"), name);
    cr_assert(n > 0 && (size_t)n < cap);
    struct stat st;
    if (stat(buf, &st) != 0)
        cr_assert_fail("%s is not there (RS_TESTDATA must name shared/testdata)", buf);
    return buf;
}

/* Runs `ringsync restore FILE --target ... [extra...]` (FILE "-" reads
 * stdin_path); extra is NULL-terminated, may be NULL. */
static void run_restore(const char *file, const char *stdin_path, const struct redis_fixture *dst,
                        const char *const *extra, struct program_result *r)
{
    char target[64];
    snprintf(target, sizeof(target), "redis://127.0.0.1:%d", dst->port);
    const char *argv[16] = {fixture_env("RS_RINGSYNC"), "restore", file, "--target", target};
    int argc = 5;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        cr_assert(argc < 15);
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    int rc = program_run(argv, stdin_path, NULL, RESTORE_TIMEOUT_MS, r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
}

static void assert_applied(const struct program_result *r, const char *what)
{
    char st[64];
    cr_assert(r->exited && r->exit_code == 0, "%s: ringsync ended with %s; stderr:\n%s", what,
              program_result_describe(r, st, sizeof(st)), r->err);
    cr_assert(strstr(r->err, "snapshot applied") != NULL,
              "%s: exit 0 without \"snapshot applied\"; stderr:\n%s", what, r->err);
}

static void reset_target(struct redis_fixture *dst)
{
    redis_fixture_exec(dst->ctx, "FLUSHALL");
    redis_fixture_exec(dst->ctx, "FUNCTION FLUSH");
    redis_fixture_exec(dst->ctx, "SCRIPT FLUSH");
}

/* dst holds what want (a model of the oracle server) holds, with the same
 * DEBUG DIGEST as the oracle. */
static void assert_target_equals(const struct redis_fixture *oracle, const struct redis_model *want,
                                 struct redis_fixture *dst, const char *what)
{
    struct redis_model got;
    redis_model_from_server(&got, dst->ctx);
    struct model_diff *d = malloc(sizeof(*d));
    cr_assert(d != NULL);
    redis_model_compare(&got, want, fixture_now_ms(), d);
    cr_assert(
        d->differences == 0 && d->expired_absent == 0,
        "%s: the target differs from what redis-server loaded in %zu keys (%zu compared):\n%s",
        what, d->differences, d->keys_compared, d->report);
    cr_assert(redis_model_count(&got, MODEL_DBS) == redis_model_count(want, MODEL_DBS),
              "%s: the target holds %zu keys, redis-server loaded %zu", what,
              redis_model_count(&got, MODEL_DBS), redis_model_count(want, MODEL_DBS));
    free(d);
    redis_model_free(&got);

    char a[64], b[64];
    dataset_digest(oracle->ctx, a, sizeof(a));
    dataset_digest(dst->ctx, b, sizeof(b));
    cr_assert(strcmp(a, b) == 0, "%s: DEBUG DIGEST: redis-server %s, target %s", what, a, b);
}

/* A redis-server that loaded name itself, and its model. */
static struct redis_fixture *start_oracle(const char *path, struct redis_model *m)
{
    struct redis_fixture_opts opts = {.load_rdb = path, .extra_args = debug_args};
    struct redis_fixture *f = redis_fixture_start(&opts);
    redis_model_from_server(m, f->ctx);
    return f;
}

/* ---------------------------------------------------------------- the testdata files */

static void check_file(const char *name, struct redis_fixture *dst)
{
    static const char *const auto_w1[] = {"--workers", "1", NULL};
    static const char *const never_w2[] = {"--workers", "2", "--restore", "never", NULL};
    static const char *const *const modes[] = {auto_w1, never_w2};
    static const char *const mode_names[] = {"--workers 1", "--workers 2 --restore never"};

    char path[512];
    testdata_path(name, path, sizeof(path));
    struct redis_model want;
    struct redis_fixture *oracle = start_oracle(path, &want);
    for (size_t m = 0; m < 2; m++) {
        char what[128];
        snprintf(what, sizeof(what), "restore %s %s", name, mode_names[m]);
        reset_target(dst);
        struct program_result r;
        run_restore(path, NULL, dst, modes[m], &r);
        assert_applied(&r, what);
        program_result_deinit(&r);
        assert_target_equals(oracle, &want, dst, what);
    }
    redis_model_free(&want);
    redis_fixture_stop(oracle);
}

Test(sync_restore, every_testdata_file_gives_what_redis_loads)
{
    static const char *const files[] = {"encodings.rdb",      "hash-zipmap.rdb",
                                        "list-quicklist.rdb", "hash-ziplist.rdb",
                                        "zset-ziplist.rdb",   "scriptbackup.rdb"};
    struct redis_fixture_opts to = {.extra_args = debug_args};
    struct redis_fixture *dst = redis_fixture_start(&to);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        check_file(files[i], dst);
}

/* A target where RESTORE is not allowed (here an ACL) gets every value
 * through native commands, and the same data. */
Test(sync_restore, a_target_that_refuses_restore_gets_native_commands)
{
    char path[512];
    testdata_path("encodings.rdb", path, sizeof(path));
    struct redis_model want;
    struct redis_fixture *oracle = start_oracle(path, &want);
    struct redis_fixture_opts to = {.extra_args = debug_args};
    struct redis_fixture *dst = redis_fixture_start(&to);
    redis_fixture_exec(dst->ctx, "ACL SETUSER default -restore");

    struct program_result r;
    run_restore(path, NULL, dst, NULL, &r);
    assert_applied(&r, "restore into a target without RESTORE");
    cr_assert(strstr(r.err, "native commands") != NULL,
              "no word of the fallback to native commands:\n%s", r.err);
    program_result_deinit(&r);
    assert_target_equals(oracle, &want, dst, "restore into a target without RESTORE");
    redis_model_free(&want);
}

/* The old AUX "lua" field: the script is loaded into the target's cache. */
Test(sync_restore, a_lua_script_in_an_aux_field_is_loaded)
{
    char path[512];
    testdata_path("scriptbackup.rdb", path, sizeof(path));
    struct redis_fixture *dst = redis_fixture_start(NULL);
    /* Its SHA1, from a server that is not the target. */
    struct redis_fixture *scratch = redis_fixture_start(NULL);
    redisReply *sha = redis_fixture_command(scratch->ctx, "SCRIPT LOAD %s", scriptbackup_lua);
    cr_assert(sha->type == REDIS_REPLY_STRING);

    struct program_result r;
    run_restore(path, NULL, dst, NULL, &r);
    assert_applied(&r, "restore scriptbackup.rdb");
    program_result_deinit(&r);
    redisReply *e = redis_fixture_command(dst->ctx, "SCRIPT EXISTS %s", sha->str);
    cr_assert(e->type == REDIS_REPLY_ARRAY && e->elements == 1 && e->element[0]->integer == 1,
              "the target does not have the script %s of the file's lua AUX field", sha->str);
    freeReplyObject(e);
    freeReplyObject(sha);
}

Test(sync_restore, standard_input_and_a_pipe_work_like_a_file)
{
    char path[512];
    testdata_path("encodings.rdb", path, sizeof(path));
    struct redis_model want;
    struct redis_fixture *oracle = start_oracle(path, &want);
    struct redis_fixture_opts to = {.extra_args = debug_args};
    struct redis_fixture *dst = redis_fixture_start(&to);

    struct program_result r;
    run_restore("-", path, dst, NULL, &r);
    assert_applied(&r, "restore - < encodings.rdb");
    program_result_deinit(&r);
    assert_target_equals(oracle, &want, dst, "restore - < encodings.rdb");

    /* Through a pipe: no size known, reads return what was written so far. */
    reset_target(dst);
    char target[64];
    snprintf(target, sizeof(target), "redis://127.0.0.1:%d", dst->port);
    const char *argv[] = {"sh",   "-c", "cat \"$1\" | \"$2\" restore - --target \"$3\"",
                          "sh",   path, fixture_env("RS_RINGSYNC"),
                          target, NULL};
    int rc = program_run(argv, NULL, NULL, RESTORE_TIMEOUT_MS, &r);
    cr_assert(rc == 0, "cannot run sh: %s", strerror(-rc));
    assert_applied(&r, "cat encodings.rdb | restore -");
    program_result_deinit(&r);
    assert_target_equals(oracle, &want, dst, "cat encodings.rdb | restore -");
    redis_model_free(&want);
}

Test(sync_restore, a_corrupt_ziplist_is_refused_with_its_offset)
{
    char path[512];
    testdata_path("corrupt_ziplist.rdb", path, sizeof(path));
    struct redis_fixture *dst = redis_fixture_start(NULL);
    struct program_result r;
    run_restore(path, NULL, dst, NULL, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 1,
              "restore corrupt_ziplist.rdb ended with %s, expected exit 1; stderr:\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err);
    cr_assert(strstr(r.err, "ziplist") != NULL && strstr(r.err, "offset") != NULL,
              "the message does not name the ziplist and the offset:\n%s", r.err);
    program_result_deinit(&r);
}

/* ---------------------------------------------------------------- expired keys */

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = fixture_read_file(from, &len);
    cr_assert(data != NULL, "cannot read %s", from);
    FILE *f = fopen(to, "wb");
    cr_assert(f != NULL, "cannot create %s", to);
    cr_assert(fwrite(data, 1, len, f) == len && fclose(f) == 0, "cannot write %s", to);
    free(data);
}

/* Keys alive when the file was saved and expired by the time it is restored
 * are skipped; the others keep their PEXPIRETIME to the millisecond. */
Test(sync_restore, keys_expired_since_the_save_are_skipped)
{
    static const char *const auto_mode[] = {NULL};
    static const char *const native_mode[] = {"--restore", "never", NULL};
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    long long t0 = fixture_now_ms();
    redis_fixture_exec(src->ctx, "SET gone:str v PX 2000");
    redis_fixture_exec(src->ctx, "HSET gone:hash a 1 b 2");
    redis_fixture_exec(src->ctx, "PEXPIRE gone:hash 2000");
    redis_fixture_exec(src->ctx, "SET stays:str v PX 600000");
    redis_fixture_exec(src->ctx, "RPUSH stays:list a b c");
    redis_fixture_exec(src->ctx, "PEXPIREAT stays:list %lld", t0 + 3600123);
    redis_fixture_exec(src->ctx, "SET stays:forever v");
    redis_fixture_exec(src->ctx, "SAVE");
    char dump[128], copy[128];
    redis_fixture_path(src, "dump.rdb", dump, sizeof(dump));
    redis_fixture_path(src, "copy.rdb", copy, sizeof(copy));
    copy_file(dump, copy);

    long long wait = t0 + 2100 - fixture_now_ms();
    if (wait > 0)
        usleep((useconds_t)wait * 1000);
    struct redis_model want;
    redis_model_from_server(&want, src->ctx); /* SCAN drops the expired keys */
    cr_assert(redis_model_count(&want, MODEL_DBS) == 3);

    const char *const *modes[] = {auto_mode, native_mode};
    for (size_t m = 0; m < 2; m++) {
        const char *what = m == 0 ? "restore copy.rdb" : "restore copy.rdb --restore never";
        reset_target(dst);
        struct program_result r;
        run_restore(copy, NULL, dst, modes[m], &r);
        assert_applied(&r, what);
        cr_assert(strstr(r.err, " 2 expired") != NULL,
                  "%s: the report does not count 2 expired keys:\n%s", what, r.err);
        program_result_deinit(&r);

        redisReply *e = redis_fixture_command(dst->ctx, "EXISTS gone:str gone:hash");
        cr_assert(e->integer == 0, "%s: the target has %lld of the expired keys", what, e->integer);
        freeReplyObject(e);
        struct redis_model got;
        redis_model_from_server(&got, dst->ctx);
        struct model_diff *d = malloc(sizeof(*d));
        cr_assert(d != NULL);
        redis_model_compare(&got, &want, fixture_now_ms(), d);
        cr_assert(d->differences == 0, "%s: %zu keys differ:\n%s", what, d->differences, d->report);
        free(d);
        const struct model_key *k = redis_model_find(&got, 0, "stays:list", 10);
        cr_assert(k != NULL && k->expire_ms == t0 + 3600123,
                  "%s: stays:list has PEXPIRETIME %lld, expected %lld", what,
                  k ? (long long)k->expire_ms : -2, t0 + 3600123);
        redis_model_free(&got);
    }
    redis_model_free(&want);
}
