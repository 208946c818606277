/*
 * torpor-idle-bench: opens many WebSocket connections to a running torpord
 * and holds them idle, so that bench/run-idle.sh can read what each one
 * costs the server.  A client over loopback only.  Not installed; `make
 * bench-idle` builds it and runs it through bench/run-idle.sh.
 *
 *   torpor-idle-bench --port P --conns N --rooms R [--first F]
 *                     [--route NAME] [--prefix TEXT] [--inflight K]
 *                     [--max-seconds T]
 *   torpor-idle-bench --sizes
 *
 * Connection i goes to ws://127.0.0.1:P/ROUTE/PREFIX-(F + i % R), so N
 * connections spread evenly over R rooms; several processes share a run
 * by taking rooms [F, F + R) each.  At most K upgrades are in flight at
 * once (64 by default).  Once every upgrade has its 101 the bench prints
 * one line and flushes it:
 *
 *   conns=N rooms=R connect_ms=M conn_per_s=S
 *
 * Then it holds the connections without sending anything, watching them:
 * a ping is answered, anything else the server sends or a connection it
 * ends is an error.  SIGUSR1 ends the hold: every connection sends a
 * close frame with 1000 and waits for the server's close and its end of
 * the stream, for 30 s at most, and the bench prints
 *
 *   closed=N clean=C
 *
 * and exits 0 if every close was clean.  The whole run takes at most T
 * seconds (3600 by default), after which SIGALRM ends it with status 1.
 *
 * --sizes prints the sizes of the records the server keeps per connection
 * and per room, from the server's own headers, and exits.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/idle_sizes.h"

/* Each client process may hold at most this many descriptors. */
#define IB_MAX_CONNS 19000
#define IB_MAX_ROOMS 100000
#define IB_RESP_BYTES 512
#define IB_CLOSE_TIMEOUT_MS 30000
#define IB_PATH_BYTES 256

#define IB_OP_CLOSE 0x8
#define IB_OP_PING 0x9
#define IB_OP_PONG 0xa

enum ib_phase { IB_CONNECTING, IB_SENDING, IB_READING, IB_OPEN, IB_DONE };

/* One client connection.  resp holds the 101 while it arrives, then
 * frames the server sends while the connection is held. */
struct ib_conn {
    int fd;
    uint8_t phase; /* enum ib_phase */
    uint16_t len;  /* bytes in resp */
    uint16_t sent; /* bytes of the request written */
    uint8_t resp[IB_RESP_BYTES];
};

struct ib_bench {
    uint16_t port;
    const char *route;
    const char *prefix;
    unsigned first;
    unsigned nrooms;
    unsigned nconns;
    unsigned inflight;
    struct ib_conn *conns;
    uint64_t rng;
};

static volatile sig_atomic_t ib_release;

static void
ib_on_usr1(int sig)
{
    (void)sig;
    ib_release = 1;
}

static void
ib_on_alarm(int sig)
{
    static const char msg[] =
        "torpor-idle-bench: could not finish the run within --max-seconds\n";

    (void)sig;
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(1);
}

static void
ib_usage(void)
{
    fprintf(
        stderr,
        "usage: torpor-idle-bench --port P --conns N --rooms R [--first F] [--route NAME] [--prefix TEXT] [--inflight K] [--max-seconds T]\n"
        "       torpor-idle-bench --sizes\n");
}

/* ib_request writes connection i's upgrade request into out. */
static int
ib_request(const struct ib_bench *b, unsigned i, char *out, size_t size)
{
    return snprintf(out, size,
                    "GET /%s/%s-%u HTTP/1.1\r\n"
                    "Host: 127.0.0.1:%u\r\n"
                    "Upgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n",
                    b->route, b->prefix, b->first + i % b->nrooms,
                    (unsigned)b->port);
}

/* ib_start begins connection i without blocking. */
static bool
ib_start(struct ib_bench *b, unsigned i)
{
    struct ib_conn *c = &b->conns[i];
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(b->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "torpor-idle-bench: could not open socket %u: %s\n", i,
                strerror(errno));
        return false;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        && errno != EINPROGRESS) {
        fprintf(
            stderr,
            "torpor-idle-bench: could not connect to \"127.0.0.1:%u\": %s\n",
            (unsigned)b->port, strerror(errno));
        return false;
    }
    c->phase = IB_CONNECTING;
    return true;
}

