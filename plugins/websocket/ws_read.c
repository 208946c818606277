/*
 * Input: frames parsed from one stack buffer per readiness.  A message
 * that lies whole in that buffer is unmasked in place and delivered from
 * it; only a header, frame or message that spans reads is copied into the
 * connection's in-progress record, which goes away when it completes.
 *
 * Everything here runs on the connection's loop, inside its watch callback,
 * and may call the host (conn_received, conn_closed).  Those calls can
 * come back into the ops for this connection, which may change its state
 * but never free it or its in-progress record; so c->busy is re-read after
 * every host call, and a message handed to the host is detached first.
 */
#include "ws.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* First size of a message buffer that must grow. */
#define WS_MSG_FIRST_BYTES 4096

static const uint8_t ws_empty[1];

/* ws_read_live tells whether input still means anything for c. */
static bool
ws_read_live(const struct ws_conn *c)
{
    return (c->flags & (WS_F_FAILED | WS_F_DISCARD)) == 0
           && (c->state == WS_ST_OPEN || c->state == WS_ST_CLOSING);
}

void
ws_read_drop_message(struct ws_busy *b)
{
    free(b->msg);
    b->msg = NULL;
    b->msg_len = 0;
    b->msg_cap = 0;
    b->msg_op = 0;
    b->msg_deflated = false;
}

/*
 * ws_read_violation fails the connection for a protocol error: it sends a
 * close frame with code and waits for the peer's.  When framing_lost, no
 * later byte can be parsed, the peer's close frame included, so the rest
 * of the input is discarded until the peer hangs up or the close deadline
 * passes.  what, if not NULL, is the warning's reason.
 */
static void
ws_read_violation(struct ws_conn *c, uint16_t code, bool framing_lost,
                  const char *what)
{
    if (framing_lost) {
        c->flags |= WS_F_DISCARD;
        if (c->busy != NULL) {
            c->busy->in_frame = false;
            c->busy->hdr_len = 0;
        }
    }
    /* Once closing, the peer already has our close frame. */
    if (c->state != WS_ST_OPEN) {
        return;
    }
    if (what != NULL && ws_warn_allowed(ws_of(c))) {
        WS_LOG(ws_of(c), TORPOR_LOG_WARN, ws_core(c),
               "could not read message: %s, closing with %u", what,
               (unsigned)code);
    }
    ws_conn_start_close(c, code, NULL, 0);
}

/* ws_read_close answers the peer's close frame at p[0..len). */
static void
ws_read_close(struct ws_conn *c, const uint8_t *p, size_t len)
{
    uint16_t code = TORPOR_CLOSE_NO_STATUS;
    const char *reason = NULL;
    size_t reason_len = 0;
    const char *bad = NULL;
    uint16_t bad_code = 0;
    uint8_t echo[2];

    if (len == 1) {
        bad = "close frame of 1 byte";
        bad_code = TORPOR_CLOSE_PROTOCOL;
    } else if (len >= 2) {
        struct ws_utf8 v;

        code = (uint16_t)(p[0] << 8 | p[1]);
        reason = (const char *)p + 2;
        reason_len = len - 2;
        ws_utf8_init(&v);
        if (!ws_close_code_valid(code)) {
            bad = "invalid close code";
            bad_code = TORPOR_CLOSE_PROTOCOL;
        } else if (!ws_utf8_feed(&v, (const uint8_t *)reason, reason_len)
                   || !ws_utf8_complete(&v)) {
            bad = "invalid utf-8 in close reason";
            bad_code = TORPOR_CLOSE_INVALID_DATA;
        }
    }

    if (c->state == WS_ST_CLOSING) {
        /* The answer to our close: even a malformed one ends the wait. */
        if (bad != NULL) {
            ws_conn_closed(c, c->close_code, NULL, 0);
        } else {
            ws_conn_closed(c, code, reason, reason_len);
        }
        return;
    }

    if (bad != NULL) {
        if (ws_warn_allowed(ws_of(c))) {
            WS_LOG(ws_of(c), TORPOR_LOG_WARN, ws_core(c),
                   "could not accept close frame: %s, closing with %u", bad,
                   (unsigned)bad_code);
        }
        echo[0] = (uint8_t)(bad_code >> 8);
        echo[1] = (uint8_t)bad_code;
        (void)ws_write_control(c, WS_OP_CLOSE, echo, sizeof(echo));
        ws_conn_closed(c, bad_code, NULL, 0);
        return;
    }
    echo[0] = (uint8_t)(code >> 8);
    echo[1] = (uint8_t)code;
    (void)ws_write_control(c, WS_OP_CLOSE, echo,
                           code == TORPOR_CLOSE_NO_STATUS ? 0 : 2);
    ws_conn_closed(c, code, reason, reason_len);
}

