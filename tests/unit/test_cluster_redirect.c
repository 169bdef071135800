/* test_cluster_redirect.c - MOVED and ASK from a cluster destination while
 * the job runs (cluster_redirect.h, src/CLUSTER_DESTINATION.md §3), in one
 * thread, wired as worker.c wires it: one worker that is its own producer,
 * a cluster of two masters A and B, one dest_link to each over a loopback
 * TCP pair, all driven by one io_uring. The masters are scripted peers in
 * the test's own thread: they parse the RESP commands the links send and
 * answer by a rule (struct move_rule: a slot changes owner at a node's k-th
 * command of it, which it and every later one of the slot are refused with
 * -MOVED; or -ASK for one command), keeping what they took, in order, on a
 * clock both share.
 *
 * The producer writes APPEND <key> <i> for command i of a script, a few per
 * loop iteration, each to the lane of its key's slot in the table as it is
 * at that moment (after cluster_redirect_poll), like the router. The oracle
 * is the script: every command applied exactly once, and the commands of a
 * slot in source order on both nodes together, across the move too.
 *
 * Proved able to fail: with the hold taken out of dest_link_prep_send (in
 * a scratch copy), B applies commands routed to it after the move before
 * the ones A refused, and the MOVED tests fail; with the queue left out of
 * the floor, the floor test does. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cluster_redirect.h"
#include "cluster_topology.h"
#include "dest_link.h"
#include "dest_route.h"
#include "endpoint.h"
#include "job.h"
#include "slot.h"

#define NODE_A     0
#define NODE_B     1
#define SPLIT      8192 /* A serves slots below, B the rest */
#define MAX_CMDS   512
#define LOG_CAP    (2 * MAX_CMDS)
#define PEER_BYTES (1 << 18)
#define NKEYS      6 /* two keys of slot s (on A), two of A's other slots, two of B's */
#define STEP_NS    (200 * 1000)

/* user_data: the operation in the top byte, the link's index below (as worker.c). */
enum op { OP_SEND = 1, OP_RECV };
#define UD(op, i)    ((uint64_t)(op) << 56 | (uint64_t)(i))
#define UD_OP(ud)    ((int)((ud) >> 56))
#define UD_INDEX(ud) ((unsigned)((ud)&0xffffffffu))

/* The source offsets of command i: span.from and span.to. */
#define CMD_FROM(i) (1000 + 64 * (uint64_t)(i))
#define CMD_TO(i)   (CMD_FROM(i) + 64)

struct logged {
    char name[16]; /* "APPEND", "ASKING" */
    char key[32];
    int value;   /* APPEND's: the command's index in the script */
    uint64_t at; /* when, on the clock both peers share */
};

/* A slot that changes owner: node n gives it to the other when the
 * give_at[n]-th command of the slot it receives comes (0-based; -1:
 * never), and refuses that one and every later one with -MOVED while it
 * is not the owner. */
struct move_rule {
    unsigned slot;
    int owner;
    int give_at[2];
    int seen[2]; /* commands of the slot node n received */
};

/* A scripted master. */
struct peer {
    int fd;
    int port; /* of the listening side: the master is "127.0.0.1:<port>" */
    char in[PEER_BYTES];
    size_t in_len;
    char out[PEER_BYTES];
    size_t out_len;
    size_t chunk;   /* bytes written per step (0: all there are) */
    int per_step;   /* commands answered per step (0: all there are) */
    bool is_muted;  /* reads, answers nothing */
    int node;       /* NODE_A or NODE_B */
    int ask_value;  /* the APPEND of this value is answered -ASK (-1: none) */
    int other_port; /* where its redirections point: the other master */
    /* what it did */
    struct logged log[LOG_CAP]; /* every command taken, in order */
    int nlog;
    int refused[MAX_CMDS]; /* values answered -MOVED or -ASK, in order */
    int nrefused;
};

struct cmd {
    int key; /* index in keys */
    char key_name[32];
    unsigned slot;
    int node; /* the node of its lane when the producer wrote it (-1: not yet) */
};

