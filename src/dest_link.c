/* dest_link.c - a destination connection: ordered sends, replies matched to
 * commands (see dest_link.h). */
#include "dest_link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"
#include "job.h"
#include "rs_error.h"

int dest_link_init(struct dest_link *dl, int fd, const char *name, struct job *job,
                   void (*done)(void *ctx, struct batch *b), void *done_ctx)
{
    memset(dl, 0, sizeof(*dl));
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

bool dest_link_is_idle(const struct dest_link *dl)
{
    return dl->head == NULL;
}

bool dest_link_prep_send(struct dest_link *dl, struct io_uring *ring, uint64_t ud)
{
    if (dl->send_inflight || dl->send_cur == NULL)
        return false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL)
        return false;
    int n = 0;
    for (struct batch *b = dl->send_cur; b != NULL && n < DEST_LINK_IOV; b = b->next) {
        dl->iov[n].iov_base = b->buf + b->sent;
        dl->iov[n].iov_len = b->len - b->sent;
        n++;
    }
    memset(&dl->msg, 0, sizeof(dl->msg));
    dl->msg.msg_iov = dl->iov;
    dl->msg.msg_iovlen = (size_t)n;
    io_uring_prep_sendmsg(sqe, dl->fd, &dl->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud);
    dl->send_inflight = true;
    return true;
}

/* Says which command of a batch (0-based) an error answers, with its key. */
static void describe_cmd(const struct batch *b, uint32_t index, char *out, size_t cap, int64_t *db)
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
            return;
        }
        if (argv[0].len == 6 && strncasecmp(argv[0].p, "SELECT", 6) == 0)
            *db = strtoll(argv[1].p, NULL, 10);
    }
    snprintf(out, cap, "command #%u", index);
}

static int on_reply(void *ctx, bool is_error, const char *line, size_t len)
{
    struct dest_link *dl = ctx;
    struct batch *b = dl->head;
    RS_ASSERT(b != NULL && b->replies < b->ncmds);
    if (is_error) {
        char cmd[200], reply[200];
        int64_t db;
        uint32_t index = b->replies;
        if (dl->rr.error_element >= 0 && dl->rr.top_count <= (int64_t)index)
            /* an error inside EXEC's reply: the n queued commands precede EXEC */
            index = index - (uint32_t)dl->rr.top_count + (uint32_t)dl->rr.error_element;
        describe_cmd(b, index, cmd, sizeof(cmd), &db);
        rs_escape_bytes(reply, sizeof(reply), line, len, 160);
        char where[128] = "";
        if (b->has_spans) { /* a stream command: where it was in the source */
            const struct batch_span *sp = &b->spans[b->replies];
            if (sp->to > 0)
                snprintf(where, sizeof(where), " (source offset %" PRIu64 "..%" PRIu64 ")",
                         sp->from, sp->to);
        } else if (b->off_last > 0) {
            snprintf(where, sizeof(where), " (source offset %" PRIu64 "..%" PRIu64 ")",
                     b->off_before, b->off_last);
        }
        if (!dl->job->skip_errors) {
            job_fail(dl->job, "destination %s refused %s in db %" PRId64 "%s: -%s", dl->name, cmd,
                     db, where, reply);
            return 1;
        }
        /* --on-error skip: say it (the first hundred), count it, go on */
        uint64_t n = atomic_fetch_add(&dl->job->errors_skipped, 1) + 1;
        if (n <= 100)
            fprintf(
                stderr, "ringsync: skipped: destination %s refused %s in db %" PRId64 "%s: -%s%s\n",
                dl->name, cmd, db, where, reply, n == 100 ? " (no more of these are shown)" : "");
    }
    b->replies++;
    dl->replies++;
    if (b->replies == b->ncmds && b->sent == b->len) {
        dl->head = b->next;
        if (dl->head == NULL)
            dl->tail = NULL;
        dl->done(dl->done_ctx, b);
    }
    return 0;
}

void dest_link_on_send(struct dest_link *dl, int res)
{
    dl->send_inflight = false;
    if (res < 0) {
        job_fail(dl->job, "lost the connection to destination %s while sending: %s", dl->name,
                 strerror(-res));
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
        if (b->sent == b->len)
            dl->send_cur = b->next;
    }
    /* A batch whose replies all came before its last byte went out. */
    while (dl->head && dl->head->sent == dl->head->len && dl->head->replies == dl->head->ncmds) {
        struct batch *b = dl->head;
        dl->head = b->next;
        if (dl->head == NULL)
            dl->tail = NULL;
        dl->done(dl->done_ctx, b);
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
        job_fail(dl->job, "lost the connection to destination %s: %s", dl->name,
                 res == 0 ? "closed by the server" : strerror(-res));
        return;
    }
    if (dl->head == NULL) {
        char q[64];
        job_fail(dl->job, "destination %s sent a reply to nothing: \"%s\"", dl->name,
                 rs_escape_bytes(q, sizeof(q), dl->rbuf, (size_t)res, 40));
        return;
    }
    int rc = reply_reader_feed(&dl->rr, dl->rbuf, (size_t)res, on_reply, dl);
    if (rc < 0) {
        char q[64];
        job_fail(dl->job, "destination %s sent something that is not RESP: \"%s\"", dl->name,
                 rs_escape_bytes(q, sizeof(q), dl->rbuf, (size_t)res, 40));
    }
}
