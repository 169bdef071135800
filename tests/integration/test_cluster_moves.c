/* test_cluster_moves.c - `ringsync sync` into a Redis Cluster that changes
 * under it while a write load runs (issue 14; src/CLUSTER_DESTINATION.md
 * §3-§5): slots resharded, a master failed over by hand, a master killed.
 *
 *     source ──REPLICAOF──▶ native replica (standalone: the oracle)
 *        │  ▲
 *        │  └── the load: a few thousand writes a second (this thread)
 *        └──PSYNC──▶ ringsync sync ──▶ cluster: 3 masters + 3 replicas
 *                                          ▲
 *                the resharding / failover / kill (this thread, between
 *                the load's batches)
 *
 * The load (load_tick) is pipelined batches of LOAD_BATCH commands every
 * LOAD_PERIOD_MS on a connection of its own to the source: SET, INCR,
 * LPUSH, RPUSH, HSET, SADD, ZADD, DEL, APPEND and expiries over a few
 * thousand keys of every slot (the snapshot's keys too), an MSET of two keys
 * of one slot and a DEL across slots (split per slot by ringsync). Every
 * command succeeds on the source.
 *
 * The resharding (reshard_*) moves a third of the slots the way `redis-cli
 * --cluster reshard` does, one slot at a time, a load batch between slots
 * when one is due: CLUSTER SETSLOT s IMPORTING on the new owner, SETSLOT s
 * MIGRATING on the old one, GETKEYSINSLOT + MIGRATE ... KEYS until the slot
 * is empty there, then SETSLOT s NODE on the new owner, the old one and the
 * other masters. The first half of master 0's slots go to master 1 and the
 * first half of master 1's to master 2, in alternating chunks.
 *
 * A slot is migrating for a millisecond or two, so the load alone seldom
 * meets one half moved. One moved slot in SLOW_EVERY is therefore *slow*: the
 * snapshot holds a dozen keys with its hash tag ({h<N>}), they migrate one
 * MIGRATE each, and before each a burst of commands to them goes to the
 * source (load_hot), then HOT_SETTLE_MS for ringsync to apply it: commands
 * on keys already moved (the old owner answers ASK), on keys not created yet
 * (ASK: they go to the new owner), and MSET / DEL of two keys of which one
 * has moved (TRYAGAIN), with single-key commands of the same slot behind
 * them. As redis-cli does with slots of more keys than its MIGRATE pipeline
 * (10).
 *
 * MIGRATE sends a key's TTL relative and the new owner adds it to its own
 * clock, so moved keys expire a few milliseconds later than on the source:
 * the comparisons take up to MIGRATE_DRIFT_MS later, on moved slots only, as
 * equal (dataset_set_migrated_expiry_tolerance).
 *
 * Tests:
 *   - the machinery alone, without ringsync: the cluster (filled like the
 *     source's snapshot) is resharded and then failed over while the load
 *     runs on the source; the slow slots answered ASK for each key moved and
 *     TRYAGAIN for their split pair (probed after each MIGRATE); every node
 *     then agrees on the new owners, says cluster_state:ok, `redis-cli
 *     --cluster check` is happy, the moved slots' keys are on their new owner
 *     only, the cluster equals a standalone reference filled the same way and
 *     the native replica equals the source (when a test below fails, this one
 *     says whether the harness or ringsync is to blame);
 *   - a resharding during the load, --workers 1 and 2: ringsync follows the
 *     MOVED replies (its log says so), catches up, and the cluster equals the
 *     native replica, while it follows and after its stop (expiries exact);
 *   - a manual failover (CLUSTER FAILOVER on master 0's replica) during the
 *     load: the same;
 *   - a resharding, then a master killed (its replica takes over) during the
 *     load, with the default checkpoints: the same (issue 14's "resharding
 *     and failover in the middle of the load");
 *   - a master killed (SIGKILL) during the load, with --checkpoint none: exit
 *     1, the standard error naming the node and the applied offset (with
 *     checkpoints, the default, the job follows it: integration_checkpoints).
 *
 * ringsync runs without --quiet in the first two kinds so that whatever it
 * logs about redirections is there to read.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "cluster_fixture.h"
#include "dataset_compare.h"
#include "redis_fixture.h"
#include "slot.h"
#include "sync_watch.h"

#define SNAPSHOT_KEYS       20000
#define LOAD_KEYS           600 /* per key family */
#define LOAD_BATCH          50
#define LOAD_PERIOD_MS      10 /* LOAD_BATCH every 10 ms: 5000 commands/s */
#define LOAD_BEFORE_MS      1000
#define LOAD_AFTER_MS       1500
#define MOVE_CHUNK          64
#define MIGRATE_BATCH       100
#define MIGRATE_TIMEOUT_MS  5000
#define SETTLE_TIMEOUT_MS   15000
#define FAILOVER_TIMEOUT_MS 15000
#define KILLED_EXIT_MS      20000
#define EXPIRY_MARGIN_MS    (3600 * 1000) /* ringsync's default --expiry-margin */
#define MIN_MOVED_SLOT_CMDS 1000          /* load commands sent to moved slots while they moved */
#define MIGRATE_DRIFT_MS    1000 /* how much later MIGRATE may leave an expiry (relative TTL) */
#define SLOW_EVERY          64   /* one moved slot in 64 migrates a key at a time, written to */
#define HOT_BURST           8    /* commands to a slow slot's keys before each of its MIGRATEs */
#define HOT_SETTLE_MS       3    /* then this long, the load going on, for ringsync to apply them */

TestSuite(cluster_moves, .fini = redis_fixture_stop_all, .timeout = 240);

/* a backlog that holds what is written while ringsync waits out a killed
 * destination master (the default 1 MB is a few seconds of the load) */
