/*
 * bk_wire.c: the Request torpord sends, in protobuf's wire format.
 *
 * The event, its connection and the results of reads are packed once with
 * protobuf-c.  The Request around them is written here by hand, because
 * protobuf lets a message's fields be laid end to end: a retry then costs
 * a few header bytes, not another copy of a message of up to a megabyte.
 * tests/check_backend_wire.c unpacks what this writes with protobuf-c.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* Wire types of protobuf's encoding. */
#define BK_WIRE_VARINT 0
#define BK_WIRE_BYTES 2

/* Field numbers of Request, from backend.proto. */
enum {
    BK_REQ_VERSION = 1,
    BK_REQ_EVENT_ID = 2,
    BK_REQ_STEP = 3,
    BK_REQ_ATTEMPT = 4,
    BK_REQ_EVENT = 5,
    BK_REQ_CONN = 6,
    BK_REQ_CONN_COUNT = 7,
    BK_REQ_RESULTS = 8,
    BK_REQ_CONTINUATION = 9
};

static size_t
wire_varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *
wire_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A varint field; proto3 leaves out a zero. */
static size_t
wire_uint_size(uint64_t v)
{
    return v == 0 ? 0 : 1 + wire_varint_size(v);
}

static uint8_t *
wire_uint(uint8_t *p, unsigned field, uint64_t v)
{
    if (v == 0) {
        return p;
    }
    p = wire_varint(p, (uint64_t)field << 3 | BK_WIRE_VARINT);
    return wire_varint(p, v);
}

/* A length-delimited field: bytes, or an embedded message. */
static size_t
wire_bytes_size(size_t len)
{
    return 1 + wire_varint_size(len) + len;
}

static uint8_t *
wire_bytes(uint8_t *p, unsigned field, const uint8_t *data, size_t len)
{
    p = wire_varint(p, (uint64_t)field << 3 | BK_WIRE_BYTES);
    p = wire_varint(p, len);
    if (len > 0) {
        memcpy(p, data, len);
    }
    return p + len;
}

size_t
bk_request_size(const struct bk_request_parts *p)
{
    size_t n = wire_uint_size(BK_PROTOCOL_VERSION)
               + wire_uint_size(p->event_id) + wire_uint_size(p->step)
               + wire_uint_size(p->attempt) + wire_bytes_size(p->event_len)
               + wire_uint_size(p->conn_count);

    if (p->conn != NULL) {
        n += wire_bytes_size(p->conn_len);
    }
    for (size_t i = 0; i < p->nresults; i++) {
        n += wire_bytes_size(p->results[i].len);
    }
    if (p->continuation_len > 0) {
        n += wire_bytes_size(p->continuation_len);
    }
    return n;
}

void
bk_request_write(const struct bk_request_parts *p, uint8_t *out)
{
    out = wire_uint(out, BK_REQ_VERSION, BK_PROTOCOL_VERSION);
    out = wire_uint(out, BK_REQ_EVENT_ID, p->event_id);
    out = wire_uint(out, BK_REQ_STEP, p->step);
    out = wire_uint(out, BK_REQ_ATTEMPT, p->attempt);
    out = wire_bytes(out, BK_REQ_EVENT, p->event, p->event_len);
    if (p->conn != NULL) {
        out = wire_bytes(out, BK_REQ_CONN, p->conn, p->conn_len);
    }
    out = wire_uint(out, BK_REQ_CONN_COUNT, p->conn_count);
    for (size_t i = 0; i < p->nresults; i++) {
        out = wire_bytes(out, BK_REQ_RESULTS, p->results[i].data,
                         p->results[i].len);
    }
    if (p->continuation_len > 0) {
        wire_bytes(out, BK_REQ_CONTINUATION, p->continuation,
                   p->continuation_len);
    }
}

/* wire_binary views borrowed bytes as protobuf-c's (which are not const). */
static ProtobufCBinaryData
wire_binary(torpor_bytes b)
{
    return (ProtobufCBinaryData){.data = (uint8_t *)b.data, .len = b.len};
}

/* wire_pack packs msg into a new buffer. */
static torpor_err
wire_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n > 0 ? n : 1);

    if (buf == NULL) {
        return TORPOR_ENOMEM;
    }
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *len = n;
    return TORPOR_OK;
}

