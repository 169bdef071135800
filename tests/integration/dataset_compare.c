/* dataset_compare.c - a destination against its oracle (dataset_compare.h). */
#include "dataset_compare.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slot.h"

void dataset_forget_consumer_times(struct redis_model *m)
{
    for (unsigned db = 0; db < MODEL_DBS; db++)
        for (size_t i = 0; i < m->dbs[db].nkeys; i++) {
            struct model_stream *s = m->dbs[db].keys[i].stream;
            if (m->dbs[db].keys[i].type != MODEL_STREAM || s == NULL)
                continue;
            for (size_t g = 0; g < s->ngroups; g++)
                for (size_t c = 0; c < s->groups[g].nconsumers; c++) {
                    s->groups[g].consumers[c].seen_time_ms = 0;
                    s->groups[g].consumers[c].active_time_ms = -1;
                }
        }
}

static int64_t target_expiry_shift_ms;

void dataset_set_target_expiry_shift(int64_t ms)
{
    target_expiry_shift_ms = ms;
}

static void unshift_expiries(struct redis_model *m)
{
    for (unsigned db = 0; db < MODEL_DBS; db++)
        for (size_t i = 0; i < m->dbs[db].nkeys; i++)
            if (m->dbs[db].keys[i].expire_ms >= 0)
                m->dbs[db].keys[i].expire_ms -= target_expiry_shift_ms;
}

static const bool *migrated_slots;
static int64_t migrated_tolerance_ms;

void dataset_set_migrated_expiry_tolerance(const bool *slots, int64_t ms)
{
    migrated_slots = slots;
    migrated_tolerance_ms = ms;
}

/* The expiries of got's keys in migrated slots at most the tolerance later
 * than want's become want's (dataset_set_migrated_expiry_tolerance). */
static void forgive_migration_drift(struct redis_model *got, const struct redis_model *want)
{
    if (migrated_slots == NULL || migrated_tolerance_ms <= 0)
        return;
    size_t forgiven = 0;
    int64_t most = 0;
    struct model_db *d = &got->dbs[0];
    for (size_t i = 0; i < d->nkeys; i++) {
        struct model_key *k = &d->keys[i];
        if (k->expire_ms < 0 || !migrated_slots[slot_of_key(k->key.p, k->key.len)])
            continue;
        const struct model_key *w = redis_model_find(want, 0, k->key.p, k->key.len);
        if (w == NULL || w->expire_ms < 0 || k->expire_ms == w->expire_ms)
            continue;
        int64_t late = k->expire_ms - w->expire_ms;
        if (late > 0 && late <= migrated_tolerance_ms) {
            k->expire_ms = w->expire_ms;
            forgiven++;
            most = late > most ? late : most;
        }
    }
    if (forgiven > 0)
        cr_log_info("%zu keys of migrated slots expire up to %" PRId64
                    " ms later than the oracle's (MIGRATE's relative TTL): taken as equal",
                    forgiven, most);
}

void dataset_digest(redisContext *c, char *buf, size_t cap)
{
    redisReply *r = redis_fixture_command(c, "DEBUG DIGEST");
    cr_assert(r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING);
    snprintf(buf, cap, "%s", r->str);
    freeReplyObject(r);
}

static char *function_list(redisContext *c)
{
    redisReply *r = redis_fixture_command(c, "FUNCTION LIST WITHCODE");
    char *s = redis_fixture_reply_canonical(r);
    freeReplyObject(r);
    return s;
}

/* DEBUG DIGEST-VALUE of every key of want (each db SELECTed), on a and on
 * b: true when all are equal; what says how many differ. Both left on db 0. */
