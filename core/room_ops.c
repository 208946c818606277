/*
 * core/room_ops.c: the host's room_* calls, which serve backend services
 * through a transport (torpor/room.h).
 *
 * A call may come from any thread, typically one of the transport's own.
 * It checks the room it names against what never changes after start (the
 * routes and the loaded classes), copies its arguments into a room_call and
 * posts that to the loop of the room's shard; everything that touches an
 * object happens there, and the completion runs there too.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/room_ops.h"
#include "core/runtime.h"
#include "core/storage.h"

enum room_call_op {
    ROOM_CALL_PUBLISH,
    ROOM_CALL_DELIVER,
    ROOM_CALL_CONNS,
    ROOM_CALL_GET,
    ROOM_CALL_LIST
};

/*
 * A call on its way to the room's loop.  Its bytes hold the room's name,
 * then the tag, the message, the keys or the range, each a copy.
 */
struct room_call {
    torpor_task task;
    struct tpr_runtime *rt;
    struct torpor_plugin_ctx *klass;    /* NULL: by id alone */
    struct tpr_object_id id;
    uint8_t op;
    void *arg;
    torpor_room_done_cb done;
    torpor_room_conns_cb conns_cb;
    torpor_storage_rows_cb rows_cb;
    struct tpr_publish *publish;        /* ROOM_CALL_PUBLISH */
    torpor_bytes name;
    torpor_bytes tag;                   /* deliver, conns */
    bool has_tag;
    uint8_t kind;                       /* deliver */
    torpor_bytes data;
    uint64_t except_conn;
    torpor_bytes *keys;                 /* get; points into bytes */
    size_t nkeys;
    torpor_range range;                 /* list */
    uint8_t *fill;                      /* where the next copy goes */
    max_align_t bytes[];
};

/* The parts of a ref, the way the calls read them whatever its size. */
static void
room_ref_copy(const torpor_room_ref *ref, torpor_room_ref *out)
{
    memset(out, 0, sizeof(*out));
    if (ref != NULL) {
        size_t n = ref->size < sizeof(*out) ? ref->size : sizeof(*out);
        memcpy(out, ref, n);
    }
}

static bool
room_bytes_ok(torpor_bytes b)
{
    return b.len == 0 || b.data != NULL;
}

/*
 * room_resolve finds the class and id a ref names.  Any thread: it reads
 * only the routes and classes, which are fixed once torpord started.
 */
static torpor_err
room_resolve(struct tpr_runtime *rt, const torpor_room_ref *given,
             struct torpor_plugin_ctx **klass, struct tpr_object_id *id)
{
    torpor_room_ref ref;

    room_ref_copy(given, &ref);
    if (given == NULL || ref.size == 0 || !room_bytes_ok(ref.route)
        || !room_bytes_ok(ref.class_name) || !room_bytes_ok(ref.name)) {
        return TORPOR_EINVAL;
    }
    if (ref.name.len == 0) {
        if (ref.id == NULL || ref.route.len > 0 || ref.class_name.len > 0) {
            return TORPOR_EINVAL;
        }
        *klass = NULL;
        memcpy(id->bytes, ref.id, sizeof(id->bytes));
        return TORPOR_OK;
    }
    if (ref.id != NULL || ref.name.len > TPR_OBJECT_NAME_MAX
        || (ref.name.len == 4 && memcmp(ref.name.data, "~new", 4) == 0)
        || (ref.route.len > 0) == (ref.class_name.len > 0)) {
        return TORPOR_EINVAL;
    }
    if (ref.route.len > 0) {
        const struct tpr_route *r =
            tpr_runtime_route(rt, ref.route.data, ref.route.len);
        if (r == NULL) {
            return TORPOR_ENOENT;
        }
        *klass = r->klass;
    } else {
        char name[128];
        if (ref.class_name.len >= sizeof(name)
            || memchr(ref.class_name.data, 0, ref.class_name.len) != NULL) {
            return TORPOR_ENOENT;
        }
        memcpy(name, ref.class_name.data, ref.class_name.len);
        name[ref.class_name.len] = '\0';
        *klass = tpr_runtime_class(rt, name);
        if (*klass == NULL) {
            return TORPOR_ENOENT;
        }
    }
    tpr_object_id_derive((*klass)->desc.name, ref.name.data, ref.name.len,
                         id);
    return TORPOR_OK;
}

