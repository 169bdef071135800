/* test_source_link.c - source_link_handshake against scripted sources: the
 * answers of PROTOCOL.md §1 (whole, a byte at a time, split at every
 * offset), what ringsync sends, and every refusal's message. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_peer.h"
#include "source_link.h"

#define REPLID "0123456789abcdef0123456789abcdef01234567"
#define MARK   "ABCDEFGHIJabcdefghijABCDEFGHIJabcdefghij"

/* What ringsync sends for a first sync with listening port 7777. */
static const char first_sync_sent[] =
    "*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n7777\r\n"
    "*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
    "*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n";

struct run {
    struct fake_peer fp;
    int rc;
    struct rs_error err;
    struct source_handshake_result r;
    char after[64]; /* the bytes after the handshake: pending, then the socket */
    size_t after_len;
};

/* Runs a handshake against script; reads want_after bytes after it. */
static void run_script(struct run *run, const char *script, size_t len, size_t split,
                       const struct source_handshake_opts *o, size_t want_after)
{
    memset(run, 0, sizeof(*run));
    run->fp.steps[0] = (struct fake_peer_step){.bytes = script, .len = len};
    run->fp.nsteps = 1;
    run->fp.split = split;
    run->fp.pause_ms = split == FAKE_PEER_BYTEWISE ? 0 : 2;
    fake_peer_start(&run->fp);
    struct control_link cl;
    int rc = control_link_open(&cl, &run->fp.ep, 2000, &run->err);
    cr_assert_eq(rc, 0, "%s", run->err.msg);
    struct source_handshake_opts def = {.listening_port = 7777};
    run->rc = source_link_handshake(&cl, o != NULL ? o : &def, &run->r, &run->err);
    if (run->rc == 0 && want_after > 0) {
        struct rs_slice pending;
        int fd = control_link_detach(&cl, &pending);
        cr_assert_leq(pending.len, want_after);
        memcpy(run->after, pending.p, pending.len);
        run->after_len = pending.len;
        while (run->after_len < want_after) {
            ssize_t n = read(fd, run->after + run->after_len, want_after - run->after_len);
            cr_assert(n > 0);
            run->after_len += (size_t)n;
        }
        close(fd);
    }
    control_link_close(&cl);
    fake_peer_stop(&run->fp);
}

static const char full_eof[] = "+OK\r\n+OK\r\n\n+FULLRESYNC " REPLID " 1234\r\n\n\n"
                               "$EOF:" MARK "\r\nREDIS0010";

static void check_full_eof(size_t split)
{
    struct run run;
    run_script(&run, full_eof, sizeof(full_eof) - 1, split, NULL, 9);
    cr_assert_eq(run.rc, 0, "split %zu: %s", split, run.err.msg);
    cr_assert(run.r.full);
    cr_assert_str_eq(run.r.replid, REPLID);
    cr_assert_eq(run.r.offset, 1234);
    cr_assert_eq(run.r.rdb_len, SOURCE_RDB_LEN_UNKNOWN);
    cr_assert_eq(run.r.eof_mark_len, 40);
    cr_assert(memcmp(run.r.eof_mark, MARK, 40) == 0);
    cr_assert(memcmp(run.after, "REDIS0010", 9) == 0, "split %zu", split);
    cr_assert_eq(run.fp.got_len, sizeof(first_sync_sent) - 1);
    cr_assert(memcmp(run.fp.got, first_sync_sent, run.fp.got_len) == 0);
}

Test(source_link, full_resync_diskless_whole)
{
    check_full_eof(0);
}

Test(source_link, full_resync_diskless_one_byte_at_a_time)
{
    check_full_eof(FAKE_PEER_BYTEWISE);
}

Test(source_link, full_resync_diskless_split_at_every_offset)
{
    for (size_t split = 1; split < sizeof(full_eof) - 1; split++)
        check_full_eof(split);
}

