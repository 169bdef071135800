/* redis_fixture.c - real redis-server processes for the integration tests.
 *
 * Starting a server, in order:
 *   1. mkdtemp /tmp/rs-fixture-XXXXXX, copy the file to load (if any) in as dump.rdb;
 *   2. pick a port: bind 127.0.0.1:0, read the port back, close the socket;
 *   3. fork; the child asks for SIGKILL when its parent dies, sends its stdout
 *      and stderr to DIR/redis.out (config errors go there, not to the log) and
 *      execs redis-server;
 *   4. poll: the child has exited -> failed (a port taken between 2 and 3 by
 *      someone else shows as "Address already in use" in the log: go back to 2,
 *      up to 5 times); PING answers PONG -> check INFO's process_id is our
 *      child's (a clash could make someone else's server answer) -> running.
 */
#include "redis_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <criterion/criterion.h>

#define FIXTURE_DIR_PREFIX    "/tmp/rs-fixture-"
#define PROGRAM_ERR_PREFIX    "/tmp/rs-program-err-"
#define FIXTURE_PORT_ATTEMPTS 5
#define FIXTURE_MAX_ARGS      64

static struct redis_fixture *live_fixtures;
static struct program *live_programs; /* background programs, killed by redis_fixture_stop_all */

static void program_kill_all(void);

long long fixture_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *fixture_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0', "environment variable %s is not set (run through ctest)",
              name);
    return v;
}

char *fixture_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (buf == NULL)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (buf != NULL) {
        buf[n] = '\0';
        if (len != NULL)
            *len = n;
    }
    return buf;
}

static int copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = fixture_read_file(from, &len);
    if (data == NULL)
        return -errno;
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(data);
        return -e;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            free(data);
            return -e;
        }
        off += (size_t)w;
    }
    free(data);
    return close(fd) == 0 ? 0 : -errno;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf, but only of our own directories. */
static void remove_tree(const char *dir)
{
    if (strncmp(dir, FIXTURE_DIR_PREFIX, strlen(FIXTURE_DIR_PREFIX)) != 0)
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A port nobody listens on right now (someone may take it before we do). */
static int pick_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

int fixture_free_port(void)
{
    int port = pick_free_port();
    cr_assert(port > 0, "no free port: %s", strerror(-port));
    return port;
}

const char *redis_fixture_path(const struct redis_fixture *f, const char *name, char *buf,
                               size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", f->dir, name);
    cr_assert(n > 0 && (size_t)n < cap, "path %s/%s too long", f->dir, name);
    return buf;
}

static const char *file_tail(const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    size_t len;
    char *data = fixture_read_file(path, &len);
    if (data == NULL)
        return buf;
    size_t keep = len < cap - 1 ? len : cap - 1;
    const char *start = data + len - keep;
    if (keep < len) {
        const char *nl = memchr(start, '\n', keep);
        if (nl != NULL) {
            keep -= (size_t)(nl + 1 - start);
            start = nl + 1;
        }
    }
    memcpy(buf, start, keep);
    buf[keep] = '\0';
    free(data);
    return buf;
}

const char *fixture_file_tail(const char *path, char *buf, size_t cap)
{
    return file_tail(path, buf, cap);
}

const char *redis_fixture_log_tail(const struct redis_fixture *f, char *buf, size_t cap)
{
    char path[128];
    return file_tail(redis_fixture_path(f, "redis.log", path, sizeof(path)), buf, cap);
}

static redisContext *connect_port(int port, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

redisContext *redis_fixture_connect(const struct redis_fixture *f)
{
    redisContext *c = connect_port(f->port, 30000);
    cr_assert(c != NULL, "cannot connect to redis-server on port %d", f->port);
    return c;
}

/* Waits up to timeout_ms for pid to exit; true if it did (and was reaped). */
static bool wait_exit(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (monotonic_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

static pid_t spawn_server(struct redis_fixture *f, const struct redis_fixture_opts *opts)
{
    char port[16], logfile[128], out[128];
    snprintf(port, sizeof(port), "%d", f->port);
    redis_fixture_path(f, "redis.log", logfile, sizeof(logfile));
    redis_fixture_path(f, "redis.out", out, sizeof(out));

    const char *argv[FIXTURE_MAX_ARGS];
    int argc = 0;
    const char *base[] = {"redis-server",
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--dir",
                          f->dir,
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--daemonize",
                          "no",
                          "--logfile",
                          logfile,
                          "--dbfilename",
                          "dump.rdb",
                          "--repl-diskless-sync-delay",
                          "0"};
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[argc++] = base[i];
    for (size_t i = 0; opts->extra_args != NULL && opts->extra_args[i] != NULL; i++) {
        cr_assert(argc < FIXTURE_MAX_ARGS - 1, "too many redis-server arguments");
        argv[argc++] = opts->extra_args[i];
    }
    argv[argc] = NULL;

    /* The log is per attempt: a port clash must not be read from an old one. */
    unlink(logfile);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: only async-signal-safe calls from here to exec. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (devnull < 0 || fd < 0)
        _exit(127);
    dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

static bool server_pid_is(redisContext *c, pid_t pid)
{
    char buf[32];
    if (!redis_fixture_info(c, "server", "process_id", buf, sizeof(buf)))
        return false;
    return strtol(buf, NULL, 10) == (long)pid;
}

/* 0: running; 1: exited (maybe a port clash); -1: timed out (killed). */
static int wait_ready(struct redis_fixture *f, int timeout_ms, int *status)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        if (waitpid(f->pid, status, WNOHANG) == f->pid)
            return 1;
        redisContext *c = connect_port(f->port, 200);
        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            bool pong = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            if (r != NULL)
                freeReplyObject(r);
            if (pong && server_pid_is(c, f->pid)) {
                struct timeval tv = {.tv_sec = 30};
                redisSetTimeout(c, tv);
                f->ctx = c;
                return 0;
            }
            redisFree(c);
        }
        if (monotonic_ms() >= deadline) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, status, 0);
            return -1;
        }
        sleep_ms(20);
    }
}