torpor_err
bk_pack_event(const struct bk_event_desc *d, uint8_t **out, size_t *len)
{
    Torpor__ObjectId object = TORPOR__OBJECT_ID__INIT;
    Torpor__Event event = TORPOR__EVENT__INIT;
    Torpor__Open open = TORPOR__OPEN__INIT;
    Torpor__Message message = TORPOR__MESSAGE__INIT;
    Torpor__Close close = TORPOR__CLOSE__INIT;
    Torpor__Alarm alarm = TORPOR__ALARM__INIT;
    ProtobufCBinaryData tags[TORPOR_TAGS_MAX];

    object.class_name = "backend";
    object.name = wire_binary(d->name);
    object.id = (ProtobufCBinaryData){.data = (uint8_t *)d->id, .len = 16};
    event.object = &object;
    event.conn_id = d->conn_id;
    event.time_ms = d->time_ms;
    switch (d->body) {
    case BK_OPEN:
        for (size_t i = 0; i < d->ntags && i < TORPOR_TAGS_MAX; i++) {
            tags[i] = wire_binary(d->tags[i]);
        }
        open.n_tags = d->ntags < TORPOR_TAGS_MAX ? d->ntags : TORPOR_TAGS_MAX;
        open.tags = tags;
        event.body_case = TORPOR__EVENT__BODY_OPEN;
        event.open = &open;
        break;
    case BK_MESSAGE:
        message.kind = d->kind == TORPOR_MSG_BINARY
                           ? TORPOR__MESSAGE__KIND__BINARY
                           : TORPOR__MESSAGE__KIND__TEXT;
        message.data = wire_binary(d->data);
        event.body_case = TORPOR__EVENT__BODY_MESSAGE;
        event.message = &message;
        break;
    case BK_CLOSE:
        close.code = d->code;
        close.reason = wire_binary(d->data);
        close.clean = d->clean;
        event.body_case = TORPOR__EVENT__BODY_CLOSE;
        event.close = &close;
        break;
    case BK_ALARM:
        alarm.name = (char *)d->alarm;
        alarm.retry = d->retry;
        event.body_case = TORPOR__EVENT__BODY_ALARM;
        event.alarm = &alarm;
        break;
    }
    return wire_pack(&event.base, out, len);
}

torpor_err
bk_pack_conn(uint64_t id, const torpor_bytes *tags, size_t ntags,
             torpor_bytes attachment, uint8_t **out, size_t *len)
{
    Torpor__Backend__Connection conn = TORPOR__BACKEND__CONNECTION__INIT;
    ProtobufCBinaryData wire_tags[TORPOR_TAGS_MAX];

    conn.id = id;
    conn.n_tags = ntags < TORPOR_TAGS_MAX ? ntags : TORPOR_TAGS_MAX;
    for (size_t i = 0; i < conn.n_tags; i++) {
        wire_tags[i] = wire_binary(tags[i]);
    }
    conn.tags = wire_tags;
    conn.attachment = wire_binary(attachment);
    return wire_pack(&conn.base, out, len);
}

torpor_err
bk_pack_result(const torpor_kv *rows, size_t n, struct bk_result *out)
{
    Torpor__Backend__ReadResult result = TORPOR__BACKEND__READ_RESULT__INIT;
    Torpor__Backend__Entry *entries = calloc(n > 0 ? n : 1, sizeof(*entries));
    Torpor__Backend__Entry **ptrs = calloc(n > 0 ? n : 1, sizeof(*ptrs));
    torpor_err err = TORPOR_ENOMEM;

    if (entries != NULL && ptrs != NULL) {
        for (size_t i = 0; i < n; i++) {
            torpor__backend__entry__init(&entries[i]);
            entries[i].key = wire_binary(rows[i].key);
            entries[i].value = wire_binary(rows[i].value);
            entries[i].found = rows[i].found;
            ptrs[i] = &entries[i];
        }
        result.n_entries = n;
        result.entries = ptrs;
        err = wire_pack(&result.base, &out->data, &out->len);
    }
    free(entries);
    free(ptrs);
    return err;
}
