/* test_cluster_dest.c - `ringsync sync` into a Redis Cluster (issue 14), with
 * real redis-server processes: a standalone source, a 3-master + 3-replica
 * cluster on loopback (cluster_fixture.h) as the destination.
 *
 * The oracle is a native replica of the source (Redis applying the stream
 * itself), compared with the cluster's masters key by key (dataset_compare.h,
 * assert_cluster_equals: values, TTLs, per-key DEBUG DIGEST-VALUE, function
 * libraries):
 *
 *     source ──REPLICAOF──▶ native replica (standalone: the oracle)
 *        │
 *        └──PSYNC──▶ ringsync sync ──▶ cluster: 3 masters (+ 3 replicas)
 *
 * The CLI these tests are written against (issue 14):
 *   --target-mode auto|standalone|cluster   auto: INFO cluster of the target;
 *                                           the target may be any node
 *   --db-map SRC:DST[,...]                  default 0:0 for a cluster
 *   --db-unmapped stop|skip                 default stop: an unmapped db with
 *                                           keys (snapshot) or writes (stream)
 *                                           is an error naming it
 *   --cross-slot stop|skip                  default stop: a command across
 *                                           slots that cannot be split stops
 *                                           the job (exit 1) naming it, its
 *                                           keys' slots and its source offset
 *
 * Tests:
 *   - the comparison itself, without ringsync: a cluster and a standalone
 *     server written the same equal; one changed key is caught; an oracle
 *     with keys outside db 0 is refused; after a manual failover the new
 *     master is the one read;
 *   - standalone -> cluster with --workers 1 and 2: a snapshot of every type
 *     (100k keys, a 200k-element list, TTLs), writes during the snapshot,
 *     then single-slot writes of every family, cross-slot DEL/UNLINK/TOUCH/
 *     MSET (split per slot), transactions of one slot and of several,
 *     scripts and functions of one slot, FLUSHALL, FUNCTION LOAD: equal to
 *     the native replica after the snapshot's round and after FLUSHALL's;
 *   - RENAME, COPY, SMOVE, LMOVE and the *STORE family across slots, alone
 *     and in a transaction, carried out as the same effects (one and two
 *     workers), equal to the native replica, no temporary key left;
 *   - a COPY ... DB 0 across slots (not carried out): exit 1 naming it, both
 *     slots and its offset; with --cross-slot skip: dropped, counted, the
 *     rest applied;
 *   - databases: an unmapped db with keys stops the job at the start, one
 *     with writes at its first command; --db-map 1:0 brings db 1 into the
 *     cluster; --db-unmapped skip drops it and says how many;
 *   - a cluster with unserved slots is refused naming the ranges;
 *   - a replica node as --target reaches the whole cluster (--target-mode
 *     cluster).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "cluster_fixture.h"
#include "dataset_compare.h"
#include "fill_sample.h"
#include "redis_fixture.h"
#include "redis_model.h"
#include "slot.h"
#include "sync_watch.h"
#include "write_families.h"

#define POPULATE_KEYS        100000
#define BIG_LIST_N           200000
#define DURING_SNAPSHOT_CMDS 4000
#define MERGE_RUN_KEYS       3000
#define EXPIRY_MARGIN_MS     (3600 * 1000) /* ringsync's default --expiry-margin */
#define FAILOVER_TIMEOUT_MS  15000

TestSuite(cluster_dest, .fini = redis_fixture_stop_all, .timeout = 240);

static const char *const source_args[] = {"--enable-debug-command", "yes",
                                          "--repl-diskless-sync-delay", "0", NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

/* ---------------------------------------------------------------- helpers */

static struct cluster_fixture *start_3_3(void)
{
    struct cluster_fixture_opts o = {.masters = 3, .replicas_per_master = 1};
    return cluster_fixture_start(&o);
}

static struct redis_fixture *start_source(void)
{
    struct redis_fixture_opts o = {.extra_args = source_args};
    return redis_fixture_start(&o);
}

static struct redis_fixture *start_debug_server(void)
{
    struct redis_fixture_opts o = {.extra_args = debug_args};
    return redis_fixture_start(&o);
}

/* GET key on the master serving it now; "(nil)" when absent. */
static void cluster_get(const struct cluster_fixture *c, const char *key, char *buf, size_t cap)
{
    struct cluster_fixture_view v;
    cluster_fixture_view_take(c, &v);
    int node = v.slot_node[slot_of_key(key, strlen(key))];
    cr_assert(node >= 0, "nobody serves the slot of %s", key);
    redisReply *r = redis_fixture_command(c->nodes[node]->ctx, "GET %s", key);
    snprintf(buf, cap, "%s", r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    freeReplyObject(r);
}

/* True when text names database db: "db N" or "database N", N not followed
 * by another digit (case-insensitive). */
static bool names_db(const char *text, unsigned db)
{
    char want[2][32];
    snprintf(want[0], sizeof(want[0]), "db %u", db);
    snprintf(want[1], sizeof(want[1]), "database %u", db);
    for (int w = 0; w < 2; w++)
        for (const char *s = text; (s = strcasestr(s, want[w])) != NULL; s++)
            if (!isdigit((unsigned char)s[strlen(want[w])]) &&
                (s == text || !isalnum((unsigned char)s[-1])))
                return true;
    return false;
}

/* True when some line of text holds the whole number n (not inside a longer
 * one) and also word (case-insensitive; NULL: any) and, when db >= 0, names
 * that database. */
static bool line_has_number(const char *text, const char *word, int db, long long n)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", n);
    size_t nl = strlen(num);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        char *copy = strndup(line, len);
        cr_assert(copy != NULL);
        bool is_line = (word == NULL || strcasestr(copy, word) != NULL) &&
                       (db < 0 || names_db(copy, (unsigned)db));
        for (const char *s = copy; is_line && (s = strstr(s, num)) != NULL; s++)
            if ((s == copy || !isdigit((unsigned char)s[-1])) && !isdigit((unsigned char)s[nl])) {
                free(copy);
                return true;
            }
        free(copy);
        line = eol != NULL ? eol + 1 : NULL;
    }
    return false;
}

