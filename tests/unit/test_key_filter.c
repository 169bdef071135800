/* test_key_filter.c - which keys, databases and commands the filters keep:
 * the options parsed and refused, the rules of key_filter.h one by one
 * (keep and block prefixes, databases, checkpoint keys, blocked commands),
 * the description used in messages, and the matcher against a plain
 * reference model over random filters and keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "checkpoint.h"
#include "key_filter.h"

static bool keep(const struct key_filter *f, int64_t db, const char *key)
{
    return key_filter_keep_key(f, db, key, strlen(key));
}

static bool blocks(const struct key_filter *f, const char *name)
{
    return key_filter_blocks_command(f, name, strlen(name));
}

Test(key_filter, an_all_zero_filter_keeps_everything_and_is_not_active)
{
    struct key_filter f = {0};
    cr_expect(!key_filter_is_active(&f));
    cr_expect(keep(&f, 0, "any"));
    cr_expect(keep(&f, 15, ""));
    cr_expect(key_filter_keeps_db(&f, 300));
    cr_expect(!blocks(&f, "FLUSHALL"));
    char d[64] = "x";
    key_filter_describe(&f, d, sizeof(d));
    cr_expect_str_eq(d, "");
}

Test(key_filter, keep_prefixes_keep_only_keys_that_start_with_one_of_them)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_keep_prefix(&f, "a:", &err), 0);
    cr_assert_eq(key_filter_add_keep_prefix(&f, "user:", &err), 0);
    cr_expect(key_filter_is_active(&f));
    cr_expect(keep(&f, 0, "a:1"));
    cr_expect(keep(&f, 3, "a:"));
    cr_expect(keep(&f, 0, "user:42"));
    cr_expect(!keep(&f, 0, "a"));
    cr_expect(!keep(&f, 0, "b:1"));
    cr_expect(!keep(&f, 0, "A:1"), "prefixes are case-sensitive, as key names are");
    cr_expect(!keep(&f, 0, "xa:1"));
}

Test(key_filter, a_block_prefix_wins_over_a_keep_prefix)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_keep_prefix(&f, "a:", &err), 0);
    cr_assert_eq(key_filter_add_block_prefix(&f, "a:secret:", &err), 0);
    cr_expect(keep(&f, 0, "a:public"));
    cr_expect(keep(&f, 0, "a:secret"), "a key shorter than the block prefix is not blocked");
    cr_expect(!keep(&f, 0, "a:secret:1"));
    cr_expect(!keep(&f, 0, "b:1"));
}

Test(key_filter, block_prefixes_alone_drop_only_their_keys)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_block_prefix(&f, "tmp:", &err), 0);
    cr_assert_eq(key_filter_add_block_prefix(&f, "cache:", &err), 0);
    cr_expect(keep(&f, 0, "user:1"));
    cr_expect(keep(&f, 0, "tmp"));
    cr_expect(!keep(&f, 0, "tmp:1"));
    cr_expect(!keep(&f, 9, "cache:x"));
}

Test(key_filter, prefixes_match_binary_keys_byte_for_byte)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_keep_prefix(&f, "\xff\x01", &err), 0);
    static const char key[] = {'\xff', '\x01', '\0', 'z'};
    cr_expect(key_filter_keep_key(&f, 0, key, sizeof(key)));
    static const char other[] = {'\xff', '\0', '\x01'};
    cr_expect(!key_filter_keep_key(&f, 0, other, sizeof(other)));
}

Test(key_filter, filter_db_keeps_only_the_databases_named)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_db(&f, "0", &err), 0);
    cr_assert_eq(key_filter_add_db(&f, "65", &err), 0);
    cr_assert_eq(key_filter_add_db(&f, "255", &err), 0);
    cr_expect(key_filter_is_active(&f));
    cr_expect(key_filter_keeps_db(&f, 0));
    cr_expect(key_filter_keeps_db(&f, 65));
    cr_expect(key_filter_keeps_db(&f, 255));
    cr_expect(!key_filter_keeps_db(&f, 1));
    cr_expect(!key_filter_keeps_db(&f, 64));
    cr_expect(!key_filter_keeps_db(&f, 256));
    cr_expect(!key_filter_keeps_db(&f, -1));
    cr_expect(keep(&f, 0, "k"));
    cr_expect(!keep(&f, 1, "k"));
}

Test(key_filter, databases_and_prefixes_must_both_keep_a_key)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_db(&f, "1", &err), 0);
    cr_assert_eq(key_filter_add_keep_prefix(&f, "a:", &err), 0);
    cr_expect(keep(&f, 1, "a:x"));
    cr_expect(!keep(&f, 0, "a:x"));
    cr_expect(!keep(&f, 1, "b:x"));
}

Test(key_filter, checkpoint_keys_are_never_filtered)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_keep_prefix(&f, "a:", &err), 0);
    cr_assert_eq(key_filter_add_block_prefix(&f, "ringsync:", &err), 0);
    cr_assert_eq(key_filter_add_db(&f, "3", &err), 0);
    cr_expect(keep(&f, 0, CHECKPOINT_PREFIX "job:w"));
    cr_expect(keep(&f, 7, CHECKPOINT_PREFIX "job:{x}"));
    cr_expect(!keep(&f, 3, "ringsync:cp"), "only the whole prefix makes a checkpoint key");
    cr_expect(!keep(&f, 3, "ringsync:other"));
}

Test(key_filter, blocked_commands_match_their_whole_name_in_any_case)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_command(&f, "FLUSHALL", &err), 0);
    cr_assert_eq(key_filter_add_command(&f, "del", &err), 0);
    cr_assert_eq(key_filter_add_command(&f, "mymodule.cmd", &err), 0,
                 "a command ringsync does not know may be blocked too");
    cr_expect(key_filter_is_active(&f));
    cr_expect(blocks(&f, "flushall"));
    cr_expect(blocks(&f, "FlushAll"));
    cr_expect(blocks(&f, "DEL"));
    cr_expect(blocks(&f, "MYMODULE.CMD"));
    cr_expect(!blocks(&f, "FLUSHDB"));
    cr_expect(!blocks(&f, "FLUSH"));
    cr_expect(!blocks(&f, "FLUSHALLX"));
    cr_expect(!blocks(&f, "DE"));
    cr_expect(keep(&f, 0, "any"), "blocking commands filters no key");
}

Test(key_filter, bad_option_values_are_refused_naming_the_option)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    static const char *const bad_dbs[] = {"", "-1", "256", "1x", " 1", "x", "+1", "99999999999"};
    for (size_t i = 0; i < sizeof(bad_dbs) / sizeof(bad_dbs[0]); i++) {
        memset(&err, 0, sizeof(err));
        cr_expect_lt(key_filter_add_db(&f, bad_dbs[i], &err), 0, "'%s'", bad_dbs[i]);
        cr_expect(strstr(err.msg, "--filter-db") != NULL, "'%s': %s", bad_dbs[i], err.msg);
    }
    cr_expect_lt(key_filter_add_keep_prefix(&f, "", &err), 0);
    cr_expect(strstr(err.msg, "--filter-key-prefix") != NULL, "%s", err.msg);
    cr_expect_lt(key_filter_add_block_prefix(&f, "", &err), 0);
    cr_expect(strstr(err.msg, "--block-key-prefix") != NULL, "%s", err.msg);
    static const char *const framing[] = {"SELECT", "multi", "EXEC", "ping", "REPLCONF"};
    for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++) {
        cr_expect_lt(key_filter_add_command(&f, framing[i], &err), 0, "%s", framing[i]);
        cr_expect(strstr(err.msg, "--block-command") != NULL, "%s", err.msg);
    }
    cr_expect_lt(key_filter_add_command(&f, "", &err), 0);
    cr_expect_lt(key_filter_add_command(&f, "FLUSH ALL", &err), 0);
    cr_expect(!key_filter_is_active(&f), "nothing refused was added");
}

Test(key_filter, the_lists_are_bounded)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    for (int i = 0; i < KEY_FILTER_MAX_PREFIXES; i++)
        cr_assert_eq(key_filter_add_keep_prefix(&f, "p", &err), 0);
    cr_expect_lt(key_filter_add_keep_prefix(&f, "p", &err), 0);
    cr_expect(strstr(err.msg, "at most") != NULL, "%s", err.msg);
    for (int i = 0; i < KEY_FILTER_MAX_COMMANDS; i++)
        cr_assert_eq(key_filter_add_command(&f, "DEL", &err), 0);
    cr_expect_lt(key_filter_add_command(&f, "DEL", &err), 0);
}

Test(key_filter, describe_gives_the_options_as_given)
{
    struct key_filter f = {0};
    struct rs_error err = {0};
    cr_assert_eq(key_filter_add_keep_prefix(&f, "a:", &err), 0);
    cr_assert_eq(key_filter_add_block_prefix(&f, "a:\x01", &err), 0);
    cr_assert_eq(key_filter_add_db(&f, "3", &err), 0);
    cr_assert_eq(key_filter_add_db(&f, "0", &err), 0);
    cr_assert_eq(key_filter_add_command(&f, "FLUSHALL", &err), 0);
    char d[256];
    key_filter_describe(&f, d, sizeof(d));
    cr_expect_str_eq(d, "--filter-key-prefix 'a:' --block-key-prefix 'a:\\x01' --filter-db 0 "
                        "--filter-db 3 --block-command FLUSHALL");
    char small[16];
    key_filter_describe(&f, small, sizeof(small));
    cr_expect_eq(strlen(small), sizeof(small) - 1, "cut to its room: '%s'", small);
}

/* ------------------------------------------------- against a plain model */

