/* redis_model.c - a data set as plain values, built from a server or from
 * `ringsync inspect` output, and compared key by key. */
#include "redis_model.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "redis_fixture.h"

#define SERVER_KEY_BATCH 256

/* ================================================================ values */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n > 0 ? n : 1, size);
    cr_assert(p != NULL, "out of memory");
    return p;
}

static struct model_bytes bytes_dup(const void *p, size_t len)
{
    struct model_bytes b = {.p = malloc(len + 1), .len = len};
    cr_assert(b.p != NULL, "out of memory");
    if (len > 0)
        memcpy(b.p, p, len);
    b.p[len] = '\0';
    return b;
}

static int bytes_cmp(const struct model_bytes *a, const struct model_bytes *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n > 0 ? memcmp(a->p, b->p, n) : 0;
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static bool bytes_eq(const struct model_bytes *a, const struct model_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* qsort, which must not be given a NULL array even when it is empty. */
static void sort_array(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

static int bytes_qcmp(const void *a, const void *b)
{
    return bytes_cmp(a, b);
}

static int id_cmp(const struct model_id *a, const struct model_id *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

static int id_qcmp(const void *a, const void *b)
{
    return id_cmp(a, b);
}

static int pel_qcmp(const void *a, const void *b)
{
    return id_cmp(&((const struct model_pel *)a)->id, &((const struct model_pel *)b)->id);
}

static int consumer_qcmp(const void *a, const void *b)
{
    return bytes_cmp(&((const struct model_consumer *)a)->name,
                     &((const struct model_consumer *)b)->name);
}

static int group_qcmp(const void *a, const void *b)
{
    return bytes_cmp(&((const struct model_group *)a)->name,
                     &((const struct model_group *)b)->name);
}

static int key_qcmp(const void *a, const void *b)
{
    return bytes_cmp(&((const struct model_key *)a)->key, &((const struct model_key *)b)->key);
}

static bool parse_id(const char *s, size_t len, struct model_id *id)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *dash = strchr(buf, '-');
    if (dash == NULL || dash == buf || dash[1] == '\0')
        return false;
    *dash = '\0';
    char *end;
    errno = 0;
    unsigned long long ms = strtoull(buf, &end, 10);
    if (errno != 0 || *end != '\0' || buf[0] == '-')
        return false;
    unsigned long long seq = strtoull(dash + 1, &end, 10);
    if (errno != 0 || *end != '\0' || dash[1] == '-')
        return false;
    id->ms = ms;
    id->seq = seq;
    return true;
}

const char *model_escape(char *buf, size_t cap, const void *p, size_t len, size_t max_in)
{
    const unsigned char *s = p;
    size_t o = 0, shown = len < max_in ? len : max_in;
    if (cap == 0)
        return buf;
    for (size_t i = 0; i < shown && o + 8 < cap; i++) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"')
            buf[o++] = (char)ch;
        else if (ch == '\\' || ch == '"')
            o += (size_t)snprintf(buf + o, cap - o, "\\%c", ch);
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    buf[o] = '\0';
    if (shown < len && o + 24 < cap)
        snprintf(buf + o, cap - o, "...(%zu bytes)", len);
    return buf;
}

const char *model_type_name(int type)
{
    static const char *const names[] = {"string", "list",   "set",   "zset",
                                        "hash",   "stream", "module"};
    if (type < 0 || (size_t)type >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[type];
}

static int type_from_name(const char *s, size_t len)
{
    for (int t = MODEL_STRING; t <= MODEL_MODULE; t++) {
        const char *n = model_type_name(t);
        if (strlen(n) == len && memcmp(n, s, len) == 0)
            return t;
    }
    return -1;
}

/* ================================================================ the model */

static void bytes_free(struct model_bytes *b)
{
    free(b->p);
    b->p = NULL;
}

static void stream_free(struct model_stream *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nentries; i++) {
        for (size_t j = 0; j < s->entries[i].nfv; j++)
            bytes_free(&s->entries[i].fv[j]);
        free(s->entries[i].fv);
    }
    free(s->entries);
    for (size_t i = 0; i < s->ngroups; i++) {
        struct model_group *g = &s->groups[i];
        bytes_free(&g->name);
        free(g->pel);
        for (size_t j = 0; j < g->nconsumers; j++) {
            bytes_free(&g->consumers[j].name);
            free(g->consumers[j].pel);
        }
        free(g->consumers);
    }
    free(s->groups);
    free(s);
}

static void key_free(struct model_key *k)
{
    bytes_free(&k->key);
    bytes_free(&k->str);
    for (size_t i = 0; i < k->n; i++) {
        if (k->elems != NULL)
            bytes_free(&k->elems[i]);
        if (k->values != NULL)
            bytes_free(&k->values[i]);
    }
    free(k->elems);
    free(k->values);
    free(k->scores);
    stream_free(k->stream);
}

void redis_model_free(struct redis_model *m)
{
    for (unsigned db = 0; db < MODEL_DBS; db++) {
        for (size_t i = 0; i < m->dbs[db].nkeys; i++)
            key_free(&m->dbs[db].keys[i]);
        free(m->dbs[db].keys);
    }
    for (size_t i = 0; i < m->nfunctions; i++)
        bytes_free(&m->functions[i]);
    free(m->functions);
    memset(m, 0, sizeof(*m));
}

static struct model_key *db_add_key(struct model_db *d)
{
    if (d->nkeys == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->keys = realloc(d->keys, d->cap * sizeof(*d->keys));
        cr_assert(d->keys != NULL, "out of memory");
    }
    struct model_key *k = &d->keys[d->nkeys++];
    memset(k, 0, sizeof(*k));
    k->expire_ms = -1;
    return k;
}

static void model_add_function(struct redis_model *m, struct model_bytes code)
{
    m->functions = realloc(m->functions, (m->nfunctions + 1) * sizeof(*m->functions));
    cr_assert(m->functions != NULL, "out of memory");
    m->functions[m->nfunctions++] = code;
}

struct pair {
    struct model_bytes a;
    struct model_bytes b;
    double score;
};

static int pair_qcmp(const void *x, const void *y)
{
    return bytes_cmp(&((const struct pair *)x)->a, &((const struct pair *)y)->a);
}

/* Sorts hash fields (with values) or zset members (with scores). */
static void sort_pairs(struct model_key *k)
{
    if (k->n < 2)
        return;
    struct pair *ps = xcalloc(k->n, sizeof(*ps));
    for (size_t i = 0; i < k->n; i++) {
        ps[i].a = k->elems[i];
        if (k->values != NULL)
            ps[i].b = k->values[i];
        if (k->scores != NULL)
            ps[i].score = k->scores[i];
    }
    sort_array(ps, k->n, sizeof(*ps), pair_qcmp);
    for (size_t i = 0; i < k->n; i++) {
        k->elems[i] = ps[i].a;
        if (k->values != NULL)
            k->values[i] = ps[i].b;
        if (k->scores != NULL)
            k->scores[i] = ps[i].score;
    }
    free(ps);
}

/* Puts a model in canonical order. */
static void model_canonicalize(struct redis_model *m)
{
    for (unsigned db = 0; db < MODEL_DBS; db++) {
        struct model_db *d = &m->dbs[db];
        for (size_t i = 0; i < d->nkeys; i++) {
            struct model_key *k = &d->keys[i];
            if (k->type == MODEL_SET)
                sort_array(k->elems, k->n, sizeof(*k->elems), bytes_qcmp);
            else if (k->type == MODEL_HASH || k->type == MODEL_ZSET)
                sort_pairs(k);
            else if (k->type == MODEL_STREAM && k->stream != NULL) {
                struct model_stream *s = k->stream;
                sort_array(s->groups, s->ngroups, sizeof(*s->groups), group_qcmp);
                for (size_t g = 0; g < s->ngroups; g++) {
                    struct model_group *gr = &s->groups[g];
                    sort_array(gr->pel, gr->npel, sizeof(*gr->pel), pel_qcmp);
                    sort_array(gr->consumers, gr->nconsumers, sizeof(*gr->consumers),
                               consumer_qcmp);
                    for (size_t c = 0; c < gr->nconsumers; c++)
                        sort_array(gr->consumers[c].pel, gr->consumers[c].npel,
                                   sizeof(*gr->consumers[c].pel), id_qcmp);
                }
            }
        }
        sort_array(d->keys, d->nkeys, sizeof(*d->keys), key_qcmp);
    }
    sort_array(m->functions, m->nfunctions, sizeof(*m->functions), bytes_qcmp);
}

const struct model_key *redis_model_find(const struct redis_model *m, unsigned db, const void *key,
                                         size_t len)
{
    if (db >= MODEL_DBS)
        return NULL;
    struct model_key probe = {.key = {.p = (char *)key, .len = len}};
    if (m->dbs[db].nkeys == 0)
        return NULL;
    return bsearch(&probe, m->dbs[db].keys, m->dbs[db].nkeys, sizeof(probe), key_qcmp);
}

size_t redis_model_count(const struct redis_model *m, unsigned db)
{
    if (db < MODEL_DBS)
        return m->dbs[db].nkeys;
    size_t n = 0;
    for (unsigned i = 0; i < MODEL_DBS; i++)
        n += m->dbs[i].nkeys;
    return n;
}

/* ================================================================ from a server */

static bool reply_is(const redisReply *r, int type)
{
    return r != NULL && r->type == type;
}

static struct model_bytes reply_bytes(const redisReply *r)
{
    cr_assert(reply_is(r, REDIS_REPLY_STRING) || reply_is(r, REDIS_REPLY_STATUS),
              "expected a string reply, got type %d", r != NULL ? r->type : -1);
    return bytes_dup(r->str, r->len);
}

/* The value after `name` in a flat name/value array (RESP2 maps). */
static const redisReply *map_get(const redisReply *arr, const char *name)
{
    if (!reply_is(arr, REDIS_REPLY_ARRAY))
        return NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; i + 1 < arr->elements; i += 2) {
        const redisReply *k = arr->element[i];
        if ((reply_is(k, REDIS_REPLY_STRING) || reply_is(k, REDIS_REPLY_STATUS)) &&
            k->len == nlen && memcmp(k->str, name, nlen) == 0)
            return arr->element[i + 1];
    }
    return NULL;
}

static const redisReply *map_need(const redisReply *arr, const char *name, int type,
                                  const char *what)
{
    const redisReply *v = map_get(arr, name);
    cr_assert(reply_is(v, type), "%s: field '%s' missing or not of reply type %d", what, name,
              type);
    return v;
}

static struct model_id reply_id(const redisReply *r, const char *what)
{
    struct model_id id;
    cr_assert(reply_is(r, REDIS_REPLY_STRING) && parse_id(r->str, r->len, &id),
              "%s: not a stream id", what);
    return id;
}

static void stream_from_xinfo(struct model_key *k, const redisReply *x)
{
    const char *what = "XINFO STREAM FULL";
    struct model_stream *s = xcalloc(1, sizeof(*s));
    k->stream = s;
    s->length = (uint64_t)map_need(x, "length", REDIS_REPLY_INTEGER, what)->integer;
    s->last_id =
        reply_id(map_need(x, "last-generated-id", REDIS_REPLY_STRING, what), "last-generated-id");
    const redisReply *md = map_get(x, "max-deleted-entry-id");
    if (md != NULL) {
        s->has_v2 = true;
        s->max_deleted_id = reply_id(md, "max-deleted-entry-id");
        s->first_id = reply_id(map_need(x, "recorded-first-entry-id", REDIS_REPLY_STRING, what),
                               "recorded-first-entry-id");
        s->entries_added =
            (uint64_t)map_need(x, "entries-added", REDIS_REPLY_INTEGER, what)->integer;
    }
    const redisReply *entries = map_need(x, "entries", REDIS_REPLY_ARRAY, what);
    s->nentries = entries->elements;
    s->entries = xcalloc(s->nentries, sizeof(*s->entries));
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        cr_assert(reply_is(e, REDIS_REPLY_ARRAY) && e->elements == 2, "%s: bad entry", what);
        s->entries[i].id = reply_id(e->element[0], "entry id");
        const redisReply *fv = e->element[1];
        cr_assert(reply_is(fv, REDIS_REPLY_ARRAY), "%s: bad entry fields", what);
        s->entries[i].nfv = fv->elements;
        s->entries[i].fv = xcalloc(fv->elements, sizeof(struct model_bytes));
        for (size_t j = 0; j < fv->elements; j++)
            s->entries[i].fv[j] = reply_bytes(fv->element[j]);
    }
    const redisReply *groups = map_need(x, "groups", REDIS_REPLY_ARRAY, what);
    s->ngroups = groups->elements;
    s->groups = xcalloc(s->ngroups, sizeof(*s->groups));
    for (size_t i = 0; i < groups->elements; i++) {
        const redisReply *gr = groups->element[i];
        struct model_group *g = &s->groups[i];
        g->name = reply_bytes(map_need(gr, "name", REDIS_REPLY_STRING, what));
        g->last_delivered_id = reply_id(map_need(gr, "last-delivered-id", REDIS_REPLY_STRING, what),
                                        "last-delivered-id");
        const redisReply *er = map_get(gr, "entries-read");
        g->entries_read = reply_is(er, REDIS_REPLY_INTEGER) ? er->integer : -1;
        const redisReply *pel = map_need(gr, "pending", REDIS_REPLY_ARRAY, what);
        g->npel = pel->elements;
        g->pel = xcalloc(g->npel, sizeof(*g->pel));
        for (size_t j = 0; j < pel->elements; j++) {
            const redisReply *p = pel->element[j];
            cr_assert(reply_is(p, REDIS_REPLY_ARRAY) && p->elements == 4, "%s: bad PEL", what);
            g->pel[j].id = reply_id(p->element[0], "PEL id");
            cr_assert(reply_is(p->element[2], REDIS_REPLY_INTEGER) &&
                      reply_is(p->element[3], REDIS_REPLY_INTEGER));
            g->pel[j].delivery_time_ms = p->element[2]->integer;
            g->pel[j].delivery_count = (uint64_t)p->element[3]->integer;
        }
        const redisReply *cons = map_need(gr, "consumers", REDIS_REPLY_ARRAY, what);
        g->nconsumers = cons->elements;
        g->consumers = xcalloc(g->nconsumers, sizeof(*g->consumers));
        for (size_t j = 0; j < cons->elements; j++) {
            const redisReply *cr = cons->element[j];
            struct model_consumer *c = &g->consumers[j];
            c->name = reply_bytes(map_need(cr, "name", REDIS_REPLY_STRING, what));
            c->seen_time_ms = map_need(cr, "seen-time", REDIS_REPLY_INTEGER, what)->integer;
            const redisReply *at = map_get(cr, "active-time");
            c->active_time_ms = reply_is(at, REDIS_REPLY_INTEGER) ? at->integer : -1;
            const redisReply *cp = map_need(cr, "pending", REDIS_REPLY_ARRAY, what);
            c->npel = cp->elements;
            c->pel = xcalloc(c->npel, sizeof(*c->pel));
            for (size_t q = 0; q < cp->elements; q++) {
                const redisReply *p = cp->element[q];
                cr_assert(reply_is(p, REDIS_REPLY_ARRAY) && p->elements >= 1,
                          "%s: bad consumer PEL", what);
                c->pel[q] = reply_id(p->element[0], "consumer PEL id");
            }
        }
    }
}

static void value_from_reply(struct model_key *k, const redisReply *r)
{
    switch (k->type) {
    case MODEL_STRING:
        k->str = reply_bytes(r);
        break;
    case MODEL_LIST:
    case MODEL_SET:
        cr_assert(reply_is(r, REDIS_REPLY_ARRAY));
        k->n = r->elements;
        k->elems = xcalloc(k->n, sizeof(*k->elems));
        for (size_t i = 0; i < k->n; i++)
            k->elems[i] = reply_bytes(r->element[i]);
        break;
    case MODEL_ZSET:
    case MODEL_HASH:
        cr_assert(reply_is(r, REDIS_REPLY_ARRAY) && r->elements % 2 == 0);
        k->n = r->elements / 2;
        k->elems = xcalloc(k->n, sizeof(*k->elems));
        if (k->type == MODEL_HASH)
            k->values = xcalloc(k->n, sizeof(*k->values));
        else
            k->scores = xcalloc(k->n, sizeof(*k->scores));
        for (size_t i = 0; i < k->n; i++) {
            k->elems[i] = reply_bytes(r->element[2 * i]);
            const redisReply *v = r->element[2 * i + 1];
            if (k->type == MODEL_HASH) {
                k->values[i] = reply_bytes(v);
            } else {
                cr_assert(reply_is(v, REDIS_REPLY_STRING));
                char *end;
                k->scores[i] = strtod(v->str, &end);
                cr_assert(*end == '\0', "bad score '%s'", v->str);
            }
        }
        break;
    case MODEL_STREAM:
        stream_from_xinfo(k, r);
        break;
    default:
        cr_assert_fail("unexpected type %d", k->type);
    }
}

static void append_value_command(redisContext *c, const struct model_key *k)
{
    const char *p = k->key.p;
    size_t n = k->key.len;
    int rc;
    switch (k->type) {
    case MODEL_STRING:
        rc = redisAppendCommand(c, "GET %b", p, n);
        break;
    case MODEL_LIST:
        rc = redisAppendCommand(c, "LRANGE %b 0 -1", p, n);
        break;
    case MODEL_SET:
        rc = redisAppendCommand(c, "SMEMBERS %b", p, n);
        break;
    case MODEL_ZSET:
        rc = redisAppendCommand(c, "ZRANGE %b 0 -1 WITHSCORES", p, n);
        break;
    case MODEL_HASH:
        rc = redisAppendCommand(c, "HGETALL %b", p, n);
        break;
    case MODEL_STREAM:
        rc = redisAppendCommand(c, "XINFO STREAM %b FULL COUNT 0", p, n);
        break;
    default:
        rc = REDIS_ERR;
    }
    cr_assert(rc == REDIS_OK, "cannot append a command: %s", c->errstr);
}

static redisReply *get_reply(redisContext *c)
{
    void *r = NULL;
    cr_assert(redisGetReply(c, &r) == REDIS_OK && r != NULL, "I/O error: %s", c->errstr);
    return r;
}

/* Reads type, expiry, encoding and value of keys[0..n) of the selected db;
 * a key gone in between (TYPE none) is dropped (its key.p freed, type -1). */
static void server_read_keys(redisContext *c, struct model_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = keys[i].key.p;
        size_t len = keys[i].key.len;
        cr_assert(redisAppendCommand(c, "TYPE %b", p, len) == REDIS_OK);
        cr_assert(redisAppendCommand(c, "PEXPIRETIME %b", p, len) == REDIS_OK);
        cr_assert(redisAppendCommand(c, "OBJECT ENCODING %b", p, len) == REDIS_OK);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *t = get_reply(c), *e = get_reply(c), *enc = get_reply(c);
        char ek[200];
        cr_assert(reply_is(t, REDIS_REPLY_STATUS), "TYPE '%s': unexpected reply%s%s",
                  model_escape(ek, sizeof(ek), keys[i].key.p, keys[i].key.len, 64),
                  reply_is(t, REDIS_REPLY_ERROR) ? " " : "",
                  reply_is(t, REDIS_REPLY_ERROR) ? t->str : ""); /* a cluster node: MOVED */
        keys[i].type = type_from_name(t->str, t->len);
        cr_assert(keys[i].type >= 0 || strcmp(t->str, "none") == 0, "TYPE: unknown type '%s'",
                  t->str);
        cr_assert(reply_is(e, REDIS_REPLY_INTEGER), "PEXPIRETIME: unexpected reply");
        keys[i].expire_ms = e->integer >= 0 ? e->integer : -1;
        if (reply_is(enc, REDIS_REPLY_STRING) || reply_is(enc, REDIS_REPLY_STATUS))
            snprintf(keys[i].encoding, sizeof(keys[i].encoding), "%s", enc->str);
        freeReplyObject(t);
        freeReplyObject(e);
        freeReplyObject(enc);
    }
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type >= 0)
            append_value_command(c, &keys[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type < 0)
            continue;
        redisReply *r = get_reply(c);
        if (r->type == REDIS_REPLY_NIL || r->type == REDIS_REPLY_ERROR) {
            /* Expired or changed between the two round trips. */
            keys[i].type = -1;
        } else {
            value_from_reply(&keys[i], r);
        }
        freeReplyObject(r);
    }
}

