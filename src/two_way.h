/* two_way.h - one direction of a two-way job (src/BIDIRECTIONAL.md):
 *
 *   --direction forward --job-id J   A -> B: full sync, then A's stream
 *   --direction reverse --job-id J   B -> A: B's stream only, from B's offset
 *                                    when it starts (no snapshot: A holds the data)
 *
 *   two_way_settle(options)   the job id J/<direction>; checkpoints in the
 *                             destination (their records are the markers),
 *                             no expiry margin (each side's own keys keep
 *                             theirs), reverse keeps A's keys
 *   two_way_router(...)       every command inside a record transaction
 *                             (mark_all); what writes J/<other>'s keys is
 *                             the other direction's write coming back: dropped
 *   two_way_reverse_start()   a reverse without records starts at the
 *                             source's current offset, as a resume would
 *
 * Threads: the caller's, before the workers start.
 */
#ifndef RS_TWO_WAY_H
#define RS_TWO_WAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "endpoint.h"
#include "sync_opts.h"

struct control_link;
struct router_config;

/* Checks and changes o for --direction, as the top says. Returns 0; 2
 * after saying what is wrong (no --job-id, --checkpoint none or file, a
 * non-zero --expiry-margin, a proxy destination is checked later). */
int two_way_settle(struct sync_opts *o);

/* The job id of this direction ("J/forward") into out. */
void two_way_job_id(const struct sync_opts *o, char *out, size_t cap);

/* Sets cfg's mark_all and drop prefix (held in prefix, capacity cap, which
 * must outlive the router) for this direction; nothing without --direction. */
void two_way_router(const struct sync_opts *o, struct router_config *cfg, char *prefix, size_t cap);

/* A reverse direction with no records of its own starts where the source
 * is now: a resume from its current replication offset (INFO replication
 * on scl, db 0). A server that never had a replica keeps no backlog and
 * could only answer with a full resync, whose offset is where its fork
 * starts, seconds later (writes made meanwhile would be lost): it is given
 * one first, by a replica's PSYNC ? -1 on a link to source closed at the
 * answer. A reverse whose dropped snapshot was cut by a crash (REDO) drops
 * one again (*discard: the destination holds that data). Returns 1 when it
 * chose, 0 when there was nothing to do, -1 after saying what failed. */
int two_way_reverse_start(const struct sync_opts *o, struct control_link *scl,
                          const struct endpoint *source, enum checkpoint_start *how,
                          struct checkpoint_state *st, bool *discard);

/* Conflicts (src/BIDIRECTIONAL.md §5), when both directions run in one
 * process: a key written by applications on both sides within `window_ms`
 * of each other may end different on the two sides. Each direction notes
 * the keys of the application writes it applies (side 0: A's, forward; 1:
 * B's, reverse); a key the other side wrote within the window is a
 * conflict: counted in job->conflicts, the first ones logged with the key
 * and both offsets. A fixed table of key hashes (TWO_WAY_SLOTS entries,
 * one per hash, newest wins: a collision can only hide a conflict or
 * report a false one). Threads: both directions' producers, lock-free. */
#define TWO_WAY_SLOTS (1u << 18)
struct two_way_conflicts;
struct job;

/* What a conflict leads to (--conflict): nothing but the report, or the key
 * copied from the winning side to the other once the window has passed. */
enum two_way_policy { TWO_WAY_REPORT, TWO_WAY_A_WINS, TWO_WAY_B_WINS };
#define TWO_WAY_RESOLVE_MAX 100000 /* conflicts waiting for their copy; more are only reported */
#define TWO_WAY_RESOLVE_KEY 65536  /* a longer key name is only reported */

struct two_way_conflicts *two_way_conflicts_new(int64_t window_ms, enum two_way_policy policy);
void two_way_conflicts_free(struct two_way_conflicts *t);

/* Side `side` applied an application write of key, in source db `db`
 * (ending at source offset end); job counts and logs a conflict, and with
 * a winner queues the key for two_way_resolve. */
void two_way_note(struct two_way_conflicts *t, struct job *job, int side, int64_t db,
                  const void *key, size_t len, uint64_t end);

/* Conflicts seen so far, and copied by two_way_resolve. */
uint64_t two_way_conflict_count(const struct two_way_conflicts *t);
uint64_t two_way_resolved_count(const struct two_way_conflicts *t);

/* With a winner: copies each queued key whose window has passed (every
 * one with all) from the winning side to the other, DUMP and PTTL in one
 * transaction there, then RESTORE ... REPLACE (or DEL, when the winner no
 * longer holds it) in a transaction that also writes the marker key
 * `ringsync:cp:<job_id>/<direction>:resolved` of the direction that writes
 * to that side, so that the other direction drops it as its own echo
 * (BIDIRECTIONAL.md §5). Each copy is logged; a side that cannot be
 * reached is said and its keys stay queued for the next call. Called by
 * one thread. */
void two_way_resolve(struct two_way_conflicts *t, const struct endpoint *a,
                     const struct endpoint *b, const char *job_id, int timeout_ms, bool all);

#endif
