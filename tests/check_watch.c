/*
 * check_watch: a loop's epoll set of watched descriptors (core/watch.c).
 * Real loops on real socket pairs: readiness is level-triggered, interest
 * changes take effect, a watch deleted during a batch is never called,
 * watches may be added from another thread, and bad arguments are
 * refused with their codes.
 */
#include "build-config.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/watch.h"

/* Only stops a hang; never measures anything. */
#define GUARD_MS 10000

/* What one watch saw; 8-aligned, as a watch's arg must be. */
struct seen {
    int calls;
    unsigned events;
    pthread_t thread;
    torpor_loop *loop;
    int fd;
    struct seen *other; /* for test_watch_del_strikes_pending */
    bool break_loop;
};

static bool guard_fired;

static void
on_guard(torpor_timer *timer, void *arg)
{
    (void)timer;
    guard_fired = true;
    tpr_loop_break(arg);
}

/* run_loop runs loop until a callback breaks it, for GUARD_MS at most. */
static void
run_loop(torpor_loop *loop)
{
    torpor_timer *guard;

    guard_fired = false;
    ck_assert_int_eq(tpr_timer_open(loop, on_guard, loop, &guard), TORPOR_OK);
    tpr_timer_arm(guard, GUARD_MS);
    ck_assert_int_eq(tpr_loop_run(loop), TORPOR_OK);
    tpr_timer_close(guard);
    ck_assert_msg(!guard_fired, "no callback broke the loop within %d ms",
                  GUARD_MS);
}

static void
on_ready(void *arg, unsigned events)
{
    struct seen *s = arg;

    s->calls++;
    s->events = events;
    s->thread = pthread_self();
    if (s->break_loop) {
        tpr_loop_break(s->loop);
    }
}

static void
make_pair(int fds[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds),
                     0);
}

/* A readable socket calls back with READ, again and again while unread. */
START_TEST(test_watch_level_triggered_read)
{
    torpor_loop *loop;
    struct seen s = {.break_loop = true};
    int fds[2];

    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    s.loop = loop;
    make_pair(fds);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], TORPOR_IO_READ, on_ready, &s),
                     TORPOR_OK);
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    run_loop(loop);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_uint_eq(s.events, TORPOR_IO_READ);
    /* Nothing was read: the next turn reports it again. */
    run_loop(loop);
    ck_assert_int_eq(s.calls, 2);
    tpr_watch_del(loop, fds[0], &s);
    close(fds[0]);
    close(fds[1]);
    tpr_loop_free(loop);
}
END_TEST

/*
 * watch_set switches interest; set to 0 takes the socket out.  A sentinel
 * that is always ready ends each turn, so that what the watch under test
 * would have been told in that turn is known.
 */
START_TEST(test_watch_set_changes_interest)
{
    torpor_loop *loop;
    struct seen s = {0};
    struct seen sentinel = {.break_loop = true};
    int fds[2], other[2];

    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    sentinel.loop = loop;
    make_pair(fds);
    make_pair(other);
    ck_assert_int_eq(
        tpr_watch_add(loop, other[0], TORPOR_IO_WRITE, on_ready, &sentinel),
        TORPOR_OK);
    /* Nothing to read: only the sentinel is told. */
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], TORPOR_IO_READ, on_ready, &s),
                     TORPOR_OK);
    run_loop(loop);
    ck_assert_int_eq(s.calls, 0);
    /* A fresh socket is writable. */
    ck_assert_int_eq(tpr_watch_set(loop, fds[0], TORPOR_IO_WRITE, on_ready, &s),
                     TORPOR_OK);
    run_loop(loop);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_uint_eq(s.events, TORPOR_IO_WRITE);
    /* Out of the set, even though it stays writable. */
    ck_assert_int_eq(tpr_watch_set(loop, fds[0], 0, on_ready, &s), TORPOR_OK);
    run_loop(loop);
    ck_assert_int_eq(s.calls, 1);
    /* And back in. */
    ck_assert_int_eq(tpr_watch_set(loop, fds[0],
                                   TORPOR_IO_READ | TORPOR_IO_WRITE, on_ready,
                                   &s),
                     TORPOR_OK);
    run_loop(loop);
    ck_assert_int_eq(s.calls, 2);
    ck_assert_uint_eq(s.events, TORPOR_IO_WRITE);
    tpr_watch_del(loop, fds[0], &s);
    tpr_watch_del(loop, other[0], &sentinel);
    close(fds[0]);
    close(fds[1]);
    close(other[0]);
    close(other[1]);
    tpr_loop_free(loop);
}
END_TEST

