/* job_file.c - a YAML job file read as the long options it stands for, and
 * `ringsync config check` (see job_file.h).
 *
 * The file is loaded whole by libyaml's document API (its nodes carry their
 * marks), then walked once against job_keys: each key's node gives one
 * option ("--name=value"), several (a list, a filters mapping) or, for an
 * endpoint, a URI and maybe a password kept apart. Nothing here judges a
 * value an option's parser judges: the parser sees the value with its place
 * (job_file_at), so a value is refused by the same words on the command line
 * and in a file. What only the file has is checked here: the YAML, unknown
 * keys, the kinds of node, endpoints and their secrets.
 */
#include "job_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "capture.h"
#include "endpoint.h"
#include "log.h"
#include "sync_opts.h"
#include "verify.h"

#define JOB_ALL          (JOB_SYNC | JOB_RESTORE | JOB_REPLAY | JOB_VERIFY | JOB_CAPTURE)
#define JOB_SRR          (JOB_SYNC | JOB_RESTORE | JOB_REPLAY) /* sync_opts' commands */
#define JOB_PASSWORD_MAX 511 /* struct endpoint's password, less its NUL */

/* What a key's node may be and what it becomes. */
enum job_kind {
    KIND_VALUE,    /* a scalar: --name=value */
    KIND_FLAG,     /* true or false: --name, or nothing */
    KIND_OPTIONAL, /* true (--name), false (nothing) or a scalar (--name=value) */
    KIND_LIST,     /* a scalar or a list of scalars: --name=value each (repeatable) */
    KIND_ENDPOINT, /* a URI, or a mapping {uri | host, port, db, user, password_file|_env} */
    KIND_DB_MAP,   /* "0:1,2:3" or a mapping {0: 1, 2: 3} */
    KIND_FILTERS,  /* a mapping of the keys of filter_keys */
    KIND_COMMAND,  /* which command the file is for */
    KIND_INPUT,    /* the command's positional argument */
};

struct job_key {
    const char *key;    /* in the file */
    const char *option; /* the long option without "--"; NULL: none */
    unsigned commands;  /* the JOB_* that take it */
    enum job_kind kind;
};

/* Every key of a job file, one line each; a key may come twice with other
 * commands (verify's json is a flag, replay's a path). The order is
 * config check's. */
static const struct job_key job_keys[] = {
    {"command", NULL, JOB_ALL, KIND_COMMAND},
    {"topology", "topology", JOB_SYNC, KIND_VALUE},
    {"direction", "direction", JOB_SYNC, KIND_VALUE},
    {"conflict_window_ms", "conflict-window-ms", JOB_SYNC, KIND_VALUE},
    {"conflict", "conflict", JOB_SYNC, KIND_VALUE},
    {"source", "source", JOB_SYNC | JOB_VERIFY | JOB_CAPTURE, KIND_ENDPOINT},
    {"destination", "target", JOB_SRR | JOB_VERIFY, KIND_ENDPOINT},
    {"rdb_file", NULL, JOB_RESTORE, KIND_INPUT},
    {"capture_dir", NULL, JOB_REPLAY, KIND_INPUT},
    {"out", "out", JOB_CAPTURE, KIND_VALUE},
    {"workers", "workers", JOB_SRR, KIND_VALUE},
    {"target_mode", "target-mode", JOB_SRR, KIND_VALUE},
    {"relay_listen", "relay-listen", JOB_SYNC, KIND_VALUE},
    {"rate_limit", "rate-limit", JOB_SRR, KIND_VALUE},
    {"heartbeat_key", "heartbeat-key", JOB_SYNC, KIND_VALUE},
    {"snapshot_rate_limit", "snapshot-rate-limit", JOB_SRR, KIND_VALUE},
    {"stream_rate_limit", "stream-rate-limit", JOB_SRR, KIND_VALUE},
    {"target_nonempty", "target-nonempty", JOB_SRR, KIND_VALUE},
    {"db_map", "db-map", JOB_SRR | JOB_VERIFY, KIND_DB_MAP},
    {"db_prefix", "db-prefix", JOB_SRR | JOB_VERIFY, KIND_OPTIONAL},
    {"db_unmapped", "db-unmapped", JOB_SRR, KIND_VALUE},
    {"filters", NULL, JOB_SRR, KIND_FILTERS},
    {"cross_slot", "cross-slot", JOB_SRR, KIND_VALUE},
    {"checkpoint", "checkpoint", JOB_SYNC, KIND_VALUE},
    {"job_id", "job-id", JOB_SYNC, KIND_VALUE},
    {"resync_on_lost_backlog", "resync-on-lost-backlog", JOB_SYNC, KIND_FLAG},
    {"status", "status-addr", JOB_SRR, KIND_VALUE},
    {"cutover_lag_ms", "cutover-lag-ms", JOB_SRR, KIND_VALUE},
    {"restore", "restore", JOB_SRR, KIND_VALUE},
    {"on_error", "on-error", JOB_SRR, KIND_VALUE},
    {"target_retry_timeout", "target-retry-timeout", JOB_SRR, KIND_VALUE},
    {"source_timeout", "source-timeout", JOB_SYNC, KIND_VALUE},
    {"source_retry_timeout", "source-retry-timeout", JOB_SYNC, KIND_VALUE},
    {"timeout_ms", "timeout-ms", JOB_ALL, KIND_VALUE},
    {"listening_port", "listening-port", JOB_SYNC | JOB_CAPTURE, KIND_VALUE},
    {"snapshot_only", "snapshot-only", JOB_SYNC, KIND_FLAG},
    {"forward_publish", "forward-publish", JOB_SYNC, KIND_FLAG},
    {"expiry_margin", "expiry-margin", JOB_SYNC | JOB_REPLAY | JOB_VERIFY, KIND_VALUE},
    {"max_memory", "max-memory", JOB_SRR, KIND_VALUE},
    {"spill_dir", "spill-dir", JOB_SYNC, KIND_VALUE},
    {"proxy_connections", "proxy-connections", JOB_SRR, KIND_VALUE},
    {"proxy_hash_tag", "proxy-hash-tag", JOB_SRR, KIND_VALUE},
    {"speed", "speed", JOB_REPLAY, KIND_VALUE},
    {"json", "json", JOB_REPLAY, KIND_VALUE},
    {"json", "json", JOB_VERIFY, KIND_FLAG},
    {"mode", "mode", JOB_VERIFY, KIND_VALUE},
    {"ttl_tolerance", "ttl-tolerance", JOB_VERIFY, KIND_VALUE},
    {"passes", "passes", JOB_VERIFY, KIND_VALUE},
    {"pass_delay_ms", "pass-delay-ms", JOB_VERIFY, KIND_VALUE},
    {"examples", "examples", JOB_VERIFY, KIND_VALUE},
    {"max_diffs", "max-diffs", JOB_VERIFY, KIND_VALUE},
    {"scan_count", "scan-count", JOB_VERIFY, KIND_VALUE},
    {"debug_digest", "debug-digest", JOB_VERIFY, KIND_VALUE},
    {"duration", "duration", JOB_CAPTURE, KIND_VALUE},
    {"quiet", "quiet", JOB_SRR | JOB_CAPTURE, KIND_FLAG},
    {"log_format", "log-format", JOB_SRR, KIND_VALUE},
};

