/* test_source_handshake.c - control_link_open and source_link_handshake
 * against real redis-server processes: passwords and ACL users, refusals,
 * unreachable and silent and foreign peers, and full resyncs in both
 * snapshot framings, read on to the end of the RDB. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_link.h"
#include "crc64.h"
#include "endpoint.h"
#include "redis_fixture.h"
#include "source_link.h"

#define LISTENING_PORT 7654 /* what the source shows for us in INFO replication */

TestSuite(source_handshake, .fini = redis_fixture_stop_all, .timeout = 120);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* redis://<userinfo>127.0.0.1:<port> */
static struct endpoint endpoint_of(const char *userinfo, int port, const char *env)
{
    char uri[256];
    snprintf(uri, sizeof(uri), "redis://%s127.0.0.1:%d", userinfo, port);
    struct endpoint ep;
    struct rs_error err = {0};
    cr_assert_eq(endpoint_parse(uri, env, &ep, &err), 0, "%s", err.msg);
    return ep;
}

/* A source with a few keys; extra arguments (NULL: diskless with no delay,
 * so that a full resync starts at once). */
static struct redis_fixture *start_source(const char *const *extra)
{
    static const char *const fast[] = {"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay",
                                       "0", NULL};
    struct redis_fixture_opts o = {.extra_args = extra != NULL ? extra : fast};
    struct redis_fixture *f = redis_fixture_start(&o);
    redis_fixture_exec(f->ctx, "SET k1 v1");
    redis_fixture_exec(f->ctx, "RPUSH l a b c");
    redis_fixture_exec(f->ctx, "HSET h f v");
    return f;
}

/* ------------------------------------------------------------ passwords */

Test(source_handshake, wrong_password_is_refused_with_the_endpoint)
{
    struct redis_fixture *f = start_source(NULL);
    redis_fixture_exec(f->ctx, "CONFIG SET requirepass right-one");
    struct endpoint ep = endpoint_of(":Wr0ngPw@", f->port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), -EACCES, "%s", err.msg);
    char want[128];
    snprintf(want, sizeof(want), "127.0.0.1:%d refused AUTH: WRONGPASS", f->port);
    cr_assert(contains(err.msg, want), "%s", err.msg);
    cr_assert(!contains(err.msg, "Wr0ngPw"), "the password is never shown: %s", err.msg);
    redis_fixture_stop(f);
}

Test(source_handshake, no_password_gets_noauth_named)
{
    struct redis_fixture *f = start_source(NULL);
    redis_fixture_exec(f->ctx, "CONFIG SET requirepass right-one");
    struct endpoint ep = endpoint_of("", f->port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), 0, "no AUTH, no error yet: %s", err.msg);
    struct source_handshake_opts o = {.listening_port = LISTENING_PORT};
    struct source_handshake_result r;
    cr_assert_eq(source_link_handshake(&cl, &o, &r, &err), -EACCES, "%s", err.msg);
    char want[128];
    snprintf(want, sizeof(want), "source 127.0.0.1:%d refused REPLCONF: NOAUTH", f->port);
    cr_assert(contains(err.msg, want), "%s", err.msg);
    cr_assert(contains(err.msg, "needs a password"), "%s", err.msg);
    control_link_close(&cl);
    redis_fixture_stop(f);
}

Test(source_handshake, password_from_the_environment_works)
{
    struct redis_fixture *f = start_source(NULL);
    redis_fixture_exec(f->ctx, "CONFIG SET requirepass right-one");
    setenv("RS_TEST_SOURCE_PASSWORD", "right-one", 1);
    struct endpoint ep = endpoint_of("", f->port, "RS_TEST_SOURCE_PASSWORD");
    unsetenv("RS_TEST_SOURCE_PASSWORD");
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), 0, "%s", err.msg);
    uint64_t keys = 0;
    cr_assert_eq(control_link_dbsize_all(&cl, &keys, &err), 0, "%s", err.msg);
    cr_assert_eq(keys, 3);
    control_link_close(&cl);
    redis_fixture_stop(f);
}

/* -------------------------------------------------------------- ACL users */

