/* dest_reply.c - error replies of the destination: retry, stop with advice,
 * or the data's own (see dest_reply.h). The texts are Redis 7.0-7.4's
 * (server.c processCommand, networking.c processMultibulkBuffer, t_string.c
 * checkStringLength, acl.c) and Valkey's, which keep them. */
#include "dest_reply.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* line starts with the word w followed by a space or the end */
static bool starts_word(const char *line, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len >= n && memcmp(line, w, n) == 0 && (len == n || line[n] == ' ');
}

static bool contains(const char *line, size_t len, const char *s)
{
    return memmem(line, len, s, strlen(s)) != NULL;
}

static const char *const retry_codes[] = {"BUSY",       "LOADING",     "TRYAGAIN",
                                          "MASTERDOWN", "CLUSTERDOWN", NULL};

const char *dest_reply_code(const char *line, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    while (n < len && line[n] != ' ' && n + 1 < cap) {
        out[n] = line[n];
        n++;
    }
    out[n] = '\0';
    return out;
}

/* The command NOPERM names: "... to run the 'xadd' command" (7.x), or cmd. */
static void noperm_advice(const char *line, size_t len, const char *cmd,
                          struct dest_reply_advice *adv)
{
    if (contains(line, len, " key") || contains(line, len, "access a key")) {
        snprintf(adv->text, sizeof(adv->text),
                 "set the ACL rules of the destination user so it may write every key "
                 "(ACL SETUSER <user> ~* or allkeys) on the destination");
        return;
    }
    if (contains(line, len, "channel")) {
        snprintf(adv->text, sizeof(adv->text),
                 "set the ACL rules of the destination user so it may publish (ACL SETUSER "
                 "<user> &* or allchannels) on the destination");
        return;
    }
    char name[64] = "";
    const char *q = memchr(line, '\'', len);
    if (q != NULL) {
        const char *q2 = memchr(q + 1, '\'', len - (size_t)(q + 1 - line));
        if (q2 != NULL && (size_t)(q2 - q - 1) < sizeof(name)) {
            memcpy(name, q + 1, (size_t)(q2 - q - 1));
            name[q2 - q - 1] = '\0';
        }
    }
    if (name[0] == '\0' && cmd != NULL)
        snprintf(name, sizeof(name), "%s", cmd);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    snprintf(adv->text, sizeof(adv->text),
             "set the ACL rules of the destination user to allow the '%s' command (ACL SETUSER "
             "<user> +%s, or +@all) on the destination",
             name[0] ? name : "?", name[0] ? name : "<command>");
}

enum dest_reply_kind dest_reply_classify(const char *line, size_t len, const char *cmd,
                                         struct dest_reply_advice *adv)
{
    struct dest_reply_advice none;
    if (adv == NULL)
        adv = &none;
    adv->setting = NULL;
    adv->text[0] = '\0';
    for (int i = 0; retry_codes[i]; i++)
        if (starts_word(line, len, retry_codes[i]))
            return DEST_REPLY_RETRY;
    if (starts_word(line, len, "MOVED") || starts_word(line, len, "ASK"))
        return DEST_REPLY_REDIRECT;
    if (starts_word(line, len, "OOM")) {
        adv->setting = "maxmemory";
        snprintf(adv->text, sizeof(adv->text),
                 "set maxmemory higher on the destination (CONFIG SET maxmemory), with "
                 "maxmemory-policy noeviction: ringsync must not lose writes, and an evicting "
                 "policy would drop keys silently");
        return DEST_REPLY_ADVICE;
    }
    if (starts_word(line, len, "MISCONF")) {
        adv->setting = "stop-writes-on-bgsave-error";
        snprintf(adv->text, sizeof(adv->text),
                 "the destination cannot persist to disk: fix its dir / disk (see its log), or "
                 "set stop-writes-on-bgsave-error no on the destination");
        return DEST_REPLY_ADVICE;
    }
    if (starts_word(line, len, "READONLY")) {
        adv->setting = "replica-read-only";
        snprintf(adv->text, sizeof(adv->text),
                 "the destination is a replica: set REPLICAOF NO ONE on the destination (or "
                 "point ringsync at its master); replica-read-only no would let writes be lost "
                 "at its next sync");
        return DEST_REPLY_ADVICE;
    }
    if (starts_word(line, len, "NOREPLICAS")) {
        adv->setting = "min-replicas-to-write";
        snprintf(adv->text, sizeof(adv->text),
                 "set min-replicas-to-write 0 on the destination, or give it the replicas "
                 "(min-replicas-max-lag) it waits for");
        return DEST_REPLY_ADVICE;
    }
    if (starts_word(line, len, "NOPERM")) {
        adv->setting = "ACL";
        noperm_advice(line, len, cmd, adv);
        return DEST_REPLY_ADVICE;
    }
    if (contains(line, len, "proto-max-bulk-len") ||
        contains(line, len, "Protocol error: invalid bulk length")) {
        adv->setting = "proto-max-bulk-len";
        snprintf(adv->text, sizeof(adv->text),
                 "set proto-max-bulk-len on the destination at least as high as on the source "
                 "(CONFIG SET proto-max-bulk-len 512mb): the source holds a longer string");
        return DEST_REPLY_ADVICE;
    }
    /* SETBIT / BITFIELD past 8 * proto-max-bulk-len bits (bitops.c
     * getBitOffsetFromArgument, waived for a master): the source took it,
     * so the destination's limit is the lower one */
    if (contains(line, len, "bit offset is not an integer or out of range")) {
        adv->setting = "proto-max-bulk-len";
        snprintf(adv->text, sizeof(adv->text),
                 "set proto-max-bulk-len on the destination at least as high as on the source "
                 "(CONFIG SET proto-max-bulk-len 512mb): the source took a bit offset past the "
                 "destination's limit");
        return DEST_REPLY_ADVICE;
    }
    return DEST_REPLY_OTHER;
}
