/*
 * core/storage.c: limit checks in front of the storage plugin.
 */
#include "build-config.h"

#include <string.h>

#include "core/loader.h"
#include "core/object.h"
#include "core/storage.h"

static const struct torpor_storage_ops *
storage_ops(const struct tpr_storage *s)
{
    return &s->plugin->ops.storage;
}

static torpor_err
storage_check_object(const torpor_storage_object *object)
{
    if (object == NULL || object->class_name == NULL
        || object->name.len > TPR_OBJECT_NAME_MAX
        || (object->name.len > 0 && object->name.data == NULL)) {
        return TORPOR_EINVAL;
    }
    return TORPOR_OK;
}

static torpor_err
storage_check_key(const struct tpr_storage *s, torpor_bytes key)
{
    if (key.len > 0 && key.data == NULL) {
        return TORPOR_EINVAL;
    }
    return key.len > s->max_key_bytes ? TORPOR_ELIMIT : TORPOR_OK;
}

torpor_err
tpr_storage_get(struct tpr_storage *s, torpor_loop *loop,
                const torpor_storage_object *object, const torpor_bytes *keys,
                size_t n, torpor_storage_rows_cb cb, void *arg)
{
    torpor_err err = storage_check_object(object);

    for (size_t i = 0; err == TORPOR_OK && i < n; i++) {
        err = storage_check_key(s, keys[i]);
    }
    if (err != TORPOR_OK) {
        return err;
    }
    return storage_ops(s)->get(s->plugin->state, loop, object, keys, n, cb,
                               arg);
}

torpor_err
tpr_storage_list(struct tpr_storage *s, torpor_loop *loop,
                 const torpor_storage_object *object,
                 const torpor_range *range, torpor_storage_rows_cb cb,
                 void *arg)
{
    torpor_err err = storage_check_object(object);

    if (err == TORPOR_OK) {
        err = storage_check_key(s, range->prefix);
    }
    if (err == TORPOR_OK && range->has_start) {
        err = storage_check_key(s, range->start);
    }
    if (err == TORPOR_OK && range->has_end) {
        err = storage_check_key(s, range->end);
    }
    if (err != TORPOR_OK) {
        return err;
    }
    return storage_ops(s)->list(s->plugin->state, loop, object, range, cb,
                                arg);
}

torpor_err
tpr_storage_commit(struct tpr_storage *s, torpor_loop *loop,
                   const torpor_storage_object *object,
                   const torpor_write *writes, size_t n,
                   torpor_storage_done_cb cb, void *arg)
{
    torpor_err err = storage_check_object(object);

    if (err == TORPOR_OK && n == 0) {
        err = TORPOR_EINVAL;
    }
    for (size_t i = 0; err == TORPOR_OK && i < n; i++) {
        const torpor_write *w = &writes[i];
        err = storage_check_key(s, w->key);
        if (err != TORPOR_OK) {
            break;
        }
        switch (w->kind) {
        case TORPOR_WRITE_PUT:
            if (w->value.len > 0 && w->value.data == NULL) {
                err = TORPOR_EINVAL;
            } else if (w->value.len > s->max_value_bytes) {
                err = TORPOR_ELIMIT;
            }
            break;
        case TORPOR_WRITE_DELETE:
        case TORPOR_WRITE_ALARM_SET:
        case TORPOR_WRITE_ALARM_DELETE:
            break;
        default:
            err = TORPOR_EINVAL;
            break;
        }
    }
    if (err != TORPOR_OK) {
        return err;
    }
    return storage_ops(s)->commit(s->plugin->state, loop, object, writes, n,
                                  cb, arg);
}

torpor_err
tpr_storage_alarms(struct tpr_storage *s, torpor_loop *loop,
                   const torpor_storage_object *object,
                   torpor_storage_alarms_cb cb, void *arg)
{
    torpor_err err = storage_check_object(object);

    if (err != TORPOR_OK) {
        return err;
    }
    return storage_ops(s)->alarms(s->plugin->state, loop, object, cb, arg);
}

torpor_err
tpr_storage_alarms_due(struct tpr_storage *s, torpor_loop *loop,
                       uint64_t before_ms, uint32_t limit,
                       torpor_storage_alarms_cb cb, void *arg)
{
    if (limit == 0) {
        return TORPOR_EINVAL;
    }
    return storage_ops(s)->alarms_due(s->plugin->state, loop, before_ms,
                                      limit, cb, arg);
}

torpor_err
tpr_storage_objects(struct tpr_storage *s, torpor_loop *loop,
                    const uint8_t *after, uint32_t limit,
                    torpor_storage_objects_cb cb, void *arg)
{
    if (limit == 0) {
        return TORPOR_EINVAL;
    }
    return storage_ops(s)->objects(s->plugin->state, loop, after, limit, cb,
                                   arg);
}

torpor_err
tpr_storage_drop(struct tpr_storage *s, torpor_loop *loop,
                 const torpor_storage_object *object,
                 torpor_storage_done_cb cb, void *arg)
{
    torpor_err err = storage_check_object(object);

    if (err != TORPOR_OK) {
        return err;
    }
    return storage_ops(s)->drop(s->plugin->state, loop, object, cb, arg);
}

void
tpr_storage_object_init(torpor_storage_object *o, const char *class_name,
                        const void *name, size_t name_len)
{
    struct tpr_object_id id;

    tpr_object_id_derive(class_name, name, name_len, &id);
    memcpy(o->id, id.bytes, sizeof(o->id));
    o->class_name = class_name;
    o->name.data = name;
    o->name.len = name_len;
}
