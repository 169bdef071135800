/* capture_file.h - the files of a capture: what `ringsync capture` writes and
 * `ringsync replay` reads back.
 *
 * A capture is a directory of three files (format version 1):
 *
 *   snapshot.rdb   the snapshot exactly as the source sent it, its framing
 *                  ($<len> or the diskless EOF mark) removed: a plain RDB file
 *                  (`ringsync inspect`, `ringsync restore`, redis-server load it)
 *   stream.rsc     the command stream as it arrived, one record per read:
 *                    header, 32 bytes:  "RSCAPSTR" | u32 version | u32 0 |
 *                                       u64 start offset | u64 0
 *                    record, 24 bytes + data:
 *                                       u64 arrival (ns since the capture began) |
 *                                       u32 length | u32 0 | u64 CRC-64 of the
 *                                       record's first 16 bytes, then its data |
 *                                       the data (length bytes)
 *                  integers little-endian; arrivals never decrease
 *   MANIFEST       text, written last (so its presence says the capture was
 *                  finished): "ringsync-capture 1" then one "name value" line
 *                  each: source, replid, start_offset, end_offset,
 *                  snapshot_bytes, snapshot_crc64 (hex: the CRC-64 of
 *                  snapshot.rdb but its last 8 bytes, i.e. what an RDB's own
 *                  trailing checksum covers), snapshot_s (arrival of the
 *                  snapshot's last byte), stream_bytes, stream_records,
 *                  duration_s, started (unix seconds)
 *
 * The offsets are the source's replication offsets: the stream's first byte
 * has start_offset (the FULLRESYNC offset), end_offset = start_offset +
 * stream_bytes. Reading checks everything before anything is applied: the
 * version, sizes and CRCs of both files against the manifest, every record
 * whole; a capture that was cut (no MANIFEST, a short file, a bad CRC) is
 * refused with the file and byte offset where it breaks.
 */
#ifndef RS_CAPTURE_FILE_H
#define RS_CAPTURE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rs_error.h"

#define CAPTURE_VERSION       1
#define CAPTURE_SNAPSHOT_FILE "snapshot.rdb"
#define CAPTURE_STREAM_FILE   "stream.rsc"
#define CAPTURE_MANIFEST_FILE "MANIFEST"
#define CAPTURE_HEADER_BYTES  32
#define CAPTURE_RECORD_BYTES  24
#define CAPTURE_RECORD_MAX    (64u * 1024 * 1024) /* a record's data at most (sanity) */

/* What the manifest says. */
struct capture_meta {
    char source[320]; /* host:port */
    char replid[41];
    uint64_t start_offset, end_offset;
    uint64_t snapshot_bytes, snapshot_crc64;
    double snapshot_s; /* the snapshot's last byte, seconds after the start */
    uint64_t stream_bytes, stream_records;
    double duration_s;
    int64_t started; /* unix seconds */
};

/* ------------------------------------------------------------------ writing */

struct capture_writer;

/* Creates dir (one level) if missing and the snapshot and stream files in it;
 * refuses a dir that already holds a capture. NULL with err set on failure. */
struct capture_writer *capture_writer_create(const char *dir, uint64_t start_offset,
                                             struct rs_error *err);
/* Sets the stream's start offset, before anything else is written (the
 * files are made before the source is asked, so a bad dir costs it nothing). */
void capture_writer_set_start(struct capture_writer *w, uint64_t start_offset);
/* Appends snapshot bytes. 0, or -1 with err set (a write failed). */
int capture_writer_snapshot(struct capture_writer *w, const void *p, size_t n,
                            struct rs_error *err);
/* Appends one record of stream bytes that arrived at t_ns. */
int capture_writer_stream(struct capture_writer *w, uint64_t t_ns, const void *p, size_t n,
                          struct rs_error *err);
/* Writes buffered bytes to the files (called now and then, and by finish). */
int capture_writer_flush(struct capture_writer *w, struct rs_error *err);
/* Flushes, syncs and writes the MANIFEST from *m (sizes, CRCs, record count
 * and end offset are filled in here). */
int capture_writer_finish(struct capture_writer *w, struct capture_meta *m, struct rs_error *err);
/* Closes the files (an unfinished capture stays without a MANIFEST). */
void capture_writer_free(struct capture_writer *w);
/* Removes what capture_writer_create made (the files, and the directory if
 * it made it) and frees w: a capture that failed leaves nothing behind. */
void capture_writer_discard(struct capture_writer *w);

/* ------------------------------------------------------------------ reading */

struct capture_reader {
    struct capture_meta meta;
    char snapshot_path[4096];
    FILE *stream;
    uint64_t file_offset; /* in stream.rsc: where the next record starts */
    uint64_t records_read;
    uint8_t *data;
    size_t cap;
};

/* A record as read: valid until the next call. */
struct capture_record {
    uint64_t t_ns;
    const uint8_t *p;
    size_t len;
};

/* Opens the capture in dir and checks all of it (see above). 0, or -1 with
 * err naming the file, the byte offset and what is wrong. */
int capture_reader_open(struct capture_reader *r, const char *dir, struct rs_error *err);
/* The next stream record: 1, 0 at the end, -1 with err set. */
int capture_reader_next(struct capture_reader *r, struct capture_record *rec, struct rs_error *err);
void capture_reader_close(struct capture_reader *r);

#endif
