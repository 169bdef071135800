/* redis_fixture.h - real redis-server processes for the integration tests.
 *
 * A fixture is one redis-server child on a free 127.0.0.1 port, in a fresh
 * directory of its own under /tmp, with persistence off unless the caller asks
 * (`--save "" --appendonly no`), logging to DIR/redis.log, starting a full
 * sync at once when it is a primary (`--repl-diskless-sync-delay 0`).
 *
 * Redis is the oracle of these tests: what a server holds after loading a
 * file, or after a native replica synced from it, is what ringsync must agree
 * with.
 *
 * Lifetime:
 *
 *     redis_fixture_start()  ->  running  ->  redis_fixture_stop()
 *                                   |
 *                                   +------>  redis_fixture_stop_all()  (a test's .fini)
 *
 * Every started fixture is kept in a list so that a suite's .fini can stop
 * whatever a failed assertion left running; the child also gets SIGKILL if the
 * test process dies (PR_SET_PDEATHSIG), so no server outlives its test.
 *
 * Helpers that fail call Criterion's cr_assert: use them from test bodies (or
 * functions called from them), on the thread that runs the test.
 */
#ifndef RS_TEST_REDIS_FIXTURE_H
#define RS_TEST_REDIS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/* A running redis-server. Fields are read-only for callers. */
struct redis_fixture {
    pid_t pid;
    int port;
    char dir[64];      /* the server's --dir; removed (with all in it) by redis_fixture_stop */
    redisContext *ctx; /* connected, db 0, 30 s timeout; owned by the fixture */
    struct redis_fixture *next_live; /* the list redis_fixture_stop_all walks */
};

struct redis_fixture_opts {
    /* Copied to DIR/dump.rdb before the server starts, so that it loads it
     * (the command line always has `--dbfilename dump.rdb`). NULL: none. */
    const char *load_rdb;
    /* More arguments, NULL-terminated (for example "--enable-debug-command",
     * "yes"); they come last, so they override the defaults. NULL: none. */
    const char *const *extra_args;
    /* Give up waiting for PING after this long (0: 10 s). */
    int start_timeout_ms;
};

/* Starts a server (opts may be NULL) and waits until it answers PING. Returns
 * NULL and fills why (the reason and the tail of the server's log) when it
 * could not: for example when the server refused a file it was asked to load;
 * the directory is removed then. */
struct redis_fixture *redis_fixture_try_start(const struct redis_fixture_opts *opts, char *why,
                                              size_t why_cap);

/* Like redis_fixture_try_start, but a failure fails the test. */
struct redis_fixture *redis_fixture_start(const struct redis_fixture_opts *opts);

/* Stops the server (SHUTDOWN NOSAVE, then SIGTERM, then SIGKILL after a
 * timeout), reaps it, removes its directory and frees f. NULL is a no-op. */
void redis_fixture_stop(struct redis_fixture *f);

/* Kills the server with sig (SIGKILL: a crash; SIGTERM: a clean shutdown),
 * then starts it again on the same port and directory with opts (its data
 * comes back from its AOF or RDB when opts keeps them); f->ctx is a new
 * connection. */
void redis_fixture_restart(struct redis_fixture *f, const struct redis_fixture_opts *opts, int sig);

/* The two halves of redis_fixture_restart, for a server that stays away a
 * while: kill (with sig, reaped; f keeps its port and directory, f->ctx is
 * NULL), then start again on them with opts (f->ctx a new connection). */
void redis_fixture_kill(struct redis_fixture *f, int sig);
void redis_fixture_start_again(struct redis_fixture *f, const struct redis_fixture_opts *opts);

/* Stops every fixture still running: a suite's .fini. */
void redis_fixture_stop_all(void);

/* A new connection to the server (30 s timeout); the caller frees it. */
redisContext *redis_fixture_connect(const struct redis_fixture *f);

/* The path DIR/name in buf (cap bytes); fails the test if it does not fit. */
const char *redis_fixture_path(const struct redis_fixture *f, const char *name, char *buf,
                               size_t cap);

/* The last lines of the server's log (at most cap-1 bytes) in buf. */
const char *redis_fixture_log_tail(const struct redis_fixture *f, char *buf, size_t cap);

/* Makes replica a native replica of primary (REPLICAOF 127.0.0.1 port) and
 * waits until its link is up and the initial sync has finished. */
void redis_fixture_replicate(struct redis_fixture *replica, const struct redis_fixture *primary,
                             int timeout_ms);

/* INFO section's value of field into buf; false if the field is absent. */
bool redis_fixture_info(redisContext *c, const char *section, const char *field, char *buf,
                        size_t cap);

/* ---------------------------------------------------------------- commands */

/* Runs a command (hiredis format: %s, %b with pointer and length, %d ...),
 * fails the test on an I/O error or an error reply, and returns the reply
 * (the caller frees it with freeReplyObject). */
redisReply *redis_fixture_command(redisContext *c, const char *fmt, ...);

/* Same with an argument vector. */
redisReply *redis_fixture_command_argv(redisContext *c, int argc, const char **argv,
                                       const size_t *argvlen);

