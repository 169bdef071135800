/* control_link.c - a blocking control-plane connection to one Redis server.
 *
 * The socket stays non-blocking while the link owns it; every wait is a
 * poll() bounded by a timeout of silence (it starts again whenever a byte
 * arrives), so a peer that never answers costs at most that long, never a
 * hang.
 *
 * The one read buffer, and who consumes it:
 *
 *     buf                start             end                  CONTROL_LINK_BUF_CAP
 *      |  already returned  |  read, not yet  |  free for recv()   |
 *                              returned
 *
 *   - control_link_read_line returns a line out of [start, end) and moves start;
 *   - a command's reply: [start, end) is fed to a fresh hiredis redisReader,
 *     then each recv(); once the reader has a whole reply, what it was fed
 *     past that reply is copied back into buf (it came in the last recv(), so
 *     it fits): a reply followed by the first bytes of something else loses
 *     none of them;
 *   - control_link_detach hands [start, end) to the caller.
 */
#include "control_link.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_LINK_QUOTE_BYTES 48 /* of a peer's bytes in a message */

/* The calling thread's peers lost (control_link_last_loss): per thread, as
 * a link belongs to the thread that opened it. */
static _Thread_local struct control_link_loss control_link_loss;

/* cl could not reach its peer, or lost it: counted, and named. */
static void control_link_lost(const struct control_link *cl)
{
    control_link_loss.count++;
    snprintf(control_link_loss.name, sizeof(control_link_loss.name), "%s", cl->name);
}

void control_link_loss_expected(void)
{
    if (control_link_loss.count > 0)
        control_link_loss.count--;
}

void control_link_last_loss(struct control_link_loss *out)
{
    *out = control_link_loss;
}

void control_reply_free(struct control_reply *rep)
{
    if (rep->r != NULL)
        freeReplyObject(rep->r);
    rep->r = NULL;
}

static int64_t control_link_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or timeout_ms has passed (EINTR does
 * not restart the clock). Returns 1 ready, 0 timed out, or -errno. */