static bool log_says_port_taken(const struct redis_fixture *f)
{
    char path[128];
    bool taken = false;
    const char *names[] = {"redis.log", "redis.out"};
    for (size_t i = 0; i < 2 && !taken; i++) {
        char *log = fixture_read_file(redis_fixture_path(f, names[i], path, sizeof(path)), NULL);
        taken = log != NULL && strstr(log, "Address already in use") != NULL;
        free(log);
    }
    return taken;
}

struct redis_fixture *redis_fixture_try_start(const struct redis_fixture_opts *opts, char *why,
                                              size_t why_cap)
{
    static const struct redis_fixture_opts no_opts;
    if (opts == NULL)
        opts = &no_opts;
    if (why_cap > 0)
        why[0] = '\0';
    struct redis_fixture *f = calloc(1, sizeof(*f));
    cr_assert(f != NULL);
    f->pid = -1;
    snprintf(f->dir, sizeof(f->dir), FIXTURE_DIR_PREFIX "XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        snprintf(why, why_cap, "mkdtemp %s: %s", f->dir, strerror(errno));
        free(f);
        return NULL;
    }
    if (opts->load_rdb != NULL) {
        char to[128];
        int e = copy_file(opts->load_rdb, redis_fixture_path(f, "dump.rdb", to, sizeof(to)));
        if (e < 0) {
            snprintf(why, why_cap, "copying %s to %s: %s", opts->load_rdb, to, strerror(-e));
            remove_tree(f->dir);
            free(f);
            return NULL;
        }
    }
    int timeout_ms = opts->start_timeout_ms > 0 ? opts->start_timeout_ms : 10000;
    for (int attempt = 1;; attempt++) {
        f->port = pick_free_port();
        if (f->port < 0) {
            snprintf(why, why_cap, "no free port: %s", strerror(-f->port));
            break;
        }
        f->pid = spawn_server(f, opts);
        if (f->pid < 0) {
            snprintf(why, why_cap, "fork: %s", strerror(errno));
            break;
        }
        int status = 0;
        int r = wait_ready(f, timeout_ms, &status);
        if (r == 0) {
            f->next_live = live_fixtures;
            live_fixtures = f;
            return f;
        }
        f->pid = -1;
        if (r == 1 && attempt < FIXTURE_PORT_ATTEMPTS && log_says_port_taken(f))
            continue;
        char tail[1536], out[512], path[128];
        redis_fixture_log_tail(f, tail, sizeof(tail));
        file_tail(redis_fixture_path(f, "redis.out", path, sizeof(path)), out, sizeof(out));
        if (r < 0)
            snprintf(why, why_cap,
                     "redis-server on port %d did not answer PING within %d ms; log tail:\n%s%s",
                     f->port, timeout_ms, tail, out);
        else
            snprintf(why, why_cap, "redis-server on port %d exited (status 0x%x); log tail:\n%s%s",
                     f->port, (unsigned)status, tail, out);
        break;
    }
    remove_tree(f->dir);
    free(f);
    return NULL;
}

