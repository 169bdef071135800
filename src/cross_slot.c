/* cross_slot.c - cross-slot commands carried out as the same effects on a
 * cluster (see cross_slot.h). */
#include "cross_slot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "cluster_redirect.h"
#include "command_table.h"
#include "control_link.h"
#include "dest_reply.h"
#include "job.h"
#include "proxy_commands.h"
#include "rs_error.h"
#include "slot.h"

#define CROSS_SLOT_MAX_ARGS 4096 /* a *STORE with more inputs is left to --cross-slot */
#define CROSS_SLOT_TMP_CAP  320  /* "{tag}ringsync:tmp:N"; through a proxy tag = a key */

struct cross_slot {
    struct job *job;
    struct cluster_redirect *h;
    struct control_link *links; /* per master index; buf NULL: not open */
    size_t nlinks;
    uint32_t *tag_of_slot; /* a counter whose text hashes to each slot (made when first needed) */
    uint64_t count;
    const char *what; /* the command being carried out, for messages */
    bool proxy;       /* cross_slot_set_proxy: steps the proxy refuses go EVAL-wrapped */
    bool proxy_eval;
    bool proxy_tag; /* the proxy hashes {tags}: the *STORE family's temporaries by the key */
    /* scratch */
    const char *argv[CROSS_SLOT_MAX_ARGS];
    size_t lens[CROSS_SLOT_MAX_ARGS];
    char tmp[CROSS_SLOT_MAX_ARGS][CROSS_SLOT_TMP_CAP];
};

struct cross_slot *cross_slot_new(struct job *job, struct cluster_redirect *h)
{
    struct cross_slot *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->job = job;
    x->h = h;
    return x;
}

void cross_slot_set_proxy(struct cross_slot *x, bool eval, bool tag)
{
    x->proxy = true;
    x->proxy_eval = eval;
    x->proxy_tag = tag;
}

/* Through a proxy that hashes {tags}: the tag T of a temporary "{T}..."
 * that the proxy puts with key: key's own tag, or the whole key when it
 * has none (both hashed alike); len 0 when there is none (a '}' without a
 * valid tag, or too long). */
static struct rs_slice proxy_tmp_tag(struct rs_slice key)
{
    struct rs_slice t = proxy_hash_part(key, true);
    bool whole = t.p == key.p && t.len == key.len;
    if ((whole && memchr(key.p, '}', key.len) != NULL) || t.len == 0 ||
        t.len > CROSS_SLOT_TMP_CAP - 32)
        return (struct rs_slice){key.p, 0};
    return t;
}

void cross_slot_free(struct cross_slot *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->nlinks; i++)
        control_link_close(&x->links[i]);
    free(x->links);
    free(x->tag_of_slot);
    free(x);
}

