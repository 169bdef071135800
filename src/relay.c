/* relay.c - the destination as ringsync's replica (see relay.h, RELAY.md). */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/read.h>
#include <inttypes.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster_topology.h"
#include "dest_nodes.h"
#include "job.h"
#include "lag_clock.h"
#include "control_link.h"
#include "log.h"
#include "source_link.h"
#include "source_reconnect.h"
#include "status_server.h"
#include "sync_run.h"

#define RELAY_S2D_CAP       (4u << 20)  /* source -> destination ring */
#define RELAY_D2S_CAP       (64u << 10) /* destination -> source ring (its ACKs) */
#define RELAY_WAIT_SAY_S    10          /* no destination for this long: said once */
#define RELAY_DRAIN_S       30          /* a clean stop waits this long for the last ACK */
#define RELAY_HANDSHAKE_MAX 65536       /* bytes of the destination's handshake */
#define RELAY_PROGRESS_S    5.0
#define RELAY_TOKEN_PREFIX  "ringsync-relay-"
#define RELAY_MAX_BACKOFF_S 5.0

enum relay_kind { RELAY_FRESH, RELAY_REPLICA, RELAY_PROMOTED };

/* Why a session (one destination connection) ended. */
enum relay_end {
    END_SOURCE_LOST, /* the destination reconnects: a new session */
    END_DEST_LOST,
    END_STOP,          /* a clean stop: everything forwarded is acknowledged */
    END_STOP_LATE,     /* a clean stop whose last ACK did not come in time */
    END_STOP_SNAPSHOT, /* a signal during the snapshot */
    END_STOP_IDLE,     /* a signal while no destination was connected */
    END_STOP_NOW,      /* a second signal */
    END_FAILED,        /* said */
};

struct ring {
    char *p;
    size_t cap;
    uint64_t head, tail; /* bytes received, sent */
    bool recv_on, send_on;
};

struct relay {
    const struct sync_opts *o;
    const struct endpoint *source, *target;
    int lfd;
    char host[256];
    int port;
    char token[64];
    char old_load[64], old_auth[512], old_user[128];
    bool changed; /* the destination's settings are ours: put them back */
    char src_replid[SOURCE_REPLID_LEN + 1], src_replid2[SOURCE_REPLID_LEN + 1];
    char map_from[SOURCE_REPLID_LEN + 1]; /* a promoted destination's own replid ... */
    char map_to[SOURCE_REPLID_LEN + 1];   /* ... asked for as this one */
    struct io_uring ring;
    struct ring sd, ds;
    double t0;
    /* the session */
    int sfd, dfd;
    bool full;          /* its answer was +FULLRESYNC */
    bool in_snapshot;   /* snapshot bytes are being forwarded */
    uint64_t snap_left; /* of a `$<len>` snapshot; UINT64_MAX: ends at the mark */
    char mark[SOURCE_EOF_MARK_LEN];
    char tail[SOURCE_EOF_MARK_LEN];
    size_t tail_len;
    uint64_t snap_bytes;
    double snap_t0, last_source_io;
    uint64_t received; /* the source's offset of the last stream byte forwarded */
    uint64_t acked;    /* the destination's last REPLCONF ACK */
    bool acked_any;    /* in this session */
    bool snapshot_said;
    bool consistent; /* the destination holds a whole copy at offset `acked` */
    char dest_last;  /* the last byte the destination sent */
    redisReader *acks;
    unsigned sessions;
    /* the status server's view (status_server.h): a job of one worker that
     * runs no worker, its counters set by the forwarding loop */
    struct job job;
    bool job_on;
    int64_t caught_up_ns; /* when the destination last acknowledged all received */
};

/* ----------------------------------------------------------------- helpers */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* "7.0.15" as 70015 (major, minor, patch below 100); 0 when unreadable. */
static long version_number(const char *v)
{
    long a = 0, b = 0, c = 0;
    if (sscanf(v, "%ld.%ld.%ld", &a, &b, &c) < 2)
        return 0;
    return a * 10000 + b * 100 + c;
}

/* One INFO field of ep (through cl) into out; "" when the section has no
 * such field. -1 after saying why (naming what). */
static int info(struct control_link *cl, const char *section, const char *field, char *out,
                size_t cap, const char *what)
{
    struct rs_error err = {0};
    int rc = control_link_info_field(cl, section, field, out, cap, &err);
    if (rc == -ENOENT) {
        out[0] = '\0';
        return 0;
    }
    if (rc < 0) {
        rs_log("%s %s: %s", what, cl->name, err.msg);
        return -1;
    }
    return 0;
}

/* A command on the destination that must answer +OK (or any non-error):
 * -1 after saying which, with the server's answer. */
static int dest_command(struct control_link *cl, const char *a0, const char *a1, const char *a2,
                        const char *a3)
{
    const char *argv[4] = {a0, a1, a2, a3};
    int argc = a3 ? 4 : a2 ? 3 : a1 ? 2 : 1;
    struct control_reply rep = {0};
    struct rs_error err = {0};
    if (control_link_command(cl, &rep, &err, argc, argv, NULL) < 0) {
        rs_log("destination %s: %s %s: %s", cl->name, a0, a1 ? a1 : "", err.msg);
        return -1;
    }
    int rc = 0;
    if (rep.r->type == REDIS_REPLY_ERROR) {
        /* never the value of masterauth in a message */
        bool secret = a1 && strcasecmp(a1, "SET") == 0 && a2 && strcasecmp(a2, "masterauth") == 0;
        rs_log("destination %s refused %s %s%s%s: %s (a relay needs CONFIG, REPLICAOF and INFO "
               "there)",
               cl->name, a0, a1 ? a1 : "", a2 ? " " : "", a2 ? a2 : "",
               secret ? "(its answer left out)" : rep.r->str);
        rc = -1;
    }
    control_reply_free(&rep);
    return rc;
}

