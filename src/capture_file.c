/* capture_file.c - writes and reads the files of a capture (capture_file.h). */
#include "capture_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc64.h"

#define CAPTURE_MAGIC      "RSCAPSTR"
#define CAPTURE_WRITE_BUF  (1024 * 1024)
#define CAPTURE_READ_CHUNK (1024 * 1024)

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* CRC-64 of everything fed but the last 8 bytes: of an RDB file, the bytes
 * its own trailing checksum covers (the CRC of a whole RDB is always 0). */
struct held_crc {
    uint64_t crc;
    uint8_t tail[8];
    size_t tail_len;
};

static void held_crc_add(struct held_crc *h, const uint8_t *p, size_t n)
{
    if (n >= 8) {
        h->crc = crc64_update(h->crc, h->tail, h->tail_len);
        h->crc = crc64_update(h->crc, p, n - 8);
        memcpy(h->tail, p + n - 8, 8);
        h->tail_len = 8;
        return;
    }
    if (h->tail_len + n > 8) {
        size_t out = h->tail_len + n - 8;
        h->crc = crc64_update(h->crc, h->tail, out);
        memmove(h->tail, h->tail + out, h->tail_len - out);
        h->tail_len -= out;
    }
    memcpy(h->tail + h->tail_len, p, n);
    h->tail_len += n;
}

/* A record's CRC: its header's first 16 bytes (arrival, length), then its data. */
static uint64_t record_crc(const uint8_t *h, const void *data, size_t n)
{
    return crc64_update(crc64_update(0, h, 16), data, n);
}

static void join_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* ------------------------------------------------------------------ writing */

/* A file written through a buffer, counting bytes and their CRC. */
struct out_file {
    int fd;
    const char *name;
    uint8_t *buf;
    size_t len;
    uint64_t bytes;
    struct held_crc crc;
};

struct capture_writer {
    char dir[4096];
    struct out_file snap, stream;
    uint64_t start_offset;
    uint64_t records, stream_data;
    bool made_dir; /* the directory is ours: discard removes it too */
};

static int out_flush(struct out_file *f, struct rs_error *err)
{
    size_t done = 0;
    while (done < f->len) {
        ssize_t n = write(f->fd, f->buf + done, f->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rs_error_set(err, RS_E_FORMAT, f->bytes, "cannot write %s: %s", f->name,
                         strerror(errno));
            return -1;
        }
        done += (size_t)n;
    }
    f->len = 0;
    return 0;
}

static int out_put(struct out_file *f, const void *p, size_t n, struct rs_error *err)
{
    const uint8_t *b = p;
    f->bytes += n;
    while (n > 0) {
        if (f->len == CAPTURE_WRITE_BUF && out_flush(f, err) < 0)
            return -1;
        size_t take = CAPTURE_WRITE_BUF - f->len;
        if (take > n)
            take = n;
        memcpy(f->buf + f->len, b, take);
        f->len += take;
        b += take;
        n -= take;
    }
    return 0;
}

static int out_open(struct out_file *f, const char *dir, const char *name, struct rs_error *err)
{
    char path[4200];
    join_path(path, sizeof(path), dir, name);
    f->name = name;
    f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        rs_error_set(err, RS_E_FORMAT, 0, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    f->buf = malloc(CAPTURE_WRITE_BUF);
    if (f->buf == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
        return -1;
    }
    return 0;
}

struct capture_writer *capture_writer_create(const char *dir, uint64_t start_offset,
                                             struct rs_error *err)
{
    bool made_dir = mkdir(dir, 0755) == 0;
    if (!made_dir && errno != EEXIST) {
        rs_error_set(err, RS_E_FORMAT, 0, "cannot create the directory %s: %s", dir,
                     strerror(errno));
        return NULL;
    }
    static const char *const names[] = {CAPTURE_MANIFEST_FILE, CAPTURE_SNAPSHOT_FILE,
                                        CAPTURE_STREAM_FILE};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[4200];
        join_path(path, sizeof(path), dir, names[i]);
        if (access(path, F_OK) == 0) {
            rs_error_set(err, RS_E_FORMAT, 0,
                         "%s already holds a capture (%s): give an empty or new directory", dir,
                         names[i]);
            return NULL;
        }
    }
    struct capture_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
        return NULL;
    }
    w->snap.fd = w->stream.fd = -1;
    w->made_dir = made_dir;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    w->start_offset = start_offset;
    if (out_open(&w->snap, dir, CAPTURE_SNAPSHOT_FILE, err) < 0 ||
        out_open(&w->stream, dir, CAPTURE_STREAM_FILE, err) < 0) {
        capture_writer_free(w);
        return NULL;
    }
    uint8_t h[CAPTURE_HEADER_BYTES] = {0};
    memcpy(h, CAPTURE_MAGIC, 8);
    put_u32(h + 8, CAPTURE_VERSION);
    put_u64(h + 16, start_offset);
    if (out_put(&w->stream, h, sizeof(h), err) < 0) {
        capture_writer_free(w);
        return NULL;
    }
    return w;
}

