/* slot.c - CRC16/XMODEM and hash tags, as Redis Cluster computes slots. */
#include "slot.h"

#include <string.h>

/* Table for CRC16/XMODEM, poly 0x1021, built by the loop in slot_crc16's
 * first call would race between workers; it is small enough to compute
 * here at compile time through a constant expression per entry. */
#define C1(c)  (((c)&0x8000) ? (((c) << 1) ^ 0x1021) : ((c) << 1))
#define C8(c)  C1(C1(C1(C1(C1(C1(C1(C1((c) << 8))))))))
#define R(i)   (uint16_t)(C8(i) & 0xffff)
#define R4(i)  R(i), R(i + 1), R(i + 2), R(i + 3)
#define R16(i) R4(i), R4(i + 4), R4(i + 8), R4(i + 12)
#define R64(i) R16(i), R16(i + 16), R16(i + 32), R16(i + 48)
static const uint16_t crc16_table[256] = {R64(0u), R64(64u), R64(128u), R64(192u)};

/* Slicing by 8: crc_table[k][v] is the CRC of byte v followed by k zero
 * bytes, so eight bytes (the first two xored with the CRC so far) fold in
 * with eight independent lookups instead of a chain of eight. Built once
 * before main (a constructor: no thread can race it). */
static uint16_t crc_table[8][256];

__attribute__((constructor)) static void crc_table_init(void)
{
    for (unsigned v = 0; v < 256; v++)
        crc_table[0][v] = crc16_table[v];
    for (unsigned k = 1; k < 8; k++)
        for (unsigned v = 0; v < 256; v++) {
            uint16_t c = crc_table[k - 1][v];
            crc_table[k][v] = (uint16_t)(c << 8) ^ crc16_table[c >> 8];
        }
}

uint16_t slot_crc16(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint16_t crc = 0;
    for (; len >= 8; s += 8, len -= 8)
        crc = crc_table[7][s[0] ^ (crc >> 8)] ^ crc_table[6][s[1] ^ (crc & 0xff)] ^
              crc_table[5][s[2]] ^ crc_table[4][s[3]] ^ crc_table[3][s[4]] ^ crc_table[2][s[5]] ^
              crc_table[1][s[6]] ^ crc_table[0][s[7]];
    for (; len > 0; s++, len--)
        crc = (uint16_t)(crc << 8) ^ crc16_table[((crc >> 8) ^ *s) & 0xff];
    return crc;
}

unsigned slot_of_key(const void *key, size_t len)
{
    const char *k = key;
    const char *open = memchr(k, '{', len);
    if (open != NULL) {
        size_t from = (size_t)(open - k) + 1;
        const char *close = memchr(k + from, '}', len - from);
        if (close != NULL && close > k + from) /* at least one byte between */
            return slot_crc16(k + from, (size_t)(close - (k + from))) & (SLOT_COUNT - 1);
    }
    return slot_crc16(k, len) & (SLOT_COUNT - 1);
}