static torpor_bytes
room_call_copy(struct room_call *c, torpor_bytes b)
{
    torpor_bytes out = {.data = c->fill, .len = b.len};

    if (b.len > 0) {
        memcpy(c->fill, b.data, b.len);
    }
    c->fill += b.len;
    return out;
}

/*
 * room_call_new makes a call for ref with room for extra bytes of copies
 * beyond the name, which it copies.  The caller fills the rest.
 */
static torpor_err
room_call_new(torpor_plugin_ctx *self, const torpor_room_ref *ref,
              uint8_t op, size_t extra, struct room_call **out)
{
    struct tpr_runtime *rt = self->rt;
    struct torpor_plugin_ctx *klass;
    struct tpr_object_id id;
    torpor_room_ref r;

    *out = NULL;
    if (tpr_runtime_stopping(rt)) {
        return TORPOR_ECLOSED;
    }
    torpor_err err = room_resolve(rt, ref, &klass, &id);
    if (err != TORPOR_OK) {
        return err;
    }
    room_ref_copy(ref, &r);
    struct room_call *c = calloc(1, sizeof(*c) + r.name.len + extra);
    if (c == NULL) {
        return TORPOR_ENOMEM;
    }
    c->rt = rt;
    c->klass = klass;
    c->id = id;
    c->op = op;
    c->fill = (uint8_t *)c->bytes;
    c->name = room_call_copy(c, r.name);
    *out = c;
    return TORPOR_OK;
}

/* room_find finds the call's room in memory; NULL if it is not there. */
static torpor_object *
room_find(struct room_call *c, struct tpr_shard *shard)
{
    return tpr_object_find(shard, &c->id, c->klass, c->name.data,
                           c->name.len);
}

static void
room_done(struct room_call *c, torpor_err err, uint64_t count)
{
    torpor_room_result res = {
        .size = sizeof(res), .err = err, .count = count,
    };

    c->done(c->arg, &res);
}

static void
room_run_publish(struct room_call *c, struct tpr_shard *shard)
{
    torpor_object *obj = NULL;

    if (c->klass == NULL) {
        obj = room_find(c, shard);
    } else if (tpr_object_get(c->rt, c->klass, c->name.data, c->name.len,
                              &obj) != TORPOR_OK) {
        tpr_publish_refuse(c->publish, TORPOR_ENOMEM);
        return;
    }
    tpr_publish_run(c->publish, obj);
}

/* room_conn_by_id: the connection of obj with id, or NULL. */
static const torpor_conn *
room_conn_by_id(const torpor_object *obj, uint64_t id)
{
    if (id == 0) {
        return NULL;
    }
    for (const torpor_conn *conn = obj->conns; conn != NULL;
         conn = tpr_conn_next(conn)) {
        if (conn->id == id) {
            return conn;
        }
    }
    return NULL;
}

static void
room_run_deliver(struct room_call *c, struct tpr_shard *shard)
{
    torpor_object *obj = room_find(c, shard);
    const torpor_bytes *tag = c->has_tag ? &c->tag : NULL;

    if (obj == NULL) {
        room_done(c, TORPOR_OK, 0);
        return;
    }
    tpr_object_enter(obj);
    const torpor_conn *except = room_conn_by_id(obj, c->except_conn);
    size_t n = tpr_object_conns(obj, tag, NULL, 0);
    if (except != NULL && except->state == CONN_OPEN && except->opened
        && (tag == NULL || tpr_conn_has_tag(except, *tag))) {
        n--;
    }
    torpor_err err = tpr_output_broadcast_to(obj, c->kind, c->data.data,
                                             c->data.len, except, tag);
    room_done(c, err, err == TORPOR_OK ? n : 0);
    tpr_object_leave(obj);
}

