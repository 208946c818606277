/*
 * backend: a room class whose handlers run in worker processes, in any
 * language, over nng.  Each event of an object goes to a pool of workers
 * as a protobuf Request (schemas/torpor/backend.proto) on a REQ socket that
 * torpord listens on; the worker that takes it answers with a Reply whose
 * actions (send, broadcast, close, attachment, storage, alarms) the class
 * applies in order, within the event.  docs/backend-workers.md describes
 * the protocol for worker authors.
 *
 * Threads: nng completes its operations on its own threads; the class
 * hands each completion to the object's loop with host->loop_post and
 * touches the object only there.  The core delivers one event of an object
 * at a time and the class holds that event open (host->event_hold) until
 * the worker's reply is applied, so a room has at most one exchange in
 * flight and its call needs no lock.
 */
#ifndef TORPOR_PLUGINS_BACKEND_H
#define TORPOR_PLUGINS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include <torpor/plugin.h>

#include "torpor/backend.pb-c.h"

#define BK_PROTOCOL_VERSION 1
#define BK_MAX_READS 16         /* reads one reply may ask for */
#define BK_MAX_GET_KEYS 256     /* keys one Get may name */
#define BK_LIST_CAP 1000        /* entries one List returns at most */
#define BK_MAX_STEPS 8          /* rounds of reads within one event */
#define BK_URL_MAX 256

/* Counters of the whole class, read at shutdown; each is __atomic. */
struct bk_stats {
    uint64_t events;            /* events sent to the workers */
    uint64_t applied;           /* events whose reply was applied */
    uint64_t timeouts;          /* attempts no worker answered in time */
    uint64_t lost;              /* attempts whose worker went away */
    uint64_t malformed;         /* replies refused as malformed */
    uint64_t refused;           /* events a worker answered with an error */
    uint64_t dropped;           /* events given up after every retry */
};

/* The plugin's state: its settings, the socket, the counters. */
struct bk_state {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
    char workers[BK_URL_MAX];   /* the address workers dial */
    uint32_t timeout_ms;        /* per attempt */
    uint32_t retries;           /* attempts after the first, per step */
    size_t max_reply_bytes;
    nng_socket sock;
    bool sock_open;
    uint64_t next_event_id;     /* __atomic */
    uint32_t connected;         /* workers connected now; __atomic */
    struct bk_stats stats;
};

/* Where an exchange is; the call's fields below say what it waits for. */
enum bk_phase {
    BK_IDLE,                    /* no event in flight */
    BK_SENDING,                 /* nng looks for a worker to take it */
    BK_WAITING,                 /* a worker has it; waiting for its reply */
    BK_READING                  /* storage reads the reply asked for */
};

/* One packed ReadResult of the previous step. */
struct bk_result {
    uint8_t *data;
    size_t len;
};

struct bk_call;

/* What a storage read's callback needs: its call and its place. */
struct bk_read_slot {
    struct bk_call *call;
    size_t index;
};

/*
 * A room's exchange with the workers.  Made with the room's instance and
 * reused by each of its events.  task comes first: nng's completion posts
 * it to the room's loop, where everything else happens.
 */
struct bk_call {
    torpor_task task;
    struct bk_state *bk;
    torpor_object *object;
    torpor_loop *loop;
    nng_ctx ctx;
    nng_aio *aio;
    bool posted;                /* task queued on the loop, not yet run */
    bool detached;              /* the room is gone: the task frees this */
    enum bk_phase phase;
    int result;                 /* nng's result of the last operation */
    nng_msg *reply;             /* what the worker answered */
    nng_time deadline;          /* end of the current attempt */

    /* The event in flight. */
    uint64_t event_id;
    uint32_t step;
    uint32_t attempt;
    const char *what;           /* "open", "message", "close", "alarm" */
    uint64_t conn_id;           /* 0 for an alarm */
    uint32_t conn_count;
    uint8_t *event_buf;         /* packed torpor.Event */
    size_t event_len;
    uint8_t *conn_buf;          /* packed Connection, or NULL */
    size_t conn_len;

    /* The previous step's reads and continuation. */
    struct bk_result results[BK_MAX_READS];
    size_t nresults;
    size_t reads_pending;
    torpor_err read_error;      /* the first read that failed */
    struct bk_read_slot slots[BK_MAX_READS];
    uint8_t *continuation;
    size_t continuation_len;
};

/* One room's instance: the object and its call. */
struct bk_room {
    struct bk_state *bk;
    torpor_object *object;
    struct bk_call *call;
};

/* ---- bk_wire.c: the Request on the wire (no host, no nng) ---- */

enum bk_body { BK_OPEN, BK_MESSAGE, BK_CLOSE, BK_ALARM };