void redis_fixture_kill(struct redis_fixture *f, int sig)
{
    int status = 0;
    kill(f->pid, sig);
    cr_assert(wait_exit(f->pid, 20000, &status), "redis-server on port %d did not exit", f->port);
    f->pid = -1;
    redisFree(f->ctx);
    f->ctx = NULL;
}

void redis_fixture_start_again(struct redis_fixture *f, const struct redis_fixture_opts *opts)
{
    static const struct redis_fixture_opts no_opts;
    if (opts == NULL)
        opts = &no_opts;
    int status = 0;
    cr_assert(f->pid <= 0, "redis-server on port %d is running", f->port);
    for (int attempt = 0; attempt < 50; attempt++) {
        f->pid = spawn_server(f, opts);
        cr_assert(f->pid > 0, "fork: %s", strerror(errno));
        int r = wait_ready(f, opts->start_timeout_ms > 0 ? opts->start_timeout_ms : 20000, &status);
        if (r == 0)
            return;
        cr_assert(r == 1 && log_says_port_taken(f), "redis-server on port %d did not come back",
                  f->port);
        sleep_ms(100); /* the port is not free again yet */
    }
    cr_assert_fail("redis-server on port %d: its port stayed taken", f->port);
}

void redis_fixture_restart(struct redis_fixture *f, const struct redis_fixture_opts *opts, int sig)
{
    redis_fixture_kill(f, sig);
    redis_fixture_start_again(f, opts);
}

struct redis_fixture *redis_fixture_start(const struct redis_fixture_opts *opts)
{
    char why[2048];
    struct redis_fixture *f = redis_fixture_try_start(opts, why, sizeof(why));
    cr_assert(f != NULL, "cannot start redis-server: %s", why);
    return f;
}

void redis_fixture_stop(struct redis_fixture *f)
{
    if (f == NULL)
        return;
    for (struct redis_fixture **pp = &live_fixtures; *pp != NULL; pp = &(*pp)->next_live) {
        if (*pp == f) {
            *pp = f->next_live;
            break;
        }
    }
    if (f->pid > 0) {
        int status;
        bool gone = false;
        if (f->ctx != NULL) {
            /* No reply: the server closes the connection as it exits. */
            redisReply *r = redisCommand(f->ctx, "SHUTDOWN NOSAVE");
            if (r != NULL)
                freeReplyObject(r);
            gone = wait_exit(f->pid, 5000, &status);
        }
        if (!gone) {
            kill(f->pid, SIGTERM);
            gone = wait_exit(f->pid, 5000, &status);
        }
        if (!gone) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
        }
    }
    if (f->ctx != NULL)
        redisFree(f->ctx);
    remove_tree(f->dir);
    free(f);
}

void redis_fixture_stop_all(void)
{
    program_kill_all(); /* first: a program talking to the servers would see them go */
    while (live_fixtures != NULL)
        redis_fixture_stop(live_fixtures);
}

