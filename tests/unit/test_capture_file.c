/* test_capture_file.c - the files of a capture (capture_file.h): what
 * capture_writer_* writes, capture_reader_* reads back whole, and a capture
 * that was cut, corrupted or mixed up is refused before anything is applied,
 * naming the file and the byte offset where it breaks.
 *
 * Every test writes into a directory of its own (mkdtemp under /tmp), removed
 * at the end. The refusals are checked for their code, their offset (the
 * start of the record that breaks, for stream.rsc) and that the message names
 * the file: the reader must never accept a broken capture, and never crash on
 * one (the cut is tried at every byte offset of a small capture).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture_file.h"
#include "crc64.h"

#define START_OFFSET   12345u
#define SNAPSHOT_SMALL 3000u

/* ------------------------------------------------------------ directories */

struct tmp {
    char root[64]; /* mkdtemp */
    char dir[96];  /* root/cap: the capture (capture_writer_create makes it) */
};

/* The directory of the running test (a copy: a failed assertion leaves the
 * test's frame), removed by the suite's .fini if the test failed first. */
static char live_root[64];

static void tmp_make(struct tmp *t)
{
    snprintf(t->root, sizeof(t->root), "/tmp/rs-capfile-XXXXXX");
    cr_assert(mkdtemp(t->root) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(t->dir, sizeof(t->dir), "%s/cap", t->root);
    snprintf(live_root, sizeof(live_root), "%s", t->root);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tmp_remove(struct tmp *t)
{
    nftw(t->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    live_root[0] = 0;
}

static void capture_file_fini(void)
{
    if (live_root[0] != 0)
        nftw(live_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(capture_file, .fini = capture_file_fini);

static const char *path_of(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    cr_assert(n > 0 && (size_t)n < cap);
    return buf;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s: %s", path, strerror(errno));
    cr_assert(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    uint8_t *p = malloc((size_t)n + 1);
    cr_assert(p != NULL);
    cr_assert(fread(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_all(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "cannot create %s: %s", path, strerror(errno));
    cr_assert(fwrite(p, 1, len, f) == len);
    cr_assert(fclose(f) == 0);
}

static void file_read(const char *dir, const char *name, uint8_t **p, size_t *len)
{
    char path[256];
    *p = read_all(path_of(path, sizeof(path), dir, name), len);
}

static void file_write(const char *dir, const char *name, const void *p, size_t len)
{
    char path[256];
    write_all(path_of(path, sizeof(path), dir, name), p, len);
}

/* ------------------------------------------------------------ a capture */

struct rec_spec {
    uint64_t t_ns;
    size_t len;
};

/* What a sample capture holds, to compare with what is read back. */
struct sample {
    uint8_t *snapshot;
    size_t snapshot_len;
    size_t nrecs;
    struct rec_spec *recs;
    uint8_t **data;
    uint64_t *starts; /* each record's byte offset in stream.rsc */
    uint64_t stream_file_len;
};

static uint8_t byte_at(uint64_t i, unsigned salt)
{
    return (uint8_t)((i + salt) * 2654435761u >> 11);
}

static void sample_fill_meta(struct capture_meta *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->source, sizeof(m->source), "127.0.0.1:6379");
    snprintf(m->replid, sizeof(m->replid), "0123456789abcdef0123456789abcdef01234567");
    m->snapshot_s = 0.25;
    m->duration_s = 3.5;
    m->started = 1700000000;
}

/* Writes the capture into dir: the snapshot in pieces of `piece` bytes, the
 * records given; finished (MANIFEST) when `finish`. */
static void sample_write(const char *dir, struct sample *s, size_t snapshot_len,
                         const struct rec_spec *recs, size_t nrecs, size_t piece, bool finish)
{
    memset(s, 0, sizeof(*s));
    s->snapshot_len = snapshot_len;
    s->snapshot = malloc(snapshot_len + 1);
    cr_assert(s->snapshot != NULL);
    for (size_t i = 0; i < snapshot_len; i++)
        s->snapshot[i] = byte_at(i, 7);
    s->nrecs = nrecs;
    s->recs = calloc(nrecs + 1, sizeof(*s->recs));
    s->data = calloc(nrecs + 1, sizeof(*s->data));
    s->starts = calloc(nrecs + 1, sizeof(*s->starts));
    cr_assert(s->recs && s->data && s->starts);

    struct rs_error err = {0};
    /* the offset is set later, as capture.c does once PSYNC has answered */
    struct capture_writer *w = capture_writer_create(dir, 0, &err);
    cr_assert(w != NULL, "capture_writer_create: %s", err.msg);
    capture_writer_set_start(w, START_OFFSET);
    for (size_t off = 0; off < snapshot_len; off += piece) {
        size_t n = snapshot_len - off < piece ? snapshot_len - off : piece;
        cr_assert_eq(capture_writer_snapshot(w, s->snapshot + off, n, &err), 0, "%s", err.msg);
    }
    uint64_t at = CAPTURE_HEADER_BYTES;
    for (size_t i = 0; i < nrecs; i++) {
        s->recs[i] = recs[i];
        s->data[i] = malloc(recs[i].len + 1);
        cr_assert(s->data[i] != NULL);
        for (size_t k = 0; k < recs[i].len; k++)
            s->data[i][k] = byte_at(k, (unsigned)i * 31 + 1);
        s->starts[i] = at;
        at += CAPTURE_RECORD_BYTES + recs[i].len;
        cr_assert_eq(capture_writer_stream(w, recs[i].t_ns, s->data[i], recs[i].len, &err), 0, "%s",
                     err.msg);
        if (i % 2 == 1)
            cr_assert_eq(capture_writer_flush(w, &err), 0, "%s", err.msg);
    }
    s->starts[nrecs] = at;
    s->stream_file_len = at;
    if (finish) {
        struct capture_meta m;
        sample_fill_meta(&m);
        cr_assert_eq(capture_writer_finish(w, &m, &err), 0, "capture_writer_finish: %s", err.msg);
    } else {
        cr_assert_eq(capture_writer_flush(w, &err), 0, "%s", err.msg);
    }
    capture_writer_free(w);
}

static void sample_free(struct sample *s)
{
    for (size_t i = 0; i < s->nrecs; i++)
        free(s->data[i]);
    free(s->data);
    free(s->recs);
    free(s->starts);
    free(s->snapshot);
}

/* A small capture: every byte offset of its stream.rsc is tried as a cut. */
static const struct rec_spec small_recs[] = {
    {1000, 1}, {2000000, 7}, {2000000, 30}, {5000000000ull, 3}, {5000000001ull, 12},
};
#define SMALL_NRECS (sizeof(small_recs) / sizeof(small_recs[0]))

static void small_write(const char *dir, struct sample *s)
{
    sample_write(dir, s, SNAPSHOT_SMALL, small_recs, SMALL_NRECS, 1000, true);
}

/* Opening must fail: returns the error (the reader closed). */
static struct rs_error open_fails(const char *dir, const char *what)
{
    struct capture_reader r;
    struct rs_error err = {0};
    int rc = capture_reader_open(&r, dir, &err);
    capture_reader_close(&r);
    cr_assert(rc < 0, "%s: the capture was accepted", what);
    cr_assert(err.code != RS_E_NONE && err.msg[0] != 0, "%s: failed without an error", what);
    return err;
}

static void assert_names(const struct rs_error *err, const char *file, const char *what)
{
    cr_assert(strstr(err->msg, file) != NULL, "%s: the message does not name %s: %s", what, file,
              err->msg);
}

static void assert_offset_in_msg(const struct rs_error *err, const char *what)
{
    char num[40];
    snprintf(num, sizeof(num), "byte %" PRIu64, err->offset);
    cr_assert(strstr(err->msg, num) != NULL, "%s: the message does not say \"%s\": %s", what, num,
              err->msg);
}

/* ------------------------------------------------------------ round trip */

static void assert_reads_back(const char *dir, const struct sample *s)
{
    struct capture_reader r;
    struct rs_error err = {0};
    cr_assert_eq(capture_reader_open(&r, dir, &err), 0,
                 "capture_reader_open: %s (%s, offset %" PRIu64 ")", err.msg,
                 rs_error_code_name(err.code), err.offset);
    struct capture_meta want;
    sample_fill_meta(&want);
    uint64_t stream_bytes = 0;
    for (size_t i = 0; i < s->nrecs; i++)
        stream_bytes += s->recs[i].len;
    const struct capture_meta *m = &r.meta;
    cr_assert_str_eq(m->source, want.source);
    cr_assert_str_eq(m->replid, want.replid);
    cr_assert_eq(m->start_offset, START_OFFSET);
    cr_assert_eq(m->end_offset, START_OFFSET + stream_bytes);
    cr_assert_eq(m->snapshot_bytes, s->snapshot_len);
    /* the bytes an RDB's own trailing checksum covers: all but the last 8 */
    size_t covered = s->snapshot_len >= 8 ? s->snapshot_len - 8 : 0;
    cr_assert_eq(m->snapshot_crc64, crc64_update(0, s->snapshot, covered));
    cr_assert_float_eq(m->snapshot_s, want.snapshot_s, 1e-6);
    cr_assert_eq(m->stream_bytes, stream_bytes);
    cr_assert_eq(m->stream_records, s->nrecs);
    cr_assert_float_eq(m->duration_s, want.duration_s, 1e-6);
    cr_assert_eq(m->started, want.started);

    /* the snapshot is a plain copy of what was given */
    size_t len;
    uint8_t *snap = read_all(r.snapshot_path, &len);
    cr_assert(len == s->snapshot_len && memcmp(snap, s->snapshot, len) == 0,
              "snapshot.rdb is not the bytes written (%zu bytes, %zu written)", len,
              s->snapshot_len);
    free(snap);

    struct capture_record rec;
    for (size_t i = 0; i < s->nrecs; i++) {
        cr_assert_eq(r.file_offset, s->starts[i]);
        int rc = capture_reader_next(&r, &rec, &err);
        cr_assert_eq(rc, 1, "record %zu: %d (%s)", i + 1, rc, err.msg);
        cr_assert_eq(rec.t_ns, s->recs[i].t_ns, "record %zu: time", i + 1);
        cr_assert_eq(rec.len, s->recs[i].len, "record %zu: length", i + 1);
        cr_assert(memcmp(rec.p, s->data[i], rec.len) == 0, "record %zu: bytes differ", i + 1);
    }
    cr_assert_eq(capture_reader_next(&r, &rec, &err), 0, "a record past the last: %s", err.msg);
    cr_assert_eq(r.file_offset, s->stream_file_len);
    capture_reader_close(&r);
}

Test(capture_file, records_and_meta_come_back_as_written)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    assert_reads_back(t.dir, &s);
    /* the layout of capture_file.h, byte for byte */
    uint8_t *p;
    size_t len;
    file_read(t.dir, CAPTURE_STREAM_FILE, &p, &len);
    cr_assert_eq(len, s.stream_file_len);
    cr_assert(memcmp(p, "RSCAPSTR\x01\x00\x00\x00\x00\x00\x00\x00", 16) == 0);
    uint64_t start = 0;
    for (int i = 7; i >= 0; i--)
        start = start << 8 | p[16 + i];
    cr_assert_eq(start, START_OFFSET, "the header's start offset is not the one set");
    const uint8_t *r2 = p + s.starts[1];
    cr_assert(r2[8] == 7 && r2[9] == 0 && r2[10] == 0 && r2[11] == 0, "record 2's length");
    uint64_t crc = 0;
    for (int i = 7; i >= 0; i--)
        crc = crc << 8 | r2[16 + i];
    cr_assert_eq(crc, crc64_update(crc64_update(0, r2, 16), s.data[1], 7),
                 "record 2's CRC-64 (its arrival and length, then its data)");
    free(p);
    sample_free(&s);
    tmp_remove(&t);
}

/* Past the writer's 1 MiB buffer, in pieces that do not divide it, and a
 * record larger than the buffer; an empty write makes no record. */
Test(capture_file, large_snapshot_and_record_cross_the_write_buffer)
{
    struct tmp t;
    tmp_make(&t);
    static const struct rec_spec recs[] = {
        {0, 100}, {10, 1536 * 1024}, {10, 5}, {20, 700 * 1024}, {30, 700 * 1024}, {40, 1},
    };
    struct sample s;
    sample_write(t.dir, &s, 3 * 1024 * 1024 + 17, recs, sizeof(recs) / sizeof(recs[0]), 65537,
                 true);
    assert_reads_back(t.dir, &s);
    sample_free(&s);
    tmp_remove(&t);
}

Test(capture_file, an_empty_stream_write_makes_no_record)
{
    struct tmp t;
    tmp_make(&t);
    struct rs_error err = {0};
    struct capture_writer *w = capture_writer_create(t.dir, START_OFFSET, &err);
    cr_assert(w != NULL, "%s", err.msg);
    cr_assert_eq(capture_writer_snapshot(w, "REDIS0010", 9, &err), 0);
    cr_assert_eq(capture_writer_stream(w, 5, "", 0, &err), 0);
    cr_assert_eq(capture_writer_stream(w, 6, "*1\r\n$4\r\nPING\r\n", 14, &err), 0);
    struct capture_meta m;
    sample_fill_meta(&m);
    cr_assert_eq(capture_writer_finish(w, &m, &err), 0, "%s", err.msg);
    capture_writer_free(w);
    cr_assert_eq(m.stream_records, 1);
    cr_assert_eq(m.stream_bytes, 14);
    cr_assert_eq(m.end_offset, START_OFFSET + 14);
    struct capture_reader r;
    cr_assert_eq(capture_reader_open(&r, t.dir, &err), 0, "%s", err.msg);
    struct capture_record rec;
    cr_assert_eq(capture_reader_next(&r, &rec, &err), 1);
    cr_assert(rec.t_ns == 6 && rec.len == 14);
    cr_assert_eq(capture_reader_next(&r, &rec, &err), 0);
    capture_reader_close(&r);
    tmp_remove(&t);
}

/* A capture with no stream at all (stopped right after the snapshot). */
Test(capture_file, a_capture_without_stream_records_reads_back)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    sample_write(t.dir, &s, 10, NULL, 0, 10, true);
    assert_reads_back(t.dir, &s);
    sample_free(&s);
    tmp_remove(&t);
}

/* ------------------------------------------------------------ creating */

Test(capture_file, a_directory_that_holds_a_capture_is_refused)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    size_t before_len, after_len;
    uint8_t *before, *after;
    file_read(t.dir, CAPTURE_STREAM_FILE, &before, &before_len);

    struct rs_error err = {0};
    struct capture_writer *w = capture_writer_create(t.dir, 1, &err);
    cr_assert(w == NULL, "a second capture into a finished one was allowed");
    cr_assert(strstr(err.msg, "already holds a capture") != NULL && strstr(err.msg, t.dir),
              "the refusal does not say so: %s", err.msg);
    assert_names(&err, CAPTURE_MANIFEST_FILE, "finished capture");
    /* untouched */
    file_read(t.dir, CAPTURE_STREAM_FILE, &after, &after_len);
    cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0,
              "the refused create changed stream.rsc");
    assert_reads_back(t.dir, &s);
    free(before);
    free(after);
    sample_free(&s);
    tmp_remove(&t);
}

/* An unfinished capture (no MANIFEST) is a capture too: its files stay. */
Test(capture_file, a_directory_with_any_capture_file_is_refused)
{
    static const char *const names[] = {CAPTURE_SNAPSHOT_FILE, CAPTURE_STREAM_FILE,
                                        CAPTURE_MANIFEST_FILE};
    for (size_t i = 0; i < 3; i++) {
        struct tmp t;
        tmp_make(&t);
        cr_assert(mkdir(t.dir, 0755) == 0);
        file_write(t.dir, names[i], "x", 1);
        struct rs_error err = {0};
        struct capture_writer *w = capture_writer_create(t.dir, 1, &err);
        cr_assert(w == NULL, "a directory holding %s was accepted", names[i]);
        assert_names(&err, names[i], "a directory holding one capture file");
        tmp_remove(&t);
    }
    /* an existing empty directory is fine */
    struct tmp t;
    tmp_make(&t);
    struct rs_error err = {0};
    struct capture_writer *w = capture_writer_create(t.root, 1, &err);
    cr_assert(w != NULL, "an empty existing directory was refused: %s", err.msg);
    capture_writer_free(w);
    tmp_remove(&t);
}

/* A capture that failed leaves nothing: the files go, and the directory too
 * when the writer made it (an existing one stays, empty). */
Test(capture_file, a_discarded_capture_leaves_nothing_behind)
{
    struct tmp t;
    tmp_make(&t);
    struct rs_error err = {0};
    struct capture_writer *w = capture_writer_create(t.dir, 7, &err);
    cr_assert(w != NULL, "%s", err.msg);
    cr_assert_eq(capture_writer_snapshot(w, "REDIS0010", 9, &err), 0);
    capture_writer_discard(w);
    struct stat sb;
    cr_assert(stat(t.dir, &sb) < 0 && errno == ENOENT, "%s is still there", t.dir);

    cr_assert_eq(mkdir(t.dir, 0755), 0);
    w = capture_writer_create(t.dir, 7, &err);
    cr_assert(w != NULL, "%s", err.msg);
    capture_writer_discard(w);
    cr_assert(stat(t.dir, &sb) == 0, "an existing directory was removed");
    char path[256];
    cr_assert(stat(path_of(path, sizeof(path), t.dir, CAPTURE_SNAPSHOT_FILE), &sb) < 0 &&
                  stat(path_of(path, sizeof(path), t.dir, CAPTURE_STREAM_FILE), &sb) < 0,
              "the files are still there");
    w = capture_writer_create(t.dir, 7, &err); /* and the directory takes a new capture */
    cr_assert(w != NULL, "%s", err.msg);
    capture_writer_free(w);
    tmp_remove(&t);
}

Test(capture_file, a_directory_that_cannot_be_made_is_reported)
{
    struct rs_error err = {0};
    struct capture_writer *w = capture_writer_create("/nonexistent-rs/a/b", 1, &err);
    cr_assert(w == NULL);
    cr_assert(strstr(err.msg, "/nonexistent-rs/a/b") != NULL, "%s", err.msg);
}

/* ------------------------------------------------------------ MANIFEST */

Test(capture_file, a_capture_without_manifest_is_refused_as_cut)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    sample_write(t.dir, &s, SNAPSHOT_SMALL, small_recs, SMALL_NRECS, 1000, false);
    struct rs_error err = open_fails(t.dir, "no MANIFEST");
    cr_assert_eq(err.code, RS_E_TRUNCATED, "%s", rs_error_code_name(err.code));
    assert_names(&err, CAPTURE_MANIFEST_FILE, "no MANIFEST");
    sample_free(&s);
    tmp_remove(&t);
}

/* The MANIFEST's text with line `drop` (0-based, -1: none) left out and its
 * first line replaced by `first` (NULL: kept). */
static char *manifest_edit(const char *text, int drop, const char *first)
{
    char *out = malloc(strlen(text) + 128);
    cr_assert(out != NULL);
    out[0] = 0;
    int line = 0;
    for (const char *p = text; *p; line++) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (line == 0 && first != NULL)
            strcat(out, first);
        else if (line != drop)
            strncat(out, p, n);
        p += n;
    }
    return out;
}

Test(capture_file, a_manifest_of_another_version_is_unsupported)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *text;
    size_t len;
    file_read(t.dir, CAPTURE_MANIFEST_FILE, &text, &len);
    text[len] = 0;
    cr_assert(strncmp((char *)text, "ringsync-capture 1\n", 19) == 0, "%s", text);
    char *v2 = manifest_edit((char *)text, -1, "ringsync-capture 2\n");
    file_write(t.dir, CAPTURE_MANIFEST_FILE, v2, strlen(v2));
    struct rs_error err = open_fails(t.dir, "version 2");
    cr_assert_eq(err.code, RS_E_UNSUPPORTED, "%s: %s", rs_error_code_name(err.code), err.msg);
    assert_names(&err, CAPTURE_MANIFEST_FILE, "version 2");
    cr_assert(strstr(err.msg, "version 2") != NULL, "%s", err.msg);

    char *other = manifest_edit((char *)text, -1, "something else\n");
    file_write(t.dir, CAPTURE_MANIFEST_FILE, other, strlen(other));
    err = open_fails(t.dir, "not a manifest");
    cr_assert_eq(err.code, RS_E_FORMAT);
    assert_names(&err, CAPTURE_MANIFEST_FILE, "not a manifest");

    file_write(t.dir, CAPTURE_MANIFEST_FILE, "", 0);
    err = open_fails(t.dir, "an empty MANIFEST");
    assert_names(&err, CAPTURE_MANIFEST_FILE, "an empty MANIFEST");
    free(v2);
    free(other);
    free(text);
    sample_free(&s);
    tmp_remove(&t);
}