static int control_link_poll(int fd, short events, int timeout_ms)
{
    int64_t deadline = control_link_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int64_t left = deadline - control_link_now_ms();
        int n = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* --------------------------------------------------------------- connecting */

/* Connects to one address within timeout_ms. Returns the socket or -errno. */
static int control_link_connect_addr(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = control_link_poll(fd, POLLOUT, timeout_ms);
        if (rc == 0)
            rc = -ETIMEDOUT;
        if (rc < 0)
            goto fail;
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            soerr = errno;
        if (soerr != 0) {
            rc = -soerr;
            goto fail;
        }
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;

fail:
    close(fd);
    return rc;
}

static int control_link_auth(struct control_link *cl, const struct endpoint *ep,
                             struct rs_error *err);

int control_link_open(struct control_link *cl, const struct endpoint *ep, int timeout_ms,
                      struct rs_error *err)
{
    RS_ASSERT(timeout_ms > 0);
    memset(cl, 0, sizeof(*cl));
    cl->fd = -1;
    cl->timeout_ms = timeout_ms;
    snprintf(cl->name, sizeof(cl->name), "%s", ep->name);

    cl->buf = malloc(CONTROL_LINK_BUF_CAP); /* a non-NULL buf marks the link open */
    if (cl->buf == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "connecting to %s: out of memory", cl->name);
        return -ENOMEM;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", ep->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int rc;
    int gai = getaddrinfo(ep->host, port, &hints, &res);
    if (gai != 0) {
        control_link_lost(cl);
        rs_error_set(err, RS_E_TRUNCATED, 0, "cannot connect to %s: cannot resolve '%s': %s",
                     cl->name, ep->host, gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        rc = -EHOSTUNREACH;
        goto fail;
    }
    rc = -EHOSTUNREACH;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = control_link_connect_addr(ai, timeout_ms);
        if (rc >= 0)
            break;
    }
    freeaddrinfo(res);
    if (rc < 0) {
        control_link_lost(cl);
        if (rc == -ETIMEDOUT)
            rs_error_set(err, RS_E_TRUNCATED, 0, "cannot connect to %s: no answer within %d ms",
                         cl->name, timeout_ms);
        else
            rs_error_set(err, RS_E_TRUNCATED, 0, "cannot connect to %s: %s", cl->name,
                         strerror(-rc));
        goto fail;
    }
    cl->fd = rc;
    if (ep->has_password) {
        rc = control_link_auth(cl, ep, err);
        if (rc < 0)
            goto fail;
    }
    return 0;

fail:
    control_link_close(cl);
    return rc;
}

void control_link_close(struct control_link *cl)
{
    if (cl->buf == NULL)
        return; /* all-zero or already closed */
    if (!cl->is_detached && cl->fd >= 0)
        close(cl->fd);
    free(cl->buf);
    memset(cl, 0, sizeof(*cl));
    cl->fd = -1;
}

int control_link_detach(struct control_link *cl, struct rs_slice *pending)
{
    RS_ASSERT(cl->buf != NULL && cl->fd >= 0 && !cl->is_detached);
    int fd = cl->fd;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    pending->p = cl->buf + cl->start;
    pending->len = cl->end - cl->start;
    cl->is_detached = true;
    cl->fd = -1;
    return fd;
}

/* ------------------------------------------------------------------ I/O */

/* Receives what is there into the free end of buf, waiting up to timeout_ms
 * of silence. Returns the number of bytes (> 0) or -errno with err set:
 * `waiting` says what for, in messages. -EMSGSIZE when buf has no room. */
static int control_link_fill(struct control_link *cl, int timeout_ms, const char *waiting,
                             struct rs_error *err)
{
    if (cl->start > 0 && cl->start == cl->end)
        cl->start = cl->end = 0;
    if (cl->end == CONTROL_LINK_BUF_CAP && cl->start > 0) {
        memmove(cl->buf, cl->buf + cl->start, cl->end - cl->start);
        cl->end -= cl->start;
        cl->start = 0;
    }
    if (cl->end == CONTROL_LINK_BUF_CAP)
        return -EMSGSIZE;
    for (;;) {
        ssize_t n = recv(cl->fd, cl->buf + cl->end, CONTROL_LINK_BUF_CAP - cl->end, 0);
        if (n > 0) {
            cl->end += (size_t)n;
            return (int)n;
        }
        if (n == 0) {
            control_link_lost(cl);
            rs_error_set(err, RS_E_TRUNCATED, 0, "%s closed the connection (waiting for %s)",
                         cl->name, waiting);
            return -ECONNRESET;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno;
            control_link_lost(cl);
            rs_error_set(err, RS_E_TRUNCATED, 0, "reading from %s: %s (waiting for %s)", cl->name,
                         strerror(e), waiting);
            return e == ECONNRESET || e == EPIPE ? -ECONNRESET : -e;
        }
        int rc = control_link_poll(cl->fd, POLLIN, timeout_ms);
        if (rc <= 0)
            control_link_lost(cl); /* a timeout, or poll itself failed */
        if (rc == 0) {
            rs_error_set(err, RS_E_TRUNCATED, 0, "%s did not answer within %d ms (waiting for %s)",
                         cl->name, timeout_ms, waiting);
            return -ETIMEDOUT;
        }
        if (rc < 0) {
            rs_error_set(err, RS_E_TRUNCATED, 0, "waiting for %s: poll: %s", cl->name,
                         strerror(-rc));
            return rc;
        }
    }
}

/* Writes s[0..len) whole, waiting up to the link's timeout whenever the
 * socket's buffer is full. */
static int control_link_write(struct control_link *cl, const char *s, size_t len,
                              struct rs_error *err)
{
    while (len > 0) {
        ssize_t n = send(cl->fd, s, len, MSG_NOSIGNAL);
        if (n > 0) {
            s += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = control_link_poll(cl->fd, POLLOUT, cl->timeout_ms);
            if (rc <= 0)
                control_link_lost(cl);
            if (rc == 0) {
                rs_error_set(err, RS_E_TRUNCATED, 0, "%s did not take what was sent within %d ms",
                             cl->name, cl->timeout_ms);
                return -ETIMEDOUT;
            }
            if (rc < 0)
                return rc;
            continue;
        }
        int e = n < 0 ? errno : EPIPE;
        control_link_lost(cl);
        if (e == EPIPE || e == ECONNRESET) {
            rs_error_set(err, RS_E_TRUNCATED, 0, "%s closed the connection", cl->name);
            return -ECONNRESET;
        }
        rs_error_set(err, RS_E_TRUNCATED, 0, "writing to %s: %s", cl->name, strerror(e));
        return -e;
    }
    return 0;
}

int control_link_send_raw(struct control_link *cl, const void *p, size_t len, struct rs_error *err)
{
    RS_ASSERT(cl->buf != NULL && !cl->is_detached);
    return control_link_write(cl, p, len, err);
}

/* ------------------------------------------------------------ commands */

/* Reads one reply with a fresh redisReader, as described at the top. */
int control_link_read_reply(struct control_link *cl, const char *cmd, struct control_reply *out,
                            struct rs_error *err)
{
    char waiting[64];
    snprintf(waiting, sizeof(waiting), "the reply to %.40s", cmd);
    char head[CONTROL_LINK_QUOTE_BYTES];
    size_t head_len = 0, fed = 0;
    int rc;
    redisReader *rd = redisReaderCreate();
    if (rd == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "%s: out of memory", cl->name);
        return -ENOMEM;
    }
    for (;;) {
        size_t n = cl->end - cl->start;
        if (n > 0) {
            const char *p = cl->buf + cl->start;
            size_t h = n < sizeof(head) - head_len ? n : sizeof(head) - head_len;
            memcpy(head + head_len, p, h);
            head_len += h;
            if (redisReaderFeed(rd, p, n) != REDIS_OK) {
                rc = -ENOMEM;
                rs_error_set(err, RS_E_LIMIT, 0, "%s: out of memory reading %s", cl->name, waiting);
                goto done;
            }
            fed += n;
            cl->start = cl->end = 0;
        }
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
            char quoted[CONTROL_LINK_QUOTE_BYTES * 4 + 4];
            rs_escape_bytes(quoted, sizeof(quoted), head, head_len, 40);
            rs_error_set(err, RS_E_FORMAT, 0,
                         "%s answered something that is not Redis (\"%s\") to %.40s", cl->name,
                         quoted, cmd);
            rc = -EPROTO;
            goto done;
        }
        if (reply != NULL) {
            /* What came after the reply goes back into buf (fed last: fits). */
            size_t rest = rd->len - rd->pos;
            RS_ASSERT(rest <= CONTROL_LINK_BUF_CAP);
            memcpy(cl->buf, rd->buf + rd->pos, rest);
            cl->start = 0;
            cl->end = rest;
            out->r = reply;
            rc = 0;
            goto done;
        }
        if (fed > CONTROL_LINK_REPLY_MAX) {
            rs_error_set(err, RS_E_LIMIT, 0, "%s: the reply to %.40s is longer than %u bytes",
                         cl->name, cmd, CONTROL_LINK_REPLY_MAX);
            rc = -EMSGSIZE;
            goto done;
        }
        rc = control_link_fill(cl, cl->timeout_ms, waiting, err);
        if (rc < 0) {
            if (rc == -ETIMEDOUT && fed > 0)
                rs_error_set(err, RS_E_TRUNCATED, 0,
                             "%s stopped in the middle of %s (no byte for %d ms)", cl->name,
                             waiting, cl->timeout_ms);
            goto done;
        }
    }

