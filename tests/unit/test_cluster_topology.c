/* test_cluster_topology.c - the slot table from CLUSTER SHARDS and CLUSTER
 * SLOTS replies written as RESP by hand (the documented shapes; one copied
 * byte for byte from a Redis 7.0.15 cluster), fed to hiredis's reader whole,
 * split at every offset and one byte at a time; unserved ranges, MOVED,
 * malformed replies, and discovery and detection against scripted peers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_topology.h"
#include "fake_peer.h"

/* ------------------------------------------------------- writing RESP */

struct resp {
    char buf[16384];
    size_t len;
};

static void resp_put(struct resp *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void resp_put(struct resp *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, sizeof(b->buf) - b->len, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(b->buf) - b->len, "test RESP buffer too small");
    b->len += (size_t)n;
}

static void resp_arr(struct resp *b, size_t n)
{
    resp_put(b, "*%zu\r\n", n);
}

static void resp_str(struct resp *b, const char *s)
{
    resp_put(b, "$%zu\r\n%s\r\n", strlen(s), s);
}

static void resp_int(struct resp *b, long long v)
{
    resp_put(b, ":%lld\r\n", v);
}

/* A node of CLUSTER SHARDS, as Redis 7.0 writes it (no tls-port, no hostname). */
static void shard_node(struct resp *b, const char *id, int port, const char *ip,
                       const char *endpoint, const char *role, const char *health)
{
    resp_arr(b, 14);
    resp_str(b, "id");
    resp_str(b, id);
    resp_str(b, "port");
    resp_int(b, port);
    resp_str(b, "ip");
    resp_str(b, ip);
    resp_str(b, "endpoint");
    resp_str(b, endpoint);
    resp_str(b, "role");
    resp_str(b, role);
    resp_str(b, "replication-offset");
    resp_int(b, 4242);
    resp_str(b, "health");
    resp_str(b, health);
}

static const char *const ids[6] = {
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb0",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"};

/* Three masters on 7000..7002, replicas on 7003..7005, slots split in pieces:
 * master 0 holds 0-5000 and 10000-10100, master 1 5001-9999, master 2
 * 10101-16383. */
static const int ranges3[3][4] = {
    {0, 5000, 10000, 10100}, {5001, 9999, -1, -1}, {10101, 16383, -1, -1}};

static void three_shards(struct resp *b)
{
    resp_arr(b, 3);
    for (int m = 0; m < 3; m++) {
        resp_arr(b, 4);
        resp_str(b, "slots");
        int n = ranges3[m][2] < 0 ? 2 : 4;
        resp_arr(b, (size_t)n);
        for (int i = 0; i < n; i++)
            resp_int(b, ranges3[m][i]);
        resp_str(b, "nodes");
        resp_arr(b, 2);
        /* The replica first for one shard: order in "nodes" does not matter. */
        if (m == 1)
            shard_node(b, ids[3 + m], 7003 + m, "127.0.0.1", "127.0.0.1", "replica", "online");
        shard_node(b, ids[m], 7000 + m, "127.0.0.1", "127.0.0.1", "master", "online");
        if (m != 1)
            shard_node(b, ids[3 + m], 7003 + m, "127.0.0.1", "127.0.0.1", "replica", "online");
    }
}

/* The same cluster as CLUSTER SLOTS: one entry per range, master 0 twice. */
static void three_slots(struct resp *b, bool with_metadata)
{
    resp_arr(b, 4);
    int order[4][3] = {{0, 0, 1}, {1, 0, 1}, {0, 2, 3}, {2, 0, 1}}; /* master, range pair */
    for (int e = 0; e < 4; e++) {
        int m = order[e][0];
        resp_arr(b, 4);
        resp_int(b, ranges3[m][order[e][1]]);
        resp_int(b, ranges3[m][order[e][2]]);
        for (int k = 0; k < 2; k++) {
            int node = m + 3 * k;
            resp_arr(b, with_metadata ? 4 : 3);
            resp_str(b, "127.0.0.1");
            resp_int(b, 7000 + node);
            resp_str(b, ids[node]);
            if (with_metadata)
                resp_arr(b, 0);
        }
    }
}