Test(capture_file, a_manifest_missing_any_field_is_refused)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *text;
    size_t len;
    file_read(t.dir, CAPTURE_MANIFEST_FILE, &text, &len);
    text[len] = 0;
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    cr_assert_eq(lines, 12, "the MANIFEST has %d lines, not the version line and 11 fields:\n%s",
                 lines, text);
    for (int drop = 1; drop < lines; drop++) {
        char *edited = manifest_edit((char *)text, drop, NULL);
        file_write(t.dir, CAPTURE_MANIFEST_FILE, edited, strlen(edited));
        char what[128];
        snprintf(what, sizeof(what), "MANIFEST without line %d", drop + 1);
        struct rs_error err = open_fails(t.dir, what);
        cr_assert_eq(err.code, RS_E_FORMAT, "%s: %s", what, rs_error_code_name(err.code));
        assert_names(&err, CAPTURE_MANIFEST_FILE, what);
        free(edited);
    }
    /* and with all of them it is fine again */
    file_write(t.dir, CAPTURE_MANIFEST_FILE, text, len);
    assert_reads_back(t.dir, &s);
    free(text);
    sample_free(&s);
    tmp_remove(&t);
}

/* The manifest's numbers must agree with the files (and with each other). */
Test(capture_file, a_manifest_that_disagrees_with_the_files_is_refused)
{
    static const struct {
        const char *from, *to;
        int code;
        const char *file;
    } edits[] = {
        {"stream_records 5\n", "stream_records 6\n", RS_E_TRUNCATED, CAPTURE_STREAM_FILE},
        {"stream_records 5\n", "stream_records 4\n", RS_E_FORMAT, CAPTURE_STREAM_FILE},
        {"start_offset 12345\n", "start_offset 12346\n", RS_E_FORMAT, CAPTURE_MANIFEST_FILE},
        {"snapshot_bytes 3000\n", "snapshot_bytes 3001\n", RS_E_TRUNCATED, CAPTURE_SNAPSHOT_FILE},
    };
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *text;
    size_t len;
    file_read(t.dir, CAPTURE_MANIFEST_FILE, &text, &len);
    text[len] = 0;
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *at = strstr((char *)text, edits[i].from);
        cr_assert(at != NULL, "no \"%s\" in the MANIFEST:\n%s", edits[i].from, text);
        char *edited = malloc(len + 16);
        cr_assert(edited != NULL);
        snprintf(edited, len + 16, "%.*s%s%s", (int)(at - (char *)text), text, edits[i].to,
                 at + strlen(edits[i].from));
        file_write(t.dir, CAPTURE_MANIFEST_FILE, edited, strlen(edited));
        struct rs_error err = open_fails(t.dir, edits[i].to);
        cr_assert_eq(err.code, edits[i].code, "%s: %s: %s", edits[i].to,
                     rs_error_code_name(err.code), err.msg);
        assert_names(&err, edits[i].file, edits[i].to);
        free(edited);
    }
    free(text);
    sample_free(&s);
    tmp_remove(&t);
}

