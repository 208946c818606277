/*
 * shout: a room class built out of tree, as a third party would build one,
 * against nothing but the installed <torpor/...> headers found through
 * `pkg-config --cflags torpor-plugin`.  Each message comes back to its
 * sender with ASCII letters in upper case; other bytes pass unchanged, so
 * UTF-8 text stays valid.
 */
#include <stdlib.h>
#include <string.h>

#include <torpor/torpor.h>

struct shout_state {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
};

/* One per awake object; it only counts, so that there is an instance. */
struct shout_instance {
    struct shout_state *state;
    unsigned long messages;
};

static torpor_err
shout_create(const struct torpor_host *host, torpor_plugin_ctx *self,
             void **state)
{
    struct shout_state *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return TORPOR_ENOMEM;
    }
    s->host = host;
    s->self = self;
    *state = s;
    return TORPOR_OK;
}

static void
shout_destroy(void *state)
{
    free(state);
}

static torpor_err
shout_object_create(void *state, torpor_object *object, void **instance)
{
    struct shout_instance *in = calloc(1, sizeof(*in));

    (void)object;
    if (in == NULL) {
        return TORPOR_ENOMEM;
    }
    in->state = state;
    *instance = in;
    return TORPOR_OK;
}

static void
shout_object_destroy(void *instance)
{
    free(instance);
}

/*
 * shout_message sends the upper-cased copy back.  The host reads the bytes
 * during send only, so the copy is freed right after.
 */
static torpor_err
shout_message(void *instance, torpor_conn *conn, torpor_msg_kind kind,
              const void *data, size_t len)
{
    struct shout_instance *in = instance;
    const unsigned char *src = data;
    unsigned char *out = malloc(len > 0 ? len : 1);
    torpor_err err;

    if (out == NULL) {
        return TORPOR_ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = src[i];

        out[i] = (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
    }
    in->messages++;
    err = in->state->host->send(conn, kind, out, len);
    free(out);
    if (err == TORPOR_ECLOSED) {
        return TORPOR_OK; // the sender left meanwhile: nothing to do
    }
    return err;
}

static const struct torpor_class_ops shout_ops = {
    .size = sizeof(struct torpor_class_ops),
    .object_create = shout_object_create,
    .object_destroy = shout_object_destroy,
    .message = shout_message,
};

static const struct torpor_plugin shout_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_CLASS, "shout", "1.0.0"),
    .create = shout_create,
    .destroy = shout_destroy,
    .ops.klass = &shout_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &shout_plugin;
}
