/* cluster_fixture.c - a real Redis Cluster on loopback (see the header for
 * the order of its steps). */
#include "cluster_fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "slot.h"

#define CLUSTER_FIXTURE_START_ATTEMPTS 5 /* a bus port taken between pick and bind */

static void cf_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A port nobody listens on right now, for a node's cluster bus. */
static int cf_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                  getsockname(fd, (struct sockaddr *)&sa, &sl) == 0,
              "bind: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

static void cf_start_node(struct cluster_fixture *c, int i)
{
    char why[2048] = "";
    for (int attempt = 1; attempt <= CLUSTER_FIXTURE_START_ATTEMPTS; attempt++) {
        char cport[16];
        c->cluster_ports[i] = cf_free_port();
        snprintf(cport, sizeof(cport), "%d", c->cluster_ports[i]);
        const char *extra[] = {"--cluster-enabled",
                               "yes",
                               "--cluster-config-file",
                               "nodes.conf",
                               "--cluster-node-timeout",
                               "2000",
                               "--cluster-port",
                               cport,
                               "--enable-debug-command",
                               "yes",
                               NULL};
        struct redis_fixture_opts o = {.extra_args = extra};
        c->nodes[i] = redis_fixture_try_start(&o, why, sizeof(why));
        if (c->nodes[i] != NULL)
            return;
    }
    cr_assert_fail("cannot start cluster node %d: %s", i, why);
}

const char *cluster_fixture_node_name(const struct cluster_fixture *c, int i, char *buf, size_t cap)
{
    cr_assert(i >= 0 && i < c->nnodes);
    snprintf(buf, cap, "127.0.0.1:%d", c->nodes[i]->port);
    return buf;
}

/* CLUSTER INFO's field of node i into buf ("" if absent). */
static const char *cf_cluster_info(const struct cluster_fixture *c, int i, const char *field,
                                   char *buf, size_t cap)
{
    redisReply *r = redis_fixture_command(c->nodes[i]->ctx, "CLUSTER INFO");
    buf[0] = '\0';
    size_t flen = strlen(field);
    for (const char *s = r->str; s != NULL && *s != '\0';) {
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        if (len > flen && memcmp(s, field, flen) == 0 && s[flen] == ':') {
            size_t v = len - flen - 1;
            if (v > 0 && s[flen + 1 + v - 1] == '\r')
                v--;
            if (v >= cap)
                v = cap - 1;
            memcpy(buf, s + flen + 1, v);
            buf[v] = '\0';
            break;
        }
        s = eol ? eol + 1 : NULL;
    }
    freeReplyObject(r);
    return buf;
}

/* True when node i's CLUSTER NODES shows node r as a replica of its master. */
static bool cf_sees_replica(const struct cluster_fixture *c, int i, int r)
{
    redisReply *rep = redis_fixture_command(c->nodes[i]->ctx, "CLUSTER NODES");
    bool ok = false;
    for (const char *s = rep->str; s != NULL && *s != '\0' && !ok;) {
        const char *eol = strchr(s, '\n');
        char line[512];
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        if (len >= sizeof(line))
            len = sizeof(line) - 1;
        memcpy(line, s, len);
        line[len] = '\0';
        char id[64], addr[128], flags[128], master[64];
        if (sscanf(line, "%63s %127s %127s %63s", id, addr, flags, master) == 4 &&
            strcmp(id, c->ids[r]) == 0)
            ok = strstr(flags, "slave") != NULL && strstr(flags, "handshake") == NULL &&
                 strstr(flags, "noaddr") == NULL && strstr(flags, "fail") == NULL &&
                 strcmp(master, c->ids[c->master_of[r]]) == 0;
        s = eol ? eol + 1 : NULL;
    }
    freeReplyObject(rep);
    return ok;
}

