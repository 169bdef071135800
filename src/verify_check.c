/* verify_check.c - the checking threads of `ringsync verify` (see
 * verify_check.h): connections, the rounds of a page, values read in
 * chunks and digested, the reverse lookups, the passes.
 *
 * Connections: opened (and AUTHed) with control_link, then detached: the
 * rounds here send thousands of commands at once and read thousands of
 * replies, through one hiredis reader kept for the connection's life
 * (control_link makes a reader per reply, fine for handshakes, not here).
 * The socket is blocking with SO_RCVTIMEO / SO_SNDTIMEO at the timeout: a
 * node that goes quiet fails the worker, never hangs it. A round's commands
 * (a page: about 3 x --scan-count of them, ~100 KB) are written whole
 * before any reply is read; Redis reads a client's whole pipeline while it
 * queues the replies, so the write always completes.
 *
 * Invariants:
 *   1. Every command appended to a connection is answered by exactly one
 *      reply read, in order: vconn.pending counts them, and a round reads
 *      each node's replies in the order it appended the commands (key order).
 *   2. Both sides of a key read the same chunks: the same offsets (strings,
 *      lists), or a cursor each (sets, hashes, zsets: their digests are
 *      order-free), or from the last id read (streams).
 *   3. A key is reported in a pass only if both sides answered for it in
 *      that pass; a key the source no longer has (TYPE none) is not one.
 */
#include "verify_check.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "checkpoint.h"
#include "control_link.h"
#include "decimal.h"
#include "slot.h"
#include "value_digest.h"

#define VERIFY_FIRST_BYTES     65536      /* a string's first GETRANGE */
#define VERIFY_CHUNK_BYTES     (1u << 20) /* later GETRANGEs */
#define VERIFY_FIRST_ELEMS     128        /* a collection's first chunk (LRANGE, COUNT) */
#define VERIFY_CHUNK_TARGET    (4u << 20) /* bytes a later chunk aims at (MEMORY USAGE) */
#define VERIFY_CHUNK_ELEMS_MIN 16
#define VERIFY_CHUNK_ELEMS_MAX 4096
#define VERIFY_DEBUG_MAX_ELEMS 1000000 /* DEBUG DIGEST-VALUE runs whole: not on bigger keys */
#define VERIFY_DEBUG_MAX_BYTES (64u << 20)
#define VERIFY_RECV_BYTES      65536

const char *verify_kind_name(enum verify_kind k)
{
    static const char *const names[VERIFY_KINDS] = {"missing", "extra", "type", "value", "ttl"};
    RS_ASSERT(k < VERIFY_KINDS);
    return names[k];
}

/* ------------------------------------------------------------ types */

enum vtype { VT_NONE = 0, VT_STRING, VT_LIST, VT_SET, VT_ZSET, VT_HASH, VT_STREAM, VT_OTHER };

struct vtype_info {
    const char *name;
    const char *len_cmd;
    const char *unit; /* of the length, in messages */
    bool is_ordered;
};

static const struct vtype_info vtypes[] = {
    [VT_NONE] = {"none", NULL, "", true},
    [VT_STRING] = {"string", "STRLEN", "bytes", true},
    [VT_LIST] = {"list", "LLEN", "elements", true},
    [VT_SET] = {"set", "SCARD", "members", false},
    [VT_ZSET] = {"zset", "ZCARD", "members", false},
    [VT_HASH] = {"hash", "HLEN", "fields", false},
    [VT_STREAM] = {"stream", "XLEN", "entries", true},
    [VT_OTHER] = {"module type", NULL, "", true},
};

static enum vtype vtype_of(const char *s, size_t len)
{
    for (int t = VT_NONE; t < VT_OTHER; t++)
        if (strlen(vtypes[t].name) == len && memcmp(vtypes[t].name, s, len) == 0)
            return (enum vtype)t;
    return VT_OTHER;
}

static bool is_checkpoint_key(const char *k, size_t len)
{
    return len >= sizeof(CHECKPOINT_PREFIX) - 1 &&
           memcmp(k, CHECKPOINT_PREFIX, sizeof(CHECKPOINT_PREFIX) - 1) == 0;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------ connections */

struct vconn {
    int fd; /* -1: closed */
    redisReader *rd;
    char name[300];
    int db; /* selected; -1 unknown */
    char *out;
    size_t out_len, out_cap;
    size_t pending; /* commands sent or appended, not yet answered (invariant 1) */
};

static int vconn_open(struct vconn *c, const struct endpoint *ep, int timeout_ms,
                      struct rs_error *err)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->db = -1;
    snprintf(c->name, sizeof(c->name), "%s", ep->name);
    struct control_link cl;
    int rc = control_link_open(&cl, ep, timeout_ms, err);
    if (rc < 0)
        return rc;
    c->rd = redisReaderCreate();
    if (c->rd == NULL) {
        control_link_close(&cl);
        rs_error_set(err, RS_E_LIMIT, 0, "%s: out of memory", c->name);
        return -ENOMEM;
    }
    struct rs_slice pending;
    c->fd = control_link_detach(&cl, &pending);
    if (pending.len > 0)
        redisReaderFeed(c->rd, pending.p, pending.len);
    control_link_close(&cl); /* frees the buffer; the fd is ours now */
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return 0;
}

static void vconn_close(struct vconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->rd != NULL)
        redisReaderFree(c->rd);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static void vconn_reserve(struct vconn *c, size_t more)
{
    if (c->out_len + more <= c->out_cap)
        return;
    size_t cap = c->out_cap ? c->out_cap : 65536;
    while (cap < c->out_len + more)
        cap *= 2;
    char *p = realloc(c->out, cap);
    RS_ASSERT(p != NULL); /* a page's commands: out of memory here is the machine's end */
    c->out = p;
    c->out_cap = cap;
}

static void vconn_put(struct vconn *c, const void *p, size_t len)
{
    char hdr[1 + DECIMAL_MAX + 2];
    size_t h = 0;
    hdr[h++] = '$';
    h += decimal_u64(hdr + h, len);
    hdr[h++] = '\r';
    hdr[h++] = '\n';
    vconn_reserve(c, h + len + 2);
    memcpy(c->out + c->out_len, hdr, h);
    memcpy(c->out + c->out_len + h, p, len);
    c->out_len += h + len;
    c->out[c->out_len++] = '\r';
    c->out[c->out_len++] = '\n';
}

/* Appends a command of argc arguments (lens NULL: strlen) to the pipeline. */
static void vconn_cmd(struct vconn *c, int argc, const char *const *argv, const size_t *lens)
{
    char hdr[1 + DECIMAL_MAX + 2];
    size_t h = 0;
    hdr[h++] = '*';
    h += decimal_u64(hdr + h, (uint64_t)argc);
    hdr[h++] = '\r';
    hdr[h++] = '\n';
    vconn_reserve(c, h);
    memcpy(c->out + c->out_len, hdr, h);
    c->out_len += h;
    for (int i = 0; i < argc; i++)
        vconn_put(c, argv[i], lens ? lens[i] : strlen(argv[i]));
    c->pending++;
}

/* A command of a name and a key, and up to four more text arguments. */
static void vconn_key_cmd(struct vconn *c, const char *name, const char *key, size_t key_len,
                          const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *argv[6] = {name, key, a1, a2, a3, a4};
    size_t lens[6] = {strlen(name), key_len};
    int argc = 2;
    for (int i = 2; i < 6 && argv[i] != NULL; i++, argc++)
        lens[i] = strlen(argv[i]);
    vconn_cmd(c, argc, argv, lens);
}

static int vconn_flush(struct vconn *c, struct rs_error *err)
{
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        int e = n < 0 ? errno : EPIPE;
        rs_error_set(err, RS_E_TRUNCATED, 0, "writing to %s: %s", c->name,
                     e == EAGAIN ? "no progress within the timeout" : strerror(e));
        return e == EAGAIN ? -ETIMEDOUT : -e;
    }
    c->out_len = 0;
    return 0;
}

