/* test_status_report.c - the status of a run as JSON, Prometheus text and
 * lines for a person, from hand-made snapshots (status_report.h).
 *
 * The JSON is parsed strictly (json-c) and read back field by field. The
 * Prometheus text is checked by a strict reader written here from the
 * exposition format 0.0.4: every line a # HELP, a # TYPE or a sample; HELP
 * and TYPE once per metric, before its samples; a metric's samples together;
 * names and label names of the allowed characters, label values escaped,
 * values numbers, no label set twice. It is shown to fail on a broken text.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_out.h"
#include "status_report.h"

/* ---- snapshots ----------------------------------------------------------- */

static struct status_shard shards[2];
static struct status_node nodes[3];

/* Two source shards (a cluster source), the first with two destination
 * nodes, the second with one; both following. */
static struct status_snapshot two_shards(void)
{
    memset(shards, 0, sizeof(shards));
    memset(nodes, 0, sizeof(nodes));
    snprintf(shards[0].name, sizeof(shards[0].name), "10.0.0.1:6379");
    snprintf(shards[0].replid, sizeof(shards[0].replid), "%s",
             "8a1f0c0e9d6b4c1f2e3d4c5b6a798877665544aa");
    shards[0].state = STATUS_INCREMENTAL;
    shards[0].received = 5000;
    shards[0].applied = 4200;
    shards[0].has_lag_ms = true;
    shards[0].lag_ms = 12.5;
    shards[0].snapshot_bytes = 1000000;
    shards[0].snapshot_total = 1000000;
    shards[0].snapshot_keys = 777;
    shards[0].stream_commands = 321;
    shards[0].first_node = 0;
    shards[0].nnodes = 2;
    snprintf(shards[1].name, sizeof(shards[1].name), "10.0.0.2:6379");
    shards[1].state = STATUS_INCREMENTAL;
    shards[1].received = shards[1].applied = 99;
    shards[1].has_lag_ms = true;
    shards[1].snapshot_total = UINT64_MAX;
    shards[1].first_node = 2;
    shards[1].nnodes = 1;
    for (int i = 0; i < 3; i++) {
        snprintf(nodes[i].name, sizeof(nodes[i].name), "10.0.1.%d:7000", i + 1);
        nodes[i].sent = 100 + (uint64_t)i;
        nodes[i].acked = 90;
        nodes[i].retried = 3;
        nodes[i].skipped = 1;
        nodes[i].moved = 2;
        nodes[i].asked = 1;
        nodes[i].reconnects = 4;
    }
    struct status_snapshot s = {
        .time_s = 1700000000.25,
        .uptime_s = 120,
        .shards = shards,
        .nshards = 2,
        .nodes = nodes,
        .nnodes = 3,
        .ops_1s = 1500,
        .ops_60s = 1234.5,
        .spill_bytes = 4096,
        .rss_bytes = 50u << 20,
        .cpu_s = 3.25,
        .errors = 0,
        .last_error_age_s = -1,
        .cutover_lag_ms = 1000,
    };
    status_report_decide(&s);
    return s;
}

static char *render(const struct status_snapshot *s,
                    void (*fn)(const struct status_snapshot *, struct json_out *))
{
    struct json_out o;
    json_out_init(&o, NULL, 0);
    fn(s, &o);
    cr_assert_eq(json_out_error(&o), 0);
    char *text = strndup(o.buf, o.len);
    json_out_deinit(&o);
    cr_assert_not_null(text);
    return text;
}

/* ---- deciding ------------------------------------------------------------ */

Test(status_report, no_shard_yet_is_connecting)
{
    struct status_snapshot s = {.cutover_lag_ms = 1000, .last_error_age_s = -1};
    status_report_decide(&s);
    cr_assert_eq(s.state, STATUS_CONNECTING);
    cr_assert(!s.ready_for_cutover);
}

Test(status_report, following_with_a_small_lag_and_no_error_is_ready_for_cutover)
{
    struct status_snapshot s = two_shards();
    cr_assert_eq(s.state, STATUS_INCREMENTAL);
    cr_assert(s.ready_for_cutover, "not ready: %s", s.not_ready);
}

