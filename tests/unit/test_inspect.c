/* test_inspect.c - `ringsync inspect` end to end: RDB files built byte by byte
 * (rdb_builder.h), run through the built binary ($RS_RINGSYNC), exact output
 * lines compared with notes/inspect_json.md.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rdb_builder.h"
#include "rdb_format.h"

/* ---- running the binary -------------------------------------------------- */

struct run {
    int code;  /* exit status; -1 if it did not exit normally */
    char *out; /* stdout, NUL-terminated */
    size_t out_len;
    char *err; /* stderr, NUL-terminated */
};

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    size_t got;
    while ((got = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            p = realloc(p, cap);
        }
    }
    p[n] = '\0';
    if (len != NULL)
        *len = n;
    return p;
}

/* Runs `$RS_RINGSYNC <args>` through the shell (args is shell text). */
static struct run run_ringsync(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct run run_ringsync(const char *fmt, ...)
{
    const char *bin = getenv("RS_RINGSYNC");
    cr_assert_not_null(bin, "RS_RINGSYNC must name the built ringsync binary");
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);

    char err_path[] = "/tmp/rs_test_inspect_err_XXXXXX";
    int efd = mkstemp(err_path);
    cr_assert_geq(efd, 0);
    close(efd);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>'%s'", bin, args, err_path);

    struct run r = {0};
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    r.out = read_all(p, &r.out_len);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    FILE *e = fopen(err_path, "r");
    cr_assert_not_null(e);
    r.err = read_all(e, NULL);
    fclose(e);
    unlink(err_path);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* Writes p[0..n) to a new temporary file; returns its path (free it, unlink it). */
static char *write_temp(const void *p, size_t n)
{
    char *path = strdup("/tmp/rs_test_inspect_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
    return path;
}

static char *write_rdb(const struct rdb_builder *b)
{
    return write_temp(b->p, b->len);
}

static void remove_temp(char *path)
{
    unlink(path);
    free(path);
}

/* ---- inputs -------------------------------------------------------------- */

/* A value type byte then a key of any bytes. */
static void key_bytes(struct rdb_builder *b, uint8_t type, const void *key, size_t n)
{
    rdb_builder_byte(b, type);
    rdb_builder_str(b, key, n);
}

/* REDIS0009: three strings, one with an expiry, one with a binary key and value,
 * one stored as an integer. */
static void build_strings(struct rdb_builder *b)
{
    rdb_builder_init(b);
    rdb_builder_header(b, 9);
    rdb_builder_aux(b, "redis-ver", "5.0.7");
    rdb_builder_aux(b, "redis-bits", "64");
    rdb_builder_selectdb(b, 0);
    rdb_builder_resizedb(b, 4, 1);
    rdb_builder_key(b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(b, "hello");
    rdb_builder_expire_ms(b, 1700000000000ull);
    rdb_builder_key(b, RDB_TYPE_STRING, "e");
    rdb_builder_cstr(b, "v");
    key_bytes(b, RDB_TYPE_STRING, "\xff\x00k", 3);
    rdb_builder_str(b, "caf\xc3\xa9\n\"\\", 8);
    rdb_builder_key(b, RDB_TYPE_STRING, "n");
    rdb_builder_str_int(b, -123, 8);
    rdb_builder_eof(b);
}

static const char strings_lines[] =
    "{\"db\":0,\"key\":\"s\",\"type\":\"string\",\"encoding\":\"string\",\"expire_ms\":null,"
    "\"value\":\"hello\"}\n"
    "{\"db\":0,\"key\":\"e\",\"type\":\"string\",\"encoding\":\"string\",\"expire_ms\":"
    "1700000000000,\"value\":\"v\"}\n"
    "{\"db\":0,\"key\":\"\\u00ff\\u0000k\",\"type\":\"string\",\"encoding\":\"string\","
    "\"expire_ms\":null,\"value\":\"caf\\u00c3\\u00a9\\u000a\\\"\\\\\"}\n"
    "{\"db\":0,\"key\":\"n\",\"type\":\"string\",\"encoding\":\"string\",\"expire_ms\":null,"
    "\"value\":\"-123\"}\n";

/* REDIS0009: a ziplist list, an intset set, a zset with binary scores, a
 * ziplist hash in db 2, and an empty set (skipped with a warning). Returns the
 * offset of the empty set's type byte. */
static size_t build_collections(struct rdb_builder *b)
{
    rdb_builder_init(b);
    rdb_builder_header(b, 9);
    rdb_builder_selectdb(b, 0);

    struct ziplist_builder zl;
    struct rdb_builder blob;
    ziplist_builder_init(&zl);
    ziplist_builder_add_cstr(&zl, "a");
    ziplist_builder_add_cstr(&zl, "bc");
    ziplist_builder_add_int(&zl, 7);
    rdb_builder_init(&blob);
    ziplist_builder_finish(&zl, &blob);
    rdb_builder_key(b, RDB_TYPE_LIST_ZIPLIST, "l");
    rdb_builder_str_blob(b, &blob);
    rdb_builder_deinit(&blob);
    ziplist_builder_deinit(&zl);

    const int64_t ints[] = {1, 2, 300};
    rdb_builder_init(&blob);
    intset_build(&blob, 2, ints, 3);
    rdb_builder_key(b, RDB_TYPE_SET_INTSET, "si");
    rdb_builder_str_blob(b, &blob);
    rdb_builder_deinit(&blob);

    size_t empty_offset = b->len;
    rdb_builder_key(b, RDB_TYPE_SET, "emp");
    rdb_builder_len(b, 0);

    rdb_builder_selectdb(b, 2);
    rdb_builder_key(b, RDB_TYPE_ZSET_2, "z");
    rdb_builder_len(b, 3);
    rdb_builder_cstr(b, "m1");
    rdb_builder_double(b, 1.5);
    rdb_builder_cstr(b, "m2");
    rdb_builder_double(b, 0.1);
    rdb_builder_cstr(b, "m3");
    rdb_builder_double(b, -__builtin_inf());

    ziplist_builder_init(&zl);
    ziplist_builder_add_cstr(&zl, "f");
    ziplist_builder_add_cstr(&zl, "v");
    ziplist_builder_add_cstr(&zl, "n");
    ziplist_builder_add_int(&zl, 12);
    rdb_builder_init(&blob);
    ziplist_builder_finish(&zl, &blob);
    rdb_builder_key(b, RDB_TYPE_HASH_ZIPLIST, "h");
    rdb_builder_str_blob(b, &blob);
    rdb_builder_deinit(&blob);
    ziplist_builder_deinit(&zl);

    rdb_builder_eof(b);
    return empty_offset;
}

static const char collections_lines[] =
    "{\"db\":0,\"key\":\"l\",\"type\":\"list\",\"encoding\":\"list-ziplist\",\"expire_ms\":null,"
    "\"value\":[\"a\",\"bc\",\"7\"]}\n"
    "{\"db\":0,\"key\":\"si\",\"type\":\"set\",\"encoding\":\"set-intset\",\"expire_ms\":null,"
    "\"value\":[\"1\",\"2\",\"300\"]}\n"
    "{\"db\":2,\"key\":\"z\",\"type\":\"zset\",\"encoding\":\"zset-skiplist-2\",\"expire_ms\":null,"
    "\"value\":{\"m1\":1.5,\"m2\":0.10000000000000001,\"m3\":\"-inf\"}}\n"
    "{\"db\":2,\"key\":\"h\",\"type\":\"hash\",\"encoding\":\"hash-ziplist\",\"expire_ms\":null,"
    "\"value\":{\"f\":\"v\",\"n\":\"12\"}}\n";

/* REDIS0009: a stream (type 15) of two entries, a group with one pending
 * entry owned by one consumer, and a group with neither. */
static void build_stream(struct rdb_builder *b)
{
    rdb_builder_init(b);
    rdb_builder_header(b, 9);
    rdb_builder_selectdb(b, 0);
    rdb_builder_key(b, RDB_TYPE_STREAM_LISTPACKS, "st");
    rdb_builder_len(b, 1); /* listpack nodes */
    const char *const fields[] = {"f"};
    struct stream_node_builder node;
    stream_node_builder_init(&node, 1, 0, 2, 0, 1, fields);
    const char *const v1[] = {"v"};
    const char *const v2[] = {"w"};
    stream_node_builder_add(&node, RDB_STREAM_ITEM_FLAG_SAMEFIELDS, 1, 0, 1, v1);
    stream_node_builder_add(&node, RDB_STREAM_ITEM_FLAG_SAMEFIELDS, 1, 1, 1, v2);
    stream_node_builder_write(&node, b);
    stream_node_builder_deinit(&node);
    rdb_builder_len(b, 2); /* length */
    rdb_builder_len(b, 1); /* last id */
    rdb_builder_len(b, 1);
    rdb_builder_len(b, 2); /* groups */
    rdb_builder_cstr(b, "g1");
    rdb_builder_len(b, 1); /* last delivered id */
    rdb_builder_len(b, 1);
    rdb_builder_len(b, 1); /* PEL */
    rdb_builder_stream_id_raw(b, 1, 0);
    rdb_builder_ms(b, 1700000000000);
    rdb_builder_len(b, 2);
    rdb_builder_len(b, 1); /* consumers */
    rdb_builder_cstr(b, "c1");
    rdb_builder_ms(b, 1700000000001);
    rdb_builder_len(b, 1);
    rdb_builder_stream_id_raw(b, 1, 0);
    rdb_builder_cstr(b, "g2");
    rdb_builder_len(b, 0);
    rdb_builder_len(b, 0);
    rdb_builder_len(b, 0); /* PEL */
    rdb_builder_len(b, 0); /* consumers */
    rdb_builder_eof(b);
}

static const char stream_line[] =
    "{\"db\":0,\"key\":\"st\",\"type\":\"stream\",\"encoding\":\"stream-listpacks\",\"expire_ms\":"
    "null,\"value\":{\"entries\":[{\"id\":\"1-0\",\"fields\":[\"f\",\"v\"]},{\"id\":\"1-1\","
    "\"fields\":[\"f\",\"w\"]}],\"length\":2,\"last_id\":\"1-1\",\"groups\":[{\"name\":\"g1\","
    "\"last_delivered_id\":\"1-1\",\"entries_read\":null,\"pel\":[{\"id\":\"1-0\","
    "\"delivery_time_ms\":1700000000000,\"delivery_count\":2}],\"consumers\":[{\"name\":\"c1\","
    "\"seen_time_ms\":1700000000001,\"active_time_ms\":null,\"pel\":[\"1-0\"]}]},{\"name\":"
    "\"g2\",\"last_delivered_id\":\"0-0\",\"entries_read\":null,\"pel\":[],\"consumers\":[]}]}}\n";

/* REDIS0012: a function library and a listpack hash with one field TTL (type 25). */
static void build_functions_and_field_ttls(struct rdb_builder *b)
{
    rdb_builder_init(b);
    rdb_builder_header(b, 12);
    rdb_builder_function(b, "#!lua name=lib\nredis.register_function('f', function() return 1 "
                            "end)");
    rdb_builder_selectdb(b, 0);
    struct listpack_builder lp;
    listpack_builder_init(&lp);
    listpack_builder_add_cstr(&lp, "f1");
    listpack_builder_add_cstr(&lp, "v1");
    listpack_builder_add_int(&lp, 1800000000000);
    listpack_builder_add_cstr(&lp, "f2");
    listpack_builder_add_cstr(&lp, "v2");
    listpack_builder_add_int(&lp, 0);
    struct rdb_builder blob;
    rdb_builder_init(&blob);
    listpack_builder_finish(&lp, &blob);
    rdb_builder_key(b, RDB_TYPE_HASH_LISTPACK_EX, "hx");
    rdb_builder_ms(b, 1800000000000);
    rdb_builder_str_blob(b, &blob);
    rdb_builder_deinit(&blob);
    listpack_builder_deinit(&lp);
    rdb_builder_eof(b);
}

static const char functions_and_field_ttls_lines[] =
    "{\"function\":\"#!lua name=lib\\u000aredis.register_function('f', function() return 1 "
    "end)\"}\n"
    "{\"db\":0,\"key\":\"hx\",\"type\":\"hash\",\"encoding\":\"hash-listpack-ex\",\"expire_ms\":"
    "null,\"value\":{\"f1\":\"v1\",\"f2\":\"v2\"},\"field_expire_ms\":{\"f1\":1800000000000}}\n";

/* ---- key lines ----------------------------------------------------------- */

static void check_lines(const struct rdb_builder *b, const char *want)
{
    char *path = write_rdb(b);
    struct run r = run_ringsync("inspect '%s'", path);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_str_eq(r.out, want);
    cr_assert_str_eq(r.err, "");
    run_free(&r);
    remove_temp(path);
}

Test(inspect, strings_print_one_line_each_with_expiry_and_escaping)
{
    struct rdb_builder b;
    build_strings(&b);
    check_lines(&b, strings_lines);
    rdb_builder_deinit(&b);
}

Test(inspect, compact_collections_print_their_elements_and_empty_ones_are_skipped)
{
    struct rdb_builder b;
    size_t empty_offset = build_collections(&b);
    char *path = write_rdb(&b);
    struct run r = run_ringsync("inspect '%s'", path);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_str_eq(r.out, collections_lines);
    char want_err[256];
    snprintf(want_err, sizeof(want_err),
             "ringsync: inspect: skipping empty set key 'emp' in db 0 at offset %zu (Redis "
             "skips it too)\n",
             empty_offset);
    cr_assert_str_eq(r.err, want_err);
    run_free(&r);
    remove_temp(path);
    rdb_builder_deinit(&b);
}

Test(inspect, stream_members_follow_file_order_with_groups_and_consumers)
{
    struct rdb_builder b;
    build_stream(&b);
    check_lines(&b, stream_line);
    rdb_builder_deinit(&b);
}

Test(inspect, function_libraries_and_hash_field_ttls)
{
    struct rdb_builder b;
    build_functions_and_field_ttls(&b);
    check_lines(&b, functions_and_field_ttls_lines);
    rdb_builder_deinit(&b);
}

Test(inspect, dash_reads_standard_input)
{
    struct rdb_builder b;
    build_strings(&b);
    char *path = write_rdb(&b);
    struct run r = run_ringsync("inspect - <'%s'", path);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, strings_lines);
    run_free(&r);
    remove_temp(path);
    rdb_builder_deinit(&b);
}

Test(inspect, bytes_after_the_snapshot_are_ignored_with_a_warning)
{
    struct rdb_builder b;
    build_strings(&b);
    size_t end = b.len;
    rdb_builder_bytes(&b, "trailing", 8);
    char *path = write_rdb(&b);
    struct run r = run_ringsync("inspect '%s'", path);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, strings_lines);
    char want_err[512];
    snprintf(want_err, sizeof(want_err),
             "ringsync: inspect: %s: ignoring 8 bytes after the end of the snapshot at offset "
             "%zu (Redis ignores them too)\n",
             path, end);
    cr_assert_str_eq(r.err, want_err);
    run_free(&r);
    remove_temp(path);
    rdb_builder_deinit(&b);
}

/* ---- bad files ----------------------------------------------------------- */

Test(inspect, truncated_file_keeps_printed_lines_and_exits_1)
{
    struct rdb_builder b;
    build_strings(&b);
    /* Cut inside the last key's value: three lines are complete. */
    char *path = write_temp(b.p, b.len - 10);
    struct run r = run_ringsync("inspect '%s'", path);
    cr_assert_eq(r.code, 1);
    const char *nl = strchr(strings_lines, '\n');
    nl = strchr(nl + 1, '\n');
    nl = strchr(nl + 1, '\n');
    cr_assert_eq(r.out_len, (size_t)(nl + 1 - strings_lines));
    cr_assert(memcmp(r.out, strings_lines, r.out_len) == 0);
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "ringsync: inspect: %s: truncated error at offset ", path);
    cr_assert(strncmp(r.err, prefix, strlen(prefix)) == 0, "stderr: %s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
    run_free(&r);
    remove_temp(path);
    rdb_builder_deinit(&b);
}

Test(inspect, bad_checksum_is_an_error)
{
    struct rdb_builder b;
    build_strings(&b);
    b.p[b.len - 1] ^= 0x55;
    char *path = write_rdb(&b);
    struct run r = run_ringsync("inspect '%s'", path);
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.out, strings_lines, "the keys were printed before the trailer");
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "ringsync: inspect: %s: checksum error at offset ", path);
    cr_assert(strncmp(r.err, prefix, strlen(prefix)) == 0, "stderr: %s", r.err);
    run_free(&r);
    remove_temp(path);
    rdb_builder_deinit(&b);
}

