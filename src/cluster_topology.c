/* cluster_topology.c - the slot table of a Redis Cluster destination, from
 * CLUSTER SHARDS or CLUSTER SLOTS, checked against CLUSTER INFO.
 *
 * Both parsers walk a hiredis reply tree and copy what they keep; a reply
 * that is not what the command documents is refused whole (t left empty)
 * with the path to the bad element: "shard 1: node 0: \"port\" ...". The
 * table is built as the reply is read, so a slot listed twice is caught at
 * its second listing, naming both owners.
 */
#include "cluster_topology.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define TOPO_QUOTE_BYTES 80 /* of a peer's text in a message */

/* ------------------------------------------------------------ the table */

void cluster_topology_init(struct cluster_topology *t)
{
    memset(t, 0, sizeof(*t));
}

void cluster_topology_deinit(struct cluster_topology *t)
{
    for (size_t i = 0; i < t->nmasters; i++)
        free(t->masters[i].replicas);
    free(t->masters);
    cluster_topology_init(t);
}

int cluster_topology_find_master(const struct cluster_topology *t, const char *name)
{
    for (size_t i = 0; i < t->nmasters; i++)
        if (strcmp(t->masters[i].node.name, name) == 0)
            return (int)i;
    return -1;
}

static int topo_find_master_by_id(const struct cluster_topology *t, const char *id)
{
    for (size_t i = 0; id[0] != '\0' && i < t->nmasters; i++)
        if (strcmp(t->masters[i].node.id, id) == 0)
            return (int)i;
    return -1;
}

/* "host:port", the host in brackets when it is an IPv6 address. */
static void topo_node_set_addr(struct cluster_node *n, const char *host, size_t host_len, int port)
{
    RS_ASSERT(host_len < sizeof(n->host));
    memcpy(n->host, host, host_len);
    n->host[host_len] = '\0';
    n->port = port;
    bool is_v6 = memchr(host, ':', host_len) != NULL;
    snprintf(n->name, sizeof(n->name), is_v6 ? "[%s]:%d" : "%s:%d", n->host, port);
}

/* Appends a master (a copy of *n, no replicas, no slots); its index or -errno. */
static int topo_add_master(struct cluster_topology *t, const struct cluster_node *n)
{
    if (t->nmasters >= CLUSTER_TOPOLOGY_MAX_MASTERS)
        return -E2BIG;
    if (t->nmasters == t->masters_cap && t->is_reserved)
        return -E2BIG; /* readers rely on the array never moving */
    if (t->nmasters == t->masters_cap) {
        size_t cap = t->masters_cap ? t->masters_cap * 2 : 8;
        struct cluster_master *m = realloc(t->masters, cap * sizeof(*m));
        if (m == NULL)
            return -ENOMEM;
        t->masters = m;
        t->masters_cap = cap;
    }
    struct cluster_master *m = &t->masters[t->nmasters];
    memset(m, 0, sizeof(*m));
    m->node = *n;
    /* release: a thread that loads the count (acquire) sees the entry whole */
    __atomic_store_n(&t->nmasters, t->nmasters + 1, __ATOMIC_RELEASE);
    return (int)t->nmasters - 1;
}

/* Adds replica r to master m unless it is there already (same id, or same
 * name when r has no id). 0 or -ENOMEM. */