/* ------------------------------------------------------------ stream.rsc */

/* The start of the record that a file cut to `len` bytes breaks in (or, cut
 * at a record boundary, of the first missing record). */
static uint64_t record_start_at(const struct sample *s, uint64_t len)
{
    uint64_t start = CAPTURE_HEADER_BYTES;
    for (size_t i = 0; i <= s->nrecs; i++)
        if (s->starts[i] <= len)
            start = s->starts[i];
    return start;
}

Test(capture_file, a_stream_cut_at_any_byte_is_refused_at_the_record_it_breaks)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *full;
    size_t len;
    file_read(t.dir, CAPTURE_STREAM_FILE, &full, &len);
    cr_assert_eq(len, s.stream_file_len);
    for (size_t cut = 0; cut < len; cut++) {
        file_write(t.dir, CAPTURE_STREAM_FILE, full, cut);
        char what[128];
        snprintf(what, sizeof(what), "stream.rsc cut to %zu of %zu bytes", cut, len);
        struct rs_error err = open_fails(t.dir, what);
        cr_assert_eq(err.code, RS_E_TRUNCATED, "%s: %s: %s", what, rs_error_code_name(err.code),
                     err.msg);
        assert_names(&err, CAPTURE_STREAM_FILE, what);
        if (cut < CAPTURE_HEADER_BYTES) {
            cr_assert_eq(err.offset, 0, "%s: offset %" PRIu64, what, err.offset);
            continue;
        }
        uint64_t want = record_start_at(&s, cut);
        cr_assert_eq(err.offset, want, "%s: offset %" PRIu64 ", the record starts at %" PRIu64,
                     what, err.offset, want);
        assert_offset_in_msg(&err, what);
    }
    /* whole again: accepted */
    file_write(t.dir, CAPTURE_STREAM_FILE, full, len);
    assert_reads_back(t.dir, &s);
    free(full);
    sample_free(&s);
    tmp_remove(&t);
}