/* A hang-up is reported as both READ and WRITE, whatever was asked. */
START_TEST(test_watch_hangup_reports_both)
{
    torpor_loop *loop;
    struct seen s = {.break_loop = true};
    int fds[2];

    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    s.loop = loop;
    make_pair(fds);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], TORPOR_IO_READ, on_ready, &s),
                     TORPOR_OK);
    close(fds[1]);
    run_loop(loop);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_uint_eq(s.events, TORPOR_IO_READ | TORPOR_IO_WRITE);
    tpr_watch_del(loop, fds[0], &s);
    close(fds[0]);
    tpr_loop_free(loop);
}
END_TEST

/* Whichever of two ready watches runs first deletes the other. */
static void
on_ready_del_other(void *arg, unsigned events)
{
    struct seen *s = arg;

    (void)events;
    s->calls++;
    if (s->other->calls == 0) {
        tpr_watch_del(s->loop, s->other->fd, s->other);
    }
}

/* A watch deleted while its readiness waits in the batch is not called. */
START_TEST(test_watch_del_strikes_pending)
{
    torpor_loop *loop;
    struct seen a = {0}, b = {0};
    struct seen sentinel = {.break_loop = true};
    int fa[2], fb[2], fs[2];

    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    make_pair(fa);
    make_pair(fb);
    make_pair(fs);
    a = (struct seen){.loop = loop, .fd = fa[0], .other = &b};
    b = (struct seen){.loop = loop, .fd = fb[0], .other = &a};
    sentinel.loop = loop;
    ck_assert_int_eq(
        tpr_watch_add(loop, fa[0], TORPOR_IO_WRITE, on_ready_del_other, &a),
        TORPOR_OK);
    ck_assert_int_eq(
        tpr_watch_add(loop, fb[0], TORPOR_IO_WRITE, on_ready_del_other, &b),
        TORPOR_OK);
    ck_assert_int_eq(
        tpr_watch_add(loop, fs[0], TORPOR_IO_WRITE, on_ready, &sentinel),
        TORPOR_OK);
    /* All three are writable now, so one batch holds them all. */
    run_loop(loop);
    ck_assert_int_eq(a.calls + b.calls, 1);
    /* Nor later: it is out of the set. */
    run_loop(loop);
    ck_assert_int_eq(a.calls + b.calls, 2);
    ck_assert(a.calls == 2 || b.calls == 2);
    tpr_watch_del(loop, a.calls == 2 ? fa[0] : fb[0], a.calls == 2 ? &a : &b);
    tpr_watch_del(loop, fs[0], &sentinel);
    for (int i = 0; i < 2; i++) {
        close(fa[i]);
        close(fb[i]);
        close(fs[i]);
    }
    tpr_loop_free(loop);
}
END_TEST

struct adder {
    torpor_loop *loop;
    int fd;
    struct seen *s;
    torpor_err err;
};

static void *
add_from_thread(void *arg)
{
    struct adder *a = arg;

    a->err = tpr_watch_add(a->loop, a->fd, TORPOR_IO_WRITE, on_ready, a->s);
    return NULL;
}

