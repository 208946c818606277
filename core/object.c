/*
 * core/object.c: object ids, the object table, the object's lifecycle
 * (make, wake, sleep, free) and connection records.  Event delivery is in
 * event.c, output in output.c, storage in object_storage.c.
 *
 * Missing: hibernation; an object stays in memory while it has connections and is freed with its last one.
 */
#include "build-config.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/runtime.h"

struct tpr_objects {
    torpor_object **buckets;
    size_t nbuckets;            /* a power of two */
    size_t count;
};

#define OBJECTS_INITIAL_BUCKETS 64

static int
object_hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * object_unique_name: whether name is a unique object's, "~" and 32
 * lowercase hex digits of an id whose top bit is set; if so, its id.
 * Named ids have that bit clear, so no name can reach a unique object's
 * id, or the other way round.
 */
static bool
object_unique_name(const void *name, size_t len, struct tpr_object_id *out)
{
    const unsigned char *p = name;
    struct tpr_object_id id;

    if (len != 33 || p[0] != '~') {
        return false;
    }
    for (size_t i = 0; i < 16; i++) {
        int hi = object_hex_digit(p[1 + 2 * i]);
        int lo = object_hex_digit(p[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        id.bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    if ((id.bytes[0] & 0x80) == 0) {
        return false;
    }
    *out = id;
    return true;
}

void
tpr_object_id_derive(const char *class_name, const void *name,
                     size_t name_len, struct tpr_object_id *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (object_unique_name(name, name_len, out)) {
        return;
    }
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
    out->bytes[0] &= 0x7f;      /* the other half is for unique ids */
}

torpor_err
tpr_object_id_random(struct tpr_object_id *out, char name[34])
{
    static const char hex[] = "0123456789abcdef";

    if (RAND_bytes(out->bytes, sizeof(out->bytes)) != 1) {
        return TORPOR_EIO;
    }
    out->bytes[0] |= 0x80;
    name[0] = '~';
    for (size_t i = 0; i < sizeof(out->bytes); i++) {
        name[1 + 2 * i] = hex[out->bytes[i] >> 4];
        name[2 + 2 * i] = hex[out->bytes[i] & 15];
    }
    name[33] = '\0';
    return TORPOR_OK;
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
object_new(struct tpr_shard *shard, struct torpor_plugin_ctx *klass,
           const struct tpr_object_id *id, const void *name, size_t name_len,
           torpor_object **out)
{
    struct tpr_runtime *rt = shard->rt;
    char ids[TPR_OBJECT_NAME_MAX * 4 + 128];
    char display[TPR_OBJECT_NAME_MAX + 128];   /* class names are short */

    *out = NULL;
    if (name_len > UINT16_MAX) {
        return TORPOR_EINVAL;
    }
    /* The name may hold any byte, NUL included: copy, then quote. */
    size_t class_len = strnlen(klass->desc.name, 64);
    size_t display_len = class_len + 1 + name_len;
    memcpy(display, klass->desc.name, class_len);
    display[class_len] = '/';
    memcpy(display + class_len + 1, name, name_len);
    memcpy(ids, "object=", 7);
    tpr_log_quote(ids + 7, sizeof(ids) - 7, display, display_len);
    size_t ids_len = strlen(ids);
    /* The log ids follow the name, in the same allocation. */
    torpor_object *obj = calloc(1, sizeof(*obj) + name_len + 1 + ids_len + 1);
    if (obj == NULL) {
        return TORPOR_ENOMEM;
    }
    obj->id = *id;
    obj->rt = rt;
    obj->shard = shard;
    obj->klass = klass;
    obj->name_len = (uint16_t)name_len;
    memcpy(obj->name, name, name_len);
    memcpy(obj->name + name_len + 1, ids, ids_len + 1);
    struct tpr_objects *t = shard->objects;
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

void
tpr_object_sleep(torpor_object *obj)
{
    if (!obj->awake) {
        return;
    }
    if (obj->klass->ops.klass.object_destroy != NULL) {
        obj->klass->ops.klass.object_destroy(obj->instance);
    }
    tpr_object_idle_stop(obj);
    obj->instance = NULL;
    obj->awake = false;
    obj->shard->stats.objects_awake--;
}

void
tpr_object_free(torpor_object *obj)
{
    tpr_object_sleep(obj);
    tpr_alarms_free(obj);
    tpr_auto_table_free(obj->auto_responses);
    if (obj->hibernating) {
        obj->shard->stats.objects_hibernating--;
    }
    objects_unlink(obj->shard->objects, obj);
    free(obj);
}

torpor_err
tpr_object_wake(torpor_object *obj)
{
    if (obj->awake) {
        return TORPOR_OK;
    }
    struct torpor_plugin_ctx *k = obj->klass;
    torpor_err err = k->ops.klass.object_create(k->state, obj,
                                                &obj->instance);
    if (err != TORPOR_OK) {
        tpr_log(TORPOR_LOG_ERR, k->desc.name, tpr_object_log_ids(obj), "could not create instance: %s", tpr_strerror(err));
        return err;
    }
    obj->awake = true;
    obj->shard->stats.objects_awake++;
    obj->shard->stats.wakeups++;
    if (obj->hibernating) {
        obj->hibernating = false;
        obj->shard->stats.objects_hibernating--;
        tpr_log(TORPOR_LOG_INFO, "core", tpr_object_log_ids(obj), "object woke from hibernation");
    }
    tpr_object_idle_start(obj);
    return TORPOR_OK;
}

torpor_conn *
tpr_conn_next(const torpor_conn *conn)
{
    return tpr_conn_near(conn, conn->next);
}

void
tpr_conn_unlink(torpor_conn *conn)
{
    torpor_object *obj = conn->object;
    torpor_conn *prev = tpr_conn_near(conn, conn->prev);
    torpor_conn *next = tpr_conn_near(conn, conn->next);

    if (prev != NULL) {
        prev->next = conn->next;
    } else {
        obj->conns = next;
    }
    if (next != NULL) {
        next->prev = conn->prev;
    }
    obj->nconns--;
}

void
tpr_conn_free(torpor_conn *conn)
{
    tpr_conn_extra_free(conn);
    conn->object = NULL;
    if (conn->transport_done) {
        tpr_conn_delete(conn);
    }
}

void
tpr_conn_release(torpor_conn *conn)
{
    if (conn->state != CONN_CLOSED) {
        /* A transport that never said the connection closed: it did. */
        tpr_conn_closed(conn, TORPOR_CLOSE_ABNORMAL, NULL, 0, false);
    }
    conn->transport_done = true;
    if (conn->object == NULL) {
        tpr_conn_delete(conn);
    }
}

torpor_loop *
tpr_conn_loop(const torpor_conn *conn)
{
    return tpr_conn_shard(conn)->loop;
}

torpor_err
tpr_object_get(struct tpr_runtime *rt, struct torpor_plugin_ctx *klass,
               const void *name, size_t name_len, torpor_object **out)
{
    struct tpr_object_id id;

    tpr_object_id_derive(klass->desc.name, name, name_len, &id);
    struct tpr_shard *shard = tpr_runtime_shard(rt, id.bytes);
    *out = objects_find(shard->objects, &id, klass, name, name_len);
    if (*out != NULL) {
        return TORPOR_OK;
    }
    return object_new(shard, klass, &id, name, name_len, out);
}

/*
 * object_conn_refused drops a record whose attach failed.  Its transport
 * part is only a copy: the transport still owns what it names.
 */
static void
object_conn_refused(torpor_conn *conn)
{
    conn->transport_done = true;
    tpr_conn_unlink(conn);
    tpr_conn_free(conn);
}

torpor_object *
tpr_object_find(struct tpr_shard *shard, const struct tpr_object_id *id,
                const struct torpor_plugin_ctx *klass, const void *name,
                size_t name_len)
{
    struct tpr_objects *t = shard->objects;

    if (klass != NULL) {
        return objects_find(t, id, klass, name, name_len);
    }
    for (torpor_object *o = t->buckets[objects_slot(t, id)]; o != NULL;
         o = o->hash_next) {
        if (memcmp(o->id.bytes, id->bytes, sizeof(id->bytes)) == 0) {
            return o;
        }
    }
    return NULL;
}

/* object_attach_here joins a connection; on the object's shard thread. */
static torpor_err
object_attach_here(struct tpr_shard *shard, struct torpor_plugin_ctx *klass,
                   const struct tpr_object_id *id,
                   struct torpor_plugin_ctx *transport,
                   const torpor_attach_req *req, void *tconn,
                   torpor_conn **out, int *http_status)
{
    struct tpr_runtime *rt = shard->rt;
    torpor_object *obj;

    *out = NULL;
    if (tpr_runtime_stopping(rt)) {
        *http_status = 503;
        return TORPOR_ECLOSED;
    }
    obj = objects_find(shard->objects, id, klass, req->name.data,
                       req->name.len);
    if (obj == NULL && object_new(shard, klass, id, req->name.data,
                                  req->name.len, &obj) != TORPOR_OK) {
        *http_status = 503;
        return TORPOR_ENOMEM;
    }
    if (obj->nconns >= rt->cfg->max_connections_per_object) {
        tpr_log(TORPOR_LOG_WARN, "core", tpr_object_log_ids(obj), "could not attach a connection from %s: %zu connections, limit %llu", req->peer ? req->peer : "?", (size_t)obj->nconns, (unsigned long long)rt->cfg->max_connections_per_object);
        *http_status = 503;
        return TORPOR_ELIMIT;
    }
    torpor_conn *conn;
    torpor_err nerr = tpr_conn_new(shard->conns, transport, tconn, &conn);
    if (nerr != TORPOR_OK) {
        if (obj->nconns == 0 && obj->depth == 0 && !tpr_object_gated(obj)) {
            tpr_object_free(obj);
        }
        *http_status = 503;
        return nerr;
    }
    conn->object = obj;
    conn->id = __atomic_add_fetch(&rt->next_conn_id, 1, __ATOMIC_RELAXED);
    conn->state = CONN_ATTACHED;
    if (obj->conns != NULL) {
        conn->next = tpr_conn_ref(obj->conns);
        obj->conns->prev = tpr_conn_ref(conn);
    }
    obj->conns = conn;
    obj->nconns++;
    __atomic_add_fetch(&rt->nconns, 1, __ATOMIC_RELAXED);

    torpor_err terr = tpr_conn_tags_from_query(conn, req->query);
    if (terr != TORPOR_OK) {
        *http_status = terr == TORPOR_ENOMEM ? 503 : 400;
        tpr_object_enter(obj);
        object_conn_refused(conn);
        __atomic_sub_fetch(&rt->nconns, 1, __ATOMIC_RELAXED);
        tpr_object_leave(obj);
        return terr;
    }

    const struct torpor_class_ops *ops = &klass->ops.klass;
    /* Missing: accept waits for no storage read; an object busy in an event or reading in its constructor still answers at once. */
    if (ops->accept != NULL) {
        int status = 403;
        tpr_object_enter(obj);
        torpor_err err = tpr_object_wake(obj);
        if (err == TORPOR_OK) {
            conn->accepting = true;
            err = ops->accept(obj->instance, conn, req, &status);
            conn->accepting = false;
        }
        if (err != TORPOR_OK) {
            *http_status = err == TORPOR_EREFUSED ? status : 500;
            object_conn_refused(conn);
            __atomic_sub_fetch(&rt->nconns, 1, __ATOMIC_RELAXED);
            tpr_object_leave(obj);
            return err == TORPOR_EREFUSED ? err : TORPOR_EREFUSED;
        }
        tpr_object_leave(obj);
    }
    *out = conn;
    return TORPOR_OK;
}

/*
 * An attach run on another shard's thread while the main thread waits:
 * the class's accept must answer before the handshake completes, and only
 * the object's own thread may touch the object.
 */
struct attach_call {
    torpor_task task;
    struct tpr_shard *shard;
    struct torpor_plugin_ctx *klass;
    const struct tpr_object_id *id;
    struct torpor_plugin_ctx *transport;
    const torpor_attach_req *req;
    void *tconn;
    torpor_conn *conn;
    int http_status;
    torpor_err err;
    bool done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void
attach_call_run(torpor_task *task)
{
    struct attach_call *c = (struct attach_call *)task;

    c->err = object_attach_here(c->shard, c->klass, c->id, c->transport,
                                c->req, c->tconn, &c->conn,
                                &c->http_status);
    pthread_mutex_lock(&c->lock);
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

torpor_err
tpr_object_attach(struct tpr_runtime *rt, struct torpor_plugin_ctx *klass,
                  struct torpor_plugin_ctx *transport,
                  const torpor_attach_req *req, void *tconn,
                  torpor_conn **out, torpor_loop **loop, int *http_status)
{
    struct tpr_object_id id;

    *out = NULL;
    if (req->name.len == 0 || req->name.len > TPR_OBJECT_NAME_MAX) {
        *http_status = 400;
        return TORPOR_EINVAL;
    }
    /* "~new" makes a unique object: a random id, named by it. */
    torpor_attach_req unique_req;
    char unique_name[34];
    if (req->name.len == 4 && memcmp(req->name.data, "~new", 4) == 0) {
        if (tpr_object_id_random(&id, unique_name) != TORPOR_OK) {
            *http_status = 503;
            return TORPOR_EIO;
        }
        unique_req = *req;
        unique_req.name = (torpor_bytes){.data = unique_name, .len = 33};
        req = &unique_req;
    } else {
        tpr_object_id_derive(klass->desc.name, req->name.data, req->name.len,
                             &id);
    }
    struct tpr_shard *shard = tpr_runtime_shard(rt, id.bytes);
    *loop = shard->loop;
    if (shard->loop == rt->loop) {
        return object_attach_here(shard, klass, &id, transport, req, tconn,
                                  out, http_status);
    }
    /* Missing: the main thread waits for the shard; a shard stuck in a runaway handler stalls every new connection meanwhile. */
    struct attach_call c = {
        .task.run = attach_call_run, .shard = shard, .klass = klass,
        .id = &id, .transport = transport, .req = req, .tconn = tconn,
    };
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    tpr_loop_post(shard->loop, &c.task);
    pthread_mutex_lock(&c.lock);
    while (!c.done) {
        pthread_cond_wait(&c.cond, &c.lock);
    }
    pthread_mutex_unlock(&c.lock);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
    *out = c.conn;
    *http_status = c.http_status;
    return c.err;
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
        snprintf(buf, size, "%s conn=%llu", tpr_object_log_ids(object),
                 (unsigned long long)conn->id);
    } else {
        snprintf(buf, size, "%s", tpr_object_log_ids(object));
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
            tpr_object_enter(obj);
            for (torpor_conn *c = obj->conns; c != NULL;
                 c = tpr_conn_next(c)) {
                tpr_conn_close(c, code, reason, strlen(reason));
            }
            tpr_object_leave(obj);
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
            tpr_output_drop(obj);   /* held closes refer to connections */
            while (obj->conns != NULL) {
                torpor_conn *c = obj->conns;
                obj->conns = tpr_conn_next(c);
                tpr_conn_free(c);
            }
            free(obj->parked);
            tpr_alarms_free(obj);
            tpr_auto_table_free(obj->auto_responses);
            tpr_batch_clear(&obj->batch);
            tpr_object_sleep(obj);
            free(obj);
            obj = next;
        }
    }
    free(t->buckets);
    free(t);
}