struct harness {
    struct job job;
    struct cluster_topology topo;
    struct dest_route route;
    struct endpoint target;
    struct cluster_redirect *hub;
    struct batch_writer *bw;
    struct cluster_redirect_worker *rw;
    struct dest_link links[2];
    char names[2][64];
    struct io_uring ring;
    struct peer peers[2];
    struct move_rule moves[2];
    int nmoves;
    uint64_t clock; /* commands the peers took (applied or refused) */
    /* the script */
    char keys[NKEYS][32];
    unsigned s; /* the slot of keys[0] and keys[1], on A */
    struct cmd cmds[MAX_CMDS];
    int ncmds;         /* in the script */
    int navail;        /* released to the producer so far */
    int nwritten;      /* written by the producer */
    int per_iter;      /* commands the producer writes per loop iteration */
    int redirect_done; /* redirect batches with all their replies */
    long steps;
    void (*check)(struct harness *h); /* after every step */
    int watched;                      /* for check: a command's value (-1: none) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connected pair on loopback: *a the client's end (the link's), *b the
 * accepted one (the peer's, non-blocking); *port the listening port. */
static void tcp_pair(int *a, int *b, int *port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *b = accept(l, NULL, NULL);
    cr_assert_geq(*b, 0);
    close(l);
    int one = 1;
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(*b, F_SETFL, O_NONBLOCK);
}

/* ------------------------------------------------------ the worker's wiring */

static void batch_done(void *ctx, struct batch *b);

static struct dest_link *link_of(void *ctx, unsigned node)
{
    struct harness *h = ctx;
    cr_assert_lt(node, 2, "a link to node %u was asked for", node);
    return &h->links[node];
}

/* worker.c's enqueue: the producer's batches count for the barriers. */
static void sink_self(void *ctx, struct batch *b)
{
    struct harness *h = ctx;
    if (b->owner != CLUSTER_REDIRECT_OWNER)
        cluster_redirect_worker_received(h->rw);
    dest_link_enqueue(link_of(h, b->node), b);
}

static void batch_done(void *ctx, struct batch *b)
{
    struct harness *h = ctx;
    if (b->owner == CLUSTER_REDIRECT_OWNER) {
        h->redirect_done++;
        cluster_redirect_worker_done(h->rw, b);
        return;
    }
    batch_writer_recycle(h->bw, b);
}

static int on_redirect(void *ctx, struct dest_link *dl, const char *cmd, size_t cmd_len,
                       uint32_t ncmds, const struct batch_span *span, const char *line, size_t len)
{
    return cluster_redirect_worker_on_reply(ctx, dl, cmd, cmd_len, ncmds, span, line, len);
}

static int node_of_slot(unsigned slot)
{
    return slot < SPLIT ? NODE_A : NODE_B;
}

/* keys[0..1]: "{tN}a", "{tN}b" of one slot s on A; keys[2..3]: of two
 * other slots on A; keys[4..5]: of two slots on B. */
static void pick_keys(struct harness *h)
{
    for (int n = 0;; n++) {
        int len = snprintf(h->keys[0], sizeof(h->keys[0]), "{t%d}a", n);
        if (node_of_slot(slot_of_key(h->keys[0], (size_t)len)) != NODE_A)
            continue;
        snprintf(h->keys[1], sizeof(h->keys[1]), "{t%d}b", n);
        break;
    }
    h->s = slot_of_key(h->keys[0], strlen(h->keys[0]));
    cr_assert_eq(slot_of_key(h->keys[1], strlen(h->keys[1])), h->s);
    unsigned slots[NKEYS] = {h->s, h->s};
    int k = 2;
    for (int n = 0; k < NKEYS; n++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "k%d", n);
        unsigned slot = slot_of_key(key, (size_t)len);
        bool is_new = true;
        for (int j = 0; j < k; j++)
            is_new &= slots[j] != slot;
        if (node_of_slot(slot) != (k < 4 ? NODE_A : NODE_B) || !is_new)
            continue;
        slots[k] = slot;
        memcpy(h->keys[k++], key, sizeof(key));
    }
}

static struct harness *setup(void)
{
    struct harness *h = calloc(1, sizeof(*h));
    cr_assert_not_null(h);
    cr_assert_eq(job_init(&h->job, 1), 0);
    cr_assert_eq(io_uring_queue_init(64, &h->ring, 0), 0);
    int fds[2][2];
    for (int i = 0; i < 2; i++)
        tcp_pair(&fds[i][0], &fds[i][1], &h->peers[i].port);

    /* The table: masters made as a MOVED makes them, "127.0.0.1:<port>",
     * the name cluster_topology_master_at matches a redirection's address
     * against; A serves [0, SPLIT), B the rest. */
    struct rs_error err = {0};
    cluster_topology_init(&h->topo);
    for (int i = 0; i < 2; i++) {
        unsigned first = i == NODE_A ? 0 : SPLIT, end = i == NODE_A ? SPLIT : SLOT_COUNT;
        snprintf(h->names[i], sizeof(h->names[i]), "127.0.0.1:%d", h->peers[i].port);
        cr_assert_eq(
            cluster_topology_apply_moved(&h->topo, first, h->names[i], strlen(h->names[i]), &err),
            i, "%s", err.msg);
        for (unsigned s = first + 1; s < end; s++)
            cluster_topology_set_owner(&h->topo, s, i);
    }
    cr_assert_eq(cluster_topology_reserve(&h->topo, 8), 0);
    cr_assert_eq(cluster_topology_unserved(&h->topo, NULL, 0), 0);
    cr_assert_eq(dest_route_init(&h->route, 1, &h->topo, NULL, DEST_ROUTE_UNMAPPED_STOP, &err), 0,
                 "%s", err.msg);

