/* test_status.c - the status endpoint (--status-addr, status_server.h) of a
 * real `ringsync sync` between two redis-server fixtures, polled through
 * each phase:
 *
 *   1. the destination pauses writes (CLIENT PAUSE WRITE) before the job
 *      starts, so the snapshot cannot be applied yet: /status says
 *      full_sync, with the snapshot's keys, not ready for a cut-over;
 *   2. the pause ends: incremental; a write load, then once ringsync has
 *      acknowledged everything, the received and applied offsets equal the
 *      source's own master_repl_offset (INFO replication), lag 0 bytes and
 *      under the threshold, ready for a cut-over;
 *   3. the destination pauses again under writes: the lag in ms grows while
 *      it is paused, ready_for_cutover turns false past 1000 ms, and the lag
 *      falls back to 0 once it resumes;
 *   4. /metrics, taken in every phase, parses with prometheus_client's parser
 *      (Debian python3-prometheus-client) and agrees with /status;
 *      `ringsync status` prints the state for a person, --json the JSON;
 *   5. --status-addr none serves nothing, a bad one is bad usage, and
 *      --log-format json writes every line as a JSON object.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "redis_fixture.h"
#include "status_client.h"
#include "sync_watch.h"

#define PYTHON "/usr/bin/python3" /* Debian's, where python3-prometheus-client is */

TestSuite(status, .fini = redis_fixture_stop_all, .timeout = 120);

/* ------------------------------------------------------------------ helpers */

/* The address the sync logged: "status on http://HOST:PORT/status". */
static void status_addr_of(struct program *p, char *addr, size_t cap)
{
    if (!program_wait_for_stderr(p, "status on http://", 10000))
        ringsync_fail(p, "no \"status on http://\" line");
    char *err = program_stderr(p, NULL);
    const char *at = strstr(err, "status on http://") + strlen("status on http://");
    size_t n = strcspn(at, "/");
    cr_assert(n > 0 && n < cap);
    snprintf(addr, cap, "%.*s", (int)n, at);
    free(err);
}

static char *http_get(const char *addr, const char *path)
{
    int code = 0;
    char *body = NULL, err[256];
    cr_assert(status_client_get(addr, path, 5000, &code, &body, err, sizeof(err)) == 0,
              "GET %s: %s", path, err);
    cr_assert(code == 200, "GET %s: HTTP %d: %s", path, code, body);
    return body;
}

static json_object *status_json(const char *addr)
{
    char *body = http_get(addr, "/status");
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, body, (int)strlen(body));
    cr_assert(o != NULL, "/status is not JSON: %s", body);
    json_tokener_free(tok);
    free(body);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
              json_object_to_json_string(o));
    return v;
}

static const char *state_of(json_object *o)
{
    return json_object_get_string(get(o, "state"));
}

static json_object *shard0(json_object *o)
{
    json_object *shards = get(o, "shards");
    cr_assert_eq(json_object_array_length(shards), 1, "%s", json_object_to_json_string(o));
    return json_object_array_get_idx(shards, 0);
}

static int64_t shard_i64(json_object *o, const char *key)
{
    return json_object_get_int64(get(shard0(o), key));
}

/* Polls /status until its state is want (the JSON, the caller puts it). */
static json_object *wait_state(struct program *p, const char *addr, const char *want, int ms)
{
    long long deadline = fixture_now_ms() + ms;
    for (;;) {
        json_object *o = status_json(addr);
        if (strcmp(state_of(o), want) == 0)
            return o;
        if (fixture_now_ms() > deadline || program_has_exited(p)) {
            char *last = strdup(json_object_to_json_string(o));
            json_object_put(o);
            ringsync_fail(p, "/status never said %s within %d ms; last: %s", want, ms, last);
        }
        json_object_put(o);
        sleep_ms(20);
    }
}

/* /metrics through prometheus_client's parser: it must parse, and the
 * script prints "name{labels} value" per sample for the checks below. */
