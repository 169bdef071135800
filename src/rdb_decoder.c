/* rdb_decoder.c - the push-driven, resumable RDB decoder (see rdb_decoder.h).
 *
 * Invariants:
 *  1. Every byte fed is copied once into `buf`; the parser reads only
 *     buf[pos..end). A step either completes a whole unit (an opcode and its
 *     operands, one element, one compact node, one string piece) and commits
 *     `pos`, or returns AGAIN having changed nothing, with `need` saying how
 *     many bytes from pos it wants. So a unit split across feeds is simply
 *     parsed again once all of it is there.
 *  2. Items go into `arena`, never point into `buf`: buf may move between
 *     feeds, a chunk of items only on flush. Chunk boundaries depend on item
 *     counts and sizes alone, so they do not depend on how input was split.
 *  3. buf keeps the bytes from `keep` (the start of the current value) while
 *     the value is no bigger than raw_max, so KEY_END can hand them out.
 *  4. Memory is bounded by raw_max + one unit (at most element_max) for buf,
 *     chunk_bytes (or one element) for the arena, and one element for scratch.
 *
 *  HEADER --step_header--> OPCODE --step_opcode--> OPCODE (AUX, SELECTDB, ...)
 *                            |  \--step_opcode(type byte)--> KEY --step_key--> VALUE
 *                            |                                                   |
 *                            |<---------------value_done (KEY_END)---------------/
 *                            \--step_opcode(EOF)--> CHECKSUM --step_checksum--> DONE
 */
#include "decimal.h"
#include "rdb_decoder.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liblzf/lzf.h>

#include "crc64.h"
#include "lzf_stream.h"
#include "rdb_blob.h"
#include "rdb_format.h"

#define AGAIN 2 /* internal: the step needs more bytes */

#define NO_KEEP     SIZE_MAX
#define BUF_INITIAL (256 * 1024)

enum state {
    S_HEADER,
    S_OPCODE,
    S_KEY,
    S_VALUE,
    S_CHECKSUM,
    S_DONE,
};

/* Steps within a value. */
enum vstep {
    V_START,       /* the first step of every value */
    V_ELEMENTS,    /* counted elements (list, set, zset, hash, quicklist nodes) */
    V_STR_RAW,     /* pieces of a big plain string */
    V_STR_LZF,     /* pieces of a big LZF string */
    V_S_NODES,     /* stream listpack nodes */
    V_S_META,      /* stream length and ids */
    V_S_GROUPS,    /* stream group count */
    V_S_GROUP,     /* a group's header */
    V_S_PEL,       /* a group's PEL entries */
    V_S_CONSUMERS, /* a group's consumer count */
    V_S_CONSUMER,  /* a consumer's header */
    V_S_CPEL,      /* a consumer's PEL ids */
};

struct cur {
    const uint8_t *start; /* buf + pos */
    const uint8_t *p;
    const uint8_t *end;
    size_t need; /* on AGAIN: bytes wanted from start */
};

/* A string as the RDB holds it: raw bytes, an integer, or LZF. */
enum { SREF_RAW, SREF_INT, SREF_LZF };
struct sref {
    const uint8_t *at; /* the string's first byte (its length) in buf */
    int enc;
    const uint8_t *p; /* raw or compressed bytes */
    size_t clen;      /* compressed length */
    size_t len;       /* decoded length */
    char itxt[24];    /* an integer's decimal text */
};

struct rdb_decoder {
    rdb_event_fn fn;
    void *ctx;
    struct rdb_decoder_config cfg;

    int state;
    int sticky; /* RS_OK, RS_DONE or RS_ERR */
    struct rs_error err;
    int version;
    bool is_valkey;

    /* input window */
    uint8_t *buf;
    size_t cap, pos, end;
    size_t need;       /* from the last AGAIN */
    size_t keep;       /* start of the value whose raw bytes are kept, or NO_KEEP */
    bool suppress;     /* raw_or_items: items of this value are not emitted (yet) */
    uint64_t base_off; /* file offset of buf[0] */
    uint64_t crc;
    size_t crc_pos; /* buf index up to which crc covers */
    size_t peak;

    /* the next key's hints, and the current key */
    uint64_t db;
    int64_t next_expire_ms;
    int64_t next_idle_s;
    int next_freq;
    uint64_t next_key_off;
    bool has_next_key_off;
    struct rdb_key_info key;
    char *keybuf;
    size_t keycap;

    /* value parsing */
    int vstep;
    uint64_t left;      /* elements, nodes, entries ... still to read */
    uint64_t left2;     /* stream: groups still to read */
    uint64_t left3;     /* stream: consumers still to read */
    int64_t min_expire; /* hash field-expiry types */
    uint64_t items_in_key;
    uint64_t str_left; /* V_STR_RAW: bytes, V_STR_LZF: compressed bytes */
    struct lzf_stream lzf;
    bool lzf_live;

    /* the chunk of items being built */
    struct rdb_item *items;
    size_t nitems;
    struct rs_slice *fv;
    size_t nfv, fvcap;
    char *arena;
    size_t arena_len, arena_cap;

    /* decompression scratch, two slots (AUX name and value, ...) */
    uint8_t *scratch[2];
    size_t scratch_cap[2];

    /* stream master fields of the current node */
    struct rdb_blob_entry *mfields;
    size_t mfields_cap;
};

static void note_peak(struct rdb_decoder *d);

/* ------------------------------------------------------------------ names */

const char *rdb_kind_name(int kind)
{
    static const char *const names[] = {"string", "list",   "set",   "zset",
                                        "hash",   "stream", "module"};
    if (kind < 0 || kind > RDB_KIND_MODULE)
        return "unknown";
    return names[kind];
}

const char *rdb_type_name(int rdb_type, bool is_valkey)
{
    switch (rdb_type) {
    case RDB_TYPE_STRING:
        return "string";
    case RDB_TYPE_LIST:
        return "list-linked";
    case RDB_TYPE_SET:
        return "set-hashtable";
    case RDB_TYPE_ZSET:
        return "zset-skiplist";
    case RDB_TYPE_HASH:
        return "hash-hashtable";
    case RDB_TYPE_ZSET_2:
        return "zset-skiplist-2";
    case RDB_TYPE_MODULE_PRE_GA:
        return "module-pre-ga";
    case RDB_TYPE_MODULE_2:
        return "module-2";
    case RDB_TYPE_HASH_ZIPMAP:
        return "hash-zipmap";
    case RDB_TYPE_LIST_ZIPLIST:
        return "list-ziplist";
    case RDB_TYPE_SET_INTSET:
        return "set-intset";
    case RDB_TYPE_ZSET_ZIPLIST:
        return "zset-ziplist";
    case RDB_TYPE_HASH_ZIPLIST:
        return "hash-ziplist";
    case RDB_TYPE_LIST_QUICKLIST:
        return "list-quicklist";
    case RDB_TYPE_STREAM_LISTPACKS:
        return "stream-listpacks";
    case RDB_TYPE_HASH_LISTPACK:
        return "hash-listpack";
    case RDB_TYPE_ZSET_LISTPACK:
        return "zset-listpack";
    case RDB_TYPE_LIST_QUICKLIST_2:
        return "list-quicklist-2";
    case RDB_TYPE_STREAM_LISTPACKS_2:
        return "stream-listpacks-2";
    case RDB_TYPE_SET_LISTPACK:
        return "set-listpack";
    case RDB_TYPE_STREAM_LISTPACKS_3:
        return "stream-listpacks-3";
    case 22:
        return is_valkey ? "hash-2" : "hash-metadata-pre-ga";
    case RDB_TYPE_HASH_LISTPACK_EX_PRE_GA:
        return is_valkey ? NULL : "hash-listpack-ex-pre-ga";
    case RDB_TYPE_HASH_METADATA:
        return is_valkey ? NULL : "hash-metadata";
    case RDB_TYPE_HASH_LISTPACK_EX:
        return is_valkey ? NULL : "hash-listpack-ex";
    }
    return NULL;
}

static int type_kind(int t)
{
    switch (t) {
    case RDB_TYPE_STRING:
        return RDB_KIND_STRING;
    case RDB_TYPE_LIST:
    case RDB_TYPE_LIST_ZIPLIST:
    case RDB_TYPE_LIST_QUICKLIST:
    case RDB_TYPE_LIST_QUICKLIST_2:
        return RDB_KIND_LIST;
    case RDB_TYPE_SET:
    case RDB_TYPE_SET_INTSET:
    case RDB_TYPE_SET_LISTPACK:
        return RDB_KIND_SET;
    case RDB_TYPE_ZSET:
    case RDB_TYPE_ZSET_2:
    case RDB_TYPE_ZSET_ZIPLIST:
    case RDB_TYPE_ZSET_LISTPACK:
        return RDB_KIND_ZSET;
    case RDB_TYPE_STREAM_LISTPACKS:
    case RDB_TYPE_STREAM_LISTPACKS_2:
    case RDB_TYPE_STREAM_LISTPACKS_3:
        return RDB_KIND_STREAM;
    case RDB_TYPE_MODULE_PRE_GA:
    case RDB_TYPE_MODULE_2:
        return RDB_KIND_MODULE;
    default:
        return RDB_KIND_HASH;
    }
}

/* ----------------------------------------------------------------- errors */

static uint64_t off_of(const struct rdb_decoder *d, const uint8_t *at)
{
    return d->base_off + (uint64_t)(at - d->buf);
}

