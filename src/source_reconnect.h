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
 *
 * The job's first PSYNC (source_reconnect_handshake) is retried the same
 * way once the source has been reached: a source that answers but cannot
 * serve yet, or drops the link during the handshake, is waited for up to
 * --source-retry-timeout, as a native replica keeps trying its master;
 * one that cannot be reached at all, or refuses (a wrong password), is
 * the caller's to report at once.
 *
 *   sync_from: control_link_open (the first contact: a failure ends the job)
 *     -> source_reconnect_handshake: source_link_handshake
 *          -EAGAIN (-LOADING, -NOMASTERLINK, -MASTERDOWN) or a lost link
 *            -> said once, jittered backoff, control_link_open again, PSYNC again
 *          +FULLRESYNC / +CONTINUE -> the caller goes on
 *
 * Threads: the caller's (the thread that runs the job's main loop).
 */
#ifndef RS_SOURCE_RECONNECT_H
#define RS_SOURCE_RECONNECT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control_link.h"
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

/* source_link_handshake on cl, which the caller opened (the source was
 * reached), retried while the failure is one the source may get over by
 * itself: -EAGAIN (-LOADING, -NOMASTERLINK, -MASTERDOWN) or a link that
 * could not be made or was lost (err->code RS_E_TRUNCATED). Each retry
 * reopens cl to ep (timeout_ms) after the reconnects' jittered backoff.
 * Logs once what it waits for (the source, its answer, how long), and once
 * more when the source served. Returns 0 with *hr and cl open, the
 * handshake's answer in it; else cl may be closed and err says why:
 * a failure that is not transient (its code, as source_link_handshake's),
 * -ETIMEDOUT after give_up_s (0: never), -EINTR when is_stopping (may be
 * NULL) said so between attempts. */
int source_reconnect_handshake(struct control_link *cl, const struct endpoint *ep, int timeout_ms,
                               double give_up_s, const struct source_handshake_opts *ho,
                               struct source_handshake_result *hr, bool (*is_stopping)(void),
                               struct rs_error *err);

#endif
