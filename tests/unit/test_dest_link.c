/* test_dest_link.c - the destination link's retries (dest_link.h), driven
 * over a loopback TCP pair by a scripted destination in the test's own
 * thread: it parses what the link sends, answers each command by a rule
 * (refuse with -BUSY in a window, refuse once, refuse a SELECT ...) and keeps
 * what it applied, with the db it ran in. The oracle is the commands in the
 * order the batches hold them. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "dest_link.h"
#include "job.h"

#define UD_SEND 1
#define UD_RECV 2

struct peer;
/* The reply to command n (0-based, counting every command received, SELECTs
 * too) whose words are argv[0..argc); NULL: "+OK". */
typedef const char *(*rule_fn)(struct peer *p, int n, int argc, char argv[][64]);

struct peer {
    int fd;
    char in[1 << 16];
    size_t in_len;
    int received;
    int64_t db;
    char applied[64][160]; /* "db:CMD key" of each command taken, in order */
    int napplied;
    rule_fn rule;
    double busy_until; /* for window rules */
    int busy_from;
    int busy_count; /* refuse_first_n: how many */
    long seq_next;  /* SETs of "seq" values: the next value expected */
    bool seq_broken;
    long seq_applied;
    size_t in_total;       /* bytes received */
    size_t first_reply_at; /* in_total when the first reply went out */
};

struct harness {
    struct job job;
    struct io_uring ring;
    struct dest_link dl;
    struct peer peer;
    struct batch *done[64];
    int ndone;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_done(void *ctx, struct batch *b)
{
    struct harness *h = ctx;
    cr_assert_lt(h->ndone, 64);
    h->done[h->ndone++] = b;
}

static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *b = accept(l, NULL, NULL);
    cr_assert_geq(*b, 0);
    close(l);
    int one = 1;
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(*b, F_SETFL, O_NONBLOCK);
}

static void setup(struct harness *h, rule_fn rule)
{
    memset(h, 0, sizeof(*h));
    cr_assert_eq(job_init(&h->job, 1), 0);
    cr_assert_eq(io_uring_queue_init(64, &h->ring, 0), 0);
    int a, b;
    tcp_pair(&a, &b);
    cr_assert_eq(dest_link_init(&h->dl, a, "test:1", &h->job, on_done, h), 0);
    h->peer.fd = b;
    h->peer.rule = rule;
}

static void teardown(struct harness *h)
{
    dest_link_deinit(&h->dl);
    close(h->peer.fd);
    io_uring_queue_exit(&h->ring);
    for (int i = 0; i < h->ndone; i++)
        batch_free(h->done[i]);
    while (h->dl.head != NULL) {
        struct batch *b = h->dl.head;
        h->dl.head = b->next;
        batch_free(b);
    }
    job_deinit(&h->job);
}

/* A batch of commands given as space-separated words, in db_at_start. */
static struct batch *make_batch(int64_t db_at_start, uint64_t off, const char *const *cmds, int n)
{
    struct batch *b = calloc(1, sizeof(*b));
    b->cap = 4096;
    b->buf = malloc(b->cap);
    b->db_at_start = db_at_start;
    for (int i = 0; i < n; i++) {
        char words[8][64];
        struct rs_slice argv[8];
        int argc = 0;
        const char *s = cmds[i];
        while (*s && argc < 8) {
            const char *e = strchr(s, ' ');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            memcpy(words[argc], s, len);
            words[argc][len] = '\0';
            argv[argc] = (struct rs_slice){words[argc], len};
            argc++;
            s = e ? e + 1 : s + len;
        }
        batch_put_argv(b, argc, argv); /* counts the reply it will get */
    }
    b->off_before = off;
    b->off_last = off + 100;
    return b;
}

