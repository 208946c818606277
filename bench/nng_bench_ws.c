/*
 * WebSocket clients for torpor-nng-bench: blocking connects and
 * handshakes, then one reader thread over all of them (epoll), which takes
 * each binary frame's stamp and records its latency.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/nng_bench_ws.h"

#define NB_BUF_BYTES 65536

struct nb_client {
    int fd;
    unsigned index;
    size_t len;
    uint8_t buf[NB_BUF_BYTES];
};

/* The reader's stop flag; one room per process. */
static bool nb_stop;

static bool
nb_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* nb_handshake upgrades c to a WebSocket; the response must be 101. */
static bool
nb_handshake(struct nb_client *c, uint16_t port, const char *path)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dG9ycG9yIG5uZyBiZW5jaA==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, port);

    if (n < 0 || (size_t)n >= sizeof(req) || !nb_write_all(c->fd, req, n)) {
        return false;
    }
    for (;;) {
        ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            return false;
        }
        c->len += (size_t)got;
        uint8_t *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end != NULL) {
            if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 101", 12) != 0) {
                return false;
            }
            size_t head = (size_t)(end + 4 - c->buf);
            memmove(c->buf, c->buf + head, c->len - head);
            c->len -= head;
            return true;
        }
        if (c->len == sizeof(c->buf)) {
            return false;
        }
    }
}

bool
nb_room_open(struct nb_room *room, uint16_t port, const char *path,
             unsigned nclients, uint64_t nmessages)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

    memset(room, 0, sizeof(*room));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    room->nclients = nclients;
    room->nmessages = nmessages;
    room->clients = calloc(nclients, sizeof(*room->clients));
    room->lat = calloc(nmessages * nclients, sizeof(*room->lat));
    room->epfd = epoll_create1(0);
    if (room->clients == NULL || room->lat == NULL || room->epfd < 0) {
        fprintf(stderr, "torpor-nng-bench: could not make room for %u clients and %llu messages: out of memory\n", nclients, (unsigned long long)nmessages);
        return false;
    }
    for (unsigned i = 0; i < nclients; i++) {
        struct nb_client *c = &room->clients[i];
        int one = 1;
        c->index = i;
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0
            || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
            || !nb_handshake(c, port, path)) {
            fprintf(stderr, "torpor-nng-bench: could not open client %u of ws://127.0.0.1:%u%s: %s\n", i, port, path, errno ? strerror(errno) : "the upgrade was refused");
            return false;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(room->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            fprintf(stderr, "torpor-nng-bench: could not watch client %u: %s\n", i, strerror(errno));
            return false;
        }
    }
    return true;
}

/* nb_frames takes every whole frame in c's buffer; false on a close. */
static bool
nb_frames(struct nb_room *room, struct nb_client *c, uint64_t now)
{
    size_t at = 0;
    uint64_t got = 0;

    for (;;) {
        const uint8_t *f = c->buf + at;
        size_t left = c->len - at;
        size_t h = 2;
        uint64_t n;
        if (left < 2) {
            break;
        }
        n = f[1] & 0x7f;
        if (n == 126) {
            h = 4;
            n = left >= h ? (uint64_t)f[2] << 8 | f[3] : 0;
        } else if (n == 127) {
            h = 10;
            n = 0;
            for (size_t i = 2; i < h && i < left; i++) {
                n = n << 8 | f[i];
            }
        }
        if (left < h || left - h < n) {
            if (h + n > sizeof(c->buf)) {
                fprintf(stderr, "torpor-nng-bench: client %u got a frame of %llu bytes, more than it can hold\n", c->index, (unsigned long long)n);
                return false;
            }
            break;
        }
        int opcode = f[0] & 0x0f;
        if (opcode == 0x8) {
            fprintf(stderr, "torpor-nng-bench: the server closed client %u\n", c->index);
            return false;
        }
        if (opcode == 0x2 && n >= NB_STAMP_BYTES) {
            uint64_t seq = 0;
            uint64_t stamp = 0;
            for (int i = 7; i >= 0; i--) {
                seq = seq << 8 | f[h + (size_t)i];
                stamp = stamp << 8 | f[h + 8 + (size_t)i];
            }
            if (seq < room->nmessages) {
                room->lat[seq * room->nclients + c->index] = now - stamp;
                got++;
            }
        }
        at += h + (size_t)n;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
    if (got > 0) {
        __atomic_add_fetch(&room->received, got, __ATOMIC_RELEASE);
    }
    return true;
}

static void *
nb_reader(void *arg)
{
    struct nb_room *room = arg;
    struct epoll_event evs[64];

    while (!__atomic_load_n(&nb_stop, __ATOMIC_ACQUIRE)) {
        int n = epoll_wait(room->epfd, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            struct nb_client *c = evs[i].data.ptr;
            ssize_t got = read(c->fd, c->buf + c->len,
                               sizeof(c->buf) - c->len);
            /* After the read: a stamp is always older than its read. */
            uint64_t now = bench_now_ns();
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            if (got > 0) {
                c->len += (size_t)got;
            }
            if (got <= 0 || !nb_frames(room, c, now)) {
                if (got <= 0) {
                    fprintf(stderr, "torpor-nng-bench: client %u lost its connection\n", c->index);
                }
                __atomic_store_n(&room->failed, true, __ATOMIC_RELEASE);
                return NULL;
            }
        }
    }
    return NULL;
}

bool
nb_room_start(struct nb_room *room)
{
    if (pthread_create(&room->reader, NULL, nb_reader, room) != 0) {
        fprintf(stderr, "torpor-nng-bench: could not start the reader thread\n");
        return false;
    }
    room->reader_started = true;
    return true;
}

bool
nb_room_wait(struct nb_room *room, uint64_t want, uint64_t deadline_ns)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};

    while (__atomic_load_n(&room->received, __ATOMIC_ACQUIRE) < want) {
        if (__atomic_load_n(&room->failed, __ATOMIC_ACQUIRE)
            || bench_now_ns() > deadline_ns) {
            return false;
        }
        nanosleep(&pause, NULL);
    }
    return true;
}

void
nb_room_close(struct nb_room *room)
{
    /* A masked close frame with code 1000, the mask all zero. */
    static const uint8_t bye[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};

    if (room->reader_started) {
        __atomic_store_n(&nb_stop, true, __ATOMIC_RELEASE);
        pthread_join(room->reader, NULL);
    }
    for (unsigned i = 0; room->clients != NULL && i < room->nclients; i++) {
        if (room->clients[i].fd > 0) {
            nb_write_all(room->clients[i].fd, bye, sizeof(bye));
            close(room->clients[i].fd);
        }
    }
    if (room->epfd > 0) {
        close(room->epfd);
    }
    free(room->clients);
    free(room->lat);
}
