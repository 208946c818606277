/*
 * torpor/room.h: the types of the host calls through which a transport
 * serves backend services rather than clients (ABI 1.1): publish a message
 * into a room as if a client had sent it, deliver a message straight to a
 * room's connections, list its connections, read its storage, and follow
 * the events of every room.  The calls themselves are members of the host
 * table (torpor/host.h).
 *
 * Every room call may be made from any thread, the transport's own
 * included.  It checks and copies its arguments, returns TORPOR_OK and
 * later runs its completion exactly once on the room's own loop, never
 * inside the call; a call that returns anything else did nothing and never
 * calls back.  The core hops to the room's loop itself, so a transport
 * needs to know nothing about loops or shards.
 */
#ifndef TORPOR_ABI_ROOM_H
#define TORPOR_ABI_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Which room a call is about: a route (or a class) and a name, the way a
 * client names it in /ROUTE/NAME, or the 128-bit id alone.  Exactly one of
 * route and class_name goes with a name; an id goes alone and reaches only
 * a room that is in memory (it has connections or is running an event),
 * because an id cannot tell which class would make it.  The struct grows
 * at the end; size is sizeof at the caller's build.
 */
typedef struct torpor_room_ref {
    uint32_t size;
    torpor_bytes route;       /* a route's name ("relay"), or empty */
    torpor_bytes class_name;  /* a class's name, or empty */
    torpor_bytes name;        /* the room's name: any bytes, 1 to 256 */
    const uint8_t *id;        /* 16 bytes, or NULL */
} torpor_room_ref;

/* What room_publish and room_deliver send.  Grows at the end. */
typedef struct torpor_room_msg {
    uint32_t size;
    uint32_t kind;            /* a torpor_msg_kind; text must be UTF-8 */
    torpor_bytes data;
    const torpor_bytes *tag;  /* deliver: only connections with this tag */
    uint64_t except_conn;     /* deliver: not this connection id; 0: none */
} torpor_room_msg;

/*
 * How a publish or deliver ended.  The core fills size with its own
 * sizeof; a field past it reads as absent.
 */
typedef struct torpor_room_result {
    uint32_t size;
    torpor_err err;           /* see room_publish and room_deliver */
    torpor_err handler_err;   /* publish: what the message handler returned */
    uint64_t count;           /* deliver: the connections sent to */
} torpor_room_result;

typedef void (*torpor_room_done_cb)(void *arg,
                                    const torpor_room_result *result);

/*
 * The open connections of a room; the handles are valid during the call,
 * which runs on the room's loop, so conn_id and conn_tags may be asked.
 */
typedef void (*torpor_room_conns_cb)(void *arg, torpor_err err,
                                     torpor_conn *const *conns, size_t n);

/* Which connection a message comes from, as conn_origin tells. */
typedef enum torpor_conn_origin {
    TORPOR_ORIGIN_CLIENT = 0,   /* a client of a transport */
    TORPOR_ORIGIN_BACKEND = 1   /* a backend service, through room_publish */
} torpor_conn_origin;

/* What happened to a room, as a tap sees it. */
typedef enum torpor_room_event_type {
    TORPOR_ROOM_EVENT_OPEN = 1,
    TORPOR_ROOM_EVENT_MESSAGE = 2,
    TORPOR_ROOM_EVENT_CLOSE = 3,
    TORPOR_ROOM_EVENT_ALARM = 4
} torpor_room_event_type;

/*
 * One event of a room, handed to a tap right before the class hears of it,
 * on the room's loop.  Everything it points to is valid during the call.
 * The struct grows at the end.
 */
typedef struct torpor_room_event {
    uint32_t size;
    uint32_t type;                /* a torpor_room_event_type */
    torpor_object *object;
    const char *class_name;
    torpor_bytes name;            /* the room's name */
    const uint8_t *id;            /* 16 bytes */
    torpor_conn *conn;            /* NULL for an alarm */
    uint64_t conn_id;             /* 0 for an alarm or a backend's message */
    uint32_t origin;              /* a torpor_conn_origin */
    uint32_t kind;                /* message: its torpor_msg_kind */
    torpor_bytes data;            /* message bytes, close reason, alarm name */
    uint16_t code;                /* close: its code, 1006 if none came */
    bool clean;                   /* close: false if dropped */
    uint32_t retry;               /* alarm: earlier failed attempts */
    uint64_t time_ms;             /* wall clock, ms since 1970 */
} torpor_room_event;

/*
 * A tap runs on the room's loop for every event of every room while it is
 * set: it must not block, and should return quickly, since the room waits.
 */
typedef void (*torpor_room_tap_cb)(void *arg, const torpor_room_event *ev);

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_ROOM_H */