static int topo_add_replica(struct cluster_master *m, const struct cluster_node *r)
{
    for (size_t i = 0; i < m->nreplicas; i++) {
        const struct cluster_node *o = &m->replicas[i];
        if (r->id[0] != '\0' ? strcmp(o->id, r->id) == 0 : strcmp(o->name, r->name) == 0)
            return 0;
    }
    struct cluster_node *a = realloc(m->replicas, (m->nreplicas + 1) * sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    m->replicas = a;
    m->replicas[m->nreplicas++] = *r;
    return 0;
}

size_t cluster_topology_unserved(const struct cluster_topology *t, char *out, size_t cap)
{
    size_t count = 0, used = 0;
    bool is_cut = false;
    if (cap > 0)
        out[0] = '\0';
    for (unsigned s = 0; s < SLOT_COUNT;) {
        if (t->slot_owner[s] != 0) {
            s++;
            continue;
        }
        unsigned e = s;
        while (e + 1 < SLOT_COUNT && t->slot_owner[e + 1] == 0)
            e++;
        count += e - s + 1;
        char piece[32];
        int n = e == s ? snprintf(piece, sizeof(piece), "%s%u", used ? ", " : "", s)
                       : snprintf(piece, sizeof(piece), "%s%u-%u", used ? ", " : "", s, e);
        /* Room for the piece and, should a later one not fit, ", ...". */
        if (!is_cut && used + (size_t)n + 6 <= cap) {
            memcpy(out + used, piece, (size_t)n + 1);
            used += (size_t)n;
        } else if (!is_cut) {
            is_cut = true;
            const char *more = used ? ", ..." : "...";
            if (used + strlen(more) < cap) {
                memcpy(out + used, more, strlen(more) + 1);
                used += strlen(more);
            }
        }
        s = e + 1;
    }
    return count;
}

/* ------------------------------------------------ walking a reply tree */

/* Where a parser is, for its messages. */
struct topo_parse {
    const char *node; /* who answered */
    const char *cmd;  /* "CLUSTER SHARDS" */
    const char *seed_host;
    char where[64]; /* "shard 1: node 0: " */
    struct rs_error *err;
};

static int topo_fail(struct topo_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int topo_fail(struct topo_parse *p, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    rs_error_set(p->err, RS_E_FORMAT, 0, "%s: %s: %s%s", p->node, p->cmd, p->where, what);
    return -EPROTO;
}

static const char *topo_type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING:
        return "a string";
    case REDIS_REPLY_ARRAY:
        return "an array";
    case REDIS_REPLY_INTEGER:
        return "an integer";
    case REDIS_REPLY_NIL:
        return "nil";
    case REDIS_REPLY_STATUS:
        return "a status";
    case REDIS_REPLY_ERROR:
        return "an error";
    default:
        return "a reply of an unknown type";
    }
}

static bool topo_is_list(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY;
}

/* A map, as RESP2 writes one: a flat array of key, value, key, value ... */
static bool topo_is_map(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0;
}

static bool topo_is_text(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

static bool topo_text_is(const redisReply *r, const char *s)
{
    return topo_is_text(r) && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* The value under key in map m (checked with topo_is_map), or NULL. */
static const redisReply *topo_map_get(const redisReply *m, const char *key)
{
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (topo_text_is(m->element[i], key))
            return m->element[i + 1];
    return NULL;
}

/* The text of r into out (capacity cap): nil is "". */
static int topo_get_text(struct topo_parse *p, const redisReply *r, const char *what, char *out,
                         size_t cap)
{
    if (r->type == REDIS_REPLY_NIL) {
        out[0] = '\0';
        return 0;
    }
    if (!topo_is_text(r))
        return topo_fail(p, "%s is %s, not a string", what, topo_type_name(r->type));
    if (r->len >= cap) {
        char quoted[TOPO_QUOTE_BYTES * 4 + 4];
        rs_escape_bytes(quoted, sizeof(quoted), r->str, r->len, 40);
        return topo_fail(p, "%s \"%s\" is longer than %zu bytes", what, quoted, cap - 1);
    }
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return 0;
}

static int topo_get_int(struct topo_parse *p, const redisReply *r, const char *what, long long lo,
                        long long hi, long long *out)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return topo_fail(p, "%s is %s, not an integer", what, topo_type_name(r->type));
    if (r->integer < lo || r->integer > hi)
        return topo_fail(p, "%s %lld is not %lld..%lld", what, r->integer, lo, hi);
    *out = r->integer;
    return 0;
}

/* Announced addresses that say "not known". */
static bool topo_addr_is_known(const char *a)
{
    return a[0] != '\0' && strcmp(a, "?") != 0;
}

/* The address to use (see the header): endpoint, else ip, else the seed. */
static int topo_node_finish(struct topo_parse *p, struct cluster_node *n, const char *endpoint,
                            const char *ip, int port)
{
    const char *host = topo_addr_is_known(endpoint) ? endpoint
                       : topo_addr_is_known(ip)     ? ip
                                                    : p->seed_host;
    if (strlen(host) >= sizeof(n->host))
        return topo_fail(p, "the address is longer than %zu bytes", sizeof(n->host) - 1);
    topo_node_set_addr(n, host, strlen(host), port);
    return 0;
}

/* Marks [start, end] as served by master mi, refusing a slot served twice. */
static int topo_assign(struct topo_parse *p, struct cluster_topology *t, long long start,
                       long long end, int mi)
{
    if (start > end)
        return topo_fail(p, "slot range %lld-%lld ends before it starts", start, end);
    for (long long s = start; s <= end; s++) {
        uint16_t o = t->slot_owner[s];
        if (o != 0)
            return topo_fail(p, "slot %lld is served by %s and also by %s", s,
                             t->masters[o - 1].node.name, t->masters[mi].node.name);
        t->slot_owner[s] = (uint16_t)(mi + 1);
    }
    t->masters[mi].nslots += (uint32_t)(end - start + 1);
    return 0;
}

static int topo_add_failed(struct topo_parse *p, int rc)
{
    if (rc == -E2BIG)
        rs_error_set(p->err, RS_E_LIMIT, 0, "%s: %s: %smore than %d masters", p->node, p->cmd,
                     p->where, CLUSTER_TOPOLOGY_MAX_MASTERS);
    else
        rs_error_set(p->err, RS_E_LIMIT, 0, "%s: %s: out of memory", p->node, p->cmd);
    return rc;
}

/* The top of a reply: an array, else the error reply or type quoted. */
static int topo_check_top(struct topo_parse *p, const redisReply *reply)
{
    if (topo_is_list(reply))
        return 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        char quoted[TOPO_QUOTE_BYTES * 4 + 4];
        rs_escape_bytes(quoted, sizeof(quoted), reply->str, reply->len, TOPO_QUOTE_BYTES);
        return topo_fail(p, "an error reply: %s", quoted);
    }
    return topo_fail(p, "the reply is %s, not an array", topo_type_name(reply->type));
}