uint64_t cross_slot_count(const struct cross_slot *x)
{
    return x->count;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The producer's link to master `node`, opened when first needed. */
static struct control_link *link_to(struct cross_slot *x, int node)
{
    if ((size_t)node >= x->nlinks) {
        size_t n = (size_t)node + 1;
        struct control_link *l = realloc(x->links, n * sizeof(*l));
        if (l == NULL) {
            job_fail(x->job, "out of memory while carrying out %s", x->what);
            return NULL;
        }
        memset(l + x->nlinks, 0, (n - x->nlinks) * sizeof(*l));
        x->links = l;
        x->nlinks = n;
    }
    struct control_link *cl = &x->links[node];
    if (cl->buf != NULL)
        return cl;
    struct endpoint ep;
    struct rs_error err = {0};
    cluster_redirect_endpoint(x->h, (unsigned)node, &ep);
    if (control_link_open(cl, &ep, cluster_redirect_timeout_ms(x->h), &err) < 0) {
        job_fail_lost(x->job, "cannot carry out %s: %s", x->what, err.msg);
        return NULL;
    }
    return cl;
}

/* A step in the form the proxy runs, into wv/wl: as it is, or EVAL-wrapped
 * (routed by its first key). Its argc, or -1 after job_fail (no form). */
static int proxy_step(struct cross_slot *x, int argc, const char **argv, const size_t *lens,
                      const char **wv, size_t *wl)
{
    struct rs_slice sv[CROSS_SLOT_MAX_ARGS], out[CROSS_SLOT_MAX_ARGS + PROXY_WRAP_EXTRA];
    if (argc > CROSS_SLOT_MAX_ARGS) {
        job_fail(x->job, "while carrying out %s: a step of %d arguments", x->what, argc);
        return -1;
    }
    for (int i = 0; i < argc; i++)
        sv[i] = (struct rs_slice){argv[i], lens[i]};
    const struct command_spec *spec = command_lookup(argv[0], lens[0]);
    int key = argc >= 2 ? 1 : 0; /* the steps not in the table (PEXPIRETIME) have it there */
    if (spec != NULL && command_keys(spec, argc, sv, &key, 1) != 1)
        key = 0;
    enum proxy_form f = proxy_form_of(argc, sv, key);
    int n = argc;
    if (f == PROXY_WRAP && x->proxy_eval)
        n = proxy_wrap(argc, sv, key, out);
    else if (f == PROXY_AS_IS)
        memcpy(out, sv, (size_t)argc * sizeof(*sv));
    else
        n = -1;
    if (n < 0) {
        job_fail(x->job,
                 "while carrying out %s through the proxy: its step %.*s has no form the proxy "
                 "runs (%s)",
                 x->what, (int)(lens[0] > 30 ? 30 : lens[0]), argv[0],
                 f == PROXY_WRAP ? "EVAL was refused at the start" : "no key");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        wv[i] = out[i].p;
        wl[i] = out[i].len;
    }
    return n;
}

/* Runs argv[0..argc) on the node serving slot, following MOVED and ASK and
 * waiting out BUSY/LOADING/TRYAGAIN/CLUSTERDOWN; *rep is its reply (an
 * error reply included: the caller decides). 0, or -1 after job_fail. */
static int run(struct cross_slot *x, unsigned slot, int argc, const char **argv, const size_t *lens,
               struct control_reply *rep)
{
    const char *wv[CROSS_SLOT_MAX_ARGS + PROXY_WRAP_EXTRA];
    size_t wl[CROSS_SLOT_MAX_ARGS + PROXY_WRAP_EXTRA];
    if (x->proxy && (argc = proxy_step(x, argc, argv, lens, wv, wl)) < 0)
        return -1;
    if (x->proxy) {
        argv = wv;
        lens = wl;
    }
    double t0 = mono_s();
    int node = cluster_redirect_owner(x->h, slot);
    bool asking = false;
    for (int backoff_ms = 10;;) {
        struct control_link *cl = link_to(x, node);
        if (cl == NULL)
            return -1;
        struct rs_error err = {0};
        if (asking) {
            struct control_reply a = {0};
            if (control_link_commandv(cl, &a, &err, "ASKING", NULL) < 0) {
                job_fail_lost(x->job, "while carrying out %s: %s", x->what, err.msg);
                return -1;
            }
            control_reply_free(&a);
        }
        if (control_link_command(cl, rep, &err, argc, argv, lens) < 0) {
            /* a lost link: with checkpoints the job resumes, and this
             * command, cut in its middle, runs again (CHECKPOINTS.md) */
            job_fail_lost(x->job, "while carrying out %s: %s", x->what, err.msg);
            return -1;
        }
        const redisReply *r = rep->r;
        if (r->type != REDIS_REPLY_ERROR)
            return 0;
        enum dest_reply_kind kind = dest_reply_classify(r->str, r->len, NULL, NULL);
        if (kind == DEST_REPLY_REDIRECT) {
            bool is_ask = strncmp(r->str, "ASK ", 4) == 0;
            const char *p = strchr(r->str, ' ');
            const char *addr = p ? strchr(p + 1, ' ') : NULL;
            if (addr == NULL) {
                job_fail(x->job, "while carrying out %s: %s answered -%s", x->what, cl->name,
                         r->str);
                return -1;
            }
            addr++;
            /* MOVED: the slot's new owner, now (nothing else is in flight);
             * ASK: that node for this step only */
            int to = is_ask ? cluster_redirect_node_at(x->h, slot, addr, strlen(addr), &err)
                            : cluster_redirect_apply_moved(x->h, slot, addr, strlen(addr), &err);
            if (to < 0) {
                job_fail(x->job, "while carrying out %s: %s", x->what, err.msg);
                return -1;
            }
            control_reply_free(rep);
            node = to;
            asking = is_ask;
            continue;
        }
        if (kind == DEST_REPLY_RETRY) {
            double limit = x->job->retry_timeout_s;
            if (limit > 0 && mono_s() - t0 > limit)
                return 0; /* the caller names the reply */
            control_reply_free(rep);
            struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
            backoff_ms = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
            continue;
        }
        return 0;
    }
}

/* run(), then: an error reply fails the job naming the step. */
static int step(struct cross_slot *x, unsigned slot, int argc, const char **argv,
                const size_t *lens, struct control_reply *rep)
{
    if (run(x, slot, argc, argv, lens, rep) < 0)
        return -1;
    if (rep->r->type == REDIS_REPLY_ERROR) {
        char name[40];
        snprintf(name, sizeof(name), "%.*s", (int)(lens[0] < 30 ? lens[0] : 30), argv[0]);
        job_fail(x->job,
                 "while carrying out %s on the cluster (as the same effects), its step %s was "
                 "refused by the node serving slot %u: -%s",
                 x->what, name, slot, rep->r->str);
        control_reply_free(rep);
        return -1;
    }
    return 0;
}

/* Copies key (in slot from) as DUMP's payload and its PEXPIRETIME; *t -1
 * for no expiry. 1 copied, 0 the key does not exist, -1 failed. */
static int dump(struct cross_slot *x, struct rs_slice key, unsigned from,
                struct control_reply *payload, long long *t)
{
    const char *a[2] = {"DUMP", key.p};
    size_t l[2] = {4, key.len};
    if (step(x, from, 2, a, l, payload) < 0)
        return -1;
    if (payload->r->type == REDIS_REPLY_NIL) {
        control_reply_free(payload);
        return 0;
    }
    struct control_reply rt = {0};
    a[0] = "PEXPIRETIME";
    l[0] = 11;
    if (step(x, from, 2, a, l, &rt) < 0) {
        control_reply_free(payload);
        return -1;
    }
    *t = rt.r->type == REDIS_REPLY_INTEGER ? rt.r->integer : -1;
    control_reply_free(&rt);
    return 1;
}

/* RESTORE key (slot to) from a DUMP payload, with expiry t (-1: none). */
static int restore(struct cross_slot *x, const char *key, size_t key_len, unsigned to,
                   const redisReply *payload, long long t)
{
    char ttl[24];
    int n = snprintf(ttl, sizeof(ttl), "%lld", t > 0 ? t : 0);
    const char *a[6] = {"RESTORE", key, ttl, payload->str, "REPLACE", "ABSTTL"};
    size_t l[6] = {7, key_len, (size_t)n, payload->len, 7, 6};
    struct control_reply rep = {0};
    int rc = step(x, to, t > 0 ? 6 : 5, a, l, &rep);
    control_reply_free(&rep);
    return rc;
}

static int simple(struct cross_slot *x, unsigned slot, int argc, const char **argv,
                  const size_t *lens)
{
    struct control_reply rep = {0};
    int rc = step(x, slot, argc, argv, lens, &rep);
    control_reply_free(&rep);
    return rc;
}

static bool is(const struct rs_slice *s, const char *w)
{
    size_t n = strlen(w);
    return s->len == n && strncasecmp(s->p, w, n) == 0;
}

/* RENAME, RENAMENX, COPY: the value (and expiry) moved or copied; keys at
 * argv[1] (slots[0]) and argv[2] (slots[1]). */
static int copy_key(struct cross_slot *x, const struct rs_slice *argv, const unsigned *slots,
                    bool delete_source)
{
    struct control_reply payload = {0};
    long long t = -1;
    int rc = dump(x, argv[1], slots[0], &payload, &t);
    if (rc <= 0) {
        if (rc == 0) /* the source ran it, so the key was there */
            job_fail(x->job,
                     "cannot carry out %s on the cluster: its key is not on the destination "
                     "(the destination differs from the source)",
                     x->what);
        return -1;
    }
    rc = restore(x, argv[2].p, argv[2].len, slots[1], payload.r, t);
    control_reply_free(&payload);
    if (rc == 0 && delete_source) {
        const char *a[2] = {"DEL", argv[1].p};
        size_t l[2] = {3, argv[1].len};
        rc = simple(x, slots[0], 2, a, l);
    }
    return rc;
}

/* LMOVE a b FROM TO (RPOPLPUSH: RIGHT LEFT). */
static int move_element(struct cross_slot *x, const struct rs_slice *argv, const unsigned *slots,
                        bool from_left, bool to_left)
{
    const char *a[3] = {from_left ? "LPOP" : "RPOP", argv[1].p};
    size_t l[3] = {4, argv[1].len};
    struct control_reply rep = {0};
    if (step(x, slots[0], 2, a, l, &rep) < 0)
        return -1;
    if (rep.r->type != REDIS_REPLY_STRING) {
        control_reply_free(&rep);
        job_fail(x->job,
                 "cannot carry out %s on the cluster: its source list is empty on the "
                 "destination (the destination differs from the source)",
                 x->what);
        return -1;
    }
    a[0] = to_left ? "LPUSH" : "RPUSH";
    l[0] = 5;
    a[1] = argv[2].p;
    l[1] = argv[2].len;
    a[2] = rep.r->str;
    l[2] = rep.r->len;
    int rc = simple(x, slots[1], 3, a, l);
    control_reply_free(&rep);
    return rc;
}

/* A name whose hash slot is slot (a "{tag}" prefix), for temporaries. */
static int tmp_name(struct cross_slot *x, unsigned slot, int i, char *out, size_t cap)
{
    if (x->tag_of_slot == NULL) {
        if ((x->tag_of_slot = calloc(SLOT_COUNT, sizeof(*x->tag_of_slot))) == NULL)
            return -1;
        unsigned left = SLOT_COUNT;
        for (uint32_t c = 1; left > 0; c++) { /* about 160,000 tries, once */
            char t[16];
            int n = snprintf(t, sizeof(t), "%" PRIu32, c);
            unsigned s = slot_of_key(t, (size_t)n);
            if (x->tag_of_slot[s] == 0) {
                x->tag_of_slot[s] = c;
                left--;
            }
        }
    }
    return snprintf(out, cap, "{%" PRIu32 "}ringsync:tmp:%d", x->tag_of_slot[slot], i);
}

/* The *STORE family: inputs of other slots copied next to the key written
 * (at keys[anchor]), the command run there, the copies deleted. Through a
 * proxy: inputs its hash puts elsewhere, into temporaries tagged so that it
 * puts them with the key written (proxy_tmp_tag). */
static int store_family(struct cross_slot *x, int argc, const struct rs_slice *argv,
                        const int *keys, const unsigned *slots, int nkeys, int anchor)
{
    unsigned at = slots[anchor];
    struct rs_slice wk = argv[keys[anchor]], tag = {wk.p, 0};
    if (x->proxy && (tag = proxy_tmp_tag(wk)).len == 0) {
        job_fail(x->job,
                 "cannot carry out %s through the proxy: its key written has no name a "
                 "temporary could share its server with",
                 x->what);
        return -1;
    }
    int ntmp = 0, rc = 0;
    for (int i = 0; i < argc; i++) {
        x->argv[i] = argv[i].p;
        x->lens[i] = argv[i].len;
    }
    for (int k = 0; k < nkeys && rc == 0; k++) {
        if (k == anchor || (x->proxy ? proxy_same_server(argv[keys[k]], wk, true) : slots[k] == at))
            continue;
        char *name = x->tmp[ntmp];
        int n = x->proxy ? snprintf(name, CROSS_SLOT_TMP_CAP, "{%.*s}ringsync:tmp:%d", (int)tag.len,
                                    tag.p, ntmp)
                         : tmp_name(x, at, ntmp, name, CROSS_SLOT_TMP_CAP);
        if (n < 0) {
            job_fail(x->job, "out of memory while carrying out %s", x->what);
            return -1;
        }
        ntmp++;
        struct control_reply payload = {0};
        long long t;
        int got = dump(x, argv[keys[k]], slots[k], &payload, &t);
        if (got < 0)
            return -1;
        if (got == 1) { /* no expiry on the copy: it lives for this command only */
            rc = restore(x, name, (size_t)n, at, payload.r, -1);
            control_reply_free(&payload);
        }
        x->argv[keys[k]] = name;
        x->lens[keys[k]] = (size_t)n;
    }
    if (rc == 0)
        rc = simple(x, at, argc, x->argv, x->lens);
    if (rc == 0 && ntmp > 0) {
        const char *a[1 + 64];
        size_t l[1 + 64];
        for (int i = 0; i < ntmp && rc == 0;) {
            int n = 0;
            a[n] = "DEL";
            l[n++] = 3;
            for (; i < ntmp && n < 65; i++, n++) {
                a[n] = x->tmp[i];
                l[n] = strlen(x->tmp[i]);
            }
            rc = simple(x, at, n, a, l);
        }
    }
    return rc;
}

static const char *const store_family_names[] = {
    "sunionstore", "sinterstore", "sdiffstore",       "zunionstore", "zinterstore",
    "zdiffstore",  "zrangestore", "geosearchstore",   "pfmerge",     "bitop",
    "sort",        "georadius",   "georadiusbymember"};

bool cross_slot_can_carry_proxy(int argc, const struct rs_slice *argv, const int *keys, int nkeys,
                                bool tag)
{
    if (!cross_slot_can_carry(argc, argv))
        return false;
    for (size_t i = 0; i < sizeof(store_family_names) / sizeof(store_family_names[0]); i++)
        if (is(&argv[0], store_family_names[i])) {
            /* the key written: STORE's (the last key) or the first */
            bool last = is(&argv[0], "sort") || is(&argv[0], "georadius") ||
                        is(&argv[0], "georadiusbymember");
            return tag && nkeys > 0 && proxy_tmp_tag(argv[keys[last ? nkeys - 1 : 0]]).len > 0;
        }
    return true;
}

bool cross_slot_can_carry(int argc, const struct rs_slice *argv)
{
    const struct rs_slice *cmd = &argv[0];
    if (argc > CROSS_SLOT_MAX_ARGS)
        return false;
    if (((is(cmd, "rename") || is(cmd, "renamenx")) && argc == 3) ||
        (is(cmd, "smove") && argc == 4) || (is(cmd, "rpoplpush") && argc == 3) ||
        (is(cmd, "lmove") && argc == 5))
        return true;
    if (is(cmd, "copy") && argc >= 3) {
        for (int i = 3; i < argc; i++)
            if (!is(&argv[i], "replace"))
                return false;
        return true;
    }
    for (size_t i = 0; i < sizeof(store_family_names) / sizeof(store_family_names[0]); i++)
        if (is(cmd, store_family_names[i]))
            return true;
    return false;
}

/* "NAME at source offset A..B" into out, for messages. */
static void describe(const struct rs_slice *name, uint64_t from, uint64_t to, char *out, size_t cap)
{
    char n[32];
    rs_escape_bytes(n, sizeof(n), name->p, name->len, 20);
    for (char *p = n; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    snprintf(out, cap, "%s at source offset %" PRIu64 "..%" PRIu64, n, from, to);
}

int cross_slot_run(struct cross_slot *x, int argc, const struct rs_slice *argv, unsigned slot,
                   uint64_t from, uint64_t to)
{
    char what[120];
    if (argc > CROSS_SLOT_MAX_ARGS) {
        job_fail(x->job,
                 "a command of %d arguments in a transaction is past what ringsync carries "
                 "out (%d)",
                 argc, CROSS_SLOT_MAX_ARGS);
        return -1;
    }
    describe(&argv[0], from, to, what, sizeof(what));
    x->what = what;
    for (int i = 0; i < argc; i++) {
        x->argv[i] = argv[i].p;
        x->lens[i] = argv[i].len;
    }
    return simple(x, slot, argc, x->argv, x->lens);
}

int cross_slot_carry(struct cross_slot *x, int argc, const struct rs_slice *argv, const int *keys,
                     const unsigned *slots, int nkeys, uint64_t from, uint64_t to)
{
    if (nkeys < 2 || !cross_slot_can_carry(argc, argv))
        return 0;
    char what[120];
    describe(&argv[0], from, to, what, sizeof(what));
    x->what = what;
    const struct rs_slice *cmd = &argv[0];
    int rc;
    if ((is(cmd, "rename") || is(cmd, "renamenx")) && argc == 3)
        rc = copy_key(x, argv, slots, true);
    else if (is(cmd, "copy") && argc >= 3) {
        for (int i = 3; i < argc; i++)
            if (!is(&argv[i], "replace"))
                return 0; /* COPY ... DB n: another database */
        rc = copy_key(x, argv, slots, false);
    } else if (is(cmd, "smove") && argc == 4) {
        const char *a[3] = {"SREM", argv[1].p, argv[3].p};
        size_t l[3] = {4, argv[1].len, argv[3].len};
        rc = simple(x, slots[0], 3, a, l);
        if (rc == 0) {
            a[0] = "SADD";
            a[1] = argv[2].p;
            l[1] = argv[2].len;
            rc = simple(x, slots[1], 3, a, l);
        }
    } else if (is(cmd, "rpoplpush") && argc == 3) {
        rc = move_element(x, argv, slots, false, true);
    } else if (is(cmd, "lmove") && argc == 5) {
        rc = move_element(x, argv, slots, is(&argv[3], "left"), is(&argv[4], "left"));
    } else if (is(cmd, "sort") || is(cmd, "georadius") || is(cmd, "georadiusbymember")) {
        rc = store_family(x, argc, argv, keys, slots, nkeys, nkeys - 1); /* the STORE key */
    } else { /* the rest of the *STORE family: the key written first */
        rc = store_family(x, argc, argv, keys, slots, nkeys, 0);
    }
    if (rc < 0)
        return -1;
    x->count++;
    return 1;
}
