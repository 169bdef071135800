/* test_spill.c - the spill FIFO keeps every byte, in order, across its memory
 * budget and its file, however pushes and reads interleave. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spill.h"

/* A deterministic byte stream: byte i of the whole sequence. */
static uint8_t byte_at(uint64_t i)
{
    return (uint8_t)(i * 2654435761u >> 13);
}

/* Pushes `total` bytes in pieces of up to `piece`, reading back in pieces of
 * up to `take` after every push, and checks every byte read. */
static void run(size_t max_memory, uint64_t total, size_t piece, size_t take, unsigned seed)
{
    struct spill *s = spill_new(NULL, max_memory);
    cr_assert_not_null(s);
    uint8_t *buf = malloc(piece);
    uint64_t pushed = 0, read = 0;
    srand(seed);
    struct rs_error err;
    while (read < total) {
        if (pushed < total) {
            size_t n = 1 + (size_t)rand() % piece;
            if (n > total - pushed)
                n = (size_t)(total - pushed);
            for (size_t i = 0; i < n; i++)
                buf[i] = byte_at(pushed + i);
            cr_assert_eq(spill_push(s, buf, n, &err), 0, "push: %s", err.msg);
            pushed += n;
        }
        cr_assert_eq(spill_pending(s), pushed - read);
        size_t budget = (size_t)rand() % (take + 1);
        if (pushed == total)
            budget = take; /* drain at the end */
        while (budget > 0) {
            const uint8_t *p;
            long n = spill_peek(s, &p, &err);
            cr_assert_geq(n, 0, "peek: %s", err.msg);
            if (n == 0)
                break;
            size_t k = (size_t)n < budget ? (size_t)n : budget;
            for (size_t i = 0; i < k; i++)
                cr_assert_eq(p[i], byte_at(read + i), "byte %llu differs",
                             (unsigned long long)(read + i));
            spill_consume(s, k);
            read += k;
            budget -= k;
        }
    }
    const uint8_t *p;
    cr_assert_eq(spill_peek(s, &p, &err), 0);
    cr_assert_eq(spill_pending(s), 0);
    free(buf);
    spill_free(s);
}

Test(spill, bytes_come_back_in_order_from_memory_alone)
{
    run(64u << 20, 3u << 20, 70000, 50000, 1);
}

Test(spill, bytes_come_back_in_order_through_the_file_when_memory_is_small)
{
    run(300 * 1024, 5u << 20, 100000, 40000, 2);
}

Test(spill, a_file_read_to_its_end_is_reused_and_order_holds)
{
    /* reads keep up often enough for the file to empty and start over */
    run(1024, 2u << 20, 5000, 9000, 3);
}

Test(spill, the_file_is_used_only_past_the_memory_budget)
{
    struct spill *s = spill_new(NULL, 1u << 20);
    struct rs_error err;
    static uint8_t block[256 * 1024];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(spill_push(s, block, sizeof(block), &err), 0);
    cr_assert_eq(spill_file_pending(s), 0, "1 MiB fits the budget");
    cr_assert_eq(spill_push(s, block, sizeof(block), &err), 0);
    cr_assert_eq(spill_file_pending(s), sizeof(block));
    cr_assert_eq(spill_file_peak(s), sizeof(block));
    spill_free(s);
}

Test(spill, a_spill_dir_that_does_not_exist_is_a_clear_error)
{
    struct spill *s = spill_new("/nonexistent/ringsync-test", 0);
    struct rs_error err = {0};
    uint8_t b[10] = {0};
    cr_assert_lt(spill_push(s, b, sizeof(b), &err), 0);
    cr_assert(strstr(err.msg, "/nonexistent/ringsync-test") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "spill file") != NULL, "%s", err.msg);
    spill_free(s);
}
