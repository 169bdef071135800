/* loadgen.c - bench_loadgen: a steady, paced write load on a Redis server.
 *
 *   bench_loadgen --port P [--host 127.0.0.1] --rate CMDS_PER_S --duration S
 *                 [--keyspace N] [--value-size B] [--prefix key:] [--interval-us U]
 *                 [--seed X]
 *
 * Sends `SET <prefix><n> <value>` (n pseudo-random in 0 .. keyspace-1, values
 * random text of value-size bytes) over one connection, pipelined: every
 * interval-us microseconds it sends the commands due so far (rate x elapsed
 * time), so the load is steady down to the interval rather than one burst per
 * second. Replies are read and discarded as they come, so neither side's
 * socket fills up. At the end it waits for every reply and prints one line of
 * key=value pairs on stdout: commands, bytes, seconds, rate (achieved
 * commands/s over the sending time), errors (error replies), max_behind (the
 * most commands that were due but not yet buffered, at a tick: only when the
 * buffer was full),
 * max_pending_bytes (the most bytes the socket would not take at once),
 * late_ticks (ticks that woke more than one interval late). Exit status 0, or
 * 1 on a connection error or a short reply count, 2 on bad arguments.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VALUE_POOL    1024         /* distinct values, picked at random */
#define OUT_CAP       (4u << 20)   /* bytes of commands buffered at most */
#define IN_CAP        (256u << 10) /* bytes read at once */
#define MAX_KEY       64           /* prefix + digits */
#define DRAIN_TIMEOUT 30.0         /* seconds to wait for the last replies */

struct options {
    const char *host;
    int port;
    double rate;
    double duration;
    uint64_t keyspace;
    unsigned value_size;
    const char *prefix;
    unsigned interval_us;
    uint64_t seed;
};

struct out_buf {
    char *data;
    size_t start, end; /* bytes [start, end) are still to be written */
};

/* Monotonic time in seconds. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: the next pseudo-random number of *s (never 0 if *s is not 0). */
static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_loadgen --port P [--host 127.0.0.1] --rate CMDS_PER_S "
                    "--duration S [--keyspace N] [--value-size B] [--prefix key:] "
                    "[--interval-us U] [--seed X]\n");
}

/* Parses argv into *o; returns 0, or -1 after printing what is wrong. */
static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.host = "127.0.0.1",
                          .keyspace = 100000,
                          .value_size = 64,
                          .prefix = "key:",
                          .interval_us = 500,
                          .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "bench_loadgen: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--host") == 0)
            o->host = v;
        else if (strcmp(a, "--port") == 0)
            o->port = atoi(v);
        else if (strcmp(a, "--rate") == 0)
            o->rate = strtod(v, NULL);
        else if (strcmp(a, "--duration") == 0)
            o->duration = strtod(v, NULL);
        else if (strcmp(a, "--keyspace") == 0)
            o->keyspace = strtoull(v, NULL, 10);
        else if (strcmp(a, "--value-size") == 0)
            o->value_size = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--prefix") == 0)
            o->prefix = v;
        else if (strcmp(a, "--interval-us") == 0)
            o->interval_us = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "bench_loadgen: unknown option %s\n", a);
            return -1;
        }
    }
    if (o->port <= 0 || o->port > 65535 || o->rate <= 0 || o->duration <= 0 || o->keyspace == 0 ||
        o->value_size == 0 || o->value_size > (1u << 20) || o->interval_us == 0 ||
        strlen(o->prefix) > MAX_KEY - 21) {
        fprintf(stderr, "bench_loadgen: --port, --rate, --duration, --keyspace, --value-size "
                        "and --interval-us must be positive (value size at most 1 MiB, prefix "
                        "short)\n");
        return -1;
    }
    if (o->seed == 0)
        o->seed = 1;
    return 0;
}

/* A TCP connection to host:port with TCP_NODELAY, non-blocking; -1 on error (printed). */
static int connect_to(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bench_loadgen: %s is not an IPv4 address\n", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("bench_loadgen: socket");
        return -1;
    }
    /* connect blocking-style: wait for the non-blocking connect to finish */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        fprintf(stderr, "bench_loadgen: connect %s:%d: %s\n", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, 5000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
        err != 0) {
        fprintf(stderr, "bench_loadgen: connect %s:%d: %s\n", host, port,
                err ? strerror(err) : "timed out");
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Fills pool with VALUE_POOL random base64-like values of size bytes each. */
static void make_values(char *pool, unsigned size, uint64_t *seed)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < (size_t)VALUE_POOL * size; i++)
        pool[i] = abc[rnd(seed) >> 58];
}

/* Appends one SET command to b (which has room for it); returns its length. */
static size_t append_set(struct out_buf *b, const struct options *o, const char *pool,
                         uint64_t *seed)
{
    char key[MAX_KEY];
    int klen = snprintf(key, sizeof key, "%s%llu", o->prefix,
                        (unsigned long long)(rnd(seed) % o->keyspace));
    const char *val = pool + (rnd(seed) % VALUE_POOL) * o->value_size;
    char *p = b->data + b->end;
    p += sprintf(p, "*3\r\n$3\r\nSET\r\n$%d\r\n", klen);
    memcpy(p, key, (size_t)klen);
    p += klen;
    p += sprintf(p, "\r\n$%u\r\n", o->value_size);
    memcpy(p, val, o->value_size);
    p += o->value_size;
    memcpy(p, "\r\n", 2);
    p += 2;
    size_t n = (size_t)(p - (b->data + b->end));
    b->end += n;
    return n;
}