/* The keys under `filters:`, each the twin of a repeatable filter option. */
static const struct job_key filter_keys[] = {
    {"key_prefix", "filter-key-prefix", JOB_SRR, KIND_LIST},
    {"block_key_prefix", "block-key-prefix", JOB_SRR, KIND_LIST},
    {"db", "filter-db", JOB_SRR, KIND_LIST},
    {"block_command", "block-command", JOB_SRR, KIND_LIST},
};

#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

static const char *const endpoint_keys[] = {
    "uri", "host", "port", "db", "user", "password_file", "password_env", NULL,
};

/* The environment variable each endpoint's password goes through (endpoint.h). */
static const char *const secret_env[2] = {"RINGSYNC_SOURCE_PASSWORD", "RINGSYNC_TARGET_PASSWORD"};

/* The job file merged last (job_file_merge), for job_file_at. */
static const struct job_file *job_file_current;

static const char *const command_names[] = {"sync", "restore", "replay", "verify", "capture"};

const char *job_command_name(unsigned command)
{
    for (unsigned i = 0; i < 5; i++)
        if (command == 1u << i)
            return command_names[i];
    return NULL;
}

unsigned job_command_of(const char *name)
{
    for (unsigned i = 0; i < 5; i++)
        if (strcmp(name, command_names[i]) == 0)
            return 1u << i;
    return 0;
}

/* The entry of table (n of them) for key and command: exact, or else one
 * for another command (*other set), or NULL. */
static const struct job_key *key_find(const struct job_key *table, size_t n, const char *key,
                                      unsigned command, const struct job_key **other)
{
    *other = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(table[i].key, key) != 0)
            continue;
        if (table[i].commands & command)
            return &table[i];
        *other = &table[i];
    }
    return NULL;
}

/* ================================================================ translating */

struct translation {
    const char *path;
    yaml_document_t *doc;
    struct job_file *jf;
    struct rs_error *err;
    int cap; /* of jf->opts and jf->places */
};

/* Sets the error "path:line:column: <fmt>" at n's start; returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail_at(struct translation *t,
                                                         const yaml_node_t *n, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    for (char *c = what; *c; c++) /* the file's own bytes are quoted: keep the line printable */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    rs_error_set(t->err, RS_E_FORMAT, n->start_mark.index, "%s:%zu:%zu: %s", t->path,
                 n->start_mark.line + 1, n->start_mark.column + 1, what);
    return -EINVAL;
}

static struct job_file_place place_of(const yaml_node_t *n, const char *key)
{
    return (struct job_file_place){.line = (unsigned)n->start_mark.line + 1,
                                   .column = (unsigned)n->start_mark.column + 1,
                                   .key = key};
}

