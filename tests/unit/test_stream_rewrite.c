/* test_stream_rewrite.c - the forms ringsync sends instead of master-only
 * stream commands, and shifted expiries (stream_rewrite.h). Each command is
 * given as a space-separated line, scanned from RESP as the router gets it,
 * and the result compared with the RESP of the expected line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command_table.h"
#include "resp_scanner.h"
#include "stream_rewrite.h"

/* "a b c" as a RESP multibulk into out (NUL-terminated); its length. */
static size_t resp_of(const char *line, char *out, size_t cap)
{
    char words[32][64];
    int n = 0;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", line);
    for (char *w = strtok(tmp, " "); w != NULL; w = strtok(NULL, " "))
        snprintf(words[n++], sizeof(words[0]), "%s", w);
    size_t len = (size_t)snprintf(out, cap, "*%d\r\n", n);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "$%zu\r\n%s\r\n", strlen(words[i]), words[i]);
    return len;
}

/* Rewrites `in` with margin_ms; returns the bytes sent (the rewritten form,
 * or the input when unchanged) in out, and whether it changed. */
static bool rewrite(const char *in, int64_t margin_ms, char *out, size_t cap)
{
    char raw[2048];
    size_t n = resp_of(in, raw, sizeof(raw));
    struct resp_scanner *sc = resp_scanner_new(0);
    cr_assert(sc != NULL);
    cr_assert_eq(resp_scanner_feed(sc, raw, n), 0);
    struct resp_cmd c, o;
    struct rs_error err;
    cr_assert_eq(resp_scanner_next(sc, &c, &err), 1);
    const struct command_spec *spec = command_lookup(c.argv[0].p, c.argv[0].len);
    cr_assert(spec != NULL, "%s: unknown", in);
    struct stream_rewrite rw;
    stream_rewrite_init(&rw, margin_ms);
    int x = stream_rewrite_cmd(&rw, spec, &c, &o);
    cr_assert(x == 0 || x == 1);
    const struct resp_cmd *sent = x == 1 ? &o : &c;
    cr_assert_lt(sent->raw.len, cap);
    memcpy(out, sent->raw.p, sent->raw.len);
    out[sent->raw.len] = '\0';
    if (x == 1) {
        cr_assert_eq(o.end_offset, c.end_offset, "the offset stays the command's");
        cr_assert_eq(o.argv[1].len, c.argv[1].len, "the key keeps its place");
        cr_assert(memcmp(o.argv[1].p, c.argv[1].p, c.argv[1].len) == 0);
    }
    stream_rewrite_deinit(&rw);
    resp_scanner_free(sc);
    return x == 1;
}

static void expect(const char *in, int64_t margin_ms, const char *want)
{
    char got[2048], exp[2048];
    bool changed = rewrite(in, margin_ms, got, sizeof(got));
    resp_of(want, exp, sizeof(exp));
    cr_assert_str_eq(got, exp, "%s (margin %lld ms) should go out as %s", in, (long long)margin_ms,
                     want);
    cr_assert_eq(changed, strcmp(in, want) != 0, "%s: re-encoded only when it changes", in);
}

Test(stream_rewrite, exact_trims_lose_their_limit)
{
    expect("XADD s MAXLEN = 1000 LIMIT 100 1-1 f v", 0, "XADD s MAXLEN = 1000 1-1 f v");
    expect("XADD s MINID = 5-0 LIMIT 100 1-1 f v", 0, "XADD s MINID = 5-0 1-1 f v");
    expect("xadd s nomkstream maxlen = 10 limit 3 7-1 f v", 0,
           "xadd s nomkstream maxlen = 10 7-1 f v");
    expect("XADD s LIMIT 100 MAXLEN = 1000 1-1 f v", 0, "XADD s MAXLEN = 1000 1-1 f v");
    expect("XADD s MAXLEN 1000 LIMIT 100 1-1 f v", 0, "XADD s MAXLEN 1000 1-1 f v");
    expect("XTRIM s MAXLEN = 1000 LIMIT 100", 0, "XTRIM s MAXLEN = 1000");
    expect("XTRIM s MINID = 12-3 LIMIT 0", 0, "XTRIM s MINID = 12-3");
}