/* ------------------------------------------------------ reading RESP */

/* Feeds bytes to a redisReader in two pieces split at split (0: whole;
 * (size_t)-1: one byte at a time) and returns the one reply. */
static redisReply *read_reply(const char *p, size_t len, size_t split)
{
    redisReader *rd = redisReaderCreate();
    cr_assert(rd != NULL);
    void *reply = NULL;
    size_t at = 0;
    while (at < len) {
        size_t n = split == (size_t)-1 ? 1 : split > at ? split - at : len - at;
        if (split == 0)
            n = len;
        cr_assert_eq(redisReaderFeed(rd, p + at, n), REDIS_OK);
        at += n;
        cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK, "reader: %s", rd->errstr);
        if (reply != NULL)
            break;
    }
    cr_assert(reply != NULL, "no whole reply (split %zu)", split);
    cr_assert_eq(at, len, "the reply ended before its bytes did (split %zu)", split);
    redisReaderFree(rd);
    return reply;
}

static int parse_shards(struct cluster_topology *t, const struct resp *b, size_t split,
                        struct rs_error *err)
{
    redisReply *r = read_reply(b->buf, b->len, split);
    int rc = cluster_topology_parse_shards(t, r, "10.0.0.9", "127.0.0.1:7000", err);
    freeReplyObject(r);
    return rc;
}

static int parse_slots(struct cluster_topology *t, const struct resp *b, size_t split,
                       struct rs_error *err)
{
    redisReply *r = read_reply(b->buf, b->len, split);
    int rc = cluster_topology_parse_slots(t, r, "10.0.0.9", "127.0.0.1:7000", err);
    freeReplyObject(r);
    return rc;
}

/* ------------------------------------------------------------- checks */

static void check_three(const struct cluster_topology *t)
{
    cr_assert_eq(t->nmasters, 3);
    for (int m = 0; m < 3; m++) {
        const struct cluster_master *cm = &t->masters[m];
        char name[32];
        snprintf(name, sizeof(name), "127.0.0.1:%d", 7000 + m);
        cr_assert_str_eq(cm->node.name, name);
        cr_assert_str_eq(cm->node.host, "127.0.0.1");
        cr_assert_eq(cm->node.port, 7000 + m);
        cr_assert_str_eq(cm->node.id, ids[m]);
        cr_assert_eq(cm->nreplicas, 1, "master %d", m);
        snprintf(name, sizeof(name), "127.0.0.1:%d", 7003 + m);
        cr_assert_str_eq(cm->replicas[0].name, name);
        cr_assert_str_eq(cm->replicas[0].id, ids[3 + m]);
        cr_assert_eq(cluster_topology_find_master(t, cm->node.name), m);
    }
    cr_assert_eq(t->masters[0].nslots, 5001 + 101);
    cr_assert_eq(t->masters[1].nslots, 4999);
    cr_assert_eq(t->masters[2].nslots, 16383 - 10101 + 1);
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        int want = s <= 5000 ? 0 : s <= 9999 ? 1 : s <= 10100 ? 0 : 2;
        cr_assert_eq(cluster_topology_owner(t, s), want, "slot %u", s);
    }
    char out[64];
    cr_assert_eq(cluster_topology_unserved(t, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "");
}

Test(cluster_topology, shards_of_three_masters_and_three_replicas_fill_the_table)
{
    struct resp b = {0};
    three_shards(&b);
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    cr_assert_eq(parse_shards(&t, &b, 0, &err), 0, "%s", err.msg);
    check_three(&t);
    /* The table is what slot.h's keys hash to: one lookup per key. */
    cr_assert_eq(slot_of_key("foo", 3), 12182);
    cr_assert_eq(cluster_topology_owner(&t, slot_of_key("foo", 3)), 2);
    cr_assert_eq(cluster_topology_owner(&t, slot_of_key("{user1000}.a", 12)), 0); /* 3443 */
    cluster_topology_deinit(&t);
    cr_assert_eq(t.nmasters, 0);
    cr_assert_eq(cluster_topology_owner(&t, 0), -1);
}

