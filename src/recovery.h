/* recovery.h - a `ringsync sync` job taken up again from its checkpoints
 * (CHECKPOINTS.md):
 *
 *   run ends on a lost destination link (rc->dest_lost)
 *     -> sync_recover: CLIENT KILL the old links, wait for the destination
 *        (a cluster's nodes found again), read its checkpoints again
 *     -> sync_from (sync_run.h), as a restart that resumes: PSYNC <replid> <W + 1>
 *          +CONTINUE   -> sync_margin_again if a clean stop took it off -> the job
 *          +FULLRESYNC -> sync_lost_backlog: stop, or flush and sync anew
 *
 * and, while a job follows, sync_backlog_check: the warning that the source's
 * backlog is too small for a resume after a stop or a lost link.
 *
 * Threads: the thread that runs the job (the main thread, or one per master
 * of a cluster source).
 */
#ifndef RS_RECOVERY_H
#define RS_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"
#include "source_link.h"
#include "sync_run.h"

/* After a job that ended on a lost destination link (r->dest_lost): waits
 * for the destination, reads its checkpoints again and resumes the job
 * (PSYNC from them: nothing lost, nothing applied twice), as often as it
 * takes. Returns the final status (status when there is nothing to do). */
int sync_recover(struct run_ctx *r, const struct endpoint *source, uint8_t *initial, int status);

/* A resume the source answered with +FULLRESYNC: its backlog no longer
 * holds the offset. With --resync-on-lost-backlog the destination is
 * flushed and the full sync goes on (0); else 1 after saying how far
 * behind the job was and what backlog it needs. */
int sync_lost_backlog(struct run_ctx *r, const struct endpoint *source,
                      const struct source_handshake_result *hr);

/* A resume after a clean stop took the expiry margin off (the w record
 * says so): it goes back on every expiry before the stream is followed, as
 * every expiry written while following carries it. 0, or 1 after saying why. */
int sync_margin_again(struct run_ctx *r);

/* The source's write rate over the first BACKLOG_WATCH_S seconds of the
 * stream, against its repl-backlog-size: a resume (a restart, a lost link)
 * needs the backlog to hold what is written while ringsync is away. */
#define BACKLOG_WATCH_S 10.0
struct backlog_watch {
    double t0;
    uint64_t r0;
    bool done;
};

/* Warns once when the backlog holds less than a minute of the writes seen;
 * call it as the stream is received, with bw zeroed at the job's start. */
void sync_backlog_check(const struct run_ctx *rc, struct backlog_watch *bw, uint64_t received);

#endif