/* ib_step advances connection i on readiness; false on failure. */
static bool
ib_step(struct ib_bench *b, unsigned i, short revents)
{
    struct ib_conn *c = &b->conns[i];
    char req[IB_PATH_BYTES + 256];
    int req_len = ib_request(b, i, req, sizeof(req));
    int err = 0;
    socklen_t len = sizeof(err);
    ssize_t n;

    if (c->phase == IB_CONNECTING) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0
            || err != 0) {
            fprintf(stderr,
                    "torpor-idle-bench: could not connect socket %u: %s\n", i,
                    strerror(err != 0 ? err : errno));
            return false;
        }
        c->phase = IB_SENDING;
    }
    if (c->phase == IB_SENDING) {
        n = send(c->fd, req + c->sent, (size_t)req_len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            fprintf(stderr,
                    "torpor-idle-bench: could not send upgrade %u: %s\n", i,
                    strerror(errno));
            return false;
        }
        c->sent = (uint16_t)(c->sent + (n > 0 ? n : 0));
        if (c->sent == req_len) {
            c->phase = IB_READING;
        }
        return true;
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        return true;
    }
    n = recv(c->fd, c->resp + c->len, sizeof(c->resp) - c->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return true;
    }
    if (n <= 0) {
        fprintf(stderr, "torpor-idle-bench: could not read upgrade %u: %s\n", i,
                n == 0 ? "the server closed the connection" : strerror(errno));
        return false;
    }
    c->len = (uint16_t)(c->len + n);
    const uint8_t *end = memmem(c->resp, c->len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->len == sizeof(c->resp)) {
            fprintf(
                stderr,
                "torpor-idle-bench: could not read upgrade %u: an answer longer than %d bytes\n",
                i, IB_RESP_BYTES);
            return false;
        }
        return true;
    }
    if (c->len < 13 || memcmp(c->resp, "HTTP/1.1 101 ", 13) != 0) {
        const uint8_t *eol = memchr(c->resp, '\r', c->len);
        fprintf(
            stderr,
            "torpor-idle-bench: could not open connection %u: the server answered \"%.*s\"\n",
            i, (int)(eol - c->resp), (const char *)c->resp);
        return false;
    }
    /* Nothing may follow the 101 before the bench speaks. */
    if (end + 4 != c->resp + c->len) {
        fprintf(
            stderr,
            "torpor-idle-bench: could not hold connection %u: the server sent a frame right after its 101\n",
            i);
        return false;
    }
    c->len = 0;
    c->phase = IB_OPEN;
    return true;
}

/*
 * ib_connect_all opens every connection with at most b->inflight upgrades
 * in flight.  The slots of the in-flight ones are kept in a small ring of
 * indices, polled together.
 */
static bool
ib_connect_all(struct ib_bench *b)
{
    struct pollfd *pfd = calloc(b->inflight, sizeof(*pfd));
    unsigned *slot = calloc(b->inflight, sizeof(*slot));
    unsigned next = 0;
    unsigned active = 0;
    bool ok = pfd != NULL && slot != NULL;

    while (ok && (next < b->nconns || active > 0)) {
        while (active < b->inflight && next < b->nconns) {
            if (!ib_start(b, next)) {
                ok = false;
                break;
            }
            slot[active++] = next++;
        }
        for (unsigned k = 0; k < active; k++) {
            struct ib_conn *c = &b->conns[slot[k]];
            pfd[k].fd = c->fd;
            pfd[k].events = c->phase == IB_READING ? POLLIN : POLLOUT;
            pfd[k].revents = 0;
        }
        int n = poll(pfd, active, 10000);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(
                stderr,
                "torpor-idle-bench: could not open connections: %u upgrades without progress for 10 s\n",
                active);
            ok = false;
            break;
        }
        for (unsigned k = 0; ok && k < active;) {
            if (pfd[k].revents == 0) {
                k++;
                continue;
            }
            ok = ib_step(b, slot[k], pfd[k].revents);
            if (b->conns[slot[k]].phase == IB_OPEN) {
                /* Done: the last in-flight slot takes its place. */
                active--;
                slot[k] = slot[active];
                pfd[k] = pfd[active];
                continue;
            }
            k++;
        }
    }
    free(slot);
    free(pfd);
    return ok;
}