static int config_get(struct control_link *cl, const char *name, char *out, size_t cap)
{
    const char *argv[3] = {"CONFIG", "GET", name};
    struct control_reply rep = {0};
    struct rs_error err = {0};
    out[0] = '\0';
    if (control_link_command(cl, &rep, &err, 3, argv, NULL) < 0) {
        rs_log("destination %s: CONFIG GET %s: %s", cl->name, name, err.msg);
        return -1;
    }
    int rc = 0;
    if (rep.r->type == REDIS_REPLY_ARRAY && rep.r->elements == 2 &&
        rep.r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", rep.r->element[1]->str);
    else if (rep.r->type == REDIS_REPLY_ERROR) {
        rs_log("destination %s refused CONFIG GET %s: %s (a relay needs CONFIG, REPLICAOF and "
               "INFO there)",
               cl->name, name, rep.r->str);
        rc = -1;
    }
    control_reply_free(&rep);
    return rc;
}

/* Writes all of p to fd (blocking, within timeout_ms of silence). */
static int write_all(int fd, const void *p, size_t n, int timeout_ms)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, timeout_ms) <= 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ settle */

int relay_settle(const struct sync_opts *o)
{
    const char *bad = NULL;
    if (o->db_map || o->db_prefix || o->db_unmapped_skip)
        bad = "--db-map, --db-prefix and --db-unmapped";
    else if (key_filter_is_active(&o->filter))
        bad = "filters";
    else if (o->expiry_margin_given && o->expiry_margin_ms != 0)
        bad = "a non-zero --expiry-margin";
    else if (o->checkpoint_file)
        bad = "--checkpoint file:";
    else if (o->direction || o->bidirectional)
        bad = "two-way sync";
    else if (rate_limit_spec_on(&o->snapshot_limit) || rate_limit_spec_on(&o->stream_limit))
        bad = "rate limits (the destination reads at its own pace as a replica)";
    else if (o->heartbeat_key)
        bad = "--heartbeat-key (not in relay mode yet)";
    else if (o->forward_publish)
        bad = "--forward-publish (a replica receives what the source propagates, PUBLISH "
              "included)";
    if (bad != NULL) {
        rs_log("--target-mode relay forwards the source's bytes untouched: %s cannot apply "
               "(src/RELAY.md)",
               bad);
        return 2;
    }
    if (o->nonempty == NONEMPTY_KEEP) {
        rs_log("--target-mode relay: --target-nonempty keep cannot be honoured (a replica's "
               "full sync replaces what it holds); use refuse or flush");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------- the checks */

static int check_source(struct relay *r, struct control_link *scl, long *version)
{
    char v[64], c[16];
    if (info(scl, "server", "redis_version", v, sizeof(v), "source") < 0 ||
        info(scl, "cluster", "cluster_enabled", c, sizeof(c), "source") < 0 ||
        info(scl, "replication", "master_replid", r->src_replid, sizeof(r->src_replid), "source") <
            0 ||
        info(scl, "replication", "master_replid2", r->src_replid2, sizeof(r->src_replid2),
             "source") < 0)
        return -1;
    if (strcmp(c, "1") == 0) {
        rs_log("source %s is a cluster node: --target-mode relay serves one standalone source "
               "(src/RELAY.md)",
               scl->name);
        return -1;
    }
    *version = version_number(v);
    return 0;
}

/* What the destination is (RELAY.md step 1); -1 after saying why it
 * cannot be one. */
static int check_target(struct relay *r, struct control_link *tcl, long src_version,
                        enum relay_kind *kind)
{
    char v[64], c[16], role[16], replid[64], replid2[64], off[32], off2[32], mhost[256], mport[16];
    if (info(tcl, "server", "redis_version", v, sizeof(v), "destination") < 0 ||
        info(tcl, "cluster", "cluster_enabled", c, sizeof(c), "destination") < 0 ||
        info(tcl, "replication", "role", role, sizeof(role), "destination") < 0 ||
        info(tcl, "replication", "master_replid", replid, sizeof(replid), "destination") < 0 ||
        info(tcl, "replication", "master_replid2", replid2, sizeof(replid2), "destination") < 0 ||
        info(tcl, "replication", "master_repl_offset", off, sizeof(off), "destination") < 0 ||
        info(tcl, "replication", "second_repl_offset", off2, sizeof(off2), "destination") < 0 ||
        info(tcl, "replication", "master_host", mhost, sizeof(mhost), "destination") < 0 ||
        info(tcl, "replication", "master_port", mport, sizeof(mport), "destination") < 0)
        return -1;
    if (strcmp(c, "1") == 0) {
        rs_log("destination %s is a cluster node: --target-mode relay makes one standalone "
               "server a replica (for a cluster use --target-mode cluster)",
               tcl->name);
        return -1;
    }
    long dv = version_number(v);
    if (dv != 0 && src_version != 0 && dv / 100 < src_version / 100) {
        rs_log("destination %s runs %s, older than the source: it cannot load the source's "
               "snapshot as a replica (a relay needs the destination's version at least the "
               "source's)",
               tcl->name, v);
        return -1;
    }
    bool ours = replid[0] != '\0' &&
                (strcmp(replid, r->src_replid) == 0 ||
                 (strcmp(r->src_replid2, "0000000000000000000000000000000000000000") != 0 &&
                  strcmp(replid, r->src_replid2) == 0));
    if (strcmp(role, "slave") == 0) {
        if (ours) {
            *kind = RELAY_REPLICA;
            return 0;
        }
        rs_log("destination %s is a replica of %s:%s, whose data is not the source's: "
               "REPLICAOF NO ONE on it first, or give another destination",
               tcl->name, mhost, mport);
        return -1;
    }
    unsigned long long o1 = strtoull(off, NULL, 10), o2 = strtoull(off2, NULL, 10);
    if (strcmp(replid2, r->src_replid) == 0 ||
        (strcmp(replid2, r->src_replid2) == 0 && strcmp(replid2, "0000000000000000000000000000"
                                                                 "000000000000") != 0)) {
        if (o1 + 1 == o2) {
            *kind = RELAY_PROMOTED;
            snprintf(r->map_from, sizeof(r->map_from), "%.*s", SOURCE_REPLID_LEN, replid);
            snprintf(r->map_to, sizeof(r->map_to), "%.*s", SOURCE_REPLID_LEN, replid2);
            return 0;
        }
        rs_log("destination %s was a replica of the source, promoted at offset %llu, and has "
               "taken writes since (its offset is %llu): it is treated as a destination with "
               "keys of its own",
               tcl->name, o2 - 1, o1);
    }
    *kind = RELAY_FRESH;
    uint64_t keys = 0;
    struct rs_error err = {0};
    if (control_link_dbsize_all(tcl, &keys, &err) < 0) {
        rs_log("destination %s: %s", tcl->name, err.msg);
        return -1;
    }
    if (keys > 0 && r->o->nonempty == NONEMPTY_REFUSE) {
        rs_log("destination %s holds %" PRIu64
               " keys: refusing to make it a replica, whose full sync replaces them "
               "(--target-nonempty flush allows it)",
               tcl->name, keys);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ the listener */

static int listen_on(struct relay *r)
{
    const char *spec = r->o->relay_listen ? r->o->relay_listen : RELAY_DEFAULT_LISTEN;
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(r->host)) {
        rs_log("--relay-listen takes HOST:PORT, not '%s'", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') { /* [::1]:port */
        memcpy(r->host, spec + 1, hl - 2);
        r->host[hl - 2] = '\0';
    } else {
        memcpy(r->host, spec, hl);
        r->host[hl] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535) {
        rs_log("--relay-listen: bad port in '%s'", spec);
        return -1;
    }
    if (strcmp(r->host, "0.0.0.0") == 0 || strcmp(r->host, "::") == 0) {
        rs_log("--relay-listen %s: the destination is told this address (REPLICAOF): give the "
               "one it reaches ringsync at",
               spec);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE},
                    *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%ld", port);
    int g = getaddrinfo(r->host, ps, &hints, &ai);
    if (g != 0) {
        rs_log("--relay-listen %s: %s (a numeric address)", spec, gai_strerror(g));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4) < 0) {
        rs_log("--relay-listen %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    r->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    r->lfd = fd;
    return 0;
}

/* ---------------------------------------------- the destination's settings */

/* Makes the destination a replica of the relay (RELAY.md step 2). */
static int point_destination(struct relay *r, struct control_link *tcl)
{
    if (config_get(tcl, "repl-diskless-load", r->old_load, sizeof(r->old_load)) < 0 ||
        config_get(tcl, "masterauth", r->old_auth, sizeof(r->old_auth)) < 0 ||
        config_get(tcl, "masteruser", r->old_user, sizeof(r->old_user)) < 0)
        return -1;
    if (strncmp(r->old_auth, RELAY_TOKEN_PREFIX, strlen(RELAY_TOKEN_PREFIX)) == 0) {
        /* a relay that crashed set these: the server's defaults are what
         * there was before it (RELAY.md step 7) */
        r->old_auth[0] = '\0';
        snprintf(r->old_load, sizeof(r->old_load), "disabled");
    }
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        rs_log("cannot draw the relay's password: %s", strerror(errno));
        return -1;
    }
    size_t n = (size_t)snprintf(r->token, sizeof(r->token), "%s", RELAY_TOKEN_PREFIX);
    for (size_t i = 0; i < sizeof(rnd); i++)
        n += (size_t)snprintf(r->token + n, sizeof(r->token) - n, "%02x", rnd[i]);
    r->changed = true;
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    if (dest_command(tcl, "CONFIG", "SET", "repl-diskless-load", "on-empty-db") < 0 ||
        dest_command(tcl, "CONFIG", "SET", "masterauth", r->token) < 0 ||
        (r->old_user[0] != '\0' && dest_command(tcl, "CONFIG", "SET", "masteruser", "") < 0) ||
        dest_command(tcl, "REPLICAOF", r->host, port, NULL) < 0)
        return -1;
    return 0;
}

/* REPLICAOF NO ONE and the three settings as they were. */
static int promote(struct relay *r)
{
    if (!r->changed)
        return 0;
    struct control_link tcl = {0};
    struct rs_error err = {0};
    if (control_link_open(&tcl, r->target, r->o->timeout_ms, &err) < 0) {
        rs_log("cannot promote the destination (REPLICAOF NO ONE): %s; it stays a replica of "
               "%s:%d until it is promoted by hand",
               err.msg, r->host, r->port);
        return -1;
    }
    int rc = dest_command(&tcl, "REPLICAOF", "NO", "ONE", NULL);
    if (rc == 0 && (dest_command(&tcl, "CONFIG", "SET", "repl-diskless-load", r->old_load) < 0 ||
                    dest_command(&tcl, "CONFIG", "SET", "masterauth", r->old_auth) < 0 ||
                    (r->old_user[0] != '\0' &&
                     dest_command(&tcl, "CONFIG", "SET", "masteruser", r->old_user) < 0)))
        rs_log("warning: the destination is promoted, but its repl-diskless-load, masterauth "
               "or masteruser could not be put back as they were");
    control_link_close(&tcl);
    if (rc == 0)
        r->changed = false;
    return rc;
}

/* ------------------------------------------------- the destination's link */

/* Waits for the destination to connect (RELAY.md step 3); -1 after a
 * signal or --target-retry-timeout, said. */
static int accept_destination(struct relay *r)
{
    double t0 = now_s();
    bool said = false;
    for (;;) {
        if (sync_is_stopping())
            return -1;
        struct pollfd pf = {.fd = r->lfd, .events = POLLIN};
        if (poll(&pf, 1, 100) == 1) {
            int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                return fd;
            }
        }
        double waited = now_s() - t0;
        if (!said && waited >= RELAY_WAIT_SAY_S) {
            said = true;
            char st[32] = "?", mh[256] = "?", mp[16] = "?";
            struct control_link tcl = {0};
            struct rs_error err = {0};
            if (control_link_open(&tcl, r->target, r->o->timeout_ms, &err) == 0) {
                info(&tcl, "replication", "master_link_status", st, sizeof(st), "destination");
                info(&tcl, "replication", "master_host", mh, sizeof(mh), "destination");
                info(&tcl, "replication", "master_port", mp, sizeof(mp), "destination");
                control_link_close(&tcl);
            }
            rs_log("the destination %s has not connected to the relay at %s:%d for %d s (it "
                   "replicates from %s:%s, link %s): can it reach that address? Waiting",
                   r->target->name, r->host, r->port, RELAY_WAIT_SAY_S, mh, mp, st);
        }
        if (r->o->retry_timeout_s > 0 && waited >= r->o->retry_timeout_s) {
            rs_log("the destination %s did not connect to the relay at %s:%d within %.0f s "
                   "(--target-retry-timeout): stopping",
                   r->target->name, r->host, r->port, r->o->retry_timeout_s);
            return -1;
        }
    }
}

static const char *arg(const redisReply *c, size_t i)
{
    return i < c->elements && c->element[i]->type == REDIS_REPLY_STRING ? c->element[i]->str : "";
}

/* Answers the destination's handshake up to its PSYNC: replid and offset
 * in psync_replid / *psync_offset. -1 (said) when it is not the
 * destination, or the link failed. */
static int destination_handshake(struct relay *r, int fd, char *psync_replid, size_t cap,
                                 long long *psync_offset)
{
    redisReader *rd = redisReaderCreate();
    if (rd == NULL)
        return -1;
    bool authed = false;
    size_t total = 0;
    int rc = -1;
    char buf[4096];
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
            rs_log("relay: the destination's handshake is not RESP: %s", rd->errstr);
            break;
        }
        if (reply == NULL) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            if (poll(&pf, 1, r->o->timeout_ms) != 1) {
                rs_log("relay: a connection sent no PSYNC within %d ms: closed", r->o->timeout_ms);
                break;
            }
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0 || (total += (size_t)n) > RELAY_HANDSHAKE_MAX) {
                if (n > 0)
                    rs_log("relay: a connection sent %zu bytes and no PSYNC: closed", total);
                break;
            }
            redisReaderFeed(rd, buf, (size_t)n);
            continue;
        }
        redisReply *c = reply;
        const char *name = c->type == REDIS_REPLY_ARRAY ? arg(c, 0) : "";
        const char *ans = "+OK\r\n";
        bool close_after = false, done = false;
        if (strcasecmp(name, "AUTH") == 0) {
            const char *pw = arg(c, c->elements - 1);
            authed = (c->elements == 2 || c->elements == 3) && strcmp(pw, r->token) == 0;
            if (!authed) {
                ans = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
                close_after = true;
                rs_log("relay: a connection gave a wrong password: closed (the destination is "
                       "given the relay's by CONFIG SET masterauth)");
            }
        } else if (!authed) {
            ans = "-NOAUTH Authentication required.\r\n";
            close_after = strcasecmp(name, "PING") != 0; /* a replica PINGs first */
        } else if (strcasecmp(name, "PING") == 0) {
            ans = "+PONG\r\n";
        } else if (strcasecmp(name, "REPLCONF") == 0) {
            ans = "+OK\r\n";
        } else if (strcasecmp(name, "PSYNC") == 0 && c->elements == 3) {
            snprintf(psync_replid, cap, "%s", arg(c, 1));
            *psync_offset = strtoll(arg(c, 2), NULL, 10);
            done = true;
        } else {
            ans = "-ERR this is ringsync's relay: it answers a replica's handshake only\r\n";
            close_after = true;
        }
        freeReplyObject(reply);
        if (done) {
            rc = 0;
            break;
        }
        if (write_all(fd, ans, strlen(ans), r->o->timeout_ms) < 0 || close_after)
            break;
    }
    redisReaderFree(rd);
    return rc;
}

