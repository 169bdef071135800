/* rdb_blob.h - the compact encodings that RDB values carry inside a string:
 * ziplist, listpack, intset and zipmap.
 *
 * Each is read through an iterator over a blob that is wholly in memory.
 * The iterators check every bound before they read (a corrupt blob is an
 * error, never an out-of-bounds read), the way Redis's deep integrity check
 * does: header sizes, entry encodings, back-lengths, the terminator, entry
 * counts. On error `why` says what was wrong and `at` where, as an offset
 * into the blob.
 */
#ifndef RS_RDB_BLOB_H
#define RS_RDB_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One entry: either a byte string or an integer. */
struct rdb_blob_entry {
    bool is_int;
    int64_t ival;
    const uint8_t *p; /* bytes when !is_int */
    size_t len;
};

/* Returns 1 and an entry, 0 at the end, -1 on corruption (why/at set). */
enum { RDB_BLOB_END = 0, RDB_BLOB_ENTRY = 1, RDB_BLOB_BAD = -1 };

struct rdb_blob_iter {
    const uint8_t *base;
    size_t len;
    size_t pos;
    uint64_t index;     /* entries returned so far */
    uint64_t declared;  /* the count the header declares, or UINT64_MAX when unknown */
    size_t prev_len;    /* ziplist: the previous entry's size; intset: element width */
    int kind;           /* enum rdb_blob_kind */
    int zipmap_phase;   /* zipmap: 0 before a key, 1 before a value */
    size_t zipmap_free; /* zipmap: free bytes after the current value */
    int64_t prev_int;   /* intset: the previous element (they must ascend) */
    char why[96];
    size_t at;
};

enum rdb_blob_kind {
    RDB_BLOB_ZIPLIST = 1,
    RDB_BLOB_LISTPACK,
    RDB_BLOB_INTSET,
    RDB_BLOB_ZIPMAP,
};

/* Names a kind: "ziplist", "listpack", "intset", "zipmap". */
const char *rdb_blob_kind_name(int kind);

/* Starts iterating blob[0..len) as `kind`, after checking its header.
 * Returns 0, or -1 with it->why / it->at set. The blob must outlive the
 * iterator. */
int rdb_blob_iter_init(struct rdb_blob_iter *it, int kind, const void *blob, size_t len);

/* The next entry (RDB_BLOB_ENTRY), the end (RDB_BLOB_END: the terminator
 * and declared counts were checked) or RDB_BLOB_BAD. */
int rdb_blob_iter_next(struct rdb_blob_iter *it, struct rdb_blob_entry *e);

/* Writes an integer entry as decimal text into tmp (at least 21 bytes) and
 * returns its length; for a string entry returns e->len and leaves tmp alone. */
size_t rdb_blob_entry_text(const struct rdb_blob_entry *e, char *tmp, const uint8_t **out);

/* Reads an entry as a 64-bit integer (an integer entry, or a string holding
 * the canonical decimal form of one). Returns false if it is not one. */
bool rdb_blob_entry_int(const struct rdb_blob_entry *e, int64_t *v);

/* Reads an entry as a double: integers exactly, strings with strtod over the
 * whole string. Returns false if it is not a number. */
bool rdb_blob_entry_double(const struct rdb_blob_entry *e, double *v);

#endif
