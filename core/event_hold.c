/*
 * core/event_hold.c: a class holding its object's current event open while
 * it waits for something outside the core (a worker process, a remote
 * service), and what it needs to finish the event from elsewhere: the
 * object's loop and id.
 *
 * A hold counts as a read of the event (obj->reads), so everything that
 * waits for an event's reads waits for its holds too: the next event, the
 * commit, hibernation, freeing the object.  obj->holds only keeps a stray
 * release from ending someone else's read.
 */
#include "build-config.h"

#include <string.h>

#include "core/loop.h"
#include "core/object_internal.h"
#include "core/runtime.h"

torpor_err
tpr_event_hold(torpor_object *obj)
{
    if (!obj->in_event) {
        return TORPOR_ESTATE;
    }
    obj->holds++;
    obj->reads++;
    tpr_runtime_hold_taken(obj->shard->rt);
    return TORPOR_OK;
}

void
tpr_event_release(torpor_object *obj, torpor_err result)
{
    struct tpr_runtime *rt = obj->shard->rt;

    if (obj->holds == 0) {
        return;
    }
    tpr_object_enter(obj);
    obj->holds--;
    obj->reads--;
    if (result != TORPOR_OK && obj->alarm_current != NULL) {
        obj->alarm_failed = true;   /* retried with backoff at event end */
    }
    tpr_event_settle(obj);
    tpr_object_leave(obj);
    /* Last: a shutdown may end here, and obj may be gone already. */
    tpr_runtime_hold_gone(rt);
}

void
tpr_object_id_bytes(const torpor_object *obj, uint8_t out[16])
{
    memcpy(out, obj->id.bytes, sizeof(obj->id.bytes));
}

torpor_loop *
tpr_object_loop(const torpor_object *obj)
{
    return obj->shard->loop;
}
