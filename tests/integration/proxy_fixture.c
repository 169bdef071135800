/* proxy_fixture.c - a destination behind nutcracker (proxy_fixture.h). */
#include "proxy_fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#define PROXY_FIXTURE_PORT_ATTEMPTS 5
#define PROXY_FIXTURE_PROBES        16 /* per server */
#define PROXY_FIXTURE_BATCH         1000
#define PROXY_FIXTURE_NUTCRACKER    "/usr/sbin/nutcracker" /* when it is not in PATH */

static void pf_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long pf_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A name that hashes well (fnv1a_64 + ketama put names differing only in
 * their last characters together, PROXY_DESTINATION.md §1). */
static const char *probe_name(char *buf, size_t cap, unsigned i)
{
    uint64_t x = (uint64_t)i + 0x9e3779b97f4a7c15ull; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    snprintf(buf, cap, "rs-proxy-fixture-probe:%016llx", (unsigned long long)x);
    return buf;
}

const char *proxy_fixture_log_tail(const struct proxy_fixture *pf, char *buf, size_t cap)
{
    return fixture_file_tail(pf->log_path, buf, cap);
}

/* "server 1 (127.0.0.1:p)" in buf. */
static const char *server_name(const struct proxy_fixture *pf, int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "server %d (127.0.0.1:%d)", i, pf->servers[i]->port);
    return buf;
}

/* Writes the pool's YAML to pf->conf_path. */
static void write_conf(const struct proxy_fixture *pf, const struct proxy_fixture_opts *opts)
{
    FILE *f = fopen(pf->conf_path, "w");
    cr_assert(f != NULL, "cannot write %s: %s", pf->conf_path, strerror(errno));
    fprintf(f,
            "ringsync_fixture:\n"
            "  listen: 127.0.0.1:%d\n"
            "  hash: fnv1a_64\n"
            "  distribution: ketama\n"
            "  redis: true\n"
            "  auto_eject_hosts: %s\n"
            "  server_connections: %d\n"
            "  timeout: %d\n",
            pf->port, opts->auto_eject_hosts ? "true" : "false",
            opts->server_connections > 0 ? opts->server_connections : 1,
            opts->timeout_ms > 0 ? opts->timeout_ms : 30000);
    if (opts->auto_eject_hosts) /* nutcracker's defaults: 30 s, 2 failures */
        fprintf(f, "  server_retry_timeout: 1000\n  server_failure_limit: 1\n");
    if (pf->hash_tag[0] != '\0')
        fprintf(f, "  hash_tag: \"%s\"\n", pf->hash_tag);
    fprintf(f, "  servers:\n");
    for (int i = 0; i < pf->nservers; i++)
        fprintf(f, "   - 127.0.0.1:%d:1 s%d\n", pf->servers[i]->port, i);
    cr_assert(fclose(f) == 0, "cannot write %s: %s", pf->conf_path, strerror(errno));
}

/* Starts nutcracker on pf's configuration (its log truncated first). */
static void start_nutcracker(struct proxy_fixture *pf)
{
    char stats_port[16];
    snprintf(stats_port, sizeof(stats_port), "%d", pf->stats_port);
    unlink(pf->log_path);
    const char *argv[] = {"nutcracker", "-c",       pf->conf_path, "-o",        pf->log_path,
                          "-s",         stats_port, "-a",          "127.0.0.1", NULL};
    int err = 0;
    pf->nutcracker = program_start(argv, NULL, &err);
    if (pf->nutcracker == NULL && err == ENOENT) {
        argv[0] = PROXY_FIXTURE_NUTCRACKER;
        pf->nutcracker = program_start(argv, NULL, &err);
    }
    cr_assert(pf->nutcracker != NULL,
              "cannot start nutcracker (Debian package nutcracker, tools/lib.sh): %s",
              strerror(err));
}

static redisReply *read_reply(redisContext *c)
{
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK)
        return NULL;
    return r;
}

/* Which servers hold `name`, directly (EXISTS on each): a bit mask. */
static unsigned holders(const struct proxy_fixture *pf, const char *name, size_t len)
{
    unsigned mask = 0;
    for (int i = 0; i < pf->nservers; i++) {
        redisReply *r = redis_fixture_command(pf->servers[i]->ctx, "EXISTS %b", name, len);
        cr_assert(r->type == REDIS_REPLY_INTEGER, "EXISTS on server %d: not an integer", i);
        if (r->integer == 1)
            mask |= 1u << i;
        freeReplyObject(r);
    }
    return mask;
}

