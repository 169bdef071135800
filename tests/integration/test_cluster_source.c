/* test_cluster_source.c - `ringsync sync` from a Redis Cluster, with real
 * redis-server processes: a 3-master source cluster (cluster_fixture.h),
 * copied into a 2-master destination cluster.
 *
 * ringsync discovers the source's masters from any node it is given and runs
 * one PSYNC, one replication stream, one job per master, side by side; each
 * job writes the keys of its master's slots, which no other master's stream
 * touches, into whichever destination master serves them:
 *
 *     source cluster                          destination cluster
 *       master A (slots 0..5460)     ─PSYNC─┐
 *       master B (slots 5461..10922) ─PSYNC─┼─▶ ringsync sync ──▶ master X (0..8191)
 *       master C (slots 10923..16383)─PSYNC─┘   (3 jobs)          master Y (8192..16383)
 *
 * On each source master ringsync is a replica with listening port 0 and an
 * applied offset of its own (sync_watch.h: wait_caught_up_all). What one
 * master's stream cannot be applied alone stops the job with exit 1, naming
 * it: FLUSHALL/FLUSHDB (it would empty the other masters' keys on the
 * destination too) and RESTORE-ASKING (the source resharding).
 *
 * The oracle is the source cluster itself, read into one model as the
 * destination is (dataset_compare.h: assert_clusters_equal; values, TTLs,
 * per-key DEBUG DIGEST-VALUE on each side's owning master): while ringsync
 * follows, every expiry on the destination is --expiry-margin (3600 s) late;
 * after the stop (SIGINT ends every job) they are exact, the margin taken
 * off once.
 *
 * Tests:
 *   - 3 masters (+1 replica each) into 2, with --workers 1 and 2: a snapshot
 *     of every type (50k small keys, a 200k-element list, a stream with a
 *     consumer group, TTLs far in the future, a function library on every
 *     master), then single-slot writes of every family, multi-key commands
 *     within one hash tag (a cluster source refuses cross-slot ones itself)
 *     and transactions of one slot, each sent to its key's master, and the
 *     library replaced on every master; equal to the source while following
 *     and after the stop; with one worker, one changed key is caught (the
 *     comparison can fail);
 *   - FLUSHALL on one source master while following: exit 1 naming FLUSHALL,
 *     that master's stream not acknowledged past it, the destination not
 *     emptied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "cluster_fixture.h"
#include "dataset_compare.h"
#include "fill_sample.h"
#include "redis_fixture.h"
#include "slot.h"
#include "sync_watch.h"

#define SOURCE_MASTERS   3
#define DEST_MASTERS     2
#define SMALL_KEYS       50000
#define BIG_LIST_N       200000
#define MERGE_RUN_KEYS   3000
#define OVER_SNAPSHOT    2000
#define EXPIRY_MARGIN_MS (3600 * 1000) /* ringsync's default --expiry-margin */
#define FAR_FUTURE_MS    4102444800123LL
#define MAX_WORDS        32

TestSuite(cluster_source, .fini = redis_fixture_stop_all, .timeout = 240);

/* ---------------------------------------------------------------- helpers */

static struct cluster_fixture *start_source_cluster(int replicas_per_master)
{
    struct cluster_fixture_opts o = {.masters = SOURCE_MASTERS,
                                     .replicas_per_master = replicas_per_master};
    return cluster_fixture_start(&o);
}

static struct cluster_fixture *start_dest_cluster(void)
{
    struct cluster_fixture_opts o = {.masters = DEST_MASTERS};
    return cluster_fixture_start(&o);
}

/* ringsync sync from node `seed` of src (any node will do) to node `node`
 * of dst. */
static struct program *ringsync_from(const struct cluster_fixture *src, int seed,
                                     const struct cluster_fixture *dst, int node,
                                     const char *workers)
{
    return ringsync_start_with(src->nodes[seed], dst->nodes[node], workers, NULL);
}

