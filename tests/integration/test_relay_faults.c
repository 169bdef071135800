/* test_relay_faults.c - the network between ringsync and its servers fails
 * under a write load of counters (issue 15, "the fault suite"): a
 * fault_relay in front of the source or of the destination resets every
 * connection, swallows everything for seconds (a black hole), passes one byte
 * at a time, or closes a connection in the middle of a reply or a command.
 *
 *     load thread --> source ---------------------------> native replica (the oracle)
 *                        \
 *                         [relay] <-> ringsync <-> [relay] <-> destination
 *                         (one of the two, per test)
 *
 * ringsync takes a lost source link up again with PSYNC from the offset it
 * received (source_reconnect), and a lost destination link by waiting for
 * the destination, reading its checkpoints again and resuming from them
 * (sync_recover). Each test ends with ringsync caught up with the source and
 * the destination equal to the native replica, key by key: the load is
 * INCR, INCRBY, HINCRBY, LPUSH, APPEND and MULTI/EXEC around them (plus SETs),
 * so a command applied twice or lost shows as a wrong value. The source's
 * sync_full must not move: every resume is a partial resync.
 *
 * Source side: the link reset (RST) three times, then again and again; a
 * black hole past --source-timeout; one byte at a time. Destination side:
 * the links reset three times, then again and again (some resets land while
 * ringsync resumes); replies and commands cut after N bytes (until cuts fell
 * inside a reply and inside a command); a black hole of 3 s (nothing is
 * applied meanwhile, then the job goes on); one byte at a time; idle links
 * lost with their keepalive PING unanswered; one link lost while the
 * others stall on a dead path, whose commands arrive after ringsync resumed
 * (they must not run twice); and the w record watched from outside while
 * fences are acknowledged slowly (it must never go back), the links reset
 * the moment it does.
 *
 * Options that keep it fast: --source-timeout 2 (1 in the black-hole test)
 * with the source PINGing its replicas every second, --timeout-ms 1000, and
 * retry timeouts of 20 s so that a job that cannot recover ends (and the
 * test says why) rather than retrying past the test's timeout. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dataset_compare.h"
#include "fault_relay.h"
#include "redis_fixture.h"
#include "sync_watch.h"

#define LOAD_ITERS       50 /* per pipelined round: about 320 commands */
#define LOAD_PAUSE_MS    10 /* between rounds: some 25,000 commands a second */
#define SEED_ROUNDS      40 /* written before ringsync starts: its snapshot */
#define RECOVER_WAIT_MS  20000
#define FAULT_WAIT_MS    10000
#define CUT_ATTEMPTS_MAX 6

static const char *const src_args[] = {"--enable-debug-command",
                                       "yes",
                                       "--repl-backlog-size",
                                       "64mb",
                                       "--repl-ping-replica-period",
                                       "1",
                                       NULL};
static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};

/* ------------------------------------------------------------------- load */

enum load_mix {
    LOAD_MIXED,        /* counters, SETs, and a transaction every 40 iterations */
    LOAD_TRANSACTIONS, /* transactions only: each one over both workers' keys, a fence */
};

/* One round of the load on c, pipelined: its replies are read and none may
 * be an error. 0, or -1 with why filled. */
static int load_round(redisContext *c, enum load_mix mix, long long round, char *why, size_t cap)
{
    int sent = 0;
    for (int j = 0; j < LOAD_ITERS; j++) {
        long long i = round * LOAD_ITERS + j;
        int k = (int)(i % 1000);
        char letter[2] = {(char)('a' + k % 26), '\0'};
        if (mix == LOAD_MIXED) {
            sent += 6;
            redisAppendCommand(c, "INCR cnt:%d", k % 200);
            redisAppendCommand(c, "INCRBY big:%d %d", k % 77, 1 + k % 5);
            redisAppendCommand(c, "LPUSH list:%d %lld", k % 30, i);
            redisAppendCommand(c, "APPEND app:%d %s", k % 20, letter);
            redisAppendCommand(c, "HINCRBY h:%d f%d %d", k % 25, k % 7, 1 + k % 3);
            redisAppendCommand(c, "SET str:%d v%lld", k % 300, i);
        }
        if (mix == LOAD_TRANSACTIONS || i % 40 == 0) {
            redisAppendCommand(c, "MULTI");
            redisAppendCommand(c, "INCR tx:c");
            redisAppendCommand(c, "RPUSH tx:l %lld", i);
            redisAppendCommand(c, "HINCRBY tx:h f 2");
            redisAppendCommand(c, "APPEND tx:s %s", letter);
            redisAppendCommand(c, "EXEC");
            sent += 6;
        }
    }
    for (int n = 0; n < sent; n++) {
        void *v = NULL;
        if (redisGetReply(c, &v) != REDIS_OK) {
            snprintf(why, cap, "round %lld: %s", round, c->errstr);
            return -1;
        }
        redisReply *r = v;
        bool bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(why, cap, "round %lld: -%s", round, r->str);
        freeReplyObject(r);
        if (bad)
            return -1;
    }
    return 0;
}

