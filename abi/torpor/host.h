/*
 * torpor/host.h: the table of core functions a plugin may call.
 *
 * The core hands a plugin this table in its create hook.  A plugin calls the
 * core only through it, so a plugin binary never links against libtorpor
 * and keeps loading into newer cores of the same major version.  The table
 * grows at the end; a plugin that uses a function added after the minor
 * version it requires checks TORPOR_HOST_HAS(host, fn) first.
 *
 * Threads: unless a member says otherwise, call it on the loop that owns
 * the handle it takes (a connection or object runs on its object's loop;
 * a plugin's own io and timers on the loop they were opened on).
 */
#ifndef TORPOR_ABI_HOST_H
#define TORPOR_ABI_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/types.h>
#include <torpor/storage.h>
#include <torpor/room.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Readiness a plugin asks an io watch for; may be or-ed. */
enum {
    TORPOR_IO_READ = 1,
    TORPOR_IO_WRITE = 2
};

typedef void (*torpor_io_cb)(torpor_io *io, int fd, unsigned events,
                             void *arg);
typedef void (*torpor_timer_cb)(torpor_timer *timer, void *arg);

/* The callback of a watch: arg as given to watch_add, TORPOR_IO_* ready. */
typedef void (*torpor_watch_cb)(void *arg, unsigned events);

/* The callback of conn_walk: arg as given, tconn one connection's record. */
typedef void (*torpor_conn_walk_cb)(void *arg, void *tconn);

/*
 * A task to run on a loop, posted from any thread with host->loop_post.
 * The poster owns the memory and sets run; next belongs to the core while
 * the task is queued.  Embedding it in a request means posting never
 * allocates and never fails.
 */
typedef struct torpor_task torpor_task;
struct torpor_task {
    void (*run)(torpor_task *task);
    torpor_task *next;
};

/*
 * What a transport knows about a client that asks to join an object.  The
 * struct grows at the end; size is sizeof at the caller's build.
 */
typedef struct torpor_attach_req {
    uint32_t size;
    torpor_bytes route;   /* the route, e.g. "relay" of "/relay/lobby" */
    torpor_bytes name;    /* the object's name, already percent-decoded */
    torpor_bytes query;   /* the raw query string, without '?'; may be empty */
    const char *peer;     /* the client's address for logs: "127.0.0.1:5050" */
    /*
     * The subprotocol the transport agreed with the client (WebSocket's
     * Sec-WebSocket-Protocol), or empty for none.  A class reads it in
     * accept, the one hook that sees the request, and keeps it as a tag or
     * in the attachment if later events need it.  The core hands a class
     * a request of its own size, so a transport built before this member
     * gives an empty one.
     */
    torpor_bytes subprotocol;
} torpor_attach_req;

/* The first size of torpor_attach_req: a transport sends at least this. */
#define TORPOR_ATTACH_REQ_MIN_SIZE                                         \
    (offsetof(torpor_attach_req, peer) + sizeof(const char *))

struct torpor_host {
    uint32_t size;          /* sizeof(struct torpor_host) in the core */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* ---- any thread ---- */

    /* strerror names a torpor_err: "no such file or entry", ... */
    const char *(*strerror)(torpor_err err);

    /*
     * log writes one line under the plugin's name.  object and conn may be
     * NULL; when given, their ids are added to the line, so a message never
     * repeats them.  Check log_enabled first when formatting is costly.
     */
    void (*log)(torpor_plugin_ctx *self, torpor_log_level level,
                const torpor_object *object, const torpor_conn *conn,
                const char *fmt, ...) TORPOR_PRINTF(5, 6);
    bool (*log_enabled)(const torpor_plugin_ctx *self, torpor_log_level level);

    /* now_ms: a monotonic clock in milliseconds. */
    uint64_t (*now_ms)(void);

    /* ---- loops, io and timers ---- */

    /* loop_main is the loop on which transports accept new peers. */
    torpor_loop *(*loop_main)(const torpor_plugin_ctx *self);

