/*
 * core/runtime.c: loading, configuring and starting plugins, routes, and
 * the daemon's lifecycle on the main loop.
 */
#include "build-config.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conn_store.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/object.h"
#include "core/room_ops.h"
#include "core/runtime.h"

static struct torpor_plugin_ctx *
runtime_plugin(const struct tpr_runtime *rt, const char *kind,
               const char *name)
{
    for (size_t i = 0; i < rt->nplugins; i++) {
        struct torpor_plugin_ctx *p = rt->plugins[i];
        if (strcmp(tpr_plugin_kind_name(p->desc.kind), kind) == 0
            && strcmp(p->desc.name, name) == 0) {
            return p;
        }
    }
    return NULL;
}

/* runtime_load_one loads spec and adds it; false if it was refused. */
static bool
runtime_load_one(struct tpr_runtime *rt, const char *spec, unsigned line,
                 struct tpr_diag *diag)
{
    const struct tpr_config *cfg = rt->cfg;
    struct torpor_plugin_ctx *p;

    if (tpr_plugin_open(spec, cfg->plugin_path, cfg->path, line, diag, &p)
        != TORPOR_OK) {
        return false;
    }
    const char *kind = tpr_plugin_kind_name(p->desc.kind);
    if (runtime_plugin(rt, kind, p->desc.name) != NULL) {
        tpr_diag_add(diag, cfg->path, line, "could not load plugin \"%s\": a %s plugin named \"%s\" is already loaded", p->path, kind, p->desc.name);
        tpr_plugin_close(p);
        return false;
    }
    p->rt = rt;
    rt->plugins[rt->nplugins++] = p;
    tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "loaded %s plugin \"%s\" %s (ABI %u.%u) from \"%s\"", kind, p->desc.name, p->desc.version, p->desc.abi_major, p->desc.abi_minor, p->path);
    return true;
}