static const char *scalar_of(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain scalar YAML reads as null: nothing given. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = scalar_of(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *kind_name(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return "a scalar";
}

/* n as one string: a scalar, not null, without NUL bytes; else the error. */
static int want_scalar(struct translation *t, const yaml_node_t *n, const char *key,
                       const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail_at(t, n, "%s takes one value, not %s", key, kind_name(n));
    if (is_null(n))
        return fail_at(t, n, "%s has no value", key);
    if (strlen(scalar_of(n)) != n->data.scalar.length)
        return fail_at(t, n, "%s holds a NUL byte", key);
    *out = scalar_of(n);
    return 0;
}

/* n as a boolean (true/false, yes/no, on/off, as YAML 1.1 spells them). */
static int want_bool(struct translation *t, const yaml_node_t *n, const char *key, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off", NULL};
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (int i = 0; yes[i]; i++)
            if (strcmp(scalar_of(n), yes[i]) == 0)
                return *out = true, 0;
        for (int i = 0; no[i]; i++)
            if (strcmp(scalar_of(n), no[i]) == 0)
                return *out = false, 0;
    }
    if (n->type != YAML_SCALAR_NODE)
        return fail_at(t, n, "%s takes true or false, not %s", key, kind_name(n));
    return fail_at(t, n, "%s takes true or false", key);
}

/* Appends the option "--name[=value]" with n's place. */
static int add_opt(struct translation *t, const yaml_node_t *n, const char *key, const char *name,
                   const char *value)
{
    struct job_file *jf = t->jf;
    if (jf->nopts == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **opts = realloc(jf->opts, (size_t)cap * sizeof(*opts));
        if (opts == NULL)
            return fail_at(t, n, "out of memory");
        jf->opts = opts;
        struct job_file_place *places = realloc(jf->places, (size_t)cap * sizeof(*places));
        if (places == NULL)
            return fail_at(t, n, "out of memory");
        jf->places = places;
        t->cap = cap;
    }
    size_t len = strlen(name) + (value ? strlen(value) + 1 : 0) + 3;
    char *s = malloc(len);
    if (s == NULL)
        return fail_at(t, n, "out of memory");
    snprintf(s, len, value ? "--%s=%s" : "--%s", name, value ? value : "");
    jf->opts[jf->nopts] = s;
    jf->places[jf->nopts] = place_of(n, key);
    jf->nopts++;
    return 0;
}

/* The value nodes of mapping n, each with its key, in order; checks keys
 * are distinct scalars. Calls visit for each pair. */
typedef int (*pair_fn)(struct translation *t, const yaml_node_t *k, const yaml_node_t *v,
                       void *arg);

static int each_pair(struct translation *t, const yaml_node_t *n, pair_fn visit, void *arg)
{
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(t->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(t->doc, p->value);
        if (k == NULL || v == NULL)
            return fail_at(t, n, "a key without a value");
        if (k->type != YAML_SCALAR_NODE || strlen(scalar_of(k)) != k->data.scalar.length)
            return fail_at(t, k, "a key must be a name, not %s", kind_name(k));
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *k0 = yaml_document_get_node(t->doc, q->key);
            if (k0->type == YAML_SCALAR_NODE && strcmp(scalar_of(k0), scalar_of(k)) == 0)
                return fail_at(t, k, "'%.64s' is given twice (first at line %zu)", scalar_of(k),
                               k0->start_mark.line + 1);
        }
        int rc = visit(t, k, v, arg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- endpoints */

/* Reads the password file at path into *out (one trailing newline off). */
static int read_password_file(struct translation *t, const yaml_node_t *n, const char *path,
                              char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_at(t, n, "password_file '%.128s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail_at(t, n, "password_file '%.128s' is not a regular file", path);
    }
    char buf[JOB_PASSWORD_MAX + 3];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof(buf) - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            return fail_at(t, n, "password_file '%.128s': %s", path, strerror(e));
        }
        if (k == 0 || (len += (size_t)k) == sizeof(buf))
            break;
    }
    close(fd);
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    int rc = 0;
    if (len > JOB_PASSWORD_MAX)
        rc = fail_at(t, n, "password_file '%.128s' holds more than %d bytes", path,
                     JOB_PASSWORD_MAX);
    else if (len == 0)
        rc = fail_at(t, n, "password_file '%.128s' is empty", path);
    else if (memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL)
        rc = fail_at(t, n, "password_file '%.128s' holds more than one line", path);
    if (rc == 0) {
        buf[len] = '\0';
        *out = strdup(buf);
        if (*out == NULL)
            rc = fail_at(t, n, "out of memory");
        else if (st.st_mode & (S_IRWXG | S_IRWXO))
            rs_log("warning: %s:%zu:%zu: password_file '%s' may be read by its group or others "
                   "(mode %04o): chmod 600 it",
                   t->path, n->start_mark.line + 1, n->start_mark.column + 1, path,
                   (unsigned)(st.st_mode & 07777));
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/* The value of the environment variable name into *out. */
static int read_password_env(struct translation *t, const yaml_node_t *n, const char *name,
                             char **out)
{
    bool is_name = name[0] != '\0' && !(name[0] >= '0' && name[0] <= '9');
    for (const char *c = name; *c; c++)
        is_name = is_name && ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                              (*c >= '0' && *c <= '9') || *c == '_');
    if (!is_name)
        return fail_at(t, n, "password_env takes the name of an environment variable");
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return fail_at(t, n, "password_env: the environment variable %.128s is not set", name);
    if (strlen(v) > JOB_PASSWORD_MAX)
        return fail_at(t, n, "password_env: %.128s holds more than %d bytes", name,
                       JOB_PASSWORD_MAX);
    *out = strdup(v);
    if (*out == NULL)
        return fail_at(t, n, "out of memory");
    return 0;
}

/* What an endpoint mapping gave. */
struct endpoint_parts {
    const yaml_node_t *node[7]; /* by endpoint_keys' index */
    const char *value[7];
};

static int endpoint_pair(struct translation *t, const yaml_node_t *k, const yaml_node_t *v,
                         void *arg)
{
    struct endpoint_parts *parts = arg;
    for (int i = 0; endpoint_keys[i]; i++) {
        if (strcmp(scalar_of(k), endpoint_keys[i]) != 0)
            continue;
        parts->node[i] = v;
        return want_scalar(t, v, endpoint_keys[i], &parts->value[i]);
    }
    return fail_at(t, k,
                   "unknown key '%.64s' in an endpoint (uri, or host, port, db, user; and "
                   "password_file or password_env)",
                   scalar_of(k));
}

/* Percent-encodes s (the URI's user part) into out. */
static void percent_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) != NULL) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