/* SET, GET and DEL of the probe keys through c: 0 when all worked; -1 with
 * why filled when the proxy is not usable yet. Fails the test when the
 * probes did not land one per server on every server. */
static int probe(const struct proxy_fixture *pf, redisContext *c, char *why, size_t cap)
{
    unsigned n = (unsigned)pf->nservers * PROXY_FIXTURE_PROBES;
    char name[64];
    const char *steps[] = {"SET %s %s", "GET %s", "DEL %s"};
    for (int step = 0; step < 3; step++) {
        for (unsigned i = 0; i < n; i++)
            redisAppendCommand(c, steps[step], probe_name(name, sizeof(name), i), name);
        for (unsigned i = 0; i < n; i++) {
            redisReply *r = read_reply(c);
            probe_name(name, sizeof(name), i);
            bool ok = r != NULL &&
                      (step == 0   ? r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0
                       : step == 1 ? r->type == REDIS_REPLY_STRING && strcmp(r->str, name) == 0
                                   : r->type == REDIS_REPLY_INTEGER && r->integer == 1);
            if (!ok) {
                snprintf(why, cap, "%.3s %s through nutcracker: %s", steps[step], name,
                         r == NULL                        ? c->errstr
                         : r->type == REDIS_REPLY_ERROR   ? r->str
                         : r->type == REDIS_REPLY_NIL     ? "nil"
                         : r->type == REDIS_REPLY_INTEGER ? "an integer not 1"
                         : r->type == REDIS_REPLY_STRING  ? "another value"
                                                          : "unexpected reply");
                freeReplyObject(r);
                return -1;
            }
            freeReplyObject(r);
        }
        if (step != 0)
            continue;
        /* Written: each probe on one server, every server with some. */
        unsigned used = 0;
        for (unsigned i = 0; i < n; i++) {
            unsigned mask = holders(pf, probe_name(name, sizeof(name), i), strlen(name));
            cr_assert(mask != 0 && (mask & (mask - 1)) == 0,
                      "probe %s written through nutcracker is on %s server (mask 0x%x)", name,
                      mask == 0 ? "no" : "more than one", mask);
            used |= mask;
        }
        cr_assert(used == (1u << pf->nservers) - 1,
                  "%u probe keys through nutcracker reached only the servers of mask 0x%x of %d", n,
                  used, pf->nservers);
    }
    return 0;
}

/* 0: usable; 1: nutcracker exited; -1: not usable within timeout_ms (why
 * says the last probe's failure). */
static int wait_usable(struct proxy_fixture *pf, int timeout_ms, char *why, size_t cap)
{
    long long deadline = pf_monotonic_ms() + timeout_ms;
    snprintf(why, cap, "nutcracker did not accept a connection on port %d", pf->port);
    for (;;) {
        if (program_has_exited(pf->nutcracker))
            return 1;
        struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", pf->port, tv);
        if (c != NULL && !c->err) {
            redisSetTimeout(c, (struct timeval){.tv_sec = 5});
            int r = probe(pf, c, why, cap);
            redisFree(c);
            if (r == 0)
                return 0;
        } else {
            redisFree(c);
        }
        if (pf_monotonic_ms() >= deadline)
            return -1;
        pf_sleep_ms(20);
    }
}

struct proxy_fixture *proxy_fixture_start(const struct proxy_fixture_opts *opts)
{
    cr_assert(opts != NULL && opts->servers >= 1 && opts->servers <= PROXY_FIXTURE_MAX_SERVERS,
              "a proxy fixture has 1..%d servers", PROXY_FIXTURE_MAX_SERVERS);
    const char *tag = opts->hash_tag;
    cr_assert(tag == NULL || (strlen(tag) == 2 && strpbrk(tag, "\"\\") == NULL),
              "hash_tag '%s': two characters, no quote or backslash", tag);
    struct proxy_fixture *pf = calloc(1, sizeof(*pf));
    cr_assert(pf != NULL);
    snprintf(pf->hash_tag, sizeof(pf->hash_tag), "%s", tag != NULL ? tag : "");
    pf->nservers = opts->servers;
    static const char *const extra[] = {"--enable-debug-command", "yes", NULL};
    struct redis_fixture_opts so = {.extra_args = extra};
    for (int i = 0; i < pf->nservers; i++)
        pf->servers[i] = redis_fixture_start(&so);
    redis_fixture_path(pf->servers[0], "nutcracker.yml", pf->conf_path, sizeof(pf->conf_path));
    redis_fixture_path(pf->servers[0], "nutcracker.log", pf->log_path, sizeof(pf->log_path));