Test(cluster_topology, slots_reply_gives_the_same_table_as_shards)
{
    for (int meta = 0; meta < 2; meta++) {
        struct resp b = {0};
        three_slots(&b, meta);
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        cr_assert_eq(parse_slots(&t, &b, 0, &err), 0, "%s", err.msg);
        check_three(&t);
        cluster_topology_deinit(&t);
    }
}

Test(cluster_topology, every_split_of_the_replies_yields_the_same_table)
{
    struct resp sh = {0}, sl = {0};
    three_shards(&sh);
    three_slots(&sl, true);
    for (size_t split = 1; split < sh.len; split++) {
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        cr_assert_eq(parse_shards(&t, &sh, split, &err), 0, "split %zu: %s", split, err.msg);
        cr_assert_eq(t.nmasters, 3);
        cr_assert_eq(cluster_topology_owner(&t, 10100), 0, "split %zu", split);
        cr_assert_eq(cluster_topology_owner(&t, 10101), 2, "split %zu", split);
        cluster_topology_deinit(&t);
    }
    for (size_t split = 1; split < sl.len; split++) {
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        cr_assert_eq(parse_slots(&t, &sl, split, &err), 0, "split %zu: %s", split, err.msg);
        cr_assert_eq(t.nmasters, 3);
        cr_assert_eq(cluster_topology_owner(&t, 5001), 1, "split %zu", split);
        cluster_topology_deinit(&t);
    }
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    cr_assert_eq(parse_shards(&t, &sh, (size_t)-1, &err), 0, "bytewise: %s", err.msg);
    check_three(&t);
    cr_assert_eq(parse_slots(&t, &sl, (size_t)-1, &err), 0, "bytewise: %s", err.msg);
    check_three(&t);
    cluster_topology_deinit(&t);
}

/* What a Redis 7.0.15 node (a master and its replica, all 16384 slots)
 * answered, byte for byte. */
static const char real_shards[] =
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$"
    "40\r\ne64838c1f8733cc2f4f03edce2bed2cec530075c\r\n$4\r\nport\r\n:23101\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nrepli"
    "cation-offset\r\n:56\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n84d08d0ae2"
    "8f38957df8950a677d8915b13caa64\r\n$4\r\nport\r\n:23102\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8"
    "\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset"
    "\r\n:56\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
static const char real_slots[] =
    "*1\r\n*4\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:23101\r\n$40\r\ne64838c1f8733cc2f4f03"
    "edce2bed2cec530075c\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:23102\r\n$40\r\n84d08d0ae28f38957df8"
    "950a677d8915b13caa64\r\n*0\r\n";

Test(cluster_topology, replies_copied_from_redis_7_0_parse)
{
    struct resp b = {0};
    const char *replies[2] = {real_shards, real_slots};
    for (int k = 0; k < 2; k++) {
        b.len = strlen(replies[k]);
        memcpy(b.buf, replies[k], b.len);
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        int rc = k == 0 ? parse_shards(&t, &b, 0, &err) : parse_slots(&t, &b, 0, &err);
        cr_assert_eq(rc, 0, "%s", err.msg);
        cr_assert_eq(t.nmasters, 1);
        cr_assert_str_eq(t.masters[0].node.name, "127.0.0.1:23101");
        cr_assert_str_eq(t.masters[0].node.id, "e64838c1f8733cc2f4f03edce2bed2cec530075c");
        cr_assert_eq(t.masters[0].nreplicas, 1);
        cr_assert_str_eq(t.masters[0].replicas[0].name, "127.0.0.1:23102");
        cr_assert_eq(t.masters[0].nslots, SLOT_COUNT);
        cr_assert_eq(cluster_topology_owner(&t, 16383), 0);
        cluster_topology_deinit(&t);
    }
}

