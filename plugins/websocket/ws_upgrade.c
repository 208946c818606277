/*
 * The opening handshake (RFC 6455 section 4.2), on the main loop: reading
 * the upgrade request, routing it, attaching to the core, answering, and
 * handing the connection to its object's loop.
 */
#include "ws.h"
#include "ws_handshake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* First size of the handshake buffer; it doubles up to the limit. */
#define WS_HANDSHAKE_FIRST_BYTES 1024

/*
 * ws_upgrade_refuse answers the upgrade request with an HTTP error, with
 * Retry-After unless retry_after_s is 0, and shuts our side down.  The
 * answer is tiny and the socket fresh, so one send is enough; if it does
 * not fit, the peer sees the connection close, which is all a refused
 * client can act on anyway.  c then drains what the peer still sends until
 * it hangs up, or for WS_REFUSED_LINGER_MS at most.
 */
static void
ws_upgrade_refuse(struct ws_conn *c, int http_status, const char *why,
                  uint32_t retry_after_s)
{
    struct ws_busy *b = c->busy;
    uint64_t linger_ms = ws_of(c)->cfg.handshake_timeout_ms;
    char out[512];
    size_t n = ws_handshake_reject_full(out, sizeof(out), http_status, why,
                                        retry_after_s);

    if (n == 0) {
        n = ws_handshake_reject(out, sizeof(out), 500);
    }
    if (n > 0) {
        (void)ws_io_send(c, out, n);
    }
    c->state = WS_ST_DEAD;
    if (b == NULL || b->timer == NULL || ws_io_shutdown(c) != 0) {
        return;
    }
    free(b->in);
    b->in = NULL;
    b->in_len = 0;
    b->in_cap = 0;
    if (linger_ms > WS_REFUSED_LINGER_MS) {
        linger_ms = WS_REFUSED_LINGER_MS;
    }
    ws_of(c)->host->timer_arm(b->timer, linger_ms);
    c->state = WS_ST_REFUSED;
}

static void
ws_upgrade_reject(struct ws_conn *c, int http_status)
{
    ws_upgrade_refuse(c, http_status, NULL, 0);
}

/*
 * ws_upgrade_extensions negotiates permessage-deflate for c, recording
 * what was agreed in c and the answer in response.  Returns false, after
 * refusing c with 400, for a malformed Sec-WebSocket-Extensions; *answer
 * is NULL when no extension is agreed.
 */
static bool
ws_upgrade_extensions(struct ws_conn *c, const struct ws_hs_request *hs,
                      const torpor_bytes *route,
                      char response[WS_DEFLATE_RESPONSE_MAX],
                      const char **answer)
{
    struct ws_deflate_line lines[WS_HS_EXTENSION_LINES_MAX];
    struct ws_deflate_params params;
    char peer[WS_ADDR_STRLEN];

    *answer = NULL;
    for (size_t i = 0; i < hs->n_extension_lines; i++) {
        lines[i].text = hs->extension_lines[i];
        lines[i].len = hs->extension_line_lens[i];
    }
    switch (ws_deflate_negotiate(ws_deflate_config_for(c), lines,
                                 hs->n_extension_lines, &params, response)) {
    case WS_DEFLATE_ACCEPTED:
        ws_deflate_conn_set(c, &params);
        *answer = response;
        return true;
    case WS_DEFLATE_MALFORMED:
        if (ws_warn_allowed(ws_of(c))) {
            ws_conn_peer(c, peer);
            WS_LOG(
                ws_of(c), TORPOR_LOG_WARN, NULL,
                "could not upgrade \"%s\": malformed Sec-WebSocket-Extensions, answered 400",
                peer);
        }
        ws_upgrade_refuse(c, 400, "malformed Sec-WebSocket-Extensions", 0);
        return false;
    case WS_DEFLATE_NONE:
    default:
        return true;
    }
}

