/* snapshot_writer.h - turns the snapshot's key records into the cheapest
 * commands that give the destination the same data (DESIGN.md §1, "Command
 * choice"):
 *
 *   string, no expiry          MSET of up to 100 keys (per database)
 *   string with an expiry      SET key value PXAT ms
 *   big string                 SET key first-piece, APPEND key piece ..., PEXPIREAT
 *   other small values         RESTORE key ms payload REPLACE ABSTTL (the payload is
 *                              the snapshot's own bytes + RDB version + CRC64)
 *   big values, or RESTORE off DEL key, then RPUSH / SADD / ZADD / HSET / XADD ... of
 *                              bounded size, XSETID, XGROUP, XCLAIM, then PEXPIREAT
 *   expired or empty keys      nothing
 *   functions, AUX lua         FUNCTION LOAD REPLACE, SCRIPT LOAD
 *
 * Commands of one key go to one lane (its hash slot's worker and node), in
 * order, in the database the db map gives (dest_route.h). Functions and Lua
 * scripts go to every node. Keys the filters drop (key_filter.h, on the
 * source's key name and db) are read and not written.
 */
#ifndef RS_SNAPSHOT_WRITER_H
#define RS_SNAPSHOT_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "rdb_decoder.h"

struct batch_writer;
struct job;

struct dest_route;
struct key_filter;

struct snapshot_writer_config {
    bool use_restore; /* RESTORE small non-string values; false: native commands for all */
    const struct dest_route *route; /* each key's lane and destination db */
    int64_t expiry_margin_ms;       /* expiries written this much later (stream_rewrite.h) */
    bool proxy;   /* a proxy: functions and scripts are skipped (counted in code_skipped) */
    bool discard; /* write nothing: the destination holds this data already (two_way.h) */
    /* the filters (key_filter.h), or NULL: none. A key record they drop is
     * not written (counted in job->filtered_keys); --block-command FUNCTION
     * or SCRIPT leaves the snapshot's functions or Lua scripts out
     * (code_blocked) */
    const struct key_filter *filter;
};

struct snapshot_writer;

struct snapshot_writer *snapshot_writer_new(const struct snapshot_writer_config *cfg,
                                            struct batch_writer *bw, struct job *job);
void snapshot_writer_free(struct snapshot_writer *sw);

/* The decoder configuration this writer needs (raw_or_items when RESTOREing). */
void snapshot_writer_decoder_config(const struct snapshot_writer *sw,
                                    struct rdb_decoder_config *cfg);

/* An rdb_event_fn: give it every decoder event (ctx = the writer). On a
 * failure it calls job_fail and returns non-zero. */
int snapshot_writer_on_event(void *ctx, const struct rdb_event *ev);

/* Counters for the report. */
struct snapshot_writer_stats {
    uint64_t keys;         /* keys written */
    uint64_t expired;      /* keys skipped as already expired */
    uint64_t empty;        /* empty collections skipped */
    uint64_t restored;     /* keys written with RESTORE */
    uint64_t native;       /* keys written with native commands */
    uint64_t functions;    /* function libraries loaded */
    uint64_t code_skipped; /* functions and scripts a proxy could not pass */
    uint64_t code_blocked; /* functions and scripts --block-command left out */
    int rdb_version;
};
void snapshot_writer_stats(const struct snapshot_writer *sw, struct snapshot_writer_stats *st);

#endif
