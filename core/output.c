/*
 * core/output.c: sending to connections, broadcast encoded once, closing,
 * and the output gate.
 *
 * The output gate holds what a handler sends after its first storage
 * write, until the commit of that write is durable: no client ever sees
 * state that a crash could still take back.  Sends before the first write
 * of an event go out at once, and a room without storage writes (relay,
 * echo) never holds anything.  A close asked for after a write is held
 * too, in order with the messages, so a client is told why before it is
 * closed; if the commit fails the close is dropped with them and the
 * connection stays open.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/object_internal.h"
#include "core/runtime.h"

/* output_held: whether a send now must wait for the current commit. */
static bool
output_held(const torpor_object *obj)
{
    return obj->batch.n > 0 || obj->committing;
}

static torpor_err
output_hold(torpor_object *obj, torpor_conn *conn, const torpor_conn *except,
            const torpor_bytes *tag, torpor_msg_kind kind, const void *data,
            size_t len)
{
    size_t tag_len = tag != NULL ? tag->len : 0;
    struct obj_held *h = malloc(sizeof(*h) + len + tag_len);

    if (h == NULL) {
        return TORPOR_ENOMEM;
    }
    h->next = NULL;
    h->conn = conn;
    h->except = except;
    h->kind = (uint8_t)kind;
    h->is_close = false;
    h->code = 0;
    h->len = len;
    h->has_tag = tag != NULL;
    h->tag_len = tag_len;
    if (len > 0) {
        memcpy(h->data, data, len);
    }
    if (tag_len > 0) {
        memcpy(h->data + len, tag->data, tag_len);
    }
    if (obj->held_tail != NULL) {
        obj->held_tail->next = h;
    } else {
        obj->held_head = h;
    }
    obj->held_tail = h;
    return TORPOR_OK;
}

static torpor_err
output_send_now(torpor_conn *conn, torpor_msg_kind kind, const void *data,
                size_t len)
{
    struct torpor_plugin_ctx *transport = tpr_conn_transport(conn);
    const struct torpor_transport_ops *t = &transport->ops.transport;
    torpor_frame *frame;

    torpor_err err = t->frame_encode(transport->state, kind, data, len,
                                     &frame);
    if (err != TORPOR_OK) {
        return err;
    }
    err = t->frame_send(tpr_conn_tconn(conn), frame);
    t->frame_release(frame);
    conn->object->shard->stats.messages_out += err == TORPOR_OK;
    return err;
}

/* Frames encoded for one broadcast, one per transport seen. */
#define BROADCAST_TRANSPORTS 4

static torpor_err
output_broadcast_now(torpor_object *obj, torpor_msg_kind kind,
                     const void *data, size_t len, const torpor_conn *except,
                     const torpor_bytes *tag)
{
    struct {
        struct torpor_plugin_ctx *transport;
        torpor_frame *frame;
    } enc[BROADCAST_TRANSPORTS];
    size_t nenc = 0;
    torpor_err result = TORPOR_OK;

    for (torpor_conn *c = obj->conns; c != NULL; c = tpr_conn_next(c)) {
        /* Only those the class has heard of: it may greet them first. */
        if (c == except || c->state != CONN_OPEN || !c->opened
            || (tag != NULL && !tpr_conn_has_tag(c, *tag))) {
            continue;
        }
        struct torpor_plugin_ctx *transport = tpr_conn_transport(c);
        const struct torpor_transport_ops *t = &transport->ops.transport;
        torpor_frame *frame = NULL;
        bool owned = false;     /* not in enc: release after this send */
        size_t i;
        for (i = 0; i < nenc && enc[i].transport != transport; i++) {
        }
        if (i < nenc) {
            frame = enc[i].frame;
        } else {
            torpor_err err = t->frame_encode(transport->state, kind, data,
                                             len, &frame);
            if (err != TORPOR_OK) {
                result = err;
                continue;
            }
            if (nenc < BROADCAST_TRANSPORTS) {
                enc[nenc].transport = transport;
                enc[nenc].frame = frame;
                nenc++;
            } else {
                owned = true;
            }
        }
        /* A refused send closes that connection; the room goes on. */
        obj->shard->stats.messages_out +=
            t->frame_send(tpr_conn_tconn(c), frame) == TORPOR_OK;
        if (owned) {
            t->frame_release(frame);
        }
    }
    for (size_t i = 0; i < nenc; i++) {
        enc[i].transport->ops.transport.frame_release(enc[i].frame);
    }
    return result;
}

