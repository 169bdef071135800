/* status_server.c - the status endpoint's threads and its registry of jobs
 * (see status_server.h). */
#include "status_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "job.h"
#include "json_out.h"
#include "lag_clock.h"
#include "log.h"
#include "heartbeat.h"
#include "rate_limit.h"
#include "status_report.h"
#include "sync_run.h"
#include "worker.h"

#define STATUS_MAX_JOBS    256 /* a cluster source's masters */
#define SAMPLE_EVERY_MS    200
#define SAMPLES            (60 * 1000 / SAMPLE_EVERY_MS + 1) /* 60 s of them, and one */
#define SAMPLES_PER_SECOND (1000 / SAMPLE_EVERY_MS)

/* One destination node of a job, kept across its attaches. */
struct slot_node {
    char name[STATUS_NAME_MAX];
    struct worker_link_counts base; /* of the attaches before */
    struct worker_link_counts last; /* of the current (or last) attach */
    unsigned index;                 /* the node's index in the attached job (UINT32_MAX: gone) */
};

/* One job (a source shard), attached or not. */
struct slot {
    bool used;
    char key[CHECKPOINT_JOB_MAX + STATUS_NAME_MAX];
    char name[STATUS_NAME_MAX];
    char replid[48];
    struct job *job; /* NULL: detached */
    unsigned nworkers;
    uint64_t stream_start, rdb_total;
    int64_t t0_ns;
    unsigned attaches;
    struct slot_node *nodes;
    unsigned nnodes;
    /* the last numbers read (kept once detached) */
    enum status_state state;
    char reason[STATUS_REASON_MAX];
    uint64_t received, applied, snapshot_bytes, snapshot_keys, stream_commands;
    uint64_t source_reconnects_base, source_reconnects, failures;
    uint64_t ops_base; /* snapshot keys and stream commands of the attaches before */
    double snapshot_elapsed_s;
    bool snapshot_done;
};

struct sample {
    int64_t t_ns;
    uint64_t ops;
};

