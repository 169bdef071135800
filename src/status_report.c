/* status_report.c - a run's status as JSON, Prometheus text and a few lines
 * for a person (see status_report.h). */
#include "status_report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json_out.h"

static const char *const state_names[STATUS_STATES] = {
    "connecting", "full_sync", "incremental", "stopping", "stopped", "failed",
};

const char *status_state_name(enum status_state s)
{
    return (unsigned)s < STATUS_STATES ? state_names[s] : "unknown";
}

/* ----------------------------------------------------------------- deciding */

/* How much a shard's state weighs in the run's: the worst one wins. */
static int state_rank(enum status_state s)
{
    switch (s) {
    case STATUS_FAILED:
        return 5;
    case STATUS_CONNECTING:
        return 4;
    case STATUS_FULL_SYNC:
        return 3;
    case STATUS_STOPPING:
        return 2;
    case STATUS_INCREMENTAL:
        return 1;
    case STATUS_STOPPED:
        return 0;
    }
    return 5;
}

void status_report_decide(struct status_snapshot *s)
{
    s->state = s->nshards == 0 ? STATUS_CONNECTING : STATUS_STOPPED;
    s->reason[0] = '\0';
    for (unsigned i = 0; i < s->nshards; i++) {
        const struct status_shard *sh = &s->shards[i];
        if (state_rank(sh->state) > state_rank(s->state) ||
            (sh->state == s->state && s->reason[0] == '\0' && sh->reason[0] != '\0')) {
            s->state = sh->state;
            snprintf(s->reason, sizeof(s->reason), "%s", sh->reason);
        }
    }
    if (s->state != STATUS_FAILED && s->state != STATUS_CONNECTING)
        s->reason[0] = '\0';
    s->ready_for_cutover = false;
    if (s->state != STATUS_INCREMENTAL) {
        snprintf(s->not_ready, sizeof(s->not_ready), "the state is %s, not incremental",
                 status_state_name(s->state));
        return;
    }
    for (unsigned i = 0; i < s->nshards; i++) {
        const struct status_shard *sh = &s->shards[i];
        if (!sh->has_lag_ms || sh->lag_ms >= s->cutover_lag_ms) {
            snprintf(s->not_ready, sizeof(s->not_ready),
                     "source %.300s is %.0f ms behind (the threshold is %.0f ms)", sh->name,
                     sh->has_lag_ms ? sh->lag_ms : -1.0, s->cutover_lag_ms);
            return;
        }
    }
    if (s->last_error_age_s >= 0 && s->last_error_age_s < STATUS_ERROR_WINDOW_S) {
        snprintf(s->not_ready, sizeof(s->not_ready),
                 "an error %.0f s ago (none in the last %.0f s "
                 "is needed)",
                 s->last_error_age_s, STATUS_ERROR_WINDOW_S);
        return;
    }
    s->ready_for_cutover = true;
    s->not_ready[0] = '\0';
}

double status_report_eta_s(const struct status_shard *sh)
{
    if (sh->state != STATUS_FULL_SYNC || sh->snapshot_total == UINT64_MAX ||
        sh->snapshot_bytes == 0 || sh->snapshot_bytes >= sh->snapshot_total ||
        sh->snapshot_elapsed_s <= 0)
        return -1;
    double rate = (double)sh->snapshot_bytes / sh->snapshot_elapsed_s;
    return (double)(sh->snapshot_total - sh->snapshot_bytes) / rate;
}

static uint64_t lag_bytes(const struct status_shard *sh)
{
    return sh->received > sh->applied ? sh->received - sh->applied : 0;
}

static uint64_t in_flight(const struct status_node *n)
{
    uint64_t done = n->acked + n->moved + n->asked; /* a redirected reply is applied elsewhere */
    return n->sent > done ? n->sent - done : 0;
}

/* --------------------------------------------------------------------- JSON */

static void key(struct json_out *o, bool *first, const char *name)
{
    if (!*first)
        json_out_char(o, ',');
    *first = false;
    json_out_string(o, name, strlen(name));
    json_out_char(o, ':');
}

