/* fill_sample.h - fills a redis-server with every type and encoding Redis 7.0
 * writes: the sample data set of the integration tests (inspect reads it from
 * a dump.rdb, sync copies it from a live source).
 *
 * What the sample covers (Redis 7.0 in-memory encoding -> RDB type):
 *   strings  int / embstr / raw -> string: ints of 8, 16, 32 bits and wider,
 *            non-canonical ints, LZF-compressible, random binary, 1 MiB random,
 *            an 8 MiB text; a key of all 256 byte values; a 10 kB key
 *   lists    quicklist -> list-quicklist-2: 5 elements, listpack ints and
 *            string lengths at the encoding boundaries, 1000 random binary
 *            elements (raw nodes), 200k elements with list-compress-depth 1
 *            (LZF nodes), PLAIN nodes (DEBUG QUICKLIST-PACKED-THRESHOLD)
 *   sets     intset (16, 32, 64 bits) -> set-intset; hashtable -> set-hashtable
 *            (strings, 1000 ints, 200k members)
 *   zsets    listpack -> zset-listpack; skiplist -> zset-skiplist-2 (> 128
 *            members, or a member > 64 bytes): fractional, negative, huge,
 *            denormal and infinite scores; optionally 200k members
 *   hashes   listpack -> hash-listpack; hashtable -> hash-hashtable (> 512
 *            fields, or a value > 64 bytes); optionally 200k fields
 *   streams  -> stream-listpacks-2: > 100 entries (several nodes), XDEL (of
 *            master entries too), different field sets, XTRIM, all entries
 *            deleted, no entries; groups with PELs of two consumers, XACK,
 *            re-delivery, XCLAIM, a PEL entry whose stream entry was deleted,
 *            a group never read (entries_read null)
 *   expiries far in the future on every type; keys already expired when
 *            saved (active expiry off): in a file, not loaded by Redis
 *   keys in all 16 databases; two function libraries
 *
 * The server must run with `--enable-debug-command yes`. The helpers fail the
 * test (cr_assert) on an error, so call them from a test body.
 */
#ifndef RS_TEST_FILL_SAMPLE_H
#define RS_TEST_FILL_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_fixture.h"
#include "redis_model.h"

#define FILL_SAMPLE_BIG_N         200000
#define FILL_SAMPLE_EIGHT_MIB     ((size_t)8 << 20)
#define FILL_SAMPLE_FAR_FUTURE_MS 4102444800123LL /* 2100-01-01T00:00:00.123Z */
/* Keys the sample sets already expired: expired:str, expired:hash, db3:expired. */
#define FILL_SAMPLE_EXPIRED_KEYS  3
#define FILL_CMD_MAX_ARGS         256

/* The two function libraries the sample loads, in the order the model sorts them. */
extern const char fill_sample_lib_mylib[];
extern const char fill_sample_lib_other[];

struct fill_sample_opts {
    /* Also zset:200k and hash:200k (200k members, fields), so that every
     * collection type has a value far past any "small value" limit. */
    bool has_big_zset_and_hash;
};

/* Fills f (opts may be NULL: the defaults) and waits until the already
 * expired keys have expired. Leaves active expiry off (DEBUG
 * SET-ACTIVE-EXPIRE 0) so that a SAVE writes those keys. */
void fill_sample(struct redis_fixture *f, const struct fill_sample_opts *opts);

/* Fails the test unless m (a model of a filled server) holds the big values
 * with their full sizes and keys in every database: a fill that silently fell
 * short proves less. */
void fill_sample_assert_reached(const struct redis_model *m, const struct fill_sample_opts *opts);

/* ------------------------------------------------- building commands, for more fills */

/* A deterministic byte source (xorshift64*); any non-zero seed. */
struct fill_rng {
    uint64_t s;
};

uint64_t fill_rng_next(struct fill_rng *r);
void fill_rng_fill(struct fill_rng *r, char *buf, size_t len);

/* One command with owned arguments (copied in, freed by fill_cmd_send). */
struct fill_cmd {
    int argc;
    const char *argv[FILL_CMD_MAX_ARGS];
    size_t argvlen[FILL_CMD_MAX_ARGS];
};

void fill_cmd_begin(struct fill_cmd *c, const char *name, const char *key);
void fill_cmd_arg(struct fill_cmd *c, const void *p, size_t len);
void fill_cmd_str(struct fill_cmd *c, const char *s);
void fill_cmd_fmt(struct fill_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the command to p and frees its arguments. */
void fill_cmd_send(struct fill_cmd *c, struct redis_pipeline *p);

/* Adds the arguments of element i to c. */
typedef void (*fill_gen_fn)(struct fill_cmd *c, size_t i, struct fill_rng *r);

/* Sends `name key` + the arguments from gen(i, ...) for i in [0, n), in
 * commands of at most per_cmd elements. */
void fill_send_many(struct redis_pipeline *p, const char *name, const char *key, size_t n,
                    size_t per_cmd, fill_gen_fn gen, struct fill_rng *r);

void fill_gen_element(struct fill_cmd *c, size_t i, struct fill_rng *r);       /* element:I */
void fill_gen_random_binary(struct fill_cmd *c, size_t i, struct fill_rng *r); /* 0-100 bytes */
void fill_gen_member(struct fill_cmd *c, size_t i, struct fill_rng *r);        /* member:I */
void fill_gen_int_member(struct fill_cmd *c, size_t i, struct fill_rng *r);    /* an integer */
void fill_gen_zset_member(struct fill_cmd *c, size_t i, struct fill_rng *r);   /* score, mI */
void fill_gen_hash_field(struct fill_cmd *c, size_t i, struct fill_rng *r);    /* field, value */

#endif