/* Splits line (no '%' needed: sent as words) at spaces into argv, backed by
 * buf; returns argc. */
static int split_words(const char *line, char *buf, size_t cap, const char **argv)
{
    int argc = 0;
    snprintf(buf, cap, "%s", line);
    for (char *w = strtok(buf, " "); w != NULL; w = strtok(NULL, " ")) {
        cr_assert(argc < MAX_WORDS, "too many words in '%s'", line);
        argv[argc++] = w;
    }
    cr_assert(argc > 0, "an empty command");
    return argc;
}

/* The pipeline of the master owning the first key of the command, as the
 * source itself names its keys (COMMAND GETKEYS): Redis is the oracle of
 * which argument is a key, for XREADGROUP, LMPOP and the like too. */
static struct redis_pipeline *pipeline_of_command(struct cluster_fixture_writer *w,
                                                  const struct cluster_fixture *src, int argc,
                                                  const char **argv)
{
    const char *words[MAX_WORDS + 2] = {"COMMAND", "GETKEYS"};
    for (int i = 0; i < argc; i++)
        words[i + 2] = argv[i];
    redisReply *r = redis_fixture_command_argv(src->nodes[0]->ctx, argc + 2, words, NULL);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                  r->element[0]->type == REDIS_REPLY_STRING,
              "COMMAND GETKEYS names no key of '%s ...'", argv[0]);
    struct redis_pipeline *p =
        cluster_fixture_writer_for(w, r->element[0]->str, r->element[0]->len);
    freeReplyObject(r);
    return p;
}

/* Sends each line to the master owning its first key; a MULTI ... EXEC block
 * goes whole to the owner of its first command's key (its commands are of
 * one slot: the source refuses anything else). */
static void send_lines(struct cluster_fixture_writer *w, const struct cluster_fixture *src,
                       const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char buf[512];
        const char *argv[MAX_WORDS];
        if (strcmp(lines[i], "MULTI") != 0) {
            int argc = split_words(lines[i], buf, sizeof(buf), argv);
            redis_pipeline_append_argv(pipeline_of_command(w, src, argc, argv), argc, argv, NULL);
            continue;
        }
        cr_assert(i + 1 < n && strcmp(lines[i + 1], "EXEC") != 0, "an empty transaction");
        int argc = split_words(lines[i + 1], buf, sizeof(buf), argv);
        struct redis_pipeline *p = pipeline_of_command(w, src, argc, argv);
        for (; i < n; i++) {
            argc = split_words(lines[i], buf, sizeof(buf), argv);
            redis_pipeline_append_argv(p, argc, argv, NULL);
            if (strcmp(lines[i], "EXEC") == 0)
                break;
        }
        cr_assert(i < n, "a MULTI without its EXEC");
    }
}

/* Keys the masters of c hold in all, but ringsync's checkpoint records. */
static long long cluster_dbsize(const struct cluster_fixture *c)
{
    return cluster_fixture_data_keys(c);
}

/* ringsync PSYNCs masters only: no replica of src lists it (port 0). */
static void assert_no_replica_serves_ringsync(const struct cluster_fixture *src)
{
    for (int i = src->nmasters; i < src->nnodes; i++) {
        struct repl_view v;
        repl_view_take(src->nodes[i]->ctx, -1, &v);
        cr_assert(!v.has_ringsync,
                  "replica node %d of the source lists ringsync as its replica:\n%s", i, v.text);
    }
}

/* A key named prefix:N that master m of c was given, in buf. */
static const char *key_of_master(const struct cluster_fixture *c, int m, const char *prefix,
                                 char *buf, size_t cap)
{
    for (int i = 0; i < 100000; i++) {
        snprintf(buf, cap, "%s:%d", prefix, i);
        if (c->slot_master[slot_of_key(buf, strlen(buf))] == m)
            return buf;
    }
    cr_assert_fail("no key %s:N of master %d", prefix, m);
    return NULL;
}

/* --------------------------------------------------------- the data set */

