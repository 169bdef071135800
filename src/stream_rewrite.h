/* stream_rewrite.h - the few stream commands ringsync cannot send as they
 * came, and the form it sends instead (src/STREAM_FIDELITY.md has the audit).
 *
 * A replica applies what its master sends with checks relaxed for that link
 * (mustObeyClient in Redis); ringsync writes to its destination as an
 * ordinary client, and its destination is a master that expires keys by
 * itself. Two kinds of commands therefore change form, every other command
 * goes out byte for byte:
 *
 *  1. XADD / XTRIM with an exact trim and a LIMIT clause. A source that
 *     trims approximately (`MAXLEN ~ 1000 LIMIT 100`) propagates the
 *     threshold it reached with `=` and keeps LIMIT; a master refuses LIMIT
 *     without `~` from a client, and a replica ignores LIMIT from its master
 *     (it trims exactly). Sent without the `LIMIT n` pair: an exact trim to
 *     the same threshold, the same effect.
 *
 *  2. Expiries, when the job has an expiry margin M > 0 (`--expiry-margin`):
 *     PEXPIREAT, EXPIREAT, PEXPIRE, EXPIRE, SETEX, PSETEX, SET ... EX/PX/EXAT/
 *     PXAT, GETEX ... EX/PX/EXAT/PXAT and RESTORE's ttl are written M later
 *     than the source's. Invariant: while ringsync is less than M behind the
 *     source, the destination never expires a key before the source's DEL of
 *     it (the source propagates a DEL when a key expires there) has been
 *     applied, so every command finds the key as the source did, as on a
 *     native replica. expiry_margin.h takes M back off every expiry when the
 *     job stops. Comparisons (GT/LT/NX/XX) stay right: every expiry of the
 *     destination is shifted alike.
 *
 * Cost: a command of the kinds above is looked at (its options scanned); it
 * is re-encoded only when it changes. Plain SETs never come here.
 */
#ifndef RS_STREAM_REWRITE_H
#define RS_STREAM_REWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "command_table.h"
#include "resp_scanner.h"

#define STREAM_REWRITE_MAX_ARGS 64 /* longer commands are left as they are */

struct stream_rewrite {
    int64_t margin_ms; /* the expiry margin M; 0: expiries as the source's */
    uint64_t trims_rewritten, expiries_shifted;
    /* the rewritten command: its bytes and arguments, valid until the next call */
    char *buf;
    size_t cap;
    struct rs_slice argv[STREAM_REWRITE_MAX_ARGS];
    char nums[2][24];
};

void stream_rewrite_init(struct stream_rewrite *rw, int64_t margin_ms);
void stream_rewrite_deinit(struct stream_rewrite *rw);

/* If c (whose spec is spec) must go out in another form, writes that form
 * into rw and sets *out to it (raw bytes and argv; end_offset kept) and
 * returns 1; returns 0 when c goes as received, -1 when out of memory. Keys
 * keep their positions. */
int stream_rewrite_cmd(struct stream_rewrite *rw, const struct command_spec *spec,
                       const struct resp_cmd *c, struct resp_cmd *out);

/* ms + margin, or ms when that would overflow (for the snapshot writer). */
int64_t stream_rewrite_shift_ms(int64_t ms, int64_t margin_ms);

#endif
