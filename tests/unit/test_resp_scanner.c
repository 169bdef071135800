/* test_resp_scanner.c - the replication stream's command scanner.
 *
 * Every stream is built by a small writer that also records what the scanner
 * must return for it (each command's exact bytes, arguments and end offset,
 * counted from a start offset that is not 0). Then it is fed whole, one byte
 * at a time, and split at every offset into two feeds; all of these must give
 * the same commands, and the same error at the same offset. After every
 * command a run also puts it back (resp_scanner_unread) and checks that the
 * next call returns it again. The comparison itself is shown to notice a
 * difference (the deliberate mismatch at the end).
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp_scanner.h"

#define START 1000 /* the stream offset of the first byte, in most tests */

/* ------------------------------------------------------------- a run */

/* A command as the scanner returned it, copied out of the scanner. */
struct seen_cmd {
    char *raw;
    size_t raw_len;
    int argc;
    char **argv;
    size_t *arglen;
    uint64_t end_offset;
};

/* What one way of feeding a stream gave. */
struct run {
    struct seen_cmd *cmds;
    size_t n, cap;
    bool failed;
    struct rs_error err;
    uint64_t offset_after; /* resp_scanner_offset at the end */
    size_t pending;        /* resp_scanner_pending at the end */
};

static char *dup_bytes(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    cr_assert(d != NULL);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void run_add(struct run *r, const char *raw, size_t raw_len, int argc,
                    const struct rs_slice *argv, uint64_t end_offset)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->cmds = realloc(r->cmds, r->cap * sizeof(*r->cmds));
        cr_assert(r->cmds != NULL);
    }
    struct seen_cmd *c = &r->cmds[r->n++];
    c->raw = dup_bytes(raw, raw_len);
    c->raw_len = raw_len;
    c->argc = argc;
    c->argv = calloc((size_t)argc + 1, sizeof(*c->argv));
    c->arglen = calloc((size_t)argc + 1, sizeof(*c->arglen));
    cr_assert(c->argv != NULL && c->arglen != NULL);
    for (int i = 0; i < argc; i++) {
        c->argv[i] = dup_bytes(argv[i].p, argv[i].len);
        c->arglen[i] = argv[i].len;
    }
    c->end_offset = end_offset;
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct seen_cmd *c = &r->cmds[i];
        for (int k = 0; k < c->argc; k++)
            free(c->argv[k]);
        free(c->argv);
        free(c->arglen);
        free(c->raw);
    }
    free(r->cmds);
    memset(r, 0, sizeof(*r));
}

/* Takes every command the scanner has ready into r. After each, checks that
 * its slices lie in its raw bytes and that unread + next returns it again. */
static void drain(struct resp_scanner *s, struct run *r)
{
    for (;;) {
        struct resp_cmd c;
        struct rs_error err;
        int rc = resp_scanner_next(s, &c, &err);
        if (rc == 0)
            return;
        if (rc == RS_ERR) {
            r->failed = true;
            r->err = err;
            return;
        }
        cr_assert_eq(rc, 1);
        cr_assert(c.argc > 0 && c.raw.len > 0);
        cr_assert_eq(resp_scanner_offset(s), c.end_offset);
        for (int i = 0; i < c.argc; i++)
            cr_assert(c.argv[i].p >= c.raw.p && c.argv[i].p + c.argv[i].len <= c.raw.p + c.raw.len,
                      "argument %d lies outside the command's bytes", i);

        size_t pending = resp_scanner_pending(s);
        resp_scanner_unread(s);
        cr_assert_eq(resp_scanner_pending(s), pending + c.raw.len, "unread puts the bytes back");
        struct resp_cmd again;
        cr_assert_eq(resp_scanner_next(s, &again, &err), 1, "unread, then next: nothing");
        cr_assert(again.raw.len == c.raw.len && memcmp(again.raw.p, c.raw.p, c.raw.len) == 0 &&
                      again.argc == c.argc && again.end_offset == c.end_offset,
                  "unread, then next: another command");
        for (int i = 0; i < c.argc; i++)
            cr_assert(again.argv[i].len == c.argv[i].len &&
                      memcmp(again.argv[i].p, c.argv[i].p, c.argv[i].len) == 0);

        run_add(r, again.raw.p, again.raw.len, again.argc, again.argv, again.end_offset);
    }
}

