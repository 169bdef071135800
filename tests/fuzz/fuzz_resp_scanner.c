/* fuzz_resp_scanner.c - the stream scanner against hiredis's reader.
 *
 * The input is a replication stream. It is fed to resp_scanner in pieces
 * whose sizes come from the input (a generator seeded by its bytes), and the
 * same pieces to hiredis's redisReader, the oracle. While the stream is a run
 * of multibulk commands, the two must agree command by command: each reply
 * hiredis completes is an array of bulk strings that the scanner returns at
 * the same moment, with the same arguments, exactly the bytes hiredis
 * consumed for it, and an end offset that is the start offset plus every
 * byte so far. Where they part:
 *
 *  - a byte other than '*' where a command starts (inline commands, "\n"
 *    keepalives: not replies to hiredis): hiredis is left behind;
 *  - hiredis completes something other than an array of one or more bulk
 *    strings (nil, integers, nesting, "*0"), or fails: the scanner must
 *    have failed too (a replication stream has none of these);
 *  - the scanner fails where hiredis returns an array of strings: allowed
 *    only if the bytes are not that array's canonical encoding (hiredis
 *    0.14 takes "$03", does not check the CRLF after a bulk, wraps long
 *    lengths); the scanner accepts nothing but canonical encodings.
 *
 * Whatever hiredis does, every command the scanner returns is checked on its
 * own (its bytes are the stream's bytes at its offsets, only newlines and
 * blanks between commands, a multibulk's bytes are the canonical encoding of
 * its arguments, unread gives it back), and an error is sticky and lies
 * within the bytes fed. The same input fed whole, and one byte at a time,
 * must give the same commands and the same error offset.
 */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp_scanner.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_resp_scanner: check failed: %s (%s:%d)\n", #c, __FILE__,         \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

/* True when bytes[0, len) is exactly "*<argc>\r\n" then "$<len>\r\n<arg>\r\n"
 * for each argument: how Redis writes a command. */
static bool is_canonical(const char *bytes, size_t len, int argc, const struct rs_slice *argv)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "*%d\r\n", argc);
    size_t at = 0;
    if ((size_t)n > len || memcmp(bytes, head, (size_t)n) != 0)
        return false;
    at = (size_t)n;
    for (int i = 0; i < argc; i++) {
        n = snprintf(head, sizeof(head), "$%zu\r\n", argv[i].len);
        if (len - at < (size_t)n + argv[i].len + 2 || memcmp(bytes + at, head, (size_t)n) != 0)
            return false;
        at += (size_t)n;
        if (memcmp(bytes + at, argv[i].p, argv[i].len) != 0 ||
            memcmp(bytes + at + argv[i].len, "\r\n", 2) != 0)
            return false;
        at += argv[i].len + 2;
    }
    return at == len;
}

/* What one way of feeding gave, to compare the ways with each other. */
struct outcome {
    uint64_t *cmds; /* a digest of each command: offset, length and argument layout */
    size_t n, cap;
    bool failed;
    uint64_t err_offset;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static void outcome_add(struct outcome *o, const struct resp_cmd *c)
{
    uint64_t h = mix(mix(c->end_offset, c->raw.len), (uint64_t)c->argc);
    for (int i = 0; i < c->argc; i++)
        h = mix(mix(h, (uint64_t)(c->argv[i].p - c->raw.p)), c->argv[i].len);
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->cmds = realloc(o->cmds, o->cap * sizeof(*o->cmds));
        CHECK(o->cmds != NULL);
    }
    o->cmds[o->n++] = h;
}

/* One scanner over one input, with its own checks. */
struct scan {
    const uint8_t *data;
    uint64_t start;
    size_t fed;        /* bytes fed so far */
    uint64_t prev_end; /* end offset of the last command (start at first) */
    struct resp_scanner *sc;
    struct outcome out;
    uint64_t rng;
};

/* The checks every command passes, whatever hiredis says. */
static void check_cmd(struct scan *s, const struct resp_cmd *c)
{
    CHECK(c->argc > 0 && c->raw.len > 0);
    CHECK(c->end_offset > s->prev_end && c->end_offset <= s->start + s->fed);
    CHECK(c->end_offset - s->prev_end >= c->raw.len);
    CHECK(resp_scanner_offset(s->sc) == c->end_offset);
    size_t end = (size_t)(c->end_offset - s->start), from = end - c->raw.len;
    CHECK(memcmp(c->raw.p, s->data + from, c->raw.len) == 0);
    for (size_t i = (size_t)(s->prev_end - s->start); i < from; i++)
        CHECK(s->data[i] == '\n' || s->data[i] == '\r' || s->data[i] == ' ');
    for (int i = 0; i < c->argc; i++)
        CHECK(c->argv[i].p >= c->raw.p && c->argv[i].p + c->argv[i].len <= c->raw.p + c->raw.len);
    if (c->raw.p[0] == '*') {
        CHECK(is_canonical(c->raw.p, c->raw.len, c->argc, c->argv));
    } else {
        CHECK(c->raw.p[c->raw.len - 1] == '\n');
        CHECK(memchr(c->raw.p, '\n', c->raw.len - 1) == NULL);
        CHECK(c->raw.len <= 64 * 1024 + 1);
        for (int i = 0; i < c->argc; i++) {
            CHECK(c->argv[i].len > 0);
            CHECK(memchr(c->argv[i].p, ' ', c->argv[i].len) == NULL);
            CHECK(memchr(c->argv[i].p, '\r', c->argv[i].len) == NULL);
        }
    }
}

