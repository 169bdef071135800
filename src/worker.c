/* worker.c - the shard worker's thread and event loop (see worker.h). */
#include "worker.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cluster_redirect.h"
#include "control_link.h"
#include "dest_link.h"
#include "job.h"
#include "lag_clock.h"
#include "rate_limit.h"
#include "rs_error.h"
#include "spill.h"

#define WORKER_RING_ENTRIES 256
#define WORKER_INPUT_BYTES  (256 * 1024)
#define WORKER_FEED_PIECE   (16 * 1024) /* input fed between backpressure checks */
#define WORKER_WAIT_NS      (10 * 1000 * 1000)

/* user_data: the operation in the top byte. */
enum worker_op {
    OP_WAKE = 1, /* a MSG_RING from another worker */
    OP_INPUT_READ,
    OP_DEST_SEND,
    OP_DEST_RECV,
};

/* user_data: the operation in the top byte, a destination link's index below. */
#define UD(op)         ((uint64_t)(op) << 56)
#define UD_LINK(op, i) (UD(op) | (uint64_t)(i))
#define UD_OP(ud)      ((int)((ud) >> 56))
#define UD_INDEX(ud)   ((unsigned)((ud)&0xffffffffu))

struct worker {
    struct worker_config cfg;
    struct job *job;
    pthread_t thread;
    struct io_uring ring;
    _Atomic int sleeping; /* the thread is (about to be) waiting in io_uring */
    _Atomic int ready;    /* 1 once the thread made its ring, -1 if it could not */
    int ring_fd;
    struct dest_link *links; /* one per destination node (node_cap); rbuf NULL: not open */
    unsigned nlinks;         /* links[0..nlinks) may be open */
    char (*names)[300];      /* per link: "host:port" */
    struct cluster_redirect_worker *rw; /* a cluster destination's redirections */
    bool back_pushed[64];
    /* input (the worker with a source) */
    uint8_t *inbuf;
    size_t in_len, in_off;
    bool in_read_inflight;
    bool in_eof;
    bool in_done;
    bool in_waiting; /* at_eof said RS_OK: a new socket comes (worker_input_swap) */
    uint64_t in_file_off;
};

/* ---------------------------------------------------------------- waking */

