/*
 * torpor-backend-bench: round trips through the backend class and its
 * workers, per second and how long each takes.  A client of a running
 * torpord whose route /mod/ is a backend room served by the moderator
 * workers of examples/workers/; over loopback only.  Not installed; `make
 * bench-backend` builds it and runs it through bench/run-backend.sh.
 *
 *   torpor-backend-bench --port P --rooms R --messages M [--max-seconds T]
 *
 * R rooms, ws://127.0.0.1:P/mod/NAME, each with two clients: a
 * (?tag=a) and b (?tag=b).  Every room keeps one message in flight: a
 * sends "mN", the event goes to a worker, whose reply broadcasts "a: mN"
 * to the room but a, and when b has it a sends the next.  A round trip is
 * timed from just before a's write to the end of the frame at b, on
 * CLOCK_MONOTONIC: WebSocket in, a worker's request and reply over nng,
 * the broadcast out.  The rooms run side by side, so the rate is what
 * torpord and the workers sustain with R events in flight.  The first
 * 10 messages of each room are not counted.
 *
 * Every read waits at most 10 s and the whole run at most T seconds (300
 * by default), after which SIGALRM ends it.
 *
 * Output, one line:
 *   rooms=R messages=N elapsed_ms=E per_s=X p50_us=A p99_us=B
 *   p999_us=C max_us=D
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
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
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"

#define BB_MAX_ROOMS 1000
#define BB_MAX_MESSAGES 100000
#define BB_WARMUP 10
#define BB_BUF_BYTES 4096
#define BB_IO_TIMEOUT_MS 10000

#define BB_OP_TEXT 0x1
#define BB_OP_CLOSE 0x8
#define BB_OP_PING 0x9
#define BB_OP_PONG 0xa

/* One client: a blocking socket and what it has read. */
struct bb_conn {
    int fd;
    size_t len;
    uint8_t buf[BB_BUF_BYTES];
};

struct bb_room {
    struct bb_conn a, b;
    unsigned sent;              /* messages a has sent */
    uint64_t sent_ns;           /* when the one in flight was written */
};

struct bb_bench {
    uint16_t port;
    struct bb_room *rooms;
    unsigned nrooms;
    unsigned messages;
    uint64_t rng;
    uint64_t *samples;
    size_t nsamples;
};

static void
bb_usage(void)
{
    fprintf(stderr, "usage: torpor-backend-bench --port P --rooms R --messages M [--max-seconds T]\n");
    exit(2);
}

static void
bb_on_alarm(int sig)
{
    static const char msg[] =
        "torpor-backend-bench: could not finish the run within --max-seconds\n";

    (void)sig;
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(1);
}

static bool
bb_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "torpor-backend-bench: could not write: %s\n", n < 0 ? strerror(errno) : "no progress");
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* bb_send writes one masked text frame of at most 125 bytes. */
static bool
bb_send(struct bb_bench *b, struct bb_conn *c, int opcode, const void *data,
        size_t len)
{
    uint8_t frame[BENCH_SMALL_FRAME_MAX];
    size_t n;

    n = bench_small_frame(&b->rng, opcode, data, len, frame);
    return bb_write_all(c->fd, frame, n);
}

/* bb_fill reads what c's socket has, waiting at most the io timeout. */
static bool
bb_fill(struct bb_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};

    if (c->len == sizeof(c->buf)) {
        fprintf(stderr, "torpor-backend-bench: could not read: a frame over %d bytes\n", BB_BUF_BYTES);
        return false;
    }
    int n = poll(&p, 1, BB_IO_TIMEOUT_MS);
    if (n <= 0) {
        fprintf(stderr, "torpor-backend-bench: could not read: nothing for %d ms\n", BB_IO_TIMEOUT_MS);
        return false;
    }
    ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
    if (got <= 0) {
        fprintf(stderr, "torpor-backend-bench: could not read: %s\n", got < 0 ? strerror(errno) : "the server closed the connection");
        return false;
    }
    c->len += (size_t)got;
    return true;
}

/*
 * bb_take returns the length of the first whole frame in c->buf, its
 * payload in *data and *len, or 0 if there is none yet.  -1 on a frame
 * the server never sends here (masked, fragmented, long, a close).
 */