Test(stream_rewrite, other_stream_commands_go_byte_for_byte)
{
    expect("XADD s MAXLEN ~ 1000 LIMIT 100 1-1 f v", 0, "XADD s MAXLEN ~ 1000 LIMIT 100 1-1 f v");
    expect("XADD s MAXLEN = 1000 1-1 f v", 0, "XADD s MAXLEN = 1000 1-1 f v");
    expect("XADD s 1-1 LIMIT 5", 0, "XADD s 1-1 LIMIT 5"); /* fields named LIMIT: data */
    expect("XADD s MAXLEN = 9 1-1 LIMIT 5", 0, "XADD s MAXLEN = 9 1-1 LIMIT 5");
    expect("XTRIM s MINID ~ 12-3 LIMIT 10", 0, "XTRIM s MINID ~ 12-3 LIMIT 10");
    expect("XTRIM s MAXLEN 0", 0, "XTRIM s MAXLEN 0");
}

Test(stream_rewrite, expiries_move_by_the_margin)
{
    expect("PEXPIREAT k 1700000000123", 5000, "PEXPIREAT k 1700000005123");
    expect("PEXPIREAT k 1700000000123 GT", 5000, "PEXPIREAT k 1700000005123 GT");
    expect("EXPIREAT k 1700000000", 5000, "EXPIREAT k 1700000005");
    expect("PEXPIRE k 100", 5000, "PEXPIRE k 5100");
    expect("EXPIRE k 10 NX", 5000, "EXPIRE k 15 NX");
    expect("SETEX k 10 v", 5000, "SETEX k 15 v");
    expect("PSETEX k 10 v", 5000, "PSETEX k 5010 v");
    expect("SET k v PXAT 1700000000123", 5000, "SET k v PXAT 1700000005123");
    expect("set k v NX exat 1700000000 GET", 5000, "set k v NX exat 1700000005 GET");
    expect("SET k PXAT EX 10", 5000, "SET k PXAT EX 15"); /* the value is not an option */
    expect("SET k v KEEPTTL", 5000, "SET k v KEEPTTL");
    expect("GETEX k PXAT 1700000000123", 5000, "GETEX k PXAT 1700000005123");
    expect("GETEX k PERSIST", 5000, "GETEX k PERSIST");
    expect("RESTORE k 1700000000123 payload REPLACE ABSTTL", 5000,
           "RESTORE k 1700000005123 payload REPLACE ABSTTL");
    expect("RESTORE k 0 payload REPLACE", 5000, "RESTORE k 0 payload REPLACE");
}

Test(stream_rewrite, no_margin_leaves_expiries_alone)
{
    expect("PEXPIREAT k 1700000000123", 0, "PEXPIREAT k 1700000000123");
    expect("SET k v PXAT 1700000000123", 0, "SET k v PXAT 1700000000123");
    expect("RESTORE k 1700000000123 payload ABSTTL", 0, "RESTORE k 1700000000123 payload ABSTTL");
}

Test(stream_rewrite, numbers_that_would_overflow_or_are_not_numbers_stay)
{
    expect("PEXPIREAT k 9223372036854775807", 5000, "PEXPIREAT k 9223372036854775807");
    expect("PEXPIREAT k 12x", 5000, "PEXPIREAT k 12x");
    expect("PEXPIREAT k -100", 5000, "PEXPIREAT k 4900");
    cr_assert_eq(stream_rewrite_shift_ms(INT64_MAX - 1, 5000), INT64_MAX - 1);
    cr_assert_eq(stream_rewrite_shift_ms(1000, 5000), 6000);
}

Test(stream_rewrite, commands_without_a_rewrite_are_never_touched)
{
    expect("SET k v", 5000, "SET k v");
    expect("HSET h f v", 5000, "HSET h f v");
    expect("XACK s g 1-1", 5000, "XACK s g 1-1");
}