/* True when, within 48 characters after some "offset" of text, a whole
 * number lies in [from, to]. */
static bool names_offset_within(const char *text, long long from, long long to)
{
    for (const char *s = text; (s = strcasestr(s, "offset")) != NULL; s++) {
        const char *end = s + 6 + 48;
        for (const char *q = s + 6; *q != '\0' && q < end && *q != '\n'; q++) {
            if (!isdigit((unsigned char)*q) || isdigit((unsigned char)q[-1]))
                continue;
            long long v = strtoll(q, NULL, 10);
            if (v >= from && v <= to)
                return true;
        }
    }
    return false;
}

/* ringsync sync from src to node `node` of the cluster (any node will do). */
static struct program *ringsync_into(const struct redis_fixture *src,
                                     const struct cluster_fixture *c, int node, const char *workers,
                                     const char *const *extra)
{
    return ringsync_start_with(src, c->nodes[node], workers, extra);
}

struct ended {
    struct program_result r;
    long long acknowledged; /* the most ringsync acknowledged to the source meanwhile */
};

/* Waits up to STOP_TIMEOUT_MS for ringsync to end by itself, noting what it
 * acknowledges; once it acknowledges `offset` (it went on past what should
 * have stopped it), 1 s more. */
static void wait_ringsync_ends(struct redis_fixture *src, struct program *p, long long offset,
                               struct ended *out)
{
    out->acknowledged = 0;
    long long deadline = fixture_now_ms() + STOP_TIMEOUT_MS;
    bool is_past = false;
    while (!program_has_exited(p) && fixture_now_ms() < deadline) {
        struct repl_view v;
        repl_view_take(src->ctx, -1, &v);
        if (v.has_ringsync && v.ringsync_offset > out->acknowledged)
            out->acknowledged = v.ringsync_offset;
        if (!is_past && offset > 0 && out->acknowledged >= offset) {
            is_past = true;
            deadline = fixture_now_ms() + 1000;
        }
        sleep_ms(10);
    }
    program_finish(p, 0, 1, &out->r);
}

static void assert_exit_1(const struct program_result *r, const char *what)
{
    char st[64];
    cr_assert(r->exited && r->exit_code == 1,
              "%s: ringsync ended with %s, expected exit 1 by itself within %d ms; stderr:\n%s",
              what, program_result_describe(r, st, sizeof(st)), STOP_TIMEOUT_MS, r->err);
}

/* ------------------------------------------------ writing a cluster directly */

/* One pipeline per master of the fixture, each command sent to the master
 * the fixture gave its key's slot. */
struct cluster_writer {
    const struct cluster_fixture *c;
    redisContext *ctx[CLUSTER_FIXTURE_MAX_NODES];
    struct redis_pipeline p[CLUSTER_FIXTURE_MAX_NODES];
};

static void cluster_writer_init(struct cluster_writer *w, const struct cluster_fixture *c)
{
    w->c = c;
    for (int m = 0; m < c->nmasters; m++) {
        w->ctx[m] = redis_fixture_connect(c->nodes[m]);
        redis_pipeline_init(&w->p[m], w->ctx[m], 1000);
    }
}

static struct redis_pipeline *cluster_writer_for(struct cluster_writer *w, const char *key)
{
    int m = w->c->slot_master[slot_of_key(key, strlen(key))];
    cr_assert(m >= 0, "nobody serves the slot of %s", key);
    return &w->p[m];
}

static void cluster_writer_deinit(struct cluster_writer *w)
{
    for (int m = 0; m < w->c->nmasters; m++) {
        redis_pipeline_flush(&w->p[m]);
        redisFree(w->ctx[m]);
    }
}

/* --------------------------------------------------------- the data sets */

/* A command and the key whose slot it goes to. No '%' in cmd: it is sent as
 * a format without arguments. */
struct keyed_cmd {
    const char *key;
    const char *cmd;
};

/* One key of every type, small, with expiries far in the future on some. */
static const struct keyed_cmd every_type[] = {
    {"t:str", "SET t:str hello"},
    {"t:int", "SET t:int 12345"},
    {"t:ttl:str", "SET t:ttl:str v PXAT 4102444800123"},
    {"t:list", "RPUSH t:list a b c 1 2 3"},
    {"t:set", "SADD t:set a b c x y z"},
    {"t:intset", "SADD t:intset 1 2 3 100000"},
    {"t:zset", "ZADD t:zset 1 a 2.5 b -inf c 1e300 d"},
    {"t:zset", "EXPIREAT t:zset 4102444800"},
    {"t:hash", "HSET t:hash f1 v1 f2 v2 f3 3"},
    {"t:hash", "PEXPIREAT t:hash 4102444800456"},
    {"t:stream", "XADD t:stream 1-1 f v"},
    {"t:stream", "XADD t:stream 1-2 f w g x"},
    {"t:stream", "XADD t:stream 2-1 h y"},
    {"t:stream", "XDEL t:stream 1-2"},
    {"t:stream", "XGROUP CREATE t:stream g 0"},
    {"t:stream", "XGROUP CREATE t:stream never $"},
    {"t:stream", "XCLAIM t:stream g c1 0 1-1 TIME 1700000000000 RETRYCOUNT 2 FORCE"},
    {"{h}t:hll", "PFADD {h}t:hll a b c d"},
    {"t:bits", "SETBIT t:bits 100 1"},
};

static const char *const big_list_key = "t:biglist";

static void every_type_on(redisContext *c)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 1000);
    for (size_t i = 0; i < sizeof(every_type) / sizeof(every_type[0]); i++)
        redis_pipeline_append(&p, every_type[i].cmd);
    struct fill_rng rng = {.s = 7};
    fill_send_many(&p, "RPUSH", big_list_key, BIG_LIST_N, 250, fill_gen_element, &rng);
    redis_pipeline_flush(&p);
}