/* The next command: resp_scanner_next, plus the own checks, and now and then
 * an unread that must give the same command back. */
static int scan_next(struct scan *s, struct resp_cmd *c)
{
    struct rs_error err;
    int rc = resp_scanner_next(s->sc, c, &err);
    if (rc == RS_ERR) {
        if (!s->out.failed) {
            CHECK(err.code == RS_E_FORMAT);
            CHECK(err.offset >= s->prev_end && err.offset < s->start + s->fed);
            CHECK(strstr(err.msg, "found \"") != NULL);
            s->out.failed = true;
            s->out.err_offset = err.offset;
        }
        CHECK(err.offset == s->out.err_offset); /* sticky */
        return rc;
    }
    CHECK(!s->out.failed);
    if (rc == 0) {
        CHECK(resp_scanner_pending(s->sc) == s->fed - (resp_scanner_offset(s->sc) - s->start));
        return rc;
    }
    CHECK(rc == 1);
    check_cmd(s, c);
    if (next_rand(&s->rng) % 4 == 0) {
        struct resp_cmd again;
        const char *p = c->raw.p;
        size_t len = c->raw.len;
        uint64_t end = c->end_offset;
        resp_scanner_unread(s->sc);
        CHECK(resp_scanner_next(s->sc, &again, &err) == 1);
        CHECK(again.raw.p == p && again.raw.len == len && again.end_offset == end);
        *c = again;
    }
    outcome_add(&s->out, c);
    s->prev_end = c->end_offset;
    return rc;
}

static void scan_init(struct scan *s, const uint8_t *data, uint64_t start, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->data = data;
    s->start = start;
    s->prev_end = start;
    s->rng = seed | 1;
    s->sc = resp_scanner_new(start);
    CHECK(s->sc != NULL);
}

static void scan_feed(struct scan *s, size_t n)
{
    CHECK(resp_scanner_feed(s->sc, s->data + s->fed, n) == 0);
    s->fed += n;
}

static void scan_deinit(struct scan *s)
{
    resp_scanner_free(s->sc);
    free(s->out.cmds);
}

/* ------------------------------------------------------- with hiredis */

enum oracle_state {
    ORACLE_COMPARING,    /* hiredis and the scanner stand at the same command boundary */
    ORACLE_CHECK_REJECT, /* the scanner failed inside hiredis's next reply: see that reply */
    ORACLE_DONE,         /* the stream left what hiredis can judge */
};

struct oracle {
    redisReader *rd;
    size_t fed;
    enum oracle_state state;
    size_t boundary; /* stream position where hiredis's next reply begins */
    size_t limit;    /* hiredis is not fed this byte or any after it */
};

/* Bytes hiredis has taken from its buffer. Inside a reply it takes headers
 * as it goes, so this is a reply's end only right after it completes. */
static size_t oracle_consumed(const struct oracle *o)
{
    return o->fed - (o->rd->len - o->rd->pos);
}

/* The reply's elements as slices when it is an array of one or more bulk
 * strings; else NULL. The caller frees them. */
static struct rs_slice *reply_strings(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return NULL;
    struct rs_slice *a = malloc(r->elements * sizeof(*a));
    CHECK(a != NULL);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) {
            free(a);
            return NULL;
        }
        a[i] = (struct rs_slice){e->str, e->len};
    }
    return a;
}

/* After a reject: hiredis's reply from the boundary must not have been a
 * canonical array of strings. */
static void oracle_check_reject(struct oracle *o, const uint8_t *data)
{
    void *reply = NULL;
    if (redisReaderGetReply(o->rd, &reply) != REDIS_OK) {
        o->state = ORACLE_DONE;
        return;
    }
    if (reply == NULL)
        return; /* not complete yet */
    size_t span = oracle_consumed(o) - o->boundary;
    const redisReply *r = reply;
    struct rs_slice *a = reply_strings(r);
    if (a != NULL) {
        CHECK(!is_canonical((const char *)data + o->boundary, span, (int)r->elements, a));
        free(a);
    }
    freeReplyObject(reply);
    o->state = ORACLE_DONE;
}

