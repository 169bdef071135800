/* checkpoint.c - the job's records in the destination (see checkpoint.h and
 * CHECKPOINTS.md). */
#include "checkpoint.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "control_link.h"
#include "decimal.h"
#include "dest_nodes.h"
#include "endpoint.h"
#include "log.h"
#include "slot.h"
#include "cluster_topology.h"

#define TAG_CHARS  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define U64_DIGITS 20

int checkpoint_job_valid(const char *job, struct rs_error *err)
{
    size_t n = strlen(job);
    if (n == 0 || n >= CHECKPOINT_JOB_MAX) {
        rs_error_set(err, RS_E_FORMAT, 0, "a job id has 1 to %d characters",
                     CHECKPOINT_JOB_MAX - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = job[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
        if (!ok) {
            rs_error_set(err, RS_E_FORMAT, 0,
                         "job id '%s': character %zu is not one of A-Z a-z 0-9 . _ : / -", job,
                         i + 1);
            return -EINVAL;
        }
    }
    return 0;
}

/* A tag of at most 3 characters for every slot (one pass over 62 + 62^2 +
 * 62^3 strings covers all 16384). */
static int make_tags(struct checkpoint *cp)
{
    cp->tags = calloc(SLOT_COUNT, sizeof(*cp->tags));
    if (cp->tags == NULL)
        return -ENOMEM;
    unsigned left = SLOT_COUNT;
    const size_t nc = sizeof(TAG_CHARS) - 1;
    for (size_t len = 1; len <= 3 && left > 0; len++) {
        size_t total = len == 1 ? nc : len == 2 ? nc * nc : nc * nc * nc;
        for (size_t i = 0; i < total && left > 0; i++) {
            char t[4] = {0};
            size_t v = i;
            for (size_t k = 0; k < len; k++) {
                t[k] = TAG_CHARS[v % nc];
                v /= nc;
            }
            unsigned s = slot_of_key(t, len);
            if (cp->tags[s][0] == '\0') {
                memcpy(cp->tags[s], t, 4);
                left--;
            }
        }
    }
    RS_ASSERT(left == 0);
    return 0;
}

int checkpoint_init(struct checkpoint *cp, const char *job, bool cluster, unsigned nworkers)
{
    memset(cp, 0, sizeof(*cp));
    snprintf(cp->job, sizeof(cp->job), "%s", job);
    cp->cluster = cluster;
    cp->nworkers = nworkers ? nworkers : 1;
    int n = snprintf(cp->w_key, sizeof(cp->w_key), CHECKPOINT_PREFIX "%s:w", job);
    cp->w_key_len = (size_t)n;
    cp->w_slot = slot_of_key(cp->w_key, cp->w_key_len);
    if (cluster && make_tags(cp) < 0)
        return -ENOMEM;
    return 0;
}

void checkpoint_deinit(struct checkpoint *cp)
{
    free(cp->tags);
    free(cp->skip);
    cp->tags = NULL;
    cp->skip = NULL;
}

/* ------------------------------------------------------------ RESP output */

static char *put_bulk(char *p, const char *s, size_t n)
{
    *p++ = '$';
    p += decimal_u64(p, n);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, s, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static size_t record_key(const struct checkpoint *cp, char *out, unsigned worker, unsigned slot)
{
    int n = cp->cluster ? snprintf(out, CHECKPOINT_KEY_MAX, CHECKPOINT_PREFIX "%s:{%s}", cp->job,
                                   cp->tags[slot])
                        : snprintf(out, CHECKPOINT_KEY_MAX, CHECKPOINT_PREFIX "%s:L%u/%u", cp->job,
                                   worker % cp->nworkers, cp->nworkers);
    return (size_t)n;
}

/* A cluster's record (CHECKPOINTS.md, "A cluster destination"): a script
 * with no declared key, so that the transaction around it has only its
 * command's keys and a slot being migrated answers it as it answers that
 * command alone (ASK, MOVED; never TRYAGAIN for the record). It sets the
 * first of its candidate keys that this node lets it write, in order; a
 * candidate written "+key" is set only where it exists (SET XX). ARGV:
 * offset, the job's key prefix, the candidates. Its error starts with
 * CHECKPOINT_NO_RECORD (then the last candidate's error). Short: a node
 * parses and hashes it on every call (a shorter one cost the masters 20 %
 * less per transaction than the first, 376-byte form). */
#define CP_SCRIPT                                                                                  \
    "local e='' for i=3,#ARGV do local k,r=ARGV[i] if k:byte(1)==43 then "                         \
    "r=redis.pcall('SET',ARGV[2]..k:sub(2),ARGV[1],'XX') else "                                    \
    "r=redis.pcall('SET',ARGV[2]..k,ARGV[1]) end if r and r.ok then return i-2 end if r and "      \
    "r.err then e=r.err end end return redis.error_reply('" CHECKPOINT_NO_RECORD " '..e)"
#define CP_CANDIDATES 3
/* "+{tag}" or "{tag}@16383" or "{tag}#<offset>" */
#define CP_CAND_MAX   (1 + 5 + 1 + U64_DIGITS)

void checkpoint_set_topology(struct checkpoint *cp, const struct cluster_topology *topo)
{
    cp->topo = topo;
}

/* Up to two slots that node serves by the table now, other than slot,
 * nearest to it first; how many. The table may change under a consumer's
 * feet: each owner is read whole. */
static unsigned near_slots(const struct cluster_topology *topo, unsigned node, unsigned slot,
                           unsigned out[2])
{
    unsigned n = 0;
    if (topo == NULL)
        return 0;
    for (unsigned d = 1; d <= SLOT_COUNT / 2 && n < 2; d++) {
        unsigned cand[2] = {(slot + SLOT_COUNT - d) % SLOT_COUNT, (slot + d) % SLOT_COUNT};
        for (unsigned k = 0; k < 2 && n < 2; k++) {
            uint16_t o = __atomic_load_n(&topo->slot_owner[cand[k]], __ATOMIC_RELAXED);
            if (o == node + 1 && (n == 0 || out[0] != cand[k]))
                out[n++] = cand[k];
        }
    }
    return n;
}

static size_t put_cand(const struct checkpoint *cp, char *out, const char *lead, unsigned tag_slot,
                       char kind, uint64_t num)
{
    size_t n = strlen(lead), t = strlen(cp->tags[tag_slot]);
    memcpy(out, lead, n);
    out[n++] = '{';
    memcpy(out + n, cp->tags[tag_slot], t);
    n += t;
    out[n++] = '}';
    if (kind != 0) {
        out[n++] = kind;
        n += decimal_u64(out + n, num);
    }
    return n;
}

/* EVAL CP_SCRIPT 0 <offset> <prefix> <candidates...> EXEC at p. */
static char *put_eval(const struct checkpoint *cp, char *p, uint64_t offset,
                      char cands[][CP_CAND_MAX + 1], const size_t *lens, unsigned n)
{
    char val[U64_DIGITS];
    size_t vlen = decimal_u64(val, offset);
    *p++ = '*';
    p += decimal_u64(p, 5 + n);
    *p++ = '\r';
    *p++ = '\n';
    p = put_bulk(p, "EVAL", 4);
    p = put_bulk(p, CP_SCRIPT, sizeof(CP_SCRIPT) - 1);
    p = put_bulk(p, "0", 1);
    p = put_bulk(p, val, vlen);
    p = put_bulk(p, cp->w_key, cp->w_key_len - 1); /* the job's prefix: "...:w" without w */
    for (unsigned i = 0; i < n; i++)
        p = put_bulk(p, cands[i], lens[i]);
    memcpy(p, "*1\r\n$4\r\nEXEC\r\n", 14);
    return p + 14;
}

size_t checkpoint_end_size(const struct checkpoint *cp)
{
    if (cp->cluster) /* *8 EVAL script 0 offset prefix 3 candidates, EXEC */
        return 4 + 10 + (1 + 5 + 2 + sizeof(CP_SCRIPT) + 2) + 7 + (1 + 2 + 2 + U64_DIGITS + 2) +
               (1 + 3 + 2 + CHECKPOINT_KEY_MAX + 2) +
               CP_CANDIDATES * (1 + 2 + 2 + CP_CAND_MAX + 2) + 14;
    /* *3 $3 SET $<k> key $<20> value, then *1 $4 EXEC */
    return 4 + 9 + (1 + 3 + 2 + CHECKPOINT_KEY_MAX + 2) + (1 + 2 + 2 + U64_DIGITS + 2) + 14;
}

char *checkpoint_put_end(const struct checkpoint *cp, char *p, unsigned lane, unsigned slot,
                         uint64_t offset)
{
    if (cp->cluster) {
        /* the slot's own record, else one of this node's kept in a slot near
         * it (while the slot migrates and its record has left) */
        char cands[CP_CANDIDATES][CP_CAND_MAX + 1];
        size_t lens[CP_CANDIDATES];
        unsigned near[2];
        unsigned nn = near_slots(cp->topo, lane / cp->nworkers, slot, near);
        lens[0] = put_cand(cp, cands[0], "", slot, 0, 0);
        for (unsigned i = 0; i < nn; i++)
            lens[1 + i] = put_cand(cp, cands[1 + i], "", near[i], '@', slot);
        return put_eval(cp, p, offset, cands, lens, 1 + nn);
    }
    char key[CHECKPOINT_KEY_MAX], val[U64_DIGITS];
    size_t klen = record_key(cp, key, lane, slot);
    size_t vlen = decimal_u64(val, offset);
    memcpy(p, "*3\r\n$3\r\nSET\r\n", 13);
    p = put_bulk(put_bulk(p + 13, key, klen), val, vlen);
    memcpy(p, "*1\r\n$4\r\nEXEC\r\n", 14);
    return p + 14;
}

int checkpoint_probe_node(struct control_link *cl, struct rs_error *err)
{
    /* the script with no candidate: its own error says it may run */
    struct control_reply rep = {0};
    if (control_link_commandv(cl, &rep, err, "EVAL", CP_SCRIPT, "0", "0", "", NULL) < 0)
        return -1;
    size_t nr = sizeof(CHECKPOINT_NO_RECORD) - 1;
    int r = 0;
    if (rep.r->type != REDIS_REPLY_ERROR || strncmp(rep.r->str, CHECKPOINT_NO_RECORD, nr) != 0) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "destination %s cannot run the script that writes the checkpoint records "
                     "of a cluster (EVAL answered %.200s): allow EVAL to this user, or give "
                     "--checkpoint none (the job then cannot resume after a stop)",
                     cl->name, rep.r->type == REDIS_REPLY_ERROR ? rep.r->str : "no error");
        r = -1;
    }
    control_reply_free(&rep);
    return r;
}

/* The bulk string at p (inside [p, end)): its bytes; NULL when p is not one. */
static const char *get_bulk(const char *p, const char *end, size_t *len, const char **next)
{
    if (p >= end || *p != '$')
        return NULL;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
        return NULL;
    size_t n = (size_t)strtoull(p + 1, NULL, 10);
    const char *s = nl + 1;
    if ((size_t)(end - s) < n + 2)
        return NULL;
    *len = n;
    *next = s + n + 2;
    return s;
}

ssize_t checkpoint_ask_form(const struct checkpoint *cp, const char *block, size_t len,
                            unsigned node, unsigned slot, char *out, size_t cap)
{
    /* the record is the block's last command but EXEC: find where it starts */
    static const char exec_cmd[] = "*1\r\n$4\r\nEXEC\r\n";
    if (!cp->cluster || len < 14 || memcmp(block + len - 14, exec_cmd, 14) != 0)
        return -1;
    const char *p = block, *end = block + len - 14, *eval_at = NULL;
    while (p < end) {
        const char *start = p;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (*p != '*' || nl == NULL)
            return -1;
        long argc = strtol(p + 1, NULL, 10);
        p = nl + 1;
        for (long a = 0; a < argc; a++) {
            size_t n;
            if (get_bulk(p, end, &n, &p) == NULL)
                return -1;
        }
        eval_at = start;
    }
    /* EVAL CP_SCRIPT 0 <offset> ... */
    size_t n;
    const char *q = eval_at, *s;
    q = (const char *)memchr(q, '\n', (size_t)(end - q)) + 1;
    if ((s = get_bulk(q, end, &n, &q)) == NULL || n != 4 || strncasecmp(s, "EVAL", 4) != 0 ||
        (s = get_bulk(q, end, &n, &q)) == NULL || n != sizeof(CP_SCRIPT) - 1 ||
        memcmp(s, CP_SCRIPT, n) != 0 || get_bulk(q, end, &n, &q) == NULL ||
        (s = get_bulk(q, end, &n, &q)) == NULL)
        return -1;
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++)
        offset = offset * 10 + (uint64_t)(s[i] - '0');
    /* On the node the slot migrates to, under ASKING: the slot's record only
     * where it already came over (never a second copy of a key the other
     * node still has: a resharding tool stops on that), else one of this
     * node's near the slot, else a key of this command's alone. */
    char cands[CP_CANDIDATES][CP_CAND_MAX + 1];
    size_t lens[CP_CANDIDATES];
    unsigned near[2];
    unsigned nn = near_slots(cp->topo, node, slot, near);
    unsigned k = 0;
    lens[k++] = put_cand(cp, cands[0], "+", slot, 0, 0);
    if (nn > 0) {
        lens[k] = put_cand(cp, cands[k], "", near[0], '@', slot);
        k++;
    }
    lens[k] = put_cand(cp, cands[k], "", slot, '#', offset);
    k++;
    size_t head = (size_t)(eval_at - block);
    if (head + checkpoint_end_size(cp) > cap)
        return -1;
    memcpy(out, block, head);
    char *e = put_eval(cp, out + head, offset, cands, lens, k);
    return (ssize_t)(e - out);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t w_value(const struct checkpoint *cp, char *out, size_t cap, uint64_t w, int64_t db,
                      const char *phase)
{
    int n =
        snprintf(out, cap, "%s %" PRIu64 " %s %" PRId64 " %" PRId64 " %d",
                 cp->replid[0] ? cp->replid : "?", w, phase, now_ms(), db, cp->margin_on ? 1 : 0);
    return (size_t)n;
}

size_t checkpoint_w_size(const struct checkpoint *cp)
{
    return 13 + (1 + 3 + 2 + cp->w_key_len + 2) + (1 + 3 + 2 + 128 + 2);
}

char *checkpoint_put_w(const struct checkpoint *cp, char *p, uint64_t w, int64_t db,
                       const char *phase)
{
    char val[128];
    size_t vlen = w_value(cp, val, sizeof(val), w, db, phase);
    memcpy(p, "*3\r\n$3\r\nSET\r\n", 13);
    return put_bulk(put_bulk(p + 13, cp->w_key, cp->w_key_len), val, vlen);
}

/* ------------------------------------------------------ reading and clearing */

/* The databases of a node that hold keys (INFO keyspace), as a bit set of
 * dbs 0..255. */
static int node_dbs(struct control_link *cl, bool cluster, uint64_t dbs[4], struct rs_error *err)
{
    memset(dbs, 0, 4 * sizeof(uint64_t));
    if (cluster) {
        dbs[0] = 1;
        return 0;
    }
    struct control_reply rep = {0};
    if (control_link_commandv(cl, &rep, err, "INFO", "keyspace", NULL) < 0)
        return -1;
    if (rep.r->type != REDIS_REPLY_STRING) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s: INFO keyspace answered %s", cl->name,
                     rep.r->type == REDIS_REPLY_ERROR ? rep.r->str : "no text");
        control_reply_free(&rep);
        return -1;
    }
    for (const char *s = rep.r->str; (s = strstr(s, "db")) != NULL; s += 2) {
        if ((s != rep.r->str && s[-1] != '\n') || s[2] < '0' || s[2] > '9')
            continue;
        unsigned db = (unsigned)strtoul(s + 2, NULL, 10);
        if (db < 256)
            dbs[db / 64] |= 1ULL << (db % 64);
    }
    control_reply_free(&rep);
    return 0;
}

