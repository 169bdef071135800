/* snapshot_writer.c - key records to commands (see snapshot_writer.h). */
#include "decimal.h"
#include "snapshot_writer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "crc64.h"
#include "job.h"
#include "key_filter.h"
#include "rs_error.h"
#include "dest_route.h"
#include "slot.h"
#include "stream_rewrite.h"

#define SW_CHUNK_ELEMENTS 256           /* elements per native command */
#define SW_CHUNK_BYTES    (1024 * 1024) /* argument bytes per native command */
#define SW_MAX_ARGS       (3 + 2 * SW_CHUNK_ELEMENTS + 8)
#define SW_NUMS           (SW_CHUNK_ELEMENTS + 16)

struct pel_entry {
    struct rdb_stream_id id;
    int64_t time_ms;
    uint64_t count;
};

struct snapshot_writer {
    struct snapshot_writer_config cfg;
    struct batch_writer *bw;
    struct job *job;
    int rdb_version;
    struct snapshot_writer_stats st;

    /* the current key */
    bool skip;           /* expired: ignore its events */
    bool native;         /* DEL was sent: writing with native commands */
    unsigned to;         /* its lane (dest_route.h) */
    unsigned slot;       /* its hash slot */
    struct rs_slice key; /* its name on the destination (--db-prefix'ed) */
    char *keybuf;
    size_t keybuf_cap;
    int64_t db;     /* its destination db */
    uint64_t parts; /* string pieces written */
    bool stream_has_entries;
    struct rs_slice group; /* the current stream group (copied) */
    char *group_buf;
    size_t group_cap;
    struct pel_entry *pel; /* the current group's PEL */
    size_t npel, pel_cap;
    struct rdb_item meta; /* the stream's length and ids, written again after XDEL */
    bool has_live;        /* a live entry was seen: first_live is its id */
    struct rdb_stream_id first_live;
    struct rdb_stream_id *tomb; /* deleted entries added back for their PEL entries */
    size_t ntomb, tomb_cap;
    struct rs_slice consumer; /* the current consumer (copied) */
    char *consumer_buf;
    size_t consumer_cap;

    /* scratch for building commands */
    struct rs_slice argv[SW_MAX_ARGS];
    char nums[SW_NUMS][48];
    char *payload;
    size_t payload_cap;
};

/* ----------------------------------------------------------------- helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct rs_slice lit(const char *s)
{
    return (struct rs_slice){s, strlen(s)};
}

static struct rs_slice num_i64(struct snapshot_writer *sw, int slot, int64_t v)
{
    return (struct rs_slice){sw->nums[slot], decimal_i64(sw->nums[slot], v)};
}

static struct rs_slice num_u64(struct snapshot_writer *sw, int slot, uint64_t v)
{
    return (struct rs_slice){sw->nums[slot], decimal_u64(sw->nums[slot], v)};
}

static struct rs_slice num_id(struct snapshot_writer *sw, int slot, struct rdb_stream_id id)
{
    int n = snprintf(sw->nums[slot], sizeof(sw->nums[slot]), "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
    return (struct rs_slice){sw->nums[slot], (size_t)n};
}

static struct rs_slice num_score(struct snapshot_writer *sw, int slot, double d)
{
    int n;
    if (isinf(d))
        n = snprintf(sw->nums[slot], sizeof(sw->nums[slot]), "%s", d > 0 ? "inf" : "-inf");
    else
        n = snprintf(sw->nums[slot], sizeof(sw->nums[slot]), "%.17g", d);
    return (struct rs_slice){sw->nums[slot], (size_t)n};
}

static int cmd(struct snapshot_writer *sw, int argc)
{
    int rc = batch_writer_cmd(sw->bw, sw->to, sw->db, argc, sw->argv);
    if (rc != 0) {
        job_fail(sw->job, "out of memory while writing commands");
        return -1;
    }
    return 0;
}

static int fail_key(struct snapshot_writer *sw, const struct rdb_key_info *k, const char *why)
{
    char q[120];
    job_fail(sw->job, "cannot write key '%s' (%s) in db %" PRIu64 ": %s",
             rs_escape_bytes(q, sizeof(q), k->key.p, k->key.len, 80), k->encoding, k->db, why);
    return -1;
}

static int copy_slice(char **buf, size_t *cap, struct rs_slice *dst, struct rs_slice src)
{
    if (src.len + 1 > *cap) {
        char *b = realloc(*buf, src.len + 1);
        if (b == NULL)
            return -1;
        *buf = b;
        *cap = src.len + 1;
    }
    memcpy(*buf, src.p, src.len);
    *dst = (struct rs_slice){*buf, src.len};
    return 0;
}

/* The expiry written for k: the source's, plus the job's expiry margin
 * (stream_rewrite.h). */