Test(capture_file, a_flipped_byte_in_a_record_is_a_checksum_error_at_its_start)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *full;
    size_t len;
    file_read(t.dir, CAPTURE_STREAM_FILE, &full, &len);
    for (size_t i = 0; i < s.nrecs; i++) {
        /* a byte of the data (its first, middle and last), of the CRC, of
         * the arrival time (a 1x replay would wait for it) */
        size_t data = s.starts[i] + CAPTURE_RECORD_BYTES;
        size_t at[] = {data, data + s.recs[i].len / 2, data + s.recs[i].len - 1,
                       s.starts[i] + 16 + i % 8, s.starts[i] + i % 8};
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
            full[at[k]] ^= 0x20;
            file_write(t.dir, CAPTURE_STREAM_FILE, full, len);
            full[at[k]] ^= 0x20;
            char what[96];
            snprintf(what, sizeof(what), "byte %zu of stream.rsc flipped (record %zu)", at[k],
                     i + 1);
            struct rs_error err = open_fails(t.dir, what);
            cr_assert_eq(err.code, RS_E_CHECKSUM, "%s: %s: %s", what, rs_error_code_name(err.code),
                         err.msg);
            cr_assert_eq(err.offset, s.starts[i],
                         "%s: offset %" PRIu64 ", the record's start %" PRIu64, what, err.offset,
                         s.starts[i]);
            assert_names(&err, CAPTURE_STREAM_FILE, what);
            assert_offset_in_msg(&err, what);
            char rec[32];
            snprintf(rec, sizeof(rec), "record %zu ", i + 1);
            cr_assert(strstr(err.msg, rec) != NULL, "%s: does not say \"%s\": %s", what, rec,
                      err.msg);
        }
    }
    free(full);
    sample_free(&s);
    tmp_remove(&t);
}

