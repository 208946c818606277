/*
 * core/object.c: the object table, connection records, and the per-object
 * event queue that makes delivery one-at-a-time and in order.
 *
 * Re-entrancy is the subtle part.  A handler's send can make a transport
 * report a dead peer at once, and a shutdown closes connections while it
 * walks them.  So every entry into an object (a delivery, a host call from
 * outside a handler) raises obj->depth; an event that arrives while depth
 * is raised is queued, and the outermost exit drains the queue.  A
 * connection record is unlinked and freed only when its close event is
 * delivered, never while someone may be walking the list.
 *
 * Missing: hibernation; an object stays in memory while it has connections and is freed with its last one.
 */
#include "build-config.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loader.h"
#include "core/log.h"
#include "core/object.h"
#include "core/runtime.h"

enum conn_state {
    CONN_ATTACHED,  /* accepted, handshake not yet finished */
    CONN_OPEN,      /* the class heard open; may be sent to */
    CONN_CLOSING,   /* a close was asked for; nothing more is sent */
    CONN_CLOSED     /* the transport is done with it; close is queued */
};

struct torpor_conn {
    torpor_object *object;
    struct torpor_plugin_ctx *transport;
    void *tconn;                /* NULL once the transport reported close */
    uint64_t id;
    torpor_conn *prev;
    torpor_conn *next;
    uint8_t state;              /* enum conn_state */
    bool opened;                /* the class was told of the open */
};

enum obj_event_type { OBJ_EV_OPEN, OBJ_EV_MESSAGE, OBJ_EV_CLOSE };

/* A queued event; data holds the message or the close reason. */
struct obj_event {
    struct obj_event *next;
    torpor_conn *conn;
    uint8_t type;
    uint8_t kind;
    bool clean;
    uint16_t code;
    size_t len;
    uint8_t data[];
};

struct torpor_object {
    struct tpr_object_id id;
    struct tpr_runtime *rt;
    struct torpor_plugin_ctx *klass;
    torpor_object *hash_next;
    void *instance;
    bool awake;
    unsigned depth;
    torpor_conn *conns;
    size_t nconns;
    struct obj_event *queue_head;
    struct obj_event *queue_tail;
    char *log_ids;              /* object="class/name", quoted */
    size_t name_len;
    char name[];
};

struct tpr_objects {
    torpor_object **buckets;
    size_t nbuckets;            /* a power of two */
    size_t count;
};

#define OBJECTS_INITIAL_BUCKETS 64

void
tpr_object_id_derive(const char *class_name, const void *name,
                     size_t name_len, struct tpr_object_id *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    /* The NUL keeps ("ab", "c") and ("a", "bc") apart. */
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(ctx, class_name, strlen(class_name) + 1) != 1
        || EVP_DigestUpdate(ctx, name, name_len) != 1
        || EVP_DigestFinal_ex(ctx, md, &md_len) != 1) {
        /* Only on allocation failure; a zero id still finds by name. */
        memset(md, 0, sizeof(md));
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out->bytes, md, sizeof(out->bytes));
}

torpor_err
tpr_objects_new(struct tpr_objects **out)
{
    struct tpr_objects *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (t == NULL) {
        return TORPOR_ENOMEM;
    }
    t->nbuckets = OBJECTS_INITIAL_BUCKETS;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    if (t->buckets == NULL) {
        free(t);
        return TORPOR_ENOMEM;
    }
    *out = t;
    return TORPOR_OK;
}

static size_t
objects_slot(const struct tpr_objects *t, const struct tpr_object_id *id)
{
    uint64_t h;

    memcpy(&h, id->bytes, sizeof(h));
    return (size_t)h & (t->nbuckets - 1);
}

