/* router.h - applies the replication stream: each command to the worker that
 * owns its keys' slot, in source order per slot (DESIGN.md §2).
 *
 *   SELECT            tracked, not forwarded: each command carries its db
 *   PING, REPLCONF    consumed (GETACK is answered by the caller)
 *   PUBLISH           dropped unless forward_publish
 *   MULTI ... EXEC    kept whole, sent as one block to one worker
 *   SET k v           gathered into MSETs (same db and worker, outside MULTI)
 *   XADD/XTRIM ... = n LIMIT m, expiries: the form of stream_rewrite.h
 *   DEL/UNLINK/TOUCH/MSET across workers: split per worker
 *   anything else across workers, FLUSHALL, FLUSHDB, SWAPDB, MOVE, FUNCTION,
 *   SCRIPT, unknown commands: a fence (invariant 3): every worker drains and
 *   is acknowledged, the command runs on worker 0 and is acknowledged, then
 *   routing resumes. With one worker nothing needs a fence.
 *
 * On a cluster destination (dest_route.h), what a destination command may
 * hold together is one hash slot, not one worker:
 *   SET k v           gathered per lane into MSETs of one slot
 *   DEL/UNLINK/TOUCH/MSET/MSETNX (as MSET) across slots: one command per slot
 *   MULTI ... EXEC    whole when its keys share a slot; else one transaction
 *                     per slot, in order (said once, counted in job->tx_split)
 *   FLUSHALL, FLUSHDB, FUNCTION, SCRIPT: a fence run on every master
 *   anything else across slots, keyless or unknown, SWAPDB, MOVE:
 *                     --cross-slot stop (the job fails naming the command,
 *                     its slots and offsets) or skip (dropped, counted)
 *   every command's db goes through the db map; an unmapped db stops the
 *   job or, with --db-unmapped skip, drops the command (counted).
 *
 * Filters (key_filter.h), before anything else, on the source's key names
 * and db, per command (inside MULTI/EXEC too; a transaction left with no
 * command is dropped whole), every dropped command counted in job->filtered_cmds:
 *   a --block-command          dropped
 *   every key kept             as it came
 *   every key dropped          dropped
 *   keys split by the filter   DEL/UNLINK/TOUCH/MSET/MSETNX (as MSET): with the
 *                              kept keys only (job->filter_trimmed); anything
 *                              else (RENAME a b, SUNIONSTORE ...) meets
 *                              --cross-slot: stop naming the command, the
 *                              filter and the offsets, or skip (counted)
 *   FLUSHDB, keyless commands  dropped in a db --filter-db leaves out
 *   SWAPDB a b                 as it came when both dbs are kept, dropped when
 *                              neither is, else --cross-slot
 *   MOVE k db, COPY ... DB db  the key judged in both dbs, as a split above
 *   FLUSHALL, FUNCTION, SCRIPT, PUBLISH, unknown commands: --block-command only
 */
#ifndef RS_ROUTER_H
#define RS_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_error.h"

struct batch_writer;
struct job;

struct dest_route;
struct cross_slot;
struct checkpoint;
struct key_filter;

struct router_config {
    const struct dest_route *route; /* lanes and the db map (dest_route.h) */
    bool forward_publish;
    bool cross_slot_skip;     /* --cross-slot skip: drop what a cluster cannot run, counted */
    struct cross_slot *carry; /* a cluster: what it can carry out (cross_slot.h); else NULL */
    bool source_is_shard;     /* the stream of one master of a cluster source (below) */
    int64_t expiry_margin_ms; /* stream_rewrite.h: expiries written this much later */
    /* checkpoints (src/CHECKPOINTS.md), or NULL: a command that must not
     * run twice goes inside a checkpoint transaction, fences and stream
     * transactions carry their record, and on a resume (cp->skip) a
     * command already applied is dropped */
    const struct checkpoint *cp;
    int64_t start_db; /* the source's db at the start offset (a resume: from the w record) */
    /* a proxy destination (src/PROXY_DESTINATION.md §4): a cluster's rules
     * (route->topo holds its connections), plus keys together only when the
     * proxy hashes them alike (proxy_tag: by {tag}), commands it refuses
     * EVAL-wrapped (proxy_eval: the start-time probe passed), transactions
     * sent as their commands, FUNCTION and SCRIPT dropped and counted */
    bool proxy;
    bool proxy_tag;
    bool proxy_eval;
    /* the filters (above), or NULL: none, and nothing paid for them */
    const struct key_filter *filter;
    /* one direction of a two-way job (src/BIDIRECTIONAL.md): every command
     * goes inside a checkpoint transaction, whose record marks it
     * (mark_all); a stream transaction, or a command, that writes a key
     * under drop_prefix (the other direction's records) is the other
     * direction's own write coming back: dropped, counted in job->echoes */
    bool mark_all;
    const char *drop_prefix;
    size_t drop_prefix_len;
    /* both directions in one process: the keys of the application writes
     * it applies are noted for conflicts (two_way.h), as side conflict_side */
    struct two_way_conflicts *conflicts;
    int conflict_side;
    /* --heartbeat-key (heartbeat.h), NULL: none: its SETs are noted */
    const char *heartbeat_key;
};

struct router;

/* A router for the stream that starts at source offset start_offset. */
struct router *router_new(const struct router_config *cfg, struct batch_writer *bw, struct job *job,
                          uint64_t start_offset);
void router_free(struct router *r);

/* Takes stream bytes and routes every complete command it can. Returns
 * RS_OK, or RS_ERR (it called job_fail). Stops early at a fence: see
 * router_is_blocked. */
int router_feed(struct router *r, const void *p, size_t n);

/* Routes what it holds already (after a fence lifted). */
int router_resume(struct router *r);

/* True while a fence waits for every worker's acknowledgements. */
bool router_is_blocked(struct router *r);

/* The offset up to which the stream has been routed (or filtered). */
uint64_t router_routed(const struct router *r);

/* True once after the stream asked for an acknowledgement (REPLCONF GETACK). */
bool router_take_getack(struct router *r);

/* True once for the oldest heartbeat SET routed and not taken yet (only
 * one is held: later ones are not noted while it waits): its value (ms)
 * and the stream offset at its end. */
bool router_take_heartbeat(struct router *r, int64_t *ms, uint64_t *end);

/* Commands routed so far, and fences run. */
uint64_t router_commands(const struct router *r);
uint64_t router_fences(const struct router *r);

/* The source's db at offset off (routed already, and at most a few thousand
 * SELECTs back): what a resume from off must start in. */
int64_t router_db_at(const struct router *r, uint64_t off);

/* The highest offset of a w record the router wrote itself (after a fence
 * or a carried-out command): the periodic w record must not go below it. */
uint64_t router_w_written(const struct router *r);

/* Commands dropped on a resume: their checkpoint says they are applied. */
uint64_t router_resume_skipped(const struct router *r);

/* Commands sent in another form than received (stream_rewrite.h). */
uint64_t router_rewrites(const struct router *r);

#endif
