/*
 * Connections of a torpor-bench client process: opened with at most
 * connect_window handshakes in flight, upgraded to WebSocket (and for
 * Socket.IO taken through Engine.IO's open, the namespace's connect and
 * the room's join), then read.  One read takes whatever the socket has,
 * up to 64 KiB, into a buffer the whole process shares; only the tail of
 * a frame cut by the read stays with the connection.
 */
#include "build-config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/tb_client.h"

/* RFC 6455's example key: the bench does not check the answer's accept. */
#define TB_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static void tb_on_read(evutil_socket_t fd, short what, void *arg);

static bool
tb_conn_send_text(struct tb_conn *c, const char *text, size_t len)
{
    uint8_t frame[TB_FRAME_HEAD_MAX + 256];

    return tb_conn_write(
        c, frame,
        tb_wire_frame(frame, TB_OP_TEXT, text, len, tb_client_mask(c->cl)));
}

static void
tb_conn_ready(struct tb_conn *c, uint64_t now_ns)
{
    struct tb_client *cl = c->cl;

    /* An idle connection must not time out: drop the handshake's limit.
     * A persistent event keeps its timeout through event_del and an
     * event_add without one, so it is set up anew. */
    event_del(c->ev);
    event_assign(c->ev, cl->base, c->fd, EV_READ | EV_PERSIST, tb_on_read, c);
    if (event_add(c->ev, NULL) != 0) {
        tb_conn_fail(c, "could not wait for its messages");
        return;
    }
    c->state = TB_READY;
    cl->opened++;
    cl->connecting--;
    cl->rep.last_ready_ns = now_ns;
    tb_connect_more(cl);
}

/* tb_on_sio handles one Engine.IO packet, a text frame's data. */
static void
tb_on_sio(struct tb_conn *c, const uint8_t *d, size_t n, uint64_t now_ns)
{
    const struct tb_opts *o = c->cl->o;
    char text[128];

    if (n == 0) {
        tb_conn_fail(c, "an empty Engine.IO packet");
        return;
    }
    switch (d[0]) {
    case '0': // Engine.IO open: connect to the main namespace
        if (c->state == TB_EIO_OPEN) {
            c->state = TB_SIO_CONNECT;
            tb_conn_send_text(c, "40", 2);
        }
        return;
    case '1':
        tb_conn_fail(c, "Engine.IO closed the session");
        return;
    case '2': // Engine.IO ping, answered by a pong
        tb_conn_send_text(c, "3", 1);
        return;
    case '4':
        break;
    default:
        return;
    }
    int type = n >= 2 ? d[1] : -1;
    if (type == '0' && c->state == TB_SIO_CONNECT) {
        /* Join the room, with ack id 1, answered by "431[]". */
        int len = snprintf(text, sizeof(text), "421[\"join\",\"%s-%u\"]",
                           o->tag, c->room->index);
        c->state = TB_SIO_JOIN;
        tb_conn_send_text(c, text, (size_t)len);
    } else if (type == '3' && c->state == TB_SIO_JOIN && n >= 3
               && d[2] == '1') {
        tb_conn_ready(c, now_ns);
    } else if (type == '2' && c->state == TB_READY
               && n == o->size + TB_SIO_WRAP_BYTES
               && memcmp(d, TB_SIO_MSG_HEAD, sizeof(TB_SIO_MSG_HEAD) - 1) == 0
               && memcmp(d + n - 2, TB_SIO_MSG_TAIL, 2) == 0) {
        tb_phase_deliver(c, d + sizeof(TB_SIO_MSG_HEAD) - 1, o->size, now_ns);
    } else if (type == '4' || type == '1') {
        tb_conn_fail(c, "Socket.IO refused or ended the session: \"%.*s\"",
                     (int)(n < 80 ? n : 80), (const char *)d);
    } else {
        tb_conn_fail(c, "an unexpected Socket.IO packet: \"%.*s\"",
                     (int)(n < 80 ? n : 80), (const char *)d);
    }
}

static void
tb_on_frame(struct tb_conn *c, const struct tb_frame *f, uint64_t now_ns)
{
    uint8_t pong[TB_FRAME_HEAD_MAX + 125];

    switch (f->opcode) {
    case TB_OP_TEXT:
    case TB_OP_BINARY:
        if (c->cl->o->proto == TB_SIO) {
            tb_on_sio(c, f->data, f->len, now_ns);
        } else {
            tb_phase_deliver(c, f->data, f->len, now_ns);
        }
        return;
    case TB_OP_PING:
        if (f->len <= 125) {
            tb_conn_write(c, pong,
                          tb_wire_frame(pong, TB_OP_PONG, f->data, f->len,
                                        tb_client_mask(c->cl)));
        }
        return;
    case TB_OP_PONG:
        return;
    case TB_OP_CLOSE:
        tb_conn_fail(c, "the server closed with code %u",
                     f->len >= 2 ? (unsigned)f->data[0] << 8 | f->data[1]
                                 : 1005);
        return;
    default:
        tb_conn_fail(c, "a frame of opcode %d", f->opcode);
    }
}

/* tb_on_http reads the answer to the upgrade; returns the bytes it took. */
static size_t
tb_on_http(struct tb_conn *c, const uint8_t *buf, size_t len, uint64_t now_ns)
{
    const uint8_t *end = memmem(buf, len, "\r\n\r\n", 4);

    if (end == NULL) {
        if (len >= TB_CARRY_BYTES) {
            tb_conn_fail(c, "an answer longer than %d bytes", TB_CARRY_BYTES);
        }
        return 0;
    }
    if (len < 13 || memcmp(buf, "HTTP/1.1 101 ", 13) != 0) {
        const uint8_t *eol = memchr(buf, '\r', len);
        tb_conn_fail(c, "the server answered \"%.*s\"", (int)(eol - buf),
                     (const char *)buf);
        return 0;
    }
    if (c->cl->o->proto == TB_SIO) {
        c->state = TB_EIO_OPEN;
    } else {
        tb_conn_ready(c, now_ns);
    }
    return (size_t)(end + 4 - buf);
}

