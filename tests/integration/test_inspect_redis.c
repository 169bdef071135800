/* test_inspect_redis.c - `ringsync inspect` against files a real Redis wrote.
 *
 * A redis-server is filled with every type and encoding Redis 7.0 writes, it
 * SAVEs, and `ringsync inspect` reads the dump.rdb. The oracle is the server:
 * its data set (SCAN, TYPE, values, PEXPIRETIME, XINFO STREAM FULL, FUNCTION
 * LIST) must equal, key by key, what inspect printed; and a second server that
 * loads the same file must hold it too.
 *
 * What the fill covers (Redis 7.0 in-memory encoding -> RDB type):
 *   strings  int / embstr / raw -> string: ints of 8, 16, 32 bits and wider,
 *            non-canonical ints, LZF-compressible, random binary, 1 MiB random,
 *            an 8 MiB text; a key of all 256 byte values; a 10 kB key
 *   lists    quicklist -> list-quicklist-2: 5 elements, listpack ints and
 *            string lengths at the encoding boundaries, 1000 random binary
 *            elements (raw nodes), 200k elements with list-compress-depth 1
 *            (LZF nodes), PLAIN nodes (DEBUG QUICKLIST-PACKED-THRESHOLD)
 *   sets     intset (16, 32, 64 bits) -> set-intset; hashtable -> set-hashtable
 *            (strings, 1000 ints, 200k members)
 *   zsets    listpack -> zset-listpack; skiplist -> zset-skiplist-2 (> 128
 *            members, or a member > 64 bytes): fractional, negative, huge,
 *            denormal and infinite scores
 *   hashes   listpack -> hash-listpack; hashtable -> hash-hashtable (> 512
 *            fields, or a value > 64 bytes)
 *   streams  -> stream-listpacks-2: > 100 entries (several nodes), XDEL,
 *            different field sets, XTRIM, all entries deleted, no entries;
 *            groups with PELs of two consumers, XACK, re-delivery, XCLAIM,
 *            a group never read (entries_read null)
 *   expiries far in the future on every type; keys already expired when
 *            saved (active expiry off): in the file, not loaded by Redis
 *   keys in all 16 databases; two function libraries
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

#include "redis_fixture.h"
#include "redis_model.h"

#define BIG_N           200000
#define EIGHT_MIB       ((size_t)8 << 20)
#define FAR_FUTURE_MS   4102444800123LL /* 2100-01-01T00:00:00.123Z */
#define CMD_MAX_ARGS    256
#define INSPECT_TIMEOUT 60000

static const char lib_mylib[] =
    "#!lua name=mylib\n"
    "redis.register_function('myfunc', function(keys, args) return args[1] end)";
static const char lib_other[] =
    "#!lua name=otherlib\n"
    "local function helper() return 'x' end\n"
    "redis.register_function{function_name='other', "
    "callback=function(keys, args) return helper() end, flags={'no-writes'}}";

/* ---------------------------------------------------------------- building commands */

/* A deterministic byte source (xorshift64*). */
struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

static void rng_fill(struct rng *r, char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(rng_next(r) >> 56);
}

/* One command with owned arguments. */
struct cmd {
    int argc;
    const char *argv[CMD_MAX_ARGS];
    size_t argvlen[CMD_MAX_ARGS];
};

static void cmd_arg(struct cmd *c, const void *p, size_t len)
{
    cr_assert(c->argc < CMD_MAX_ARGS, "too many arguments");
    char *copy = malloc(len + 1);
    cr_assert(copy != NULL);
    if (len > 0)
        memcpy(copy, p, len);
    copy[len] = '\0';
    c->argv[c->argc] = copy;
    c->argvlen[c->argc++] = len;
}

static void cmd_str(struct cmd *c, const char *s)
{
    cmd_arg(c, s, strlen(s));
}

static void cmd_fmt(struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cmd_fmt(struct cmd *c, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(buf));
    cmd_arg(c, buf, (size_t)n);
}

