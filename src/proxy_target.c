/* proxy_target.c - a proxy destination's start: options, probes, report
 * (see proxy_target.h). */
#include "proxy_target.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control_link.h"
#include "job.h"
#include "log.h"

int proxy_target_settle(struct sync_opts *o, const char *name)
{
    if (o->checkpoint && o->checkpoint_given) {
        rs_log("--checkpoint target cannot be kept through the proxy %s: it runs no MULTI/EXEC "
               "to bind a record to the commands it covers (src/PROXY_DESTINATION.md §8); pass "
               "--checkpoint none",
               name);
        return 2;
    }
    if (o->expiry_margin_given && o->expiry_margin_ms > 0) {
        rs_log("--expiry-margin cannot be taken back through the proxy %s (it runs no SCAN and "
               "no PEXPIRETIME); pass --expiry-margin 0",
               name);
        return 2;
    }
    if (o->nonempty == NONEMPTY_REFUSE) {
        rs_log("destination %s is a proxy, which runs no DBSIZE, SCAN or INFO: ringsync cannot "
               "see whether its servers are empty; pass --target-nonempty keep (the source's "
               "keys overwrite theirs, other keys stay)",
               name);
        return 2;
    }
    if (o->nonempty == NONEMPTY_FLUSH) {
        rs_log("destination %s is a proxy, which runs no FLUSHALL: flush the servers behind it "
               "yourself, then pass --target-nonempty keep",
               name);
        return 2;
    }
    if (o->forward_publish) {
        rs_log("--forward-publish cannot go through the proxy %s: it closes the connection at "
               "PUBLISH",
               name);
        return 2;
    }
    if (o->checkpoint && !o->quiet)
        rs_log("destination %s is a proxy: the job keeps no checkpoints there (it runs no "
               "MULTI/EXEC), so a restart starts with a full sync again; --checkpoint "
               "file:PATH keeps them in a local file (at least once)",
               name);
    if (o->checkpoint_file != NULL && !o->quiet)
        rs_log("destination %s is a proxy: checkpoints in %s, at least once (a restart applies "
               "again what came after the last one)",
               name, o->checkpoint_file);
    o->checkpoint = false;
    o->expiry_margin_ms = 0;
    if (!o->quiet)
        rs_log("destination %s is a proxy: writing through %u connections per worker, without "
               "SELECT (databases as --db-map says), MULTI or keyless commands; its servers "
               "must keep keys where it puts them (auto_eject_hosts: false) and its order "
               "(server_connections: 1)",
               name, o->proxy_connections ? o->proxy_connections : 4);
    return 0;
}

/* 16 hex digits that differ wholly for near inputs: key names differing
 * only in their last characters tend to land on one server (fnv1a_64 +
 * ketama), so probes put this in front. */