/* Calls fn for every key matching pattern in every database of the node
 * that holds keys (SELECTed). */
static int scan_node(struct control_link *cl, bool cluster, const char *pattern,
                     int (*fn)(void *ctx, struct control_link *cl, unsigned db, const char *key,
                               size_t len, struct rs_error *err),
                     void *ctx, struct rs_error *err)
{
    uint64_t dbs[4];
    if (node_dbs(cl, cluster, dbs, err) < 0)
        return -1;
    for (unsigned db = 0; db < 256; db++) {
        if (!(dbs[db / 64] >> (db % 64) & 1))
            continue;
        char dbs_s[8];
        snprintf(dbs_s, sizeof(dbs_s), "%u", db);
        struct control_reply rep = {0};
        if (!cluster) {
            if (control_link_commandv(cl, &rep, err, "SELECT", dbs_s, NULL) < 0)
                return -1;
            control_reply_free(&rep);
        }
        char cursor[32] = "0";
        do {
            if (control_link_commandv(cl, &rep, err, "SCAN", cursor, "MATCH", pattern, "COUNT",
                                      "1000", NULL) < 0)
                return -1;
            redisReply *r = rep.r;
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                r->element[0]->type != REDIS_REPLY_STRING ||
                r->element[1]->type != REDIS_REPLY_ARRAY) {
                rs_error_set(err, RS_E_FORMAT, 0, "%s: SCAN answered %s", cl->name,
                             r->type == REDIS_REPLY_ERROR ? r->str : "something else");
                control_reply_free(&rep);
                return -1;
            }
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            /* the keys are copied: fn may talk on the link */
            size_t n = r->element[1]->elements;
            char **keys = calloc(n ? n : 1, sizeof(*keys));
            size_t *lens = calloc(n ? n : 1, sizeof(*lens));
            int rc = keys && lens ? 0 : -1;
            for (size_t i = 0; i < n && rc == 0; i++) {
                redisReply *k = r->element[1]->element[i];
                lens[i] = k->len;
                if ((keys[i] = malloc(k->len + 1)) == NULL)
                    rc = -1;
                else
                    memcpy(keys[i], k->str, k->len + 1);
            }
            control_reply_free(&rep);
            if (rc < 0)
                rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
            for (size_t i = 0; i < n && rc == 0; i++)
                rc = fn(ctx, cl, db, keys[i], lens[i], err);
            for (size_t i = 0; keys && i < n; i++)
                free(keys[i]);
            free(keys);
            free(lens);
            if (rc < 0)
                return -1;
        } while (strcmp(cursor, "0") != 0);
    }
    return 0;
}