Test(source_link, full_resync_disk_based)
{
    static const char s[] = "+OK\r\n+OK\r\n+FULLRESYNC " REPLID " 0\r\n\n$175\r\nREDIS0010";
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, NULL, 9);
    cr_assert_eq(run.rc, 0, "%s", run.err.msg);
    cr_assert(run.r.full);
    cr_assert_eq(run.r.offset, 0);
    cr_assert_eq(run.r.rdb_len, 175);
    cr_assert_eq(run.r.eof_mark_len, 0);
    cr_assert(memcmp(run.after, "REDIS0010", 9) == 0);
}

Test(source_link, replconf_errors_of_old_servers_are_ignored)
{
    static const char s[] = "-ERR Unrecognized REPLCONF option: listening-port\r\n"
                            "-ERR Unrecognized REPLCONF option: capa\r\n"
                            "+FULLRESYNC " REPLID " 77\r\n$1\r\nR";
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, NULL, 1);
    cr_assert_eq(run.rc, 0, "%s", run.err.msg);
    cr_assert_eq(run.r.offset, 77);
    cr_assert_eq(run.r.rdb_len, 1);
}

Test(source_link, no_listening_port_sends_none)
{
    static const char s[] = "+OK\r\n+FULLRESYNC " REPLID " 1\r\n$0\r\n";
    struct source_handshake_opts o = {0};
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, &o, 0);
    cr_assert_eq(run.rc, 0, "%s", run.err.msg);
    cr_assert(memcmp(run.fp.got, "*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa", 26) == 0);
}

Test(source_link, noauth_on_replconf_is_fatal)
{
    static const char s[] = "-NOAUTH Authentication required.\r\n";
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, NULL, 0);
    cr_assert_eq(run.rc, -EACCES);
    char want[400];
    snprintf(want, sizeof(want), "source %s refused REPLCONF: NOAUTH Authentication required.",
             run.fp.ep.name);
    cr_assert(strstr(run.err.msg, want) != NULL, "%s", run.err.msg);
    cr_assert(strstr(run.err.msg, "needs a password") != NULL, "%s", run.err.msg);
}

Test(source_link, noperm_on_replconf_is_fatal)
{
    static const char s[] = "+OK\r\n-NOPERM this user has no permissions to run the 'replconf' "
                            "command\r\n";
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, NULL, 0);
    cr_assert_eq(run.rc, -EACCES);
    cr_assert(strstr(run.err.msg, "refused REPLCONF: NOPERM this user") != NULL, "%s", run.err.msg);
}

Test(source_link, loading_and_nomasterlink_are_retryable)
{
    static const char *const answers[] = {
        "-LOADING Redis is loading the dataset in memory\r\n",
        "-NOMASTERLINK Can't SYNC while not connected with my master\r\n"};
    for (size_t i = 0; i < 2; i++) {
        char s[200];
        snprintf(s, sizeof(s), "+OK\r\n+OK\r\n%s", answers[i]);
        struct run run;
        run_script(&run, s, strlen(s), 0, NULL, 0);
        cr_assert_eq(run.rc, -EAGAIN, "%s", answers[i]);
        cr_assert(run.r.retryable);
        cr_assert(strstr(run.err.msg, "cannot serve PSYNC now (retry later)") != NULL, "%s",
                  run.err.msg);
        cr_assert(strstr(run.err.msg, run.fp.ep.name) != NULL);
    }
}

Test(source_link, other_errors_refuse_psync)
{
    static const char s[] = "+OK\r\n+OK\r\n-ERR no thanks\r\n";
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, NULL, 0);
    cr_assert_eq(run.rc, -EPERM);
    cr_assert_not(run.r.retryable);
    char want[400];
    snprintf(want, sizeof(want), "source %s refused PSYNC: ERR no thanks", run.fp.ep.name);
    cr_assert_str_eq(run.err.msg, want);
}

