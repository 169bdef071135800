/* crc64.c - CRC-64/Jones (Redis's RDB checksum), slicing-by-8.
 *
 * Slicing-by-8 consumes eight input bytes per step with eight table lookups
 * instead of eight dependent shift/lookup rounds. table[0] is the classic
 * byte-at-a-time table; table[k][b] is the CRC of byte b followed by k zero
 * bytes, so the eight lookups of one step can be xored together.
 */
#include "crc64.h"

#include <pthread.h>
#include <string.h>

/* The Jones polynomial is 0xad93d23594c935a9; the CRC is reflected (bytes are
 * consumed least significant bit first), so the shift-right loop uses the
 * polynomial's bit reversal. */
#define CRC64_POLY_REFLECTED 0x95ac9329ac4bc9b5ULL

static uint64_t crc64_table[8][256];
static pthread_once_t crc64_table_once = PTHREAD_ONCE_INIT;

static void crc64_build_tables(void)
{
    for (unsigned b = 0; b < 256; b++) {
        uint64_t crc = b;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ CRC64_POLY_REFLECTED : crc >> 1;
        crc64_table[0][b] = crc;
    }
    for (unsigned b = 0; b < 256; b++) {
        for (int k = 1; k < 8; k++) {
            uint64_t prev = crc64_table[k - 1][b];
            crc64_table[k][b] = (prev >> 8) ^ crc64_table[0][prev & 0xff];
        }
    }
}

/* Reads eight bytes as a little-endian number, whatever the host order and
 * alignment: the reflected CRC consumes the lowest-addressed byte first. */
static inline uint64_t crc64_load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint64_t crc64_update(uint64_t crc, const void *p, size_t len)
{
    const unsigned char *s = p;
    /* pthread_once orders the table writes before every caller's reads. */
    pthread_once(&crc64_table_once, crc64_build_tables);

    while (len >= 8) {
        crc ^= crc64_load_le64(s);
        crc = crc64_table[7][crc & 0xff] ^ crc64_table[6][(crc >> 8) & 0xff] ^
              crc64_table[5][(crc >> 16) & 0xff] ^ crc64_table[4][(crc >> 24) & 0xff] ^
              crc64_table[3][(crc >> 32) & 0xff] ^ crc64_table[2][(crc >> 40) & 0xff] ^
              crc64_table[1][(crc >> 48) & 0xff] ^ crc64_table[0][crc >> 56];
        s += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = crc64_table[0][(crc ^ *s) & 0xff] ^ (crc >> 8);
        s++;
        len--;
    }
    return crc;
}
