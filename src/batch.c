/* batch.c - RESP batches and the producer-side batch writer. */
#include "batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "command_table.h"
#include "job.h"
#include "proxy_commands.h"
#include "rs_error.h"
#include "slot.h"

struct mset_stage {
    char *buf;
    size_t len, cap;
    unsigned nkeys;
    int64_t db;
    unsigned slot;       /* single-slot mode: the slot of every key */
    uint64_t off_before; /* the offset before its first key */
    uint64_t off_last;   /* the offset at the end of its last key */
    /* the slots of its keys (stream SETs), so that a later command of one of
     * them makes it go out first */
    uint16_t slots[BATCH_MSET_KEYS];
    unsigned nslots;
    uint64_t *slot_bits; /* SLOT_COUNT bits, made at the first stream SET (2 KiB a lane) */
};

/* What the writer keeps per lane (one destination connection). */
struct lane {
    struct batch *open;
    int64_t db; /* the connection's db after what was written so far */
    struct mset_stage stage;
    struct batch *track_head; /* outstanding batches of the lane, oldest first */
    struct batch *track_tail;
    /* the checkpoint transaction open in `open` (CHECKPOINTS.md) */
    bool tx_open;
    int64_t tx_db;
    unsigned tx_slot; /* a cluster: the slot of all its commands */
    /* a cluster: the one key of all its commands (two keys of a slot being
     * migrated may sit on two nodes: TRYAGAIN); tx_key_len 0: no other joins */
    char tx_key[BATCH_TX_KEY_MAX];
    size_t tx_key_len;
    uint64_t tx_from, tx_to; /* the source offsets it covers */
};

struct batch_writer {
    struct job *job;
    unsigned self;
    unsigned nworkers;
    unsigned nlanes;
    unsigned max_outstanding;
    unsigned outstanding;
    bool single_slot; /* a gathered MSET holds keys of one slot (a cluster destination) */
    struct batch *free_list;
    struct lane *lanes;
    /* per consumer worker: its ring to[self][w] */
    bool pushed[JOB_MAX_WORKERS];
    uint64_t handed[JOB_MAX_WORKERS];             /* batches handed to each worker so far */
    struct batch *overflow_head[JOB_MAX_WORKERS]; /* ring full: waiting to be pushed */
    struct batch *overflow_tail[JOB_MAX_WORKERS];
    bool stream_mode; /* see batch_writer_stream_mode */
    bool mark_all;    /* see batch_writer_mark_all */
    uint64_t cur_off; /* the offset before the next command written */
    uint64_t cur_end; /* the offset at the end of the next command written */
    uint64_t next_seq;
    void (*self_sink)(void *ctx, struct batch *b);
    void *self_ctx;
    void (*wake)(void *ctx, unsigned to);
    void *wake_ctx;
    const struct checkpoint *cp; /* checkpoints on (batch_writer_set_checkpoints), or NULL */
    size_t cp_end;               /* the bytes a transaction's end takes */
    uint64_t data_end;           /* batch_writer_data_end */
    bool proxy;                  /* batch_writer_set_proxy */
    bool proxy_eval;
    const char *proxy_name;
    struct rs_slice *wrapped; /* room for a wrapped command's arguments */
    size_t wrapped_cap;
};

static int tx_put(struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                  const struct rs_slice *key, const char *head, size_t hn, const void *p,
                  size_t n0);
static int mset_flush(struct batch_writer *bw, unsigned to);
static int tx_open(struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                   const struct rs_slice *key, size_t need);
static int stage_emit(struct batch_writer *bw, struct batch *b, struct mset_stage *s);
static size_t stage_bytes(const struct mset_stage *s, unsigned more, size_t n);

/* ------------------------------------------------------------------- RESP */

