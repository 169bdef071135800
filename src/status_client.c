/* status_client.c - `ringsync status` (see status_client.h). */
#include "status_client.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define STATUS_CLIENT_TIMEOUT_MS 5000
#define STATUS_CLIENT_MAX_BYTES  (16u << 20) /* a cluster's status is far smaller */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passed: 0, or -1. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_to(const char *addr, long long deadline, char *err, size_t cap)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr) {
        snprintf(err, cap, "'%s' is not HOST:PORT", addr);
        return -1;
    }
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(err, cap, "host too long");
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int e = getaddrinfo(host, colon + 1, &hints, &ai);
    if (e != 0) {
        snprintf(err, cap, "cannot resolve %s: %s", addr, gai_strerror(e));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            r = soerr == 0 ? 0 : -1;
            errno = soerr ? soerr : ETIMEDOUT;
        }
        if (r < 0) {
            snprintf(err, cap, "cannot connect to %s: %s", addr, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

int status_client_get(const char *addr, const char *path, int timeout_ms, int *code, char **body,
                      char *err, size_t cap)
{
    long long deadline = now_ms() + timeout_ms;
    *body = NULL;
    int fd = connect_to(addr, deadline, err, cap);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, addr);
    for (int off = 0; off < n;) {
        ssize_t k = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 0)
            continue;
        if (k <= 0) {
            snprintf(err, cap, "cannot send to %s: %s", addr, strerror(errno));
            close(fd);
            return -1;
        }
        off += (int)k;
    }
    size_t len = 0, bcap = 1 << 16;
    char *buf = malloc(bcap);
    while (buf != NULL) {
        if (len + 1 == bcap) {
            char *more = bcap < STATUS_CLIENT_MAX_BYTES ? realloc(buf, bcap * 2) : NULL;
            if (more == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = more;
            bcap *= 2;
        }
        ssize_t k = recv(fd, buf + len, bcap - 1 - len, 0);
        if (k > 0) {
            len += (size_t)k;
            continue;
        }
        if (k == 0)
            break;
        if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLIN, deadline) == 0)
            continue;
        snprintf(err, cap, "no whole reply from %s: %s", addr,
                 errno == EAGAIN ? "timed out" : strerror(errno));
        free(buf);
        close(fd);
        return -1;
    }
    close(fd);
    if (buf == NULL) {
        snprintf(err, cap, "the reply of %s is too large", addr);
        return -1;
    }
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || sep == NULL || sscanf(buf + 8, " %d", code) != 1) {
        snprintf(err, cap, "%s did not answer HTTP: is it ringsync's --status-addr?", addr);
        free(buf);
        return -1;
    }
    size_t blen = len - (size_t)(sep + 4 - buf);
    memmove(buf, sep + 4, blen + 1);
    *body = buf;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ringsync status [--status-addr HOST:PORT] [--json]\n"
               "\n"
               "Prints the status of a running ringsync sync, asked from its status server:\n"
               "its state, per source its offsets and lag, ops/s, and whether it is ready\n"
               "for a cut-over. The address is the one the sync logged at start (\"status on\n"
               "http://HOST:PORT/status\"), or RINGSYNC_STATUS_ADDR.\n"
               "\n"
               "  --status-addr HOST:PORT  the sync's status server\n"
               "  --json                   the JSON of /status, as it is\n");
}

int status_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"status-addr", required_argument, NULL, 'A'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = getenv("RINGSYNC_STATUS_ADDR");
    bool json = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'A':
            addr = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (addr == NULL || addr[0] == '\0') {
        rs_log("status: which sync? give --status-addr HOST:PORT (the sync logs it at start: "
               "\"status on http://HOST:PORT/status\")");
        return 2;
    }
    int code = 0;
    char *body = NULL, err[512];
    if (status_client_get(addr, json ? "/status" : "/status.txt", STATUS_CLIENT_TIMEOUT_MS, &code,
                          &body, err, sizeof(err)) < 0) {
        rs_log("status: %s", err);
        return 1;
    }
    if (code != 200) {
        rs_log("status: %s answered HTTP %d: %s", addr, code, body);
        free(body);
        return 1;
    }
    fputs(body, stdout);
    free(body);
    return 0;
}
