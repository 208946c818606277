/*
 * core/object.h: objects (rooms), their connections, and the delivery of
 * events to a class, one at a time and in arrival order.
 */
#ifndef TORPOR_CORE_OBJECT_H
#define TORPOR_CORE_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/plugin.h>

struct tpr_runtime;

/* Longest object name, in bytes; a longer one is refused with 400. */
#define TPR_OBJECT_NAME_MAX 256

/* The id of an object: 128 bits derived from (class, name). */
struct tpr_object_id {
    uint8_t bytes[16];
};

/*
 * tpr_object_id_derive hashes (class, name) with SHA-256 and keeps 128
 * bits, the top one cleared, so nobody can choose two names that collide
 * and every node of a cluster derives the same id.  A unique object's name
 * ("~" and the 32 hex digits of its id, top bit set) gives that id back.
 */
void tpr_object_id_derive(const char *class_name, const void *name,
                          size_t name_len, struct tpr_object_id *out);

/*
 * tpr_object_id_random makes the id of a new unique object, 128 random
 * bits with the top one set, and its name, "~" and 32 hex digits.
 * TORPOR_EIO if the system has no randomness to give.
 */
torpor_err tpr_object_id_random(struct tpr_object_id *out, char name[34]);

/* The table of live objects; one per runtime. */
struct tpr_objects;

torpor_err tpr_objects_new(struct tpr_objects **out);

/*
 * tpr_objects_close_all asks every transport to close every connection
 * with code, for a shutdown.  Connections leave as their transports report
 * them closed.
 */
void tpr_objects_close_all(struct tpr_objects *objects, uint16_t code,
                           const char *reason);

/*
 * tpr_objects_free frees every object and connection record without
 * calling transports; the caller destroys the transports afterwards.
 */
void tpr_objects_free(struct tpr_objects *objects);

/*
 * tpr_object_attach joins a new connection of transport to the object
 * (klass, req->name), making the object if it has none, on the object's
 * shard, whose loop it returns.  Implements the host's conn_attach after
 * route lookup; see torpor/host.h for the codes.  Main thread.
 */
torpor_err tpr_object_attach(struct tpr_runtime *rt,
                             struct torpor_plugin_ctx *klass,
                             struct torpor_plugin_ctx *transport,
                             const torpor_attach_req *req, void *tconn,
                             torpor_conn **out, torpor_loop **loop,
                             int *http_status);

/* The host table's connection and object members. */
void tpr_conn_opened(torpor_conn *conn);
void tpr_conn_received(torpor_conn *conn, torpor_msg_kind kind,
                       const void *data, size_t len);
void tpr_conn_closed(torpor_conn *conn, uint16_t code, const char *reason,
                     size_t reason_len, bool clean);
torpor_err tpr_conn_send(torpor_conn *conn, torpor_msg_kind kind,
                         const void *data, size_t len);
torpor_err tpr_conn_close(torpor_conn *conn, uint16_t code,
                          const char *reason, size_t reason_len);
torpor_err tpr_object_broadcast(torpor_object *object, torpor_msg_kind kind,
                                const void *data, size_t len,
                                const torpor_conn *except);
torpor_bytes tpr_object_name(const torpor_object *object);
uint64_t tpr_conn_id(const torpor_conn *conn);
torpor_object *tpr_conn_object(const torpor_conn *conn);
size_t tpr_object_conn_count(const torpor_object *object);

/* The host table's class storage members; see torpor/host.h. */
torpor_err tpr_object_storage_get(torpor_object *object,
                                  const torpor_bytes *keys, size_t n,
                                  torpor_storage_rows_cb cb, void *arg);
torpor_err tpr_object_storage_list(torpor_object *object,
                                   const torpor_range *range,
                                   torpor_storage_rows_cb cb, void *arg);
torpor_err tpr_object_storage_put(torpor_object *object, torpor_bytes key,
                                  torpor_bytes value);
torpor_err tpr_object_storage_delete(torpor_object *object, torpor_bytes key);

/* The host table's alarm members; see torpor/host.h.  alarm.c. */
torpor_err tpr_object_alarm_set(torpor_object *object, torpor_bytes name,
                                uint64_t time_ms);
torpor_err tpr_object_alarm_delete(torpor_object *object, torpor_bytes name);
torpor_err tpr_object_alarm_list(torpor_object *object,
                                 torpor_storage_alarms_cb cb, void *arg);

/* The host table's tag, attachment and auto-response members. */
torpor_err tpr_conn_set_tags(torpor_conn *conn, const torpor_bytes *tags,
                             size_t n);
size_t tpr_conn_tags(const torpor_conn *conn, torpor_bytes *out, size_t max);
torpor_err tpr_conn_set_attachment(torpor_conn *conn, const void *data,
                                   size_t len);
torpor_bytes tpr_conn_attachment(const torpor_conn *conn);
size_t tpr_object_conns(torpor_object *object, const torpor_bytes *tag,
                        torpor_conn **out, size_t max);
torpor_err tpr_object_broadcast_tag(torpor_object *object, torpor_bytes tag,
                                    torpor_msg_kind kind, const void *data,
                                    size_t len, const torpor_conn *except);
torpor_err tpr_class_auto_response(torpor_plugin_ctx *self,
                                   torpor_msg_kind kind, torpor_bytes request,
                                   torpor_bytes response);
torpor_err tpr_object_auto_response(torpor_object *object,
                                    torpor_msg_kind kind,
                                    torpor_bytes request,
                                    torpor_bytes response);
uint64_t tpr_conn_auto_response_ms(const torpor_conn *conn);

/* The host table's members for holding an event open.  event_hold.c. */
torpor_err tpr_event_hold(torpor_object *object);
void tpr_event_release(torpor_object *object, torpor_err result);
void tpr_object_id_bytes(const torpor_object *object, uint8_t out[16]);
torpor_loop *tpr_object_loop(const torpor_object *object);

/*
 * tpr_log_ids writes the ids a log line carries for object and conn
 * (either may be NULL): 'object="relay/lobby" conn=42'.  Returns buf, or
 * NULL when there are none.
 */
const char *tpr_log_ids(char *buf, size_t size, const torpor_object *object,
                        const torpor_conn *conn);

#endif /* TORPOR_CORE_OBJECT_H */