Test(status_report, a_lag_at_the_threshold_is_not_ready)
{
    struct status_snapshot s = two_shards();
    shards[1].lag_ms = 1000;
    status_report_decide(&s);
    cr_assert(!s.ready_for_cutover);
    cr_assert(strstr(s.not_ready, "10.0.0.2:6379") != NULL, "%s", s.not_ready);
}

Test(status_report, an_unknown_lag_is_not_ready)
{
    struct status_snapshot s = two_shards();
    shards[0].has_lag_ms = false;
    status_report_decide(&s);
    cr_assert(!s.ready_for_cutover);
}

Test(status_report, an_error_in_the_last_minute_is_not_ready_and_an_older_one_is)
{
    struct status_snapshot s = two_shards();
    s.errors = 3;
    s.last_error_age_s = 59.5;
    status_report_decide(&s);
    cr_assert(!s.ready_for_cutover);
    cr_assert(strstr(s.not_ready, "error") != NULL, "%s", s.not_ready);
    s.last_error_age_s = 60.5;
    status_report_decide(&s);
    cr_assert(s.ready_for_cutover, "%s", s.not_ready);
}

Test(status_report, a_failed_shard_makes_the_run_failed_with_its_reason)
{
    struct status_snapshot s = two_shards();
    shards[1].state = STATUS_FAILED;
    snprintf(shards[1].reason, sizeof(shards[1].reason), "destination refused SET: -OOM");
    status_report_decide(&s);
    cr_assert_eq(s.state, STATUS_FAILED);
    cr_assert_str_eq(s.reason, "destination refused SET: -OOM");
    cr_assert(!s.ready_for_cutover);
}

Test(status_report, one_shard_in_full_sync_keeps_the_run_in_full_sync)
{
    struct status_snapshot s = two_shards();
    shards[0].state = STATUS_FULL_SYNC;
    status_report_decide(&s);
    cr_assert_eq(s.state, STATUS_FULL_SYNC);
    shards[0].state = STATUS_STOPPED;
    shards[1].state = STATUS_STOPPED;
    status_report_decide(&s);
    cr_assert_eq(s.state, STATUS_STOPPED);
    shards[0].state = STATUS_STOPPING;
    status_report_decide(&s);
    cr_assert_eq(s.state, STATUS_STOPPING);
}

Test(status_report, eta_from_the_rate_so_far_and_unknown_without_a_size)
{
    struct status_shard sh = {.state = STATUS_FULL_SYNC,
                              .snapshot_bytes = 250,
                              .snapshot_total = 1000,
                              .snapshot_elapsed_s = 5};
    cr_assert_float_eq(status_report_eta_s(&sh), 15.0, 1e-9);
    sh.snapshot_total = UINT64_MAX;
    cr_assert_lt(status_report_eta_s(&sh), 0);
    sh.snapshot_total = 1000;
    sh.snapshot_bytes = 0;
    cr_assert_lt(status_report_eta_s(&sh), 0);
}

/* ---- JSON ---------------------------------------------------------------- */

static json_object *parse_strict(const char *text)
{
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)strlen(text));
    enum json_tokener_error e = json_tokener_get_error(tok);
    cr_assert(o != NULL && e == json_tokener_success, "not JSON (%s):\n%s",
              json_tokener_error_desc(e), text);
    for (size_t i = json_tokener_get_parse_end(tok); text[i]; i++)
        cr_assert(text[i] == '\n' || text[i] == ' ', "more after the object: %s",
                  text + json_tokener_get_parse_end(tok));
    json_tokener_free(tok);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
              json_object_to_json_string(o));
    return v;
}

