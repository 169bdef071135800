/* cluster_redirect.c - commands a cluster node answered with MOVED or ASK,
 * sent again where their slot is, in order (see cluster_redirect.h and
 * src/CLUSTER_DESTINATION.md §3, whose steps the comments cite). */
#include "cluster_redirect.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "checkpoint.h"
#include "dest_link.h"
#include "job.h"
#include "log.h"
#include "rs_error.h"
#include "slot.h"

#define ACK_HISTORY CLUSTER_REDIRECT_MAX_BARRIERS /* acknowledgements kept per worker */

struct table_change {
    unsigned slot;
    int node;
};

/* An acknowledgement of generation g (step 3), kept at [g % ACK_HISTORY]. */
struct ack {
    uint64_t seq;    /* batches from this sequence number on were routed with the change */
    uint64_t handed; /* batches handed to the worker before it */
};

struct cluster_redirect {
    struct job *job;
    struct cluster_topology *topo;
    struct endpoint target;
    unsigned nworkers;
    int timeout_ms;
    pthread_mutex_t mu; /* the topology's masters and the mailbox */
    struct table_change *changes;
    size_t nchanges, changes_cap;
    _Atomic uint64_t requests; /* bumped with every change asked (the producer's cheap test) */
    uint64_t seen;             /* the producer's: requests it has acknowledged */
    /* per worker */
    _Atomic uint64_t *req_gen; /* the generation worker w asked for last */
    _Atomic uint64_t *ack_gen; /* the highest the producer acknowledged for it */
    struct ack *acks;          /* nworkers * ACK_HISTORY */
    _Atomic uint64_t *floor;   /* cluster_redirect_floor's, per worker */
    _Atomic uint64_t *pending; /* redirected commands not yet applied, per worker */
    _Atomic uint64_t moved, asked, resent;
    const struct checkpoint *cp; /* checkpoint transactions' records (or NULL) */
};

/* One command to send again. */
struct entry {
    char *bytes;
    size_t len;
    uint32_t ncmds; /* 1, or a transaction's MULTI ... EXEC */
    unsigned node;
    bool asking;
    struct batch_span span;
};

struct barrier {
    uint64_t gen;
    bool is_acked;
    struct ack ack;
};

struct cluster_redirect_worker {
    struct cluster_redirect *h;
    unsigned id;
    struct dest_link *(*link_of)(void *ctx, unsigned node);
    void *ctx;
    uint64_t received;
    uint64_t hold;  /* the links' hold: the oldest acknowledged barrier's seq */
    uint16_t *want; /* per slot: the owner (index + 1) last asked for, or known */
    struct barrier *bars;
    size_t nbars;
    struct entry *q;
    size_t nq, qcap;
    struct batch *inflight; /* redirect batches sent, linked by track_next */
    uint64_t inflight_cmds;
    int said_node; /* the node named in the last log line of a move (-1: none yet) */
    bool said_ask;
};

/* ------------------------------------------------------------------- hub */

struct cluster_redirect *cluster_redirect_new(struct job *job, struct cluster_topology *topo,
                                              const struct endpoint *target, unsigned nworkers,
                                              int timeout_ms)
{
    struct cluster_redirect *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->job = job;
    h->topo = topo;
    h->target = *target;
    h->nworkers = nworkers;
    h->timeout_ms = timeout_ms;
    pthread_mutex_init(&h->mu, NULL);
    h->req_gen = calloc(nworkers, sizeof(*h->req_gen));
    h->ack_gen = calloc(nworkers, sizeof(*h->ack_gen));
    h->acks = calloc((size_t)nworkers * ACK_HISTORY, sizeof(*h->acks));
    h->floor = calloc(nworkers, sizeof(*h->floor));
    h->pending = calloc(nworkers, sizeof(*h->pending));
    if (h->req_gen == NULL || h->ack_gen == NULL || h->acks == NULL || h->floor == NULL ||
        h->pending == NULL) {
        cluster_redirect_free(h);
        return NULL;
    }
    for (unsigned w = 0; w < nworkers; w++)
        atomic_init(&h->floor[w], UINT64_MAX);
    return h;
}

void cluster_redirect_set_checkpoint(struct cluster_redirect *h, const struct checkpoint *cp)
{
    h->cp = cp;
}

void cluster_redirect_free(struct cluster_redirect *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h->changes);
    free(h->req_gen);
    free(h->ack_gen);
    free(h->acks);
    free(h->floor);
    free(h->pending);
    free(h);
}