static bool same_value_digests(redisContext *a, redisContext *b, const struct redis_model *want,
                               char *what, size_t cap)
{
    size_t differ = 0, total = 0;
    char first[64] = "";
    for (unsigned db = 0; db < MODEL_DBS; db++) {
        const struct model_db *d = &want->dbs[db];
        if (d->nkeys == 0)
            continue;
        redis_fixture_exec(a, "SELECT %u", db);
        redis_fixture_exec(b, "SELECT %u", db);
        for (size_t from = 0; from < d->nkeys; from += 1000) {
            size_t to = d->nkeys - from < 1000 ? d->nkeys : from + 1000;
            for (size_t k = from; k < to; k++) {
                const struct model_bytes *key = &d->keys[k].key;
                cr_assert(
                    redisAppendCommand(a, "DEBUG DIGEST-VALUE %b", key->p, key->len) == REDIS_OK &&
                    redisAppendCommand(b, "DEBUG DIGEST-VALUE %b", key->p, key->len) == REDIS_OK);
            }
            for (size_t k = from; k < to; k++) {
                void *vx = NULL, *vy = NULL;
                cr_assert(redisGetReply(a, &vx) == REDIS_OK && redisGetReply(b, &vy) == REDIS_OK);
                redisReply *x = vx, *y = vy;
                cr_assert(x->type == REDIS_REPLY_ARRAY && y->type == REDIS_REPLY_ARRAY &&
                              x->elements == 1 && y->elements == 1,
                          "DEBUG DIGEST-VALUE: unexpected reply");
                bool same = x->element[0]->len == y->element[0]->len &&
                            memcmp(x->element[0]->str, y->element[0]->str, x->element[0]->len) == 0;
                if (!same && differ++ == 0)
                    snprintf(first, sizeof(first), "db %u '%.40s'", db, d->keys[k].key.p);
                total++;
                freeReplyObject(x);
                freeReplyObject(y);
            }
        }
    }
    redis_fixture_exec(a, "SELECT 0");
    redis_fixture_exec(b, "SELECT 0");
    snprintf(what, cap,
             "per-key DEBUG DIGEST-VALUE (the target holds checkpoints): %zu of %zu "
             "keys differ%s%s",
             differ, total, differ ? ", first " : "", first);
    return differ == 0;
}

void dataset_compare(struct redis_fixture *dst, struct redis_fixture *oracle,
                     struct dataset_comparison *c)
{
    memset(c, 0, sizeof(*c));
    char a[64], b[64];
    dataset_digest(dst->ctx, a, sizeof(a));
    dataset_digest(oracle->ctx, b, sizeof(b));
    c->same_digest = strcmp(a, b) == 0;
    snprintf(c->digests, sizeof(c->digests), "target %s, oracle %s", a, b);

    struct redis_model got, want;
    redis_model_from_server(&got, dst->ctx);
    redis_model_from_server(&want, oracle->ctx);
    if (got.checkpoint_keys > 0 || want.checkpoint_keys > 0) {
        /* ringsync's checkpoints are in the target's DEBUG DIGEST: each of
         * the oracle's keys' DEBUG DIGEST-VALUE instead, on both sides */
        c->same_digest =
            same_value_digests(dst->ctx, oracle->ctx, &want, c->digests, sizeof(c->digests));
    }
    dataset_forget_consumer_times(&got);
    dataset_forget_consumer_times(&want);
    unshift_expiries(&got);
    c->diff = malloc(sizeof(*c->diff));
    cr_assert(c->diff != NULL);
    redis_model_compare(&got, &want, 0, c->diff); /* now_ms 0: nothing may be missing as expired */
    c->differences = c->diff->differences + c->diff->expired_absent;
    c->keys_compared = c->diff->keys_compared;
    c->target_keys = redis_model_count(&got, MODEL_DBS);
    c->oracle_keys = redis_model_count(&want, MODEL_DBS);
    redis_model_free(&got);
    redis_model_free(&want);

    char *fa = function_list(dst->ctx);
    char *fb = function_list(oracle->ctx);
    c->same_functions = strcmp(fa, fb) == 0;
    if (!c->same_functions)
        cr_log_error("FUNCTION LIST differs:\ntarget %s\noracle %s", fa, fb);
    free(fa);
    free(fb);
}

void dataset_comparison_deinit(struct dataset_comparison *c)
{
    free(c->diff);
    c->diff = NULL;
}

void assert_dataset_equals(struct redis_fixture *dst, struct redis_fixture *oracle,
                           const char *oracle_name, const char *what)
{
    struct dataset_comparison c;
    dataset_compare(dst, oracle, &c);
    cr_assert(c.differences == 0 && c.target_keys == c.oracle_keys,
              "%s: the target differs from the %s in %zu keys (%zu compared; target %zu keys, "
              "%s %zu):\n%s",
              what, oracle_name, c.differences, c.keys_compared, c.target_keys, oracle_name,
              c.oracle_keys, c.diff->report);
    cr_assert(c.same_digest, "%s: DEBUG DIGEST: %s", what, c.digests);
    cr_assert(c.same_functions, "%s: FUNCTION LIST differs (see the log)", what);
    cr_assert(c.keys_compared > 0, "%s: nothing compared", what);
    cr_log_info("%s: the target equals the %s: %zu keys, digest %s", what, oracle_name,
                c.keys_compared, c.digests);
    dataset_comparison_deinit(&c);
}