    /*
     * io_open watches fd for the given events on loop and calls cb on that
     * loop while it is ready (level-triggered).  The fd stays the caller's:
     * io_close stops the watch and never closes the fd.
     */
    torpor_err (*io_open)(torpor_loop *loop, int fd, unsigned events,
                          torpor_io_cb cb, void *arg, torpor_io **out);
    torpor_err (*io_set)(torpor_io *io, unsigned events);
    void (*io_close)(torpor_io *io);

    /* A one-shot timer; timer_arm re-arms a pending timer. */
    torpor_err (*timer_open)(torpor_loop *loop, torpor_timer_cb cb, void *arg,
                             torpor_timer **out);
    void (*timer_arm)(torpor_timer *timer, uint64_t after_ms);
    void (*timer_disarm)(torpor_timer *timer);
    void (*timer_close)(torpor_timer *timer);

    /* ---- transport side: a transport reports its peers ---- */

    /*
     * conn_attach asks to join the object that req names.  tconn is the
     * transport's own record, handed back in every transport op; or, for
     * a transport with conn_bytes (torpor/transport.h), the record the
     * core makes by copying tconn's first conn_bytes, which from then on
     * owns what tconn did and lies right before the core's handle, at
     * (char *)*conn - TORPOR_CONN_SPAN(conn_bytes).  On
     * TORPOR_OK, *conn is the core's handle and *loop the loop the
     * connection must move its io to before it calls conn_opened.  On
     * failure, *http_status says what to answer: 404 (TORPOR_ENOENT, no
     * such route), 400 (TORPOR_EINVAL, bad name), 503 (TORPOR_ELIMIT or
     * TORPOR_ECLOSED, shutting down or full), or a class's refusal
     * (TORPOR_EREFUSED).  Called on loop_main.
     */
    torpor_err (*conn_attach)(torpor_plugin_ctx *self,
                              const torpor_attach_req *req, void *tconn,
                              torpor_conn **conn, torpor_loop **loop,
                              int *http_status);

    /* conn_opened: the peer is ready for messages; the class hears "open". */
    void (*conn_opened)(torpor_conn *conn);

    /*
     * conn_received delivers one whole message.  The bytes are only read
     * during the call: the core copies what it must keep.
     */
    void (*conn_received)(torpor_conn *conn, torpor_msg_kind kind,
                          const void *data, size_t len);

    /*
     * conn_closed reports that the connection is gone: the close handshake
     * finished (clean), or the socket failed or was dropped (code 1006).
     * After this call the core never uses tconn again and the transport
     * may free it; a record the core keeps is given back with
     * conn_release instead.
     */
    void (*conn_closed)(torpor_conn *conn, uint16_t code, const char *reason,
                        size_t reason_len, bool clean);

    /* ---- class side: on the object's loop ---- */

    /*
     * send queues a message to one connection.  TORPOR_ECLOSED if it is
     * closing or gone: that is normal in a room and needs no log line.
     */
    torpor_err (*send)(torpor_conn *conn, torpor_msg_kind kind,
                       const void *data, size_t len);

    /*
     * broadcast sends one message to every open connection of object except
     * except (may be NULL).  The message is encoded once per transport and
     * the same bytes go to every recipient.
     */
    torpor_err (*broadcast)(torpor_object *object, torpor_msg_kind kind,
                            const void *data, size_t len,
                            const torpor_conn *except);

    /* close starts a close handshake with code and reason (<= 123 bytes). */
    torpor_err (*close)(torpor_conn *conn, uint16_t code, const char *reason,
                        size_t reason_len);

    /* object_name: the name's bytes; valid while the object exists. */
    torpor_bytes (*object_name)(const torpor_object *object);

    /* conn_id: unique per process; never reused while the process runs. */
    uint64_t (*conn_id)(const torpor_conn *conn);

    /* conn_object: the object a connection belongs to. */
    torpor_object *(*conn_object)(const torpor_conn *conn);

    /* conn_count: the open connections of an object. */
    size_t (*conn_count)(const torpor_object *object);

    /* ---- any thread ---- */