/* Wakes worker `to` if it sleeps, with a MSG_RING from our ring. */
static void wake(void *ctx, unsigned to)
{
    struct worker *w = ctx;
    struct worker *t = w->job->workers[to];
    if (t == NULL || t == w)
        return;
    /* seq_cst: orders our ring publish before reading its sleeping flag
     * (the other half of the Dekker pair is in worker_wait). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&t->sleeping) && atomic_exchange(&t->sleeping, 0)) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
        if (sqe == NULL) {
            io_uring_submit(&w->ring);
            sqe = io_uring_get_sqe(&w->ring);
        }
        if (sqe != NULL) {
            io_uring_prep_msg_ring(sqe, t->ring_fd, 0, UD(OP_WAKE), 0);
            io_uring_sqe_set_data64(sqe, UD(OP_WAKE));
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        }
    }
}

/* ------------------------------------------------------------ batch flow */

static void batch_done(void *ctx, struct batch *b);
static struct dest_link *link_of(void *ctx, unsigned node);

static void enqueue(struct worker *w, struct batch *b)
{
    if (w->rw != NULL && b->owner != CLUSTER_REDIRECT_OWNER)
        cluster_redirect_worker_received(w->rw);
    struct dest_link *dl = link_of(w, b->node);
    if (dl == NULL) { /* the job failed: nothing to send it to */
        b->replies = b->ncmds;
        batch_done(w, b);
        return;
    }
    dest_link_enqueue(dl, b);
}

static int on_redirect(void *ctx, struct dest_link *dl, const char *cmd, size_t cmd_len,
                       uint32_t ncmds, const struct batch_span *span, const char *line, size_t len)
{
    return cluster_redirect_worker_on_reply(ctx, dl, cmd, cmd_len, ncmds, span, line, len);
}

/* Makes links[node] a link on fd. 0 or -ENOMEM. */
static int link_init(struct worker *w, unsigned node, int fd, const char *name)
{
    struct dest_link *dl = &w->links[node];
    snprintf(w->names[node], sizeof(w->names[node]), "%s", name);
    if (dest_link_init(dl, fd, w->names[node], w->job, batch_done, w) < 0)
        return -ENOMEM;
    if (w->rw != NULL) {
        dl->hold = cluster_redirect_worker_hold(w->rw);
        dl->redirect = on_redirect;
        dl->redirect_ctx = w->rw;
    }
    if (node >= w->nlinks)
        w->nlinks = node + 1;
    return 0;
}

/* The link to node, opened first when it is a node met in a MOVED (a
 * blocking connect and AUTH: rare, and bounded by --timeout-ms). NULL when
 * it cannot be had (the job failed). */
static struct dest_link *link_of(void *ctx, unsigned node)
{
    struct worker *w = ctx;
    if (node < w->nlinks && w->links[node].rbuf != NULL)
        return &w->links[node];
    if (w->cfg.redirect == NULL || node >= w->cfg.node_cap) {
        job_fail(w->job, "worker %u has no link to destination node %u", w->cfg.id, node);
        return NULL;
    }
    struct endpoint ep;
    struct control_link cl = {0};
    struct rs_error err = {0};
    struct rs_slice pending;
    cluster_redirect_endpoint(w->cfg.redirect, node, &ep);
    if (control_link_open(&cl, &ep, cluster_redirect_timeout_ms(w->cfg.redirect), &err) < 0) {
        job_fail(w->job, "cannot reach cluster node %s, which serves slots now: %s", ep.name,
                 err.msg);
        return NULL;
    }
    int fd = control_link_detach(&cl, &pending);
    control_link_close(&cl);
    if (link_init(w, node, fd, ep.name) < 0) {
        job_fail(w->job, "out of memory while opening a link to %s", ep.name);
        return NULL;
    }
    return &w->links[node];
}

static void sink_self(void *ctx, struct batch *b)
{
    enqueue(ctx, b);
}

static bool links_idle(const struct worker *w)
{
    for (unsigned i = 0; i < w->nlinks; i++)
        if (w->links[i].rbuf != NULL && !dest_link_is_idle(&w->links[i]))
            return false;
    return w->rw == NULL || cluster_redirect_worker_idle(w->rw);
}

/* All replies of b are in: give it back to the worker that made it. */
static void batch_done(void *ctx, struct batch *b)
{
    struct worker *w = ctx;
    if (b->owner == CLUSTER_REDIRECT_OWNER) {
        cluster_redirect_worker_done(w->rw, b);
        return;
    }
    if (b->owner == w->cfg.id) {
        batch_writer_recycle(w->cfg.bw, b);
        return;
    }
    struct spsc_ring *r = job_ring_back(w->job, w->cfg.id, b->owner);
    while (!spsc_ring_push(r, b)) {
        /* cannot happen: a ring holds more descriptors than an owner makes */
        RS_ASSERT(!"back ring full");
    }
    w->back_pushed[b->owner] = true;
}

static void publish_back(struct worker *w)
{
    for (unsigned i = 0; i < w->job->nworkers; i++) {
        if (!w->back_pushed[i])
            continue;
        w->back_pushed[i] = false;
        spsc_ring_publish(job_ring_back(w->job, w->cfg.id, i));
        wake(w, i);
    }
}

static bool take_inbound(struct worker *w)
{
    bool any = false;
    for (unsigned i = 0; i < w->job->nworkers; i++) {
        if (i == w->cfg.id)
            continue;
        struct spsc_ring *r = job_ring_to(w->job, i, w->cfg.id);
        struct batch *b;
        bool got = false;
        while ((b = spsc_ring_pop(r)) != NULL) {
            enqueue(w, b);
            got = true;
        }
        if (got) {
            spsc_ring_release(r);
            any = true;
        }
    }
    return any;
}

static bool inbound_waiting(struct worker *w)
{
    for (unsigned i = 0; i < w->job->nworkers; i++) {
        if (i == w->cfg.id)
            continue;
        if (!spsc_ring_is_empty(job_ring_to(w->job, i, w->cfg.id)) ||
            !spsc_ring_is_empty(job_ring_back(w->job, i, w->cfg.id)))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ input */

static bool can_take(struct worker *w)
{
    struct worker_input *in = w->cfg.input;
    return !w->in_done && !batch_writer_is_full(w->cfg.bw) && !job_should_stop(w->job) &&
           !(in->is_blocked && in->is_blocked(in->ctx)) &&
           (in->limit == NULL || rate_limit_allows(in->limit, lag_clock_now_ns()));
}

/* Feeds p[0..n) in pieces while the consumer takes them; returns bytes used. */
static size_t feed_some(struct worker *w, const uint8_t *p, size_t n, bool *failed)
{
    struct worker_input *in = w->cfg.input;
    size_t off = 0;
    while (off < n && can_take(w)) {
        size_t k = n - off < WORKER_FEED_PIECE ? n - off : WORKER_FEED_PIECE, used = 0;
        int rc = in->feed(in->ctx, p + off, k, &used);
        off += used;
        if (rc == RS_DONE)
            w->in_done = true;
        else if (rc != RS_OK) {
            *failed = true;
            break;
        }
    }
    return off;
}

/* Feeds waiting input while the producer has room: spilled bytes first, then
 * the read buffer; what it cannot take yet goes to the spill, so reading goes
 * on. True if it made progress. */
static bool pump_input(struct worker *w)
{
    struct worker_input *in = w->cfg.input;
    bool progress = false, failed = false;
    if (in->is_blocked != NULL && !w->in_done) {
        if (in->is_blocked(in->ctx))
            goto park;
        size_t used; /* go on with what it holds (what it routes shows as batches) */
        if (in->feed(in->ctx, NULL, 0, &used) == RS_DONE)
            w->in_done = true;
    }
    while (in->spill != NULL && can_take(w) && !failed) {
        const uint8_t *p;
        struct rs_error err;
        long n = spill_peek(in->spill, &p, &err);
        if (n < 0) {
            job_fail(w->job, "%s", err.msg);
            return true;
        }
        if (n == 0)
            break;
        size_t used = feed_some(w, p, (size_t)n, &failed);
        spill_consume(in->spill, used);
        progress |= used > 0;
    }
    if ((in->spill == NULL || spill_pending(in->spill) == 0) && !failed) {
        size_t used = feed_some(w, w->inbuf + w->in_off, w->in_len - w->in_off, &failed);
        w->in_off += used;
        progress |= used > 0;
    }
    /* Not while the consumer is blocked (a router at a fence holds the
     * commands behind it, routed by the feed(NULL, 0) above once it lifts):
     * the end of the input is the end only when everything before it went on. */
    if (!w->in_done && !w->in_waiting && w->in_eof && w->in_off == w->in_len &&
        (in->spill == NULL || spill_pending(in->spill) == 0) &&
        !(in->is_blocked && in->is_blocked(in->ctx))) {
        int rc = in->at_eof(in->ctx);
        if (rc == RS_DONE)
            w->in_done = true;
        else if (rc == RS_OK)
            w->in_waiting = true;
        progress = true;
    }
park:
    if (in->spill != NULL && !w->in_done && w->in_off < w->in_len) {
        /* the consumer is behind: park the rest and read on */
        struct rs_error err;
        if (spill_push(in->spill, w->inbuf + w->in_off, w->in_len - w->in_off, &err) < 0) {
            job_fail(w->job, "%s", err.msg);
            return true;
        }
        w->in_off = w->in_len;
        progress = true;
    }
    if (in->spill != NULL && progress) /* for the status */
        atomic_store_explicit(&w->job->spill_bytes, spill_pending(in->spill), memory_order_relaxed);
    return progress;
}

static void prep_input_read(struct worker *w)
{
    struct worker_input *in = w->cfg.input;
    if (w->in_done || w->in_eof || w->in_read_inflight || w->in_off < w->in_len)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (sqe == NULL)
        return;
    if (in->is_socket)
        io_uring_prep_recv(sqe, in->fd, w->inbuf, WORKER_INPUT_BYTES, 0);
    else
        io_uring_prep_read(sqe, in->fd, w->inbuf, WORKER_INPUT_BYTES, (uint64_t)-1);
    io_uring_sqe_set_data64(sqe, UD(OP_INPUT_READ));
    w->in_read_inflight = true;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void worker_input_swap(struct worker_input *in, int fd, const uint8_t *initial, size_t n)
{
    RS_ASSERT(n <= WORKER_INPUT_BYTES);
    in->swap_initial = initial;
    in->swap_initial_len = n;
    atomic_store_explicit(&in->swap_fd, fd, memory_order_release);
}

/* Takes a socket handed over by worker_input_swap once the old one is done. */
static void take_swap(struct worker *w)
{
    struct worker_input *in = w->cfg.input;
    int fd = atomic_load_explicit(&in->swap_fd, memory_order_acquire);
    if (fd < 0 || !w->in_waiting || w->in_read_inflight)
        return;
    close(in->fd);
    in->fd = fd;
    memcpy(w->inbuf, in->swap_initial, in->swap_initial_len);
    w->in_len = in->swap_initial_len;
    w->in_off = 0;
    w->in_eof = false;
    w->in_waiting = false;
    in->last_read = mono_now();
    in->last_errno = 0;
    atomic_store_explicit(&in->swap_fd, -1, memory_order_relaxed);
    if (in->on_read != NULL && w->in_len > 0)
        in->on_read(in->ctx, w->in_len);
    if (in->on_swap)
        in->on_swap(in->ctx, fd);
}

static void on_input_read(struct worker *w, int res)
{
    w->in_read_inflight = false;
    if (res < 0) {
        if (res == -EINTR || res == -EAGAIN)
            return;
        if (w->cfg.input->is_socket) { /* a lost link: at_eof says what follows */
            w->cfg.input->last_errno = -res;
            w->in_eof = true;
            return;
        }
        job_fail(w->job, "reading the source failed: %s", strerror(-res));
        return;
    }
    w->cfg.input->last_read = mono_now();
    if (res == 0) {
        w->in_eof = true;
        return;
    }
    w->in_len = (size_t)res;
    w->in_off = 0;
    if (w->cfg.input->on_read != NULL)
        w->cfg.input->on_read(w->cfg.input->ctx, w->in_len);
}

/* -------------------------------------------------------------------- loop */

static void dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    switch (UD_OP(ud)) {
    case OP_WAKE:
        break;
    case OP_INPUT_READ:
        on_input_read(w, cqe->res);
        break;
    case OP_DEST_SEND:
        dest_link_on_send(&w->links[UD_INDEX(ud)], cqe->res);
        break;
    case OP_DEST_RECV:
        dest_link_on_recv(&w->links[UD_INDEX(ud)], cqe->res);
        break;
    default: /* 0: the cancel at shutdown, or a MSG_RING whose target had gone */
        break;
    }
}

static void loop(struct worker *w)
{
    struct batch_writer *bw = w->cfg.bw;
    while (!job_should_stop(w->job)) {
        bool busy = take_inbound(w);
        if (bw != NULL)
            busy |= batch_writer_reclaim(bw) > 0;
        if (w->cfg.input != NULL) {
            if (w->in_waiting)
                take_swap(w);
            busy |= pump_input(w);
            batch_writer_publish(bw);
            prep_input_read(w);
            if (w->cfg.redirect != NULL)
                cluster_redirect_poll(w->cfg.redirect, bw); /* table changes asked (§3, 3) */
            if (w->in_done && batch_writer_outstanding(bw) == 0 && links_idle(w) &&
                (w->cfg.redirect == NULL || cluster_redirect_idle(w->cfg.redirect))) {
                atomic_store(&w->job->finished, 1);
                break;
            }
            if (w->cfg.input->tick)
                w->cfg.input->tick(w->cfg.input->ctx); /* it keeps its own pace */
        }
        if (w->rw != NULL)
            cluster_redirect_worker_tick(w->rw, w->links, w->nlinks);
        for (unsigned i = 0; i < w->nlinks; i++) {
            struct dest_link *dl = &w->links[i];
            if (dl->rbuf == NULL)
                continue;       /* a node this worker has no link to yet */
            dest_link_tick(dl); /* retries of what a busy destination refused */
            dest_link_prep_send(dl, &w->ring, UD_LINK(OP_DEST_SEND, i));
            dest_link_prep_recv(dl, &w->ring, UD_LINK(OP_DEST_RECV, i));
        }

        bool can_pump = w->cfg.input != NULL && can_take(w) &&
                        (w->in_off < w->in_len ||
                         (w->cfg.input->spill && spill_pending(w->cfg.input->spill) > 0));
        struct io_uring_cqe *cqe;
        if (busy || can_pump) {
            io_uring_submit_and_get_events(&w->ring);
        } else {
            /* Dekker with wake(): announce the sleep, then look again. */
            atomic_store(&w->sleeping, 1);
            if (inbound_waiting(w)) {
                atomic_store(&w->sleeping, 0);
                io_uring_submit_and_get_events(&w->ring);
            } else {
                struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = WORKER_WAIT_NS};
                io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
                atomic_store(&w->sleeping, 0);
            }
        }
        unsigned head, n = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            dispatch(w, cqe);
            n++;
        }
        io_uring_cq_advance(&w->ring, n);
        publish_back(w);
    }
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set); /* best effort */
}