/* -------------------------------------------------------- CLUSTER SHARDS */

/* One node of a shard: its address, id, health, and whether it is the master. */
static int topo_shard_node(struct topo_parse *p, const redisReply *r, struct cluster_node *n,
                           bool *is_master)
{
    memset(n, 0, sizeof(*n));
    if (!topo_is_map(r))
        return topo_fail(p, "is %s, not a map", topo_type_name(r->type));
    const redisReply *id = topo_map_get(r, "id"), *port = topo_map_get(r, "port");
    const redisReply *role = topo_map_get(r, "role");
    if (id == NULL || role == NULL)
        return topo_fail(p, "has no \"%s\"", id == NULL ? "id" : "role");
    int rc = topo_get_text(p, id, "\"id\"", n->id, sizeof(n->id));
    if (rc < 0)
        return rc;
    if (n->id[0] == '\0')
        return topo_fail(p, "\"id\" is empty");
    if (port == NULL || (port->type == REDIS_REPLY_INTEGER && port->integer == 0)) {
        if (topo_map_get(r, "tls-port") != NULL)
            return topo_fail(p,
                             "node %s is reachable only by TLS (\"tls-port\"), which ringsync "
                             "does not speak",
                             n->id);
        return topo_fail(p, "has no \"port\"");
    }
    long long port_v = 0;
    rc = topo_get_int(p, port, "\"port\"", 1, 65535, &port_v);
    if (rc < 0)
        return rc;
    char endpoint[256] = "", ip[256] = "", role_s[16], health[16] = "";
    const redisReply *v;
    if ((v = topo_map_get(r, "endpoint")) != NULL &&
        (rc = topo_get_text(p, v, "\"endpoint\"", endpoint, sizeof(endpoint))) < 0)
        return rc;
    if ((v = topo_map_get(r, "ip")) != NULL &&
        (rc = topo_get_text(p, v, "\"ip\"", ip, sizeof(ip))) < 0)
        return rc;
    if ((v = topo_map_get(r, "health")) != NULL &&
        (rc = topo_get_text(p, v, "\"health\"", health, sizeof(health))) < 0)
        return rc;
    if ((rc = topo_get_text(p, role, "\"role\"", role_s, sizeof(role_s))) < 0)
        return rc;
    if (strcmp(role_s, "master") == 0)
        *is_master = true;
    else if (strcmp(role_s, "replica") == 0 || strcmp(role_s, "slave") == 0)
        *is_master = false;
    else
        return topo_fail(p, "\"role\" is \"%s\", not master or replica", role_s);
    n->is_failed = strcmp(health, "failed") == 0;
    return topo_node_finish(p, n, endpoint, ip, (int)port_v);
}

