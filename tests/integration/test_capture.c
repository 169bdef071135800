/* test_capture.c - `ringsync capture` records what a replica of the source
 * receives, and `ringsync replay` applies it again, with real redis-server
 * processes (capture_file.h, capture.c, replay.h).
 *
 *     source ──PSYNC──▶ ringsync capture ──▶ DIR (snapshot.rdb, stream.rsc, MANIFEST)
 *                                              │
 *                    target ◀── ringsync replay ┘  (started empty)
 *
 * The tests:
 *   - every command type: the source holds the sample of every type
 *     (fill_sample.h) and has a native replica; the capture starts, the
 *     scripted load of every write command family runs on the source
 *     (write_script.h); once the source shows the capture's acknowledged
 *     offset (and the replica's) equal to its own, SIGINT ends the capture
 *     (exit 0, its MANIFEST's end offset is the source's), and a replay at
 *     --speed max into an empty target must apply the stream to that offset
 *     and leave the target equal to the native replica (why not the source:
 *     see the comment above that test): DEBUG DIGEST, key by key (redis_model.h),
 *     FUNCTION LIST. Then one key changed on the target must show in both
 *     comparisons;
 *   - 1x keeps the recorded pace: 30 bursts of 200 SETs 100 ms apart,
 *     captured, replayed at --speed 1, 4 and max; the JSON report's applied
 *     time follows the recorded span (divided by the speed), and its rows
 *     count every SET with latency percentiles;
 *   - a capture cut inside a stream record, one without MANIFEST, and one
 *     with a flipped byte in snapshot.rdb are refused (exit 1, naming the file
 *     and the offset) with nothing applied to the target; the intact capture
 *     replays (the control);
 *   - bad usage: replay without --target or with --speed 0 exits 2; a capture
 *     into a directory that holds a capture exits 1 without connecting to the
 *     source.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <json-c/json.h>

#include "capture_file.h"
#include "fill_sample.h"
#include "dataset_compare.h"
#include "redis_fixture.h"
#include "redis_model.h"
#include "write_script.h"

#define CAPTURE_LISTENING_PORT 7 /* how the source's INFO names the capture */
#define CATCH_UP_TIMEOUT_MS    30000
#define SNAPSHOT_TIMEOUT_MS    30000
#define STOP_TIMEOUT_MS        10000
#define REPLAY_TIMEOUT_MS      60000
#define PACE_BURSTS            30
#define PACE_BURST_SETS        200
#define PACE_BURST_EVERY_MS    100

static void capture_fini(void);

TestSuite(capture, .fini = capture_fini, .timeout = 120);

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long info_number(redisContext *c, const char *section, const char *field)
{
    char buf[64];
    cr_assert(redis_fixture_info(c, section, field, buf, sizeof(buf)), "no %s in INFO %s", field,
              section);
    return atoll(buf);
}

static void uri_of(const struct redis_fixture *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "redis://127.0.0.1:%d", f->port);
}

/* ------------------------------------------------------------ directories */

struct tmp {
    char root[64]; /* mkdtemp; removed with all in it by tmp_remove */
};

/* The directory of the running test (a copy: a failed assertion leaves the
 * test's frame), removed by the suite's .fini if the test failed first. */
static char live_root[64];

