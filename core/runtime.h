/*
 * core/runtime.h: one torpord's worth of state: the configuration, the
 * loaded plugins, the routes, the objects and the loop, and the lifecycle
 * that ties them together (load, configure, start, run, stop, free).
 */
#ifndef TORPOR_CORE_RUNTIME_H
#define TORPOR_CORE_RUNTIME_H

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>

#include <torpor/plugin.h>

#include "core/config.h"
#include "core/errors.h"
#include "core/export.h"
#include "core/storage.h"


struct tpr_objects;
struct tpr_conn_store;
struct tpr_idle_queue;
struct tpr_room_ops;
struct event;

/* A route: "/NAME/<object>" goes to the objects of class klass. */
struct tpr_route {
    const char *name;                   /* borrowed from the config */
    struct torpor_plugin_ctx *klass;
};

/*
 * Counters of what the runtime does, for logs now and /metrics later.
 * Main loop only (there is one loop).
 */
struct tpr_stats {
    uint64_t objects_awake;     /* gauges */
    uint64_t objects_hibernating;
    uint64_t events_queued;
    uint64_t wakeups;           /* counters */
    uint64_t hibernations;
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t commits_failed;
    uint64_t auto_responses;
    uint64_t alarms_fired;
    uint64_t alarms_failed;
};

/*
 * One event loop and what lives on it: the objects whose id maps to it,
 * their connections, and their counters.  Shard 0 runs on the main thread,
 * which also accepts connections, polls alarms and handles signals; every
 * other shard has a thread of its own.  An object and its connections are
 * only ever touched on their shard's thread.
 */
struct tpr_shard {
    struct tpr_runtime *rt;
    torpor_loop *loop;
    struct tpr_objects *objects;
    struct tpr_conn_store *conns;   /* its connection records */
    struct tpr_idle_queue *idle;    /* awake objects, toward hibernation */
    struct tpr_stats stats;
    pthread_t thread;
    bool has_thread;
};

struct tpr_runtime {
    struct tpr_config *cfg;
    torpor_loop *loop;
    struct torpor_host host;

    struct torpor_plugin_ctx **plugins;  /* in load order */
    size_t nplugins;
    struct tpr_route *routes;
    size_t nroutes;

    struct tpr_storage storage;  /* the backend [storage] names */

    struct tpr_shard *shards;   /* nshards; shards[0].loop is loop */
    size_t nshards;
    size_t nconns;              /* attached connections; __atomic */
    size_t nholds;              /* events held open by classes; __atomic */
    uint64_t next_conn_id;      /* __atomic */

    struct tpr_room_ops *room_ops;  /* backends' calls and taps */

    torpor_timer *alarm_timer;  /* polls storage for due alarms */
    bool alarm_polling;         /* a poll is in flight */

    bool stopping;
    int exit_status;
    torpor_timer *shutdown_timer;
    struct event *signals[3];
};

/*
 * tpr_runtime_new loads and configures the plugins cfg names and resolves
 * its routes; it takes cfg.  Every problem goes to diag as "FILE:LINE:
 * reason".  Returns TORPOR_OK, TORPOR_EINVAL (diag has problems),
 * TORPOR_ENOMEM.  Main thread.
 */
TPR_EXPORT torpor_err tpr_runtime_new(struct tpr_config *cfg,
                                      struct tpr_diag *diag,
                                      struct tpr_runtime **out);

/* tpr_runtime_start starts every plugin; transports begin to listen. */
TPR_EXPORT torpor_err tpr_runtime_start(struct tpr_runtime *rt);

/*
 * tpr_runtime_run runs the main loop until a shutdown completes.  SIGTERM
 * and SIGINT start a shutdown; SIGHUP reloads the log level and calls each
 * plugin's reload hook.
 */
TPR_EXPORT torpor_err tpr_runtime_run(struct tpr_runtime *rt);

/*
 * tpr_runtime_stop begins a clean shutdown: transports stop accepting and
 * every connection is closed with 1001.  The loop ends when the last one
 * has gone or shutdown_timeout_ms has passed.  On the main loop.
 */
TPR_EXPORT void tpr_runtime_stop(struct tpr_runtime *rt);

/*
 * tpr_runtime_reload re-reads the config file and applies what can change
 * live (the log level).  A bad file changes nothing; its problems go to
 * diag and TORPOR_EINVAL is returned.
 */
TPR_EXPORT torpor_err tpr_runtime_reload(struct tpr_runtime *rt,
                                         struct tpr_diag *diag);

/*
 * tpr_runtime_reload_plugins calls the reload hook of every plugin that has
 * one, in load order, and returns how many failed (each kept what it had
 * and logged why).  Main loop, after start.
 */
TPR_EXPORT unsigned tpr_runtime_reload_plugins(struct tpr_runtime *rt);

/* tpr_runtime_free frees everything, plugins last. */
TPR_EXPORT void tpr_runtime_free(struct tpr_runtime *rt);

/* tpr_runtime_route finds an enabled route by name; NULL if none. */
const struct tpr_route *tpr_runtime_route(const struct tpr_runtime *rt,
                                          const void *name, size_t len);

/*
 * tpr_runtime_conn_gone: a connection left; may finish a shutdown.  Any
 * shard's thread.
 */
void tpr_runtime_conn_gone(struct tpr_runtime *rt);

/*
 * tpr_runtime_hold_taken and tpr_runtime_hold_gone count events that
 * classes hold open: a shutdown waits for them as for connections, so that
 * the closes that end it reach the class's workers.  Any thread.
 */
void tpr_runtime_hold_taken(struct tpr_runtime *rt);
void tpr_runtime_hold_gone(struct tpr_runtime *rt);

/* tpr_runtime_shard: the shard an object id maps to. */
struct tpr_shard *tpr_runtime_shard(const struct tpr_runtime *rt,
                                    const uint8_t id[16]);

/* tpr_runtime_stopping: whether a shutdown began.  Any thread. */
bool tpr_runtime_stopping(const struct tpr_runtime *rt);

/*
 * tpr_alarms_start starts polling the backend for due alarms every
 * cfg->alarm_poll_ms; tpr_alarms_stop stops it.  alarm.c.
 */
torpor_err tpr_alarms_start(struct tpr_runtime *rt);
void tpr_alarms_stop(struct tpr_runtime *rt);

/* tpr_runtime_class finds a loaded class plugin by name; NULL if none. */
struct torpor_plugin_ctx *tpr_runtime_class(const struct tpr_runtime *rt,
                                            const char *name);

/*
 * tpr_idle_queue_new makes a shard's queue of objects toward hibernation,
 * with its timer; tpr_idle_queue_free frees it once its objects are gone.
 * hibernate.c.
 */
torpor_err tpr_idle_queue_new(struct tpr_shard *shard,
                              struct tpr_idle_queue **out);
void tpr_idle_queue_free(struct tpr_idle_queue *q);

/* tpr_host_init fills the host table plugins receive. */
void tpr_host_init(struct torpor_host *host);

#endif /* TORPOR_CORE_RUNTIME_H */