void cluster_redirect_poll(struct cluster_redirect *h, struct batch_writer *bw)
{
    /* acquire: pairs with the release of the request, so its change is seen */
    if (atomic_load_explicit(&h->requests, memory_order_acquire) == h->seen)
        return;
    uint64_t gens[JOB_MAX_WORKERS];
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->nchanges; i++)
        cluster_topology_set_owner(h->topo, h->changes[i].slot, h->changes[i].node);
    h->nchanges = 0;
    h->seen = atomic_load_explicit(&h->requests, memory_order_relaxed);
    for (unsigned w = 0; w < h->nworkers; w++)
        gens[w] = atomic_load_explicit(&h->req_gen[w], memory_order_relaxed);
    pthread_mutex_unlock(&h->mu);
    /* Step 3: nothing routed with the old table stays open; what comes next
     * has seq >= the next sequence number. */
    batch_writer_publish(bw);
    uint64_t seq = batch_writer_next_seq(bw);
    for (unsigned w = 0; w < h->nworkers; w++) {
        uint64_t from = atomic_load_explicit(&h->ack_gen[w], memory_order_relaxed);
        if (gens[w] == from)
            continue;
        struct ack a = {seq, batch_writer_handed(bw, w)};
        for (uint64_t g = from + 1; g <= gens[w]; g++)
            h->acks[(size_t)w * ACK_HISTORY + g % ACK_HISTORY] = a;
        /* release: the worker that loads it (acquire) reads the acks whole */
        atomic_store_explicit(&h->ack_gen[w], gens[w], memory_order_release);
    }
}

bool cluster_redirect_idle(const struct cluster_redirect *h)
{
    for (unsigned w = 0; w < h->nworkers; w++)
        if (atomic_load_explicit(&h->pending[w], memory_order_acquire) != 0)
            return false;
    return true;
}

uint64_t cluster_redirect_floor(const struct cluster_redirect *h)
{
    uint64_t f = UINT64_MAX;
    for (unsigned w = 0; w < h->nworkers; w++) {
        uint64_t x = atomic_load_explicit(&h->floor[w], memory_order_acquire);
        if (x < f)
            f = x;
    }
    return f;
}

void cluster_redirect_stats(const struct cluster_redirect *h, uint64_t *moved, uint64_t *asked,
                            uint64_t *resent)
{
    *moved = atomic_load(&h->moved);
    *asked = atomic_load(&h->asked);
    *resent = atomic_load(&h->resent);
}

int cluster_redirect_timeout_ms(const struct cluster_redirect *h)
{
    return h->timeout_ms;
}

int cluster_redirect_owner(const struct cluster_redirect *h, unsigned slot)
{
    return cluster_topology_owner(h->topo, slot);
}

int cluster_redirect_node_at(struct cluster_redirect *h, unsigned slot, const char *addr,
                             size_t addr_len, struct rs_error *err)
{
    pthread_mutex_lock(&h->mu);
    int mi = cluster_topology_master_at(h->topo, slot, addr, addr_len, err);
    pthread_mutex_unlock(&h->mu);
    return mi;
}

int cluster_redirect_apply_moved(struct cluster_redirect *h, unsigned slot, const char *addr,
                                 size_t addr_len, struct rs_error *err)
{
    pthread_mutex_lock(&h->mu);
    int mi = cluster_topology_apply_moved(h->topo, slot, addr, addr_len, err);
    pthread_mutex_unlock(&h->mu);
    return mi;
}

void cluster_redirect_endpoint(struct cluster_redirect *h, unsigned node, struct endpoint *ep)
{
    *ep = h->target;
    pthread_mutex_lock(&h->mu);
    const struct cluster_node *n = &h->topo->masters[node].node;
    snprintf(ep->host, sizeof(ep->host), "%s", n->host);
    ep->port = n->port;
    snprintf(ep->name, sizeof(ep->name), "%s", n->name);
    pthread_mutex_unlock(&h->mu);
}

/* ---------------------------------------------------------------- worker */