/* ib_send writes one small masked frame, as RFC 6455 requires. */
static bool
ib_send(struct ib_bench *b, struct ib_conn *c, int opcode, const void *data,
        size_t len)
{
    uint8_t frame[BENCH_SMALL_FRAME_MAX];
    size_t n;

    n = bench_small_frame(&b->rng, opcode, data, len, frame);
    /* A few bytes into an idle socket's empty buffer: all or nothing. */
    return send(c->fd, frame, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/*
 * ib_held_input handles what the server sent to a held connection: pings
 * are answered; anything else ends the run.
 */
static bool
ib_held_input(struct ib_bench *b, unsigned i)
{
    struct ib_conn *c = &b->conns[i];
    ssize_t n = recv(c->fd, c->resp + c->len, sizeof(c->resp) - c->len, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return true;
    }
    if (n <= 0) {
        fprintf(stderr, "torpor-idle-bench: could not hold connection %u: %s\n",
                i, n == 0 ? "the server closed it" : strerror(errno));
        return false;
    }
    c->len = (uint16_t)(c->len + n);
    while (c->len >= 2) {
        size_t plen = c->resp[1] & 0x7f;
        int op = c->resp[0] & 0x0f;
        if (plen > 125 || (c->resp[1] & 0x80) != 0) {
            fprintf(
                stderr,
                "torpor-idle-bench: could not hold connection %u: the server sent a frame of opcode %d\n",
                i, op);
            return false;
        }
        if (c->len < 2 + plen) {
            return true;
        }
        if (op != IB_OP_PING && op != IB_OP_PONG) {
            fprintf(
                stderr,
                "torpor-idle-bench: could not hold connection %u: the server sent a frame of opcode %d\n",
                i, op);
            return false;
        }
        if (op == IB_OP_PING && !ib_send(b, c, IB_OP_PONG, c->resp + 2, plen)) {
            fprintf(
                stderr,
                "torpor-idle-bench: could not answer a ping on connection %u\n",
                i);
            return false;
        }
        memmove(c->resp, c->resp + 2 + plen, c->len - 2 - plen);
        c->len = (uint16_t)(c->len - 2 - plen);
    }
    return true;
}

/* ib_hold watches the connections until SIGUSR1; false on any error. */
static bool
ib_hold(struct ib_bench *b)
{
    struct pollfd *pfd = calloc(b->nconns, sizeof(*pfd));

    if (pfd == NULL) {
        fprintf(stderr, "torpor-idle-bench: could not allocate the hold\n");
        return false;
    }
    for (unsigned i = 0; i < b->nconns; i++) {
        pfd[i].fd = b->conns[i].fd;
        pfd[i].events = POLLIN;
    }
    while (!ib_release) {
        int n = poll(pfd, b->nconns, 1000);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "torpor-idle-bench: could not poll: %s\n",
                    strerror(errno));
            free(pfd);
            return false;
        }
        for (unsigned i = 0; n > 0 && i < b->nconns; i++) {
            if (pfd[i].revents != 0 && !ib_held_input(b, i)) {
                free(pfd);
                return false;
            }
        }
    }
    free(pfd);
    return true;
}

/*
 * ib_close_all sends every close frame, then reads each connection to its
 * end: a close frame from the server, then end of stream.  Returns the
 * clean closes.
 */
