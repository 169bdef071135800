/* test_command_table.c - the command table against a real Redis 7.0.
 *
 * Redis is the oracle twice over:
 *
 *  - keys: for every table command that has keys, typical invocations are
 *    given to COMMAND GETKEYS and to command_keys; both must name the same
 *    keys. Table commands without keys are listed here with the reason, and
 *    GETKEYS must agree that they have none (where it can be asked at all).
 *  - coverage: every command Redis flags "write" (subcommands included) is
 *    in the table, or listed here as never appearing in a replication stream
 *    with what the source sends instead; each such claim is checked by
 *    running the command on a primary and watching what its native replica
 *    executes (MONITOR on the replica shows the commands of its master).
 *
 * A deliberate mismatch (a spec that forgets a key) shows the comparison
 * can fail.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command_table.h"
#include "redis_fixture.h"

TestSuite(command_table, .fini = redis_fixture_stop_all, .timeout = 120);

#define MAX_ARGS 64

/* -------------------------------------------------------------- tables */

/* Typical valid invocations of every table command that has keys; words are
 * split at spaces, 'quoted' words may hold spaces. */
static const char *const invocations[] = {
    /* strings */
    "set k v",
    "set k v px 100 nx get",
    "setex k 10 v",
    "psetex k 1000 v",
    "setnx k v",
    "setrange k 0 v",
    "append k v",
    "getset k v",
    "getdel k",
    "getex k px 100",
    "incr k",
    "decr k",
    "incrby k 2",
    "decrby k 2",
    "incrbyfloat k 1.5",
    "mset a 1 b 2 c 3",
    "msetnx a 1 b 2",
    "setbit k 7 1",
    "bitfield k set u8 0 255 incrby u8 0 1",
    "bitop and d a b",
    "bitop not d a",
    /* keys */
    "del a b c",
    "unlink a",
    "touch a b",
    "expire k 10",
    "pexpire k 1000 nx",
    "expireat k 4102444800",
    "pexpireat k 4102444800000",
    "persist k",
    "rename a b",
    "renamenx a b",
    "copy a b db 1 replace",
    "move k 1",
    "restore k 0 payload replace absttl",
    "restore-asking k 0 payload",
    "sort k",
    "sort k store d",
    "sort k limit 0 1 get # by w_* desc alpha store d",
    "sort k store d1 store d2",
    "sort k get store",
    /* lists */
    "lpush l a b",
    "rpush l a b",
    "lpushx l a",
    "rpushx l a",
    "lpop l 2",
    "rpop l",
    "linsert l before a b",
    "lset l 0 v",
    "lrem l 0 v",
    "ltrim l 0 1",
    "rpoplpush a b",
    "lmove a b left right",
    "brpoplpush a b 0",
    "blmove a b left right 0",
    "lmpop 2 a b left count 2",
    "blpop a b 0",
    "brpop a 0",
    /* sets */
    "sadd s a b",
    "srem s a",
    "spop s 2",
    "smove a b m",
    "sinterstore d a b",
    "sunionstore d a b c",
    "sdiffstore d a",
    /* sorted sets */
    "zadd z 1 a 2 b",
    "zadd z xx gt ch incr 1 a",
    "zincrby z 1 a",
    "zrem z a b",
    "zremrangebyscore z 0 1",
    "zremrangebyrank z 0 1",
    "zremrangebylex z [a [b",
    "zpopmin z 2",
    "zpopmax z",
    "zrangestore d z 0 -1",
    "zrangestore d z (1 5 byscore rev limit 0 2",
    "zunionstore d 2 a b weights 1 2 aggregate max",
    "zinterstore d 3 a b c",
    "zdiffstore d 2 a b",
    "zmpop 2 a b min count 2",
    "bzpopmin a b 0",
    "bzpopmax a 0",
    /* hashes */
    "hset h f v f2 v2",
    "hmset h f v",
    "hsetnx h f v",
    "hdel h f g",
    "hincrby h f 1",
    "hincrbyfloat h f 1.5",
    /* HyperLogLog, geo */
    "pfadd hll a b",
    "pfadd hll",
    "pfmerge d a b",
    "pfcount a b",
    "pfdebug todense hll",
    "geoadd g 13.361389 38.115556 Palermo",
    "geosearchstore d g fromlonlat 15 37 byradius 200 km asc storedist",
    "georadius g 15 37 200 km store d",
    "georadius g 15 37 200 km withdist count 2 asc storedist d",
    "georadius g 15 37 200 km store d storedist d2",
    "georadius g 15 37 200 km",
    "georadiusbymember g Palermo 200 km store d",
    "georadiusbymember g Palermo 200 km storedist d",
    /* streams */
    "xadd s * f v",
    "xadd s nomkstream maxlen ~ 100 1-1 f v",
    "xdel s 1-1",
    "xtrim s maxlen 10",
    "xack s g 1-1 1-2",
    "xclaim s g c 0 1-1 justid",
    "xautoclaim s g c 0 0-0 count 10",
    "xsetid s 5-0",
    "xgroup create s g $ mkstream",
    "xgroup setid s g 0",
    "xgroup destroy s g",
    "xgroup createconsumer s g c",
    "xgroup delconsumer s g c",
    /* scripts and functions */
    "eval 'return 1' 2 k1 k2 a1",
    "eval 'return 1' 0",
    "evalsha 6b1bf486c81ceb7edf3c093f4c48582e38c0e791 1 k a",
    "eval_ro 'return 1' 1 k",
    "evalsha_ro 6b1bf486c81ceb7edf3c093f4c48582e38c0e791 2 k1 k2",
    "fcall f 2 k1 k2 a",
    "fcall_ro f 1 k",
};