/* Reads the next reply (the caller frees it with freeReplyObject). */
static int vconn_reply(struct vconn *c, redisReply **out, struct rs_error *err)
{
    RS_ASSERT(c->pending > 0);
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(c->rd, &r) != REDIS_OK) {
            rs_error_set(err, RS_E_FORMAT, 0, "%s answered something that is not RESP: %s", c->name,
                         c->rd->errstr);
            return -EPROTO;
        }
        if (r != NULL) {
            c->pending--;
            *out = r;
            return 0;
        }
        char buf[VERIFY_RECV_BYTES];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            redisReaderFeed(c->rd, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            rs_error_set(err, RS_E_TRUNCATED, 0, "%s closed the connection", c->name);
            return -ECONNRESET;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rs_error_set(err, RS_E_TRUNCATED, 0, "%s did not answer within the timeout", c->name);
            return -ETIMEDOUT;
        }
        int e = errno;
        rs_error_set(err, RS_E_TRUNCATED, 0, "reading from %s: %s", c->name, strerror(e));
        return -e;
    }
}

/* An error reply that is not the data's own (WRONGTYPE): fails the worker,
 * quoting it. MOVED/ASK: the cluster changed while verify ran. */
static int vconn_refused(struct vconn *c, const char *what, const redisReply *r,
                         struct rs_error *err)
{
    char q[200];
    rs_escape_bytes(q, sizeof(q), r->str, r->len, 120);
    if (strncmp(r->str, "MOVED", 5) == 0 || strncmp(r->str, "ASK", 3) == 0)
        rs_error_set(err, RS_E_FORMAT, 0,
                     "%s answered %s with \"%s\": the cluster's slots moved while verify ran; "
                     "run it again once they are stable",
                     c->name, what, q);
    else
        rs_error_set(err, RS_E_FORMAT, 0, "%s refused %s: \"%s\"", c->name, what, q);
    return -EPROTO;
}

static bool is_wrongtype(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0;
}

/* Reads an integer reply into *v. WRONGTYPE sets *wrongtype (when not
 * NULL; else it is refused like any error). */
static int vconn_integer(struct vconn *c, const char *what, long long *v, bool *wrongtype,
                         struct rs_error *err)
{
    redisReply *r;
    int rc = vconn_reply(c, &r, err);
    if (rc < 0)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER) {
        *v = r->integer;
    } else if (wrongtype != NULL && is_wrongtype(r)) {
        *wrongtype = true;
        *v = -1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        rc = vconn_refused(c, what, r, err);
    } else {
        rs_error_set(err, RS_E_FORMAT, 0, "%s answered %s with a reply of type %d", c->name, what,
                     r->type);
        rc = -EPROTO;
    }
    freeReplyObject(r);
    return rc;
}

static int vconn_select(struct vconn *c, int db, struct rs_error *err)
{
    if (c->db == db)
        return 0;
    char d[DECIMAL_MAX + 1];
    d[decimal_u64(d, (uint64_t)db)] = '\0';
    const char *argv[2] = {"SELECT", d};
    vconn_cmd(c, 2, argv, NULL);
    int rc = vconn_flush(c, err);
    redisReply *r;
    if (rc == 0)
        rc = vconn_reply(c, &r, err);
    if (rc < 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR)
        rc = vconn_refused(c, "SELECT", r, err);
    freeReplyObject(r);
    if (rc == 0)
        c->db = db;
    return rc;
}

/* ------------------------------------------------------------ differences */

static void worker_keep(struct verify_worker *w, enum verify_kind kind, int db, const char *key,
                        size_t key_len, const char *detail)
{
    struct verify_config *cfg = w->cfg;
    /* A budget shared by the workers; relaxed: it orders nothing. */
    if (__atomic_fetch_add(&cfg->diffs_kept, 1, __ATOMIC_RELAXED) >= cfg->diffs_max) {
        w->overflow[kind]++;
        return;
    }
    if (w->ndiffs == w->diffs_cap) {
        size_t cap = w->diffs_cap ? w->diffs_cap * 2 : 64;
        struct verify_diff *p = realloc(w->diffs, cap * sizeof(*p));
        RS_ASSERT(p != NULL);
        w->diffs = p;
        w->diffs_cap = cap;
    }
    struct verify_diff *d = &w->diffs[w->ndiffs++];
    d->kind = kind;
    d->db = db;
    d->key = malloc(key_len ? key_len : 1);
    RS_ASSERT(d->key != NULL);
    memcpy(d->key, key, key_len);
    d->key_len = key_len;
    snprintf(d->detail, sizeof(d->detail), "%s", detail);
}

/* ------------------------------------------------------------ forward: a key's state */

/* One side's view of a key in a round. */
struct vside {
    long long ttl, len;
    struct value_digest d;
    uint64_t cursor;  /* SCAN cursor, or the offset of the next LRANGE / GETRANGE */
    char last_id[48]; /* streams: the last id read */
    bool is_complete; /* every chunk read */
    bool is_wrongtype;
    bool is_unstable; /* a reply that cannot be of a steady key (changed while read) */
};

struct vkey {
    const char *key; /* the source key */
    size_t len;
    const char *tkey; /* the target key (with --db-prefix's prefix) */
    size_t tlen;
    unsigned tnode;
    enum vtype type;
    char type_name[32]; /* the source's TYPE (a module type's name) */
    struct vside s, t;
    bool is_pending; /* not a string: its type is asked in round A */
    int verdict;     /* -1: equal (or gone from the source); else an enum verify_kind */
    char detail[128];
};

/* A forward worker's connections and scratch. */
struct fwd {
    struct verify_worker *w;
    const struct verify_config *cfg;
    struct vconn src;
    struct vconn scan; /* the source's SCAN, a page ahead */
    struct vconn *tgt; /* cfg->ntarget */
    struct rs_error *err;
    char *arena; /* target keys with a prefix */
    size_t arena_len, arena_cap;
    struct vkey *keys;
    size_t keys_cap;
    struct value_digest *found; /* per target node: names of keys found there (pass 1) */
};

/* A key name's hash for the digests of names (verify_check.h): the db is
 * the seed, so "k" of db 0 and "k" of db 1 differ. */
static uint64_t keyname_hash(int64_t db, const char *key, size_t len)
{
    return value_digest_hash(key, len, 0x6e616d6573ULL + (uint64_t)db * 0x9e3779b97f4a7c15ULL);
}

static void vkey_side_init(struct vside *s, enum vtype t)
{
    memset(s, 0, sizeof(*s));
    value_digest_init(&s->d, (uint64_t)t, vtypes[t].is_ordered);
}

/* The chunk command of a key's side: the first (first_round) or the next. */
static void append_chunk(struct vconn *c, enum vtype t, const char *key, size_t len,
                         const struct vside *sd, unsigned count)
{
    char a[DECIMAL_MAX + 1], b[DECIMAL_MAX + 1], n[DECIMAL_MAX + 1], id[52];
    n[decimal_u64(n, count)] = '\0';
    a[decimal_u64(a, sd->cursor)] = '\0';
    switch (t) {
    case VT_STRING: {
        uint64_t size = sd->cursor == 0 ? VERIFY_FIRST_BYTES : VERIFY_CHUNK_BYTES;
        b[decimal_u64(b, sd->cursor + size - 1)] = '\0';
        vconn_key_cmd(c, "GETRANGE", key, len, a, b, NULL, NULL);
        break;
    }
    case VT_LIST:
        b[decimal_u64(b, sd->cursor + count - 1)] = '\0';
        vconn_key_cmd(c, "LRANGE", key, len, a, b, NULL, NULL);
        break;
    case VT_SET:
        vconn_key_cmd(c, "SSCAN", key, len, a, "COUNT", n, NULL);
        break;
    case VT_HASH:
        vconn_key_cmd(c, "HSCAN", key, len, a, "COUNT", n, NULL);
        break;
    case VT_ZSET:
        vconn_key_cmd(c, "ZSCAN", key, len, a, "COUNT", n, NULL);
        break;
    case VT_STREAM:
        if (sd->last_id[0] == '\0')
            snprintf(id, sizeof(id), "-");
        else
            snprintf(id, sizeof(id), "(%s", sd->last_id);
        vconn_key_cmd(c, "XRANGE", key, len, id, "+", "COUNT", n);
        break;
    default:
        RS_ASSERT(!"no chunks for this type");
    }
}

static bool reply_is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

