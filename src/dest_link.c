/* dest_link.c - a destination connection: ordered sends, replies matched to
 * commands, retries of what a busy destination refused (see dest_link.h). */
#include "dest_link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "checkpoint.h"
#include "command_table.h"
#include "dest_reply.h"
#include "job.h"
#include "log.h"
#include "rs_error.h"
#include "slot.h"

static int retry_begin(struct dest_link *dl, const char *line, size_t len);
static double mono_s(void);
static int retry_reply(struct dest_link *dl, bool is_error, const char *line, size_t len);
static bool retry_prep_send(struct dest_link *dl, struct iovec *iov);
static void retry_on_send(struct dest_link *dl, size_t n);
static void retry_free(struct dest_link *dl);

/* The link's own PING is done: not a batch of anyone's. */
static void batch_done(struct dest_link *dl, struct batch *b)
{
    if (b != &dl->ping)
        dl->done(dl->done_ctx, b);
}

static const uint64_t no_hold = UINT64_MAX;

/* Adds n to a counter of the link's own stats: one writer, so a relaxed
 * load and store (no locked instruction); readers load it relaxed. */
static inline void stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

int dest_link_init(struct dest_link *dl, int fd, const char *name, struct job *job,
                   void (*done)(void *ctx, struct batch *b), void *done_ctx)
{
    memset(dl, 0, sizeof(*dl));
    dl->hold = &no_hold;
    dl->fd = fd;
    dl->name = name;
    dl->job = job;
    dl->done = done;
    dl->done_ctx = done_ctx;
    reply_reader_init(&dl->rr);
    dl->rbuf = malloc(DEST_LINK_RECV_BYTES);
    dl->lowat = 1; /* the default of a new socket */
    return dl->rbuf ? 0 : -ENOMEM;
}

void dest_link_deinit(struct dest_link *dl)
{
    retry_free(dl);
    free(dl->rbuf);
    dl->rbuf = NULL;
    if (dl->fd >= 0)
        close(dl->fd);
    dl->fd = -1;
}

void dest_link_enqueue(struct dest_link *dl, struct batch *b)
{
    b->next = NULL;
    b->sent = 0;
    b->replies = 0;
    if (dl->tail)
        dl->tail->next = b;
    else
        dl->head = b;
    dl->tail = b;
    if (dl->send_cur == NULL)
        dl->send_cur = b;
}

void dest_link_insert_before_held(struct dest_link *dl, struct batch *b)
{
    b->sent = 0;
    b->replies = 0;
    struct batch **pp = &dl->head;
    while (*pp != NULL && !((*pp)->seq >= *dl->hold && (*pp)->sent == 0))
        pp = &(*pp)->next;
    b->next = *pp;
    *pp = b;
    if (b->next == NULL)
        dl->tail = b;
    /* the send cursor is the first batch not wholly sent: b, if it came
     * before the old one (or there was none) */
    if (dl->send_cur == NULL || dl->send_cur == b->next)
        dl->send_cur = b;
}

bool dest_link_is_idle(const struct dest_link *dl)
{
    return dl->head == NULL && dl->rstate == DEST_LINK_NORMAL;
}

bool dest_link_prep_send(struct dest_link *dl, struct io_uring *ring, uint64_t ud)
{
    if (dl->send_inflight)
        return false;
    int n = 0;
    if (dl->rstate != DEST_LINK_NORMAL) { /* retrying: the link's own bytes, or a batch's rest */
        if (!retry_prep_send(dl, &dl->iov[0]))
            return false;
        n = 1;
    } else if (dl->send_cur == NULL || dl->send_cur->seq >= *dl->hold) {
        return false; /* nothing, or held (cluster_redirect.h) */
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL)
        return false;
    if (n == 0) {
        for (struct batch *b = dl->send_cur; b != NULL && n < DEST_LINK_IOV && b->seq < *dl->hold;
             b = b->next) {
            dl->iov[n].iov_base = b->buf + b->sent;
            dl->iov[n].iov_len = b->len - b->sent;
            n++;
        }
    }
    memset(&dl->msg, 0, sizeof(dl->msg));
    dl->msg.msg_iov = dl->iov;
    dl->msg.msg_iovlen = (size_t)n;
    io_uring_prep_sendmsg(sqe, dl->fd, &dl->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud);
    dl->send_inflight = true;
    return true;
}

/* What a redirection of command `index` (0-based) of batch b sends again:
 * the command, or when it is inside MULTI ... EXEC the whole block (a
 * cluster transaction has one slot; the node flagged it, EXEC will answer
 * EXECABORT). *last is the index of the block's last command, *ncmds how
 * many it holds. Bytes ringsync wrote: complete RESP. */
static void redirect_unit(const struct batch *b, uint32_t index, const char **cmd, size_t *len,
                          uint32_t *last, uint32_t *ncmds)
{
    const char *p = b->buf, *end = b->buf + b->len;
    const char *multi_at = NULL;
    uint32_t multi_index = 0;
    for (uint32_t i = 0; p < end; i++) {
        const char *start = p;
        long argc = strtol(p + 1, NULL, 10);
        p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
        const char *name = NULL;
        size_t name_len = 0;
        for (long a = 0; a < argc; a++) {
            size_t n = (size_t)strtoull(p + 1, NULL, 10);
            p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
            if (a == 0) {
                name = p;
                name_len = n;
            }
            p += n + 2;
        }
        bool is_exec = name_len == 4 && strncasecmp(name, "EXEC", 4) == 0;
        bool ends = is_exec || (name_len == 7 && strncasecmp(name, "DISCARD", 7) == 0);
        if (i == index && multi_at == NULL) {
            *cmd = start;
            *len = (size_t)(p - start);
            *last = i;
            *ncmds = 1;
            return;
        }
        if (i >= index && ends) { /* the end of the block holding index */
            *cmd = multi_at;
            *len = (size_t)(p - multi_at);
            *last = i;
            *ncmds = i - multi_index + 1;
            return;
        }
        if (name_len == 5 && strncasecmp(name, "MULTI", 5) == 0) {
            multi_at = start;
            multi_index = i;
        } else if (ends) {
            multi_at = NULL;
        }
    }
    RS_ASSERT(!"a reply to a command past the batch's end");
}

