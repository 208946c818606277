/*
 * tests/storage_alarms.c: the "alarms" case of check_storage.  Named
 * alarms set, overwritten and deleted, kept apart from keys, due across
 * objects in time order, and atomic with the rest of their batch.
 */
#include "build-config.h"

#include <check.h>

#include "core/runtime.h"
#include "tests/storage_cases.h"
#include "tests/storage_util.h"

/* Named alarms are set, overwritten and deleted one by one. */
START_TEST(test_storage_alarms_set_overwrite_delete)
{
    const torpor_storage_object *o = st_fresh_object("alarms");
    const torpor_storage_object *other = st_fresh_object("alarms-other");
    torpor_write set[] = {ST_ALARM("a1", ST_FAR + 1),
                          ST_ALARM("a\0b", ST_FAR + 2)};
    torpor_write again[] = {ST_ALARM("a1", ST_FAR + 3)};
    torpor_write del[] = {ST_UNALARM("a\0b"), ST_UNALARM("never")};

    st_commit(o, set, ST_N(set));
    struct st_op *op = st_alarms_by_name(o);
    ck_assert_uint_eq(op->nalarms, 2);
    st_assert_alarm(op, 0, o, ST_B("a\0b"), ST_FAR + 2);
    st_assert_alarm(op, 1, o, ST_B("a1"), ST_FAR + 1);
    ck_assert_uint_eq(st_alarms(other)->nalarms, 0);

    st_commit(o, again, ST_N(again));
    op = st_alarms_by_name(o);
    ck_assert_uint_eq(op->nalarms, 2);
    st_assert_alarm(op, 0, o, ST_B("a\0b"), ST_FAR + 2);
    st_assert_alarm(op, 1, o, ST_B("a1"), ST_FAR + 3);

    st_commit(o, del, ST_N(del));
    op = st_alarms_by_name(o);
    ck_assert_uint_eq(op->nalarms, 1);
    st_assert_alarm(op, 0, o, ST_B("a1"), ST_FAR + 3);
}
END_TEST

/* Alarms and keys are apart: neither a put nor a delete touches an alarm. */
START_TEST(test_storage_alarms_apart_from_keys)
{
    const torpor_storage_object *o = st_fresh_object("alarm-keys");
    torpor_write w[] = {ST_PUT("same", "v"), ST_ALARM("same", ST_FAR)};
    torpor_write unalarm[] = {ST_UNALARM("same")};
    torpor_write alarm[] = {ST_ALARM("same", ST_FAR + 1)};
    torpor_write del[] = {ST_DEL("same")};

    st_commit(o, w, ST_N(w));
    ck_assert_uint_eq(st_list_all(o)->nrows, 1);
    st_commit(o, unalarm, 1);
    st_assert_value(o, ST_B("same"), ST_B("v"));
    ck_assert_uint_eq(st_alarms(o)->nalarms, 0);
    st_commit(o, alarm, 1);
    st_commit(o, del, 1);
    st_assert_missing(o, ST_B("same"));
    struct st_op *op = st_alarms(o);
    ck_assert_uint_eq(op->nalarms, 1);
    st_assert_alarm(op, 0, o, ST_B("same"), ST_FAR + 1);
}
END_TEST