/* Table commands of Redis versions newer than this machine's server (7.0),
 * one key each (hash field expiry, 7.4; HSETEX/HGETEX/HGETDEL, 8.0): no
 * server here can check their keys or know their names. */
static const char *const newer[] = {"hexpire",  "hpexpire", "hexpireat", "hpexpireat",
                                    "hpersist", "hsetex",   "hgetex",    "hgetdel"};

static bool is_newer(const char *name)
{
    for (size_t j = 0; j < sizeof(newer) / sizeof(newer[0]); j++)
        if (strcmp(name, newer[j]) == 0)
            return true;
    return false;
}

/* Table commands without keys: why, and an invocation for COMMAND GETKEYS,
 * which must say "no key arguments" (NULL: GETKEYS cannot take it). */
struct keyless {
    const char *name;
    const char *why;
    const char *probe;
};

static const struct keyless keyless[] = {
    {"ping", "a replication keepalive, consumed", NULL /* one word: too short for GETKEYS */},
    {"replconf", "REPLCONF GETACK, answered by ringsync", "replconf getack *"},
    {"select", "changes the database of what follows", "select 1"},
    {"multi", "opens a transaction, whose commands carry the keys", NULL /* one word */},
    {"exec", "closes a transaction", NULL /* one word */},
    {"publish", "a channel is not a key; dropped unless --forward-publish", "publish ch m"},
    {"spublish", "a shard channel (Redis marks it not-key); like PUBLISH", "spublish ch m"},
    {"flushall", "every database: a fence", "flushall async"},
    {"flushdb", "a whole database: a fence", "flushdb sync"},
    {"swapdb", "two whole databases: a fence", "swapdb 0 1"},
    {"function", "libraries are server-wide: a fence", "function load 'code'"},
    {"script", "scripts are server-wide: a fence", "script flush"},
};

/* Write commands of Redis 7.0 that are not in the table because a source
 * never replicates them as they are: what it sends instead, checked below by
 * running `run` (after `setup`) and watching the replica execute `becomes`. */
struct never {
    const char *name;
    const char *why;
    const char *setup;   /* commands separated by "; " (NULL: none) */
    const char *run;     /* "PORT": a second server's port */
    const char *becomes; /* the command name the replica executes instead */
};

