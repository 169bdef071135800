/* test_proxy_fixture.c - the proxy destination fixture stands: nutcracker in
 * front of 2 or 3 servers is usable once started, a load of every type
 * nutcracker passes (streams it refuses) written through it equals the same
 * load written to a standalone oracle, the comparison catches a changed
 * value, a key on the wrong server and a key on two, a hash tag co-locates
 * its keys, and no nutcracker outlives its test.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "proxy_fixture.h"

TestSuite(proxy_fixture, .fini = redis_fixture_stop_all, .timeout = 120);

#define LOAD_STRINGS 200
#define LOAD_OTHERS  40 /* per type */
#define LOAD_TAGS    10 /* with a hash tag: keys {g0}.. {g9} share a server per tag */

/* A hashed key name (names differing only at the end land together under
 * fnv1a_64 + ketama); with a tag, one key in four is under tag {g<i % 10>}. */
static const char *key_name(char *buf, size_t cap, const char *type, unsigned i, bool tagged)
{
    uint64_t x = ((uint64_t)i << 8 | (uint64_t)(unsigned char)type[0]) + 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    if (tagged && i % 4 == 0)
        snprintf(buf, cap, "{g%u}%s:%016llx", i % LOAD_TAGS, type, (unsigned long long)x);
    else
        snprintf(buf, cap, "%s:%016llx", type, (unsigned long long)x);
    return buf;
}

/* Writes strings (with and without expiry, INCR, APPEND), lists, sets,
 * zsets and hashes through the proxy and to the oracle; returns the number
 * of keys. Expiries are absolute (PXAT, PEXPIREAT): both sides get the
 * same one. */
static size_t write_every_type(struct proxy_fixture_writer *w, bool tagged)
{
    long long at = fixture_now_ms() + 3600 * 1000;
    char k[64];
    size_t keys = 0;
    for (unsigned i = 0; i < LOAD_STRINGS; i++, keys++) {
        key_name(k, sizeof(k), "s", i, tagged);
        if (i % 3 == 0)
            proxy_fixture_write(w, "SET %s v%u PXAT %lld", k, i, at + i);
        else if (i % 3 == 1)
            proxy_fixture_write(w, "SET %s %b", k, "bin\0\xff", (size_t)5);
        else
            proxy_fixture_write(w, "INCRBY %s %u", k, i);
        if (i % 10 == 0)
            proxy_fixture_write(w, "APPEND %s -more", k);
    }
    for (unsigned i = 0; i < LOAD_OTHERS; i++, keys += 4) {
        key_name(k, sizeof(k), "l", i, tagged);
        proxy_fixture_write(w, "RPUSH %s a b c %u", k, i);
        proxy_fixture_write(w, "LPUSH %s first", k);
        if (i % 4 == 0)
            proxy_fixture_write(w, "PEXPIREAT %s %lld", k, at + i);
        key_name(k, sizeof(k), "t", i, tagged);
        proxy_fixture_write(w, "SADD %s x y %u", k, i);
        key_name(k, sizeof(k), "z", i, tagged);
        proxy_fixture_write(w, "ZADD %s 1.5 a -inf b %u c", k, i);
        proxy_fixture_write(w, "ZINCRBY %s 2 a", k);
        key_name(k, sizeof(k), "h", i, tagged);
        proxy_fixture_write(w, "HSET %s f1 v1 f2 %u", k, i);
        if (i % 4 == 1)
            proxy_fixture_write(w, "PEXPIREAT %s %lld", k, at + i);
    }
    proxy_fixture_writer_flush(w);
    return keys;
}

/* Every server holds some of the load (else the comparison would not
 * prove much about placement), and all of it together. */
static void assert_spread(const struct proxy_fixture *pf, size_t keys)
{
    long long total = 0;
    char line[256] = "";
    for (int i = 0; i < pf->nservers; i++) {
        redisReply *r = redis_fixture_command(pf->servers[i]->ctx, "DBSIZE");
        cr_assert(r->integer > 0, "server %d (port %d) holds none of the %zu keys", i,
                  pf->servers[i]->port, keys);
        size_t used = strlen(line);
        snprintf(line + used, sizeof(line) - used, "%s%lld", i ? "/" : "", r->integer);
        total += r->integer;
        freeReplyObject(r);
    }
    cr_assert(total == (long long)keys, "the servers hold %lld keys, %zu written", total, keys);
    cr_log_info("%zu keys over %d servers: %s", keys, pf->nservers, line);
}

