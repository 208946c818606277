/*
 * core/loop.c: torpor_loop, torpor_io and torpor_timer on libevent, and
 * the task queue through which other threads reach a loop.
 */
#include "build-config.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "core/loop.h"
#include "core/watch.h"

struct torpor_loop {
    struct event_base *base;

    /*
     * Tasks posted from any thread.  The first post into an empty queue
     * activates the wakeup event; later ones just append, so a burst of
     * completions costs one wakeup.
     */
    pthread_mutex_t tasks_lock;
    torpor_task *tasks_head;
    torpor_task *tasks_tail;
    struct event *tasks_wakeup;

    struct tpr_watch_set *watches;  /* the descriptors of watch_add */
    torpor_task stop_task; /* posted by tpr_loop_stop */
    bool stop_posted;      /* __atomic: stop_task is queued */
};

/*
 * One io watch.  Level-triggered and persistent: the callback runs for as
 * long as the fd is ready and the events are asked for.
 */
struct torpor_io {
    struct event ev;
    torpor_loop *loop;
    torpor_io_cb cb;
    void *arg;
    int fd;
    unsigned events;
};

struct torpor_timer {
    struct event ev;
    torpor_timer_cb cb;
    void *arg;
};

/* loop_on_tasks runs every task posted so far, in posting order. */
static void
loop_on_tasks(evutil_socket_t fd, short what, void *arg)
{
    torpor_loop *loop = arg;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&loop->tasks_lock);
    torpor_task *task = loop->tasks_head;
    loop->tasks_head = NULL;
    loop->tasks_tail = NULL;
    pthread_mutex_unlock(&loop->tasks_lock);
    while (task != NULL) {
        torpor_task *next = task->next;
        task->next = NULL;
        task->run(task);    /* may free task */
        task = next;
    }
}

void
tpr_loop_run_tasks(torpor_loop *loop)
{
    loop_on_tasks(-1, 0, loop);
}

void
tpr_loop_post(torpor_loop *loop, torpor_task *task)
{
    bool wake;

    task->next = NULL;
    pthread_mutex_lock(&loop->tasks_lock);
    wake = loop->tasks_head == NULL;
    if (loop->tasks_tail != NULL) {
        loop->tasks_tail->next = task;
    } else {
        loop->tasks_head = task;
    }
    loop->tasks_tail = task;
    pthread_mutex_unlock(&loop->tasks_lock);
    if (wake) {
        event_active(loop->tasks_wakeup, 0, 0);
    }
}

torpor_err
tpr_loop_new(torpor_loop **out)
{
    static int threads_ready;

    *out = NULL;
    if (!threads_ready) {
        if (evthread_use_pthreads() != 0) {
            return TORPOR_ENOMEM;
        }
        threads_ready = 1;
    }
    torpor_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return TORPOR_ENOMEM;
    }
    loop->base = event_base_new();
    if (loop->base == NULL) {
        free(loop);
        return TORPOR_ENOMEM;
    }
    loop->tasks_wakeup = event_new(loop->base, -1, 0, loop_on_tasks, loop);
    if (loop->tasks_wakeup == NULL
        || pthread_mutex_init(&loop->tasks_lock, NULL) != 0) {
        if (loop->tasks_wakeup != NULL) {
            event_free(loop->tasks_wakeup);
        }
        event_base_free(loop->base);
        free(loop);
        return TORPOR_ENOMEM;
    }
    torpor_err err = tpr_watch_set_new(loop->base, &loop->watches);
    if (err != TORPOR_OK) {
        event_free(loop->tasks_wakeup);
        pthread_mutex_destroy(&loop->tasks_lock);
        event_base_free(loop->base);
        free(loop);
        return err;
    }
    *out = loop;
    return TORPOR_OK;
}

void
tpr_loop_free(torpor_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    /*
     * Tasks still queued are completions that own memory (a storage
     * plugin's finished request): run them so they free it.  Whoever frees
     * the loop has made sure no callback they reach is gone.
     */
    loop_on_tasks(-1, 0, loop);
    tpr_watch_set_free(loop->watches);
    event_free(loop->tasks_wakeup);
    pthread_mutex_destroy(&loop->tasks_lock);
    event_base_free(loop->base);
    free(loop);
}

torpor_err
tpr_loop_run(torpor_loop *loop)
{
    /* Without NO_EXIT_ON_EMPTY it would return at once while a loop only
     * waits for tasks that another thread will post. */
    return event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0
               ? TORPOR_EIO
               : TORPOR_OK;
}

