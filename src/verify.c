/* verify.c - `ringsync verify`: are two data sets equal? Keys, types, TTLs
 * and lengths (quick), values too (full), both directions, on standalone
 * servers or clusters, with the db map of a sync job and its checkpoint
 * keys left out.
 *
 *   verify_main
 *     options -> endpoints
 *     each side: standalone, or its masters (cluster_topology_discover)
 *     the dbs compared: the source's holding keys that the db map maps; the
 *       target's holding keys that some source db maps to (for extras)
 *     full mode: DEBUG DIGEST-VALUE probed once on every node of both sides
 *     a forward worker per source master, a reverse worker per target master
 *       (verify_check.h): pass 1, then the differences checked again
 *     the report: counts by kind, examples; text or --json; exit 0 equal,
 *       1 not equal (or could not finish), 2 bad usage
 */
#include "verify.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "cluster_topology.h"
#include "control_link.h"
#include "dest_route.h"
#include "endpoint.h"
#include "job_file.h"
#include "json_out.h"
#include "log.h"
#include "verify_check.h"

#define VERIFY_TTL_TOLERANCE_MS 1000
#define VERIFY_PASSES           3
#define VERIFY_PASS_DELAY_MS    1000
#define VERIFY_SCAN_COUNT       1000
#define VERIFY_TIMEOUT_MS       5000
#define VERIFY_EXAMPLES         10
#define VERIFY_DIFFS_MAX        100000
#define VERIFY_PROBE_KEY        "ringsync:verify:probe"

struct verify_opts {
    const char *source, *target;
    bool is_full;
    long ttl_tolerance_ms;
    long expiry_margin_s;
    long passes, pass_delay_ms, scan_count, timeout_ms, examples, diffs_max;
    bool is_json;
    bool debug_digest_never;
    const char *db_map, *db_prefix;
};

static void verify_usage(FILE *f)
{
    fprintf(f,
            "usage: ringsync verify --source URI --target URI [--mode quick|full] [options]\n"
            "\n"
            "Compares two data sets, standalone or cluster on either side: every key of the\n"
            "source on the target (missing, type, TTL, length; full: the value too) and\n"
            "every key of the target on the source (extra). Keys that differ are checked\n"
            "again in further passes, so that writes still in flight are not reported.\n"
            "Exit 0: equal; 1: not equal (or verify could not finish); 2: bad usage.\n"
            "\n"
            "  --config FILE            the job's options from a YAML job file; flags given\n"
            "                           too override it (README: Job files)\n"
            "  --mode quick|full        quick (default): keys, types, TTLs, lengths; full:\n"
            "                           values too, read in bounded chunks and digested\n"
            "  --ttl-tolerance MS       two TTLs this close are equal (default %d)\n"
            "  --expiry-margin S        the target's expiries are S seconds late (a running\n"
            "                           sync's --expiry-margin): taken off first (default 0)\n"
            "  --passes N               passes in all, the later ones over what differed\n"
            "                           (default %d)\n"
            "  --pass-delay-ms MS       the wait before each later pass (default %d)\n"
            "  --db-map SRC:DST[,...]   source db to target db, as sync's (default: each to\n"
            "                           itself; 0:0 into a cluster)\n"
            "  --db-prefix[=PATTERN]    the target (a cluster) holds every source db N in\n"
            "                           db 0, keys prefixed by PATTERN, {N} the db (db{N}:)\n"
            "  --json                   the report as one JSON object on stdout\n"
            "  --examples N             differences listed (default %d)\n"
            "  --max-diffs N            differences kept for the later passes (default %d;\n"
            "                           past it they are counted, not checked again)\n"
            "  --scan-count N           keys asked per SCAN page (default %d)\n"
            "  --debug-digest auto|never  DEBUG DIGEST-VALUE for big values where every\n"
            "                           node allows it (default auto)\n"
            "  --timeout-ms N           connect timeout and longest silence (default %d)\n"
            "\n"
            "URIs are redis://[user[:password]@]host:port; passwords may come from\n"
            "RINGSYNC_SOURCE_PASSWORD / RINGSYNC_TARGET_PASSWORD instead. Keys under\n"
            "\"" CHECKPOINT_PREFIX "\" (a sync job's checkpoints) are left out.\n",
            VERIFY_TTL_TOLERANCE_MS, VERIFY_PASSES, VERIFY_PASS_DELAY_MS, VERIFY_EXAMPLES,
            VERIFY_DIFFS_MAX, VERIFY_SCAN_COUNT, VERIFY_TIMEOUT_MS);
}

