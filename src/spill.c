/* spill.c - the in-order byte FIFO of memory chunks and a file (see spill.h). */
#include "spill.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPILL_CHUNK (256 * 1024)

struct chunk {
    struct chunk *next;
    size_t len, off; /* bytes in it, bytes already consumed */
    uint8_t data[];
};

struct spill {
    char dir[512];
    size_t max_memory;
    struct chunk *head, *tail;
    size_t mem;        /* bytes in chunks (including consumed ones not yet freed) */
    size_t mem_unread; /* bytes in chunks not yet consumed */
    int fd;            /* -1 until first needed */
    uint64_t wpos;     /* the file's end */
    uint64_t rpos;     /* the next byte to read from it */
    uint8_t *rbuf;     /* what was read from the file */
    size_t rlen, roff;
    uint64_t file_peak;
};

struct spill *spill_new(const char *dir, size_t max_memory)
{
    struct spill *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    const char *d = dir ? dir : getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s", d && *d ? d : "/tmp");
    s->max_memory = max_memory;
    s->fd = -1;
    return s;
}

void spill_free(struct spill *s)
{
    if (s == NULL)
        return;
    while (s->head) {
        struct chunk *c = s->head;
        s->head = c->next;
        free(c);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s->rbuf);
    free(s);
}

static bool file_in_use(const struct spill *s)
{
    return s->fd >= 0 && (s->rpos < s->wpos || s->roff < s->rlen);
}

static int to_file(struct spill *s, const void *p, size_t n, struct rs_error *err)
{
    if (s->fd < 0) {
        char path[600];
        snprintf(path, sizeof(path), "%s/ringsync-spill.XXXXXX", s->dir);
        s->fd = mkstemp(path);
        if (s->fd < 0) {
            int e = errno;
            rs_error_set(err, RS_E_LIMIT, 0, "cannot make a spill file in %s: %s", s->dir,
                         strerror(e));
            return -e;
        }
        unlink(path); /* gone when we are */
    }
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = pwrite(s->fd, q, n, (off_t)s->wpos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            rs_error_set(err, RS_E_LIMIT, s->wpos, "cannot write the spill file in %s: %s", s->dir,
                         strerror(e));
            return -e;
        }
        q += w;
        n -= (size_t)w;
        s->wpos += (uint64_t)w;
    }
    uint64_t pending = s->wpos - s->rpos + (s->rlen - s->roff);
    if (pending > s->file_peak)
        s->file_peak = pending;
    return 0;
}

int spill_push(struct spill *s, const void *p, size_t n, struct rs_error *err)
{
    if (n == 0)
        return 0;
    if (file_in_use(s) || s->mem + n > s->max_memory)
        return to_file(s, p, n, err);
    const uint8_t *q = p;
    while (n > 0) {
        struct chunk *c = s->tail;
        if (c == NULL || c->len == SPILL_CHUNK) {
            c = malloc(sizeof(*c) + SPILL_CHUNK);
            if (c == NULL)
                return to_file(s, q, n, err);
            c->next = NULL;
            c->len = c->off = 0;
            if (s->tail)
                s->tail->next = c;
            else
                s->head = c;
            s->tail = c;
            s->mem += SPILL_CHUNK;
        }
        size_t k = SPILL_CHUNK - c->len < n ? SPILL_CHUNK - c->len : n;
        memcpy(c->data + c->len, q, k);
        c->len += k;
        s->mem_unread += k;
        q += k;
        n -= k;
    }
    return 0;
}

long spill_peek(struct spill *s, const uint8_t **p, struct rs_error *err)
{
    while (s->head && s->head->off == s->head->len) { /* spent chunks */
        struct chunk *c = s->head;
        s->head = c->next;
        if (s->head == NULL)
            s->tail = NULL;
        s->mem -= SPILL_CHUNK;
        free(c);
    }
    if (s->head) {
        *p = s->head->data + s->head->off;
        return (long)(s->head->len - s->head->off);
    }
    if (s->roff < s->rlen) {
        *p = s->rbuf + s->roff;
        return (long)(s->rlen - s->roff);
    }
    if (s->fd < 0 || s->rpos == s->wpos) {
        if (s->fd >= 0 && s->wpos > 0) { /* read to the end: start the file over */
            if (ftruncate(s->fd, 0) == 0)
                s->rpos = s->wpos = 0;
        }
        return 0;
    }
    if (s->rbuf == NULL && (s->rbuf = malloc(SPILL_CHUNK)) == NULL)
        return -ENOMEM;
    size_t want = s->wpos - s->rpos < SPILL_CHUNK ? (size_t)(s->wpos - s->rpos) : SPILL_CHUNK;
    ssize_t r;
    do
        r = pread(s->fd, s->rbuf, want, (off_t)s->rpos);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        int e = r < 0 ? errno : EIO;
        rs_error_set(err, RS_E_LIMIT, s->rpos, "cannot read the spill file back: %s", strerror(e));
        return -e;
    }
    s->rpos += (uint64_t)r;
    s->rlen = (size_t)r;
    s->roff = 0;
    *p = s->rbuf;
    return r;
}

void spill_consume(struct spill *s, size_t n)
{
    if (s->head) {
        s->head->off += n;
        s->mem_unread -= n;
        return;
    }
    s->roff += n;
}

uint64_t spill_pending(const struct spill *s)
{
    return s->mem_unread + spill_file_pending(s);
}

uint64_t spill_file_pending(const struct spill *s)
{
    return s->fd < 0 ? 0 : s->wpos - s->rpos + (s->rlen - s->roff);
}

uint64_t spill_file_peak(const struct spill *s)
{
    return s->file_peak;
}
