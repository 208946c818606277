/*
 * chat.c: the chat class's handlers and descriptor.
 *
 * A room's history is its storage: message SEQ under the key "h/" and 16
 * hex digits of SEQ, holding the sender's connection id (8 bytes, little
 * endian) and the text.  The newest N stay; writing message SEQ deletes
 * SEQ - N in the same commit.  The room's only other state, the next
 * sequence number, is read back from the newest key when the room wakes.
 *
 * Every message is broadcast to the whole room, sender included, after its
 * put: the output gate holds it until the commit is durable, so a client
 * that has seen a message will find it in the history after a crash, and
 * the sender's copy is its acknowledgement.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

#define CHAT_PREFIX "h/"
#define CHAT_DEFAULT_HISTORY 100
#define CHAT_MAX_HISTORY 100000

/* What a history read needs to finish its event. */
struct chat_replay {
    struct chat_room *room;
    torpor_conn *conn;
};

static torpor_bytes
chat_bytes(const void *data, size_t len)
{
    return (torpor_bytes){.data = data, .len = len};
}

static uint64_t
chat_load_u64le(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void
chat_store_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* chat_key_seq reads SEQ back from a history key; false if malformed. */
static bool
chat_key_seq(torpor_bytes key, uint64_t *seq)
{
    const char *k = key.data;
    uint64_t v = 0;

    if (key.len != 18 || memcmp(k, CHAT_PREFIX, 2) != 0) {
        return false;
    }
    for (size_t i = 2; i < 18; i++) {
        char c = k[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) {
            return false;
        }
        v = (v << 4) | (uint64_t)d;
    }
    *seq = v;
    return true;
}

static void
chat_send_event(struct chat_room *room, torpor_conn *to,
                const torpor_conn *except, const char *type,
                uint64_t conn_id, const uint64_t *seq, int history,
                const torpor_bytes *tags, size_t ntags, const void *text,
                size_t text_len)
{
    const struct torpor_host *host = room->chat->host;
    size_t len;
    char *json = chat_json_event(type, conn_id, seq, history, tags, ntags,
                                 text, text_len, &len);

    if (json == NULL) {
        host->log(room->chat->self, TORPOR_LOG_ERR, room->object, to, "could not send \"%s\": out of memory", type);
        return;
    }
    if (to != NULL) {
        host->send(to, TORPOR_MSG_TEXT, json, len);
    } else {
        host->broadcast(room->object, TORPOR_MSG_TEXT, json, len, except);
    }
    free(json);
}

/* chat_presence announces conn's arrival or departure with its tags. */
static void
chat_presence(struct chat_room *room, torpor_conn *to,
              const torpor_conn *except, const char *type, torpor_conn *conn)
{
    const struct torpor_host *host = room->chat->host;
    torpor_bytes tags[TORPOR_TAGS_MAX];
    size_t n = host->conn_tags(conn, tags, TORPOR_TAGS_MAX);

    chat_send_event(room, to, except, type, host->conn_id(conn), NULL, 0,
                    tags, n < TORPOR_TAGS_MAX ? n : TORPOR_TAGS_MAX, NULL, 0);
}

static void
chat_send_json(struct chat_room *room, torpor_conn *to,
               const torpor_conn *except, const char *type, uint64_t conn_id,
               const uint64_t *seq, int history, const void *text,
               size_t text_len)
{
    chat_send_event(room, to, except, type, conn_id, seq, history, NULL, 0,
                    text, text_len);
}

/* ---- waking: find the next sequence number ---- */

static void
chat_on_newest(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct chat_room *room = arg;
    uint64_t seq;

    if (err != TORPOR_OK) {
        /* Numbering from 0 could overwrite history: refuse to guess. */
        room->chat->host->log(room->chat->self, TORPOR_LOG_ERR, room->object, NULL, "could not read history: %s", room->chat->host->strerror(err));
        room->next_seq = UINT64_MAX;
        return;
    }
    room->next_seq = n > 0 && chat_key_seq(rows[0].key, &seq) ? seq + 1 : 0;
}

static torpor_err
chat_object_create(void *state, torpor_object *object, void **instance)
{
    struct chat_state *chat = state;
    struct chat_room *room = calloc(1, sizeof(*room));
    torpor_range newest = {
        .prefix = chat_bytes(CHAT_PREFIX, 2), .reverse = true, .limit = 1,
    };

    if (room == NULL) {
        return TORPOR_ENOMEM;
    }
    room->chat = chat;
    room->object = object;
    torpor_err err = chat->host->storage_list(object, &newest, chat_on_newest,
                                              room);
    if (err != TORPOR_OK) {
        free(room);
        return err;
    }
    *instance = room;
    return TORPOR_OK;
}

static void
chat_object_destroy(void *instance)
{
    free(instance);
}

/* ---- open: replay the history, then announce the newcomer ---- */

static void
chat_on_history(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct chat_replay *replay = arg;
    struct chat_room *room = replay->room;
    const struct torpor_host *host = room->chat->host;

    if (err != TORPOR_OK) {
        host->log(room->chat->self, TORPOR_LOG_WARN, room->object, replay->conn, "could not read history: %s", host->strerror(err));
        n = 0;
    }
    /* Newest first from storage; oldest first on the wire. */
    for (size_t i = n; i > 0; i--) {
        const torpor_kv *row = &rows[i - 1];
        uint64_t seq;
        if (!chat_key_seq(row->key, &seq) || row->value.len < 8) {
            continue;
        }
        const uint8_t *v = row->value.data;
        chat_send_json(room, replay->conn, NULL, "message",
                       chat_load_u64le(v), &seq, 1, v + 8,
                       row->value.len - 8);
    }
    chat_presence(room, replay->conn, NULL, "welcome", replay->conn);
    chat_presence(room, NULL, replay->conn, "join", replay->conn);
    free(replay);
}

static torpor_err
chat_open(void *instance, torpor_conn *conn)
{
    struct chat_room *room = instance;
    struct chat_replay *replay = malloc(sizeof(*replay));
    torpor_range last = {
        .prefix = chat_bytes(CHAT_PREFIX, 2), .reverse = true,
        .limit = room->chat->history,
    };

    if (replay == NULL) {
        return TORPOR_ENOMEM;
    }
    replay->room = room;
    replay->conn = conn;
    torpor_err err = room->chat->host->storage_list(room->object, &last,
                                                    chat_on_history, replay);
    if (err != TORPOR_OK) {
        free(replay);
    }
    return err;
}

/* ---- messages ---- */

static torpor_err
chat_message(void *instance, torpor_conn *conn, torpor_msg_kind kind,
             const void *data, size_t len)
{
    struct chat_room *room = instance;
    const struct torpor_host *host = room->chat->host;
    char key[19];

    if (kind != TORPOR_MSG_TEXT) {
        host->close(conn, TORPOR_CLOSE_UNSUPPORTED, "chat takes text", 15);
        return TORPOR_OK;
    }
    if (room->next_seq == UINT64_MAX) {
        host->close(conn, TORPOR_CLOSE_TRY_AGAIN, "history unavailable", 19);
        return TORPOR_EIO;
    }
    uint8_t *value = malloc(8 + len);
    if (value == NULL) {
        return TORPOR_ENOMEM;
    }
    uint64_t seq = room->next_seq;
    uint64_t id = host->conn_id(conn);
    chat_store_u64le(value, id);
    memcpy(value + 8, data, len);
    chat_history_key(seq, key);
    torpor_err err = host->storage_put(room->object, chat_bytes(key, 18),
                                       chat_bytes(value, 8 + len));
    free(value);
    if (err == TORPOR_ELIMIT) {
        host->close(conn, TORPOR_CLOSE_TOO_BIG, "too large for history", 21);
        return TORPOR_OK;
    }
    if (err != TORPOR_OK) {
        return err;
    }
    if (seq >= room->chat->history) {
        chat_history_key(seq - room->chat->history, key);
        host->storage_delete(room->object, chat_bytes(key, 18));
    }
    room->next_seq = seq + 1;
    chat_send_json(room, NULL, NULL, "message", id, &seq, 0, data, len);
    return TORPOR_OK;
}

static torpor_err
chat_close(void *instance, torpor_conn *conn, uint16_t code,
           const char *reason, size_t reason_len, bool clean)
{
    struct chat_room *room = instance;

    chat_presence(room, NULL, conn, "leave", conn);
    return TORPOR_OK;
}

/* ---- plugin ---- */

static torpor_err
chat_create(const struct torpor_host *host, torpor_plugin_ctx *self,
            void **state)
{
    struct chat_state *chat;

    if (!TORPOR_HOST_HAS(host, storage_delete)) {
        return TORPOR_EABI;
    }
    chat = calloc(1, sizeof(*chat));
    if (chat == NULL) {
        return TORPOR_ENOMEM;
    }
    chat->host = host;
    chat->self = self;
    chat->history = CHAT_DEFAULT_HISTORY;
    *state = chat;
    return TORPOR_OK;
}

/*
 * [class.chat]
 *   history = 100     messages kept and replayed per room, 1 to 100000
 */
static torpor_err
chat_configure(void *state, const char *key, const char *value, char *why,
               size_t why_size)
{
    struct chat_state *chat = state;
    char *end;

    if (strcmp(key, "history") != 0) {
        return TORPOR_ENOKEY;
    }
    unsigned long long v = strtoull(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end != '\0' || v < 1
        || v > CHAT_MAX_HISTORY) {
        snprintf(why, why_size, "expected a count from 1 to %d",
                 CHAT_MAX_HISTORY);
        return TORPOR_EINVAL;
    }
    chat->history = (uint32_t)v;
    return TORPOR_OK;
}

static void
chat_destroy(void *state)
{
    free(state);
}

static const struct torpor_class_ops chat_ops = {
    .size = sizeof(struct torpor_class_ops),
    .object_create = chat_object_create,
    .object_destroy = chat_object_destroy,
    .open = chat_open,
    .message = chat_message,
    .close = chat_close,
    .hibernate_after_ms = TORPOR_HIBERNATE_DEFAULT_MS,
};

static const struct torpor_plugin chat_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_CLASS, "chat", "0.1.0"),
    .create = chat_create,
    .configure = chat_configure,
    .destroy = chat_destroy,
    .ops.klass = &chat_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &chat_plugin;
}
