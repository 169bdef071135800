/* rdb_builder.c - a test-only writer of RDB files and of the blobs inside them. */
#include "rdb_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liblzf/lzf.h>

#include "rdb_format.h"

static void die(const char *what)
{
    fprintf(stderr, "rdb_builder: %s\n", what);
    abort();
}

/* ---- The byte buffer ---------------------------------------------------- */

void rdb_builder_init(struct rdb_builder *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void rdb_builder_deinit(struct rdb_builder *b)
{
    free(b->p);
    rdb_builder_init(b);
}

static void reserve(struct rdb_builder *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        die("out of memory");
    b->p = p;
    b->cap = cap;
}

void rdb_builder_bytes(struct rdb_builder *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void rdb_builder_byte(struct rdb_builder *b, uint8_t c)
{
    rdb_builder_bytes(b, &c, 1);
}

void rdb_builder_fill(struct rdb_builder *b, uint8_t c, size_t n)
{
    reserve(b, n);
    memset(b->p + b->len, c, n);
    b->len += n;
}

static void put_le(struct rdb_builder *b, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++)
        rdb_builder_byte(b, (uint8_t)(v >> (8 * i)));
}

static void put_be(struct rdb_builder *b, uint64_t v, int nbytes)
{
    for (int i = nbytes - 1; i >= 0; i--)
        rdb_builder_byte(b, (uint8_t)(v >> (8 * i)));
}

void rdb_builder_u16le(struct rdb_builder *b, uint16_t v)
{
    put_le(b, v, 2);
}

void rdb_builder_u24le(struct rdb_builder *b, uint32_t v)
{
    put_le(b, v, 3);
}

void rdb_builder_u32le(struct rdb_builder *b, uint32_t v)
{
    put_le(b, v, 4);
}

void rdb_builder_u64le(struct rdb_builder *b, uint64_t v)
{
    put_le(b, v, 8);
}

void rdb_builder_u32be(struct rdb_builder *b, uint32_t v)
{
    put_be(b, v, 4);
}

void rdb_builder_u64be(struct rdb_builder *b, uint64_t v)
{
    put_be(b, v, 8);
}

void rdb_builder_patch_u32le(struct rdb_builder *b, size_t off, uint32_t v)
{
    if (off + 4 > b->len)
        die("patch past the end");
    for (int i = 0; i < 4; i++)
        b->p[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

uint64_t rdb_crc64(uint64_t crc, const void *p, size_t n)
{
    /* The bit-reversed form of 0xad93d23594c935a9, for the shift-right loop. */
    const uint64_t poly = UINT64_C(0x95ac9329ac4bc9b5);
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        crc ^= s[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ poly : crc >> 1;
    }
    return crc;
}

/* ---- The file ---------------------------------------------------------- */

void rdb_builder_header(struct rdb_builder *b, int version)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "REDIS%04d", version);
    rdb_builder_bytes(b, buf, 9);
}

void rdb_builder_header_valkey(struct rdb_builder *b, int version)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "VALKEY%03d", version);
    rdb_builder_bytes(b, buf, 9);
}

void rdb_builder_len_as(struct rdb_builder *b, uint64_t n, int width)
{
    switch (width) {
    case RDB_BUILDER_LEN_6:
        if (n >= 64)
            die("length too big for 6 bits");
        rdb_builder_byte(b, (uint8_t)n);
        return;
    case RDB_BUILDER_LEN_14:
        if (n >= 16384)
            die("length too big for 14 bits");
        rdb_builder_byte(b, (uint8_t)(0x40 | (n >> 8)));
        rdb_builder_byte(b, (uint8_t)n);
        return;
    case RDB_BUILDER_LEN_32:
        if (n > UINT32_MAX)
            die("length too big for 32 bits");
        rdb_builder_byte(b, RDB_LEN_32BIT);
        rdb_builder_u32be(b, (uint32_t)n);
        return;
    case RDB_BUILDER_LEN_64:
        rdb_builder_byte(b, RDB_LEN_64BIT);
        rdb_builder_u64be(b, n);
        return;
    }
    die("bad length width");
}