/* The whole round: load, equal, the comparison can fail, equal again. */
static void load_compare_and_break(struct proxy_fixture *pf, bool tagged)
{
    static const char *const debug[] = {"--enable-debug-command", "yes", NULL};
    struct redis_fixture_opts oo = {.extra_args = debug};
    struct redis_fixture *oracle = redis_fixture_start(&oo);
    struct proxy_fixture_writer w;
    proxy_fixture_writer_init(&w, pf, oracle);
    size_t keys = write_every_type(&w, tagged);
    proxy_fixture_writer_deinit(&w);
    assert_spread(pf, keys);
    assert_proxy_equals(pf, oracle, "oracle", "the load through the proxy");
    struct proxy_comparison c;
    proxy_compare(pf, oracle, &c);
    cr_assert(c.data.has_key_digests, "the per-key digests were not compared: %s", c.data.digests);
    proxy_comparison_deinit(&c);
    assert_proxy_comparison_catches_a_change(pf, oracle);
    assert_proxy_equals(pf, oracle, "oracle", "after the changes were undone");
    redis_fixture_stop(oracle);
}

Test(proxy_fixture, every_type_through_two_servers_equals_the_oracle)
{
    struct proxy_fixture_opts o = {.servers = 2};
    struct proxy_fixture *pf = proxy_fixture_start(&o);
    load_compare_and_break(pf, false);
    pid_t pid = pf->nutcracker->pid;
    proxy_fixture_stop(pf);
    cr_assert(kill(pid, 0) != 0 && errno == ESRCH, "nutcracker %d still runs after stop", (int)pid);
}

Test(proxy_fixture, every_type_through_two_servers_with_a_hash_tag_equals_the_oracle)
{
    struct proxy_fixture_opts o = {.servers = 2, .hash_tag = "{}"};
    struct proxy_fixture *pf = proxy_fixture_start(&o);
    load_compare_and_break(pf, true);

    /* The tagged strings of the load: one server per tag. */
    int tag_server[LOAD_TAGS];
    for (unsigned g = 0; g < LOAD_TAGS; g++)
        tag_server[g] = -1;
    for (unsigned i = 0; i < LOAD_STRINGS; i += 4) {
        char k[64];
        key_name(k, sizeof(k), "s", i, true);
        int s = proxy_fixture_server_of(pf, k, strlen(k));
        int *want = &tag_server[i % LOAD_TAGS];
        cr_assert(s >= 0, "'%s' is on no server", k);
        cr_assert(*want < 0 || s == *want, "'%s' is on server %d, its tag's other keys on %d", k, s,
                  *want);
        *want = s;
    }
    proxy_fixture_stop(pf);
}

Test(proxy_fixture, a_hash_tag_puts_its_keys_on_one_server)
{
    struct proxy_fixture_opts o = {.servers = 3, .hash_tag = "{}"};
    struct proxy_fixture *pf = proxy_fixture_start(&o);
    redisContext *c = proxy_fixture_connect(pf);
    redis_fixture_exec(c, "SET {t}a 1");
    redis_fixture_exec(c, "SET {t}b 2");
    int sa = proxy_fixture_server_of(pf, "{t}a", 4), sb = proxy_fixture_server_of(pf, "{t}b", 4);
    cr_assert(sa >= 0 && sa == sb, "'{t}a' is on server %d, '{t}b' on %d", sa, sb);

    /* Hashed tags (t0, t1 ... would share a server: fnv1a_64 + ketama put
     * names differing only at the end together): every server gets some. */
    unsigned used = 0;
    for (unsigned t = 0; t < 30; t++) {
        char tag[32], a[48], b[48];
        key_name(tag, sizeof(tag), "g", t, false);
        snprintf(a, sizeof(a), "{%s}a", tag);
        snprintf(b, sizeof(b), "{%s}b", tag);
        redis_fixture_exec(c, "SET %s 1", a);
        redis_fixture_exec(c, "SET %s 2", b);
        sa = proxy_fixture_server_of(pf, a, strlen(a));
        sb = proxy_fixture_server_of(pf, b, strlen(b));
        cr_assert(sa >= 0 && sa == sb, "'%s' is on server %d, '%s' on %d", a, sa, b, sb);
        used |= 1u << sa;
    }
    cr_assert(used == 7u, "30 hashed tags used only the servers of mask 0x%x of 3", used);
    redisFree(c);
    proxy_fixture_stop(pf);
}

Test(proxy_fixture, stop_all_ends_a_leftover_nutcracker)
{
    struct proxy_fixture_opts o = {.servers = 2};
    struct proxy_fixture *pf = proxy_fixture_start(&o);
    pid_t pid = pf->nutcracker->pid;
    redis_fixture_stop_all(); /* what a suite's .fini does after a failed assertion */
    cr_assert(kill(pid, 0) != 0 && errno == ESRCH, "nutcracker %d still runs after stop_all",
              (int)pid);
    free(pf); /* its nutcracker and servers are gone: only the struct is left */
}