/* One key of every type, small, with expiries far in the future on some;
 * each line sent to its key's master. */
static const char *const every_type[] = {
    "SET t:str hello",
    "SET t:int 12345",
    "SET t:ttl:str v PXAT 4102444800123",
    "RPUSH t:list a b c 1 2 3",
    "SADD t:set a b c x y z",
    "SADD t:intset 1 2 3 100000",
    "ZADD t:zset 1 a 2.5 b -inf c 1e300 d",
    "EXPIREAT t:zset 4102444800",
    "HSET t:hash f1 v1 f2 v2 f3 3",
    "PEXPIREAT t:hash 4102444800456",
    "XADD t:stream 1-1 f v",
    "XADD t:stream 1-2 f w g x",
    "XADD t:stream 2-1 h y",
    "XDEL t:stream 1-2",
    "XGROUP CREATE t:stream g 0",
    "XGROUP CREATE t:stream never $",
    "XCLAIM t:stream g c1 0 1-1 TIME 1700000000000 RETRYCOUNT 2 FORCE",
    "XREADGROUP GROUP g c2 COUNT 1 STREAMS t:stream >",
    "PFADD {h}t:hll a b c d",
    "SETBIT t:bits 100 1",
    "GEOADD t:geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
};

static const char big_list_key[] = "t:biglist";

/* A function library: a cluster does not spread one, so its user loads it
 * on every master, and every master's snapshot and stream carries it. */
static const char fn_lib[] =
    "#!lua name=clib\n"
    "redis.register_function('cset', function(keys, args)\n"
    "  redis.call('set', keys[1], args[1]); return redis.call('incr', keys[2]) end)\n";
static const char fn_lib_v2[] =
    "#!lua name=clib\n"
    "redis.register_function('cset', function(keys, args)\n"
    "  redis.call('set', keys[1], args[1] .. '!'); return redis.call('incrby', keys[2], 2) end)\n";

/* FUNCTION LOAD (REPLACE) of code on every master of c. */
static void load_function_everywhere(const struct cluster_fixture *c, const char *code)
{
    for (int m = 0; m < c->nmasters; m++)
        redis_fixture_exec(c->nodes[m]->ctx, "FUNCTION LOAD REPLACE %s", code);
}

/* SMALL_KEYS keys key:N of mixed types (six in ten strings, one in ten of
 * those with a TTL far in the future; then a hash, a set, a zset, a list),
 * every type above and the big list, through each key's master. */
static void fill_source(const struct cluster_fixture *src)
{
    struct cluster_fixture_writer w;
    cluster_fixture_writer_init(&w, src);
    send_lines(&w, src, every_type, sizeof(every_type) / sizeof(every_type[0]));
    struct fill_rng rng = {.s = 11};
    fill_send_many(cluster_fixture_writer_for(&w, big_list_key, strlen(big_list_key)), "RPUSH",
                   big_list_key, BIG_LIST_N, 250, fill_gen_element, &rng);
    for (int i = 0; i < SMALL_KEYS; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "key:%d", i);
        struct redis_pipeline *p = cluster_fixture_writer_for(&w, key, (size_t)len);
        switch (i % 10) {
        case 0:
            redis_pipeline_append(p, "SET %s value:%d PXAT %lld", key, i, FAR_FUTURE_MS + i);
            break;
        case 6:
            redis_pipeline_append(p, "HSET %s f %d g value:%d", key, i, i);
            break;
        case 7:
            redis_pipeline_append(p, "SADD %s %d m%d", key, i, i);
            break;
        case 8:
            redis_pipeline_append(p, "ZADD %s %d a 1.5 b", key, i);
            break;
        case 9:
            redis_pipeline_append(p, "RPUSH %s %d x y", key, i);
            break;
        default:
            redis_pipeline_append(p, "SET %s value:%d", key, i);
            break;
        }
    }
    cluster_fixture_writer_deinit(&w);
    load_function_everywhere(src, fn_lib);
    cr_assert(cluster_dbsize(src) >= SMALL_KEYS, "the source holds %lld keys after the fill",
              cluster_dbsize(src));
}