/* Says which command of a batch (0-based) an error answers, with its key. */
static void describe_cmd(const struct batch *b, uint32_t index, char *out, size_t cap, int64_t *db,
                         char *name_out, size_t name_cap)
{
    const char *p = b->buf, *end = b->buf + b->len;
    *db = b->db_at_start;
    for (uint32_t i = 0; p < end; i++) {
        long argc = strtol(p + 1, NULL, 10);
        p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
        struct rs_slice argv[2] = {{NULL, 0}, {NULL, 0}};
        for (long a = 0; a < argc; a++) {
            size_t len = (size_t)strtoull(p + 1, NULL, 10);
            p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
            if (a < 2)
                argv[a] = (struct rs_slice){p, len};
            p += len + 2;
        }
        if (i == index) {
            char name[40], key[120];
            rs_escape_bytes(name, sizeof(name), argv[0].p, argv[0].len, 20);
            rs_escape_bytes(key, sizeof(key), argv[1].p, argv[1].len, 60);
            snprintf(out, cap, "%s '%s'", name, key);
            snprintf(name_out, name_cap, "%.*s", (int)argv[0].len, argv[0].p);
            return;
        }
        if (argv[0].len == 6 && strncasecmp(argv[0].p, "SELECT", 6) == 0)
            *db = strtoll(argv[1].p, NULL, 10);
    }
    snprintf(out, cap, "command #%u", index);
    snprintf(name_out, name_cap, "?");
}

/* A command the destination refused for good: a configuration reply stops
 * the job naming the setting (even with --on-error skip); another stops it
 * or, with --on-error skip, is logged, counted and skipped. what is "CMD
 * 'key' in db D (source offset A..B)". Returns 1 when the job failed. */
static int refused(struct dest_link *dl, const char *what, const char *name, const char *line,
                   size_t len)
{
    char reply[200];
    struct dest_reply_advice adv;
    rs_escape_bytes(reply, sizeof(reply), line, len, 160);
    size_t nr = sizeof(CHECKPOINT_NO_RECORD) - 1;
    if (len >= nr && memcmp(line, CHECKPOINT_NO_RECORD, nr) == 0 &&
        (len == nr || line[nr] == ' ')) {
        /* the command ran, its slot's record did not move (a cluster whose
         * slot migrates, and no candidate key writable): a crash before the
         * slot's next record would apply the command again */
        uint64_t n = atomic_fetch_add(&dl->job->cp_records_missed, 1) + 1;
        if (n <= 10)
            rs_log("warning: destination %s ran %s but could not write its "
                   "checkpoint record (-%s): until the slot's next record, a crash would "
                   "apply it again%s",
                   dl->name, what, reply, n == 10 ? " (no more of these are shown)" : "");
        return 0;
    }
    enum dest_reply_kind kind = dest_reply_classify(line, len, name, &adv);
    if (kind == DEST_REPLY_REDIRECT) { /* in a transaction, or while retrying: not followed */
        job_fail(dl->job,
                 "destination %s refused %s: -%s; ringsync follows a cluster's redirections for "
                 "single commands, not yet inside a transaction or while retrying what a busy "
                 "node refused",
                 dl->name, what, reply);
        return 1;
    }
    if (kind == DEST_REPLY_ADVICE) {
        job_fail(dl->job, "destination %s refused %s: -%s; %s", dl->name, what, reply, adv.text);
        return 1;
    }
    if (!dl->job->skip_errors) {
        job_fail(dl->job, "destination %s refused %s: -%s", dl->name, what, reply);
        return 1;
    }
    /* --on-error skip: say it (the first hundred), count it, go on */
    stat_add(&dl->stats.skipped, 1);
    uint64_t n = atomic_fetch_add(&dl->job->errors_skipped, 1) + 1;
    if (n <= 100)
        rs_log("skipped: destination %s refused %s: -%s%s", dl->name, what, reply,
               n == 100 ? " (no more of these are shown)" : "");
    return 0;
}

/* An error reply to the head batch's next command, in NORMAL: retried,
 * stopping, or skipped. Returns -1 when the reply counts as handled (skipped)
 * and on_reply goes on, else what on_reply returns. Out of line, so the
 * frame of on_reply stays that of the common "+OK". */
__attribute__((noinline, cold)) static int on_error_reply(struct dest_link *dl, struct batch *b,
                                                          const char *line, size_t len)
{
    if (dl->redirected_b == b && b->replies <= dl->redirected_last) {
        if (b->replies == dl->redirected_last)
            dl->redirected_b = NULL; /* b may be reused once done */
        return -2; /* the rest of a transaction sent again whole: -MOVED ..., -EXECABORT */
    }
    enum dest_reply_kind kind = dest_reply_classify(line, len, NULL, NULL);
    if (kind == DEST_REPLY_RETRY)
        return retry_begin(dl, line, len);
    if (kind == DEST_REPLY_REDIRECT && dl->redirect != NULL && dl->rr.error_element < 0) {
        const char *cmd;
        size_t cmd_len;
        uint32_t last, ncmds;
        redirect_unit(b, b->replies, &cmd, &cmd_len, &last, &ncmds);
        struct batch_span sp = {b->off_before, b->off_last};
        if (b->has_spans)
            sp = b->spans[b->replies];
        if (dl->redirect(dl->redirect_ctx, dl, cmd, cmd_len, ncmds, &sp, line, len) != 0)
            return 1;
        stat_add(len >= 3 && memcmp(line, "ASK", 3) == 0 ? &dl->stats.asked : &dl->stats.moved, 1);
        dl->redirected_b = last > b->replies ? b : NULL;
        dl->redirected_last = last;
        return -2; /* handled: counted as a reply, not as applied here */
    }
    char cmd[200], name[40], what[400];
    int64_t db;
    uint32_t index = b->replies;
    if (dl->rr.error_element >= 0 && dl->rr.top_count <= (int64_t)index)
        /* an error inside EXEC's reply: the n queued commands precede EXEC */
        index = index - (uint32_t)dl->rr.top_count + (uint32_t)dl->rr.error_element;
    describe_cmd(b, index, cmd, sizeof(cmd), &db, name, sizeof(name));
    char where[128] = "";
    if (b->has_spans) { /* a stream command (inside EXEC: its own): where it was in the source */
        const struct batch_span *sp = &b->spans[index];
        if (sp->to > 0)
            snprintf(where, sizeof(where), " (source offset %" PRIu64 "..%" PRIu64 ")", sp->from,
                     sp->to);
    } else if (b->off_last > 0) {
        snprintf(where, sizeof(where), " (source offset %" PRIu64 "..%" PRIu64 ")", b->off_before,
                 b->off_last);
    }
    snprintf(what, sizeof(what), "%s in db %" PRId64 "%s", cmd, db, where);
    return refused(dl, what, name, line, len) ? 1 : -1;
}

