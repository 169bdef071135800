/* test_rdb_decoder.c - the RDB decoder on inputs built byte by byte from the
 * format: strings, lists, sets, zsets, hashes, opcodes, versions, raw bytes.
 *
 * Every input goes through decode_expect_done (rdb_collector.h): fed whole,
 * one byte at a time and split in two at every offset, each run giving the
 * same items, chunks and offsets. The expected items logs are written by hand
 * from the format; the log format is described in rdb_collector.h.
 * Streams and modules: test_rdb_decoder_streams.c. Bad input:
 * test_rdb_decoder_errors.c. Real files and memory: test_rdb_decoder_files.c.
 */
#include <criterion/criterion.h>

#include <math.h>
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

/* n copies of c, NUL-terminated; the caller frees it. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert(s != NULL);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- Strings ------------------------------------------------------------ */

Test(rdb_decoder, plain_and_integer_encoded_strings_yield_their_text)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "plain");
    rdb_builder_cstr(&b, "hello");
    rdb_builder_key(&b, RDB_TYPE_STRING, "i8");
    rdb_builder_str_int(&b, -5, 8);
    rdb_builder_key(&b, RDB_TYPE_STRING, "i8max");
    rdb_builder_str_int(&b, 127, 8);
    rdb_builder_key(&b, RDB_TYPE_STRING, "i16");
    rdb_builder_str_int(&b, -12345, 16);
    rdb_builder_key(&b, RDB_TYPE_STRING, "i32min");
    rdb_builder_str_int(&b, INT32_MIN, 32);
    rdb_builder_key(&b, RDB_TYPE_STRING, "i32max");
    rdb_builder_str_int(&b, INT32_MAX, 32);
    rdb_builder_key(&b, RDB_TYPE_STRING, "empty");
    rdb_builder_str(&b, "", 0);
    rdb_builder_key(&b, RDB_TYPE_STRING, "bin");
    rdb_builder_str(&b, "\x00\xff\"\\", 4);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "KEY 0 \"plain\" string 0 len=5\n"
               " S \"hello\"\n"
               "END\n"
               "KEY 0 \"i8\" string 0 len=2\n"
               " S \"-5\"\n"
               "END\n"
               "KEY 0 \"i8max\" string 0 len=3\n"
               " S \"127\"\n"
               "END\n"
               "KEY 0 \"i16\" string 0 len=6\n"
               " S \"-12345\"\n"
               "END\n"
               "KEY 0 \"i32min\" string 0 len=11\n"
               " S \"-2147483648\"\n"
               "END\n"
               "KEY 0 \"i32max\" string 0 len=10\n"
               " S \"2147483647\"\n"
               "END\n"
               "KEY 0 \"empty\" string 0 len=0\n"
               " S \"\"\n"
               "END\n"
               "KEY 0 \"bin\" string 0 len=4\n"
               " S \"\\x00\\xff\\\"\\\\\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, keys_and_aux_fields_may_be_integer_or_lzf_encoded)
{
    /* rdbSaveRawString writes any string that reads as a small integer as
     * one, and compresses strings over 20 bytes: keys and AUX fields too. */
    char *longkey = repeat('k', 100);
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_byte(&b, RDB_OPCODE_AUX);
    rdb_builder_cstr(&b, "redis-bits");
    rdb_builder_str_int(&b, 64, 8);
    rdb_builder_byte(&b, RDB_OPCODE_AUX);
    rdb_builder_cstr(&b, "ctime");
    rdb_builder_str_int(&b, 1700000000, 32);
    rdb_builder_byte(&b, RDB_TYPE_STRING);
    rdb_builder_str_int(&b, 123, 8);
    rdb_builder_cstr(&b, "int key");
    rdb_builder_byte(&b, RDB_TYPE_STRING);
    rdb_builder_str_lzf(&b, longkey, 100);
    rdb_builder_cstr(&b, "lzf key");
    rdb_builder_eof(&b);

    struct rdb_builder want;
    rdb_builder_init(&want);
    const char *head = "HEADER 11 redis\n"
                       "AUX \"redis-bits\" \"64\"\n"
                       "AUX \"ctime\" \"1700000000\"\n"
                       "KEY 0 \"123\" string 0 len=7\n"
                       " S \"int key\"\n"
                       "END\n"
                       "KEY 0 \"";
    rdb_builder_bytes(&want, head, strlen(head));
    rdb_builder_bytes(&want, longkey, 100);
    const char *tail = "\" string 0 len=7\n"
                       " S \"lzf key\"\n"
                       "END\n"
                       "EOF crc\n";
    rdb_builder_bytes(&want, tail, strlen(tail) + 1);
    expect_log(&b, NULL, (const char *)want.p);
    rdb_builder_deinit(&want);
    rdb_builder_deinit(&b);
    free(longkey);
}

Test(rdb_decoder, lengths_in_every_encoding_read_the_same)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "k6");
    rdb_builder_str_len_as(&b, "v6", 2, RDB_BUILDER_LEN_6);
    rdb_builder_key(&b, RDB_TYPE_STRING, "k14");
    rdb_builder_str_len_as(&b, "v14", 3, RDB_BUILDER_LEN_14);
    rdb_builder_key(&b, RDB_TYPE_STRING, "k32");
    rdb_builder_str_len_as(&b, "v32", 3, RDB_BUILDER_LEN_32);
    rdb_builder_key(&b, RDB_TYPE_STRING, "k64");
    rdb_builder_str_len_as(&b, "v64", 3, RDB_BUILDER_LEN_64);
    /* A list whose count and elements use the wide forms. */
    rdb_builder_key(&b, RDB_TYPE_LIST, "list");
    rdb_builder_len_as(&b, 3, RDB_BUILDER_LEN_64);
    rdb_builder_str_len_as(&b, "a", 1, RDB_BUILDER_LEN_32);
    rdb_builder_str_len_as(&b, "b", 1, RDB_BUILDER_LEN_14);
    rdb_builder_str_len_as(&b, "c", 1, RDB_BUILDER_LEN_64);
    /* Wide lengths in SELECTDB and RESIZEDB too. */
    rdb_builder_byte(&b, RDB_OPCODE_SELECTDB);
    rdb_builder_len_as(&b, 2, RDB_BUILDER_LEN_32);
    rdb_builder_byte(&b, RDB_OPCODE_RESIZEDB);
    rdb_builder_len_as(&b, 1, RDB_BUILDER_LEN_14);
    rdb_builder_len_as(&b, 0, RDB_BUILDER_LEN_64);
    rdb_builder_key(&b, RDB_TYPE_STRING, "in2");
    rdb_builder_cstr(&b, "x");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "KEY 0 \"k6\" string 0 len=2\n"
               " S \"v6\"\n"
               "END\n"
               "KEY 0 \"k14\" string 0 len=3\n"
               " S \"v14\"\n"
               "END\n"
               "KEY 0 \"k32\" string 0 len=3\n"
               " S \"v32\"\n"
               "END\n"
               "KEY 0 \"k64\" string 0 len=3\n"
               " S \"v64\"\n"
               "END\n"
               "KEY 0 \"list\" list 1\n"
               " E \"a\"\n"
               " E \"b\"\n"
               " E \"c\"\n"
               "END\n"
               "SELECTDB 2\n"
               "RESIZEDB 1 0\n"
               "KEY 2 \"in2\" string 0 len=1\n"
               " S \"x\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, long_lengths_use_14_and_32_bit_forms)
{
    char *v300 = repeat('y', 300);
    char *v17k = repeat('z', 17000);
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "s300");
    rdb_builder_str(&b, v300, 300); /* 0x41 0x2c */
    rdb_builder_key(&b, RDB_TYPE_STRING, "s17k");
    rdb_builder_str(&b, v17k, 17000); /* 0x80 + 4 bytes */
    rdb_builder_eof(&b);
    cr_assert_eq(b.p[9 + 1 + 5], 0x41, "the 14-bit form starts 01");
    struct decode_result r;
    const char *log = decode_expect_done(b.p, b.len, NULL, &r);
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "s300");
    cr_assert(k != NULL && k->has_raw && k->raw_len == 302);
    cr_assert(memcmp(k->raw + 2, v300, 300) == 0);
    k = rdb_collector_key(&r.col, "s17k");
    cr_assert(k != NULL && k->has_raw && k->raw_len == 17005);
    cr_assert(strstr(log, "KEY 0 \"s17k\" string 0 len=17000\n") != NULL);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
    free(v300);
    free(v17k);
}

