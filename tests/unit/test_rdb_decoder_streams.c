/* test_rdb_decoder_streams.c - the RDB decoder on streams (types 15, 19, 21)
 * and module values (type 7), built byte by byte from t_stream.c's listpack
 * layout and rdb.c's stream and module records.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdb_builder.h"
#include "rdb_collector.h"
#include "rdb_decoder.h"
#include "rdb_format.h"

#define T0 UINT64_C(1700000000000)

static void begin(struct rdb_builder *b, int version)
{
    rdb_builder_init(b);
    rdb_builder_header(b, version);
}

/* A stream of two listpack nodes:
 *
 *   node T0-0, master fields f1 f2, 3 live entries and 1 deleted:
 *     T0-0    SAMEFIELDS          f1=v1 f2=v2
 *     T0-1    SAMEFIELDS|DELETED  f1=x  f2=y      (a tombstone, flagged deleted)
 *     T0+5-0  own fields          name=alice
 *     T0+5-1  SAMEFIELDS          f1=""  f2=zz
 *   node T0+10-0, master field "a":
 *     T0+10-0 SAMEFIELDS          a=1              (the value an integer entry)
 *     T0+10-3 own fields          7=-20            (integer field and value)
 *
 * then length 5, last id T0+10-3, (19, 21) first id T0-0, max deleted T0-1,
 * entries added 6; group g1 (last delivered T0+5-0, 3 read) with a PEL of two
 * and consumers alice and bob; group g2, empty. */
static void build_stream(struct rdb_builder *b, int type)
{
    static const char *const master1[] = {"f1", "f2"};
    static const char *const e1[] = {"v1", "v2"};
    static const char *const e2[] = {"x", "y"};
    static const char *const e3[] = {"name", "alice"};
    static const char *const e4[] = {"", "zz"};
    static const char *const master2[] = {"a"};
    static const char *const e5[] = {"1"};
    static const char *const e6[] = {"7", "-20"};
    const int same = RDB_STREAM_ITEM_FLAG_SAMEFIELDS;
    const int deleted = RDB_STREAM_ITEM_FLAG_DELETED;

    rdb_builder_key(b, (uint8_t)type, "s");
    rdb_builder_len(b, 2);
    struct stream_node_builder n;
    stream_node_builder_init(&n, T0, 0, 3, 1, 2, master1);
    stream_node_builder_add(&n, same, T0, 0, 2, e1);
    stream_node_builder_add(&n, same | deleted, T0, 1, 2, e2);
    stream_node_builder_add(&n, 0, T0 + 5, 0, 1, e3);
    stream_node_builder_add(&n, same, T0 + 5, 1, 2, e4);
    stream_node_builder_write(&n, b);
    stream_node_builder_deinit(&n);
    stream_node_builder_init(&n, T0 + 10, 0, 2, 0, 1, master2);
    stream_node_builder_add(&n, same, T0 + 10, 0, 1, e5);
    stream_node_builder_add(&n, 0, T0 + 10, 3, 1, e6);
    stream_node_builder_write(&n, b);
    stream_node_builder_deinit(&n);

    rdb_builder_len(b, 5);
    rdb_builder_len(b, T0 + 10);
    rdb_builder_len(b, 3);
    if (type >= RDB_TYPE_STREAM_LISTPACKS_2) {
        rdb_builder_len(b, T0);
        rdb_builder_len(b, 0);
        rdb_builder_len(b, T0);
        rdb_builder_len(b, 1);
        rdb_builder_len(b, 6);
    }

    rdb_builder_len(b, 2); /* groups */
    rdb_builder_cstr(b, "g1");
    rdb_builder_len(b, T0 + 5);
    rdb_builder_len(b, 0);
    if (type >= RDB_TYPE_STREAM_LISTPACKS_2)
        rdb_builder_len(b, 3);
    rdb_builder_len(b, 2); /* PEL */
    rdb_builder_stream_id_raw(b, T0, 0);
    rdb_builder_ms(b, (int64_t)T0 + 1000);
    rdb_builder_len(b, 1);
    rdb_builder_stream_id_raw(b, T0 + 5, 0);
    rdb_builder_ms(b, (int64_t)T0 + 2000);
    rdb_builder_len(b, 3);
    rdb_builder_len(b, 2); /* consumers */
    rdb_builder_cstr(b, "alice");
    rdb_builder_ms(b, (int64_t)T0 + 3000);
    if (type >= RDB_TYPE_STREAM_LISTPACKS_3)
        rdb_builder_ms(b, (int64_t)T0 + 2500);
    rdb_builder_len(b, 1);
    rdb_builder_stream_id_raw(b, T0, 0);
    rdb_builder_cstr(b, "bob");
    rdb_builder_ms(b, (int64_t)T0 + 4000);
    if (type >= RDB_TYPE_STREAM_LISTPACKS_3)
        rdb_builder_ms(b, (int64_t)T0 + 4000);
    rdb_builder_len(b, 1);
    rdb_builder_stream_id_raw(b, T0 + 5, 0);

    rdb_builder_cstr(b, "g2");
    rdb_builder_len(b, 0);
    rdb_builder_len(b, 0);
    if (type >= RDB_TYPE_STREAM_LISTPACKS_2)
        rdb_builder_len(b, 0);
    rdb_builder_len(b, 0); /* PEL */
    rdb_builder_len(b, 0); /* consumers */
}