/* The destination: answers every complete command in its input. */
static void peer_step(struct peer *p)
{
    for (;;) {
        ssize_t n = read(p->fd, p->in + p->in_len, sizeof(p->in) - p->in_len);
        if (n <= 0)
            break;
        p->in_len += (size_t)n;
        p->in_total += (size_t)n;
    }
    size_t off = 0;
    for (;;) {
        const char *s = p->in + off, *end = p->in + p->in_len;
        if (s >= end || *s != '*')
            break;
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (nl == NULL)
            break;
        int argc = atoi(s + 1);
        char argv[8][64];
        const char *q = nl + 1;
        bool whole = true;
        for (int i = 0; i < argc; i++) {
            nl = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
            if (nl == NULL) {
                whole = false;
                break;
            }
            size_t len = (size_t)atoi(q + 1);
            q = nl + 1;
            if ((size_t)(end - q) < len + 2) {
                whole = false;
                break;
            }
            if (i < 8)
                snprintf(argv[i], 64, "%.*s", (int)(len < 63 ? len : 63), q);
            q += len + 2;
        }
        if (!whole)
            break;
        off = (size_t)(q - p->in);
        if (p->received == 0)
            p->first_reply_at = p->in_total;
        const char *reply = p->rule(p, p->received++, argc, argv);
        if (reply == NULL) {
            reply = "+OK\r\n";
            if (strcasecmp(argv[0], "SELECT") == 0) {
                p->db = atoi(argv[1]);
            } else if (strcmp(argv[0], "SET") == 0 && strncmp(argv[1], "seq:", 4) == 0) {
                if (atol(argv[2]) != p->seq_next)
                    p->seq_broken = true;
                p->seq_next = atol(argv[2]) + 1;
                p->seq_applied++;
            } else {
                cr_assert_lt(p->napplied, 64);
                snprintf(p->applied[p->napplied++], 160, "%lld:%s %s", (long long)p->db, argv[0],
                         argc > 1 ? argv[1] : "");
            }
        }
        cr_assert_eq(write(p->fd, reply, strlen(reply)), (ssize_t)strlen(reply));
    }
    memmove(p->in, p->in + off, p->in_len - off);
    p->in_len -= off;
}

/* The worker's loop, for the link alone, until done(h) or the job failed or
 * ms passed. */
static void run(struct harness *h, bool (*done)(struct harness *h), int ms)
{
    double end = now_s() + ms / 1000.0;
    while (now_s() < end && !atomic_load(&h->job.failed) && !done(h)) {
        dest_link_tick(&h->dl);
        dest_link_prep_send(&h->dl, &h->ring, UD_SEND);
        dest_link_prep_recv(&h->dl, &h->ring, UD_RECV);
        io_uring_submit(&h->ring);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 1000 * 1000};
        if (io_uring_wait_cqe_timeout(&h->ring, &cqe, &ts) == 0) {
            unsigned head, n = 0;
            io_uring_for_each_cqe(&h->ring, head, cqe)
            {
                if (cqe->user_data == UD_SEND)
                    dest_link_on_send(&h->dl, cqe->res);
                else if (cqe->user_data == UD_RECV)
                    dest_link_on_recv(&h->dl, cqe->res);
                n++;
            }
            io_uring_cq_advance(&h->ring, n);
        }
        peer_step(&h->peer);
    }
}

static bool idle(struct harness *h)
{
    return dest_link_is_idle(&h->dl);
}

/* Refuses every command from the busy_from-th on for 50 ms. */
static const char *busy_window(struct peer *p, int n, int argc, char argv[][64])
{
    (void)argc;
    (void)argv;
    if (n == p->busy_from)
        p->busy_until = now_s() + 0.05;
    if (n >= p->busy_from && now_s() < p->busy_until)
        return "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
               "NOSAVE.\r\n";
    return NULL;
}

static void expect_applied(struct harness *h, const char *const *want, int n)
{
    cr_expect_eq(h->peer.napplied, n, "applied %d commands, not %d", h->peer.napplied, n);
    for (int i = 0; i < n && i < h->peer.napplied; i++)
        cr_expect_str_eq(h->peer.applied[i], want[i], "command %d", i);
}

