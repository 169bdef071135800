/* fuzz_escape_bytes.c - rs_escape_bytes never writes past cap, always ends
 * the text, and shows a prefix of the full escape, marked "..." when cut.
 *
 * Input: cap (1 byte), max_in (1 byte), then the bytes to escape.
 */
#include <stdlib.h>
#include <string.h>

#include "rs_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cap = data[0], max_in = data[1];
    const uint8_t *in = data + 2;
    size_t len = size - 2;

    /* Exactly cap bytes, so a write past the end is an ASan report. */
    char *out = malloc(cap > 0 ? cap : 1);
    char *full = malloc(4 * len + 4);
    RS_ASSERT(out != NULL && full != NULL);
    out[0] = '#';
    rs_escape_bytes(out, cap, in, len, max_in);
    rs_escape_bytes(full, 4 * len + 4, in, len, len);

    if (cap == 0) {
        RS_ASSERT(out[0] == '#');
    } else {
        size_t n = strnlen(out, cap);
        RS_ASSERT(n < cap);
        size_t shown = n >= 3 && memcmp(out + n - 3, "...", 3) == 0 ? n - 3 : n;
        RS_ASSERT(memcmp(out, full, shown) == 0);
        /* A cut is marked whenever "..." and the NUL still fit. */
        if (shown == n && n + 4 <= cap)
            RS_ASSERT(len <= max_in && strcmp(out, full) == 0);
    }
    free(out);
    free(full);
    return 0;
}
