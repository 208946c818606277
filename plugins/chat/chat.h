/*
 * chat: a room class that relays text messages, keeps the last N of them
 * in storage and replays them to each newcomer, and announces who joins
 * and leaves.  The wire format is in docs/chat.md.
 */
#ifndef TORPOR_PLUGINS_CHAT_H
#define TORPOR_PLUGINS_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <torpor/plugin.h>

/* The plugin's state: its settings and the host. */
struct chat_state {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
    uint32_t history;           /* messages kept per room */
};

/* One room's instance, rebuilt from storage on every wake. */
struct chat_room {
    struct chat_state *chat;
    torpor_object *object;
    uint64_t next_seq;          /* the sequence number of the next message */
};

/*
 * chat_json_event writes {"type":TYPE,"conn":CONN[,"seq":SEQ]
 * [,"history":true][,"tags":[...]][,"text":TEXT]} into a new buffer;
 * strings are escaped; tags are left out when tags is NULL.  Returns NULL
 * when memory runs out.
 */
char *chat_json_event(const char *type, uint64_t conn, const uint64_t *seq,
                      int history, const torpor_bytes *tags, size_t ntags,
                      const void *text, size_t text_len, size_t *out_len);

/*
 * chat_history_key writes the storage key of message seq: "h/" and 16 hex
 * digits, so that keys sort in message order.
 */
void chat_history_key(uint64_t seq, char out[19]);

#endif /* TORPOR_PLUGINS_CHAT_H */
