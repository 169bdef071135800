/* dest_route.c - the db map and its text form (see dest_route.h). */
#include "dest_route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a db number at *p (digits only); -1 when there is none or it is
 * past max. */
static long read_db(const char **p, long max)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
        s++;
    }
    *p = s;
    return v;
}

static int parse_map(struct dest_route *r, const char *text, struct rs_error *err)
{
    const char *p = text;
    for (;;) {
        const char *item = p;
        size_t item_len = strcspn(item, ",");
        long src = read_db(&p, DEST_ROUTE_MAX_DBS - 1);
        long dst = -1;
        if (src >= 0 && *p == ':') {
            p++;
            dst = read_db(&p, 32767);
        }
        if (src < 0 || dst < 0 || (*p != ',' && *p != '\0')) {
            rs_error_set(err, RS_E_FORMAT, 0,
                         "--db-map: '%.*s' is not SRC:DST (two database numbers, the source's "
                         "below %d)",
                         (int)item_len, item, DEST_ROUTE_MAX_DBS);
            return -EINVAL;
        }
        if (r->topo != NULL && dst != 0) {
            rs_error_set(err, RS_E_FORMAT, 0,
                         "--db-map: '%.*s': a cluster has database 0 only, so every source "
                         "database must map to 0",
                         (int)item_len, item);
            return -EINVAL;
        }
        if (r->db_map[src] >= 0 && r->db_map[src] != dst) {
            rs_error_set(err, RS_E_FORMAT, 0, "--db-map: source database %ld is mapped twice", src);
            return -EINVAL;
        }
        r->db_map[src] = (int16_t)dst;
        if (*p == '\0')
            return 0;
        p++;
    }
}

int dest_route_init(struct dest_route *r, unsigned nworkers, const struct cluster_topology *topo,
                    const char *db_map, enum dest_route_unmapped unmapped, struct rs_error *err)
{
    memset(r, 0, sizeof(*r));
    r->nworkers = nworkers ? nworkers : 1;
    r->topo = topo;
    r->node_cap = topo ? (unsigned)topo->masters_cap : 1;
    r->unmapped = unmapped;
    for (unsigned i = 0; i < DEST_ROUTE_MAX_DBS; i++)
        r->db_map[i] = -1;
    if (db_map != NULL)
        return parse_map(r, db_map, err);
    if (topo != NULL)
        r->db_map[0] = 0;
    else
        r->identity = true;
    return 0;
}

int dest_route_set_prefix(struct dest_route *r, const char *pattern, struct rs_error *err)
{
    if (strstr(pattern, "{N}") == NULL) {
        rs_error_set(err, RS_E_FORMAT, 0,
                     "--db-prefix '%s': the pattern needs {N}, the database's number, or the "
                     "databases' keys would collide",
                     pattern);
        return -EINVAL;
    }
    r->prefix = pattern;
    r->identity = false;
    for (unsigned i = 0; i < DEST_ROUTE_MAX_DBS; i++)
        r->db_map[i] = 0;
    return 0;
}

size_t dest_route_prefix(const struct dest_route *r, int64_t db, char *out, size_t cap)
{
    if (r->prefix == NULL)
        return 0;
    const char *n = strstr(r->prefix, "{N}");
    int k = snprintf(out, cap, "%.*s%lld%s", (int)(n - r->prefix), r->prefix, (long long)db, n + 3);
    return k < 0 || (size_t)k >= cap ? 0 : (size_t)k;
}

void dest_route_describe(const struct dest_route *r, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (r->identity) {
        snprintf(out, cap, "every database to itself");
        return;
    }
    for (unsigned i = 0; i < DEST_ROUTE_MAX_DBS && n < cap; i++) {
        if (r->db_map[i] < 0)
            continue;
        int k = snprintf(out + n, cap - n, "%s%u:%d", n ? "," : "", i, r->db_map[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
}