/* Feeds in[0, len) as a first piece of `first` bytes, then pieces of `step`
 * bytes, taking the ready commands after each feed. Once the scanner has
 * failed, the rest is still fed and the error must not change (sticky). */
static void run_feeds(const char *in, size_t len, uint64_t start, size_t first, size_t step,
                      struct run *r)
{
    memset(r, 0, sizeof(*r));
    struct resp_scanner *s = resp_scanner_new(start);
    cr_assert(s != NULL);
    cr_assert_eq(resp_scanner_offset(s), start);
    size_t at = 0;
    for (bool is_first = true; at < len; is_first = false) {
        size_t n = is_first ? first : step; /* a first piece may be empty */
        if (n > len - at)
            n = len - at;
        cr_assert_eq(resp_scanner_feed(s, in + at, n), 0);
        at += n;
        if (!r->failed) {
            drain(s, r);
            continue;
        }
        struct resp_cmd c;
        struct rs_error again;
        cr_assert_eq(resp_scanner_next(s, &c, &again), RS_ERR, "the error is not sticky");
        cr_assert(again.offset == r->err.offset && strcmp(again.msg, r->err.msg) == 0,
                  "a second call reports another error: %s", again.msg);
    }
    if (len == 0)
        drain(s, r);
    r->offset_after = resp_scanner_offset(s);
    r->pending = resp_scanner_pending(s);
    resp_scanner_free(s);
}

/* ----------------------------------------------------- comparing runs */

/* The message's parts: what was wrong, and the quoted bytes. */
static void split_msg(const char *msg, char *what, size_t what_cap, char *quote, size_t quote_cap)
{
    const char *f = strstr(msg, ", found \"");
    cr_assert(f != NULL, "the message quotes nothing: %s", msg);
    snprintf(what, what_cap, "%.*s", (int)(f - msg), msg);
    const char *q = f + strlen(", found \"");
    size_t n = strlen(q);
    cr_assert(n > 0 && q[n - 1] == '"', "the quote is not closed: %s", msg);
    snprintf(quote, quote_cap, "%.*s", (int)(n - 1), q);
}

static bool cmd_equal(const struct seen_cmd *a, const struct seen_cmd *b, size_t i, char *why,
                      size_t cap)
{
    if (a->raw_len != b->raw_len || memcmp(a->raw, b->raw, a->raw_len) != 0) {
        snprintf(why, cap, "command %zu: raw bytes differ (%zu vs %zu bytes)", i, a->raw_len,
                 b->raw_len);
        return false;
    }
    if (a->argc != b->argc) {
        snprintf(why, cap, "command %zu: argc %d vs %d", i, a->argc, b->argc);
        return false;
    }
    for (int k = 0; k < a->argc; k++)
        if (a->arglen[k] != b->arglen[k] || memcmp(a->argv[k], b->argv[k], a->arglen[k]) != 0) {
            snprintf(why, cap, "command %zu: argument %d differs", i, k);
            return false;
        }
    if (a->end_offset != b->end_offset) {
        snprintf(why, cap, "command %zu: end offset %llu vs %llu", i,
                 (unsigned long long)a->end_offset, (unsigned long long)b->end_offset);
        return false;
    }
    return true;
}

/* True when b gave what a gave. An error's quote may be shorter in b (fewer
 * bytes had arrived when the bad one did) but must start the same. */
static bool runs_equal(const struct run *a, const struct run *b, char *why, size_t cap)
{
    for (size_t i = 0; i < a->n && i < b->n; i++)
        if (!cmd_equal(&a->cmds[i], &b->cmds[i], i, why, cap))
            return false;
    if (a->n != b->n) {
        snprintf(why, cap, "%zu commands vs %zu", a->n, b->n);
        return false;
    }
    if (a->failed != b->failed) {
        snprintf(why, cap, "failed: %d vs %d (%.200s)", a->failed, b->failed,
                 a->failed ? a->err.msg : b->err.msg);
        return false;
    }
    if (!a->failed) {
        if (a->offset_after != b->offset_after || a->pending != b->pending) {
            snprintf(why, cap, "final offset %llu vs %llu, pending %zu vs %zu",
                     (unsigned long long)a->offset_after, (unsigned long long)b->offset_after,
                     a->pending, b->pending);
            return false;
        }
        return true;
    }
    char wa[256], wb[256], qa[256], qb[256];
    split_msg(a->err.msg, wa, sizeof(wa), qa, sizeof(qa));
    split_msg(b->err.msg, wb, sizeof(wb), qb, sizeof(qb));
    if (a->err.code != b->err.code || a->err.offset != b->err.offset || strcmp(wa, wb) != 0 ||
        qb[0] == '\0' || strncmp(qa, qb, strlen(qb)) != 0) {
        snprintf(why, cap, "error at %llu \"%.200s\" vs at %llu \"%.200s\"",
                 (unsigned long long)a->err.offset, a->err.msg, (unsigned long long)b->err.offset,
                 b->err.msg);
        return false;
    }
    return true;
}

