/* test_dest_reply.c - the destination's error replies: which are retried,
 * which stop naming a setting, which are the data's own (the texts are
 * Redis 7.0-7.4's, as a destination sends them after '-'). */
#include <criterion/criterion.h>
#include <string.h>

#include "dest_reply.h"

static enum dest_reply_kind classify(const char *line, struct dest_reply_advice *adv)
{
    return dest_reply_classify(line, strlen(line), "XADD", adv);
}

Test(dest_reply, busy_loading_tryagain_masterdown_clusterdown_are_retried)
{
    const char *lines[] = {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        "LOADING Redis is loading the dataset in memory",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "CLUSTERDOWN The cluster is down",
        "BUSY",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct dest_reply_advice adv;
        cr_expect_eq(classify(lines[i], &adv), DEST_REPLY_RETRY, "%s", lines[i]);
        cr_expect_null(adv.setting);
        cr_expect_str_empty(adv.text);
    }
}

Test(dest_reply, a_word_that_only_begins_like_a_retry_code_is_not_one)
{
    cr_expect_eq(classify("BUSYKEY Target key name already exists.", NULL), DEST_REPLY_OTHER);
    cr_expect_eq(classify("LOADINGX", NULL), DEST_REPLY_OTHER);
}

struct advice_case {
    const char *line, *setting, *in_text;
};

Test(dest_reply, configuration_replies_stop_and_name_their_setting)
{
    const struct advice_case cases[] = {
        {"OOM command not allowed when used memory > 'maxmemory'.", "maxmemory", "noeviction"},
        {"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to "
         "persist to disk.",
         "stop-writes-on-bgsave-error", "stop-writes-on-bgsave-error"},
        {"READONLY You can't write against a read only replica.", "replica-read-only",
         "REPLICAOF NO ONE"},
        {"NOREPLICAS Not enough good replicas to write.", "min-replicas-to-write",
         "min-replicas-to-write 0"},
        {"NOPERM User rs has no permissions to run the 'xadd' command", "ACL", "+xadd"},
        {"NOPERM this user has no permissions to run the 'set' command", "ACL", "'set' command"},
        {"NOPERM No permissions to access a key", "ACL", "~*"},
        {"ERR string exceeds maximum allowed size (proto-max-bulk-len)", "proto-max-bulk-len",
         "set proto-max-bulk-len"},
        {"ERR Protocol error: invalid bulk length", "proto-max-bulk-len", "proto-max-bulk-len"},
        {"ERR bit offset is not an integer or out of range", "proto-max-bulk-len", "bit offset"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dest_reply_advice adv;
        cr_expect_eq(classify(cases[i].line, &adv), DEST_REPLY_ADVICE, "%s", cases[i].line);
        cr_expect_str_eq(adv.setting, cases[i].setting, "%s", cases[i].line);
        cr_expect(strstr(adv.text, cases[i].in_text) != NULL, "%s: advice '%s' lacks '%s'",
                  cases[i].line, adv.text, cases[i].in_text);
        cr_expect(strstr(adv.text, "on the destination") != NULL, "%s", adv.text);
    }
}

Test(dest_reply, noperm_without_a_quoted_command_names_the_refused_one)
{
    struct dest_reply_advice adv;
    const char *line = "NOPERM no permissions to run any command";
    cr_assert_eq(dest_reply_classify(line, strlen(line), "XTRIM", &adv), DEST_REPLY_ADVICE);
    cr_expect(strstr(adv.text, "+xtrim") != NULL, "%s", adv.text);
}

Test(dest_reply, data_errors_are_left_to_on_error)
{
    const char *lines[] = {
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "ERR syntax error, LIMIT cannot be used without the special ~ option",
        "ERR value is not an integer or out of range",
        "EXECABORT Transaction discarded because of previous errors.",
        "",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        cr_expect_eq(classify(lines[i], NULL), DEST_REPLY_OTHER, "%s", lines[i]);
}

Test(dest_reply, only_the_bytes_given_count)
{
    /* a line cut where the reply reader truncated it: no read past len */
    const char *line = "LOADING Redis is loading";
    cr_expect_eq(dest_reply_classify(line, 3, NULL, NULL), DEST_REPLY_OTHER); /* "LOA" */
    cr_expect_eq(dest_reply_classify(line, 7, NULL, NULL), DEST_REPLY_RETRY);
    char code[16];
    cr_expect_str_eq(dest_reply_code(line, strlen(line), code, sizeof(code)), "LOADING");
    cr_expect_str_eq(dest_reply_code(line, strlen(line), code, 4), "LOA");
}