    snprintf(h->target.host, sizeof(h->target.host), "127.0.0.1");
    h->target.port = h->peers[NODE_A].port;
    h->target.db = -1;
    snprintf(h->target.name, sizeof(h->target.name), "%s", h->names[NODE_A]);
    h->hub = cluster_redirect_new(&h->job, &h->topo, &h->target, 1, 1000);
    cr_assert_not_null(h->hub);
    h->job.redirect = h->hub;
    h->bw = batch_writer_new(&h->job, 0, 64, (unsigned)h->topo.masters_cap, true);
    cr_assert_not_null(h->bw);
    batch_writer_set_self_sink(h->bw, sink_self, h);
    batch_writer_stream_mode(h->bw);
    h->rw = cluster_redirect_worker_new(h->hub, 0, link_of, h);
    cr_assert_not_null(h->rw);
    for (int i = 0; i < 2; i++) {
        struct dest_link *dl = &h->links[i];
        cr_assert_eq(dest_link_init(dl, fds[i][0], h->names[i], &h->job, batch_done, h), 0);
        dl->hold = cluster_redirect_worker_hold(h->rw);
        dl->redirect = on_redirect;
        dl->redirect_ctx = h->rw;
        struct peer *p = &h->peers[i];
        p->fd = fds[i][1];
        p->node = i;
        p->ask_value = -1;
        p->other_port = h->peers[1 - i].port;
    }
    pick_keys(h);
    h->per_iter = 3;
    h->watched = -1;
    return h;
}

static void teardown(struct harness *h)
{
    io_uring_queue_exit(&h->ring); /* first: nothing left in the kernel's hands */
    for (int i = 0; i < 2; i++) {
        struct dest_link *dl = &h->links[i];
        while (dl->head != NULL) { /* only after a failure */
            struct batch *b = dl->head;
            dl->head = b->next;
            batch_free(b);
        }
        dest_link_deinit(dl);
        close(h->peers[i].fd);
    }
    cluster_redirect_worker_free(h->rw);
    batch_writer_free(h->bw);
    cluster_redirect_free(h->hub);
    cluster_topology_deinit(&h->topo);
    job_deinit(&h->job);
    free(h);
}

/* ---------------------------------------------------------- the script */

/* Appends command "APPEND keys[key] <index>" to the script. */
static void script_add(struct harness *h, int key)
{
    cr_assert_lt(h->ncmds, MAX_CMDS);
    struct cmd *c = &h->cmds[h->ncmds++];
    c->key = key;
    memcpy(c->key_name, h->keys[key], sizeof(c->key_name));
    c->slot = slot_of_key(c->key_name, strlen(c->key_name));
    c->node = -1;
}

/* n commands over all keys, slot s about a third of them (a fixed LCG). */
static void script_mixed(struct harness *h, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        script_add(h, (int)((seed >> 16) % NKEYS));
    }
}

/* The producer: the next commands released, each to the lane of its slot
 * in the table as it is now (the router's dest_route_lane), with its source
 * offsets; not while as many batches are out as allowed (worker.c's
 * can_take). */
static void produce(struct harness *h)
{
    for (int n = 0; n < h->per_iter && h->nwritten < h->navail && !batch_writer_is_full(h->bw);
         n++) {
        int i = h->nwritten;
        struct cmd *c = &h->cmds[i];
        unsigned lane = dest_route_lane(&h->route, c->slot);
        cr_assert_lt(lane, 2);
        c->node = (int)lane; /* one worker: the lane is the node */
        char val[16];
        int vl = snprintf(val, sizeof(val), "%d", i);
        struct rs_slice argv[3] = {
            {"APPEND", 6}, {c->key_name, strlen(c->key_name)}, {val, (size_t)vl}};
        batch_writer_set_offset(h->bw, CMD_FROM(i));
        batch_writer_set_end(h->bw, CMD_TO(i));
        cr_assert_eq(batch_writer_cmd(h->bw, lane, 0, 3, argv), 0);
        h->nwritten++;
    }
}

/* --------------------------------------------------------------- peers */