/* Feeds in whole, one byte at a time, and split in two at every offset that
 * `every` allows (1: each; k > 1: each in the first and last 512 bytes, and
 * every k-th in between, for inputs too big to split everywhere). Every way
 * must give what the whole feed gave, which is left in *whole. */
static void run_every_way(const char *in, size_t len, uint64_t start, size_t every,
                          struct run *whole)
{
    char why[512];
    run_feeds(in, len, start, len, len, whole);

    struct run r;
    run_feeds(in, len, start, 1, 1, &r);
    cr_assert(runs_equal(whole, &r, why, sizeof(why)), "one byte at a time: %s", why);
    run_free(&r);

    for (size_t cut = 0; cut <= len; cut++) {
        bool edge = cut < 512 || len - cut < 512;
        if (every > 1 && !edge && cut % every != 0)
            continue;
        run_feeds(in, len, start, cut, len, &r);
        cr_assert(runs_equal(whole, &r, why, sizeof(why)), "split at %zu of %zu: %s", cut, len,
                  why);
        run_free(&r);
    }
}

/* ---------------------------------------------- building test streams */

/* A stream and what the scanner must make of it. */
struct stream {
    char *buf;
    size_t len, cap;
    uint64_t start;
    struct run want;
};

static void stream_init(struct stream *st, uint64_t start)
{
    memset(st, 0, sizeof(*st));
    st->start = start;
}

static void stream_free(struct stream *st)
{
    free(st->buf);
    run_free(&st->want);
}

static void stream_put(struct stream *st, const void *p, size_t n)
{
    if (st->len + n > st->cap) {
        while (st->len + n > st->cap)
            st->cap = st->cap ? 2 * st->cap : 4096;
        st->buf = realloc(st->buf, st->cap);
        cr_assert(st->buf != NULL);
    }
    memcpy(st->buf + st->len, p, n);
    st->len += n;
}

static void stream_printf(struct stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void stream_printf(struct stream *st, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof(tmp));
    stream_put(st, tmp, (size_t)n);
}

/* Appends a multibulk command (lens NULL: the arguments are C strings) and
 * expects it back with exactly these bytes. */
static void stream_cmd(struct stream *st, int argc, const char *const *argv, const size_t *lens)
{
    size_t at = st->len;
    struct rs_slice *a = calloc((size_t)argc, sizeof(*a));
    cr_assert(a != NULL);
    stream_printf(st, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        a[i] = (struct rs_slice){argv[i], lens ? lens[i] : strlen(argv[i])};
        stream_printf(st, "$%zu\r\n", a[i].len);
        stream_put(st, a[i].p, a[i].len);
        stream_put(st, "\r\n", 2);
    }
    run_add(&st->want, st->buf + at, st->len - at, argc, a, st->start + st->len);
    free(a);
}

/* A multibulk command of C strings: CMD(st, "SET", "k", "v"). */
#define CMD(st, ...)                                                                               \
    stream_cmd((st), sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *),                 \
               (const char *[]){__VA_ARGS__}, NULL)

/* Appends an inline line and expects it back with these words. */
static void stream_inline(struct stream *st, const char *line, int argc, const char *const *words)
{
    size_t at = st->len;
    stream_put(st, line, strlen(line));
    struct rs_slice a[16];
    cr_assert(argc <= 16);
    for (int i = 0; i < argc; i++)
        a[i] = (struct rs_slice){words[i], strlen(words[i])};
    run_add(&st->want, st->buf + at, st->len - at, argc, a, st->start + st->len);
}

#define INLINE(st, line, ...)                                                                      \
    stream_inline((st), (line), sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *),      \
                  (const char *[]){__VA_ARGS__})

