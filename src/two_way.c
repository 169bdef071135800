/* two_way.c - one direction of a two-way job (see two_way.h). */
#include "two_way.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control_link.h"
#include "job.h"
#include "log.h"
#include "rs_error.h"
#include "router.h"

int two_way_settle(struct sync_opts *o)
{
    if (o->direction == NULL)
        return 0;
    if (o->job_id == NULL) {
        rs_log("--direction needs --job-id: both directions of a two-way job name it, so that "
               "each knows the other's writes");
        return 2;
    }
    if (strlen(o->job_id) + sizeof("/reverse") > CHECKPOINT_JOB_MAX) {
        /* "J/forward" names the records, "ringsync:cp:J/reverse:" the other
         * direction's: both must hold J whole, or the echoes go undropped */
        rs_log("--job-id of a two-way job takes at most %zu characters, not %zu",
               CHECKPOINT_JOB_MAX - sizeof("/reverse"), strlen(o->job_id));
        return 2;
    }
    if (!o->checkpoint || o->checkpoint_file != NULL) {
        rs_log("--direction needs --checkpoint target: the records that checkpoints write in "
               "the destination are what marks a direction's writes (src/BIDIRECTIONAL.md)");
        return 2;
    }
    if (o->expiry_margin_given && o->expiry_margin_ms > 0) {
        rs_log("--direction needs --expiry-margin 0: both sides hold keys of their own, whose "
               "expiries a margin taken back at the stop would shorten");
        return 2;
    }
    if (o->snapshot_only) {
        rs_log("--direction and --snapshot-only exclude each other");
        return 2;
    }
    o->expiry_margin_ms = 0;
    if (strcmp(o->direction, "reverse") == 0) {
        if (o->nonempty == NONEMPTY_FLUSH) {
            rs_log("--direction reverse writes into the side the forward direction copies: "
                   "--target-nonempty flush would empty it");
            return 2;
        }
        o->nonempty = NONEMPTY_KEEP; /* the destination is the other side: it holds the data */
    }
    return 0;
}

void two_way_job_id(const struct sync_opts *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", o->job_id, o->direction);
}

void two_way_router(const struct sync_opts *o, struct router_config *cfg, char *prefix, size_t cap)
{
    if (o->direction == NULL)
        return;
    const char *other = strcmp(o->direction, "forward") == 0 ? "reverse" : "forward";
    int n = snprintf(prefix, cap, "%s%s/%s:", CHECKPOINT_PREFIX, o->job_id, other);
    cfg->mark_all = true;
    cfg->drop_prefix = prefix;
    RS_ASSERT(n > 0 && (size_t)n < cap); /* two_way_settle bounded the job id */
    cfg->drop_prefix_len = (size_t)n;
}

/* A source without a backlog gets one: a replica's PSYNC ? -1 on a link of
 * its own (the server makes its backlog at once, before it answers: a
 * diskless sync answers only once its fork starts, repl-diskless-sync-delay
 * later), kept open until INFO on scl shows the backlog, then closed (the
 * server keeps it when that replica is gone, and starts no fork for it).
 * -1 after saying why. */
static int prime_backlog(const struct sync_opts *o, struct control_link *scl,
                         const struct endpoint *source)
{
    struct control_link p = {0};
    struct rs_error err = {0};
    struct control_reply rep = {0};
    const char *capa[] = {"REPLCONF", "capa", "eof", "capa", "psync2"};
    const char *psync[] = {"PSYNC", "?", "-1"};
    int rc = control_link_open(&p, source, o->timeout_ms, &err);
    if (rc == 0 && (rc = control_link_command(&p, &rep, &err, 5, capa, NULL)) == 0)
        control_reply_free(&rep);
    if (rc == 0)
        rc = control_link_send(&p, 3, psync, NULL, &err);
    char active[8] = "0";
    for (int i = 0; rc == 0 && i < o->timeout_ms / 10 && strcmp(active, "1") != 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        rc = control_link_info_field(scl, "replication", "repl_backlog_active", active,
                                     sizeof(active), &err);
    }
    control_link_close(&p);
    if (rc == 0 && strcmp(active, "1") != 0)
        rs_error_set(&err, RS_E_FORMAT, 0, "%s shows no backlog %d ms after a replica's PSYNC",
                     source->name, o->timeout_ms);
    if (rc < 0 || strcmp(active, "1") != 0) {
        rs_log("the reverse direction's source keeps no backlog, and making one failed: %s",
               err.msg);
        return -1;
    }
    return 0;
}