/* "\n" to the destination every second while the source prepares its
 * answer: a replica waiting for its PSYNC answer takes them as keepalives. */
struct keepalive {
    int fd;
    atomic_int stop;
    pthread_t th;
};

static void *keepalive_main(void *arg)
{
    struct keepalive *k = arg;
    for (int ticks = 0; !atomic_load(&k->stop); ticks++) {
        sleep_s(0.1);
        if (ticks % 10 == 9)
            (void)!send(k->fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    return NULL;
}

static void on_source_bytes(struct relay *r, const char *p, size_t n);

/* The source's side of a session: its PSYNC with the destination's replid
 * and offset, retried while the source cannot serve, the answer passed on.
 * Leaves r->sfd open and the bytes already read in the ring. */
static int source_session(struct relay *r, const char *replid, long long offset)
{
    struct source_handshake_opts ho = {.listening_port = r->o->listening_port};
    if (strcmp(replid, "?") != 0) {
        ho.replid = strcmp(replid, r->map_from) == 0 && r->map_from[0] ? r->map_to : replid;
        ho.offset = offset;
    }
    struct keepalive k = {.fd = r->dfd};
    atomic_init(&k.stop, 0);
    bool ka = pthread_create(&k.th, NULL, keepalive_main, &k) == 0;
    struct control_link scl = {0};
    struct source_handshake_result hr;
    struct rs_error err = {0};
    double t0 = now_s(), backoff = 0.1;
    int rc = -1;
    for (;;) {
        err = (struct rs_error){0};
        if (control_link_open(&scl, r->source, r->o->timeout_ms, &err) == 0) {
            rc = source_reconnect_handshake(&scl, r->source, r->o->timeout_ms,
                                            r->o->source_retry_timeout_s, &ho, &hr,
                                            sync_is_stopping, &err);
            break;
        }
        if (sync_is_stopping() ||
            (r->o->source_retry_timeout_s > 0 && now_s() - t0 >= r->o->source_retry_timeout_s))
            break;
        if (r->sessions == 0)
            break; /* the first contact: an unreachable source is said at once */
        sleep_s(backoff);
        backoff = backoff * 2 > RELAY_MAX_BACKOFF_S ? RELAY_MAX_BACKOFF_S : backoff * 2;
    }
    if (ka) {
        atomic_store(&k.stop, 1);
        pthread_join(k.th, NULL);
    }
    if (rc < 0) {
        if (!sync_is_stopping())
            rs_log("%s", err.msg[0] ? err.msg : "the source could not be reached");
        control_link_close(&scl);
        return -1;
    }
    char answer[256];
    int n;
    if (hr.full) {
        n = snprintf(answer, sizeof(answer), "+FULLRESYNC %s %" PRId64 "\r\n", hr.replid,
                     hr.offset);
        if (hr.eof_mark_len == SOURCE_EOF_MARK_LEN) {
            n += snprintf(answer + n, sizeof(answer) - (size_t)n, "$EOF:");
            memcpy(answer + n, hr.eof_mark, SOURCE_EOF_MARK_LEN);
            n += SOURCE_EOF_MARK_LEN;
            n += snprintf(answer + n, sizeof(answer) - (size_t)n, "\r\n");
            memcpy(r->mark, hr.eof_mark, SOURCE_EOF_MARK_LEN);
            r->snap_left = UINT64_MAX;
        } else {
            n += snprintf(answer + n, sizeof(answer) - (size_t)n, "$%" PRIu64 "\r\n", hr.rdb_len);
            r->snap_left = hr.rdb_len;
        }
        r->in_snapshot = true;
        r->consistent = false;
        r->tail_len = 0;
        r->snap_bytes = 0;
        r->snap_t0 = now_s();
        r->snapshot_said = false;
    } else {
        n = snprintf(answer, sizeof(answer), "+CONTINUE %s\r\n", hr.replid);
        r->in_snapshot = false;
        r->consistent = true;
    }
    r->full = hr.full;
    r->received = (uint64_t)hr.offset;
    if (write_all(r->dfd, answer, (size_t)n, r->o->timeout_ms) < 0) {
        rs_log("relay: the destination's link closed before the answer to its PSYNC");
        control_link_close(&scl);
        return -1;
    }
    {
        if (hr.full)
            rs_log("full sync: the source sends its snapshot (replid %s, offset %" PRId64
                   ") to the destination through the relay",
                   hr.replid, hr.offset);
        else
            rs_log("resumed with a partial resync (replid %s, from offset %" PRId64
                   "): the destination's own offset",
                   hr.replid, hr.offset + 1);
    }
    snprintf(r->src_replid, sizeof(r->src_replid), "%s", hr.replid);
    struct rs_slice pending;
    r->sfd = control_link_detach(&scl, &pending);
    r->sd.head = r->sd.tail = 0;
    r->ds.head = r->ds.tail = 0;
    RS_ASSERT(pending.len <= r->sd.cap);
    memcpy(r->sd.p, pending.p, pending.len);
    r->sd.head = pending.len;
    on_source_bytes(r, r->sd.p, pending.len); /* read along, as every byte after them */
    control_link_close(&scl);
    return 0;
}

/* --------------------------------------------------------------- forwarding */

enum { UD_SRC_RECV = 1, UD_DST_SEND, UD_DST_RECV, UD_SRC_SEND };

/* While a session runs, a connection to the relay's port gets an error and
 * is closed (RELAY.md: one destination at a time); looked at every 100 ms. */
static void turn_away(struct relay *r, double *last)
{
    double t = now_s();
    if (t - *last < 0.1)
        return;
    *last = t;
    int fd;
    while ((fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
        static const char busy[] = "-ERR ringsync's relay serves one replica at a time\r\n";
        (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        rs_log("relay: a second connection to the relay's port was turned away (one destination "
               "at a time)");
    }
}

/* Reads along the source's bytes (never changing them): the snapshot's
 * end, then the stream offset. */
static void on_source_bytes(struct relay *r, const char *p, size_t n)
{
    r->last_source_io = now_s();
    if (!r->in_snapshot) {
        r->received += n;
        return;
    }
    if (r->snap_left != UINT64_MAX) {
        size_t k = n < r->snap_left ? n : (size_t)r->snap_left;
        r->snap_left -= k;
        r->snap_bytes += k;
        if (r->snap_left == 0) {
            r->in_snapshot = false;
            r->received += n - k;
        }
        return;
    }
    /* the $EOF mark: in the chunk, or across the last one's end */
    char win[2 * SOURCE_EOF_MARK_LEN];
    size_t head = n < SOURCE_EOF_MARK_LEN ? n : SOURCE_EOF_MARK_LEN;
    memcpy(win, r->tail, r->tail_len);
    memcpy(win + r->tail_len, p, head);
    const char *at = memmem(win, r->tail_len + head, r->mark, SOURCE_EOF_MARK_LEN);
    size_t after = 0; /* bytes of this chunk after the mark */
    bool found = false;
    if (at != NULL) {
        size_t end = (size_t)(at - win) + SOURCE_EOF_MARK_LEN; /* in win */
        after = n - (end - r->tail_len);
        found = true;
    } else if ((at = memmem(p, n, r->mark, SOURCE_EOF_MARK_LEN)) != NULL) {
        after = n - (size_t)(at - p) - SOURCE_EOF_MARK_LEN;
        found = true;
    }
    if (found) {
        r->snap_bytes += n - after;
        r->in_snapshot = false;
        r->received += after;
        return;
    }
    r->snap_bytes += n;
    if (n >= SOURCE_EOF_MARK_LEN - 1) {
        memcpy(r->tail, p + n - (SOURCE_EOF_MARK_LEN - 1), SOURCE_EOF_MARK_LEN - 1);
        r->tail_len = SOURCE_EOF_MARK_LEN - 1;
    } else {
        size_t keep =
            r->tail_len + n > SOURCE_EOF_MARK_LEN - 1 ? SOURCE_EOF_MARK_LEN - 1 - n : r->tail_len;
        memmove(r->tail, r->tail + r->tail_len - keep, keep);
        memcpy(r->tail + keep, p, n);
        r->tail_len = keep + n;
    }
}

/* Reads along the destination's bytes: its REPLCONF ACK <offset>, and the
 * bare "\n" a replica sends while it loads (a keepalive; the only '\n' of
 * what it sends that does not end a "\r\n": left out of the parser's
 * input). */
static void on_dest_bytes(struct relay *r, const char *p, size_t n)
{
    char clean[4096];
    while (n > 0) {
        size_t k = 0;
        for (; n > 0 && k < sizeof(clean); p++, n--) {
            if (*p != '\n' || r->dest_last == '\r')
                clean[k++] = *p;
            r->dest_last = *p;
        }
        redisReaderFeed(r->acks, clean, k);
    }
    void *reply;
    while (redisReaderGetReply(r->acks, &reply) == REDIS_OK && reply != NULL) {
        redisReply *c = reply;
        if (c->type == REDIS_REPLY_ARRAY && c->elements >= 3 &&
            strcasecmp(arg(c, 0), "REPLCONF") == 0 && strcasecmp(arg(c, 1), "ACK") == 0) {
            r->acked = strtoull(arg(c, 2), NULL, 10);
            if (!r->acked_any)
                r->last_source_io = now_s(); /* the source's silence counts from here */
            r->acked_any = true;
        }
        freeReplyObject(reply);
    }
}

static void prep(struct relay *r, int fd, struct ring *g, bool recv, uint64_t ud)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    RS_ASSERT(sqe != NULL); /* four at most in flight, in a ring of eight */
    size_t at, len;
    if (recv) {
        at = (size_t)(g->head % g->cap);
        len = g->cap - (size_t)(g->head - g->tail);
        if (len > g->cap - at)
            len = g->cap - at;
        io_uring_prep_recv(sqe, fd, g->p + at, len, 0);
        g->recv_on = true;
    } else {
        at = (size_t)(g->tail % g->cap);
        len = (size_t)(g->head - g->tail);
        if (len > g->cap - at)
            len = g->cap - at;
        io_uring_prep_send(sqe, fd, g->p + at, len, MSG_NOSIGNAL);
        g->send_on = true;
    }
    io_uring_sqe_set_data64(sqe, ud);
}

/* The job's counters as the status server reads them: offsets, the
 * snapshot's bytes, applied once the destination holds a whole copy, and
 * the lag's age (since it last acknowledged all received: an upper bound). */
static void publish(struct relay *r)
{
    if (!r->job_on)
        return;
    struct job *j = &r->job;
    atomic_store_explicit(&j->input_bytes, r->snap_bytes, memory_order_relaxed);
    atomic_store_explicit(&j->stream_received, r->received, memory_order_relaxed);
    atomic_store_explicit(&j->stream_read, r->received, memory_order_relaxed);
    atomic_store_explicit(&j->stream_applied, r->acked, memory_order_relaxed);
    if (r->consistent)
        atomic_store_explicit(&j->snapshot_applied, 1, memory_order_relaxed);
    int64_t now = lag_clock_now_ns();
    if (r->acked >= r->received || r->caught_up_ns == 0)
        r->caught_up_ns = now;
    atomic_store_explicit(&j->lag_since_ns, r->acked >= r->received ? 0 : r->caught_up_ns,
                          memory_order_relaxed);
}

static void say_progress(struct relay *r, double *last)
{
    double t = now_s();
    if (r->o->quiet || t - *last < RELAY_PROGRESS_S)
        return;
    *last = t;
    if (r->in_snapshot)
        rs_log("relay: snapshot %.1f MB forwarded in %.1f s", (double)r->snap_bytes / 1e6,
               t - r->snap_t0);
    else
        rs_log("relay: offset %" PRIu64 " received, %" PRIu64 " applied by the destination",
               r->received, r->acked);
}

/* Forwards both ways until the session ends (RELAY.md steps 4-6). */
static enum relay_end forward(struct relay *r)
{
    bool stopping = false, s_eof = false, d_eof = false;
    double drain_t0 = 0, last_progress = now_s(), last_accept = now_s();
    enum relay_end end = END_FAILED;
    const char *lost = NULL;
    r->acked_any = false;
    r->last_source_io = now_s();
    for (;;) {
        int sigs = sync_signal_count();
        if (sigs > 1) {
            end = END_STOP_NOW;
            break;
        }
        bool applied = r->full && r->acked_any && !r->in_snapshot;
        if (applied && !r->snapshot_said) {
            r->snapshot_said = true;
            r->consistent = true;
            rs_log("snapshot applied after %.2f s: the destination loaded %" PRIu64
                   " bytes from the socket and acknowledged offset %" PRIu64,
                   now_s() - r->snap_t0, r->snap_bytes, r->acked);
        }
        if (!stopping && (sigs == 1 || (r->o->snapshot_only && applied))) {
            if (r->in_snapshot || (r->full && !r->acked_any)) {
                end = END_STOP_SNAPSHOT;
                break;
            }
            stopping = true; /* no more from the source; wait for the last ACK */
            drain_t0 = now_s();
            if (r->job_on)
                atomic_store(&r->job.drain, 1); /* the status says "stopping" */
        }
        if (stopping && r->sd.head == r->sd.tail && !r->sd.send_on && r->acked >= r->received) {
            end = END_STOP;
            break;
        }
        if (stopping && now_s() - drain_t0 > RELAY_DRAIN_S) {
            end = END_STOP_LATE;
            break;
        }
        if (s_eof || d_eof) {
            lost = s_eof ? "the source closed the link" : "the destination closed the link";
            end = s_eof ? END_SOURCE_LOST : END_DEST_LOST;
            break;
        }
        if (!stopping && r->acked_any && !r->in_snapshot && r->o->source_timeout_s > 0 &&
            now_s() - r->last_source_io > r->o->source_timeout_s) {
            lost = "the source sent nothing for --source-timeout";
            end = END_SOURCE_LOST;
            break;
        }
        if (!r->sd.recv_on && !stopping && r->sd.head - r->sd.tail < r->sd.cap)
            prep(r, r->sfd, &r->sd, true, UD_SRC_RECV);
        if (!r->sd.send_on && r->sd.head > r->sd.tail)
            prep(r, r->dfd, &r->sd, false, UD_DST_SEND);
        if (!r->ds.recv_on && r->ds.head - r->ds.tail < r->ds.cap)
            prep(r, r->dfd, &r->ds, true, UD_DST_RECV);
        if (!r->ds.send_on && r->ds.head > r->ds.tail)
            prep(r, r->sfd, &r->ds, false, UD_SRC_SEND);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&r->ring, head, cqe)
        {
            seen++;
            int res = cqe->res;
            switch (io_uring_cqe_get_data64(cqe)) {
            case UD_SRC_RECV: {
                r->sd.recv_on = false;
                if (res <= 0) {
                    s_eof = true;
                    break;
                }
                size_t at = (size_t)(r->sd.head % r->sd.cap);
                on_source_bytes(r, r->sd.p + at, (size_t)res);
                r->sd.head += (uint64_t)res;
                break;
            }
            case UD_DST_SEND:
                r->sd.send_on = false;
                if (res < 0)
                    d_eof = true;
                else
                    r->sd.tail += (uint64_t)res;
                break;
            case UD_DST_RECV: {
                r->ds.recv_on = false;
                if (res <= 0) {
                    d_eof = true;
                    break;
                }
                size_t at = (size_t)(r->ds.head % r->ds.cap);
                on_dest_bytes(r, r->ds.p + at, (size_t)res);
                r->ds.head += (uint64_t)res;
                break;
            }
            case UD_SRC_SEND:
                r->ds.send_on = false;
                if (res < 0)
                    s_eof = true;
                else
                    r->ds.tail += (uint64_t)res;
                break;
            default:
                break;
            }
        }
        io_uring_cq_advance(&r->ring, seen);
        say_progress(r, &last_progress);
        turn_away(r, &last_accept);
        publish(r);
    }
    if (lost != NULL)
        rs_log("relay: %s at offset %" PRIu64 " (%" PRIu64
               " applied): the destination reconnects and resumes from its own offset",
               lost, r->received, r->acked);
    return end;
}

/* Ends a session: both links shut, every operation in flight reaped. */
static void end_session(struct relay *r)
{
    if (r->sfd >= 0)
        shutdown(r->sfd, SHUT_RDWR);
    if (r->dfd >= 0)
        shutdown(r->dfd, SHUT_RDWR);
    while (r->sd.recv_on || r->sd.send_on || r->ds.recv_on || r->ds.send_on) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&r->ring, &cqe) < 0)
            break;
        switch (io_uring_cqe_get_data64(cqe)) {
        case UD_SRC_RECV:
            r->sd.recv_on = false;
            break;
        case UD_DST_SEND:
            r->sd.send_on = false;
            break;
        case UD_DST_RECV:
            r->ds.recv_on = false;
            break;
        case UD_SRC_SEND:
            r->ds.send_on = false;
            break;
        default:
            break;
        }
        io_uring_cqe_seen(&r->ring, cqe);
    }
    if (r->sfd >= 0)
        close(r->sfd);
    if (r->dfd >= 0)
        close(r->dfd);
    r->sfd = r->dfd = -1;
    redisReaderFree(r->acks);
    r->acks = NULL;
}

