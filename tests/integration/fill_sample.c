/* fill_sample.c - the sample data set of the integration tests (see fill_sample.h). */
#include "fill_sample.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

const char fill_sample_lib_mylib[] =
    "#!lua name=mylib\n"
    "redis.register_function('myfunc', function(keys, args) return args[1] end)";
const char fill_sample_lib_other[] =
    "#!lua name=otherlib\n"
    "local function helper() return 'x' end\n"
    "redis.register_function{function_name='other', "
    "callback=function(keys, args) return helper() end, flags={'no-writes'}}";

/* ---------------------------------------------------------------- building commands */

uint64_t fill_rng_next(struct fill_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

void fill_rng_fill(struct fill_rng *r, char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(fill_rng_next(r) >> 56);
}

void fill_cmd_arg(struct fill_cmd *c, const void *p, size_t len)
{
    cr_assert(c->argc < FILL_CMD_MAX_ARGS, "too many arguments");
    char *copy = malloc(len + 1);
    cr_assert(copy != NULL);
    if (len > 0)
        memcpy(copy, p, len);
    copy[len] = '\0';
    c->argv[c->argc] = copy;
    c->argvlen[c->argc++] = len;
}

void fill_cmd_str(struct fill_cmd *c, const char *s)
{
    fill_cmd_arg(c, s, strlen(s));
}

void fill_cmd_fmt(struct fill_cmd *c, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(buf));
    fill_cmd_arg(c, buf, (size_t)n);
}

void fill_cmd_begin(struct fill_cmd *c, const char *name, const char *key)
{
    c->argc = 0;
    fill_cmd_str(c, name);
    if (key != NULL)
        fill_cmd_str(c, key);
}

void fill_cmd_send(struct fill_cmd *c, struct redis_pipeline *p)
{
    redis_pipeline_append_argv(p, c->argc, c->argv, c->argvlen);
    for (int i = 0; i < c->argc; i++)
        free((void *)c->argv[i]);
    c->argc = 0;
}

void fill_send_many(struct redis_pipeline *p, const char *name, const char *key, size_t n,
                    size_t per_cmd, fill_gen_fn gen, struct fill_rng *r)
{
    struct fill_cmd c = {0};
    for (size_t i = 0; i < n;) {
        fill_cmd_begin(&c, name, key);
        for (size_t k = 0; k < per_cmd && i < n; k++, i++)
            gen(&c, i, r);
        fill_cmd_send(&c, p);
    }
}

void fill_gen_element(struct fill_cmd *c, size_t i, struct fill_rng *r)
{
    (void)r;
    fill_cmd_fmt(c, "element:%zu", i);
}

void fill_gen_random_binary(struct fill_cmd *c, size_t i, struct fill_rng *r)
{
    (void)i;
    char buf[101];
    size_t len = (size_t)(fill_rng_next(r) % sizeof(buf));
    fill_rng_fill(r, buf, len);
    fill_cmd_arg(c, buf, len);
}

void fill_gen_member(struct fill_cmd *c, size_t i, struct fill_rng *r)
{
    (void)r;
    fill_cmd_fmt(c, "member:%zu", i);
}

void fill_gen_int_member(struct fill_cmd *c, size_t i, struct fill_rng *r)
{
    (void)r;
    fill_cmd_fmt(c, "%lld", (long long)i * 7919 - 3000000);
}

void fill_gen_zset_member(struct fill_cmd *c, size_t i, struct fill_rng *r)
{
    (void)r;
    fill_cmd_fmt(c, "%.17g", ((double)i - 150.0) * 0.1 + 1.0 / 3.0);
    fill_cmd_fmt(c, "m%zu", i);
}

void fill_gen_hash_field(struct fill_cmd *c, size_t i, struct fill_rng *r)
{
    (void)r;
    fill_cmd_fmt(c, "field:%zu", i);
    fill_cmd_fmt(c, "value:%zu:%zu", i, i * i);
}

/* ---------------------------------------------------------------- the fill */

static void fill_strings(struct redis_pipeline *p, struct fill_rng *r)
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
    fill_rng_fill(r, small, sizeof(small));
    redis_pipeline_append(p, "SET str:binary %b", small, sizeof(small));
    redis_pipeline_append(p, "SET str:binary:short %b", small, (size_t)30);

    size_t big_len = (size_t)1 << 20;
    char *big = malloc(FILL_SAMPLE_EIGHT_MIB);
    cr_assert(big != NULL);
    fill_rng_fill(r, big, big_len);
    redis_pipeline_append(p, "SET str:random:1mib %b", big, big_len);
    size_t o = 0;
    for (size_t line = 0; o < FILL_SAMPLE_EIGHT_MIB; line++) {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "line %08zu: the quick brown fox %zu jumps\n", line,
                         line * 2654435761u % 1000003);
        size_t take = FILL_SAMPLE_EIGHT_MIB - o < (size_t)n ? FILL_SAMPLE_EIGHT_MIB - o : (size_t)n;
        memcpy(big + o, buf, take);
        o += take;
    }
    redis_pipeline_append(p, "SET str:8mib %b", big, FILL_SAMPLE_EIGHT_MIB);
    free(big);

    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    redis_pipeline_append(p, "SET %b all-byte-values-key", all, sizeof(all));
    redis_pipeline_append(p, "HSET %b f v", all + 1, sizeof(all) - 1);
    char longkey[10240];
    for (size_t i = 0; i < sizeof(longkey); i++)
        longkey[i] = (char)('A' + (fill_rng_next(r) % 26));
    redis_pipeline_append(p, "SET %b long-key", longkey, sizeof(longkey));
}