struct cluster_redirect_worker *
cluster_redirect_worker_new(struct cluster_redirect *h, unsigned id,
                            struct dest_link *(*link_of)(void *ctx, unsigned node), void *ctx)
{
    struct cluster_redirect_worker *rw = calloc(1, sizeof(*rw));
    if (rw == NULL)
        return NULL;
    rw->h = h;
    rw->id = id;
    rw->link_of = link_of;
    rw->ctx = ctx;
    rw->hold = UINT64_MAX;
    rw->said_node = -1;
    rw->want = malloc(SLOT_COUNT * sizeof(*rw->want));
    rw->bars = calloc(CLUSTER_REDIRECT_MAX_BARRIERS, sizeof(*rw->bars));
    if (rw->want == NULL || rw->bars == NULL) {
        cluster_redirect_worker_free(rw);
        return NULL;
    }
    pthread_mutex_lock(&h->mu);
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        rw->want[s] = __atomic_load_n(&h->topo->slot_owner[s], __ATOMIC_RELAXED);
    pthread_mutex_unlock(&h->mu);
    return rw;
}

void cluster_redirect_worker_free(struct cluster_redirect_worker *rw)
{
    if (rw == NULL)
        return;
    for (size_t i = 0; i < rw->nq; i++)
        free(rw->q[i].bytes);
    free(rw->q);
    /* redirect batches still out are in their links' queues: freed with them */
    free(rw->want);
    free(rw->bars);
    free(rw);
}

const uint64_t *cluster_redirect_worker_hold(const struct cluster_redirect_worker *rw)
{
    return &rw->hold;
}

void cluster_redirect_worker_received(struct cluster_redirect_worker *rw)
{
    rw->received++;
}

bool cluster_redirect_worker_idle(const struct cluster_redirect_worker *rw)
{
    return rw->nq == 0 && rw->inflight == NULL && rw->nbars == 0;
}

/* The floor and pending count of this worker, published (invariant 3):
 * called before the batch a redirected command came from goes home. */
static void publish_floor(struct cluster_redirect_worker *rw)
{
    uint64_t f = UINT64_MAX;
    for (size_t i = 0; i < rw->nq; i++)
        if (rw->q[i].span.from < f)
            f = rw->q[i].span.from;
    for (const struct batch *b = rw->inflight; b != NULL; b = b->track_next)
        if (b->off_before < f)
            f = b->off_before;
    struct cluster_redirect *h = rw->h;
    /* release: whoever sees the batch home (through the back ring) or reads
     * the floor afterwards sees these */
    atomic_store_explicit(&h->pending[rw->id], rw->nq + rw->inflight_cmds, memory_order_release);
    atomic_store_explicit(&h->floor[rw->id], f, memory_order_release);
}

/* Takes the producer's acknowledgements of our barriers (step 3), and sets
 * the hold from the oldest. */
static void take_acks(struct cluster_redirect_worker *rw)
{
    struct cluster_redirect *h = rw->h;
    uint64_t acked = atomic_load_explicit(&h->ack_gen[rw->id], memory_order_acquire);
    for (size_t i = 0; i < rw->nbars; i++) {
        struct barrier *b = &rw->bars[i];
        if (b->is_acked || b->gen > acked)
            continue;
        b->ack = h->acks[(size_t)rw->id * ACK_HISTORY + b->gen % ACK_HISTORY];
        b->is_acked = true;
    }
    rw->hold = rw->nbars > 0 && rw->bars[0].is_acked ? rw->bars[0].ack.seq : UINT64_MAX;
}

/* Parses "MOVED 866 127.0.0.1:7001" / "ASK ...": slot and address. */
static int parse_reply(const char *line, size_t len, bool *is_ask, unsigned *slot,
                       const char **addr, size_t *addr_len)
{
    size_t word = *line == 'A' ? 3 : 5;
    *is_ask = *line == 'A';
    if (len <= word + 1 || line[word] != ' ')
        return -1;
    const char *p = line + word + 1, *end = line + len;
    unsigned s = 0;
    if (p == end || *p < '0' || *p > '9')
        return -1;
    while (p < end && *p >= '0' && *p <= '9') {
        s = s * 10 + (unsigned)(*p++ - '0');
        if (s >= SLOT_COUNT)
            return -1;
    }
    if (p == end || *p != ' ' || p + 1 == end)
        return -1;
    *slot = s;
    *addr = p + 1;
    *addr_len = (size_t)(end - p - 1);
    return 0;
}