done:
    redisReaderFree(rd);
    return rc;
}

int control_link_read_integers(struct control_link *cl, const char *cmd, size_t n, long long *vals,
                               struct rs_error *err)
{
    for (size_t i = 0; i < n;) {
        const char *p = cl->buf + cl->start;
        const char *nl = memchr(p, '\n', cl->end - cl->start);
        if (nl == NULL) {
            char waiting[64];
            snprintf(waiting, sizeof(waiting), "the replies to %.40s", cmd);
            int rc = control_link_fill(cl, cl->timeout_ms, waiting, err);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t len = (size_t)(nl - p) + 1;
        if (*p != ':') {
            char quoted[CONTROL_LINK_QUOTE_BYTES * 4 + 4];
            rs_escape_bytes(quoted, sizeof(quoted), p, len > 2 ? len - 2 : len, 120);
            rs_error_set(err, RS_E_FORMAT, 0, "%s answered %.40s with \"%s\" (not an integer)",
                         cl->name, cmd, quoted);
            cl->start += len;
            return -EPROTO;
        }
        char *end;
        vals[i++] = strtoll(p + 1, &end, 10);
        if (end == p + 1 || (*end != '\r' && *end != '\n')) {
            rs_error_set(err, RS_E_FORMAT, 0, "%s answered %.40s with a bad integer", cl->name,
                         cmd);
            return -EPROTO;
        }
        cl->start += len;
    }
    return 0;
}

/* The length of the decimal text of n. */
static size_t control_link_digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

int control_link_send(struct control_link *cl, int argc, const char **argv, const size_t *argvlen,
                      struct rs_error *err)
{
    RS_ASSERT(cl->buf != NULL && !cl->is_detached && argc > 0);
    size_t total = 1 + control_link_digits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        total += 1 + control_link_digits(len) + 2 + len + 2;
    }
    char *cmd = malloc(total + 1);
    if (cmd == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "%s: out of memory for a command", cl->name);
        return -ENOMEM;
    }
    size_t o = (size_t)snprintf(cmd, total + 1, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        o += (size_t)snprintf(cmd + o, total + 1 - o, "$%zu\r\n", len);
        memcpy(cmd + o, argv[i], len);
        o += len;
        cmd[o++] = '\r';
        cmd[o++] = '\n';
    }
    RS_ASSERT(o == total);
    int rc = control_link_write(cl, cmd, total, err);
    explicit_bzero(cmd, total); /* it may have been AUTH */
    free(cmd);
    return rc;
}

