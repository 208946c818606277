/*
 * floor: the kernel's share of a relay's work, for torpor-bench to
 * measure as it measures the real servers.  It accepts WebSocket
 * clients, puts each in the room its path names, and writes every frame a
 * client sends, unmasked, straight to the room's other clients: for each
 * read, one write() per recipient of everything the read brought, or
 * with --per-frame one write() per frame and recipient, the system calls
 * a server makes that sends each message as it comes.  It does nothing a server must that costs user-space time: no
 * Sec-WebSocket-Accept (torpor-bench does not check it), no UTF-8
 * check, no limits, no output queues (a write waits until the socket
 * takes it all, so a slow reader stalls everyone).  Its CPU time per
 * delivered frame is therefore close to what the kernel alone costs on
 * this machine.  Not installed; loopback only.
 *
 *   floor [--port P] [--per-frame] [--drop-every N] [--max-seconds T]
 *
 * Prints "listening on 127.0.0.1:PORT" once ready; runs until SIGTERM
 * or T seconds (3600 by default).  --drop-every N relays no copy of
 * every N-th frame: a server that loses messages, for the test that
 * proves torpor-bench counts what is lost.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_util.h"

#define FL_CARRY_BYTES 1024
#define FL_READ_BYTES 65536
#define FL_MAX_ROOMS 65536
#define FL_NAME_BYTES 96

struct fl_conn {
    int fd;
    int room; // -1 until the upgrade
    size_t carry_len;
    uint8_t carry[FL_CARRY_BYTES];
};

struct fl_room {
    char name[FL_NAME_BYTES];
    struct fl_conn **members;
    size_t len, cap;
};

static struct fl_conn **fl_by_fd; // indexed by descriptor
static size_t fl_max_fd;
static struct fl_room *fl_rooms;
static size_t fl_nrooms;
static uint8_t fl_in[FL_CARRY_BYTES + FL_READ_BYTES];
/* A read's frames as the server sends them: 4 header bytes at most each
 * (no frame is longer than the read), payload unmasked. */
static uint8_t fl_out[FL_CARRY_BYTES + FL_READ_BYTES * 2];
/* Where each frame of fl_out ends, for --per-frame; a masked frame takes
 * 6 bytes at least. */
static size_t fl_frame_end[(FL_CARRY_BYTES + FL_READ_BYTES) / 6 + 1];
static size_t fl_nframes;
static bool fl_per_frame;
static uint64_t fl_drop_every; // 0: drop nothing
static uint64_t fl_frames_seen;

static void
fl_usage(void)
{
    fprintf(
        stderr,
        "usage: floor [--port P] [--per-frame] [--drop-every N] [--max-seconds T]\n");
}

/*
 * fl_write_all writes everything, waiting while the socket is full, as a
 * blocking write would; false when the peer is gone.  The sockets do not
 * block, so that a read never waits.
 */
static bool
fl_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            (void)poll(&pfd, 1, -1);
            continue;
        }
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

static int
fl_room_find(const char *name, size_t len)
{
    for (size_t i = 0; i < fl_nrooms; i++) {
        if (strlen(fl_rooms[i].name) == len
            && memcmp(fl_rooms[i].name, name, len) == 0) {
            return (int)i;
        }
    }
    if (fl_nrooms == FL_MAX_ROOMS || len >= FL_NAME_BYTES) {
        return -1;
    }
    memcpy(fl_rooms[fl_nrooms].name, name, len);
    fl_rooms[fl_nrooms].name[len] = '\0';
    return (int)fl_nrooms++;
}

static bool
fl_room_join(struct fl_conn *c, int room)
{
    struct fl_room *r = &fl_rooms[room];

    if (r->len == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct fl_conn **grown = realloc(r->members, cap * sizeof(*grown));
        if (grown == NULL) {
            return false;
        }
        r->members = grown;
        r->cap = cap;
    }
    r->members[r->len++] = c;
    c->room = room;
    return true;
}

static void
fl_close(struct fl_conn *c)
{
    if (c->room >= 0) {
        struct fl_room *r = &fl_rooms[c->room];
        for (size_t i = 0; i < r->len; i++) {
            if (r->members[i] == c) {
                r->members[i] = r->members[--r->len];
                break;
            }
        }
    }
    fl_by_fd[c->fd] = NULL;
    close(c->fd); // leaves the epoll set with it
    free(c);
}

/* fl_upgrade answers a complete upgrade request; returns its length, 0
 * while it is incomplete, -1 when the connection must close. */
static ssize_t
fl_upgrade(struct fl_conn *c, const uint8_t *p, size_t len)
{
    static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n\r\n";
    const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);

    if (end == NULL) {
        return len >= FL_CARRY_BYTES ? -1 : 0;
    }
    if (len < 5 || memcmp(p, "GET /", 5) != 0) {
        return -1;
    }
    const uint8_t *path = p + 4;
    const uint8_t *space = memchr(path, ' ', (size_t)(end - path));
    int room =
        space ? fl_room_find((const char *)path, (size_t)(space - path)) : -1;
    if (room < 0 || !fl_room_join(c, room)
        || !fl_write_all(c->fd, (const uint8_t *)ok, sizeof(ok) - 1)) {
        return -1;
    }
    return end + 4 - p;
}

/*
 * fl_frames turns the complete client frames of p[0..len) into server
 * frames in fl_out; returns the bytes taken, or -1 on a close or a frame
 * the floor does not take (oversized, unmasked).  *out_len is set.
 */
