/* batch.h - batches of RESP commands for one destination connection, and the
 * producer-side writer that fills them.
 *
 * A batch is a buffer of complete RESP commands plus the count of replies it
 * will get. It is made by a producer worker (which decodes the source),
 * handed to the consumer worker that owns the destination connection through
 * the job's ring to[producer][consumer], sent, and once every reply is in,
 * handed back through back[consumer][producer] to be reused by its owner.
 *
 *   owner: batch_writer_* fill --> to[][] --> dest_link send/reply --> back[][] --> owner reuses
 *
 * Lanes: a batch is for one destination connection, a *lane*: consumer
 * worker w's link to destination node n is lane n * nworkers + w. A
 * standalone destination has one node, so its lanes are the workers. Every
 * function below that takes a lane `to` keeps its state (the open batch, the
 * connection's db, the gathered MSET, the outstanding batches) per lane.
 */
#ifndef RS_BATCH_H
#define RS_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slice.h"

#define BATCH_BYTES     (64 * 1024) /* a batch's buffer; bigger commands get a batch of their own */
#define BATCH_MSET_KEYS 100         /* strings merged into one MSET */

struct job;

/* The source offsets of the stream command(s) behind one reply: from just
 * before the first to the end of the last (a gathered MSET spans its SETs,
 * a transaction its block); 0..0 for a command ringsync added (SELECT). */
struct batch_span {
    uint64_t from, to;
};

struct batch {
    char *buf;
    size_t len;
    size_t cap;
    uint32_t ncmds;           /* replies this batch will get */
    uint16_t owner;           /* the producer worker that frees it */
    uint16_t dest;            /* the consumer worker that sends it */
    uint16_t node;            /* on the destination node of this index (lane / nworkers) */
    uint32_t lane;            /* node * nworkers + dest */
    int64_t db_at_start;      /* the connection's db before the first command (for error reports) */
    uint64_t off_before;      /* the source offset just before its first command (for ACKs) */
    uint64_t off_last;        /* the source offset at the end of its last command (errors) */
    struct batch *track_next; /* the owner's list of this worker's outstanding batches */
    uint64_t seq;             /* its owner's count of batches made before it */
    struct batch_span *spans; /* per reply, in stream mode (has_spans); else unused */
    uint32_t spans_cap;
    bool has_spans;
    /* consumer side */
    uint32_t replies;   /* replies received so far */
    size_t sent;        /* bytes sent so far */
    struct batch *next; /* FIFO link on the consumer, free list on the owner */
};

/* Appends to a batch: RESP builders (the caller checks room with resp_size). */
size_t resp_arg_size(size_t len);
size_t resp_argv_size(int argc, const struct rs_slice *argv);
void batch_put_argv(struct batch *b, int argc, const struct rs_slice *argv);
/* Writes argv as one RESP multibulk at p (room for resp_argv_size); returns
 * the end. */
char *resp_put_argv(char *p, int argc, const struct rs_slice *argv);

/* Frees a batch outright: only when no thread can touch it any more (after
 * the workers have been joined, for batches a stopped job left behind). */
void batch_free(struct batch *b);

/* Frees every batch still in the job's rings (after the workers are joined). */
void batch_free_in_rings(struct job *job);

/* The producer side of one worker. Not thread-safe: its owner only. */
struct batch_writer;

/* A writer for the job's workers and `nodes` destination nodes (lanes:
 * nodes * job->nworkers). single_slot (a cluster): an MSET holds one key (a
 * cluster refuses one across slots, and answers TRYAGAIN to one whose slot
 * is being migrated with its keys on two nodes). NULL: no memory. */
struct batch_writer *batch_writer_new(struct job *job, unsigned self, unsigned max_outstanding,
                                      unsigned nodes, bool single_slot);
void batch_writer_free(struct batch_writer *bw);

/* Appends one command (argv) for consumer worker `to`, to run in database db
 * (-1: whatever database the connection is in). Emits SELECT first when the
 * connection's database differs. Through a proxy (batch_writer_set_proxy) a
 * command the proxy would refuse goes EVAL-wrapped (proxy_commands.h).
 * Returns 0 or -ENOMEM; -EPERM after job_fail when a proxy has no form for
 * it (no key, or EVAL refused). */
int batch_writer_cmd(struct batch_writer *bw, unsigned to, int64_t db, int argc,
                     const struct rs_slice *argv);

/* The end offset of the last stream command (or snapshot write) written
 * so far, SELECT and the w records aside: whether anything but records
 * went out since a given offset (source_feed: no record for nothing). */
uint64_t batch_writer_data_end(const struct batch_writer *bw);

/* The destination is a proxy (src/PROXY_DESTINATION.md): batch_writer_cmd
 * wraps what it refuses, in EVAL when eval is true (the start-time probe
 * passed), else fails the job naming the command. Set before writing. */
void batch_writer_set_proxy(struct batch_writer *bw, bool eval, const char *name);

/* Adds key=value (of hash slot `slot`) to the MSET being gathered for lane
 * `to` in db; the MSET goes out when it has BATCH_MSET_KEYS keys, when any
 * other command is written for that lane (outside stream mode), when a key
 * of another db (or, single_slot, another slot) comes, or on
 * batch_writer_publish. */
int batch_writer_mset(struct batch_writer *bw, unsigned to, int64_t db, struct rs_slice key,
                      struct rs_slice value, unsigned slot);

/* Appends n bytes of complete RESP commands (ncmds of them) exactly as
 * given, for worker `to`, run in db (SELECT first when needed); db_after is
 * the connection's db after them (a transaction may SELECT). */
