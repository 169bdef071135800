/* test_json_out.c - json_out: escaping of every byte, numbers, lines written in parts.
 *
 * The reference for escaping is the rule of notes/inspect_json.md, written out
 * here byte by byte, and a small JSON string reader (json_read_string) that
 * maps \u0000..\u00ff back to bytes: what json_out writes must read back as
 * the bytes it was given.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"

/* ---- helpers ------------------------------------------------------------- */

/* The escaping rule, one byte at a time: the expected output for b. */
static size_t expected_escape(unsigned char b, char *out)
{
    if (b == '"' || b == '\\') {
        out[0] = '\\';
        out[1] = (char)b;
        return 2;
    }
    if (b >= 0x20 && b <= 0x7e) {
        out[0] = (char)b;
        return 1;
    }
    return (size_t)sprintf(out, "\\u00%02x", b);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the JSON string starting at s[0] == '"' (any JSON escapes, code
 * points up to U+00FF only) into out. Returns the bytes read, or 0 if s is
 * not such a string. Sets *out_len. */
static size_t json_read_string(const char *s, size_t len, unsigned char *out, size_t *out_len)
{
    size_t i = 0, o = 0;
    if (len == 0 || s[i++] != '"')
        return 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i++];
        if (c == '"') {
            *out_len = o;
            return i;
        }
        if (c < 0x20 || c > 0x7e)
            return 0; /* JSON forbids raw control bytes; ours must be ASCII-only */
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (i >= len)
            return 0;
        char e = s[i++];
        switch (e) {
        case '"':
        case '\\':
        case '/':
            out[o++] = (unsigned char)e;
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            if (i + 4 > len)
                return 0;
            int cp = 0;
            for (int k = 0; k < 4; k++) {
                int h = hex_value(s[i + (size_t)k]);
                if (h < 0)
                    return 0;
                cp = cp * 16 + h;
            }
            i += 4;
            if (cp > 0xff)
                return 0;
            out[o++] = (unsigned char)cp;
            break;
        }
        default:
            return 0;
        }
    }
    return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    /* xorshift64*: reproducible across runs. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(rng_next() >> 56);
}

/* Writes p as a JSON string into a memory json_out and checks it reads back. */
static void check_round_trip(const unsigned char *p, size_t n)
{
    struct json_out o;
    json_out_init(&o, NULL, 0);
    json_out_string(&o, p, n);
    cr_assert_eq(json_out_error(&o), 0);
    unsigned char *back = malloc(n + 1);
    size_t back_len = 0;
    size_t used = json_read_string(o.buf, o.len, back, &back_len);
    cr_assert_eq(used, o.len, "the output is one whole JSON string");
    cr_assert_eq(back_len, n);
    cr_assert(memcmp(back, p, n) == 0, "the bytes read back are the bytes written");
    free(back);
    json_out_deinit(&o);
}

static char *memory_text(const struct json_out *o)
{
    char *s = malloc(o->len + 1);
    memcpy(s, o->buf, o->len);
    s[o->len] = '\0';
    return s;
}

/* ---- escaping ------------------------------------------------------------ */

Test(json_out, every_byte_is_escaped_by_the_rule)
{
    for (int b = 0; b < 256; b++) {
        unsigned char in = (unsigned char)b;
        char want[16] = {'"'};
        size_t n = 1 + expected_escape(in, want + 1);
        want[n++] = '"';
        struct json_out o;
        json_out_init(&o, NULL, 0);
        json_out_string(&o, &in, 1);
        cr_assert_eq(o.len, n, "byte 0x%02x: length %zu, want %zu", b, o.len, n);
        cr_assert(memcmp(o.buf, want, n) == 0, "byte 0x%02x", b);
        json_out_deinit(&o);
    }
}

Test(json_out, every_byte_at_every_position_of_a_long_literal_run_is_escaped)
{
    /* Long runs are scanned 8 bytes at a time: every byte must be caught
     * wherever it falls in a word, and next to any neighbour. */
    unsigned char in[24];
    char want[24 * 6 + 2];
    for (int b = 0; b < 256; b++) {
        for (size_t at = 0; at < sizeof(in); at++) {
            for (int fill = 0; fill < 2; fill++) {
                memset(in, fill ? '~' : ' ', sizeof(in));
                in[at] = (unsigned char)b;
                size_t n = 0;
                want[n++] = '"';
                for (size_t i = 0; i < sizeof(in); i++)
                    n += expected_escape(in[i], want + n);
                want[n++] = '"';
                struct json_out o;
                json_out_init(&o, NULL, 0);
                json_out_string(&o, in, sizeof(in));
                cr_assert_eq(o.len, n, "byte 0x%02x at %zu", b, at);
                cr_assert(memcmp(o.buf, want, n) == 0, "byte 0x%02x at %zu", b, at);
                json_out_deinit(&o);
            }
        }
    }
}

