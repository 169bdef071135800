/* replay.c - the replay feeder: a capture into the write path at its pace,
 * and each command's latency (replay.h). */
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "json_out.h"
#include "resp_scanner.h"

#define REPLAY_TYPES_MAX  256 /* command names told apart; more go under "other" */
#define REPLAY_NAME_MAX   24
#define REPLAY_HIST_SUB   16 /* sub-buckets per power of two: 6 % resolution */
#define REPLAY_HIST_EXP   42 /* up to 2^42 ns, over an hour */
#define REPLAY_HIST_SIZE  (2 * REPLAY_HIST_SUB + (REPLAY_HIST_EXP - 5) * REPLAY_HIST_SUB)
#define REPLAY_CHUNK      (256 * 1024)
#define REPLAY_POLL_NS    100000 /* how often completions are looked at while waiting */
#define REPLAY_PIPE_BYTES (1024 * 1024)

/* Latencies of one command name: a log-linear histogram in nanoseconds. */
struct replay_type {
    char name[REPLAY_NAME_MAX + 1];
    uint64_t count, sum_ns, max_ns;
    uint64_t *hist; /* REPLAY_HIST_SIZE counters */
};

/* A command handed over, waiting for the applied offset to pass its end. */
struct replay_pending {
    uint64_t end;
    double t;
    uint16_t type;
};

struct replay_feeder {
    pthread_t th;
    struct capture_reader *r;
    int fd;
    double speed;
    struct job *job;
    struct resp_scanner *sc;

    struct replay_pending *q;
    size_t q_head, q_len, q_cap; /* a ring that grows */

    struct replay_type types[REPLAY_TYPES_MAX];
    unsigned ntypes;
    int16_t index[1024]; /* open addressing over names: types[] index + 1 */

    /* results */
    double t_start, snapshot_applied_s, stream_t0, stream_end_s;
    uint64_t commands, stream_bytes, cut_bytes;
    double max_behind_s; /* the most a record was handed over after its time */
    double recorded_s;   /* from the first stream record's arrival to the last's */
    bool handed_all, applied_all;
    uint64_t final_applied; /* the job's applied offset once its workers ended */
    char error[512];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool job_over(struct job *job)
{
    return atomic_load(&job->failed) || atomic_load(&job->stop);
}

/* ------------------------------------------------------------- histograms */

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * REPLAY_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 5 */
    if (e >= REPLAY_HIST_EXP)
        return REPLAY_HIST_SIZE - 1;
    return 2 * REPLAY_HIST_SUB + (e - 5) * REPLAY_HIST_SUB +
           (unsigned)((v >> (e - 4)) & (REPLAY_HIST_SUB - 1));
}

/* The middle of bucket i, in ns. */
static double hist_value(unsigned i)
{
    if (i < 2 * REPLAY_HIST_SUB)
        return i;
    unsigned e = 5 + (i - 2 * REPLAY_HIST_SUB) / REPLAY_HIST_SUB;
    unsigned sub = (i - 2 * REPLAY_HIST_SUB) % REPLAY_HIST_SUB;
    double lo = ldexp(REPLAY_HIST_SUB + sub, (int)e - 4);
    return lo + ldexp(1, (int)e - 4) / 2;
}

/* The q-quantile (0..1) of the counts, in ns. */
static double hist_quantile(const uint64_t *h, uint64_t count, double q, uint64_t max_ns)
{
    if (count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < REPLAY_HIST_SIZE; i++) {
        seen += h[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return v > (double)max_ns ? (double)max_ns : v;
        }
    }
    return (double)max_ns;
}

/* ---------------------------------------------------------- command names */

static uint16_t type_of(struct replay_feeder *f, const struct rs_slice *name)
{
    char up[REPLAY_NAME_MAX + 1];
    size_t n = name->len < REPLAY_NAME_MAX ? name->len : REPLAY_NAME_MAX;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        char c = (char)name->p[i];
        up[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
        h = (h ^ (uint8_t)up[i]) * 16777619u;
    }
    up[n] = 0;
    size_t mask = sizeof(f->index) / sizeof(f->index[0]) - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        int t = f->index[i];
        if (t == 0) {
            if (f->ntypes >= REPLAY_TYPES_MAX - 1)
                return REPLAY_TYPES_MAX - 1; /* the last one is "other" */
            struct replay_type *ty = &f->types[f->ntypes];
            memcpy(ty->name, up, n + 1);
            ty->hist = calloc(REPLAY_HIST_SIZE, sizeof(uint64_t));
            if (ty->hist == NULL)
                return REPLAY_TYPES_MAX - 1;
            f->index[i] = (int16_t)(f->ntypes + 1);
            return (uint16_t)f->ntypes++;
        }
        if (strcmp(f->types[t - 1].name, up) == 0)
            return (uint16_t)(t - 1);
    }
}