void rdb_builder_len(struct rdb_builder *b, uint64_t n)
{
    if (n < 64)
        rdb_builder_len_as(b, n, RDB_BUILDER_LEN_6);
    else if (n < 16384)
        rdb_builder_len_as(b, n, RDB_BUILDER_LEN_14);
    else if (n <= UINT32_MAX)
        rdb_builder_len_as(b, n, RDB_BUILDER_LEN_32);
    else
        rdb_builder_len_as(b, n, RDB_BUILDER_LEN_64);
}

void rdb_builder_str(struct rdb_builder *b, const void *p, size_t n)
{
    rdb_builder_len(b, n);
    rdb_builder_bytes(b, p, n);
}

void rdb_builder_cstr(struct rdb_builder *b, const char *s)
{
    rdb_builder_str(b, s, strlen(s));
}

void rdb_builder_str_len_as(struct rdb_builder *b, const void *p, size_t n, int width)
{
    rdb_builder_len_as(b, n, width);
    rdb_builder_bytes(b, p, n);
}

void rdb_builder_str_blob(struct rdb_builder *b, const struct rdb_builder *blob)
{
    rdb_builder_str(b, blob->p, blob->len);
}

void rdb_builder_str_int(struct rdb_builder *b, int32_t v, int bits)
{
    switch (bits) {
    case 8:
        rdb_builder_byte(b, 0xC0 | RDB_ENC_INT8);
        put_le(b, (uint64_t)(int64_t)v, 1);
        return;
    case 16:
        rdb_builder_byte(b, 0xC0 | RDB_ENC_INT16);
        put_le(b, (uint64_t)(int64_t)v, 2);
        return;
    case 32:
        rdb_builder_byte(b, 0xC0 | RDB_ENC_INT32);
        put_le(b, (uint64_t)(int64_t)v, 4);
        return;
    }
    die("bad int string width");
}

size_t rdb_lzf_compress(struct rdb_builder *out, const void *p, size_t n)
{
    size_t cap = n + n / 16 + 64;
    reserve(out, cap);
    unsigned int clen = lzf_compress(p, (unsigned int)n, out->p + out->len, (unsigned int)cap);
    if (clen == 0)
        die("lzf_compress failed");
    out->len += clen;
    return clen;
}

void rdb_builder_str_lzf_raw(struct rdb_builder *b, const void *comp, size_t clen, uint64_t ulen)
{
    rdb_builder_byte(b, 0xC0 | RDB_ENC_LZF);
    rdb_builder_len(b, clen);
    rdb_builder_len(b, ulen);
    rdb_builder_bytes(b, comp, clen);
}

size_t rdb_builder_str_lzf(struct rdb_builder *b, const void *p, size_t n)
{
    struct rdb_builder c;
    rdb_builder_init(&c);
    size_t clen = rdb_lzf_compress(&c, p, n);
    rdb_builder_str_lzf_raw(b, c.p, c.len, n);
    rdb_builder_deinit(&c);
    return clen;
}

void rdb_builder_key(struct rdb_builder *b, uint8_t type, const char *key)
{
    rdb_builder_byte(b, type);
    rdb_builder_cstr(b, key);
}

void rdb_builder_aux(struct rdb_builder *b, const char *name, const char *value)
{
    rdb_builder_byte(b, RDB_OPCODE_AUX);
    rdb_builder_cstr(b, name);
    rdb_builder_cstr(b, value);
}

void rdb_builder_selectdb(struct rdb_builder *b, uint64_t db)
{
    rdb_builder_byte(b, RDB_OPCODE_SELECTDB);
    rdb_builder_len(b, db);
}

void rdb_builder_resizedb(struct rdb_builder *b, uint64_t db_size, uint64_t expires_size)
{
    rdb_builder_byte(b, RDB_OPCODE_RESIZEDB);
    rdb_builder_len(b, db_size);
    rdb_builder_len(b, expires_size);
}