Test(json_out, all_256_bytes_in_one_string_match_the_rule_and_round_trip)
{
    unsigned char all[256];
    for (int b = 0; b < 256; b++)
        all[b] = (unsigned char)b;
    char want[256 * 6 + 2];
    size_t n = 0;
    want[n++] = '"';
    for (int b = 0; b < 256; b++)
        n += expected_escape(all[b], want + n);
    want[n++] = '"';

    struct json_out o;
    json_out_init(&o, NULL, 0);
    json_out_string(&o, all, sizeof(all));
    cr_assert_eq(o.len, n);
    cr_assert(memcmp(o.buf, want, n) == 0);
    for (size_t i = 0; i < o.len; i++)
        cr_assert(o.buf[i] >= 0x20 && o.buf[i] <= 0x7e, "ASCII-only output");
    json_out_deinit(&o);

    check_round_trip(all, sizeof(all));
}

Test(json_out, random_binary_strings_round_trip)
{
    static unsigned char buf[200000];
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(rng_next() % 2000);
        if (round % 50 == 0)
            n = sizeof(buf); /* a few longer than one escape block */
        fill_random(buf, n);
        check_round_trip(buf, n);
    }
}

Test(json_out, text_heavy_strings_round_trip)
{
    /* Mostly literal runs with a rare byte that needs escaping: the run copier's path. */
    static unsigned char buf[300000];
    for (int round = 0; round < 20; round++) {
        size_t n = (size_t)(rng_next() % sizeof(buf));
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng_next();
            buf[i] = (r % 97 == 0) ? (unsigned char)(r >> 56) : (unsigned char)('a' + r % 26);
        }
        check_round_trip(buf, n);
    }
}

Test(json_out, empty_string_is_two_quotes)
{
    struct json_out o;
    json_out_init(&o, NULL, 0);
    json_out_string(&o, "", 0);
    char *s = memory_text(&o);
    cr_assert_str_eq(s, "\"\"");
    free(s);
    json_out_deinit(&o);
}

Test(json_out, escaped_pieces_concatenate_to_the_whole_string)
{
    unsigned char buf[5000];
    fill_random(buf, sizeof(buf));
    struct json_out whole, parts;
    json_out_init(&whole, NULL, 0);
    json_out_init(&parts, NULL, 0);
    json_out_string(&whole, buf, sizeof(buf));
    json_out_char(&parts, '"');
    for (size_t at = 0; at < sizeof(buf);) {
        size_t n = 1 + (size_t)(rng_next() % 300);
        if (n > sizeof(buf) - at)
            n = sizeof(buf) - at;
        json_out_escaped(&parts, buf + at, n);
        at += n;
    }
    json_out_char(&parts, '"');
    cr_assert_eq(parts.len, whole.len);
    cr_assert(memcmp(parts.buf, whole.buf, whole.len) == 0);
    json_out_deinit(&whole);
    json_out_deinit(&parts);
}

/* ---- numbers ------------------------------------------------------------- */

static char *double_text(double v)
{
    struct json_out o;
    json_out_init(&o, NULL, 0);
    json_out_double(&o, v);
    char *s = memory_text(&o);
    json_out_deinit(&o);
    return s;
}

Test(json_out, infinities_and_nan_are_strings)
{
    char *s = double_text(INFINITY);
    cr_assert_str_eq(s, "\"inf\"");
    free(s);
    s = double_text(-INFINITY);
    cr_assert_str_eq(s, "\"-inf\"");
    free(s);
    s = double_text(NAN);
    cr_assert_str_eq(s, "\"nan\"");
    free(s);
    s = double_text(-NAN);
    cr_assert_str_eq(s, "\"nan\"");
    free(s);
}