static int on_reply(void *ctx, bool is_error, const char *line, size_t len)
{
    struct dest_link *dl = ctx;
    if (dl->rstate != DEST_LINK_NORMAL)
        return retry_reply(dl, is_error, line, len);
    struct batch *b = dl->head;
    RS_ASSERT(b != NULL && b->replies < b->ncmds);
    if (is_error) {
        int rc = on_error_reply(dl, b, line, len);
        if (rc >= 0)
            return rc;
        dl->replies -= rc == -2; /* redirected: applied elsewhere, counted there */
    }
    b->replies++;
    dl->replies++;
    if (b->replies == b->ncmds && b->sent == b->len) {
        dl->head = b->next;
        if (dl->head == NULL)
            dl->tail = NULL;
        batch_done(dl, b);
    }
    return 0;
}

void dest_link_on_send(struct dest_link *dl, int res)
{
    dl->send_inflight = false;
    if (res < 0) {
        job_fail_lost(dl->job, "lost the connection to destination %s while sending: %s", dl->name,
                      strerror(-res));
        return;
    }
    if (dl->rstate == DEST_LINK_ROUND) {
        retry_on_send(dl, (size_t)res);
        return;
    }
    size_t left = (size_t)res;
    while (left > 0) {
        struct batch *b = dl->send_cur;
        RS_ASSERT(b != NULL);
        size_t n = b->len - b->sent;
        if (n > left)
            n = left;
        b->sent += n;
        left -= n;
        if (b->sent == b->len) {
            dl->send_cur = b->next;
            stat_add(&dl->stats.sent, b->ncmds);
        }
    }
    if (dl->rstate != DEST_LINK_NORMAL) { /* DRAINING: the partly sent batch went on */
        retry_on_send(dl, 0);
        return;
    }
    /* A batch whose replies all came before its last byte went out. */
    while (dl->head && dl->head->sent == dl->head->len && dl->head->replies == dl->head->ncmds) {
        struct batch *b = dl->head;
        dl->head = b->next;
        if (dl->head == NULL)
            dl->tail = NULL;
        batch_done(dl, b);
    }
}

/* How many bytes the recv may wait for before it wakes us (SO_RCVLOWAT):
 * replies come in order and each is at least 4 bytes (":0\r\n"), so for n
 * replies owed by fully sent batches, beyond one that may have partly
 * arrived, at least 4 * (n - 1) bytes are still to come. Waking once they
 * are here instead of at every reply the destination writes spares us
 * thousands of wake-ups a second; it never waits for bytes that will not
 * come. A power of two, so it seldom changes. */
static int recv_lowat(const struct dest_link *dl)
{
    uint64_t owed = 0;
    for (const struct batch *b = dl->head; b != NULL && b->sent == b->len; b = b->next)
        owed += b->ncmds - b->replies;
    if (owed < 2)
        return 1;
    uint64_t bytes = 4 * (owed - 1);
    if (bytes > DEST_LINK_RECV_BYTES / 2)
        bytes = DEST_LINK_RECV_BYTES / 2;
    return 1 << (63 - __builtin_clzll(bytes));
}

bool dest_link_prep_recv(struct dest_link *dl, struct io_uring *ring, uint64_t ud)
{
    if (dl->recv_inflight)
        return false;
    int lowat = recv_lowat(dl);
    if (lowat != dl->lowat &&
        setsockopt(dl->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)) == 0)
        dl->lowat = lowat;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL)
        return false;
    io_uring_prep_recv(sqe, dl->fd, dl->rbuf, DEST_LINK_RECV_BYTES, 0);
    io_uring_sqe_set_data64(sqe, ud);
    dl->recv_inflight = true;
    return true;
}

void dest_link_on_recv(struct dest_link *dl, int res)
{
    dl->recv_inflight = false;
    if (res <= 0) {
        job_fail_lost(dl->job, "lost the connection to destination %s: %s", dl->name,
                      res == 0 ? "closed by the server" : strerror(-res));
        return;
    }
    if (dl->head == NULL && dl->rstate == DEST_LINK_NORMAL) {
        char q[64];
        job_fail(dl->job, "destination %s sent a reply to nothing: \"%s\"", dl->name,
                 rs_escape_bytes(q, sizeof(q), dl->rbuf, (size_t)res, 40));
        return;
    }
    int rc = reply_reader_feed(&dl->rr, dl->rbuf, (size_t)res, on_reply, dl);
    atomic_store_explicit(&dl->stats.acked, dl->replies, memory_order_relaxed);
    atomic_store_explicit(&dl->stats.retried, dl->retried, memory_order_relaxed);
    if (rc < 0) {
        char q[64];
        job_fail(dl->job, "destination %s sent something that is not RESP: \"%s\"", dl->name,
                 rs_escape_bytes(q, sizeof(q), dl->rbuf, (size_t)res, 40));
    }
}

/* ================================================================ retrying
 *
 * Everything below runs only after a retryable error (dest_link.h, the
 * diagram): it parses the batches' bytes again, copies and allocates; the
 * NORMAL path never comes here. */

/* One command the destination refused with a retryable error, copied. */
struct retry_entry {
    char *bytes;
    size_t len;
    int64_t db;        /* the db it must run in (-1: any) */
    int64_t select_db; /* >= 0: it is a SELECT of this db */
    struct batch *b;   /* its batch: done only once this one succeeded */
    uint32_t ncmds;    /* replies it takes: 1, or a whole transaction's (MULTI ... EXEC) */
    bool done;
    char what[240]; /* "SET 'k' in db 0 (source offset A..B)" */
};

enum round_kind { ITEM_ENTRY, ITEM_SELECT };

struct round_item {
    enum round_kind kind;
    size_t entry;
    int64_t db; /* ITEM_SELECT */
    /* a transaction's replies so far, and what they said (struct tx_judge) */
    uint32_t got;
    bool multi_ok, retry, ran;
};

struct dest_retry {
    /* parsing a command: argv into its bytes, key indices, their slots */
    struct rs_slice *argv;
    int *idx;
    int argv_cap;
    /* DRAINING: the next command to get a reply, and the db and transaction
     * state the batch writer had before it */
    struct batch *cb;
    size_t coff;
    uint32_t cindex;
    int64_t cdb;
    bool cmulti;
    /* DRAINING: the transaction the cursor is in, judged whole at its EXEC */
    bool blk;
    size_t blk_off; /* its MULTI's offset in cb */
    uint32_t blk_n; /* replies of it read */
    int64_t blk_db;
    bool blk_multi_ok, blk_retry, blk_ran;
    char blk_what[240];
    int64_t real_db;   /* invariant 1: what the last SELECT that succeeded set */
    int64_t resume_db; /* the db the batch writer assumes after the last sent batch */
    /* the queue, in source order */
    struct retry_entry *q;
    size_t qlen, qcap;
    /* what was refused before the reply being read (invariant 4) */
    bool pending_any, pending_keyless, pending_select;
    uint8_t slots[SLOT_COUNT / 8];
    /* the round in flight */
    struct round_item *items;
    size_t nitems, items_cap, replied;
    char *rbuf;
    size_t rlen, rcap, rsent;
    bool round_refused, round_progress;
    /* time */
    double started, wake_at;
    int backoff_ms;
    char reply[200]; /* the last retryable reply, escaped */
    uint64_t episode_retried;
};

