/*
 * tests/storage_ranges.c: the "ranges" case of check_storage.  list over
 * one object: bytewise order, prefixes, [start, end) bounds, reverse,
 * limit, a prefix with bounds, and an object never written.
 */
#include "build-config.h"

#include <check.h>
#include <string.h>

#include "tests/storage_cases.h"
#include "tests/storage_util.h"

/* list sorts keys bytewise: a prefix first, bytes unsigned. */
START_TEST(test_storage_list_bytewise_order)
{
    const torpor_storage_object *o = st_fresh_object("bytewise");
    torpor_bytes shuffled[] = {
        ST_B("b"),  ST_B("\xff"), ST_B("a\x01"), ST_B("ab"),
        ST_B("a"),  ST_B("a\0"),  ST_B("\x80"),  ST_B("\x7f"),
        ST_B("\0"), ST_B("\0\0"), ST_B("B"),     ST_B("a\xff"),
    };
    torpor_bytes sorted[] = {
        ST_B("\0"),  ST_B("\0\0"),  ST_B("B"),    ST_B("a"),
        ST_B("a\0"), ST_B("a\x01"), ST_B("ab"),   ST_B("a\xff"),
        ST_B("b"),   ST_B("\x7f"),  ST_B("\x80"), ST_B("\xff"),
    };
    torpor_bytes reversed[ST_N(sorted)];
    torpor_range rev = {.reverse = true};

    st_fill(o, shuffled, ST_N(shuffled));
    st_assert_keys(st_list_all(o), sorted, ST_N(sorted));
    for (size_t i = 0; i < ST_N(sorted); i++) {
        reversed[i] = sorted[ST_N(sorted) - 1 - i];
    }
    st_assert_keys(st_list(o, &rev), reversed, ST_N(reversed));
}
END_TEST

/* A prefix selects exactly the keys that start with it. */
START_TEST(test_storage_list_prefix)
{
    const torpor_storage_object *o = st_fresh_object("prefix");
    torpor_bytes keys[] = {
        ST_B("use"),
        ST_B("user"),
        ST_B("user:1"),
        ST_B("user:2"),
        ST_B("user;"),
        ST_B("users"),
        ST_B("x"),
        ST_B("a\xfe\xff"),
        ST_B("a\xff"),
        ST_B("a\xff\0"),
        ST_B("a\xff\xff"),
        ST_B("a\xff\xff\x01"),
        ST_B("b"),
        ST_B("p"),
        ST_B("p\0"),
        ST_B("p\0x"),
        ST_B("p\x01"),
        ST_B("\xff\xff"),
        ST_B("\xff\xff\xff"),
    };
    st_fill(o, keys, ST_N(keys));

    torpor_bytes colon[] = {ST_B("user:1"), ST_B("user:2")};
    torpor_range r = {.prefix = ST_B("user:")};
    st_assert_keys(st_list(o, &r), colon, ST_N(colon));

    torpor_bytes user[] = {ST_B("user"), ST_B("user:1"), ST_B("user:2"),
                           ST_B("user;"), ST_B("users")};
    r = (torpor_range){.prefix = ST_B("user")};
    st_assert_keys(st_list(o, &r), user, ST_N(user));

    /* A prefix ending in 0xff has no "next" prefix to stop at. */
    torpor_bytes aff[] = {ST_B("a\xff"), ST_B("a\xff\0"), ST_B("a\xff\xff"),
                          ST_B("a\xff\xff\x01")};
    r = (torpor_range){.prefix = ST_B("a\xff")};
    st_assert_keys(st_list(o, &r), aff, ST_N(aff));

    torpor_bytes ffff[] = {ST_B("\xff\xff"), ST_B("\xff\xff\xff")};
    r = (torpor_range){.prefix = ST_B("\xff\xff")};
    st_assert_keys(st_list(o, &r), ffff, ST_N(ffff));

    torpor_bytes pnul[] = {ST_B("p\0"), ST_B("p\0x")};
    r = (torpor_range){.prefix = ST_B("p\0")};
    st_assert_keys(st_list(o, &r), pnul, ST_N(pnul));

    r = (torpor_range){.prefix = ST_B("zz")};
    st_assert_keys(st_list(o, &r), NULL, 0);

    r = (torpor_range){.prefix = ST_B("")};
    ck_assert_uint_eq(st_list(o, &r)->nrows, ST_N(keys));

    torpor_bytes colon_rev[] = {ST_B("user:2"), ST_B("user:1")};
    r = (torpor_range){.prefix = ST_B("user:"), .reverse = true};
    st_assert_keys(st_list(o, &r), colon_rev, ST_N(colon_rev));
}
END_TEST

