/* fuzz_reply_reader.c - the destination's reply reader on any bytes, in any
 * pieces, against hiredis's reader.
 *
 * The input is what a destination sends back. It is fed to reply_reader four
 * ways: one byte at a time (the reference: it never takes the fast path, and
 * gives each reply's end offset and the offset of the byte that failed), whole
 * (the fast path for short "+..." and ":..." lines), in pieces whose sizes come
 * from a generator seeded by the input's bytes, and whole again with a
 * callback that asks to stop at the K-th reply. Every way must report the
 * same replies (error or not, line, error element, array length) and fail, or
 * not, at the same byte: a reply ends, and the error lies, within the piece
 * being fed; a stop returns the callback's value after exactly K replies.
 *
 * hiredis's redisReader is the oracle for replies both read alike: its
 * replies are taken in order while each one's bytes are written the way both
 * parsers frame them (lines end at their first "\r\n" and hold no '\n', bulk
 * and array lengths are plain decimals, nil is "$-1" or "*-1"); each of those
 * must be the reference's reply of the same rank, ending at the same offset,
 * an error exactly when hiredis's reply is an error or an array with an error
 * among its elements, with that error's text. Where hiredis stops at a bad
 * type byte right after such replies, the reader must fail at that byte, and
 * the other way round. The rest (a bare "\n" ends a line for the reader, not
 * for hiredis; hiredis takes "$abc" as nil, "$03" as 3) is outside the
 * comparison.
 */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply_reader.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_reply_reader: check failed: %s (%s:%d)\n", #c, __FILE__,         \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define STOP_RC 7 /* what the stopping callback returns: neither 0 nor -1 */

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* One reply as the callback saw it. */
struct seen {
    size_t from, end; /* the piece being fed when it was reported: [from, end) */
    bool is_error;
    int64_t error_element, top_count;
    size_t len;
    uint64_t line_hash;
};

/* One way of feeding the input. */
struct run {
    struct reply_reader rr;
    struct seen *replies;
    size_t n, cap;
    size_t from, to; /* the piece being fed */
    size_t stop_at;  /* 0, or the reply after which the callback returns STOP_RC */
    bool failed;     /* a feed returned -1: the piece [failed_from, failed_to) */
    size_t failed_from, failed_to;
};

static int on_reply(void *ctx, bool is_error, const char *line, size_t len)
{
    struct run *r = ctx;
    CHECK(len <= REPLY_READER_LINE_MAX);
    CHECK(len == 0 || line != NULL);
    /* an error element points into the array, and makes the reply an error */
    CHECK(r->rr.error_element >= -1);
    if (r->rr.error_element >= 0)
        CHECK(is_error && r->rr.error_element < r->rr.top_count);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->replies = realloc(r->replies, r->cap * sizeof(*r->replies));
        CHECK(r->replies != NULL);
    }
    r->replies[r->n++] = (struct seen){
        .from = r->from,
        .end = r->to,
        .is_error = is_error,
        .error_element = r->rr.error_element,
        .top_count = r->rr.error_element >= 0 ? r->rr.top_count : 0,
        .len = len,
        .line_hash = fnv1a(line, len),
    };
    return r->stop_at != 0 && r->n == r->stop_at ? STOP_RC : 0;
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof(*r));
    reply_reader_init(&r->rr);
}

/* Feeds data[from, to); false once the reader has refused the bytes. */
static bool run_feed(struct run *r, const uint8_t *data, size_t from, size_t to)
{
    size_t before = r->n;
    r->from = from;
    r->to = to;
    int rc = reply_reader_feed(&r->rr, (const char *)data + from, to - from, on_reply, r);
    if (r->stop_at != 0 && r->n == r->stop_at && r->n > before) {
        CHECK(rc == STOP_RC);
        return false;
    }
    CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        r->failed = true;
        r->failed_from = from;
        r->failed_to = to;
    }
    return rc == 0;
}

static bool same_reply(const struct seen *a, const struct seen *b)
{
    return a->is_error == b->is_error && a->error_element == b->error_element &&
           a->top_count == b->top_count && a->len == b->len && a->line_hash == b->line_hash;
}

/* ------------------------------------------------------------ the oracle */