/* Single-slot commands of every write family, multi-key ones within one
 * hash tag, and transactions of one slot: all a cluster source accepts.
 * Every command succeeds on the filled source; TTLs are days or far in the
 * future. */
static const char *const single_slot_families[] = {
    /* strings */
    "SET s:1 v1",
    "SET s:2 v2 EX 100000",
    "SET s:3 v3 PX 100000000",
    "SET s:1 nope NX",
    "SET s:1 v1b XX",
    "SET s:2 v2b KEEPTTL",
    "SET s:1 v1c GET",
    "SET s:11 v EXAT 4102444800",
    "SET s:12 v PXAT 4102444800123",
    "SETEX s:5 100000 five",
    "PSETEX s:10 100000000 ten",
    "SETNX s:6 six",
    "APPEND s:6 -more",
    "SET s:4 10",
    "INCR s:4",
    "DECR s:4",
    "INCRBY s:4 100",
    "DECRBY s:4 7",
    "INCRBYFLOAT s:8 1.5",
    "SETRANGE s:7 2 XYZ",
    "GETSET s:9 replaced",
    "GETDEL s:3",
    "GETEX s:6 EX 100000",
    "GETEX s:2 PERSIST",
    "APPEND t:str -world",
    "INCRBY t:int 5",
    /* keys */
    "SET k:3 3",
    "SET k:4 4",
    "SET k:5 5",
    "EXPIRE k:3 100000",
    "PEXPIRE k:4 100000000",
    "EXPIRE k:5 100000",
    "PERSIST k:5",
    "PEXPIREAT k:4 4102444800456",
    "EXPIRE k:4 100 GT",
    "DEL k:5",
    "UNLINK k:4",
    "EXPIRE key:1 100000",
    "PERSIST key:10",
    /* lists */
    "RPUSH l:1 a b c d e f g h",
    "LPUSH l:1 z y",
    "LPUSHX l:1 x0",
    "RPUSHX l:none x",
    "LPOP l:1",
    "RPOP l:1 2",
    "LINSERT l:1 BEFORE c C",
    "LSET l:1 0 first",
    "LREM l:1 1 d",
    "LTRIM l:1 0 6",
    "BLPOP l:1 1",
    "BRPOP l:1 1",
    "RPUSH t:biglist tail:1 tail:2",
    "LPOP t:biglist 3",
    "LSET t:biglist 100000 middle",
    /* sets */
    "SADD st:1 a b c d e",
    "SREM st:1 e",
    "SPOP st:1",
    "SADD t:set w",
    "SREM t:set a",
    /* sorted sets */
    "ZADD z:1 1 a 2 b 3 c 4 d",
    "ZADD z:1 INCR 5 a",
    "ZINCRBY z:1 2.5 b",
    "ZREM z:1 c",
    "ZPOPMIN z:1",
    "ZADD z:2 1 a 2 b 3 c 4 d 5 e 0 x 0 y 0 z",
    "ZPOPMAX z:2",
    "BZPOPMIN z:2 1",
    "ZREMRANGEBYRANK z:2 0 0",
    "ZREMRANGEBYLEX z:2 [x [y",
    "ZREMRANGEBYSCORE z:2 4 5",
    "ZADD t:zset 7 e",
    /* hashes */
    "HSET h:1 f1 v1 f2 v2 f3 3",
    "HSETNX h:1 f4 v4",
    "HDEL h:1 f2",
    "HINCRBY h:1 f3 10",
    "HINCRBYFLOAT h:1 f5 1.25",
    "HSET t:hash f4 v4",
    /* streams */
    "XADD x:1 1-1 a 1",
    "XADD x:1 1-2 b 2",
    "XADD x:1 * c 3",
    "XADD x:1 MAXLEN 10 * d 4",
    "XDEL x:1 1-2",
    "XGROUP CREATE x:1 g1 0",
    "XREADGROUP GROUP g1 c1 COUNT 2 STREAMS x:1 >",
    "XACK x:1 g1 1-1",
    "XAUTOCLAIM x:1 g1 c2 0 0-0 COUNT 5",
    "XADD x:2 MAXLEN ~ 2 3-1 a 1",
    "XADD x:2 MAXLEN ~ 2 3-2 a 2",
    "XTRIM x:2 MAXLEN 1",
    "XGROUP CREATE x:3 g $ MKSTREAM",
    "XSETID x:3 5-5",
    "XADD t:stream 3-1 n 1",
    "XREADGROUP GROUP g c1 COUNT 1 STREAMS t:stream >",
    "XACK t:stream g 1-1",
    "XGROUP CREATECONSUMER t:stream g c3",
    "XGROUP DELCONSUMER t:stream g c2",
    "XGROUP SETID t:stream never 2-1",
    /* bitmaps, HyperLogLog, geo */
    "SETBIT b:1 7 1",
    "BITFIELD b:2 SET u8 0 200 INCRBY u8 0 100",
    "PFADD {h}t:hll e",
    "GEOADD t:geo 12.5 41.9 Roma",
    /* multi-key commands within one hash tag */
    "MSET {t}a 1 {t}b 2 {t}c 3",
    "MSETNX {t}d 4 {t}e 5",
    "SET {t}x moving",
    "PEXPIRE {t}x 900000000",
    "RENAME {t}x {t}y",
    "SET {t}nx w",
    "RENAMENX {t}nx {t}nx2",
    "COPY {t}y {t}ycopy",
    "SADD {t}s1 a b c x",
    "SADD {t}s2 c d",
    "SMOVE {t}s1 {t}s2 a",
    "SUNIONSTORE {t}su {t}s1 {t}s2",
    "SINTERSTORE {t}si {t}s1 {t}s2",
    "SDIFFSTORE {t}sd {t}s1 {t}s2",
    "RPUSH {t}l1 1 2 3 4",
    "RPUSH {t}l2 x",
    "LMOVE {t}l1 {t}l2 LEFT RIGHT",
    "RPOPLPUSH {t}l2 {t}l1",
    "BLMOVE {t}l1 {t}l2 RIGHT LEFT 1",
    "BRPOPLPUSH {t}l2 {t}l1 1",
    "LMPOP 2 {t}none {t}l1 LEFT COUNT 2",
    "RPUSH {t}sl 3 1 2",
    "SORT {t}sl STORE {t}sorted",
    "ZADD {t}z1 1 a 2 b 3 c",
    "ZADD {t}z2 2 b 4 d",
    "ZUNIONSTORE {t}zu 2 {t}z1 {t}z2 WEIGHTS 1 2",
    "ZINTERSTORE {t}zi 2 {t}z1 {t}z2 AGGREGATE MAX",
    "ZDIFFSTORE {t}zd 2 {t}z1 {t}z2",
    "ZRANGESTORE {t}zr {t}z1 0 -1",
    "ZMPOP 1 {t}z2 MAX",
    "SETBIT {t}b1 3 1",
    "SETBIT {t}b2 5 1",
    "BITOP OR {t}bor {t}b1 {t}b2",
    "PFADD {t}p1 a b c",
    "PFADD {t}p2 c d",
    "PFMERGE {t}pm {t}p1 {t}p2",
    "GEOADD {t}g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEOSEARCHSTORE {t}gs {t}g FROMLONLAT 15 37 BYRADIUS 200 km ASC",
    "DEL {t}a {t}b {t}nothing",
    "UNLINK {t}c",
    "TOUCH {t}d {t}e",
    "MSET {u}1 1 {u}2 2",
    "DEL {u}1",
    /* transactions of one slot */
    "MULTI",
    "SET {tx}1 1",
    "INCR {tx}2",
    "RPUSH {tx}3 a",
    "EXPIRE {tx}3 100000",
    "RENAME {tx}1 {tx}1r",
    "EXEC",
    "MULTI",
    "HSET {tx2}h f v",
    "SADD {tx2}s m",
    "DEL {tx2}nothing",
    "EXEC",
};