/* A link to node i of d, to read or clear records: 0, -1 with err, or 1 to
 * pass it by: a cluster master that serves no slot and does not answer (a
 * failed master whose replica took over). One that answers is read: it may
 * hold records of a slot it imports (CHECKPOINTS.md, "#" records). */
static int open_node(const struct dest_nodes *d, unsigned i, int timeout_ms,
                     struct control_link *cl, struct rs_error *err)
{
    if (dest_nodes_serves(d, i))
        return control_link_open(cl, &d->eps[i], timeout_ms, err) < 0 ? -1 : 0;
    struct rs_error ignored = {0};
    if (control_link_open(cl, &d->eps[i], timeout_ms, &ignored) < 0) {
        control_link_close(cl);
        return 1;
    }
    return 0;
}

struct read_ctx {
    const struct checkpoint *cp;
    struct checkpoint_state *st;
    uint64_t *lane_max; /* per slot: the largest lane or slot record */
};

static bool parse_u64(const char *s, size_t n, uint64_t *v)
{
    if (n == 0 || n > U64_DIGITS)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return true;
}

/* ASKING before the next command: a node importing a slot holds records of
 * it ("#") that it serves only so. */
static int asking(struct control_link *cl, struct rs_error *err)
{
    struct control_reply rep = {0};
    int r = control_link_commandv(cl, &rep, err, "ASKING", NULL);
    control_reply_free(&rep);
    return r;
}