void assert_comparison_catches_a_change(struct redis_fixture *dst, struct redis_fixture *oracle)
{
    redisContext *c = redis_fixture_connect(dst);
    redis_fixture_exec(c, "SELECT 7");
    redisReply *r = redis_fixture_command(c, "GET dbk:7");
    cr_assert(r->type == REDIS_REPLY_STRING, "the target has no dbk:7 in db 7");
    freeReplyObject(r);
    redis_fixture_exec(c, "SET dbk:7 changed KEEPTTL");
    redisFree(c);
    struct dataset_comparison cmp;
    dataset_compare(dst, oracle, &cmp);
    cr_assert(cmp.differences == 1 && strstr(cmp.diff->report, "dbk:7") != NULL,
              "the model comparison saw %zu differences, not the one made (db 7, dbk:7):\n%s",
              cmp.differences, cmp.diff->report);
    cr_assert(!cmp.same_digest, "DEBUG DIGEST did not change: %s", cmp.digests);
    dataset_comparison_deinit(&cmp);
}

/* ---------------------------------------------------------- a cluster target */

#define KEY_DIGEST_PIPELINE 1000

/* Connections to the masters of v (in its order), into ctxs. */
static void connect_masters(const struct cluster_fixture *dst, const struct cluster_fixture_view *v,
                            redisContext **ctxs, char *names, size_t cap)
{
    size_t used = 0;
    names[0] = '\0';
    for (int i = 0; i < v->nmasters; i++) {
        int node = v->masters[i];
        ctxs[i] = redis_fixture_connect(dst->nodes[node]);
        int n = snprintf(names + used, cap - used, "%snode %d 127.0.0.1:%d", i ? ", " : "", node,
                         dst->nodes[node]->port);
        if (n > 0 && used + (size_t)n < cap)
            used += (size_t)n;
    }
}

/* Keys of the oracle outside db 0, counted and named into c. */
static void count_outside_db0(const struct redis_model *oracle, struct dataset_comparison *c)
{
    size_t used = 0;
    for (unsigned db = 1; db < MODEL_DBS; db++) {
        size_t n = redis_model_count(oracle, db);
        if (n == 0)
            continue;
        c->oracle_keys_outside_db0 += n;
        int w = snprintf(c->oracle_dbs_outside + used, sizeof(c->oracle_dbs_outside) - used,
                         "%sdb %u: %zu key%s", used ? ", " : "", db, n, n == 1 ? "" : "s");
        if (w > 0 && used + (size_t)w < sizeof(c->oracle_dbs_outside))
            used += (size_t)w;
    }
}

static redisReply *next_reply(redisContext *ctx)
{
    void *r = NULL;
    cr_assert(redisGetReply(ctx, &r) == REDIS_OK && r != NULL, "I/O error: %s", ctx->errstr);
    return r;
}

/* One side of the per-key digests: the masters of a cluster view (the
 * master serving a key's slot answers for it), servers sharing a key space
 * (held set: the first server holding a key answers for it), or one
 * standalone server (neither: ctxs[0] answers for every key). */
struct digest_side {
    const struct cluster_fixture_view *v;
    redisContext *const *ctxs;
    int ctx_of_node[CLUSTER_FIXTURE_MAX_NODES];
    const struct redis_model *held_model; /* its db 0's keys, aligned with held */
    const unsigned *held;                 /* redis_model_from_servers's masks */
};

static void digest_side_init(struct digest_side *s, const struct cluster_fixture_view *v,
                             redisContext *const *ctxs)
{
    memset(s, 0, sizeof(*s));
    s->v = v;
    s->ctxs = ctxs;
    for (int i = 0; i < CLUSTER_FIXTURE_MAX_NODES; i++)
        s->ctx_of_node[i] = -1;
    for (int i = 0; v != NULL && i < v->nmasters; i++)
        s->ctx_of_node[v->masters[i]] = i;
}

