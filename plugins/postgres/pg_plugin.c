/*
 * The postgres storage: per-object key-value storage and alarms in a
 * PostgreSQL database, which a cluster's nodes share.  This file holds the
 * plugin descriptor, its lifecycle hooks and the storage ops table; the
 * schema lives in pg_schema.c, the statements in pg_ops.c and pg_rows.c,
 * the connections in pg_loop.c and pg_conn.c.
 *
 * Lifecycle: start applies the schema migrations over one blocking
 * connection and closes it.  Each loop that calls an op gets its own pool
 * of non-blocking connections on first use.  stop refuses new ops; those
 * queued still finish or fail by their deadline.  destroy runs once no
 * loop runs, closes everything and frees what is left unanswered.
 */
#ifdef HAVE_CONFIG_H
#include "build-config.h"
#endif

#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_VERSION "0.1.0"

bool
pg_warn_allowed(struct pg_state *pg)
{
    uint64_t now = pg->host->now_ms();
    uint64_t start = __atomic_load_n(&pg->warn_window_ms, __ATOMIC_RELAXED);

    /*
     * Whoever moves the window forward resets the count; a race between
     * loops at the boundary only lets a line or two more through.
     */
    if (now - start >= PG_WARN_WINDOW_MS
        && __atomic_compare_exchange_n(&pg->warn_window_ms, &start, now, false,
                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        uint32_t dropped =
            __atomic_exchange_n(&pg->warn_count, 0, __ATOMIC_RELAXED);

        if (dropped > PG_WARN_PER_WINDOW) {
            PG_LOG(pg, TORPOR_LOG_WARN,
                   "suppressed %u warnings about the PostgreSQL connection",
                   dropped - PG_WARN_PER_WINDOW);
        }
    }
    return __atomic_add_fetch(&pg->warn_count, 1, __ATOMIC_RELAXED)
           <= PG_WARN_PER_WINDOW;
}

const char *
pg_one_line(const char *msg, char *buf, size_t size)
{
    size_t n = 0;

    if (size == 0) {
        return "";
    }
    for (; msg != NULL && *msg != '\0' && n + 1 < size; msg++) {
        char ch = *msg;

        if (ch == '\n' || ch == '\r' || ch == '\t') {
            ch = ' ';
        }
        /* Collapse the runs that line breaks and indents leave. */
        if (ch == ' ' && (n == 0 || buf[n - 1] == ' ')) {
            continue;
        }
        buf[n++] = ch;
    }
    while (n > 0 && buf[n - 1] == ' ') {
        n--;
    }
    buf[n] = '\0';
    return buf;
}

void
pg_target_of(PGconn *pq, char *out, size_t size)
{
    const char *host = pq != NULL ? PQhost(pq) : NULL;
    const char *port = pq != NULL ? PQport(pq) : NULL;
    const char *db = pq != NULL ? PQdb(pq) : NULL;

    snprintf(out, size, "host=%s port=%s dbname=%s",
             host != NULL && host[0] != '\0' ? host : "(default)",
             port != NULL && port[0] != '\0' ? port : "(default)",
             db != NULL && db[0] != '\0' ? db : "(default)");
}

void
pg_notice(void *arg, const char *message)
{
    struct pg_state *pg = arg;
    char line[512];

    if (pg->host->log_enabled(pg->self, TORPOR_LOG_DEBUG)) {
        PG_LOG(pg, TORPOR_LOG_DEBUG, "server notice: %s",
               pg_one_line(message, line, sizeof(line)));
    }
}

static torpor_err
pg_plugin_create(const struct torpor_host *host, torpor_plugin_ctx *self,
                 void **state)
{
    struct pg_state *pg;

    /* Every host function this plugin calls exists since ABI 1.0. */
    if (host->size
        < offsetof(struct torpor_host, loop_post) + sizeof(host->loop_post)) {
        return TORPOR_EABI;
    }
    pg = calloc(1, sizeof(*pg));
    if (pg == NULL) {
        return TORPOR_ENOMEM;
    }
    if (pg_config_defaults(&pg->cfg) != TORPOR_OK) {
        free(pg);
        return TORPOR_ENOMEM;
    }
    if (pthread_mutex_init(&pg->lock, NULL) != 0) {
        pg_config_free(&pg->cfg);
        free(pg);
        return TORPOR_ENOMEM;
    }
    pg->host = host;
    pg->self = self;
    snprintf(pg->target, sizeof(pg->target), "(not started)");
    *state = pg;
    return TORPOR_OK;
}

static torpor_err
pg_plugin_configure(void *state, const char *key, const char *value, char *why,
                    size_t why_size)
{
    struct pg_state *pg = state;

    return pg_config_set(&pg->cfg, key, value, why, why_size);
}

static torpor_err
pg_plugin_start(void *state)
{
    struct pg_state *pg = state;
    char why[128];
    torpor_err err;

    if (pg_config_check(&pg->cfg, why, sizeof(why)) != TORPOR_OK) {
        PG_LOG(pg, TORPOR_LOG_ERR, "could not start: %s", why);
        return TORPOR_EINVAL;
    }
    err = pg_schema_migrate(pg);
    if (err == TORPOR_OK) {
        __atomic_store_n(&pg->started, 1, __ATOMIC_RELEASE);
    }
    return err;
}

static void
pg_plugin_stop(void *state)
{
    struct pg_state *pg = state;

    __atomic_store_n(&pg->stopping, 1, __ATOMIC_RELEASE);
}

/*
 * destroy runs once no loop runs any more.  It completes every op still
 * queued before it returns, as the storage contract asks: those already
 * sent get their real answer, waiting at most until their deadline, so
 * that an op reported ECLOSED was surely never applied.  The completions
 * are posted to their loops, which run them when the core frees them.
 */
static void
pg_plugin_destroy(void *state)
{
    struct pg_state *pg = state;

    if (pg == NULL) {
        return;
    }
    __atomic_store_n(&pg->stopping, 1, __ATOMIC_RELEASE);
    pg->destroying = true;
    while (pg->loops != NULL) {
        struct pg_loop *lp = pg->loops;

        pg->loops = lp->next;
        pg_loop_shutdown(lp);
    }
    pthread_mutex_destroy(&pg->lock);
    pg_config_free(&pg->cfg);
    free(pg);
}

/*
 * pg_enter checks that an op may be queued now and finds its loop's pool.
 * TORPOR_ESTATE before start, TORPOR_ECLOSED after stop.
 */
static torpor_err
pg_enter(struct pg_state *pg, torpor_loop *loop, bool has_cb,
         struct pg_loop **lp)
{
    if (loop == NULL || !has_cb) {
        return TORPOR_EINVAL;
    }
    if (!__atomic_load_n(&pg->started, __ATOMIC_ACQUIRE)) {
        return TORPOR_ESTATE;
    }
    if (__atomic_load_n(&pg->stopping, __ATOMIC_ACQUIRE)) {
        return TORPOR_ECLOSED;
    }
    return pg_loop_get(pg, loop, lp);
}

/* pg_object_ok: what every per-object op needs of its object. */
static bool
pg_object_ok(const torpor_storage_object *object)
{
    return object != NULL && object->class_name != NULL
           && (object->name.len == 0 || object->name.data != NULL);
}

static torpor_err
pg_get(void *state, torpor_loop *loop, const torpor_storage_object *object,
       const torpor_bytes *keys, size_t n, torpor_storage_rows_cb cb, void *arg)
{
    struct pg_loop *lp;
    struct pg_op *op;
    torpor_err err;

    if (!pg_object_ok(object) || (n > 0 && keys == NULL)) {
        return TORPOR_EINVAL;
    }
    err = pg_enter(state, loop, cb != NULL, &lp);
    if (err == TORPOR_OK) {
        err = pg_op_get(object, keys, n, &op);
    }
    if (err == TORPOR_OK) {
        op->cb.rows = cb;
        op->arg = arg;
        pg_loop_submit(lp, op);
    }
    return err;
}

static torpor_err
pg_list(void *state, torpor_loop *loop, const torpor_storage_object *object,
        const torpor_range *range, torpor_storage_rows_cb cb, void *arg)
{
    struct pg_loop *lp;
    struct pg_op *op;
    torpor_err err;

    if (!pg_object_ok(object) || range == NULL) {
        return TORPOR_EINVAL;
    }
    err = pg_enter(state, loop, cb != NULL, &lp);
    if (err == TORPOR_OK) {
        err = pg_op_list(object, range, &op);
    }
    if (err == TORPOR_OK) {
        op->cb.rows = cb;
        op->arg = arg;
        pg_loop_submit(lp, op);
    }
    return err;
}

static torpor_err
pg_commit(void *state, torpor_loop *loop, const torpor_storage_object *object,
          const torpor_write *writes, size_t n, torpor_storage_done_cb cb,
          void *arg)
{
    struct pg_loop *lp;
    struct pg_op *op;
    torpor_err err;

    if (!pg_object_ok(object) || (n > 0 && writes == NULL)) {
        return TORPOR_EINVAL;
    }
    err = pg_enter(state, loop, cb != NULL, &lp);
    if (err == TORPOR_OK) {
        err = pg_op_commit(object, writes, n, &op);
    }
    if (err == TORPOR_OK) {
        op->cb.done = cb;
        op->arg = arg;
        pg_loop_submit(lp, op);
    }
    return err;
}

static torpor_err
pg_alarms(void *state, torpor_loop *loop, const torpor_storage_object *object,
          torpor_storage_alarms_cb cb, void *arg)
{
    struct pg_loop *lp;
    struct pg_op *op;
    torpor_err err;

    if (!pg_object_ok(object)) {
        return TORPOR_EINVAL;
    }
    err = pg_enter(state, loop, cb != NULL, &lp);
    if (err == TORPOR_OK) {
        err = pg_op_alarms(object, &op);
    }
    if (err == TORPOR_OK) {
        op->cb.alarms = cb;
        op->arg = arg;
        pg_loop_submit(lp, op);
    }
    return err;
}

static torpor_err
pg_alarms_due(void *state, torpor_loop *loop, uint64_t before_ms,
              uint32_t limit, torpor_storage_alarms_cb cb, void *arg)
{
    struct pg_loop *lp;
    struct pg_op *op;
    torpor_err err;

    if (limit == 0) {
        return TORPOR_EINVAL;
    }
    err = pg_enter(state, loop, cb != NULL, &lp);
    if (err == TORPOR_OK) {
        err = pg_op_alarms_due(before_ms, limit, &op);
    }
    if (err == TORPOR_OK) {
        op->cb.alarms = cb;
        op->arg = arg;
        pg_loop_submit(lp, op);
    }
    return err;
}

static torpor_err
pg_objects(void *state, torpor_loop *loop, const uint8_t *after, uint32_t limit,
           torpor_storage_objects_cb cb, void *arg)
{
    struct pg_loop *lp;
    struct pg_op *op;
    torpor_err err;

    if (limit == 0) {
        return TORPOR_EINVAL;
    }
    err = pg_enter(state, loop, cb != NULL, &lp);
    if (err == TORPOR_OK) {
        err = pg_op_objects(after, limit, &op);
    }
    if (err == TORPOR_OK) {
        op->cb.objects = cb;
        op->arg = arg;
        pg_loop_submit(lp, op);
    }
    return err;
}

static torpor_err
pg_drop(void *state, torpor_loop *loop, const torpor_storage_object *object,
        torpor_storage_done_cb cb, void *arg)
{
    struct pg_loop *lp;
    struct pg_op *op;
    torpor_err err;

    if (!pg_object_ok(object)) {
        return TORPOR_EINVAL;
    }
    err = pg_enter(state, loop, cb != NULL, &lp);
    if (err == TORPOR_OK) {
        err = pg_op_drop(object, &op);
    }
    if (err == TORPOR_OK) {
        op->cb.done = cb;
        op->arg = arg;
        pg_loop_submit(lp, op);
    }
    return err;
}

static const struct torpor_storage_ops pg_storage_ops = {
    .size = sizeof(struct torpor_storage_ops),
    .get = pg_get,
    .list = pg_list,
    .commit = pg_commit,
    .alarms = pg_alarms,
    .alarms_due = pg_alarms_due,
    .objects = pg_objects,
    .drop = pg_drop,
};

static const struct torpor_plugin pg_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_STORAGE, PG_PLUGIN_NAME, PG_VERSION),
    .create = pg_plugin_create,
    .configure = pg_plugin_configure,
    .start = pg_plugin_start,
    .stop = pg_plugin_stop,
    .destroy = pg_plugin_destroy,
    .ops.storage = &pg_storage_ops,
};

const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &pg_plugin;
}
