/* source_reconnect.h - a lost source link taken up again, as a replica does
 * (issue 15): `PSYNC <replid> <received + 1>`, so nothing received is
 * fetched twice and nothing is missed; retried with jittered backoff
 * (SOURCE_RECONNECT_MIN_MS doubling to SOURCE_RECONNECT_MAX_MS) while the
 * source cannot be reached or cannot serve (-LOADING, -NOMASTERLINK ...).
 *
 *   worker: EOF or a read error on the stream -> source_feed_at_eof says
 *           "wait" (job->source_lost) -> the worker parks its input
 *   main:   source_reconnect_run (blocking) -> +CONTINUE [new replid]
 *           -> worker_input_swap(new socket, bytes read) -> the worker goes on
 *
 * A cluster source's shard is looked up again first: a failover moves its
 * master to another node.
 *
 * A +FULLRESYNC answer (the source's backlog no longer holds the offset,
 * or its history changed beyond replid2) ends the attempts: the job stops,
 * saying so; a restart resumes from the checkpoints or says what to do.
 * Threads: the caller's (the thread that runs the job's main loop).
 */
#ifndef RS_SOURCE_RECONNECT_H
#define RS_SOURCE_RECONNECT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "rs_error.h"
#include "source_link.h"

#define SOURCE_RECONNECT_MIN_MS  100
#define SOURCE_RECONNECT_MAX_MS  5000
#define SOURCE_RECONNECT_INITIAL (64 * 1024) /* bytes after +CONTINUE kept for the worker */

struct source_reconnect {
    const struct endpoint *ep; /* the source; for a cluster shard, its master at the start */
    int timeout_ms;            /* connect and handshake */
    int listening_port;        /* as at the start */
    double give_up_s;          /* stop trying after this long (0: never) */
    char replid[SOURCE_REPLID_LEN + 1]; /* the stream's; updated by +CONTINUE <new> */
    uint8_t initial[SOURCE_RECONNECT_INITIAL];
    size_t initial_len;
    unsigned attempts; /* of the last run */
    /* One master of a cluster source: the shard that serves shard_slot
     * (-1: a standalone source). Each attempt first asks the nodes known
     * (seeds, then the last master) which master serves it now: a replica
     * promoted in a failover knows the stream's replid as its replid2. */
    int shard_slot;
    const struct endpoint *seeds;
    size_t nseeds;
    struct endpoint cur; /* the shard's master found last (set by the caller to *ep) */
};

/* Reconnects and asks for the stream from offset received + 1. Returns the
 * new socket (sr->initial holds the bytes already read from it), or -1 with
 * err saying why it gave up: +FULLRESYNC, give_up_s passed, or *stop became
 * non-zero (a signal) between attempts. */
int source_reconnect_run(struct source_reconnect *sr, uint64_t received,
                         const volatile sig_atomic_t *stop, struct rs_error *err);

#endif
