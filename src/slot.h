/* slot.h - Redis Cluster hash slots: CRC16/XMODEM of the key (or of its hash
 * tag, the bytes between the first '{' and the next '}' when there are any),
 * mod 16384 (../shared/PROTOCOL.md §4). */
#ifndef RS_SLOT_H
#define RS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 16384

/* CRC16/XMODEM (poly 0x1021, init 0) of p[0..len). */
uint16_t slot_crc16(const void *p, size_t len);

/* The cluster slot of a key, hash tags honoured. */
unsigned slot_of_key(const void *key, size_t len);

#endif