/* What an event's torpor.Event holds; bytes are borrowed. */
struct bk_event_desc {
    torpor_bytes name;          /* the object's */
    uint8_t id[16];             /* the object's */
    uint64_t conn_id;
    uint64_t time_ms;
    enum bk_body body;
    const torpor_bytes *tags;   /* open */
    size_t ntags;
    torpor_msg_kind kind;       /* message */
    torpor_bytes data;          /* message data, or close reason */
    uint16_t code;              /* close */
    bool clean;                 /* close */
    const char *alarm;          /* alarm name */
    uint32_t retry;             /* alarm */
};

/* The parts of one Request, borrowed; see backend.proto. */
struct bk_request_parts {
    uint64_t event_id;
    uint32_t step;
    uint32_t attempt;
    uint32_t conn_count;
    const uint8_t *event;
    size_t event_len;
    const uint8_t *conn;        /* NULL: no Connection */
    size_t conn_len;
    const struct bk_result *results;
    size_t nresults;
    const uint8_t *continuation;
    size_t continuation_len;
};

/*
 * bk_pack_event packs a torpor.Event into a new buffer (*out, freed by the
 * caller).  TORPOR_ENOMEM.
 */
torpor_err bk_pack_event(const struct bk_event_desc *d, uint8_t **out,
                         size_t *len);

/* bk_pack_conn packs a Connection into a new buffer.  TORPOR_ENOMEM. */
torpor_err bk_pack_conn(uint64_t id, const torpor_bytes *tags, size_t ntags,
                        torpor_bytes attachment, uint8_t **out, size_t *len);

/*
 * bk_pack_result packs what one read found as a ReadResult into a new
 * buffer.  TORPOR_ENOMEM.
 */
torpor_err bk_pack_result(const torpor_kv *rows, size_t n,
                          struct bk_result *out);

/*
 * bk_request_size and bk_request_write lay out a Request around parts
 * that are already packed, so an event's bytes are packed once however
 * often it is retried: bk_request_write fills exactly bk_request_size
 * bytes of out.
 */
size_t bk_request_size(const struct bk_request_parts *p);
void bk_request_write(const struct bk_request_parts *p, uint8_t *out);

/* ---- bk_reply.c: reading and checking a Reply (no host, no nng) ---- */

/*
 * bk_reply_parse unpacks a worker's answer and checks that it is a reply
 * to event_id at step that torpord can apply whole: on TORPOR_OK *out is
 * the reply (free with torpor__backend__reply__free_unpacked); on
 * TORPOR_EINVAL why says what is wrong, in one line.
 */
torpor_err bk_reply_parse(const void *data, size_t len, uint64_t event_id,
                          uint32_t step, Torpor__Backend__Reply **out,
                          char *why, size_t why_size);

/* bk_utf8_valid: whether data is valid UTF-8 (RFC 3629). */
bool bk_utf8_valid(const void *data, size_t len);

/* ---- bk_call.c: the exchange, on nng's threads and the room's loop ---- */

/* bk_call_new makes a room's call: an nng context and aio.  Room loop. */
torpor_err bk_call_new(struct bk_state *bk, torpor_object *object,
                       struct bk_call **out);

/*
 * bk_call_free frees a room's call.  An exchange still in flight (only at
 * shutdown, when rooms are freed with their events unfinished) is
 * stopped; a completion already queued on the loop frees the call when it
 * runs.
 */
void bk_call_free(struct bk_call *call);

/*
 * bk_call_begin sends an event to the workers and holds it open until the
 * reply is applied or the event is given up.  It takes event_buf and
 * conn_buf (either way).  Room loop, within the event.
 */
torpor_err bk_call_begin(struct bk_call *call, const char *what,
                         uint64_t conn_id, uint8_t *event_buf,
                         size_t event_len, uint8_t *conn_buf,
                         size_t conn_len);

/* bk_call_step sends the next step of the event, after its reads. */
void bk_call_step(struct bk_call *call);

/*
 * bk_call_finish ends the event: it releases the hold with result.  The
 * call may be reused, and the room freed, before it returns: nothing may
 * touch either afterwards.
 */
void bk_call_finish(struct bk_call *call, torpor_err result);

/* ---- bk_apply.c: what a reply asks for, on the room's loop ---- */

/*
 * bk_apply_actions applies a reply's actions in order.  An action the
 * core refuses (a key over the storage limit) is logged and skipped; the
 * rest still apply, as in a C handler.
 */
void bk_apply_actions(struct bk_call *call, const Torpor__Backend__Reply *r);

/*
 * bk_apply_reads starts the reads a reply asks for; when the last one
 * completes the event moves to its next step, or ends if a read failed.
 */
void bk_apply_reads(struct bk_call *call, const Torpor__Backend__Reply *r);

/* ---- bk_room.c ---- */

extern const struct torpor_class_ops bk_class_ops;

#endif /* TORPOR_PLUGINS_BACKEND_H */