static void put_str(struct json_out *o, bool *first, const char *name, const char *v)
{
    key(o, first, name);
    json_out_string(o, v, strlen(v));
}

static void put_u64(struct json_out *o, bool *first, const char *name, uint64_t v)
{
    key(o, first, name);
    json_out_u64(o, v);
}

/* A double rounded to 3 decimals (ms and s need no more), or null when v < 0
 * and negative means unknown. */
static void put_num(struct json_out *o, bool *first, const char *name, double v, bool null_if_neg)
{
    key(o, first, name);
    if (null_if_neg && v < 0) {
        json_out_text(o, "null");
        return;
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%.3f", v);
    json_out_text(o, buf);
}

static void put_bool(struct json_out *o, bool *first, const char *name, bool v)
{
    key(o, first, name);
    json_out_text(o, v ? "true" : "false");
}

static void json_node(const struct status_node *n, struct json_out *o)
{
    bool f = true;
    json_out_char(o, '{');
    put_str(o, &f, "node", n->name);
    put_u64(o, &f, "commands_sent", n->sent);
    put_u64(o, &f, "commands_acknowledged", n->acked);
    put_u64(o, &f, "commands_in_flight", in_flight(n));
    key(o, &f, "errors");
    bool g = true;
    json_out_char(o, '{');
    put_u64(o, &g, "retried", n->retried);
    put_u64(o, &g, "skipped", n->skipped);
    json_out_char(o, '}');
    key(o, &f, "redirections");
    g = true;
    json_out_char(o, '{');
    put_u64(o, &g, "moved", n->moved);
    put_u64(o, &g, "ask", n->asked);
    json_out_char(o, '}');
    put_u64(o, &f, "reconnects", n->reconnects);
    json_out_char(o, '}');
}

static void json_shard(const struct status_snapshot *s, const struct status_shard *sh,
                       struct json_out *o)
{
    bool f = true;
    json_out_char(o, '{');
    put_str(o, &f, "source", sh->name);
    put_str(o, &f, "state", status_state_name(sh->state));
    if (sh->reason[0])
        put_str(o, &f, "reason", sh->reason);
    put_str(o, &f, "replid", sh->replid);
    put_u64(o, &f, "received_offset", sh->received);
    put_u64(o, &f, "applied_offset", sh->applied);
    put_u64(o, &f, "lag_bytes", lag_bytes(sh));
    put_num(o, &f, "lag_ms", sh->has_lag_ms ? sh->lag_ms : -1, true);
    put_num(o, &f, "heartbeat_lag_ms", sh->has_heartbeat ? sh->heartbeat_lag_ms : -1, true);
    put_num(o, &f, "heartbeat_age_s", sh->has_heartbeat ? sh->heartbeat_age_s : -1, true);
    put_u64(o, &f, "stream_commands", sh->stream_commands);
    put_u64(o, &f, "source_reconnects", sh->source_reconnects);
    key(o, &f, "snapshot");
    bool g = true;
    json_out_char(o, '{');
    put_bool(o, &g, "done", sh->state != STATUS_FULL_SYNC && sh->state != STATUS_CONNECTING);
    put_u64(o, &g, "bytes", sh->snapshot_bytes);
    key(o, &g, "total_bytes");
    if (sh->snapshot_total == UINT64_MAX)
        json_out_text(o, "null");
    else
        json_out_u64(o, sh->snapshot_total);
    put_u64(o, &g, "keys", sh->snapshot_keys);
    put_num(o, &g, "eta_s", status_report_eta_s(sh), true);
    json_out_char(o, '}');
    key(o, &f, "destination_nodes");
    json_out_char(o, '[');
    for (unsigned i = 0; i < sh->nnodes; i++) {
        if (i)
            json_out_char(o, ',');
        json_node(&s->nodes[sh->first_node + i], o);
    }
    json_out_char(o, ']');
    json_out_char(o, '}');
}

void status_report_json(const struct status_snapshot *s, struct json_out *o)
{
    bool f = true;
    json_out_char(o, '{');
    put_str(o, &f, "state", status_state_name(s->state));
    if (s->reason[0])
        put_str(o, &f, "reason", s->reason);
    put_bool(o, &f, "ready_for_cutover", s->ready_for_cutover);
    if (!s->ready_for_cutover)
        put_str(o, &f, "not_ready_because", s->not_ready);
    put_num(o, &f, "cutover_lag_ms", s->cutover_lag_ms, false);
    put_num(o, &f, "time", s->time_s, false);
    put_num(o, &f, "uptime_s", s->uptime_s, false);
    key(o, &f, "shards");
    json_out_char(o, '[');
    for (unsigned i = 0; i < s->nshards; i++) {
        if (i)
            json_out_char(o, ',');
        json_shard(s, &s->shards[i], o);
    }
    json_out_char(o, ']');
    key(o, &f, "totals");
    bool g = true;
    json_out_char(o, '{');
    put_num(o, &g, "ops_per_s_1s", s->ops_1s, false);
    put_num(o, &g, "ops_per_s_60s", s->ops_60s, false);
    put_u64(o, &g, "spill_bytes", s->spill_bytes);
    put_bool(o, &g, "rate_limited", s->rate_limited);
    put_num(o, &g, "rate_limit_held_s", s->rate_limit_held_s, false);
    put_u64(o, &g, "rss_bytes", s->rss_bytes);
    put_num(o, &g, "cpu_s", s->cpu_s, false);
    put_u64(o, &g, "errors", s->errors);
    put_num(o, &g, "last_error_age_s", s->last_error_age_s, true);
    json_out_char(o, '}');
    json_out_char(o, '}');
    json_out_char(o, '\n');
}

/* --------------------------------------------------------------- Prometheus */

static void header(struct json_out *o, const char *name, const char *type, const char *help)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    json_out_text(o, buf);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct json_out *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            json_out_char(o, '\\');
        if (*v == '\n') {
            json_out_text(o, "\\n");
            continue;
        }
        json_out_char(o, *v);
    }
}

