/*
 * core/hibernate.c: freeing the instance of an object that has been idle
 * for its class's hibernate_after_ms, while its connections stay open.
 *
 * Each loop keeps the awake objects whose class hibernates in one binary
 * heap, by the time each is next looked at, under one timer.  A timer per
 * object would cost a libevent event (160 bytes) per awake room, and,
 * freed at hibernation, leave a hole of that size between the records of
 * rooms that stay.  An object is queued once per wake and never touched
 * on the per-message path: an event only records its time, and when its
 * turn comes it either hibernates or is queued again for what is left of
 * the quiet period.
 *
 * An object stays awake while a handler runs or waits for a storage read,
 * while its writes are being committed, while events wait in its queue,
 * and always if its class sets hibernate_after_ms to 0.
 */
#include "build-config.h"

#include <stdlib.h>

#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/runtime.h"

struct idle_entry {
    uint64_t due_ms;
    torpor_object *obj;
};

struct tpr_idle_queue {
    struct tpr_shard *shard;
    torpor_timer *timer;
    uint64_t armed_ms;          /* when the timer fires; 0: disarmed */
    struct idle_entry *heap;    /* heap[0] is due first */
    uint32_t n;
    uint32_t cap;
};

/* idle_put stores e at i and tells its object where it is. */
static void
idle_put(struct tpr_idle_queue *q, uint32_t i, struct idle_entry e)
{
    q->heap[i] = e;
    e.obj->idle_pos = i + 1;
}

static void
idle_up(struct tpr_idle_queue *q, uint32_t i)
{
    struct idle_entry e = q->heap[i];

    while (i > 0 && q->heap[(i - 1) / 2].due_ms > e.due_ms) {
        idle_put(q, i, q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    idle_put(q, i, e);
}

static void
idle_down(struct tpr_idle_queue *q, uint32_t i)
{
    struct idle_entry e = q->heap[i];

    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= q->n) {
            break;
        }
        if (c + 1 < q->n && q->heap[c + 1].due_ms < q->heap[c].due_ms) {
            c++;
        }
        if (q->heap[c].due_ms >= e.due_ms) {
            break;
        }
        idle_put(q, i, q->heap[c]);
        i = c;
    }
    idle_put(q, i, e);
}

/* idle_arm points the timer at the earliest entry. */
static void
idle_arm(struct tpr_idle_queue *q)
{
    if (q->n == 0) {
        if (q->armed_ms != 0) {
            tpr_timer_disarm(q->timer);
            q->armed_ms = 0;
        }
        return;
    }
    uint64_t due = q->heap[0].due_ms;
    if (due == q->armed_ms) {
        return;
    }
    uint64_t now = tpr_now_ms();
    tpr_timer_arm(q->timer, due > now ? due - now : 0);
    q->armed_ms = due;
}

/* idle_push queues obj to be looked at when due_ms comes; false: no memory. */
static bool
idle_push(struct tpr_idle_queue *q, torpor_object *obj, uint64_t due_ms)
{
    if (q->n == q->cap) {
        uint32_t cap = q->cap == 0 ? 64 : q->cap * 2;
        struct idle_entry *h = realloc(q->heap, (size_t)cap * sizeof(*h));
        if (h == NULL) {
            return false;
        }
        q->heap = h;
        q->cap = cap;
    }
    q->heap[q->n] = (struct idle_entry){.due_ms = due_ms, .obj = obj};
    idle_up(q, q->n++);
    return true;
}

/* idle_remove_at takes entry i out. */
static void
idle_remove_at(struct tpr_idle_queue *q, uint32_t i)
{
    q->heap[i].obj->idle_pos = 0;
    if (i != --q->n) {
        idle_put(q, i, q->heap[q->n]);
        idle_down(q, i);
        idle_up(q, i);
    }
    /* A quiet loop gives back what a busy one needed. */
    if (q->cap > 64 && q->n < q->cap / 4) {
        struct idle_entry *h = realloc(q->heap, (size_t)(q->cap / 2)
                                                    * sizeof(*h));
        if (h != NULL) {
            q->heap = h;
            q->cap /= 2;
        }
    }
}

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