Test(inspect, not_an_rdb_file_is_a_format_error)
{
    char *path = write_temp("GET / HTTP/1.1\r\n\r\n", 18);
    struct run r = run_ringsync("inspect '%s'", path);
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.out, "");
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "ringsync: inspect: %s: format error at offset 0: ", path);
    cr_assert(strncmp(r.err, prefix, strlen(prefix)) == 0, "stderr: %s", r.err);
    run_free(&r);
    remove_temp(path);
}

Test(inspect, corrupt_testdata_ziplist_is_rejected_cleanly)
{
    const char *dir = getenv("RS_TESTDATA");
    cr_assert_not_null(dir);
    struct run r = run_ringsync("inspect '%s/rdb/corrupt_ziplist.rdb'", dir);
    cr_assert_eq(r.code, 1, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "corrupt_ziplist.rdb: ") != NULL, "stderr: %s", r.err);
    cr_assert(strstr(r.err, " error at offset ") != NULL, "stderr: %s", r.err);
    run_free(&r);
}

Test(inspect, missing_file_exits_1)
{
    struct run r = run_ringsync("inspect /nonexistent/dir/dump.rdb");
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.out, "");
    cr_assert_str_eq(
        r.err,
        "ringsync: inspect: cannot open /nonexistent/dir/dump.rdb: No such file or directory\n");
    run_free(&r);
}