static int
bb_take(struct bb_conn *c, int *op, const uint8_t **data, size_t *len)
{
    const uint8_t *f = c->buf;
    size_t h = 2, n;

    if (c->len < 2) {
        return 0;
    }
    n = f[1] & 0x7f;
    if (n == 126) {
        h = 4;
        if (c->len < h) {
            return 0;
        }
        n = (size_t)f[2] << 8 | f[3];
    }
    if ((f[1] & 0x80) || !(f[0] & 0x80) || n == 127 || h + n > sizeof(c->buf)
        || (f[0] & 0x0f) == BB_OP_CLOSE) {
        fprintf(stderr, "torpor-backend-bench: could not read: an unexpected frame (0x%02x 0x%02x)\n", f[0], f[1]);
        return -1;
    }
    if (c->len < h + n) {
        return 0;
    }
    *op = f[0] & 0x0f;
    *data = f + h;
    *len = n;
    return (int)(h + n);
}

static void
bb_drop(struct bb_conn *c, int used)
{
    memmove(c->buf, c->buf + used, c->len - (size_t)used);
    c->len -= (size_t)used;
}

/* bb_expect reads c until a text frame equal to want; pings answered. */
static bool
bb_expect(struct bb_bench *b, struct bb_conn *c, const char *want)
{
    for (;;) {
        const uint8_t *data;
        size_t len;
        int op;
        int used = bb_take(c, &op, &data, &len);
        if (used < 0) {
            return false;
        }
        if (used == 0) {
            if (!bb_fill(c)) {
                return false;
            }
            continue;
        }
        bool match = op == BB_OP_TEXT && len == strlen(want)
                     && memcmp(data, want, len) == 0;
        if (op == BB_OP_PING && !bb_send(b, c, BB_OP_PONG, data, len)) {
            return false;
        }
        bool other = op != BB_OP_PING && op != BB_OP_PONG && !match;
        if (other) {
            fprintf(stderr, "torpor-backend-bench: could not find \"%s\": got \"%.*s\"\n", want, (int)len, (const char *)data);
        }
        bb_drop(c, used);
        if (match || other) {
            return match;
        }
    }
}

/* bb_connect opens c and completes the upgrade to path. */
static bool
bb_connect(struct bb_bench *b, struct bb_conn *c, const char *path)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(b->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[512];
    int one = 1;

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "torpor-backend-bench: could not connect to \"127.0.0.1:%u\": %s\n", (unsigned)b->port, strerror(errno));
        return false;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, (unsigned)b->port);
    if (!bb_write_all(c->fd, (const uint8_t *)req, (size_t)n)) {
        return false;
    }
    const uint8_t *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (!bb_fill(c)) {
            return false;
        }
    }
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "torpor-backend-bench: could not upgrade \"%s\": %.12s\n", path, (const char *)c->buf);
        return false;
    }
    bb_drop(c, (int)(end + 4 - c->buf));
    return true;
}

/* bb_open_rooms connects both clients of every room and reads greetings. */
static bool
bb_open_rooms(struct bb_bench *b)
{
    char path[128];
    unsigned tag = (unsigned)(b->rng & 0xffffff);

    for (unsigned i = 0; i < b->nrooms; i++) {
        struct bb_room *r = &b->rooms[i];
        snprintf(path, sizeof(path), "/mod/bench-%06x-%u?tag=a", tag, i);
        if (!bb_connect(b, &r->a, path) || !bb_expect(b, &r->a, "welcome a")) {
            return false;
        }
        snprintf(path, sizeof(path), "/mod/bench-%06x-%u?tag=b", tag, i);
        if (!bb_connect(b, &r->b, path) || !bb_expect(b, &r->b, "welcome b")
            || !bb_expect(b, &r->a, "b joined")) {
            return false;
        }
    }
    return true;
}

static bool
bb_send_next(struct bb_bench *b, struct bb_room *r)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "m%u", r->sent);

    r->sent_ns = bench_now_ns();
    r->sent++;
    return bb_send(b, &r->a, BB_OP_TEXT, text, (size_t)n);
}

/*
 * bb_on_b handles what b of room r has read: each relayed message ends a
 * round trip, and the next one starts at once.  Returns false on error.
 */
static bool
bb_on_b(struct bb_bench *b, struct bb_room *r, unsigned *done)
{
    for (;;) {
        const uint8_t *data;
        size_t len;
        int op;
        int used = bb_take(&r->b, &op, &data, &len);
        if (used <= 0) {
            return used == 0;
        }
        uint64_t now = bench_now_ns();
        char want[40];
        int n = snprintf(want, sizeof(want), "a: m%u", r->sent - 1);
        if (op != BB_OP_TEXT || len != (size_t)n
            || memcmp(data, want, len) != 0) {
            fprintf(stderr, "torpor-backend-bench: could not find \"%s\": got \"%.*s\"\n", want, (int)len, (const char *)data);
            return false;
        }
        bb_drop(&r->b, used);
        if (r->sent > BB_WARMUP) {
            b->samples[b->nsamples++] = now - r->sent_ns;
        }
        if (r->sent == b->messages + BB_WARMUP) {
            (*done)++;
            return true;
        }
        if (!bb_send_next(b, r)) {
            return false;
        }
    }
}