static const struct never never_replicated[] = {
    {"blmpop", "blocking pop: replicated as LPOP/RPOP key count", "rpush l1 a b",
     "blmpop 0 2 l0 l1 left count 2", "lpop"},
    {"bzmpop", "blocking pop: replicated as ZPOPMIN/ZPOPMAX key count", "zadd z1 1 a 2 b",
     "bzmpop 0 1 z1 min", "zpopmin"},
    {"migrate", "replicated as DEL of the moved keys (nothing with COPY)", "set mk v",
     "migrate 127.0.0.1 PORT mk 0 5000", "del"},
    {"xreadgroup", "replicated as XCLAIM ... LASTID (and XGROUP SETID)",
     "xadd st 1-1 f v; xgroup create st g 0", "xreadgroup group g alice streams st >", "xclaim"},
};

/* ------------------------------------------------------------ helpers */

/* Splits line into words (at spaces; 'quoted' words may hold spaces). */
static int split_words(const char *line, char *buf, size_t cap, const char **argv, size_t *lens)
{
    cr_assert(strlen(line) < cap);
    strcpy(buf, line);
    int argc = 0;
    char *p = buf;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        cr_assert(argc < MAX_ARGS);
        char *w = p;
        if (*p == '\'') {
            w = ++p;
            while (*p && *p != '\'')
                p++;
            cr_assert(*p == '\'', "unclosed quote in %s", line);
        } else {
            while (*p && *p != ' ')
                p++;
        }
        argv[argc] = w;
        lens[argc] = (size_t)(p - w);
        argc++;
        if (*p)
            *p++ = '\0';
    }
    return argc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys as a sorted, space-separated list in out. */
static void key_list(char **keys, int n, char *out, size_t cap)
{
    qsort(keys, (size_t)n, sizeof(*keys), cmp_str);
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(out + at, at < cap ? cap - at : 0, "%s%s", i ? " " : "", keys[i]);
    cr_assert(at < cap);
}

/* What COMMAND GETKEYS says of argv: the sorted keys in out and true, or
 * false with Redis's error in out. */
static bool getkeys(redisContext *c, int argc, const char **argv, const size_t *lens, char *out,
                    size_t cap)
{
    const char *full[MAX_ARGS + 2] = {"command", "getkeys"};
    size_t full_len[MAX_ARGS + 2] = {7, 7};
    for (int i = 0; i < argc; i++) {
        full[2 + i] = argv[i];
        full_len[2 + i] = lens[i];
    }
    redisReply *r = redisCommandArgv(c, argc + 2, full, full_len);
    cr_assert(r != NULL, "COMMAND GETKEYS: %s", c->errstr);
    bool ok = r->type == REDIS_REPLY_ARRAY;
    if (ok) {
        char *keys[MAX_ARGS];
        cr_assert(r->elements <= MAX_ARGS);
        for (size_t i = 0; i < r->elements; i++)
            keys[i] = r->element[i]->str;
        key_list(keys, (int)r->elements, out, cap);
    } else {
        cr_assert(r->type == REDIS_REPLY_ERROR, "COMMAND GETKEYS: reply type %d", r->type);
        snprintf(out, cap, "%s", r->str);
    }
    freeReplyObject(r);
    return ok;
}

/* What command_keys says of argv under spec: the sorted keys, or "malformed". */
static void table_keys(const struct command_spec *spec, int argc, const char **argv,
                       const size_t *lens, char *out, size_t cap)
{
    struct rs_slice a[MAX_ARGS];
    for (int i = 0; i < argc; i++)
        a[i] = (struct rs_slice){argv[i], lens[i]};
    int idx[MAX_ARGS];
    int n = command_keys(spec, argc, a, idx, MAX_ARGS);
    if (n < 0) {
        snprintf(out, cap, "malformed");
        return;
    }
    char *keys[MAX_ARGS];
    char copies[MAX_ARGS][64];
    for (int i = 0; i < n; i++) {
        cr_assert(idx[i] > 0 && idx[i] < argc, "key index %d of %d", idx[i], argc);
        snprintf(copies[i], sizeof(copies[i]), "%.*s", (int)lens[idx[i]], argv[idx[i]]);
        keys[i] = copies[i];
    }
    key_list(keys, n, out, cap);
}

static bool has_keys(const struct command_spec *spec)
{
    return spec->first > 0 || (spec->flags & CMD_NUMKEYS);
}

