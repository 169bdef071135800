/* key_filter.c - which keys, databases and commands a job copies (see
 * key_filter.h). */
#include "key_filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checkpoint.h"
#include "command_table.h"

#define KEY_FILTER_NAME_MAX 64 /* longer than any command's name */

static int add_prefix(struct rs_slice *list, unsigned *n, const char *option, const char *s,
                      struct rs_error *err)
{
    if (s[0] == '\0') {
        rs_error_set(err, RS_E_FORMAT, 0, "%s: an empty prefix names every key", option);
        return -EINVAL;
    }
    if (*n == KEY_FILTER_MAX_PREFIXES) {
        rs_error_set(err, RS_E_LIMIT, 0, "%s: at most %d of them", option, KEY_FILTER_MAX_PREFIXES);
        return -EINVAL;
    }
    list[(*n)++] = (struct rs_slice){s, strlen(s)};
    return 0;
}

int key_filter_add_keep_prefix(struct key_filter *f, const char *s, struct rs_error *err)
{
    return add_prefix(f->keep, &f->nkeep, "--filter-key-prefix", s, err);
}

int key_filter_add_block_prefix(struct key_filter *f, const char *s, struct rs_error *err)
{
    return add_prefix(f->block, &f->nblock, "--block-key-prefix", s, err);
}

int key_filter_add_db(struct key_filter *f, const char *s, struct rs_error *err)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || v < 0 || v >= KEY_FILTER_MAX_DBS) {
        char q[40];
        rs_error_set(err, RS_E_FORMAT, 0,
                     "--filter-db takes a database number from 0 to %d, not "
                     "'%s'",
                     KEY_FILTER_MAX_DBS - 1, rs_escape_bytes(q, sizeof(q), s, strlen(s), 20));
        return -EINVAL;
    }
    f->dbs[v / 64] |= 1ULL << (v % 64);
    f->has_dbs = true;
    return 0;
}

int key_filter_add_command(struct key_filter *f, const char *s, struct rs_error *err)
{
    size_t len = strlen(s);
    char q[40];
    if (len == 0 || len > KEY_FILTER_NAME_MAX || strpbrk(s, " \t\r\n") != NULL) {
        rs_error_set(err, RS_E_FORMAT, 0, "--block-command takes a command's name, not '%s'",
                     rs_escape_bytes(q, sizeof(q), s, len, 20));
        return -EINVAL;
    }
    const struct command_spec *spec = command_lookup(s, len);
    if (spec != NULL && (spec->flags & (CMD_SKIP | CMD_SELECT | CMD_MULTI | CMD_EXEC))) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "--block-command cannot block %s: it frames the replication stream "
                     "(SELECT, MULTI, EXEC, PING and REPLCONF are never forwarded as such)",
                     rs_escape_bytes(q, sizeof(q), s, len, 20));
        return -EINVAL;
    }
    if (f->ncommands == KEY_FILTER_MAX_COMMANDS) {
        rs_error_set(err, RS_E_LIMIT, 0, "--block-command: at most %d of them",
                     KEY_FILTER_MAX_COMMANDS);
        return -EINVAL;
    }
    f->commands[f->ncommands++] = (struct rs_slice){s, len};
    return 0;
}

bool key_filter_is_active(const struct key_filter *f)
{
    return f->nkeep > 0 || f->nblock > 0 || f->has_dbs || f->ncommands > 0;
}

bool key_filter_keeps_db(const struct key_filter *f, int64_t db)
{
    if (!f->has_dbs)
        return true;
    return db >= 0 && db < KEY_FILTER_MAX_DBS && (f->dbs[db / 64] >> (db % 64) & 1);
}

static bool has_prefix(const struct rs_slice *list, unsigned n, const char *key, size_t len)
{
    for (unsigned i = 0; i < n; i++)
        if (list[i].len <= len && memcmp(key, list[i].p, list[i].len) == 0)
            return true;
    return false;
}

bool key_filter_keep_key(const struct key_filter *f, int64_t db, const char *key, size_t len)
{
    static const char cp[] = CHECKPOINT_PREFIX;
    if (len >= sizeof(cp) - 1 && memcmp(key, cp, sizeof(cp) - 1) == 0)
        return true; /* a job's own records: never filtered */
    if (!key_filter_keeps_db(f, db))
        return false;
    if (f->nkeep > 0 && !has_prefix(f->keep, f->nkeep, key, len))
        return false;
    return !has_prefix(f->block, f->nblock, key, len);
}

bool key_filter_blocks_command(const struct key_filter *f, const char *name, size_t len)
{
    for (unsigned i = 0; i < f->ncommands; i++)
        if (f->commands[i].len == len && strncasecmp(f->commands[i].p, name, len) == 0)
            return true;
    return false;
}

/* Appends " option value" (the first without its space) to out at *used,
 * never past cap; the value in quotes when quoted. */
static void put(char *out, size_t cap, size_t *used, const char *option, const char *value,
                bool quoted)
{
    if (*used >= cap)
        return;
    int w = snprintf(out + *used, cap - *used, "%s%s %s%s%s", *used ? " " : "", option,
                     quoted ? "'" : "", value, quoted ? "'" : "");
    if (w > 0)
        *used += (size_t)w;
}

void key_filter_describe(const struct key_filter *f, char *out, size_t cap)
{
    size_t used = 0;
    char q[80];
    if (cap == 0)
        return;
    out[0] = '\0';
    for (unsigned i = 0; i < f->nkeep; i++)
        put(out, cap, &used, "--filter-key-prefix",
            rs_escape_bytes(q, sizeof(q), f->keep[i].p, f->keep[i].len, 40), true);
    for (unsigned i = 0; i < f->nblock; i++)
        put(out, cap, &used, "--block-key-prefix",
            rs_escape_bytes(q, sizeof(q), f->block[i].p, f->block[i].len, 40), true);
    for (int db = 0; f->has_dbs && db < KEY_FILTER_MAX_DBS; db++) {
        if (!(f->dbs[db / 64] >> (db % 64) & 1))
            continue;
        snprintf(q, sizeof(q), "%d", db);
        put(out, cap, &used, "--filter-db", q, false);
    }
    for (unsigned i = 0; i < f->ncommands; i++)
        put(out, cap, &used, "--block-command",
            rs_escape_bytes(q, sizeof(q), f->commands[i].p, f->commands[i].len, 40), false);
}
