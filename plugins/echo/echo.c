/*
 * echo: every message goes back to the client that sent it.
 */
#include <torpor/plugin.h>

static const struct torpor_host *echo_host;

/* A non-NULL instance that owns nothing. */
static char echo_instance;

static torpor_err
echo_create(const struct torpor_host *host, torpor_plugin_ctx *self,
            void **state)
{
    (void)self;
    echo_host = host;
    *state = &echo_instance;
    return TORPOR_OK;
}

static torpor_err
echo_object_create(void *state, torpor_object *object, void **instance)
{
    (void)state;
    (void)object;
    *instance = &echo_instance;
    return TORPOR_OK;
}

static torpor_err
echo_message(void *instance, torpor_conn *conn, torpor_msg_kind kind,
             const void *data, size_t len)
{
    (void)instance;
    torpor_err err = echo_host->send(conn, kind, data, len);
    /* The sender may have gone while its message waited: not a failure. */
    return err == TORPOR_ECLOSED ? TORPOR_OK : err;
}

static const struct torpor_class_ops echo_ops = {
    .size = sizeof(struct torpor_class_ops),
    .object_create = echo_object_create,
    .message = echo_message,
    .hibernate_after_ms = TORPOR_HIBERNATE_DEFAULT_MS,
};

static const struct torpor_plugin echo_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_CLASS, "echo", "0.1.0"),
    .create = echo_create,
    .ops.klass = &echo_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &echo_plugin;
}