static int64_t expiry(const struct snapshot_writer *sw, const struct rdb_key_info *k)
{
    return stream_rewrite_shift_ms(k->expire_ms, sw->cfg.expiry_margin_ms);
}

/* --------------------------------------------------------------- strings */

static int string_part(struct snapshot_writer *sw, const struct rdb_key_info *k,
                       struct rs_slice part)
{
    bool whole = sw->parts == 0 && part.len == k->string_len;
    sw->parts++;
    if (whole && k->expire_ms < 0) {
        if (batch_writer_mset(sw->bw, sw->to, sw->db, sw->key, part, sw->slot) != 0) {
            job_fail(sw->job, "out of memory while writing commands");
            return -1;
        }
        return 0;
    }
    sw->argv[1] = sw->key;
    sw->argv[2] = part;
    if (whole) { /* SET key value PXAT ms */
        sw->argv[0] = lit("SET");
        sw->argv[3] = lit("PXAT");
        sw->argv[4] = num_i64(sw, 0, expiry(sw, k));
        return cmd(sw, 5);
    }
    sw->argv[0] = sw->parts == 1 ? lit("SET") : lit("APPEND");
    return cmd(sw, 3);
}

/* ---------------------------------------------------------------- native */

static int begin_native(struct snapshot_writer *sw)
{
    if (sw->native)
        return 0;
    sw->native = true;
    sw->argv[0] = lit("DEL");
    sw->argv[1] = sw->key;
    return cmd(sw, 2);
}

/* XSETID with the stream's last ID, entries added and max deleted ID. */
static int xsetid(struct snapshot_writer *sw)
{
    const struct rdb_item *it = &sw->meta;
    int argc = 3;
    sw->argv[0] = lit("XSETID");
    sw->argv[1] = sw->key;
    sw->argv[2] = num_id(sw, 0, it->meta.last_id);
    if (it->meta.has_v2_fields) {
        sw->argv[argc++] = lit("ENTRIESADDED");
        sw->argv[argc++] = num_u64(sw, 1, it->meta.entries_added);
        sw->argv[argc++] = lit("MAXDELETEDID");
        sw->argv[argc++] = num_id(sw, 2, it->meta.max_deleted_id);
    }
    return cmd(sw, argc);
}

