/* capture.c - `ringsync capture`: a replica of the source that writes what it
 * receives to disk instead of applying it (capture.h, capture_file.h).
 *
 * After the PSYNC handshake it reads the socket in a plain poll/recv loop:
 * the snapshot's bytes go to snapshot.rdb (the diskless EOF mark checked and
 * left out), every later read becomes one stream record with its arrival
 * time. It acknowledges what it has received (REPLCONF ACK) so the source
 * keeps it online, and sends a newline every second during the snapshot.
 */
#include "capture.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture_file.h"
#include "control_link.h"
#include "endpoint.h"
#include "job_file.h"
#include "log.h"
#include "source_link.h"

#define CAPTURE_RECV_BYTES (256 * 1024)
#define CAPTURE_ACK_S      0.1 /* ACK what was received this often while it moves */
#define CAPTURE_FLUSH_S    0.2 /* write buffered records to the files this often */
#define CAPTURE_TIMEOUT_MS 5000

static volatile sig_atomic_t capture_signal;

static void on_signal(int sig)
{
    capture_signal = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct capture_opts {
    const char *source_uri, *out;
    double duration_s; /* 0: until stopped */
    int listening_port;
    int timeout_ms;
    bool quiet;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ringsync capture --source URI --out DIR [options]\n"
               "\n"
               "Records the source's snapshot and command stream, with arrival times, as a\n"
               "replica receives them, into DIR (snapshot.rdb, stream.rsc, MANIFEST). Ctrl-C\n"
               "or SIGTERM finishes the files and exits 0.\n"
               "\n"
               "  --config FILE         the job's options from a YAML job file; flags given too\n"
               "                        override it (README: Job files)\n"
               "  --duration S          stop after S seconds of stream (default: until stopped)\n"
               "  --listening-port N    the port the source shows for this replica\n"
               "  --timeout-ms N        connect and handshake timeout (default 5000)\n"
               "  --quiet               no progress lines\n");
}

static int parse_opts(int argc, char **argv, struct capture_opts *o)
{
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"duration", required_argument, NULL, 'd'},
        {"listening-port", required_argument, NULL, 'l'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->timeout_ms = CAPTURE_TIMEOUT_MS;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        job_file_at(optarg); /* a value from a job file: its place in messages */
        switch (c) {
        case 's':
            o->source_uri = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'd':
            o->duration_s = strtod(optarg, &end);
            if (*end || o->duration_s <= 0) {
                rs_log("--duration takes seconds (> 0), not '%s'", optarg);
                return 2;
            }
            break;
        case 'l':
            o->listening_port = atoi(optarg);
            break;
        case 'T':
            o->timeout_ms = atoi(optarg);
            if (o->timeout_ms <= 0) {
                rs_log("--timeout-ms must be a positive number");
                return 2;
            }
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 2;
        }
    }
    job_file_at(NULL);
    if (optind != argc || o->source_uri == NULL || o->out == NULL) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* The capture as it runs. */
struct capture_run {
    const struct capture_opts *o;
    struct capture_writer *w;
    int fd;
    const char *source;
    double t0;
    /* the snapshot's framing */
    bool in_stream;
    uint64_t rdb_left; /* with a length */
    bool has_len;
    char mark[SOURCE_EOF_MARK_LEN];
    uint8_t tail[SOURCE_EOF_MARK_LEN]; /* diskless: the last bytes, held back */
    size_t tail_len;
    double snapshot_s;
    uint64_t start_offset, stream_bytes;
    double last_ack, last_flush, stream_t0;
    bool source_closed; /* the stream ended by the source, not by us */
};

static void send_ack(struct capture_run *r)
{
    source_link_send_ack(r->fd, r->start_offset + r->stream_bytes);
    r->last_ack = now_s();
}

static void snapshot_done(struct capture_run *r)
{
    r->in_stream = true;
    r->snapshot_s = now_s() - r->t0;
    r->stream_t0 = now_s();
    if (!r->o->quiet)
        fprintf(stderr, "ringsync: capture: snapshot received (%.2f s); recording the stream\n",
                r->snapshot_s);
    send_ack(r); /* a source that sent the snapshot diskless starts the stream on it */
}

/* Takes received bytes: snapshot bytes to snapshot.rdb until its end, the
 * rest as one stream record. */
