/*
 * core/object_internal.h: the layout of objects and connection records,
 * shared by the files that implement them (object.c, event.c, output.c,
 * object_storage.c) and by nothing else.
 */
#ifndef TORPOR_CORE_OBJECT_INTERNAL_H
#define TORPOR_CORE_OBJECT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/plugin.h>

#include "core/object.h"

struct tpr_shard;
struct tpr_publish;

enum conn_state {
    CONN_ATTACHED,  /* accepted, handshake not yet finished */
    CONN_OPEN,      /* the transport may be sent to */
    CONN_CLOSING,   /* a close was asked for; nothing more is sent */
    CONN_CLOSED     /* the transport is done with it; close is queued */
};

/*
 * What a connection carries beyond its record: made on the first tag,
 * attachment or auto-response, so a bare connection pays one pointer.
 */
struct conn_extra {
    uint64_t auto_response_ms;
    uint8_t *attachment;
    uint32_t attachment_len;
    uint8_t ntags;
    uint16_t tag_end[TORPOR_TAGS_MAX];  /* tag i ends at tags + tag_end[i] */
    uint8_t *tags;
};

/*
 * The core's part of a connection record.  It lies in the loop's store
 * (conn_store.c) right after the transport's part, which gives it its
 * transport and loop; see docs/architecture.md for the bytes.  The record
 * is freed once both sides are done: the class (its close was delivered,
 * object is NULL) and the transport (it released the record).
 */
struct torpor_conn {
    torpor_object *object;      /* NULL once its close was delivered */
    struct conn_extra *extra;   /* NULL until something is set */
    uint64_t id;
    uint32_t prev;              /* in the object's list, as tpr_conn_ref */
    uint32_t next;              /* names them; 0: none */
    uint8_t state;              /* enum conn_state */
    bool opened : 1;            /* the class was told of the open */
    bool accepting : 1;         /* in the class's accept: tags may change */
    bool deferred : 1;          /* closed while hibernating; told on wake */
    bool close_held : 1;        /* its close waits in the output gate */
    bool close_clean : 1;       /* of a deferred close */
    bool transport_done : 1;    /* the transport released the record */
    bool outside : 1;           /* a backend's sender, in no store */
    uint16_t close_code;        /* of a deferred close */
};

/* Auto-response pairs of a class or an object; see host.h. */
struct tpr_auto_table {
    size_t n;
    struct tpr_auto_pair *pairs[TORPOR_AUTO_RESPONSES_MAX];
};

enum obj_event_type { OBJ_EV_OPEN, OBJ_EV_MESSAGE, OBJ_EV_CLOSE, OBJ_EV_ALARM };

/*
 * A queued event; data holds the message, the close reason or the alarm's
 * name (NUL-terminated).
 */
struct obj_event {
    struct obj_event *next;
    torpor_conn *conn;          /* NULL for an alarm */
    uint8_t type;
    uint8_t kind;
    bool clean;
    uint16_t code;
    uint32_t retry;             /* an alarm's earlier failed attempts */
    size_t len;
    uint8_t data[];
};

/*
 * What the core remembers of one alarm of an awake object: how often its
 * handler failed, and whether an event for it is on its way, so that the
 * poller does not fire it twice.
 */
struct obj_alarm {
    struct obj_alarm *next;
    uint32_t retry;
    bool inflight;              /* queued, running, or being committed */
    bool committing;            /* its outcome is in the commit in flight */
    size_t len;
    char name[];
};

/* The writes of the current event, owned copies, in order. */
struct obj_batch {
    torpor_write *writes;
    size_t n;
    size_t cap;
};

/*
 * A message, or a close (then data is the reason), held by the output gate
 * until the event's commit is durable.
 */
struct obj_held {
    struct obj_held *next;
    torpor_conn *conn;          /* the recipient, or NULL for a broadcast */
    const torpor_conn *except;  /* a broadcast's excluded connection */
    uint8_t kind;
    bool is_close;              /* a close of conn with code */
    uint16_t code;
    bool has_tag;               /* a broadcast to a tag, after data */
    size_t len;
    size_t tag_len;
    uint8_t data[];
};