/* Writes a run of items of one kind, starting at items[i]; returns how many. */
static size_t native_run(struct snapshot_writer *sw, const struct rdb_key_info *k,
                         const struct rdb_item *items, size_t i, size_t count, int *err)
{
    const struct rdb_item *it = &items[i];
    int kind = it->kind;
    int argc = 2;
    size_t bytes = 0, n = 0;
    sw->argv[1] = sw->key;
    switch (kind) {
    case RDB_ITEM_ELEMENT:
    case RDB_ITEM_ZSET:
    case RDB_ITEM_HASH:
        sw->argv[0] = kind == RDB_ITEM_HASH      ? lit("HSET")
                      : kind == RDB_ITEM_ZSET    ? lit("ZADD")
                      : k->kind == RDB_KIND_LIST ? lit("RPUSH")
                                                 : lit("SADD");
        while (i + n < count && items[i + n].kind == kind && n < SW_CHUNK_ELEMENTS &&
               bytes < SW_CHUNK_BYTES) {
            const struct rdb_item *e = &items[i + n];
            if (kind == RDB_ITEM_ZSET) {
                sw->argv[argc++] = num_score(sw, (int)n, e->score);
                sw->argv[argc++] = e->a;
            } else {
                sw->argv[argc++] = e->a;
                if (kind == RDB_ITEM_HASH)
                    sw->argv[argc++] = e->b;
            }
            bytes += e->a.len + e->b.len;
            n++;
        }
        *err = cmd(sw, argc);
        if (*err == 0 && kind == RDB_ITEM_HASH) {
            for (size_t j = 0; j < n && *err == 0; j++) { /* field TTLs (Redis 7.4+) */
                const struct rdb_item *e = &items[i + j];
                if (e->ttl_ms < 0)
                    continue;
                sw->argv[0] = lit("HPEXPIREAT");
                sw->argv[2] = num_i64(sw, 0, e->ttl_ms);
                sw->argv[3] = lit("FIELDS");
                sw->argv[4] = lit("1");
                sw->argv[5] = e->a;
                *err = cmd(sw, 6);
            }
        }
        return n;
    case RDB_ITEM_STREAM_ENTRY:
        sw->argv[0] = lit("XADD");
        sw->argv[2] = num_id(sw, 0, it->entry.id);
        argc = 3;
        if (it->entry.nfv + 3 > SW_MAX_ARGS) {
            *err = fail_key(sw, k, "a stream entry has too many fields for one XADD here");
            return 1;
        }
        for (uint32_t f = 0; f < it->entry.nfv; f++)
            sw->argv[argc++] = it->entry.fv[f];
        sw->stream_has_entries = true;
        if (!it->entry.deleted && !sw->has_live) {
            sw->has_live = true;
            sw->first_live = it->entry.id;
        }
        if (it->entry.deleted) {
            /* A deleted entry that pending entries may still name: XCLAIM
             * skips ids missing from the stream, so it is added now and
             * deleted again once the groups are written. */
            if (sw->ntomb == sw->tomb_cap) {
                size_t cap = sw->tomb_cap ? sw->tomb_cap * 2 : 64;
                struct rdb_stream_id *t = realloc(sw->tomb, cap * sizeof(*t));
                if (t == NULL) {
                    *err = fail_key(sw, k, "out of memory");
                    return 1;
                }
                sw->tomb = t;
                sw->tomb_cap = cap;
            }
            sw->tomb[sw->ntomb++] = it->entry.id;
        }
        *err = cmd(sw, argc);
        return 1;
    case RDB_ITEM_STREAM_META:
        if (!sw->stream_has_entries) { /* create the empty stream */
            sw->argv[0] = lit("XADD");
            sw->argv[2] = lit("MAXLEN");
            sw->argv[3] = lit("0");
            sw->argv[4] = lit("0-1");
            sw->argv[5] = lit("x");
            sw->argv[6] = lit("x");
            if ((*err = cmd(sw, 7)) != 0)
                return 1;
        }
        sw->meta = *it;
        *err = xsetid(sw);
        return 1;
    case RDB_ITEM_STREAM_GROUP:
        if (copy_slice(&sw->group_buf, &sw->group_cap, &sw->group, it->a) < 0) {
            *err = fail_key(sw, k, "out of memory");
            return 1;
        }
        sw->npel = 0;
        sw->argv[0] = lit("XGROUP");
        sw->argv[1] = lit("CREATE");
        sw->argv[2] = sw->key;
        sw->argv[3] = sw->group;
        sw->argv[4] = num_id(sw, 0, it->group.last_id);
        argc = 5;
        if (it->group.entries_read >= 0) {
            sw->argv[argc++] = lit("ENTRIESREAD");
            sw->argv[argc++] = num_i64(sw, 1, it->group.entries_read);
        }
        *err = cmd(sw, argc);
        return 1;
    case RDB_ITEM_STREAM_PEL:
        if (sw->npel == sw->pel_cap) {
            size_t cap = sw->pel_cap ? sw->pel_cap * 2 : 64;
            struct pel_entry *p = realloc(sw->pel, cap * sizeof(*p));
            if (p == NULL) {
                *err = fail_key(sw, k, "out of memory");
                return 1;
            }
            sw->pel = p;
            sw->pel_cap = cap;
        }
        sw->pel[sw->npel++] =
            (struct pel_entry){it->pel.id, it->pel.delivery_time_ms, it->pel.delivery_count};
        *err = 0;
        return 1;
    case RDB_ITEM_STREAM_CONSUMER:
        if (copy_slice(&sw->consumer_buf, &sw->consumer_cap, &sw->consumer, it->a) < 0) {
            *err = fail_key(sw, k, "out of memory");
            return 1;
        }
        sw->argv[0] = lit("XGROUP");
        sw->argv[1] = lit("CREATECONSUMER");
        sw->argv[2] = sw->key;
        sw->argv[3] = sw->group;
        sw->argv[4] = sw->consumer;
        *err = cmd(sw, 5);
        return 1;
    case RDB_ITEM_STREAM_CONSUMER_PEL: {
        const struct pel_entry *pe = NULL;
        for (size_t j = 0; j < sw->npel; j++) /* PELs are small; a scan will do */
            if (sw->pel[j].id.ms == it->pel.id.ms && sw->pel[j].id.seq == it->pel.id.seq) {
                pe = &sw->pel[j];
                break;
            }
        if (pe == NULL) {
            *err = fail_key(sw, k, "a consumer's pending entry is not in its group's PEL");
            return 1;
        }
        sw->argv[0] = lit("XCLAIM");
        sw->argv[2] = sw->group;
        sw->argv[3] = sw->consumer;
        sw->argv[4] = lit("0");
        sw->argv[5] = num_id(sw, 0, pe->id);
        sw->argv[6] = lit("TIME");
        sw->argv[7] = num_i64(sw, 1, pe->time_ms);
        sw->argv[8] = lit("RETRYCOUNT");
        sw->argv[9] = num_u64(sw, 2, pe->count);
        sw->argv[10] = lit("FORCE");
        sw->argv[11] = lit("JUSTID");
        *err = cmd(sw, 12);
        return 1;
    }
    case RDB_ITEM_MODULE:
        *err = fail_key(sw, k,
                        "a module value can only be written with RESTORE, which is off or too "
                        "small a limit for it");
        return 1;
    }
    *err = fail_key(sw, k, "internal: unexpected item kind");
    return 1;
}