static void peer_reply(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void peer_reply(struct peer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->out + p->out_len, sizeof(p->out) - p->out_len, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof(p->out) - p->out_len, "peer output full");
    p->out_len += (size_t)n;
}

/* Slot `slot` changes owner at the give_at[node]-th of its commands node
 * receives (moves[], struct move_rule). */
static void move_at(struct harness *h, unsigned slot, int node, int give_at)
{
    struct move_rule *r = NULL;
    for (int i = 0; i < h->nmoves && r == NULL; i++)
        if (h->moves[i].slot == slot)
            r = &h->moves[i];
    if (r == NULL) {
        cr_assert_lt(h->nmoves, 2);
        r = &h->moves[h->nmoves++];
        *r = (struct move_rule){slot, node_of_slot(slot), {-1, -1}, {0, 0}};
    }
    r->give_at[node] = give_at;
}

/* One command taken: the rules (ASK, the moves), then applied (logged) or
 * refused. */
static void peer_answer(struct harness *h, struct peer *p, int argc, char argv[][64])
{
    cr_assert_lt(p->nlog, LOG_CAP);
    struct logged *l = &p->log[p->nlog];
    snprintf(l->name, sizeof(l->name), "%.15s", argv[0]);
    l->at = ++h->clock;
    if (strcmp(argv[0], "ASKING") == 0) {
        l->key[0] = '\0';
        l->value = -1;
        p->nlog++;
        peer_reply(p, "+OK\r\n");
        return;
    }
    cr_assert_str_eq(argv[0], "APPEND");
    cr_assert_eq(argc, 3);
    unsigned slot = slot_of_key(argv[1], strlen(argv[1]));
    int value = atoi(argv[2]);
    if (value == p->ask_value) {
        p->refused[p->nrefused++] = value;
        peer_reply(p, "-ASK %u 127.0.0.1:%d\r\n", slot, p->other_port);
        return;
    }
    for (int i = 0; i < h->nmoves; i++) {
        struct move_rule *r = &h->moves[i];
        if (r->slot != slot)
            continue;
        if (r->owner == p->node && r->seen[p->node] == r->give_at[p->node])
            r->owner = 1 - p->node;
        r->seen[p->node]++;
        if (r->owner != p->node) {
            p->refused[p->nrefused++] = value;
            peer_reply(p, "-MOVED %u 127.0.0.1:%d\r\n", slot, p->other_port);
            return;
        }
    }
    snprintf(l->key, sizeof(l->key), "%.31s", argv[1]);
    l->value = value;
    p->nlog++;
    peer_reply(p, ":%d\r\n", value); /* replies of varied length */
}

/* Reads what came, answers the complete commands (per_step at most, none
 * when muted), writes its replies (chunk bytes at most). */
static void peer_step(struct harness *h, struct peer *p)
{
    for (;;) {
        ssize_t n = read(p->fd, p->in + p->in_len, sizeof(p->in) - p->in_len);
        if (n <= 0)
            break;
        p->in_len += (size_t)n;
    }
    size_t off = 0;
    for (int taken = 0; !p->is_muted && (p->per_step == 0 || taken < p->per_step); taken++) {
        const char *s = p->in + off, *end = p->in + p->in_len;
        if (s >= end)
            break;
        cr_assert_eq(*s, '*', "not a RESP array at %zu", off);
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (nl == NULL)
            break;
        int argc = atoi(s + 1);
        char argv[8][64];
        const char *q = nl + 1;
        bool whole = true;
        for (int i = 0; i < argc; i++) {
            nl = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
            if (nl == NULL) {
                whole = false;
                break;
            }
            size_t len = (size_t)atoi(q + 1);
            q = nl + 1;
            if ((size_t)(end - q) < len + 2) {
                whole = false;
                break;
            }
            if (i < 8)
                snprintf(argv[i], 64, "%.*s", (int)(len < 63 ? len : 63), q);
            q += len + 2;
        }
        if (!whole)
            break;
        off = (size_t)(q - p->in);
        peer_answer(h, p, argc, argv);
    }
    memmove(p->in, p->in + off, p->in_len - off);
    p->in_len -= off;
    size_t n = p->out_len;
    if (p->chunk > 0 && n > p->chunk)
        n = p->chunk;
    if (n > 0) {
        ssize_t w = write(p->fd, p->out, n);
        if (w > 0) {
            memmove(p->out, p->out + w, p->out_len - (size_t)w);
            p->out_len -= (size_t)w;
        }
    }
}

/* ---------------------------------------------------------------- loop */

/* One iteration of the worker's loop (worker.c): the producer's poll and
 * commands, the hand-over, the redirections' tick, the links' sends and
 * receives, their completions; then the peers. */
