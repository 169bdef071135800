/* router.c - the replication stream to workers (see router.h). */
#include "router.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch.h"
#include "command_table.h"
#include "job.h"
#include "resp_scanner.h"
#include "slot.h"
#include "stream_rewrite.h"

enum fence_state {
    FENCE_NONE,
    FENCE_DRAIN, /* waiting for every worker before the fence command */
    FENCE_AFTER, /* the fence command was written: waiting for its reply */
};

struct router {
    struct router_config cfg;
    struct batch_writer *bw;
    struct job *job;
    struct resp_scanner *sc;
    struct stream_rewrite rw; /* master-only forms, shifted expiries */
    int64_t db;
    uint64_t routed;
    int fence;
    bool getack;
    uint64_t commands, fences;
    /* a transaction being gathered */
    bool in_tx;
    char *tx;
    size_t tx_len, tx_cap;
    uint32_t tx_cmds;
    int64_t tx_db;       /* the db at MULTI */
    uint64_t tx_workers; /* bit per worker its keys map to */
    bool tx_fence;
    /* key positions and split commands */
    int *keys;
    unsigned *slots; /* the hash slot of each of keys[] */
    size_t keys_cap;
    char *split;
    size_t split_cap;
};

struct router *router_new(const struct router_config *cfg, struct batch_writer *bw, struct job *job,
                          uint64_t start_offset)
{
    struct router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    if (r->cfg.nworkers == 0)
        r->cfg.nworkers = 1;
    r->bw = bw;
    r->job = job;
    r->routed = start_offset;
    stream_rewrite_init(&r->rw, cfg->expiry_margin_ms);
    r->sc = resp_scanner_new(start_offset);
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
    stream_rewrite_deinit(&r->rw);
    free(r->tx);
    free(r->keys);
    free(r->slots);
    free(r->split);
    free(r);
}

static int oom(struct router *r)
{
    job_fail(r->job, "out of memory while routing the replication stream");
    return RS_ERR;
}

static unsigned worker_of(const struct router *r, struct rs_slice key)
{
    return r->cfg.nworkers > 1 ? slot_of_key(key.p, key.len) % r->cfg.nworkers : 0;
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
        if (k == NULL || sl == NULL)
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
        unsigned to = r->slots[i] % r->cfg.nworkers;
        if (batch_writer_staged(r->bw, to, r->slots[i]) && batch_writer_flush_stage(r->bw, to) != 0)
            return oom(r);
    }
    return RS_OK;
}

static int write_raw(struct router *r, unsigned to, const struct resp_cmd *c)
{
    if (batch_writer_raw(r->bw, to, r->db, c->raw.p, c->raw.len, 1, r->db) != 0)
        return oom(r);
    return RS_OK;
}

/* Re-encodes the keys (and values, with step 2) of a splittable command that
 * go to worker `to`, as a command of its own. */
static int write_split(struct router *r, const struct resp_cmd *c, int nkeys, int step, unsigned to)
{
    struct rs_slice argv[1 + 2 * 256];
    int argc = 1;
    argv[0] = c->argv[0];
    for (int i = 0; i < nkeys; i++) {
        int k = r->keys[i];
        if (r->slots[i] % r->cfg.nworkers != to)
            continue;
        argv[argc++] = c->argv[k];
        if (step == 2)
            argv[argc++] = c->argv[k + 1];
        if (argc + 2 > (int)(sizeof(argv) / sizeof(argv[0]))) {
            if (batch_writer_cmd(r->bw, to, r->db, argc, argv) != 0)
                return oom(r);
            argc = 1;
        }
    }
    if (argc > 1 && batch_writer_cmd(r->bw, to, r->db, argc, argv) != 0)
        return oom(r);
    return RS_OK;
}

/* A command (or transaction) that must run alone (invariant 3). Returns 1
 * when routing must pause: either everything before it must be acknowledged
 * first (the command is put back, to come again), or it was written and its
 * own reply must come before anything after it. */
static int fence(struct router *r, const void *raw, size_t len, uint32_t ncmds, int64_t db,
                 int64_t db_after)
{
    if (r->cfg.nworkers == 1) { /* one connection: order is already total */
        if (batch_writer_flush_stage(r->bw, 0) != 0 ||
            batch_writer_raw(r->bw, 0, db, raw, len, ncmds, db_after) != 0)
            return oom(r);
        return 0;
    }
    if (batch_writer_raw(r->bw, 0, db, raw, len, ncmds, db_after) != 0)
        return oom(r);
    r->fence = FENCE_AFTER;
    r->fences++;
    return 1;
}

/* True when a fence may run now; else puts the command back and waits. */
static bool fence_ready(struct router *r)
{
    if (r->cfg.nworkers == 1)
        return true;
    batch_writer_publish(r->bw); /* gathered MSETs too: all of it precedes the fence */
    if (batch_writer_outstanding(r->bw) == 0)
        return true;
    resp_scanner_unread(r->sc);
    r->fence = FENCE_DRAIN;
    return false;
}