Test(json_out, doubles_are_printed_with_17_digits)
{
    char *s = double_text(0.1);
    cr_assert_str_eq(s, "0.10000000000000001");
    free(s);
    s = double_text(1e300);
    cr_assert_str_eq(s, "1.0000000000000001e+300");
    free(s);
    s = double_text(-0.0);
    cr_assert_str_eq(s, "-0");
    free(s);
    s = double_text(3);
    cr_assert_str_eq(s, "3");
    free(s);
    s = double_text(-1700000000000.0);
    cr_assert_str_eq(s, "-1700000000000");
    free(s);
    s = double_text(9007199254740992.0); /* 2^53: printf's path */
    cr_assert_str_eq(s, "9007199254740992");
    free(s);
    s = double_text(1e17);
    cr_assert_str_eq(s, "1e+17");
    free(s);
}

static void check_double_round_trip(double v)
{
    char *s = double_text(v);
    char *end = NULL;
    double back = strtod(s, &end);
    cr_assert_eq(*end, '\0', "'%s' is one number", s);
    cr_assert(memcmp(&back, &v, sizeof(v)) == 0, "'%s' reads back as %.17g", s, back);
    free(s);
}

Test(json_out, doubles_round_trip_through_strtod)
{
    const double fixed[] = {0.0,    -0.0,        0.1,      1e300,
                            -1e300, 1e-300,      5e-324,   1.7976931348623157e308,
                            2.5,    -123456.789, 1.0 / 3.0};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check_double_round_trip(fixed[i]);
    for (int i = 0; i < 10000; i++) {
        char want[32];
        double iv = (double)(int64_t)(rng_next() >> (rng_next() % 64)) * (i % 2 ? 1 : -1);
        snprintf(want, sizeof(want), "%.17g", iv);
        char *s = double_text(iv);
        cr_assert_str_eq(s, want, "integers print as %%.17g does");
        free(s);
    }
    for (int i = 0; i < 10000; i++) {
        uint64_t bits = rng_next();
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (isnan(v) || isinf(v))
            continue;
        check_double_round_trip(v);
    }
}

Test(json_out, integers_at_their_limits)
{
    struct json_out o;
    json_out_init(&o, NULL, 0);
    json_out_i64(&o, INT64_MIN);
    json_out_char(&o, ' ');
    json_out_i64(&o, INT64_MAX);
    json_out_char(&o, ' ');
    json_out_i64(&o, 0);
    json_out_char(&o, ' ');
    json_out_i64(&o, -1);
    json_out_char(&o, ' ');
    json_out_u64(&o, UINT64_MAX);
    json_out_char(&o, ' ');
    json_out_u64(&o, 10);
    char *s = memory_text(&o);
    cr_assert_str_eq(s, "-9223372036854775808 9223372036854775807 0 -1 18446744073709551615 10");
    free(s);
    json_out_deinit(&o);
}

/* ---- lines, holding, writing in parts ------------------------------------ */

struct capture {
    FILE *f;
    char *text;
    size_t len;
};

static void capture_open(struct capture *c)
{
    memset(c, 0, sizeof(*c));
    c->f = open_memstream(&c->text, &c->len);
    cr_assert_not_null(c->f);
}

static void capture_close(struct capture *c)
{
    fclose(c->f);
    free(c->text);
}

Test(json_out, lines_reach_the_file_after_flush)
{
    struct capture c;
    capture_open(&c);
    struct json_out o;
    json_out_init(&o, c.f, 0);
    json_out_text(&o, "{\"a\":");
    json_out_i64(&o, 1);
    json_out_char(&o, '}');
    cr_assert_eq(json_out_end_line(&o), 0);
    json_out_text(&o, "[]");
    cr_assert_eq(json_out_end_line(&o), 0);
    cr_assert_eq(json_out_flush(&o), 0);
    cr_assert_eq(c.len, strlen("{\"a\":1}\n[]\n"));
    cr_assert(memcmp(c.text, "{\"a\":1}\n[]\n", c.len) == 0);
    json_out_deinit(&o);
    capture_close(&c);
}