static int read_one(void *vctx, struct control_link *cl, unsigned db, const char *key, size_t len,
                    struct rs_error *err)
{
    struct read_ctx *rc = vctx;
    size_t plen = strlen(CHECKPOINT_PREFIX) + strlen(rc->cp->job) + 1;
    if (len <= plen)
        return 0;
    const char *suffix = key + plen;
    size_t slen = len - plen;
    bool is_w = slen == 1 && suffix[0] == 'w';
    bool is_lane = slen >= 4 && suffix[0] == 'L' && memchr(suffix, '/', slen) != NULL;
    const char *close = slen >= 3 && suffix[0] == '{' ? memchr(suffix, '}', slen) : NULL;
    bool is_slot = close != NULL && close > suffix + 1;
    unsigned rec_slot = 0; /* the slot a cluster's record is of (CHECKPOINTS.md) */
    if (is_slot) {
        size_t rest = slen - (size_t)(close + 1 - suffix);
        uint64_t num = 0;
        if (rest == 0)
            rec_slot = slot_of_key(key, len);
        else if (rest >= 2 && close[1] == '#' && parse_u64(close + 2, rest - 1, &num))
            rec_slot = slot_of_key(key, len);
        else if (rest >= 2 && close[1] == '@' && parse_u64(close + 2, rest - 1, &num) &&
                 num < SLOT_COUNT)
            rec_slot = (unsigned)num;
        else
            is_slot = false;
    }
    if (!is_w && !is_lane && !is_slot)
        return 0; /* another job's, whose id starts with ours and a ':' */
    struct control_reply rep = {0};
    if (rc->cp->cluster && asking(cl, err) < 0)
        return -1;
    const char *argv[2] = {"GET", key};
    size_t argvlen[2] = {3, len};
    if (control_link_command(cl, &rep, err, 2, argv, argvlen) < 0)
        return -1;
    int rc_ = 0;
    if (rep.r->type != REDIS_REPLY_STRING) {
        if (rep.r->type != REDIS_REPLY_NIL) { /* gone meanwhile: nothing to read */
            rs_error_set(err, RS_E_FORMAT, 0, "%s db %u: GET of checkpoint %s answered %.100s",
                         cl->name, db, key,
                         rep.r->type == REDIS_REPLY_ERROR ? rep.r->str : "no string");
            rc_ = -1;
        }
        control_reply_free(&rep);
        return rc_;
    }
    const char *v = rep.r->str;
    size_t vlen = rep.r->len;
    struct checkpoint_state *st = rc->st;
    if (is_w) {
        char replid[64] = "", phase[32] = "";
        uint64_t w = 0;
        long long at = 0, sdb = 0;
        int margin = -1;
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)(vlen < 255 ? vlen : 255), v);
        int nf = sscanf(tmp, "%63s %" SCNu64 " %31s %lld %lld %d", replid, &w, phase, &at, &sdb,
                        &margin);
        if ((nf != 4 && nf != 6) || sdb < 0 || (nf == 6 && margin != 0 && margin != 1) ||
            (strcmp(phase, CHECKPOINT_FULL) != 0 && strcmp(phase, CHECKPOINT_FULL_KEEP) != 0 &&
             strcmp(phase, CHECKPOINT_STREAM) != 0) ||
            (strlen(replid) != SOURCE_REPLID_LEN && strcmp(replid, "?") != 0)) {
            rs_error_set(err, RS_E_FORMAT, 0,
                         "%s db %u: checkpoint %s holds \"%s\", not \"<replid> <offset> <phase> "
                         "<ms> <db> <margin>\"",
                         cl->name, db, key, tmp);
            control_reply_free(&rep);
            return -1;
        }
        /* the largest W wins (it only grows); a full sync's start record
         * (W 0) is the only one when the snapshot was cut */
        bool newer = !st->found || w > st->w ||
                     (w == st->w && strcmp(st->phase, CHECKPOINT_STREAM) != 0 &&
                      strcmp(phase, CHECKPOINT_STREAM) == 0);
        if (newer) {
            st->found = true;
            st->w = w;
            snprintf(st->replid, sizeof(st->replid), "%.40s", replid); /* checked: 40 or "?" */
            snprintf(st->phase, sizeof(st->phase), "%.15s", phase);    /* one of the three */
            st->at_ms = at;
            st->db = sdb;
            st->margin_on = nf == 6 ? margin : -1;
        }
        control_reply_free(&rep);
        return 0;
    }
    uint64_t off = 0;
    if (!parse_u64(v, vlen, &off)) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s db %u: checkpoint %s does not hold an offset",
                     cl->name, db, key);
        control_reply_free(&rep);
        return -1;
    }
    control_reply_free(&rep);
    st->lanes++;
    if (is_slot) {
        if (off > rc->lane_max[rec_slot])
            rc->lane_max[rec_slot] = off;
        return 0;
    }
    unsigned w = 0, n = 0;
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(slen < 39 ? slen : 39), suffix);
    if (sscanf(tmp, "L%u/%u", &w, &n) != 2 || n == 0 || w >= n || n > 4096) {
        rs_error_set(err, RS_E_FORMAT, 0, "%s db %u: checkpoint %s names no lane", cl->name, db,
                     key);
        return -1;
    }
    for (unsigned s = w; s < SLOT_COUNT; s += n) /* lane w of n owned the slots s % n == w */
        if (off > rc->lane_max[s])
            rc->lane_max[s] = off;
    return 0;
}

