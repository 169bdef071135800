/* endpoint.h - where a Redis server is and how to log in to it.
 *
 * An endpoint is parsed from a URI given on the command line or in a config
 * file:
 *
 *     redis://[user[:password]@]host[:port][/db]
 *     [user[:password]@]host[:port][/db]          (the scheme may be left out)
 *     redis://[::1]:6379                          (an IPv6 address in brackets)
 *
 * The password may instead come from an environment variable (for example
 * RINGSYNC_SOURCE_PASSWORD), so that it stays out of `ps` and shell history.
 *
 * The password is a secret: it is never copied into ep->name nor into an
 * error message; only the connection's AUTH command carries it.
 */
#ifndef RS_ENDPOINT_H
#define RS_ENDPOINT_H

#include <stdbool.h>

#include "rs_error.h"

#define ENDPOINT_DEFAULT_PORT 6379

/* A plain value: copy it freely (it holds the password: do not log it). */
struct endpoint {
    char host[256];     /* a name, an IPv4 address, or an IPv6 address without brackets */
    int port;           /* 1..65535 */
    char user[128];     /* the ACL user; "" for the default user */
    char password[512]; /* percent-decoded; meaningful only when has_password */
    bool has_password;
    int db;         /* the /db of the URI, -1 when none was given */
    char name[300]; /* "host:port" ("[::1]:6379" for IPv6) for messages, never the password */
};

/* Parses uri into ep, which is fully overwritten (zeroed first, even on
 * failure).
 *
 * Accepts the forms above. The scheme, when present, must be redis://
 * (rediss:// is refused: no TLS). User and password are percent-decoded
 * (%40 is '@'; a raw '@' in the password also works: the last '@' ends the
 * user part). The port defaults to ENDPOINT_DEFAULT_PORT when left out and
 * must be 1..65535; the db, when given, is a non-negative decimal integer.
 * An empty password (`redis://user:@host`) counts as none.
 *
 * When the URI holds no password and password_env (may be NULL) names an
 * environment variable that is set and not empty, its value is the password.
 * A user given with no password from either place is an error (Redis has no
 * AUTH without a password).
 *
 * Returns 0, or -EINVAL with err (may be NULL) set to RS_E_FORMAT and a
 * message naming the part that is wrong: "endpoint 'redis://h:99999': port
 * '99999' is not a number from 1 to 65535". The message quotes the URI with
 * its user and password cut out, and never the password itself.
 * Any thread may call it (it reads the environment). */
int endpoint_parse(const char *uri, const char *password_env, struct endpoint *ep,
                   struct rs_error *err);

#endif