Test(dest_link, a_busy_window_that_refuses_all_after_the_first_retries_each_once_in_order)
{
    struct harness h;
    setup(&h, busy_window);
    h.peer.busy_from = 2;
    const char *b1[] = {"SET a 1", "SET b 2", "SET c 3", "SET d 4"};
    const char *b2[] = {"SET e 5", "DEL a"};
    const char *b3[] = {"INCR n"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 4));
    dest_link_enqueue(&h.dl, make_batch(0, 100, b2, 2));
    dest_link_enqueue(&h.dl, make_batch(0, 200, b3, 1));
    run(&h, idle, 3000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    const char *want[] = {"0:SET a", "0:SET b", "0:SET c", "0:SET d",
                          "0:SET e", "0:DEL a", "0:INCR n"};
    expect_applied(&h, want, 7);
    cr_expect_eq(h.ndone, 3);
    for (int i = 1; i < h.ndone; i++) /* in order */
        cr_expect_lt(h.done[i - 1]->off_before, h.done[i]->off_before);
    cr_expect_eq(h.dl.replies, 7); /* each applied once */
    cr_expect_geq(h.dl.retried, 1);
    cr_expect(h.peer.received > 7, "something was refused and sent again");
    teardown(&h);
}

Test(dest_link, a_refused_select_is_retried_and_later_batches_run_in_its_db)
{
    struct harness h;
    setup(&h, busy_window);
    h.peer.busy_from = 1; /* the SELECT */
    const char *b1[] = {"SET a 1", "SELECT 3", "SET b 2"};
    const char *b2[] = {"SET c 3"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 3));
    dest_link_enqueue(&h.dl, make_batch(3, 100, b2, 1));
    run(&h, idle, 3000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    /* the writer assumes db 3 from now on: a batch without SELECT */
    const char *b3[] = {"SET d 4"};
    dest_link_enqueue(&h.dl, make_batch(3, 200, b3, 1));
    run(&h, idle, 1000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    const char *want[] = {"0:SET a", "3:SET b", "3:SET c", "3:SET d"};
    expect_applied(&h, want, 4);
    cr_expect_eq(h.ndone, 3);
    teardown(&h);
}

Test(dest_link, the_db_is_restored_to_the_writers_after_retried_commands_of_another_db)
{
    struct harness h;
    setup(&h, busy_window);
    h.peer.busy_from = 1; /* SET b in db 0, then SELECT 5 and SET c refused too */
    const char *b1[] = {"SET a 1",  "SET b 2", "SELECT 5", "SET c 3",
                        "SELECT 0", "SET d 4", "SELECT 7"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 7));
    run(&h, idle, 3000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    const char *b2[] = {"SET e 5"}; /* the writer left the connection in db 7 */
    dest_link_enqueue(&h.dl, make_batch(7, 100, b2, 1));
    run(&h, idle, 1000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    const char *want[] = {"0:SET a", "0:SET b", "5:SET c", "0:SET d", "7:SET e"};
    expect_applied(&h, want, 5);
    teardown(&h);
}

/* Refuses command `busy_from` once, takes everything else. */
static const char *refuse_once(struct peer *p, int n, int argc, char argv[][64])
{
    (void)argc;
    (void)argv;
    return n == p->busy_from ? "-LOADING Redis is loading the dataset in memory\r\n" : NULL;
}

Test(dest_link, a_command_taken_after_a_refused_one_of_its_slot_stops_with_the_order_error)
{
    struct harness h;
    setup(&h, refuse_once);
    h.peer.busy_from = 0;
    const char *b1[] = {"SET k 1", "APPEND k 2"};
    dest_link_enqueue(&h.dl, make_batch(0, 1000, b1, 2));
    run(&h, idle, 2000);
    cr_assert(atomic_load(&h.job.failed));
    cr_expect(strstr(h.job.fail_msg, "same hash slot 7629") != NULL, "%s", h.job.fail_msg);
    cr_expect(strstr(h.job.fail_msg, "APPEND 'k' in db 0 (source offset 1000..1100)") != NULL, "%s",
              h.job.fail_msg);
    cr_expect(strstr(h.job.fail_msg, "SET 'k'") != NULL, "%s", h.job.fail_msg);
    cr_expect(strstr(h.job.fail_msg, "cannot be restored") != NULL, "%s", h.job.fail_msg);
    cr_expect_eq(h.ndone, 0);
    teardown(&h);
}

Test(dest_link, a_command_of_another_slot_taken_after_a_refused_one_is_a_harmless_reorder)
{
    struct harness h;
    setup(&h, refuse_once);
    h.peer.busy_from = 0;
    const char *b1[] = {"SET a 1", "SET b 2"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 2));
    run(&h, idle, 2000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    const char *want[] = {"0:SET b", "0:SET a"};
    expect_applied(&h, want, 2);
    cr_expect_eq(h.ndone, 1);
    teardown(&h);
}

Test(dest_link, a_command_taken_after_a_refused_select_stops)
{
    struct harness h;
    setup(&h, refuse_once);
    h.peer.busy_from = 0;
    const char *b1[] = {"SELECT 2", "SET a 1"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 2));
    run(&h, idle, 2000);
    cr_assert(atomic_load(&h.job.failed));
    cr_expect(strstr(h.job.fail_msg, "SELECT before it was refused") != NULL, "%s", h.job.fail_msg);
    teardown(&h);
}

static const char *always_busy(struct peer *p, int n, int argc, char argv[][64])
{
    (void)p;
    (void)n;
    (void)argc;
    (void)argv;
    return "-BUSY Redis is busy running a script.\r\n";
}

Test(dest_link, it_gives_up_after_the_retry_timeout_naming_the_reply_and_the_command)
{
    struct harness h;
    setup(&h, always_busy);
    h.job.retry_timeout_s = 0.2;
    const char *b1[] = {"XADD s 1-1 f v"};
    dest_link_enqueue(&h.dl, make_batch(0, 500, b1, 1));
    double t0 = now_s();
    run(&h, idle, 3000);
    cr_assert(atomic_load(&h.job.failed));
    cr_expect_geq(now_s() - t0, 0.2);
    cr_expect(strstr(h.job.fail_msg, "test:1 still answers -BUSY") != NULL, "%s", h.job.fail_msg);
    cr_expect(strstr(h.job.fail_msg, "XADD 's' in db 0 (source offset 500..600)") != NULL, "%s",
              h.job.fail_msg);
    cr_expect(h.peer.received >= 3, "probed again while waiting (%d)", h.peer.received);
    cr_expect(h.peer.received < 40, "backoff bounds the probes (%d)", h.peer.received);
    teardown(&h);
}

static const char *oom(struct peer *p, int n, int argc, char argv[][64])
{
    (void)p;
    (void)argc;
    (void)argv;
    return n == 1 ? "-OOM command not allowed when used memory > 'maxmemory'.\r\n" : NULL;
}

Test(dest_link, a_configuration_reply_stops_even_with_on_error_skip_naming_the_setting)
{
    struct harness h;
    setup(&h, oom);
    h.job.skip_errors = true;
    const char *b1[] = {"SET a 1", "SET b 2", "SET c 3"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 3));
    run(&h, idle, 2000);
    cr_assert(atomic_load(&h.job.failed));
    cr_expect(strstr(h.job.fail_msg, "refused SET 'b' in db 0 (source offset 0..100): -OOM") !=
                  NULL,
              "%s", h.job.fail_msg);
    cr_expect(strstr(h.job.fail_msg, "maxmemory") != NULL, "%s", h.job.fail_msg);
    cr_expect(strstr(h.job.fail_msg, "on the destination") != NULL, "%s", h.job.fail_msg);
    teardown(&h);
}