/* Digests one chunk reply into sd (invariant 2). A reply of the wrong shape
 * marks the side unstable (the key changed between two commands). */
static void take_chunk(enum vtype t, struct vside *sd, const redisReply *r, unsigned count)
{
    if (r->type == REDIS_REPLY_ERROR) {
        sd->is_unstable = true;
        sd->is_complete = true;
        return;
    }
    switch (t) {
    case VT_STRING: {
        if (r->type != REDIS_REPLY_STRING)
            goto unstable;
        uint64_t size = sd->cursor == 0 ? VERIFY_FIRST_BYTES : VERIFY_CHUNK_BYTES;
        value_digest_add(&sd->d, value_digest_bytes(r->str, r->len));
        sd->cursor += size;
        if (sd->cursor >= (uint64_t)sd->len || r->len < size)
            sd->is_complete = true;
        return;
    }
    case VT_LIST:
        if (r->type != REDIS_REPLY_ARRAY)
            goto unstable;
        for (size_t i = 0; i < r->elements; i++)
            value_digest_add(&sd->d, value_digest_bytes(r->element[i]->str, r->element[i]->len));
        sd->cursor += r->elements;
        if (r->elements < count || sd->cursor >= (uint64_t)sd->len)
            sd->is_complete = true;
        return;
    case VT_SET:
    case VT_HASH:
    case VT_ZSET: {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !reply_is_str(r->element[0]) ||
            r->element[1]->type != REDIS_REPLY_ARRAY)
            goto unstable;
        const redisReply *e = r->element[1];
        size_t step = t == VT_SET ? 1 : 2;
        if (e->elements % step != 0)
            goto unstable;
        for (size_t i = 0; i < e->elements; i += step) {
            const redisReply *m = e->element[i];
            uint64_t h;
            if (t == VT_SET)
                h = value_digest_bytes(m->str, m->len);
            else if (t == VT_HASH)
                h = value_digest_pair(m->str, m->len, e->element[i + 1]->str,
                                      e->element[i + 1]->len);
            else
                (void)value_digest_scored(m->str, m->len, e->element[i + 1]->str,
                                          e->element[i + 1]->len, &h);
            value_digest_add(&sd->d, h);
        }
        sd->cursor = strtoull(r->element[0]->str, NULL, 10);
        if (sd->cursor == 0)
            sd->is_complete = true;
        return;
    }
    case VT_STREAM:
        if (r->type != REDIS_REPLY_ARRAY)
            goto unstable;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *en = r->element[i];
            if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 || !reply_is_str(en->element[0]))
                goto unstable;
            uint64_t h = value_digest_bytes(en->element[0]->str, en->element[0]->len);
            const redisReply *fv = en->element[1];
            if (fv->type == REDIS_REPLY_ARRAY)
                for (size_t j = 0; j < fv->elements; j++)
                    h = value_digest_hash(fv->element[j]->str, fv->element[j]->len, h);
            value_digest_add(&sd->d, h);
            snprintf(sd->last_id, sizeof(sd->last_id), "%.*s", (int)en->element[0]->len,
                     en->element[0]->str);
        }
        if (r->elements < count)
            sd->is_complete = true;
        return;
    default:
        RS_ASSERT(!"no chunks for this type");
    }
unstable:
    sd->is_unstable = true;
    sd->is_complete = true;
}

/* Reads a chunk reply of a key's side from c and digests it. */
static int read_chunk(struct vconn *c, enum vtype t, struct vside *sd, unsigned count,
                      struct rs_error *err)
{
    redisReply *r;
    int rc = vconn_reply(c, &r, err);
    if (rc < 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR && !is_wrongtype(r))
        rc = vconn_refused(c, "a chunk of a value", r, err);
    else
        take_chunk(t, sd, r, count);
    freeReplyObject(r);
    return rc;
}

static void verdict(struct vkey *k, enum verify_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verdict(struct vkey *k, enum verify_kind kind, const char *fmt, ...)
{
    k->verdict = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->detail, sizeof(k->detail), fmt, ap);
    va_end(ap);
}

static void ttl_text(char *out, size_t cap, long long ttl)
{
    if (ttl < 0)
        snprintf(out, cap, "none");
    else
        snprintf(out, cap, "%lld ms", ttl);
}

/* The verdict of a key once both sides' TTL and length are in. True when
 * the values are still to compare. */
static bool judge_meta(const struct verify_config *cfg, struct vkey *k)
{
    if (k->t.ttl == -2) {
        verdict(k, VERIFY_MISSING, "%s on the source, not on the target", k->type_name);
        return false;
    }
    if (k->t.is_wrongtype) {
        verdict(k, VERIFY_TYPE, "%s on the source, another type on the target", k->type_name);
        return false;
    }
    long long st = k->s.ttl, tt = k->t.ttl;
    if (tt >= 0 && cfg->expiry_margin_ms > 0)
        tt = tt > cfg->expiry_margin_ms ? tt - cfg->expiry_margin_ms : 0;
    if ((st < 0) != (tt < 0) ||
        (st >= 0 && (st - tt > cfg->ttl_tolerance_ms || tt - st > cfg->ttl_tolerance_ms))) {
        char a[32], b[32];
        ttl_text(a, sizeof(a), st);
        ttl_text(b, sizeof(b), tt);
        verdict(k, VERIFY_TTL, "TTL %s on the source, %s on the target", a, b);
        return false;
    }
    if (k->type != VT_OTHER && k->s.len != k->t.len) {
        verdict(k, VERIFY_VALUE, "%s of %lld %s on the source, %lld on the target", k->type_name,
                k->s.len, vtypes[k->type].unit, k->t.len);
        return false;
    }
    return true;
}

static void judge_digest(struct vkey *k)
{
    bool is_count_checked = k->type != VT_STRING; /* a string's count is of chunks */
    if (k->s.is_unstable || k->t.is_unstable ||
        (is_count_checked &&
         (k->s.d.count != (uint64_t)k->s.len || k->t.d.count != (uint64_t)k->t.len))) {
        verdict(k, VERIFY_VALUE, "%s of %lld %s: changed while it was read", k->type_name, k->s.len,
                vtypes[k->type].unit);
        return;
    }
    if (!value_digest_equal(&k->s.d, &k->t.d))
        verdict(k, VERIFY_VALUE, "%s of %lld %s on each side: the values differ", k->type_name,
                k->s.len, vtypes[k->type].unit);
}

/* ------------------------------------------------------------ forward: rounds */

static int fwd_target_key(struct fwd *f, struct vkey *k, int db)
{
    const struct verify_config *cfg = f->cfg;
    k->tkey = k->key;
    k->tlen = k->len;
    if (cfg->route.prefix != NULL) {
        char pre[128];
        size_t pl = dest_route_prefix(&cfg->route, db, pre, sizeof(pre));
        if (f->arena_len + pl + k->len > f->arena_cap)
            return -ENOBUFS; /* the caller sized the arena for the page */
        char *p = f->arena + f->arena_len;
        memcpy(p, pre, pl);
        memcpy(p + pl, k->key, k->len);
        f->arena_len += pl + k->len;
        k->tkey = p;
        k->tlen = pl + k->len;
    }
    k->tnode = 0;
    if (cfg->target_topo != NULL) {
        int owner = cluster_topology_owner(cfg->target_topo, slot_of_key(k->tkey, k->tlen));
        RS_ASSERT(owner >= 0 && (unsigned)owner < cfg->ntarget);
        k->tnode = (unsigned)owner;
    }
    return 0;
}

/* Round S, both sides at once: every key taken for a string (most are):
 * PTTL and STRLEN (quick) or the first GETRANGE (full). A source key of
 * another type answers WRONGTYPE and waits for rounds A and B (is_pending):
 * strings, the bulk of most data sets, cost two commands a side and one
 * round trip, and TYPE is never asked for them. */