static void fill_lists(struct redis_fixture *f, struct redis_pipeline *p, struct fill_rng *r)
{
    static const char bin5[] = "\x00\xff\x01 bin";
    struct fill_cmd c = {0};
    fill_cmd_begin(&c, "RPUSH", "list:small");
    fill_cmd_str(&c, "1");
    fill_cmd_str(&c, "-2");
    fill_cmd_str(&c, "foo");
    fill_cmd_str(&c, "");
    fill_cmd_arg(&c, bin5, sizeof(bin5) - 1);
    fill_cmd_send(&c, p);

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
    fill_cmd_begin(&c, "RPUSH", "list:ints");
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        fill_cmd_str(&c, ints[i]);
    fill_cmd_send(&c, p);

    static const size_t lens[] = {0, 1, 63, 64, 4095, 4096, 5000};
    fill_cmd_begin(&c, "RPUSH", "list:strlens");
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char buf[5000];
        for (size_t k = 0; k < lens[i]; k++)
            buf[k] = (char)('a' + (k * 31 + i) % 26);
        fill_cmd_arg(&c, buf, lens[i]);
    }
    fill_cmd_send(&c, p);

    fill_send_many(p, "RPUSH", "list:1000", 1000, 100, fill_gen_random_binary, r);

    /* Quicklist nodes kept LZF-compressed in memory, and so in the file. */
    redis_pipeline_flush(p);
    redis_fixture_exec(f->ctx, "CONFIG SET list-compress-depth 1");
    fill_send_many(p, "RPUSH", "list:200k", FILL_SAMPLE_BIG_N, 100, fill_gen_element, r);
    redis_pipeline_flush(p);
    redis_fixture_exec(f->ctx, "CONFIG SET list-compress-depth 0");

    /* Elements over the threshold get PLAIN nodes of their own. */
    redis_fixture_exec(f->ctx, "DEBUG QUICKLIST-PACKED-THRESHOLD 1000");
    char big[5000];
    fill_cmd_begin(&c, "RPUSH", "list:plain");
    fill_cmd_str(&c, "small-1");
    memset(big, 'p', 2000);
    fill_cmd_arg(&c, big, 2000);
    fill_cmd_str(&c, "small-2");
    fill_rng_fill(r, big, sizeof(big));
    fill_cmd_arg(&c, big, sizeof(big));
    fill_cmd_str(&c, "small-3");
    fill_cmd_send(&c, p);
    redis_pipeline_flush(p);
    redis_fixture_exec(f->ctx, "DEBUG QUICKLIST-PACKED-THRESHOLD 1073741824");
}

static void fill_sets(struct redis_pipeline *p, struct fill_rng *r)
{
    redis_pipeline_append(p, "SADD set:intset16 1 2 3 -5 100 30000 -32768");
    redis_pipeline_append(p, "SADD set:intset32 70000 -70000 1 2147483647 -2147483648");
    redis_pipeline_append(p, "SADD set:intset64 1 -1 4294967296 9223372036854775807 "
                             "-9223372036854775808");
    struct fill_cmd c = {0};
    fill_cmd_begin(&c, "SADD", "set:strings");
    for (int i = 0; i < 50; i++)
        fill_cmd_fmt(&c, "s%d", i);
    fill_cmd_arg(&c, "\x00nul", 4);
    fill_cmd_arg(&c, "", 0);
    fill_cmd_str(&c, "12");
    fill_cmd_arg(&c, "\xff\xfe\x80", 3);
    fill_cmd_send(&c, p);
    fill_send_many(p, "SADD", "set:ints:1000", 1000, 100, fill_gen_int_member, r);
    fill_send_many(p, "SADD", "set:200k", FILL_SAMPLE_BIG_N, 100, fill_gen_member, r);
}

static void fill_zsets(struct redis_pipeline *p, struct fill_rng *r)
{
    redis_pipeline_append(p, "ZADD zset:small 0 zero 1.5 one-and-half -2.25 neg "
                             "1e308 huge -1e-308 tiny-neg 3.141592653589793 pi "
                             "inf plus-inf -inf minus-inf 1e20 big 123456789012345678 bigint "
                             "5e-324 denormal 7 seven");
    redis_pipeline_append(p, "ZADD zset:small 0.1 %b 0.2 %b 0.3 %b", "\x01\xfe\x80member",
                          (size_t)9, "\x00", (size_t)1, "nul\x00member", (size_t)10);
    fill_send_many(p, "ZADD", "zset:big", 300, 100, fill_gen_zset_member, r);
    redis_pipeline_append(p, "ZADD zset:big +inf inf -inf -inf 1.7976931348623157e308 max "
                             "-1e300 neg-huge 4.9406564584124654e-324 min-denormal 0 zero "
                             "0.30000000000000004 point-three -0 minus-zero");
    char member[100];
    memset(member, 'z', sizeof(member));
    redis_pipeline_append(p, "ZADD zset:longmember 1 a 2 b 3 %b", member, sizeof(member));
}

