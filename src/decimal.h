/* decimal.h - integers as decimal text, as printf's "%" PRId64 / PRIu64
 * write them, without printf's cost (it showed at ~5 % of a full sync's CPU:
 * every integer-encoded string of a snapshot, every TTL). Header only. */
#ifndef RS_DECIMAL_H
#define RS_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define DECIMAL_MAX 21 /* bytes of the longest: "-9223372036854775808", with no NUL */

/* Writes v's digits at out (room for 20); returns how many. No NUL. */
static inline size_t decimal_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Writes v, with a '-' when negative, at out (room for DECIMAL_MAX); returns
 * how many bytes. No NUL. */
static inline size_t decimal_i64(char *out, int64_t v)
{
    if (v >= 0)
        return decimal_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + decimal_u64(out + 1, 0 - (uint64_t)v); /* INT64_MIN too */
}

#endif
