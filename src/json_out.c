/* json_out.c - JSON text built one line at a time (see json_out.h). */
#include "json_out.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rs_error.h"

/* Escaping works through the input in blocks of this many bytes, so that the
 * worst case (6 output bytes per input byte) is reserved once per block and a
 * long string is written out between blocks. */
#define JSON_OUT_ESCAPE_BLOCK ((size_t)64 << 10)

/* Copies of raw text are cut at this size for the same reason. */
#define JSON_OUT_RAW_BLOCK ((size_t)256 << 10)

static const char json_out_hex[] = "0123456789abcdef";

static size_t json_out_flush_bytes(const struct json_out *o)
{
    return o->flush_bytes != 0 ? o->flush_bytes : JSON_OUT_FLUSH_BYTES;
}

void json_out_init(struct json_out *o, FILE *fp, size_t flush_bytes)
{
    memset(o, 0, sizeof(*o));
    o->fp = fp;
    o->flush_bytes = flush_bytes;
}

void json_out_deinit(struct json_out *o)
{
    free(o->buf);
    memset(o, 0, sizeof(*o));
}

/* The slow path of json_out_reserve: grows the buffer. */
static bool json_out_grow(struct json_out *o, size_t n)
{
    if (o->err != 0)
        return false;
    size_t need = o->len + n;
    if (need < o->len) {
        o->err = -ENOMEM;
        return false;
    }
    size_t cap = o->cap != 0 ? o->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(o->buf, cap);
    if (p == NULL) {
        o->err = -ENOMEM;
        return false;
    }
    o->buf = p;
    o->cap = cap;
    return true;
}

/* Makes room for n more bytes. Returns false (and keeps -ENOMEM) when it
 * cannot, or when an earlier failure is kept. */
static inline bool json_out_reserve(struct json_out *o, size_t n)
{
    if (__builtin_expect(o->err == 0 && o->cap - o->len >= n, 1))
        return true;
    return json_out_grow(o, n);
}

/* Writes buf[0..len) to the FILE and empties the buffer. */
static void json_out_write(struct json_out *o)
{
    if (o->err != 0 || o->len == 0)
        return;
    errno = 0;
    if (fwrite(o->buf, 1, o->len, o->fp) != o->len) {
        o->err = errno != 0 ? -errno : -EIO;
        return;
    }
    o->line_written += o->len - o->line_start;
    o->len = 0;
    o->line_start = 0;
}

/* The one place a partial line leaves: when the buffer passed its size and
 * the line is not held. */
static inline void json_out_maybe_write(struct json_out *o)
{
    if (o->fp != NULL && !o->is_held && o->len >= json_out_flush_bytes(o))
        json_out_write(o);
}

void json_out_raw(struct json_out *o, const void *p, size_t len)
{
    const char *s = p;
    if (len <= JSON_OUT_RAW_BLOCK && json_out_reserve(o, len)) {
        memcpy(o->buf + o->len, s, len); /* the common case: punctuation, numbers */
        o->len += len;
        json_out_maybe_write(o);
        return;
    }
    while (len > 0) {
        size_t n = len < JSON_OUT_RAW_BLOCK ? len : JSON_OUT_RAW_BLOCK;
        if (!json_out_reserve(o, n))
            return;
        memcpy(o->buf + o->len, s, n);
        o->len += n;
        s += n;
        len -= n;
        json_out_maybe_write(o);
    }
}

void json_out_text(struct json_out *o, const char *s)
{
    json_out_raw(o, s, strlen(s));
}

void json_out_char(struct json_out *o, char c)
{
    if (!json_out_reserve(o, 1))
        return;
    o->buf[o->len++] = c;
    json_out_maybe_write(o);
}

/* True for the bytes written as they are: printable ASCII but '"' and '\\'. */
static inline bool json_out_is_literal(unsigned char c)
{
    return (unsigned char)(c - 0x20) < 0x5f && c != '"' && c != '\\';
}

#define JSON_OUT_ONES  0x0101010101010101ull
#define JSON_OUT_HIGHS 0x8080808080808080ull