bool redis_fixture_info(redisContext *c, const char *section, const char *field, char *buf,
                        size_t cap)
{
    redisReply *r = redisCommand(c, "INFO %s", section);
    bool found = false;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        size_t flen = strlen(field);
        for (const char *line = r->str; line != NULL && *line != '\0';) {
            const char *end = strchr(line, '\n');
            size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
            if (len > 0 && line[len - 1] == '\r')
                len--;
            if (len > flen && memcmp(line, field, flen) == 0 && line[flen] == ':') {
                size_t vlen = len - flen - 1;
                if (vlen >= cap)
                    vlen = cap - 1;
                memcpy(buf, line + flen + 1, vlen);
                buf[vlen] = '\0';
                found = true;
                break;
            }
            line = end != NULL ? end + 1 : NULL;
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    return found;
}

void redis_fixture_replicate(struct redis_fixture *replica, const struct redis_fixture *primary,
                             int timeout_ms)
{
    redis_fixture_exec(replica->ctx, "REPLICAOF 127.0.0.1 %d", primary->port);
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        char link[32] = "", syncing[32] = "";
        redis_fixture_info(replica->ctx, "replication", "master_link_status", link, sizeof(link));
        redis_fixture_info(replica->ctx, "replication", "master_sync_in_progress", syncing,
                           sizeof(syncing));
        if (strcmp(link, "up") == 0 && strcmp(syncing, "0") == 0)
            return;
        if (monotonic_ms() >= deadline) {
            char tail[1536];
            cr_assert_fail("replica on port %d did not sync from port %d within %d ms "
                           "(link %s, syncing %s); replica log tail:\n%s",
                           replica->port, primary->port, timeout_ms, link, syncing,
                           redis_fixture_log_tail(replica, tail, sizeof(tail)));
        }
        sleep_ms(20);
    }
}

/* ---------------------------------------------------------------- commands */

static redisReply *check_reply(redisContext *c, redisReply *r, const char *what)
{
    cr_assert(r != NULL, "%s: I/O error: %s", what, c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", r->str);
        freeReplyObject(r);
        cr_assert_fail("%s: error reply: %s", what, msg);
    }
    return r;
}

static void describe_fmt(char *buf, size_t cap, const char *fmt)
{
    snprintf(buf, cap, "command '%.80s'", fmt);
}

redisReply *redis_fixture_command(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    char what[128];
    describe_fmt(what, sizeof(what), fmt);
    return check_reply(c, r, what);
}

redisReply *redis_fixture_command_argv(redisContext *c, int argc, const char **argv,
                                       const size_t *argvlen)
{
    redisReply *r = redisCommandArgv(c, argc, argv, argvlen);
    char what[128];
    snprintf(what, sizeof(what), "command '%.*s'",
             argc > 0 ? (int)(argvlen != NULL ? argvlen[0] : strlen(argv[0])) : 0,
             argc > 0 ? argv[0] : "");
    return check_reply(c, r, what);
}

void redis_fixture_exec(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    char what[128];
    describe_fmt(what, sizeof(what), fmt);
    freeReplyObject(check_reply(c, r, what));
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *redis_fixture_reply_canonical(const redisReply *r)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert(f != NULL);
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        fputc('"', f);
        for (size_t i = 0; i < r->len; i++) {
            unsigned char c = (unsigned char)r->str[i];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                fputc(c, f);
            else
                fprintf(f, "\\x%02x", c);
        }
        fputc('"', f);
        break;
    case REDIS_REPLY_INTEGER:
        fprintf(f, "%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        fprintf(f, "nil");
        break;
    default: { /* arrays (RESP2) */
        bool is_map = r->elements % 2 == 0;
        for (size_t i = 0; i < r->elements && is_map; i += 2)
            is_map = r->element[i]->type == REDIS_REPLY_STRING ||
                     r->element[i]->type == REDIS_REPLY_STATUS;
        size_t n = is_map ? r->elements / 2 : r->elements;
        char **parts = calloc(n + 1, sizeof(*parts));
        cr_assert(parts != NULL);
        for (size_t i = 0; i < n; i++) {
            if (is_map) {
                char *k = redis_fixture_reply_canonical(r->element[2 * i]);
                char *v = redis_fixture_reply_canonical(r->element[2 * i + 1]);
                cr_assert(asprintf(&parts[i], "%s:%s", k, v) > 0);
                free(k);
                free(v);
            } else {
                parts[i] = redis_fixture_reply_canonical(r->element[i]);
            }
        }
        qsort(parts, n, sizeof(*parts), cmp_strp);
        fputs(is_map ? "{" : "[", f);
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%s%s", i ? "," : "", parts[i]);
            free(parts[i]);
        }
        fputs(is_map ? "}" : "]", f);
        free(parts);
    }
    }
    fclose(f);
    cr_assert(out != NULL);
    return out;
}