void capture_writer_set_start(struct capture_writer *w, uint64_t start_offset)
{
    RS_ASSERT(w->stream.bytes == CAPTURE_HEADER_BYTES && w->stream.len == CAPTURE_HEADER_BYTES);
    w->start_offset = start_offset;
    put_u64(w->stream.buf + 16, start_offset);
}

int capture_writer_snapshot(struct capture_writer *w, const void *p, size_t n, struct rs_error *err)
{
    held_crc_add(&w->snap.crc, p, n);
    return out_put(&w->snap, p, n, err);
}

int capture_writer_stream(struct capture_writer *w, uint64_t t_ns, const void *p, size_t n,
                          struct rs_error *err)
{
    if (n == 0)
        return 0;
    RS_ASSERT(n <= CAPTURE_RECORD_MAX);
    uint8_t h[CAPTURE_RECORD_BYTES] = {0};
    put_u64(h, t_ns);
    put_u32(h + 8, (uint32_t)n);
    put_u64(h + 16, record_crc(h, p, n));
    if (out_put(&w->stream, h, sizeof(h), err) < 0 || out_put(&w->stream, p, n, err) < 0)
        return -1;
    w->records++;
    w->stream_data += n;
    return 0;
}

int capture_writer_flush(struct capture_writer *w, struct rs_error *err)
{
    return out_flush(&w->snap, err) < 0 || out_flush(&w->stream, err) < 0 ? -1 : 0;
}

