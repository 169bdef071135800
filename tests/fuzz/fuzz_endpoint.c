/* fuzz_endpoint.c - endpoint_parse on any URI: no crash, no read past the
 * string's end, every output a C string, and nothing but the password
 * depends on the password.
 *
 * Input: a flags byte, then the URI up to the first NUL, then the value of
 * the password's environment variable up to the next NUL (or the end; its
 * first 1023 bytes).
 * Flags: bit 0 passes the variable's name as password_env (else NULL), bit 1
 * sets the variable (else it is unset).
 *
 * Checks, on every input:
 *  - the result is 0 or -EINVAL; host, user, password, name and the message
 *    end within their arrays;
 *  - a failure leaves ep as a zeroed endpoint with db -1 (no password left
 *    behind) and a printable message;
 *  - a success gives a host of host characters, a port in 1..65535, a name
 *    that is "host:port" ("[host]:port" for IPv6) and nothing else, a user
 *    only with a password; and "redis://<name>[/db]" parses back to the
 *    same host, port and db;
 *  - the password in the URI (after a scheme as RFC 3986 writes one, from
 *    the first ':' to the last '@', as endpoint.h reads it) changed byte for
 *    byte into other bytes of the same length changes nothing else: the same
 *    result, message, host, port, user, db and name. So does the environment's password. A
 *    password that shows in a message or a name, or that changes how the
 *    rest is read, fails here. (Passwords with a '%' are left out: their
 *    escapes decide how long they are.)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_endpoint: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define PASSWORD_ENV "RS_FUZZ_ENDPOINT_PASSWORD"

/* The variable's entry, as putenv takes it: this buffer is the environment's
 * string, rewritten for each input (setenv would keep a copy of every value
 * it was ever given, and a long run would grow by them). */
static char env_entry[sizeof(PASSWORD_ENV) + 1024] = PASSWORD_ENV "=";

/* Sets the variable to value[0, len), cut to what the entry holds. */
static void set_password_env(const char *value, size_t len)
{
    size_t at = sizeof(PASSWORD_ENV); /* just past the '=' */
    size_t n = len < sizeof(env_entry) - at - 1 ? len : sizeof(env_entry) - at - 1;
    memcpy(env_entry + at, value, n);
    env_entry[at + n] = '\0';
    CHECK(putenv(env_entry) == 0);
}

struct outcome {
    int rc;
    struct endpoint ep;
    struct rs_error err;
};

static bool ends_within(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static bool is_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr(".-_:%", c) != NULL;
}

static void parse(const char *uri, const char *env, struct outcome *o)
{
    memset(o, 0xa5, sizeof(*o)); /* what the parser does not write shows */
    o->rc = endpoint_parse(uri, env, &o->ep, &o->err);
}

/* The checks every parse passes. */
static void check_outcome(const struct outcome *o)
{
    const struct endpoint *ep = &o->ep;
    CHECK(o->rc == 0 || o->rc == -EINVAL);
    CHECK(ends_within(ep->host, sizeof(ep->host)) && ends_within(ep->user, sizeof(ep->user)));
    CHECK(ends_within(ep->password, sizeof(ep->password)));
    CHECK(ends_within(ep->name, sizeof(ep->name)));
    if (o->rc != 0) {
        struct endpoint zero;
        memset(&zero, 0, sizeof(zero));
        zero.db = -1;
        CHECK(memcmp(ep, &zero, sizeof(zero)) == 0);
        CHECK(o->err.code == RS_E_FORMAT);
        CHECK(ends_within(o->err.msg, sizeof(o->err.msg)) && o->err.msg[0] != '\0');
        CHECK(is_printable(o->err.msg));
        return;
    }
    CHECK(ep->host[0] != '\0');
    for (const char *c = ep->host; *c != '\0'; c++)
        CHECK(is_host_char(*c));
    CHECK(ep->port >= 1 && ep->port <= 65535);
    CHECK(ep->db >= -1);
    CHECK(ep->has_password == (ep->password[0] != '\0'));
    CHECK(ep->user[0] == '\0' || ep->has_password);
    char name[sizeof(ep->name)];
    snprintf(name, sizeof(name), strchr(ep->host, ':') != NULL ? "[%s]:%d" : "%s:%d", ep->host,
             ep->port);
    CHECK(strcmp(ep->name, name) == 0);
}