static void
tb_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct tb_conn *c = arg;
    struct tb_client *cl = c->cl;
    uint8_t *buf = cl->rbuf;

    if ((what & EV_TIMEOUT) != 0) {
        tb_conn_fail(c, "no answer to the upgrade within %u ms",
                     cl->o->timeout_ms);
        return;
    }
    memcpy(buf, c->carry, c->carry_len);
    ssize_t n = read(fd, buf + c->carry_len, TB_READ_BYTES);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        tb_conn_fail(c, "%s",
                     n == 0 ? "the server closed the connection"
                            : strerror(errno));
        return;
    }
    uint64_t now_ns = bench_now_ns();
    size_t len = c->carry_len + (size_t)n, off = 0;
    if (c->state == TB_HTTP) {
        off = tb_on_http(c, buf, len, now_ns);
    }
    while (c->state != TB_CLOSED && c->state != TB_HTTP && off < len) {
        struct tb_frame f;
        enum tb_frame_status st = tb_wire_next(buf + off, len - off, &f);
        if (st == TB_FRAME_PARTIAL) {
            break;
        }
        if (st == TB_FRAME_BAD) {
            tb_conn_fail(
                c, "a masked, fragmented or oversized frame (0x%02x 0x%02x)",
                buf[off], buf[off + 1]);
            return;
        }
        tb_on_frame(c, &f, now_ns);
        off += f.total;
    }
    if (c->state == TB_CLOSED) {
        return;
    }
    if (len - off > TB_CARRY_BYTES) {
        tb_conn_fail(c, "a frame longer than %d bytes", TB_CARRY_BYTES);
        return;
    }
    c->carry_len = (uint16_t)(len - off);
    memcpy(c->carry, buf + off, c->carry_len);
    tb_phase_read_done(c);
}

static void
tb_on_connected(evutil_socket_t fd, short what, void *arg)
{
    struct tb_conn *c = arg;
    struct tb_client *cl = c->cl;
    const struct tb_opts *o = cl->o;
    struct timeval limit = {
        .tv_sec = (time_t)(cl->o->timeout_ms / 1000),
        .tv_usec = (suseconds_t)(cl->o->timeout_ms % 1000) * 1000};
    char req[512];
    int err = 0;
    socklen_t errlen = sizeof(err);

    if ((what & EV_TIMEOUT) != 0) {
        tb_conn_fail(c, "no TCP connection within %u ms", o->timeout_ms);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0) {
        tb_conn_fail(c, "could not connect: %s", strerror(err ? err : errno));
        return;
    }
    event_free(c->ev);
    c->ev = event_new(cl->base, fd, EV_READ | EV_PERSIST, tb_on_read, c);
    if (c->ev == NULL || event_add(c->ev, &limit) != 0) {
        tb_conn_fail(c, "could not wait for the answer");
        return;
    }
    int n;
    if (o->proto == TB_SIO) {
        n = snprintf(req, sizeof(req),
                     "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n");
    } else {
        n = snprintf(req, sizeof(req), "GET %s%s-%u HTTP/1.1\r\n", o->path,
                     o->tag, c->room->index);
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n,
                  "Host: 127.0.0.1:%u\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: " TB_WS_KEY "\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  (unsigned)o->port);
    c->state = TB_HTTP;
    tb_conn_write(c, req, (size_t)n);
}

static void
tb_conn_start(struct tb_client *cl, struct tb_conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(cl->o->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval limit = {
        .tv_sec = (time_t)(cl->o->timeout_ms / 1000),
        .tv_usec = (suseconds_t)(cl->o->timeout_ms % 1000) * 1000};
    int one = 1;

    cl->connecting++;
    c->state = TB_CONNECTING;
    if (cl->rep.first_start_ns == 0) {
        cl->rep.first_start_ns = bench_now_ns();
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        tb_conn_fail(c, "could not make a socket: %s", strerror(errno));
        return;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        && errno != EINPROGRESS) {
        tb_conn_fail(c, "could not connect: %s", strerror(errno));
        return;
    }
    c->ev = event_new(cl->base, c->fd, EV_WRITE, tb_on_connected, c);
    if (c->ev == NULL || event_add(c->ev, &limit) != 0) {
        tb_conn_fail(c, "could not wait for the connection");
    }
}

/*
 * tb_connect_more starts handshakes up to the window, and reports the
 * connect phase once every connection is open or has failed.  A failure
 * inside tb_conn_start calls back in here; the guard keeps that from
 * recursing once per connection.
 */
void
tb_connect_more(struct tb_client *cl)
{
    static bool running;

    if (running) {
        return;
    }
    /* A server that stopped accepting would keep each further attempt
     * waiting out its timeout: give up on the rest instead. */
    const struct tb_opts *o = cl->o;
    uint64_t give_up = (o->max_failures + o->procs - 1) / o->procs;
    running = true;
    while (cl->connecting < o->connect_window && cl->next_connect < cl->nconns
           && cl->failed < give_up) {
        tb_conn_start(cl, &cl->conns[cl->next_connect++]);
    }
    running = false;
    if (cl->phase == TB_CMD_CONNECT && cl->connecting == 0
        && (cl->next_connect == cl->nconns || cl->failed >= give_up)) {
        cl->rep.not_tried = cl->nconns - cl->next_connect;
        tb_client_finish(cl);
    }
}