Test(source_handshake, acl_user_and_password)
{
    struct redis_fixture *f = start_source(NULL);
    redis_fixture_exec(f->ctx, "ACL SETUSER syncer on >pw +@all ~*");
    redis_fixture_exec(f->ctx, "ACL SETUSER nosync on >pw +@all -psync -sync ~*");

    struct endpoint ep = endpoint_of("syncer:pw@", f->port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), 0, "%s", err.msg);
    struct control_reply rep;
    cr_assert_eq(control_link_commandv(&cl, &rep, &err, "ACL", "WHOAMI", NULL), 0, "%s", err.msg);
    cr_assert_str_eq(rep.r->str, "syncer");
    control_reply_free(&rep);
    struct source_handshake_opts o = {.listening_port = LISTENING_PORT};
    struct source_handshake_result r;
    cr_assert_eq(source_link_handshake(&cl, &o, &r, &err), 0, "%s", err.msg);
    cr_assert(r.full);
    control_link_close(&cl);

    ep = endpoint_of("syncer:bad@", f->port, NULL);
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), -EACCES);
    cr_assert(contains(err.msg, "refused AUTH for user syncer: WRONGPASS"), "%s", err.msg);

    ep = endpoint_of("nosync:pw@", f->port, NULL);
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), 0, "%s", err.msg);
    cr_assert_eq(source_link_handshake(&cl, &o, &r, &err), -EACCES, "%s", err.msg);
    char want[128];
    snprintf(want, sizeof(want), "source 127.0.0.1:%d refused PSYNC: NOPERM", f->port);
    cr_assert(contains(err.msg, want), "%s", err.msg);
    control_link_close(&cl);
    redis_fixture_stop(f);
}

/* ------------------------------------------- unreachable, silent, foreign */

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(source_handshake, nothing_listening_is_connection_refused)
{
    int port;
    close(listen_loopback(&port));
    struct endpoint ep = endpoint_of("", port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 500, &err), -ECONNREFUSED, "%s", err.msg);
    char want[128];
    snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%d: Connection refused", port);
    cr_assert_str_eq(err.msg, want);
}

Test(source_handshake, a_peer_that_never_answers_times_out)
{
    int port;
    int lfd = listen_loopback(&port);
    cr_assert_eq(listen(lfd, 8), 0); /* the kernel accepts; nobody reads */
    struct endpoint ep = endpoint_of("", port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 500, &err), 0, "%s", err.msg);
    struct source_handshake_opts o = {.listening_port = LISTENING_PORT};
    struct source_handshake_result r;
    long long t0 = now_ms();
    cr_assert_eq(source_link_handshake(&cl, &o, &r, &err), -ETIMEDOUT, "%s", err.msg);
    long long dt = now_ms() - t0;
    cr_assert(dt >= 490 && dt < 2000, "gave up after %lld ms", dt);
    char want[128];
    snprintf(want, sizeof(want), "127.0.0.1:%d did not answer within 500 ms", port);
    cr_assert(contains(err.msg, want), "%s", err.msg);
    control_link_close(&cl);

    /* The same with a password: AUTH is what times out. */
    ep = endpoint_of(":pw@", port, NULL);
    t0 = now_ms();
    cr_assert_eq(control_link_open(&cl, &ep, 500, &err), -ETIMEDOUT, "%s", err.msg);
    cr_assert(now_ms() - t0 < 2000);
    cr_assert(contains(err.msg, "(waiting for the reply to AUTH)"), "%s", err.msg);
    close(lfd);
}

/* Accepts one connection, writes an HTTP answer, then reads until the client
 * closes (closing first, with our bytes unread, would send a reset). */
static void *http_peer(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    static const char answer[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    (void)!write(fd, answer, sizeof(answer) - 1);
    shutdown(fd, SHUT_WR);
    char buf[512];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (poll(&pfd, 1, 3000) > 0 && read(fd, buf, sizeof(buf)) > 0) {
    }
    close(fd);
    return NULL;
}

Test(source_handshake, a_port_that_speaks_http_is_not_redis)
{
    int port;
    int lfd = listen_loopback(&port);
    cr_assert_eq(listen(lfd, 8), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, http_peer, &lfd), 0);
    struct endpoint ep = endpoint_of("", port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 2000, &err), 0, "%s", err.msg);
    struct source_handshake_opts o = {.listening_port = LISTENING_PORT};
    struct source_handshake_result r;
    cr_assert_eq(source_link_handshake(&cl, &o, &r, &err), -EPROTO, "%s", err.msg);
    char want[160];
    snprintf(want, sizeof(want),
             "127.0.0.1:%d answered something that is not Redis (\"HTTP/1.1 400 Bad Request", port);
    cr_assert(contains(err.msg, want), "%s", err.msg);
    control_link_close(&cl);
    pthread_join(t, NULL);
    close(lfd);
}

