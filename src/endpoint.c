/* endpoint.c - parsing redis:// URIs into endpoints.
 *
 * The URI is cut in this order, each step on what the previous one left:
 *   1. the scheme ("redis://", optional);
 *   2. the user part: everything before the LAST '@' (a password may hold a
 *      raw '@'; a host never does), split at its first ':' into user and
 *      password, both percent-decoded;
 *   3. the db: from the first '/' after the host on;
 *   4. host and port: "[v6]:port", "[v6]", "host:port" or "host".
 * Messages quote the URI with the user part replaced by "***", so a password
 * never reaches an error message, however malformed the URI.
 */
#include "endpoint.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENDPOINT_SCHEME      "redis://"
#define ENDPOINT_QUOTE_BYTES 80 /* of the URI in a message */

/* Where the "scheme://" of uri ends, or NULL if it has none ("://" after an
 * '@' is part of a password, not a scheme). */
static const char *endpoint_scheme_end(const char *uri)
{
    const char *sep = strstr(uri, "://");
    const char *at = strchr(uri, '@');
    if (sep == NULL || (at != NULL && at < sep))
        return NULL;
    /* a scheme is a letter, then letters, digits, '+', '-', '.' (RFC 3986):
     * else the "://" is inside a password of a URI without one */
    if (!isalpha((unsigned char)uri[0]))
        return NULL;
    for (const char *p = uri; p < sep; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return NULL;
    return sep + 3;
}

/* The URI as messages show it: the user part (if any) replaced by "***". */
static void endpoint_redact(const char *uri, char *out, size_t cap)
{
    const char *at = strrchr(uri, '@');
    char shown[600];
    if (at == NULL) {
        snprintf(shown, sizeof(shown), "%.500s", uri);
    } else {
        const char *sep = endpoint_scheme_end(uri);
        size_t scheme_len = sep != NULL ? (size_t)(sep - uri) : 0;
        snprintf(shown, sizeof(shown), "%.*s***@%.400s", (int)scheme_len, uri, at + 1);
    }
    rs_escape_bytes(out, cap, shown, strlen(shown), ENDPOINT_QUOTE_BYTES);
}

static int endpoint_fail(struct rs_error *err, const char *uri, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets err to "endpoint '<redacted uri>': <what>" and returns -EINVAL. */
static int endpoint_fail(struct rs_error *err, const char *uri, const char *fmt, ...)
{
    char quoted[ENDPOINT_QUOTE_BYTES * 4 + 8];
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    endpoint_redact(uri, quoted, sizeof(quoted));
    rs_error_set(err, RS_E_FORMAT, 0, "endpoint '%s': %s", quoted, what);
    return -EINVAL;
}

static int endpoint_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (capacity cap, NUL-terminated).
 * Returns 0, -ERANGE when it does not fit, -EINVAL on a bad or NUL escape. */
static int endpoint_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            int h = endpoint_hex(s[i + 1]), l = endpoint_hex(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return -ERANGE;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Parses s[0..len) as a decimal integer in [min, max]; false if it is not one. */
static bool endpoint_number(const char *s, size_t len, long min, long max, long *v)
{
    if (len == 0 || len > 10)
        return false;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n * 10 + (s[i] - '0');
    }
    if (n < min || n > max)
        return false;
    *v = n;
    return true;
}

/* A character that may appear in a host name or address (brackets excluded). */
static bool endpoint_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == ':' || c == '%';
}

static int endpoint_parse_userinfo(const char *uri, const char *s, size_t len, struct endpoint *ep,
                                   struct rs_error *err)
{
    const char *colon = memchr(s, ':', len);
    size_t user_len = colon != NULL ? (size_t)(colon - s) : len;
    int rc = endpoint_decode(s, user_len, ep->user, sizeof(ep->user));
    if (rc == -ERANGE)
        return endpoint_fail(err, uri, "the user name is longer than %zu bytes",
                             sizeof(ep->user) - 1);
    if (rc < 0)
        return endpoint_fail(err, uri, "the user name has a bad percent-escape (%%XX, not %%00)");
    if (colon == NULL)
        return 0;
    const char *pw = colon + 1;
    size_t pw_len = len - user_len - 1;
    rc = endpoint_decode(pw, pw_len, ep->password, sizeof(ep->password));
    if (rc == -ERANGE)
        return endpoint_fail(err, uri, "the password is longer than %zu bytes",
                             sizeof(ep->password) - 1);
    if (rc < 0)
        return endpoint_fail(err, uri, "the password has a bad percent-escape (%%XX, not %%00)");
    ep->has_password = ep->password[0] != '\0';
    return 0;
}

static int endpoint_parse_hostport(const char *uri, const char *s, size_t len, struct endpoint *ep,
                                   struct rs_error *err)
{
    char shown[64];
    const char *host = s, *port = NULL;
    size_t host_len;
    bool is_v6 = false;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return endpoint_fail(err, uri, "'[' opens an IPv6 address that no ']' closes");
        host = s + 1;
        host_len = (size_t)(close - host);
        is_v6 = true;
        size_t after = (size_t)(close + 1 - s);
        if (after < len) {
            if (s[after] != ':')
                return endpoint_fail(err, uri, "expected ':port' after the IPv6 address");
            port = s + after + 1;
        }
        if (host_len == 0 || memchr(host, ':', host_len) == NULL) {
            rs_escape_bytes(shown, sizeof(shown), host, host_len, 40);
            return endpoint_fail(err, uri, "'[%s]' is not an IPv6 address", shown);
        }
    } else {
        const char *colon = memchr(s, ':', len);
        host_len = colon != NULL ? (size_t)(colon - s) : len;
        if (colon != NULL) {
            port = colon + 1;
            if (memchr(port, ':', len - host_len - 1) != NULL)
                return endpoint_fail(
                    err, uri, "more than one ':' after the host (an IPv6 address goes in [ ])");
        }
    }
    if (host_len == 0)
        return endpoint_fail(err, uri, "the host is missing");
    if (host_len >= sizeof(ep->host))
        return endpoint_fail(err, uri, "the host is longer than %zu bytes", sizeof(ep->host) - 1);
    for (size_t i = 0; i < host_len; i++) {
        char c = host[i];
        if (!endpoint_host_char(c) || (c == ':' && !is_v6)) {
            rs_escape_bytes(shown, sizeof(shown), host, host_len, 40);
            return endpoint_fail(err, uri, "the host '%s' has a character a host cannot have",
                                 shown);
        }
    }
    memcpy(ep->host, host, host_len);
    ep->host[host_len] = '\0';

    ep->port = ENDPOINT_DEFAULT_PORT;
    if (port != NULL) {
        size_t port_len = len - (size_t)(port - s);
        long v;
        if (!endpoint_number(port, port_len, 1, 65535, &v)) {
            rs_escape_bytes(shown, sizeof(shown), port, port_len, 12);
            return endpoint_fail(err, uri, "port '%s' is not a number from 1 to 65535", shown);
        }
        ep->port = (int)v;
    }
    snprintf(ep->name, sizeof(ep->name), is_v6 ? "[%s]:%d" : "%s:%d", ep->host, ep->port);
    return 0;
}