int cluster_redirect_worker_on_reply(struct cluster_redirect_worker *rw, struct dest_link *dl,
                                     const char *cmd, size_t cmd_len, uint32_t ncmds,
                                     const struct batch_span *span, const char *line, size_t len)
{
    struct cluster_redirect *h = rw->h;
    bool is_ask;
    unsigned slot;
    const char *addr;
    size_t addr_len;
    char q[200];
    if (parse_reply(line, len, &is_ask, &slot, &addr, &addr_len) < 0) {
        job_fail(h->job, "destination %s sent a redirection ringsync cannot read: -%s", dl->name,
                 rs_escape_bytes(q, sizeof(q), line, len, 160));
        return 1;
    }
    struct rs_error err = {0};
    int node = cluster_redirect_node_at(h, slot, addr, addr_len, &err);
    if (node < 0) {
        job_fail(h->job, "destination %s: %s", dl->name, err.msg);
        return 1;
    }
    if (rw->nq == rw->qcap) {
        size_t cap = rw->qcap ? rw->qcap * 2 : 64;
        struct entry *e = realloc(rw->q, cap * sizeof(*e));
        if (e == NULL)
            goto oom;
        rw->q = e;
        rw->qcap = cap;
    }
    struct entry *e = &rw->q[rw->nq];
    size_t room = cmd_len + (h->cp != NULL ? checkpoint_end_size(h->cp) : 0);
    if ((e->bytes = malloc(room)) == NULL)
        goto oom;
    /* a checkpoint transaction sent with ASKING writes the record the
     * importing node may write (checkpoint_ask_form) */
    ssize_t asked_len = -1;
    if (is_ask && ncmds > 1 && h->cp != NULL)
        asked_len = checkpoint_ask_form(h->cp, cmd, cmd_len, (unsigned)node, slot, e->bytes, room);
    if (asked_len < 0)
        memcpy(e->bytes, cmd, cmd_len);
    e->len = asked_len < 0 ? cmd_len : (size_t)asked_len;
    e->ncmds = ncmds;
    e->node = (unsigned)node;
    e->asking = is_ask;
    e->span = *span;
    rw->nq++;
    atomic_fetch_add_explicit(is_ask ? &h->asked : &h->moved, 1, memory_order_relaxed);
    if (is_ask && !rw->said_ask) {
        rw->said_ask = true;
        rs_log("destination %s answered ASK: slot %u is migrating to %.*s; sending "
               "the keys already there with ASKING, in order",
               dl->name, slot, (int)addr_len, addr);
    }
    if (!is_ask && rw->want[slot] != node + 1) {
        /* Step 2: a new owner: ask the producer, as a new barrier. */
        take_acks(rw);
        if (rw->nbars == CLUSTER_REDIRECT_MAX_BARRIERS) {
            job_fail(h->job,
                     "destination %s: more than %d hash slots moved at once while ringsync "
                     "waited for the earlier moves",
                     dl->name, CLUSTER_REDIRECT_MAX_BARRIERS);
            return 1;
        }
        if (rw->said_node != node) /* once per new owner in a row, not once per slot */
            rs_log("destination %s answered MOVED: slot %u is served by %.*s now; "
                   "following it (its commands go there, the refused ones again, in order)",
                   dl->name, slot, (int)addr_len, addr);
        rw->said_node = node;
        rw->want[slot] = (uint16_t)(node + 1);
        pthread_mutex_lock(&h->mu);
        if (h->nchanges == h->changes_cap) {
            size_t cap = h->changes_cap ? h->changes_cap * 2 : 64;
            struct table_change *c = realloc(h->changes, cap * sizeof(*c));
            if (c == NULL) {
                pthread_mutex_unlock(&h->mu);
                goto oom;
            }
            h->changes = c;
            h->changes_cap = cap;
        }
        h->changes[h->nchanges++] = (struct table_change){slot, node};
        uint64_t gen = atomic_load_explicit(&h->req_gen[rw->id], memory_order_relaxed) + 1;
        atomic_store_explicit(&h->req_gen[rw->id], gen, memory_order_relaxed);
        /* release: the producer that sees the count sees the change */
        atomic_fetch_add_explicit(&h->requests, 1, memory_order_release);
        pthread_mutex_unlock(&h->mu);
        rw->bars[rw->nbars++] = (struct barrier){.gen = gen};
    }
    publish_floor(rw);
    return 0;
oom:
    job_fail(h->job, "out of memory while keeping commands to send again to another node");
    return 1;
}

/* Step 5: every batch handed to us before the oldest barrier's
 * acknowledgement is here and has its replies, and no redirect batch is
 * still out (one in flight could come back MOVED again, and its commands
 * must stay ahead of what the queue holds now). */