    /*
     * loop_post runs task->run on loop, in posting order, after the call
     * returns.  Wakeups are batched: many posts cost one wakeup.
     */
    void (*loop_post)(torpor_loop *loop, torpor_task *task);

    /* ---- class side: the object's storage, within its current event ---- */

    /*
     * An event lasts from its handler's call until every read it started
     * (and every read their callbacks started) has completed.  Meanwhile
     * no other event of the object is delivered (the input gate).  Puts and
     * deletes are buffered and committed together, atomically, when the
     * event ends; messages sent and closes asked for after the first of
     * them are held, in order, until the commit is durable (the output
     * gate), and dropped if it fails, after which the object's instance is
     * destroyed so that the next event builds it again from storage.  Reads see the event's own buffered
     * writes.  Outside an event these calls return TORPOR_ESTATE.
     *
     * storage_get and storage_list complete on the object's loop, never
     * inside the call; their callbacks run within the same event and may
     * read, write and send again.
     */
    torpor_err (*storage_get)(torpor_object *object, const torpor_bytes *keys,
                              size_t n, torpor_storage_rows_cb cb, void *arg);
    torpor_err (*storage_list)(torpor_object *object,
                               const torpor_range *range,
                               torpor_storage_rows_cb cb, void *arg);

    /*
     * storage_put and storage_delete buffer one write of the current
     * event.  TORPOR_ELIMIT for a key or value over the configured limit
     * (nothing is buffered); the event's other writes still commit.
     */
    torpor_err (*storage_put)(torpor_object *object, torpor_bytes key,
                              torpor_bytes value);
    torpor_err (*storage_delete)(torpor_object *object, torpor_bytes key);

    /* ---- class side: the object's alarms, within its current event ---- */

    /*
     * An object may have several alarms, each with a name (UTF-8 text
     * without NUL, at most the storage key limit; "" is the default alarm
     * for the simple case).  Setting and deleting are buffered writes of
     * the current event, committed with its other writes, so an alarm and
     * the state it acts on change together.  When an alarm is due the core
     * wakes the object and calls the class's alarm handler with its name
     * and the number of failed attempts so far; if the handler succeeds the
     * alarm is deleted (unless the handler set it again), if it fails the
     * alarm is retried with exponential backoff (at least six times):
     * delivery is at least once.  Alarms live in storage and survive a
     * restart of torpord.  time_ms is wall-clock time, as wall_ms reads.
     * TORPOR_ESTATE outside an event; TORPOR_EINVAL for a name with NUL;
     * TORPOR_ELIMIT for a name over the key limit.
     */
    torpor_err (*alarm_set)(torpor_object *object, torpor_bytes name,
                            uint64_t time_ms);
    torpor_err (*alarm_delete)(torpor_object *object, torpor_bytes name);

    /*
     * alarm_list reads the object's alarms, with the current event's own
     * changes applied; like storage_get, its callback runs within the
     * event.
     */
    torpor_err (*alarm_list)(torpor_object *object,
                             torpor_storage_alarms_cb cb, void *arg);

    /* wall_ms: the wall clock, milliseconds since 1970.  Any thread. */
    uint64_t (*wall_ms)(void);

    /* ---- class side: tags, attachments, listing connections ---- */

    /*
     * Tags label a connection for the class: up to TORPOR_TAGS_MAX of up
     * to TORPOR_TAG_MAX_BYTES each, valid UTF-8.  They come from the URL
     * (?tag=alice&tag=admins, percent-decoded) and the class's accept
     * handler may replace them with conn_set_tags, only there
     * (TORPOR_ESTATE elsewhere; TORPOR_ELIMIT past a limit).  An
     * attachment is up to TORPOR_ATTACHMENT_MAX_BYTES of the class's own
     * bytes per connection, set and read at any time on the object's
     * loop.  Both live with the connection, outside the instance, so they
     * survive hibernation; a connection pays for them only once set.
     */
    torpor_err (*conn_set_tags)(torpor_conn *conn, const torpor_bytes *tags,
                                size_t n);
    /* conn_tags copies up to max tags into out and returns how many exist. */
    size_t (*conn_tags)(const torpor_conn *conn, torpor_bytes *out,
                        size_t max);
    /* conn_set_attachment replaces the attachment; len 0 removes it. */
    torpor_err (*conn_set_attachment)(torpor_conn *conn, const void *data,
                                      size_t len);
    torpor_bytes (*conn_attachment)(const torpor_conn *conn);