/* ws_read_control acts on a whole, unmasked control frame. */
static void
ws_read_control(struct ws_conn *c, uint8_t opcode, const uint8_t *p, size_t len)
{
    switch (opcode) {
    case WS_OP_PING:
        /* After our close frame nothing more may be sent. */
        if (c->state == WS_ST_OPEN) {
            (void)ws_write_control(c, WS_OP_PONG, p, len);
        }
        break;
    case WS_OP_PONG:
        /* Unsolicited pongs are a heartbeat (RFC 6455 5.5.3): ignored. */
        break;
    case WS_OP_CLOSE:
        ws_read_close(c, p, len);
        break;
    default:
        break;
    }
}

/*
 * ws_read_header parses the next frame header from data, completing one
 * cut by the previous read.  Returns 1 with *fh and *used set, 0 when the
 * header is still cut (its bytes are kept, *used is len), or -1 after a
 * violation or an allocation failure.
 */
static int
ws_read_header(struct ws_conn *c, const uint8_t *data, size_t len,
               struct ws_frame_header *fh, size_t *used)
{
    struct ws_busy *b = c->busy;
    uint16_t code = TORPOR_CLOSE_PROTOCOL;
    uint8_t rsv = (c->deflate & WS_DEFLATE_ON) != 0 ? WS_RSV1 : 0;
    enum ws_parse r;

    if (b != NULL && b->hdr_len > 0) {
        size_t take = sizeof(b->hdr) - b->hdr_len;

        if (take > len) {
            take = len;
        }
        memcpy(b->hdr + b->hdr_len, data, take);
        r = ws_frame_parse_header(b->hdr, b->hdr_len + take, rsv, fh, &code);
        if (r == WS_PARSE_OK) {
            *used = fh->header_len - b->hdr_len;
            b->hdr_len = 0;
            return 1;
        }
        if (r == WS_PARSE_MORE) {
            /* Fewer than 14 bytes in all, so take was all of data. */
            b->hdr_len = (uint8_t)(b->hdr_len + take);
            *used = take;
            return 0;
        }
    } else {
        r = ws_frame_parse_header(data, len, rsv, fh, &code);
        if (r == WS_PARSE_OK) {
            *used = fh->header_len;
            return 1;
        }
        if (r == WS_PARSE_MORE && len < sizeof(b->hdr)) {
            b = ws_conn_busy(c);
            if (b == NULL) {
                ws_conn_fail(c);
                return -1;
            }
            memcpy(b->hdr, data, len);
            b->hdr_len = (uint8_t)len;
            *used = len;
            return 0;
        }
    }
    ws_read_violation(c, code, true, "malformed frame header");
    return -1;
}

/*
 * ws_read_deflated_max is the most compressed bytes a message may take:
 * a little over the limit, since DEFLATE can grow data that does not
 * compress (by 5 bytes per 64 KiB stored block, and a few more).  The
 * limit on what it inflates to is the real one.
 */
static uint64_t
ws_read_deflated_max(size_t max_message_bytes)
{
    return (uint64_t)max_message_bytes + (max_message_bytes >> 10) + 64;
}

/*
 * ws_read_begin checks a data frame's place in the message sequence and
 * the message size limit, before any of its payload is buffered.
 */
