/* router.c - the replication stream to workers (see router.h). */
#include "router.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch.h"
#include "checkpoint.h"
#include "cluster_redirect.h"
#include "proxy_commands.h"
#include "two_way.h"
#include "command_table.h"
#include "cross_slot.h"
#include "dest_route.h"
#include "job.h"
#include "log.h"
#include "key_filter.h"
#include "resp_scanner.h"
#include "slot.h"
#include "stream_rewrite.h"

#define ROUTER_DB_HISTORY 4096 /* db changes kept: the applied offset lags routing by less */

enum fence_state {
    FENCE_NONE,
    FENCE_DRAIN, /* waiting for every worker before the fence command */
    FENCE_AFTER, /* the fence command was written: waiting for its reply */
};

/* One command of a transaction being gathered (cluster: rebuilt per slot). */
struct tx_cmd {
    size_t off, len; /* its bytes in r->tx */
    int64_t db;      /* the source db it runs in */
    const struct command_spec *spec;
};

struct router {
    struct router_config cfg;
    const struct dest_route *route;
    unsigned nlanes;
    bool cluster;
    bool proxy; /* a proxy destination: cfg.proxy */
    bool keyless_said, unwrap_said;
    bool tx_echo; /* the transaction writes a key of the other direction (cfg.drop_prefix) */
    struct tx_key_at {
        size_t pos, len; /* a key of the transaction, in r->tx (conflicts) */
    } * tx_keys;
    size_t ntx_keys, tx_keys_cap;
    struct batch_writer *bw;
    struct job *job;
    struct resp_scanner *sc;
    struct stream_rewrite rw; /* master-only forms, shifted expiries */
    int64_t db;
    uint64_t routed;
    int fence;
    bool getack;
    size_t hb_len;   /* strlen(cfg.heartbeat_key) */
    bool hb_pending; /* a heartbeat noted, not taken yet */
    int64_t hb_ms;
    uint64_t hb_end;
    uint64_t commands, fences;
    /* a transaction being gathered */
    bool in_tx;
    char *tx;
    size_t tx_len, tx_cap;
    uint32_t tx_cmds;
    int64_t tx_db;       /* the db at MULTI */
    uint64_t tx_workers; /* bit per worker its keys map to */
    bool tx_fence;
    struct tx_cmd *txc;        /* cluster: its commands */
    struct resp_scanner *txsc; /* cluster: reads them again (cluster_exec) */
    unsigned *tx_slots;        /* cluster: their slots in order of first appearance */
    size_t tx_slots_cap;
    /* --db-prefix: the command with its keys prefixed */
    char *pfx;
    size_t pfx_cap;
    struct rs_slice *pfx_argv;
    int *pfx_idx;
    size_t pfx_argc_cap;
    size_t ntxc, txc_cap;
    bool tx_split_said;
    uint64_t cross_said;
    /* key positions and split commands */
    int *keys;
    unsigned *slots; /* the hash slot of each of keys[] */
    size_t keys_cap;
    struct rs_slice *argv; /* a split command's arguments */
    size_t argv_cap;
    int *order;    /* key indices sorted by slot (cluster splits) */
    char *scratch; /* a transaction rebuilt for one slot */
    size_t scratch_len, scratch_cap;
    uint64_t cur_end;        /* the end offset of the command being routed */
    uint64_t resume_skipped; /* commands a resume found applied already */
    uint64_t w_written;      /* the highest w record it wrote (fences, carried-out commands) */
    /* the db changes of the stream, newest last: the db at an offset (router_db_at) */
    struct db_change {
        uint64_t end; /* the SELECT's end offset */
        int64_t db;
    } dbh[ROUTER_DB_HISTORY];
    unsigned ndbh;
    int64_t db_base;        /* the db before dbh[0] */
    unsigned tx_first_slot; /* the slot of a transaction's first key */
    bool tx_has_key;
    uint32_t tx_data; /* commands gathered in the transaction, SELECTs aside */
    /* filters (key_filter.h): a command with its kept keys only */
    char *flt;
    size_t flt_cap;
    struct rs_slice *flt_argv;
    size_t flt_argc_cap;
    uint64_t flt_counted; /* the end offset of the last command the filters counted */
};

