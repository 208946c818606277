/*
 * The nng transport: backend services in any language reach rooms over nng
 * (docs/nng-protocol.md).  On a rep address they publish into rooms,
 * deliver to a room's connections, list its connections and read its
 * storage, each with a reply; on a pull address they publish and deliver
 * without one; a pub address streams every room's events.
 *
 * Threads: nng calls this plugin on its own threads (aio callbacks, pipe
 * notifications).  Those only decode, check and hand the work to the core
 * through the host's room_* calls, which carry it to the room's loop; the
 * completions run there, and the reply goes out from there with
 * nng_ctx_send, which any thread may call.  No room is ever touched from
 * an nng thread.
 *
 * Names: everything here is prefixed nngt_, since nng_ is the library's.
 */
#ifndef TORPOR_PLUGINS_NNGT_H
#define TORPOR_PLUGINS_NNGT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <torpor/plugin.h>

#include "torpor/nng.pb-c.h"

#define NNGT_PLUGIN_NAME "nng"

/* The protocol version this server speaks (Request.version). */
#define NNGT_PROTOCOL_VERSION 1

/* Addresses one [transport.nng] section may list. */
#define NNGT_ADDRS_MAX 16

/* Requests a rep address handles at once. */
#define NNGT_REP_CONTEXTS 16

/*
 * Requests a pull address has in flight at once; past it, it stops
 * receiving, and nng's queues and TCP push back on the sender.
 */
#define NNGT_PULL_INFLIGHT 256

/* Rows and keys one storage request may ask for or return. */
#define NNGT_ROWS_MAX 1000

/* Warnings about peers per second; the rest are counted and summed up. */
#define NNGT_WARN_PER_SECOND 10

/* What an address does: its nng pattern. */
enum nngt_pattern {
    NNGT_REP = 1,   /* requests with replies */
    NNGT_PULL = 2,  /* requests without replies */
    NNGT_PUB = 3    /* the event stream */
};

/* Operations, as bits of an address's allowed set. */
enum nngt_op {
    NNGT_OP_PUBLISH = 1,
    NNGT_OP_DELIVER = 2,
    NNGT_OP_INSPECT = 4,        /* list_connections */
    NNGT_OP_STORAGE_READ = 8,   /* storage_get, storage_list */
    NNGT_OP_SUBSCRIBE = 16
};

/* One listen key of the config. */
struct nngt_addr {
    char *key;          /* "listen" or "listen.NAME", for logs */
    uint8_t pattern;    /* enum nngt_pattern */
    unsigned ops;       /* enum nngt_op bits */
    char *url;          /* as configured */
};

struct nngt_config {
    struct nngt_addr addrs[NNGT_ADDRS_MAX];
    size_t naddrs;
    uint64_t max_message_bytes;
    uint64_t subscriber_queue;
};

struct nngt_state;

/* One request context of a rep address. */
struct nngt_rep_ctx {
    struct nngt_listener *listener;
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;       /* the aio carries a reply, not a receive */
};

/* One listening socket. */
struct nngt_listener {
    struct nngt_state *nt;
    const struct nngt_addr *addr;
    char url[300];                  /* as bound: port 0 resolved */
    nng_socket sock;
    bool sock_open;
    struct nngt_rep_ctx ctxs[NNGT_REP_CONTEXTS];
    size_t nctxs;
    nng_aio *pull_aio;
    pthread_mutex_t pull_lock;
    unsigned pull_inflight;
    bool pull_paused;               /* at the limit: not receiving */
    bool pull_lock_ready;
};

struct nngt_state {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
    struct nngt_config cfg;
    struct nngt_listener *listeners;
    size_t nlisteners;
    pthread_mutex_t sub_lock;       /* subscribers and the tap */
    unsigned subscribers;
    bool stopping;                  /* __atomic */
    uint64_t warn_window_ms;        /* __atomic */
    uint32_t warn_count;            /* __atomic */
};

/* Log through the host under this plugin's name. */
#define NNGT_LOG(nt, level, ...) \
    (nt)->host->log((nt)->self, (level), NULL, NULL, __VA_ARGS__)

/* ---- nngt_config.c ---- */

void nngt_config_defaults(struct nngt_config *cfg);
void nngt_config_free(struct nngt_config *cfg);

/*
 * nngt_config_set applies one key of [transport.nng].  TORPOR_ENOKEY for
 * a key it does not know; TORPOR_EINVAL with a reason in why.
 */
torpor_err nngt_config_set(struct nngt_config *cfg, const char *key,
                           const char *value, char *why, size_t why_size);

