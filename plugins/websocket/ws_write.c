/*
 * Output: encoded frames shared by reference, written at once when the
 * socket takes them, queued only for what it does not.  A connection that
 * keeps up never allocates an output queue.
 */
#include "ws.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

torpor_frame *
ws_frame_alloc(size_t len)
{
    torpor_frame *f;

    if (len > SIZE_MAX - sizeof(*f)) {
        return NULL;
    }
    f = malloc(sizeof(*f) + len);
    if (f != NULL) {
        memset(f, 0, sizeof(*f));
        f->refs = 1;
        f->len = len;
    }
    return f;
}

void
ws_frame_ref(torpor_frame *f)
{
    __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

torpor_err
ws_frame_encode(void *state, torpor_msg_kind kind, const void *data, size_t len,
                torpor_frame **out)
{
    uint8_t opcode;
    torpor_frame *f;
    size_t hlen;

    if (kind == TORPOR_MSG_TEXT) {
        struct ws_utf8 v;

        /* A browser fails the whole connection on bad text: refuse it. */
        ws_utf8_init(&v);
        if (!ws_utf8_feed(&v, data, len) || !ws_utf8_complete(&v)) {
            return TORPOR_EINVAL;
        }
        opcode = WS_OP_TEXT;
    } else if (kind == TORPOR_MSG_BINARY) {
        opcode = WS_OP_BINARY;
    } else {
        return TORPOR_EINVAL;
    }
    if (len > SIZE_MAX - WS_FRAME_SERVER_HEADER_MAX - sizeof(*f)) {
        return TORPOR_ENOMEM;
    }
    f = ws_frame_alloc(WS_FRAME_SERVER_HEADER_MAX + len);
    if (f == NULL) {
        return TORPOR_ENOMEM;
    }
    hlen = ws_frame_header_encode(f->data, true, 0, opcode, len);
    if (len > 0) {
        memcpy(f->data + hlen, data, len);
    }
    f->len = hlen + len;
    f->opcode = opcode;
    f->header_len = (uint8_t)hlen;
    *out = f;
    return TORPOR_OK;
}

void
ws_frame_release(torpor_frame *frame)
{
    if (frame != NULL
        && __atomic_sub_fetch(&frame->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        ws_deflate_frame_free(frame);
        free(frame);
    }
}

/* ws_write_queued: c has output waiting for writability. */
static bool
ws_write_queued(const struct ws_conn *c)
{
    return c->busy != NULL && c->busy->q_count > 0;
}

bool
ws_write_pending(const struct ws_conn *c)
{
    return (c->flags & WS_F_CORKED) != 0 || ws_write_queued(c);
}

/* ws_write_enqueue appends f, whose first off bytes are already sent. */
static torpor_err
ws_write_enqueue(struct ws_conn *c, torpor_frame *f, size_t off)
{
    struct ws_busy *b = ws_conn_busy(c);

    if (b == NULL) {
        return TORPOR_ENOMEM;
    }
    if (b->q_count == b->q_cap) {
        uint32_t cap = b->q_cap == 0 ? 8 : b->q_cap * 2;
        torpor_frame **q;

        if (cap < b->q_cap) {
            return TORPOR_ENOMEM;
        }
        q = malloc((size_t)cap * sizeof(*q));
        if (q == NULL) {
            return TORPOR_ENOMEM;
        }
        /* Unroll the ring so it starts at 0 in the new array. */
        for (uint32_t i = 0; i < b->q_count; i++) {
            q[i] = b->q[(b->q_head + i) % b->q_cap];
        }
        free(b->q);
        b->q = q;
        b->q_cap = cap;
        b->q_head = 0;
    }
    if (b->q_count == 0) {
        b->q_off = off;
    }
    b->q[(b->q_head + b->q_count) % b->q_cap] = f;
    b->q_count++;
    b->q_bytes += f->len - off;
    return TORPOR_OK;
}

/* ws_write_pop drops the head of the queue, once it is fully sent. */
static void
ws_write_pop(struct ws_busy *b)
{
    ws_frame_release(b->q[b->q_head]);
    b->q_head = (b->q_head + 1) % b->q_cap;
    b->q_count--;
    b->q_off = 0;
}

void
ws_write_free(struct ws_busy *b)
{
    while (b->q_count > 0) {
        ws_write_pop(b);
    }
    free(b->q);
    b->q = NULL;
    b->q_cap = 0;
    b->q_head = 0;
    b->q_bytes = 0;
}

/*
 * ws_write_failed marks c failed after a send that failed for a reason
 * other than a full socket; the peer is gone.
 */
static void
ws_write_failed(struct ws_conn *c)
{
    if (WS_DEBUG_ON(ws_of(c))) {
        char buf[128];

        WS_LOG(ws_of(c), TORPOR_LOG_DEBUG, ws_core(c), "could not send: %s",
               ws_strerror(errno, buf, sizeof(buf)));
    }
    ws_conn_fail(c);
}

/*
 * ws_write_sendv sends what the socket takes of iov now.  Returns the bytes
 * sent (0 when the socket is full), or -1 with c marked failed if the peer
 * is gone.
 */
static ssize_t
ws_write_sendv(struct ws_conn *c, const struct iovec *iov, size_t niov)
{
    ssize_t n;

    do {
        n = niov == 1 ? ws_io_send(c, iov[0].iov_base, iov[0].iov_len)
                      : ws_io_sendv(c, iov, niov);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        return n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return 0;
    }
    ws_write_failed(c);
    return -1;
}

/* ws_write_try sends what the socket takes of one buffer now, as above. */
static ssize_t
ws_write_try(struct ws_conn *c, const uint8_t *data, size_t len)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};

    return ws_write_sendv(c, &iov, 1);
}

