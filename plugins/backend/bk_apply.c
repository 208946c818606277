/*
 * bk_apply.c: doing what a worker's reply asks, on the room's loop within
 * the held event: its actions, in order, or the storage reads whose
 * results go back to the workers in the event's next step.
 *
 * Actions go through the same host calls as a C handler's, so the same
 * guarantees hold: the event's writes commit together when it ends, and
 * what is sent after the first write waits until the commit is durable.
 * A connection is named by its id; one that has left is skipped, as a
 * send to a closed connection is in any room.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* The room's open connections, sorted by id, found when first needed. */
struct apply_conns {
    torpor_conn **conns;
    size_t n;
    bool ready;
};

struct apply_ctx {
    struct bk_call *call;
    const struct torpor_host *host;
    struct apply_conns conns;
};

static int
apply_conn_cmp(const void *a, const void *b, void *arg)
{
    const struct torpor_host *host = arg;
    uint64_t x = host->conn_id(*(torpor_conn *const *)a);
    uint64_t y = host->conn_id(*(torpor_conn *const *)b);

    return x < y ? -1 : x > y;
}

/* apply_conn finds the open connection id; NULL if it is not one. */
static torpor_conn *
apply_conn(struct apply_ctx *ax, uint64_t id)
{
    struct apply_conns *c = &ax->conns;
    const struct torpor_host *host = ax->host;

    if (!c->ready) {
        c->ready = true;
        size_t n = host->conns(ax->call->object, NULL, NULL, 0);
        c->conns = malloc((n > 0 ? n : 1) * sizeof(*c->conns));
        if (c->conns == NULL) {
            return NULL;
        }
        c->n = host->conns(ax->call->object, NULL, c->conns, n);
        c->n = c->n < n ? c->n : n;
        qsort_r(c->conns, c->n, sizeof(*c->conns), apply_conn_cmp,
                (void *)host);
    }
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v = host->conn_id(c->conns[mid]);
        if (v == id) {
            return c->conns[mid];
        }
        if (v < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

static torpor_msg_kind
apply_kind(const Torpor__Message *m)
{
    return m->kind == TORPOR__MESSAGE__KIND__BINARY ? TORPOR_MSG_BINARY
                                                    : TORPOR_MSG_TEXT;
}

static torpor_bytes
apply_bytes(ProtobufCBinaryData b)
{
    return (torpor_bytes){.data = b.data, .len = b.len};
}

static torpor_bytes
apply_text(const char *s)
{
    return (torpor_bytes){.data = s, .len = s != NULL ? strlen(s) : 0};
}

/* apply_one applies one action; TORPOR_ENOENT for a connection gone. */
static torpor_err
apply_one(struct apply_ctx *ax, const Torpor__Backend__Action *a)
{
    const struct torpor_host *host = ax->host;
    torpor_object *object = ax->call->object;
    torpor_conn *conn;

    switch (a->action_case) {
    case TORPOR__BACKEND__ACTION__ACTION_SEND: {
        const Torpor__Message *m = a->send->message;
        conn = apply_conn(ax, a->send->conn_id);
        return conn == NULL ? TORPOR_ENOENT
                            : host->send(conn, apply_kind(m), m->data.data,
                                         m->data.len);
    }
    case TORPOR__BACKEND__ACTION__ACTION_BROADCAST: {
        const Torpor__Backend__Broadcast *b = a->broadcast;
        const torpor_conn *except =
            b->exclude != 0 ? apply_conn(ax, b->exclude) : NULL;
        if (b->tag.len > 0) {
            return host->broadcast_tag(object, apply_bytes(b->tag),
                                       apply_kind(b->message),
                                       b->message->data.data,
                                       b->message->data.len, except);
        }
        return host->broadcast(object, apply_kind(b->message),
                               b->message->data.data, b->message->data.len,
                               except);
    }
    case TORPOR__BACKEND__ACTION__ACTION_CLOSE:
        conn = apply_conn(ax, a->close->conn_id);
        return conn == NULL ? TORPOR_ENOENT
                            : host->close(conn, (uint16_t)a->close->code,
                                          (const char *)a->close->reason.data,
                                          a->close->reason.len);
    case TORPOR__BACKEND__ACTION__ACTION_SET_ATTACHMENT:
        conn = apply_conn(ax, a->set_attachment->conn_id);
        return conn == NULL ? TORPOR_ENOENT
                            : host->conn_set_attachment(
                                  conn, a->set_attachment->data.data,
                                  a->set_attachment->data.len);
    case TORPOR__BACKEND__ACTION__ACTION_PUT:
        return host->storage_put(object, apply_bytes(a->put->key),
                                 apply_bytes(a->put->value));
    case TORPOR__BACKEND__ACTION__ACTION_DELETE:
        return host->storage_delete(object, apply_bytes(a->delete_->key));
    case TORPOR__BACKEND__ACTION__ACTION_SET_ALARM: {
        const Torpor__Backend__SetAlarm *s = a->set_alarm;
        uint64_t at = s->time_ms != 0 ? s->time_ms
                                      : host->wall_ms() + s->delay_ms;
        return host->alarm_set(object, apply_text(s->name), at);
    }
    case TORPOR__BACKEND__ACTION__ACTION_DELETE_ALARM:
        return host->alarm_delete(object, apply_text(a->delete_alarm->name));
    default:
        return TORPOR_EINVAL;   /* bk_reply_parse let none through */
    }
}

void
bk_apply_actions(struct bk_call *call, const Torpor__Backend__Reply *r)
{
    struct bk_state *bk = call->bk;
    struct apply_ctx ax = {.call = call, .host = bk->host};

    for (size_t i = 0; i < r->n_actions; i++) {
        torpor_err err = apply_one(&ax, r->actions[i]);
        if (err == TORPOR_ENOENT || err == TORPOR_ECLOSED) {
            continue;   /* the connection has left: normal in a room */
        }
        if (err != TORPOR_OK) {
            bk->host->log(bk->self, TORPOR_LOG_WARN, call->object, NULL, "event %llu (%s of conn %llu): could not apply action %zu: %s; the others still apply", (unsigned long long)call->event_id, call->what, (unsigned long long)call->conn_id, i, bk->host->strerror(err));
        }
    }
    free(ax.conns.conns);
}

/* ---- reads ---- */

/* apply_reads_done moves the event on once its last read completed. */
static void
apply_reads_done(struct bk_call *call)
{
    struct bk_state *bk = call->bk;

    if (call->read_error != TORPOR_OK) {
        __atomic_add_fetch(&bk->stats.dropped, 1, __ATOMIC_RELAXED);
        bk->host->log(bk->self, TORPOR_LOG_ERR, call->object, NULL, "event %llu (%s of conn %llu) step %u: could not read storage for the worker: %s; dropped", (unsigned long long)call->event_id, call->what, (unsigned long long)call->conn_id, call->step, bk->host->strerror(call->read_error));
        bk_call_finish(call, call->read_error);
        return;
    }
    bk_call_step(call);
}

static void
apply_on_read(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct bk_read_slot *slot = arg;
    struct bk_call *call = slot->call;

    if (err == TORPOR_OK) {
        err = bk_pack_result(rows, n, &call->results[slot->index]);
    }
    if (err != TORPOR_OK && call->read_error == TORPOR_OK) {
        call->read_error = err;
    }
    if (--call->reads_pending == 0) {
        apply_reads_done(call);
    }
}

/* apply_read starts read i; its callback runs later, on the room's loop. */
static torpor_err
apply_read(struct bk_call *call, size_t i, const Torpor__Backend__Read *rd)
{
    const struct torpor_host *host = call->bk->host;
    struct bk_read_slot *slot = &call->slots[i];

    slot->call = call;
    slot->index = i;
    if (rd->read_case == TORPOR__BACKEND__READ__READ_GET) {
        const Torpor__Backend__Get *g = rd->get;
        torpor_bytes keys[BK_MAX_GET_KEYS];
        for (size_t k = 0; k < g->n_keys; k++) {
            keys[k] = apply_bytes(g->keys[k]);
        }
        return host->storage_get(call->object, keys, g->n_keys,
                                 apply_on_read, slot);
    }
    const Torpor__Backend__List *l = rd->list;
    torpor_range range = {
        .prefix = apply_bytes(l->prefix),
        .start = apply_bytes(l->start),
        .end = apply_bytes(l->end),
        .has_start = l->start.len > 0,
        .has_end = l->end.len > 0,
        .reverse = l->reverse,
        .limit = l->limit > 0 && l->limit < BK_LIST_CAP ? l->limit
                                                        : BK_LIST_CAP,
    };
    return host->storage_list(call->object, &range, apply_on_read, slot);
}

void
bk_apply_reads(struct bk_call *call, const Torpor__Backend__Reply *r)
{
    for (size_t i = 0; i < call->nresults; i++) {
        free(call->results[i].data);
        call->results[i] = (struct bk_result){0};
    }
    free(call->continuation);
    call->continuation = NULL;
    call->continuation_len = 0;
    call->read_error = TORPOR_OK;
    if (r->continuation.len > 0) {
        call->continuation = malloc(r->continuation.len);
        if (call->continuation == NULL) {
            call->read_error = TORPOR_ENOMEM;
        } else {
            memcpy(call->continuation, r->continuation.data,
                   r->continuation.len);
            call->continuation_len = r->continuation.len;
        }
    }
    call->phase = BK_READING;
    call->nresults = r->n_reads;
    /* One more than the reads started, so no callback ends the step while
     * reads are still being started. */
    call->reads_pending = 1;
    for (size_t i = 0; i < r->n_reads && call->read_error == TORPOR_OK;
         i++) {
        call->reads_pending++;
        torpor_err err = apply_read(call, i, r->reads[i]);
        if (err != TORPOR_OK) {
            call->reads_pending--;
            call->read_error = err;
        }
    }
    if (--call->reads_pending == 0) {
        apply_reads_done(call);
    }
}
