/*
 * core/host.c: the host table handed to plugins, and the few members that
 * need translating between a plugin's view and the core's.
 */
#include "build-config.h"

#include <stdarg.h>
#include <string.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object_internal.h"
#include "core/room_ops.h"
#include "core/runtime.h"
#include "core/watch.h"

static void
host_log(torpor_plugin_ctx *self, torpor_log_level level,
         const torpor_object *object, const torpor_conn *conn,
         const char *fmt, ...)
{
    char ids[768];
    va_list ap;

    if (!tpr_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    tpr_logv(level, self->desc.name,
             tpr_log_ids(ids, sizeof(ids), object, conn), fmt, ap);
    va_end(ap);
}

static bool
host_log_enabled(const torpor_plugin_ctx *self, torpor_log_level level)
{
    (void)self;
    return tpr_log_enabled(level);
}

static torpor_loop *
host_loop_main(const torpor_plugin_ctx *self)
{
    return self->rt->loop;
}

static bool
host_conn_walk(torpor_loop *loop, torpor_plugin_ctx *self, uint64_t *cursor,
               uint32_t max, torpor_conn_walk_cb cb, void *arg)
{
    struct tpr_runtime *rt = self->rt;

    /* A handful of loops: a scan beats any index. */
    for (size_t i = 0; i < rt->nshards; i++) {
        if (rt->shards[i].loop == loop) {
            return tpr_conn_store_walk(rt->shards[i].conns, self, cursor, max,
                                       cb, arg);
        }
    }
    *cursor = 0;
    return true;
}

static torpor_err
host_conn_attach(torpor_plugin_ctx *self, const torpor_attach_req *req,
                 void *tconn, torpor_conn **conn, torpor_loop **loop,
                 int *http_status)
{
    struct tpr_runtime *rt = self->rt;
    torpor_attach_req full;

    *conn = NULL;
    *loop = NULL;
    if (req == NULL || req->size < TORPOR_ATTACH_REQ_MIN_SIZE) {
        *http_status = 500;
        return TORPOR_EINVAL;
    }
    /*
     * Classes get a request of this core's size: what an older transport
     * did not send reads as empty, and a newer one's extra is cut.
     */
    memset(&full, 0, sizeof(full));
    memcpy(&full, req, req->size < sizeof(full) ? req->size : sizeof(full));
    full.size = sizeof(full);
    req = &full;
    if (self->desc.kind != TORPOR_KIND_TRANSPORT) {
        *http_status = 500;
        return TORPOR_ESTATE;
    }
    const struct tpr_route *route =
        tpr_runtime_route(rt, req->route.data, req->route.len);
    if (route == NULL) {
        *http_status = 404;
        return TORPOR_ENOENT;
    }
    torpor_loop *target = NULL;
    torpor_err err = tpr_object_attach(rt, route->klass, self, req, tconn,
                                       conn, &target, http_status);
    if (err == TORPOR_OK) {
        *loop = target;
    }
    return err;
}

void
tpr_host_init(struct torpor_host *host)
{
    memset(host, 0, sizeof(*host));
    host->size = sizeof(*host);
    host->abi_major = TORPOR_ABI_MAJOR;
    host->abi_minor = TORPOR_ABI_MINOR;
    host->strerror = tpr_strerror;
    host->log = host_log;
    host->log_enabled = host_log_enabled;
    host->now_ms = tpr_now_ms;
    host->loop_main = host_loop_main;
    host->io_open = tpr_io_open;
    host->io_set = tpr_io_set;
    host->io_close = tpr_io_close;
    host->timer_open = tpr_timer_open;
    host->timer_arm = tpr_timer_arm;
    host->timer_disarm = tpr_timer_disarm;
    host->timer_close = tpr_timer_close;
    host->conn_attach = host_conn_attach;
    host->conn_opened = tpr_conn_opened;
    host->conn_received = tpr_conn_received;
    host->conn_closed = tpr_conn_closed;
    host->send = tpr_conn_send;
    host->broadcast = tpr_object_broadcast;
    host->close = tpr_conn_close;
    host->object_name = tpr_object_name;
    host->conn_id = tpr_conn_id;
    host->conn_object = tpr_conn_object;
    host->conn_count = tpr_object_conn_count;
    host->loop_post = tpr_loop_post;
    host->storage_get = tpr_object_storage_get;
    host->storage_list = tpr_object_storage_list;
    host->storage_put = tpr_object_storage_put;
    host->storage_delete = tpr_object_storage_delete;
    host->alarm_set = tpr_object_alarm_set;
    host->alarm_delete = tpr_object_alarm_delete;
    host->alarm_list = tpr_object_alarm_list;
    host->wall_ms = tpr_wall_ms;
    host->conn_set_tags = tpr_conn_set_tags;
    host->conn_tags = tpr_conn_tags;
    host->conn_set_attachment = tpr_conn_set_attachment;
    host->conn_attachment = tpr_conn_attachment;
    host->conns = tpr_object_conns;
    host->broadcast_tag = tpr_object_broadcast_tag;
    host->class_auto_response = tpr_class_auto_response;
    host->object_auto_response = tpr_object_auto_response;
    host->conn_auto_response_ms = tpr_conn_auto_response_ms;
    host->event_hold = tpr_event_hold;
    host->event_release = tpr_event_release;
    host->object_id = tpr_object_id_bytes;
    host->object_loop = tpr_object_loop;
    host->room_publish = tpr_room_publish;
    host->room_deliver = tpr_room_deliver;
    host->room_conns = tpr_room_conns;
    host->room_storage_get = tpr_room_storage_get;
    host->room_storage_list = tpr_room_storage_list;
    host->room_tap = tpr_room_tap;
    host->conn_origin = tpr_conn_origin;
    host->watch_add = tpr_watch_add;
    host->watch_set = tpr_watch_set;
    host->watch_del = tpr_watch_del;
    host->conn_release = tpr_conn_release;
    host->conn_loop = tpr_conn_loop;
    host->conn_walk = host_conn_walk;
}
