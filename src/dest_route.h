/* dest_route.h - where a key goes on the destination: the connection (lane)
 * that applies its hash slot, and the database it lands in.
 *
 *   source (db, key) --slot_of_key--> slot --dest_route_lane--> lane = node * nworkers + worker
 *                    --dest_route_db-->  destination db, or unmapped
 *
 * The worker of a slot is slot % nworkers, as everywhere (DESIGN.md §2
 * invariant 1: one slot, one path). The node is the master the cluster
 * topology gives the slot (a standalone destination is node 0). The db map
 * sends each source database to a destination database: by default each to
 * itself on a standalone destination, and only db 0 to db 0 on a cluster
 * (which has db 0 alone); `--db-map SRC:DST[,...]` says otherwise. What a
 * source database without a mapping does is the policy `--db-unmapped`:
 * stop the job naming the database, or skip its keys and commands, counted.
 *
 * Threads: built before the workers start, then read by the producer only.
 */
#ifndef RS_DEST_ROUTE_H
#define RS_DEST_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster_topology.h"
#include "rs_error.h"

#define DEST_ROUTE_MAX_DBS 256 /* source databases the map can name (0..255) */

enum dest_route_unmapped { DEST_ROUTE_UNMAPPED_STOP = 0, DEST_ROUTE_UNMAPPED_SKIP };

struct dest_route {
    unsigned nworkers;
    const struct cluster_topology *topo; /* NULL: a standalone destination */
    unsigned node_cap; /* nodes the lanes have room for: 1, or a cluster's reserved masters */
    int16_t db_map[DEST_ROUTE_MAX_DBS]; /* source db -> destination db; -1: unmapped */
    bool identity;                      /* no --db-map on a standalone destination */
    enum dest_route_unmapped unmapped;  /* skipped ones count in job->unmapped_skipped */
    const char *prefix; /* --db-prefix: every db into 0, keys prefixed ({N}: the db); or NULL */
};

/* Sets r up for nworkers and a destination: topo NULL (standalone: every db
 * to itself) or a cluster's topology (db 0 to db 0 only). db_map, when not
 * NULL, is the text of --db-map ("0:0,1:0"): it replaces the default map.
 * Returns 0, or -EINVAL with err quoting the bad part ("--db-map: '1:x':
 * the destination db is not a number"); a cluster refuses a destination
 * db other than 0. */
int dest_route_init(struct dest_route *r, unsigned nworkers, const struct cluster_topology *topo,
                    const char *db_map, enum dest_route_unmapped unmapped, struct rs_error *err);

/* The lane of a hash slot (< SLOT_COUNT): its worker, on the node serving
 * it. One array lookup on a cluster. */
static inline unsigned dest_route_lane(const struct dest_route *r, unsigned slot)
{
    unsigned w = r->nworkers > 1 ? slot % r->nworkers : 0;
    if (r->topo == NULL)
        return w;
    int node = cluster_topology_owner(r->topo, slot);
    RS_ASSERT(node >= 0); /* discovery checked that every slot is served */
    return (unsigned)node * r->nworkers + w;
}

/* The lane of worker 0 on node `node`: where a command for a whole node goes. */
static inline unsigned dest_route_node_lane(const struct dest_route *r, unsigned node)
{
    return node * r->nworkers;
}

/* Destination nodes known so far (1 for a standalone destination); a
 * cluster's grow when a MOVED names a new master. */
static inline unsigned dest_route_nodes(const struct dest_route *r)
{
    return r->topo ? (unsigned)cluster_topology_nmasters(r->topo) : 1;
}

/* True when node n serves slots now (every node of a standalone
 * destination): where a command for every master goes. Producer only. */
static inline bool dest_route_node_serves(const struct dest_route *r, unsigned n)
{
    return r->topo == NULL || r->topo->masters[n].nslots > 0;
}

static inline bool dest_route_is_cluster(const struct dest_route *r)
{
    return r->topo != NULL;
}

/* The destination db of source db `db`, or -1 when unmapped. */
static inline int64_t dest_route_db(const struct dest_route *r, int64_t db)
{
    if (r->identity)
        return db;
    if (db < 0 || db >= DEST_ROUTE_MAX_DBS)
        return -1;
    return r->db_map[db];
}

/* --db-prefix PATTERN (a cluster): every source db N maps to db 0 and its
 * keys get PATTERN with "{N}" replaced by N in front. 0, or -EINVAL with
 * err when PATTERN has no "{N}" (databases would collide). */
int dest_route_set_prefix(struct dest_route *r, const char *pattern, struct rs_error *err);

/* The prefix of db's keys into out (capacity cap); its length, 0 without
 * --db-prefix. */
size_t dest_route_prefix(const struct dest_route *r, int64_t db, char *out, size_t cap);

/* The map as text for messages: "0:0, 1:0". */
void dest_route_describe(const struct dest_route *r, char *out, size_t cap);

#endif
