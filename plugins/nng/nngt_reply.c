/*
 * Replies: the completions of the host's room calls, which run on the
 * room's loop and turn what the core reports into a Reply, and the
 * transport ops through which a class answers a publisher (its messages
 * are collected into the Reply, its close becomes REFUSED).
 *
 * A pull address sends no reply; a request that fails there is logged,
 * rate-limited, and frees its slot.
 */
#include "nngt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message the class sent the publisher, shared by reference. */
struct torpor_frame {
    uint32_t refs;      /* __atomic */
    uint8_t kind;
    size_t len;
    uint8_t data[];
};

static void
nngt_req_free(struct nngt_req *r)
{
    for (size_t i = 0; i < r->nreplies; i++) {
        nngt_frame_release(r->replies[i]);
    }
    if (r->in != NULL) {
        torpor__nng__request__free_unpacked(r->in, NULL);
    }
    free(r);
}

static const char *
nngt_status_name(Torpor__Nng__Status status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &torpor__nng__status__descriptor, (int)status);

    return v != NULL ? v->name : "?";
}

void
nngt_answer(struct nngt_req *r, Torpor__Nng__Reply *reply)
{
    struct nngt_listener *l = r->listener;
    nng_msg *msg = NULL;

    reply->version = NNGT_PROTOCOL_VERSION;
    if (r->rc == NULL) {
        if (reply->status != TORPOR__NNG__STATUS__OK
            && nngt_warn_allowed(l->nt)) {
            NNGT_LOG(l->nt, TORPOR_LOG_WARN, "could not handle a request on %s (%s): %s: %s", l->addr->key, l->url, nngt_status_name(reply->status), reply->message);
        }
        nngt_req_free(r);
        nngt_pull_done(l);
        return;
    }
    size_t len = torpor__nng__reply__get_packed_size(reply);
    if (nng_msg_alloc(&msg, len) == 0) {
        torpor__nng__reply__pack(reply, nng_msg_body(msg));
    } else {
        msg = NULL;     /* the requester times out */
    }
    struct nngt_rep_ctx *rc = r->rc;
    nngt_req_free(r);
    nngt_reply_send(rc, msg);
}

void
nngt_fail(struct nngt_req *r, Torpor__Nng__Status status, const char *fmt,
          ...)
{
    Torpor__Nng__Reply reply = TORPOR__NNG__REPLY__INIT;
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    reply.status = status;
    reply.message = text;
    nngt_answer(r, &reply);
}

/* nngt_fail_err answers an operation the core could not finish. */
static void
nngt_fail_err(struct nngt_req *r, torpor_err err)
{
    const struct torpor_host *host = r->listener->nt->host;

    switch (err) {
    case TORPOR_ENOENT:
        nngt_fail(r, TORPOR__NNG__STATUS__NOT_FOUND, "no room with this id is in memory: name it by route or class_name and name");
        break;
    case TORPOR_EAGAIN:
        nngt_fail(r, TORPOR__NNG__STATUS__OVERLOADED, "the room's event queue is full ([core] max_queued_events): try again later");
        break;
    case TORPOR_EIO:
        nngt_fail(r, TORPOR__NNG__STATUS__COMMIT_FAILED, "the room's writes could not be committed: they and what the room sent after them were dropped");
        break;
    case TORPOR_ELIMIT:
        nngt_fail(r, TORPOR__NNG__STATUS__HANDLER_FAILED, "the class's handler ran past [core] handler_timeout_ms: the room was reset and its writes dropped");
        break;
    case TORPOR_ECLOSED:
        nngt_fail(r, TORPOR__NNG__STATUS__UNAVAILABLE, "torpord is shutting down: the operation did not run");
        break;
    case TORPOR_ENOMEM:
        nngt_fail(r, TORPOR__NNG__STATUS__INTERNAL, "out of memory");
        break;
    default:
        nngt_fail(r, TORPOR__NNG__STATUS__HANDLER_FAILED, "the room could not handle it: %s", host->strerror(err));
        break;
    }
}