static void step(struct harness *h)
{
    cluster_redirect_poll(h->hub, h->bw);
    produce(h);
    batch_writer_publish(h->bw);
    cluster_redirect_worker_tick(h->rw, h->links, 2);
    for (unsigned i = 0; i < 2; i++) {
        dest_link_tick(&h->links[i]);
        dest_link_prep_send(&h->links[i], &h->ring, UD(OP_SEND, i));
        dest_link_prep_recv(&h->links[i], &h->ring, UD(OP_RECV, i));
    }
    io_uring_submit(&h->ring);
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = STEP_NS};
    if (io_uring_wait_cqe_timeout(&h->ring, &cqe, &ts) == 0) {
        unsigned head, n = 0;
        io_uring_for_each_cqe(&h->ring, head, cqe)
        {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            cr_assert_lt(UD_INDEX(ud), 2);
            struct dest_link *dl = &h->links[UD_INDEX(ud)];
            switch (UD_OP(ud)) {
            case OP_SEND:
                dest_link_on_send(dl, cqe->res);
                break;
            case OP_RECV:
                dest_link_on_recv(dl, cqe->res);
                break;
            default:
                cr_assert_fail("a completion of no operation: %#llx", (unsigned long long)ud);
            }
            n++;
        }
        io_uring_cq_advance(&h->ring, n);
    }
    for (int i = 0; i < 2; i++)
        peer_step(h, &h->peers[i]);
    h->steps++;
    if (h->check != NULL)
        h->check(h);
}

static bool failed(struct harness *h)
{
    return atomic_load(&h->job.failed) != 0;
}

static void run_steps(struct harness *h, int n)
{
    for (int i = 0; i < n && !failed(h); i++)
        step(h);
}

/* Everything released is written, sent, applied and home. */
static bool all_done(struct harness *h)
{
    return h->nwritten == h->navail && dest_link_is_idle(&h->links[0]) &&
           dest_link_is_idle(&h->links[1]) && cluster_redirect_worker_idle(h->rw) &&
           cluster_redirect_idle(h->hub) && batch_writer_outstanding(h->bw) == 0;
}

static void run_until_done(struct harness *h, int ms)
{
    double end = now_s() + ms / 1000.0;
    while (!failed(h) && !all_done(h) && now_s() < end)
        step(h);
    cr_assert(!failed(h), "the job failed: %s", h->job.fail_msg);
    cr_assert(all_done(h), "not done after %d ms (%d of %d written)", ms, h->nwritten, h->navail);
}

/* Releases the script to the producer `every` commands at a time, with
 * `steps` loop iterations after each, then runs until all is done. */
static void run_script(struct harness *h, int every, int steps)
{
    while (h->navail < h->ncmds && !failed(h)) {
        h->navail = h->navail + every < h->ncmds ? h->navail + every : h->ncmds;
        run_steps(h, steps);
    }
    run_until_done(h, 10000);
}

/* The same, releasing `every` more commands whenever A has at most slack
 * bytes of replies left to write: a producer that keeps pace with a slow
 * reader (A's replies trickle), so the move comes while it still writes. */
static void run_script_paced(struct harness *h, int every, size_t slack)
{
    while (h->navail < h->ncmds && !failed(h)) {
        if (h->peers[NODE_A].out_len <= slack)
            h->navail = h->navail + every < h->ncmds ? h->navail + every : h->ncmds;
        step(h);
    }
    run_until_done(h, 10000);
}

/* -------------------------------------------------------------- oracle */

static bool was_refused(const struct peer *p, int value)
{
    for (int i = 0; i < p->nrefused; i++)
        if (p->refused[i] == value)
            return true;
    return false;
}

static bool refused_anywhere(const struct harness *h, int value)
{
    return was_refused(&h->peers[NODE_A], value) || was_refused(&h->peers[NODE_B], value);
}

/* Every command written is applied exactly once, on the node of its lane
 * when no node refused it; and the commands of a slot (by_key: of a key,
 * what ASK keeps) in source order, on both nodes together, in the order
 * the nodes took them. */