/*
 * ws_write_slow handles a consumer that fell max_output_bytes behind: it
 * drops the frames not begun (the peer will not get them anyway), keeps a
 * partly sent head so the stream stays well framed, and the frames whose
 * bytes a blocked TLS write took in, which its repeat needs; and it
 * starts closing with 1013 (try again later).  1013 rather than 1008: the
 * peer broke no rule, the server is casting off a client it cannot serve,
 * which is what 1013 means; and a client that reconnects and catches up
 * is the right reaction, which clients take 1013 to invite and 1008 to
 * forbid.  The core closes a sender it cannot keep up with by the same
 * code.
 */
static void
ws_write_slow(struct ws_conn *c, size_t queued)
{
    struct ws_busy *b = c->busy;

    WS_COUNT(ws_of(c), slow_consumers);
    if (ws_warn_allowed(ws_of(c))) {
        WS_LOG(
            ws_of(c), TORPOR_LOG_WARN, ws_core(c),
            "could not keep up with slow consumer: %zu bytes queued, limit %zu; closing with 1013",
            queued, ws_conn_opts(c)->max_output_bytes);
    }
    if (b != NULL) {
        /* The head the peer has begun to get, and a begun TLS write's. */
        size_t begun = ws_io_write_begun(c);
        size_t held = 0;
        uint32_t keep = 0;

        while (keep < b->q_count
               && ((keep == 0 && b->q_off > 0) || held < begun)) {
            torpor_frame *f = b->q[(b->q_head + keep) % b->q_cap];

            held += f->len - (keep == 0 ? b->q_off : 0);
            keep++;
        }
        while (b->q_count > keep) {
            uint32_t last = (b->q_head + b->q_count - 1) % b->q_cap;

            b->q_bytes -= b->q[last]->len;
            ws_frame_release(b->q[last]);
            b->q_count--;
        }
    }
    ws_conn_start_close(c, TORPOR_CLOSE_TRY_AGAIN, NULL, 0);
}

/*
 * ws_write_gather writes frames[*done..n) with one system call per
 * WS_IOV_MAX frames while the socket takes them all, releasing each frame
 * wholly sent; *done and *off (bytes sent of frames[*done]) say how far
 * it got.  Returns false, with c marked failed, if the peer is gone.
 */