/* Whether the node's user may GET a record (a harmless GET of the w key;
 * SCAN says so itself): a job whose records are there but cannot be read
 * would find nothing to resume from. -1 with err naming the user. */
static int may_read(struct control_link *cl, const struct checkpoint *cp, const char *user,
                    struct rs_error *err)
{
    const char *argv[2] = {"GET", cp->w_key};
    size_t argvlen[2] = {3, cp->w_key_len};
    struct control_reply rep = {0};
    if (control_link_command(cl, &rep, err, 2, argv, argvlen) < 0)
        return -1;
    int rc = 0;
    if (rep.r->type == REDIS_REPLY_ERROR && strncmp(rep.r->str, "NOPERM", 6) == 0) {
        const char *who = user[0] ? user : "default";
        rs_error_set(err, RS_E_UNSUPPORTED, 0,
                     "destination %s: user '%s' may not run GET (%.120s), which ringsync needs "
                     "to read its checkpoints (keys " CHECKPOINT_PREFIX
                     "*) when it starts again: allow it (ACL SETUSER %s +get +scan), or pass "
                     "--checkpoint none",
                     cl->name, who, rep.r->str, who);
        rc = -1;
    }
    control_reply_free(&rep);
    return rc;
}

int checkpoint_read(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                    struct checkpoint_state *st, struct rs_error *err)
{
    memset(st, 0, sizeof(*st));
    struct read_ctx rc = {cp, st, calloc(SLOT_COUNT, sizeof(uint64_t))};
    if (rc.lane_max == NULL) {
        rs_error_set(err, RS_E_LIMIT, 0, "out of memory");
        return -1;
    }
    char pattern[CHECKPOINT_KEY_MAX + 4];
    snprintf(pattern, sizeof(pattern), CHECKPOINT_PREFIX "%s:*", cp->job);
    for (unsigned i = 0; i < d->nnodes; i++) {
        struct control_link cl = {0};
        int r = open_node(d, i, timeout_ms, &cl, err);
        if (r == 1)
            continue;
        if (r == 0)
            r = may_read(&cl, cp, d->eps[i].user, err);
        if (r == 0)
            r = scan_node(&cl, d->is_cluster, pattern, read_one, &rc, err);
        control_link_close(&cl);
        if (r < 0) {
            free(rc.lane_max);
            return -1;
        }
    }
    if (!st->found) {
        free(rc.lane_max);
        return 0;
    }
    st->skip = rc.lane_max;
    st->skip_max = st->w;
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        if (st->skip[s] < st->w)
            st->skip[s] = st->w;
        if (st->skip[s] > st->skip_max)
            st->skip_max = st->skip[s];
    }
    return 0;
}