/* Nonzero when one of the 8 bytes of w needs escaping: below 0x20, 0x7f and
 * above, '"' or '\\'. Each test is exact as to whether any byte matches
 * (the borrow of "has a zero byte" only spreads above a true match). */
static inline uint64_t json_out_word_needs_escape(uint64_t w)
{
    uint64_t below_space = (w - JSON_OUT_ONES * 0x20) & ~w;
    uint64_t del_or_high = ((w & ~JSON_OUT_HIGHS) + JSON_OUT_ONES) | w;
    uint64_t q = w ^ (JSON_OUT_ONES * '"');
    uint64_t quote = (q - JSON_OUT_ONES) & ~q;
    uint64_t b = w ^ (JSON_OUT_ONES * '\\');
    uint64_t backslash = (b - JSON_OUT_ONES) & ~b;
    return (below_space | del_or_high | quote | backslash) & JSON_OUT_HIGHS;
}

void json_out_escaped(struct json_out *o, const void *p, size_t len)
{
    const unsigned char *s = p;
    while (len > 0) {
        size_t n = len < JSON_OUT_ESCAPE_BLOCK ? len : JSON_OUT_ESCAPE_BLOCK;
        if (!json_out_reserve(o, n * 6))
            return;
        char *w = o->buf + o->len;
        size_t i = 0;
        while (i < n) {
            /* Copy the run of literal bytes in one go: text is mostly such runs. */
            size_t run = i;
            for (uint64_t word; run + 8 <= n; run += 8) {
                memcpy(&word, s + run, 8);
                if (json_out_word_needs_escape(word) != 0)
                    break;
            }
            while (run < n && json_out_is_literal(s[run]))
                run++;
            memcpy(w, s + i, run - i);
            w += run - i;
            i = run;
            if (i == n)
                break;
            unsigned char c = s[i++];
            if (c == '"' || c == '\\') {
                w[0] = '\\';
                w[1] = (char)c;
                w += 2;
            } else {
                memcpy(w, "\\u00", 4);
                w[4] = json_out_hex[c >> 4];
                w[5] = json_out_hex[c & 15];
                w += 6;
            }
        }
        o->len = (size_t)(w - o->buf);
        s += n;
        len -= n;
        json_out_maybe_write(o);
    }
}

void json_out_string(struct json_out *o, const void *p, size_t len)
{
    json_out_char(o, '"');
    json_out_escaped(o, p, len);
    json_out_char(o, '"');
}

void json_out_u64(struct json_out *o, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    json_out_raw(o, tmp + sizeof(tmp) - n, n);
}

void json_out_i64(struct json_out *o, int64_t v)
{
    if (v < 0) {
        json_out_char(o, '-');
        json_out_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        json_out_u64(o, (uint64_t)v);
    }
}

void json_out_double(struct json_out *o, double v)
{
    if (isnan(v)) {
        json_out_text(o, "\"nan\"");
        return;
    }
    if (isinf(v)) {
        json_out_text(o, v > 0 ? "\"inf\"" : "\"-inf\"");
        return;
    }
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        /* An integer below 2^53: %.17g prints its digits, no point, no
         * exponent; this is the same text, without printf's cost. */
        json_out_i64(o, (int64_t)v);
        return;
    }
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    RS_ASSERT(n > 0 && (size_t)n < sizeof(tmp));
    json_out_raw(o, tmp, (size_t)n);
}

void json_out_hold(struct json_out *o, bool is_held)
{
    o->is_held = is_held;
}

int json_out_end_line(struct json_out *o)
{
    o->is_held = false;
    json_out_char(o, '\n');
    if (o->err == 0) {
        o->line_start = o->len;
        o->line_written = 0;
    }
    return o->err;
}

void json_out_discard_line(struct json_out *o)
{
    RS_ASSERT(o->line_written == 0);
    o->len = o->line_start;
    o->is_held = false;
}

int json_out_flush(struct json_out *o)
{
    if (o->fp == NULL)
        return o->err;
    json_out_write(o);
    errno = 0;
    if (o->err == 0 && fflush(o->fp) != 0)
        o->err = errno != 0 ? -errno : -EIO;
    return o->err;
}

int json_out_error(const struct json_out *o)
{
    return o->err;
}