static int fwd_round_s(struct fwd *f, struct vkey *ks, size_t n)
{
    const struct verify_config *cfg = f->cfg;
    bool full = cfg->is_full;
    for (size_t i = 0; i < n; i++) {
        struct vkey *k = &ks[i];
        k->type = VT_STRING;
        snprintf(k->type_name, sizeof(k->type_name), "string");
        vkey_side_init(&k->s, VT_STRING);
        vkey_side_init(&k->t, VT_STRING);
        k->verdict = -1;
        k->is_pending = false;
        struct vconn *t = &f->tgt[k->tnode];
        vconn_key_cmd(&f->src, "PTTL", k->key, k->len, NULL, NULL, NULL, NULL);
        vconn_key_cmd(t, "PTTL", k->tkey, k->tlen, NULL, NULL, NULL, NULL);
        if (full) {
            append_chunk(&f->src, VT_STRING, k->key, k->len, &k->s, 0);
            append_chunk(t, VT_STRING, k->tkey, k->tlen, &k->t, 0);
        } else {
            vconn_key_cmd(&f->src, "STRLEN", k->key, k->len, NULL, NULL, NULL, NULL);
            vconn_key_cmd(t, "STRLEN", k->tkey, k->tlen, NULL, NULL, NULL, NULL);
        }
    }
    int rc = vconn_flush(&f->src, f->err);
    for (unsigned j = 0; j < cfg->ntarget && rc == 0; j++)
        rc = vconn_flush(&f->tgt[j], f->err);
    for (unsigned j = 0; j <= cfg->ntarget && rc == 0; j++) {
        /* j == 0: the source; then target node j - 1 */
        struct vconn *c = j == 0 ? &f->src : &f->tgt[j - 1];
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct vkey *k = &ks[i];
            if (j > 0 && k->tnode != j - 1)
                continue;
            struct vside *sd = j == 0 ? &k->s : &k->t;
            rc = vconn_integer(c, "PTTL", &sd->ttl, NULL, f->err);
            redisReply *r;
            if (rc == 0)
                rc = vconn_reply(c, &r, f->err);
            if (rc < 0)
                break;
            if (is_wrongtype(r)) {
                if (j == 0)
                    k->is_pending = true;
                else
                    sd->is_wrongtype = true;
            } else if (r->type == REDIS_REPLY_ERROR) {
                rc = vconn_refused(c, full ? "GETRANGE" : "STRLEN", r, f->err);
            } else if (full) {
                sd->len = LLONG_MAX; /* not known yet: complete by the chunk's size alone */
                take_chunk(VT_STRING, sd, r, 0);
                sd->len = sd->is_complete ? (long long)r->len : -1; /* -1: fwd_strlen's */
            } else {
                sd->len = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
            }
            freeReplyObject(r);
            if (j == 0 && !k->is_pending && k->s.ttl == -2)
                k->type = VT_NONE; /* gone from the source: nothing to compare */
        }
    }
    return rc;
}

/* A long string's true length on both sides (round S read its first
 * VERIFY_FIRST_BYTES only). */
static int fwd_strlen(struct fwd *f, struct vkey *k)
{
    struct vconn *t = &f->tgt[k->tnode];
    vconn_key_cmd(&f->src, "STRLEN", k->key, k->len, NULL, NULL, NULL, NULL);
    vconn_key_cmd(t, "STRLEN", k->tkey, k->tlen, NULL, NULL, NULL, NULL);
    int rc = vconn_flush(&f->src, f->err);
    if (rc == 0)
        rc = vconn_flush(t, f->err);
    bool wrong = false;
    if (rc == 0)
        rc = vconn_integer(&f->src, "STRLEN", &k->s.len, &wrong, f->err);
    if (rc == 0)
        rc = vconn_integer(t, "STRLEN", &k->t.len, &wrong, f->err);
    if (wrong)
        k->s.is_unstable = true;
    return rc;
}

/* Round A: the source's TYPE and PTTL of the keys that are not strings. */
static int fwd_round_a(struct fwd *f, struct vkey *ks, size_t n)
{
    struct vconn *s = &f->src;
    for (size_t i = 0; i < n; i++) {
        if (!ks[i].is_pending)
            continue;
        vconn_key_cmd(s, "TYPE", ks[i].key, ks[i].len, NULL, NULL, NULL, NULL);
        vconn_key_cmd(s, "PTTL", ks[i].key, ks[i].len, NULL, NULL, NULL, NULL);
    }
    int rc = vconn_flush(s, f->err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct vkey *k = &ks[i];
        if (!k->is_pending)
            continue;
        redisReply *r;
        rc = vconn_reply(s, &r, f->err);
        if (rc < 0)
            break;
        if (r->type == REDIS_REPLY_ERROR)
            rc = vconn_refused(s, "TYPE", r, f->err);
        else if (reply_is_str(r)) {
            k->type = vtype_of(r->str, r->len);
            snprintf(k->type_name, sizeof(k->type_name), "%.*s", (int)r->len, r->str);
        }
        freeReplyObject(r);
        long long ttl = -2;
        if (rc == 0)
            rc = vconn_integer(s, "PTTL", &ttl, NULL, f->err);
        if (ttl == -2)
            k->type = VT_NONE; /* expired or deleted since TYPE */
        vkey_side_init(&k->t, k->type);
        vkey_side_init(&k->s, k->type);
        k->s.ttl = ttl;
    }
    return rc;
}

/* Round B: the source's length and first chunk; the target's PTTL, length
 * (by the source's type: another type answers WRONGTYPE) and first chunk. */
static int fwd_round_b(struct fwd *f, struct vkey *ks, size_t n)
{
    const struct verify_config *cfg = f->cfg;
    bool full = cfg->is_full;
    for (size_t i = 0; i < n; i++) {
        struct vkey *k = &ks[i];
        if (k->type == VT_NONE || !k->is_pending)
            continue;
        struct vconn *t = &f->tgt[k->tnode];
        vconn_key_cmd(t, "PTTL", k->tkey, k->tlen, NULL, NULL, NULL, NULL);
        if (k->type == VT_OTHER) {
            /* a module type: its name compared (its value by DEBUG DIGEST-VALUE, later) */
            vconn_key_cmd(t, "TYPE", k->tkey, k->tlen, NULL, NULL, NULL, NULL);
            continue;
        }
        vconn_key_cmd(&f->src, vtypes[k->type].len_cmd, k->key, k->len, NULL, NULL, NULL, NULL);
        vconn_key_cmd(t, vtypes[k->type].len_cmd, k->tkey, k->tlen, NULL, NULL, NULL, NULL);
        if (full) {
            append_chunk(&f->src, k->type, k->key, k->len, &k->s, VERIFY_FIRST_ELEMS);
            append_chunk(t, k->type, k->tkey, k->tlen, &k->t, VERIFY_FIRST_ELEMS);
        }
    }
    int rc = vconn_flush(&f->src, f->err);
    for (unsigned j = 0; j < cfg->ntarget && rc == 0; j++)
        rc = vconn_flush(&f->tgt[j], f->err);
    if (rc < 0)
        return rc;
    /* the source's replies, in key order */
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct vkey *k = &ks[i];
        if (k->type == VT_NONE || k->type == VT_OTHER || !k->is_pending)
            continue;
        bool wrong = false;
        rc = vconn_integer(&f->src, vtypes[k->type].len_cmd, &k->s.len, &wrong, f->err);
        if (rc == 0 && wrong)
            k->s.is_unstable = true; /* the source key changed type since round A */
        if (rc == 0 && full)
            rc = read_chunk(&f->src, k->type, &k->s, VERIFY_FIRST_ELEMS, f->err);
    }
    /* each target node's, in key order */
    for (unsigned j = 0; j < cfg->ntarget && rc == 0; j++) {
        struct vconn *t = &f->tgt[j];
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct vkey *k = &ks[i];
            if (k->type == VT_NONE || k->tnode != j || !k->is_pending)
                continue;
            rc = vconn_integer(t, "PTTL", &k->t.ttl, NULL, f->err);
            if (rc < 0)
                break;
            if (k->type == VT_OTHER) {
                redisReply *r;
                rc = vconn_reply(t, &r, f->err);
                if (rc < 0)
                    break;
                if (k->t.ttl != -2 && (!reply_is_str(r) || strlen(k->type_name) != r->len ||
                                       memcmp(k->type_name, r->str, r->len) != 0))
                    k->t.is_wrongtype = true;
                freeReplyObject(r);
                continue;
            }
            rc = vconn_integer(t, vtypes[k->type].len_cmd, &k->t.len, &k->t.is_wrongtype, f->err);
            if (rc == 0 && full)
                rc = read_chunk(t, k->type, &k->t, VERIFY_FIRST_ELEMS, f->err);
        }
    }
    return rc;
}