Test(status_report, json_holds_every_field_of_every_shard_and_node)
{
    struct status_snapshot s = two_shards();
    char *text = render(&s, status_report_json);
    json_object *o = parse_strict(text);
    cr_assert_str_eq(json_object_get_string(get(o, "state")), "incremental");
    cr_assert(json_object_get_boolean(get(o, "ready_for_cutover")));
    cr_assert_float_eq(json_object_get_double(get(o, "cutover_lag_ms")), 1000, 1e-9);
    json_object *sh = get(o, "shards");
    cr_assert_eq(json_object_array_length(sh), 2);
    json_object *a = json_object_array_get_idx(sh, 0);
    cr_assert_str_eq(json_object_get_string(get(a, "source")), "10.0.0.1:6379");
    cr_assert_str_eq(json_object_get_string(get(a, "replid")), shards[0].replid);
    cr_assert_eq(json_object_get_int64(get(a, "received_offset")), 5000);
    cr_assert_eq(json_object_get_int64(get(a, "applied_offset")), 4200);
    cr_assert_eq(json_object_get_int64(get(a, "lag_bytes")), 800);
    cr_assert_float_eq(json_object_get_double(get(a, "lag_ms")), 12.5, 1e-9);
    cr_assert_eq(json_object_get_int64(get(a, "stream_commands")), 321);
    json_object *snap = get(a, "snapshot");
    cr_assert(json_object_get_boolean(get(snap, "done")));
    cr_assert_eq(json_object_get_int64(get(snap, "keys")), 777);
    cr_assert_eq(json_object_get_int64(get(snap, "total_bytes")), 1000000);
    cr_assert(json_object_is_type(get(snap, "eta_s"), json_type_null));
    json_object *dn = get(a, "destination_nodes");
    cr_assert_eq(json_object_array_length(dn), 2);
    json_object *n1 = json_object_array_get_idx(dn, 1);
    cr_assert_str_eq(json_object_get_string(get(n1, "node")), "10.0.1.2:7000");
    cr_assert_eq(json_object_get_int64(get(n1, "commands_sent")), 101);
    cr_assert_eq(json_object_get_int64(get(n1, "commands_acknowledged")), 90);
    cr_assert_eq(json_object_get_int64(get(n1, "commands_in_flight")), 101 - 90 - 3);
    cr_assert_eq(json_object_get_int64(get(get(n1, "errors"), "retried")), 3);
    cr_assert_eq(json_object_get_int64(get(get(n1, "errors"), "skipped")), 1);
    cr_assert_eq(json_object_get_int64(get(get(n1, "redirections"), "moved")), 2);
    cr_assert_eq(json_object_get_int64(get(get(n1, "redirections"), "ask")), 1);
    cr_assert_eq(json_object_get_int64(get(n1, "reconnects")), 4);
    json_object *b = json_object_array_get_idx(sh, 1);
    cr_assert(json_object_is_type(get(get(b, "snapshot"), "total_bytes"), json_type_null));
    cr_assert_eq(json_object_array_length(get(b, "destination_nodes")), 1);
    json_object *t = get(o, "totals");
    cr_assert_float_eq(json_object_get_double(get(t, "ops_per_s_1s")), 1500, 1e-9);
    cr_assert_float_eq(json_object_get_double(get(t, "ops_per_s_60s")), 1234.5, 1e-9);
    cr_assert_eq(json_object_get_int64(get(t, "spill_bytes")), 4096);
    cr_assert_eq(json_object_get_int64(get(t, "rss_bytes")), 50 << 20);
    cr_assert(json_object_is_type(get(t, "last_error_age_s"), json_type_null));
    json_object_put(o);
    free(text);
}

Test(status_report, json_of_a_failure_says_why_and_escapes_it)
{
    struct status_snapshot s = two_shards();
    shards[0].state = STATUS_FAILED;
    snprintf(shards[0].reason, sizeof(shards[0].reason), "refused \"SET\" \\ key\n\x01");
    shards[0].has_lag_ms = false;
    status_report_decide(&s);
    char *text = render(&s, status_report_json);
    json_object *o = parse_strict(text);
    cr_assert_str_eq(json_object_get_string(get(o, "state")), "failed");
    cr_assert_str_eq(json_object_get_string(get(o, "reason")), "refused \"SET\" \\ key\n\x01");
    cr_assert(!json_object_get_boolean(get(o, "ready_for_cutover")));
    cr_assert(json_object_get_string(get(o, "not_ready_because"))[0] != '\0');
    json_object *a = json_object_array_get_idx(get(o, "shards"), 0);
    cr_assert(json_object_is_type(get(a, "lag_ms"), json_type_null));
    json_object_put(o);
    free(text);
}

