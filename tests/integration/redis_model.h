/* redis_model.h - a data set as plain values, to compare what a Redis server
 * holds with what `ringsync inspect` read from a file (../notes/inspect_json.md).
 *
 * A model is every key of databases 0..15 with its type, exact value and
 * absolute expiry, plus the function libraries' code. It is built either from
 * a live server (SCAN, then per key TYPE, PEXPIRETIME, OBJECT ENCODING and the
 * value: GET, LRANGE, SMEMBERS, ZRANGE WITHSCORES, HGETALL, XINFO STREAM FULL
 * COUNT 0; FUNCTION LIST WITHCODE) or from inspect's JSON lines, and kept in a
 * canonical order so that two models compare element by element:
 *   - keys sorted by their bytes within a db;
 *   - list elements and stream entries in their order;
 *   - set members, hash fields, zset members sorted by bytes (zset scores
 *     travel with their members, compared as doubles: ==, or both NaN; so
 *     -0 equals 0, which json-c could not tell apart anyway: it reads "-0"
 *     as the integer 0);
 *   - stream groups, consumers sorted by name, PEL ids by id;
 *   - function libraries sorted by their code.
 *
 * NUL bytes on the inspect side: json-c keeps object member names as C
 * strings, so a hash field or zset member "a\u0000b" would come back as "a".
 * The reader therefore rewrites every \u0000 escape of a line to \u0100
 * before json-c parses it (the contract allows only \u00XX escapes, which is
 * checked first, so U+0100 is free to stand for NUL), and the byte decoder
 * turns U+0100 back into 0x00.
 */
#ifndef RS_TEST_REDIS_MODEL_H
#define RS_TEST_REDIS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define MODEL_DBS 16

enum model_type {
    MODEL_STRING = 0,
    MODEL_LIST,
    MODEL_SET,
    MODEL_ZSET,
    MODEL_HASH,
    MODEL_STREAM,
    MODEL_MODULE,
};

/* Owned bytes (p is NUL-terminated for printing convenience; len excludes it). */
struct model_bytes {
    char *p;
    size_t len;
};

struct model_id {
    uint64_t ms;
    uint64_t seq;
};

struct model_stream_entry {
    struct model_id id;
    size_t nfv; /* field, value, field, value ... */
    struct model_bytes *fv;
};

struct model_pel {
    struct model_id id;
    int64_t delivery_time_ms;
    uint64_t delivery_count;
};

struct model_consumer {
    struct model_bytes name;
    int64_t seen_time_ms;
    int64_t active_time_ms; /* -1: not known (Redis < 7.2, stream type < 21) */
    size_t npel;
    struct model_id *pel;
};

struct model_group {
    struct model_bytes name;
    struct model_id last_delivered_id;
    int64_t entries_read; /* -1: not known (null) */
    size_t npel;
    struct model_pel *pel;
    size_t nconsumers;
    struct model_consumer *consumers;
};

struct model_stream {
    uint64_t length;
    struct model_id last_id;
    bool has_v2; /* first_id, max_deleted_id, entries_added are known */
    struct model_id first_id;
    struct model_id max_deleted_id;
    uint64_t entries_added;
    size_t nentries;
    struct model_stream_entry *entries;
    size_t ngroups;
    struct model_group *groups;
};

struct model_key {
    struct model_bytes key;
    int type;                   /* enum model_type */
    int64_t expire_ms;          /* absolute Unix ms, or -1 */
    char encoding[40];          /* server: OBJECT ENCODING; inspect: its "encoding" */
    struct model_bytes str;     /* string; module: its raw text */
    size_t n;                   /* list, set, zset, hash: number of elements */
    struct model_bytes *elems;  /* list elements, set members, zset members, hash fields */
    struct model_bytes *values; /* hash values */
    double *scores;             /* zset scores */
    struct model_stream *stream;
};

struct model_db {
    size_t nkeys;
    size_t cap;
    struct model_key *keys;
};

struct redis_model {
    struct model_db dbs[MODEL_DBS];
    size_t nfunctions;
    struct model_bytes *functions; /* library code */
    size_t checkpoint_keys;        /* ringsync's own records (ringsync:cp:...), left out of dbs */
};