/* The connection answering for key; NULL when nobody serves its slot (or,
 * for servers, when none holds it). */
static redisContext *digest_side_for(const struct digest_side *s, const struct model_bytes *key)
{
    if (s->held != NULL) {
        const struct model_key *k = redis_model_find(s->held_model, 0, key->p, key->len);
        if (k == NULL)
            return NULL;
        unsigned mask = s->held[k - s->held_model->dbs[0].keys];
        return s->ctxs[__builtin_ctz(mask)];
    }
    if (s->v == NULL)
        return s->ctxs[0];
    int node = s->v->slot_node[slot_of_key(key->p, key->len)];
    return node >= 0 ? s->ctxs[s->ctx_of_node[node]] : NULL;
}

/* DEBUG DIGEST-VALUE of every key of the oracle's db 0 (want), on the
 * target's side and on the oracle's, pipelined; the verdict into c. A key
 * whose slot nobody serves on a side counts as differing. */
static void compare_key_digests(const struct digest_side *target, const struct digest_side *oracle,
                                const struct redis_model *want, struct dataset_comparison *c)
{
    const struct model_db *d = &want->dbs[0];
    size_t differ = 0;
    char first[64] = "";
    c->same_digest = true;
    for (size_t from = 0; from < d->nkeys; from += KEY_DIGEST_PIPELINE) {
        size_t to = d->nkeys - from < KEY_DIGEST_PIPELINE ? d->nkeys : from + KEY_DIGEST_PIPELINE;
        redisContext *owner[KEY_DIGEST_PIPELINE], *oracle_owner[KEY_DIGEST_PIPELINE];
        for (size_t k = from; k < to; k++) {
            const struct model_bytes *key = &d->keys[k].key;
            owner[k - from] = digest_side_for(target, key);
            oracle_owner[k - from] = digest_side_for(oracle, key);
            if (owner[k - from] != NULL)
                cr_assert(redisAppendCommand(owner[k - from], "DEBUG DIGEST-VALUE %b", key->p,
                                             key->len) == REDIS_OK);
            if (oracle_owner[k - from] != NULL)
                cr_assert(redisAppendCommand(oracle_owner[k - from], "DEBUG DIGEST-VALUE %b",
                                             key->p, key->len) == REDIS_OK);
        }
        for (size_t k = from; k < to; k++) {
            redisReply *b =
                oracle_owner[k - from] != NULL ? next_reply(oracle_owner[k - from]) : NULL;
            redisReply *a = owner[k - from] != NULL ? next_reply(owner[k - from]) : NULL;
            const redisReply *refused = b != NULL && b->type == REDIS_REPLY_ERROR   ? b
                                        : a != NULL && a->type == REDIS_REPLY_ERROR ? a
                                                                                    : NULL;
            if (refused != NULL) { /* DEBUG disabled: drain and say so */
                snprintf(c->digests, sizeof(c->digests),
                         "per-key DEBUG DIGEST-VALUE not compared: %.100s", refused->str);
                freeReplyObject(a);
                freeReplyObject(b);
                for (size_t q = k + 1; q < to; q++) {
                    if (oracle_owner[q - from] != NULL)
                        freeReplyObject(next_reply(oracle_owner[q - from]));
                    if (owner[q - from] != NULL)
                        freeReplyObject(next_reply(owner[q - from]));
                }
                c->has_key_digests = false;
                return;
            }
            cr_assert((b == NULL || (b->type == REDIS_REPLY_ARRAY && b->elements == 1)) &&
                          (a == NULL || (a->type == REDIS_REPLY_ARRAY && a->elements == 1)),
                      "DEBUG DIGEST-VALUE: unexpected reply");
            bool same = a != NULL && b != NULL && a->element[0]->len == b->element[0]->len &&
                        memcmp(a->element[0]->str, b->element[0]->str, b->element[0]->len) == 0;
            if (!same && differ++ == 0)
                model_escape(first, sizeof(first), d->keys[k].key.p, d->keys[k].key.len, 40);
            freeReplyObject(a);
            freeReplyObject(b);
        }
    }
    c->has_key_digests = true;
    c->same_digest = differ == 0;
    snprintf(c->digests, sizeof(c->digests),
             "per-key DEBUG DIGEST-VALUE: %zu of %zu keys differ%s%s%s", differ, d->nkeys,
             differ ? ", first '" : "", first, differ ? "'" : "");
}

