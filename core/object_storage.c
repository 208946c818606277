/*
 * core/object_storage.c: the storage a class sees within an event.
 *
 * Reads go to the backend and come back overlaid with the event's own
 * buffered writes, so a handler reads what it wrote.  Writes are buffered
 * and committed as one atomic batch when the event ends (event.c calls
 * tpr_storage_commit_event); the commit's completion opens the output
 * gate, or on failure drops what it held and resets the object.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/loader.h"
#include "core/log.h"
#include "core/object_internal.h"
#include "core/room_ops.h"
#include "core/runtime.h"
#include "core/storage.h"

/* One read of a class, on its way to the backend and back. */
struct read_req {
    torpor_object *obj;
    torpor_storage_rows_cb cb;
    void *arg;
    torpor_range range;         /* list: the class's range (borrowed bytes
                                   are not kept: see read_copy_range) */
    uint8_t *range_bytes;
};

static void
storage_object_of(const torpor_object *obj, torpor_storage_object *o)
{
    memcpy(o->id, obj->id.bytes, sizeof(o->id));
    o->class_name = obj->klass->desc.name;
    o->name.data = obj->name;
    o->name.len = obj->name_len;
}

static int
bytes_cmp(torpor_bytes a, torpor_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.data, b.data, n) : 0;

    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

static bool
bytes_eq(torpor_bytes a, torpor_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* batch_last finds the event's latest write to key; NULL if none. */
static const torpor_write *
batch_last(const struct obj_batch *b, torpor_bytes key)
{
    for (size_t i = b->n; i > 0; i--) {
        const torpor_write *w = &b->writes[i - 1];
        if ((w->kind == TORPOR_WRITE_PUT || w->kind == TORPOR_WRITE_DELETE)
            && bytes_eq(w->key, key)) {
            return w;
        }
    }
    return NULL;
}

static bool
range_has(const torpor_range *r, torpor_bytes key)
{
    if (key.len < r->prefix.len
        || (r->prefix.len > 0
            && memcmp(key.data, r->prefix.data, r->prefix.len) != 0)) {
        return false;
    }
    if (r->has_start && bytes_cmp(key, r->start) < 0) {
        return false;
    }
    if (r->has_end && bytes_cmp(key, r->end) >= 0) {
        return false;
    }
    return true;
}

void
tpr_batch_clear(struct obj_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((void *)b->writes[i].key.data);
    }
    free(b->writes);
    b->writes = NULL;
    b->n = 0;
    b->cap = 0;
}

/* tpr_batch_add copies one write, key and value in one allocation. */
torpor_err
tpr_batch_add(struct obj_batch *b, uint32_t kind, torpor_bytes key,
              torpor_bytes value, uint64_t time_ms)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        torpor_write *w = realloc(b->writes, cap * sizeof(*w));
        if (w == NULL) {
            return TORPOR_ENOMEM;
        }
        b->writes = w;
        b->cap = cap;
    }
    uint8_t *copy = malloc(key.len + value.len + 1);
    if (copy == NULL) {
        return TORPOR_ENOMEM;
    }
    if (key.len > 0) {
        memcpy(copy, key.data, key.len);
    }
    if (value.len > 0) {
        memcpy(copy + key.len, value.data, value.len);
    }
    b->writes[b->n++] = (torpor_write){
        .kind = kind,
        .key = {.data = copy, .len = key.len},
        .value = {.data = copy + key.len, .len = value.len},
        .time_ms = time_ms,
    };
    return TORPOR_OK;
}

/* ---- reads ---- */

/* read_deliver hands rows to the class within the object's event. */
static void
read_deliver(struct read_req *req, torpor_err err, const torpor_kv *rows,
             size_t n)
{
    torpor_object *obj = req->obj;

    tpr_object_enter(obj);
    obj->reads--;
    req->cb(req->arg, err, rows, n);
    tpr_event_settle(obj);
    tpr_object_leave(obj);
    free(req->range_bytes);
    free(req);
}

