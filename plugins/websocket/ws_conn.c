/*
 * The life of a connection: its record, watch and deadline callbacks, the
 * close handshake and teardown.  The opening handshake is in ws_upgrade.c.
 *
 * Re-entrancy: host calls made from here (conn_opened, conn_received) may
 * call back into the transport ops for the same connection.  Ops never free
 * a connection; they only change its state or mark it failed.  A record is
 * freed only at the end of one of its own watch, timer or move callbacks,
 * in ws_conn_settle, when no host call for it is on the stack.
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
 * counted in ws.h and docs/architecture.md.  Growing it past 24 bytes
 * costs every idle connection 8 more.
 */
_Static_assert(sizeof(void *) != 8 || sizeof(struct ws_conn) <= 24,
               "struct ws_conn outgrew 24 bytes");

/* ---- connections in their handshake ---- */

static void
ws_hs_link(struct ws_state *ws, struct ws_hs_conn *h)
{
    h->prev = NULL;
    h->next = ws->handshakes;
    if (ws->handshakes != NULL) {
        ws->handshakes->prev = h;
    } else {
        ws->handshakes_oldest = h;
    }
    ws->handshakes = h;
    ws->n_handshakes++;
}

void
ws_conn_hs_forget(struct ws_conn *c)
{
    struct ws_hs_conn *h = (struct ws_hs_conn *)c;
    struct ws_state *ws = ws_of(c);

    if (h->prev != NULL) {
        h->prev->next = h->next;
    } else {
        ws->handshakes = h->next;
    }
    if (h->next != NULL) {
        h->next->prev = h->prev;
    } else {
        ws->handshakes_oldest = h->prev;
    }
    ws->n_handshakes--;
    free(h);
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

torpor_loop *
ws_loop(const struct ws_conn *c)
{
    const struct ws_state *ws = ws_of(c);

    return (c->flags & WS_F_CORE) != 0 ? ws->host->conn_loop(ws_handle(c))
                                       : ws->host->loop_main(ws->self);
}

/*
 * ws_conn_drop_parts frees what c holds: its watch, busy record, stream
 * and socket, and its place in the per-address counts.
 */
static void
ws_conn_drop_parts(struct ws_conn *c)
{
    struct ws_state *ws = ws_of(c);
    const struct torpor_host *host = ws->host;
    struct ws_busy *b = c->busy;

    if ((c->flags & (WS_F_WATCH_READ | WS_F_WATCH_WRITE)) != 0) {
        host->watch_del(ws_loop(c), c->fd, c);
        c->flags &= (uint16_t) ~(WS_F_WATCH_READ | WS_F_WATCH_WRITE);
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
        c->busy = NULL;
    }
    ws_cork_forget(c);
    if (c->fd >= 0) {
        /* Both by descriptor: given back before the number can be reused. */
        ws_io_end(c);
        ws_peer_forget(ws, c->fd);
        close(c->fd);
        c->fd = -1;
    }
}

/* ws_conn_free frees c: the core's record goes back to the core. */
static void
ws_conn_free(struct ws_conn *c)
{
    ws_conn_drop_parts(c);
    if ((c->flags & WS_F_CORE) != 0) {
        ws_of(c)->host->conn_release(ws_handle(c));
    } else {
        ws_conn_hs_forget(c);
    }
}

void
ws_conn_op_discard(void *tconn)
{
    ws_conn_drop_parts(tconn);
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
 * ws_conn_report tells the core that c is gone, once: afterwards ws_core(c)
 * is NULL and nothing here calls the host with that handle again.
 */
static void
ws_conn_report(struct ws_conn *c, uint16_t code, const char *reason,
               size_t reason_len, bool clean)
{
    torpor_conn *conn = ws_core(c);

    if (conn == NULL) {
        return;
    }
    c->flags |= WS_F_REPORTED;
    ws_of(c)->host->conn_closed(conn, code, reason, reason_len, clean);
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

    if ((c->flags & (WS_F_ARRIVING | WS_F_FAILED)) != 0
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
    if (ws_of(c)->host->watch_set(ws_loop(c), c->fd, want, ws_conn_on_ready,
                                  c)
        != TORPOR_OK) {
        ws_conn_fail(c);
        return;
    }
    c->flags &= (uint16_t) ~(WS_F_WATCH_READ | WS_F_WATCH_WRITE);
    if ((want & TORPOR_IO_READ) != 0) {
        c->flags |= WS_F_WATCH_READ;
    }
    if ((want & TORPOR_IO_WRITE) != 0) {
        c->flags |= WS_F_WATCH_WRITE;
    }
}

void
ws_conn_settle(struct ws_conn *c)
{
    if ((c->flags & WS_F_FAILED) != 0 || c->state == WS_ST_DEAD) {
        if (ws_core(c) != NULL) {
            WS_LOG(ws_of(c), TORPOR_LOG_DEBUG, ws_core(c),
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
    const struct torpor_host *host = ws_of(c)->host;
    struct ws_busy *b = ws_conn_busy(c);

    if (b == NULL) {
        return false;
    }
    if (b->timer == NULL
        && host->timer_open(ws_loop(c), ws_conn_on_timer, c, &b->timer)
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

void
ws_conn_read_held(struct ws_conn *c)
{
    while (ws_io_pending(c) && (c->flags & WS_F_FAILED) == 0
           && (c->state == WS_ST_OPEN || c->state == WS_ST_CLOSING)) {
        ws_read_ready(c);
    }
}

/* ---- callbacks ---- */

void
ws_conn_on_ready(void *arg, unsigned events)
{
    struct ws_conn *c = arg;

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
    struct ws_state *ws = ws_of(c);
    char peer[WS_ADDR_STRLEN];

    if ((c->flags & WS_F_ARRIVING) != 0) {
        /*
         * The record has not reached this loop yet and its move owns it;
         * decide once it has.
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
        WS_LOG(ws, TORPOR_LOG_DEBUG, ws_core(c),
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
    torpor_loop *loop = host->loop_main(ws->self);
    struct ws_hs_conn *h = calloc(1, sizeof(*h));
    struct ws_busy *b = calloc(1, sizeof(*b));
    struct ws_conn *c = &h->c;
    torpor_err err;

    if (h == NULL || b == NULL) {
        err = TORPOR_ENOMEM;
        goto fail;
    }
    c->fd = fd;
    c->state = WS_ST_HANDSHAKE;
    c->busy = b;
    err = ws_io_begin(c, tls);
    if (err != TORPOR_OK) {
        goto fail;
    }
    err = host->timer_open(loop, ws_conn_on_timer, c, &b->timer);
    if (err != TORPOR_OK) {
        b->timer = NULL;
        goto fail;
    }
    err = host->watch_add(loop, fd, TORPOR_IO_READ, ws_conn_on_ready, c);
    if (err != TORPOR_OK) {
        goto fail;
    }
    c->flags |= WS_F_WATCH_READ;
    ws_hs_link(ws, h);
    host->timer_arm(b->timer, ws->cfg.handshake_timeout_ms);
    return TORPOR_OK;

fail:
    if (ws_warn_allowed(ws)) {
        WS_LOG(ws, TORPOR_LOG_WARN, NULL, "could not accept connection: %s",
               host->strerror(err));
    }
    if (b != NULL && b->timer != NULL) {
        host->timer_close(b->timer);
    }
    if (h != NULL) {
        ws_io_end(c); /* the socket is still the caller's */
    }
    free(b);
    free(h);
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
    if (!ws_conn_deadline(c, ws_of(c)->cfg.close_timeout_ms)) {
        ws_conn_fail(c);
    }
}

void
ws_conn_closed(struct ws_conn *c, uint16_t code, const char *reason,
               size_t reason_len)
{
    /* What this pass holds for c goes before the report, like any write. */
    ws_cork_release(c);
    /* Closed before the report, so ops called meanwhile see it closed. */
    c->state = WS_ST_FLUSHING;
    ws_conn_report(c, code, reason, reason_len, true);
    /* Our last bytes get close_timeout_ms to drain, as the peer's close. */
    if (!ws_write_pending(c)
        || !ws_conn_deadline(c, ws_of(c)->cfg.close_timeout_ms)) {
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
    /* A close asked for while c moves (a shutdown during its upgrade). */
    if (c->state == WS_ST_MOVING) {
        ws_upgrade_answer(c);
    }
    ws_conn_start_close(c, code, reason, reason_len);
    ws_conn_watch(c);
    return TORPOR_OK;
}

void
ws_conn_evict_oldest_handshake(struct ws_state *ws)
{
    struct ws_hs_conn *h = ws->handshakes_oldest;
    char peer[WS_ADDR_STRLEN];

    if (h == NULL) {
        return;
    }
    WS_COUNT(ws, handshakes_evicted);
    if (ws_warn_allowed(ws)) {
        ws_conn_peer(&h->c, peer);
        WS_LOG(
            ws, TORPOR_LOG_WARN, NULL,
            "could not keep \"%s\" in its handshake: %u connections are in theirs, max_handshakes; closed the oldest",
            peer, ws->n_handshakes);
    }
    ws_conn_free(&h->c);
}

void
ws_conn_stop_handshakes(struct ws_state *ws)
{
    while (ws->handshakes != NULL) {
        ws_conn_free(&ws->handshakes->c);
    }
}

void
ws_conn_destroy_all(struct ws_state *ws)
{
    ws_conn_stop_handshakes(ws);
}