static void every_type_on_cluster(struct cluster_writer *w)
{
    for (size_t i = 0; i < sizeof(every_type) / sizeof(every_type[0]); i++)
        redis_pipeline_append(cluster_writer_for(w, every_type[i].key), every_type[i].cmd);
    struct fill_rng rng = {.s = 7};
    fill_send_many(cluster_writer_for(w, big_list_key), "RPUSH", big_list_key, BIG_LIST_N, 250,
                   fill_gen_element, &rng);
}

static const char fn_lib[] =
    "#!lua name=clib\n"
    "redis.register_function('cset', function(keys, args)\n"
    "  redis.call('set', keys[1], args[1]); return redis.call('incr', keys[2]) end)\n";
static const char fn_lib_v2[] =
    "#!lua name=clib\n"
    "redis.register_function('cset', function(keys, args)\n"
    "  redis.call('set', keys[1], args[1] .. '!'); return redis.call('incrby', keys[2], 2) end)\n";
static const char fn_lib2[] = "#!lua name=clib2\n"
                              "redis.register_function('cdel', function(keys, args)\n"
                              "  return redis.call('del', keys[1]) end)\n";
static const char lua_one_slot[] =
    "redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', KEYS[2]); "
    "return redis.call('rpush', KEYS[3], ARGV[1])";

/* ------------------------------------------------------ the comparison itself */

/* The comparison against a reference written the same way, with one planted
 * difference it must catch, an oracle it must refuse, and a failover it must
 * follow (SQLite's "test the test"). No ringsync here. */
Test(cluster_dest,
     the_cluster_comparison_passes_on_equal_data_catches_a_change_and_follows_a_failover)
{
    struct cluster_fixture *c = start_3_3();
    struct redis_fixture *ref = start_debug_server();

    struct cluster_writer w;
    cluster_writer_init(&w, c);
    struct redis_pipeline rp;
    redis_pipeline_init(&rp, ref->ctx, 1000);
    for (int i = 0; i < 3000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k:%d", i);
        redis_pipeline_append(cluster_writer_for(&w, key), "SET %s v%d", key, i);
        redis_pipeline_append(&rp, "SET %s v%d", key, i);
    }
    redis_pipeline_flush(&rp);
    every_type_on_cluster(&w);
    cluster_writer_deinit(&w);
    every_type_on(ref->ctx);
    for (int m = 0; m < c->nmasters; m++)
        redis_fixture_exec(c->nodes[m]->ctx, "FUNCTION LOAD %s", fn_lib);
    redis_fixture_exec(ref->ctx, "FUNCTION LOAD %s", fn_lib);

    assert_cluster_equals(c, ref, "reference", "written the same");

    /* Keys outside db 0 on the oracle: no cluster can match them. */
    redis_fixture_exec(ref->ctx, "SELECT 3");
    redis_fixture_exec(ref->ctx, "SET elsewhere 1");
    struct dataset_comparison cmp;
    dataset_compare_cluster(c, ref, &cmp);
    cr_assert(cmp.oracle_keys_outside_db0 == 1 && names_db(cmp.oracle_dbs_outside, 3),
              "an oracle with a key in db 3: %zu keys outside db 0 (%s)",
              cmp.oracle_keys_outside_db0, cmp.oracle_dbs_outside);
    dataset_comparison_deinit(&cmp);
    redis_fixture_exec(ref->ctx, "SELECT 3"); /* the comparison left it in db 0 */
    redis_fixture_exec(ref->ctx, "FLUSHDB");
    redis_fixture_exec(ref->ctx, "SELECT 0");

    /* A key missing on the cluster, and one too many. */
    redis_fixture_exec(ref->ctx, "SET only:on:the:oracle 1");
    dataset_compare_cluster(c, ref, &cmp);
    cr_assert(cmp.differences == 1 && strstr(cmp.diff->report, "only:on:the:oracle") != NULL &&
                  !cmp.same_digest,
              "a key only on the oracle: %zu differences, %s:\n%s", cmp.differences, cmp.digests,
              cmp.diff->report);
    dataset_comparison_deinit(&cmp);
    redis_fixture_exec(ref->ctx, "DEL only:on:the:oracle");
    redisContext *owner = cluster_fixture_connect_owner(c, "only:on:the:cluster", 19);
    redis_fixture_exec(owner, "SET only:on:the:cluster 1");
    dataset_compare_cluster(c, ref, &cmp);
    cr_assert(cmp.differences == 1 && strstr(cmp.diff->report, "only:on:the:cluster") != NULL,
              "a key only on the cluster: %zu differences:\n%s", cmp.differences, cmp.diff->report);
    dataset_comparison_deinit(&cmp);
    redis_fixture_exec(owner, "DEL only:on:the:cluster");
    redisFree(owner);

    /* A TTL that differs (the expiry shift is taken off the cluster's). */
    dataset_set_target_expiry_shift(1000);
    dataset_compare_cluster(c, ref, &cmp);
    cr_assert(cmp.differences == 3 && strstr(cmp.diff->report, "expire_ms") != NULL,
              "with an expiry shift of 1 s, the three keys with a TTL must differ: %zu:\n%s",
              cmp.differences, cmp.diff->report);
    dataset_comparison_deinit(&cmp);
    dataset_set_target_expiry_shift(0);

    /* Node 3, master 0's replica, takes over: the comparison reads it. */
    redis_fixture_exec(c->nodes[3]->ctx, "CLUSTER FAILOVER");
    long long deadline = fixture_now_ms() + FAILOVER_TIMEOUT_MS;
    struct cluster_fixture_view v;
    for (;;) {
        cluster_fixture_view_take(c, &v);
        if (v.nmasters == 3 && v.masters[0] == 1 && v.masters[2] == 3 && v.served == 16384)
            break;
        cr_assert(fixture_now_ms() < deadline, "node 3 did not take over from node 0 in %d ms",
                  FAILOVER_TIMEOUT_MS);
        sleep_ms(50);
    }
    assert_cluster_equals(c, ref, "reference", "after a failover of master 0");

    /* One string changed on its master: caught by both comparisons. */
    assert_cluster_comparison_catches_a_change(c, ref, "k:7");
    cluster_fixture_stop(c);
}