static void expect_each_once_in_order(struct harness *h, bool by_key)
{
    int *count = calloc(MAX_CMDS, sizeof(int)), *where = calloc(MAX_CMDS, sizeof(int));
    int *last = malloc(SLOT_COUNT * sizeof(int));
    cr_assert(count && where && last);
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        last[s] = -1;
    const struct peer *a = &h->peers[NODE_A], *b = &h->peers[NODE_B];
    int ia = 0, ib = 0;
    while (ia < a->nlog || ib < b->nlog) { /* both logs merged by the time taken */
        bool from_a = ib == b->nlog || (ia < a->nlog && a->log[ia].at < b->log[ib].at);
        const struct logged *l = from_a ? &a->log[ia++] : &b->log[ib++];
        int node = from_a ? NODE_A : NODE_B;
        if (strcmp(l->name, "APPEND") != 0)
            continue;
        cr_assert(l->value >= 0 && l->value < h->nwritten, "node %d applied value %d", node,
                  l->value);
        count[l->value]++;
        where[l->value] = node;
        const struct cmd *c = &h->cmds[l->value];
        unsigned group = by_key ? (unsigned)c->key : c->slot;
        cr_expect_gt(l->value, last[group],
                     "node %d applied APPEND %s %d after APPEND %d of the same %s: out of source "
                     "order",
                     node, l->key, l->value, last[group], by_key ? "key" : "slot");
        last[group] = l->value;
    }
    for (int i = 0; i < h->nwritten; i++) {
        const struct cmd *c = &h->cmds[i];
        cr_expect_eq(count[i], 1, "APPEND %s %d (slot %u) applied %d times", c->key_name, i,
                     c->slot, count[i]);
        if (count[i] == 1 && !refused_anywhere(h, i))
            cr_expect_eq(where[i], c->node, "APPEND %s %d (slot %u) applied on node %d, not %d",
                         c->key_name, i, c->slot, where[i], c->node);
    }
    free(count);
    free(where);
    free(last);
}

/* The counters agree with what the peers refused, and nothing waits. */
static void expect_stats_and_idle(struct harness *h)
{
    uint64_t moved, asked, resent, refused = 0, asking = 0;
    for (int n = 0; n < 2; n++) {
        refused += (uint64_t)h->peers[n].nrefused;
        for (int j = 0; j < h->peers[n].nlog; j++)
            asking += strcmp(h->peers[n].log[j].name, "ASKING") == 0;
    }
    cluster_redirect_stats(h->hub, &moved, &asked, &resent);
    cr_expect_eq(moved + asked, refused, "moved %lu + asked %lu, refused %lu", (unsigned long)moved,
                 (unsigned long)asked, (unsigned long)refused);
    cr_expect_eq(asked, asking);
    cr_expect_eq(resent, refused + asking, "sent again %lu, refused %lu, ASKING %lu",
                 (unsigned long)resent, (unsigned long)refused, (unsigned long)asking);
    cr_expect(cluster_redirect_idle(h->hub));
    cr_expect_eq(cluster_redirect_floor(h->hub), UINT64_MAX);
}

/* One move of `slot` from A to B at A's k-th command of it, checked: A
 * took those it met before its k-th and refused every later one it met;
 * B took the rest, the redirected ones (routed to A) all before any
 * routed to it after the move; nothing else moved. */
static void expect_moved_slot_followed(struct harness *h, unsigned slot, int k)
{
    const struct peer *a = &h->peers[NODE_A], *b = &h->peers[NODE_B];
    int ordinal = 0, routed_to_b = 0, redirected = 0;
    for (int i = 0; i < h->nwritten; i++) {
        const struct cmd *c = &h->cmds[i];
        bool is_ruled = false;
        for (int r = 0; r < h->nmoves; r++)
            is_ruled |= h->moves[r].slot == c->slot;
        if (!is_ruled)
            cr_expect_eq(c->node, node_of_slot(c->slot), "command %d of slot %u was routed to %d",
                         i, c->slot, c->node);
        if (c->slot != slot)
            continue;
        if (c->node == NODE_B) {
            routed_to_b++;
            cr_expect_geq(ordinal, k, "command %d of slot %u was routed to B before the move", i,
                          slot);
        } else {
            cr_expect_eq(routed_to_b, 0, "command %d of slot %u was routed to A after the move", i,
                         slot);
            cr_expect_eq(was_refused(a, i), ordinal >= k, "A %s command %d, its %d-th of slot %u",
                         was_refused(a, i) ? "refused" : "took", i, ordinal, slot);
            redirected += ordinal >= k;
        }
        ordinal++;
    }
    cr_assert_gt(redirected, 1, "the scenario redirected %d commands", redirected);
    cr_assert_gt(routed_to_b, 0, "the scenario routed no command of slot %u to B after the move",
                 slot);
    /* "Sent again after, never before, the earlier commands of its slot." */
    int first_direct = -1;
    for (int j = 0; j < b->nlog; j++) {
        const struct logged *l = &b->log[j];
        if (l->value < 0 || h->cmds[l->value].slot != slot)
            continue;
        if (h->cmds[l->value].node == NODE_B && first_direct < 0)
            first_direct = l->value;
        else if (h->cmds[l->value].node == NODE_A)
            cr_expect_lt(first_direct, 0,
                         "B applied APPEND %s %d, redirected from A, after APPEND %d, routed to "
                         "B after the move",
                         l->key, l->value, first_direct);
    }
    cr_expect_eq(cluster_topology_owner(&h->topo, slot), NODE_B);
}

