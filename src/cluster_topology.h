/* cluster_topology.h - the slot table of a Redis Cluster destination.
 *
 * Which master serves each of the 16384 hash slots, and who those masters
 * (and their replicas) are, as one node of the cluster tells it:
 *
 *     cluster_mode_of()            standalone or cluster? (INFO cluster)
 *     cluster_topology_discover()  CLUSTER SHARDS (7.0+), else CLUSTER SLOTS,
 *            |                     then CLUSTER INFO: cluster_state:ok and every
 *            |                     slot served, or an error naming what is not
 *            v
 *     struct cluster_topology  --cluster_topology_apply_moved()-->  one slot's new owner
 *            |
 *            +-- cluster_topology_owner(t, slot): the hot path's one array lookup
 *
 * The two parsers (cluster_topology_parse_shards, _parse_slots) take a reply
 * tree read by hiredis's redisReader (control_link's, or one a test fed with
 * RESP bytes in pieces), RESP2: maps are flat key/value arrays (the links
 * never say HELLO 3; hiredis 0.14 has no RESP3 types).
 *
 * Addresses: a node is reached at the address it announces, its "endpoint"
 * (CLUSTER SHARDS) or first field (CLUSTER SLOTS); when that is empty, "?" or
 * nil (the node does not know it), at its "ip"; when that is unknown too, at
 * the host we connected to (seed_host), with the node's own port.
 *
 * Threads: a topology is a plain value of its owner's thread; once built,
 * any number of threads may read it while nobody changes it.
 */
#ifndef RS_CLUSTER_TOPOLOGY_H
#define RS_CLUSTER_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "control_link.h"
#include "rs_error.h"
#include "slot.h"

#define CLUSTER_TOPOLOGY_ID_CAP      41   /* a node id: 40 hex digits and the NUL */
#define CLUSTER_TOPOLOGY_MAX_MASTERS 1024 /* more is refused (-E2BIG): Redis advises <= 1000 */

_Static_assert(CLUSTER_TOPOLOGY_MAX_MASTERS < UINT16_MAX, "slot_owner holds index + 1");

/* One node of the cluster, a plain value. */
struct cluster_node {
    char id[CLUSTER_TOPOLOGY_ID_CAP]; /* "" when not known (a master first seen in a MOVED) */
    char host[256];                   /* the address to connect to (see the top) */
    int port;                         /* 1..65535 */
    char name[300];                   /* "host:port", "[::1]:7000" for IPv6: for messages, and
                                         the key cluster_topology_find_master matches */
    bool is_failed;                   /* CLUSTER SHARDS said health "failed" */
};

struct cluster_master {
    struct cluster_node node;
    struct cluster_node *replicas; /* nreplicas of them, owned by the topology */
    size_t nreplicas;
    uint32_t nslots; /* how many slots slot_owner gives it (0: a master with no slots) */
};

/* Caller-owned storage (32 KiB of table: keep it in a job or worker, not on
 * a small stack); an all-zero struct is an empty topology (every slot
 * unserved). Callers read the fields, and change them only through the
 * functions below. A copy by value shares the masters: copy none. */
struct cluster_topology {
    struct cluster_master *masters; /* nmasters of them, in the order the reply listed them */
    size_t nmasters, masters_cap;
    bool is_reserved; /* cluster_topology_reserve: the array never moves, appends may fail */
    uint16_t slot_owner[SLOT_COUNT]; /* master index + 1; 0: the slot is unserved */
};

enum cluster_mode {
    CLUSTER_MODE_STANDALONE = 0,
    CLUSTER_MODE_CLUSTER = 1,
};

/* Makes t empty (all zero). */
void cluster_topology_init(struct cluster_topology *t);

/* Frees what t owns and leaves it empty. An empty topology is a no-op. */
void cluster_topology_deinit(struct cluster_topology *t);

/* The index in t->masters of the master serving slot (< SLOT_COUNT, else a
 * broken invariant), or -1 when nobody serves it. One array lookup. */
static inline int cluster_topology_owner(const struct cluster_topology *t, unsigned slot)
{
    RS_ASSERT(slot < SLOT_COUNT);
    return (int)t->slot_owner[slot] - 1;
}

/* The index of the master whose name is name ("host:port" as in
 * struct cluster_node), or -1. Linear in the number of masters. */
int cluster_topology_find_master(const struct cluster_topology *t, const char *name);

/* Fills t (first emptied) from a reply to CLUSTER SHARDS that node_name (for
 * messages) gave: an array of shards, each a map of "slots" (a flat array of
 * start, end integer pairs) and "nodes" (an array of maps with id, port, ip,
 * endpoint, role, health ...; unknown keys are ignored). A shard with slots
 * must list exactly one node of role "master"; a shard without slots and
 * without master is skipped; a shard without slots but with a master adds a
 * master with nslots 0. reply is only read; t copies what it keeps.
 *
 * Returns 0; or -EPROTO, RS_E_FORMAT, with t left empty and err saying where
 * and what was wrong: "127.0.0.1:7000: CLUSTER SHARDS: shard 1: node 0:
 * \"port\" is a string, not an integer"; a slot listed by two shards names
 * both; an error reply is quoted. -E2BIG past CLUSTER_TOPOLOGY_MAX_MASTERS;
 * -ENOMEM. */