/* The model part of a comparison with a cluster target: consumers' times
 * left out, the target's expiry shift taken off, migration drift forgiven;
 * the verdict and the counts into c. */
static void compare_cluster_models(struct redis_model *got, struct redis_model *want,
                                   struct dataset_comparison *c)
{
    dataset_forget_consumer_times(got);
    dataset_forget_consumer_times(want);
    unshift_expiries(got);
    forgive_migration_drift(got, want);
    c->diff = malloc(sizeof(*c->diff));
    cr_assert(c->diff != NULL);
    redis_model_compare(got, want, 0, c->diff); /* now_ms 0: nothing may be missing as expired */
    c->differences = c->diff->differences + c->diff->expired_absent;
    c->keys_compared = c->diff->keys_compared;
    c->target_keys = redis_model_count(got, MODEL_DBS);
    c->oracle_keys = redis_model_count(want, MODEL_DBS);
}

static void compare_function_lists(redisContext *target, redisContext *oracle,
                                   struct dataset_comparison *c)
{
    char *fa = function_list(target);
    char *fb = function_list(oracle);
    c->same_functions = strcmp(fa, fb) == 0;
    if (!c->same_functions)
        cr_log_error("FUNCTION LIST differs:\ntarget %s\noracle %s", fa, fb);
    free(fa);
    free(fb);
}

void dataset_compare_cluster(const struct cluster_fixture *dst, struct redis_fixture *oracle,
                             struct dataset_comparison *c)
{
    memset(c, 0, sizeof(*c));
    struct cluster_fixture_view v;
    cluster_fixture_view_take(dst, &v);
    cr_assert(v.nmasters > 0, "node %d of the cluster lists no master serving slots", v.asked);
    redisContext *ctxs[CLUSTER_FIXTURE_MAX_NODES];
    connect_masters(dst, &v, ctxs, c->masters, sizeof(c->masters));

    struct redis_model got, want;
    redis_model_from_cluster(&got, ctxs, (size_t)v.nmasters);
    redis_model_from_server(&want, oracle->ctx);
    count_outside_db0(&want, c);
    compare_cluster_models(&got, &want, c);
    struct digest_side target_side, oracle_side;
    digest_side_init(&target_side, &v, ctxs);
    digest_side_init(&oracle_side, NULL, &oracle->ctx);
    compare_key_digests(&target_side, &oracle_side, &want, c);
    redis_model_free(&got);
    redis_model_free(&want);

    /* redis_model_from_cluster checked the masters agree on the code; the
     * whole FUNCTION LIST (names, flags) of the first against the oracle's. */
    compare_function_lists(ctxs[0], oracle->ctx, c);
    for (int i = 0; i < v.nmasters; i++)
        redisFree(ctxs[i]);
}

void assert_cluster_equals(const struct cluster_fixture *dst, struct redis_fixture *oracle,
                           const char *oracle_name, const char *what)
{
    struct dataset_comparison c;
    dataset_compare_cluster(dst, oracle, &c);
    cr_assert(c.oracle_keys_outside_db0 == 0,
              "%s: the %s holds %zu keys outside db 0 (%s), which a cluster (db 0 only) cannot "
              "hold: the comparison is meaningless",
              what, oracle_name, c.oracle_keys_outside_db0, c.oracle_dbs_outside);
    cr_assert(c.differences == 0 && c.target_keys == c.oracle_keys,
              "%s: the cluster (masters %s) differs from the %s's db 0 in %zu keys (%zu "
              "compared; cluster %zu keys, %s %zu):\n%s",
              what, c.masters, oracle_name, c.differences, c.keys_compared, c.target_keys,
              oracle_name, c.oracle_keys, c.diff->report);
    cr_assert(c.same_digest, "%s: %s (masters %s)", what, c.digests, c.masters);
    cr_assert(c.same_functions, "%s: FUNCTION LIST differs (see the log)", what);
    cr_assert(c.keys_compared > 0, "%s: nothing compared", what);
    cr_log_info("%s: the cluster (masters %s) equals the %s: %zu keys; %s", what, c.masters,
                oracle_name, c.keys_compared, c.digests);
    dataset_comparison_deinit(&c);
}

