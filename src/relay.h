/* relay.h - `ringsync sync --target-mode relay`: the destination replicates
 * from ringsync, which forwards the source's snapshot and stream to it
 * verbatim (design and invariants: src/RELAY.md).
 *
 *     source --PSYNC--> ringsync (replica of the source, master of the
 *                        destination) <--PSYNC-- destination (REPLICAOF
 *                        ringsync's --relay-listen address)
 */
#ifndef RS_RELAY_H
#define RS_RELAY_H

#include "endpoint.h"
#include "sync_opts.h"

#define RELAY_DEFAULT_LISTEN "127.0.0.1:0"

/* Refuses the options a relay cannot honour (RELAY.md "What it is not
 * for"), saying which. Returns 0, or 2 (bad usage) after saying why. */
int relay_settle(const struct sync_opts *o);

/* Runs the job: checks the destination, makes it a replica of the relay,
 * serves it until a signal (or, with --snapshot-only, until it loaded the
 * snapshot), then promotes it (REPLICAOF NO ONE) and puts its settings
 * back. Returns the exit code: 0 after a clean stop in the stream (or the
 * snapshot, with --snapshot-only), 1 when the job could not go on (said
 * on stderr, naming the endpoint and the reason). Signals as
 * sync_install_signals sets them up: the first a clean stop, the second at
 * once. */
int relay_sync(const struct sync_opts *o, const struct endpoint *source,
               const struct endpoint *target);

#endif