static int topo_shard(struct topo_parse *p, struct cluster_topology *t, const redisReply *shard,
                      size_t si)
{
    snprintf(p->where, sizeof(p->where), "shard %zu: ", si);
    if (!topo_is_map(shard))
        return topo_fail(p, "is %s, not a map", topo_type_name(shard->type));
    const redisReply *slots = topo_map_get(shard, "slots"), *nodes = topo_map_get(shard, "nodes");
    if (slots == NULL || nodes == NULL)
        return topo_fail(p, "has no \"%s\"", slots == NULL ? "slots" : "nodes");
    if (!topo_is_list(slots) || slots->elements % 2 != 0)
        return topo_fail(p, "\"slots\" is %s of %zu elements, not start/end pairs",
                         topo_type_name(slots->type), slots->elements);
    if (!topo_is_list(nodes))
        return topo_fail(p, "\"nodes\" is %s, not an array", topo_type_name(nodes->type));
    for (size_t i = 0; i < slots->elements; i++) {
        long long s;
        int rc = topo_get_int(p, slots->element[i], "a slot", 0, SLOT_COUNT - 1, &s);
        if (rc < 0)
            return rc;
    }

    int rc = 0;
    struct cluster_node *ns = calloc(nodes->elements ? nodes->elements : 1, sizeof(*ns));
    if (ns == NULL)
        return topo_add_failed(p, -ENOMEM);
    ssize_t master = -1;
    for (size_t j = 0; j < nodes->elements; j++) {
        snprintf(p->where, sizeof(p->where), "shard %zu: node %zu: ", si, j);
        bool is_master = false;
        rc = topo_shard_node(p, nodes->element[j], &ns[j], &is_master);
        if (rc < 0)
            goto done;
        if (is_master && master >= 0) {
            rc = topo_fail(p, "a second master (%s, after %s)", ns[j].name, ns[master].name);
            goto done;
        }
        if (is_master)
            master = (ssize_t)j;
    }
    snprintf(p->where, sizeof(p->where), "shard %zu: ", si);
    if (master < 0) {
        if (slots->elements > 0)
            rc = topo_fail(p, "serves slots %lld-%lld ... but lists no master",
                           slots->element[0]->integer, slots->element[1]->integer);
        goto done;
    }
    if (cluster_topology_find_master(t, ns[master].name) >= 0 ||
        topo_find_master_by_id(t, ns[master].id) >= 0) {
        rc = topo_fail(p, "master %s (%s) is listed by another shard too", ns[master].name,
                       ns[master].id);
        goto done;
    }
    int mi = topo_add_master(t, &ns[master]);
    if (mi < 0) {
        rc = topo_add_failed(p, mi);
        goto done;
    }
    for (size_t j = 0; j < nodes->elements; j++)
        if ((ssize_t)j != master && (rc = topo_add_replica(&t->masters[mi], &ns[j])) < 0) {
            rc = topo_add_failed(p, rc);
            goto done;
        }
    for (size_t i = 0; i < slots->elements; i += 2)
        if ((rc = topo_assign(p, t, slots->element[i]->integer, slots->element[i + 1]->integer,
                              mi)) < 0)
            goto done;
done:
    free(ns);
    return rc;
}

int cluster_topology_parse_shards(struct cluster_topology *t, const redisReply *reply,
                                  const char *seed_host, const char *node_name,
                                  struct rs_error *err)
{
    struct topo_parse p = {
        .node = node_name, .cmd = "CLUSTER SHARDS", .seed_host = seed_host, .err = err};
    cluster_topology_deinit(t);
    int rc = topo_check_top(&p, reply);
    for (size_t i = 0; rc == 0 && i < reply->elements; i++)
        rc = topo_shard(&p, t, reply->element[i], i);
    if (rc < 0)
        cluster_topology_deinit(t);
    return rc;
}

/* --------------------------------------------------------- CLUSTER SLOTS */