static void cmd_begin(struct cmd *c, const char *name, const char *key)
{
    c->argc = 0;
    cmd_str(c, name);
    if (key != NULL)
        cmd_str(c, key);
}

static void cmd_send(struct cmd *c, struct redis_pipeline *p)
{
    redis_pipeline_append_argv(p, c->argc, c->argv, c->argvlen);
    for (int i = 0; i < c->argc; i++)
        free((void *)c->argv[i]);
    c->argc = 0;
}

/* Sends `name key` + the arguments from gen(i, ...) for i in [0, n), in
 * commands of at most per_cmd elements (each element gen_args arguments). */
typedef void (*gen_fn)(struct cmd *c, size_t i, struct rng *r);

static void send_many(struct redis_pipeline *p, const char *name, const char *key, size_t n,
                      size_t per_cmd, gen_fn gen, struct rng *r)
{
    struct cmd c = {0};
    for (size_t i = 0; i < n;) {
        cmd_begin(&c, name, key);
        for (size_t k = 0; k < per_cmd && i < n; k++, i++)
            gen(&c, i, r);
        cmd_send(&c, p);
    }
}

static void gen_element(struct cmd *c, size_t i, struct rng *r)
{
    (void)r;
    cmd_fmt(c, "element:%zu", i);
}

static void gen_random_binary(struct cmd *c, size_t i, struct rng *r)
{
    (void)i;
    char buf[101];
    size_t len = (size_t)(rng_next(r) % sizeof(buf));
    rng_fill(r, buf, len);
    cmd_arg(c, buf, len);
}

static void gen_member(struct cmd *c, size_t i, struct rng *r)
{
    (void)r;
    cmd_fmt(c, "member:%zu", i);
}

static void gen_int_member(struct cmd *c, size_t i, struct rng *r)
{
    (void)r;
    cmd_fmt(c, "%lld", (long long)i * 7919 - 3000000);
}

static void gen_zset_member(struct cmd *c, size_t i, struct rng *r)
{
    (void)r;
    cmd_fmt(c, "%.17g", ((double)i - 150.0) * 0.1 + 1.0 / 3.0);
    cmd_fmt(c, "m%zu", i);
}

static void gen_hash_field(struct cmd *c, size_t i, struct rng *r)
{
    (void)r;
    cmd_fmt(c, "field:%zu", i);
    cmd_fmt(c, "value:%zu:%zu", i, i * i);
}

/* ---------------------------------------------------------------- the fill */

static void fill_strings(struct redis_pipeline *p, struct rng *r)
{
    static const char *const ints[][2] = {
        {"str:int:0", "0"},
        {"str:int:8", "-100"},
        {"str:int:16", "30000"},
        {"str:int:32", "-2000000000"},
        {"str:int:int32max", "2147483647"},
        {"str:int:wide", "12345678901"},
        {"str:int:int64max", "9223372036854775807"},
        {"str:int:int64min", "-9223372036854775808"},
        {"str:notint:overflow", "9223372036854775808"},
        {"str:notint:leading0", "007"},
        {"str:notint:minus0", "-0"},
        {"str:notint:space", " 1"},
        {"str:notint:float", "1.5"},
        {"str:empty", ""},
        {"str:short", "hello world"},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        redis_pipeline_append(p, "SET %s %s", ints[i][0], ints[i][1]);

    char small[4096];
    memset(small, 'a', 1000);
    for (size_t i = 1000; i < 2000; i++)
        small[i] = (char)('a' + i % 7);
    redis_pipeline_append(p, "SET str:compressible %b", small, (size_t)2000);
    rng_fill(r, small, sizeof(small));
    redis_pipeline_append(p, "SET str:binary %b", small, sizeof(small));
    redis_pipeline_append(p, "SET str:binary:short %b", small, (size_t)30);

    size_t big_len = (size_t)1 << 20;
    char *big = malloc(EIGHT_MIB);
    cr_assert(big != NULL);
    rng_fill(r, big, big_len);
    redis_pipeline_append(p, "SET str:random:1mib %b", big, big_len);
    size_t o = 0;
    for (size_t line = 0; o < EIGHT_MIB; line++) {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "line %08zu: the quick brown fox %zu jumps\n", line,
                         line * 2654435761u % 1000003);
        size_t take = EIGHT_MIB - o < (size_t)n ? EIGHT_MIB - o : (size_t)n;
        memcpy(big + o, buf, take);
        o += take;
    }
    redis_pipeline_append(p, "SET str:8mib %b", big, EIGHT_MIB);
    free(big);

    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    redis_pipeline_append(p, "SET %b all-byte-values-key", all, sizeof(all));
    redis_pipeline_append(p, "HSET %b f v", all + 1, sizeof(all) - 1);
    char longkey[10240];
    for (size_t i = 0; i < sizeof(longkey); i++)
        longkey[i] = (char)('A' + (rng_next(r) % 26));
    redis_pipeline_append(p, "SET %b long-key", longkey, sizeof(longkey));
}