static bool
ws_write_gather(struct ws_conn *c, torpor_frame **frames, size_t n,
                size_t *done, size_t *off)
{
    while (*done < n) {
        struct iovec iov[WS_IOV_MAX];
        size_t niov = 0;
        size_t total = 0;
        ssize_t sent;

        for (; niov < n - *done && niov < WS_IOV_MAX; niov++) {
            torpor_frame *f = frames[*done + niov];
            size_t skip = niov == 0 ? *off : 0;

            iov[niov].iov_base = f->data + skip;
            iov[niov].iov_len = f->len - skip;
            total += f->len - skip;
        }
        sent = ws_write_sendv(c, iov, niov);
        if (sent < 0) {
            return false;
        }
        for (size_t left = (size_t)sent; left > 0;) {
            size_t rest = frames[*done]->len - *off;

            if (left < rest) {
                *off += left;
                break;
            }
            left -= rest;
            ws_frame_release(frames[(*done)++]);
            *off = 0;
        }
        if ((size_t)sent < total) {
            break;
        }
    }
    return true;
}

torpor_err
ws_write_frames(struct ws_conn *c, torpor_frame **frames, size_t n)
{
    size_t limit = ws_conn_opts(c)->max_output_bytes;
    bool had_queue = ws_write_queued(c);
    size_t queued = had_queue ? c->busy->q_bytes : 0;
    size_t begun;
    size_t before = 0;
    size_t done = 0;
    size_t off = 0;

    if (!had_queue) {
        if (!ws_write_gather(c, frames, n, &done, &off)) {
            while (done < n) {
                ws_frame_release(frames[done++]);
            }
            return TORPOR_ECLOSED;
        }
        if (done == n) {
            return TORPOR_OK;
        }
    }
    for (size_t i = done; i < n; i++) {
        queued += frames[i]->len - (i == done ? off : 0);
    }
    /* Bytes from frames[done] + off that a TLS write has taken in. */
    begun = had_queue ? 0 : ws_io_write_begun(c);
    for (size_t i = done; i < n; i++) {
        /*
         * A frame begun on the wire must be finished, or the peer loses
         * the framing, and so must one a begun TLS write holds; only
         * frames not begun can be refused.
         */
        bool keep = (i == done && off > 0) || before < begun;

        before += frames[i]->len - (i == done ? off : 0);
        if (!keep && queued > limit) {
            ws_frame_release(frames[i]);
        } else if (ws_write_enqueue(c, frames[i], i == done ? off : 0)
                   != TORPOR_OK) {
            while (i < n) {
                ws_frame_release(frames[i++]);
            }
            ws_conn_fail(c);
            return TORPOR_ENOMEM;
        }
    }
    if (queued > limit) {
        ws_write_slow(c, queued);
        ws_conn_watch(c);
        return TORPOR_ELIMIT;
    }
    ws_conn_watch(c);
    return TORPOR_OK;
}

/*
 * ws_frame_send_wire sends frame, the bytes chosen for c: held to the end
 * of the pass with c's other frames (ws_cork.c), or queued behind what
 * waits already.
 */
static torpor_err
ws_frame_send_wire(struct ws_conn *c, torpor_frame *frame)
{
    ws_frame_ref(frame);
    if (!ws_write_queued(c)) {
        if (ws_cork_add(c, frame) == TORPOR_OK) {
            return TORPOR_OK;
        }
        /* Out of memory for the cork: what it holds for c goes first. */
        ws_cork_release(c);
    }
    return ws_write_frames(c, &frame, 1);
}

torpor_err
ws_frame_send(void *tconn, torpor_frame *frame)
{
    struct ws_conn *c = tconn;
    torpor_frame *wire;
    torpor_err err;

    if (c->state == WS_ST_HANDSHAKE || c->state == WS_ST_REFUSED) {
        return TORPOR_ESTATE;
    }
    if ((c->state != WS_ST_OPEN && c->state != WS_ST_MOVING)
        || (c->flags & WS_F_FAILED) != 0) {
        return TORPOR_ECLOSED;
    }
    if (c->state == WS_ST_MOVING) {
        ws_upgrade_answer(c);
    }
    if ((c->deflate & WS_DEFLATE_ON) == 0) {
        return ws_frame_send_wire(c, frame);
    }
    wire = ws_deflate_wire(c, frame);
    if (wire == NULL) {
        /* c's own compression context is lost: nothing more can be sent. */
        ws_conn_fail(c);
        return TORPOR_ENOMEM;
    }
    err = ws_frame_send_wire(c, wire);
    ws_frame_release(wire);
    return err;
}

