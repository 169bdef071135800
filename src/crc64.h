/* crc64.h - the CRC64 that Redis puts at the end of RDB files and DUMP payloads.
 *
 * CRC-64/Jones as Redis computes it: polynomial 0xad93d23594c935a9, reflected
 * input and output (0x95ac9329ac4bc9b5 in the shift-right form), initial value
 * 0, no final xor. Check value: crc64_update(0, "123456789", 9)
 * == 0xe9c6d914c4b8d9ca.
 */
#ifndef RS_CRC64_H
#define RS_CRC64_H

#include <stddef.h>
#include <stdint.h>

#define CRC64_CHECK_VALUE 0xe9c6d914c4b8d9caULL /* of the 9 bytes "123456789" */

/* Returns the CRC64 of the bytes already summed into crc followed by p[0..len).
 * Start with crc = 0; feeding a buffer in pieces of any size gives the same
 * result as feeding it at once. p may be NULL when len is 0.
 *
 * Threads: any thread may call it at any time, with no set-up (ISA-L picks
 * its code for the CPU on its own). */
uint64_t crc64_update(uint64_t crc, const void *p, size_t len);

#endif
