/* sync.h - the commands that copy a data set into a destination:
 *   ringsync sync --source URI --target URI [...]   from a live source (PSYNC)
 *   ringsync restore FILE.rdb|- --target URI [...]  from a snapshot file
 *   ringsync replay DIR --target URI [...]          from a capture, at its pace
 * All run the same write path: decoder -> snapshot_writer -> workers.
 * sync_main is in sync.c, restore_main and replay_main in restore_cmd.c. */
#ifndef RS_SYNC_H
#define RS_SYNC_H

/* Each returns the process exit code: 0 done (or stopped cleanly by
 * SIGINT/SIGTERM), 1 the job failed (the reason on stderr), 2 bad usage. */
int sync_main(int argc, char **argv);
int restore_main(int argc, char **argv);
/* ringsync replay DIR --target URI [--speed 1|N|max]: a capture (capture.h)
 * through the same write path, paced and measured (replay.h). */
int replay_main(int argc, char **argv);

#endif