static struct {
    struct MHD_Daemon *daemon;
    int port;
    double cutover_lag_ms;
    int64_t t0_ns;
    pthread_mutex_t mu; /* slots, samples, errors */
    struct slot slots[STATUS_MAX_JOBS];
    /* the sampler */
    pthread_t sampler;
    bool sampler_on;
    pthread_cond_t cond;
    bool stopping;
    struct sample samples[SAMPLES];
    unsigned nsamples, next; /* ring */
    uint64_t errors;
    int64_t last_error_ns; /* 0: none */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static _Atomic bool running;

/* ------------------------------------------------------------- reading jobs */

/* The slot's live numbers from its job (under mu). */
static void read_job(struct slot *sl)
{
    struct job *job = sl->job;
    for (unsigned k = 0; k < sl->nnodes; k++) {
        struct slot_node *n = &sl->nodes[k];
        if (n->index == UINT32_MAX)
            continue;
        struct worker_link_counts c = {0};
        for (unsigned w = 0; w < sl->nworkers; w++)
            if (job->workers[w] != NULL)
                worker_add_link_counts(job->workers[w], n->index, &c);
        n->last = c;
    }
    bool applied = atomic_load_explicit(&job->snapshot_applied, memory_order_relaxed);
    uint64_t routed = atomic_load_explicit(&job->stream_received, memory_order_relaxed);
    uint64_t read = atomic_load_explicit(&job->stream_read, memory_order_relaxed);
    sl->received = read > routed ? read : routed;
    if (sl->received < sl->stream_start && applied)
        sl->received = sl->stream_start;
    sl->applied = atomic_load_explicit(&job->stream_applied, memory_order_relaxed);
    sl->snapshot_bytes = atomic_load_explicit(&job->input_bytes, memory_order_relaxed);
    sl->snapshot_keys = atomic_load_explicit(&job->keys_read, memory_order_relaxed);
    sl->stream_commands = atomic_load_explicit(&job->stream_cmds, memory_order_relaxed);
    sl->source_reconnects = sl->source_reconnects_base +
                            atomic_load_explicit(&job->source_reconnects, memory_order_relaxed);
    if (!sl->snapshot_done)
        sl->snapshot_elapsed_s = (double)(lag_clock_now_ns() - sl->t0_ns) / 1e9;
    sl->snapshot_done = applied;
    sl->reason[0] = '\0';
    /* the failure message is written before failed is set (job.c, under its
     * mutex; the store is seq_cst): once failed reads 1, fail_msg is whole */
    if (atomic_load(&job->failed)) {
        bool lost = atomic_load(&job->dest_lost);
        sl->state = lost ? STATUS_CONNECTING : STATUS_FAILED;
        snprintf(sl->reason, sizeof(sl->reason), "%s", job->fail_msg);
    } else if (atomic_load_explicit(&job->drain, memory_order_relaxed) ||
               atomic_load_explicit(&job->stop, memory_order_relaxed) || sync_is_stopping()) {
        sl->state = STATUS_STOPPING;
    } else if (atomic_load_explicit(&job->finished, memory_order_relaxed)) {
        sl->state = STATUS_STOPPED;
    } else if (atomic_load_explicit(&job->source_lost, memory_order_relaxed)) {
        sl->state = STATUS_CONNECTING;
        snprintf(sl->reason, sizeof(sl->reason), "the source's link was lost: reconnecting");
    } else {
        sl->state = applied ? STATUS_INCREMENTAL : STATUS_FULL_SYNC;
    }
}

/* Errors so far, of every kind, and the source's operations applied or
 * on their way (snapshot keys, stream commands routed) (under mu). */
static void totals(uint64_t *ops, uint64_t *errors)
{
    *ops = *errors = 0;
    for (unsigned i = 0; i < STATUS_MAX_JOBS; i++) {
        struct slot *sl = &S.slots[i];
        if (!sl->used)
            continue;
        if (sl->job != NULL)
            read_job(sl);
        *errors += sl->source_reconnects + sl->failures + (sl->attaches - 1);
        *ops += sl->ops_base + (sl->job != NULL ? sl->snapshot_keys + sl->stream_commands : 0);
        for (unsigned k = 0; k < sl->nnodes; k++) {
            const struct slot_node *n = &sl->nodes[k];
            *errors += n->base.retried + n->last.retried + n->base.skipped + n->last.skipped;
        }
    }
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Operations per second between now and the sample `back` samples ago (or
 * the oldest one). Under mu. */
static double rate(unsigned back)
{
    if (S.nsamples < 2)
        return 0;
    if (back > S.nsamples - 1)
        back = S.nsamples - 1;
    const struct sample *now = &S.samples[(S.next + SAMPLES - 1) % SAMPLES];
    const struct sample *then = &S.samples[(S.next + SAMPLES - 1 - back) % SAMPLES];
    double dt = (double)(now->t_ns - then->t_ns) / 1e9;
    return dt > 0 && now->ops >= then->ops ? (double)(now->ops - then->ops) / dt : 0;
}

/* The snapshot of every job; the caller frees shards and nodes. Under mu. */
static int take(struct status_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    unsigned nshards = 0, nnodes = 0;
    for (unsigned i = 0; i < STATUS_MAX_JOBS; i++)
        if (S.slots[i].used) {
            nshards++;
            nnodes += S.slots[i].nnodes;
        }
    s->shards = calloc(nshards ? nshards : 1, sizeof(*s->shards));
    s->nodes = calloc(nnodes ? nnodes : 1, sizeof(*s->nodes));
    if (s->shards == NULL || s->nodes == NULL) {
        free(s->shards);
        free(s->nodes);
        return -1;
    }
    int64_t now = lag_clock_now_ns();
    for (unsigned i = 0; i < STATUS_MAX_JOBS; i++) {
        struct slot *sl = &S.slots[i];
        if (!sl->used)
            continue;
        if (sl->job != NULL)
            read_job(sl);
        struct status_shard *sh = &s->shards[s->nshards++];
        snprintf(sh->name, sizeof(sh->name), "%s", sl->name);
        snprintf(sh->replid, sizeof(sh->replid), "%s", sl->replid);
        snprintf(sh->reason, sizeof(sh->reason), "%s", sl->reason);
        sh->state = sl->state;
        sh->received = sl->received;
        sh->applied = sl->applied;
        sh->snapshot_bytes = sl->snapshot_bytes;
        sh->snapshot_total = sl->rdb_total;
        sh->snapshot_keys = sl->snapshot_keys;
        sh->snapshot_elapsed_s = sl->snapshot_elapsed_s;
        sh->stream_commands = sl->stream_commands;
        sh->source_reconnects = sl->source_reconnects;
        if (sl->job != NULL && sl->snapshot_done) {
            int64_t since = atomic_load_explicit(&sl->job->lag_since_ns, memory_order_relaxed);
            sh->has_lag_ms = true;
            sh->lag_ms = since > 0 && now > since ? (double)(now - since) / 1e6 : 0;
        }
        if (sl->job != NULL) {
            int64_t at = atomic_load_explicit(&sl->job->heartbeat_applied_ms, memory_order_relaxed);
            if (at > 0) {
                sh->has_heartbeat = true;
                sh->heartbeat_lag_ms =
                    (double)atomic_load_explicit(&sl->job->heartbeat_lag_ms, memory_order_relaxed);
                int64_t wall = heartbeat_now_ms();
                sh->heartbeat_age_s = wall > at ? (double)(wall - at) / 1e3 : 0;
            }
        }
        sh->first_node = s->nnodes;
        for (unsigned k = 0; k < sl->nnodes; k++) {
            const struct slot_node *n = &sl->nodes[k];
            struct status_node *o = &s->nodes[s->nnodes++];
            snprintf(o->name, sizeof(o->name), "%s", n->name);
            o->sent = n->base.sent + n->last.sent;
            o->acked = n->base.acked + n->last.acked;
            o->retried = n->base.retried + n->last.retried;
            o->skipped = n->base.skipped + n->last.skipped;
            o->moved = n->base.moved + n->last.moved;
            o->asked = n->base.asked + n->last.asked;
            o->reconnects = sl->attaches - 1;
        }
        sh->nnodes = s->nnodes - sh->first_node;
    }
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    s->time_s = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;
    s->uptime_s = (double)(now - S.t0_ns) / 1e9;
    s->ops_1s = rate(SAMPLES_PER_SECOND);
    s->ops_60s = rate(SAMPLES - 1);
    for (unsigned i = 0; i < STATUS_MAX_JOBS; i++)
        if (S.slots[i].used && S.slots[i].job != NULL) {
            const struct job *j = S.slots[i].job;
            s->spill_bytes += atomic_load_explicit(&j->spill_bytes, memory_order_relaxed);
            const struct rate_limit *lims[2] = {j->limit_snapshot, j->limit_stream};
            for (int k = 0; k < 2; k++)
                if (lims[k] != NULL && (k == 0 || lims[1] != lims[0])) {
                    s->rate_limited |= rate_limit_holding(lims[k]);
                    s->rate_limit_held_s += (double)rate_limit_held_ns(lims[k], now) / 1e9;
                }
        }
    s->rss_bytes = rss_bytes();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    s->errors = S.errors;
    s->last_error_age_s = S.last_error_ns ? (double)(now - S.last_error_ns) / 1e9 : -1;
    s->cutover_lag_ms = S.cutover_lag_ms;
    status_report_decide(s);
    return 0;
}

/* ------------------------------------------------------------------ sampler */

static void *sampler_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.mu);
    while (!S.stopping) {
        uint64_t ops, errors;
        totals(&ops, &errors);
        int64_t now = lag_clock_now_ns();
        S.samples[S.next] = (struct sample){.t_ns = now, .ops = ops};
        S.next = (S.next + 1) % SAMPLES;
        if (S.nsamples < SAMPLES)
            S.nsamples++;
        if (errors != S.errors) {
            S.errors = errors;
            S.last_error_ns = now;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += SAMPLE_EVERY_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_clockwait(&S.cond, &S.mu, CLOCK_MONOTONIC, &until); /* until is monotonic */
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

/* --------------------------------------------------------------------- HTTP */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body,
                             size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result plain(struct MHD_Connection *c, unsigned code, const char *text)
{
    char *body = strdup(text);
    return body ? reply(c, code, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **req)
{
    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)req;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return plain(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    void (*render)(const struct status_snapshot *, struct json_out *);
    const char *type;
    if (strcmp(url, "/status") == 0) {
        render = status_report_json;
        type = "application/json";
    } else if (strcmp(url, "/status.txt") == 0) {
        render = status_report_text;
        type = "text/plain; charset=utf-8";
    } else if (strcmp(url, "/metrics") == 0) {
        render = status_report_metrics;
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        return plain(c, MHD_HTTP_NOT_FOUND, "not found: /status, /status.txt or /metrics\n");
    }
    struct status_snapshot s;
    pthread_mutex_lock(&S.mu);
    int rc = take(&s);
    pthread_mutex_unlock(&S.mu);
    if (rc < 0)
        return plain(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct json_out o;
    json_out_init(&o, NULL, 0);
    render(&s, &o);
    free(s.shards);
    free(s.nodes);
    if (json_out_error(&o) != 0) {
        json_out_deinit(&o);
        return plain(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    return reply(c, MHD_HTTP_OK, type, o.buf, o.len); /* MHD frees o.buf */
}

/* ------------------------------------------------------------ start and stop */

/* addr as a socket address: "HOST:PORT" or "[V6]:PORT". 0, or -1 after saying why. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0') {
        rs_log("--status-addr takes HOST:PORT (PORT 0: a free one) or none, not '%s'", addr);
        return -1;
    }
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        rs_log("--status-addr: host too long");
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        rs_log("--status-addr: '%s' is not a port (0 to 65535)", colon + 1);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int e = getaddrinfo(host, colon + 1, &hints, &ai);
    if (e != 0 || ai == NULL) {
        rs_log("--status-addr: cannot resolve '%s': %s", host, gai_strerror(e));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return false;
}

int status_server_start(const char *addr, double cutover_lag_ms)
{
    if (addr == NULL)
        addr = STATUS_SERVER_ADDR_DEFAULT;
    if (strcmp(addr, "none") == 0)
        return 0;
    struct sockaddr_storage ss = {0};
    socklen_t sslen = 0;
    if (parse_addr(addr, &ss, &sslen) < 0)
        return 2;
    S.cutover_lag_ms = cutover_lag_ms;
    S.t0_ns = lag_clock_now_ns();
    /* the threads take no signal: SIGINT and SIGTERM are the main thread's */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    S.daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    int err = errno;
    if (S.daemon != NULL) {
        S.stopping = false;
        S.sampler_on = pthread_create(&S.sampler, NULL, sampler_main, NULL) == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (S.daemon == NULL) {
        rs_log("cannot serve the status on %s: %s (--status-addr HOST:PORT, or none)", addr,
               strerror(err));
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.daemon, MHD_DAEMON_INFO_BIND_PORT);
    S.port = info != NULL ? info->port : 0;
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
    bool v6 = ss.ss_family == AF_INET6;
    rs_log("status on http://%s%s%s:%d/status and /metrics (ringsync status --status-addr "
           "%s%s%s:%d)%s",
           v6 ? "[" : "", host, v6 ? "]" : "", S.port, v6 ? "[" : "", host, v6 ? "]" : "", S.port,
           is_loopback(&ss) ? ""
                            : "; listening beyond loopback, as --status-addr asks: whoever "
                              "reaches it sees the job's status (never a password)");
    atomic_store(&running, true);
    return 0;
}

void status_server_stop(void)
{
    if (!atomic_load(&running))
        return;
    atomic_store(&running, false);
    MHD_stop_daemon(S.daemon);
    S.daemon = NULL;
    if (S.sampler_on) {
        pthread_mutex_lock(&S.mu);
        S.stopping = true;
        pthread_cond_signal(&S.cond);
        pthread_mutex_unlock(&S.mu);
        pthread_join(S.sampler, NULL);
        S.sampler_on = false;
    }
    for (unsigned i = 0; i < STATUS_MAX_JOBS; i++) {
        RS_ASSERT(S.slots[i].job == NULL); /* every job detached */
        free(S.slots[i].nodes);
    }
    memset(S.slots, 0, sizeof(S.slots));
    S.port = 0;
}

int status_server_port(void)
{
    return atomic_load(&running) ? S.port : 0;
}

/* ------------------------------------------------------------------ registry */

int status_server_attach(const struct run_ctx *rc, struct job *job)
{
    if (!atomic_load(&running))
        return -1;
    char key[sizeof(S.slots[0].key)];
    snprintf(key, sizeof(key), "%s|%s", rc->job_id, rc->source_name ? rc->source_name : "");
    pthread_mutex_lock(&S.mu);
    int h = -1;
    for (int i = 0; i < STATUS_MAX_JOBS && h < 0; i++)
        if (S.slots[i].used && strcmp(S.slots[i].key, key) == 0)
            h = i;
    for (int i = 0; i < STATUS_MAX_JOBS && h < 0; i++)
        if (!S.slots[i].used)
            h = i;
    if (h < 0) {
        pthread_mutex_unlock(&S.mu);
        return -1;
    }
    struct slot *sl = &S.slots[h];
    if (!sl->used) {
        memset(sl, 0, sizeof(*sl));
        sl->used = true;
        snprintf(sl->key, sizeof(sl->key), "%s", key);
        snprintf(sl->name, sizeof(sl->name), "%s", rc->source_name ? rc->source_name : "-");
    }
    snprintf(sl->replid, sizeof(sl->replid), "%s", rc->replid);
    sl->nworkers = job->nworkers;
    sl->stream_start = rc->stream_start;
    sl->rdb_total = rc->resumed ? UINT64_MAX : rc->rdb_len;
    sl->t0_ns = lag_clock_now_ns();
    sl->attaches++;
    sl->snapshot_done = false;
    sl->source_reconnects_base = sl->source_reconnects;
    for (unsigned k = 0; k < sl->nnodes; k++)
        sl->nodes[k].index = UINT32_MAX;
    for (unsigned n = 0; n < rc->nodes->nnodes; n++) { /* the job's nodes, by name */
        const char *name = rc->nodes->eps[n].name;
        unsigned k = 0;
        while (k < sl->nnodes && strcmp(sl->nodes[k].name, name) != 0)
            k++;
        if (k == sl->nnodes) {
            struct slot_node *more = realloc(sl->nodes, (k + 1) * sizeof(*more));
            if (more == NULL)
                continue; /* not shown */
            sl->nodes = more;
            memset(&more[k], 0, sizeof(more[k]));
            snprintf(more[k].name, sizeof(more[k].name), "%s", name);
            sl->nnodes++;
        }
        sl->nodes[k].index = n;
    }
    sl->job = job;
    read_job(sl);
    pthread_mutex_unlock(&S.mu);
    return h;
}

void status_server_detach(int h)
{
    if (h < 0)
        return;
    pthread_mutex_lock(&S.mu);
    struct slot *sl = &S.slots[h];
    read_job(sl); /* the last numbers */
    sl->ops_base += sl->snapshot_keys + sl->stream_commands;
    if (sl->state == STATUS_FAILED)
        sl->failures++;
    else if (sl->state != STATUS_CONNECTING)
        sl->state = STATUS_STOPPED;
    for (unsigned k = 0; k < sl->nnodes; k++) {
        struct slot_node *n = &sl->nodes[k];
        n->base.sent += n->last.sent;
        n->base.acked += n->last.acked;
        n->base.retried += n->last.retried;
        n->base.skipped += n->last.skipped;
        n->base.moved += n->last.moved;
        n->base.asked += n->last.asked;
        n->last = (struct worker_link_counts){0};
    }
    sl->job = NULL;
    pthread_mutex_unlock(&S.mu);
}