/* ------------------------------------------------- standalone -> cluster */

/* Writes while ringsync reads the snapshot: over snapshot keys (SET, INCR,
 * APPEND, DEL, EXPIRE), to the big list (after its chunks), the hash and the
 * stream of the snapshot, and what a cluster must get split per slot (MSET
 * and DEL across slots), then a transaction of one hash tag. */
static void load_during_snapshot(redisContext *c)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 500);
    for (int i = 0; i < DURING_SNAPSHOT_CMDS; i++) {
        switch (i % 10) {
        case 0:
            redis_pipeline_append(&p, "SET key:%d during:%d", (i * 97) % POPULATE_KEYS, i);
            break;
        case 1:
            redis_pipeline_append(&p, "INCR cnt:%d", i % 50);
            break;
        case 2:
            redis_pipeline_append(&p, "APPEND key:%d +%d", (i * 89) % POPULATE_KEYS, i);
            break;
        case 3:
            redis_pipeline_append(&p, "DEL key:%d", (i * 83) % POPULATE_KEYS);
            break;
        case 4:
            redis_pipeline_append(&p, "RPUSH %s during:%d", big_list_key, i);
            break;
        case 5:
            redis_pipeline_append(&p, "HSET t:hash d%d %d", i % 20, i);
            break;
        case 6:
            redis_pipeline_append(&p, "MSET key:%d m%d {a}d:%d m {b}d:%d m",
                                  (i * 71) % POPULATE_KEYS, i, i, i);
            break;
        case 7:
            redis_pipeline_append(&p, "DEL key:%d {a}d:%d key:%d", (i * 61) % POPULATE_KEYS, i - 1,
                                  (i * 59) % POPULATE_KEYS);
            break;
        case 8:
            redis_pipeline_append(&p, "EXPIRE key:%d 100000", (i * 53) % POPULATE_KEYS);
            break;
        default:
            redis_pipeline_append(&p, "XADD t:stream * n %d", i);
            break;
        }
    }
    redis_pipeline_append(&p, "MULTI");
    redis_pipeline_append(&p, "SET {tx}1 during");
    redis_pipeline_append(&p, "INCR {tx}2");
    redis_pipeline_append(&p, "RPUSH {tx}3 a b");
    redis_pipeline_append(&p, "EXEC");
    redis_pipeline_flush(&p);
}

/* Single-slot commands of every write family (multi-key ones with one hash
 * tag), then what ringsync splits per slot, then transactions. Every command
 * succeeds on a source that holds none of these keys (the load runs again
 * after FLUSHALL); TTLs are days or far in the future. */

/* Plain SETs (gathered into MSETs of one slot each) with what a gathering
 * must not jump over: INCR and APPEND of the same key, SET with options,
 * DELs across slots. */
static void merge_run(struct redis_pipeline *p)
{
    for (int i = 0; i < MERGE_RUN_KEYS; i++) {
        redis_pipeline_append(p, "SET ms:%d %d", i, i);
        if (i % 3 == 0)
            redis_pipeline_append(p, "INCR ms:%d", i);
        if (i % 7 == 0 && i > 0)
            redis_pipeline_append(p, "DEL ms:%d {a}ms:%d", i - 1, i);
        if (i % 11 == 0)
            redis_pipeline_append(p, "SET ms:%d ttl EX 100000", i);
        if (i % 13 == 0)
            redis_pipeline_append(p, "APPEND ms:%d z", i);
        if (i % 17 == 0)
            redis_pipeline_append(p, "SET {a}ms:%d last", i);
    }
}

/* The stream load after the snapshot; round 2 runs on a source FLUSHALL
 * emptied (functions survive it, hence REPLACE and a second library). */
static void load_stream(redisContext *c, int round)
{
    struct redis_pipeline p;
    redis_pipeline_init(&p, c, 1000);
    for (size_t i = 0; i < write_families_one_tag_n; i++)
        redis_pipeline_append(&p, write_families_one_tag[i]);
    merge_run(&p);
    for (int i = 0; i < 2000; i++) { /* over the snapshot's keys (round 1) */
        redis_pipeline_append(&p, "SET key:%d stream:%d", (i * 31) % POPULATE_KEYS, i);
        redis_pipeline_append(&p, "DEL key:%d", (i * 37 + 11) % POPULATE_KEYS);
    }
    redis_pipeline_flush(&p);
    redis_fixture_exec(c, "EVAL %s 3 {e}1 {e}2 {e}3 v", lua_one_slot);
    redis_fixture_exec(c, "FUNCTION LOAD REPLACE %s", round == 1 ? fn_lib : fn_lib_v2);
    redis_fixture_exec(c, "FCALL cset 2 {f}1 {f}2 val");
    if (round == 2) {
        redis_fixture_exec(c, "FUNCTION LOAD REPLACE %s", fn_lib2);
        redis_fixture_exec(c, "SET {f}doomed 1");
        redis_fixture_exec(c, "FCALL cdel 1 {f}doomed");
        redis_fixture_exec(c, "SET {m}marker round2");
    }
}

