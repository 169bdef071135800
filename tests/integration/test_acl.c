/* test_acl.c - ringsync with the least rights (issue 19; README "ACL users"):
 * on the source a user with +psync +replconf +ping only, on the destination
 * one with the rules the README lists; a full sync, the stream of every
 * write family, a clean stop and a resume, equal to a native replica. A
 * right missing on either side is a clear error naming the command and the
 * user, at start where ringsync can know it then. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_fixture.h"
#include "dataset_compare.h"
#include "redis_fixture.h"
#include "sync_watch.h"
#include "write_families.h"

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

/* README "ACL users": the source's and the destination's rules. */
#define SOURCE_RULES "on >pw +psync +replconf +ping"
#define TARGET_RULES                                                                               \
    "on >pw ~* &* +@write +@connection +@transaction +info +select +ping +get +scan "              \
    "+pexpiretime +pttl"

struct trio {
    struct redis_fixture *src, *rep, *dst;
};

static void setuser(redisContext *c, const char *user, const char *rules)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ACL SETUSER %s reset %s", user, rules);
    redis_fixture_exec(c, cmd);
}

static void trio_start(struct trio *t)
{
    struct redis_fixture_opts o = {.extra_args = debug_args};
    t->src = redis_fixture_start(&o);
    t->rep = redis_fixture_start(&o);
    t->dst = redis_fixture_start(&o);
    redis_fixture_replicate(t->rep, t->src, 20000);
    setuser(t->src->ctx, "repl", SOURCE_RULES);
    setuser(t->dst->ctx, "writer", TARGET_RULES);
}

static void load(redisContext *c, int r0)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (size_t i = 0; r0 == 1000 && i < write_families_one_tag_n; i++) /* once, streamed */
        redis_pipeline_append(&pl, write_families_one_tag[i]);
    for (int i = r0; i < r0 + 500; i++) {
        redis_pipeline_append(&pl, "INCR acl:cnt:%d", i % 50);
        redis_pipeline_append(&pl, "SET acl:s:%d v%d EX 100000", i % 70, i);
        redis_pipeline_append(&pl, "RPUSH acl:l:%d %d", i % 9, i);
    }
    redis_pipeline_flush(&pl);
}

/* ringsync as user repl on the source's port, writer on the target's. */
static struct program *start_ports(int source_port, int target_port)
{
    char source[96], target[96];
    snprintf(source, sizeof(source), "redis://repl:pw@127.0.0.1:%d", source_port);
    snprintf(target, sizeof(target), "redis://writer:pw@127.0.0.1:%d", target_port);
    const char *argv[] = {fixture_env("RS_RINGSYNC"),
                          "sync",
                          "--source",
                          source,
                          "--target",
                          target,
                          "--quiet",
                          "--workers",
                          "1",
                          NULL};
    int e = 0;
    struct program *p = program_start(argv, NULL, &e);
    cr_assert(p != NULL, "cannot start ringsync: %s", strerror(e));
    return p;
}

static struct program *start(const struct trio *t)
{
    return start_ports(t->src->port, t->dst->port);
}

TestSuite(acl, .fini = redis_fixture_stop_all);

Test(acl, the_least_rights_on_both_sides_sync_stream_stop_and_resume, .timeout = 120)
{
    struct trio t;
    trio_start(&t);
    load(t.src->ctx, 0);
    struct program *p = start(&t);
    wait_snapshot_applied(p);
    load(t.src->ctx, 1000);
    wait_caught_up(t.src, t.rep->port, p, "with the least rights");
    dataset_set_target_expiry_shift(3600 * 1000); /* the expiry margin, while it follows */
    assert_dataset_equals(t.dst, t.rep, "native replica", "with the least rights");
    ringsync_stop(p, "with the least rights");
    dataset_set_target_expiry_shift(0); /* taken off at the stop: SCAN, PEXPIRETIME allowed */
    assert_dataset_equals(t.dst, t.rep, "native replica", "stopped, with the least rights");
    load(t.src->ctx, 2000);
    p = start(&t);
    if (!program_wait_for_stderr(p, "resumed with a partial resync", 20000))
        ringsync_fail(p, "no resume with the least rights");
    load(t.src->ctx, 3000);
    wait_caught_up(t.src, t.rep->port, p, "resumed with the least rights");
    ringsync_stop(p, "resumed with the least rights");
    assert_dataset_equals(t.dst, t.rep, "native replica", "resumed with the least rights");
}