/* Appends bytes the scanner must skip (newlines, blank lines). */
static void stream_skipped(struct stream *st, const char *bytes)
{
    stream_put(st, bytes, strlen(bytes));
}

/* Checks st every way against what it expects; every: see run_every_way. */
static void check_stream(struct stream *st, size_t every)
{
    st->want.offset_after = st->start + st->len;
    struct run whole;
    run_every_way(st->buf, st->len, st->start, every, &whole);
    char why[512];
    cr_assert(runs_equal(&st->want, &whole, why, sizeof(why)), "fed whole: %s", why);
    run_free(&whole);
}

/* -------------------------------------------------------- commands */

Test(resp_scanner, a_set_is_returned_with_its_bytes_arguments_and_end_offset)
{
    struct stream st;
    stream_init(&st, START);
    CMD(&st, "SET", "key", "value");
    cr_assert_eq(st.len, 33);
    cr_assert_eq(st.want.cmds[0].end_offset, START + 33);
    check_stream(&st, 1);
    stream_free(&st);
}

Test(resp_scanner, commands_of_a_replication_stream_come_one_by_one_in_order)
{
    struct stream st;
    stream_init(&st, START);
    CMD(&st, "SELECT", "3");
    CMD(&st, "SET", "a", "1");
    CMD(&st, "MULTI");
    CMD(&st, "INCR", "a");
    CMD(&st, "LPUSH", "l", "x", "y");
    CMD(&st, "EXEC");
    CMD(&st, "PING");
    CMD(&st, "XADD", "s", "1-1", "f", "v");
    CMD(&st, "EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v");
    CMD(&st, "REPLCONF", "GETACK", "*");
    CMD(&st, "PEXPIREAT", "a", "4102444800000");
    check_stream(&st, 1);
    cr_assert_eq(st.want.n, 11);
    stream_free(&st);
}

Test(resp_scanner, mset_with_many_arguments_is_one_command)
{
    struct stream st;
    stream_init(&st, START);
    enum { PAIRS = 300 };
    const char *argv[1 + 2 * PAIRS];
    char names[2 * PAIRS][24];
    argv[0] = "MSET";
    for (int i = 0; i < 2 * PAIRS; i++) {
        snprintf(names[i], sizeof(names[i]), "%s%d", i % 2 ? "value" : "key", i / 2);
        argv[1 + i] = names[i];
    }
    stream_cmd(&st, 1 + 2 * PAIRS, argv, NULL);
    CMD(&st, "DEL", "key0");
    check_stream(&st, 1);
    cr_assert_eq(st.want.cmds[0].argc, 1 + 2 * PAIRS);
    stream_free(&st);
}

Test(resp_scanner, empty_arguments_are_arguments)
{
    struct stream st;
    stream_init(&st, START);
    CMD(&st, "SET", "", "");
    CMD(&st, "");
    CMD(&st, "HSET", "h", "", "v", "f", "");
    check_stream(&st, 1);
    stream_free(&st);
}

Test(resp_scanner, binary_arguments_may_hold_crlf_and_resp)
{
    static const char key[] = "a\r\nb";
    static const char val[] = "\r\n*1\r\n$4\r\nPING\r\n\n";
    static const char bin[] = {'\0', '\xff', '\r', '\0', '\n', '$', '-', '1'};
    struct stream st;
    stream_init(&st, START);
    const char *argv[] = {"SET", key, val};
    const size_t lens[] = {3, sizeof(key) - 1, sizeof(val) - 1};
    stream_cmd(&st, 3, argv, lens);
    const char *argv2[] = {"RPUSH", bin, bin, "\r"};
    const size_t lens2[] = {5, sizeof(bin), 1, 1};
    stream_cmd(&st, 4, argv2, lens2);
    check_stream(&st, 1);
    stream_free(&st);
}

Test(resp_scanner, a_1_mib_argument_is_one_slice)
{
    size_t n = 1024 * 1024;
    char *big = malloc(n);
    cr_assert(big != NULL);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 131 + (i >> 7)); /* every byte value, CRLFs included */
    struct stream st;
    stream_init(&st, START);
    CMD(&st, "SET", "before", "x");
    const char *argv[] = {"SET", "big", big};
    const size_t lens[] = {3, 3, n};
    stream_cmd(&st, 3, argv, lens);
    CMD(&st, "SET", "after", "y");
    /* Split at every offset of 1 MiB is 10^6 runs of 1 MiB: the head and tail
     * of the stream at every offset, the middle at every 4099th. */
    check_stream(&st, 4099);
    stream_free(&st);
    free(big);
}

