/*
 * torpor-wake-bench: how long a message takes to reach another client of
 * its room when the room hibernates, against when it is awake.  A client
 * of a running torpord, over loopback only.  Not installed; `make
 * bench-wake` builds it and runs it through bench/run-wake.sh.
 *
 *   torpor-wake-bench --port P --class relay|chat --rooms R --rounds K
 *                     --idle-ms I [--max-seconds T]
 *
 * R rooms, ws://127.0.0.1:P/CLASS/NAME, with two clients each, A and B.
 * Each round first leaves every room idle for I ms, so that all of them
 * hibernate when I is longer than the class's hibernate_after_ms.  Then,
 * one room at a time, A sends a text message and B reads until that
 * message arrives: a wake sample.  At once A sends a second one, which
 * finds the room awake: an awake sample.  Nothing else is in flight while
 * a sample runs.  Latency runs from just before A's write to the end of
 * the frame at B, on CLOCK_MONOTONIC.
 *
 * A relay room hands B the bytes A sent.  A chat room broadcasts
 * {"type":"message",...,"text":"TEXT"} to both clients once the write is
 * durable; B's copy ends the sample, and A's copy is read afterwards,
 * outside the clock.  Before round 1 every room gets one unmeasured
 * message, so every chat wake finds a history key to read.
 *
 * The bench cannot see whether a room did hibernate: the daemon's
 * counters ("stopped: N wakeups, M hibernations") tell, and run-wake.sh
 * checks them.  Every read waits at most 10 s, and the whole run at most
 * T seconds (600 by default), after which SIGALRM ends it.
 *
 * Output, one line:
 *   class=C rooms=R rounds=K wake_n=N wake_p50_us=A wake_p99_us=B
 *   wake_p999_us=C wake_max_us=D awake_n=N awake_p50_us=... pass_max_ms=M
 * pass_max_ms is the longest round from its first message to its last.
 * When it exceeds hibernate_after_ms, rooms sampled early in a round
 * hibernate again while later ones are sampled.
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

#define WB_MAX_ROOMS 500
#define WB_MAX_ROUNDS 5
#define WB_BUF_BYTES 16384
#define WB_IO_TIMEOUT_MS 10000
#define WB_CLOSE_TIMEOUT_MS 5000
/* Frames of another kind (chat's join and leave) one wait may pass over. */
#define WB_MAX_SKIP 64
/* Room for the longest text sent and what chat wraps around it. */
#define WB_TEXT_BYTES 64
#define WB_WANT_BYTES (WB_TEXT_BYTES + 16)

#define WB_OP_TEXT 0x1
#define WB_OP_CLOSE 0x8
#define WB_OP_PING 0x9
#define WB_OP_PONG 0xa

/* One client connection: a blocking socket and what it has read. */
struct wb_conn {
    int fd;
    unsigned room;
    char side;   // 'A' or 'B', for messages
    size_t len;  // bytes in buf
    size_t used; // of them, the frame last returned, dropped on the next read
    uint8_t buf[WB_BUF_BYTES];
};

struct wb_room {
    struct wb_conn a, b;
};

struct wb_bench {
    uint16_t port;
    const char *klass;
    bool chat;
    struct wb_room *rooms;
    unsigned nrooms;
    uint64_t rng;
};

/* wb_left_ms: milliseconds until deadline_ns, rounded up, 0 once past. */
static int
wb_left_ms(uint64_t deadline_ns)
{
    uint64_t now = bench_now_ns();

    if (now >= deadline_ns) {
        return 0;
    }
    return (int)((deadline_ns - now + 999999u) / 1000000u);
}

static void
wb_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void
wb_on_alarm(int sig)
{
    static const char msg[] =
        "torpor-wake-bench: could not finish the run within --max-seconds\n";

    (void)sig;
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(1);
}

