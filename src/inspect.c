/* inspect.c - `ringsync inspect`: RDB file -> JSON lines or a summary (see inspect.h).
 *
 * The file is read in pieces and pushed through the snapshot decoder; every
 * key's line is built from the decoder's events as they come:
 *
 *     KEY_BEGIN   {"db":0,"key":"k",...,"value":   and the value's opening
 *     ITEMS       the value's elements (a string: its escaped pieces)
 *     KEY_END     the value's closing, "field_expire_ms", }\n
 *
 * An empty collection (KEY_END says is_empty) prints no line, so a key's line
 * is held in the output buffer until it has an item: a line with an item is
 * never taken back, and from then on it may be written out in parts (a value
 * of any size goes through a buffer of about 1 MiB).
 *
 * Two things do not arrive in the order the line is printed in:
 *  - hash field TTLs come with the fields but are printed after "value": they
 *    wait, already formatted, in a second buffer (in->ttl);
 *  - a stream's metadata comes after its entries: the stream object's members
 *    are printed in file order instead ({"entries":[...],"length":N,...}).
 */
#include "inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json_out.h"
#include "rdb_decoder.h"
#include "rs_error.h"

#define INSPECT_READ_BYTES          ((size_t)256 << 10)
#define INSPECT_STDOUT_BUFFER_BYTES ((size_t)1 << 20)
#define INSPECT_KINDS               (RDB_KIND_MODULE + 1)
#define INSPECT_TOP_KEYS            10
#define INSPECT_TOP_KEY_BYTES       200 /* a top key's name is kept (and shown) up to this */
#define INSPECT_SHOWN_BYTES         200 /* AUX values and warnings quote up to this many bytes */
#define INSPECT_ESCAPED_CAP         (INSPECT_SHOWN_BYTES * 4 + 8)

static const char inspect_usage[] =
    "usage: ringsync inspect [--summary] FILE.rdb|-\n"
    "\n"
    "Prints what an RDB snapshot holds: one JSON object per key (and per function\n"
    "library) on stdout, in file order. '-' reads standard input.\n"
    "\n"
    "  --summary   print a text report instead: version, AUX fields, keys per\n"
    "              database and type, the largest keys, sizes and decode speed\n"
    "  -h, --help  print this help\n"
    "\n"
    "Exit status: 0 the file was read to its end, 1 it is bad or unreadable,\n"
    "2 bad usage.\n";

/* Where the output of a stream value stands. Members are printed in the order
 * the decoder delivers them, which is file order:
 *
 *   {"entries":[E,...],"length":N,...,"groups":[G,...]}
 *   G = {"name":..,"last_delivered_id":..,"entries_read":..,"pel":[P,...],"consumers":[C,...]}
 *   C = {"name":..,"seen_time_ms":..,"active_time_ms":..,"pel":["ms-seq",...]}
 *
 *   ENTRIES --META--> GROUPS --GROUP--> GROUP_PEL --CONSUMER--> CONSUMER_PEL
 *   (ENTRY stays)                       ^ (PEL stays)           (CONSUMER, CONSUMER_PEL stay)
 *                                       |      |                        |
 *                                       +------+---------GROUP----------+
 *                                        GROUP
 *
 * Every arrow is taken in inspect_write_stream_item(). A GROUP first closes the
 * open group and consumer (inspect_stream_close_group()), as KEY_END does
 * (inspect_write_key_end()), which then closes "groups" and the object.
 */
enum inspect_stream_state {
    INSPECT_STREAM_ENTRIES = 0,
    INSPECT_STREAM_GROUPS,
    INSPECT_STREAM_GROUP_PEL,
    INSPECT_STREAM_CONSUMER_PEL,
};

/* The key whose events are being delivered. */
struct inspect_key {
    uint8_t kind;
    uint64_t items;    /* items delivered so far */
    uint64_t elements; /* list or set elements, zset members, hash fields, stream entries */
    int stream_state;  /* enum inspect_stream_state */
    uint64_t groups;   /* stream groups opened */
    uint64_t pel;      /* PEL entries of the open group */
    uint64_t consumers;
    uint64_t consumer_pel; /* PEL ids of the open consumer */
    bool has_module_head;
};

