/*
 * counter.c: a room that keeps one number, built out of tree against the
 * installed <torpor/...> headers.  docs/class-tutorial.md walks through it.
 *
 * Clients send text messages:
 *
 *   +N            add N (0 to step_limit); the whole room hears "total T"
 *   ?             the sender alone hears "total T"
 *   reset in MS   set the alarm "reset" MS ms from now; the sender hears
 *                 "reset in MS ms", and when it fires the total becomes 0
 *                 and the room hears "reset: total 0"
 *
 * A newcomer hears "total T" first; a malformed message gets "error: ..."
 * back.  The total lives in storage under the key "total", as decimal
 * text.  The instance only caches it: the constructor reads it whenever
 * the room wakes, so the room can leave memory whenever it is idle.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <torpor/torpor.h>

#define COUNTER_KEY "total"
#define COUNTER_ALARM "reset"
#define COUNTER_DEFAULT_STEP_LIMIT 1000
#define COUNTER_MAX_STEP_LIMIT 1000000000
#define COUNTER_MAX_RESET_MS 86400000 /* one day */

/*
 * The plugin's state.  create and configure write it on the main thread
 * before any object exists; afterwards every loop only reads it, so it
 * needs no lock.
 */
struct counter_class {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
    uint64_t step_limit;
};

/* One awake room.  Only its object's loop touches it. */
struct counter_room {
    struct counter_class *cls;
    torpor_object *object;
    uint64_t total;
    bool loaded; /* false until the constructor's read succeeded */
};

static torpor_bytes
counter_bytes(const char *text)
{
    return (torpor_bytes){.data = text, .len = strlen(text)};
}

/*
 * counter_parse reads len decimal digits, nothing else, up to max.  Used
 * for messages, stored values and the config alike.
 */