Test(source_link, continue_keeps_or_replaces_the_replid)
{
    static const char other[] = "fedcba9876543210fedcba9876543210fedcba98";
    struct source_handshake_opts o = {.listening_port = 7777, .replid = REPLID, .offset = 501};

    static const char same[] = "+OK\r\n+OK\r\n+CONTINUE\r\n*1\r\n$4\r\nPING\r\n";
    struct run run;
    run_script(&run, same, sizeof(same) - 1, 0, &o, 14);
    cr_assert_eq(run.rc, 0, "%s", run.err.msg);
    cr_assert_not(run.r.full);
    cr_assert_str_eq(run.r.replid, REPLID);
    cr_assert_eq(run.r.offset, 500);
    cr_assert(memcmp(run.after, "*1\r\n$4\r\nPING\r\n", 14) == 0, "the stream stays buffered");
    cr_assert(strstr(run.fp.got, "$5\r\nPSYNC\r\n$40\r\n" REPLID "\r\n$3\r\n501\r\n") != NULL);

    static const char changed[] = "+OK\r\n+OK\r\n+CONTINUE fedcba9876543210fedcba9876543210fedcba98"
                                  "\r\n";
    run_script(&run, changed, sizeof(changed) - 1, 0, &o, 0);
    cr_assert_eq(run.rc, 0, "%s", run.err.msg);
    cr_assert_str_eq(run.r.replid, other);
}

Test(source_link, malformed_answers_are_quoted)
{
    static const char *const bad[] = {
        "+FULLRESYNC 0123 5\r\n",
        "+FULLRESYNC " REPLID "\r\n",
        "+FULLRESYNC " REPLID " x\r\n",
        "+FULLRESYNC 0123456789abcdef0123456789abcdef0123456z 1\r\n",
        "+CONTINUE abc\r\n",
        "+OK\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[200];
        snprintf(s, sizeof(s), "+OK\r\n+OK\r\n%s", bad[i]);
        struct run run;
        run_script(&run, s, strlen(s), 0, NULL, 0);
        cr_assert_eq(run.rc, -EPROTO, "%s", bad[i]);
        cr_assert(strstr(run.err.msg, "answered PSYNC with \"+") != NULL, "%s", run.err.msg);
        cr_assert(strstr(run.err.msg, "not +FULLRESYNC <40 hex> <offset>") != NULL);
    }
}

Test(source_link, bad_framing_lines_are_quoted)
{
    static const char *const bad[] = {"$EOF:short\r\n", "$-1\r\n", "$\r\n", "+OK\r\n", "$12x\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[200];
        snprintf(s, sizeof(s), "+OK\r\n+OK\r\n+FULLRESYNC " REPLID " 1\r\n%s", bad[i]);
        struct run run;
        run_script(&run, s, strlen(s), 0, NULL, 0);
        cr_assert_eq(run.rc, -EPROTO, "%s", bad[i]);
        cr_assert(strstr(run.err.msg, "started the snapshot with \"") != NULL, "%s", run.err.msg);
    }
}

Test(source_link, something_that_is_not_redis_answers_psync)
{
    static const char s[] = "+OK\r\n+OK\r\nSSH-2.0-OpenSSH_9.2\r\n";
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, NULL, 0);
    cr_assert_eq(run.rc, -EPROTO);
    cr_assert(strstr(run.err.msg, "answered something that is not Redis (\"SSH-2.0") != NULL, "%s",
              run.err.msg);
}

Test(source_link, the_snapshot_wait_times_out)
{
    static const char s[] = "+OK\r\n+OK\r\n+FULLRESYNC " REPLID " 1\r\n\n";
    struct source_handshake_opts o = {.listening_port = 7777, .snapshot_wait_timeout_ms = 300};
    struct run run;
    run_script(&run, s, sizeof(s) - 1, 0, &o, 0);
    cr_assert_eq(run.rc, -ETIMEDOUT);
    cr_assert(strstr(run.err.msg, "did not answer within 300 ms (waiting for the snapshot to "
                                  "start)") != NULL,
              "%s", run.err.msg);
}

/* REPLCONF ACK as a replica sends it: a RESP array of three bulk strings. */
Test(source_link, ack_is_replconf_ack_with_the_offset)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    const uint64_t offsets[] = {0, 7, 1234567890123ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        source_link_send_ack(sv[0], offsets[i]);
        char num[32], want[96], got[96] = "";
        int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)offsets[i]);
        int len = snprintf(want, sizeof(want), "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n",
                           n, num);
        cr_assert_eq(read(sv[1], got, sizeof(got) - 1), len);
        cr_assert_str_eq(got, want);
    }
    close(sv[0]);
    close(sv[1]);
}