static void fill_lists(struct redis_fixture *f, struct redis_pipeline *p, struct rng *r)
{
    static const char bin5[] = "\x00\xff\x01 bin";
    struct cmd c = {0};
    cmd_begin(&c, "RPUSH", "list:small");
    cmd_str(&c, "1");
    cmd_str(&c, "-2");
    cmd_str(&c, "foo");
    cmd_str(&c, "");
    cmd_arg(&c, bin5, sizeof(bin5) - 1);
    cmd_send(&c, p);

    static const char *const ints[] = {"0",
                                       "127",
                                       "-1",
                                       "4095",
                                       "-4096",
                                       "32767",
                                       "-32768",
                                       "8388607",
                                       "-8388608",
                                       "2147483647",
                                       "-2147483648",
                                       "9223372036854775807",
                                       "-9223372036854775808",
                                       "9223372036854775808",
                                       "+1",
                                       "01"};
    cmd_begin(&c, "RPUSH", "list:ints");
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        cmd_str(&c, ints[i]);
    cmd_send(&c, p);

    static const size_t lens[] = {0, 1, 63, 64, 4095, 4096, 5000};
    cmd_begin(&c, "RPUSH", "list:strlens");
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char buf[5000];
        for (size_t k = 0; k < lens[i]; k++)
            buf[k] = (char)('a' + (k * 31 + i) % 26);
        cmd_arg(&c, buf, lens[i]);
    }
    cmd_send(&c, p);

    send_many(p, "RPUSH", "list:1000", 1000, 100, gen_random_binary, r);

    /* Quicklist nodes kept LZF-compressed in memory, and so in the file. */
    redis_pipeline_flush(p);
    redis_fixture_exec(f->ctx, "CONFIG SET list-compress-depth 1");
    send_many(p, "RPUSH", "list:200k", BIG_N, 100, gen_element, r);
    redis_pipeline_flush(p);
    redis_fixture_exec(f->ctx, "CONFIG SET list-compress-depth 0");

    /* Elements over the threshold get PLAIN nodes of their own. */
    redis_fixture_exec(f->ctx, "DEBUG QUICKLIST-PACKED-THRESHOLD 1000");
    char big[5000];
    cmd_begin(&c, "RPUSH", "list:plain");
    cmd_str(&c, "small-1");
    memset(big, 'p', 2000);
    cmd_arg(&c, big, 2000);
    cmd_str(&c, "small-2");
    rng_fill(r, big, sizeof(big));
    cmd_arg(&c, big, sizeof(big));
    cmd_str(&c, "small-3");
    cmd_send(&c, p);
    redis_pipeline_flush(p);
    redis_fixture_exec(f->ctx, "DEBUG QUICKLIST-PACKED-THRESHOLD 1073741824");
}