static const torpor_bytes abcde[] = {
    {"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1},
};

/* check_range lists r over a..e and expects the keys named in want. */
static void
check_range(const torpor_storage_object *o, torpor_range r, const char *want)
{
    torpor_bytes keys[8];
    size_t n = strlen(want);

    for (size_t i = 0; i < n; i++) {
        keys[i] = abcde[want[i] - 'a'];
    }
    st_assert_keys(st_list(o, &r), keys, n);
}

#define RANGE(s, e)                                                            \
    .start = ST_B(s), .end = ST_B(e), .has_start = true, .has_end = true

/* [start, end) with either bound, both or none, existing or not. */
START_TEST(test_storage_list_range_bounds)
{
    const torpor_storage_object *o = st_fresh_object("range");

    st_fill(o, abcde, ST_N(abcde));
    check_range(o, (torpor_range){RANGE("b", "d")}, "bc");
    check_range(o, (torpor_range){.start = ST_B("b"), .has_start = true},
                "bcde");
    check_range(o, (torpor_range){.end = ST_B("d"), .has_end = true}, "abc");
    check_range(o, (torpor_range){0}, "abcde");
    check_range(o, (torpor_range){RANGE("bb", "dd")}, "cd");
    check_range(o, (torpor_range){RANGE("a", "e")}, "abcd");
    check_range(o, (torpor_range){RANGE("c", "c")}, "");
    check_range(o, (torpor_range){RANGE("d", "b")}, "");
    check_range(o, (torpor_range){RANGE("b", "b\0")}, "b");
    check_range(o, (torpor_range){.end = ST_B("a"), .has_end = true}, "");
    check_range(o, (torpor_range){.start = ST_B("f"), .has_start = true}, "");
    check_range(o, (torpor_range){.start = ST_B(""), .has_start = true},
                "abcde");
    /* Bounds set but not flagged are ignored. */
    check_range(o, (torpor_range){.start = ST_B("c"), .end = ST_B("d")},
                "abcde");
}
END_TEST

/* reverse lists the same rows, descending. */
START_TEST(test_storage_list_reverse)
{
    const torpor_storage_object *o = st_fresh_object("reverse");

    st_fill(o, abcde, ST_N(abcde));
    check_range(o, (torpor_range){.reverse = true}, "edcba");
    check_range(o, (torpor_range){RANGE("b", "d"), .reverse = true}, "cb");
    check_range(
        o,
        (torpor_range){.start = ST_B("b"), .has_start = true, .reverse = true},
        "edcb");
    check_range(
        o, (torpor_range){.end = ST_B("d"), .has_end = true, .reverse = true},
        "cba");
    check_range(o, (torpor_range){RANGE("bb", "dd"), .reverse = true}, "dc");
    check_range(o, (torpor_range){RANGE("d", "b"), .reverse = true}, "");
}
END_TEST

/* limit counts rows in the listed order, ascending or descending. */
START_TEST(test_storage_list_limit)
{
    const torpor_storage_object *o = st_fresh_object("limit");

    st_fill(o, abcde, ST_N(abcde));
    check_range(o, (torpor_range){.limit = 2}, "ab");
    check_range(o, (torpor_range){.limit = 2, .reverse = true}, "ed");
    check_range(o, (torpor_range){.limit = 1}, "a");
    check_range(o, (torpor_range){.limit = 5}, "abcde");
    check_range(o, (torpor_range){.limit = 100}, "abcde");
    check_range(o, (torpor_range){.limit = 100, .reverse = true}, "edcba");
    check_range(o, (torpor_range){RANGE("b", "e"), .limit = 2}, "bc");
    check_range(o, (torpor_range){RANGE("b", "e"), .limit = 2, .reverse = true},
                "dc");
    check_range(
        o,
        (torpor_range){
            .end = ST_B("c"), .has_end = true, .limit = 1, .reverse = true},
        "b");
    check_range(
        o, (torpor_range){.start = ST_B("c"), .has_start = true, .limit = 2},
        "cd");
}
END_TEST

/* A prefix and a range together select their intersection. */
START_TEST(test_storage_list_prefix_with_range)
{
    const torpor_storage_object *o = st_fresh_object("prefix-range");
    torpor_bytes keys[] = {ST_B("o/z"), ST_B("p/a"), ST_B("p/b"),
                           ST_B("p/c"), ST_B("p/d"), ST_B("q/a")};
    torpor_bytes bc[] = {ST_B("p/b"), ST_B("p/c")};
    torpor_bytes abcd[] = {ST_B("p/a"), ST_B("p/b"), ST_B("p/c"), ST_B("p/d")};
    torpor_bytes cd[] = {ST_B("p/c"), ST_B("p/d")};
    torpor_bytes a[] = {ST_B("p/a")};
    torpor_bytes dcb[] = {ST_B("p/d"), ST_B("p/c"), ST_B("p/b")};
    torpor_bytes cb[] = {ST_B("p/c"), ST_B("p/b")};
    torpor_range r;

    st_fill(o, keys, ST_N(keys));
    r = (torpor_range){.prefix = ST_B("p/"), RANGE("p/b", "p/d")};
    st_assert_keys(st_list(o, &r), bc, ST_N(bc));
    r = (torpor_range){.prefix = ST_B("p/"), RANGE("o", "z")};
    st_assert_keys(st_list(o, &r), abcd, ST_N(abcd));
    r = (torpor_range){
        .prefix = ST_B("p/"), .start = ST_B("p/c"), .has_start = true};
    st_assert_keys(st_list(o, &r), cd, ST_N(cd));
    r = (torpor_range){
        .prefix = ST_B("p/"), .end = ST_B("p/b"), .has_end = true};
    st_assert_keys(st_list(o, &r), a, ST_N(a));
    r = (torpor_range){.prefix = ST_B("p/"), RANGE("a", "p")};
    st_assert_keys(st_list(o, &r), NULL, 0);
    r = (torpor_range){.prefix = ST_B("p/"),
                       .start = ST_B("p/a"),
                       .has_start = true,
                       .reverse = true,
                       .limit = 3};
    st_assert_keys(st_list(o, &r), dcb, ST_N(dcb));
    r = (torpor_range){
        .prefix = ST_B("p/"), RANGE("p/a", "p/d"), .reverse = true, .limit = 2};
    st_assert_keys(st_list(o, &r), cb, ST_N(cb));
}
END_TEST

/* An object nobody wrote lists, gets and alarms as empty. */
START_TEST(test_storage_unwritten_object_is_empty)
{
    const torpor_storage_object *o = st_fresh_object("unwritten");
    torpor_range r = {.prefix = ST_B("a"), .reverse = true, .limit = 3};

    st_assert_keys(st_list_all(o), NULL, 0);
    st_assert_keys(st_list(o, &r), NULL, 0);
    st_assert_missing(o, ST_B("a"));
    ck_assert_uint_eq(st_alarms(o)->nalarms, 0);
}
END_TEST

TCase *
storage_ranges_tcase(void)
{
    TCase *tc = tcase_create("ranges");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_storage_list_bytewise_order);
    tcase_add_test(tc, test_storage_list_prefix);
    tcase_add_test(tc, test_storage_list_range_bounds);
    tcase_add_test(tc, test_storage_list_reverse);
    tcase_add_test(tc, test_storage_list_limit);
    tcase_add_test(tc, test_storage_list_prefix_with_range);
    tcase_add_test(tc, test_storage_unwritten_object_is_empty);
    return tc;
}
