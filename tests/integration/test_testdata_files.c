/* test_testdata_files.c - `ringsync inspect` on the RDB files of Redis's own
 * test suite ($RS_TESTDATA/rdb, see its README.md), with redis-server 7.0 as
 * the oracle.
 *
 * A valid file is copied into a fresh server's directory as dump.rdb before
 * the server starts, so the server loads it; the server's data set must then
 * equal what inspect prints of the same file, key by key. Keys whose expiry
 * is already past are in the file but not loaded: they are expected absent,
 * and their number must be the "keys expired" of the server's load log.
 *
 * The corrupt files: corrupt_ziplist.rdb, which Redis refuses to load, must
 * make inspect exit 1 with a format error that names the ziplist (and never
 * crash); corrupt_empty_keys.rdb, which Redis 7.0 loads by skipping each empty
 * key with a log line ("rdbLoadObject skipping empty key: NAME"), must make
 * inspect list the same (no) keys and warn about each key Redis skipped.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "redis_fixture.h"
#include "redis_model.h"

#define INSPECT_TIMEOUT 60000

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

static void run_inspect(const char *file, const char *out_path, struct program_result *r)
{
    const char *argv[] = {fixture_env("RS_RINGSYNC"), "inspect", file, NULL};
    int rc = program_run(argv, NULL, out_path, INSPECT_TIMEOUT, r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
}

/* The "keys loaded: N, keys expired: M" of the server's load log line. */
static void load_counts(const struct redis_fixture *f, long long *loaded, long long *expired,
                        long long *empty_skipped)
{
    char path[128];
    char *log = fixture_read_file(redis_fixture_path(f, "redis.log", path, sizeof(path)), NULL);
    cr_assert(log != NULL, "cannot read %s", path);
    const char *at = strstr(log, "Done loading RDB, keys loaded: ");
    cr_assert(at != NULL, "no 'Done loading RDB' line in the server log:\n%s", log);
    *empty_skipped = 0;
    int n = sscanf(at,
                   "Done loading RDB, keys loaded: %lld, keys expired: %lld, empty keys "
                   "skipped: %lld",
                   loaded, expired, empty_skipped);
    cr_assert(n >= 2, "cannot read the counts of: %.120s", at);
    free(log);
}

/* Loads name into a server and into inspect and compares the two. */
static void check_file_against_redis(const char *name, bool expect_keys)
{
    char rdb[512];
    testdata_path(name, rdb, sizeof(rdb));
    struct redis_fixture_opts opts = {.load_rdb = rdb};
    struct redis_fixture *f = redis_fixture_start(&opts);

    long long loaded, expired, skipped;
    load_counts(f, &loaded, &expired, &skipped);
    struct redis_model server, file;
    redis_model_from_server(&server, f->ctx);
    cr_assert(!expect_keys || redis_model_count(&server, MODEL_DBS) > 0,
              "%s: the server loaded no keys: the test would prove nothing", name);

    char out[128];
    redis_fixture_path(f, "inspect.jsonl", out, sizeof(out));
    struct program_result r;
    run_inspect(rdb, out, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 0, "%s: ringsync inspect ended with %s; stderr:\n%s", name,
              program_result_describe(&r, st, sizeof(st)), r.err);
    program_result_deinit(&r);

    char why[1024];
    cr_assert(redis_model_from_inspect_file(&file, out, why, sizeof(why)) == 0, "%s: %s", name,
              why);
    struct model_diff d;
    redis_model_compare(&server, &file, fixture_now_ms(), &d);
    cr_assert(d.differences == 0, "%s: %zu keys differ between redis-server and inspect:\n%s", name,
              d.differences, d.report);
    cr_assert((long long)d.expired_absent == expired,
              "%s: %zu keys of inspect's are expired and absent, the server log says it "
              "skipped %lld expired keys:\n%s",
              name, d.expired_absent, expired, d.report);
    cr_assert((long long)redis_model_count(&server, MODEL_DBS) == loaded,
              "%s: %zu keys on the server, its log says %lld loaded", name,
              redis_model_count(&server, MODEL_DBS), loaded);
    if (d.expired_absent > 0)
        cr_log_info("%s: %zu keys expired in the file:\n%s", name, d.expired_absent, d.report);
    redis_model_free(&server);
    redis_model_free(&file);
}

TestSuite(testdata_files, .fini = redis_fixture_stop_all, .timeout = 60);

Test(testdata_files, encodings_rdb_matches_redis)
{
    check_file_against_redis("encodings.rdb", true);
}

Test(testdata_files, hash_zipmap_rdb_matches_redis)
{
    check_file_against_redis("hash-zipmap.rdb", true);
}

Test(testdata_files, list_quicklist_rdb_matches_redis)
{
    check_file_against_redis("list-quicklist.rdb", true);
}

Test(testdata_files, hash_ziplist_rdb_matches_redis)
{
    check_file_against_redis("hash-ziplist.rdb", true);
}

Test(testdata_files, zset_ziplist_rdb_matches_redis)
{
    check_file_against_redis("zset-ziplist.rdb", true);
}

