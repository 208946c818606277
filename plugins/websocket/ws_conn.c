/*
 * The life of a connection: the upgrade handshake on the main loop, the
 * move to its object's loop, the close handshake, deadlines and teardown.
 *
 * Re-entrancy: host calls made from here (conn_opened, conn_received) may
 * call back into the transport ops for the same connection.  Ops never free
 * a connection; they only change its state or mark it failed.  A record is
 * freed only at the end of one of its own io or timer callbacks, in
 * ws_conn_settle, when no host call for it is on the stack.
 */
#include "ws.h"
#include "ws_handshake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* First size of the handshake buffer; it doubles up to the limit. */
#define WS_HANDSHAKE_FIRST_BYTES 1024

/* How long a deadline waits again when the record has not reached its
 * loop yet. */
#define WS_DEADLINE_RETRY_MS 10

static void ws_conn_on_io(torpor_io *io, int fd, unsigned events, void *arg);
static void ws_conn_on_timer(torpor_timer *timer, void *arg);

/* ---- the registry of every connection ---- */

static torpor_err
ws_registry_add(struct ws_state *ws, struct ws_conn *c)
{
    torpor_err err = TORPOR_OK;

    pthread_mutex_lock(&ws->lock);
    if (ws->n_conns == ws->cap_conns) {
        uint32_t cap = ws->cap_conns == 0 ? 64 : ws->cap_conns * 2;
        struct ws_conn **p = NULL;

        if (cap > ws->cap_conns) {
            p = realloc(ws->conns, (size_t)cap * sizeof(*p));
        }
        if (p == NULL) {
            err = TORPOR_ENOMEM;
            goto out;
        }
        ws->conns = p;
        ws->cap_conns = cap;
    }
    c->slot = ws->n_conns;
    ws->conns[ws->n_conns++] = c;
out:
    pthread_mutex_unlock(&ws->lock);
    return err;
}

static void
ws_registry_remove_locked(struct ws_state *ws, struct ws_conn *c)
{
    struct ws_conn *last = ws->conns[--ws->n_conns];

    ws->conns[c->slot] = last;
    last->slot = c->slot;
    /* Give memory back after a peak, keeping room to grow again. */
    if (ws->cap_conns > 256 && ws->n_conns < ws->cap_conns / 4) {
        struct ws_conn **p =
            realloc(ws->conns, (size_t)(ws->cap_conns / 2) * sizeof(*p));

        if (p != NULL) {
            ws->conns = p;
            ws->cap_conns /= 2;
        }
    }
}

/* ---- records ---- */

struct ws_busy *
ws_conn_busy(struct ws_conn *c)
{
    if (c->busy == NULL) {
        c->busy = calloc(1, sizeof(*c->busy));
    }
    return c->busy;
}

/* ws_conn_release frees c and what it holds, registry aside. */
static void
ws_conn_release(struct ws_conn *c)
{
    const struct torpor_host *host = c->ws->host;
    struct ws_busy *b = c->busy;

    if (c->io != NULL) {
        host->io_close(c->io);
    }
    if (b != NULL) {
        if (b->timer != NULL) {
            host->timer_close(b->timer);
        }
        free(b->in);
        free(b->msg);
        ws_write_free(b);
        free(b);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c);
}

static void
ws_conn_free(struct ws_conn *c)
{
    struct ws_state *ws = c->ws;

    pthread_mutex_lock(&ws->lock);
    ws_registry_remove_locked(ws, c);
    pthread_mutex_unlock(&ws->lock);
    ws_conn_release(c);
}

/* ws_conn_trim frees the in-progress record once nothing is in progress. */
static void
ws_conn_trim(struct ws_conn *c)
{
    struct ws_busy *b = c->busy;

    if (b == NULL || b->timer != NULL || b->in != NULL || b->msg != NULL
        || b->msg_op != 0 || b->in_frame || b->hdr_len != 0
        || b->q_count != 0) {
        return;
    }
    ws_write_free(b);
    free(b);
    c->busy = NULL;
}

/*
 * ws_conn_report tells the core that c is gone, once: afterwards c->conn is
 * NULL and nothing here calls the host with that handle again.
 */
static void
ws_conn_report(struct ws_conn *c, uint16_t code, const char *reason,
               size_t reason_len, bool clean)
{
    torpor_conn *conn = c->conn;

    if (conn == NULL) {
        return;
    }
    c->conn = NULL;
    c->ws->host->conn_closed(conn, code, reason, reason_len, clean);
}