struct rcmd {
    const char *p; /* its bytes */
    size_t len;
    int argc;
    struct rs_slice *argv;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a "<c><number>\r\n" line at *p (below end); -1 when it is not one. */
static int64_t read_line_num(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -1;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (nl == NULL)
        return -1;
    int64_t v = strtoll(*p + 1, NULL, 10);
    *p = nl + 1;
    return v;
}

/* Parses the RESP command at p[0..n) (bytes ringsync wrote: complete). */
static int parse_cmd(struct dest_retry *rs, const char *p, size_t n, struct rcmd *c)
{
    const char *s = p, *end = p + n;
    int64_t argc = read_line_num(&s, end, '*');
    if (argc < 1 || argc > (1 << 24))
        return -1;
    if (argc > rs->argv_cap) {
        int cap = (int)argc;
        struct rs_slice *a = realloc(rs->argv, (size_t)cap * sizeof(*a));
        if (a != NULL)
            rs->argv = a;
        int *ix = realloc(rs->idx, (size_t)cap * sizeof(*ix));
        if (ix != NULL)
            rs->idx = ix;
        if (a == NULL || ix == NULL)
            return -1;
        rs->argv_cap = cap;
    }
    for (int64_t i = 0; i < argc; i++) {
        int64_t len = read_line_num(&s, end, '$');
        if (len < 0 || (size_t)(end - s) < (size_t)len + 2)
            return -1;
        rs->argv[i] = (struct rs_slice){s, (size_t)len};
        s += len + 2;
    }
    c->p = p;
    c->len = (size_t)(s - p);
    c->argc = (int)argc;
    c->argv = rs->argv;
    return 0;
}

static bool cmd_is(const struct rcmd *c, const char *name)
{
    size_t n = strlen(name);
    return c->argv[0].len == n && strncasecmp(c->argv[0].p, name, n) == 0;
}

/* The db a SELECT selects, else -1. */
static int64_t cmd_select_db(const struct rcmd *c)
{
    if (!cmd_is(c, "SELECT") || c->argc != 2)
        return -1;
    char tmp[24];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(c->argv[1].len < 20 ? c->argv[1].len : 20),
             c->argv[1].p);
    return strtoll(tmp, NULL, 10);
}

/* The hash slots of its keys into rs->idx (reused); -1 when it has none. */
static int cmd_slots(struct dest_retry *rs, const struct rcmd *c)
{
    const struct command_spec *spec = command_lookup(c->argv[0].p, c->argv[0].len);
    if (spec == NULL || spec->first == 0 || command_reads_unnamed_keys(spec, c->argc, c->argv))
        return -1;
    int n = command_keys(spec, c->argc, c->argv, rs->idx, c->argc);
    if (n <= 0)
        return -1;
    for (int i = 0; i < n; i++)
        rs->idx[i] = (int)slot_of_key(c->argv[rs->idx[i]].p, c->argv[rs->idx[i]].len);
    return n;
}

/* "SET 'k' in db 0 (source offset A..B)" */
static void cmd_what(const struct rcmd *c, int64_t db, const struct batch *b, uint32_t reply,
                     char *out, size_t cap)
{
    char name[40], key[120] = "", where[96] = "";
    rs_escape_bytes(name, sizeof(name), c->argv[0].p, c->argv[0].len, 20);
    if (c->argc > 1)
        rs_escape_bytes(key, sizeof(key), c->argv[1].p, c->argv[1].len, 60);
    uint64_t from = 0, to = 0;
    if (b->has_spans) {
        from = b->spans[reply].from;
        to = b->spans[reply].to;
    } else if (b->off_last > 0) {
        from = b->off_before;
        to = b->off_last;
    }
    if (to > 0)
        snprintf(where, sizeof(where), " (source offset %" PRIu64 "..%" PRIu64 ")", from, to);
    if (snprintf(out, cap, "%s '%s' in db %" PRId64 "%s", name, key, db, where) >= (int)cap)
        out[cap - 1] = '\0'; /* cut: the message stays readable */
}

static void cursor_step(struct dest_retry *rs, const struct rcmd *c)
{
    int64_t sel = cmd_select_db(c);
    if (sel >= 0)
        rs->cdb = sel;
    if (cmd_is(c, "MULTI"))
        rs->cmulti = true;
    else if (cmd_is(c, "EXEC") || cmd_is(c, "DISCARD"))
        rs->cmulti = false;
    rs->coff += c->len;
    rs->cindex++;
}

/* The cursor at command `index` of b: the db and transaction state before it. */
static int cursor_init(struct dest_retry *rs, struct batch *b, uint32_t index)
{
    rs->cb = b;
    rs->coff = 0;
    rs->cindex = 0;
    rs->cdb = b->db_at_start;
    rs->cmulti = false;
    rs->blk = false;
    while (rs->cindex < index) {
        struct rcmd c;
        if (parse_cmd(rs, b->buf + rs->coff, b->len - rs->coff, &c) < 0)
            return -1;
        if (!rs->cmulti && cmd_is(&c, "MULTI")) {
            /* a transaction the replies so far (all fine) are inside of */
            rs->blk = true;
            rs->blk_off = rs->coff;
            rs->blk_db = rs->cdb;
            rs->blk_n = 0;
            rs->blk_multi_ok = true;
            rs->blk_retry = rs->blk_ran = false;
            snprintf(rs->blk_what, sizeof(rs->blk_what), "a transaction");
        } else if (rs->blk && rs->blk_n == 1) {
            char w[200];
            cmd_what(&c, rs->cdb, b, rs->cindex, w, sizeof(w));
            snprintf(rs->blk_what, sizeof(rs->blk_what), "MULTI/EXEC with %s", w);
        }
        if (rs->blk)
            rs->blk_n++;
        cursor_step(rs, &c);
        if (!rs->cmulti)
            rs->blk = false;
    }
    return 0;
}

static void pending_clear(struct dest_retry *rs)
{
    rs->pending_any = rs->pending_keyless = rs->pending_select = false;
    memset(rs->slots, 0, sizeof(rs->slots));
}

