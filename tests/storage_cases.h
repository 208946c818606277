/*
 * tests/storage_cases.h: the cases of check_storage, one source file per
 * concern (tests/storage_<concern>.c), each built into every backend's
 * binary (STORAGE_BACKEND_FILE, STORAGE_BACKEND_POSTGRES), so both answer
 * to the same tests.
 *
 * Each builder returns a new case named after its concern, with its tests
 * and timeout; the suite in check_storage.c adds the harness's fixtures
 * (tests/storage_util.h) and owns the case from then on.
 *
 * The postgres binary shares one database between its tests: each test
 * uses objects named for it alone, keeps its alarms at or after ST_FAR
 * except the alarms_due test, and never expects the whole database to
 * hold only its own objects.
 */
#ifndef TORPOR_TESTS_STORAGE_CASES_H
#define TORPOR_TESTS_STORAGE_CASES_H

#include <check.h>

/* storage_core_tcase: puts, gets, deletes and batches of one object. */
TCase *storage_core_tcase(void);
/* storage_ranges_tcase: list with prefixes, bounds, reverse and limit. */
TCase *storage_ranges_tcase(void);
/* storage_limits_tcase: sizes and arguments refused with exact codes. */
TCase *storage_limits_tcase(void);
/* storage_alarms_tcase: named alarms, alarms_due, alarms in batches. */
TCase *storage_alarms_tcase(void);
/* storage_objects_tcase: paging through objects, drop, many objects. */
TCase *storage_objects_tcase(void);
/* storage_durability_tcase: restarts and shutdown with queued commits. */
TCase *storage_durability_tcase(void);

#endif /* TORPOR_TESTS_STORAGE_CASES_H */