/* The target's TYPE of the keys of another type, for the message. */
static int fwd_name_types(struct fwd *f, struct vkey *ks, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct vkey *k = &ks[i];
        if (k->verdict != VERIFY_TYPE)
            continue;
        struct vconn *t = &f->tgt[k->tnode];
        vconn_key_cmd(t, "TYPE", k->tkey, k->tlen, NULL, NULL, NULL, NULL);
        redisReply *r;
        rc = vconn_flush(t, f->err);
        if (rc == 0)
            rc = vconn_reply(t, &r, f->err);
        if (rc < 0)
            break;
        if (reply_is_str(r))
            verdict(k, VERIFY_TYPE, "%s on the source, %.*s on the target", k->type_name,
                    (int)r->len, r->str);
        freeReplyObject(r);
    }
    return rc;
}

/* DEBUG DIGEST-VALUE of a key on both sides: true when they agree. */
static int fwd_debug_equal(struct fwd *f, struct vkey *k, bool *is_equal)
{
    struct vconn *t = &f->tgt[k->tnode];
    const char *sargv[3] = {"DEBUG", "DIGEST-VALUE", k->key};
    size_t slens[3] = {5, 12, k->len};
    const char *targv[3] = {"DEBUG", "DIGEST-VALUE", k->tkey};
    size_t tlens[3] = {5, 12, k->tlen};
    vconn_cmd(&f->src, 3, sargv, slens);
    vconn_cmd(t, 3, targv, tlens);
    int rc = vconn_flush(&f->src, f->err);
    if (rc == 0)
        rc = vconn_flush(t, f->err);
    redisReply *a = NULL, *b = NULL;
    if (rc == 0)
        rc = vconn_reply(&f->src, &a, f->err);
    if (rc == 0)
        rc = vconn_reply(t, &b, f->err);
    *is_equal = rc == 0 && a->type == REDIS_REPLY_ARRAY && b->type == REDIS_REPLY_ARRAY &&
                a->elements == 1 && b->elements == 1 && a->element[0]->len == b->element[0]->len &&
                memcmp(a->element[0]->str, b->element[0]->str, a->element[0]->len) == 0;
    if (a != NULL)
        freeReplyObject(a);
    if (b != NULL)
        freeReplyObject(b);
    return rc;
}

/* A chunk size for the rest of a big key: about VERIFY_CHUNK_TARGET bytes
 * a reply, from the key's MEMORY USAGE over its length. */
static int fwd_chunk_elems(struct fwd *f, struct vkey *k, unsigned *count)
{
    *count = 256;
    if (k->type == VT_STRING)
        return 0;
    const char *argv[5] = {"MEMORY", "USAGE", k->key, "SAMPLES", "5"};
    size_t lens[5] = {6, 5, k->len, 7, 1};
    vconn_cmd(&f->src, 5, argv, lens);
    redisReply *r;
    int rc = vconn_flush(&f->src, f->err);
    if (rc == 0)
        rc = vconn_reply(&f->src, &r, f->err);
    if (rc < 0)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0 && k->s.len > 0) {
        long long per = r->integer / k->s.len;
        long long c = VERIFY_CHUNK_TARGET / (per > 0 ? per : 1);
        *count = (unsigned)(c < VERIFY_CHUNK_ELEMS_MIN   ? VERIFY_CHUNK_ELEMS_MIN
                            : c > VERIFY_CHUNK_ELEMS_MAX ? VERIFY_CHUNK_ELEMS_MAX
                                                         : c);
    }
    freeReplyObject(r);
    return 0;
}

/* The rest of a value bigger than its first chunk: both sides at once,
 * chunk after chunk, each reply bounded (invariant 2); or, where every node
 * allows it and the key is not too big to digest in one command, DEBUG
 * DIGEST-VALUE first (equal: done; else read natively to be sure). */
static int fwd_big_key(struct fwd *f, struct vkey *k)
{
    const struct verify_config *cfg = f->cfg;
    bool fits = k->type == VT_STRING ? k->s.len <= (long long)VERIFY_DEBUG_MAX_BYTES
                                     : k->s.len <= VERIFY_DEBUG_MAX_ELEMS;
    if (cfg->use_debug_digest && fits) {
        bool eq;
        int rc = fwd_debug_equal(f, k, &eq);
        if (rc < 0 || eq)
            return rc;
    }
    unsigned count;
    int rc = fwd_chunk_elems(f, k, &count);
    struct vconn *t = &f->tgt[k->tnode];
    uint64_t guard = (uint64_t)(k->s.len > k->t.len ? k->s.len : k->t.len) + 2;
    while (rc == 0 && !(k->s.is_complete && k->t.is_complete)) {
        if (!k->s.is_complete)
            append_chunk(&f->src, k->type, k->key, k->len, &k->s, count);
        if (!k->t.is_complete)
            append_chunk(t, k->type, k->tkey, k->tlen, &k->t, count);
        rc = vconn_flush(&f->src, f->err);
        if (rc == 0)
            rc = vconn_flush(t, f->err);
        if (rc == 0 && f->src.pending > 0)
            rc = read_chunk(&f->src, k->type, &k->s, count, f->err);
        if (rc == 0 && t->pending > 0)
            rc = read_chunk(t, k->type, &k->t, count, f->err);
        /* a key growing as fast as it is read: give up for this pass */
        if (k->s.d.count > 2 * guard + 1000 || k->t.d.count > 2 * guard + 1000) {
            k->s.is_unstable = true;
            break;
        }
    }
    if (rc == 0)
        judge_digest(k);
    return rc;
}

/* Checks ks[0..n) of source db `db` against the target: their verdicts. */
static int fwd_check(struct fwd *f, int db, struct vkey *ks, size_t n)
{
    const struct verify_config *cfg = f->cfg;
    int tdb = (int)dest_route_db(&cfg->route, db);
    RS_ASSERT(tdb >= 0);
    int rc = vconn_select(&f->src, db, f->err);
    for (unsigned j = 0; j < cfg->ntarget && rc == 0; j++)
        rc = vconn_select(&f->tgt[j], tdb, f->err);
    if (rc < 0)
        return rc;
    f->arena_len = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = fwd_target_key(f, &ks[i], db);
    if (rc == 0)
        rc = fwd_round_s(f, ks, n);
    bool any_pending = false;
    for (size_t i = 0; i < n; i++)
        any_pending |= ks[i].is_pending;
    if (rc == 0 && any_pending)
        rc = fwd_round_a(f, ks, n);
    if (rc == 0 && any_pending)
        rc = fwd_round_b(f, ks, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct vkey *k = &ks[i];
        if (k->type == VT_STRING && !k->is_pending && cfg->is_full && k->t.ttl != -2 &&
            !k->t.is_wrongtype && (k->s.len < 0 || k->t.len < 0))
            rc = fwd_strlen(f, k); /* longer than round S's GETRANGE on a side */
        if (rc < 0 || k->type == VT_NONE || !judge_meta(cfg, k) || !cfg->is_full)
            continue;
        if (k->type == VT_OTHER) {
            if (!cfg->use_debug_digest) {
                f->w->not_compared++;
                continue;
            }
            bool eq;
            rc = fwd_debug_equal(f, k, &eq);
            if (rc == 0 && !eq)
                verdict(k, VERIFY_VALUE, "%s: DEBUG DIGEST-VALUE differs", k->type_name);
            continue;
        }
        if (k->s.is_complete && k->t.is_complete)
            judge_digest(k);
        else
            rc = fwd_big_key(f, k);
    }
    if (rc == 0)
        rc = fwd_name_types(f, ks, n);
    return rc;
}

/* Room for n keys, and for their prefixed copies (klen bytes in all). */
static void fwd_reserve(struct fwd *f, size_t n, size_t klen)
{
    if (n > f->keys_cap) {
        free(f->keys);
        f->keys = malloc(n * sizeof(*f->keys));
        RS_ASSERT(f->keys != NULL);
        f->keys_cap = n;
    }
    size_t need = klen + n * 128;
    if (f->cfg->route.prefix != NULL && need > f->arena_cap) {
        free(f->arena);
        f->arena = malloc(need);
        RS_ASSERT(f->arena != NULL);
        f->arena_cap = need;
    }
}

