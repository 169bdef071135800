/* test_rs_error.c - rs_escape_bytes, rs_error_set, rs_error_code_name, RS_ASSERT. */
#include <criterion/criterion.h>

#include <signal.h>
#include <string.h>

#include "rs_error.h"

static const char *escape(char *out, size_t cap, const char *s, size_t len, size_t max_in)
{
    return rs_escape_bytes(out, cap, s, len, max_in);
}

Test(rs_escape_bytes, printable_ascii_is_copied_as_is)
{
    char out[64];
    cr_assert_str_eq(escape(out, sizeof(out), "hello world ~!", 14, 100), "hello world ~!");
}

Test(rs_escape_bytes, quote_and_backslash_are_escaped)
{
    char out[64];
    cr_assert_str_eq(escape(out, sizeof(out), "a\"b\\c", 5, 100), "a\\\"b\\\\c");
}

Test(rs_escape_bytes, control_and_high_bytes_become_hex)
{
    char out[64];
    cr_assert_str_eq(escape(out, sizeof(out), "\x00\n\x7f\xff", 4, 100), "\\x00\\x0a\\x7f\\xff");
}

Test(rs_escape_bytes, input_past_max_in_is_cut_with_dots)
{
    char out[64];
    cr_assert_str_eq(escape(out, sizeof(out), "abcdefgh", 8, 3), "abc...");
    cr_assert_str_eq(escape(out, sizeof(out), "abcdefgh", 8, 0), "...");
    cr_assert_str_eq(escape(out, sizeof(out), "abc", 3, 3), "abc", "no dots when all shown");
}

Test(rs_escape_bytes, full_output_buffer_cuts_with_dots)
{
    char out[8];
    cr_assert_str_eq(escape(out, sizeof(out), "abcdefghij", 10, 100), "abcd...");
}

Test(rs_escape_bytes, escape_sequence_is_never_split)
{
    char out[8];
    /* "a" fits, "\xff" (4 chars) would leave no room for "..." and the NUL. */
    cr_assert_str_eq(escape(out, sizeof(out), "a\xff", 2, 100), "a...");
}

Test(rs_escape_bytes, tiny_capacities)
{
    char out[4] = {'x', 'x', 'x', 'x'};
    escape(out, 0, "abc", 3, 100);
    cr_assert_eq(out[0], 'x', "cap 0 writes nothing");
    cr_assert_str_eq(escape(out, 1, "abc", 3, 100), "");
    cr_assert_str_eq(escape(out, 3, "abc", 3, 100), "");
    cr_assert_str_eq(escape(out, 4, "abc", 3, 100), "...");
    cr_assert_str_eq(escape(out, 4, "", 0, 100), "");
}

Test(rs_escape_bytes, output_always_fits_and_is_a_prefix_of_the_full_escape)
{
    const char in[] = "k\x01\"\\\xfe text";
    size_t len = sizeof(in) - 1;
    char full[128];
    escape(full, sizeof(full), in, len, len);
    for (size_t cap = 1; cap <= sizeof(full); cap++) {
        char out[sizeof(full) + 1];
        memset(out, '#', sizeof(out));
        escape(out, cap, in, len, len);
        size_t n = strlen(out);
        cr_assert_lt(n, cap, "cap %zu", cap);
        cr_assert_eq(out[cap], '#', "wrote past cap %zu", cap);
        size_t shown = n >= 3 && strcmp(out + n - 3, "...") == 0 ? n - 3 : n;
        cr_assert(strncmp(out, full, shown) == 0, "cap %zu: '%s' vs '%s'", cap, out, full);
    }
}

Test(rs_error_set, fills_code_offset_and_message)
{
    struct rs_error err = {0};
    rs_error_set(&err, RS_E_FORMAT, 1234, "bad type %d for key '%s'", 99, "k");
    cr_assert_eq(err.code, RS_E_FORMAT);
    cr_assert_eq(err.offset, 1234);
    cr_assert_str_eq(err.msg, "bad type 99 for key 'k'");
}

Test(rs_error_set, long_message_is_truncated_and_terminated)
{
    struct rs_error err;
    char long_text[600];
    memset(long_text, 'z', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    memset(&err, 0x55, sizeof(err));
    rs_error_set(&err, RS_E_LIMIT, 0, "%s", long_text);
    cr_assert_eq(strlen(err.msg), sizeof(err.msg) - 1);
}

Test(rs_error_set, null_error_is_ignored)
{
    rs_error_set(NULL, RS_E_FORMAT, 1, "nobody listens");
}

Test(rs_error_code_name, names_every_code)
{
    cr_assert_str_eq(rs_error_code_name(RS_E_NONE), "none");
    cr_assert_str_eq(rs_error_code_name(RS_E_FORMAT), "format");
    cr_assert_str_eq(rs_error_code_name(RS_E_TRUNCATED), "truncated");
    cr_assert_str_eq(rs_error_code_name(RS_E_CHECKSUM), "checksum");
    cr_assert_str_eq(rs_error_code_name(RS_E_UNSUPPORTED), "unsupported");
    cr_assert_str_eq(rs_error_code_name(RS_E_LIMIT), "limit");
    cr_assert_str_eq(rs_error_code_name(RS_E_CONSUMER), "consumer");
    cr_assert_str_eq(rs_error_code_name(-42), "unknown");
}

Test(rs_assert, false_condition_aborts, .signal = SIGABRT)
{
    int broken = 0;
    RS_ASSERT(broken == 1);
}

Test(rs_assert, true_condition_continues)
{
    RS_ASSERT(1 + 1 == 2);
}
