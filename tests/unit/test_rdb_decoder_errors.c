/* test_rdb_decoder_errors.c - the RDB decoder on bad input: each error has
 * the right code, the offset where the problem is, and a message naming the
 * key and the encoding; the same whatever the split of the input.
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

static void begin(struct rdb_builder *b, int version)
{
    rdb_builder_init(b);
    rdb_builder_header(b, version);
}

static void expect_msg_names(const struct rs_error *err, const char *key, const char *what)
{
    cr_assert(strstr(err->msg, key) != NULL, "the message names the key '%s': %s", key, err->msg);
    cr_assert(strcasestr(err->msg, what) != NULL, "the message names '%s': %s", what, err->msg);
}

/* ---- Header ------------------------------------------------------------- */

Test(rdb_decoder_errors, bad_magic_is_a_format_error_at_offset_0)
{
    static const char *const inputs[] = {"XEDIS0011", "redis0011",
                                         ("\xff"
                                          "EDIS0011")};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct decode_result r;
        decode_expect_error(inputs[i], 9, NULL, RS_E_FORMAT, &r);
        cr_assert_eq(r.err.offset, 0, "%s: offset %llu", inputs[i],
                     (unsigned long long)r.err.offset);
        cr_assert_eq(r.col.events, 0, "no event before the header is valid");
        decode_result_deinit(&r);
    }
}

Test(rdb_decoder_errors, bad_magic_later_in_the_word_is_reported_at_the_header)
{
    struct decode_result r;
    decode_expect_error("REDIX0011", 9, NULL, RS_E_FORMAT, &r);
    /* The header starts at 0; the first wrong byte is at 4. Either names it. */
    cr_assert(r.err.offset == 0 || r.err.offset == 4, "offset %llu",
              (unsigned long long)r.err.offset);
    decode_result_deinit(&r);
}

static void expect_version_refused(const char *header, int code, uint64_t digits_at)
{
    struct rdb_builder b;
    rdb_builder_init(&b);
    rdb_builder_bytes(&b, header, 9);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, code, &r);
    cr_assert(r.err.offset == 0 || r.err.offset == digits_at, "%s: offset %llu (%s)", header,
              (unsigned long long)r.err.offset, r.err.msg);
    cr_assert_eq(r.col.events, 0, "%s: no HEADER event for a refused version", header);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, unsupported_versions_are_refused)
{
    expect_version_refused("REDIS0013", RS_E_UNSUPPORTED, 5); /* Redis 8.6 */
    expect_version_refused("REDIS0079", RS_E_UNSUPPORTED, 5);
    expect_version_refused("REDIS0080", RS_E_UNSUPPORTED, 5); /* 80 is Valkey's, with VALKEY */
    expect_version_refused("VALKEY081", RS_E_UNSUPPORTED, 6);
}