/* One node of a range: [address, port, id, {metadata}]. */
static int topo_slots_node(struct topo_parse *p, const redisReply *r, struct cluster_node *n)
{
    memset(n, 0, sizeof(*n));
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return topo_fail(p, "is %s of %zu elements, not [address, port, id ...]",
                         topo_type_name(r->type), r->elements);
    char endpoint[256], ip[256] = "";
    long long port = 0;
    int rc = topo_get_text(p, r->element[0], "the address", endpoint, sizeof(endpoint));
    if (rc < 0 || (rc = topo_get_int(p, r->element[1], "port", 1, 65535, &port)) < 0)
        return rc;
    if (r->elements > 2 &&
        (rc = topo_get_text(p, r->element[2], "the id", n->id, sizeof(n->id))) < 0)
        return rc;
    if (r->elements > 3) {
        const redisReply *meta = r->element[3];
        if (!topo_is_map(meta))
            return topo_fail(p, "the metadata is %s, not a map", topo_type_name(meta->type));
        const redisReply *v = topo_map_get(meta, "ip");
        if (v != NULL && (rc = topo_get_text(p, v, "\"ip\"", ip, sizeof(ip))) < 0)
            return rc;
    }
    return topo_node_finish(p, n, endpoint, ip, (int)port);
}

static int topo_slots_range(struct topo_parse *p, struct cluster_topology *t, const redisReply *r,
                            size_t ri)
{
    snprintf(p->where, sizeof(p->where), "range %zu: ", ri);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return topo_fail(p, "is %s of %zu elements, not [start, end, master ...]",
                         topo_type_name(r->type), r->elements);
    long long start, end;
    int rc = topo_get_int(p, r->element[0], "the start", 0, SLOT_COUNT - 1, &start);
    if (rc < 0 || (rc = topo_get_int(p, r->element[1], "the end", 0, SLOT_COUNT - 1, &end)) < 0)
        return rc;
    struct cluster_node n;
    snprintf(p->where, sizeof(p->where), "range %zu: master: ", ri);
    if ((rc = topo_slots_node(p, r->element[2], &n)) < 0)
        return rc;
    int mi =
        n.id[0] != '\0' ? topo_find_master_by_id(t, n.id) : cluster_topology_find_master(t, n.name);
    if (mi < 0 && (mi = topo_add_master(t, &n)) < 0)
        return topo_add_failed(p, mi);
    for (size_t j = 3; j < r->elements; j++) {
        snprintf(p->where, sizeof(p->where), "range %zu: replica %zu: ", ri, j - 3);
        if ((rc = topo_slots_node(p, r->element[j], &n)) < 0)
            return rc;
        if ((rc = topo_add_replica(&t->masters[mi], &n)) < 0)
            return topo_add_failed(p, rc);
    }
    snprintf(p->where, sizeof(p->where), "range %zu: ", ri);
    return topo_assign(p, t, start, end, mi);
}

int cluster_topology_parse_slots(struct cluster_topology *t, const redisReply *reply,
                                 const char *seed_host, const char *node_name, struct rs_error *err)
{
    struct topo_parse p = {
        .node = node_name, .cmd = "CLUSTER SLOTS", .seed_host = seed_host, .err = err};
    cluster_topology_deinit(t);
    int rc = topo_check_top(&p, reply);
    for (size_t i = 0; rc == 0 && i < reply->elements; i++)
        rc = topo_slots_range(&p, t, reply->element[i], i);
    if (rc < 0)
        cluster_topology_deinit(t);
    return rc;
}

/* ---------------------------------------------------------------- MOVED */

int cluster_topology_reserve(struct cluster_topology *t, size_t cap)
{
    if (cap < t->nmasters)
        cap = t->nmasters;
    if (cap > CLUSTER_TOPOLOGY_MAX_MASTERS)
        cap = CLUSTER_TOPOLOGY_MAX_MASTERS;
    if (cap > t->masters_cap) {
        struct cluster_master *m = realloc(t->masters, cap * sizeof(*m));
        if (m == NULL)
            return -ENOMEM;
        t->masters = m;
        t->masters_cap = cap;
    }
    t->is_reserved = true;
    return 0;
}

void cluster_topology_set_owner(struct cluster_topology *t, unsigned slot, int mi)
{
    RS_ASSERT(slot < SLOT_COUNT && mi >= 0 && (size_t)mi < t->nmasters);
    uint16_t old = t->slot_owner[slot];
    if (old != 0)
        t->masters[old - 1].nslots--;
    __atomic_store_n(&t->slot_owner[slot], (uint16_t)(mi + 1), __ATOMIC_RELAXED);
    t->masters[mi].nslots++;
}

