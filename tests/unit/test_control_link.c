/* test_control_link.c - control_link against scripted peers on loopback:
 * replies that arrive together, lines with keepalives split at every offset,
 * the bytes handed over by detach, and each failure's message. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_link.h"
#include "fake_peer.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void peer_with(struct fake_peer *fp, const char *script)
{
    memset(fp, 0, sizeof(*fp));
    fp->steps[0].bytes = script;
    fp->nsteps = 1;
}

static void open_ok(struct control_link *cl, struct fake_peer *fp)
{
    struct rs_error err = {0};
    int rc = control_link_open(cl, &fp->ep, 2000, &err);
    cr_assert_eq(rc, 0, "open: %s", err.msg);
}

static bool contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

Test(control_link, replies_that_arrive_together_are_kept_apart)
{
    struct fake_peer fp;
    peer_with(&fp, "+OK\r\n:42\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR nope\r\nrest");
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    struct control_reply rep;

    cr_assert_eq(control_link_commandv(&cl, &rep, &err, "PING", NULL), 0, "%s", err.msg);
    cr_assert_eq(rep.r->type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(rep.r->str, "OK");
    control_reply_free(&rep);

    cr_assert_eq(control_link_commandv(&cl, &rep, &err, "INCR", "k", NULL), 0, "%s", err.msg);
    cr_assert_eq(rep.r->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(rep.r->integer, 42);
    control_reply_free(&rep);

    cr_assert_eq(control_link_commandv(&cl, &rep, &err, "MGET", "a", "b", NULL), 0);
    cr_assert_eq(rep.r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(rep.r->elements, 2);
    cr_assert_str_eq(rep.r->element[0]->str, "a");
    cr_assert_eq(rep.r->element[1]->type, REDIS_REPLY_NIL);
    control_reply_free(&rep);

    cr_assert_eq(control_link_commandv(&cl, &rep, &err, "X", NULL), 0, "an error reply is a reply");
    cr_assert_eq(rep.r->type, REDIS_REPLY_ERROR);
    cr_assert_str_eq(rep.r->str, "ERR nope");
    control_reply_free(&rep);

    struct rs_slice pending;
    int fd = control_link_detach(&cl, &pending);
    cr_assert(fd >= 0);
    cr_assert_eq(pending.len, 4);
    cr_assert(memcmp(pending.p, "rest", 4) == 0);
    control_link_close(&cl);
    close(fd);
    fake_peer_stop(&fp);

    static const char sent[] = "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
                               "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$1\r\nX\r\n";
    cr_assert_eq(fp.got_len, sizeof(sent) - 1);
    cr_assert(memcmp(fp.got, sent, fp.got_len) == 0, "commands go out as RESP arrays");
}

Test(control_link, binary_arguments_with_lengths)
{
    struct fake_peer fp;
    peer_with(&fp, "+OK\r\n");
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    struct control_reply rep;
    const char *argv[] = {"SET", "k\r\n", "\0\1"};
    const size_t lens[] = {3, 3, 2};
    cr_assert_eq(control_link_command(&cl, &rep, &err, 3, argv, lens), 0, "%s", err.msg);
    control_reply_free(&rep);
    control_link_close(&cl);
    fake_peer_stop(&fp);
    static const char sent[] = "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n\0\1\r\n";
    cr_assert_eq(fp.got_len, sizeof(sent) - 1);
    cr_assert(memcmp(fp.got, sent, fp.got_len) == 0);
}

/* Lines with keepalives, split at every offset: the same lines and leftover. */
static const char line_script[] =
    "\n+FULLRESYNC 0123456789abcdef0123456789abcdef01234567 99\r\n"
    "\n\n\n$EOF:ABCDEFGHIJabcdefghijABCDEFGHIJabcdefghij\r\nREDIS0010\xfa";