Test(rdb_decoder, lzf_strings_yield_the_uncompressed_text)
{
    const char *text = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcbcbcbcbcbcbcbcbcbcbcbcbcbcbc";
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "lzf");
    size_t clen = rdb_builder_str_lzf(&b, text, strlen(text));
    cr_assert(clen < strlen(text), "the text compresses");
    rdb_builder_eof(&b);

    char line[256];
    snprintf(line, sizeof(line),
             "HEADER 11 redis\nKEY 0 \"lzf\" string 0 len=%zu\n S \"%s\"\nEND\nEOF crc\n",
             strlen(text), text);
    expect_log(&b, NULL, line);
    rdb_builder_deinit(&b);
}

/* A string of n bytes that LZF compresses well but not trivially. */
static char *pattern_text(size_t n)
{
    char *s = malloc(n + 1);
    cr_assert(s != NULL);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + (i / 7 + i % 5) % 26);
    s[n] = '\0';
    return s;
}

static void expect_string_in_pieces(const struct rdb_builder *b, const char *key, const char *value,
                                    size_t n, const struct rdb_decoder_config *cfg)
{
    struct decode_result r;
    const char *log = decode_expect_done(b->p, b->len, cfg, &r);
    struct rdb_builder want;
    rdb_builder_init(&want);
    char line[128];
    snprintf(line, sizeof(line), "HEADER 11 redis\nKEY 0 \"%s\" string 0 len=%zu\n S ", key, n);
    rdb_builder_bytes(&want, line, strlen(line));
    log_escaped(&want, value, n);
    const char *tail = "\nEND\nEOF crc\n";
    rdb_builder_bytes(&want, tail, strlen(tail) + 1);
    cr_assert_str_eq(log, (const char *)want.p);

    /* The pieces: string_piece bytes each but the last. */
    const char *chunks = rdb_collector_chunks(&r.col);
    size_t full = n / cfg->string_piece, rest = n % cfg->string_piece;
    size_t seen_full = 0;
    char piece[32];
    snprintf(piece, sizeof(piece), " P %zu\n", cfg->string_piece);
    for (const char *p = strstr(chunks, piece); p != NULL; p = strstr(p + 1, piece))
        seen_full++;
    cr_assert_eq(seen_full, full, "%zu full pieces, want %zu:\n%s", seen_full, full, chunks);
    if (rest > 0) {
        snprintf(piece, sizeof(piece), " P %zu\n", rest);
        cr_assert(strstr(chunks, piece) != NULL, "no last piece of %zu bytes", rest);
    }
    decode_result_deinit(&r);
    rdb_builder_deinit(&want);
}

Test(rdb_decoder, lzf_string_past_raw_max_comes_in_pieces)
{
    struct rdb_decoder_config cfg = {.raw_max = 64, .string_piece = 16};
    size_t n = 1000;
    char *text = pattern_text(n);
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "biglzf");
    size_t value_start = b.len;
    rdb_builder_str_lzf(&b, text, n);
    size_t value_end = b.len;
    rdb_builder_eof(&b);
    expect_string_in_pieces(&b, "biglzf", text, n, &cfg);

    struct decode_result r;
    decode_expect_done(b.p, b.len, &cfg, &r);
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "biglzf");
    cr_assert_eq(k->encoded_size, value_end - value_start);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
    free(text);
}

Test(rdb_decoder, plain_string_past_raw_max_comes_in_pieces)
{
    struct rdb_decoder_config cfg = {.raw_max = 64, .string_piece = 16};
    size_t n = 200;
    char *text = pattern_text(n);
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "big");
    rdb_builder_str(&b, text, n);
    rdb_builder_eof(&b);
    expect_string_in_pieces(&b, "big", text, n, &cfg);

    struct decode_result r;
    decode_expect_done(b.p, b.len, &cfg, &r);
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "big");
    cr_assert(!k->has_raw, "a 202-byte value is past raw_max 64");
    cr_assert_eq(k->encoded_size, 2 + n);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
    free(text);
}

/* ---- Lists -------------------------------------------------------------- */

Test(rdb_decoder, linked_list_yields_elements_in_order)
{
    struct rdb_builder b;
    begin(&b, 6);
    rdb_builder_key(&b, RDB_TYPE_LIST, "list");
    rdb_builder_len(&b, 4);
    rdb_builder_cstr(&b, "first");
    rdb_builder_str_int(&b, 7, 8);
    rdb_builder_str_lzf(&b, "xyxyxyxyxyxyxyxyxyxyxyxyxyxyxy", 30);
    rdb_builder_cstr(&b, "");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 6 redis\n"
               "KEY 0 \"list\" list 1\n"
               " E \"first\"\n"
               " E \"7\"\n"
               " E \"xyxyxyxyxyxyxyxyxyxyxyxyxyxyxy\"\n"
               " E \"\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, ziplist_list_yields_every_entry_encoding)
{
    char *s300 = repeat('w', 300);
    struct ziplist_builder z;
    ziplist_builder_init(&z);
    ziplist_builder_add_str_as(&z, "a", 1, ZIPLIST_STR_6);
    ziplist_builder_add_str_as(&z, "bb", 2, ZIPLIST_STR_14);
    ziplist_builder_add_str_as(&z, "ccc", 3, ZIPLIST_STR_32);
    ziplist_builder_add_str(&z, s300, 300); /* the next entry's prevlen is 0xFE + 4 bytes */
    ziplist_builder_add_int_as(&z, 0, ZIPLIST_INT_IMM);
    ziplist_builder_add_int_as(&z, 12, ZIPLIST_INT_IMM);
    ziplist_builder_add_int_as(&z, -128, ZIPLIST_INT_8);
    ziplist_builder_add_int_as(&z, 127, ZIPLIST_INT_8);
    ziplist_builder_add_int_as(&z, -32768, ZIPLIST_INT_16);
    ziplist_builder_add_int_as(&z, 32767, ZIPLIST_INT_16);
    ziplist_builder_add_int_as(&z, -8388608, ZIPLIST_INT_24);
    ziplist_builder_add_int_as(&z, 8388607, ZIPLIST_INT_24);
    ziplist_builder_add_int_as(&z, INT32_MIN, ZIPLIST_INT_32);
    ziplist_builder_add_int_as(&z, INT32_MAX, ZIPLIST_INT_32);
    ziplist_builder_add_int_as(&z, INT64_MIN, ZIPLIST_INT_64);
    ziplist_builder_add_int_as(&z, INT64_MAX, ZIPLIST_INT_64);
    z.big_prevlen = true; /* a 5-byte prevlen holding a small length is valid */
    ziplist_builder_add_str(&z, "", 0);
    ziplist_builder_add_int(&z, 5); /* 5 by the narrowest encoding: immediate */
    struct rdb_builder zl;
    rdb_builder_init(&zl);
    ziplist_builder_finish(&z, &zl);

    struct rdb_builder b;
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_LIST_ZIPLIST, "zl");
    rdb_builder_str_blob(&b, &zl);
    rdb_builder_eof(&b);

    struct rdb_builder want;
    rdb_builder_init(&want);
    const char *head = "HEADER 9 redis\n"
                       "KEY 0 \"zl\" list 10\n"
                       " E \"a\"\n"
                       " E \"bb\"\n"
                       " E \"ccc\"\n"
                       " E \"";
    rdb_builder_bytes(&want, head, strlen(head));
    rdb_builder_bytes(&want, s300, 300);
    const char *tail = "\"\n"
                       " E \"0\"\n"
                       " E \"12\"\n"
                       " E \"-128\"\n"
                       " E \"127\"\n"
                       " E \"-32768\"\n"
                       " E \"32767\"\n"
                       " E \"-8388608\"\n"
                       " E \"8388607\"\n"
                       " E \"-2147483648\"\n"
                       " E \"2147483647\"\n"
                       " E \"-9223372036854775808\"\n"
                       " E \"9223372036854775807\"\n"
                       " E \"\"\n"
                       " E \"5\"\n"
                       "END\n"
                       "EOF crc\n";
    rdb_builder_bytes(&want, tail, strlen(tail) + 1);
    expect_log(&b, NULL, (const char *)want.p);
    rdb_builder_deinit(&want);
    rdb_builder_deinit(&b);
    rdb_builder_deinit(&zl);
    ziplist_builder_deinit(&z);
    free(s300);
}

