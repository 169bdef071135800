/* rdb_decode.c - how fast the snapshot decoder goes, and in how much memory.
 *
 *   bench_rdb_decode FILE.rdb [ROUNDS] [PIECE]
 *
 * Reads FILE into memory once, then decodes it ROUNDS times (default 5) in
 * feeds of PIECE bytes (default 65536) with a consumer that only counts, and
 * prints the best round's MB/s and keys/s and the decoder's peak buffer
 * bytes. Run it under `valgrind --tool=callgrind` with ROUNDS=1 for
 * instructions per key. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rdb_decoder.h"

struct counts {
    unsigned long long keys, items;
};

static int count(void *ctx, const struct rdb_event *ev)
{
    struct counts *c = ctx;
    if (ev->type == RDB_EV_KEY_END)
        c->keys++;
    else if (ev->type == RDB_EV_ITEMS)
        c->items += ev->items.count;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_rdb_decode FILE.rdb [ROUNDS] [PIECE]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    size_t piece = argc > 3 ? (size_t)atol(argv[3]) : 65536;
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size);
    if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    double best = 1e30;
    struct counts c = {0, 0};
    size_t peak = 0;
    for (int r = 0; r < rounds; r++) {
        c.keys = c.items = 0;
        struct rdb_decoder *d = rdb_decoder_new(NULL, count, &c);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct rs_error err;
        int rc = RS_OK;
        for (size_t off = 0; off < (size_t)size && rc == RS_OK; off += piece) {
            size_t n = (size_t)size - off < piece ? (size_t)size - off : piece;
            rc = rdb_decoder_feed(d, data + off, n, NULL, &err);
        }
        if (rc != RS_ERR)
            rc = rdb_decoder_finish(d, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc != RS_DONE) {
            fprintf(stderr, "decode failed at offset %llu: %s\n", (unsigned long long)err.offset,
                    err.msg);
            return 1;
        }
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (s < best)
            best = s;
        peak = rdb_decoder_peak_bytes(d);
        rdb_decoder_free(d);
    }
    printf("file %s: %.1f MB, %llu keys, %llu items\n", argv[1], (double)size / 1e6, c.keys,
           c.items);
    printf("best of %d: %.3f s, %.1f MB/s, %.2f M keys/s, %.1f ns/key; decoder peak %zu bytes\n",
           rounds, best, (double)size / 1e6 / best, (double)c.keys / 1e6 / best,
           best * 1e9 / (double)(c.keys ? c.keys : 1), peak);
    free(data);
    return 0;
}
