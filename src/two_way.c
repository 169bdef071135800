/* two_way.c - one direction of a two-way job (see two_way.h). */
#include "two_way.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control_link.h"
#include "job.h"
#include "log.h"
#include "rs_error.h"
#include "router.h"

int two_way_settle(struct sync_opts *o)
{
    if (o->direction == NULL)
        return 0;
    if (o->job_id == NULL) {
        rs_log("--direction needs --job-id: both directions of a two-way job name it, so that "
               "each knows the other's writes");
        return 2;
    }
    if (strlen(o->job_id) + sizeof("/reverse") > CHECKPOINT_JOB_MAX) {
        /* "J/forward" names the records, "ringsync:cp:J/reverse:" the other
         * direction's: both must hold J whole, or the echoes go undropped */
        rs_log("--job-id of a two-way job takes at most %zu characters, not %zu",
               CHECKPOINT_JOB_MAX - sizeof("/reverse"), strlen(o->job_id));
        return 2;
    }
    if (!o->checkpoint || o->checkpoint_file != NULL) {
        rs_log("--direction needs --checkpoint target: the records that checkpoints write in "
               "the destination are what marks a direction's writes (src/BIDIRECTIONAL.md)");
        return 2;
    }
    if (o->expiry_margin_given && o->expiry_margin_ms > 0) {
        rs_log("--direction needs --expiry-margin 0: both sides hold keys of their own, whose "
               "expiries a margin taken back at the stop would shorten");
        return 2;
    }
    if (o->snapshot_only) {
        rs_log("--direction and --snapshot-only exclude each other");
        return 2;
    }
    o->expiry_margin_ms = 0;
    if (strcmp(o->direction, "reverse") == 0) {
        if (o->nonempty == NONEMPTY_FLUSH) {
            rs_log("--direction reverse writes into the side the forward direction copies: "
                   "--target-nonempty flush would empty it");
            return 2;
        }
        o->nonempty = NONEMPTY_KEEP; /* the destination is the other side: it holds the data */
    }
    return 0;
}

void two_way_job_id(const struct sync_opts *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", o->job_id, o->direction);
}

void two_way_router(const struct sync_opts *o, struct router_config *cfg, char *prefix, size_t cap)
{
    if (o->direction == NULL)
        return;
    const char *other = strcmp(o->direction, "forward") == 0 ? "reverse" : "forward";
    int n = snprintf(prefix, cap, "%s%s/%s:", CHECKPOINT_PREFIX, o->job_id, other);
    cfg->mark_all = true;
    cfg->drop_prefix = prefix;
    RS_ASSERT(n > 0 && (size_t)n < cap); /* two_way_settle bounded the job id */
    cfg->drop_prefix_len = (size_t)n;
}

int two_way_reverse_start(const struct sync_opts *o, struct control_link *scl,
                          enum checkpoint_start *how, struct checkpoint_state *st, bool *discard)
{
    if (o->direction == NULL || strcmp(o->direction, "reverse") != 0)
        return 0;
    if (*how == CHECKPOINT_START_REDO) { /* its snapshot was being dropped: again */
        *discard = true;
        return 1;
    }
    if (*how != CHECKPOINT_START_NEW)
        return 0;
    char replid[64] = "", off[32] = "", active[8] = "";
    struct rs_error err = {0};
    if (control_link_info_field(scl, "replication", "repl_backlog_active", active, sizeof(active),
                                &err) == 0 &&
        strcmp(active, "0") == 0) {
        *discard = true;
        rs_log("reverse direction of job %s: the source keeps no backlog yet (no replica "
               "before), so it starts with a full sync whose snapshot is read and dropped (the "
               "destination holds that data)",
               o->job_id);
        return 1;
    }
    err = (struct rs_error){0};
    if (control_link_info_field(scl, "replication", "master_replid", replid, sizeof(replid), &err) <
            0 ||
        control_link_info_field(scl, "replication", "master_repl_offset", off, sizeof(off), &err) <
            0) {
        rs_log("the reverse direction starts at the source's current offset, but INFO "
               "replication did not say it: %s",
               err.msg);
        return -1;
    }
    if (strlen(replid) != SOURCE_REPLID_LEN) {
        rs_log("the source's master_replid '%s' is not %d characters", replid, SOURCE_REPLID_LEN);
        return -1;
    }
    memcpy(st->replid, replid, SOURCE_REPLID_LEN + 1);
    st->w = strtoull(off, NULL, 10);
    st->db = 0;
    st->margin_on = -1;
    st->found = true;
    snprintf(st->phase, sizeof(st->phase), "%s", CHECKPOINT_STREAM);
    *how = CHECKPOINT_START_RESUME;
    rs_log("reverse direction of job %s: following the source from its current offset %" PRIu64
           " (replid %s), without a snapshot",
           o->job_id, st->w, st->replid);
    return 1;
}

/* ------------------------------------------------------------ conflicts */

/* One entry: the key's hash (high 32 bits), the time it was written (ms
 * since the table began, 31 bits: time differences are taken modulo 2^31,
 * right for windows far shorter than 24 days) and the side (low bit),
 * swapped in one atomic exchange: of two writers of one key at once, the
 * second always sees the first. */
struct two_way_entry {
    _Atomic uint64_t word;
    _Atomic uint64_t end; /* the write's end offset in its side's stream (messages only) */
};

struct two_way_conflicts {
    int64_t window_ms;
    uint64_t t0;
    _Atomic uint64_t count;
    struct two_way_entry e[TWO_WAY_SLOTS];
};

static uint64_t coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct two_way_conflicts *two_way_conflicts_new(int64_t window_ms)
{
    struct two_way_conflicts *t = calloc(1, sizeof(*t));
    if (t != NULL) {
        t->window_ms = window_ms;
        t->t0 = coarse_ms();
    }
    return t;
}

void two_way_conflicts_free(struct two_way_conflicts *t)
{
    free(t);
}

static uint64_t key_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void two_way_note(struct two_way_conflicts *t, struct job *job, int side, const void *key,
                  size_t len, uint64_t end)
{
    uint64_t h = key_hash(key, len);
    uint64_t now = (coarse_ms() - t->t0) & 0x7fffffffu;
    uint64_t word = (h >> 32 | 1u) << 32 | now << 1 | (uint64_t)(side & 1); /* hash part never 0 */
    struct two_way_entry *e = &t->e[(h & 0xffffffffu) % TWO_WAY_SLOTS];
    uint64_t old = atomic_exchange_explicit(&e->word, word, memory_order_relaxed);
    uint64_t oend = atomic_exchange_explicit(&e->end, end, memory_order_relaxed);
    if (old >> 32 != word >> 32 || (int)(old & 1) == side)
        return;
    uint64_t dt = (now - ((old >> 1) & 0x7fffffffu)) & 0x7fffffffu;
    if (dt > 0x3fffffffu)
        dt = 0x80000000u - dt; /* the other side's was noted later (a race): |difference| */
    if (dt > (uint64_t)t->window_ms)
        return;
    uint64_t k = atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&job->conflicts, 1, memory_order_relaxed);
    if (k < 20) {
        char name[200];
        rs_escape_bytes(name, sizeof(name), key, len, 120);
        rs_log("conflict: key '%s' written on both sides within %" PRId64 " ms: side %s at "
               "offset %" PRIu64 ", side %s at offset %" PRIu64 "%s",
               name, t->window_ms, side ? "B" : "A", end, side ? "A" : "B", oend,
               k == 19 ? " (no more of these are shown; the report counts them)" : "");
    }
}

uint64_t two_way_conflict_count(const struct two_way_conflicts *t)
{
    return atomic_load(&t->count);
}
