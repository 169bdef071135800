/* test_sync.c - `ringsync sync` copies a live source's snapshot into a target,
 * with real redis-server processes on both sides.
 *
 * The source holds the sample of fill_sample.h (every type and encoding Redis
 * 7.0 writes, with zset:200k and hash:200k added, so that each collection type
 * has a value past the decoder's 512 KiB raw limit), and one target receives
 * it over and over: with --workers 1 and 2, through the cheapest-command path
 * (RESTORE for small values) and with --restore never (every value through
 * native commands), from a diskless source and from one that writes its
 * snapshot to disk first. The target is emptied between runs.
 *
 * The oracle is the source itself. After each run the target must hold:
 *   - the same model (redis_model.h): every key of the 16 databases with its
 *     type, value, and PEXPIRETIME exactly, stream groups, PELs and consumers;
 *   - the same DEBUG DIGEST-VALUE for every key, and the same DEBUG DIGEST for
 *     the whole data set;
 *   - the same FUNCTION LIST WITHCODE.
 *
 * One thing native commands cannot reproduce: a consumer's seen-time. XCLAIM
 * and XGROUP CREATECONSUMER stamp it with the target's clock, so under
 * --restore never the consumers' seen-times are left out of the model
 * comparison (and only there). Redis 7.0's DEBUG DIGEST-VALUE of a stream
 * covers its entries, not its groups, so the digests are compared for every
 * key in both modes, and the groups through the model.
 *
 * The first run also proves the comparisons can fail: a changed list element
 * and a changed expiry on the target must be seen by both.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "fill_sample.h"
#include "dataset_compare.h"
#include "redis_fixture.h"
#include "redis_model.h"

#define SYNC_TIMEOUT_MS   120000
#define RAW_LIMIT_BYTES   (512 * 1024) /* rdb_decoder_config.raw_max's default */
#define DIGEST_BATCH_KEYS 200
#define CHUNK_MAX_ITEMS   1000 /* a native chunk holds "a few hundred" elements at most */

TestSuite(sync, .fini = redis_fixture_stop_all, .timeout = 300);

/* ---------------------------------------------------------------- running ringsync */

struct variant {
    const char *workers;
    bool is_native; /* --restore never */
};

