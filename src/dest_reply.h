/* dest_reply.h - what an error reply from the destination means for the job.
 *
 * A replica applies what its master sends and never refuses it; ringsync
 * writes as a client, so a destination may answer a write with an error that
 * is about the destination, not about the data. Three kinds:
 *
 *   DEST_REPLY_RETRY   the destination is busy for a while (BUSY: a script
 *                      runs; LOADING: it loads its data set; TRYAGAIN,
 *                      MASTERDOWN, CLUSTERDOWN): the same command, in order,
 *                      will be taken later. Never skipped.
 *   DEST_REPLY_ADVICE  the destination's configuration refuses it (OOM,
 *                      MISCONF, READONLY, NOREPLICAS, NOPERM, a string past
 *                      proto-max-bulk-len): every later write would be
 *                      refused the same way, so the job stops, naming the
 *                      setting to change. Never skipped either (--on-error
 *                      skip is for data the destination cannot take).
 *   DEST_REPLY_REDIRECT  MOVED / ASK <slot> <host:port>: another node of a
 *                      cluster has the slot (or the key); sent there.
 *   DEST_REPLY_OTHER   anything else: about this command's data (WRONGTYPE,
 *                      syntax): --on-error decides.
 *
 * Pure functions of the reply's text: any thread, no allocation.
 */
#ifndef RS_DEST_REPLY_H
#define RS_DEST_REPLY_H

#include <stddef.h>

enum dest_reply_kind {
    DEST_REPLY_OTHER = 0,
    DEST_REPLY_RETRY,
    DEST_REPLY_ADVICE,
    DEST_REPLY_REDIRECT, /* MOVED, ASK: a cluster node sends it elsewhere (cluster_redirect.h) */
};

struct dest_reply_advice {
    const char *setting; /* the destination's setting to change ("maxmemory"), or NULL */
    char text[256];      /* "set ... on the destination": what to do, one sentence */
};

/* Classifies an error reply: line[0..len) is its text after '-' ("BUSY Redis
 * is busy ..."). cmd names the refused command (for NOPERM's advice when the
 * reply does not; may be NULL). For DEST_REPLY_ADVICE fills adv (when not
 * NULL); for the others leaves adv->setting NULL and adv->text empty. */
enum dest_reply_kind dest_reply_classify(const char *line, size_t len, const char *cmd,
                                         struct dest_reply_advice *adv);

/* "BUSY", "LOADING" ...: the reply's first word, at most cap-1 bytes, for
 * log lines. Returns out. */
const char *dest_reply_code(const char *line, size_t len, char *out, size_t cap);

#endif
