/*
 * core/event.c: delivering events to an object's class one at a time, in
 * arrival order, and the input gate.
 *
 * Re-entrancy is the subtle part.  A handler's send can make a transport
 * report a dead peer at once, and a shutdown closes connections while it
 * walks them.  So every entry into an object raises obj->depth; an event
 * that arrives while depth is raised, or while the gate is closed (an event
 * waits for its storage reads, or its writes are being committed), is
 * queued, and the outermost exit drains the queue once the gate is open.
 * A connection record is unlinked and freed only when its close event is
 * delivered, never while someone may be walking the list.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/room_ops.h"
#include "core/runtime.h"

bool
tpr_object_gated(const torpor_object *obj)
{
    return obj->in_event || obj->committing || obj->parked != NULL;
}

static void
event_handler_failed(torpor_object *obj, torpor_conn *conn, const char *what,
                     torpor_err err)
{
    char ids[512];

    tpr_log(TORPOR_LOG_WARN, obj->klass->desc.name,
            tpr_log_ids(ids, sizeof(ids), obj, conn), "%s handler failed: %s", what, tpr_strerror(err));
}

/* event_copy makes a heap copy of ev whose data holds data. */
static struct obj_event *
event_copy(const struct obj_event *ev, const void *data)
{
    struct obj_event *copy = malloc(sizeof(*copy) + ev->len);

    if (copy == NULL) {
        return NULL;
    }
    *copy = *ev;
    copy->next = NULL;
    if (ev->len > 0) {
        memcpy(copy->data, data, ev->len);
    }
    return copy;
}

/*
 * event_call runs the handler of ev; the instance exists.  A handler cannot
 * be stopped, but one that overran handler_timeout_ms is reported and its
 * object reset when the event ends: its instance may be in any state.
 */
static void
event_call(torpor_object *obj, const struct obj_event *ev, const void *data)
{
    const struct torpor_class_ops *ops = &obj->klass->ops.klass;
    torpor_conn *conn = ev->conn;
    torpor_err err = TORPOR_OK;
    const char *what = "message";
    uint64_t start = tpr_now_ms();

    if (tpr_room_tap_on(obj->rt->room_ops)) {
        tpr_room_tap_emit(obj, ev, data);
    }
    switch (ev->type) {
    case OBJ_EV_OPEN:
        what = "open";
        conn->opened = true;
        if (ops->open != NULL) {
            err = ops->open(obj->instance, conn);
        }
        break;
    case OBJ_EV_MESSAGE:
        if (ops->message != NULL) {
            err = ops->message(obj->instance, conn, ev->kind, data, ev->len);
        }
        if (conn->id == TPR_CONN_BACKEND_ID) {
            tpr_publish_handled(obj, conn, err);
        }
        break;
    case OBJ_EV_CLOSE:
        what = "close";
        /* A connection that dropped without a close handshake failed. */
        if (conn->opened && !ev->clean && ops->error != NULL) {
            err = ops->error(obj->instance, conn, TORPOR_ECLOSED);
            if (err != TORPOR_OK) {
                event_handler_failed(obj, conn, "error", err);
                err = TORPOR_OK;
            }
        }
        if (conn->opened && ops->close != NULL) {
            err = ops->close(obj->instance, conn, ev->code, data, ev->len,
                             ev->clean);
        }
        break;
    case OBJ_EV_ALARM:
        what = "alarm";
        /* The alarm state is found again by name: it may have been freed
         * and remade while the event waited. */
        obj->alarm_current = NULL;
        for (struct obj_alarm *a = obj->alarms; a != NULL; a = a->next) {
            if (a->len + 1 == ev->len && memcmp(a->name, data, a->len) == 0) {
                obj->alarm_current = a;
            }
        }
        err = ops->alarm != NULL
                  ? ops->alarm(obj->instance, data, ev->retry)
                  : TORPOR_EUNSUPPORTED;
        obj->alarm_failed = err != TORPOR_OK;
        break;
    }
    if (err != TORPOR_OK) {
        event_handler_failed(obj, conn, what, err);
    }
    uint64_t took = tpr_now_ms() - start;
    if (took > obj->rt->cfg->handler_timeout_ms) {
        tpr_log(TORPOR_LOG_ERR, obj->klass->desc.name, tpr_object_log_ids(obj), "%s handler ran %llu ms, limit %llu; resetting the object and dropping the event's writes", what, (unsigned long long)took, (unsigned long long)obj->rt->cfg->handler_timeout_ms);
        obj->reset_pending = true;
    }
}

