/* status_server.h - the status endpoint of a run (`--status-addr`): an HTTP
 * server (libmicrohttpd, on a thread of its own) that answers
 *
 *   GET /status      JSON (status_report.h, README.md "Status and metrics")
 *   GET /status.txt  the same for a person (what `ringsync status` prints)
 *   GET /metrics     Prometheus text exposition
 *
 * and a sampler thread that measures ops/s (1 s and 60 s) and when the last
 * error was. Both only read counters: the job's atomics (job.h) and the
 * destination links' stats (dest_link.h, through worker_add_link_counts),
 * with relaxed loads; no worker ever waits for them.
 *
 * The registry of jobs: a run's jobs (one, or one per master of a cluster
 * source) attach once their workers run and detach before the workers are
 * freed. A mutex guards the registry; only the attaching and detaching
 * threads (main, a cluster source's job threads) and the two status threads
 * take it, never a worker. A detached job's last numbers stay (its counters
 * are added to the next attach of the same job: a resume).
 *
 *   status_server_start --> [attach --> (job runs) --> detach]* --> status_server_stop
 *
 * Without a server (`--status-addr none`, or never started) attach and
 * detach do nothing.
 */
#ifndef RS_STATUS_SERVER_H
#define RS_STATUS_SERVER_H

#include <stdbool.h>

struct job;
struct run_ctx;

#define STATUS_SERVER_ADDR_DEFAULT   "127.0.0.1:0" /* a free port on loopback */
#define STATUS_SERVER_CUTOVER_LAG_MS 1000.0

/* Starts the server on addr ("HOST:PORT", "[V6]:PORT", port 0 a free one;
 * "none": no server, returns 0) and logs where it listens (a non-loopback
 * address is logged as the user's choice). cutover_lag_ms: the lag under
 * which ready_for_cutover may be true. Returns 0, or the exit code after
 * saying why: 2 a bad address, 1 one it cannot listen on. Main thread, once. */
int status_server_start(const char *addr, double cutover_lag_ms);

/* Stops the threads and frees the registry. No job may be attached. */
void status_server_stop(void);

/* rc's job is running (its workers started): its counters are served from
 * now on. Returns a handle for detach (-1: no server, or no room). */
int status_server_attach(const struct run_ctx *rc, struct job *job);

/* The job's workers are joined, not yet freed: its last numbers are kept,
 * the job is no longer read. h from attach (-1: nothing). */
void status_server_detach(int h);

/* The port the server listens on (0: none). */
int status_server_port(void);

#endif
