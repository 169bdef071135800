/* checkpoint.h - the job's records in the destination (CHECKPOINTS.md): their
 * keys and values, the transaction ends that write them, and reading,
 * writing and clearing them over control links.
 *
 *   ringsync:cp:<job>:w          "<replid> <W> <phase> <unix ms> <db> <margin 0|1>"
 *                                every command <= W applied; the source's db at W; whether
 *                                the expiries carry the expiry margin now
 *   ringsync:cp:<job>:L<w>/<N>   "<offset>"  standalone: lane w of N workers, applied to here
 *   ringsync:cp:<job>:{<tag>}    "<offset>"  cluster: the slot <tag> hashes to, applied to here
 *   ringsync:cp:<job>:{<tag>}@<s> "<offset>" cluster: slot s, kept in <tag>'s slot while s migrates
 *   ringsync:cp:<job>:{<tag>}#<o> "<offset>" cluster: <tag>'s slot, written once on the node it
 *                                migrates to (o: that command's offset)
 *
 * Threads: built before the workers start, then read-only (the producer
 * writes the records through its batches); the control-link functions are
 * the main thread's.
 */
#ifndef RS_CHECKPOINT_H
#define RS_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rs_error.h"
#include "source_link.h"

#define CHECKPOINT_PREFIX  "ringsync:cp:"
#define CHECKPOINT_JOB_MAX 160
#define CHECKPOINT_KEY_MAX (sizeof(CHECKPOINT_PREFIX) + CHECKPOINT_JOB_MAX + 24)

struct control_link;
struct dest_nodes;
struct cluster_topology;

/* The error a cluster's record script answers when no candidate key is
 * writable on the node that ran it (the command before it ran). */
#define CHECKPOINT_NO_RECORD "RSCP"

/* Phases of the w record. */
#define CHECKPOINT_FULL "full" /* a full sync began (the destination was empty, or flushed) */
#define CHECKPOINT_FULL_KEEP                                                                       \
    "full-keep"                    /* a full sync began over kept keys (--target-nonempty keep) */
#define CHECKPOINT_STREAM "stream" /* the snapshot is applied: W is the applied offset */

struct checkpoint {
    char job[CHECKPOINT_JOB_MAX];
    bool cluster;      /* records per slot (else per lane) */
    unsigned nworkers; /* the lanes of a standalone destination */
    char w_key[CHECKPOINT_KEY_MAX];
    size_t w_key_len;
    unsigned w_slot;                     /* the w record's hash slot */
    char replid[SOURCE_REPLID_LEN + 1];  /* the source's, for the w record */
    char (*tags)[4];                     /* cluster: per slot, a tag that hashes to it */
    const struct cluster_topology *topo; /* cluster: the live slot table (near_slots) */
    /* resume: per slot, commands ending at or below skip[slot] are applied
     * (NULL: nothing to skip); skip_max is the largest */
    uint64_t *skip;
    uint64_t skip_max;
    /* the w record says whether the destination's expiries carry the
     * expiry margin (while following: yes; after a clean stop took it off: no) */
    bool margin_on;
};

/* Checks a job id: 1..CHECKPOINT_JOB_MAX-1 characters of [A-Za-z0-9._:/-].
 * 0, or -EINVAL with err saying what is wrong. */
int checkpoint_job_valid(const char *job, struct rs_error *err);

/* Sets cp up for job (valid), a standalone (per-lane records, nworkers
 * lanes) or cluster (per-slot records) destination. 0 or -ENOMEM. */
int checkpoint_init(struct checkpoint *cp, const char *job, bool cluster, unsigned nworkers);
void checkpoint_deinit(struct checkpoint *cp);

/* The record that a transaction of `lane` (standalone: its worker) and hash
 * slot `slot` ends with, then EXEC: at most checkpoint_end_size bytes,
 * written at p; returns the end. Two commands: `SET <lane record> <offset>`
 * on a standalone destination; on a cluster an EVAL of a script with no
 * declared key that sets the slot's record, or while the slot migrates a
 * record of it in a slot near it of the lane's node (CHECKPOINTS.md). */
size_t checkpoint_end_size(const struct checkpoint *cp);
char *checkpoint_put_end(const struct checkpoint *cp, char *p, unsigned lane, unsigned slot,
                         uint64_t offset);

