/* worker.h - a shard worker: one thread pinned to a CPU, its own io_uring,
 * its destination connections (one per destination node: a batch goes to
 * the link of its node, batch.h's lanes), and (for the worker that owns it)
 * the source.
 *
 * The loop's rules, in order, every iteration:
 *  1. take batches from the inbound rings (to[*][me]) into the destination link;
 *  2. take back the batches consumers are done with (back[*][me]);
 *  3. feed input bytes to the producer while its batches are not all out;
 *  4. publish the batches made, waking consumers that sleep;
 *  5. queue at most one send and one recv per socket;
 *  6. one io_uring_submit_and_wait_timeout (10 ms at most) when idle, else
 *     submit and reap without waiting; then dispatch completions by the op
 *     encoded in user_data.
 */
#ifndef RS_WORKER_H
#define RS_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rate_limit;

struct job;
struct batch_writer;
struct cluster_redirect;
struct io_uring;

/* A byte source pumped by the worker that owns it (a source socket or a file). */
struct worker_input {
    int fd;
    bool is_socket; /* recv on a socket, read on a file or pipe */
    /* Takes bytes: RS_OK (wants more), RS_DONE (complete; *used says how
     * many it took), RS_ERR (it called job_fail). */
    int (*feed)(void *ctx, const uint8_t *p, size_t n, size_t *used);
    /* The input ended (EOF, or a socket's error): RS_DONE if that is
     * expected, RS_ERR if not, RS_OK to wait for another socket
     * (worker_input_swap: a reconnected source). */
    int (*at_eof)(void *ctx);
    /* Called every loop iteration (at least every 10 ms): keepalives and ACKs,
     * paced by the callee; may be NULL. */
    void (*tick)(void *ctx);
    /* True while the consumer must not be fed (a fence waits for replies);
     * when it turns false the worker calls feed(ctx, NULL, 0) so the consumer
     * goes on with what it holds. May be NULL. */
    bool (*is_blocked)(void *ctx);
    void *ctx;
    /* Where input waits, in order, while the consumer cannot take it, so the
     * source is read at full speed anyway (spill.h); NULL: stop reading instead. */
    struct spill *spill;
    /* Bytes already read from fd before the worker took it (at most 256 KiB). */
    const uint8_t *initial;
    size_t initial_len;
    /* A reconnected source (worker_input_swap): the new socket, -1 none;
     * on_swap(ctx, fd) is called on the worker once it took it. */
    _Atomic int swap_fd;
    const uint8_t *swap_initial;
    size_t swap_initial_len;
    void (*on_swap)(void *ctx, int fd);
    /* n bytes arrived from the input, before they are fed: a read or a
     * swapped socket's initial bytes (on the worker), or the initial ones
     * (in worker_start, on its caller, before the thread starts). May be NULL. */
    void (*on_read)(void *ctx, size_t n);
    /* the worker's monotonic clock when bytes last came (stall detection) */
    double last_read;
    int last_errno; /* a socket's read error that ended it (0: a plain EOF) */
    /* While this limit (rate_limit.h) holds no token, no input is taken;
     * the feed charges what it took and may change it (a phase's own). NULL: none. */
    struct rate_limit *limit;
};

/* Hands the worker a new socket for `in` (after its at_eof said RS_OK), and
 * n <= 256 KiB bytes already read from it (kept by the caller until
 * on_swap). The worker closes the old socket. Any thread. */
void worker_input_swap(struct worker_input *in, int fd, const uint8_t *initial, size_t n);

#define WORKER_MAX_DEST 1024

struct worker_config {
    struct job *job;
    unsigned id;
    int cpu;                       /* pin to this CPU, or -1 */
    unsigned ndest;                /* destination nodes connected at start */
    const int *dest_fds;           /* per node: a connected, authenticated socket */
    const char *const *dest_names; /* per node: "host:port" */
    /* a cluster destination: its redirections (NULL: standalone), and the
     * nodes the links have room for (>= ndest, at most WORKER_MAX_DEST);
     * a link to a node met later is opened when first needed */
    struct cluster_redirect *redirect;
    unsigned node_cap;
    struct batch_writer *bw;    /* the producer side, for the worker with input; else NULL */
    struct worker_input *input; /* NULL for workers without a source */
};

struct worker;

/* Starts the worker's thread. Returns NULL (and closes nothing) on failure. */
struct worker *worker_start(const struct worker_config *cfg);

/* Waits for the thread to end (worker_free frees it). */
void worker_join(struct worker *w);

/* Frees a joined worker (closing its sockets). Only once every worker of
 * the job is joined: a running one may still wake or hand batches to it. */
void worker_free(struct worker *w);

/* Commands the worker's destination link has had replies to. */
uint64_t worker_replies(const struct worker *w);

/* What the worker's link to a destination node did (dest_link.h's stats). */
struct worker_link_counts {
    uint64_t sent, acked, retried, skipped, moved, asked;
};

/* Adds the counts of the worker's link to node (zero for a link never
 * opened, or node past its links) to c. Any thread, until worker_free. */
void worker_add_link_counts(const struct worker *w, unsigned node, struct worker_link_counts *c);

#endif
