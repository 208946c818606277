/*
 * check_object_id: object ids.  Named ids are hashes with the top bit
 * clear; unique ids are random with it set, and their "~hex" names give
 * them back; so no name can reach a unique object's id or the reverse.
 */
#include "build-config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core/object.h"

/* Named ids never have the top bit, whatever the name. */
START_TEST(test_object_id_named_top_bit_clear)
{
    struct tpr_object_id id;
    char name[32];

    for (int i = 0; i < 2000; i++) {
        int n = snprintf(name, sizeof(name), "room-%d", i);
        tpr_object_id_derive("chat", name, (size_t)n, &id);
        if (id.bytes[0] & 0x80) {
            ck_abort_msg("named id of %s has the top bit", name);
        }
    }
}
END_TEST

/* The same (class, name) gives the same id; another class another one. */
START_TEST(test_object_id_named_stable)
{
    struct tpr_object_id a, b, c;

    tpr_object_id_derive("chat", "lobby", 5, &a);
    tpr_object_id_derive("chat", "lobby", 5, &b);
    tpr_object_id_derive("relay", "lobby", 5, &c);
    ck_assert_mem_eq(a.bytes, b.bytes, 16);
    ck_assert(memcmp(a.bytes, c.bytes, 16) != 0);
}
END_TEST

/* A random id has the top bit; its name derives back to it. */
START_TEST(test_object_id_random_round_trip)
{
    struct tpr_object_id id, back, other;
    char name[34], name2[34];

    ck_assert_int_eq(tpr_object_id_random(&id, name), TORPOR_OK);
    ck_assert(id.bytes[0] & 0x80);
    ck_assert_uint_eq(strlen(name), 33);
    ck_assert_int_eq(name[0], '~');
    tpr_object_id_derive("any", name, 33, &back);
    ck_assert_mem_eq(back.bytes, id.bytes, 16);
    ck_assert_int_eq(tpr_object_id_random(&other, name2), TORPOR_OK);
    ck_assert(memcmp(id.bytes, other.bytes, 16) != 0);
}
END_TEST

/* "~hex" with the top bit clear, or not hex, is just a name: hashed. */
START_TEST(test_object_id_forged_unique_name_is_hashed)
{
    static const char forged[] = "~00112233445566778899aabbccddeeff";
    static const char upper[] = "~F0112233445566778899AABBCCDDEEFF";
    struct tpr_object_id id;

    tpr_object_id_derive("chat", forged, 33, &id);
    ck_assert(!(id.bytes[0] & 0x80));
    ck_assert(id.bytes[1] != 0x11 || id.bytes[2] != 0x22);
    tpr_object_id_derive("chat", upper, 33, &id);
    ck_assert(!(id.bytes[0] & 0x80));
}
END_TEST

static Suite *
object_id_suite(void)
{
    Suite *s = suite_create("object_id");
    TCase *core = tcase_create("core");

    tcase_add_test(core, test_object_id_named_top_bit_clear);
    tcase_add_test(core, test_object_id_named_stable);
    tcase_add_test(core, test_object_id_random_round_trip);
    tcase_add_test(core, test_object_id_forged_unique_name_is_hashed);
    suite_add_tcase(s, core);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(object_id_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
