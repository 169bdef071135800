/* sync_watch.h - running `ringsync sync` in the background of an
 * integration test and watching it: started against two fixtures, its
 * standard error read for milestones, the source's INFO replication read for
 * its applied offset (ringsync is the replica with port 0), stopped with
 * SIGINT. Shared by the stream tests. Helpers fail the test (cr_assert). */
#ifndef RS_TEST_SYNC_WATCH_H
#define RS_TEST_SYNC_WATCH_H

#include <stdbool.h>

#include <criterion/criterion.h>

#include "cluster_fixture.h"
#include "redis_fixture.h"

#define CATCH_UP_TIMEOUT_MS 30000
#define SNAPSHOT_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS     10000

void sleep_ms(int ms);

/* Starts `ringsync sync --source src --target dst --workers W --quiet`
 * followed by extra (NULL-terminated, may be NULL). */
struct program *ringsync_start_with(const struct redis_fixture *src,
                                    const struct redis_fixture *dst, const char *workers,
                                    const char *const *extra);

/* The same between two ports (a relay's, a cluster node's), --quiet or not. */
struct program *ringsync_start_ports(int source_port, int target_port, const char *workers,
                                     bool quiet, const char *const *extra);

/* The same with one more option (or NULL). */
struct program *ringsync_start(const struct redis_fixture *src, const struct redis_fixture *dst,
                               const char *workers, const char *extra);

/* What a failure should add when ringsync stopped on a signal the test did
 * not send. */
const char *foreign_signal_hint(const char *err);

/* Fails the test with ringsync's state and standard error. */
#define ringsync_fail(p, ...)                                                                      \
    do {                                                                                           \
        char *err_ = program_stderr(p, NULL);                                                      \
        char *what_ = NULL;                                                                        \
        cr_assert(asprintf(&what_, __VA_ARGS__) >= 0);                                             \
        cr_assert_fail("%s\nringsync %s; its stderr:\n%s%s", what_,                                \
                       program_has_exited(p) ? "has exited" : "is running", err_,                  \
                       foreign_signal_hint(err_));                                                 \
    } while (0)

struct repl_view {
    long long master_offset;
    bool has_ringsync, has_replica;
    long long ringsync_offset, replica_offset;
    char ringsync_state[32];
    char text[2048]; /* the lines read, for failure messages */
};

/* Waits for "snapshot applied" on its standard error. */
void wait_snapshot_applied(struct program *p);

bool stderr_has(const struct program *p, const char *needle);

/* SIGINT: exit 0, "stopped by SIGINT", and everything received applied. */
void ringsync_stop(struct program *p, const char *what);

/* The same, handing the result (its standard error: the summary) to the
 * caller, who frees it with program_result_deinit. */
void ringsync_stop_result(struct program *p, const char *what, struct program_result *r);

/* Reads the source's master_repl_offset and the slave lines: ringsync is the
 * one with port=0, the native replica the one with replica_port. */
void repl_view_take(redisContext *src, int replica_port, struct repl_view *v);

/* Waits until the source shows ringsync as a replica (its PSYNC is in). */
void wait_ringsync_listed(struct redis_fixture *src, struct program *p);

/* Waits until ringsync's applied offset (and the native replica's, when
 * replica_port > 0) equals the source's master_repl_offset. */
void wait_caught_up(struct redis_fixture *src, int replica_port, struct program *p,
                    const char *what);

/* ------------------------------------------------- a cluster as the source
 *
 * With a Redis Cluster as --source, ringsync runs one job (one PSYNC) per
 * source master, side by side: it is a replica with port 0 on each master,
 * each with its own applied offset, and each job writes its own lines
 * ("snapshot applied", "stopped by SIGINT ... applied offset A of R"). */

/* Waits until standard error holds "snapshot applied" n times (one per
 * source master); fails naming how many there were. */
void wait_snapshots_applied(struct program *p, int n);

/* Waits until every master of src serving slots now (cluster_fixture_view)
 * lists ringsync (port 0) with an applied offset equal to its
 * master_repl_offset, all in one pass; ringsync's must never be past it.
 * The failure names each master's offsets. */
void wait_caught_up_all(const struct cluster_fixture *src, struct program *p, const char *what);

/* SIGINT: exit 0 and exactly `jobs` "stopped by SIGINT" lines, each
 * applying everything it received. r as for ringsync_stop_result. */
void ringsync_stop_jobs_result(struct program *p, const char *what, int jobs,
                               struct program_result *r);

/* The same, freeing the result. */
void ringsync_stop_jobs(struct program *p, const char *what, int jobs);

/* An INFO field as a number (fails the test when absent). */
long long info_number(redisContext *c, const char *section, const char *field);

#endif
