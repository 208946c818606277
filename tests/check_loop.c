/*
 * check_loop: stopping an event loop.  A loop run by another thread must
 * stop when asked, whether or not that thread has reached the loop yet,
 * and only after the tasks posted before the stop have run.
 */
#include "build-config.h"

#include <check.h>
#include <pthread.h>
#include <stdbool.h>

#include "core/loop.h"

struct counted_task {
    torpor_task task;
    unsigned *ran;
};

static void
counted_task_run(torpor_task *task)
{
    struct counted_task *t = (struct counted_task *)task;

    (*t->ran)++;
}

/* A stop that comes before the loop runs still ends the run. */
START_TEST(test_loop_stop_before_run)
{
    torpor_loop *loop;

    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    tpr_loop_stop(loop);
    ck_assert_int_eq(tpr_loop_run(loop), TORPOR_OK);
    /* And the loop can be run and stopped again. */
    tpr_loop_stop(loop);
    ck_assert_int_eq(tpr_loop_run(loop), TORPOR_OK);
    tpr_loop_free(loop);
}
END_TEST

/* Tasks posted before the stop run before tpr_loop_run returns. */
START_TEST(test_loop_stop_runs_earlier_tasks)
{
    torpor_loop *loop;
    unsigned ran = 0;
    struct counted_task t[3];

    ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
    for (int i = 0; i < 3; i++) {
        t[i].task.run = counted_task_run;
        t[i].ran = &ran;
        tpr_loop_post(loop, &t[i].task);
    }
    tpr_loop_stop(loop);
    tpr_loop_stop(loop); /* a second stop while one is queued is one stop */
    ck_assert_int_eq(tpr_loop_run(loop), TORPOR_OK);
    ck_assert_uint_eq(ran, 3);
    tpr_loop_free(loop);
}
END_TEST

static void *
loop_thread(void *arg)
{
    (void)tpr_loop_run(arg);
    return NULL;
}

/*
 * A thread stopped right after it was created: whichever of the two gets
 * there first, the join returns.  Repeated so that both orders occur.
 */
START_TEST(test_loop_stop_racing_thread_start)
{
    for (int i = 0; i < 300; i++) {
        torpor_loop *loop;
        pthread_t th;

        ck_assert_int_eq(tpr_loop_new(&loop), TORPOR_OK);
        ck_assert_int_eq(pthread_create(&th, NULL, loop_thread, loop), 0);
        tpr_loop_stop(loop);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        tpr_loop_free(loop);
    }
}
END_TEST

static Suite *
loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *stop = tcase_create("stop");

    /* A lost stop hangs; the timeout turns that into a failure. */
    tcase_set_timeout(stop, 60);
    tcase_add_test(stop, test_loop_stop_before_run);
    tcase_add_test(stop, test_loop_stop_runs_earlier_tasks);
    tcase_add_test(stop, test_loop_stop_racing_thread_start);
    suite_add_tcase(s, stop);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(loop_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
