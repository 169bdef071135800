/* fuzz_capture_file.c - the capture reader on any files: no crash, no leak,
 * a refusal that says where, and what it accepts is exactly what is there.
 *
 * capture_reader_open takes a directory, so each input is written as the
 * three files of a capture into a directory of the process's own (under
 * /dev/shm when there is one: no disk, so an input costs a few
 * microseconds; removed at exit), then read. Input:
 *
 *   u8 flags | u16 manifest length | u16 snapshot length (little-endian) |
 *   MANIFEST | snapshot.rdb | stream.rsc (the rest)
 *
 * Lengths past the end of the input are cut to it. Flags: bit 0, 1, 2 leave
 * MANIFEST, snapshot.rdb, stream.rsc out; bit 3 sets every whole record's
 * CRC-64 right; bit 4 appends to MANIFEST the lines the files imply
 * (start_offset from the stream's header, end_offset, snapshot_bytes,
 * snapshot_crc64, stream_bytes, stream_records; a later line wins). The two
 * fix-ups take the fuzzer past the checksums it cannot compute.
 *
 * Checks: the open returns 0 or -1; a refusal has a known code, a message,
 * and an offset within the file it names (at most the largest file). What
 * is accepted: the manifest's end_offset is start_offset + stream_bytes, its
 * snapshot_bytes the snapshot's size; the records that capture_reader_next
 * gives are the stream file's records walked here by capture_file.h's
 * layout, byte for byte, in order, arrivals never decreasing, the file's last
 * byte the last record's, then 0 (twice). And written again by
 * capture_writer_* with the same meta, the capture reads back with the same
 * meta and files byte for byte the same.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture_file.h"
#include "crc64.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_capture_file: check failed: %s (%s:%d)\n", #c, __FILE__,         \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum {
    NO_MANIFEST = 1 << 0,
    NO_SNAPSHOT = 1 << 1,
    NO_STREAM = 1 << 2,
    FIX_RECORD_CRCS = 1 << 3,
    FIX_MANIFEST = 1 << 4,
};

#define INPUT_HEAD 5 /* flags, two lengths */

/* ------------------------------------------------------------ the directory */

static char dir_root[64]; /* mkdtemp, once per process */
static char dir_in[96];   /* the capture read: dir_root/in */
static char dir_out[96];  /* where it is written again: dir_root/out */

static const char *const capture_files[] = {CAPTURE_MANIFEST_FILE, CAPTURE_SNAPSHOT_FILE,
                                            CAPTURE_STREAM_FILE};

static void path_of(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    CHECK(n > 0 && (size_t)n < cap);
}

/* Removes the capture's files in dir (those that are there). */
static void clear_dir(const char *dir)
{
    for (size_t i = 0; i < 3; i++) {
        char path[160];
        path_of(path, sizeof(path), dir, capture_files[i]);
        CHECK(unlink(path) == 0 || errno == ENOENT);
    }
}

static void remove_dirs(void)
{
    clear_dir(dir_in);
    clear_dir(dir_out);
    rmdir(dir_in);
    rmdir(dir_out);
    rmdir(dir_root);
}