/* "redis://<name>[/db]" reads back as the same place. */
static void check_round_trip(const struct endpoint *ep)
{
    char uri[sizeof(ep->name) + 32];
    int n = snprintf(uri, sizeof(uri), "redis://%s", ep->name);
    if (ep->db >= 0)
        snprintf(uri + n, sizeof(uri) - (size_t)n, "/%d", ep->db);
    struct outcome back;
    parse(uri, NULL, &back);
    check_outcome(&back);
    CHECK(back.rc == 0);
    CHECK(strcmp(back.ep.host, ep->host) == 0 && back.ep.port == ep->port);
    CHECK(back.ep.db == ep->db && strcmp(back.ep.name, ep->name) == 0);
    CHECK(back.ep.user[0] == '\0' && !back.ep.has_password);
}

/* Where the URI's password is, as endpoint.h defines the URI: after an
 * optional scheme ("<letter><letters, digits, + - .>://"), the user part
 * runs to the last '@' and its password from its first ':' on. Returns false
 * when there is no password (or it is empty). */
static bool find_password(const char *uri, size_t *from, size_t *to)
{
    size_t s = 0;
    if ((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z')) {
        size_t i = 1;
        while ((uri[i] >= 'a' && uri[i] <= 'z') || (uri[i] >= 'A' && uri[i] <= 'Z') ||
               (uri[i] >= '0' && uri[i] <= '9') || uri[i] == '+' || uri[i] == '-' || uri[i] == '.')
            i++;
        if (strncmp(uri + i, "://", 3) == 0)
            s = i + 3;
    }
    const char *at = strrchr(uri + s, '@');
    if (at == NULL)
        return false;
    const char *colon = memchr(uri + s, ':', (size_t)(at - (uri + s)));
    if (colon == NULL || colon + 1 == at)
        return false;
    *from = (size_t)(colon + 1 - uri);
    *to = (size_t)(at - uri);
    return true;
}

/* Every byte of s[from, to) turned into another byte that is no escape. */
static void change_bytes(char *s, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        s[i] = s[i] == 'x' ? 'y' : 'x';
}

/* Two parses that differ only in the password agree on everything else. */
static void check_same_but_password(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->rc == b->rc);
    CHECK(a->err.code == b->err.code || a->rc == 0);
    CHECK(a->rc == 0 || strcmp(a->err.msg, b->err.msg) == 0);
    CHECK(strcmp(a->ep.host, b->ep.host) == 0 && a->ep.port == b->ep.port);
    CHECK(strcmp(a->ep.user, b->ep.user) == 0 && a->ep.db == b->ep.db);
    CHECK(strcmp(a->ep.name, b->ep.name) == 0);
    CHECK(a->ep.has_password == b->ep.has_password);
    CHECK(strlen(a->ep.password) == strlen(b->ep.password));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    const char *rest = (const char *)data + 1;
    size_t left = size - 1;
    const char *nul = memchr(rest, '\0', left);
    size_t uri_len = nul != NULL ? (size_t)(nul - rest) : left;
    size_t env_from = nul != NULL ? uri_len + 1 : left;
    const char *env_nul = memchr(rest + env_from, '\0', left - env_from);
    size_t env_len = env_nul != NULL ? (size_t)(env_nul - (rest + env_from)) : left - env_from;

    /* Exactly the string and its NUL: reading past it is an ASan report. */
    char *uri = malloc(uri_len + 1);
    char *env_value = malloc(env_len + 1);
    CHECK(uri != NULL && env_value != NULL);
    memcpy(uri, rest, uri_len);
    uri[uri_len] = '\0';
    memcpy(env_value, rest + env_from, env_len);
    env_value[env_len] = '\0';

    const char *env = flags & 1 ? PASSWORD_ENV : NULL;
    if (flags & 2)
        set_password_env(env_value, env_len);
    else
        CHECK(unsetenv(PASSWORD_ENV) == 0);

    struct outcome o;
    parse(uri, env, &o);
    check_outcome(&o);
    if (o.rc == 0)
        check_round_trip(&o.ep);

    size_t from, to;
    if (find_password(uri, &from, &to) && memchr(uri + from, '%', to - from) == NULL) {
        struct outcome other;
        char *changed = strdup(uri);
        CHECK(changed != NULL);
        change_bytes(changed, from, to);
        parse(changed, env, &other);
        check_outcome(&other);
        check_same_but_password(&o, &other);
        CHECK(o.rc != 0 || strcmp(o.ep.password, other.ep.password) != 0);
        free(changed);
    }
    if ((flags & 3) == 3 && env_len > 0) {
        struct outcome other;
        change_bytes(env_value, 0, env_len);
        set_password_env(env_value, env_len);
        parse(uri, env, &other);
        check_outcome(&other);
        check_same_but_password(&o, &other);
    }
    free(uri);
    free(env_value);
    return 0;
}