/* ---------------------------------------------------------------- tests */

Test(cluster_redirect, commands_of_a_moved_slot_reach_the_new_owner_in_source_order_exactly_once)
{
    struct harness *h = setup();
    enum { K = 10 };
    move_at(h, h->s, NODE_A, K);
    h->peers[NODE_A].per_step = 1; /* A lags: the move comes while much is in flight and unsent */
    script_mixed(h, 240, 7);
    run_script(h, 30, 12);
    expect_each_once_in_order(h, false);
    expect_moved_slot_followed(h, h->s, K);
    expect_stats_and_idle(h);
    teardown(h);
}

Test(cluster_redirect, the_same_with_the_replies_split_at_every_byte)
{
    /* A writes its replies a few bytes per loop iteration (1 to 7), so the
     * link reads them in pieces cut anywhere, MOVED lines included. */
    for (size_t chunk = 1; chunk <= 7; chunk++) {
        struct harness *h = setup();
        int k = 3 + (int)chunk;
        move_at(h, h->s, NODE_A, k);
        h->peers[NODE_A].chunk = chunk;
        script_mixed(h, 120, 11 + (unsigned)chunk);
        run_script_paced(h, 4, 40);
        expect_each_once_in_order(h, false);
        expect_moved_slot_followed(h, h->s, k);
        expect_stats_and_idle(h);
        teardown(h);
    }
}

Test(cluster_redirect, an_ask_sends_asking_and_the_command_to_the_other_node_and_leaves_the_table)
{
    struct harness *h = setup();
    struct peer *a = &h->peers[NODE_A], *b = &h->peers[NODE_B];
    /* keys[0] once, answered -ASK; keys[1], of the same slot, around it */
    static const int first[] = {1, 2, 4, 1, 3, 5, 1, 0, 1, 2, 4, 1, 3, 1, 5, 1};
    static const int second[] = {1, 2, 1, 4, 1, 5, 3, 1, 1, 2};
    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
        script_add(h, first[i]);
    a->ask_value = 7;
    cr_assert_eq(h->cmds[7].key, 0);
    run_script(h, 4, 2);
    int nfirst = h->ncmds;
    for (size_t i = 0; i < sizeof(second) / sizeof(second[0]); i++)
        script_add(h, second[i]);
    run_script(h, 3, 2);

    int asking = 0;
    for (int j = 0; j < b->nlog; j++) {
        if (strcmp(b->log[j].name, "ASKING") != 0)
            continue;
        asking++;
        cr_assert_lt(j + 1, b->nlog, "ASKING was the last command B received");
        cr_expect_str_eq(b->log[j + 1].name, "APPEND");
        cr_expect_str_eq(b->log[j + 1].key, h->keys[0]);
        cr_expect_eq(b->log[j + 1].value, 7, "ASKING was followed by APPEND %s %d",
                     b->log[j + 1].key, b->log[j + 1].value);
    }
    cr_expect_eq(asking, 1, "B received ASKING %d times", asking);
    cr_expect_eq(a->nrefused, 1);
    expect_each_once_in_order(h, true);
    /* the table did not change: later commands of slot s went to A, and A took them */
    cr_expect_eq(cluster_topology_owner(&h->topo, h->s), NODE_A);
    int later = 0;
    for (int i = nfirst; i < h->ncmds; i++)
        if (h->cmds[i].slot == h->s) {
            cr_expect_eq(h->cmds[i].node, NODE_A, "command %d of slot s was routed to B", i);
            later++;
        }
    cr_assert_gt(later, 0);
    uint64_t moved, asked, resent;
    cluster_redirect_stats(h->hub, &moved, &asked, &resent);
    cr_expect_eq(moved, 0);
    cr_expect_eq(asked, 1);
    expect_stats_and_idle(h);
    teardown(h);
}

/* After every step: once the link has met the MOVED of the watched command
 * and until its redirect batch has all its replies, the floor stays at or
 * below the command's span start and the hub is not idle. */
static void check_floor(struct harness *h)
{
    uint64_t moved, asked, resent;
    cluster_redirect_stats(h->hub, &moved, &asked, &resent);
    if (moved == 0 || h->redirect_done > 0)
        return;
    cr_assert_leq(cluster_redirect_floor(h->hub), CMD_FROM(h->watched),
                  "step %ld: the floor passed command %d, redirected and not yet applied", h->steps,
                  h->watched);
    cr_assert(!cluster_redirect_idle(h->hub), "step %ld: idle while command %d waits", h->steps,
              h->watched);
}

