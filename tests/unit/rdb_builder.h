/* rdb_builder.h - a test-only writer of RDB files and of the blobs inside them.
 *
 * Tests build their inputs byte by byte from the format (../shared/PROTOCOL.md
 * §2, Redis rdb.c, ziplist.c, listpack.c, intset.c, zipmap.c, t_stream.c), not
 * with the decoder's own code, so a misreading of the format in the decoder
 * shows up as a failing test instead of agreeing with itself.
 *
 * A struct rdb_builder is a growable byte buffer; every writer appends to it
 * and aborts on out of memory. The blob builders (ziplist, listpack, zipmap,
 * stream node) collect entries and then write the finished blob into a
 * struct rdb_builder, which a test wraps in an RDB string with
 * rdb_builder_str_blob().
 */
#ifndef RS_TEST_RDB_BUILDER_H
#define RS_TEST_RDB_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rdb_builder {
    uint8_t *p;
    size_t len;
    size_t cap;
};

void rdb_builder_init(struct rdb_builder *b);
void rdb_builder_deinit(struct rdb_builder *b);
void rdb_builder_bytes(struct rdb_builder *b, const void *p, size_t n);
void rdb_builder_byte(struct rdb_builder *b, uint8_t c);
void rdb_builder_fill(struct rdb_builder *b, uint8_t c, size_t n);
void rdb_builder_u16le(struct rdb_builder *b, uint16_t v);
void rdb_builder_u24le(struct rdb_builder *b, uint32_t v);
void rdb_builder_u32le(struct rdb_builder *b, uint32_t v);
void rdb_builder_u64le(struct rdb_builder *b, uint64_t v);
void rdb_builder_u32be(struct rdb_builder *b, uint32_t v);
void rdb_builder_u64be(struct rdb_builder *b, uint64_t v);
/* Overwrites 4 bytes at off with v, little-endian. */
void rdb_builder_patch_u32le(struct rdb_builder *b, size_t off, uint32_t v);

/* CRC64 Jones (reflected, poly 0xad93d23594c935a9, init 0, no final xor), the
 * one Redis puts after the EOF opcode and in DUMP payloads. */
uint64_t rdb_crc64(uint64_t crc, const void *p, size_t n);

/* ---- The file ---------------------------------------------------------- */

/* "REDIS" + 4 digits. */
void rdb_builder_header(struct rdb_builder *b, int version);
/* "VALKEY" + 3 digits. */
void rdb_builder_header_valkey(struct rdb_builder *b, int version);

/* Length encodings, by their width in bits. */
enum {
    RDB_BUILDER_LEN_AUTO = 0,
    RDB_BUILDER_LEN_6 = 6,
    RDB_BUILDER_LEN_14 = 14,
    RDB_BUILDER_LEN_32 = 32,
    RDB_BUILDER_LEN_64 = 64,
};

/* A length in the narrowest encoding that holds n. */
void rdb_builder_len(struct rdb_builder *b, uint64_t n);
/* A length in the given encoding (which may be wider than needed). */
void rdb_builder_len_as(struct rdb_builder *b, uint64_t n, int width);

/* A raw string: length, bytes. */
void rdb_builder_str(struct rdb_builder *b, const void *p, size_t n);
void rdb_builder_cstr(struct rdb_builder *b, const char *s);
/* A raw string whose length is written in the given encoding. */
void rdb_builder_str_len_as(struct rdb_builder *b, const void *p, size_t n, int width);
/* A string that holds a blob built by one of the blob builders. */
void rdb_builder_str_blob(struct rdb_builder *b, const struct rdb_builder *blob);
/* An integer-encoded string: bits 8, 16 or 32 (0xC0, 0xC1, 0xC2), little-endian. */
void rdb_builder_str_int(struct rdb_builder *b, int32_t v, int bits);
/* An LZF string (0xC3, compressed length, uncompressed length, data), compressed
 * with liblzf. Aborts if the data does not compress. Returns the compressed length. */
size_t rdb_builder_str_lzf(struct rdb_builder *b, const void *p, size_t n);
/* An LZF string with the given compressed bytes and a claimed uncompressed length. */
void rdb_builder_str_lzf_raw(struct rdb_builder *b, const void *comp, size_t clen, uint64_t ulen);
/* Compresses p[0..n) with liblzf into out (appended). Returns the compressed length. */
size_t rdb_lzf_compress(struct rdb_builder *out, const void *p, size_t n);

/* A value type byte then the key as a raw string. */
void rdb_builder_key(struct rdb_builder *b, uint8_t type, const char *key);

