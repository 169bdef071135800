/* test_rdb_decoder_files.c - the RDB decoder on real files written by Redis
 * servers ($RS_TESTDATA/rdb, from Redis's own test suite), and its memory
 * bound on big synthetic values.
 *
 * The expected logs were written by hand from the files' bytes and checked
 * against what redis-server 7.0.15 loads from them (KEYS, TYPE, GET, LRANGE,
 * SMEMBERS, ZRANGE WITHSCORES, HGETALL): same keys, values and order.
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

static const char *expect_file(const char *name, const char *expected)
{
    struct rdb_builder b;
    rdb_builder_init(&b);
    read_testdata(&b, name);
    struct decode_result r;
    const char *log = decode_expect_done(b.p, b.len, NULL, &r);
    cr_assert_str_eq(log, expected, "%s:\n%s", name, log);
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
    return expected;
}

/* ---- Real files --------------------------------------------------------- */

Test(rdb_decoder_files, encodings_rdb_version_4_yields_every_old_encoding)
{
    char a137[138];
    memset(a137, 'a', 137);
    a137[137] = '\0';
    static const char list8[] = " E \"1\"\n E \"2\"\n E \"3\"\n E \"a\"\n E \"b\"\n E \"c\"\n"
                                " E \"100000\"\n E \"6000000000\"\n";
    char want[4096];
    snprintf(want, sizeof(want),
             "HEADER 4 redis\n"
             "SELECTDB 0\n"
             "KEY 0 \"zset\" zset 3\n"
             " Z \"bb\" 20\n"
             " Z \"cc\" 30\n"
             " Z \"bbb\" 200\n"
             " Z \"bbbb\" 5000000000\n"
             " Z \"ccc\" 300\n"
             " Z \"cccc\" 123456789\n"
             " Z \"a\" 1\n"
             " Z \"aa\" 10\n"
             " Z \"b\" 2\n"
             " Z \"aaa\" 100\n"
             " Z \"c\" 3\n"
             " Z \"aaaa\" 1000\n"
             "END\n"
             "KEY 0 \"set_zipped_1\" set 11\n"
             " E \"1\"\n E \"2\"\n E \"3\"\n E \"4\"\n"
             "END\n"
             "KEY 0 \"list_zipped\" list 10\n"
             "%s"
             "END\n"
             "KEY 0 \"string\" string 0 len=11\n"
             " S \"Hello World\"\n"
             "END\n"
             "KEY 0 \"compressible\" string 0 len=137\n"
             " S \"%s\"\n"
             "END\n"
             "KEY 0 \"set_zipped_2\" set 11\n"
             " E \"100000\"\n E \"200000\"\n E \"300000\"\n E \"400000\"\n"
             "END\n"
             "KEY 0 \"number\" string 0 len=2\n"
             " S \"10\"\n"
             "END\n"
             "KEY 0 \"set_zipped_3\" set 11\n"
             " E \"1000000000\"\n E \"2000000000\"\n E \"3000000000\"\n"
             " E \"4000000000\"\n E \"5000000000\"\n E \"6000000000\"\n"
             "END\n"
             "KEY 0 \"set\" set 2\n"
             " E \"6000000000\"\n E \"100000\"\n E \"a\"\n E \"1\"\n"
             " E \"b\"\n E \"2\"\n E \"c\"\n E \"3\"\n"
             "END\n"
             "KEY 0 \"list\" list 1\n"
             "%s%s%s"
             "END\n"
             "KEY 0 \"hash_zipped\" hash 13\n"
             " H \"a\" \"1\"\n H \"b\" \"2\"\n H \"c\" \"3\"\n"
             "END\n"
             "KEY 0 \"zset_zipped\" zset 12\n"
             " Z \"a\" 1\n Z \"b\" 2\n Z \"c\" 3\n"
             "END\n"
             "KEY 0 \"hash\" hash 4\n"
             " H \"b\" \"2\"\n"
             " H \"aa\" \"10\"\n"
             " H \"c\" \"3\"\n"
             " H \"aaa\" \"100\"\n"
             " H \"bb\" \"20\"\n"
             " H \"cc\" \"30\"\n"
             " H \"bbb\" \"200\"\n"
             " H \"ccc\" \"300\"\n"
             " H \"ddd\" \"400\"\n"
             " H \"eee\" \"5000000000\"\n"
             " H \"a\" \"1\"\n"
             "END\n"
             "EOF nocrc\n",
             list8, a137, list8, list8, list8);
    expect_file("encodings.rdb", want);
}

