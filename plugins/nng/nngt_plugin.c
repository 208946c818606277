/*
 * The nng transport's descriptor, lifecycle hooks and transport ops.  The
 * config is in nngt_config.c, the sockets in nngt_listen.c, requests in
 * nngt_request.c and nngt_reply.c, the event stream in nngt_events.c.
 *
 * Its only connections are the senders of published messages, which the
 * core makes and frees: the transport ops below serve those, so what a
 * class sends to a publisher reaches its reply.
 */
#ifdef HAVE_CONFIG_H
#include "build-config.h"
#endif

#include "nngt.h"

#include <stdlib.h>
#include <string.h>

#ifdef PACKAGE_VERSION
#define NNGT_VERSION PACKAGE_VERSION
#else
#define NNGT_VERSION "0.1.0"
#endif

static torpor_err
nngt_plugin_create(const struct torpor_host *host, torpor_plugin_ctx *self,
                   void **state)
{
    struct nngt_state *nt;

    /* The room calls came with ABI 1.1; conn_origin is the last of them. */
    if (!TORPOR_HOST_HAS(host, conn_origin)) {
        return TORPOR_EABI;
    }
    nt = calloc(1, sizeof(*nt));
    if (nt == NULL) {
        return TORPOR_ENOMEM;
    }
    if (pthread_mutex_init(&nt->sub_lock, NULL) != 0) {
        free(nt);
        return TORPOR_ENOMEM;
    }
    nt->host = host;
    nt->self = self;
    nngt_config_defaults(&nt->cfg);
    *state = nt;
    return TORPOR_OK;
}

static torpor_err
nngt_plugin_configure(void *state, const char *key, const char *value,
                      char *why, size_t why_size)
{
    struct nngt_state *nt = state;

    return nngt_config_set(&nt->cfg, key, value, why, why_size);
}

static torpor_err
nngt_plugin_start(void *state)
{
    return nngt_listen_start(state);
}

/* nngt_untap removes the room tap for good: nothing is sent any more. */
static void
nngt_untap(struct nngt_state *nt)
{
    pthread_mutex_lock(&nt->sub_lock);
    nt->subscribers = 0;
    nt->host->room_tap(nt->self, NULL, nt);
    pthread_mutex_unlock(&nt->sub_lock);
}

static void
nngt_plugin_stop(void *state)
{
    struct nngt_state *nt = state;

    nngt_listen_stop(nt);
    nngt_untap(nt);
}

static void
nngt_plugin_destroy(void *state)
{
    struct nngt_state *nt = state;

    if (nt == NULL) {
        return;
    }
    nngt_listen_free(nt);
    nngt_untap(nt);
    nngt_config_free(&nt->cfg);
    pthread_mutex_destroy(&nt->sub_lock);
    free(nt);
}

static const struct torpor_transport_ops nngt_transport_ops = {
    .size = sizeof(struct torpor_transport_ops),
    .frame_encode = nngt_frame_encode,
    .frame_send = nngt_frame_send,
    .frame_release = nngt_frame_release,
    .close = nngt_sender_close,
};

static const struct torpor_plugin nngt_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_TRANSPORT, NNGT_PLUGIN_NAME,
                         NNGT_VERSION),
    .create = nngt_plugin_create,
    .configure = nngt_plugin_configure,
    .start = nngt_plugin_start,
    .stop = nngt_plugin_stop,
    .destroy = nngt_plugin_destroy,
    .ops.transport = &nngt_transport_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &nngt_plugin;
}