struct inspect_db_stats {
    uint64_t db;
    uint64_t keys;
    uint64_t expires;
    uint64_t kind_keys[INSPECT_KINDS];
};

struct inspect_top_key {
    uint64_t db;
    uint64_t encoded_size;
    uint64_t elements;
    uint8_t kind;
    size_t key_len;   /* the whole name's length */
    size_t shown_len; /* the bytes kept in key[] */
    char key[INSPECT_TOP_KEY_BYTES];
};

struct inspect_aux {
    char *name; /* escaped for display */
    char *value;
};

struct inspect_summary {
    bool has_header;
    int version;
    bool is_valkey;
    struct inspect_aux *aux;
    size_t aux_count;
    size_t aux_cap;
    struct inspect_db_stats *dbs;
    size_t db_count;
    size_t db_cap;
    size_t db_last; /* index of the last db used: keys come db by db */
    uint64_t keys;
    uint64_t expires;
    uint64_t kind_keys[INSPECT_KINDS];
    uint64_t empty_skipped;
    uint64_t functions;
    uint64_t module_aux;
    struct inspect_top_key top[INSPECT_TOP_KEYS];
    size_t top_count;
    bool is_oom;
};

struct inspect {
    const char *name; /* the file as named in messages */
    bool is_summary;
    struct json_out out; /* stdout */
    struct json_out ttl; /* the open hash's field TTLs, as JSON members */
    struct inspect_key key;
    struct inspect_summary sum;
};

/* The buffer of stdout: static, because stdout outlives inspect_main. */
static char inspect_stdout_buf[INSPECT_STDOUT_BUFFER_BYTES];

static void inspect_warn_empty(const struct rdb_key_info *k)
{
    char key[INSPECT_ESCAPED_CAP];
    rs_escape_bytes(key, sizeof(key), k->key.p, k->key.len, INSPECT_SHOWN_BYTES);
    fprintf(stderr,
            "ringsync: inspect: skipping empty %s key '%s' in db %" PRIu64 " at offset %" PRIu64
            " (Redis skips it too)\n",
            rdb_kind_name(k->kind), key, k->db, k->offset);
}

/* ---- JSON lines --------------------------------------------------------- */

static void inspect_write_id(struct json_out *o, struct rdb_stream_id id)
{
    json_out_char(o, '"');
    json_out_u64(o, id.ms);
    json_out_char(o, '-');
    json_out_u64(o, id.seq);
    json_out_char(o, '"');
}

static void inspect_write_comma_if(struct json_out *o, uint64_t count_before)
{
    if (count_before > 0)
        json_out_char(o, ',');
}

static void inspect_write_key_begin(struct inspect *in, const struct rdb_key_info *k)
{
    struct json_out *o = &in->out;
    /* Held until the first item: an empty collection takes its line back. */
    json_out_hold(o, true);
    json_out_text(o, "{\"db\":");
    json_out_u64(o, k->db);
    json_out_text(o, ",\"key\":");
    json_out_string(o, k->key.p, k->key.len);
    json_out_text(o, ",\"type\":");
    json_out_text(o, "\"");
    json_out_text(o, rdb_kind_name(k->kind));
    json_out_text(o, "\",\"encoding\":");
    if (k->encoding != NULL) {
        json_out_char(o, '"');
        json_out_text(o, k->encoding);
        json_out_char(o, '"');
    } else {
        json_out_text(o, "null");
    }
    json_out_text(o, ",\"expire_ms\":");
    if (k->expire_ms >= 0)
        json_out_i64(o, k->expire_ms);
    else
        json_out_text(o, "null");
    json_out_text(o, ",\"value\":");
    switch (k->kind) {
    case RDB_KIND_STRING:
        json_out_char(o, '"');
        break;
    case RDB_KIND_LIST:
    case RDB_KIND_SET:
        json_out_char(o, '[');
        break;
    case RDB_KIND_ZSET:
    case RDB_KIND_HASH:
        json_out_char(o, '{');
        break;
    case RDB_KIND_STREAM:
        json_out_text(o, "{\"entries\":[");
        break;
    case RDB_KIND_MODULE:
        break; /* opened by the RDB_ITEM_MODULE item, which names the module */
    }
}