/* nngt_ops_text writes "publish, deliver" for ops into buf. */
const char *nngt_ops_text(unsigned ops, char *buf, size_t size);

/* nngt_pattern_name: "rep", "pull" or "pub". */
const char *nngt_pattern_name(uint8_t pattern);

/* nngt_utf8_valid: whether p[0..n) is UTF-8 as RFC 3629 defines it. */
bool nngt_utf8_valid(const uint8_t *p, size_t n);

/* ---- nngt_listen.c ---- */

/* nngt_listen_start opens and binds every address.  Main thread. */
torpor_err nngt_listen_start(struct nngt_state *nt);

/*
 * nngt_listen_stop closes every socket and waits for nng's callbacks to
 * finish; afterwards no nng thread calls into the plugin.  Main thread.
 */
void nngt_listen_stop(struct nngt_state *nt);

/* nngt_listen_free frees the listeners; after stop, at destroy. */
void nngt_listen_free(struct nngt_state *nt);

/*
 * nngt_reply_send sends a rep context its reply (taking msg; NULL sends
 * none) and goes back to receiving; nngt_pull_done frees a pull address's
 * slot.  Any thread.
 */
void nngt_reply_send(struct nngt_rep_ctx *rc, nng_msg *msg);
void nngt_pull_done(struct nngt_listener *l);

/* nngt_warn_allowed: whether a warning about a peer may be logged now. */
bool nngt_warn_allowed(struct nngt_state *nt);

/* Messages the class may send a publisher within one reply. */
#define NNGT_REPLIES_MAX 64

/*
 * One request between its arrival and its reply.  Made on nng's thread;
 * once handed to the core, only the room's loop touches it, until the
 * completion answers and frees it.  As the publisher's tconn it collects
 * what the class sends back.
 */
struct nngt_req {
    struct nngt_listener *listener;
    struct nngt_rep_ctx *rc;        /* NULL: from pull, no reply */
    Torpor__Nng__Request *in;
    torpor_frame *replies[NNGT_REPLIES_MAX];
    size_t nreplies;
    size_t reply_bytes;
    bool truncated;                 /* a reply did not fit */
    bool closed;                    /* the class closed the publisher */
    uint16_t close_code;
    size_t close_reason_len;
    char close_reason[123];
};

/* ---- nngt_request.c ---- */

/*
 * nngt_request_handle decodes and runs one request that arrived on l,
 * taking msg; rc is its rep context, NULL on a pull address.  On nng's
 * thread; the reply may go out before it returns or later from a loop.
 */
void nngt_request_handle(struct nngt_listener *l, struct nngt_rep_ctx *rc,
                         nng_msg *msg);

/* ---- nngt_reply.c ---- */

/*
 * nngt_answer sends reply (status, message and result set by the caller)
 * and frees r.  Any thread.
 */
void nngt_answer(struct nngt_req *r, Torpor__Nng__Reply *reply);

/* nngt_fail answers r with status and a message for people. */
void nngt_fail(struct nngt_req *r, Torpor__Nng__Status status,
               const char *fmt, ...) TORPOR_PRINTF(3, 4);

/* The completions of the host's room calls; each answers and frees r. */
void nngt_on_published(void *arg, const torpor_room_result *res);
void nngt_on_delivered(void *arg, const torpor_room_result *res);
void nngt_on_conns(void *arg, torpor_err err, torpor_conn *const *conns,
                   size_t n);
void nngt_on_rows(void *arg, torpor_err err, const torpor_kv *rows,
                  size_t n);

/* The transport ops, through which the class answers a publisher. */
torpor_err nngt_frame_encode(void *state, torpor_msg_kind kind,
                             const void *data, size_t len,
                             torpor_frame **out);
torpor_err nngt_frame_send(void *tconn, torpor_frame *frame);
void nngt_frame_release(torpor_frame *frame);
torpor_err nngt_sender_close(void *tconn, uint16_t code, const char *reason,
                             size_t reason_len);

/* ---- nngt_events.c ---- */

/*
 * nngt_events_subscriber counts a subscriber joining (+1) or leaving (-1)
 * a pub address; the first sets the room tap, the last removes it.  Any
 * thread.
 */
void nngt_events_subscriber(struct nngt_state *nt, int delta);

/* ---- nngt_topic.c ---- */

/*
 * nngt_topic writes the topic of (class, name): percent-encoded class,
 * "/", percent-encoded name, ":".  Returns its length; buf must hold
 * 3 * (class_len + name_len) + 2 bytes.
 */
size_t nngt_topic(char *buf, const char *class_name, size_t class_len,
                  const void *name, size_t name_len);

#endif /* TORPOR_PLUGINS_NNGT_H */