struct torpor_object {
    struct tpr_object_id id;
    struct tpr_runtime *rt;
    struct tpr_shard *shard;    /* its loop, its table, its counters */
    struct torpor_plugin_ctx *klass;
    torpor_object *hash_next;
    void *instance;
    uint64_t last_active_ms;    /* of the last event, for hibernation */
    uint32_t idle_pos;          /* in the loop's idle queue, + 1; 0: not */

    /*
     * depth counts entries into the object (a delivery, a host call from
     * outside a handler, a storage completion); events that arrive while
     * it is raised, or while the gate below is closed, wait in the queue.
     */
    unsigned depth;
    struct obj_event *queue_head;
    struct obj_event *queue_tail;
    uint32_t queued;            /* events in the queue */
    uint32_t deferred_closes;   /* connections closed while hibernating */

    /* The gate: an event in progress (in_event), its reads, its commit. */
    struct obj_event *parked;   /* waits for the constructor's reads */
    struct obj_batch batch;
    struct obj_held *held_head;
    struct obj_held *held_tail;

    struct tpr_publish *publishing;  /* a backend's message, until its event
                                        ends; room_publish.c */
    struct tpr_auto_table *auto_responses;  /* the object's own, or NULL */
    struct obj_alarm *alarms;   /* fired lately; see alarm.c */
    struct obj_alarm *alarm_current;    /* the event being run, if any */

    torpor_conn *conns;
    uint32_t nconns;
    unsigned reads;             /* storage reads and class holds */
    unsigned holds;             /* of reads, the class's holds */
    bool awake;
    bool hibernating;           /* freed by hibernation, connections kept */
    bool in_event;
    bool committing;
    bool reset_pending;         /* a handler overran: reset at event end */
    bool alarm_failed;          /* its handler returned an error */
    uint16_t name_len;
    char name[];                /* then NUL, tpr_object_log_ids and NUL */
};

/* tpr_object_log_ids: 'object="class/name"' for log lines, quoted. */
static inline const char *
tpr_object_log_ids(const torpor_object *obj)
{
    return obj->name + obj->name_len + 1;
}

/*
 * tpr_object_enter / tpr_object_leave bracket every entry into an object.
 * The outermost leave delivers what the queue holds while the gate is
 * open, and frees the object once nothing refers to it.  obj may be gone
 * after tpr_object_leave.
 */
void tpr_object_enter(torpor_object *obj);
void tpr_object_leave(torpor_object *obj);

/* tpr_object_gated: whether events must wait (an event or commit runs). */
bool tpr_object_gated(const torpor_object *obj);

/*
 * tpr_object_wake runs the class's constructor if there is no instance;
 * tpr_object_sleep destroys the instance.  Both with depth raised.
 */
torpor_err tpr_object_wake(torpor_object *obj);
void tpr_object_sleep(torpor_object *obj);

/*
 * tpr_object_idle_start queues a freshly woken object whose class
 * hibernates on its loop's idle queue; tpr_object_idle_stop takes it off
 * when its instance goes.  hibernate.c.
 */
void tpr_object_idle_start(torpor_object *obj);
void tpr_object_idle_stop(torpor_object *obj);

/* tpr_object_free unlinks and frees an object that nothing refers to. */
void tpr_object_free(torpor_object *obj);

/* tpr_conn_next: the connection after conn in its object's list, or NULL. */
torpor_conn *tpr_conn_next(const torpor_conn *conn);

/* tpr_conn_unlink takes conn off its object's list; does not free it. */
void tpr_conn_unlink(torpor_conn *conn);

/*
 * tpr_conn_free ends the core's part of conn: frees what it carries and
 * the record itself once the transport released it too.  conn must be
 * unlinked.
 */
void tpr_conn_free(torpor_conn *conn);

/* tpr_conn_extra_free frees conn's tags and attachment; conn_extra.c. */
void tpr_conn_extra_free(torpor_conn *conn);

