/*
 * Requests: decoding, the checks every request passes (protocol version,
 * a known operation, the address's permission, well-formed fields), and
 * the host call that carries each operation to its room.  On nng's
 * threads; a request that fails a check is answered at once, and one that
 * passes is answered from the room's loop (nngt_reply.c).
 */
#include "nngt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each operation is called on the wire and which permission it needs. */
static bool
nngt_op_of(Torpor__Nng__Request__OperationCase c, const char **name,
           unsigned *needs)
{
    switch (c) {
    case TORPOR__NNG__REQUEST__OPERATION_PUBLISH:
        *name = "publish", *needs = NNGT_OP_PUBLISH;
        return true;
    case TORPOR__NNG__REQUEST__OPERATION_DELIVER:
        *name = "deliver", *needs = NNGT_OP_DELIVER;
        return true;
    case TORPOR__NNG__REQUEST__OPERATION_LIST_CONNECTIONS:
        *name = "list_connections", *needs = NNGT_OP_INSPECT;
        return true;
    case TORPOR__NNG__REQUEST__OPERATION_STORAGE_GET:
        *name = "storage_get", *needs = NNGT_OP_STORAGE_READ;
        return true;
    case TORPOR__NNG__REQUEST__OPERATION_STORAGE_LIST:
        *name = "storage_list", *needs = NNGT_OP_STORAGE_READ;
        return true;
    default:
        return false;
    }
}

static torpor_bytes
nngt_bytes(const void *data, size_t len)
{
    return (torpor_bytes){.data = data, .len = len};
}

/*
 * nngt_room reads a Room into ref; on a malformed one it answers r and
 * returns false.  The ref borrows r->in's bytes.
 */
static bool
nngt_room(struct nngt_req *r, const Torpor__Nng__Room *room,
          const char *field, torpor_room_ref *ref)
{
    memset(ref, 0, sizeof(*ref));
    ref->size = sizeof(*ref);
    if (room == NULL) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "%s is missing", field);
        return false;
    }
    if (room->id.len != 0 && room->id.len != 16) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "%s.id has %zu bytes, expected 16", field, room->id.len);
        return false;
    }
    ref->route = nngt_bytes(room->route, strlen(room->route));
    ref->class_name = nngt_bytes(room->class_name, strlen(room->class_name));
    ref->name = nngt_bytes(room->name.data, room->name.len);
    ref->id = room->id.len == 16 ? room->id.data : NULL;
    return true;
}

/* nngt_message reads a Message into m; answers r on a bad one. */
static bool
nngt_message(struct nngt_req *r, const Torpor__Message *message,
             const char *field, torpor_room_msg *m)
{
    uint64_t max = r->listener->nt->cfg.max_message_bytes;

    memset(m, 0, sizeof(*m));
    m->size = sizeof(*m);
    if (message == NULL) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "%s is missing", field);
        return false;
    }
    if (message->kind != TORPOR__MESSAGE__KIND__TEXT
        && message->kind != TORPOR__MESSAGE__KIND__BINARY) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "%s.kind is %d: expected TEXT (1) or BINARY (2)", field, (int)message->kind);
        return false;
    }
    if (message->data.len > max) {
        nngt_fail(r, TORPOR__NNG__STATUS__TOO_LARGE, "%s.data has %zu bytes, limit %llu (max_message_bytes)", field, message->data.len, (unsigned long long)max);
        return false;
    }
    if (message->kind == TORPOR__MESSAGE__KIND__TEXT
        && !nngt_utf8_valid(message->data.data, message->data.len)) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "%s.data is not valid UTF-8, which TEXT requires", field);
        return false;
    }
    m->kind = message->kind == TORPOR__MESSAGE__KIND__TEXT
                  ? TORPOR_MSG_TEXT
                  : TORPOR_MSG_BINARY;
    m->data = nngt_bytes(message->data.data, message->data.len);
    return true;
}

/* nngt_call_failed answers a host call that refused at once. */
static void
nngt_call_failed(struct nngt_req *r, torpor_err err,
                 const torpor_room_ref *ref)
{
    switch (err) {
    case TORPOR_EINVAL:
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "bad room: give route or class_name, not both, with a name of 1 to 256 bytes other than \"~new\"; or a 16-byte id alone");
        break;
    case TORPOR_ENOENT:
        if (ref->route.len > 0) {
            nngt_fail(r, TORPOR__NNG__STATUS__NOT_FOUND, "no route \"%.*s\"", (int)(ref->route.len > 64 ? 64 : ref->route.len), (const char *)ref->route.data);
        } else {
            nngt_fail(r, TORPOR__NNG__STATUS__NOT_FOUND, "no class \"%.*s\" is loaded", (int)(ref->class_name.len > 64 ? 64 : ref->class_name.len), (const char *)ref->class_name.data);
        }
        break;
    case TORPOR_ECLOSED:
        nngt_fail(r, TORPOR__NNG__STATUS__UNAVAILABLE, "torpord is shutting down");
        break;
    case TORPOR_EUNSUPPORTED:
        nngt_fail(r, TORPOR__NNG__STATUS__UNAVAILABLE, "no storage backend is configured");
        break;
    case TORPOR_ELIMIT:
        nngt_fail(r, TORPOR__NNG__STATUS__TOO_LARGE, "a key is longer than [storage] max_key_bytes");
        break;
    default:
        nngt_fail(r, TORPOR__NNG__STATUS__INTERNAL, "could not start the operation: %s", r->listener->nt->host->strerror(err));
        break;
    }
}