/* Closes the open consumer and group, if any, leaving the "groups" array open. */
static void inspect_stream_close_group(struct inspect *in)
{
    struct json_out *o = &in->out;
    switch (in->key.stream_state) {
    case INSPECT_STREAM_GROUP_PEL:
        json_out_text(o, "],\"consumers\":[]}");
        break;
    case INSPECT_STREAM_CONSUMER_PEL:
        json_out_text(o, "]}]}");
        break;
    }
    in->key.stream_state = INSPECT_STREAM_GROUPS;
}

static void inspect_write_stream_item(struct inspect *in, const struct rdb_item *it)
{
    struct json_out *o = &in->out;
    struct inspect_key *key = &in->key;
    switch (it->kind) {
    case RDB_ITEM_STREAM_ENTRY:
        if (it->entry.deleted)
            break; /* tombstones are for writers rebuilding PELs, not data */
        inspect_write_comma_if(o, key->elements - 1);
        json_out_text(o, "{\"id\":");
        inspect_write_id(o, it->entry.id);
        json_out_text(o, ",\"fields\":[");
        for (uint32_t i = 0; i < it->entry.nfv; i++) {
            inspect_write_comma_if(o, i);
            json_out_string(o, it->entry.fv[i].p, it->entry.fv[i].len);
        }
        json_out_text(o, "]}");
        break;
    case RDB_ITEM_STREAM_META:
        json_out_text(o, "],\"length\":");
        json_out_u64(o, it->meta.length);
        json_out_text(o, ",\"last_id\":");
        inspect_write_id(o, it->meta.last_id);
        if (it->meta.has_v2_fields) {
            json_out_text(o, ",\"first_id\":");
            inspect_write_id(o, it->meta.first_id);
            json_out_text(o, ",\"max_deleted_id\":");
            inspect_write_id(o, it->meta.max_deleted_id);
            json_out_text(o, ",\"entries_added\":");
            json_out_u64(o, it->meta.entries_added);
        }
        json_out_text(o, ",\"groups\":[");
        key->stream_state = INSPECT_STREAM_GROUPS;
        break;
    case RDB_ITEM_STREAM_GROUP:
        inspect_stream_close_group(in);
        inspect_write_comma_if(o, key->groups++);
        json_out_text(o, "{\"name\":");
        json_out_string(o, it->a.p, it->a.len);
        json_out_text(o, ",\"last_delivered_id\":");
        inspect_write_id(o, it->group.last_id);
        json_out_text(o, ",\"entries_read\":");
        if (it->group.entries_read >= 0)
            json_out_i64(o, it->group.entries_read);
        else
            json_out_text(o, "null");
        json_out_text(o, ",\"pel\":[");
        key->pel = 0;
        key->consumers = 0;
        key->stream_state = INSPECT_STREAM_GROUP_PEL;
        break;
    case RDB_ITEM_STREAM_PEL:
        inspect_write_comma_if(o, key->pel++);
        json_out_text(o, "{\"id\":");
        inspect_write_id(o, it->pel.id);
        json_out_text(o, ",\"delivery_time_ms\":");
        json_out_i64(o, it->pel.delivery_time_ms);
        json_out_text(o, ",\"delivery_count\":");
        json_out_u64(o, it->pel.delivery_count);
        json_out_char(o, '}');
        break;
    case RDB_ITEM_STREAM_CONSUMER:
        if (key->stream_state == INSPECT_STREAM_GROUP_PEL)
            json_out_text(o, "],\"consumers\":[");
        else
            json_out_text(o, "]}");
        inspect_write_comma_if(o, key->consumers++);
        json_out_text(o, "{\"name\":");
        json_out_string(o, it->a.p, it->a.len);
        json_out_text(o, ",\"seen_time_ms\":");
        json_out_i64(o, it->consumer.seen_time_ms);
        json_out_text(o, ",\"active_time_ms\":");
        if (it->consumer.active_time_ms >= 0)
            json_out_i64(o, it->consumer.active_time_ms);
        else
            json_out_text(o, "null");
        json_out_text(o, ",\"pel\":[");
        key->consumer_pel = 0;
        key->stream_state = INSPECT_STREAM_CONSUMER_PEL;
        break;
    case RDB_ITEM_STREAM_CONSUMER_PEL:
        inspect_write_comma_if(o, key->consumer_pel++);
        inspect_write_id(o, it->pel.id);
        break;
    }
}