/* The file's only content beside the AUX fields is a Lua script in an AUX
 * field ("lua"), which Redis 7.0 ignores: no keys either side. */
Test(testdata_files, scriptbackup_rdb_matches_redis)
{
    check_file_against_redis("scriptbackup.rdb", false);
}

static bool matches(const char *pattern, const char *text)
{
    regex_t re;
    cr_assert(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) == 0, "bad regex %s",
              pattern);
    bool m = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

Test(testdata_files, corrupt_ziplist_is_a_format_error_not_a_crash)
{
    char rdb[512];
    testdata_path("corrupt_ziplist.rdb", rdb, sizeof(rdb));

    /* The oracle: Redis refuses the file too. */
    char why[2048];
    struct redis_fixture_opts opts = {.load_rdb = rdb};
    struct redis_fixture *f = redis_fixture_try_start(&opts, why, sizeof(why));
    cr_assert(f == NULL, "redis-server loaded corrupt_ziplist.rdb: the file is not corrupt");
    cr_assert(strstr(why, "ziplist") != NULL, "redis-server refused it for another reason: %s",
              why);

    char out[] = "/tmp/rs-inspect-out-XXXXXX";
    int fd = mkstemp(out);
    cr_assert(fd >= 0);
    close(fd);
    struct program_result r;
    run_inspect(rdb, out, &r);
    unlink(out);
    char st[64];
    cr_assert(r.exited, "ringsync inspect crashed: %s; stderr:\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err);
    cr_assert(r.exit_code == 1, "ringsync inspect exited %d, expected 1; stderr:\n%s", r.exit_code,
              r.err);
    cr_assert(matches("^ringsync: inspect: .+: format error at offset [0-9]+: .*ziplist", r.err),
              "no 'ringsync: inspect: FILE: format error at offset N: ...ziplist...' line on "
              "stderr:\n%s",
              r.err);
    program_result_deinit(&r);
}

Test(testdata_files, corrupt_empty_keys_are_skipped_like_redis_does)
{
    char rdb[512];
    testdata_path("corrupt_empty_keys.rdb", rdb, sizeof(rdb));
    struct redis_fixture_opts opts = {.load_rdb = rdb};
    struct redis_fixture *f = redis_fixture_start(&opts);
    long long loaded, expired, skipped;
    load_counts(f, &loaded, &expired, &skipped);
    cr_assert(skipped > 0, "Redis skipped no empty key: the test would prove nothing");

    struct redis_model server, file;
    redis_model_from_server(&server, f->ctx);
    char out[128];
    redis_fixture_path(f, "inspect.jsonl", out, sizeof(out));
    struct program_result r;
    run_inspect(rdb, out, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 0,
              "Redis loads this file (skipping its empty keys), so must inspect; it ended with "
              "%s; stderr:\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err);
    char why[1024];
    cr_assert(redis_model_from_inspect_file(&file, out, why, sizeof(why)) == 0, "%s", why);
    struct model_diff d;
    redis_model_compare(&server, &file, fixture_now_ms(), &d);
    cr_assert(d.differences == 0, "%zu keys differ between redis-server and inspect:\n%s",
              d.differences, d.report);

    /* Each key Redis logged as skipped has its warning, and no other. */
    char path[128];
    char *log = fixture_read_file(redis_fixture_path(f, "redis.log", path, sizeof(path)), NULL);
    cr_assert(log != NULL);
    static const char marker[] = "rdbLoadObject skipping empty key: ";
    long long names = 0;
    for (const char *at = strstr(log, marker); at != NULL; at = strstr(at, marker)) {
        at += strlen(marker);
        char name[128], type[16];
        size_t len = strcspn(at, "\r\n");
        cr_assert(len < sizeof(name));
        memcpy(name, at, len);
        name[len] = '\0';
        /* The file names each key after its type: "set", "zset_listpack", ... */
        size_t tlen = strcspn(name, "_");
        cr_assert(tlen < sizeof(type));
        memcpy(type, name, tlen);
        type[tlen] = '\0';
        char pattern[512];
        snprintf(pattern, sizeof(pattern),
                 "^ringsync: inspect: skipping empty %s key '%s' in db 0 at offset [0-9]+ "
                 "\\(Redis skips it too\\)$",
                 type, name);
        cr_assert(matches(pattern, r.err), "no warning for the empty key '%s' (%s); stderr:\n%s",
                  name, pattern, r.err);
        names++;
    }
    cr_assert(names == skipped, "the log names %lld skipped keys, its count says %lld", names,
              skipped);
    long long warnings = 0;
    for (const char *at = strstr(r.err, "skipping empty "); at != NULL;
         at = strstr(at + 1, "skipping empty "))
        warnings++;
    cr_assert(warnings == skipped, "inspect warned about %lld empty keys, Redis skipped %lld:\n%s",
              warnings, skipped, r.err);
    free(log);
    program_result_deinit(&r);
    redis_model_free(&server);
    redis_model_free(&file);
}