Test(rdb_decoder_errors, versions_outside_the_format_are_refused)
{
    /* Offset: the header, or the version digits, or the first bad digit. */
    static const struct {
        const char *header;
        uint64_t at[3];
    } cases[] = {
        {"REDIS0000", {0, 5, 5}},
        {"REDIS00a1", {7, 7, 7}}, /* not a number: the bad digit */
        {"VALKEY079", {0, 6, 6}},
        {"VALKEY011", {0, 6, 6}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rdb_builder b;
        rdb_builder_init(&b);
        rdb_builder_bytes(&b, cases[i].header, 9);
        rdb_builder_eof(&b);
        struct decode_result r;
        decode_all(b.p, b.len, NULL, SPLIT_ALL, &r);
        cr_assert_eq(r.rc, RS_ERR, "%s accepted", cases[i].header);
        cr_assert(r.err.code == RS_E_FORMAT || r.err.code == RS_E_UNSUPPORTED, "%s: %s",
                  cases[i].header, rs_error_code_name(r.err.code));
        uint64_t off = r.err.offset;
        cr_assert(off == cases[i].at[0] || off == cases[i].at[1] || off == cases[i].at[2],
                  "%s: offset %llu (%s)", cases[i].header, (unsigned long long)off, r.err.msg);
        cr_assert_eq(r.col.events, 0, "%s: no HEADER event", cases[i].header);
        decode_result_deinit(&r);
        rdb_builder_deinit(&b);
    }
}

/* ---- Opcodes and types -------------------------------------------------- */

Test(rdb_decoder_errors, unknown_opcode_is_refused_at_its_offset)
{
    /* 0xF3 is Redis 8.6's KEY_META (RDB 13) and Valkey 9's SLOT_IMPORT: in a
     * REDIS0011 file it means nothing. */
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "before");
    rdb_builder_cstr(&b, "ok");
    size_t at = b.len;
    rdb_builder_byte(&b, 0xF3);
    rdb_builder_len(&b, 1);
    rdb_builder_key(&b, RDB_TYPE_STRING, "after");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_all(b.p, b.len, NULL, SPLIT_ALL, &r);
    cr_assert_eq(r.rc, RS_ERR);
    cr_assert_eq(r.err.code, RS_E_FORMAT, "%s", rs_error_code_name(r.err.code));
    cr_assert_eq(r.err.offset, at, "offset %llu, the opcode is at %zu (%s)",
                 (unsigned long long)r.err.offset, at, r.err.msg);
    cr_assert(strstr(r.err.msg, "0xf3") != NULL || strstr(r.err.msg, "0xF3") != NULL ||
                  strstr(r.err.msg, "243") != NULL,
              "the message quotes the byte: %s", r.err.msg);
    cr_assert(strstr(rdb_collector_log(&r.col), "KEY 0 \"before\"") != NULL,
              "the key before was delivered");
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, unknown_value_types_are_refused_at_the_type_byte)
{
    static const uint8_t types[] = {8, 26, 30, 200};
    for (size_t i = 0; i < sizeof(types); i++) {
        struct rdb_builder b;
        begin(&b, 11);
        size_t at = b.len;
        rdb_builder_key(&b, types[i], "k");
        rdb_builder_cstr(&b, "v");
        rdb_builder_eof(&b);
        struct decode_result r;
        decode_all(b.p, b.len, NULL, SPLIT_ALL, &r);
        cr_assert_eq(r.rc, RS_ERR, "type %d accepted", types[i]);
        cr_assert_eq(r.err.code, RS_E_FORMAT, "type %d: %s", types[i],
                     rs_error_code_name(r.err.code));
        cr_assert_eq(r.err.offset, at, "type %d: offset %llu (%s)", types[i],
                     (unsigned long long)r.err.offset, r.err.msg);
        decode_result_deinit(&r);
        rdb_builder_deinit(&b);
    }
}

