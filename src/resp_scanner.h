/* resp_scanner.h - slices the replication stream into commands.
 *
 * A resumable scanner of RESP multibulk commands ("*<n>\r\n" then n
 * "$<len>\r\n<bytes>\r\n"), the form a source writes its replication stream
 * in; also the inline form and the bare "\n" a source may send. It is fed
 * the stream in pieces of any size, keeps what it was given in its own buffer
 * (a command may straddle feeds), and hands out each complete command as its
 * exact bytes plus argument slices into them: nothing is re-encoded, so a
 * command can be forwarded as received.
 *
 * Offsets: every byte counts, as the source counts its replication offset;
 * each command carries the offset just past its last byte.
 */
#ifndef RS_RESP_SCANNER_H
#define RS_RESP_SCANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_error.h"
#include "slice.h"

#define RESP_SCANNER_MAX_BULK (512u * 1024 * 1024) /* Redis's proto-max-bulk-len */
#define RESP_SCANNER_MAX_ARGS (1024 * 1024)

struct resp_cmd {
    struct rs_slice raw; /* the command's bytes, exactly as received */
    int argc;
    const struct rs_slice *argv; /* argc arguments, slices of raw */
    uint64_t end_offset;         /* the stream offset just past the command */
};

struct resp_scanner;

/* A scanner whose first byte has stream offset start_offset. */
struct resp_scanner *resp_scanner_new(uint64_t start_offset);
void resp_scanner_free(struct resp_scanner *s);

/* Appends bytes. Returns 0, or -ENOMEM. */
int resp_scanner_feed(struct resp_scanner *s, const void *p, size_t n);

/* The next complete command: 1 and *cmd (valid until the next call to
 * resp_scanner_next or resp_scanner_feed), 0 when more bytes are needed, or
 * RS_ERR with err set (not RESP; the scanner stays in error). Bare newlines
 * are skipped (their bytes still count in offsets). */
int resp_scanner_next(struct resp_scanner *s, struct resp_cmd *cmd, struct rs_error *err);

/* Puts back the command last returned, so the next call returns it again. */
void resp_scanner_unread(struct resp_scanner *s);

/* The offset just past the last byte handed out (or skipped). */
uint64_t resp_scanner_offset(const struct resp_scanner *s);

/* Bytes fed but not yet handed out. */
size_t resp_scanner_pending(const struct resp_scanner *s);

#endif