static int ring_init(struct worker *w)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
              IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    p.cq_entries = WORKER_RING_ENTRIES * 8;
    int rc = io_uring_queue_init_params(WORKER_RING_ENTRIES, &w->ring, &p);
    if (rc == -EINVAL) { /* an older kernel: plain flags */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = WORKER_RING_ENTRIES * 8;
        rc = io_uring_queue_init_params(WORKER_RING_ENTRIES, &w->ring, &p);
    }
    if (rc < 0)
        return rc;
    w->ring_fd = w->ring.ring_fd;
    return 0;
}

static bool any_inflight(const struct worker *w)
{
    for (unsigned i = 0; i < w->nlinks; i++)
        if (w->links[i].send_inflight || w->links[i].recv_inflight)
            return true;
    return w->in_read_inflight;
}

static void drain_inflight(struct worker *w)
{
    /* Cancel what is in flight and reap it, so no buffer is in the kernel's
     * hands when it is freed. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (sqe != NULL) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, 0);
    }
    io_uring_submit(&w->ring);
    for (int i = 0; i < 100 && any_inflight(w); i++) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = WORKER_WAIT_NS};
        if (io_uring_wait_cqe_timeout(&w->ring, &cqe, &ts) == 0) {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            if (UD_OP(ud) == OP_DEST_SEND)
                w->links[UD_INDEX(ud)].send_inflight = false;
            else if (UD_OP(ud) == OP_DEST_RECV)
                w->links[UD_INDEX(ud)].recv_inflight = false;
            else if (UD_OP(ud) == OP_INPUT_READ)
                w->in_read_inflight = false;
            io_uring_cqe_seen(&w->ring, cqe);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, NULL); /* signals are main's business */
    pin(w->cfg.cpu);
    int rc = ring_init(w);
    if (rc < 0) {
        job_fail(w->job, "worker %u cannot set up io_uring: %s", w->cfg.id, strerror(-rc));
        atomic_store(&w->ready, -1);
        return NULL;
    }
    atomic_store(&w->ready, 1);
    loop(w);
    drain_inflight(w);
    return NULL;
}

