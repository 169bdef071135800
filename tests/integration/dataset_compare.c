/* dataset_compare.c - a destination against its oracle (dataset_compare.h). */
#include "dataset_compare.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