static void inspect_write_item(struct inspect *in, const struct rdb_item *it)
{
    struct json_out *o = &in->out;
    switch (it->kind) {
    case RDB_ITEM_STRING_PART:
        json_out_escaped(o, it->a.p, it->a.len);
        break;
    case RDB_ITEM_ELEMENT:
        inspect_write_comma_if(o, in->key.elements - 1);
        json_out_string(o, it->a.p, it->a.len);
        break;
    case RDB_ITEM_ZSET:
        inspect_write_comma_if(o, in->key.elements - 1);
        json_out_string(o, it->a.p, it->a.len);
        json_out_char(o, ':');
        json_out_double(o, it->score);
        break;
    case RDB_ITEM_HASH:
        inspect_write_comma_if(o, in->key.elements - 1);
        json_out_string(o, it->a.p, it->a.len);
        json_out_char(o, ':');
        json_out_string(o, it->b.p, it->b.len);
        if (it->ttl_ms >= 0) {
            inspect_write_comma_if(&in->ttl, in->ttl.len);
            json_out_string(&in->ttl, it->a.p, it->a.len);
            json_out_char(&in->ttl, ':');
            json_out_i64(&in->ttl, it->ttl_ms);
        }
        break;
    case RDB_ITEM_MODULE:
        json_out_text(o, "{\"module\":");
        json_out_string(o, it->module.name, strlen(it->module.name));
        json_out_text(o, ",\"encver\":");
        json_out_u64(o, it->module.encver);
        in->key.has_module_head = true;
        break;
    default:
        inspect_write_stream_item(in, it);
        break;
    }
}

/* Returns false when the key's line was dropped (an empty collection). */
static bool inspect_write_key_end(struct inspect *in, const struct rdb_event *ev)
{
    struct json_out *o = &in->out;
    const struct rdb_key_info *k = ev->key;
    if (ev->key_end.is_empty) {
        /* The decoder's contract: an empty collection has no items, so the
         * line is still held whole and can be taken back. */
        RS_ASSERT(in->key.items == 0);
        json_out_discard_line(o);
        json_out_discard_line(&in->ttl);
        return false;
    }
    switch (k->kind) {
    case RDB_KIND_STRING:
        json_out_char(o, '"');
        break;
    case RDB_KIND_LIST:
    case RDB_KIND_SET:
        json_out_char(o, ']');
        break;
    case RDB_KIND_ZSET:
        json_out_char(o, '}');
        break;
    case RDB_KIND_HASH:
        json_out_char(o, '}');
        if (in->ttl.len > 0) {
            json_out_text(o, ",\"field_expire_ms\":{");
            json_out_raw(o, in->ttl.buf, in->ttl.len);
            json_out_char(o, '}');
            json_out_discard_line(&in->ttl);
        }
        break;
    case RDB_KIND_STREAM:
        if (in->key.stream_state == INSPECT_STREAM_ENTRIES) {
            json_out_text(o, "]}"); /* no metadata: not from a valid file */
        } else {
            inspect_stream_close_group(in);
            json_out_text(o, "]}");
        }
        break;
    case RDB_KIND_MODULE:
        if (!in->key.has_module_head)
            json_out_text(o, "{\"module\":null,\"encver\":null");
        json_out_text(o, ",\"raw\":");
        if (ev->key_end.has_raw)
            json_out_string(o, ev->key_end.raw.p, ev->key_end.raw.len);
        else
            json_out_text(o, "null");
        json_out_char(o, '}');
        break;
    }
    json_out_char(o, '}');
    json_out_end_line(o);
    return true;
}

