/* dest_check.c - start-time checks of the destination's settings (the
 * contract and the list are in dest_check.h). */
#include "dest_check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "log.h"

#define DEST_CHECK_WHY_MAX 120 /* how much of a refusal a message quotes */

/* ------------------------------------------------------------ settings */

/* One server's settings as CONFIG GET gave them; has_* false when the
 * server has no such setting (or refused to say). */
struct settings {
    bool is_refused;                  /* CONFIG GET answered an error */
    char why[DEST_CHECK_WHY_MAX + 4]; /* that error, cut */
    uint64_t proto_max_bulk_len, query_buffer_limit, min_replicas, min_replicas_lag, timeout_s,
        databases;
    bool has_proto_max_bulk_len, has_query_buffer_limit, has_min_replicas, has_min_replicas_lag,
        has_timeout_s, has_databases;
};

/* CONFIG GET name (one name a call: Redis before 7.0 takes one pattern) into
 * *v. 0 read, 1 the server has no such setting, 2 refused (s->why says how),
 * or a negative errno when the link failed (err says). */
static int config_get_u64(struct control_link *cl, const char *name, uint64_t *v,
                          struct settings *s, struct rs_error *err)
{
    struct control_reply rep = {0};
    int rc = control_link_commandv(cl, &rep, err, "CONFIG", "GET", name, NULL);
    if (rc < 0)
        return rc;
    const redisReply *r = rep.r;
    int res = 1;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->why, sizeof(s->why), "%.*s%s", DEST_CHECK_WHY_MAX, r->str,
                 strlen(r->str) > DEST_CHECK_WHY_MAX ? "..." : "");
        res = 2;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(r->element[1]->str, &end, 10);
        if (errno == 0 && end != r->element[1]->str && *end == '\0') {
            *v = x;
            res = 0;
        }
    }
    control_reply_free(&rep);
    return res;
}

/* Reads the settings named by the want_* flags; stops at the first refusal
 * (the rest would be refused alike). 0, or a negative errno (err says). */
static int read_settings(struct control_link *cl, bool want_dest_only, struct settings *s,
                         struct rs_error *err)
{
    struct {
        const char *name;
        uint64_t *v;
        bool *has;
        bool dest_only;
    } want[] = {
        {"proto-max-bulk-len", &s->proto_max_bulk_len, &s->has_proto_max_bulk_len, false},
        {"databases", &s->databases, &s->has_databases, false},
        {"client-query-buffer-limit", &s->query_buffer_limit, &s->has_query_buffer_limit, true},
        {"min-replicas-to-write", &s->min_replicas, &s->has_min_replicas, true},
        {"min-replicas-max-lag", &s->min_replicas_lag, &s->has_min_replicas_lag, true},
        {"timeout", &s->timeout_s, &s->has_timeout_s, true},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (want[i].dest_only && !want_dest_only)
            continue;
        int rc = config_get_u64(cl, want[i].name, want[i].v, s, err);
        if (rc < 0)
            return rc;
        if (rc == 2) {
            s->is_refused = true;
            return 0;
        }
        *want[i].has = rc == 0;
    }
    return 0;
}

/* ------------------------------------------------------------ identity */

/* What a server is: its version and its modules. */
struct identity {
    char version[32];  /* INFO server redis_version ("" when unknown) */
    char modules[512]; /* MODULE LIST names, comma-separated */
    bool has_modules;  /* MODULE LIST answered */
};

int dest_check_version_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        char *ea, *eb;
        long x = strtol(a, &ea, 10), y = strtol(b, &eb, 10);
        if (x != y)
            return x < y ? -1 : 1;
        if (*ea != '.' || *eb != '.')
            return 0;
        a = ea + 1;
        b = eb + 1;
    }
    return 0;
}

/* True when name (n bytes) is one of the comma-separated names of list. */
static bool in_list(const char *list, const char *name, size_t n)
{
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && strncasecmp(p, name, n) == 0)
            return true;
        p += l;
        if (*p == ',')
            p++;
    }
    return false;
}

size_t dest_check_missing_names(const char *want, const char *have, char *out, size_t cap)
{
    size_t missing = 0, len = 0;
    if (cap > 0)
        out[0] = '\0';
    for (const char *p = want; *p;) {
        size_t l = strcspn(p, ",");
        if (l > 0 && !in_list(have, p, l)) {
            int w = snprintf(out + len, cap > len ? cap - len : 0, "%s%.*s", missing ? ", " : "",
                             (int)l, p);
            if (w > 0 && len + (size_t)w < cap)
                len += (size_t)w;
            missing++;
        }
        p += l;
        if (*p == ',')
            p++;
    }
    return missing;
}

/* INFO server's redis_version and MODULE LIST's names; what a server
 * refuses to say stays unknown. A negative errno when the link failed. */