Test(resp_scanner, a_big_command_then_many_small_ones_reuse_the_buffer)
{
    size_t n = 1536 * 1024; /* past 4x the initial buffer: it grows, then shrinks back */
    char *big = malloc(n);
    cr_assert(big != NULL);
    memset(big, 'b', n);
    struct stream st;
    stream_init(&st, START);
    const char *argv[] = {"SET", "big", big};
    const size_t lens[] = {3, 3, n};
    stream_cmd(&st, 3, argv, lens);
    for (int i = 0; st.len < 2 * n + 4096; i++) {
        char k[32];
        snprintf(k, sizeof(k), "k%d", i);
        CMD(&st, "SET", k, "value-value-value-value");
    }
    st.want.offset_after = st.start + st.len;
    char why[512];
    const size_t steps[] = {1, 7, 4096, 65536, 300000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct run r;
        run_feeds(st.buf, st.len, st.start, steps[i], steps[i], &r);
        cr_assert(runs_equal(&st.want, &r, why, sizeof(why)), "pieces of %zu: %s", steps[i], why);
        run_free(&r);
    }
    stream_free(&st);
    free(big);
}

/* A command of many arguments arriving in pieces is parsed where the last
 * piece stopped (the scanner keeps its place); its slices must survive the
 * buffer growing and sliding under them: a small command first (so the
 * buffer slides), then 200,000 arguments (2.6 MB: it grows several times),
 * fed in pieces of 1, 13 and 4096 bytes and of varying sizes. */
Test(resp_scanner, a_command_of_many_arguments_in_pieces_keeps_its_place_and_slices)
{
    enum { NARGS = 200000 };
    struct stream st;
    stream_init(&st, START);
    CMD(&st, "SET", "first", "1");
    static const char *argv[NARGS + 2];
    static size_t lens[NARGS + 2];
    static char words[NARGS][12];
    argv[0] = "SADD";
    lens[0] = 4;
    argv[1] = "members";
    lens[1] = 7;
    for (int i = 0; i < NARGS; i++) {
        lens[i + 2] = (size_t)snprintf(words[i], sizeof(words[i]), "m%d", i * 7);
        argv[i + 2] = words[i];
    }
    stream_cmd(&st, NARGS + 2, argv, lens);
    CMD(&st, "SET", "last", "2");
    st.want.offset_after = st.start + st.len;
    char why[512];
    const size_t steps[] = {13, 4096, 65536};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct run r;
        run_feeds(st.buf, st.len, st.start, steps[i], steps[i], &r);
        cr_assert(runs_equal(&st.want, &r, why, sizeof(why)), "pieces of %zu: %s", steps[i], why);
        run_free(&r);
    }
    struct run r; /* a first piece of 5, then 1000-byte pieces */
    run_feeds(st.buf, st.len, st.start, 5, 1000, &r);
    cr_assert(runs_equal(&st.want, &r, why, sizeof(why)), "pieces of 5 then 1000: %s", why);
    run_free(&r);
    stream_free(&st);
}

/* ------------------------------------------------ inline and newlines */

Test(resp_scanner, inline_commands_are_split_into_words)
{
    struct stream st;
    stream_init(&st, START);
    INLINE(&st, "PING\r\n", "PING");
    INLINE(&st, "SET a b\n", "SET", "a", "b");
    INLINE(&st, "  SET   k  v \r\n", "SET", "k", "v");
    CMD(&st, "SET", "c", "d");
    INLINE(&st, "DEL c\n", "DEL", "c");
    check_stream(&st, 1);
    stream_free(&st);
}

Test(resp_scanner, an_inline_command_may_have_many_words)
{
    struct stream st;
    stream_init(&st, START);
    size_t at = st.len;
    stream_put(&st, "DEL", 3);
    struct rs_slice a[201];
    a[0] = (struct rs_slice){"DEL", 3};
    static char words[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(words[i], sizeof(words[i]), "k%d", i);
        stream_put(&st, " ", 1);
        stream_put(&st, words[i], strlen(words[i]));
        a[1 + i] = (struct rs_slice){words[i], strlen(words[i])};
    }
    stream_put(&st, "\n", 1);
    run_add(&st.want, st.buf + at, st.len - at, 201, a, st.start + st.len);
    check_stream(&st, 1);
    stream_free(&st);
}

