/* checkpoint_file.h - a job's checkpoint in a local file, for a destination
 * that cannot hold records bound to the commands they cover (a proxy: no
 * MULTI/EXEC; src/PROXY_DESTINATION.md §8). At least once, not exactly once:
 * the file says W, every command up to W is applied; a resume sends the
 * stream from W + 1 again, so what had landed past W runs twice (harmless
 * for absolute commands, counted by nobody for the others).
 *
 *   one line:  ringsync-checkpoint 1 job=<id> target=<host:port> replid=<40 hex>
 *              W=<offset> db=<source db at W> phase=full|full-keep|stream at=<unix ms>
 *
 *   written:   a full sync begins (phase full-keep, W 0), then every second
 *              while W moves once the snapshot is applied (stream), and at a
 *              clean stop once everything routed is applied
 *   how:       PATH.tmp written and fsynced, renamed over PATH, the directory
 *              fsynced: a crash leaves the old line or the new, never half
 *
 * Threads: any; one writer at a time per path.
 */
#ifndef RS_CHECKPOINT_FILE_H
#define RS_CHECKPOINT_FILE_H

#include <stdint.h>

#include "checkpoint.h"
#include "rs_error.h"

/* Reads PATH into *st (zeroed first; st->found false when PATH does not
 * exist). A line of another job or target, or one that does not parse, is
 * an error naming the path and what is wrong (never a guess). 0, or -1. */
int checkpoint_file_read(const char *path, const char *job, const char *target,
                         struct checkpoint_state *st, struct rs_error *err);

/* Replaces PATH's line, as the top says. 0, or -1 with err naming the path
 * and the call that failed. */
int checkpoint_file_write(const char *path, const char *job, const char *target, const char *replid,
                          uint64_t w, int64_t db, const char *phase, struct rs_error *err);

#endif
