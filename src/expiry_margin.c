/* expiry_margin.c - exact expiries again at the end of a job (see
 * expiry_margin.h). */
#include "expiry_margin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc64.h"
#include "decimal.h"

#define EXPIRY_MARGIN_SCAN_COUNT "1000"

/* ------------------------------------------------------ the keys done */

struct key_set {
    uint64_t *h; /* pairs: (a, b); a == 0 && b == 0 is an empty bucket */
    size_t cap, len;
};

static void key_hash(const char *p, size_t n, uint64_t *a, uint64_t *b)
{
    *a = crc64_update(0, p, n);
    uint64_t f = 1469598103934665603ull; /* FNV-1a: independent of the CRC */
    for (size_t i = 0; i < n; i++)
        f = (f ^ (unsigned char)p[i]) * 1099511628211ull;
    *b = f | 1; /* never both zero */
}

static int key_set_grow(struct key_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 4096;
    uint64_t *h = calloc(cap * 2, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t a = s->h[2 * i], b = s->h[2 * i + 1];
        if (b == 0)
            continue;
        size_t j = (size_t)(a ^ b) & (cap - 1);
        while (h[2 * j + 1] != 0)
            j = (j + 1) & (cap - 1);
        h[2 * j] = a;
        h[2 * j + 1] = b;
    }
    free(s->h);
    s->h = h;
    s->cap = cap;
    return 0;
}

/* 1 when the key is new (and now in the set), 0 when it was there. */
static int key_set_add(struct key_set *s, const char *p, size_t n)
{
    if ((s->len + 1) * 2 > s->cap && key_set_grow(s) < 0)
        return -ENOMEM;
    uint64_t a, b;
    key_hash(p, n, &a, &b);
    size_t j = (size_t)(a ^ b) & (s->cap - 1);
    while (s->h[2 * j + 1] != 0) {
        if (s->h[2 * j] == a && s->h[2 * j + 1] == b)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->h[2 * j] = a;
    s->h[2 * j + 1] = b;
    s->len++;
    return 1;
}

/* ------------------------------------------------------------ the pass */

int expiry_margin_dbs(struct control_link *cl, uint64_t *dbs, uint64_t *expires,
                      struct rs_error *err)
{
    struct control_reply rep = {0};
    *dbs = 0;
    *expires = 0;
    int rc = control_link_commandv(cl, &rep, err, "INFO", "keyspace", NULL);
    if (rc < 0)
        return rc;
    if (rep.r->type != REDIS_REPLY_STRING && rep.r->type != REDIS_REPLY_STATUS) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s answered INFO keyspace with: %.100s", cl->name,
                     rep.r->str ? rep.r->str : "(not text)");
        control_reply_free(&rep);
        return -EPROTO;
    }
    for (const char *p = rep.r->str; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        unsigned db;
        unsigned long long k, e;
        if (sscanf(p, "db%u:keys=%llu,expires=%llu", &db, &k, &e) == 3 && e > 0) {
            *dbs |= 1ull << (db < 63 ? db : 63);
            *expires += e;
        }
    }
    control_reply_free(&rep);
    return 0;
}

struct pass {
    struct control_link *cl;
    struct rs_error *err;
    int64_t margin_ms;
    bool has_expiretime; /* PEXPIRETIME (Redis 7.0+); else PTTL and PEXPIRE */
    struct key_set done;
    uint64_t fixed;
    unsigned db;
    char *out; /* the pipeline being sent */
    size_t out_cap;
};

static int fail_reply(struct pass *ps, const char *what, const redisReply *r)
{
    rs_error_set(ps->err, RS_E_FORMAT, 0, "%s refused %s in db %u: %.160s", ps->cl->name, what,
                 ps->db, r->str ? r->str : "(unexpected reply)");
    return -EPROTO;
}

/* Sends cmd key [arg] for each of the n keys as one pipeline (one write),
 * then reads the n integer replies into vals. */
