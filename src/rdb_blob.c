/* rdb_blob.c - iterators over ziplist, listpack, intset and zipmap blobs.
 *
 * Every read is bounds-checked against the blob's length before it happens.
 * The checks follow Redis's deep integrity validation (ziplistValidateIntegrity,
 * lpValidateIntegrity, intsetValidateIntegrity, zipmapValidateIntegrity).
 */
#include "decimal.h"
#include "rdb_blob.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(struct rdb_blob_iter *it, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct rdb_blob_iter *it, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->why, sizeof(it->why), fmt, ap);
    va_end(ap);
    it->at = at;
    return RDB_BLOB_BAD;
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Sign-extends the low `bits` bits of v. */
static int64_t sext(uint64_t v, unsigned bits)
{
    uint64_t m = 1ULL << (bits - 1);
    v &= (bits == 64) ? ~0ULL : ((1ULL << bits) - 1);
    return (int64_t)((v ^ m) - m);
}

const char *rdb_blob_kind_name(int kind)
{
    switch (kind) {
    case RDB_BLOB_ZIPLIST:
        return "ziplist";
    case RDB_BLOB_LISTPACK:
        return "listpack";
    case RDB_BLOB_INTSET:
        return "intset";
    case RDB_BLOB_ZIPMAP:
        return "zipmap";
    }
    return "blob";
}

/* ---------------------------------------------------------------- ziplist */

#define ZIPLIST_HEADER 10

static int ziplist_init(struct rdb_blob_iter *it)
{
    if (it->len < ZIPLIST_HEADER + 1)
        return bad(it, 0, "blob of %zu bytes is too short for a ziplist", it->len);
    uint32_t zlbytes = le32(it->base);
    if (zlbytes != it->len)
        return bad(it, 0, "zlbytes says %u bytes but the blob has %zu", zlbytes, it->len);
    uint32_t zltail = le32(it->base + 4);
    if (zltail < ZIPLIST_HEADER || zltail >= it->len)
        return bad(it, 4, "zltail %u points outside the ziplist", zltail);
    if (it->base[it->len - 1] != 0xff)
        return bad(it, it->len - 1, "ziplist does not end with 0xff");
    uint32_t zllen = le16(it->base + 8);
    it->declared = zllen == 0xffff ? UINT64_MAX : zllen;
    it->pos = ZIPLIST_HEADER;
    it->prev_len = 0;
    return 0;
}

static int ziplist_next(struct rdb_blob_iter *it, struct rdb_blob_entry *e)
{
    const uint8_t *b = it->base;
    size_t n = it->len, p = it->pos, start = p;
    if (b[p] == 0xff) {
        if (p != n - 1)
            return bad(it, p, "ziplist terminator before the end of the blob");
        if (it->declared != UINT64_MAX && it->declared != it->index)
            return bad(it, 8, "zllen says %llu entries but the ziplist holds %llu",
                       (unsigned long long)it->declared, (unsigned long long)it->index);
        if (it->index > 0 && le32(b + 4) != it->at)
            return bad(it, 4, "zltail %u does not point at the last entry (offset %zu)",
                       le32(b + 4), it->at);
        return RDB_BLOB_END;
    }
    /* previous entry length */
    size_t prevlen;
    if (b[p] < 254) {
        prevlen = b[p];
        p += 1;
    } else if (b[p] == 254) {
        if (p + 5 > n - 1)
            return bad(it, p, "ziplist entry's prevlen runs past the end");
        prevlen = le32(b + p + 1);
        p += 5;
    } else {
        return bad(it, p, "bad ziplist prevlen byte 0x%02x", b[p]);
    }
    if (prevlen != it->prev_len)
        return bad(it, start, "ziplist entry's prevlen %zu but the previous entry has %zu bytes",
                   prevlen, it->prev_len);
    if (p >= n - 1)
        return bad(it, p, "ziplist entry's encoding runs past the end");
    uint8_t enc = b[p];
    size_t hdr, dlen;
    memset(e, 0, sizeof(*e));
    if (enc < 0xc0) {
        switch (enc >> 6) {
        case 0:
            hdr = 1;
            dlen = enc & 0x3f;
            break;
        case 1:
            if (p + 2 > n - 1)
                return bad(it, p, "ziplist entry's 14-bit length runs past the end");
            hdr = 2;
            dlen = ((size_t)(enc & 0x3f) << 8) | b[p + 1];
            break;
        default:
            if (p + 5 > n - 1)
                return bad(it, p, "ziplist entry's 32-bit length runs past the end");
            hdr = 5;
            dlen =
                (size_t)b[p + 1] << 24 | (size_t)b[p + 2] << 16 | (size_t)b[p + 3] << 8 | b[p + 4];
            break;
        }
        e->is_int = false;
    } else {
        hdr = 1;
        e->is_int = true;
        switch (enc) {
        case 0xc0:
            dlen = 2;
            break;
        case 0xd0:
            dlen = 4;
            break;
        case 0xe0:
            dlen = 8;
            break;
        case 0xf0:
            dlen = 3;
            break;
        case 0xfe:
            dlen = 1;
            break;
        default:
            if (enc >= 0xf1 && enc <= 0xfd) {
                dlen = 0;
                break;
            }
            return bad(it, p, "unknown ziplist entry encoding 0x%02x", enc);
        }
    }
    size_t data = p + hdr;
    if (data > n - 1 || dlen > n - 1 - data)
        return bad(it, start, "ziplist entry of %zu bytes runs past the end", dlen);
    if (e->is_int) {
        const uint8_t *d = b + data;
        switch (enc) {
        case 0xc0:
            e->ival = sext(le16(d), 16);
            break;
        case 0xd0:
            e->ival = sext(le32(d), 32);
            break;
        case 0xe0:
            e->ival = (int64_t)le64(d);
            break;
        case 0xf0:
            e->ival = sext((uint64_t)d[0] | (uint64_t)d[1] << 8 | (uint64_t)d[2] << 16, 24);
            break;
        case 0xfe:
            e->ival = (int8_t)d[0];
            break;
        default:
            e->ival = (enc & 0x0f) - 1;
            break;
        }
    } else {
        e->p = b + data;
        e->len = dlen;
    }
    it->at = start; /* offset of the last entry, checked against zltail at the end */
    it->prev_len = data + dlen - start;
    it->pos = data + dlen;
    it->index++;
    return RDB_BLOB_ENTRY;
}