static char *metrics_parsed(const char *addr)
{
    char *text = http_get(addr, "/metrics");
    char in[] = "/tmp/rs-status-metrics-XXXXXX";
    int fd = mkstemp(in);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char out[64];
    snprintf(out, sizeof(out), "%s.out", in);
    const char *script =
        "import sys\n"
        "from prometheus_client.parser import text_string_to_metric_families\n"
        "t = sys.stdin.read()\n"
        "fams = list(text_string_to_metric_families(t))\n"
        "assert fams, 'no metric'\n"
        "for f in fams:\n"
        "    assert f.name.startswith('ringsync_'), f.name\n"
        "    assert f.documentation, f.name + ': no HELP'\n"
        "    assert f.type in ('counter', 'gauge'), f.name + ': ' + f.type\n"
        "    for s in f.samples:\n"
        "        labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))\n"
        "        print('%s{%s} %r' % (s.name, labels, s.value))\n";
    const char *argv[] = {PYTHON, "-c", script, NULL};
    struct program_result r;
    cr_assert(program_run(argv, in, out, 10000, &r) == 0);
    char st[64];
    cr_assert(r.exited && r.exit_code == 0, "prometheus_client refused /metrics (%s): %s\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err, text);
    program_result_deinit(&r);
    size_t len;
    char *parsed = fixture_read_file(out, &len);
    cr_assert_not_null(parsed);
    unlink(in);
    unlink(out);
    free(text);
    return parsed;
}

/* The value of the sample "name{labels}" in metrics_parsed's output. */
static double metric(const char *parsed, const char *series)
{
    char needle[512];
    snprintf(needle, sizeof(needle), "%s ", series);
    for (const char *l = parsed; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, needle, strlen(needle)) == 0)
            return strtod(l + strlen(needle), NULL);
    cr_assert_fail("no sample %s in:\n%s", series, parsed);
    return 0;
}

/* Writes n SETs to the source, pipelined. */
static void write_load(struct redis_fixture *src, const char *prefix, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, src->ctx, 500);
    for (int i = 0; i < n; i++)
        redis_pipeline_append(&pl, "SET %s:%d %d", prefix, i, i);
    redis_pipeline_flush(&pl);
}

/* ------------------------------------------------------------------ the test */

