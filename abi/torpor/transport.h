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
     * Mandatory.
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
};

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_TRANSPORT_H */