    /*
     * conns lists the object's open connections, those with tag if tag is
     * not NULL, whether the object is awake or hibernating: fills up to
     * max handles into out and returns how many match.
     */
    size_t (*conns)(torpor_object *object, const torpor_bytes *tag,
                    torpor_conn **out, size_t max);

    /* broadcast_tag: broadcast to the connections that carry tag. */
    torpor_err (*broadcast_tag)(torpor_object *object, torpor_bytes tag,
                                torpor_msg_kind kind, const void *data,
                                size_t len, const torpor_conn *except);

    /* ---- class side: auto-response ---- */

    /*
     * An auto-response pair answers a message that equals request exactly
     * (same kind, same bytes) with response, from the core, without
     * waking the object or delivering an event: a heartbeat costs nothing
     * to a hibernating room.  Pairs of the class (class_auto_response,
     * from create or any time on the main loop) apply to all its objects;
     * an object's own pairs (object_auto_response, on its loop) are looked
     * at first.  An empty response removes the pair.  At most
     * TORPOR_AUTO_RESPONSES_MAX pairs each, requests and responses of at
     * most TORPOR_AUTO_RESPONSE_MAX_BYTES.
     */
    torpor_err (*class_auto_response)(torpor_plugin_ctx *self,
                                      torpor_msg_kind kind,
                                      torpor_bytes request,
                                      torpor_bytes response);
    torpor_err (*object_auto_response)(torpor_object *object,
                                       torpor_msg_kind kind,
                                       torpor_bytes request,
                                       torpor_bytes response);

    /* conn_auto_response_ms: wall time of the last auto-response, or 0. */
    uint64_t (*conn_auto_response_ms)(const torpor_conn *conn);

    /* ---- class side: finishing an event elsewhere (ABI 1.1) ---- */

    /*
     * event_hold keeps the object's current event open after its handler
     * returns, the way a pending storage read does, for a class that waits
     * for something outside the core (a worker process, a remote
     * service): no other event of the object is delivered, its writes are
     * not committed and it does not hibernate until every hold is
     * released.  Storage, alarm, send and close calls keep working within
     * the held event, with the same gates.  Called within an event, on
     * the object's loop; TORPOR_ESTATE outside one.
     *
     * event_release ends one hold, on the object's loop (from another
     * thread, post a task there with loop_post), never inside the handler
     * that took it.  result is the event's outcome as its handler would
     * have returned it: an alarm whose event ends with an error is retried
     * with backoff.  The core does not log result: the class says why its
     * event failed.  When the last hold goes the event ends, its writes
     * commit, and the object may be freed within the call: do not use it
     * afterwards unless it still has connections or more holds.
     *
     * A held event can last as long as the class lets it: the class
     * bounds the wait (a timeout of its own), because the room's other
     * events queue meanwhile, up to [core] max_queued_events.  A shutdown
     * waits for held events as for connections, up to
     * shutdown_timeout_ms.
     */
    torpor_err (*event_hold)(torpor_object *object);
    void (*event_release)(torpor_object *object, torpor_err result);

    /* object_id: the object's 128-bit id, as storage and logs know it. */
    void (*object_id)(const torpor_object *object, uint8_t out[16]);

    /* object_loop: the loop an object and its connections run on. */
    torpor_loop *(*object_loop)(const torpor_object *object);
    /* ---- rooms, on behalf of backend services (ABI 1.1) ---- */

    /*
     * The calls below serve a transport whose peers are backend services
     * rather than clients (the nng transport); torpor/room.h has their
     * types and the rules they share: any thread, arguments copied, the
     * completion exactly once on the room's loop, never inside the call.
     * Immediate errors: TORPOR_EINVAL (a malformed ref or message: no
     * name nor id, both, both route and class_name, a name over 256 bytes
     * or "~new", a kind that is neither text nor binary), TORPOR_ENOENT
     * (no such route or class), TORPOR_ECLOSED (shutting down),
     * TORPOR_ENOMEM.  As with conn_received, text must be valid UTF-8 and
     * the transport checks it.
     */