Test(cluster_topology, unknown_endpoints_fall_back_to_ip_then_to_the_seed_host)
{
    struct resp b = {0};
    resp_arr(&b, 1);
    resp_arr(&b, 4);
    resp_str(&b, "slots");
    resp_arr(&b, 2);
    resp_int(&b, 0);
    resp_int(&b, 16383);
    resp_str(&b, "nodes");
    resp_arr(&b, 3);
    shard_node(&b, ids[0], 7000, "10.1.1.1", "?", "master", "online");
    shard_node(&b, ids[1], 7001, "", "", "replica", "online");
    shard_node(&b, ids[2], 7002, "::1", "::1", "replica", "failed");
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    cr_assert_eq(parse_shards(&t, &b, 0, &err), 0, "%s", err.msg);
    cr_assert_str_eq(t.masters[0].node.name, "10.1.1.1:7000");
    cr_assert_str_eq(t.masters[0].replicas[0].name, "10.0.0.9:7001");
    cr_assert_str_eq(t.masters[0].replicas[1].name, "[::1]:7002");
    cr_assert_str_eq(t.masters[0].replicas[1].host, "::1");
    cr_assert(t.masters[0].replicas[1].is_failed);
    cr_assert(!t.masters[0].node.is_failed);

    /* CLUSTER SLOTS: a nil address (unknown endpoint) is the seed's. */
    static const char nil_addr[] = "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$-1\r\n:7000\r\n$2\r\nid\r\n";
    b.len = sizeof(nil_addr) - 1;
    memcpy(b.buf, nil_addr, b.len);
    cr_assert_eq(parse_slots(&t, &b, 0, &err), 0, "%s", err.msg);
    cr_assert_str_eq(t.masters[0].node.name, "10.0.0.9:7000");
    cluster_topology_deinit(&t);
}

/* A Redis 7.0.15 node that met nobody yet does not know its own address:
 * with cluster-preferred-endpoint-type unknown-endpoint it says endpoint ""
 * (SHARDS) or nil (SLOTS), with hostname and no hostname "?"; ip is "". */
static const char *const real_unknown[4] = {
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40"
    "\r\nf84fb4866f5dc531644a61c0e2125e8665bb4fbf\r\n$4\r\nport\r\n:23111\r\n$2\r\nip\r\n$0\r\n\r"
    "\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0"
    "\r\n$6\r\nhealth\r\n$6\r\nonline\r\n",
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$-1\r\n:23111\r\n$40\r\nf84fb4866f5dc531644a61c0e2125e866"
    "5bb4fbf\r\n*2\r\n$2\r\nip\r\n$0\r\n\r\n",
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40"
    "\r\nf84fb4866f5dc531644a61c0e2125e8665bb4fbf\r\n$4\r\nport\r\n:23111\r\n$2\r\nip\r\n$0\r\n\r"
    "\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0"
    "\r\n$6\r\nhealth\r\n$6\r\nonline\r\n",
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$1\r\n?\r\n:23111\r\n$40\r\nf84fb4866f5dc531644a61c0e2125e"
    "8665bb4fbf\r\n*2\r\n$2\r\nip\r\n$0\r\n\r\n",
};

Test(cluster_topology, a_node_that_does_not_know_its_address_is_reached_at_the_seed_host)
{
    for (int k = 0; k < 4; k++) {
        struct resp b = {0};
        b.len = strlen(real_unknown[k]);
        memcpy(b.buf, real_unknown[k], b.len);
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        int rc = k % 2 == 0 ? parse_shards(&t, &b, 0, &err) : parse_slots(&t, &b, 0, &err);
        cr_assert_eq(rc, 0, "reply %d: %s", k, err.msg);
        cr_assert_eq(t.nmasters, 1);
        cr_assert_str_eq(t.masters[0].node.name, "10.0.0.9:23111", "reply %d", k);
        cr_assert_eq(t.masters[0].nslots, SLOT_COUNT);
        cluster_topology_deinit(&t);
    }
}