static void fill_hashes(struct redis_pipeline *p, struct fill_rng *r)
{
    redis_pipeline_append(p, "HSET hash:small f1 v1 f2 2 f3 -300000 f4 %b f5 %b empty-value %b",
                          "\x00\x01\xff", (size_t)3, "12345678901234567890", (size_t)20, "",
                          (size_t)0);
    redis_pipeline_append(p, "HSET hash:small %b binary-field", "\x01\x7f\x80\xfe", (size_t)4);
    redis_pipeline_append(p, "HSET hash:small %b nul-field %b nul-field-2", "\x00", (size_t)1,
                          "a\x00b", (size_t)3);
    redis_pipeline_append(p, "HSET hash:intfields 1 one -2 minus-two 1000000 million");
    fill_send_many(p, "HSET", "hash:big", 1000, 100, fill_gen_hash_field, r);
    char value[100];
    fill_rng_fill(r, value, sizeof(value));
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
    /* The first entries of the second and third nodes (their master entries). */
    redis_pipeline_append(p, "XDEL stream:big 1000-101 1000-201");
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
        redis_pipeline_append(p, "PEXPIREAT %s %lld", keys[i],
                              FILL_SAMPLE_FAR_FUTURE_MS + (long long)i);
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
            redis_pipeline_append(p, "SET db2:expiring v PXAT %lld", FILL_SAMPLE_FAR_FUTURE_MS);
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

static void fill_big_zset_and_hash(struct redis_pipeline *p, struct fill_rng *r)
{
    fill_send_many(p, "ZADD", "zset:200k", FILL_SAMPLE_BIG_N, 100, fill_gen_zset_member, r);
    fill_send_many(p, "HSET", "hash:200k", FILL_SAMPLE_BIG_N, 100, fill_gen_hash_field, r);
}

void fill_sample(struct redis_fixture *f, const struct fill_sample_opts *opts)
{
    struct fill_rng r = {.s = 0x9e3779b97f4a7c15ULL};
    struct redis_pipeline p;
    redis_pipeline_init(&p, f->ctx, 1000);
    redis_fixture_exec(f->ctx, "DEBUG SET-ACTIVE-EXPIRE 0");
    fill_strings(&p, &r);
    fill_lists(f, &p, &r);
    fill_sets(&p, &r);
    fill_zsets(&p, &r);
    fill_hashes(&p, &r);
    if (opts != NULL && opts->has_big_zset_and_hash)
        fill_big_zset_and_hash(&p, &r);
    redis_pipeline_flush(&p);
    fill_streams(f, &p);
    fill_expiries(&p);
    fill_databases(&p);
    redis_pipeline_flush(&p);
    redis_fixture_exec(f->ctx, "FUNCTION LOAD %s", fill_sample_lib_mylib);
    redis_fixture_exec(f->ctx, "FUNCTION LOAD %s", fill_sample_lib_other);
    /* Let the PX 1 keys expire before SAVE. */
    usleep(20 * 1000);
}

void fill_sample_assert_reached(const struct redis_model *m, const struct fill_sample_opts *opts)
{
    static const struct {
        const char *key;
        size_t n;
        bool is_optional; /* only with has_big_zset_and_hash */
    } big[] = {{"list:200k", FILL_SAMPLE_BIG_N, false},
               {"set:200k", FILL_SAMPLE_BIG_N, false},
               {"list:1000", 1000, false},
               {"hash:big", 1000, false},
               {"zset:big", 308, false},
               {"zset:200k", FILL_SAMPLE_BIG_N, true},
               {"hash:200k", FILL_SAMPLE_BIG_N, true}};
    bool has_big = opts != NULL && opts->has_big_zset_and_hash;
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        if (big[i].is_optional && !has_big)
            continue;
        const struct model_key *k = redis_model_find(m, 0, big[i].key, strlen(big[i].key));
        cr_assert(k != NULL && k->n == big[i].n, "%s has %zu elements, expected %zu", big[i].key,
                  k != NULL ? k->n : 0, big[i].n);
    }
    const struct model_key *k = redis_model_find(m, 0, "str:8mib", 8);
    cr_assert(k != NULL && k->str.len == FILL_SAMPLE_EIGHT_MIB);
    k = redis_model_find(m, 0, "stream:big", 10);
    cr_assert(k != NULL && k->stream->nentries == 350 - 50 - 3 && k->stream->ngroups == 3,
              "stream:big has %zu entries, %zu groups", k ? k->stream->nentries : 0,
              k ? k->stream->ngroups : 0);
    for (unsigned db = 0; db < MODEL_DBS; db++)
        cr_assert(redis_model_count(m, db) > 0, "db %u is empty", db);
}
