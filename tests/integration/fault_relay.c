/* fault_relay.c - a TCP relay that breaks connections on demand
 * (fault_relay.h).
 *
 * The relay thread's loop, one turn:
 *   1. take what the test asked (a RESET is done here, on this thread, so
 *      that no fd is closed under a ppoll), let a hole that ran out end,
 *      answer the waiting fault_relay_set (done_seq);
 *   2. build the poll set: per connection and direction, POLLIN on the leg
 *      it reads while nothing is held, POLLOUT on the leg it writes while
 *      something is; nothing for a direction in a black hole, or in
 *      one-byte mode before its next write is due (the timeout says when);
 *   3. ppoll without the lock (a setter writes the eventfd to cut it short);
 *   4. accept, then step every connection: read when nothing is held, write
 *      what is held as the faults allow, pass an EOF on (a flow coming out
 *      of a black hole over an RST from its sender resets the connection
 *      instead); drop the dead ones.
 *
 * A connection, its two flows and their legs:
 *
 *     flow[C2S]: reads fd[0] (the client's leg) -> writes fd[1]
 *     flow[S2C]: reads fd[1] (the server's leg) -> writes fd[0]
 *
 * so flow d reads fd[d] and writes fd[1 - d]. Nothing here blocks: every
 * socket is non-blocking and a peer that does not read only keeps its flow's
 * bytes held. The lock (mu) is held by the relay thread everywhere but in
 * ppoll, so the faults, the connections and the counters are read and
 * changed under it, by either thread.
 */
#include "fault_relay.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define RELAY_BUF_BYTES  (16 * 1024) /* read at most this much per direction, then write it */
#define RELAY_MAX_CONNS  128         /* more are accepted and reset at once */
#define RELAY_TICK_US    100000      /* the longest ppoll: a bound, not a need */
#define RELAY_SET_WAIT_S 5           /* fault_relay_set gives up on the thread after this */
#define RELAY_TAIL_BYTES 16          /* the last bytes written, kept for a cut's record */
#define RELAY_NEVER      INT64_MAX

_Static_assert(RELAY_TICK_US < 1000000, "a poll timeout's tv_sec is 0");

enum { C2S = 0, S2C = 1 }; /* a flow's index, and the index of the leg it reads */

struct relay_flow {
    uint8_t buf[RELAY_BUF_BYTES];
    size_t off, len;       /* buf[off, len) was read and is not written yet */
    bool is_eof;           /* its read leg said EOF */
    bool is_shut;          /* ... and it was passed on: SHUT_WR on the write leg */
    int64_t next_us;       /* one byte at a time: no write before this */
    int64_t hole_until_us; /* FAULT_RELAY_BLACK_HOLE_OPEN on this connection; 0: none */
    bool was_held;         /* in a black hole when last stepped */
    uint8_t tail[RELAY_TAIL_BYTES];
    size_t tail_len;
};

struct relay_conn {
    int fd[2]; /* [0] the client's leg (accepted), [1] the server's (connected); -1 closed */
    bool is_connecting;
    bool is_dead;
    int pidx[2]; /* each leg's slot in this turn's poll set, -1: not in it */
    struct relay_flow flow[2];
};

struct relay_faults {
    int64_t hole_until_us; /* black hole until this monotonic time; 0: none */
    bool is_one_byte;
    int64_t byte_gap_us;
    int64_t cut_left; /* bytes still to pass before the cut; -1: not armed */
    int64_t cut_arg;  /* what the cut was armed with, for its record */
};