void
nngt_on_published(void *arg, const torpor_room_result *res)
{
    struct nngt_req *r = arg;
    const struct torpor_host *host = r->listener->nt->host;
    Torpor__Nng__Reply reply = TORPOR__NNG__REPLY__INIT;
    Torpor__Nng__PublishResult result = TORPOR__NNG__PUBLISH_RESULT__INIT;
    Torpor__Message messages[NNGT_REPLIES_MAX];
    Torpor__Message *replies[NNGT_REPLIES_MAX];
    char text[256] = "";

    if (res->err != TORPOR_OK) {
        nngt_fail_err(r, res->err);
        return;
    }
    for (size_t i = 0; i < r->nreplies; i++) {
        const torpor_frame *f = r->replies[i];
        torpor__message__init(&messages[i]);
        messages[i].kind = f->kind == TORPOR_MSG_TEXT
                               ? TORPOR__MESSAGE__KIND__TEXT
                               : TORPOR__MESSAGE__KIND__BINARY;
        messages[i].data.data = (uint8_t *)f->data;
        messages[i].data.len = f->len;
        replies[i] = &messages[i];
    }
    result.n_replies = r->nreplies;
    result.replies = replies;
    result.replies_truncated = r->truncated;
    result.closed = r->closed;
    result.close_code = r->close_code;
    result.close_reason.data = (uint8_t *)r->close_reason;
    result.close_reason.len = r->close_reason_len;
    reply.result_case = TORPOR__NNG__REPLY__RESULT_PUBLISH;
    reply.publish = &result;
    if (r->closed) {
        reply.status = TORPOR__NNG__STATUS__REFUSED;
        snprintf(text, sizeof(text), "the class closed the publisher with %u \"%.*s\"", r->close_code, (int)r->close_reason_len, r->close_reason);
    } else if (res->handler_err != TORPOR_OK) {
        reply.status = TORPOR__NNG__STATUS__HANDLER_FAILED;
        snprintf(text, sizeof(text), "the class's message handler failed: %s", host->strerror(res->handler_err));
    }
    reply.message = text;
    nngt_answer(r, &reply);
}

void
nngt_on_delivered(void *arg, const torpor_room_result *res)
{
    struct nngt_req *r = arg;
    Torpor__Nng__Reply reply = TORPOR__NNG__REPLY__INIT;
    Torpor__Nng__DeliverResult result = TORPOR__NNG__DELIVER_RESULT__INIT;

    if (res->err != TORPOR_OK) {
        nngt_fail_err(r, res->err);
        return;
    }
    result.recipients = res->count;
    reply.result_case = TORPOR__NNG__REPLY__RESULT_DELIVER;
    reply.deliver = &result;
    nngt_answer(r, &reply);
}

void
nngt_on_conns(void *arg, torpor_err err, torpor_conn *const *conns,
              size_t n)
{
    struct nngt_req *r = arg;
    const struct nngt_state *nt = r->listener->nt;
    Torpor__Nng__Reply reply = TORPOR__NNG__REPLY__INIT;
    Torpor__Nng__Connections result = TORPOR__NNG__CONNECTIONS__INIT;

    if (err != TORPOR_OK) {
        nngt_fail_err(r, err);
        return;
    }
    /* One block: the records, their pointers, and their tags. */
    size_t per = sizeof(Torpor__Nng__Connection)
                 + sizeof(Torpor__Nng__Connection *)
                 + TORPOR_TAGS_MAX * sizeof(ProtobufCBinaryData);
    uint8_t *block = malloc(per * (n ? n : 1));
    if (block == NULL) {
        nngt_fail(r, TORPOR__NNG__STATUS__INTERNAL, "out of memory");
        return;
    }
    Torpor__Nng__Connection *recs = (Torpor__Nng__Connection *)block;
    Torpor__Nng__Connection **ptrs =
        (Torpor__Nng__Connection **)(recs + (n ? n : 1));
    ProtobufCBinaryData *tags = (ProtobufCBinaryData *)(ptrs + (n ? n : 1));
    size_t bytes = 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        torpor_bytes t[TORPOR_TAGS_MAX];
        size_t ntags = nt->host->conn_tags(conns[i], t, TORPOR_TAGS_MAX);
        size_t need = 16;
        ntags = ntags < TORPOR_TAGS_MAX ? ntags : TORPOR_TAGS_MAX;
        for (size_t k = 0; k < ntags; k++) {
            need += t[k].len + 4;
        }
        if (bytes + need > nt->cfg.max_message_bytes) {
            result.truncated = true;
            break;
        }
        bytes += need;
        Torpor__Nng__Connection *c = &recs[kept];
        torpor__nng__connection__init(c);
        c->id = nt->host->conn_id(conns[i]);
        c->tags = &tags[kept * TORPOR_TAGS_MAX];
        c->n_tags = ntags;
        for (size_t k = 0; k < ntags; k++) {
            c->tags[k].data = (uint8_t *)t[k].data;
            c->tags[k].len = t[k].len;
        }
        ptrs[kept++] = c;
    }
    result.connections = ptrs;
    result.n_connections = kept;
    reply.result_case = TORPOR__NNG__REPLY__RESULT_CONNECTIONS;
    reply.connections = &result;
    /* Packed here, while the tags it points to still exist. */
    nngt_answer(r, &reply);
    free(block);
}