/* Says what the decoder was reading, for error messages. */
static void describe(const struct rdb_decoder *d, char *out, size_t cap)
{
    char k[72];
    switch (d->state) {
    case S_HEADER:
        snprintf(out, cap, "the header");
        return;
    case S_OPCODE:
        snprintf(out, cap, "an opcode or type byte");
        return;
    case S_CHECKSUM:
        snprintf(out, cap, "the CRC64 trailer");
        return;
    case S_DONE:
        snprintf(out, cap, "past the end");
        return;
    case S_KEY:
        snprintf(out, cap, "the name of a key of type %s in db %" PRIu64,
                 d->key.encoding ? d->key.encoding : "?", d->db);
        return;
    default:
        rs_escape_bytes(k, sizeof(k), d->key.key.p, d->key.key.len, 40);
        snprintf(out, cap, "the %s value of key '%s' in db %" PRIu64, d->key.encoding, k, d->db);
        return;
    }
}

static int fail(struct rdb_decoder *d, int code, const uint8_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct rdb_decoder *d, int code, const uint8_t *at, const char *fmt, ...)
{
    char what[160], where[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    describe(d, where, sizeof(where));
    rs_error_set(&d->err, code, at ? off_of(d, at) : d->base_off + d->pos, "%s, while reading %s",
                 what, where);
    return RS_ERR;
}

/* Quotes up to 16 bytes at p for a message. */
static const char *quote(char *tmp, size_t cap, const uint8_t *p, const uint8_t *end)
{
    size_t n = (size_t)(end - p);
    return rs_escape_bytes(tmp, cap, p, n < 16 ? n : 16, 16);
}

/* --------------------------------------------------------------- readers */

#define NEED(c, n)                                                                                 \
    do {                                                                                           \
        if ((size_t)((c)->end - (c)->p) < (size_t)(n)) {                                           \
            (c)->need = (size_t)((c)->p - (c)->start) + (size_t)(n);                               \
            return AGAIN;                                                                          \
        }                                                                                          \
    } while (0)

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int rd_u8(struct cur *c, uint8_t *v)
{
    NEED(c, 1);
    *v = *c->p++;
    return RS_OK;
}

static int rd_fixed(struct cur *c, unsigned n, uint64_t *v)
{
    NEED(c, n);
    *v = rd_le(c->p, n);
    c->p += n;
    return RS_OK;
}

/* A length, or (with *is_enc set) the special string encoding number. */
static int rd_len_enc(struct rdb_decoder *d, struct cur *c, uint64_t *len, bool *is_enc)
{
    NEED(c, 1);
    uint8_t b = c->p[0];
    *is_enc = false;
    switch (b >> 6) {
    case RDB_LEN_6BIT:
        *len = b & 0x3f;
        c->p += 1;
        return RS_OK;
    case RDB_LEN_14BIT:
        NEED(c, 2);
        *len = ((uint64_t)(b & 0x3f) << 8) | c->p[1];
        c->p += 2;
        return RS_OK;
    case RDB_LEN_ENCVAL:
        *is_enc = true;
        *len = b & 0x3f;
        c->p += 1;
        return RS_OK;
    }
    if (b == RDB_LEN_32BIT) {
        NEED(c, 5);
        *len = rd_be(c->p + 1, 4);
        c->p += 5;
        return RS_OK;
    }
    if (b == RDB_LEN_64BIT) {
        NEED(c, 9);
        *len = rd_be(c->p + 1, 8);
        c->p += 9;
        return RS_OK;
    }
    return fail(d, RS_E_FORMAT, c->p, "unknown length encoding 0x%02x", b);
}

static int rd_len(struct rdb_decoder *d, struct cur *c, uint64_t *len, const char *what)
{
    const uint8_t *at = c->p;
    bool is_enc;
    int rc = rd_len_enc(d, c, len, &is_enc);
    if (rc != RS_OK)
        return rc;
    if (is_enc)
        return fail(d, RS_E_FORMAT, at, "expected the length of %s, found string encoding 0x%02x",
                    what, *at);
    return RS_OK;
}

/* Reads a string's header; with `whole`, also requires all its bytes. */
static int rd_sref_x(struct rdb_decoder *d, struct cur *c, struct sref *s, const char *what,
                     bool whole)
{
    const uint8_t *at = c->p;
    uint64_t len;
    bool is_enc;
    int rc = rd_len_enc(d, c, &len, &is_enc);
    if (rc != RS_OK)
        return rc;
    s->at = at;
    if (!is_enc) {
        if (whole && len > d->cfg.element_max)
            return fail(d, RS_E_LIMIT, at, "%s of %" PRIu64 " bytes is larger than element_max %zu",
                        what, len, d->cfg.element_max);
        if (whole)
            NEED(c, len);
        s->enc = SREF_RAW;
        s->p = c->p;
        s->len = s->clen = (size_t)len;
        if (whole)
            c->p += len;
        return RS_OK;
    }
    int64_t v;
    switch (len) {
    case RDB_ENC_INT8:
        NEED(c, 1);
        v = (int8_t)c->p[0];
        c->p += 1;
        break;
    case RDB_ENC_INT16:
        NEED(c, 2);
        v = (int16_t)rd_le(c->p, 2);
        c->p += 2;
        break;
    case RDB_ENC_INT32:
        NEED(c, 4);
        v = (int32_t)rd_le(c->p, 4);
        c->p += 4;
        break;
    case RDB_ENC_LZF: {
        uint64_t clen, ulen;
        if ((rc = rd_len(d, c, &clen, "an LZF string's compressed size")) != RS_OK)
            return rc;
        if ((rc = rd_len(d, c, &ulen, "an LZF string's size")) != RS_OK)
            return rc;
        if (whole && (ulen > d->cfg.element_max || clen > d->cfg.element_max))
            return fail(d, RS_E_LIMIT, at,
                        "%s of %" PRIu64 " bytes (%" PRIu64 " compressed) is larger than "
                        "element_max %zu",
                        what, ulen, clen, d->cfg.element_max);
        if (clen == 0 && ulen != 0)
            return fail(d, RS_E_FORMAT, at, "LZF %s with no compressed bytes", what);
        if (whole)
            NEED(c, clen);
        s->enc = SREF_LZF;
        s->p = c->p;
        s->clen = (size_t)clen;
        s->len = (size_t)ulen;
        if (whole)
            c->p += clen;
        return RS_OK;
    }
    default:
        return fail(d, RS_E_FORMAT, at, "unknown string encoding %" PRIu64 " for %s", len, what);
    }
    s->enc = SREF_INT;
    s->len = decimal_i64(s->itxt, v);
    s->p = (const uint8_t *)s->itxt;
    return RS_OK;
}

static int rd_sref(struct rdb_decoder *d, struct cur *c, struct sref *s, const char *what)
{
    return rd_sref_x(d, c, s, what, true);
}

/* Writes the decoded string into dst (s->len bytes). */
static int sref_copy(struct rdb_decoder *d, const struct sref *s, void *dst, const char *what)
{
    if (s->enc != SREF_LZF) {
        memcpy(dst, s->p, s->len);
        return RS_OK;
    }
    if (s->len == 0)
        return RS_OK;
    unsigned got = lzf_decompress(s->p, (unsigned)s->clen, dst, (unsigned)s->len);
    if (got != s->len)
        return fail(d, RS_E_FORMAT, s->p,
                    "LZF data of %s does not decompress to the %zu bytes it declares (%s)", what,
                    s->len, got == 0 ? "it is corrupt, or longer" : "it is shorter");
    return RS_OK;
}

static int grow(void **p, size_t *cap, size_t want)
{
    if (*cap >= want)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < want)
        n *= 2;
    void *q = realloc(*p, n);
    if (q == NULL)
        return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int oom(struct rdb_decoder *d, size_t n)
{
    return fail(d, RS_E_LIMIT, NULL, "out of memory allocating %zu bytes", n);
}

/* A view of the decoded string: in buf, in the sref, or decompressed into
 * scratch slot `slot`. Valid until the step ends. */
static int sref_view(struct rdb_decoder *d, const struct sref *s, int slot, struct rs_slice *out,
                     const char *what)
{
    if (s->enc != SREF_LZF) {
        out->p = (const char *)s->p;
        out->len = s->len;
        return RS_OK;
    }
    if (grow((void **)&d->scratch[slot], &d->scratch_cap[slot], s->len + 1) < 0)
        return oom(d, s->len);
    note_peak(d);
    int rc = sref_copy(d, s, d->scratch[slot], what);
    out->p = (const char *)d->scratch[slot];
    out->len = s->len;
    return rc;
}

/* A double as string-encoded in zset type 3: a length byte (253 NaN, 254
 * +inf, 255 -inf) and that many ASCII characters. */
static int rd_str_double(struct rdb_decoder *d, struct cur *c, double *v)
{
    NEED(c, 1);
    uint8_t n = c->p[0];
    if (n == 253) {
        *v = NAN;
        c->p++;
        return RS_OK;
    }
    if (n == 254 || n == 255) {
        *v = n == 254 ? INFINITY : -INFINITY;
        c->p++;
        return RS_OK;
    }
    NEED(c, 1 + (size_t)n);
    char tmp[256];
    memcpy(tmp, c->p + 1, n);
    tmp[n] = '\0';
    char *endp;
    *v = strtod(tmp, &endp);
    if (n == 0 || *endp != '\0') {
        char q[80];
        return fail(d, RS_E_FORMAT, c->p, "score \"%s\" is not a number",
                    rs_escape_bytes(q, sizeof(q), tmp, n, 32));
    }
    c->p += 1 + n;
    return RS_OK;
}

static int rd_bin_double(struct cur *c, double *v)
{
    NEED(c, 8);
    uint64_t u = rd_le(c->p, 8);
    memcpy(v, &u, sizeof(*v));
    c->p += 8;
    return RS_OK;
}

static int rd_ms(struct cur *c, int64_t *ms)
{
    uint64_t u = 0;
    int rc = rd_fixed(c, 8, &u);
    *ms = (int64_t)u;
    return rc;
}

static int rd_raw_id(struct cur *c, struct rdb_stream_id *id)
{
    NEED(c, 16);
    id->ms = rd_be(c->p, 8);
    id->seq = rd_be(c->p + 8, 8);
    c->p += 16;
    return RS_OK;
}

static int rd_len_id(struct rdb_decoder *d, struct cur *c, struct rdb_stream_id *id,
                     const char *what)
{
    int rc = rd_len(d, c, &id->ms, what);
    if (rc == RS_OK)
        rc = rd_len(d, c, &id->seq, what);
    return rc;
}

/* ------------------------------------------------------------------ events */

static int emit(struct rdb_decoder *d, struct rdb_event *ev)
{
    if (d->fn(d->ctx, ev) != 0) {
        rs_error_set(&d->err, RS_E_CONSUMER, ev->offset, "stopped by the consumer of the events");
        return RS_ERR;
    }
    return RS_OK;
}

static int chunk_flush(struct rdb_decoder *d)
{
    if (d->suppress) {
        d->nitems = 0;
        d->nfv = 0;
        d->arena_len = 0;
    }
    if (d->nitems == 0)
        return RS_OK;
    struct rdb_event ev = {.type = RDB_EV_ITEMS, .offset = d->key.offset, .key = &d->key};
    ev.items.items = d->items;
    ev.items.count = d->nitems;
    int rc = emit(d, &ev);
    d->nitems = 0;
    d->nfv = 0;
    d->arena_len = 0;
    if (d->arena_cap > 4 * d->cfg.chunk_bytes) { /* a big element passed: give it back */
        char *a = realloc(d->arena, d->cfg.chunk_bytes);
        if (a != NULL) {
            d->arena = a;
            d->arena_cap = d->cfg.chunk_bytes;
        }
    }
    return rc;
}

/* Makes room for one item of `bytes` element bytes and `nfv` slices,
 * flushing the chunk first if it would not fit. Returns the item, zeroed,
 * or NULL with d->err set. */
static struct rdb_item *item_new(struct rdb_decoder *d, size_t bytes, size_t nfv, int kind)
{
    if (d->suppress) { /* parsed and checked, not emitted: reuse the chunk's space */
        d->nitems = 0;
        d->nfv = 0;
        d->arena_len = 0;
    }
    if (d->nitems == d->cfg.chunk_items || d->arena_len + bytes > d->arena_cap ||
        d->nfv + nfv > d->fvcap) {
        if (chunk_flush(d) != RS_OK)
            return NULL;
        if (bytes > d->arena_cap) { /* one element larger than the chunk budget */
            char *a = realloc(d->arena, bytes);
            if (a == NULL) {
                oom(d, bytes);
                return NULL;
            }
            d->arena = a;
            d->arena_cap = bytes;
            note_peak(d);
        }
        if (nfv > d->fvcap) {
            struct rs_slice *f = realloc(d->fv, nfv * sizeof(*f));
            if (f == NULL) {
                oom(d, nfv * sizeof(*f));
                return NULL;
            }
            d->fv = f;
            d->fvcap = nfv;
        }
    }
    struct rdb_item *it = &d->items[d->nitems++];
    memset(it, 0, sizeof(*it));
    it->kind = (uint8_t)kind;
    it->ttl_ms = -1;
    d->items_in_key++;
    return it;
}

/* Copies n bytes into the arena (room was made by item_new). */
static struct rs_slice arena_put(struct rdb_decoder *d, const void *p, size_t n)
{
    char *dst = d->arena + d->arena_len;
    if (n)
        memcpy(dst, p, n);
    d->arena_len += n;
    return (struct rs_slice){dst, n};
}

/* Decodes a string into the arena. */
static int arena_sref(struct rdb_decoder *d, const struct sref *s, struct rs_slice *out,
                      const char *what)
{
    char *dst = d->arena + d->arena_len;
    int rc = sref_copy(d, s, dst, what);
    d->arena_len += s->len;
    *out = (struct rs_slice){dst, s->len};
    return rc;
}

/* ------------------------------------------------------------ value ends */

static int value_done(struct rdb_decoder *d, struct cur *c)
{
    size_t value_start = (size_t)(d->key.value_offset - d->base_off);
    uint64_t size = off_of(d, c->p) - d->key.value_offset;
    if (d->suppress && size > d->cfg.raw_max) {
        /* Items were held back for raw bytes that are too big to hand out:
         * parse the value again from its start, emitting them this time. */
        c->p = d->buf + value_start;
        d->suppress = false;
        d->keep = NO_KEEP;
        d->vstep = V_START;
        d->items_in_key = 0;
        d->nitems = d->nfv = d->arena_len = 0;
        return RS_OK;
    }
    if (chunk_flush(d) != RS_OK)
        return RS_ERR;
    struct rdb_event ev = {.type = RDB_EV_KEY_END, .offset = d->key.offset, .key = &d->key};
    ev.key_end.encoded_size = size;
    if (d->keep != NO_KEEP && size <= d->cfg.raw_max) {
        ev.key_end.has_raw = true;
        ev.key_end.raw = (struct rs_slice){(const char *)d->buf + value_start, (size_t)size};
    }
    int k = d->key.kind;
    ev.key_end.is_empty = d->items_in_key == 0 && (k == RDB_KIND_LIST || k == RDB_KIND_SET ||
                                                   k == RDB_KIND_ZSET || k == RDB_KIND_HASH);
    d->state = S_OPCODE;
    d->keep = NO_KEEP;
    d->suppress = false;
    if (d->lzf_live) {
        lzf_stream_deinit(&d->lzf);
        d->lzf_live = false;
    }
    return emit(d, &ev);
}

/* Counts down one element; ends the value after the last. */
static int element_done(struct rdb_decoder *d, struct cur *c)
{
    if (--d->left == 0)
        return value_done(d, c);
    return RS_OK;
}

/* ------------------------------------------------------------ blob values */

/* What each blob-encoded type holds. */
enum blob_shape { SHAPE_ELEMENTS, SHAPE_ZSET, SHAPE_HASH, SHAPE_HASH_TTL };

static int blob_fail(struct rdb_decoder *d, const struct sref *s, const struct rdb_blob_iter *it)
{
    /* For a raw blob the offset is exact; inside LZF data it is the blob's start. */
    const uint8_t *at = s->enc == SREF_RAW ? s->p + it->at : s->at;
    return fail(d, RS_E_FORMAT, at, "corrupt %s: %s (at byte %zu of the %s)",
                rdb_blob_kind_name(it->kind), it->why, it->at, rdb_blob_kind_name(it->kind));
}

/* Text of a blob entry, in tmp when it is an integer. */
static struct rs_slice entry_slice(const struct rdb_blob_entry *e, char *tmp)
{
    const uint8_t *p;
    size_t n = rdb_blob_entry_text(e, tmp, &p);
    return (struct rs_slice){(const char *)p, n};
}

/* Emits every entry of a blob as items of the given shape. */
static int blob_items(struct rdb_decoder *d, const struct sref *s, int kind, int shape)
{
    struct rs_slice b;
    int rc = sref_view(d, s, 0, &b, rdb_blob_kind_name(kind));
    if (rc != RS_OK)
        return rc;
    struct rdb_blob_iter it;
    if (rdb_blob_iter_init(&it, kind, b.p, b.len) < 0)
        return blob_fail(d, s, &it);
    int per = shape == SHAPE_ELEMENTS ? 1 : shape == SHAPE_HASH_TTL ? 3 : 2;
    struct rdb_blob_entry e[3];
    for (;;) {
        int r = rdb_blob_iter_next(&it, &e[0]);
        if (r == RDB_BLOB_BAD)
            return blob_fail(d, s, &it);
        if (r == RDB_BLOB_END)
            return RS_OK;
        for (int i = 1; i < per; i++) {
            r = rdb_blob_iter_next(&it, &e[i]);
            if (r == RDB_BLOB_BAD)
                return blob_fail(d, s, &it);
            if (r == RDB_BLOB_END) {
                snprintf(it.why, sizeof(it.why), "%s ends inside a %s", rdb_blob_kind_name(kind),
                         per == 2 ? "pair" : "field/value/TTL triple");
                return blob_fail(d, s, &it);
            }
        }
        if (d->suppress) { /* raw_or_items: checked as the items would be, not made */
            double score;
            int64_t ttl;
            if (shape == SHAPE_ZSET && !rdb_blob_entry_double(&e[1], &score)) {
                snprintf(it.why, sizeof(it.why), "a zset score is not a number");
                return blob_fail(d, s, &it);
            }
            if (shape == SHAPE_HASH_TTL && (!rdb_blob_entry_int(&e[2], &ttl) || ttl < 0)) {
                snprintf(it.why, sizeof(it.why), "a hash field's TTL is not a valid time");
                return blob_fail(d, s, &it);
            }
            d->items_in_key++; /* an item all the same: an empty value is told apart */
            continue;
        }
        char t0[24], t1[24];
        struct rs_slice a = entry_slice(&e[0], t0);
        struct rdb_item *item;
        switch (shape) {
        case SHAPE_ELEMENTS:
            if ((item = item_new(d, a.len, 0, RDB_ITEM_ELEMENT)) == NULL)
                return RS_ERR;
            item->a = arena_put(d, a.p, a.len);
            break;
        case SHAPE_ZSET: {
            double score;
            if (!rdb_blob_entry_double(&e[1], &score)) {
                snprintf(it.why, sizeof(it.why), "a zset score is not a number");
                return blob_fail(d, s, &it);
            }
            if ((item = item_new(d, a.len, 0, RDB_ITEM_ZSET)) == NULL)
                return RS_ERR;
            item->a = arena_put(d, a.p, a.len);
            item->score = score;
            break;
        }
        default: {
            struct rs_slice v = entry_slice(&e[1], t1);
            int64_t ttl = 0;
            if (shape == SHAPE_HASH_TTL && (!rdb_blob_entry_int(&e[2], &ttl) || ttl < 0)) {
                snprintf(it.why, sizeof(it.why), "a hash field's TTL is not a valid time");
                return blob_fail(d, s, &it);
            }
            if ((item = item_new(d, a.len + v.len, 0, RDB_ITEM_HASH)) == NULL)
                return RS_ERR;
            item->a = arena_put(d, a.p, a.len);
            item->b = arena_put(d, v.p, v.len);
            item->ttl_ms = ttl > 0 ? ttl : -1;
            break;
        }
        }
    }
}

/* ---------------------------------------------------------------- streams */

/* Reads the integer at the iterator, for stream listpacks. */
static int lp_int(struct rdb_decoder *d, const struct sref *s, struct rdb_blob_iter *it, int64_t *v,
                  const char *what)
{
    struct rdb_blob_entry e;
    int r = rdb_blob_iter_next(it, &e);
    if (r == RDB_BLOB_BAD)
        return blob_fail(d, s, it);
    if (r == RDB_BLOB_END || !rdb_blob_entry_int(&e, v)) {
        snprintf(it->why, sizeof(it->why), "expected %s, found %s", what,
                 r == RDB_BLOB_END ? "the end" : "a non-integer");
        return blob_fail(d, s, it);
    }
    return RS_OK;
}

static int lp_entry(struct rdb_decoder *d, const struct sref *s, struct rdb_blob_iter *it,
                    struct rdb_blob_entry *e, const char *what)
{
    int r = rdb_blob_iter_next(it, e);
    if (r == RDB_BLOB_BAD)
        return blob_fail(d, s, it);
    if (r == RDB_BLOB_END) {
        snprintf(it->why, sizeof(it->why), "the listpack ends before %s", what);
        return blob_fail(d, s, it);
    }
    return RS_OK;
}

/* One stream node: a master ID and a listpack of delta-encoded entries
 * (master entry: count, deleted, field count, fields, 0; then per entry:
 * flags, ms-diff, seq-diff, [field count, field, value ...] or [values of
 * the master fields], lp-count). */
static int stream_node(struct rdb_decoder *d, const struct sref *idref, const struct sref *lpref)
{
    struct rs_slice idv, lpv;
    int rc = sref_view(d, idref, 1, &idv, "a stream node's master ID");
    if (rc != RS_OK)
        return rc;
    if (idv.len != 16)
        return fail(d, RS_E_FORMAT, idref->at, "stream node master ID has %zu bytes, not 16",
                    idv.len);
    struct rdb_stream_id master = {rd_be((const uint8_t *)idv.p, 8),
                                   rd_be((const uint8_t *)idv.p + 8, 8)};
    if ((rc = sref_view(d, lpref, 0, &lpv, "a stream listpack")) != RS_OK)
        return rc;
    struct rdb_blob_iter it;
    if (rdb_blob_iter_init(&it, RDB_BLOB_LISTPACK, lpv.p, lpv.len) < 0)
        return blob_fail(d, lpref, &it);
    int64_t count, deleted, nmaster, zero;
    if ((rc = lp_int(d, lpref, &it, &count, "the entry count")) != RS_OK ||
        (rc = lp_int(d, lpref, &it, &deleted, "the deleted count")) != RS_OK ||
        (rc = lp_int(d, lpref, &it, &nmaster, "the master field count")) != RS_OK)
        return rc;
    if (count < 0 || deleted < 0 || nmaster < 0 || (uint64_t)nmaster > lpv.len) {
        snprintf(it.why, sizeof(it.why), "bad master entry counts %lld/%lld/%lld", (long long)count,
                 (long long)deleted, (long long)nmaster);
        return blob_fail(d, lpref, &it);
    }
    if (grow((void **)&d->mfields, &d->mfields_cap,
             ((size_t)nmaster + 1) * sizeof(struct rdb_blob_entry)) < 0)
        return oom(d, (size_t)nmaster);
    for (int64_t i = 0; i < nmaster; i++)
        if ((rc = lp_entry(d, lpref, &it, &d->mfields[i], "a master field")) != RS_OK)
            return rc;
    if ((rc = lp_int(d, lpref, &it, &zero, "the master entry's terminator")) != RS_OK)
        return rc;
    if (zero != 0) {
        snprintf(it.why, sizeof(it.why), "master entry terminator is %lld, not 0", (long long)zero);
        return blob_fail(d, lpref, &it);
    }
    for (int64_t n = 0; n < count + deleted; n++) {
        int64_t flags, msd, seqd, nf;
        if ((rc = lp_int(d, lpref, &it, &flags, "an entry's flags")) != RS_OK ||
            (rc = lp_int(d, lpref, &it, &msd, "an entry's ms delta")) != RS_OK ||
            (rc = lp_int(d, lpref, &it, &seqd, "an entry's seq delta")) != RS_OK)
            return rc;
        bool same = (flags & RDB_STREAM_ITEM_FLAG_SAMEFIELDS) != 0;
        if (same) {
            nf = nmaster;
        } else if ((rc = lp_int(d, lpref, &it, &nf, "an entry's field count")) != RS_OK) {
            return rc;
        }
        if (nf < 0 || (uint64_t)nf > lpv.len) {
            snprintf(it.why, sizeof(it.why), "entry field count %lld", (long long)nf);
            return blob_fail(d, lpref, &it);
        }
        /* First pass: measure; second: copy. The iterator is a plain value. */
        struct rdb_blob_iter save = it;
        size_t bytes = 0;
        for (int pass = 0; pass < 2; pass++) {
            struct rdb_item *item = NULL;
            if (pass == 1) {
                it = save;
                if ((item = item_new(d, bytes, (size_t)nf * 2, RDB_ITEM_STREAM_ENTRY)) == NULL)
                    return RS_ERR;
                if (item) {
                    item->entry.deleted = (flags & RDB_STREAM_ITEM_FLAG_DELETED) != 0;
                    item->entry.id.ms = master.ms + (uint64_t)msd;
                    item->entry.id.seq = master.seq + (uint64_t)seqd;
                    item->entry.nfv = (uint32_t)(nf * 2);
                    item->entry.fv = nf ? d->fv + d->nfv : NULL;
                }
            }
            for (int64_t f = 0; f < nf; f++) {
                struct rdb_blob_entry fe, ve;
                if (same)
                    fe = d->mfields[f];
                else if ((rc = lp_entry(d, lpref, &it, &fe, "an entry's field")) != RS_OK)
                    return rc;
                if ((rc = lp_entry(d, lpref, &it, &ve, "an entry's value")) != RS_OK)
                    return rc;
                char t0[24], t1[24];
                struct rs_slice fs = entry_slice(&fe, t0), vs = entry_slice(&ve, t1);
                if (pass == 0) {
                    bytes += fs.len + vs.len;
                } else if (item) {
                    d->fv[d->nfv++] = arena_put(d, fs.p, fs.len);
                    d->fv[d->nfv++] = arena_put(d, vs.p, vs.len);
                }
            }
        }
        int64_t lpcount;
        if ((rc = lp_int(d, lpref, &it, &lpcount, "an entry's lp-count")) != RS_OK)
            return rc;
        if (lpcount != (same ? nf + 3 : 2 * nf + 4)) {
            snprintf(it.why, sizeof(it.why), "entry lp-count %lld does not match its %lld fields",
                     (long long)lpcount, (long long)nf);
            return blob_fail(d, lpref, &it);
        }
    }
    struct rdb_blob_entry e;
    int r = rdb_blob_iter_next(&it, &e);
    if (r == RDB_BLOB_BAD)
        return blob_fail(d, lpref, &it);
    if (r != RDB_BLOB_END) {
        snprintf(it.why, sizeof(it.why), "bytes after the %lld entries the node declares",
                 (long long)(count + deleted));
        return blob_fail(d, lpref, &it);
    }
    return RS_OK;
}

/* One step of a stream value. */
static int step_stream(struct rdb_decoder *d, struct cur *c)
{
    int t = d->key.rdb_type, rc;
    struct rdb_item *item;
    switch (d->vstep) {
    case V_START:
        if ((rc = rd_len(d, c, &d->left, "a stream's node count")) != RS_OK)
            return rc;
        d->vstep = d->left ? V_S_NODES : V_S_META;
        return RS_OK;
    case V_S_NODES: {
        struct sref id, lp;
        if ((rc = rd_sref(d, c, &id, "a stream node's master ID")) != RS_OK ||
            (rc = rd_sref(d, c, &lp, "a stream node's listpack")) != RS_OK)
            return rc;
        if (lp.len == 0)
            return fail(d, RS_E_FORMAT, lp.at, "empty listpack in a stream node");
        if ((rc = stream_node(d, &id, &lp)) != RS_OK)
            return rc;
        if (--d->left == 0)
            d->vstep = V_S_META;
        return RS_OK;
    }
    case V_S_META: {
        uint64_t length, added = 0;
        struct rdb_stream_id last, first = {0, 0}, maxdel = {0, 0};
        bool v2 = t != RDB_TYPE_STREAM_LISTPACKS;
        if ((rc = rd_len(d, c, &length, "a stream's length")) != RS_OK ||
            (rc = rd_len_id(d, c, &last, "a stream's last ID")) != RS_OK)
            return rc;
        if (v2 && ((rc = rd_len_id(d, c, &first, "a stream's first ID")) != RS_OK ||
                   (rc = rd_len_id(d, c, &maxdel, "a stream's max deleted ID")) != RS_OK ||
                   (rc = rd_len(d, c, &added, "a stream's entries-added")) != RS_OK))
            return rc;
        if ((item = item_new(d, 0, 0, RDB_ITEM_STREAM_META)) == NULL)
            return RS_ERR;
        item->meta.length = length;
        item->meta.last_id = last;
        item->meta.first_id = first;
        item->meta.max_deleted_id = maxdel;
        item->meta.entries_added = added;
        item->meta.has_v2_fields = v2;
        d->vstep = V_S_GROUPS;
        return RS_OK;
    }
    case V_S_GROUPS:
        if ((rc = rd_len(d, c, &d->left2, "a stream's group count")) != RS_OK)
            return rc;
        if (d->left2 == 0)
            return value_done(d, c);
        d->vstep = V_S_GROUP;
        return RS_OK;
    case V_S_GROUP: {
        struct sref name;
        struct rdb_stream_id last;
        uint64_t read = 0, npel;
        if ((rc = rd_sref(d, c, &name, "a consumer group's name")) != RS_OK ||
            (rc = rd_len_id(d, c, &last, "a consumer group's last ID")) != RS_OK)
            return rc;
        if (t != RDB_TYPE_STREAM_LISTPACKS &&
            (rc = rd_len(d, c, &read, "a consumer group's entries-read")) != RS_OK)
            return rc;
        if ((rc = rd_len(d, c, &npel, "a consumer group's PEL size")) != RS_OK)
            return rc;
        if ((item = item_new(d, name.len, 0, RDB_ITEM_STREAM_GROUP)) == NULL)
            return RS_ERR;
        if ((rc = arena_sref(d, &name, &item->a, "a consumer group's name")) != RS_OK)
            return rc;
        item->group.last_id = last;
        item->group.entries_read = t == RDB_TYPE_STREAM_LISTPACKS ? -1 : (int64_t)read;
        d->left = npel;
        d->vstep = npel ? V_S_PEL : V_S_CONSUMERS;
        return RS_OK;
    }
    case V_S_PEL: {
        struct rdb_stream_id id;
        int64_t when;
        uint64_t count;
        if ((rc = rd_raw_id(c, &id)) != RS_OK || (rc = rd_ms(c, &when)) != RS_OK ||
            (rc = rd_len(d, c, &count, "a PEL entry's delivery count")) != RS_OK)
            return rc;
        if ((item = item_new(d, 0, 0, RDB_ITEM_STREAM_PEL)) == NULL)
            return RS_ERR;
        item->pel.id = id;
        item->pel.delivery_time_ms = when;
        item->pel.delivery_count = count;
        if (--d->left == 0)
            d->vstep = V_S_CONSUMERS;
        return RS_OK;
    }
    case V_S_CONSUMERS:
        if ((rc = rd_len(d, c, &d->left3, "a group's consumer count")) != RS_OK)
            return rc;
        if (d->left3 > 0) {
            d->vstep = V_S_CONSUMER;
            return RS_OK;
        }
        goto group_done;
    case V_S_CONSUMER: {
        struct sref name;
        int64_t seen, active = -1;
        uint64_t npel;
        if ((rc = rd_sref(d, c, &name, "a consumer's name")) != RS_OK ||
            (rc = rd_ms(c, &seen)) != RS_OK)
            return rc;
        if (t == RDB_TYPE_STREAM_LISTPACKS_3 && (rc = rd_ms(c, &active)) != RS_OK)
            return rc;
        if ((rc = rd_len(d, c, &npel, "a consumer's PEL size")) != RS_OK)
            return rc;
        if ((item = item_new(d, name.len, 0, RDB_ITEM_STREAM_CONSUMER)) == NULL)
            return RS_ERR;
        if ((rc = arena_sref(d, &name, &item->a, "a consumer's name")) != RS_OK)
            return rc;
        item->consumer.seen_time_ms = seen;
        item->consumer.active_time_ms = active;
        d->left = npel;
        if (npel) {
            d->vstep = V_S_CPEL;
            return RS_OK;
        }
        goto consumer_done;
    }
    case V_S_CPEL: {
        struct rdb_stream_id id;
        if ((rc = rd_raw_id(c, &id)) != RS_OK)
            return rc;
        if ((item = item_new(d, 0, 0, RDB_ITEM_STREAM_CONSUMER_PEL)) == NULL)
            return RS_ERR;
        item->pel.id = id;
        if (--d->left > 0)
            return RS_OK;
        goto consumer_done;
    }
    }
    return fail(d, RS_E_FORMAT, c->p, "internal: stream step %d", d->vstep);
consumer_done:
    if (--d->left3 > 0) {
        d->vstep = V_S_CONSUMER;
        return RS_OK;
    }
group_done:
    if (--d->left2 > 0) {
        d->vstep = V_S_GROUP;
        return RS_OK;
    }
    return value_done(d, c);
}

/* ----------------------------------------------------------------- strings */

static int step_string(struct rdb_decoder *d, struct cur *c)
{
    struct sref s;
    struct rdb_item *item;
    int rc;
    switch (d->vstep) {
    case V_START: {
        const uint8_t *at = c->p;
        if ((rc = rd_sref_x(d, c, &s, "a string value", false)) != RS_OK)
            return rc;
        bool big = s.len > d->cfg.raw_max || (s.enc == SREF_LZF && s.clen > d->cfg.raw_max);
        if (!big) {
            c->p = at;
            if ((rc = rd_sref(d, c, &s, "a string value")) != RS_OK)
                return rc;
            if ((item = item_new(d, s.len, 0, RDB_ITEM_STRING_PART)) == NULL)
                return RS_ERR;
            if ((rc = arena_sref(d, &s, &item->a, "a string value")) != RS_OK)
                return rc;
            return value_done(d, c);
        }
        d->keep = NO_KEEP; /* too big to hand out whole */
        if (s.enc == SREF_RAW) {
            d->str_left = s.len;
            d->vstep = V_STR_RAW;
            return RS_OK;
        }
        if (lzf_stream_init(&d->lzf, s.len, d->cfg.string_piece) < 0)
            return oom(d, d->cfg.string_piece);
        d->lzf_live = true;
        d->str_left = s.clen;
        d->vstep = V_STR_LZF;
        return RS_OK;
    }
    case V_STR_RAW: {
        size_t n = d->str_left < d->cfg.string_piece ? (size_t)d->str_left : d->cfg.string_piece;
        NEED(c, n);
        if ((item = item_new(d, n, 0, RDB_ITEM_STRING_PART)) == NULL)
            return RS_ERR;
        item->a = arena_put(d, c->p, n);
        c->p += n;
        d->str_left -= n;
        return d->str_left == 0 ? value_done(d, c) : RS_OK;
    }
    case V_STR_LZF: {
        size_t avail = (size_t)(c->end - c->p);
        if (avail > d->str_left)
            avail = (size_t)d->str_left;
        size_t used;
        int r = lzf_stream_run(&d->lzf, c->p, avail, &used);
        if (r == LZF_STREAM_BAD)
            return fail(d, RS_E_FORMAT, c->p + used, "corrupt LZF data: %s", d->lzf.why);
        c->p += used;
        d->str_left -= used;
        if (r == LZF_STREAM_NEED_INPUT) {
            if (d->str_left == 0)
                return fail(d, RS_E_FORMAT, c->p,
                            "LZF data ends after %" PRIu64 " of the %" PRIu64 " bytes it declares",
                            d->lzf.produced, d->lzf.expected);
            if (used == 0)
                NEED(c, 1);
            return RS_OK;
        }
        const uint8_t *p;
        size_t n;
        lzf_stream_take(&d->lzf, &p, &n);
        if ((item = item_new(d, n, 0, RDB_ITEM_STRING_PART)) == NULL)
            return RS_ERR;
        item->a = arena_put(d, p, n);
        if (r == LZF_STREAM_DONE) {
            if (d->str_left != 0)
                return fail(d, RS_E_FORMAT, c->p,
                            "LZF data has %" PRIu64 " bytes left after the declared size",
                            d->str_left);
            return value_done(d, c);
        }
        return RS_OK;
    }
    }
    return fail(d, RS_E_FORMAT, c->p, "internal: string step %d", d->vstep);
}

/* ----------------------------------------------------------------- modules */

/* Reads a module-serialized value: opcode-typed fields until opcode EOF. */
static int rd_module_fields(struct rdb_decoder *d, struct cur *c)
{
    for (;;) {
        const uint8_t *at = c->p;
        uint64_t op, v;
        int rc = rd_len(d, c, &op, "a module value opcode");
        if (rc != RS_OK)
            return rc;
        switch (op) {
        case RDB_MODULE_OPCODE_EOF:
            return RS_OK;
        case RDB_MODULE_OPCODE_SINT:
        case RDB_MODULE_OPCODE_UINT:
            rc = rd_len(d, c, &v, "a module integer");
            break;
        case RDB_MODULE_OPCODE_FLOAT:
            rc = rd_fixed(c, 4, &v);
            break;
        case RDB_MODULE_OPCODE_DOUBLE:
            rc = rd_fixed(c, 8, &v);
            break;
        case RDB_MODULE_OPCODE_STRING: {
            struct sref s;
            rc = rd_sref(d, c, &s, "a module string");
            break;
        }
        default:
            return fail(d, RS_E_FORMAT, at, "unknown module value opcode %" PRIu64, op);
        }
        if (rc != RS_OK)
            return rc;
    }
}

static void module_name(uint64_t id, char name[10], unsigned *encver)
{
    static const char cs[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    *encver = (unsigned)(id & 1023);
    id >>= 10;
    for (int j = 8; j >= 0; j--) {
        name[j] = cs[id & 63];
        id >>= 6;
    }
    name[9] = '\0';
}

static int step_module(struct rdb_decoder *d, struct cur *c)
{
    if (d->key.rdb_type == RDB_TYPE_MODULE_PRE_GA)
        return fail(d, RS_E_UNSUPPORTED, c->p,
                    "module values of the 4.0 release candidates (type 6) cannot be read");
    uint64_t id;
    int rc;
    if ((rc = rd_len(d, c, &id, "a module id")) != RS_OK || (rc = rd_module_fields(d, c)) != RS_OK)
        return rc;
    struct rdb_item *item = item_new(d, 0, 0, RDB_ITEM_MODULE);
    if (item == NULL)
        return RS_ERR;
    item->module.module_id = id;
    module_name(id, item->module.name, &item->module.encver);
    return value_done(d, c);
}

/* -------------------------------------------------- lists, sets, zsets, hashes */

static int shape_of(int t, bool is_valkey, int *blob_kind)
{
    *blob_kind = RDB_BLOB_LISTPACK;
    switch (t) {
    case RDB_TYPE_HASH_ZIPMAP:
        *blob_kind = RDB_BLOB_ZIPMAP;
        return SHAPE_HASH;
    case RDB_TYPE_LIST_ZIPLIST:
    case RDB_TYPE_LIST_QUICKLIST:
        *blob_kind = RDB_BLOB_ZIPLIST;
        return SHAPE_ELEMENTS;
    case RDB_TYPE_SET_INTSET:
        *blob_kind = RDB_BLOB_INTSET;
        return SHAPE_ELEMENTS;
    case RDB_TYPE_ZSET_ZIPLIST:
        *blob_kind = RDB_BLOB_ZIPLIST;
        return SHAPE_ZSET;
    case RDB_TYPE_HASH_ZIPLIST:
        *blob_kind = RDB_BLOB_ZIPLIST;
        return SHAPE_HASH;
    case RDB_TYPE_HASH_LISTPACK:
        return SHAPE_HASH;
    case RDB_TYPE_ZSET_LISTPACK:
        return SHAPE_ZSET;
    case RDB_TYPE_SET_LISTPACK:
    case RDB_TYPE_LIST_QUICKLIST_2:
        return SHAPE_ELEMENTS;
    case RDB_TYPE_HASH_LISTPACK_EX_PRE_GA:
    case RDB_TYPE_HASH_LISTPACK_EX:
        return is_valkey ? -1 : SHAPE_HASH_TTL;
    }
    return -1;
}

/* One counted element of a linked list, set, zset or hash (all hash flavours). */
static int counted_element(struct rdb_decoder *d, struct cur *c)
{
    int t = d->key.rdb_type, rc;
    struct sref a, b;
    struct rdb_item *item;
    switch (t) {
    case RDB_TYPE_LIST:
    case RDB_TYPE_SET:
        if ((rc = rd_sref(d, c, &a, t == RDB_TYPE_LIST ? "a list element" : "a set member")) !=
            RS_OK)
            return rc;
        if ((item = item_new(d, a.len, 0, RDB_ITEM_ELEMENT)) == NULL)
            return RS_ERR;
        if ((rc = arena_sref(d, &a, &item->a, "an element")) != RS_OK)
            return rc;
        return element_done(d, c);
    case RDB_TYPE_ZSET:
    case RDB_TYPE_ZSET_2: {
        double score;
        if ((rc = rd_sref(d, c, &a, "a zset member")) != RS_OK)
            return rc;
        const uint8_t *at = c->p;
        rc = t == RDB_TYPE_ZSET ? rd_str_double(d, c, &score) : rd_bin_double(c, &score);
        if (rc != RS_OK)
            return rc;
        if (isnan(score))
            return fail(d, RS_E_FORMAT, at, "zset score is NaN");
        if ((item = item_new(d, a.len, 0, RDB_ITEM_ZSET)) == NULL)
            return RS_ERR;
        item->score = score;
        if ((rc = arena_sref(d, &a, &item->a, "a zset member")) != RS_OK)
            return rc;
        return element_done(d, c);
    }
    default: { /* hashes: 4, Redis 22 and 24 (TTL first), Valkey 22 (TTL last) */
        uint64_t ttl = 0;
        int64_t expire = -1;
        bool valkey2 = t == RDB_TYPE_VALKEY_HASH_2 && d->is_valkey;
        bool ttl_first = !valkey2 && t != RDB_TYPE_HASH;
        const uint8_t *at = c->p;
        if (ttl_first && (rc = rd_len(d, c, &ttl, "a hash field's TTL")) != RS_OK)
            return rc;
        if ((rc = rd_sref(d, c, &a, "a hash field")) != RS_OK ||
            (rc = rd_sref(d, c, &b, "a hash value")) != RS_OK)
            return rc;
        if (valkey2) {
            at = c->p;
            if ((rc = rd_ms(c, &expire)) != RS_OK)
                return rc;
            if (expire < -1)
                return fail(d, RS_E_FORMAT, at, "hash field expiry %" PRId64 " is negative",
                            expire);
        } else if (ttl_first && ttl != 0) {
            const int64_t max = (int64_t)((1ULL << 48) - 1); /* Redis's EB_EXPIRE_TIME_MAX */
            if (ttl > (uint64_t)max ||
                (t == RDB_TYPE_HASH_METADATA &&
                 __builtin_add_overflow(d->min_expire, (int64_t)ttl - 1, &expire)))
                expire = -2;
            else if (t != RDB_TYPE_HASH_METADATA)
                expire = (int64_t)ttl;
            if (expire < 0 || expire > max)
                return fail(d, RS_E_FORMAT, at, "hash field TTL %" PRIu64 " is out of range", ttl);
        }
        if ((item = item_new(d, a.len + b.len, 0, RDB_ITEM_HASH)) == NULL)
            return RS_ERR;
        if ((rc = arena_sref(d, &a, &item->a, "a hash field")) != RS_OK ||
            (rc = arena_sref(d, &b, &item->b, "a hash value")) != RS_OK)
            return rc;
        item->ttl_ms = expire;
        return element_done(d, c);
    }
    }
}

/* One quicklist node: type 14 a ziplist; type 18 a container and a string. */
static int quicklist_node(struct rdb_decoder *d, struct cur *c)
{
    int rc;
    uint64_t container = RDB_QUICKLIST_NODE_PACKED;
    const uint8_t *at = c->p;
    if (d->key.rdb_type == RDB_TYPE_LIST_QUICKLIST_2 &&
        (rc = rd_len(d, c, &container, "a quicklist node's container")) != RS_OK)
        return rc;
    struct sref s;
    if ((rc = rd_sref(d, c, &s, "a quicklist node")) != RS_OK)
        return rc;
    if (s.len == 0)
        return fail(d, RS_E_FORMAT, at, "empty quicklist node");
    if (container == RDB_QUICKLIST_NODE_PLAIN) {
        struct rdb_item *item = item_new(d, s.len, 0, RDB_ITEM_ELEMENT);
        if (item == NULL)
            return RS_ERR;
        if ((rc = arena_sref(d, &s, &item->a, "a plain quicklist node")) != RS_OK)
            return rc;
    } else if (container == RDB_QUICKLIST_NODE_PACKED) {
        int kind =
            d->key.rdb_type == RDB_TYPE_LIST_QUICKLIST ? RDB_BLOB_ZIPLIST : RDB_BLOB_LISTPACK;
        if ((rc = blob_items(d, &s, kind, SHAPE_ELEMENTS)) != RS_OK)
            return rc;
    } else {
        return fail(d, RS_E_FORMAT, at, "quicklist node container %" PRIu64 " is not 1 or 2",
                    container);
    }
    return element_done(d, c);
}

static int step_value(struct rdb_decoder *d, struct cur *c)
{
    int t = d->key.rdb_type, rc;
    switch (d->key.kind) {
    case RDB_KIND_STRING:
        return step_string(d, c);
    case RDB_KIND_STREAM:
        return step_stream(d, c);
    case RDB_KIND_MODULE:
        return step_module(d, c);
    }
    if (d->vstep == V_ELEMENTS) {
        if (t == RDB_TYPE_LIST_QUICKLIST || t == RDB_TYPE_LIST_QUICKLIST_2)
            return quicklist_node(d, c);
        return counted_element(d, c);
    }
    /* V_START */
    int blob_kind, shape = shape_of(t, d->is_valkey, &blob_kind);
    if (shape >= 0 && t != RDB_TYPE_LIST_QUICKLIST && t != RDB_TYPE_LIST_QUICKLIST_2) {
        struct sref s;
        if (t == RDB_TYPE_HASH_LISTPACK_EX && (rc = rd_ms(c, &d->min_expire)) != RS_OK)
            return rc;
        if ((rc = rd_sref(d, c, &s, rdb_blob_kind_name(blob_kind))) != RS_OK)
            return rc;
        if ((rc = blob_items(d, &s, blob_kind, shape)) != RS_OK)
            return rc;
        return value_done(d, c);
    }
    if (t == RDB_TYPE_HASH_METADATA && (rc = rd_ms(c, &d->min_expire)) != RS_OK)
        return rc;
    if ((rc = rd_len(d, c, &d->left, "the element count")) != RS_OK)
        return rc;
    if (d->left == 0)
        return value_done(d, c);
    d->vstep = V_ELEMENTS;
    return RS_OK;
}

/* -------------------------------------------------------------- top level */

static int step_header(struct rdb_decoder *d, struct cur *c)
{
    NEED(c, 9);
    char q[80];
    const uint8_t *p = c->p;
    int digits;
    if (memcmp(p, "REDIS", 5) == 0) {
        d->is_valkey = false;
        digits = 5;
    } else if (memcmp(p, "VALKEY", 6) == 0) {
        d->is_valkey = true;
        digits = 6;
    } else {
        return fail(d, RS_E_FORMAT, p,
                    "not an RDB file: it starts with \"%s\", not REDIS or VALKEY",
                    quote(q, sizeof(q), p, p + 9));
    }
    int v = 0;
    for (int i = digits; i < 9; i++) {
        if (p[i] < '0' || p[i] > '9')
            return fail(d, RS_E_FORMAT, p + i, "the version in \"%s\" is not a number",
                        quote(q, sizeof(q), p, p + 9));
        v = v * 10 + (p[i] - '0');
    }
    if (!d->is_valkey && (v < RDB_VERSION_MIN || v > RDB_VERSION_REDIS_MAX))
        return fail(d, RS_E_UNSUPPORTED, p + 5,
                    "RDB version %d is not supported (REDIS files of versions %d to %d are; "
                    "13 and later come from Redis 8.6+)",
                    v, RDB_VERSION_MIN, RDB_VERSION_REDIS_MAX);
    if (d->is_valkey && (v < RDB_VERSION_VALKEY_MIN || v > RDB_VERSION_VALKEY_MAX))
        return fail(d, RS_E_UNSUPPORTED, p + 6,
                    "Valkey RDB version %d is not supported (VALKEY files of version %d are)", v,
                    RDB_VERSION_VALKEY_MIN);
    d->version = v;
    c->p += 9;
    d->state = S_OPCODE;
    struct rdb_event ev = {.type = RDB_EV_HEADER, .offset = 0};
    ev.header.version = v;
    ev.header.is_valkey = d->is_valkey;
    return emit(d, &ev);
}

static void crc_catch_up(struct rdb_decoder *d, size_t upto)
{
    if (upto > d->crc_pos) {
        d->crc = crc64_update(d->crc, d->buf + d->crc_pos, upto - d->crc_pos);
        d->crc_pos = upto;
    }
}

static int step_checksum(struct rdb_decoder *d, struct cur *c)
{
    uint64_t stored;
    const uint8_t *at = c->p;
    int rc = rd_fixed(c, 8, &stored);
    if (rc != RS_OK)
        return rc;
    if (stored != 0 && !d->cfg.skip_checksum && stored != d->crc)
        return fail(d, RS_E_CHECKSUM, at,
                    "CRC64 mismatch: the file says 0x%016" PRIx64
                    " but its bytes give 0x%016" PRIx64,
                    stored, d->crc);
    d->state = S_DONE;
    struct rdb_event ev = {.type = RDB_EV_END, .offset = off_of(d, at)};
    ev.end.has_checksum = stored != 0;
    ev.end.checksum = stored;
    return emit(d, &ev);
}

static int step_key(struct rdb_decoder *d, struct cur *c)
{
    struct sref k;
    int rc = rd_sref(d, c, &k, "a key name");
    if (rc != RS_OK)
        return rc;
    if (grow((void **)&d->keybuf, &d->keycap, k.len + 1) < 0)
        return oom(d, k.len);
    note_peak(d);
    if ((rc = sref_copy(d, &k, d->keybuf, "a key name")) != RS_OK)
        return rc;
    d->key.key = (struct rs_slice){d->keybuf, k.len};
    d->key.value_offset = off_of(d, c->p);
    d->key.string_len = 0;
    if (d->key.kind == RDB_KIND_STRING) { /* the length is part of KEY_BEGIN */
        struct cur peek = *c;
        struct sref v;
        if ((rc = rd_sref_x(d, &peek, &v, "a string value", false)) != RS_OK) {
            c->need = peek.need;
            return rc;
        }
        d->key.string_len = v.len;
    }
    d->keep = (size_t)(c->p - d->buf);
    d->suppress = d->cfg.raw_or_items && d->key.kind != RDB_KIND_STRING;
    d->vstep = V_START;
    d->items_in_key = 0;
    d->state = S_VALUE;
    struct rdb_event ev = {.type = RDB_EV_KEY_BEGIN, .offset = d->key.offset, .key = &d->key};
    return emit(d, &ev);
}

static void reset_key_hints(struct rdb_decoder *d)
{
    d->next_expire_ms = -1;
    d->next_idle_s = -1;
    d->next_freq = -1;
    d->has_next_key_off = false;
}

static int step_opcode(struct rdb_decoder *d, struct cur *c)
{
    const uint8_t *at = c->p;
    uint8_t op;
    int rc = rd_u8(c, &op);
    if (rc != RS_OK)
        return rc;
    struct rdb_event ev = {.offset = off_of(d, at)};
    uint64_t u;
    switch (op) {
    case RDB_OPCODE_EOF:
        crc_catch_up(d, (size_t)(c->p - d->buf));
        if (d->version >= RDB_VERSION_CHECKSUM_MIN) {
            d->state = S_CHECKSUM;
            return RS_OK;
        }
        d->state = S_DONE;
        ev.type = RDB_EV_END;
        return emit(d, &ev);
    case RDB_OPCODE_SELECTDB:
        if ((rc = rd_len(d, c, &d->db, "the SELECTDB number")) != RS_OK)
            return rc;
        ev.type = RDB_EV_SELECTDB;
        ev.select.db = d->db;
        return emit(d, &ev);
    case RDB_OPCODE_RESIZEDB:
        if ((rc = rd_len(d, c, &ev.resize.db_size, "RESIZEDB's db size")) != RS_OK ||
            (rc = rd_len(d, c, &ev.resize.expires_size, "RESIZEDB's expires size")) != RS_OK)
            return rc;
        ev.type = RDB_EV_RESIZEDB;
        return emit(d, &ev);
    case RDB_OPCODE_SLOT_INFO:
        if ((rc = rd_len(d, c, &ev.slot_info.slot, "SLOT_INFO's slot")) != RS_OK ||
            (rc = rd_len(d, c, &ev.slot_info.slot_size, "SLOT_INFO's size")) != RS_OK ||
            (rc = rd_len(d, c, &ev.slot_info.expires_slot_size, "SLOT_INFO's expires")) != RS_OK)
            return rc;
        ev.type = RDB_EV_SLOT_INFO;
        return emit(d, &ev);
    case RDB_OPCODE_AUX: {
        struct sref n, v;
        if ((rc = rd_sref(d, c, &n, "an AUX field's name")) != RS_OK ||
            (rc = rd_sref(d, c, &v, "an AUX field's value")) != RS_OK)
            return rc;
        if ((rc = sref_view(d, &n, 0, &ev.aux.name, "an AUX field's name")) != RS_OK ||
            (rc = sref_view(d, &v, 1, &ev.aux.value, "an AUX field's value")) != RS_OK)
            return rc;
        ev.type = RDB_EV_AUX;
        return emit(d, &ev);
    }
    case RDB_OPCODE_FUNCTION2: {
        struct sref s;
        if ((rc = rd_sref(d, c, &s, "a function library")) != RS_OK)
            return rc;
        if ((rc = sref_view(d, &s, 0, &ev.function.code, "a function library")) != RS_OK)
            return rc;
        ev.type = RDB_EV_FUNCTION;
        return emit(d, &ev);
    }
    case RDB_OPCODE_FUNCTION_PRE_GA:
        return fail(d, RS_E_UNSUPPORTED, at,
                    "functions saved by the Redis 7.0 release candidates (opcode 0xf6) cannot be "
                    "read, as Redis 7.0 itself refuses them");
    case RDB_OPCODE_MODULE_AUX: {
        uint64_t id, when_op, when;
        const uint8_t *start;
        if ((rc = rd_len(d, c, &id, "a module aux's module id")) != RS_OK ||
            (rc = rd_len(d, c, &when_op, "a module aux's when opcode")) != RS_OK)
            return rc;
        if (when_op != RDB_MODULE_OPCODE_UINT)
            return fail(d, RS_E_FORMAT, at, "module aux 'when' opcode is %" PRIu64 ", not 2",
                        when_op);
        if ((rc = rd_len(d, c, &when, "a module aux's when")) != RS_OK)
            return rc;
        start = c->p;
        if ((rc = rd_module_fields(d, c)) != RS_OK)
            return rc;
        ev.type = RDB_EV_MODULE_AUX;
        ev.module_aux.module_id = id;
        ev.module_aux.when = when;
        unsigned encver;
        module_name(id, ev.module_aux.name, &encver);
        ev.module_aux.raw = (struct rs_slice){(const char *)start, (size_t)(c->p - start)};
        return emit(d, &ev);
    }
    case RDB_OPCODE_EXPIRETIME_MS:
        if ((rc = rd_fixed(c, 8, &u)) != RS_OK)
            return rc;
        d->next_expire_ms = (int64_t)u;
        break;
    case RDB_OPCODE_EXPIRETIME:
        if ((rc = rd_fixed(c, 4, &u)) != RS_OK)
            return rc;
        d->next_expire_ms = (int64_t)(int32_t)u * 1000;
        break;
    case RDB_OPCODE_IDLE:
        if ((rc = rd_len(d, c, &u, "an IDLE hint")) != RS_OK)
            return rc;
        d->next_idle_s = (int64_t)u;
        break;
    case RDB_OPCODE_FREQ: {
        uint8_t f;
        if ((rc = rd_u8(c, &f)) != RS_OK)
            return rc;
        d->next_freq = f;
        break;
    }
    case RDB_OPCODE_VALKEY_SLOT_IMPORT:
        if (d->is_valkey) {
            struct sref job;
            uint64_t nranges, a, b;
            if ((rc = rd_sref(d, c, &job, "a slot import's job name")) != RS_OK ||
                (rc = rd_len(d, c, &nranges, "a slot import's range count")) != RS_OK)
                return rc;
            for (uint64_t i = 0; i < nranges; i++)
                if ((rc = rd_len(d, c, &a, "a slot range")) != RS_OK ||
                    (rc = rd_len(d, c, &b, "a slot range")) != RS_OK)
                    return rc;
            return RS_OK; /* cluster import state: not data */
        }
        /* unknown in a REDIS file */
        __attribute__((fallthrough));
    default: {
        const char *name = rdb_type_name(op, d->is_valkey);
        if (name == NULL)
            return fail(d, RS_E_FORMAT, at,
                        "unknown opcode or value type 0x%02x (%u) in a %s RDB version %d file", op,
                        op, d->is_valkey ? "VALKEY" : "REDIS", d->version);
        if (!d->has_next_key_off)
            d->next_key_off = off_of(d, at);
        d->key.offset = d->next_key_off;
        d->key.db = d->db;
        d->key.rdb_type = op;
        d->key.kind = (uint8_t)type_kind(op);
        d->key.encoding = name;
        d->key.expire_ms = d->next_expire_ms;
        d->key.lru_idle_s = d->next_idle_s;
        d->key.lfu_freq = d->next_freq;
        d->key.key = (struct rs_slice){NULL, 0};
        reset_key_hints(d);
        d->state = S_KEY;
        return RS_OK;
    }
    }
    /* a hint for the next key: remember where that key's record began */
    if (!d->has_next_key_off) {
        d->next_key_off = off_of(d, at);
        d->has_next_key_off = true;
    }
    return RS_OK;
}

static int step(struct rdb_decoder *d, struct cur *c)
{
    switch (d->state) {
    case S_HEADER:
        return step_header(d, c);
    case S_OPCODE:
        return step_opcode(d, c);
    case S_KEY:
        return step_key(d, c);
    case S_VALUE:
        return step_value(d, c);
    case S_CHECKSUM:
        return step_checksum(d, c);
    }
    return RS_DONE;
}

/* Runs steps over buf[pos..end) until one needs more bytes. */
static int run(struct rdb_decoder *d)
{
    for (;;) {
        if (d->state == S_DONE)
            return RS_DONE;
        struct cur c = {d->buf + d->pos, d->buf + d->pos, d->buf + d->end, 0};
        int rc = step(d, &c);
        if (rc == AGAIN) {
            d->need = c.need;
            return AGAIN;
        }
        if (rc != RS_OK)
            return RS_ERR;
        d->pos = (size_t)(c.p - d->buf);
        if (d->keep != NO_KEEP && d->pos - d->keep > d->cfg.raw_max) {
            /* The value outgrew raw_max: stop keeping its bytes. If its items
             * were held back for the raw bytes, parse it again from its start
             * (still in buf, by invariant 3), this time emitting them. */
            if (d->suppress) {
                d->pos = d->keep;
                d->suppress = false;
                d->vstep = V_START;
                d->items_in_key = 0;
                d->nitems = d->nfv = d->arena_len = 0;
            }
            d->keep = NO_KEEP;
        }
    }
}

static void note_peak(struct rdb_decoder *d)
{
    size_t total = d->cap + d->arena_cap + d->keycap + d->scratch_cap[0] + d->scratch_cap[1] +
                   d->mfields_cap + d->fvcap * sizeof(struct rs_slice) +
                   (d->lzf_live ? d->lzf.cap : 0);
    if (total > d->peak)
        d->peak = total;
}

/* Makes room in buf for the bytes the last step needs (and at least one). */
static int make_room(struct rdb_decoder *d)
{
    size_t lo = d->keep != NO_KEEP && d->keep < d->pos ? d->keep : d->pos;
    size_t need = d->need > d->end - d->pos ? d->need : d->end - d->pos + 1;
    if (d->end < d->cap && d->pos + need <= d->cap)
        return RS_OK; /* room at the tail already */
    if (lo > 0) {     /* slide the live bytes to the front */
        crc_catch_up(d, d->pos);
        memmove(d->buf, d->buf + lo, d->end - lo);
        d->base_off += lo;
        d->pos -= lo;
        d->end -= lo;
        d->crc_pos -= lo;
        if (d->keep != NO_KEEP)
            d->keep -= lo;
    }
    size_t want = d->pos + need;
    if (want <= d->cap && d->end < d->cap) {
        if (d->cap > 4 * BUF_INITIAL && d->end + need <= BUF_INITIAL) {
            uint8_t *b = realloc(d->buf, BUF_INITIAL); /* a big unit passed: shrink back */
            if (b != NULL) {
                d->buf = b;
                d->cap = BUF_INITIAL;
            }
        }
        return RS_OK;
    }
    size_t limit = d->cfg.element_max + d->cfg.raw_max + 4096;
    if (want > limit)
        return fail(d, RS_E_LIMIT, d->buf + d->pos,
                    "a unit of %zu bytes is larger than the decoder's limit of %zu bytes", want,
                    limit);
    size_t ncap = d->cap * 2 > want ? d->cap * 2 : want;
    if (ncap > limit)
        ncap = limit;
    uint8_t *b = realloc(d->buf, ncap);
    if (b == NULL)
        return oom(d, ncap);
    d->buf = b;
    d->cap = ncap;
    note_peak(d);
    return RS_OK;
}

int rdb_decoder_feed(struct rdb_decoder *d, const void *data, size_t len, size_t *used,
                     struct rs_error *err)
{
    const uint8_t *in = data;
    size_t off = 0;
    if (used)
        *used = 0;
    if (d->sticky != RS_OK)
        goto sticky;
    while (off < len) {
        if (make_room(d) != RS_OK) {
            d->sticky = RS_ERR;
            goto sticky;
        }
        size_t n = d->cap - d->end;
        if (n > len - off)
            n = len - off;
        memcpy(d->buf + d->end, in + off, n);
        d->end += n;
        off += n;
        int rc = run(d);
        note_peak(d);
        if (rc == RS_DONE) {
            d->sticky = RS_DONE;
            if (used)
                *used = off - (d->end - d->pos);
            return RS_DONE;
        }
        if (rc == RS_ERR) {
            d->sticky = RS_ERR;
            goto sticky;
        }
    }
    if (used)
        *used = len;
    return RS_OK;
sticky:
    if (err && d->sticky == RS_ERR)
        *err = d->err;
    return d->sticky;
}

int rdb_decoder_finish(struct rdb_decoder *d, struct rs_error *err)
{
    if (d->sticky == RS_OK) {
        char where[160];
        describe(d, where, sizeof(where));
        rs_error_set(&d->err, RS_E_TRUNCATED, d->base_off + d->end,
                     "the input ended after %" PRIu64 " bytes, while reading %s (%zu more bytes "
                     "needed at least)",
                     d->base_off + d->end, where,
                     d->need > d->end - d->pos ? d->need - (d->end - d->pos) : (size_t)1);
        d->sticky = RS_ERR;
    }
    if (err && d->sticky == RS_ERR)
        *err = d->err;
    return d->sticky;
}

uint64_t rdb_decoder_offset(const struct rdb_decoder *d)
{
    return d->base_off + d->pos;
}

int rdb_decoder_version(const struct rdb_decoder *d)
{
    return d->version;
}

size_t rdb_decoder_peak_bytes(const struct rdb_decoder *d)
{
    return d->peak;
}

struct rdb_decoder *rdb_decoder_new(const struct rdb_decoder_config *cfg, rdb_event_fn fn,
                                    void *ctx)
{
    struct rdb_decoder *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    if (cfg)
        d->cfg = *cfg;
    if (d->cfg.raw_max == 0)
        d->cfg.raw_max = 512 * 1024;
    if (d->cfg.chunk_items == 0)
        d->cfg.chunk_items = 512;
    if (d->cfg.chunk_bytes == 0)
        d->cfg.chunk_bytes = 256 * 1024;
    if (d->cfg.string_piece == 0)
        d->cfg.string_piece = 64 * 1024;
    if (d->cfg.element_max == 0)
        d->cfg.element_max = 512u * 1024 * 1024;
    d->fn = fn;
    d->ctx = ctx;
    d->keep = NO_KEEP;
    d->state = S_HEADER;
    reset_key_hints(d);
    d->cap = BUF_INITIAL;
    d->buf = malloc(d->cap);
    d->items = malloc(d->cfg.chunk_items * sizeof(*d->items));
    d->arena_cap = d->cfg.chunk_bytes;
    d->arena = malloc(d->arena_cap);
    if (d->buf == NULL || d->items == NULL || d->arena == NULL) {
        rdb_decoder_free(d);
        return NULL;
    }
    note_peak(d);
    return d;
}

void rdb_decoder_free(struct rdb_decoder *d)
{
    if (d == NULL)
        return;
    if (d->lzf_live)
        lzf_stream_deinit(&d->lzf);
    free(d->buf);
    free(d->items);
    free(d->arena);
    free(d->fv);
    free(d->keybuf);
    free(d->scratch[0]);
    free(d->scratch[1]);
    free(d->mfields);
    free(d);
}
