/*
 * tests/storage_objects.c: the "objects" case of check_storage.  Paging
 * through objects by id, which objects are listed, drop, and a thousand
 * objects queued at once.
 */
#include "build-config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/storage_cases.h"
#include "tests/storage_util.h"

/* Paging by "after" visits every object once, in ascending id order. */
START_TEST(test_storage_objects_paging)
{
    enum { N = 250, PAGE = 100 };
    const char *klass = st_name("enum");
    const torpor_storage_object *objs[N];
    bool seen[N] = {false};
    const uint8_t *after = NULL;
    size_t total = 0;
    size_t pages = 0;

    for (int i = 0; i < N; i++) {
        uint8_t name[] = {'o', 0, (uint8_t)(i >> 8), (uint8_t)i, 0xff, 0};
        objs[i] = st_object(klass, name, sizeof(name));
        torpor_write w = ST_PUT("k", "v");
        struct st_op *op = st_op_new();
        ck_assert_int_eq(st_queue_commit(op, objs[i], &w, 1), TORPOR_OK);
    }
    st_settle();

    for (;;) {
        struct st_op *op = st_objects(after, PAGE);
        ck_assert_uint_le(op->nobjs, PAGE);
        pages++;
        ck_assert_uint_lt(pages, 100000);
        for (size_t j = 0; j < op->nobjs; j++) {
            const torpor_storage_object *got = &op->objs[j];
            if (after != NULL) {
                ck_assert_msg(memcmp(after, got->id, 16) < 0,
                              "page %zu row %zu: id not above the previous one",
                              pages, j);
            }
            after = got->id;
            total++;
            ck_assert_ptr_nonnull(got->class_name);
            if (strcmp(got->class_name, klass) != 0) {
                continue;
            }
            int k = 0;
            while (k < N && memcmp(objs[k]->id, got->id, 16) != 0) {
                k++;
            }
            ck_assert_msg(k < N,
                          "an object of this test's class that it never wrote");
            ck_assert_msg(!seen[k], "object %d listed twice", k);
            ck_assert_msg(st_object_eq(got, objs[k]),
                          "object %d listed with another name", k);
            seen[k] = true;
        }
        if (op->nobjs < PAGE) {
            break;
        }
    }
    for (int k = 0; k < N; k++) {
        ck_assert_msg(seen[k], "object %d never listed", k);
    }
#ifdef STORAGE_BACKEND_FILE
    /* A fresh data folder holds this test's objects only. */
    ck_assert_uint_eq(total, N);
    ck_assert_uint_eq(pages, 3);
#endif
}
END_TEST

/* An object with only an alarm is listed; one emptied of all is not. */
START_TEST(test_storage_objects_have_data_or_alarms)
{
    const torpor_storage_object *data = st_fresh_object("has-data");
    const torpor_storage_object *alarm = st_fresh_object("has-alarm");
    torpor_write put[] = {ST_PUT("k", "v")};
    torpor_write set[] = {ST_ALARM("a", ST_FAR)};
    torpor_write del[] = {ST_DEL("k")};
    torpor_write unset[] = {ST_UNALARM("a")};

    ck_assert_uint_eq(st_listed(data), 0);
    st_commit(data, put, 1);
    st_commit(alarm, set, 1);
    ck_assert_uint_eq(st_listed(data), 1);
    ck_assert_uint_eq(st_listed(alarm), 1);
    st_commit(data, del, 1);
    st_commit(alarm, unset, 1);
    ck_assert_uint_eq(st_listed(data), 0);
    ck_assert_uint_eq(st_listed(alarm), 0);
}
END_TEST