static int pipeline(struct pass *ps, const char *cmd, redisReply **keys, size_t n,
                    const int64_t *args, long long *vals)
{
    if (n == 0)
        return 0;
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += 64 + strlen(cmd) + keys[i]->len;
    if (need > ps->out_cap) {
        char *b = realloc(ps->out, need);
        if (b == NULL)
            return -ENOMEM;
        ps->out = b;
        ps->out_cap = need;
    }
    char *p = ps->out;
    for (size_t i = 0; i < n; i++) {
        char num[DECIMAL_MAX];
        struct rs_slice argv[3] = {{cmd, strlen(cmd)}, {keys[i]->str, keys[i]->len}, {num, 0}};
        if (args != NULL)
            argv[2].len = decimal_i64(num, args[i]);
        p = resp_put_argv(p, args != NULL ? 3 : 2, argv);
    }
    int rc = control_link_send_raw(ps->cl, ps->out, (size_t)(p - ps->out), ps->err);
    if (rc < 0)
        return rc;
    rc = control_link_read_integers(ps->cl, cmd, n, vals, ps->err);
    if (rc == -EPROTO) /* say which db */
        snprintf(ps->err->msg + strlen(ps->err->msg), sizeof(ps->err->msg) - strlen(ps->err->msg),
                 " (in db %u)", ps->db);
    return rc;
}

