/* test_decimal.c - decimal_i64/decimal_u64 write exactly what printf does. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "decimal.h"

static void check_i64(int64_t v)
{
    char want[32], got[DECIMAL_MAX + 1];
    snprintf(want, sizeof(want), "%" PRId64, v);
    size_t n = decimal_i64(got, v);
    got[n] = '\0';
    cr_assert_str_eq(got, want, "%" PRId64, v);
}

static void check_u64(uint64_t v)
{
    char want[32], got[DECIMAL_MAX + 1];
    snprintf(want, sizeof(want), "%" PRIu64, v);
    size_t n = decimal_u64(got, v);
    got[n] = '\0';
    cr_assert_str_eq(got, want, "%" PRIu64, v);
}

Test(decimal, the_edges)
{
    const int64_t edges[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_i64(edges[i]);
    check_u64(UINT64_MAX);
    check_u64(0);
}

Test(decimal, every_power_of_ten_and_its_neighbours_and_random_values)
{
    for (uint64_t p = 1, k = 0; k < 20; k++, p *= 10) {
        check_u64(p - 1);
        check_u64(p);
        check_u64(p + 1);
        check_i64(-(int64_t)(p % (uint64_t)INT64_MAX));
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check_u64(x >> (i % 64));
        check_i64((int64_t)(x >> (i % 64)) * (i % 2 ? -1 : 1));
    }
}
