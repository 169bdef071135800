/* log.c - control-plane messages on standard error (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void rs_log(const char *fmt, ...)
{
    char line[2048];
    size_t n = (size_t)snprintf(line, sizeof(line), "ringsync: ");
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (w < 0)
        w = 0;
    n += (size_t)w < sizeof(line) - n - 1 ? (size_t)w : sizeof(line) - n - 2;
    line[n++] = '\n';
    fflush(stderr);
    for (size_t off = 0; off < n;) {
        ssize_t k = write(STDERR_FILENO, line + off, n - off);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
}