Test(resp_scanner, bare_newlines_are_skipped_but_counted_in_offsets)
{
    struct stream st;
    stream_init(&st, START);
    stream_skipped(&st, "\n");
    CMD(&st, "SET", "a", "b");
    stream_skipped(&st, "\n\n\r\n");
    CMD(&st, "PING");
    stream_skipped(&st, "  \n \r\n"); /* blank inline lines */
    CMD(&st, "SET", "c", "d");
    stream_skipped(&st, "\n\n");
    check_stream(&st, 1);
    cr_assert_eq(st.want.cmds[0].end_offset, START + 1 + 27);
    cr_assert_eq(st.want.cmds[1].end_offset, START + 1 + 27 + 4 + 14);
    stream_free(&st);
}

Test(resp_scanner, a_stream_of_only_newlines_yields_nothing_but_moves_the_offset)
{
    struct stream st;
    stream_init(&st, START);
    stream_skipped(&st, "\n\n\n\r\n   \n");
    check_stream(&st, 1);
    stream_free(&st);
}

Test(resp_scanner, many_blank_lines_do_not_exhaust_the_stack)
{
    struct stream st;
    stream_init(&st, START);
    for (int i = 0; i < 1000000; i++)
        stream_put(&st, " \n", 2);
    CMD(&st, "SET", "a", "b");
    st.want.offset_after = st.start + st.len;
    struct run r;
    char why[512];
    run_feeds(st.buf, st.len, st.start, st.len, st.len, &r);
    cr_assert(runs_equal(&st.want, &r, why, sizeof(why)), "%s", why);
    run_free(&r);
    stream_free(&st);
}

/* ------------------------------------------------------------- unread */

Test(resp_scanner, unread_then_next_returns_the_same_command)
{
    static const char in[] = "\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n";
    struct resp_scanner *s = resp_scanner_new(START);
    cr_assert_eq(resp_scanner_feed(s, in, sizeof(in) - 1), 0);
    struct resp_cmd c;
    struct rs_error err;
    cr_assert_eq(resp_scanner_next(s, &c, &err), 1);
    cr_assert_eq(c.end_offset, START + 28);
    cr_assert(c.raw.len == 27 && memcmp(c.raw.p, in + 1, 27) == 0);
    for (int round = 0; round < 3; round++) {
        resp_scanner_unread(s);
        cr_assert_eq(resp_scanner_offset(s), START + 1, "the newline stays consumed");
        struct resp_cmd again;
        cr_assert_eq(resp_scanner_next(s, &again, &err), 1);
        cr_assert(again.raw.p == c.raw.p && again.raw.len == c.raw.len && again.argc == 3 &&
                  again.end_offset == START + 28);
        cr_assert(again.argv[1].len == 1 && again.argv[1].p[0] == 'a');
    }
    cr_assert_eq(resp_scanner_next(s, &c, &err), 1);
    cr_assert(c.argc == 1 && c.argv[0].len == 4 && memcmp(c.argv[0].p, "PING", 4) == 0);
    resp_scanner_unread(s);
    cr_assert_eq(resp_scanner_next(s, &c, &err), 1);
    cr_assert_eq(c.end_offset, START + sizeof(in) - 1);
    cr_assert_eq(resp_scanner_next(s, &c, &err), 0);
    cr_assert_eq(resp_scanner_pending(s), 0);
    resp_scanner_free(s);
}

/* ------------------------------------------------------------- errors */

struct bad_input {
    const char *in;
    size_t len;         /* 0: strlen(in) */
    size_t at;          /* the bad byte, from the stream's start */
    const char *what;   /* in the message */
    const char *quote;  /* the quote begins with this when fed whole */
    size_t good_before; /* commands returned before the error */
};