torpor_err
tpr_conn_send(torpor_conn *conn, torpor_msg_kind kind, const void *data,
              size_t len)
{
    torpor_object *obj = conn->object;
    torpor_err err;

    if (conn->state != CONN_OPEN || conn->close_held) {
        return TORPOR_ECLOSED;
    }
    tpr_object_enter(obj);
    if (output_held(obj)) {
        err = output_hold(obj, conn, NULL, NULL, kind, data, len);
    } else {
        err = output_send_now(conn, kind, data, len);
    }
    tpr_object_leave(obj);
    return err;
}

torpor_err
tpr_output_broadcast_to(torpor_object *obj, torpor_msg_kind kind,
                        const void *data, size_t len,
                        const torpor_conn *except, const torpor_bytes *tag)
{
    torpor_err err;

    tpr_object_enter(obj);
    if (output_held(obj)) {
        err = output_hold(obj, NULL, except, tag, kind, data, len);
    } else {
        err = output_broadcast_now(obj, kind, data, len, except, tag);
    }
    tpr_object_leave(obj);
    return err;
}

torpor_err
tpr_object_broadcast(torpor_object *obj, torpor_msg_kind kind,
                     const void *data, size_t len, const torpor_conn *except)
{
    return tpr_output_broadcast_to(obj, kind, data, len, except, NULL);
}

/* output_close_now starts the close handshake of conn. */
static torpor_err
output_close_now(torpor_conn *conn, uint16_t code, const char *reason,
                 size_t reason_len)
{
    torpor_object *obj = conn->object;

    conn->state = CONN_CLOSING;
    tpr_object_enter(obj);
    torpor_err err = tpr_conn_transport(conn)->ops.transport.close(
        tpr_conn_tconn(conn), code, reason, reason_len);
    tpr_object_leave(obj);
    return err;
}

void
tpr_output_release(torpor_object *obj)
{
    struct obj_held *h = obj->held_head;

    obj->held_head = NULL;
    obj->held_tail = NULL;
    while (h != NULL) {
        struct obj_held *next = h->next;
        if (h->is_close) {
            h->conn->close_held = false;
            if (h->conn->state == CONN_OPEN) {
                output_close_now(h->conn, h->code, (const char *)h->data,
                                 h->len);
            }
        } else if (h->conn == NULL) {
            torpor_bytes tag = {.data = h->data + h->len, .len = h->tag_len};
            output_broadcast_now(obj, h->kind, h->data, h->len, h->except,
                                 h->has_tag ? &tag : NULL);
        } else if (h->conn->state == CONN_OPEN) {
            output_send_now(h->conn, h->kind, h->data, h->len);
        }
        free(h);
        h = next;
    }
}

void
tpr_output_drop(torpor_object *obj)
{
    struct obj_held *h = obj->held_head;

    obj->held_head = NULL;
    obj->held_tail = NULL;
    while (h != NULL) {
        struct obj_held *next = h->next;
        if (h->is_close) {
            h->conn->close_held = false;
        }
        free(h);
        h = next;
    }
}

torpor_err
tpr_conn_close(torpor_conn *conn, uint16_t code, const char *reason,
               size_t reason_len)
{
    if ((conn->state != CONN_OPEN && conn->state != CONN_ATTACHED)
        || conn->close_held) {
        return TORPOR_ECLOSED;
    }
    if (reason_len > 123) {
        return TORPOR_EINVAL;
    }
    torpor_object *obj = conn->object;
    if (conn->state == CONN_OPEN && output_held(obj)) {
        torpor_err err = output_hold(obj, conn, NULL, NULL, TORPOR_MSG_TEXT,
                                     reason, reason_len);
        if (err == TORPOR_OK) {
            obj->held_tail->is_close = true;
            obj->held_tail->code = code;
            conn->close_held = true;
        }
        return err;
    }
    return output_close_now(conn, code, reason, reason_len);
}
