/* test_cluster_topology.c - cluster_topology against real Redis Cluster
 * nodes: the table discovered from every node of a 3+3 cluster, slot by
 * slot against CLUSTER NODES and CLUSTER KEYSLOT (and the keys' owners
 * accept them); CLUSTER SLOTS gives the same table; a real MOVED applied; a
 * cluster with slots 0-99 unassigned refused naming them; standalone or
 * cluster detection. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_fixture.h"
#include "cluster_topology.h"
#include "control_link.h"
#include "endpoint.h"
#include "redis_fixture.h"
#include "slot.h"

TestSuite(cluster_topology, .fini = redis_fixture_stop_all, .timeout = 120);

static void open_node(struct control_link *cl, int port)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "127.0.0.1:%d", port);
    struct endpoint ep;
    struct rs_error err = {0};
    cr_assert_eq(endpoint_parse(uri, NULL, &ep, &err), 0, "%s", err.msg);
    cr_assert_eq(control_link_open(cl, &ep, 5000, &err), 0, "%s", err.msg);
}

/* The owner of each slot by name ("" when unserved), from a topology. */
static void owners_of(const struct cluster_topology *t, char (*names)[32])
{
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        int m = cluster_topology_owner(t, s);
        snprintf(names[s], 32, "%.31s", m < 0 ? "" : t->masters[m].node.name);
    }
}

/* The same from node 0's CLUSTER NODES: "<id> <ip:port@cport> <flags>
 * <master> <ping> <pong> <epoch> <link> <slot or range>...". */
static void owners_from_cluster_nodes(redisContext *ctx, char (*names)[32])
{
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        names[s][0] = '\0';
    redisReply *r = redis_fixture_command(ctx, "CLUSTER NODES");
    char *text = strdup(r->str);
    freeReplyObject(r);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *fs = NULL, *f[64];
        int n = 0;
        for (char *w = strtok_r(line, " \r", &fs); w != NULL && n < 64;
             w = strtok_r(NULL, " \r", &fs))
            f[n++] = w;
        cr_assert(n >= 8, "a CLUSTER NODES line of %d fields", n);
        char *at = strchr(f[1], '@');
        if (at != NULL)
            *at = '\0';
        for (int k = 8; k < n; k++) {
            if (f[k][0] == '[')
                continue; /* a migrating or importing slot */
            unsigned a, b;
            if (sscanf(f[k], "%u-%u", &a, &b) != 2) {
                cr_assert_eq(sscanf(f[k], "%u", &a), 1, "slot field '%s'", f[k]);
                b = a;
            }
            for (unsigned s = a; s <= b; s++)
                snprintf(names[s], 32, "%s", f[1]);
        }
    }
    free(text);
}