static void tmp_make(struct tmp *t)
{
    snprintf(t->root, sizeof(t->root), "/tmp/rs-capture-XXXXXX");
    cr_assert(mkdtemp(t->root) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(live_root, sizeof(live_root), "%s", t->root);
}

/* root/name in buf. */
static const char *tmp_path(const struct tmp *t, const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", t->root, name);
    cr_assert(n > 0 && (size_t)n < cap);
    return buf;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tmp_remove(struct tmp *t)
{
    nftw(t->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    live_root[0] = 0;
}

/* Programs and servers first (a capture still writing), then the files. */
static void capture_fini(void)
{
    redis_fixture_stop_all();
    if (live_root[0] != 0)
        nftw(live_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint8_t *file_get(const char *dir, const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *p = fixture_read_file(path, len);
    cr_assert(p != NULL, "cannot read %s", path);
    return (uint8_t *)p;
}

static void file_put(const char *dir, const char *name, const void *p, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "cannot create %s: %s", path, strerror(errno));
    cr_assert(fwrite(p, 1, len, f) == len && fclose(f) == 0, "cannot write %s", path);
}

/* A copy of the capture in from (its three files, those present) into to. */
static void capture_copy(const char *from, const char *to)
{
    cr_assert(mkdir(to, 0755) == 0, "mkdir %s: %s", to, strerror(errno));
    static const char *const names[] = {CAPTURE_SNAPSHOT_FILE, CAPTURE_STREAM_FILE,
                                        CAPTURE_MANIFEST_FILE};
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        uint8_t *p = file_get(from, names[i], &len);
        file_put(to, names[i], p, len);
        free(p);
    }
}

/* The MANIFEST's value of field (a number). */
static uint64_t manifest_number(const char *dir, const char *field)
{
    size_t len;
    char *text = (char *)file_get(dir, CAPTURE_MANIFEST_FILE, &len);
    char key[64];
    snprintf(key, sizeof(key), "\n%s ", field);
    const char *at = strstr(text, key);
    cr_assert(at != NULL, "no %s in the MANIFEST:\n%s", field, text);
    uint64_t v = strtoull(at + strlen(key), NULL, 10);
    free(text);
    return v;
}

/* ------------------------------------------------------------ capture */

/* Fails the test with the program's state and standard error. */
#define program_fail(p, ...)                                                                       \
    do {                                                                                           \
        char *err_ = program_stderr(p, NULL);                                                      \
        char *what_ = NULL;                                                                        \
        cr_assert(asprintf(&what_, __VA_ARGS__) >= 0);                                             \
        cr_assert_fail("%s\nringsync %s; its stderr:\n%s", what_,                                  \
                       program_has_exited(p) ? "has exited" : "is running", err_);                 \
    } while (0)

/* Starts `ringsync capture` from src into dir, and waits until it records
 * the stream (the snapshot is in snapshot.rdb). */
static struct program *capture_start(const struct redis_fixture *src, const char *dir)
{
    char source[64], port[16];
    uri_of(src, source, sizeof(source));
    snprintf(port, sizeof(port), "%d", CAPTURE_LISTENING_PORT);
    const char *argv[] = {fixture_env("RS_RINGSYNC"), "capture", "--source", source, "--out", dir,
                          "--listening-port",         port,      NULL};
    int e = 0;
    struct program *p = program_start(argv, NULL, &e);
    cr_assert(p != NULL, "cannot start %s: %s", argv[0], strerror(e));
    if (!program_wait_for_stderr(p, "recording the stream", SNAPSHOT_TIMEOUT_MS))
        program_fail(p, "the capture did not say \"recording the stream\" within %d ms",
                     SNAPSHOT_TIMEOUT_MS);
    return p;
}

/* The source's master_repl_offset, the capture's slave line (the one with
 * port=CAPTURE_LISTENING_PORT): its acknowledged offset and state, and the
 * native replica's offset (the line with port=replica_port, when > 0). */
struct capture_view {
    long long master_offset, offset, replica_offset;
    bool is_listed, is_replica_listed;
    char state[32];
    char text[2048];
};

static void capture_view_take(redisContext *src, int replica_port, struct capture_view *v)
{
    memset(v, 0, sizeof(*v));
    v->master_offset = -1;
    redisReply *r = redis_fixture_command(src, "INFO replication");
    cr_assert(r->type == REDIS_REPLY_STRING);
    snprintf(v->text, sizeof(v->text), "%s", r->str);
    char want[32], replica[32];
    snprintf(want, sizeof(want), ",port=%d,", CAPTURE_LISTENING_PORT);
    snprintf(replica, sizeof(replica), ",port=%d,", replica_port);
    for (char *line = strtok(r->str, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
        long long off;
        if (sscanf(line, "master_repl_offset:%lld", &off) == 1) {
            v->master_offset = off;
            continue;
        }
        if (strncmp(line, "slave", 5) != 0)
            continue;
        const char *state = strstr(line, ",state=");
        const char *offset = strstr(line, ",offset=");
        if (state == NULL || offset == NULL)
            continue;
        if (replica_port > 0 && strstr(line, replica) != NULL) {
            v->is_replica_listed = true;
            v->replica_offset = atoll(offset + 8);
            continue;
        }
        if (strstr(line, want) == NULL)
            continue;
        v->is_listed = true;
        v->offset = atoll(offset + 8);
        size_t n = strcspn(state + 7, ",");
        snprintf(v->state, sizeof(v->state), "%.*s", (int)n, state + 7);
    }
    freeReplyObject(r);
    cr_assert(v->master_offset >= 0, "no master_repl_offset in:\n%s", v->text);
}

/* Waits until the capture has acknowledged everything the source sent (it
 * ACKs what it received every 100 ms), and the native replica too when
 * replica_port > 0; the capture must never acknowledge more. */
static long long capture_wait_caught_up(struct redis_fixture *src, int replica_port,
                                        struct program *p)
{
    long long deadline = fixture_now_ms() + CATCH_UP_TIMEOUT_MS;
    struct capture_view v;
    for (;;) {
        capture_view_take(src->ctx, replica_port, &v);
        cr_assert(!v.is_listed || v.offset <= v.master_offset,
                  "the capture acknowledged offset %lld, past the source's %lld:\n%s", v.offset,
                  v.master_offset, v.text);
        bool replica_done =
            replica_port <= 0 || (v.is_replica_listed && v.replica_offset == v.master_offset);
        if (v.is_listed && v.offset == v.master_offset && strcmp(v.state, "online") == 0 &&
            replica_done)
            return v.master_offset;
        if (program_has_exited(p))
            program_fail(p, "the capture exited while catching up");
        if (fixture_now_ms() > deadline)
            program_fail(p,
                         "within %d ms the capture's acknowledged offset %lld (listed: %d, "
                         "state %s) and the native replica's %lld did not reach the source's "
                         "%lld:\n%s",
                         CATCH_UP_TIMEOUT_MS, v.offset, v.is_listed, v.state, v.replica_offset,
                         v.master_offset, v.text);
        sleep_ms(20);
    }
}

/* SIGINT: the files are finished, exit 0. */
static void capture_stop(struct program *p)
{
    struct program_result r;
    program_finish(p, SIGINT, STOP_TIMEOUT_MS, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 0, "the capture ended with %s after SIGINT; stderr:\n%s",
              program_result_describe(&r, st, sizeof(st)), r.err);
    cr_assert(strstr(r.err, "done after") != NULL, "no \"done after\" line; stderr:\n%s", r.err);
    program_result_deinit(&r);
}

/* Starts a capture, runs load(src), waits until the capture (and the native
 * replica on replica_port, when > 0) acknowledged the source's offset, stops
 * it; the MANIFEST must end exactly there. */
static void capture_around(struct redis_fixture *src, int replica_port, const char *dir,
                           void (*load)(struct redis_fixture *src))
{
    struct program *p = capture_start(src, dir);
    load(src);
    long long end = capture_wait_caught_up(src, replica_port, p);
    capture_stop(p);
    cr_assert_eq(info_number(src->ctx, "replication", "master_repl_offset"), end,
                 "the source moved after the load");
    uint64_t got = manifest_number(dir, "end_offset");
    cr_assert(got == (uint64_t)end, "the MANIFEST's end_offset is %" PRIu64 ", the source's %lld",
              got, end);
}

/* ------------------------------------------------------------ replay */

/* Runs `ringsync replay dir --target dst --speed speed --workers 2` with
 * --json json (NULL: none) and its standard output to out (NULL: none). */
static void replay_run(const char *dir, const struct redis_fixture *dst, const char *speed,
                       const char *json, const char *out, struct program_result *r)
{
    char target[64];
    uri_of(dst, target, sizeof(target));
    const char *argv[16];
    int argc = 0;
    argv[argc++] = fixture_env("RS_RINGSYNC");
    argv[argc++] = "replay";
    argv[argc++] = dir;
    argv[argc++] = "--target";
    argv[argc++] = target;
    argv[argc++] = "--speed";
    argv[argc++] = speed;
    argv[argc++] = "--workers";
    argv[argc++] = "2";
    if (json != NULL) {
        argv[argc++] = "--json";
        argv[argc++] = json;
    }
    argv[argc] = NULL;
    int rc = program_run(argv, NULL, out, REPLAY_TIMEOUT_MS, r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
}

/* Runs the replay, which must exit 0 having applied the stream up to the
 * capture's end offset (its last line says "up to offset N"): the exit
 * status alone would not show commands left behind. */
static void replay_ok(const char *dir, const struct redis_fixture *dst, const char *speed,
                      const char *json, struct program_result *r)
{
    replay_run(dir, dst, speed, json, NULL, r);
    char st[64];
    cr_assert(r->exited && r->exit_code == 0, "replay --speed %s ended with %s; stderr:\n%s", speed,
              program_result_describe(r, st, sizeof(st)), r->err);
    const char *at = strstr(r->err, "up to offset ");
    uint64_t applied = 0, end = manifest_number(dir, "end_offset");
    cr_assert(at != NULL && sscanf(at, "up to offset %" SCNu64, &applied) == 1,
              "replay --speed %s does not say \"up to offset N\":\n%s", speed, r->err);
    cr_assert(applied == end,
              "replay --speed %s applied the stream up to offset %" PRIu64 ", the capture ends at "
              "%" PRIu64 ":\n%s",
              speed, applied, end, r->err);
}

/* Keys in all databases (INFO keyspace). */
static long long total_keys(redisContext *c)
{
    redisReply *r = redis_fixture_command(c, "INFO keyspace");
    cr_assert(r->type == REDIS_REPLY_STRING);
    long long n = 0;
    for (const char *at = strstr(r->str, ":keys="); at != NULL; at = strstr(at + 1, ":keys="))
        n += atoll(at + 6);
    freeReplyObject(r);
    return n;
}

/* ------------------------------------------------------------ comparing */

/* ------------------------------------------------------------ every command type */

/* What runs on the source while it is captured: active expiry back on (the
 * sample turned it off to keep its already-expired keys in a SAVE), a wait
 * until it has deleted those keys (their DELs go into the stream), then the
 * script of every write command family. */
static void load_every_family(struct redis_fixture *src)
{
    long long before = info_number(src->ctx, "stats", "expired_keys");
    redis_fixture_exec(src->ctx, "DEBUG SET-ACTIVE-EXPIRE 1");
    long long deadline = fixture_now_ms() + 5000;
    while (info_number(src->ctx, "stats", "expired_keys") < before + FILL_SAMPLE_EXPIRED_KEYS) {
        cr_assert(fixture_now_ms() < deadline,
                  "the source's active expiry did not delete the sample's %d expired keys",
                  FILL_SAMPLE_EXPIRED_KEYS);
        sleep_ms(20);
    }
    write_script_run(src);
}

/* The oracle (dataset_compare.h) is a native replica of the source here,
 * the source itself in the refusal test's control (plain writes).
 *
 * Why a native replica rather than the source: a capture is what a replica
 * receives, and what the source holds is not always what its stream
 * makes. Redis 7.0 replicates an XREADGROUP that was blocked and then served
 * (the script's bx:1) as XCLAIM ... LASTID without ENTRIESREAD, so the
 * source's group says entries_read 1 and every replica of it (a native one,
 * or a capture replayed) says null. A native replica is the exact oracle:
 * the test waits until both it and the capture acknowledged the source's
 * master_repl_offset, writes nothing after, and checks the MANIFEST's
 * end_offset, so both hold snapshot + the same stream.
 *
 * Expiry cannot make them differ: every TTL the sample and the script leave
 * is absolute (Redis 7.0 replicates EXPIRE, SET EX and RESTORE with absolute
 * times) and days or years ahead; the keys that do expire during the test
 * (the sample's three already-expired keys, deleted once the test turns
 * active expiry back on, and the script's four PX 50 keys) were deleted by
 * the source's active expiry while the capture ran, and the test waits for
 * it, so their DELs are in the stream: a replica (which never expires keys
 * itself) and the replayed target both delete them, and no key is logically
 * expired while the comparison reads. Consumers' seen-times are left out:
 * XCLAIM stamps the clock of the server that runs it. */
Test(capture, every_command_type_replays_into_a_target_equal_to_a_native_replica)
{
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&o);
    struct redis_fixture *rep = redis_fixture_start(&o);
    struct redis_fixture *dst = redis_fixture_start(&o);
    fill_sample(src, NULL);
    redis_fixture_replicate(rep, src, 30000);
    struct tmp t;
    tmp_make(&t);
    char dir[128], json[128];
    tmp_path(&t, "cap", dir, sizeof(dir));
    tmp_path(&t, "report.json", json, sizeof(json));
    double t0 = mono_s();
    capture_around(src, rep->port, dir, load_every_family);
    double t1 = mono_s();
    cr_assert(manifest_number(dir, "stream_records") > 0);
    cr_assert(manifest_number(dir, "snapshot_bytes") > (1u << 20)); /* the 1 MiB random string */

    struct program_result r;
    replay_ok(dir, dst, "max", json, &r);
    double t2 = mono_s();
    /* The snapshot holds the sample's three expired keys (active expiry was
     * off): the replay skips them, like sync. */
    char want[64];
    snprintf(want, sizeof(want), " %d expired", FILL_SAMPLE_EXPIRED_KEYS);
    cr_assert(strstr(r.err, want) != NULL, "the replay does not say%s (skipped keys):\n%s", want,
              r.err);
    program_result_deinit(&r);
    struct json_object *j = json_object_from_file(json);
    cr_assert(j != NULL, "%s is not JSON", json);
    struct json_object *stream, *complete;
    cr_assert(json_object_object_get_ex(j, "stream", &stream) &&
              json_object_object_get_ex(stream, "complete", &complete) &&
              json_object_get_boolean(complete));
    json_object_put(j);

    assert_dataset_equals(dst, rep, "native replica", "after replay --speed max");
    assert_comparison_catches_a_change(dst, rep);
    cr_log_info("capture %.2f s, replay %.2f s, comparisons %.2f s", t1 - t0, t2 - t1,
                mono_s() - t2);
    tmp_remove(&t);
}

/* ------------------------------------------------------------ pace */

static double pace_span_s;         /* from the first burst sent to the last */
static double pace_since_marker_s; /* from the marker sent to the last burst */

/* Waits until the capture has acknowledged the source's offset (no program
 * to watch here: a load function runs beside it). */
static void wait_acknowledged(struct redis_fixture *src)
{
    long long deadline = fixture_now_ms() + CATCH_UP_TIMEOUT_MS;
    struct capture_view v;
    for (;;) {
        capture_view_take(src->ctx, -1, &v);
        if (v.is_listed && v.offset == v.master_offset)
            return;
        cr_assert(fixture_now_ms() < deadline, "the capture did not acknowledge the marker:\n%s",
                  v.text);
        sleep_ms(5);
    }
}

/* One INCR, acknowledged by the capture, then PACE_BURSTS bursts of
 * PACE_BURST_SETS pipelined SETs, one every PACE_BURST_EVERY_MS (on a fixed
 * schedule, so lateness does not add up).
 *
 * The marker first because a source that sent the snapshot diskless starts
 * the stream only on an ACK that comes after it has reaped its fork: what it
 * gets meanwhile arrives together, up to an ACK period or two later. The
 * marker takes that delay, so the bursts arrive when they are sent. */
static void load_bursts(struct redis_fixture *src)
{
    double tm = mono_s();
    redis_fixture_exec(src->ctx, "INCR pace:marker");
    wait_acknowledged(src);
    double t0 = mono_s(), last = t0;
    for (int b = 0; b < PACE_BURSTS; b++) {
        double due = t0 + b * PACE_BURST_EVERY_MS / 1000.0;
        double left = due - mono_s();
        if (left > 0)
            sleep_ms((int)(left * 1000));
        last = mono_s();
        struct redis_pipeline p;
        redis_pipeline_init(&p, src->ctx, PACE_BURST_SETS);
        for (int i = 0; i < PACE_BURST_SETS; i++)
            redis_pipeline_append(&p, "SET pace:%d:%d v%d", b, i, i);
        redis_pipeline_flush(&p);
    }
    pace_span_s = last - t0;
    pace_since_marker_s = last - tm;
}

static double jnum(struct json_object *o, const char *name)
{
    struct json_object *v;
    cr_assert(json_object_object_get_ex(o, name, &v), "no \"%s\" in %s", name,
              json_object_to_json_string(o));
    cr_assert(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int),
              "\"%s\" is not a number in %s", name, json_object_to_json_string(o));
    return json_object_get_double(v);
}

static struct json_object *jget(struct json_object *o, const char *name, json_type type)
{
    struct json_object *v;
    cr_assert(json_object_object_get_ex(o, name, &v) && json_object_is_type(v, type),
              "no %s \"%s\" in %s", json_type_to_name(type), name, json_object_to_json_string(o));
    return v;
}

/* A row's latency fields: all there, ordered, none negative. */
static void assert_latencies(struct json_object *row)
{
    struct json_object *l = jget(row, "latency_ms", json_type_object);
    static const char *const q[] = {"p50", "p90", "p99", "p99.9", "max"};
    double prev = 0;
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        double v = jnum(l, q[i]);
        cr_assert(v >= prev, "%s %g below the one before (%g): %s", q[i], v, prev,
                  json_object_to_json_string(row));
        prev = v;
    }
    double mean = jnum(l, "mean");
    cr_assert(mean >= 0 && mean <= prev, "mean %g: %s", mean, json_object_to_json_string(row));
}

struct pace_result {
    double recorded_s, applied_s;
    double max_behind_s; /* the latest a record was handed over after its time */
};

/* Replays at speed into dst (emptied first) and checks the report's rows:
 * every SET counted, the counts adding up, latencies present. */
static void replay_paced(const char *dir, struct redis_fixture *dst, const char *speed,
                         const char *json, struct pace_result *out)
{
    redis_fixture_exec(dst->ctx, "FLUSHALL");
    struct program_result r;
    replay_ok(dir, dst, speed, json, &r);
    program_result_deinit(&r);
    cr_assert_eq(total_keys(dst->ctx), PACE_BURSTS * PACE_BURST_SETS + 2); /* before, marker */

    struct json_object *j = json_object_from_file(json);
    cr_assert(j != NULL, "%s is not JSON", json);
    struct json_object *stream = jget(j, "stream", json_type_object);
    cr_assert(json_object_get_boolean(jget(stream, "complete", json_type_boolean)));
    out->recorded_s = jnum(stream, "recorded_s");
    out->applied_s = jnum(stream, "applied_s");
    out->max_behind_s = jnum(stream, "max_behind_s");
    uint64_t commands = (uint64_t)jnum(stream, "commands");

    struct json_object *rows = jget(j, "commands", json_type_array);
    uint64_t sum = 0, sets = 0;
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        struct json_object *row = json_object_array_get_idx(rows, i);
        const char *name = json_object_get_string(jget(row, "command", json_type_string));
        uint64_t count = (uint64_t)jnum(row, "count");
        cr_assert(count > 0 && jnum(row, "per_s") > 0, "%s", json_object_to_json_string(row));
        assert_latencies(row);
        sum += count;
        if (strcmp(name, "SET") == 0)
            sets = count;
        else
            cr_assert((strcmp(name, "SELECT") == 0 || strcmp(name, "INCR") == 0) && count == 1,
                      "--speed %s: a row other than SET, the marker's INCR and the stream's one "
                      "SELECT: %s",
                      speed, json_object_to_json_string(row));
    }
    cr_assert_eq(sets, PACE_BURSTS * PACE_BURST_SETS, "--speed %s: %" PRIu64 " SETs counted", speed,
                 sets);
    cr_assert_eq(sum, commands,
                 "--speed %s: the rows add up to %" PRIu64 ", the stream to %" PRIu64, speed, sum,
                 commands);
    struct json_object *all = jget(j, "all", json_type_object);
    cr_assert_eq((uint64_t)jnum(all, "count"), commands);
    assert_latencies(all);
    json_object_put(j);
    cr_log_info("--speed %s: applied in %.3f s, recorded over %.3f s, at most %.3f s behind", speed,
                out->applied_s, out->recorded_s, out->max_behind_s);
}

/* The pace tolerance. Never faster than the recorded span over the speed:
 * the feeder hands a record over no earlier than its time, so a replay that
 * ignored the pace (--speed max takes milliseconds, checked below) fails
 * here. At most 10 % + 250 ms slower, plus however late the feeder itself
 * reports it handed a record over (max_behind_s: a busy 2-core machine that
 * runs other tests and benchmarks can hold a thread back for a few hundred
 * ms); a replay that ignored the factor (--speed 4 at the recorded pace)
 * would still be seconds over. */
static void assert_paced(const struct pace_result *p, double speed, const char *what)
{
    double want = p->recorded_s / speed;
    double most = 1.10 * want + 0.25 + p->max_behind_s;
    cr_assert(p->applied_s >= 0.98 * want && p->applied_s <= most,
              "%s: the stream was applied in %.3f s; recorded over %.3f s, so %.3f s expected "
              "(at most %.3f s: the feeder was up to %.3f s behind)",
              what, p->applied_s, p->recorded_s, want, most, p->max_behind_s);
    cr_assert(p->max_behind_s < want, /* the excuse above stays smaller than the replay */
              "%s: the feeder handed a record over %.3f s after its time (the replay takes %.3f s)",
              what, p->max_behind_s, want);
}

Test(capture, replay_at_1x_keeps_the_recorded_pace_and_n_times_faster_with_speed_n)
{
    /* no PING from the source in the stream (every 10 s by default): the
     * recorded span is the load's alone */
    static const char *const src_args[] = {"--repl-ping-replica-period", "60", NULL};
    struct redis_fixture_opts so = {.extra_args = src_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(NULL);
    redis_fixture_exec(src->ctx, "SET before 1");
    struct tmp t;
    tmp_make(&t);
    char dir[128], json[128];
    tmp_path(&t, "cap", dir, sizeof(dir));
    tmp_path(&t, "report.json", json, sizeof(json));
    capture_around(src, -1, dir, load_bursts);

    struct pace_result x1, x4, xmax;
    replay_paced(dir, dst, "1", json, &x1);
    /* what was recorded is the load's span, from the marker's arrival (no
     * earlier than it was sent) to the last burst's (when it was sent, give
     * or take the scheduler) */
    cr_assert(x1.recorded_s > pace_span_s - 0.05 && x1.recorded_s < pace_since_marker_s + 0.1,
              "recorded_s %.3f; the bursts were sent over %.3f s, %.3f s after the marker",
              x1.recorded_s, pace_span_s, pace_since_marker_s);
    assert_paced(&x1, 1, "--speed 1");
    replay_paced(dir, dst, "4", json, &x4);
    assert_paced(&x4, 4, "--speed 4");
    replay_paced(dir, dst, "max", json, &xmax);
    cr_assert(xmax.applied_s < 0.98 * xmax.recorded_s / 4,
              "--speed max took %.3f s, not clearly less than --speed 4's lower bound %.3f s: the "
              "pace checks above could not tell a paced replay from an unpaced one",
              xmax.applied_s, 0.98 * xmax.recorded_s / 4);
    tmp_remove(&t);
}

/* ------------------------------------------------------------ refused captures */

static void load_a_few_records(struct redis_fixture *src)
{
    for (int b = 0; b < 4; b++) {
        struct redis_pipeline p;
        redis_pipeline_init(&p, src->ctx, 0);
        for (int i = 0; i < 50; i++)
            redis_pipeline_append(&p, "RPUSH list:%d %d-%d", i % 5, b, i);
        redis_pipeline_append(&p, "HSET h:%d f v", b);
        redis_pipeline_flush(&p);
        sleep_ms(30); /* separate reads, separate records */
    }
}

struct record_pos {
    uint64_t start;
    uint32_t len;
};

/* The records of a stream.rsc (up to cap), their count. */
static size_t records_of(const uint8_t *p, size_t len, struct record_pos *recs, size_t cap)
{
    size_t n = 0;
    for (size_t at = CAPTURE_HEADER_BYTES; at + CAPTURE_RECORD_BYTES <= len && n < cap;) {
        uint32_t l = (uint32_t)p[at + 8] | (uint32_t)p[at + 9] << 8 | (uint32_t)p[at + 10] << 16 |
                     (uint32_t)p[at + 11] << 24;
        recs[n++] = (struct record_pos){at, l};
        at += CAPTURE_RECORD_BYTES + l;
    }
    return n;
}

/* Replay of a broken capture: exit 1, stderr names every needle, and the
 * target holds nothing. */
static void assert_refused(const char *dir, struct redis_fixture *dst, const char *const *needles,
                           const char *what)
{
    struct program_result r;
    replay_run(dir, dst, "max", NULL, NULL, &r);
    char st[64];
    cr_assert(r.exited && r.exit_code == 1, "%s: replay ended with %s; stderr:\n%s", what,
              program_result_describe(&r, st, sizeof(st)), r.err);
    for (size_t i = 0; needles[i] != NULL; i++)
        cr_assert(strstr(r.err, needles[i]) != NULL, "%s: stderr does not say \"%s\":\n%s", what,
                  needles[i], r.err);
    cr_assert(strstr(r.err, "nothing was applied") != NULL, "%s:\n%s", what, r.err);
    cr_assert_eq(total_keys(dst->ctx), 0, "%s: the target holds keys after a refused replay", what);
    program_result_deinit(&r);
}

Test(capture, a_cut_or_corrupt_capture_is_reported_and_nothing_applied)
{
    /* a snapshot from disk ($<len> framing), the other path of capture.c */
    static const char *const src_args[] = {"--enable-debug-command", "yes", "--repl-diskless-sync",
                                           "no", NULL};
    struct redis_fixture_opts so = {.extra_args = src_args};
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    redis_fixture_exec(src->ctx, "SET snap:1 a");
    redis_fixture_exec(src->ctx, "ZADD snap:z 1 a 2 b");
    struct tmp t;
    tmp_make(&t);
    char dir[128], cut[128], nomanifest[128], flipped[128];
    tmp_path(&t, "cap", dir, sizeof(dir));
    tmp_path(&t, "cut", cut, sizeof(cut));
    tmp_path(&t, "nomanifest", nomanifest, sizeof(nomanifest));
    tmp_path(&t, "flipped", flipped, sizeof(flipped));
    capture_around(src, -1, dir, load_a_few_records);

    /* stream.rsc cut in the middle of its second record */
    capture_copy(dir, cut);
    size_t len;
    uint8_t *stream = file_get(cut, CAPTURE_STREAM_FILE, &len);
    struct record_pos recs[64];
    size_t n = records_of(stream, len, recs, 64);
    cr_assert(n >= 2, "the capture holds %zu stream records", n);
    cr_assert(recs[1].len >= 2);
    size_t at = recs[1].start + CAPTURE_RECORD_BYTES + recs[1].len / 2;
    file_put(cut, CAPTURE_STREAM_FILE, stream, at);
    free(stream);
    char offset[64];
    snprintf(offset, sizeof(offset), "byte %" PRIu64, recs[1].start);
    const char *const cut_says[] = {CAPTURE_STREAM_FILE, offset, "truncated", NULL};
    assert_refused(cut, dst, cut_says, "stream.rsc cut inside record 2");

    /* no MANIFEST: the capture never finished */
    capture_copy(dir, nomanifest);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", nomanifest, CAPTURE_MANIFEST_FILE);
    cr_assert(unlink(path) == 0);
    const char *const nomanifest_says[] = {CAPTURE_MANIFEST_FILE, "missing", NULL};
    assert_refused(nomanifest, dst, nomanifest_says, "no MANIFEST");

    /* a flipped byte in the snapshot (one CRC covers the file: no offset) */
    capture_copy(dir, flipped);
    uint8_t *snap = file_get(flipped, CAPTURE_SNAPSHOT_FILE, &len);
    snap[len / 2] ^= 0x40;
    file_put(flipped, CAPTURE_SNAPSHOT_FILE, snap, len);
    free(snap);
    const char *const flipped_says[] = {CAPTURE_SNAPSHOT_FILE, "CRC", NULL};
    assert_refused(flipped, dst, flipped_says, "a flipped byte in snapshot.rdb");

    /* the control: the capture as it was replays, equal to the source */
    struct program_result r;
    replay_ok(dir, dst, "max", NULL, &r);
    program_result_deinit(&r);
    assert_dataset_equals(dst, src, "source", "the intact capture");
    tmp_remove(&t);
}

/* ------------------------------------------------------------ bad usage */

static int run_exit(const char *const *argv, char **err)
{
    struct program_result r;
    int rc = program_run(argv, NULL, NULL, 10000, &r);
    cr_assert(rc == 0, "cannot run %s: %s", argv[0], strerror(-rc));
    char st[64];
    cr_assert(r.exited, "%s %s ended with %s; stderr:\n%s", argv[1], argv[2],
              program_result_describe(&r, st, sizeof(st)), r.err);
    int code = r.exit_code;
    *err = strdup(r.err);
    program_result_deinit(&r);
    return code;
}

Test(capture, replay_without_target_or_with_speed_0_is_bad_usage)
{
    const char *rs = fixture_env("RS_RINGSYNC");
    static const char *const speeds[] = {"0", "-1", "fast", "2x", ""};
    char *err;
    const char *no_target[] = {rs, "replay", "/nonexistent-capture", "--speed", "max", NULL};
    cr_assert_eq(run_exit(no_target, &err), 2, "replay without --target:\n%s", err);
    cr_assert(strstr(err, "--target") != NULL, "%s", err);
    free(err);
    for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
        const char *argv[] = {rs,
                              "replay",
                              "/nonexistent-capture",
                              "--target",
                              "redis://127.0.0.1:1",
                              "--speed",
                              speeds[i],
                              NULL};
        cr_assert_eq(run_exit(argv, &err), 2, "replay --speed '%s':\n%s", speeds[i], err);
        cr_assert(strstr(err, "--speed") != NULL, "--speed '%s': %s", speeds[i], err);
        free(err);
    }
    const char *no_dir[] = {rs, "replay", "--target", "redis://127.0.0.1:1", NULL};
    cr_assert_eq(run_exit(no_dir, &err), 2, "replay without a directory:\n%s", err);
    free(err);
    /* a directory that is no capture: exit 1, naming it */
    const char *missing[] = {
        rs, "replay", "/nonexistent-capture", "--target", "redis://127.0.0.1:1", NULL};
    cr_assert_eq(run_exit(missing, &err), 1, "replay of a missing directory:\n%s", err);
    cr_assert(strstr(err, "/nonexistent-capture") != NULL, "%s", err);
    free(err);
}

/* A listening socket no one answers on: a connection to it would wait in
 * its backlog, where the test can see it. */
static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 8) == 0);
    socklen_t al = sizeof(a);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(capture, a_capture_into_a_directory_holding_one_is_refused_before_the_source)
{
    struct tmp t;
    tmp_make(&t);
    char finished[128], unfinished[128];
    tmp_path(&t, "finished", finished, sizeof(finished));
    tmp_path(&t, "unfinished", unfinished, sizeof(unfinished));
    struct rs_error e = {0};
    struct capture_writer *w = capture_writer_create(finished, 100, &e);
    cr_assert(w != NULL, "%s", e.msg);
    cr_assert_eq(capture_writer_snapshot(w, "REDIS0010", 9, &e), 0);
    cr_assert_eq(capture_writer_stream(w, 1, "*1\r\n$4\r\nPING\r\n", 14, &e), 0);
    struct capture_meta m = {.source = "127.0.0.1:1"};
    cr_assert_eq(capture_writer_finish(w, &m, &e), 0, "%s", e.msg);
    capture_writer_free(w);
    w = capture_writer_create(unfinished, 100, &e); /* no MANIFEST: cut */
    cr_assert(w != NULL, "%s", e.msg);
    capture_writer_free(w);

    int port;
    int lfd = listener(&port);
    char source[64];
    snprintf(source, sizeof(source), "redis://127.0.0.1:%d", port);
    const char *const dirs[] = {finished, unfinished};
    for (size_t i = 0; i < 2; i++) {
        size_t before_len, after_len;
        uint8_t *before = file_get(dirs[i], CAPTURE_STREAM_FILE, &before_len);
        const char *argv[] = {fixture_env("RS_RINGSYNC"),
                              "capture",
                              "--source",
                              source,
                              "--out",
                              dirs[i],
                              "--timeout-ms",
                              "500",
                              NULL};
        char *err;
        cr_assert_eq(run_exit(argv, &err), 1, "capture into %s:\n%s", dirs[i], err);
        cr_assert(strstr(err, "already holds a capture") != NULL && strstr(err, dirs[i]) != NULL,
                  "the refusal does not say the directory holds a capture:\n%s", err);
        free(err);
        int c = accept(lfd, NULL, NULL);
        cr_assert(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                  "capture into %s connected to the source before refusing", dirs[i]);
        uint8_t *after = file_get(dirs[i], CAPTURE_STREAM_FILE, &after_len);
        cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0,
                  "the refused capture changed %s/%s", dirs[i], CAPTURE_STREAM_FILE);
        free(before);
        free(after);
    }
    close(lfd);
    tmp_remove(&t);
}