void
ws_upgrade_drain(struct ws_conn *c)
{
    uint8_t buf[4096];
    ssize_t n;

    /* Bounded per readiness; the deadline bounds the whole. */
    for (int i = 0; i < 16; i++) {
        n = ws_io_recv(c, buf, sizeof(buf));
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
ws_upgrade_status_of(torpor_err err)
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

/* ws_upgrade_decode percent-decodes s[0..len) in place; false on a bad %xx. */
static bool
ws_upgrade_decode(char *s, size_t len, size_t *out_len)
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
 * ws_upgrade_route splits "/ROUTE/NAME" and decodes NAME in place, within the
 * handshake buffer that c owns.  Returns 0 or the HTTP status to answer.
 */
static int
ws_upgrade_route(struct ws_conn *c, const struct ws_hs_request *hs,
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
    if (!ws_upgrade_decode(name, name_len, &name_len) || name_len == 0) {
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

void
ws_upgrade_answer(struct ws_conn *c)
{
    struct ws_busy *b = c->busy;

    if (b != NULL && b->upgrade_resp != NULL) {
        (void)ws_write_raw(c, b->upgrade_resp, b->upgrade_resp_len);
        free(b->upgrade_resp);
        b->upgrade_resp = NULL;
    }
}

/*
 * ws_upgrade_arrive opens c on its object's loop: answers 101, tells the
 * core, then parses what the client pipelined after its request.
 */
static void
ws_upgrade_arrive(struct ws_conn *c)
{
    struct ws_busy *b;
    uint8_t *in;
    size_t len;

    if ((c->flags & WS_F_FAILED) != 0) {
        return;
    }
    ws_keepalive_arrive(c);
    /*
     * The 101 goes out here, on the object's loop, right before the open:
     * a client that holds its 101 is in the room, so a message another
     * client sends after that can never reach the room before it.
     */
    ws_upgrade_answer(c);
    /* A close op may have come first; then the client never opened. */
    if (c->state == WS_ST_MOVING && (c->flags & WS_F_FAILED) == 0) {
        c->state = WS_ST_OPEN;
        ws_of(c)->host->conn_opened(ws_core(c));
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
 * ws_upgrade_move runs on the object's loop, posted by the attach: the
 * record is first watched here, so that it is only ever touched on this
 * loop from now on, its failures reported included.
 */
static void
ws_upgrade_move(torpor_task *task)
{
    struct ws_conn *c = ((struct ws_move *)task)->c;
    struct ws_state *ws = ws_of(c);
    torpor_err err;

    c->flags &= (uint16_t)~WS_F_ARRIVING;
    err = ws->host->watch_add(ws_loop(c), c->fd, TORPOR_IO_READ,
                              ws_conn_on_ready, c);
    if (err == TORPOR_OK) {
        c->flags |= WS_F_WATCH_READ;
    } else {
        WS_LOG(ws, TORPOR_LOG_ERR, ws_core(c),
               "could not watch connection on its loop: %s",
               ws->host->strerror(err));
        ws_conn_fail(c);
    }
    ws_upgrade_arrive(c);
    ws_conn_read_held(c);
    ws_conn_settle(c);
}

/*
 * ws_upgrade_attach attaches c to the object its request names.  The core
 * keeps a copy of c, which takes over its socket and busy record and is
 * posted to its object's loop, where it answers 101; c itself is freed.
 * Returns false then, true when c was refused and stays.
 */
static bool
ws_upgrade_attach(struct ws_conn *c, const struct ws_hs_request *hs,
                  size_t consumed)
{
    struct ws_state *ws = ws_of(c);
    const struct torpor_host *host = ws->host;
    struct ws_busy *b = c->busy;
    char peer[WS_ADDR_STRLEN];
    char resp[512];
    char ext_resp[WS_DEFLATE_RESPONSE_MAX];
    const char *ext_answer;
    torpor_attach_req req;
    torpor_conn *conn = NULL;
    torpor_loop *loop = NULL;
    const struct ws_route_opts *opts;
    const char *subprotocol;
    uint32_t retry_after_s;
    size_t resp_len;
    uint16_t hs_flags;
    int status;
    torpor_err err;

    ws_conn_peer(c, peer);
    memset(&req, 0, sizeof(req));
    status = ws_upgrade_route(c, hs, &req);
    if (status != 0) {
        WS_LOG(ws, TORPOR_LOG_DEBUG, NULL,
               "could not route \"%.*s\" of \"%s\": %d", (int)hs->target_len,
               hs->target, peer, status);
        ws_upgrade_reject(c, status);
        return true;
    }
    opts = ws_route_opts_for(ws, &req.route);
    c->route = opts->index;
    status = ws_admit_request(c, opts, hs, &subprotocol, &retry_after_s);
    if (status != 0) {
        ws_upgrade_refuse(c, status, NULL, retry_after_s);
        return true;
    }
    if (subprotocol != NULL) {
        req.subprotocol.data = subprotocol;
        req.subprotocol.len = strlen(subprotocol);
    }
    if (!ws_upgrade_extensions(c, hs, &req.route, ext_resp, &ext_answer)) {
        return true;
    }
    /* Before attaching, so that nothing can fail after it. */
    resp_len = ws_handshake_accept(resp, sizeof(resp), hs->key, hs->key_len,
                                   subprotocol, ext_answer);
    if (resp_len == 0) {
        WS_LOG(ws, TORPOR_LOG_ERR, NULL,
               "could not compute the accept key for \"%s\"", peer);
        ws_upgrade_reject(c, 500);
        return true;
    }
    b->upgrade_resp = malloc(resp_len);
    if (b->upgrade_resp == NULL) {
        ws_upgrade_reject(c, 503);
        return true;
    }
    memcpy(b->upgrade_resp, resp, resp_len);
    b->upgrade_resp_len = resp_len;
    req.peer = peer;
    status = 0;
    /*
     * The copy the core makes reads as attached and on its way, but still
     * in its handshake, so that a class closing it from its accept handler
     * is told TORPOR_ESTATE, as before the copy.
     */
    hs_flags = c->flags;
    c->flags = (uint16_t)((hs_flags & ~(WS_F_WATCH_READ | WS_F_WATCH_WRITE))
                          | WS_F_CORE | WS_F_ARRIVING);
    err = host->conn_attach(ws->self, &req, c, &conn, &loop, &status);
    c->flags = hs_flags;
    if (err != TORPOR_OK) {
        /* The core decided and logs what it must; this is the detail. */
        WS_LOG(ws, TORPOR_LOG_DEBUG, NULL,
               "could not attach \"%s\" to \"%.*s\": %s", peer,
               (int)hs->target_len, hs->target, host->strerror(err));
        free(b->upgrade_resp);
        b->upgrade_resp = NULL;
        ws_upgrade_reject(c, status != 0 ? status : ws_upgrade_status_of(err));
        return true;
    }
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

    /*
     * The socket and b are the copy's now.  It is watched nowhere until
     * its move runs on its loop, which is where the rest happens; from
     * the post on, this thread must not touch it.
     */
    host->watch_del(host->loop_main(ws->self), c->fd, c);
    c->flags &= (uint16_t) ~(WS_F_WATCH_READ | WS_F_WATCH_WRITE);
    c->fd = -1;
    c->busy = NULL;
    ws_conn_hs_forget(c);
    ws_conn_of(conn)->state = WS_ST_MOVING;
    b->move.c = ws_conn_of(conn);
    b->move.task.run = ws_upgrade_move;
    host->loop_post(loop, &b->move.task);
    return false;
}

bool
ws_upgrade_read(struct ws_conn *c)
{
    struct ws_state *ws = ws_of(c);
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
            ws_upgrade_reject(c, 431);
            return true;
        }
        p = realloc(b->in, cap);
        if (p == NULL) {
            ws_upgrade_reject(c, 503);
            return true;
        }
        b->in = p;
        b->in_cap = cap;
    }
    n = ws_io_recv(c, b->in + b->in_len, b->in_cap - b->in_len);
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
        return ws_upgrade_attach(c, &hs, consumed);
    case WS_HS_ERROR:
    default:
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                   "could not upgrade \"%s\": bad request, answered %d", peer,
                   status);
        }
        ws_upgrade_reject(c, status);
        return true;
    }
}
