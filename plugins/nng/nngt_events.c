/*
 * The event stream: every room's events, as torpor.Event messages, on
 * each pub address, behind a topic that nng's subscribers match by
 * prefix (docs/nng-protocol.md):
 *
 *     percent-encoded class "/" percent-encoded name ":" Event
 *
 * Percent-encoding leaves no ":" in either part and no "/" in the class,
 * so "chat/" follows a class, "chat/lobby:" exactly one room ("chat/lob:"
 * cannot match it), and "" everything.  Names may hold any byte, NUL
 * included, which is why a terminator byte alone would not do.
 *
 * The tap is set only while some subscriber is connected, so rooms pay
 * nothing for the stream when nobody listens.  It runs on the room's
 * loop; nng's pub sockets never block, and drop what a slow subscriber
 * cannot take, so no room ever waits for a subscriber.
 *
 * Missing: filtering on the sending side; nng's pub sends every event to every subscriber, whatever prefixes it follows.
 */
#include "nngt.h"

#include <stdlib.h>
#include <string.h>

/* nngt_publish_event sends topic and ev on every pub address. */
static void
nngt_publish_event(struct nngt_state *nt, const char *topic,
                   size_t topic_len, const Torpor__Event *ev)
{
    size_t len = torpor__event__get_packed_size(ev);
    nng_msg *msg;

    if (nng_msg_alloc(&msg, topic_len + len) != 0) {
        return;     /* a stream loses an event rather than stall a room */
    }
    uint8_t *body = nng_msg_body(msg);
    memcpy(body, topic, topic_len);
    torpor__event__pack(ev, body + topic_len);
    size_t npub = 0;
    for (size_t i = 0; i < nt->nlisteners; i++) {
        npub += nt->listeners[i].addr->pattern == NNGT_PUB;
    }
    /* A copy for each address but the last, which takes the original. */
    size_t sent = 0;
    for (size_t i = 0; i < nt->nlisteners; i++) {
        struct nngt_listener *l = &nt->listeners[i];
        nng_msg *send = msg;
        if (l->addr->pattern != NNGT_PUB) {
            continue;
        }
        if (++sent < npub && nng_msg_dup(&send, msg) != 0) {
            continue;
        }
        /* pub never blocks: a full subscriber queue drops instead. */
        if (nng_sendmsg(l->sock, send, NNG_FLAG_NONBLOCK) != 0) {
            nng_msg_free(send);
        }
    }
    if (npub == 0) {
        nng_msg_free(msg);
    }
}

static void
nngt_on_room_event(void *arg, const torpor_room_event *rev)
{
    struct nngt_state *nt = arg;
    Torpor__ObjectId object = TORPOR__OBJECT_ID__INIT;
    Torpor__Event ev = TORPOR__EVENT__INIT;
    Torpor__Open open = TORPOR__OPEN__INIT;
    Torpor__Message message = TORPOR__MESSAGE__INIT;
    Torpor__Close close = TORPOR__CLOSE__INIT;
    Torpor__Alarm alarm = TORPOR__ALARM__INIT;
    ProtobufCBinaryData tag_data[TORPOR_TAGS_MAX];
    char *alarm_name = NULL;

    if (__atomic_load_n(&nt->stopping, __ATOMIC_ACQUIRE)) {
        return;
    }
    /* Room names are at most 256 bytes: the heap only for a long class. */
    char topic_buf[1024];
    size_t class_len = strlen(rev->class_name);
    size_t topic_max = 3 * (class_len + rev->name.len) + 2;
    char *topic = topic_max <= sizeof(topic_buf) ? topic_buf
                                                 : malloc(topic_max);
    if (topic == NULL) {
        return;
    }
    size_t topic_len = nngt_topic(topic, rev->class_name, class_len,
                                  rev->name.data, rev->name.len);
    object.class_name = (char *)rev->class_name;
    object.name.data = (uint8_t *)rev->name.data;
    object.name.len = rev->name.len;
    object.id.data = (uint8_t *)rev->id;
    object.id.len = 16;
    ev.object = &object;
    ev.conn_id = rev->conn_id;
    ev.time_ms = rev->time_ms;
    ev.backend = rev->origin == TORPOR_ORIGIN_BACKEND;
    switch (rev->type) {
    case TORPOR_ROOM_EVENT_OPEN: {
        torpor_bytes tags[TORPOR_TAGS_MAX];
        size_t n = nt->host->conn_tags(rev->conn, tags, TORPOR_TAGS_MAX);
        n = n < TORPOR_TAGS_MAX ? n : TORPOR_TAGS_MAX;
        for (size_t i = 0; i < n; i++) {
            tag_data[i].data = (uint8_t *)tags[i].data;
            tag_data[i].len = tags[i].len;
        }
        open.tags = tag_data;
        open.n_tags = n;
        ev.body_case = TORPOR__EVENT__BODY_OPEN;
        ev.open = &open;
        break;
    }
    case TORPOR_ROOM_EVENT_MESSAGE:
        message.kind = rev->kind == TORPOR_MSG_TEXT
                           ? TORPOR__MESSAGE__KIND__TEXT
                           : TORPOR__MESSAGE__KIND__BINARY;
        message.data.data = (uint8_t *)rev->data.data;
        message.data.len = rev->data.len;
        ev.body_case = TORPOR__EVENT__BODY_MESSAGE;
        ev.message = &message;
        break;
    case TORPOR_ROOM_EVENT_CLOSE:
        close.code = rev->code;
        close.reason.data = (uint8_t *)rev->data.data;
        close.reason.len = rev->data.len;
        close.clean = rev->clean;
        ev.body_case = TORPOR__EVENT__BODY_CLOSE;
        ev.close = &close;
        break;
    case TORPOR_ROOM_EVENT_ALARM:
        /* A string field wants its NUL. */
        alarm_name = strndup(rev->data.data != NULL ? rev->data.data : "",
                             rev->data.len);
        if (alarm_name == NULL) {
            break;
        }
        alarm.name = alarm_name;
        alarm.retry = rev->retry;
        ev.body_case = TORPOR__EVENT__BODY_ALARM;
        ev.alarm = &alarm;
        break;
    default:
        break;      /* a kind of event this plugin does not know yet */
    }
    if (ev.body_case != TORPOR__EVENT__BODY__NOT_SET) {
        nngt_publish_event(nt, topic, topic_len, &ev);
    }
    free(alarm_name);
    if (topic != topic_buf) {
        free(topic);
    }
}

void
nngt_events_subscriber(struct nngt_state *nt, int delta)
{
    pthread_mutex_lock(&nt->sub_lock);
    if (delta > 0) {
        if (nt->subscribers++ == 0
            && nt->host->room_tap(nt->self, nngt_on_room_event, nt)
                   != TORPOR_OK) {
            NNGT_LOG(nt, TORPOR_LOG_ERR, "could not follow room events: too many plugins follow them; subscribers get nothing");
        }
    } else if (nt->subscribers > 0 && --nt->subscribers == 0) {
        nt->host->room_tap(nt->self, NULL, nt);
    }
    unsigned now = nt->subscribers;
    pthread_mutex_unlock(&nt->sub_lock);
    if (nt->host->log_enabled(nt->self, TORPOR_LOG_INFO)) {
        NNGT_LOG(nt, TORPOR_LOG_INFO, "a subscriber %s the event stream, %u now", delta > 0 ? "joined" : "left", now);
    }
}