/* Opcodes. */
void rdb_builder_aux(struct rdb_builder *b, const char *name, const char *value);
void rdb_builder_selectdb(struct rdb_builder *b, uint64_t db);
void rdb_builder_resizedb(struct rdb_builder *b, uint64_t db_size, uint64_t expires_size);
void rdb_builder_expire_s(struct rdb_builder *b, uint32_t s);   /* 0xFD, 4 bytes LE */
void rdb_builder_expire_ms(struct rdb_builder *b, uint64_t ms); /* 0xFC, 8 bytes LE */
void rdb_builder_idle(struct rdb_builder *b, uint64_t s);       /* 0xF8, length */
void rdb_builder_freq(struct rdb_builder *b, uint8_t freq);     /* 0xF9, one byte */
void rdb_builder_function(struct rdb_builder *b, const char *code);
void rdb_builder_slot_info(struct rdb_builder *b, uint64_t slot, uint64_t size, uint64_t expires);
/* 0xF7, module id, the UINT opcode, when; module values and rdb_builder_module_eof follow. */
void rdb_builder_module_aux(struct rdb_builder *b, const char *name9, unsigned encver,
                            uint64_t when);
/* 0xFF then the CRC64 of every byte so far, little-endian. */
void rdb_builder_eof(struct rdb_builder *b);
/* 0xFF then eight zero bytes (checksums off). */
void rdb_builder_eof_zero_crc(struct rdb_builder *b);
/* 0xFF alone (versions before 5). */
void rdb_builder_eof_no_crc(struct rdb_builder *b);

/* An 8-byte little-endian millisecond time (rdbSaveMillisecondTime). */
void rdb_builder_ms(struct rdb_builder *b, int64_t ms);
/* An 8-byte little-endian binary double (ZSET_2 scores, module doubles). */
void rdb_builder_double(struct rdb_builder *b, double d);
/* A type-3 zset score: one length byte then ASCII, or 253 NaN, 254 +inf, 255 -inf. */
void rdb_builder_score_text(struct rdb_builder *b, const char *text);
void rdb_builder_score_marker(struct rdb_builder *b, uint8_t marker);

/* ---- Modules ------------------------------------------------------------ */

/* The module type id of a 9-character name and an encoding version
 * (module.c moduleTypeEncodeId). */
uint64_t rdb_module_id(const char *name9, unsigned encver);
/* Module values: the opcode as a length, then the value. */
void rdb_builder_module_sint(struct rdb_builder *b, int64_t v);
void rdb_builder_module_uint(struct rdb_builder *b, uint64_t v);
void rdb_builder_module_float(struct rdb_builder *b, float v);
void rdb_builder_module_double(struct rdb_builder *b, double v);
void rdb_builder_module_string(struct rdb_builder *b, const void *p, size_t n);
void rdb_builder_module_eof(struct rdb_builder *b);

/* ---- Ziplist (ziplist.c) ------------------------------------------------ */

struct ziplist_builder {
    struct rdb_builder body; /* the entries */
    size_t count;
    size_t prev_len;  /* the whole length of the previous entry */
    size_t tail;      /* offset of the last entry from the ziplist's start */
    bool big_prevlen; /* write the next entry's prevlen in 5 bytes even if small */
};

/* Ziplist entry encodings, as the first encoding byte. */
enum {
    ZIPLIST_STR_6 = 0x00,
    ZIPLIST_STR_14 = 0x40,
    ZIPLIST_STR_32 = 0x80,
    ZIPLIST_INT_16 = 0xC0,
    ZIPLIST_INT_32 = 0xD0,
    ZIPLIST_INT_64 = 0xE0,
    ZIPLIST_INT_24 = 0xF0,
    ZIPLIST_INT_8 = 0xFE,
    ZIPLIST_INT_IMM = 0xF1, /* 0xF1..0xFD: the values 0..12 */
};

void ziplist_builder_init(struct ziplist_builder *z);
void ziplist_builder_deinit(struct ziplist_builder *z);
void ziplist_builder_add_str(struct ziplist_builder *z, const void *p, size_t n);
void ziplist_builder_add_cstr(struct ziplist_builder *z, const char *s);
/* A string entry with a forced header: ZIPLIST_STR_6, _14 or _32. */
void ziplist_builder_add_str_as(struct ziplist_builder *z, const void *p, size_t n, int enc);
/* An integer in the narrowest encoding (immediate, int8, int16, int24, int32, int64). */
void ziplist_builder_add_int(struct ziplist_builder *z, int64_t v);
/* An integer in a forced encoding (ZIPLIST_INT_*; ZIPLIST_INT_IMM for 0..12). */
void ziplist_builder_add_int_as(struct ziplist_builder *z, int64_t v, int enc);
/* Appends zlbytes, zltail, zllen, the entries and 0xFF to out. */
void ziplist_builder_finish(struct ziplist_builder *z, struct rdb_builder *out);