static const char stream_entries[] = " X 1700000000000-0 \"f1\" \"v1\" \"f2\" \"v2\"\n"
                                     " X 1700000000000-1 deleted \"f1\" \"x\" \"f2\" \"y\"\n"
                                     " X 1700000000005-0 \"name\" \"alice\"\n"
                                     " X 1700000000005-1 \"f1\" \"\" \"f2\" \"zz\"\n"
                                     " X 1700000000010-0 \"a\" \"1\"\n"
                                     " X 1700000000010-3 \"7\" \"-20\"\n";

Test(rdb_decoder_streams, stream_listpacks3_yields_entries_groups_pels_and_consumers)
{
    struct rdb_builder b;
    begin(&b, 11);
    build_stream(&b, RDB_TYPE_STREAM_LISTPACKS_3);
    rdb_builder_eof(&b);
    char want[2048];
    snprintf(want, sizeof(want),
             "HEADER 11 redis\n"
             "KEY 0 \"s\" stream 21\n"
             "%s"
             " XMETA len=5 last=1700000000010-3 first=1700000000000-0 maxdel=1700000000000-1 "
             "added=6\n"
             " XGROUP \"g1\" last=1700000000005-0 read=3\n"
             " XPEL 1700000000000-0 time=1700000001000 count=1\n"
             " XPEL 1700000000005-0 time=1700000002000 count=3\n"
             " XCONSUMER \"alice\" seen=1700000003000 active=1700000002500\n"
             " XCPEL 1700000000000-0\n"
             " XCONSUMER \"bob\" seen=1700000004000 active=1700000004000\n"
             " XCPEL 1700000000005-0\n"
             " XGROUP \"g2\" last=0-0 read=0\n"
             "END\n"
             "EOF crc\n",
             stream_entries);
    expect_log(&b, NULL, want);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, stream_listpacks2_has_entries_read_but_no_active_time)
{
    struct rdb_builder b;
    begin(&b, 10);
    build_stream(&b, RDB_TYPE_STREAM_LISTPACKS_2);
    rdb_builder_eof(&b);
    char want[2048];
    snprintf(want, sizeof(want),
             "HEADER 10 redis\n"
             "KEY 0 \"s\" stream 19\n"
             "%s"
             " XMETA len=5 last=1700000000010-3 first=1700000000000-0 maxdel=1700000000000-1 "
             "added=6\n"
             " XGROUP \"g1\" last=1700000000005-0 read=3\n"
             " XPEL 1700000000000-0 time=1700000001000 count=1\n"
             " XPEL 1700000000005-0 time=1700000002000 count=3\n"
             " XCONSUMER \"alice\" seen=1700000003000 active=-1\n"
             " XCPEL 1700000000000-0\n"
             " XCONSUMER \"bob\" seen=1700000004000 active=-1\n"
             " XCPEL 1700000000005-0\n"
             " XGROUP \"g2\" last=0-0 read=0\n"
             "END\n"
             "EOF crc\n",
             stream_entries);
    expect_log(&b, NULL, want);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, stream_listpacks_v1_has_no_v2_fields)
{
    struct rdb_builder b;
    begin(&b, 9);
    build_stream(&b, RDB_TYPE_STREAM_LISTPACKS);
    rdb_builder_eof(&b);
    char want[2048];
    snprintf(want, sizeof(want),
             "HEADER 9 redis\n"
             "KEY 0 \"s\" stream 15\n"
             "%s"
             " XMETA len=5 last=1700000000010-3\n"
             " XGROUP \"g1\" last=1700000000005-0 read=-1\n"
             " XPEL 1700000000000-0 time=1700000001000 count=1\n"
             " XPEL 1700000000005-0 time=1700000002000 count=3\n"
             " XCONSUMER \"alice\" seen=1700000003000 active=-1\n"
             " XCPEL 1700000000000-0\n"
             " XCONSUMER \"bob\" seen=1700000004000 active=-1\n"
             " XCPEL 1700000000005-0\n"
             " XGROUP \"g2\" last=0-0 read=-1\n"
             "END\n"
             "EOF crc\n",
             stream_entries);
    expect_log(&b, NULL, want);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, stream_items_come_in_small_chunks_the_same_whatever_the_split)
{
    struct rdb_decoder_config cfg = {.chunk_items = 2, .raw_max = 64, .string_piece = 16};
    struct rdb_builder b;
    begin(&b, 11);
    build_stream(&b, RDB_TYPE_STREAM_LISTPACKS_3);
    rdb_builder_eof(&b);
    struct decode_result r;
    const char *log = decode_expect_done(b.p, b.len, &cfg, &r);
    cr_assert(strstr(log, stream_entries) != NULL, "%s", log);
    cr_assert(!r.col.keys[0].has_raw, "the stream is past raw_max");
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, empty_stream_with_a_group_is_not_empty)
{
    /* XADD then XDEL of every entry, or XGROUP CREATE MKSTREAM: no nodes, but
     * a stream with its ids and groups, which Redis keeps. */
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STREAM_LISTPACKS_3, "es");
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, 5);
    rdb_builder_len(&b, 1);
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, 5);
    rdb_builder_len(&b, 1);
    rdb_builder_len(&b, 1);
    rdb_builder_len(&b, 1);
    rdb_builder_cstr(&b, "g");
    rdb_builder_len(&b, 5);
    rdb_builder_len(&b, 1);
    rdb_builder_len(&b, 1);
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, 0);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "KEY 0 \"es\" stream 21\n"
               " XMETA len=0 last=5-1 first=0-0 maxdel=5-1 added=1\n"
               " XGROUP \"g\" last=5-1 read=1\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, stream_node_key_of_wrong_size_is_refused)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STREAM_LISTPACKS_3, "badnode");
    rdb_builder_len(&b, 1);
    size_t at = b.len; /* the node key's string */
    rdb_builder_str(&b, "0123456789abcde", 15);
    rdb_builder_cstr(&b, "xx");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, at, "offset %llu, the node key is at %zu (%s)",
                 (unsigned long long)r.err.offset, at, r.err.msg);
    cr_assert(strstr(r.err.msg, "badnode") != NULL, "%s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, stream_entry_with_no_fields_is_read_without_undefined_behaviour)
{
    /* A master entry with no fields and a SAMEFIELDS entry: no field to copy
     * (found by fuzz_rdb_decoder: NULL + 0 pointer arithmetic under UBSan).
     * Redis writes no such entry but loads one without deep sanitization, so
     * the decoder may deliver it or refuse it, without undefined behaviour. */
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STREAM_LISTPACKS_3, "nofields");
    rdb_builder_len(&b, 1);
    struct stream_node_builder n;
    stream_node_builder_init(&n, T0, 0, 1, 0, 0, NULL);
    stream_node_builder_add(&n, RDB_STREAM_ITEM_FLAG_SAMEFIELDS, T0, 0, 0, NULL);
    stream_node_builder_write(&n, &b);
    stream_node_builder_deinit(&n);
    rdb_builder_len(&b, 1);  /* length */
    rdb_builder_len(&b, T0); /* last id */
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, T0); /* first id */
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, 0); /* max deleted id */
    rdb_builder_len(&b, 0);
    rdb_builder_len(&b, 1); /* entries added */
    rdb_builder_len(&b, 0); /* groups */
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_all(b.p, b.len, NULL, SPLIT_ALL, &r);
    if (r.rc == RS_DONE) {
        cr_assert_str_eq(rdb_collector_log(&r.col),
                         "HEADER 11 redis\n"
                         "KEY 0 \"nofields\" stream 21\n"
                         " X 1700000000000-0\n"
                         " XMETA len=1 last=1700000000000-0 first=1700000000000-0 maxdel=0-0 "
                         "added=1\n"
                         "END\n"
                         "EOF crc\n");
    } else {
        cr_assert_eq(r.rc, RS_ERR);
        cr_assert_eq(r.err.code, RS_E_FORMAT, "%s", r.err.msg);
        cr_assert(strstr(r.err.msg, "nofields") != NULL, "%s", r.err.msg);
    }
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

