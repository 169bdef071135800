/* value_digest.h - a Redis value digested on ringsync's side, element by
 * element, as `ringsync verify --mode full` reads it in bounded chunks.
 *
 * Two sides hold the same value when their digests are equal; neither side
 * has to hold the value whole, nor list it in the same order:
 *
 *   type          read with                 elements                 combined
 *   string        GETRANGE, fixed chunks    each chunk               in order
 *   list          LRANGE, fixed chunks      each element             in order
 *   stream        XRANGE ... COUNT n        id, then field, value... in order
 *   set           SSCAN                     each member              any order
 *   hash          HSCAN                     field and value, paired  any order
 *   zset          ZSCAN                     member and score bits    any order
 *
 * An element is hashed to 64 bits (value_digest_hash: a multiply-fold hash,
 * wyhash's construction, seeded); a digest keeps two 64-bit lanes over the
 * element hashes and the number of elements:
 *   - in order:  a = fold(a ^ h, K1), b = fold(b + h, K2): a chain, so
 *     swapping two elements changes it;
 *   - any order: a += h, b += mix(h) (mod 2^64): sums, so the order of
 *     SSCAN/HSCAN/ZSCAN replies, which differs between two servers holding
 *     the same set, does not matter. Sums rather than XOR: an element seen
 *     twice (SCAN may return one twice when the table shrinks between two
 *     calls) changes the digest instead of cancelling out, and `count` then
 *     differs from the length, which the caller checks.
 * A difference is missed only when 128 bits of sums collide by chance.
 *
 * Scores are hashed as the bits of the double they parse to, so "1.5" and
 * "1.50" (two servers formatting doubles differently) are one score.
 *
 * Threads: plain values; any thread.
 */
#ifndef RS_VALUE_DIGEST_H
#define RS_VALUE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A digest in progress, caller-owned; value_digest_init makes it empty. */
struct value_digest {
    uint64_t a, b;
    uint64_t count; /* elements added */
    bool is_ordered;
};

/* 64 bits of bytes p[0..len), seeded. The same bytes and seed give the same
 * hash on every machine (bytes are read little-endian). */
uint64_t value_digest_hash(const void *p, size_t len, uint64_t seed);

/* Empties d for a value of the kind named by seed (each type its own, so
 * that a list and a set of the same strings differ), in order or not. */
void value_digest_init(struct value_digest *d, uint64_t seed, bool is_ordered);

/* Adds one element's hash, in order or not as d was made. */
void value_digest_add(struct value_digest *d, uint64_t h);

/* The element hashes of each type, built from value_digest_hash. */
uint64_t value_digest_bytes(const void *p, size_t len);
uint64_t value_digest_pair(const void *field, size_t field_len, const void *value,
                           size_t value_len);
/* A zset member with its score as text ("1.5", "inf", "-3e10"); false when
 * the score is not a number (then *h is the hash of both as bytes). */
bool value_digest_scored(const void *member, size_t member_len, const char *score, size_t score_len,
                         uint64_t *h);

/* Equal digests: the same lanes and the same number of elements. */
static inline bool value_digest_equal(const struct value_digest *x, const struct value_digest *y)
{
    return x->a == y->a && x->b == y->b && x->count == y->count;
}

#endif