void
nngt_on_rows(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct nngt_req *r = arg;
    const struct nngt_state *nt = r->listener->nt;
    Torpor__Nng__Reply reply = TORPOR__NNG__REPLY__INIT;
    Torpor__Nng__Rows result = TORPOR__NNG__ROWS__INIT;

    if (err == TORPOR_EIO) {
        nngt_fail(r, TORPOR__NNG__STATUS__UNAVAILABLE, "the storage backend failed to read");
        return;
    }
    if (err != TORPOR_OK) {
        nngt_fail_err(r, err);
        return;
    }
    Torpor__Nng__Row *recs = malloc((n ? n : 1) * sizeof(*recs));
    Torpor__Nng__Row **ptrs = malloc((n ? n : 1) * sizeof(*ptrs));
    if (recs == NULL || ptrs == NULL) {
        free(recs);
        free(ptrs);
        nngt_fail(r, TORPOR__NNG__STATUS__INTERNAL, "out of memory");
        return;
    }
    size_t bytes = 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        size_t need = rows[i].key.len + rows[i].value.len + 16;
        if (bytes + need > nt->cfg.max_message_bytes) {
            result.truncated = true;
            break;
        }
        bytes += need;
        torpor__nng__row__init(&recs[kept]);
        recs[kept].key.data = (uint8_t *)rows[i].key.data;
        recs[kept].key.len = rows[i].key.len;
        recs[kept].value.data = (uint8_t *)rows[i].value.data;
        recs[kept].value.len = rows[i].value.len;
        recs[kept].found = rows[i].found;
        ptrs[kept] = &recs[kept];
        kept++;
    }
    result.rows = ptrs;
    result.n_rows = kept;
    reply.result_case = TORPOR__NNG__REPLY__RESULT_ROWS;
    reply.rows = &result;
    nngt_answer(r, &reply);
    free(recs);
    free(ptrs);
}

/* ---- what the class sends a publisher ---- */

torpor_err
nngt_frame_encode(void *state, torpor_msg_kind kind, const void *data,
                  size_t len, torpor_frame **out)
{
    torpor_frame *f = malloc(sizeof(*f) + len);

    (void)state;
    *out = NULL;
    if (f == NULL) {
        return TORPOR_ENOMEM;
    }
    f->refs = 1;
    f->kind = (uint8_t)kind;
    f->len = len;
    if (len > 0) {
        memcpy(f->data, data, len);
    }
    *out = f;
    return TORPOR_OK;
}

torpor_err
nngt_frame_send(void *tconn, torpor_frame *frame)
{
    struct nngt_req *r = tconn;
    uint64_t max = r->listener->nt->cfg.max_message_bytes;

    if (r->nreplies == NNGT_REPLIES_MAX || r->reply_bytes + frame->len > max) {
        r->truncated = true;
        return TORPOR_ELIMIT;
    }
    __atomic_add_fetch(&frame->refs, 1, __ATOMIC_RELAXED);
    r->replies[r->nreplies++] = frame;
    r->reply_bytes += frame->len;
    return TORPOR_OK;
}

void
nngt_frame_release(torpor_frame *frame)
{
    if (frame != NULL
        && __atomic_sub_fetch(&frame->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(frame);
    }
}

torpor_err
nngt_sender_close(void *tconn, uint16_t code, const char *reason,
                  size_t reason_len)
{
    struct nngt_req *r = tconn;

    if (!r->closed) {
        r->closed = true;
        r->close_code = code;
        r->close_reason_len = reason_len < sizeof(r->close_reason)
                                  ? reason_len
                                  : sizeof(r->close_reason);
        if (r->close_reason_len > 0) {
            memcpy(r->close_reason, reason, r->close_reason_len);
        }
    }
    return TORPOR_OK;
}