static void server_scan_db(struct model_db *d, redisContext *c, size_t *checkpoints)
{
    char cursor[32] = "0";
    do {
        redisReply *r = redis_fixture_command(c, "SCAN %s COUNT 1000", cursor);
        cr_assert(reply_is(r, REDIS_REPLY_ARRAY) && r->elements == 2, "SCAN: bad reply");
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            if (keys->element[i]->len >= strlen(MODEL_CHECKPOINT_PREFIX) &&
                memcmp(keys->element[i]->str, MODEL_CHECKPOINT_PREFIX,
                       strlen(MODEL_CHECKPOINT_PREFIX)) == 0) {
                (*checkpoints)++; /* SCAN may count one twice: a count, not a census */
                continue;
            }
            struct model_key *k = db_add_key(d);
            k->key = reply_bytes(keys->element[i]);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);

    /* SCAN may return a key twice. */
    sort_array(d->keys, d->nkeys, sizeof(*d->keys), key_qcmp);
    size_t out = 0;
    for (size_t i = 0; i < d->nkeys; i++) {
        if (out > 0 && bytes_eq(&d->keys[out - 1].key, &d->keys[i].key))
            bytes_free(&d->keys[i].key);
        else
            d->keys[out++] = d->keys[i];
    }
    d->nkeys = out;

    for (size_t i = 0; i < d->nkeys; i += SERVER_KEY_BATCH) {
        size_t n = d->nkeys - i < SERVER_KEY_BATCH ? d->nkeys - i : SERVER_KEY_BATCH;
        server_read_keys(c, &d->keys[i], n);
    }
    out = 0;
    for (size_t i = 0; i < d->nkeys; i++) {
        if (d->keys[i].type < 0)
            key_free(&d->keys[i]);
        else
            d->keys[out++] = d->keys[i];
    }
    d->nkeys = out;
}