/* Compares the keys of one invocation; false (and why) when they differ. */
static bool same_keys(redisContext *c, const struct command_spec *spec, const char *line, char *why,
                      size_t cap)
{
    char buf[512], want[512], got[512];
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int argc = split_words(line, buf, sizeof(buf), argv, lens);
    if (!getkeys(c, argc, argv, lens, want, sizeof(want))) {
        if (strstr(want, "no key arguments") == NULL) {
            snprintf(why, cap, "%s: COMMAND GETKEYS fails: %s", line, want);
            return false;
        }
        want[0] = '\0'; /* no keys */
    }
    table_keys(spec, argc, argv, lens, got, sizeof(got));
    if (strcmp(want, got) != 0) {
        snprintf(why, cap, "%s: Redis says [%s], the table [%s]", line, want, got);
        return false;
    }
    return true;
}

static const struct command_spec *lookup(const char *name)
{
    return command_lookup(name, strlen(name));
}

/* ---------------------------------------------------------- the keys */

Test(command_table, every_keyed_command_finds_the_keys_command_getkeys_finds)
{
    struct redis_fixture *f = redis_fixture_start(NULL);
    size_t n;
    const struct command_spec *all = command_table_all(&n);
    int *tried = calloc(n, sizeof(*tried));
    cr_assert(tried != NULL);
    char report[8192] = "";
    size_t at = 0;
    int failures = 0;
    for (size_t i = 0; i < sizeof(invocations) / sizeof(invocations[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(invocations[i], " "), invocations[i]);
        const struct command_spec *spec = lookup(name);
        cr_assert(spec != NULL, "%s: not in the table", name);
        cr_assert(has_keys(spec), "%s: keyless in the table, yet listed with keys", name);
        tried[spec - all]++;
        char why[1024];
        if (!same_keys(f->ctx, spec, invocations[i], why, sizeof(why))) {
            failures++;
            if (at < sizeof(report))
                at += (size_t)snprintf(report + at, sizeof(report) - at, "\n  %s", why);
        }
    }
    cr_expect(failures == 0, "%d invocations disagree with COMMAND GETKEYS:%s", failures, report);

    /* Every keyed command of the table was tried, every keyless one has a reason. */
    for (size_t i = 0; i < n; i++) {
        bool listed = false;
        for (size_t k = 0; k < sizeof(keyless) / sizeof(keyless[0]); k++)
            listed |= strcmp(keyless[k].name, all[i].name) == 0;
        if (is_newer(all[i].name))
            continue;
        if (has_keys(&all[i]))
            cr_expect(tried[i] > 0 && !listed, "%s has keys but no invocation here", all[i].name);
        else
            cr_expect(listed, "%s has no keys in the table and no reason here", all[i].name);
    }
    free(tried);
    redis_fixture_stop(f);
}

Test(command_table, keyless_commands_have_no_keys_for_command_getkeys)
{
    struct redis_fixture *f = redis_fixture_start(NULL);
    for (size_t i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++) {
        const struct command_spec *spec = lookup(keyless[i].name);
        cr_assert(spec != NULL && !has_keys(spec), "%s", keyless[i].name);
        if (keyless[i].probe == NULL)
            continue;
        char why[1024];
        cr_expect(same_keys(f->ctx, spec, keyless[i].probe, why, sizeof(why)), "%s (%s)", why,
                  keyless[i].why);
    }
    redis_fixture_stop(f);
}

Test(command_table, georadius_with_two_stores_writes_the_last_and_the_table_names_it)
{
    /* COMMAND GETKEYS names the first STORE only; Redis writes to the last. */
    struct redis_fixture *f = redis_fixture_start(NULL);
    redis_fixture_exec(f->ctx, "GEOADD g 13.361389 38.115556 Palermo");
    redis_fixture_exec(f->ctx, "GEORADIUS g 15 37 200 km STORE d1 STORE d2");
    redisReply *r = redis_fixture_command(f->ctx, "EXISTS d1 d2");
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    r = redis_fixture_command(f->ctx, "EXISTS d2");
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == 1, "Redis wrote to d1");
    freeReplyObject(r);

    char buf[256], got[256];
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int argc =
        split_words("georadius g 15 37 200 km store d1 store d2", buf, sizeof(buf), argv, lens);
    table_keys(lookup("georadius"), argc, argv, lens, got, sizeof(got));
    cr_assert_str_eq(got, "d1 d2 g");
    redis_fixture_stop(f);
}