void redis_pipeline_init(struct redis_pipeline *p, redisContext *c, size_t batch)
{
    p->ctx = c;
    p->batch = batch > 0 ? batch : 1000;
    p->pending = 0;
    p->sent = 0;
}

void redis_pipeline_flush(struct redis_pipeline *p)
{
    for (; p->pending > 0; p->pending--) {
        void *r = NULL;
        int rc = redisGetReply(p->ctx, &r);
        cr_assert(rc == REDIS_OK && r != NULL, "pipeline: I/O error: %s", p->ctx->errstr);
        freeReplyObject(check_reply(p->ctx, r, "pipelined command"));
    }
}

static void pipeline_sent(struct redis_pipeline *p, int rc)
{
    cr_assert(rc == REDIS_OK, "pipeline: cannot append: %s", p->ctx->errstr);
    p->pending++;
    p->sent++;
    if (p->pending >= p->batch)
        redis_pipeline_flush(p);
}

void redis_pipeline_append(struct redis_pipeline *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(p->ctx, fmt, ap);
    va_end(ap);
    pipeline_sent(p, rc);
}

void redis_pipeline_append_argv(struct redis_pipeline *p, int argc, const char **argv,
                                const size_t *argvlen)
{
    pipeline_sent(p, redisAppendCommandArgv(p->ctx, argc, argv, argvlen));
}

/* ------------------------------------------------------- running a program */

static int open_or_null(const char *path, int flags)
{
    return open(path != NULL ? path : "/dev/null", flags | O_CLOEXEC, 0644);
}

