/* rdb_collector.c - test-side consumer of decoder events, and the split driver. */
#include "rdb_collector.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "rdb_format.h"

#define DEFAULT_RAW_MAX      (512u * 1024)
#define DEFAULT_CHUNK_ITEMS  512u
#define DEFAULT_CHUNK_BYTES  (256u * 1024)
#define DEFAULT_STRING_PIECE (64u * 1024)
#define DEFAULT_ELEMENT_MAX  (512u * 1024 * 1024)

/* Inputs up to this size are split at every offset; larger ones at a sample. */
#define EVERY_OFFSET_MAX 4096

static void appendf(struct rdb_builder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void appendf(struct rdb_builder *b, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(buf), "log line too long");
    rdb_builder_bytes(b, buf, (size_t)n);
}

void log_escaped(struct rdb_builder *out, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = p;
    rdb_builder_byte(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') {
            rdb_builder_byte(out, '\\');
            rdb_builder_byte(out, ch);
        } else if (ch >= 0x20 && ch < 0x7f) {
            rdb_builder_byte(out, ch);
        } else {
            char e[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
            rdb_builder_bytes(out, e, 4);
        }
    }
    rdb_builder_byte(out, '"');
}

static void log_slice(struct rdb_builder *out, struct rs_slice s)
{
    log_escaped(out, s.p, s.len);
}

static void log_score(struct rdb_builder *out, double d)
{
    if (isnan(d))
        appendf(out, "nan");
    else if (isinf(d))
        appendf(out, d > 0 ? "inf" : "-inf");
    else
        appendf(out, "%.17g", d);
}

static void log_id(struct rdb_builder *out, struct rdb_stream_id id)
{
    appendf(out, "%llu-%llu", (unsigned long long)id.ms, (unsigned long long)id.seq);
}

static const char module_cset[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void module_name_of(uint64_t id, char name[10])
{
    uint64_t v = id >> 10;
    for (int j = 8; j >= 0; j--) {
        name[j] = module_cset[v & 63];
        v >>= 6;
    }
    name[9] = '\0';
}

void rdb_collector_init(struct rdb_collector *c, const struct rdb_decoder_config *cfg)
{
    memset(c, 0, sizeof(*c));
    rdb_builder_init(&c->log);
    rdb_builder_init(&c->chunks);
    rdb_builder_init(&c->value);
    c->stop_at_event = -1;
    if (cfg != NULL)
        c->cfg = *cfg;
    if (c->cfg.raw_max == 0)
        c->cfg.raw_max = DEFAULT_RAW_MAX;
    if (c->cfg.chunk_items == 0)
        c->cfg.chunk_items = DEFAULT_CHUNK_ITEMS;
    if (c->cfg.chunk_bytes == 0)
        c->cfg.chunk_bytes = DEFAULT_CHUNK_BYTES;
    if (c->cfg.string_piece == 0)
        c->cfg.string_piece = DEFAULT_STRING_PIECE;
    if (c->cfg.element_max == 0)
        c->cfg.element_max = DEFAULT_ELEMENT_MAX;
}

void rdb_collector_deinit(struct rdb_collector *c)
{
    for (size_t i = 0; i < c->nkeys; i++) {
        free(c->keys[i].key);
        free(c->keys[i].raw);
    }
    free(c->keys);
    rdb_builder_deinit(&c->log);
    rdb_builder_deinit(&c->chunks);
    rdb_builder_deinit(&c->value);
    memset(c, 0, sizeof(*c));
}

static const char *terminated(struct rdb_builder *b)
{
    rdb_builder_byte(b, '\0');
    b->len--;
    return (const char *)b->p;
}

const char *rdb_collector_log(struct rdb_collector *c)
{
    return terminated(&c->log);
}

const char *rdb_collector_chunks(struct rdb_collector *c)
{
    return terminated(&c->chunks);
}

const struct rdb_key_seen *rdb_collector_key(const struct rdb_collector *c, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < c->nkeys; i++)
        if (c->keys[i].key_len == n && memcmp(c->keys[i].key, key, n) == 0)
            return &c->keys[i];
    return NULL;
}