/* Plain SETs (which ringsync may gather into MSETs of one slot) with what a
 * gathering must not jump over: INCR and APPEND of the same key, SETs with
 * options, DELs; each key on its master. */
static void merge_run(struct cluster_fixture_writer *w)
{
    for (int i = 0; i < MERGE_RUN_KEYS; i++) {
        char key[32], prev[32], tagged[32];
        int len = snprintf(key, sizeof(key), "ms:%d", i);
        struct redis_pipeline *p = cluster_fixture_writer_for(w, key, (size_t)len);
        redis_pipeline_append(p, "SET %s %d", key, i);
        if (i % 3 == 0)
            redis_pipeline_append(p, "INCR %s", key);
        if (i % 7 == 0 && i > 0) {
            len = snprintf(prev, sizeof(prev), "ms:%d", i - 1);
            redis_pipeline_append(cluster_fixture_writer_for(w, prev, (size_t)len), "DEL %s", prev);
        }
        if (i % 11 == 0)
            redis_pipeline_append(p, "SET %s ttl EX 100000", key);
        if (i % 13 == 0)
            redis_pipeline_append(p, "APPEND %s z", key);
        if (i % 17 == 0) {
            len = snprintf(tagged, sizeof(tagged), "{a}ms:%d", i);
            redis_pipeline_append(cluster_fixture_writer_for(w, tagged, (size_t)len), "SET %s last",
                                  tagged);
        }
    }
}