/* A record header whose length is 0, past the limit, or runs past the end of
 * the file; its reserved word not 0. */
Test(capture_file, a_record_header_that_makes_no_sense_is_refused_at_its_start)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *full;
    size_t len;
    file_read(t.dir, CAPTURE_STREAM_FILE, &full, &len);
    static const struct {
        unsigned at; /* in the header */
        uint8_t value;
        int code;
    } edits[] = {
        {8, 0, RS_E_FORMAT},       /* length 30 -> 0 */
        {11, 0x7f, RS_E_FORMAT},   /* length past CAPTURE_RECORD_MAX */
        {9, 0x01, RS_E_TRUNCATED}, /* length 30 + 256: past the end of the file */
        {12, 1, RS_E_FORMAT},      /* the reserved word */
    };
    size_t rec = 2; /* the third record, 30 bytes, not the last */
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        size_t at = s.starts[rec] + edits[i].at;
        uint8_t was = full[at];
        full[at] = edits[i].value;
        file_write(t.dir, CAPTURE_STREAM_FILE, full, len);
        full[at] = was;
        char what[128];
        snprintf(what, sizeof(what), "record header byte %u set to %#x", edits[i].at,
                 edits[i].value);
        struct rs_error err = open_fails(t.dir, what);
        cr_assert_eq(err.code, edits[i].code, "%s: %s: %s", what, rs_error_code_name(err.code),
                     err.msg);
        cr_assert_eq(err.offset, s.starts[rec], "%s: offset %" PRIu64, what, err.offset);
        assert_names(&err, CAPTURE_STREAM_FILE, what);
    }
    free(full);
    sample_free(&s);
    tmp_remove(&t);
}