Test(cluster_topology, every_node_of_a_3_3_cluster_gives_the_table_cluster_nodes_shows)
{
    struct cluster_fixture_opts o = {.masters = 3, .replicas_per_master = 1};
    struct cluster_fixture *c = cluster_fixture_start(&o);

    static char want[SLOT_COUNT][32], got[SLOT_COUNT][32];
    owners_from_cluster_nodes(c->nodes[0]->ctx, want);
    for (int i = 0; i < c->nnodes; i++) {
        struct control_link cl;
        open_node(&cl, c->nodes[i]->port);
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        cr_assert_eq(cluster_topology_discover(&t, &cl, "127.0.0.1", &err), 0, "node %d: %s", i,
                     err.msg);

        /* Masters and replicas are the fixture's. */
        cr_assert_eq(t.nmasters, 3, "node %d", i);
        for (int m = 0; m < 3; m++) {
            char name[32];
            int mi = cluster_topology_find_master(&t, cluster_fixture_node_name(c, m, name, 32));
            cr_assert(mi >= 0, "node %d: master %s missing", i, name);
            cr_assert_str_eq(t.masters[mi].node.id, c->ids[m]);
            cr_assert_eq(t.masters[mi].nreplicas, 1);
            cr_assert_str_eq(t.masters[mi].replicas[0].id, c->ids[3 + m]);
            cr_assert_str_eq(t.masters[mi].replicas[0].name,
                             cluster_fixture_node_name(c, 3 + m, name, 32));
            cr_assert_eq(t.masters[mi].nslots, m == 0 ? 5461 : m == 1 ? 5461 : 5462);
        }
        owners_of(&t, got);
        for (unsigned s = 0; s < SLOT_COUNT; s++)
            cr_assert_str_eq(got[s], want[s], "node %d, slot %u", i, s);

        /* CLUSTER SLOTS, parsed, is the same table. */
        struct control_reply rep;
        cr_assert_eq(control_link_commandv(&cl, &rep, &err, "CLUSTER", "SLOTS", NULL), 0);
        struct cluster_topology ts = {0};
        cr_assert_eq(cluster_topology_parse_slots(&ts, rep.r, "127.0.0.1", cl.name, &err), 0, "%s",
                     err.msg);
        control_reply_free(&rep);
        owners_of(&ts, got);
        for (unsigned s = 0; s < SLOT_COUNT; s++)
            cr_assert_str_eq(got[s], want[s], "CLUSTER SLOTS of node %d, slot %u", i, s);
        cluster_topology_deinit(&ts);

        if (i == 0) {
            /* Keys: the server's slot is slot.h's, and the table's owner takes them. */
            for (int k = 0; k < 200; k++) {
                char key[32];
                int len = k % 3 == 0 ? snprintf(key, sizeof(key), "{tag%d}.k%d", k / 3, k)
                                     : snprintf(key, sizeof(key), "key:%d", k);
                unsigned slot = cluster_fixture_keyslot(c, key, (size_t)len);
                cr_assert_eq(slot_of_key(key, (size_t)len), slot, "key %s", key);
                const struct cluster_node *n = &t.masters[cluster_topology_owner(&t, slot)].node;
                redisContext *ctx = redisConnect(n->host, n->port);
                cr_assert(ctx != NULL && !ctx->err);
                redisReply *r = redisCommand(ctx, "SET %b v", key, (size_t)len);
                cr_assert(r != NULL && r->type == REDIS_REPLY_STATUS, "SET %s on %s: %s", key,
                          n->name, r ? r->str : "no reply");
                freeReplyObject(r);
                redisFree(ctx);
            }

            /* A real MOVED puts back a slot the table had wrong. */
            unsigned slot = slot_of_key("foo", 3);
            int right = cluster_topology_owner(&t, slot);
            int wrong = (right + 1) % 3;
            cr_assert_eq(cluster_topology_apply_moved(&t, slot, t.masters[wrong].node.name,
                                                      strlen(t.masters[wrong].node.name), &err),
                         wrong);
            redisContext *ctx =
                redisConnect(t.masters[wrong].node.host, t.masters[wrong].node.port);
            redisReply *r = redisCommand(ctx, "SET foo v");
            cr_assert(r != NULL && r->type == REDIS_REPLY_ERROR &&
                          strncmp(r->str, "MOVED ", 6) == 0,
                      "%s", r ? r->str : "no reply");
            char *addr = strchr(r->str + 6, ' ') + 1;
            cr_assert_eq(strtoul(r->str + 6, NULL, 10), slot);
            cr_assert_eq(cluster_topology_apply_moved(&t, slot, addr, strlen(addr), &err), right,
                         "%s: %s", r->str, err.msg);
            cr_assert_eq(t.nmasters, 3, "no new master for a known address");
            freeReplyObject(r);
            redisFree(ctx);
        }
        cluster_topology_deinit(&t);
        control_link_close(&cl);
    }
    cluster_fixture_stop(c);
}

Test(cluster_topology, a_cluster_with_slots_0_to_99_unassigned_is_refused_naming_them)
{
    const struct cluster_fixture_range ranges[] = {
        {0, 100, 5000}, {1, 5001, 11000}, {2, 11001, 16383}};
    struct cluster_fixture_opts o = {.masters = 3, .ranges = ranges, .nranges = 3};
    struct cluster_fixture *c = cluster_fixture_start(&o);
    for (int i = 0; i < c->nnodes; i++) {
        struct control_link cl;
        open_node(&cl, c->nodes[i]->port);
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        cr_assert_eq(cluster_topology_discover(&t, &cl, "127.0.0.1", &err), -EHOSTDOWN,
                     "node %d: %s", i, err.msg);
        char want[160];
        snprintf(want, sizeof(want),
                 "127.0.0.1:%d: the cluster is not serving every slot (cluster_state:fail): "
                 "slots 0-99 are not served",
                 c->nodes[i]->port);
        cr_assert_str_eq(err.msg, want);
        cr_assert_eq(t.nmasters, 0);

        enum cluster_mode mode = CLUSTER_MODE_STANDALONE;
        cr_assert_eq(cluster_mode_of(&cl, &mode, &err), 0, "%s", err.msg);
        cr_assert_eq(mode, CLUSTER_MODE_CLUSTER, "a cluster node is detected as one");
        control_link_close(&cl);
    }
    cluster_fixture_stop(c);
}

Test(cluster_topology, a_plain_server_is_standalone_and_refuses_discovery)
{
    struct redis_fixture *f = redis_fixture_start(NULL);
    struct control_link cl;
    open_node(&cl, f->port);
    struct rs_error err = {0};
    enum cluster_mode mode = CLUSTER_MODE_CLUSTER;
    cr_assert_eq(cluster_mode_of(&cl, &mode, &err), 0, "%s", err.msg);
    cr_assert_eq(mode, CLUSTER_MODE_STANDALONE);

    struct cluster_topology t = {0};
    cr_assert_eq(cluster_topology_discover(&t, &cl, "127.0.0.1", &err), -EPERM);
    char want[128];
    snprintf(want, sizeof(want),
             "127.0.0.1:%d refused CLUSTER SHARDS: ERR This instance has cluster support disabled",
             f->port);
    cr_assert_str_eq(err.msg, want);
    control_link_close(&cl);
    redis_fixture_stop(f);
}