static void add_ziplist_node(struct rdb_builder *b, const char *const *elems, size_t n)
{
    struct ziplist_builder z;
    ziplist_builder_init(&z);
    for (size_t i = 0; i < n; i++) {
        char *end;
        long long v = strtoll(elems[i], &end, 10);
        if (*elems[i] != '\0' && *end == '\0')
            ziplist_builder_add_int(&z, v);
        else
            ziplist_builder_add_cstr(&z, elems[i]);
    }
    struct rdb_builder zl;
    rdb_builder_init(&zl);
    ziplist_builder_finish(&z, &zl);
    rdb_builder_str_blob(b, &zl);
    rdb_builder_deinit(&zl);
    ziplist_builder_deinit(&z);
}

Test(rdb_decoder, quicklist_of_ziplists_yields_elements_in_order)
{
    static const char *const node1[] = {"a", "1", "-1", "bcd"};
    static const char *const node2[] = {"100000", "e"};
    struct rdb_builder b;
    begin(&b, 8);
    rdb_builder_key(&b, RDB_TYPE_LIST_QUICKLIST, "ql");
    rdb_builder_len(&b, 2);
    add_ziplist_node(&b, node1, 4);
    add_ziplist_node(&b, node2, 2);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 8 redis\n"
               "KEY 0 \"ql\" list 14\n"
               " E \"a\"\n"
               " E \"1\"\n"
               " E \"-1\"\n"
               " E \"bcd\"\n"
               " E \"100000\"\n"
               " E \"e\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, quicklist2_packed_and_plain_nodes_yield_elements_in_order)
{
    struct rdb_builder b, lp1, lp2;
    struct listpack_builder l;
    rdb_builder_init(&lp1);
    rdb_builder_init(&lp2);
    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "a");
    listpack_builder_add_int(&l, 1);
    listpack_builder_add_int(&l, -1);
    listpack_builder_finish(&l, &lp1);
    listpack_builder_deinit(&l);
    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "z");
    listpack_builder_finish(&l, &lp2);
    listpack_builder_deinit(&l);

    begin(&b, 10);
    rdb_builder_key(&b, RDB_TYPE_LIST_QUICKLIST_2, "ql2");
    rdb_builder_len(&b, 3);
    rdb_builder_len(&b, RDB_QUICKLIST_NODE_PACKED);
    rdb_builder_str_blob(&b, &lp1);
    rdb_builder_len(&b, RDB_QUICKLIST_NODE_PLAIN);
    rdb_builder_cstr(&b, "a plain node holds one element");
    rdb_builder_len(&b, RDB_QUICKLIST_NODE_PACKED);
    rdb_builder_str_blob(&b, &lp2);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 10 redis\n"
               "KEY 0 \"ql2\" list 18\n"
               " E \"a\"\n"
               " E \"1\"\n"
               " E \"-1\"\n"
               " E \"a plain node holds one element\"\n"
               " E \"z\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
    rdb_builder_deinit(&lp1);
    rdb_builder_deinit(&lp2);
}

Test(rdb_decoder, quicklist2_plain_node_past_raw_max_is_one_element)
{
    /* A plain node is one element held whole (up to element_max), however
     * big next to raw_max. */
    struct rdb_decoder_config cfg = {.raw_max = 64, .string_piece = 16};
    char *big = pattern_text(500);
    struct rdb_builder b;
    begin(&b, 10);
    rdb_builder_key(&b, RDB_TYPE_LIST_QUICKLIST_2, "plainbig");
    rdb_builder_len(&b, 1);
    rdb_builder_len(&b, RDB_QUICKLIST_NODE_PLAIN);
    rdb_builder_str_lzf(&b, big, 500);
    rdb_builder_eof(&b);
    struct decode_result r;
    const char *log = decode_expect_done(b.p, b.len, &cfg, &r);
    struct rdb_builder want;
    rdb_builder_init(&want);
    const char *head = "HEADER 10 redis\nKEY 0 \"plainbig\" list 18\n E ";
    rdb_builder_bytes(&want, head, strlen(head));
    log_escaped(&want, big, 500);
    const char *tail = "\nEND\nEOF crc\n";
    rdb_builder_bytes(&want, tail, strlen(tail) + 1);
    cr_assert_str_eq(log, (const char *)want.p);
    decode_result_deinit(&r);
    rdb_builder_deinit(&want);
    rdb_builder_deinit(&b);
    free(big);
}

Test(rdb_decoder, listpack_yields_every_entry_encoding)
{
    char *s63 = repeat('s', 63);
    char *s200 = repeat('t', 200);
    char *s5000 = repeat('u', 5000);
    char *s20000 = repeat('v', 20000);
    struct listpack_builder l;
    listpack_builder_init(&l);
    listpack_builder_add_int_as(&l, 0, LISTPACK_UINT_7);
    listpack_builder_add_int_as(&l, 127, LISTPACK_UINT_7);
    listpack_builder_add_str_as(&l, "", 0, LISTPACK_STR_6);
    listpack_builder_add_str_as(&l, s63, 63, LISTPACK_STR_6);
    listpack_builder_add_int_as(&l, -4096, LISTPACK_INT_13);
    listpack_builder_add_int_as(&l, 4095, LISTPACK_INT_13);
    listpack_builder_add_int_as(&l, 5, LISTPACK_INT_13);
    listpack_builder_add_str_as(&l, "ab", 2, LISTPACK_STR_12);
    listpack_builder_add_str_as(&l, s200, 200, LISTPACK_STR_12); /* 2-byte backlen */
    listpack_builder_add_str_as(&l, "abc", 3, LISTPACK_STR_32);
    listpack_builder_add_str(&l, s5000, 5000);   /* 32-bit string, 2-byte backlen */
    listpack_builder_add_str(&l, s20000, 20000); /* 3-byte backlen */
    listpack_builder_add_int_as(&l, -32768, LISTPACK_INT_16);
    listpack_builder_add_int_as(&l, 32767, LISTPACK_INT_16);
    listpack_builder_add_int_as(&l, -8388608, LISTPACK_INT_24);
    listpack_builder_add_int_as(&l, 8388607, LISTPACK_INT_24);
    listpack_builder_add_int_as(&l, INT32_MIN, LISTPACK_INT_32);
    listpack_builder_add_int_as(&l, INT32_MAX, LISTPACK_INT_32);
    listpack_builder_add_int_as(&l, INT64_MIN, LISTPACK_INT_64);
    listpack_builder_add_int_as(&l, INT64_MAX, LISTPACK_INT_64);
    listpack_builder_add_int_as(&l, 1, LISTPACK_INT_64);
    struct rdb_builder lp;
    rdb_builder_init(&lp);
    listpack_builder_finish(&l, &lp);

    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_SET_LISTPACK, "lp");
    rdb_builder_str_blob(&b, &lp);
    rdb_builder_eof(&b);

    struct rdb_builder want;
    rdb_builder_init(&want);
    char line[64];
    const char *head = "HEADER 11 redis\n"
                       "KEY 0 \"lp\" set 20\n"
                       " E \"0\"\n"
                       " E \"127\"\n"
                       " E \"\"\n";
    rdb_builder_bytes(&want, head, strlen(head));
    rdb_builder_bytes(&want, " E ", 3);
    log_escaped(&want, s63, 63);
    const char *part2 = "\n"
                        " E \"-4096\"\n"
                        " E \"4095\"\n"
                        " E \"5\"\n"
                        " E \"ab\"\n";
    rdb_builder_bytes(&want, part2, strlen(part2));
    rdb_builder_bytes(&want, " E ", 3);
    log_escaped(&want, s200, 200);
    snprintf(line, sizeof(line), "\n E \"abc\"\n E ");
    rdb_builder_bytes(&want, line, strlen(line));
    log_escaped(&want, s5000, 5000);
    rdb_builder_bytes(&want, "\n E ", 4);
    log_escaped(&want, s20000, 20000);
    const char *tail = "\n"
                       " E \"-32768\"\n"
                       " E \"32767\"\n"
                       " E \"-8388608\"\n"
                       " E \"8388607\"\n"
                       " E \"-2147483648\"\n"
                       " E \"2147483647\"\n"
                       " E \"-9223372036854775808\"\n"
                       " E \"9223372036854775807\"\n"
                       " E \"1\"\n"
                       "END\n"
                       "EOF crc\n";
    rdb_builder_bytes(&want, tail, strlen(tail) + 1);
    expect_log(&b, NULL, (const char *)want.p);
    rdb_builder_deinit(&want);
    rdb_builder_deinit(&b);
    rdb_builder_deinit(&lp);
    listpack_builder_deinit(&l);
    free(s63);
    free(s200);
    free(s5000);
    free(s20000);
}