static void *dup_bytes(const void *p, size_t n)
{
    void *q = malloc(n + 1);
    cr_assert(q != NULL);
    if (n > 0)
        memcpy(q, p, n);
    ((char *)q)[n] = '\0';
    return q;
}

static struct rdb_key_seen *key_add(struct rdb_collector *c)
{
    if (c->nkeys == c->keys_cap) {
        size_t cap = c->keys_cap ? 2 * c->keys_cap : 16;
        struct rdb_key_seen *k = realloc(c->keys, cap * sizeof(*k));
        cr_assert(k != NULL);
        c->keys = k;
        c->keys_cap = cap;
    }
    struct rdb_key_seen *k = &c->keys[c->nkeys++];
    memset(k, 0, sizeof(*k));
    return k;
}

/* The item kinds a value of this kind may carry. */
static bool item_fits_kind(int item_kind, int kind)
{
    switch (item_kind) {
    case RDB_ITEM_STRING_PART:
        return kind == RDB_KIND_STRING;
    case RDB_ITEM_ELEMENT:
        return kind == RDB_KIND_LIST || kind == RDB_KIND_SET;
    case RDB_ITEM_ZSET:
        return kind == RDB_KIND_ZSET;
    case RDB_ITEM_HASH:
        return kind == RDB_KIND_HASH;
    case RDB_ITEM_STREAM_ENTRY:
    case RDB_ITEM_STREAM_META:
    case RDB_ITEM_STREAM_GROUP:
    case RDB_ITEM_STREAM_PEL:
    case RDB_ITEM_STREAM_CONSUMER:
    case RDB_ITEM_STREAM_CONSUMER_PEL:
        return kind == RDB_KIND_STREAM;
    case RDB_ITEM_MODULE:
        return kind == RDB_KIND_MODULE;
    }
    return false;
}

/* One item as a log line (not for string pieces). */
static void log_item(struct rdb_builder *out, const struct rdb_item *it)
{
    switch (it->kind) {
    case RDB_ITEM_ELEMENT:
        appendf(out, " E ");
        log_slice(out, it->a);
        break;
    case RDB_ITEM_ZSET:
        appendf(out, " Z ");
        log_slice(out, it->a);
        appendf(out, " ");
        log_score(out, it->score);
        break;
    case RDB_ITEM_HASH:
        appendf(out, " H ");
        log_slice(out, it->a);
        appendf(out, " ");
        log_slice(out, it->b);
        if (it->ttl_ms != -1)
            appendf(out, " ttl=%lld", (long long)it->ttl_ms);
        break;
    case RDB_ITEM_STREAM_ENTRY:
        appendf(out, " X ");
        log_id(out, it->entry.id);
        if (it->entry.deleted)
            appendf(out, " deleted");
        for (uint32_t i = 0; i < it->entry.nfv; i++) {
            appendf(out, " ");
            log_slice(out, it->entry.fv[i]);
        }
        break;
    case RDB_ITEM_STREAM_META:
        appendf(out, " XMETA len=%llu last=", (unsigned long long)it->meta.length);
        log_id(out, it->meta.last_id);
        if (it->meta.has_v2_fields) {
            appendf(out, " first=");
            log_id(out, it->meta.first_id);
            appendf(out, " maxdel=");
            log_id(out, it->meta.max_deleted_id);
            appendf(out, " added=%llu", (unsigned long long)it->meta.entries_added);
        }
        break;
    case RDB_ITEM_STREAM_GROUP:
        appendf(out, " XGROUP ");
        log_slice(out, it->a);
        appendf(out, " last=");
        log_id(out, it->group.last_id);
        appendf(out, " read=%lld", (long long)it->group.entries_read);
        break;
    case RDB_ITEM_STREAM_PEL:
        appendf(out, " XPEL ");
        log_id(out, it->pel.id);
        appendf(out, " time=%lld count=%llu", (long long)it->pel.delivery_time_ms,
                (unsigned long long)it->pel.delivery_count);
        break;
    case RDB_ITEM_STREAM_CONSUMER:
        appendf(out, " XCONSUMER ");
        log_slice(out, it->a);
        appendf(out, " seen=%lld active=%lld", (long long)it->consumer.seen_time_ms,
                (long long)it->consumer.active_time_ms);
        break;
    case RDB_ITEM_STREAM_CONSUMER_PEL:
        appendf(out, " XCPEL ");
        log_id(out, it->pel.id);
        break;
    case RDB_ITEM_MODULE: {
        char name[10];
        module_name_of(it->module.module_id, name);
        cr_assert_str_eq(it->module.name, name, "module item name vs its id");
        cr_assert_eq(it->module.encver, (unsigned)(it->module.module_id & 1023));
        appendf(out, " MODULE \"%s\" encver=%u", it->module.name, it->module.encver);
        break;
    }
    default:
        cr_assert_fail("unknown item kind %d", it->kind);
    }
    appendf(out, "\n");
}