Test(command_table, the_comparison_notices_a_forgotten_key)
{
    struct redis_fixture *f = redis_fixture_start(NULL);
    char why[1024];
    const struct command_spec rename_src_only = {"rename", 0, 1, 1, 1, 0};
    cr_assert(!same_keys(f->ctx, &rename_src_only, "rename a b", why, sizeof(why)));
    cr_assert(strstr(why, "Redis says [a b], the table [a]") != NULL, "%s", why);
    const struct command_spec eval_one_off = {"eval", CMD_NUMKEYS, 0, 0, 0, 1};
    cr_assert(!same_keys(f->ctx, &eval_one_off, "eval 'return 1' 2 k1 k2 a1", why, sizeof(why)));
    cr_assert(same_keys(f->ctx, lookup("rename"), "rename a b", why, sizeof(why)), "%s", why);
    redis_fixture_stop(f);
}

/* --------------------------------------------------------- the coverage */

static const struct never *never_entry(const char *name)
{
    for (size_t i = 0; i < sizeof(never_replicated) / sizeof(never_replicated[0]); i++)
        if (strcmp(never_replicated[i].name, name) == 0)
            return &never_replicated[i];
    return NULL;
}

static bool has_flag(const redisReply *flags, const char *flag)
{
    for (size_t i = 0; i < flags->elements; i++)
        if (strcmp(flags->element[i]->str, flag) == 0)
            return true;
    return false;
}

/* Checks one COMMAND entry (and its subcommands): a write command is in the
 * table (a subcommand through its container, "xgroup|create" as "xgroup") or
 * never replicated. Appends what is missing to report. */
static void check_entry(const redisReply *e, char *report, size_t cap, int *missing, int *writes)
{
    cr_assert(e->type == REDIS_REPLY_ARRAY && e->elements >= 10);
    const char *name = e->element[0]->str;
    if (has_flag(e->element[2], "write")) {
        (*writes)++;
        size_t len = strcspn(name, "|");
        const struct command_spec *spec = command_lookup(name, len);
        char base[64];
        snprintf(base, sizeof(base), "%.*s", (int)len, name);
        const struct never *nv = never_entry(base);
        cr_expect(!(spec != NULL && nv != NULL), "%s is in the table and in never_replicated",
                  name);
        if (spec == NULL && nv == NULL) {
            (*missing)++;
            size_t at = strlen(report);
            snprintf(report + at, cap - at, " %s", name);
        }
    }
    const redisReply *subs = e->element[9];
    if (subs->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < subs->elements; i++)
            check_entry(subs->element[i], report, cap, missing, writes);
}

Test(command_table, every_write_command_of_redis_is_in_the_table_or_never_replicated)
{
    struct redis_fixture *f = redis_fixture_start(NULL);
    redisReply *r = redis_fixture_command(f->ctx, "COMMAND");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements > 200);
    char report[4096] = "";
    int missing = 0, writes = 0;
    for (size_t i = 0; i < r->elements; i++)
        check_entry(r->element[i], report, sizeof(report), &missing, &writes);
    freeReplyObject(r);
    cr_expect(writes > 100, "only %d write commands: is this Redis 7?", writes);
    cr_expect(missing == 0, "write commands neither in the table nor never replicated:%s", report);

    /* And every name, in the table or in the lists, is a command Redis knows
     * (but for those of versions newer than the server here). */

    size_t n;
    const struct command_spec *all = command_table_all(&n);
    for (size_t i = 0; i < n; i++) {
        if (is_newer(all[i].name))
            continue; /* Redis 7.4 / 8.0: not on this machine's server */
        r = redis_fixture_command(f->ctx, "COMMAND INFO %s", all[i].name);
        cr_expect(r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                      r->element[0]->type == REDIS_REPLY_ARRAY,
                  "Redis does not know %s", all[i].name);
        freeReplyObject(r);
    }
    for (size_t i = 0; i < sizeof(never_replicated) / sizeof(never_replicated[0]); i++)
        cr_expect(lookup(never_replicated[i].name) == NULL, "%s", never_replicated[i].name);
    redis_fixture_stop(f);
}