/* --------------------------------------------------------------- listpack */

#define LISTPACK_HEADER 6

static int listpack_init(struct rdb_blob_iter *it)
{
    if (it->len < LISTPACK_HEADER + 1)
        return bad(it, 0, "blob of %zu bytes is too short for a listpack", it->len);
    uint32_t total = le32(it->base);
    if (total != it->len)
        return bad(it, 0, "listpack header says %u bytes but the blob has %zu", total, it->len);
    if (it->base[it->len - 1] != 0xff)
        return bad(it, it->len - 1, "listpack does not end with 0xff");
    uint32_t count = le16(it->base + 4);
    it->declared = count == 0xffff ? UINT64_MAX : count;
    it->pos = LISTPACK_HEADER;
    return 0;
}

/* Size in bytes of the back-length that follows an entry of l bytes. */
static size_t listpack_backlen_size(size_t l)
{
    if (l <= 127)
        return 1;
    if (l < 16383)
        return 2;
    if (l < 2097151)
        return 3;
    if (l < 268435455)
        return 4;
    return 5;
}

static int listpack_next(struct rdb_blob_iter *it, struct rdb_blob_entry *e)
{
    const uint8_t *b = it->base;
    size_t n = it->len, p = it->pos;
    uint8_t c = b[p];
    if (c == 0xff) {
        if (p != n - 1)
            return bad(it, p, "listpack terminator before the end of the blob");
        if (it->declared != UINT64_MAX && it->declared != it->index)
            return bad(it, 4, "listpack header says %llu entries but it holds %llu",
                       (unsigned long long)it->declared, (unsigned long long)it->index);
        return RDB_BLOB_END;
    }
    size_t avail = n - 1 - p; /* bytes before the terminator */
    size_t hdr, dlen;
    memset(e, 0, sizeof(*e));
    e->is_int = true;
    if ((c & 0x80) == 0) { /* 7-bit uint */
        hdr = 1;
        dlen = 0;
        e->ival = c & 0x7f;
    } else if ((c & 0xc0) == 0x80) { /* 6-bit string */
        hdr = 1;
        dlen = c & 0x3f;
        e->is_int = false;
    } else if ((c & 0xe0) == 0xc0) { /* 13-bit int */
        if (avail < 2)
            return bad(it, p, "listpack 13-bit integer runs past the end");
        hdr = 2;
        dlen = 0;
        e->ival = sext(((uint64_t)(c & 0x1f) << 8) | b[p + 1], 13);
    } else if ((c & 0xf0) == 0xe0) { /* 12-bit string */
        if (avail < 2)
            return bad(it, p, "listpack 12-bit string length runs past the end");
        hdr = 2;
        dlen = ((size_t)(c & 0x0f) << 8) | b[p + 1];
        e->is_int = false;
    } else {
        switch (c) {
        case 0xf0:
            if (avail < 5)
                return bad(it, p, "listpack 32-bit string length runs past the end");
            hdr = 5;
            dlen = le32(b + p + 1);
            e->is_int = false;
            break;
        case 0xf1:
            hdr = 1;
            dlen = 2;
            break;
        case 0xf2:
            hdr = 1;
            dlen = 3;
            break;
        case 0xf3:
            hdr = 1;
            dlen = 4;
            break;
        case 0xf4:
            hdr = 1;
            dlen = 8;
            break;
        default:
            return bad(it, p, "unknown listpack entry encoding 0x%02x", c);
        }
    }
    if (hdr > avail || dlen > avail - hdr)
        return bad(it, p, "listpack entry of %zu bytes runs past the end", dlen);
    const uint8_t *d = b + p + hdr;
    if (!e->is_int) {
        e->p = d;
        e->len = dlen;
    } else if (dlen > 0) {
        uint64_t v = 0;
        for (size_t i = 0; i < dlen; i++)
            v |= (uint64_t)d[i] << (8 * i);
        e->ival = sext(v, (unsigned)(dlen * 8));
    }
    size_t entry = hdr + dlen;
    size_t bl = listpack_backlen_size(entry);
    if (bl > avail - entry)
        return bad(it, p, "listpack entry's back-length runs past the end");
    /* The back-length is read right to left: 7 bits a byte, the high bit
     * set on every byte but the leftmost. */
    const uint8_t *q = d + dlen;
    uint64_t back = 0;
    for (size_t i = 0; i < bl; i++) {
        uint8_t x = q[bl - 1 - i];
        back |= (uint64_t)(x & 127) << (7 * i);
        bool more = (x & 128) != 0;
        if (more != (i + 1 < bl))
            return bad(it, (size_t)(q - b), "listpack entry's back-length is malformed");
    }
    if (back != entry)
        return bad(it, (size_t)(q - b), "listpack back-length %llu but the entry has %zu bytes",
                   (unsigned long long)back, entry);
    it->pos = p + entry + bl;
    it->index++;
    return RDB_BLOB_ENTRY;
}