static const char lua_one_slot[] =
    "redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', KEYS[2]); "
    "return redis.call('rpush', KEYS[3], ARGV[1])";

/* The load after the snapshots: every family, a merge run, writes over the
 * snapshot's keys, a script of one slot, a new version of the function
 * library on every master and a call of it; each command on its key's
 * master. */
static void load_stream(const struct cluster_fixture *src)
{
    struct cluster_fixture_writer w;
    cluster_fixture_writer_init(&w, src);
    send_lines(&w, src, single_slot_families,
               sizeof(single_slot_families) / sizeof(single_slot_families[0]));
    merge_run(&w);
    for (int i = 0; i < OVER_SNAPSHOT; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "key:%d", (i * 31 + 7) % SMALL_KEYS);
        redis_pipeline_append(cluster_fixture_writer_for(&w, key, (size_t)len), "SET %s stream:%d",
                              key, i);
        len = snprintf(key, sizeof(key), "key:%d", (i * 37 + 11) % SMALL_KEYS);
        redis_pipeline_append(cluster_fixture_writer_for(&w, key, (size_t)len), "DEL %s", key);
    }
    cluster_fixture_writer_deinit(&w);
    redisContext *c = cluster_fixture_connect_owner(src, "{e}1", 4);
    redis_fixture_exec(c, "EVAL %s 3 {e}1 {e}2 {e}3 v", lua_one_slot);
    redisFree(c);
    load_function_everywhere(src, fn_lib_v2);
    c = cluster_fixture_connect_owner(src, "{f}1", 4);
    redis_fixture_exec(c, "FCALL cset 2 {f}1 {f}2 val");
    redisFree(c);
}

/* ------------------------------------------------ cluster -> cluster */