static size_t digits(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t resp_arg_size(size_t len)
{
    return 1 + digits(len) + 2 + len + 2;
}

size_t resp_argv_size(int argc, const struct rs_slice *argv)
{
    size_t n = 1 + digits((uint64_t)argc) + 2;
    for (int i = 0; i < argc; i++)
        n += resp_arg_size(argv[i].len);
    return n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_head(char *p, char c, uint64_t n)
{
    *p++ = c;
    p = put_u64(p, n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static char *put_bulk(char *p, const void *s, size_t n)
{
    p = put_head(p, '$', n);
    memcpy(p, s, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

char *resp_put_argv(char *p, int argc, const struct rs_slice *argv)
{
    p = put_head(p, '*', (uint64_t)argc);
    for (int i = 0; i < argc; i++)
        p = put_bulk(p, argv[i].p, argv[i].len);
    return p;
}

void batch_put_argv(struct batch *b, int argc, const struct rs_slice *argv)
{
    char *p = resp_put_argv(b->buf + b->len, argc, argv);
    b->len = (size_t)(p - b->buf);
    b->ncmds++;
}

/* ------------------------------------------------------------------- pool */

void batch_free(struct batch *b)
{
    free(b->buf);
    free(b->spans);
    free(b);
}

void batch_free_in_rings(struct job *job)
{
    size_t n = (size_t)job->nworkers * job->nworkers;
    for (size_t i = 0; i < n; i++) {
        struct batch *b;
        /* the rings' threads are gone: publish what was pushed, then pop it all */
        spsc_ring_publish(&job->to[i]);
        spsc_ring_publish(&job->back[i]);
        while ((b = spsc_ring_pop(&job->to[i])) != NULL)
            batch_free(b);
        while ((b = spsc_ring_pop(&job->back[i])) != NULL)
            batch_free(b);
    }
}

static struct batch *batch_get(struct batch_writer *bw, size_t need)
{
    struct batch *b;
    if (need <= BATCH_BYTES && bw->free_list != NULL) {
        b = bw->free_list;
        bw->free_list = b->next;
    } else {
        size_t cap = need <= BATCH_BYTES ? BATCH_BYTES : need;
        b = malloc(sizeof(*b));
        if (b == NULL)
            return NULL;
        b->buf = malloc(cap);
        if (b->buf == NULL) {
            free(b);
            return NULL;
        }
        b->cap = cap;
        b->spans = NULL;
        b->spans_cap = 0;
    }
    b->len = 0;
    b->ncmds = 0;
    b->has_spans = bw->stream_mode;
    b->replies = 0;
    b->sent = 0;
    b->next = NULL;
    b->owner = (uint16_t)bw->self;
    bw->outstanding++;
    return b;
}

static void untrack(struct batch_writer *bw, struct batch *b)
{
    struct lane *l = &bw->lanes[b->lane];
    /* a connection replies in order, so what comes back is its oldest batch */
    RS_ASSERT(l->track_head == b);
    l->track_head = b->track_next;
    if (l->track_head == NULL)
        l->track_tail = NULL;
}

/* Drops an empty open batch (the newest) from the track list. */
static void untrack_open(struct lane *l, struct batch *b)
{
    struct batch **pp = &l->track_head;
    struct batch *prev = NULL;
    while (*pp != b) {
        prev = *pp;
        pp = &(*pp)->track_next;
    }
    *pp = b->track_next;
    if (l->track_tail == b)
        l->track_tail = prev;
}

static void batch_put_back(struct batch_writer *bw, struct batch *b)
{
    RS_ASSERT(b->owner == bw->self && bw->outstanding > 0);
    bw->outstanding--;
    if (b->cap > BATCH_BYTES) { /* a one-off batch for a big command */
        batch_free(b);
        return;
    }
    b->next = bw->free_list;
    bw->free_list = b;
}

/* Pushes a finished batch towards its consumer (published later). */
static void hand_over(struct batch_writer *bw, struct batch *b)
{
    unsigned to = b->dest;
    bw->handed[to]++;
    if (to == bw->self) {
        bw->self_sink(bw->self_ctx, b);
        return;
    }
    struct spsc_ring *r = job_ring_to(bw->job, bw->self, to);
    if (bw->overflow_head[to] == NULL && spsc_ring_push(r, b)) {
        bw->pushed[to] = true;
        return;
    }
    b->next = NULL; /* the ring is full: keep order behind what waits already */
    if (bw->overflow_tail[to])
        bw->overflow_tail[to]->next = b;
    else
        bw->overflow_head[to] = b;
    bw->overflow_tail[to] = b;
}

/* Room for `need` bytes in the open batch for `to`; a new batch's first
 * command comes after source offset off_before. */
static struct batch *room_at(struct batch_writer *bw, unsigned lane, size_t need,
                             uint64_t off_before)
{
    struct lane *l = &bw->lanes[lane];
    struct batch *b = l->open;
    if (b != NULL && b->cap - b->len >= need)
        return b;
    if (b != NULL && b->len > 0) {
        hand_over(bw, b);
    } else if (b != NULL) {
        l->open = NULL;
        untrack_open(l, b);
        batch_put_back(bw, b);
    }
    b = batch_get(bw, need);
    l->open = b;
    if (b != NULL) {
        b->db_at_start = l->db;
        b->off_before = off_before;
        b->off_last = 0;
        b->seq = bw->next_seq++;
        b->lane = lane;
        b->dest = (uint16_t)(lane % bw->nworkers);
        b->node = (uint16_t)(lane / bw->nworkers);
        b->track_next = NULL;
        if (l->track_tail)
            l->track_tail->track_next = b;
        else
            l->track_head = b;
        l->track_tail = b;
    }
    return b;
}

static struct batch *room(struct batch_writer *bw, unsigned to, size_t need)
{
    return room_at(bw, to, need, bw->cur_off);
}

/* In stream mode: the last n commands appended to b came from source
 * offsets from..to. -ENOMEM when the span array cannot grow. */
static int note_spans(struct batch *b, uint32_t n, uint64_t from, uint64_t to)
{
    if (!b->has_spans)
        return 0;
    if (b->ncmds > b->spans_cap) {
        uint32_t cap = b->spans_cap ? b->spans_cap : 256;
        while (cap < b->ncmds)
            cap *= 2;
        struct batch_span *sp = realloc(b->spans, cap * sizeof(*sp));
        if (sp == NULL)
            return -ENOMEM;
        b->spans = sp;
        b->spans_cap = cap;
    }
    for (uint32_t i = b->ncmds - n; i < b->ncmds; i++)
        b->spans[i] = (struct batch_span){from, to};
    return 0;
}

/* note_spans for what carries the stream's data (not SELECT, not a w
 * record): the highest end offset of such a write is kept (data_end). */
static int data_spans(struct batch_writer *bw, struct batch *b, uint32_t n, uint64_t from,
                      uint64_t to)
{
    if (to > bw->data_end)
        bw->data_end = to;
    return note_spans(b, n, from, to);
}

uint64_t batch_writer_data_end(const struct batch_writer *bw)
{
    return bw->data_end;
}

/* Ends the lane's checkpoint transaction, if one is open: its record (the
 * offset of its last command) and EXEC, in the room kept for them. */
static int tx_close(struct batch_writer *bw, unsigned to)
{
    struct lane *l = &bw->lanes[to];
    if (!l->tx_open)
        return 0;
    if (mset_flush(bw, to) != 0) /* SETs gathered meanwhile go in, before the record */
        return -ENOMEM;
    struct batch *b = l->open;
    RS_ASSERT(b != NULL && b->cap - b->len >= bw->cp_end);
    char *e = checkpoint_put_end(bw->cp, b->buf + b->len, to, l->tx_slot, l->tx_to);
    b->len = (size_t)(e - b->buf);
    b->ncmds += 2;
    l->tx_open = false;
    return data_spans(bw, b, 2, l->tx_from, l->tx_to);
}

static int put_cmd(struct batch_writer *bw, unsigned to, int argc, const struct rs_slice *argv)
{
    struct batch *b = room(bw, to, resp_argv_size(argc, argv));
    if (b == NULL)
        return -ENOMEM;
    batch_put_argv(b, argc, argv);
    b->off_last = bw->cur_end;
    return data_spans(bw, b, 1, bw->cur_off, bw->cur_end);
}

static int select_db(struct batch_writer *bw, unsigned to, int64_t db)
{
    RS_ASSERT(!bw->lanes[to].tx_open);
    if (db < 0 || db == bw->lanes[to].db)
        return 0;
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)db);
    struct rs_slice argv[2] = {{"SELECT", 6}, {num, (size_t)n}};
    struct batch *b = room(bw, to, resp_argv_size(2, argv));
    if (b == NULL)
        return -ENOMEM;
    batch_put_argv(b, 2, argv);
    int rc = note_spans(b, 1, 0, 0);
    if (rc == 0)
        bw->lanes[to].db = db;
    return rc;
}

/* The bytes the gathered MSET takes with `more` keys' n more bytes. */
static size_t stage_bytes(const struct mset_stage *s, unsigned more, size_t n)
{
    if (s->nkeys + more == 0)
        return 0;
    uint64_t argc = 1 + 2 * (uint64_t)(s->nkeys + more);
    return 1 + digits(argc) + 2 + resp_arg_size(4) + s->len + n;
}

static int mset_flush(struct batch_writer *bw, unsigned to)
{
    struct lane *l = &bw->lanes[to];
    struct mset_stage *s = &l->stage;
    if (s->nkeys == 0)
        return 0;
    if (l->tx_open) {
        /* gathered while a checkpoint transaction was open: inside it
         * (batch_writer_mset_raw kept the room for that) */
        RS_ASSERT(s->db == l->tx_db &&
                  l->open->cap - l->open->len >= stage_bytes(s, 0, 0) + bw->cp_end);
        if (s->off_last > l->tx_to)
            l->tx_to = s->off_last;
        return stage_emit(bw, l->open, s);
    }
    /* two-way: never a stream write outside a record transaction */
    RS_ASSERT(!(bw->mark_all && bw->stream_mode));
    int rc = select_db(bw, to, s->db);
    if (rc != 0)
        return rc;
    struct batch *b = room_at(bw, to, stage_bytes(s, 0, 0), s->off_before);
    if (b == NULL)
        return -ENOMEM;
    return stage_emit(bw, b, s);
}

/* Writes the gathered MSET into b (room checked) and empties the stage. */
static int stage_emit(struct batch_writer *bw, struct batch *b, struct mset_stage *s)
{
    uint64_t argc = 1 + 2 * (uint64_t)s->nkeys;
    if (s->off_before < b->off_before)
        b->off_before = s->off_before; /* its keys came before the batch's first command */
    char *p = put_head(b->buf + b->len, '*', argc);
    p = put_bulk(p, "MSET", 4);
    memcpy(p, s->buf, s->len);
    b->len = (size_t)(p + s->len - b->buf);
    b->ncmds++;
    if (s->off_last > b->off_last)
        b->off_last = s->off_last;
    if (data_spans(bw, b, 1, s->off_before, s->off_last) != 0)
        return -ENOMEM;
    s->len = 0;
    s->nkeys = 0;
    for (unsigned i = 0; i < s->nslots; i++)
        s->slot_bits[s->slots[i] / 64] = 0; /* nslots > 0: slot_bits was made */
    s->nslots = 0;
    return 0;
}

/* ----------------------------------------------------------------- public */

struct batch_writer *batch_writer_new(struct job *job, unsigned self, unsigned max_outstanding,
                                      unsigned nodes, bool single_slot)
{
    struct batch_writer *bw = calloc(1, sizeof(*bw));
    if (bw == NULL)
        return NULL;
    bw->job = job;
    bw->self = self;
    bw->nworkers = job->nworkers;
    bw->nlanes = job->nworkers * (nodes ? nodes : 1);
    bw->single_slot = single_slot;
    bw->max_outstanding = max_outstanding;
    bw->lanes = calloc(bw->nlanes, sizeof(*bw->lanes)); /* db 0: where a new connection starts */
    if (bw->lanes == NULL) {
        free(bw);
        return NULL;
    }
    return bw;
}

void batch_writer_free(struct batch_writer *bw)
{
    if (bw == NULL)
        return;
    free(bw->wrapped);
    for (unsigned i = 0; i < bw->nlanes; i++) {
        if (bw->lanes[i].open)
            batch_free(bw->lanes[i].open);
        free(bw->lanes[i].stage.buf);
        free(bw->lanes[i].stage.slot_bits);
    }
    for (unsigned i = 0; i < JOB_MAX_WORKERS; i++) {
        while (bw->overflow_head[i]) {
            struct batch *b = bw->overflow_head[i];
            bw->overflow_head[i] = b->next;
            batch_free(b);
        }
    }
    while (bw->free_list) {
        struct batch *b = bw->free_list;
        bw->free_list = b->next;
        batch_free(b);
    }
    free(bw->lanes);
    free(bw);
}

void batch_writer_set_proxy(struct batch_writer *bw, bool eval, const char *name)
{
    bw->proxy = true;
    bw->proxy_eval = eval;
    bw->proxy_name = name;
}

/* argv in the form the proxy runs: itself, or *wargv (EVAL-wrapped, in
 * bw->wrapped). 0, -ENOMEM, or -EPERM after job_fail. */
static int proxy_form(struct batch_writer *bw, int *argc, const struct rs_slice **argv)
{
    const struct command_spec *spec = command_lookup((*argv)[0].p, (*argv)[0].len);
    int key = 0;
    if (spec == NULL || command_keys(spec, *argc, *argv, &key, 1) != 1)
        key = 0;
    enum proxy_form f = proxy_form_of(*argc, *argv, key);
    if (f == PROXY_AS_IS)
        return 0;
    const char *why = f == PROXY_NO_FORM ? "it has no key to route it by"
                      : !bw->proxy_eval  ? "the proxy refuses it and scripting (EVAL, the "
                                           "wrapped form) was refused at the start"
                      : *argc > PROXY_WRAP_MAX_ARGC ? "it has too many arguments for the "
                                                      "wrapped form (EVAL)"
                                                    : NULL;
    if (why == NULL) {
        size_t need = (size_t)*argc + PROXY_WRAP_EXTRA;
        if (need > bw->wrapped_cap) {
            struct rs_slice *w = realloc(bw->wrapped, need * sizeof(*w));
            if (w == NULL)
                return -ENOMEM;
            bw->wrapped = w;
            bw->wrapped_cap = need;
        }
        *argc = proxy_wrap(*argc, *argv, key, bw->wrapped);
        *argv = bw->wrapped;
        return 0;
    }
    job_fail(bw->job, "destination %s is a proxy, and %.*s cannot go through it: %s",
             bw->proxy_name ? bw->proxy_name : "", (int)((*argv)[0].len > 40 ? 40 : (*argv)[0].len),
             (*argv)[0].p, why);
    return -EPERM;
}

int batch_writer_cmd(struct batch_writer *bw, unsigned to, int64_t db, int argc,
                     const struct rs_slice *argv)
{
    if (bw->proxy) {
        int x = proxy_form(bw, &argc, &argv);
        if (x != 0)
            return x;
    }
    int rc = bw->stream_mode ? tx_close(bw, to) : mset_flush(bw, to);
    if (rc == 0)
        rc = select_db(bw, to, db);
    if (rc == 0)
        rc = put_cmd(bw, to, argc, argv);
    return rc;
}

/* Room for n more bytes of arguments in the MSET gathered for `to` in db (a
 * gathered MSET of another db, or in single-slot mode of another slot, goes
 * out first). NULL when out of memory. */
static char *stage_reserve(struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                           size_t n)
{
    struct mset_stage *s = &bw->lanes[to].stage;
    if (s->nkeys > 0 && (s->db != db || (bw->single_slot && s->slot != slot)) &&
        mset_flush(bw, to) != 0)
        return NULL;
    s->slot = slot;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 16 * 1024;
        while (cap < s->len + n)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL)
            return NULL;
        s->buf = nb;
        s->cap = cap;
    }
    if (s->nkeys == 0)
        s->off_before = bw->cur_off;
    return s->buf + s->len;
}

/* One key's n argument bytes were written at stage_reserve's pointer. */
static int stage_commit(struct batch_writer *bw, unsigned to, int64_t db, size_t n)
{
    struct mset_stage *s = &bw->lanes[to].stage;
    s->len += n;
    s->db = db;
    s->off_last = bw->cur_end;
    /* single_slot (a cluster): one key an MSET, which a slot being migrated
     * never answers TRYAGAIN (its keys on two nodes) */
    if (++s->nkeys == BATCH_MSET_KEYS || s->len >= BATCH_BYTES / 2 || bw->single_slot)
        return mset_flush(bw, to);
    return 0;
}

int batch_writer_mset(struct batch_writer *bw, unsigned to, int64_t db, struct rs_slice key,
                      struct rs_slice value, unsigned slot)
{
    char *p = stage_reserve(bw, to, db, slot, resp_arg_size(key.len) + resp_arg_size(value.len));
    if (p == NULL)
        return -ENOMEM;
    char *end = put_bulk(put_bulk(p, key.p, key.len), value.p, value.len);
    return stage_commit(bw, to, db, (size_t)(end - p));
}

int batch_writer_mset_raw(struct batch_writer *bw, unsigned to, int64_t db, const void *args,
                          size_t n, unsigned slot)
{
    struct mset_stage *s = &bw->lanes[to].stage;
    struct lane *l = &bw->lanes[to];
    if (l->tx_open && (!batch_writer_in_tx(bw, to, db, slot, NULL) ||
                       l->open->cap - l->open->len < stage_bytes(s, 1, n) + bw->cp_end)) {
        /* a checkpoint transaction's record covers every command of the
         * lane up to its last: SETs gathered meanwhile go out inside it
         * (mset_flush), in the room kept here; else it ends first */
        if (tx_close(bw, to) != 0)
            return -ENOMEM;
    }
    /* two-way: a SET is a marked write too, so it is gathered only inside a
     * record transaction (tx_close flushes the stage before the record) */
    if (bw->mark_all && bw->stream_mode && !l->tx_open &&
        tx_open(bw, to, db, slot, NULL, stage_bytes(s, 1, n)) != 0)
        return -ENOMEM;
    if (s->slot_bits == NULL && (s->slot_bits = calloc(SLOT_COUNT / 64, sizeof(uint64_t))) == NULL)
        return -ENOMEM; /* once a lane */
    char *p = stage_reserve(bw, to, db, slot, n);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, args, n);
    uint64_t bit = 1ULL << (slot % 64);
    if (!(s->slot_bits[slot / 64] & bit)) {
        s->slot_bits[slot / 64] |= bit;
        s->slots[s->nslots++] = (uint16_t)slot; /* at most one per key */
    }
    return stage_commit(bw, to, db, n);
}

bool batch_writer_staged(const struct batch_writer *bw, unsigned to, unsigned slot)
{
    const uint64_t *bits = bw->lanes[to].stage.slot_bits;
    return bits != NULL && (bits[slot / 64] >> (slot % 64) & 1);
}

int batch_writer_flush_stage(struct batch_writer *bw, unsigned to)
{
    return mset_flush(bw, to);
}

void batch_writer_mark_all(struct batch_writer *bw)
{
    RS_ASSERT(!bw->single_slot); /* a two-way side is one standalone server */
    bw->mark_all = true;
}

void batch_writer_stream_mode(struct batch_writer *bw)
{
    for (unsigned lane = 0; lane < bw->nlanes; lane++) /* the snapshot's last MSETs first */
        if (mset_flush(bw, lane) != 0)
            job_fail(bw->job, "out of memory while writing commands");
    bw->stream_mode = true;
}

unsigned batch_writer_publish(struct batch_writer *bw)
{
    unsigned n = 0;
    for (unsigned lane = 0; lane < bw->nlanes; lane++) {
        if (tx_close(bw, lane) != 0 || mset_flush(bw, lane) != 0)
            job_fail(bw->job, "out of memory while writing commands");
        struct batch *b = bw->lanes[lane].open;
        if (b != NULL && b->len > 0) {
            bw->lanes[lane].open = NULL;
            hand_over(bw, b);
            n++;
        }
    }
    for (unsigned to = 0; to < bw->nworkers; to++) {
        struct spsc_ring *r = job_ring_to(bw->job, bw->self, to);
        while (bw->overflow_head[to] != NULL && spsc_ring_push(r, bw->overflow_head[to])) {
            bw->overflow_head[to] = bw->overflow_head[to]->next;
            bw->pushed[to] = true;
        }
        if (bw->overflow_head[to] == NULL)
            bw->overflow_tail[to] = NULL;
        if (bw->pushed[to]) {
            spsc_ring_publish(r);
            bw->pushed[to] = false;
            if (bw->wake)
                bw->wake(bw->wake_ctx, to);
        }
    }
    return n;
}

unsigned batch_writer_reclaim(struct batch_writer *bw)
{
    unsigned n = 0;
    for (unsigned from = 0; from < bw->job->nworkers; from++) {
        if (from == bw->self)
            continue;
        struct spsc_ring *r = job_ring_back(bw->job, from, bw->self);
        struct batch *b;
        bool any = false;
        while ((b = spsc_ring_pop(r)) != NULL) {
            untrack(bw, b);
            batch_put_back(bw, b);
            any = true;
            n++;
        }
        if (any)
            spsc_ring_release(r);
    }
    return n;
}

void batch_writer_recycle(struct batch_writer *bw, struct batch *b)
{
    untrack(bw, b);
    batch_put_back(bw, b);
}

int batch_writer_raw(struct batch_writer *bw, unsigned to, int64_t db, const void *p, size_t n,
                     uint32_t ncmds, int64_t db_after)
{
    int rc = bw->stream_mode ? tx_close(bw, to) : mset_flush(bw, to);
    if (rc == 0)
        rc = select_db(bw, to, db);
    if (rc != 0)
        return rc;
    struct batch *b = room(bw, to, n);
    if (b == NULL)
        return -ENOMEM;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->ncmds += ncmds;
    b->off_last = bw->cur_end;
    if (data_spans(bw, b, ncmds, bw->cur_off, bw->cur_end) != 0)
        return -ENOMEM;
    if (db_after >= 0)
        bw->lanes[to].db = db_after;
    return 0;
}

uint64_t batch_writer_handed(const struct batch_writer *bw, unsigned worker)
{
    return bw->handed[worker];
}

uint64_t batch_writer_next_seq(const struct batch_writer *bw)
{
    return bw->next_seq;
}

uint64_t batch_writer_oldest_seq(const struct batch_writer *bw)
{
    uint64_t s = UINT64_MAX;
    for (unsigned lane = 0; lane < bw->nlanes; lane++) {
        for (const struct batch *b = bw->lanes[lane].track_head; b != NULL; b = b->track_next)
            if (b->len > 0) {
                if (b->seq < s)
                    s = b->seq;
                break;
            }
        if (bw->lanes[lane].stage.nkeys > 0 && bw->next_seq < s)
            s = bw->next_seq; /* gathered keys go into a batch not made yet */
    }
    return s;
}

void batch_writer_set_end(struct batch_writer *bw, uint64_t end)
{
    bw->cur_end = end;
}

void batch_writer_set_offset(struct batch_writer *bw, uint64_t off)
{
    bw->cur_off = off;
}

uint64_t batch_writer_applied(const struct batch_writer *bw, uint64_t routed)
{
    uint64_t w = routed;
    for (unsigned lane = 0; lane < bw->nlanes; lane++) {
        const struct lane *l = &bw->lanes[lane];
        /* Every batch with commands, not just the oldest: a gathered MSET
         * may take keys older than the batch it went into. */
        for (const struct batch *b = l->track_head; b != NULL; b = b->track_next)
            if (b->len > 0 && b->off_before < w)
                w = b->off_before;
        if (l->stage.nkeys > 0 && l->stage.off_before < w)
            w = l->stage.off_before;
    }
    return w;
}

bool batch_writer_is_full(const struct batch_writer *bw)
{
    return bw->outstanding >= bw->max_outstanding;
}

unsigned batch_writer_outstanding(const struct batch_writer *bw)
{
    unsigned open = 0;
    for (unsigned i = 0; i < bw->nlanes; i++)
        if (bw->lanes[i].open != NULL && bw->lanes[i].open->len == 0)
            open++; /* an empty open batch is not waiting for anyone */
    return bw->outstanding - open;
}

void batch_writer_set_self_sink(struct batch_writer *bw, void (*sink)(void *ctx, struct batch *b),
                                void *ctx)
{
    bw->self_sink = sink;
    bw->self_ctx = ctx;
}

void batch_writer_set_waker(struct batch_writer *bw, void (*wake)(void *ctx, unsigned to),
                            void *ctx)
{
    bw->wake = wake;
    bw->wake_ctx = ctx;
}

void batch_writer_set_checkpoints(struct batch_writer *bw, const struct checkpoint *cp)
{
    bw->cp = cp;
    bw->cp_end = cp ? checkpoint_end_size(cp) : 0;
}

bool batch_writer_in_tx(const struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                        const struct rs_slice *key)
{
    const struct lane *l = &bw->lanes[to];
    if (!l->tx_open || l->tx_db != db)
        return false;
    if (!bw->single_slot)
        return true;
    return l->tx_slot == slot && key != NULL && l->tx_key_len > 0 && key->len == l->tx_key_len &&
           memcmp(key->p, l->tx_key, key->len) == 0;
}

/* Opens a checkpoint transaction on lane `to` (MULTI) in a batch with room
 * for `need` bytes more and its end. Everything before it on the lane goes
 * first: its record says so. */
static int tx_open(struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                   const struct rs_slice *key, size_t need)
{
    static const char multi[] = "*1\r\n$5\r\nMULTI\r\n";
    struct lane *l = &bw->lanes[to];
    if (mset_flush(bw, to) != 0 || select_db(bw, to, db) != 0)
        return -ENOMEM;
    struct batch *b = room(bw, to, sizeof(multi) - 1 + need + bw->cp_end);
    if (b == NULL)
        return -ENOMEM;
    memcpy(b->buf + b->len, multi, sizeof(multi) - 1);
    b->len += sizeof(multi) - 1;
    b->ncmds++;
    if (data_spans(bw, b, 1, bw->cur_off, bw->cur_end) != 0)
        return -ENOMEM;
    l->tx_open = true;
    l->tx_db = db;
    l->tx_slot = slot;
    l->tx_key_len = 0;
    if (key != NULL && key->len > 0 && key->len <= sizeof(l->tx_key)) {
        memcpy(l->tx_key, key->p, key->len);
        l->tx_key_len = key->len;
    }
    l->tx_from = bw->cur_off;
    return 0;
}

/* batch_writer_raw_cp of the bytes head[0..hn) then p[0..n). */
static int tx_put(struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                  const struct rs_slice *key, const char *head, size_t hn, const void *p, size_t n0)
{
    size_t n = hn + n0;
    struct lane *l = &bw->lanes[to];
    RS_ASSERT(bw->cp != NULL && bw->stream_mode);
    if (l->tx_open &&
        (!batch_writer_in_tx(bw, to, db, slot, key) ||
         l->open->cap - l->open->len < n + bw->cp_end + stage_bytes(&l->stage, 0, 0)) &&
        tx_close(bw, to) != 0)
        return -ENOMEM;
    if (!l->tx_open && tx_open(bw, to, db, slot, key, n) != 0)
        return -ENOMEM;
    struct batch *b = l->open;
    memcpy(b->buf + b->len, head, hn);
    memcpy(b->buf + b->len + hn, p, n0);
    b->len += n;
    b->ncmds++;
    b->off_last = bw->cur_end;
    l->tx_to = bw->cur_end;
    return data_spans(bw, b, 1, bw->cur_off, bw->cur_end);
}

int batch_writer_raw_cp(struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                        const struct rs_slice *key, const void *p, size_t n)
{
    return tx_put(bw, to, db, slot, key, "", 0, p, n);
}

int batch_writer_aux(struct batch_writer *bw, unsigned to, const void *p, size_t n)
{
    if (tx_close(bw, to) != 0)
        return -ENOMEM;
    struct batch *b = room(bw, to, n);
    if (b == NULL)
        return -ENOMEM;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->ncmds++;
    return note_spans(b, 1, 0, 0);
}