/* The load on a thread of its own, on a connection of its own, while the
 * test injects faults; it fails nothing itself (Criterion asserts belong to
 * the test's thread): load_stop does. */
struct load {
    pthread_t thread;
    bool is_running;
    redisContext *ctx;
    atomic_bool stop;
    atomic_llong rounds; /* rounds acknowledged */
    enum load_mix mix;
    long long first_round;
    char error[256]; /* the first failure, read after the join */
};

static void *load_main(void *arg)
{
    struct load *ld = arg;
    for (long long r = ld->first_round; !atomic_load(&ld->stop); r++) {
        if (load_round(ld->ctx, ld->mix, r, ld->error, sizeof(ld->error)) != 0)
            break;
        atomic_fetch_add(&ld->rounds, 1);
        sleep_ms(LOAD_PAUSE_MS);
    }
    return NULL;
}

static void load_start(struct load *ld, struct redis_fixture *src, enum load_mix mix,
                       long long first_round)
{
    memset(ld, 0, sizeof(*ld));
    ld->ctx = redis_fixture_connect(src);
    ld->mix = mix;
    ld->first_round = first_round;
    cr_assert(pthread_create(&ld->thread, NULL, load_main, ld) == 0, "cannot start the load");
    ld->is_running = true;
}

/* Stops and joins the load (the suite's .fini too, after a failure). */
static void load_halt(struct load *ld)
{
    if (!ld->is_running)
        return;
    atomic_store(&ld->stop, true);
    pthread_join(ld->thread, NULL);
    ld->is_running = false;
    redisFree(ld->ctx);
    ld->ctx = NULL;
}

static void load_stop(struct load *ld)
{
    load_halt(ld);
    cr_assert(ld->error[0] == '\0', "the load failed on the source: %s", ld->error);
    cr_log_info("load: %lld rounds of %d iterations", atomic_load(&ld->rounds), LOAD_ITERS);
}

/* -------------------------------------------------------------------- rig */

enum relay_side { RELAY_AT_SOURCE, RELAY_AT_DESTINATION };

/* One test's servers, relay, ringsync and load. Static: the suite's .fini
 * finds what a failed assertion left running (each test is a process). */
static struct rig {
    struct redis_fixture *src, *rep, *dst;
    struct fault_relay *relay;
    struct program *p;
    struct load load;
    long long full_syncs; /* the source's sync_full once ringsync's snapshot was in */
} rig;

static void relay_faults_fini(void)
{
    if (rig.load.is_running) {
        atomic_store(&rig.load.stop, true);
        redis_fixture_stop_all(); /* ringsync, then the servers: the load's reads end */
        load_halt(&rig.load);
    }
    redis_fixture_stop_all();
    fault_relay_stop(rig.relay);
    rig.relay = NULL;
}

TestSuite(relay_faults, .fini = relay_faults_fini, .timeout = 60);

static struct program *ringsync_via(int source_port, int target_port, const char *source_timeout)
{
    const char *const extra[] = {"--source-timeout",
                                 source_timeout,
                                 "--timeout-ms",
                                 "1000",
                                 "--source-retry-timeout",
                                 "20",
                                 "--target-retry-timeout",
                                 "20",
                                 NULL};
    return ringsync_start_ports(source_port, target_port, "2", true, extra);
}

/* Servers, the native replica, a seed, the relay in front of side, ringsync
 * through it with its snapshot applied, then the load running. */