/* ------------------------------------------------------------------ the job */

static enum relay_end serve(struct relay *r)
{
    for (;;) {
        r->dfd = accept_destination(r);
        if (r->dfd < 0)
            return sync_signal_count() > 1 ? END_STOP_NOW
                   : sync_is_stopping()    ? END_STOP_IDLE
                                           : END_FAILED;
        char replid[64];
        long long offset = -1;
        if (destination_handshake(r, r->dfd, replid, sizeof(replid), &offset) < 0) {
            close(r->dfd);
            r->dfd = -1;
            continue; /* not the destination, or it tries again */
        }
        r->acks = redisReaderCreate();
        r->dest_last = 0;
        if (r->acks == NULL || source_session(r, replid, offset) < 0) {
            end_session(r);
            return sync_signal_count() > 1 ? END_STOP_NOW
                   : sync_is_stopping()    ? END_STOP_IDLE
                                           : END_FAILED;
        }
        r->sessions++;
        enum relay_end e = forward(r);
        end_session(r);
        if (e != END_SOURCE_LOST && e != END_DEST_LOST)
            return e;
    }
}

/* Shows the relay on the status server (status_server.h), as a job of
 * one worker with the destination as its one node. The handle, or -1 when
 * there is no server (said by it) or no memory. */
static int status_attach(struct relay *r)
{
    if (job_init(&r->job, 1) < 0)
        return -1;
    r->job_on = true;
    struct endpoint node = *r->target;
    struct dest_nodes nodes = {.nnodes = 1, .eps = &node};
    struct run_ctx rc = {.o = NULL, .nodes = &nodes, .rdb_len = UINT64_MAX};
    rc.source_name = r->source->name;
    snprintf(rc.job_id, sizeof(rc.job_id), "relay:%.120s", r->source->name);
    snprintf(rc.replid, sizeof(rc.replid), "%s", r->src_replid);
    return status_server_attach(&rc, &r->job);
}