void rdb_builder_expire_s(struct rdb_builder *b, uint32_t s)
{
    rdb_builder_byte(b, RDB_OPCODE_EXPIRETIME);
    rdb_builder_u32le(b, s);
}

void rdb_builder_expire_ms(struct rdb_builder *b, uint64_t ms)
{
    rdb_builder_byte(b, RDB_OPCODE_EXPIRETIME_MS);
    rdb_builder_u64le(b, ms);
}

void rdb_builder_idle(struct rdb_builder *b, uint64_t s)
{
    rdb_builder_byte(b, RDB_OPCODE_IDLE);
    rdb_builder_len(b, s);
}

void rdb_builder_freq(struct rdb_builder *b, uint8_t freq)
{
    rdb_builder_byte(b, RDB_OPCODE_FREQ);
    rdb_builder_byte(b, freq);
}

void rdb_builder_function(struct rdb_builder *b, const char *code)
{
    rdb_builder_byte(b, RDB_OPCODE_FUNCTION2);
    rdb_builder_cstr(b, code);
}

void rdb_builder_slot_info(struct rdb_builder *b, uint64_t slot, uint64_t size, uint64_t expires)
{
    rdb_builder_byte(b, RDB_OPCODE_SLOT_INFO);
    rdb_builder_len(b, slot);
    rdb_builder_len(b, size);
    rdb_builder_len(b, expires);
}

void rdb_builder_module_aux(struct rdb_builder *b, const char *name9, unsigned encver,
                            uint64_t when)
{
    rdb_builder_byte(b, RDB_OPCODE_MODULE_AUX);
    rdb_builder_len(b, rdb_module_id(name9, encver));
    rdb_builder_module_uint(b, when);
}

void rdb_builder_eof(struct rdb_builder *b)
{
    rdb_builder_byte(b, RDB_OPCODE_EOF);
    rdb_builder_u64le(b, rdb_crc64(0, b->p, b->len));
}

void rdb_builder_eof_zero_crc(struct rdb_builder *b)
{
    rdb_builder_byte(b, RDB_OPCODE_EOF);
    rdb_builder_u64le(b, 0);
}

void rdb_builder_eof_no_crc(struct rdb_builder *b)
{
    rdb_builder_byte(b, RDB_OPCODE_EOF);
}

void rdb_builder_ms(struct rdb_builder *b, int64_t ms)
{
    rdb_builder_u64le(b, (uint64_t)ms);
}

void rdb_builder_double(struct rdb_builder *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    rdb_builder_u64le(b, u);
}

void rdb_builder_score_text(struct rdb_builder *b, const char *text)
{
    size_t n = strlen(text);
    if (n >= 253)
        die("score text too long");
    rdb_builder_byte(b, (uint8_t)n);
    rdb_builder_bytes(b, text, n);
}

void rdb_builder_score_marker(struct rdb_builder *b, uint8_t marker)
{
    rdb_builder_byte(b, marker);
}

/* ---- Modules ------------------------------------------------------------ */

