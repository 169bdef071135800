/* test_value_digest.c - the digests of `ringsync verify --mode full`: the
 * same elements in any order give one digest where the type is unordered,
 * and each kind of change (an element changed, dropped, doubled, moved in a
 * list, a field paired with another value) changes it. The reference is the
 * digest of the same elements added in their first order: each test starts
 * from an equal pair and changes one thing, so it can fail. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "value_digest.h"

#define N 2000

static char elems[N][24];

static void make_elems(void)
{
    for (int i = 0; i < N; i++)
        snprintf(elems[i], sizeof(elems[i]), "member:%d", i * 7919);
}

/* A permutation of 0..n-1 from a seeded LCG (Fisher-Yates). */
static void shuffle(int *idx, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int i = n - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        int j = (int)((seed >> 8) % (uint32_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static void digest_set(struct value_digest *d, const int *idx, int n)
{
    value_digest_init(d, 3, false);
    for (int i = 0; i < n; i++)
        value_digest_add(d, value_digest_bytes(elems[idx[i]], strlen(elems[idx[i]])));
}

Test(value_digest, a_set_in_any_order_has_one_digest)
{
    make_elems();
    int a[N], b[N];
    shuffle(a, N, 1);
    struct value_digest da, db;
    digest_set(&da, a, N);
    for (uint32_t s = 2; s < 12; s++) {
        shuffle(b, N, s);
        digest_set(&db, b, N);
        cr_assert(value_digest_equal(&da, &db), "order %u", s);
    }
}

Test(value_digest, a_set_with_one_member_changed_dropped_or_doubled_differs)
{
    make_elems();
    int a[N + 1];
    shuffle(a, N, 5);
    struct value_digest ref, d;
    digest_set(&ref, a, N);

    digest_set(&d, a, N - 1); /* one dropped */
    cr_assert_not(value_digest_equal(&ref, &d));

    a[N] = a[0]; /* one seen twice: SCAN's duplicate */
    digest_set(&d, a, N + 1);
    cr_assert_not(value_digest_equal(&ref, &d));
    cr_assert_eq(d.count, N + 1);

    /* The same number of elements, one member changed by one byte. */
    value_digest_init(&d, 3, false);
    for (int i = 0; i < N; i++) {
        char m[24];
        snprintf(m, sizeof(m), "%s", elems[a[i]]);
        if (i == N / 2)
            m[0] ^= 1;
        value_digest_add(&d, value_digest_bytes(m, strlen(m)));
    }
    cr_assert_not(value_digest_equal(&ref, &d));
}

Test(value_digest, two_equal_duplicates_do_not_cancel_out)
{
    /* XOR would make {x, x, y} look like {y}; sums do not. */
    struct value_digest d1, d2;
    value_digest_init(&d1, 1, false);
    value_digest_init(&d2, 1, false);
    uint64_t x = value_digest_bytes("x", 1), y = value_digest_bytes("y", 1);
    value_digest_add(&d1, x);
    value_digest_add(&d1, x);
    value_digest_add(&d1, y);
    value_digest_add(&d2, y);
    d2.count = 3; /* even with the count forged equal */
    cr_assert_not(value_digest_equal(&d1, &d2));
}

Test(value_digest, a_list_digest_depends_on_the_order)
{
    make_elems();
    struct value_digest d1, d2;
    value_digest_init(&d1, 2, true);
    value_digest_init(&d2, 2, true);
    for (int i = 0; i < N; i++) {
        int j = i == 10 ? 11 : i == 11 ? 10 : i; /* two neighbours swapped */
        value_digest_add(&d1, value_digest_bytes(elems[i], strlen(elems[i])));
        value_digest_add(&d2, value_digest_bytes(elems[j], strlen(elems[j])));
    }
    cr_assert_not(value_digest_equal(&d1, &d2));

    struct value_digest d3;
    value_digest_init(&d3, 2, true);
    for (int i = 0; i < N; i++)
        value_digest_add(&d3, value_digest_bytes(elems[i], strlen(elems[i])));
    cr_assert(value_digest_equal(&d1, &d3));
}

Test(value_digest, a_hash_pairs_fields_with_their_values)
{
    /* {a:1, b:2} against {a:2, b:1}: the same fields and values, paired
     * differently; and the boundary between field and value matters. */
    struct value_digest d1, d2;
    value_digest_init(&d1, 4, false);
    value_digest_init(&d2, 4, false);
    value_digest_add(&d1, value_digest_pair("a", 1, "1", 1));
    value_digest_add(&d1, value_digest_pair("b", 1, "2", 1));
    value_digest_add(&d2, value_digest_pair("b", 1, "1", 1));
    value_digest_add(&d2, value_digest_pair("a", 1, "2", 1));
    cr_assert_not(value_digest_equal(&d1, &d2));
    cr_assert_neq(value_digest_pair("ab", 2, "c", 1), value_digest_pair("a", 1, "bc", 2));
    /* in the other order: equal */
    value_digest_init(&d2, 4, false);
    value_digest_add(&d2, value_digest_pair("b", 1, "2", 1));
    value_digest_add(&d2, value_digest_pair("a", 1, "1", 1));
    cr_assert(value_digest_equal(&d1, &d2));
}

Test(value_digest, a_score_is_hashed_as_its_number)
{
    uint64_t h1, h2, h3;
    cr_assert(value_digest_scored("m", 1, "1.5", 3, &h1));
    cr_assert(value_digest_scored("m", 1, "1.50", 4, &h2));
    cr_assert_eq(h1, h2);
    cr_assert(value_digest_scored("m", 1, "1.25", 4, &h3));
    cr_assert_neq(h1, h3);
    cr_assert(value_digest_scored("m", 1, "inf", 3, &h1));
    cr_assert(value_digest_scored("m", 1, "-inf", 4, &h2));
    cr_assert_neq(h1, h2);
    cr_assert_not(value_digest_scored("m", 1, "abc", 3, &h1));
    cr_assert(value_digest_scored("n", 1, "1.5", 3, &h3));
    cr_assert(value_digest_scored("m", 1, "1.5", 3, &h2));
    cr_assert_neq(h2, h3);
}

Test(value_digest, the_hash_reads_every_byte_at_every_length)
{
    /* Flipping any one bit of inputs from 0 to 100 bytes changes the hash;
     * the length alone does too (zeros of two lengths). */
    unsigned char buf[100];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(buf); len++) {
        uint64_t h = value_digest_hash(buf, len, 9);
        for (size_t i = 0; i < len; i++)
            for (int bit = 0; bit < 8; bit++) {
                buf[i] ^= (unsigned char)(1 << bit);
                cr_assert_neq(value_digest_hash(buf, len, 9), h, "len %zu byte %zu bit %d", len, i,
                              bit);
                buf[i] ^= (unsigned char)(1 << bit);
            }
        cr_assert_neq(value_digest_hash(buf, len, 10), h, "seed, len %zu", len);
    }
    unsigned char zeros[32] = {0};
    for (size_t len = 0; len < 31; len++)
        cr_assert_neq(value_digest_hash(zeros, len, 0), value_digest_hash(zeros, len + 1, 0));
}

Test(value_digest, the_hash_is_the_same_on_every_machine)
{
    /* Pinned values: a digest computed on one machine compares with one
     * computed on another only if these never change. */
    uint64_t h0 = value_digest_hash("", 0, 0);
    uint64_t h1 = value_digest_hash("hello", 5, 0);
    uint64_t h2 = value_digest_hash("the quick brown fox jumps over the lazy dog", 43, 0);
    cr_assert_eq(h0, 0x409638ee2bde459ULL);
    cr_assert_eq(h1, 0xe24bbd9f93f532dULL);
    cr_assert_eq(h2, 0x5326b3568cf2e35ULL);
}