/* Changes key (a string) on the master of dst serving its slot now (SET
 * ... KEEPTTL); returns that master's node number. */
static int change_cluster_string(const struct cluster_fixture *dst, const char *key)
{
    struct cluster_fixture_view v;
    cluster_fixture_view_take(dst, &v);
    size_t len = strlen(key);
    unsigned slot = slot_of_key(key, len);
    int node = v.slot_node[slot];
    cr_assert(node >= 0, "nobody serves slot %u of key '%s'", slot, key);
    redisContext *ctx = redis_fixture_connect(dst->nodes[node]);
    redisReply *r = redis_fixture_command(ctx, "GET %b", key, len);
    cr_assert(r->type == REDIS_REPLY_STRING, "the cluster has no string '%s' (slot %u, node %d)",
              key, slot, node);
    const char *changed = strcmp(r->str, "changed") == 0 ? "changed again" : "changed";
    freeReplyObject(r);
    redis_fixture_exec(ctx, "SET %b %s KEEPTTL", key, len, changed);
    redisFree(ctx);
    return node;
}

/* Fails unless cmp saw exactly the change of key (on node). */
static void assert_caught_the_change(struct dataset_comparison *cmp, const char *key, int node)
{
    cr_assert(cmp->differences == 1 && strstr(cmp->diff->report, key) != NULL,
              "the cluster comparison saw %zu differences, not the one made (%s on node %d):\n%s",
              cmp->differences, key, node, cmp->diff->report);
    cr_assert(!cmp->has_key_digests ||
                  (!cmp->same_digest && strstr(cmp->digests, " 1 of ") != NULL),
              "the per-key digests did not see the change of %s: %s", key, cmp->digests);
    cr_log_info("the cluster comparison caught the change of %s: %s", key, cmp->digests);
}

void assert_cluster_comparison_catches_a_change(const struct cluster_fixture *dst,
                                                struct redis_fixture *oracle, const char *key)
{
    int node = change_cluster_string(dst, key);
    struct dataset_comparison cmp;
    dataset_compare_cluster(dst, oracle, &cmp);
    assert_caught_the_change(&cmp, key, node);
    dataset_comparison_deinit(&cmp);
}

/* ------------------------------------------------ servers behind a proxy */

void dataset_compare_servers(struct redis_fixture *const *servers, size_t n,
                             struct redis_fixture *oracle, struct dataset_comparison *c,
                             struct dataset_placement *placement)
{
    memset(c, 0, sizeof(*c));
    cr_assert(n > 0 && n <= DATASET_MAX_SERVERS, "%zu servers (1..%d)", n, DATASET_MAX_SERVERS);
    redisContext *ctxs[DATASET_MAX_SERVERS];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        ctxs[i] = redis_fixture_connect(servers[i]);
        int w = snprintf(c->masters + used, sizeof(c->masters) - used, "%sserver %zu 127.0.0.1:%d",
                         i ? ", " : "", i, servers[i]->port);
        if (w > 0 && used + (size_t)w < sizeof(c->masters))
            used += (size_t)w;
    }

    struct redis_model got, want;
    unsigned *held;
    redis_model_from_servers(&got, ctxs, n, &held);
    redis_model_from_server(&want, oracle->ctx);
    count_outside_db0(&want, c);
    if (placement != NULL) { /* before compare_cluster_models: nothing reorders the keys */
        const struct model_db *d = &got.dbs[0];
        placement->nkeys = d->nkeys;
        placement->keys = calloc(d->nkeys + 1, sizeof(*placement->keys));
        placement->held = calloc(d->nkeys + 1, sizeof(*placement->held));
        cr_assert(placement->keys != NULL && placement->held != NULL);
        for (size_t k = 0; k < d->nkeys; k++) {
            placement->keys[k].p = malloc(d->keys[k].key.len + 1);
            cr_assert(placement->keys[k].p != NULL);
            memcpy(placement->keys[k].p, d->keys[k].key.p, d->keys[k].key.len + 1);
            placement->keys[k].len = d->keys[k].key.len;
            placement->held[k] = held[k];
        }
    }
    compare_cluster_models(&got, &want, c);
    struct digest_side target_side, oracle_side;
    digest_side_init(&target_side, NULL, ctxs);
    target_side.held_model = &got;
    target_side.held = held;
    digest_side_init(&oracle_side, NULL, &oracle->ctx);
    compare_key_digests(&target_side, &oracle_side, &want, c);
    redis_model_free(&got);
    redis_model_free(&want);
    free(held);

    /* redis_model_from_servers checked the servers agree on the code; the
     * whole FUNCTION LIST (names, flags) of the first against the oracle's. */
    compare_function_lists(ctxs[0], oracle->ctx, c);
    for (size_t i = 0; i < n; i++)
        redisFree(ctxs[i]);
}