int endpoint_parse(const char *uri, const char *password_env, struct endpoint *ep,
                   struct rs_error *err)
{
    memset(ep, 0, sizeof(*ep));
    ep->db = -1;
    if (uri == NULL || uri[0] == '\0') {
        rs_error_set(err, RS_E_FORMAT, 0, "endpoint: none given (expected redis://host:port)");
        return -EINVAL;
    }
    const char *s = uri;
    const char *sep = endpoint_scheme_end(s);
    if (sep != NULL) {
        size_t scheme_len = (size_t)(sep - 3 - s);
        if (scheme_len == 6 && strncasecmp(s, "rediss", 6) == 0)
            return endpoint_fail(err, uri, "TLS (rediss://) is not supported; use redis://");
        if (strncasecmp(s, ENDPOINT_SCHEME, strlen(ENDPOINT_SCHEME)) != 0) {
            char shown[64];
            rs_escape_bytes(shown, sizeof(shown), s, scheme_len, 16);
            return endpoint_fail(err, uri, "unknown scheme '%s://' (expected redis://)", shown);
        }
        s = sep;
    }

    const char *at = strrchr(s, '@');
    if (at != NULL) {
        int rc = endpoint_parse_userinfo(uri, s, (size_t)(at - s), ep, err);
        if (rc < 0)
            goto fail;
        s = at + 1;
    }

    /* The db starts at the first '/' after the host ("[v6]" holds none). */
    const char *slash = strchr(s, '/');
    const char *q = strpbrk(s, "?#");
    if (q != NULL) {
        endpoint_fail(err, uri, "query parameters and fragments ('?', '#') are not supported");
        goto fail;
    }
    size_t hostport_len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (endpoint_parse_hostport(uri, s, hostport_len, ep, err) < 0)
        goto fail;
    if (slash != NULL && slash[1] != '\0') {
        long v;
        if (!endpoint_number(slash + 1, strlen(slash + 1), 0, 2147483647L, &v)) {
            char shown[64];
            rs_escape_bytes(shown, sizeof(shown), slash + 1, strlen(slash + 1), 16);
            endpoint_fail(err, uri, "db '%s' is not a non-negative number", shown);
            goto fail;
        }
        ep->db = (int)v;
    }

    if (!ep->has_password && password_env != NULL) {
        const char *pw = getenv(password_env);
        if (pw != NULL && pw[0] != '\0') {
            if (strlen(pw) >= sizeof(ep->password)) {
                endpoint_fail(err, uri, "the password in $%s is longer than %zu bytes",
                              password_env, sizeof(ep->password) - 1);
                goto fail;
            }
            strcpy(ep->password, pw);
            ep->has_password = true;
        }
    }
    if (ep->user[0] != '\0' && !ep->has_password) {
        if (password_env != NULL)
            endpoint_fail(err, uri, "user given without a password (in the URI or in $%s)",
                          password_env);
        else
            endpoint_fail(err, uri, "user given without a password");
        goto fail;
    }
    return 0;

fail:
    memset(ep, 0, sizeof(*ep));
    ep->db = -1;
    return -EINVAL;
}
