/* proxy_commands.c - nutcracker's allow-list and the EVAL wrapper (see
 * proxy_commands.h). */
#include "proxy_commands.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How a listed name passes. */
enum shape {
    ANY = 0, /* any arguments the server takes */
    ARGC3,   /* exactly "NAME key arg": nutcracker checks the count (EXPIRE k s NX closes) */
};

struct allowed {
    const char *name; /* lower case; the table is sorted by it */
    enum shape shape;
};

/* Writes (and the reads ringsync itself sends) that nutcracker 0.5.0 passed
 * to its server, each probed on a connection of its own
 * (PROXY_DESTINATION.md §1). Multi-key ones are either split by the proxy
 * (DEL, UNLINK, TOUCH, EXISTS, MSET) or routed by their first key (the
 * router sends those only when every key shares that server). */
static const struct allowed allowed[] = {
    {"append", ANY},
    {"copy", ANY},
    {"decr", ANY},
    {"decrby", ANY},
    {"del", ANY},
    {"dump", ANY},
    {"eval", ANY}, /* numkeys >= 1: see proxy_form_of */
    {"evalsha", ANY},
    {"exists", ANY},
    {"expire", ARGC3},
    {"expireat", ARGC3},
    {"geoadd", ANY},
    {"georadius", ANY},
    {"georadiusbymember", ANY},
    {"geosearchstore", ANY},
    {"get", ANY},
    {"getdel", ANY},
    {"getex", ANY},
    {"getset", ANY},
    {"hdel", ANY},
    {"hincrby", ANY},
    {"hincrbyfloat", ANY},
    {"hmset", ANY},
    {"hset", ANY},
    {"hsetnx", ANY},
    {"incr", ANY},
    {"incrby", ANY},
    {"incrbyfloat", ANY},
    {"linsert", ANY},
    {"lmove", ANY},
    {"lpop", ANY},
    {"lpush", ANY},
    {"lpushx", ANY},
    {"lrem", ANY},
    {"lset", ANY},
    {"ltrim", ANY},
    {"mset", ANY},
    {"persist", ANY},
    {"pexpire", ARGC3},
    {"pexpireat", ARGC3},
    {"pfadd", ANY},
    {"pfmerge", ANY},
    {"ping", ANY},
    {"psetex", ANY},
    {"pttl", ANY},
    {"restore", ANY},
    {"rpop", ANY},
    {"rpoplpush", ANY},
    {"rpush", ANY},
    {"rpushx", ANY},
    {"sadd", ANY},
    {"sdiffstore", ANY},
    {"set", ANY},
    {"setbit", ANY},
    {"setex", ANY},
    {"setnx", ANY},
    {"setrange", ANY},
    {"sinterstore", ANY},
    {"smove", ANY},
    {"sort", ANY},
    {"spop", ANY},
    {"srem", ANY},
    {"sunionstore", ANY},
    {"touch", ANY},
    {"unlink", ANY},
    {"zadd", ANY},
    {"zdiffstore", ANY},
    {"zincrby", ANY},
    {"zinterstore", ANY},
    {"zpopmax", ANY},
    {"zpopmin", ANY},
    {"zrangestore", ANY},
    {"zrem", ANY},
    {"zremrangebylex", ANY},
    {"zremrangebyrank", ANY},
    {"zremrangebyscore", ANY},
    {"zunionstore", ANY},
};

static int by_name(const void *key, const void *elem)
{
    const struct rs_slice *n = key;
    const char *e = ((const struct allowed *)elem)->name;
    size_t el = strlen(e);
    int c = strncasecmp(n->p, e, n->len < el ? n->len : el);
    if (c != 0)
        return c;
    return n->len < el ? -1 : n->len > el;
}

enum proxy_form proxy_form_of(int argc, const struct rs_slice *argv, int key_index)
{
    const struct allowed *a = bsearch(&argv[0], allowed, sizeof(allowed) / sizeof(allowed[0]),
                                      sizeof(allowed[0]), by_name);
    bool as_is = a != NULL && (a->shape == ANY || argc == 3);
    /* EVAL and EVALSHA pass with a key to route them by, not without */
    if (as_is && argv[0].len >= 4 && (argv[0].p[0] | 0x20) == 'e' && (argv[0].p[1] | 0x20) == 'v')
        as_is = argc >= 4 && !(argv[2].len == 1 && argv[2].p[0] == '0');
    if (as_is)
        return PROXY_AS_IS;
    return key_index >= 1 && key_index < argc ? PROXY_WRAP : PROXY_NO_FORM;
}

static const char wrap_script[] = "return redis.call(unpack(ARGV))";

int proxy_wrap(int argc, const struct rs_slice *argv, int key_index, struct rs_slice *out)
{
    if (argc > PROXY_WRAP_MAX_ARGC || key_index < 1 || key_index >= argc)
        return -1;
    out[0] = (struct rs_slice){"EVAL", 4};
    out[1] = (struct rs_slice){wrap_script, sizeof(wrap_script) - 1};
    out[2] = (struct rs_slice){"1", 1};
    out[3] = argv[key_index];
    memcpy(out + PROXY_WRAP_EXTRA, argv, (size_t)argc * sizeof(*argv));
    return argc + PROXY_WRAP_EXTRA;
}

struct rs_slice proxy_hash_part(struct rs_slice key, bool tag)
{
    if (!tag)
        return key;
    const char *open = memchr(key.p, '{', key.len);
    if (open == NULL)
        return key;
    size_t from = (size_t)(open - key.p) + 1;
    const char *close = memchr(open + 1, '}', key.len - from);
    if (close == NULL || close == open + 1)
        return key;
    return (struct rs_slice){open + 1, (size_t)(close - open - 1)};
}

bool proxy_same_server(struct rs_slice a, struct rs_slice b, bool tag)
{
    struct rs_slice x = proxy_hash_part(a, tag), y = proxy_hash_part(b, tag);
    return x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
}
