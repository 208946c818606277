/*
 * check_storage: the semantics torpor/storage.h promises, checked against
 * a real backend through the core's storage layer.  Built once per backend
 * (STORAGE_BACKEND_FILE, STORAGE_BACKEND_POSTGRES) from the same sources,
 * so both answer to the same cases: this file holds the suite, and each
 * case's tests live in tests/storage_<concern>.c (see storage_cases.h).
 *
 * The unchecked fixture starts PostgreSQL once per binary, on the first
 * case; main stops it after the run.
 */
#include "build-config.h"

#include <check.h>
#include <stddef.h>

#include "tests/storage_cases.h"
#include "tests/storage_util.h"

static Suite *
storage_suite(void)
{
    Suite *s = suite_create("storage_" ST_BACKEND);
    TCase *cases[] = {
        storage_core_tcase(),    storage_ranges_tcase(),
        storage_limits_tcase(),  storage_alarms_tcase(),
        storage_objects_tcase(), storage_durability_tcase(),
    };

    for (size_t i = 0; i < ST_N(cases); i++) {
        tcase_add_unchecked_fixture(cases[i], st_global_setup,
                                    st_global_teardown);
        tcase_add_checked_fixture(cases[i], st_setup, st_teardown);
        suite_add_tcase(s, cases[i]);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(storage_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    st_global_cleanup();
    return failed == 0 ? 0 : 1;
}