static void cluster_to_cluster_matches_the_source(const char *workers, int seed,
                                                  bool prove_it_can_fail)
{
    long long t0 = fixture_now_ms();
    struct cluster_fixture *src = start_source_cluster(1);
    struct cluster_fixture *dst = start_dest_cluster();
    fill_source(src);
    long long t_filled = fixture_now_ms();

    char what[96];
    snprintf(what, sizeof(what), "--workers %s, 3 source masters (seed node %d) into 2", workers,
             seed);
    struct program *p = ringsync_from(src, seed, dst, 1, workers);
    wait_snapshots_applied(p, SOURCE_MASTERS);
    long long t_snapshots = fixture_now_ms();
    load_stream(src);
    wait_caught_up_all(src, p, what);
    long long t_caught_up = fixture_now_ms();
    assert_no_replica_serves_ringsync(src);

    dataset_set_target_expiry_shift(EXPIRY_MARGIN_MS); /* while it follows */
    assert_clusters_equal(dst, src, "source cluster", "while following");
    ringsync_stop_jobs(p, what, SOURCE_MASTERS);
    dataset_set_target_expiry_shift(0); /* the stop took the margin back off, once */
    assert_clusters_equal(dst, src, "source cluster", "after the stop, expiries exact");
    if (prove_it_can_fail)
        assert_clusters_comparison_catches_a_change(dst, src, "t:str");
    cr_log_info("%s: clusters up and filled in %lld ms, 3 snapshots in %lld ms, load caught up "
                "in %lld ms, compared in %lld ms",
                what, t_filled - t0, t_snapshots - t_filled, t_caught_up - t_snapshots,
                fixture_now_ms() - t_caught_up);
    cluster_fixture_stop(dst);
    cluster_fixture_stop(src);
}

Test(cluster_source, cluster_to_cluster_3_masters_into_2_matches_the_source_with_one_worker)
{
    cluster_to_cluster_matches_the_source("1", 1, true); /* seed: a master */
}

Test(cluster_source, cluster_to_cluster_3_masters_into_2_matches_the_source_with_two_workers)
{
    cluster_to_cluster_matches_the_source("2", 4, false); /* seed: a replica */
}

/* ------------------------------------------------ what one stream cannot do */

#define FLUSH_KEYS 3000

Test(cluster_source, a_flushall_on_a_source_master_stops_the_job_naming_it)
{
    struct cluster_fixture *src = start_source_cluster(0);
    struct cluster_fixture *dst = start_dest_cluster();
    struct cluster_fixture_writer w;
    cluster_fixture_writer_init(&w, src);
    for (int i = 0; i < FLUSH_KEYS; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "k:%d", i);
        redis_pipeline_append(cluster_fixture_writer_for(&w, key, (size_t)len), "SET %s %d", key,
                              i);
    }
    cluster_fixture_writer_flush(&w);
    struct program *p = ringsync_from(src, 0, dst, 0, "2");
    wait_snapshots_applied(p, SOURCE_MASTERS);
    for (int i = 0; i < 300; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "after:%d", i);
        redis_pipeline_append(cluster_fixture_writer_for(&w, key, (size_t)len), "SET %s %d", key,
                              i);
    }
    cluster_fixture_writer_deinit(&w);
    wait_caught_up_all(src, p, "before the FLUSHALL");
    long long held = cluster_dbsize(dst);
    cr_assert(held == FLUSH_KEYS + 300, "the destination holds %lld keys, not %d", held,
              FLUSH_KEYS + 300);

    /* FLUSHALL on master 1, then a write after it on the same master. */
    const int flushed = 1;
    redisContext *m = src->nodes[flushed]->ctx;
    long long offset_before = info_number(m, "replication", "master_repl_offset");
    redis_fixture_exec(m, "FLUSHALL");
    long long offset = info_number(m, "replication", "master_repl_offset");
    char later[32];
    redis_fixture_exec(m, "SET %s 1", key_of_master(src, flushed, "later", later, sizeof(later)));

    long long acknowledged = 0;
    long long deadline = fixture_now_ms() + STOP_TIMEOUT_MS;
    while (!program_has_exited(p) && fixture_now_ms() < deadline) {
        struct repl_view v;
        repl_view_take(m, -1, &v);
        if (v.has_ringsync && v.ringsync_offset > acknowledged)
            acknowledged = v.ringsync_offset;
        sleep_ms(10);
    }
    struct program_result r;
    program_finish(p, 0, 1, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 1,
              "a FLUSHALL on source master node %d: ringsync ended with %s, expected exit 1 by "
              "itself within %d ms; stderr:\n%s",
              flushed, program_result_describe(&r, st, sizeof(st)), STOP_TIMEOUT_MS, r.err);
    cr_assert(strcasestr(r.err, "FLUSHALL") != NULL, "the failure does not name FLUSHALL:\n%s",
              r.err);
    cr_assert(acknowledged < offset,
              "ringsync acknowledged offset %lld on master node %d, past the FLUSHALL it could "
              "not apply (%lld..%lld); stderr:\n%s",
              acknowledged, flushed, offset_before, offset, r.err);
    cr_log_info("a FLUSHALL on source master node %d stopped the job: %s", flushed, r.err);
    program_result_deinit(&r);
    long long after = cluster_dbsize(dst);
    cr_assert(after == held,
              "the destination holds %lld keys after the refused FLUSHALL, not the %lld it held "
              "(emptied, or the write after the FLUSHALL applied)",
              after, held);
    cluster_fixture_stop(dst);
    cluster_fixture_stop(src);
}

