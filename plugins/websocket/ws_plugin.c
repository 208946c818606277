/*
 * The websocket transport: RFC 6455 servers for the core's rooms.  This
 * file holds the plugin descriptor, its lifecycle hooks and the transport
 * ops table; the protocol lives in ws_conn.c (handshake and closing),
 * ws_read.c and ws_write.c; the byte stream under it, plain or TLS, in
 * ws_io.c, ws_tls_io.c and ws_tls.c; per-route options in ws_route.c, the
 * request policy in ws_admit.c, per-address limits in ws_peer.c and
 * keepalive in ws_keepalive.c.
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

struct ws_state *ws_the_state;

static torpor_err
ws_plugin_create(const struct torpor_host *host, torpor_plugin_ctx *self,
                 void **state)
{
    struct ws_state *ws;

    /*
     * The last host function this plugin calls came with ABI 1.1; every
     * other one lies before it.
     */
    if (!TORPOR_HOST_HAS(host, conn_walk)) {
        return TORPOR_EABI;
    }
    /* Records find the state through ws_of, so there is one at a time. */
    if (ws_the_state != NULL) {
        return TORPOR_EBUSY;
    }
    ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        return TORPOR_ENOMEM;
    }
    ws->host = host;
    ws->self = self;
    ws->epoch_ms = host->now_ms();
    ws_config_defaults(&ws->cfg);
    if (ws_route_init(ws) != TORPOR_OK || ws_deflate_start(ws) != TORPOR_OK) {
        ws_route_free_all(ws);
        free(ws);
        return TORPOR_ENOMEM;
    }
    ws_the_state = ws;
    *state = ws;
    return TORPOR_OK;
}

static torpor_err
ws_plugin_configure(void *state, const char *key, const char *value, char *why,
                    size_t why_size)
{
    struct ws_state *ws = state;
    torpor_err err = ws_route_set(ws, key, value, why, why_size);

    if (err != TORPOR_ENOKEY) {
        return err;
    }
    return ws_config_set(&ws->cfg, key, value, why, why_size);
}

/*
 * ws_plugin_configured checks what no single key shows, once all are in:
 * the routes (ws_route_finish), something to listen on, and TLS's pair of
 * files for listen_tls.
 */
static torpor_err
ws_plugin_configured(void *state, const char *const *routes, size_t n_routes,
                     torpor_config_report report, void *ctx)
{
    struct ws_state *ws = state;
    const struct ws_config *cfg = &ws->cfg;
    torpor_err err = ws_route_finish(ws, routes, n_routes, report, ctx);

    if (err == TORPOR_ENOMEM) {
        return err;
    }
    if (cfg->n_listen + cfg->n_listen_tls == 0) {
        report(ctx, "listen",
               "listen and listen_tls are both empty: there is nothing to accept clients on");
        err = TORPOR_EINVAL;
    }
    if (cfg->n_listen_tls > 0
        && (cfg->tls_certificate == NULL || cfg->tls_private_key == NULL)) {
        report(ctx, "listen_tls",
               "listen_tls needs tls_certificate and tls_private_key");
        err = TORPOR_EINVAL;
    }
    return err;
}

static torpor_err
ws_plugin_start(void *state)
{
    struct ws_state *ws = state;
    torpor_err err;

    err = ws_peer_start(ws);
    if (err == TORPOR_OK) {
        ws_keepalive_start(ws);
        err = ws_listen_start(ws);
    }
    ws->started = err == TORPOR_OK;
    return err;
}

static void
ws_plugin_stop(void *state)
{
    struct ws_state *ws = state;

    ws->stopping = true;
    ws_listen_stop(ws);
    ws_keepalive_stop(ws);
    ws_peer_stop(ws);
    ws_conn_stop_handshakes(ws);
}

/* ws_plugin_log_counters writes what the plugin counted, in one line. */
static void
ws_plugin_log_counters(struct ws_state *ws)
{
    struct ws_counters n;

    __atomic_load(&ws->counters.keepalive_drops, &n.keepalive_drops,
                  __ATOMIC_RELAXED);
    __atomic_load(&ws->counters.slow_consumers, &n.slow_consumers,
                  __ATOMIC_RELAXED);
    __atomic_load(&ws->counters.handshake_timeouts, &n.handshake_timeouts,
                  __ATOMIC_RELAXED);
    __atomic_load(&ws->counters.refused_connections, &n.refused_connections,
                  __ATOMIC_RELAXED);
    __atomic_load(&ws->counters.refused_rate, &n.refused_rate,
                  __ATOMIC_RELAXED);
    __atomic_load(&ws->counters.refused_origin, &n.refused_origin,
                  __ATOMIC_RELAXED);
    __atomic_load(&ws->counters.refused_subprotocol, &n.refused_subprotocol,
                  __ATOMIC_RELAXED);
    __atomic_load(&ws->counters.handshakes_evicted, &n.handshakes_evicted,
                  __ATOMIC_RELAXED);
    WS_LOG(ws, TORPOR_LOG_NOTICE, NULL,
           "stopped: %llu keepalive drops, %llu slow consumers closed, %llu handshake timeouts; refused %llu over the connections per address, %llu over the upgrade rate, %llu by origin, %llu without a subprotocol; evicted %llu handshakes over max_handshakes",
           (unsigned long long)n.keepalive_drops,
           (unsigned long long)n.slow_consumers,
           (unsigned long long)n.handshake_timeouts,
           (unsigned long long)n.refused_connections,
           (unsigned long long)n.refused_rate,
           (unsigned long long)n.refused_origin,
           (unsigned long long)n.refused_subprotocol,
           (unsigned long long)n.handshakes_evicted);
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
    ws_cork_free_all(ws);
    ws_deflate_stop(ws);
    /* Every loop has stopped: the counts are final. */
    if (ws->started) {
        ws_plugin_log_counters(ws);
    }
    ws_keepalive_free(ws);
    ws_peer_free(ws);
    ws_route_free_all(ws);
    ws_tls_stop(ws);
    ws_tls_table_free(ws);
    ws_tls_config_free(&ws->cfg);
    ws_the_state = NULL;
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
    .conn_bytes = sizeof(struct ws_conn),
    .conn_discard = ws_conn_op_discard,
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
    .configured = ws_plugin_configured,
};

const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &ws_plugin;
}