/* event_forget_conn frees a connection whose close was delivered. */
static void
event_forget_conn(torpor_object *obj, torpor_conn *conn)
{
    bool counted = !conn->deferred;   /* a deferred one left the count */

    tpr_conn_unlink(conn);
    tpr_conn_free(conn);
    if (counted) {
        tpr_runtime_conn_gone(obj->rt);
    }
}

/*
 * event_tell_deferred_closes hands the class the closes that happened
 * while the object hibernated, oldest connection first, within the event
 * that woke it.
 */
static void
event_tell_deferred_closes(torpor_object *obj)
{
    torpor_conn *c = obj->conns;

    while (obj->deferred_closes > 0 && c != NULL) {
        torpor_conn *next = tpr_conn_next(c);
        if (c->deferred) {
            struct obj_event ev = {
                .type = OBJ_EV_CLOSE, .conn = c, .code = c->close_code,
                .clean = c->close_clean,
            };
            obj->deferred_closes--;
            event_call(obj, &ev, NULL);
            event_forget_conn(obj, c);
        }
        c = next;
    }
}

void
tpr_event_deliver(torpor_object *obj, const struct obj_event *ev,
                  const void *data)
{
    obj->in_event = true;
    obj->last_active_ms = tpr_now_ms();
    if (!obj->awake) {
        torpor_err err = tpr_object_wake(obj);
        if (err != TORPOR_OK) {
            obj->in_event = false;
            if (ev->type == OBJ_EV_CLOSE) {
                event_forget_conn(obj, ev->conn);
            } else if (ev->type == OBJ_EV_ALARM) {
                tpr_alarm_abandon(obj, ev->data, ev->len - 1);
            } else if (ev->conn->id == TPR_CONN_BACKEND_ID) {
                tpr_publish_failed(ev->conn, err);
            } else {
                tpr_conn_close(ev->conn, TORPOR_CLOSE_INTERNAL, "", 0);
            }
            return;
        }
        if (obj->reads > 0) {
            /* Missing: deferred closes wait for no constructor read; a lazy-close class hears them before its state is loaded. */
            event_tell_deferred_closes(obj);
            /* The constructor is reading its state: the event waits. */
            obj->parked = event_copy(ev, data);
            if (obj->parked == NULL) {
                tpr_log(TORPOR_LOG_ERR, "core", tpr_object_log_ids(obj), "could not park event: out of memory");
            }
            return;
        }
        event_tell_deferred_closes(obj);
    }
    event_call(obj, ev, data);
    if (ev->type == OBJ_EV_CLOSE) {
        event_forget_conn(obj, ev->conn);
    }
    tpr_event_settle(obj);
}

void
tpr_event_settle(torpor_object *obj)
{
    if (obj->reads > 0 || !obj->in_event) {
        return;
    }
    if (obj->parked != NULL) {
        struct obj_event *ev = obj->parked;
        obj->parked = NULL;
        event_call(obj, ev, ev->data);
        if (ev->type == OBJ_EV_CLOSE) {
            event_forget_conn(obj, ev->conn);
        }
        free(ev);
        if (obj->reads > 0) {
            return;
        }
    }
    obj->in_event = false;
    if (obj->reset_pending) {
        obj->reset_pending = false;
        if (obj->alarm_current != NULL) {
            obj->alarm_current->inflight = false;   /* fires again */
            obj->alarm_current = NULL;
        }
        tpr_batch_clear(&obj->batch);
        tpr_output_drop(obj);
        tpr_object_sleep(obj);
        if (obj->publishing != NULL) {
            tpr_publish_end(obj, TORPOR_ELIMIT);
        }
        return;
    }
    tpr_alarm_event_end(obj);
    if (obj->batch.n > 0) {
        tpr_storage_commit_event(obj);
    } else if (obj->publishing != NULL) {
        tpr_publish_end(obj, TORPOR_OK);
    }
}

void
tpr_object_enter(torpor_object *obj)
{
    obj->depth++;
}