/* A cluster: the table the record candidates are chosen from (read with
 * whole loads: a consumer may call checkpoint_ask_form while the producer
 * changes it). */
void checkpoint_set_topology(struct checkpoint *cp, const struct cluster_topology *topo);

/* Checks at start that a cluster node runs the record script (EVAL may be
 * refused to the job's user). 0, or -1 with err saying what to do. */
int checkpoint_probe_node(struct control_link *cl, struct rs_error *err);

/* A transaction block (MULTI ... record EXEC) that node `node` answered
 * ASK for slot `slot` goes to that node with ASKING: written at out
 * (capacity cap) with its record for that node (the slot's record only
 * where it already exists there, else one of that node's near it, else one
 * of its own); the new length, or -1 when the block does not end with a
 * record (send it as it is). */
ssize_t checkpoint_ask_form(const struct checkpoint *cp, const char *block, size_t len,
                            unsigned node, unsigned slot, char *out, size_t cap);

/* `SET <w key> "<replid> <w> <phase> <now ms>"` at p (at most
 * checkpoint_w_size bytes); returns the end. One command. */
size_t checkpoint_w_size(const struct checkpoint *cp);
char *checkpoint_put_w(const struct checkpoint *cp, char *p, uint64_t w, int64_t db,
                       const char *phase);

/* What a destination holds of a job. */
struct checkpoint_state {
    bool found; /* a w record */
    char replid[SOURCE_REPLID_LEN + 1];
    uint64_t w;
    char phase[16];
    int64_t at_ms;  /* when the w record was written (unix ms) */
    int64_t db;     /* the source's db at W (its last SELECT at or before W) */
    int margin_on;  /* 1: expiries carry the expiry margin, 0: exact, -1: not said */
    unsigned lanes; /* lane or slot records read */
    uint64_t *skip; /* per slot (SLOT_COUNT), max(W, its record); NULL when !found */
    uint64_t skip_max;
    uint64_t
        shard_records; /* records of jobs <job>/<slot>: a cluster source's (checkpoint_start) */
};

/* Reads the job's records from every node of d (every database of a
 * standalone one, db 0 of each master), into *st (zeroed first; free with
 * checkpoint_state_free). 0, or -1 with err naming the node and what was
 * wrong (a record that does not parse is an error: never a guess). */
int checkpoint_read(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                    struct checkpoint_state *st, struct rs_error *err);
void checkpoint_state_free(struct checkpoint_state *st);

/* Writes the w record now (on the node that owns its slot). 0, or -1 with err. */
int checkpoint_write_w(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                       uint64_t w, int64_t db, const char *phase, struct rs_error *err);

/* Deletes the records of job (NULL: of every job) from every node of d;
 * *deleted counts them. 0, or -1 with err. */
int checkpoint_clear(const struct dest_nodes *d, const char *job, int timeout_ms, uint64_t *deleted,
                     struct rs_error *err);

/* How a sync job starts, from what the destination holds of it. */
enum checkpoint_start {
    CHECKPOINT_START_NEW = 0, /* no record: a new job */
    CHECKPOINT_START_REDO,    /* a full sync of this job was cut: do it again */
    CHECKPOINT_START_RESUME,  /* follow the stream from st->w + 1 */
};

/* Reads the job's records (checkpoint_read) and decides how the job starts;
 * a cut full sync that began on an empty (or flushed) destination has its
 * partial copy flushed (every node) so it starts as it did. Says what it
 * found unless quiet. 0, or -1 with err. */
int checkpoint_start(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                     bool quiet, enum checkpoint_start *how, struct checkpoint_state *st,
                     struct rs_error *err);

/* A full sync begins: the job's old records go, and the w record says
 * "full" (or "full-keep" when the destination kept keys of its own). */
int checkpoint_begin_full(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                          bool keep, struct rs_error *err);

/* FLUSHALL on every node of d. */
int checkpoint_flush(const struct dest_nodes *d, int timeout_ms, struct rs_error *err);

/* `ringsync checkpoint clear|show --target URI [--job-id ID]`. */
int checkpoint_main(int argc, char **argv);

#endif