/* ----------------------------------------------------------------- intset */

static int intset_init(struct rdb_blob_iter *it)
{
    if (it->len < 8)
        return bad(it, 0, "blob of %zu bytes is too short for an intset", it->len);
    uint32_t enc = le32(it->base);
    if (enc != 2 && enc != 4 && enc != 8)
        return bad(it, 0, "intset encoding %u is not 2, 4 or 8", enc);
    uint32_t count = le32(it->base + 4);
    if ((uint64_t)count * enc + 8 != it->len)
        return bad(it, 4, "intset of %u %u-byte integers needs %llu bytes but the blob has %zu",
                   count, enc, (unsigned long long)count * enc + 8, it->len);
    it->declared = count;
    it->prev_len = enc;
    it->pos = 8;
    return 0;
}

static int intset_next(struct rdb_blob_iter *it, struct rdb_blob_entry *e)
{
    if (it->index == it->declared)
        return RDB_BLOB_END;
    size_t w = it->prev_len;
    uint64_t v = 0;
    for (size_t i = 0; i < w; i++)
        v |= (uint64_t)it->base[it->pos + i] << (8 * i);
    memset(e, 0, sizeof(*e));
    e->is_int = true;
    e->ival = sext(v, (unsigned)(w * 8));
    if (it->index > 0 && e->ival <= it->prev_int)
        return bad(it, it->pos, "intset is not sorted: %lld after %lld", (long long)e->ival,
                   (long long)it->prev_int);
    it->prev_int = e->ival;
    it->pos += w;
    it->index++;
    return RDB_BLOB_ENTRY;
}

/* ----------------------------------------------------------------- zipmap */

static int zipmap_init(struct rdb_blob_iter *it)
{
    if (it->len < 2)
        return bad(it, 0, "blob of %zu bytes is too short for a zipmap", it->len);
    it->declared = it->base[0] < 254 ? (uint64_t)it->base[0] * 2 : UINT64_MAX;
    it->pos = 1;
    it->zipmap_phase = 0;
    return 0;
}

/* Reads a zipmap length at it->pos: one byte below 254, or 254 and a u32 LE. */
static int zipmap_len(struct rdb_blob_iter *it, size_t *out)
{
    const uint8_t *b = it->base;
    size_t p = it->pos, n = it->len;
    if (p >= n)
        return bad(it, p, "zipmap length runs past the end");
    if (b[p] < 254) {
        *out = b[p];
        it->pos = p + 1;
        return 0;
    }
    if (b[p] == 254 && p + 5 <= n) {
        *out = le32(b + p + 1);
        it->pos = p + 5;
        return 0;
    }
    return bad(it, p, "bad zipmap length byte 0x%02x", b[p]);
}