void checkpoint_state_free(struct checkpoint_state *st)
{
    free(st->skip);
    st->skip = NULL;
}

/* The node of d that serves slot (a cluster's owner; node 0 standalone),
 * into *ep: a master first met in a MOVED while the job ran is in the table
 * but not among d's endpoints (the same credentials). */
static void node_of(const struct dest_nodes *d, unsigned slot, struct endpoint *ep)
{
    int n = d->is_cluster ? cluster_topology_owner(&d->topo, slot) : 0;
    if (n < 0)
        n = 0;
    if ((unsigned)n < d->nnodes) {
        *ep = d->eps[n];
        return;
    }
    const struct cluster_node *nd = &d->topo.masters[n].node;
    *ep = d->eps[0];
    snprintf(ep->host, sizeof(ep->host), "%s", nd->host);
    ep->port = nd->port;
    snprintf(ep->name, sizeof(ep->name), "%s", nd->name);
}

int checkpoint_write_w(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                       uint64_t w, int64_t db, const char *phase, struct rs_error *err)
{
    struct control_link cl = {0};
    struct endpoint node;
    node_of(d, cp->w_slot, &node);
    const struct endpoint *ep = &node;
    if (control_link_open(&cl, ep, timeout_ms, err) < 0)
        return -1;
    char val[128];
    size_t vlen = w_value(cp, val, sizeof(val), w, db, phase);
    const char *argv[3] = {"SET", cp->w_key, val};
    size_t argvlen[3] = {3, cp->w_key_len, vlen};
    struct control_reply rep = {0};
    int r = control_link_command(&cl, &rep, err, 3, argv, argvlen);
    if (r == 0 && rep.r->type == REDIS_REPLY_ERROR) {
        rs_error_set(err, RS_E_UNSUPPORTED, 0, "destination %s refused the checkpoint %s: %s",
                     ep->name, cp->w_key, rep.r->str);
        r = -1;
    }
    control_reply_free(&rep);
    control_link_close(&cl);
    return r < 0 ? -1 : 0;
}

