/* cluster_fixture.h - a real Redis Cluster on loopback for the integration
 * tests: masters and replicas, each a redis_fixture started with
 * `--cluster-enabled yes`, its bus on a free port of its own.
 *
 * Building it, in order (cluster_fixture_start):
 *   1. start every node (masters first, then replicas; DEBUG enabled, for
 *      DEBUG DIGEST-VALUE), each with a distinct
 *      config epoch (CLUSTER SET-CONFIG-EPOCH, as redis-cli --cluster create);
 *   2. give the masters their slots (CLUSTER ADDSLOTSRANGE): 0..16383 split
 *      evenly, or the ranges the caller lists (slots may be left out);
 *   3. CLUSTER MEET every node with the first; wait until every node knows
 *      them all;
 *   4. CLUSTER REPLICATE each replica to its master;
 *   5. wait until every node says cluster_state:ok (:fail when slots were
 *      left out) with every assigned slot known, sees every replica as one,
 *      and every replica's link is up with its initial sync done.
 * A 3+3 cluster is ready in about two seconds (node timeout 2000 ms).
 *
 * Nodes are redis_fixtures: redis_fixture_stop_all (a suite's .fini) stops
 * whatever a failed assertion left running. Helpers fail the test through
 * Criterion's cr_assert, as redis_fixture's do.
 */
#ifndef RS_TEST_CLUSTER_FIXTURE_H
#define RS_TEST_CLUSTER_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "redis_fixture.h"

#define CLUSTER_FIXTURE_MAX_NODES 16

/* Slots [start, end] given to master number `master` (0-based). */
struct cluster_fixture_range {
    int master;
    int start, end;
};

struct cluster_fixture_opts {
    int masters;             /* 1.. */
    int replicas_per_master; /* 0.. */
    /* NULL: 0..16383 split evenly over the masters, in order. */
    const struct cluster_fixture_range *ranges;
    size_t nranges;
    int ready_timeout_ms; /* 0: 20 s */
};

/* A running cluster. Read-only for callers. Nodes are numbered masters
 * first: node m < nmasters is master m; replica r of master m is node
 * nmasters + m * replicas_per_master + r. */
struct cluster_fixture {
    int nmasters, replicas_per_master, nnodes;
    struct redis_fixture *nodes[CLUSTER_FIXTURE_MAX_NODES];
    int cluster_ports[CLUSTER_FIXTURE_MAX_NODES]; /* each node's bus port */
    char ids[CLUSTER_FIXTURE_MAX_NODES][41];      /* CLUSTER MYID */
    int master_of[CLUSTER_FIXTURE_MAX_NODES];     /* a replica's master node; -1 for masters */
    signed char slot_master[16384];               /* the master given each slot; -1: none */
    int assigned;                                 /* how many slots were given */
};

/* Starts and joins the cluster as described at the top; fails the test (with
 * the node and what it was waiting for) when it is not ready in time. */
struct cluster_fixture *cluster_fixture_start(const struct cluster_fixture_opts *opts);

/* Stops every node and frees c. NULL is a no-op. */
void cluster_fixture_stop(struct cluster_fixture *c);

/* The slot of key as the cluster computes it (CLUSTER KEYSLOT on node 0). */
unsigned cluster_fixture_keyslot(const struct cluster_fixture *c, const char *key, size_t len);

/* A new connection (the caller frees it) to the master the fixture gave the
 * slot of key; the test fails when nobody serves it. */
redisContext *cluster_fixture_connect_owner(const struct cluster_fixture *c, const char *key,
                                            size_t len);

/* Pipelines to the masters (redis_fixture.h's redis_pipeline), a command
 * going to the master the fixture gave its key's slot: commands of one key
 * stay in order, those of different masters do not wait for each other.
 * For filling a cluster (a source, or a reference) through its owners. */
struct cluster_fixture_writer {
    const struct cluster_fixture *c;
    redisContext *ctx[CLUSTER_FIXTURE_MAX_NODES]; /* a connection of its own per master */
    struct redis_pipeline p[CLUSTER_FIXTURE_MAX_NODES];
};

void cluster_fixture_writer_init(struct cluster_fixture_writer *w, const struct cluster_fixture *c);

/* The pipeline of the master the fixture gave the slot of key; the test
 * fails when nobody was given it. */
struct redis_pipeline *cluster_fixture_writer_for(struct cluster_fixture_writer *w, const char *key,
                                                  size_t len);

/* Reads every pending reply (failing the test on an error reply). */
void cluster_fixture_writer_flush(struct cluster_fixture_writer *w);

/* Flushes, then closes the connections. */
void cluster_fixture_writer_deinit(struct cluster_fixture_writer *w);

/* Keys the masters of c hold in all, but ringsync's checkpoint records
 * (keys under "ringsync:cp:"): DBSIZE summed, the records SCANned out. */
long long cluster_fixture_data_keys(const struct cluster_fixture *c);

/* Who serves the slots now, as one node tells it (CLUSTER NODES): after a
 * failover or a resharding, no longer what the fixture gave at the start. */
struct cluster_fixture_view {
    int asked;                              /* the node that answered: the first alive */
    int nmasters;                           /* masters (not flagged fail) serving slots */
    int masters[CLUSTER_FIXTURE_MAX_NODES]; /* their node numbers, ascending */
    signed char slot_node[16384];           /* the node serving each slot; -1: none */
    int served;                             /* slots with a master */
};

/* Asks node 0 (or, when it does not answer, the next node that does) and
 * fills v. Fails the test when no node answers or the reply names a master
 * that is not one of the fixture's nodes. Migrating slots count as their
 * source's until the migration ends. */
void cluster_fixture_view_take(const struct cluster_fixture *c, struct cluster_fixture_view *v);

/* The same as node i alone tells it (asked = i): false, v untouched, when
 * node i does not answer (it was killed); fails the test as above otherwise.
 * For checking that every node agrees after a resharding or a failover. */
bool cluster_fixture_view_take_from(const struct cluster_fixture *c, int i,
                                    struct cluster_fixture_view *v);

/* "127.0.0.1:port" of node i in buf. */
const char *cluster_fixture_node_name(const struct cluster_fixture *c, int i, char *buf,
                                      size_t cap);

#endif