static void
runtime_load_plugins(struct tpr_runtime *rt, struct tpr_diag *diag)
{
    const struct tpr_config *cfg = rt->cfg;
    unsigned before = diag->count;

    /* One more slot: the storage backend, if "plugins" leaves it out. */
    rt->plugins = calloc(cfg->nplugins + 1, sizeof(*rt->plugins));
    if (rt->plugins == NULL) {
        tpr_diag_add(diag, NULL, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < cfg->nplugins; i++) {
        runtime_load_one(rt, cfg->plugins[i], cfg->plugins_line, diag);
    }
    if (diag->count != before) {
        return;
    }
    unsigned line = cfg->storage_backend_line;
    struct torpor_plugin_ctx *backend =
        runtime_plugin(rt, "storage", cfg->storage_backend);
    if (backend == NULL
        && runtime_load_one(rt, cfg->storage_backend, line, diag)) {
        backend = rt->plugins[rt->nplugins - 1];
    }
    if (backend == NULL) {
        return;
    }
    if (backend->desc.kind != TORPOR_KIND_STORAGE) {
        tpr_diag_add(diag, cfg->path, line, "backend \"%s\" in [storage] is a %s plugin, not a storage plugin", cfg->storage_backend, tpr_plugin_kind_name(backend->desc.kind));
        return;
    }
    rt->storage.plugin = backend;
    rt->storage.max_key_bytes = cfg->max_key_bytes;
    rt->storage.max_value_bytes = cfg->max_value_bytes;
}

static void
runtime_create_plugins(struct tpr_runtime *rt, struct tpr_diag *diag)
{
    for (size_t i = 0; i < rt->nplugins; i++) {
        struct torpor_plugin_ctx *p = rt->plugins[i];
        torpor_err err = p->desc.create(&rt->host, p, &p->state);
        if (err != TORPOR_OK) {
            tpr_diag_add(diag, rt->cfg->path, rt->cfg->plugins_line, "could not create plugin \"%s\": %s", p->desc.name, tpr_strerror(err));
            continue;
        }
        p->created = true;
    }
}

static void
runtime_configure_plugins(struct tpr_runtime *rt, struct tpr_diag *diag)
{
    const struct tpr_config *cfg = rt->cfg;

    for (size_t i = 0; i < cfg->nentries; i++) {
        const struct tpr_config_entry *e = &cfg->entries[i];
        struct torpor_plugin_ctx *p = runtime_plugin(rt, e->kind, e->plugin);
        char why[256] = "";
        if (p == NULL) {
            tpr_diag_add(diag, cfg->path, e->line, "section [%s.%s] names no loaded %s plugin: add \"%s\" to \"plugins\" in [core]", e->kind, e->plugin, e->kind, e->plugin);
            continue;
        }
        if (!p->created) {
            continue;
        }
        /* A key of the core's in every class section. */
        if (p->desc.kind == TORPOR_KIND_CLASS
            && strcmp(e->key, "hibernate_after_ms") == 0) {
            uint64_t ms;
            if (tpr_config_parse_uint(e->value, 0, 86400000, &ms)
                != TORPOR_OK) {
                tpr_diag_add(diag, cfg->path, e->line, "bad value \"%s\" for \"hibernate_after_ms\" in section [class.%s]: expected milliseconds from 0 (never) to 86400000", e->value, e->plugin);
            } else {
                p->ops.klass.hibernate_after_ms = (uint32_t)ms;
            }
            continue;
        }
        if (p->desc.configure == NULL) {
            tpr_diag_add(diag, cfg->path, e->line, "unknown key \"%s\" in section [%s.%s]: the plugin takes no settings", e->key, e->kind, e->plugin);
            continue;
        }
        torpor_err err = p->desc.configure(p->state, e->key, e->value, why,
                                           sizeof(why));
        why[sizeof(why) - 1] = '\0';
        if (err == TORPOR_ENOKEY) {
            tpr_diag_add(diag, cfg->path, e->line, "unknown key \"%s\" in section [%s.%s]", e->key, e->kind, e->plugin);
        } else if (err != TORPOR_OK) {
            tpr_diag_add(diag, cfg->path, e->line, "bad value \"%s\" for \"%s\" in section [%s.%s]: %s", e->value, e->key, e->kind, e->plugin, why[0] ? why : tpr_strerror(err));
        }
    }
}

static void
runtime_resolve_routes(struct tpr_runtime *rt, struct tpr_diag *diag)
{
    const struct tpr_config *cfg = rt->cfg;

    rt->routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*rt->routes));
    if (rt->routes == NULL) {
        tpr_diag_add(diag, NULL, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct tpr_route_config *r = &cfg->routes[i];
        if (!r->enabled) {
            continue;
        }
        struct torpor_plugin_ctx *k = runtime_plugin(rt, "class",
                                                     r->class_name);
        if (k == NULL && r->line == 0) {
            /* A built-in route follows its plugin: leaving "chat" out of
             * "plugins" leaves /chat/ out too. */
            tpr_log(TORPOR_LOG_INFO, "core", NULL, "default route \"%s\" is off: class \"%s\" is not loaded", r->name, r->class_name);
            continue;
        }
        if (k == NULL) {
            tpr_diag_add(diag, cfg->path, r->class_line ? r->class_line : r->line, "route \"%s\" needs class \"%s\", which no loaded plugin provides: add it to \"plugins\" in [core]", r->name, r->class_name);
            continue;
        }
        rt->routes[rt->nroutes].name = r->name;
        rt->routes[rt->nroutes].klass = k;
        rt->nroutes++;
    }
}

/* A plugin's configured hook at work: where its reports go. */
struct runtime_report {
    const struct tpr_config *cfg;
    const struct torpor_plugin_ctx *p;
    struct tpr_diag *diag;
};

/*
 * runtime_on_report files one problem a configured hook found, at the line
 * of its key in the plugin's section; a key the file does not set, or
 * none, gets the line of the section's first key, and a plugin with no
 * keys in the file the file alone.
 */
static void
runtime_on_report(void *ctx, const char *key, const char *reason)
{
    const struct runtime_report *r = ctx;
    const char *kind = tpr_plugin_kind_name(r->p->desc.kind);
    const char *name = r->p->desc.name;
    unsigned first = 0;
    unsigned line = 0;

    for (size_t i = 0; i < r->cfg->nentries; i++) {
        const struct tpr_config_entry *e = &r->cfg->entries[i];
        if (strcmp(e->kind, kind) != 0 || strcmp(e->plugin, name) != 0) {
            continue;
        }
        if (first == 0) {
            first = e->line;
        }
        if (key != NULL && line == 0 && strcmp(e->key, key) == 0) {
            line = e->line;
        }
    }
    if (key != NULL) {
        tpr_diag_add(r->diag, r->cfg->path, line ? line : first, "\"%s\" in section [%s.%s]: %s", key, kind, name, reason);
    } else {
        tpr_diag_add(r->diag, r->cfg->path, first, "section [%s.%s]: %s", kind, name, reason);
    }
}