struct router *router_new(const struct router_config *cfg, struct batch_writer *bw, struct job *job,
                          uint64_t start_offset)
{
    struct router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    r->route = cfg->route;
    r->cluster = dest_route_is_cluster(r->route);
    r->proxy = cfg->proxy;
    r->nlanes = r->route->nworkers * r->route->node_cap;
    r->bw = bw;
    r->hb_len = cfg->heartbeat_key != NULL ? strlen(cfg->heartbeat_key) : 0;
    if (cfg->mark_all && cfg->cp != NULL)
        batch_writer_mark_all(bw); /* its gathered SETs inside record transactions too */
    r->job = job;
    r->routed = start_offset;
    r->db = cfg->start_db; /* a resume: the db the stream was in at start_offset */
    r->db_base = cfg->start_db;
    stream_rewrite_init(&r->rw, cfg->expiry_margin_ms);
    r->sc = resp_scanner_new(start_offset);
    if (r->cluster && (r->txsc = resp_scanner_new(0)) == NULL) {
        resp_scanner_free(r->sc);
        r->sc = NULL;
    }
    if (r->sc == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void router_free(struct router *r)
{
    if (r == NULL)
        return;
    resp_scanner_free(r->sc);
    resp_scanner_free(r->txsc);
    free(r->tx_keys);
    free(r->tx_slots);
    free(r->pfx);
    free(r->pfx_argv);
    free(r->pfx_idx);
    free(r->flt);
    free(r->flt_argv);
    stream_rewrite_deinit(&r->rw);
    free(r->tx);
    free(r->keys);
    free(r->slots);
    free(r->argv);
    free(r->order);
    free(r->txc);
    free(r->scratch);
    free(r);
}

/* The stream selected db at offset end. */
static void note_db(struct router *r, int64_t db, uint64_t end)
{
    if (db == r->db)
        return;
    if (r->ndbh == ROUTER_DB_HISTORY) {
        r->db_base = r->dbh[0].db;
        memmove(r->dbh, r->dbh + 1, (ROUTER_DB_HISTORY - 1) * sizeof(r->dbh[0]));
        r->ndbh--;
    }
    r->dbh[r->ndbh++] = (struct db_change){end, db};
}

int64_t router_db_at(const struct router *r, uint64_t off)
{
    for (unsigned i = r->ndbh; i > 0; i--)
        if (r->dbh[i - 1].end <= off)
            return r->dbh[i - 1].db;
    return r->db_base;
}

static int oom(struct router *r)
{
    job_fail(r->job, "out of memory while routing the replication stream");
    return RS_ERR;
}

/* A resume (CHECKPOINTS.md): true when the command of `slot` that ends at
 * `end` is applied already (counted). */
static bool applied_before(struct router *r, unsigned slot, uint64_t end)
{
    const struct checkpoint *cp = r->cfg.cp;
    if (cp == NULL || cp->skip == NULL || end > cp->skip_max || end > cp->skip[slot])
        return false;
    r->resume_skipped++;
    return true;
}

static unsigned lane_of(const struct router *r, unsigned slot)
{
    return dest_route_lane(r->route, slot);
}

/* Keys that one destination command may hold together: of one lane on a
 * standalone destination, of one slot on a cluster (else CROSSSLOT). */
static unsigned group_of(const struct router *r, unsigned slot)
{
    return r->cluster ? slot : lane_of(r, slot);
}

/* True when one destination command may hold the n keys found (r->keys of
 * c): of one group (group_of), or through a proxy, hashed alike by it (a
 * slot's keys may sit on two of its servers). */
static bool keys_together(const struct router *r, const struct resp_cmd *c, int n)
{
    for (int i = 1; i < n; i++) {
        bool with =
            r->proxy ? proxy_same_server(c->argv[r->keys[i]], c->argv[r->keys[0]], r->cfg.proxy_tag)
                     : group_of(r, r->slots[i]) == group_of(r, r->slots[0]);
        if (!with)
            return false;
    }
    return true;
}

/* Conflicts: the n keys of transaction command c (just appended to r->tx),
 * noted at EXEC unless the transaction is the other direction's. */
static int note_tx_keys(struct router *r, const struct resp_cmd *c, int n)
{
    size_t base = r->tx_len - c->raw.len;
    for (int i = 0; i < n; i++) {
        if (r->ntx_keys == r->tx_keys_cap) {
            size_t cap = r->tx_keys_cap ? r->tx_keys_cap * 2 : 16;
            struct tx_key_at *k = realloc(r->tx_keys, cap * sizeof(*k));
            if (k == NULL)
                return oom(r);
            r->tx_keys = k;
            r->tx_keys_cap = cap;
        }
        const struct rs_slice *k = &c->argv[r->keys[i]];
        r->tx_keys[r->ntx_keys++] = (struct tx_key_at){base + (size_t)(k->p - c->raw.p), k->len};
    }
    return RS_OK;
}

/* True when one of the n keys found (r->keys of c) is under the other
 * direction's prefix (router_config.drop_prefix): its own write coming back. */
static bool writes_echo(const struct router *r, const struct resp_cmd *c, int n)
{
    for (int i = 0; i < n; i++) {
        const struct rs_slice *k = &c->argv[r->keys[i]];
        if (k->len >= r->cfg.drop_prefix_len &&
            memcmp(k->p, r->cfg.drop_prefix, r->cfg.drop_prefix_len) == 0)
            return true;
    }
    return false;
}

/* The keys of a command (r->keys) and their slots (r->slots); -1 when
 * malformed. */
static int find_keys(struct router *r, const struct command_spec *spec, const struct resp_cmd *c)
{
    if ((size_t)c->argc > r->keys_cap) {
        size_t cap = r->keys_cap ? r->keys_cap : 64;
        while (cap < (size_t)c->argc)
            cap *= 2;
        int *k = realloc(r->keys, cap * sizeof(*k));
        if (k != NULL)
            r->keys = k;
        unsigned *sl = realloc(r->slots, cap * sizeof(*sl));
        if (sl != NULL)
            r->slots = sl;
        int *o = realloc(r->order, cap * sizeof(*o));
        if (o != NULL)
            r->order = o;
        struct rs_slice *a = realloc(r->argv, cap * sizeof(*a));
        if (a != NULL)
            r->argv = a;
        if (k == NULL || sl == NULL || o == NULL || a == NULL)
            return -1;
        r->keys_cap = cap;
    }
    int n = command_keys(spec, c->argc, c->argv, r->keys, c->argc);
    for (int i = 0; i < n; i++) {
        struct rs_slice k = c->argv[r->keys[i]];
        r->slots[i] = slot_of_key(k.p, k.len);
    }
    return n;
}

static int64_t parse_db(const struct rs_slice *s)
{
    char tmp[24];
    if (s->len == 0 || s->len >= sizeof(tmp))
        return -1;
    memcpy(tmp, s->p, s->len);
    tmp[s->len] = '\0';
    char *end;
    long long v = strtoll(tmp, &end, 10);
    return *end || v < 0 ? -1 : v;
}

/* Sends first the MSET gathered for any worker that holds a slot of these
 * keys: commands of one slot keep their source order. */
static int settle(struct router *r, int nkeys)
{
    for (int i = 0; i < nkeys; i++) {
        unsigned to = lane_of(r, r->slots[i]);
        if (batch_writer_staged(r->bw, to, r->slots[i]) && batch_writer_flush_stage(r->bw, to) != 0)
            return oom(r);
    }
    return RS_OK;
}

/* The destination db of the current command: r->db mapped (dest_route.h).
 * -1: unmapped, and the command was dropped (counted) or the job failed
 * (*failed). */
static int64_t dest_db(struct router *r, const struct resp_cmd *c, bool *failed)
{
    int64_t db = dest_route_db(r->route, r->db);
    *failed = false;
    if (db >= 0)
        return db;
    if (r->route->unmapped == DEST_ROUTE_UNMAPPED_SKIP) {
        atomic_fetch_add_explicit(&r->job->unmapped_skipped, 1, memory_order_relaxed);
        return -1;
    }
    char name[40], map[200];
    rs_escape_bytes(name, sizeof(name), c->argv[0].p, c->argv[0].len, 20);
    dest_route_describe(r->route, map, sizeof(map));
    job_fail(r->job,
             "the source wrote to database %" PRId64 " (%s at offset %" PRIu64 "..%" PRIu64
             "), which the database map (%s) does not map: add it to --db-map, or pass "
             "--db-unmapped skip to leave that database out",
             r->db, name, r->routed, c->end_offset, map);
    *failed = true;
    return -1;
}

static int write_raw(struct router *r, unsigned to, int64_t db, const struct resp_cmd *c)
{
    if (batch_writer_raw(r->bw, to, db, c->raw.p, c->raw.len, 1, db) != 0)
        return oom(r);
    return RS_OK;
}

/* Orders key indices by group (then by position), for splits (qsort_r). */
static int by_group(const void *a, const void *b, void *ctx)
{
    const struct router *r = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    unsigned gx = group_of(r, r->slots[x]), gy = group_of(r, r->slots[y]);
    if (gx != gy)
        return gx < gy ? -1 : 1;
    return x < y ? -1 : x > y;
}

static char *scratch_room(struct router *r, size_t n);

/* A splittable command (DEL, UNLINK, TOUCH, MSET; MSETNX as MSET) as one
 * command per group of its keys (a lane, or on a cluster a slot), keys in
 * their order within each: each part obeys invariant 1. */
static int write_split(struct router *r, const struct command_spec *spec, const struct resp_cmd *c,
                       int nkeys, int64_t db)
{
    int step = spec->step;
    for (int i = 0; i < nkeys; i++)
        r->order[i] = i;
    if (!r->cluster)
        qsort_r(r->order, (size_t)nkeys, sizeof(*r->order), by_group, r);
    struct rs_slice *argv = r->argv;
    argv[0] = c->argv[0];
    if (spec->flags & CMD_SPLIT_AS_MSET)
        argv[0] = (struct rs_slice){"MSET", 4};
    for (int i = 0; i < nkeys;) {
        unsigned g = group_of(r, r->slots[r->order[i]]);
        unsigned to = lane_of(r, r->slots[r->order[i]]);
        int argc = 1;
        /* a cluster: one key per command, so none can meet TRYAGAIN (keys of
         * its slot on two nodes while it migrates) */
        for (int first = i;
             i < nkeys && group_of(r, r->slots[r->order[i]]) == g && (!r->cluster || i == first);
             i++) {
            int k = r->keys[r->order[i]];
            if (applied_before(r, r->slots[r->order[i]], c->end_offset))
                continue; /* a resume: this key's slot has it already */
            argv[argc++] = c->argv[k];
            if (step == 2)
                argv[argc++] = c->argv[k + 1];
        }
        if (argc == 1)
            continue;
        if (r->cfg.mark_all && r->cfg.cp != NULL) { /* two-way: inside a record transaction */
            size_t need = resp_argv_size(argc, argv);
            r->scratch_len = 0;
            char *at = scratch_room(r, need);
            if (at == NULL)
                return oom(r);
            resp_put_argv(at, argc, argv);
            if (batch_writer_raw_cp(r->bw, to, db, r->slots[r->order[i - 1]], NULL, at, need) != 0)
                return oom(r);
            continue;
        }
        if (batch_writer_cmd(r->bw, to, db, argc, argv) != 0)
            return oom(r);
    }
    return RS_OK;
}

/* "slots 1, 5 and 866" of the keys found, for messages. */
static void describe_slots(const struct router *r, int n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n && len + 16 < cap; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = r->slots[j] == r->slots[i];
        if (!seen)
            len += (size_t)snprintf(out + len, cap - len, "%s%u", len ? ", " : "", r->slots[i]);
    }
}

/* A command a cluster cannot run as it came (DESIGN.md §2 invariant 3):
 * --cross-slot stop fails the job naming it, its keys' slots and its
 * offsets; skip drops it and counts it. why says what is wrong. */
static int cross_slot(struct router *r, const struct resp_cmd *c, int nkeys, const char *why)
{
    char name[40], slots[160] = "";
    rs_escape_bytes(name, sizeof(name), c->argv[0].p, c->argv[0].len, 20);
    for (char *q = name; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    if (nkeys > 0)
        describe_slots(r, nkeys, slots, sizeof(slots));
    char what[400];
    snprintf(what, sizeof(what),
             "%s at source offset %" PRIu64 "..%" PRIu64 " in db %" PRId64 "%s%s%s: %s", name,
             r->routed, c->end_offset, r->db, nkeys > 0 ? " (keys in hash slots " : "", slots,
             nkeys > 0 ? ")" : "", why);
    if (!r->cfg.cross_slot_skip) {
        job_fail(r->job,
                 "the %s destination cannot run %s; pass --cross-slot skip to drop such "
                 "commands (each is logged and counted)",
                 r->proxy ? "proxy" : "cluster", what);
        return RS_ERR;
    }
    uint64_t k = atomic_fetch_add_explicit(&r->job->cross_slot_skipped, 1, memory_order_relaxed);
    if (k < 100)
        rs_log("skipped (--cross-slot skip): %s%s", what,
               k == 99 ? " (no more of these are shown)" : "");
    return 0;
}

static char *scratch_room(struct router *r, size_t n);
static int fence_plain(struct router *r, const void *raw, size_t len, uint32_t ncmds, int64_t db,
                       int64_t db_after, bool every_node);

/* The w record at the current command's end, as a command of its own on
 * the lane of the record's slot: everything up to here is applied (after
 * a fence, or a command carried out under one). */
static int put_w(struct router *r)
{
    const struct checkpoint *cp = r->cfg.cp;
    char *at = scratch_room(r, checkpoint_w_size(cp));
    if (at == NULL)
        return oom(r);
    char *end = checkpoint_put_w(cp, at, r->cur_end, r->db, CHECKPOINT_STREAM);
    r->w_written = r->cur_end;
    if (batch_writer_aux(r->bw, lane_of(r, cp->w_slot), at, (size_t)(end - at)) != 0)
        return oom(r);
    return RS_OK;
}

/* A command (or transaction) that must run alone (invariant 3): on lane 0,
 * or with every_node on worker 0's lane of every destination node. Returns
 * 1 when routing must pause: its own replies must come before anything
 * after it. */
static int fence(struct router *r, const void *raw, size_t len, uint32_t ncmds, int64_t db,
                 int64_t db_after, bool every_node)
{
    const struct checkpoint *cp = r->cfg.cp;
    if (cp != NULL && !r->cluster) {
        /* MULTI <fence> SET <w> <its offset> EXEC: it runs once (CHECKPOINTS.md) */
        static const char multi[] = "*1\r\n$5\r\nMULTI\r\n", execb[] = "*1\r\n$4\r\nEXEC\r\n";
        r->scratch_len = 0;
        char *at = scratch_room(r, sizeof(multi) + len + checkpoint_w_size(cp) + sizeof(execb));
        if (at == NULL)
            return oom(r);
        memcpy(at, multi, sizeof(multi) - 1);
        at += sizeof(multi) - 1;
        memcpy(at, raw, len);
        at = checkpoint_put_w(cp, at + len, r->cur_end, r->db, CHECKPOINT_STREAM);
        r->w_written = r->cur_end;
        memcpy(at, execb, sizeof(execb) - 1);
        r->scratch_len = (size_t)(at + sizeof(execb) - 1 - r->scratch);
        raw = r->scratch;
        len = r->scratch_len;
        ncmds += 3;
    }
    return fence_plain(r, raw, len, ncmds, db, db_after, every_node);
}

/* fence() without a checkpoint of its own (the caller's bytes have it). */
static int fence_plain(struct router *r, const void *raw, size_t len, uint32_t ncmds, int64_t db,
                       int64_t db_after, bool every_node)
{
    const struct checkpoint *cp = r->cfg.cp;
    if (r->nlanes == 1) { /* one connection: order is already total */
        if (batch_writer_flush_stage(r->bw, 0) != 0 ||
            batch_writer_raw(r->bw, 0, db, raw, len, ncmds, db_after) != 0)
            return oom(r);
        return 0;
    }
    unsigned nodes = every_node ? dest_route_nodes(r->route) : 1;
    for (unsigned n = 0; n < nodes; n++)
        if ((!every_node || dest_route_node_serves(r->route, n)) &&
            batch_writer_raw(r->bw, dest_route_node_lane(r->route, n), db, raw, len, ncmds,
                             db_after) != 0)
            return oom(r);
    if (cp != NULL && r->cluster && put_w(r) != RS_OK) /* within the fence's wait */
        return RS_ERR;
    r->fence = FENCE_AFTER;
    r->fences++;
    return 1;
}

/* True when a fence may run now; else puts the command back and waits. */
static bool fence_ready(struct router *r)
{
    if (r->nlanes == 1)
        return true;
    batch_writer_publish(r->bw); /* gathered MSETs too: all of it precedes the fence */
    if (batch_writer_outstanding(r->bw) == 0 &&
        (r->job->redirect == NULL || cluster_redirect_idle(r->job->redirect)))
        return true;
    resp_scanner_unread(r->sc);
    r->fence = FENCE_DRAIN;
    return false;
}

/* Room for n more bytes in the transaction being gathered. */
static int append_tx_room(struct router *r, size_t n)
{
    if (r->tx_len + n > r->tx_cap) {
        size_t cap = r->tx_cap ? r->tx_cap : 16 * 1024;
        while (cap < r->tx_len + n)
            cap *= 2;
        char *t = realloc(r->tx, cap);
        if (t == NULL)
            return oom(r);
        r->tx = t;
        r->tx_cap = cap;
    }
    return RS_OK;
}

static int append_tx(struct router *r, const struct resp_cmd *c, const struct command_spec *spec)
{
    if (append_tx_room(r, c->raw.len) != RS_OK)
        return RS_ERR;
    if (r->cluster) {
        if (r->ntxc == r->txc_cap) {
            size_t cap = r->txc_cap ? r->txc_cap * 2 : 64;
            struct tx_cmd *t = realloc(r->txc, cap * sizeof(*t));
            if (t == NULL)
                return oom(r);
            r->txc = t;
            r->txc_cap = cap;
        }
        r->txc[r->ntxc++] = (struct tx_cmd){r->tx_len, c->raw.len, r->db, spec};
    }
    memcpy(r->tx + r->tx_len, c->raw.p, c->raw.len);
    r->tx_len += c->raw.len;
    r->tx_cmds++;
    return RS_OK;
}

/* One command inside MULTI: gathered, its keys noted. */
static int tx_command(struct router *r, const struct command_spec *spec, const struct resp_cmd *c)
{
    if (spec != NULL && (spec->flags & CMD_PUBLISH) && !r->cfg.forward_publish)
        return RS_OK; /* dropped, as outside a transaction */
    if (append_tx(r, c, spec) != RS_OK)
        return RS_ERR;
    if (spec == NULL || !(spec->flags & CMD_SELECT))
        r->tx_data++;
    if (spec != NULL && (spec->flags & CMD_SELECT)) {
        int64_t db = c->argc == 2 ? parse_db(&c->argv[1]) : -1;
        if (db < 0) {
            job_fail(r->job, "the replication stream has a bad SELECT at offset %" PRIu64,
                     c->end_offset);
            return RS_ERR;
        }
        note_db(r, db, c->end_offset);
        r->db = db;
        return RS_OK;
    }
    if (spec == NULL || (spec->flags & CMD_FENCE)) {
        r->tx_fence = true;
        return RS_OK;
    }
    int n = find_keys(r, spec, c);
    if (n < 0) {
        r->tx_fence = true;
        return RS_OK;
    }
    if (r->cfg.drop_prefix != NULL && writes_echo(r, c, n))
        r->tx_echo = true;
    if (r->cfg.conflicts != NULL && note_tx_keys(r, c, n) != RS_OK)
        return RS_ERR;
    for (int i = 0; i < n; i++)
        r->tx_workers |= 1ULL << (lane_of(r, r->slots[i]) % 64);
    if (n > 0 && !r->tx_has_key) {
        r->tx_has_key = true;
        r->tx_first_slot = r->slots[0];
    }
    return RS_OK;
}

/* ------------------------------------------------------------- a proxy */

/* A command whose n keys the proxy puts on one server, in lane `to`: as it
 * came when the proxy runs it, else EVAL-wrapped (batch_writer_cmd wraps),
 * else --cross-slot decides (PROXY_DESTINATION.md §4). */
static int proxy_write(struct router *r, unsigned to, int64_t db, const struct resp_cmd *c, int n)
{
    enum proxy_form f = proxy_form_of(c->argc, c->argv, n > 0 ? r->keys[0] : 0);
    if (f == PROXY_AS_IS)
        return write_raw(r, to, db, c);
    if (f == PROXY_WRAP && r->cfg.proxy_eval && c->argc <= PROXY_WRAP_MAX_ARGC) {
        atomic_fetch_add_explicit(&r->job->proxy_wrapped, 1, memory_order_relaxed);
        return batch_writer_cmd(r->bw, to, db, c->argc, c->argv) == 0 ? RS_OK : oom(r);
    }
    return cross_slot(r, c, n,
                      f != PROXY_WRAP ? "the proxy runs no command without a key"
                      : !r->cfg.proxy_eval
                          ? "the proxy refuses it, and its wrapped form (EVAL) was refused at the "
                            "start"
                          : "the proxy refuses it, and it has too many arguments for its wrapped "
                            "form (EVAL)");
}

/* A command without keys through a proxy: FUNCTION and SCRIPT are dropped
 * and counted (they cannot reach the servers behind it; said once), the
 * rest (FLUSHALL, SWAPDB ...) meet --cross-slot. */
static int proxy_keyless(struct router *r, const struct resp_cmd *c)
{
    const struct rs_slice *n = &c->argv[0];
    bool code = (n->len == 8 && strncasecmp(n->p, "function", 8) == 0) ||
                (n->len == 6 && strncasecmp(n->p, "script", 6) == 0);
    if (!code)
        return cross_slot(r, c, 0,
                          "the proxy runs no command without a key (it closes the connection)");
    atomic_fetch_add_explicit(&r->job->keyless_skipped, 1, memory_order_relaxed);
    if (!r->keyless_said) {
        r->keyless_said = true;
        fprintf(stderr,
                "ringsync: the source ran %.*s at offset %" PRIu64 ": a proxy passes no "
                "FUNCTION or SCRIPT command to its servers, so load the source's functions and "
                "scripts on each server behind it yourself (said once; the report counts them)\n",
                (int)(n->len > 20 ? 20 : n->len), n->p, c->end_offset);
    }
    return 0;
}

/* ------------------------------------------------ transactions on a cluster */

/* Room for n more bytes in the scratch transaction; NULL: no memory. */
static char *scratch_room(struct router *r, size_t n)
{
    if (r->scratch_len + n > r->scratch_cap) {
        size_t cap = r->scratch_cap ? r->scratch_cap : 16 * 1024;
        while (cap < r->scratch_len + n)
            cap *= 2;
        char *s = realloc(r->scratch, cap);
        if (s == NULL)
            return NULL;
        r->scratch = s;
        r->scratch_cap = cap;
    }
    return r->scratch + r->scratch_len;
}

static int scratch_put(struct router *r, const void *p, size_t n)
{
    char *at = scratch_room(r, n);
    if (at == NULL)
        return -1;
    memcpy(at, p, n);
    r->scratch_len += n;
    return 0;
}

/* The parts of transaction command i for hash slot `slot` into the scratch
 * transaction: the command as received when its keys are all of that slot,
 * its keys of that slot alone when it splits; *ncmds counts what it added.
 * Returns 0, or -1 when out of memory. */
static int tx_part(struct router *r, const struct resp_cmd *c, const struct command_spec *spec,
                   int n, unsigned slot, uint32_t *ncmds)
{
    bool all = true, any = false;
    for (int k = 0; k < n; k++) {
        all &= r->slots[k] == slot;
        any |= r->slots[k] == slot;
    }
    if (!any)
        return 0;
    if (all) {
        (*ncmds)++;
        return scratch_put(r, c->raw.p, c->raw.len);
    }
    int argc = 1;
    r->argv[0] = spec->flags & CMD_SPLIT_AS_MSET ? (struct rs_slice){"MSET", 4} : c->argv[0];
    for (int k = 0; k < n; k++) {
        if (r->slots[k] != slot)
            continue;
        r->argv[argc++] = c->argv[r->keys[k]];
        if (spec->step == 2)
            r->argv[argc++] = c->argv[r->keys[k] + 1];
    }
    size_t need = resp_argv_size(argc, r->argv);
    char *at = scratch_room(r, need);
    if (at == NULL)
        return -1;
    resp_put_argv(at, argc, r->argv);
    r->scratch_len += need;
    (*ncmds)++;
    return 0;
}

/* Reads transaction command i again (its bytes are complete RESP). */
static int tx_parse(struct router *r, size_t i, struct resp_scanner *sc, struct resp_cmd *c)
{
    struct rs_error err;
    if (resp_scanner_feed(sc, r->tx + r->txc[i].off, r->txc[i].len) != 0)
        return -1;
    return resp_scanner_next(sc, c, &err) == 1 ? 0 : -1;
}

/* EXEC on a cluster destination: a transaction whose keys all share one
 * slot goes out whole to that slot's lane; otherwise one transaction per
 * slot, in the order the slots first appear, each holding that slot's
 * commands (a split command's keys of that slot) in source order. Per-slot
 * order holds (invariant 1); atomicity across slots is lost, which is said
 * once and counted. A command with no keys, or one that spans slots and
 * does not split, follows --cross-slot. */
static int cluster_exec(struct router *r, const struct resp_cmd *exec)
{
    struct resp_scanner *sc = r->txsc;
    int rc = RS_OK;
    /* the slots, in order of first appearance; and the checks */
    size_t nslots = 0;
    uint64_t seen[SLOT_COUNT / 64] = {0};
    for (size_t i = 0; i < r->ntxc && rc == RS_OK; i++) {
        const struct command_spec *spec = r->txc[i].spec;
        if (spec != NULL && (spec->flags & (CMD_MULTI | CMD_EXEC | CMD_SELECT)))
            continue;
        struct resp_cmd c;
        if (tx_parse(r, i, sc, &c) != 0) {
            rc = oom(r);
            break;
        }
        int64_t db_save = r->db;
        r->db = r->txc[i].db;
        bool failed;
        if (dest_db(r, &c, &failed) < 0) {
            r->db = db_save;
            if (failed) {
                rc = RS_ERR;
                break;
            }
            r->txc[i].spec = NULL; /* dropped (counted): mark it for the writing pass */
            r->txc[i].len = 0;
            continue;
        }
        int n = spec && !(spec->flags & CMD_FENCE) ? find_keys(r, spec, &c) : -1;
        bool splits = spec && (spec->flags & (CMD_SPLIT | CMD_SPLIT_AS_MSET));
        bool one = n > 0;
        for (int k = 1; k < n && one; k++)
            one = r->slots[k] == r->slots[0];
        if (n <= 0 || (!one && !splits)) {
            rc = cross_slot(r, &c, n > 0 ? n : 0,
                            n <= 0 ? "inside a transaction, a command whose node ringsync "
                                     "cannot tell"
                                   : "inside a transaction, a command whose keys span hash "
                                     "slots and that has no per-slot form");
            r->db = db_save;
            r->txc[i].len = 0; /* skipped, when it returned 0 */
            continue;
        }
        r->db = db_save;
        for (int k = 0; k < n; k++) {
            unsigned s = r->slots[k];
            if (seen[s / 64] >> (s % 64) & 1)
                continue;
            seen[s / 64] |= 1ULL << (s % 64);
            if (nslots == r->tx_slots_cap) {
                size_t cap = r->tx_slots_cap ? r->tx_slots_cap * 2 : 64;
                unsigned *o = realloc(r->tx_slots, cap * sizeof(*o));
                if (o == NULL) {
                    rc = oom(r);
                    break;
                }
                r->tx_slots = o;
                r->tx_slots_cap = cap;
            }
            r->tx_slots[nslots++] = s;
        }
    }
    if (rc == RS_OK && nslots > 1) {
        atomic_fetch_add_explicit(&r->job->tx_split, 1, memory_order_relaxed);
        if (!r->tx_split_said) {
            r->tx_split_said = true;
            rs_log("a transaction at source offset %" PRIu64 " touches %zu hash "
                   "slots: a cluster runs a transaction within one slot only, so it goes out as "
                   "one transaction per slot, each atomic on its own (said once; the report "
                   "counts them)",
                   exec->end_offset, nslots);
        }
    }
    for (size_t si = 0; si < nslots && rc == RS_OK; si++) {
        unsigned slot = r->tx_slots[si];
        uint32_t ncmds = 0;
        r->scratch_len = 0;
        static const char multi[] = "*1\r\n$5\r\nMULTI\r\n", execb[] = "*1\r\n$4\r\nEXEC\r\n";
        if (scratch_put(r, multi, sizeof(multi) - 1) != 0) {
            rc = oom(r);
            break;
        }
        ncmds++;
        for (size_t i = 0; i < r->ntxc && rc == RS_OK; i++) {
            const struct command_spec *spec = r->txc[i].spec;
            if (r->txc[i].len == 0 || spec == NULL ||
                (spec->flags & (CMD_MULTI | CMD_EXEC | CMD_SELECT)))
                continue;
            struct resp_cmd c;
            if (tx_parse(r, i, sc, &c) != 0)
                rc = oom(r);
            int n = rc == RS_OK ? find_keys(r, spec, &c) : 0;
            if (rc == RS_OK && tx_part(r, &c, spec, n, slot, &ncmds) != 0)
                rc = oom(r);
        }
        if (r->cfg.cp != NULL) { /* the slot's record, then EXEC */
            char *at = rc == RS_OK ? scratch_room(r, checkpoint_end_size(r->cfg.cp)) : NULL;
            if (at == NULL && rc == RS_OK)
                rc = oom(r);
            if (at != NULL) {
                char *end =
                    checkpoint_put_end(r->cfg.cp, at, lane_of(r, slot), slot, exec->end_offset);
                r->scratch_len = (size_t)(end - r->scratch);
                ncmds++;
            }
        } else if (rc == RS_OK && scratch_put(r, execb, sizeof(execb) - 1) != 0) {
            rc = oom(r);
        }
        ncmds++;
        if (applied_before(r, slot, exec->end_offset))
            continue; /* a resume: this slot's part ran */
        unsigned to = lane_of(r, slot);
        r->slots[0] = slot;
        if (rc == RS_OK && (settle(r, 1) != RS_OK ||
                            batch_writer_raw(r->bw, to, 0, r->scratch, r->scratch_len, ncmds, 0)))
            rc = oom(r);
    }
    return rc;
}

/* 1 when a transaction on a cluster holds a command across slots that does
 * not split and that cross_slot.c carries out, and every such command is
 * one it carries out: the whole transaction then runs command by command
 * under a fence (cluster_exec_carried). 0: cluster_exec, whose --cross-slot
 * policy meets the rest. */
static int tx_needs_carry(struct router *r, struct resp_scanner *sc)
{
    if (r->cfg.carry == NULL)
        return 0;
    int need = 0;
    for (size_t i = 0; i < r->ntxc; i++) {
        const struct command_spec *spec = r->txc[i].spec;
        if (spec == NULL || (spec->flags & (CMD_MULTI | CMD_EXEC | CMD_SELECT | CMD_FENCE)) ||
            (spec->flags & (CMD_SPLIT | CMD_SPLIT_AS_MSET)))
            continue;
        struct resp_cmd c;
        if (tx_parse(r, i, sc, &c) != 0)
            return oom(r);
        int n = find_keys(r, spec, &c);
        bool one = n > 0 && keys_together(r, &c, n);
        if (n > 1 && !one) {
            if (!(r->proxy
                      ? cross_slot_can_carry_proxy(c.argc, c.argv, r->keys, n, r->cfg.proxy_tag)
                      : cross_slot_can_carry(c.argc, c.argv)) ||
                command_reads_unnamed_keys(spec, c.argc, c.argv))
                return 0;
            need = 1;
        }
    }
    return need;
}

/* A transaction with a command carried out (tx_needs_carry), once every
 * earlier command is applied: each of its commands in order, on control
 * links (cross_slot.h): a single-slot one on its node, a split one key by
 * key, one across slots carried out. Atomicity is lost, as for any
 * transaction across slots on a cluster (counted in job->tx_split). */
static int cluster_exec_carried(struct router *r, struct resp_scanner *sc, uint64_t end)
{
    atomic_fetch_add_explicit(&r->job->tx_split, 1, memory_order_relaxed);
    for (size_t i = 0; i < r->ntxc; i++) {
        const struct command_spec *spec = r->txc[i].spec;
        if (spec != NULL && (spec->flags & (CMD_MULTI | CMD_EXEC | CMD_SELECT)))
            continue;
        struct resp_cmd c;
        if (tx_parse(r, i, sc, &c) != 0)
            return oom(r);
        int64_t db_save = r->db;
        r->db = r->txc[i].db;
        bool failed;
        int64_t db = dest_db(r, &c, &failed);
        r->db = db_save;
        if (db < 0) {
            if (failed)
                return RS_ERR;
            continue;
        }
        int n = spec && !(spec->flags & CMD_FENCE) ? find_keys(r, spec, &c) : -1;
        if (n <= 0) {
            if ((r->proxy ? proxy_keyless(r, &c)
                          : cross_slot(r, &c, 0,
                                       "inside a transaction, a command whose node ringsync "
                                       "cannot tell")) != 0)
                return RS_ERR;
            continue;
        }
        bool one = keys_together(r, &c, n);
        int x;
        if (one || !(spec->flags & (CMD_SPLIT | CMD_SPLIT_AS_MSET))) {
            x = one ? cross_slot_run(r->cfg.carry, c.argc, c.argv, r->slots[0], r->routed, end)
                    : (cross_slot_carry(r->cfg.carry, c.argc, c.argv, r->keys, r->slots, n,
                                        r->routed, end) > 0
                           ? 0
                           : -1);
        } else { /* split: one key (and its value) a command */
            x = 0;
            for (int k = 0; k < n && x == 0; k++) {
                struct rs_slice argv[3] = {c.argv[0], c.argv[r->keys[k]]};
                int argc = 2;
                if (spec->flags & CMD_SPLIT_AS_MSET)
                    argv[0] = (struct rs_slice){"MSET", 4};
                if (spec->step == 2)
                    argv[argc++] = c.argv[r->keys[k] + 1];
                x = cross_slot_run(r->cfg.carry, argc, argv, r->slots[k], r->routed, end);
            }
        }
        if (x < 0)
            return RS_ERR;
    }
    return RS_OK;
}

/* EXEC through a proxy (PROXY_DESTINATION.md §5): no MULTI ever goes
 * through it (it closes the connection), so the transaction goes out as its
 * commands, each on its own lane in source order as route() would send it
 * alone; atomicity is lost, said once and counted (job->tx_unwrapped). A
 * command across servers that does not split meets --cross-slot (one that
 * is carried out made tx_needs_carry choose cluster_exec_carried). */
static int proxy_exec(struct router *r, const struct resp_cmd *exec)
{
    struct resp_scanner *sc = r->txsc;
    atomic_fetch_add_explicit(&r->job->tx_unwrapped, 1, memory_order_relaxed);
    if (!r->unwrap_said) {
        r->unwrap_said = true;
        fprintf(stderr,
                "ringsync: a transaction at source offset %" PRIu64 " goes through the proxy "
                "as its commands, each applied on its own (a proxy runs no MULTI/EXEC; said "
                "once, the report counts them)\n",
                exec->end_offset);
    }
    int64_t db_save = r->db;
    int rc = RS_OK;
    for (size_t i = 0; i < r->ntxc && rc == RS_OK; i++) {
        const struct command_spec *spec = r->txc[i].spec;
        if (spec == NULL || (spec->flags & (CMD_MULTI | CMD_EXEC | CMD_SELECT)))
            continue;
        struct resp_cmd c;
        if (tx_parse(r, i, sc, &c) != 0) {
            rc = oom(r);
            break;
        }
        r->db = r->txc[i].db;
        bool failed;
        int64_t db = dest_db(r, &c, &failed);
        if (db < 0) {
            rc = failed ? RS_ERR : RS_OK;
            continue;
        }
        int n = !(spec->flags & CMD_FENCE) ? find_keys(r, spec, &c) : -1;
        if (n <= 0) {
            rc = proxy_keyless(r, &c) == 0 ? RS_OK : RS_ERR;
            continue;
        }
        if (settle(r, n) != RS_OK) {
            rc = RS_ERR;
            break;
        }
        if (n > 1 && (spec->flags & (CMD_SPLIT | CMD_SPLIT_AS_MSET)))
            rc = write_split(r, spec, &c, n, db);
        else if (keys_together(r, &c, n) && !command_reads_unnamed_keys(spec, c.argc, c.argv))
            rc = proxy_write(r, lane_of(r, r->slots[0]), db, &c, n);
        else
            rc = cross_slot(r, &c, n,
                            "inside a transaction, a command whose keys the proxy may put on "
                            "different servers, and that has no form that splits them") == 0
                     ? RS_OK
                     : RS_ERR;
    }
    r->db = db_save;
    return rc;
}

/* One master's stream of a cluster source, beside the other masters' own:
 * what it cannot apply without the others' order. FLUSHALL and FLUSHDB
 * empty every node of the destination, the others' keys too; RESTORE-ASKING
 * is the source resharding (a key arriving from another master, whose
 * stream deletes it in an order this one does not see). True after
 * job_fail. */
static bool shard_refuses(struct router *r, const struct command_spec *spec,
                          const struct resp_cmd *c)
{
    const char *why = NULL;
    if (spec != NULL && (spec->flags & CMD_EVERY_NODE) && c->argv[0].len >= 5 &&
        strncasecmp(c->argv[0].p, "flush", 5) == 0)
        why = "it would empty the keys the other masters' streams wrote too";
    else if (c->argv[0].len == 14 && strncasecmp(c->argv[0].p, "restore-asking", 14) == 0)
        why = "the source cluster is moving slots between its masters, and the other master's "
              "stream deletes the key in an order this one cannot see; sync again once the "
              "resharding is over";
    if (why == NULL)
        return false;
    char name[40];
    rs_escape_bytes(name, sizeof(name), c->argv[0].p, c->argv[0].len, 20);
    job_fail(r->job,
             "the source is a cluster, and one master's stream has %s at offset %" PRIu64
             "..%" PRIu64 ", which ringsync cannot apply alone: %s",
             name, r->routed, c->end_offset, why);
    return true;
}

/* --db-prefix: c with every key named by prefix + key, into *out (the
 * router's buffers, valid until the next command). 1 rewritten, 0 nothing
 * to rewrite (no keys), -1 after job_fail: what reads or empties keys by
 * names it does not give (SORT BY/GET patterns, a script's body, FLUSHDB of
 * one database) cannot be prefixed. */
static int prefix_keys(struct router *r, const struct command_spec *spec, const struct resp_cmd *c,
                       struct resp_cmd *out)
{
    const char *why = NULL;
    if ((spec->flags & CMD_FENCE) && strcmp(spec->name, "flushdb") == 0)
        why = "it empties one source database, which is a key prefix on the destination";
    else if (command_reads_unnamed_keys(spec, c->argc, c->argv))
        why = "its BY/GET patterns name keys without the prefix";
    else if (strncmp(spec->name, "eval", 4) == 0 || strncmp(spec->name, "fcall", 5) == 0)
        why = "a script names keys in its body, which ringsync cannot prefix";
    if (why != NULL) {
        char name[40];
        rs_escape_bytes(name, sizeof(name), c->argv[0].p, c->argv[0].len, 20);
        job_fail(r->job,
                 "the source ran %s at offset %" PRIu64 "..%" PRIu64 " in db %" PRId64
                 ", which --db-prefix cannot apply: %s",
                 name, r->routed, c->end_offset, r->db, why);
        return -1;
    }
    if ((size_t)c->argc > r->pfx_argc_cap) {
        size_t cap = (size_t)c->argc * 2;
        struct rs_slice *a = realloc(r->pfx_argv, cap * sizeof(*a));
        if (a != NULL)
            r->pfx_argv = a;
        int *ix = realloc(r->pfx_idx, cap * sizeof(*ix));
        if (ix != NULL)
            r->pfx_idx = ix;
        if (a == NULL || ix == NULL)
            return oom(r);
        r->pfx_argc_cap = cap;
    }
    int n = command_keys(spec, c->argc, c->argv, r->pfx_idx, c->argc);
    if (n <= 0)
        return 0;
    char prefix[64];
    size_t plen = dest_route_prefix(r->route, r->db, prefix, sizeof(prefix));
    size_t need = c->raw.len + (size_t)n * (plen + 24);
    if (need > r->pfx_cap) {
        char *b = realloc(r->pfx, need * 2);
        if (b == NULL)
            return oom(r);
        r->pfx = b;
        r->pfx_cap = need * 2;
    }
    for (int i = 0; i < c->argc; i++)
        r->pfx_argv[i] = c->argv[i];
    char *p = r->pfx;
    p += sprintf(p, "*%d\r\n", c->argc);
    for (int i = 0, k = 0; i < c->argc; i++) {
        bool is_key = false;
        for (int j = k; j < n && !is_key; j++)
            is_key = r->pfx_idx[j] == i;
        size_t len = c->argv[i].len + (is_key ? plen : 0);
        p += sprintf(p, "$%zu\r\n", len);
        r->pfx_argv[i] = (struct rs_slice){p, len};
        if (is_key) {
            memcpy(p, prefix, plen);
            p += plen;
        }
        memcpy(p, c->argv[i].p, c->argv[i].len);
        p += c->argv[i].len;
        *p++ = '\r';
        *p++ = '\n';
    }
    *out = (struct resp_cmd){.raw = {r->pfx, (size_t)(p - r->pfx)},
                             .argc = c->argc,
                             .argv = r->pfx_argv,
                             .end_offset = c->end_offset};
    return 1;
}

/* ---------------------------------------------------------------- filters */

enum filter_verdict { FILTER_KEEP = 0, FILTER_DROP, FILTER_TRIM };

/* Counts the command ending at end once in counter: a command put back at a
 * fence is routed again. */
static void filter_count(struct router *r, _Atomic uint64_t *counter, uint64_t end)
{
    if (r->flt_counted == end)
        return;
    r->flt_counted = end;
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* A command whose keys (or dbs) the filters split, that has no form with
 * the kept ones alone: --cross-slot stop fails the job naming it, the
 * filters and its offsets; skip drops it, logged and counted. what says
 * what is kept and what is not. FILTER_DROP, or RS_ERR after job_fail. */
static int filter_split(struct router *r, const struct resp_cmd *c, const char *what)
{
    char name[40], filters[400], msg[800];
    rs_escape_bytes(name, sizeof(name), c->argv[0].p, c->argv[0].len, 20);
    for (char *q = name; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    key_filter_describe(r->cfg.filter, filters, sizeof(filters));
    snprintf(msg, sizeof(msg),
             "%s at source offset %" PRIu64 "..%" PRIu64 " in db %" PRId64
             ": the filters (%s) keep %s, and it has no form with the kept ones alone",
             name, r->routed, c->end_offset, r->db, filters, what);
    if (!r->cfg.cross_slot_skip) {
        job_fail(r->job,
                 "cannot apply %s; pass --cross-slot skip to drop such commands (each is "
                 "logged and counted)",
                 msg);
        return RS_ERR;
    }
    uint64_t k = atomic_load_explicit(&r->job->filter_split_skipped, memory_order_relaxed);
    filter_count(r, &r->job->filter_split_skipped, c->end_offset);
    if (k < 100)
        fprintf(stderr, "ringsync: skipped (--cross-slot skip): %s%s\n", msg,
                k == 99 ? " (no more of these are shown)" : "");
    return FILTER_DROP;
}

/* A splittable command (DEL, UNLINK, TOUCH, MSET; MSETNX as MSET) with the
 * keys the filters keep (r->keys, n of them) alone, into *out (the router's
 * buffers, valid until the next command). FILTER_TRIM or RS_ERR. */
static int filter_trim(struct router *r, const struct command_spec *spec, const struct resp_cmd *c,
                       int n, struct resp_cmd *out)
{
    struct rs_slice *args = r->argv; /* room for c->argc (find_keys) */
    int argc = 0;
    args[argc++] = spec->flags & CMD_SPLIT_AS_MSET ? (struct rs_slice){"MSET", 4} : c->argv[0];
    for (int i = 0; i < n; i++) {
        struct rs_slice k = c->argv[r->keys[i]];
        if (!key_filter_keep_key(r->cfg.filter, r->db, k.p, k.len))
            continue;
        args[argc++] = k;
        if (spec->step == 2)
            args[argc++] = c->argv[r->keys[i] + 1];
    }
    size_t need = resp_argv_size(argc, args);
    if (need > r->flt_cap) {
        char *b = realloc(r->flt, need * 2);
        if (b == NULL)
            return oom(r);
        r->flt = b;
        r->flt_cap = need * 2;
    }
    if ((size_t)argc > r->flt_argc_cap) {
        struct rs_slice *a = realloc(r->flt_argv, (size_t)c->argc * sizeof(*a));
        if (a == NULL)
            return oom(r);
        r->flt_argv = a;
        r->flt_argc_cap = (size_t)c->argc;
    }
    char *p = r->flt;
    p += sprintf(p, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        p += sprintf(p, "$%zu\r\n", args[i].len);
        memcpy(p, args[i].p, args[i].len);
        r->flt_argv[i] = (struct rs_slice){p, args[i].len};
        p += args[i].len;
        *p++ = '\r';
        *p++ = '\n';
    }
    RS_ASSERT((size_t)(p - r->flt) == need);
    *out = (struct resp_cmd){
        .raw = {r->flt, need}, .argc = argc, .argv = r->flt_argv, .end_offset = c->end_offset};
    filter_count(r, &r->job->filter_trimmed, c->end_offset);
    return FILTER_TRIM;
}

/* COPY src dst ... DB n: n, else -1. */
static int64_t copy_db(const struct resp_cmd *c)
{
    for (int i = 3; i + 1 < c->argc; i++)
        if (c->argv[i].len == 2 && strncasecmp(c->argv[i].p, "db", 2) == 0)
            return parse_db(&c->argv[i + 1]);
    return -1;
}

/* The db the filters judge look i at a command's n keys in (filter_command):
 * the current one; for look n (MOVE's key again) and COPY's destination
 * key (i 1), the db they go to. */
static int64_t look_db(int i, int n, bool is_move, int64_t to_db, int64_t db)
{
    return i == n || (!is_move && i == 1 && to_db >= 0) ? to_db : db;
}

/* What the filters (router.h) make of c: FILTER_KEEP (as it came),
 * FILTER_DROP (counted), FILTER_TRIM (*out: its kept keys alone), or RS_ERR
 * after job_fail. Judged on the source's names and db, before --db-prefix
 * and the db map. */
static int filter_command(struct router *r, const struct command_spec *spec,
                          const struct resp_cmd *c, struct resp_cmd *out)
{
    const struct key_filter *f = r->cfg.filter;
    char what[300], a[100], b[100];
    if (key_filter_blocks_command(f, c->argv[0].p, c->argv[0].len))
        goto drop;
    if (spec == NULL || (spec->flags & CMD_PUBLISH) ||
        ((spec->flags & CMD_EVERY_NODE) && strcmp(spec->name, "flushdb") != 0))
        return FILTER_KEEP; /* keys unknown, a channel, or the whole server (FLUSHALL ...) */
    if (strcmp(spec->name, "swapdb") == 0) {
        int64_t x = c->argc == 3 ? parse_db(&c->argv[1]) : -1;
        int64_t y = c->argc == 3 ? parse_db(&c->argv[2]) : -1;
        if (x < 0 || y < 0)
            return FILTER_KEEP; /* malformed: the destination says so */
        bool kx = key_filter_keeps_db(f, x), ky = key_filter_keeps_db(f, y);
        if (kx && ky)
            return FILTER_KEEP;
        if (!kx && !ky)
            goto drop;
        snprintf(what, sizeof(what), "database %" PRId64 " and not database %" PRId64, kx ? x : y,
                 kx ? y : x);
        return filter_split(r, c, what);
    }
    int n = find_keys(r, spec, c);
    if (n <= 0) { /* FLUSHDB, a script without keys ...: its db decides */
        if (key_filter_keeps_db(f, r->db))
            return FILTER_KEEP;
        goto drop;
    }
    /* each key in the db it is in; MOVE's also in the db it goes to, COPY
     * ... DB n's destination in n */
    bool is_move = strcmp(spec->name, "move") == 0;
    int64_t to_db = is_move                           ? (c->argc == 3 ? parse_db(&c->argv[2]) : -1)
                    : strcmp(spec->name, "copy") == 0 ? copy_db(c)
                                                      : -1;
    int looks = n + (is_move && to_db >= 0), kept = 0, first_kept = -1, first_dropped = -1;
    for (int i = 0; i < looks; i++) {
        struct rs_slice k = c->argv[r->keys[i < n ? i : 0]];
        int64_t db = look_db(i, n, is_move, to_db, r->db);
        if (key_filter_keep_key(f, db, k.p, k.len)) {
            kept++;
            first_kept = first_kept < 0 ? i : first_kept;
        } else if (first_dropped < 0) {
            first_dropped = i;
        }
    }
    if (kept == looks)
        return FILTER_KEEP;
    if (kept == 0)
        goto drop;
    if (spec->flags & (CMD_SPLIT | CMD_SPLIT_AS_MSET))
        return filter_trim(r, spec, c, n, out);
    struct rs_slice kk = c->argv[r->keys[first_kept < n ? first_kept : 0]];
    struct rs_slice kd = c->argv[r->keys[first_dropped < n ? first_dropped : 0]];
    int64_t dk = look_db(first_kept, n, is_move, to_db, r->db);
    int64_t dd = look_db(first_dropped, n, is_move, to_db, r->db);
    snprintf(what, sizeof(what), "key '%s' of db %" PRId64 " and not key '%s' of db %" PRId64,
             rs_escape_bytes(a, sizeof(a), kk.p, kk.len, 40), dk,
             rs_escape_bytes(b, sizeof(b), kd.p, kd.len, 40), dd);
    return filter_split(r, c, what);
drop:
    filter_count(r, &r->job->filtered_cmds, c->end_offset);
    return FILTER_DROP;
}

/* ------------------------------------------------------------------ route */

/* Routes one command; 1 when routing must pause (a fence). */
/* SET <heartbeat key> <ms>, seen: noted for the feed (heartbeat.h). */
static void note_heartbeat(struct router *r, const struct resp_cmd *c)
{
    if (r->hb_pending || c->argc != 3 || c->argv[1].len != r->hb_len ||
        memcmp(c->argv[1].p, r->cfg.heartbeat_key, r->hb_len) != 0 || c->argv[0].len != 3 ||
        (c->argv[0].p[0] | 0x20) != 's' || c->argv[2].len == 0 || c->argv[2].len > 18)
        return;
    int64_t v = 0;
    for (size_t i = 0; i < c->argv[2].len; i++) {
        char d = c->argv[2].p[i];
        if (d < '0' || d > '9')
            return;
        v = v * 10 + (d - '0');
    }
    r->hb_ms = v;
    r->hb_end = c->end_offset;
    r->hb_pending = true;
}

static int route(struct router *r, const struct resp_cmd *c)
{
    if (r->hb_len > 0)
        note_heartbeat(r, c);
    const struct command_spec *spec = command_lookup(c->argv[0].p, c->argv[0].len);
    unsigned flags = spec ? spec->flags : CMD_FENCE;
    struct resp_cmd kept;
    if (r->cfg.filter != NULL && !(flags & (CMD_SKIP | CMD_SELECT | CMD_MULTI | CMD_EXEC))) {
        int x = filter_command(r, spec, c, &kept);
        if (x < 0)
            return RS_ERR;
        if (x == FILTER_DROP)
            return 0; /* consumed, as a skipped command: the applied offset passes it */
        if (x == FILTER_TRIM) {
            c = &kept; /* a command of the same family (MSETNX's is MSET) */
            spec = command_lookup(c->argv[0].p, c->argv[0].len);
            flags = spec->flags;
        }
    }
    struct resp_cmd rewritten;
    if (spec != NULL && command_rewrite_of(spec) != CMD_RW_NONE) {
        int x = stream_rewrite_cmd(&r->rw, spec, c, &rewritten);
        if (x < 0)
            return oom(r);
        if (x == 1)
            c = &rewritten; /* the same effect in a form a client may send */
    }
    struct resp_cmd prefixed;
    if (r->route->prefix != NULL && spec != NULL &&
        !(flags & (CMD_SKIP | CMD_SELECT | CMD_MULTI | CMD_EXEC | CMD_PUBLISH))) {
        int x = prefix_keys(r, spec, c, &prefixed);
        if (x < 0)
            return RS_ERR;
        if (x == 1)
            c = &prefixed;
    }
    if (r->in_tx && (flags & CMD_EXEC) && r->tx_echo) { /* two-way: the other direction's */
        r->in_tx = false;
        atomic_fetch_add_explicit(&r->job->echoes, 1, memory_order_relaxed);
        return 0;
    }
    if (r->in_tx && (flags & CMD_EXEC) && r->cfg.conflicts != NULL) /* an application's */
        for (size_t i = 0; i < r->ntx_keys; i++)
            two_way_note(r->cfg.conflicts, r->job, r->cfg.conflict_side, r->tx_db,
                         r->tx + r->tx_keys[i].pos, r->tx_keys[i].len, c->end_offset);
    if (r->in_tx) {
        if ((flags & CMD_EXEC) && r->cfg.filter != NULL && r->tx_data == 0) {
            r->in_tx = false; /* the filters left none of its commands: nothing to send */
            return 0;
        }
        if (flags & CMD_EXEC && r->cluster) {
            struct resp_scanner *sc = r->txsc;
            int need = tx_needs_carry(r, sc);
            int rc;
            if (need == 1 && !fence_ready(r)) {
                rc = 1; /* EXEC comes again once everything before is applied */
            } else if (need == 1) {
                r->in_tx = false;
                rc = cluster_exec_carried(r, sc, c->end_offset) == RS_OK ? 0 : RS_ERR;
                if (rc == 0 && r->cfg.cp != NULL && put_w(r) != RS_OK)
                    rc = RS_ERR;
            } else {
                r->in_tx = false;
                rc = need < 0                                                      ? RS_ERR
                     : (r->proxy ? proxy_exec(r, c) : cluster_exec(r, c)) == RS_OK ? 0
                                                                                   : RS_ERR;
            }
            return rc;
        }
        if (flags & CMD_EXEC) {
            int nw = __builtin_popcountll(r->tx_workers);
            bool alone = r->tx_fence || nw > 1;
            if (alone && !fence_ready(r))
                return 1; /* EXEC comes again once the workers drained */
            unsigned to = nw == 1 ? (unsigned)__builtin_ctzll(r->tx_workers) : 0;
            /* a resume: its record says it ran (a lane's, or w when it ran alone) */
            if (r->tx_has_key && applied_before(r, r->tx_first_slot, c->end_offset)) {
                r->in_tx = false;
                return 0;
            }
            if (r->cfg.cp != NULL) {
                /* its record before EXEC: w when it runs alone, else its lane's */
                if (append_tx_room(r, checkpoint_end_size(r->cfg.cp) +
                                          checkpoint_w_size(r->cfg.cp)) != RS_OK)
                    return RS_ERR;
                char *at = r->tx + r->tx_len;
                char *end =
                    alone
                        ? (r->w_written = c->end_offset,
                           checkpoint_put_w(r->cfg.cp, at, c->end_offset, r->db, CHECKPOINT_STREAM))
                        : checkpoint_put_end(r->cfg.cp, at, to, r->tx_first_slot, c->end_offset);
                r->tx_len = (size_t)(end - r->tx);
                r->tx_cmds += alone ? 1 : 2;
                r->in_tx = false;
                if (alone) {
                    if (append_tx(r, c, spec) != RS_OK)
                        return RS_ERR;
                    return fence_plain(r, r->tx, r->tx_len, r->tx_cmds, r->tx_db, r->db, false);
                }
                if (batch_writer_flush_stage(r->bw, to) != 0 ||
                    batch_writer_raw(r->bw, to, r->tx_db, r->tx, r->tx_len, r->tx_cmds, r->db) != 0)
                    return oom(r);
                return 0;
            }
            if (append_tx(r, c, spec) != RS_OK)
                return RS_ERR;
            r->in_tx = false;
            if (alone)
                return fence(r, r->tx, r->tx_len, r->tx_cmds, r->tx_db, r->db, false);
            if (batch_writer_flush_stage(r->bw, to) != 0 ||
                batch_writer_raw(r->bw, to, r->tx_db, r->tx, r->tx_len, r->tx_cmds, r->db) != 0)
                return oom(r);
            return 0;
        }
        return tx_command(r, spec, c) == RS_OK ? 0 : RS_ERR;
    }
    if (flags & CMD_SKIP) {
        if ((flags & CMD_REPLCONF) && c->argc >= 2 && c->argv[1].len == 6 &&
            strncasecmp(c->argv[1].p, "getack", 6) == 0)
            r->getack = true;
        return 0;
    }
    if (flags & CMD_SELECT) {
        int64_t db = c->argc == 2 ? parse_db(&c->argv[1]) : -1;
        if (db < 0) {
            job_fail(r->job, "the replication stream has a bad SELECT at offset %" PRIu64,
                     c->end_offset);
            return RS_ERR;
        }
        note_db(r, db, c->end_offset);
        r->db = db;
        return 0;
    }
    if (flags & CMD_MULTI) {
        r->in_tx = true;
        r->tx_len = 0;
        r->tx_cmds = 0;
        r->ntxc = 0;
        r->tx_db = r->db;
        r->tx_workers = 0;
        r->tx_fence = false;
        r->tx_has_key = false;
        r->tx_echo = false;
        r->ntx_keys = 0;
        r->tx_data = 0;
        return append_tx(r, c, spec) == RS_OK ? 0 : RS_ERR;
    }
    bool failed;
    int64_t db = dest_db(r, c, &failed);
    if (db < 0)
        return failed ? RS_ERR : 0;
    if (r->cfg.source_is_shard && shard_refuses(r, spec, c))
        return RS_ERR;
    if (flags & CMD_PUBLISH) {
        if (!r->cfg.forward_publish)
            return 0;
        if (batch_writer_flush_stage(r->bw, 0) != 0) /* after the writes before it */
            return oom(r);
        return write_raw(r, 0, db, c) == RS_OK ? 0 : RS_ERR;
    }
    int n = flags & CMD_FENCE ? 0 : find_keys(r, spec, c);
    if (n > 0 && r->cfg.drop_prefix != NULL && writes_echo(r, c, n)) {
        atomic_fetch_add_explicit(&r->job->echoes, 1, memory_order_relaxed);
        return 0; /* two-way: the other direction's record */
    }
    for (int i = 0; r->cfg.conflicts != NULL && i < n; i++)
        two_way_note(r->cfg.conflicts, r->job, r->cfg.conflict_side, r->db, c->argv[r->keys[i]].p,
                     c->argv[r->keys[i]].len, c->end_offset);
    if (n > 0 && !r->cluster && command_reads_unnamed_keys(spec, c->argc, c->argv))
        n = 0; /* SORT BY/GET patterns read keys it does not name: alone (a cluster
                  refuses a pattern outside the key's slot itself) */
    if (n <= 0 && r->proxy)
        return proxy_keyless(r, c) == 0 ? 0 : RS_ERR;
    if (r->proxy && command_reads_unnamed_keys(spec, c->argc, c->argv))
        return cross_slot(r, c, n,
                          "it reads keys by a pattern (BY / GET), which the proxy's server of "
                          "its key may not hold")
                   ? RS_ERR
                   : 0;
    if (n <= 0) { /* global, keyless, or malformed for its spec: alone */
        if (r->cluster && !(flags & CMD_EVERY_NODE))
            return cross_slot(r, c, 0,
                              spec == NULL ? "an unknown command, whose keys (and so node) "
                                             "ringsync cannot tell"
                              : (flags & CMD_FENCE) ? "it moves keys between databases, and a "
                                                      "cluster has one"
                                                    : "a command without keys, whose node "
                                                      "ringsync cannot tell");
        if (!fence_ready(r))
            return 1;
        return fence(r, c->raw.p, c->raw.len, 1, db, db, r->cluster);
    }
    bool one = keys_together(r, c, n);
    unsigned to = lane_of(r, r->slots[0]);
    bool splits = (flags & CMD_SPLIT) || (r->cluster && (flags & CMD_SPLIT_AS_MSET));
    if (one && r->cluster && n > 1 && splits) {
        if (settle(r, n) != RS_OK) /* one key per command on a cluster: see write_split */
            return RS_ERR;
        return write_split(r, spec, c, n, db) == RS_OK ? 0 : RS_ERR;
    }
    if (one && applied_before(r, r->slots[0], c->end_offset))
        return 0; /* a resume: its checkpoint says it ran */
    if (one) {
        /* A plain SET k v joins the MSET being gathered: its argument bytes
         * as received. It keeps gathering across commands of other slots.
         * Not on a cluster, where an MSET of two keys meets TRYAGAIN while
         * its slot migrates (write_split). */
        if ((!r->cluster || r->proxy) && c->argc == 3 && spec->first == 1 && c->argv[0].len == 3 &&
            (c->argv[0].p[0] | 0x20) == 's' && (c->argv[0].p[1] | 0x20) == 'e' &&
            (c->argv[0].p[2] | 0x20) == 't') {
            const char *args = c->argv[0].p + c->argv[0].len + 2;
            size_t len = (size_t)(c->raw.p + c->raw.len - args);
            if (batch_writer_mset_raw(r->bw, to, db, args, len, r->slots[0]) != 0)
                return oom(r);
            return 0;
        }
        if (settle(r, n) != RS_OK)
            return RS_ERR;
        if (r->proxy)
            return proxy_write(r, to, db, c, n) == RS_OK ? 0 : RS_ERR;
        /* its one key (a cluster transaction holds one key's commands) */
        const struct rs_slice *key = n == 1 ? &c->argv[r->keys[0]] : NULL;
        if (r->cfg.cp != NULL && (r->cfg.mark_all || !command_is_absolute(spec, c->argc, c->argv) ||
                                  batch_writer_in_tx(r->bw, to, db, r->slots[0], key))) {
            /* it must not run twice: inside a checkpoint transaction */
            if (batch_writer_raw_cp(r->bw, to, db, r->slots[0], key, c->raw.p, c->raw.len) != 0)
                return oom(r);
            return 0;
        }
        return write_raw(r, to, db, c) == RS_OK ? 0 : RS_ERR;
    }
    if (settle(r, n) != RS_OK)
        return RS_ERR;
    if (splits)
        return write_split(r, spec, c, n, db) == RS_OK ? 0 : RS_ERR;
    /* a resume: a run with fewer workers may have applied it on one lane,
     * under that lane's record (which covers all its slots alike) */
    if (applied_before(r, r->slots[0], c->end_offset))
        return 0;
    if (r->cluster && r->cfg.carry != NULL && !command_reads_unnamed_keys(spec, c->argc, c->argv) &&
        (!r->proxy || cross_slot_can_carry_proxy(c->argc, c->argv, r->keys, n, r->cfg.proxy_tag))) {
        /* the same effects, run by cross_slot.c once everything before is
         * applied (invariant 3): a fence without a command of its own */
        if (!fence_ready(r))
            return 1;
        int x = cross_slot_carry(r->cfg.carry, c->argc, c->argv, r->keys, r->slots, n, r->routed,
                                 c->end_offset);
        if (x > 0 && r->cfg.cp != NULL && put_w(r) != RS_OK)
            return RS_ERR;
        if (x != 0)
            return x > 0 ? 0 : RS_ERR;
    }
    if (r->proxy)
        return cross_slot(r, c, n,
                          "the proxy may put its keys on different servers (it routes such a "
                          "command by its first key alone), and it has no form that splits them");
    if (r->cluster)
        return cross_slot(r, c, n, "its keys span hash slots and it has no per-slot form");
    if (!fence_ready(r))
        return 1;
    return fence(r, c->raw.p, c->raw.len, 1, db, db, false);
}

int router_resume(struct router *r)
{
    struct resp_cmd c;
    struct rs_error err;
    int rc;
    while (!router_is_blocked(r) && (rc = resp_scanner_next(r->sc, &c, &err)) == 1) {
        batch_writer_set_end(r->bw, c.end_offset);
        r->cur_end = c.end_offset;
        int x = route(r, &c);
        if (x < 0)
            return RS_ERR;
        if (r->fence == FENCE_DRAIN)
            return RS_OK; /* the command was put back; routed stays before it */
        r->commands++;
        if (!r->in_tx) {
            r->routed = c.end_offset;
            batch_writer_set_offset(r->bw, r->routed);
        }
        if (x == 1)
            return RS_OK;
    }
    if (!router_is_blocked(r) && rc == RS_ERR) {
        job_fail(r->job, "%s (offset %" PRIu64 ")", err.msg, err.offset);
        return RS_ERR;
    }
    return RS_OK;
}

int router_feed(struct router *r, const void *p, size_t n)
{
    if (resp_scanner_feed(r->sc, p, n) != 0)
        return oom(r);
    return router_resume(r);
}

bool router_is_blocked(struct router *r)
{
    if (r->fence == FENCE_NONE)
        return false;
    if (batch_writer_outstanding(r->bw) > 0 ||
        (r->job->redirect != NULL && !cluster_redirect_idle(r->job->redirect)))
        return true;       /* a command sent again elsewhere is not applied yet either */
    r->fence = FENCE_NONE; /* everything before (and the fence itself) is acknowledged */
    return false;
}

uint64_t router_routed(const struct router *r)
{
    return r->routed;
}

bool router_take_heartbeat(struct router *r, int64_t *ms, uint64_t *end)
{
    if (!r->hb_pending)
        return false;
    r->hb_pending = false;
    *ms = r->hb_ms;
    *end = r->hb_end;
    return true;
}

bool router_take_getack(struct router *r)
{
    bool g = r->getack;
    r->getack = false;
    return g;
}

uint64_t router_commands(const struct router *r)
{
    return r->commands;
}

uint64_t router_fences(const struct router *r)
{
    return r->fences;
}

uint64_t router_rewrites(const struct router *r)
{
    return r->rw.trims_rewritten + r->rw.expiries_shifted;
}

uint64_t router_resume_skipped(const struct router *r)
{
    return r->resume_skipped;
}

uint64_t router_w_written(const struct router *r)
{
    return r->w_written;
}