static ssize_t
fl_frames(const uint8_t *p, size_t len, size_t *out_len)
{
    size_t off = 0, out = 0;

    fl_nframes = 0;
    while (len - off >= 6) {
        const uint8_t *f = p + off;
        size_t h = 2, n = f[1] & 0x7f;
        if ((f[1] & 0x80) == 0 || n == 127) {
            return -1;
        }
        if (n == 126) {
            h = 4;
            if (len - off < h + 4) {
                break;
            }
            n = (size_t)f[2] << 8 | f[3];
        }
        if (len - off < h + 4 + n) {
            break;
        }
        int op = f[0] & 0x0f;
        if (op == 0x8) {
            return -1;
        }
        const uint8_t *key = f + h, *data = f + h + 4;
        bool drop = fl_drop_every != 0 && ++fl_frames_seen % fl_drop_every == 0;
        if ((op == 0x1 || op == 0x2) && !drop) {
            fl_out[out++] = f[0];
            if (n < 126) {
                fl_out[out++] = (uint8_t)n;
            } else {
                fl_out[out++] = 126;
                fl_out[out++] = (uint8_t)(n >> 8);
                fl_out[out++] = (uint8_t)n;
            }
            for (size_t i = 0; i < n; i++) {
                fl_out[out + i] = data[i] ^ key[i & 3];
            }
            out += n;
            fl_frame_end[fl_nframes++] = out;
        }
        off += h + 4 + n;
    }
    *out_len = out;
    return (ssize_t)off;
}

/* fl_relay writes p[0..len) to every member of from's room but from. */
static void
fl_relay(struct fl_conn *from, const uint8_t *p, size_t len)
{
    struct fl_room *r = &fl_rooms[from->room];

    for (size_t i = 0; i < r->len;) {
        struct fl_conn *to = r->members[i];
        if (to == from) {
            i++;
        } else if (fl_write_all(to->fd, p, len)) {
            i++;
        } else {
            fl_close(to); // moves the last member into slot i
        }
    }
}

static void
fl_on_readable(struct fl_conn *c)
{
    memcpy(fl_in, c->carry, c->carry_len);
    ssize_t n = read(c->fd, fl_in + c->carry_len, FL_READ_BYTES);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        fl_close(c);
        return;
    }
    size_t len = c->carry_len + (size_t)n, off = 0, out_len = 0;
    if (c->room < 0) {
        ssize_t took = fl_upgrade(c, fl_in, len);
        if (took < 0) {
            fl_close(c);
            return;
        }
        off = (size_t)took;
    }
    if (c->room >= 0) {
        ssize_t took = fl_frames(fl_in + off, len - off, &out_len);
        if (took < 0) {
            fl_close(c);
            return;
        }
        off += (size_t)took;
    }
    if (len - off > FL_CARRY_BYTES) {
        fl_close(c);
        return;
    }
    c->carry_len = len - off;
    memmove(c->carry, fl_in + off, c->carry_len);
    if (out_len == 0) {
        return;
    }
    if (!fl_per_frame) {
        fl_relay(c, fl_out, out_len);
        return;
    }
    for (size_t f = 0, start = 0; f < fl_nframes; start = fl_frame_end[f++]) {
        fl_relay(c, fl_out + start, fl_frame_end[f] - start);
    }
}

static int
fl_listen(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof(sa);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0
        || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(fd, 4096) != 0
        || getsockname(fd, (struct sockaddr *)&sa, &salen) != 0) {
        fprintf(stderr, "floor: could not listen on \"127.0.0.1:%u\": %s\n",
                (unsigned)port, strerror(errno));
        return -1;
    }
    printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

static void
fl_accept(int lfd, int ep)
{
    int one = 1;

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                fprintf(stderr, "floor: could not accept: %s\n",
                        strerror(errno));
            }
            return;
        }
        struct fl_conn *c =
            (size_t)fd < fl_max_fd ? calloc(1, sizeof(*c)) : NULL;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (c == NULL || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->room = -1;
        fl_by_fd[fd] = c;
    }
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"per-frame", no_argument, NULL, 'f'},
        {"drop-every", required_argument, NULL, 'd'},
        {"max-seconds", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    uint64_t port = 0, max_s = 3600;
    struct rlimit rl;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'p') {
            port = bench_arg("floor", "port", optarg, 0, 65535, fl_usage);
        } else if (c == 'f') {
            fl_per_frame = true;
        } else if (c == 'd') {
            fl_drop_every = bench_arg("floor", "drop-every", optarg, 1,
                                      UINT64_MAX, fl_usage);
        } else if (c == 't') {
            max_s =
                bench_arg("floor", "max-seconds", optarg, 1, 86400, fl_usage);
        } else {
            fl_usage();
            return 2;
        }
    }
    if (optind != argc) {
        fl_usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)max_s); // SIGALRM's default action ends the process
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    fl_max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (size_t)rl.rlim_cur : 1024;
    fl_by_fd = calloc(fl_max_fd, sizeof(*fl_by_fd));
    fl_rooms = calloc(FL_MAX_ROOMS, sizeof(*fl_rooms));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int lfd = fl_listen((uint16_t)port);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (fl_by_fd == NULL || fl_rooms == NULL || ep < 0 || lfd < 0
        || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) {
        fprintf(stderr, "floor: could not start: %s\n", strerror(errno));
        return 1;
    }
    for (;;) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "floor: could not wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                fl_accept(lfd, ep);
            } else if (fl_by_fd[fd] != NULL) {
                fl_on_readable(fl_by_fd[fd]);
            }
        }
    }
}