/*
 * nngt_dispatched ends the handling of a request on nng's thread: the
 * host call took it, or it was answered.  It must not touch the request,
 * which the room's loop may have answered and freed already.
 */
static void
nngt_dispatched(const struct nngt_listener *l, const char *op, torpor_err err)
{
    const struct nngt_state *nt = l->nt;

    if (err == TORPOR_OK && nt->host->log_enabled(nt->self, TORPOR_LOG_DEBUG)) {
        NNGT_LOG(nt, TORPOR_LOG_DEBUG, "%s request on %s handed to its room", op, l->addr->key);
    }
}

static void
nngt_publish(struct nngt_req *r)
{
    const struct nngt_listener *l = r->listener;
    const struct nngt_state *nt = l->nt;
    const Torpor__Nng__Publish *p = r->in->publish;
    torpor_room_ref ref;
    torpor_room_msg m;

    if (!nngt_room(r, p->room, "publish.room", &ref)
        || !nngt_message(r, p->message, "publish.message", &m)) {
        return;
    }
    torpor_err err = nt->host->room_publish(nt->self, &ref, &m, r,
                                            nngt_on_published, r);
    if (err != TORPOR_OK) {
        nngt_call_failed(r, err, &ref);
    }
    nngt_dispatched(l, "publish", err);
}

static void
nngt_deliver(struct nngt_req *r)
{
    const struct nngt_listener *l = r->listener;
    const struct nngt_state *nt = l->nt;
    const Torpor__Nng__Deliver *d = r->in->deliver;
    torpor_room_ref ref;
    torpor_room_msg m;

    if (!nngt_room(r, d->room, "deliver.room", &ref)
        || !nngt_message(r, d->message, "deliver.message", &m)) {
        return;
    }
    torpor_bytes tag = nngt_bytes(d->tag.data, d->tag.len);
    m.tag = d->tag.len > 0 ? &tag : NULL;
    m.except_conn = d->except_conn;
    torpor_err err = nt->host->room_deliver(nt->self, &ref, &m,
                                            nngt_on_delivered, r);
    if (err != TORPOR_OK) {
        nngt_call_failed(r, err, &ref);
    }
    nngt_dispatched(l, "deliver", err);
}

static void
nngt_list_connections(struct nngt_req *r)
{
    const struct nngt_listener *l = r->listener;
    const struct nngt_state *nt = l->nt;
    const Torpor__Nng__ListConnections *lc = r->in->list_connections;
    torpor_room_ref ref;

    if (!nngt_room(r, lc->room, "list_connections.room", &ref)) {
        return;
    }
    torpor_bytes tag = nngt_bytes(lc->tag.data, lc->tag.len);
    torpor_err err = nt->host->room_conns(nt->self, &ref,
                                          lc->tag.len > 0 ? &tag : NULL,
                                          nngt_on_conns, r);
    if (err != TORPOR_OK) {
        nngt_call_failed(r, err, &ref);
    }
    nngt_dispatched(l, "list_connections", err);
}

static void
nngt_storage_get(struct nngt_req *r)
{
    const struct nngt_listener *l = r->listener;
    const struct nngt_state *nt = l->nt;
    const Torpor__Nng__StorageGet *g = r->in->storage_get;
    torpor_room_ref ref;

    if (!nngt_room(r, g->room, "storage_get.room", &ref)) {
        return;
    }
    if (g->n_keys == 0 || g->n_keys > NNGT_ROWS_MAX) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "storage_get.keys has %zu keys: expected 1 to %d", g->n_keys, NNGT_ROWS_MAX);
        return;
    }
    torpor_bytes *keys = malloc(g->n_keys * sizeof(*keys));
    if (keys == NULL) {
        nngt_fail(r, TORPOR__NNG__STATUS__INTERNAL, "out of memory");
        return;
    }
    for (size_t i = 0; i < g->n_keys; i++) {
        keys[i] = nngt_bytes(g->keys[i].data, g->keys[i].len);
    }
    /* The core copies the keys before it returns. */
    torpor_err err = nt->host->room_storage_get(nt->self, &ref, keys,
                                                g->n_keys, nngt_on_rows, r);
    free(keys);
    if (err != TORPOR_OK) {
        nngt_call_failed(r, err, &ref);
    }
    nngt_dispatched(l, "storage_get", err);
}