static const char alphabet[] = "ab:";

static void random_text(char *out, size_t max_len)
{
    size_t len = (size_t)rand() % (max_len + 1);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rand() % 3];
    out[len] = '\0';
}

struct model {
    char keep[4][8], block[4][8];
    int nkeep, nblock;
    bool dbs[4], has_dbs;
};

static bool starts_with(const char *key, const char *prefix)
{
    return strncmp(key, prefix, strlen(prefix)) == 0;
}

/* key_filter.h's rule, written as plainly as it reads. */
static bool model_keeps(const struct model *m, int db, const char *key)
{
    if (m->has_dbs && !m->dbs[db])
        return false;
    bool kept = m->nkeep == 0;
    for (int i = 0; i < m->nkeep; i++)
        kept = kept || starts_with(key, m->keep[i]);
    for (int i = 0; i < m->nblock; i++)
        kept = kept && !starts_with(key, m->block[i]);
    return kept;
}

/* Random filters over keys of "a", "b" and ":", against the model; with
 * fault set, the model forgets block prefixes and the comparison must see
 * it (a comparison that cannot fail proves nothing). Returns the
 * disagreements. */
static int disagreements(bool fault)
{
    srand(16);
    int bad = 0;
    for (int round = 0; round < 300; round++) {
        struct model m = {0};
        struct key_filter f = {0};
        struct rs_error err = {0};
        m.nkeep = rand() % 3;
        m.nblock = rand() % 3;
        for (int i = 0; i < m.nkeep; i++) {
            do
                random_text(m.keep[i], 3);
            while (m.keep[i][0] == '\0');
            cr_assert_eq(key_filter_add_keep_prefix(&f, m.keep[i], &err), 0);
        }
        for (int i = 0; i < m.nblock; i++) {
            do
                random_text(m.block[i], 4);
            while (m.block[i][0] == '\0');
            cr_assert_eq(key_filter_add_block_prefix(&f, m.block[i], &err), 0);
        }
        for (int db = 0; db < 4; db++)
            if (rand() % 3 == 0) {
                char n[16];
                snprintf(n, sizeof(n), "%d", db);
                m.dbs[db] = m.has_dbs = true;
                cr_assert_eq(key_filter_add_db(&f, n, &err), 0);
            }
        if (fault)
            m.nblock = 0;
        for (int k = 0; k < 50; k++) {
            char key[8];
            random_text(key, 6);
            int db = rand() % 4;
            if (model_keeps(&m, db, key) != keep(&f, db, key))
                bad++;
        }
    }
    return bad;
}

Test(key_filter, keep_key_agrees_with_a_plain_model_over_random_filters)
{
    cr_expect_eq(disagreements(false), 0);
}

Test(key_filter, the_model_comparison_catches_a_planted_fault)
{
    cr_expect_gt(disagreements(true), 0);
}
