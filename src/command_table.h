/* command_table.h - what ringsync knows of each command a replication stream
 * carries: whether to forward it, and which arguments are keys.
 *
 * Key positions follow Redis 7 key specs (COMMAND INFO): first, last (-1: to
 * the end, -2: all but the last), step; or a numkeys argument (EVAL, FCALL,
 * ZUNIONSTORE ...). A test checks them against COMMAND GETKEYS of a real
 * server (tests/integration/test_command_table.c).
 */
#ifndef RS_COMMAND_TABLE_H
#define RS_COMMAND_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

enum command_flags {
    CMD_FENCE = 1 << 0,   /* touches several databases or the whole server: run alone */
    CMD_SPLIT = 1 << 1,   /* multi-key, but each key (group) may be applied apart */
    CMD_NUMKEYS = 1 << 2, /* argv[numkeys_at] holds the number of keys that follow it */
    CMD_SKIP = 1 << 3,    /* replication-only or not data: consumed, not forwarded */
    CMD_PUBLISH = 1 << 4, /* PUBLISH / SPUBLISH: dropped unless --forward-publish */
    CMD_SELECT = 1 << 5,
    CMD_MULTI = 1 << 6,
    CMD_EXEC = 1 << 7,
    CMD_REPLCONF = 1 << 8,
    CMD_DEST_FIRST = 1 << 9,     /* with CMD_NUMKEYS: argv[1] is also a key (ZUNIONSTORE dest) */
    CMD_EVERY_NODE = 1 << 10,    /* a cluster destination runs it on every master (FLUSHALL ...) */
    CMD_SPLIT_AS_MSET = 1 << 11, /* MSETNX: in the stream only when it succeeded, so on a
                                    cluster it may go out per slot as MSET */
    CMD_ABSOLUTE = 1 << 12,      /* the value it leaves does not depend on the value it finds:
                                    safe to run again with every later command of its slot
                                    (src/CHECKPOINTS.md); see command_is_absolute */
};

/* The form of a command stream_rewrite.h may have to change (0: none). */
enum command_rewrite {
    CMD_RW_NONE = 0,
    CMD_RW_XADD,    /* XADD key ... [LIMIT n]: a master-only form when the trim is exact */
    CMD_RW_XTRIM,   /* XTRIM key ... [LIMIT n]: the same */
    CMD_RW_ARG2_MS, /* PEXPIREAT / PEXPIRE / PSETEX key ms ...: an expiry in ms at argv[2] */
    CMD_RW_ARG2_S,  /* EXPIREAT / EXPIRE / SETEX key s ...: an expiry in seconds at argv[2] */
    CMD_RW_SET,     /* SET key value [EX s|PX ms|EXAT s|PXAT ms] ... */
    CMD_RW_GETEX,   /* GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST] */
    CMD_RW_RESTORE, /* RESTORE key ttl payload [ABSTTL] ...: ttl in ms, 0 none */
};

struct command_spec {
    const char *name; /* lower case */
    unsigned flags;
    int first, last, step; /* key positions; first 0: no keys */
    int numkeys_at;        /* with CMD_NUMKEYS */
};

/* A spec's enum command_rewrite, kept in bits 20-23 of its flags. */
#define CMD_RW(kind)          ((unsigned)(kind) << 20)
#define command_rewrite_of(s) ((enum command_rewrite)(((s)->flags >> 20) & 15))

/* The spec of a command by name (any case), or NULL when unknown. */
const struct command_spec *command_lookup(const char *name, size_t len);

/* True when the command reads keys its arguments do not name as keys (SORT
 * with a BY or GET pattern): the router cannot tell which slots it touches. */
bool command_reads_unnamed_keys(const struct command_spec *spec, int argc,
                                const struct rs_slice *argv);

/* True when this command may be applied again (CMD_ABSOLUTE, and not a
 * form that adds to what it finds: ZADD ... INCR). */
bool command_is_absolute(const struct command_spec *spec, int argc, const struct rs_slice *argv);

/* Writes the indices of argv that are keys into idx (at most max); returns
 * how many, or -1 if the arguments don't fit the spec (a malformed command). */
int command_keys(const struct command_spec *spec, int argc, const struct rs_slice *argv, int *idx,
                 int max);

/* Every spec, for tests. */
const struct command_spec *command_table_all(size_t *n);

#endif
