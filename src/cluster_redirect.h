/* cluster_redirect.h - MOVED and ASK from a cluster destination while the
 * job runs: the commands sent again to the node that has their slot now,
 * in order, once each (the design and its invariants:
 * src/CLUSTER_DESTINATION.md §3).
 *
 *   consumer w, link A                 producer                  consumer w, links
 *   -MOVED s B to command c
 *     c -> w's redirect queue
 *     barrier: ask for s := B  ----->  poll: s := B in the table,
 *                                      every open batch handed over,
 *                        <-----------  ack: seq X, batches handed to w
 *                                                                hold batches seq >= X
 *     barrier complete: every batch < X received and replied ------^
 *     queue -> redirect batches, ahead of the held ones; holds end
 *
 * One hub per job (struct cluster_redirect), shared by the producer and the
 * workers; one struct cluster_redirect_worker per worker, its own.
 *
 * Threads: cluster_redirect_poll is the producer's; the _worker_ functions
 * are their worker's; cluster_redirect_idle, _floor and _stats any thread.
 */
#ifndef RS_CLUSTER_REDIRECT_H
#define RS_CLUSTER_REDIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster_topology.h"
#include "endpoint.h"
#include "rs_error.h"

#define CLUSTER_REDIRECT_OWNER 0xffffu /* struct batch's owner for a redirect batch */
#define CLUSTER_REDIRECT_MAX_BARRIERS                                                              \
    1024 /* table changes one worker may wait for at once: more fails the job */

struct batch;
struct batch_span;
struct batch_writer;
struct dest_link;
struct job;

struct cluster_redirect;
struct cluster_redirect_worker;

/* The hub for a job writing into topo (reserved: cluster_topology_reserve;
 * the hub changes it, the caller keeps it alive longer than the hub), whose
 * nodes take the credentials of target. NULL: no memory. */
struct cluster_redirect *cluster_redirect_new(struct job *job, struct cluster_topology *topo,
                                              const struct endpoint *target, unsigned nworkers,
                                              int timeout_ms);
void cluster_redirect_free(struct cluster_redirect *h);

/* Checkpoint transactions are on (CHECKPOINTS.md): one answered ASK goes
 * with the record the importing node may write (checkpoint_ask_form). Set
 * before the workers start. */
struct checkpoint;
void cluster_redirect_set_checkpoint(struct cluster_redirect *h, const struct checkpoint *cp);

/* The producer, once per loop iteration, between commands: applies the
 * table changes workers asked for, hands every open batch over and
 * acknowledges (CLUSTER_DESTINATION.md §3, step 3). One atomic load when
 * nobody asked. */
void cluster_redirect_poll(struct cluster_redirect *h, struct batch_writer *bw);

/* True when no redirected command waits anywhere (fences, the snapshot's
 * end and the job's end wait for it). */
bool cluster_redirect_idle(const struct cluster_redirect *h);

/* The lowest source offset (a command's span start) among redirected
 * commands not yet applied, UINT64_MAX when none: the applied offset stays
 * below it. */
uint64_t cluster_redirect_floor(const struct cluster_redirect *h);

/* For the report: MOVED and ASK replies met, commands sent again. */
void cluster_redirect_stats(const struct cluster_redirect *h, uint64_t *moved, uint64_t *asked,
                            uint64_t *resent);

/* The endpoint of master `node` (its address, the target's credentials),
 * for a worker opening its first link to a node met in a MOVED. */
void cluster_redirect_endpoint(struct cluster_redirect *h, unsigned node, struct endpoint *ep);

/* The connect timeout for such a link (--timeout-ms). */
int cluster_redirect_timeout_ms(const struct cluster_redirect *h);

/* The producer's own look at the table: the master serving slot, and a
 * MOVED it met itself (cross_slot.h's steps, run under a fence, when
 * nothing is in flight): the slot's new owner, at once. Returns the
 * master's index, or -1 with err saying why. */
int cluster_redirect_owner(const struct cluster_redirect *h, unsigned slot);
int cluster_redirect_apply_moved(struct cluster_redirect *h, unsigned slot, const char *addr,
                                 size_t addr_len, struct rs_error *err);
/* The index of the master at addr (added when new), the table unchanged:
 * where an ASK points. Any thread. */
int cluster_redirect_node_at(struct cluster_redirect *h, unsigned slot, const char *addr,
                             size_t addr_len, struct rs_error *err);

/* ------------------------------------------------------------ a worker */

/* A worker's side. link_of returns the worker's link to a node, opening it
 * first when needed (NULL: it could not, and the job failed). NULL: no
 * memory. */
struct cluster_redirect_worker *
cluster_redirect_worker_new(struct cluster_redirect *h, unsigned id,
                            struct dest_link *(*link_of)(void *ctx, unsigned node), void *ctx);
void cluster_redirect_worker_free(struct cluster_redirect_worker *rw);

/* Where the worker's links read the hold: a link starts no batch with seq
 * >= *hold (UINT64_MAX: none held). Valid while rw lives. */
const uint64_t *cluster_redirect_worker_hold(const struct cluster_redirect_worker *rw);

/* A batch of the producer reached this worker (counted for step 5). */
void cluster_redirect_worker_received(struct cluster_redirect_worker *rw);

/* dest_link's redirect callback: link dl met reply line[0..len) ("MOVED
 * 866 127.0.0.1:7001", "ASK ...") to cmd[0..cmd_len): one command, or a
 * whole MULTI ... EXEC block of ncmds commands, whose source offsets are
 * span. Queues it and, for a MOVED to a new owner, asks for the table
 * change. Returns 0, or 1 after job_fail (a reply that is not slot
 * host:port, too many nodes or barriers). */
int cluster_redirect_worker_on_reply(struct cluster_redirect_worker *rw, struct dest_link *dl,
                                     const char *cmd, size_t cmd_len, uint32_t ncmds,
                                     const struct batch_span *span, const char *line, size_t len);

/* Every loop iteration, before the links prepare their sends: takes
 * acknowledgements, completes barriers, sends the queue out. Cheap when
 * there is nothing to redirect. links[0..nlinks) are the worker's. */
void cluster_redirect_worker_tick(struct cluster_redirect_worker *rw, struct dest_link *links,
                                  unsigned nlinks);

/* A redirect batch (owner CLUSTER_REDIRECT_OWNER) has all its replies:
 * frees it. */
void cluster_redirect_worker_done(struct cluster_redirect_worker *rw, struct batch *b);

/* True when this worker has nothing queued, held or in flight to redirect. */
bool cluster_redirect_worker_idle(const struct cluster_redirect_worker *rw);

#endif
