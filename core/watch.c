/*
 * core/watch.c: the host's watch_add, watch_set and watch_del.
 *
 * Every loop has one epoll set, registered once with libevent as a
 * persistent read event; the descriptors a transport watches go into that
 * set, not into libevent.  libevent would keep a 128-byte struct event per
 * descriptor, plus its own map entry, and the caller a handle to them; here
 * the kernel's epoll entry is all there is.  Its 64-bit data holds the
 * caller's arg, which must be 8-aligned, with the index of the callback in
 * its three low bits: a loop interns up to TORPOR_WATCH_CALLBACKS_MAX
 * callbacks, one per kind of record in practice (a transport's
 * connections), so no descriptor carries a function pointer.
 *
 * Readiness is level-triggered, like io_open's: a callback that reads only
 * part of what is ready is called again on the next turn of the loop, so
 * one busy peer cannot starve the others of a batch.
 */
#include "build-config.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/watch.h"

/* Ready descriptors taken from the kernel per dispatch. */
#define WATCH_BATCH 256

/* The low bits of an entry's data that hold its callback's index. */
#define WATCH_TAG_MASK ((uint64_t)(TORPOR_WATCH_CALLBACKS_MAX - 1))

struct tpr_watch_set {
    int epfd;
    struct event *ev;

    /*
     * Interned callbacks.  Entries are appended under lock, from any
     * thread, and never change once ncbs (read with __atomic) covers them,
     * so the dispatch reads them without the lock.
     */
    pthread_mutex_t lock;
    torpor_watch_cb cbs[TORPOR_WATCH_CALLBACKS_MAX];
    unsigned ncbs;

    /*
     * The batch being dispatched: watch_del strikes out the entries of a
     * watch it removes, so that no callback reaches a freed arg.  Only on
     * the loop's thread.
     */
    int ready_i;
    int ready_n;
    struct epoll_event ready[WATCH_BATCH];
};

_Static_assert((TORPOR_WATCH_CALLBACKS_MAX & (TORPOR_WATCH_CALLBACKS_MAX - 1))
                       == 0
                   && TORPOR_WATCH_CALLBACKS_MAX <= 8,
               "callback indices must fit the low bits of an 8-aligned arg");