static const char *const source_args[] = {"--enable-debug-command",
                                          "yes",
                                          "--repl-diskless-sync-delay",
                                          "0",
                                          "--repl-backlog-size",
                                          "64mb",
                                          NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

/* ---------------------------------------------------------------- servers */

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

/* The snapshot: DEBUG POPULATE's key:0 .. key:N-1 ("value:i") and a few
 * collections. */
static const char *const snapshot_extras[] = {
    "RPUSH snap:list a b c d e f",       "SADD snap:set a b c",
    "ZADD snap:zset 1 a 2 b 3 c",        "HSET snap:hash f1 v1 f2 v2",
    "SET snap:ttl v PXAT 4102444800123",
};

/* The keys a slow slot (struct reshard) holds from the start, all with the
 * hash tag {h<tag>}: strings, counters, a list, a pair (an MSET of both gets
 * TRYAGAIN once one has moved and the other not), a hash. */
static void hot_keys_append(struct redis_pipeline *p, int tag)
{
    for (int i = 0; i < 4; i++) {
        redis_pipeline_append(p, "SET {h%d}s:%d snap", tag, i);
        redis_pipeline_append(p, "SET {h%d}c:%d %d", tag, i, i);
    }
    redis_pipeline_append(p, "RPUSH {h%d}l a b", tag);
    redis_pipeline_append(p, "MSET {h%d}p:a a {h%d}p:b b", tag, tag);
    redis_pipeline_append(p, "HSET {h%d}h f v", tag);
}

struct reshard;
static int reshard_tag_of(const struct reshard *r, int slot);

/* The source's snapshot, with the keys of r's slow slots (r may be NULL). */
static void fill_source(struct redis_fixture *src, const struct reshard *r)
{
    redis_fixture_exec(src->ctx, "DEBUG POPULATE %d key 32", SNAPSHOT_KEYS);
    struct redis_pipeline p;
    redis_pipeline_init(&p, src->ctx, 1000);
    for (size_t i = 0; i < sizeof(snapshot_extras) / sizeof(*snapshot_extras); i++)
        redis_pipeline_append(&p, snapshot_extras[i]);
    for (int s = 0; r != NULL && s < 16384; s++)
        if (reshard_tag_of(r, s) >= 0)
            hot_keys_append(&p, reshard_tag_of(r, s));
    redis_pipeline_flush(&p);
}

/* The same data set written to the cluster, each key on the master the
 * fixture gave its slot, and to a standalone reference: for the machinery
 * test, where no ringsync fills the cluster. */
static void fill_cluster_and_reference(struct cluster_fixture *c, struct redis_fixture *ref,
                                       const struct reshard *r)
{
    redisContext *ctx[CLUSTER_FIXTURE_MAX_NODES];
    struct redis_pipeline p[CLUSTER_FIXTURE_MAX_NODES];
    for (int m = 0; m < c->nmasters; m++) {
        ctx[m] = redis_fixture_connect(c->nodes[m]);
        redis_pipeline_init(&p[m], ctx[m], 1000);
    }
    struct redis_pipeline rp;
    redis_pipeline_init(&rp, ref->ctx, 1000);
    for (int i = 0; i < SNAPSHOT_KEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key:%d", i);
        int m = c->slot_master[slot_of_key(key, strlen(key))];
        redis_pipeline_append(&p[m], "SET %s value:%d", key, i);
        redis_pipeline_append(&rp, "SET %s value:%d", key, i);
    }
    for (size_t i = 0; i < sizeof(snapshot_extras) / sizeof(*snapshot_extras); i++) {
        const char *key = strchr(snapshot_extras[i], ' ') + 1;
        int m = c->slot_master[slot_of_key(key, strcspn(key, " "))];
        redis_pipeline_append(&p[m], snapshot_extras[i]);
        redis_pipeline_append(&rp, snapshot_extras[i]);
    }
    for (int s = 0; s < 16384; s++)
        if (reshard_tag_of(r, s) >= 0) {
            hot_keys_append(&p[c->slot_master[s]], reshard_tag_of(r, s));
            hot_keys_append(&rp, reshard_tag_of(r, s));
        }
    redis_pipeline_flush(&rp);
    for (int m = 0; m < c->nmasters; m++) {
        redis_pipeline_flush(&p[m]);
        redisFree(ctx[m]);
    }
}

/* ---------------------------------------------------------------- the load */

struct load {
    redisContext *ctx; /* its own connection to the source */
    struct redis_pipeline pipe;
    uint64_t rng;
    long long next_ms;
    long long sent;    /* commands */
    long long busy_ms; /* time the load was running (for its rate) */
    long long last_tick_ms;
    /* Set by the caller: slots being moved now; commands sent to them are
     * counted in moved_slot_cmds. NULL: none. */
    const bool *moving;
    long long moved_slot_cmds;
    struct program *ringsync; /* checked between batches; NULL: none */
    const char *what;
};

static void load_init(struct load *l, struct redis_fixture *src, struct program *ringsync,
                      const char *what)
{
    memset(l, 0, sizeof(*l));
    l->ctx = redis_fixture_connect(src);
    redis_pipeline_init(&l->pipe, l->ctx, LOAD_BATCH * 2);
    l->rng = 0x9e3779b97f4a7c15ULL;
    l->next_ms = fixture_now_ms();
    l->ringsync = ringsync;
    l->what = what;
}

static uint64_t load_next(struct load *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

/* Counts a command just appended, key its first key (for moved_slot_cmds). */
static void load_count(struct load *l, const char *key)
{
    if (l->moving != NULL && l->moving[slot_of_key(key, strlen(key))])
        l->moved_slot_cmds++;
    l->sent++;
}

/* One command of the load: families chosen so that every command succeeds
 * whatever ran before it (a type per key prefix). */
static void load_one(struct load *l)
{
    uint64_t x = load_next(l);
    unsigned n = (unsigned)((x >> 8) % LOAD_KEYS);
    unsigned m = (unsigned)((x >> 32) % LOAD_KEYS);
    unsigned snap = (unsigned)((x >> 20) % SNAPSHOT_KEYS);
    long long seq = l->sent;
    struct redis_pipeline *p = &l->pipe;
    char key[48];
    switch (x % 16) {
    case 0:
    case 1:
        snprintf(key, sizeof(key), "ld:s:%u", n);
        redis_pipeline_append(p, "SET %s v:%lld", key, seq);
        break;
    case 2:
        snprintf(key, sizeof(key), "ld:c:%u", n);
        redis_pipeline_append(p, "INCR %s", key);
        break;
    case 3:
        snprintf(key, sizeof(key), "ld:l:%u", n);
        redis_pipeline_append(p, "LPUSH %s %lld", key, seq);
        break;
    case 4:
        snprintf(key, sizeof(key), "ld:h:%u", n);
        redis_pipeline_append(p, "HSET %s f%u %lld", key, m % 8, seq);
        break;
    case 5:
        snprintf(key, sizeof(key), "ld:t:%u", n);
        redis_pipeline_append(p, "SADD %s m%u", key, m % 64);
        break;
    case 6:
        snprintf(key, sizeof(key), "ld:z:%u", n);
        redis_pipeline_append(p, "ZADD %s %lld m%u", key, seq, m % 32);
        break;
    case 7: {
        static const char *const fam[] = {"s", "c", "l", "h", "t", "z"};
        snprintf(key, sizeof(key), "ld:%s:%u", fam[m % 6], n);
        redis_pipeline_append(p, "DEL %s", key);
        break;
    }
    case 8:
        snprintf(key, sizeof(key), "key:%u", snap);
        redis_pipeline_append(p, "SET %s v:%lld EX 100000", key, seq);
        break;
    case 9:
        snprintf(key, sizeof(key), "key:%u", snap);
        redis_pipeline_append(p, "APPEND %s +%lld", key, seq);
        break;
    case 10:
        snprintf(key, sizeof(key), "key:%u", snap);
        redis_pipeline_append(p, "DEL %s", key);
        break;
    case 11:
        snprintf(key, sizeof(key), "{ld:%u}a", n);
        redis_pipeline_append(p, "MSET {ld:%u}a %lld {ld:%u}b %lld", n, seq, n, seq);
        break;
    case 12:
        snprintf(key, sizeof(key), "ld:s:%u", n);
        redis_pipeline_append(p, "DEL %s ld:c:%u", key, m);
        break;
    case 13:
        snprintf(key, sizeof(key), "ld:h:%u", n);
        redis_pipeline_append(p, "EXPIRE %s 100000", key);
        break;
    case 14:
        snprintf(key, sizeof(key), "ld:c:%u", n);
        redis_pipeline_append(p, "INCRBY %s %u", key, m);
        break;
    default:
        snprintf(key, sizeof(key), "ld:l:%u", n);
        redis_pipeline_append(p, "RPUSH %s x%lld", key, seq);
        break;
    }
    load_count(l, key);
}

/* One command to the keys of a slow slot (hash tag {h<tag>}): on keys
 * already moved (ASK), on a pair split by the migration (TRYAGAIN), on keys
 * that do not exist yet (ASK: they are created on the new owner). */
static void load_hot_one(struct load *l, int tag)
{
    uint64_t x = load_next(l);
    unsigned i = (unsigned)((x >> 8) % 4), j = (unsigned)((x >> 16) % 16);
    long long seq = l->sent;
    struct redis_pipeline *p = &l->pipe;
    char key[48];
    switch (x % 8) {
    case 0:
        snprintf(key, sizeof(key), "{h%d}s:%u", tag, i);
        redis_pipeline_append(p, "SET %s v:%lld", key, seq);
        break;
    case 1:
        snprintf(key, sizeof(key), "{h%d}c:%u", tag, i);
        redis_pipeline_append(p, "INCR %s", key);
        break;
    case 2:
        snprintf(key, sizeof(key), "{h%d}l", tag);
        redis_pipeline_append(p, "RPUSH %s %lld", key, seq);
        break;
    case 3:
        snprintf(key, sizeof(key), "{h%d}p:a", tag);
        redis_pipeline_append(p, "MSET %s %lld {h%d}p:b %lld", key, seq, tag, seq);
        break;
    case 4:
        snprintf(key, sizeof(key), "{h%d}n:%u", tag, j);
        redis_pipeline_append(p, "SET %s v:%lld", key, seq);
        break;
    case 5:
        snprintf(key, sizeof(key), "{h%d}n:%u", tag, j);
        redis_pipeline_append(p, "DEL %s {h%d}s:%u", key, tag, i);
        break;
    case 6:
        snprintf(key, sizeof(key), "{h%d}s:%u", tag, i);
        redis_pipeline_append(p, "APPEND %s +%lld", key, seq);
        break;
    default:
        snprintf(key, sizeof(key), "{h%d}h", tag);
        redis_pipeline_append(p, "HSET %s f%u %lld", key, j, seq);
        break;
    }
    load_count(l, key);
}

/* Fails the test when ringsync (if watched) has exited. */
static void load_check_ringsync(struct load *l)
{
    if (l->ringsync != NULL && program_has_exited(l->ringsync))
        ringsync_fail(l->ringsync, "%s: ringsync exited during the load (%lld commands sent)",
                      l->what, l->sent);
}

/* Sends one batch when it is due (never a burst to catch up). */
static void load_tick(struct load *l)
{
    long long now = fixture_now_ms();
    if (now < l->next_ms)
        return;
    for (int i = 0; i < LOAD_BATCH; i++)
        load_one(l);
    redis_pipeline_flush(&l->pipe);
    long long after = fixture_now_ms();
    l->busy_ms += l->last_tick_ms > 0 ? after - l->last_tick_ms : 0;
    l->last_tick_ms = after;
    l->next_ms =
        l->next_ms + LOAD_PERIOD_MS > after ? l->next_ms + LOAD_PERIOD_MS : after + LOAD_PERIOD_MS;
    load_check_ringsync(l);
}

/* HOT_BURST commands to a slow slot's keys, at once. */
static void load_hot(struct load *l, int tag)
{
    for (int i = 0; i < HOT_BURST; i++)
        load_hot_one(l, tag);
    redis_pipeline_flush(&l->pipe);
    load_check_ringsync(l);
}

/* Runs the load alone for ms. */
static void load_for_ms(struct load *l, int ms)
{
    long long end = fixture_now_ms() + ms;
    while (fixture_now_ms() < end) {
        load_tick(l);
        sleep_ms(1);
    }
}

/* Stops the load (the source has every reply) and logs its rate. */
static void load_deinit(struct load *l)
{
    redis_pipeline_flush(&l->pipe);
    redisFree(l->ctx);
    cr_log_info("%s: the load sent %lld commands, %.0f/s, %lld to slots while they moved", l->what,
                l->sent, l->busy_ms > 0 ? l->sent * 1000.0 / (double)l->busy_ms : 0.0,
                l->moved_slot_cmds);
}

/* ------------------------------------------------------------ the cluster */

/* True when node i's CLUSTER INFO says cluster_state:ok. */
static bool node_state_ok(const struct cluster_fixture *c, int i)
{
    redisReply *r = redis_fixture_command(c->nodes[i]->ctx, "CLUSTER INFO");
    bool ok = r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok") != NULL;
    freeReplyObject(r);
    return ok;
}

/* True when node i sees every slot s served by node want[s] (-1 in want:
 * by any node); what it sees otherwise in why. */
static bool view_agrees(const struct cluster_fixture *c, int i, const signed char *want, char *why,
                        size_t cap)
{
    struct cluster_fixture_view v;
    if (!cluster_fixture_view_take_from(c, i, &v)) {
        snprintf(why, cap, "node %d does not answer CLUSTER NODES", i);
        return false;
    }
    for (int s = 0; s < 16384; s++)
        if (v.slot_node[s] < 0 || (want[s] >= 0 && v.slot_node[s] != want[s])) {
            snprintf(why, cap, "node %d sees slot %d served by node %d, not node %d", i, s,
                     v.slot_node[s], want[s]);
            return false;
        }
    return true;
}

/* Waits (running the load) until every node agrees that slot s is served by
 * want[s] and says cluster_state:ok. */
static void wait_cluster_settled(const struct cluster_fixture *c, const signed char *want,
                                 struct load *l, const char *what)
{
    long long deadline = fixture_now_ms() + SETTLE_TIMEOUT_MS;
    char why[160] = "";
    for (;;) {
        bool settled = true;
        for (int i = 0; i < c->nnodes && settled; i++) {
            if (!view_agrees(c, i, want, why, sizeof(why)))
                settled = false;
            else if (!node_state_ok(c, i)) {
                snprintf(why, sizeof(why), "node %d does not say cluster_state:ok", i);
                settled = false;
            }
        }
        if (settled)
            return;
        cr_assert(fixture_now_ms() < deadline, "%s: the cluster did not settle within %d ms: %s",
                  what, SETTLE_TIMEOUT_MS, why);
        load_tick(l);
        sleep_ms(5);
    }
}

/* `redis-cli --cluster check` through node i: every node agrees, every slot
 * covered, no slot open. */
static void assert_redis_cli_check(const struct cluster_fixture *c, int i)
{
    char addr[32];
    cluster_fixture_node_name(c, i, addr, sizeof(addr));
    const char *argv[] = {"redis-cli", "--cluster", "check", addr, NULL};
    char out[64];
    snprintf(out, sizeof(out), "/tmp/rs-cluster-check-%d.out", (int)getpid());
    struct program_result r;
    int rc = program_run(argv, NULL, out, 30000, &r);
    cr_assert(rc == 0, "cannot run redis-cli: %s", strerror(-rc));
    size_t len = 0;
    char *text = fixture_read_file(out, &len);
    unlink(out);
    cr_assert(text != NULL);
    char st[64];
    cr_assert(r.exited && r.exit_code == 0 &&
                  strstr(text, "[OK] All nodes agree about slots configuration.") != NULL &&
                  strstr(text, "[OK] All 16384 slots covered.") != NULL &&
                  strstr(text, "[ERR]") == NULL && strstr(text, "[WARNING]") == NULL,
              "redis-cli --cluster check %s: %s\n%s%s", addr,
              program_result_describe(&r, st, sizeof(st)), text, r.err);
    free(text);
    program_result_deinit(&r);
}

/* ---------------------------------------------------------- the resharding */

struct slot_move {
    int slot, from, to; /* node numbers */
};

struct reshard {
    struct cluster_fixture *c;
    struct slot_move moves[16384];
    size_t n, done;
    bool moving[16384];       /* the slots of moves, for the load's count */
    signed char after[16384]; /* who serves each slot once all moved */
    /* One move in SLOW_EVERY is slow: its keys migrate one MIGRATE each,
     * with HOT_BURST commands to them (hash tag {h<tag>}) before each. */
    int tag[16384]; /* the slow slots' tags; -1 for the others */
    size_t nslow;
    bool probe; /* the machinery test: after each slow MIGRATE, probe for ASK and TRYAGAIN */
    long long asks_seen, tryagains_seen;
    long long keys_migrated;
    long long started_ms, ms;
};

static int reshard_tag_of(const struct reshard *r, int slot)
{
    return r == NULL ? -1 : r->tag[slot];
}

/* The first half of master 0's slots to master 1, the first half of master
 * 1's to master 2 (a third of all), in alternating chunks of MOVE_CHUNK. */
static void reshard_plan(struct reshard *r, struct cluster_fixture *c)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    memcpy(r->after, c->slot_master, sizeof(r->after));
    int list[2][16384], count[2] = {0, 0};
    for (int s = 0; s < 16384; s++)
        if (c->slot_master[s] == 0 || c->slot_master[s] == 1) {
            int m = c->slot_master[s];
            list[m][count[m]++] = s;
        }
    int half[2] = {(count[0] + 1) / 2, (count[1] + 1) / 2};
    int next[2] = {0, 0};
    for (int k = 0; next[0] < half[0] || next[1] < half[1]; k = 1 - k) {
        for (int j = 0; j < MOVE_CHUNK && next[k] < half[k]; j++) {
            int s = list[k][next[k]++];
            r->moves[r->n++] = (struct slot_move){.slot = s, .from = k, .to = k + 1};
            r->moving[s] = true;
            r->after[s] = (signed char)(k + 1);
        }
    }
    /* The slow slots, and for each the first "h<N>" whose slot it is. */
    size_t untagged = 0;
    for (int s = 0; s < 16384; s++)
        r->tag[s] = -1;
    for (size_t k = SLOW_EVERY / 2; k < r->n; k += SLOW_EVERY) {
        r->tag[r->moves[k].slot] = -2;
        untagged++;
    }
    r->nslow = untagged;
    for (int n = 0; untagged > 0; n++) {
        char t[16];
        int len = snprintf(t, sizeof(t), "h%d", n);
        unsigned s = slot_of_key(t, (size_t)len);
        if (r->tag[s] == -2) {
            r->tag[s] = n;
            untagged--;
        }
    }
}

/* MIGRATE of keys (GETKEYSINSLOT's reply) from node from to node to. */
static void reshard_migrate(struct reshard *r, int from, int to, const redisReply *keys)
{
    const char *argv[8 + MIGRATE_BATCH];
    size_t lens[8 + MIGRATE_BATCH];
    char port[16], timeout[16];
    snprintf(port, sizeof(port), "%d", r->c->nodes[to]->port);
    snprintf(timeout, sizeof(timeout), "%d", MIGRATE_TIMEOUT_MS);
    const char *head[] = {"MIGRATE", "127.0.0.1", port, "", "0", timeout, "KEYS"};
    int argc = 0;
    for (; argc < 7; argc++) {
        argv[argc] = head[argc];
        lens[argc] = strlen(head[argc]);
    }
    for (size_t k = 0; k < keys->elements && k < MIGRATE_BATCH; k++, argc++) {
        argv[argc] = keys->element[k]->str;
        lens[argc] = keys->element[k]->len;
    }
    redisReply *rep = redis_fixture_command_argv(r->c->nodes[from]->ctx, argc, argv, lens);
    /* +OK, or +NOKEY when ringsync deleted them all meanwhile */
    cr_assert(rep->type == REDIS_REPLY_STATUS, "MIGRATE of slot keys from node %d to node %d", from,
              to);
    freeReplyObject(rep);
    r->keys_migrated += (long long)keys->elements;
}

/* The machinery test's proof that a slow slot is half moved: the old owner
 * answers ASK for the key just moved, and TRYAGAIN for the pair while one
 * of it has moved and the other not. */
static void reshard_probe(struct reshard *r, redisContext *from, const redisReply *moved, int tag)
{
    redisReply *a = redisCommand(from, "TYPE %b", moved->element[0]->str, moved->element[0]->len);
    cr_assert(a != NULL, "TYPE on the old owner: %s", from->errstr);
    r->asks_seen += a->type == REDIS_REPLY_ERROR && strncmp(a->str, "ASK ", 4) == 0;
    freeReplyObject(a);
    redisReply *b = redisCommand(from, "MGET {h%d}p:a {h%d}p:b", tag, tag);
    cr_assert(b != NULL, "MGET on the old owner: %s", from->errstr);
    r->tryagains_seen += b->type == REDIS_REPLY_ERROR && strncmp(b->str, "TRYAGAIN", 8) == 0;
    freeReplyObject(b);
}

/* Runs the load (and nothing else) for ms. */
static void load_settle(struct load *l, int ms)
{
    long long end = fixture_now_ms() + ms;
    do {
        load_tick(l);
        sleep_ms(1);
    } while (fixture_now_ms() < end);
}

/* Moves one slot, as redis-cli --cluster reshard does; a slow one a key at a
 * time, the load writing to it in between. */
static void reshard_one(struct reshard *r, const struct slot_move *m, struct load *l)
{
    struct cluster_fixture *c = r->c;
    redisContext *from = c->nodes[m->from]->ctx, *to = c->nodes[m->to]->ctx;
    int tag = r->tag[m->slot];
    redis_fixture_exec(to, "CLUSTER SETSLOT %d IMPORTING %s", m->slot, c->ids[m->from]);
    redis_fixture_exec(from, "CLUSTER SETSLOT %d MIGRATING %s", m->slot, c->ids[m->to]);
    for (;;) {
        if (tag >= 0) {
            load_hot(l, tag);
            load_settle(l, HOT_SETTLE_MS);
        }
        redisReply *keys = redis_fixture_command(from, "CLUSTER GETKEYSINSLOT %d %d", m->slot,
                                                 tag >= 0 ? 1 : MIGRATE_BATCH);
        cr_assert(keys->type == REDIS_REPLY_ARRAY);
        bool is_empty = keys->elements == 0;
        if (!is_empty)
            reshard_migrate(r, m->from, m->to, keys);
        if (!is_empty && tag >= 0 && r->probe)
            reshard_probe(r, from, keys, tag);
        freeReplyObject(keys);
        if (is_empty)
            break;
    }
    /* The new owner first, then the old one, then the others. */
    redis_fixture_exec(to, "CLUSTER SETSLOT %d NODE %s", m->slot, c->ids[m->to]);
    redis_fixture_exec(from, "CLUSTER SETSLOT %d NODE %s", m->slot, c->ids[m->to]);
    for (int i = 0; i < c->nmasters; i++)
        if (i != m->from && i != m->to)
            redis_fixture_exec(c->nodes[i]->ctx, "CLUSTER SETSLOT %d NODE %s", m->slot,
                               c->ids[m->to]);
}

/* Every move, with the load's batches in between as they fall due; then
 * waits until every node agrees. */
static void reshard_run(struct reshard *r, struct load *l, const char *what)
{
    r->started_ms = fixture_now_ms();
    l->moving = r->moving;
    for (; r->done < r->n; r->done++) {
        reshard_one(r, &r->moves[r->done], l);
        load_tick(l);
    }
    wait_cluster_settled(r->c, r->after, l, what);
    l->moving = NULL;
    dataset_set_migrated_expiry_tolerance(r->moving, MIGRATE_DRIFT_MS);
    r->ms = fixture_now_ms() - r->started_ms;
    cr_log_info("%s: %zu slots moved (%zu of them slowly; %lld keys migrated) in %lld ms", what,
                r->n, r->nslow, r->keys_migrated, r->ms);
    cr_assert(l->moved_slot_cmds >= MIN_MOVED_SLOT_CMDS,
              "%s: only %lld load commands went to the slots while they moved (at least %d "
              "wanted): the resharding did not overlap the load",
              what, l->moved_slot_cmds, MIN_MOVED_SLOT_CMDS);
}

/* The moved slots' keys are on their new owner, none left on the old. */
static void reshard_assert_keys_moved(const struct reshard *r)
{
    long long on_new = 0, on_old = 0;
    for (size_t k = 0; k < r->n; k++) {
        const struct slot_move *m = &r->moves[k];
        redisReply *a =
            redis_fixture_command(r->c->nodes[m->to]->ctx, "CLUSTER COUNTKEYSINSLOT %d", m->slot);
        redisReply *b =
            redis_fixture_command(r->c->nodes[m->from]->ctx, "CLUSTER COUNTKEYSINSLOT %d", m->slot);
        on_new += a->integer;
        on_old += b->integer;
        freeReplyObject(a);
        freeReplyObject(b);
    }
    cr_assert(on_old == 0 && on_new > 0 && r->keys_migrated > 0,
              "after the resharding the moved slots hold %lld keys on their new owners and %lld "
              "on the old ones (%lld migrated)",
              on_new, on_old, r->keys_migrated);
}

/* ----------------------------------------------------------- the failover */

/* CLUSTER FAILOVER on replica (of master old), the load running, until the
 * replica says role:master and every node agrees it serves old's slots. */
static void failover_run(struct cluster_fixture *c, int replica, struct load *l, const char *what)
{
    int old = c->master_of[replica];
    cr_assert(old >= 0);
    signed char want[16384];
    struct cluster_fixture_view v;
    cluster_fixture_view_take(c, &v);
    for (int s = 0; s < 16384; s++)
        want[s] = v.slot_node[s] == old ? (signed char)replica : v.slot_node[s];
    long long started = fixture_now_ms();
    redis_fixture_exec(c->nodes[replica]->ctx, "CLUSTER FAILOVER");
    long long deadline = started + FAILOVER_TIMEOUT_MS;
    for (;;) {
        char role[16] = "";
        redis_fixture_info(c->nodes[replica]->ctx, "replication", "role", role, sizeof(role));
        if (strcmp(role, "master") == 0)
            break;
        cr_assert(fixture_now_ms() < deadline,
                  "%s: node %d is still %s %d ms after CLUSTER FAILOVER", what, replica, role,
                  FAILOVER_TIMEOUT_MS);
        load_tick(l);
        sleep_ms(5);
    }
    wait_cluster_settled(c, want, l, what);
    cr_log_info("%s: node %d took over from node %d in %lld ms", what, replica, old,
                fixture_now_ms() - started);
}

/* ---------------------------------------------------------------- ringsync */

/* Waits until the native replica's offset equals the source's (no ringsync). */
static void wait_replica_caught_up(struct redis_fixture *src, int replica_port, const char *what)
{
    long long deadline = fixture_now_ms() + CATCH_UP_TIMEOUT_MS;
    struct repl_view v;
    for (;;) {
        repl_view_take(src->ctx, replica_port, &v);
        if (v.has_replica && v.replica_offset == v.master_offset)
            return;
        cr_assert(fixture_now_ms() < deadline,
                  "%s: the native replica's offset %lld did not reach the source's %lld in %d "
                  "ms:\n%s",
                  what, v.replica_offset, v.master_offset, CATCH_UP_TIMEOUT_MS, v.text);
        sleep_ms(20);
    }
}

/* `ringsync sync` from src into node `node` of the cluster, without --quiet
 * (ringsync_start_with adds it): what it logs about redirections is read. */
static struct program *ringsync_loud(const struct redis_fixture *src,
                                     const struct cluster_fixture *c, int node, const char *workers,
                                     const char *job_id)
{
    const char *const extra[] = {job_id ? "--job-id" : NULL, job_id, NULL};
    return ringsync_start_ports(src->port, c->nodes[node]->port, workers, false, extra);
}

/* Logs how many ASKING commands the masters ran (ringsync's, after ASK). */
static void log_asking_calls(const struct cluster_fixture *c, const char *what)
{
    long long calls = 0;
    for (int i = 0; i < c->nnodes; i++) {
        redisReply *r = redis_fixture_command(c->nodes[i]->ctx, "INFO commandstats");
        const char *at =
            r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_asking:calls=") : NULL;
        if (at != NULL)
            calls += atoll(at + strlen("cmdstat_asking:calls="));
        freeReplyObject(r);
    }
    cr_log_info("%s: the cluster's nodes ran %lld ASKING commands", what, calls);
}

/* Its log says it followed a redirection ("MOVED", "moved"). */
static void assert_says_moved(struct program *p, const char *what)
{
    char *err = program_stderr(p, NULL);
    bool says = strcasestr(err, "moved") != NULL;
    if (!says)
        cr_assert_fail("%s: ringsync caught up, but its standard error does not say it followed "
                       "a MOVED redirection:\n%s",
                       what, err);
    free(err);
}

/* Logs how many lines of err mention MOVED or ASK, and the last such line
 * (ringsync's summary, when it writes one). */
static void log_redirection_lines(const char *err, const char *what)
{
    size_t lines = 0;
    const char *last = NULL;
    size_t last_len = 0;
    for (const char *line = err; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        char *copy = strndup(line, len);
        cr_assert(copy != NULL);
        if (strcasestr(copy, "moved") != NULL || strstr(copy, "ASK") != NULL) {
            lines++;
            last = line;
            last_len = len;
        }
        free(copy);
        line += len + (line[len] == '\n');
    }
    cr_log_info("%s: %zu lines of ringsync's standard error mention MOVED or ASK; the last:\n%.*s",
                what, lines, (int)last_len, last != NULL ? last : "");
}

/* Caught up after the load: the cluster equals the native replica while
 * ringsync follows (expiries the margin later), its log says it followed
 * MOVED, and after SIGINT (exit 0, all applied) with exact expiries. */
static void assert_caught_up_and_equal(struct redis_fixture *src, struct redis_fixture *rep,
                                       struct cluster_fixture *c, struct program *p,
                                       const char *what)
{
    wait_caught_up(src, rep->port, p, what);
    dataset_set_target_expiry_shift(EXPIRY_MARGIN_MS);
    assert_cluster_equals(c, rep, "native replica", what);
    assert_says_moved(p, what);
    struct program_result r;
    ringsync_stop_result(p, what, &r);
    log_redirection_lines(r.err, what);
    program_result_deinit(&r);
    dataset_set_target_expiry_shift(0);
    char after[160];
    snprintf(after, sizeof(after), "%s, after the stop (expiries exact)", what);
    assert_cluster_equals(c, rep, "native replica", after);
}

/* ------------------------------------------------------------------- tests */

Test(cluster_moves, the_load_the_resharding_and_the_failover_work_without_ringsync)
{
    const char *what = "the machinery alone";
    struct redis_fixture *src = start_source();
    struct redis_fixture *rep = start_debug_server();
    struct redis_fixture *ref = start_debug_server();
    struct cluster_fixture *c = start_3_3();
    static struct reshard r;
    reshard_plan(&r, c);
    r.probe = true;
    fill_source(src, &r);
    redis_fixture_replicate(rep, src, 30000);
    fill_cluster_and_reference(c, ref, &r);
    assert_cluster_equals(c, ref, "reference", "filled");

    struct load l;
    load_init(&l, src, NULL, what);
    load_for_ms(&l, LOAD_BEFORE_MS);
    reshard_run(&r, &l, what);
    reshard_assert_keys_moved(&r);
    /* Each slow slot (a dozen keys): an ASK for every key after its MIGRATE,
     * a TRYAGAIN for its pair once, between the MIGRATEs of its two keys. */
    cr_assert(r.asks_seen >= (long long)r.nslow * 8 && r.tryagains_seen == (long long)r.nslow,
              "the slow slots did not show a migration half done: %lld ASK and %lld TRYAGAIN "
              "replies to the probes of %zu slots",
              r.asks_seen, r.tryagains_seen, r.nslow);
    assert_redis_cli_check(c, 0);
    failover_run(c, c->nmasters + 2, &l, "the machinery alone, failover of master 2");
    load_for_ms(&l, LOAD_AFTER_MS);
    load_deinit(&l);
    assert_redis_cli_check(c, 1);

    /* The new owners serve what the reference holds, the replica is the source. */
    struct cluster_fixture_view v;
    cluster_fixture_view_take(c, &v);
    cr_assert(v.nmasters == 3 && v.masters[0] == 0 && v.masters[1] == 1 &&
                  v.masters[2] == c->nmasters + 2,
              "the masters after the failover of master 2 are not nodes 0, 1 and %d",
              c->nmasters + 2);
    assert_cluster_equals(c, ref, "reference", "resharded and failed over");
    wait_replica_caught_up(src, rep->port, what);
    assert_dataset_equals(rep, src, "source", "the native replica after the load");
    dataset_set_migrated_expiry_tolerance(NULL, 0);
    cluster_fixture_stop(c);
}

/* SIGKILL of master `killed` during the load: the load goes on until its
 * replica has taken over and ringsync says it resumed from its records. */
static void kill_master_during_the_load(struct cluster_fixture *c, int killed, struct load *l,
                                        struct program *p, const char *what)
{
    const int replica = c->nmasters + killed * c->replicas_per_master;
    cr_assert(kill(c->nodes[killed]->pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    long long deadline = fixture_now_ms() + 60000;
    for (;;) {
        char role[32] = "";
        redis_fixture_info(c->nodes[replica]->ctx, "replication", "role", role, sizeof(role));
        if (strcmp(role, "master") == 0)
            break;
        cr_assert(fixture_now_ms() < deadline, "%s: no failover within 60 s", what);
        load_for_ms(l, 50);
    }
    while (!program_wait_for_stderr(p, "destination back after", 50)) {
        cr_assert(fixture_now_ms() < deadline, "%s: ringsync did not resume within 60 s", what);
        load_for_ms(l, 50);
    }
}

/* A third of the slots resharded during the load; with then_kill, master 1
 * (which took slots and gave some) is killed after it: issue 14's "the same,
 * with a resharding and a failover in the middle of the load", with the
 * default options (checkpoints on): its replica takes over, ringsync reads
 * its records again and resumes from them (CHECKPOINTS.md: the replica holds
 * records as old as its data). */
static void a_resharding_during_the_load_loses_nothing(const char *workers, bool then_kill)
{
    char what[128];
    snprintf(what, sizeof(what), "--workers %s, a third of the slots resharded%s", workers,
             then_kill ? ", then master 1 killed" : "");
    struct redis_fixture *src = start_source();
    struct redis_fixture *rep = start_debug_server();
    struct cluster_fixture *c = start_3_3();
    static struct reshard r;
    reshard_plan(&r, c);
    fill_source(src, &r);
    redis_fixture_replicate(rep, src, 30000);
    struct program *p = ringsync_loud(src, c, 0, workers, NULL);
    wait_snapshot_applied(p);

    struct load l;
    load_init(&l, src, p, what);
    load_for_ms(&l, LOAD_BEFORE_MS);
    reshard_run(&r, &l, what);
    if (then_kill) {
        load_for_ms(&l, LOAD_BEFORE_MS);
        kill_master_during_the_load(c, 1, &l, p, what);
    }
    load_for_ms(&l, LOAD_AFTER_MS);
    load_deinit(&l);
    if (!then_kill) /* every node answers */
        log_asking_calls(c, what);
    assert_caught_up_and_equal(src, rep, c, p, what);
    dataset_set_migrated_expiry_tolerance(NULL, 0);
    cluster_fixture_stop(c);
}

Test(cluster_moves,
     a_resharding_of_a_third_of_the_slots_during_the_load_loses_nothing_with_one_worker)
{
    a_resharding_during_the_load_loses_nothing("1", false);
}

Test(cluster_moves,
     a_resharding_of_a_third_of_the_slots_during_the_load_loses_nothing_with_two_workers)
{
    a_resharding_during_the_load_loses_nothing("2", false);
}

Test(cluster_moves, a_manual_failover_of_a_destination_master_during_the_load_loses_nothing)
{
    const char *what = "--workers 2, master 0 failed over to its replica";
    struct redis_fixture *src = start_source();
    struct redis_fixture *rep = start_debug_server();
    struct cluster_fixture *c = start_3_3();
    fill_source(src, NULL);
    redis_fixture_replicate(rep, src, 30000);
    /* a job whose w record lives in a slot of master 0: after the failover
     * its owner is a master first met in a MOVED (the clean stop writes the
     * record there; it once read past the known nodes) */
    char job[32] = "";
    for (int i = 0; job[0] == '\0'; i++) {
        char key[64];
        snprintf(key, sizeof(key), "ringsync:cp:failover-%d:w", i);
        if (c->slot_master[cluster_fixture_keyslot(c, key, strlen(key))] == 0)
            snprintf(job, sizeof(job), "failover-%d", i);
    }
    struct program *p = ringsync_loud(src, c, 0, "2", job);
    wait_snapshot_applied(p);

    struct load l;
    load_init(&l, src, p, what);
    load_for_ms(&l, LOAD_BEFORE_MS);
    failover_run(c, c->nmasters + 0, &l, what); /* node 3: master 0's replica */
    load_for_ms(&l, LOAD_AFTER_MS);
    load_deinit(&l);
    assert_caught_up_and_equal(src, rep, c, p, what);
    cluster_fixture_stop(c);
}

Test(cluster_moves, a_resharding_then_a_killed_master_during_the_load_lose_nothing)
{
    a_resharding_during_the_load_loses_nothing("2", true);
}

/* The number after the first "applied offset" of text that has one, or -1. */
static long long applied_offset_named(const char *text)
{
    for (const char *s = text; (s = strcasestr(s, "applied offset")) != NULL; s++) {
        const char *q = s + strlen("applied offset");
        while (*q == ' ' || *q == ':' || *q == '=')
            q++;
        if (isdigit((unsigned char)*q))
            return strtoll(q, NULL, 10);
    }
    return -1;
}

Test(cluster_moves,
     without_checkpoints_a_killed_destination_master_stops_the_job_naming_the_node_and_offset)
{
    const char *what = "--workers 2, master 1 killed";
    struct redis_fixture *src = start_source();
    struct cluster_fixture *c = start_3_3();
    fill_source(src, NULL);
    /* without checkpoints: nothing says how far the promoted replica holds
     * the stream (with them, the default, it is followed:
     * integration_checkpoints) */
    const char *const extra[] = {"--target-retry-timeout", "10", "--checkpoint", "none", NULL};
    struct program *p = ringsync_start_with(src, c->nodes[0], "2", extra);
    wait_snapshot_applied(p);

    struct load l;
    load_init(&l, src, p, what);
    load_for_ms(&l, LOAD_BEFORE_MS);
    size_t before_len = 0;
    free(program_stderr(p, &before_len));
    const int killed = 1;
    char name[32];
    cluster_fixture_node_name(c, killed, name, sizeof(name));
    cr_assert(kill(c->nodes[killed]->pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    long long killed_at = fixture_now_ms();

    /* The load goes on (writes for the dead node's slots among them) until
     * ringsync ends, noting the most it acknowledged. */
    l.ringsync = NULL;
    long long acknowledged = 0;
    while (!program_has_exited(p) && fixture_now_ms() - killed_at < KILLED_EXIT_MS) {
        load_tick(&l);
        struct repl_view v;
        repl_view_take(src->ctx, -1, &v);
        if (v.has_ringsync && v.ringsync_offset > acknowledged)
            acknowledged = v.ringsync_offset;
        sleep_ms(5);
    }
    long long exit_ms = fixture_now_ms() - killed_at;
    load_deinit(&l);
    long long source_offset = info_number(src->ctx, "replication", "master_repl_offset");
    struct program_result r;
    program_finish(p, 0, 1, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 1,
              "%s: ringsync ended with %s, expected exit 1 by itself within %d ms of the kill "
              "(--target-retry-timeout 10); stderr:\n%s",
              what, program_result_describe(&r, st, sizeof(st)), KILLED_EXIT_MS, r.err);
    cr_log_info("%s: ringsync exited %lld ms after the kill", what, exit_ms);
    const char *since = r.err + (before_len <= r.err_len ? before_len : r.err_len);
    cr_assert(strstr(since, name) != NULL,
              "%s: what ringsync wrote after the kill does not name the killed node %s:\n%s", what,
              name, since);
    long long named = applied_offset_named(since);
    cr_assert(named >= 0,
              "%s: what ringsync wrote after the kill does not say \"applied offset N\":\n%s", what,
              since);
    cr_assert(named >= acknowledged && named <= source_offset,
              "%s: the applied offset named, %lld, is not between what ringsync acknowledged "
              "(%lld) and the source's offset (%lld):\n%s",
              what, named, acknowledged, source_offset, since);
    cr_log_info("%s: what ringsync wrote after the kill:\n%s", what, since);
    program_result_deinit(&r);
    cluster_fixture_stop(c);
}