int control_link_command(struct control_link *cl, struct control_reply *out, struct rs_error *err,
                         int argc, const char **argv, const size_t *argvlen)
{
    out->r = NULL;
    int rc = control_link_send(cl, argc, argv, argvlen, err);
    char name[48];
    size_t name_len = argvlen != NULL ? argvlen[0] : strlen(argv[0]);
    rs_escape_bytes(name, sizeof(name), argv[0], name_len, 16);
    if (rc == -ECONNRESET) {
        /* A server that refuses us may have said why before closing (Redis
         * writes "-ERR max number of clients reached"): read what is there. */
        struct rs_error send_err = {0};
        if (err != NULL)
            send_err = *err;
        int rrc = control_link_read_reply(cl, name, out, err);
        if (rrc == 0 || rrc == -EPROTO)
            return rrc;
        if (err != NULL)
            *err = send_err;
        return rc;
    }
    if (rc < 0)
        return rc;
    return control_link_read_reply(cl, name, out, err);
}

int control_link_commandv(struct control_link *cl, struct control_reply *out, struct rs_error *err,
                          ...)
{
    const char *argv[CONTROL_LINK_MAX_ARGS];
    int argc = 0;
    va_list ap;
    va_start(ap, err);
    for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
        RS_ASSERT(argc < CONTROL_LINK_MAX_ARGS);
        argv[argc++] = a;
    }
    va_end(ap);
    return control_link_command(cl, out, err, argc, argv, NULL);
}

/* ------------------------------------------------------------------ lines */

int control_link_read_line(struct control_link *cl, int timeout_ms, const char *what,
                           struct rs_slice *line, struct rs_error *err)
{
    RS_ASSERT(cl->buf != NULL && !cl->is_detached);
    for (;;) {
        char *p = cl->buf + cl->start;
        size_t n = cl->end - cl->start;
        char *nl = memchr(p, '\n', n);
        if (nl != NULL) {
            size_t len = (size_t)(nl - p);
            cl->start += len + 1;
            if (len > 0 && p[len - 1] == '\r')
                len--;
            if (len == 0)
                continue; /* a keepalive */
            line->p = p;
            line->len = len;
            return 0;
        }
        int rc = control_link_fill(cl, timeout_ms, what, err);
        if (rc == -EMSGSIZE) {
            char quoted[CONTROL_LINK_QUOTE_BYTES * 4 + 4];
            rs_escape_bytes(quoted, sizeof(quoted), cl->buf + cl->start, cl->end - cl->start, 40);
            rs_error_set(err, RS_E_FORMAT, 0,
                         "%s sent a line longer than %d bytes (waiting for %s): \"%s\"", cl->name,
                         CONTROL_LINK_BUF_CAP, what, quoted);
        }
        if (rc < 0)
            return rc;
    }
}

/* ------------------------------------------------------------------- INFO */

/* INFO <section> into *out, which must then be a bulk (or verbatim) string. */
static int control_link_info(struct control_link *cl, const char *section,
                             struct control_reply *out, struct rs_error *err)
{
    int rc = control_link_commandv(cl, out, err, "INFO", section, NULL);
    if (rc < 0)
        return rc;
    if (out->r->type == REDIS_REPLY_STRING)
        return 0;
    char quoted[CONTROL_LINK_QUOTE_BYTES * 4 + 4];
    if (out->r->type == REDIS_REPLY_ERROR) {
        rs_escape_bytes(quoted, sizeof(quoted), out->r->str, out->r->len, 120);
        rs_error_set(err, RS_E_FORMAT, 0, "%s refused INFO %s: %s", cl->name, section, quoted);
        rc = -EPERM;
    } else {
        rs_error_set(err, RS_E_FORMAT, 0, "%s answered INFO %s with a reply of type %d", cl->name,
                     section, out->r->type);
        rc = -EPROTO;
    }
    control_reply_free(out);
    return rc;
}