Test(status, the_status_follows_a_sync_through_every_phase)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    write_load(src, "snap", 3000);

    /* 1. full sync, held: the destination takes no write for a while */
    redis_fixture_exec(dst->ctx, "CLIENT PAUSE 2500 WRITE");
    const char *const extra[] = {"--checkpoint", "none", "--restore", "never", NULL};
    struct program *p = ringsync_start_ports(src->port, dst->port, "1", false, extra);
    char addr[128];
    status_addr_of(p, addr, sizeof(addr));
    cr_assert(strncmp(addr, "127.0.0.1:", 10) == 0, "the default is loopback: %s", addr);
    json_object *o = wait_state(p, addr, "full_sync", 5000);
    cr_assert(!json_object_get_boolean(get(o, "ready_for_cutover")));
    json_object *snap = get(shard0(o), "snapshot");
    cr_assert(!json_object_get_boolean(get(snap, "done")));
    json_object_put(o);
    char *m = metrics_parsed(addr);
    cr_assert_eq(metric(m, "ringsync_state{state=full_sync}"), 1.0, "%s", m);
    cr_assert_eq(metric(m, "ringsync_ready_for_cutover{}"), 0.0, "%s", m);
    free(m);

    /* 2. following: after a load, the offsets are the source's own */
    wait_snapshot_applied(p);
    o = wait_state(p, addr, "incremental", 5000);
    cr_assert_eq(json_object_get_int64(get(get(shard0(o), "snapshot"), "keys")), 3000);
    json_object_put(o);
    write_load(src, "live", 2000);
    wait_caught_up(src, -1, p, "after the load");
    long long deadline = fixture_now_ms() + 5000;
    for (;;) { /* the source may PING meanwhile: compare with an offset read on both sides */
        long long before = info_number(src->ctx, "replication", "master_repl_offset");
        o = status_json(addr);
        long long after = info_number(src->ctx, "replication", "master_repl_offset");
        if (before == after && shard_i64(o, "received_offset") == before &&
            shard_i64(o, "applied_offset") == before)
            break;
        cr_assert(fixture_now_ms() < deadline,
                  "/status's offsets never matched the source's master_repl_offset %lld: %s", after,
                  json_object_to_json_string(o));
        json_object_put(o);
        sleep_ms(20);
    }
    cr_assert_eq(shard_i64(o, "lag_bytes"), 0);
    cr_assert_lt(json_object_get_double(get(shard0(o), "lag_ms")), 1000.0);
    cr_assert_gt(shard_i64(o, "stream_commands"), 0);
    cr_assert(json_object_get_boolean(get(o, "ready_for_cutover")), "%s",
              json_object_to_json_string(o));
    json_object *node = json_object_array_get_idx(get(shard0(o), "destination_nodes"), 0);
    cr_assert_gt(json_object_get_int64(get(node, "commands_acknowledged")), 0);
    cr_assert_geq(json_object_get_int64(get(node, "commands_sent")),
                  json_object_get_int64(get(node, "commands_acknowledged")));
    long long applied = shard_i64(o, "applied_offset");
    json_object_put(o);
    m = metrics_parsed(addr);
    char series[256];
    snprintf(series, sizeof(series), "ringsync_source_applied_offset_bytes{shard=127.0.0.1:%d}",
             src->port);
    cr_assert_eq((long long)metric(m, series), applied, "%s", m);
    cr_assert_eq(metric(m, "ringsync_state{state=incremental}"), 1.0, "%s", m);
    cr_assert_eq(metric(m, "ringsync_ready_for_cutover{}"), 1.0, "%s", m);
    free(m);

    /* 3. the destination paused under writes: the lag grows, then falls */
    redis_fixture_exec(dst->ctx, "CLIENT PAUSE 2000 WRITE");
    long long paused_at = fixture_now_ms();
    write_load(src, "paused", 500);
    sleep_ms(300);
    o = status_json(addr);
    double lag1 = json_object_get_double(get(shard0(o), "lag_ms"));
    cr_assert_gt(shard_i64(o, "lag_bytes"), 0, "%s", json_object_to_json_string(o));
    json_object_put(o);
    sleep_ms(1000);
    o = status_json(addr);
    double lag2 = json_object_get_double(get(shard0(o), "lag_ms"));
    long long at = fixture_now_ms() - paused_at;
    cr_assert(at < 2000, "the machine is too slow for this test's pause (%lld ms)", at);
    cr_assert(lag2 >= lag1 + 800 && lag2 >= 1000,
              "the lag did not grow while the destination was paused: %.0f ms, then %.0f ms "
              "1 s later",
              lag1, lag2);
    cr_assert(!json_object_get_boolean(get(o, "ready_for_cutover")), "%s",
              json_object_to_json_string(o));
    json_object_put(o);
    m = metrics_parsed(addr);
    snprintf(series, sizeof(series), "ringsync_lag_seconds{shard=127.0.0.1:%d}", src->port);
    cr_assert_geq(metric(m, series), 1.0, "%s", m);
    free(m);
    wait_caught_up(src, -1, p, "after the pause");
    deadline = fixture_now_ms() + 5000;
    for (;;) {
        o = status_json(addr);
        if (shard_i64(o, "lag_bytes") == 0 &&
            json_object_get_double(get(shard0(o), "lag_ms")) == 0.0)
            break;
        cr_assert(fixture_now_ms() < deadline, "the lag never fell back to 0: %s",
                  json_object_to_json_string(o));
        json_object_put(o);
        sleep_ms(20);
    }
    cr_assert(json_object_get_boolean(get(o, "ready_for_cutover")), "%s",
              json_object_to_json_string(o));
    json_object_put(o);

    /* 4. ringsync status, for a person and as JSON */
    char addr_opt[160];
    snprintf(addr_opt, sizeof(addr_opt), "%s", addr);
    const char *argv[] = {fixture_env("RS_RINGSYNC"), "status", "--status-addr", addr_opt, NULL};
    char out[] = "/tmp/rs-status-out-XXXXXX";
    int fd = mkstemp(out);
    cr_assert(fd >= 0);
    close(fd);
    struct program_result r;
    cr_assert(program_run(argv, NULL, out, 10000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 0, "ringsync status: %s", r.err);
    program_result_deinit(&r);
    size_t len;
    char *text = fixture_read_file(out, &len);
    cr_assert(text != NULL && strncmp(text, "state: incremental", 18) == 0, "%s", text);
    cr_assert(strstr(text, "ready for cut-over: yes") != NULL, "%s", text);
    free(text);
    const char *argv_json[] = {
        fixture_env("RS_RINGSYNC"), "status", "--status-addr", addr_opt, "--json", NULL};
    cr_assert(program_run(argv_json, NULL, out, 10000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 0, "ringsync status --json: %s", r.err);
    program_result_deinit(&r);
    text = fixture_read_file(out, &len);
    json_object *j = json_tokener_parse(text);
    cr_assert(j != NULL, "ringsync status --json printed no JSON: %s", text);
    cr_assert_str_eq(state_of(j), "incremental");
    json_object_put(j);
    free(text);
    unlink(out);

    ringsync_stop(p, "the end");
    redis_fixture_stop(src);
    redis_fixture_stop(dst);
}

Test(status, status_addr_none_serves_nothing_and_json_logs_are_json_lines)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    const char *const none[] = {"--status-addr", "none", "--checkpoint", "none", "--log-format",
                                "json",          NULL};
    struct program *p = ringsync_start_ports(src->port, dst->port, "1", true, none);
    wait_snapshot_applied(p);
    cr_assert(!stderr_has(p, "status on http://"), "a server was started");
    struct program_result res;
    ringsync_stop_result(p, "--status-addr none", &res);
    int lines = 0;
    for (char *line = strtok(res.err, "\n"); line != NULL; line = strtok(NULL, "\n"), lines++) {
        json_object *o = json_tokener_parse(line);
        cr_assert(o != NULL && json_object_is_type(o, json_type_object), "not JSON: %s", line);
        const char *level = json_object_get_string(get(o, "level"));
        cr_assert(strcmp(level, "info") == 0 || strcmp(level, "warning") == 0, "%s", line);
        cr_assert(json_object_get_string(get(o, "time"))[0] != '\0');
        cr_assert(json_object_get_string(get(o, "message"))[0] != '\0');
        json_object_put(o);
    }
    cr_assert_geq(lines, 2, "too few lines");
    program_result_deinit(&res);

    char source[64], target[64];
    snprintf(source, sizeof(source), "redis://127.0.0.1:%d", src->port);
    snprintf(target, sizeof(target), "redis://127.0.0.1:%d", dst->port);
    const char *argv[] = {fixture_env("RS_RINGSYNC"),
                          "sync",
                          "--source",
                          source,
                          "--target",
                          target,
                          "--status-addr",
                          "127.0.0.1",
                          NULL};
    struct program_result r;
    cr_assert(program_run(argv, NULL, NULL, 10000, &r) == 0);
    cr_assert(r.exited && r.exit_code == 2, "a port-less --status-addr: %s", r.err);
    cr_assert(strstr(r.err, "--status-addr") != NULL, "%s", r.err);
    program_result_deinit(&r);
    redis_fixture_stop(src);
    redis_fixture_stop(dst);
}