/* ---- Prometheus ---------------------------------------------------------- */

#define MAX_METRICS 64
#define MAX_SERIES  512

struct prom {
    char names[MAX_METRICS][96];
    char types[MAX_METRICS][16];
    bool has_help[MAX_METRICS];
    int nmetrics;
    char series[MAX_SERIES][512];
    double values[MAX_SERIES];
    int nseries;
    char err[1400];
};

static bool name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

static int metric_index(struct prom *p, const char *name)
{
    for (int i = 0; i < p->nmetrics; i++)
        if (strcmp(p->names[i], name) == 0)
            return i;
    return -1;
}

/* Reads text strictly (see the top of the file): 0, or -1 with p->err. */
static int prom_parse(const char *text, struct prom *p)
{
    memset(p, 0, sizeof(*p));
    int current = -1; /* the metric whose samples come now */
    bool closed[MAX_METRICS] = {0};
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        if (eol == NULL) {
            snprintf(p->err, sizeof(p->err), "the last line has no newline");
            return -1;
        }
        char buf[1024];
        size_t len = (size_t)(eol - line);
        if (len == 0 || len >= sizeof(buf)) {
            snprintf(p->err, sizeof(p->err), "an empty or too long line");
            return -1;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = eol + 1;
        if (buf[0] == '#') {
            char kind[8], name[96];
            int off = 0;
            if (sscanf(buf, "# %7s %95s %n", kind, name, &off) != 2 || off == 0) {
                snprintf(p->err, sizeof(p->err), "bad comment: %s", buf);
                return -1;
            }
            int i = metric_index(p, name);
            if (i < 0) {
                if (p->nmetrics == MAX_METRICS)
                    return -1;
                i = p->nmetrics++;
                snprintf(p->names[i], sizeof(p->names[i]), "%s", name);
            }
            if (closed[i] || (current >= 0 && current != i)) {
                if (current >= 0)
                    closed[current] = true;
            }
            if (closed[i]) {
                snprintf(p->err, sizeof(p->err), "%s: HELP or TYPE after its samples", name);
                return -1;
            }
            current = i;
            if (strcmp(kind, "HELP") == 0) {
                if (p->has_help[i] || buf[off] == '\0') {
                    snprintf(p->err, sizeof(p->err), "%s: HELP twice or empty", name);
                    return -1;
                }
                p->has_help[i] = true;
            } else if (strcmp(kind, "TYPE") == 0) {
                const char *t = buf + off;
                if (p->types[i][0] || (strcmp(t, "counter") && strcmp(t, "gauge"))) {
                    snprintf(p->err, sizeof(p->err), "%s: TYPE twice or unknown: %s", name, t);
                    return -1;
                }
                snprintf(p->types[i], sizeof(p->types[i]), "%s", t);
            } else {
                snprintf(p->err, sizeof(p->err), "unknown comment %s", kind);
                return -1;
            }
            continue;
        }
        /* a sample: name[{labels}] value */
        size_t k = 0;
        while (name_char(buf[k], k == 0))
            k++;
        char name[96];
        if (k == 0 || k >= sizeof(name)) {
            snprintf(p->err, sizeof(p->err), "bad metric name: %s", buf);
            return -1;
        }
        memcpy(name, buf, k);
        name[k] = '\0';
        int i = metric_index(p, name);
        if (i < 0 || !p->has_help[i] || !p->types[i][0] || closed[i] ||
            (current != i && current >= 0 && (closed[current] = true, false))) {
            snprintf(p->err, sizeof(p->err), "%s: a sample without HELP and TYPE before it", name);
            return -1;
        }
        current = i;
        if (buf[k] == '{') {
            k++;
            char seen[8][64];
            int nseen = 0;
            for (;;) {
                size_t s0 = k;
                while (name_char(buf[k], k == s0) && buf[k] != ':')
                    k++;
                if (k == s0 || buf[k] != '=' || buf[k + 1] != '"' || k - s0 >= 64 || nseen == 8) {
                    snprintf(p->err, sizeof(p->err), "bad label in: %s", buf);
                    return -1;
                }
                memcpy(seen[nseen], buf + s0, k - s0);
                seen[nseen][k - s0] = '\0';
                for (int j = 0; j < nseen; j++)
                    if (strcmp(seen[j], seen[nseen]) == 0) {
                        snprintf(p->err, sizeof(p->err), "label twice in: %s", buf);
                        return -1;
                    }
                nseen++;
                k += 2;
                while (buf[k] != '"') {
                    if (buf[k] == '\0') {
                        snprintf(p->err, sizeof(p->err), "unterminated label value: %s", buf);
                        return -1;
                    }
                    if (buf[k] == '\\') {
                        if (buf[k + 1] != '\\' && buf[k + 1] != '"' && buf[k + 1] != 'n') {
                            snprintf(p->err, sizeof(p->err), "bad escape in: %s", buf);
                            return -1;
                        }
                        k++;
                    }
                    k++;
                }
                k++;
                if (buf[k] == ',') {
                    k++;
                    continue;
                }
                if (buf[k] == '}') {
                    k++;
                    break;
                }
                snprintf(p->err, sizeof(p->err), "bad label list: %s", buf);
                return -1;
            }
        }
        if (buf[k] != ' ') {
            snprintf(p->err, sizeof(p->err), "no space before the value: %s", buf);
            return -1;
        }
        char *end;
        double v = strtod(buf + k + 1, &end);
        if (end == buf + k + 1 || *end != '\0' || isnan(v)) {
            snprintf(p->err, sizeof(p->err), "bad value: %s", buf);
            return -1;
        }
        if (strcmp(p->types[i], "counter") == 0 && v < 0) {
            snprintf(p->err, sizeof(p->err), "negative counter: %s", buf);
            return -1;
        }
        for (int j = 0; j < p->nseries; j++)
            if (strncmp(p->series[j], buf, k) == 0 && p->series[j][k] == '\0') {
                snprintf(p->err, sizeof(p->err), "series twice: %s", buf);
                return -1;
            }
        if (p->nseries == MAX_SERIES)
            return -1;
        memcpy(p->series[p->nseries], buf, k);
        p->series[p->nseries][k] = '\0';
        p->values[p->nseries++] = v;
    }
    return 0;
}