Test(cluster_redirect, the_applied_floor_stays_below_a_redirected_command_until_it_is_applied)
{
    struct harness *h = setup();
    struct peer *a = &h->peers[NODE_A], *b = &h->peers[NODE_B];
    /* slot s and A's other slots only: B gets nothing but slot s */
    static const int keys[] = {0, 2, 0, 3, 1, 0, 2, 1, 3, 0, 1, 2, 0, 0, 3, 1};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        script_add(h, keys[i]);
    move_at(h, h->s, NODE_A, 2); /* at the third command of slot s, command 4 */
    h->watched = 4;
    h->check = check_floor;
    h->per_iter = 1; /* slowly: commands of slot s come after the move too */
    b->is_muted = true;
    cr_assert_eq(cluster_redirect_floor(h->hub), UINT64_MAX);
    cr_assert(cluster_redirect_idle(h->hub));

    h->navail = h->ncmds;
    double end = now_s() + 0.15;
    while (!failed(h) && now_s() < end)
        step(h);
    cr_assert(!failed(h), "the job failed: %s", h->job.fail_msg);
    cr_assert_geq(a->nrefused, 1);
    cr_assert_eq(a->refused[0], h->watched);
    /* B has the command, unanswered */
    char want[64];
    int n = snprintf(want, sizeof(want), "$%zu\r\n%s\r\n$1\r\n%d\r\n", strlen(h->keys[1]),
                     h->keys[1], h->watched);
    cr_assert_not_null(memmem(b->in, b->in_len, want, (size_t)n),
                       "B did not receive the redirected command");
    cr_expect_eq(h->redirect_done, 0);
    cr_expect_leq(cluster_redirect_floor(h->hub), CMD_FROM(h->watched));
    cr_expect(!cluster_redirect_idle(h->hub));

    b->is_muted = false;
    run_until_done(h, 5000);
    cr_expect_gt(h->redirect_done, 0);
    cr_expect(cluster_redirect_idle(h->hub));
    cr_expect_eq(cluster_redirect_floor(h->hub), UINT64_MAX);
    expect_each_once_in_order(h, false);
    expect_moved_slot_followed(h, h->s, 2);
    expect_stats_and_idle(h);
    teardown(h);
}

Test(cluster_redirect, two_slots_moved_at_different_times_each_follow_in_order)
{
    struct harness *h = setup();
    unsigned s2 = slot_of_key(h->keys[2], strlen(h->keys[2]));
    move_at(h, h->s, NODE_A, 6);
    move_at(h, s2, NODE_A, 14);
    h->peers[NODE_A].per_step = 1;
    script_mixed(h, 300, 3);
    run_script(h, 30, 12);
    expect_each_once_in_order(h, false);
    expect_moved_slot_followed(h, h->s, 6);
    expect_moved_slot_followed(h, s2, 14);
    expect_stats_and_idle(h);
    teardown(h);
}

Test(cluster_redirect, a_slot_moved_back_while_its_commands_are_sent_again_is_followed_again)
{
    /* A gives slot s to B at its 8th command of it; B gives it back at its
     * 4th, one of those A refused: the rest of them are refused again, by
     * B, and sent again to A (CLUSTER_DESTINATION.md §3, step 6). */
    struct harness *h = setup();
    move_at(h, h->s, NODE_A, 8);
    move_at(h, h->s, NODE_B, 3);
    h->peers[NODE_A].per_step = 1;
    h->peers[NODE_B].per_step = 1;
    script_mixed(h, 300, 5);
    run_script(h, 30, 12);
    expect_each_once_in_order(h, false);
    expect_stats_and_idle(h);
    cr_expect_eq(cluster_topology_owner(&h->topo, h->s), NODE_A);
    int twice = 0;
    for (int i = 0; i < h->nwritten; i++)
        if (was_refused(&h->peers[NODE_A], i) && was_refused(&h->peers[NODE_B], i)) {
            twice++;
            cr_expect_eq(h->cmds[i].node, NODE_A);
        }
    cr_assert_gt(twice, 0, "no command was refused by both nodes");
    /* the routes of slot s: A, then B, then A again */
    int changes = 0, prev = NODE_A;
    for (int i = 0; i < h->nwritten; i++)
        if (h->cmds[i].slot == h->s && h->cmds[i].node != prev) {
            changes++;
            prev = h->cmds[i].node;
        }
    cr_expect_eq(changes, 2, "slot s changed route %d times", changes);
    teardown(h);
}