static void standalone_to_cluster_matches_a_native_replica(const char *workers,
                                                           bool prove_it_can_fail)
{
    struct redis_fixture *src = start_source();
    struct redis_fixture *rep = start_debug_server();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "DEBUG POPULATE %d key 64", POPULATE_KEYS);
    every_type_on(src->ctx);
    redis_fixture_replicate(rep, src, 30000);

    char what[64];
    snprintf(what, sizeof(what), "--workers %s into a 3+3 cluster", workers);
    struct program *p = ringsync_into(src, c, 0, workers, NULL);
    wait_ringsync_listed(src, p);
    cr_assert(!stderr_has(p, "snapshot applied"),
              "%s: the snapshot was applied before the source listed ringsync", what);
    load_during_snapshot(src->ctx);
    bool overlapped = !stderr_has(p, "snapshot applied");
    wait_snapshot_applied(p);
    cr_assert(overlapped,
              "%s: the snapshot was applied before the %d writes meant to overlap it were all "
              "sent: the test did not write during the snapshot",
              what, DURING_SNAPSHOT_CMDS);

    load_stream(src->ctx, 1);
    wait_caught_up(src, rep->port, p, what);
    dataset_set_target_expiry_shift(EXPIRY_MARGIN_MS); /* while it follows */
    assert_cluster_equals(c, rep, "native replica", "round 1, over the snapshot's keys");

    redis_fixture_exec(src->ctx, "FLUSHALL");
    load_stream(src->ctx, 2);
    wait_caught_up(src, rep->port, p, what);
    assert_cluster_equals(c, rep, "native replica", "round 2, after FLUSHALL");

    if (prove_it_can_fail)
        assert_cluster_comparison_catches_a_change(c, rep, "{m}marker");
    ringsync_stop(p, what);
    if (!prove_it_can_fail) { /* the stop took the margin back off every expiry */
        dataset_set_target_expiry_shift(0);
        assert_cluster_equals(c, rep, "native replica", "after the stop, expiries exact");
    }
    dataset_set_target_expiry_shift(0);
    cluster_fixture_stop(c);
}

Test(cluster_dest, standalone_to_cluster_matches_a_native_replica_with_one_worker)
{
    standalone_to_cluster_matches_a_native_replica("1", true);
}

Test(cluster_dest, standalone_to_cluster_matches_a_native_replica_with_two_workers)
{
    standalone_to_cluster_matches_a_native_replica("2", false);
}

/* The target may be any node, a replica too: the masters are found from it. */
Test(cluster_dest, a_replica_node_as_the_target_reaches_every_master)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 3000 key 16");
    const char *const extra[] = {"--target-mode", "cluster", NULL};
    struct program *p = ringsync_into(src, c, 4, "2", extra);
    wait_snapshot_applied(p);
    for (int i = 0; i < 300; i++)
        redis_fixture_exec(src->ctx, "SET after:%d %d", i, i);
    wait_caught_up(src, -1, p, "through a replica node");
    ringsync_stop(p, "through a replica node");
    assert_cluster_equals(c, src, "source", "through replica node 4");
    cluster_fixture_stop(c);
}

/* ------------------------------------------------ commands across slots */

/* Two keys whose slots differ. A RENAME or COPY of one to the other is
 * carried out (DUMP/RESTORE/DEL, below); a COPY ... DB n is not (it may
 * name another database): that is what the --cross-slot policy tests use. */
static const char rename_from[] = "{a}ren:from";
static const char rename_to[] = "{b}ren:to";

/* Runs a command given as one line of words split at spaces. */
static void exec_words(redisContext *c, const char *line)
{
    char buf[512];
    const char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *w = strtok(buf, " "); w != NULL && argc < 32; w = strtok(NULL, " "))
        argv[argc++] = w;
    freeReplyObject(redis_fixture_command_argv(c, argc, argv, NULL));
}

Test(cluster_dest, a_copy_db_across_slots_stops_the_job_naming_command_slots_and_offset)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    unsigned from_slot = slot_of_key(rename_from, strlen(rename_from));
    unsigned to_slot = slot_of_key(rename_to, strlen(rename_to));
    cr_assert(from_slot != to_slot);
    redis_fixture_exec(src->ctx, "SET before 1");
    struct program *p = ringsync_into(src, c, 0, "2", NULL);
    wait_snapshot_applied(p);
    redis_fixture_exec(src->ctx, "SET %s v", rename_from);
    wait_caught_up(src, -1, p, "before the RENAME");

    long long offset_before = info_number(src->ctx, "replication", "master_repl_offset");
    redis_fixture_exec(src->ctx, "COPY %s %s DB 0", rename_from, rename_to);
    long long offset = info_number(src->ctx, "replication", "master_repl_offset");
    redis_fixture_exec(src->ctx, "SET after 1");
    struct ended e;
    wait_ringsync_ends(src, p, offset, &e);
    assert_exit_1(&e.r, "a COPY ... DB 0 across slots, --cross-slot stop (the default)");
    cr_assert(e.acknowledged < offset,
              "ringsync acknowledged offset %lld, past the COPY it could not apply (ending at "
              "%lld); stderr:\n%s",
              e.acknowledged, offset, e.r.err);
    char slot_a[16], slot_b[16];
    snprintf(slot_a, sizeof(slot_a), "%u", from_slot);
    snprintf(slot_b, sizeof(slot_b), "%u", to_slot);
    cr_assert(strcasestr(e.r.err, "COPY") != NULL &&
                  line_has_number(e.r.err, "COPY", -1, from_slot) &&
                  line_has_number(e.r.err, "COPY", -1, to_slot),
              "the failure does not name COPY with the slots %s (%s) and %s (%s) on its "
              "line:\n%s",
              slot_a, rename_from, slot_b, rename_to, e.r.err);
    cr_assert(names_offset_within(e.r.err, offset_before, offset),
              "the failure does not name the COPY's source offset (within %lld..%lld) after "
              "\"offset\":\n%s",
              offset_before, offset, e.r.err);
    char v[32];
    cluster_get(c, rename_from, v, sizeof(v));
    cr_assert_str_eq(v, "v", "the COPY changed its source: %s is %s", rename_from, v);
    cluster_get(c, rename_to, v, sizeof(v));
    cr_assert_str_eq(v, "(nil)", "the COPY was applied: %s is %s", rename_to, v);
    program_result_deinit(&e.r);
    cluster_fixture_stop(c);
}

#define SKIPPED_RENAMES 3