static int append_tx(struct router *r, const struct resp_cmd *c)
{
    if (r->tx_len + c->raw.len > r->tx_cap) {
        size_t cap = r->tx_cap ? r->tx_cap : 16 * 1024;
        while (cap < r->tx_len + c->raw.len)
            cap *= 2;
        char *t = realloc(r->tx, cap);
        if (t == NULL)
            return oom(r);
        r->tx = t;
        r->tx_cap = cap;
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
    if (append_tx(r, c) != RS_OK)
        return RS_ERR;
    if (spec != NULL && (spec->flags & CMD_SELECT)) {
        int64_t db = c->argc == 2 ? parse_db(&c->argv[1]) : -1;
        if (db < 0) {
            job_fail(r->job, "the replication stream has a bad SELECT at offset %" PRIu64,
                     c->end_offset);
            return RS_ERR;
        }
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
    for (int i = 0; i < n; i++)
        r->tx_workers |= 1ULL << worker_of(r, c->argv[r->keys[i]]);
    return RS_OK;
}

/* Routes one command; 1 when routing must pause (a fence). */
static int route(struct router *r, const struct resp_cmd *c)
{
    const struct command_spec *spec = command_lookup(c->argv[0].p, c->argv[0].len);
    unsigned flags = spec ? spec->flags : CMD_FENCE;
    struct resp_cmd rewritten;
    if (spec != NULL && command_rewrite_of(spec) != CMD_RW_NONE) {
        int x = stream_rewrite_cmd(&r->rw, spec, c, &rewritten);
        if (x < 0)
            return oom(r);
        if (x == 1)
            c = &rewritten; /* the same effect in a form a client may send */
    }
    if (r->in_tx) {
        if (flags & CMD_EXEC) {
            int nw = __builtin_popcountll(r->tx_workers);
            bool alone = r->tx_fence || nw > 1;
            if (alone && !fence_ready(r))
                return 1; /* EXEC comes again once the workers drained */
            if (append_tx(r, c) != RS_OK)
                return RS_ERR;
            r->in_tx = false;
            if (alone)
                return fence(r, r->tx, r->tx_len, r->tx_cmds, r->tx_db, r->db);
            unsigned to = nw == 1 ? (unsigned)__builtin_ctzll(r->tx_workers) : 0;
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
        r->db = db;
        return 0;
    }
    if (flags & CMD_PUBLISH) {
        if (!r->cfg.forward_publish)
            return 0;
        if (batch_writer_flush_stage(r->bw, 0) != 0) /* after the writes before it */
            return oom(r);
        return write_raw(r, 0, c) == RS_OK ? 0 : RS_ERR;
    }
    if (flags & CMD_MULTI) {
        r->in_tx = true;
        r->tx_len = 0;
        r->tx_cmds = 0;
        r->tx_db = r->db;
        r->tx_workers = 0;
        r->tx_fence = false;
        return append_tx(r, c) == RS_OK ? 0 : RS_ERR;
    }
    int n = flags & CMD_FENCE ? 0 : find_keys(r, spec, c);
    if (n > 0 && command_reads_unnamed_keys(spec, c->argc, c->argv))
        n = 0;    /* SORT BY/GET patterns read keys it does not name: alone */
    if (n <= 0) { /* global, keyless, or malformed for its spec: alone */
        if (!fence_ready(r))
            return 1;
        return fence(r, c->raw.p, c->raw.len, 1, r->db, r->db);
    }
    unsigned to = r->slots[0] % r->cfg.nworkers;
    bool one = true;
    for (int i = 1; i < n && one; i++)
        one = r->slots[i] % r->cfg.nworkers == to;
    if (one) {
        /* A plain SET k v joins the MSET being gathered: its argument bytes
         * as received. It keeps gathering across commands of other slots. */
        if (c->argc == 3 && spec->first == 1 && c->argv[0].len == 3 &&
            (c->argv[0].p[0] | 0x20) == 's' && (c->argv[0].p[1] | 0x20) == 'e' &&
            (c->argv[0].p[2] | 0x20) == 't') {
            const char *args = c->argv[0].p + c->argv[0].len + 2;
            size_t len = (size_t)(c->raw.p + c->raw.len - args);
            if (batch_writer_mset_raw(r->bw, to, r->db, args, len, r->slots[0]) != 0)
                return oom(r);
            return 0;
        }
        if (settle(r, n) != RS_OK)
            return RS_ERR;
        return write_raw(r, to, c) == RS_OK ? 0 : RS_ERR;
    }
    if (settle(r, n) != RS_OK)
        return RS_ERR;
    if (flags & CMD_SPLIT) {
        int step = spec->step;
        for (unsigned w = 0; w < r->cfg.nworkers; w++)
            if (write_split(r, c, n, step, w) != RS_OK)
                return RS_ERR;
        return 0;
    }
    if (!fence_ready(r))
        return 1;
    return fence(r, c->raw.p, c->raw.len, 1, r->db, r->db);
}

int router_resume(struct router *r)
{
    struct resp_cmd c;
    struct rs_error err;
    int rc;
    while (!router_is_blocked(r) && (rc = resp_scanner_next(r->sc, &c, &err)) == 1) {
        batch_writer_set_end(r->bw, c.end_offset);
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
    if (batch_writer_outstanding(r->bw) > 0)
        return true;
    r->fence = FENCE_NONE; /* everything before (and the fence itself) is acknowledged */
    return false;
}

uint64_t router_routed(const struct router *r)
{
    return r->routed;
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