/* Adds the code of every function library of the server behind c to m. */
static void server_read_functions(struct redis_model *m, redisContext *c)
{
    redisReply *r = redis_fixture_command(c, "FUNCTION LIST WITHCODE");
    cr_assert(reply_is(r, REDIS_REPLY_ARRAY), "FUNCTION LIST: bad reply");
    for (size_t i = 0; i < r->elements; i++)
        model_add_function(m, reply_bytes(map_need(r->element[i], "library_code",
                                                   REDIS_REPLY_STRING, "FUNCTION LIST")));
    freeReplyObject(r);
}

void redis_model_from_server(struct redis_model *m, redisContext *c)
{
    memset(m, 0, sizeof(*m));
    for (unsigned db = 0; db < MODEL_DBS; db++) {
        redis_fixture_exec(c, "SELECT %u", db);
        server_scan_db(&m->dbs[db], c, &m->checkpoint_keys);
    }
    redis_fixture_exec(c, "SELECT 0");
    server_read_functions(m, c);
    model_canonicalize(m);
}

/* "host:port" of a TCP connection, for messages. */
static const char *context_name(const redisContext *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:%d", c->tcp.host != NULL ? c->tcp.host : "?", c->tcp.port);
    return buf;
}

/* Merges one server's keys (sorted, as server_scan_db leaves them) into
 * all (sorted), moving them; held[k] gets bit `server` for all's key k. A key
 * all already has keeps the copy it has (the other is freed). */
