/*
 * torpor/class.h: what the core asks of a room class.
 *
 * A class gives objects their behaviour.  The core makes an instance of the
 * class for an object when the object wakes (object_create) and frees it
 * when the object goes idle (object_destroy).  The events of one object
 * reach its instance one at a time, in arrival order, on the object's loop:
 * a handler never runs twice at once for the same object and needs no
 * lock for the instance.
 *
 * Handlers return TORPOR_OK, or an error that the core logs with the
 * object; a handler never blocks.
 */
#ifndef TORPOR_ABI_CLASS_H
#define TORPOR_ABI_CLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/types.h>
#include <torpor/host.h>

#ifdef __cplusplus
extern "C" {
#endif

struct torpor_class_ops {
    uint32_t size;  /* sizeof(struct torpor_class_ops) at build time */

    /*
     * object_create is the constructor: it runs when an object wakes,
     * before its first event, and sets *instance.  state is the plugin's
     * state from create.  Mandatory.
     */
    torpor_err (*object_create)(void *state, torpor_object *object,
                                void **instance);

    /* object_destroy frees an instance.  Optional. */
    void (*object_destroy)(void *instance);

    /*
     * accept decides whether a client may join.  Returning TORPOR_EREFUSED
     * with *http_status set (4xx) turns it away before the handshake
     * completes.  Optional: NULL accepts everyone.
     */
    torpor_err (*accept)(void *instance, torpor_conn *conn,
                         const torpor_attach_req *req, int *http_status);

    /* open: a client joined and may now be sent to.  Optional. */
    torpor_err (*open)(void *instance, torpor_conn *conn);

    /*
     * message: one whole message from a client, or from a backend service
     * (since ABI 1.1): then conn is a sender no client holds, with
     * conn_id 0 and host->conn_origin TORPOR_ORIGIN_BACKEND, which never
     * opens, closes or appears in conns or broadcasts, and is valid only
     * until this event ends.  Sending to it answers the backend; closing
     * it tells the backend the message was refused.  Optional.
     */
    torpor_err (*message)(void *instance, torpor_conn *conn,
                          torpor_msg_kind kind, const void *data, size_t len);

    /*
     * close: a client left.  clean is false when the connection dropped
     * without a close handshake (code is then 1006).  The connection can
     * no longer be sent to.  Optional.
     */
    torpor_err (*close)(void *instance, torpor_conn *conn, uint16_t code,
                        const char *reason, size_t reason_len, bool clean);

    /*
     * error: the connection failed (err is TORPOR_ECLOSED: it dropped
     * without a close handshake); close follows at once.  Optional.
     */
    torpor_err (*error)(void *instance, torpor_conn *conn, torpor_err err);

    /*
     * alarm: the alarm called name is due; retry counts earlier failed
     * attempts.  Optional.
     */
    torpor_err (*alarm)(void *instance, const char *name, uint32_t retry);

    /*
     * hibernate: the object is about to leave memory; its connections stay
     * open.  Storage calls are not allowed here: whatever must survive was
     * written by the events before.  Optional.
     */
    torpor_err (*hibernate)(void *instance);

    /*
     * hibernate_after_ms: how long an object of this class stays in memory
     * with nothing to do (no event, no storage operation in flight) before
     * the core calls hibernate and frees its instance.  Its connections
     * stay open; the next event wakes it through object_create.  0 never
     * hibernates, which is right for a class that keeps state only in its
     * instance.  TORPOR_HIBERNATE_DEFAULT_MS is the usual choice.
     */
    uint32_t hibernate_after_ms;

    /* flags: TORPOR_CLASS_* below, or-ed. */
    uint32_t flags;
};

#define TORPOR_HIBERNATE_DEFAULT_MS 10000

/*
 * TORPOR_CLASS_LAZY_CLOSE: a client that leaves a hibernating object does
 * not wake it; the class hears of the close (code and cleanliness, not the
 * reason) when the object next wakes, before the event that wakes it.
 * Without it, the default, a close wakes the object at once.  The last
 * open connection's close always wakes it, so no close is left untold.
 */
#define TORPOR_CLASS_LAZY_CLOSE 1u

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_CLASS_H */