/* What is not ready yet, into why; true when all is. */
static bool cf_is_ready(const struct cluster_fixture *c, char *why, size_t cap)
{
    char v[32], want[32];
    const char *state = c->assigned == 16384 ? "ok" : "fail";
    for (int i = 0; i < c->nnodes; i++) {
        if (strcmp(cf_cluster_info(c, i, "cluster_state", v, sizeof(v)), state) != 0) {
            snprintf(why, cap, "node %d says cluster_state:%s, not %s", i, v, state);
            return false;
        }
        snprintf(want, sizeof(want), "%d", c->assigned);
        if (strcmp(cf_cluster_info(c, i, "cluster_slots_assigned", v, sizeof(v)), want) != 0) {
            snprintf(why, cap, "node %d knows %s assigned slots, not %s", i, v, want);
            return false;
        }
        for (int r = c->nmasters; r < c->nnodes; r++)
            if (!cf_sees_replica(c, i, r)) {
                snprintf(why, cap, "node %d does not see node %d as a replica of node %d", i, r,
                         c->master_of[r]);
                return false;
            }
    }
    for (int r = c->nmasters; r < c->nnodes; r++) {
        char link[16] = "", syncing[16] = "";
        redis_fixture_info(c->nodes[r]->ctx, "replication", "master_link_status", link,
                           sizeof(link));
        redis_fixture_info(c->nodes[r]->ctx, "replication", "master_sync_in_progress", syncing,
                           sizeof(syncing));
        if (strcmp(link, "up") != 0 || strcmp(syncing, "0") != 0) {
            snprintf(why, cap, "replica node %d: link %s, sync in progress %s", r, link, syncing);
            return false;
        }
    }
    return true;
}

/* Waits (polling) until every node knows all nnodes. */
static void cf_wait_known(const struct cluster_fixture *c, long long deadline)
{
    char want[16], v[16];
    snprintf(want, sizeof(want), "%d", c->nnodes);
    for (int i = 0; i < c->nnodes; i++)
        while (strcmp(cf_cluster_info(c, i, "cluster_known_nodes", v, sizeof(v)), want) != 0) {
            cr_assert(fixture_now_ms() < deadline, "node %d knows %s nodes of %s", i, v, want);
            cf_sleep_ms(20);
        }
}

struct cluster_fixture *cluster_fixture_start(const struct cluster_fixture_opts *opts)
{
    cr_assert(opts->masters >= 1 && opts->replicas_per_master >= 0);
    int nnodes = opts->masters * (1 + opts->replicas_per_master);
    cr_assert(nnodes <= CLUSTER_FIXTURE_MAX_NODES, "at most %d nodes", CLUSTER_FIXTURE_MAX_NODES);
    struct cluster_fixture *c = calloc(1, sizeof(*c));
    cr_assert(c != NULL);
    c->nmasters = opts->masters;
    c->replicas_per_master = opts->replicas_per_master;
    c->nnodes = nnodes;
    long long deadline =
        fixture_now_ms() + (opts->ready_timeout_ms > 0 ? opts->ready_timeout_ms : 20000);

    /* 1. Nodes, ids, distinct config epochs. */
    for (int i = 0; i < nnodes; i++) {
        cf_start_node(c, i);
        redisReply *r = redis_fixture_command(c->nodes[i]->ctx, "CLUSTER MYID");
        cr_assert(r->type == REDIS_REPLY_STRING && r->len == 40);
        memcpy(c->ids[i], r->str, 41);
        freeReplyObject(r);
        redis_fixture_exec(c->nodes[i]->ctx, "CLUSTER SET-CONFIG-EPOCH %d", i + 1);
        c->master_of[i] =
            i < c->nmasters
                ? -1
                : (i - c->nmasters) / (c->replicas_per_master ? c->replicas_per_master : 1);
    }

    /* 2. Slots. */
    memset(c->slot_master, -1, sizeof(c->slot_master));
    struct cluster_fixture_range even[CLUSTER_FIXTURE_MAX_NODES];
    const struct cluster_fixture_range *ranges = opts->ranges;
    size_t nranges = opts->nranges;
    if (ranges == NULL) {
        for (int m = 0; m < c->nmasters; m++) {
            even[m].master = m;
            even[m].start = 16384 * m / c->nmasters;
            even[m].end = 16384 * (m + 1) / c->nmasters - 1;
        }
        ranges = even;
        nranges = (size_t)c->nmasters;
    }
    for (size_t k = 0; k < nranges; k++) {
        const struct cluster_fixture_range *g = &ranges[k];
        cr_assert(g->master >= 0 && g->master < c->nmasters && g->start >= 0 &&
                  g->start <= g->end && g->end < 16384);
        redis_fixture_exec(c->nodes[g->master]->ctx, "CLUSTER ADDSLOTSRANGE %d %d", g->start,
                           g->end);
        for (int s = g->start; s <= g->end; s++) {
            cr_assert(c->slot_master[s] < 0, "slot %d given twice", s);
            c->slot_master[s] = (signed char)g->master;
            c->assigned++;
        }
    }

