/*
 * tests/storage_limits.c: the "limits" case of check_storage.  Keys,
 * values and batches at and past the runtime's limits, empty batches,
 * unknown write kinds and zero limits: each refused with its exact code
 * and never completed.
 */
#include "build-config.h"

#include <check.h>

#include "core/runtime.h"
#include "tests/storage_cases.h"
#include "tests/storage_util.h"

/* A key of max_key_bytes is kept; one byte more is refused at once. */
START_TEST(test_storage_key_limit)
{
    const torpor_storage_object *o = st_fresh_object("key-limit");
    size_t max = st_rt->storage.max_key_bytes;
    uint8_t *big = st_pattern(max + 1);
    torpor_bytes at = ST_BYTES(big, max);
    torpor_bytes over = ST_BYTES(big, max + 1);

    ck_assert_uint_eq(max, 2048);
    st_put1(o, at, ST_B("fits"));
    st_assert_value(o, at, ST_B("fits"));
    torpor_range r = {.prefix = at};
    ck_assert_uint_eq(st_list(o, &r)->nrows, 1);

    torpor_write put = {
        .kind = TORPOR_WRITE_PUT, .key = over, .value = ST_B("x")};
    torpor_write del = {.kind = TORPOR_WRITE_DELETE, .key = over};
    torpor_write alarm = {
        .kind = TORPOR_WRITE_ALARM_SET, .key = over, .time_ms = ST_FAR};
    torpor_write unalarm = {.kind = TORPOR_WRITE_ALARM_DELETE, .key = over};
    const torpor_write *each[] = {&put, &del, &alarm, &unalarm};
    for (size_t i = 0; i < ST_N(each); i++) {
        struct st_op *op = st_op_new();
        st_assert_refused(op, st_queue_commit(op, o, each[i], 1),
                          TORPOR_ELIMIT);
    }
    struct st_op *op = st_op_new();
    st_assert_refused(op, st_queue_get(op, o, &over, 1), TORPOR_ELIMIT);
    torpor_bytes mixed[] = {ST_B("a"), over};
    op = st_op_new();
    st_assert_refused(op, st_queue_get(op, o, mixed, 2), TORPOR_ELIMIT);
    torpor_range ranges[] = {
        {.prefix = over},
        {.start = over, .has_start = true},
        {.end = over, .has_end = true},
    };
    for (size_t i = 0; i < ST_N(ranges); i++) {
        op = st_op_new();
        st_assert_refused(op, st_queue_list(op, o, &ranges[i]), TORPOR_ELIMIT);
    }
    ck_assert_uint_eq(st_list_all(o)->nrows, 1);
    ck_assert_uint_eq(st_alarms(o)->nalarms, 0);
}
END_TEST

/* A value of max_value_bytes is kept whole; one byte more is refused. */
START_TEST(test_storage_value_limit)
{
    const torpor_storage_object *o = st_fresh_object("value-limit");
    size_t max = st_rt->storage.max_value_bytes;
    uint8_t *big = st_pattern(max + 1);

    ck_assert_uint_eq(max, 131072);
    st_put1(o, ST_B("at"), ST_BYTES(big, max));
    st_assert_value(o, ST_B("at"), ST_BYTES(big, max));
    struct st_op *op = st_list_all(o);
    ck_assert_uint_eq(op->nrows, 1);
    ck_assert(st_bytes_eq(op->rows[0].value, ST_BYTES(big, max)));

    torpor_write over = {.kind = TORPOR_WRITE_PUT,
                         .key = ST_B("over"),
                         .value = ST_BYTES(big, max + 1)};
    op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, &over, 1), TORPOR_ELIMIT);
    st_assert_missing(o, ST_B("over"));
}
END_TEST

/* A batch whose last write is too big is refused whole: nothing applies. */
START_TEST(test_storage_oversized_last_write_refuses_batch)
{
    const torpor_storage_object *o = st_fresh_object("refuse-batch");
    size_t max_value = st_rt->storage.max_value_bytes;
    size_t max_key = st_rt->storage.max_key_bytes;
    uint8_t *big = st_pattern(max_value + 1);

    st_put1(o, ST_B("before"), ST_B("kept"));
    torpor_write value_over[] = {
        ST_PUT("a", "1"),
        ST_PUT("b", "2"),
        ST_DEL("before"),
        ST_ALARM("al", ST_FAR),
        {.kind = TORPOR_WRITE_PUT,
         .key = ST_B("c"),
         .value = ST_BYTES(big, max_value + 1)},
    };
    struct st_op *op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, value_over, ST_N(value_over)),
                      TORPOR_ELIMIT);

    torpor_write key_over[] = {
        ST_PUT("a", "1"),
        ST_ALARM("al", ST_FAR),
        {.kind = TORPOR_WRITE_PUT,
         .key = ST_BYTES(big, max_key + 1),
         .value = ST_B("v")},
    };
    op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, key_over, ST_N(key_over)),
                      TORPOR_ELIMIT);

    torpor_bytes keys[] = {ST_B("a"), ST_B("b"), ST_B("c"), ST_B("before")};
    op = st_get(o, keys, ST_N(keys));
    st_assert_row(op, 0, ST_B("a"), false, ST_B(""));
    st_assert_row(op, 1, ST_B("b"), false, ST_B(""));
    st_assert_row(op, 2, ST_B("c"), false, ST_B(""));
    st_assert_row(op, 3, ST_B("before"), true, ST_B("kept"));
    ck_assert_uint_eq(st_list_all(o)->nrows, 1);
    ck_assert_uint_eq(st_alarms(o)->nalarms, 0);
}
END_TEST

/* A commit of no writes is malformed. */
START_TEST(test_storage_empty_batch_refused)
{
    const torpor_storage_object *o = st_fresh_object("empty-batch");
    torpor_write w = ST_PUT("a", "1");

    struct st_op *op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, &w, 0), TORPOR_EINVAL);
    op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, NULL, 0), TORPOR_EINVAL);
    st_assert_missing(o, ST_B("a"));
}
END_TEST

/* A write of unknown kind refuses its batch. */
START_TEST(test_storage_unknown_write_kind_refused)
{
    const torpor_storage_object *o = st_fresh_object("bad-kind");
    torpor_write w[] = {ST_PUT("a", "1"), {.kind = 99, .key = ST_B("b")}};
    torpor_write zero[] = {ST_PUT("a", "1"), {.kind = 0, .key = ST_B("b")}};

    struct st_op *op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, w, ST_N(w)), TORPOR_EINVAL);
    op = st_op_new();
    st_assert_refused(op, st_queue_commit(op, o, zero, ST_N(zero)),
                      TORPOR_EINVAL);
    st_assert_missing(o, ST_B("a"));
}
END_TEST

/* alarms_due and objects with limit 0 are malformed. */
START_TEST(test_storage_zero_limit_refused)
{
    struct st_op *op = st_op_new();

    st_assert_refused(op, st_queue_alarms_due(op, ST_FAR, 0), TORPOR_EINVAL);
    op = st_op_new();
    st_assert_refused(op, st_queue_objects(op, NULL, 0), TORPOR_EINVAL);
}
END_TEST

TCase *
storage_limits_tcase(void)
{
    TCase *tc = tcase_create("limits");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_storage_key_limit);
    tcase_add_test(tc, test_storage_value_limit);
    tcase_add_test(tc, test_storage_oversized_last_write_refuses_batch);
    tcase_add_test(tc, test_storage_empty_batch_refused);
    tcase_add_test(tc, test_storage_unknown_write_kind_refused);
    tcase_add_test(tc, test_storage_zero_limit_refused);
    return tc;
}