void dataset_placement_deinit(struct dataset_placement *p)
{
    for (size_t k = 0; k < p->nkeys; k++)
        free(p->keys[k].p);
    free(p->keys);
    free(p->held);
    memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------ a cluster as the oracle */

void dataset_compare_clusters(const struct cluster_fixture *dst,
                              const struct cluster_fixture *oracle, struct dataset_comparison *c)
{
    memset(c, 0, sizeof(*c));
    struct cluster_fixture_view v, ov;
    cluster_fixture_view_take(dst, &v);
    cluster_fixture_view_take(oracle, &ov);
    cr_assert(v.nmasters > 0, "node %d of the target cluster lists no master serving slots",
              v.asked);
    cr_assert(ov.nmasters > 0, "node %d of the oracle cluster lists no master serving slots",
              ov.asked);
    redisContext *ctxs[CLUSTER_FIXTURE_MAX_NODES], *octxs[CLUSTER_FIXTURE_MAX_NODES];
    connect_masters(dst, &v, ctxs, c->masters, sizeof(c->masters));
    connect_masters(oracle, &ov, octxs, c->oracle_masters, sizeof(c->oracle_masters));

    struct redis_model got, want;
    redis_model_from_cluster(&got, ctxs, (size_t)v.nmasters);
    redis_model_from_cluster(&want, octxs, (size_t)ov.nmasters);
    compare_cluster_models(&got, &want, c);
    struct digest_side target_side, oracle_side;
    digest_side_init(&target_side, &v, ctxs);
    digest_side_init(&oracle_side, &ov, octxs);
    compare_key_digests(&target_side, &oracle_side, &want, c);
    redis_model_free(&got);
    redis_model_free(&want);

    /* Each model checked its masters agree on the code; the whole FUNCTION
     * LIST (names, flags) of one master of each compared. */
    compare_function_lists(ctxs[0], octxs[0], c);
    for (int i = 0; i < v.nmasters; i++)
        redisFree(ctxs[i]);
    for (int i = 0; i < ov.nmasters; i++)
        redisFree(octxs[i]);
}

void assert_clusters_equal(const struct cluster_fixture *dst, const struct cluster_fixture *oracle,
                           const char *oracle_name, const char *what)
{
    struct dataset_comparison c;
    dataset_compare_clusters(dst, oracle, &c);
    cr_assert(c.differences == 0 && c.target_keys == c.oracle_keys,
              "%s: the cluster (masters %s) differs from the %s (masters %s) in %zu keys (%zu "
              "compared; cluster %zu keys, %s %zu):\n%s",
              what, c.masters, oracle_name, c.oracle_masters, c.differences, c.keys_compared,
              c.target_keys, oracle_name, c.oracle_keys, c.diff->report);
    cr_assert(c.same_digest, "%s: %s (masters %s; %s: %s)", what, c.digests, c.masters, oracle_name,
              c.oracle_masters);
    cr_assert(c.same_functions, "%s: FUNCTION LIST differs (see the log)", what);
    cr_assert(c.keys_compared > 0, "%s: nothing compared", what);
    cr_log_info("%s: the cluster (masters %s) equals the %s (masters %s): %zu keys; %s", what,
                c.masters, oracle_name, c.oracle_masters, c.keys_compared, c.digests);
    dataset_comparison_deinit(&c);
}

void assert_clusters_comparison_catches_a_change(const struct cluster_fixture *dst,
                                                 const struct cluster_fixture *oracle,
                                                 const char *key)
{
    int node = change_cluster_string(dst, key);
    struct dataset_comparison cmp;
    dataset_compare_clusters(dst, oracle, &cmp);
    assert_caught_the_change(&cmp, key, node);
    dataset_comparison_deinit(&cmp);
}