void
ws_conn_fail(struct ws_conn *c)
{
    c->flags |= WS_F_FAILED;
    /* Makes the socket readable at once, so the loop comes back to it. */
    (void)shutdown(c->fd, SHUT_RDWR);
}

void
ws_conn_watch(struct ws_conn *c)
{
    unsigned want = 0;
    unsigned have = 0;

    if (c->io == NULL || (c->flags & WS_F_FAILED) != 0
        || c->state == WS_ST_DEAD) {
        return;
    }
    if (c->state != WS_ST_FLUSHING) {
        want |= TORPOR_IO_READ;
    }
    if (ws_write_pending(c)) {
        want |= TORPOR_IO_WRITE;
    }
    if ((c->flags & WS_F_WATCH_READ) != 0) {
        have |= TORPOR_IO_READ;
    }
    if ((c->flags & WS_F_WATCH_WRITE) != 0) {
        have |= TORPOR_IO_WRITE;
    }
    if (want == have || want == 0) {
        return;
    }
    WS_LOG(c->ws, TORPOR_LOG_DEBUG, c->conn, "TMP watch %u -> %u", have, want);
    if (c->ws->host->io_set(c->io, want) != TORPOR_OK) {
        ws_conn_fail(c);
        return;
    }
    c->flags &= (uint8_t) ~(WS_F_WATCH_READ | WS_F_WATCH_WRITE);
    if ((want & TORPOR_IO_READ) != 0) {
        c->flags |= WS_F_WATCH_READ;
    }
    if ((want & TORPOR_IO_WRITE) != 0) {
        c->flags |= WS_F_WATCH_WRITE;
    }
}

/*
 * ws_conn_settle ends every callback of c: it frees c if it is done, and
 * otherwise trims its in-progress record and updates its io watch.
 */
static void
ws_conn_settle(struct ws_conn *c)
{
    if ((c->flags & WS_F_FAILED) != 0 || c->state == WS_ST_DEAD) {
        if (c->conn != NULL) {
            WS_LOG(c->ws, TORPOR_LOG_DEBUG, c->conn,
                   "connection dropped without close handshake");
        }
        ws_conn_report(c, TORPOR_CLOSE_ABNORMAL, NULL, 0, false);
        ws_conn_free(c);
        return;
    }
    if (c->state == WS_ST_FLUSHING && !ws_write_pending(c)) {
        ws_conn_free(c);
        return;
    }
    ws_conn_trim(c);
    ws_conn_watch(c);
}

/* ws_conn_deadline arms c's one timer, opening it on c's loop if needed. */
static bool
ws_conn_deadline(struct ws_conn *c, uint64_t after_ms)
{
    const struct torpor_host *host = c->ws->host;
    struct ws_busy *b = ws_conn_busy(c);

    if (b == NULL) {
        return false;
    }
    if (b->timer == NULL
        && host->timer_open(c->loop, ws_conn_on_timer, c, &b->timer)
               != TORPOR_OK) {
        b->timer = NULL;
        return false;
    }
    host->timer_arm(b->timer, after_ms);
    return true;
}

static void
ws_conn_peer(const struct ws_conn *c, char out[WS_ADDR_STRLEN])
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0) {
        strcpy(out, "?");
        return;
    }
    ws_addr_format((const struct sockaddr *)&ss, out);
}

/* ---- the opening handshake ---- */

/*
 * ws_conn_reject answers the upgrade request with an HTTP error and shuts
 * our side down.  The answer is tiny and the socket fresh, so one send is
 * enough; if it does not fit, the peer sees the connection close, which is
 * all a refused client can act on anyway.  c then drains what the peer
 * still sends until it hangs up, or for WS_REFUSED_LINGER_MS at most.
 */