static void on_key_begin(struct rdb_collector *c, const struct rdb_event *ev)
{
    const struct rdb_key_info *k = ev->key;
    cr_assert(k != NULL, "KEY_BEGIN without key info");
    cr_assert(!c->in_key, "KEY_BEGIN inside a key");
    cr_assert(k->encoding != NULL, "no encoding name for type %d", k->rdb_type);
    cr_assert_str_eq(k->encoding, rdb_type_name(k->rdb_type, c->is_valkey));
    c->in_key = true;
    c->cur = *k;
    c->value.len = 0;

    struct rdb_key_seen *s = key_add(c);
    s->key = dup_bytes(k->key.p, k->key.len);
    s->key_len = k->key.len;
    s->db = k->db;
    s->rdb_type = k->rdb_type;
    s->kind = k->kind;
    s->expire_ms = k->expire_ms;
    s->offset = k->offset;
    s->value_offset = k->value_offset;
    s->begin_offset = ev->offset;

    appendf(&c->log, "KEY %llu ", (unsigned long long)k->db);
    log_slice(&c->log, k->key);
    appendf(&c->log, " %s %d", rdb_kind_name(k->kind), k->rdb_type);
    if (k->kind == RDB_KIND_STRING)
        appendf(&c->log, " len=%llu", (unsigned long long)k->string_len);
    if (k->expire_ms != -1)
        appendf(&c->log, " expire=%lld", (long long)k->expire_ms);
    if (k->lru_idle_s != -1)
        appendf(&c->log, " idle=%lld", (long long)k->lru_idle_s);
    if (k->lfu_freq != -1)
        appendf(&c->log, " freq=%d", k->lfu_freq);
    appendf(&c->log, "\n");

    appendf(&c->chunks, "@%llu KEY_BEGIN offset=%llu value_offset=%llu %s\n",
            (unsigned long long)ev->offset, (unsigned long long)k->offset,
            (unsigned long long)k->value_offset, k->encoding);
}

static void on_items(struct rdb_collector *c, const struct rdb_event *ev)
{
    cr_assert(c->in_key, "ITEMS outside a key");
    cr_assert(ev->key != NULL, "ITEMS without key info");
    cr_assert(ev->items.count > 0, "an ITEMS event with no items");
    cr_assert(ev->items.count <= c->cfg.chunk_items, "ITEMS of %zu items, chunk_items is %zu",
              ev->items.count, c->cfg.chunk_items);
    struct rdb_key_seen *s = &c->keys[c->nkeys - 1];
    appendf(&c->chunks, "@%llu ITEMS %zu\n", (unsigned long long)ev->offset, ev->items.count);
    size_t bytes = 0;
    for (size_t i = 0; i < ev->items.count; i++) {
        const struct rdb_item *it = &ev->items.items[i];
        cr_assert(item_fits_kind(it->kind, c->cur.kind), "item kind %d in a %s value", it->kind,
                  rdb_kind_name(c->cur.kind));
        c->items++;
        s->nitems++;
        bytes += it->a.len + it->b.len;
        if (it->kind == RDB_ITEM_STRING_PART) {
            rdb_builder_bytes(&c->value, it->a.p, it->a.len);
            appendf(&c->chunks, " P %zu\n", it->a.len);
            continue;
        }
        log_item(&c->log, it);
        log_item(&c->chunks, it);
    }
    if (ev->items.count > 1)
        cr_assert(bytes <= c->cfg.chunk_bytes, "ITEMS of %zu bytes, chunk_bytes is %zu", bytes,
                  c->cfg.chunk_bytes);
}

