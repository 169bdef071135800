/* expiry_margin.h - takes the expiry margin back off a destination's keys
 * when a job stops.
 *
 * While a job follows a source, every expiry ringsync writes is M later than
 * the source's (stream_rewrite.h says why). When the job stops, cleanly or
 * not, with every worker joined (nothing of ours is in flight), the
 * destination's expiries are made exact again:
 *
 *   for each db whose INFO keyspace line counts expires > 0:
 *       SELECT db; SCAN cursor COUNT n  ->  PEXPIRETIME of each key (pipelined)
 *       -> PEXPIREAT key t-M for each key with t > 0 (pipelined)
 *
 * A time already past deletes the key, as it is deleted on the source. SCAN
 * may return a key twice (the destination rehashed between two calls), and
 * taking M off twice would be wrong: the keys done are remembered as 128-bit
 * hashes (16 bytes for each key with an expiry) and done once. A destination
 * older than Redis 7.0 (no PEXPIRETIME) gets PTTL and PEXPIRE instead, exact
 * to a millisecond.
 *
 * Threads: the calling thread's control link.
 */
#ifndef RS_EXPIRY_MARGIN_H
#define RS_EXPIRY_MARGIN_H

#include <stdint.h>

#include "control_link.h"
#include "rs_error.h"

/* Takes margin_ms off the expiry of every key of the destination cl is
 * connected to (it is left in db 0). *fixed counts the keys changed. Returns
 * 0, or a negative errno with err naming the endpoint, the db and the
 * command that failed. */
int expiry_margin_remove(struct control_link *cl, int64_t margin_ms, uint64_t *fixed,
                         struct rs_error *err);

/* Whether the destination's user may run what expiry_margin_remove reads
 * with (INFO keyspace, SCAN, PEXPIRETIME), asked at the start with harmless
 * forms of each (a key that does not exist; no write, which a paused
 * destination would hold): 0, or -EACCES with err naming the command, the
 * user and what to do; other failures as control_link_command's. */
int expiry_margin_check_rights(struct control_link *cl, const char *user, int64_t margin_ms,
                               struct rs_error *err);

/* The databases INFO keyspace shows with keys that have an expiry, as a bit
 * per db (dbs 0-63; a higher one sets bit 63 and *beyond), and their count. */
int expiry_margin_dbs(struct control_link *cl, uint64_t *dbs, uint64_t *expires,
                      struct rs_error *err);

#endif