    /* 3. Meet. */
    for (int i = 1; i < nnodes; i++)
        redis_fixture_exec(c->nodes[i]->ctx, "CLUSTER MEET 127.0.0.1 %d %d", c->nodes[0]->port,
                           c->cluster_ports[0]);
    cf_wait_known(c, deadline);

    /* 4. Replicas. */
    for (int r = c->nmasters; r < nnodes; r++)
        redis_fixture_exec(c->nodes[r]->ctx, "CLUSTER REPLICATE %s", c->ids[c->master_of[r]]);

    /* 5. Ready. */
    char why[256] = "";
    while (!cf_is_ready(c, why, sizeof(why))) {
        if (fixture_now_ms() >= deadline) {
            char tail[1024];
            cr_assert_fail("the cluster is not ready: %s; node 0's log:\n%s", why,
                           redis_fixture_log_tail(c->nodes[0], tail, sizeof(tail)));
        }
        cf_sleep_ms(50);
    }
    return c;
}

void cluster_fixture_stop(struct cluster_fixture *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nnodes; i++)
        redis_fixture_stop(c->nodes[i]);
    free(c);
}

unsigned cluster_fixture_keyslot(const struct cluster_fixture *c, const char *key, size_t len)
{
    redisReply *r = redis_fixture_command(c->nodes[0]->ctx, "CLUSTER KEYSLOT %b", key, len);
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer >= 0 && r->integer < 16384);
    unsigned slot = (unsigned)r->integer;
    freeReplyObject(r);
    return slot;
}

redisContext *cluster_fixture_connect_owner(const struct cluster_fixture *c, const char *key,
                                            size_t len)
{
    unsigned slot = cluster_fixture_keyslot(c, key, len);
    int m = c->slot_master[slot];
    cr_assert(m >= 0, "slot %u is not served", slot);
    return redis_fixture_connect(c->nodes[m]);
}

void cluster_fixture_writer_init(struct cluster_fixture_writer *w, const struct cluster_fixture *c)
{
    memset(w, 0, sizeof(*w));
    w->c = c;
    for (int m = 0; m < c->nmasters; m++) {
        w->ctx[m] = redis_fixture_connect(c->nodes[m]);
        redis_pipeline_init(&w->p[m], w->ctx[m], 1000);
    }
}

struct redis_pipeline *cluster_fixture_writer_for(struct cluster_fixture_writer *w, const char *key,
                                                  size_t len)
{
    unsigned slot = slot_of_key(key, len);
    int m = w->c->slot_master[slot];
    cr_assert(m >= 0, "nobody was given slot %u (key '%.*s')", slot, (int)len, key);
    return &w->p[m];
}

void cluster_fixture_writer_flush(struct cluster_fixture_writer *w)
{
    for (int m = 0; m < w->c->nmasters; m++)
        redis_pipeline_flush(&w->p[m]);
}

void cluster_fixture_writer_deinit(struct cluster_fixture_writer *w)
{
    cluster_fixture_writer_flush(w);
    for (int m = 0; m < w->c->nmasters; m++)
        redisFree(w->ctx[m]);
}

/* Node i's CLUSTER NODES text (a copy the caller frees), or NULL when it
 * does not answer (a node that was killed). */
static char *cf_cluster_nodes_of(const struct cluster_fixture *c, int i)
{
    redisContext *ctx = c->nodes[i]->ctx;
    if (ctx == NULL || ctx->err != 0)
        return NULL;
    redisReply *r = redisCommand(ctx, "CLUSTER NODES");
    char *text = NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        text = strdup(r->str);
    freeReplyObject(r);
    return text;
}

/* The fixture's node listening on port, or -1. */
static int cf_node_of_port(const struct cluster_fixture *c, int port)
{
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->port == port)
            return i;
    return -1;
}

/* One CLUSTER NODES line: "<id> <ip:port@cport[,hostname]> <flags> <master>
 * <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...", a slot
 * being "N", "A-B", or "[N->-id]" / "[N-<-id]" while it migrates. */