/* String pieces: one piece up to raw_max; past it, pieces of exactly
 * string_piece bytes but the last. Reads the piece sizes back from the chunks
 * log of the current key. */
static void check_string_pieces(struct rdb_collector *c, uint64_t string_len)
{
    const char *log = terminated(&c->chunks);
    const char *begin = NULL;
    for (const char *p = strstr(log, "KEY_BEGIN"); p != NULL; p = strstr(p + 1, "KEY_BEGIN"))
        begin = p;
    cr_assert(begin != NULL);
    size_t npieces = 0, last = 0;
    bool all_full = true;
    for (const char *p = strstr(begin, "\n P "); p != NULL; p = strstr(p + 1, "\n P ")) {
        if (npieces > 0 && last != c->cfg.string_piece)
            all_full = false;
        last = (size_t)strtoull(p + 4, NULL, 10);
        npieces++;
    }
    if (string_len <= c->cfg.raw_max) {
        cr_assert(npieces <= 1, "a string of %llu bytes (raw_max %zu) in %zu pieces",
                  (unsigned long long)string_len, c->cfg.raw_max, npieces);
    } else {
        cr_assert(all_full && last <= c->cfg.string_piece && last > 0,
                  "string pieces not of string_piece (%zu) bytes", c->cfg.string_piece);
    }
}

static void on_key_end(struct rdb_collector *c, const struct rdb_event *ev)
{
    cr_assert(c->in_key, "KEY_END outside a key");
    cr_assert(ev->key != NULL, "KEY_END without key info");
    struct rdb_key_seen *s = &c->keys[c->nkeys - 1];
    cr_assert(ev->key->key.len == s->key_len && memcmp(ev->key->key.p, s->key, s->key_len) == 0,
              "KEY_END names another key");
    const struct rs_slice raw = ev->key_end.raw;
    s->has_raw = ev->key_end.has_raw;
    s->encoded_size = ev->key_end.encoded_size;
    s->is_empty = ev->key_end.is_empty;
    if (s->has_raw) {
        s->raw = dup_bytes(raw.p, raw.len);
        s->raw_len = raw.len;
        cr_assert_eq(raw.len, ev->key_end.encoded_size, "raw length vs encoded_size");
    }
    cr_assert_eq(s->has_raw, ev->key_end.encoded_size <= c->cfg.raw_max,
                 "has_raw must say encoded_size (%llu) <= raw_max (%zu)",
                 (unsigned long long)ev->key_end.encoded_size, c->cfg.raw_max);
    if (s->is_empty) {
        cr_assert(c->cur.kind != RDB_KIND_STRING, "an empty string flagged is_empty");
        cr_assert_eq(s->nitems, 0, "is_empty but items were delivered");
    }
    if (c->cur.kind == RDB_KIND_STRING) {
        cr_assert_eq(c->value.len, c->cur.string_len, "string_len %llu, %zu bytes delivered",
                     (unsigned long long)c->cur.string_len, c->value.len);
        check_string_pieces(c, c->cur.string_len);
        appendf(&c->log, " S ");
        log_escaped(&c->log, c->value.p, c->value.len);
        appendf(&c->log, "\n");
    }
    appendf(&c->log, "END%s\n", s->is_empty ? " empty" : "");
    appendf(&c->chunks, "@%llu KEY_END size=%llu empty=%d raw=", (unsigned long long)ev->offset,
            (unsigned long long)ev->key_end.encoded_size, s->is_empty);
    if (s->has_raw)
        log_slice(&c->chunks, raw);
    else
        appendf(&c->chunks, "-");
    appendf(&c->chunks, "\n");
    c->in_key = false;
}