struct fault_relay {
    int port, target_port;
    int listen_fd, wake_fd;
    pthread_t thread;
    pthread_mutex_t mu; /* all below; the relay thread holds it except in ppoll */
    pthread_cond_t cv;  /* done_seq moved (CLOCK_MONOTONIC) */
    bool is_stopping;
    bool is_reset_asked;
    uint64_t req_seq, done_seq; /* changes asked, changes taken by the relay thread */
    struct relay_faults faults[2];
    int64_t pass_left; /* FAULT_RELAY_RESET_NEW: connections still let through; -1: off */
    struct relay_conn *conns[RELAY_MAX_CONNS];
    size_t nconns;
    struct fault_relay_stats stats;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t flow_held(const struct relay_flow *f)
{
    return f->len - f->off;
}

static bool in_hole(const struct fault_relay *r, const struct relay_conn *c, int d, int64_t now)
{
    return (r->faults[d].hole_until_us != 0 && now < r->faults[d].hole_until_us) ||
           (c->flow[d].hole_until_us != 0 && now < c->flow[d].hole_until_us);
}

static void wake(struct fault_relay *r)
{
    uint64_t one = 1;
    (void)!write(r->wake_fd, &one, sizeof(one));
}

/* ------------------------------------------------------------ connections */

/* An RST to each peer: SO_LINGER 0, then close. */
static void leg_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void conn_reset(struct relay_conn *c)
{
    for (int i = 0; i < 2; i++)
        if (c->fd[i] >= 0) {
            leg_reset(c->fd[i]);
            c->fd[i] = -1;
        }
    c->is_dead = true;
}

/* A plain close of both legs: a FIN, or an RST from the kernel when the
 * relay left bytes unread on that leg. */
static void conn_close(struct relay_conn *c)
{
    for (int i = 0; i < 2; i++)
        if (c->fd[i] >= 0) {
            close(c->fd[i]);
            c->fd[i] = -1;
        }
    c->is_dead = true;
}

static void set_nodelay(int fd)
{
    int one = 1; /* one byte per write must leave as one segment */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A new client leg: its server leg is a non-blocking connect to the target. */
static void conn_open(struct fault_relay *r, int cfd)
{
    r->stats.accepted++;
    if (r->pass_left == 0) { /* FAULT_RELAY_RESET_NEW */
        r->stats.resets_new++;
        leg_reset(cfd);
        return;
    }
    if (r->pass_left > 0)
        r->pass_left--;
    struct relay_conn *c = r->nconns < RELAY_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL) {
        r->stats.refused++;
        leg_reset(cfd);
        return;
    }
    c->fd[0] = cfd;
    c->fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->pidx[0] = c->pidx[1] = -1;
    r->conns[r->nconns++] = c;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->target_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (c->fd[1] < 0 ||
        (connect(c->fd[1], (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
        r->stats.refused++;
        conn_reset(c);
        return;
    }
    c->is_connecting = true; /* even when done at once: the next turn checks SO_ERROR */
    set_nodelay(c->fd[0]);
    set_nodelay(c->fd[1]);
}

static void accept_all(struct fault_relay *r)
{
    for (;;) {
        int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an aborted handshake: the next turn tries again */
        conn_open(r, fd);
    }
}

static void reset_all(struct fault_relay *r)
{
    for (size_t i = 0; i < r->nconns; i++)
        if (!r->conns[i]->is_dead) {
            conn_reset(r->conns[i]);
            r->stats.resets++;
        }
}

static void reap(struct fault_relay *r)
{
    size_t k = 0;
    for (size_t i = 0; i < r->nconns; i++) {
        if (r->conns[i]->is_dead)
            free(r->conns[i]);
        else
            r->conns[k++] = r->conns[i];
    }
    r->nconns = k;
}

/* ------------------------------------------------------------------ flows */

/* n bytes as text: printable ones as they are, others as \r, \n or \xNN. */
static void escape(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (p[i] == '\r' || p[i] == '\n')
            o += (size_t)snprintf(out + o, cap - o, "\\%c", p[i] == '\r' ? 'r' : 'n');
        else if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '\'')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
    }
    out[o] = '\0';
}

/* The cut: the connection closes with flow d's next byte held. */
static void flow_cut(struct fault_relay *r, struct relay_conn *c, int d)
{
    struct relay_flow *f = &c->flow[d];
    struct relay_faults *ft = &r->faults[d];
    char before[72], after[72];
    escape(before, sizeof(before), f->tail, f->tail_len);
    size_t n = flow_held(f) < RELAY_TAIL_BYTES ? flow_held(f) : RELAY_TAIL_BYTES;
    escape(after, sizeof(after), f->buf + f->off, n);
    snprintf(r->stats.last_cut, sizeof(r->stats.last_cut), "%s cut after %lld bytes: '%s' | '%s'",
             d == C2S ? "C2S" : "S2C", (long long)ft->cut_arg, before, after);
    ft->cut_left = -1;
    r->stats.cuts++;
    conn_close(c);
}

static void keep_tail(struct relay_flow *f, const uint8_t *p, size_t n)
{
    if (n >= RELAY_TAIL_BYTES) {
        memcpy(f->tail, p + n - RELAY_TAIL_BYTES, RELAY_TAIL_BYTES);
        f->tail_len = RELAY_TAIL_BYTES;
        return;
    }
    size_t keep = f->tail_len + n > RELAY_TAIL_BYTES ? RELAY_TAIL_BYTES - n : f->tail_len;
    memmove(f->tail, f->tail + f->tail_len - keep, keep);
    memcpy(f->tail + keep, p, n);
    f->tail_len = keep + n;
}

static bool is_transient(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* Moves flow d of c as far as it can now: a read when nothing is held, then
 * writes as the faults allow, then the EOF once everything before it went. */
static void flow_step(struct fault_relay *r, struct relay_conn *c, int d, int64_t now)
{
    struct relay_flow *f = &c->flow[d];
    struct relay_faults *ft = &r->faults[d];
    int from = c->fd[d], to = c->fd[1 - d];
    if (flow_held(f) == 0 && !f->is_eof) {
        ssize_t n = recv(from, f->buf, sizeof(f->buf), MSG_DONTWAIT);
        if (n > 0) {
            f->off = 0;
            f->len = (size_t)n;
        } else if (n == 0) {
            f->is_eof = true;
        } else if (!is_transient(errno)) {
            conn_reset(c); /* a reset (or worse) on one leg is passed on as a reset */
            return;
        }
    }
    while (flow_held(f) > 0) {
        if (ft->cut_left == 0) {
            flow_cut(r, c, d);
            return;
        }
        size_t n = flow_held(f);
        if (ft->is_one_byte) {
            if (now < f->next_us)
                return;
            n = 1;
        }
        if (ft->cut_left > 0 && (int64_t)n > ft->cut_left)
            n = (size_t)ft->cut_left;
        ssize_t w = send(to, f->buf + f->off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (!is_transient(errno))
                conn_reset(c);
            return;
        }
        keep_tail(f, f->buf + f->off, (size_t)w);
        f->off += (size_t)w;
        r->stats.bytes[d] += (uint64_t)w;
        if (ft->cut_left > 0)
            ft->cut_left -= w;
        if (ft->is_one_byte) {
            r->stats.byte_writes++;
            f->next_us = now + ft->byte_gap_us;
            return;
        }
    }
    if (f->is_eof && !f->is_shut) {
        shutdown(to, SHUT_WR);
        f->is_shut = true;
    }
    if (c->flow[C2S].is_shut && c->flow[S2C].is_shut)
        conn_close(c);
}

static void conn_step(struct fault_relay *r, struct relay_conn *c, const struct pollfd *pfd,
                      int64_t now)
{
    if (c->is_connecting) {
        if (c->pidx[1] < 0 || pfd[c->pidx[1]].revents == 0)
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            r->stats.refused++;
            conn_reset(c); /* the client sees its connection refused as a reset */
            return;
        }
        c->is_connecting = false;
    }
    for (int d = 0; d < 2 && !c->is_dead; d++) {
        struct relay_flow *f = &c->flow[d];
        if (in_hole(r, c, d, now)) {
            f->was_held = true;
            continue;
        }
        if (f->was_held) {
            /* out of a hole: a sender that reset its leg meanwhile took
             * what it had not delivered with it */
            f->was_held = false;
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(c->fd[d], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
                conn_reset(c);
                return;
            }
        }
        flow_step(r, c, d, now);
    }
}

/* ------------------------------------------------------------------- loop */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static nfds_t build_pollset(struct fault_relay *r, struct pollfd *pfd, int64_t now,
                            int64_t *wait_us)
{
    nfds_t n = 0;
    pfd[n++] = (struct pollfd){.fd = r->wake_fd, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
    for (int d = 0; d < 2; d++) {
        int64_t until = r->faults[d].hole_until_us;
        if (until != 0 && until != RELAY_NEVER && now < until)
            *wait_us = min64(*wait_us, until - now);
    }
    for (size_t i = 0; i < r->nconns; i++) {
        struct relay_conn *c = r->conns[i];
        short ev[2] = {0, 0};
        for (int d = 0; d < 2; d++) {
            int64_t until = c->flow[d].hole_until_us;
            if (until != 0 && until != RELAY_NEVER && now < until)
                *wait_us = min64(*wait_us, until - now);
        }
        if (c->is_connecting)
            ev[1] = POLLOUT;
        else
            for (int d = 0; d < 2; d++) {
                const struct relay_flow *f = &c->flow[d];
                if (in_hole(r, c, d, now))
                    continue;
                if (flow_held(f) > 0) {
                    if (r->faults[d].is_one_byte && f->next_us > now) {
                        *wait_us = min64(*wait_us, f->next_us - now);
                        continue;
                    }
                    ev[1 - d] |= POLLOUT;
                } else if (!f->is_eof) {
                    ev[d] |= POLLIN;
                }
            }
        for (int leg = 0; leg < 2; leg++) {
            c->pidx[leg] = -1;
            if (ev[leg] != 0 && c->fd[leg] >= 0) {
                c->pidx[leg] = (int)n;
                pfd[n++] = (struct pollfd){.fd = c->fd[leg], .events = ev[leg]};
            }
        }
    }
    return n;
}

static void *relay_main(void *arg)
{
    struct fault_relay *r = arg;
    struct pollfd pfd[2 + 2 * RELAY_MAX_CONNS];
    pthread_mutex_lock(&r->mu);
    while (!r->is_stopping) {
        int64_t now = mono_us();
        if (r->is_reset_asked) {
            reset_all(r);
            reap(r);
            r->is_reset_asked = false;
        }
        for (int d = 0; d < 2; d++)
            if (r->faults[d].hole_until_us != 0 && now >= r->faults[d].hole_until_us)
                r->faults[d].hole_until_us = 0;
        if (r->done_seq != r->req_seq) {
            r->done_seq = r->req_seq;
            pthread_cond_broadcast(&r->cv);
        }
        int64_t wait_us = RELAY_TICK_US;
        nfds_t n = build_pollset(r, pfd, now, &wait_us);
        pthread_mutex_unlock(&r->mu);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(wait_us > 0 ? wait_us : 0) * 1000L};
        int rc = ppoll(pfd, n, &ts, NULL);
        pthread_mutex_lock(&r->mu);
        if (rc < 0)
            continue; /* EINTR (every signal is blocked here, but still) */
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            (void)!read(r->wake_fd, &v, sizeof(v));
        }
        if (pfd[1].revents & POLLIN)
            accept_all(r);
        now = mono_us();
        for (size_t i = 0; i < r->nconns; i++)
            if (!r->conns[i]->is_dead)
                conn_step(r, r->conns[i], pfd, now);
        reap(r);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ------------------------------------------------------------------- API */

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The lock, the condition and the thread: 0, or -1 with errno. */
static int relay_thread_start(struct fault_relay *r)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    /* the relay thread takes no signal: the test's handlers stay on its thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&r->thread, NULL, relay_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e == 0)
        return 0;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    errno = e;
    return -1;
}

struct fault_relay *fault_relay_start(int target_port)
{
    struct fault_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->target_port = target_port;
    r->pass_left = -1;
    for (int d = 0; d < 2; d++)
        r->faults[d].cut_left = -1;
    r->listen_fd = listen_loopback(&r->port);
    r->wake_fd = r->listen_fd < 0 ? -1 : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd >= 0 && relay_thread_start(r) == 0)
        return r;
    int saved = errno;
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    free(r);
    errno = saved;
    return NULL;
}

int fault_relay_port(const struct fault_relay *r)
{
    return r->port;
}

int fault_relay_set(struct fault_relay *r, unsigned dirs, enum fault_relay_fault f, long long arg)
{
    bool any_dirs = f == FAULT_RELAY_RESET || f == FAULT_RELAY_RESET_NEW;
    if ((dirs & ~(unsigned)FAULT_RELAY_BOTH) != 0 || (dirs == 0 && !any_dirs) || arg < 0 ||
        f > FAULT_RELAY_RESET_NEW)
        return -EINVAL;
    pthread_mutex_lock(&r->mu);
    int64_t now = mono_us();
    if (f == FAULT_RELAY_RESET)
        r->is_reset_asked = true;
    if (f == FAULT_RELAY_RESET_NEW)
        r->pass_left = arg;
    if (f == FAULT_RELAY_CLEAR)
        r->pass_left = -1;
    for (int d = 0; d < 2 && !any_dirs; d++) {
        if (!(dirs & (1u << d)))
            continue;
        struct relay_faults *ft = &r->faults[d];
        switch (f) {
        case FAULT_RELAY_CLEAR:
            *ft = (struct relay_faults){.cut_left = -1};
            for (size_t i = 0; i < r->nconns; i++)
                r->conns[i]->flow[d].hole_until_us = 0;
            break;
        case FAULT_RELAY_BLACK_HOLE:
            ft->hole_until_us = arg == 0 ? RELAY_NEVER : now + (int64_t)arg * 1000;
            break;
        case FAULT_RELAY_BLACK_HOLE_OPEN:
            for (size_t i = 0; i < r->nconns; i++)
                r->conns[i]->flow[d].hole_until_us =
                    arg == 0 ? RELAY_NEVER : now + (int64_t)arg * 1000;
            break;
        case FAULT_RELAY_ONE_BYTE:
            ft->is_one_byte = true;
            ft->byte_gap_us = arg;
            break;
        case FAULT_RELAY_CUT:
            ft->cut_left = arg;
            ft->cut_arg = arg;
            break;
        case FAULT_RELAY_RESET:
        case FAULT_RELAY_RESET_NEW:
            break;
        }
    }
    uint64_t mine = ++r->req_seq;
    wake(r);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += RELAY_SET_WAIT_S;
    while (r->done_seq < mine)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) == ETIMEDOUT)
            break;
    int rc = r->done_seq >= mine ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void fault_relay_stats(struct fault_relay *r, struct fault_relay_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    out->open = r->nconns;
    pthread_mutex_unlock(&r->mu);
}

void fault_relay_stop(struct fault_relay *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->is_stopping = true;
    pthread_mutex_unlock(&r->mu);
    wake(r);
    pthread_join(r->thread, NULL);
    for (size_t i = 0; i < r->nconns; i++) {
        conn_close(r->conns[i]);
        free(r->conns[i]);
    }
    close(r->listen_fd);
    close(r->wake_fd);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