/* wb_fill appends what the socket has to c->buf, waiting until deadline. */
static bool
wb_fill(struct wb_conn *c, uint64_t deadline_ns)
{
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, wb_left_ms(deadline_ns));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0) {
            fprintf(
                stderr,
                "torpor-wake-bench: could not read room %u client %c: nothing for %d ms\n",
                c->room, c->side, WB_IO_TIMEOUT_MS);
            return false;
        }
        ssize_t got =
            n < 0 ? -1 : read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (got > 0) {
            c->len += (size_t)got;
            return true;
        }
        if (got == 0) {
            fprintf(
                stderr,
                "torpor-wake-bench: could not read room %u client %c: the server closed the connection\n",
                c->room, c->side);
            return false;
        }
        if (errno != EINTR && errno != EAGAIN) {
            fprintf(stderr,
                    "torpor-wake-bench: could not read room %u client %c: %s\n",
                    c->room, c->side, strerror(errno));
            return false;
        }
    }
}

static bool
wb_write_all(struct wb_conn *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(c->fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(
                stderr,
                "torpor-wake-bench: could not write to room %u client %c: %s\n",
                c->room, c->side, n < 0 ? strerror(errno) : "no progress");
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* wb_send writes one masked frame, as RFC 6455 requires of a client. */
static bool
wb_send(struct wb_bench *b, struct wb_conn *c, int opcode, const void *data,
        size_t len)
{
    uint8_t frame[BENCH_SMALL_FRAME_MAX];
    size_t n;

    if (len > 125) {
        fprintf(
            stderr,
            "torpor-wake-bench: could not send %zu bytes: the bench sends at most 125\n",
            len);
        return false;
    }
    n = bench_small_frame(&b->rng, opcode, data, len, frame);
    return wb_write_all(c, frame, n);
}

/*
 * wb_next_frame returns the next text or binary frame, pointing into
 * c->buf until the following call.  It answers pings, passes over pongs
 * and fails on a close, a fragment, a masked frame or one that does not
 * fit the buffer: the server sends none of these to this bench.
 */
static bool
wb_next_frame(struct wb_bench *b, struct wb_conn *c, uint64_t deadline_ns,
              int *opcode, const uint8_t **data, size_t *len)
{
    for (;;) {
        if (c->used > 0) {
            memmove(c->buf, c->buf + c->used, c->len - c->used);
            c->len -= c->used;
            c->used = 0;
        }
        const uint8_t *f = c->buf;
        size_t h = 2;
        uint64_t n = c->len >= 2 ? f[1] & 0x7f : 0;
        if (n == 126) {
            h = 4;
            n = c->len >= h ? (uint64_t)f[2] << 8 | f[3] : 0;
        } else if (n == 127) {
            h = 10;
            for (size_t i = 2; i < h && i < c->len; i++) {
                n = n << 8 | f[i];
            }
        }
        if (c->len < h) {
            if (!wb_fill(c, deadline_ns)) {
                return false;
            }
            continue;
        }
        if ((f[1] & 0x80) != 0 || (f[0] & 0x80) == 0
            || n > sizeof(c->buf) - h) {
            fprintf(
                stderr,
                "torpor-wake-bench: could not read room %u client %c: a masked, fragmented or oversized frame (first bytes 0x%02x 0x%02x)\n",
                c->room, c->side, f[0], f[1]);
            return false;
        }
        if (c->len < h + n) {
            if (!wb_fill(c, deadline_ns)) {
                return false;
            }
            continue;
        }
        int op = f[0] & 0x0f;
        c->used = h + (size_t)n;
        if (op == WB_OP_PING) {
            if (!wb_send(b, c, WB_OP_PONG, f + h, (size_t)n)) {
                return false;
            }
        } else if (op == WB_OP_CLOSE) {
            unsigned code = n >= 2 ? (unsigned)f[h] << 8 | f[h + 1] : 1005;
            fprintf(
                stderr,
                "torpor-wake-bench: could not read room %u client %c: the server closed with code %u\n",
                c->room, c->side, code);
            return false;
        } else if (op != WB_OP_PONG) {
            *opcode = op;
            *data = f + h;
            *len = (size_t)n;
            return true;
        }
    }
}

/*
 * wb_await reads c until a text frame that is, for relay, exactly want,
 * and for chat a message that ends with want.  Chat may first send frames
 * of other kinds, which are passed over; relay sends nothing else.
 */
static bool
wb_await(struct wb_bench *b, struct wb_conn *c, const char *want,
         size_t want_len)
{
    static const char head[] = "{\"type\":\"message\"";
    uint64_t deadline_ns = bench_now_ns() + WB_IO_TIMEOUT_MS * 1000000ull;

    for (unsigned skipped = 0; skipped <= WB_MAX_SKIP; skipped++) {
        const uint8_t *data;
        size_t len;
        int op;
        if (!wb_next_frame(b, c, deadline_ns, &op, &data, &len)) {
            return false;
        }
        if (!b->chat) {
            if (op == WB_OP_TEXT && len == want_len
                && memcmp(data, want, len) == 0) {
                return true;
            }
            fprintf(
                stderr,
                "torpor-wake-bench: could not find \"%s\" at room %u client %c: got a %zu-byte frame of opcode %d instead\n",
                want, c->room, c->side, len, op);
            return false;
        }
        if (op == WB_OP_TEXT && len >= sizeof(head) - 1 + want_len
            && memcmp(data, head, sizeof(head) - 1) == 0
            && memcmp(data + len - want_len, want, want_len) == 0) {
            return true;
        }
    }
    fprintf(
        stderr,
        "torpor-wake-bench: could not find %s at room %u client %c within %d frames\n",
        want, c->room, c->side, WB_MAX_SKIP);
    return false;
}

/*
 * wb_exchange sends text from A and returns in *ns how long it took to
 * reach B.  Everything but the write and B's reads happens outside the
 * clock: building what to look for before, reading chat's copy to A after.
 */
static bool
wb_exchange(struct wb_bench *b, struct wb_room *r, const char *text,
            uint64_t *ns)
{
    char want[WB_WANT_BYTES];
    size_t text_len = strlen(text);
    int want_len = b->chat
                       ? snprintf(want, sizeof(want), "\"text\":\"%s\"}", text)
                       : snprintf(want, sizeof(want), "%s", text);

    uint64_t t0 = bench_now_ns();
    if (!wb_send(b, &r->a, WB_OP_TEXT, text, text_len)
        || !wb_await(b, &r->b, want, (size_t)want_len)) {
        return false;
    }
    *ns = bench_now_ns() - t0;
    return !b->chat || wb_await(b, &r->a, want, (size_t)want_len);
}

/*
 * wb_connect opens c and completes the upgrade to path.  The key is the
 * one from RFC 6455's example; the answer's status is checked, its
 * Sec-WebSocket-Accept is not, since that would take SHA-1.
 */
static bool
wb_connect(struct wb_bench *b, struct wb_conn *c, const char *path)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(b->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[512];
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(
            stderr,
            "torpor-wake-bench: could not connect to \"127.0.0.1:%u\": %s\n",
            (unsigned)b->port, strerror(errno));
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
        return false;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\n"
                     "Host: 127.0.0.1:%u\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, (unsigned)b->port);
    if (!wb_write_all(c, (const uint8_t *)req, (size_t)n)) {
        return false;
    }
    uint64_t deadline_ns = bench_now_ns() + WB_IO_TIMEOUT_MS * 1000000ull;
    const uint8_t *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (c->len == sizeof(c->buf)) {
            fprintf(
                stderr,
                "torpor-wake-bench: could not open \"%s\": an answer longer than %d bytes\n",
                path, WB_BUF_BYTES);
            return false;
        }
        if (!wb_fill(c, deadline_ns)) {
            return false;
        }
    }
    if (c->len < 13 || memcmp(c->buf, "HTTP/1.1 101 ", 13) != 0) {
        const uint8_t *eol = memchr(c->buf, '\r', c->len);
        fprintf(
            stderr,
            "torpor-wake-bench: could not open \"%s\": the server answered \"%.*s\"\n",
            path, (int)(eol - c->buf), (const char *)c->buf);
        return false;
    }
    /* Frames may follow the answer in the same read. */
    c->used = (size_t)(end + 4 - c->buf);
    return true;
}

/* wb_await_welcome reads a new chat client's history and its welcome. */
static bool
wb_await_welcome(struct wb_bench *b, struct wb_conn *c)
{
    static const char head[] = "{\"type\":\"welcome\"";
    uint64_t deadline_ns = bench_now_ns() + WB_IO_TIMEOUT_MS * 1000000ull;

    for (unsigned skipped = 0; skipped <= WB_MAX_SKIP; skipped++) {
        const uint8_t *data;
        size_t len;
        int op;
        if (!wb_next_frame(b, c, deadline_ns, &op, &data, &len)) {
            return false;
        }
        if (len >= sizeof(head) - 1
            && memcmp(data, head, sizeof(head) - 1) == 0) {
            return true;
        }
    }
    fprintf(
        stderr,
        "torpor-wake-bench: could not find the welcome at room %u client %c within %d frames\n",
        c->room, c->side, WB_MAX_SKIP);
    return false;
}

/*
 * wb_open_room connects room i's two clients and sends its first,
 * unmeasured message.  For chat each client first reads its welcome, so
 * both are attached before anything is sent; B's join, which reaches A,
 * is passed over while A waits for its copy of that first message.
 */
static bool
wb_open_room(struct wb_bench *b, unsigned i)
{
    struct wb_room *r = &b->rooms[i];
    char path[64], text[WB_TEXT_BYTES];
    uint64_t ns;

    snprintf(path, sizeof(path), "/%s/wake-%ld-%u", b->klass, (long)getpid(),
             i);
    r->a.room = r->b.room = i;
    r->a.side = 'A';
    r->b.side = 'B';
    if (!wb_connect(b, &r->a, path)) {
        return false;
    }
    if (b->chat && !wb_await_welcome(b, &r->a)) {
        return false;
    }
    if (!wb_connect(b, &r->b, path)) {
        return false;
    }
    if (b->chat && !wb_await_welcome(b, &r->b)) {
        return false;
    }
    snprintf(text, sizeof(text), "first-%u", i);
    return wb_exchange(b, r, text, &ns);
}

static void
wb_close_all(struct wb_bench *b)
{
    static const uint8_t normal[2] = {0x03, 0xe8}; // 1000
    uint64_t deadline_ns = bench_now_ns() + WB_CLOSE_TIMEOUT_MS * 1000000ull;

    for (unsigned i = 0; i < 2 * b->nrooms; i++) {
        struct wb_conn *c =
            i % 2 == 0 ? &b->rooms[i / 2].a : &b->rooms[i / 2].b;
        if (c->fd >= 0) {
            (void)wb_send(b, c, WB_OP_CLOSE, normal, sizeof(normal));
        }
    }
    /* The server answers with its close and then ends the connection. */
    for (unsigned i = 0; i < 2 * b->nrooms; i++) {
        struct wb_conn *c =
            i % 2 == 0 ? &b->rooms[i / 2].a : &b->rooms[i / 2].b;
        if (c->fd < 0) {
            continue;
        }
        for (;;) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            if (poll(&p, 1, wb_left_ms(deadline_ns)) <= 0
                || read(c->fd, c->buf, sizeof(c->buf)) <= 0) {
                break;
            }
        }
        close(c->fd);
        c->fd = -1;
    }
}

