/* test_reply_reader.c - the destination's replies counted and their errors
 * caught, whatever the pieces they come in: every split is checked against
 * the whole feed (which takes the fast path for short simple replies) and a
 * byte-at-a-time feed (which never does). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "reply_reader.h"

struct seen {
    int replies, errors;
    char log[4096];
};

static int on_reply(void *ctx, bool is_error, const char *line, size_t len)
{
    struct seen *s = ctx;
    s->replies++;
    s->errors += is_error;
    size_t at = strlen(s->log);
    snprintf(s->log + at, sizeof(s->log) - at, "%c[%.*s]", is_error ? 'E' : 'R', (int)len, line);
    return 0;
}

static const char replies[] = "+OK\r\n"
                              ":1\r\n"
                              ":-12345\r\n"
                              "+\r\n"
                              "$5\r\nhello\r\n"
                              "$-1\r\n"
                              "-WRONGTYPE Operation against a key\r\n"
                              "*3\r\n+OK\r\n:2\r\n$3\r\nabc\r\n"
                              "*2\r\n+QUEUED\r\n-ERR inside\r\n"
                              "*0\r\n"
                              "+QUEUED\r\n"
                              ":0\r\n";

/* What the whole feed must give: 12 replies, 2 errors, these lines. */
static const char expected[] = "R[OK]R[]R[]R[]R[]R[]E[WRONGTYPE Operation against a key]R[]"
                               "E[ERR inside]R[]R[QUEUED]R[]";

static void feed_in_pieces(struct seen *s, size_t cut1, size_t cut2)
{
    struct reply_reader rr;
    reply_reader_init(&rr);
    memset(s, 0, sizeof(*s));
    size_t n = sizeof(replies) - 1;
    size_t cuts[] = {0, cut1, cut2, n};
    for (int k = 0; k < 3; k++)
        cr_assert_eq(reply_reader_feed(&rr, replies + cuts[k], cuts[k + 1] - cuts[k], on_reply, s),
                     0);
}

Test(reply_reader, whole_feed_counts_every_reply_and_error)
{
    struct seen s;
    feed_in_pieces(&s, 0, 0);
    cr_assert_eq(s.replies, 12);
    cr_assert_eq(s.errors, 2);
    cr_assert_str_eq(s.log, expected);
}

Test(reply_reader, every_split_in_two_or_three_gives_the_same)
{
    size_t n = sizeof(replies) - 1;
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b += 7) {
            struct seen s;
            feed_in_pieces(&s, a, b);
            cr_assert_str_eq(s.log, expected, "cut at %zu and %zu", a, b);
        }
}

Test(reply_reader, byte_at_a_time_gives_the_same)
{
    struct reply_reader rr;
    reply_reader_init(&rr);
    struct seen s;
    memset(&s, 0, sizeof(s));
    for (size_t i = 0; i < sizeof(replies) - 1; i++)
        cr_assert_eq(reply_reader_feed(&rr, replies + i, 1, on_reply, &s), 0);
    cr_assert_str_eq(s.log, expected);
}

Test(reply_reader, what_is_not_resp_is_refused)
{
    struct reply_reader rr;
    reply_reader_init(&rr);
    struct seen s;
    memset(&s, 0, sizeof(s));
    cr_assert_eq(reply_reader_feed(&rr, "+OK\r\n?what\r\n", 12, on_reply, &s), -1);
    cr_assert_eq(s.replies, 1);
}

/* fuzz_reply_reader found it: a 20-digit length overflowed int64_t */
Test(reply_reader, a_length_past_int64_is_refused)
{
    struct reply_reader rr;
    reply_reader_init(&rr);
    struct seen s;
    memset(&s, 0, sizeof(s));
    const char *bulk = "$99999999999999999999\r\n";
    cr_assert_eq(reply_reader_feed(&rr, bulk, strlen(bulk), on_reply, &s), -1);
    reply_reader_init(&rr);
    const char *arr = "*9223372036854775808\r\n";
    cr_assert_eq(reply_reader_feed(&rr, arr, strlen(arr), on_reply, &s), -1);
    cr_assert_eq(s.replies, 0);
}
