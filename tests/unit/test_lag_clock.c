/* test_lag_clock.c - the arrival times of the source's bytes (lag_clock.h),
 * against a reference that keeps every read with its exact time: the time
 * the clock gives for the oldest unapplied byte is never later than that
 * byte's arrival, and never earlier than the bound of lag_clock.h before it
 * (2 * window / (LAG_CLOCK_SAMPLES - 1), and an interval). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>

#include "lag_clock.h"

#define MS 1000000LL

static struct lag_clock clk;

Test(lag_clock, nothing_read_or_all_applied_gives_zero)
{
    memset(&clk, 0, sizeof(clk));
    cr_assert_eq(lag_clock_applied(&clk, 0), 0);
    lag_clock_read(&clk, 100, 5 * MS);
    cr_assert_eq(lag_clock_applied(&clk, 100), 0);
}

Test(lag_clock, the_oldest_unapplied_byte_gives_its_arrival)
{
    memset(&clk, 0, sizeof(clk));
    lag_clock_read(&clk, 100, 1000 * MS); /* bytes 1..100 */
    lag_clock_read(&clk, 100, 1003 * MS); /* within the interval: the same sample */
    lag_clock_read(&clk, 100, 1020 * MS); /* 201..300 */
    lag_clock_read(&clk, 100, 1040 * MS); /* 301..400 */
    cr_assert_eq(lag_clock_applied(&clk, 0), 1000 * MS);
    cr_assert_eq(lag_clock_applied(&clk, 199), 1000 * MS);
    cr_assert_eq(lag_clock_applied(&clk, 200), 1020 * MS);
    cr_assert_eq(lag_clock_applied(&clk, 350), 1040 * MS);
    cr_assert_eq(lag_clock_applied(&clk, 400), 0);
}

/* Reference: every read, with its exact time. */
struct ref_read {
    uint64_t end;
    int64_t t;
};

Test(lag_clock, a_full_ring_keeps_the_oldest_exact_and_the_rest_within_its_interval)
{
    memset(&clk, 0, sizeof(clk));
    enum { N = 20000 };
    struct ref_read *ref = calloc(N, sizeof(*ref));
    cr_assert_not_null(ref);
    uint64_t pos = 0;
    int64_t t = 1000 * MS;
    srand(7);
    for (int i = 0; i < N; i++) {
        t += (rand() % 7) * MS;
        uint64_t n = 1 + (uint64_t)(rand() % 500);
        lag_clock_read(&clk, n, t);
        pos += n;
        ref[i] = (struct ref_read){pos, t};
    }
    /* apply in steps; the reference's answer is the time of the read that
     * holds byte applied+1 */
    int64_t worst = 2 * (t - 1000 * MS) / (LAG_CLOCK_SAMPLES - 1) + LAG_CLOCK_INTERVAL_NS;
    cr_assert_gt(t - 1000 * MS, (int64_t)LAG_CLOCK_SAMPLES * LAG_CLOCK_INTERVAL_NS,
                 "the ring was never full: a test of nothing");
    size_t r = 0;
    for (uint64_t applied = 0; applied < pos; applied += 1 + (uint64_t)(rand() % 3000)) {
        while (ref[r].end <= applied)
            r++;
        int64_t got = lag_clock_applied(&clk, applied);
        cr_assert_leq(got, ref[r].t, "at %llu: %lld after the arrival %lld",
                      (unsigned long long)applied, (long long)got, (long long)ref[r].t);
        cr_assert_geq(got, ref[r].t - worst, "at %llu: %lld long before the arrival %lld",
                      (unsigned long long)applied, (long long)got, (long long)ref[r].t);
    }
    cr_assert_eq(lag_clock_applied(&clk, pos), 0);
    free(ref);
}

Test(lag_clock, an_idle_gap_is_not_merged_over_while_smaller_ones_exist)
{
    memset(&clk, 0, sizeof(clk));
    lag_clock_read(&clk, 1, 1000 * MS); /* byte 1, then 100 s of nothing */
    int64_t t = 101000 * MS;
    int64_t n = 4 * LAG_CLOCK_SAMPLES;
    for (int64_t i = 0; i < n; i++) /* bytes 2 .. n+1, one every 20 ms */
        lag_clock_read(&clk, 1, t + i * 20 * MS);
    cr_assert_eq(lag_clock_applied(&clk, 0), 1000 * MS); /* the oldest keeps its time */
    int64_t got = lag_clock_applied(&clk, 1);            /* byte 2 came at t */
    int64_t bound = 2 * (n * 20 * MS) / (LAG_CLOCK_SAMPLES - 1) + LAG_CLOCK_INTERVAL_NS;
    cr_assert(got <= t && got >= t - bound, "byte 2 came at %lld, the clock says %lld",
              (long long)t, (long long)got);
}

Test(lag_clock, the_reference_check_fails_on_a_clock_that_lies)
{
    /* the deliberate mismatch: a sample stamped late would answer after the
     * arrival, which the check above refuses */
    memset(&clk, 0, sizeof(clk));
    lag_clock_read(&clk, 100, 50 * MS);
    clk.s[0].time_ns += 1; /* the lie */
    cr_assert_gt(lag_clock_applied(&clk, 0), 50 * MS);
}