static void pending_add(struct dest_retry *rs, const struct rcmd *c)
{
    rs->pending_any = true;
    if (cmd_select_db(c) >= 0) {
        rs->pending_select = true;
        return;
    }
    int n = cmd_slots(rs, c);
    if (n < 0)
        rs->pending_keyless = true;
    for (int i = 0; i < n; i++)
        rs->slots[rs->idx[i] / 8] |= (uint8_t)(1u << (rs->idx[i] % 8));
}

/* The first queued command, not yet done, with a key in slot. */
static const struct retry_entry *entry_with_slot(struct dest_retry *rs, unsigned slot)
{
    for (size_t i = 0; i < rs->qlen; i++) {
        struct rcmd c;
        if (rs->q[i].done || parse_cmd(rs, rs->q[i].bytes, rs->q[i].len, &c) < 0)
            continue;
        int n = cmd_slots(rs, &c);
        for (int k = 0; k < n; k++)
            if ((unsigned)rs->idx[k] == slot)
                return &rs->q[i];
    }
    return NULL;
}

/* Invariant 4: c succeeded while a command before it was refused. Returns 1
 * (the job failed) when that reorders what the source ordered. */
static int check_order(struct dest_link *dl, const struct rcmd *c, const char *what)
{
    struct dest_retry *rs = dl->retry;
    if (!rs->pending_any || cmd_select_db(c) >= 0)
        return 0;
    const char *first = rs->qlen > 0 ? rs->q[0].what : "?";
    if (rs->pending_select) {
        job_fail(dl->job,
                 "destination %s took %s while a SELECT before it was refused (-%s): it ran in "
                 "the wrong db, so the order of the source cannot be restored",
                 dl->name, what, rs->reply);
        return 1;
    }
    if (rs->pending_keyless) {
        job_fail(dl->job,
                 "destination %s took %s while a keyless command before it was refused (-%s): "
                 "the order of the source cannot be restored",
                 dl->name, what, rs->reply);
        return 1;
    }
    int n = cmd_slots(rs, c);
    if (n < 0) {
        job_fail(dl->job,
                 "destination %s took %s, which has no keys, while %s before it was refused "
                 "(-%s): the order of the source cannot be restored",
                 dl->name, what, first, rs->reply);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        unsigned slot = (unsigned)rs->idx[i];
        if (rs->slots[slot / 8] & (1u << (slot % 8))) {
            char mine[sizeof(rs->q[0].what)];
            snprintf(mine, sizeof(mine), "%s", what);
            const struct retry_entry *e = entry_with_slot(rs, slot);
            job_fail(dl->job,
                     "destination %s took %s while %s before it, in the same hash slot %u, was "
                     "refused (-%s): they ran out of order, and the order of the source cannot "
                     "be restored",
                     dl->name, mine, e ? e->what : first, slot, rs->reply);
            return 1;
        }
    }
    return 0; /* other slots: the reorder changes nothing */
}

static int queue_add(struct dest_link *dl, const struct rcmd *c, int64_t db, struct batch *b,
                     const char *what)
{
    struct dest_retry *rs = dl->retry;
    if (rs->qlen == rs->qcap) {
        size_t cap = rs->qcap ? rs->qcap * 2 : 16;
        struct retry_entry *q = realloc(rs->q, cap * sizeof(*q));
        if (q == NULL)
            goto oom;
        rs->q = q;
        rs->qcap = cap;
    }
    struct retry_entry *e = &rs->q[rs->qlen];
    memset(e, 0, sizeof(*e));
    if ((e->bytes = malloc(c->len)) == NULL)
        goto oom;
    memcpy(e->bytes, c->p, c->len);
    e->len = c->len;
    e->db = db;
    e->select_db = cmd_select_db(c);
    e->b = b;
    e->ncmds = 1;
    snprintf(e->what, sizeof(e->what), "%s", what);
    rs->qlen++;
    rs->episode_retried++;
    dl->retried++;
    return 0;
oom:
    job_fail(dl->job, "out of memory while keeping commands to retry on destination %s", dl->name);
    return 1;
}

/* Invariant 2: batches every command of which succeeded, in order. */
static void release_held(struct dest_link *dl)
{
    struct dest_retry *rs = dl->retry;
    while (dl->head != NULL && dl->head->sent == dl->head->len &&
           dl->head->replies == dl->head->ncmds && !(rs->qlen > 0 && rs->q[0].b == dl->head)) {
        struct batch *b = dl->head;
        dl->head = b->next;
        if (dl->head == NULL)
            dl->tail = NULL;
        batch_done(dl, b);
    }
}

static void wait_backoff(struct dest_link *dl)
{
    struct dest_retry *rs = dl->retry;
    dl->rstate = DEST_LINK_WAITING;
    rs->wake_at = mono_s() + rs->backoff_ms / 1000.0;
    rs->backoff_ms *= 2;
    if (rs->backoff_ms > DEST_LINK_BACKOFF_MAX_MS)
        rs->backoff_ms = DEST_LINK_BACKOFF_MAX_MS;
}

static int round_add(struct dest_retry *rs, enum round_kind kind, size_t entry, int64_t db)
{
    if (rs->nitems == rs->items_cap) {
        size_t cap = rs->items_cap ? rs->items_cap * 2 : 16;
        struct round_item *it = realloc(rs->items, cap * sizeof(*it));
        if (it == NULL)
            return -1;
        rs->items = it;
        rs->items_cap = cap;
    }
    char sel[64];
    const char *p;
    size_t n;
    if (kind == ITEM_SELECT) {
        char num[24];
        int k = snprintf(num, sizeof(num), "%" PRId64, db);
        n = (size_t)snprintf(sel, sizeof(sel), "*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n", k, num);
        p = sel;
    } else {
        p = rs->q[entry].bytes;
        n = rs->q[entry].len;
    }
    if (rs->rlen + n > rs->rcap) {
        size_t cap = (rs->rlen + n) * 2;
        char *buf = realloc(rs->rbuf, cap);
        if (buf == NULL)
            return -1;
        rs->rbuf = buf;
        rs->rcap = cap;
    }
    memcpy(rs->rbuf + rs->rlen, p, n);
    rs->rlen += n;
    rs->items[rs->nitems++] = (struct round_item){.kind = kind, .entry = entry, .db = db};
    return 0;
}

static void retry_finish(struct dest_link *dl)
{
    struct dest_retry *rs = dl->retry;
    dl->rstate = DEST_LINK_NORMAL;
    release_held(dl);
    rs_log("destination %s takes writes again after %.2f s: %" PRIu64
           " refused commands retried, in order",
           dl->name, mono_s() - rs->started, rs->episode_retried);
}

