/*
 * Reads: get, list, alarms, alarms_due and objects, run by the worker
 * against the index.  Each builds its result in one allocation owned by
 * the request (an array, then the bytes the array points to), which the
 * completion frees on the caller's loop after the callback returns.
 *
 * Worker thread.  Every commit queued before a read has been written and
 * applied by the time the read runs (see fs_worker.c).
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

torpor_err
fs_read_value(struct fs_state *fs, const struct fs_key *k, uint8_t *dst)
{
    struct fs_seg *seg = fs_seg_find(fs, k->seg);
    char name[32];
    char path[4096];

    fs_seg_name(name, sizeof(name), k->seg, "seg");
    if (seg == NULL) {
        FS_LOG(fs, TORPOR_LOG_ERR,
               "could not read \"%s\": the index names a segment that is gone",
               fs_path(fs, name, path, sizeof(path)));
        return TORPOR_EIO;
    }
    if (!fs_read_all(seg->fd, dst, k->vlen, k->off)) {
        FS_LOG(fs, TORPOR_LOG_ERR, "could not read \"%s\" at offset %u: %s",
               fs_path(fs, name, path, sizeof(path)), (unsigned)k->off,
               strerror(errno));
        return TORPOR_EIO;
    }
    return TORPOR_OK;
}

/* fs_read_alloc: room for n items of size each, then extra bytes. */
static void *
fs_read_alloc(struct fs_req *req, size_t n, size_t size, size_t extra)
{
    if (n > (SIZE_MAX - extra) / size - 1) {
        req->err = TORPOR_ENOMEM;
        return NULL;
    }
    req->out = malloc(n * size + extra + 1);
    if (req->out == NULL) {
        req->err = TORPOR_ENOMEM;
    }
    return req->out;
}

/* fs_read_fail drops a half-built result: the callback gets no rows. */
static void
fs_read_fail(struct fs_req *req, torpor_err err)
{
    free(req->out);
    req->out = NULL;
    req->nout = 0;
    req->err = err;
}

/* fs_read_object copies obj's id, class and name into o and p. */
static uint8_t *
fs_read_object(const struct fs_obj *obj, torpor_storage_object *o, uint8_t *p)
{
    memcpy(o->id, obj->id, 16);
    memcpy(p, obj->meta, obj->class_len);
    p[obj->class_len] = '\0';
    o->class_name = (const char *)p;
    p += obj->class_len + 1;
    memcpy(p, obj->meta + obj->class_len + 1, obj->name_len);
    o->name.data = p;
    o->name.len = obj->name_len;
    return p + obj->name_len;
}

static size_t
fs_read_object_bytes(const struct fs_obj *obj)
{
    return (size_t)obj->class_len + 1 + obj->name_len;
}

static const struct fs_key *
fs_read_lookup(const struct fs_obj *obj, torpor_bytes key)
{
    uint32_t pos;

    if (obj == NULL) {
        return NULL;
    }
    pos = fs_obj_lower_bound(obj, key.data, key.len);
    if (pos == obj->nkeys
        || fs_key_cmp(obj->keys[pos]->key, obj->keys[pos]->klen, key.data,
                      key.len)
               != 0) {
        return NULL;
    }
    return obj->keys[pos];
}

static void
fs_read_get(struct fs_state *fs, struct fs_req *req)
{
    const struct fs_obj *obj = fs_index_find(&fs->ix, req->id);
    size_t extra = 0;
    torpor_kv *rows;
    uint8_t *p;

    for (size_t i = 0; i < req->nkeys; i++) {
        const struct fs_key *k = fs_read_lookup(obj, req->keys[i]);

        extra += k != NULL ? k->vlen : 0;
    }
    rows = fs_read_alloc(req, req->nkeys, sizeof(*rows), extra);
    if (rows == NULL) {
        return;
    }
    p = (uint8_t *)(rows + req->nkeys);
    req->nout = req->nkeys;
    for (size_t i = 0; i < req->nkeys; i++) {
        const struct fs_key *k = fs_read_lookup(obj, req->keys[i]);

        rows[i] = (torpor_kv){.key = req->keys[i]};
        if (k == NULL) {
            continue;
        }
        if (fs_read_value(fs, k, p) != TORPOR_OK) {
            fs_read_fail(req, TORPOR_EIO);
            return;
        }
        rows[i].found = true;
        rows[i].value.data = p;
        rows[i].value.len = k->vlen;
        p += k->vlen;
    }
}

