/*
 * tests/storage_durability.c: the "durability" case of check_storage.
 * What survives the runtime: a clean restart, and commits still queued
 * when the runtime is freed.
 */
#include "build-config.h"

#include <check.h>
#include <stdio.h>

#include "core/errors.h"
#include "tests/storage_cases.h"
#include "tests/storage_util.h"

/* What was committed, and only that, is there after a clean restart. */
START_TEST(test_storage_survives_restart)
{
    static const uint8_t nul_name[] = {'r', 0, 0, 'x'};
    const char *klass = st_name("restart");
    const torpor_storage_object *o1 = st_fresh_object("restart-1");
    const torpor_storage_object *o2 =
        st_object(klass, nul_name, sizeof(nul_name));
    const torpor_storage_object *o3 = st_fresh_object("restart-3");
    uint8_t all[256];

    for (size_t i = 0; i < 256; i++) {
        all[i] = (uint8_t)i;
    }
    torpor_write w1[] = {ST_PUT("a", "1"),
                         ST_PUT("c", "x"),
                         {.kind = TORPOR_WRITE_PUT,
                          .key = ST_B("b\0"),
                          .value = ST_BYTES(all, sizeof(all))},
                         ST_ALARM("t1", ST_FAR + 5),
                         ST_ALARM("t2", ST_FAR + 6)};
    torpor_write w1b[] = {ST_DEL("c"), ST_UNALARM("t2"), ST_PUT("a", "2")};
    torpor_write w2[] = {ST_PUT("k", "v"), ST_ALARM("w", ST_FAR + 7)};
    torpor_write w3[] = {ST_PUT("gone", "soon")};

    st_commit(o1, w1, ST_N(w1));
    st_commit(o1, w1b, ST_N(w1b));
    st_commit(o2, w2, ST_N(w2));
    st_commit(o3, w3, ST_N(w3));
    st_drop(o3);

    st_runtime_close();
    st_runtime_open();

    torpor_bytes keys[] = {ST_B("a"), ST_B("b\0"), ST_B("c")};
    struct st_op *op = st_get(o1, keys, ST_N(keys));
    st_assert_row(op, 0, ST_B("a"), true, ST_B("2"));
    st_assert_row(op, 1, ST_B("b\0"), true, ST_BYTES(all, sizeof(all)));
    st_assert_row(op, 2, ST_B("c"), false, ST_B(""));
    ck_assert_uint_eq(st_list_all(o1)->nrows, 2);
    op = st_alarms(o1);
    ck_assert_uint_eq(op->nalarms, 1);
    st_assert_alarm(op, 0, o1, ST_B("t1"), ST_FAR + 5);

    st_assert_value(o2, ST_B("k"), ST_B("v"));
    op = st_alarms(o2);
    ck_assert_uint_eq(op->nalarms, 1);
    st_assert_alarm(op, 0, o2, ST_B("w"), ST_FAR + 7);

    st_assert_keys(st_list_all(o3), NULL, 0);
    ck_assert_uint_eq(st_listed(o1), 1);
    ck_assert_uint_eq(st_listed(o2), 1);
    ck_assert_uint_eq(st_listed(o3), 0);

    unsigned found = 0;
    op = st_alarms_due(ST_FAR + 7, 10000);
    for (size_t i = 0; i < op->nalarms; i++) {
        if (st_object_eq(&op->alarms[i].object, o1)) {
            st_assert_alarm(op, i, o1, ST_B("t1"), ST_FAR + 5);
            found++;
        } else if (st_object_eq(&op->alarms[i].object, o2)) {
            st_assert_alarm(op, i, o2, ST_B("w"), ST_FAR + 7);
            found++;
        }
    }
    ck_assert_uint_eq(found, 2);

    /* The restarted backend takes writes again. */
    st_put1(o1, ST_B("after"), ST_B("restart"));
    st_assert_value(o1, ST_B("after"), ST_B("restart"));
}
END_TEST

/*
 * Commits still queued when the runtime is freed complete once each, in
 * order; those that reported success are there after a restart.
 */
START_TEST(test_storage_shutdown_completes_queued_commits)
{
    enum { N = 50 };
    const torpor_storage_object *o = st_fresh_object("shutdown");
    struct st_op *op[N];

    for (int i = 0; i < N; i++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "k%02d", i);
        torpor_write w = {.kind = TORPOR_WRITE_PUT,
                          .key =
                              ST_BYTES(st_dup(key, (size_t)len), (size_t)len),
                          .value = ST_B("v")};
        op[i] = st_op_new();
        ck_assert_int_eq(st_queue_commit(op[i], o, &w, 1), TORPOR_OK);
    }
    st_runtime_close(); /* asserts each completed exactly once */

    int ok = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(!op[i]->inside, "commit %d completed inside its call", i);
        ck_assert_msg(op[i]->err == TORPOR_OK || op[i]->err == TORPOR_ECLOSED,
                      "commit %d completed with %s", i,
                      tpr_strerror(op[i]->err));
        if (op[i]->err == TORPOR_OK) {
            ck_assert_msg(ok == i, "commit %d succeeded after a failed one", i);
            ok++;
        }
        if (i > 0) {
            ck_assert_uint_lt(op[i - 1]->order, op[i]->order);
        }
    }
    st_runtime_open();
    ck_assert_uint_eq(st_list_all(o)->nrows, (size_t)ok);
}
END_TEST

TCase *
storage_durability_tcase(void)
{
    TCase *tc = tcase_create("durability");

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_storage_survives_restart);
    tcase_add_test(tc, test_storage_shutdown_completes_queued_commits);
    return tc;
}
