/*
 * torpor/transport.h: what the core asks of a transport plugin.
 *
 * A transport owns its sockets and its wire protocol (WebSocket, nng).  It
 * reports peers to the core through the host table (conn_attach,
 * conn_opened, conn_received, conn_closed) and the core sends to them
 * through these operations.  Sending is split into encode and send so that
 * a broadcast encodes a message once and hands the same frame to every
 * recipient.
 */
#ifndef TORPOR_ABI_TRANSPORT_H
#define TORPOR_ABI_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <torpor/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct torpor_transport_ops {
    uint32_t size;  /* sizeof(struct torpor_transport_ops) at build time */

    /*
     * frame_encode makes the transport's wire form of one message, holding
     * one reference for the caller.  Any loop.  Mandatory.
     */
    torpor_err (*frame_encode)(void *state, torpor_msg_kind kind,
                               const void *data, size_t len,
                               torpor_frame **out);

    /*
     * frame_send writes frame to the connection tconn, taking a reference
     * of its own if it must queue it.  On the connection's loop; never
     * blocks.  TORPOR_ECLOSED if the connection is closing; TORPOR_ELIMIT if
     * its output queue is over its limit (the transport then closes it).
     * A transport may also hold the frame until its loop has run what is
     * ready, to write a pass's frames to a connection together; a failure
     * found then closes the connection as for a queued frame.  Mandatory.
     */
    torpor_err (*frame_send)(void *tconn, torpor_frame *frame);

    /* frame_release drops one reference.  Any loop.  Mandatory. */
    void (*frame_release)(torpor_frame *frame);

    /*
     * close starts closing tconn with code and reason; the transport calls
     * host->conn_closed once it is done.  On the connection's loop.
     * Mandatory.
     */
    torpor_err (*close)(void *tconn, uint16_t code, const char *reason,
                        size_t reason_len);

    /* ---- ABI 1.1: the core may keep the transport's records ---- */

    /*
     * conn_bytes, when not 0, asks the core to keep each attached
     * connection's transport record in one allocation with its own, in a
     * store per loop without a malloc header per record: conn_attach
     * copies the first conn_bytes of tconn into it, and every op is then
     * given that copy, which lies right before the core's handle: conn ==
     * (char *)copy + TORPOR_CONN_SPAN(conn_bytes), so each side finds the
     * other without a pointer.  The copy is aligned to 8 bytes.  The
     * transport gives it back with host->conn_release.  At most
     * TORPOR_CONN_BYTES_MAX.  0: the transport keeps its records itself.
     */
    uint32_t conn_bytes;

    /*
     * conn_discard frees what a record copy holds (its socket, buffers,
     * timers) without telling the core, when the core frees records the
     * transport has not released: at teardown, once no loop runs and
     * before the transport is destroyed.  Mandatory with conn_bytes.
     */
    void (*conn_discard)(void *tconn);
};

/* The largest conn_bytes a transport may ask for. */
#define TORPOR_CONN_BYTES_MAX 1024u

/* The bytes between a record copy and the core's handle after it. */
#define TORPOR_CONN_SPAN(conn_bytes) (((size_t)(conn_bytes) + 7u) & ~(size_t)7u)

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_TRANSPORT_H */