static void
room_run_conns(struct room_call *c, struct tpr_shard *shard)
{
    torpor_object *obj = room_find(c, shard);
    const torpor_bytes *tag = c->has_tag ? &c->tag : NULL;

    if (obj == NULL) {
        c->conns_cb(c->arg, TORPOR_OK, NULL, 0);
        return;
    }
    tpr_object_enter(obj);
    size_t n = tpr_object_conns(obj, tag, NULL, 0);
    torpor_conn **conns = malloc((n ? n : 1) * sizeof(*conns));
    if (conns == NULL) {
        c->conns_cb(c->arg, TORPOR_ENOMEM, NULL, 0);
    } else {
        tpr_object_conns(obj, tag, conns, n);
        c->conns_cb(c->arg, TORPOR_OK, conns, n);
        free(conns);
    }
    tpr_object_leave(obj);
}

static void
room_run_read(struct room_call *c, struct tpr_shard *shard)
{
    torpor_storage_object o;
    torpor_err err;

    memcpy(o.id, c->id.bytes, sizeof(o.id));
    if (c->klass != NULL) {
        o.class_name = c->klass->desc.name;
        o.name = c->name;
    } else {
        torpor_object *obj = room_find(c, shard);
        if (obj == NULL) {
            c->rows_cb(c->arg, TORPOR_ENOENT, NULL, 0);
            return;
        }
        o.class_name = obj->klass->desc.name;
        o.name = (torpor_bytes){.data = obj->name, .len = obj->name_len};
    }
    if (c->op == ROOM_CALL_GET) {
        err = tpr_storage_get(&c->rt->storage, shard->loop, &o, c->keys,
                              c->nkeys, c->rows_cb, c->arg);
    } else {
        err = tpr_storage_list(&c->rt->storage, shard->loop, &o, &c->range,
                               c->rows_cb, c->arg);
    }
    if (err != TORPOR_OK) {
        c->rows_cb(c->arg, err, NULL, 0);
    }
}

/* room_call_run runs a call on its room's loop, then frees it. */
static void
room_call_run(torpor_task *task)
{
    struct room_call *c = (struct room_call *)task;
    struct tpr_shard *shard = tpr_runtime_shard(c->rt, c->id.bytes);
    bool stopping = tpr_runtime_stopping(c->rt);

    switch (c->op) {
    case ROOM_CALL_PUBLISH:
        if (stopping) {
            tpr_publish_refuse(c->publish, TORPOR_ECLOSED);
        } else {
            room_run_publish(c, shard);
        }
        break;
    case ROOM_CALL_DELIVER:
        if (stopping) {
            room_done(c, TORPOR_ECLOSED, 0);
        } else {
            room_run_deliver(c, shard);
        }
        break;
    case ROOM_CALL_CONNS:
        room_run_conns(c, shard);
        break;
    default:
        room_run_read(c, shard);
        break;
    }
    free(c);
}

static void
room_call_post(struct room_call *c)
{
    struct tpr_shard *shard = tpr_runtime_shard(c->rt, c->id.bytes);

    c->task.run = room_call_run;
    tpr_loop_post(shard->loop, &c->task);
}

/* room_msg_copy checks a message and reads it whatever its size. */
static torpor_err
room_msg_copy(const torpor_room_msg *msg, torpor_room_msg *out)
{
    memset(out, 0, sizeof(*out));
    if (msg == NULL || msg->size == 0) {
        return TORPOR_EINVAL;
    }
    memcpy(out, msg, msg->size < sizeof(*out) ? msg->size : sizeof(*out));
    if ((out->kind != TORPOR_MSG_TEXT && out->kind != TORPOR_MSG_BINARY)
        || !room_bytes_ok(out->data)
        || (out->tag != NULL && !room_bytes_ok(*out->tag))) {
        return TORPOR_EINVAL;
    }
    return TORPOR_OK;
}