/* Runs a command and frees its reply (asserting as above). */
void redis_fixture_exec(redisContext *c, const char *fmt, ...);

/* A reply as text, the same whatever order the server listed unordered
 * things in (FUNCTION LIST walks dicts): strings quoted with non-printable
 * bytes as \xNN; an array of name/value pairs is a map, its pairs sorted; any
 * other array has its elements sorted. The caller frees it. */
char *redis_fixture_reply_canonical(const redisReply *r);

/* Pipelined commands: appended, and every `batch` of them (0: 1000) the
 * replies are read and checked for errors. Call redis_fixture_pipeline_flush
 * at the end. */
struct redis_pipeline {
    redisContext *ctx;
    size_t batch;
    size_t pending;
    size_t sent; /* commands sent in all */
};

void redis_pipeline_init(struct redis_pipeline *p, redisContext *c, size_t batch);
void redis_pipeline_append(struct redis_pipeline *p, const char *fmt, ...);
void redis_pipeline_append_argv(struct redis_pipeline *p, int argc, const char **argv,
                                const size_t *argvlen);
/* Reads the pending replies, failing the test on an error reply. */
void redis_pipeline_flush(struct redis_pipeline *p);

/* ------------------------------------------------------- running a program */

struct program_result {
    bool exited; /* true: it exited with exit_code; false: killed by term_signal */
    int exit_code;
    int term_signal;
    bool timed_out; /* it was killed for running past timeout_ms */
    char *err;      /* its standard error, NUL-terminated (may hold NULs); free with
                       program_result_deinit */
    size_t err_len;
};

/* Runs argv[0] (a path, or a name searched in PATH) with standard input from
 * stdin_path (NULL: /dev/null) and standard output to stdout_path (created or
 * truncated; NULL: /dev/null), collecting its standard error. Kills it past
 * timeout_ms (0: 60 s). Returns 0 when it ran (whatever its exit status), or
 * -errno when it could not be started. */
int program_run(const char *const *argv, const char *stdin_path, const char *stdout_path,
                int timeout_ms, struct program_result *r);

void program_result_deinit(struct program_result *r);

/* "exit 0", "signal 11 (Segmentation fault)", "timeout" ... in buf. */
const char *program_result_describe(const struct program_result *r, char *buf, size_t cap);

/* --------------------------------------------- a program in the background
 *
 * For a program that runs until told to stop (`ringsync sync` following a
 * source): started, watched through its standard error, then signalled and
 * reaped.
 *
 *     program_start()  ->  running  ->  program_finish(sig)  ->  struct program_result
 *                             |      (program_wait_for_stderr, program_has_exited)
 *                             +--->  redis_fixture_stop_all()  (SIGKILL: a test's .fini)
 *
 * Its standard error goes to a file of its own (read as it grows, so the
 * program never blocks on a full pipe), removed by program_finish. A program
 * still running when the test ends gets SIGKILL: from redis_fixture_stop_all
 * (before the servers stop), or at the latest when the test process dies. */
struct program {
    pid_t pid;
    bool is_reaped;
    int wait_status;   /* once reaped */
    char err_path[64]; /* its standard error */
    struct program *next_live;
};

/* Starts argv[0] (a path, or a name searched in PATH) with standard input
 * from /dev/null and standard output to stdout_path (NULL: /dev/null).
 * Returns the running program (owned by the fixture until program_finish),
 * or NULL with the errno in *errno_out when it could not be started. */
struct program *program_start(const char *const *argv, const char *stdout_path, int *errno_out);

/* True once the program has exited (it is reaped then). */
bool program_has_exited(struct program *p);

/* Its standard error so far, NUL-terminated (its length in *len if len is
 * not NULL); the caller frees it. Never NULL (fails the test instead). */
char *program_stderr(const struct program *p, size_t *len);

/* Waits until its standard error holds needle. True when it does; false when
 * timeout_ms passed or the program exited without writing it. */
bool program_wait_for_stderr(struct program *p, const char *needle, int timeout_ms);

/* Sends sig (0: none) unless the program already exited, waits up to
 * timeout_ms (0: 60 s) for it to exit, then SIGKILL (r->timed_out). Fills r as
 * program_run does, removes the stderr file and frees p. */
void program_finish(struct program *p, int sig, int timeout_ms, struct program_result *r);

/* The contents of a file, NUL-terminated, its length in *len; NULL if unreadable. */
char *fixture_read_file(const char *path, size_t *len);

/* The value of environment variable name; fails the test if it is unset. */
const char *fixture_env(const char *name);

/* A loopback port nobody listens on right now (someone may take it before
 * the caller does: retry on "Address already in use"); fails the test when
 * none can be had. */
int fixture_free_port(void);

/* The last lines of the file at path (at most cap-1 bytes, from a line's
 * start) in buf; "" when it cannot be read. */
const char *fixture_file_tail(const char *path, char *buf, size_t cap);

/* Current Unix time in milliseconds. */
long long fixture_now_ms(void);

#endif