static void run_sync(const struct redis_fixture *src, const struct redis_fixture *dst,
                     const struct variant *v, struct program_result *r)
{
    char source[64], target[64];
    snprintf(source, sizeof(source), "redis://127.0.0.1:%d", src->port);
    snprintf(target, sizeof(target), "redis://127.0.0.1:%d", dst->port);
    const char *argv[16];
    int argc = 0;
    argv[argc++] = fixture_env("RS_RINGSYNC");
    argv[argc++] = "sync";
    argv[argc++] = "--snapshot-only"; /* the stream is test_stream.c's */
    argv[argc++] = "--source";
    argv[argc++] = source;
    argv[argc++] = "--target";
    argv[argc++] = target;
    argv[argc++] = "--workers";
    argv[argc++] = v->workers;
    if (v->is_native) {
        argv[argc++] = "--restore";
        argv[argc++] = "never";
    }
    argv[argc] = NULL;
    int rc = program_run(argv, NULL, NULL, SYNC_TIMEOUT_MS, r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
    char st[64];
    cr_assert(r->exited && r->exit_code == 0, "sync --workers %s%s ended with %s; stderr:\n%s",
              v->workers, v->is_native ? " --restore never" : "",
              program_result_describe(r, st, sizeof(st)), r->err);
    cr_assert(strstr(r->err, "snapshot applied") != NULL,
              "sync --workers %s exited 0 without \"snapshot applied\"; stderr:\n%s", v->workers,
              r->err);
}

/* Empties the target between runs: keys, functions, scripts, command stats. */
static void reset_target(struct redis_fixture *dst)
{
    redis_fixture_exec(dst->ctx, "FLUSHALL");
    redis_fixture_exec(dst->ctx, "FUNCTION FLUSH");
    redis_fixture_exec(dst->ctx, "SCRIPT FLUSH");
    redis_fixture_exec(dst->ctx, "CONFIG RESETSTAT");
}

/* ---------------------------------------------------------------- comparing */

static char *function_list(redisContext *c)
{
    redisReply *r = redis_fixture_command(c, "FUNCTION LIST WITHCODE");
    char *s = redis_fixture_reply_canonical(r);
    freeReplyObject(r);
    return s;
}

/* Compares DEBUG DIGEST-VALUE of every key of want (a model of src) on both
 * servers; returns how many keys differ, the first ones named in report. */
static size_t count_digest_value_differences(redisContext *src, redisContext *dst,
                                             const struct redis_model *want, char *report,
                                             size_t report_cap)
{
    size_t differences = 0, used = 0;
    report[0] = '\0';
    const char *argv[2 + DIGEST_BATCH_KEYS];
    size_t lens[2 + DIGEST_BATCH_KEYS];
    argv[0] = "DEBUG";
    lens[0] = 5;
    argv[1] = "DIGEST-VALUE";
    lens[1] = 12;
    for (unsigned db = 0; db < MODEL_DBS; db++) {
        const struct model_db *d = &want->dbs[db];
        if (d->nkeys == 0)
            continue;
        redis_fixture_exec(src, "SELECT %u", db);
        redis_fixture_exec(dst, "SELECT %u", db);
        for (size_t i = 0; i < d->nkeys; i += DIGEST_BATCH_KEYS) {
            size_t n = d->nkeys - i < DIGEST_BATCH_KEYS ? d->nkeys - i : DIGEST_BATCH_KEYS;
            for (size_t k = 0; k < n; k++) {
                argv[2 + k] = d->keys[i + k].key.p;
                lens[2 + k] = d->keys[i + k].key.len;
            }
            redisReply *a = redis_fixture_command_argv(src, (int)(2 + n), argv, lens);
            redisReply *b = redis_fixture_command_argv(dst, (int)(2 + n), argv, lens);
            cr_assert(a->type == REDIS_REPLY_ARRAY && b->type == REDIS_REPLY_ARRAY &&
                      a->elements == n && b->elements == n);
            for (size_t k = 0; k < n; k++) {
                if (strcmp(a->element[k]->str, b->element[k]->str) == 0)
                    continue;
                differences++;
                char key[128];
                model_escape(key, sizeof(key), argv[2 + k], lens[2 + k], 60);
                int w = snprintf(report + used, report_cap - used,
                                 "db %u key '%s': source digest %s, target %s\n", db, key,
                                 a->element[k]->str, b->element[k]->str);
                if (w > 0 && (size_t)w < report_cap - used)
                    used += (size_t)w;
            }
            freeReplyObject(a);
            freeReplyObject(b);
        }
    }
    redis_fixture_exec(src, "SELECT 0");
    redis_fixture_exec(dst, "SELECT 0");
    return differences;
}

/* What the source holds, taken once. */
struct source_state {
    struct redis_model model;
    struct redis_model model_no_seen; /* consumers' seen-times left out */
    char digest[64];
    char *functions;
    long long small_collections; /* keys that are not strings nor past the raw limit */
};

static void source_state_take(struct source_state *s, struct redis_fixture *src,
                              const struct fill_sample_opts *fo)
{
    memset(s, 0, sizeof(*s));
    redis_model_from_server(&s->model, src->ctx);
    fill_sample_assert_reached(&s->model, fo);
    redis_model_from_server(&s->model_no_seen, src->ctx);
    dataset_forget_consumer_times(&s->model_no_seen);
    dataset_digest(src->ctx, s->digest, sizeof(s->digest));
    s->functions = function_list(src->ctx);
    for (unsigned db = 0; db < MODEL_DBS; db++)
        for (size_t i = 0; i < s->model.dbs[db].nkeys; i++) {
            const struct model_key *k = &s->model.dbs[db].keys[i];
            if (k->type != MODEL_STRING && strstr(k->key.p, ":200k") == NULL)
                s->small_collections++;
        }
    cr_assert(strstr(s->functions, "mylib") && strstr(s->functions, "otherlib"),
              "the source has no function libraries: %s", s->functions);
}

static void source_state_free(struct source_state *s)
{
    redis_model_free(&s->model);
    redis_model_free(&s->model_no_seen);
    free(s->functions);
}

/* The target equals the source: model, digest of every key, digest of all,
 * function libraries. */
static void assert_target_equals_source(struct redis_fixture *src, struct redis_fixture *dst,
                                        const struct source_state *s, const struct variant *v)
{
    char what[64];
    snprintf(what, sizeof(what), "--workers %s%s", v->workers,
             v->is_native ? " --restore never" : "");

    struct redis_model got;
    redis_model_from_server(&got, dst->ctx);
    if (v->is_native)
        dataset_forget_consumer_times(&got);
    struct model_diff *d = malloc(sizeof(*d));
    cr_assert(d != NULL);
    redis_model_compare(&got, v->is_native ? &s->model_no_seen : &s->model, fixture_now_ms(), d);
    cr_assert(d->differences == 0 && d->expired_absent == 0,
              "%s: the target differs from the source in %zu keys (%zu compared, %zu absent as "
              "expired):\n%s",
              what, d->differences, d->keys_compared, d->expired_absent, d->report);
    cr_assert(redis_model_count(&got, MODEL_DBS) == redis_model_count(&s->model, MODEL_DBS));
    free(d);
    redis_model_free(&got);

    char report[4096];
    size_t n =
        count_digest_value_differences(src->ctx, dst->ctx, &s->model, report, sizeof(report));
    cr_assert(n == 0, "%s: DEBUG DIGEST-VALUE differs for %zu keys:\n%s", what, n, report);

    char digest[64];
    dataset_digest(dst->ctx, digest, sizeof(digest));
    cr_assert(strcmp(digest, s->digest) == 0, "%s: DEBUG DIGEST: source %s, target %s", what,
              s->digest, digest);

    char *functions = function_list(dst->ctx);
    cr_assert(strcmp(functions, s->functions) == 0,
              "%s: FUNCTION LIST differs:\nsource %s\ntarget %s", what, s->functions, functions);
    free(functions);
}

/* ---------------------------------------------------------------- which path */

/* INFO commandstats' calls of cmd (lower case), 0 when never called. */
static long long command_calls(redisContext *c, const char *cmd)
{
    char field[64], val[256];
    snprintf(field, sizeof(field), "cmdstat_%s", cmd);
    if (!redis_fixture_info(c, "commandstats", field, val, sizeof(val)))
        return 0;
    long long calls = 0;
    cr_assert(sscanf(val, "calls=%lld", &calls) == 1, "%s: %s", field, val);
    return calls;
}

/* The big values are past the raw limit, so even the RESTORE path must have
 * sent them as native chunks. */
static void assert_source_has_values_past_the_raw_limit(redisContext *src)
{
    static const char *const keys[] = {"list:200k", "set:200k", "zset:200k", "hash:200k",
                                       "str:8mib"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        redisReply *r = redis_fixture_command(src, "DUMP %s", keys[i]);
        cr_assert(r->type == REDIS_REPLY_STRING && r->len > RAW_LIMIT_BYTES,
                  "DUMP %s is %zu bytes, not past the %d-byte raw limit: the test would not "
                  "exercise the native chunks",
                  keys[i], r->len, RAW_LIMIT_BYTES);
        freeReplyObject(r);
    }
}

static void assert_paths_taken(redisContext *dst, const struct variant *v,
                               const struct source_state *s)
{
    /* Each 200k collection in chunks of at most CHUNK_MAX_ITEMS elements. */
    static const char *const chunked[] = {"rpush", "sadd", "zadd", "hset"};
    long long min_calls = FILL_SAMPLE_BIG_N / CHUNK_MAX_ITEMS;
    for (size_t i = 0; i < sizeof(chunked) / sizeof(chunked[0]); i++) {
        long long calls = command_calls(dst, chunked[i]);
        cr_assert(calls >= min_calls,
                  "--workers %s%s: the target saw %lld %s calls; a 200k-element value in "
                  "bounded chunks needs at least %lld",
                  v->workers, v->is_native ? " --restore never" : "", calls, chunked[i], min_calls);
    }
    long long pieces = command_calls(dst, "append") + command_calls(dst, "setrange");
    cr_assert(pieces > 0, "the 8 MiB string was not written in pieces (no APPEND, no SETRANGE)");
    long long restores = command_calls(dst, "restore");
    if (v->is_native)
        cr_assert(restores == 0, "--restore never, yet the target saw %lld RESTORE calls",
                  restores);
    else
        cr_assert(restores >= s->small_collections,
                  "the cheapest-command path sent %lld RESTOREs for %lld small collections",
                  restores, s->small_collections);
}

/* ---------------------------------------------------------------- proving it can fail */

/* Two deliberate changes on the target, a value and an expiry: the model sees
 * both, DEBUG DIGEST-VALUE the value, DEBUG DIGEST either. */
static void assert_comparisons_catch_a_change(struct redis_fixture *src, struct redis_fixture *dst,
                                              const struct source_state *s)
{
    redis_fixture_exec(dst->ctx, "LSET list:200k 123456 changed");
    redisReply *r = redis_fixture_command(dst->ctx, "PEXPIRETIME exp:set");
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer > 0);
    redis_fixture_exec(dst->ctx, "PEXPIREAT exp:set %lld", r->integer + 1);
    freeReplyObject(r);

    struct redis_model got;
    redis_model_from_server(&got, dst->ctx);
    struct model_diff *d = malloc(sizeof(*d));
    cr_assert(d != NULL);
    redis_model_compare(&got, &s->model, fixture_now_ms(), d);
    cr_assert(d->differences == 2, "the model saw %zu differences of 2 made:\n%s", d->differences,
              d->report);
    free(d);
    redis_model_free(&got);

    char report[4096];
    size_t n =
        count_digest_value_differences(src->ctx, dst->ctx, &s->model, report, sizeof(report));
    /* DIGEST-VALUE is the value alone; the expiry is in DEBUG DIGEST. */
    cr_assert(n == 1 && strstr(report, "'list:200k'") != NULL,
              "DEBUG DIGEST-VALUE saw %zu differences, expected list:200k's:\n%s", n, report);
    char digest[64];
    dataset_digest(dst->ctx, digest, sizeof(digest));
    cr_assert(strcmp(digest, s->digest) != 0, "DEBUG DIGEST did not change");
}