static void fill_sets(struct redis_pipeline *p, struct rng *r)
{
    redis_pipeline_append(p, "SADD set:intset16 1 2 3 -5 100 30000 -32768");
    redis_pipeline_append(p, "SADD set:intset32 70000 -70000 1 2147483647 -2147483648");
    redis_pipeline_append(p, "SADD set:intset64 1 -1 4294967296 9223372036854775807 "
                             "-9223372036854775808");
    struct cmd c = {0};
    cmd_begin(&c, "SADD", "set:strings");
    for (int i = 0; i < 50; i++)
        cmd_fmt(&c, "s%d", i);
    cmd_arg(&c, "\x00nul", 4);
    cmd_arg(&c, "", 0);
    cmd_str(&c, "12");
    cmd_arg(&c, "\xff\xfe\x80", 3);
    cmd_send(&c, p);
    send_many(p, "SADD", "set:ints:1000", 1000, 100, gen_int_member, r);
    send_many(p, "SADD", "set:200k", BIG_N, 100, gen_member, r);
}

static void fill_zsets(struct redis_pipeline *p, struct rng *r)
{
    redis_pipeline_append(p, "ZADD zset:small 0 zero 1.5 one-and-half -2.25 neg "
                             "1e308 huge -1e-308 tiny-neg 3.141592653589793 pi "
                             "inf plus-inf -inf minus-inf 1e20 big 123456789012345678 bigint "
                             "5e-324 denormal 7 seven");
    redis_pipeline_append(p, "ZADD zset:small 0.1 %b 0.2 %b 0.3 %b", "\x01\xfe\x80member",
                          (size_t)9, "\x00", (size_t)1, "nul\x00member", (size_t)10);
    send_many(p, "ZADD", "zset:big", 300, 100, gen_zset_member, r);
    redis_pipeline_append(p, "ZADD zset:big +inf inf -inf -inf 1.7976931348623157e308 max "
                             "-1e300 neg-huge 4.9406564584124654e-324 min-denormal 0 zero "
                             "0.30000000000000004 point-three -0 minus-zero");
    char member[100];
    memset(member, 'z', sizeof(member));
    redis_pipeline_append(p, "ZADD zset:longmember 1 a 2 b 3 %b", member, sizeof(member));
}

static void fill_hashes(struct redis_pipeline *p, struct rng *r)
{
    redis_pipeline_append(p, "HSET hash:small f1 v1 f2 2 f3 -300000 f4 %b f5 %b empty-value %b",
                          "\x00\x01\xff", (size_t)3, "12345678901234567890", (size_t)20, "",
                          (size_t)0);
    redis_pipeline_append(p, "HSET hash:small %b binary-field", "\x01\x7f\x80\xfe", (size_t)4);
    redis_pipeline_append(p, "HSET hash:small %b nul-field %b nul-field-2", "\x00", (size_t)1,
                          "a\x00b", (size_t)3);
    redis_pipeline_append(p, "HSET hash:intfields 1 one -2 minus-two 1000000 million");
    send_many(p, "HSET", "hash:big", 1000, 100, gen_hash_field, r);
    char value[100];
    rng_fill(r, value, sizeof(value));
    redis_pipeline_append(p, "HSET hash:longvalue a 1 b %b c 3", value, sizeof(value));
}