/* The source or the destination: a URI, or a mapping. */
static int translate_endpoint(struct translation *t, const struct job_key *jk, const yaml_node_t *v)
{
    int side = strcmp(jk->option, "source") == 0 ? 0 : 1;
    struct job_file_secret *secret = &t->jf->secret[side];
    char uri[1024];
    const yaml_node_t *at = v;
    bool has_password = false;
    if (v->type == YAML_MAPPING_NODE) {
        struct endpoint_parts p = {0};
        int rc = each_pair(t, v, endpoint_pair, &p);
        if (rc < 0)
            return rc;
        /* 0 uri, 1 host, 2 port, 3 db, 4 user, 5 password_file, 6 password_env */
        if (p.value[0] != NULL && (p.value[1] || p.value[2] || p.value[3] || p.value[4]))
            return fail_at(t, v, "%s: give either uri or host (with port, db, user), not both",
                           jk->key);
        if (p.value[0] == NULL && p.value[1] == NULL)
            return fail_at(t, v, "%s needs uri or host", jk->key);
        if (p.value[5] != NULL && p.value[6] != NULL)
            return fail_at(t, p.node[6], "%s: give password_file or password_env, not both",
                           jk->key);
        if (p.value[0] != NULL) {
            snprintf(uri, sizeof(uri), "%s", p.value[0]);
            at = p.node[0];
        } else {
            char user[400] = "";
            if (p.value[4] != NULL)
                percent_encode(p.value[4], user, sizeof(user));
            bool is_v6 = strchr(p.value[1], ':') != NULL && p.value[1][0] != '[';
            snprintf(uri, sizeof(uri), "redis://%s%s%s%s%s%s%s%s%s", user, user[0] ? "@" : "",
                     is_v6 ? "[" : "", p.value[1], is_v6 ? "]" : "", p.value[2] ? ":" : "",
                     p.value[2] ? p.value[2] : "", p.value[3] ? "/" : "",
                     p.value[3] ? p.value[3] : "");
            at = p.node[1];
        }
        int k = p.value[5] != NULL ? 5 : p.value[6] != NULL ? 6 : -1;
        if (k >= 0) {
            secret->place = place_of(p.node[k], jk->key);
            rc = k == 5 ? read_password_file(t, p.node[k], p.value[k], &secret->password)
                        : read_password_env(t, p.node[k], p.value[k], &secret->password);
            if (rc < 0)
                return rc;
            has_password = true;
        }
    } else {
        const char *s;
        int rc = want_scalar(t, v, jk->key, &s);
        if (rc < 0)
            return rc;
        snprintf(uri, sizeof(uri), "%s", s);
    }
    /* The URI is checked here, where its place is known, as the command
     * will read it. With a password of the file's own, a stand-in variable
     * plays the environment's part, and the URI must not hold another. */
    struct endpoint ep;
    struct rs_error e = {0};
    int rc;
    if (has_password) {
        setenv("RINGSYNC_JOB_FILE_CHECK", "x", 1);
        rc = endpoint_parse(uri, "RINGSYNC_JOB_FILE_CHECK", &ep, &e);
        unsetenv("RINGSYNC_JOB_FILE_CHECK");
        struct rs_error e2 = {0};
        if (rc == 0 && endpoint_parse(uri, NULL, &ep, &e2) == 0 && ep.has_password)
            rc = -1, snprintf(e.msg, sizeof(e.msg),
                              "the URI holds a password and password_file or password_env gives "
                              "another");
    } else {
        rc = endpoint_parse(uri, secret_env[side], &ep, &e);
    }
    explicit_bzero(&ep, sizeof(ep));
    if (rc < 0)
        return fail_at(t, at, "%s: %s", jk->key, e.msg);
    return add_opt(t, at, jk->key, jk->option, uri);
}

/* ------------------------------------------------------------ other kinds */

struct db_map_text {
    char text[1024];
    size_t len;
};

static int db_map_pair(struct translation *t, const yaml_node_t *k, const yaml_node_t *v, void *arg)
{
    struct db_map_text *m = arg;
    const char *dst;
    int rc = want_scalar(t, v, "a db_map entry", &dst);
    if (rc < 0)
        return rc;
    int n = snprintf(m->text + m->len, sizeof(m->text) - m->len, "%s%s:%s", m->len ? "," : "",
                     scalar_of(k), dst);
    if (n < 0 || (size_t)n >= sizeof(m->text) - m->len)
        return fail_at(t, k, "db_map is too long");
    m->len += (size_t)n;
    return 0;
}

/* db_map: "0:1,2:3" as --db-map takes it, or a mapping {0: 1, 2: 3}. */
static int translate_db_map(struct translation *t, const struct job_key *jk, const yaml_node_t *v)
{
    if (v->type == YAML_MAPPING_NODE) {
        struct db_map_text m = {.len = 0};
        int rc = each_pair(t, v, db_map_pair, &m);
        if (rc < 0)
            return rc;
        if (m.len == 0)
            return fail_at(t, v, "db_map is empty");
        return add_opt(t, v, jk->key, jk->option, m.text);
    }
    const char *s;
    int rc = want_scalar(t, v, jk->key, &s);
    return rc < 0 ? rc : add_opt(t, v, jk->key, jk->option, s);
}

