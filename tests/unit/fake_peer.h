/* fake_peer.h - a scripted TCP peer on 127.0.0.1 for the control-link tests.
 *
 * A thread accepts one connection, writes its script (whole, in two pieces
 * split at a given offset, or one byte at a time), then records what the
 * client sent until the client closes (or `linger_ms` passes) and closes.
 * It never parses what it receives: replies are scripted in advance, so a
 * client that reads them all at once must keep the leftover bytes apart.
 */
#ifndef RS_TEST_FAKE_PEER_H
#define RS_TEST_FAKE_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "endpoint.h"

#define FAKE_PEER_BYTEWISE ((size_t)-1) /* split value: one byte per write */

struct fake_peer_step {
    const char *bytes; /* written as is */
    size_t len;        /* 0: strlen(bytes) */
    int delay_ms;      /* before writing them */
};

struct fake_peer {
    int listen_fd;
    int port;
    struct endpoint ep; /* 127.0.0.1:port, no password */
    /* Script: steps (up to 16), or one buffer split at `split`. */
    struct fake_peer_step steps[16];
    size_t nsteps;
    size_t split;   /* 0: whole; FAKE_PEER_BYTEWISE; else first `split` bytes, pause, rest */
    int pause_ms;   /* between the two pieces, or between bytes (bytewise) */
    bool no_accept; /* listen but never accept: connect succeeds, nobody answers */
    int linger_ms;  /* how long to read what the client sends (0: 2000) */
    pthread_t thread;
    bool started;
    char got[8192]; /* what the client sent */
    size_t got_len;
};

/* Listens on a free port and starts the thread (which waits for a client). */
void fake_peer_start(struct fake_peer *fp);

/* Joins the thread (after the client closed) and closes the listening socket. */
void fake_peer_stop(struct fake_peer *fp);

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
int fake_peer_closed_port(void);

#endif
