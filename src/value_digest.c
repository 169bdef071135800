/* value_digest.c - element hashes and the two ways of combining them (see
 * value_digest.h). */
#include "value_digest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Odd 64-bit constants with about half their bits set (wyhash's). */
#define VD_P0 0xa0761d6478bd642fULL
#define VD_P1 0xe7037ed1a0b428dbULL
#define VD_P2 0x8ebc6af09c88c6e3ULL
#define VD_P3 0x589965cc75374cc3ULL

/* The 128-bit product of a and b, its halves XORed: the mixing step. */
static inline uint64_t vd_fold(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t vd_read64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint64_t vd_read32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

/* A bijective finaliser (murmur3's fmix64): the second lane of a sum. */
static inline uint64_t vd_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t value_digest_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t a, b;
    seed ^= vd_fold(seed ^ VD_P0, VD_P1);
    if (len <= 16) {
        if (len >= 4) {
            a = (vd_read32(p) << 32) | vd_read32(p + ((len >> 3) << 2));
            b = (vd_read32(p + len - 4) << 32) | vd_read32(p + len - 4 - ((len >> 3) << 2));
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;
        while (i > 16) {
            seed = vd_fold(vd_read64(p) ^ VD_P1, vd_read64(p + 8) ^ seed);
            p += 16;
            i -= 16;
        }
        a = vd_read64(p + i - 16);
        b = vd_read64(p + i - 8);
    }
    a ^= VD_P1;
    b ^= seed;
    __uint128_t r = (__uint128_t)a * b;
    a = (uint64_t)r;
    b = (uint64_t)(r >> 64);
    return vd_fold(a ^ VD_P0 ^ (uint64_t)len, b ^ VD_P1);
}

void value_digest_init(struct value_digest *d, uint64_t seed, bool is_ordered)
{
    d->a = vd_mix(seed ^ VD_P2);
    d->b = vd_mix(seed ^ VD_P3);
    d->count = 0;
    d->is_ordered = is_ordered;
}

void value_digest_add(struct value_digest *d, uint64_t h)
{
    if (d->is_ordered) {
        d->a = vd_fold(d->a ^ h, VD_P2);
        d->b = vd_fold(d->b + h, VD_P3);
    } else {
        d->a += h;
        d->b += vd_mix(h ^ VD_P0);
    }
    d->count++;
}

uint64_t value_digest_bytes(const void *p, size_t len)
{
    return value_digest_hash(p, len, VD_P0);
}

uint64_t value_digest_pair(const void *field, size_t field_len, const void *value, size_t value_len)
{
    /* The value hashed with the field's hash as its seed: ("ab","c") and
     * ("a","bc") differ. */
    return value_digest_hash(value, value_len, value_digest_hash(field, field_len, VD_P1));
}

bool value_digest_scored(const void *member, size_t member_len, const char *score, size_t score_len,
                         uint64_t *h)
{
    char buf[64];
    uint64_t m = value_digest_hash(member, member_len, VD_P2);
    if (score_len == 0 || score_len >= sizeof(buf)) {
        *h = value_digest_hash(score, score_len, m);
        return false;
    }
    memcpy(buf, score, score_len);
    buf[score_len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + score_len || isnan(v)) {
        *h = value_digest_hash(score, score_len, m);
        return false;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    *h = vd_fold(m ^ VD_P3, bits ^ VD_P0);
    return true;
}
