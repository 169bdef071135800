/* replay.h - the pace and the measurements of `ringsync replay` (the command
 * itself is in restore_cmd.c, which runs the write path of sync_run.h).
 *
 * A replay feeder is a thread that hands a capture (capture_file.h) to the
 * write path through a pipe: the snapshot as fast as it is taken, then, once
 * the snapshot is applied, each stream record at its recorded arrival time
 * divided by the speed (or at once with speed 0, "max"). It scans the
 * commands it hands over and measures each one's latency: from the moment
 * its bytes are in the pipe to the moment the job's applied offset covers
 * it (every command before it applied too), per command name.
 */
#ifndef RS_REPLAY_H
#define RS_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "capture_file.h"

struct job;
struct replay_feeder;

/* Starts the thread: it reads r (open, checked), writes into pipe_fd (the
 * write end, which it closes when done) and watches job. speed: 1 the
 * recorded pace, N N times faster, 0 as fast as the target takes it.
 * NULL when the thread cannot start. */
struct replay_feeder *replay_feeder_start(struct capture_reader *r, int pipe_fd, double speed,
                                          struct job *job);

/* Waits for the thread (it ends once the job ends or everything is applied);
 * call it after the workers ended, while the job still exists. */
void replay_feeder_join(struct replay_feeder *f);

/* The table (to out) and, with json_path, the JSON file; after join.
 * Returns 0, or -1 when the JSON file cannot be written (said on stderr). */
int replay_report(const struct replay_feeder *f, FILE *out, const char *json_path,
                  const char *capture_dir, const char *target);

/* True when every command of the capture was handed over and applied, and
 * the job's applied offset reached the capture's end (less a cut command). */
bool replay_complete(const struct replay_feeder *f);

/* What stopped the feeder itself (a capture that cannot be read), or NULL. */
const char *replay_error(const struct replay_feeder *f);

void replay_feeder_free(struct replay_feeder *f);

#endif