static unsigned long long mix(unsigned long long x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* cmd on a new connection to ep: 0 with *rep, or -1 with err (a refusal
 * closes the connection: that is an error here too). */
static int one_command(const struct endpoint *ep, int timeout_ms, struct control_reply *rep,
                       struct rs_error *err, int argc, const char **argv, const size_t *lens)
{
    struct control_link cl = {0};
    if (control_link_open(&cl, ep, timeout_ms, err) < 0)
        return -1;
    int rc = control_link_command(&cl, rep, err, argc, argv, lens);
    control_link_close(&cl);
    return rc < 0 ? -1 : 0;
}

/* SET, GET and DEL of 32 probe keys through the proxy (hashed names, so that
 * they spread over its servers). 0, or 1 after saying what failed. */
static int probe_writes(const struct endpoint *ep, int timeout_ms)
{
    struct control_link cl = {0};
    struct rs_error err = {0};
    if (control_link_open(&cl, ep, timeout_ms, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    int status = 0;
    for (unsigned i = 0; i < 32 && status == 0; i++) {
        char key[80], val[24];
        snprintf(key, sizeof(key), "%016llx:ringsync:proxy-probe:%ld",
                 mix((unsigned long long)getpid() << 8 | i), (long)getpid());
        snprintf(val, sizeof(val), "%u", i);
        struct control_reply rep = {0};
        const char *what = "SET";
        bool ok = control_link_commandv(&cl, &rep, &err, "SET", key, val, NULL) == 0 &&
                  rep.r->type == REDIS_REPLY_STATUS;
        if (ok) {
            control_reply_free(&rep);
            what = "GET";
            ok = control_link_commandv(&cl, &rep, &err, "GET", key, NULL) == 0 &&
                 rep.r->type == REDIS_REPLY_STRING && strcmp(rep.r->str, val) == 0;
        }
        if (ok) {
            control_reply_free(&rep);
            what = "DEL";
            ok = control_link_commandv(&cl, &rep, &err, "DEL", key, NULL) == 0 &&
                 rep.r->type == REDIS_REPLY_INTEGER;
        }
        if (!ok) {
            rs_log("destination %s (a proxy) failed a test write (%s of %s): %s", ep->name, what,
                   key,
                   rep.r == NULL                      ? err.msg
                   : rep.r->type == REDIS_REPLY_ERROR ? rep.r->str
                                                      : "an unexpected reply");
            status = 1;
        }
        control_reply_free(&rep);
    }
    control_link_close(&cl);
    return status;
}

static const char exists_script[] = "return redis.call('EXISTS',ARGV[1])";

/* 16 tags: A{t} set through the proxy must be seen by a script routed by
 * B{t} (it runs on the server the proxy gives B{t}), A and B far apart. 0, or 1 after saying
 * the proxy does not hash tags as {}. */
static int probe_tags(const struct endpoint *ep, int timeout_ms)
{
    struct control_link cl = {0};
    struct rs_error err = {0};
    if (control_link_open(&cl, ep, timeout_ms, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    int apart = 0, status = 0;
    for (unsigned t = 0; t < 16 && status == 0; t++) {
        char a[80], b[80];
        unsigned long long x = (unsigned long long)getpid() << 8 | t;
        snprintf(a, sizeof(a), "%016llx{ringsync-tag-probe:%ld:%u}", mix(x), (long)getpid(), t);
        snprintf(b, sizeof(b), "%016llx{ringsync-tag-probe:%ld:%u}", mix(x ^ 0x80), (long)getpid(),
                 t);
        struct control_reply rep = {0};
        if (control_link_commandv(&cl, &rep, &err, "SET", a, "1", NULL) < 0)
            status = 1;
        control_reply_free(&rep);
        if (status == 0 &&
            control_link_commandv(&cl, &rep, &err, "EVAL", exists_script, "1", b, a, NULL) < 0)
            status = 1;
        if (status == 0 && !(rep.r->type == REDIS_REPLY_INTEGER && rep.r->integer == 1))
            apart++;
        control_reply_free(&rep);
        if (status == 0 && control_link_commandv(&cl, &rep, &err, "DEL", a, NULL) < 0)
            status = 1;
        control_reply_free(&rep);
    }
    control_link_close(&cl);
    if (status != 0) {
        rs_log("destination %s (a proxy): the hash tag probe failed: %s", ep->name, err.msg);
        return 1;
    }
    if (apart > 0) {
        rs_log("destination %s (a proxy) put keys of one {tag} on different servers (%d of 16 "
               "probes): its hash_tag is not \"{}\"; set hash_tag: \"{}\" in its pool, or drop "
               "--proxy-hash-tag",
               ep->name, apart);
        return 1;
    }
    return 0;
}

int proxy_target_probe(const struct endpoint *ep, int timeout_ms, bool tag, struct proxy_probe *out)
{
    out->eval = false;
    if (probe_writes(ep, timeout_ms) != 0)
        return 1;
    char key[64];
    snprintf(key, sizeof(key), "ringsync:proxy-probe:%ld", (long)getpid());
    const char *argv[] = {"EVAL", "return 1", "1", key};
    size_t lens[] = {4, 8, 1, strlen(key)};
    struct control_reply rep = {0};
    struct rs_error err = {0};
    int rc = one_command(ep, timeout_ms, &rep, &err, 4, argv, lens);
    out->eval = rc == 0 && rep.r->type == REDIS_REPLY_INTEGER && rep.r->integer == 1;
    if (!out->eval)
        rs_log("warning: destination %s (a proxy) refused EVAL (%s): the commands it refuses "
               "(XADD and the other stream commands, RENAME of keys of one tag, EXPIRE ... NX, "
               "BITOP ...) have no form through it and meet --cross-slot",
               ep->name,
               rc < 0                             ? err.msg
               : rep.r->type == REDIS_REPLY_ERROR ? rep.r->str
                                                  : "an unexpected reply");
    control_reply_free(&rep);
    if (tag && !out->eval) {
        rs_log("destination %s (a proxy): --proxy-hash-tag cannot be checked without EVAL; "
               "trusting that its hash_tag is \"{}\"",
               ep->name);
        return 0;
    }
    return tag ? probe_tags(ep, timeout_ms) : 0;
}

void proxy_target_report(const struct job *job, unsigned long long code_skipped)
{
    uint64_t wrapped = atomic_load(&job->proxy_wrapped);
    uint64_t unwrapped = atomic_load(&job->tx_unwrapped);
    uint64_t keyless = atomic_load(&job->keyless_skipped);
    if (wrapped > 0)
        rs_log("%" PRIu64 " commands the proxy refuses went wrapped in EVAL", wrapped);
    if (unwrapped > 0)
        rs_log("%" PRIu64 " transactions went through the proxy as their commands (not atomic "
               "as a whole)",
               unwrapped);
    if (keyless + code_skipped > 0)
        rs_log("%" PRIu64 " FUNCTION / SCRIPT commands of the stream and %llu functions or "
               "scripts of the snapshot could not pass the proxy: load them on its servers",
               keyless, code_skipped);
}