Test(cluster_topology, unserved_ranges_are_listed_compactly)
{
    struct cluster_topology t = {0};
    char out[128];
    cr_assert_eq(cluster_topology_unserved(&t, out, sizeof(out)), SLOT_COUNT);
    cr_assert_str_eq(out, "0-16383");
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        t.slot_owner[s] = 1;
    for (unsigned s = 0; s < 100; s++)
        t.slot_owner[s] = 0;
    t.slot_owner[5000] = 0;
    t.slot_owner[16382] = t.slot_owner[16383] = 0;
    cr_assert_eq(cluster_topology_unserved(&t, out, sizeof(out)), 103);
    cr_assert_str_eq(out, "0-99, 5000, 16382-16383");

    /* Every other slot of 0..999 unserved: the list is cut, the count is not. */
    for (unsigned s = 0; s < 1000; s += 2)
        t.slot_owner[s] = 0;
    for (unsigned s = 1; s < 1000; s += 2)
        t.slot_owner[s] = 1;
    size_t n = cluster_topology_unserved(&t, out, 40);
    cr_assert_eq(n, 500 + 1 + 2);
    cr_assert_lt(strlen(out), 40);
    cr_assert_str_eq(out, "0, 2, 4, 6, 8, 10, 12, 14, 16, 18, ...");
}

Test(cluster_topology, moved_changes_one_slot_and_adds_new_masters)
{
    struct resp b = {0};
    three_shards(&b);
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    cr_assert_eq(parse_shards(&t, &b, 0, &err), 0, "%s", err.msg);

    /* To a known master. */
    const char *a = "127.0.0.1:7002";
    cr_assert_eq(cluster_topology_apply_moved(&t, 42, a, strlen(a), &err), 2, "%s", err.msg);
    cr_assert_eq(cluster_topology_owner(&t, 42), 2);
    cr_assert_eq(cluster_topology_owner(&t, 41), 0);
    cr_assert_eq(cluster_topology_owner(&t, 43), 0);
    cr_assert_eq(t.masters[0].nslots, 5102 - 1);
    cr_assert_eq(t.masters[2].nslots, 6283 + 1);

    /* To a promoted replica: a new master that keeps the replica's id. */
    a = "127.0.0.1:7004";
    cr_assert_eq(cluster_topology_apply_moved(&t, 6000, a, strlen(a), &err), 3, "%s", err.msg);
    cr_assert_str_eq(t.masters[3].node.id, ids[4]);
    cr_assert_eq(t.masters[3].nslots, 1);
    cr_assert_eq(t.masters[3].nreplicas, 0);
    cr_assert_eq(cluster_topology_owner(&t, 6000), 3);

    /* To a node never seen, IPv6 with or without brackets (one master). */
    a = "::1:7100";
    cr_assert_eq(cluster_topology_apply_moved(&t, 7000, a, strlen(a), &err), 4, "%s", err.msg);
    cr_assert_str_eq(t.masters[4].node.name, "[::1]:7100");
    cr_assert_str_eq(t.masters[4].node.id, "");
    a = "[::1]:7100 trailing";
    cr_assert_eq(cluster_topology_apply_moved(&t, 7001, a, 10, &err), 4, "%s", err.msg);
    cr_assert_eq(t.masters[4].nslots, 2);

    /* Refused, table unchanged. */
    const char *bad[] = {"127.0.0.1", "127.0.0.1:", ":7000", "127.0.0.1:70000", "h:7x", "h:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(cluster_topology_apply_moved(&t, 1, bad[i], strlen(bad[i]), &err), -EINVAL,
                     "%s", bad[i]);
        cr_assert(strstr(err.msg, "not host:port") != NULL, "%s", err.msg);
        cr_assert_eq(cluster_topology_owner(&t, 1), 0);
    }
    a = "127.0.0.1:7000";
    cr_assert_eq(cluster_topology_apply_moved(&t, SLOT_COUNT, a, strlen(a), &err), -EINVAL);
    cr_assert_eq(t.nmasters, 5);
    cluster_topology_deinit(&t);
}

/* ------------------------------------------------------ malformed replies */

struct bad_case {
    const char *resp;
    bool is_slots;
    const char *says;
};

#define NODE_HEAD "*14\r\n$2\r\nid\r\n$2\r\nn1\r\n"
#define NODE_TAIL                                                                                  \
    "$2\r\nip\r\n$1\r\nh\r\n$8\r\nendpoint\r\n$1\r\nh\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nrep" \
    "lication-offset\r\n:1\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
#define SHARD_HEAD "*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n"