/* ---- summary ------------------------------------------------------------ */

static char *inspect_escape_dup(struct rs_slice s)
{
    char tmp[INSPECT_ESCAPED_CAP];
    rs_escape_bytes(tmp, sizeof(tmp), s.p, s.len, INSPECT_SHOWN_BYTES);
    return strdup(tmp);
}

static void inspect_summary_add_aux(struct inspect_summary *sum, const struct rdb_event *ev)
{
    if (sum->aux_count == sum->aux_cap) {
        size_t cap = sum->aux_cap != 0 ? sum->aux_cap * 2 : 16;
        struct inspect_aux *p = realloc(sum->aux, cap * sizeof(*p));
        if (p == NULL) {
            sum->is_oom = true;
            return;
        }
        sum->aux = p;
        sum->aux_cap = cap;
    }
    struct inspect_aux *a = &sum->aux[sum->aux_count];
    a->name = inspect_escape_dup(ev->aux.name);
    a->value = inspect_escape_dup(ev->aux.value);
    if (a->name == NULL || a->value == NULL) {
        free(a->name);
        free(a->value);
        sum->is_oom = true;
        return;
    }
    sum->aux_count++;
}

static struct inspect_db_stats *inspect_summary_db(struct inspect_summary *sum, uint64_t db)
{
    if (sum->db_last < sum->db_count && sum->dbs[sum->db_last].db == db)
        return &sum->dbs[sum->db_last];
    for (size_t i = 0; i < sum->db_count; i++) {
        if (sum->dbs[i].db == db) {
            sum->db_last = i;
            return &sum->dbs[i];
        }
    }
    if (sum->db_count == sum->db_cap) {
        size_t cap = sum->db_cap != 0 ? sum->db_cap * 2 : 16;
        struct inspect_db_stats *p = realloc(sum->dbs, cap * sizeof(*p));
        if (p == NULL) {
            sum->is_oom = true;
            return NULL;
        }
        sum->dbs = p;
        sum->db_cap = cap;
    }
    struct inspect_db_stats *s = &sum->dbs[sum->db_count];
    memset(s, 0, sizeof(*s));
    s->db = db;
    sum->db_last = sum->db_count++;
    return s;
}

/* Keeps the INSPECT_TOP_KEYS largest keys, largest first; the first seen wins a tie. */
static void inspect_summary_consider_top(struct inspect_summary *sum, const struct rdb_key_info *k,
                                         uint64_t encoded_size, uint64_t elements)
{
    size_t n = sum->top_count;
    if (n == INSPECT_TOP_KEYS && encoded_size <= sum->top[n - 1].encoded_size)
        return;
    size_t at = n < INSPECT_TOP_KEYS ? n : n - 1;
    while (at > 0 && sum->top[at - 1].encoded_size < encoded_size) {
        sum->top[at] = sum->top[at - 1];
        at--;
    }
    struct inspect_top_key *t = &sum->top[at];
    t->db = k->db;
    t->encoded_size = encoded_size;
    t->elements = elements;
    t->kind = k->kind;
    t->key_len = k->key.len;
    t->shown_len = k->key.len < INSPECT_TOP_KEY_BYTES ? k->key.len : INSPECT_TOP_KEY_BYTES;
    memcpy(t->key, k->key.p, t->shown_len);
    if (n < INSPECT_TOP_KEYS)
        sum->top_count++;
}

static void inspect_summary_key_end(struct inspect *in, const struct rdb_event *ev)
{
    struct inspect_summary *sum = &in->sum;
    const struct rdb_key_info *k = ev->key;
    if (ev->key_end.is_empty) {
        sum->empty_skipped++;
        return;
    }
    sum->keys++;
    sum->kind_keys[k->kind]++;
    bool has_expiry = k->expire_ms >= 0;
    sum->expires += has_expiry;
    struct inspect_db_stats *db = inspect_summary_db(sum, k->db);
    if (db != NULL) {
        db->keys++;
        db->expires += has_expiry;
        db->kind_keys[k->kind]++;
    }
    inspect_summary_consider_top(sum, k, ev->key_end.encoded_size, in->key.elements);
}

