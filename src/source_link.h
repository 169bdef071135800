/* source_link.h - ringsync as a replica of the source node.
 *
 * So far only the handshake (PROTOCOL.md §1), run on a control link that
 * control_link_open has already connected and logged in (AUTH):
 *
 *     REPLCONF listening-port <port>     an error answer is ignored (old servers)
 *     REPLCONF capa eof capa psync2      likewise
 *     PSYNC <replid|?> <offset|-1>       +FULLRESYNC <replid> <offset>  -> the snapshot's
 *                                                                          framing line
 *                                        +CONTINUE [<new replid>]       -> the stream
 *
 * After a full resync the caller takes the socket and the bytes already read
 * (the first bytes of the RDB may be among them) with control_link_detach,
 * and reads the snapshot from there.
 */
#ifndef RS_SOURCE_LINK_H
#define RS_SOURCE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control_link.h"
#include "rs_error.h"

#define SOURCE_REPLID_LEN       40    /* hex characters of a replication id */
#define SOURCE_EOF_MARK_LEN     40    /* bytes of a diskless snapshot's end mark */
#define SOURCE_SNAPSHOT_WAIT_MS 60000 /* default wait for the framing line */
#define SOURCE_RDB_LEN_UNKNOWN  UINT64_MAX

struct source_handshake_opts {
    int listening_port; /* shown by the source in INFO replication; 0: not sent */
    const char *replid; /* NULL or "?": a first sync (PSYNC ? -1) */
    int64_t offset;     /* the first byte wanted (the last applied + 1); with replid only */
    /* The longest silence while the source prepares the snapshot (it sends
     * "\n" keepalives meanwhile: each starts the wait anew). 0: SOURCE_SNAPSHOT_WAIT_MS. */
    int snapshot_wait_timeout_ms;
};

struct source_handshake_result {
    bool full;      /* +FULLRESYNC: a snapshot follows; else +CONTINUE: the stream */
    bool retryable; /* on failure: the source cannot serve now (-LOADING, -NOMASTERLINK,
                       -MASTERDOWN) */
    /* The source's replication id: from +FULLRESYNC, or the new one of
     * +CONTINUE <replid>, or (+CONTINUE alone) the one asked for. */
    char replid[SOURCE_REPLID_LEN + 1];
    /* The replica's offset once the stream starts: every byte up to it is in
     * the snapshot (FULLRESYNC's value) or was applied before (opts->offset - 1). */
    int64_t offset;
    /* A full resync's framing: `$<len>` gives rdb_len (eof_mark_len 0);
     * `$EOF:<mark>` gives the mark (eof_mark_len 40) and rdb_len
     * SOURCE_RDB_LEN_UNKNOWN: the RDB ends where the mark follows it. */
    uint64_t rdb_len;
    char eof_mark[SOURCE_EOF_MARK_LEN];
    size_t eof_mark_len;
};

/* Runs the handshake above on cl (open, logged in, nothing pending) and
 * fills *r (zeroed first). For a full resync it also reads the framing line,
 * skipping keepalives; the bytes after it stay buffered in cl.
 *
 * Fails with a negative errno and err naming the source and the reason:
 *   -EACCES     the source wants a password (-NOAUTH) or the user may not
 *               run REPLCONF (-NOPERM);
 *   -EAGAIN     r->retryable: -LOADING, -NOMASTERLINK, -MASTERDOWN; try
 *               again later (source_reconnect_handshake does);
 *   -EPERM      any other error answer to PSYNC: "source 127.0.0.1:6379
 *               refused PSYNC: <reply>";
 *   -EPROTO     an answer that is not what PROTOCOL.md §1 says;
 *   otherwise   as control_link_command / control_link_read_line (timeouts,
 *               a closed connection, something that is not Redis).
 * Threads: the thread that owns cl. */
int source_link_handshake(struct control_link *cl, const struct source_handshake_opts *o,
                          struct source_handshake_result *r, struct rs_error *err);

/* Sends `REPLCONF ACK <offset>` on the replication socket fd, without
 * waiting: a few bytes on a direction of the socket the source does not
 * fill, so they fit in its buffer (a failure shows on the next read). */
void source_link_send_ack(int fd, uint64_t offset);

#endif