static bool
counter_parse(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (d > max || v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/*
 * counter_tell formats one text message for conn, or for the whole room
 * when conn is NULL.  A client that left meanwhile is no error.
 */
static torpor_err counter_tell(struct counter_room *room, torpor_conn *conn,
                               const char *fmt, ...) TORPOR_PRINTF(3, 4);

static torpor_err
counter_tell(struct counter_room *room, torpor_conn *conn, const char *fmt, ...)
{
    const struct torpor_host *host = room->cls->host;
    char text[128];
    va_list ap;

    va_start(ap, fmt);
    int len = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(text)) {
        return TORPOR_EINVAL;
    }
    torpor_err err;
    if (conn != NULL) {
        err = host->send(conn, TORPOR_MSG_TEXT, text, (size_t)len);
    } else {
        err = host->broadcast(room->object, TORPOR_MSG_TEXT, text, (size_t)len,
                              NULL);
    }
    return err == TORPOR_ECLOSED ? TORPOR_OK : err;
}

/* counter_store buffers the put of a new total in the current event. */
static torpor_err
counter_store(struct counter_room *room, uint64_t total)
{
    char value[24];

    snprintf(value, sizeof(value), "%" PRIu64, total);
    return room->cls->host->storage_put(
        room->object, counter_bytes(COUNTER_KEY), counter_bytes(value));
}

/* ---- waking: the constructor reads the total ---- */

static void
counter_on_load(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct counter_room *room = arg;
    const struct torpor_host *host = room->cls->host;

    if (err != TORPOR_OK) {
        /* Counting from 0 would overwrite the real total: stay unloaded. */
        host->log(room->cls->self, TORPOR_LOG_WARN, room->object, NULL,
                  "could not read \"total\": %s", host->strerror(err));
        return;
    }
    room->total = 0;
    if (n == 1 && rows[0].found
        && !counter_parse(rows[0].value.data, rows[0].value.len, UINT64_MAX,
                          &room->total)) {
        host->log(room->cls->self, TORPOR_LOG_ERR, room->object, NULL,
                  "could not read \"total\": not a decimal number");
        return;
    }
    room->loaded = true;
}

static torpor_err
counter_object_create(void *state, torpor_object *object, void **instance)
{
    struct counter_class *cls = state;
    struct counter_room *room = calloc(1, sizeof(*room));
    torpor_bytes key = counter_bytes(COUNTER_KEY);

    if (room == NULL) {
        return TORPOR_ENOMEM;
    }
    room->cls = cls;
    room->object = object;
    /* No event reaches the room before counter_on_load has run. */
    torpor_err err =
        cls->host->storage_get(object, &key, 1, counter_on_load, room);
    if (err != TORPOR_OK) {
        free(room);
        return err;
    }
    *instance = room;
    return TORPOR_OK;
}

static void
counter_object_destroy(void *instance)
{
    free(instance);
}

/* ---- clients ---- */

/*
 * counter_unloaded turns a client away while the total is unknown.  The
 * instance is rebuilt, and the read tried again, when the room next wakes.
 */
static torpor_err
counter_unloaded(struct counter_room *room, torpor_conn *conn)
{
    room->cls->host->close(conn, TORPOR_CLOSE_TRY_AGAIN, "total unavailable",
                           17);
    return TORPOR_EIO;
}

static torpor_err
counter_open(void *instance, torpor_conn *conn)
{
    struct counter_room *room = instance;

    if (!room->loaded) {
        return counter_unloaded(room, conn);
    }
    return counter_tell(room, conn, "total %" PRIu64, room->total);
}

static torpor_err
counter_add(struct counter_room *room, torpor_conn *conn, const char *digits,
            size_t len)
{
    uint64_t step;

    if (!counter_parse(digits, len, room->cls->step_limit, &step)) {
        return counter_tell(room, conn,
                            "error: expected +N, N from 0 to %" PRIu64,
                            room->cls->step_limit);
    }
    if (step > UINT64_MAX - room->total) {
        return counter_tell(room, conn, "error: the total would overflow");
    }
    torpor_err err = counter_store(room, room->total + step);
    if (err != TORPOR_OK) {
        return err;
    }
    room->total += step;
    /* Sent after a put: held until the put is durable (the output gate). */
    return counter_tell(room, NULL, "total %" PRIu64, room->total);
}

static torpor_err
counter_reset_in(struct counter_room *room, torpor_conn *conn,
                 const char *digits, size_t len)
{
    const struct torpor_host *host = room->cls->host;
    uint64_t ms;

    if (!counter_parse(digits, len, COUNTER_MAX_RESET_MS, &ms)) {
        return counter_tell(room, conn,
                            "error: expected reset in MS, MS from 0 to %d",
                            COUNTER_MAX_RESET_MS);
    }
    /* Setting it again moves it: an object has one alarm per name. */
    torpor_err err = host->alarm_set(room->object, counter_bytes(COUNTER_ALARM),
                                     host->wall_ms() + ms);
    if (err != TORPOR_OK) {
        return err;
    }
    return counter_tell(room, conn, "reset in %" PRIu64 " ms", ms);
}

static torpor_err
counter_message(void *instance, torpor_conn *conn, torpor_msg_kind kind,
                const void *data, size_t len)
{
    struct counter_room *room = instance;
    const char *text = data;

    if (kind != TORPOR_MSG_TEXT) {
        room->cls->host->close(conn, TORPOR_CLOSE_UNSUPPORTED,
                               "counter takes text", 18);
        return TORPOR_OK;
    }
    if (!room->loaded) {
        return counter_unloaded(room, conn);
    }
    if (len == 1 && text[0] == '?') {
        return counter_tell(room, conn, "total %" PRIu64, room->total);
    }
    if (len > 1 && text[0] == '+') {
        return counter_add(room, conn, text + 1, len - 1);
    }
    if (len > 9 && memcmp(text, "reset in ", 9) == 0) {
        return counter_reset_in(room, conn, text + 9, len - 9);
    }
    return counter_tell(room, conn, "error: expected +N, ? or reset in MS");
}

/* ---- the alarm ---- */

/*
 * counter_alarm zeroes the total.  Delivery is at least once (a failed or
 * interrupted attempt runs again), and zeroing twice is harmless.  An
 * error return asks the core to retry with backoff.
 */
static torpor_err
counter_alarm(void *instance, const char *name, uint32_t retry)
{
    struct counter_room *room = instance;

    if (strcmp(name, COUNTER_ALARM) != 0) {
        return TORPOR_OK; // not ours: succeeding deletes it
    }
    if (retry > 0) {
        room->cls->host->log(room->cls->self, TORPOR_LOG_INFO, room->object,
                             NULL, "resetting on attempt %" PRIu32, retry + 1);
    }
    torpor_err err = counter_store(room, 0);
    if (err != TORPOR_OK) {
        return err;
    }
    room->total = 0;
    room->loaded = true; // known now, whatever the constructor read
    return counter_tell(room, NULL, "reset: total 0");
}

/* ---- the plugin ---- */

static torpor_err
counter_create(const struct torpor_host *host, torpor_plugin_ctx *self,
               void **state)
{
    struct counter_class *cls;

    /* wall_ms is the newest member used: a table that has it has all. */
    if (!TORPOR_HOST_HAS(host, wall_ms)) {
        return TORPOR_EABI;
    }
    cls = calloc(1, sizeof(*cls));
    if (cls == NULL) {
        return TORPOR_ENOMEM;
    }
    cls->host = host;
    cls->self = self;
    cls->step_limit = COUNTER_DEFAULT_STEP_LIMIT;
    *state = cls;
    return TORPOR_OK;
}

/*
 * [class.counter]
 *   step_limit = 1000     the largest N of "+N", 1 to 1000000000
 */
static torpor_err
counter_configure(void *state, const char *key, const char *value, char *why,
                  size_t why_size)
{
    struct counter_class *cls = state;
    uint64_t v;

    if (strcmp(key, "step_limit") != 0) {
        return TORPOR_ENOKEY;
    }
    if (!counter_parse(value, strlen(value), COUNTER_MAX_STEP_LIMIT, &v)
        || v < 1) {
        snprintf(why, why_size, "expected a number from 1 to %d",
                 COUNTER_MAX_STEP_LIMIT);
        return TORPOR_EINVAL;
    }
    cls->step_limit = v;
    return TORPOR_OK;
}

static void
counter_destroy(void *state)
{
    free(state);
}

static const struct torpor_class_ops counter_ops = {
    .size = sizeof(struct torpor_class_ops),
    .object_create = counter_object_create,
    .object_destroy = counter_object_destroy,
    .open = counter_open,
    .message = counter_message,
    .alarm = counter_alarm,
    .hibernate_after_ms = TORPOR_HIBERNATE_DEFAULT_MS,
};

static const struct torpor_plugin counter_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_CLASS, "counter", "1.0.0"),
    .create = counter_create,
    .configure = counter_configure,
    .destroy = counter_destroy,
    .ops.klass = &counter_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &counter_plugin;
}