Test(inspect, a_directory_is_unreadable)
{
    struct run r = run_ringsync("inspect /tmp");
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.err, "ringsync: inspect: cannot read /tmp: Is a directory\n");
    run_free(&r);
}

/* ---- summary ------------------------------------------------------------- */

/* True if text holds the line made by fmt (without its newline). */
static bool has_line(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool has_line(const char *text, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    line[n] = '\n';
    line[n + 1] = '\0';
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if (p == text || p[-1] == '\n')
            return true;
    }
    return false;
}

Test(inspect, summary_reports_version_aux_and_key_counts)
{
    struct rdb_builder b;
    build_strings(&b);
    char *path = write_rdb(&b);
    struct run r = run_ringsync("inspect --summary '%s'", path);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert(has_line(r.out, "%-20s %s", "file", path), "%s", r.out);
    cr_assert(has_line(r.out, "%-20s Redis RDB version 9", "format"), "%s", r.out);
    cr_assert(has_line(r.out, "  %-18s = 5.0.7", "redis-ver"), "%s", r.out);
    cr_assert(has_line(r.out, "%-20s 4 (1 with an expiry, 0 empty skipped)", "keys"), "%s", r.out);
    cr_assert(strstr(r.out, " string 4 list 0 ") != NULL, "%s", r.out);
    cr_assert(has_line(r.out, "%-20s %zu", "total bytes", b.len), "%s", r.out);
    cr_assert(strstr(r.out, "'\\xff\\x00k'") != NULL, "the binary key is among the largest: %s",
              r.out);
    cr_assert(strchr(r.out, '{') == NULL, "no JSON lines");
    run_free(&r);
    remove_temp(path);
    rdb_builder_deinit(&b);
}

