/*
 * The file storage plugin: the embedded default backend, a data directory
 * and no server.  This file holds the descriptor, the lifecycle hooks and
 * the storage ops, which copy what they are given into a request and
 * queue it for the worker (fs_worker.c).
 *
 * The ops run on any loop and never block on the disk: they only take the
 * queue's mutex.  A request's inputs are copied because the caller's
 * buffers are only valid during the call.
 */
#include "fs.h"

#include <stdlib.h>
#include <string.h>

#define FS_VERSION "0.1.0"

/* fs_req_new allocates a request with extra bytes after it for inputs. */
static struct fs_req *
fs_req_new(size_t extra, torpor_loop *loop, uint8_t op, void *arg)
{
    struct fs_req *req;

    if (extra > SIZE_MAX - sizeof(*req)) {
        return NULL;
    }
    req = calloc(1, sizeof(*req) + extra);
    if (req == NULL) {
        return NULL;
    }
    req->loop = loop;
    req->op = op;
    req->arg = arg;
    return req;
}

/* fs_req_queue hands req to the worker, or frees it if it is refused. */
static torpor_err
fs_req_queue(struct fs_state *fs, struct fs_req *req)
{
    torpor_err err = fs_queue(fs, req);

    if (err != TORPOR_OK) {
        fs_req_free(req);
    }
    return err;
}

static bool
fs_bytes_ok(torpor_bytes b)
{
    return b.len == 0 || b.data != NULL;
}

static bool
fs_object_ok(const torpor_storage_object *o)
{
    return o != NULL && o->class_name != NULL && fs_bytes_ok(o->name);
}

/* fs_copy copies b to *p and advances *p; the copy is what it returns. */
static torpor_bytes
fs_copy(uint8_t **p, torpor_bytes b)
{
    torpor_bytes c = {*p, b.len};

    if (b.len > 0) {
        memcpy(*p, b.data, b.len);
    }
    *p += b.len;
    return c;
}

static torpor_err
fs_op_get(void *state, torpor_loop *loop, const torpor_storage_object *object,
          const torpor_bytes *keys, size_t n, torpor_storage_rows_cb cb,
          void *arg)
{
    size_t extra;
    struct fs_req *req;
    uint8_t *p;

    if (loop == NULL || cb == NULL || !fs_object_ok(object)
        || (n > 0 && keys == NULL) || n > SIZE_MAX / 2 / sizeof(*keys)) {
        return TORPOR_EINVAL;
    }
    extra = n * sizeof(*keys);
    for (size_t i = 0; i < n; i++) {
        if (!fs_bytes_ok(keys[i]) || keys[i].len > SIZE_MAX / 2 - extra) {
            return TORPOR_EINVAL;
        }
        extra += keys[i].len;
    }
    req = fs_req_new(extra, loop, FS_OP_GET, arg);
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->cb.rows = cb;
    memcpy(req->id, object->id, 16);
    req->keys = (torpor_bytes *)(req + 1);
    req->nkeys = n;
    p = (uint8_t *)(req->keys + n);
    for (size_t i = 0; i < n; i++) {
        req->keys[i] = fs_copy(&p, keys[i]);
    }
    return fs_req_queue(state, req);
}

static torpor_err
fs_op_list(void *state, torpor_loop *loop, const torpor_storage_object *object,
           const torpor_range *range, torpor_storage_rows_cb cb, void *arg)
{
    struct fs_req *req;
    uint8_t *p;

    if (loop == NULL || cb == NULL || !fs_object_ok(object) || range == NULL
        || !fs_bytes_ok(range->prefix) || !fs_bytes_ok(range->start)
        || !fs_bytes_ok(range->end) || range->prefix.len > SIZE_MAX / 4
        || range->start.len > SIZE_MAX / 4 || range->end.len > SIZE_MAX / 4) {
        return TORPOR_EINVAL;
    }
    req = fs_req_new(range->prefix.len + range->start.len + range->end.len,
                     loop, FS_OP_LIST, arg);
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->cb.rows = cb;
    memcpy(req->id, object->id, 16);
    req->range = *range;
    p = (uint8_t *)(req + 1);
    req->range.prefix = fs_copy(&p, range->prefix);
    req->range.start = fs_copy(&p, range->start);
    req->range.end = fs_copy(&p, range->end);
    return fs_req_queue(state, req);
}