/*
 * tpr_conn_release is the host's conn_release: the transport is done
 * with conn's record.  On conn's loop.
 */
void tpr_conn_release(torpor_conn *conn);

/* tpr_conn_loop is the host's conn_loop.  Any thread. */
torpor_loop *tpr_conn_loop(const torpor_conn *conn);

/*
 * tpr_conn_tags_from_query sets the tags a URL query names (tag=...),
 * percent-decoded.  TORPOR_EINVAL for a malformed or non-UTF-8 tag,
 * TORPOR_ELIMIT past the limits.  conn_extra.c.
 */
torpor_err tpr_conn_tags_from_query(torpor_conn *conn, torpor_bytes query);

/* tpr_conn_has_tag: whether conn carries tag. */
bool tpr_conn_has_tag(const torpor_conn *conn, torpor_bytes tag);

/* tpr_output_broadcast_to sends to the open connections match accepts. */
torpor_err tpr_output_broadcast_to(torpor_object *obj, torpor_msg_kind kind,
                                   const void *data, size_t len,
                                   const torpor_conn *except,
                                   const torpor_bytes *tag);

/*
 * tpr_auto_respond answers msg from conn if a pair matches; returns true
 * when it did, and the message must not reach the class.  auto_response.c.
 */
bool tpr_auto_respond(torpor_conn *conn, torpor_msg_kind kind,
                      const void *data, size_t len);

/* tpr_auto_table_free frees a table of pairs. */
void tpr_auto_table_free(struct tpr_auto_table *t);

/*
 * tpr_event_deliver runs one event's handler with the gate open and depth
 * raised; tpr_event_settle ends the current event once its reads are done.
 */
void tpr_event_deliver(torpor_object *obj, const struct obj_event *ev,
                       const void *data);
void tpr_event_settle(torpor_object *obj);

/* tpr_output_release sends the held messages; tpr_output_drop drops them. */
void tpr_output_release(torpor_object *obj);
void tpr_output_drop(torpor_object *obj);

/* tpr_batch_clear frees the buffered writes of the current event. */
void tpr_batch_clear(struct obj_batch *b);

/* tpr_batch_add copies one write into the current event's batch. */
torpor_err tpr_batch_add(struct obj_batch *b, uint32_t kind, torpor_bytes key,
                         torpor_bytes value, uint64_t time_ms);

/*
 * tpr_object_get finds the object (klass, name) or makes it.  Main loop.
 */
torpor_err tpr_object_get(struct tpr_runtime *rt,
                          struct torpor_plugin_ctx *klass, const void *name,
                          size_t name_len, torpor_object **out);

/*
 * tpr_object_find finds the object with id in shard's table, of klass and
 * name unless klass is NULL (then any object with that id); NULL if none.
 * On the shard's thread.
 */
torpor_object *tpr_object_find(struct tpr_shard *shard,
                               const struct tpr_object_id *id,
                               const struct torpor_plugin_ctx *klass,
                               const void *name, size_t name_len);

/*
 * tpr_event_post_alarm queues or delivers the alarm event for a; the
 * object owns a.  event.c.
 */
void tpr_event_post_alarm(torpor_object *obj, struct obj_alarm *a);

/*
 * alarm.c: tpr_alarm_event_end adds the outcome of the alarm event that
 * just ended to the batch; tpr_alarm_committed settles alarms after the
 * commit; tpr_alarms_free forgets an object's alarm state.
 */
void tpr_alarm_event_end(torpor_object *obj);
void tpr_alarm_committed(torpor_object *obj, bool ok);
void tpr_alarms_free(torpor_object *obj);

/*
 * tpr_alarm_abandon forgets that the alarm name is on its way, when its
 * event could not run; the poller fires it again.
 */
void tpr_alarm_abandon(torpor_object *obj, const void *name, size_t len);

/* tpr_storage_commit_event commits the event's batch; see host.h. */
void tpr_storage_commit_event(torpor_object *obj);

#endif /* TORPOR_CORE_OBJECT_INTERNAL_H */