/*
 * ws_write_copy sends bytes that are not a shared frame, queueing a copy
 * of what the socket does not take.  limited applies max_output_bytes to
 * what a peer can make us send (pongs); close frames and the 101 are exempt
 * so that closing always works.
 */
static torpor_err
ws_write_copy(struct ws_conn *c, const void *data, size_t len, bool limited)
{
    ssize_t sent = 0;
    bool begun = false;
    torpor_frame *f;

    if ((c->flags & WS_F_FAILED) != 0) {
        return TORPOR_ECLOSED;
    }
    /* What this pass holds for c goes first. */
    ws_cork_release(c);
    if ((c->flags & WS_F_FAILED) != 0) {
        return TORPOR_ECLOSED;
    }
    if (!ws_write_queued(c)) {
        sent = ws_write_try(c, data, len);
        if (sent < 0) {
            return TORPOR_ECLOSED;
        }
        if ((size_t)sent == len) {
            return TORPOR_OK;
        }
        begun = ws_io_write_begun(c) != 0;
    }
    if (limited && sent == 0 && !begun) {
        size_t queued = (ws_write_queued(c) ? c->busy->q_bytes : 0) + len;

        if (queued > ws_conn_opts(c)->max_output_bytes) {
            ws_write_slow(c, queued);
            ws_conn_watch(c);
            return TORPOR_ELIMIT;
        }
    }
    /*
     * The whole copy goes in with the sent part as its offset: a head with
     * an offset is one the peer has begun to receive, which ws_write_slow
     * must keep.
     */
    f = ws_frame_alloc(len);
    if (f == NULL) {
        ws_conn_fail(c);
        return TORPOR_ENOMEM;
    }
    memcpy(f->data, data, len);
    if (ws_write_enqueue(c, f, (size_t)sent) != TORPOR_OK) {
        ws_frame_release(f);
        ws_conn_fail(c);
        return TORPOR_ENOMEM;
    }
    ws_conn_watch(c);
    return TORPOR_OK;
}

torpor_err
ws_write_raw(struct ws_conn *c, const void *data, size_t len)
{
    return ws_write_copy(c, data, len, false);
}

torpor_err
ws_write_control(struct ws_conn *c, uint8_t opcode, const void *payload,
                 size_t len)
{
    uint8_t buf[WS_FRAME_SERVER_HEADER_MAX + WS_CONTROL_PAYLOAD_MAX];
    size_t hlen;

    if (len > WS_CONTROL_PAYLOAD_MAX) {
        return TORPOR_EINVAL;
    }
    hlen = ws_frame_header_encode(buf, true, 0, opcode, len);
    if (len > 0) {
        memcpy(buf + hlen, payload, len);
    }
    return ws_write_copy(c, buf, hlen + len, opcode != WS_OP_CLOSE);
}

void
ws_write_flush(struct ws_conn *c)
{
    struct ws_busy *b = c->busy;

    while (b != NULL && b->q_count > 0) {
        struct iovec iov[WS_IOV_MAX];
        size_t total = 0;
        size_t niov = 0;
        size_t n;
        ssize_t sent;

        while (niov < b->q_count && niov < WS_IOV_MAX) {
            torpor_frame *f = b->q[(b->q_head + niov) % b->q_cap];
            size_t off = niov == 0 ? b->q_off : 0;

            iov[niov].iov_base = f->data + off;
            iov[niov].iov_len = f->len - off;
            total += f->len - off;
            niov++;
        }
        sent = ws_write_sendv(c, iov, niov);
        if (sent < 0) {
            return;
        }
        b->q_bytes -= (size_t)sent;
        n = (size_t)sent;
        while (n > 0) {
            torpor_frame *f = b->q[b->q_head];
            size_t rest = f->len - b->q_off;

            if (n < rest) {
                b->q_off += n;
                break;
            }
            n -= rest;
            ws_write_pop(b);
        }
        if ((size_t)sent < total) {
            return;
        }
    }
    if (b != NULL && b->q_count == 0 && b->q != NULL) {
        /* Drained: the queue's memory goes back until the next backlog. */
        free(b->q);
        b->q = NULL;
        b->q_cap = 0;
        b->q_head = 0;
    }
}
