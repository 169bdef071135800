/* key_filter.h - which source keys, databases and commands a job copies
 * (--filter-key-prefix, --block-key-prefix, --filter-db, --block-command).
 *
 *   a key (db, name) is kept  <=>  it is a checkpoint key (CHECKPOINT_PREFIX: never filtered)
 *                                  or  ( db is kept (no --filter-db, or one of them)
 *                                        and (no --filter-key-prefix, or name has one of them)
 *                                        and name has no --block-key-prefix )
 *   a command is blocked      <=>  its name is a --block-command (any case)
 *
 * The snapshot writer asks about each key record, the router about every
 * key of every stream command (router.h says what a command whose keys are
 * split by the filter becomes). An all-zero struct is a valid filter that
 * keeps everything; a job with no filter passes NULL instead, so that the
 * hot paths pay one predictable branch.
 *
 * The prefixes and names are not copied: the strings given to the add
 * functions (the command line's) must outlive the filter.
 *
 * Threads: filled before the job starts, then read-only (any thread).
 */
#ifndef RS_KEY_FILTER_H
#define RS_KEY_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_error.h"
#include "slice.h"

#define KEY_FILTER_MAX_PREFIXES 64  /* per list: --filter-key-prefix, --block-key-prefix */
#define KEY_FILTER_MAX_COMMANDS 32  /* --block-command */
#define KEY_FILTER_MAX_DBS      256 /* --filter-db N takes 0..255 */

struct key_filter {
    struct rs_slice keep[KEY_FILTER_MAX_PREFIXES]; /* --filter-key-prefix */
    unsigned nkeep;
    struct rs_slice block[KEY_FILTER_MAX_PREFIXES]; /* --block-key-prefix */
    unsigned nblock;
    uint64_t dbs[KEY_FILTER_MAX_DBS / 64]; /* --filter-db, a bit per db */
    bool has_dbs;
    struct rs_slice commands[KEY_FILTER_MAX_COMMANDS]; /* --block-command */
    unsigned ncommands;
};

/* Adds an option's value. Each returns 0, or -EINVAL with err saying what
 * is wrong, naming the option: an empty prefix, a list full, a db that is
 * not a number from 0 to 255, a command that frames the stream (SELECT,
 * MULTI, EXEC, PING, REPLCONF) or an empty name. s must outlive f. */
int key_filter_add_keep_prefix(struct key_filter *f, const char *s, struct rs_error *err);
int key_filter_add_block_prefix(struct key_filter *f, const char *s, struct rs_error *err);
int key_filter_add_db(struct key_filter *f, const char *s, struct rs_error *err);
int key_filter_add_command(struct key_filter *f, const char *s, struct rs_error *err);

/* True when f filters anything (some option was given). */
bool key_filter_is_active(const struct key_filter *f);

/* True when f keeps source database db (always without --filter-db). */
bool key_filter_keeps_db(const struct key_filter *f, int64_t db);

/* True when f keeps key (len bytes) of source database db (above). */
bool key_filter_keep_key(const struct key_filter *f, int64_t db, const char *key, size_t len);

/* True when f blocks the command named name (len bytes, any case). */
bool key_filter_blocks_command(const struct key_filter *f, const char *name, size_t len);

/* The options as given, for messages: "--filter-key-prefix 'a:' --filter-db 0". */
void key_filter_describe(const struct key_filter *f, char *out, size_t cap);

#endif