/* A round of the queue: at most max items, ending at the first SELECT (so
 * nothing runs before we know its db); after the queue, the SELECT back to
 * the batch writer's db. None left: back to NORMAL. */
static void round_start(struct dest_link *dl, size_t max)
{
    struct dest_retry *rs = dl->retry;
    rs->nitems = rs->rlen = rs->rsent = rs->replied = 0;
    rs->round_refused = rs->round_progress = false;
    pending_clear(rs);
    int rc = 0;
    for (size_t i = 0; i < rs->qlen && rs->nitems < max && rc == 0; i++) {
        const struct retry_entry *e = &rs->q[i];
        if (e->select_db < 0 && e->db >= 0 && e->db != rs->real_db) {
            rc = round_add(rs, ITEM_SELECT, 0, e->db);
            break;
        }
        rc = round_add(rs, ITEM_ENTRY, i, 0);
        if (e->select_db >= 0)
            break;
    }
    if (rc == 0 && rs->qlen == 0 && rs->resume_db >= 0 && rs->real_db != rs->resume_db)
        rc = round_add(rs, ITEM_SELECT, 0, rs->resume_db);
    if (rc < 0) {
        job_fail(dl->job, "out of memory while retrying commands on destination %s", dl->name);
        return;
    }
    if (rs->nitems == 0) {
        retry_finish(dl);
        return;
    }
    dl->rstate = DEST_LINK_ROUND;
}

static void round_end(struct dest_link *dl)
{
    struct dest_retry *rs = dl->retry;
    size_t w = 0;
    for (size_t i = 0; i < rs->qlen; i++) {
        if (rs->q[i].done)
            free(rs->q[i].bytes);
        else
            rs->q[w++] = rs->q[i];
    }
    rs->qlen = w;
    release_held(dl);
    if (rs->round_refused) {
        if (rs->round_progress)
            rs->backoff_ms = DEST_LINK_BACKOFF_MIN_MS;
        wait_backoff(dl);
        return;
    }
    round_start(dl, SIZE_MAX); /* REPLAY: the rest, pipelined */
}

/* WAITING starts once everything sent has its reply (and the batch partly
 * sent went out whole). */
static void drain_maybe_end(struct dest_link *dl)
{
    struct dest_retry *rs = dl->retry;
    if (dl->rstate != DEST_LINK_DRAINING || dl->send_inflight)
        return;
    if (rs->cb != NULL && !(rs->cb == dl->send_cur && rs->cb->sent == 0))
        return;
    rs->resume_db = rs->cdb;
    if (rs->qlen == 0) {
        retry_finish(dl);
        return;
    }
    wait_backoff(dl);
}

/* Calls fn on each command inside the transaction at p[0..n) (MULTI ...
 * EXEC), stopping at the first non-zero return. */