int rdb_collector_event(void *ctx, const struct rdb_event *ev)
{
    struct rdb_collector *c = ctx;
    long n = (long)c->events++;
    if (ev->type != RDB_EV_KEY_BEGIN && ev->type != RDB_EV_ITEMS && ev->type != RDB_EV_KEY_END)
        cr_assert(!c->in_key, "event %d inside a key", ev->type);
    switch (ev->type) {
    case RDB_EV_HEADER:
        c->is_valkey = ev->header.is_valkey;
        appendf(&c->log, "HEADER %d %s\n", ev->header.version,
                ev->header.is_valkey ? "valkey" : "redis");
        appendf(&c->chunks, "@%llu HEADER\n", (unsigned long long)ev->offset);
        break;
    case RDB_EV_AUX:
        appendf(&c->log, "AUX ");
        log_slice(&c->log, ev->aux.name);
        appendf(&c->log, " ");
        log_slice(&c->log, ev->aux.value);
        appendf(&c->log, "\n");
        appendf(&c->chunks, "@%llu AUX\n", (unsigned long long)ev->offset);
        break;
    case RDB_EV_SELECTDB:
        appendf(&c->log, "SELECTDB %llu\n", (unsigned long long)ev->select.db);
        appendf(&c->chunks, "@%llu SELECTDB\n", (unsigned long long)ev->offset);
        break;
    case RDB_EV_RESIZEDB:
        appendf(&c->log, "RESIZEDB %llu %llu\n", (unsigned long long)ev->resize.db_size,
                (unsigned long long)ev->resize.expires_size);
        appendf(&c->chunks, "@%llu RESIZEDB\n", (unsigned long long)ev->offset);
        break;
    case RDB_EV_SLOT_INFO:
        appendf(&c->log, "SLOT_INFO %llu %llu %llu\n", (unsigned long long)ev->slot_info.slot,
                (unsigned long long)ev->slot_info.slot_size,
                (unsigned long long)ev->slot_info.expires_slot_size);
        appendf(&c->chunks, "@%llu SLOT_INFO\n", (unsigned long long)ev->offset);
        break;
    case RDB_EV_FUNCTION:
        appendf(&c->log, "FUNCTION ");
        log_slice(&c->log, ev->function.code);
        appendf(&c->log, "\n");
        appendf(&c->chunks, "@%llu FUNCTION\n", (unsigned long long)ev->offset);
        break;
    case RDB_EV_MODULE_AUX: {
        char name[10];
        module_name_of(ev->module_aux.module_id, name);
        cr_assert_str_eq(ev->module_aux.name, name, "MODULE_AUX name vs its id");
        appendf(&c->log, "MODULE_AUX \"%s\" encver=%u when=%llu\n", name,
                (unsigned)(ev->module_aux.module_id & 1023),
                (unsigned long long)ev->module_aux.when);
        appendf(&c->chunks, "@%llu MODULE_AUX raw=", (unsigned long long)ev->offset);
        log_slice(&c->chunks, ev->module_aux.raw);
        appendf(&c->chunks, "\n");
        break;
    }
    case RDB_EV_KEY_BEGIN:
        on_key_begin(c, ev);
        break;
    case RDB_EV_ITEMS:
        on_items(c, ev);
        break;
    case RDB_EV_KEY_END:
        on_key_end(c, ev);
        break;
    case RDB_EV_END:
        appendf(&c->log, "EOF %s\n", ev->end.has_checksum ? "crc" : "nocrc");
        appendf(&c->chunks, "@%llu END %016llx\n", (unsigned long long)ev->offset,
                (unsigned long long)ev->end.checksum);
        break;
    default:
        cr_assert_fail("unknown event type %d", ev->type);
    }
    return n == c->stop_at_event ? 1 : 0;
}

/* ---- The driver ---------------------------------------------------------- */

void decode_result_deinit(struct decode_result *r)
{
    rdb_collector_deinit(&r->col);
}

static int feed(struct rdb_decoder *d, const uint8_t *p, size_t n, struct decode_result *r)
{
    size_t used = (size_t)-1;
    int rc = rdb_decoder_feed(d, p, n, &used, &r->err);
    cr_assert(rc == RS_OK || rc == RS_DONE || rc == RS_ERR, "feed returned %d", rc);
    if (rc == RS_OK)
        cr_assert_eq(used, n, "RS_OK must consume all %zu bytes, used %zu", n, used);
    if (rc == RS_DONE) {
        cr_assert(used <= n, "used %zu of %zu bytes", used, n);
        r->used += used;
    } else if (rc == RS_OK) {
        r->used += n;
    }
    return rc;
}