struct worker *worker_start(const struct worker_config *cfg)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->cfg = *cfg;
    w->job = cfg->job;
    /* The ring is created here and used only by the worker's thread: with
     * SINGLE_ISSUER the submitter must be the creator, so create it there. */
    if (cfg->input != NULL) {
        if ((w->inbuf = malloc(WORKER_INPUT_BYTES)) == NULL)
            goto fail;
        RS_ASSERT(cfg->input->initial_len <= WORKER_INPUT_BYTES);
        if (cfg->input->initial_len)
            memcpy(w->inbuf, cfg->input->initial, cfg->input->initial_len);
        w->in_len = cfg->input->initial_len;
        cfg->input->last_read = mono_now();
        if (cfg->input->on_read != NULL && w->in_len > 0) /* before the thread: it sees this */
            cfg->input->on_read(cfg->input->ctx, w->in_len);
    }
    unsigned cap = cfg->node_cap > cfg->ndest ? cfg->node_cap : cfg->ndest;
    RS_ASSERT(cfg->ndest >= 1 && cap <= WORKER_MAX_DEST);
    if ((w->links = calloc(cap, sizeof(*w->links))) == NULL ||
        (w->names = calloc(cap, sizeof(*w->names))) == NULL)
        goto fail;
    for (unsigned i = 0; i < cap; i++)
        w->links[i].fd = -1;
    if (cfg->redirect != NULL &&
        (w->rw = cluster_redirect_worker_new(cfg->redirect, cfg->id, link_of, w)) == NULL)
        goto fail;
    for (unsigned i = 0; i < cfg->ndest; i++) /* -1: a master with no slot, opened if needed */
        if (cfg->dest_fds[i] >= 0 && link_init(w, i, cfg->dest_fds[i], cfg->dest_names[i]) < 0)
            goto fail;
    if (cfg->bw != NULL) {
        batch_writer_set_self_sink(cfg->bw, sink_self, w);
        batch_writer_set_waker(cfg->bw, wake, w);
    }
    cfg->job->workers[cfg->id] = w;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        goto fail;
    while (atomic_load(&w->ready) == 0) { /* others may wake it once it is listed */
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return w;
fail:
    cfg->job->workers[cfg->id] = NULL;
    free(w->inbuf);
    for (unsigned i = 0; w->links != NULL && i < w->nlinks; i++) {
        w->links[i].fd = -1; /* the caller keeps its sockets on failure */
        dest_link_deinit(&w->links[i]);
    }
    free(w->links);
    free(w->names);
    cluster_redirect_worker_free(w->rw);
    free(w);
    return NULL;
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_free(struct worker *w)
{
    if (atomic_load(&w->ready) == 1)
        io_uring_queue_exit(&w->ring);
    for (unsigned i = 0; i < w->nlinks; i++) {
        struct dest_link *dl = &w->links[i];
        while (dl->head != NULL) { /* a stopped job left these unanswered */
            struct batch *b = dl->head;
            dl->head = b->next;
            if (b != &dl->ping) /* the link's own keepalive: not malloc'd */
                batch_free(b);
        }
        if (dl->rbuf != NULL && dl->fd >= 0) {
            /* RST, not FIN: what the server has not read yet is dropped
             * with the connection, so nothing of it runs after a resume
             * has read the checkpoints (CHECKPOINTS.md) */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(dl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        if (dl->rbuf != NULL)
            dest_link_deinit(dl);
    }
    free(w->links);
    free(w->names);
    cluster_redirect_worker_free(w->rw);
    free(w->inbuf);
    free(w);
}

uint64_t worker_replies(const struct worker *w)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < w->nlinks; i++)
        n += w->links[i].replies;
    return n;
}

void worker_add_link_counts(const struct worker *w, unsigned node, struct worker_link_counts *c)
{
    unsigned cap = w->cfg.node_cap > w->cfg.ndest ? w->cfg.node_cap : w->cfg.ndest;
    if (node >= cap)
        return;
    const struct dest_link_stats *st = &w->links[node].stats;
    c->sent += atomic_load_explicit(&st->sent, memory_order_relaxed);
    c->acked += atomic_load_explicit(&st->acked, memory_order_relaxed);
    c->retried += atomic_load_explicit(&st->retried, memory_order_relaxed);
    c->skipped += atomic_load_explicit(&st->skipped, memory_order_relaxed);
    c->moved += atomic_load_explicit(&st->moved, memory_order_relaxed);
    c->asked += atomic_load_explicit(&st->asked, memory_order_relaxed);
}