/* ---- Modules ------------------------------------------------------------ */

Test(rdb_decoder_streams, module_value_yields_its_id_and_raw_bytes)
{
    struct rdb_builder b;
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_MODULE_2, "m");
    size_t start = b.len;
    rdb_builder_len(&b, rdb_module_id("MyModType", 3));
    rdb_builder_module_uint(&b, 5);
    rdb_builder_module_sint(&b, -7);
    rdb_builder_module_float(&b, 1.5f);
    rdb_builder_module_double(&b, 2.25);
    rdb_builder_module_string(&b, "hello", 5);
    rdb_builder_len(&b, RDB_MODULE_OPCODE_STRING);
    rdb_builder_str_lzf(&b, "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm", 32);
    rdb_builder_module_eof(&b);
    size_t end = b.len;
    rdb_builder_key(&b, RDB_TYPE_STRING, "after");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    struct decode_result r;
    const char *log = decode_expect_done(b.p, b.len, NULL, &r);
    cr_assert_str_eq(log, "HEADER 9 redis\n"
                          "KEY 0 \"m\" module 7\n"
                          " MODULE \"MyModType\" encver=3\n"
                          "END\n"
                          "KEY 0 \"after\" string 0 len=1\n"
                          " S \"v\"\n"
                          "END\n"
                          "EOF crc\n");
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "m");
    cr_assert(k->has_raw);
    cr_assert_eq(k->raw_len, end - start);
    cr_assert(memcmp(k->raw, b.p + start, end - start) == 0, "raw is the value's bytes");
    cr_assert_eq(k->encoded_size, end - start);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, module_id_names_decode_every_charset_symbol)
{
    static const char *const names[] = {"ABCDEFGHI", "jklmnopqr", "stuvwxyz0", "123456789",
                                        "-_-_-_-_-"};
    struct rdb_builder b;
    begin(&b, 9);
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof(key), "m%d", i);
        rdb_builder_key(&b, RDB_TYPE_MODULE_2, key);
        rdb_builder_len(&b, rdb_module_id(names[i], (unsigned)(i * 255)));
        rdb_builder_module_eof(&b);
    }
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 9 redis\n"
               "KEY 0 \"m0\" module 7\n"
               " MODULE \"ABCDEFGHI\" encver=0\n"
               "END\n"
               "KEY 0 \"m1\" module 7\n"
               " MODULE \"jklmnopqr\" encver=255\n"
               "END\n"
               "KEY 0 \"m2\" module 7\n"
               " MODULE \"stuvwxyz0\" encver=510\n"
               "END\n"
               "KEY 0 \"m3\" module 7\n"
               " MODULE \"123456789\" encver=765\n"
               "END\n"
               "KEY 0 \"m4\" module 7\n"
               " MODULE \"-_-_-_-_-\" encver=1020\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, module_value_past_raw_max_has_no_raw_but_its_size)
{
    struct rdb_decoder_config cfg = {.raw_max = 32, .string_piece = 16};
    char big[300];
    memset(big, 'q', sizeof(big));
    struct rdb_builder b;
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_MODULE_2, "bigm");
    size_t start = b.len;
    rdb_builder_len(&b, rdb_module_id("MyModType", 1));
    rdb_builder_module_string(&b, big, sizeof(big));
    rdb_builder_module_eof(&b);
    size_t end = b.len;
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_done(b.p, b.len, &cfg, &r);
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "bigm");
    cr_assert(!k->has_raw);
    cr_assert_eq(k->encoded_size, end - start);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_streams, module_value_with_unknown_opcode_is_refused)
{
    struct rdb_builder b;
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_MODULE_2, "badmod");
    rdb_builder_len(&b, rdb_module_id("MyModType", 1));
    rdb_builder_module_uint(&b, 1);
    size_t at = b.len;
    rdb_builder_len(&b, 9);
    rdb_builder_len(&b, 1);
    rdb_builder_module_eof(&b);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, at, "offset %llu, the opcode is at %zu (%s)",
                 (unsigned long long)r.err.offset, at, r.err.msg);
    cr_assert(strstr(r.err.msg, "badmod") != NULL, "%s", r.err.msg);
    cr_assert(strcasestr(r.err.msg, "module") != NULL, "%s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}
