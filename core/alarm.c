/*
 * core/alarm.c: alarms, an object's named timers kept in storage.
 *
 * Setting or deleting an alarm is a write of the current event, so it
 * commits atomically with the state it belongs to.  A poller asks the
 * backend every alarm_poll_ms for alarms that are due, wakes each one's
 * object and delivers an alarm event; the outcome of the handler is a
 * write of that event too: the alarm is deleted when the handler
 * succeeded (unless it set the alarm again), or moved to a later time
 * with exponential backoff when it failed.  Until that commit is durable
 * the alarm stays in storage, so a crash at any point fires it again:
 * delivery is at least once.  The retry count lives in memory only, and
 * starts again from 0 after a restart.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/runtime.h"
#include "core/storage.h"

/* Retries after the first failure; the backoff doubles each time. */
#define ALARM_MAX_RETRIES 6
#define ALARM_POLL_LIMIT 256

static struct obj_alarm *
alarm_find(torpor_object *obj, const void *name, size_t len)
{
    for (struct obj_alarm *a = obj->alarms; a != NULL; a = a->next) {
        if (a->len == len && memcmp(a->name, name, len) == 0) {
            return a;
        }
    }
    return NULL;
}

static struct obj_alarm *
alarm_make(torpor_object *obj, const void *name, size_t len)
{
    struct obj_alarm *a = calloc(1, sizeof(*a) + len + 1);

    if (a == NULL) {
        return NULL;
    }
    a->len = len;
    memcpy(a->name, name, len);
    a->next = obj->alarms;
    obj->alarms = a;
    return a;
}

static void
alarm_unlink(torpor_object *obj, struct obj_alarm *a)
{
    struct obj_alarm **pp = &obj->alarms;

    while (*pp != a) {
        pp = &(*pp)->next;
    }
    *pp = a->next;
    if (obj->alarm_current == a) {
        obj->alarm_current = NULL;
    }
    free(a);
}

void
tpr_alarms_free(torpor_object *obj)
{
    while (obj->alarms != NULL) {
        alarm_unlink(obj, obj->alarms);
    }
}

void
tpr_alarm_abandon(torpor_object *obj, const void *name, size_t len)
{
    struct obj_alarm *a = alarm_find(obj, name, len);

    if (a != NULL) {
        a->inflight = false;
    }
}

/* ---- the outcome of an alarm event ---- */

/* batch_sets: whether the event's batch sets alarm a again. */
static bool
batch_sets(const struct obj_batch *b, const struct obj_alarm *a)
{
    for (size_t i = 0; i < b->n; i++) {
        const torpor_write *w = &b->writes[i];
        if (w->kind == TORPOR_WRITE_ALARM_SET && w->key.len == a->len
            && memcmp(w->key.data, a->name, a->len) == 0) {
            return true;
        }
    }
    return false;
}

void
tpr_alarm_event_end(torpor_object *obj)
{
    struct obj_alarm *a = obj->alarm_current;
    torpor_bytes name, none = {.data = NULL, .len = 0};
    torpor_err err;

    if (a == NULL) {
        return;
    }
    obj->alarm_current = NULL;
    name = (torpor_bytes){.data = a->name, .len = a->len};
    if (!obj->alarm_failed) {
        a->retry = 0;
        err = batch_sets(&obj->batch, a)
                  ? TORPOR_OK
                  : tpr_batch_add(&obj->batch, TORPOR_WRITE_ALARM_DELETE,
                                  name, none, 0);
    } else if (a->retry >= ALARM_MAX_RETRIES) {
        obj->shard->stats.alarms_failed++;
        tpr_log(TORPOR_LOG_ERR, "core", tpr_object_log_ids(obj), "alarm \"%s\" failed %u times; giving it up", a->name, a->retry + 1);
        a->retry = 0;
        err = tpr_batch_add(&obj->batch, TORPOR_WRITE_ALARM_DELETE, name, none,
                            0);
    } else {
        uint64_t delay = obj->rt->cfg->alarm_retry_ms << a->retry;
        a->retry++;
        obj->shard->stats.alarms_failed++;
        tpr_log(TORPOR_LOG_WARN, "core", tpr_object_log_ids(obj), "alarm \"%s\" handler failed; retry %u in %llu ms", a->name, a->retry, (unsigned long long)delay);
        err = tpr_batch_add(&obj->batch, TORPOR_WRITE_ALARM_SET, name, none,
                            tpr_wall_ms() + delay);
    }
    if (err != TORPOR_OK) {
        /* The alarm stays as it was in storage and fires again. */
        a->inflight = false;
        return;
    }
    a->committing = true;
}

