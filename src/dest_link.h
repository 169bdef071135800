/* dest_link.h - one connection to a destination server, owned by one worker.
 *
 * Batches are queued in order and sent with one sendmsg in flight at a time
 * (two sends on one TCP socket may reorder), many batches per send. Replies
 * are matched to commands in order: a batch is done when it is fully sent and
 * every one of its commands has its reply. An error reply is classified
 * (dest_reply.h): the data's own (--on-error stops or skips), the
 * destination's configuration (stop, naming the setting, even with skip), or
 * "wait" (BUSY, LOADING ...: retried, below).
 *
 *   queue: head ... send_cur ... tail
 *          \ sent, awaiting replies /  \ not yet (fully) sent /
 *
 * Retrying, as a replica would: wait, and apply the same commands in order.
 *
 *   NORMAL --on_reply: a retryable error--> DRAINING --drain_maybe_end--> WAITING
 *     ^                                                                   |  ^
 *     |                                               dest_link_tick:     |  | round_end: a
 *     |                                               backoff elapsed     v  | command refused
 *     +---round_end: queue empty, db restored-------- ROUND (PROBE: 1 item;  | again (backoff x2)
 *                                                      REPLAY: the rest) ----+
 *   any state --order broken, a configuration reply, --target-retry-timeout--> job_fail
 *
 * DRAINING: no new batch starts (only the one partly sent is finished: the
 * server holds half a command otherwise); every reply of what was sent is
 * matched to its command by parsing the batch (the error path only). Each
 * command refused with a retryable error is copied (its bytes, and the db it
 * must run in) into the retry queue, in order.
 * WAITING: the backoff (10 ms doubling to 1 s); the worker calls
 * dest_link_tick at least every 10 ms.
 * ROUND: queued commands sent from the link's own buffer: a PROBE is the
 * first alone; once one is taken, a REPLAY pipelines the rest. A round ends
 * at the first SELECT it sends, so no command runs before we know which db
 * the connection is in. After the queue: a SELECT back to the db the batch
 * writer assumes (the db the last sent batch ended in), then NORMAL.
 *
 * Invariants:
 *  1. The connection's real db is the one the last SELECT that succeeded set
 *     (retry.real_db); a SELECT is sent before a retried command whose db
 *     differs.
 *  2. A batch goes to `done` only when every one of its commands succeeded,
 *     retried ones included, and batches go to `done` in queue order (held
 *     while the retry queue names it or one before it).
 *  3. Retried commands run in source order, each exactly once: a command is
 *     in the queue until it succeeds, and only a prefix of the queue is ever
 *     in flight.
 *  4. A command that succeeded while one before it was still refused ran out
 *     of order. That is harmless only when they share no hash slot, neither
 *     is keyless and no refused SELECT came before it: otherwise the job
 *     stops saying so (the order of the source cannot be restored).
 *     A transaction (MULTI ... EXEC) is judged whole at its EXEC: refused
 *     with a retryable error and run not at all (MULTI taken, EXEC answered
 *     EXECABORT or TRYAGAIN; or MULTI refused and every command after it
 *     too), it is one entry of the queue, sent again whole; run in part, the
 *     job stops.
 *  5. The hot path (NORMAL) pays one test of `rstate` per reply and per send,
 *     nothing else: no parsing, no allocation.
 */
#ifndef RS_DEST_LINK_H
#define RS_DEST_LINK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "batch.h"
#include "reply_reader.h"

#define DEST_LINK_IOV        64
#define DEST_LINK_RECV_BYTES (64 * 1024)

#define DEST_LINK_KEEPALIVE_S    0.5     /* idle this long: a PING (the destination's `timeout`) */
#define DEST_LINK_PING_OWNER     0xfffeu /* struct batch's owner of the link's own PING */
#define DEST_LINK_BACKOFF_MIN_MS 10
#define DEST_LINK_BACKOFF_MAX_MS 1000