Test(capture_file, a_stream_header_of_another_kind_is_refused)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *full;
    size_t len;
    file_read(t.dir, CAPTURE_STREAM_FILE, &full, &len);
    static const struct {
        unsigned at;
        uint8_t value;
        int code;
        uint64_t offset;
    } edits[] = {
        {0, 'X', RS_E_FORMAT, 0},    /* the magic */
        {8, 2, RS_E_UNSUPPORTED, 8}, /* version 2 */
        {16, 0x3a, RS_E_FORMAT, 16}, /* a start offset other than the manifest's */
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        uint8_t was = full[edits[i].at];
        full[edits[i].at] = edits[i].value;
        file_write(t.dir, CAPTURE_STREAM_FILE, full, len);
        full[edits[i].at] = was;
        char what[128];
        snprintf(what, sizeof(what), "stream header byte %u set to %#x", edits[i].at,
                 edits[i].value);
        struct rs_error err = open_fails(t.dir, what);
        cr_assert_eq(err.code, edits[i].code, "%s: %s: %s", what, rs_error_code_name(err.code),
                     err.msg);
        cr_assert_eq(err.offset, edits[i].offset, "%s: offset %" PRIu64, what, err.offset);
        assert_names(&err, CAPTURE_STREAM_FILE, what);
    }
    free(full);
    sample_free(&s);
    tmp_remove(&t);
}

