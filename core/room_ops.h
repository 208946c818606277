/*
 * core/room_ops.h: rooms on behalf of backend services (torpor/room.h):
 * the host's room_* calls, the senders of published messages, and the
 * taps that follow every room's events.
 *
 * room_ops.c resolves a call's room and carries it to the room's loop;
 * room_publish.c runs a published message through the room's event queue
 * and reports when the event is over; room_tap.c hands events to taps.
 */
#ifndef TORPOR_CORE_ROOM_OPS_H
#define TORPOR_CORE_ROOM_OPS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/plugin.h>

struct tpr_runtime;
struct tpr_shard;
struct tpr_publish;
struct obj_event;

/* Plugins that may have a tap set at once. */
#define TPR_TAPS_MAX 4

struct tpr_tap {
    struct torpor_plugin_ctx *plugin;   /* NULL: a free slot */
    torpor_room_tap_cb cb;              /* __atomic; NULL: off */
    void *arg;                          /* __atomic */
};

/* One runtime's share: its taps and the publishes in flight per shard. */
struct tpr_room_ops {
    unsigned taps_on;                   /* __atomic: taps with a cb */
    pthread_mutex_t taps_lock;          /* serialises room_tap calls */
    struct tpr_tap taps[TPR_TAPS_MAX];
    struct tpr_publish **inflight;      /* per shard; its thread only */
    size_t nshards;
};

/*
 * tpr_room_ops_new makes rt->room_ops once rt's shards exist.
 * TORPOR_ENOMEM.  Main thread.
 */
torpor_err tpr_room_ops_new(struct tpr_runtime *rt);

/*
 * tpr_room_ops_finish completes the publishes that never ran, with
 * TORPOR_ECLOSED, and frees their senders.  At shutdown, once no loop runs
 * and the objects are freed, before the plugins are destroyed.
 */
void tpr_room_ops_finish(struct tpr_runtime *rt);

/* tpr_room_ops_free frees rt->room_ops; last. */
void tpr_room_ops_free(struct tpr_runtime *rt);

/* The host table's members; see torpor/host.h. */
torpor_err tpr_room_publish(torpor_plugin_ctx *self,
                            const torpor_room_ref *ref,
                            const torpor_room_msg *msg, void *tconn,
                            torpor_room_done_cb cb, void *arg);
torpor_err tpr_room_deliver(torpor_plugin_ctx *self,
                            const torpor_room_ref *ref,
                            const torpor_room_msg *msg,
                            torpor_room_done_cb cb, void *arg);
torpor_err tpr_room_conns(torpor_plugin_ctx *self, const torpor_room_ref *ref,
                          const torpor_bytes *tag, torpor_room_conns_cb cb,
                          void *arg);
torpor_err tpr_room_storage_get(torpor_plugin_ctx *self,
                                const torpor_room_ref *ref,
                                const torpor_bytes *keys, size_t n,
                                torpor_storage_rows_cb cb, void *arg);
torpor_err tpr_room_storage_list(torpor_plugin_ctx *self,
                                 const torpor_room_ref *ref,
                                 const torpor_range *range,
                                 torpor_storage_rows_cb cb, void *arg);
torpor_err tpr_room_tap(torpor_plugin_ctx *self, torpor_room_tap_cb cb,
                        void *arg);
torpor_conn_origin tpr_conn_origin(const torpor_conn *conn);

/* The id of every backend's sender; clients count from 1. */
#define TPR_CONN_BACKEND_ID 0

/*
 * Published messages, as the event queue sees them (room_publish.c).  The
 * sender is a connection record whose id is TPR_CONN_BACKEND_ID.
 * tpr_publish_handled: its message handler returned err; the room now
 * waits for the event to end.  tpr_publish_end: the room's current
 * published event is over, with err (TORPOR_OK, or why its effects were
 * lost); completes it and frees its sender.  tpr_publish_failed: the
 * event of sender could not even start.  All on the room's loop.
 */
void tpr_publish_handled(torpor_object *obj, torpor_conn *sender,
                         torpor_err err);
void tpr_publish_end(torpor_object *obj, torpor_err err);
void tpr_publish_failed(torpor_conn *sender, torpor_err err);

/*
 * tpr_publish_transport and tpr_publish_tconn: the transport of a
 * backend's sender, and what its ops take for it.  A sender lies in no
 * loop's store, so conn_store.c asks here for what a record of the store
 * finds through its block.  Any thread.
 */
struct torpor_plugin_ctx *tpr_publish_transport(const torpor_conn *sender);
void *tpr_publish_tconn(const torpor_conn *sender);

/*
 * tpr_publish_run starts a publish on the room's loop; room_ops.c hands it
 * the record it made, with the room already found or made (obj NULL: no
 * room in memory has the id).
 */
void tpr_publish_run(struct tpr_publish *p, torpor_object *obj);

/*
 * tpr_publish_new copies what room_publish was given into a new record.
 * TORPOR_ENOMEM.
 */
torpor_err tpr_publish_new(struct torpor_plugin_ctx *transport,
                           const torpor_room_msg *msg, void *tconn,
                           torpor_room_done_cb cb, void *arg,
                           struct tpr_publish **out);

/* tpr_publish_refuse completes p with err and frees it, unrun. */
void tpr_publish_refuse(struct tpr_publish *p, torpor_err err);

/*
 * tpr_room_tap_on: whether any tap is set; the one branch a room pays per
 * event when none is.
 */
static inline bool
tpr_room_tap_on(const struct tpr_room_ops *ro)
{
    return __atomic_load_n(&ro->taps_on, __ATOMIC_RELAXED) != 0;
}

/* tpr_room_tap_emit hands ev of obj to every tap set; room_tap.c. */
void tpr_room_tap_emit(torpor_object *obj, const struct obj_event *ev,
                       const void *data);

#endif /* TORPOR_CORE_ROOM_OPS_H */