static void merge_server_keys(struct model_db *all, unsigned **held, struct model_db *one,
                              size_t server)
{
    size_t n = all->nkeys + one->nkeys;
    struct model_key *keys = xcalloc(n, sizeof(*keys));
    unsigned *mask = xcalloc(n, sizeof(*mask));
    size_t i = 0, j = 0, o = 0;
    while (i < all->nkeys || j < one->nkeys) {
        int c = i == all->nkeys   ? 1
                : j == one->nkeys ? -1
                                  : bytes_cmp(&all->keys[i].key, &one->keys[j].key);
        if (c <= 0) {
            mask[o] = (*held)[i];
            keys[o] = all->keys[i++];
        }
        if (c == 0) {
            mask[o] |= 1u << server;
            key_free(&one->keys[j++]);
        } else if (c > 0) {
            mask[o] = 1u << server;
            keys[o] = one->keys[j++];
        }
        o++;
    }
    free(all->keys);
    free(*held);
    free(one->keys);
    memset(one, 0, sizeof(*one));
    all->keys = keys;
    all->nkeys = o;
    all->cap = n;
    *held = mask;
}

void redis_model_from_servers(struct redis_model *m, redisContext *const *servers, size_t n,
                              unsigned **held)
{
    cr_assert(n > 0 && n <= MODEL_MAX_SERVERS, "a model of %zu servers (1..%d)", n,
              MODEL_MAX_SERVERS);
    memset(m, 0, sizeof(*m));
    *held = NULL;
    for (size_t i = 0; i < n; i++) {
        struct model_db one = {0};
        server_scan_db(&one, servers[i], &m->checkpoint_keys); /* db 0 only: no SELECT */
        merge_server_keys(&m->dbs[0], held, &one, i);

        /* Functions: every server must hold the same libraries; kept once. */
        struct redis_model fns = {0};
        server_read_functions(&fns, servers[i]);
        sort_array(fns.functions, fns.nfunctions, sizeof(*fns.functions), bytes_qcmp);
        if (i == 0) {
            m->functions = fns.functions;
            m->nfunctions = fns.nfunctions;
            continue;
        }
        for (size_t f = 0; f < fns.nfunctions || f < m->nfunctions; f++) {
            if (f < fns.nfunctions && f < m->nfunctions &&
                bytes_eq(&fns.functions[f], &m->functions[f]))
                continue;
            char a[64], b[64], e[200];
            const struct model_bytes *lib =
                f < m->nfunctions ? &m->functions[f] : &fns.functions[f];
            cr_assert_fail("the servers hold different function libraries: %s has %zu, "
                           "%s has %zu; they first differ at library %zu (sorted by code): "
                           "\"%s\"",
                           context_name(servers[0], a, sizeof(a)), m->nfunctions,
                           context_name(servers[i], b, sizeof(b)), fns.nfunctions, f,
                           model_escape(e, sizeof(e), lib->p, lib->len, 120));
        }
        redis_model_free(&fns);
    }
    model_canonicalize(m); /* the keys are sorted already: held[] stays aligned */
}

void redis_model_from_cluster(struct redis_model *m, redisContext *const *masters, size_t n)
{
    cr_assert(n > 0, "a cluster model needs at least one master");
    unsigned *held;
    redis_model_from_servers(m, masters, n, &held);
    /* The same key on two masters: a cluster in the middle of a migration,
     * or a write that reached a node that does not serve its slot. */
    for (size_t k = 0; k < m->dbs[0].nkeys; k++) {
        if ((held[k] & (held[k] - 1)) == 0)
            continue;
        unsigned first = (unsigned)__builtin_ctz(held[k]);
        unsigned second = (unsigned)__builtin_ctz(held[k] & ~(1u << first));
        char e[200], a[64], b[64];
        const struct model_bytes *key = &m->dbs[0].keys[k].key;
        free(held);
        cr_assert_fail("key '%s' is held by two masters of the cluster, %s and %s",
                       model_escape(e, sizeof(e), key->p, key->len, 64),
                       context_name(masters[first], a, sizeof(a)),
                       context_name(masters[second], b, sizeof(b)));
    }
    free(held);
}

