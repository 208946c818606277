/*
 * core/room_publish.c: messages a backend service publishes into a room.
 *
 * A published message takes the path of a client's: it is queued behind
 * the room's other events, wakes the room, and runs the class's message
 * handler.  Its sender is a connection record that belongs to no client:
 * id TPR_CONN_BACKEND_ID, the publishing transport's ops (so what the
 * class sends to it goes back to the backend), and on no list, so no
 * broadcast reaches it and nothing ever opens or closes it.  Nor is it in
 * a loop's store of connections: the transport and tconn that a stored
 * record finds through its block, it carries in its publish.
 *
 * The backend hears back once the event is really over: the handler has
 * returned, its storage reads have completed and its writes are durable
 * (or were lost, which it is told).  event.c calls tpr_publish_handled
 * when the handler returned and tpr_publish_end when the event ended
 * without writes; object_storage.c calls tpr_publish_end when the
 * event's commit completed.  Between those, obj->publishing holds the
 * record: the input gate keeps the room's next event waiting meanwhile,
 * so there is at most one per room.
 */
#include "build-config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/loader.h"
#include "core/object_internal.h"
#include "core/room_ops.h"
#include "core/runtime.h"

struct tpr_publish {
    /*
     * The sender the class sees.  First, so that the event code can
     * cast the sender back to its publish.
     */
    torpor_conn sender;
    struct torpor_plugin_ctx *transport;
    void *tconn;
    struct tpr_runtime *rt;
    struct tpr_shard *shard;        /* once it runs; for the list */
    torpor_room_done_cb cb;
    void *arg;
    torpor_err handler_err;
    struct tpr_publish *prev;       /* in flight on shard */
    struct tpr_publish *next;
    uint8_t kind;
    size_t len;
    uint8_t data[];
};

_Static_assert(offsetof(struct tpr_publish, sender) == 0,
               "the sender must start the record");

torpor_err
tpr_publish_new(struct torpor_plugin_ctx *transport,
                const torpor_room_msg *msg, void *tconn,
                torpor_room_done_cb cb, void *arg, struct tpr_publish **out)
{
    struct tpr_publish *p = calloc(1, sizeof(*p) + msg->data.len);

    *out = NULL;
    if (p == NULL) {
        return TORPOR_ENOMEM;
    }
    p->transport = transport;
    p->tconn = tconn;
    p->sender.id = TPR_CONN_BACKEND_ID;
    p->sender.outside = true;
    p->sender.state = CONN_OPEN;
    p->sender.opened = true;
    p->rt = transport->rt;
    p->cb = cb;
    p->arg = arg;
    p->kind = (uint8_t)msg->kind;
    p->len = msg->data.len;
    if (p->len > 0) {
        memcpy(p->data, msg->data.data, p->len);
    }
    *out = p;
    return TORPOR_OK;
}

static struct tpr_publish **
publish_list(struct tpr_publish *p)
{
    return &p->rt->room_ops->inflight[p->shard - p->rt->shards];
}

/* publish_complete tells the backend and frees p. */
static void
publish_complete(struct tpr_publish *p, torpor_err err)
{
    torpor_room_result res = {
        .size = sizeof(res), .err = err, .handler_err = p->handler_err,
    };

    if (p->shard != NULL) {
        if (p->prev != NULL) {
            p->prev->next = p->next;
        } else {
            *publish_list(p) = p->next;
        }
        if (p->next != NULL) {
            p->next->prev = p->prev;
        }
    }
    p->cb(p->arg, &res);
    /* What a class may have set on the sender; the record is p's. */
    tpr_conn_free(&p->sender);
    free(p);
}

void
tpr_publish_refuse(struct tpr_publish *p, torpor_err err)
{
    publish_complete(p, err);
}

void
tpr_publish_run(struct tpr_publish *p, torpor_object *obj)
{
    if (obj == NULL) {
        publish_complete(p, TORPOR_ENOENT);
        return;
    }
    p->sender.object = obj;
    p->shard = obj->shard;
    struct tpr_publish **list = publish_list(p);
    p->next = *list;
    if (*list != NULL) {
        (*list)->prev = p;
    }
    *list = p;

    /* Raised, so that a room just made for this is freed on the way out
     * if the message never becomes an event. */
    tpr_object_enter(obj);
    if (tpr_auto_respond(&p->sender, p->kind, p->data, p->len)) {
        obj->shard->stats.messages_in++;
        publish_complete(p, TORPOR_OK);
    } else if (obj->queued >= obj->rt->cfg->max_queued_events) {
        /* A client would be closed with 1013; a backend retries. */
        publish_complete(p, TORPOR_EAGAIN);
    } else {
        /* Queued, since depth is raised, and delivered on the way out. */
        tpr_conn_received(&p->sender, p->kind, p->data, p->len);
    }
    tpr_object_leave(obj);
}

void
tpr_publish_handled(torpor_object *obj, torpor_conn *sender, torpor_err err)
{
    struct tpr_publish *p = (struct tpr_publish *)sender;

    p->handler_err = err;
    obj->publishing = p;
}

void
tpr_publish_end(torpor_object *obj, torpor_err err)
{
    struct tpr_publish *p = obj->publishing;

    if (p != NULL) {
        obj->publishing = NULL;
        publish_complete(p, err);
    }
}

void
tpr_publish_failed(torpor_conn *sender, torpor_err err)
{
    publish_complete((struct tpr_publish *)sender, err);
}

struct torpor_plugin_ctx *
tpr_publish_transport(const torpor_conn *sender)
{
    return ((const struct tpr_publish *)sender)->transport;
}

void *
tpr_publish_tconn(const torpor_conn *sender)
{
    return ((const struct tpr_publish *)sender)->tconn;
}

void
tpr_room_ops_finish(struct tpr_runtime *rt)
{
    struct tpr_room_ops *ro = rt->room_ops;

    if (ro == NULL) {
        return;
    }
    for (size_t i = 0; i < ro->nshards; i++) {
        while (ro->inflight[i] != NULL) {
            publish_complete(ro->inflight[i], TORPOR_ECLOSED);
        }
    }
}
