/*
 * core/watch.h: a loop's set of watched descriptors, for transports that
 * hold many sockets.  One epoll set per loop, itself one libevent event:
 * a watched descriptor costs the core no memory of its own.
 */
#ifndef TORPOR_CORE_WATCH_H
#define TORPOR_CORE_WATCH_H

#include <torpor/host.h>

struct event_base;
struct tpr_watch_set;

/*
 * tpr_watch_set_new makes the set of a loop and registers it with base.
 * TORPOR_EIO if the kernel refuses an epoll set, TORPOR_ENOMEM.  On the
 * thread that makes the loop, before it runs.
 */
torpor_err tpr_watch_set_new(struct event_base *base,
                             struct tpr_watch_set **out);

/*
 * tpr_watch_set_free closes the set.  Descriptors still in it stay open:
 * they are their owners'.  Once the loop no longer runs.
 */
void tpr_watch_set_free(struct tpr_watch_set *set);

/* The host table's watch members; see torpor/host.h. */
torpor_err tpr_watch_add(torpor_loop *loop, int fd, unsigned events,
                         torpor_watch_cb cb, void *arg);
torpor_err tpr_watch_set(torpor_loop *loop, int fd, unsigned events,
                         torpor_watch_cb cb, void *arg);
void tpr_watch_del(torpor_loop *loop, int fd, void *arg);

#endif /* TORPOR_CORE_WATCH_H */