/* ================================================================ from inspect */

int model_bytes_from_json_utf8(const char *s, size_t len, struct model_bytes *out)
{
    const unsigned char *u = (const unsigned char *)s;
    char *p = malloc(len + 1);
    cr_assert(p != NULL, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (u[i] < 0x80) {
            p[o++] = (char)u[i];
        } else if ((u[i] == 0xc2 || u[i] == 0xc3) && i + 1 < len && (u[i + 1] & 0xc0) == 0x80) {
            p[o++] = (char)(((u[i] & 0x1f) << 6) | (u[i + 1] & 0x3f));
            i++;
        } else if (u[i] == 0xc4 && i + 1 < len && u[i + 1] == 0x80) {
            p[o++] = '\0'; /* U+0100: a NUL, rewritten by rewrite_nul_escapes */
            i++;
        } else {
            free(p);
            return -1;
        }
    }
    p[o] = '\0';
    out->p = p;
    out->len = o;
    return 0;
}

/* Parsing state for one line: where we are, for the message. */
struct jctx {
    size_t line;
    char *why;
    size_t why_cap;
    bool failed;
};

static void jfail(struct jctx *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jfail(struct jctx *j, const char *fmt, ...)
{
    if (j->failed)
        return;
    j->failed = true;
    int n = snprintf(j->why, j->why_cap, "inspect output line %zu: ", j->line);
    if (n < 0 || (size_t)n >= j->why_cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why + n, j->why_cap - (size_t)n, fmt, ap);
    va_end(ap);
}

static struct json_object *jget(struct jctx *j, struct json_object *o, const char *name,
                                json_type type, bool nullable)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v)) {
        jfail(j, "member \"%s\" missing", name);
        return NULL;
    }
    if (v == NULL && nullable)
        return NULL;
    if (v == NULL || !json_object_is_type(v, type)) {
        jfail(j, "member \"%s\" is a %s, expected a %s", name,
              v == NULL ? "null" : json_type_to_name(json_object_get_type(v)),
              json_type_to_name(type));
        return NULL;
    }
    return v;
}

static struct model_bytes jbytes(struct jctx *j, struct json_object *v, const char *what)
{
    struct model_bytes b = {0};
    if (v == NULL || !json_object_is_type(v, json_type_string)) {
        jfail(j, "%s is not a string", what);
        return bytes_dup("", 0);
    }
    if (model_bytes_from_json_utf8(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                                   &b) != 0) {
        jfail(j, "%s holds a code point above U+00FF", what);
        return bytes_dup("", 0);
    }
    return b;
}

static struct model_bytes jname(struct jctx *j, const char *name)
{
    struct model_bytes b = {0};
    if (model_bytes_from_json_utf8(name, strlen(name), &b) != 0) {
        jfail(j, "member name holds a code point above U+00FF");
        return bytes_dup("", 0);
    }
    return b;
}

static int64_t jint(struct jctx *j, struct json_object *o, const char *name, bool nullable,
                    int64_t if_null)
{
    struct json_object *v = jget(j, o, name, json_type_int, nullable);
    return v != NULL ? json_object_get_int64(v) : if_null;
}

static uint64_t juint(struct jctx *j, struct json_object *o, const char *name)
{
    struct json_object *v = jget(j, o, name, json_type_int, false);
    if (v == NULL)
        return 0;
    return json_object_get_uint64(v);
}

static struct model_id jid_value(struct jctx *j, struct json_object *v, const char *what)
{
    struct model_id id = {0, 0};
    if (v == NULL || !json_object_is_type(v, json_type_string) ||
        !parse_id(json_object_get_string(v), (size_t)json_object_get_string_len(v), &id))
        jfail(j, "%s is not a stream id \"ms-seq\"", what);
    return id;
}

static struct model_id jid(struct jctx *j, struct json_object *o, const char *name)
{
    struct json_object *v = jget(j, o, name, json_type_string, false);
    return v != NULL ? jid_value(j, v, name) : (struct model_id){0, 0};
}

static bool jscore(struct jctx *j, struct json_object *v, double *score)
{
    if (json_object_is_type(v, json_type_double)) {
        *score = json_object_get_double(v);
    } else if (json_object_is_type(v, json_type_int)) {
        *score = (double)json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (strcmp(s, "inf") == 0)
            *score = INFINITY;
        else if (strcmp(s, "-inf") == 0)
            *score = -INFINITY;
        else if (strcmp(s, "nan") == 0)
            *score = NAN;
        else {
            jfail(j, "zset score \"%s\" is not a number, \"inf\", \"-inf\" or \"nan\"", s);
            return false;
        }
    } else {
        jfail(j, "zset score is a %s", json_type_to_name(json_object_get_type(v)));
        return false;
    }
    return true;
}

static void jstream(struct jctx *j, struct model_key *k, struct json_object *v)
{
    struct model_stream *s = xcalloc(1, sizeof(*s));
    k->stream = s;
    s->length = juint(j, v, "length");
    s->last_id = jid(j, v, "last_id");
    struct json_object *tmp;
    if (json_object_object_get_ex(v, "first_id", &tmp)) {
        s->has_v2 = true;
        s->first_id = jid(j, v, "first_id");
        s->max_deleted_id = jid(j, v, "max_deleted_id");
        s->entries_added = juint(j, v, "entries_added");
    }
    struct json_object *entries = jget(j, v, "entries", json_type_array, false);
    size_t ne = entries != NULL ? json_object_array_length(entries) : 0;
    s->entries = xcalloc(ne, sizeof(*s->entries));
    for (size_t i = 0; i < ne && !j->failed; i++) {
        struct json_object *e = json_object_array_get_idx(entries, i);
        struct model_stream_entry *se = &s->entries[s->nentries++];
        se->id = jid(j, e, "id");
        struct json_object *fv = jget(j, e, "fields", json_type_array, false);
        size_t nfv = fv != NULL ? json_object_array_length(fv) : 0;
        se->fv = xcalloc(nfv, sizeof(*se->fv));
        for (size_t q = 0; q < nfv; q++)
            se->fv[se->nfv++] = jbytes(j, json_object_array_get_idx(fv, q), "entry field");
    }
    struct json_object *groups = jget(j, v, "groups", json_type_array, false);
    size_t ng = groups != NULL ? json_object_array_length(groups) : 0;
    s->groups = xcalloc(ng, sizeof(*s->groups));
    for (size_t i = 0; i < ng && !j->failed; i++) {
        struct json_object *go = json_object_array_get_idx(groups, i);
        struct model_group *g = &s->groups[s->ngroups++];
        g->name = jbytes(j, jget(j, go, "name", json_type_string, false), "group name");
        g->last_delivered_id = jid(j, go, "last_delivered_id");
        g->entries_read = jint(j, go, "entries_read", true, -1);
        struct json_object *pel = jget(j, go, "pel", json_type_array, false);
        size_t np = pel != NULL ? json_object_array_length(pel) : 0;
        g->pel = xcalloc(np, sizeof(*g->pel));
        for (size_t q = 0; q < np && !j->failed; q++) {
            struct json_object *po = json_object_array_get_idx(pel, q);
            struct model_pel *p = &g->pel[g->npel++];
            p->id = jid(j, po, "id");
            p->delivery_time_ms = jint(j, po, "delivery_time_ms", false, 0);
            p->delivery_count = juint(j, po, "delivery_count");
        }
        struct json_object *cons = jget(j, go, "consumers", json_type_array, false);
        size_t nc = cons != NULL ? json_object_array_length(cons) : 0;
        g->consumers = xcalloc(nc, sizeof(*g->consumers));
        for (size_t q = 0; q < nc && !j->failed; q++) {
            struct json_object *co = json_object_array_get_idx(cons, q);
            struct model_consumer *c = &g->consumers[g->nconsumers++];
            c->name = jbytes(j, jget(j, co, "name", json_type_string, false), "consumer name");
            c->seen_time_ms = jint(j, co, "seen_time_ms", false, 0);
            c->active_time_ms = jint(j, co, "active_time_ms", true, -1);
            struct json_object *cp = jget(j, co, "pel", json_type_array, false);
            size_t ncp = cp != NULL ? json_object_array_length(cp) : 0;
            c->pel = xcalloc(ncp, sizeof(*c->pel));
            for (size_t t = 0; t < ncp; t++)
                c->pel[c->npel++] = jid_value(j, json_object_array_get_idx(cp, t), "consumer pel");
        }
    }
}

