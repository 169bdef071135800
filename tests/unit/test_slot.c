/* test_slot.c - cluster slots: CRC16/XMODEM and hash tags, against known
 * values (Redis's CLUSTER KEYSLOT) and a bit-by-bit reference. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "slot.h"

/* CRC16/XMODEM one bit at a time: the definition, not a table. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

Test(slot, crc16_check_value)
{
    cr_assert_eq(slot_crc16("123456789", 9), 0x31C3); /* CRC-16/XMODEM's check */
    cr_assert_eq(slot_crc16("", 0), 0);
}

Test(slot, crc16_equals_the_bitwise_definition_at_every_length_and_alignment)
{
    unsigned char buf[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 200; len++)
            cr_assert_eq(slot_crc16(buf + off, len), crc16_bitwise(buf + off, len),
                         "offset %zu length %zu", off, len);
}

/* Values from a Redis 7.0 server's CLUSTER KEYSLOT. */
Test(slot, slots_of_known_keys_and_hash_tags)
{
    cr_assert_eq(slot_of_key("foo", 3), 12182);
    cr_assert_eq(slot_of_key("bar", 3), 5061);
    cr_assert_eq(slot_of_key("hello", 5), 866);
    cr_assert_eq(slot_of_key("somekey", 7), 11058);
    const char *tagged = "{user1000}.following";
    cr_assert_eq(slot_of_key(tagged, strlen(tagged)), slot_of_key("user1000", 8));
    const char *empty_tag = "foo{}{bar}"; /* an empty tag: the whole key counts */
    cr_assert_eq(slot_of_key(empty_tag, strlen(empty_tag)),
                 crc16_bitwise((const unsigned char *)empty_tag, strlen(empty_tag)) & 16383);
    const char *second = "foo{{bar}}zap"; /* the tag is "{bar" */
    cr_assert_eq(slot_of_key(second, strlen(second)), slot_of_key("{bar", 4));
    const char *unclosed = "foo{bar";
    cr_assert_eq(slot_of_key(unclosed, strlen(unclosed)),
                 crc16_bitwise((const unsigned char *)unclosed, strlen(unclosed)) & 16383);
}