/* ------------------------------------------------------------ reverse */

/* A target key's source: its db and key, or none (--db-prefix's pattern
 * does not match: a key no source db has). */
struct rkey {
    const char *tkey;
    size_t tlen;
    const char *skey;
    size_t slen;
    int sdb;       /* -1: no source db can hold it */
    unsigned cand; /* the candidate db tried (no --db-prefix) */
    unsigned snode;
    bool is_found;
    bool is_asked, needs_select; /* rev_lookup's, per round */
};

struct rev {
    struct verify_worker *w;
    struct verify_config *cfg;
    struct vconn tgt;
    struct vconn *src; /* cfg->nsource */
    struct rs_error *err;
    struct rkey *keys;
    size_t keys_cap;
    const char **argv;
    size_t *lens;
    size_t argv_cap;
};

/* The source dbs whose keys land in target db tdb, into out. */
static unsigned rev_candidates(const struct verify_config *cfg, int tdb, int *out)
{
    unsigned n = 0;
    unsigned max = cfg->source_topo != NULL ? 1 : DEST_ROUTE_MAX_DBS;
    for (unsigned s = 0; s < max; s++)
        if (dest_route_db(&cfg->route, s) == tdb)
            out[n++] = (int)s;
    return n;
}

/* --db-prefix undone: "db3:k" with "db{N}:" is db 3, key "k". */
static bool rev_unprefix(const char *pattern, struct rkey *k)
{
    const char *n = strstr(pattern, "{N}");
    size_t before = (size_t)(n - pattern), after = strlen(n + 3);
    if (k->tlen < before + 1 + after || memcmp(k->tkey, pattern, before) != 0)
        return false;
    size_t i = before;
    long db = 0;
    while (i < k->tlen && k->tkey[i] >= '0' && k->tkey[i] <= '9' && db < DEST_ROUTE_MAX_DBS)
        db = db * 10 + (k->tkey[i++] - '0');
    if (i == before || db >= DEST_ROUTE_MAX_DBS || k->tlen - i < after ||
        memcmp(k->tkey + i, n + 3, after) != 0)
        return false;
    k->sdb = (int)db;
    k->skey = k->tkey + i + after;
    k->slen = k->tlen - i - after;
    return true;
}

static void rev_argv_reserve(struct rev *r, size_t n)
{
    if (n <= r->argv_cap)
        return;
    free(r->argv);
    free(r->lens);
    r->argv = malloc(n * sizeof(*r->argv));
    r->lens = malloc(n * sizeof(*r->lens));
    RS_ASSERT(r->argv != NULL && r->lens != NULL);
    r->argv_cap = n;
}

/* One lookup round: every key not yet found, EXISTS in its current
 * candidate db on its source node. A standalone source with every such key
 * in one db: one EXISTS of them all first (all there: done). */
static int rev_lookup(struct rev *r, struct rkey *ks, size_t n)
{
    const struct verify_config *cfg = r->cfg;
    int rc = 0;
    if (cfg->source_topo == NULL) {
        size_t m = 0;
        int db = -1;
        bool one_db = true;
        for (size_t i = 0; i < n; i++) {
            if (ks[i].is_found || ks[i].sdb < 0)
                continue;
            if (db >= 0 && ks[i].sdb != db)
                one_db = false;
            db = ks[i].sdb;
            m++;
        }
        if (m == 0)
            return 0;
        if (one_db) {
            rev_argv_reserve(r, m + 1);
            r->argv[0] = "EXISTS";
            r->lens[0] = 6;
            size_t a = 1;
            for (size_t i = 0; i < n; i++)
                if (!ks[i].is_found && ks[i].sdb >= 0) {
                    r->argv[a] = ks[i].skey;
                    r->lens[a++] = ks[i].slen;
                }
            rc = vconn_select(&r->src[0], db, r->err);
            if (rc < 0)
                return rc;
            vconn_cmd(&r->src[0], (int)a, r->argv, r->lens);
            long long found = 0;
            rc = vconn_flush(&r->src[0], r->err);
            if (rc == 0)
                rc = vconn_integer(&r->src[0], "EXISTS", &found, NULL, r->err);
            if (rc < 0)
                return rc;
            if (found == (long long)m) {
                for (size_t i = 0; i < n; i++)
                    if (ks[i].sdb >= 0)
                        ks[i].is_found = true;
                return 0;
            }
        }
    }
    /* per key, each node's in one pipeline, a SELECT where the db changes */
    for (unsigned j = 0; j < cfg->nsource && rc == 0; j++) {
        struct vconn *c = &r->src[j];
        int db = c->db;
        size_t asked = 0;
        for (size_t i = 0; i < n; i++) {
            struct rkey *k = &ks[i];
            k->is_asked = !k->is_found && k->sdb >= 0 && k->snode == j;
            k->needs_select = k->is_asked && k->sdb != db;
            if (!k->is_asked)
                continue;
            if (k->needs_select) {
                char d[DECIMAL_MAX + 1];
                d[decimal_u64(d, (uint64_t)k->sdb)] = '\0';
                const char *argv[2] = {"SELECT", d};
                vconn_cmd(c, 2, argv, NULL);
                db = k->sdb;
            }
            vconn_key_cmd(c, "EXISTS", k->skey, k->slen, NULL, NULL, NULL, NULL);
            asked++;
        }
        if (asked == 0)
            continue;
        rc = vconn_flush(c, r->err);
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct rkey *k = &ks[i];
            if (!k->is_asked)
                continue;
            if (k->needs_select) {
                redisReply *sel;
                rc = vconn_reply(c, &sel, r->err);
                if (rc < 0)
                    break;
                if (sel->type == REDIS_REPLY_ERROR)
                    rc = vconn_refused(c, "SELECT", sel, r->err);
                freeReplyObject(sel);
                if (rc < 0)
                    break;
                c->db = k->sdb;
            }
            long long v = 0;
            rc = vconn_integer(c, "EXISTS", &v, NULL, r->err);
            k->is_found = v > 0;
        }
    }
    return rc;
}

/* Checks target keys ks[0..n) of target db tdb: is_found tells which the
 * source holds (in any db that maps to tdb). */
static int rev_check(struct rev *r, int tdb, struct rkey *ks, size_t n)
{
    const struct verify_config *cfg = r->cfg;
    int cands[DEST_ROUTE_MAX_DBS];
    unsigned ncands = cfg->route.prefix != NULL ? 0 : rev_candidates(cfg, tdb, cands);
    for (size_t i = 0; i < n; i++) {
        struct rkey *k = &ks[i];
        k->is_found = false;
        k->cand = 0;
        k->skey = k->tkey;
        k->slen = k->tlen;
        if (cfg->route.prefix != NULL) {
            if (!rev_unprefix(cfg->route.prefix, k) || dest_route_db(&cfg->route, k->sdb) != tdb)
                k->sdb = -1;
        } else {
            k->sdb = ncands > 0 ? cands[0] : -1;
        }
        k->snode = 0;
        if (cfg->source_topo != NULL && k->sdb >= 0) {
            int owner = cluster_topology_owner(cfg->source_topo, slot_of_key(k->skey, k->slen));
            RS_ASSERT(owner >= 0 && (unsigned)owner < cfg->nsource);
            k->snode = (unsigned)owner;
        }
    }
    for (unsigned c = 0;; c++) {
        int rc = rev_lookup(r, ks, n);
        if (rc < 0)
            return rc;
        if (c + 1 >= ncands)
            return 0;
        /* the next candidate db for those not found */
        bool more = false;
        for (size_t i = 0; i < n; i++)
            if (!ks[i].is_found && ks[i].sdb >= 0) {
                ks[i].sdb = cands[c + 1];
                more = true;
            }
        if (!more)
            return 0;
    }
}

/* ------------------------------------------------------------ scanning */

/* SCAN of one page: the next cursor and the reply holding the keys. */
static void scan_send(struct vconn *c, uint64_t cursor, unsigned count)
{
    char cur[DECIMAL_MAX + 1], cnt[DECIMAL_MAX + 1];
    cur[decimal_u64(cur, cursor)] = '\0';
    cnt[decimal_u64(cnt, count)] = '\0';
    const char *argv[4] = {"SCAN", cur, "COUNT", cnt};
    vconn_cmd(c, 4, argv, NULL);
}

