/* cross_slot.h - commands a cluster cannot run as they came (their keys in
 * several hash slots, no per-slot form), carried out as the same effects
 * (src/CLUSTER_DESTINATION.md §6).
 *
 *   RENAME / RENAMENX a b    DUMP a, PEXPIRETIME a -> RESTORE b ... REPLACE [ABSTTL], DEL a
 *   COPY a b [REPLACE]       DUMP a, PEXPIRETIME a -> RESTORE b ... REPLACE [ABSTTL]
 *   SMOVE a b m              SREM a m -> SADD b m
 *   LMOVE a b F T, RPOPLPUSH LPOP/RPOP a -> the element -> LPUSH/RPUSH b element
 *   the *STORE family        every input in another slot than the key written
 *   (SUNIONSTORE ..., BITOP, DUMPed and RESTOREd into a temporary key of the written
 *   PFMERGE, SORT ... STORE,  key's slot ({tag}ringsync:tmp:N); the command run there
 *   GEO...STORE, ZRANGESTORE) with those; the temporaries deleted
 *
 * The router calls it under a fence: every earlier command is applied and
 * nothing else is in flight, so the inputs are exactly the source's at that
 * offset (DESIGN.md §2 invariant 3), and the producer thread runs the steps
 * itself, blocking, on control links of its own to the nodes (opened when
 * first needed, kept for the job). A node's MOVED updates the table and the
 * step goes to the new owner; ASK sends ASKING first; BUSY, LOADING,
 * TRYAGAIN, CLUSTERDOWN are waited for up to --target-retry-timeout. A
 * value is held whole while it is copied (DUMP's payload).
 *
 * Threads: the producer's only.
 */
#ifndef RS_CROSS_SLOT_H
#define RS_CROSS_SLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "slice.h"

struct cluster_redirect;
struct job;

struct cross_slot;

/* For a job writing into the cluster of hub h. NULL: no memory. */
struct cross_slot *cross_slot_new(struct job *job, struct cluster_redirect *h);
void cross_slot_free(struct cross_slot *x);

/* Carries out command argv[0..argc) (keys[0..nkeys) the indices of its
 * keys as command_keys gives them, slots[] their hash slots; from..to its
 * source offsets, for messages). Returns 1 when it applied the same
 * effects, 0 when this command is not one it carries out (the caller's
 * --cross-slot policy decides), -1 after job_fail (a step refused, naming
 * the command, the step, the node and the reply). */
int cross_slot_carry(struct cross_slot *x, int argc, const struct rs_slice *argv, const int *keys,
                     const unsigned *slots, int nkeys, uint64_t from, uint64_t to);

/* True when cross_slot_carry takes this command (by its name and form). */
bool cross_slot_can_carry(int argc, const struct rs_slice *argv);

/* The same through a proxy (keys[0..nkeys) as command_keys gives them):
 * RENAME, RENAMENX, COPY, SMOVE, LMOVE and RPOPLPUSH; the *STORE family
 * only when the proxy hashes {tags} (tag) and a temporary can be named to
 * share the written key's server: "{T}ringsync:tmp:N", T the key's tag, or
 * the whole key when it has none and no '}' (src/PROXY_DESTINATION.md §4.3). */
bool cross_slot_can_carry_proxy(int argc, const struct rs_slice *argv, const int *keys, int nkeys,
                                bool tag);

/* The destination is a proxy: every step the proxy refuses (PEXPIRETIME
 * ...) goes EVAL-wrapped when eval is true, else the command fails the job
 * naming the step; tag: it hashes {tags} (--proxy-hash-tag). Set before
 * the first command. */
void cross_slot_set_proxy(struct cross_slot *x, bool eval, bool tag);

/* Runs a command whose keys are all in `slot` on the node serving it, as
 * the steps are run (following MOVED and ASK, waiting out BUSY ...): for
 * the single-slot commands of a transaction carried out command by command.
 * 0, or -1 after job_fail (refused: named with its offsets from..to). */
int cross_slot_run(struct cross_slot *x, int argc, const struct rs_slice *argv, unsigned slot,
                   uint64_t from, uint64_t to);

/* Commands carried out so far (for the report). */
uint64_t cross_slot_count(const struct cross_slot *x);

#endif