struct clear_ctx {
    uint64_t deleted;
    bool cluster;
};

static int clear_one(void *vctx, struct control_link *cl, unsigned db, const char *key, size_t len,
                     struct rs_error *err)
{
    (void)db;
    struct clear_ctx *cc = vctx;
    const char *argv[2] = {"DEL", key};
    size_t argvlen[2] = {3, len};
    struct control_reply rep = {0};
    if ((cc->cluster && asking(cl, err) < 0) ||
        control_link_command(cl, &rep, err, 2, argv, argvlen) < 0)
        return -1;
    if (rep.r->type == REDIS_REPLY_INTEGER)
        cc->deleted += (uint64_t)rep.r->integer;
    control_reply_free(&rep);
    return 0;
}

static int count_one(void *vctx, struct control_link *cl, unsigned db, const char *key, size_t len,
                     struct rs_error *err)
{
    (void)cl;
    (void)db;
    (void)key;
    (void)len;
    (void)err;
    ((struct clear_ctx *)vctx)->deleted++;
    return 0;
}

int checkpoint_clear(const struct dest_nodes *d, const char *job, int timeout_ms, uint64_t *deleted,
                     struct rs_error *err)
{
    char pattern[CHECKPOINT_KEY_MAX + 4];
    if (job != NULL)
        snprintf(pattern, sizeof(pattern), CHECKPOINT_PREFIX "%s:*", job);
    else
        snprintf(pattern, sizeof(pattern), CHECKPOINT_PREFIX "*");
    struct clear_ctx cc = {.cluster = d->is_cluster};
    for (unsigned i = 0; i < d->nnodes; i++) {
        struct control_link cl = {0};
        int r = open_node(d, i, timeout_ms, &cl, err);
        if (r == 1)
            continue;
        if (r == 0)
            r = scan_node(&cl, d->is_cluster, pattern, clear_one, &cc, err);
        control_link_close(&cl);
        if (r < 0)
            return -1;
    }
    *deleted = cc.deleted;
    return 0;
}

static int count_one(void *vctx, struct control_link *cl, unsigned db, const char *key, size_t len,
                     struct rs_error *err);

int checkpoint_flush(const struct dest_nodes *d, int timeout_ms, struct rs_error *err)
{
    for (unsigned i = 0; i < d->nnodes; i++) {
        struct control_link cl = {0};
        if (!dest_nodes_serves(d, i))
            continue;
        struct control_reply rep = {0};
        int r = control_link_open(&cl, &d->eps[i], timeout_ms, err);
        if (r == 0)
            r = control_link_commandv(&cl, &rep, err, "FLUSHALL", NULL);
        if (r == 0 && rep.r->type == REDIS_REPLY_ERROR) {
            rs_error_set(err, RS_E_UNSUPPORTED, 0, "destination %s refused FLUSHALL: %s",
                         d->eps[i].name, rep.r->str);
            r = -1;
        }
        control_reply_free(&rep);
        control_link_close(&cl);
        if (r < 0)
            return -1;
    }
    return 0;
}

int checkpoint_start(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                     bool quiet, enum checkpoint_start *how, struct checkpoint_state *st,
                     struct rs_error *err)
{
    *how = CHECKPOINT_START_NEW;
    if (checkpoint_read(d, cp, timeout_ms, st, err) < 0)
        return -1;
    if (!st->found) {
        /* a cluster source's jobs are <job>/<first slot>: their records make
         * the destination this job's too (each resumes on its own) */
        char pattern[CHECKPOINT_KEY_MAX + 4];
        snprintf(pattern, sizeof(pattern), CHECKPOINT_PREFIX "%s/*", cp->job);
        struct clear_ctx cc = {0};
        for (unsigned i = 0; i < d->nnodes; i++) {
            struct control_link cl = {0};
            int r = control_link_open(&cl, &d->eps[i], timeout_ms, err);
            if (r == 0)
                r = scan_node(&cl, d->is_cluster, pattern, count_one, &cc, err);
            control_link_close(&cl);
            if (r < 0)
                return -1;
        }
        st->shard_records = cc.deleted;
        return 0;
    }
    if (strcmp(st->phase, CHECKPOINT_STREAM) == 0) {
        *how = CHECKPOINT_START_RESUME;
        (void)quiet; /* an event, not progress: said even with --quiet */
        rs_log("destination holds checkpoints of job %s (source replid %s, applied offset "
               "%" PRIu64 ", %u %s records): resuming from there",
               cp->job, st->replid, st->w, st->lanes, cp->cluster ? "slot" : "lane");
        return 0;
    }
    *how = CHECKPOINT_START_REDO;
    bool keep = strcmp(st->phase, CHECKPOINT_FULL_KEEP) == 0;
    rs_log("destination holds the unfinished full sync of job %s (cut before its snapshot was "
           "applied): %s, then the full sync again",
           cp->job,
           keep ? "keeping the keys (it began with --target-nonempty keep)" : "flushing it");
    if (!keep && checkpoint_flush(d, timeout_ms, err) < 0)
        return -1;
    return 0;
}