static void
nngt_storage_list(struct nngt_req *r)
{
    const struct nngt_listener *l = r->listener;
    const struct nngt_state *nt = l->nt;
    const Torpor__Nng__StorageList *sl = r->in->storage_list;
    torpor_room_ref ref;

    if (!nngt_room(r, sl->room, "storage_list.room", &ref)) {
        return;
    }
    torpor_range range = {
        .prefix = nngt_bytes(sl->prefix.data, sl->prefix.len),
        .start = nngt_bytes(sl->start.data, sl->start.len),
        .end = nngt_bytes(sl->end.data, sl->end.len),
        .has_start = sl->start.len > 0,
        .has_end = sl->end.len > 0,
        .reverse = sl->reverse,
        .limit = sl->limit == 0 || sl->limit > NNGT_ROWS_MAX
                     ? NNGT_ROWS_MAX
                     : sl->limit,
    };
    torpor_err err = nt->host->room_storage_list(nt->self, &ref, &range,
                                                 nngt_on_rows, r);
    if (err != TORPOR_OK) {
        nngt_call_failed(r, err, &ref);
    }
    nngt_dispatched(l, "storage_list", err);
}

/* nngt_unknown_op: the lowest unknown field from 10 up, or 0. */
static uint32_t
nngt_unknown_op(const Torpor__Nng__Request *in)
{
    uint32_t op = 0;

    for (unsigned i = 0; i < in->base.n_unknown_fields; i++) {
        uint32_t tag = in->base.unknown_fields[i].tag;
        if (tag >= 10 && (op == 0 || tag < op)) {
            op = tag;
        }
    }
    return op;
}

/* nngt_checked: the request passes the version, operation and permission
 * checks; otherwise it was answered. */
static bool
nngt_checked(struct nngt_req *r)
{
    const Torpor__Nng__Request *in = r->in;
    const struct nngt_addr *addr = r->listener->addr;
    const char *name;
    unsigned needs;
    char allowed[128];

    if (in->version == 0) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "version is missing: set it to the protocol version the client speaks, %d", NNGT_PROTOCOL_VERSION);
        return false;
    }
    if (in->version != NNGT_PROTOCOL_VERSION) {
        nngt_fail(r, TORPOR__NNG__STATUS__UNSUPPORTED_VERSION, "protocol version %u is not supported: this server speaks %d", in->version, NNGT_PROTOCOL_VERSION);
        return false;
    }
    if (!nngt_op_of(in->operation_case, &name, &needs)) {
        uint32_t field = nngt_unknown_op(in);
        if (field != 0) {
            nngt_fail(r, TORPOR__NNG__STATUS__UNKNOWN_OPERATION, "unknown operation (field %u): this server knows publish, deliver, list_connections, storage_get and storage_list", field);
        } else {
            nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "no operation: set one of publish, deliver, list_connections, storage_get or storage_list");
        }
        return false;
    }
    if ((addr->ops & needs) == 0) {
        char needed[32];
        nngt_fail(r, TORPOR__NNG__STATUS__NOT_PERMITTED, "operation \"%s\" needs \"%s\", which %s (%s) does not allow; it allows %s", name, nngt_ops_text(needs, needed, sizeof(needed)), addr->key, r->listener->url, nngt_ops_text(addr->ops, allowed, sizeof(allowed)));
        return false;
    }
    return true;
}

void
nngt_request_handle(struct nngt_listener *l, struct nngt_rep_ctx *rc,
                    nng_msg *msg)
{
    struct nngt_req *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        /* No memory for an answer: the requester times out. */
        nng_msg_free(msg);
        if (rc != NULL) {
            nngt_reply_send(rc, NULL);
        } else {
            nngt_pull_done(l);
        }
        return;
    }
    r->listener = l;
    r->rc = rc;
    r->in = torpor__nng__request__unpack(NULL, nng_msg_len(msg),
                                         nng_msg_body(msg));
    nng_msg_free(msg);
    if (r->in == NULL) {
        nngt_fail(r, TORPOR__NNG__STATUS__BAD_REQUEST, "malformed request: not a torpor.nng.Request protobuf message");
        return;
    }
    if (!nngt_checked(r)) {
        return;
    }
    switch (r->in->operation_case) {
    case TORPOR__NNG__REQUEST__OPERATION_PUBLISH:
        nngt_publish(r);
        break;
    case TORPOR__NNG__REQUEST__OPERATION_DELIVER:
        nngt_deliver(r);
        break;
    case TORPOR__NNG__REQUEST__OPERATION_LIST_CONNECTIONS:
        nngt_list_connections(r);
        break;
    case TORPOR__NNG__REQUEST__OPERATION_STORAGE_GET:
        nngt_storage_get(r);
        break;
    default:
        nngt_storage_list(r);
        break;
    }
}