/*
 * runtime_check_plugins gives each plugin with a configured hook its whole
 * configuration to look at, with the names of every configured route.
 */
static void
runtime_check_plugins(struct tpr_runtime *rt, struct tpr_diag *diag)
{
    const struct tpr_config *cfg = rt->cfg;
    const char **names = calloc(cfg->nroutes ? cfg->nroutes : 1,
                                sizeof(*names));

    if (names == NULL) {
        tpr_diag_add(diag, NULL, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        names[i] = cfg->routes[i].name;
    }
    for (size_t i = 0; i < rt->nplugins; i++) {
        struct torpor_plugin_ctx *p = rt->plugins[i];
        struct runtime_report r = {.cfg = cfg, .p = p, .diag = diag};
        unsigned before = diag->count;

        if (!p->created || !tpr_plugin_has_configured(p)) {
            continue;
        }
        torpor_err err = p->desc.configured(p->state, names, cfg->nroutes,
                                            runtime_on_report, &r);
        if (err != TORPOR_OK && diag->count == before) {
            /* Refused without saying why: still a problem, and named. */
            runtime_on_report(&r, NULL, tpr_strerror(err));
        }
    }
    free(names);
}

/*
 * runtime_make_shards makes one loop and object table per shard; shard 0's
 * loop is the main loop.  Threads start with tpr_runtime_start.
 */
static torpor_err
runtime_make_shards(struct tpr_runtime *rt)
{
    size_t n = rt->cfg->loops;

    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (size_t)cpus : 1;
    }
    rt->shards = calloc(n, sizeof(*rt->shards));
    if (rt->shards == NULL) {
        return TORPOR_ENOMEM;
    }
    rt->nshards = n;
    for (size_t i = 0; i < n; i++) {
        struct tpr_shard *s = &rt->shards[i];
        s->rt = rt;
        if (tpr_loop_new(&s->loop) != TORPOR_OK
            || tpr_objects_new(&s->objects) != TORPOR_OK
            || tpr_conn_store_new(s, &s->conns) != TORPOR_OK
            || tpr_idle_queue_new(s, &s->idle) != TORPOR_OK) {
            return TORPOR_ENOMEM;
        }
    }
    rt->loop = rt->shards[0].loop;
    return TORPOR_OK;
}

struct tpr_shard *
tpr_runtime_shard(const struct tpr_runtime *rt, const uint8_t id[16])
{
    uint64_t h;

    /* The table hashes on the first 8 bytes: use the next 8 here. */
    memcpy(&h, id + 8, sizeof(h));
    return &rt->shards[h % rt->nshards];
}

bool
tpr_runtime_stopping(const struct tpr_runtime *rt)
{
    return __atomic_load_n(&rt->stopping, __ATOMIC_ACQUIRE);
}

static void *
runtime_shard_thread(void *arg)
{
    struct tpr_shard *s = arg;

    if (tpr_loop_run(s->loop) != TORPOR_OK) {
        tpr_log(TORPOR_LOG_ERR, "core", NULL, "an event loop failed");
    }
    return NULL;
}

/* runtime_join_shards stops the other shards' loops and waits for them. */
static void
runtime_join_shards(struct tpr_runtime *rt)
{
    for (size_t i = 1; i < rt->nshards; i++) {
        struct tpr_shard *s = &rt->shards[i];
        if (s->has_thread) {
            tpr_loop_stop(s->loop);
            pthread_join(s->thread, NULL);
            s->has_thread = false;
        }
    }
}

/* runtime_run_all_tasks runs what is posted to any shard; no loop runs. */
static void
runtime_run_all_tasks(struct tpr_runtime *rt)
{
    for (size_t i = 0; i < rt->nshards; i++) {
        if (rt->shards[i].loop != NULL) {
            tpr_loop_run_tasks(rt->shards[i].loop);
        }
    }
}

