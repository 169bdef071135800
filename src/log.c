/* log.c - control-plane messages on standard error (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum rs_log_format log_format;
static char log_context[320]; /* "" or "job.yaml:3:10": rs_log_set_context */

void rs_log_set_context(const char *where)
{
    snprintf(log_context, sizeof(log_context), "%s", where != NULL ? where : "");
}

void rs_log_set_format(enum rs_log_format f)
{
    log_format = f;
}

static const char *level_of(const char *msg)
{
    if (strncmp(msg, "warning", 7) == 0)
        return "warning";
    if (strncmp(msg, "failed", 6) == 0 || strncmp(msg, "cannot", 6) == 0 ||
        strncmp(msg, "error", 5) == 0)
        return "error";
    return "info";
}

/* Appends s to out[*n..cap-2) as a JSON string's inside: '"', '\\' and
 * control bytes escaped; stops where it would not fit. */
static void escaped(char *out, size_t cap, size_t *n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[7];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            e[k++] = '\\';
            e[k++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            k = 6;
        } else {
            e[k++] = (char)c;
        }
        if (*n + k >= cap - 4) /* room for "}\n and the NUL */
            return;
        memcpy(out + *n, e, k);
        *n += k;
    }
}

size_t rs_log_format_line(char *out, size_t cap, const char *msg, double unix_time_s)
{
    size_t n;
    if (log_format == RS_LOG_TEXT) {
        n = (size_t)snprintf(out, cap, "ringsync: %s", msg);
        if (n > cap - 2)
            n = cap - 2;
        out[n++] = '\n';
        out[n] = '\0';
        return n;
    }
    long long total_ms = (long long)(unix_time_s * 1000 + 0.5);
    time_t t = (time_t)(total_ms / 1000);
    int ms = (int)(total_ms % 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    n = (size_t)snprintf(out, cap,
                         "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\","
                         "\"message\":\"",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec,
                         ms < 0     ? 0
                         : ms > 999 ? 999
                                    : ms,
                         level_of(msg));
    escaped(out, cap, &n, msg);
    memcpy(out + n, "\"}\n", 4);
    return n + 3;
}

void rs_log(const char *fmt, ...)
{
    char msg[2048], line[4096];
    va_list ap;
    size_t at = 0;
    if (log_context[0] != '\0')
        at = (size_t)snprintf(msg, sizeof(msg), "%s: ", log_context);
    va_start(ap, fmt);
    vsnprintf(msg + at, sizeof(msg) - at, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t n =
        rs_log_format_line(line, sizeof(line), msg, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    fflush(stderr);
    for (size_t off = 0; off < n;) {
        ssize_t k = write(STDERR_FILENO, line + off, n - off);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
}