Test(rdb_decoder_errors, redis_hash_types_in_a_valkey_file_are_refused)
{
    struct rdb_builder b;
    rdb_builder_init(&b);
    rdb_builder_header_valkey(&b, 80);
    size_t at = b.len;
    rdb_builder_key(&b, RDB_TYPE_HASH_METADATA, "h");
    rdb_builder_ms(&b, 0);
    rdb_builder_len(&b, 0);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_all(b.p, b.len, NULL, SPLIT_ALL, &r);
    cr_assert_eq(r.rc, RS_ERR);
    cr_assert_eq(r.err.code, RS_E_FORMAT, "%s", rs_error_code_name(r.err.code));
    cr_assert_eq(r.err.offset, at, "offset %llu (%s)", (unsigned long long)r.err.offset, r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, module_pre_ga_type_and_function_pre_ga_are_unsupported)
{
    struct rdb_builder b;
    begin(&b, 8);
    size_t at = b.len;
    rdb_builder_key(&b, RDB_TYPE_MODULE_PRE_GA, "m");
    rdb_builder_len(&b, rdb_module_id("MyModType", 1));
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_UNSUPPORTED, &r);
    /* The type byte says 6; the value is where it cannot be read (reading the
     * key first lets the message name it). */
    cr_assert(r.err.offset == at || r.err.offset == at + 3, "offset %llu (%s)",
              (unsigned long long)r.err.offset, r.err.msg);
    cr_assert(strstr(r.err.msg, "'m'") != NULL || strstr(r.err.msg, "\"m\"") != NULL,
              "the message names the key: %s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);

    begin(&b, 10);
    at = b.len;
    rdb_builder_byte(&b, RDB_OPCODE_FUNCTION_PRE_GA);
    rdb_builder_cstr(&b, "name");
    rdb_builder_eof(&b);
    decode_expect_error(b.p, b.len, NULL, RS_E_UNSUPPORTED, &r);
    cr_assert_eq(r.err.offset, at, "offset %llu (%s)", (unsigned long long)r.err.offset, r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

/* ---- Trailer ------------------------------------------------------------ */

Test(rdb_decoder_errors, wrong_crc_is_a_checksum_error_at_the_trailer)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    b.p[b.len - 3] ^= 0x01;
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_CHECKSUM, &r);
    cr_assert_eq(r.err.offset, b.len - 8, "offset %llu, the CRC is at %zu",
                 (unsigned long long)r.err.offset, b.len - 8);
    cr_assert(strstr(rdb_collector_log(&r.col), "KEY 0 \"s\"") != NULL);
    cr_assert(strstr(rdb_collector_log(&r.col), "EOF") == NULL, "no END event for a bad CRC");
    decode_result_deinit(&r);

    /* A changed byte in the body is caught the same way. */
    b.p[b.len - 3] ^= 0x01;
    b.p[b.len - 10] ^= 0x20; /* the value "v" becomes "V" */
    decode_expect_error(b.p, b.len, NULL, RS_E_CHECKSUM, &r);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

/* A small valid file with several kinds of values. */
static void build_small_file(struct rdb_builder *b)
{
    struct listpack_builder l;
    struct ziplist_builder z;
    struct rdb_builder blob;
    rdb_builder_init(&blob);
    begin(b, 11);
    rdb_builder_aux(b, "redis-ver", "7.2.0");
    rdb_builder_selectdb(b, 0);
    rdb_builder_resizedb(b, 4, 1);
    rdb_builder_key(b, RDB_TYPE_STRING, "str");
    rdb_builder_cstr(b, "value");
    ziplist_builder_init(&z);
    ziplist_builder_add_cstr(&z, "a");
    ziplist_builder_add_int(&z, 300);
    ziplist_builder_finish(&z, &blob);
    ziplist_builder_deinit(&z);
    rdb_builder_key(b, RDB_TYPE_LIST_ZIPLIST, "zl");
    rdb_builder_str_blob(b, &blob);
    blob.len = 0;
    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "f");
    listpack_builder_add_int(&l, -5);
    listpack_builder_finish(&l, &blob);
    listpack_builder_deinit(&l);
    rdb_builder_key(b, RDB_TYPE_HASH_LISTPACK, "h");
    rdb_builder_str_blob(b, &blob);
    rdb_builder_expire_ms(b, 1700000000000);
    rdb_builder_key(b, RDB_TYPE_ZSET_2, "z");
    rdb_builder_len(b, 1);
    rdb_builder_cstr(b, "m");
    rdb_builder_double(b, 1.0);
    rdb_builder_key(b, RDB_TYPE_STRING, "lzf");
    rdb_builder_str_lzf(b, "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", 40);
    rdb_builder_eof(b);
    rdb_builder_deinit(&blob);
}

Test(rdb_decoder_errors, every_truncation_of_a_valid_file_is_reported_truncated)
{
    struct rdb_builder b;
    build_small_file(&b);
    struct decode_result r;
    decode_expect_done(b.p, b.len, NULL, &r);
    decode_result_deinit(&r);
    for (size_t n = 0; n < b.len; n++) {
        for (size_t step = 0; step <= 1; step++) {
            decode_run(b.p, n, NULL, step, SIZE_MAX, -1, &r);
            cr_assert_eq(r.rc, RS_OK, "prefix %zu (step %zu): feed returned %d: %s", n, step, r.rc,
                         r.err.msg);
            cr_assert_eq(r.finish_rc, RS_ERR, "prefix %zu of %zu: finish returned %d", n, b.len,
                         r.finish_rc);
            cr_assert_eq(r.err.code, RS_E_TRUNCATED, "prefix %zu: %s: %s", n,
                         rs_error_code_name(r.err.code), r.err.msg);
            cr_assert_leq(r.err.offset, n, "prefix %zu: offset %llu past the end", n,
                          (unsigned long long)r.err.offset);
            cr_assert(r.err.msg[0] != '\0');
            cr_assert(strstr(rdb_collector_log(&r.col), "EOF") == NULL);
            decode_result_deinit(&r);
        }
    }
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, truncation_inside_a_value_names_the_key)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "cutkey");
    rdb_builder_cstr(&b, "a value cut short");
    struct decode_result r;
    decode_run(b.p, b.len - 4, NULL, 0, SIZE_MAX, -1, &r);
    cr_assert_eq(r.finish_rc, RS_ERR);
    cr_assert_eq(r.err.code, RS_E_TRUNCATED);
    cr_assert(strstr(r.err.msg, "cutkey") != NULL, "%s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

/* ---- Blobs -------------------------------------------------------------- */

static void build_ziplist(struct rdb_builder *zl)
{
    struct ziplist_builder z;
    ziplist_builder_init(&z);
    ziplist_builder_add_cstr(&z, "a");
    ziplist_builder_add_cstr(&z, "bc");
    ziplist_builder_add_int(&z, 1000);
    rdb_builder_init(zl);
    ziplist_builder_finish(&z, zl);
    ziplist_builder_deinit(&z);
}

Test(rdb_decoder_errors, ziplist_whose_zlbytes_disagree_is_refused)
{
    for (int delta = -1; delta <= 1; delta += 2) {
        struct rdb_builder b, zl;
        build_ziplist(&zl);
        rdb_builder_patch_u32le(&zl, 0, (uint32_t)((int)zl.len + delta));
        begin(&b, 9);
        rdb_builder_key(&b, RDB_TYPE_LIST_ZIPLIST, "badzl");
        size_t blob = b.len + 1; /* after the one-byte string length */
        rdb_builder_str_blob(&b, &zl);
        rdb_builder_eof(&b);
        struct decode_result r;
        decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
        cr_assert_eq(r.err.offset, blob, "zlbytes %+d: offset %llu, the ziplist is at %zu (%s)",
                     delta, (unsigned long long)r.err.offset, blob, r.err.msg);
        expect_msg_names(&r.err, "badzl", "ziplist");
        decode_result_deinit(&r);
        rdb_builder_deinit(&zl);
        rdb_builder_deinit(&b);
    }
}

Test(rdb_decoder_errors, ziplist_entry_running_past_the_end_is_refused)
{
    /* An entry whose string length runs past the ziplist's last byte. */
    struct rdb_builder zl, b;
    rdb_builder_init(&zl);
    rdb_builder_u32le(&zl, 10 + 4 + 1);
    rdb_builder_u32le(&zl, 10);
    rdb_builder_u16le(&zl, 1);
    rdb_builder_byte(&zl, 0);    /* prevlen */
    rdb_builder_byte(&zl, 0x09); /* a 9-byte string, 2 bytes follow */
    rdb_builder_bytes(&zl, "ab", 2);
    rdb_builder_byte(&zl, 0xFF);
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_HASH_ZIPLIST, "zlpast");
    size_t entry = b.len + 1 + 10;
    rdb_builder_str_blob(&b, &zl);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, entry, "offset %llu, the entry is at %zu (%s)",
                 (unsigned long long)r.err.offset, entry, r.err.msg);
    expect_msg_names(&r.err, "zlpast", "ziplist");
    decode_result_deinit(&r);
    rdb_builder_deinit(&zl);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, listpack_entry_running_past_the_end_is_refused)
{
    struct rdb_builder lp, b;
    rdb_builder_init(&lp);
    rdb_builder_u32le(&lp, 6 + 4 + 1);
    rdb_builder_u16le(&lp, 1);
    rdb_builder_byte(&lp, 0x80 | 10); /* a 10-byte string, 3 bytes follow */
    rdb_builder_bytes(&lp, "abc", 3);
    rdb_builder_byte(&lp, 0xFF);
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_SET_LISTPACK, "badlp");
    size_t entry = b.len + 1 + 6;
    rdb_builder_str_blob(&b, &lp);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, entry, "offset %llu, the entry is at %zu (%s)",
                 (unsigned long long)r.err.offset, entry, r.err.msg);
    expect_msg_names(&r.err, "badlp", "listpack");
    decode_result_deinit(&r);
    rdb_builder_deinit(&lp);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, listpack_with_wrong_backlen_is_refused)
{
    struct rdb_builder lp, b;
    rdb_builder_init(&lp);
    rdb_builder_u32le(&lp, 6 + 3 + 1);
    rdb_builder_u16le(&lp, 1);
    rdb_builder_byte(&lp, 0x80 | 1);
    rdb_builder_byte(&lp, 'x');
    rdb_builder_byte(&lp, 3); /* the entry is 2 bytes long */
    rdb_builder_byte(&lp, 0xFF);
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_HASH_LISTPACK, "backlen");
    size_t entry = b.len + 1 + 6 + 2; /* the back-length byte, after 0x81 'x' */
    rdb_builder_str_blob(&b, &lp);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, entry, "offset %llu, the back-length is at %zu (%s)",
                 (unsigned long long)r.err.offset, entry, r.err.msg);
    expect_msg_names(&r.err, "backlen", "listpack");
    decode_result_deinit(&r);
    rdb_builder_deinit(&lp);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, intset_with_bad_encoding_is_refused)
{
    static const int64_t v[] = {1, 2};
    struct rdb_builder is, b;
    rdb_builder_init(&is);
    intset_build(&is, 2, v, 2);
    rdb_builder_patch_u32le(&is, 0, 3);
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_SET_INTSET, "badis");
    size_t blob = b.len + 1;
    rdb_builder_str_blob(&b, &is);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, blob, "offset %llu, the intset is at %zu (%s)",
                 (unsigned long long)r.err.offset, blob, r.err.msg);
    expect_msg_names(&r.err, "badis", "intset");
    decode_result_deinit(&r);
    rdb_builder_deinit(&is);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, intset_whose_length_disagrees_with_its_size_is_refused)
{
    static const int64_t v[] = {1, 2, 3};
    struct rdb_builder is, b;
    rdb_builder_init(&is);
    intset_build(&is, 4, v, 3);
    rdb_builder_patch_u32le(&is, 4, 4); /* says 4 elements, holds 3 */
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_SET_INTSET, "shortis");
    size_t blob = b.len + 1 + 4; /* the length field, byte 4 of the intset */
    rdb_builder_str_blob(&b, &is);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, blob, "offset %llu, the intset length is at %zu (%s)",
                 (unsigned long long)r.err.offset, blob, r.err.msg);
    expect_msg_names(&r.err, "shortis", "intset");
    decode_result_deinit(&r);
    rdb_builder_deinit(&is);
    rdb_builder_deinit(&b);
}