/* One SCAN page: the keys with an expiry get theirs less the margin. */
static int fix_page(struct pass *ps, redisReply **keys, size_t n)
{
    long long *t = calloc(n ? n : 1, sizeof(*t));
    int64_t *when = calloc(n ? n : 1, sizeof(*when));
    redisReply **todo = calloc(n ? n : 1, sizeof(*todo));
    int rc = -ENOMEM;
    size_t m = 0;
    if (t == NULL || when == NULL || todo == NULL)
        goto out;
    const char *get = ps->has_expiretime ? "PEXPIRETIME" : "PTTL";
    if ((rc = pipeline(ps, get, keys, n, NULL, t)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (t[i] < 0) /* -1 no expiry, -2 gone meanwhile */
            continue;
        int added = key_set_add(&ps->done, keys[i]->str, keys[i]->len);
        if (added < 0) {
            rc = -ENOMEM;
            goto out;
        }
        if (added == 0)
            continue; /* SCAN returned it again: done already */
        int64_t v = t[i] - ps->margin_ms;
        when[m] = ps->has_expiretime || v > 0 ? v : 0;
        todo[m++] = keys[i];
    }
    const char *set = ps->has_expiretime ? "PEXPIREAT" : "PEXPIRE";
    rc = pipeline(ps, set, todo, m, when, t);
    for (size_t i = 0; rc == 0 && i < m; i++)
        ps->fixed += t[i] == 1;
out:
    if (rc == -ENOMEM)
        rs_error_set(ps->err, RS_E_LIMIT, 0, "out of memory while correcting expiries of %s",
                     ps->cl->name);
    free(t);
    free(when);
    free(todo);
    return rc;
}

static int fix_db(struct pass *ps)
{
    /* the same name in another db is another key */
    if (ps->done.cap > 0)
        memset(ps->done.h, 0, ps->done.cap * 2 * sizeof(*ps->done.h));
    ps->done.len = 0;
    char dbs[16];
    snprintf(dbs, sizeof(dbs), "%u", ps->db);
    struct control_reply rep = {0};
    int rc = control_link_commandv(ps->cl, &rep, ps->err, "SELECT", dbs, NULL);
    if (rc < 0)
        return rc;
    if (rep.r->type == REDIS_REPLY_ERROR)
        rc = fail_reply(ps, "SELECT", rep.r);
    control_reply_free(&rep);
    char cursor[32] = "0";
    while (rc == 0) {
        rc = control_link_commandv(ps->cl, &rep, ps->err, "SCAN", cursor, "COUNT",
                                   EXPIRY_MARGIN_SCAN_COUNT, NULL);
        if (rc < 0)
            break;
        const redisReply *r = rep.r;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = fail_reply(ps, "SCAN", r);
            control_reply_free(&rep);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        rc = fix_page(ps, r->element[1]->element, r->element[1]->elements);
        control_reply_free(&rep);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    return rc;
}

int expiry_margin_check_rights(struct control_link *cl, const char *user, int64_t margin_ms,
                               struct rs_error *err)
{
    /* PEXPIRETIME is 7.0's: an older server answers "unknown command", and
     * the removal uses PTTL there */
    static const char *probes[][5] = {
        {"INFO", "keyspace", NULL},
        {"SCAN", "0", "COUNT", "1", NULL},
        {"PEXPIRETIME", "ringsync:probe:margin", NULL},
        /* PEXPIREAT is a write (a paused destination would hold it): writes
         * show at their first refusal */
    };
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int argc = 0;
        while (probes[i][argc] != NULL)
            argc++;
        struct control_reply rep = {0};
        if (control_link_command(cl, &rep, err, argc, probes[i], NULL) < 0)
            return -1;
        bool noperm = rep.r->type == REDIS_REPLY_ERROR && strncmp(rep.r->str, "NOPERM", 6) == 0;
        if (noperm) {
            const char *who = user[0] ? user : "default";
            rs_error_set(err, RS_E_UNSUPPORTED, 0,
                         "destination %s: user '%s' may not run %s (%.120s), which ringsync "
                         "needs to take the expiry margin off every key when it stops (while it "
                         "follows it writes the source's expiries %" PRId64
                         " s late): allow it (ACL SETUSER %s +info +scan +pexpiretime +pttl "
                         "+pexpireat +pexpire, and its keys ~*), or pass --expiry-margin 0",
                         cl->name, who, probes[i][0], rep.r->str, margin_ms / 1000, who);
        }
        control_reply_free(&rep);
        if (noperm)
            return -EACCES;
    }
    return 0;
}

int expiry_margin_remove(struct control_link *cl, int64_t margin_ms, uint64_t *fixed,
                         struct rs_error *err)
{
    struct pass ps = {.cl = cl, .err = err, .margin_ms = margin_ms, .has_expiretime = true};
    uint64_t dbs, expires;
    *fixed = 0;
    int rc = expiry_margin_dbs(cl, &dbs, &expires, err);
    if (rc < 0 || dbs == 0)
        return rc;
    /* PEXPIRETIME of a key that does not exist: -2 on 7.0+, an error before */
    struct control_reply rep = {0};
    rc = control_link_commandv(cl, &rep, err, "PEXPIRETIME", "ringsync:probe", NULL);
    if (rc < 0)
        return rc;
    /* A cluster node answers MOVED for a key of another node's slot, which
     * it says only after finding the command: it has PEXPIRETIME too. */
    ps.has_expiretime =
        rep.r->type == REDIS_REPLY_INTEGER ||
        (rep.r->type == REDIS_REPLY_ERROR &&
         (strncmp(rep.r->str, "MOVED ", 6) == 0 || strncmp(rep.r->str, "ASK ", 4) == 0));
    control_reply_free(&rep);
    unsigned last = dbs >> 63 ? 1024 : 63; /* bit 63: db 63 or beyond */
    for (unsigned db = 0; rc == 0 && db <= last; db++) {
        if (!(dbs >> (db < 63 ? db : 63) & 1))
            continue; /* db 63 and beyond only when INFO showed one of them */
        ps.db = db;
        rc = fix_db(&ps);
        if (rc < 0 && db >= 63 && strstr(err->msg, "DB index is out of range"))
            rc = 0, last = db; /* past the destination's last db */
    }
    if (rc == 0 && (dbs & ~1ull) != 0) {
        rc = control_link_commandv(cl, &rep, err, "SELECT", "0", NULL);
        if (rc == 0)
            control_reply_free(&rep);
    }
    *fixed = ps.fixed;
    free(ps.done.h);
    free(ps.out);
    return rc;
}