void
tpr_alarm_committed(torpor_object *obj, bool ok)
{
    struct obj_alarm *a = obj->alarms;

    while (a != NULL) {
        struct obj_alarm *next = a->next;
        if (a->committing) {
            a->committing = false;
            a->inflight = false;
            if (ok && a->retry == 0) {
                alarm_unlink(obj, a);
            }
        }
        a = next;
    }
}

/* ---- the host's alarm calls ---- */

static torpor_err
alarm_check(const torpor_object *obj, torpor_bytes name)
{
    if (!obj->in_event) {
        return TORPOR_ESTATE;
    }
    if (obj->rt->storage.plugin == NULL) {
        return TORPOR_EUNSUPPORTED;
    }
    if ((name.len > 0 && name.data == NULL)
        || memchr(name.data ? name.data : "", 0, name.len) != NULL) {
        return TORPOR_EINVAL;
    }
    return name.len > obj->rt->storage.max_key_bytes ? TORPOR_ELIMIT
                                                     : TORPOR_OK;
}

torpor_err
tpr_object_alarm_set(torpor_object *obj, torpor_bytes name, uint64_t time_ms)
{
    torpor_bytes none = {.data = NULL, .len = 0};
    torpor_err err = alarm_check(obj, name);

    if (err != TORPOR_OK) {
        return err;
    }
    return tpr_batch_add(&obj->batch, TORPOR_WRITE_ALARM_SET, name, none,
                         time_ms);
}

torpor_err
tpr_object_alarm_delete(torpor_object *obj, torpor_bytes name)
{
    torpor_bytes none = {.data = NULL, .len = 0};
    torpor_err err = alarm_check(obj, name);

    if (err != TORPOR_OK) {
        return err;
    }
    return tpr_batch_add(&obj->batch, TORPOR_WRITE_ALARM_DELETE, name, none,
                         0);
}

struct alarm_list_req {
    torpor_object *obj;
    torpor_storage_object object;   /* borrows obj's name */
    torpor_storage_alarms_cb cb;
    void *arg;
};