Test(rdb_decoder_files, hash_zipmap_rdb_version_3_yields_the_hash)
{
    expect_file("hash-zipmap.rdb", "HEADER 3 redis\n"
                                   "SELECTDB 0\n"
                                   "KEY 0 \"hash\" hash 9\n"
                                   " H \"f1\" \"v1\"\n"
                                   " H \"f2\" \"v2\"\n"
                                   "END\n"
                                   "EOF nocrc\n");
}

Test(rdb_decoder_files, list_quicklist_rdb_version_8_yields_the_list_and_string)
{
    expect_file("list-quicklist.rdb", "HEADER 8 redis\n"
                                      "AUX \"redis-ver\" \"4.0.9\"\n"
                                      "AUX \"redis-bits\" \"64\"\n"
                                      "AUX \"ctime\" \"1629882015\"\n"
                                      "AUX \"used-mem\" \"496256\"\n"
                                      "AUX \"aof-preamble\" \"0\"\n"
                                      "SELECTDB 0\n"
                                      "RESIZEDB 2 0\n"
                                      "KEY 0 \"list\" list 14\n"
                                      " E \"7\"\n"
                                      "END\n"
                                      "KEY 0 \"x\" string 0 len=1\n"
                                      " S \"7\"\n"
                                      "END\n"
                                      "EOF crc\n");
}

Test(rdb_decoder_files, hash_ziplist_rdb_version_9_yields_the_hash)
{
    expect_file("hash-ziplist.rdb", "HEADER 9 redis\n"
                                    "AUX \"redis-ver\" \"255.255.255\"\n"
                                    "AUX \"redis-bits\" \"64\"\n"
                                    "AUX \"ctime\" \"1620466888\"\n"
                                    "AUX \"used-mem\" \"830864\"\n"
                                    "AUX \"aof-preamble\" \"0\"\n"
                                    "SELECTDB 0\n"
                                    "RESIZEDB 1 0\n"
                                    "KEY 0 \"hash\" hash 13\n"
                                    " H \"f1\" \"v1\"\n"
                                    " H \"f2\" \"v2\"\n"
                                    "END\n"
                                    "EOF crc\n");
}

Test(rdb_decoder_files, zset_ziplist_rdb_version_10_yields_the_zset)
{
    expect_file("zset-ziplist.rdb", "HEADER 10 redis\n"
                                    "AUX \"redis-ver\" \"255.255.255\"\n"
                                    "AUX \"redis-bits\" \"64\"\n"
                                    "AUX \"ctime\" \"1628682082\"\n"
                                    "AUX \"used-mem\" \"848976\"\n"
                                    "AUX \"aof-preamble\" \"0\"\n"
                                    "SELECTDB 0\n"
                                    "RESIZEDB 1 0\n"
                                    "KEY 0 \"zset\" zset 12\n"
                                    " Z \"one\" 1\n"
                                    " Z \"two\" 2\n"
                                    "END\n"
                                    "EOF crc\n");
}

Test(rdb_decoder_files, scriptbackup_rdb_keeps_the_lua_script_in_an_aux_field)
{
    expect_file("scriptbackup.rdb", "HEADER 10 redis\n"
                                    "AUX \"redis-ver\" \"255.255.255\"\n"
                                    "AUX \"redis-bits\" \"64\"\n"
                                    "AUX \"ctime\" \"1639381261\"\n"
                                    "AUX \"used-mem\" \"908432\"\n"
                                    "AUX \"repl-stream-db\" \"0\"\n"
                                    "AUX \"repl-id\" \"349eeafec1f98f3f56277e95fc86bc48b30651a2\"\n"
                                    "AUX \"repl-offset\" \"0\"\n"
                                    "AUX \"aof-preamble\" \"0\"\n"
                                    "AUX \"lua\" \"return redis.call('set', 'foo', 'bar')\"\n"
                                    "EOF crc\n");
}

Test(rdb_decoder_files, real_files_give_the_same_events_with_small_chunks_and_pieces)
{
    static const char *const files[] = {"encodings.rdb",      "hash-zipmap.rdb",
                                        "list-quicklist.rdb", "hash-ziplist.rdb",
                                        "zset-ziplist.rdb",   "scriptbackup.rdb"};
    struct rdb_decoder_config small = {
        .raw_max = 8, .chunk_items = 2, .chunk_bytes = 8, .string_piece = 4};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct rdb_builder b;
        rdb_builder_init(&b);
        read_testdata(&b, files[i]);
        struct decode_result big, tiny;
        decode_expect_done(b.p, b.len, NULL, &big);
        decode_expect_done(b.p, b.len, &small, &tiny);
        cr_assert_str_eq(rdb_collector_log(&tiny.col), rdb_collector_log(&big.col),
                         "%s: the items depend on the limits", files[i]);
        decode_result_deinit(&big);
        decode_result_deinit(&tiny);
        rdb_builder_deinit(&b);
    }
}

