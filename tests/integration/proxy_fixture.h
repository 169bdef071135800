/* proxy_fixture.h - a destination behind nutcracker (twemproxy) for the
 * integration tests of `--target-mode proxy` (src/PROXY_DESTINATION.md §9):
 * N redis_fixtures and one nutcracker in front of them, on free loopback
 * ports.
 *
 * Starting it, in order (proxy_fixture_start):
 *   1. start the servers (redis_fixtures, DEBUG enabled, for DEBUG
 *      DIGEST-VALUE);
 *   2. write DIR/nutcracker.yml (DIR: server 0's directory): one pool,
 *      `listen` on a free port, fnv1a_64 + ketama, `redis: true`, the
 *      servers as `127.0.0.1:<port>:1 s<i>` (named: ketama hashes the names,
 *      so where a key lands does not depend on the ports drawn);
 *   3. start nutcracker (program_start: killed by redis_fixture_stop_all, a
 *      suite's .fini) with its log in DIR/nutcracker.log and its stats on a
 *      free port of its own (the default, 22222, would clash between runs);
 *   4. wait until it is usable: PING proves nothing (nutcracker answers it
 *      itself), so SET, GET and DEL of probe keys through it must work and
 *      the probes must have reached every server. A port taken in between
 *      (nutcracker exits saying "Address already in use") is retried with
 *      new ports.
 *
 * What nutcracker refuses (no reply: it closes the connection) is listed in
 * PROXY_DESTINATION.md §1: no SELECT, MULTI, X*, DBSIZE, SCAN, FLUSHALL ...
 * through it. Helpers fail the test through Criterion's cr_assert, as
 * redis_fixture's do.
 */
#ifndef RS_TEST_PROXY_FIXTURE_H
#define RS_TEST_PROXY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "dataset_compare.h"
#include "redis_fixture.h"

#define PROXY_FIXTURE_MAX_SERVERS 8

struct proxy_fixture_opts {
    int servers;            /* 1..PROXY_FIXTURE_MAX_SERVERS; the tests use 2 or 3 */
    const char *hash_tag;   /* NULL: none; else two characters, as "{}" */
    int server_connections; /* the pool's server_connections; 0: 1 */
    bool auto_eject_hosts;  /* false: a dead server answers errors, keys stay put */
    int timeout_ms;         /* the pool's timeout; 0: 30000 (a loaded test box is slow) */
    int ready_timeout_ms;   /* 0: 10 s */
};

/* A running proxy destination. Read-only for callers; a server may be
 * killed and started again through redis_fixture_kill/_start_again. */
struct proxy_fixture {
    int nservers;
    struct redis_fixture *servers[PROXY_FIXTURE_MAX_SERVERS]; /* server i is named s<i> */
    int port;                                                 /* nutcracker's listen port */
    int stats_port;
    struct program *nutcracker;
    char conf_path[128]; /* the YAML, in servers[0]'s directory */
    char log_path[128];  /* nutcracker's log, there too */
    char hash_tag[3];    /* "" when none */
};

/* Starts the servers and nutcracker as described at the top and returns
 * once SET/GET/DEL through it work; fails the test (with nutcracker's log)
 * when it is not usable in time. */
struct proxy_fixture *proxy_fixture_start(const struct proxy_fixture_opts *opts);

/* Stops nutcracker (SIGTERM to its PID, SIGKILL after 5 s), then every
 * server, and frees pf. NULL is a no-op. */
void proxy_fixture_stop(struct proxy_fixture *pf);

/* A new connection to nutcracker (30 s timeout); the caller frees it. */
redisContext *proxy_fixture_connect(const struct proxy_fixture *pf);

/* The last lines of nutcracker's log (at most cap-1 bytes) in buf. */
const char *proxy_fixture_log_tail(const struct proxy_fixture *pf, char *buf, size_t cap);

/* The server holding key (EXISTS on each, directly): its index, or -1 when
 * none does. Fails the test when more than one does, naming them. */
int proxy_fixture_server_of(const struct proxy_fixture *pf, const char *key, size_t len);

/* ------------------------------------------------ writing to both sides
 *
 * The same commands through the proxy and to an oracle (a standalone
 * server), each side pipelined on a connection of its own: what a test
 * expects ringsync to reproduce, or a load the fixture's own test checks.
 * Every `batch` commands (and at flush) the replies are read; an error
 * reply, or the proxy closing the connection (its answer to a command it
 * refuses), fails the test naming the command's number and the side, with
 * nutcracker's log. */
struct proxy_fixture_writer {
    const struct proxy_fixture *pf;
    redisContext *proxy, *oracle;
    size_t pending, sent; /* commands appended and not read yet; appended in all */
};

void proxy_fixture_writer_init(struct proxy_fixture_writer *w, const struct proxy_fixture *pf,
                               const struct redis_fixture *oracle);

/* Appends the command (hiredis format) to both sides. */
void proxy_fixture_write(struct proxy_fixture_writer *w, const char *fmt, ...);

/* Same with an argument vector. */
void proxy_fixture_write_argv(struct proxy_fixture_writer *w, int argc, const char **argv,
                              const size_t *argvlen);

/* Reads every pending reply of both sides. */
void proxy_fixture_writer_flush(struct proxy_fixture_writer *w);

/* Flushes, then closes both connections. */
void proxy_fixture_writer_deinit(struct proxy_fixture_writer *w);

/* ------------------------------------------------ the oracle comparison
 *
 * The servers' db 0 as one data set against the oracle's
 * (dataset_compare_servers: key by key, values, expiries, DEBUG
 * DIGEST-VALUE), and where the keys are: each on exactly one server, and
 * the one the proxy routes it to (EXISTS through nutcracker, pipelined,
 * answers 1). */
struct proxy_comparison {
    struct dataset_comparison data;
    size_t duplicated; /* keys held by more than one server */
    size_t misrouted;  /* keys the proxy does not find where they are (EXISTS through it: not 1) */
    char placement[4096]; /* the first of both, each naming its key and server(s) */
};

void proxy_compare(const struct proxy_fixture *pf, struct redis_fixture *oracle,
                   struct proxy_comparison *c);
void proxy_comparison_deinit(struct proxy_comparison *c);

/* Fails the test unless the servers behind pf hold exactly db 0 of oracle
 * (and the oracle nothing elsewhere), every key on one server, the one the
 * proxy routes it to; the message names the keys, servers and what differs.
 * oracle_name and what as for assert_dataset_equals. */
void assert_proxy_equals(const struct proxy_fixture *pf, struct redis_fixture *oracle,
                         const char *oracle_name, const char *what);

/* Proof that proxy_compare can fail, each change made directly on a server
 * and undone after: a string's value changed (SET ... KEEPTTL) must be one
 * difference of the data; a key moved to another server (DUMP, RESTORE ...
 * ABSTTL, DEL) one misrouted key; a key copied to another server one
 * duplicated key. Needs 2+ servers and a string among the keys; pf equal to
 * oracle before, and after. */
void assert_proxy_comparison_catches_a_change(const struct proxy_fixture *pf,
                                              struct redis_fixture *oracle);

#endif
