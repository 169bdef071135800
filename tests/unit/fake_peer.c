/* fake_peer.c - a scripted TCP peer on 127.0.0.1 for the control-link tests. */
#include "fake_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

static void fake_peer_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int fake_peer_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

int fake_peer_closed_port(void)
{
    int port;
    int fd = fake_peer_listen(&port);
    close(fd);
    return port;
}

static void fake_peer_write(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the client went away: the test will say what it saw */
        p += n;
        len -= (size_t)n;
    }
}

static void *fake_peer_main(void *arg)
{
    struct fake_peer *fp = arg;
    if (fp->no_accept) {
        fake_peer_sleep_ms(fp->linger_ms > 0 ? fp->linger_ms : 2000);
        return NULL;
    }
    int fd = accept(fp->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t i = 0; i < fp->nsteps; i++) {
        const struct fake_peer_step *s = &fp->steps[i];
        size_t len = s->len > 0 ? s->len : strlen(s->bytes);
        if (s->delay_ms > 0)
            fake_peer_sleep_ms(s->delay_ms);
        if (fp->split == 0 || fp->nsteps > 1) {
            fake_peer_write(fd, s->bytes, len);
        } else if (fp->split == FAKE_PEER_BYTEWISE) {
            for (size_t k = 0; k < len; k++) {
                fake_peer_write(fd, s->bytes + k, 1);
                if (fp->pause_ms > 0)
                    fake_peer_sleep_ms(fp->pause_ms);
            }
        } else {
            size_t a = fp->split < len ? fp->split : len;
            fake_peer_write(fd, s->bytes, a);
            fake_peer_sleep_ms(fp->pause_ms > 0 ? fp->pause_ms : 2);
            fake_peer_write(fd, s->bytes + a, len - a);
        }
    }
    /* Record what the client sends until it closes (then close: no RST). */
    int linger = fp->linger_ms > 0 ? fp->linger_ms : 2000;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, linger) <= 0)
            break;
        char tmp[1024];
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            break;
        size_t room = sizeof(fp->got) - fp->got_len;
        size_t c = (size_t)n < room ? (size_t)n : room;
        memcpy(fp->got + fp->got_len, tmp, c);
        fp->got_len += c;
    }
    close(fd);
    return NULL;
}

void fake_peer_start(struct fake_peer *fp)
{
    fp->listen_fd = fake_peer_listen(&fp->port);
    cr_assert_eq(listen(fp->listen_fd, 4), 0);
    memset(&fp->ep, 0, sizeof(fp->ep));
    snprintf(fp->ep.host, sizeof(fp->ep.host), "127.0.0.1");
    fp->ep.port = fp->port;
    fp->ep.db = -1;
    snprintf(fp->ep.name, sizeof(fp->ep.name), "127.0.0.1:%d", fp->port);
    cr_assert_eq(pthread_create(&fp->thread, NULL, fake_peer_main, fp), 0);
    fp->started = true;
}

void fake_peer_stop(struct fake_peer *fp)
{
    if (fp->started)
        pthread_join(fp->thread, NULL);
    fp->started = false;
    close(fp->listen_fd);
}
