/* json_out.h - JSON text built one line at a time and written to a FILE.
 *
 * A json_out is a growable buffer that holds the line being built (and, until
 * it passes flush_bytes, the finished lines before it). Callers append
 * punctuation, escaped strings and numbers; json_out_end_line() closes a line.
 *
 * Bounded memory: once the buffer passes flush_bytes it is written out, even
 * in the middle of a line, so a value of any size streams through a buffer of
 * about flush_bytes. A caller that may still have to take a line back (a key
 * whose value might turn out to be an empty collection) holds it
 * (json_out_hold()); a held line grows the buffer instead of being written.
 *
 * Strings (notes/inspect_json.md): bytes 0x20..0x7e are written as they are,
 * except '"' and '\\' which become \" and \\; every other byte b becomes
 * \u00XX with XX the byte's value in lowercase hex. The output is ASCII-only
 * valid JSON, and a reader that maps each code point U+0000..U+00FF back to
 * one byte gets the input bytes exactly.
 *
 * Errors: the first failed write or allocation is kept (json_out_error());
 * later appends and writes do nothing. An all-zero struct json_out is an empty
 * memory buffer (no FILE, never written out, default flush size).
 *
 * Threads: a json_out belongs to the thread that uses it.
 */
#ifndef RS_JSON_OUT_H
#define RS_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The default flush size: a value larger than this is written in parts. */
#define JSON_OUT_FLUSH_BYTES ((size_t)1 << 20)

struct json_out {
    char *buf;
    size_t len;
    size_t cap;
    size_t line_start;     /* where the current line begins in buf */
    FILE *fp;              /* NULL: a memory buffer, never written out */
    size_t flush_bytes;    /* write out once len passes this (0: JSON_OUT_FLUSH_BYTES) */
    uint64_t line_written; /* bytes of the current line already written to fp */
    bool is_held;          /* the current line may not be written out yet */
    int err;               /* 0, or the first failure as a negative errno */
};

/* Prepares o to write to fp (NULL for a memory buffer that is never written
 * out). flush_bytes 0 means JSON_OUT_FLUSH_BYTES. Allocates nothing yet. */
void json_out_init(struct json_out *o, FILE *fp, size_t flush_bytes);

/* Frees the buffer; what was not written is lost (call json_out_flush first). */
void json_out_deinit(struct json_out *o);

/* Appends p[0..len) as it is: punctuation, member names, pre-built JSON. */
void json_out_raw(struct json_out *o, const void *p, size_t len);

/* Appends the NUL-terminated text s as it is. */
void json_out_text(struct json_out *o, const char *s);

/* Appends one character as it is. */
void json_out_char(struct json_out *o, char c);

/* Appends p[0..len) escaped, without quotes: one piece of a string whose
 * quotes the caller writes (a string value that arrives in pieces). */
void json_out_escaped(struct json_out *o, const void *p, size_t len);

/* Appends p[0..len) as a JSON string: quotes around the escaped bytes. */
void json_out_string(struct json_out *o, const void *p, size_t len);

void json_out_i64(struct json_out *o, int64_t v);
void json_out_u64(struct json_out *o, uint64_t v);

/* Appends v as printf's %.17g (which strtod reads back exactly); infinities
 * and NaN, which JSON numbers cannot express, as the strings "inf", "-inf"
 * and "nan". */
void json_out_double(struct json_out *o, double v);

/* While is_held, the current line stays in the buffer, however large. When
 * the hold is released the buffer may be written out at the next append. */
void json_out_hold(struct json_out *o, bool is_held);

/* Ends the current line with '\n' and releases any hold. Finished lines are
 * written out together once the buffer passes flush_bytes. Returns 0 or the
 * kept error. */
int json_out_end_line(struct json_out *o);

/* Drops the current line. None of it may have been written out yet (a line
 * that was held from its start never was). */
void json_out_discard_line(struct json_out *o);

/* Writes out everything the buffer holds, including a partial line, then
 * fflush()es the FILE. Returns 0 or the kept error. A memory buffer: no-op. */
int json_out_flush(struct json_out *o);

/* 0, or the first write or allocation failure as a negative errno. */
int json_out_error(const struct json_out *o);

#endif