void decode_run(const void *in, size_t len, const struct rdb_decoder_config *cfg, size_t step,
                size_t split_at, long stop_at_event, struct decode_result *r)
{
    const uint8_t *p = in;
    memset(r, 0, sizeof(*r));
    rdb_collector_init(&r->col, cfg);
    r->col.stop_at_event = stop_at_event;
    struct rdb_decoder *d = rdb_decoder_new(cfg, rdb_collector_event, &r->col);
    cr_assert(d != NULL);

    int rc = RS_OK;
    if (split_at <= len) {
        rc = feed(d, p, split_at, r);
        if (rc == RS_OK)
            rc = feed(d, p + split_at, len - split_at, r);
    } else if (step == 0) {
        rc = feed(d, p, len, r);
    } else {
        for (size_t off = 0; off < len && rc == RS_OK; off += step)
            rc = feed(d, p + off, len - off < step ? len - off : step, r);
    }
    r->rc = rc;

    struct rs_error ferr;
    memset(&ferr, 0, sizeof(ferr));
    r->finish_rc = rdb_decoder_finish(d, &ferr);
    if (rc == RS_OK) {
        r->err = ferr;
    } else {
        cr_assert_eq(r->finish_rc, rc, "finish after %d returned %d", rc, r->finish_rc);
        /* Sticky: one more byte changes nothing. */
        struct rs_error e2;
        memset(&e2, 0, sizeof(e2));
        size_t used = 0;
        int rc2 = rdb_decoder_feed(d, "x", 1, &used, &e2);
        cr_assert_eq(rc2, rc, "a feed after %d returned %d", rc, rc2);
        if (rc == RS_ERR)
            cr_assert(e2.code == r->err.code && e2.offset == r->err.offset,
                      "the error changed on a later feed");
    }
    r->end_offset = rdb_decoder_offset(d);
    r->peak_bytes = rdb_decoder_peak_bytes(d);
    rdb_decoder_free(d);
}

static void compare_runs(struct decode_result *want, struct decode_result *got, const char *mode,
                         size_t k)
{
    cr_assert_eq(got->rc, want->rc, "%s %zu: feed returned %d, whole input %d", mode, k, got->rc,
                 want->rc);
    cr_assert_eq(got->finish_rc, want->finish_rc, "%s %zu: finish returned %d, whole input %d",
                 mode, k, got->finish_rc, want->finish_rc);
    cr_assert_eq(got->err.code, want->err.code, "%s %zu: error %s, whole input %s", mode, k,
                 rs_error_code_name(got->err.code), rs_error_code_name(want->err.code));
    if (want->rc == RS_ERR)
        cr_assert_eq(got->err.offset, want->err.offset,
                     "%s %zu: error offset %llu, whole input %llu (%s)", mode, k,
                     (unsigned long long)got->err.offset, (unsigned long long)want->err.offset,
                     got->err.msg);
    if (want->rc != RS_DONE)
        cr_assert_str_eq(got->err.msg, want->err.msg, "%s %zu: error messages differ", mode, k);
    /* Bytes used mean something only for a snapshot that ended. */
    if (want->rc == RS_DONE)
        cr_assert_eq(got->used, want->used, "%s %zu: used %llu, whole input %llu", mode, k,
                     (unsigned long long)got->used, (unsigned long long)want->used);
    cr_assert_str_eq(rdb_collector_log(&got->col), rdb_collector_log(&want->col),
                     "%s %zu: the items differ", mode, k);
    cr_assert_str_eq(rdb_collector_chunks(&got->col), rdb_collector_chunks(&want->col),
                     "%s %zu: the chunking differs", mode, k);
}