int capture_writer_finish(struct capture_writer *w, struct capture_meta *m, struct rs_error *err)
{
    if (capture_writer_flush(w, err) < 0)
        return -1;
    if (fsync(w->snap.fd) < 0 || fsync(w->stream.fd) < 0) {
        rs_error_set(err, RS_E_FORMAT, 0, "cannot sync the capture in %s: %s", w->dir,
                     strerror(errno));
        return -1;
    }
    m->start_offset = w->start_offset;
    m->snapshot_bytes = w->snap.bytes;
    m->snapshot_crc64 = w->snap.crc.crc;
    m->stream_bytes = w->stream_data;
    m->stream_records = w->records;
    m->end_offset = w->start_offset + w->stream_data;
    char tmp[4200], path[4200];
    join_path(tmp, sizeof(tmp), w->dir, CAPTURE_MANIFEST_FILE ".tmp");
    join_path(path, sizeof(path), w->dir, CAPTURE_MANIFEST_FILE);
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        rs_error_set(err, RS_E_FORMAT, 0, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f,
            "ringsync-capture %d\n"
            "source %s\n"
            "replid %s\n"
            "start_offset %" PRIu64 "\n"
            "end_offset %" PRIu64 "\n"
            "snapshot_bytes %" PRIu64 "\n"
            "snapshot_crc64 %016" PRIx64 "\n"
            "snapshot_s %.6f\n"
            "stream_bytes %" PRIu64 "\n"
            "stream_records %" PRIu64 "\n"
            "duration_s %.6f\n"
            "started %" PRId64 "\n",
            CAPTURE_VERSION, m->source, m->replid, m->start_offset, m->end_offset,
            m->snapshot_bytes, m->snapshot_crc64, m->snapshot_s, m->stream_bytes, m->stream_records,
            m->duration_s, m->started);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        rs_error_set(err, RS_E_FORMAT, 0, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void capture_writer_discard(struct capture_writer *w)
{
    if (w == NULL)
        return;
    static const char *const names[] = {CAPTURE_SNAPSHOT_FILE, CAPTURE_STREAM_FILE};
    for (size_t i = 0; i < 2; i++) {
        char path[4200];
        join_path(path, sizeof(path), w->dir, names[i]);
        unlink(path);
    }
    if (w->made_dir)
        rmdir(w->dir);
    capture_writer_free(w);
}

void capture_writer_free(struct capture_writer *w)
{
    if (w == NULL)
        return;
    struct out_file *fs[] = {&w->snap, &w->stream};
    for (size_t i = 0; i < 2; i++) {
        if (fs[i]->fd >= 0)
            close(fs[i]->fd);
        free(fs[i]->buf);
    }
    free(w);
}

/* ------------------------------------------------------------------ reading */

/* The manifest's names, each required. */
static const char *const manifest_fields[] = {"source",     "replid",         "start_offset",
                                              "end_offset", "snapshot_bytes", "snapshot_crc64",
                                              "snapshot_s", "stream_bytes",   "stream_records",
                                              "duration_s", "started"};
#define MANIFEST_FIELDS (sizeof(manifest_fields) / sizeof(manifest_fields[0]))

static int parse_manifest(struct capture_meta *m, const char *dir, struct rs_error *err)
{
    char path[4200];
    join_path(path, sizeof(path), dir, CAPTURE_MANIFEST_FILE);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            rs_error_set(err, RS_E_TRUNCATED, 0,
                         "%s holds no finished capture: %s is missing (the capture was cut "
                         "before it ended, or this is not a capture)",
                         dir, CAPTURE_MANIFEST_FILE);
        else
            rs_error_set(err, RS_E_FORMAT, 0, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char line[512] = ""; /* an empty file leaves it untouched by fgets */
    int version = 0;
    unsigned seen = 0;
    uint64_t off = 0;
    int rc = 0;
    if (fgets(line, sizeof(line), f) == NULL ||
        sscanf(line, "ringsync-capture %d", &version) != 1) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s: the first line is not 'ringsync-capture <version>'",
                     path);
        rc = -1;
    } else if (version != CAPTURE_VERSION) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "%s: capture format version %d; this ringsync reads version %d", path, version,
                     CAPTURE_VERSION);
        rc = -1;
    }
    off = strlen(line);
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        char name[64], value[300];
        if (sscanf(line, "%63s %299s", name, value) != 2) {
            rs_error_set(err, RS_E_FORMAT, off, "%s: a line is not 'name value'", path);
            rc = -1;
            break;
        }
        for (unsigned i = 0; i < MANIFEST_FIELDS; i++)
            if (strcmp(name, manifest_fields[i]) == 0)
                seen |= 1u << i;
        if (strcmp(name, "source") == 0)
            snprintf(m->source, sizeof(m->source), "%s", value);
        else if (strcmp(name, "replid") == 0)
            snprintf(m->replid, sizeof(m->replid), "%.40s", value);
        else if (strcmp(name, "start_offset") == 0)
            m->start_offset = strtoull(value, NULL, 10);
        else if (strcmp(name, "end_offset") == 0)
            m->end_offset = strtoull(value, NULL, 10);
        else if (strcmp(name, "snapshot_bytes") == 0)
            m->snapshot_bytes = strtoull(value, NULL, 10);
        else if (strcmp(name, "snapshot_crc64") == 0)
            m->snapshot_crc64 = strtoull(value, NULL, 16);
        else if (strcmp(name, "snapshot_s") == 0)
            m->snapshot_s = strtod(value, NULL);
        else if (strcmp(name, "stream_bytes") == 0)
            m->stream_bytes = strtoull(value, NULL, 10);
        else if (strcmp(name, "stream_records") == 0)
            m->stream_records = strtoull(value, NULL, 10);
        else if (strcmp(name, "duration_s") == 0)
            m->duration_s = strtod(value, NULL);
        else if (strcmp(name, "started") == 0)
            m->started = strtoll(value, NULL, 10);
        off += strlen(line);
    }
    fclose(f);
    for (unsigned i = 0; rc == 0 && i < MANIFEST_FIELDS; i++)
        if (!(seen & 1u << i)) {
            rs_error_set(err, RS_E_FORMAT, 0, "%s lacks its %s line", path, manifest_fields[i]);
            rc = -1;
        }
    if (rc == 0 && m->end_offset != m->start_offset + m->stream_bytes) {
        rs_error_set(err, RS_E_FORMAT, 0,
                     "%s: end_offset %" PRIu64 " is not start_offset + stream_bytes", path,
                     m->end_offset);
        rc = -1;
    }
    return rc;
}