    int timeout_ms = opts->ready_timeout_ms > 0 ? opts->ready_timeout_ms : 10000;
    for (int attempt = 1;; attempt++) {
        pf->port = fixture_free_port();
        do
            pf->stats_port = fixture_free_port();
        while (pf->stats_port == pf->port);
        write_conf(pf, opts);
        start_nutcracker(pf);
        char why[512];
        int r = wait_usable(pf, timeout_ms, why, sizeof(why));
        if (r == 0)
            return pf;
        struct program_result res;
        program_finish(pf->nutcracker, SIGKILL, 5000, &res);
        pf->nutcracker = NULL;
        char tail[2048], how[64];
        proxy_fixture_log_tail(pf, tail, sizeof(tail));
        if (r == 1 && attempt < PROXY_FIXTURE_PORT_ATTEMPTS &&
            strstr(tail, "Address already in use") != NULL) {
            program_result_deinit(&res);
            continue;
        }
        cr_assert_fail("nutcracker on port %d (stats %d) %s: %s; its log (%s):\n%s%s", pf->port,
                       pf->stats_port, r == 1 ? "exited" : "was not usable in time",
                       r == 1 ? program_result_describe(&res, how, sizeof(how)) : why, pf->log_path,
                       tail, res.err != NULL ? res.err : "");
    }
}

void proxy_fixture_stop(struct proxy_fixture *pf)
{
    if (pf == NULL)
        return;
    if (pf->nutcracker != NULL) {
        struct program_result r;
        program_finish(pf->nutcracker, SIGTERM, 5000, &r);
        program_result_deinit(&r);
    }
    for (int i = 0; i < pf->nservers; i++)
        redis_fixture_stop(pf->servers[i]);
    free(pf);
}

redisContext *proxy_fixture_connect(const struct proxy_fixture *pf)
{
    struct timeval tv = {.tv_sec = 30};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", pf->port, tv);
    cr_assert(c != NULL && !c->err, "cannot connect to nutcracker on port %d: %s", pf->port,
              c != NULL ? c->errstr : "out of memory");
    return c;
}

int proxy_fixture_server_of(const struct proxy_fixture *pf, const char *key, size_t len)
{
    unsigned mask = holders(pf, key, len);
    if (mask == 0)
        return -1;
    int first = __builtin_ctz(mask);
    if ((mask & (mask - 1)) != 0) {
        char e[160], a[64], b[64];
        cr_assert_fail("key '%s' is on %s and %s (and maybe more): behind a proxy a key is on "
                       "one server",
                       model_escape(e, sizeof(e), key, len, 64),
                       server_name(pf, first, a, sizeof(a)),
                       server_name(pf, __builtin_ctz(mask & (mask - 1)), b, sizeof(b)));
    }
    return first;
}

/* ------------------------------------------------ writing to both sides */

void proxy_fixture_writer_init(struct proxy_fixture_writer *w, const struct proxy_fixture *pf,
                               const struct redis_fixture *oracle)
{
    memset(w, 0, sizeof(*w));
    w->pf = pf;
    w->proxy = proxy_fixture_connect(pf);
    w->oracle = redis_fixture_connect(oracle);
}

/* Reads one reply of each side for command number n. */
static void writer_read(struct proxy_fixture_writer *w, size_t n)
{
    redisReply *p = read_reply(w->proxy);
    if (p == NULL) {
        char tail[2048];
        cr_assert_fail("no reply through nutcracker (port %d) from command %zu on (%zu sent): "
                       "%s. nutcracker closes the connection on a command it refuses "
                       "(PROXY_DESTINATION.md §1), and the replies still due with it: the "
                       "refused one is command %zu or later; its log names it:\n%s",
                       w->pf->port, n, w->sent, w->proxy->errstr, n,
                       proxy_fixture_log_tail(w->pf, tail, sizeof(tail)));
    }
    cr_assert(p->type != REDIS_REPLY_ERROR, "command %zu through nutcracker: error reply: %s", n,
              p->str);
    freeReplyObject(p);
    redisReply *o = read_reply(w->oracle);
    cr_assert(o != NULL, "command %zu to the oracle: I/O error: %s", n, w->oracle->errstr);
    cr_assert(o->type != REDIS_REPLY_ERROR, "command %zu to the oracle: error reply: %s", n,
              o->str);
    freeReplyObject(o);
}