static void inspect_summary_free(struct inspect_summary *sum)
{
    for (size_t i = 0; i < sum->aux_count; i++) {
        free(sum->aux[i].name);
        free(sum->aux[i].value);
    }
    free(sum->aux);
    free(sum->dbs);
}

static int inspect_db_cmp(const void *a, const void *b)
{
    const struct inspect_db_stats *x = a, *y = b;
    return x->db < y->db ? -1 : x->db > y->db;
}

static void inspect_summary_print(struct inspect *in, uint64_t total_bytes, double seconds,
                                  size_t peak_bytes)
{
    struct inspect_summary *sum = &in->sum;
    FILE *f = stdout;
    fprintf(f, "%-20s %s\n", "file", in->name);
    if (sum->has_header)
        fprintf(f, "%-20s %s RDB version %d\n", "format", sum->is_valkey ? "Valkey" : "Redis",
                sum->version);
    fprintf(f, "%-20s %zu\n", "aux fields", sum->aux_count);
    for (size_t i = 0; i < sum->aux_count; i++)
        fprintf(f, "  %-18s = %s\n", sum->aux[i].name, sum->aux[i].value);

    fprintf(f, "%-20s %" PRIu64 " (%" PRIu64 " with an expiry, %" PRIu64 " empty skipped)\n",
            "keys", sum->keys, sum->expires, sum->empty_skipped);
    fprintf(f, "  %-18s", "by type");
    for (int t = 0; t < INSPECT_KINDS; t++)
        fprintf(f, " %s %" PRIu64, rdb_kind_name(t), sum->kind_keys[t]);
    fprintf(f, "\n");

    qsort(sum->dbs, sum->db_count, sizeof(sum->dbs[0]), inspect_db_cmp);
    fprintf(f, "%-20s %zu\n", "databases", sum->db_count);
    if (sum->db_count > 0) {
        fprintf(f, "  %6s %12s %12s", "db", "keys", "expires");
        for (int t = 0; t < INSPECT_KINDS; t++)
            fprintf(f, " %10s", rdb_kind_name(t));
        fprintf(f, "\n");
        for (size_t i = 0; i < sum->db_count; i++) {
            const struct inspect_db_stats *s = &sum->dbs[i];
            fprintf(f, "  %6" PRIu64 " %12" PRIu64 " %12" PRIu64, s->db, s->keys, s->expires);
            for (int t = 0; t < INSPECT_KINDS; t++)
                fprintf(f, " %10" PRIu64, s->kind_keys[t]);
            fprintf(f, "\n");
        }
    }
    fprintf(f, "%-20s %" PRIu64 "\n", "function libraries", sum->functions);
    fprintf(f, "%-20s %" PRIu64 "\n", "module aux records", sum->module_aux);

    fprintf(f, "%-20s %zu\n", "largest keys", sum->top_count);
    if (sum->top_count > 0) {
        fprintf(f, "  %6s %14s %12s  %-7s %s\n", "db", "bytes", "elements", "type", "key");
        for (size_t i = 0; i < sum->top_count; i++) {
            const struct inspect_top_key *t = &sum->top[i];
            char elements[24] = "-";
            if (t->kind != RDB_KIND_STRING && t->kind != RDB_KIND_MODULE)
                snprintf(elements, sizeof(elements), "%" PRIu64, t->elements);
            char key[INSPECT_TOP_KEY_BYTES * 4 + 8];
            rs_escape_bytes(key, sizeof(key), t->key, t->shown_len, t->shown_len);
            fprintf(f, "  %6" PRIu64 " %14" PRIu64 " %12s  %-7s '%s'%s\n", t->db, t->encoded_size,
                    elements, rdb_kind_name(t->kind), key, t->key_len > t->shown_len ? "..." : "");
        }
    }

    double ms = seconds * 1e3;
    double mb_s = seconds > 0 ? (double)total_bytes / 1e6 / seconds : 0;
    double keys_s = seconds > 0 ? (double)sum->keys / seconds : 0;
    fprintf(f, "%-20s %" PRIu64 "\n", "total bytes", total_bytes);
    fprintf(f, "%-20s %.3f ms\n", "decode time", ms);
    fprintf(f, "%-20s %.1f MB/s, %.0f keys/s\n", "throughput", mb_s, keys_s);
    fprintf(f, "%-20s %zu\n", "decoder peak bytes", peak_bytes);
}

