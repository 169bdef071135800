/* fuzz_rdb_decoder.c - the RDB decoder on any bytes: no crash, no read past
 * the input, and the same outcome whatever the split of the input.
 *
 * Input: the RDB bytes themselves (seeds in corpus/rdb_decoder/ are valid
 * files written by the unit tests with RS_WRITE_CORPUS). Each input is
 * decoded whole, split in two at a point derived from its bytes, and (when
 * small) one byte at a time, with small limits so that string pieces, chunks
 * and the element limit are all reached. The runs must agree on the result
 * code, the error code and offset, the number of events and a hash of what
 * the events carried.
 */
#include <stdbool.h>
#include <string.h>

#include "rdb_decoder.h"

#define ONE_BYTE_MAX 1024 /* inputs up to this size are also fed byte by byte */

struct outcome {
    int rc;
    int finish_rc;
    struct rs_error err;
    size_t events;
    uint64_t hash;
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL; /* FNV-1a */
    return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
    return mix(h, &v, sizeof(v));
}

static uint64_t mix_slice(uint64_t h, struct rs_slice s)
{
    RS_ASSERT(s.len == 0 || s.p != NULL);
    return mix(mix_u64(h, s.len), s.p, s.len);
}

static int on_event(void *ctx, const struct rdb_event *ev)
{
    struct outcome *o = ctx;
    o->events++;
    uint64_t h = mix_u64(mix_u64(o->hash, (uint64_t)ev->type), ev->offset);
    switch (ev->type) {
    case RDB_EV_KEY_BEGIN:
        RS_ASSERT(ev->key != NULL);
        h = mix_slice(h, ev->key->key);
        h = mix_u64(h, ev->key->rdb_type);
        h = mix_u64(h, (uint64_t)ev->key->expire_ms);
        break;
    case RDB_EV_ITEMS:
        RS_ASSERT(ev->key != NULL && ev->items.count > 0);
        h = mix_u64(h, ev->items.count);
        for (size_t i = 0; i < ev->items.count; i++) {
            const struct rdb_item *it = &ev->items.items[i];
            h = mix_u64(h, it->kind);
            h = mix_slice(h, it->a);
            h = mix_slice(h, it->b);
            if (it->kind == RDB_ITEM_STREAM_ENTRY) {
                h = mix_u64(mix_u64(h, it->entry.id.ms), it->entry.id.seq);
                h = mix_u64(h, it->entry.deleted);
            }
            if (it->kind == RDB_ITEM_STREAM_ENTRY)
                for (uint32_t k = 0; k < it->entry.nfv; k++)
                    h = mix_slice(h, it->entry.fv[k]);
        }
        break;
    case RDB_EV_KEY_END:
        RS_ASSERT(ev->key != NULL);
        h = mix_u64(h, ev->key_end.encoded_size);
        h = mix_u64(h, ev->key_end.is_empty);
        if (ev->key_end.has_raw) {
            RS_ASSERT(ev->key_end.raw.len == ev->key_end.encoded_size);
            h = mix_slice(h, ev->key_end.raw);
        }
        break;
    case RDB_EV_AUX:
        h = mix_slice(mix_slice(h, ev->aux.name), ev->aux.value);
        break;
    case RDB_EV_FUNCTION:
        h = mix_slice(h, ev->function.code);
        break;
    default:
        break;
    }
    o->hash = h;
    return 0;
}

static int feed(struct rdb_decoder *d, const uint8_t *p, size_t n, struct outcome *o)
{
    size_t used = 0;
    int rc = rdb_decoder_feed(d, p, n, &used, &o->err);
    RS_ASSERT(rc == RS_OK || rc == RS_DONE || rc == RS_ERR);
    RS_ASSERT(rc != RS_OK || used == n);
    RS_ASSERT(used <= n);
    return rc;
}

/* Feeds data in pieces: [0, split) then the rest, or `step` bytes at a time. */
static void decode(const uint8_t *data, size_t size, size_t split, size_t step, struct outcome *o)
{
    static const struct rdb_decoder_config cfg = {
        .raw_max = 64,
        .string_piece = 16,
        .chunk_items = 4,
        .chunk_bytes = 64,
        .element_max = 1024 * 1024,
    };
    memset(o, 0, sizeof(*o));
    struct rdb_decoder *d = rdb_decoder_new(&cfg, on_event, o);
    RS_ASSERT(d != NULL);
    int rc = RS_OK;
    if (step == 0) {
        rc = feed(d, data, split, o);
        if (rc == RS_OK && split < size)
            rc = feed(d, data + split, size - split, o);
    } else {
        for (size_t off = 0; rc == RS_OK && off < size; off += step)
            rc = feed(d, data + off, size - off < step ? size - off : step, o);
    }
    o->rc = rc;
    struct rs_error ferr;
    memset(&ferr, 0, sizeof(ferr));
    o->finish_rc = rdb_decoder_finish(d, &ferr);
    if (rc == RS_OK) {
        RS_ASSERT(o->finish_rc == RS_ERR && ferr.code == RS_E_TRUNCATED);
        o->err = ferr;
    } else {
        RS_ASSERT(o->finish_rc == rc);
    }
    RS_ASSERT(rdb_decoder_offset(d) <= size);
    RS_ASSERT(o->err.offset <= size); /* an error points into the input */
    rdb_decoder_free(d);
}

static void expect_same(const struct outcome *a, const struct outcome *b)
{
    RS_ASSERT(a->rc == b->rc);
    RS_ASSERT(a->finish_rc == b->finish_rc);
    RS_ASSERT(a->err.code == b->err.code);
    if (a->rc == RS_ERR)
        RS_ASSERT(a->err.offset == b->err.offset);
    RS_ASSERT(a->events == b->events);
    RS_ASSERT(a->hash == b->hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, split, bytes;
    decode(data, size, size, 0, &whole);
    RS_ASSERT(whole.rc != RS_ERR || whole.err.msg[0] != '\0');

    size_t k = (size_t)(mix(0xcbf29ce484222325ULL, data, size) % (size + 1));
    decode(data, size, k, 0, &split);
    expect_same(&whole, &split);

    if (size <= ONE_BYTE_MAX) {
        decode(data, size, size, 1, &bytes);
        expect_same(&whole, &bytes);
    }
    return 0;
}