/* every: as for run_every_way. */
static void check_bad(const struct bad_input *b, size_t every)
{
    size_t len = b->len ? b->len : strlen(b->in);
    struct run whole;
    run_every_way(b->in, len, START, every, &whole);
    char what[256], quote[256];
    cr_assert(whole.failed, "accepted: %s", b->in);
    split_msg(whole.err.msg, what, sizeof(what), quote, sizeof(quote));
    cr_assert_eq(whole.err.code, RS_E_FORMAT);
    cr_assert_eq(whole.err.offset, START + b->at, "%s: error at %llu, not %zu: %s", b->what,
                 (unsigned long long)whole.err.offset, START + b->at, whole.err.msg);
    cr_assert(strstr(what, b->what) != NULL, "%s: says \"%s\"", b->what, whole.err.msg);
    cr_assert(strncmp(quote, b->quote, strlen(b->quote)) == 0, "%s: quotes \"%s\", not \"%s...\"",
              b->what, quote, b->quote);
    cr_assert_eq(whole.n, b->good_before, "%s: %zu commands before the error", b->what, whole.n);
    run_free(&whole);
}

Test(resp_scanner, bad_input_fails_at_the_bad_byte_quoting_it_however_it_is_fed)
{
    static const struct bad_input cases[] = {
        {"*x\r\n", 0, 1, "a bad multibulk count", "x\\x0d\\x0a", 0},
        {"*\r\n", 0, 1, "a bad multibulk count", "\\x0d", 0},
        {"*2\rX", 0, 3, "a bad multibulk count", "X", 0},
        {"*01\r\n$1\r\na\r\n", 0, 1, "a bad multibulk count", "01", 0},
        {"*-1\r\n", 0, 1, "a multibulk count out of range", "-1", 0},
        {"*0\r\n", 0, 1, "a multibulk count out of range", "0\\x0d", 0},
        {"*1048577\r\n", 0, 1, "a multibulk count out of range", "1048577", 0},
        {"*2\r\n$3\r\nfoo\r\n:1\r\n", 0, 13, "expected '$' before an argument", ":1\\x0d", 0},
        {"*1\r\n*1\r\n$1\r\na\r\n", 0, 4, "expected '$' before an argument", "*1", 0},
        {"*1\r\n+OK\r\n", 0, 4, "expected '$' before an argument", "+OK", 0},
        {"*1\r\n$3\r\nfooX\r\n", 0, 11, "an argument not followed by CRLF", "X", 0},
        {"*1\r\n$3\r\nfoo\rX", 0, 12, "an argument not followed by CRLF", "X", 0},
        {"*1\r\n$3\r\nfoo\n\r", 0, 11, "an argument not followed by CRLF", "\\x0a", 0},
        {"*1\r\n$0\r\nX\r\n", 0, 8, "an argument not followed by CRLF", "X", 0},
        {"*1\r\n$-1\r\n", 0, 5, "a bulk length out of range", "-1", 0},
        {"*1\r\n$-7\r\nabc\r\n", 0, 5, "a bulk length out of range", "-7", 0},
        {"*1\r\n$536870913\r\n", 0, 5, "a bulk length out of range", "536870913", 0},
        {"*1\r\n$99999999999999999999\r\n", 0, 5, "a bad bulk length", "9999", 0},
        {"*1\r\n$x\r\n", 0, 5, "a bad bulk length", "x", 0},
        {"*1\r\n$3 \r\nfoo\r\n", 0, 6, "a bad bulk length", " ", 0},
        {"*1\r\n$+3\r\nfoo\r\n", 0, 5, "a bad bulk length", "+3", 0},
        {"*1\r\n$03\r\nfoo\r\n", 0, 5, "a bad bulk length", "03", 0},
        {"*1\r\n$-0\r\n\r\n", 0, 5, "a bad bulk length", "-0", 0},
        {"*1\r\n$-\r\n", 0, 6, "a bad bulk length", "\\x0d", 0},
        {"*1\r\n$3\rXfoo\r\n", 0, 7, "a bad bulk length", "Xfoo", 0},
        {"*1\r\n$\0\r\n", 8, 5, "a bad bulk length", "\\x00", 0},
        /* commands before the bad one are still returned */
        {"*1\r\n$4\r\nPING\r\nSET a b\n\n*x\r\n", 0, 24, "a bad multibulk count", "x", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i], 1);
}

