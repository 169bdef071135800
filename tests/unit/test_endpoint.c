/* test_endpoint.c - endpoint_parse: good URIs, bad URIs, the password's
 * environment variable, and that the password never leaks into ep->name or
 * an error message. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

#define TEST_ENV "RS_TEST_ENDPOINT_PASSWORD"

static struct endpoint parse_ok(const char *uri, const char *env)
{
    struct endpoint ep;
    struct rs_error err = {0};
    int rc = endpoint_parse(uri, env, &ep, &err);
    cr_assert_eq(rc, 0, "'%s' should parse, got: %s", uri, err.msg);
    return ep;
}

/* Parses a bad URI; checks the code and that the message holds `want`. */
static void parse_bad(const char *uri, const char *want)
{
    struct endpoint ep;
    struct rs_error err = {0};
    int rc = endpoint_parse(uri, NULL, &ep, &err);
    cr_assert_eq(rc, -EINVAL, "'%s' should be refused", uri);
    cr_assert_eq(err.code, RS_E_FORMAT);
    cr_assert(strstr(err.msg, want) != NULL, "'%s': message '%s' lacks '%s'", uri, err.msg, want);
    cr_assert_eq(ep.has_password, false, "nothing is left behind on failure");
    cr_assert_str_eq(ep.password, "");
}

Test(endpoint, full_uri_with_user_password_and_db)
{
    struct endpoint ep = parse_ok("redis://syncer:s3cret@db1.example.com:6380/3", NULL);
    cr_assert_str_eq(ep.host, "db1.example.com");
    cr_assert_eq(ep.port, 6380);
    cr_assert_str_eq(ep.user, "syncer");
    cr_assert_str_eq(ep.password, "s3cret");
    cr_assert(ep.has_password);
    cr_assert_eq(ep.db, 3);
    cr_assert_str_eq(ep.name, "db1.example.com:6380");
}

Test(endpoint, host_and_port_without_scheme)
{
    struct endpoint ep = parse_ok("127.0.0.1:7000", NULL);
    cr_assert_str_eq(ep.host, "127.0.0.1");
    cr_assert_eq(ep.port, 7000);
    cr_assert_str_eq(ep.user, "");
    cr_assert_not(ep.has_password);
    cr_assert_eq(ep.db, -1);
    cr_assert_str_eq(ep.name, "127.0.0.1:7000");
}

Test(endpoint, port_defaults_to_6379)
{
    cr_assert_eq(parse_ok("redis://localhost", NULL).port, 6379);
    cr_assert_eq(parse_ok("localhost", NULL).port, 6379);
    cr_assert_eq(parse_ok("redis://[::1]", NULL).port, 6379);
    cr_assert_str_eq(parse_ok("redis://localhost/2", NULL).name, "localhost:6379");
}

Test(endpoint, scheme_is_case_insensitive)
{
    cr_assert_eq(parse_ok("REDIS://h:1", NULL).port, 1);
}

Test(endpoint, ipv6_in_brackets)
{
    struct endpoint ep = parse_ok("redis://[::1]:6379", NULL);
    cr_assert_str_eq(ep.host, "::1");
    cr_assert_eq(ep.port, 6379);
    cr_assert_str_eq(ep.name, "[::1]:6379");
    ep = parse_ok("redis://u:p@[fe80::1%eth0]:7000/0", NULL);
    cr_assert_str_eq(ep.host, "fe80::1%eth0");
    cr_assert_eq(ep.db, 0);
    cr_assert_str_eq(ep.user, "u");
}

Test(endpoint, password_only_is_the_default_user)
{
    struct endpoint ep = parse_ok("redis://:pw@h:1", NULL);
    cr_assert_str_eq(ep.user, "");
    cr_assert_str_eq(ep.password, "pw");
    cr_assert(ep.has_password);
}

Test(endpoint, percent_escapes_are_decoded_in_user_and_password)
{
    struct endpoint ep = parse_ok("redis://us%65r%3a1:p%40ss%2Fw%25rd@h:1", NULL);
    cr_assert_str_eq(ep.user, "user:1");
    cr_assert_str_eq(ep.password, "p@ss/w%rd");
}

