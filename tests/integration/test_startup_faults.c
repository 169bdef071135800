/* test_startup_faults.c - faults while a job starts (issue 15): the same
 * faults that are waited out while the job runs are waited out before it
 * runs too, once each server has answered ringsync once.
 *
 *  - the source answers but cannot serve PSYNC yet: a replica whose master
 *    is down (-NOMASTERLINK, or -MASTERDOWN with replica-serve-stale-data
 *    no), its link reset during the handshake: retried with the reconnects'
 *    backoff up to --source-retry-timeout, then the job goes on (or ends,
 *    naming the answer, once that time passed);
 *  - the destination is lost after its first answer, at every step of the
 *    start (a relay that lets k connections pass, then resets the new ones
 *    for a moment): waited for as sync_recover waits, the start done again.
 *
 * A server that cannot be reached at the first contact still ends the job
 * at once (a wrong address is the user's to fix). Each job that goes on
 * ends equal to its source. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset_compare.h"
#include "fault_relay.h"
#include "redis_fixture.h"
#include "sync_watch.h"

static const char *const debug_args[] = {"--enable-debug-command", "yes", NULL};
static const char *const aof_args[] = {
    "--enable-debug-command", "yes", "--appendonly", "yes", "--appendfsync", "always", NULL};

static struct fault_relay *relay; /* stopped by the suite's fini when a test failed */

static void startup_faults_fini(void)
{
    fault_relay_stop(relay);
    relay = NULL;
    redis_fixture_stop_all();
}

TestSuite(startup_faults, .fini = startup_faults_fini, .timeout = 60);

static void burst(redisContext *c, int r0, int n)
{
    struct redis_pipeline pl;
    redis_pipeline_init(&pl, c, 1000);
    for (int i = r0; i < r0 + n; i++) {
        redis_pipeline_append(&pl, "INCR cnt:%d", i % 200);
        redis_pipeline_append(&pl, "LPUSH list:%d %d", i % 30, i);
        redis_pipeline_append(&pl, "HSET hash:%d f%d %d", i % 40, i % 7, i);
        redis_pipeline_append(&pl, "SET str:%d v%d", i % 300, i);
    }
    redis_pipeline_flush(&pl);
}

static void relay_set(enum fault_relay_fault f, long long arg)
{
    int rc = fault_relay_set(relay, FAULT_RELAY_BOTH, f, arg);
    cr_assert(rc == 0, "fault_relay_set(%d, %lld): %s", (int)f, arg, strerror(-rc));
}

static struct fault_relay_stats relay_stats(void)
{
    struct fault_relay_stats st;
    fault_relay_stats(relay, &st);
    return st;
}

/* `ringsync sync` from source_port to target_port, 2 workers, quiet, then extra. */
static struct program *ringsync_ports(int source_port, int target_port, const char *const *extra)
{
    return ringsync_start_ports(source_port, target_port, "2", true, extra);
}

/* How many times needle is in p's standard error. */
static int stderr_count(const struct program *p, const char *needle)
{
    char *s = program_stderr(p, NULL);
    int n = 0;
    for (const char *q = s; (q = strstr(q, needle)) != NULL; q += strlen(needle))
        n++;
    free(s);
    return n;
}

/* Waits until replica says its link to its master is down. */
static void wait_link_down(struct redis_fixture *replica)
{
    long long deadline = fixture_now_ms() + 10000;
    char st[32] = "";
    while (redis_fixture_info(replica->ctx, "replication", "master_link_status", st, sizeof(st)) &&
           strcmp(st, "down") != 0) {
        cr_assert(fixture_now_ms() < deadline, "the replica's master link stayed %s", st);
        sleep_ms(20);
    }
}

/* ------------------------------------------------------------ the source */

/* The source is a replica whose master is down when ringsync starts: it
 * answers -NOMASTERLINK; while ringsync retries, its links are reset during
 * the handshake (a relay in front of the source); then the master comes
 * back with its data, the replica syncs from it, and so does ringsync. */