torpor_err
tpr_runtime_new(struct tpr_config *cfg, struct tpr_diag *diag,
                struct tpr_runtime **out)
{
    unsigned before = diag->count;
    struct tpr_runtime *rt = calloc(1, sizeof(*rt));

    *out = NULL;
    if (rt == NULL) {
        tpr_config_free(cfg);
        return TORPOR_ENOMEM;
    }
    rt->cfg = cfg;
    tpr_host_init(&rt->host);
    tpr_log_set_level(cfg->log_level);
    if (runtime_make_shards(rt) != TORPOR_OK
        || tpr_room_ops_new(rt) != TORPOR_OK) {
        tpr_runtime_free(rt);
        return TORPOR_ENOMEM;
    }
    runtime_load_plugins(rt, diag);
    if (diag->count == before) {
        runtime_create_plugins(rt, diag);
    }
    if (diag->count == before) {
        runtime_configure_plugins(rt, diag);
        runtime_resolve_routes(rt, diag);
    }
    if (diag->count == before) {
        runtime_check_plugins(rt, diag);
    }
    if (diag->count != before) {
        tpr_runtime_free(rt);
        return TORPOR_EINVAL;
    }
    *out = rt;
    return TORPOR_OK;
}

torpor_err
tpr_runtime_start(struct tpr_runtime *rt)
{
    /* Classes first, so a transport never attaches to an unstarted one. */
    static const uint32_t order[] = {
        TORPOR_KIND_STORAGE, TORPOR_KIND_CLASS, TORPOR_KIND_TRANSPORT,
    };

    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        for (size_t i = 0; i < rt->nplugins; i++) {
            struct torpor_plugin_ctx *p = rt->plugins[i];
            if (p->desc.kind != order[k] || p->desc.start == NULL) {
                continue;
            }
            torpor_err err = p->desc.start(p->state);
            if (err != TORPOR_OK) {
                tpr_log(TORPOR_LOG_ERR, "core", NULL, "could not start plugin \"%s\": %s", p->desc.name, tpr_strerror(err));
                return err;
            }
        }
    }
    for (size_t i = 1; i < rt->nshards; i++) {
        struct tpr_shard *s = &rt->shards[i];
        if (pthread_create(&s->thread, NULL, runtime_shard_thread, s) != 0) {
            tpr_log(TORPOR_LOG_ERR, "core", NULL, "could not start event loop thread %zu", i);
            return TORPOR_ENOMEM;
        }
        s->has_thread = true;
    }
    if (rt->storage.plugin != NULL && tpr_alarms_start(rt) != TORPOR_OK) {
        tpr_log(TORPOR_LOG_ERR, "core", NULL, "could not start the alarm poller: out of memory");
        return TORPOR_ENOMEM;
    }
    tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "torpord %s ready: %zu plugins, %zu routes, %zu event loops, plugin ABI %u.%u", PACKAGE_VERSION, rt->nplugins, rt->nroutes, rt->nshards, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    return TORPOR_OK;
}

struct torpor_plugin_ctx *
tpr_runtime_class(const struct tpr_runtime *rt, const char *name)
{
    return runtime_plugin(rt, "class", name);
}

const struct tpr_route *
tpr_runtime_route(const struct tpr_runtime *rt, const void *name, size_t len)
{
    for (size_t i = 0; i < rt->nroutes; i++) {
        const struct tpr_route *r = &rt->routes[i];
        if (strlen(r->name) == len && memcmp(r->name, name, len) == 0) {
            return r;
        }
    }
    return NULL;
}

static void
runtime_on_shutdown_timeout(torpor_timer *timer, void *arg)
{
    struct tpr_runtime *rt = arg;

    (void)timer;
    tpr_log(TORPOR_LOG_WARN, "core", NULL, "%zu connections did not finish closing within %llu ms and %zu held events did not end; exiting anyway", __atomic_load_n(&rt->nconns, __ATOMIC_RELAXED), (unsigned long long)rt->cfg->shutdown_timeout_ms, __atomic_load_n(&rt->nholds, __ATOMIC_RELAXED));
    tpr_loop_break(rt->loop);
}

