/*
 * core/loop.h: event loops, and the io watches and timers plugins get
 * through the host table.  libevent sits under this file only; nothing
 * above it sees an event_base.
 */
#ifndef TORPOR_CORE_LOOP_H
#define TORPOR_CORE_LOOP_H

#include <stdint.h>

#include <torpor/host.h>

#include "core/export.h"

struct event_base;
struct tpr_watch_set;

/* tpr_loop_new makes a loop for the calling thread to run. */
torpor_err tpr_loop_new(torpor_loop **out);
void tpr_loop_free(torpor_loop *loop);

/* tpr_loop_run runs until tpr_loop_break; returns TORPOR_EIO on failure. */
TPR_EXPORT torpor_err tpr_loop_run(torpor_loop *loop);
TPR_EXPORT void tpr_loop_break(torpor_loop *loop);

/*
 * tpr_loop_stop makes tpr_loop_run return once the tasks posted before it
 * have run, even if the loop has not started yet, which tpr_loop_break
 * cannot promise; for stopping a loop that another thread runs.  Any
 * thread.
 */
void tpr_loop_stop(torpor_loop *loop);

/* tpr_loop_base: the libevent base, for the core's own events. */
struct event_base *tpr_loop_base(torpor_loop *loop);

/* tpr_loop_watches: the loop's set of watched descriptors; watch.c. */
struct tpr_watch_set *tpr_loop_watches(torpor_loop *loop);

/* The host table's io and timer members. */
torpor_err tpr_io_open(torpor_loop *loop, int fd, unsigned events,
                       torpor_io_cb cb, void *arg, torpor_io **out);
torpor_err tpr_io_set(torpor_io *io, unsigned events);
void tpr_io_close(torpor_io *io);

torpor_err tpr_timer_open(torpor_loop *loop, torpor_timer_cb cb, void *arg,
                          torpor_timer **out);
void tpr_timer_arm(torpor_timer *timer, uint64_t after_ms);
void tpr_timer_disarm(torpor_timer *timer);
void tpr_timer_close(torpor_timer *timer);

/*
 * tpr_loop_run_tasks runs the tasks posted so far, outside the loop: at
 * shutdown, so that completions reach objects before they are freed.
 */
void tpr_loop_run_tasks(torpor_loop *loop);

/* tpr_loop_post: the host's loop_post; any thread. */
void tpr_loop_post(torpor_loop *loop, torpor_task *task);

/* tpr_wall_ms: CLOCK_REALTIME in milliseconds since 1970. */
uint64_t tpr_wall_ms(void);

/* tpr_now_ms: CLOCK_MONOTONIC in milliseconds. */
uint64_t tpr_now_ms(void);

#endif /* TORPOR_CORE_LOOP_H */