/* ---------------------------------------------------------------- RESTORE */

static int restore(struct snapshot_writer *sw, const struct rdb_key_info *k, struct rs_slice raw)
{
    size_t n = 1 + raw.len + 2 + 8;
    if (n > sw->payload_cap) {
        char *p = realloc(sw->payload, n);
        if (p == NULL)
            return fail_key(sw, k, "out of memory");
        sw->payload = p;
        sw->payload_cap = n;
    }
    char *p = sw->payload;
    p[0] = (char)k->rdb_type;
    memcpy(p + 1, raw.p, raw.len);
    p[1 + raw.len] = (char)(sw->rdb_version & 0xff);
    p[2 + raw.len] = (char)((sw->rdb_version >> 8) & 0xff);
    uint64_t crc = crc64_update(0, p, 3 + raw.len);
    for (int i = 0; i < 8; i++)
        p[3 + raw.len + i] = (char)((crc >> (8 * i)) & 0xff);
    sw->argv[0] = lit("RESTORE");
    sw->argv[1] = sw->key;
    sw->argv[2] = num_i64(sw, 0, k->expire_ms < 0 ? 0 : expiry(sw, k));
    sw->argv[3] = (struct rs_slice){p, n};
    sw->argv[4] = lit("REPLACE");
    int argc = 5;
    if (k->expire_ms >= 0)
        sw->argv[argc++] = lit("ABSTTL");
    sw->st.restored++;
    return cmd(sw, argc);
}

/* ------------------------------------------------------------------ events */

static int on_key_begin(struct snapshot_writer *sw, const struct rdb_key_info *k)
{
    sw->native = false;
    sw->parts = 0;
    sw->stream_has_entries = false;
    sw->npel = 0;
    sw->ntomb = 0;
    sw->has_live = false;
    if (sw->cfg.discard) {
        sw->skip = true;
        return 0;
    }
    if (sw->cfg.filter != NULL &&
        !key_filter_keep_key(sw->cfg.filter, (int64_t)k->db, k->key.p, k->key.len)) {
        sw->skip = true; /* before the db map: a db left out needs no mapping */
        atomic_fetch_add_explicit(&sw->job->filtered_keys, 1, memory_order_relaxed);
        return 0;
    }
    sw->skip = k->expire_ms >= 0 && k->expire_ms <= now_ms();
    if (sw->skip) {
        sw->st.expired++;
        return 0;
    }
    const struct dest_route *r = sw->cfg.route;
    sw->db = dest_route_db(r, (int64_t)k->db);
    if (sw->db < 0) {
        sw->skip = true;
        if (r->unmapped == DEST_ROUTE_UNMAPPED_SKIP) {
            atomic_fetch_add_explicit(&sw->job->unmapped_skipped, 1, memory_order_relaxed);
            return 0;
        }
        char q[100], map[200];
        dest_route_describe(r, map, sizeof(map));
        job_fail(sw->job,
                 "the snapshot has key '%s' in database %" PRIu64
                 ", which the database map (%s) does "
                 "not map: add it to --db-map, or pass --db-unmapped skip to leave that "
                 "database out",
                 rs_escape_bytes(q, sizeof(q), k->key.p, k->key.len, 60), k->db, map);
        return -1;
    }
    sw->key = k->key;
    char prefix[64];
    size_t plen = dest_route_prefix(r, (int64_t)k->db, prefix, sizeof(prefix));
    if (plen > 0) { /* --db-prefix: the key as the destination holds it */
        if (plen + k->key.len > sw->keybuf_cap) {
            size_t cap = (plen + k->key.len) * 2;
            char *b = realloc(sw->keybuf, cap);
            if (b == NULL) {
                job_fail(sw->job, "out of memory while writing commands");
                return -1;
            }
            sw->keybuf = b;
            sw->keybuf_cap = cap;
        }
        memcpy(sw->keybuf, prefix, plen);
        memcpy(sw->keybuf + plen, k->key.p, k->key.len);
        sw->key = (struct rs_slice){sw->keybuf, plen + k->key.len};
    }
    sw->slot = slot_of_key(sw->key.p, sw->key.len);
    sw->to = dest_route_lane(r, sw->slot);
    return 0;
}