/* runtime_drained: nothing a shutdown waits for is left. */
static bool
runtime_drained(struct tpr_runtime *rt)
{
    /* Sequentially consistent, so that of two last leavers on two
     * threads at least one sees both counts at zero. */
    return __atomic_load_n(&rt->nconns, __ATOMIC_SEQ_CST) == 0
           && __atomic_load_n(&rt->nholds, __ATOMIC_SEQ_CST) == 0;
}

void
tpr_runtime_conn_gone(struct tpr_runtime *rt)
{
    __atomic_sub_fetch(&rt->nconns, 1, __ATOMIC_SEQ_CST);
    /* libevent makes loopbreak safe from any thread. */
    if (tpr_runtime_stopping(rt) && runtime_drained(rt)) {
        tpr_loop_break(rt->loop);
    }
}

void
tpr_runtime_hold_taken(struct tpr_runtime *rt)
{
    __atomic_add_fetch(&rt->nholds, 1, __ATOMIC_SEQ_CST);
}

void
tpr_runtime_hold_gone(struct tpr_runtime *rt)
{
    __atomic_sub_fetch(&rt->nholds, 1, __ATOMIC_SEQ_CST);
    if (tpr_runtime_stopping(rt) && runtime_drained(rt)) {
        tpr_loop_break(rt->loop);
    }
}

/* A shard's part of a shutdown, run on its own thread. */
struct shard_close {
    torpor_task task;
    struct tpr_shard *shard;
};

static void
runtime_close_shard(torpor_task *task)
{
    struct shard_close *c = (struct shard_close *)task;

    tpr_objects_close_all(c->shard->objects, TORPOR_CLOSE_GOING_AWAY,
                          "server shutting down");
    free(c);
}

void
tpr_runtime_stop(struct tpr_runtime *rt)
{
    if (tpr_runtime_stopping(rt)) {
        return;
    }
    __atomic_store_n(&rt->stopping, true, __ATOMIC_RELEASE);
    tpr_alarms_stop(rt);
    tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "shutting down: closing %zu connections", __atomic_load_n(&rt->nconns, __ATOMIC_RELAXED));
    for (size_t i = 0; i < rt->nplugins; i++) {
        struct torpor_plugin_ctx *p = rt->plugins[i];
        if (p->desc.stop != NULL) {
            p->desc.stop(p->state);
        }
    }
    for (size_t i = 0; i < rt->nshards; i++) {
        struct shard_close *c = malloc(sizeof(*c));
        if (c == NULL) {
            continue;   /* its connections close at the timeout */
        }
        c->task.run = runtime_close_shard;
        c->shard = &rt->shards[i];
        tpr_loop_post(c->shard->loop, &c->task);
    }
    if (runtime_drained(rt)) {
        tpr_loop_break(rt->loop);
        return;
    }
    if (tpr_timer_open(rt->loop, runtime_on_shutdown_timeout, rt,
                       &rt->shutdown_timer) != TORPOR_OK) {
        tpr_loop_break(rt->loop);
        return;
    }
    tpr_timer_arm(rt->shutdown_timer, rt->cfg->shutdown_timeout_ms);
}

torpor_err
tpr_runtime_reload(struct tpr_runtime *rt, struct tpr_diag *diag)
{
    struct tpr_config *fresh;

    if (rt->cfg->path == NULL) {
        tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "reload: running on defaults, no config file to read");
        return TORPOR_OK;
    }
    torpor_err err = tpr_config_load(rt->cfg->path, &fresh, diag);
    if (err != TORPOR_OK) {
        return err;
    }
    /* Missing: live changes beyond the log level; other settings need a restart. */
    rt->cfg->log_level = fresh->log_level;
    tpr_config_free(fresh);
    tpr_log_set_level(rt->cfg->log_level);
    tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "reloaded \"%s\": log level \"%s\"", rt->cfg->path, tpr_log_level_name(rt->cfg->log_level));
    return TORPOR_OK;
}