static void rig_start(enum relay_side side, const char *source_timeout)
{
    memset(&rig, 0, sizeof(rig));
    struct redis_fixture_opts so = {.extra_args = src_args}, o = {.extra_args = debug_args};
    rig.src = redis_fixture_start(&so);
    rig.rep = redis_fixture_start(&o);
    rig.dst = redis_fixture_start(&o);
    redis_fixture_replicate(rig.rep, rig.src, 20000);
    char why[256];
    for (long long r = 0; r < SEED_ROUNDS; r++)
        cr_assert(load_round(rig.src->ctx, LOAD_MIXED, r, why, sizeof(why)) == 0, "seed: %s", why);
    rig.relay = fault_relay_start(side == RELAY_AT_SOURCE ? rig.src->port : rig.dst->port);
    cr_assert(rig.relay != NULL, "cannot start the relay: %s", strerror(errno));
    int port = fault_relay_port(rig.relay);
    rig.p = ringsync_via(side == RELAY_AT_SOURCE ? port : rig.src->port,
                         side == RELAY_AT_DESTINATION ? port : rig.dst->port, source_timeout);
    wait_snapshot_applied(rig.p);
    rig.full_syncs = info_number(rig.src->ctx, "stats", "sync_full");
    load_start(&rig.load, rig.src, LOAD_MIXED, SEED_ROUNDS);
    sleep_ms(300); /* the stream runs */
}

static void relay_set(unsigned dirs, enum fault_relay_fault f, long long arg)
{
    int rc = fault_relay_set(rig.relay, dirs, f, arg);
    cr_assert(rc == 0, "fault_relay_set(%u, %d, %lld): %s", dirs, (int)f, arg, strerror(-rc));
}

static struct fault_relay_stats relay_stats(void)
{
    struct fault_relay_stats st;
    fault_relay_stats(rig.relay, &st);
    return st;
}

/* The load stopped, ringsync caught up, the destination equal to the native
 * replica, no full resync, ringsync stopped cleanly, the relay stopped. */
static void rig_finish(const char *what)
{
    load_stop(&rig.load);
    wait_caught_up(rig.src, rig.rep->port, rig.p, what);
    struct dataset_comparison cmp;
    dataset_compare(rig.dst, rig.rep, &cmp);
    if (cmp.differences != 0 || cmp.target_keys != cmp.oracle_keys) {
        char *err = program_stderr(rig.p, NULL);
        cr_log_error("%s: the target differs; ringsync's stderr:\n%s", what, err);
        free(err);
    }
    dataset_comparison_deinit(&cmp);
    assert_dataset_equals(rig.dst, rig.rep, "native replica", what);
    long long full = info_number(rig.src->ctx, "stats", "sync_full");
    if (full != rig.full_syncs)
        ringsync_fail(rig.p, "%s: the source made %lld full syncs since the snapshot", what,
                      full - rig.full_syncs);
    ringsync_stop(rig.p, what);
    struct fault_relay_stats st = relay_stats();
    cr_log_info("%s: relay accepted %llu connections (%llu refused), forwarded %llu bytes C2S, "
                "%llu S2C; %llu reset, %llu cut, %llu one-byte writes",
                what, (unsigned long long)st.accepted, (unsigned long long)st.refused,
                (unsigned long long)st.bytes[0], (unsigned long long)st.bytes[1],
                (unsigned long long)st.resets, (unsigned long long)st.cuts,
                (unsigned long long)st.byte_writes);
    fault_relay_stop(rig.relay);
    rig.relay = NULL;
}

/* How many times needle is in ringsync's standard error. */
static int stderr_count(const char *needle)
{
    char *err = program_stderr(rig.p, NULL);
    int n = 0;
    for (const char *s = err; (s = strstr(s, needle)) != NULL; s += strlen(needle))
        n++;
    free(err);
    return n;
}

/* Waits until needle is in ringsync's standard error n times. */
static void wait_stderr_count(const char *needle, int n, int timeout_ms, const char *what)
{
    long long deadline = fixture_now_ms() + timeout_ms;
    for (;;) {
        int seen = stderr_count(needle);
        if (seen >= n)
            return;
        if (program_has_exited(rig.p)) {
            int ws = rig.p->wait_status;
            ringsync_fail(rig.p, "%s: ringsync ended (%s %d) with \"%s\" %d times of %d", what,
                          WIFSIGNALED(ws) ? "signal" : "exit status",
                          WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws), needle, seen, n);
        }
        if (fixture_now_ms() > deadline)
            ringsync_fail(rig.p, "%s: \"%s\" %d times of %d within %d ms", what, needle, seen, n,
                          timeout_ms);
        sleep_ms(20);
    }
}

/* ------------------------------------------------------------ source side */