/* A clean stop takes the expiry margin off the destination's expiries once,
 * for all the source's masters, and records it; the resume puts it back
 * once before the jobs follow; so after three stops and resumes the
 * expiries are the source's to the millisecond (before: each later stop took
 * the margin off again, and the keys expired an hour early). */
Test(cluster_source, clean_stops_and_resumes_keep_expiries_exact)
{
    struct cluster_fixture *src = start_source_cluster(0);
    struct cluster_fixture *dst = start_dest_cluster();
    struct cluster_fixture_writer w;
    cluster_fixture_writer_init(&w, src);
    static const char *const keys[] = {"long", "x:1", "x:2", "x:3", "y:1", "y:2"};
    for (size_t i = 0; i < 2; i++)
        redis_pipeline_append(cluster_fixture_writer_for(&w, keys[i], strlen(keys[i])),
                              "SET %s v EX 100000", keys[i]);
    cluster_fixture_writer_flush(&w);
    struct program *p = ringsync_from(src, 0, dst, 0, "1");
    wait_snapshots_applied(p, SOURCE_MASTERS);
    for (int k = 0; k < 3; k++) {
        const char *key = keys[2 + k];
        redis_pipeline_append(cluster_fixture_writer_for(&w, key, strlen(key)), "SET %s v EX 50000",
                              key);
        cluster_fixture_writer_flush(&w);
        wait_caught_up_all(src, p, "before a clean stop");
        ringsync_stop(p, "a clean stop of a cluster source's jobs");
        p = ringsync_from(src, 0, dst, 0, "1");
        if (!program_wait_for_stderr(p, "partial resync", 20000))
            ringsync_fail(p, "no resume after clean stop %d", k + 1);
    }
    wait_caught_up_all(src, p, "after three clean stops");
    ringsync_stop(p, "the last stop");
    cluster_fixture_writer_deinit(&w);
    for (size_t i = 0; i < 5; i++) {
        redisContext *s = cluster_fixture_connect_owner(src, keys[i], strlen(keys[i]));
        redisContext *d = cluster_fixture_connect_owner(dst, keys[i], strlen(keys[i]));
        redisReply *x = redis_fixture_command(s, "PEXPIRETIME %s", keys[i]);
        redisReply *y = redis_fixture_command(d, "PEXPIRETIME %s", keys[i]);
        cr_assert(x->type == REDIS_REPLY_INTEGER && y->type == REDIS_REPLY_INTEGER &&
                  x->integer > 0);
        cr_assert_eq(y->integer, x->integer,
                     "%s expires at %lld on the destination, %lld on the source (%lld s off)",
                     keys[i], y->integer, x->integer, (y->integer - x->integer) / 1000);
        freeReplyObject(x);
        freeReplyObject(y);
        redisFree(s);
        redisFree(d);
    }
    cluster_fixture_stop(src);
    cluster_fixture_stop(dst);
}