void proxy_fixture_writer_flush(struct proxy_fixture_writer *w)
{
    for (; w->pending > 0; w->pending--)
        writer_read(w, w->sent - w->pending + 1);
}

static void writer_sent(struct proxy_fixture_writer *w, int rc_proxy, int rc_oracle)
{
    cr_assert(rc_proxy == REDIS_OK && rc_oracle == REDIS_OK, "cannot append a command: %s%s",
              w->proxy->errstr, w->oracle->errstr);
    w->pending++;
    w->sent++;
    if (w->pending >= PROXY_FIXTURE_BATCH)
        proxy_fixture_writer_flush(w);
}

void proxy_fixture_write(struct proxy_fixture_writer *w, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    cr_assert(len > 0, "cannot format '%s'", fmt);
    int a = redisAppendFormattedCommand(w->proxy, cmd, (size_t)len);
    int b = redisAppendFormattedCommand(w->oracle, cmd, (size_t)len);
    redisFreeCommand(cmd);
    writer_sent(w, a, b);
}

void proxy_fixture_write_argv(struct proxy_fixture_writer *w, int argc, const char **argv,
                              const size_t *argvlen)
{
    int a = redisAppendCommandArgv(w->proxy, argc, argv, argvlen);
    int b = redisAppendCommandArgv(w->oracle, argc, argv, argvlen);
    writer_sent(w, a, b);
}

void proxy_fixture_writer_deinit(struct proxy_fixture_writer *w)
{
    proxy_fixture_writer_flush(w);
    redisFree(w->proxy);
    redisFree(w->oracle);
    w->proxy = w->oracle = NULL;
}

/* ------------------------------------------------ the oracle comparison */

static void placement_report(struct proxy_comparison *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void placement_report(struct proxy_comparison *c, const char *fmt, ...)
{
    size_t used = strlen(c->placement);
    if (used + 1 >= sizeof(c->placement))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->placement + used, sizeof(c->placement) - used, fmt, ap);
    va_end(ap);
}

/* "0 (127.0.0.1:p) and 2 (127.0.0.1:q)": the servers of mask. */
static const char *servers_named(const struct proxy_fixture *pf, unsigned mask, char *buf,
                                 size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < pf->nservers; i++) {
        if ((mask & (1u << i)) == 0)
            continue;
        mask &= ~(1u << i);
        int w = snprintf(buf + used, cap - used, "%s%d (127.0.0.1:%d)",
                         used == 0   ? ""
                         : mask == 0 ? " and "
                                     : ", ",
                         i, pf->servers[i]->port);
        if (w > 0 && used + (size_t)w < cap)
            used += (size_t)w;
    }
    return buf;
}

#define PLACEMENT_REPORT_LIMIT 20

/* EXISTS through the proxy for every key of pl, pipelined; a key not found
 * there is misrouted. */
static void check_routes(const struct proxy_fixture *pf, const struct dataset_placement *pl,
                         struct proxy_comparison *c)
{
    redisContext *p = proxy_fixture_connect(pf);
    for (size_t from = 0; from < pl->nkeys; from += PROXY_FIXTURE_BATCH) {
        size_t to = pl->nkeys - from < PROXY_FIXTURE_BATCH ? pl->nkeys : from + PROXY_FIXTURE_BATCH;
        for (size_t k = from; k < to; k++)
            cr_assert(redisAppendCommand(p, "EXISTS %b", pl->keys[k].p, pl->keys[k].len) ==
                      REDIS_OK);
        for (size_t k = from; k < to; k++) {
            redisReply *r = read_reply(p);
            if (r == NULL) {
                char tail[2048];
                cr_assert_fail("EXISTS through nutcracker (port %d): I/O error: %s; its log:\n%s",
                               pf->port, p->errstr, proxy_fixture_log_tail(pf, tail, sizeof(tail)));
            }
            if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
                char e[160], s[160];
                if (++c->misrouted <= PLACEMENT_REPORT_LIMIT)
                    placement_report(
                        c,
                        "key '%s' is on server %s, but EXISTS through the proxy answers %s%s: "
                        "it routes the key elsewhere\n",
                        model_escape(e, sizeof(e), pl->keys[k].p, pl->keys[k].len, 64),
                        servers_named(pf, pl->held[k], s, sizeof(s)),
                        r->type == REDIS_REPLY_INTEGER ? "" : "the error ",
                        r->type == REDIS_REPLY_INTEGER ? (r->integer == 0 ? "0" : "not 1")
                        : r->type == REDIS_REPLY_ERROR ? r->str
                                                       : "(not an integer)");
            }
            freeReplyObject(r);
        }
    }
    redisFree(p);
}