static const struct bad_case bad_cases[] = {
    {"-ERR This instance has cluster support disabled\r\n", false,
     "an error reply: ERR This instance has cluster support disabled"},
    {":1\r\n", false, "the reply is an integer, not an array"},
    {"*1\r\n:1\r\n", false, "shard 0: is an integer, not a map"},
    {"*1\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", false, "shard 0: is an array, not a map"},
    {"*1\r\n*2\r\n$5\r\nslots\r\n*0\r\n", false, "shard 0: has no \"nodes\""},
    {"*1\r\n*4\r\n$5\r\nslots\r\n*1\r\n:0\r\n$5\r\nnodes\r\n*0\r\n", false,
     "\"slots\" is an array of 1 elements, not start/end pairs"},
    {"*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16384\r\n$5\r\nnodes\r\n*0\r\n", false,
     "a slot 16384 is not 0..16383"},
    {"*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:10\r\n:5\r\n$5\r\nnodes\r\n*1\r\n" NODE_HEAD
     "$4\r\nport\r\n:7000\r\n" NODE_TAIL,
     false, "slot range 10-5 ends before it starts"},
    {"*1\r\n" SHARD_HEAD NODE_HEAD "$4\r\nport\r\n$4\r\n7000\r\n" NODE_TAIL, false,
     "shard 0: node 0: \"port\" is a string, not an integer"},
    {"*1\r\n" SHARD_HEAD NODE_HEAD "$4\r\nport\r\n:0\r\n" NODE_TAIL, false,
     "shard 0: node 0: has no \"port\""},
    {"*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*0\r\n", false,
     "shard 0: serves slots 0-16383 ... but lists no master"},
    {"*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*2\r\n" NODE_HEAD
     "$4\r\nport\r\n:7000\r\n" NODE_TAIL NODE_HEAD "$4\r\nport\r\n:7001\r\n" NODE_TAIL,
     false, "shard 0: node 1: a second master (h:7001, after h:7000)"},
    {"*2\r\n" SHARD_HEAD NODE_HEAD "$4\r\nport\r\n:7000\r\n" NODE_TAIL
     "*4\r\n$5\r\nslots\r\n*2\r\n:9\r\n:9\r\n$5\r\nnodes\r\n*1\r\n"
     "*14\r\n$2\r\nid\r\n$2\r\nn2\r\n$4\r\nport\r\n:7001\r\n" NODE_TAIL,
     false, "shard 1: slot 9 is served by h:7000 and also by h:7001"},
    {"*1\r\n" SHARD_HEAD "*4\r\n$2\r\nid\r\n$2\r\nn1\r\n$4\r\nport\r\n:1\r\n", false,
     "shard 0: node 0: has no \"role\""},
    {"*1\r\n" SHARD_HEAD
     "*6\r\n$2\r\nid\r\n$2\r\nn1\r\n$4\r\nport\r\n:1\r\n$4\r\nrole\r\n$4\r\nboss\r\n",
     false, "\"role\" is \"boss\", not master or replica"},
    {"*1\r\n" SHARD_HEAD "*6\r\n$2\r\nid\r\n$2\r\nn1\r\n$8\r\ntls-port\r\n:1\r\n$4\r\nrole\r\n$"
     "6\r\nmaster\r\n",
     false, "reachable only by TLS"},
    {"*1\r\n*2\r\n:0\r\n:1\r\n", true, "range 0: is an array of 2 elements, not [start, end, "},
    {"*1\r\n*3\r\n:0\r\n$1\r\n1\r\n*2\r\n$1\r\nh\r\n:1\r\n", true,
     "range 0: the end is a string, not an integer"},
    {"*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n", true,
     "range 0: master: is an array of 1 elements"},
    {"*1\r\n*4\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n", true,
     "range 0: replica 0: port 0 is not 1..65535"},
    {"*2\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n*3\r\n:1\r\n:2\r\n*2\r\n$1\r\ng\r\n:1\r\n",
     true, "range 1: slot 1 is served by h:1 and also by g:1"},
    {"*1\r\n*3\r\n:0\r\n:1\r\n*4\r\n$1\r\nh\r\n:1\r\n$1\r\ni\r\n:3\r\n", true,
     "range 0: master: the metadata is an integer, not a map"},
};

