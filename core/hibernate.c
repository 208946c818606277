/*
 * core/hibernate.c: freeing the instance of an object that has been idle
 * for its class's hibernate_after_ms, while its connections stay open.
 *
 * The timer is armed once per wake and never touched on the per-message
 * path: an event only records its time, and when the timer fires it either
 * hibernates the object or re-arms for what is left of the quiet period.
 *
 * An object stays awake while a handler runs or waits for a storage read,
 * while its writes are being committed, while events wait in its queue,
 * and always if its class sets hibernate_after_ms to 0.
 */
#include "build-config.h"

#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/runtime.h"

/* hibernate_busy: what keeps obj awake right now, or NULL. */
static const char *
hibernate_busy(const torpor_object *obj)
{
    if (obj->depth > 0 || obj->in_event || obj->parked != NULL) {
        return "a handler is running or waiting for storage";
    }
    if (obj->committing) {
        return "a commit is in flight";
    }
    if (obj->queue_head != NULL) {
        return "events are queued";
    }
    if (obj->reads > 0) {
        return "a storage read is in flight";
    }
    return NULL;
}

static void
hibernate_on_timer(torpor_timer *timer, void *arg)
{
    torpor_object *obj = arg;
    uint32_t after = obj->klass->ops.klass.hibernate_after_ms;
    uint64_t now = tpr_now_ms();
    const char *busy = hibernate_busy(obj);

    if (busy != NULL) {
        tpr_log(TORPOR_LOG_DEBUG, "core", obj->log_ids, "stays awake: %s", busy);
        tpr_timer_arm(timer, after);
        return;
    }
    uint64_t idle = now - obj->last_active_ms;
    if (idle < after) {
        tpr_timer_arm(timer, after - idle);
        return;
    }
    const struct torpor_class_ops *ops = &obj->klass->ops.klass;
    tpr_object_enter(obj);
    if (ops->hibernate != NULL) {
        torpor_err err = ops->hibernate(obj->instance);
        if (err != TORPOR_OK) {
            tpr_log(TORPOR_LOG_WARN, obj->klass->desc.name, obj->log_ids, "hibernate handler failed: %s", tpr_strerror(err));
        }
    }
    tpr_object_sleep(obj);      /* frees timer */
    if (obj->nconns > 0) {
        obj->hibernating = true;
        obj->shard->stats.objects_hibernating++;
        obj->shard->stats.hibernations++;
        tpr_log(TORPOR_LOG_INFO, "core", obj->log_ids, "object hibernated after %llu ms idle, %zu connections kept", (unsigned long long)idle, obj->nconns);
    }
    tpr_object_leave(obj);      /* may free obj */
}

void
tpr_object_idle_start(torpor_object *obj)
{
    uint32_t after = obj->klass->ops.klass.hibernate_after_ms;

    if (after == 0 || obj->idle_timer != NULL) {
        return;
    }
    obj->last_active_ms = tpr_now_ms();
    if (tpr_timer_open(obj->shard->loop, hibernate_on_timer, obj,
                       &obj->idle_timer) != TORPOR_OK) {
        /* Only costs memory: the object stays awake until it empties. */
        tpr_log(TORPOR_LOG_WARN, "core", obj->log_ids, "could not arm hibernation: out of memory");
        return;
    }
    tpr_timer_arm(obj->idle_timer, after);
}