static void cf_view_line(const struct cluster_fixture *c, char *line, int asked,
                         struct cluster_fixture_view *v)
{
    char *save = NULL, *f[8 + 16384];
    int n = 0;
    for (char *w = strtok_r(line, " \r", &save); w != NULL && n < (int)(sizeof(f) / sizeof(*f));
         w = strtok_r(NULL, " \r", &save))
        f[n++] = w;
    if (n == 0)
        return;
    cr_assert(n >= 8, "node %d's CLUSTER NODES has a line of %d fields", asked, n);
    char flags[128];
    snprintf(flags, sizeof(flags), ",%s,", f[2]);
    if (strstr(flags, ",master,") == NULL || strstr(flags, ",fail,") != NULL ||
        strstr(flags, ",handshake,") != NULL || strstr(flags, ",noaddr,") != NULL)
        return;
    const char *colon = strrchr(strtok_r(f[1], "@,", &save), ':');
    cr_assert(colon != NULL, "node %d's CLUSTER NODES: address '%s'", asked, f[1]);
    int node = cf_node_of_port(c, atoi(colon + 1));
    cr_assert(node >= 0, "node %d's CLUSTER NODES lists a master at %s, not a node of the fixture",
              asked, f[1]);
    bool has_slots = false;
    for (int k = 8; k < n; k++) {
        if (f[k][0] == '[')
            continue;
        int a, b;
        if (sscanf(f[k], "%d-%d", &a, &b) != 2) {
            cr_assert(sscanf(f[k], "%d", &a) == 1, "node %d's CLUSTER NODES: slot field '%s'",
                      asked, f[k]);
            b = a;
        }
        cr_assert(a >= 0 && a <= b && b < 16384, "node %d's CLUSTER NODES: slots %d-%d", asked, a,
                  b);
        for (int s = a; s <= b; s++)
            v->slot_node[s] = (signed char)node;
        has_slots = true;
    }
    if (has_slots)
        v->masters[v->nmasters++] = node;
}

static int cf_int_qcmp(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Fills v from text, node `asked`'s CLUSTER NODES, and frees text. */
static void cf_view_fill(const struct cluster_fixture *c, char *text, int asked,
                         struct cluster_fixture_view *v)
{
    memset(v, 0, sizeof(*v));
    memset(v->slot_node, -1, sizeof(v->slot_node));
    v->asked = asked;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        cf_view_line(c, line, v->asked, v);
    free(text);
    qsort(v->masters, (size_t)v->nmasters, sizeof(*v->masters), cf_int_qcmp);
    for (int s = 0; s < 16384; s++)
        v->served += v->slot_node[s] >= 0;
}

void cluster_fixture_view_take(const struct cluster_fixture *c, struct cluster_fixture_view *v)
{
    char *text = NULL;
    int asked = -1;
    for (int i = 0; i < c->nnodes && text == NULL; i++)
        if ((text = cf_cluster_nodes_of(c, i)) != NULL)
            asked = i;
    cr_assert(text != NULL, "no node of the cluster answers CLUSTER NODES");
    cf_view_fill(c, text, asked, v);
}

bool cluster_fixture_view_take_from(const struct cluster_fixture *c, int i,
                                    struct cluster_fixture_view *v)
{
    cr_assert(i >= 0 && i < c->nnodes);
    char *text = cf_cluster_nodes_of(c, i);
    if (text == NULL)
        return false;
    cf_view_fill(c, text, i, v);
    return true;
}

long long cluster_fixture_data_keys(const struct cluster_fixture *c)
{
    long long n = 0;
    for (int m = 0; m < c->nmasters; m++) {
        redisReply *r = redis_fixture_command(c->nodes[m]->ctx, "DBSIZE");
        cr_assert(r->type == REDIS_REPLY_INTEGER, "DBSIZE on node %d failed", m);
        n += r->integer;
        freeReplyObject(r);
        char cursor[32] = "0";
        do {
            r = redis_fixture_command(c->nodes[m]->ctx, "SCAN %s MATCH ringsync:cp:* COUNT 1000",
                                      cursor);
            cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN on node %d failed",
                      m);
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            n -= (long long)r->element[1]->elements;
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
    }
    return n;
}