/* CPU seconds (user + system) of process pid so far, from /proc/PID/stat. */
static double cpu_seconds_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char *s = fixture_read_file(path, NULL);
    cr_assert(s != NULL, "cannot read %s", path);
    const char *at = strrchr(s, ')'); /* the name may hold spaces */
    unsigned long long ut = 0, st = 0;
    cr_assert(at != NULL && sscanf(at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                   &ut, &st) == 2,
              "cannot parse %s", path);
    free(s);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* An idle job (caught up, no writes) with its status server on must not
 * keep a core busy: the status sampler once waited on a CLOCK_MONOTONIC
 * deadline with a CLOCK_REALTIME condition variable, and spun. */
Test(status, an_idle_job_with_its_status_server_burns_no_cpu)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    struct program *p = ringsync_start_ports(src->port, dst->port, "1", true, NULL);
    wait_snapshot_applied(p);
    cr_assert(program_wait_for_stderr(p, "status on http://", 5000), "no status server");
    sleep_ms(300);
    double c0 = cpu_seconds_of(p->pid);
    sleep_ms(2000);
    double used = cpu_seconds_of(p->pid) - c0;
    cr_assert(used < 0.2, "an idle ringsync used %.2f CPU-s in 2 s (more than 10%% of a core)",
              used);
    ringsync_stop(p, "idle");
    redis_fixture_stop(src);
    redis_fixture_stop(dst);
}