unsigned
tpr_runtime_reload_plugins(struct tpr_runtime *rt)
{
    unsigned called = 0;
    unsigned failed = 0;

    for (size_t i = 0; i < rt->nplugins; i++) {
        struct torpor_plugin_ctx *p = rt->plugins[i];
        if (!p->created || !tpr_plugin_has_reload(p)) {
            continue;
        }
        called++;
        /* The plugin logged why; it keeps serving with what it had. */
        if (p->desc.reload(p->state) != TORPOR_OK) {
            failed++;
        }
    }
    if (called > 0) {
        tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "reloaded %u plugin%s, %u kept their previous state", called - failed, called - failed == 1 ? "" : "s", failed);
    }
    return failed;
}

static void
runtime_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct tpr_runtime *rt = arg;

    (void)what;
    if (sig == SIGHUP) {
        struct tpr_diag diag = {0};
        if (tpr_runtime_reload(rt, &diag) != TORPOR_OK) {
            tpr_log(TORPOR_LOG_ERR, "core", NULL, "could not reload \"%s\": keeping the running configuration", rt->cfg->path);
            tpr_diag_log(&diag, TORPOR_LOG_ERR, "core");
        }
        tpr_diag_free(&diag);
        /* Plugins re-read their own files, whatever the config file says. */
        (void)tpr_runtime_reload_plugins(rt);
        return;
    }
    tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "received %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    tpr_runtime_stop(rt);
}

torpor_err
tpr_runtime_run(struct tpr_runtime *rt)
{
    static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    struct event_base *base = tpr_loop_base(rt->loop);

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < 3; i++) {
        rt->signals[i] = evsignal_new(base, sigs[i], runtime_on_signal, rt);
        if (rt->signals[i] == NULL || evsignal_add(rt->signals[i], NULL) != 0) {
            return TORPOR_EIO;
        }
    }
    torpor_err err = tpr_loop_run(rt->loop);
    runtime_join_shards(rt);
    struct tpr_stats st = {0};
    for (size_t i = 0; i < rt->nshards; i++) {
        const struct tpr_stats *s = &rt->shards[i].stats;
        st.wakeups += s->wakeups;
        st.hibernations += s->hibernations;
        st.messages_in += s->messages_in;
        st.messages_out += s->messages_out;
        st.commits_failed += s->commits_failed;
    }
    tpr_log(TORPOR_LOG_NOTICE, "core", NULL, "stopped: %llu wakeups, %llu hibernations, %llu messages in, %llu out, %llu failed commits", (unsigned long long)st.wakeups, (unsigned long long)st.hibernations, (unsigned long long)st.messages_in, (unsigned long long)st.messages_out, (unsigned long long)st.commits_failed);
    return err;
}

void
tpr_runtime_free(struct tpr_runtime *rt)
{
    if (rt == NULL) {
        return;
    }
    for (size_t i = 0; i < 3; i++) {
        if (rt->signals[i] != NULL) {
            event_free(rt->signals[i]);
        }
    }
    tpr_timer_close(rt->shutdown_timer);
    tpr_alarms_stop(rt);
    runtime_join_shards(rt);
    runtime_run_all_tasks(rt);
    /*
     * No loop runs from here on.  Storage first: it finishes what is
     * queued, and its completions, posted to the shards' loops, run right
     * after, while the objects they reach still exist.  Instances go
     * before their classes' code is unloaded.
     */
    if (rt->storage.plugin != NULL) {
        tpr_plugin_destroy(rt->storage.plugin);
        runtime_run_all_tasks(rt);
    }
    for (size_t i = 0; i < rt->nshards; i++) {
        tpr_objects_free(rt->shards[i].objects);
    }
    tpr_room_ops_finish(rt);
    /* Records the transports still hold: they free their parts. */
    for (size_t i = 0; i < rt->nshards; i++) {
        tpr_conn_store_free(rt->shards[i].conns);
        tpr_idle_queue_free(rt->shards[i].idle);
    }
    for (size_t i = rt->nplugins; i > 0; i--) {
        tpr_plugin_destroy(rt->plugins[i - 1]);
    }
    for (size_t i = 0; i < rt->nshards; i++) {
        tpr_loop_free(rt->shards[i].loop);
    }
    free(rt->shards);
    rt->loop = NULL;
    for (size_t i = rt->nplugins; i > 0; i--) {
        tpr_plugin_close(rt->plugins[i - 1]);
    }
    free(rt->plugins);
    free(rt->routes);
    tpr_room_ops_free(rt);
    tpr_config_free(rt->cfg);
    free(rt);
}