int control_link_info_field(struct control_link *cl, const char *section, const char *field,
                            char *out, size_t cap, struct rs_error *err)
{
    struct control_reply rep;
    int rc = control_link_info(cl, section, &rep, err);
    if (rc < 0)
        return rc;
    size_t flen = strlen(field);
    const char *s = rep.r->str, *end = s + rep.r->len;
    rc = -ENOENT;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (eol == NULL)
            eol = end;
        size_t len = (size_t)(eol - s);
        if (len > flen && memcmp(s, field, flen) == 0 && s[flen] == ':') {
            const char *v = s + flen + 1;
            size_t vlen = (size_t)(eol - v);
            if (vlen > 0 && v[vlen - 1] == '\r')
                vlen--;
            if (cap > 0) {
                size_t c = vlen < cap - 1 ? vlen : cap - 1;
                memcpy(out, v, c);
                out[c] = '\0';
            }
            rc = 0;
            break;
        }
        s = eol + 1;
    }
    if (rc == -ENOENT)
        rs_error_set(err, RS_E_FORMAT, 0, "%s: INFO %s has no field '%s'", cl->name, section,
                     field);
    control_reply_free(&rep);
    return rc;
}

int control_link_dbsize_all(struct control_link *cl, uint64_t *keys, struct rs_error *err)
{
    struct control_reply rep;
    *keys = 0;
    int rc = control_link_info(cl, "keyspace", &rep, err);
    if (rc < 0)
        return rc;
    const char *s = rep.r->str, *end = s + rep.r->len;
    uint64_t sum = 0;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (eol == NULL)
            eol = end;
        /* "db<K>:keys=<N>,expires=...": lines not starting "db<digit>" are headers. */
        if (eol - s > 2 && s[0] == 'd' && s[1] == 'b' && s[2] >= '0' && s[2] <= '9') {
            const char *colon = memchr(s, ':', (size_t)(eol - s));
            const char *k = colon;
            bool ok = colon != NULL && eol - colon > 6 && memcmp(colon + 1, "keys=", 5) == 0;
            uint64_t n = 0;
            if (ok) {
                k = colon + 6;
                ok = k < eol && *k >= '0' && *k <= '9';
                for (; ok && k < eol && *k >= '0' && *k <= '9'; k++)
                    n = n * 10 + (uint64_t)(*k - '0');
                ok = ok && (k == eol || *k == ',' || *k == '\r');
            }
            if (!ok) {
                char quoted[CONTROL_LINK_QUOTE_BYTES * 4 + 4];
                size_t len = (size_t)(eol - s);
                if (len > 0 && s[len - 1] == '\r')
                    len--;
                rs_escape_bytes(quoted, sizeof(quoted), s, len, 60);
                rs_error_set(err, RS_E_FORMAT, 0,
                             "%s: INFO keyspace has a line that is not dbN:keys=N,...: \"%s\"",
                             cl->name, quoted);
                rc = -EPROTO;
                break;
            }
            sum += n;
        }
        s = eol + 1;
    }
    if (rc == 0)
        *keys = sum;
    control_reply_free(&rep);
    return rc;
}

/* ------------------------------------------------------------------- AUTH */

static int control_link_auth(struct control_link *cl, const struct endpoint *ep,
                             struct rs_error *err)
{
    const char *argv[3] = {"AUTH"};
    int argc = 1;
    if (ep->user[0] != '\0')
        argv[argc++] = ep->user;
    argv[argc++] = ep->password;
    struct control_reply rep;
    int rc = control_link_command(cl, &rep, err, argc, argv, NULL);
    if (rc < 0)
        return rc;
    redisReply *r = rep.r;
    if (r->type == REDIS_REPLY_ERROR) {
        char quoted[CONTROL_LINK_QUOTE_BYTES * 4 + 4];
        rs_escape_bytes(quoted, sizeof(quoted), r->str, r->len, 120);
        rs_error_set(err, RS_E_FORMAT, 0, "%s refused AUTH%s%s: %s", cl->name,
                     ep->user[0] != '\0' ? " for user " : "", ep->user, quoted);
        rc = -EACCES;
    } else if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s answered AUTH with a reply of type %d, not +OK",
                     cl->name, r->type);
        rc = -EPROTO;
    }
    control_reply_free(&rep);
    return rc;
}