static bool
fs_writes_ok(const torpor_write *writes, size_t n)
{
    if (n > 0 && writes == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!fs_bytes_ok(writes[i].key) || !fs_bytes_ok(writes[i].value)) {
            return false;
        }
    }
    return true;
}

static torpor_err
fs_op_commit(void *state, torpor_loop *loop,
             const torpor_storage_object *object, const torpor_write *writes,
             size_t n, torpor_storage_done_cb cb, void *arg)
{
    struct fs_req *req;
    bool bad_kind;
    size_t size;

    if (loop == NULL || cb == NULL || !fs_object_ok(object)
        || !fs_writes_ok(writes, n)) {
        return TORPOR_EINVAL;
    }
    size = fs_rec_commit_bytes(object, writes, n, &bad_kind);
    if (size == 0) {
        return bad_kind ? TORPOR_EINVAL : TORPOR_ELIMIT;
    }
    req = fs_req_new(0, loop, FS_OP_COMMIT, arg);
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->cb.done = cb;
    memcpy(req->id, object->id, 16);
    /* Encoded here, on the caller's loop, so the worker only writes. */
    if (fs_buf_reserve(&req->rec, size)) {
        fs_rec_put_commit(&req->rec, object, writes, n);
    }
    if (req->rec.oom) {
        fs_req_free(req);
        return TORPOR_ENOMEM;
    }
    return fs_req_queue(state, req);
}

static torpor_err
fs_op_alarms(void *state, torpor_loop *loop,
             const torpor_storage_object *object, torpor_storage_alarms_cb cb,
             void *arg)
{
    struct fs_req *req;

    if (loop == NULL || cb == NULL || !fs_object_ok(object)) {
        return TORPOR_EINVAL;
    }
    req = fs_req_new(0, loop, FS_OP_ALARMS, arg);
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->cb.alarms = cb;
    memcpy(req->id, object->id, 16);
    return fs_req_queue(state, req);
}

static torpor_err
fs_op_alarms_due(void *state, torpor_loop *loop, uint64_t before_ms,
                 uint32_t limit, torpor_storage_alarms_cb cb, void *arg)
{
    struct fs_req *req;

    if (loop == NULL || cb == NULL || limit == 0) {
        return TORPOR_EINVAL;
    }
    req = fs_req_new(0, loop, FS_OP_DUE, arg);
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->cb.alarms = cb;
    req->before_ms = before_ms;
    req->limit = limit;
    return fs_req_queue(state, req);
}

static torpor_err
fs_op_objects(void *state, torpor_loop *loop, const uint8_t *after,
              uint32_t limit, torpor_storage_objects_cb cb, void *arg)
{
    struct fs_req *req;

    if (loop == NULL || cb == NULL || limit == 0) {
        return TORPOR_EINVAL;
    }
    req = fs_req_new(0, loop, FS_OP_OBJECTS, arg);
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->cb.objects = cb;
    req->limit = limit;
    if (after != NULL) {
        req->has_after = true;
        memcpy(req->after, after, 16);
    }
    return fs_req_queue(state, req);
}

static torpor_err
fs_op_drop(void *state, torpor_loop *loop, const torpor_storage_object *object,
           torpor_storage_done_cb cb, void *arg)
{
    struct fs_req *req;

    if (loop == NULL || cb == NULL || !fs_object_ok(object)) {
        return TORPOR_EINVAL;
    }
    req = fs_req_new(0, loop, FS_OP_DROP, arg);
    if (req == NULL) {
        return TORPOR_ENOMEM;
    }
    req->cb.done = cb;
    memcpy(req->id, object->id, 16);
    fs_rec_put_drop(&req->rec, object->id);
    if (req->rec.oom) {
        fs_req_free(req);
        return TORPOR_ENOMEM;
    }
    return fs_req_queue(state, req);
}