/* name{shard="...",node="...",<extra>} value: NULL labels are left out. */
static void sample(struct json_out *o, const char *name, const char *shard, const char *node,
                   const char *extra_name, const char *extra, const char *value)
{
    json_out_text(o, name);
    if (shard || node || extra_name) {
        const char *sep = "{";
        const char *names[3] = {"shard", "node", extra_name};
        const char *vals[3] = {shard, node, extra};
        for (int i = 0; i < 3; i++) {
            if (vals[i] == NULL || names[i] == NULL)
                continue;
            json_out_text(o, sep);
            json_out_text(o, names[i]);
            json_out_text(o, "=\"");
            label_value(o, vals[i]);
            json_out_char(o, '"');
            sep = ",";
        }
        json_out_char(o, '}');
    }
    json_out_char(o, ' ');
    json_out_text(o, value);
    json_out_char(o, '\n');
}

static const char *u64s(char *buf, size_t cap, uint64_t v)
{
    snprintf(buf, cap, "%" PRIu64, v);
    return buf;
}

static const char *dbl(char *buf, size_t cap, double v)
{
    snprintf(buf, cap, "%.6f", v);
    return buf;
}

/* One metric per shard: its header, then a sample per shard. */
#define PER_SHARD(mname, mtype, mhelp, expr)                                                       \
    do {                                                                                           \
        header(o, mname, mtype, mhelp);                                                            \
        for (unsigned i_ = 0; i_ < s->nshards; i_++) {                                             \
            const struct status_shard *sh = &s->shards[i_];                                        \
            sample(o, mname, sh->name, NULL, NULL, NULL, (expr));                                  \
        }                                                                                          \
    } while (0)