/* shard 0's heartbeat_lag_ms, -1 while null */
static double heartbeat_lag(const char *addr)
{
    json_object *o = status_json(addr);
    json_object *v = get(shard0(o), "heartbeat_lag_ms");
    double d = json_object_is_type(v, json_type_null) ? -1 : json_object_get_double(v);
    json_object_put(o);
    return d;
}

/* --heartbeat-key: the lag a write on the source sees until the destination
 * applied it. A destination that holds writes back for 1.5 s shows in it
 * (a lag taken when the heartbeat is read, not applied, would not), then it
 * falls back; the key itself is on both sides. */
Test(status, the_heartbeat_times_a_write_through_to_the_destination, .timeout = 60)
{
    struct redis_fixture *src = redis_fixture_start(NULL);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    const char *const extra[] = {"--heartbeat-key", "ringsync:heartbeat", NULL};
    struct program *p = ringsync_start_ports(src->port, dst->port, "1", true, extra);
    char addr[128];
    status_addr_of(p, addr, sizeof(addr));
    wait_snapshot_applied(p);
    long long deadline = fixture_now_ms() + 5000;
    double lag;
    while ((lag = heartbeat_lag(addr)) < 0) {
        cr_assert(fixture_now_ms() < deadline, "no heartbeat lag within 5 s");
        sleep_ms(50);
    }
    cr_assert(lag < 500, "an idle job's heartbeat lag is %.0f ms", lag);
    redis_fixture_exec(dst->ctx, "CLIENT PAUSE 1500 WRITE");
    double most = 0;
    deadline = fixture_now_ms() + 4000;
    while (fixture_now_ms() < deadline) {
        double l = heartbeat_lag(addr);
        if (l > most)
            most = l;
        sleep_ms(50);
    }
    cr_assert(most >= 500, "a destination paused 1.5 s: the heartbeat lag peaked at %.0f ms", most);
    deadline = fixture_now_ms() + 5000;
    while ((lag = heartbeat_lag(addr)) > 300) {
        cr_assert(fixture_now_ms() < deadline, "the heartbeat lag stays at %.0f ms", lag);
        sleep_ms(50);
    }
    char *m = http_get(addr, "/metrics");
    cr_assert(strstr(m, "ringsync_heartbeat_lag_seconds{shard=") != NULL, "no metric:\n%s", m);
    free(m);
    ringsync_stop(p, "heartbeat");
    redisReply *a = redis_fixture_command(src->ctx, "GET ringsync:heartbeat");
    redisReply *b = redis_fixture_command(dst->ctx, "GET ringsync:heartbeat");
    cr_assert(a->type == REDIS_REPLY_STRING && b->type == REDIS_REPLY_STRING &&
                  strcmp(a->str, b->str) == 0,
              "the heartbeat key differs between the sides");
    freeReplyObject(a);
    freeReplyObject(b);
    redis_fixture_stop(src);
    redis_fixture_stop(dst);
}