Test(rdb_decoder, empty_collections_are_flagged_empty)
{
    struct rdb_builder b, blob;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_LIST, "list");
    rdb_builder_len(&b, 0);
    rdb_builder_key(&b, RDB_TYPE_SET, "set");
    rdb_builder_len(&b, 0);
    rdb_builder_key(&b, RDB_TYPE_HASH, "hash");
    rdb_builder_len(&b, 0);
    rdb_builder_key(&b, RDB_TYPE_ZSET_2, "zset");
    rdb_builder_len(&b, 0);
    rdb_builder_key(&b, RDB_TYPE_LIST_QUICKLIST_2, "ql2");
    rdb_builder_len(&b, 0);
    struct listpack_builder l;
    listpack_builder_init(&l);
    rdb_builder_init(&blob);
    listpack_builder_finish(&l, &blob);
    rdb_builder_key(&b, RDB_TYPE_HASH_LISTPACK, "hlp");
    rdb_builder_str_blob(&b, &blob);
    rdb_builder_key(&b, RDB_TYPE_STRING, "after");
    rdb_builder_cstr(&b, "still read");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "KEY 0 \"list\" list 1\n"
               "END empty\n"
               "KEY 0 \"set\" set 2\n"
               "END empty\n"
               "KEY 0 \"hash\" hash 4\n"
               "END empty\n"
               "KEY 0 \"zset\" zset 5\n"
               "END empty\n"
               "KEY 0 \"ql2\" list 18\n"
               "END empty\n"
               "KEY 0 \"hlp\" hash 16\n"
               "END empty\n"
               "KEY 0 \"after\" string 0 len=10\n"
               " S \"still read\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&blob);
    listpack_builder_deinit(&l);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, empty_string_is_not_flagged_empty)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "e");
    rdb_builder_cstr(&b, "");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_done(b.p, b.len, NULL, &r);
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "e");
    cr_assert(k != NULL && !k->is_empty && k->has_raw && k->raw_len == 1);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

/* ---- Sets --------------------------------------------------------------- */

Test(rdb_decoder, hashtable_set_yields_members)
{
    struct rdb_builder b;
    begin(&b, 7);
    rdb_builder_key(&b, RDB_TYPE_SET, "set");
    rdb_builder_len(&b, 3);
    rdb_builder_cstr(&b, "m1");
    rdb_builder_str_int(&b, 100000, 32);
    rdb_builder_cstr(&b, "m3");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 7 redis\n"
               "KEY 0 \"set\" set 2\n"
               " E \"m1\"\n"
               " E \"100000\"\n"
               " E \"m3\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, intset_of_every_width_yields_decimal_members)
{
    static const int64_t v2[] = {-32768, -1, 0, 32767};
    static const int64_t v4[] = {INT32_MIN, 100000, INT32_MAX};
    static const int64_t v8[] = {INT64_MIN, 0, INT64_MAX};
    struct rdb_builder b, is;
    begin(&b, 11);
    rdb_builder_init(&is);
    intset_build(&is, 2, v2, 4);
    rdb_builder_key(&b, RDB_TYPE_SET_INTSET, "i2");
    rdb_builder_str_blob(&b, &is);
    is.len = 0;
    intset_build(&is, 4, v4, 3);
    rdb_builder_key(&b, RDB_TYPE_SET_INTSET, "i4");
    rdb_builder_str_blob(&b, &is);
    is.len = 0;
    intset_build(&is, 8, v8, 3);
    rdb_builder_key(&b, RDB_TYPE_SET_INTSET, "i8");
    rdb_builder_str_blob(&b, &is);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "KEY 0 \"i2\" set 11\n"
               " E \"-32768\"\n"
               " E \"-1\"\n"
               " E \"0\"\n"
               " E \"32767\"\n"
               "END\n"
               "KEY 0 \"i4\" set 11\n"
               " E \"-2147483648\"\n"
               " E \"100000\"\n"
               " E \"2147483647\"\n"
               "END\n"
               "KEY 0 \"i8\" set 11\n"
               " E \"-9223372036854775808\"\n"
               " E \"0\"\n"
               " E \"9223372036854775807\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&is);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, listpack_set_yields_string_and_integer_members)
{
    struct listpack_builder l;
    struct rdb_builder b, lp;
    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "alpha");
    listpack_builder_add_int(&l, 42);
    listpack_builder_add_int(&l, -70000);
    listpack_builder_add_cstr(&l, "3.14");
    rdb_builder_init(&lp);
    listpack_builder_finish(&l, &lp);
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_SET_LISTPACK, "slp");
    rdb_builder_str_blob(&b, &lp);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "KEY 0 \"slp\" set 20\n"
               " E \"alpha\"\n"
               " E \"42\"\n"
               " E \"-70000\"\n"
               " E \"3.14\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&lp);
    rdb_builder_deinit(&b);
    listpack_builder_deinit(&l);
}

/* ---- Sorted sets -------------------------------------------------------- */