static unsigned
ib_close_all(struct ib_bench *b)
{
    static const uint8_t normal[2] = {0x03, 0xe8}; // 1000
    uint64_t deadline_ns = bench_now_ns() + IB_CLOSE_TIMEOUT_MS * 1000000ull;
    unsigned clean = 0;

    for (unsigned i = 0; i < b->nconns; i++) {
        struct ib_conn *c = &b->conns[i];
        c->len = 0;
        if (c->fd >= 0 && !ib_send(b, c, IB_OP_CLOSE, normal, 2)) {
            close(c->fd);
            c->fd = -1;
        }
    }
    for (unsigned i = 0; i < b->nconns; i++) {
        struct ib_conn *c = &b->conns[i];
        bool got_close = false;

        while (c->fd >= 0) {
            uint64_t now = bench_now_ns();
            int left = now >= deadline_ns
                           ? 0
                           : (int)((deadline_ns - now) / 1000000u + 1);
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            if (poll(&p, 1, left) <= 0) {
                break;
            }
            ssize_t n =
                recv(c->fd, c->resp + c->len, sizeof(c->resp) - c->len, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            if (n <= 0) {
                clean += got_close;
                break;
            }
            c->len = (uint16_t)(c->len + n);
            /* Skips pings and pongs; the close is the last frame. */
            while (c->len >= 2 && (size_t)(c->resp[1] & 0x7f) + 2 <= c->len) {
                size_t flen = 2 + (c->resp[1] & 0x7f);
                got_close = got_close || (c->resp[0] & 0x0f) == IB_OP_CLOSE;
                memmove(c->resp, c->resp + flen, c->len - flen);
                c->len = (uint16_t)(c->len - flen);
            }
            if (c->len == sizeof(c->resp)) {
                break;
            }
        }
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    return clean;
}

/* IB_ARG reads option NAME's value, optarg, or exits with the usage. */
#define IB_ARG(name, min, max)                                                 \
    bench_arg("torpor-idle-bench", (name), optarg, (min), (max), ib_usage)

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'n'},
        {"rooms", required_argument, NULL, 'r'},
        {"first", required_argument, NULL, 'f'},
        {"route", required_argument, NULL, 'R'},
        {"prefix", required_argument, NULL, 'P'},
        {"inflight", required_argument, NULL, 'k'},
        {"max-seconds", required_argument, NULL, 't'},
        {"sizes", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    struct ib_bench b = {.route = "relay", .prefix = "idle", .inflight = 64};
    uint64_t max_s = 3600;
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            b.port = (uint16_t)IB_ARG("port", 1, 65535);
            break;
        case 'n':
            b.nconns = (unsigned)IB_ARG("conns", 1, IB_MAX_CONNS);
            break;
        case 'r':
            b.nrooms = (unsigned)IB_ARG("rooms", 1, IB_MAX_ROOMS);
            break;
        case 'f':
            b.first = (unsigned)IB_ARG("first", 0, 1000000);
            break;
        case 'R':
            b.route = optarg;
            break;
        case 'P':
            b.prefix = optarg;
            break;
        case 'k':
            b.inflight = (unsigned)IB_ARG("inflight", 1, 1024);
            break;
        case 't':
            max_s = IB_ARG("max-seconds", 1, 86400);
            break;
        case 's':
            idle_sizes_print(stdout);
            return 0;
        default:
            ib_usage();
            return 2;
        }
    }
    if (b.port == 0 || b.nconns == 0 || b.nrooms == 0 || optind != argc
        || strlen(b.route) + strlen(b.prefix) > IB_PATH_BYTES - 16) {
        ib_usage();
        return 2;
    }
    b.rng = bench_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, ib_on_alarm);
    struct sigaction sa = {.sa_handler = ib_on_usr1};
    sigaction(SIGUSR1, &sa, NULL); // no SA_RESTART: poll wakes up
    alarm((unsigned)max_s);

    b.conns = calloc(b.nconns, sizeof(*b.conns));
    if (b.conns == NULL) {
        fprintf(stderr, "torpor-idle-bench: could not allocate the run\n");
        return 1;
    }
    for (unsigned i = 0; i < b.nconns; i++) {
        b.conns[i].fd = -1;
    }
    uint64_t t0 = bench_now_ns();
    bool ok = ib_connect_all(&b);
    if (ok) {
        double ms = (double)(bench_now_ns() - t0) / 1e6;
        printf("conns=%u rooms=%u connect_ms=%.0f conn_per_s=%.0f\n", b.nconns,
               b.nrooms, ms, ms > 0 ? b.nconns * 1000.0 / ms : 0);
        fflush(stdout);
        ok = ib_hold(&b);
    }
    unsigned clean = ib_close_all(&b);
    if (ok) {
        printf("closed=%u clean=%u\n", b.nconns, clean);
    }
    free(b.conns);
    return ok && clean == b.nconns ? 0 : 1;
}