/* The reply to a SCAN sent: the next cursor and the reply holding the keys
 * (the caller frees it). */
static int scan_read(struct vconn *c, uint64_t *next, redisReply **out, struct rs_error *err)
{
    redisReply *r;
    int rc = vconn_reply(c, &r, err);
    if (rc < 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = vconn_refused(c, "SCAN", r, err);
        freeReplyObject(r);
        return rc;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !reply_is_str(r->element[0]) ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        rs_error_set(err, RS_E_FORMAT, 0, "%s answered SCAN with a malformed reply", c->name);
        return -EPROTO;
    }
    *next = strtoull(r->element[0]->str, NULL, 10);
    *out = r;
    return 0;
}

/* One page: SCAN sent and its reply read. */
static int scan_page(struct vconn *c, uint64_t cursor, unsigned count, uint64_t *next,
                     redisReply **out, struct rs_error *err)
{
    scan_send(c, cursor, count);
    int rc = vconn_flush(c, err);
    return rc < 0 ? rc : scan_read(c, next, out, err);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Pass 1 of a forward worker: every page of every compared db. */
static int fwd_pass1(struct fwd *f)
{
    const struct verify_config *cfg = f->cfg;
    int rc = 0;
    for (unsigned d = 0; d < cfg->nsource_dbs && rc == 0; d++) {
        int db = cfg->source_dbs[d];
        /* SCAN on a connection of its own, a page ahead: the source walks
         * its table for page i + 1 while page i's rounds are under way */
        rc = vconn_select(&f->scan, db, f->err);
        uint64_t cursor = 0;
        if (rc == 0) {
            scan_send(&f->scan, 0, cfg->scan_count);
            rc = vconn_flush(&f->scan, f->err);
        }
        while (rc == 0) {
            redisReply *page;
            rc = scan_read(&f->scan, &cursor, &page, f->err);
            if (rc < 0)
                break;
            if (cursor != 0) {
                scan_send(&f->scan, cursor, cfg->scan_count);
                rc = vconn_flush(&f->scan, f->err);
            }
            const redisReply *keys = page->element[1];
            size_t klen = 0;
            for (size_t i = 0; i < keys->elements; i++)
                klen += keys->element[i]->len;
            fwd_reserve(f, keys->elements, klen);
            size_t n = 0;
            for (size_t i = 0; i < keys->elements; i++) {
                const redisReply *e = keys->element[i];
                if (!reply_is_str(e) || is_checkpoint_key(e->str, e->len))
                    continue;
                memset(&f->keys[n], 0, sizeof(f->keys[n]));
                f->keys[n].key = e->str;
                f->keys[n++].len = e->len;
            }
            if (n > 0 && rc == 0)
                rc = fwd_check(f, db, f->keys, n);
            int64_t tdb = dest_route_db(&cfg->route, db);
            for (size_t i = 0; i < n && rc == 0; i++) {
                struct vkey *k = &f->keys[i];
                if (k->type != VT_NONE)
                    f->w->keys++;
                if (k->type != VT_NONE && k->t.ttl != -2)
                    value_digest_add(&f->found[k->tnode], keyname_hash(tdb, k->tkey, k->tlen));
                if (k->verdict >= 0)
                    worker_keep(f->w, (enum verify_kind)k->verdict, db, k->key, k->len, k->detail);
            }
            freeReplyObject(page);
            if (cursor == 0)
                break;
        }
    }
    return rc;
}

/* A later pass of a forward worker: its differences checked again, in runs
 * of one db; those equal now are dropped. */
static int fwd_recheck(struct fwd *f)
{
    struct verify_worker *w = f->w;
    size_t kept = 0, i = 0;
    int rc = 0;
    while (i < w->ndiffs && rc == 0) {
        int db = w->diffs[i].db;
        size_t n = 0, klen = 0;
        while (i + n < w->ndiffs && n < f->cfg->scan_count && w->diffs[i + n].db == db)
            klen += w->diffs[i + n++].key_len;
        fwd_reserve(f, n, klen);
        for (size_t x = 0; x < n; x++) {
            memset(&f->keys[x], 0, sizeof(f->keys[x]));
            f->keys[x].key = w->diffs[i + x].key;
            f->keys[x].len = w->diffs[i + x].key_len;
        }
        rc = fwd_check(f, db, f->keys, n);
        for (size_t x = 0; x < n; x++) {
            struct verify_diff *d = &w->diffs[i + x];
            const struct vkey *k = &f->keys[x];
            if (rc == 0 && k->verdict < 0) {
                free(d->key);
                continue;
            }
            if (rc == 0) {
                d->kind = (enum verify_kind)k->verdict;
                snprintf(d->detail, sizeof(d->detail), "%s", k->detail);
            }
            w->diffs[kept++] = *d;
        }
        i += n;
    }
    while (i < w->ndiffs) /* after a failure: keep the rest as they were */
        w->diffs[kept++] = w->diffs[i++];
    w->ndiffs = kept;
    return rc;
}

static int fwd_run(struct verify_worker *w)
{
    const struct verify_config *cfg = w->cfg;
    struct fwd f = {.w = w, .cfg = cfg, .err = &w->err};
    f.tgt = calloc(cfg->ntarget, sizeof(*f.tgt));
    RS_ASSERT(f.tgt != NULL);
    for (unsigned j = 0; j < cfg->ntarget; j++)
        f.tgt[j].fd = -1;
    f.scan.fd = -1;
    int rc = vconn_open(&f.src, &cfg->source_eps[w->node], cfg->timeout_ms, f.err);
    if (rc == 0)
        rc = vconn_open(&f.scan, &cfg->source_eps[w->node], cfg->timeout_ms, f.err);
    for (unsigned j = 0; j < cfg->ntarget && rc == 0; j++)
        rc = vconn_open(&f.tgt[j], &cfg->target_eps[j], cfg->timeout_ms, f.err);
    f.found = calloc(cfg->ntarget, sizeof(*f.found)); /* all zero: empty order-free digests */
    RS_ASSERT(f.found != NULL);
    uint64_t t0 = now_us();
    if (rc == 0)
        rc = fwd_pass1(&f);
    w->pass1_us = now_us() - t0;
    verify_forward_done(w->cfg, rc == 0 ? f.found : NULL);
    free(f.found);
    w->passes_run = 1;
    for (unsigned p = 2; p <= cfg->passes && rc == 0 && w->ndiffs > 0; p++) {
        sleep_ms(cfg->pass_delay_ms);
        rc = fwd_recheck(&f);
        w->passes_run = p;
    }
    vconn_close(&f.src);
    vconn_close(&f.scan);
    for (unsigned j = 0; j < cfg->ntarget; j++)
        vconn_close(&f.tgt[j]);
    free(f.tgt);
    free(f.keys);
    free(f.arena);
    return rc;
}

static void rev_reserve(struct rev *r, size_t n)
{
    if (n <= r->keys_cap)
        return;
    free(r->keys);
    r->keys = malloc(n * sizeof(*r->keys));
    RS_ASSERT(r->keys != NULL);
    r->keys_cap = n;
}

static int rev_pass1(struct rev *r)
{
    const struct verify_config *cfg = r->cfg;
    int rc = 0;
    for (unsigned d = 0; d < cfg->ntarget_dbs && rc == 0; d++) {
        int db = cfg->target_dbs[d];
        uint64_t cursor = 0;
        do {
            redisReply *page;
            rc = vconn_select(&r->tgt, db, r->err);
            if (rc == 0)
                rc = scan_page(&r->tgt, cursor, cfg->scan_count, &cursor, &page, r->err);
            if (rc < 0)
                break;
            const redisReply *keys = page->element[1];
            rev_reserve(r, keys->elements);
            size_t n = 0;
            for (size_t i = 0; i < keys->elements; i++) {
                const redisReply *e = keys->element[i];
                if (!reply_is_str(e) || is_checkpoint_key(e->str, e->len))
                    continue;
                r->keys[n].tkey = e->str;
                r->keys[n++].tlen = e->len;
            }
            if (n > 0)
                rc = rev_check(r, db, r->keys, n);
            for (size_t i = 0; i < n && rc == 0; i++) {
                r->w->keys++;
                if (!r->keys[i].is_found)
                    worker_keep(r->w, VERIFY_EXTRA, db, r->keys[i].tkey, r->keys[i].tlen,
                                "on the target, not on the source");
            }
            freeReplyObject(page);
        } while (rc == 0 && cursor != 0);
    }
    return rc;
}

/* Pass 1's first half: the digest of the names of every key of the node
 * (in the dbs compared), into *d, counted in w->keys. */
static int rev_digest_names(struct rev *r, struct value_digest *d)
{
    const struct verify_config *cfg = r->cfg;
    int rc = 0;
    for (unsigned x = 0; x < cfg->ntarget_dbs && rc == 0; x++) {
        int db = cfg->target_dbs[x];
        uint64_t cursor = 0;
        do {
            redisReply *page;
            rc = vconn_select(&r->tgt, db, r->err);
            if (rc == 0)
                rc = scan_page(&r->tgt, cursor, cfg->scan_count, &cursor, &page, r->err);
            if (rc < 0)
                break;
            const redisReply *keys = page->element[1];
            for (size_t i = 0; i < keys->elements; i++) {
                const redisReply *e = keys->element[i];
                if (!reply_is_str(e) || is_checkpoint_key(e->str, e->len))
                    continue;
                value_digest_add(d, keyname_hash(db, e->str, e->len));
                r->w->keys++;
            }
            freeReplyObject(page);
        } while (rc == 0 && cursor != 0);
    }
    return rc;
}

/* Waits for every forward worker's pass 1; the names they found on this
 * node into *found. False when one failed (no verdict anyway). */
static bool rev_wait_forward(struct rev *r, struct value_digest *found)
{
    struct verify_config *cfg = r->cfg;
    pthread_mutex_lock(&cfg->lock);
    while (cfg->forward_left > 0)
        pthread_cond_wait(&cfg->forward_done, &cfg->lock);
    *found = cfg->found_on_target[r->w->node];
    bool ok = !cfg->is_forward_failed;
    pthread_mutex_unlock(&cfg->lock);
    return ok;
}

void verify_config_init_shared(struct verify_config *cfg, unsigned nforward)
{
    pthread_mutex_init(&cfg->lock, NULL);
    pthread_cond_init(&cfg->forward_done, NULL);
    cfg->forward_left = nforward;
    cfg->found_on_target = calloc(cfg->ntarget ? cfg->ntarget : 1, sizeof(struct value_digest));
    RS_ASSERT(cfg->found_on_target != NULL);
}

void verify_config_deinit(struct verify_config *cfg)
{
    if (cfg->found_on_target == NULL)
        return;
    pthread_mutex_destroy(&cfg->lock);
    pthread_cond_destroy(&cfg->forward_done);
    free(cfg->found_on_target);
    cfg->found_on_target = NULL;
}

void verify_forward_done(struct verify_config *cfg, const struct value_digest *found)
{
    pthread_mutex_lock(&cfg->lock);
    if (found == NULL)
        cfg->is_forward_failed = true;
    for (unsigned j = 0; found != NULL && j < cfg->ntarget; j++) {
        /* order-free digests add up lane by lane */
        cfg->found_on_target[j].a += found[j].a;
        cfg->found_on_target[j].b += found[j].b;
        cfg->found_on_target[j].count += found[j].count;
    }
    RS_ASSERT(cfg->forward_left > 0);
    if (--cfg->forward_left == 0)
        pthread_cond_broadcast(&cfg->forward_done);
    pthread_mutex_unlock(&cfg->lock);
}

/* Extra keys checked again: still on the target (EXISTS there), and still
 * on no source db. */
static int rev_recheck(struct rev *r)
{
    struct verify_worker *w = r->w;
    size_t kept = 0, i = 0;
    int rc = 0;
    while (i < w->ndiffs && rc == 0) {
        int db = w->diffs[i].db;
        size_t n = 0;
        while (i + n < w->ndiffs && n < r->cfg->scan_count && w->diffs[i + n].db == db)
            n++;
        rev_reserve(r, n);
        rc = vconn_select(&r->tgt, db, r->err);
        for (size_t x = 0; x < n && rc == 0; x++) {
            r->keys[x].tkey = w->diffs[i + x].key;
            r->keys[x].tlen = w->diffs[i + x].key_len;
            vconn_key_cmd(&r->tgt, "EXISTS", r->keys[x].tkey, r->keys[x].tlen, NULL, NULL, NULL,
                          NULL);
        }
        if (rc == 0)
            rc = vconn_flush(&r->tgt, r->err);
        bool *gone = calloc(n, sizeof(*gone));
        RS_ASSERT(gone != NULL);
        for (size_t x = 0; x < n && rc == 0; x++) {
            long long v = 0;
            rc = vconn_integer(&r->tgt, "EXISTS", &v, NULL, r->err);
            gone[x] = v == 0;
        }
        if (rc == 0)
            rc = rev_check(r, db, r->keys, n);
        for (size_t x = 0; x < n; x++) {
            struct verify_diff *d = &w->diffs[i + x];
            if (rc == 0 && (gone[x] || r->keys[x].is_found)) {
                free(d->key);
                continue;
            }
            w->diffs[kept++] = *d;
        }
        free(gone);
        i += n;
    }
    while (i < w->ndiffs)
        w->diffs[kept++] = w->diffs[i++];
    w->ndiffs = kept;
    return rc;
}

static int rev_run(struct verify_worker *w)
{
    struct verify_config *cfg = w->cfg;
    struct rev r = {.w = w, .cfg = cfg, .err = &w->err};
    r.src = calloc(cfg->nsource, sizeof(*r.src));
    RS_ASSERT(r.src != NULL);
    for (unsigned j = 0; j < cfg->nsource; j++)
        r.src[j].fd = -1;
    int rc = vconn_open(&r.tgt, &cfg->target_eps[w->node], cfg->timeout_ms, r.err);
    for (unsigned j = 0; j < cfg->nsource && rc == 0; j++)
        rc = vconn_open(&r.src[j], &cfg->source_eps[j], cfg->timeout_ms, r.err);
    uint64_t t0 = now_us();
    struct value_digest names = {0}, found = {0};
    if (rc == 0)
        rc = rev_digest_names(&r, &names);
    bool forward_ok = rev_wait_forward(&r, &found);
    if (rc == 0 && forward_ok && !value_digest_equal(&names, &found)) {
        w->keys = 0; /* counted again by the EXISTS pass */
        rc = rev_pass1(&r);
    }
    w->pass1_us = now_us() - t0;
    w->passes_run = 1;
    for (unsigned p = 2; p <= cfg->passes && rc == 0 && w->ndiffs > 0; p++) {
        sleep_ms(cfg->pass_delay_ms);
        rc = rev_recheck(&r);
        w->passes_run = p;
    }
    vconn_close(&r.tgt);
    for (unsigned j = 0; j < cfg->nsource; j++)
        vconn_close(&r.src[j]);
    free(r.src);
    free(r.keys);
    free(r.argv);
    free(r.lens);
    return rc;
}

/* ------------------------------------------------------------ threads */

static void *verify_worker_main(void *arg)
{
    struct verify_worker *w = arg;
    w->rc = w->is_reverse ? rev_run(w) : fwd_run(w);
    return NULL;
}

int verify_worker_start(struct verify_worker *w)
{
    int rc = pthread_create(&w->thread, NULL, verify_worker_main, w);
    if (rc != 0) {
        rs_error_set(&w->err, RS_E_LIMIT, 0, "cannot start a verify thread: %s", strerror(rc));
        w->rc = -rc;
        return -rc;
    }
    w->is_started = true;
    return 0;
}

void verify_worker_join(struct verify_worker *w)
{
    if (w->is_started)
        pthread_join(w->thread, NULL);
    w->is_started = false;
}

void verify_worker_deinit(struct verify_worker *w)
{
    for (size_t i = 0; i < w->ndiffs; i++)
        free(w->diffs[i].key);
    free(w->diffs);
    w->diffs = NULL;
    w->ndiffs = w->diffs_cap = 0;
}
