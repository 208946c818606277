/*
 * tests/storage_core.c: the "core" case of check_storage.  Puts, gets
 * and deletes within one object: round trips, the order of rows, empty
 * and binary keys and values, overwrites, last write wins in a batch,
 * reads queued behind commits, and objects kept apart.
 */
#include "build-config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/storage_cases.h"
#include "tests/storage_util.h"

/* A committed put reads back byte for byte. */
START_TEST(test_storage_put_get_round_trip)
{
    const torpor_storage_object *o = st_fresh_object("round-trip");
    torpor_write w[] = {ST_PUT("alpha", "one"), ST_PUT("beta", "two, longer")};
    torpor_bytes keys[] = {ST_B("alpha"), ST_B("beta")};

    st_commit(o, w, ST_N(w));
    struct st_op *op = st_get(o, keys, ST_N(keys));
    ck_assert_uint_eq(op->nrows, 2);
    st_assert_row(op, 0, ST_B("alpha"), true, ST_B("one"));
    st_assert_row(op, 1, ST_B("beta"), true, ST_B("two, longer"));
}
END_TEST

/* get answers in the order asked, with found = false for missing keys. */
START_TEST(test_storage_get_rows_in_asked_order)
{
    const torpor_storage_object *o = st_fresh_object("asked-order");
    torpor_write w[] = {ST_PUT("a", "1"), ST_PUT("b", "2"), ST_PUT("c", "3")};
    torpor_bytes keys[] = {ST_B("c"), ST_B("nope"), ST_B("a"),
                           ST_B("b"), ST_B("a\0"),  ST_B("c")};

    st_commit(o, w, ST_N(w));
    struct st_op *op = st_get(o, keys, ST_N(keys));
    ck_assert_uint_eq(op->nrows, ST_N(keys));
    st_assert_row(op, 0, ST_B("c"), true, ST_B("3"));
    st_assert_row(op, 1, ST_B("nope"), false, ST_B(""));
    st_assert_row(op, 2, ST_B("a"), true, ST_B("1"));
    st_assert_row(op, 3, ST_B("b"), true, ST_B("2"));
    st_assert_row(op, 4, ST_B("a\0"), false, ST_B(""));
    st_assert_row(op, 5, ST_B("c"), true, ST_B("3"));
}
END_TEST

/* An empty value is a value: found, length 0, and listed. */
START_TEST(test_storage_empty_value_is_found)
{
    const torpor_storage_object *o = st_fresh_object("empty-value");
    torpor_bytes keys[] = {ST_B("empty"), ST_B("absent")};

    st_put1(o, ST_B("empty"), ST_B(""));
    struct st_op *op = st_get(o, keys, ST_N(keys));
    ck_assert_uint_eq(op->nrows, 2);
    st_assert_row(op, 0, ST_B("empty"), true, ST_B(""));
    ck_assert_uint_eq(op->rows[0].value.len, 0);
    st_assert_row(op, 1, ST_B("absent"), false, ST_B(""));

    op = st_list_all(o);
    ck_assert_uint_eq(op->nrows, 1);
    ck_assert(st_bytes_eq(op->rows[0].key, ST_B("empty")));
    ck_assert_uint_eq(op->rows[0].value.len, 0);
}
END_TEST

/* Keys and values keep NUL and every other byte value. */
START_TEST(test_storage_binary_keys_and_values)
{
    const torpor_storage_object *o = st_fresh_object("binary");
    uint8_t all[256];
    uint8_t rev[256];

    for (size_t i = 0; i < 256; i++) {
        all[i] = (uint8_t)i;
        rev[i] = (uint8_t)(255 - i);
    }
    torpor_write w[] = {
        {.kind = TORPOR_WRITE_PUT,
         .key = ST_B("\0k\0"),
         .value = ST_BYTES(all, sizeof(all))},
        {.kind = TORPOR_WRITE_PUT,
         .key = ST_BYTES(all, sizeof(all)),
         .value = ST_BYTES(rev, sizeof(rev))},
        {.kind = TORPOR_WRITE_PUT, .key = ST_B("\0"), .value = ST_B("\0")},
    };
    st_commit(o, w, ST_N(w));
    st_assert_value(o, ST_B("\0k\0"), ST_BYTES(all, sizeof(all)));
    st_assert_value(o, ST_BYTES(all, sizeof(all)), ST_BYTES(rev, sizeof(rev)));
    st_assert_value(o, ST_B("\0"), ST_B("\0"));
    st_assert_missing(o, ST_B("\0k"));
    st_assert_missing(o, ST_B(""));

    struct st_op *op = st_list_all(o);
    ck_assert_uint_eq(op->nrows, 3);
    st_assert_row(op, 0, ST_B("\0"), true, ST_B("\0"));
    st_assert_row(op, 1, ST_BYTES(all, sizeof(all)), true,
                  ST_BYTES(rev, sizeof(rev)));
    st_assert_row(op, 2, ST_B("\0k\0"), true, ST_BYTES(all, sizeof(all)));
}
END_TEST