static void check_lines(size_t split, int pause_ms)
{
    struct fake_peer fp;
    peer_with(&fp, line_script);
    fp.steps[0].len = sizeof(line_script) - 1;
    fp.split = split;
    fp.pause_ms = pause_ms;
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    struct rs_slice line;
    cr_assert_eq(control_link_read_line(&cl, 2000, "a line", &line, &err), 0, "%s", err.msg);
    cr_assert_eq(line.len, 55, "split %zu: %.*s", split, (int)line.len, line.p);
    cr_assert(memcmp(line.p, "+FULLRESYNC 0123", 16) == 0);
    cr_assert_eq(control_link_read_line(&cl, 2000, "a line", &line, &err), 0, "%s", err.msg);
    cr_assert_eq(line.len, 45, "split %zu", split);
    cr_assert(memcmp(line.p, "$EOF:ABCDEFGHIJ", 15) == 0);

    /* What follows the line: whatever was buffered, then the socket. */
    struct rs_slice pending;
    int fd = control_link_detach(&cl, &pending);
    char rest[32];
    size_t n = pending.len;
    cr_assert(n <= sizeof(rest));
    memcpy(rest, pending.p, n);
    while (n < 10) {
        ssize_t r = read(fd, rest + n, sizeof(rest) - n);
        cr_assert(r > 0, "split %zu: read after detach: %zd", split, r);
        n += (size_t)r;
    }
    cr_assert_eq(n, 10, "split %zu", split);
    cr_assert(memcmp(rest, "REDIS0010\xfa", 10) == 0, "split %zu", split);
    close(fd);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, lines_whole)
{
    check_lines(0, 0);
}

Test(control_link, lines_one_byte_at_a_time)
{
    check_lines(FAKE_PEER_BYTEWISE, 1);
}

Test(control_link, lines_split_at_every_offset)
{
    for (size_t split = 1; split < sizeof(line_script) - 1; split++)
        check_lines(split, 2);
}

Test(control_link, keepalives_restart_the_wait)
{
    struct fake_peer fp;
    memset(&fp, 0, sizeof(fp));
    for (int i = 0; i < 6; i++)
        fp.steps[i] = (struct fake_peer_step){.bytes = "\n", .delay_ms = 100};
    fp.steps[6] = (struct fake_peer_step){.bytes = "$5\r\n", .delay_ms = 100};
    fp.nsteps = 7;
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    struct rs_slice line;
    long long t0 = now_ms();
    cr_assert_eq(control_link_read_line(&cl, 300, "the snapshot", &line, &err), 0, "%s", err.msg);
    cr_assert_geq(now_ms() - t0, 600, "700 ms of keepalives with a 300 ms wait");
    cr_assert_eq(line.len, 2);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, silence_times_out_with_the_endpoint_and_what_was_awaited)
{
    struct fake_peer fp;
    peer_with(&fp, "\n");
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    struct rs_slice line;
    long long t0 = now_ms();
    cr_assert_eq(control_link_read_line(&cl, 300, "the snapshot", &line, &err), -ETIMEDOUT);
    long long dt = now_ms() - t0;
    cr_assert(dt >= 290 && dt < 1500, "waited %lld ms", dt);
    cr_assert(contains(err.msg, fp.ep.name), "%s", err.msg);
    cr_assert(contains(err.msg, "did not answer within 300 ms (waiting for the snapshot)"), "%s",
              err.msg);
    cr_assert_eq(err.code, RS_E_TRUNCATED);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, a_line_longer_than_the_buffer_is_refused)
{
    static char big[CONTROL_LINK_BUF_CAP + 10];
    memset(big, 'x', sizeof(big));
    struct fake_peer fp;
    peer_with(&fp, big);
    fp.steps[0].len = sizeof(big);
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    struct rs_slice line;
    cr_assert_eq(control_link_read_line(&cl, 2000, "a line", &line, &err), -EMSGSIZE);
    cr_assert(contains(err.msg, "a line longer than 16384 bytes"), "%s", err.msg);
    cr_assert(contains(err.msg, "\"xxxx"), "%s", err.msg);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, something_that_is_not_redis)
{
    struct fake_peer fp;
    peer_with(&fp, "HTTP/1.1 400 Bad Request\r\n\r\n");
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    struct control_reply rep;
    cr_assert_eq(control_link_commandv(&cl, &rep, &err, "PING", NULL), -EPROTO);
    cr_assert_null(rep.r);
    cr_assert(contains(err.msg, fp.ep.name), "%s", err.msg);
    cr_assert(contains(err.msg, "answered something that is not Redis (\"HTTP/1.1 400 Bad "
                                "Request\\x0d\\x0a"),
              "%s", err.msg);
    cr_assert_eq(err.code, RS_E_FORMAT);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, closed_connection)
{
    struct fake_peer fp;
    peer_with(&fp, "");
    fp.linger_ms = 1; /* close right away */
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    usleep(50 * 1000);
    struct rs_error err = {0};
    struct control_reply rep;
    int rc = control_link_commandv(&cl, &rep, &err, "PING", NULL);
    cr_assert_eq(rc, -ECONNRESET, "rc %d: %s", rc, err.msg);
    cr_assert(contains(err.msg, "closed the connection"), "%s", err.msg);
    cr_assert(contains(err.msg, fp.ep.name), "%s", err.msg);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, a_reason_given_before_closing_is_shown)
{
    struct fake_peer fp;
    peer_with(&fp, "-ERR max number of clients reached\r\n");
    fp.linger_ms = 1;
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    usleep(50 * 1000);
    struct rs_error err = {0};
    struct control_reply rep;
    cr_assert_eq(control_link_commandv(&cl, &rep, &err, "PING", NULL), 0, "%s", err.msg);
    cr_assert_str_eq(rep.r->str, "ERR max number of clients reached");
    control_reply_free(&rep);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, connection_refused)
{
    struct endpoint ep;
    struct rs_error err = {0};
    char uri[64];
    snprintf(uri, sizeof(uri), "127.0.0.1:%d", fake_peer_closed_port());
    cr_assert_eq(endpoint_parse(uri, NULL, &ep, &err), 0);
    struct control_link cl;
    cr_assert_eq(control_link_open(&cl, &ep, 1000, &err), -ECONNREFUSED);
    char want[400];
    snprintf(want, sizeof(want), "cannot connect to %s: Connection refused", ep.name);
    cr_assert_str_eq(err.msg, want);
    control_link_close(&cl); /* a failed open leaves a closed link */
}