/* Checks snapshot.rdb's size and CRC against the manifest. */
static int check_snapshot(const struct capture_reader *r, struct rs_error *err)
{
    int fd = open(r->snapshot_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rs_error_set(err, RS_E_TRUNCATED, 0, "cannot open %s: %s", r->snapshot_path,
                     strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(CAPTURE_READ_CHUNK);
    uint64_t total = 0;
    struct held_crc crc = {0};
    ssize_t n = 0;
    while (buf != NULL && (n = read(fd, buf, CAPTURE_READ_CHUNK)) > 0) {
        held_crc_add(&crc, buf, (size_t)n);
        total += (uint64_t)n;
    }
    free(buf);
    close(fd);
    if (buf == NULL || n < 0) {
        rs_error_set(err, RS_E_FORMAT, total, "cannot read %s", r->snapshot_path);
        return -1;
    }
    if (total != r->meta.snapshot_bytes) {
        /* where it breaks: its end, or where the bytes the manifest lacks begin */
        uint64_t at = total < r->meta.snapshot_bytes ? total : r->meta.snapshot_bytes;
        rs_error_set(err, total < r->meta.snapshot_bytes ? RS_E_TRUNCATED : RS_E_FORMAT, at,
                     "%s holds %" PRIu64 " bytes; the manifest says %" PRIu64, r->snapshot_path,
                     total, r->meta.snapshot_bytes);
        return -1;
    }
    if (crc.crc != r->meta.snapshot_crc64) {
        rs_error_set(err, RS_E_CHECKSUM, 0, "%s: its CRC-64 is not the manifest's",
                     r->snapshot_path);
        return -1;
    }
    return 0;
}

static int open_stream(struct capture_reader *r, const char *dir, struct rs_error *err)
{
    char path[4200];
    join_path(path, sizeof(path), dir, CAPTURE_STREAM_FILE);
    r->stream = fopen(path, "re");
    if (r->stream == NULL) {
        rs_error_set(err, RS_E_TRUNCATED, 0, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t h[CAPTURE_HEADER_BYTES];
    if (fread(h, 1, sizeof(h), r->stream) != sizeof(h)) {
        rs_error_set(err, RS_E_TRUNCATED, 0, "%s ends inside its header", CAPTURE_STREAM_FILE);
        return -1;
    }
    if (memcmp(h, CAPTURE_MAGIC, 8) != 0) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s does not start with %s", CAPTURE_STREAM_FILE,
                     CAPTURE_MAGIC);
        return -1;
    }
    if (get_u32(h + 8) != CAPTURE_VERSION) {
        rs_error_set(err, RS_E_UNSUPPORTED, 8, "%s: format version %u; this ringsync reads %d",
                     CAPTURE_STREAM_FILE, get_u32(h + 8), CAPTURE_VERSION);
        return -1;
    }
    if (get_u32(h + 12) != 0 || get_u64(h + 24) != 0) {
        rs_error_set(err, RS_E_FORMAT, 12, "%s: its header's reserved fields are not 0",
                     CAPTURE_STREAM_FILE);
        return -1;
    }
    if (get_u64(h + 16) != r->meta.start_offset) {
        rs_error_set(err, RS_E_FORMAT, 16,
                     "%s starts at offset %" PRIu64 "; the manifest says %" PRIu64,
                     CAPTURE_STREAM_FILE, get_u64(h + 16), r->meta.start_offset);
        return -1;
    }
    r->file_offset = CAPTURE_HEADER_BYTES;
    r->records_read = 0;
    return 0;
}

int capture_reader_next(struct capture_reader *r, struct capture_record *rec, struct rs_error *err)
{
    uint8_t h[CAPTURE_RECORD_BYTES];
    size_t got = fread(h, 1, sizeof(h), r->stream);
    if (got == 0 && feof(r->stream)) {
        if (r->records_read != r->meta.stream_records) {
            rs_error_set(err, RS_E_TRUNCATED, r->file_offset,
                         "%s ends after %" PRIu64 " records at byte %" PRIu64
                         "; the manifest says %" PRIu64 " (the file was cut)",
                         CAPTURE_STREAM_FILE, r->records_read, r->file_offset,
                         r->meta.stream_records);
            return -1;
        }
        return 0;
    }
    if (got != sizeof(h)) {
        rs_error_set(err, RS_E_TRUNCATED, r->file_offset,
                     "%s ends inside the header of record %" PRIu64 " at byte %" PRIu64,
                     CAPTURE_STREAM_FILE, r->records_read + 1, r->file_offset);
        return -1;
    }
    uint32_t len = get_u32(h + 8);
    if (len == 0 || len > CAPTURE_RECORD_MAX || get_u32(h + 12) != 0) {
        rs_error_set(err, RS_E_FORMAT, r->file_offset,
                     "%s: record %" PRIu64 " at byte %" PRIu64 " has a bad header (length %u)",
                     CAPTURE_STREAM_FILE, r->records_read + 1, r->file_offset, len);
        return -1;
    }
    if (r->cap < len) {
        uint8_t *d = realloc(r->data, len);
        if (d == NULL) {
            rs_error_set(err, RS_E_LIMIT, r->file_offset, "out of memory");
            return -1;
        }
        r->data = d;
        r->cap = len;
    }
    if (fread(r->data, 1, len, r->stream) != len) {
        rs_error_set(err, RS_E_TRUNCATED, r->file_offset,
                     "%s ends inside record %" PRIu64 " (at byte %" PRIu64 ", %u bytes long)",
                     CAPTURE_STREAM_FILE, r->records_read + 1, r->file_offset, len);
        return -1;
    }
    if (record_crc(h, r->data, len) != get_u64(h + 16)) {
        rs_error_set(err, RS_E_CHECKSUM, r->file_offset,
                     "%s: record %" PRIu64 " at byte %" PRIu64 " does not match its CRC-64",
                     CAPTURE_STREAM_FILE, r->records_read + 1, r->file_offset);
        return -1;
    }
    rec->t_ns = get_u64(h);
    rec->p = r->data;
    rec->len = len;
    r->file_offset += CAPTURE_RECORD_BYTES + len;
    r->records_read++;
    if (r->records_read > r->meta.stream_records) {
        rs_error_set(err, RS_E_FORMAT, r->file_offset - CAPTURE_RECORD_BYTES - len,
                     "%s holds more records than the manifest's %" PRIu64, CAPTURE_STREAM_FILE,
                     r->meta.stream_records);
        return -1;
    }
    return 1;
}

int capture_reader_open(struct capture_reader *r, const char *dir, struct rs_error *err)
{
    memset(r, 0, sizeof(*r));
    if (parse_manifest(&r->meta, dir, err) < 0)
        return -1;
    join_path(r->snapshot_path, sizeof(r->snapshot_path), dir, CAPTURE_SNAPSHOT_FILE);
    if (check_snapshot(r, err) < 0)
        return -1;
    /* one pass over the stream checks every record, a second one replays it */
    if (open_stream(r, dir, err) < 0)
        return -1;
    struct capture_record rec;
    uint64_t bytes = 0, last_t = 0;
    int rc;
    while ((rc = capture_reader_next(r, &rec, err)) == 1) {
        if (rec.t_ns < last_t) {
            uint64_t at = r->file_offset - CAPTURE_RECORD_BYTES - rec.len; /* its start */
            rs_error_set(err, RS_E_FORMAT, at,
                         "%s: record %" PRIu64 " at byte %" PRIu64
                         " arrived before the one ahead of it",
                         CAPTURE_STREAM_FILE, r->records_read, at);
            return -1;
        }
        last_t = rec.t_ns;
        bytes += rec.len;
    }
    if (rc < 0)
        return -1;
    if (bytes != r->meta.stream_bytes) {
        rs_error_set(err, RS_E_FORMAT, r->file_offset,
                     "%s holds %" PRIu64 " stream bytes; the manifest says %" PRIu64,
                     CAPTURE_STREAM_FILE, bytes, r->meta.stream_bytes);
        return -1;
    }
    fclose(r->stream);
    r->stream = NULL;
    return open_stream(r, dir, err);
}

void capture_reader_close(struct capture_reader *r)
{
    if (r->stream != NULL)
        fclose(r->stream);
    free(r->data);
    r->stream = NULL;
    r->data = NULL;
}