static int take(struct capture_run *r, const uint8_t *p, size_t n, struct rs_error *err)
{
    uint64_t t_ns = (uint64_t)((now_s() - r->t0) * 1e9);
    if (!r->in_stream && r->has_len) {
        size_t k = n < r->rdb_left ? n : (size_t)r->rdb_left;
        if (capture_writer_snapshot(r->w, p, k, err) < 0)
            return -1;
        r->rdb_left -= k;
        p += k;
        n -= k;
        if (r->rdb_left == 0)
            snapshot_done(r);
    } else if (!r->in_stream) {
        /* Diskless: the snapshot ends with the 40-byte mark, and nothing
         * follows it before our ACK; hold the last 40 bytes back until the
         * source pauses with them equal to the mark. */
        size_t all = r->tail_len + n;
        if (all > SOURCE_EOF_MARK_LEN) {
            size_t out = all - SOURCE_EOF_MARK_LEN;
            size_t from_tail = out < r->tail_len ? out : r->tail_len;
            if (capture_writer_snapshot(r->w, r->tail, from_tail, err) < 0 ||
                capture_writer_snapshot(r->w, p, out - from_tail, err) < 0)
                return -1;
            uint8_t keep[SOURCE_EOF_MARK_LEN];
            size_t k = 0;
            for (size_t i = from_tail; i < r->tail_len; i++)
                keep[k++] = r->tail[i];
            for (size_t i = out - from_tail; i < n; i++)
                keep[k++] = p[i];
            memcpy(r->tail, keep, k);
            r->tail_len = k;
        } else {
            memcpy(r->tail + r->tail_len, p, n);
            r->tail_len = all;
        }
        if (r->tail_len == SOURCE_EOF_MARK_LEN &&
            memcmp(r->tail, r->mark, SOURCE_EOF_MARK_LEN) == 0)
            snapshot_done(r);
        return 0;
    }
    if (n > 0) {
        if (capture_writer_stream(r->w, t_ns, p, n, err) < 0)
            return -1;
        r->stream_bytes += n;
    }
    return 0;
}

static int run(struct capture_run *r, const uint8_t *initial, size_t initial_len)
{
    struct rs_error err = {0};
    if (initial_len > 0 && take(r, initial, initial_len, &err) < 0) {
        fprintf(stderr, "ringsync: capture: %s\n", err.msg);
        return 1;
    }
    uint8_t *buf = malloc(CAPTURE_RECV_BYTES);
    if (buf == NULL) {
        fprintf(stderr, "ringsync: out of memory\n");
        return 1;
    }
    double last_log = now_s(), last_keepalive = now_s();
    int status = -1;
    while (status < 0) {
        if (capture_signal) {
            if (!r->in_stream) {
                fprintf(stderr,
                        "ringsync: capture: stopped by %s before the snapshot was complete; "
                        "nothing kept in %s\n",
                        capture_signal == SIGTERM ? "SIGTERM" : "SIGINT", r->o->out);
                status = 1;
            } else {
                status = 0;
            }
            break;
        }
        double t = now_s();
        if (r->in_stream && r->o->duration_s > 0 && t - r->stream_t0 >= r->o->duration_s) {
            status = 0;
            break;
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 20);
        if (pr < 0 && errno != EINTR) {
            fprintf(stderr, "ringsync: capture: poll: %s\n", strerror(errno));
            status = 1;
            break;
        }
        if (pr > 0) {
            ssize_t n = recv(r->fd, buf, CAPTURE_RECV_BYTES, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, "ringsync: capture: source %s closed the connection %s\n",
                        r->source, r->in_stream ? "during the stream" : "during the snapshot");
                /* what came before is a valid capture of a shorter time:
                 * finish the files, and still exit 1 */
                r->source_closed = r->in_stream;
                status = r->in_stream ? 0 : 1;
                break;
            }
            if (n > 0 && take(r, buf, (size_t)n, &err) < 0) {
                fprintf(stderr, "ringsync: capture: %s\n", err.msg);
                status = 1;
                break;
            }
        }
        t = now_s();
        if (r->in_stream && t - r->last_ack >= CAPTURE_ACK_S)
            send_ack(r);
        if (!r->in_stream && t - last_keepalive >= 1.0) {
            (void)!send(r->fd, "\n", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            last_keepalive = t;
        }
        if (t - r->last_flush >= CAPTURE_FLUSH_S) {
            if (capture_writer_flush(r->w, &err) < 0) {
                fprintf(stderr, "ringsync: capture: %s\n", err.msg);
                status = 1;
                break;
            }
            r->last_flush = t;
        }
        if (!r->o->quiet && t - last_log >= 5.0) {
            if (r->in_stream)
                fprintf(stderr, "ringsync: capture: %.1f s of stream, %" PRIu64 " bytes\n",
                        t - r->stream_t0, r->stream_bytes);
            else
                fprintf(stderr, "ringsync: capture: receiving the snapshot\n");
            last_log = t;
        }
    }
    free(buf);
    return status;
}

