/* rdb_decoder.h - a push-driven, resumable decoder of RDB snapshots.
 *
 * The decoder is fed bytes in pieces of any size (one byte and up) and calls
 * the consumer back with events as soon as they are complete. It reads every
 * RDB version from 1 to 12 and Valkey's (VALKEY magic, version 80), checks the
 * CRC64 trailer, and holds a bounded amount of memory whatever the size of a
 * value: a string value past `raw_max` comes in pieces, a collection in chunks
 * of items; only one element (or one compact node: ziplist, listpack, intset)
 * is ever held whole, up to `element_max`.
 *
 * The events of one key, in order:
 *
 *     RDB_EV_KEY_BEGIN           db, key, type, expiry, LRU/LFU hints
 *     RDB_EV_ITEMS  (0 or more)  the value's items, in file order
 *     RDB_EV_KEY_END             the raw value bytes when they were kept
 *
 * For a given input, the sequence of events (and the chunking of items and
 * string pieces) is the same however the input is split between feeds.
 *
 * Threads: a decoder belongs to the thread that feeds it.
 */
#ifndef RS_RDB_DECODER_H
#define RS_RDB_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_error.h"
#include "slice.h"

/* What a value is, whatever its encoding. */
enum rdb_kind {
    RDB_KIND_STRING = 0,
    RDB_KIND_LIST,
    RDB_KIND_SET,
    RDB_KIND_ZSET,
    RDB_KIND_HASH,
    RDB_KIND_STREAM,
    RDB_KIND_MODULE,
};

/* Names a kind: "string", "list", "set", "zset", "hash", "stream", "module". */
const char *rdb_kind_name(int kind);

/* Names an RDB value type byte ("list-quicklist-2", ...) as a file with the
 * given magic means it (type 22 differs between REDIS and VALKEY files), or
 * NULL if unknown. */
const char *rdb_type_name(int rdb_type, bool is_valkey);

struct rdb_stream_id {
    uint64_t ms;
    uint64_t seq;
};

/* The key whose events are being delivered. Valid until RDB_EV_KEY_END returns. */
struct rdb_key_info {
    uint64_t db;
    struct rs_slice key;
    uint8_t rdb_type;      /* the type byte as written (it names the encoding) */
    uint8_t kind;          /* enum rdb_kind */
    const char *encoding;  /* the type byte's name ("list-quicklist-2"), magic-aware */
    int64_t expire_ms;     /* absolute Unix time in ms, or -1 for none */
    int64_t lru_idle_s;    /* IDLE hint, or -1 */
    int lfu_freq;          /* FREQ hint, or -1 */
    uint64_t string_len;   /* RDB_KIND_STRING: the value's length in bytes */
    uint64_t offset;       /* file offset of the key's first byte (its first opcode) */
    uint64_t value_offset; /* file offset of the value's first byte (after the key) */
};

enum rdb_item_kind {
    RDB_ITEM_STRING_PART = 0,     /* a: the next piece of a string value */
    RDB_ITEM_ELEMENT,             /* a: a list element or a set member */
    RDB_ITEM_ZSET,                /* a: member; score */
    RDB_ITEM_HASH,                /* a: field; b: value; ttl_ms: field expiry (absolute ms) or -1 */
    RDB_ITEM_STREAM_ENTRY,        /* entry: id and its field/value pairs */
    RDB_ITEM_STREAM_META,         /* meta: length, ids, entries_added (after all entries) */
    RDB_ITEM_STREAM_GROUP,        /* a: group name; group: last delivered id, entries_read */
    RDB_ITEM_STREAM_PEL,          /* pel: one pending entry of the last group */
    RDB_ITEM_STREAM_CONSUMER,     /* a: consumer name; consumer: seen and active times */
    RDB_ITEM_STREAM_CONSUMER_PEL, /* pel.id: one entry owned by the last consumer */
    RDB_ITEM_MODULE,              /* module: the module id; the value itself is KEY_END's raw */
};

struct rdb_item {
    uint8_t kind; /* enum rdb_item_kind */
    struct rs_slice a;
    struct rs_slice b;
    double score;
    int64_t ttl_ms;
    union {
        struct {
            struct rdb_stream_id id;
            uint32_t nfv; /* number of slices in fv: field, value, field, value ... */
            bool deleted; /* a tombstone: XDELed, still in its node (pending entries may name it) */
            const struct rs_slice *fv;
        } entry;
        struct {
            uint64_t length;
            struct rdb_stream_id last_id;
            struct rdb_stream_id first_id;       /* {0,0} before stream type 19 */
            struct rdb_stream_id max_deleted_id; /* {0,0} before stream type 19 */
            uint64_t entries_added;              /* 0 before stream type 19 */
            bool has_v2_fields;                  /* type 19 or 21: the three above are real */
        } meta;
        struct {
            struct rdb_stream_id last_id;
            int64_t entries_read; /* -1 when unknown (stream type 15) */
        } group;
        struct {
            struct rdb_stream_id id;
            int64_t delivery_time_ms; /* 0 for a consumer's PEL entry */
            uint64_t delivery_count;  /* 0 for a consumer's PEL entry */
        } pel;
        struct {
            int64_t seen_time_ms;
            int64_t active_time_ms; /* -1 before stream type 21 */
        } consumer;
        struct {
            uint64_t module_id;
            char name[10]; /* the 9-character module type name, NUL-terminated */
            unsigned encver;
        } module;
    };
};

