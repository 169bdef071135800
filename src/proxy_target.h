/* proxy_target.h - what a proxy destination changes at the start of a job,
 * and in its report (src/PROXY_DESTINATION.md §3, §6, §8).
 *
 *   dest_nodes_open: a proxy  -->  proxy_target_settle(options)
 *                                    refused: --checkpoint target, a non-zero
 *                                    --expiry-margin, --target-nonempty refuse|flush,
 *                                    --forward-publish (each needs what a proxy
 *                                    closes the connection at)
 *                                    changed: no checkpoints, no expiry margin
 *                             -->  proxy_target_probe(endpoint), each probe on a
 *                                    connection of its own (a refusal closes it):
 *                                    writes reach the servers; EVAL (the form of
 *                                    what the proxy refuses); {tag}s together
 *   the job's end            -->  proxy_target_report(job)
 *
 * Threads: the caller's; blocking, before the workers start (the report after
 * they stopped).
 */
#ifndef RS_PROXY_TARGET_H
#define RS_PROXY_TARGET_H

#include <stdbool.h>

#include "endpoint.h"
#include "sync_opts.h"

struct job;

/* What the probes found. */
struct proxy_probe {
    bool eval; /* EVAL with a key ran: commands the proxy refuses go wrapped */
};

/* Changes o for a proxy at `name` as the top says, saying what it changed.
 * Returns 0, or 2 (bad usage) after saying which option a proxy cannot
 * honour and what to pass instead. */
int proxy_target_settle(struct sync_opts *o, const char *name);

/* The start-time probes, as the top says, with --proxy-hash-tag when tag is
 * true. Returns 0 with *out filled; 1 after saying what failed (a write
 * refused or lost, the proxy's hash tag not {}). */
int proxy_target_probe(const struct endpoint *ep, int timeout_ms, bool tag,
                       struct proxy_probe *out);

/* Report lines for what went differently through the proxy: commands
 * wrapped, transactions unwrapped, functions and scripts skipped. */
void proxy_target_report(const struct job *job, unsigned long long code_skipped);

#endif
