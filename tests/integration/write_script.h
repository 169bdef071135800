/* write_script.h - a scripted load over every write command family of Redis
 * 7.0, run on a source so that what replicates it (`ringsync sync`, a native
 * replica, `ringsync capture` then `ringsync replay`) can be compared with an
 * oracle afterwards (test_stream.c, test_capture.c).
 *
 * What it sends, in this order:
 *   - one pipeline of the families: strings (SET with every option, SETEX,
 *     INCR..., GETDEL, GETEX, MSET, MSETNX), keys (DEL, UNLINK, the EXPIRE
 *     family, RENAME, COPY, MOVE, SORT ... STORE), lists, sets, sorted sets,
 *     hashes, streams with consumer groups, bitmaps, HyperLogLog, geo, and
 *     transactions across slots and databases;
 *   - a run of plain SETs (which ringsync merges into MSETs) interleaved with
 *     what a merge must not jump over (WRITE_SCRIPT_MERGE_RUN_KEYS keys);
 *   - blocking pops served by a later push (replicated as the non-blocking
 *     command they became), from a second connection;
 *   - DUMP / RESTORE with relative and absolute TTLs and REPLACE;
 *   - EVAL, EVALSHA, FUNCTION LOAD / FCALL / DELETE / DUMP / RESTORE;
 *   - keys with PX WRITE_SCRIPT_EXPIRE_PX, then a wait until the source's
 *     active expiry has deleted all four (their DELs are in the stream when
 *     it returns): the source must run with active expiry on;
 *   - every database, MOVE, SWAPDB, FLUSHDB, FLUSHDB ASYNC.
 *
 * Every command succeeds on a source that holds none of these keys at first;
 * the script may run again after FLUSHALL (function libraries survive it,
 * hence FUNCTION LOAD REPLACE). Keys with tags {a}, {b}, {c} land in different
 * slots, so multi-key commands cross slots (and, with two workers, workers).
 * Every TTL it leaves is far in the future (days, or the year 2100), so
 * nothing it wrote expires while a test compares. The source's connection is
 * left in db 0.
 *
 * Fails the test (cr_assert) on any error: call it from a test body.
 */
#ifndef RS_TEST_WRITE_SCRIPT_H
#define RS_TEST_WRITE_SCRIPT_H

#include "redis_fixture.h"

#define WRITE_SCRIPT_MERGE_RUN_KEYS 3000
#define WRITE_SCRIPT_EXPIRE_PX      50
#define WRITE_SCRIPT_EXPIRE_WAIT_MS 200

/* Runs the whole script on src (through src->ctx and one more connection). */
void write_script_run(struct redis_fixture *src);

#endif