static void
watch_dispatch(evutil_socket_t fd, short what, void *arg)
{
    struct tpr_watch_set *set = arg;
    int n;

    (void)fd;
    (void)what;
    do {
        n = epoll_wait(set->epfd, set->ready, WATCH_BATCH, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        return;
    }
    set->ready_n = n;
    for (set->ready_i = 0; set->ready_i < n; set->ready_i++) {
        const struct epoll_event *e = &set->ready[set->ready_i];
        uint64_t data = e->data.u64;
        unsigned events = 0;

        if (data == 0) {
            continue; /* struck out by watch_del during this batch */
        }
        /* A failure or hang-up is for both sides to find. */
        if (e->events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            events |= TORPOR_IO_READ;
        }
        if (e->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            events |= TORPOR_IO_WRITE;
        }
        set->cbs[data & WATCH_TAG_MASK](
            (void *)(uintptr_t)(data & ~WATCH_TAG_MASK), events);
    }
    set->ready_n = 0;
    set->ready_i = 0;
}

torpor_err
tpr_watch_set_new(struct event_base *base, struct tpr_watch_set **out)
{
    struct tpr_watch_set *set = calloc(1, sizeof(*set));

    *out = NULL;
    if (set == NULL) {
        return TORPOR_ENOMEM;
    }
    set->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (set->epfd < 0) {
        free(set);
        return TORPOR_EIO;
    }
    if (pthread_mutex_init(&set->lock, NULL) != 0) {
        close(set->epfd);
        free(set);
        return TORPOR_ENOMEM;
    }
    set->ev =
        event_new(base, set->epfd, EV_READ | EV_PERSIST, watch_dispatch, set);
    if (set->ev == NULL || event_add(set->ev, NULL) != 0) {
        tpr_watch_set_free(set);
        return TORPOR_ENOMEM;
    }
    *out = set;
    return TORPOR_OK;
}

void
tpr_watch_set_free(struct tpr_watch_set *set)
{
    if (set == NULL) {
        return;
    }
    if (set->ev != NULL) {
        event_free(set->ev);
    }
    pthread_mutex_destroy(&set->lock);
    close(set->epfd);
    free(set);
}

/* watch_tag finds or interns cb; TORPOR_ELIMIT once the table is full. */
static torpor_err
watch_tag(struct tpr_watch_set *set, torpor_watch_cb cb, uint64_t *tag)
{
    unsigned n = __atomic_load_n(&set->ncbs, __ATOMIC_ACQUIRE);
    torpor_err err = TORPOR_OK;

    for (unsigned i = 0; i < n; i++) {
        if (set->cbs[i] == cb) {
            *tag = i;
            return TORPOR_OK;
        }
    }
    pthread_mutex_lock(&set->lock);
    n = set->ncbs;
    unsigned i = 0;
    while (i < n && set->cbs[i] != cb) {
        i++;
    }
    if (i == n && n == TORPOR_WATCH_CALLBACKS_MAX) {
        err = TORPOR_ELIMIT;
    } else if (i == n) {
        set->cbs[n] = cb;
        __atomic_store_n(&set->ncbs, n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&set->lock);
    *tag = i;
    return err;
}

/* watch_entry builds the epoll entry of (events, cb, arg). */
static torpor_err
watch_entry(struct tpr_watch_set *set, unsigned events, torpor_watch_cb cb,
            void *arg, struct epoll_event *out)
{
    uint64_t tag;

    if (cb == NULL || arg == NULL || ((uintptr_t)arg & WATCH_TAG_MASK) != 0
        || (events & ~(unsigned)(TORPOR_IO_READ | TORPOR_IO_WRITE)) != 0) {
        return TORPOR_EINVAL;
    }
    torpor_err err = watch_tag(set, cb, &tag);
    if (err != TORPOR_OK) {
        return err;
    }
    out->events = 0;
    if (events & TORPOR_IO_READ) {
        out->events |= EPOLLIN;
    }
    if (events & TORPOR_IO_WRITE) {
        out->events |= EPOLLOUT;
    }
    out->data.u64 = (uint64_t)(uintptr_t)arg | tag;
    return TORPOR_OK;
}

static torpor_err
watch_errno(int err)
{
    switch (err) {
    case EEXIST:
        return TORPOR_EEXIST;
    case ENOENT:
        return TORPOR_ENOENT;
    case ENOMEM:
        return TORPOR_ENOMEM;
    case ENOSPC: /* fs.epoll.max_user_watches */
        return TORPOR_ELIMIT;
    case EBADF:
    case EPERM: /* a descriptor epoll cannot watch, such as a file */
        return TORPOR_EINVAL;
    default:
        return TORPOR_EIO;
    }
}

/* watch_strike clears the entries of arg that this batch has yet to run. */
static void
watch_strike(struct tpr_watch_set *set, void *arg)
{
    for (int i = set->ready_i + 1; i < set->ready_n; i++) {
        if ((set->ready[i].data.u64 & ~WATCH_TAG_MASK)
            == (uint64_t)(uintptr_t)arg) {
            set->ready[i].data.u64 = 0;
        }
    }
}

torpor_err
tpr_watch_add(torpor_loop *loop, int fd, unsigned events, torpor_watch_cb cb,
              void *arg)
{
    struct tpr_watch_set *set = tpr_loop_watches(loop);
    struct epoll_event e;

    if (events == 0) {
        return TORPOR_EINVAL;
    }
    torpor_err err = watch_entry(set, events, cb, arg, &e);
    if (err != TORPOR_OK) {
        return err;
    }
    return epoll_ctl(set->epfd, EPOLL_CTL_ADD, fd, &e) == 0
               ? TORPOR_OK
               : watch_errno(errno);
}

torpor_err
tpr_watch_set(torpor_loop *loop, int fd, unsigned events, torpor_watch_cb cb,
              void *arg)
{
    struct tpr_watch_set *set = tpr_loop_watches(loop);
    struct epoll_event e;

    if (events == 0) {
        tpr_watch_del(loop, fd, arg);
        return TORPOR_OK;
    }
    torpor_err err = watch_entry(set, events, cb, arg, &e);
    if (err != TORPOR_OK) {
        return err;
    }
    if (epoll_ctl(set->epfd, EPOLL_CTL_MOD, fd, &e) == 0) {
        return TORPOR_OK;
    }
    /* Out of the set since a set to 0: back in. */
    if (errno == ENOENT && epoll_ctl(set->epfd, EPOLL_CTL_ADD, fd, &e) == 0) {
        return TORPOR_OK;
    }
    return watch_errno(errno);
}

void
tpr_watch_del(torpor_loop *loop, int fd, void *arg)
{
    struct tpr_watch_set *set = tpr_loop_watches(loop);

    /* ENOENT is fine: a set to 0 removed it already. */
    (void)epoll_ctl(set->epfd, EPOLL_CTL_DEL, fd, NULL);
    watch_strike(set, arg);
}