enum rdb_event_type {
    RDB_EV_HEADER = 0, /* header: version, is_valkey */
    RDB_EV_AUX,        /* aux: name, value (integer values as decimal text) */
    RDB_EV_SELECTDB,   /* select.db */
    RDB_EV_RESIZEDB,   /* resize: db_size, expires_size */
    RDB_EV_SLOT_INFO,  /* slot_info: slot, slot_size, expires_slot_size */
    RDB_EV_FUNCTION,   /* function.code: a library's source, for FUNCTION LOAD */
    RDB_EV_MODULE_AUX, /* module_aux: module id and name, when; raw: its bytes if kept */
    RDB_EV_KEY_BEGIN,  /* key */
    RDB_EV_ITEMS,      /* key, items[0..count) */
    RDB_EV_KEY_END,    /* key, raw (when has_raw), encoded_size, is_empty */
    RDB_EV_END,        /* end: the EOF opcode and checksum were read */
};

struct rdb_event {
    int type;        /* enum rdb_event_type */
    uint64_t offset; /* file offset at which the record began */
    const struct rdb_key_info *key;
    union {
        struct {
            int version;
            bool is_valkey;
        } header;
        struct {
            struct rs_slice name;
            struct rs_slice value;
        } aux;
        struct {
            uint64_t db;
        } select;
        struct {
            uint64_t db_size;
            uint64_t expires_size;
        } resize;
        struct {
            uint64_t slot;
            uint64_t slot_size;
            uint64_t expires_slot_size;
        } slot_info;
        struct {
            struct rs_slice code;
        } function;
        struct {
            uint64_t module_id;
            char name[10];
            uint64_t when;
            struct rs_slice raw;
        } module_aux;
        struct {
            const struct rdb_item *items;
            size_t count;
        } items;
        struct {
            /* The value's bytes exactly as in the file, after the key: with
             * rdb_type in front and the RDB version and CRC64 behind, they are
             * a DUMP payload. Kept when the value's encoded size <= raw_max. */
            struct rs_slice raw;
            bool has_raw;
            uint64_t encoded_size; /* the value's size in the file, in bytes */
            /* An empty list, set, zset or hash: a valid file never holds one
             * and Redis skips it on load; so should the consumer. */
            bool is_empty;
        } key_end;
        struct {
            bool has_checksum; /* version >= 5 and the stored CRC was not all zero */
            uint64_t checksum; /* the stored CRC64 */
        } end;
    };
};

/* Called for every event. Slices in the event stay valid until it returns.
 * Return 0 to go on; any other value stops the decoder, which then returns
 * RS_ERR with code RS_E_CONSUMER (the consumer fills err itself if it wants). */
typedef int (*rdb_event_fn)(void *ctx, const struct rdb_event *ev);

struct rdb_decoder_config {
    size_t raw_max;      /* keep raw value bytes up to this size (0: 512 KiB) */
    size_t chunk_items;  /* most items in one RDB_EV_ITEMS (0: 512) */
    size_t chunk_bytes;  /* most element bytes in one RDB_EV_ITEMS, unless one element is larger
                            (0: 256 KiB) */
    size_t string_piece; /* the size of each piece of a string value past raw_max (0: 64 KiB) */
    size_t element_max;  /* the largest element or compact node held whole (0: 512 MiB) */
    bool skip_checksum;  /* do not verify the CRC64 trailer */
    /* Each list, set, zset, hash, stream or module value comes either as raw
     * bytes (KEY_END has_raw, and no ITEMS) or, when it is larger than
     * raw_max, as ITEMS (and no raw). For a writer that RESTOREs small values
     * and writes big ones as commands. Strings always come as ITEMS. */
    bool raw_or_items;
};

struct rdb_decoder;

/* A decoder that delivers events to fn(ctx, ...). cfg may be NULL for the
 * defaults. Returns NULL when out of memory. */
struct rdb_decoder *rdb_decoder_new(const struct rdb_decoder_config *cfg, rdb_event_fn fn,
                                    void *ctx);
void rdb_decoder_free(struct rdb_decoder *d);

/* Feeds len bytes. Returns RS_OK when all were consumed and more are
 * expected, RS_DONE when the snapshot ended (EOF opcode and checksum; *used
 * then says how many of these bytes belonged to it: the rest, such as a
 * diskless EOF mark or the command stream, is the caller's), or RS_ERR with
 * err filled; after RS_ERR or RS_DONE every later feed returns the same.
 * used may be NULL. */
int rdb_decoder_feed(struct rdb_decoder *d, const void *data, size_t len, size_t *used,
                     struct rs_error *err);

/* Says the input has ended. RS_DONE if the snapshot was complete; otherwise
 * RS_ERR (RS_E_TRUNCATED) naming what was being read. */
int rdb_decoder_finish(struct rdb_decoder *d, struct rs_error *err);

/* Bytes of the snapshot consumed so far (the offset the next byte will have). */
uint64_t rdb_decoder_offset(const struct rdb_decoder *d);

/* The RDB version from the header, or 0 before it was read. */
int rdb_decoder_version(const struct rdb_decoder *d);

/* The most bytes the decoder's buffers held at once: the memory bound in practice. */
size_t rdb_decoder_peak_bytes(const struct rdb_decoder *d);

#endif