static bool oldest_complete(const struct cluster_redirect_worker *rw, struct dest_link *links,
                            unsigned nlinks)
{
    const struct barrier *b = &rw->bars[0];
    if (!b->is_acked || rw->received < b->ack.handed || rw->inflight != NULL)
        return false;
    for (unsigned i = 0; i < nlinks; i++) {
        const struct batch *head = links[i].head;
        if (head != NULL && head->seq < b->ack.seq)
            return false;
    }
    return true;
}

/* The queue as one redirect batch per target node, each ahead of the
 * node link's held batches (steps 5 and 6). */
static int flush(struct cluster_redirect_worker *rw)
{
    struct cluster_redirect *h = rw->h;
    while (rw->nq > 0) {
        unsigned node = rw->q[0].node;
        size_t bytes = 0;
        uint32_t ncmds = 0;
        for (size_t i = 0; i < rw->nq; i++)
            if (rw->q[i].node == node) {
                bytes += rw->q[i].len + (rw->q[i].asking ? 16 : 0);
                ncmds += rw->q[i].ncmds + (rw->q[i].asking ? 1 : 0);
            }
        struct dest_link *dl = rw->link_of(rw->ctx, node);
        if (dl == NULL)
            return -1; /* the job failed */
        struct batch *b = calloc(1, sizeof(*b));
        if (b != NULL && ((b->buf = malloc(bytes)) == NULL ||
                          (b->spans = malloc(ncmds * sizeof(*b->spans))) == NULL)) {
            free(b->buf);
            free(b);
            b = NULL;
        }
        if (b == NULL) {
            job_fail(h->job, "out of memory while sending commands again to another node");
            return -1;
        }
        b->cap = bytes;
        b->owner = CLUSTER_REDIRECT_OWNER;
        b->dest = (uint16_t)rw->id;
        b->node = (uint16_t)node;
        b->has_spans = true;
        b->spans_cap = ncmds;
        b->off_before = UINT64_MAX;
        size_t w = 0;
        for (size_t i = 0; i < rw->nq; i++) {
            struct entry *e = &rw->q[i];
            if (e->node != node) {
                rw->q[w++] = *e;
                continue;
            }
            if (e->asking) {
                memcpy(b->buf + b->len, "*1\r\n$6\r\nASKING\r\n", 16);
                b->len += 16;
                b->spans[b->ncmds++] = e->span;
            }
            memcpy(b->buf + b->len, e->bytes, e->len);
            b->len += e->len;
            for (uint32_t k = 0; k < e->ncmds; k++)
                b->spans[b->ncmds++] = e->span;
            if (e->span.from < b->off_before)
                b->off_before = e->span.from;
            if (e->span.to > b->off_last)
                b->off_last = e->span.to;
            free(e->bytes);
        }
        rw->nq = w;
        b->track_next = rw->inflight;
        rw->inflight = b;
        rw->inflight_cmds += ncmds;
        atomic_fetch_add_explicit(&h->resent, ncmds, memory_order_relaxed);
        dest_link_insert_before_held(dl, b);
    }
    return 0;
}

void cluster_redirect_worker_tick(struct cluster_redirect_worker *rw, struct dest_link *links,
                                  unsigned nlinks)
{
    if (rw->nbars == 0 && rw->nq == 0)
        return;
    take_acks(rw);
    bool sent = false;
    while (rw->nbars > 0 && oldest_complete(rw, links, nlinks)) {
        if (flush(rw) < 0)
            return;
        sent = true;
        memmove(rw->bars, rw->bars + 1, (rw->nbars - 1) * sizeof(*rw->bars));
        rw->nbars--;
        take_acks(rw); /* the hold moves to the next barrier, or ends */
    }
    if (rw->nbars == 0 && rw->nq > 0 && rw->inflight == NULL) { /* ASKs: no table change */
        if (flush(rw) < 0)
            return;
        sent = true;
    }
    if (sent)
        publish_floor(rw);
}

void cluster_redirect_worker_done(struct cluster_redirect_worker *rw, struct batch *b)
{
    struct batch **pp = &rw->inflight;
    while (*pp != b) {
        RS_ASSERT(*pp != NULL);
        pp = &(*pp)->track_next;
    }
    *pp = b->track_next;
    rw->inflight_cmds -= b->ncmds;
    publish_floor(rw);
    batch_free(b);
}
