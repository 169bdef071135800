/* dest_nodes.c - the destination's nodes and their connections (see
 * dest_nodes.h). */
#include "dest_nodes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_link.h"

static int one_node(struct dest_nodes *d, const struct endpoint *target)
{
    if ((d->eps = calloc(1, sizeof(*d->eps))) == NULL)
        return -ENOMEM;
    d->eps[0] = *target;
    d->nnodes = 1;
    return 0;
}

/* True when target looks like a proxy: it closed the connection at INFO
 * (rc, err from cluster_mode_of), and a new connection's PING is answered. */
static bool is_proxy(const struct endpoint *target, int timeout_ms, const struct rs_error *err)
{
    if (err->code != RS_E_TRUNCATED)
        return false;
    struct control_link cl = {0};
    struct rs_error e = {0};
    if (control_link_open(&cl, target, timeout_ms, &e) < 0)
        return false;
    struct control_reply rep = {0};
    bool pong = control_link_commandv(&cl, &rep, &e, "PING", NULL) == 0 &&
                rep.r->type == REDIS_REPLY_STATUS && strcmp(rep.r->str, "PONG") == 0;
    control_reply_free(&rep);
    control_link_close(&cl);
    return pong;
}

/* A proxy as C nodes at its one address: slot s on connection (s /
 * nworkers) % C of its worker, so a slot's commands take one connection. */
static int proxy_nodes(struct dest_nodes *d, const struct endpoint *target,
                       const struct dest_nodes_opts *o, struct rs_error *err)
{
    if (target->user[0] != '\0') {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "destination %s is a proxy: it closes the connection at AUTH with a user "
                     "name (AUTH user password); give the proxy's password alone "
                     "(redis://:password@host:port)",
                     target->name);
        return -1;
    }
    unsigned c = o->proxy_connections ? o->proxy_connections : 4;
    unsigned nw = o->nworkers ? o->nworkers : 1;
    if (cluster_topology_reserve(&d->topo, c) < 0 ||
        (d->eps = calloc(c, sizeof(*d->eps))) == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < c; i++) {
        struct cluster_node n = {.port = target->port};
        snprintf(n.host, sizeof(n.host), "%s", target->host);
        snprintf(n.name, sizeof(n.name), "%s", target->name);
        if (cluster_topology_add_master(&d->topo, &n) < 0) {
            rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
            return -1;
        }
        d->eps[i] = *target;
    }
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        cluster_topology_set_owner(&d->topo, s, (s / nw) % c);
    d->is_proxy = true;
    d->proxy_tag = o->proxy_tag;
    d->nnodes = c;
    return 0;
}

int dest_nodes_open(struct dest_nodes *d, const struct endpoint *target,
                    const struct dest_nodes_opts *o, struct rs_error *err)
{
    memset(d, 0, sizeof(*d));
    enum dest_nodes_mode mode = o->mode;
    int timeout_ms = o->timeout_ms;
    if (mode == DEST_NODES_RELAY) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "--target-mode relay is for `ringsync sync` only (src/RELAY.md)");
        return -1;
    }
    struct control_link cl = {0};
    if (control_link_open(&cl, target, timeout_ms, err) < 0)
        return -1; /* the first contact, a proxy's too: an unreachable target is said at once */
    if (mode == DEST_NODES_PROXY) {
        control_link_close(&cl);
        if (proxy_nodes(d, target, o, err) == 0)
            return 0;
        dest_nodes_deinit(d);
        return -1;
    }
    enum cluster_mode found = CLUSTER_MODE_STANDALONE;
    int rc = cluster_mode_of(&cl, &found, err);
    if (rc < 0 && mode == DEST_NODES_AUTO && is_proxy(target, timeout_ms, err)) {
        control_link_close(&cl);
        control_link_loss_expected();
        memset(err, 0, sizeof(*err));
        if (proxy_nodes(d, target, o, err) == 0)
            return 0;
        dest_nodes_deinit(d);
        return -1;
    }
    if (rc == 0 && found == CLUSTER_MODE_CLUSTER && mode == DEST_NODES_STANDALONE) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "destination %s is a node of a Redis Cluster (INFO cluster: "
                     "cluster_enabled:1), but --target-mode standalone was given: it would "
                     "refuse every slot another node serves with MOVED; drop the option (or "
                     "use --target-mode cluster)",
                     target->name);
        rc = -1;
    } else if (rc == 0 && found == CLUSTER_MODE_STANDALONE && mode == DEST_NODES_CLUSTER) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "destination %s is not a cluster node (INFO cluster: cluster_enabled is not "
                     "1), but --target-mode cluster was given",
                     target->name);
        rc = -1;
    }
    if (rc == 0 && found == CLUSTER_MODE_STANDALONE) {
        control_link_close(&cl);
        return one_node(d, target) == 0 ? 0 : -1;
    }
    if (rc == 0)
        rc = cluster_topology_discover(&d->topo, &cl, target->host, err);
    control_link_close(&cl);
    if (rc != 0) {
        dest_nodes_deinit(d);
        return -1;
    }
    size_t known = d->topo.nmasters;
    for (size_t i = 0; i < d->topo.nmasters; i++)
        known += d->topo.masters[i].nreplicas;
    if (rc == 0 && cluster_topology_reserve(&d->topo, known + DEST_NODES_SPARE) < 0) {
        rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
        dest_nodes_deinit(d);
        return -1;
    }
    d->is_cluster = true;
    d->nnodes = (unsigned)d->topo.nmasters;
    if ((d->eps = calloc(d->nnodes, sizeof(*d->eps))) == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
        dest_nodes_deinit(d);
        return -1;
    }
    for (unsigned i = 0; i < d->nnodes; i++) {
        const struct cluster_node *n = &d->topo.masters[i].node;
        struct endpoint *ep = &d->eps[i];
        *ep = *target; /* the same user and password on every node */
        snprintf(ep->host, sizeof(ep->host), "%s", n->host);
        ep->port = n->port;
        snprintf(ep->name, sizeof(ep->name), "%s", n->name);
    }
    return 0;
}

