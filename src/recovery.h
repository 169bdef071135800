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
 * and a destination lost while the job starts, after it answered once (a
 * destination that cannot be reached at all at the first contact ends the
 * job at once: a wrong address is the user's to fix):
 *
 *   sync_start_target: sync_prepare_target fails, the last peer lost since
 *     (control_link_last_loss) a destination node -> wait for it
 *     -> forget what was found, sync_prepare_target again (checks and all)
 *   sync_from fails before the workers ran (the w record, the RESTORE probe,
 *     the margin put back), on a lost link (rc->dest_lost_at_start)
 *     -> sync_recover: wait, sync_start_target's loop, a new PSYNC
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
 * takes; lost before its workers ran (r->dest_lost_at_start), starts it
 * again as sync_start_target does, checks and all. The source, reached
 * before, is waited for up to --source-retry-timeout. Returns the final
 * status (status when there is nothing to do). */
int sync_recover(struct run_ctx *r, const struct endpoint *source, uint8_t *initial, int status);

/* sync_prepare_target (sync_run.h), waited out and run again while the
 * destination is lost after it answered: a failure after which the last
 * peer the thread's links lost was a node of the destination (not the
 * source) waits for it (up to --target-retry-timeout, as sync_recover),
 * forgets the nodes and checkpoints found and starts over. A destination
 * that could not be reached at the first contact (dest_nodes_open), a
 * refusal, bad usage or a signal return at once. Returns as
 * sync_prepare_target. */
int sync_start_target(struct run_ctx *r, struct control_link *tcl);

/* A resume the source answered with +FULLRESYNC: its backlog no longer
 * holds the offset. With --resync-on-lost-backlog the destination is
 * flushed and the full sync goes on (0); else 1 after saying how far
 * behind the job was and what backlog it needs. */
int sync_lost_backlog(struct run_ctx *r, const struct endpoint *source,
                      const struct source_handshake_result *hr);

/* A resume after a clean stop took the expiry margin off (the w record
 * says so): it goes back on every expiry before the stream is followed, as
 * every expiry written while following carries it. 0, or 1 after saying why
 * (with r->dest_lost and dest_lost_at_start set when the destination was
 * lost: sync_recover starts the job again). */
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
