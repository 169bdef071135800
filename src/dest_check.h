/* dest_check.h - start-time checks of the destination's settings against
 * the source's: what would make the destination refuse, later, what the
 * source can send (src/STREAM_FIDELITY.md has the audit behind each).
 *
 * ringsync writes as an ordinary client of a destination that is a master,
 * so limits a replica waives for its master apply. Checked, in this order:
 *
 *   0. (before: the caller waits while the destination answers -LOADING or
 *      -BUSY, sync.c wait_target_ready, up to --target-retry-timeout)
 *      (and before: dest_nodes.h decides standalone or cluster; each master
 *      of a cluster is checked as a destination of its own, cluster_node)
 *   1. role:slave in INFO replication             -> error (READONLY, or its
 *                                                    master overwrites it)
 *   2. proto-max-bulk-len below the source's      -> error (a longer string
 *                                                    or argument stops the job)
 *   3. client-query-buffer-limit below the source's
 *      proto-max-bulk-len                         -> warning (a command that
 *                                                    large closes the link)
 *   4. min-replicas-to-write N > 0 with min-replicas-max-lag > 0 (Redis
 *      enforces it only with both): fewer than N good replicas now -> error
 *      (every write is refused with NOREPLICAS); N or more -> warning (the
 *      job stops with NOREPLICAS whenever they lag)
 *   5. timeout > 0: not a check any more: an idle link would be closed
 *      (a master's never is), so dest_link PINGs one idle for 0.5 s
 *   6. databases fewer than the source's          -> warning (SELECT of a
 *                                                    higher db is refused)
 *   7. redis_version older than the source's      -> warning (newer command
 *                                                    forms are refused)
 *   8. modules the source has loaded and the destination lacks (MODULE
 *      LIST)                                      -> error (their keys and
 *                                                    commands are refused)
 *
 * Every message names the endpoint, the setting, both values and what to
 * change. A CONFIG GET the destination (or the source) refuses, renamed or
 * denied by ACL, is a warning that says which checks were skipped, never a
 * failure. Without a source (restore, replay), checks 2, 3, 6, 7 and 8 are
 * skipped.
 *
 * Threads: the caller's; it blocks on the control links.
 */
#ifndef RS_DEST_CHECK_H
#define RS_DEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "control_link.h"
#include "endpoint.h"

struct dest_check_opts {
    const struct endpoint *source; /* NULL: no source (restore, replay) */
    int timeout_ms;                /* for the link to the source */
    bool cluster_node;             /* a master of a cluster destination: step 6 does not apply */
};

/* Runs the checks on dest (an open link to dest_ep), opening and closing a
 * link of its own to o->source. Warnings and errors go to standard error,
 * one line each ("ringsync: ..."). Returns 0 when the job may go on (there
 * may have been warnings), 1 when it cannot: an error was logged, or the
 * destination's link failed. */
int dest_check_run(struct control_link *dest, const struct endpoint *dest_ep,
                   const struct dest_check_opts *o);

/* -1, 0 or 1 as version a ("7.0.15") is older than, the same as or newer
 * than b, by major, minor and patch. */
int dest_check_version_cmp(const char *a, const char *b);

/* The names of the comma-separated list want that are not in have (any
 * case), written ", "-separated into out (cut to cap); returns how many. */
size_t dest_check_missing_names(const char *want, const char *have, char *out, size_t cap);

#endif
