/*
 * reply.c: building a Reply with protobuf-c.  Every piece is allocated
 * on its own and remembered, so one call frees the lot.
 */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* reply_alloc returns zeroed memory that reply_free will release. */
static void *
reply_alloc(struct reply *r, size_t size)
{
    void **grown = realloc(r->allocs, (r->nallocs + 1) * sizeof(*grown));
    void *p = calloc(1, size > 0 ? size : 1);

    if (grown != NULL) {
        r->allocs = grown;
    }
    if (grown == NULL || p == NULL) {
        free(p);
        r->failed = true;
        return NULL;
    }
    r->allocs[r->nallocs++] = p;
    return p;
}

static ProtobufCBinaryData
reply_bytes(struct reply *r, const void *data, size_t len)
{
    uint8_t *copy = reply_alloc(r, len);

    if (copy == NULL) {
        return (ProtobufCBinaryData){0};
    }
    memcpy(copy, data, len);
    return (ProtobufCBinaryData){.data = copy, .len = len};
}

static ProtobufCBinaryData
reply_text(struct reply *r, const char *text)
{
    return reply_bytes(r, text, strlen(text));
}

static char *
reply_string(struct reply *r, const char *text)
{
    char *copy = reply_alloc(r, strlen(text) + 1);

    if (copy != NULL) {
        strcpy(copy, text);
    }
    return copy;
}

void
reply_init(struct reply *r, const Torpor__Backend__Request *req)
{
    memset(r, 0, sizeof(*r));
    torpor__backend__reply__init(&r->msg);
    r->msg.version = TORPOR__BACKEND__VERSION__PROTOCOL_VERSION;
    r->msg.event_id = req->event_id;
    r->msg.step = req->step;
}

void
reply_free(struct reply *r)
{
    for (size_t i = 0; i < r->nallocs; i++) {
        free(r->allocs[i]);
    }
    free(r->allocs);
    free(r->actions);
    free(r->reads);
    memset(r, 0, sizeof(*r));
}

/* reply_action appends an empty action and returns it. */
static Torpor__Backend__Action *
reply_action(struct reply *r)
{
    Torpor__Backend__Action *a = reply_alloc(r, sizeof(*a));
    Torpor__Backend__Action **grown =
        realloc(r->actions, (r->nactions + 1) * sizeof(*grown));

    if (grown == NULL) {
        r->failed = true;
        return NULL;
    }
    r->actions = grown;
    if (a == NULL) {
        return NULL;
    }
    torpor__backend__action__init(a);
    r->actions[r->nactions++] = a;
    return a;
}

static Torpor__Message *
reply_message(struct reply *r, const void *text, size_t len)
{
    Torpor__Message *m = reply_alloc(r, sizeof(*m));

    if (m != NULL) {
        torpor__message__init(m);
        m->kind = TORPOR__MESSAGE__KIND__TEXT;
        m->data = reply_bytes(r, text, len);
    }
    return m;
}

void
reply_send(struct reply *r, uint64_t conn, const char *text)
{
    Torpor__Backend__Action *a = reply_action(r);
    Torpor__Backend__Send *s = reply_alloc(r, sizeof(*s));

    if (a == NULL || s == NULL) {
        return;
    }
    torpor__backend__send__init(s);
    s->conn_id = conn;
    s->message = reply_message(r, text, strlen(text));
    a->action_case = TORPOR__BACKEND__ACTION__ACTION_SEND;
    a->send = s;
}

void
reply_broadcast(struct reply *r, const char *text, uint64_t exclude)
{
    reply_broadcast_n(r, text, strlen(text), exclude);
}

void
reply_broadcast_n(struct reply *r, const void *text, size_t len,
                  uint64_t exclude)
{
    Torpor__Backend__Action *a = reply_action(r);
    Torpor__Backend__Broadcast *b = reply_alloc(r, sizeof(*b));

    if (a == NULL || b == NULL) {
        return;
    }
    torpor__backend__broadcast__init(b);
    b->message = reply_message(r, text, len);
    b->exclude = exclude;
    a->action_case = TORPOR__BACKEND__ACTION__ACTION_BROADCAST;
    a->broadcast = b;
}