static int on_items(struct snapshot_writer *sw, const struct rdb_key_info *k,
                    const struct rdb_item *items, size_t count)
{
    if (sw->skip)
        return 0;
    if (k->kind == RDB_KIND_STRING) {
        for (size_t i = 0; i < count; i++)
            if (string_part(sw, k, items[i].a) != 0)
                return -1;
        return 0;
    }
    if (begin_native(sw) != 0)
        return -1;
    for (size_t i = 0; i < count;) {
        int err = 0;
        i += native_run(sw, k, items, i, count, &err);
        if (err != 0)
            return -1;
    }
    return 0;
}

static int on_key_end(struct snapshot_writer *sw, const struct rdb_event *ev)
{
    const struct rdb_key_info *k = ev->key;
    if (sw->skip)
        return 0;
    if (ev->key_end.is_empty) {
        sw->st.empty++;
        return 0;
    }
    sw->st.keys++;
    if (k->kind == RDB_KIND_STRING) {
        if (sw->parts > 1 && k->expire_ms >= 0) {
            sw->argv[0] = lit("PEXPIREAT");
            sw->argv[1] = sw->key;
            sw->argv[2] = num_i64(sw, 0, expiry(sw, k));
            return cmd(sw, 3);
        }
        return 0;
    }
    if (!sw->native && ev->key_end.has_raw && sw->cfg.use_restore)
        return restore(sw, k, ev->key_end.raw);
    if (!sw->native)
        return fail_key(sw, k, "internal: neither raw bytes nor items");
    sw->st.native++;
    /* The deleted entries again. Those older than every live entry may have
     * been trimmed rather than XDELed (trimming leaves the max deleted ID
     * alone): XTRIM them. XDEL the others, in chunks; XSETID then puts the
     * max deleted ID back where the source had it. */
    size_t i = 0;
    while (i < sw->ntomb &&
           (!sw->has_live || sw->tomb[i].ms < sw->first_live.ms ||
            (sw->tomb[i].ms == sw->first_live.ms && sw->tomb[i].seq < sw->first_live.seq)))
        i++;
    if (i > 0) {
        sw->argv[0] = lit("XTRIM");
        sw->argv[1] = sw->key;
        sw->argv[2] = lit(sw->has_live ? "MINID" : "MAXLEN");
        sw->argv[3] = sw->has_live ? num_id(sw, 0, sw->first_live) : lit("0");
        if (cmd(sw, 4) != 0)
            return -1;
        if (i == sw->ntomb && xsetid(sw) != 0)
            return -1;
    }
    while (i < sw->ntomb) {
        int argc = 2;
        sw->argv[0] = lit("XDEL");
        sw->argv[1] = sw->key;
        for (int n = 0; i < sw->ntomb && n < SW_CHUNK_ELEMENTS; n++, i++)
            sw->argv[argc++] = num_id(sw, n, sw->tomb[i]);
        if (cmd(sw, argc) != 0)
            return -1;
        if (i == sw->ntomb && xsetid(sw) != 0) /* XDEL moved the max deleted ID */
            return -1;
    }
    if (k->expire_ms >= 0) {
        sw->argv[0] = lit("PEXPIREAT");
        sw->argv[1] = sw->key;
        sw->argv[2] = num_i64(sw, 0, expiry(sw, k));
        return cmd(sw, 3);
    }
    return 0;
}