static void jvalue(struct jctx *j, struct model_key *k, struct json_object *o)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, "value", &v)) {
        jfail(j, "member \"value\" missing");
        return;
    }
    switch (k->type) {
    case MODEL_STRING:
        k->str = jbytes(j, v, "string value");
        break;
    case MODEL_LIST:
    case MODEL_SET: {
        if (v == NULL || !json_object_is_type(v, json_type_array)) {
            jfail(j, "%s value is not an array", model_type_name(k->type));
            return;
        }
        size_t n = json_object_array_length(v);
        k->elems = xcalloc(n, sizeof(*k->elems));
        for (size_t i = 0; i < n; i++)
            k->elems[k->n++] = jbytes(j, json_object_array_get_idx(v, i), "element");
        break;
    }
    case MODEL_ZSET:
    case MODEL_HASH: {
        if (v == NULL || !json_object_is_type(v, json_type_object)) {
            jfail(j, "%s value is not an object", model_type_name(k->type));
            return;
        }
        size_t n = (size_t)json_object_object_length(v);
        k->elems = xcalloc(n, sizeof(*k->elems));
        if (k->type == MODEL_HASH)
            k->values = xcalloc(n, sizeof(*k->values));
        else
            k->scores = xcalloc(n, sizeof(*k->scores));
        json_object_object_foreach(v, name, val)
        {
            if (k->n == n)
                break;
            k->elems[k->n] = jname(j, name);
            if (k->type == MODEL_HASH)
                k->values[k->n] = jbytes(j, val, "hash value");
            else
                jscore(j, val, &k->scores[k->n]);
            k->n++;
        }
        break;
    }
    case MODEL_STREAM:
        if (v == NULL || !json_object_is_type(v, json_type_object)) {
            jfail(j, "stream value is not an object");
            return;
        }
        jstream(j, k, v);
        break;
    case MODEL_MODULE:
        /* Kept as its JSON text: the server side has no modules to match. */
        k->str = bytes_dup(json_object_to_json_string(v), strlen(json_object_to_json_string(v)));
        break;
    }
}

static void jline(struct jctx *j, struct redis_model *m, struct json_object *o)
{
    struct json_object *fn = NULL;
    if (json_object_object_get_ex(o, "function", &fn)) {
        model_add_function(m, jbytes(j, fn, "function code"));
        return;
    }
    int64_t db = jint(j, o, "db", false, -1);
    if (j->failed)
        return;
    if (db < 0 || db >= MODEL_DBS) {
        jfail(j, "db %" PRId64 " out of range", db);
        return;
    }
    struct json_object *t = jget(j, o, "type", json_type_string, false);
    struct json_object *key = jget(j, o, "key", json_type_string, false);
    struct json_object *enc = jget(j, o, "encoding", json_type_string, false);
    int64_t expire = jint(j, o, "expire_ms", true, -1);
    if (j->failed)
        return;
    int type = type_from_name(json_object_get_string(t), (size_t)json_object_get_string_len(t));
    if (type < 0) {
        jfail(j, "unknown type \"%s\"", json_object_get_string(t));
        return;
    }
    struct model_key *k = db_add_key(&m->dbs[db]);
    k->type = type;
    k->key = jbytes(j, key, "key");
    k->expire_ms = expire;
    snprintf(k->encoding, sizeof(k->encoding), "%s", json_object_get_string(enc));
    jvalue(j, k, o);
}

/* Checks that every escape of the line (ASCII, NUL-free) is one the contract
 * allows (\" \\ \/ \b \f \n \r \t, or \u00XX) and rewrites \u0000 to \u0100 in
 * place, so that json-c keeps NULs in member names. Returns the column of a
 * bad escape (1-based), or 0. */
static size_t rewrite_nul_escapes(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\')
            continue;
        if (i + 1 == len)
            return i + 1;
        char e = s[i + 1];
        if (e == 'u') {
            if (i + 5 >= len || s[i + 2] != '0' || s[i + 3] != '0' ||
                !isxdigit((unsigned char)s[i + 4]) || !isxdigit((unsigned char)s[i + 5]))
                return i + 1;
            if (s[i + 4] == '0' && s[i + 5] == '0')
                s[i + 3] = '1';
            i += 5;
        } else if (strchr("\"\\/bfnrt", e) != NULL) {
            i++;
        } else {
            return i + 1;
        }
    }
    return 0;
}