uint64_t rdb_module_id(const char *name9, unsigned encver)
{
    static const char cset[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t id = 0;
    if (strlen(name9) != 9 || encver > 1023)
        die("module names have 9 characters and encver 10 bits");
    for (int j = 0; j < 9; j++) {
        const char *p = strchr(cset, name9[j]);
        if (p == NULL)
            die("module name character outside the charset");
        id = (id << 6) | (uint64_t)(p - cset);
    }
    return (id << 10) | encver;
}

void rdb_builder_module_sint(struct rdb_builder *b, int64_t v)
{
    rdb_builder_len(b, RDB_MODULE_OPCODE_SINT);
    rdb_builder_len(b, (uint64_t)v);
}

void rdb_builder_module_uint(struct rdb_builder *b, uint64_t v)
{
    rdb_builder_len(b, RDB_MODULE_OPCODE_UINT);
    rdb_builder_len(b, v);
}

void rdb_builder_module_float(struct rdb_builder *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    rdb_builder_len(b, RDB_MODULE_OPCODE_FLOAT);
    rdb_builder_u32le(b, u);
}

void rdb_builder_module_double(struct rdb_builder *b, double v)
{
    rdb_builder_len(b, RDB_MODULE_OPCODE_DOUBLE);
    rdb_builder_double(b, v);
}

void rdb_builder_module_string(struct rdb_builder *b, const void *p, size_t n)
{
    rdb_builder_len(b, RDB_MODULE_OPCODE_STRING);
    rdb_builder_str(b, p, n);
}

void rdb_builder_module_eof(struct rdb_builder *b)
{
    rdb_builder_len(b, RDB_MODULE_OPCODE_EOF);
}

/* ---- Ziplist ------------------------------------------------------------ */

#define ZIPLIST_HEADER_SIZE 10

void ziplist_builder_init(struct ziplist_builder *z)
{
    rdb_builder_init(&z->body);
    z->count = 0;
    z->prev_len = 0;
    z->tail = ZIPLIST_HEADER_SIZE;
    z->big_prevlen = false;
}

void ziplist_builder_deinit(struct ziplist_builder *z)
{
    rdb_builder_deinit(&z->body);
}

/* Writes the prevlen field of a new entry and remembers where it starts. */
static size_t ziplist_begin_entry(struct ziplist_builder *z)
{
    size_t start = z->body.len;
    z->tail = ZIPLIST_HEADER_SIZE + start;
    if (z->prev_len < 254 && !z->big_prevlen) {
        rdb_builder_byte(&z->body, (uint8_t)z->prev_len);
    } else {
        rdb_builder_byte(&z->body, 0xFE);
        rdb_builder_u32le(&z->body, (uint32_t)z->prev_len);
    }
    z->big_prevlen = false;
    return start;
}

static void ziplist_end_entry(struct ziplist_builder *z, size_t start)
{
    z->prev_len = z->body.len - start;
    z->count++;
}

void ziplist_builder_add_str_as(struct ziplist_builder *z, const void *p, size_t n, int enc)
{
    size_t start = ziplist_begin_entry(z);
    switch (enc) {
    case ZIPLIST_STR_6:
        if (n > 63)
            die("ziplist 6-bit string too long");
        rdb_builder_byte(&z->body, (uint8_t)n);
        break;
    case ZIPLIST_STR_14:
        if (n > 16383)
            die("ziplist 14-bit string too long");
        rdb_builder_byte(&z->body, (uint8_t)(0x40 | (n >> 8)));
        rdb_builder_byte(&z->body, (uint8_t)n);
        break;
    case ZIPLIST_STR_32:
        rdb_builder_byte(&z->body, 0x80);
        rdb_builder_u32be(&z->body, (uint32_t)n);
        break;
    default:
        die("bad ziplist string encoding");
    }
    rdb_builder_bytes(&z->body, p, n);
    ziplist_end_entry(z, start);
}

void ziplist_builder_add_str(struct ziplist_builder *z, const void *p, size_t n)
{
    int enc = n <= 63 ? ZIPLIST_STR_6 : n <= 16383 ? ZIPLIST_STR_14 : ZIPLIST_STR_32;
    ziplist_builder_add_str_as(z, p, n, enc);
}

void ziplist_builder_add_cstr(struct ziplist_builder *z, const char *s)
{
    ziplist_builder_add_str(z, s, strlen(s));
}

void ziplist_builder_add_int_as(struct ziplist_builder *z, int64_t v, int enc)
{
    size_t start = ziplist_begin_entry(z);
    switch (enc) {
    case ZIPLIST_INT_IMM:
        if (v < 0 || v > 12)
            die("ziplist immediate out of range");
        rdb_builder_byte(&z->body, (uint8_t)(0xF1 + v));
        break;
    case ZIPLIST_INT_8:
        rdb_builder_byte(&z->body, 0xFE);
        put_le(&z->body, (uint64_t)v, 1);
        break;
    case ZIPLIST_INT_16:
        rdb_builder_byte(&z->body, 0xC0);
        put_le(&z->body, (uint64_t)v, 2);
        break;
    case ZIPLIST_INT_24:
        rdb_builder_byte(&z->body, 0xF0);
        put_le(&z->body, (uint64_t)v, 3);
        break;
    case ZIPLIST_INT_32:
        rdb_builder_byte(&z->body, 0xD0);
        put_le(&z->body, (uint64_t)v, 4);
        break;
    case ZIPLIST_INT_64:
        rdb_builder_byte(&z->body, 0xE0);
        put_le(&z->body, (uint64_t)v, 8);
        break;
    default:
        die("bad ziplist int encoding");
    }
    ziplist_end_entry(z, start);
}

void ziplist_builder_add_int(struct ziplist_builder *z, int64_t v)
{
    int enc;
    if (v >= 0 && v <= 12)
        enc = ZIPLIST_INT_IMM;
    else if (v >= INT8_MIN && v <= INT8_MAX)
        enc = ZIPLIST_INT_8;
    else if (v >= INT16_MIN && v <= INT16_MAX)
        enc = ZIPLIST_INT_16;
    else if (v >= -(1 << 23) && v < (1 << 23))
        enc = ZIPLIST_INT_24;
    else if (v >= INT32_MIN && v <= INT32_MAX)
        enc = ZIPLIST_INT_32;
    else
        enc = ZIPLIST_INT_64;
    ziplist_builder_add_int_as(z, v, enc);
}

void ziplist_builder_finish(struct ziplist_builder *z, struct rdb_builder *out)
{
    size_t total = ZIPLIST_HEADER_SIZE + z->body.len + 1;
    rdb_builder_u32le(out, (uint32_t)total);
    rdb_builder_u32le(out, (uint32_t)z->tail);
    rdb_builder_u16le(out, z->count < 65535 ? (uint16_t)z->count : 65535);
    rdb_builder_bytes(out, z->body.p, z->body.len);
    rdb_builder_byte(out, 0xFF);
}

/* ---- Listpack ----------------------------------------------------------- */

#define LISTPACK_HEADER_SIZE 6

void listpack_builder_init(struct listpack_builder *l)
{
    rdb_builder_init(&l->body);
    l->count = 0;
}

void listpack_builder_deinit(struct listpack_builder *l)
{
    rdb_builder_deinit(&l->body);
}

size_t listpack_backlen_size(size_t n)
{
    if (n <= 127)
        return 1;
    if (n < 16383)
        return 2;
    if (n < 2097151)
        return 3;
    if (n < 268435455)
        return 4;
    return 5;
}

/* lpEncodeBacklen: the high 7-bit group first, every byte after the first
 * with bit 7 set, so that reading backwards from the last byte finds the
 * low bits first and stops at the byte without bit 7. */
static void listpack_end_entry(struct listpack_builder *l, size_t start)
{
    size_t n = l->body.len - start;
    size_t k = listpack_backlen_size(n);
    for (size_t i = 0; i < k; i++) {
        uint8_t c = (uint8_t)((n >> (7 * (k - 1 - i))) & 127);
        if (i > 0)
            c |= 128;
        rdb_builder_byte(&l->body, c);
    }
    l->count++;
}

void listpack_builder_add_str_as(struct listpack_builder *l, const void *p, size_t n, int enc)
{
    size_t start = l->body.len;
    switch (enc) {
    case LISTPACK_STR_6:
        if (n > 63)
            die("listpack 6-bit string too long");
        rdb_builder_byte(&l->body, (uint8_t)(0x80 | n));
        break;
    case LISTPACK_STR_12:
        if (n > 4095)
            die("listpack 12-bit string too long");
        rdb_builder_byte(&l->body, (uint8_t)(0xE0 | (n >> 8)));
        rdb_builder_byte(&l->body, (uint8_t)n);
        break;
    case LISTPACK_STR_32:
        rdb_builder_byte(&l->body, 0xF0);
        rdb_builder_u32le(&l->body, (uint32_t)n);
        break;
    default:
        die("bad listpack string encoding");
    }
    rdb_builder_bytes(&l->body, p, n);
    listpack_end_entry(l, start);
}

void listpack_builder_add_str(struct listpack_builder *l, const void *p, size_t n)
{
    int enc = n <= 63 ? LISTPACK_STR_6 : n <= 4095 ? LISTPACK_STR_12 : LISTPACK_STR_32;
    listpack_builder_add_str_as(l, p, n, enc);
}

void listpack_builder_add_cstr(struct listpack_builder *l, const char *s)
{
    listpack_builder_add_str(l, s, strlen(s));
}

void listpack_builder_add_int_as(struct listpack_builder *l, int64_t v, int enc)
{
    size_t start = l->body.len;
    uint64_t u = (uint64_t)v;
    switch (enc) {
    case LISTPACK_UINT_7:
        if (v < 0 || v > 127)
            die("listpack 7-bit uint out of range");
        rdb_builder_byte(&l->body, (uint8_t)v);
        break;
    case LISTPACK_INT_13:
        if (v < -4096 || v > 4095)
            die("listpack 13-bit int out of range");
        u &= 0x1FFF;
        rdb_builder_byte(&l->body, (uint8_t)(0xC0 | (u >> 8)));
        rdb_builder_byte(&l->body, (uint8_t)u);
        break;
    case LISTPACK_INT_16:
        rdb_builder_byte(&l->body, 0xF1);
        put_le(&l->body, u, 2);
        break;
    case LISTPACK_INT_24:
        rdb_builder_byte(&l->body, 0xF2);
        put_le(&l->body, u, 3);
        break;
    case LISTPACK_INT_32:
        rdb_builder_byte(&l->body, 0xF3);
        put_le(&l->body, u, 4);
        break;
    case LISTPACK_INT_64:
        rdb_builder_byte(&l->body, 0xF4);
        put_le(&l->body, u, 8);
        break;
    default:
        die("bad listpack int encoding");
    }
    listpack_end_entry(l, start);
}

void listpack_builder_add_int(struct listpack_builder *l, int64_t v)
{
    int enc;
    if (v >= 0 && v <= 127)
        enc = LISTPACK_UINT_7;
    else if (v >= -4096 && v <= 4095)
        enc = LISTPACK_INT_13;
    else if (v >= INT16_MIN && v <= INT16_MAX)
        enc = LISTPACK_INT_16;
    else if (v >= -(1 << 23) && v < (1 << 23))
        enc = LISTPACK_INT_24;
    else if (v >= INT32_MIN && v <= INT32_MAX)
        enc = LISTPACK_INT_32;
    else
        enc = LISTPACK_INT_64;
    listpack_builder_add_int_as(l, v, enc);
}

void listpack_builder_finish(struct listpack_builder *l, struct rdb_builder *out)
{
    size_t total = LISTPACK_HEADER_SIZE + l->body.len + 1;
    rdb_builder_u32le(out, (uint32_t)total);
    rdb_builder_u16le(out, l->count < 65535 ? (uint16_t)l->count : 65535);
    rdb_builder_bytes(out, l->body.p, l->body.len);
    rdb_builder_byte(out, 0xFF);
}

/* ---- Intset ------------------------------------------------------------- */

void intset_build(struct rdb_builder *out, uint32_t width, const int64_t *v, size_t n)
{
    rdb_builder_u32le(out, width);
    rdb_builder_u32le(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_le(out, (uint64_t)v[i], (int)width);
}

/* ---- Zipmap ------------------------------------------------------------- */

void zipmap_builder_init(struct zipmap_builder *z)
{
    rdb_builder_init(&z->body);
    z->count = 0;
}

void zipmap_builder_deinit(struct zipmap_builder *z)
{
    rdb_builder_deinit(&z->body);
}

static void zipmap_len(struct rdb_builder *b, size_t n)
{
    if (n < 254) {
        rdb_builder_byte(b, (uint8_t)n);
    } else {
        rdb_builder_byte(b, 254);
        rdb_builder_u32le(b, (uint32_t)n);
    }
}

void zipmap_builder_add(struct zipmap_builder *z, const void *k, size_t klen, const void *v,
                        size_t vlen, uint8_t free_bytes)
{
    zipmap_len(&z->body, klen);
    rdb_builder_bytes(&z->body, k, klen);
    zipmap_len(&z->body, vlen);
    rdb_builder_byte(&z->body, free_bytes);
    rdb_builder_bytes(&z->body, v, vlen);
    rdb_builder_fill(&z->body, 0xAA, free_bytes); /* garbage, as Redis leaves it */
    z->count++;
}

void zipmap_builder_finish(struct zipmap_builder *z, struct rdb_builder *out, bool count_unknown)
{
    rdb_builder_byte(out, (count_unknown || z->count >= 254) ? 254 : (uint8_t)z->count);
    rdb_builder_bytes(out, z->body.p, z->body.len);
    rdb_builder_byte(out, 0xFF);
}

/* ---- Stream listpack nodes ---------------------------------------------- */

/* lpStringToInt64: a string Redis's lpAppend stores as an integer entry. */
static bool string_to_int64(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20)
        return false;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == n || (s[i] == '0' && n > i + 1) || (i == 1 && s[1] == '0'))
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (s[0] == '-') {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

static void listpack_builder_append(struct listpack_builder *l, const char *s)
{
    int64_t v;
    if (string_to_int64(s, &v))
        listpack_builder_add_int(l, v);
    else
        listpack_builder_add_cstr(l, s);
}

void stream_node_builder_init(struct stream_node_builder *s, uint64_t ms, uint64_t seq,
                              int64_t count, int64_t deleted, size_t nfields,
                              const char *const *fields)
{
    listpack_builder_init(&s->lp);
    s->master_ms = ms;
    s->master_seq = seq;
    s->master_nfields = nfields;
    listpack_builder_add_int(&s->lp, count);
    listpack_builder_add_int(&s->lp, deleted);
    listpack_builder_add_int(&s->lp, (int64_t)nfields);
    for (size_t i = 0; i < nfields; i++)
        listpack_builder_append(&s->lp, fields[i]);
    listpack_builder_add_int(&s->lp, 0); /* the master entry's terminator */
}

void stream_node_builder_deinit(struct stream_node_builder *s)
{
    listpack_builder_deinit(&s->lp);
}

void stream_node_builder_add(struct stream_node_builder *s, int flags, uint64_t ms, uint64_t seq,
                             size_t nfields, const char *const *fv)
{
    listpack_builder_add_int(&s->lp, flags);
    listpack_builder_add_int(&s->lp, (int64_t)(ms - s->master_ms));
    listpack_builder_add_int(&s->lp, (int64_t)(seq - s->master_seq));
    int64_t lp_count;
    if (flags & RDB_STREAM_ITEM_FLAG_SAMEFIELDS) {
        if (nfields != s->master_nfields)
            die("SAMEFIELDS entry with another number of fields");
        for (size_t i = 0; i < nfields; i++)
            listpack_builder_append(&s->lp, fv[i]);
        lp_count = (int64_t)nfields + 3;
    } else {
        listpack_builder_add_int(&s->lp, (int64_t)nfields);
        for (size_t i = 0; i < 2 * nfields; i++)
            listpack_builder_append(&s->lp, fv[i]);
        lp_count = 2 * (int64_t)nfields + 4;
    }
    listpack_builder_add_int(&s->lp, lp_count);
}

void rdb_builder_stream_id_raw(struct rdb_builder *b, uint64_t ms, uint64_t seq)
{
    rdb_builder_u64be(b, ms);
    rdb_builder_u64be(b, seq);
}

void stream_node_builder_write(struct stream_node_builder *s, struct rdb_builder *rdb)
{
    struct rdb_builder key, lp;
    rdb_builder_init(&key);
    rdb_builder_init(&lp);
    rdb_builder_stream_id_raw(&key, s->master_ms, s->master_seq);
    rdb_builder_str_blob(rdb, &key);
    listpack_builder_finish(&s->lp, &lp);
    rdb_builder_str_blob(rdb, &lp);
    rdb_builder_deinit(&key);
    rdb_builder_deinit(&lp);
}