Test(resp_scanner, an_inline_line_past_64_kib_fails_whether_or_not_its_newline_came)
{
    size_t n = 64 * 1024 + 1;
    char *in = malloc(n + 1);
    cr_assert(in != NULL);
    memset(in, 'a', n);
    in[n] = '\n';
    struct bad_input b = {in, n + 1, 0, "an inline command longer than 64 KiB", "aaaa", 0};
    check_bad(&b, 509);
    b.len = n; /* the newline never comes */
    check_bad(&b, 509);
    /* 64 KiB exactly is still a command */
    in[n - 1] = '\n';
    struct run r;
    run_feeds(in, n, START, n, n, &r);
    cr_assert(!r.failed && r.n == 1 && r.cmds[0].argv[0][0] == 'a' && r.cmds[0].arglen[0] == n - 1);
    run_free(&r);
    free(in);
}

Test(resp_scanner, limits_themselves_are_accepted)
{
    /* The largest count and bulk length: the scanner waits for the rest. */
    static const char *const heads[] = {"*1048576\r\n", "*1\r\n$536870912\r\n"};
    for (size_t i = 0; i < 2; i++) {
        struct resp_scanner *s = resp_scanner_new(START);
        cr_assert_eq(resp_scanner_feed(s, heads[i], strlen(heads[i])), 0);
        struct resp_cmd c;
        struct rs_error err;
        cr_assert_eq(resp_scanner_next(s, &c, &err), 0, "%s", heads[i]);
        cr_assert_eq(resp_scanner_pending(s), strlen(heads[i]));
        cr_assert_eq(resp_scanner_offset(s), START);
        resp_scanner_free(s);
    }
}

Test(resp_scanner, an_error_is_sticky)
{
    static const char bad[] = "*1\r\n$3\r\nfooXY";
    static const char good[] = "*1\r\n$4\r\nPING\r\n";
    struct resp_scanner *s = resp_scanner_new(START);
    cr_assert_eq(resp_scanner_feed(s, bad, sizeof(bad) - 1), 0);
    struct resp_cmd c;
    struct rs_error err, again;
    cr_assert_eq(resp_scanner_next(s, &c, &err), RS_ERR);
    cr_assert_eq(err.offset, START + 11);
    cr_assert(strstr(err.msg, "found \"XY\"") != NULL, "%s", err.msg);
    cr_assert_eq(resp_scanner_feed(s, good, sizeof(good) - 1), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(resp_scanner_next(s, &c, &again), RS_ERR);
        cr_assert(again.offset == err.offset && strcmp(again.msg, err.msg) == 0);
    }
    cr_assert_eq(resp_scanner_next(s, &c, NULL), RS_ERR, "err may be NULL");
    resp_scanner_free(s);
}

/* ------------------------------------------------ the test can fail */

Test(resp_scanner, the_comparison_notices_a_changed_byte_offset_or_count)
{
    struct stream st;
    stream_init(&st, START);
    CMD(&st, "SET", "a", "b");
    CMD(&st, "SET", "c", "d");
    st.want.offset_after = st.start + st.len;
    struct run r;
    char why[512];
    run_feeds(st.buf, st.len, st.start, 1, 1, &r);
    cr_assert(runs_equal(&st.want, &r, why, sizeof(why)), "%s", why);

    r.cmds[1].argv[2][0] = 'X'; /* an argument */
    cr_assert(!runs_equal(&st.want, &r, why, sizeof(why)));
    cr_assert(strstr(why, "argument 2") != NULL, "%s", why);
    r.cmds[1].argv[2][0] = 'd';

    r.cmds[1].end_offset++; /* an offset */
    cr_assert(!runs_equal(&st.want, &r, why, sizeof(why)));
    cr_assert(strstr(why, "end offset") != NULL, "%s", why);
    r.cmds[1].end_offset--;

    r.cmds[0].raw[0] = '+'; /* the raw bytes */
    cr_assert(!runs_equal(&st.want, &r, why, sizeof(why)));
    r.cmds[0].raw[0] = '*';

    r.n--; /* a lost command */
    cr_assert(!runs_equal(&st.want, &r, why, sizeof(why)));
    r.n++;
    cr_assert(runs_equal(&st.want, &r, why, sizeof(why)), "%s", why);

    /* And a stream whose expectation is wrong fails check_stream's comparison. */
    struct run other;
    run_feeds("*1\r\n$4\r\nPONG\r\n", 14, START, 14, 14, &other);
    cr_assert(!runs_equal(&st.want, &other, why, sizeof(why)));
    run_free(&other);
    run_free(&r);
    stream_free(&st);
}