/* A peer that refuses a command inside MULTI and still runs the rest at
 * EXEC (no real server does: it answers EXECABORT): the job stops. */
Test(dest_link, a_transaction_refused_in_part_and_run_stops)
{
    struct harness h;
    setup(&h, refuse_once);
    h.peer.busy_from = 1;
    const char *b1[] = {"MULTI", "SET a 1", "EXEC"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 3));
    run(&h, idle, 2000);
    cr_assert(atomic_load(&h.job.failed));
    cr_expect(strstr(h.job.fail_msg, "refused part of the transaction") != NULL, "%s",
              h.job.fail_msg);
    cr_expect(strstr(h.job.fail_msg, "SET 'a'") != NULL, "%s", h.job.fail_msg);
    teardown(&h);
}

/* As Redis does: commands queued inside MULTI, command `busy_from` refused
 * once with -LOADING, which makes EXEC answer EXECABORT (nothing ran). */
static bool tx_in, tx_dirty;
static const char *tx_like_redis(struct peer *p, int n, int argc, char argv[][64])
{
    (void)argc;
    if (strcasecmp(argv[0], "MULTI") == 0) {
        tx_in = true;
        tx_dirty = false;
        return NULL;
    }
    if (strcasecmp(argv[0], "EXEC") == 0) {
        tx_in = false;
        return tx_dirty ? "-EXECABORT Transaction discarded because of previous errors.\r\n"
                        : "*2\r\n+OK\r\n:5\r\n";
    }
    if (n == p->busy_from) {
        tx_dirty = tx_in;
        return "-LOADING Redis is loading the dataset in memory\r\n";
    }
    return tx_in ? "+QUEUED\r\n" : NULL;
}