torpor_err
tpr_room_publish(torpor_plugin_ctx *self, const torpor_room_ref *ref,
                 const torpor_room_msg *msg, void *tconn,
                 torpor_room_done_cb cb, void *arg)
{
    struct room_call *c;
    torpor_room_msg m;
    torpor_err err = room_msg_copy(msg, &m);

    if (err != TORPOR_OK || cb == NULL) {
        return TORPOR_EINVAL;
    }
    if (self->desc.kind != TORPOR_KIND_TRANSPORT) {
        return TORPOR_ESTATE;   /* the sender needs a transport's ops */
    }
    err = room_call_new(self, ref, ROOM_CALL_PUBLISH, 0, &c);
    if (err != TORPOR_OK) {
        return err;
    }
    err = tpr_publish_new(self, &m, tconn, cb, arg, &c->publish);
    if (err != TORPOR_OK) {
        free(c);
        return err;
    }
    room_call_post(c);
    return TORPOR_OK;
}

torpor_err
tpr_room_deliver(torpor_plugin_ctx *self, const torpor_room_ref *ref,
                 const torpor_room_msg *msg, torpor_room_done_cb cb,
                 void *arg)
{
    struct room_call *c;
    torpor_room_msg m;
    torpor_err err = room_msg_copy(msg, &m);

    if (err != TORPOR_OK || cb == NULL) {
        return TORPOR_EINVAL;
    }
    size_t tag_len = m.tag != NULL ? m.tag->len : 0;
    err = room_call_new(self, ref, ROOM_CALL_DELIVER, tag_len + m.data.len,
                        &c);
    if (err != TORPOR_OK) {
        return err;
    }
    c->done = cb;
    c->arg = arg;
    c->kind = (uint8_t)m.kind;
    c->has_tag = m.tag != NULL;
    if (m.tag != NULL) {
        c->tag = room_call_copy(c, *m.tag);
    }
    c->data = room_call_copy(c, m.data);
    c->except_conn = m.except_conn;
    room_call_post(c);
    return TORPOR_OK;
}

torpor_err
tpr_room_conns(torpor_plugin_ctx *self, const torpor_room_ref *ref,
               const torpor_bytes *tag, torpor_room_conns_cb cb, void *arg)
{
    struct room_call *c;

    if (cb == NULL || (tag != NULL && !room_bytes_ok(*tag))) {
        return TORPOR_EINVAL;
    }
    torpor_err err = room_call_new(self, ref, ROOM_CALL_CONNS,
                                   tag != NULL ? tag->len : 0, &c);
    if (err != TORPOR_OK) {
        return err;
    }
    c->conns_cb = cb;
    c->arg = arg;
    c->has_tag = tag != NULL;
    if (tag != NULL) {
        c->tag = room_call_copy(c, *tag);
    }
    room_call_post(c);
    return TORPOR_OK;
}

/* room_read_check: whether reads can go to a backend at all. */
static torpor_err
room_read_check(const torpor_plugin_ctx *self, torpor_storage_rows_cb cb)
{
    if (cb == NULL) {
        return TORPOR_EINVAL;
    }
    return self->rt->storage.plugin == NULL ? TORPOR_EUNSUPPORTED
                                            : TORPOR_OK;
}

static bool
room_key_ok(const torpor_plugin_ctx *self, torpor_bytes key)
{
    return key.len <= self->rt->storage.max_key_bytes;
}