int two_way_reverse_start(const struct sync_opts *o, struct control_link *scl,
                          const struct endpoint *source, enum checkpoint_start *how,
                          struct checkpoint_state *st, bool *discard)
{
    if (o->direction == NULL || strcmp(o->direction, "reverse") != 0)
        return 0;
    if (*how == CHECKPOINT_START_REDO) { /* its snapshot was being dropped: again */
        *discard = true;
        return 1;
    }
    if (*how != CHECKPOINT_START_NEW)
        return 0;
    char replid[64] = "", off[32] = "", active[8] = "";
    struct rs_error err = {0};
    if (control_link_info_field(scl, "replication", "repl_backlog_active", active, sizeof(active),
                                &err) == 0 &&
        strcmp(active, "0") == 0) {
        /* A full sync whose snapshot is dropped would start where the
         * source's fork starts (after repl-diskless-sync-delay): the writes
         * made before that, after the forward direction's, would be lost.
         * So: a backlog first, then the current offset, as below. */
        if (prime_backlog(o, scl, source) < 0)
            return -1;
        rs_log("reverse direction of job %s: the source kept no backlog (no replica before): "
               "one made",
               o->job_id);
    }
    err = (struct rs_error){0};
    if (control_link_info_field(scl, "replication", "master_replid", replid, sizeof(replid), &err) <
            0 ||
        control_link_info_field(scl, "replication", "master_repl_offset", off, sizeof(off), &err) <
            0) {
        rs_log("the reverse direction starts at the source's current offset, but INFO "
               "replication did not say it: %s",
               err.msg);
        return -1;
    }
    if (strlen(replid) != SOURCE_REPLID_LEN) {
        rs_log("the source's master_replid '%s' is not %d characters", replid, SOURCE_REPLID_LEN);
        return -1;
    }
    memcpy(st->replid, replid, SOURCE_REPLID_LEN + 1);
    st->w = strtoull(off, NULL, 10);
    st->db = 0;
    st->margin_on = -1;
    st->found = true;
    snprintf(st->phase, sizeof(st->phase), "%s", CHECKPOINT_STREAM);
    *how = CHECKPOINT_START_RESUME;
    rs_log("reverse direction of job %s: following the source from its current offset %" PRIu64
           " (replid %s), without a snapshot",
           o->job_id, st->w, st->replid);
    return 1;
}

/* ------------------------------------------------------------ conflicts */

/* One entry: the key's hash (high 32 bits), the time it was written (ms
 * since the table began, 31 bits: time differences are taken modulo 2^31,
 * right for windows far shorter than 24 days) and the side (low bit),
 * swapped in one atomic exchange: of two writers of one key at once, the
 * second always sees the first. */
struct two_way_entry {
    _Atomic uint64_t word;
    _Atomic uint64_t end; /* the write's end offset in its side's stream (messages only) */
};

/* A key waiting for its copy from the winning side. */
struct pending {
    int64_t db;
    uint64_t due_ms; /* coarse_ms() once the window has passed */
    size_t len;
    char key[];
};

struct two_way_conflicts {
    int64_t window_ms;
    enum two_way_policy policy;
    uint64_t t0;
    _Atomic uint64_t count;
    _Atomic uint64_t resolved;
    pthread_mutex_t mu; /* the queue: taken only on a conflict, never per write */
    struct pending **q;
    size_t nq;
    bool full_said;
    struct two_way_entry e[TWO_WAY_SLOTS];
};