    /*
     * room_publish hands a message to the room's class as if a client had
     * sent it: the message handler runs, in order with the room's other
     * events, waking a hibernating room first and making a room that does
     * not exist.  The sender the class sees is a connection of the
     * calling transport that no client holds: conn_id 0, conn_origin
     * TORPOR_ORIGIN_BACKEND, never opened nor closed, in no list or
     * broadcast, valid only within that event.  What the class sends to
     * it reaches tconn through the transport's frame_send, a close through
     * its close op (and no conn_closed follows).  The completion comes
     * once the event is over and its writes are durable: err TORPOR_OK
     * (handler_err says what the handler returned), TORPOR_ENOENT (an id
     * of no room in memory), TORPOR_EAGAIN (the room's queue is full: try
     * again later), TORPOR_EIO (its writes could not be committed and
     * were dropped with what they held), TORPOR_ELIMIT (the handler ran
     * past handler_timeout_ms and the room was reset), TORPOR_ECLOSED
     * (shutting down before it ran), or the error of the class's
     * constructor, which could not wake the room.  self must be a
     * transport (TORPOR_ESTATE at once otherwise).
     */
    torpor_err (*room_publish)(torpor_plugin_ctx *self,
                               const torpor_room_ref *ref,
                               const torpor_room_msg *msg, void *tconn,
                               torpor_room_done_cb cb, void *arg);

    /*
     * room_deliver sends a message straight to the room's open
     * connections (those with msg->tag, if set; not msg->except_conn),
     * encoded once, without waking the room or telling its class.  It
     * waits behind a commit in flight, like the room's own broadcasts.
     * A room not in memory has no connections: count 0.  The completion's
     * count is how many connections it went to.
     */
    torpor_err (*room_deliver)(torpor_plugin_ctx *self,
                               const torpor_room_ref *ref,
                               const torpor_room_msg *msg,
                               torpor_room_done_cb cb, void *arg);

    /*
     * room_conns lists the room's open connections (with tag, if not
     * NULL), awake or hibernating, without waking it.
     */
    torpor_err (*room_conns)(torpor_plugin_ctx *self,
                             const torpor_room_ref *ref,
                             const torpor_bytes *tag,
                             torpor_room_conns_cb cb, void *arg);

    /*
     * room_storage_get and room_storage_list read the room's storage as
     * committed (writes of an event still in flight are not seen), without
     * waking it; the rows are those of torpor/storage.h.  TORPOR_EUNSUPPORTED
     * at once if no storage backend is configured, TORPOR_ELIMIT for a key
     * over the limit; TORPOR_ENOENT in the completion for an id of no room
     * in memory.
     */
    torpor_err (*room_storage_get)(torpor_plugin_ctx *self,
                                   const torpor_room_ref *ref,
                                   const torpor_bytes *keys, size_t n,
                                   torpor_storage_rows_cb cb, void *arg);
    torpor_err (*room_storage_list)(torpor_plugin_ctx *self,
                                    const torpor_room_ref *ref,
                                    const torpor_range *range,
                                    torpor_storage_rows_cb cb, void *arg);

    /*
     * room_tap sets the plugin's tap, which then sees every event of every
     * room (open, message, close, alarm), on the room's loop, right before
     * the class does; cb NULL removes it.  While no plugin has a tap set,
     * a room pays one branch per event for this.  Any thread; a call that
     * races an event may or may not see it.  TORPOR_ELIMIT if four other
     * plugins have taps set.
     */
    torpor_err (*room_tap)(torpor_plugin_ctx *self, torpor_room_tap_cb cb,
                           void *arg);

    /* conn_origin: whether conn is a client's or a backend's sender. */
    torpor_conn_origin (*conn_origin)(const torpor_conn *conn);
    /* ---- watches: descriptors by the thousand (ABI 1.1) ---- */