/* A put replaces the value whole, longer or shorter. */
START_TEST(test_storage_overwrite)
{
    const torpor_storage_object *o = st_fresh_object("overwrite");

    st_put1(o, ST_B("k"), ST_B("first"));
    st_put1(o, ST_B("k"), ST_B("second, and longer than the first"));
    st_assert_value(o, ST_B("k"), ST_B("second, and longer than the first"));
    st_put1(o, ST_B("k"), ST_B("3"));
    st_assert_value(o, ST_B("k"), ST_B("3"));
    st_put1(o, ST_B("k"), ST_B(""));
    st_assert_value(o, ST_B("k"), ST_B(""));
    ck_assert_uint_eq(st_list_all(o)->nrows, 1);
}
END_TEST

/* delete removes one key; deleting a missing key succeeds. */
START_TEST(test_storage_delete)
{
    const torpor_storage_object *o = st_fresh_object("delete");
    torpor_write put[] = {ST_PUT("a", "1"), ST_PUT("b", "2")};
    torpor_write del[] = {ST_DEL("a")};
    torpor_write del_missing[] = {ST_DEL("never"), ST_DEL("a")};

    st_commit(o, put, ST_N(put));
    st_commit(o, del, ST_N(del));
    st_assert_missing(o, ST_B("a"));
    st_assert_value(o, ST_B("b"), ST_B("2"));
    st_commit(o, del_missing, ST_N(del_missing));
    st_assert_value(o, ST_B("b"), ST_B("2"));
    torpor_bytes left[] = {ST_B("b")};
    struct st_op *op = st_list_all(o);
    ck_assert_uint_eq(op->nrows, 1);
    ck_assert(st_bytes_eq(op->rows[0].key, left[0]));
    /* A key deleted can be put again. */
    st_put1(o, ST_B("a"), ST_B("again"));
    st_assert_value(o, ST_B("a"), ST_B("again"));
}
END_TEST

/* Within a batch the later write to a key wins. */
START_TEST(test_storage_batch_last_write_wins)
{
    const torpor_storage_object *o = st_fresh_object("last-wins");
    torpor_write w[] = {
        ST_PUT("k", "1"), ST_PUT("k", "2"), ST_DEL("j"),
        ST_PUT("j", "3"), ST_PUT("m", "x"), ST_DEL("m"),
        ST_PUT("n", "a"), ST_DEL("n"),      ST_PUT("n", "b"),
    };

    st_commit(o, w, ST_N(w));
    st_assert_value(o, ST_B("k"), ST_B("2"));
    st_assert_value(o, ST_B("j"), ST_B("3"));
    st_assert_missing(o, ST_B("m"));
    st_assert_value(o, ST_B("n"), ST_B("b"));
    ck_assert_uint_eq(st_list_all(o)->nrows, 3);
}
END_TEST

/* A read queued right after a commit, without waiting, sees the commit. */
START_TEST(test_storage_read_your_writes)
{
    const torpor_storage_object *o = st_fresh_object("ryw");
    torpor_write put1[] = {ST_PUT("k", "v1")};
    torpor_write del[] = {ST_DEL("k")};
    torpor_write put2[] = {ST_PUT("k", "v2"), ST_PUT("j", "w")};
    torpor_bytes key = ST_B("k");
    torpor_range all = {0};
    struct st_op *op[6];

    for (size_t i = 0; i < ST_N(op); i++) {
        op[i] = st_op_new();
    }
    ck_assert_int_eq(st_queue_commit(op[0], o, put1, 1), TORPOR_OK);
    ck_assert_int_eq(st_queue_get(op[1], o, &key, 1), TORPOR_OK);
    ck_assert_int_eq(st_queue_commit(op[2], o, del, 1), TORPOR_OK);
    ck_assert_int_eq(st_queue_get(op[3], o, &key, 1), TORPOR_OK);
    ck_assert_int_eq(st_queue_commit(op[4], o, put2, 2), TORPOR_OK);
    ck_assert_int_eq(st_queue_list(op[5], o, &all), TORPOR_OK);
    st_wait(op[5]);
    st_settle();
    for (size_t i = 0; i < ST_N(op); i++) {
        ck_assert_int_eq(op[i]->err, TORPOR_OK);
        if (i > 0) {
            ck_assert_uint_lt(op[i - 1]->order, op[i]->order);
        }
    }
    st_assert_row(op[1], 0, key, true, ST_B("v1"));
    st_assert_row(op[3], 0, key, false, ST_B(""));
    ck_assert_uint_eq(op[5]->nrows, 2);
    st_assert_row(op[5], 0, ST_B("j"), true, ST_B("w"));
    st_assert_row(op[5], 1, ST_B("k"), true, ST_B("v2"));
}
END_TEST