static uint64_t coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct two_way_conflicts *two_way_conflicts_new(int64_t window_ms, enum two_way_policy policy)
{
    struct two_way_conflicts *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->window_ms = window_ms;
    t->policy = policy;
    t->t0 = coarse_ms();
    pthread_mutex_init(&t->mu, NULL);
    if (policy != TWO_WAY_REPORT && (t->q = calloc(TWO_WAY_RESOLVE_MAX, sizeof(*t->q))) == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

void two_way_conflicts_free(struct two_way_conflicts *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nq; i++)
        free(t->q[i]);
    free(t->q);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* A conflict's key, queued for its copy once the window has passed. */
static void enqueue(struct two_way_conflicts *t, int64_t db, const void *key, size_t len)
{
    struct pending *p = len <= TWO_WAY_RESOLVE_KEY ? malloc(sizeof(*p) + len) : NULL;
    if (p != NULL) {
        p->db = db;
        p->due_ms = coarse_ms() + (uint64_t)t->window_ms;
        p->len = len;
        memcpy(p->key, key, len);
    }
    pthread_mutex_lock(&t->mu);
    bool queued = p != NULL && t->nq < TWO_WAY_RESOLVE_MAX;
    if (queued)
        t->q[t->nq++] = p;
    bool say = !queued && !t->full_said;
    if (say)
        t->full_said = true;
    pthread_mutex_unlock(&t->mu);
    if (!queued)
        free(p);
    if (say)
        rs_log("warning: a conflict's key was only reported, not copied from the winning side "
               "(%s): compare the sides with ringsync verify",
               len > TWO_WAY_RESOLVE_KEY ? "its name is too long" : "too many are waiting");
}

static uint64_t key_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void two_way_note(struct two_way_conflicts *t, struct job *job, int side, int64_t db,
                  const void *key, size_t len, uint64_t end)
{
    uint64_t h = key_hash(key, len);
    uint64_t now = (coarse_ms() - t->t0) & 0x7fffffffu;
    uint64_t word = (h >> 32 | 1u) << 32 | now << 1 | (uint64_t)(side & 1); /* hash part never 0 */
    struct two_way_entry *e = &t->e[(h & 0xffffffffu) % TWO_WAY_SLOTS];
    uint64_t old = atomic_exchange_explicit(&e->word, word, memory_order_relaxed);
    uint64_t oend = atomic_exchange_explicit(&e->end, end, memory_order_relaxed);
    if (old >> 32 != word >> 32 || (int)(old & 1) == side)
        return;
    uint64_t dt = (now - ((old >> 1) & 0x7fffffffu)) & 0x7fffffffu;
    if (dt > 0x3fffffffu)
        dt = 0x80000000u - dt; /* the other side's was noted later (a race): |difference| */
    if (dt > (uint64_t)t->window_ms)
        return;
    uint64_t k = atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&job->conflicts, 1, memory_order_relaxed);
    if (t->policy != TWO_WAY_REPORT)
        enqueue(t, db, key, len);
    if (k < 20) {
        char name[200];
        rs_escape_bytes(name, sizeof(name), key, len, 120);
        rs_log("conflict: key '%s' written on both sides within %" PRId64 " ms: side %s at "
               "offset %" PRIu64 ", side %s at offset %" PRIu64 "%s",
               name, t->window_ms, side ? "B" : "A", end, side ? "A" : "B", oend,
               k == 19 ? " (no more of these are shown; the report counts them)" : "");
    }
}

uint64_t two_way_conflict_count(const struct two_way_conflicts *t)
{
    return atomic_load(&t->count);
}

uint64_t two_way_resolved_count(const struct two_way_conflicts *t)
{
    return atomic_load(&t->resolved);
}

/* SELECT db on cl; -1 after saying why. */
static int select_db(struct control_link *cl, int64_t db)
{
    char d[24];
    snprintf(d, sizeof(d), "%lld", (long long)db);
    struct control_reply rep = {0};
    struct rs_error err = {0};
    if (control_link_commandv(cl, &rep, &err, "SELECT", d, NULL) < 0) {
        rs_log("conflict resolution: %s", err.msg);
        return -1;
    }
    bool ok = rep.r->type != REDIS_REPLY_ERROR;
    if (!ok)
        rs_log("conflict resolution: %s refused SELECT %s: %s", cl->name, d, rep.r->str);
    control_reply_free(&rep);
    return ok ? 0 : -1;
}

/* The winner's value of one key (its DUMP, or nil, and PTTL, taken in one
 * transaction), then written to the loser in a marked transaction. 0, or
 * -1 after saying why (the key stays queued). */
static int copy_key(struct control_link *w, struct control_link *l, const struct pending *p,
                    const char *marker)
{
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *dump[] = {"DUMP", p->key}, *pttl[] = {"PTTL", p->key};
    size_t kl[] = {4, p->len};
    struct rs_error err = {0};
    struct control_reply r[4] = {{0}};
    int rc = select_db(w, p->db);
    if (rc == 0 && (control_link_send(w, 1, multi, NULL, &err) < 0 ||
                    control_link_send(w, 2, dump, kl, &err) < 0 ||
                    control_link_send(w, 2, pttl, kl, &err) < 0 ||
                    control_link_send(w, 1, exec, NULL, &err) < 0))
        rc = -1;
    for (int i = 0; rc == 0 && i < 4; i++)
        if (control_link_read_reply(w, i == 3 ? "EXEC" : "MULTI", &r[i], &err) < 0)
            rc = -1;
    const redisReply *x = r[3].r;
    if (rc == 0 && (x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
                    x->element[1]->type != REDIS_REPLY_INTEGER)) {
        rs_log("conflict resolution: %s answered the DUMP of a key with %s", w->name,
               x->type == REDIS_REPLY_ERROR ? x->str : "something else");
        rc = -1;
    }
    bool gone = rc == 0 && x->element[0]->type != REDIS_REPLY_STRING;
    char ttl[24] = "0";
    if (rc == 0 && x->element[1]->integer > 0)
        snprintf(ttl, sizeof(ttl), "%lld", x->element[1]->integer);
    struct control_reply out[4] = {{0}};
    if (rc == 0)
        rc = select_db(l, p->db);
    if (rc == 0) {
        const char *restore[] = {"RESTORE", p->key, ttl, gone ? "" : x->element[0]->str, "REPLACE"};
        size_t rl[] = {7, p->len, strlen(ttl), gone ? 0 : x->element[0]->len, 7};
        const char *del[] = {"DEL", p->key};
        size_t dl[] = {3, p->len};
        char now[24];
        snprintf(now, sizeof(now), "%lld", (long long)coarse_ms());
        const char *mark[] = {"SET", marker, now};
        if (control_link_send(l, 1, multi, NULL, &err) < 0 ||
            (gone ? control_link_send(l, 2, del, dl, &err)
                  : control_link_send(l, 5, restore, rl, &err)) < 0 ||
            control_link_send(l, 3, mark, NULL, &err) < 0 ||
            control_link_send(l, 1, exec, NULL, &err) < 0)
            rc = -1;
        for (int i = 0; rc == 0 && i < 4; i++)
            if (control_link_read_reply(l, i == 3 ? "EXEC" : "MULTI", &out[i], &err) < 0)
                rc = -1;
        if (rc == 0 && (out[3].r->type != REDIS_REPLY_ARRAY || out[3].r->elements != 2 ||
                        out[3].r->element[0]->type == REDIS_REPLY_ERROR)) {
            const redisReply *e = out[3].r->type == REDIS_REPLY_ARRAY && out[3].r->elements > 0
                                      ? out[3].r->element[0]
                                      : out[3].r;
            rs_log("conflict resolution: %s refused the copy of a key: %s", l->name,
                   e->type == REDIS_REPLY_ERROR ? e->str : "no answer to EXEC");
            rc = -1;
        }
    }
    if (rc < 0 && err.msg[0])
        rs_log("conflict resolution: %s", err.msg);
    for (int i = 0; i < 4; i++) {
        control_reply_free(&r[i]);
        control_reply_free(&out[i]);
    }
    return rc;
}

void two_way_resolve(struct two_way_conflicts *t, const struct endpoint *a,
                     const struct endpoint *b, const char *job_id, int timeout_ms, bool all)
{
    if (t->policy == TWO_WAY_REPORT)
        return;
    uint64_t now = coarse_ms();
    pthread_mutex_lock(&t->mu);
    size_t due = 0;
    for (size_t i = 0; i < t->nq; i++)
        due += all || t->q[i]->due_ms <= now;
    pthread_mutex_unlock(&t->mu);
    if (due == 0)
        return;
    bool a_wins = t->policy == TWO_WAY_A_WINS;
    const struct endpoint *win = a_wins ? a : b, *lose = a_wins ? b : a;
    /* the direction that writes to the losing side marks the copy */
    char marker[CHECKPOINT_KEY_MAX + 16];
    snprintf(marker, sizeof(marker), CHECKPOINT_PREFIX "%s/%s:resolved", job_id,
             a_wins ? "forward" : "reverse");
    struct control_link w = {0}, l = {0};
    struct rs_error err = {0};
    if (control_link_open(&w, win, timeout_ms, &err) < 0 ||
        control_link_open(&l, lose, timeout_ms, &err) < 0) {
        rs_log("conflict resolution: %s; the keys stay queued", err.msg);
        control_link_close(&w);
        return;
    }
    for (;;) {
        struct pending *p = NULL;
        pthread_mutex_lock(&t->mu);
        for (size_t i = 0; i < t->nq && p == NULL; i++)
            if (all || t->q[i]->due_ms <= now) {
                p = t->q[i];
                t->q[i] = t->q[--t->nq];
            }
        pthread_mutex_unlock(&t->mu);
        if (p == NULL)
            break;
        if (copy_key(&w, &l, p, marker) < 0) {
            pthread_mutex_lock(&t->mu);
            t->q[t->nq++] = p; /* there is room: it came out of it */
            pthread_mutex_unlock(&t->mu);
            break;
        }
        uint64_t k = atomic_fetch_add_explicit(&t->resolved, 1, memory_order_relaxed);
        if (k < 20) {
            char name[200];
            rs_escape_bytes(name, sizeof(name), p->key, p->len, 120);
            rs_log("conflict on key '%s' (db %lld) resolved: side %s's value copied to side %s%s",
                   name, (long long)p->db, a_wins ? "A" : "B", a_wins ? "B" : "A",
                   k == 19 ? " (no more of these are shown; the report counts them)" : "");
        }
        free(p);
    }
    control_link_close(&w);
    control_link_close(&l);
}