Test(relay_faults, a_source_link_reset_three_times_is_resumed_with_psync, .timeout = 60)
{
    rig_start(RELAY_AT_SOURCE, "2");
    for (int k = 0; k < 3; k++) {
        int before = stderr_count("reconnected to source");
        uint64_t resets = relay_stats().resets;
        relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_RESET, 0);
        cr_assert(relay_stats().resets > resets, "reset %d met no connection", k + 1);
        wait_stderr_count("reconnected to source", before + 1, RECOVER_WAIT_MS, "source reset");
        sleep_ms(200 + 150 * k);
    }
    rig_finish("after the source link was reset three times");
}

Test(relay_faults, a_black_holed_source_is_dropped_after_source_timeout_and_reconnected,
     .timeout = 60)
{
    rig_start(RELAY_AT_SOURCE, "1");
    int drops = stderr_count("(--source-timeout)");
    int reconnects = stderr_count("reconnected to source");
    long long t0 = fixture_now_ms();
    relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_BLACK_HOLE, 3000);
    wait_stderr_count("(--source-timeout)", drops + 1, 2900, "source black hole");
    wait_stderr_count("reconnected to source", reconnects + 1, RECOVER_WAIT_MS,
                      "after the source black hole");
    long long took = fixture_now_ms() - t0;
    cr_assert(took >= 2900, "ringsync reconnected %lld ms into a 3000 ms black hole", took);
    sleep_ms(300);
    rig_finish("after a 3 s black hole in front of the source");
}

Test(relay_faults, a_source_link_passing_one_byte_at_a_time_is_followed, .timeout = 60)
{
    rig_start(RELAY_AT_SOURCE, "2");
    relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_ONE_BYTE, 20);
    struct repl_view a, b;
    sleep_ms(200);
    repl_view_take(rig.src->ctx, -1, &a);
    sleep_ms(2300);
    repl_view_take(rig.src->ctx, -1, &b);
    relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_CLEAR, 0);
    struct fault_relay_stats st = relay_stats();
    cr_assert(st.byte_writes > 1000, "only %llu one-byte writes",
              (unsigned long long)st.byte_writes);
    cr_assert(a.has_ringsync && b.has_ringsync && b.ringsync_offset > a.ringsync_offset,
              "ringsync's applied offset did not move while bytes came one at a time:\n%s\n%s",
              a.text, b.text);
    cr_log_info("one byte at a time for 2.3 s: ringsync's offset %lld -> %lld, the source's %lld",
                a.ringsync_offset, b.ringsync_offset, b.master_offset);
    if (stderr_count("reconnecting") > 0)
        ringsync_fail(rig.p, "a slow source link was dropped: it was never silent");
    rig_finish("after the source link passed one byte at a time");
}

/* ------------------------------------------------------- destination side */

Test(relay_faults, a_destination_link_reset_three_times_is_resumed_from_the_checkpoints,
     .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    for (int k = 0; k < 3; k++) {
        int before = stderr_count("destination back after");
        uint64_t resets = relay_stats().resets;
        relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_RESET, 0);
        cr_assert(relay_stats().resets > resets, "reset %d met no connection", k + 1);
        wait_stderr_count("destination back after", before + 1, RECOVER_WAIT_MS,
                          "destination reset");
        sleep_ms(200 + 150 * k);
    }
    rig_finish("after the destination links were reset three times");
}

/* Resets every 0-250 ms for 3 s, without waiting for ringsync between
 * them: some land while it waits for the destination, reads the
 * checkpoints or resumes. */
static void reset_storm(const char *what)
{
    unsigned seed = 15;
    long long end = fixture_now_ms() + 3000;
    int n = 0;
    while (fixture_now_ms() < end) {
        relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_RESET, 0);
        n++;
        sleep_ms((int)(rand_r(&seed) % 250));
        if (program_has_exited(rig.p))
            ringsync_fail(rig.p, "%s: ringsync exited after %d resets", what, n);
    }
    cr_log_info("%s: %d resets", what, n);
}

Test(relay_faults, a_source_reset_again_and_again_is_followed, .timeout = 60)
{
    rig_start(RELAY_AT_SOURCE, "2");
    reset_storm("source reset storm");
    rig_finish("after a storm of source resets");
}

Test(relay_faults, a_destination_reset_again_and_again_while_it_resumes_is_followed, .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    reset_storm("destination reset storm");
    rig_finish("after a storm of destination resets");
}

/* A cut's record ("S2C cut after N bytes: '<before>' | '<after>'", escaped)
 * falls between two RESP messages when before ends a line and after starts
 * a message; anything else is in the middle of one. */