Test(source_handshake, a_replica_without_its_primary_is_retryable)
{
    int port;
    close(listen_loopback(&port));
    struct redis_fixture *f = start_source(NULL);
    redis_fixture_exec(f->ctx, "REPLICAOF 127.0.0.1 %d", port);
    struct endpoint ep = endpoint_of("", f->port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), 0, "%s", err.msg);
    struct source_handshake_opts o = {.listening_port = LISTENING_PORT};
    struct source_handshake_result r;
    cr_assert_eq(source_link_handshake(&cl, &o, &r, &err), -EAGAIN, "%s", err.msg);
    cr_assert(r.retryable);
    cr_assert(contains(err.msg, "cannot serve PSYNC now (retry later): NOMASTERLINK"), "%s",
              err.msg);
    control_link_close(&cl);
    redis_fixture_stop(f);
}

/* ------------------------------------------------------- full resyncs */

/* Reads the RDB after the framing line: the pending bytes, then the socket,
 * up to rdb_len bytes or the EOF mark. Returns it (malloc'd), its length in *len. */
static char *read_rdb(int fd, struct rs_slice pending, const struct source_handshake_result *r,
                      size_t *len)
{
    size_t cap = 1 << 20, n = pending.len;
    char *buf = malloc(cap);
    cr_assert(buf != NULL && n <= cap);
    memcpy(buf, pending.p, n);
    for (;;) {
        if (r->eof_mark_len == 0 && n >= r->rdb_len)
            break;
        if (r->eof_mark_len > 0 && n >= 40 && memcmp(buf + n - 40, r->eof_mark, 40) == 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, 10000), 1, "the snapshot stopped after %zu bytes", n);
        size_t want = r->eof_mark_len == 0 ? r->rdb_len - n : cap - n;
        cr_assert(want > 0 && n < cap, "the snapshot is larger than this test expects");
        ssize_t got = read(fd, buf + n, want);
        cr_assert(got > 0, "read: %zd %s", got, strerror(errno));
        n += (size_t)got;
    }
    if (r->eof_mark_len > 0)
        n -= 40;
    *len = n;
    return buf;
}

static void full_resync(bool diskless)
{
    const char *const disk[] = {"--repl-diskless-sync", "no", NULL};
    const char *const eof[] = {"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                               NULL};
    struct redis_fixture *f = start_source(diskless ? eof : disk);

    struct endpoint ep = endpoint_of("", f->port, NULL);
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &ep, 3000, &err), 0, "%s", err.msg);
    struct source_handshake_opts o = {.listening_port = LISTENING_PORT,
                                      .snapshot_wait_timeout_ms = 10000};
    struct source_handshake_result r;
    cr_assert_eq(source_link_handshake(&cl, &o, &r, &err), 0, "%s", err.msg);
    cr_assert(r.full);
    cr_assert_eq(strlen(r.replid), 40);
    /* (The source takes a new replid when its first replica comes.) */
    char master_replid[64];
    cr_assert(redis_fixture_info(f->ctx, "replication", "master_replid", master_replid,
                                 sizeof(master_replid)));
    cr_assert_str_eq(r.replid, master_replid, "the replid is the source's");
    cr_assert_geq(r.offset, 0);
    if (diskless) {
        cr_assert_eq(r.eof_mark_len, 40);
        cr_assert_eq(r.rdb_len, SOURCE_RDB_LEN_UNKNOWN);
    } else {
        cr_assert_eq(r.eof_mark_len, 0);
        cr_assert(r.rdb_len > 9 && r.rdb_len < 1000000, "rdb_len %llu",
                  (unsigned long long)r.rdb_len);
    }

    struct rs_slice pending;
    int fd = control_link_detach(&cl, &pending);
    size_t len;
    char *rdb = read_rdb(fd, pending, &r, &len);
    control_link_close(&cl);
    cr_assert(len > 9 + 9 && memcmp(rdb, "REDIS00", 7) == 0, "starts \"%.9s\"", rdb);
    cr_assert_eq((unsigned char)rdb[len - 9], 0xff, "the RDB's EOF opcode ends it");
    uint64_t stored = 0;
    for (int i = 0; i < 8; i++)
        stored |= (uint64_t)(unsigned char)rdb[len - 8 + i] << (8 * i);
    cr_assert_eq(crc64_update(0, rdb, len - 8), stored, "the whole RDB came, checksum and all");
    free(rdb);

    /* The source lists us with the port we gave. */
    char slave0[256];
    cr_assert(redis_fixture_info(f->ctx, "replication", "slave0", slave0, sizeof(slave0)));
    char want[32];
    snprintf(want, sizeof(want), "port=%d", LISTENING_PORT);
    cr_assert(contains(slave0, want), "%s", slave0);
    close(fd);
    redis_fixture_stop(f);
}

Test(source_handshake, full_resync_disk_based)
{
    full_resync(false);
}

Test(source_handshake, full_resync_diskless)
{
    full_resync(true);
}
