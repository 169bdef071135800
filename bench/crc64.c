/* crc64.c - bench_crc64: crc64_update's throughput at DUMP-payload and
 * file-chunk sizes (the RDB trailer check and every RESTORE payload).
 *
 *   build/release/bench/bench_crc64
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "crc64.h"

#define BUF_BYTES (16u << 20)
#define PER_SIZE  (512u << 20) /* bytes summed per size */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    unsigned char *buf = malloc(BUF_BYTES);
    if (buf == NULL)
        return 1;
    for (size_t i = 0; i < BUF_BYTES; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    static const size_t sizes[] = {16, 100, 256, 4096, 65536, BUF_BYTES};
    uint64_t acc = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k], reps = PER_SIZE / n;
        double t0 = now_s();
        for (size_t r = 0; r < reps; r++)
            acc += crc64_update(r, buf, n);
        double el = now_s() - t0;
        printf("%9zu bytes: %6.2f GB/s, %7.1f ns per call\n", n, (double)(reps * n) / el / 1e9,
               el / (double)reps * 1e9);
    }
    printf("(checksum %llu)\n", (unsigned long long)(acc & 0xff));
    free(buf);
    return 0;
}
