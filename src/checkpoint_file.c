/* checkpoint_file.c - a job's checkpoint in a local file (see
 * checkpoint_file.h). */
#include "checkpoint_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

/* The value of " name=" in line into out (capacity cap); 0, or -1 when
 * missing or too long. */
static int field(const char *line, const char *name, char *out, size_t cap)
{
    char pat[32];
    snprintf(pat, sizeof(pat), " %s=", name);
    const char *p = strstr(line, pat);
    if (p == NULL)
        return -1;
    p += strlen(pat);
    size_t n = strcspn(p, " \n");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return -1;
    *v = x;
    return 0;
}

int checkpoint_file_read(const char *path, const char *job, const char *target,
                         struct checkpoint_state *st, struct rs_error *err)
{
    memset(st, 0, sizeof(*st));
    st->margin_on = -1;
    FILE *f = fopen(path, "r");
    if (f == NULL && errno == ENOENT)
        return 0;
    if (f == NULL) {
        rs_error_set(err, RS_E_FORMAT, 0, "checkpoint file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[LINE_MAX_BYTES];
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    char fjob[CHECKPOINT_JOB_MAX], ftarget[300], w[24], db[24], at[24];
    uint64_t wv = 0, dbv = 0, atv = 0;
    const char *bad =
        !got || strncmp(line, "ringsync-checkpoint 1 ", 22) != 0
            ? "it does not start with \"ringsync-checkpoint 1\""
        : field(line, "job", fjob, sizeof(fjob)) < 0          ? "no job="
        : field(line, "target", ftarget, sizeof(ftarget)) < 0 ? "no target="
        : field(line, "replid", st->replid, sizeof(st->replid)) < 0 ||
                strlen(st->replid) != SOURCE_REPLID_LEN
            ? "no replid= of 40 characters"
        : field(line, "W", w, sizeof(w)) < 0 || parse_u64(w, &wv) < 0      ? "no W= offset"
        : field(line, "db", db, sizeof(db)) < 0 || parse_u64(db, &dbv) < 0 ? "no db= number"
        : field(line, "phase", st->phase, sizeof(st->phase)) < 0           ? "no phase="
        : field(line, "at", at, sizeof(at)) < 0 || parse_u64(at, &atv) < 0 ? "no at= time"
                                                                           : NULL;
    if (bad == NULL && strcmp(st->phase, CHECKPOINT_FULL) != 0 &&
        strcmp(st->phase, CHECKPOINT_FULL_KEEP) != 0 && strcmp(st->phase, CHECKPOINT_STREAM) != 0)
        bad = "phase= is not full, full-keep or stream";
    if (bad != NULL) {
        rs_error_set(err, RS_E_FORMAT, 0,
                     "checkpoint file %s: %s; it is not a checkpoint ringsync wrote (move it away "
                     "to start the job anew)",
                     path, bad);
        memset(st, 0, sizeof(*st));
        return -1;
    }
    if (strcmp(fjob, job) != 0 || strcmp(ftarget, target) != 0) {
        rs_error_set(err, RS_E_FORMAT, 0,
                     "checkpoint file %s is of job %s into %s, not of job %s into %s: give each "
                     "job a file of its own",
                     path, fjob, ftarget, job, target);
        memset(st, 0, sizeof(*st));
        return -1;
    }
    st->found = true;
    st->w = wv;
    st->db = (int64_t)dbv;
    st->at_ms = (int64_t)atv;
    return 0;
}

int checkpoint_file_write(const char *path, const char *job, const char *target, const char *replid,
                          uint64_t w, int64_t db, const char *phase, struct rs_error *err)
{
    char tmp[4096], line[LINE_MAX_BYTES];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int n = snprintf(line, sizeof(line),
                     "ringsync-checkpoint 1 job=%s target=%s replid=%s W=%" PRIu64 " db=%" PRId64
                     " phase=%s at=%" PRId64 "\n",
                     job, target, replid, w, db, phase, ms);
    if (n < 0 || (size_t)n >= sizeof(line) ||
        snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        rs_error_set(err, RS_E_LIMIT, 0, "checkpoint file %s: the path or the line is too long",
                     path);
        return -1;
    }
    const char *what = "open";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    if (ok && (what = "write", write(fd, line, (size_t)n) != n))
        ok = false;
    if (ok && (what = "fsync", fsync(fd) != 0))
        ok = false;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (ok && (what = "rename", rename(tmp, path) != 0)) {
        ok = false;
        e = errno;
    }
    if (ok) { /* the rename itself reaches the disk with its directory */
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", path);
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    if (!ok) {
        rs_error_set(err, RS_E_FORMAT, 0, "checkpoint file %s: %s of %s: %s", path, what, tmp,
                     strerror(e));
        unlink(tmp);
        return -1;
    }
    return 0;
}