static void
ws_read_begin(struct ws_conn *c, const struct ws_frame_header *fh)
{
    struct ws_state *ws = ws_of(c);
    const struct ws_busy *b = c->busy;
    bool open = b != NULL && b->msg_op != 0;
    bool deflated;
    uint64_t total;
    uint64_t limit;

    if (WS_DEBUG_ON(ws)) {
        WS_LOG(ws, TORPOR_LOG_DEBUG, ws_core(c),
               "received frame: opcode %u, %" PRIu64 " bytes%s",
               (unsigned)fh->opcode, fh->payload_len, fh->fin ? ", fin" : "");
    }
    /* RFC 7692 6: only a message's first frame says it is compressed. */
    if ((fh->rsv & WS_RSV1) != 0
        && (fh->opcode >= WS_OP_CLOSE || fh->opcode == WS_OP_CONT)) {
        ws_read_violation(c, TORPOR_CLOSE_PROTOCOL, false,
                          "rsv1 on a control or continuation frame");
        return;
    }
    if (fh->opcode >= WS_OP_CLOSE || c->state != WS_ST_OPEN) {
        return;
    }
    if (fh->opcode == WS_OP_CONT && !open) {
        ws_read_violation(c, TORPOR_CLOSE_PROTOCOL, false,
                          "continuation frame without a message");
        return;
    }
    if (fh->opcode != WS_OP_CONT && open) {
        ws_read_violation(c, TORPOR_CLOSE_PROTOCOL, false,
                          "new message inside a fragmented one");
        return;
    }
    /* payload_len is below 2^63 and msg_len below the limit: no wrap. */
    total = (open ? b->msg_len : 0) + fh->payload_len;
    deflated = open ? b->msg_deflated : (fh->rsv & WS_RSV1) != 0;
    limit = deflated ? ws_read_deflated_max(ws_conn_opts(c)->max_message_bytes)
                     : ws_conn_opts(c)->max_message_bytes;
    if (total > limit) {
        if (ws_warn_allowed(ws)) {
            WS_LOG(ws, TORPOR_LOG_WARN, ws_core(c),
                   "could not accept message: %" PRIu64
                   " bytes or more, limit %zu",
                   total, ws_conn_opts(c)->max_message_bytes);
        }
        ws_read_violation(c, TORPOR_CLOSE_TOO_BIG, false, NULL);
    }
}

/*
 * ws_read_deliver hands one whole data message to the core, checking that
 * text is complete UTF-8.
 */
static void
ws_read_deliver(struct ws_conn *c, uint8_t opcode, const uint8_t *data,
                size_t len)
{
    torpor_msg_kind kind =
        opcode == WS_OP_TEXT ? TORPOR_MSG_TEXT : TORPOR_MSG_BINARY;

    ws_of(c)->host->conn_received(ws_core(c), kind,
                                  data != NULL ? data : ws_empty, len);
}

/*
 * ws_read_inflate decompresses a whole compressed message, checks text as
 * UTF-8 once inflated, and delivers it.  A message that inflates past
 * max_message_bytes (a decompression bomb) closes with 1009 as soon as
 * it does; data that is not DEFLATE closes with 1007, as for bad UTF-8,
 * since the frames were sound but their content was not.
 */
static void
ws_read_inflate(struct ws_conn *c, uint8_t opcode, const uint8_t *data,
                size_t len)
{
    size_t limit = ws_conn_opts(c)->max_message_bytes;
    struct ws_inflated m;
    torpor_err err;

    err = ws_deflate_inflate(c, data != NULL ? data : ws_empty, len, limit, &m);
    if (err == TORPOR_ELIMIT) {
        if (ws_warn_allowed(ws_of(c))) {
            WS_LOG(
                ws_of(c), TORPOR_LOG_WARN, ws_core(c),
                "could not accept message: %zu compressed bytes inflate past the limit of %zu",
                len, limit);
        }
        ws_read_violation(c, TORPOR_CLOSE_TOO_BIG, false, NULL);
        return;
    }
    if (err == TORPOR_EINVAL) {
        ws_read_violation(c, TORPOR_CLOSE_INVALID_DATA, false,
                          "invalid compressed data");
        return;
    }
    if (err != TORPOR_OK) {
        ws_conn_fail(c);
        return;
    }
    if (opcode == WS_OP_TEXT) {
        struct ws_utf8 v;

        ws_utf8_init(&v);
        if (!ws_utf8_feed(&v, m.data, m.len) || !ws_utf8_complete(&v)) {
            ws_deflate_inflated_free(&m);
            ws_read_violation(c, TORPOR_CLOSE_INVALID_DATA, false,
                              "invalid utf-8 in text message");
            return;
        }
    }
    ws_read_deliver(c, opcode, m.data, m.len);
    ws_deflate_inflated_free(&m);
}

