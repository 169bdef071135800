/* control_link.h - a blocking control-plane connection to one Redis server.
 *
 * For handshakes and checks (AUTH, REPLCONF, PSYNC, INFO, CONFIG GET), never
 * for the hot path: every call blocks its thread until the answer has come,
 * or the peer has gone quiet for the link's timeout.
 *
 *     control_link_open()  ->  open  --command / read_line-->  open
 *                               |  \
 *                               |   control_link_detach()  -> detached: the caller owns the
 *                               |                             socket and the buffered bytes
 *                               v                v
 *                        control_link_close()  (frees what is left; after detach it does
 *                                               not close the socket)
 *
 * All reads go through one buffer in the link, so bytes that came after an
 * answer (the first bytes of a snapshot behind "$EOF:<mark>\r\n") are never
 * lost: the next call returns them, or control_link_detach hands them over.
 *
 * How calls fail: a negative errno saying what kind of failure it was, and
 * err filled with a message that names the endpoint (ep->name, never the
 * password) and the reason:
 *   -ECONNREFUSED, -EHOSTUNREACH, ... "cannot connect to 127.0.0.1:1: Connection refused"
 *   -ETIMEDOUT    "127.0.0.1:6380 did not answer within 3000 ms"
 *   -ECONNRESET   "127.0.0.1:6380 closed the connection"
 *   -EPROTO       "127.0.0.1:6380 answered something that is not Redis (\"HTTP/1.1 ...\")"
 *   -EACCES       "127.0.0.1:6380 refused AUTH: WRONGPASS invalid username-password pair ..."
 * err->code is RS_E_FORMAT when the peer said something wrong or refused,
 * RS_E_TRUNCATED when the answer did not (fully) come: no connection, a
 * timeout, a closed connection.
 *
 * Threads: a link belongs to the thread that opened it.
 */
#ifndef RS_CONTROL_LINK_H
#define RS_CONTROL_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "endpoint.h"
#include "rs_error.h"
#include "slice.h"

#define CONTROL_LINK_BUF_CAP   16384 /* the read buffer; also the longest line read_line takes */
#define CONTROL_LINK_MAX_ARGS  64    /* arguments of control_link_commandv */
#define CONTROL_LINK_REPLY_MAX (64u << 20) /* a longer reply is refused (-EMSGSIZE) */

/* Caller-owned storage. Callers may read fd, timeout_ms and name; the rest
 * is the link's own. An all-zero struct is a closed link. */
struct control_link {
    int fd; /* -1 when closed or detached */
    int timeout_ms;
    char name[300]; /* the endpoint's name, for messages */
    char *buf;      /* CONTROL_LINK_BUF_CAP bytes; [start, end) not yet returned */
    size_t start, end;
    bool is_detached;
};

/* One reply, owned by whoever holds it: free it with control_reply_free.
 * r->type is one of hiredis's REDIS_REPLY_* (an error reply is a reply:
 * REDIS_REPLY_ERROR with its text in r->str). */
struct control_reply {
    redisReply *r;
};

void control_reply_free(struct control_reply *rep);

/* Connects to ep (every address its host resolves to, in order) within
 * timeout_ms per address, sets TCP_NODELAY, then logs in when ep has a
 * password: `AUTH password`, or `AUTH user password` when ep->user is set.
 * Sends nothing else: ep->db is the caller's to SELECT. timeout_ms (> 0) is
 * also the link's timeout for every later call.
 *
 * On success cl is open (caller-owned storage, overwritten); on failure it is
 * closed and nothing needs freeing. Errors as above; a refused AUTH is
 * -EACCES with the server's reply in the message (never the password). */
int control_link_open(struct control_link *cl, const struct endpoint *ep, int timeout_ms,
                      struct rs_error *err);

/* Sends one command (argv[i] of argvlen[i] bytes; argvlen NULL: strlen) as a
 * RESP array and reads exactly one reply into *out (which the caller frees).
 * An error reply is a success here: check out->r->type. Fails (out->r NULL)
 * when the reply does not come within the link's timeout of silence, the
 * connection closes, the peer is not speaking RESP, or the reply exceeds
 * CONTROL_LINK_REPLY_MAX. Bytes that came after the reply stay buffered. */
int control_link_command(struct control_link *cl, struct control_reply *out, struct rs_error *err,
                         int argc, const char **argv, const size_t *argvlen);