int cluster_topology_apply_moved(struct cluster_topology *t, unsigned slot, const char *addr,
                                 size_t addr_len, struct rs_error *err)
{
    int mi = cluster_topology_master_at(t, slot, addr, addr_len, err);
    if (mi >= 0)
        cluster_topology_set_owner(t, slot, mi);
    return mi;
}

int cluster_topology_add_master(struct cluster_topology *t, const struct cluster_node *n)
{
    return topo_add_master(t, n);
}

int cluster_topology_master_at(struct cluster_topology *t, unsigned slot, const char *addr,
                               size_t addr_len, struct rs_error *err)
{
    char quoted[TOPO_QUOTE_BYTES * 4 + 4];
    rs_escape_bytes(quoted, sizeof(quoted), addr, addr_len, TOPO_QUOTE_BYTES);
    if (slot >= SLOT_COUNT) {
        rs_error_set(err, RS_E_FORMAT, 0, "MOVED %u %s: the slot is not 0..%d", slot, quoted,
                     SLOT_COUNT - 1);
        return -EINVAL;
    }
    const char *colon = NULL;
    for (size_t i = 0; i < addr_len; i++)
        if (addr[i] == ':')
            colon = addr + i;
    const char *host = addr;
    size_t host_len = colon ? (size_t)(colon - addr) : 0;
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    long port = 0;
    const char *d = colon ? colon + 1 : addr + addr_len;
    bool ok = colon != NULL && host_len > 0 &&
              host_len < sizeof(((struct cluster_node *)0)->host) && d < addr + addr_len;
    for (; ok && d < addr + addr_len; d++) {
        ok = *d >= '0' && *d <= '9' && port <= 65535;
        port = port * 10 + (*d - '0');
    }
    if (!ok || port < 1 || port > 65535) {
        rs_error_set(err, RS_E_FORMAT, 0, "MOVED %u %s: the address is not host:port", slot,
                     quoted);
        return -EINVAL;
    }

    struct cluster_node n = {0};
    topo_node_set_addr(&n, host, host_len, (int)port);
    int mi = cluster_topology_find_master(t, n.name);
    if (mi < 0) {
        /* A promoted replica keeps its id. */
        for (size_t i = 0; i < t->nmasters && n.id[0] == '\0'; i++)
            for (size_t j = 0; j < t->masters[i].nreplicas; j++)
                if (strcmp(t->masters[i].replicas[j].name, n.name) == 0) {
                    memcpy(n.id, t->masters[i].replicas[j].id, sizeof(n.id));
                    break;
                }
        mi = topo_add_master(t, &n);
        if (mi < 0) {
            rs_error_set(err, RS_E_LIMIT, 0, "MOVED %u %s: %s", slot, quoted,
                         mi == -E2BIG ? "more masters than ringsync has room for"
                                      : "out of memory");
            return mi;
        }
    }
    return mi;
}

/* ------------------------------------------------------------- discovery */

/* Redis 6 says "ERR Unknown subcommand or wrong number of arguments for
 * 'SHARDS'", 7.x "ERR unknown subcommand 'x'". */
static bool topo_is_unknown_subcommand(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->str != NULL &&
           (strcasestr(r->str, "unknown subcommand") != NULL ||
            strcasestr(r->str, "unknown command") != NULL);
}

static int topo_refused(struct control_link *cl, const char *cmd, const redisReply *r,
                        struct rs_error *err)
{
    char quoted[TOPO_QUOTE_BYTES * 4 + 4];
    rs_escape_bytes(quoted, sizeof(quoted), r->str, r->len, TOPO_QUOTE_BYTES);
    rs_error_set(err, RS_E_FORMAT, 0, "%s refused %s: %s", cl->name, cmd, quoted);
    return -EPERM;
}