/* The destination's user without one right: exit 1 at start, the message
 * naming the command and the user. */
static void expect_refused_at_start(const char *dest_rules, const char *command)
{
    struct trio t;
    trio_start(&t);
    setuser(t.dst->ctx, "writer", dest_rules);
    struct program *p = start(&t);
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    char want[64];
    snprintf(want, sizeof(want), "may not run %s", command);
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, want) && strstr(r.err, "'writer'"),
              "without %s: want exit 1 naming it and the user:\n%s", command, r.err);
    cr_assert(strstr(r.err, "snapshot applied") == NULL, "it wrote before saying so:\n%s", r.err);
    program_result_deinit(&r);
}

Test(acl, a_destination_user_without_scan_or_get_is_told_at_start, .timeout = 60)
{
    expect_refused_at_start(TARGET_RULES " -scan", "SCAN");
    expect_refused_at_start(TARGET_RULES " -get", "GET");
}

Test(acl, a_right_missing_for_a_stream_command_stops_naming_it, .timeout = 60)
{
    struct trio t;
    trio_start(&t);
    setuser(t.dst->ctx, "writer", TARGET_RULES " -hincrby");
    struct program *p = start(&t);
    wait_snapshot_applied(p);
    redis_fixture_exec(t.src->ctx, "HINCRBY h f 1");
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, "hincrby") &&
                  strstr(r.err, "ACL SETUSER"),
              "a refused HINCRBY: want exit 1 naming it and the ACL rule:\n%s", r.err);
    program_result_deinit(&r);
}

Test(acl, a_source_user_without_psync_is_told_at_start, .timeout = 60)
{
    struct trio t;
    trio_start(&t);
    setuser(t.src->ctx, "repl", "on >pw +replconf +ping");
    struct program *p = start(&t);
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, "PSYNC") && strstr(r.err, "NOPERM"),
              "a source user without +psync: want exit 1 naming PSYNC:\n%s", r.err);
    program_result_deinit(&r);
}

/* README "ACL users": what a cluster destination's user needs on top. */
#define CLUSTER_RULES                                                                              \
    TARGET_RULES " +cluster|info +cluster|shards +cluster|slots +cluster|myid +asking +eval"

Test(acl, a_cluster_destination_with_the_least_rights, .timeout = 120)
{
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&o);
    struct redis_fixture *rep = redis_fixture_start(&o);
    redis_fixture_replicate(rep, src, 20000);
    setuser(src->ctx, "repl", SOURCE_RULES);
    struct cluster_fixture_opts co = {.masters = 3};
    struct cluster_fixture *c = cluster_fixture_start(&co);
    for (int i = 0; i < c->nnodes; i++)
        setuser(c->nodes[i]->ctx, "writer", CLUSTER_RULES);
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, src->ctx, 1000);
    for (int i = 0; i < 3000; i++)
        redis_pipeline_append(&pl, "SET k:%d v%d", i, i);
    redis_pipeline_flush(&pl);
    struct program *p = start_ports(src->port, c->nodes[0]->port);
    wait_snapshot_applied(p);
    redis_pipeline_init(&pl, src->ctx, 1000);
    for (int i = 0; i < 2000; i++) {
        redis_pipeline_append(&pl, "INCR n:%d", i % 40);
        redis_pipeline_append(&pl, "RPUSH {t}l %d", i);
    }
    redis_pipeline_flush(&pl);
    wait_caught_up(src, rep->port, p, "a cluster with the least rights");
    ringsync_stop(p, "a cluster with the least rights");
    assert_cluster_equals(c, rep, "native replica", "a cluster with the least rights");
    cluster_fixture_stop(c);
}