/* A whole record more than the manifest counts (a stream.rsc of another,
 * longer capture of the same start): refused at that record. */
Test(capture_file, a_record_past_the_manifests_count_is_refused_at_its_start)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *full;
    size_t len;
    file_read(t.dir, CAPTURE_STREAM_FILE, &full, &len);
    size_t last = s.starts[s.nrecs - 1];
    size_t rec_len = len - last;
    uint8_t *longer = malloc(len + rec_len);
    cr_assert(longer != NULL);
    memcpy(longer, full, len);
    memcpy(longer + len, full + last, rec_len);
    file_write(t.dir, CAPTURE_STREAM_FILE, longer, len + rec_len);
    struct rs_error err = open_fails(t.dir, "one record too many");
    cr_assert_eq(err.code, RS_E_FORMAT, "%s: %s", rs_error_code_name(err.code), err.msg);
    cr_assert_eq(err.offset, len, "offset %" PRIu64 ", the extra record starts at %zu", err.offset,
                 len);
    assert_names(&err, CAPTURE_STREAM_FILE, "one record too many");

    /* and a few bytes past the last record: a record that was cut */
    file_write(t.dir, CAPTURE_STREAM_FILE, longer, len + 5);
    err = open_fails(t.dir, "5 bytes past the last record");
    cr_assert_eq(err.code, RS_E_TRUNCATED, "%s: %s", rs_error_code_name(err.code), err.msg);
    cr_assert_eq(err.offset, len);
    free(longer);
    free(full);
    sample_free(&s);
    tmp_remove(&t);
}