/* The same with NUL-terminated arguments, the list ended by NULL:
 * control_link_commandv(cl, &rep, &err, "CONFIG", "GET", "maxmemory-policy", NULL).
 * At most CONTROL_LINK_MAX_ARGS arguments (more is a broken invariant). */
int control_link_commandv(struct control_link *cl, struct control_reply *out, struct rs_error *err,
                          ...) __attribute__((sentinel));

/* Sends one command like control_link_command, without reading its reply:
 * for an answer read with control_link_read_line (PSYNC's). */
int control_link_send(struct control_link *cl, int argc, const char **argv, const size_t *argvlen,
                      struct rs_error *err);

/* Sends bytes that are already RESP commands (a pipeline), in one write
 * where the socket takes it. Fails as control_link_send. */
int control_link_send_raw(struct control_link *cl, const void *p, size_t len, struct rs_error *err);

/* Reads one reply (to commands sent with control_link_send: pipelining)
 * into *out, as control_link_command does; cmd names the command awaited in
 * messages. */
int control_link_read_reply(struct control_link *cl, const char *cmd, struct control_reply *out,
                            struct rs_error *err);

/* Reads n integer replies (":123\r\n") into vals, straight from the
 * link's buffer: for long pipelines of commands that answer integers. An
 * error or any other reply is -EPROTO, its text quoted in err (the replies
 * after it are left unread). Else fails as control_link_command. */
int control_link_read_integers(struct control_link *cl, const char *cmd, size_t n, long long *vals,
                               struct rs_error *err);

/* Reads the next line (its "\r\n" or "\n" cut off) into *line, skipping
 * empty lines: the bare "\n" keepalives a source sends while it prepares a
 * snapshot. Waits as long as bytes keep coming: fails with -ETIMEDOUT only
 * after timeout_ms without a single byte (each keepalive starts the wait
 * anew). `what` names the line awaited in messages ("the answer to PSYNC").
 * *line points into the link's buffer, valid until the next call on cl. A
 * line longer than CONTROL_LINK_BUF_CAP is -EMSGSIZE. Bytes after the line
 * stay buffered. */
int control_link_read_line(struct control_link *cl, int timeout_ms, const char *what,
                           struct rs_slice *line, struct rs_error *err);

/* Hands the socket over: returns its fd (in blocking mode, TCP_NODELAY on),
 * which the caller now owns and closes, and sets *pending to the bytes
 * already read from it but not yet returned (the first bytes of a snapshot,
 * perhaps more). *pending stays valid until control_link_close(cl), which
 * then does not close the fd. Call it on an open link only, once. */
int control_link_detach(struct control_link *cl, struct rs_slice *pending);

/* Closes the socket (unless detached) and frees the buffer. A closed or
 * all-zero link is a no-op. */
void control_link_close(struct control_link *cl);

/* The peers the calling thread's links could not reach or lost: every
 * failure above whose err->code is RS_E_TRUNCATED (no connection, a
 * timeout, a closed connection) counts, and the last one's endpoint is
 * named. For a caller that runs a whole stage of other code, which only
 * logs its failures (sync_prepare_target), and must tell afterwards a peer
 * lost from a peer that refused: it compares count before and after. */
struct control_link_loss {
    unsigned long count; /* since the thread began */
    char name[300];      /* the last one's endpoint (ep->name), "" before any */
};

void control_link_last_loss(struct control_link_loss *out);

/* The calling thread's last loss was expected (a proxy closes the
 * connection at INFO: how dest_nodes_open tells it): not counted. */
void control_link_loss_expected(void);

/* INFO <section>, then the value of its "field:value" line copied into out
 * (capacity cap, NUL-terminated; cut to fit). -ENOENT when the section has
 * no such field; -EPERM when INFO itself got an error reply (message
 * quotes it); otherwise as control_link_command. */
int control_link_info_field(struct control_link *cl, const char *section, const char *field,
                            char *out, size_t cap, struct rs_error *err);

/* The number of keys in all databases: the sum of keys=N over the
 * "dbK:keys=N,expires=...,avg_ttl=..." lines of INFO keyspace (0 when there
 * are none). -EPROTO when such a line is malformed; else as above. */
int control_link_dbsize_all(struct control_link *cl, uint64_t *keys, struct rs_error *err);

#endif
