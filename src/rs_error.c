/* rs_error.c - error reports for bad input, and the assertion handler. */
#include "rs_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void rs_error_set(struct rs_error *err, int code, uint64_t offset, const char *fmt, ...)
{
    if (err == NULL)
        return;
    err->code = code;
    err->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

char *rs_escape_bytes(char *out, size_t cap, const void *p, size_t len, size_t max_in)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = p;
    size_t o = 0, i = 0;
    if (cap == 0)
        return out;
    for (; i < len && i < max_in; i++) {
        unsigned char c = s[i];
        char tmp[4];
        size_t t = 0;
        if (c == '"' || c == '\\') {
            tmp[t++] = '\\';
            tmp[t++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[t++] = (char)c;
        } else {
            tmp[t++] = '\\';
            tmp[t++] = 'x';
            tmp[t++] = hex[c >> 4];
            tmp[t++] = hex[c & 15];
        }
        if (o + t + 4 > cap) /* keep room for "..." and the NUL */
            break;
        for (size_t k = 0; k < t; k++)
            out[o++] = tmp[k];
    }
    if (i < len && o + 4 <= cap) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
    return out;
}

const char *rs_error_code_name(int code)
{
    switch (code) {
    case RS_E_NONE:
        return "none";
    case RS_E_FORMAT:
        return "format";
    case RS_E_TRUNCATED:
        return "truncated";
    case RS_E_CHECKSUM:
        return "checksum";
    case RS_E_UNSUPPORTED:
        return "unsupported";
    case RS_E_LIMIT:
        return "limit";
    case RS_E_CONSUMER:
        return "consumer";
    }
    return "unknown";
}

void rs_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "ringsync: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}