int redis_model_from_inspect_file(struct redis_model *m, const char *path, char *why,
                                  size_t why_cap)
{
    memset(m, 0, sizeof(*m));
    struct jctx j = {.line = 0, .why = why, .why_cap = why_cap};
    if (why_cap > 0)
        why[0] = '\0';
    size_t len;
    char *text = fixture_read_file(path, &len);
    if (text == NULL) {
        snprintf(why, why_cap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct json_tokener *tok = json_tokener_new_ex(64);
    cr_assert(tok != NULL);
    size_t pos = 0;
    while (pos < len && !j.failed) {
        j.line++;
        char *nl = memchr(text + pos, '\n', len - pos);
        if (nl == NULL) {
            jfail(&j, "no newline at the end of the output");
            break;
        }
        size_t llen = (size_t)(nl - (text + pos));
        for (size_t i = 0; i < llen; i++) {
            unsigned char ch = (unsigned char)text[pos + i];
            if (ch < 0x20 || ch > 0x7e) {
                jfail(&j, "byte 0x%02x at column %zu: the output must be printable ASCII", ch,
                      i + 1);
                break;
            }
        }
        if (j.failed)
            break;
        size_t bad = rewrite_nul_escapes(text + pos, llen);
        if (bad != 0) {
            jfail(&j, "column %zu: an escape other than \\u00XX or a short one", bad);
            break;
        }
        json_tokener_reset(tok);
        struct json_object *o = json_tokener_parse_ex(tok, text + pos, (int)llen);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        if (o == NULL || jerr != json_tokener_success || json_tokener_get_parse_end(tok) != llen) {
            jfail(&j, "not one JSON value: %s (at column %zu)",
                  jerr == json_tokener_success ? "trailing bytes" : json_tokener_error_desc(jerr),
                  json_tokener_get_parse_end(tok) + 1);
        } else if (!json_object_is_type(o, json_type_object)) {
            jfail(&j, "not a JSON object");
        } else {
            jline(&j, m, o);
        }
        json_object_put(o);
        pos += llen + 1;
    }
    json_tokener_free(tok);
    free(text);
    model_canonicalize(m);
    for (unsigned db = 0; db < MODEL_DBS && !j.failed; db++) {
        const struct model_db *d = &m->dbs[db];
        for (size_t i = 1; i < d->nkeys; i++) {
            if (bytes_eq(&d->keys[i - 1].key, &d->keys[i].key)) {
                char e[200];
                j.line = 0;
                jfail(&j, "key '%s' listed twice in db %u",
                      model_escape(e, sizeof(e), d->keys[i].key.p, d->keys[i].key.len, 64), db);
                break;
            }
        }
    }
    return j.failed ? -1 : 0;
}

/* ================================================================ comparing */

#define REPORT_LIMIT 20

static void report(struct model_diff *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report(struct model_diff *d, const char *fmt, ...)
{
    size_t cap = sizeof(d->report);
    if (d->report_len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->report + d->report_len, cap - d->report_len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    d->report_len += (size_t)n;
    if (d->report_len >= cap)
        d->report_len = cap - 1;
}

/* Text of what differs, for one key. */
struct why {
    char s[1024];
};

static bool differ(struct why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool differ(struct why *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->s, sizeof(w->s), fmt, ap);
    va_end(ap);
    return false;
}

#define ESC(buf, b) model_escape(buf, sizeof(buf), (b).p, (b).len, 48)

static bool same_bytes(struct why *w, const char *what, size_t idx, const struct model_bytes *a,
                       const struct model_bytes *b)
{
    if (bytes_eq(a, b))
        return true;
    char ea[256], eb[256];
    if (a->len != b->len && a->len > 48 && b->len > 48) {
        size_t i = 0;
        while (i < a->len && i < b->len && a->p[i] == b->p[i])
            i++;
        return differ(w, "%s %zu: %zu bytes vs %zu bytes, first difference at byte %zu", what, idx,
                      a->len, b->len, i);
    }
    if (a->len == b->len && a->len > 48) {
        size_t i = 0;
        while (a->p[i] == b->p[i])
            i++;
        size_t from = i > 8 ? i - 8 : 0;
        size_t n = a->len - from < 32 ? a->len - from : 32;
        return differ(w, "%s %zu: first difference at byte %zu of %zu: \"%s\" vs \"%s\"", what, idx,
                      i, a->len, model_escape(ea, sizeof(ea), a->p + from, n, 32),
                      model_escape(eb, sizeof(eb), b->p + from, n, 32));
    }
    return differ(w, "%s %zu: \"%s\" vs \"%s\"", what, idx, ESC(ea, *a), ESC(eb, *b));
}

static bool same_score(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

static bool same_id(struct why *w, const char *what, const struct model_id *a,
                    const struct model_id *b)
{
    if (id_cmp(a, b) == 0)
        return true;
    return differ(w, "%s: %" PRIu64 "-%" PRIu64 " vs %" PRIu64 "-%" PRIu64, what, a->ms, a->seq,
                  b->ms, b->seq);
}

static bool same_int(struct why *w, const char *what, int64_t a, int64_t b)
{
    if (a == b)
        return true;
    return differ(w, "%s: %" PRId64 " vs %" PRId64, what, a, b);
}

static bool same_group(struct why *w, const struct model_group *a, const struct model_group *b)
{
    char e[160], what[512];
    ESC(e, a->name);
    snprintf(what, sizeof(what), "group '%s' last_delivered_id", e);
    if (!same_id(w, what, &a->last_delivered_id, &b->last_delivered_id))
        return false;
    snprintf(what, sizeof(what), "group '%s' entries_read (-1: null)", e);
    if (!same_int(w, what, a->entries_read, b->entries_read))
        return false;
    snprintf(what, sizeof(what), "group '%s' PEL size", e);
    if (!same_int(w, what, (int64_t)a->npel, (int64_t)b->npel))
        return false;
    for (size_t i = 0; i < a->npel; i++) {
        snprintf(what, sizeof(what), "group '%s' PEL entry %zu id", e, i);
        if (!same_id(w, what, &a->pel[i].id, &b->pel[i].id))
            return false;
        snprintf(what, sizeof(what), "group '%s' PEL entry %zu delivery_time_ms", e, i);
        if (!same_int(w, what, a->pel[i].delivery_time_ms, b->pel[i].delivery_time_ms))
            return false;
        snprintf(what, sizeof(what), "group '%s' PEL entry %zu delivery_count", e, i);
        if (!same_int(w, what, (int64_t)a->pel[i].delivery_count,
                      (int64_t)b->pel[i].delivery_count))
            return false;
    }
    snprintf(what, sizeof(what), "group '%s' number of consumers", e);
    if (!same_int(w, what, (int64_t)a->nconsumers, (int64_t)b->nconsumers))
        return false;
    for (size_t i = 0; i < a->nconsumers; i++) {
        const struct model_consumer *ca = &a->consumers[i], *cb = &b->consumers[i];
        snprintf(what, sizeof(what), "group '%s' consumer name", e);
        if (!same_bytes(w, what, i, &ca->name, &cb->name))
            return false;
        char ec[160];
        ESC(ec, ca->name);
        snprintf(what, sizeof(what), "group '%s' consumer '%s' seen_time_ms", e, ec);
        if (!same_int(w, what, ca->seen_time_ms, cb->seen_time_ms))
            return false;
        snprintf(what, sizeof(what), "group '%s' consumer '%s' active_time_ms (-1: null)", e, ec);
        if (!same_int(w, what, ca->active_time_ms, cb->active_time_ms))
            return false;
        snprintf(what, sizeof(what), "group '%s' consumer '%s' PEL size", e, ec);
        if (!same_int(w, what, (int64_t)ca->npel, (int64_t)cb->npel))
            return false;
        for (size_t q = 0; q < ca->npel; q++) {
            snprintf(what, sizeof(what), "group '%s' consumer '%s' PEL id %zu", e, ec, q);
            if (!same_id(w, what, &ca->pel[q], &cb->pel[q]))
                return false;
        }
    }
    return true;
}

static bool same_stream(struct why *w, const struct model_stream *a, const struct model_stream *b)
{
    if (!same_int(w, "length", (int64_t)a->length, (int64_t)b->length) ||
        !same_id(w, "last_id", &a->last_id, &b->last_id))
        return false;
    if (a->has_v2 && b->has_v2) {
        if (!same_id(w, "first_id", &a->first_id, &b->first_id) ||
            !same_id(w, "max_deleted_id", &a->max_deleted_id, &b->max_deleted_id) ||
            !same_int(w, "entries_added", (int64_t)a->entries_added, (int64_t)b->entries_added))
            return false;
    }
    if (!same_int(w, "number of entries", (int64_t)a->nentries, (int64_t)b->nentries))
        return false;
    for (size_t i = 0; i < a->nentries; i++) {
        const struct model_stream_entry *ea = &a->entries[i], *eb = &b->entries[i];
        char what[96];
        snprintf(what, sizeof(what), "entry %zu id", i);
        if (!same_id(w, what, &ea->id, &eb->id))
            return false;
        snprintf(what, sizeof(what), "entry %" PRIu64 "-%" PRIu64 " number of fields+values",
                 ea->id.ms, ea->id.seq);
        if (!same_int(w, what, (int64_t)ea->nfv, (int64_t)eb->nfv))
            return false;
        snprintf(what, sizeof(what), "entry %" PRIu64 "-%" PRIu64 " field/value", ea->id.ms,
                 ea->id.seq);
        for (size_t q = 0; q < ea->nfv; q++) {
            if (!same_bytes(w, what, q, &ea->fv[q], &eb->fv[q]))
                return false;
        }
    }
    if (!same_int(w, "number of groups", (int64_t)a->ngroups, (int64_t)b->ngroups))
        return false;
    for (size_t i = 0; i < a->ngroups; i++) {
        if (!same_bytes(w, "group name", i, &a->groups[i].name, &b->groups[i].name) ||
            !same_group(w, &a->groups[i], &b->groups[i]))
            return false;
    }
    return true;
}

static bool same_key(struct why *w, const struct model_key *a, const struct model_key *b)
{
    if (a->type != b->type)
        return differ(w, "type %s vs %s", model_type_name(a->type), model_type_name(b->type));
    if (a->expire_ms != b->expire_ms)
        return differ(w, "expire_ms %" PRId64 " vs %" PRId64 " (-1: none)", a->expire_ms,
                      b->expire_ms);
    switch (a->type) {
    case MODEL_STRING:
    case MODEL_MODULE:
        return same_bytes(w, "value", 0, &a->str, &b->str);
    case MODEL_LIST:
    case MODEL_SET: {
        const char *what = a->type == MODEL_LIST ? "element" : "member (sorted)";
        for (size_t i = 0; i < a->n && i < b->n; i++) {
            if (!same_bytes(w, what, i, &a->elems[i], &b->elems[i]))
                return false;
        }
        return same_int(w, "number of elements", (int64_t)a->n, (int64_t)b->n);
    }
    case MODEL_ZSET:
    case MODEL_HASH: {
        const char *what = a->type == MODEL_HASH ? "field (sorted)" : "member (sorted)";
        for (size_t i = 0; i < a->n && i < b->n; i++) {
            if (!same_bytes(w, what, i, &a->elems[i], &b->elems[i]))
                return false;
            char e[160];
            if (a->type == MODEL_HASH) {
                char what2[220];
                snprintf(what2, sizeof(what2), "value of field '%s', field", ESC(e, a->elems[i]));
                if (!same_bytes(w, what2, i, &a->values[i], &b->values[i]))
                    return false;
            } else if (!same_score(a->scores[i], b->scores[i])) {
                return differ(w, "score of member '%s': %.17g vs %.17g", ESC(e, a->elems[i]),
                              a->scores[i], b->scores[i]);
            }
        }
        return same_int(w, "number of elements", (int64_t)a->n, (int64_t)b->n);
    }
    case MODEL_STREAM:
        return same_stream(w, a->stream, b->stream);
    }
    return differ(w, "unknown type %d", a->type);
}

void redis_model_compare(const struct redis_model *server, const struct redis_model *file,
                         int64_t now_ms, struct model_diff *d)
{
    memset(d, 0, sizeof(*d));
    char e[200];
    for (unsigned db = 0; db < MODEL_DBS; db++) {
        const struct model_db *a = &server->dbs[db], *b = &file->dbs[db];
        size_t i = 0, j = 0;
        while (i < a->nkeys || j < b->nkeys) {
            int c = i == a->nkeys   ? 1
                    : j == b->nkeys ? -1
                                    : bytes_cmp(&a->keys[i].key, &b->keys[j].key);
            if (c < 0) {
                if (++d->differences <= REPORT_LIMIT)
                    report(d, "db %u key '%s' (%s): on the server, not in the file\n", db,
                           ESC(e, a->keys[i].key), model_type_name(a->keys[i].type));
                i++;
            } else if (c > 0) {
                const struct model_key *k = &b->keys[j];
                if (k->expire_ms >= 0 && k->expire_ms < now_ms) {
                    if (++d->expired_absent <= REPORT_LIMIT)
                        report(d,
                               "db %u key '%s' (%s): expired at %" PRId64
                               ", in the file, not on the server (expected)\n",
                               db, ESC(e, k->key), model_type_name(k->type), k->expire_ms);
                } else if (++d->differences <= REPORT_LIMIT) {
                    report(d, "db %u key '%s' (%s): in the file, not on the server\n", db,
                           ESC(e, k->key), model_type_name(k->type));
                }
                j++;
            } else {
                struct why w = {.s = ""};
                d->keys_compared++;
                if (!same_key(&w, &a->keys[i], &b->keys[j]) && ++d->differences <= REPORT_LIMIT)
                    report(d, "db %u key '%s' (%s): %s (server vs file)\n", db,
                           ESC(e, a->keys[i].key), model_type_name(a->keys[i].type), w.s);
                i++;
                j++;
            }
        }
    }
    size_t i = 0, j = 0;
    while (i < server->nfunctions || j < file->nfunctions) {
        int c = i == server->nfunctions ? 1
                : j == file->nfunctions ? -1
                                        : bytes_cmp(&server->functions[i], &file->functions[j]);
        if (c != 0 && ++d->differences <= REPORT_LIMIT) {
            const struct model_bytes *f = c < 0 ? &server->functions[i] : &file->functions[j];
            report(d, "function library \"%s\": %s\n", ESC(e, *f),
                   c < 0 ? "on the server, not in the file" : "in the file, not on the server");
        }
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
    }
    if (d->differences > REPORT_LIMIT)
        report(d, "... and %zu more differences\n", d->differences - REPORT_LIMIT);
}