Test(inspect, summary_counts_databases_elements_and_empty_keys)
{
    struct rdb_builder b;
    build_collections(&b);
    char *path = write_rdb(&b);
    struct run r = run_ringsync("inspect --summary '%s'", path);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert(has_line(r.out, "%-20s 4 (0 with an expiry, 1 empty skipped)", "keys"), "%s", r.out);
    cr_assert(has_line(r.out, "%-20s 2", "databases"), "%s", r.out);
    /* db 2 holds the zset (3 members) and the hash (2 fields). */
    cr_assert(strstr(r.out, " 3  zset    'z'\n") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, " 2  hash    'h'\n") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, " 3  list    'l'\n") != NULL, "%s", r.out);
    run_free(&r);
    remove_temp(path);
    rdb_builder_deinit(&b);
}

/* ---- usage --------------------------------------------------------------- */

Test(inspect, bad_usage_exits_2)
{
    struct run r = run_ringsync("inspect");
    cr_assert_eq(r.code, 2);
    cr_assert(strncmp(r.err, "ringsync: inspect: missing FILE\nusage: ", 39) == 0, "%s", r.err);
    run_free(&r);
    r = run_ringsync("inspect --bogus x.rdb");
    cr_assert_eq(r.code, 2);
    run_free(&r);
    r = run_ringsync("inspect a.rdb b.rdb");
    cr_assert_eq(r.code, 2);
    run_free(&r);
    r = run_ringsync("nosuchcommand");
    cr_assert_eq(r.code, 2);
    cr_assert(strstr(r.err, "unknown command 'nosuchcommand'") != NULL, "%s", r.err);
    run_free(&r);
    r = run_ringsync("%s", "");
    cr_assert_eq(r.code, 2);
    run_free(&r);
}

Test(inspect, help_and_version_exit_0)
{
    struct run r = run_ringsync("inspect --help");
    cr_assert_eq(r.code, 0);
    cr_assert(strncmp(r.out, "usage: ringsync inspect ", 24) == 0, "%s", r.out);
    run_free(&r);
    r = run_ringsync("--help");
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "inspect") != NULL, "%s", r.out);
    run_free(&r);
    r = run_ringsync("--version");
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "ringsync 0.1.0\n");
    run_free(&r);
}