Test(capture_file, decreasing_arrival_times_are_refused_at_the_record)
{
    static const struct rec_spec recs[] = {{10, 4}, {20, 4}, {20, 4}, {15, 4}, {30, 4}};
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    sample_write(t.dir, &s, 100, recs, sizeof(recs) / sizeof(recs[0]), 100, true);
    struct rs_error err = open_fails(t.dir, "record 4 arrived before record 3");
    cr_assert_eq(err.code, RS_E_FORMAT, "%s: %s", rs_error_code_name(err.code), err.msg);
    assert_names(&err, CAPTURE_STREAM_FILE, "decreasing times");
    cr_assert(strstr(err.msg, "record 4 ") != NULL, "does not name record 4: %s", err.msg);
    cr_assert_eq(err.offset, s.starts[3], "offset %" PRIu64 ", record 4 starts at %" PRIu64,
                 err.offset, s.starts[3]);
    sample_free(&s);
    tmp_remove(&t);
}

/* ------------------------------------------------------------ snapshot.rdb */

Test(capture_file, a_snapshot_of_another_size_or_content_is_refused)
{
    struct tmp t;
    tmp_make(&t);
    struct sample s;
    small_write(t.dir, &s);
    uint8_t *snap;
    size_t len;
    file_read(t.dir, CAPTURE_SNAPSHOT_FILE, &snap, &len);
    cr_assert_eq(len, SNAPSHOT_SMALL);

    file_write(t.dir, CAPTURE_SNAPSHOT_FILE, snap, len - 100);
    struct rs_error err = open_fails(t.dir, "a shorter snapshot.rdb");
    cr_assert_eq(err.code, RS_E_TRUNCATED, "%s: %s", rs_error_code_name(err.code), err.msg);
    cr_assert_eq(err.offset, len - 100, "offset %" PRIu64, err.offset);
    assert_names(&err, CAPTURE_SNAPSHOT_FILE, "a shorter snapshot.rdb");

    uint8_t *longer = malloc(len + 1);
    cr_assert(longer != NULL);
    memcpy(longer, snap, len);
    longer[len] = 0xff;
    file_write(t.dir, CAPTURE_SNAPSHOT_FILE, longer, len + 1);
    err = open_fails(t.dir, "a longer snapshot.rdb");
    cr_assert_eq(err.code, RS_E_FORMAT, "%s: %s", rs_error_code_name(err.code), err.msg);
    cr_assert_eq(err.offset, len, "offset %" PRIu64 ": the extra byte is at %zu", err.offset, len);
    assert_names(&err, CAPTURE_SNAPSHOT_FILE, "a longer snapshot.rdb");

    for (size_t at = 0; at < len; at += 997) {
        snap[at] ^= 0x01;
        file_write(t.dir, CAPTURE_SNAPSHOT_FILE, snap, len);
        snap[at] ^= 0x01;
        char what[128];
        snprintf(what, sizeof(what), "byte %zu of snapshot.rdb flipped", at);
        err = open_fails(t.dir, what);
        /* one CRC covers the whole file: it cannot say which byte */
        cr_assert_eq(err.code, RS_E_CHECKSUM, "%s: %s: %s", what, rs_error_code_name(err.code),
                     err.msg);
        assert_names(&err, CAPTURE_SNAPSHOT_FILE, what);
    }

    char path[256];
    cr_assert(unlink(path_of(path, sizeof(path), t.dir, CAPTURE_SNAPSHOT_FILE)) == 0);
    err = open_fails(t.dir, "no snapshot.rdb");
    assert_names(&err, CAPTURE_SNAPSHOT_FILE, "no snapshot.rdb");

    file_write(t.dir, CAPTURE_SNAPSHOT_FILE, snap, len);
    assert_reads_back(t.dir, &s);
    free(longer);
    free(snap);
    sample_free(&s);
    tmp_remove(&t);
}