struct batch;
struct batch_span;
struct job;
struct io_uring;
struct dest_retry; /* the retry state, dest_link.c's own */

enum dest_link_rstate {
    DEST_LINK_NORMAL = 0,
    DEST_LINK_DRAINING,
    DEST_LINK_WAITING,
    DEST_LINK_ROUND,
};

/* What a link did, for the status (status_server.h): written only by the
 * link's worker (a relaxed load and store, no locked instruction), read by
 * anyone with relaxed loads. Published per send and per recv completion,
 * never per command. */
struct dest_link_stats {
    _Atomic uint64_t sent;    /* commands whose bytes were all sent */
    _Atomic uint64_t acked;   /* replies (dest_link.replies) */
    _Atomic uint64_t retried; /* commands refused with a retryable error (dest_link.retried) */
    _Atomic uint64_t skipped; /* refused and skipped (--on-error skip) */
    _Atomic uint64_t moved;   /* MOVED replies handed to the redirect */
    _Atomic uint64_t asked;   /* ASK replies handed to the redirect */
};

struct dest_link {
    int fd;
    const char *name; /* "host:port", for messages */
    struct job *job;
    struct batch *head, *tail, *send_cur;
    bool send_inflight;
    bool recv_inflight;
    struct iovec iov[DEST_LINK_IOV];
    struct msghdr msg;
    struct reply_reader rr;
    char *rbuf;
    int lowat;        /* the socket's SO_RCVLOWAT (recv_lowat in dest_link.c) */
    uint64_t replies; /* commands applied (retried ones once, when they succeed) */
    enum dest_link_rstate rstate;
    struct dest_retry *retry; /* made at the first retryable error */
    uint64_t retried;         /* commands retried, over the link's life */
    /* a cluster destination (cluster_redirect.h): batches with seq >= *hold
     * are not started; MOVED and ASK go to redirect (NULL: they stop the job) */
    const uint64_t *hold;
    int (*redirect)(void *ctx, struct dest_link *dl, const char *cmd, size_t cmd_len,
                    uint32_t ncmds, const struct batch_span *span, const char *line, size_t len);
    void *redirect_ctx;
    double idle_since; /* when the queue became empty (0: not idle), for keepalives */
    struct batch ping; /* the keepalive PING, the link's own */
    const struct batch *redirected_b; /* a transaction sent again whole: its other replies */
    uint32_t redirected_last;         /* up to this index of redirected_b are not ours */
    struct dest_link_stats stats;
    /* called with each batch once all its replies are in */
    void (*done)(void *ctx, struct batch *b);
    void *done_ctx;
};

/* Takes a connected socket. Returns 0 or -ENOMEM. */
int dest_link_init(struct dest_link *dl, int fd, const char *name, struct job *job,
                   void (*done)(void *ctx, struct batch *b), void *done_ctx);
void dest_link_deinit(struct dest_link *dl);

void dest_link_enqueue(struct dest_link *dl, struct batch *b);

/* Puts b (a redirect batch) in the queue ahead of the first batch held by
 * *dl->hold, or last when none is held. */
void dest_link_insert_before_held(struct dest_link *dl, struct batch *b);

/* Queues a sendmsg (user_data ud) when nothing is in flight and there is
 * something to send. Returns true if it did. */
bool dest_link_prep_send(struct dest_link *dl, struct io_uring *ring, uint64_t ud);
void dest_link_on_send(struct dest_link *dl, int res);

/* Queues a recv (user_data ud) unless one is in flight. */
bool dest_link_prep_recv(struct dest_link *dl, struct io_uring *ring, uint64_t ud);
void dest_link_on_recv(struct dest_link *dl, int res);

/* Starts a retry round once the backoff has passed (WAITING), and gives up
 * after the job's retry timeout. Cheap in any other state: call it every
 * loop iteration, before dest_link_prep_send. */
void dest_link_tick(struct dest_link *dl);

/* No batch queued, sent or awaiting replies. */
bool dest_link_is_idle(const struct dest_link *dl);

#endif