/* cluster_state's value out of CLUSTER INFO, into state (capacity 16). */
static int topo_cluster_state(struct control_link *cl, char *state, struct rs_error *err)
{
    struct control_reply rep;
    int rc = control_link_commandv(cl, &rep, err, "CLUSTER", "INFO", NULL);
    if (rc < 0)
        return rc;
    const redisReply *r = rep.r;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = topo_refused(cl, "CLUSTER INFO", r, err);
    } else if (r->type != REDIS_REPLY_STRING) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s answered CLUSTER INFO with %s", cl->name,
                     topo_type_name(r->type));
        rc = -EPROTO;
    } else {
        rc = -EPROTO;
        const char *s = r->str, *end = r->str + r->len;
        static const char key[] = "cluster_state:";
        while (s < end) {
            const char *eol = memchr(s, '\n', (size_t)(end - s));
            if (eol == NULL)
                eol = end;
            size_t len = (size_t)(eol - s);
            if (len > 0 && s[len - 1] == '\r')
                len--;
            if (len > sizeof(key) - 1 && memcmp(s, key, sizeof(key) - 1) == 0 &&
                len - (sizeof(key) - 1) < 16) {
                memcpy(state, s + sizeof(key) - 1, len - (sizeof(key) - 1));
                state[len - (sizeof(key) - 1)] = '\0';
                rc = 0;
                break;
            }
            s = eol + 1;
        }
        if (rc < 0)
            rs_error_set(err, RS_E_FORMAT, 0, "%s: CLUSTER INFO has no cluster_state line",
                         cl->name);
    }
    control_reply_free(&rep);
    return rc;
}

int cluster_topology_discover(struct cluster_topology *t, struct control_link *cl,
                              const char *seed_host, struct rs_error *err)
{
    cluster_topology_deinit(t);
    struct control_reply rep;
    int rc = control_link_commandv(cl, &rep, err, "CLUSTER", "SHARDS", NULL);
    if (rc < 0)
        return rc;
    if (topo_is_unknown_subcommand(rep.r)) {
        control_reply_free(&rep);
        rc = control_link_commandv(cl, &rep, err, "CLUSTER", "SLOTS", NULL);
        if (rc < 0)
            return rc;
        rc = rep.r->type == REDIS_REPLY_ERROR
                 ? topo_refused(cl, "CLUSTER SLOTS", rep.r, err)
                 : cluster_topology_parse_slots(t, rep.r, seed_host, cl->name, err);
    } else {
        rc = rep.r->type == REDIS_REPLY_ERROR
                 ? topo_refused(cl, "CLUSTER SHARDS", rep.r, err)
                 : cluster_topology_parse_shards(t, rep.r, seed_host, cl->name, err);
    }
    control_reply_free(&rep);
    if (rc < 0)
        return rc;

    char state[16];
    rc = topo_cluster_state(cl, state, err);
    if (rc < 0)
        goto fail;
    char ranges[160];
    size_t unserved = cluster_topology_unserved(t, ranges, sizeof(ranges));
    if (unserved > 0) {
        rs_error_set(err, RS_E_FORMAT, 0,
                     "%s: the cluster is not serving every slot (cluster_state:%s): %s %s %s not "
                     "served",
                     cl->name, state, unserved == 1 ? "slot" : "slots", ranges,
                     unserved == 1 ? "is" : "are");
        rc = -EHOSTDOWN;
        goto fail;
    }
    if (strcmp(state, "ok") != 0) {
        const char *failed = NULL;
        for (size_t i = 0; i < t->nmasters && failed == NULL; i++)
            if (t->masters[i].node.is_failed && t->masters[i].nslots > 0)
                failed = t->masters[i].node.name;
        rs_error_set(err, RS_E_FORMAT, 0,
                     "%s: cluster_state:%s although every slot has a master (%s%s)", cl->name,
                     state,
                     failed ? "failed: " : "one may be down or unreachable: see CLUSTER NODES",
                     failed ? failed : "");
        rc = -EHOSTDOWN;
        goto fail;
    }
    return 0;

fail:
    cluster_topology_deinit(t);
    return rc;
}

int cluster_mode_of(struct control_link *cl, enum cluster_mode *mode, struct rs_error *err)
{
    char v[16];
    *mode = CLUSTER_MODE_STANDALONE;
    int rc = control_link_info_field(cl, "cluster", "cluster_enabled", v, sizeof(v), err);
    if (rc == -ENOENT) {
        if (err != NULL)
            memset(err, 0, sizeof(*err));
        return 0;
    }
    if (rc < 0)
        return rc;
    if (strcmp(v, "1") == 0)
        *mode = CLUSTER_MODE_CLUSTER;
    return 0;
}
