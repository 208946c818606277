/*
 * core/room_tap.c: taps, through which a plugin follows the events of
 * every room (for the nng transport's event stream).
 *
 * A room pays for taps only while one is set: event.c asks
 * tpr_room_tap_on, one atomic load and one branch, before it builds
 * anything.  Taps are few (TPR_TAPS_MAX) and change rarely, when a
 * plugin's first subscriber arrives or its last one leaves, so setting one
 * takes a lock and running them takes none.
 *
 * Missing: error events; a tap hears of a connection that dropped only through its close, with clean false.
 */
#include "build-config.h"

#include <string.h>

#include "core/loader.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/room_ops.h"
#include "core/runtime.h"

torpor_err
tpr_room_tap(torpor_plugin_ctx *self, torpor_room_tap_cb cb, void *arg)
{
    struct tpr_room_ops *ro = self->rt->room_ops;
    struct tpr_tap *slot = NULL;
    torpor_err err = TORPOR_OK;

    pthread_mutex_lock(&ro->taps_lock);
    for (size_t i = 0; i < TPR_TAPS_MAX && slot == NULL; i++) {
        if (ro->taps[i].plugin == self) {
            slot = &ro->taps[i];
        }
    }
    for (size_t i = 0; i < TPR_TAPS_MAX && slot == NULL && cb != NULL; i++) {
        if (ro->taps[i].plugin == NULL) {
            slot = &ro->taps[i];
        }
    }
    if (slot == NULL) {
        err = cb != NULL ? TORPOR_ELIMIT : TORPOR_OK;
    } else {
        bool was_on = __atomic_load_n(&slot->cb, __ATOMIC_RELAXED) != NULL;
        slot->plugin = self;
        /* arg before cb: whoever sees the cb sees its arg. */
        __atomic_store_n(&slot->arg, arg, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->cb, cb, __ATOMIC_RELEASE);
        if (!was_on && cb != NULL) {
            __atomic_add_fetch(&ro->taps_on, 1, __ATOMIC_RELEASE);
        } else if (was_on && cb == NULL) {
            __atomic_sub_fetch(&ro->taps_on, 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&ro->taps_lock);
    return err;
}

void
tpr_room_tap_emit(torpor_object *obj, const struct obj_event *ev,
                  const void *data)
{
    torpor_conn *conn = ev->conn;
    torpor_room_event e = {
        .size = sizeof(e),
        .object = obj,
        .class_name = obj->klass->desc.name,
        .name = {.data = obj->name, .len = obj->name_len},
        .id = obj->id.bytes,
        .conn = conn,
        .conn_id = conn != NULL ? conn->id : 0,
        .origin = conn != NULL && conn->id == TPR_CONN_BACKEND_ID
                      ? TORPOR_ORIGIN_BACKEND
                      : TORPOR_ORIGIN_CLIENT,
        .data = {.data = data, .len = ev->len},
    };

    switch (ev->type) {
    case OBJ_EV_OPEN:
        e.type = TORPOR_ROOM_EVENT_OPEN;
        break;
    case OBJ_EV_MESSAGE:
        e.type = TORPOR_ROOM_EVENT_MESSAGE;
        e.kind = ev->kind;
        break;
    case OBJ_EV_CLOSE:
        if (!conn->opened) {
            return;     /* the class never heard of it either */
        }
        e.type = TORPOR_ROOM_EVENT_CLOSE;
        e.code = ev->code;
        e.clean = ev->clean;
        break;
    case OBJ_EV_ALARM:
        e.type = TORPOR_ROOM_EVENT_ALARM;
        e.retry = ev->retry;
        e.data.len = ev->len > 0 ? ev->len - 1 : 0;    /* without its NUL */
        break;
    default:
        return;
    }
    e.time_ms = tpr_wall_ms();
    struct tpr_room_ops *ro = obj->rt->room_ops;
    for (size_t i = 0; i < TPR_TAPS_MAX; i++) {
        torpor_room_tap_cb cb =
            __atomic_load_n(&ro->taps[i].cb, __ATOMIC_ACQUIRE);
        if (cb != NULL) {
            cb(__atomic_load_n(&ro->taps[i].arg, __ATOMIC_RELAXED), &e);
        }
    }
}