/* A repeatable option: one value or a list of them. */
static int translate_list(struct translation *t, const struct job_key *jk, const char *key,
                          const yaml_node_t *v)
{
    const char *s;
    if (v->type != YAML_SEQUENCE_NODE) {
        int rc = want_scalar(t, v, key, &s);
        return rc < 0 ? rc : add_opt(t, v, key, jk->option, s);
    }
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        const yaml_node_t *e = yaml_document_get_node(t->doc, *i);
        if (e == NULL)
            return fail_at(t, v, "%s: an empty item", key);
        int rc = want_scalar(t, e, key, &s);
        if (rc == 0)
            rc = add_opt(t, e, key, jk->option, s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int filters_pair(struct translation *t, const yaml_node_t *k, const yaml_node_t *v,
                        void *arg)
{
    (void)arg;
    for (size_t i = 0; i < NKEYS(filter_keys); i++) {
        if (strcmp(scalar_of(k), filter_keys[i].key) != 0)
            continue;
        static char names[NKEYS(filter_keys)][48]; /* "filters.<key>", for places */
        snprintf(names[i], sizeof(names[i]), "filters.%s", filter_keys[i].key);
        return translate_list(t, &filter_keys[i], names[i], v);
    }
    return fail_at(t, k,
                   "unknown key 'filters.%.64s' (filters holds key_prefix, block_key_prefix, db, "
                   "block_command)",
                   scalar_of(k));
}

/* One top-level key's value. */
static int translate_key(struct translation *t, const struct job_key *jk, const yaml_node_t *v)
{
    bool on;
    const char *s;
    int rc;
    switch (jk->kind) {
    case KIND_VALUE:
        rc = want_scalar(t, v, jk->key, &s);
        return rc < 0 ? rc : add_opt(t, v, jk->key, jk->option, s);
    case KIND_FLAG:
        rc = want_bool(t, v, jk->key, &on);
        return rc < 0 || !on ? rc : add_opt(t, v, jk->key, jk->option, NULL);
    case KIND_OPTIONAL:
        if (v->type == YAML_SCALAR_NODE && want_bool(t, v, jk->key, &on) == 0) {
            t->err->msg[0] = '\0';
            return on ? add_opt(t, v, jk->key, jk->option, NULL) : 0;
        }
        rc = want_scalar(t, v, jk->key, &s);
        return rc < 0 ? rc : add_opt(t, v, jk->key, jk->option, s);
    case KIND_LIST:
        return translate_list(t, jk, jk->key, v);
    case KIND_ENDPOINT:
        return translate_endpoint(t, jk, v);
    case KIND_DB_MAP:
        return translate_db_map(t, jk, v);
    case KIND_FILTERS:
        if (v->type != YAML_MAPPING_NODE)
            return fail_at(t, v, "filters takes a mapping (key_prefix: ..., db: ...), not %s",
                           kind_name(v));
        return each_pair(t, v, filters_pair, NULL);
    case KIND_COMMAND:
        return 0; /* read before the walk */
    case KIND_INPUT:
        rc = want_scalar(t, v, jk->key, &s);
        if (rc < 0)
            return rc;
        if ((t->jf->input = strdup(s)) == NULL)
            return fail_at(t, v, "out of memory");
        t->jf->input_place = place_of(v, jk->key);
        return 0;
    }
    return fail_at(t, v, "%s: no such kind", jk->key);
}

static int root_pair(struct translation *t, const yaml_node_t *k, const yaml_node_t *v, void *arg)
{
    (void)arg;
    const char *key = scalar_of(k);
    const struct job_key *other;
    const struct job_key *jk = key_find(job_keys, NKEYS(job_keys), key, t->jf->command, &other);
    if (jk != NULL)
        return translate_key(t, jk, v);
    if (other != NULL) {
        char list[64] = "";
        for (size_t i = 0; i < NKEYS(job_keys); i++)
            if (strcmp(job_keys[i].key, key) == 0)
                for (unsigned c = 1; c <= JOB_CAPTURE; c <<= 1)
                    if (job_keys[i].commands & c)
                        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                                 list[0] ? ", " : "", job_command_name(c));
        return fail_at(t, k, "'%.64s' is not an option of %s (it is one of %s)", key,
                       job_command_name(t->jf->command), list);
    }
    return fail_at(t, k, "unknown key '%.64s' (the keys are listed in README.md, \"Job files\")",
                   key);
}

/* The command the file names in its `command:` key, checked against the
 * one it is read for (0: any). */
static int pick_command(struct translation *t, const yaml_node_t *root, unsigned command)
{
    t->jf->command = command ? command : JOB_SYNC;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(t->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(t->doc, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE ||
            strcmp(scalar_of(k), "command") != 0)
            continue;
        const char *s;
        int rc = want_scalar(t, v, "command", &s);
        if (rc < 0)
            return rc;
        unsigned named = job_command_of(s);
        if (named == 0)
            return fail_at(
                t, v, "command takes sync, restore, replay, verify or capture, not '%.64s'", s);
        if (command != 0 && named != command)
            return fail_at(t, v, "this job file is for ringsync %s, not %s", s,
                           job_command_name(command));
        t->jf->command = named;
    }
    return 0;
}

int job_file_translate(const char *path, const char *text, size_t len, unsigned command,
                       struct job_file *jf, struct rs_error *err)
{
    memset(jf, 0, sizeof(*jf));
    snprintf(jf->path, sizeof(jf->path), "%s", path);
    struct translation t = {.path = jf->path, .jf = jf, .err = err};
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        rs_error_set(err, RS_E_LIMIT, 0, "%s: out of memory", jf->path);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        rs_error_set(err, RS_E_FORMAT, parser.problem_mark.index, "%s:%zu:%zu: not YAML: %s%s%s",
                     jf->path, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "unreadable", parser.context ? ", " : "",
                     parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    t.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s: holds no job (an empty file)", jf->path);
        rc = -EINVAL;
    } else if (root->type != YAML_MAPPING_NODE) {
        rc = fail_at(&t, root, "a job file is a mapping of keys (workers: 2 ...), not %s",
                     kind_name(root));
    } else {
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            rs_error_set(err, RS_E_FORMAT, parser.problem_mark.index, "%s:%zu:%zu: not YAML: %s",
                         jf->path, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                         parser.problem ? parser.problem : "unreadable");
            rc = -EINVAL;
        } else {
            yaml_node_t *more = yaml_document_get_root_node(&next);
            if (more != NULL)
                rc = fail_at(&t, more, "a job file holds one YAML document, not more");
            yaml_document_delete(&next);
        }
        if (rc == 0)
            rc = pick_command(&t, root, command);
        if (rc == 0)
            rc = each_pair(&t, root, root_pair, NULL);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc < 0) {
        job_file_deinit(jf);
        snprintf(jf->path, sizeof(jf->path), "%s", path);
    }
    return rc;
}

