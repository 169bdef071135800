/* dest_nodes.h - the destination as the nodes ringsync writes to: one
 * standalone server, or every master of a Redis Cluster.
 *
 *   dest_nodes_open(target URI, --target-mode)
 *       standalone: one node, the target itself
 *       cluster:    INFO cluster on the target, then the topology
 *                   (cluster_topology_discover): every slot served, or an
 *                   error naming the unserved ranges; one node per master,
 *                   reached with the target's user and password
 *   dest_nodes_connect(nworkers)  -> a socket per worker per node, each
 *                   AUTHed: the lanes of batch.h (node * nworkers + worker)
 *
 * Threads: the caller's; blocking, before the workers start.
 */
#ifndef RS_DEST_NODES_H
#define RS_DEST_NODES_H

#include <stdbool.h>

#include "cluster_topology.h"
#include "endpoint.h"
#include "rs_error.h"

/* Room for masters a cluster may gain while the job runs (a MOVED to a node
 * not seen at the start), beyond its masters and replicas then. */
#define DEST_NODES_SPARE 16

enum dest_nodes_mode {
    DEST_NODES_AUTO = 0, /* ask the target (INFO cluster; a proxy closes the connection) */
    DEST_NODES_STANDALONE,
    DEST_NODES_CLUSTER,
    DEST_NODES_PROXY, /* a proxy of nutcracker's kind (src/PROXY_DESTINATION.md) */
    DEST_NODES_RELAY, /* the destination replicates from ringsync (relay.h): never opened here */
};

/* What dest_nodes_open needs to know. */
struct dest_nodes_opts {
    enum dest_nodes_mode mode;
    int timeout_ms;
    unsigned nworkers;          /* a proxy's lanes: slot s goes to connection (s / nworkers) % C */
    unsigned proxy_connections; /* C, per worker (--proxy-connections); 0: 4 */
    bool proxy_tag;             /* --proxy-hash-tag {}: the proxy hashes a key's {tag} */
};

struct dest_nodes {
    bool is_cluster;
    bool is_proxy;                /* a proxy: proxy_connections "nodes", all the target's address */
    bool proxy_tag;               /* the proxy hashes {tags} (--proxy-hash-tag) */
    struct cluster_topology topo; /* a cluster's slot table; empty when standalone */
    unsigned nnodes;
    struct endpoint *eps; /* per node: host and port, with the target's credentials */
};

/* Decides the mode and finds the nodes. A proxy (named by the mode, or in
 * auto mode a target that closes the connection at INFO and then answers
 * PING) becomes proxy_connections nodes at the target's address, with a
 * fixed slot table (the lanes of PROXY_DESTINATION.md §3). Returns 0, or
 * -1 with err naming what was wrong (the target unreachable, a cluster node
 * given with --target-mode standalone, a standalone server with cluster, a
 * cluster not serving every slot with the ranges, a refused CLUSTER
 * command, a proxy given a user name). d is empty after a failure; free it
 * with dest_nodes_deinit either way. */
int dest_nodes_open(struct dest_nodes *d, const struct endpoint *target,
                    const struct dest_nodes_opts *o, struct rs_error *err);

/* Opens nworkers connections to every node into fds[node * nworkers +
 * worker] (the caller closes them). Returns 0, or -1 with err naming the
 * node that refused or could not be reached; fds opened so far are closed
 * and set to -1. */
int dest_nodes_connect(const struct dest_nodes *d, unsigned nworkers, int timeout_ms, int *fds,
                       struct rs_error *err);

/* The server's CLIENT ID of each connection dest_nodes_connect made (the
 * same indices; 0 when unknown), so that a resume can CLIENT KILL what is
 * left of them before it reads the checkpoints. ids may be NULL. */
void dest_nodes_client_ids(const int *fds, unsigned n, long long *ids);

/* CLIENT KILL ID of each id on the node at ep (best effort: a node gone,
 * or a client already closed, is fine). */
void dest_nodes_kill_clients(const struct endpoint *ep, const long long *ids, unsigned n,
                             int timeout_ms);

/* The masters serving slots now (a cluster may have resharded or failed
 * over since dest_nodes_open): asks the target, then each node d knows,
 * until one answers with a whole topology. *eps (malloc'd, *n of them) for
 * the caller to free. 0, or -1 with err from the last node tried. */
int dest_nodes_current(const struct dest_nodes *d, const struct endpoint *target, int timeout_ms,
                       struct endpoint **eps, unsigned *n, struct rs_error *err);

void dest_nodes_deinit(struct dest_nodes *d);

/* False for a cluster master that serves no slot (a failed master whose
 * replica took over, or an empty one): nobody connects to it until a MOVED
 * names it (its link is then opened when first needed). */
static inline bool dest_nodes_serves(const struct dest_nodes *d, unsigned i)
{
    return !d->is_cluster || d->topo.masters[i].nslots > 0;
}

#endif