/* The value of one series (its exact text before the value), or NAN. */
static double series_value(const struct prom *p, const char *series)
{
    for (int i = 0; i < p->nseries; i++)
        if (strcmp(p->series[i], series) == 0)
            return p->values[i];
    return NAN;
}

static struct prom prom;

Test(status_report, metrics_parse_strictly_with_help_type_and_units)
{
    struct status_snapshot s = two_shards();
    char *text = render(&s, status_report_metrics);
    cr_assert_eq(prom_parse(text, &prom), 0, "%s\n%s", prom.err, text);
    for (int i = 0; i < prom.nmetrics; i++) {
        const char *n = prom.names[i];
        cr_assert(strncmp(n, "ringsync_", 9) == 0, "%s", n);
        cr_assert(prom.has_help[i] && prom.types[i][0], "%s", n);
        bool total = strlen(n) > 6 && strcmp(n + strlen(n) - 6, "_total") == 0;
        cr_assert_eq(strcmp(prom.types[i], "counter") == 0, total,
                     "%s: counters and only they end in _total", n);
    }
    cr_assert_float_eq(series_value(&prom, "ringsync_state{state=\"incremental\"}"), 1, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_state{state=\"full_sync\"}"), 0, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_ready_for_cutover"), 1, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_lag_seconds{shard=\"10.0.0.1:6379\"}"), 0.0125,
                       1e-9);
    cr_assert_float_eq(series_value(&prom, "ringsync_lag_bytes{shard=\"10.0.0.1:6379\"}"), 800, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_source_applied_offset_bytes{shard=\"10.0.0."
                                           "1:6379\"}"),
                       4200, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_dest_commands_sent_total{shard=\"10.0.0.2:"
                                           "6379\",node=\"10.0.1.3:7000\"}"),
                       102, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_dest_errors_total{shard=\"10.0.0.1:6379\","
                                           "node=\"10.0.1.1:7000\",kind=\"retried\"}"),
                       3, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_dest_redirections_total{shard=\"10.0.0.1:"
                                           "6379\",node=\"10.0.1.2:7000\",kind=\"ask\"}"),
                       1, 0);
    cr_assert_float_eq(series_value(&prom, "ringsync_ops_per_second{window=\"60s\"}"), 1234.5,
                       1e-9);
    /* a diskless snapshot has no size: no series, not a made-up one */
    cr_assert(isnan(series_value(&prom, "ringsync_snapshot_size_bytes{shard=\"10.0.0.2:6379\"}")));
    free(text);
}