/*
 * hibernate_look decides for obj, just taken from the queue: hibernate it,
 * or queue it again.
 */
static void
hibernate_look(struct tpr_idle_queue *q, torpor_object *obj, uint64_t now)
{
    uint32_t after = obj->klass->ops.klass.hibernate_after_ms;
    const char *busy = hibernate_busy(obj);
    uint64_t idle = now - obj->last_active_ms;
    uint64_t due = busy != NULL ? now + after : obj->last_active_ms + after;

    if (busy != NULL) {
        tpr_log(TORPOR_LOG_DEBUG, "core", tpr_object_log_ids(obj), "stays awake: %s", busy);
    }
    if (busy != NULL || idle < after) {
        if (!idle_push(q, obj, due)) {
            /* Only costs memory: it stays awake until it empties. */
            tpr_log(TORPOR_LOG_WARN, "core", tpr_object_log_ids(obj), "could not arm hibernation: out of memory");
        }
        return;
    }
    const struct torpor_class_ops *ops = &obj->klass->ops.klass;
    tpr_object_enter(obj);
    if (ops->hibernate != NULL) {
        torpor_err err = ops->hibernate(obj->instance);
        if (err != TORPOR_OK) {
            tpr_log(TORPOR_LOG_WARN, obj->klass->desc.name, tpr_object_log_ids(obj), "hibernate handler failed: %s", tpr_strerror(err));
        }
    }
    tpr_object_sleep(obj);
    if (obj->nconns > 0) {
        obj->hibernating = true;
        obj->shard->stats.objects_hibernating++;
        obj->shard->stats.hibernations++;
        tpr_log(TORPOR_LOG_INFO, "core", tpr_object_log_ids(obj), "object hibernated after %llu ms idle, %zu connections kept", (unsigned long long)idle, (size_t)obj->nconns);
    }
    tpr_object_leave(obj);      /* may free obj */
}

static void
hibernate_on_timer(torpor_timer *timer, void *arg)
{
    struct tpr_idle_queue *q = arg;
    uint64_t now = tpr_now_ms();

    (void)timer;
    q->armed_ms = 0;
    /* Whatever is queued again is due later than now: this ends. */
    while (q->n > 0 && q->heap[0].due_ms <= now) {
        torpor_object *obj = q->heap[0].obj;
        idle_remove_at(q, 0);
        hibernate_look(q, obj, now);
    }
    idle_arm(q);
}

torpor_err
tpr_idle_queue_new(struct tpr_shard *shard, struct tpr_idle_queue **out)
{
    struct tpr_idle_queue *q = calloc(1, sizeof(*q));

    *out = NULL;
    if (q == NULL) {
        return TORPOR_ENOMEM;
    }
    q->shard = shard;
    if (tpr_timer_open(shard->loop, hibernate_on_timer, q, &q->timer)
        != TORPOR_OK) {
        free(q);
        return TORPOR_ENOMEM;
    }
    *out = q;
    return TORPOR_OK;
}

void
tpr_idle_queue_free(struct tpr_idle_queue *q)
{
    if (q == NULL) {
        return;
    }
    tpr_timer_close(q->timer);
    free(q->heap);
    free(q);
}

void
tpr_object_idle_start(torpor_object *obj)
{
    uint32_t after = obj->klass->ops.klass.hibernate_after_ms;
    struct tpr_idle_queue *q = obj->shard->idle;

    if (after == 0 || obj->idle_pos != 0) {
        return;
    }
    obj->last_active_ms = tpr_now_ms();
    if (!idle_push(q, obj, obj->last_active_ms + after)) {
        /* Only costs memory: the object stays awake until it empties. */
        tpr_log(TORPOR_LOG_WARN, "core", tpr_object_log_ids(obj), "could not arm hibernation: out of memory");
        return;
    }
    idle_arm(q);
}

void
tpr_object_idle_stop(torpor_object *obj)
{
    struct tpr_idle_queue *q = obj->shard->idle;

    if (obj->idle_pos == 0) {
        return;
    }
    idle_remove_at(q, obj->idle_pos - 1);
    idle_arm(q);
}