/* ---- Listpack (listpack.c) ---------------------------------------------- */

struct listpack_builder {
    struct rdb_builder body;
    size_t count;
};

enum {
    LISTPACK_UINT_7 = 0x00,
    LISTPACK_STR_6 = 0x80,
    LISTPACK_INT_13 = 0xC0,
    LISTPACK_STR_12 = 0xE0,
    LISTPACK_STR_32 = 0xF0,
    LISTPACK_INT_16 = 0xF1,
    LISTPACK_INT_24 = 0xF2,
    LISTPACK_INT_32 = 0xF3,
    LISTPACK_INT_64 = 0xF4,
};

void listpack_builder_init(struct listpack_builder *l);
void listpack_builder_deinit(struct listpack_builder *l);
void listpack_builder_add_str(struct listpack_builder *l, const void *p, size_t n);
void listpack_builder_add_cstr(struct listpack_builder *l, const char *s);
/* A string entry with a forced header: LISTPACK_STR_6, _12 or _32. */
void listpack_builder_add_str_as(struct listpack_builder *l, const void *p, size_t n, int enc);
/* An integer in the narrowest encoding (7-bit uint, 13-bit, 16, 24, 32, 64). */
void listpack_builder_add_int(struct listpack_builder *l, int64_t v);
void listpack_builder_add_int_as(struct listpack_builder *l, int64_t v, int enc);
/* Appends total bytes, count (65535 when it does not fit), the entries and 0xFF. */
void listpack_builder_finish(struct listpack_builder *l, struct rdb_builder *out);
/* The length of a listpack backlen field for an entry of n bytes (1 to 5). */
size_t listpack_backlen_size(size_t n);

/* ---- Intset (intset.c) -------------------------------------------------- */

/* Appends an intset of width 2, 4 or 8 bytes holding v[0..n) as given (the
 * caller sorts them). */
void intset_build(struct rdb_builder *out, uint32_t width, const int64_t *v, size_t n);

/* ---- Zipmap (zipmap.c) -------------------------------------------------- */

struct zipmap_builder {
    struct rdb_builder body;
    size_t count;
};

void zipmap_builder_init(struct zipmap_builder *z);
void zipmap_builder_deinit(struct zipmap_builder *z);
/* key, value, then `free` unused bytes after the value. */
void zipmap_builder_add(struct zipmap_builder *z, const void *k, size_t klen, const void *v,
                        size_t vlen, uint8_t free_bytes);
/* Appends the count byte (254 when count_unknown or count >= 254), entries, 0xFF. */
void zipmap_builder_finish(struct zipmap_builder *z, struct rdb_builder *out, bool count_unknown);

/* ---- Stream listpack nodes (t_stream.c) --------------------------------- */

struct stream_node_builder {
    struct listpack_builder lp;
    uint64_t master_ms;
    uint64_t master_seq;
    size_t master_nfields;
};

/* Starts a node whose master entry has the given id (the node key), count of
 * live and deleted entries, and master fields. */
void stream_node_builder_init(struct stream_node_builder *s, uint64_t ms, uint64_t seq,
                              int64_t count, int64_t deleted, size_t nfields,
                              const char *const *fields);
void stream_node_builder_deinit(struct stream_node_builder *s);
/* Fields and values that read as integers are written as listpack integers,
 * as Redis's lpAppend does. */
/* An entry. With RDB_STREAM_ITEM_FLAG_SAMEFIELDS in flags, fv holds the
 * master_nfields values only; otherwise nfields field, value pairs. */
void stream_node_builder_add(struct stream_node_builder *s, int flags, uint64_t ms, uint64_t seq,
                             size_t nfields, const char *const *fv);
/* Appends the node's 16-byte key string and its listpack string to the RDB. */
void stream_node_builder_write(struct stream_node_builder *s, struct rdb_builder *rdb);
/* A 16-byte raw stream id, ms and seq big-endian (PEL entries). */
void rdb_builder_stream_id_raw(struct rdb_builder *b, uint64_t ms, uint64_t seq);

#endif