void decode_all(const void *in, size_t len, const struct rdb_decoder_config *cfg, unsigned modes,
                struct decode_result *out)
{
    decode_run(in, len, cfg, 0, SIZE_MAX, -1, out);
    if (modes & SPLIT_ONE_BYTE) {
        struct decode_result r;
        decode_run(in, len, cfg, 1, SIZE_MAX, -1, &r);
        compare_runs(out, &r, "one byte at a time", 0);
        decode_result_deinit(&r);
    }
    if (modes & SPLIT_EVERY_OFFSET) {
        size_t stride = len <= EVERY_OFFSET_MAX ? 1 : len / 512;
        for (size_t k = 0; k <= len; k++) {
            bool near_end = k < 64 || len - k < 64;
            if (!near_end && k % stride != 0)
                continue;
            struct decode_result r;
            decode_run(in, len, cfg, 0, k, -1, &r);
            compare_runs(out, &r, "split at", k);
            decode_result_deinit(&r);
        }
    }
}

/* Set once a test reads a real file: the real files stay out of the repository,
 * so a test that decodes them writes no seeds. */
static bool read_real_file;

static void write_corpus_seed(const void *in, size_t len)
{
    static int count;
    const char *dir = getenv("RS_WRITE_CORPUS");
    if (dir == NULL || *dir == '\0' || len >= 4096 || read_real_file)
        return;
    char path[1024];
    count++;
    if (count == 1)
        snprintf(path, sizeof(path), "%s/%s.rdb", dir, criterion_current_test->name);
    else
        snprintf(path, sizeof(path), "%s/%s-%d.rdb", dir, criterion_current_test->name, count);
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "cannot write %s", path);
    cr_assert_eq(fwrite(in, 1, len, f), len);
    fclose(f);
}

const char *decode_expect_done(const void *in, size_t len, const struct rdb_decoder_config *cfg,
                               struct decode_result *out)
{
    decode_all(in, len, cfg, SPLIT_ALL, out);
    cr_assert_eq(out->rc, RS_DONE, "feed: %s at offset %llu: %s", rs_error_code_name(out->err.code),
                 (unsigned long long)out->err.offset, out->err.msg);
    cr_assert_eq(out->finish_rc, RS_DONE, "finish: %s", out->err.msg);
    cr_assert_eq(out->used, len, "used %llu of %zu bytes", (unsigned long long)out->used, len);
    cr_assert_eq(out->end_offset, len, "rdb_decoder_offset %llu, file of %zu bytes",
                 (unsigned long long)out->end_offset, len);
    write_corpus_seed(in, len);
    return rdb_collector_log(&out->col);
}

void decode_expect_error(const void *in, size_t len, const struct rdb_decoder_config *cfg, int code,
                         struct decode_result *out)
{
    decode_all(in, len, cfg, SPLIT_ALL, out);
    cr_assert_eq(out->rc, RS_ERR, "feed returned %d, want RS_ERR (%s)", out->rc,
                 rs_error_code_name(code));
    cr_assert_eq(out->err.code, code, "error %s, want %s: at %llu: %s",
                 rs_error_code_name(out->err.code), rs_error_code_name(code),
                 (unsigned long long)out->err.offset, out->err.msg);
    cr_assert(out->err.msg[0] != '\0', "an error without a message");
}

void expect_log(const struct rdb_builder *b, const struct rdb_decoder_config *cfg,
                const char *expected)
{
    struct decode_result r;
    const char *log = decode_expect_done(b->p, b->len, cfg, &r);
    cr_assert_str_eq(log, expected, "items log:\n%s\nexpected:\n%s", log, expected);
    decode_result_deinit(&r);
}

void read_testdata(struct rdb_builder *b, const char *name)
{
    char path[1024];
    const char *dir = getenv("RS_TESTDATA");
    if (dir != NULL && *dir != '\0') {
        snprintf(path, sizeof(path), "%s/rdb/%s", dir, name);
    } else {
        /* tests/unit/ -> ../../../shared/testdata beside the repository. */
        const char *src = __FILE__;
        const char *slash = strrchr(src, '/');
        int n = slash ? (int)(slash - src) : 1;
        snprintf(path, sizeof(path), "%.*s/../../../shared/testdata/rdb/%s", n, slash ? src : ".",
                 name);
    }
    read_real_file = true;
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s (set RS_TESTDATA)", path);
    uint8_t buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        rdb_builder_bytes(b, buf, n);
    fclose(f);
}