Test(endpoint, raw_at_and_slash_and_colon_in_password)
{
    struct endpoint ep = parse_ok("redis://u:p@s:s/w@h:2/5", NULL);
    cr_assert_str_eq(ep.user, "u");
    cr_assert_str_eq(ep.password, "p@s:s/w");
    cr_assert_str_eq(ep.host, "h");
    cr_assert_eq(ep.port, 2);
    cr_assert_eq(ep.db, 5);
}

Test(endpoint, db_bounds)
{
    cr_assert_eq(parse_ok("h:1/0", NULL).db, 0);
    cr_assert_eq(parse_ok("h:1/15", NULL).db, 15);
    cr_assert_eq(parse_ok("h:1/1000", NULL).db, 1000);
    cr_assert_eq(parse_ok("h:1/", NULL).db, -1, "an empty db is none");
}

Test(endpoint, port_bounds)
{
    cr_assert_eq(parse_ok("h:1", NULL).port, 1);
    cr_assert_eq(parse_ok("h:65535", NULL).port, 65535);
    parse_bad("h:0", "port '0' is not a number from 1 to 65535");
    parse_bad("h:65536", "port '65536'");
    parse_bad("h:99999999999999", "port");
    parse_bad("h:-1", "port '-1'");
    parse_bad("h:12a", "port '12a'");
    parse_bad("h:", "port ''");
    parse_bad("redis://h: 1", "port");
}

Test(endpoint, bad_uris_name_the_part)
{
    parse_bad("", "none given");
    parse_bad("redis://", "the host is missing");
    parse_bad("redis://:6379", "the host is missing");
    parse_bad("redis://u:p@:6379", "the host is missing");
    parse_bad("http://h:1", "unknown scheme 'http://'");
    parse_bad("rediss://h:1", "TLS");
    parse_bad("redis://::1:6379", "IPv6 address goes in [ ]");
    parse_bad("redis://[::1:6379", "no ']' closes");
    parse_bad("redis://[::1]6379", "expected ':port'");
    parse_bad("redis://[]:1", "is not an IPv6 address");
    parse_bad("redis://[abc]:1", "'[abc]' is not an IPv6 address");
    parse_bad("redis://h:1/x", "db 'x'");
    parse_bad("redis://h:1/-1", "db '-1'");
    parse_bad("redis://h:1/1/2", "db '1/2'");
    parse_bad("redis://h:1/99999999999", "db");
    parse_bad("redis://h:1?db=1", "query parameters");
    parse_bad("redis://h o:1", "the host 'h o' has a character");
    parse_bad("redis://us%zzer:pw@h:1", "the user name has a bad percent-escape");
    parse_bad("redis://user@h:1", "user given without a password");
}

Test(endpoint, bad_passwords_are_named_but_never_shown)
{
    parse_bad("redis://u:abc%4@h:1", "the password has a bad percent-escape");
    parse_bad("redis://u:abc%00def@h:1", "the password has a bad percent-escape");
    char uri[800];
    memset(uri, 0, sizeof(uri));
    strcpy(uri, "redis://u:");
    memset(uri + strlen(uri), 'x', 600);
    strcat(uri, "@h:1");
    parse_bad(uri, "the password is longer than 511 bytes");
}

Test(endpoint, long_host_and_user_are_refused)
{
    char uri[800] = "redis://";
    memset(uri + strlen(uri), 'a', 300);
    strcat(uri, ":1");
    parse_bad(uri, "the host is longer than 255 bytes");
    strcpy(uri, "redis://");
    memset(uri + strlen(uri), 'u', 200);
    strcat(uri, ":pw@h:1");
    parse_bad(uri, "the user name is longer than 127 bytes");
}