void
reply_close(struct reply *r, uint64_t conn, uint32_t code, const char *reason)
{
    Torpor__Backend__Action *a = reply_action(r);
    Torpor__Backend__CloseConn *c = reply_alloc(r, sizeof(*c));

    if (a == NULL || c == NULL) {
        return;
    }
    torpor__backend__close_conn__init(c);
    c->conn_id = conn;
    c->code = code;
    c->reason = reply_text(r, reason);
    a->action_case = TORPOR__BACKEND__ACTION__ACTION_CLOSE;
    a->close = c;
}

void
reply_set_attachment(struct reply *r, uint64_t conn, const char *text)
{
    Torpor__Backend__Action *a = reply_action(r);
    Torpor__Backend__SetAttachment *s = reply_alloc(r, sizeof(*s));

    if (a == NULL || s == NULL) {
        return;
    }
    torpor__backend__set_attachment__init(s);
    s->conn_id = conn;
    s->data = reply_text(r, text);
    a->action_case = TORPOR__BACKEND__ACTION__ACTION_SET_ATTACHMENT;
    a->set_attachment = s;
}

void
reply_put(struct reply *r, const char *key, const char *value)
{
    Torpor__Backend__Action *a = reply_action(r);
    Torpor__Backend__Put *p = reply_alloc(r, sizeof(*p));

    if (a == NULL || p == NULL) {
        return;
    }
    torpor__backend__put__init(p);
    p->key = reply_text(r, key);
    p->value = reply_text(r, value);
    a->action_case = TORPOR__BACKEND__ACTION__ACTION_PUT;
    a->put = p;
}

void
reply_delete(struct reply *r, const char *key)
{
    Torpor__Backend__Action *a = reply_action(r);
    Torpor__Backend__Delete *d = reply_alloc(r, sizeof(*d));

    if (a == NULL || d == NULL) {
        return;
    }
    torpor__backend__delete__init(d);
    d->key = reply_text(r, key);
    a->action_case = TORPOR__BACKEND__ACTION__ACTION_DELETE;
    a->delete_ = d;
}

void
reply_set_alarm(struct reply *r, const char *name, uint64_t delay_ms)
{
    Torpor__Backend__Action *a = reply_action(r);
    Torpor__Backend__SetAlarm *s = reply_alloc(r, sizeof(*s));

    if (a == NULL || s == NULL) {
        return;
    }
    torpor__backend__set_alarm__init(s);
    s->name = reply_string(r, name);
    s->delay_ms = delay_ms;
    a->action_case = TORPOR__BACKEND__ACTION__ACTION_SET_ALARM;
    a->set_alarm = s;
}

void
reply_get(struct reply *r, const char *key)
{
    Torpor__Backend__Read *rd = reply_alloc(r, sizeof(*rd));
    Torpor__Backend__Get *g = reply_alloc(r, sizeof(*g));
    ProtobufCBinaryData *keys = reply_alloc(r, sizeof(*keys));
    Torpor__Backend__Read **grown =
        realloc(r->reads, (r->nreads + 1) * sizeof(*grown));

    if (grown == NULL) {
        r->failed = true;
        return;
    }
    r->reads = grown;
    if (rd == NULL || g == NULL || keys == NULL) {
        return;
    }
    torpor__backend__read__init(rd);
    torpor__backend__get__init(g);
    keys[0] = reply_text(r, key);
    g->n_keys = 1;
    g->keys = keys;
    rd->read_case = TORPOR__BACKEND__READ__READ_GET;
    rd->get = g;
    r->reads[r->nreads++] = rd;
}

void
reply_continue(struct reply *r, const char *text)
{
    r->msg.continuation = reply_text(r, text);
}

uint8_t *
reply_pack(struct reply *r, size_t *len)
{
    if (r->failed) {
        return NULL;
    }
    r->msg.n_actions = r->nactions;
    r->msg.actions = r->actions;
    r->msg.n_reads = r->nreads;
    r->msg.reads = r->reads;
    *len = torpor__backend__reply__get_packed_size(&r->msg);
    uint8_t *buf = malloc(*len > 0 ? *len : 1);
    if (buf != NULL) {
        torpor__backend__reply__pack(&r->msg, buf);
    }
    return buf;
}