void
tpr_object_leave(torpor_object *obj)
{
    if (obj->depth == 1) {
        while (obj->queue_head != NULL && !tpr_object_gated(obj)) {
            struct obj_event *ev = obj->queue_head;
            obj->queue_head = ev->next;
            if (obj->queue_head == NULL) {
                obj->queue_tail = NULL;
            }
            obj->queued--;
            obj->shard->stats.events_queued--;
            tpr_event_deliver(obj, ev, ev->data);
            free(ev);
        }
    }
    obj->depth--;
    if (obj->depth == 0 && obj->nconns == 0 && obj->queue_head == NULL
        && !tpr_object_gated(obj) && obj->reads == 0) {
        tpr_object_free(obj);
    }
}

/* event_post delivers now if the object is free to run, or queues a copy. */
static void
event_post(torpor_object *obj, const struct obj_event *ev, const void *data)
{
    if (obj->depth == 0 && !tpr_object_gated(obj)) {
        tpr_object_enter(obj);
        tpr_event_deliver(obj, ev, data);
        tpr_object_leave(obj);
        return;
    }
    if (ev->type == OBJ_EV_MESSAGE
        && obj->queued >= obj->rt->cfg->max_queued_events) {
        /* Shed load at the edge: the sender is told, the room goes on. */
        char ids[512];
        tpr_log(TORPOR_LOG_WARN, "core", tpr_log_ids(ids, sizeof(ids), obj, ev->conn), "could not queue message: %zu events queued, limit %llu; closing the sender with 1013", (size_t)obj->queued, (unsigned long long)obj->rt->cfg->max_queued_events);
        tpr_conn_close(ev->conn, TORPOR_CLOSE_TRY_AGAIN, "room overloaded",
                       15);
        return;
    }
    struct obj_event *copy = event_copy(ev, data);
    if (copy == NULL) {
        /* Missing: back-pressure on the sender; under memory exhaustion a message is dropped. */
        tpr_log(TORPOR_LOG_ERR, "core", tpr_object_log_ids(obj), "could not queue event: out of memory");
        return;
    }
    if (obj->queue_tail != NULL) {
        obj->queue_tail->next = copy;
    } else {
        obj->queue_head = copy;
    }
    obj->queue_tail = copy;
    obj->queued++;
    obj->shard->stats.events_queued++;
}

void
tpr_event_post_alarm(torpor_object *obj, struct obj_alarm *a)
{
    struct obj_event ev = {
        .type = OBJ_EV_ALARM, .retry = a->retry, .len = a->len,
    };

    /* The name goes with its NUL: handlers get a C string. */
    ev.len = a->len + 1;
    event_post(obj, &ev, a->name);
    obj->shard->stats.alarms_fired++;
}

void
tpr_conn_opened(torpor_conn *conn)
{
    struct obj_event ev = {.type = OBJ_EV_OPEN, .conn = conn};

    if (conn->state != CONN_ATTACHED) {
        return;
    }
    conn->state = CONN_OPEN;
    event_post(conn->object, &ev, NULL);
}

void
tpr_conn_received(torpor_conn *conn, torpor_msg_kind kind, const void *data,
                  size_t len)
{
    struct obj_event ev = {
        .type = OBJ_EV_MESSAGE, .conn = conn, .kind = (uint8_t)kind,
        .len = len,
    };

    if (conn->state != CONN_OPEN || conn->close_held) {
        return;     /* nothing is delivered after a close was asked for */
    }
    conn->object->shard->stats.messages_in++;
    if (tpr_auto_respond(conn, kind, data, len)) {
        return;
    }
    event_post(conn->object, &ev, data);
}

void
tpr_conn_closed(torpor_conn *conn, uint16_t code, const char *reason,
                size_t reason_len, bool clean)
{
    struct obj_event ev = {
        .type = OBJ_EV_CLOSE, .conn = conn, .code = code, .clean = clean,
        .len = reason_len,
    };

    if (conn->state == CONN_CLOSED) {
        return;
    }
    conn->state = CONN_CLOSED;
    /* A transport that keeps its own record is done with ours now. */
    if (tpr_conn_transport(conn)->ops.transport.conn_bytes == 0) {
        conn->transport_done = true;
    }
    torpor_object *obj = conn->object;
    if (obj->hibernating && !obj->awake
        && (obj->klass->ops.klass.flags & TORPOR_CLASS_LAZY_CLOSE)
        && obj->nconns > obj->deferred_closes + 1 && conn->opened) {
        /* Told when the object next wakes; the transport is done now. */
        conn->deferred = true;
        conn->close_code = code;
        conn->close_clean = clean;
        obj->deferred_closes++;
        tpr_runtime_conn_gone(obj->rt);
        return;
    }
    event_post(obj, &ev, reason);
}