static void
ws_conn_reject(struct ws_conn *c, int http_status)
{
    struct ws_busy *b = c->busy;
    uint64_t linger_ms = c->ws->cfg.handshake_timeout_ms;
    char out[512];
    size_t n = ws_handshake_reject(out, sizeof(out), http_status);

    if (n == 0) {
        n = ws_handshake_reject(out, sizeof(out), 500);
    }
    if (n > 0) {
        (void)send(c->fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    c->state = WS_ST_DEAD;
    if (b == NULL || b->timer == NULL || shutdown(c->fd, SHUT_WR) != 0) {
        return;
    }
    free(b->in);
    b->in = NULL;
    b->in_len = 0;
    b->in_cap = 0;
    if (linger_ms > WS_REFUSED_LINGER_MS) {
        linger_ms = WS_REFUSED_LINGER_MS;
    }
    c->ws->host->timer_arm(b->timer, linger_ms);
    c->state = WS_ST_REFUSED;
}

/* ws_conn_drain reads and drops what a refused peer still sends. */
static void
ws_conn_drain(struct ws_conn *c)
{
    uint8_t buf[4096];
    ssize_t n;

    /* Bounded per readiness; the deadline bounds the whole. */
    for (int i = 0; i < 16; i++) {
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        c->state = WS_ST_DEAD;
        return;
    }
}

static int
ws_conn_status_of(torpor_err err)
{
    switch (err) {
    case TORPOR_ENOENT:
        return 404;
    case TORPOR_EINVAL:
        return 400;
    case TORPOR_EREFUSED:
        return 403;
    case TORPOR_ELIMIT:
    case TORPOR_ECLOSED:
        return 503;
    default:
        return 500;
    }
}

static int
ws_hex(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* ws_conn_decode percent-decodes s[0..len) in place; false on a bad %xx. */
static bool
ws_conn_decode(char *s, size_t len, size_t *out_len)
{
    size_t j = 0;

    for (size_t i = 0; i < len; i++) {
        int hi;
        int lo;

        if (s[i] != '%') {
            s[j++] = s[i];
            continue;
        }
        if (len - i < 3) {
            return false;
        }
        hi = ws_hex(s[i + 1]);
        lo = ws_hex(s[i + 2]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        s[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    *out_len = j;
    return true;
}

/*
 * ws_conn_route splits "/ROUTE/NAME" and decodes NAME in place, within the
 * handshake buffer that c owns.  Returns 0 or the HTTP status to answer.
 */
static int
ws_conn_route(struct ws_conn *c, const struct ws_hs_request *hs,
              torpor_attach_req *req)
{
    const char *path;
    const char *query;
    const char *slash;
    size_t path_len;
    size_t query_len;
    size_t route_len;
    size_t name_len;
    char *name;

    if (!ws_target_split(hs->target, hs->target_len, &path, &path_len, &query,
                         &query_len)) {
        return 400;
    }
    /* path starts with '/', as ws_target_split checked. */
    slash = memchr(path + 1, '/', path_len - 1);
    if (slash == NULL) {
        return 404;
    }
    route_len = (size_t)(slash - path) - 1;
    name_len = path_len - route_len - 2;
    if (route_len == 0 || name_len == 0
        || memchr(slash + 1, '/', name_len) != NULL) {
        return 404;
    }
    /* The request lies in c's own buffer, so it may be rewritten. */
    name = (char *)c->busy->in + (slash + 1 - (const char *)c->busy->in);
    if (!ws_conn_decode(name, name_len, &name_len) || name_len == 0) {
        return 400;
    }
    req->size = sizeof(*req);
    req->route.data = path + 1;
    req->route.len = route_len;
    req->name.data = name;
    req->name.len = name_len;
    req->query.data = query != NULL ? query : "";
    req->query.len = query != NULL ? query_len : 0;
    return 0;
}

/*
 * ws_conn_arrive opens c on its object's loop: tells the core, then parses
 * what the client pipelined after its request.
 */
static void
ws_conn_arrive(struct ws_conn *c)
{
    struct ws_busy *b;
    uint8_t *in;
    size_t len;

    if ((c->flags & WS_F_FAILED) != 0) {
        return;
    }
    /* A close op may have come first; then the client never opened. */
    if (c->state == WS_ST_MOVING) {
        c->state = WS_ST_OPEN;
        c->ws->host->conn_opened(c->conn);
    }
    b = c->busy;
    if (b == NULL || b->in == NULL) {
        return;
    }
    in = b->in;
    len = b->in_len;
    b->in = NULL;
    b->in_len = 0;
    b->in_cap = 0;
    ws_read_feed(c, in, len);
    free(in);
}

/*
 * ws_conn_upgrade attaches c to the object its request names and answers
 * 101.  Returns false when c has been handed to another loop, after which
 * this thread must not touch it.
 */
static bool
ws_conn_upgrade(struct ws_conn *c, const struct ws_hs_request *hs,
                size_t consumed)
{
    struct ws_state *ws = c->ws;
    const struct torpor_host *host = ws->host;
    struct ws_busy *b = c->busy;
    char peer[WS_ADDR_STRLEN];
    char resp[256];
    torpor_attach_req req;
    torpor_conn *conn = NULL;
    torpor_loop *loop = NULL;
    torpor_io *io;
    size_t resp_len;
    int status;
    torpor_err err;

    ws_conn_peer(c, peer);
    memset(&req, 0, sizeof(req));
    status = ws_conn_route(c, hs, &req);
    if (status != 0) {
        WS_LOG(ws, TORPOR_LOG_DEBUG, NULL,
               "could not route \"%.*s\" of \"%s\": %d", (int)hs->target_len,
               hs->target, peer, status);
        ws_conn_reject(c, status);
        return true;
    }
    /* Before attaching, so a failure here needs no detach. */
    resp_len = ws_handshake_accept(resp, sizeof(resp), hs->key, hs->key_len,
                                   NULL, NULL);
    if (resp_len == 0) {
        WS_LOG(ws, TORPOR_LOG_ERR, NULL,
               "could not compute the accept key for \"%s\"", peer);
        ws_conn_reject(c, 500);
        return true;
    }
    req.peer = peer;
    status = 0;
    err = host->conn_attach(ws->self, &req, c, &conn, &loop, &status);
    if (err != TORPOR_OK) {
        /* The core decided and logs what it must; this is the detail. */
        WS_LOG(ws, TORPOR_LOG_DEBUG, NULL,
               "could not attach \"%s\" to \"%.*s\": %s", peer,
               (int)hs->target_len, hs->target, host->strerror(err));
        ws_conn_reject(c, status != 0 ? status : ws_conn_status_of(err));
        return true;
    }
    c->conn = conn;
    c->state = WS_ST_MOVING;
    host->timer_close(b->timer);
    b->timer = NULL;

    /* Keep only the bytes pipelined after the request. */
    b->in_len -= consumed;
    memmove(b->in, b->in + consumed, b->in_len);
    if (b->in_len == 0) {
        free(b->in);
        b->in = NULL;
        b->in_cap = 0;
    }
    /* A failure marks c failed; it is dropped on its own loop below. */
    (void)ws_write_raw(c, resp, resp_len);

    if (loop == NULL || loop == c->loop) {
        ws_conn_arrive(c);
        return true;
    }

    /*
     * The rest happens on the object's loop: the io reopens there watching
     * writes, which a fresh socket has at once, and its first callback
     * takes the record over (ws_conn_on_io).  From io_open on, this thread
     * must not touch c, so the handle goes to a local.
     */
    host->io_close(c->io);
    c->io = NULL;
    c->flags &= (uint8_t) ~(WS_F_WATCH_READ | WS_F_WATCH_WRITE);
    c->loop = loop;
    err = host->io_open(loop, c->fd, TORPOR_IO_WRITE, ws_conn_on_io, c, &io);
    if (err != TORPOR_OK) {
        /* Missing: this report reaches the core from the main loop, not the object's, when moving the io fails. */
        WS_LOG(ws, TORPOR_LOG_ERR, conn,
               "could not move connection to its loop: %s",
               host->strerror(err));
        c->flags |= WS_F_FAILED;
        return true;
    }
    return false;
}

/* ws_conn_handshake reads the request; false once c left this loop. */
static bool
ws_conn_handshake(struct ws_conn *c)
{
    struct ws_state *ws = c->ws;
    struct ws_busy *b = c->busy;
    size_t max = ws->cfg.max_handshake_bytes;
    struct ws_hs_request hs;
    char peer[WS_ADDR_STRLEN];
    size_t consumed = 0;
    int status = 0;
    ssize_t n;

    if (b->in_len == b->in_cap) {
        size_t cap = b->in_cap == 0 ? WS_HANDSHAKE_FIRST_BYTES : b->in_cap * 2;
        uint8_t *p;

        if (cap > max) {
            cap = max;
        }
        if (cap <= b->in_len) {
            /* The parser answers 431 before this; kept as a backstop. */
            ws_conn_reject(c, 431);
            return true;
        }
        p = realloc(b->in, cap);
        if (p == NULL) {
            ws_conn_reject(c, 503);
            return true;
        }
        b->in = p;
        b->in_cap = cap;
    }
    n = recv(c->fd, b->in + b->in_len, b->in_cap - b->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return true;
    }
    if (n <= 0) {
        c->state = WS_ST_DEAD;
        return true;
    }
    b->in_len += (size_t)n;

    switch (ws_handshake_parse((const char *)b->in, b->in_len, max, &hs,
                               &status, &consumed)) {
    case WS_HS_MORE:
        return true;
    case WS_HS_OK:
        return ws_conn_upgrade(c, &hs, consumed);
    case WS_HS_ERROR:
    default:
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                   "could not upgrade \"%s\": bad request, answered %d", peer,
                   status);
        }
        ws_conn_reject(c, status);
        return true;
    }
}

/* ---- callbacks ---- */

static void
ws_conn_on_io(torpor_io *io, int fd, unsigned events, void *arg)
{
    struct ws_conn *c = arg;

    if (c->io == NULL) {
        /* First readiness on the object's loop: the record is ours now. */
        c->io = io;
        c->flags |= WS_F_WATCH_WRITE;
        ws_conn_arrive(c);
        ws_conn_settle(c);
        return;
    }
    if ((c->flags & WS_F_FAILED) != 0) {
        ws_conn_settle(c);
        return;
    }
    switch (c->state) {
    case WS_ST_HANDSHAKE:
        if (!ws_conn_handshake(c)) {
            return;
        }
        break;
    case WS_ST_REFUSED:
        ws_conn_drain(c);
        break;
    case WS_ST_OPEN:
    case WS_ST_CLOSING:
        if ((events & TORPOR_IO_WRITE) != 0) {
            ws_write_flush(c);
        }
        if ((events & TORPOR_IO_READ) != 0 && (c->flags & WS_F_FAILED) == 0
            && (c->state == WS_ST_OPEN || c->state == WS_ST_CLOSING)) {
            ws_read_ready(c);
        }
        break;
    case WS_ST_FLUSHING:
        ws_write_flush(c);
        break;
    default:
        break;
    }
    ws_conn_settle(c);
}

static void
ws_conn_on_timer(torpor_timer *timer, void *arg)
{
    struct ws_conn *c = arg;
    struct ws_state *ws = c->ws;
    char peer[WS_ADDR_STRLEN];

    if (c->io == NULL) {
        /*
         * The io has not reached this loop yet and its first callback owns
         * the record; decide once it has.
         */
        ws->host->timer_arm(timer, WS_DEADLINE_RETRY_MS);
        return;
    }
    switch (c->state) {
    case WS_ST_HANDSHAKE:
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                   "could not upgrade \"%s\": no complete request within "
                   "%llu ms",
                   peer, (unsigned long long)ws->cfg.handshake_timeout_ms);
        }
        c->state = WS_ST_DEAD;
        break;
    case WS_ST_REFUSED:
        c->state = WS_ST_DEAD;
        break;
    case WS_ST_CLOSING:
        WS_LOG(ws, TORPOR_LOG_DEBUG, c->conn,
               "no close frame from peer within %llu ms",
               (unsigned long long)ws->cfg.close_timeout_ms);
        c->flags |= WS_F_FAILED;
        break;
    case WS_ST_FLUSHING:
        WS_LOG(ws, TORPOR_LOG_DEBUG, NULL,
               "could not flush output of closed connection within %llu ms",
               (unsigned long long)ws->cfg.close_timeout_ms);
        c->state = WS_ST_DEAD;
        break;
    default:
        break;
    }
    ws_conn_settle(c);
}

/* ---- entry points ---- */

torpor_err
ws_conn_accept(struct ws_state *ws, int fd)
{
    const struct torpor_host *host = ws->host;
    struct ws_conn *c = calloc(1, sizeof(*c));
    struct ws_busy *b = calloc(1, sizeof(*b));
    torpor_err err;

    if (c == NULL || b == NULL) {
        err = TORPOR_ENOMEM;
        goto fail;
    }
    c->ws = ws;
    c->loop = host->loop_main(ws->self);
    c->fd = fd;
    c->state = WS_ST_HANDSHAKE;
    c->busy = b;
    err = host->timer_open(c->loop, ws_conn_on_timer, c, &b->timer);
    if (err != TORPOR_OK) {
        b->timer = NULL;
        goto fail;
    }
    err = host->io_open(c->loop, fd, TORPOR_IO_READ, ws_conn_on_io, c, &c->io);
    if (err != TORPOR_OK) {
        c->io = NULL;
        goto fail;
    }
    c->flags = WS_F_WATCH_READ;
    err = ws_registry_add(ws, c);
    if (err != TORPOR_OK) {
        goto fail;
    }
    host->timer_arm(b->timer, ws->cfg.handshake_timeout_ms);
    return TORPOR_OK;

fail:
    if (ws_warn_allowed(ws)) {
        WS_LOG(ws, TORPOR_LOG_WARN, NULL, "could not accept connection: %s",
               host->strerror(err));
    }
    if (c != NULL && c->io != NULL) {
        host->io_close(c->io);
    }
    if (b != NULL && b->timer != NULL) {
        host->timer_close(b->timer);
    }
    free(b);
    free(c);
    return err;
}

/*
 * ws_conn_reason_len is the longest prefix of reason, at most 123 bytes,
 * that is whole UTF-8: a cut character or a bad byte would make the peer
 * fail the connection with 1007 instead of reading our close.
 */
static size_t
ws_conn_reason_len(const char *reason, size_t len)
{
    struct ws_utf8 v;
    size_t good = 0;

    if (len > WS_CLOSE_REASON_MAX) {
        len = WS_CLOSE_REASON_MAX;
    }
    ws_utf8_init(&v);
    for (size_t i = 0; i < len; i++) {
        if (!ws_utf8_feed(&v, (const uint8_t *)reason + i, 1)) {
            break;
        }
        if (ws_utf8_complete(&v)) {
            good = i + 1;
        }
    }
    return good;
}

void
ws_conn_start_close(struct ws_conn *c, uint16_t code, const char *reason,
                    size_t reason_len)
{
    uint8_t payload[WS_CONTROL_PAYLOAD_MAX];
    size_t len = 0;

    c->state = WS_ST_CLOSING;
    c->close_code = code;
    if (c->busy != NULL) {
        ws_read_drop_message(c->busy);
    }
    if (code != TORPOR_CLOSE_NO_STATUS) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        len = 2;
        if (reason != NULL) {
            reason_len = ws_conn_reason_len(reason, reason_len);
            memcpy(payload + 2, reason, reason_len);
            len += reason_len;
        }
    }
    if (ws_write_control(c, WS_OP_CLOSE, payload, len) != TORPOR_OK) {
        return;
    }
    if (!ws_conn_deadline(c, c->ws->cfg.close_timeout_ms)) {
        ws_conn_fail(c);
    }
}

void
ws_conn_closed(struct ws_conn *c, uint16_t code, const char *reason,
               size_t reason_len)
{
    /* Closed before the report, so ops called meanwhile see it closed. */
    c->state = WS_ST_FLUSHING;
    ws_conn_report(c, code, reason, reason_len, true);
    /* Waiting for our last bytes is bounded like the handshake itself. */
    if (!ws_write_pending(c)
        || !ws_conn_deadline(c, c->ws->cfg.close_timeout_ms)) {
        c->state = WS_ST_DEAD;
    }
}

torpor_err
ws_conn_op_close(void *tconn, uint16_t code, const char *reason,
                 size_t reason_len)
{
    struct ws_conn *c = tconn;

    if (c->state == WS_ST_HANDSHAKE || c->state == WS_ST_REFUSED) {
        return TORPOR_ESTATE;
    }
    if ((c->state != WS_ST_OPEN && c->state != WS_ST_MOVING)
        || (c->flags & WS_F_FAILED) != 0) {
        return TORPOR_ECLOSED;
    }
    if (code != TORPOR_CLOSE_NO_STATUS && !ws_close_code_valid(code)) {
        return TORPOR_EINVAL;
    }
    ws_conn_start_close(c, code, reason, reason_len);
    ws_conn_watch(c);
    return TORPOR_OK;
}

void
ws_conn_stop_handshakes(struct ws_state *ws)
{
    torpor_loop *loop_main = ws->host->loop_main(ws->self);

    pthread_mutex_lock(&ws->lock);
    /* Downwards, so the swap of a removal brings in a visited entry. */
    for (uint32_t i = ws->n_conns; i > 0; i--) {
        struct ws_conn *c = ws->conns[i - 1];

        /*
         * Only records on the main loop may be read from this thread, and
         * every handshake is one of them; loop itself is only ever written
         * on the main loop.
         */
        if (c->loop != loop_main
            || (c->state != WS_ST_HANDSHAKE && c->state != WS_ST_REFUSED)) {
            continue;
        }
        ws_registry_remove_locked(ws, c);
        ws_conn_release(c);
    }
    pthread_mutex_unlock(&ws->lock);
}

void
ws_conn_destroy_all(struct ws_state *ws)
{
    pthread_mutex_lock(&ws->lock);
    while (ws->n_conns > 0) {
        struct ws_conn *c = ws->conns[ws->n_conns - 1];

        ws_registry_remove_locked(ws, c);
        ws_conn_release(c);
    }
    pthread_mutex_unlock(&ws->lock);
}