Test(cluster_dest, copies_db_across_slots_are_skipped_and_counted_with_cross_slot_skip)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "SET before 1");
    const char *const extra[] = {"--cross-slot", "skip", NULL};
    struct program *p = ringsync_into(src, c, 0, "2", extra);
    wait_snapshot_applied(p);
    for (int i = 0; i < SKIPPED_RENAMES; i++) {
        redis_fixture_exec(src->ctx, "SET {a}r%d v%d", i, i);
        redis_fixture_exec(src->ctx, "COPY {a}r%d {b}r%d DB 0", i, i);
        redis_fixture_exec(src->ctx, "SET {c}after%d %d", i, i); /* goes on after each */
    }
    wait_caught_up(src, -1, p, "past the skipped RENAMEs");
    struct program_result r;
    ringsync_stop_result(p, "--cross-slot skip", &r);
    cr_assert(strcasestr(r.err, "COPY") != NULL,
              "the skipped COPY is not named on standard error:\n%s", r.err);
    cr_assert(line_has_number(r.err, "cross-slot", -1, SKIPPED_RENAMES),
              "no line of standard error says \"cross-slot\" with the count %d of the skipped "
              "commands:\n%s",
              SKIPPED_RENAMES, r.err);
    program_result_deinit(&r);

    /* Dropped whole: the cluster is the source without the copies. */
    for (int i = 0; i < SKIPPED_RENAMES; i++)
        redis_fixture_exec(src->ctx, "DEL {b}r%d", i);
    assert_cluster_equals(c, src, "source with the copies undone", "--cross-slot skip");
    cluster_fixture_stop(c);
}

/* Every command a cluster cannot run as it came and ringsync carries out
 * as the same effects (cross_slot.h), each with its keys in two or three
 * slots, against a native replica of the source, with one and two workers;
 * the source's TTL travels with a RENAME. */
static const char *const carried_out[] = {
    "SET {a}ren v", "PEXPIRE {a}ren 900000000", "RENAME {a}ren {b}ren", "SET {a}nx w",
    "RENAMENX {a}nx {c}nx", "SET {a}copy hello", "COPY {a}copy {b}copy", "SET {c}copy old",
    "COPY {a}copy {c}copy REPLACE", "SADD {a}s x y z", "SMOVE {a}s {b}s y", "RPUSH {a}l 1 2 3 4",
    "LMOVE {a}l {b}l LEFT RIGHT", "LMOVE {a}l {c}l RIGHT LEFT", "RPOPLPUSH {a}l {b}l",
    "SADD {a}u1 a b", "SADD {b}u2 b c", "SUNIONSTORE {c}u3 {a}u1 {b}u2",
    "SINTERSTORE {a}u4 {a}u1 {b}u2", "SDIFFSTORE {b}u5 {a}u1 {b}u2 {c}nothing",
    "ZADD {a}z1 1 a 2 b", "ZADD {b}z2 3 b 4 c",
    "ZUNIONSTORE {c}z3 2 {a}z1 {b}z2 WEIGHTS 1 2 AGGREGATE MAX", "ZINTERSTORE {c}z4 2 {a}z1 {b}z2",
    "ZDIFFSTORE {b}z5 2 {a}z1 {b}z2", "ZRANGESTORE {c}z6 {a}z1 0 -1", "SET {a}b1 ab",
    "SET {b}b2 cd", "BITOP OR {c}b3 {a}b1 {b}b2", "BITOP NOT {b}b4 {a}b1", "PFADD {a}h1 a b c",
    "PFADD {b}h2 c d", "PFMERGE {c}h3 {a}h1 {b}h2", "PFMERGE {a}h1 {b}h2", "RPUSH {a}sl 3 1 2",
    "SORT {a}sl STORE {b}sl2", "SORT {a}sl DESC LIMIT 0 2 STORE {c}sl3",
    "GEOADD {a}g 13.36 38.11 pa 15.08 37.50 ca",
    "GEOSEARCHSTORE {b}g2 {a}g FROMLONLAT 15 37 BYRADIUS 200 km",
    "GEORADIUS {a}g 15 37 200 km STORE {c}g3", "GEORADIUSBYMEMBER {a}g pa 300 km STOREDIST {b}g4",
    /* a transaction holding some: run command by command, in order */
    "MULTI", "SET {a}t1 x", "RENAME {a}t1 {b}t1", "INCR {c}n", "LMOVE {b}l {c}l LEFT LEFT",
    "DEL {a}b1 {b}b2", "SUNIONSTORE {a}u6 {b}u2 {c}u3", "EXEC", NULL};

static void cross_slot_commands_are_carried_out(const char *workers)
{
    struct redis_fixture *src = start_source();
    struct redis_fixture *rep = start_debug_server();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "SET before 1");
    redis_fixture_replicate(rep, src, 30000);
    struct program *p = ringsync_into(src, c, 0, workers, NULL);
    wait_snapshot_applied(p);
    for (int i = 0; carried_out[i] != NULL; i++)
        exec_words(src->ctx, carried_out[i]);
    wait_caught_up(src, rep->port, p, "the carried-out commands");
    dataset_set_target_expiry_shift(EXPIRY_MARGIN_MS);
    assert_cluster_equals(c, rep, "native replica", "after the carried-out commands");
    struct program_result r;
    ringsync_stop_result(p, "carried out", &r);
    cr_assert(strstr(r.err, "carried out") != NULL,
              "standard error does not say commands were carried out:\n%s", r.err);
    program_result_deinit(&r);
    dataset_set_target_expiry_shift(0);
    assert_cluster_equals(c, rep, "native replica", "after the stop, expiries exact");
    /* no temporary key is left behind */
    for (int i = 0; i < c->nmasters; i++) {
        redisReply *k = redis_fixture_command(c->nodes[i]->ctx, "KEYS *ringsync:tmp:*");
        cr_assert(k->type == REDIS_REPLY_ARRAY && k->elements == 0,
                  "master %d holds %zu temporary keys", i, k->elements);
        freeReplyObject(k);
    }
    cluster_fixture_stop(c);
}

