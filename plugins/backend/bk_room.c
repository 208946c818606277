/*
 * bk_room.c: the class's handlers.  Each packs its event, with the
 * connection's id, tags and attachment, and hands it to the room's call,
 * which holds the event open until a worker's reply is applied.  The
 * instance keeps nothing of the room but its call: the room's state lives
 * in storage, where the workers read and write it, so hibernation loses
 * nothing.
 *
 * Missing: accept is not sent to the workers (it must answer before the handshake completes); every client may join.
 */
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static torpor_err
room_object_create(void *state, torpor_object *object, void **instance)
{
    struct bk_state *bk = state;
    struct bk_room *room = calloc(1, sizeof(*room));

    if (room == NULL) {
        return TORPOR_ENOMEM;
    }
    room->bk = bk;
    room->object = object;
    torpor_err err = bk_call_new(bk, object, &room->call);
    if (err != TORPOR_OK) {
        free(room);
        return err;
    }
    *instance = room;
    return TORPOR_OK;
}

static void
room_object_destroy(void *instance)
{
    struct bk_room *room = instance;

    bk_call_free(room->call);
    free(room);
}

/* room_desc fills what every event of the room carries. */
static void
room_desc(struct bk_room *room, struct bk_event_desc *d, enum bk_body body,
          uint64_t conn_id)
{
    const struct torpor_host *host = room->bk->host;

    memset(d, 0, sizeof(*d));
    d->name = host->object_name(room->object);
    host->object_id(room->object, d->id);
    d->conn_id = conn_id;
    d->time_ms = host->wall_ms();
    d->body = body;
}

/*
 * room_send packs the event d and the connection conn (NULL for none)
 * and starts the exchange.  Within the handler: conn's tags and
 * attachment are read now, while conn is sure to exist.
 */
static torpor_err
room_send(struct bk_room *room, const char *what,
          const struct bk_event_desc *d, torpor_conn *conn)
{
    const struct torpor_host *host = room->bk->host;
    uint8_t *event_buf = NULL, *conn_buf = NULL;
    size_t event_len = 0, conn_len = 0;

    torpor_err err = bk_pack_event(d, &event_buf, &event_len);
    if (err == TORPOR_OK && conn != NULL) {
        torpor_bytes tags[TORPOR_TAGS_MAX];
        size_t n = host->conn_tags(conn, tags, TORPOR_TAGS_MAX);
        err = bk_pack_conn(host->conn_id(conn), tags,
                           n < TORPOR_TAGS_MAX ? n : TORPOR_TAGS_MAX,
                           host->conn_attachment(conn), &conn_buf,
                           &conn_len);
    }
    if (err != TORPOR_OK) {
        free(event_buf);
        free(conn_buf);
        return err;
    }
    return bk_call_begin(room->call, what, d->conn_id, event_buf, event_len,
                         conn_buf, conn_len);
}

static torpor_err
room_open(void *instance, torpor_conn *conn)
{
    struct bk_room *room = instance;
    const struct torpor_host *host = room->bk->host;
    struct bk_event_desc d;
    torpor_bytes tags[TORPOR_TAGS_MAX];

    room_desc(room, &d, BK_OPEN, host->conn_id(conn));
    size_t n = host->conn_tags(conn, tags, TORPOR_TAGS_MAX);
    d.tags = tags;
    d.ntags = n < TORPOR_TAGS_MAX ? n : TORPOR_TAGS_MAX;
    return room_send(room, "open", &d, conn);
}

static torpor_err
room_message(void *instance, torpor_conn *conn, torpor_msg_kind kind,
             const void *data, size_t len)
{
    struct bk_room *room = instance;
    struct bk_event_desc d;

    room_desc(room, &d, BK_MESSAGE, room->bk->host->conn_id(conn));
    d.kind = kind;
    d.data = (torpor_bytes){.data = data, .len = len};
    return room_send(room, "message", &d, conn);
}

static torpor_err
room_close(void *instance, torpor_conn *conn, uint16_t code,
           const char *reason, size_t reason_len, bool clean)
{
    struct bk_room *room = instance;
    struct bk_event_desc d;

    room_desc(room, &d, BK_CLOSE, room->bk->host->conn_id(conn));
    d.code = code;
    d.clean = clean;
    d.data = (torpor_bytes){.data = reason, .len = reason_len};
    return room_send(room, "close", &d, conn);
}

static torpor_err
room_alarm(void *instance, const char *name, uint32_t retry)
{
    struct bk_room *room = instance;
    struct bk_event_desc d;

    room_desc(room, &d, BK_ALARM, 0);
    d.alarm = name;
    d.retry = retry;
    return room_send(room, "alarm", &d, NULL);
}

const struct torpor_class_ops bk_class_ops = {
    .size = sizeof(struct torpor_class_ops),
    .object_create = room_object_create,
    .object_destroy = room_object_destroy,
    .open = room_open,
    .message = room_message,
    .close = room_close,
    .alarm = room_alarm,
    .hibernate_after_ms = TORPOR_HIBERNATE_DEFAULT_MS,
};