    /*
     * A watch is io_open without a handle: the loop keeps every watched
     * descriptor in one epoll set and remembers nothing else of it, so a
     * transport with many idle sockets pays nothing per socket here.  cb
     * runs on loop with arg while fd is ready for what was asked
     * (level-triggered, like io_open; an error or hang-up reports both
     * TORPOR_IO_READ and TORPOR_IO_WRITE).  arg identifies the watch: it
     * must be non-NULL and aligned to 8 bytes, and a loop holds at most
     * TORPOR_WATCH_CALLBACKS_MAX distinct callbacks (TORPOR_ELIMIT past
     * that, TORPOR_EINVAL for a bad arg or events).  The fd stays the
     * caller's: watch_del it before closing it.
     *
     * watch_add may be called from any thread, which is how a descriptor
     * moves to another loop: watch_del on its loop, then watch_add on the
     * other; from then on only the other loop's callbacks touch arg.
     * TORPOR_EEXIST if fd is already watched on loop.
     */
    torpor_err (*watch_add)(torpor_loop *loop, int fd, unsigned events,
                            torpor_watch_cb cb, void *arg);

    /*
     * watch_set changes what fd is watched for, with the cb and arg it
     * was added with; events 0 takes it out of the set until the next
     * watch_set.  On loop.
     */
    torpor_err (*watch_set)(torpor_loop *loop, int fd, unsigned events,
                            torpor_watch_cb cb, void *arg);

    /*
     * watch_del stops watching fd.  No callback with arg runs after it
     * returns, not even one the loop had already found ready.  On loop.
     */
    void (*watch_del)(torpor_loop *loop, int fd, void *arg);

    /* ---- transport side: records the core keeps, conn_bytes (ABI 1.1) ---- */

    /*
     * conn_release tells the core that the transport is done with the
     * record the core keeps for it (transport ops conn_bytes): after
     * conn_closed, once its last bytes are written.  The core frees the
     * record when the class is done with it too, so neither side may
     * touch it afterwards.  Releasing a record not yet reported closed
     * reports it closed with 1006 first.  On the connection's loop.
     */
    void (*conn_release)(torpor_conn *conn);

    /*
     * conn_loop: the loop conn lives on, which conn_attach also returned;
     * valid until the transport releases the record, or until conn_closed
     * for a transport that keeps its own.  Any thread.
     */
    torpor_loop *(*conn_loop)(const torpor_conn *conn);

    /*
     * conn_walk visits the connections of the transport self that live
     * on loop, so that a transport can look at all of them now and then
     * (keepalive) without a list or a timer of its own: it calls cb with
     * arg and each record (the one transport ops are given) that the
     * transport is not done with (not released, for conn_bytes; not
     * reported closed, otherwise), in the order of the loop's store,
     * from *cursor on (0: the start), at most max of them, then sets
     * *cursor to where the next call goes on.  Returns true when this call
     * reached the end, *cursor being 0 again.  A record that lives through
     * a whole pass is visited once in it; one made or freed meanwhile may
     * be visited or not.  cb may make any call a callback on loop may,
     * release its record included.  On loop; it costs nothing per
     * connection.
     */
    bool (*conn_walk)(torpor_loop *loop, torpor_plugin_ctx *self,
                      uint64_t *cursor, uint32_t max, torpor_conn_walk_cb cb,
                      void *arg);
};

#define TORPOR_TAGS_MAX 10
#define TORPOR_TAG_MAX_BYTES 256
#define TORPOR_ATTACHMENT_MAX_BYTES 16384
#define TORPOR_AUTO_RESPONSES_MAX 16
#define TORPOR_AUTO_RESPONSE_MAX_BYTES 1024
#define TORPOR_WATCH_CALLBACKS_MAX 8

/* TORPOR_HOST_HAS: whether this core's table reaches member fn. */
#define TORPOR_HOST_HAS(host, fn)                                         \
    ((host)->size >= offsetof(struct torpor_host, fn) + sizeof((host)->fn) \
     && (host)->fn != NULL)

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_HOST_H */
