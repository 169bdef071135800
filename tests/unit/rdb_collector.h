/* rdb_collector.h - test-side consumer of decoder events, and the split driver.
 *
 * The collector turns every event into text in two logs:
 *
 *   log     what the file holds: one line per event and per item, strings
 *           joined whole, no offsets, no chunking. Tests compare it with an
 *           expected log written by hand.
 *   chunks  everything the decoder said: event offsets, each RDB_EV_ITEMS
 *           with its count, each string piece, KEY_END's raw bytes and sizes.
 *           Only compared between runs, to check that chunking and offsets do
 *           not depend on how the input was split between feeds.
 *
 * Items log format (one line each; strings quoted, bytes outside printable
 * ASCII as \xNN, '"' and '\\' escaped):
 *
 *   HEADER <version> redis|valkey
 *   AUX "<name>" "<value>"
 *   SELECTDB <db>
 *   RESIZEDB <db_size> <expires_size>
 *   SLOT_INFO <slot> <size> <expires>
 *   FUNCTION "<code>"
 *   MODULE_AUX "<name>" encver=<n> when=<n>
 *   KEY <db> "<key>" <kind> <rdb_type>[ len=<n>][ expire=<ms>][ idle=<s>][ freq=<n>]
 *    S "<the whole string value>"
 *    E "<element>"
 *    Z "<member>" <score %.17g | inf | -inf | nan>
 *    H "<field>" "<value>"[ ttl=<ms>]
 *    X <ms>-<seq>[ deleted] "<f>" "<v>" ...
 *    XMETA len=<n> last=<id>[ first=<id> maxdel=<id> added=<n>]
 *    XGROUP "<name>" last=<id> read=<n>
 *    XPEL <id> time=<ms> count=<n>
 *    XCONSUMER "<name>" seen=<ms> active=<ms>
 *    XCPEL <id>
 *    MODULE "<name>" encver=<n>
 *   END[ empty]
 *   EOF crc|nocrc
 */
#ifndef RS_TEST_RDB_COLLECTOR_H
#define RS_TEST_RDB_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rdb_builder.h"
#include "rdb_decoder.h"

/* What the collector saw of one key. */
struct rdb_key_seen {
    char *key;
    size_t key_len;
    uint64_t db;
    uint8_t rdb_type;
    uint8_t kind;
    int64_t expire_ms;
    uint64_t offset;       /* key->offset */
    uint64_t value_offset; /* key->value_offset */
    uint64_t begin_offset; /* the KEY_BEGIN event's offset */
    bool has_raw;
    uint8_t *raw;
    size_t raw_len;
    uint64_t encoded_size;
    bool is_empty;
    size_t nitems;
};

struct rdb_collector {
    struct rdb_builder log;    /* NUL-terminated text */
    struct rdb_builder chunks; /* NUL-terminated text */
    struct rdb_builder value;  /* the string value being joined */
    struct rdb_key_seen *keys;
    size_t nkeys;
    size_t keys_cap;
    size_t events;
    size_t items;
    long stop_at_event;            /* return non-zero from this event (0-based); -1: never */
    struct rdb_decoder_config cfg; /* with the defaults filled in */
    bool in_key;
    bool is_valkey;
    struct rdb_key_info cur; /* a copy of the current key's info (slices not kept) */
};

void rdb_collector_init(struct rdb_collector *c, const struct rdb_decoder_config *cfg);
void rdb_collector_deinit(struct rdb_collector *c);
/* The rdb_event_fn; ctx is a struct rdb_collector. */
int rdb_collector_event(void *ctx, const struct rdb_event *ev);
/* The items log and the chunks log as C strings. */
const char *rdb_collector_log(struct rdb_collector *c);
const char *rdb_collector_chunks(struct rdb_collector *c);
/* The key seen with this name (the first one), or NULL. */
const struct rdb_key_seen *rdb_collector_key(const struct rdb_collector *c, const char *key);

/* ---- The driver ---------------------------------------------------------- */

enum {
    SPLIT_WHOLE = 1u << 0,        /* one feed */
    SPLIT_ONE_BYTE = 1u << 1,     /* one byte per feed */
    SPLIT_EVERY_OFFSET = 1u << 2, /* two feeds, [0,k) and [k,len), for every k in 0..len */
    SPLIT_ALL = 7u,
};

struct decode_result {
    int rc;              /* the last feed's return */
    int finish_rc;       /* rdb_decoder_finish after the feeds */
    struct rs_error err; /* the feed's error if rc is RS_ERR, else finish's */
    uint64_t used;       /* bytes the decoder took, over all feeds */
    uint64_t end_offset; /* rdb_decoder_offset at the end */
    size_t peak_bytes;   /* rdb_decoder_peak_bytes at the end */
    struct rdb_collector col;
};

/* One run: feeds of `step` bytes (0: whole), or when split_at <= len, the
 * two feeds [0,split_at) and [split_at,len). Then rdb_decoder_finish. Also
 * checks that the state is sticky: one more feed after RS_DONE or RS_ERR
 * returns the same. */
void decode_run(const void *in, size_t len, const struct rdb_decoder_config *cfg, size_t step,
                size_t split_at, long stop_at_event, struct decode_result *r);

/* Runs every mode in `modes` and asserts that each gives the same result
 * code, error code and offset, bytes used and both logs as the whole-input
 * run, which it leaves in *out (decode_result_deinit it). Large inputs are
 * split at a sample of offsets rather than every one. */
void decode_all(const void *in, size_t len, const struct rdb_decoder_config *cfg, unsigned modes,
                struct decode_result *out);

/* decode_all in every mode, asserting RS_DONE from the feeds and from
 * finish, with every byte used. Returns the items log (owned by *out). When
 * RS_WRITE_CORPUS names a directory and the input is under 4 KiB, also writes
 * it there as <test name>[-n].rdb, a seed for the fuzz corpus (not in a test
 * that read a real file with read_testdata: those stay out of the repository). */
const char *decode_expect_done(const void *in, size_t len, const struct rdb_decoder_config *cfg,
                               struct decode_result *out);

/* decode_all in every mode, asserting RS_ERR with the given error code. */
void decode_expect_error(const void *in, size_t len, const struct rdb_decoder_config *cfg, int code,
                         struct decode_result *out);

void decode_result_deinit(struct decode_result *r);

/* Decodes b's bytes (decode_expect_done) and asserts the items log is expected. */
void expect_log(const struct rdb_builder *b, const struct rdb_decoder_config *cfg,
                const char *expected);

/* Reads $RS_TESTDATA/rdb/<name> into b (asserting it exists). */
void read_testdata(struct rdb_builder *b, const char *name);

/* Appends p[0..n) escaped as in the logs. */
void log_escaped(struct rdb_builder *out, const void *p, size_t n);

#endif