Test(status_report, metrics_escape_label_values)
{
    struct status_snapshot s = two_shards();
    snprintf(nodes[0].name, sizeof(nodes[0].name), "we\"ird\\node\n");
    char *text = render(&s, status_report_metrics);
    cr_assert_eq(prom_parse(text, &prom), 0, "%s\n%s", prom.err, text);
    cr_assert(strstr(text, "node=\"we\\\"ird\\\\node\\n\"") != NULL, "%s", text);
    free(text);
}

/* The reader can fail: each of these breaks one rule. */
Test(status_report, the_strict_reader_refuses_broken_texts)
{
    static const char *const broken[] = {
        "ringsync_x 1\n",                                                 /* no HELP/TYPE */
        "# HELP ringsync_x x\n# TYPE ringsync_x gauge\nringsync_x one\n", /* bad value */
        "# HELP ringsync_x x\n# TYPE ringsync_x gauge\nringsync_x{a=\"1\",a=\"2\"} 1\n",
        "# HELP ringsync_x x\n# TYPE ringsync_x gauge\nringsync_x 1\nringsync_x 2\n",
        "# HELP ringsync_x x\n# TYPE ringsync_x gauge\nringsync_x{a=\"\\q\"} 1\n",
        "# HELP ringsync_x x\n# TYPE ringsync_x gauge\nringsync_x 1",     /* no newline */
        "# HELP ringsync_x x\n# TYPE ringsync_x summary\nringsync_x 1\n", /* type */
        "# HELP ringsync_x x\n# TYPE ringsync_x gauge\n# HELP ringsync_y y\n# TYPE ringsync_y "
        "gauge\nringsync_y 1\nringsync_x 1\n", /* x's samples not after its header */
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        cr_assert_neq(prom_parse(broken[i], &prom), 0, "accepted:\n%s", broken[i]);
}

/* ---- for a person ------------------------------------------------------------ */

Test(status_report, text_says_state_readiness_and_each_shard_in_a_few_lines)
{
    struct status_snapshot s = two_shards();
    shards[1].state = STATUS_FULL_SYNC;
    shards[1].snapshot_bytes = 500000;
    shards[1].snapshot_total = 1000000;
    shards[1].snapshot_keys = 42;
    shards[1].snapshot_elapsed_s = 2;
    status_report_decide(&s);
    char *text = render(&s, status_report_text);
    cr_assert(strstr(text, "state: full_sync") == text, "%s", text);
    cr_assert(strstr(text, "ready for cut-over: no (the state is full_sync") != NULL, "%s", text);
    cr_assert(strstr(text, "source 10.0.0.1:6379: incremental, offset 5000 received, 4200 "
                           "applied, 800 bytes and 12 ms behind") != NULL,
              "%s", text);
    cr_assert(strstr(text, "source 10.0.0.2:6379: full_sync, snapshot 0.5 MB of 1.0 MB (50%), "
                           "42 keys, 2 s left") != NULL,
              "%s", text);
    int lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 5, "%s", text);
    free(text);
}