static void
read_on_get(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct read_req *req = arg;
    const struct obj_batch *b = &req->obj->batch;

    if (err != TORPOR_OK || b->n == 0) {
        read_deliver(req, err, rows, n);
        return;
    }
    torpor_kv *merged = malloc((n ? n : 1) * sizeof(*merged));
    if (merged == NULL) {
        read_deliver(req, TORPOR_ENOMEM, NULL, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const torpor_write *w = batch_last(b, rows[i].key);
        merged[i] = rows[i];
        if (w != NULL) {
            merged[i].found = w->kind == TORPOR_WRITE_PUT;
            merged[i].value = w->kind == TORPOR_WRITE_PUT
                                  ? w->value
                                  : (torpor_bytes){.data = NULL, .len = 0};
        }
    }
    read_deliver(req, TORPOR_OK, merged, n);
    free(merged);
}

static int
kv_cmp_asc(const void *a, const void *b)
{
    return bytes_cmp(((const torpor_kv *)a)->key, ((const torpor_kv *)b)->key);
}

static int
kv_cmp_desc(const void *a, const void *b)
{
    return -kv_cmp_asc(a, b);
}

/*
 * read_on_list merges the backend's rows with the event's writes in the
 * range: puts replace or add rows, deletes remove them; then the order and
 * the limit are applied again.
 */
static void
read_on_list(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct read_req *req = arg;
    const struct obj_batch *b = &req->obj->batch;

    if (err != TORPOR_OK || b->n == 0) {
        read_deliver(req, err, rows, n);
        return;
    }
    torpor_kv *merged = malloc((n + b->n + 1) * sizeof(*merged));
    if (merged == NULL) {
        read_deliver(req, TORPOR_ENOMEM, NULL, 0);
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch_last(b, rows[i].key) == NULL) {
            merged[m++] = rows[i];
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        const torpor_write *w = &b->writes[i];
        if (w->kind != TORPOR_WRITE_PUT || batch_last(b, w->key) != w
            || !range_has(&req->range, w->key)) {
            continue;
        }
        merged[m++] = (torpor_kv){.key = w->key, .value = w->value,
                                  .found = true};
    }
    qsort(merged, m, sizeof(*merged),
          req->range.reverse ? kv_cmp_desc : kv_cmp_asc);
    if (req->range.limit > 0 && m > req->range.limit) {
        m = req->range.limit;
    }
    read_deliver(req, TORPOR_OK, merged, m);
    free(merged);
}

static torpor_err
read_begin(torpor_object *obj, torpor_storage_rows_cb cb, void *arg,
           struct read_req **out)
{
    if (!obj->in_event) {
        return TORPOR_ESTATE;
    }
    if (obj->rt->storage.plugin == NULL) {
        return TORPOR_EUNSUPPORTED;
    }
    struct read_req *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->obj = obj;
    req->cb = cb;
    req->arg = arg;
    *out = req;
    return TORPOR_OK;
}

torpor_err
tpr_object_storage_get(torpor_object *obj, const torpor_bytes *keys,
                       size_t n, torpor_storage_rows_cb cb, void *arg)
{
    torpor_storage_object o;
    struct read_req *req;
    torpor_err err = read_begin(obj, cb, arg, &req);

    if (err != TORPOR_OK) {
        return err;
    }
    storage_object_of(obj, &o);
    err = tpr_storage_get(&obj->rt->storage, obj->shard->loop, &o, keys, n,
                          read_on_get, req);
    if (err != TORPOR_OK) {
        free(req);
        return err;
    }
    obj->reads++;
    return TORPOR_OK;
}

torpor_err
tpr_object_storage_list(torpor_object *obj, const torpor_range *range,
                        torpor_storage_rows_cb cb, void *arg)
{
    torpor_storage_object o;
    struct read_req *req;
    torpor_err err = read_begin(obj, cb, arg, &req);

    if (err != TORPOR_OK) {
        return err;
    }
    /* Keep the range for the merge: its bytes are the caller's. */
    size_t len = range->prefix.len + range->start.len + range->end.len;
    req->range_bytes = malloc(len + 1);
    if (req->range_bytes == NULL) {
        free(req);
        return TORPOR_ENOMEM;
    }
    req->range = *range;
    uint8_t *p = req->range_bytes;
    torpor_bytes *parts[3] = {&req->range.prefix, &req->range.start,
                              &req->range.end};
    for (size_t i = 0; i < 3; i++) {
        if (parts[i]->len > 0) {
            memcpy(p, parts[i]->data, parts[i]->len);
        }
        parts[i]->data = p;
        p += parts[i]->len;
    }
    /* Each buffered delete may hide one backend row: ask for that many more. */
    torpor_range asked = req->range;
    if (asked.limit > 0) {
        size_t deletes = 0;
        for (size_t i = 0; i < obj->batch.n; i++) {
            deletes += obj->batch.writes[i].kind == TORPOR_WRITE_DELETE;
        }
        asked.limit = deletes > UINT32_MAX - asked.limit
                          ? 0
                          : asked.limit + (uint32_t)deletes;
    }
    storage_object_of(obj, &o);
    err = tpr_storage_list(&obj->rt->storage, obj->shard->loop, &o, &asked,
                           read_on_list, req);
    if (err != TORPOR_OK) {
        free(req->range_bytes);
        free(req);
        return err;
    }
    obj->reads++;
    return TORPOR_OK;
}

/* ---- writes ---- */

static torpor_err
write_check(const torpor_object *obj, torpor_bytes key, torpor_bytes value)
{
    const struct tpr_storage *s = &obj->rt->storage;

    if (!obj->in_event) {
        return TORPOR_ESTATE;
    }
    if (s->plugin == NULL) {
        return TORPOR_EUNSUPPORTED;
    }
    if ((key.len > 0 && key.data == NULL)
        || (value.len > 0 && value.data == NULL)) {
        return TORPOR_EINVAL;
    }
    if (key.len > s->max_key_bytes || value.len > s->max_value_bytes) {
        return TORPOR_ELIMIT;
    }
    return TORPOR_OK;
}

torpor_err
tpr_object_storage_put(torpor_object *obj, torpor_bytes key,
                       torpor_bytes value)
{
    torpor_err err = write_check(obj, key, value);

    if (err != TORPOR_OK) {
        return err;
    }
    return tpr_batch_add(&obj->batch, TORPOR_WRITE_PUT, key, value, 0);
}

torpor_err
tpr_object_storage_delete(torpor_object *obj, torpor_bytes key)
{
    torpor_bytes none = {.data = NULL, .len = 0};
    torpor_err err = write_check(obj, key, none);

    if (err != TORPOR_OK) {
        return err;
    }
    return tpr_batch_add(&obj->batch, TORPOR_WRITE_DELETE, key, none, 0);
}

/* ---- commit ---- */

struct commit_req {
    torpor_object *obj;
    struct obj_batch batch;     /* kept until the backend is done */
};

static void
commit_on_done(void *arg, torpor_err err)
{
    struct commit_req *req = arg;
    torpor_object *obj = req->obj;

    tpr_object_enter(obj);
    obj->committing = false;
    tpr_alarm_committed(obj, err == TORPOR_OK);
    if (err == TORPOR_OK) {
        tpr_output_release(obj);
    } else {
        obj->shard->stats.commits_failed++;
        tpr_log(TORPOR_LOG_WARN, "core", tpr_object_log_ids(obj), "could not commit %zu writes: %s; dropping the messages they held and resetting the object", req->batch.n, tpr_strerror(err));
        tpr_output_drop(obj);
        tpr_object_sleep(obj);
    }
    if (obj->publishing != NULL) {
        tpr_publish_end(obj, err == TORPOR_OK ? TORPOR_OK : TORPOR_EIO);
    }
    tpr_batch_clear(&req->batch);
    free(req);
    tpr_object_leave(obj);
}

void
tpr_storage_commit_event(torpor_object *obj)
{
    torpor_storage_object o;
    struct commit_req *req = malloc(sizeof(*req));

    if (req == NULL) {
        tpr_alarm_committed(obj, false);
        tpr_log(TORPOR_LOG_ERR, "core", tpr_object_log_ids(obj), "could not commit: out of memory; resetting the object");
        tpr_batch_clear(&obj->batch);
        tpr_output_drop(obj);
        tpr_object_sleep(obj);
        if (obj->publishing != NULL) {
            tpr_publish_end(obj, TORPOR_EIO);
        }
        return;
    }
    req->obj = obj;
    req->batch = obj->batch;
    memset(&obj->batch, 0, sizeof(obj->batch));
    storage_object_of(obj, &o);
    obj->committing = true;
    torpor_err err = tpr_storage_commit(&obj->rt->storage, obj->shard->loop, &o,
                                        req->batch.writes, req->batch.n,
                                        commit_on_done, req);
    if (err != TORPOR_OK) {
        /* Refused before the backend saw it: the same as a failed commit. */
        obj->committing = false;
        tpr_alarm_committed(obj, false);
        tpr_log(TORPOR_LOG_WARN, "core", tpr_object_log_ids(obj), "could not commit %zu writes: %s; resetting the object", req->batch.n, tpr_strerror(err));
        tpr_output_drop(obj);
        tpr_object_sleep(obj);
        tpr_batch_clear(&req->batch);
        free(req);
        if (obj->publishing != NULL) {
            tpr_publish_end(obj, TORPOR_EIO);
        }
    }
}