/* Writes what it can of b without blocking; returns 0, or -1 on a socket error (printed). */
static int flush_out(int fd, struct out_buf *b)
{
    while (b->start < b->end) {
        ssize_t n = send(fd, b->data + b->start, b->end - b->start, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            perror("bench_loadgen: send");
            return -1;
        }
        b->start += (size_t)n;
    }
    b->start = b->end = 0;
    return 0;
}

/* Reads and discards the replies available without blocking, counting them
 * in *replies (one line each: +OK or -ERR) and error replies in *errors;
 * returns 0, or -1 when the server closed the connection or on an error. */
static int drain_replies(int fd, char *in, uint64_t *replies, uint64_t *errors, int *at_line_start)
{
    for (;;) {
        ssize_t n = recv(fd, in, IN_CAP, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            perror("bench_loadgen: recv");
            return -1;
        }
        if (n == 0) {
            fprintf(stderr, "bench_loadgen: the server closed the connection\n");
            return -1;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (*at_line_start && in[i] == '-')
                (*errors)++;
            *at_line_start = in[i] == '\n';
            if (in[i] == '\n')
                (*replies)++;
        }
    }
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) < 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t seed = o.seed * 0x9E3779B97F4A7C15ULL + 1;
    char *pool = malloc((size_t)VALUE_POOL * o.value_size);
    size_t cmd_max = 64 + MAX_KEY + o.value_size; /* one SET at most */
    struct out_buf out = {.data = malloc(OUT_CAP + cmd_max)};
    char *in = malloc(IN_CAP);
    if (pool == NULL || out.data == NULL || in == NULL) {
        fprintf(stderr, "bench_loadgen: out of memory\n");
        return 1;
    }
    make_values(pool, o.value_size, &seed);
    int fd = connect_to(o.host, o.port);
    if (fd < 0)
        return 1;

    const uint64_t total = (uint64_t)(o.rate * o.duration + 0.5);
    const double interval = o.interval_us / 1e6;
    uint64_t sent = 0, replies = 0, errors = 0, bytes = 0, max_behind = 0, late_ticks = 0;
    size_t max_pending = 0;
    int at_line_start = 1, rc = 0;
    const double t0 = now_s();
    double next_tick = t0, t_last_sent = t0;
    while (sent < total) {
        double t = now_s();
        if (t - next_tick > interval)
            late_ticks++;
        /* the commands due by now, as much as the buffer takes */
        uint64_t due = (uint64_t)((t - t0) * o.rate);
        if (due > total)
            due = total;
        while (sent < due && out.end < OUT_CAP) {
            bytes += append_set(&out, &o, pool, &seed);
            sent++;
        }
        if (due - sent > max_behind)
            max_behind = due - sent;
        if (flush_out(fd, &out) < 0 ||
            drain_replies(fd, in, &replies, &errors, &at_line_start) < 0) {
            rc = 1;
            break;
        }
        if (out.end - out.start > max_pending)
            max_pending = out.end - out.start;
        if (sent == total) {
            t_last_sent = now_s();
            break;
        }
        /* sleep until the next tick, waking for replies or a writable socket */
        next_tick += interval;
        t = now_s();
        if (next_tick < t)
            next_tick = t; /* fell behind: no burst of catch-up ticks */
        double wait = next_tick - t;
        struct timespec ts = {.tv_sec = (time_t)wait,
                              .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
        struct pollfd p = {.fd = fd, .events = out.end > out.start ? POLLOUT : 0};
        while (ppoll(&p, 1, &ts, NULL) < 0 && errno == EINTR)
            ;
    }
    /* the rest of the output, then every reply */
    const double deadline = now_s() + DRAIN_TIMEOUT;
    while (rc == 0 && (out.end > out.start || replies < sent)) {
        if (flush_out(fd, &out) < 0 ||
            drain_replies(fd, in, &replies, &errors, &at_line_start) < 0) {
            rc = 1;
            break;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "bench_loadgen: %llu of %llu replies after %.0f s\n",
                    (unsigned long long)replies, (unsigned long long)sent, DRAIN_TIMEOUT);
            rc = 1;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN | (out.end > out.start ? POLLOUT : 0)};
        poll(&p, 1, 10);
    }
    const double t_end = now_s();
    double seconds = t_last_sent - t0;
    if (seconds <= 0)
        seconds = t_end - t0;
    printf("commands=%llu bytes=%llu seconds=%.4f rate=%.1f target_rate=%.1f replies=%llu "
           "errors=%llu max_behind=%llu max_pending_bytes=%zu late_ticks=%llu ticks_per_s=%.0f "
           "drain_s=%.4f\n",
           (unsigned long long)sent, (unsigned long long)bytes, seconds,
           seconds > 0 ? (double)sent / seconds : 0.0, o.rate, (unsigned long long)replies,
           (unsigned long long)errors, (unsigned long long)max_behind, max_pending,
           (unsigned long long)late_ticks, 1.0 / interval, t_end - t_last_sent);
    close(fd);
    free(pool);
    free(out.data);
    free(in);
    if (rc == 0 && errors > 0)
        rc = 1;
    return rc;
}