static int read_identity(struct control_link *cl, struct identity *id, struct rs_error *err)
{
    memset(id, 0, sizeof(*id));
    int rc = control_link_info_field(cl, "server", "redis_version", id->version,
                                     sizeof(id->version), err);
    if (rc < 0 && rc != -ENOENT && rc != -EPERM)
        return rc;
    if (rc < 0)
        id->version[0] = '\0';
    struct control_reply rep = {0};
    rc = control_link_commandv(cl, &rep, err, "MODULE", "LIST", NULL);
    if (rc < 0)
        return rc;
    const redisReply *r = rep.r;
    if (r->type == REDIS_REPLY_ARRAY) {
        id->has_modules = true;
        size_t len = 0;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *m = r->element[i];
            for (size_t j = 0; m->type == REDIS_REPLY_ARRAY && j + 1 < m->elements; j += 2) {
                if (m->element[j]->type != REDIS_REPLY_STRING ||
                    strcmp(m->element[j]->str, "name") != 0 ||
                    m->element[j + 1]->type != REDIS_REPLY_STRING)
                    continue;
                int w = snprintf(id->modules + len, sizeof(id->modules) - len, "%s%s",
                                 len ? "," : "", m->element[j + 1]->str);
                if (w > 0 && len + (size_t)w < sizeof(id->modules))
                    len += (size_t)w;
            }
        }
    }
    control_reply_free(&rep);
    return 0;
}

/* Steps 7 and 8: an older destination, modules it lacks. 1 when an error
 * was logged. */
static int compare_identities(const struct endpoint *dest_ep, const struct identity *d,
                              const struct endpoint *src_ep, const struct identity *s)
{
    if (d->version[0] && s->version[0] && dest_check_version_cmp(d->version, s->version) < 0)
        rs_log("warning: destination %s runs Redis %s, older than the source %s's %s: commands "
               "in forms the source's version propagates and the destination's does not know "
               "(for example SET ... PXAT before 6.2, EXPIRE ... GT and XGROUP SETID ... "
               "ENTRIESREAD before 7.0, HPEXPIREAT before 7.4) would stop the job; a destination "
               "of the source's version or newer takes every one",
               dest_ep->name, d->version, src_ep->name, s->version);
    if (!s->has_modules || !d->has_modules || s->modules[0] == '\0')
        return 0;
    char missing[512];
    size_t n = dest_check_missing_names(s->modules, d->modules, missing, sizeof(missing));
    if (n == 0)
        return 0;
    rs_log("destination %s lacks module%s %s that the source %s has loaded: the source's keys of "
           "its types and its commands would be refused; load %s on the destination "
           "(loadmodule in its configuration file, or MODULE LOAD)",
           dest_ep->name, n > 1 ? "s" : "", missing, src_ep->name, n > 1 ? "them" : "it");
    return 1;
}

/* ------------------------------------------------------------ the checks */

/* Step 1: a replica destination. 0 fine, 1 an error (logged), -1 link failed. */
static int check_role(struct control_link *cl, const struct endpoint *ep)
{
    char role[32], host[280] = "?", port[16] = "?";
    struct rs_error err = {0};
    int rc = control_link_info_field(cl, "replication", "role", role, sizeof(role), &err);
    if (rc == -EPERM || rc == -ENOENT) {
        rs_log("warning: cannot tell whether destination %s is a replica (INFO replication: "
               "%s); not checked",
               ep->name, rc == -ENOENT ? "no role field" : err.msg);
        return 0;
    }
    if (rc < 0) {
        rs_log("%s", err.msg);
        return -1;
    }
    if (strcmp(role, "slave") != 0 && strcmp(role, "replica") != 0)
        return 0;
    control_link_info_field(cl, "replication", "master_host", host, sizeof(host), &err);
    control_link_info_field(cl, "replication", "master_port", port, sizeof(port), &err);
    rs_log("destination %s is a replica of %s:%s (INFO replication role:%s): it refuses "
           "ringsync's writes with READONLY, or its master overwrites them; point --target at "
           "its master, or run REPLICAOF NO ONE on it if it should stand alone",
           ep->name, host, port, role);
    return 1;
}

/* Step 4: min-replicas-to-write. 0 fine (maybe a warning), 1 an error, -1
 * link failed. */