/* A whole decimal number in [min, max] into *v; false otherwise. */
static bool parse_long(const char *s, long min, long max, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || x < min || x > max)
        return false;
    *v = x;
    return true;
}

/* 0, or 2 (bad usage, said on stderr), or 1 (--help: printed, exit 0). */
static int verify_parse(int argc, char **argv, struct verify_opts *o)
{
    *o = (struct verify_opts){.ttl_tolerance_ms = VERIFY_TTL_TOLERANCE_MS,
                              .passes = VERIFY_PASSES,
                              .pass_delay_ms = VERIFY_PASS_DELAY_MS,
                              .scan_count = VERIFY_SCAN_COUNT,
                              .timeout_ms = VERIFY_TIMEOUT_MS,
                              .examples = VERIFY_EXAMPLES,
                              .diffs_max = VERIFY_DIFFS_MAX};
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"target", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'},
        {"ttl-tolerance", required_argument, NULL, 'T'},
        {"expiry-margin", required_argument, NULL, 'X'},
        {"passes", required_argument, NULL, 'p'},
        {"pass-delay-ms", required_argument, NULL, 'd'},
        {"db-map", required_argument, NULL, 'M'},
        {"db-prefix", optional_argument, NULL, 'K'},
        {"json", no_argument, NULL, 'j'},
        {"examples", required_argument, NULL, 'e'},
        {"max-diffs", required_argument, NULL, 'D'},
        {"scan-count", required_argument, NULL, 'c'},
        {"debug-digest", required_argument, NULL, 'g'},
        {"timeout-ms", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c, li = -1;
    while ((c = getopt_long(argc, argv, ":h", longopts, &li)) != -1) {
        bool ok = true;
        job_file_at(optarg); /* a value from a job file: its place in messages */
        switch (c) {
        case 's':
            o->source = optarg;
            break;
        case 't':
            o->target = optarg;
            break;
        case 'm':
            ok = strcmp(optarg, "quick") == 0 || strcmp(optarg, "full") == 0;
            o->is_full = strcmp(optarg, "full") == 0;
            break;
        case 'T':
            ok = parse_long(optarg, 0, 86400000L * 365, &o->ttl_tolerance_ms);
            break;
        case 'X':
            ok = parse_long(optarg, 0, 315360000L, &o->expiry_margin_s);
            break;
        case 'p':
            ok = parse_long(optarg, 1, 100, &o->passes);
            break;
        case 'd':
            ok = parse_long(optarg, 0, 3600000L, &o->pass_delay_ms);
            break;
        case 'M':
            o->db_map = optarg;
            break;
        case 'K':
            o->db_prefix = optarg ? optarg : "db{N}:";
            break;
        case 'j':
            o->is_json = true;
            break;
        case 'e':
            ok = parse_long(optarg, 0, 1000000L, &o->examples);
            break;
        case 'D':
            ok = parse_long(optarg, 0, 100000000L, &o->diffs_max);
            break;
        case 'c':
            ok = parse_long(optarg, 1, 100000L, &o->scan_count);
            break;
        case 'g':
            ok = strcmp(optarg, "auto") == 0 || strcmp(optarg, "never") == 0;
            o->debug_digest_never = strcmp(optarg, "never") == 0;
            break;
        case 'o':
            ok = parse_long(optarg, 1, 3600000L, &o->timeout_ms);
            break;
        case 'h':
            verify_usage(stdout);
            return 1;
        case ':':
            rs_log("verify: %s needs a value", argv[optind - 1]);
            return 2;
        default:
            rs_log("verify: unknown option '%s' (ringsync verify --help lists them)",
                   argv[optind - 1]);
            return 2;
        }
        if (!ok) {
            rs_log("verify: --%s: '%s' is not a value it takes (ringsync verify --help)",
                   longopts[li].name, optarg);
            return 2;
        }
    }
    job_file_at(NULL);
    if (optind < argc) {
        rs_log("verify: unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (o->source == NULL || o->target == NULL) {
        rs_log("verify: --source and --target are both needed");
        verify_usage(stderr);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------ the sides */

struct verify_side {
    const char *what; /* "source" or "target" */
    struct endpoint seed;
    bool is_cluster;
    struct cluster_topology topo;
    struct endpoint *eps;
    unsigned neps;
    bool dbs[VERIFY_MAX_DBS]; /* holding keys */
    bool has_debug;
};

/* The dbs holding keys: INFO keyspace's "dbN:keys=..." lines. */
static int side_dbs(struct verify_side *s, struct control_link *cl, struct rs_error *err)
{
    struct control_reply rep = {0};
    int rc = control_link_commandv(cl, &rep, err, "INFO", "keyspace", NULL);
    if (rc < 0)
        return rc;
    if (rep.r->type != REDIS_REPLY_STRING) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s answered INFO keyspace with: %.100s", cl->name,
                     rep.r->str ? rep.r->str : "?");
        control_reply_free(&rep);
        return -EPROTO;
    }
    for (const char *p = rep.r->str; p != NULL && *p != '\0';) {
        unsigned db;
        if (sscanf(p, "db%u:keys=", &db) == 1 && db < VERIFY_MAX_DBS)
            s->dbs[db] = true;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    control_reply_free(&rep);
    return 0;
}

/* Standalone or cluster; a cluster's masters; the dbs holding keys (a
 * cluster's: db 0). */
static int side_open(struct verify_side *s, int timeout_ms, struct rs_error *err)
{
    struct control_link cl;
    int rc = control_link_open(&cl, &s->seed, timeout_ms, err);
    if (rc < 0)
        return rc;
    enum cluster_mode mode;
    rc = cluster_mode_of(&cl, &mode, err);
    if (rc == 0 && mode == CLUSTER_MODE_CLUSTER) {
        s->is_cluster = true;
        rc = cluster_topology_discover(&s->topo, &cl, s->seed.host, err);
        if (rc == 0) {
            s->neps = (unsigned)s->topo.nmasters;
            s->eps = calloc(s->neps, sizeof(*s->eps));
            RS_ASSERT(s->eps != NULL);
            for (unsigned i = 0; i < s->neps; i++) {
                const struct cluster_node *n = &s->topo.masters[i].node;
                s->eps[i] = s->seed;
                snprintf(s->eps[i].host, sizeof(s->eps[i].host), "%s", n->host);
                s->eps[i].port = n->port;
                snprintf(s->eps[i].name, sizeof(s->eps[i].name), "%s", n->name);
            }
        }
        s->dbs[0] = true;
    } else if (rc == 0) {
        s->neps = 1;
        s->eps = calloc(1, sizeof(*s->eps));
        RS_ASSERT(s->eps != NULL);
        s->eps[0] = s->seed;
        rc = side_dbs(s, &cl, err);
    }
    control_link_close(&cl);
    return rc;
}

/* DEBUG DIGEST-VALUE allowed on every node (Redis 7 refuses DEBUG unless
 * enable-debug-command says yes)? */
static int side_probe_debug(struct verify_side *s, int timeout_ms, struct rs_error *err)
{
    s->has_debug = true;
    for (unsigned i = 0; i < s->neps && s->has_debug; i++) {
        struct control_link cl;
        int rc = control_link_open(&cl, &s->eps[i], timeout_ms, err);
        if (rc < 0)
            return rc;
        struct control_reply rep = {0};
        rc = control_link_commandv(&cl, &rep, err, "DEBUG", "DIGEST-VALUE", VERIFY_PROBE_KEY, NULL);
        if (rc == 0 && rep.r->type != REDIS_REPLY_ARRAY)
            s->has_debug = false;
        control_reply_free(&rep);
        control_link_close(&cl);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void side_deinit(struct verify_side *s)
{
    cluster_topology_deinit(&s->topo);
    free(s->eps);
    s->eps = NULL;
}

/* ------------------------------------------------------------ the report */

struct verify_report {
    uint64_t counts[VERIFY_KINDS]; /* what still differs (kept) */
    uint64_t overflow[VERIFY_KINDS];
    uint64_t source_keys, target_keys, not_compared;
    uint64_t pass1_us, total_us;
    unsigned passes;
    const struct verify_diff **examples;
    size_t nexamples;
};

static uint64_t report_total(const struct verify_report *r)
{
    uint64_t n = 0;
    for (int k = 0; k < VERIFY_KINDS; k++)
        n += r->counts[k] + r->overflow[k];
    return n;
}

static void report_text(const struct verify_report *r, const struct verify_opts *o, FILE *f)
{
    uint64_t total = report_total(r);
    double secs = (double)r->pass1_us / 1e6;
    fprintf(f, "verify (%s): %s\n", o->is_full ? "full" : "quick",
            total == 0 ? "EQUAL" : "NOT EQUAL");
    fprintf(f,
            "  %llu keys on the source, %llu on the target, compared in %.2f s (%.0f keys/s); "
            "%u pass%s\n",
            (unsigned long long)r->source_keys, (unsigned long long)r->target_keys, secs,
            secs > 0 ? (double)r->source_keys / secs : 0.0, r->passes, r->passes == 1 ? "" : "es");
    if (r->not_compared > 0)
        fprintf(f,
                "  %llu values of module types not compared (DEBUG DIGEST-VALUE not allowed); "
                "their types, TTLs were\n",
                (unsigned long long)r->not_compared);
    if (total == 0)
        return;
    fprintf(f, "  differences: %llu (", (unsigned long long)total);
    for (int k = 0; k < VERIFY_KINDS; k++)
        fprintf(f, "%s%s %llu", k ? ", " : "", verify_kind_name((enum verify_kind)k),
                (unsigned long long)(r->counts[k] + r->overflow[k]));
    fprintf(f, ")\n");
    uint64_t over = 0;
    for (int k = 0; k < VERIFY_KINDS; k++)
        over += r->overflow[k];
    if (over > 0)
        fprintf(f, "  of which %llu found in pass 1 past --max-diffs, not checked again\n",
                (unsigned long long)over);
    for (size_t i = 0; i < r->nexamples; i++) {
        const struct verify_diff *d = r->examples[i];
        char key[400];
        rs_escape_bytes(key, sizeof(key), d->key, d->key_len, 200);
        fprintf(f, "  %-7s db %d \"%s\": %s\n", verify_kind_name(d->kind), d->db, key, d->detail);
    }
    if (r->nexamples < total)
        fprintf(f, "  (%llu more not listed; --examples N)\n",
                (unsigned long long)(total - r->nexamples));
}

/* {"missing":N,...}: per kind, a[k] (+ b[k] when b is not NULL). */
static void kinds_json(struct json_out *j, const uint64_t *a, const uint64_t *b)
{
    json_out_char(j, '{');
    for (int k = 0; k < VERIFY_KINDS; k++) {
        const char *name = verify_kind_name((enum verify_kind)k);
        if (k)
            json_out_char(j, ',');
        json_out_string(j, name, strlen(name));
        json_out_char(j, ':');
        json_out_u64(j, a[k] + (b != NULL ? b[k] : 0));
    }
    json_out_char(j, '}');
}

static void report_json(const struct verify_report *r, const struct verify_opts *o, FILE *f)
{
    struct json_out j;
    json_out_init(&j, f, 1 << 16);
    uint64_t total = report_total(r);
    json_out_text(&j, "{\"equal\":");
    json_out_text(&j, total == 0 ? "true" : "false");
    json_out_text(&j, ",\"mode\":");
    json_out_text(&j, o->is_full ? "\"full\"" : "\"quick\"");
    json_out_text(&j, ",\"source_keys\":");
    json_out_u64(&j, r->source_keys);
    json_out_text(&j, ",\"target_keys\":");
    json_out_u64(&j, r->target_keys);
    json_out_text(&j, ",\"passes\":");
    json_out_u64(&j, r->passes);
    json_out_text(&j, ",\"seconds\":");
    json_out_double(&j, (double)r->pass1_us / 1e6);
    json_out_text(&j, ",\"not_compared\":");
    json_out_u64(&j, r->not_compared);
    json_out_text(&j, ",\"differences\":");
    json_out_u64(&j, total);
    json_out_text(&j, ",\"counts\":");
    kinds_json(&j, r->counts, r->overflow);
    json_out_text(&j, ",\"not_rechecked\":");
    kinds_json(&j, r->overflow, NULL);
    json_out_text(&j, ",\"examples\":[");
    for (size_t i = 0; i < r->nexamples; i++) {
        const struct verify_diff *d = r->examples[i];
        json_out_text(&j, i ? ",{\"kind\":" : "{\"kind\":");
        json_out_string(&j, verify_kind_name(d->kind), strlen(verify_kind_name(d->kind)));
        json_out_text(&j, ",\"db\":");
        json_out_i64(&j, d->db);
        json_out_text(&j, ",\"key\":");
        json_out_string(&j, d->key, d->key_len);
        json_out_text(&j, ",\"detail\":");
        json_out_string(&j, d->detail, strlen(d->detail));
        json_out_char(&j, '}');
    }
    json_out_text(&j, "]}");
    json_out_end_line(&j);
    json_out_flush(&j);
    json_out_deinit(&j);
}

static int diff_order(const void *a, const void *b)
{
    const struct verify_diff *x = *(const struct verify_diff *const *)a;
    const struct verify_diff *y = *(const struct verify_diff *const *)b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    if (x->db != y->db)
        return x->db - y->db;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* ------------------------------------------------------------ the command */

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Which dbs each side compares (verify_config's lists), saying what is
 * left out. */
static void plan_dbs(struct verify_config *cfg, const struct verify_side *src,
                     const struct verify_side *dst)
{
    bool image[VERIFY_MAX_DBS] = {false};
    unsigned max = src->is_cluster ? 1 : VERIFY_MAX_DBS;
    for (unsigned s = 0; s < max; s++) {
        int64_t t = dest_route_db(&cfg->route, s);
        if (t >= 0 && t < VERIFY_MAX_DBS)
            image[t] = true;
        if (!src->dbs[s])
            continue;
        if (t < 0)
            rs_log("verify: source db %u holds keys but the db map leaves it out: not compared", s);
        else
            cfg->source_dbs[cfg->nsource_dbs++] = (int)s;
    }
    for (unsigned t = 0; t < VERIFY_MAX_DBS; t++) {
        if (!dst->dbs[t])
            continue;
        if (image[t])
            cfg->target_dbs[cfg->ntarget_dbs++] = (int)t;
        else
            rs_log("verify: target db %u holds keys no source db maps to: not compared", t);
    }
}

int verify_describe(int argc, char **argv,
                    void (*emit)(void *ctx, const char *option, const char *value), void *ctx)
{
    struct verify_opts o;
    int prc = verify_parse(argc, argv, &o);
    if (prc != 0)
        return prc == 1 ? -1 : 2;
    char b[32];
    emit(ctx, "source", o.source);
    emit(ctx, "target", o.target);
    emit(ctx, "mode", o.is_full ? "full" : "quick");
    emit(ctx, "db-map", o.db_map);
    emit(ctx, "db-prefix", o.db_prefix);
    const struct {
        const char *option;
        long value;
    } numbers[] = {
        {"ttl-tolerance", o.ttl_tolerance_ms},
        {"expiry-margin", o.expiry_margin_s},
        {"passes", o.passes},
        {"pass-delay-ms", o.pass_delay_ms},
        {"examples", o.examples},
        {"max-diffs", o.diffs_max},
        {"scan-count", o.scan_count},
        {"timeout-ms", o.timeout_ms},
    };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        snprintf(b, sizeof(b), "%ld", numbers[i].value);
        emit(ctx, numbers[i].option, b);
    }
    emit(ctx, "debug-digest", o.debug_digest_never ? "never" : "auto");
    emit(ctx, "json", o.is_json ? "true" : "false");
    return 0;
}

int verify_main(int argc, char **argv)
{
    struct verify_opts o;
    int prc = verify_parse(argc, argv, &o);
    if (prc != 0)
        return prc == 1 ? 0 : 2;

    struct rs_error err = {0};
    struct verify_side src = {.what = "source"}, dst = {.what = "target"};
    if (endpoint_parse(o.source, "RINGSYNC_SOURCE_PASSWORD", &src.seed, &err) < 0 ||
        endpoint_parse(o.target, "RINGSYNC_TARGET_PASSWORD", &dst.seed, &err) < 0) {
        rs_log("verify: %s", err.msg);
        return 2;
    }
    uint64_t t0 = mono_us();
    struct verify_config *cfg = calloc(1, sizeof(*cfg));
    RS_ASSERT(cfg != NULL);
    struct verify_worker *ws = NULL;
    size_t nws = 0;
    int code = 1;
    if (side_open(&src, (int)o.timeout_ms, &err) < 0 ||
        side_open(&dst, (int)o.timeout_ms, &err) < 0) {
        rs_log("verify: %s", err.msg);
        goto out;
    }
    if (src.seed.db >= 0 || dst.seed.db >= 0)
        rs_log("verify: the /db of a URI is ignored: every db is compared (--db-map says which "
               "goes where)");
    if (dest_route_init(&cfg->route, 1, dst.is_cluster ? &dst.topo : NULL, o.db_map,
                        DEST_ROUTE_UNMAPPED_SKIP, &err) < 0 ||
        (o.db_prefix != NULL && dest_route_set_prefix(&cfg->route, o.db_prefix, &err) < 0)) {
        rs_log("verify: %s", err.msg);
        code = 2;
        goto out;
    }
    if (o.is_full && !o.debug_digest_never &&
        (side_probe_debug(&src, (int)o.timeout_ms, &err) < 0 ||
         side_probe_debug(&dst, (int)o.timeout_ms, &err) < 0)) {
        rs_log("verify: %s", err.msg);
        goto out;
    }
    cfg->is_full = o.is_full;
    cfg->use_debug_digest = o.is_full && !o.debug_digest_never && src.has_debug && dst.has_debug;
    cfg->ttl_tolerance_ms = o.ttl_tolerance_ms;
    cfg->expiry_margin_ms = (int64_t)o.expiry_margin_s * 1000;
    cfg->passes = (unsigned)o.passes;
    cfg->pass_delay_ms = (unsigned)o.pass_delay_ms;
    cfg->scan_count = (unsigned)o.scan_count;
    cfg->timeout_ms = (int)o.timeout_ms;
    cfg->diffs_max = (size_t)o.diffs_max;
    cfg->source_eps = src.eps;
    cfg->nsource = src.neps;
    cfg->source_topo = src.is_cluster ? &src.topo : NULL;
    cfg->target_eps = dst.eps;
    cfg->ntarget = dst.neps;
    cfg->target_topo = dst.is_cluster ? &dst.topo : NULL;
    plan_dbs(cfg, &src, &dst);

    ws = calloc(src.neps + dst.neps, sizeof(*ws));
    RS_ASSERT(ws != NULL);
    for (unsigned i = 0; i < src.neps; i++)
        if (!src.is_cluster || src.topo.masters[i].nslots > 0)
            ws[nws++] = (struct verify_worker){.cfg = cfg, .node = i};
    for (unsigned i = 0; i < dst.neps; i++)
        if (!dst.is_cluster || dst.topo.masters[i].nslots > 0)
            ws[nws++] = (struct verify_worker){.cfg = cfg, .node = i, .is_reverse = true};
    unsigned nforward = 0;
    for (size_t i = 0; i < nws; i++)
        nforward += !ws[i].is_reverse;
    verify_config_init_shared(cfg, nforward);
    for (size_t i = 0; i < nws; i++)
        if (verify_worker_start(&ws[i]) < 0 && !ws[i].is_reverse)
            verify_forward_done(cfg, NULL); /* reverse workers wait for it */
    bool failed = false;
    for (size_t i = 0; i < nws; i++) {
        verify_worker_join(&ws[i]);
        if (ws[i].rc < 0) {
            rs_log("verify: %s", ws[i].err.msg);
            failed = true;
        }
    }
    if (failed) {
        rs_log("verify: could not compare every key: no verdict");
        goto out;
    }

    struct verify_report rep = {.total_us = mono_us() - t0};
    size_t ndiffs = 0;
    for (size_t i = 0; i < nws; i++) {
        const struct verify_worker *w = &ws[i];
        for (int k = 0; k < VERIFY_KINDS; k++)
            rep.overflow[k] += w->overflow[k];
        for (size_t d = 0; d < w->ndiffs; d++)
            rep.counts[w->diffs[d].kind]++;
        ndiffs += w->ndiffs;
        if (w->is_reverse)
            rep.target_keys += w->keys;
        else
            rep.source_keys += w->keys;
        rep.not_compared += w->not_compared;
        if (w->pass1_us > rep.pass1_us)
            rep.pass1_us = w->pass1_us;
        if (w->passes_run > rep.passes)
            rep.passes = w->passes_run;
    }
    const struct verify_diff **all = calloc(ndiffs ? ndiffs : 1, sizeof(*all));
    RS_ASSERT(all != NULL);
    size_t n = 0;
    for (size_t i = 0; i < nws; i++)
        for (size_t d = 0; d < ws[i].ndiffs; d++)
            all[n++] = &ws[i].diffs[d];
    qsort(all, n, sizeof(*all), diff_order);
    rep.examples = all;
    rep.nexamples = n < (size_t)o.examples ? n : (size_t)o.examples;
    if (o.is_json)
        report_json(&rep, &o, stdout);
    else
        report_text(&rep, &o, stdout);
    fflush(stdout);
    free(all);
    code = report_total(&rep) == 0 ? 0 : 1;

out:
    for (size_t i = 0; i < nws; i++)
        verify_worker_deinit(&ws[i]);
    free(ws);
    verify_config_deinit(cfg);
    free(cfg);
    side_deinit(&src);
    side_deinit(&dst);
    return code;
}