static int each_inner(struct dest_retry *rs, const char *p, size_t n,
                      int (*fn)(struct dest_link *dl, const struct rcmd *c, const char *what),
                      struct dest_link *dl, const char *what)
{
    size_t off = 0;
    struct rcmd c;
    if (parse_cmd(rs, p, n, &c) < 0) /* MULTI */
        return 0;
    off += c.len;
    while (off < n) {
        if (parse_cmd(rs, p + off, n - off, &c) < 0)
            return 0;
        off += c.len;
        if (off >= n)
            break; /* EXEC */
        int rc = fn(dl, &c, what);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int pending_add_fn(struct dest_link *dl, const struct rcmd *c, const char *what)
{
    (void)what;
    pending_add(dl->retry, c);
    return 0;
}

static int check_order_fn(struct dest_link *dl, const struct rcmd *c, const char *what)
{
    return check_order(dl, c, what);
}

static bool is_queued(const char *line, size_t len)
{
    return len == 6 && strncasecmp(line, "QUEUED", 6) == 0;
}

/* A transaction whose replies held a retryable error ran nothing when its
 * MULTI was taken and its EXEC answered EXECABORT (the server flagged it:
 * BUSY and LOADING refuse the commands, not MULTI or EXEC; a cluster's
 * TRYAGAIN to EXEC discards it), or when MULTI
 * itself was refused and so was every command after it. Anything else ran
 * in part: the job stops, saying so. */
static int tx_judge(struct dest_link *dl, bool multi_ok, bool ran, bool exec_error,
                    const char *line, size_t len, const char *what)
{
    /* EXECABORT: a flagged transaction; a retryable EXEC error (TRYAGAIN in a
     * cluster: keys of a slot being migrated) discards it too */
    bool aborted = exec_error && ((len >= 9 && strncmp(line, "EXECABORT", 9) == 0) ||
                                  dest_reply_classify(line, len, NULL, NULL) == DEST_REPLY_RETRY);
    if (!ran && (multi_ok ? aborted : exec_error))
        return 0;
    char reply[200];
    job_fail(dl->job,
             "destination %s refused part of the transaction %s (-%s) and ran the rest (EXEC: "
             "-%s): the order of the source cannot be restored",
             dl->name, what, dl->retry->reply,
             rs_escape_bytes(reply, sizeof(reply), line, len, 160));
    return 1;
}

/* A reply while DRAINING to a command of the transaction at the cursor
 * (rs->blk): judged whole at its EXEC; a transaction refused with a
 * retryable error is queued whole, one entry. */
static int drain_block_reply(struct dest_link *dl, struct batch *b, const struct rcmd *c,
                             const char *what, bool is_error, bool retryable, const char *line,
                             size_t len)
{
    struct dest_retry *rs = dl->retry;
    bool starts = !rs->cmulti && cmd_is(c, "MULTI");
    bool is_exec = !starts && cmd_is(c, "EXEC");
    rs->blk_n++;
    if (retryable)
        rs_escape_bytes(rs->reply, sizeof(rs->reply), line, len, 160);
    if (starts) {
        rs->blk_multi_ok = !is_error;
        rs->blk_retry = retryable;
        if (is_error && !retryable && refused(dl, what, "MULTI", line, len))
            return 1;
    } else if (!is_exec) {
        if (rs->blk_n == 2) /* its first command names it in messages */
            snprintf(rs->blk_what, sizeof(rs->blk_what), "MULTI/EXEC with %.200s", what);
        if (retryable)
            rs->blk_retry = true;
        else if (!is_error && !is_queued(line, len))
            rs->blk_ran = true; /* MULTI was refused: it ran on its own */
        else if (is_error && refused(dl, what, "a queued command", line, len))
            return 1;
    }
    /* the cursor moves on first: c's arguments are the parser's, which the
     * judging below reuses */
    const char *p = b->buf + rs->blk_off;
    size_t n = rs->coff + c->len - rs->blk_off;
    if (!is_error)
        dl->replies++;
    b->replies++;
    cursor_step(rs, c);
    if (is_exec) {
        rs->blk = false;
        if (rs->blk_retry || retryable) {
            if (tx_judge(dl, rs->blk_multi_ok, rs->blk_ran, is_error, line, len, rs->blk_what))
                return 1;
            struct rcmd whole = {.p = p, .len = n};
            if (parse_cmd(rs, p, n, &whole) < 0) /* its MULTI, for queue_add */
                return 1;
            whole.len = n;
            if (queue_add(dl, &whole, rs->blk_db, b, rs->blk_what))
                return 1;
            rs->q[rs->qlen - 1].ncmds = rs->blk_n;
            rs->q[rs->qlen - 1].select_db = -1;
            each_inner(rs, p, n, pending_add_fn, dl, NULL);
            if (rs->qlen == 1 && rs->episode_retried == 1)
                rs_log("destination %s answers -%s: retrying the transaction (%s), "
                       "waiting",
                       dl->name, rs->reply, rs->blk_what);
        } else if (is_error) {
            if (refused(dl, what, "EXEC", line, len))
                return 1;
        } else if (rs->pending_any && each_inner(rs, p, n, check_order_fn, dl, rs->blk_what)) {
            return 1;
        }
    }
    if (rs->cindex == b->ncmds) {
        rs->cb = b->next;
        rs->coff = 0;
        rs->cindex = 0;
        rs->cmulti = false;
        rs->blk = false;
    }
    drain_maybe_end(dl);
    return 0;
}

/* A reply while DRAINING: to the command at the cursor. */
static int drain_reply(struct dest_link *dl, bool is_error, const char *line, size_t len)
{
    struct dest_retry *rs = dl->retry;
    struct batch *b = rs->cb;
    RS_ASSERT(b != NULL && b->replies < b->ncmds && rs->cindex == b->replies);
    struct rcmd c;
    if (parse_cmd(rs, b->buf + rs->coff, b->len - rs->coff, &c) < 0) {
        job_fail(dl->job, "destination %s: cannot find the command a reply answers", dl->name);
        return 1;
    }
    char what[sizeof(rs->q[0].what)];
    cmd_what(&c, rs->cdb, b, b->replies, what, sizeof(what));
    bool retryable = is_error && dest_reply_classify(line, len, NULL, NULL) == DEST_REPLY_RETRY;
    if (!rs->cmulti && cmd_is(&c, "MULTI")) {
        rs->blk = true;
        rs->blk_off = rs->coff;
        rs->blk_db = rs->cdb;
        rs->blk_n = 0;
        rs->blk_ran = false;
        snprintf(rs->blk_what, sizeof(rs->blk_what), "%s", what);
    }
    if (rs->blk)
        return drain_block_reply(dl, b, &c, what, is_error, retryable, line, len);
    if (retryable) {
        rs_escape_bytes(rs->reply, sizeof(rs->reply), line, len, 160);
        if (queue_add(dl, &c, rs->cdb, b, what))
            return 1;
        pending_add(rs, &c);
        if (rs->qlen == 1 && rs->episode_retried == 1)
            rs_log("destination %s answers -%s: retrying %s, waiting", dl->name, rs->reply, what);
    } else if (is_error) {
        char name[40];
        snprintf(name, sizeof(name), "%.*s", (int)(c.argv[0].len < 39 ? c.argv[0].len : 39),
                 c.argv[0].p);
        if (refused(dl, what, name, line, len))
            return 1;
        dl->replies++;
    } else {
        int64_t sel = cmd_select_db(&c);
        if (sel >= 0)
            rs->real_db = sel;
        else if (check_order(dl, &c, what))
            return 1;
        dl->replies++;
    }
    b->replies++;
    cursor_step(rs, &c);
    if (rs->cindex == b->ncmds) {
        rs->cb = b->next;
        rs->coff = 0;
        rs->cindex = 0;
        rs->cmulti = false;
    }
    drain_maybe_end(dl);
    return 0;
}

/* A reply to a transaction sent again whole (an entry of ncmds replies). */
static int round_block_reply(struct dest_link *dl, struct round_item *it, bool is_error, bool retry,
                             const char *line, size_t len)
{
    struct dest_retry *rs = dl->retry;
    struct retry_entry *e = &rs->q[it->entry];
    uint32_t i = it->got++;
    if (i == 0) {
        it->multi_ok = !is_error;
        it->retry = retry;
        it->ran = false;
    } else if (i + 1 < e->ncmds) {
        if (retry)
            it->retry = true;
        else if (!is_error && !is_queued(line, len))
            it->ran = true;
    }
    if (i + 1 < e->ncmds)
        return 0;
    rs->replied++; /* its EXEC */
    if (it->retry || retry) {
        if (tx_judge(dl, it->multi_ok, it->ran, is_error, line, len, e->what))
            return 1;
        rs->round_refused = true;
        each_inner(rs, e->bytes, e->len, pending_add_fn, dl, NULL);
    } else {
        if (is_error && refused(dl, e->what, "EXEC", line, len))
            return 1;
        if (!is_error && rs->pending_any &&
            each_inner(rs, e->bytes, e->len, check_order_fn, dl, e->what))
            return 1;
        e->done = true;
        rs->round_progress = true;
        dl->replies += e->ncmds;
    }
    if (rs->replied == rs->nitems && rs->rsent == rs->rlen)
        round_end(dl);
    return 0;
}

/* A reply to an item of the round in flight. */
static int round_reply(struct dest_link *dl, bool is_error, const char *line, size_t len)
{
    struct dest_retry *rs = dl->retry;
    if (rs->replied == rs->nitems) { /* one before our last byte went out may come; not this */
        job_fail(dl->job, "destination %s sent a reply to nothing while retrying", dl->name);
        return 1;
    }
    struct round_item *it = &rs->items[rs->replied];
    bool retry = is_error && dest_reply_classify(line, len, NULL, NULL) == DEST_REPLY_RETRY;
    if (retry)
        rs_escape_bytes(rs->reply, sizeof(rs->reply), line, len, 160);
    if (it->kind == ITEM_ENTRY && rs->q[it->entry].ncmds > 1)
        return round_block_reply(dl, it, is_error, retry, line, len);
    rs->replied++;
    if (it->kind == ITEM_SELECT) {
        if (!is_error) {
            rs->real_db = it->db;
        } else if (retry) {
            rs->round_refused = true;
            rs->pending_any = rs->pending_select = true;
        } else {
            char reply[200];
            job_fail(dl->job, "destination %s refused SELECT %" PRId64 " while retrying: -%s",
                     dl->name, it->db, rs_escape_bytes(reply, sizeof(reply), line, len, 160));
            return 1;
        }
    } else {
        struct retry_entry *e = &rs->q[it->entry];
        struct rcmd c;
        if (parse_cmd(rs, e->bytes, e->len, &c) < 0) {
            job_fail(dl->job, "destination %s: a retried command cannot be read", dl->name);
            return 1;
        }
        if (!is_error) {
            if (e->select_db >= 0)
                rs->real_db = e->select_db;
            else if (check_order(dl, &c, e->what))
                return 1;
            e->done = true;
            rs->round_progress = true;
            dl->replies++;
        } else if (retry) {
            rs->round_refused = true;
            pending_add(rs, &c);
        } else {
            char name[40];
            snprintf(name, sizeof(name), "%.*s", (int)(c.argv[0].len < 39 ? c.argv[0].len : 39),
                     c.argv[0].p);
            if (refused(dl, e->what, name, line, len))
                return 1;
            e->done = true; /* skipped (--on-error skip) */
            dl->replies++;
        }
    }
    if (rs->replied == rs->nitems && rs->rsent == rs->rlen)
        round_end(dl);
    return 0;
}

static int retry_begin(struct dest_link *dl, const char *line, size_t len)
{
    struct dest_retry *rs = dl->retry;
    if (rs == NULL && (rs = dl->retry = calloc(1, sizeof(*rs))) == NULL) {
        job_fail(dl->job, "out of memory while keeping commands to retry on destination %s",
                 dl->name);
        return 1;
    }
    rs->qlen = 0;
    rs->episode_retried = 0;
    rs->backoff_ms = DEST_LINK_BACKOFF_MIN_MS;
    rs->started = mono_s();
    rs->resume_db = -1;
    pending_clear(rs);
    if (cursor_init(rs, dl->head, dl->head->replies) < 0) {
        job_fail(dl->job, "destination %s: cannot find the command a reply answers", dl->name);
        return 1;
    }
    rs->real_db = rs->cdb;
    dl->rstate = DEST_LINK_DRAINING;
    return drain_reply(dl, true, line, len);
}

/* Out of line (and so every retry function), for the frame of on_reply. */
__attribute__((noinline, cold)) static int retry_reply(struct dest_link *dl, bool is_error,
                                                       const char *line, size_t len)
{
    switch (dl->rstate) {
    case DEST_LINK_DRAINING:
        return drain_reply(dl, is_error, line, len);
    case DEST_LINK_ROUND:
        return round_reply(dl, is_error, line, len);
    default:
        break;
    }
    char q[64];
    job_fail(dl->job, "destination %s sent a reply while ringsync waited to retry: \"-%s\"",
             dl->name, rs_escape_bytes(q, sizeof(q), line, len, 40));
    return 1;
}

/* What to send while retrying: the rest of the batch partly sent (DRAINING)
 * or of the round's bytes (ROUND); nothing while WAITING. */
static bool retry_prep_send(struct dest_link *dl, struct iovec *iov)
{
    struct dest_retry *rs = dl->retry;
    if (dl->rstate == DEST_LINK_DRAINING) {
        struct batch *b = dl->send_cur;
        if (b == NULL || b->sent == 0 || b->sent == b->len)
            return false;
        iov->iov_base = b->buf + b->sent;
        iov->iov_len = b->len - b->sent;
        return true;
    }
    if (dl->rstate != DEST_LINK_ROUND || rs->rsent == rs->rlen)
        return false;
    iov->iov_base = rs->rbuf + rs->rsent;
    iov->iov_len = rs->rlen - rs->rsent;
    return true;
}

/* n bytes of the round went out (ROUND), or a send of DRAINING ended (0). */
static void retry_on_send(struct dest_link *dl, size_t n)
{
    struct dest_retry *rs = dl->retry;
    if (dl->rstate == DEST_LINK_ROUND) {
        rs->rsent += n;
        if (rs->replied == rs->nitems && rs->rsent == rs->rlen)
            round_end(dl);
        return;
    }
    drain_maybe_end(dl);
}

/* A link with nothing to do for DEST_LINK_KEEPALIVE_S sends a PING: a
 * destination with `timeout` set closes a client idle that long (a master's
 * link is exempt, ours is not), and a quiet source leaves ours idle. */
static void keepalive(struct dest_link *dl)
{
    if (dl->head != NULL) {
        dl->idle_since = 0;
        return;
    }
    double now = mono_s();
    if (dl->idle_since == 0) {
        dl->idle_since = now;
        return;
    }
    if (now - dl->idle_since < DEST_LINK_KEEPALIVE_S)
        return;
    static char ping[] = "*1\r\n$4\r\nPING\r\n";
    struct batch *b = &dl->ping;
    memset(b, 0, sizeof(*b));
    b->buf = ping;
    b->len = b->cap = sizeof(ping) - 1;
    b->ncmds = 1;
    b->owner = DEST_LINK_PING_OWNER;
    dest_link_enqueue(dl, b);
    dl->idle_since = 0;
}

void dest_link_tick(struct dest_link *dl)
{
    if (dl->rstate == DEST_LINK_NORMAL) {
        keepalive(dl);
        return;
    }
    struct dest_retry *rs = dl->retry;
    double now = mono_s();
    double limit = dl->job->retry_timeout_s;
    if (limit > 0 && now - rs->started > limit) {
        char applied[64];
        uint64_t w = atomic_load_explicit(&dl->job->stream_applied, memory_order_relaxed);
        snprintf(applied, sizeof(applied), "; applied offset %" PRIu64, w);
        job_fail(dl->job,
                 "destination %s still answers -%s after %.1f s of retrying "
                 "(--target-retry-timeout %g): gave up on %s%s",
                 dl->name, rs->reply, now - rs->started, limit,
                 rs->qlen > 0 ? rs->q[0].what : "its commands", applied);
        return;
    }
    if (dl->rstate == DEST_LINK_WAITING && now >= rs->wake_at)
        round_start(dl, 1); /* PROBE: the first alone */
}

static void retry_free(struct dest_link *dl)
{
    struct dest_retry *rs = dl->retry;
    if (rs == NULL)
        return;
    for (size_t i = 0; i < rs->qlen; i++)
        free(rs->q[i].bytes);
    free(rs->q);
    free(rs->items);
    free(rs->rbuf);
    free(rs->argv);
    free(rs->idx);
    free(rs);
    dl->retry = NULL;
}
