/* rdb_format.h - the numbers of the RDB snapshot format (../shared/PROTOCOL.md §2).
 *
 * Redis's and Valkey's own rdb.h are the final word; where the two disagree
 * (type 22 is a Redis 7.4 pre-GA hash in a REDIS file and Valkey's HASH_2 in a
 * VALKEY file), the decoder branches on the magic.
 */
#ifndef RS_RDB_FORMAT_H
#define RS_RDB_FORMAT_H

/* Versions. */
#define RDB_VERSION_MIN            1
#define RDB_VERSION_REDIS_MAX      12 /* Redis 7.4 */
#define RDB_VERSION_VALKEY_MIN     80 /* Valkey 9.0, "VALKEY080" */
#define RDB_VERSION_VALKEY_MAX     80
#define RDB_VERSION_CHECKSUM_MIN   5 /* files of version >= 5 end with a CRC64 */
#define RDB_VERSION_MS_TIME_LE_MIN 9 /* before 9, ms times were written in host order */

/* Length encodings: the top two bits of the first byte. */
#define RDB_LEN_6BIT   0
#define RDB_LEN_14BIT  1
#define RDB_LEN_32BIT  0x80
#define RDB_LEN_64BIT  0x81
#define RDB_LEN_ENCVAL 3

/* Special string encodings (low 6 bits after the 11 prefix). */
#define RDB_ENC_INT8  0
#define RDB_ENC_INT16 1
#define RDB_ENC_INT32 2
#define RDB_ENC_LZF   3

/* Value types. */
#define RDB_TYPE_STRING                  0
#define RDB_TYPE_LIST                    1
#define RDB_TYPE_SET                     2
#define RDB_TYPE_ZSET                    3
#define RDB_TYPE_HASH                    4
#define RDB_TYPE_ZSET_2                  5
#define RDB_TYPE_MODULE_PRE_GA           6
#define RDB_TYPE_MODULE_2                7
#define RDB_TYPE_HASH_ZIPMAP             9
#define RDB_TYPE_LIST_ZIPLIST            10
#define RDB_TYPE_SET_INTSET              11
#define RDB_TYPE_ZSET_ZIPLIST            12
#define RDB_TYPE_HASH_ZIPLIST            13
#define RDB_TYPE_LIST_QUICKLIST          14
#define RDB_TYPE_STREAM_LISTPACKS        15
#define RDB_TYPE_HASH_LISTPACK           16
#define RDB_TYPE_ZSET_LISTPACK           17
#define RDB_TYPE_LIST_QUICKLIST_2        18
#define RDB_TYPE_STREAM_LISTPACKS_2      19
#define RDB_TYPE_SET_LISTPACK            20
#define RDB_TYPE_STREAM_LISTPACKS_3      21
#define RDB_TYPE_HASH_METADATA_PRE_GA    22 /* Redis 7.4 RC (REDIS magic) */
#define RDB_TYPE_VALKEY_HASH_2           22 /* Valkey 9 (VALKEY magic) */
#define RDB_TYPE_HASH_LISTPACK_EX_PRE_GA 23
#define RDB_TYPE_HASH_METADATA           24
#define RDB_TYPE_HASH_LISTPACK_EX        25

/* Opcodes. */
#define RDB_OPCODE_VALKEY_SLOT_IMPORT 243 /* Valkey 9 */
#define RDB_OPCODE_SLOT_INFO          244
#define RDB_OPCODE_FUNCTION2          245
#define RDB_OPCODE_FUNCTION_PRE_GA    246
#define RDB_OPCODE_MODULE_AUX         247
#define RDB_OPCODE_IDLE               248
#define RDB_OPCODE_FREQ               249
#define RDB_OPCODE_AUX                250
#define RDB_OPCODE_RESIZEDB           251
#define RDB_OPCODE_EXPIRETIME_MS      252
#define RDB_OPCODE_EXPIRETIME         253
#define RDB_OPCODE_SELECTDB           254
#define RDB_OPCODE_EOF                255

/* Module value sub-opcodes (type 7 and MODULE_AUX). */
#define RDB_MODULE_OPCODE_EOF    0
#define RDB_MODULE_OPCODE_SINT   1
#define RDB_MODULE_OPCODE_UINT   2
#define RDB_MODULE_OPCODE_FLOAT  3
#define RDB_MODULE_OPCODE_DOUBLE 4
#define RDB_MODULE_OPCODE_STRING 5

/* Quicklist 2 node containers. */
#define RDB_QUICKLIST_NODE_PLAIN  1
#define RDB_QUICKLIST_NODE_PACKED 2

/* Stream listpack entry flags. */
#define RDB_STREAM_ITEM_FLAG_DELETED    1
#define RDB_STREAM_ITEM_FLAG_SAMEFIELDS 2

#endif