/* ---- Corrupt files ------------------------------------------------------ */

static size_t find(const struct rdb_builder *b, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= b->len; i++)
        if (memcmp(b->p + i, needle, n) == 0)
            return i;
    cr_assert_fail("pattern not found");
    return 0;
}

Test(rdb_decoder_files, corrupt_ziplist_rdb_is_refused_naming_the_ziplist)
{
    /* A hash-ziplist (13) value "xxxxx": five bytes where a ziplist is due. */
    struct rdb_builder b;
    rdb_builder_init(&b);
    read_testdata(&b, "corrupt_ziplist.rdb");
    size_t key = find(&b, "\x0d\x10key:000000000091", 18);
    size_t blob = key + 18 + 1;
    struct decode_result r;
    decode_expect_error(b.p, b.len, NULL, RS_E_FORMAT, &r);
    cr_assert(strstr(r.err.msg, "key:000000000091") != NULL, "%s", r.err.msg);
    cr_assert(strcasestr(r.err.msg, "ziplist") != NULL, "%s", r.err.msg);
    cr_assert_eq(r.err.offset, blob, "offset %llu, the ziplist is at %zu (%s)",
                 (unsigned long long)r.err.offset, blob, r.err.msg);
    const char *log = rdb_collector_log(&r.col);
    cr_assert(strstr(log, "KEY 0 \"mylist\" list 14\n E \"xxxxx\"\n E \"xxxxx\"\n E \"xxxxx\"\n "
                          "E \"xxxxx\"\n E \"xxxxx\"\nEND\n") != NULL,
              "the keys before are delivered:\n%s", log);
    cr_assert(strstr(log, "key:000000000091") != NULL, "KEY_BEGIN of the bad key");
    decode_result_deinit(&r);
    rdb_builder_deinit(&b);
}

Test(rdb_decoder_files, corrupt_empty_keys_rdb_yields_keys_flagged_empty)
{
    /* Empty collections of nine encodings. Redis skips empty keys on load
     * ("empty keys skipped"); the decoder flags them is_empty so the consumer
     * can skip them too. */
    expect_file("corrupt_empty_keys.rdb", "HEADER 10 redis\n"
                                          "AUX \"redis-ver\" \"255.255.255\"\n"
                                          "AUX \"redis-bits\" \"64\"\n"
                                          "AUX \"ctime\" \"1628772474\"\n"
                                          "AUX \"used-mem\" \"1061248\"\n"
                                          "AUX \"aof-preamble\" \"0\"\n"
                                          "SELECTDB 0\n"
                                          "RESIZEDB 9 0\n"
                                          "KEY 0 \"set\" set 2\n"
                                          "END empty\n"
                                          "KEY 0 \"hash\" hash 4\n"
                                          "END empty\n"
                                          "KEY 0 \"list_ziplist\" list 10\n"
                                          "END empty\n"
                                          "KEY 0 \"zset\" zset 5\n"
                                          "END empty\n"
                                          "KEY 0 \"zset_listpack\" zset 17\n"
                                          "END empty\n"
                                          "KEY 0 \"hash_ziplist\" hash 16\n"
                                          "END empty\n"
                                          "KEY 0 \"list_quicklist\" list 14\n"
                                          "END empty\n"
                                          "KEY 0 \"zset_ziplist\" zset 12\n"
                                          "END empty\n"
                                          "KEY 0 \"list_quicklist_empty_ziplist\" list 14\n"
                                          "END empty\n"
                                          "EOF crc\n");
}

/* ---- The memory bound --------------------------------------------------- */

#define MIB           (1024u * 1024u)
#define PEAK_BYTES_OK (4u * MIB)

struct tally {
    size_t events;
    size_t items;
    size_t keys;
    uint64_t string_bytes;
    uint64_t string_sum; /* a checksum of the string's bytes, in order */
    bool ended;
    struct rdb_builder last; /* the last element seen */
};

static int tally_event(void *ctx, const struct rdb_event *ev)
{
    struct tally *t = ctx;
    t->events++;
    if (ev->type == RDB_EV_KEY_BEGIN)
        t->keys++;
    if (ev->type == RDB_EV_END)
        t->ended = true;
    if (ev->type != RDB_EV_ITEMS)
        return 0;
    for (size_t i = 0; i < ev->items.count; i++) {
        const struct rdb_item *it = &ev->items.items[i];
        t->items++;
        if (it->kind == RDB_ITEM_STRING_PART) {
            for (size_t k = 0; k < it->a.len; k++)
                t->string_sum = t->string_sum * 31 + (uint8_t)it->a.p[k];
            t->string_bytes += it->a.len;
        } else {
            t->last.len = 0;
            rdb_builder_bytes(&t->last, it->a.p, it->a.len);
        }
    }
    return 0;
}