static void fill_streams(struct redis_fixture *f, struct redis_pipeline *p)
{
    /* 350 entries in several listpack nodes (stream-node-max-entries 100):
     * most with fields a, b (same fields as the master entry), some with other
     * field sets. */
    for (int i = 1; i <= 350; i++) {
        if (i % 10 == 0)
            redis_pipeline_append(p, "XADD stream:big 1000-%d x %d", i, i);
        else if (i % 13 == 0)
            redis_pipeline_append(p, "XADD stream:big 1000-%d a %d b %d c %b", i, i, -i, "\x00\xff",
                                  (size_t)2);
        else
            redis_pipeline_append(p, "XADD stream:big 1000-%d a %d b value-%d", i, i, i);
    }
    for (int i = 7; i <= 350; i += 7)
        redis_pipeline_append(p, "XDEL stream:big 1000-%d", i);
    redis_pipeline_append(p, "XGROUP CREATE stream:big g1 0");
    redis_pipeline_append(p, "XGROUP CREATE stream:big g2 $");
    redis_pipeline_append(p, "XGROUP CREATE stream:big g3 1000-100");
    redis_pipeline_flush(p);

    redis_fixture_exec(f->ctx, "XREADGROUP GROUP g1 alice COUNT 20 STREAMS stream:big >");
    redis_fixture_exec(f->ctx, "XREADGROUP GROUP g1 bob COUNT 30 STREAMS stream:big >");
    redis_fixture_exec(f->ctx, "XACK stream:big g1 1000-1 1000-2 1000-3 1000-25");
    /* Re-delivery: alice's pending entries get delivery count 2. */
    redis_fixture_exec(f->ctx, "XREADGROUP GROUP g1 alice COUNT 5 STREAMS stream:big 0");
    redis_fixture_exec(f->ctx, "XCLAIM stream:big g1 carol 0 1000-30 1000-31");
    /* A PEL entry whose stream entry was deleted since. */
    redis_fixture_exec(f->ctx, "XDEL stream:big 1000-40");
    redis_fixture_exec(f->ctx, "XREADGROUP GROUP g3 dave COUNT 3 STREAMS stream:big >");

    redis_pipeline_append(p, "XGROUP CREATE stream:empty g $ MKSTREAM");
    redis_pipeline_append(p, "XADD stream:alldeleted 5-1 a 1");
    redis_pipeline_append(p, "XADD stream:alldeleted 5-2 a 2");
    redis_pipeline_append(p, "XDEL stream:alldeleted 5-1 5-2");
    for (int i = 1; i <= 200; i++)
        redis_pipeline_append(p, "XADD stream:trimmed * n %d", i);
    redis_pipeline_append(p, "XTRIM stream:trimmed MAXLEN 50");
    redis_pipeline_append(p, "XADD stream:binary 1-1 %b %b", "\x01\xff", (size_t)2, "\x00\x00\x80",
                          (size_t)3);
    redis_pipeline_append(p, "XADD stream:binary 1-2 %b %b", "\x01\xff", (size_t)2, "", (size_t)0);
    redis_pipeline_flush(p);
}

