/* proxy_commands.h - what a proxy of nutcracker's kind (twemproxy 0.5)
 * runs, and the form ringsync gives everything else (src/PROXY_DESTINATION.md
 * §1 and §4):
 *
 *   proxy_form_of(argv)
 *     PROXY_AS_IS    in the allow-list, name and shape: sent as it came
 *     PROXY_WRAP     has a key, but the proxy would close the connection
 *                    (XADD, RENAME, EXPIRE ... NX, PEXPIRETIME ...):
 *                    EVAL "return redis.call(unpack(ARGV))" 1 <key> <argv>
 *     PROXY_NO_FORM  no key to route it by (FLUSHALL, FUNCTION, SCRIPT ...)
 *
 * A proxy of this kind answers a command it does not know by closing the
 * connection, losing every reply in flight: nothing outside the list may
 * ever reach it (invariant 1 of the note). The list was probed against
 * nutcracker 0.5.0, a command per connection (PROXY_DESTINATION.md §1).
 *
 * Where keys land: the proxy hashes a key's tag when it has one
 * (--proxy-hash-tag "{}", the same rule as Redis Cluster's) and the whole
 * key otherwise; two keys share a server for sure only when those parts are
 * equal (proxy_same_server).
 *
 * Threads: any; everything here is pure.
 */
#ifndef RS_PROXY_COMMANDS_H
#define RS_PROXY_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

enum proxy_form {
    PROXY_AS_IS = 0,
    PROXY_WRAP,
    PROXY_NO_FORM,
};

/* Arguments a wrapped command adds in front: EVAL, the script, 1, the key. */
#define PROXY_WRAP_EXTRA    4
/* Lua's unpack() takes about 8,000 values (7,998 ran, 8,002 did not): a
 * command with more arguments has no wrapped form. */
#define PROXY_WRAP_MAX_ARGC 7900

/* How command argv[0..argc) (argc >= 1) goes through the proxy. A command
 * whose name the table does not hold is PROXY_WRAP when it has a key
 * (key_index >= 1), else PROXY_NO_FORM. */
enum proxy_form proxy_form_of(int argc, const struct rs_slice *argv, int key_index);

/* Writes the wrapped form of argv into out (room for argc +
 * PROXY_WRAP_EXTRA slices), routed by argv[key_index]; the slices point into
 * argv and a static script. Returns the new argc, or -1 when argc is past
 * PROXY_WRAP_MAX_ARGC. */
int proxy_wrap(int argc, const struct rs_slice *argv, int key_index, struct rs_slice *out);

/* The part of key the proxy hashes: the tag's inside when tag is true and
 * the key has a non-empty one ({...}), else the whole key. */
struct rs_slice proxy_hash_part(struct rs_slice key, bool tag);

/* True when the proxy puts keys a and b on one server whatever its server
 * list: their hashed parts are equal. */
bool proxy_same_server(struct rs_slice a, struct rs_slice b, bool tag);

#endif
