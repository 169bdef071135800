/* source_link.c - ringsync as a replica of the source node: the handshake.
 *
 *   REPLCONF ... (errors ignored, except those that mean "not allowed")
 *        |
 *        v
 *   PSYNC -- read_line, skipping "\n" --> +FULLRESYNC --> read_line: "$<len>" or "$EOF:<mark>"
 *                                     --> +CONTINUE   --> done (the stream follows)
 *                                     --> -ERR ...    --> fail (retryable or not)
 *
 * PSYNC's answer is read as a line, not with hiredis, because keepalives may
 * precede it and RDB bytes follow the framing line in the same buffer.
 */
#include "source_link.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "decimal.h"

#define SOURCE_QUOTE_BYTES 120 /* of a source's answer in a message */

static bool source_link_starts(struct rs_slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

static bool source_link_is_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Parses s as a decimal integer (optionally negative when allow_neg). */
static bool source_link_number(const char *p, size_t n, bool allow_neg, int64_t *v)
{
    bool neg = false;
    if (allow_neg && n > 0 && p[0] == '-') {
        neg = true;
        p++;
        n--;
    }
    if (n == 0 || n > 19)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    if (x > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

/* Sends a REPLCONF. An error answer is ignored (old servers do not know
 * every option) unless it says we are not allowed: -NOAUTH, -NOPERM. */
static int source_link_replconf(struct control_link *cl, int argc, const char **argv,
                                struct rs_error *err)
{
    struct control_reply rep;
    int rc = control_link_command(cl, &rep, err, argc, argv, NULL);
    if (rc < 0)
        return rc;
    redisReply *x = rep.r;
    if (x->type == REDIS_REPLY_ERROR &&
        (strncmp(x->str, "NOAUTH", 6) == 0 || strncmp(x->str, "NOPERM", 6) == 0)) {
        char quoted[SOURCE_QUOTE_BYTES * 4 + 4];
        rs_escape_bytes(quoted, sizeof(quoted), x->str, x->len, SOURCE_QUOTE_BYTES);
        bool noauth = strncmp(x->str, "NOAUTH", 6) == 0;
        rs_error_set(err, RS_E_FORMAT, 0, "source %s refused REPLCONF: %s%s", cl->name, quoted,
                     noauth ? " (it needs a password: give one in the URI or the environment)"
                            : " (the user needs +@all or +replconf +psync)");
        rc = -EACCES;
    }
    control_reply_free(&rep);
    return rc;
}

/* The line after +FULLRESYNC: "$<len>" or "$EOF:<40-byte mark>". */
static int source_link_read_framing(struct control_link *cl, int timeout_ms,
                                    struct source_handshake_result *r, struct rs_error *err)
{
    struct rs_slice line;
    int rc = control_link_read_line(cl, timeout_ms, "the snapshot to start", &line, err);
    if (rc < 0)
        return rc;
    if (source_link_starts(line, "$EOF:")) {
        if (line.len != 5 + SOURCE_EOF_MARK_LEN)
            goto bad;
        memcpy(r->eof_mark, line.p + 5, SOURCE_EOF_MARK_LEN);
        r->eof_mark_len = SOURCE_EOF_MARK_LEN;
        r->rdb_len = SOURCE_RDB_LEN_UNKNOWN;
        return 0;
    }
    int64_t len;
    if (line.len >= 2 && line.p[0] == '$' &&
        source_link_number(line.p + 1, line.len - 1, false, &len)) {
        r->rdb_len = (uint64_t)len;
        r->eof_mark_len = 0;
        return 0;
    }

bad:;
    char quoted[SOURCE_QUOTE_BYTES * 4 + 4];
    rs_escape_bytes(quoted, sizeof(quoted), line.p, line.len, 60);
    rs_error_set(err, RS_E_FORMAT, 0,
                 "source %s started the snapshot with \"%s\", not $<length> or $EOF:<40-byte mark>",
                 cl->name, quoted);
    return -EPROTO;
}

/* "+FULLRESYNC <replid> <offset>" */
static int source_link_parse_fullresync(struct rs_slice line, struct source_handshake_result *r)
{
    static const char prefix[] = "+FULLRESYNC ";
    size_t plen = sizeof(prefix) - 1;
    if (line.len < plen + SOURCE_REPLID_LEN + 2)
        return -EPROTO;
    const char *id = line.p + plen;
    if (!source_link_is_hex(id, SOURCE_REPLID_LEN) || id[SOURCE_REPLID_LEN] != ' ')
        return -EPROTO;
    const char *off = id + SOURCE_REPLID_LEN + 1;
    int64_t v;
    if (!source_link_number(off, (size_t)(line.p + line.len - off), true, &v))
        return -EPROTO;
    memcpy(r->replid, id, SOURCE_REPLID_LEN);
    r->replid[SOURCE_REPLID_LEN] = '\0';
    r->offset = v;
    r->full = true;
    return 0;
}

/* "+CONTINUE" or "+CONTINUE <new replid>" */
static int source_link_parse_continue(struct rs_slice line, const struct source_handshake_opts *o,
                                      struct source_handshake_result *r)
{
    static const char prefix[] = "+CONTINUE";
    size_t plen = sizeof(prefix) - 1;
    const char *id = line.p + plen;
    size_t rest = line.len - plen;
    while (rest > 0 && *id == ' ') {
        id++;
        rest--;
    }
    if (rest == 0) {
        snprintf(r->replid, sizeof(r->replid), "%s", o->replid != NULL ? o->replid : "");
    } else if (rest == SOURCE_REPLID_LEN && source_link_is_hex(id, rest)) {
        memcpy(r->replid, id, SOURCE_REPLID_LEN);
        r->replid[SOURCE_REPLID_LEN] = '\0';
    } else {
        return -EPROTO;
    }
    r->offset = o->offset - 1;
    r->full = false;
    return 0;
}

int source_link_handshake(struct control_link *cl, const struct source_handshake_opts *o,
                          struct source_handshake_result *r, struct rs_error *err)
{
    memset(r, 0, sizeof(*r));
    int rc;
    if (o->listening_port > 0) {
        char port[16];
        snprintf(port, sizeof(port), "%d", o->listening_port);
        const char *argv[] = {"REPLCONF", "listening-port", port};
        rc = source_link_replconf(cl, 3, argv, err);
        if (rc < 0)
            return rc;
    }
    const char *capa[] = {"REPLCONF", "capa", "eof", "capa", "psync2"};
    rc = source_link_replconf(cl, 5, capa, err);
    if (rc < 0)
        return rc;

    bool first = o->replid == NULL || strcmp(o->replid, "?") == 0;
    char offset[24];
    snprintf(offset, sizeof(offset), "%lld", first ? -1LL : (long long)o->offset);
    const char *psync[] = {"PSYNC", first ? "?" : o->replid, offset};
    /* PSYNC's answer is read as a line (see the top): send only. */
    rc = control_link_send(cl, 3, psync, NULL, err);
    if (rc < 0)
        return rc;

    struct rs_slice line;
    rc = control_link_read_line(cl, cl->timeout_ms, "the answer to PSYNC", &line, err);
    if (rc < 0)
        return rc;
    char quoted[SOURCE_QUOTE_BYTES * 4 + 4];
    rs_escape_bytes(quoted, sizeof(quoted), line.p, line.len, SOURCE_QUOTE_BYTES);
    if (source_link_starts(line, "+FULLRESYNC")) {
        if (source_link_parse_fullresync(line, r) < 0)
            goto bad;
        int wait_ms =
            o->snapshot_wait_timeout_ms > 0 ? o->snapshot_wait_timeout_ms : SOURCE_SNAPSHOT_WAIT_MS;
        return source_link_read_framing(cl, wait_ms, r, err);
    }
    if (source_link_starts(line, "+CONTINUE")) {
        if (first || source_link_parse_continue(line, o, r) < 0)
            goto bad;
        return 0;
    }
    if (line.p[0] == '-') {
        /* a replica whose own master link is down (MASTERDOWN: with
         * replica-serve-stale-data no), a source loading its data: what a
         * native replica waits out */
        if (source_link_starts(line, "-NOMASTERLINK") || source_link_starts(line, "-LOADING") ||
            source_link_starts(line, "-MASTERDOWN")) {
            r->retryable = true;
            rs_error_set(err, RS_E_FORMAT, 0, "source %s cannot serve PSYNC now (retry later): %s",
                         cl->name, quoted + 1);
            return -EAGAIN;
        }
        bool noauth = source_link_starts(line, "-NOAUTH") || source_link_starts(line, "-NOPERM");
        rs_error_set(err, RS_E_FORMAT, 0, "source %s refused PSYNC: %s", cl->name, quoted + 1);
        return noauth ? -EACCES : -EPERM;
    }
    if (line.p[0] != '+') {
        rs_error_set(err, RS_E_FORMAT, 0,
                     "source %s answered something that is not Redis (\"%s\") to PSYNC", cl->name,
                     quoted);
        return -EPROTO;
    }

bad:
    rs_error_set(err, RS_E_FORMAT, 0,
                 "source %s answered PSYNC with \"%s\", not +FULLRESYNC <40 hex> <offset> or "
                 "+CONTINUE [<40 hex>]",
                 cl->name, quoted);
    return -EPROTO;
}

void source_link_send_ack(int fd, uint64_t offset)
{
    static const char head[] = "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$";
    char num[DECIMAL_MAX], buf[sizeof(head) + 2 * DECIMAL_MAX + 4];
    size_t n = decimal_u64(num, offset);
    size_t len = sizeof(head) - 1;
    memcpy(buf, head, len);
    len += decimal_u64(buf + len, n);
    buf[len++] = '\r';
    buf[len++] = '\n';
    memcpy(buf + len, num, n);
    len += n;
    buf[len++] = '\r';
    buf[len++] = '\n';
    (void)!send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}