Test(cluster_topology, malformed_replies_are_refused_saying_what_was_wrong)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct resp b = {0};
        b.len = strlen(c->resp);
        memcpy(b.buf, c->resp, b.len);
        struct cluster_topology t = {0};
        struct rs_error err = {0};
        int rc = c->is_slots ? parse_slots(&t, &b, 0, &err) : parse_shards(&t, &b, 0, &err);
        cr_assert_eq(rc, -EPROTO, "case %zu: rc %d", i, rc);
        cr_assert_eq(err.code, RS_E_FORMAT);
        cr_assert(strstr(err.msg, c->says) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg,
                  c->says);
        cr_assert(strncmp(err.msg, "127.0.0.1:7000: CLUSTER ", 24) == 0, "case %zu: %s", i,
                  err.msg);
        cr_assert_eq(t.nmasters, 0, "case %zu: a refused reply leaves the table empty", i);
        cr_assert_eq(t.masters, NULL);
        char out[16];
        cr_assert_eq(cluster_topology_unserved(&t, out, sizeof(out)), SLOT_COUNT);
    }
}

/* ------------------------------------------ discovery on scripted peers */

static void peer_with(struct fake_peer *fp, const char *script, size_t len)
{
    memset(fp, 0, sizeof(*fp));
    fp->steps[0].bytes = script;
    fp->steps[0].len = len;
    fp->nsteps = 1;
}

static void open_ok(struct control_link *cl, struct fake_peer *fp)
{
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(cl, &fp->ep, 2000, &err), 0, "open: %s", err.msg);
}

/* Runs discovery against a peer answering script; returns rc, *t and *err. */
static int discover_from(const char *script, size_t len, struct cluster_topology *t,
                         struct rs_error *err, struct fake_peer *fp)
{
    peer_with(fp, script, len);
    fake_peer_start(fp);
    struct control_link cl;
    open_ok(&cl, fp);
    int rc = cluster_topology_discover(t, &cl, "127.0.0.1", err);
    control_link_close(&cl);
    fake_peer_stop(fp);
    return rc;
}

/* CLUSTER INFO's answer, as a bulk string. */
static void cluster_info(struct resp *b, const char *state)
{
    char text[128];
    snprintf(text, sizeof(text), "cluster_state:%s\r\ncluster_slots_assigned:16384\r\n", state);
    resp_str(b, text);
}

Test(cluster_topology, discover_asks_shards_then_checks_the_state)
{
    struct resp b = {0};
    three_shards(&b);
    cluster_info(&b, "ok");
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    struct fake_peer fp;
    cr_assert_eq(discover_from(b.buf, b.len, &t, &err, &fp), 0, "%s", err.msg);
    check_three(&t);
    static const char sent[] = "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n"
                               "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n";
    cr_assert_eq(fp.got_len, sizeof(sent) - 1);
    cr_assert(memcmp(fp.got, sent, fp.got_len) == 0);
    cluster_topology_deinit(&t);
}

Test(cluster_topology, discover_falls_back_to_slots_on_redis_6)
{
    struct resp b = {0};
    resp_put(&b, "-ERR Unknown subcommand or wrong number of arguments for 'SHARDS'. Try "
                 "CLUSTER HELP.\r\n");
    three_slots(&b, false);
    cluster_info(&b, "ok");
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    struct fake_peer fp;
    cr_assert_eq(discover_from(b.buf, b.len, &t, &err, &fp), 0, "%s", err.msg);
    check_three(&t);
    cr_assert(strstr(fp.got, "$5\r\nSLOTS\r\n") != NULL, "asked CLUSTER SLOTS");
    cluster_topology_deinit(&t);
}

