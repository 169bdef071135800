/* test_log.c - the line rs_log writes, as text and as JSON (log.h): the JSON
 * line parses strictly and gives back the message byte for byte. */
#include <criterion/criterion.h>

#include <string.h>

#include <json-c/json.h>

#include "log.h"

Test(log, text_is_one_prefixed_line)
{
    rs_log_set_format(RS_LOG_TEXT);
    char line[256];
    size_t n = rs_log_format_line(line, sizeof(line), "snapshot applied", 0);
    cr_assert_str_eq(line, "ringsync: snapshot applied\n");
    cr_assert_eq(n, strlen(line));
}

Test(log, json_is_one_object_with_time_level_and_the_message_escaped)
{
    rs_log_set_format(RS_LOG_JSON);
    const char *msg = "warning: \"odd\" \\ key\n\x01 tab\t";
    char line[512];
    size_t n = rs_log_format_line(line, sizeof(line), msg, 1700000000.123);
    rs_log_set_format(RS_LOG_TEXT);
    cr_assert_eq(n, strlen(line));
    cr_assert_eq(line[n - 1], '\n');
    cr_assert_null(memchr(line, '\n', n - 1), "one line: %s", line);
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, line, (int)n - 1);
    cr_assert_not_null(o, "not JSON: %s", line);
    json_object *v;
    cr_assert(json_object_object_get_ex(o, "message", &v));
    cr_assert_str_eq(json_object_get_string(v), msg);
    cr_assert(json_object_object_get_ex(o, "level", &v));
    cr_assert_str_eq(json_object_get_string(v), "warning");
    cr_assert(json_object_object_get_ex(o, "time", &v));
    cr_assert_str_eq(json_object_get_string(v), "2023-11-14T22:13:20.123Z");
    json_object_put(o);
    json_tokener_free(tok);
}

Test(log, json_levels_follow_the_message)
{
    rs_log_set_format(RS_LOG_JSON);
    char line[512];
    rs_log_format_line(line, sizeof(line), "failed after 2 s: oops", 0);
    cr_assert(strstr(line, "\"level\":\"error\"") != NULL, "%s", line);
    rs_log_format_line(line, sizeof(line), "sync: a -> b", 0);
    cr_assert(strstr(line, "\"level\":\"info\"") != NULL, "%s", line);
    rs_log_set_format(RS_LOG_TEXT);
}

Test(log, a_long_json_message_is_cut_but_stays_one_valid_line)
{
    rs_log_set_format(RS_LOG_JSON);
    char msg[3000], line[400];
    memset(msg, '"', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    size_t n = rs_log_format_line(line, sizeof(line), msg, 0);
    rs_log_set_format(RS_LOG_TEXT);
    cr_assert_lt(n, sizeof(line));
    json_object *o = json_tokener_parse(line);
    cr_assert_not_null(o, "not JSON: %s", line);
    json_object_put(o);
}