int dest_nodes_connect(const struct dest_nodes *d, unsigned nworkers, int timeout_ms, int *fds,
                       struct rs_error *err)
{
    unsigned n = d->nnodes * nworkers;
    for (unsigned i = 0; i < n; i++)
        fds[i] = -1;
    for (unsigned i = 0; i < n; i++) {
        struct control_link cl = {0};
        struct rs_slice pending;
        const struct endpoint *ep = &d->eps[i / nworkers];
        if (!dest_nodes_serves(d, i / nworkers))
            continue; /* fds[i] stays -1: opened when a MOVED names it */
        if (control_link_open(&cl, ep, timeout_ms, err) < 0) {
            for (unsigned j = 0; j < i; j++) {
                if (fds[j] >= 0)
                    close(fds[j]);
                fds[j] = -1;
            }
            return -1;
        }
        fds[i] = control_link_detach(&cl, &pending);
        control_link_close(&cl);
    }
    return 0;
}

/* The masters of t with slots, as endpoints with target's credentials. */
static int masters_of(const struct cluster_topology *t, const struct endpoint *target,
                      struct endpoint **eps, unsigned *n)
{
    *n = 0;
    if ((*eps = calloc(t->nmasters ? t->nmasters : 1, sizeof(**eps))) == NULL)
        return -1;
    for (size_t i = 0; i < t->nmasters; i++) {
        const struct cluster_node *m = &t->masters[i].node;
        if (t->masters[i].nslots == 0)
            continue;
        struct endpoint *ep = &(*eps)[(*n)++];
        *ep = *target;
        snprintf(ep->host, sizeof(ep->host), "%s", m->host);
        ep->port = m->port;
        snprintf(ep->name, sizeof(ep->name), "%s", m->name);
    }
    return 0;
}

int dest_nodes_current(const struct dest_nodes *d, const struct endpoint *target, int timeout_ms,
                       struct endpoint **eps, unsigned *n, struct rs_error *err)
{
    *eps = NULL;
    *n = 0;
    if (!d->is_cluster) {
        if ((*eps = calloc(1, sizeof(**eps))) == NULL)
            return -1;
        (*eps)[0] = *target;
        *n = 1;
        return 0;
    }
    /* the target first, then every node known at the start */
    size_t tries = 1 + d->topo.nmasters;
    for (size_t i = 0; i < d->topo.nmasters; i++)
        tries += d->topo.masters[i].nreplicas;
    for (size_t k = 0; k < tries; k++) {
        struct endpoint ep = *target;
        if (k > 0) {
            size_t j = k - 1;
            const struct cluster_node *node = NULL;
            for (size_t i = 0; i < d->topo.nmasters && node == NULL; i++) {
                if (j == 0)
                    node = &d->topo.masters[i].node;
                else if (j - 1 < d->topo.masters[i].nreplicas)
                    node = &d->topo.masters[i].replicas[j - 1];
                else
                    j -= 1 + d->topo.masters[i].nreplicas;
            }
            if (node == NULL)
                break;
            snprintf(ep.host, sizeof(ep.host), "%s", node->host);
            ep.port = node->port;
            snprintf(ep.name, sizeof(ep.name), "%s", node->name);
        }
        struct control_link cl = {0};
        if (control_link_open(&cl, &ep, timeout_ms, err) < 0)
            continue;
        struct cluster_topology t;
        cluster_topology_init(&t);
        int rc = cluster_topology_discover(&t, &cl, ep.host, err);
        control_link_close(&cl);
        if (rc == 0)
            rc = masters_of(&t, target, eps, n);
        cluster_topology_deinit(&t);
        if (rc == 0)
            return 0;
    }
    return -1;
}

void dest_nodes_deinit(struct dest_nodes *d)
{
    cluster_topology_deinit(&d->topo);
    free(d->eps);
    memset(d, 0, sizeof(*d));
}

void dest_nodes_client_ids(const int *fds, unsigned n, long long *ids)
{
    static const char cmd[] = "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";
    for (unsigned i = 0; i < n; i++) {
        ids[i] = 0;
        if (fds[i] < 0 || write(fds[i], cmd, sizeof(cmd) - 1) != (ssize_t)(sizeof(cmd) - 1))
            continue;
        char buf[64];
        size_t len = 0;
        while (len < sizeof(buf) - 1) { /* ":<id>\r\n", on a fresh connection: nothing else */
            ssize_t k = read(fds[i], buf + len, sizeof(buf) - 1 - len);
            if (k <= 0)
                break;
            len += (size_t)k;
            if (memchr(buf, '\n', len) != NULL)
                break;
        }
        buf[len] = '\0';
        if (len > 1 && buf[0] == ':')
            ids[i] = strtoll(buf + 1, NULL, 10);
    }
}

void dest_nodes_kill_clients(const struct endpoint *ep, const long long *ids, unsigned n,
                             int timeout_ms)
{
    struct control_link cl = {0};
    struct rs_error err = {0};
    if (control_link_open(&cl, ep, timeout_ms, &err) < 0)
        return;
    for (unsigned i = 0; i < n; i++) {
        if (ids[i] <= 0)
            continue;
        char id[24];
        snprintf(id, sizeof(id), "%lld", ids[i]);
        struct control_reply rep = {0};
        if (control_link_commandv(&cl, &rep, &err, "CLIENT", "KILL", "ID", id, NULL) < 0)
            break;
        control_reply_free(&rep);
    }
    control_link_close(&cl);
}
