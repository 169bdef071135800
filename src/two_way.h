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
 * on scl, db 0) when it keeps a backlog; else (a server that never had a
 * replica keeps none, and can only answer PSYNC with a full resync) a full
 * sync whose snapshot is read and dropped (*discard: the destination holds
 * that data: the forward direction copied it). Returns 1 when it chose, 0
 * when there was nothing to do, -1 after saying what failed. */
int two_way_reverse_start(const struct sync_opts *o, struct control_link *scl,
                          enum checkpoint_start *how, struct checkpoint_state *st, bool *discard);

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

struct two_way_conflicts *two_way_conflicts_new(int64_t window_ms);
void two_way_conflicts_free(struct two_way_conflicts *t);

/* Side `side` applied an application write of key (ending at source offset
 * end); job counts and logs a conflict. */
void two_way_note(struct two_way_conflicts *t, struct job *job, int side, const void *key,
                  size_t len, uint64_t end);

/* Conflicts seen so far. */
uint64_t two_way_conflict_count(const struct two_way_conflicts *t);

#endif