static void record(struct replay_feeder *f, uint16_t type, double latency_s)
{
    struct replay_type *ty = &f->types[type];
    if (ty->hist == NULL) { /* "other" */
        snprintf(ty->name, sizeof(ty->name), "other");
        ty->hist = calloc(REPLAY_HIST_SIZE, sizeof(uint64_t));
        if (ty->hist == NULL)
            return;
    }
    uint64_t ns = latency_s > 0 ? (uint64_t)(latency_s * 1e9) : 0;
    ty->hist[hist_index(ns)]++;
    ty->count++;
    ty->sum_ns += ns;
    if (ns > ty->max_ns)
        ty->max_ns = ns;
}

/* ------------------------------------------------------ pending commands */

static int push(struct replay_feeder *f, uint64_t end, uint16_t type)
{
    if (f->q_len == f->q_cap) {
        size_t cap = f->q_cap ? f->q_cap * 2 : 4096;
        struct replay_pending *q = malloc(cap * sizeof(*q));
        if (q == NULL)
            return -1;
        for (size_t i = 0; i < f->q_len; i++)
            q[i] = f->q[(f->q_head + i) % f->q_cap];
        free(f->q);
        f->q = q;
        f->q_cap = cap;
        f->q_head = 0;
    }
    f->q[(f->q_head + f->q_len) % f->q_cap] = (struct replay_pending){end, 0, type};
    f->q_len++;
    return 0;
}

/* Stamps the last n pushed commands with the time their bytes went out. */
static void stamp(struct replay_feeder *f, size_t n, double t)
{
    for (size_t i = f->q_len - n; i < f->q_len; i++)
        f->q[(f->q_head + i) % f->q_cap].t = t;
}

/* Records every pending command the applied offset has passed (all of them
 * when `all`: the job ended with everything applied). */
static void complete(struct replay_feeder *f, bool all, size_t unstamped)
{
    uint64_t applied = atomic_load_explicit(&f->job->stream_applied, memory_order_relaxed);
    double t = now_s();
    while (f->q_len > unstamped) {
        struct replay_pending *p = &f->q[f->q_head];
        if (!all && p->end > applied)
            break;
        record(f, p->type, t - p->t);
        f->q_head = (f->q_head + 1) % f->q_cap;
        f->q_len--;
    }
    if (f->q_len == 0 && f->stream_t0 > 0)
        f->stream_end_s = t - f->stream_t0;
}

/* --------------------------------------------------------------- the pipe */

/* Writes n bytes into the pipe, looking at completions while it is full.
 * 0, or -1 when the job ended first (or the pipe broke). */
static int put(struct replay_feeder *f, const uint8_t *p, size_t n, size_t unstamped)
{
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            if (!job_over(f->job))
                snprintf(f->error, sizeof(f->error), "cannot write to the write path: %s",
                         strerror(errno));
            return -1;
        }
        if (job_over(f->job))
            return -1;
        struct pollfd pfd = {.fd = f->fd, .events = POLLOUT};
        poll(&pfd, 1, 1);
        if (f->stream_t0 > 0)
            complete(f, false, unstamped);
    }
    return 0;
}

/* Waits until time `due`, looking at completions every REPLAY_POLL_NS. */
static void wait_until(struct replay_feeder *f, double due)
{
    for (;;) {
        double left = due - now_s();
        if (left <= 0 || job_over(f->job))
            return;
        double step = left < REPLAY_POLL_NS / 1e9 ? left : REPLAY_POLL_NS / 1e9;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
        complete(f, false, 0);
    }
}