/* Many commits queued to one object complete in the order queued. */
START_TEST(test_storage_commits_complete_in_queue_order)
{
    enum { N = 200 };
    const torpor_storage_object *o = st_fresh_object("queue-order");
    struct st_op *op[N];

    for (int i = 0; i < N; i++) {
        char num[16];
        char key[16];
        int nl = snprintf(num, sizeof(num), "%d", i);
        int kl = snprintf(key, sizeof(key), "k%03d", i);
        torpor_write w[] = {
            {.kind = TORPOR_WRITE_PUT,
             .key = ST_B("last"),
             .value = ST_BYTES(st_dup(num, (size_t)nl), (size_t)nl)},
            {.kind = TORPOR_WRITE_PUT,
             .key = ST_BYTES(st_dup(key, (size_t)kl), (size_t)kl),
             .value = ST_B("")},
        };
        op[i] = st_op_new();
        ck_assert_int_eq(st_queue_commit(op[i], o, w, ST_N(w)), TORPOR_OK);
    }
    st_settle();
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(op[i]->err, TORPOR_OK);
        if (i > 0) {
            ck_assert_msg(op[i - 1]->order < op[i]->order,
                          "commit %d completed before commit %d", i, i - 1);
        }
    }
    st_assert_value(o, ST_B("last"), ST_B("199"));
    ck_assert_uint_eq(st_list_all(o)->nrows, N + 1);
}
END_TEST

/* The same key in two objects holds two values. */
START_TEST(test_storage_objects_isolated)
{
    const char *name = st_name("isolated");
    const torpor_storage_object *a = st_object("storage", name, strlen(name));
    const torpor_storage_object *b = st_fresh_object("isolated-other");
    const torpor_storage_object *c =
        st_object("storage-other", name, strlen(name));

    st_put1(a, ST_B("k"), ST_B("in a"));
    st_put1(b, ST_B("k"), ST_B("in b"));
    st_put1(c, ST_B("k"), ST_B("in c"));
    st_put1(b, ST_B("only-b"), ST_B("1"));
    st_assert_value(a, ST_B("k"), ST_B("in a"));
    st_assert_value(b, ST_B("k"), ST_B("in b"));
    st_assert_value(c, ST_B("k"), ST_B("in c"));
    st_assert_missing(a, ST_B("only-b"));
    ck_assert_uint_eq(st_list_all(a)->nrows, 1);

    torpor_write del[] = {ST_DEL("k")};
    st_commit(a, del, 1);
    st_assert_missing(a, ST_B("k"));
    st_assert_value(b, ST_B("k"), ST_B("in b"));
    st_assert_value(c, ST_B("k"), ST_B("in c"));
    ck_assert_uint_eq(st_list_all(b)->nrows, 2);
}
END_TEST

TCase *
storage_core_tcase(void)
{
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_storage_put_get_round_trip);
    tcase_add_test(tc, test_storage_get_rows_in_asked_order);
    tcase_add_test(tc, test_storage_empty_value_is_found);
    tcase_add_test(tc, test_storage_binary_keys_and_values);
    tcase_add_test(tc, test_storage_overwrite);
    tcase_add_test(tc, test_storage_delete);
    tcase_add_test(tc, test_storage_batch_last_write_wins);
    tcase_add_test(tc, test_storage_read_your_writes);
    tcase_add_test(tc, test_storage_commits_complete_in_queue_order);
    tcase_add_test(tc, test_storage_objects_isolated);
    return tc;
}
