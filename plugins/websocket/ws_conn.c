/*
 * The life of a connection: its record, io and deadline callbacks, the
 * close handshake and teardown.  The opening handshake is in ws_upgrade.c.
 *
 * Re-entrancy: host calls made from here (conn_opened, conn_received) may
 * call back into the transport ops for the same connection.  Ops never free
 * a connection; they only change its state or mark it failed.  A record is
 * freed only at the end of one of its own io or timer callbacks, in
 * ws_conn_settle, when no host call for it is on the stack.
 */
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How soon a deadline looks again at a record not yet on its loop. */
#define WS_DEADLINE_RETRY_MS 10

static void ws_conn_on_timer(torpor_timer *timer, void *arg);

/*
 * An idle connection is this record and nothing else; what it holds is
 * counted in ws.h.  Growing it costs every idle connection.
 */
_Static_assert(sizeof(void *) != 8 || sizeof(struct ws_conn) <= 64,
               "struct ws_conn outgrew 64 bytes");

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
        free(b->upgrade_resp);
        ws_write_free(b);
        ws_deflate_busy_free(b);
        free(b);
    }
    ws_io_conn_free(c);
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
        || b->msg_op != 0 || b->in_frame || b->hdr_len != 0 || b->q_count != 0
        || b->upgrade_resp != NULL || b->zconn != NULL) {
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
    want = ws_io_watch(c, want);
    if ((c->flags & WS_F_WATCH_READ) != 0) {
        have |= TORPOR_IO_READ;
    }
    if ((c->flags & WS_F_WATCH_WRITE) != 0) {
        have |= TORPOR_IO_WRITE;
    }
    if (want == have || want == 0) {
        return;
    }
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

void
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

/*
 * ws_conn_read_held reads what TLS has already decrypted: no readiness of
 * the socket will announce it.  Each round takes some of it, or ends c.
 */
static void
ws_conn_read_held(struct ws_conn *c)
{
    while (ws_io_pending(c) && (c->flags & WS_F_FAILED) == 0
           && (c->state == WS_ST_OPEN || c->state == WS_ST_CLOSING)) {
        ws_read_ready(c);
    }
}

/* ---- callbacks ---- */

void
ws_conn_on_io(torpor_io *io, int fd, unsigned events, void *arg)
{
    struct ws_conn *c = arg;

    if (c->io == NULL) {
        /* First readiness on the object's loop: the record is ours now. */
        c->io = io;
        c->flags |= WS_F_WATCH_WRITE;
        ws_upgrade_arrive(c);
        ws_conn_read_held(c);
        ws_conn_settle(c);
        return;
    }
    if ((c->flags & WS_F_FAILED) != 0) {
        ws_conn_settle(c);
        return;
    }
    events = ws_io_ready(c, events);
    switch (c->state) {
    case WS_ST_HANDSHAKE:
        do {
            if (!ws_upgrade_read(c)) {
                return;
            }
        } while (c->state == WS_ST_HANDSHAKE && ws_io_pending(c));
        break;
    case WS_ST_REFUSED:
        ws_upgrade_drain(c);
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
    ws_conn_read_held(c);
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
        WS_COUNT(ws, handshake_timeouts);
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                   "could not upgrade \"%s\": no complete %s within %llu ms",
                   peer, ws_io_handshaking(c) ? "TLS handshake" : "request",
                   (unsigned long long)ws->cfg.handshake_timeout_ms);
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
ws_conn_accept(struct ws_state *ws, int fd, bool tls)
{
    const struct torpor_host *host = ws->host;
    struct ws_conn *c = NULL;
    struct ws_busy *b = calloc(1, sizeof(*b));
    torpor_err err;

    err = b != NULL ? ws_io_conn_new(ws, fd, tls, &c) : TORPOR_ENOMEM;
    if (err != TORPOR_OK) {
        c = NULL;
        goto fail;
    }
    c->loop = host->loop_main(ws->self);
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
    c->flags |= WS_F_WATCH_READ;
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
    if (c != NULL) {
        c->fd = -1; /* still the caller's */
        ws_io_conn_free(c);
    }
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
    /* Our last bytes get close_timeout_ms to drain, as the peer's close. */
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
    struct ws_loop_conns *l;

    pthread_mutex_lock(&ws->lock);
    /*
     * Only records on the main loop may be read from this thread, and
     * every handshake is one of them.
     */
    l = ws_registry_find_locked(ws, ws->host->loop_main(ws->self));
    /* Downwards, so the swap of a removal brings in a visited entry. */
    for (uint32_t i = l != NULL ? l->n : 0; i > 0; i--) {
        struct ws_conn *c = l->conns[i - 1];

        if (c->state != WS_ST_HANDSHAKE && c->state != WS_ST_REFUSED) {
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
    for (uint32_t i = 0; i < ws->n_loops; i++) {
        struct ws_loop_conns *l = ws->loops[i];

        while (l->n > 0) {
            struct ws_conn *c = l->conns[l->n - 1];

            ws_registry_remove_locked(ws, c);
            ws_conn_release(c);
        }
    }
    pthread_mutex_unlock(&ws->lock);
}