static void
objects_grow(struct tpr_objects *t)
{
    size_t n = t->nbuckets * 2;
    torpor_object **b = calloc(n, sizeof(*b));

    if (b == NULL) {
        return;     /* longer chains, still correct */
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
        torpor_object *o = t->buckets[i];
        while (o != NULL) {
            torpor_object *next = o->hash_next;
            uint64_t h;
            memcpy(&h, o->id.bytes, sizeof(h));
            size_t slot = (size_t)h & (n - 1);
            o->hash_next = b[slot];
            b[slot] = o;
            o = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static torpor_object *
objects_find(struct tpr_objects *t, const struct tpr_object_id *id,
             const struct torpor_plugin_ctx *klass, const void *name,
             size_t name_len)
{
    for (torpor_object *o = t->buckets[objects_slot(t, id)]; o != NULL;
         o = o->hash_next) {
        if (memcmp(o->id.bytes, id->bytes, sizeof(id->bytes)) == 0
            && o->klass == klass && o->name_len == name_len
            && memcmp(o->name, name, name_len) == 0) {
            return o;
        }
    }
    return NULL;
}

static void
objects_unlink(struct tpr_objects *t, torpor_object *obj)
{
    torpor_object **pp = &t->buckets[objects_slot(t, &obj->id)];

    while (*pp != NULL && *pp != obj) {
        pp = &(*pp)->hash_next;
    }
    if (*pp == obj) {
        *pp = obj->hash_next;
        t->count--;
    }
}

static torpor_err
object_new(struct tpr_runtime *rt, struct torpor_plugin_ctx *klass,
           const struct tpr_object_id *id, const void *name, size_t name_len,
           torpor_object **out)
{
    char quoted[TPR_OBJECT_NAME_MAX * 4 + 128];
    char display[TPR_OBJECT_NAME_MAX + 128];   /* class names are short */
    torpor_object *obj = calloc(1, sizeof(*obj) + name_len + 1);

    *out = NULL;
    if (obj == NULL) {
        return TORPOR_ENOMEM;
    }
    obj->id = *id;
    obj->rt = rt;
    obj->klass = klass;
    obj->name_len = name_len;
    memcpy(obj->name, name, name_len);
    /* The name may hold any byte, NUL included: copy, then quote. */
    size_t class_len = strnlen(klass->desc.name, 64);
    size_t display_len = class_len + 1 + name_len;
    memcpy(display, klass->desc.name, class_len);
    display[class_len] = '/';
    memcpy(display + class_len + 1, name, name_len);
    tpr_log_quote(quoted, sizeof(quoted), display, display_len);
    if (asprintf(&obj->log_ids, "object=%s", quoted) < 0) {
        free(obj);
        return TORPOR_ENOMEM;
    }
    struct tpr_objects *t = rt->objects;
    if (t->count >= t->nbuckets) {
        objects_grow(t);
    }
    size_t slot = objects_slot(t, id);
    obj->hash_next = t->buckets[slot];
    t->buckets[slot] = obj;
    t->count++;
    *out = obj;
    return TORPOR_OK;
}

static void
object_sleep(torpor_object *obj)
{
    if (obj->awake && obj->klass->ops.klass.object_destroy != NULL) {
        obj->klass->ops.klass.object_destroy(obj->instance);
    }
    obj->instance = NULL;
    obj->awake = false;
}

static void
object_free(torpor_object *obj)
{
    object_sleep(obj);
    objects_unlink(obj->rt->objects, obj);
    free(obj->log_ids);
    free(obj);
}

/* object_wake runs the class's constructor if the object has no instance. */
static torpor_err
object_wake(torpor_object *obj)
{
    if (obj->awake) {
        return TORPOR_OK;
    }
    struct torpor_plugin_ctx *k = obj->klass;
    torpor_err err = k->ops.klass.object_create(k->state, obj,
                                                &obj->instance);
    if (err != TORPOR_OK) {
        tpr_log(TORPOR_LOG_ERR, k->desc.name, obj->log_ids, "could not create instance: %s", tpr_strerror(err));
        return err;
    }
    obj->awake = true;
    tpr_log(TORPOR_LOG_DEBUG, "core", obj->log_ids, "object woke");
    return TORPOR_OK;
}

static void
conn_unlink(torpor_conn *conn)
{
    torpor_object *obj = conn->object;

    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        obj->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    obj->nconns--;
}

static void
object_handler_failed(torpor_object *obj, torpor_conn *conn,
                      const char *what, torpor_err err)
{
    char ids[512];

    tpr_log(TORPOR_LOG_WARN, obj->klass->desc.name,
            tpr_log_ids(ids, sizeof(ids), obj, conn), "%s handler failed: %s", what, tpr_strerror(err));
}

/* object_deliver hands one event to the class.  depth is raised. */
static void
object_deliver(torpor_object *obj, const struct obj_event *ev,
               const void *data)
{
    const struct torpor_class_ops *ops = &obj->klass->ops.klass;
    torpor_conn *conn = ev->conn;
    torpor_err err = TORPOR_OK;

    if (ev->type == OBJ_EV_CLOSE) {
        if (conn->opened && ops->close != NULL
            && object_wake(obj) == TORPOR_OK) {
            err = ops->close(obj->instance, conn, ev->code, data, ev->len,
                             ev->clean);
            if (err != TORPOR_OK) {
                object_handler_failed(obj, conn, "close", err);
            }
        }
        conn_unlink(conn);
        free(conn);
        tpr_runtime_conn_gone(obj->rt);
        return;
    }
    if (object_wake(obj) != TORPOR_OK) {
        tpr_conn_close(conn, TORPOR_CLOSE_INTERNAL, "", 0);
        return;
    }
    if (ev->type == OBJ_EV_OPEN) {
        conn->opened = true;
        if (ops->open != NULL) {
            err = ops->open(obj->instance, conn);
        }
        if (err != TORPOR_OK) {
            object_handler_failed(obj, conn, "open", err);
        }
    } else if (ops->message != NULL) {
        err = ops->message(obj->instance, conn, ev->kind, data, ev->len);
        if (err != TORPOR_OK) {
            object_handler_failed(obj, conn, "message", err);
        }
    }
}

static void
object_enter(torpor_object *obj)
{
    obj->depth++;
}

/*
 * object_leave drains the queue when the outermost caller leaves, and
 * frees the object once it has no connection left.  obj may be gone on
 * return.
 */
static void
object_leave(torpor_object *obj)
{
    if (obj->depth == 1) {
        while (obj->queue_head != NULL) {
            struct obj_event *ev = obj->queue_head;
            obj->queue_head = ev->next;
            if (obj->queue_head == NULL) {
                obj->queue_tail = NULL;
            }
            object_deliver(obj, ev, ev->data);
            free(ev);
        }
    }
    obj->depth--;
    if (obj->depth == 0 && obj->nconns == 0) {
        object_free(obj);
    }
}

/* object_post delivers now if the object is idle, or queues a copy. */
static void
object_post(torpor_object *obj, const struct obj_event *ev, const void *data)
{
    if (obj->depth == 0) {
        object_enter(obj);
        object_deliver(obj, ev, data);
        object_leave(obj);
        return;
    }
    struct obj_event *copy = malloc(sizeof(*copy) + ev->len);
    if (copy == NULL) {
        /* Missing: back-pressure on the sender; under memory exhaustion a message is dropped. */
        tpr_log(TORPOR_LOG_ERR, "core", obj->log_ids, "could not queue event: out of memory");
        return;
    }
    *copy = *ev;
    copy->next = NULL;
    if (ev->len > 0) {
        memcpy(copy->data, data, ev->len);
    }
    if (obj->queue_tail != NULL) {
        obj->queue_tail->next = copy;
    } else {
        obj->queue_head = copy;
    }
    obj->queue_tail = copy;
}

torpor_err
tpr_object_attach(struct tpr_runtime *rt, struct torpor_plugin_ctx *klass,
                  struct torpor_plugin_ctx *transport,
                  const torpor_attach_req *req, void *tconn,
                  torpor_conn **out, int *http_status)
{
    struct tpr_object_id id;
    torpor_object *obj;

    *out = NULL;
    if (rt->stopping) {
        *http_status = 503;
        return TORPOR_ECLOSED;
    }
    if (req->name.len == 0 || req->name.len > TPR_OBJECT_NAME_MAX) {
        *http_status = 400;
        return TORPOR_EINVAL;
    }
    tpr_object_id_derive(klass->desc.name, req->name.data, req->name.len,
                         &id);
    obj = objects_find(rt->objects, &id, klass, req->name.data,
                       req->name.len);
    if (obj == NULL && object_new(rt, klass, &id, req->name.data,
                                  req->name.len, &obj) != TORPOR_OK) {
        *http_status = 503;
        return TORPOR_ENOMEM;
    }
    torpor_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        if (obj->nconns == 0 && obj->depth == 0) {
            object_free(obj);
        }
        *http_status = 503;
        return TORPOR_ENOMEM;
    }
    conn->object = obj;
    conn->transport = transport;
    conn->tconn = tconn;
    conn->id = ++rt->next_conn_id;
    conn->state = CONN_ATTACHED;
    conn->next = obj->conns;
    if (obj->conns != NULL) {
        obj->conns->prev = conn;
    }
    obj->conns = conn;
    obj->nconns++;
    rt->nconns++;

    const struct torpor_class_ops *ops = &klass->ops.klass;
    if (ops->accept != NULL) {
        int status = 403;
        object_enter(obj);
        torpor_err err = object_wake(obj);
        if (err == TORPOR_OK) {
            err = ops->accept(obj->instance, conn, req, &status);
        }
        if (err != TORPOR_OK) {
            *http_status = err == TORPOR_EREFUSED ? status : 500;
            conn_unlink(conn);
            free(conn);
            rt->nconns--;
            object_leave(obj);
            return err == TORPOR_EREFUSED ? err : TORPOR_EREFUSED;
        }
        object_leave(obj);
    }
    *out = conn;
    return TORPOR_OK;
}

void
tpr_conn_opened(torpor_conn *conn)
{
    struct obj_event ev = {.type = OBJ_EV_OPEN, .conn = conn};

    if (conn->state != CONN_ATTACHED) {
        return;
    }
    conn->state = CONN_OPEN;
    object_post(conn->object, &ev, NULL);
}

void
tpr_conn_received(torpor_conn *conn, torpor_msg_kind kind, const void *data,
                  size_t len)
{
    struct obj_event ev = {
        .type = OBJ_EV_MESSAGE, .conn = conn, .kind = (uint8_t)kind,
        .len = len,
    };

    if (conn->state != CONN_OPEN) {
        return;     /* nothing is delivered after a close was asked for */
    }
    object_post(conn->object, &ev, data);
}

void
tpr_conn_closed(torpor_conn *conn, uint16_t code, const char *reason,
                size_t reason_len, bool clean)
{
    struct obj_event ev = {
        .type = OBJ_EV_CLOSE, .conn = conn, .code = code, .clean = clean,
        .len = reason_len,
    };

    if (conn->state == CONN_CLOSED) {
        return;
    }
    conn->state = CONN_CLOSED;
    conn->tconn = NULL;
    object_post(conn->object, &ev, reason);
}

torpor_err
tpr_conn_send(torpor_conn *conn, torpor_msg_kind kind, const void *data,
              size_t len)
{
    const struct torpor_transport_ops *t = &conn->transport->ops.transport;
    torpor_frame *frame;

    if (conn->state != CONN_OPEN) {
        return TORPOR_ECLOSED;
    }
    torpor_err err = t->frame_encode(conn->transport->state, kind, data, len,
                                     &frame);
    if (err != TORPOR_OK) {
        return err;
    }
    torpor_object *obj = conn->object;
    object_enter(obj);
    err = t->frame_send(conn->tconn, frame);
    t->frame_release(frame);
    object_leave(obj);
    return err;
}

/* Frames encoded for one broadcast, one per transport seen. */
#define BROADCAST_TRANSPORTS 4

torpor_err
tpr_object_broadcast(torpor_object *obj, torpor_msg_kind kind,
                     const void *data, size_t len, const torpor_conn *except)
{
    struct {
        struct torpor_plugin_ctx *transport;
        torpor_frame *frame;
    } enc[BROADCAST_TRANSPORTS];
    size_t nenc = 0;
    torpor_err result = TORPOR_OK;

    object_enter(obj);
    for (torpor_conn *c = obj->conns; c != NULL; c = c->next) {
        if (c == except || c->state != CONN_OPEN) {
            continue;
        }
        const struct torpor_transport_ops *t = &c->transport->ops.transport;
        torpor_frame *frame = NULL;
        bool owned = false;     /* not in enc: release after this send */
        size_t i;
        for (i = 0; i < nenc && enc[i].transport != c->transport; i++) {
        }
        if (i < nenc) {
            frame = enc[i].frame;
        } else {
            torpor_err err = t->frame_encode(c->transport->state, kind, data,
                                             len, &frame);
            if (err != TORPOR_OK) {
                result = err;
                continue;
            }
            if (nenc < BROADCAST_TRANSPORTS) {
                enc[nenc].transport = c->transport;
                enc[nenc].frame = frame;
                nenc++;
            } else {
                owned = true;
            }
        }
        /* A refused send closes that connection; the room goes on. */
        (void)t->frame_send(c->tconn, frame);
        if (owned) {
            t->frame_release(frame);
        }
    }
    for (size_t i = 0; i < nenc; i++) {
        enc[i].transport->ops.transport.frame_release(enc[i].frame);
    }
    object_leave(obj);
    return result;
}

torpor_err
tpr_conn_close(torpor_conn *conn, uint16_t code, const char *reason,
               size_t reason_len)
{
    if (conn->state != CONN_OPEN && conn->state != CONN_ATTACHED) {
        return TORPOR_ECLOSED;
    }
    if (reason_len > 123) {
        return TORPOR_EINVAL;
    }
    conn->state = CONN_CLOSING;
    torpor_object *obj = conn->object;
    object_enter(obj);
    torpor_err err = conn->transport->ops.transport.close(conn->tconn, code,
                                                          reason, reason_len);
    object_leave(obj);
    return err;
}

torpor_bytes
tpr_object_name(const torpor_object *object)
{
    return (torpor_bytes){.data = object->name, .len = object->name_len};
}

uint64_t
tpr_conn_id(const torpor_conn *conn)
{
    return conn->id;
}

torpor_object *
tpr_conn_object(const torpor_conn *conn)
{
    return conn->object;
}

size_t
tpr_object_conn_count(const torpor_object *object)
{
    return object->nconns;
}

const char *
tpr_log_ids(char *buf, size_t size, const torpor_object *object,
            const torpor_conn *conn)
{
    if (conn != NULL && object == NULL) {
        object = conn->object;
    }
    if (object == NULL) {
        return NULL;
    }
    if (conn != NULL) {
        snprintf(buf, size, "%s conn=%llu", object->log_ids,
                 (unsigned long long)conn->id);
    } else {
        snprintf(buf, size, "%s", object->log_ids);
    }
    return buf;
}

void
tpr_objects_close_all(struct tpr_objects *t, uint16_t code,
                      const char *reason)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        torpor_object *obj = t->buckets[i];
        while (obj != NULL) {
            torpor_object *next = obj->hash_next;
            object_enter(obj);
            for (torpor_conn *c = obj->conns; c != NULL; c = c->next) {
                tpr_conn_close(c, code, reason, strlen(reason));
            }
            object_leave(obj);
            obj = next;
        }
    }
}

void
tpr_objects_free(struct tpr_objects *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
        torpor_object *obj = t->buckets[i];
        while (obj != NULL) {
            torpor_object *next = obj->hash_next;
            while (obj->queue_head != NULL) {
                struct obj_event *ev = obj->queue_head;
                obj->queue_head = ev->next;
                free(ev);
            }
            while (obj->conns != NULL) {
                torpor_conn *c = obj->conns;
                obj->conns = c->next;
                free(c);
            }
            object_sleep(obj);
            free(obj->log_ids);
            free(obj);
            obj = next;
        }
    }
    free(t->buckets);
    free(t);
}