/* fs_read_prefix_end: past the last key from lo that starts with prefix. */
static uint32_t
fs_read_prefix_end(const struct fs_obj *obj, uint32_t lo, torpor_bytes pre)
{
    uint32_t hi = obj->nkeys;

    /* From lo on, keys with the prefix come first: bisect where they end. */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct fs_key *k = obj->keys[mid];

        if (k->klen >= pre.len && memcmp(k->key, pre.data, pre.len) == 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* fs_read_span finds the keys [*lo, *hi) of obj that range selects. */
static void
fs_read_span(const struct fs_obj *obj, const torpor_range *range, uint32_t *lo,
             uint32_t *hi)
{
    *lo = 0;
    *hi = obj->nkeys;
    if (range->prefix.len > 0) {
        *lo = fs_obj_lower_bound(obj, range->prefix.data, range->prefix.len);
        *hi = fs_read_prefix_end(obj, *lo, range->prefix);
    }
    if (range->has_start) {
        uint32_t s =
            fs_obj_lower_bound(obj, range->start.data, range->start.len);

        *lo = s > *lo ? s : *lo;
    }
    if (range->has_end) {
        uint32_t e = fs_obj_lower_bound(obj, range->end.data, range->end.len);

        *hi = e < *hi ? e : *hi;
    }
    if (*lo > *hi) {
        *lo = *hi;
    }
}

static void
fs_read_list(struct fs_state *fs, struct fs_req *req)
{
    const struct fs_obj *obj = fs_index_find(&fs->ix, req->id);
    const torpor_range *range = &req->range;
    uint32_t lo;
    uint32_t hi;
    size_t n;
    size_t extra = 0;
    torpor_kv *rows;
    uint8_t *p;

    if (obj == NULL) {
        return;
    }
    fs_read_span(obj, range, &lo, &hi);
    n = hi - lo;
    if (range->limit > 0 && n > range->limit) {
        n = range->limit;
    }
    if (range->reverse) {
        lo = hi - (uint32_t)n;
    }
    for (size_t i = 0; i < n; i++) {
        const struct fs_key *k = obj->keys[lo + i];

        extra += (size_t)k->klen + k->vlen;
    }
    rows = fs_read_alloc(req, n, sizeof(*rows), extra);
    if (rows == NULL) {
        return;
    }
    p = (uint8_t *)(rows + n);
    req->nout = n;
    for (size_t i = 0; i < n; i++) {
        const struct fs_key *k =
            obj->keys[range->reverse ? hi - 1 - i : lo + i];

        memcpy(p, k->key, k->klen);
        rows[i] = (torpor_kv){.key = {p, k->klen}, .found = true};
        p += k->klen;
        if (fs_read_value(fs, k, p) != TORPOR_OK) {
            fs_read_fail(req, TORPOR_EIO);
            return;
        }
        rows[i].value.data = p;
        rows[i].value.len = k->vlen;
        p += k->vlen;
    }
}

/* fs_read_alarm_list fills req's result with the alarms of v[0..n). */
static void
fs_read_alarm_list(struct fs_req *req, struct fs_alarm *const *v, size_t n)
{
    size_t extra = 0;
    torpor_alarm *out;
    uint8_t *p;

    for (size_t i = 0; i < n; i++) {
        extra += fs_read_object_bytes(v[i]->obj) + v[i]->nlen;
    }
    out = fs_read_alloc(req, n, sizeof(*out), extra);
    if (out == NULL) {
        return;
    }
    p = (uint8_t *)(out + n);
    req->nout = n;
    for (size_t i = 0; i < n; i++) {
        p = fs_read_object(v[i]->obj, &out[i].object, p);
        memcpy(p, v[i]->name, v[i]->nlen);
        out[i].name.data = p;
        out[i].name.len = v[i]->nlen;
        out[i].time_ms = v[i]->time_ms;
        p += v[i]->nlen;
    }
}

static void
fs_read_alarms(struct fs_state *fs, struct fs_req *req)
{
    const struct fs_obj *obj = fs_index_find(&fs->ix, req->id);

    if (obj != NULL) {
        fs_read_alarm_list(req, obj->alarms, obj->nalarms);
    }
}

static void
fs_read_due(struct fs_state *fs, struct fs_req *req)
{
    size_t want = req->limit < fs->ix.nheap ? req->limit : fs->ix.nheap;
    struct fs_alarm **v;
    size_t n;

    if (want == 0) {
        return;
    }
    v = malloc(want * sizeof(*v));
    if (v == NULL) {
        req->err = TORPOR_ENOMEM;
        return;
    }
    n = fs_alarm_due(&fs->ix, req->before_ms, req->limit, v);
    if (n == SIZE_MAX) {
        req->err = TORPOR_ENOMEM;
    } else {
        fs_read_alarm_list(req, v, n);
    }
    free(v);
}

static void
fs_read_objects(struct fs_state *fs, struct fs_req *req)
{
    size_t nobjs;
    struct fs_obj **order = fs_index_sorted(&fs->ix, &nobjs);
    size_t lo = 0;
    size_t hi = nobjs;
    size_t n;
    size_t extra = 0;
    torpor_storage_object *out;
    uint8_t *p;

    if (order == NULL) {
        req->err = TORPOR_ENOMEM;
        return;
    }
    while (req->has_after && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (memcmp(order[mid]->id, req->after, 16) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    n = nobjs - lo < req->limit ? nobjs - lo : req->limit;
    for (size_t i = 0; i < n; i++) {
        extra += fs_read_object_bytes(order[lo + i]);
    }
    out = fs_read_alloc(req, n, sizeof(*out), extra);
    if (out == NULL) {
        return;
    }
    p = (uint8_t *)(out + n);
    req->nout = n;
    for (size_t i = 0; i < n; i++) {
        p = fs_read_object(order[lo + i], &out[i], p);
    }
}

void
fs_read_exec(struct fs_state *fs, struct fs_req *req)
{
    switch (req->op) {
    case FS_OP_GET:
        fs_read_get(fs, req);
        break;
    case FS_OP_LIST:
        fs_read_list(fs, req);
        break;
    case FS_OP_ALARMS:
        fs_read_alarms(fs, req);
        break;
    case FS_OP_DUE:
        fs_read_due(fs, req);
        break;
    case FS_OP_OBJECTS:
        fs_read_objects(fs, req);
        break;
    }
}