static torpor_err
fs_plugin_create(const struct torpor_host *host, torpor_plugin_ctx *self,
                 void **state)
{
    struct fs_state *fs;
    pthread_condattr_t attr;

    *state = NULL;
    if (!TORPOR_HOST_HAS(host, loop_post)) {
        return TORPOR_EABI;
    }
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        return TORPOR_ENOMEM;
    }
    fs->host = host;
    fs->self = self;
    fs->lock_fd = -1;
    fs->dir_fd = -1;
    fs->next_seg = 1;
    if (fs_config_defaults(&fs->cfg) != TORPOR_OK) {
        free(fs);
        return TORPOR_ENOMEM;
    }
    /* The worker's timed waits run on the monotonic clock, like now_ms. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&fs->mu, NULL) != 0) {
        goto fail;
    }
    if (pthread_cond_init(&fs->cv, &attr) != 0) {
        pthread_mutex_destroy(&fs->mu);
        goto fail;
    }
    pthread_condattr_destroy(&attr);
    *state = fs;
    return TORPOR_OK;

fail:
    pthread_condattr_destroy(&attr);
    fs_config_free(&fs->cfg);
    free(fs);
    return TORPOR_ENOMEM;
}

static torpor_err
fs_plugin_configure(void *state, const char *key, const char *value, char *why,
                    size_t why_size)
{
    struct fs_state *fs = state;

    if (fs->started) {
        return TORPOR_ESTATE;
    }
    return fs_config_set(&fs->cfg, key, value, why, why_size);
}

static torpor_err
fs_plugin_start(void *state)
{
    struct fs_state *fs = state;
    torpor_err err;

    if (fs->started) {
        return TORPOR_ESTATE;
    }
    err = fs_index_init(&fs->ix);
    if (err != TORPOR_OK) {
        return err;
    }
    err = fs_dir_open(fs);
    if (err == TORPOR_OK) {
        err = fs_recover(fs);
        if (err == TORPOR_OK && fs_compact_due(fs)) {
            /* A failed compaction keeps the old segments: not fatal. */
            (void)fs_compact(fs);
        }
        if (err == TORPOR_OK) {
            err = fs_worker_start(fs);
        }
        if (err != TORPOR_OK) {
            fs_dir_close(fs);
        }
    }
    if (err != TORPOR_OK) {
        fs_index_free(&fs->ix);
        fs->disk_bytes = 0;
        fs->next_seg = 1;
        return err;
    }
    fs->started = true;
    return TORPOR_OK;
}

/*
 * fs_plugin_stop only asks for an fsync.  The core stops plugins before it
 * closes the objects, whose last commits must still be taken; destroy is
 * where the store refuses new work and drains.
 */
static void
fs_plugin_stop(void *state)
{
    struct fs_state *fs = state;

    pthread_mutex_lock(&fs->mu);
    fs->sync_asked = true;
    pthread_cond_signal(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
}

static void
fs_plugin_destroy(void *state)
{
    struct fs_state *fs = state;

    if (fs == NULL) {
        return;
    }
    if (fs->started) {
        /* The worker drains the queue and syncs before it exits. */
        fs_worker_stop(fs);
        fs_dir_close(fs);
        fs_index_free(&fs->ix);
        FS_LOG(fs, TORPOR_LOG_NOTICE, "closed \"%s\"", fs->cfg.dir);
    }
    free(fs->pending);
    pthread_cond_destroy(&fs->cv);
    pthread_mutex_destroy(&fs->mu);
    fs_config_free(&fs->cfg);
    free(fs);
}

static const struct torpor_storage_ops fs_storage_ops = {
    .size = sizeof(struct torpor_storage_ops),
    .get = fs_op_get,
    .list = fs_op_list,
    .commit = fs_op_commit,
    .alarms = fs_op_alarms,
    .alarms_due = fs_op_alarms_due,
    .objects = fs_op_objects,
    .drop = fs_op_drop,
};

static const struct torpor_plugin fs_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_STORAGE, FS_PLUGIN_NAME, FS_VERSION),
    .create = fs_plugin_create,
    .configure = fs_plugin_configure,
    .start = fs_plugin_start,
    .stop = fs_plugin_stop,
    .destroy = fs_plugin_destroy,
    .ops.storage = &fs_storage_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &fs_plugin;
}