int job_file_load(const char *path, unsigned command, struct job_file *jf, struct rs_error *err)
{
    memset(jf, 0, sizeof(*jf));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        rs_error_set(err, RS_E_FORMAT, 0, "cannot read job file %s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(JOB_FILE_MAX_BYTES + 1);
    size_t len = 0;
    int rc = buf == NULL ? -ENOMEM : 0;
    while (rc == 0 && len <= JOB_FILE_MAX_BYTES) {
        ssize_t k = read(fd, buf + len, JOB_FILE_MAX_BYTES + 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            rc = -errno;
        else if (k == 0)
            break;
        else
            len += (size_t)k;
    }
    close(fd);
    if (rc == 0 && len > JOB_FILE_MAX_BYTES)
        rc = -EFBIG;
    if (rc < 0) {
        rs_error_set(err, RS_E_LIMIT, 0, "cannot read job file %s: %s", path,
                     rc == -EFBIG ? "bigger than 1 MiB" : strerror(-rc));
        free(buf);
        return rc;
    }
    rc = job_file_translate(path, buf, len, command, jf, err);
    free(buf);
    return rc;
}

void job_file_deinit(struct job_file *jf)
{
    if (job_file_current == jf) {
        job_file_current = NULL;
        rs_log_set_context(NULL);
    }
    for (int i = 0; i < jf->nopts; i++)
        free(jf->opts[i]);
    free(jf->opts);
    free(jf->places);
    free(jf->input);
    for (int s = 0; s < 2; s++)
        if (jf->secret[s].password != NULL) {
            explicit_bzero(jf->secret[s].password, strlen(jf->secret[s].password));
            free(jf->secret[s].password);
        }
    free(jf->argv);
    memset(jf, 0, sizeof(*jf));
}

/* ================================================================ merging */

/* The entry of the long option arg names ("--name[=value]"), exactly or by
 * a prefix of one option only (as getopt_long takes it), among command's;
 * or NULL. */
static const struct job_key *option_find(const char *arg, unsigned command)
{
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    const struct job_key *found = NULL;
    int prefixes = 0;
    for (int pass = 0; pass < 2; pass++) {
        const struct job_key *table = pass == 0 ? job_keys : filter_keys;
        size_t n = pass == 0 ? NKEYS(job_keys) : NKEYS(filter_keys);
        for (size_t i = 0; i < n; i++) {
            const char *o = table[i].option;
            if (o == NULL || !(table[i].commands & command) || strncmp(o, name, len) != 0)
                continue;
            if (o[len] == '\0')
                return &table[i];
            if (found == NULL || strcmp(found->option, o) != 0)
                prefixes++;
            found = &table[i];
        }
    }
    return prefixes == 1 ? found : NULL;
}

/* Whether the option of jk, written as arg, takes the next argument. */
static bool takes_next(const struct job_key *jk, const char *arg)
{
    if (jk == NULL || strchr(arg, '=') != NULL)
        return false;
    return jk->kind != KIND_FLAG && jk->kind != KIND_OPTIONAL;
}

/* One line when a URI on the command line holds a password. */
static void warn_visible_password(const struct job_key *jk, const char *uri)
{
    struct endpoint ep;
    struct rs_error e = {0};
    if (endpoint_parse(uri, NULL, &ep, &e) == 0 && ep.has_password)
        rs_log("warning: the password in --%s's URI is visible to other users of this host (ps, "
               "/proc); give it in a job file (password_file or password_env) or in %s instead",
               jk->option, secret_env[strcmp(jk->option, "source") == 0 ? 0 : 1]);
    explicit_bzero(&ep, sizeof(ep));
}

int job_file_merge(struct job_file *jf, int argc, char **argv)
{
    jf->argv = calloc((size_t)argc + (size_t)jf->nopts + 2, sizeof(*jf->argv));
    RS_ASSERT(jf->argv != NULL);
    int n = 0;
    jf->argv[n++] = argv[0];
    for (int i = 0; i < jf->nopts; i++)
        jf->argv[n++] = jf->opts[i];
    int at_input = n;
    if (jf->input != NULL)
        jf->argv[n++] = jf->input;
    bool cli_gives[2] = {false, false};
    int positional = 0;
    bool options_end = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_end || a[0] != '-' || a[1] == '\0') {
            positional++;
        } else if (strcmp(a, "--") == 0) {
            options_end = true;
        } else if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0) {
            i += a[8] == '\0'; /* its value: job_file_expand read it */
            continue;
        } else if (a[1] == '-') {
            const struct job_key *jk = option_find(a, jf->command ? jf->command : JOB_SYNC);
            const char *value = strchr(a, '=') ? strchr(a, '=') + 1 : NULL;
            if (takes_next(jk, a) && i + 1 < argc) {
                jf->argv[n++] = argv[i++];
                value = argv[i];
            }
            if (jk != NULL && jk->kind == KIND_ENDPOINT && value != NULL) {
                cli_gives[strcmp(jk->option, "source") == 0 ? 0 : 1] = true;
                warn_visible_password(jk, value);
            }
        }
        jf->argv[n++] = argv[i];
    }
    if (jf->input != NULL && positional > 0) { /* the command line's input wins */
        memmove(&jf->argv[at_input], &jf->argv[at_input + 1],
                (size_t)(n - at_input - 1) * sizeof(*jf->argv));
        n--;
    }
    jf->argv[n] = NULL;
    jf->argc = n;
    for (int side = 0; side < 2; side++)
        if (jf->secret[side].password != NULL && !cli_gives[side])
            setenv(secret_env[side], jf->secret[side].password, 1);
    job_file_current = jf;
    return 0;
}