static void make_dirs(void)
{
    if (dir_root[0] != '\0')
        return;
    struct stat st;
    const char *base =
        stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
            ? "/dev/shm"
            : "/tmp";
    snprintf(dir_root, sizeof(dir_root), "%s/ringsync-fuzz-capture-XXXXXX", base);
    CHECK(mkdtemp(dir_root) != NULL);
    snprintf(dir_in, sizeof(dir_in), "%s/in", dir_root);
    snprintf(dir_out, sizeof(dir_out), "%s/out", dir_root);
    CHECK(mkdir(dir_in, 0700) == 0);
    atexit(remove_dirs);
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[160];
    path_of(path, sizeof(path), dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(n == 0 || fwrite(p, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

/* The whole of dir/name; *n is its size. The caller frees it. */
static uint8_t *read_file(const char *dir, const char *name, size_t *n)
{
    char path[160];
    path_of(path, sizeof(path), dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    CHECK(len >= 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *p = malloc((size_t)len + 1);
    CHECK(p != NULL && fread(p, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* --------------------------------------------------------- the layout */

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The whole records of a stream file, walked by capture_file.h's layout. */
struct walk {
    size_t records;
    uint64_t data_bytes;
    size_t end; /* just past the last whole record */
};

static struct walk walk_records(uint8_t *s, size_t n, bool fix_crcs)
{
    struct walk w = {.end = CAPTURE_HEADER_BYTES};
    if (n < CAPTURE_HEADER_BYTES)
        return (struct walk){0};
    while (n - w.end >= CAPTURE_RECORD_BYTES) {
        uint8_t *h = s + w.end;
        uint32_t len = get_u32(h + 8);
        if (len > n - w.end - CAPTURE_RECORD_BYTES)
            break;
        if (fix_crcs)
            put_u64(h + 16, crc64_update(crc64_update(0, h, 16), h + CAPTURE_RECORD_BYTES, len));
        w.records++;
        w.data_bytes += len;
        w.end += CAPTURE_RECORD_BYTES + len;
    }
    return w;
}

/* ------------------------------------------------------------ the checks */

static bool ends_within(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* The accepted capture's records are the stream file's, byte for byte. */
static void check_records(struct capture_reader *r, const uint8_t *stream, size_t stream_len)
{
    struct capture_record rec;
    struct rs_error err;
    size_t at = CAPTURE_HEADER_BYTES;
    uint64_t last_t = 0, records = 0, bytes = 0;
    int rc;
    while ((rc = capture_reader_next(r, &rec, &err)) == 1) {
        CHECK(stream_len - at >= CAPTURE_RECORD_BYTES);
        const uint8_t *h = stream + at;
        CHECK(rec.t_ns == get_u64(h) && rec.t_ns >= last_t);
        CHECK(rec.len == get_u32(h + 8) && rec.len > 0 && rec.len <= CAPTURE_RECORD_MAX);
        CHECK(rec.len <= stream_len - at - CAPTURE_RECORD_BYTES);
        CHECK(memcmp(rec.p, h + CAPTURE_RECORD_BYTES, rec.len) == 0);
        at += CAPTURE_RECORD_BYTES + rec.len;
        CHECK(r->file_offset == at);
        last_t = rec.t_ns;
        records++;
        bytes += rec.len;
    }
    CHECK(rc == 0);
    CHECK(capture_reader_next(r, &rec, &err) == 0);
    CHECK(at == stream_len);
    CHECK(records == r->meta.stream_records && bytes == r->meta.stream_bytes);
}

static bool same_meta(const struct capture_meta *a, const struct capture_meta *b)
{
    return strcmp(a->source, b->source) == 0 && strcmp(a->replid, b->replid) == 0 &&
           a->start_offset == b->start_offset && a->end_offset == b->end_offset &&
           a->snapshot_bytes == b->snapshot_bytes && a->snapshot_crc64 == b->snapshot_crc64 &&
           a->stream_bytes == b->stream_bytes && a->stream_records == b->stream_records &&
           a->started == b->started;
}

static void check_same_file(const char *name)
{
    size_t a_len, b_len;
    uint8_t *a = read_file(dir_in, name, &a_len);
    uint8_t *b = read_file(dir_out, name, &b_len);
    CHECK(a_len == b_len && memcmp(a, b, a_len) == 0);
    free(a);
    free(b);
}

/* The accepted capture written again by capture_writer_* reads back the same. */
static void check_written_again(const struct capture_meta *meta, const uint8_t *snap,
                                size_t snap_len)
{
    struct rs_error err;
    struct capture_reader r;
    CHECK(capture_reader_open(&r, dir_in, &err) == 0);
    struct capture_writer *w = capture_writer_create(dir_out, meta->start_offset, &err);
    CHECK(w != NULL);
    CHECK(capture_writer_snapshot(w, snap, snap_len, &err) == 0);
    struct capture_record rec;
    int rc;
    while ((rc = capture_reader_next(&r, &rec, &err)) == 1)
        CHECK(capture_writer_stream(w, rec.t_ns, rec.p, rec.len, &err) == 0);
    CHECK(rc == 0);
    capture_reader_close(&r);
    struct capture_meta m = *meta;
    CHECK(capture_writer_finish(w, &m, &err) == 0);
    capture_writer_free(w);
    CHECK(same_meta(&m, meta));

    struct capture_reader back;
    CHECK(capture_reader_open(&back, dir_out, &err) == 0);
    CHECK(same_meta(&back.meta, meta));
    capture_reader_close(&back);
    check_same_file(CAPTURE_SNAPSHOT_FILE);
    check_same_file(CAPTURE_STREAM_FILE);
    clear_dir(dir_out);
    CHECK(rmdir(dir_out) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < INPUT_HEAD)
        return 0;
    make_dirs();
    unsigned flags = data[0];
    size_t left = size - INPUT_HEAD;
    size_t manifest_len = (size_t)data[1] | (size_t)data[2] << 8;
    manifest_len = manifest_len < left ? manifest_len : left;
    left -= manifest_len;
    size_t snap_len = (size_t)data[3] | (size_t)data[4] << 8;
    snap_len = snap_len < left ? snap_len : left;
    size_t stream_len = left - snap_len;
    const uint8_t *manifest = data + INPUT_HEAD;
    const uint8_t *snap = manifest + manifest_len;

    uint8_t *stream = malloc(stream_len + 1);
    CHECK(stream != NULL);
    memcpy(stream, snap + snap_len, stream_len);
    struct walk walk = walk_records(stream, stream_len, flags & FIX_RECORD_CRCS);

    clear_dir(dir_in);
    if (!(flags & NO_MANIFEST)) {
        char extra[512] = "";
        if (flags & FIX_MANIFEST) {
            uint64_t start = stream_len >= CAPTURE_HEADER_BYTES ? get_u64(stream + 16) : 0;
            uint64_t snap_crc = crc64_update(0, snap, snap_len >= 8 ? snap_len - 8 : 0);
            /* on lines of their own */
            bool open_line = manifest_len > 0 && manifest[manifest_len - 1] != '\n';
            snprintf(extra, sizeof(extra),
                     "%sstart_offset %" PRIu64 "\nend_offset %" PRIu64 "\nsnapshot_bytes %zu\n"
                     "snapshot_crc64 %016" PRIx64 "\nstream_bytes %" PRIu64
                     "\nstream_records %zu\n",
                     open_line ? "\n" : "", start, start + walk.data_bytes, snap_len, snap_crc,
                     walk.data_bytes, walk.records);
        }
        size_t extra_len = strlen(extra);
        uint8_t *m = malloc(manifest_len + extra_len + 1);
        CHECK(m != NULL);
        memcpy(m, manifest, manifest_len);
        memcpy(m + manifest_len, extra, extra_len);
        write_file(dir_in, CAPTURE_MANIFEST_FILE, m, manifest_len + extra_len);
        free(m);
    }
    if (!(flags & NO_SNAPSHOT))
        write_file(dir_in, CAPTURE_SNAPSHOT_FILE, snap, snap_len);
    if (!(flags & NO_STREAM))
        write_file(dir_in, CAPTURE_STREAM_FILE, stream, stream_len);

    struct capture_reader r;
    struct rs_error err;
    memset(&err, 0, sizeof(err));
    int rc = capture_reader_open(&r, dir_in, &err);
    CHECK(rc == 0 || rc == -1);
    if (rc < 0) {
        CHECK(err.code == RS_E_FORMAT || err.code == RS_E_TRUNCATED || err.code == RS_E_CHECKSUM ||
              err.code == RS_E_UNSUPPORTED);
        CHECK(ends_within(err.msg, sizeof(err.msg)) && err.msg[0] != '\0');
        /* the manifest may have grown by the appended lines */
        size_t largest = manifest_len + 512;
        largest = snap_len > largest ? snap_len : largest;
        largest = stream_len > largest ? stream_len : largest;
        CHECK(err.offset <= largest);
        capture_reader_close(&r);
        free(stream);
        return 0;
    }
    CHECK(!(flags & (NO_MANIFEST | NO_SNAPSHOT | NO_STREAM)));
    CHECK(ends_within(r.meta.source, sizeof(r.meta.source)));
    CHECK(ends_within(r.meta.replid, sizeof(r.meta.replid)));
    CHECK(r.meta.end_offset == r.meta.start_offset + r.meta.stream_bytes);
    CHECK(r.meta.snapshot_bytes == snap_len);
    CHECK(stream_len >= CAPTURE_HEADER_BYTES && get_u64(stream + 16) == r.meta.start_offset);
    CHECK(r.file_offset == CAPTURE_HEADER_BYTES && r.records_read == 0);
    check_records(&r, stream, stream_len);
    CHECK(walk.end == stream_len && walk.records == r.meta.stream_records);
    struct capture_meta meta = r.meta;
    capture_reader_close(&r);
    check_written_again(&meta, snap, snap_len);
    free(stream);
    return 0;
}