static bool cut_is_mid_message(const char *record)
{
    const char *bar = strstr(record, "' | '");
    if (bar == NULL)
        return false;
    bool ends_line = bar - record >= 4 && strncmp(bar - 4, "\\r\\n", 4) == 0;
    bool starts_message = bar[5] != '\0' && strchr("+-:$*_,#", bar[5]) != NULL;
    return !(ends_line && starts_message);
}

/* Arms a cut after n bytes in dir and waits for it and for the resume. */
static bool cut_once(unsigned dir, long long n)
{
    int before = stderr_count("destination back after");
    uint64_t cuts = relay_stats().cuts;
    relay_set(dir, FAULT_RELAY_CUT, n);
    long long deadline = fixture_now_ms() + FAULT_WAIT_MS;
    struct fault_relay_stats st;
    while ((st = relay_stats()).cuts == cuts) {
        if (fixture_now_ms() > deadline)
            ringsync_fail(rig.p, "no cut after %lld bytes within %d ms", n, FAULT_WAIT_MS);
        sleep_ms(5);
    }
    cr_log_info("%s", st.last_cut);
    wait_stderr_count("destination back after", before + 1, RECOVER_WAIT_MS, st.last_cut);
    sleep_ms(200);
    return cut_is_mid_message(st.last_cut);
}

Test(relay_faults, destination_replies_and_commands_cut_mid_way_are_resumed_from_the_checkpoints,
     .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    /* odd sizes: most cuts fall inside a message; cut again until enough did */
    static const long long sizes[CUT_ATTEMPTS_MAX] = {1501, 4099, 10007, 777, 2311, 6007};
    /* replies: until two cuts fell inside a reply */
    int mid = 0, k = 0;
    while (mid < 2 && k < CUT_ATTEMPTS_MAX)
        mid += cut_once(FAULT_RELAY_S2C, sizes[k++]);
    cr_assert(mid == 2, "%d cuts, only %d inside a reply", k, mid);
    /* commands: until one fell inside a command (a transaction sent in
     * part, then the link gone) */
    mid = k = 0;
    while (mid < 1 && k < CUT_ATTEMPTS_MAX)
        mid += cut_once(FAULT_RELAY_C2S, 2 * sizes[k++] + 1);
    cr_assert(mid == 1, "%d cuts, none inside a command", k);
    rig_finish("after replies and commands were cut mid-way");
}

Test(relay_faults, a_black_holed_destination_stalls_the_job_and_it_goes_on, .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_BLACK_HOLE, 3000);
    struct repl_view a, b;
    sleep_ms(600);
    repl_view_take(rig.src->ctx, -1, &a);
    sleep_ms(1800);
    repl_view_take(rig.src->ctx, -1, &b);
    cr_assert(a.has_ringsync && b.has_ringsync && a.ringsync_offset == b.ringsync_offset,
              "ringsync's applied offset moved while the destination could not answer:\n%s\n%s",
              a.text, b.text);
    cr_assert(b.master_offset > b.ringsync_offset, "the load did not run during the black hole");
    sleep_ms(1000); /* the hole ends */
    rig_finish("after a 3 s black hole in front of the destination");
}

Test(relay_faults, a_destination_link_passing_one_byte_at_a_time_is_followed, .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_ONE_BYTE, 20);
    sleep_ms(2000);
    relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_CLEAR, 0);
    struct fault_relay_stats st = relay_stats();
    cr_assert(st.byte_writes > 1000, "only %llu one-byte writes",
              (unsigned long long)st.byte_writes);
    rig_finish("after the destination link passed one byte at a time");
}

/* A destination link idle for DEST_LINK_KEEPALIVE_S (0.5 s) sends a PING of
 * its own: lost while that PING is unanswered, it must be resumed as any
 * lost link is. */
Test(relay_faults, an_idle_destination_link_lost_with_its_keepalive_unanswered_is_resumed,
     .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    load_stop(&rig.load); /* the source goes quiet: the links idle, and PING */
    sleep_ms(1000);
    relay_set(FAULT_RELAY_C2S, FAULT_RELAY_BLACK_HOLE_OPEN, 0);
    sleep_ms(1000); /* each link's next PING is held */
    int before = stderr_count("destination back after");
    relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_RESET, 0);
    wait_stderr_count("destination back after", before + 1, RECOVER_WAIT_MS,
                      "idle links reset with their PING unanswered");
    load_start(&rig.load, rig.src, LOAD_MIXED, SEED_ROUNDS + 100000);
    sleep_ms(500);
    rig_finish("after idle links were reset with their PING unanswered");
}

