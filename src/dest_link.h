/* dest_link.h - one connection to a destination server, owned by one worker.
 *
 * Batches are queued in order and sent with one sendmsg in flight at a time
 * (two sends on one TCP socket may reorder), many batches per send. Replies
 * are matched to commands in order: a batch is done when it is fully sent and
 * every one of its commands has its reply. An error reply stops the job with
 * the command, its key and the reply.
 *
 *   queue: head ... send_cur ... tail
 *          \ sent, awaiting replies /  \ not yet (fully) sent /
 */
#ifndef RS_DEST_LINK_H
#define RS_DEST_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "reply_reader.h"

#define DEST_LINK_IOV        64
#define DEST_LINK_RECV_BYTES (64 * 1024)

struct batch;
struct job;
struct io_uring;

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
    int lowat; /* the socket's SO_RCVLOWAT (recv_lowat in dest_link.c) */
    uint64_t replies;
    /* called with each batch once all its replies are in */
    void (*done)(void *ctx, struct batch *b);
    void *done_ctx;
};

/* Takes a connected socket. Returns 0 or -ENOMEM. */
int dest_link_init(struct dest_link *dl, int fd, const char *name, struct job *job,
                   void (*done)(void *ctx, struct batch *b), void *done_ctx);
void dest_link_deinit(struct dest_link *dl);

void dest_link_enqueue(struct dest_link *dl, struct batch *b);

/* Queues a sendmsg (user_data ud) when nothing is in flight and there is
 * something to send. Returns true if it did. */
bool dest_link_prep_send(struct dest_link *dl, struct io_uring *ring, uint64_t ud);
void dest_link_on_send(struct dest_link *dl, int res);

/* Queues a recv (user_data ud) unless one is in flight. */
bool dest_link_prep_recv(struct dest_link *dl, struct io_uring *ring, uint64_t ud);
void dest_link_on_recv(struct dest_link *dl, int res);

/* No batch queued, sent or awaiting replies. */
bool dest_link_is_idle(const struct dest_link *dl);

#endif