Test(rdb_decoder, zset_with_text_scores_reads_the_infinity_markers)
{
    struct rdb_builder b;
    begin(&b, 6);
    rdb_builder_key(&b, RDB_TYPE_ZSET, "z");
    rdb_builder_len(&b, 5);
    rdb_builder_cstr(&b, "a");
    rdb_builder_score_text(&b, "1.5");
    rdb_builder_cstr(&b, "b");
    rdb_builder_score_marker(&b, 254);
    rdb_builder_cstr(&b, "c");
    rdb_builder_score_marker(&b, 255);
    rdb_builder_cstr(&b, "d");
    rdb_builder_score_text(&b, "-0.25");
    rdb_builder_cstr(&b, "e");
    rdb_builder_score_text(&b, "3");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 6 redis\n"
               "KEY 0 \"z\" zset 3\n"
               " Z \"a\" 1.5\n"
               " Z \"b\" inf\n"
               " Z \"c\" -inf\n"
               " Z \"d\" -0.25\n"
               " Z \"e\" 3\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, zset_nan_score_marker_is_read_as_nan)
{
    /* 253 is NaN in the format; Redis refuses a NaN score on load
     * ("Zset with NAN score detected"), a decoder may pass it on or refuse
     * it, but must not misread the bytes that follow. */
    struct rdb_builder b;
    begin(&b, 6);
    rdb_builder_key(&b, RDB_TYPE_ZSET, "z");
    rdb_builder_len(&b, 2);
    rdb_builder_cstr(&b, "n");
    rdb_builder_score_marker(&b, 253);
    rdb_builder_cstr(&b, "after");
    rdb_builder_score_text(&b, "2");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_all(b.p, b.len, NULL, SPLIT_ALL, &r);
    if (r.rc == RS_DONE) {
        cr_assert_str_eq(rdb_collector_log(&r.col), "HEADER 6 redis\n"
                                                    "KEY 0 \"z\" zset 3\n"
                                                    " Z \"n\" nan\n"
                                                    " Z \"after\" 2\n"
                                                    "END\n"
                                                    "EOF crc\n");
    } else {
        cr_assert_eq(r.rc, RS_ERR);
        cr_assert_eq(r.err.code, RS_E_FORMAT, "%s", r.err.msg);
        cr_assert(strstr(r.err.msg, "\"z\"") != NULL || strstr(r.err.msg, "'z'") != NULL,
                  "the message names the key: %s", r.err.msg);
    }
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, zset2_binary_scores_are_read_as_doubles)
{
    struct rdb_builder b;
    begin(&b, 8);
    rdb_builder_key(&b, RDB_TYPE_ZSET_2, "z2");
    rdb_builder_len(&b, 4);
    rdb_builder_cstr(&b, "a");
    rdb_builder_double(&b, 1.5);
    rdb_builder_cstr(&b, "b");
    rdb_builder_double(&b, -2.25);
    rdb_builder_cstr(&b, "c");
    rdb_builder_double(&b, INFINITY);
    rdb_builder_cstr(&b, "d");
    rdb_builder_double(&b, 1e300);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 8 redis\n"
               "KEY 0 \"z2\" zset 5\n"
               " Z \"a\" 1.5\n"
               " Z \"b\" -2.25\n"
               " Z \"c\" inf\n"
               " Z \"d\" 1.0000000000000001e+300\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, zset_ziplist_reads_integer_and_text_scores)
{
    struct ziplist_builder z;
    struct rdb_builder b, zl;
    ziplist_builder_init(&z);
    ziplist_builder_add_cstr(&z, "a");
    ziplist_builder_add_int(&z, 1);
    ziplist_builder_add_cstr(&z, "b");
    ziplist_builder_add_cstr(&z, "2.5");
    ziplist_builder_add_cstr(&z, "c");
    ziplist_builder_add_int(&z, -3);
    ziplist_builder_add_cstr(&z, "d");
    ziplist_builder_add_int(&z, 5000000000);
    ziplist_builder_add_cstr(&z, "e");
    ziplist_builder_add_cstr(&z, "inf");
    ziplist_builder_add_cstr(&z, "f");
    ziplist_builder_add_cstr(&z, "-inf");
    rdb_builder_init(&zl);
    ziplist_builder_finish(&z, &zl);
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_ZSET_ZIPLIST, "zzl");
    rdb_builder_str_blob(&b, &zl);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 9 redis\n"
               "KEY 0 \"zzl\" zset 12\n"
               " Z \"a\" 1\n"
               " Z \"b\" 2.5\n"
               " Z \"c\" -3\n"
               " Z \"d\" 5000000000\n"
               " Z \"e\" inf\n"
               " Z \"f\" -inf\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&zl);
    rdb_builder_deinit(&b);
    ziplist_builder_deinit(&z);
}

Test(rdb_decoder, zset_listpack_reads_integer_and_text_scores)
{
    struct listpack_builder l;
    struct rdb_builder b, lp;
    listpack_builder_init(&l);
    listpack_builder_add_int(&l, 7); /* an integer-looking member */
    listpack_builder_add_int(&l, 1);
    listpack_builder_add_cstr(&l, "b");
    listpack_builder_add_cstr(&l, "0.125");
    listpack_builder_add_cstr(&l, "c");
    listpack_builder_add_int(&l, -4000);
    listpack_builder_add_cstr(&l, "d");
    listpack_builder_add_cstr(&l, "1e-3");
    rdb_builder_init(&lp);
    listpack_builder_finish(&l, &lp);
    begin(&b, 10);
    rdb_builder_key(&b, RDB_TYPE_ZSET_LISTPACK, "zlp");
    rdb_builder_str_blob(&b, &lp);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 10 redis\n"
               "KEY 0 \"zlp\" zset 17\n"
               " Z \"7\" 1\n"
               " Z \"b\" 0.125\n"
               " Z \"c\" -4000\n"
               " Z \"d\" 0.001\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&lp);
    rdb_builder_deinit(&b);
    listpack_builder_deinit(&l);
}

/* ---- Hashes ------------------------------------------------------------- */

Test(rdb_decoder, hashtable_hash_yields_pairs)
{
    struct rdb_builder b;
    begin(&b, 6);
    rdb_builder_key(&b, RDB_TYPE_HASH, "h");
    rdb_builder_len(&b, 2);
    rdb_builder_cstr(&b, "f1");
    rdb_builder_cstr(&b, "v1");
    rdb_builder_str_int(&b, 300, 16);
    rdb_builder_str_lzf(&b, "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", 36);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 6 redis\n"
               "KEY 0 \"h\" hash 4\n"
               " H \"f1\" \"v1\"\n"
               " H \"300\" \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, zipmap_hash_skips_free_bytes_and_reads_long_keys)
{
    char *k254 = repeat('k', 254);
    char *v300 = repeat('v', 300);
    struct zipmap_builder z;
    struct rdb_builder b, zm;
    zipmap_builder_init(&z);
    zipmap_builder_add(&z, "f1", 2, "v1", 2, 0);
    zipmap_builder_add(&z, "f2", 2, "value2", 6, 3);
    zipmap_builder_add(&z, k254, 254, v300, 300, 0); /* both lengths 254 + 4 bytes */
    zipmap_builder_add(&z, "", 0, "empty field", 11, 1);
    rdb_builder_init(&zm);
    zipmap_builder_finish(&z, &zm, false);
    begin(&b, 3);
    rdb_builder_key(&b, RDB_TYPE_HASH_ZIPMAP, "zm");
    rdb_builder_str_blob(&b, &zm);
    /* The same with the count byte saying "unknown" (254). */
    zm.len = 0;
    zipmap_builder_finish(&z, &zm, true);
    rdb_builder_key(&b, RDB_TYPE_HASH_ZIPMAP, "zm2");
    rdb_builder_str_blob(&b, &zm);
    rdb_builder_eof_no_crc(&b);

    struct rdb_builder want;
    rdb_builder_init(&want);
    rdb_builder_bytes(&want, "HEADER 3 redis\n", 15);
    for (int i = 0; i < 2; i++) {
        const char *head = i == 0 ? "KEY 0 \"zm\" hash 9\n" : "KEY 0 \"zm2\" hash 9\n";
        rdb_builder_bytes(&want, head, strlen(head));
        const char *pairs = " H \"f1\" \"v1\"\n H \"f2\" \"value2\"\n H ";
        rdb_builder_bytes(&want, pairs, strlen(pairs));
        log_escaped(&want, k254, 254);
        rdb_builder_byte(&want, ' ');
        log_escaped(&want, v300, 300);
        const char *tail = "\n H \"\" \"empty field\"\nEND\n";
        rdb_builder_bytes(&want, tail, strlen(tail));
    }
    rdb_builder_bytes(&want, "EOF nocrc\n", 11);
    expect_log(&b, NULL, (const char *)want.p);
    rdb_builder_deinit(&want);
    rdb_builder_deinit(&zm);
    rdb_builder_deinit(&b);
    zipmap_builder_deinit(&z);
    free(k254);
    free(v300);
}

Test(rdb_decoder, ziplist_and_listpack_hashes_yield_pairs)
{
    struct ziplist_builder z;
    struct listpack_builder l;
    struct rdb_builder b, blob;
    ziplist_builder_init(&z);
    ziplist_builder_add_cstr(&z, "name");
    ziplist_builder_add_cstr(&z, "zl");
    ziplist_builder_add_int(&z, 10);
    ziplist_builder_add_int(&z, -200);
    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "name");
    listpack_builder_add_cstr(&l, "lp");
    listpack_builder_add_int(&l, 10);
    listpack_builder_add_int(&l, 123456789012);
    rdb_builder_init(&blob);
    begin(&b, 10);
    ziplist_builder_finish(&z, &blob);
    rdb_builder_key(&b, RDB_TYPE_HASH_ZIPLIST, "hzl");
    rdb_builder_str_blob(&b, &blob);
    blob.len = 0;
    listpack_builder_finish(&l, &blob);
    rdb_builder_key(&b, RDB_TYPE_HASH_LISTPACK, "hlp");
    rdb_builder_str_blob(&b, &blob);
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 10 redis\n"
               "KEY 0 \"hzl\" hash 13\n"
               " H \"name\" \"zl\"\n"
               " H \"10\" \"-200\"\n"
               "END\n"
               "KEY 0 \"hlp\" hash 16\n"
               " H \"name\" \"lp\"\n"
               " H \"10\" \"123456789012\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&blob);
    rdb_builder_deinit(&b);
    ziplist_builder_deinit(&z);
    listpack_builder_deinit(&l);
}

Test(rdb_decoder, redis_7_4_hash_field_ttls_are_absolute_ms)
{
    struct listpack_builder l;
    struct rdb_builder b, lp;
    rdb_builder_init(&lp);
    begin(&b, 12);

    /* 24: min-expire, count, then per field TTL (relative: min + ttl - 1), field, value. */
    rdb_builder_key(&b, RDB_TYPE_HASH_METADATA, "h24");
    rdb_builder_ms(&b, 1700000000000);
    rdb_builder_len(&b, 3);
    rdb_builder_len(&b, 0);
    rdb_builder_cstr(&b, "a");
    rdb_builder_cstr(&b, "1");
    rdb_builder_len(&b, 1);
    rdb_builder_cstr(&b, "b");
    rdb_builder_cstr(&b, "2");
    rdb_builder_len(&b, 5001);
    rdb_builder_cstr(&b, "c");
    rdb_builder_cstr(&b, "3");

    /* 25: min-expire, then a listpack of field, value, absolute TTL (0: none). */
    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "x");
    listpack_builder_add_int(&l, 1);
    listpack_builder_add_int(&l, 1700000000000);
    listpack_builder_add_cstr(&l, "y");
    listpack_builder_add_cstr(&l, "two");
    listpack_builder_add_int(&l, 1700000009000);
    listpack_builder_add_cstr(&l, "z");
    listpack_builder_add_cstr(&l, "3");
    listpack_builder_add_int(&l, 0);
    listpack_builder_finish(&l, &lp);
    listpack_builder_deinit(&l);
    rdb_builder_key(&b, RDB_TYPE_HASH_LISTPACK_EX, "h25");
    rdb_builder_ms(&b, 1700000000000);
    rdb_builder_str_blob(&b, &lp);

    /* 22 (7.4 RC): no min-expire; each TTL an absolute length (0: none). */
    rdb_builder_key(&b, RDB_TYPE_HASH_METADATA_PRE_GA, "h22");
    rdb_builder_len(&b, 2);
    rdb_builder_len(&b, 1700000001000);
    rdb_builder_cstr(&b, "p");
    rdb_builder_cstr(&b, "1");
    rdb_builder_len(&b, 0);
    rdb_builder_cstr(&b, "q");
    rdb_builder_cstr(&b, "2");

    /* 23 (7.4 RC): the listpack of triples alone. */
    lp.len = 0;
    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "r");
    listpack_builder_add_cstr(&l, "v");
    listpack_builder_add_int(&l, 1700000002000);
    listpack_builder_finish(&l, &lp);
    listpack_builder_deinit(&l);
    rdb_builder_key(&b, RDB_TYPE_HASH_LISTPACK_EX_PRE_GA, "h23");
    rdb_builder_str_blob(&b, &lp);
    rdb_builder_eof(&b);

    expect_log(&b, NULL,
               "HEADER 12 redis\n"
               "KEY 0 \"h24\" hash 24\n"
               " H \"a\" \"1\"\n"
               " H \"b\" \"2\" ttl=1700000000000\n"
               " H \"c\" \"3\" ttl=1700000005000\n"
               "END\n"
               "KEY 0 \"h25\" hash 25\n"
               " H \"x\" \"1\" ttl=1700000000000\n"
               " H \"y\" \"two\" ttl=1700000009000\n"
               " H \"z\" \"3\"\n"
               "END\n"
               "KEY 0 \"h22\" hash 22\n"
               " H \"p\" \"1\" ttl=1700000001000\n"
               " H \"q\" \"2\"\n"
               "END\n"
               "KEY 0 \"h23\" hash 23\n"
               " H \"r\" \"v\" ttl=1700000002000\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&lp);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, valkey_hash2_yields_field_expiries)
{
    struct rdb_builder b;
    rdb_builder_init(&b);
    rdb_builder_header_valkey(&b, 80);
    rdb_builder_aux(&b, "valkey-ver", "9.0.0");
    rdb_builder_selectdb(&b, 0);
    rdb_builder_resizedb(&b, 2, 0);
    /* Valkey 22: count, then per field: field, value, 8-byte expiry (-1: none). */
    rdb_builder_key(&b, RDB_TYPE_VALKEY_HASH_2, "vh");
    rdb_builder_len(&b, 2);
    rdb_builder_cstr(&b, "f");
    rdb_builder_cstr(&b, "v");
    rdb_builder_ms(&b, 1700000000123);
    rdb_builder_cstr(&b, "g");
    rdb_builder_str_int(&b, 5, 8);
    rdb_builder_ms(&b, -1);
    /* Other types are as in Redis 7.2. */
    rdb_builder_key(&b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&b, "x");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 80 valkey\n"
               "AUX \"valkey-ver\" \"9.0.0\"\n"
               "SELECTDB 0\n"
               "RESIZEDB 2 0\n"
               "KEY 0 \"vh\" hash 22\n"
               " H \"f\" \"v\" ttl=1700000000123\n"
               " H \"g\" \"5\"\n"
               "END\n"
               "KEY 0 \"s\" string 0 len=1\n"
               " S \"x\"\n"
               "END\n"
               "EOF crc\n");

    struct decode_result r;
    decode_expect_done(b.p, b.len, NULL, &r);
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "vh");
    cr_assert_eq(k->rdb_type, 22);
    decode_result_deinit(&r);
    cr_assert_str_neq(rdb_type_name(22, true), rdb_type_name(22, false),
                      "type 22 names differ between Valkey and Redis");
    rdb_builder_deinit(&b);
}