/* The end of the job: the destination promoted unless a second signal
 * came, the stop line. Returns the exit code. */
static int finish(struct relay *r, enum relay_end e)
{
    double el = now_s() - r->t0;
    const char *sig = sync_signal_caught() == SIGTERM ? "SIGTERM" : "SIGINT";
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (e == END_STOP_NOW) {
        rs_log("stopped by %s at once after %.2f s: the destination stays a replica of %s:%d "
               "(the same command resumes it; REPLICAOF NO ONE promotes it by hand)",
               sig, el, r->host, r->port);
        return 1;
    }
    if (r->job_on)
        atomic_store(&r->job.stop, 1);
    bool promoted = promote(r) == 0;
    if (!r->consistent) {
        rs_log("%s after %.2f s during the snapshot: the destination holds no complete copy%s; "
               "run the job again",
               e == END_FAILED        ? "failed"
               : sync_signal_caught() ? "stopped"
                                      : "ended",
               el, promoted ? " (promoted, so that it is writable)" : "");
        return 1;
    }
    if (e == END_FAILED) {
        if (promoted)
            rs_log("the destination is promoted (REPLICAOF NO ONE) with the source's data up to "
                   "offset %" PRIu64 ": the same command resumes it",
                   r->acked);
        return 1;
    }
    if (r->o->snapshot_only && sync_signal_count() == 0) {
        rs_log("done after %.2f s: the destination applied the snapshot (offset %" PRIu64
               ")%s; cpu %.2f s, peak rss %ld MB",
               el, r->acked, promoted ? " and is promoted (REPLICAOF NO ONE)" : "", cpu,
               ru.ru_maxrss / 1024);
        return promoted ? 0 : 1;
    }
    rs_log("stopped by %s after %.2f s, following the source: applied offset %" PRIu64
           " of %" PRIu64 " received; %s; cpu %.2f s, peak rss %ld MB",
           sig, el, r->acked, r->received,
           !promoted ? "the destination could not be promoted"
           : e == END_STOP_LATE
               ? "the destination did not acknowledge everything within 30 s: promoted where it "
                 "stands"
               : "the destination is promoted (REPLICAOF NO ONE)",
           cpu, ru.ru_maxrss / 1024);
    return promoted && e != END_STOP_LATE ? 0 : 1;
}