int checkpoint_begin_full(const struct dest_nodes *d, const struct checkpoint *cp, int timeout_ms,
                          bool keep, struct rs_error *err)
{
    uint64_t n = 0;
    if (checkpoint_clear(d, cp->job, timeout_ms, &n, err) < 0)
        return -1;
    return checkpoint_write_w(d, cp, timeout_ms, 0, 0,
                              keep ? CHECKPOINT_FULL_KEEP : CHECKPOINT_FULL, err);
}

/* ---------------------------------------------------- ringsync checkpoint */

static void usage(FILE *f)
{
    fprintf(f, "usage: ringsync checkpoint clear --target URI [--job-id ID | --all]\n"
               "       ringsync checkpoint show --target URI --job-id ID\n"
               "\n"
               "The records a sync job keeps in its destination (keys " CHECKPOINT_PREFIX
               "<job>:...):\n"
               "  clear   deletes them (of one job, or of every job with --all), so that the\n"
               "          next sync starts anew instead of resuming\n"
               "  show    prints what a job's records say: its phase, replid, applied offset\n"
               "\n"
               "  --target URI     redis://[user[:password]@]host:port (any node of a cluster);\n"
               "                   the password may come from RINGSYNC_TARGET_PASSWORD\n"
               "  --job-id ID      the job (default of sync: the source as given, host:port)\n"
               "  --timeout-ms N   connect and reply timeout (default 5000)\n");
}

int checkpoint_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1];
    if (strcmp(what, "clear") != 0 && strcmp(what, "show") != 0) {
        rs_log("checkpoint: unknown action '%s' (clear or show)", what);
        return 2;
    }
    const char *target = NULL, *job = NULL;
    bool all = false;
    int timeout_ms = 5000;
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 't'}, {"job-id", required_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'a'},          {"timeout-ms", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            target = optarg;
            break;
        case 'j':
            job = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'T':
            timeout_ms = atoi(optarg);
            if (timeout_ms <= 0) {
                rs_log("--timeout-ms: '%s' is not a positive number", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (target == NULL || (job == NULL && !all) || (job != NULL && all) ||
        (all && strcmp(what, "show") == 0)) {
        rs_log("checkpoint %s: needs --target and %s", what,
               strcmp(what, "show") == 0 ? "--job-id" : "one of --job-id or --all");
        return 2;
    }
    struct rs_error err = {0};
    if (job != NULL && checkpoint_job_valid(job, &err) < 0) {
        rs_log("--job-id: %s", err.msg);
        return 2;
    }
    struct endpoint ep;
    if (endpoint_parse(target, "RINGSYNC_TARGET_PASSWORD", &ep, &err) < 0) {
        rs_log("--target: %s", err.msg);
        return 2;
    }
    struct dest_nodes d = {0};
    int status = 1;
    struct dest_nodes_opts no = {.mode = DEST_NODES_AUTO, .timeout_ms = timeout_ms};
    if (dest_nodes_open(&d, &ep, &no, &err) < 0) {
        rs_log("%s", err.msg);
        goto out;
    }
    if (d.is_proxy) {
        rs_log("destination %s is a proxy: a job through a proxy keeps no records there "
               "(src/PROXY_DESTINATION.md §8), and the proxy runs no SCAN to find them",
               ep.name);
        goto out;
    }
    if (strcmp(what, "clear") == 0) {
        uint64_t n = 0;
        if (checkpoint_clear(&d, job, timeout_ms, &n, &err) < 0) {
            rs_log("%s", err.msg);
            goto out;
        }
        rs_log("deleted %" PRIu64 " checkpoint records of %s%s from %s", n, job ? "job " : "",
               job ? job : "every job", ep.name);
        status = 0;
        goto out;
    }
    struct checkpoint cp;
    struct checkpoint_state st;
    if (checkpoint_init(&cp, job, d.is_cluster, 1) < 0 ||
        checkpoint_read(&d, &cp, timeout_ms, &st, &err) < 0) {
        rs_log("%s", err.msg[0] ? err.msg : "out of memory");
        checkpoint_deinit(&cp);
        goto out;
    }
    if (!st.found)
        printf("job %s: no checkpoint on %s\n", job, ep.name);
    else
        printf("job %s: phase %s, source replid %s, applied offset %" PRIu64
               ", %u %s records, highest %" PRIu64 "\n",
               job, st.phase, st.replid, st.w, st.lanes, d.is_cluster ? "slot" : "lane",
               st.skip_max);
    checkpoint_state_free(&st);
    checkpoint_deinit(&cp);
    status = 0;
out:
    dest_nodes_deinit(&d);
    return status;
}