void proxy_compare(const struct proxy_fixture *pf, struct redis_fixture *oracle,
                   struct proxy_comparison *c)
{
    memset(c, 0, sizeof(*c));
    struct dataset_placement pl;
    dataset_compare_servers(pf->servers, (size_t)pf->nservers, oracle, &c->data, &pl);
    for (size_t k = 0; k < pl.nkeys; k++) {
        if ((pl.held[k] & (pl.held[k] - 1)) == 0)
            continue;
        char e[160], s[160];
        if (++c->duplicated <= PLACEMENT_REPORT_LIMIT)
            placement_report(c, "key '%s' is on servers %s: one too many\n",
                             model_escape(e, sizeof(e), pl.keys[k].p, pl.keys[k].len, 64),
                             servers_named(pf, pl.held[k], s, sizeof(s)));
    }
    check_routes(pf, &pl, c);
    if (c->duplicated > PLACEMENT_REPORT_LIMIT || c->misrouted > PLACEMENT_REPORT_LIMIT)
        placement_report(c, "... (the first %d of each listed)\n", PLACEMENT_REPORT_LIMIT);
    dataset_placement_deinit(&pl);
}

void proxy_comparison_deinit(struct proxy_comparison *c)
{
    dataset_comparison_deinit(&c->data);
}

void assert_proxy_equals(const struct proxy_fixture *pf, struct redis_fixture *oracle,
                         const char *oracle_name, const char *what)
{
    struct proxy_comparison c;
    proxy_compare(pf, oracle, &c);
    const struct dataset_comparison *d = &c.data;
    cr_assert(d->oracle_keys_outside_db0 == 0,
              "%s: the %s holds %zu keys outside db 0 (%s), which a proxy (db 0 only) cannot "
              "hold: the comparison is meaningless",
              what, oracle_name, d->oracle_keys_outside_db0, d->oracle_dbs_outside);
    cr_assert(d->differences == 0 && d->target_keys == d->oracle_keys,
              "%s: the servers behind the proxy (%s) differ from the %s's db 0 in %zu keys (%zu "
              "compared; servers %zu keys, %s %zu):\n%s"
              "where the keys are: %zu on more than one server, %zu not where the proxy routes "
              "them\n%s",
              what, d->masters, oracle_name, d->differences, d->keys_compared, d->target_keys,
              oracle_name, d->oracle_keys, d->diff->report, c.duplicated, c.misrouted, c.placement);
    cr_assert(d->same_digest, "%s: %s (servers %s)", what, d->digests, d->masters);
    cr_assert(c.duplicated == 0 && c.misrouted == 0,
              "%s: %zu keys on more than one server, %zu not where the proxy (port %d) routes "
              "them (%s):\n%s",
              what, c.duplicated, c.misrouted, pf->port, d->masters, c.placement);
    cr_assert(d->same_functions, "%s: FUNCTION LIST differs (see the log)", what);
    cr_assert(d->keys_compared > 0, "%s: nothing compared", what);
    cr_log_info("%s: the servers behind the proxy (%s) equal the %s, each key on the server the "
                "proxy routes it to: %zu keys; %s",
                what, d->masters, oracle_name, d->keys_compared, d->digests);
    proxy_comparison_deinit(&c);
}

/* A string key some server holds: its name into key (NUL-terminated, its
 * length returned) and its server into *server. */