int relay_sync(const struct sync_opts *o, const struct endpoint *source,
               const struct endpoint *target)
{
    struct relay r = {.o = o, .source = source, .target = target, .lfd = -1, .sfd = -1, .dfd = -1};
    r.t0 = now_s();
    struct control_link scl = {0}, tcl = {0};
    struct rs_error err = {0};
    long sv = 0;
    enum relay_kind kind = RELAY_FRESH;
    int status = 1;
    if (control_link_open(&scl, source, o->timeout_ms, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    int rc = check_source(&r, &scl, &sv);
    control_link_close(&scl);
    if (rc < 0)
        return 1;
    if (control_link_open(&tcl, target, o->timeout_ms, &err) < 0) {
        rs_log("%s", err.msg);
        return 1;
    }
    if (check_target(&r, &tcl, sv, &kind) < 0 || listen_on(&r) < 0) {
        control_link_close(&tcl);
        return 1;
    }
    r.sd = (struct ring){.p = malloc(RELAY_S2D_CAP), .cap = RELAY_S2D_CAP};
    r.ds = (struct ring){.p = malloc(RELAY_D2S_CAP), .cap = RELAY_D2S_CAP};
    if (r.sd.p == NULL || r.ds.p == NULL || io_uring_queue_init(8, &r.ring, 0) < 0) {
        rs_log("relay: out of memory or io_uring unavailable");
        control_link_close(&tcl);
        free(r.sd.p);
        free(r.ds.p);
        close(r.lfd);
        return 1;
    }
    rc = point_destination(&r, &tcl);
    control_link_close(&tcl);
    if (rc == 0) {
        rs_log("sync: %s -> %s, relay: the destination replicates from %s:%d (%s)", source->name,
               target->name, r.host, r.port,
               kind == RELAY_FRESH     ? "a full sync"
               : kind == RELAY_REPLICA ? "a replica of this data already: it resumes"
                                       : "promoted by a relay before: it resumes");
        int h = status_attach(&r);
        status = finish(&r, serve(&r));
        status_server_detach(h);
    } else {
        promote(&r); /* what was set before the failure is put back */
    }
    io_uring_queue_exit(&r.ring);
    free(r.sd.p);
    free(r.ds.p);
    close(r.lfd);
    if (r.job_on)
        job_deinit(&r.job);
    return status;
}