/* Decodes in pieces of `step` bytes (0: whole) with the default config. */
static size_t decode_tally(const struct rdb_builder *b, size_t step, struct tally *t)
{
    memset(t, 0, sizeof(*t));
    rdb_builder_init(&t->last);
    struct rdb_decoder *d = rdb_decoder_new(NULL, tally_event, t);
    cr_assert(d != NULL);
    struct rs_error err = {0};
    int rc = RS_OK;
    if (step == 0)
        step = b->len;
    for (size_t off = 0; off < b->len && rc == RS_OK; off += step)
        rc = rdb_decoder_feed(d, b->p + off, b->len - off < step ? b->len - off : step, NULL, &err);
    cr_assert_eq(rc, RS_DONE, "%s", err.msg);
    cr_assert_eq(rdb_decoder_finish(d, &err), RS_DONE);
    size_t peak = rdb_decoder_peak_bytes(d);
    rdb_decoder_free(d);
    cr_assert(t->ended);
    return peak;
}

static uint64_t sum_bytes(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

static uint8_t *big_text(size_t n)
{
    uint8_t *p = malloc(n);
    cr_assert(p != NULL);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)("The quick brown fox jumps over the lazy dog. "[i % 45] + (i / 4096) % 3);
    return p;
}

Test(rdb_decoder_files, plain_8_mib_string_is_decoded_in_bounded_memory, .timeout = 120)
{
    size_t n = 8 * MIB;
    uint8_t *text = big_text(n);
    struct rdb_builder b;
    rdb_builder_init(&b);
    rdb_builder_header(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "big");
    rdb_builder_str(&b, text, n);
    rdb_builder_eof(&b);
    static const size_t steps[] = {0, 64 * 1024, 4093};
    for (size_t i = 0; i < 3; i++) {
        struct tally t;
        size_t peak = decode_tally(&b, steps[i], &t);
        cr_assert_eq(t.string_bytes, n, "step %zu", steps[i]);
        cr_assert_eq(t.string_sum, sum_bytes(text, n), "step %zu: the bytes differ", steps[i]);
        cr_assert_lt(peak, PEAK_BYTES_OK, "step %zu: peak %zu bytes", steps[i], peak);
        rdb_builder_deinit(&t.last);
    }
    rdb_builder_deinit(&b);
    free(text);
}

Test(rdb_decoder_files, lzf_8_mib_string_is_decoded_in_bounded_memory, .timeout = 120)
{
    size_t n = 8 * MIB;
    uint8_t *text = big_text(n);
    struct rdb_builder b;
    rdb_builder_init(&b);
    rdb_builder_header(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_STRING, "biglzf");
    size_t clen = rdb_builder_str_lzf(&b, text, n);
    cr_assert_lt(clen, n / 4, "the text compresses");
    rdb_builder_eof(&b);
    static const size_t steps[] = {0, 64 * 1024, 4093};
    for (size_t i = 0; i < 3; i++) {
        struct tally t;
        size_t peak = decode_tally(&b, steps[i], &t);
        cr_assert_eq(t.string_bytes, n, "step %zu", steps[i]);
        cr_assert_eq(t.string_sum, sum_bytes(text, n), "step %zu: the bytes differ", steps[i]);
        cr_assert_lt(peak, PEAK_BYTES_OK, "step %zu: peak %zu bytes", steps[i], peak);
        rdb_builder_deinit(&t.last);
    }
    rdb_builder_deinit(&b);
    free(text);
}

Test(rdb_decoder_files, list_of_a_million_elements_is_decoded_in_bounded_memory, .timeout = 120)
{
    size_t n = 1000000;
    struct rdb_builder b;
    rdb_builder_init(&b);
    rdb_builder_header(&b, 11);
    rdb_builder_key(&b, RDB_TYPE_LIST, "biglist");
    rdb_builder_len(&b, n);
    char elem[32];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(elem, sizeof(elem), "element-%zu", i);
        rdb_builder_str(&b, elem, (size_t)len);
    }
    rdb_builder_eof(&b);
    static const size_t steps[] = {0, 64 * 1024, 4093};
    for (size_t i = 0; i < 3; i++) {
        struct tally t;
        size_t peak = decode_tally(&b, steps[i], &t);
        cr_assert_eq(t.items, n, "step %zu: %zu items", steps[i], t.items);
        cr_assert_eq(t.keys, 1);
        cr_assert(t.last.len == 14 && memcmp(t.last.p, "element-999999", 14) == 0,
                  "the last element");
        cr_assert_lt(peak, PEAK_BYTES_OK, "step %zu: peak %zu bytes", steps[i], peak);
        rdb_builder_deinit(&t.last);
    }
    rdb_builder_deinit(&b);
}