/* sw->argv[0..argc) to every destination node (functions, scripts). */
static int every_node(struct snapshot_writer *sw, int argc)
{
    if (sw->cfg.discard)
        return 0;
    if (sw->cfg.filter != NULL &&
        key_filter_blocks_command(sw->cfg.filter, sw->argv[0].p, sw->argv[0].len)) {
        sw->st.code_blocked++;
        return 0;
    }
    if (sw->cfg.proxy) { /* nothing keyless passes a proxy: the user loads these */
        if (sw->st.code_skipped++ == 0)
            fprintf(stderr,
                    "ringsync: the snapshot holds %.*s code (functions or Lua scripts): a proxy "
                    "passes no FUNCTION or SCRIPT command to its servers, so load them on each "
                    "server behind it yourself (said once; the report counts them)\n",
                    (int)sw->argv[0].len, sw->argv[0].p);
        return 0;
    }
    for (unsigned n = 0; n < dest_route_nodes(sw->cfg.route); n++) {
        if (dest_route_node_serves(sw->cfg.route, n) &&
            batch_writer_cmd(sw->bw, dest_route_node_lane(sw->cfg.route, n), -1, argc, sw->argv) !=
                0) {
            job_fail(sw->job, "out of memory while writing commands");
            return -1;
        }
    }
    return 0;
}

int snapshot_writer_on_event(void *ctx, const struct rdb_event *ev)
{
    struct snapshot_writer *sw = ctx;
    switch (ev->type) {
    case RDB_EV_HEADER:
        sw->rdb_version = ev->header.version;
        sw->st.rdb_version = ev->header.version;
        return 0;
    case RDB_EV_KEY_BEGIN:
        return on_key_begin(sw, ev->key);
    case RDB_EV_ITEMS:
        return on_items(sw, ev->key, ev->items.items, ev->items.count);
    case RDB_EV_KEY_END:
        return on_key_end(sw, ev);
    case RDB_EV_FUNCTION:
        sw->argv[0] = lit("FUNCTION");
        sw->argv[1] = lit("LOAD");
        sw->argv[2] = lit("REPLACE");
        sw->argv[3] = ev->function.code;
        sw->st.functions +=
            !sw->cfg.proxy &&
            !(sw->cfg.filter != NULL && key_filter_blocks_command(sw->cfg.filter, "FUNCTION", 8));
        return every_node(sw, 4);
    case RDB_EV_AUX:
        if (ev->aux.name.len == 3 && memcmp(ev->aux.name.p, "lua", 3) == 0) {
            sw->argv[0] = lit("SCRIPT");
            sw->argv[1] = lit("LOAD");
            sw->argv[2] = ev->aux.value;
            return every_node(sw, 3);
        }
        return 0;
    case RDB_EV_MODULE_AUX: {
        char name[10];
        memcpy(name, ev->module_aux.name, sizeof(name));
        job_fail(sw->job,
                 "the snapshot holds auxiliary data of module '%s', which only that module "
                 "loaded on the destination could take",
                 name);
        return -1;
    }
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ set-up */

struct snapshot_writer *snapshot_writer_new(const struct snapshot_writer_config *cfg,
                                            struct batch_writer *bw, struct job *job)
{
    struct snapshot_writer *sw = calloc(1, sizeof(*sw));
    if (sw == NULL)
        return NULL;
    sw->cfg = *cfg;
    sw->bw = bw;
    sw->job = job;
    return sw;
}

void snapshot_writer_free(struct snapshot_writer *sw)
{
    if (sw == NULL)
        return;
    free(sw->group_buf);
    free(sw->keybuf);
    free(sw->consumer_buf);
    free(sw->pel);
    free(sw->tomb);
    free(sw->payload);
    free(sw);
}

void snapshot_writer_decoder_config(const struct snapshot_writer *sw,
                                    struct rdb_decoder_config *cfg)
{
    cfg->raw_or_items = sw->cfg.use_restore;
}

void snapshot_writer_stats(const struct snapshot_writer *sw, struct snapshot_writer_stats *st)
{
    *st = sw->st;
}