/* The first failure to produce the output, as a negative errno. */
static int inspect_output_error(const struct inspect *in)
{
    if (json_out_error(&in->out) != 0)
        return json_out_error(&in->out);
    if (json_out_error(&in->ttl) != 0)
        return json_out_error(&in->ttl);
    return in->sum.is_oom ? -ENOMEM : 0;
}

static void inspect_report_output_error(const struct inspect *in, int neg_errno)
{
    fprintf(stderr, "ringsync: inspect: %s: cannot write the output: %s\n", in->name,
            strerror(-neg_errno));
}

/* ---- events ------------------------------------------------------------- */

static void inspect_count_items(struct inspect_key *key, const struct rdb_item *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        switch (items[i].kind) {
        case RDB_ITEM_STREAM_ENTRY:
            if (!items[i].entry.deleted) /* a tombstone is not an entry */
                key->elements++;
            break;
        case RDB_ITEM_ELEMENT:
        case RDB_ITEM_ZSET:
        case RDB_ITEM_HASH:
            key->elements++;
            break;
        }
    }
    key->items += count;
}

static int inspect_on_event(void *ctx, const struct rdb_event *ev)
{
    struct inspect *in = ctx;
    switch (ev->type) {
    case RDB_EV_HEADER:
        in->sum.has_header = true;
        in->sum.version = ev->header.version;
        in->sum.is_valkey = ev->header.is_valkey;
        break;
    case RDB_EV_AUX:
        if (in->is_summary)
            inspect_summary_add_aux(&in->sum, ev);
        break;
    case RDB_EV_FUNCTION:
        in->sum.functions++;
        if (!in->is_summary) {
            json_out_text(&in->out, "{\"function\":");
            json_out_string(&in->out, ev->function.code.p, ev->function.code.len);
            json_out_char(&in->out, '}');
            json_out_end_line(&in->out);
        }
        break;
    case RDB_EV_MODULE_AUX:
        in->sum.module_aux++;
        break;
    case RDB_EV_KEY_BEGIN:
        memset(&in->key, 0, sizeof(in->key));
        in->key.kind = ev->key->kind;
        if (!in->is_summary)
            inspect_write_key_begin(in, ev->key);
        break;
    case RDB_EV_ITEMS:
        if (in->is_summary) {
            inspect_count_items(&in->key, ev->items.items, ev->items.count);
            break;
        }
        if (ev->items.count > 0)
            json_out_hold(&in->out, false); /* a line with an item is never taken back */
        for (size_t i = 0; i < ev->items.count; i++) {
            inspect_count_items(&in->key, &ev->items.items[i], 1);
            inspect_write_item(in, &ev->items.items[i]);
        }
        break;
    case RDB_EV_KEY_END:
        if (ev->key_end.is_empty)
            inspect_warn_empty(ev->key);
        if (in->is_summary)
            inspect_summary_key_end(in, ev);
        else
            inspect_write_key_end(in, ev);
        break;
    default:
        break;
    }
    return inspect_output_error(in) != 0 ? -1 : 0;
}

/* ---- the command -------------------------------------------------------- */

static double inspect_seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Ends stdout after an error: lines already printed stay printed; a line that
 * was cut is ended (if part of it is out) or dropped. */
static void inspect_abandon_output(struct inspect *in)
{
    if (in->out.line_written > 0)
        json_out_char(&in->out, '\n');
    else
        json_out_discard_line(&in->out);
    json_out_flush(&in->out);
}