/* Keys under this prefix are ringsync's checkpoints (src/CHECKPOINTS.md):
 * never part of a model, only counted. */
#define MODEL_CHECKPOINT_PREFIX "ringsync:cp:"

/* Builds the model of what the server behind c holds (all 16 dbs; c is left
 * on db 0). Fails the test on a command error. m must be zeroed or freed. */
void redis_model_from_server(struct redis_model *m, redisContext *c);

/* Most servers redis_model_from_servers reads (bits of its masks). */
#define MODEL_MAX_SERVERS 32

/* Builds ONE model of db 0 of n servers that share a key space (a cluster's
 * masters, the servers behind a proxy; servers[0..n), 1 <= n <=
 * MODEL_MAX_SERVERS, each connection left in db 0, none SELECTed): their keys
 * merged into m->dbs[0] in canonical order. *held (allocated, the caller
 * frees it) gets one mask per key of m->dbs[0], bit i set when servers[i]
 * holds it; a key held by several keeps the first one's value in m. Fails
 * the test unless every server holds the same function libraries (FUNCTION
 * LIST WITHCODE, compared by code), which m keeps once. m must be zeroed or
 * freed. */
void redis_model_from_servers(struct redis_model *m, redisContext *const *servers, size_t n,
                              unsigned **held);

/* Builds ONE model of a Redis Cluster's data set from every one of its
 * masters (masters[0..n), n >= 1, each a connection to a master node), as
 * redis_model_from_servers does (a cluster node has db 0 only). Fails the
 * test when a key is held by two masters (a migration in progress), when a
 * master holds a key of a slot it does not serve (its TYPE gets MOVED,
 * quoted), and unless every master holds the same function libraries. The
 * caller picks the masters: the nodes that serve slots now, after a failover
 * too. m must be zeroed or freed; the contexts stay in db 0. */
void redis_model_from_cluster(struct redis_model *m, redisContext *const *masters, size_t n);

/* Builds the model from inspect's default output in path. Returns 0, or -1
 * with why filled (line number, what was wrong). Checks on the way that every
 * byte is printable ASCII (the contract) and every line is a key or function
 * line. */
int redis_model_from_inspect_file(struct redis_model *m, const char *path, char *why,
                                  size_t why_cap);

void redis_model_free(struct redis_model *m);

/* Decodes a json-c string (UTF-8) under the inspect contract: each code point
 * U+0000..U+00FF is one byte, and U+0100 is a NUL byte too (see above).
 * Returns 0 and a new owned copy in out, or -1 if a code point is above
 * U+0100 or the UTF-8 is malformed. */
int model_bytes_from_json_utf8(const char *s, size_t len, struct model_bytes *out);

/* Looks a key up; NULL if absent. */
const struct model_key *redis_model_find(const struct redis_model *m, unsigned db, const void *key,
                                         size_t len);

/* Number of keys in db (or in all dbs for db == MODEL_DBS). */
size_t redis_model_count(const struct redis_model *m, unsigned db);

struct model_diff {
    size_t differences; /* keys (or function libraries) that differ */
    size_t
        expired_absent; /* keys of `file` with expire_ms < now_ms that `server` lacks: expected */
    size_t keys_compared;
    char report[8192]; /* the first differences and the expected absences, readable */
    size_t report_len;
};

/* Compares what a server holds with what a file holds (as read by inspect).
 * A key of `file` whose expiry is before now_ms and which `server` lacks is
 * expected absent (Redis drops expired keys on load, or since): counted in
 * expired_absent and listed in the report, not a difference. The report names
 * db, key and what differs (first element index, both values escaped). */
void redis_model_compare(const struct redis_model *server, const struct redis_model *file,
                         int64_t now_ms, struct model_diff *d);

/* Names a model type ("string", ...). */
const char *model_type_name(int type);

/* Writes p[0..len) into buf as readable text: printable ASCII as is, other
 * bytes as \xNN, at most max_in input bytes (then "...(N bytes)"). */
const char *model_escape(char *buf, size_t cap, const void *p, size_t len, size_t max_in);

#endif