static size_t find_a_string(const struct proxy_fixture *pf, char *key, size_t cap, int *server)
{
    for (int i = 0; i < pf->nservers; i++) {
        char cursor[32] = "0";
        do {
            redisReply *r = redis_fixture_command(pf->servers[i]->ctx,
                                                  "SCAN %s COUNT 1000 TYPE string", cursor);
            cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN: bad reply");
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            const redisReply *keys = r->element[1];
            if (keys->elements > 0 && keys->element[0]->len < cap) {
                size_t len = keys->element[0]->len;
                memcpy(key, keys->element[0]->str, len + 1);
                freeReplyObject(r);
                *server = i;
                return len;
            }
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
    }
    cr_assert_fail("no server behind the proxy holds a string key to change");
    return 0;
}

/* Copies key from server `from` to server `to` (DUMP, RESTORE ... ABSTTL). */
static void copy_key(const struct proxy_fixture *pf, const char *key, size_t len, int from, int to)
{
    redisContext *a = pf->servers[from]->ctx, *b = pf->servers[to]->ctx;
    redisReply *d = redis_fixture_command(a, "DUMP %b", key, len);
    redisReply *t = redis_fixture_command(a, "PEXPIRETIME %b", key, len);
    cr_assert(d->type == REDIS_REPLY_STRING && t->type == REDIS_REPLY_INTEGER,
              "DUMP/PEXPIRETIME of a key server %d holds", from);
    redis_fixture_exec(b, "RESTORE %b %lld %b REPLACE ABSTTL", key, len,
                       t->integer > 0 ? t->integer : 0LL, d->str, d->len);
    freeReplyObject(d);
    freeReplyObject(t);
}

void assert_proxy_comparison_catches_a_change(const struct proxy_fixture *pf,
                                              struct redis_fixture *oracle)
{
    cr_assert(pf->nservers >= 2, "moving a key needs two servers, the fixture has %d",
              pf->nservers);
    char key[256], e[160];
    int s = 0;
    size_t len = find_a_string(pf, key, sizeof(key), &s);
    int other = (s + 1) % pf->nservers;
    model_escape(e, sizeof(e), key, len, 64);
    redisContext *own = pf->servers[s]->ctx;
    struct proxy_comparison c;

    /* 1. A value changed: one difference of the data, placement fine. */
    redisReply *orig = redis_fixture_command(own, "GET %b", key, len);
    cr_assert(orig->type == REDIS_REPLY_STRING);
    redis_fixture_exec(own, "SET %b %s KEEPTTL", key, len,
                       strcmp(orig->str, "changed") == 0 ? "changed again" : "changed");
    proxy_compare(pf, oracle, &c);
    cr_assert(c.data.differences == 1 && strstr(c.data.diff->report, e) != NULL,
              "the proxy comparison saw %zu differences, not the one made ('%s' changed on "
              "server %d):\n%s",
              c.data.differences, e, s, c.data.diff->report);
    cr_assert(!c.data.has_key_digests ||
                  (!c.data.same_digest && strstr(c.data.digests, " 1 of ") != NULL),
              "the per-key digests did not see the change of '%s': %s", e, c.data.digests);
    cr_assert(c.duplicated == 0 && c.misrouted == 0,
              "a changed value made %zu duplicated and %zu misrouted keys:\n%s", c.duplicated,
              c.misrouted, c.placement);
    proxy_comparison_deinit(&c);
    redis_fixture_exec(own, "SET %b %b KEEPTTL", key, len, orig->str, orig->len);
    freeReplyObject(orig);
    cr_log_info("the proxy comparison caught the change of '%s' on server %d", e, s);

    /* 2. Moved to another server: one misrouted key, the data the same. */
    copy_key(pf, key, len, s, other);
    redis_fixture_exec(own, "DEL %b", key, len);
    proxy_compare(pf, oracle, &c);
    cr_assert(c.misrouted == 1 && c.duplicated == 0 && strstr(c.placement, e) != NULL,
              "'%s' moved from server %d to %d: %zu misrouted, %zu duplicated keys seen:\n%s", e, s,
              other, c.misrouted, c.duplicated, c.placement);
    cr_assert(c.data.differences == 0 && c.data.same_digest,
              "'%s' moved from server %d to %d changed the data: %s\n%s", e, s, other,
              c.data.digests, c.data.diff->report);
    cr_log_info("the proxy comparison caught '%s' moved: %s", e, c.placement);
    proxy_comparison_deinit(&c);
    copy_key(pf, key, len, other, s);
    redis_fixture_exec(pf->servers[other]->ctx, "DEL %b", key, len);

    /* 3. Copied to another server: one duplicated key. */
    copy_key(pf, key, len, s, other);
    proxy_compare(pf, oracle, &c);
    cr_assert(c.duplicated == 1 && c.misrouted == 0 && strstr(c.placement, e) != NULL,
              "'%s' copied from server %d to %d: %zu duplicated, %zu misrouted keys seen:\n%s", e,
              s, other, c.duplicated, c.misrouted, c.placement);
    cr_log_info("the proxy comparison caught '%s' on two servers: %s", e, c.placement);
    proxy_comparison_deinit(&c);
    redis_fixture_exec(pf->servers[other]->ctx, "DEL %b", key, len);
}
