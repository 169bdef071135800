/* command_table.c - commands of the replication stream and their keys. */
#include "command_table.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Private to this file (callers test only the flags of command_table.h): keys
 * that follow a keyword, found by scanning the arguments the way Redis's own
 * getkeys functions do (db.c: sortGetKeys, georadiusGetKeys). */
#define CMD_SORT_STORE (1u << 14) /* SORT: also the argument after the last STORE */
#define CMD_GEO_STORE  (1u << 15) /* GEORADIUS*: also the argument after each STORE/STOREDIST */

#define COMMAND_NAME_MAX 24 /* longer than any command name ("georadiusbymember": 17) */

#define K1   1, 1, 1 /* one key, the first argument */
#define K12  1, 2, 1 /* two keys: source and destination */
#define KALL 1, -1, 1

static const struct command_spec table[] = {
    /* replication-only frames and connection state */
    {"ping", CMD_SKIP, 0, 0, 0, 0},
    {"replconf", CMD_SKIP | CMD_REPLCONF, 0, 0, 0, 0},
    {"select", CMD_SELECT, 0, 0, 0, 0},
    {"multi", CMD_MULTI, 0, 0, 0, 0},
    {"exec", CMD_EXEC, 0, 0, 0, 0},
    {"publish", CMD_PUBLISH, 0, 0, 0, 0},
    {"spublish", CMD_PUBLISH, 0, 0, 0, 0},
    /* whole-server or several databases */
    {"flushall", CMD_FENCE | CMD_EVERY_NODE, 0, 0, 0, 0},
    {"flushdb", CMD_FENCE | CMD_EVERY_NODE, 0, 0, 0, 0},
    {"swapdb", CMD_FENCE, 0, 0, 0, 0},
    {"move", CMD_FENCE, K1, 0},
    {"function", CMD_FENCE | CMD_EVERY_NODE, 0, 0, 0, 0},
    {"script", CMD_FENCE | CMD_EVERY_NODE, 0, 0, 0, 0},
    /* strings */
    {"set", CMD_RW(CMD_RW_SET) | CMD_ABSOLUTE, K1, 0},
    {"setex", CMD_RW(CMD_RW_ARG2_S), K1, 0},
    {"psetex", CMD_RW(CMD_RW_ARG2_MS), K1, 0},
    {"setnx", 0, K1, 0},
    {"setrange", CMD_ABSOLUTE, K1, 0},
    {"append", 0, K1, 0},
    {"getset", 0, K1, 0},
    {"getdel", 0, K1, 0},
    {"getex", CMD_RW(CMD_RW_GETEX), K1, 0},
    {"incr", 0, K1, 0},
    {"decr", 0, K1, 0},
    {"incrby", 0, K1, 0},
    {"decrby", 0, K1, 0},
    {"incrbyfloat", 0, K1, 0},
    {"mset", CMD_SPLIT | CMD_ABSOLUTE, 1, -1, 2, 0},
    {"msetnx", CMD_SPLIT_AS_MSET, 1, -1, 2, 0},
    {"setbit", CMD_ABSOLUTE, K1, 0},
    {"bitfield", 0, K1, 0},
    {"bitop", 0, 2, -1, 1, 0},
    /* keys */
    {"del", CMD_SPLIT | CMD_ABSOLUTE, KALL, 0},
    {"unlink", CMD_SPLIT | CMD_ABSOLUTE, KALL, 0},
    {"touch", CMD_SPLIT | CMD_ABSOLUTE, KALL, 0},
    {"expire", CMD_RW(CMD_RW_ARG2_S), K1, 0},
    {"pexpire", CMD_RW(CMD_RW_ARG2_MS), K1, 0},
    {"expireat", CMD_RW(CMD_RW_ARG2_S) | CMD_ABSOLUTE, K1, 0},
    {"pexpireat", CMD_RW(CMD_RW_ARG2_MS) | CMD_ABSOLUTE, K1, 0},
    {"persist", CMD_ABSOLUTE, K1, 0},
    {"rename", 0, K12, 0},
    {"renamenx", 0, K12, 0},
    {"copy", 0, K12, 0},
    {"restore", CMD_RW(CMD_RW_RESTORE), K1, 0},
    {"restore-asking", CMD_RW(CMD_RW_RESTORE), K1, 0},
    {"sort", CMD_SORT_STORE, K1, 0},
    /* lists */
    {"lpush", 0, K1, 0},
    {"rpush", 0, K1, 0},
    {"lpushx", 0, K1, 0},
    {"rpushx", 0, K1, 0},
    {"lpop", 0, K1, 0},
    {"rpop", 0, K1, 0},
    {"linsert", 0, K1, 0},
    {"lset", 0, K1, 0},
    {"lrem", 0, K1, 0},
    {"ltrim", 0, K1, 0},
    {"rpoplpush", 0, K12, 0},
    {"lmove", 0, K12, 0},
    {"brpoplpush", 0, K12, 0},
    {"blmove", 0, K12, 0},
    {"lmpop", CMD_NUMKEYS, 0, 0, 0, 1},
    {"blpop", 0, 1, -2, 1, 0},
    {"brpop", 0, 1, -2, 1, 0},
    /* sets */
    {"sadd", CMD_ABSOLUTE, K1, 0},
    {"srem", CMD_ABSOLUTE, K1, 0},
    {"spop", 0, K1, 0},
    {"smove", 0, K12, 0},
    {"sinterstore", 0, KALL, 0},
    {"sunionstore", 0, KALL, 0},
    {"sdiffstore", 0, KALL, 0},
    /* sorted sets */
    {"zadd", CMD_ABSOLUTE, K1, 0},
    {"zincrby", 0, K1, 0},
    {"zrem", CMD_ABSOLUTE, K1, 0},
    {"zremrangebyscore", 0, K1, 0},
    {"zremrangebyrank", 0, K1, 0},
    {"zremrangebylex", 0, K1, 0},
    {"zpopmin", 0, K1, 0},
    {"zpopmax", 0, K1, 0},
    {"zrangestore", 0, K12, 0},
    {"zunionstore", CMD_NUMKEYS | CMD_DEST_FIRST, 0, 0, 0, 2},
    {"zinterstore", CMD_NUMKEYS | CMD_DEST_FIRST, 0, 0, 0, 2},
    {"zdiffstore", CMD_NUMKEYS | CMD_DEST_FIRST, 0, 0, 0, 2},
    {"zmpop", CMD_NUMKEYS, 0, 0, 0, 1},
    {"bzpopmin", 0, 1, -2, 1, 0},
    {"bzpopmax", 0, 1, -2, 1, 0},
    /* hashes */
    {"hset", CMD_ABSOLUTE, K1, 0},
    {"hmset", CMD_ABSOLUTE, K1, 0},
    {"hsetnx", 0, K1, 0},
    {"hdel", CMD_ABSOLUTE, K1, 0},
    {"hincrby", 0, K1, 0},
    {"hincrbyfloat", 0, K1, 0},
    /* hash field expiry (Redis 7.4+; a source propagates HPEXPIREAT, HPERSIST,
     * and HDEL for a field that expired) and Redis 8.0's HSETEX / HGETEX /
     * HGETDEL: one key each, forwarded as they come (field times are not
     * moved by the expiry margin: src/STREAM_FIDELITY.md) */
    {"hexpire", 0, K1, 0},
    {"hpexpire", 0, K1, 0},
    {"hexpireat", 0, K1, 0},
    {"hpexpireat", 0, K1, 0},
    {"hpersist", 0, K1, 0},
    {"hsetex", 0, K1, 0},
    {"hgetex", 0, K1, 0},
    {"hgetdel", 0, K1, 0},
    /* HyperLogLog, geo */
    {"pfadd", CMD_ABSOLUTE, K1, 0},
    {"pfmerge", 0, KALL, 0},
    {"pfcount", 0, KALL, 0},
    {"pfdebug", 0, 2, 2, 1, 0}, /* PFDEBUG TODENSE/GETREG key: verbatim when it converts */
    {"geoadd", CMD_ABSOLUTE, K1, 0},
    {"geosearchstore", 0, K12, 0},
    {"georadius", CMD_GEO_STORE, K1, 0}, /* replicated verbatim with STORE/STOREDIST */
    {"georadiusbymember", CMD_GEO_STORE, K1, 0},
    /* streams */
    {"xadd", CMD_RW(CMD_RW_XADD), K1, 0},
    {"xdel", CMD_ABSOLUTE, K1, 0},
    {"xtrim", CMD_RW(CMD_RW_XTRIM), K1, 0},
    {"xack", 0, K1, 0},
    {"xclaim", 0, K1, 0},
    {"xautoclaim", 0, K1, 0},
    {"xsetid", 0, K1, 0},
    {"xgroup", 0, 2, 2, 1, 0},
    /* scripts and functions (replicated verbatim only on old or configured servers) */
    {"eval", CMD_NUMKEYS, 0, 0, 0, 2},
    {"evalsha", CMD_NUMKEYS, 0, 0, 0, 2},
    {"eval_ro", CMD_NUMKEYS, 0, 0, 0, 2},
    {"evalsha_ro", CMD_NUMKEYS, 0, 0, 0, 2},
    {"fcall", CMD_NUMKEYS, 0, 0, 0, 2},
    {"fcall_ro", CMD_NUMKEYS, 0, 0, 0, 2},
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

const struct command_spec *command_table_all(size_t *n)
{
    *n = TABLE_LEN;
    return table;
}

/* A name's bucket: its length and first letter. */
static inline unsigned bucket(const char *name, size_t len)
{
    return (unsigned)((len & 15) << 5 | ((unsigned char)name[0] | 0x20) % 32);
}

#define NO_NEXT 0xffff

_Static_assert(TABLE_LEN < NO_NEXT && TABLE_LEN < INT16_MAX, "table indices fit the buckets");

static int16_t first_in_bucket[512];
static uint16_t next_in_bucket[TABLE_LEN];
static uint8_t name_len[TABLE_LEN];
static int table_ready; /* set once, by the first lookup; benign if two threads race */

static void table_init(void)
{
    memset(first_in_bucket, -1, sizeof(first_in_bucket));
    for (int i = (int)TABLE_LEN - 1; i >= 0; i--) {
        name_len[i] = (uint8_t)strlen(table[i].name);
        unsigned b = bucket(table[i].name, name_len[i]);
        next_in_bucket[i] = (uint16_t)(first_in_bucket[b] < 0 ? NO_NEXT : first_in_bucket[b]);
        first_in_bucket[b] = (int16_t)i;
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

bool command_is_absolute(const struct command_spec *spec, int argc, const struct rs_slice *argv)
{
    if (spec == NULL || !(spec->flags & CMD_ABSOLUTE))
        return false;
    if (spec->name[0] != 'z')
        return true;
    /* ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member ...: flags first */
    for (int i = 2; i < argc && argv[i].len <= 4; i++) {
        const char *a = argv[i].p;
        if (argv[i].len == 4 && strncasecmp(a, "incr", 4) == 0)
            return false;
        bool flag =
            argv[i].len == 2 && (strncasecmp(a, "nx", 2) == 0 || strncasecmp(a, "xx", 2) == 0 ||
                                 strncasecmp(a, "gt", 2) == 0 || strncasecmp(a, "lt", 2) == 0 ||
                                 strncasecmp(a, "ch", 2) == 0);
        if (!flag)
            break;
    }
    return true;
}

/* Compares a lower-case name with any-case bytes (ASCII letters, digits, '-', '_'). */
static inline bool same_lower(const char *lower, const char *any, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = any[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        if (c != lower[i])
            return false;
    }
    return true;
}

const struct command_spec *command_lookup(const char *name, size_t len)
{
    if (len == 0 || len > COMMAND_NAME_MAX)
        return NULL;
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE))
        table_init();
    int i = first_in_bucket[bucket(name, len)];
    while (i >= 0) {
        if (name_len[i] == len && same_lower(table[i].name, name, len))
            return &table[i];
        i = next_in_bucket[i] == NO_NEXT ? -1 : next_in_bucket[i];
    }
    return NULL;
}

static bool is_word(const struct rs_slice *arg, const char *lower)
{
    size_t n = strlen(lower);
    return arg->len == n && same_lower(lower, arg->p, n);
}

/* SORT's destination, as sortGetKeys finds it: options are skipped with
 * their arguments (LIMIT 2, GET 1, BY 1), and the last STORE wins, as it
 * does when SORT runs. 0: none. */
static int sort_store_at(int argc, const struct rs_slice *argv)
{
    int at = 0;
    for (int i = 2; i < argc; i++) {
        if (is_word(&argv[i], "limit"))
            i += 2;
        else if (is_word(&argv[i], "get") || is_word(&argv[i], "by"))
            i += 1;
        else if (is_word(&argv[i], "store") && i + 1 < argc)
            at = i + 1;
    }
    return at;
}

bool command_reads_unnamed_keys(const struct command_spec *spec, int argc,
                                const struct rs_slice *argv)
{
    if (!(spec->flags & CMD_SORT_STORE)) /* SORT (SORT_RO is never replicated) */
        return false;
    /* BY and GET take a pattern; one with '*' names keys built from the
     * elements (GET # is the element itself, BY without '*' sorts nothing) */
    for (int i = 2; i + 1 < argc; i++) {
        if (is_word(&argv[i], "limit")) {
            i += 2;
        } else if (is_word(&argv[i], "get") || is_word(&argv[i], "by")) {
            if (memchr(argv[i + 1].p, '*', argv[i + 1].len) != NULL)
                return true;
            i++;
        }
    }
    return false;
}

int command_keys(const struct command_spec *spec, int argc, const struct rs_slice *argv, int *idx,
                 int max)
{
    int n = 0;
    if (spec->flags & CMD_NUMKEYS) {
        if (spec->numkeys_at >= argc)
            return -1;
        char tmp[24];
        size_t l = argv[spec->numkeys_at].len;
        if (l == 0 || l >= sizeof(tmp))
            return -1;
        memcpy(tmp, argv[spec->numkeys_at].p, l);
        tmp[l] = '\0';
        char *end;
        long k = strtol(tmp, &end, 10);
        if (*end || k < 0 || k >= argc - spec->numkeys_at)
            return -1;
        if (spec->flags & CMD_DEST_FIRST && n < max)
            idx[n++] = 1;
        for (long j = 0; j < k && n < max; j++)
            idx[n++] = spec->numkeys_at + 1 + (int)j;
        return n;
    }
    if (spec->first == 0)
        return 0;
    int last = spec->last >= 0 ? spec->last : argc + spec->last;
    if (spec->first >= argc || last >= argc)
        return -1;
    for (int i = spec->first; i <= last && n < max; i += spec->step)
        idx[n++] = i;
    if (spec->flags & CMD_SORT_STORE) {
        int at = sort_store_at(argc, argv);
        if (at > 0 && n < max)
            idx[n++] = at;
    }
    if (spec->flags & CMD_GEO_STORE) {
        /* After the radius and its unit. COMMAND GETKEYS names the first
         * STORE and the first STOREDIST; GEORADIUS writes to the last of
         * them all: every one is a key here, so the key written is one. */
        for (int i = 5; i + 1 < argc; i++)
            if ((is_word(&argv[i], "store") || is_word(&argv[i], "storedist")) && n < max)
                idx[n++] = ++i;
    }
    return n;
}