Test(startup_faults, a_replica_source_whose_master_is_down_is_waited_for_then_synced)
{
    struct redis_fixture_opts mo = {.extra_args = aof_args}, o = {.extra_args = debug_args};
    struct redis_fixture *master = redis_fixture_start(&mo);
    struct redis_fixture *src = redis_fixture_start(&o);
    struct redis_fixture *dst = redis_fixture_start(&o);
    burst(master->ctx, 0, 500);
    redis_fixture_replicate(src, master, 20000);
    relay = fault_relay_start(src->port);
    cr_assert(relay != NULL, "cannot start the relay: %s", strerror(errno));
    redis_fixture_kill(master, SIGKILL);
    wait_link_down(src);

    long long t0 = fixture_now_ms();
    struct program *p = ringsync_ports(fault_relay_port(relay), dst->port, NULL);
    if (!program_wait_for_stderr(p, "waiting for it as a replica would", 5000))
        ringsync_fail(p, "ringsync did not say it waits for the source");
    char *err = program_stderr(p, NULL);
    cr_assert(strstr(err, "NOMASTERLINK") != NULL &&
                  strstr(err, "up to 300 s (--source-retry-timeout)") != NULL,
              "the wait does not name the answer and how long it waits:\n%s", err);
    free(err);

    /* the handshake's links reset while ringsync retries */
    relay_set(FAULT_RELAY_RESET_NEW, 0);
    long long deadline = fixture_now_ms() + 8000;
    while (relay_stats().resets_new < 2) {
        if (program_has_exited(p) || fixture_now_ms() > deadline)
            ringsync_fail(p, "%llu handshakes were reset",
                          (unsigned long long)relay_stats().resets_new);
        sleep_ms(10);
    }
    relay_set(FAULT_RELAY_CLEAR, 0);
    cr_assert(!program_has_exited(p), "ringsync gave up on the source");

    redis_fixture_start_again(master, &mo); /* with its AOF: the replica syncs again */
    wait_snapshot_applied(p);
    cr_log_info("the source served PSYNC %lld ms after ringsync started", fixture_now_ms() - t0);
    cr_assert(stderr_count(p, "waiting for it as a replica would") == 1,
              "the wait was not said once");
    if (!stderr_has(p, "served PSYNC after"))
        ringsync_fail(p, "ringsync did not say the source served PSYNC");

    burst(master->ctx, 1000, 500);
    redisReply *w = redis_fixture_command(master->ctx, "WAIT 1 10000");
    cr_assert(w->integer == 1, "the replica did not take the master's writes");
    freeReplyObject(w);
    wait_caught_up(src, 0, p, "after the source's master came back");
    assert_dataset_equals(dst, src, "source", "after the source's master came back");
    ringsync_stop(p, "after the source's master came back");
}

/* -MASTERDOWN (a replica with replica-serve-stale-data no) is waited for
 * too, and the wait ends after --source-retry-timeout, naming the answer. */
Test(startup_faults, a_source_that_never_serves_psync_ends_the_job_after_source_retry_timeout)
{
    int nobody = 0;
    {
        struct redis_fixture *gone = redis_fixture_start(NULL);
        nobody = gone->port;
        redis_fixture_stop(gone);
    }
    char primary[32];
    snprintf(primary, sizeof(primary), "127.0.0.1 %d", nobody);
    const char *const args[] = {"--replicaof", primary, NULL};
    struct redis_fixture_opts so = {.extra_args = args}, o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&so);
    struct redis_fixture *dst = redis_fixture_start(&o);
    /* after the start: the fixture waits for PING, which it refuses then */
    redis_fixture_exec(src->ctx, "CONFIG SET replica-serve-stale-data no");
    const char *const extra[] = {"--source-retry-timeout", "2", NULL};
    long long t0 = fixture_now_ms();
    struct program *p = ringsync_ports(src->port, dst->port, extra);
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    long long took = fixture_now_ms() - t0;
    cr_assert(r.exited && r.exit_code == 1, "ringsync did not end with 1:\n%s", r.err);
    cr_assert(strstr(r.err, "MASTERDOWN") != NULL &&
                  strstr(r.err, "waiting for it as a replica would, up to 2 s") != NULL &&
                  strstr(r.err, "could not serve PSYNC within 2 s (--source-retry-timeout)") !=
                      NULL,
              "the end does not name the answer and --source-retry-timeout:\n%s", r.err);
    cr_assert(took >= 2000 && took < 10000, "it ended after %lld ms, not about 2 s", took);
    program_result_deinit(&r);
}

/* ------------------------------------------------------- the destination */

/* A refusal is no loss: the destination's check refuses its keys after the
 * source could not be reached for the comparison of settings (a link lost,
 * but the source's): the job ends at once, naming the refusal. */