int batch_writer_raw(struct batch_writer *bw, unsigned to, int64_t db, const void *p, size_t n,
                     uint32_t ncmds, int64_t db_after);

/* Adds a SET's key and value to the MSET gathered for `to`, given as their
 * RESP bytes ("$3\r\nkey\r\n$5\r\nvalue\r\n"), copied as they are; slot
 * is the key's hash slot. */
int batch_writer_mset_raw(struct batch_writer *bw, unsigned to, int64_t db, const void *args,
                          size_t n, unsigned slot);

/* Stream mode, for the command stream after the snapshot:
 *  - order (DESIGN.md invariant 2 is per slot): batch_writer_raw and
 *    batch_writer_cmd no longer send the MSET gathered for `to` first, so
 *    SETs keep gathering across commands of other slots. The caller flushes
 *    it (batch_writer_flush_stage) before a command of a slot it holds
 *    (batch_writer_staged), and before anything whose keys it cannot tell.
 *    The gathered keys' offsets still bound the applied offset.
 *  - every reply of a batch made from then on has its source offsets
 *    (struct batch_span), for error reports. */
void batch_writer_stream_mode(struct batch_writer *bw);

/* Two-way (src/BIDIRECTIONAL.md §2): SETs gathered into an MSET
 * (batch_writer_mset_raw) are gathered only inside a record transaction,
 * opened for them when none is: no write leaves unmarked. Stream mode and
 * checkpoints on; not with single_slot. */
void batch_writer_mark_all(struct batch_writer *bw);
bool batch_writer_staged(const struct batch_writer *bw, unsigned to, unsigned slot);
int batch_writer_flush_stage(struct batch_writer *bw, unsigned to);

/* Batch sequence numbers: the next batch made gets batch_writer_next_seq;
 * batch_writer_oldest_seq is the oldest batch (or gathered MSET) still
 * waiting for replies, UINT64_MAX when none. So "everything written before
 * now is applied" is oldest_seq >= the next_seq taken now (after a publish). */
uint64_t batch_writer_next_seq(const struct batch_writer *bw);

/* Batches handed to consumer `worker` so far (into its ring, waiting for
 * room in it, or to itself). */
uint64_t batch_writer_handed(const struct batch_writer *bw, unsigned worker);
uint64_t batch_writer_oldest_seq(const struct batch_writer *bw);

/* The source offset just before the commands written next (for ACKs). */
void batch_writer_set_offset(struct batch_writer *bw, uint64_t off);

/* The source offset at the end of the command written next (for errors). */
void batch_writer_set_end(struct batch_writer *bw, uint64_t end);

/* The applied offset: the highest offset W such that every command at or
 * below W was acknowledged, given that everything up to `routed` has been
 * written to this writer (or filtered). */
uint64_t batch_writer_applied(const struct batch_writer *bw, uint64_t routed);

/* Hands every non-empty open batch to its consumer (own batches go to
 * `self_sink`); returns the number of batches handed over. */
unsigned batch_writer_publish(struct batch_writer *bw);

/* Takes back batches that consumers are done with; returns how many. */
unsigned batch_writer_reclaim(struct batch_writer *bw);

/* A batch this worker made came back (the worker was its own consumer). */
void batch_writer_recycle(struct batch_writer *bw, struct batch *b);

/* True when as many batches are out as allowed: stop producing for now. */
bool batch_writer_is_full(const struct batch_writer *bw);

/* Batches handed out and not yet back. 0 means every command was replied to. */
unsigned batch_writer_outstanding(const struct batch_writer *bw);

/* Where batches for this worker itself go (set by the worker). */
void batch_writer_set_self_sink(struct batch_writer *bw, void (*sink)(void *ctx, struct batch *b),
                                void *ctx);

/* Wakes consumer `to` if it sleeps (set by the worker). */
/* Checkpoints (src/CHECKPOINTS.md), in stream mode. batch_writer_raw_cp
 * writes a command of hash slot `slot` inside the lane's checkpoint
 * transaction, opening one (MULTI; the lane's gathered MSET goes out
 * first) when none is open or the open one cannot take it (another db, on
 * a cluster another slot, no room left in its batch). The transaction ends
 * (its record `SET <lane or slot record> <offset of its last command>`,
 * then EXEC) before any other write to the lane and at every publish; it
 * never spans two batches. batch_writer_in_tx: the lane's open transaction
 * would take a command of (db, slot) and, on a cluster, of the one key
 * `key` (NULL: several keys): a cluster transaction holds one key's
 * commands, so that a slot being migrated answers it as that key's command
 * (ASK or MOVED; TRYAGAIN only for commands of several keys). */
#define BATCH_TX_KEY_MAX 128
struct checkpoint;
void batch_writer_set_checkpoints(struct batch_writer *bw, const struct checkpoint *cp);
bool batch_writer_in_tx(const struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                        const struct rs_slice *key);
int batch_writer_raw_cp(struct batch_writer *bw, unsigned to, int64_t db, unsigned slot,
                        const struct rs_slice *key, const void *p, size_t n);

/* Appends one complete command ringsync adds of its own (a checkpoint's w
 * record) for lane `to`, in whatever db the connection is in; its reply
 * covers no source offset. */
int batch_writer_aux(struct batch_writer *bw, unsigned to, const void *p, size_t n);

void batch_writer_set_waker(struct batch_writer *bw, void (*wake)(void *ctx, unsigned to),
                            void *ctx);

#endif