static int check_min_replicas(struct control_link *cl, const struct endpoint *ep,
                              const struct settings *d)
{
    if (!d->has_min_replicas || !d->has_min_replicas_lag || d->min_replicas == 0 ||
        d->min_replicas_lag == 0)
        return 0; /* checkGoodReplicasStatus enforces it only with both set */
    char v[32];
    struct rs_error err = {0};
    uint64_t good = 0;
    int rc =
        control_link_info_field(cl, "replication", "min_slaves_good_slaves", v, sizeof(v), &err);
    if (rc < 0 && rc != -ENOENT && rc != -EPERM) {
        rs_log("%s", err.msg);
        return -1;
    }
    if (rc == 0)
        good = strtoull(v, NULL, 10);
    if (good < d->min_replicas) {
        rs_log("destination %s has min-replicas-to-write %" PRIu64 " (min-replicas-max-lag %" PRIu64
               " s) and %" PRIu64
               " good replicas now: it refuses every write with NOREPLICAS; attach the replicas "
               "it waits for, or run CONFIG SET min-replicas-to-write 0 on the destination",
               ep->name, d->min_replicas, d->min_replicas_lag, good);
        return 1;
    }
    rs_log("warning: destination %s has min-replicas-to-write %" PRIu64
           " (min-replicas-max-lag %" PRIu64 " s), %" PRIu64
           " good replicas now: whenever fewer of them are within %" PRIu64
           " s it refuses writes with NOREPLICAS and the job stops; CONFIG SET "
           "min-replicas-to-write 0 on the destination avoids that",
           ep->name, d->min_replicas, d->min_replicas_lag, good, d->min_replicas_lag);
    return 0;
}

/* Steps 2, 3 and 6: the destination against the source. 1 when an error
 * was logged. */
static int compare_with_source(const struct endpoint *dest_ep, const struct settings *d,
                               const struct endpoint *src_ep, const struct settings *s)
{
    int bad = 0;
    if (s->has_proto_max_bulk_len && d->has_proto_max_bulk_len &&
        d->proto_max_bulk_len < s->proto_max_bulk_len) {
        rs_log("destination %s has proto-max-bulk-len %" PRIu64
               ", smaller than the source %s's %" PRIu64
               ": a string or argument longer than %" PRIu64
               " bytes from the source would stop the job; run CONFIG SET proto-max-bulk-len "
               "%" PRIu64 " on the destination (and put it in its configuration file)",
               dest_ep->name, d->proto_max_bulk_len, src_ep->name, s->proto_max_bulk_len,
               d->proto_max_bulk_len, s->proto_max_bulk_len);
        bad = 1;
    }
    if (s->has_proto_max_bulk_len && d->has_query_buffer_limit &&
        d->query_buffer_limit < s->proto_max_bulk_len) {
        uint64_t want = s->proto_max_bulk_len + (1u << 20); /* room for the other arguments */
        rs_log("warning: destination %s has client-query-buffer-limit %" PRIu64
               ", smaller than the source %s's proto-max-bulk-len %" PRIu64
               ": a command that large would get ringsync's connection closed (a master's link "
               "is exempt, ringsync's is not); CONFIG SET client-query-buffer-limit %" PRIu64
               " on the destination",
               dest_ep->name, d->query_buffer_limit, src_ep->name, s->proto_max_bulk_len, want);
    }
    if (s->has_databases && d->has_databases && d->databases < s->databases)
        rs_log("warning: destination %s has databases %" PRIu64
               ", fewer than the source %s's %" PRIu64 ": a write to db %" PRIu64
               " or above would be refused; set databases %" PRIu64
               " in the destination's configuration file (it takes a restart)",
               dest_ep->name, d->databases, src_ep->name, s->databases, d->databases, s->databases);
    return bad;
}

int dest_check_run(struct control_link *dest, const struct endpoint *dest_ep,
                   const struct dest_check_opts *o)
{
    int bad = 0;
    int rc = check_role(dest, dest_ep);
    if (rc < 0)
        return 1;
    bad |= rc;

    struct settings d = {0};
    struct rs_error err = {0};
    if (read_settings(dest, true, &d, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    if (d.is_refused) {
        rs_log("warning: destination %s refused CONFIG GET (%s): its proto-max-bulk-len, "
               "client-query-buffer-limit, min-replicas-to-write, timeout and databases were not "
               "checked",
               dest_ep->name, d.why);
        return bad;
    }
    rc = check_min_replicas(dest, dest_ep, &d);
    if (rc < 0)
        return 1;
    bad |= rc;

    if (o->source == NULL)
        return bad;
    struct control_link scl = {0};
    if (control_link_open(&scl, o->source, o->timeout_ms, &err) < 0) {
        rs_log("warning: the destination's settings were not compared with the source's: %s",
               err.msg);
        return bad;
    }
    struct settings s = {0};
    struct identity sid, did;
    rc = read_settings(&scl, false, &s, &err);
    if (rc == 0)
        rc = read_identity(&scl, &sid, &err);
    control_link_close(&scl);
    if (rc == 0 && read_identity(dest, &did, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    if (rc == 0)
        bad |= compare_identities(dest_ep, &did, o->source, &sid);
    if (rc < 0) {
        rs_log("warning: the destination's settings were not compared with the source's: %s",
               err.msg);
        return bad;
    }
    if (s.is_refused) {
        rs_log("warning: source %s refused CONFIG GET (%s): the destination's proto-max-bulk-len, "
               "client-query-buffer-limit and databases were not compared with the source's",
               o->source->name, s.why);
        return bad;
    }
    if (o->cluster_node)
        d.has_databases = false; /* one db: the db map decides what goes there */
    bad |= compare_with_source(dest_ep, &d, o->source, &s);
    return bad;
}