int cluster_topology_parse_shards(struct cluster_topology *t, const redisReply *reply,
                                  const char *seed_host, const char *node_name,
                                  struct rs_error *err);

/* The same from a reply to CLUSTER SLOTS (servers before 7.0): an array of
 * ranges, each [start, end, master, replica...], every node an array [address,
 * port, id (3.2+), metadata map (7.0+)]. A master listed for several ranges is
 * one master (matched by id, or by name when there is no id); its replicas
 * are collected once each. Fails as cluster_topology_parse_shards does
 * ("... CLUSTER SLOTS: range 2: master: port 0 is not 1..65535"). */
int cluster_topology_parse_slots(struct cluster_topology *t, const redisReply *reply,
                                 const char *seed_host, const char *node_name,
                                 struct rs_error *err);

/* Writes the unserved slots of t into out (capacity cap, NUL-terminated when
 * cap > 0) as compact ranges in order: "0-99, 5000, 16000-16383"; a list
 * that does not fit ends with ", ..." (the count stays exact). Returns how
 * many slots are unserved (0: out is ""). */
size_t cluster_topology_unserved(const struct cluster_topology *t, char *out, size_t cap);

/* Asks the node cl is connected to (seed_host: the host cl connected to, for
 * nodes that do not know their address) for the whole topology, into t
 * (first emptied): CLUSTER SHARDS, or CLUSTER SLOTS when the node refuses
 * SHARDS as an unknown subcommand (Redis 6); then CLUSTER INFO.
 *
 * Returns 0 when cluster_state is ok and every slot is served. Fails with t
 * left empty and err naming the node (cl->name):
 *   -EHOSTDOWN  cluster_state is not ok or slots are unserved:
 *               "127.0.0.1:7000: the cluster is not serving every slot
 *               (cluster_state:fail): slots 0-99, 5000 are not served"
 *   -EPERM      the node refused a command (CLUSTER SHARDS and SLOTS, or
 *               CLUSTER INFO), quoted: not a cluster node, an ACL, ...
 *   -EPROTO     a malformed reply (as the parsers say);
 *   otherwise as control_link_command (the link may then be broken). */
int cluster_topology_discover(struct cluster_topology *t, struct control_link *cl,
                              const char *seed_host, struct rs_error *err);

/* A MOVED reply's news: slot (< SLOT_COUNT) now lives at addr ("host:port",
 * the host in brackets or not for IPv6, as a MOVED reply writes it; not
 * NUL-terminated: addr_len bytes). The slot's owner becomes the master of
 * that name, added (nslots 0 before this slot, with the id of the replica of
 * that name if t knew one: a promoted replica) when t did not have it.
 * Returns the master's index; or -EINVAL (RS_E_FORMAT, quoting addr) for an
 * address that is not host:port or a slot out of range, -E2BIG past
 * CLUSTER_TOPOLOGY_MAX_MASTERS, -ENOMEM; t is unchanged then. */
int cluster_topology_apply_moved(struct cluster_topology *t, unsigned slot, const char *addr,
                                 size_t addr_len, struct rs_error *err);

/* The same in two steps, for a table other threads read: the index of the
 * master at addr (parsed and added as apply_moved does, slot only for
 * messages), and then the slot's new owner (one 16-bit store). */
int cluster_topology_master_at(struct cluster_topology *t, unsigned slot, const char *addr,
                               size_t addr_len, struct rs_error *err);
void cluster_topology_set_owner(struct cluster_topology *t, unsigned slot, int mi);

/* Appends master n (copied; nslots 0) even when one of that name exists:
 * a proxy's connections, all at its one address. Returns its index, or
 * -E2BIG (reserved and full), -ENOMEM. */
int cluster_topology_add_master(struct cluster_topology *t, const struct cluster_node *n);

/* Room for cap masters at least (capped at CLUSTER_TOPOLOGY_MAX_MASTERS),
 * reserved now: the masters array never moves again, so other threads may
 * keep reading masters[i] for i < cluster_topology_nmasters() while one
 * thread (holding whatever lock the caller uses) appends; an append past
 * the room fails with -E2BIG. 0 or -ENOMEM. */
int cluster_topology_reserve(struct cluster_topology *t, size_t cap);

/* The number of masters, safe to read while another thread appends. */
static inline size_t cluster_topology_nmasters(const struct cluster_topology *t)
{
    return __atomic_load_n(&t->nmasters, __ATOMIC_ACQUIRE);
}

/* Standalone or cluster: `INFO cluster` has cluster_enabled:1 on a cluster
 * node; cluster_enabled:0, or no such field (a server or proxy without a
 * cluster section), is standalone. Fails as control_link_info_field does
 * (-EPERM when INFO is refused, quoted, naming the node). */
int cluster_mode_of(struct control_link *cl, enum cluster_mode *mode, struct rs_error *err);

#endif