static void expect_lzf_refused(const struct rdb_decoder_config *cfg, size_t n, int64_t delta)
{
    char *text = malloc(n);
    cr_assert(text != NULL);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + (i % 3));
    struct rdb_builder comp, b;
    rdb_builder_init(&comp);
    rdb_lzf_compress(&comp, text, n);
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "badlzf");
    rdb_builder_str_lzf_raw(&b, comp.p, comp.len, (uint64_t)((int64_t)n + delta));
    size_t at = b.len - comp.len; /* the compressed data, after 0xC3 and two lengths */
    size_t end = b.len;
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, cfg, RS_E_FORMAT, &r);
    /* Decompressed whole, liblzf only says the data is wrong: the offset is
     * the data's start. Decompressed in pieces, the offset is the byte where
     * the data went wrong, or its end. Either is inside the data. */
    cr_assert(r.err.offset >= at && r.err.offset <= end,
              "n %zu delta %lld: offset %llu, the LZF data is at [%zu, %zu] (%s)", n,
              (long long)delta, (unsigned long long)r.err.offset, at, end, r.err.msg);
    expect_msg_names(&r.err, "badlzf", "lzf");
    decode_result_deinit(&r);
    rdb_builder_deinit(&comp);
    rdb_builder_deinit(&b);
    free(text);
}

