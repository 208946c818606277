/*
 * relay: every message a client sends goes to every other client of the
 * same object, byte for byte, and never back to the sender.
 *
 * The class keeps no state of its own, so its instance is a token: all it
 * does is call the host's broadcast, which encodes the message once.
 */
#include <torpor/plugin.h>

static const struct torpor_host *relay_host;

/* A non-NULL instance that owns nothing. */
static char relay_instance;

static torpor_err
relay_create(const struct torpor_host *host, torpor_plugin_ctx *self,
             void **state)
{
    (void)self;
    relay_host = host;
    *state = &relay_instance;
    return TORPOR_OK;
}

static torpor_err
relay_object_create(void *state, torpor_object *object, void **instance)
{
    (void)state;
    (void)object;
    *instance = &relay_instance;
    return TORPOR_OK;
}

static torpor_err
relay_message(void *instance, torpor_conn *conn, torpor_msg_kind kind,
              const void *data, size_t len)
{
    (void)instance;
    return relay_host->broadcast(relay_host->conn_object(conn), kind, data,
                                 len, conn);
}

static const struct torpor_class_ops relay_ops = {
    .size = sizeof(struct torpor_class_ops),
    .object_create = relay_object_create,
    .message = relay_message,
    .hibernate_after_ms = TORPOR_HIBERNATE_DEFAULT_MS,
};

static const struct torpor_plugin relay_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_CLASS, "relay", "0.1.0"),
    .create = relay_create,
    .ops.klass = &relay_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &relay_plugin;
}