/* Where hiredis must stop: the first "*<count>" or "$<len>" with more than 18
 * digits (hiredis 0.14 overflows), or a "*<count>" that would take the
 * counts seen so far past the input's size. hiredis allocates a count's
 * element array as soon as it reads it, so "*1536870912" alone, or many
 * nested "*4000", would exhaust memory, and no array that large completes
 * within the input anyway. Conservative: the bytes may be inside a bulk
 * string, which only ends the comparison early. */
static size_t oracle_limit(const uint8_t *data, size_t size)
{
    uint64_t counts = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*' && data[i] != '$')
            continue;
        size_t j = i + 1;
        bool neg = j < size && data[j] == '-';
        j += neg;
        uint64_t v = 0;
        size_t digits = 0;
        for (; j < size && data[j] >= '0' && data[j] <= '9' && digits <= 18; j++, digits++)
            v = v * 10 + (uint64_t)(data[j] - '0');
        if (digits > 18)
            return i;
        if (data[i] == '*' && !neg) {
            counts += v;
            if (counts > size)
                return i;
        }
    }
    return SIZE_MAX;
}

static bool match(const uint8_t *data, size_t end, size_t *at, const void *p, size_t n)
{
    if (end - *at < n || memcmp(data + *at, p, n) != 0)
        return false;
    *at += n;
    return true;
}

static bool match_header(const uint8_t *data, size_t end, size_t *at, char type, long long v)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%c%lld\r\n", type, v);
    return match(data, end, at, head, (size_t)n);
}

/* True when data[*at, end) starts with reply r written so that the reader and
 * hiredis frame it alike (see the top); moves *at past it. */
static bool is_framed_alike(const uint8_t *data, size_t end, size_t *at, const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        return match(data, end, at, r->type == REDIS_REPLY_STATUS ? "+" : "-", 1) &&
               memchr(r->str, '\n', r->len) == NULL && match(data, end, at, r->str, r->len) &&
               match(data, end, at, "\r\n", 2);
    case REDIS_REPLY_INTEGER: {
        /* neither checks the digits: the line only has to end alike */
        if (!match(data, end, at, ":", 1))
            return false;
        for (size_t i = *at; i + 1 < end; i++) {
            if (data[i] == '\r' && data[i + 1] == '\n') {
                *at = i + 2;
                return true;
            }
            if (data[i] == '\n')
                return false;
        }
        return false;
    }
    case REDIS_REPLY_NIL:
        return match(data, end, at, "$-1\r\n", 5) || match(data, end, at, "*-1\r\n", 5);
    case REDIS_REPLY_STRING:
        /* neither checks the two bytes after the data: both skip them */
        if (!match_header(data, end, at, '$', (long long)r->len) ||
            !match(data, end, at, r->str, r->len) || end - *at < 2)
            return false;
        *at += 2;
        return true;
    case REDIS_REPLY_ARRAY:
        if (!match_header(data, end, at, '*', (long long)r->elements))
            return false;
        for (size_t i = 0; i < r->elements; i++)
            if (!is_framed_alike(data, end, at, r->element[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* The reply the reader must report for hiredis's reply r. */
static struct seen expected_reply(const redisReply *r)
{
    const redisReply *line = NULL;
    struct seen e = {.error_element = -1, .line_hash = fnv1a("", 0)};
    if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) {
        line = r;
        e.is_error = r->type == REDIS_REPLY_ERROR;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && line == NULL; i++)
            if (r->element[i]->type == REDIS_REPLY_ERROR) {
                line = r->element[i];
                e.is_error = true;
                e.error_element = (int64_t)i;
                e.top_count = (int64_t)r->elements;
            }
    }
    if (line != NULL) {
        e.len = line->len < REPLY_READER_LINE_MAX ? line->len : REPLY_READER_LINE_MAX;
        /* The reader keeps a line's first REPLY_READER_LINE_MAX bytes, then
         * drops a last '\r' as the CRLF's: a longer line whose 256th byte is
         * '\r' loses that byte too. Only the message's text is shorter. */
        if (line->len >= REPLY_READER_LINE_MAX && line->str[REPLY_READER_LINE_MAX - 1] == '\r')
            e.len--;
        e.line_hash = fnv1a(line->str, e.len);
    }
    return e;
}

/* hiredis over the input against the reference run. */
static void compare_with_hiredis(const uint8_t *data, size_t size, const struct run *ref)
{
    size_t limit = oracle_limit(data, size);
    size_t fed = limit < size ? limit : size;
    redisReader *rd = redisReaderCreate();
    CHECK(rd != NULL);
    if (fed > 0)
        CHECK(redisReaderFeed(rd, (const char *)data, fed) == REDIS_OK);
    size_t at = 0, k = 0; /* the boundary both stand at, and the replies before it */
    bool hiredis_failed = false;
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
            hiredis_failed = true;
            break;
        }
        if (reply == NULL)
            break;
        /* right after a reply completes, hiredis has taken exactly its bytes */
        size_t end = fed - (rd->len - rd->pos), p = at;
        bool alike = is_framed_alike(data, end, &p, reply) && p == end;
        if (alike) {
            struct seen e = expected_reply(reply);
            CHECK(k < ref->n);
            CHECK(ref->replies[k].end == end);
            CHECK(same_reply(&ref->replies[k], &e));
            at = end;
            k++;
        }
        freeReplyObject(reply);
        if (!alike)
            break;
    }
    redisReaderFree(rd);
    if (at < fed) {
        /* at a boundary both stand at, a bad type byte fails both */
        bool bad_type = strchr("+-:$*", data[at]) == NULL || data[at] == '\0';
        if (bad_type)
            CHECK(hiredis_failed && ref->failed && ref->failed_from == at && ref->n == k);
        if (ref->failed && ref->failed_from == at)
            CHECK(hiredis_failed);
    }
}

