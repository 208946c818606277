/*
 * core/auto_response.c: request/response pairs the core answers itself,
 * without waking the object or delivering an event, so that a client's
 * heartbeat keeps costing nothing while its room hibernates.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/runtime.h"

struct tpr_auto_pair {
    uint8_t kind;
    size_t request_len;
    size_t response_len;
    uint8_t bytes[];            /* request, then response */
};

void
tpr_auto_table_free(struct tpr_auto_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        free(t->pairs[i]);
    }
    free(t);
}

static const struct tpr_auto_pair *
auto_match(const struct tpr_auto_table *t, torpor_msg_kind kind,
           const void *data, size_t len)
{
    for (size_t i = 0; t != NULL && i < t->n; i++) {
        const struct tpr_auto_pair *p = t->pairs[i];
        if (p->kind == kind && p->request_len == len
            && (len == 0 || memcmp(p->bytes, data, len) == 0)) {
            return p;
        }
    }
    return NULL;
}

/* auto_set adds, replaces or (empty response) removes a pair of *tp. */
static torpor_err
auto_set(struct tpr_auto_table **tp, torpor_msg_kind kind,
         torpor_bytes request, torpor_bytes response)
{
    if ((kind != TORPOR_MSG_TEXT && kind != TORPOR_MSG_BINARY)
        || (request.len > 0 && request.data == NULL)
        || (response.len > 0 && response.data == NULL)) {
        return TORPOR_EINVAL;
    }
    if (request.len > TORPOR_AUTO_RESPONSE_MAX_BYTES
        || response.len > TORPOR_AUTO_RESPONSE_MAX_BYTES) {
        return TORPOR_ELIMIT;
    }
    if (*tp == NULL) {
        *tp = calloc(1, sizeof(**tp));
        if (*tp == NULL) {
            return TORPOR_ENOMEM;
        }
    }
    struct tpr_auto_table *t = *tp;
    size_t i;
    for (i = 0; i < t->n; i++) {
        const struct tpr_auto_pair *p = t->pairs[i];
        if (p->kind == kind && p->request_len == request.len
            && (request.len == 0
                || memcmp(p->bytes, request.data, request.len) == 0)) {
            break;
        }
    }
    if (response.len == 0) {
        if (i < t->n) {
            free(t->pairs[i]);
            t->pairs[i] = t->pairs[--t->n];
        }
        return TORPOR_OK;
    }
    if (i == t->n && t->n == TORPOR_AUTO_RESPONSES_MAX) {
        return TORPOR_ELIMIT;
    }
    struct tpr_auto_pair *p =
        malloc(sizeof(*p) + request.len + response.len);
    if (p == NULL) {
        return TORPOR_ENOMEM;
    }
    p->kind = (uint8_t)kind;
    p->request_len = request.len;
    p->response_len = response.len;
    if (request.len > 0) {
        memcpy(p->bytes, request.data, request.len);
    }
    memcpy(p->bytes + request.len, response.data, response.len);
    if (i < t->n) {
        free(t->pairs[i]);
    } else {
        t->n++;
    }
    t->pairs[i] = p;
    return TORPOR_OK;
}

torpor_err
tpr_class_auto_response(torpor_plugin_ctx *self, torpor_msg_kind kind,
                        torpor_bytes request, torpor_bytes response)
{
    if (self->desc.kind != TORPOR_KIND_CLASS) {
        return TORPOR_ESTATE;
    }
    return auto_set(&self->auto_responses, kind, request, response);
}

torpor_err
tpr_object_auto_response(torpor_object *obj, torpor_msg_kind kind,
                         torpor_bytes request, torpor_bytes response)
{
    return auto_set(&obj->auto_responses, kind, request, response);
}

bool
tpr_auto_respond(torpor_conn *conn, torpor_msg_kind kind, const void *data,
                 size_t len)
{
    torpor_object *obj = conn->object;
    const struct tpr_auto_pair *p =
        auto_match(obj->auto_responses, kind, data, len);

    if (p == NULL) {
        p = auto_match(obj->klass->auto_responses, kind, data, len);
    }
    if (p == NULL) {
        return false;
    }
    struct torpor_plugin_ctx *transport = tpr_conn_transport(conn);
    const struct torpor_transport_ops *t = &transport->ops.transport;
    torpor_frame *frame;
    if (t->frame_encode(transport->state, kind, p->bytes + p->request_len,
                        p->response_len, &frame)
        == TORPOR_OK) {
        t->frame_send(tpr_conn_tconn(conn), frame);
        t->frame_release(frame);
    }
    if (conn->extra == NULL) {
        conn->extra = calloc(1, sizeof(*conn->extra));
    }
    if (conn->extra != NULL) {
        conn->extra->auto_response_ms = tpr_wall_ms();
    }
    obj->shard->stats.auto_responses++;
    return true;
}

uint64_t
tpr_conn_auto_response_ms(const torpor_conn *conn)
{
    return conn->extra != NULL ? conn->extra->auto_response_ms : 0;
}