static bool
alarm_name_eq(torpor_bytes a, torpor_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/*
 * alarm_on_list hands the object's alarms to the class with the event's
 * own changes applied in order: a buffered set replaces or adds, a delete
 * removes.
 */
static void
alarm_on_list(void *arg, torpor_err err, const torpor_alarm *alarms,
              size_t n)
{
    struct alarm_list_req *req = arg;
    torpor_object *obj = req->obj;
    const struct obj_batch *b = &obj->batch;
    torpor_alarm *merged = NULL;
    size_t m = 0;

    tpr_object_enter(obj);
    obj->reads--;
    if (err == TORPOR_OK) {
        merged = malloc((n + b->n + 1) * sizeof(*merged));
        err = merged == NULL ? TORPOR_ENOMEM : TORPOR_OK;
    }
    if (err == TORPOR_OK) {
        memcpy(merged, alarms, n * sizeof(*merged));
        m = n;
    }
    for (size_t i = 0; err == TORPOR_OK && i < b->n; i++) {
        const torpor_write *w = &b->writes[i];
        size_t k;
        if (w->kind != TORPOR_WRITE_ALARM_SET
            && w->kind != TORPOR_WRITE_ALARM_DELETE) {
            continue;
        }
        for (k = 0; k < m && !alarm_name_eq(merged[k].name, w->key); k++) {
        }
        if (w->kind == TORPOR_WRITE_ALARM_DELETE) {
            if (k < m) {
                merged[k] = merged[--m];
            }
            continue;
        }
        if (k == m) {
            merged[m].object = req->object;
            merged[m].name = w->key;
            m++;
        }
        merged[k].time_ms = w->time_ms;
    }
    req->cb(req->arg, err, merged, m);
    free(merged);
    tpr_event_settle(obj);
    tpr_object_leave(obj);
    free(req);
}

torpor_err
tpr_object_alarm_list(torpor_object *obj, torpor_storage_alarms_cb cb,
                      void *arg)
{
    if (!obj->in_event) {
        return TORPOR_ESTATE;
    }
    if (obj->rt->storage.plugin == NULL) {
        return TORPOR_EUNSUPPORTED;
    }
    struct alarm_list_req *req = malloc(sizeof(*req));
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->obj = obj;
    req->cb = cb;
    req->arg = arg;
    memcpy(req->object.id, obj->id.bytes, sizeof(req->object.id));
    req->object.class_name = obj->klass->desc.name;
    req->object.name.data = obj->name;
    req->object.name.len = obj->name_len;
    torpor_err err = tpr_storage_alarms(&obj->rt->storage, obj->shard->loop,
                                        &req->object, alarm_on_list, req);
    if (err != TORPOR_OK) {
        free(req);
        return err;
    }
    obj->reads++;
    return TORPOR_OK;
}

/* ---- the poller ---- */

/*
 * A due alarm on its way from the poller, on the main thread, to its
 * object's shard: the object may only be touched there.
 */
struct alarm_fire_task {
    torpor_task task;
    struct tpr_runtime *rt;
    struct torpor_plugin_ctx *klass;
    size_t name_len;            /* the object's name, then the alarm's */
    size_t alarm_len;
    uint8_t bytes[];
};

/* alarm_fire delivers one due alarm; on the object's shard thread. */
static void
alarm_fire(struct tpr_runtime *rt, struct torpor_plugin_ctx *klass,
           torpor_bytes name, torpor_bytes alarm)
{
    torpor_object *obj;

    if (tpr_object_get(rt, klass, name.data, name.len, &obj) != TORPOR_OK) {
        return;     /* out of memory: the next poll tries again */
    }
    struct obj_alarm *a = alarm_find(obj, alarm.data, alarm.len);
    if (a == NULL) {
        a = alarm_make(obj, alarm.data, alarm.len);
    }
    if (a == NULL || a->inflight) {
        if (obj->nconns == 0 && obj->depth == 0 && !tpr_object_gated(obj)
            && obj->queue_head == NULL) {
            tpr_object_free(obj);
        }
        return;
    }
    a->inflight = true;
    tpr_event_post_alarm(obj, a);
}

static void
alarm_fire_run(torpor_task *task)
{
    struct alarm_fire_task *t = (struct alarm_fire_task *)task;
    torpor_bytes name = {.data = t->bytes, .len = t->name_len};
    torpor_bytes alarm = {.data = t->bytes + t->name_len,
                          .len = t->alarm_len};

    if (!tpr_runtime_stopping(t->rt)) {
        alarm_fire(t->rt, t->klass, name, alarm);
    }
    free(t);
}

/* alarm_dispatch sends one due alarm to its object's shard. */
static void
alarm_dispatch(struct tpr_runtime *rt, const torpor_alarm *due)
{
    struct torpor_plugin_ctx *klass =
        tpr_runtime_class(rt, due->object.class_name);

    if (klass == NULL) {
        tpr_log(TORPOR_LOG_WARN, "core", NULL, "alarm of an object of class \"%s\" is due, but no such class is loaded", due->object.class_name);
        return;
    }
    struct tpr_shard *shard = tpr_runtime_shard(rt, due->object.id);
    if (shard->loop == rt->loop) {
        alarm_fire(rt, klass, due->object.name, due->name);
        return;
    }
    struct alarm_fire_task *t =
        malloc(sizeof(*t) + due->object.name.len + due->name.len);
    if (t == NULL) {
        return;     /* the next poll tries again */
    }
    t->task.run = alarm_fire_run;
    t->rt = rt;
    t->klass = klass;
    t->name_len = due->object.name.len;
    t->alarm_len = due->name.len;
    if (t->name_len > 0) {
        memcpy(t->bytes, due->object.name.data, t->name_len);
    }
    if (t->alarm_len > 0) {
        memcpy(t->bytes + t->name_len, due->name.data, t->alarm_len);
    }
    tpr_loop_post(shard->loop, &t->task);
}

static void
alarm_on_due(void *arg, torpor_err err, const torpor_alarm *alarms, size_t n)
{
    struct tpr_runtime *rt = arg;

    rt->alarm_polling = false;
    if (tpr_runtime_stopping(rt)) {
        return;
    }
    if (err != TORPOR_OK) {
        tpr_log(TORPOR_LOG_WARN, "core", NULL, "could not read due alarms: %s", tpr_strerror(err));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        alarm_dispatch(rt, &alarms[i]);
    }
}

static void
alarm_on_timer(torpor_timer *timer, void *arg)
{
    struct tpr_runtime *rt = arg;

    if (!rt->alarm_polling && !tpr_runtime_stopping(rt)) {
        rt->alarm_polling =
            tpr_storage_alarms_due(&rt->storage, rt->loop, tpr_wall_ms(),
                                   ALARM_POLL_LIMIT, alarm_on_due, rt)
            == TORPOR_OK;
    }
    tpr_timer_arm(timer, rt->cfg->alarm_poll_ms);
}

torpor_err
tpr_alarms_start(struct tpr_runtime *rt)
{
    torpor_err err = tpr_timer_open(rt->loop, alarm_on_timer, rt,
                                    &rt->alarm_timer);

    if (err == TORPOR_OK) {
        tpr_timer_arm(rt->alarm_timer, 0);
    }
    return err;
}

void
tpr_alarms_stop(struct tpr_runtime *rt)
{
    tpr_timer_close(rt->alarm_timer);
    rt->alarm_timer = NULL;
}