/* drop removes one object's keys and alarms and leaves the others. */
START_TEST(test_storage_drop)
{
    const torpor_storage_object *gone = st_fresh_object("drop-gone");
    const torpor_storage_object *kept = st_fresh_object("drop-kept");
    torpor_write w[] = {ST_PUT("a", "1"), ST_PUT("b", "2"),
                        ST_ALARM("x", ST_FAR + 1), ST_ALARM("y", ST_FAR + 2)};

    st_commit(gone, w, ST_N(w));
    st_commit(kept, w, ST_N(w));
    st_drop(gone);
    st_assert_keys(st_list_all(gone), NULL, 0);
    st_assert_missing(gone, ST_B("a"));
    ck_assert_uint_eq(st_alarms(gone)->nalarms, 0);
    ck_assert_uint_eq(st_listed(gone), 0);

    st_assert_value(kept, ST_B("a"), ST_B("1"));
    ck_assert_uint_eq(st_list_all(kept)->nrows, 2);
    ck_assert_uint_eq(st_alarms(kept)->nalarms, 2);
    ck_assert_uint_eq(st_listed(kept), 1);

    struct st_op *due = st_alarms_due(ST_FAR + 2, 10000);
    ck_assert_uint_lt(due->nalarms, 10000);
    unsigned of_kept = 0;
    for (size_t i = 0; i < due->nalarms; i++) {
        const torpor_storage_object *a = &due->alarms[i].object;
        ck_assert_msg(memcmp(a->id, gone->id, 16) != 0,
                      "a dropped object's alarm is still due");
        of_kept += memcmp(a->id, kept->id, 16) == 0;
    }
    ck_assert_uint_eq(of_kept, 2);

    /* Dropping nothing is fine; a dropped object can be written again. */
    st_drop(st_fresh_object("drop-never"));
    st_drop(gone);
    st_put1(gone, ST_B("c"), ST_B("3"));
    st_assert_value(gone, ST_B("c"), ST_B("3"));
    st_assert_missing(gone, ST_B("a"));
    ck_assert_uint_eq(st_listed(gone), 1);
}
END_TEST

/* A thousand objects of a few keys each, queued at once, all read back. */
START_TEST(test_storage_many_objects)
{
    enum { N = 1000 };
    const torpor_storage_object *objs[N];
    struct st_op *gets[N];
    torpor_bytes keys[] = {ST_B("k0"), ST_B("k1"), ST_B("k2")};

    for (int i = 0; i < N; i++) {
        char value[32];
        int len = snprintf(value, sizeof(value), "value %d", i);
        torpor_bytes v = ST_BYTES(st_dup(value, (size_t)len), (size_t)len);
        torpor_write w[] = {
            {.kind = TORPOR_WRITE_PUT, .key = keys[0], .value = v},
            {.kind = TORPOR_WRITE_PUT, .key = keys[1], .value = ST_B("")},
            {.kind = TORPOR_WRITE_PUT, .key = keys[2], .value = keys[2]},
        };
        objs[i] = st_fresh_object("many");
        struct st_op *op = st_op_new();
        ck_assert_int_eq(st_queue_commit(op, objs[i], w, ST_N(w)), TORPOR_OK);
    }
    st_settle();
    for (int i = 0; i < N; i++) {
        gets[i] = st_op_new();
        ck_assert_int_eq(st_queue_get(gets[i], objs[i], keys, ST_N(keys)),
                         TORPOR_OK);
    }
    st_settle();
    for (int i = 0; i < N; i++) {
        char value[32];
        int len = snprintf(value, sizeof(value), "value %d", i);
        ck_assert_int_eq(gets[i]->err, TORPOR_OK);
        ck_assert_uint_eq(gets[i]->nrows, 3);
        st_assert_row(gets[i], 0, keys[0], true, ST_BYTES(value, (size_t)len));
        st_assert_row(gets[i], 1, keys[1], true, ST_B(""));
        st_assert_row(gets[i], 2, keys[2], true, keys[2]);
    }
#ifdef STORAGE_BACKEND_FILE
    size_t total = 0;
    const uint8_t *after = NULL;
    for (;;) {
        struct st_op *op = st_objects(after, 333);
        total += op->nobjs;
        if (op->nobjs < 333) {
            break;
        }
        after = op->objs[op->nobjs - 1].id;
    }
    ck_assert_uint_eq(total, N);
#endif
}
END_TEST

TCase *
storage_objects_tcase(void)
{
    TCase *tc = tcase_create("objects");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_storage_objects_paging);
    tcase_add_test(tc, test_storage_objects_have_data_or_alarms);
    tcase_add_test(tc, test_storage_drop);
    tcase_add_test(tc, test_storage_many_objects);
    return tc;
}