static void
wb_print(const char *name, uint64_t *v, size_t n)
{
    bench_sort_u64(v, n);
    printf(" %s_n=%zu %s_p50_us=%.1f %s_p99_us=%.1f %s_p999_us=%.1f"
           " %s_max_us=%.1f",
           name, n, name, bench_pct_us(v, n, 500), name, bench_pct_us(v, n, 990), name,
           bench_pct_us(v, n, 999), name, n > 0 ? (double)v[n - 1] / 1000.0 : 0.0);
}

static void
wb_usage(void)
{
    fprintf(
        stderr,
        "usage: torpor-wake-bench --port P --class relay|chat --rooms R --rounds K --idle-ms I [--max-seconds T]\n");
}

/* WB_ARG reads option NAME's value, optarg, or exits with the usage. */
#define WB_ARG(name, min, max) \
    bench_arg("torpor-wake-bench", (name), optarg, (min), (max), wb_usage)

/* wb_run opens the rooms and takes the samples; false on any failure. */
static bool
wb_run(struct wb_bench *b, unsigned rounds, unsigned idle_ms, uint64_t *wake,
       uint64_t *awake, uint64_t *pass_max_ns)
{
    size_t n = 0;

    for (unsigned i = 0; i < b->nrooms; i++) {
        if (!wb_open_room(b, i)) {
            return false;
        }
    }
    for (unsigned k = 0; k < rounds; k++) {
        wb_sleep_ms(idle_ms);
        uint64_t start_ns = bench_now_ns();
        for (unsigned i = 0; i < b->nrooms; i++, n++) {
            char text[WB_TEXT_BYTES];
            snprintf(text, sizeof(text), "wake-%u-%u", k, i);
            if (!wb_exchange(b, &b->rooms[i], text, &wake[n])) {
                return false;
            }
            snprintf(text, sizeof(text), "awake-%u-%u", k, i);
            if (!wb_exchange(b, &b->rooms[i], text, &awake[n])) {
                return false;
            }
        }
        uint64_t pass_ns = bench_now_ns() - start_ns;
        if (pass_ns > *pass_max_ns) {
            *pass_max_ns = pass_ns;
        }
    }
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"class", required_argument, NULL, 'c'},
        {"rooms", required_argument, NULL, 'r'},
        {"rounds", required_argument, NULL, 'k'},
        {"idle-ms", required_argument, NULL, 'i'},
        {"max-seconds", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    struct wb_bench b = {0};
    uint64_t rooms = 200, rounds = 5, idle_ms = 0, max_s = 600;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            b.port = (uint16_t)WB_ARG("port", 1, 65535);
            break;
        case 'c':
            b.klass = optarg;
            break;
        case 'r':
            rooms = WB_ARG("rooms", 1, WB_MAX_ROOMS);
            break;
        case 'k':
            rounds = WB_ARG("rounds", 1, WB_MAX_ROUNDS);
            break;
        case 'i':
            idle_ms = WB_ARG("idle-ms", 1, 60000);
            break;
        case 't':
            max_s = WB_ARG("max-seconds", 1, 3600);
            break;
        default:
            wb_usage();
            return 2;
        }
    }
    if (b.port == 0 || b.klass == NULL || idle_ms == 0 || optind != argc
        || (strcmp(b.klass, "relay") != 0 && strcmp(b.klass, "chat") != 0)) {
        wb_usage();
        return 2;
    }
    b.chat = strcmp(b.klass, "chat") == 0;
    b.nrooms = (unsigned)rooms;
    b.rng = bench_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
    signal(SIGALRM, wb_on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)max_s);

    size_t nsamples = (size_t)(rooms * rounds);
    b.rooms = calloc(rooms, sizeof(*b.rooms));
    uint64_t *wake = calloc(nsamples, sizeof(*wake));
    uint64_t *awake = calloc(nsamples, sizeof(*awake));
    if (b.rooms == NULL || wake == NULL || awake == NULL) {
        fprintf(stderr, "torpor-wake-bench: could not allocate the run\n");
        return 1;
    }
    for (unsigned i = 0; i < b.nrooms; i++) {
        b.rooms[i].a.fd = b.rooms[i].b.fd = -1;
    }

    uint64_t pass_max_ns = 0;
    bool ok = wb_run(&b, (unsigned)rounds, (unsigned)idle_ms, wake, awake,
                     &pass_max_ns);
    if (ok) {
        printf("class=%s rooms=%u rounds=%u", b.klass, b.nrooms,
               (unsigned)rounds);
        wb_print("wake", wake, nsamples);
        wb_print("awake", awake, nsamples);
        printf(" pass_max_ms=%.0f\n", (double)pass_max_ns / 1e6);
    }
    wb_close_all(&b);
    free(awake);
    free(wake);
    free(b.rooms);
    return ok ? 0 : 1;
}