static bool
bb_run(struct bb_bench *b, uint64_t *elapsed_ns)
{
    struct pollfd *fds = calloc(b->nrooms, sizeof(*fds));
    unsigned done = 0;
    bool ok = fds != NULL;

    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; ok && i < b->nrooms; i++) {
        fds[i].fd = b->rooms[i].b.fd;
        fds[i].events = POLLIN;
        ok = bb_send_next(b, &b->rooms[i]);
    }
    while (ok && done < b->nrooms) {
        int n = poll(fds, b->nrooms, BB_IO_TIMEOUT_MS);
        if (n <= 0) {
            fprintf(stderr, "torpor-backend-bench: could not read: nothing for %d ms\n", BB_IO_TIMEOUT_MS);
            ok = false;
            break;
        }
        for (unsigned i = 0; ok && i < b->nrooms; i++) {
            if (fds[i].revents == 0) {
                continue;
            }
            struct bb_room *r = &b->rooms[i];
            ssize_t got = read(r->b.fd, r->b.buf + r->b.len,
                               sizeof(r->b.buf) - r->b.len);
            if (got <= 0) {
                fprintf(stderr, "torpor-backend-bench: could not read room %u: %s\n", i, got < 0 ? strerror(errno) : "closed");
                ok = false;
                break;
            }
            r->b.len += (size_t)got;
            unsigned before = done;
            ok = bb_on_b(b, r, &done);
            if (done != before) {
                fds[i].fd = -1;     /* this room is finished */
            }
        }
    }
    *elapsed_ns = bench_now_ns() - t0;
    free(fds);
    return ok;
}

int
main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"port", required_argument, NULL, 'p'},
        {"rooms", required_argument, NULL, 'r'},
        {"messages", required_argument, NULL, 'm'},
        {"max-seconds", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    struct bb_bench b = {.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid()};
    unsigned max_s = 300;
    int opt;

    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        const char *prog = "torpor-backend-bench";
        switch (opt) {
        case 'p':
            b.port = (uint16_t)bench_arg(prog, "port", optarg, 1, 65535, bb_usage);
            break;
        case 'r':
            b.nrooms = (unsigned)bench_arg(prog, "rooms", optarg, 1, BB_MAX_ROOMS, bb_usage);
            break;
        case 'm':
            b.messages = (unsigned)bench_arg(prog, "messages", optarg, 1, BB_MAX_MESSAGES, bb_usage);
            break;
        case 't':
            max_s = (unsigned)bench_arg(prog, "max-seconds", optarg, 1, 3600, bb_usage);
            break;
        default:
            bb_usage();
        }
    }
    if (b.port == 0 || b.nrooms == 0 || b.messages == 0) {
        bb_usage();
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, bb_on_alarm);
    alarm(max_s);
    b.rooms = calloc(b.nrooms, sizeof(*b.rooms));
    b.samples = calloc((size_t)b.nrooms * b.messages, sizeof(*b.samples));
    if (b.rooms == NULL || b.samples == NULL) {
        fprintf(stderr, "torpor-backend-bench: out of memory\n");
        return 1;
    }
    uint64_t elapsed_ns = 0;
    if (!bb_open_rooms(&b) || !bb_run(&b, &elapsed_ns)) {
        return 1;
    }
    bench_sort_u64(b.samples, b.nsamples);
    /* Throughput counts every round trip, warm-up included: all ran in
     * the measured time. */
    double total = (double)b.nrooms * (b.messages + BB_WARMUP);
    printf("rooms=%u messages=%zu elapsed_ms=%.0f per_s=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f\n",
           b.nrooms, b.nsamples, elapsed_ns / 1e6,
           total / (elapsed_ns / 1e9), bench_pct_us(b.samples, b.nsamples, 500),
           bench_pct_us(b.samples, b.nsamples, 990),
           bench_pct_us(b.samples, b.nsamples, 999),
           b.nsamples > 0 ? b.samples[b.nsamples - 1] / 1e3 : 0.0);
    for (unsigned i = 0; i < b.nrooms; i++) {
        close(b.rooms[i].a.fd);
        close(b.rooms[i].b.fd);
    }
    free(b.rooms);
    free(b.samples);
    return 0;
}