static void fill_expiries(struct redis_pipeline *p)
{
    redis_pipeline_append(p, "SET exp:str v");
    redis_pipeline_append(p, "RPUSH exp:list a b c");
    redis_pipeline_append(p, "SADD exp:set a b c");
    redis_pipeline_append(p, "ZADD exp:zset 1 a 2 b");
    redis_pipeline_append(p, "HSET exp:hash a 1 b 2");
    redis_pipeline_append(p, "XADD exp:stream 1-1 a 1");
    static const char *const keys[] = {"exp:str",  "exp:list", "exp:set",
                                       "exp:zset", "exp:hash", "exp:stream"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        redis_pipeline_append(p, "PEXPIREAT %s %lld", keys[i], FAR_FUTURE_MS + (long long)i);
    redis_pipeline_append(p, "SET exp:relative v EX 100000");
    redis_pipeline_append(p, "SADD exp:relative:set 1 2 3");
    redis_pipeline_append(p, "PEXPIRE exp:relative:set 86400123");

    /* Already expired when saved: active expiry is off and nothing touches
     * them, so SAVE writes them and a loading server skips them. */
    redis_pipeline_append(p, "SET expired:str v PX 1");
    redis_pipeline_append(p, "HSET expired:hash a 1");
    redis_pipeline_append(p, "PEXPIRE expired:hash 1");
}

static void fill_databases(struct redis_pipeline *p)
{
    for (int db = 1; db < MODEL_DBS; db++) {
        redis_pipeline_append(p, "SELECT %d", db);
        for (int k = 0; k <= db; k++)
            redis_pipeline_append(p, "SET db%d:k%d value-%d-%d", db, k, db, k);
        switch (db) {
        case 2:
            redis_pipeline_append(p, "SET db2:expiring v PXAT %lld", FAR_FUTURE_MS);
            break;
        case 3:
            redis_pipeline_append(p, "SET db3:expired v PX 1");
            break;
        case 5:
            redis_pipeline_append(p, "HSET db5:hash a 1 b 2");
            break;
        case 7:
            redis_pipeline_append(p, "SADD db7:set a b 1");
            break;
        case 9:
            redis_pipeline_append(p, "RPUSH db9:list x y z");
            break;
        case 12:
            redis_pipeline_append(p, "ZADD db12:zset 1 a 2.5 b");
            break;
        case 15:
            redis_pipeline_append(p, "XADD db15:stream 7-7 f v");
            break;
        }
    }
    redis_pipeline_append(p, "SELECT 0");
}

static void fill_every_encoding(struct redis_fixture *f)
{
    struct rng r = {.s = 0x9e3779b97f4a7c15ULL};
    struct redis_pipeline p;
    redis_pipeline_init(&p, f->ctx, 1000);
    redis_fixture_exec(f->ctx, "DEBUG SET-ACTIVE-EXPIRE 0");
    fill_strings(&p, &r);
    fill_lists(f, &p, &r);
    fill_sets(&p, &r);
    fill_zsets(&p, &r);
    fill_hashes(&p, &r);
    redis_pipeline_flush(&p);
    fill_streams(f, &p);
    fill_expiries(&p);
    fill_databases(&p);
    redis_pipeline_flush(&p);
    redis_fixture_exec(f->ctx, "FUNCTION LOAD %s", lib_mylib);
    redis_fixture_exec(f->ctx, "FUNCTION LOAD %s", lib_other);
    /* Let the PX 1 keys expire before SAVE. */
    usleep(20 * 1000);
}

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
    fill_every_encoding(f);
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

/* The big values are there: a fill that silently fell short proves less. */
static void assert_fill_reached_the_server(const struct redis_model *m)
{
    static const struct {
        const char *key;
        size_t n;
    } big[] = {{"list:200k", BIG_N},
               {"set:200k", BIG_N},
               {"list:1000", 1000},
               {"hash:big", 1000},
               {"zset:big", 308}};
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        const struct model_key *k = redis_model_find(m, 0, big[i].key, strlen(big[i].key));
        cr_assert(k != NULL && k->n == big[i].n, "%s has %zu elements, expected %zu", big[i].key,
                  k != NULL ? k->n : 0, big[i].n);
    }
    const struct model_key *k = redis_model_find(m, 0, "str:8mib", 8);
    cr_assert(k != NULL && k->str.len == EIGHT_MIB);
    k = redis_model_find(m, 0, "stream:big", 10);
    cr_assert(k != NULL && k->stream->nentries == 350 - 50 - 1 && k->stream->ngroups == 3,
              "stream:big has %zu entries, %zu groups", k ? k->stream->nentries : 0,
              k ? k->stream->ngroups : 0);
    for (unsigned db = 0; db < MODEL_DBS; db++)
        cr_assert(redis_model_count(m, db) > 0, "db %u is empty", db);
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
    assert_fill_reached_the_server(&server);
    redis_model_free(&server);

    char rdb[128];
    /* expired:str, expired:hash, db3:expired */
    assert_inspect_matches_server(f, 3, true, &file, rdb, sizeof(rdb));

    /* The function libraries are the code loaded, byte for byte. */
    cr_assert_eq(file.nfunctions, 2, "inspect printed %zu function lines, expected 2",
                 file.nfunctions);
    const char *libs[] = {lib_mylib, lib_other}; /* sorted as the model sorts */
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
    struct rng r = {.s = 42};
    send_many(&p, "HSET", "hash:listpack:33k", 33000, 100, gen_hash_field, &r);
    char *big = malloc(66000);
    cr_assert(big != NULL);
    rng_fill(&r, big, 66000);
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
        char field[8], val[128];
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
