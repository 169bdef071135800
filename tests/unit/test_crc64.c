/* test_crc64.c - crc64_update against the check value and a plain bitwise model. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crc64.h"

#define POLY_REFLECTED 0x95ac9329ac4bc9b5ULL /* 0xad93d23594c935a9 bit-reversed */

/* The reference model: one bit at a time, straight from the definition. */
static uint64_t crc64_bitwise(uint64_t poly, uint64_t crc, const void *p, size_t len)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++) {
        crc ^= s[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ poly : crc >> 1;
    }
    return crc;
}

/* xorshift64: reproducible random bytes without touching rand()'s state. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static void fill_random(unsigned char *buf, size_t len, uint64_t *state)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)next_random(state);
}

Test(crc64, check_value_of_123456789_matches_redis)
{
    cr_assert_eq(crc64_update(0, "123456789", 9), CRC64_CHECK_VALUE);
    cr_assert_eq(crc64_bitwise(POLY_REFLECTED, 0, "123456789", 9), CRC64_CHECK_VALUE);
}

Test(crc64, empty_input_leaves_crc_unchanged)
{
    cr_assert_eq(crc64_update(0, NULL, 0), 0);
    cr_assert_eq(crc64_update(0x1234, "", 0), 0x1234);
}

Test(crc64, every_two_piece_split_of_1000_bytes_equals_one_shot)
{
    unsigned char buf[1000];
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    fill_random(buf, sizeof(buf), &state);
    uint64_t whole = crc64_update(0, buf, sizeof(buf));

    for (size_t cut = 0; cut <= sizeof(buf); cut++) {
        uint64_t crc = crc64_update(0, buf, cut);
        crc = crc64_update(crc, buf + cut, sizeof(buf) - cut);
        cr_assert_eq(crc, whole, "split at %zu", cut);
    }
}

Test(crc64, one_byte_at_a_time_equals_one_shot)
{
    unsigned char buf[1000];
    uint64_t state = 42;
    fill_random(buf, sizeof(buf), &state);
    uint64_t crc = 0;
    for (size_t i = 0; i < sizeof(buf); i++)
        crc = crc64_update(crc, buf + i, 1);
    cr_assert_eq(crc, crc64_update(0, buf, sizeof(buf)));
}

Test(crc64, random_buffers_at_every_alignment_match_bitwise_reference)
{
    static unsigned char buf[4096 + 8];
    uint64_t state = 0xdeadbeefcafef00dULL;
    for (int round = 0; round < 500; round++) {
        size_t len = (size_t)(next_random(&state) % 4097);
        size_t align = (size_t)(next_random(&state) % 8);
        uint64_t seed = round % 2 ? next_random(&state) : 0;
        fill_random(buf + align, len, &state);
        uint64_t want = crc64_bitwise(POLY_REFLECTED, seed, buf + align, len);
        cr_assert_eq(crc64_update(seed, buf + align, len), want,
                     "round %d len %zu align %zu seed %#llx", round, len, align,
                     (unsigned long long)seed);
    }
}

/* The comparison above must be able to fail: a model with one polynomial bit
 * flipped disagrees with crc64_update on ordinary input. */
Test(crc64, reference_with_wrong_polynomial_is_caught)
{
    unsigned char buf[64];
    uint64_t state = 7;
    fill_random(buf, sizeof(buf), &state);
    cr_assert_neq(crc64_update(0, buf, sizeof(buf)),
                  crc64_bitwise(POLY_REFLECTED ^ 1, 0, buf, sizeof(buf)));
}

/* Redis itself is the oracle: an RDB file of version 5 and up ends with the
 * little-endian CRC64 of every byte before it. */
Test(crc64, trailer_of_rdb_files_written_by_redis_matches)
{
    static const char *const names[] = {"hash-ziplist.rdb", "list-quicklist.rdb",
                                        "scriptbackup.rdb", "zset-ziplist.rdb"};
    const char *testdata = getenv("RS_TESTDATA");
    struct stat st;
    if (testdata == NULL || stat(testdata, &st) != 0)
        cr_skip_test("no test data: RS_TESTDATA is '%s'", testdata ? testdata : "(unset)");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[4096];
        static unsigned char buf[1 << 16];
        snprintf(path, sizeof(path), "%s/rdb/%s", testdata, names[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "cannot open %s", path);
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        cr_assert_gt(len, 8, "%s is too short", path);
        uint64_t trailer = 0;
        for (int k = 7; k >= 0; k--)
            trailer = trailer << 8 | buf[len - 8 + (size_t)k];
        cr_assert_eq(crc64_update(0, buf, len - 8), trailer, "%s", names[i]);
    }
}