/* The command names a replica executes, read from MONITOR on it until the
 * marker key is set: " name name ... " in lower case, in names. */
static void monitored_until_marker(redisContext *mon, char *names, size_t cap)
{
    size_t at = 1;
    names[0] = ' ';
    names[1] = '\0';
    for (;;) {
        redisReply *r;
        cr_assert(redisGetReply(mon, (void **)&r) == REDIS_OK, "MONITOR: %s", mon->errstr);
        cr_assert(r->type == REDIS_REPLY_STATUS);
        /* 1700000000.000000 [0 127.0.0.1:1234] "LPOP" "l1" "2" */
        const char *q = strstr(r->str, "] \"");
        cr_assert(q != NULL, "%s", r->str);
        q += 3;
        size_t len = strcspn(q, "\"");
        bool marker = strstr(r->str, "\"__marker__\"") != NULL;
        if (!marker && at + len + 2 < cap) {
            for (size_t i = 0; i < len; i++)
                names[at + i] = (char)(q[i] | 0x20);
            at += len;
            names[at++] = ' ';
            names[at] = '\0';
        }
        freeReplyObject(r);
        if (marker)
            return;
    }
}

/* Runs the commands of lines (separated by "; "), with PORT replaced by port. */
static void run_lines(redisContext *c, const char *lines, int port)
{
    char line[512];
    while (*lines) {
        size_t len = strcspn(lines, ";");
        const char *p = strstr(lines, "PORT");
        if (p != NULL && (size_t)(p - lines) < len)
            snprintf(line, sizeof(line), "%.*s%d%.*s", (int)(p - lines), lines, port,
                     (int)(len - (size_t)(p - lines) - 4), p + 4);
        else
            snprintf(line, sizeof(line), "%.*s", (int)len, lines);
        char buf[512];
        const char *argv[MAX_ARGS];
        size_t lens[MAX_ARGS];
        int argc = split_words(line, buf, sizeof(buf), argv, lens);
        freeReplyObject(redis_fixture_command_argv(c, argc, argv, lens));
        lines += len;
        while (*lines == ';' || *lines == ' ')
            lines++;
    }
}

Test(command_table, never_replicated_commands_reach_a_replica_as_something_else)
{
    struct redis_fixture *primary = redis_fixture_start(NULL);
    struct redis_fixture *replica = redis_fixture_start(NULL);
    struct redis_fixture *target = redis_fixture_start(NULL); /* for MIGRATE */
    redis_fixture_replicate(replica, primary, 10000);
    redisContext *mon = redis_fixture_connect(replica);
    redisReply *r = redis_fixture_command(mon, "MONITOR");
    freeReplyObject(r);

    for (size_t i = 0; i < sizeof(never_replicated) / sizeof(never_replicated[0]); i++) {
        const struct never *nv = &never_replicated[i];
        if (nv->setup != NULL)
            run_lines(primary->ctx, nv->setup, target->port);
        run_lines(primary->ctx, nv->run, target->port);
        redis_fixture_exec(primary->ctx, "SET __marker__ 1");
        char names[1024];
        monitored_until_marker(mon, names, sizeof(names));
        char self[64];
        snprintf(self, sizeof(self), " %s ", nv->name);
        cr_expect(strstr(names, self) == NULL, "%s reached the replica as itself: %s (%s)",
                  nv->name, names, nv->why);
        if (nv->becomes != NULL) {
            snprintf(self, sizeof(self), " %s ", nv->becomes);
            cr_expect(strstr(names, self) != NULL, "%s did not reach the replica as %s: %s",
                      nv->name, nv->becomes, names);
        }
    }
    redisFree(mon);
    redis_fixture_stop(target);
    redis_fixture_stop(replica);
    redis_fixture_stop(primary);
}