/* Reads fd to its end through the decoder. Returns the exit code. */
static int inspect_run(struct inspect *in, int fd)
{
    struct rdb_decoder *d = rdb_decoder_new(NULL, inspect_on_event, in);
    char *buf = malloc(INSPECT_READ_BYTES);
    if (d == NULL || buf == NULL) {
        fprintf(stderr, "ringsync: inspect: out of memory\n");
        rdb_decoder_free(d);
        free(buf);
        return 1;
    }
    struct rs_error err = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = RS_OK;
    uint64_t trailing = 0;
    uint64_t total_bytes = 0;
    int code = 0;
    for (;;) {
        ssize_t n = read(fd, buf, INSPECT_READ_BYTES);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            inspect_abandon_output(in);
            fprintf(stderr, "ringsync: inspect: cannot read %s: %s\n", in->name, strerror(e));
            code = 1;
            goto out;
        }
        if (n == 0)
            break;
        if (rc == RS_DONE) {
            trailing += (uint64_t)n;
            continue;
        }
        size_t used = 0;
        rc = rdb_decoder_feed(d, buf, (size_t)n, &used, &err);
        if (rc == RS_ERR)
            break;
        if (rc == RS_DONE) {
            total_bytes = rdb_decoder_offset(d);
            trailing += (uint64_t)n - used;
        }
    }
    if (rc == RS_OK) {
        rc = rdb_decoder_finish(d, &err);
        total_bytes = rdb_decoder_offset(d);
    }
    double seconds = inspect_seconds_since(&t0);

    if (rc == RS_ERR) {
        inspect_abandon_output(in);
        if (err.code == RS_E_CONSUMER)
            inspect_report_output_error(in, inspect_output_error(in));
        else
            fprintf(stderr, "ringsync: inspect: %s: %s error at offset %" PRIu64 ": %s\n", in->name,
                    rs_error_code_name(err.code), err.offset, err.msg);
        code = 1;
        goto out;
    }
    if (trailing > 0)
        fprintf(stderr,
                "ringsync: inspect: %s: ignoring %" PRIu64
                " bytes after the end of the snapshot at offset %" PRIu64 " (Redis ignores them "
                "too)\n",
                in->name, trailing, total_bytes);
    if (in->is_summary)
        inspect_summary_print(in, total_bytes, seconds, rdb_decoder_peak_bytes(d));
    errno = 0;
    int e = json_out_flush(&in->out);
    if (e == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        e = errno != 0 ? -errno : -EIO;
    if (e != 0) {
        inspect_report_output_error(in, e);
        code = 1;
    }
out:
    rdb_decoder_free(d);
    free(buf);
    return code;
}

/* Prints "ringsync: inspect: <what><arg>" and the usage to stderr. Returns 2. */
static int inspect_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "ringsync: inspect: %s%s\n%s", what, arg, inspect_usage);
    return 2;
}

int inspect_main(int argc, char **argv)
{
    bool is_summary = false;
    const char *path = NULL;
    bool is_options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!is_options_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                is_options_done = true;
            } else if (strcmp(a, "--summary") == 0) {
                is_summary = true;
            } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                fputs(inspect_usage, stdout);
                return 0;
            } else {
                return inspect_usage_error("unknown option ", a);
            }
            continue;
        }
        if (path != NULL)
            return inspect_usage_error("one FILE only; also got ", a);
        path = a;
    }
    if (path == NULL)
        return inspect_usage_error("missing FILE", "");

    int fd = 0;
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "ringsync: inspect: cannot open %s: %s\n", path, strerror(errno));
            return 1;
        }
    }

    setvbuf(stdout, inspect_stdout_buf, _IOFBF, sizeof(inspect_stdout_buf));
    struct inspect in = {.name = path, .is_summary = is_summary};
    json_out_init(&in.out, stdout, 0);
    json_out_init(&in.ttl, NULL, 0);
    int code = inspect_run(&in, fd);
    if (fd != 0)
        close(fd);
    json_out_deinit(&in.out);
    json_out_deinit(&in.ttl);
    inspect_summary_free(&in.sum);
    return code;
}