/* One of ringsync's links to the destination (any client but the test's
 * own): its CLIENT ID. */
static long long ringsync_dest_link(void)
{
    redisReply *me = redis_fixture_command(rig.dst->ctx, "CLIENT ID");
    redisReply *r = redis_fixture_command(rig.dst->ctx, "CLIENT LIST");
    long long id = -1;
    for (char *line = strtok(r->str, "\n"); line != NULL && id < 0; line = strtok(NULL, "\n")) {
        long long x = -1;
        if (sscanf(line, "id=%lld", &x) == 1 && x != me->integer && strstr(line, "cmd=") != NULL)
            id = x;
    }
    freeReplyObject(r);
    freeReplyObject(me);
    cr_assert(id >= 0, "no link of ringsync's on the destination");
    return id;
}

/* A path dies under the links open now (as with ECMP, the flows hashed to
 * it stall while new ones pass): the commands they send are held in the
 * network. The destination then closes one of them (CLIENT KILL): ringsync
 * takes it as a lost destination, closes its other links, reads the
 * checkpoints through new ones and resumes from there, sending again what
 * the stalled links had sent. When the path comes back, TCP delivers what
 * those links sent before they were closed (the kernel goes on sending
 * after a close): unless ringsync made sure that the old links are gone on
 * the server (CLIENT KILL) or dropped what they held (a reset) before it
 * read the checkpoints, their transactions run a second time. */
Test(relay_faults, a_destination_link_lost_while_the_others_are_stalled_applies_nothing_twice,
     .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    relay_set(FAULT_RELAY_C2S, FAULT_RELAY_BLACK_HOLE_OPEN, 3000);
    sleep_ms(500);
    int before = stderr_count("destination back after");
    redis_fixture_exec(rig.dst->ctx, "CLIENT KILL ID %lld", ringsync_dest_link());
    wait_stderr_count("destination back after", before + 1, RECOVER_WAIT_MS,
                      "a link killed while the others stalled");
    sleep_ms(3000);
    rig_finish("after a link was lost while the others stalled");
}

/* The w record's offset W on the destination (read directly, not through
 * the relay); 0 when it is not there yet. */
static unsigned long long w_record(const char *key)
{
    redisReply *r = redis_fixture_command(rig.dst->ctx, "GET %s", key);
    unsigned long long w = 0;
    if (r->type == REDIS_REPLY_STRING)
        cr_assert(sscanf(r->str, "%*s %llu", &w) == 1, "%s holds \"%s\"", key, r->str);
    freeReplyObject(r);
    return w;
}

/* CHECKPOINTS.md: W only grows (a resume drops every command at or below
 * it, and a transaction over several workers, a fence, is covered by W
 * alone). Watched from outside, every millisecond, while the source runs
 * such transactions only and the destination's replies come one byte at a
 * time (each fence is acknowledged slowly, so the once-a-second w record
 * is often written while one is in flight); the moment W goes back, the
 * destination links are reset, so that ringsync resumes from the W it finds
 * then. */
Test(relay_faults, the_w_record_never_goes_back_while_fences_are_acknowledged_slowly, .timeout = 60)
{
    rig_start(RELAY_AT_DESTINATION, "2");
    char key[128];
    snprintf(key, sizeof(key), "ringsync:cp:127.0.0.1:%d:w", rig.src->port);
    load_stop(&rig.load);
    load_start(&rig.load, rig.src, LOAD_TRANSACTIONS, SEED_ROUNDS + 200000);
    relay_set(FAULT_RELAY_S2C, FAULT_RELAY_ONE_BYTE, 100);
    unsigned long long top = 0, back = 0;
    long long end = fixture_now_ms() + 6000;
    while (fixture_now_ms() < end && back == 0) {
        unsigned long long w = w_record(key);
        if (w < top) {
            relay_set(FAULT_RELAY_BOTH, FAULT_RELAY_RESET, 0);
            back = w;
        }
        top = w > top ? w : top;
        sleep_ms(1);
    }
    relay_set(FAULT_RELAY_S2C, FAULT_RELAY_CLEAR, 0);
    if (back != 0) {
        cr_log_error("the w record went back from %llu to %llu: destination links reset", top,
                     back);
        wait_stderr_count("destination back after", 1, RECOVER_WAIT_MS, "w went back");
        sleep_ms(300);
    }
    rig_finish("after W was watched while fences were acknowledged slowly");
    cr_assert(back == 0, "the w record went back from %llu to %llu", top, back);
}