int capture_describe(int argc, char **argv,
                     void (*emit)(void *ctx, const char *option, const char *value), void *ctx)
{
    struct capture_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc;
    char b[32];
    emit(ctx, "source", o.source_uri);
    emit(ctx, "out", o.out);
    snprintf(b, sizeof(b), "%g", o.duration_s);
    emit(ctx, "duration", o.duration_s > 0 ? b : NULL);
    snprintf(b, sizeof(b), "%d", o.listening_port);
    emit(ctx, "listening-port", o.listening_port ? b : NULL);
    snprintf(b, sizeof(b), "%d", o.timeout_ms);
    emit(ctx, "timeout-ms", b);
    emit(ctx, "quiet", o.quiet ? "true" : "false");
    return 0;
}

int capture_main(int argc, char **argv)
{
    struct capture_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    struct endpoint source;
    struct rs_error err = {0};
    if (endpoint_parse(o.source_uri, "RINGSYNC_SOURCE_PASSWORD", &source, &err) < 0) {
        fprintf(stderr, "ringsync: --source: %s\n", err.msg);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct capture_writer *w = capture_writer_create(o.out, 0, &err);
    if (w == NULL) {
        fprintf(stderr, "ringsync: capture: %s\n", err.msg);
        return 1;
    }
    struct control_link cl = {0};
    if (control_link_open(&cl, &source, o.timeout_ms, &err) < 0) {
        fprintf(stderr, "ringsync: %s\n", err.msg);
        capture_writer_discard(w);
        return 1;
    }
    struct source_handshake_opts ho = {.listening_port = o.listening_port};
    struct source_handshake_result hr;
    if (source_link_handshake(&cl, &ho, &hr, &err) < 0) {
        fprintf(stderr, "ringsync: %s\n", err.msg);
        control_link_close(&cl);
        capture_writer_discard(w);
        return 1;
    }
    if (!hr.full) {
        fprintf(stderr, "ringsync: source %s answered PSYNC ? -1 with +CONTINUE\n", source.name);
        control_link_close(&cl);
        capture_writer_discard(w);
        return 1;
    }
    struct capture_run r = {
        .o = &o,
        .source = source.name,
        .t0 = now_s(),
        .start_offset = (uint64_t)hr.offset,
        .has_len = hr.eof_mark_len == 0,
        .rdb_left = hr.rdb_len,
    };
    r.last_flush = r.last_ack = r.t0;
    memcpy(r.mark, hr.eof_mark, sizeof(r.mark));
    capture_writer_set_start(w, r.start_offset);
    r.w = w;
    struct rs_slice pending;
    r.fd = control_link_detach(&cl, &pending);
    if (!o.quiet)
        fprintf(stderr, "ringsync: capture: %s -> %s, snapshot %s (replid %s offset %" PRId64 ")\n",
                source.name, o.out, hr.eof_mark_len ? "diskless" : "from disk", hr.replid,
                hr.offset);
    if (r.has_len && r.rdb_left == 0)
        snapshot_done(&r);
    int status = run(&r, (const uint8_t *)pending.p, pending.len);
    control_link_close(&cl);
    close(r.fd);
    if (status == 0) {
        struct capture_meta m = {0};
        snprintf(m.source, sizeof(m.source), "%s", source.name);
        snprintf(m.replid, sizeof(m.replid), "%s", hr.replid);
        m.snapshot_s = r.snapshot_s;
        m.duration_s = now_s() - r.t0;
        m.started = (int64_t)time(NULL) - (int64_t)m.duration_s;
        if (capture_writer_finish(r.w, &m, &err) < 0) {
            fprintf(stderr, "ringsync: capture: %s\n", err.msg);
            status = 1;
        } else if (!o.quiet) {
            fprintf(stderr,
                    "ringsync: capture: done after %.2f s: snapshot %" PRIu64
                    " bytes, stream %" PRIu64 " bytes in %" PRIu64 " records (offsets %" PRIu64
                    " to %" PRIu64 ") in %s\n",
                    m.duration_s, m.snapshot_bytes, m.stream_bytes, m.stream_records,
                    m.start_offset, m.end_offset, o.out);
        }
        if (r.source_closed)
            status = 1;
        capture_writer_free(r.w);
    } else {
        capture_writer_discard(r.w); /* no usable capture: nothing left behind */
    }
    return status;
}
