/* spill.h - where the source's bytes wait when the destination is slower.
 *
 * The source drops a replica whose output buffer overflows, which costs a
 * full resync; so the worker that owns the source keeps reading at full
 * speed and parks what its producer cannot take yet here: in memory up to a
 * budget, then in a file, always in order (a FIFO of bytes).
 *
 *   push --> [memory chunks, oldest first] [file: newer bytes]  --> peek/consume
 *
 * Once bytes go to the file, every later push goes there too until the file
 * is read to its end (then it is truncated and memory is used again), so the
 * order never changes. The file is unlinked as soon as it is made.
 */
#ifndef RS_SPILL_H
#define RS_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "rs_error.h"

struct spill;

/* dir: where the file goes (NULL: $TMPDIR or /tmp); max_memory: bytes held
 * in memory before the file is used. */
struct spill *spill_new(const char *dir, size_t max_memory);
void spill_free(struct spill *s);

/* Appends n bytes. Returns 0, or -errno with err set (the file could not be
 * made or written: the job cannot keep its order, so it must stop). */
int spill_push(struct spill *s, const void *p, size_t n, struct rs_error *err);

/* The oldest waiting bytes, contiguous (up to a chunk): their count, 0 when
 * empty, or -errno on a read error. *p stays valid until spill_consume. */
long spill_peek(struct spill *s, const uint8_t **p, struct rs_error *err);

/* Drops the first n bytes of what spill_peek gave. */
void spill_consume(struct spill *s, size_t n);

/* Bytes waiting, and how many of them are in the file. */
uint64_t spill_pending(const struct spill *s);
uint64_t spill_file_pending(const struct spill *s);

/* The most bytes that ever waited in the file (for the report). */
uint64_t spill_file_peak(const struct spill *s);

#endif