Test(json_out, an_8_mib_string_streams_through_a_bounded_buffer)
{
    const size_t n = (size_t)8 << 20;
    const size_t flush_bytes = (size_t)64 << 10;
    unsigned char *value = malloc(n);
    fill_random(value, n);

    struct json_out want;
    json_out_init(&want, NULL, 0);
    json_out_text(&want, "{\"value\":");
    json_out_string(&want, value, n);
    json_out_text(&want, "}\n");

    struct capture c;
    capture_open(&c);
    struct json_out o;
    json_out_init(&o, c.f, flush_bytes);
    json_out_text(&o, "{\"value\":\"");
    size_t max_cap = 0;
    for (size_t at = 0; at < n;) {
        size_t piece = 1 + (size_t)(rng_next() % (200 << 10));
        if (piece > n - at)
            piece = n - at;
        json_out_escaped(&o, value + at, piece);
        at += piece;
        if (o.cap > max_cap)
            max_cap = o.cap;
    }
    cr_assert_gt(o.line_written, 0, "parts of the line were written before its end");
    json_out_text(&o, "\"}");
    cr_assert_eq(json_out_end_line(&o), 0);
    cr_assert_eq(json_out_flush(&o), 0);

    cr_assert_eq(c.len, want.len);
    cr_assert(memcmp(c.text, want.buf, want.len) == 0, "the parts make the exact line");
    cr_assert_leq(max_cap, (size_t)1 << 20, "buffer stayed bounded (cap %zu)", max_cap);
    free(value);
    json_out_deinit(&o);
    json_out_deinit(&want);
    capture_close(&c);
}

Test(json_out, a_large_raw_append_is_written_in_parts)
{
    const size_t n = (size_t)3 << 20;
    char *text = malloc(n);
    memset(text, 'x', n);
    struct capture c;
    capture_open(&c);
    struct json_out o;
    json_out_init(&o, c.f, 4096);
    json_out_raw(&o, text, n);
    cr_assert_leq(o.cap, (size_t)1 << 20);
    cr_assert_eq(json_out_end_line(&o), 0);
    cr_assert_eq(json_out_flush(&o), 0);
    cr_assert_eq(c.len, n + 1);
    cr_assert(memcmp(c.text, text, n) == 0);
    cr_assert_eq(c.text[n], '\n');
    free(text);
    json_out_deinit(&o);
    capture_close(&c);
}

Test(json_out, a_held_line_is_not_written_and_can_be_discarded)
{
    struct capture c;
    capture_open(&c);
    struct json_out o;
    json_out_init(&o, c.f, 16);
    json_out_text(&o, "first");
    json_out_end_line(&o);
    json_out_hold(&o, true);
    for (int i = 0; i < 1000; i++)
        json_out_text(&o, "held held held ");
    cr_assert_eq(o.line_written, 0, "nothing of a held line is written");
    json_out_discard_line(&o);
    json_out_text(&o, "second");
    json_out_end_line(&o);
    cr_assert_eq(json_out_flush(&o), 0);
    cr_assert_eq(c.len, strlen("first\nsecond\n"));
    cr_assert(memcmp(c.text, "first\nsecond\n", c.len) == 0);
    json_out_deinit(&o);
    capture_close(&c);
}

Test(json_out, releasing_a_hold_lets_the_line_out)
{
    struct capture c;
    capture_open(&c);
    struct json_out o;
    json_out_init(&o, c.f, 16);
    json_out_hold(&o, true);
    json_out_text(&o, "a long head that passes sixteen bytes");
    cr_assert_eq(o.line_written, 0);
    json_out_hold(&o, false);
    json_out_text(&o, ", then the value");
    cr_assert_gt(o.line_written, 0);
    json_out_end_line(&o);
    cr_assert_eq(json_out_flush(&o), 0);
    const char *want = "a long head that passes sixteen bytes, then the value\n";
    cr_assert_eq(c.len, strlen(want));
    cr_assert(memcmp(c.text, want, c.len) == 0);
    json_out_deinit(&o);
    capture_close(&c);
}

Test(json_out, a_failed_write_is_kept_and_reported)
{
    FILE *f = fopen("/dev/full", "w");
    if (f == NULL)
        cr_skip_test("no /dev/full");
    setvbuf(f, NULL, _IONBF, 0);
    struct json_out o;
    json_out_init(&o, f, 16);
    json_out_text(&o, "more than sixteen bytes of text");
    json_out_end_line(&o);
    cr_assert_eq(json_out_error(&o), -ENOSPC);
    cr_assert_eq(json_out_flush(&o), -ENOSPC);
    json_out_text(&o, "ignored");
    cr_assert_eq(json_out_end_line(&o), -ENOSPC, "the first failure stays");
    json_out_deinit(&o);
    fclose(f);
}

Test(json_out, an_all_zero_struct_is_an_empty_memory_buffer)
{
    struct json_out o;
    memset(&o, 0, sizeof(o));
    json_out_string(&o, "a\"b", 3);
    cr_assert_eq(json_out_flush(&o), 0);
    char *s = memory_text(&o);
    cr_assert_str_eq(s, "\"a\\\"b\"");
    free(s);
    json_out_deinit(&o);
}