Test(dest_link, a_transaction_refused_while_loading_is_retried_whole)
{
    struct harness h;
    setup(&h, tx_like_redis);
    h.peer.busy_from = 2; /* the INCR inside */
    const char *b1[] = {"SET x 1", "MULTI", "INCR c", "SET cp 9", "EXEC", "SET y 2"};
    dest_link_enqueue(&h.dl, make_batch(0, 0, b1, 6));
    run(&h, idle, 2000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    cr_assert_eq(h.ndone, 1, "the batch was not done");
    /* the peer saw the transaction twice: refused (EXECABORT), then whole */
    cr_assert_eq(h.peer.received, 6 + 4, "the peer got %d commands", h.peer.received);
    teardown(&h);
}

/* Refuses the first busy_count commands it receives. */
static const char *refuse_first_n(struct peer *p, int n, int argc, char argv[][64])
{
    (void)argc;
    (void)argv;
    return n < p->busy_count ? "-LOADING Redis is loading the dataset in memory\r\n" : NULL;
}

Test(dest_link, a_batch_partly_sent_when_the_first_refusal_comes_is_sent_whole_then_retried)
{
    struct harness h;
    setup(&h, refuse_first_n);
    /* 8 MB in one batch: far past what one send of a loopback socket takes,
     * so the first -LOADING comes back while most of it is still unsent */
    enum { N = 120000 };
    struct batch *b = calloc(1, sizeof(*b));
    b->cap = (size_t)N * 128;
    b->buf = malloc(b->cap);
    for (int i = 0; i < N; i++) {
        char key[32], val[64];
        int kl = snprintf(key, sizeof(key), "seq:%d", i);
        int vl = snprintf(val, sizeof(val), "%d", i);
        memset(val + vl, ' ', 40); /* padding, atol ignores it */
        struct rs_slice argv[3] = {{"SET", 3}, {key, (size_t)kl}, {val, (size_t)vl + 40}};
        batch_put_argv(b, 3, argv);
    }
    h.peer.busy_count = N; /* all of the first pass */
    size_t len = b->len;
    dest_link_enqueue(&h.dl, b);
    run(&h, idle, 20000);
    cr_assert(!atomic_load(&h.job.failed), "%s", h.job.fail_msg);
    cr_expect_eq(h.peer.received, 2 * N, "each sent once whole, then once again (%d)",
                 h.peer.received);
    cr_expect_lt(h.peer.first_reply_at, len / 2, "the first reply came after %zu of %zu bytes",
                 h.peer.first_reply_at, len);
    cr_expect_eq(h.peer.seq_applied, N);
    cr_expect(!h.peer.seq_broken, "applied out of order");
    cr_expect_eq(h.ndone, 1);
    cr_expect_eq(h.dl.replies, (uint64_t)N);
    teardown(&h);
}