/* One metric per (shard, node), extra label ln=lv (NULL: none). */
#define PER_NODE(mname, ln, lv, expr)                                                              \
    do {                                                                                           \
        for (unsigned i_ = 0; i_ < s->nshards; i_++) {                                             \
            const struct status_shard *sh = &s->shards[i_];                                        \
            for (unsigned k_ = 0; k_ < sh->nnodes; k_++) {                                         \
                const struct status_node *n = &s->nodes[sh->first_node + k_];                      \
                sample(o, mname, sh->name, n->name, ln, lv, (expr));                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void status_report_metrics(const struct status_snapshot *s, struct json_out *o)
{
    char b[64];
    header(o, "ringsync_state", "gauge",
           "The run's state: 1 for the current one (connecting, full_sync, incremental, "
           "stopping, stopped, failed), 0 for the others.");
    for (int i = 0; i < STATUS_STATES; i++)
        sample(o, "ringsync_state", NULL, NULL, "state", state_names[i],
               (int)s->state == i ? "1" : "0");
    header(o, "ringsync_ready_for_cutover", "gauge",
           "1 when incremental, every shard's lag under --cutover-lag-ms and no error in the "
           "last minute.");
    sample(o, "ringsync_ready_for_cutover", NULL, NULL, NULL, NULL,
           s->ready_for_cutover ? "1" : "0");
    header(o, "ringsync_cutover_lag_threshold_seconds", "gauge",
           "The lag under which ready_for_cutover may be 1 (--cutover-lag-ms).");
    sample(o, "ringsync_cutover_lag_threshold_seconds", NULL, NULL, NULL, NULL,
           dbl(b, sizeof(b), s->cutover_lag_ms / 1000.0));

    PER_SHARD("ringsync_source_received_offset_bytes", "gauge",
              "The source's replication offset read so far.", u64s(b, sizeof(b), sh->received));
    PER_SHARD("ringsync_source_applied_offset_bytes", "gauge",
              "The source offset up to which the destination applied every command.",
              u64s(b, sizeof(b), sh->applied));
    PER_SHARD("ringsync_lag_bytes", "gauge", "Bytes of the source's stream read but not applied.",
              u64s(b, sizeof(b), lag_bytes(sh)));
    header(o, "ringsync_lag_seconds", "gauge",
           "Age of the oldest source command not yet applied (0 when all are); absent before "
           "the stream is followed.");
    for (unsigned i = 0; i < s->nshards; i++)
        if (s->shards[i].has_lag_ms)
            sample(o, "ringsync_lag_seconds", s->shards[i].name, NULL, NULL, NULL,
                   dbl(b, sizeof(b), s->shards[i].lag_ms / 1000.0));
    header(o, "ringsync_heartbeat_lag_seconds", "gauge",
           "With --heartbeat-key: how long the last heartbeat written on the source took to be "
           "applied on the destination; absent before the first.");
    for (unsigned i = 0; i < s->nshards; i++)
        if (s->shards[i].has_heartbeat)
            sample(o, "ringsync_heartbeat_lag_seconds", s->shards[i].name, NULL, NULL, NULL,
                   dbl(b, sizeof(b), s->shards[i].heartbeat_lag_ms / 1000.0));
    PER_SHARD("ringsync_snapshot_read_bytes", "gauge", "Bytes of the snapshot read and decoded.",
              u64s(b, sizeof(b), sh->snapshot_bytes));
    header(o, "ringsync_snapshot_size_bytes", "gauge",
           "The snapshot's size, when the source announced it (absent for a diskless one).");
    for (unsigned i = 0; i < s->nshards; i++)
        if (s->shards[i].snapshot_total != UINT64_MAX)
            sample(o, "ringsync_snapshot_size_bytes", s->shards[i].name, NULL, NULL, NULL,
                   u64s(b, sizeof(b), s->shards[i].snapshot_total));
    PER_SHARD("ringsync_snapshot_keys", "gauge", "Keys of the snapshot decoded.",
              u64s(b, sizeof(b), sh->snapshot_keys));
    header(o, "ringsync_snapshot_eta_seconds", "gauge",
           "Time left to read the snapshot at its rate so far (absent when unknown).");
    for (unsigned i = 0; i < s->nshards; i++) {
        double eta = status_report_eta_s(&s->shards[i]);
        if (eta >= 0)
            sample(o, "ringsync_snapshot_eta_seconds", s->shards[i].name, NULL, NULL, NULL,
                   dbl(b, sizeof(b), eta));
    }
    PER_SHARD("ringsync_stream_commands_total", "counter", "Stream commands routed.",
              u64s(b, sizeof(b), sh->stream_commands));
    PER_SHARD("ringsync_source_reconnects_total", "counter",
              "Times the source's link was lost and taken up again (partial resync).",
              u64s(b, sizeof(b), sh->source_reconnects));

    header(o, "ringsync_dest_commands_sent_total", "counter",
           "Commands sent to a destination node.");
    PER_NODE("ringsync_dest_commands_sent_total", NULL, NULL, u64s(b, sizeof(b), n->sent));
    header(o, "ringsync_dest_commands_acknowledged_total", "counter",
           "Replies received from a destination node.");
    PER_NODE("ringsync_dest_commands_acknowledged_total", NULL, NULL, u64s(b, sizeof(b), n->acked));
    header(o, "ringsync_dest_commands_in_flight", "gauge",
           "Commands sent to a destination node and not answered yet.");
    PER_NODE("ringsync_dest_commands_in_flight", NULL, NULL, u64s(b, sizeof(b), in_flight(n)));
    header(o, "ringsync_dest_errors_total", "counter",
           "Error replies of a destination node by kind: retried (BUSY, LOADING ...: sent "
           "again) or skipped (--on-error skip).");
    PER_NODE("ringsync_dest_errors_total", "kind", "retried", u64s(b, sizeof(b), n->retried));
    PER_NODE("ringsync_dest_errors_total", "kind", "skipped", u64s(b, sizeof(b), n->skipped));
    header(o, "ringsync_dest_redirections_total", "counter",
           "MOVED and ASK replies of a destination cluster node, followed.");
    PER_NODE("ringsync_dest_redirections_total", "kind", "moved", u64s(b, sizeof(b), n->moved));
    PER_NODE("ringsync_dest_redirections_total", "kind", "ask", u64s(b, sizeof(b), n->asked));
    header(o, "ringsync_dest_reconnects_total", "counter",
           "Times the job's links to the destination were opened again after one was lost.");
    PER_NODE("ringsync_dest_reconnects_total", NULL, NULL, u64s(b, sizeof(b), n->reconnects));

    header(o, "ringsync_ops_per_second", "gauge",
           "Source operations (snapshot keys, stream commands) per second, over the last 1 s and "
           "60 s (window).");
    sample(o, "ringsync_ops_per_second", NULL, NULL, "window", "1s", dbl(b, sizeof(b), s->ops_1s));
    sample(o, "ringsync_ops_per_second", NULL, NULL, "window", "60s",
           dbl(b, sizeof(b), s->ops_60s));
    header(o, "ringsync_spill_bytes", "gauge",
           "Source bytes waiting for the destination, in memory and in the spill file.");
    sample(o, "ringsync_spill_bytes", NULL, NULL, NULL, NULL, u64s(b, sizeof(b), s->spill_bytes));
    header(o, "ringsync_rate_limited", "gauge",
           "1 while a rate limit (--rate-limit ...) holds the job back, else 0.");
    sample(o, "ringsync_rate_limited", NULL, NULL, NULL, NULL, s->rate_limited ? "1" : "0");
    header(o, "ringsync_rate_limit_held_seconds_total", "counter",
           "Time the rate limits held the job back, in seconds.");
    sample(o, "ringsync_rate_limit_held_seconds_total", NULL, NULL, NULL, NULL,
           dbl(b, sizeof(b), s->rate_limit_held_s));
    header(o, "ringsync_resident_memory_bytes", "gauge", "The process's resident set size.");
    sample(o, "ringsync_resident_memory_bytes", NULL, NULL, NULL, NULL,
           u64s(b, sizeof(b), s->rss_bytes));
    header(o, "ringsync_cpu_seconds_total", "counter", "CPU time of the process, user and system.");
    sample(o, "ringsync_cpu_seconds_total", NULL, NULL, NULL, NULL, dbl(b, sizeof(b), s->cpu_s));
    header(o, "ringsync_errors_total", "counter",
           "Errors of every kind (destination errors, lost links, failures).");
    sample(o, "ringsync_errors_total", NULL, NULL, NULL, NULL, u64s(b, sizeof(b), s->errors));
    header(o, "ringsync_uptime_seconds", "gauge", "Time since the run started.");
    sample(o, "ringsync_uptime_seconds", NULL, NULL, NULL, NULL, dbl(b, sizeof(b), s->uptime_s));
}

/* --------------------------------------------------------------- for a person */

static void line(struct json_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(struct json_out *o, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_out_text(o, buf);
    json_out_char(o, '\n');
}

void status_report_text(const struct status_snapshot *s, struct json_out *o)
{
    line(o, "state: %s%s%s, up %.0f s", status_state_name(s->state), s->reason[0] ? ": " : "",
         s->reason, s->uptime_s);
    if (s->ready_for_cutover)
        line(o, "ready for cut-over: yes (lag under %.0f ms, no error in the last minute)",
             s->cutover_lag_ms);
    else
        line(o, "ready for cut-over: no (%s)", s->not_ready);
    for (unsigned i = 0; i < s->nshards; i++) {
        const struct status_shard *sh = &s->shards[i];
        if (sh->state == STATUS_FULL_SYNC || sh->state == STATUS_CONNECTING) {
            char total[64] = "";
            double eta = status_report_eta_s(sh);
            if (sh->snapshot_total != UINT64_MAX && sh->snapshot_total > 0)
                snprintf(total, sizeof(total), " of %.1f MB (%.0f%%)",
                         (double)sh->snapshot_total / 1e6,
                         100.0 * (double)sh->snapshot_bytes / (double)sh->snapshot_total);
            char left[48] = "";
            if (eta >= 0)
                snprintf(left, sizeof(left), ", %.0f s left", eta);
            line(o, "source %s: %s, snapshot %.1f MB%s, %" PRIu64 " keys%s", sh->name,
                 status_state_name(sh->state), (double)sh->snapshot_bytes / 1e6, total,
                 sh->snapshot_keys, left);
        } else {
            char lag[96] = "unknown";
            if (sh->has_lag_ms)
                snprintf(lag, sizeof(lag), "%.0f ms", sh->lag_ms);
            if (sh->has_heartbeat) {
                size_t n = strlen(lag);
                snprintf(lag + n, sizeof(lag) - n, " (heartbeat %.0f ms, %.0f s ago)",
                         sh->heartbeat_lag_ms, sh->heartbeat_age_s);
            }
            line(o,
                 "source %s: %s, offset %" PRIu64 " received, %" PRIu64 " applied, %" PRIu64
                 " bytes and %s behind",
                 sh->name, status_state_name(sh->state), sh->received, sh->applied, lag_bytes(sh),
                 lag);
        }
    }
    uint64_t retried = 0, skipped = 0, redirected = 0;
    for (unsigned i = 0; i < s->nnodes; i++) {
        retried += s->nodes[i].retried;
        skipped += s->nodes[i].skipped;
        redirected += s->nodes[i].moved + s->nodes[i].asked;
    }
    line(o,
         "%.0f ops/s (1 s), %.0f ops/s (60 s); %" PRIu64 " retried, %" PRIu64 " skipped, %" PRIu64
         " redirected; spill %.1f MB; rss %.1f MB, cpu %.1f s%s",
         s->ops_1s, s->ops_60s, retried, skipped, redirected, (double)s->spill_bytes / 1e6,
         (double)s->rss_bytes / 1e6, s->cpu_s,
         s->rate_limited ? "; held back by a rate limit now" : "");
}