/*
 * ws_read_whole handles a frame whose payload lies whole in data, in
 * place.  Returns false for a data fragment, which must be copied into
 * the message being assembled.
 */
static bool
ws_read_whole(struct ws_conn *c, const struct ws_frame_header *fh,
              uint8_t *data)
{
    size_t len = (size_t)fh->payload_len;

    if (fh->opcode >= WS_OP_CLOSE) {
        ws_unmask(data, len, fh->mask, 0);
        ws_read_control(c, fh->opcode, data, len);
        return true;
    }
    if (c->state != WS_ST_OPEN) {
        return true;
    }
    if (fh->opcode == WS_OP_CONT || !fh->fin) {
        return false;
    }
    ws_unmask(data, len, fh->mask, 0);
    if ((fh->rsv & WS_RSV1) != 0) {
        ws_read_inflate(c, fh->opcode, data, len);
        return true;
    }
    if (fh->opcode == WS_OP_TEXT) {
        struct ws_utf8 v;

        ws_utf8_init(&v);
        if (!ws_utf8_feed(&v, data, len) || !ws_utf8_complete(&v)) {
            ws_read_violation(c, TORPOR_CLOSE_INVALID_DATA, false,
                              "invalid utf-8 in text message");
            return true;
        }
    }
    ws_read_deliver(c, fh->opcode, data, len);
    return true;
}

/*
 * ws_read_append copies n payload bytes into the message being assembled.
 * The buffer grows as bytes arrive, not as headers announce, so a peer
 * cannot make the server allocate for data it never sends.
 */
static bool
ws_read_append(struct ws_conn *c, struct ws_busy *b, const uint8_t *data,
               size_t n)
{
    size_t need = b->msg_len + n;

    /*
     * A header read without its payload: b->msg may still be NULL, and
     * memcpy to NULL is undefined even for 0 bytes.
     */
    if (n == 0) {
        return true;
    }
    if (need > b->msg_cap) {
        uint64_t at_end = b->msg_len + (b->fh.payload_len - b->frame_done);
        size_t cap = b->msg_cap * 2;
        uint8_t *p;

        if (cap < WS_MSG_FIRST_BYTES) {
            cap = WS_MSG_FIRST_BYTES;
        }
        /* The last frame tells the final size exactly. */
        if (b->fh.fin && cap > at_end) {
            cap = (size_t)at_end;
        }
        if (cap > ws_conn_opts(c)->max_message_bytes) {
            cap = ws_conn_opts(c)->max_message_bytes;
        }
        if (cap < need) {
            cap = need;
        }
        p = realloc(b->msg, cap);
        if (p == NULL) {
            return false;
        }
        b->msg = p;
        b->msg_cap = cap;
    }
    memcpy(b->msg + b->msg_len, data, n);
    b->msg_len = need;
    return true;
}