static int zipmap_next(struct rdb_blob_iter *it, struct rdb_blob_entry *e)
{
    const uint8_t *b = it->base;
    size_t n = it->len;
    if (it->pos >= n)
        return bad(it, it->pos, "zipmap runs past the end");
    if (it->zipmap_phase == 0 && b[it->pos] == 0xff) {
        if (it->pos != n - 1)
            return bad(it, it->pos, "zipmap terminator before the end of the blob");
        if (it->declared != UINT64_MAX && it->declared != it->index)
            return bad(it, 0, "zipmap header says %llu entries but it holds %llu",
                       (unsigned long long)it->declared / 2, (unsigned long long)it->index / 2);
        return RDB_BLOB_END;
    }
    size_t start = it->pos, len = 0;
    if (zipmap_len(it, &len) < 0)
        return RDB_BLOB_BAD;
    size_t free_bytes = 0;
    if (it->zipmap_phase == 1) {
        if (it->pos >= n)
            return bad(it, it->pos, "zipmap free byte runs past the end");
        free_bytes = b[it->pos++];
    }
    if (len > n - it->pos || free_bytes > n - it->pos - len)
        return bad(it, start, "zipmap entry of %zu bytes runs past the end", len);
    memset(e, 0, sizeof(*e));
    e->p = b + it->pos;
    e->len = len;
    it->pos += len + free_bytes;
    it->zipmap_phase ^= 1;
    it->index++;
    if (it->zipmap_phase == 0 || it->pos < n)
        return RDB_BLOB_ENTRY;
    return bad(it, it->pos, "zipmap ends after a key with no value");
}

/* ----------------------------------------------------------------- public */

int rdb_blob_iter_init(struct rdb_blob_iter *it, int kind, const void *blob, size_t len)
{
    memset(it, 0, sizeof(*it));
    it->base = blob;
    it->len = len;
    it->kind = kind;
    switch (kind) {
    case RDB_BLOB_ZIPLIST:
        return ziplist_init(it) == 0 ? 0 : -1;
    case RDB_BLOB_LISTPACK:
        return listpack_init(it) == 0 ? 0 : -1;
    case RDB_BLOB_INTSET:
        return intset_init(it) == 0 ? 0 : -1;
    case RDB_BLOB_ZIPMAP:
        return zipmap_init(it) == 0 ? 0 : -1;
    }
    bad(it, 0, "unknown blob kind %d", kind);
    return -1;
}

int rdb_blob_iter_next(struct rdb_blob_iter *it, struct rdb_blob_entry *e)
{
    switch (it->kind) {
    case RDB_BLOB_ZIPLIST:
        return ziplist_next(it, e);
    case RDB_BLOB_LISTPACK:
        return listpack_next(it, e);
    case RDB_BLOB_INTSET:
        return intset_next(it, e);
    case RDB_BLOB_ZIPMAP:
        return zipmap_next(it, e);
    }
    return bad(it, 0, "unknown blob kind %d", it->kind);
}

size_t rdb_blob_entry_text(const struct rdb_blob_entry *e, char *tmp, const uint8_t **out)
{
    if (!e->is_int) {
        *out = e->p;
        return e->len;
    }
    *out = (const uint8_t *)tmp;
    return decimal_i64(tmp, e->ival);
}

bool rdb_blob_entry_int(const struct rdb_blob_entry *e, int64_t *v)
{
    if (e->is_int) {
        *v = e->ival;
        return true;
    }
    char tmp[24];
    if (e->len == 0 || e->len > 20)
        return false;
    memcpy(tmp, e->p, e->len);
    tmp[e->len] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || (tmp[0] == '0' && e->len > 1) ||
        (tmp[0] == '-' && (e->len == 1 || tmp[1] == '0')) || tmp[0] == '+' || tmp[0] == ' ')
        return false;
    *v = x;
    return true;
}

bool rdb_blob_entry_double(const struct rdb_blob_entry *e, double *v)
{
    if (e->is_int) {
        *v = (double)e->ival;
        return true;
    }
    char tmp[128];
    if (e->len == 0 || e->len >= sizeof(tmp))
        return false;
    memcpy(tmp, e->p, e->len);
    tmp[e->len] = '\0';
    char *end;
    *v = strtod(tmp, &end);
    return *end == '\0' && tmp[0] != ' ';
}