int program_run(const char *const *argv, const char *stdin_path, const char *stdout_path,
                int timeout_ms, struct program_result *r)
{
    memset(r, 0, sizeof(*r));
    int in = open_or_null(stdin_path, O_RDONLY);
    if (in < 0)
        return -errno;
    int out = open_or_null(stdout_path, O_WRONLY | O_CREAT | O_TRUNC);
    if (out < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    int errp[2], execp[2];
    if (pipe2(errp, O_CLOEXEC) != 0) {
        int e = errno;
        close(in);
        close(out);
        return -e;
    }
    if (pipe2(execp, O_CLOEXEC) != 0) {
        int e = errno;
        close(in);
        close(out);
        close(errp[0]);
        close(errp[1]);
        return -e;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(errp[1], 2);
        execvp(argv[0], (char *const *)argv);
        int e = errno;
        ssize_t w = write(execp[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    int fork_errno = errno;
    close(in);
    close(out);
    close(errp[1]);
    close(execp[1]);
    if (pid < 0) {
        close(errp[0]);
        close(execp[0]);
        return -fork_errno;
    }
    int exec_errno = 0;
    if (read(execp[0], &exec_errno, sizeof(exec_errno)) != (ssize_t)sizeof(exec_errno))
        exec_errno = 0;
    close(execp[0]);

    size_t cap = 4096;
    r->err = malloc(cap + 1);
    cr_assert(r->err != NULL);
    long long deadline = monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 60000);
    for (;;) {
        long long left = deadline - monotonic_ms();
        if (left <= 0 && !r->timed_out) {
            r->timed_out = true;
            kill(pid, SIGKILL);
        }
        struct pollfd pfd = {.fd = errp[0], .events = POLLIN};
        int pr = poll(&pfd, 1, r->timed_out ? 1000 : (int)(left < 1000 ? left : 1000));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue;
        if (r->err_len == cap) {
            char *nb = realloc(r->err, cap * 2 + 1);
            cr_assert(nb != NULL);
            r->err = nb;
            cap *= 2;
        }
        ssize_t n = read(errp[0], r->err + r->err_len, cap - r->err_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r->err_len += (size_t)n;
    }
    r->err[r->err_len] = '\0';
    close(errp[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (exec_errno != 0) {
        program_result_deinit(r);
        return -exec_errno;
    }
    r->exited = WIFEXITED(status);
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 0;
}

void program_result_deinit(struct program_result *r)
{
    free(r->err);
    r->err = NULL;
    r->err_len = 0;
}

const char *program_result_describe(const struct program_result *r, char *buf, size_t cap)
{
    if (r->timed_out)
        snprintf(buf, cap, "timed out (killed)");
    else if (r->exited)
        snprintf(buf, cap, "exit %d", r->exit_code);
    else
        snprintf(buf, cap, "signal %d (%s)", r->term_signal, strsignal(r->term_signal));
    return buf;
}

/* ------------------------------------------- a program in the background */

static void program_unlink(struct program *p)
{
    for (struct program **pp = &live_programs; *pp != NULL; pp = &(*pp)->next_live) {
        if (*pp == p) {
            *pp = p->next_live;
            break;
        }
    }
    p->next_live = NULL;
}

struct program *program_start(const char *const *argv, const char *stdout_path, int *errno_out)
{
    struct program *p = calloc(1, sizeof(*p));
    cr_assert(p != NULL);
    *errno_out = 0;
    snprintf(p->err_path, sizeof(p->err_path), PROGRAM_ERR_PREFIX "XXXXXX");
    int err = mkostemp(p->err_path, O_CLOEXEC);
    if (err < 0) {
        *errno_out = errno;
        free(p);
        return NULL;
    }
    int in = open_or_null(NULL, O_RDONLY);
    int out = open_or_null(stdout_path, O_WRONLY | O_CREAT | O_TRUNC);
    int execp[2] = {-1, -1};
    if (in < 0 || out < 0 || pipe2(execp, O_CLOEXEC) != 0) {
        *errno_out = errno;
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
        close(err);
        unlink(p->err_path);
        free(p);
        return NULL;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execvp(argv[0], (char *const *)argv);
        int e = errno;
        ssize_t w = write(execp[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    int fork_errno = errno;
    close(in);
    close(out);
    close(err);
    close(execp[1]);
    int exec_errno = 0;
    if (pid > 0 && read(execp[0], &exec_errno, sizeof(exec_errno)) != (ssize_t)sizeof(exec_errno))
        exec_errno = 0;
    close(execp[0]);
    if (pid < 0 || exec_errno != 0) {
        if (pid > 0)
            waitpid(pid, NULL, 0);
        unlink(p->err_path);
        free(p);
        *errno_out = pid < 0 ? fork_errno : exec_errno;
        return NULL;
    }
    p->pid = pid;
    p->next_live = live_programs;
    live_programs = p;
    return p;
}

bool program_has_exited(struct program *p)
{
    if (p->is_reaped)
        return true;
    pid_t r = waitpid(p->pid, &p->wait_status, WNOHANG);
    if (r == p->pid)
        p->is_reaped = true;
    return p->is_reaped;
}

char *program_stderr(const struct program *p, size_t *len)
{
    char *s = fixture_read_file(p->err_path, len);
    cr_assert(s != NULL, "cannot read %s: %s", p->err_path, strerror(errno));
    return s;
}

bool program_wait_for_stderr(struct program *p, const char *needle, int timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        /* exited first? then its stderr is complete: one last look */
        bool exited = program_has_exited(p);
        char *s = program_stderr(p, NULL);
        bool found = strstr(s, needle) != NULL;
        free(s);
        if (found)
            return true;
        if (exited || monotonic_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

void program_finish(struct program *p, int sig, int timeout_ms, struct program_result *r)
{
    memset(r, 0, sizeof(*r));
    if (!program_has_exited(p) && sig != 0)
        kill(p->pid, sig);
    if (!p->is_reaped) {
        if (wait_exit(p->pid, timeout_ms > 0 ? timeout_ms : 60000, &p->wait_status)) {
            p->is_reaped = true;
        } else {
            r->timed_out = true;
            kill(p->pid, SIGKILL);
            while (waitpid(p->pid, &p->wait_status, 0) < 0 && errno == EINTR) {
            }
            p->is_reaped = true;
        }
    }
    program_unlink(p);
    r->err = program_stderr(p, &r->err_len);
    unlink(p->err_path);
    int status = p->wait_status;
    r->exited = WIFEXITED(status);
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    free(p);
}

static void program_kill_all(void)
{
    while (live_programs != NULL) {
        struct program *p = live_programs;
        live_programs = p->next_live;
        p->next_live = NULL;
        if (!program_has_exited(p)) {
            kill(p->pid, SIGKILL);
            while (waitpid(p->pid, &p->wait_status, 0) < 0 && errno == EINTR) {
            }
            p->is_reaped = true;
        }
        unlink(p->err_path);
        free(p);
    }
}