/* ws_read_payload consumes n bytes of the current frame's payload. */
static void
ws_read_payload(struct ws_conn *c, uint8_t *data, size_t n)
{
    struct ws_busy *b = c->busy;

    ws_unmask(data, n, b->fh.mask, (size_t)b->frame_done);
    if (b->fh.opcode >= WS_OP_CLOSE) {
        memcpy(b->ctl + b->frame_done, data, n);
    } else if (c->state == WS_ST_OPEN && b->msg_op != 0) {
        /* Text is checked as it comes, to fail at the first bad byte. */
        if (b->msg_op == WS_OP_TEXT && !b->msg_deflated
            && !ws_utf8_feed(&b->utf8, data, n)) {
            ws_read_violation(c, TORPOR_CLOSE_INVALID_DATA, false,
                              "invalid utf-8 in text message");
        } else if (!ws_read_append(c, b, data, n)) {
            ws_conn_fail(c);
        }
    }
    b->frame_done += n;
}

/* ws_read_end completes the current frame once its payload is read. */
static void
ws_read_end(struct ws_conn *c)
{
    struct ws_busy *b = c->busy;
    uint8_t opcode = b->fh.opcode;
    bool deflated;
    uint8_t *msg;
    size_t len;

    b->in_frame = false;
    if (opcode >= WS_OP_CLOSE) {
        ws_read_control(c, opcode, b->ctl, (size_t)b->fh.payload_len);
        return;
    }
    if (!b->fh.fin || c->state != WS_ST_OPEN || b->msg_op == 0
        || (c->flags & WS_F_FAILED) != 0) {
        return;
    }
    if (b->msg_op == WS_OP_TEXT && !b->msg_deflated
        && !ws_utf8_complete(&b->utf8)) {
        ws_read_violation(c, TORPOR_CLOSE_INVALID_DATA, false,
                          "text message ends inside a character");
        return;
    }
    opcode = b->msg_op;
    deflated = b->msg_deflated;
    msg = b->msg;
    len = b->msg_len;
    b->msg = NULL;
    ws_read_drop_message(b);
    if (deflated) {
        ws_read_inflate(c, opcode, msg, len);
    } else {
        ws_read_deliver(c, opcode, msg, len);
    }
    free(msg);
}

void
ws_read_feed(struct ws_conn *c, uint8_t *data, size_t len)
{
    while (ws_read_live(c)) {
        struct ws_busy *b = c->busy;
        size_t n;

        if (b == NULL || !b->in_frame) {
            struct ws_frame_header fh;
            size_t used;

            if (len == 0) {
                break;
            }
            if (ws_read_header(c, data, len, &fh, &used) <= 0) {
                break;
            }
            data += used;
            len -= used;
            ws_read_begin(c, &fh);
            if (!ws_read_live(c)) {
                break;
            }
            if (fh.payload_len <= len && ws_read_whole(c, &fh, data)) {
                data += fh.payload_len;
                len -= (size_t)fh.payload_len;
                continue;
            }
            b = ws_conn_busy(c);
            if (b == NULL) {
                ws_conn_fail(c);
                break;
            }
            b->fh = fh;
            b->in_frame = true;
            b->frame_done = 0;
            if (c->state == WS_ST_OPEN
                && (fh.opcode == WS_OP_TEXT || fh.opcode == WS_OP_BINARY)) {
                b->msg_op = fh.opcode;
                b->msg_deflated = (fh.rsv & WS_RSV1) != 0;
                ws_utf8_init(&b->utf8);
            }
        }
        n = len;
        if (n > b->fh.payload_len - b->frame_done) {
            n = (size_t)(b->fh.payload_len - b->frame_done);
        }
        ws_read_payload(c, data, n);
        data += n;
        len -= n;
        if (b->frame_done < b->fh.payload_len) {
            break;
        }
        ws_read_end(c);
    }
}

void
ws_read_ready(struct ws_conn *c)
{
    uint8_t buf[WS_READ_BUF_BYTES];
    ssize_t n;

    do {
        n = ws_io_recv(c, buf, sizeof(buf));
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        ws_keepalive_heard(c);
        ws_read_feed(c, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (WS_DEBUG_ON(ws_of(c))) {
        char err[128];

        WS_LOG(ws_of(c), TORPOR_LOG_DEBUG, ws_core(c),
               "could not receive: %s",
               n == 0 ? "peer closed the connection"
                      : ws_strerror(errno, err, sizeof(err)));
    }
    ws_conn_fail(c);
}