/* alarms_due returns due alarms of every object, earliest first, limited. */
START_TEST(test_storage_alarms_due_across_objects)
{
    static const uint8_t nul_name[] = {'d', 0, 'u', 0, 'e'};
    const torpor_storage_object *o1 = st_fresh_object("due-1");
    const torpor_storage_object *o2 =
        st_object("storage-due", nul_name, sizeof(nul_name));
    const torpor_storage_object *o3 = st_fresh_object("due-3");
    const torpor_storage_object *o4 = st_fresh_object("due-4");
    torpor_write w1[] = {ST_ALARM("x", 1000), ST_ALARM("y", 5000)};
    torpor_write w2[] = {ST_ALARM("x", 2000), ST_PUT("k", "v")};
    torpor_write w3[] = {ST_ALARM("z", 3000)};
    torpor_write w4[] = {ST_ALARM("w", 9000)};

    st_commit(o4, w4, ST_N(w4));
    st_commit(o3, w3, ST_N(w3));
    st_commit(o1, w1, ST_N(w1));
    st_commit(o2, w2, ST_N(w2));

    struct st_op *op = st_alarms_due(3000, 10);
    ck_assert_uint_eq(op->nalarms, 3);
    st_assert_alarm(op, 0, o1, ST_B("x"), 1000);
    st_assert_alarm(op, 1, o2, ST_B("x"), 2000);
    st_assert_alarm(op, 2, o3, ST_B("z"), 3000);

    op = st_alarms_due(3000, 2);
    ck_assert_uint_eq(op->nalarms, 2);
    st_assert_alarm(op, 0, o1, ST_B("x"), 1000);
    st_assert_alarm(op, 1, o2, ST_B("x"), 2000);

    /* Due at or before: an alarm at exactly before_ms is due. */
    op = st_alarms_due(1000, 1);
    ck_assert_uint_eq(op->nalarms, 1);
    st_assert_alarm(op, 0, o1, ST_B("x"), 1000);
    ck_assert_uint_eq(st_alarms_due(999, 10)->nalarms, 0);

    op = st_alarms_due(9000, 10);
    ck_assert_uint_eq(op->nalarms, 5);
    st_assert_alarm(op, 3, o1, ST_B("y"), 5000);
    st_assert_alarm(op, 4, o4, ST_B("w"), 9000);

    torpor_write unalarm[] = {ST_UNALARM("x")};
    st_commit(o2, unalarm, 1);
    op = st_alarms_due(3000, 10);
    ck_assert_uint_eq(op->nalarms, 2);
    st_assert_alarm(op, 0, o1, ST_B("x"), 1000);
    st_assert_alarm(op, 1, o3, ST_B("z"), 3000);
}
END_TEST

/* An alarm set in a batch with puts lands with them, seen at once. */
START_TEST(test_storage_alarm_atomic_with_put)
{
    const torpor_storage_object *o = st_fresh_object("alarm-batch");
    torpor_write w[] = {ST_PUT("k", "v"), ST_ALARM("wake", ST_FAR + 9)};
    torpor_write undo[] = {ST_DEL("k"), ST_UNALARM("wake"), ST_PUT("j", "1")};
    torpor_bytes key = ST_B("k");
    struct st_op *commit = st_op_new();
    struct st_op *alarms = st_op_new();
    struct st_op *get = st_op_new();

    ck_assert_int_eq(st_queue_commit(commit, o, w, ST_N(w)), TORPOR_OK);
    ck_assert_int_eq(st_queue_alarms(alarms, o), TORPOR_OK);
    ck_assert_int_eq(st_queue_get(get, o, &key, 1), TORPOR_OK);
    st_settle();
    ck_assert_int_eq(commit->err, TORPOR_OK);
    ck_assert_int_eq(alarms->err, TORPOR_OK);
    ck_assert_int_eq(get->err, TORPOR_OK);
    ck_assert_uint_eq(alarms->nalarms, 1);
    st_assert_alarm(alarms, 0, o, ST_B("wake"), ST_FAR + 9);
    st_assert_row(get, 0, key, true, ST_B("v"));

    st_commit(o, undo, ST_N(undo));
    st_assert_missing(o, key);
    st_assert_value(o, ST_B("j"), ST_B("1"));
    ck_assert_uint_eq(st_alarms(o)->nalarms, 0);

    /* Refused with its oversized put: the alarm does not land either. */
    uint8_t *big = st_pattern(st_rt->storage.max_value_bytes + 1);
    torpor_write refused[] = {
        ST_ALARM("late", ST_FAR),
        {.kind = TORPOR_WRITE_PUT,
         .key = ST_B("big"),
         .value = ST_BYTES(big, st_rt->storage.max_value_bytes + 1)},
    };
    struct st_op *op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, refused, ST_N(refused)),
                      TORPOR_ELIMIT);
    ck_assert_uint_eq(st_alarms(o)->nalarms, 0);
}
END_TEST

TCase *
storage_alarms_tcase(void)
{
    TCase *tc = tcase_create("alarms");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_storage_alarms_set_overwrite_delete);
    tcase_add_test(tc, test_storage_alarms_apart_from_keys);
    tcase_add_test(tc, test_storage_alarms_due_across_objects);
    tcase_add_test(tc, test_storage_alarm_atomic_with_put);
    return tc;
}
