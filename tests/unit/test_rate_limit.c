/* test_rate_limit.c - rate_limit.h: the specs it takes and refuses, and the
 * bucket's pace on a clock the test drives (no sleeping). */
#include <criterion/criterion.h>
#include <string.h>

#include "rate_limit.h"

static struct rate_limit_spec parse_ok(const char *spec)
{
    struct rate_limit_spec s;
    struct rs_error err = {0};
    cr_assert(rate_limit_parse(spec, "--rate-limit", &s, &err) == 0, "'%s': %s", spec, err.msg);
    return s;
}

Test(rate_limit, specs_and_presets)
{
    struct rate_limit_spec s = parse_ok("ops=2500");
    cr_assert(s.ops == 2500 && s.bytes == 0);
    s = parse_ok("bytes=10m");
    cr_assert(s.ops == 0 && s.bytes == 10.0 * 1024 * 1024);
    s = parse_ok("ops=100,bytes=64k");
    cr_assert(s.ops == 100 && s.bytes == 64 * 1024);
    s = parse_ok("bytes=1g,ops=7");
    cr_assert(s.ops == 7 && s.bytes == 1024.0 * 1024 * 1024);
    static const char *const names[] = {"micro", "small", "medium", "large", "xlarge"};
    static const double ops[] = {200, 2000, 5000, 11000, 17000};
    for (int i = 0; i < 5; i++)
        cr_assert(parse_ok(names[i]).ops == ops[i], "%s", names[i]);
    char d[64];
    rate_limit_describe(&(struct rate_limit_spec){.ops = 200, .bytes = 1024 * 1024}, d, sizeof(d));
    cr_assert_str_eq(d, "ops=200/s,bytes=1.0 MiB/s");
}

Test(rate_limit, bad_specs_are_refused_naming_the_flag)
{
    static const char *const bad[] = {"",       "ops",       "ops=",      "ops=0",   "ops=-5",
                                      "ops=1k", "bytes=10x", "bytes=5mb", "huge",    "ops=1,ops=2",
                                      "op=5",   "ops=5,,",   "ops=nan",   "ops=1e99"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rate_limit_spec s;
        struct rs_error err = {0};
        cr_assert(rate_limit_parse(bad[i], "--stream-rate-limit", &s, &err) < 0, "'%s' taken",
                  bad[i]);
        cr_assert(strstr(err.msg, "--stream-rate-limit") != NULL, "'%s': %s", bad[i], err.msg);
    }
}

/* A producer that takes a piece of `per` ops whenever it is allowed, on a
 * clock stepped by 1 ms: over 10 simulated seconds it gets the rate, within
 * one piece. */
static double simulate(double rate, unsigned per, unsigned share)
{
    struct rate_limit rl;
    rate_limit_init(&rl, &(struct rate_limit_spec){.ops = rate}, share);
    const int64_t ms = 1000000;
    int64_t t = 1;
    uint64_t taken = 0;
    for (int i = 0; i < 10000; i++, t += ms)
        while (rate_limit_allows(&rl, t)) {
            rate_limit_take(&rl, per, 0);
            taken += per;
        }
    return (double)taken / 10.0;
}

Test(rate_limit, the_bucket_holds_the_rate_over_ten_seconds)
{
    double r = simulate(10000, 300, 1);
    cr_assert(r >= 10000 * 0.99 && r <= 10000 * 1.01, "%.0f ops/s for 10000", r);
    r = simulate(200, 1, 1);
    cr_assert(r >= 198 && r <= 202, "%.0f ops/s for 200", r);
    r = simulate(5000, 700, 1); /* pieces bigger than the bucket: a debt, paid */
    cr_assert(r >= 5000 * 0.99 && r <= 5000 * 1.02, "%.0f ops/s for 5000", r);
    r = simulate(9000, 10, 3); /* three jobs share it: each gets a third */
    cr_assert(r >= 3000 * 0.99 && r <= 3000 * 1.01, "%.0f ops/s for 9000 / 3", r);
}

Test(rate_limit, the_time_held_back_is_counted)
{
    struct rate_limit rl;
    rate_limit_init(&rl, &(struct rate_limit_spec){.ops = 1000}, 1);
    const int64_t ms = 1000000;
    cr_assert(rate_limit_allows(&rl, 1 * ms));
    rate_limit_take(&rl, 1000, 0); /* a second's worth: held about a second */
    cr_assert(!rate_limit_allows(&rl, 2 * ms));
    cr_assert(rate_limit_holding(&rl));
    cr_assert(!rate_limit_allows(&rl, 500 * ms));
    uint64_t mid = rate_limit_held_ns(&rl, 500 * ms);
    cr_assert(mid == 498 * ms, "%llu", (unsigned long long)mid);
    cr_assert(rate_limit_allows(&rl, 1100 * ms));
    cr_assert(!rate_limit_holding(&rl));
    cr_assert(rate_limit_held_ns(&rl, 2000 * ms) == 1098 * ms);
}