Test(control_link, unresolvable_host)
{
    struct endpoint ep;
    struct rs_error err = {0};
    cr_assert_eq(endpoint_parse("no-such-host.invalid:6379", NULL, &ep, &err), 0);
    struct control_link cl;
    cr_assert_lt(control_link_open(&cl, &ep, 1000, &err), 0);
    cr_assert(contains(err.msg, "cannot connect to no-such-host.invalid:6379: cannot resolve"),
              "%s", err.msg);
}

Test(control_link, auth_sends_user_and_password_and_names_the_refusal)
{
    struct fake_peer fp;
    peer_with(&fp, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    fake_peer_start(&fp);
    snprintf(fp.ep.user, sizeof(fp.ep.user), "syncer");
    snprintf(fp.ep.password, sizeof(fp.ep.password), "Sekr1t");
    fp.ep.has_password = true;
    struct control_link cl;
    struct rs_error err = {0};
    cr_assert_eq(control_link_open(&cl, &fp.ep, 2000, &err), -EACCES);
    fake_peer_stop(&fp);
    char want[400];
    snprintf(want, sizeof(want),
             "%s refused AUTH for user syncer: WRONGPASS invalid username-password pair or user "
             "is disabled.",
             fp.ep.name);
    cr_assert_str_eq(err.msg, want);
    cr_assert(!contains(err.msg, "Sekr1t"));
    static const char sent[] = "*3\r\n$4\r\nAUTH\r\n$6\r\nsyncer\r\n$6\r\nSekr1t\r\n";
    cr_assert_eq(fp.got_len, sizeof(sent) - 1);
    cr_assert(memcmp(fp.got, sent, fp.got_len) == 0);
}

Test(control_link, auth_with_password_only)
{
    struct fake_peer fp;
    peer_with(&fp, "+OK\r\n");
    fake_peer_start(&fp);
    snprintf(fp.ep.password, sizeof(fp.ep.password), "pw");
    fp.ep.has_password = true;
    struct control_link cl;
    open_ok(&cl, &fp);
    control_link_close(&cl);
    fake_peer_stop(&fp);
    static const char sent[] = "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n";
    cr_assert_eq(fp.got_len, sizeof(sent) - 1);
    cr_assert(memcmp(fp.got, sent, fp.got_len) == 0);
}

Test(control_link, nobody_answers_auth)
{
    struct fake_peer fp;
    memset(&fp, 0, sizeof(fp));
    fp.no_accept = true;
    fp.linger_ms = 1;
    fake_peer_start(&fp);
    fp.ep.has_password = true;
    snprintf(fp.ep.password, sizeof(fp.ep.password), "pw");
    struct control_link cl;
    struct rs_error err = {0};
    long long t0 = now_ms();
    cr_assert_eq(control_link_open(&cl, &fp.ep, 300, &err), -ETIMEDOUT);
    long long dt = now_ms() - t0;
    cr_assert(dt >= 290 && dt < 1500, "waited %lld ms", dt);
    char want[400];
    snprintf(want, sizeof(want), "%s did not answer within 300 ms (waiting for the reply to AUTH)",
             fp.ep.name);
    cr_assert_str_eq(err.msg, want);
    fake_peer_stop(&fp);
}

/* Scripts one bulk-string reply per content, in buf. */
static const char *bulks(char *buf, size_t cap, const char *a, const char *b)
{
    int n = snprintf(buf, cap, "$%zu\r\n%s\r\n", strlen(a), a);
    if (b != NULL)
        snprintf(buf + n, cap - (size_t)n, "$%zu\r\n%s\r\n", strlen(b), b);
    return buf;
}

static void check_dbsize(const char *keyspace, int want_rc, uint64_t want_keys,
                         const char *want_msg)
{
    char script[512];
    struct fake_peer fp;
    peer_with(&fp, bulks(script, sizeof(script), keyspace, NULL));
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    uint64_t keys = 7;
    int rc = control_link_dbsize_all(&cl, &keys, &err);
    cr_assert_eq(rc, want_rc, "%s: %s", keyspace, err.msg);
    if (rc == 0)
        cr_assert_eq(keys, want_keys, "%s", keyspace);
    else
        cr_assert(contains(err.msg, want_msg), "%s", err.msg);
    control_link_close(&cl);
    fake_peer_stop(&fp);
    static const char sent[] = "*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n";
    cr_assert_eq(fp.got_len, sizeof(sent) - 1);
    cr_assert(memcmp(fp.got, sent, fp.got_len) == 0);
}

Test(control_link, dbsize_all_sums_the_keyspace)
{
    check_dbsize("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\n"
                 "db12:keys=40,expires=0,avg_ttl=0\r\n",
                 0, 43, NULL);
    check_dbsize("# Keyspace\r\ndb0:keys=12345678901,expires=1,avg_ttl=0\r\n", 0, 12345678901ULL,
                 NULL);
}

Test(control_link, dbsize_all_of_an_empty_keyspace_is_zero)
{
    check_dbsize("# Keyspace\r\n", 0, 0, NULL);
    check_dbsize("", 0, 0, NULL);
}

Test(control_link, dbsize_all_refuses_a_malformed_line)
{
    check_dbsize("# Keyspace\r\ndb0:k=1\r\n", -EPROTO, 0, "\"db0:k=1\"");
    check_dbsize("# Keyspace\r\ndb0:keys=,expires=0\r\n", -EPROTO, 0, "not dbN:keys=N");
    check_dbsize("# Keyspace\r\ndb0:keys=1x,expires=0\r\n", -EPROTO, 0, "not dbN:keys=N");
}

Test(control_link, info_field_finds_the_value)
{
    char script[512];
    bulks(script, sizeof(script),
          "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nmaster_x:1\r\n", NULL);
    strcat(script, "-ERR unknown section\r\n");
    struct fake_peer fp;
    peer_with(&fp, script);
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    char v[8];
    cr_assert_eq(
        control_link_info_field(&cl, "replication", "connected_slaves", v, sizeof(v), &err), 0,
        "%s", err.msg);
    cr_assert_str_eq(v, "2");
    cr_assert_eq(control_link_info_field(&cl, "nope", "x", v, sizeof(v), &err), -EPERM);
    cr_assert(contains(err.msg, "refused INFO nope: ERR unknown section"), "%s", err.msg);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, info_field_missing_and_cut_to_fit)
{
    char script[512];
    const char *server = "# Server\r\nredis_version:7.0.15\r\nlast:x";
    struct fake_peer fp;
    peer_with(&fp, bulks(script, sizeof(script), server, server));
    fake_peer_start(&fp);
    struct control_link cl;
    open_ok(&cl, &fp);
    struct rs_error err = {0};
    char v[4];
    cr_assert_eq(control_link_info_field(&cl, "server", "redis_version", v, sizeof(v), &err), 0);
    cr_assert_str_eq(v, "7.0");
    cr_assert_eq(control_link_info_field(&cl, "server", "redis", v, sizeof(v), &err), -ENOENT);
    cr_assert(contains(err.msg, "INFO server has no field 'redis'"), "%s", err.msg);
    control_link_close(&cl);
    fake_peer_stop(&fp);
}

Test(control_link, closing_twice_and_closing_zero_are_no_ops)
{
    struct control_link cl;
    memset(&cl, 0, sizeof(cl));
    control_link_close(&cl);
    control_link_close(&cl);
}