Test(cluster_topology, discover_names_the_unserved_slots)
{
    /* One master with 100-16383 but for 5000; cluster_state:fail. */
    struct resp b = {0};
    resp_arr(&b, 1);
    resp_arr(&b, 4);
    resp_str(&b, "slots");
    resp_arr(&b, 4);
    resp_int(&b, 100);
    resp_int(&b, 4999);
    resp_int(&b, 5001);
    resp_int(&b, 16383);
    resp_str(&b, "nodes");
    resp_arr(&b, 1);
    shard_node(&b, ids[0], 7000, "127.0.0.1", "127.0.0.1", "master", "online");
    cluster_info(&b, "fail");
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    struct fake_peer fp;
    int rc = discover_from(b.buf, b.len, &t, &err, &fp);
    cr_assert_eq(rc, -EHOSTDOWN, "%d %s", rc, err.msg);
    char want[128];
    snprintf(want, sizeof(want),
             "127.0.0.1:%d: the cluster is not serving every slot (cluster_state:fail): slots "
             "0-99, 5000 are not served",
             fp.port);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(t.nmasters, 0);
}

Test(cluster_topology, discover_says_when_the_state_fails_with_every_slot_assigned)
{
    struct resp b = {0};
    resp_arr(&b, 1);
    resp_arr(&b, 4);
    resp_str(&b, "slots");
    resp_arr(&b, 2);
    resp_int(&b, 0);
    resp_int(&b, 16383);
    resp_str(&b, "nodes");
    resp_arr(&b, 1);
    shard_node(&b, ids[0], 7000, "127.0.0.1", "127.0.0.1", "master", "failed");
    cluster_info(&b, "fail");
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    struct fake_peer fp;
    cr_assert_eq(discover_from(b.buf, b.len, &t, &err, &fp), -EHOSTDOWN);
    cr_assert(strstr(err.msg, "cluster_state:fail although every slot has a master (failed: "
                              "127.0.0.1:7000)") != NULL,
              "%s", err.msg);
}

Test(cluster_topology, discover_names_the_node_that_refuses)
{
    static const char script[] = "-ERR This instance has cluster support disabled\r\n";
    struct cluster_topology t = {0};
    struct rs_error err = {0};
    struct fake_peer fp;
    cr_assert_eq(discover_from(script, sizeof(script) - 1, &t, &err, &fp), -EPERM);
    char want[128];
    snprintf(want, sizeof(want),
             "127.0.0.1:%d refused CLUSTER SHARDS: ERR This instance has cluster support disabled",
             fp.port);
    cr_assert_str_eq(err.msg, want);

    static const char noperm[] =
        "-ERR unknown subcommand 'SHARDS'\r\n-NOPERM this user has no permissions\r\n";
    cr_assert_eq(discover_from(noperm, sizeof(noperm) - 1, &t, &err, &fp), -EPERM);
    cr_assert(strstr(err.msg, "refused CLUSTER SLOTS: NOPERM") != NULL, "%s", err.msg);
}

Test(cluster_topology, mode_is_read_from_info_cluster)
{
    static const char on[] = "$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n";
    static const char off[] = "$30\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n";
    static const char none[] = "$0\r\n\r\n";
    static const char refused[] = "-ERR unknown command 'INFO'\r\n";
    const char *scripts[] = {on, off, none, refused};
    const int want_rc[] = {0, 0, 0, -EPERM};
    const enum cluster_mode want[] = {CLUSTER_MODE_CLUSTER, CLUSTER_MODE_STANDALONE,
                                      CLUSTER_MODE_STANDALONE, CLUSTER_MODE_STANDALONE};
    for (int i = 0; i < 4; i++) {
        struct fake_peer fp;
        peer_with(&fp, scripts[i], strlen(scripts[i]));
        fake_peer_start(&fp);
        struct control_link cl;
        open_ok(&cl, &fp);
        struct rs_error err = {0};
        enum cluster_mode mode = CLUSTER_MODE_CLUSTER;
        cr_assert_eq(cluster_mode_of(&cl, &mode, &err), want_rc[i], "case %d: %s", i, err.msg);
        cr_assert_eq(mode, want[i], "case %d", i);
        if (want_rc[i] < 0)
            cr_assert(strstr(err.msg, "refused INFO cluster") != NULL, "%s", err.msg);
        control_link_close(&cl);
        fake_peer_stop(&fp);
    }
}