Test(startup_faults, a_refusal_after_the_source_was_not_reached_ends_the_job_at_once)
{
    int nobody = 0;
    {
        struct redis_fixture *gone = redis_fixture_start(NULL);
        nobody = gone->port;
        redis_fixture_stop(gone);
    }
    struct redis_fixture *dst = redis_fixture_start(NULL);
    redis_fixture_exec(dst->ctx, "SET theirs v");
    const char *const extra[] = {"--target-retry-timeout", "20", NULL};
    long long t0 = fixture_now_ms();
    struct program *p = ringsync_ports(nobody, dst->port, extra);
    struct program_result r;
    program_finish(p, 0, 30000, &r);
    long long took = fixture_now_ms() - t0;
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, "refusing to write into it") != NULL,
              "the refusal did not end the job:\n%s", r.err);
    cr_assert(strstr(r.err, "lost while job") == NULL && took < 3000,
              "a refusal was waited for as a lost destination (%lld ms):\n%s", took, r.err);
    program_result_deinit(&r);
}

/* A relay in front of the destination lets the first k connections of the
 * start pass, then resets every new one for a moment: for every k, every
 * step of the start (the checks, the checkpoints read, the w record, the
 * worker links ...) meets a destination lost after it answered. k = 0 is
 * the first contact: the job ends at once. The others wait, start again
 * and end equal to the source; the loop ends at the first k that the start
 * did not reach. */
Test(startup_faults, a_destination_lost_at_each_step_of_the_start_is_waited_for)
{
    struct redis_fixture_opts o = {.extra_args = debug_args};
    struct redis_fixture *src = redis_fixture_start(&o);
    struct redis_fixture *dst = redis_fixture_start(&o);
    burst(src->ctx, 0, 300);
    relay = fault_relay_start(dst->port);
    cr_assert(relay != NULL, "cannot start the relay: %s", strerror(errno));
    const char *const extra[] = {"--target-retry-timeout", "20", NULL};

    relay_set(FAULT_RELAY_RESET_NEW, 0); /* the first contact */
    long long t0 = fixture_now_ms();
    struct program *p = ringsync_ports(src->port, fault_relay_port(relay), extra);
    struct program_result r;
    program_finish(p, 0, 20000, &r);
    cr_assert(r.exited && r.exit_code == 1 && strstr(r.err, "lost while job") == NULL,
              "a destination lost at the first contact did not end the job at once:\n%s", r.err);
    cr_assert(fixture_now_ms() - t0 < 3000, "it took %lld ms to give up", fixture_now_ms() - t0);
    program_result_deinit(&r);

    int k = 1;
    for (bool reached = true; reached; k++) {
        cr_assert(k < 30, "the start makes more than 30 connections to the destination");
        redis_fixture_exec(dst->ctx, "FLUSHALL"); /* a new job each time */
        relay_set(FAULT_RELAY_CLEAR, 0);
        struct fault_relay_stats before = relay_stats();
        relay_set(FAULT_RELAY_RESET_NEW, k);
        p = ringsync_ports(src->port, fault_relay_port(relay), extra);
        long long deadline = fixture_now_ms() + 10000;
        for (;;) {
            if (relay_stats().resets_new > before.resets_new) {
                sleep_ms(200); /* away a moment */
                break;
            }
            if (stderr_has(p, "snapshot applied")) {
                reached = false; /* the start made fewer than k connections */
                break;
            }
            if (program_has_exited(p) || fixture_now_ms() > deadline)
                ringsync_fail(p, "k = %d: no connection reset, no snapshot", k);
            sleep_ms(5);
        }
        relay_set(FAULT_RELAY_CLEAR, 0);
        wait_snapshot_applied(p);
        if (reached && !stderr_has(p, "back after"))
            ringsync_fail(p, "k = %d: ringsync did not say the destination came back", k);
        char *err = program_stderr(p, NULL);
        cr_log_info("k = %d: %.*s", k, (int)strcspn(err, "\n"), err); /* what met the loss */
        free(err);
        char what[64];
        snprintf(what, sizeof(what), "k = %d, destination lost at the start", k);
        wait_caught_up(src, 0, p, what);
        assert_dataset_equals(dst, src, "source", what);
        ringsync_stop(p, what);
    }
    cr_log_info("the start made %d connections to the destination", k - 2);
}