static int feed_snapshot(struct replay_feeder *f)
{
    int fd = open(f->r->snapshot_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(f->error, sizeof(f->error), "cannot open %.300s: %s", f->r->snapshot_path,
                 strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_CHUNK);
    ssize_t n = 0;
    int rc = buf != NULL ? 0 : -1;
    while (rc == 0 && (n = read(fd, buf, REPLAY_CHUNK)) > 0)
        rc = put(f, buf, (size_t)n, 0);
    if (n < 0) {
        snprintf(f->error, sizeof(f->error), "cannot read %.300s: %s", f->r->snapshot_path,
                 strerror(errno));
        rc = -1;
    }
    free(buf);
    close(fd);
    return rc;
}

/* Scans a record's commands into the pending queue; returns how many. The
 * bytes of a command the capture's end cut off are counted in cut_bytes. */
static long scan_record(struct replay_feeder *f, const struct capture_record *rec)
{
    if (resp_scanner_feed(f->sc, rec->p, rec->len) < 0)
        return -1;
    long n = 0;
    struct resp_cmd cmd;
    struct rs_error err = {0};
    int rc;
    while ((rc = resp_scanner_next(f->sc, &cmd, &err)) == 1) {
        const struct rs_slice *a0 = &cmd.argv[0];
        bool replication_only =
            (a0->len == 4 && strncasecmp((const char *)a0->p, "ping", 4) == 0) ||
            (a0->len == 8 && strncasecmp((const char *)a0->p, "replconf", 8) == 0);
        if (replication_only)
            continue;
        if (push(f, cmd.end_offset, type_of(f, a0)) < 0)
            return -1;
        n++;
    }
    if (rc < 0) {
        snprintf(f->error, sizeof(f->error),
                 "the capture's stream is not RESP: %s at offset %" PRIu64, err.msg, err.offset);
        return -1;
    }
    return n;
}

static void *feeder_main(void *arg)
{
    struct replay_feeder *f = arg;
    f->t_start = now_s();
    if (feed_snapshot(f) < 0)
        goto out;
    while (!atomic_load(&f->job->snapshot_applied)) {
        if (job_over(f->job) || atomic_load(&f->job->finished))
            goto out;
        struct timespec ts = {0, REPLAY_POLL_NS};
        nanosleep(&ts, NULL);
    }
    f->snapshot_applied_s = now_s() - f->t_start;
    f->stream_t0 = now_s();
    struct capture_record rec;
    struct rs_error err = {0};
    uint64_t t_first = 0;
    bool first = true;
    int rc;
    uint64_t records = 0;
    while ((rc = capture_reader_next(f->r, &rec, &err)) == 1) {
        records++;
        if (first)
            t_first = rec.t_ns, first = false;
        f->recorded_s = (double)(rec.t_ns - t_first) / 1e9;
        double due =
            f->stream_t0 + (f->speed > 0 ? (double)(rec.t_ns - t_first) / 1e9 / f->speed : 0);
        if (f->speed > 0)
            wait_until(f, due);
        if (job_over(f->job))
            goto out;
        long n = scan_record(f, &rec);
        if (n < 0)
            goto out;
        size_t len = rec.len;
        if (records == f->r->meta.stream_records) { /* the last: no cut command into the pipe */
            f->cut_bytes = resp_scanner_pending(f->sc);
            len -= f->cut_bytes;
        }
        double late = now_s() - due;
        if (f->speed > 0 && late > f->max_behind_s)
            f->max_behind_s = late;
        if (put(f, rec.p, len, (size_t)n) < 0)
            goto out;
        stamp(f, (size_t)n, now_s());
        f->commands += (uint64_t)n;
        f->stream_bytes += len;
        complete(f, false, 0);
    }
    if (rc < 0) {
        snprintf(f->error, sizeof(f->error), "%s", err.msg);
        goto out;
    }
    f->handed_all = true;
    close(f->fd); /* the end of the input: the job finishes once it is applied */
    f->fd = -1;
    while (f->q_len > 0 && !job_over(f->job)) {
        if (atomic_load(&f->job->finished)) {
            complete(f, true, 0);
            break;
        }
        struct timespec ts = {0, REPLAY_POLL_NS};
        nanosleep(&ts, NULL);
        complete(f, false, 0);
    }
    f->applied_all = f->q_len == 0;
    if (f->stream_end_s == 0)
        f->stream_end_s = now_s() - f->stream_t0;
out:
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    return NULL;
}

struct replay_feeder *replay_feeder_start(struct capture_reader *r, int pipe_fd, double speed,
                                          struct job *job)
{
    struct replay_feeder *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->r = r;
    f->fd = pipe_fd;
    f->speed = speed;
    f->job = job;
    f->sc = resp_scanner_new(r->meta.start_offset);
    (void)fcntl(pipe_fd, F_SETPIPE_SZ, REPLAY_PIPE_BYTES); /* best effort */
    int fl = fcntl(pipe_fd, F_GETFL);
    if (f->sc == NULL || fl < 0 || fcntl(pipe_fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        pthread_create(&f->th, NULL, feeder_main, f) != 0) {
        resp_scanner_free(f->sc);
        free(f);
        return NULL;
    }
    return f;
}

void replay_feeder_join(struct replay_feeder *f)
{
    pthread_join(f->th, NULL);
    f->final_applied = atomic_load(&f->job->stream_applied);
}

const char *replay_error(const struct replay_feeder *f)
{
    return f->error[0] ? f->error : NULL;
}

bool replay_complete(const struct replay_feeder *f)
{
    /* the job's own word too: its applied offset reached the capture's end */
    return f->handed_all && f->applied_all &&
           f->final_applied + f->cut_bytes >= f->r->meta.end_offset;
}

void replay_feeder_free(struct replay_feeder *f)
{
    if (f == NULL)
        return;
    for (unsigned i = 0; i < REPLAY_TYPES_MAX; i++)
        free(f->types[i].hist);
    free(f->q);
    resp_scanner_free(f->sc);
    free(f);
}

/* ---------------------------------------------------------------- report */

struct replay_row {
    const char *name;
    uint64_t count;
    double per_s, p50, p90, p99, p999, max, mean; /* latencies in ms */
};

static void row_of(struct replay_row *row, const char *name, const uint64_t *hist, uint64_t count,
                   uint64_t sum_ns, uint64_t max_ns, double secs)
{
    row->name = name;
    row->count = count;
    row->per_s = secs > 0 ? (double)count / secs : 0;
    row->p50 = hist_quantile(hist, count, 0.50, max_ns) / 1e6;
    row->p90 = hist_quantile(hist, count, 0.90, max_ns) / 1e6;
    row->p99 = hist_quantile(hist, count, 0.99, max_ns) / 1e6;
    row->p999 = hist_quantile(hist, count, 0.999, max_ns) / 1e6;
    row->max = (double)max_ns / 1e6;
    row->mean = count ? (double)sum_ns / (double)count / 1e6 : 0;
}

static int by_count(const void *a, const void *b)
{
    const struct replay_row *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->name, y->name);
}

static void json_row(struct json_out *j, const struct replay_row *r)
{
    json_out_text(j, "{\"command\":");
    json_out_string(j, r->name, strlen(r->name));
    json_out_text(j, ",\"count\":");
    json_out_u64(j, r->count);
    json_out_text(j, ",\"per_s\":");
    json_out_double(j, r->per_s);
    json_out_text(j, ",\"latency_ms\":{\"p50\":");
    json_out_double(j, r->p50);
    json_out_text(j, ",\"p90\":");
    json_out_double(j, r->p90);
    json_out_text(j, ",\"p99\":");
    json_out_double(j, r->p99);
    json_out_text(j, ",\"p99.9\":");
    json_out_double(j, r->p999);
    json_out_text(j, ",\"max\":");
    json_out_double(j, r->max);
    json_out_text(j, ",\"mean\":");
    json_out_double(j, r->mean);
    json_out_text(j, "}}");
}

int replay_report(const struct replay_feeder *f, FILE *out, const char *json_path,
                  const char *capture_dir, const char *target)
{
    double secs = f->stream_end_s;
    struct replay_row rows[REPLAY_TYPES_MAX];
    unsigned nrows = 0;
    uint64_t *all = calloc(REPLAY_HIST_SIZE, sizeof(uint64_t));
    if (all == NULL)
        return -1;
    uint64_t all_count = 0, all_sum = 0, all_max = 0;
    for (unsigned i = 0; i < REPLAY_TYPES_MAX; i++) {
        const struct replay_type *t = &f->types[i];
        if (t->hist == NULL || t->count == 0)
            continue;
        row_of(&rows[nrows++], t->name, t->hist, t->count, t->sum_ns, t->max_ns, secs);
        for (unsigned k = 0; k < REPLAY_HIST_SIZE; k++)
            all[k] += t->hist[k];
        all_count += t->count;
        all_sum += t->sum_ns;
        if (t->max_ns > all_max)
            all_max = t->max_ns;
    }
    qsort(rows, nrows, sizeof(rows[0]), by_count);
    struct replay_row total;
    row_of(&total, "all", all, all_count, all_sum, all_max, secs);
    free(all);
    const struct capture_meta *m = &f->r->meta;
    double recorded = f->recorded_s;
    char speed[32];
    if (f->speed > 0)
        snprintf(speed, sizeof(speed), "%gx", f->speed);
    else
        snprintf(speed, sizeof(speed), "max");
    fprintf(out,
            "replay of %s into %s at %s: snapshot of %" PRIu64 " bytes applied in %.3f s; "
            "stream of %" PRIu64 " commands (%" PRIu64 " bytes) applied in %.3f s, recorded over "
            "%.3f s; %.0f commands/s; handed over at most %.2f ms behind its time\n",
            capture_dir, target, speed, m->snapshot_bytes, f->snapshot_applied_s, f->commands,
            f->stream_bytes, secs, recorded, secs > 0 ? (double)f->commands / secs : 0,
            f->max_behind_s * 1e3);
    fprintf(out, "%-20s %10s %10s %9s %9s %9s %9s %9s\n", "command", "count", "per s", "p50 ms",
            "p90 ms", "p99 ms", "p99.9 ms", "max ms");
    for (unsigned i = 0; i <= nrows; i++) {
        const struct replay_row *r = i < nrows ? &rows[i] : &total;
        fprintf(out, "%-20s %10" PRIu64 " %10.0f %9.3f %9.3f %9.3f %9.3f %9.3f\n", r->name,
                r->count, r->per_s, r->p50, r->p90, r->p99, r->p999, r->max);
    }
    if (json_path == NULL)
        return 0;
    FILE *fp = fopen(json_path, "we");
    if (fp == NULL) {
        fprintf(stderr, "ringsync: cannot write %s: %s\n", json_path, strerror(errno));
        return -1;
    }
    struct json_out j;
    json_out_init(&j, fp, 0);
    json_out_text(&j, "{\"capture\":");
    json_out_string(&j, capture_dir, strlen(capture_dir));
    json_out_text(&j, ",\"target\":");
    json_out_string(&j, target, strlen(target));
    json_out_text(&j, ",\"speed\":");
    if (f->speed > 0)
        json_out_double(&j, f->speed);
    else
        json_out_text(&j, "\"max\"");
    json_out_text(&j, ",\"snapshot\":{\"bytes\":");
    json_out_u64(&j, m->snapshot_bytes);
    json_out_text(&j, ",\"applied_s\":");
    json_out_double(&j, f->snapshot_applied_s);
    json_out_text(&j, "},\"stream\":{\"commands\":");
    json_out_u64(&j, f->commands);
    json_out_text(&j, ",\"bytes\":");
    json_out_u64(&j, f->stream_bytes);
    json_out_text(&j, ",\"cut_bytes\":");
    json_out_u64(&j, f->cut_bytes);
    json_out_text(&j, ",\"recorded_s\":");
    json_out_double(&j, recorded);
    json_out_text(&j, ",\"applied_s\":");
    json_out_double(&j, secs);
    json_out_text(&j, ",\"per_s\":");
    json_out_double(&j, secs > 0 ? (double)f->commands / secs : 0);
    json_out_text(&j, ",\"max_behind_s\":");
    json_out_double(&j, f->max_behind_s);
    json_out_text(&j, ",\"applied_offset\":");
    json_out_u64(&j, f->final_applied);
    json_out_text(&j, ",\"end_offset\":");
    json_out_u64(&j, m->end_offset);
    json_out_text(&j, ",\"complete\":");
    json_out_text(&j, replay_complete(f) ? "true" : "false");
    json_out_text(&j, "},\"commands\":[");
    for (unsigned i = 0; i < nrows; i++) {
        if (i)
            json_out_char(&j, ',');
        json_row(&j, &rows[i]);
    }
    json_out_text(&j, "],\"all\":");
    json_row(&j, &total);
    json_out_char(&j, '}');
    json_out_end_line(&j);
    int rc = json_out_flush(&j);
    json_out_deinit(&j);
    if (fclose(fp) != 0 || rc != 0) {
        fprintf(stderr, "ringsync: cannot write %s\n", json_path);
        return -1;
    }
    return 0;
}