int job_file_expand(unsigned command, int argc, char **argv, struct job_file *jf)
{
    memset(jf, 0, sizeof(*jf));
    const char *path = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *value;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 == argc) {
                rs_log("--config needs a job file");
                return 2;
            }
            value = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            value = argv[i] + 9;
        } else {
            const struct job_key *jk =
                argv[i][0] == '-' && argv[i][1] == '-' ? option_find(argv[i], command) : NULL;
            i += takes_next(jk, argv[i]); /* a value is no --config */
            continue;
        }
        if (path != NULL) {
            rs_log("--config is given twice: one job file per job");
            return 2;
        }
        path = value;
    }
    if (path != NULL) {
        struct rs_error err = {0};
        if (job_file_load(path, command, jf, &err) < 0) {
            rs_log("%s", err.msg);
            return 2;
        }
    }
    jf->command = command;
    return job_file_merge(jf, argc, argv);
}

void job_file_at(const char *optarg)
{
    const struct job_file *jf = job_file_current;
    if (optarg == NULL || jf == NULL) {
        rs_log_set_context(NULL);
        return;
    }
    uintptr_t p = (uintptr_t)optarg;
    for (int i = 0; i < jf->nopts; i++) {
        uintptr_t s = (uintptr_t)jf->opts[i];
        if (p >= s && p <= s + strlen(jf->opts[i])) {
            char where[320];
            snprintf(where, sizeof(where), "%s:%u:%u: %s", jf->path, jf->places[i].line,
                     jf->places[i].column, jf->places[i].key);
            rs_log_set_context(where);
            return;
        }
    }
    rs_log_set_context(NULL);
}

/* ================================================================ config check */

/* The effective job: a value per key of job_keys (then filter_keys), from
 * the command's parser (its describe function), else from the options
 * given. */
struct effective {
    unsigned command;
    char *value[NKEYS(job_keys) + NKEYS(filter_keys)];
    bool is_described[NKEYS(job_keys) + NKEYS(filter_keys)];
};

/* The index in effective of the option named option ("--" left out), or -1. */
static int effective_index(unsigned command, const char *option, size_t len)
{
    for (size_t i = 0; i < NKEYS(job_keys); i++)
        if (job_keys[i].option && (job_keys[i].commands & command) &&
            strncmp(job_keys[i].option, option, len) == 0 && job_keys[i].option[len] == '\0')
            return (int)i;
    for (size_t i = 0; i < NKEYS(filter_keys); i++)
        if (strncmp(filter_keys[i].option, option, len) == 0 && filter_keys[i].option[len] == '\0')
            return (int)(NKEYS(job_keys) + i);
    return -1;
}

static void effective_emit(void *ctx, const char *option, const char *value)
{
    struct effective *e = ctx;
    int i = effective_index(e->command, option, strlen(option));
    if (i < 0 || value == NULL)
        return;
    free(e->value[i]);
    e->value[i] = strdup(value);
    e->is_described[i] = true;
}

