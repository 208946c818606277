/*
 * core/ctl/sync.c: run one storage call to completion.
 */
#include "build-config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/ctl/sync.h"
#include "core/loop.h"
#include "core/storage.h"

struct sync_call {
    torpor_loop *loop;
    struct ctl_result *r;
    bool done;
};

static void *
sync_dup(const void *data, size_t len)
{
    /* One byte more, a NUL, so that text keys can be read as strings. */
    char *copy = malloc(len + 1);

    if (copy != NULL) {
        if (len > 0) {
            memcpy(copy, data, len);
        }
        copy[len] = '\0';
    }
    return copy;
}

static void
sync_finish(struct sync_call *c, torpor_err err)
{
    if (c->r->err == TORPOR_OK) {
        c->r->err = err;
    }
    c->done = true;
    tpr_loop_break(c->loop);
}

static void
sync_on_rows(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct sync_call *c = arg;
    struct ctl_result *r = c->r;

    if (err == TORPOR_OK && n > 0) {
        r->rows = calloc(n, sizeof(*r->rows));
        if (r->rows == NULL) {
            err = TORPOR_ENOMEM;
        }
        for (size_t i = 0; r->rows != NULL && i < n; i++) {
            r->rows[i] = rows[i];
            r->rows[i].key.data = sync_dup(rows[i].key.data, rows[i].key.len);
            r->rows[i].value.data = sync_dup(rows[i].value.data,
                                             rows[i].value.len);
            r->nrows++;
            if (r->rows[i].key.data == NULL
                || r->rows[i].value.data == NULL) {
                err = TORPOR_ENOMEM;
                break;
            }
        }
    }
    sync_finish(c, err);
}

static torpor_err
sync_object_copy(torpor_storage_object *dst, const torpor_storage_object *o)
{
    *dst = *o;
    dst->class_name = sync_dup(o->class_name, strlen(o->class_name) + 1);
    dst->name.data = sync_dup(o->name.data, o->name.len);
    return dst->class_name && dst->name.data ? TORPOR_OK : TORPOR_ENOMEM;
}

static void
sync_on_objects(void *arg, torpor_err err, const torpor_storage_object *objs,
                size_t n)
{
    struct sync_call *c = arg;
    struct ctl_result *r = c->r;

    if (err == TORPOR_OK && n > 0) {
        r->objects = calloc(n, sizeof(*r->objects));
        if (r->objects == NULL) {
            err = TORPOR_ENOMEM;
        }
        for (size_t i = 0; r->objects != NULL && i < n; i++) {
            r->nobjects++;
            if (sync_object_copy(&r->objects[i], &objs[i]) != TORPOR_OK) {
                err = TORPOR_ENOMEM;
                break;
            }
        }
    }
    sync_finish(c, err);
}

static void
sync_on_alarms(void *arg, torpor_err err, const torpor_alarm *alarms,
               size_t n)
{
    struct sync_call *c = arg;
    struct ctl_result *r = c->r;

    if (err == TORPOR_OK && n > 0) {
        r->alarms = calloc(n, sizeof(*r->alarms));
        if (r->alarms == NULL) {
            err = TORPOR_ENOMEM;
        }
        for (size_t i = 0; r->alarms != NULL && i < n; i++) {
            r->nalarms++;
            r->alarms[i].time_ms = alarms[i].time_ms;
            r->alarms[i].name.len = alarms[i].name.len;
            r->alarms[i].name.data = sync_dup(alarms[i].name.data,
                                              alarms[i].name.len);
            if (r->alarms[i].name.data == NULL
                || sync_object_copy(&r->alarms[i].object, &alarms[i].object)
                       != TORPOR_OK) {
                err = TORPOR_ENOMEM;
                break;
            }
        }
    }
    sync_finish(c, err);
}

static void
sync_on_done(void *arg, torpor_err err)
{
    sync_finish(arg, err);
}

/* sync_wait runs the loop until the call queued with c completes. */
static torpor_err
sync_wait(struct sync_call *c, torpor_err queued)
{
    if (queued != TORPOR_OK) {
        c->r->err = queued;
        return queued;
    }
    while (!c->done) {
        if (tpr_loop_run(c->loop) != TORPOR_OK) {
            return TORPOR_EIO;
        }
    }
    return c->r->err;
}

void
ctl_result_free(struct ctl_result *r)
{
    for (size_t i = 0; i < r->nrows; i++) {
        free((void *)r->rows[i].key.data);
        free((void *)r->rows[i].value.data);
    }
    for (size_t i = 0; i < r->nobjects; i++) {
        free((void *)r->objects[i].class_name);
        free((void *)r->objects[i].name.data);
    }
    for (size_t i = 0; i < r->nalarms; i++) {
        free((void *)r->alarms[i].name.data);
        free((void *)r->alarms[i].object.class_name);
        free((void *)r->alarms[i].object.name.data);
    }
    free(r->rows);
    free(r->objects);
    free(r->alarms);
    memset(r, 0, sizeof(*r));
}

torpor_err
ctl_objects(struct tpr_storage *s, torpor_loop *loop, const uint8_t *after,
            uint32_t limit, struct ctl_result *r)
{
    struct sync_call c = {.loop = loop, .r = r};

    memset(r, 0, sizeof(*r));
    return sync_wait(&c, tpr_storage_objects(s, loop, after, limit,
                                             sync_on_objects, &c));
}

torpor_err
ctl_list(struct tpr_storage *s, torpor_loop *loop,
         const torpor_storage_object *o, const torpor_range *range,
         struct ctl_result *r)
{
    struct sync_call c = {.loop = loop, .r = r};

    memset(r, 0, sizeof(*r));
    return sync_wait(&c, tpr_storage_list(s, loop, o, range, sync_on_rows,
                                          &c));
}

torpor_err
ctl_alarms(struct tpr_storage *s, torpor_loop *loop,
           const torpor_storage_object *o, struct ctl_result *r)
{
    struct sync_call c = {.loop = loop, .r = r};

    memset(r, 0, sizeof(*r));
    return sync_wait(&c, tpr_storage_alarms(s, loop, o, sync_on_alarms, &c));
}

torpor_err
ctl_commit(struct tpr_storage *s, torpor_loop *loop,
           const torpor_storage_object *o, const torpor_write *writes,
           size_t n)
{
    struct ctl_result r = {0};
    struct sync_call c = {.loop = loop, .r = &r};

    return sync_wait(&c, tpr_storage_commit(s, loop, o, writes, n,
                                            sync_on_done, &c));
}