/* Takes what both have ready after a feed, comparing them. */
static void drain_both(struct scan *s, struct oracle *o)
{
    struct resp_cmd c;
    for (;;) {
        if (o->state == ORACLE_CHECK_REJECT)
            oracle_check_reject(o, s->data);
        if (o->state != ORACLE_COMPARING) {
            while (scan_next(s, &c) == 1)
                continue;
            return;
        }
        CHECK(o->boundary == (size_t)(s->prev_end - s->start));
        if (o->boundary < s->fed && s->data[o->boundary] != '*') {
            o->state = ORACLE_DONE; /* inline, a keepalive, or junk: not hiredis's */
            continue;
        }
        void *reply = NULL;
        int hr = redisReaderGetReply(o->rd, &reply);
        int sr = scan_next(s, &c);
        if (hr != REDIS_OK) { /* a protocol error: the scanner must see one too */
            CHECK(sr == RS_ERR);
            o->state = ORACLE_DONE;
            continue;
        }
        if (reply == NULL) { /* hiredis needs more: so must the scanner, or it failed */
            CHECK(sr != 1);
            if (sr == RS_ERR)
                o->state = ORACLE_CHECK_REJECT;
            return;
        }
        const redisReply *r = reply;
        size_t span = oracle_consumed(o) - o->boundary;
        struct rs_slice *a = reply_strings(r);
        if (a == NULL) { /* not a command: the scanner must have refused it */
            CHECK(sr == RS_ERR);
            o->state = ORACLE_DONE;
        } else if (sr == RS_ERR) {
            CHECK(!is_canonical((const char *)s->data + o->boundary, span, (int)r->elements, a));
            o->state = ORACLE_DONE;
        } else {
            CHECK(sr == 1);
            CHECK((size_t)c.argc == r->elements);
            for (int i = 0; i < c.argc; i++)
                CHECK(c.argv[i].len == a[i].len && memcmp(c.argv[i].p, a[i].p, a[i].len) == 0);
            CHECK(c.raw.len == span);
            CHECK(c.end_offset == s->start + o->boundary + span);
            o->boundary += span;
        }
        free(a);
        freeReplyObject(reply);
    }
}

/* Where hiredis must stop: the first "*<count>" that is negative (but -1) or
 * larger than the input. hiredis 0.14 allocates a count's element array as
 * soon as it reads it, so "*1536870912" alone would exhaust memory, and such
 * an array cannot complete within the input anyway. Conservative: the bytes
 * may be inside an argument, which only ends the comparison early. */
static size_t oracle_limit(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*')
            continue;
        size_t j = i + 1;
        bool neg = j < size && data[j] == '-';
        j += neg;
        uint64_t v = 0;
        size_t digits = 0;
        for (; j < size && data[j] >= '0' && data[j] <= '9' && digits <= 18; j++, digits++)
            v = v * 10 + (uint64_t)(data[j] - '0');
        if (digits > 18 || (neg && v > 1) || (!neg && v > size))
            return i;
    }
    return SIZE_MAX;
}

static void feed_both(struct scan *s, struct oracle *o, size_t n)
{
    const uint8_t *p = s->data + s->fed;
    scan_feed(s, n);
    if (o->state != ORACLE_DONE && s->fed > o->limit)
        o->state = ORACLE_DONE;
    if (o->state != ORACLE_DONE) {
        CHECK(redisReaderFeed(o->rd, (const char *)p, n) == REDIS_OK);
        o->fed += n;
    }
    drain_both(s, o);
}

/* ---------------------------------------------------------- the target */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static size_t piece_size(uint64_t *rng)
{
    uint64_t r = next_rand(rng);
    switch (r % 4) {
    case 0:
        return 1;
    case 1:
        return 1 + (r >> 8) % 8;
    case 2:
        return 1 + (r >> 8) % 256;
    default:
        return 1 + (r >> 8) % 4096;
    }
}

static void same_outcome(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->n == b->n);
    CHECK(a->n == 0 || memcmp(a->cmds, b->cmds, a->n * sizeof(*a->cmds)) == 0);
    CHECK(a->failed == b->failed);
    CHECK(!a->failed || a->err_offset == b->err_offset);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = fnv1a(data, size);
    uint64_t start = seed >> 24; /* any offset: a stream rarely starts at 0 */

    /* In pieces, against hiredis. */
    struct scan pieces;
    scan_init(&pieces, data, start, seed);
    struct oracle o = {.rd = redisReaderCreate(), .limit = oracle_limit(data, size)};
    CHECK(o.rd != NULL);
    uint64_t rng = seed ^ 0x5bd1e995;
    while (pieces.fed < size) {
        size_t n = piece_size(&rng);
        feed_both(&pieces, &o, n < size - pieces.fed ? n : size - pieces.fed);
    }
    if (o.state == ORACLE_CHECK_REJECT)
        oracle_check_reject(&o, data);
    redisReaderFree(o.rd);

    /* Whole. */
    struct scan whole;
    scan_init(&whole, data, start, seed + 1);
    struct resp_cmd c;
    if (size > 0) {
        scan_feed(&whole, size);
        while (scan_next(&whole, &c) == 1)
            continue;
    }
    same_outcome(&pieces.out, &whole.out);

    /* One byte at a time. */
    struct scan bytes;
    scan_init(&bytes, data, start, seed + 2);
    while (bytes.fed < size) {
        scan_feed(&bytes, 1);
        while (scan_next(&bytes, &c) == 1)
            continue;
    }
    same_outcome(&pieces.out, &bytes.out);
    if (!pieces.out.failed)
        CHECK(resp_scanner_offset(whole.sc) == resp_scanner_offset(bytes.sc));

    scan_deinit(&pieces);
    scan_deinit(&whole);
    scan_deinit(&bytes);
    return 0;
}