/* watch_add from another thread: the callback runs on the loop's own. */
START_TEST(test_watch_add_from_another_thread)
{
    torpor_loop *loop;
    struct seen s = {.break_loop = true};
    struct adder a;
    pthread_t t;
    int fds[2];

    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    s.loop = loop;
    make_pair(fds);
    a = (struct adder){.loop = loop, .fd = fds[0], .s = &s};
    ck_assert_int_eq(pthread_create(&t, NULL, add_from_thread, &a), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(a.err, TORPOR_OK);
    run_loop(loop);
    ck_assert_int_eq(s.calls, 1);
    ck_assert(pthread_equal(s.thread, pthread_self()));
    tpr_watch_del(loop, fds[0], &s);
    close(fds[0]);
    close(fds[1]);
    tpr_loop_free(loop);
}
END_TEST

/* Nine distinct callbacks, for the limit of eight per loop. */
#define CB(n)                                                                  \
    static void cb##n(void *arg, unsigned events)                              \
    {                                                                          \
        (void)arg;                                                             \
        (void)events;                                                          \
    }
CB(0)
CB(1)
CB(2)
CB(3)
CB(4)
CB(5)
CB(6)
CB(7)
CB(8)

/* Each bad argument gets its own code, and nothing is watched. */
START_TEST(test_watch_refuses_bad_arguments)
{
    static const torpor_watch_cb cbs[9] = {cb0, cb1, cb2, cb3, cb4,
                                           cb5, cb6, cb7, cb8};
    torpor_loop *loop;
    _Alignas(8) char rec[16][16];
    int fds[2], pairs[9][2];
    char path[] = "/tmp/torpor-check-watch-XXXXXX";
    int file = mkstemp(path);

    ck_assert_int_ge(file, 0);
    unlink(path);
    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    make_pair(fds);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], TORPOR_IO_READ, cb0, NULL),
                     TORPOR_EINVAL);
    ck_assert_int_eq(
        tpr_watch_add(loop, fds[0], TORPOR_IO_READ, cb0, rec[0] + 1),
        TORPOR_EINVAL);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], 0, cb0, rec[0]),
                     TORPOR_EINVAL);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], 4, cb0, rec[0]),
                     TORPOR_EINVAL);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], TORPOR_IO_READ, NULL, rec[0]),
                     TORPOR_EINVAL);
    /* epoll cannot watch a regular file. */
    ck_assert_int_eq(tpr_watch_add(loop, file, TORPOR_IO_READ, cb0, rec[0]),
                     TORPOR_EINVAL);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], TORPOR_IO_READ, cb0, rec[0]),
                     TORPOR_OK);
    ck_assert_int_eq(tpr_watch_add(loop, fds[0], TORPOR_IO_READ, cb0, rec[0]),
                     TORPOR_EEXIST);
    /* cb0 is interned already: seven more fit, the ninth does not. */
    for (int i = 1; i < 9; i++) {
        make_pair(pairs[i]);
        ck_assert_int_eq(
            tpr_watch_add(loop, pairs[i][0], TORPOR_IO_READ, cbs[i], rec[i]),
            i < 8 ? TORPOR_OK : TORPOR_ELIMIT);
    }
    /* Those already interned still do. */
    ck_assert_int_eq(
        tpr_watch_set(loop, pairs[7][0], TORPOR_IO_WRITE, cb7, rec[7]),
        TORPOR_OK);
    for (int i = 1; i < 9; i++) {
        tpr_watch_del(loop, pairs[i][0], rec[i]);
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    tpr_watch_del(loop, fds[0], rec[0]);
    close(fds[0]);
    close(fds[1]);
    close(file);
    tpr_loop_free(loop);
}
END_TEST

static Suite *
watch_suite(void)
{
    Suite *s = suite_create("watch");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");

    tcase_set_timeout(core, 30);
    tcase_add_test(core, test_watch_level_triggered_read);
    tcase_add_test(core, test_watch_set_changes_interest);
    tcase_add_test(core, test_watch_hangup_reports_both);
    tcase_add_test(core, test_watch_del_strikes_pending);
    tcase_add_test(core, test_watch_add_from_another_thread);
    tcase_add_test(errors, test_watch_refuses_bad_arguments);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(watch_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