Test(cluster_dest, cross_slot_commands_are_carried_out_as_the_same_effects_with_one_worker)
{
    cross_slot_commands_are_carried_out("1");
}

Test(cluster_dest, cross_slot_commands_are_carried_out_as_the_same_effects_with_two_workers)
{
    cross_slot_commands_are_carried_out("2");
}

/* ---------------------------------------------------------------- databases */

/* The digest of key in db of a standalone server, or of the cluster's key
 * (its owner asked), into out: "-" when absent. */
static void digest_of(redisContext *c, const char *key, size_t len, char *out, size_t cap)
{
    const char *argv[3] = {"DEBUG", "DIGEST-VALUE", key};
    size_t lens[3] = {5, 12, len};
    redisReply *r = redis_fixture_command_argv(c, 3, argv, lens);
    const redisReply *d = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : r;
    snprintf(out, cap, "%s", d->type == REDIS_REPLY_STRING ? d->str : "-");
    freeReplyObject(r);
}

/* Every key of source db `db` is on the cluster as prefix + key, with the
 * same value (DEBUG DIGEST-VALUE); returns how many were compared. */
static size_t assert_prefixed_db_equal(struct redis_fixture *src, const struct cluster_fixture *c,
                                       int db, const char *prefix)
{
    redisContext *s = redis_fixture_connect(src);
    redis_fixture_exec(s, "SELECT %d", db);
    size_t n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redis_fixture_command(s, "SCAN %s COUNT 500", cursor);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *k = r->element[1]->element[i];
            char pk[512], want[64], got[64];
            int pl = snprintf(pk, sizeof(pk), "%s%.*s", prefix, (int)k->len, k->str);
            digest_of(s, k->str, k->len, want, sizeof(want));
            redisContext *o = cluster_fixture_connect_owner(c, pk, (size_t)pl);
            digest_of(o, pk, (size_t)pl, got, sizeof(got));
            redisFree(o);
            cr_assert_str_eq(got, want, "db %d key '%s' is '%s' on the cluster, '%s' on the source",
                             db, pk, got, want);
            n++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(s);
    return n;
}

/* --db-prefix: databases 0 and 3 of the source share the cluster's db 0,
 * each under db{N}:, snapshot and stream alike (a transaction, a RENAME
 * carried out across slots, a DEL split), nothing else on the cluster; a
 * FLUSHDB then stops the job naming it (one database is a prefix there). */
Test(cluster_dest, db_prefix_puts_every_database_under_its_prefix)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 2000 key 16");
    redis_fixture_exec(src->ctx, "SELECT 3");
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 1000 key 16");
    redis_fixture_exec(src->ctx, "RPUSH list a b c");
    redis_fixture_exec(src->ctx, "SELECT 0");
    const char *const extra[] = {"--db-prefix", NULL};
    struct program *p = ringsync_into(src, c, 0, "2", extra);
    wait_snapshot_applied(p);
    redis_fixture_exec(src->ctx, "SELECT 3");
    redis_fixture_exec(src->ctx, "SET x 1");
    redis_fixture_exec(src->ctx, "RENAME key:1 key:2");
    redis_fixture_exec(src->ctx, "MULTI");
    redis_fixture_exec(src->ctx, "INCR {t}a");
    redis_fixture_exec(src->ctx, "LPUSH list z");
    redis_fixture_exec(src->ctx, "EXEC");
    redis_fixture_exec(src->ctx, "SELECT 0");
    redis_fixture_exec(src->ctx, "SET y 2");
    redis_fixture_exec(src->ctx, "DEL key:3 key:4 key:5");
    wait_caught_up(src, -1, p, "--db-prefix");
    size_t n = assert_prefixed_db_equal(src, c, 0, "db0:");
    n += assert_prefixed_db_equal(src, c, 3, "db3:");
    long long on_cluster = cluster_fixture_data_keys(c);
    cr_assert(on_cluster == (long long)n,
              "the cluster holds %lld keys, the source's dbs 0 and 3 %zu", on_cluster, n);
    long long offset = info_number(src->ctx, "replication", "master_repl_offset");
    redis_fixture_exec(src->ctx, "SELECT 3");
    redis_fixture_exec(src->ctx, "FLUSHDB");
    redis_fixture_exec(src->ctx, "SELECT 0");
    struct ended e;
    wait_ringsync_ends(src, p, offset, &e);
    assert_exit_1(&e.r, "FLUSHDB with --db-prefix");
    cr_assert(strcasestr(e.r.err, "FLUSHDB") != NULL && strstr(e.r.err, "--db-prefix") != NULL,
              "the stop does not name FLUSHDB and --db-prefix:\n%s", e.r.err);
    program_result_deinit(&e.r);
    cluster_fixture_stop(c);
}

#define DB1_KEYS 500

Test(cluster_dest, a_source_db_without_a_mapping_stops_the_job_at_the_start_naming_it)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 1000 key 16");
    redis_fixture_exec(src->ctx, "SELECT 1");
    redis_fixture_exec(src->ctx, "DEBUG POPULATE %d db1key 16", DB1_KEYS);
    redis_fixture_exec(src->ctx, "SELECT 0");
    struct program *p = ringsync_into(src, c, 0, "1", NULL);
    struct ended e;
    wait_ringsync_ends(src, p, 0, &e);
    assert_exit_1(&e.r, "keys in db 1, no --db-map for it");
    cr_assert(names_db(e.r.err, 1), "the failure does not name db 1:\n%s", e.r.err);
    cr_assert(strstr(e.r.err, "snapshot applied") == NULL,
              "the job stopped after the snapshot, not at its start:\n%s", e.r.err);
    program_result_deinit(&e.r);
    cluster_fixture_stop(c);
}