/* A value written so that YAML reads it back as the same string. */
static void yaml_quoted(FILE *f, const char *v)
{
    bool is_plain = v[0] != '\0' && strchr("-?:,[]{}#&*!|>'\"%@` ", v[0]) == NULL;
    for (const char *c = v; *c && is_plain; c++)
        is_plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                   (*c >= '0' && *c <= '9') || strchr("_./:@*+-", *c) != NULL;
    if (is_plain) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* An endpoint as the job will use it, its password (URI's, the
 * environment's or the file's) as ***. */
static int print_endpoint(FILE *f, const char *key, const char *uri, int side)
{
    struct endpoint ep;
    struct rs_error e = {0};
    if (endpoint_parse(uri, secret_env[side], &ep, &e) < 0) {
        rs_log("%s: %s", key, e.msg);
        return -1;
    }
    char user[400] = "", db[16] = "";
    percent_encode(ep.user, user, sizeof(user));
    if (ep.db >= 0)
        snprintf(db, sizeof(db), "/%d", ep.db);
    fprintf(f, "%s: \"redis://%s%s%s%s%s\"\n", key, user, ep.has_password ? ":***" : "",
            user[0] || ep.has_password ? "@" : "", ep.name, db);
    explicit_bzero(&ep, sizeof(ep));
    return 0;
}

static void config_usage(FILE *f)
{
    fprintf(f, "usage: ringsync config check FILE [flags]\n"
               "\n"
               "Reads the job file FILE (YAML, README.md \"Job files\") for the command its\n"
               "`command:` key names (sync when none), with the flags given after it, as\n"
               "`ringsync <command> --config FILE [flags]` would, and prints the effective job:\n"
               "every option after its default, passwords as ***. Exit 0: valid; 2: not.\n");
}

int config_main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        config_usage(stdout);
        return 0;
    }
    if (argc < 3 || strcmp(argv[1], "check") != 0) {
        config_usage(stderr);
        return 2;
    }
    struct job_file jf;
    struct rs_error err = {0};
    if (job_file_load(argv[2], 0, &jf, &err) < 0) {
        rs_log("%s", err.msg);
        return 2;
    }
    /* The command line the command would see: its name, then the flags. */
    char **cli = calloc((size_t)argc, sizeof(*cli));
    RS_ASSERT(cli != NULL);
    cli[0] = (char *)job_command_name(jf.command);
    for (int i = 3; i < argc; i++)
        cli[i - 2] = argv[i];
    job_file_merge(&jf, argc - 2, cli);
    struct effective e = {.command = jf.command};
    int rc;
    const char *input = NULL;
    if (jf.command & JOB_SRR) {
        enum sync_mode mode = jf.command == JOB_SYNC      ? MODE_SYNC
                              : jf.command == JOB_RESTORE ? MODE_RESTORE
                                                          : MODE_REPLAY;
        struct sync_opts o;
        rc = sync_opts_parse(jf.argc, jf.argv, mode, &o);
        if (rc == 0) {
            sync_opts_describe(&o, mode, effective_emit, &e);
            input = o.file;
        }
    } else if (jf.command == JOB_VERIFY) {
        rc = verify_describe(jf.argc, jf.argv, effective_emit, &e);
    } else {
        rc = capture_describe(jf.argc, jf.argv, effective_emit, &e);
    }
    job_file_at(NULL);
    if (rc == 0) {
        /* What the parser does not describe (a newer option): as given. */
        for (int i = 1; i < jf.argc; i++) {
            const char *a = jf.argv[i];
            if (a[0] != '-' || a[1] != '-' || a[2] == '\0')
                continue;
            const struct job_key *jk = option_find(a, jf.command);
            if (jk == NULL)
                continue;
            int k = effective_index(jf.command, jk->option, strlen(jk->option));
            const char *v = strchr(a, '=') ? strchr(a, '=') + 1 : "true";
            if (takes_next(jk, a) && i + 1 < jf.argc)
                v = jf.argv[++i];
            if (k < 0 || e.is_described[k])
                continue;
            if (jk->kind != KIND_LIST || e.value[k] == NULL) { /* the last one wins */
                free(e.value[k]);
                e.value[k] = strdup(v);
                continue;
            }
            size_t len = strlen(e.value[k]) + strlen(v) + 2;
            char *joined = malloc(len);
            RS_ASSERT(joined != NULL);
            snprintf(joined, len, "%s%c%s", e.value[k], '\x1f', v);
            free(e.value[k]);
            e.value[k] = joined;
        }
        printf("# ringsync %s: the effective job of %s, then the flags after it; passwords "
               "as ***\n",
               job_command_name(jf.command), jf.path);
        printf("command: %s\n", job_command_name(jf.command));
        for (size_t i = 0; i < NKEYS(job_keys) && rc == 0; i++) {
            const struct job_key *jk = &job_keys[i];
            if (!(jk->commands & jf.command))
                continue;
            if (jk->kind == KIND_INPUT && input != NULL) {
                printf("%s: ", jk->key);
                yaml_quoted(stdout, input);
                printf("\n");
            }
            if (jk->kind == KIND_FILTERS) {
                bool any = false;
                for (size_t j = 0; j < NKEYS(filter_keys); j++) {
                    char *v = e.value[NKEYS(job_keys) + j];
                    if (v == NULL)
                        continue;
                    printf("%s  %s: [", any ? "" : "filters:\n", filter_keys[j].key);
                    any = true;
                    for (char *item = v, *next; item != NULL; item = next) {
                        next = strchr(item, '\x1f');
                        if (next != NULL)
                            *next++ = '\0';
                        yaml_quoted(stdout, item);
                        printf("%s", next ? ", " : "");
                    }
                    printf("]\n");
                }
            }
            if (e.value[i] == NULL)
                continue;
            if (jk->kind == KIND_ENDPOINT) {
                if (print_endpoint(stdout, jk->key, e.value[i], jk->option[0] == 's' ? 0 : 1) < 0)
                    rc = 2;
                continue;
            }
            printf("%s: ", jk->key);
            yaml_quoted(stdout, e.value[i]);
            printf("\n");
        }
    }
    for (size_t i = 0; i < NKEYS(e.value); i++)
        free(e.value[i]);
    free(cli);
    job_file_deinit(&jf);
    return rc == 0 ? 0 : rc < 0 ? 0 : 2;
}