/* ---------------------------------------------------------------- the tests */

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

static void sync_every_type(const char *const *source_args, const struct variant *variants,
                            size_t nvariants, bool prove_it_can_fail)
{
    struct fill_sample_opts fo = {.has_big_zset_and_hash = true};
    struct redis_fixture_opts so = {.extra_args = source_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture_opts to = {.extra_args = debug_args};
    struct redis_fixture *dst = redis_fixture_start(&to);
    fill_sample(src, &fo);
    assert_source_has_values_past_the_raw_limit(src->ctx);

    struct source_state s = {0};
    for (size_t i = 0; i < nvariants; i++) {
        const struct variant *v = &variants[i];
        if (i > 0)
            reset_target(dst);
        struct program_result r;
        run_sync(src, dst, v, &r);
        if (i == 0) {
            /* The source has not touched its expired keys yet: the snapshot
             * holds them, and ringsync must have skipped them. Taking the
             * model (SCAN) makes the source drop them, so it comes after. */
            char want[64];
            snprintf(want, sizeof(want), " %d expired", FILL_SAMPLE_EXPIRED_KEYS);
            cr_assert(strstr(r.err, want) != NULL, "the report does not say%s (skipped keys):\n%s",
                      want, r.err);
            source_state_take(&s, src, &fo);
        }
        program_result_deinit(&r);
        assert_target_equals_source(src, dst, &s, v);
        assert_paths_taken(dst->ctx, v, &s);
        if (i == 0 && prove_it_can_fail)
            assert_comparisons_catch_a_change(src, dst, &s);
    }
    source_state_free(&s);
}

Test(sync, every_type_reaches_the_target_from_a_diskless_source)
{
    static const char *const args[] = {"--enable-debug-command",
                                       "yes",
                                       "--repl-diskless-sync",
                                       "yes",
                                       "--repl-diskless-sync-delay",
                                       "0",
                                       NULL};
    static const struct variant variants[] = {
        {"1", false},
        {"2", false},
        {"2", true},
        {"1", true},
    };
    sync_every_type(args, variants, sizeof(variants) / sizeof(variants[0]), true);
}

Test(sync, every_type_reaches_the_target_from_a_disk_snapshot)
{
    static const char *const args[] = {"--enable-debug-command",
                                       "yes",
                                       "--repl-diskless-sync",
                                       "no",
                                       "--repl-diskless-sync-delay",
                                       "0",
                                       NULL};
    static const struct variant variants[] = {
        {"2", false},
        {"1", true},
    };
    sync_every_type(args, variants, sizeof(variants) / sizeof(variants[0]), false);
}

/* A PEL may name an entry deleted since it was delivered (XDEL after
 * XREADGROUP). Redis 7.0's XCLAIM ... FORCE skips ids that are not in the
 * stream, so the native path must bring that pending entry over some other
 * way (or at least say it could not): the PEL must not shrink silently. */
Test(sync, a_pending_entry_whose_stream_entry_was_deleted_is_kept)
{
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&o);
    struct redis_fixture *dst = redis_fixture_start(&o);
    redis_fixture_exec(src->ctx, "XADD s 1-1 f 1");
    redis_fixture_exec(src->ctx, "XADD s 1-2 f 2");
    redis_fixture_exec(src->ctx, "XADD s 1-3 f 3");
    redis_fixture_exec(src->ctx, "XGROUP CREATE s g 0");
    redis_fixture_exec(src->ctx, "XREADGROUP GROUP g alice COUNT 3 STREAMS s >");
    redis_fixture_exec(src->ctx, "XDEL s 1-2");
    struct redis_model want;
    redis_model_from_server(&want, src->ctx);
    dataset_forget_consumer_times(&want);

    static const struct variant variants[] = {{"1", false}, {"1", true}};
    for (size_t i = 0; i < 2; i++) {
        const struct variant *v = &variants[i];
        reset_target(dst);
        struct program_result r;
        run_sync(src, dst, v, &r);
        program_result_deinit(&r);
        redisReply *p = redis_fixture_command(dst->ctx, "XPENDING s g");
        cr_assert(p->type == REDIS_REPLY_ARRAY && p->elements == 4 && p->element[0]->integer == 3,
                  "--restore %s: the target's PEL holds %lld entries, the source's 3",
                  v->is_native ? "never" : "auto", p->elements ? p->element[0]->integer : -1);
        freeReplyObject(p);
        struct redis_model got;
        redis_model_from_server(&got, dst->ctx);
        dataset_forget_consumer_times(&got);
        struct model_diff *d = malloc(sizeof(*d));
        cr_assert(d != NULL);
        redis_model_compare(&got, &want, fixture_now_ms(), d);
        cr_assert(d->differences == 0, "--restore %s:\n%s", v->is_native ? "never" : "auto",
                  d->report);
        free(d);
        redis_model_free(&got);
    }
    redis_model_free(&want);
}
