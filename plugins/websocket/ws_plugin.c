/*
 * The websocket transport: RFC 6455 servers for the core's rooms.  This
 * file holds the plugin descriptor, its lifecycle hooks and the transport
 * ops table; the protocol lives in ws_conn.c (handshake and closing),
 * ws_read.c and ws_write.c, the byte stream under it, plain or TLS, in
 * ws_io.c, ws_tls_io.c and ws_tls.c.
 */
#ifdef HAVE_CONFIG_H
#include "build-config.h"
#endif

#include "ws.h"

#include <stdlib.h>
#include <string.h>

#ifdef PACKAGE_VERSION
#define WS_VERSION PACKAGE_VERSION
#else
#define WS_VERSION "0.1.0"
#endif

bool
ws_warn_allowed(struct ws_state *ws)
{
    uint64_t now = ws->host->now_ms();
    uint64_t start = __atomic_load_n(&ws->warn_window_ms, __ATOMIC_RELAXED);

    /*
     * Whoever moves the window forward resets the count; a race between
     * loops at the boundary only lets a line or two more through.
     */
    if (now - start >= 1000
        && __atomic_compare_exchange_n(&ws->warn_window_ms, &start, now, false,
                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        uint32_t dropped =
            __atomic_exchange_n(&ws->warn_count, 0, __ATOMIC_RELAXED);

        if (dropped > WS_WARN_PER_SECOND) {
            WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                   "suppressed %u warnings about peers",
                   dropped - WS_WARN_PER_SECOND);
        }
    }
    return __atomic_add_fetch(&ws->warn_count, 1, __ATOMIC_RELAXED)
           <= WS_WARN_PER_SECOND;
}

const char *
ws_strerror(int err, char *buf, size_t size)
{
    /* The GNU strerror_r, as _GNU_SOURCE selects: it returns the text. */
    return strerror_r(err, buf, size);
}

static torpor_err
ws_plugin_create(const struct torpor_host *host, torpor_plugin_ctx *self,
                 void **state)
{
    struct ws_state *ws;

    /* Every host function this plugin calls exists since ABI 1.0. */
    if (host->size < offsetof(struct torpor_host, conn_closed)
                         + sizeof(host->conn_closed)) {
        return TORPOR_EABI;
    }
    ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        return TORPOR_ENOMEM;
    }
    if (pthread_mutex_init(&ws->lock, NULL) != 0) {
        free(ws);
        return TORPOR_ENOMEM;
    }
    ws->host = host;
    ws->self = self;
    ws_config_defaults(&ws->cfg);
    *state = ws;
    return TORPOR_OK;
}

static torpor_err
ws_plugin_configure(void *state, const char *key, const char *value, char *why,
                    size_t why_size)
{
    struct ws_state *ws = state;

    return ws_config_set(&ws->cfg, key, value, why, why_size);
}

static torpor_err
ws_plugin_start(void *state)
{
    return ws_listen_start(state);
}

static void
ws_plugin_stop(void *state)
{
    struct ws_state *ws = state;

    ws->stopping = true;
    ws_listen_stop(ws);
    ws_conn_stop_handshakes(ws);
}

static void
ws_plugin_destroy(void *state)
{
    struct ws_state *ws = state;

    if (ws == NULL) {
        return;
    }
    ws->stopping = true;
    ws_listen_stop(ws);
    ws_conn_destroy_all(ws);
    ws_tls_stop(ws);
    ws_tls_config_free(&ws->cfg);
    free(ws->conns);
    pthread_mutex_destroy(&ws->lock);
    free(ws);
}

static torpor_err
ws_plugin_reload(void *state)
{
    return ws_tls_reload(state);
}

static const struct torpor_transport_ops ws_transport_ops = {
    .size = sizeof(struct torpor_transport_ops),
    .frame_encode = ws_frame_encode,
    .frame_send = ws_frame_send,
    .frame_release = ws_frame_release,
    .close = ws_conn_op_close,
};

static const struct torpor_plugin ws_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_TRANSPORT, WS_PLUGIN_NAME, WS_VERSION),
    .create = ws_plugin_create,
    .configure = ws_plugin_configure,
    .start = ws_plugin_start,
    .stop = ws_plugin_stop,
    .destroy = ws_plugin_destroy,
    .ops.transport = &ws_transport_ops,
    .reload = ws_plugin_reload,
};

const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &ws_plugin;
}