void
tpr_loop_break(torpor_loop *loop)
{
    event_base_loopbreak(loop->base);
}

static void
loop_on_stop(torpor_task *task)
{
    torpor_loop *loop =
        (torpor_loop *)((char *)task - offsetof(torpor_loop, stop_task));

    __atomic_store_n(&loop->stop_posted, false, __ATOMIC_RELEASE);
    event_base_loopbreak(loop->base);
}

void
tpr_loop_stop(torpor_loop *loop)
{
    /*
     * event_base_loop clears a pending break when it starts, so a break
     * sent to a thread that has not reached its loop yet is lost and its
     * join waits forever.  A task is never lost: the loop runs it, and it
     * breaks from inside.
     */
    if (!__atomic_exchange_n(&loop->stop_posted, true, __ATOMIC_ACQ_REL)) {
        loop->stop_task.run = loop_on_stop;
        tpr_loop_post(loop, &loop->stop_task);
    }
}

struct event_base *
tpr_loop_base(torpor_loop *loop)
{
    return loop->base;
}

struct tpr_watch_set *
tpr_loop_watches(torpor_loop *loop)
{
    return loop->watches;
}

static void
loop_on_io(evutil_socket_t fd, short what, void *arg)
{
    torpor_io *io = arg;
    unsigned events = 0;

    if (what & EV_READ) {
        events |= TORPOR_IO_READ;
    }
    if (what & EV_WRITE) {
        events |= TORPOR_IO_WRITE;
    }
    io->cb(io, (int)fd, events, io->arg);
}

static short
loop_flags(unsigned events)
{
    short flags = EV_PERSIST;

    if (events & TORPOR_IO_READ) {
        flags |= EV_READ;
    }
    if (events & TORPOR_IO_WRITE) {
        flags |= EV_WRITE;
    }
    return flags;
}

torpor_err
tpr_io_open(torpor_loop *loop, int fd, unsigned events, torpor_io_cb cb,
            void *arg, torpor_io **out)
{
    *out = NULL;
    torpor_io *io = calloc(1, sizeof(*io));
    if (io == NULL) {
        return TORPOR_ENOMEM;
    }
    io->loop = loop;
    io->cb = cb;
    io->arg = arg;
    io->fd = fd;
    io->events = 0;
    event_assign(&io->ev, loop->base, fd, loop_flags(0), loop_on_io, io);
    torpor_err err = tpr_io_set(io, events);
    if (err != TORPOR_OK) {
        free(io);
        return err;
    }
    *out = io;
    return TORPOR_OK;
}

torpor_err
tpr_io_set(torpor_io *io, unsigned events)
{
    if (events == io->events) {
        return TORPOR_OK;
    }
    event_del(&io->ev);
    event_assign(&io->ev, io->loop->base, io->fd, loop_flags(events),
                 loop_on_io, io);
    io->events = events;
    if (events != 0 && event_add(&io->ev, NULL) != 0) {
        io->events = 0;
        return TORPOR_EIO;
    }
    return TORPOR_OK;
}

void
tpr_io_close(torpor_io *io)
{
    if (io == NULL) {
        return;
    }
    event_del(&io->ev);
    free(io);
}

static void
loop_on_timer(evutil_socket_t fd, short what, void *arg)
{
    torpor_timer *timer = arg;

    (void)fd;
    (void)what;
    timer->cb(timer, timer->arg);
}

torpor_err
tpr_timer_open(torpor_loop *loop, torpor_timer_cb cb, void *arg,
               torpor_timer **out)
{
    *out = NULL;
    torpor_timer *timer = calloc(1, sizeof(*timer));
    if (timer == NULL) {
        return TORPOR_ENOMEM;
    }
    timer->cb = cb;
    timer->arg = arg;
    evtimer_assign(&timer->ev, loop->base, loop_on_timer, timer);
    *out = timer;
    return TORPOR_OK;
}

void
tpr_timer_arm(torpor_timer *timer, uint64_t after_ms)
{
    struct timeval tv = {
        .tv_sec = (time_t)(after_ms / 1000),
        .tv_usec = (suseconds_t)(after_ms % 1000) * 1000,
    };

    evtimer_add(&timer->ev, &tv);
}

void
tpr_timer_disarm(torpor_timer *timer)
{
    evtimer_del(&timer->ev);
}

void
tpr_timer_close(torpor_timer *timer)
{
    if (timer == NULL) {
        return;
    }
    evtimer_del(&timer->ev);
    free(timer);
}

uint64_t
tpr_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
tpr_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
