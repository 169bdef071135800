/* fuzz_db_map.c - the text of --db-map and --db-prefix (dest_route.c)
 * against a plain model.
 *
 * Input: a flags byte, a capacity byte, then the option's text up to the
 * first NUL. Flags: bit 0 reads the text as --db-prefix's PATTERN (else as
 * --db-map), bit 1 gives a cluster destination (else standalone).
 *
 * --db-map "SRC:DST[,SRC:DST]...": accepted exactly when every item is two
 * decimal numbers, SRC below DEST_ROUTE_MAX_DBS and DST at most 32767 (0 on
 * a cluster), no SRC mapped to two DSTs; then the map is the model's, and
 * dest_route_describe's text, read as --db-map again, gives the same map.
 * --db-prefix: accepted exactly when the pattern holds "{N}"; then
 * dest_route_prefix writes the pattern with its first "{N}" as the db.
 * Texts are written into buffers of exactly `capacity` bytes: they must end
 * within them, and a write past is an ASan report.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dest_route.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_db_map: check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define DST_MAX 32767

/* A cluster with no masters: the db map only asks whether there is one. */
static struct cluster_topology cluster;

/* The model: a decimal number at s[*i..], at most max; -1 when none or past. */
static long model_number(const char *s, size_t len, size_t *i, long max)
{
    size_t start = *i;
    long v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[*i] - '0');
        if (v > max)
            return -1;
        (*i)++;
    }
    return *i > start ? v : -1;
}

static bool model_map(const char *s, size_t len, bool is_cluster, int16_t map[DEST_ROUTE_MAX_DBS])
{
    for (unsigned i = 0; i < DEST_ROUTE_MAX_DBS; i++)
        map[i] = -1;
    size_t i = 0;
    for (;;) {
        long src = model_number(s, len, &i, DEST_ROUTE_MAX_DBS - 1);
        if (src < 0 || i == len || s[i] != ':')
            return false;
        i++;
        long dst = model_number(s, len, &i, DST_MAX);
        if (dst < 0 || (i < len && s[i] != ',') || (is_cluster && dst != 0))
            return false;
        if (map[src] >= 0 && map[src] != dst)
            return false;
        map[src] = (int16_t)dst;
        if (i == len)
            return true;
        i++;
    }
}

static void check_error(int rc, const struct rs_error *err)
{
    CHECK(rc == -EINVAL && err->code == RS_E_FORMAT);
    CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL && err->msg[0] != '\0');
}

static void check_map(const char *text, size_t len, bool is_cluster, size_t cap)
{
    const struct cluster_topology *topo = is_cluster ? &cluster : NULL;
    struct dest_route r;
    struct rs_error err;
    memset(&err, 0, sizeof(err));
    int16_t model[DEST_ROUTE_MAX_DBS];
    bool valid = model_map(text, len, is_cluster, model);
    int rc = dest_route_init(&r, 2, topo, text, DEST_ROUTE_UNMAPPED_STOP, &err);
    if (!valid) {
        check_error(rc, &err);
        return;
    }
    CHECK(rc == 0 && !r.identity);
    CHECK(memcmp(r.db_map, model, sizeof(model)) == 0);
    for (int64_t db = -1; db <= DEST_ROUTE_MAX_DBS; db++)
        CHECK(dest_route_db(&r, db) == (db >= 0 && db < DEST_ROUTE_MAX_DBS ? model[db] : -1));

    /* the description reads back as the same map */
    static char full[DEST_ROUTE_MAX_DBS * 12];
    dest_route_describe(&r, full, sizeof(full));
    CHECK(memchr(full, '\0', sizeof(full)) != NULL);
    struct dest_route back;
    CHECK(dest_route_init(&back, 2, topo, full, DEST_ROUTE_UNMAPPED_STOP, &err) == 0);
    CHECK(memcmp(back.db_map, r.db_map, sizeof(r.db_map)) == 0);

    /* cut to cap bytes: a prefix of it, ended within them */
    char *cut = malloc(cap);
    CHECK(cut != NULL);
    dest_route_describe(&r, cut, cap);
    size_t n = strnlen(cut, cap);
    CHECK(n < cap && strncmp(cut, full, n) == 0);
    free(cut);
}

static void check_prefix(const char *pattern, bool is_cluster, size_t cap)
{
    struct dest_route r;
    struct rs_error err;
    memset(&err, 0, sizeof(err));
    CHECK(dest_route_init(&r, 2, is_cluster ? &cluster : NULL, NULL, DEST_ROUTE_UNMAPPED_STOP,
                          &err) == 0);
    const char *n = strstr(pattern, "{N}");
    int rc = dest_route_set_prefix(&r, pattern, &err);
    if (n == NULL) {
        check_error(rc, &err);
        return;
    }
    CHECK(rc == 0);
    static const int64_t dbs[] = {0, 7, 255, 12345};
    char *out = malloc(cap);
    CHECK(out != NULL);
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        CHECK(dest_route_db(&r, dbs[i] < DEST_ROUTE_MAX_DBS ? dbs[i] : 0) == 0);
        char db[24];
        int db_len = snprintf(db, sizeof(db), "%lld", (long long)dbs[i]);
        size_t head = (size_t)(n - pattern), want = strlen(pattern) - 3 + (size_t)db_len;
        size_t got = dest_route_prefix(&r, dbs[i], out, cap);
        if (want >= cap) {
            CHECK(got == 0);
            continue;
        }
        CHECK(got == want && out[got] == '\0');
        CHECK(memcmp(out, pattern, head) == 0 && memcmp(out + head, db, (size_t)db_len) == 0);
        CHECK(strcmp(out + head + (size_t)db_len, n + 3) == 0);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    size_t cap = (size_t)data[1] + 1;
    const uint8_t *nul = memchr(data + 2, '\0', size - 2);
    size_t len = nul != NULL ? (size_t)(nul - (data + 2)) : size - 2;
    /* exactly the text and its NUL: reading past it is an ASan report */
    char *text = malloc(len + 1);
    CHECK(text != NULL);
    memcpy(text, data + 2, len);
    text[len] = '\0';
    if (flags & 1)
        check_prefix(text, flags & 2, cap);
    else
        check_map(text, len, flags & 2, cap);
    free(text);
    return 0;
}
