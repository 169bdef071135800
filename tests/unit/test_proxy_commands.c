/* test_proxy_commands.c - nutcracker's allow-list and the EVAL wrapper:
 * what passes as it came (with its shape), what goes wrapped and what has
 * no form; the wrapped form byte for byte; which keys a proxy hashes alike. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "batch.h"
#include "proxy_commands.h"

static int split(char *line, struct rs_slice *argv)
{
    int argc = 0;
    for (char *t = strtok(line, " "); t != NULL; t = strtok(NULL, " "))
        argv[argc++] = (struct rs_slice){t, strlen(t)};
    return argc;
}

static enum proxy_form form(const char *text, int key)
{
    char line[256];
    struct rs_slice argv[32];
    snprintf(line, sizeof(line), "%s", text);
    return proxy_form_of(split(line, argv), argv, key);
}

Test(proxy_commands, what_nutcracker_ran_passes_as_it_came)
{
    static const char *const as_is[] = {
        "SET k v PXAT 1",  "set k v",          "MSET a 1 b 2",      "DEL a b",
        "EXPIRE k 10",     "PEXPIREAT k 99",   "LPOP l 2",          "RESTORE k 0 x REPLACE",
        "HSET h a 1",      "ZADD z GT CH 1 a", "EVAL s 1 k",        "SMOVE a b m",
        "GETEX k PERSIST", "SETRANGE k 0 x",   "SUNIONSTORE d a b", "GEORADIUS g 1 2 3 km STORE x",
    };
    for (size_t i = 0; i < sizeof(as_is) / sizeof(as_is[0]); i++)
        cr_expect_eq(form(as_is[i], 1), PROXY_AS_IS, "%s", as_is[i]);
}

Test(proxy_commands, what_it_refuses_is_wrapped_when_it_has_a_key)
{
    static const char *const wrapped[] = {
        "XADD x * a 1",      "XGROUP CREATE x g $", "RENAME a b", "RENAMENX a b",
        "EXPIRE k 10 NX", /* nutcracker checks the argument count */
        "PEXPIREAT k 99 GT", "BITOP AND d a b",     "MSETNX a 1", "PEXPIRETIME k",
        "EVAL s 0", /* no key to route it by: not as it came */
    };
    for (size_t i = 0; i < sizeof(wrapped) / sizeof(wrapped[0]); i++)
        cr_expect_eq(form(wrapped[i], 1), PROXY_WRAP, "%s", wrapped[i]);
    cr_expect_eq(form("FLUSHALL", 0), PROXY_NO_FORM);
    cr_expect_eq(form("FUNCTION LOAD x", 0), PROXY_NO_FORM);
    cr_expect_eq(form("SWAPDB 0 1", 0), PROXY_NO_FORM);
}

Test(proxy_commands, the_wrapped_form_is_eval_of_the_same_arguments_routed_by_the_key)
{
    char line[] = "XGROUP CREATE x:1 g $";
    struct rs_slice argv[8], out[8 + PROXY_WRAP_EXTRA];
    int argc = split(line, argv);
    int n = proxy_wrap(argc, argv, 2, out);
    cr_assert_eq(n, argc + PROXY_WRAP_EXTRA);
    char buf[256];
    size_t len = resp_argv_size(n, out);
    cr_assert_lt(len, sizeof(buf));
    resp_put_argv(buf, n, out);
    static const char want[] = "*9\r\n$4\r\nEVAL\r\n$31\r\nreturn redis.call(unpack(ARGV))\r\n"
                               "$1\r\n1\r\n$3\r\nx:1\r\n$6\r\nXGROUP\r\n$6\r\nCREATE\r\n"
                               "$3\r\nx:1\r\n$1\r\ng\r\n$1\r\n$\r\n";
    cr_assert_eq(len, sizeof(want) - 1);
    cr_assert(memcmp(buf, want, len) == 0, "%.*s", (int)len, buf);
    struct rs_slice many[PROXY_WRAP_MAX_ARGC + 1];
    for (int i = 0; i < PROXY_WRAP_MAX_ARGC + 1; i++)
        many[i] = (struct rs_slice){"a", 1};
    cr_assert_eq(proxy_wrap(PROXY_WRAP_MAX_ARGC + 1, many, 1, NULL), -1,
                 "past Lua's unpack() limit there is no wrapped form");
}

static bool same(const char *a, const char *b, bool tag)
{
    return proxy_same_server((struct rs_slice){a, strlen(a)}, (struct rs_slice){b, strlen(b)}, tag);
}

Test(proxy_commands, keys_share_a_server_by_their_tag_only_with_the_tag_on)
{
    cr_expect(same("{u1}a", "{u1}b", true));
    cr_expect(same("x{u1}", "{u1}y", true));
    cr_expect(!same("{u1}a", "{u1}b", false), "without hash_tag the whole key is hashed");
    cr_expect(!same("{}a", "{}b", true), "an empty tag hashes the whole key");
    cr_expect(!same("{u1}a", "{u2}a", true));
    cr_expect(same("k", "k", false));
    cr_expect(same("{u1", "{u1", true), "no closing brace: the whole key");
    cr_expect(!same("{u1", "{u1}", true));
}