torpor_err
tpr_room_storage_get(torpor_plugin_ctx *self, const torpor_room_ref *ref,
                     const torpor_bytes *keys, size_t n,
                     torpor_storage_rows_cb cb, void *arg)
{
    struct room_call *c;
    size_t total = 0;
    torpor_err err = room_read_check(self, cb);

    if (err == TORPOR_OK && (n == 0 || keys == NULL)) {
        err = TORPOR_EINVAL;
    }
    for (size_t i = 0; err == TORPOR_OK && i < n; i++) {
        if (!room_bytes_ok(keys[i])) {
            err = TORPOR_EINVAL;
        } else if (!room_key_ok(self, keys[i])) {
            err = TORPOR_ELIMIT;
        }
        total += keys[i].len;
    }
    if (err != TORPOR_OK) {
        return err;
    }
    /* The key array first, aligned at the start of the copies. */
    size_t array = n * sizeof(torpor_bytes);
    err = room_call_new(self, ref, ROOM_CALL_GET, array + total + 8, &c);
    if (err != TORPOR_OK) {
        return err;
    }
    c->rows_cb = cb;
    c->arg = arg;
    /* Keep the name where room_call_new put it; the array goes after. */
    uintptr_t at = ((uintptr_t)c->fill + 7) & ~(uintptr_t)7;
    c->keys = (torpor_bytes *)at;
    c->fill = (uint8_t *)(c->keys + n);
    c->nkeys = n;
    for (size_t i = 0; i < n; i++) {
        c->keys[i] = room_call_copy(c, keys[i]);
    }
    room_call_post(c);
    return TORPOR_OK;
}

torpor_err
tpr_room_storage_list(torpor_plugin_ctx *self, const torpor_room_ref *ref,
                      const torpor_range *range, torpor_storage_rows_cb cb,
                      void *arg)
{
    struct room_call *c;
    torpor_err err = room_read_check(self, cb);

    if (err == TORPOR_OK && range == NULL) {
        err = TORPOR_EINVAL;
    }
    if (err != TORPOR_OK) {
        return err;
    }
    if (!room_bytes_ok(range->prefix) || !room_bytes_ok(range->start)
        || !room_bytes_ok(range->end)) {
        return TORPOR_EINVAL;
    }
    if (!room_key_ok(self, range->prefix) || !room_key_ok(self, range->start)
        || !room_key_ok(self, range->end)) {
        return TORPOR_ELIMIT;
    }
    err = room_call_new(self, ref, ROOM_CALL_LIST,
                        range->prefix.len + range->start.len
                            + range->end.len,
                        &c);
    if (err != TORPOR_OK) {
        return err;
    }
    c->rows_cb = cb;
    c->arg = arg;
    c->range = *range;
    c->range.prefix = room_call_copy(c, range->prefix);
    c->range.start = room_call_copy(c, range->start);
    c->range.end = room_call_copy(c, range->end);
    room_call_post(c);
    return TORPOR_OK;
}

torpor_conn_origin
tpr_conn_origin(const torpor_conn *conn)
{
    return conn->id == TPR_CONN_BACKEND_ID ? TORPOR_ORIGIN_BACKEND
                                           : TORPOR_ORIGIN_CLIENT;
}

torpor_err
tpr_room_ops_new(struct tpr_runtime *rt)
{
    struct tpr_room_ops *ro = calloc(1, sizeof(*ro));

    if (ro == NULL) {
        return TORPOR_ENOMEM;
    }
    ro->inflight = calloc(rt->nshards, sizeof(*ro->inflight));
    if (ro->inflight == NULL
        || pthread_mutex_init(&ro->taps_lock, NULL) != 0) {
        free(ro->inflight);
        free(ro);
        return TORPOR_ENOMEM;
    }
    ro->nshards = rt->nshards;
    rt->room_ops = ro;
    return TORPOR_OK;
}

void
tpr_room_ops_free(struct tpr_runtime *rt)
{
    struct tpr_room_ops *ro = rt->room_ops;

    if (ro == NULL) {
        return;
    }
    pthread_mutex_destroy(&ro->taps_lock);
    free(ro->inflight);
    free(ro);
    rt->room_ops = NULL;
}