Test(endpoint, password_never_in_messages_or_name)
{
    static const char *const uris[] = {
        "redis://u:Sekr1tPw@h:0",       "redis://u:Sekr1tPw@:1",   "redis://u:Sekr1tPw@h:1/x",
        "redis://u:Sekr1tPw@[::1:1",    "redis://:Sekr1tPw@h o:1", "http://u:Sekr1tPw@h:1",
        "redis://u:Sekr1tPw@h:1?x=1",   "u:Sekr1tPw@h:x",          "redis://u:Sekr1tPw%zz@h:1",
        "redis://u:Sekr1tPw@h@bad:port"};
    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        struct endpoint ep;
        struct rs_error err = {0};
        cr_assert_eq(endpoint_parse(uris[i], NULL, &ep, &err), -EINVAL, "%zu should fail", i);
        cr_assert(strstr(err.msg, "Sekr1tPw") == NULL, "password shown: %s", err.msg);
        cr_assert(strstr(err.msg, "***@") != NULL, "user part redacted: %s", err.msg);
    }
    struct endpoint ep = parse_ok("redis://u:Sekr1tPw@h:1/2", NULL);
    cr_assert(strstr(ep.name, "Sekr1tPw") == NULL);
    cr_assert(strstr(ep.name, "u") == NULL, "the user is not in the name either");
}

Test(endpoint, password_from_environment)
{
    setenv(TEST_ENV, "from-env", 1);
    struct endpoint ep = parse_ok("redis://h:1", TEST_ENV);
    cr_assert(ep.has_password);
    cr_assert_str_eq(ep.password, "from-env");

    ep = parse_ok("redis://syncer@h:1", TEST_ENV);
    cr_assert_str_eq(ep.user, "syncer");
    cr_assert_str_eq(ep.password, "from-env", "a user with the password from the environment");

    ep = parse_ok("redis://:in-uri@h:1", TEST_ENV);
    cr_assert_str_eq(ep.password, "in-uri", "the URI's password wins");

    ep = parse_ok("redis://u:@h:1", TEST_ENV);
    cr_assert_str_eq(ep.password, "from-env", "an empty password in the URI counts as none");

    ep = parse_ok("redis://h:1", NULL);
    cr_assert_not(ep.has_password, "no variable named: the environment is not read");
    unsetenv(TEST_ENV);
}

Test(endpoint, empty_or_unset_environment_gives_no_password)
{
    unsetenv(TEST_ENV);
    cr_assert_not(parse_ok("redis://h:1", TEST_ENV).has_password);
    setenv(TEST_ENV, "", 1);
    cr_assert_not(parse_ok("redis://h:1", TEST_ENV).has_password);

    struct endpoint ep;
    struct rs_error err = {0};
    cr_assert_eq(endpoint_parse("redis://syncer@h:1", TEST_ENV, &ep, &err), -EINVAL);
    cr_assert(strstr(err.msg, "$" TEST_ENV) != NULL, "names the variable: %s", err.msg);
    unsetenv(TEST_ENV);
}

Test(endpoint, password_from_environment_too_long)
{
    char pw[600];
    memset(pw, 'p', sizeof(pw) - 1);
    pw[sizeof(pw) - 1] = '\0';
    setenv(TEST_ENV, pw, 1);
    struct endpoint ep;
    struct rs_error err = {0};
    cr_assert_eq(endpoint_parse("redis://h:1", TEST_ENV, &ep, &err), -EINVAL);
    cr_assert(strstr(err.msg, "longer than 511") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "ppppp") == NULL);
    unsetenv(TEST_ENV);
}

Test(endpoint, err_may_be_null)
{
    struct endpoint ep;
    cr_assert_eq(endpoint_parse("h:0", NULL, &ep, NULL), -EINVAL);
    cr_assert_eq(endpoint_parse(NULL, NULL, &ep, NULL), -EINVAL);
}

/* fuzz_endpoint found it: a password holding "://" in a URI without a
 * scheme was taken for a scheme, and quoted in the message */
Test(endpoint, a_password_with_a_scheme_separator_is_never_shown)
{
    struct endpoint ep;
    struct rs_error err = {0};
    int rc = endpoint_parse("syncer:s3cret://x@db1:6380", NULL, &ep, &err);
    if (rc == 0) {
        cr_assert_str_eq(ep.host, "db1");
        cr_assert_str_eq(ep.password, "s3cret://x");
    } else {
        cr_assert(strstr(err.msg, "s3cret") == NULL, "the message shows the password: %s", err.msg);
    }
    cr_assert(strstr(ep.name, "s3cret") == NULL);
}