/* ---- Opcodes ------------------------------------------------------------ */

Test(rdb_decoder, aux_function_selectdb_resizedb_and_slot_info_are_reported)
{
    const char *code = "#!lua name=mylib\nredis.register_function('f', function() return 1 end)";
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_aux(&b, "redis-ver", "7.2.0");
    rdb_builder_aux(&b, "aof-base", "0");
    rdb_builder_function(&b, code);
    rdb_builder_selectdb(&b, 0);
    rdb_builder_resizedb(&b, 2, 1);
    rdb_builder_slot_info(&b, 42, 2, 1);
    rdb_builder_key(&b, RDB_TYPE_STRING, "a");
    rdb_builder_cstr(&b, "1");
    rdb_builder_selectdb(&b, 300);
    rdb_builder_expire_ms(&b, 1700000000123);
    rdb_builder_key(&b, RDB_TYPE_STRING, "b");
    rdb_builder_cstr(&b, "2");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "AUX \"redis-ver\" \"7.2.0\"\n"
               "AUX \"aof-base\" \"0\"\n"
               "FUNCTION \"#!lua name=mylib\\x0aredis.register_function('f', function() return 1 "
               "end)\"\n"
               "SELECTDB 0\n"
               "RESIZEDB 2 1\n"
               "SLOT_INFO 42 2 1\n"
               "KEY 0 \"a\" string 0 len=1\n"
               " S \"1\"\n"
               "END\n"
               "SELECTDB 300\n"
               "KEY 300 \"b\" string 0 len=1 expire=1700000000123\n"
               " S \"2\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, expiry_in_seconds_is_reported_in_ms)
{
    struct rdb_builder b;
    begin(&b, 6);
    rdb_builder_expire_s(&b, 1700000000);
    rdb_builder_key(&b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&b, "v");
    rdb_builder_expire_ms(&b, 1700000000999);
    rdb_builder_key(&b, RDB_TYPE_STRING, "ms");
    rdb_builder_cstr(&b, "v");
    rdb_builder_key(&b, RDB_TYPE_STRING, "none");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 6 redis\n"
               "KEY 0 \"s\" string 0 len=1 expire=1700000000000\n"
               " S \"v\"\n"
               "END\n"
               "KEY 0 \"ms\" string 0 len=1 expire=1700000000999\n"
               " S \"v\"\n"
               "END\n"
               "KEY 0 \"none\" string 0 len=1\n"
               " S \"v\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, idle_and_freq_hints_are_reported)
{
    struct rdb_builder b;
    begin(&b, 9);
    rdb_builder_idle(&b, 3600);
    rdb_builder_key(&b, RDB_TYPE_STRING, "lru");
    rdb_builder_cstr(&b, "v");
    rdb_builder_freq(&b, 7);
    rdb_builder_key(&b, RDB_TYPE_STRING, "lfu");
    rdb_builder_cstr(&b, "v");
    rdb_builder_expire_ms(&b, 1700000000000);
    rdb_builder_freq(&b, 255);
    rdb_builder_key(&b, RDB_TYPE_STRING, "both");
    rdb_builder_cstr(&b, "v");
    rdb_builder_key(&b, RDB_TYPE_STRING, "plain");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 9 redis\n"
               "KEY 0 \"lru\" string 0 len=1 idle=3600\n"
               " S \"v\"\n"
               "END\n"
               "KEY 0 \"lfu\" string 0 len=1 freq=7\n"
               " S \"v\"\n"
               "END\n"
               "KEY 0 \"both\" string 0 len=1 expire=1700000000000 freq=255\n"
               " S \"v\"\n"
               "END\n"
               "KEY 0 \"plain\" string 0 len=1\n"
               " S \"v\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, module_aux_is_reported_with_its_decoded_name)
{
    struct rdb_builder b;
    begin(&b, 9);
    size_t aux_start = b.len;
    rdb_builder_module_aux(&b, "MyModType", 2, 2);
    rdb_builder_module_uint(&b, 1);
    rdb_builder_module_string(&b, "abc", 3);
    rdb_builder_module_double(&b, 0.5);
    rdb_builder_module_eof(&b);
    size_t aux_end = b.len;
    rdb_builder_key(&b, RDB_TYPE_STRING, "k");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    struct decode_result r;
    const char *log = decode_expect_done(b.p, b.len, NULL, &r);
    cr_assert_str_eq(log, "HEADER 9 redis\n"
                          "MODULE_AUX \"MyModType\" encver=2 when=2\n"
                          "KEY 0 \"k\" string 0 len=1\n"
                          " S \"v\"\n"
                          "END\n"
                          "EOF crc\n");
    /* Its raw bytes are part of the record: at most the whole record. */
    const char *chunks = rdb_collector_chunks(&r.col);
    struct rdb_builder whole;
    rdb_builder_init(&whole);
    log_escaped(&whole, b.p + aux_start, aux_end - aux_start);
    rdb_builder_byte(&whole, '\0');
    const char *raw = strstr(chunks, "MODULE_AUX raw=\"");
    cr_assert(raw != NULL);
    raw += strlen("MODULE_AUX raw=");
    const char *raw_end = strchr(raw, '\n');
    size_t n = (size_t)(raw_end - raw);
    cr_assert(n >= 2, "quoted raw");
    /* raw (without its quotes) is a suffix of the record's bytes. */
    const char *w = (const char *)whole.p;
    size_t wn = strlen(w);
    cr_assert(n <= wn && memcmp(w + wn - 1 - (n - 2), raw + 1, n - 2) == 0,
              "MODULE_AUX raw %.*s is not the record's tail %s", (int)n, raw, w);
    rdb_builder_deinit(&whole);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, key_records_carry_the_selected_db)
{
    struct rdb_builder b;
    begin(&b, 7);
    rdb_builder_selectdb(&b, 0);
    rdb_builder_key(&b, RDB_TYPE_STRING, "k0");
    rdb_builder_cstr(&b, "a");
    rdb_builder_selectdb(&b, 15);
    rdb_builder_resizedb(&b, 1, 0);
    rdb_builder_key(&b, RDB_TYPE_STRING, "k15");
    rdb_builder_cstr(&b, "b");
    rdb_builder_selectdb(&b, 1);
    rdb_builder_key(&b, RDB_TYPE_SET, "k1");
    rdb_builder_len(&b, 1);
    rdb_builder_cstr(&b, "m");
    rdb_builder_eof(&b);
    expect_log(&b, NULL,
               "HEADER 7 redis\n"
               "SELECTDB 0\n"
               "KEY 0 \"k0\" string 0 len=1\n"
               " S \"a\"\n"
               "END\n"
               "SELECTDB 15\n"
               "RESIZEDB 1 0\n"
               "KEY 15 \"k15\" string 0 len=1\n"
               " S \"b\"\n"
               "END\n"
               "SELECTDB 1\n"
               "KEY 1 \"k1\" set 2\n"
               " E \"m\"\n"
               "END\n"
               "EOF crc\n");
    rdb_builder_deinit(&b);
}

/* ---- Versions and the trailer ------------------------------------------- */

Test(rdb_decoder, version_1_to_4_files_end_without_a_checksum)
{
    for (int v = 1; v <= 4; v++) {
        struct rdb_builder b;
        begin(&b, v);
        rdb_builder_selectdb(&b, 0);
        rdb_builder_key(&b, RDB_TYPE_STRING, "s");
        rdb_builder_cstr(&b, "old");
        rdb_builder_key(&b, RDB_TYPE_LIST, "l");
        rdb_builder_len(&b, 2);
        rdb_builder_cstr(&b, "x");
        rdb_builder_str_int(&b, 9, 8);
        rdb_builder_eof_no_crc(&b);
        char want[512];
        snprintf(want, sizeof(want),
                 "HEADER %d redis\n"
                 "SELECTDB 0\n"
                 "KEY 0 \"s\" string 0 len=3\n"
                 " S \"old\"\n"
                 "END\n"
                 "KEY 0 \"l\" list 1\n"
                 " E \"x\"\n"
                 " E \"9\"\n"
                 "END\n"
                 "EOF nocrc\n",
                 v);
        expect_log(&b, NULL, want);
        rdb_builder_deinit(&b);
    }
}

Test(rdb_decoder, version_6_file_ends_with_a_checked_crc)
{
    struct rdb_builder b;
    begin(&b, 6);
    rdb_builder_selectdb(&b, 0);
    rdb_builder_key(&b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    struct decode_result r;
    const char *log = decode_expect_done(b.p, b.len, NULL, &r);
    cr_assert_str_eq(log, "HEADER 6 redis\n"
                          "SELECTDB 0\n"
                          "KEY 0 \"s\" string 0 len=1\n"
                          " S \"v\"\n"
                          "END\n"
                          "EOF crc\n");
    uint64_t crc = rdb_crc64(0, b.p, b.len - 8);
    char want[64];
    snprintf(want, sizeof(want), " END %016llx\n", (unsigned long long)crc);
    cr_assert(strstr(rdb_collector_chunks(&r.col), want) != NULL, "checksum reported");
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, all_zero_crc_is_not_checked)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof_zero_crc(&b);
    expect_log(&b, NULL,
               "HEADER 11 redis\n"
               "KEY 0 \"s\" string 0 len=1\n"
               " S \"v\"\n"
               "END\n"
               "EOF nocrc\n");
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, skip_checksum_accepts_a_wrong_crc)
{
    struct rdb_decoder_config cfg = {.skip_checksum = true};
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    b.p[b.len - 1] ^= 0x40;
    struct decode_result r;
    decode_expect_done(b.p, b.len, &cfg, &r);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, bytes_after_the_checksum_are_left_to_the_caller)
{
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&b, "v");
    rdb_builder_eof(&b);
    size_t rdb_len = b.len;
    rdb_builder_bytes(&b, "*1\r\n$4\r\nPING\r\n", 14);
    struct decode_result r;
    decode_all(b.p, b.len, NULL, SPLIT_ALL, &r);
    cr_assert_eq(r.rc, RS_DONE);
    cr_assert_eq(r.used, rdb_len, "used %llu, the snapshot has %zu bytes",
                 (unsigned long long)r.used, rdb_len);
    cr_assert_eq(r.end_offset, rdb_len);
    decode_result_deinit(&r);

    /* The same for an old file without a checksum. */
    struct rdb_builder o;
    begin(&o, 4);
    rdb_builder_key(&o, RDB_TYPE_STRING, "s");
    rdb_builder_cstr(&o, "v");
    rdb_builder_eof_no_crc(&o);
    rdb_len = o.len;
    rdb_builder_bytes(&o, "\xff\xff", 2);
    decode_all(o.p, o.len, NULL, SPLIT_ALL, &r);
    cr_assert_eq(r.rc, RS_DONE);
    cr_assert_eq(r.used, rdb_len);
    decode_result_deinit(&r);
    rdb_builder_deinit(&o);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, version_is_known_after_the_header)
{
    struct rdb_builder b;
    begin(&b, 10);
    rdb_builder_eof(&b);
    struct rdb_collector c;
    rdb_collector_init(&c, NULL);
    struct rdb_decoder *d = rdb_decoder_new(NULL, rdb_collector_event, &c);
    struct rs_error err;
    cr_assert_eq(rdb_decoder_version(d), 0);
    cr_assert_eq(rdb_decoder_feed(d, b.p, 9, NULL, &err), RS_OK);
    cr_assert_eq(rdb_decoder_version(d), 10);
    cr_assert_eq(rdb_decoder_offset(d), 9);
    cr_assert_eq(rdb_decoder_feed(d, b.p + 9, b.len - 9, NULL, &err), RS_DONE);
    cr_assert_eq(rdb_decoder_finish(d, &err), RS_DONE);
    rdb_decoder_free(d);
    rdb_collector_deinit(&c);
    rdb_builder_deinit(&b);
}

/* ---- Raw value bytes, offsets and chunks -------------------------------- */

/* A DUMP payload from a key's raw bytes: type, value, version LE, CRC64 LE. */
static void dump_payload(struct rdb_builder *out, uint8_t type, const uint8_t *raw, size_t n,
                         int version)
{
    rdb_builder_byte(out, type);
    rdb_builder_bytes(out, raw, n);
    rdb_builder_u16le(out, (uint16_t)version);
    rdb_builder_u64le(out, rdb_crc64(0, out->p, out->len));
}

Test(rdb_decoder, key_end_raw_is_the_value_exact_file_bytes)
{
    struct rdb_builder b, blob;
    struct listpack_builder l;
    rdb_builder_init(&blob);
    begin(&b, 11);
    rdb_builder_aux(&b, "redis-ver", "7.2.4");

    size_t key_start[4], value_start[4], value_end[4];
    key_start[0] = b.len;
    rdb_builder_expire_ms(&b, 1700000000000);
    rdb_builder_key(&b, RDB_TYPE_STRING, "str");
    value_start[0] = b.len;
    rdb_builder_str_lzf(&b, "abababababababababababababababab", 32);
    value_end[0] = b.len;

    key_start[1] = b.len;
    rdb_builder_key(&b, RDB_TYPE_LIST, "list");
    value_start[1] = b.len;
    rdb_builder_len(&b, 2);
    rdb_builder_cstr(&b, "x");
    rdb_builder_str_int(&b, 1000, 16);
    value_end[1] = b.len;

    listpack_builder_init(&l);
    listpack_builder_add_cstr(&l, "f");
    listpack_builder_add_int(&l, 1);
    listpack_builder_finish(&l, &blob);
    listpack_builder_deinit(&l);
    key_start[2] = b.len;
    rdb_builder_idle(&b, 10);
    rdb_builder_key(&b, RDB_TYPE_HASH_LISTPACK, "hash");
    value_start[2] = b.len;
    rdb_builder_str_blob(&b, &blob);
    value_end[2] = b.len;

    key_start[3] = b.len;
    rdb_builder_key(&b, RDB_TYPE_ZSET_2, "zset");
    value_start[3] = b.len;
    rdb_builder_len(&b, 1);
    rdb_builder_cstr(&b, "m");
    rdb_builder_double(&b, 2.5);
    value_end[3] = b.len;
    rdb_builder_eof(&b);

    static const char *const names[] = {"str", "list", "hash", "zset"};
    static const uint8_t types[] = {RDB_TYPE_STRING, RDB_TYPE_LIST, RDB_TYPE_HASH_LISTPACK,
                                    RDB_TYPE_ZSET_2};
    struct decode_result r;
    decode_expect_done(b.p, b.len, NULL, &r);
    for (int i = 0; i < 4; i++) {
        const struct rdb_key_seen *k = rdb_collector_key(&r.col, names[i]);
        cr_assert(k != NULL, "key %s", names[i]);
        size_t n = value_end[i] - value_start[i];
        cr_assert(k->has_raw, "%s has raw bytes", names[i]);
        cr_assert_eq(k->encoded_size, n, "%s encoded_size", names[i]);
        cr_assert_eq(k->raw_len, n, "%s raw length", names[i]);
        cr_assert(memcmp(k->raw, b.p + value_start[i], n) == 0, "%s raw bytes", names[i]);
        cr_assert_eq(k->offset, key_start[i], "%s key offset", names[i]);
        cr_assert_eq(k->begin_offset, key_start[i], "%s KEY_BEGIN event offset", names[i]);
        cr_assert_eq(k->value_offset, value_start[i], "%s value offset", names[i]);

        /* type + raw + version + CRC: the DUMP layout, 1 + n + 2 + 8 bytes. */
        struct rdb_builder dump;
        rdb_builder_init(&dump);
        dump_payload(&dump, types[i], k->raw, k->raw_len, 11);
        cr_assert_eq(dump.len, 1 + n + 10);
        cr_assert_eq(dump.p[0], types[i]);
        cr_assert_eq(dump.p[1 + n], 11);
        cr_assert_eq(dump.p[2 + n], 0);
        rdb_builder_deinit(&dump);
    }
    decode_result_deinit(&r);
    rdb_builder_deinit(&blob);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, value_past_raw_max_has_its_encoded_size_but_no_raw)
{
    struct rdb_decoder_config cfg = {.raw_max = 16};
    struct ziplist_builder z;
    struct rdb_builder b, zl;
    ziplist_builder_init(&z);
    for (int i = 0; i < 10; i++)
        ziplist_builder_add_cstr(&z, "element");
    rdb_builder_init(&zl);
    ziplist_builder_finish(&z, &zl);
    begin(&b, 9);
    rdb_builder_key(&b, RDB_TYPE_LIST_ZIPLIST, "zl");
    size_t start = b.len;
    rdb_builder_str_blob(&b, &zl);
    size_t n = b.len - start;
    rdb_builder_key(&b, RDB_TYPE_STRING, "small");
    rdb_builder_cstr(&b, "fits");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_done(b.p, b.len, &cfg, &r);
    const struct rdb_key_seen *k = rdb_collector_key(&r.col, "zl");
    cr_assert(!k->has_raw);
    cr_assert_eq(k->encoded_size, n);
    cr_assert_eq(k->nitems, 10);
    k = rdb_collector_key(&r.col, "small");
    cr_assert(k->has_raw && k->raw_len == 5 &&
              memcmp(k->raw,
                     "\x04"
                     "fits",
                     5) == 0);
    decode_result_deinit(&r);
    rdb_builder_deinit(&zl);
    rdb_builder_deinit(&b);
    ziplist_builder_deinit(&z);
}

Test(rdb_decoder, items_come_in_chunks_of_at_most_chunk_items)
{
    struct rdb_decoder_config cfg = {.chunk_items = 3};
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_LIST, "l");
    rdb_builder_len(&b, 10);
    for (int i = 0; i < 10; i++)
        rdb_builder_str_int(&b, i, 8);
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_done(b.p, b.len, &cfg, &r);
    const char *chunks = rdb_collector_chunks(&r.col);
    size_t events = 0, items = 0;
    for (const char *p = strstr(chunks, " ITEMS "); p != NULL; p = strstr(p + 1, " ITEMS ")) {
        events++;
        items += strtoul(p + 7, NULL, 10);
    }
    cr_assert_eq(items, 10);
    cr_assert_geq(events, 4, "10 items, at most 3 per event:\n%s", chunks);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder, items_chunks_hold_at_most_chunk_bytes_unless_one_item_is_bigger)
{
    struct rdb_decoder_config cfg = {.chunk_bytes = 10, .raw_max = 4096};
    char *big = repeat('B', 50);
    struct rdb_builder b;
    begin(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_SET, "s");
    rdb_builder_len(&b, 6);
    rdb_builder_cstr(&b, "aaaa");
    rdb_builder_cstr(&b, "bbbb");
    rdb_builder_cstr(&b, "cccc");
    rdb_builder_cstr(&b, big);
    rdb_builder_cstr(&b, "dd");
    rdb_builder_cstr(&b, "ee");
    rdb_builder_eof(&b);
    struct decode_result r;
    decode_expect_done(b.p, b.len, &cfg, &r);
    cr_assert_eq(r.col.keys[0].nitems, 6);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
    free(big);
}