/* ---------------------------------------------------------- the target */

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

/* The replies of a run are the reference's, each reported while the piece
 * that holds its last byte was fed; and it failed in the piece that holds the
 * byte the reference failed at. In the reference, a piece is one byte: a
 * reply's `end` is the offset just past it, `failed_from` the bad byte. */
static void same_as_reference(const struct run *r, const struct run *ref)
{
    CHECK(r->n == ref->n);
    CHECK(r->failed == ref->failed);
    for (size_t i = 0; i < r->n; i++) {
        CHECK(same_reply(&r->replies[i], &ref->replies[i]));
        CHECK(ref->replies[i].end > r->replies[i].from && ref->replies[i].end <= r->replies[i].end);
    }
    if (r->failed)
        CHECK(ref->failed_from >= r->failed_from && ref->failed_from < r->failed_to);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = fnv1a(data, size);

    /* One byte at a time: the reference. */
    struct run ref;
    run_init(&ref);
    for (size_t i = 0; i < size && run_feed(&ref, data, i, i + 1); i++)
        continue;
    for (size_t i = 0; i < ref.n; i++)
        CHECK(!ref.failed || ref.replies[i].end <= ref.failed_from);
    compare_with_hiredis(data, size, &ref);

    /* Whole (short replies take the fast path). */
    struct run whole;
    run_init(&whole);
    if (size > 0)
        run_feed(&whole, data, 0, size);
    same_as_reference(&whole, &ref);

    /* In pieces whose sizes come from the input. */
    struct run pieces;
    run_init(&pieces);
    uint64_t rng = seed | 1;
    for (size_t at = 0; at < size;) {
        size_t n = piece_size(&rng);
        n = n < size - at ? n : size - at;
        if (!run_feed(&pieces, data, at, at + n))
            break;
        at += n;
    }
    same_as_reference(&pieces, &ref);

    /* A callback that stops at the K-th reply: the feed returns its value
     * then, after exactly K replies, the reference's first K. */
    if (ref.n > 0) {
        struct run stop;
        run_init(&stop);
        stop.stop_at = 1 + (size_t)(seed >> 16) % ref.n;
        CHECK(!run_feed(&stop, data, 0, size));
        CHECK(!stop.failed && stop.n == stop.stop_at);
        for (size_t i = 0; i < stop.n; i++)
            CHECK(same_reply(&stop.replies[i], &ref.replies[i]));
        free(stop.replies);
    }

    free(ref.replies);
    free(whole.replies);
    free(pieces.replies);
    return 0;
}