Test(rdb_decoder_errors, lzf_string_whose_size_differs_is_refused)
{
    struct rdb_decoder_config small = {.raw_max = 64, .string_piece = 16};
    expect_lzf_refused(NULL, 100, 5);
    expect_lzf_refused(NULL, 100, -5);
    expect_lzf_refused(&small, 1000, 7);  /* decompressed in pieces */
    expect_lzf_refused(&small, 1000, -7); /* too much data for the size */
}

Test(rdb_decoder_errors, element_past_element_max_is_a_limit_error)
{
    struct rdb_decoder_config cfg = {.element_max = 100};
    char big[200];
    memset(big, 'e', sizeof(big));
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_SET, "bigmember");
    rdb_builder_len(&b, 2);
    rdb_builder_cstr(&b, "small");
    size_t at = b.len;
    rdb_builder_str(&b, big, sizeof(big));
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, &cfg, RS_E_LIMIT, &r);
    cr_assert_eq(r.err.offset, at, "offset %llu, the member is at %zu (%s)",
                 (unsigned long long)r.err.offset, at, r.err.msg);
    cr_assert(strstr(r.err.msg, "bigmember") != NULL, "%s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, compact_node_past_element_max_is_a_limit_error)
{
    struct rdb_decoder_config cfg = {.element_max = 100};
    struct ziplist_builder z;
    ziplist_builder_init(&z);
    for (int i = 0; i < 30; i++)
        ziplist_builder_add_cstr(&z, "elem");
    struct rdb_builder zl, b;
    rdb_builder_init(&zl);
    ziplist_builder_finish(&z, &zl);
    ziplist_builder_deinit(&z);
    cr_assert_gt(zl.len, 100);
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_LIST_ZIPLIST, "bignode");
    size_t at = b.len;
    rdb_builder_str_blob(&b, &zl);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, &cfg, RS_E_LIMIT, &r);
    cr_assert_eq(r.err.offset, at, "offset %llu, the ziplist string is at %zu (%s)",
                 (unsigned long long)r.err.offset, at, r.err.msg);
    cr_assert(strstr(r.err.msg, "bignode") != NULL, "%s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&zl);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, quicklist2_bad_container_is_refused)
{
    struct rdb_builder b;
    begin(&b, 10);
    rdb_builder_key(&b, RDB_TYPE_LIST_QUICKLIST_2, "badql");
    rdb_builder_len(&b, 1);
    size_t at = b.len;
    rdb_builder_len(&b, 3);
    rdb_builder_cstr(&b, "x");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, at, "offset %llu, the container is at %zu (%s)",
                 (unsigned long long)r.err.offset, at, r.err.msg);
    cr_assert(strstr(r.err.msg, "badql") != NULL, "%s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, zset_score_text_that_is_not_a_number_is_refused)
{
    struct rdb_builder b;
    begin(&b, 6);
    rdb_builder_key(&b, RDB_TYPE_ZSET, "badscore");
    rdb_builder_len(&b, 1);
    rdb_builder_cstr(&b, "m");
    size_t at = b.len;
    rdb_builder_score_text(&b, "1.5x");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert_eq(r.err.offset, at, "offset %llu, the score is at %zu (%s)",
                 (unsigned long long)r.err.offset, at, r.err.msg);
    cr_assert(strstr(r.err.msg, "badscore") != NULL, "%s", r.err.msg);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

/* ---- The consumer ------------------------------------------------------- */

Test(rdb_decoder_errors, consumer_returning_nonzero_stops_with_consumer_error)
{
    struct rdb_builder b;
    build_small_file(&b);
    struct decode_result whole;
    decode_expect_done(b.p, b.len, NULL, &whole);
    size_t nevents = whole.col.events;
    decode_result_deinit(&whole);
    for (size_t i = 0; i < nevents; i++) {
        for (size_t step = 0; step <= 1; step++) {
            struct decode_result r;
            decode_run(b.p, b.len, NULL, step, SIZE_MAX, (long)i, &r);
            cr_assert_eq(r.rc, RS_ERR, "stop at event %zu: feed returned %d", i, r.rc);
            cr_assert_eq(r.err.code, RS_E_CONSUMER, "stop at event %zu: %s", i,
                         rs_error_code_name(r.err.code));
            cr_assert_eq(r.col.events, i + 1, "stop at event %zu: %zu events delivered", i,
                         r.col.events);
            decode_result_deinit(&r);
        }
    }
    rdb_builder_deinit(&b);
}

/* ---- Blobs that are not plain strings ----------------------------------- */

/* A blob string may be integer-encoded or LZF-compressed like any other RDB
 * string; an error found inside it must still point into the file (found by
 * fuzz_rdb_decoder: the offset was computed from a scratch buffer). */
Test(rdb_decoder_errors, blob_written_as_an_integer_string_is_refused_inside_the_string)
{
    static const struct {
        uint8_t type;
        const char *what;
    } cases[] = {
        {RDB_TYPE_LIST_ZIPLIST, "ziplist"},   {RDB_TYPE_SET_INTSET, "intset"},
        {RDB_TYPE_HASH_LISTPACK, "listpack"}, {RDB_TYPE_ZSET_LISTPACK, "listpack"},
        {RDB_TYPE_HASH_ZIPMAP, "zipmap"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rdb_builder b;
        begin(&b, 11);
        rdb_builder_key(&b, cases[i].type, "intblob");
        size_t at = b.len;
        rdb_builder_str_int(&b, -91, 8); /* "-91": 3 bytes, too short for any blob */
        rdb_builder_eof(&b);
        struct decode_result r;
        decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
        cr_assert(r.err.offset >= at && r.err.offset < at + 2,
                  "%s: offset %llu, the string is at [%zu, %zu) (%s)", cases[i].what,
                  (unsigned long long)r.err.offset, at, at + 2, r.err.msg);
        expect_msg_names(&r.err, "intblob", cases[i].what);
        decode_result_deinit(&r);
        rdb_builder_deinit(&b);
    }
}

Test(rdb_decoder_errors, stream_node_written_as_an_integer_string_is_refused_inside_the_string)
{
    static const uint8_t id[16] = {0};
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STREAM_LISTPACKS_3, "intnode");
    rdb_builder_len(&b, 1);
    rdb_builder_str(&b, id, sizeof(id));
    size_t at = b.len;
    rdb_builder_str_int(&b, -91, 8);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert(r.err.offset >= at && r.err.offset < at + 2,
              "offset %llu, the string is at [%zu, %zu) (%s)", (unsigned long long)r.err.offset, at,
              at + 2, r.err.msg);
    expect_msg_names(&r.err, "intnode", "listpack");
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, corrupt_lzf_compressed_blob_is_refused_inside_the_string)
{
    /* The blob's bytes exist only decompressed: the offset can only point
     * into the LZF string. */
    struct ziplist_builder z;
    ziplist_builder_init(&z);
    for (int i = 0; i < 20; i++)
        ziplist_builder_add_cstr(&z, "aaaaaaaa");
    struct rdb_builder zl, b;
    rdb_builder_init(&zl);
    ziplist_builder_finish(&z, &zl);
    ziplist_builder_deinit(&z);
    rdb_builder_patch_u32le(&zl, 0, (uint32_t)zl.len + 1);
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_LIST_ZIPLIST, "lzfblob");
    size_t at = b.len;
    rdb_builder_str_lzf(&b, zl.p, zl.len);
    size_t end = b.len;
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert(r.err.offset >= at && r.err.offset < end,
              "offset %llu, the LZF string is at [%zu, %zu) (%s)", (unsigned long long)r.err.offset,
              at, end, r.err.msg);
    expect_msg_names(&r.err, "lzfblob", "ziplist");
    decode_result_deinit(&r);
    rdb_builder_deinit(&zl);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_errors, hash_field_ttl_that_overflows_min_expire_is_refused)
{
    /* Type 24 TTLs are relative: min-expire + ttl - 1. Both come from the
     * file, so the sum must be range-checked before it is computed (found by
     * fuzz_rdb_decoder: signed overflow, undefined behaviour under UBSan).
     * A TTL that wraps around in uint64 arithmetic (2^64 - 1) is not here:
     * Redis computes the sum in uint64 and accepts it, and so may we. */
    static const struct {
        int64_t min_expire;
        uint64_t ttl;
    } cases[] = {
        {INT64_MAX - 5, 100},
        {INT64_C(8827346640227633920), UINT64_C(3675500254462346088)},
        {-1, 1},
        {INT64_MIN, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rdb_builder b;
        begin(&b, 12);
        rdb_builder_key(&b, RDB_TYPE_HASH_METADATA, "ttlkey");
        rdb_builder_ms(&b, cases[i].min_expire);
        rdb_builder_len(&b, 1);
        rdb_builder_len(&b, cases[i].ttl);
        rdb_builder_cstr(&b, "f");
        rdb_builder_cstr(&b, "v");
        rdb_builder_eof(&b);
        struct decode_result r;
        decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
        cr_assert(strstr(r.err.msg, "ttlkey") != NULL, "case %zu: %s", i, r.err.msg);
        decode_result_deinit(&r);
        rdb_builder_deinit(&b);
    }
}