Test(cluster_dest, a_write_to_an_unmapped_db_stops_the_job_at_its_first_command_naming_it)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "SET before 1");
    struct program *p = ringsync_into(src, c, 0, "2", NULL);
    wait_snapshot_applied(p);
    wait_caught_up(src, -1, p, "before db 2");
    redis_fixture_exec(src->ctx, "SELECT 2");
    redis_fixture_exec(src->ctx, "SET in:db2 x");
    long long offset = info_number(src->ctx, "replication", "master_repl_offset");
    redis_fixture_exec(src->ctx, "SELECT 0");
    redis_fixture_exec(src->ctx, "SET after 1");
    struct ended e;
    wait_ringsync_ends(src, p, offset, &e);
    assert_exit_1(&e.r, "a write to db 2, no --db-map for it");
    cr_assert(names_db(e.r.err, 2), "the failure does not name db 2:\n%s", e.r.err);
    cr_assert(e.acknowledged < offset,
              "ringsync acknowledged offset %lld, past the write to db 2 (ending at %lld)",
              e.acknowledged, offset);
    program_result_deinit(&e.r);
    cluster_fixture_stop(c);
}

Test(cluster_dest, db_map_1_to_0_brings_db_1_into_the_cluster)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "SELECT 1");
    redis_fixture_exec(src->ctx, "DEBUG POPULATE %d db1key 16", DB1_KEYS);
    redis_fixture_exec(src->ctx, "HSET db1:hash f v g w");
    redis_fixture_exec(src->ctx, "SELECT 0");
    const char *const extra[] = {"--db-map", "1:0", NULL};
    struct program *p = ringsync_into(src, c, 0, "2", extra);
    wait_snapshot_applied(p);
    redis_fixture_exec(src->ctx, "SELECT 1");
    for (int i = 0; i < 200; i++)
        redis_fixture_exec(src->ctx, "SET db1key:%d stream:%d", i * 2, i);
    redis_fixture_exec(src->ctx, "MSET {a}db1 1 {b}db1 2");
    redis_fixture_exec(src->ctx, "DEL db1key:1 db1key:3");
    redis_fixture_exec(src->ctx, "SELECT 0");
    wait_caught_up(src, -1, p, "--db-map 1:0");
    ringsync_stop(p, "--db-map 1:0");
    /* The source's db 1 becomes its db 0 (ringsync has stopped): the oracle. */
    redis_fixture_exec(src->ctx, "SWAPDB 0 1");
    assert_cluster_equals(c, src, "source's db 1", "--db-map 1:0");
    cluster_fixture_stop(c);
}

#define DB1_STREAM_WRITES 7

Test(cluster_dest, db_unmapped_skip_drops_db_1_and_says_how_many)
{
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    redis_fixture_exec(src->ctx, "DEBUG POPULATE 1000 key 16");
    redis_fixture_exec(src->ctx, "SELECT 1");
    redis_fixture_exec(src->ctx, "DEBUG POPULATE %d db1key 16", DB1_KEYS);
    redis_fixture_exec(src->ctx, "SELECT 0");
    const char *const extra[] = {"--db-unmapped", "skip", NULL};
    struct program *p = ringsync_into(src, c, 0, "2", extra);
    wait_snapshot_applied(p);
    for (int i = 0; i < DB1_STREAM_WRITES; i++) {
        redis_fixture_exec(src->ctx, "SELECT 1");
        redis_fixture_exec(src->ctx, "SET db1:stream:%d x", i);
        redis_fixture_exec(src->ctx, "SELECT 0");
        redis_fixture_exec(src->ctx, "SET db0:stream:%d y", i);
    }
    wait_caught_up(src, -1, p, "--db-unmapped skip");
    struct program_result r;
    ringsync_stop_result(p, "--db-unmapped skip", &r);
    /* One total (keys and commands), or each count on a line naming db 1. */
    bool says_total = line_has_number(r.err, "unmapped", -1, DB1_KEYS + DB1_STREAM_WRITES) ||
                      line_has_number(r.err, NULL, 1, DB1_KEYS + DB1_STREAM_WRITES);
    bool says_each = line_has_number(r.err, NULL, 1, DB1_KEYS) &&
                     line_has_number(r.err, NULL, 1, DB1_STREAM_WRITES);
    cr_assert(says_total || says_each,
              "standard error does not say how much of db 1 was dropped: %d snapshot keys and %d "
              "stream commands (%d in all, on a line saying \"unmapped\" or naming db 1):\n%s",
              DB1_KEYS, DB1_STREAM_WRITES, DB1_KEYS + DB1_STREAM_WRITES, r.err);
    program_result_deinit(&r);
    redis_fixture_exec(src->ctx, "SELECT 1");
    redis_fixture_exec(src->ctx, "FLUSHDB");
    redis_fixture_exec(src->ctx, "SELECT 0");
    assert_cluster_equals(c, src, "source's db 0", "--db-unmapped skip");
    cluster_fixture_stop(c);
}

/* ---------------------------------------------------------------- topology */

Test(cluster_dest, a_cluster_with_unserved_slots_is_refused_naming_the_ranges)
{
    const struct cluster_fixture_range ranges[] = {
        {0, 100, 7999}, {1, 8100, 12000}, {2, 12001, 16383}};
    struct cluster_fixture_opts o = {
        .masters = 3, .replicas_per_master = 1, .ranges = ranges, .nranges = 3};
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = cluster_fixture_start(&o);
    redis_fixture_exec(src->ctx, "SET k v");
    struct program *p = ringsync_into(src, c, 1, "1", NULL);
    struct ended e;
    wait_ringsync_ends(src, p, 0, &e);
    assert_exit_1(&e.r, "slots 0-99 and 8000-8099 unserved");
    cr_assert(strstr(e.r.err, "0-99") != NULL && strstr(e.r.err, "8000-8099") != NULL,
              "the failure does not name the unserved ranges 0-99 and 8000-8099:\n%s", e.r.err);
    program_result_deinit(&e.r);
    cluster_fixture_stop(c);
}
