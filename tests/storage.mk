# One suite of storage semantics, built once per backend from the same
# sources: the suite in check_storage.c, its cases one file per concern;
# the lead includes this fragment from tests/local.mk.
STORAGE_TEST_SOURCES = tests/check_storage.c tests/storage_cases.h \
	tests/storage_core.c tests/storage_ranges.c tests/storage_limits.c \
	tests/storage_alarms.c tests/storage_objects.c \
	tests/storage_durability.c tests/storage_util.c tests/storage_util.h

check_PROGRAMS += tests/check_storage_file
TESTS += tests/check_storage_file
tests_check_storage_file_SOURCES = $(STORAGE_TEST_SOURCES)
tests_check_storage_file_CPPFLAGS = $(AM_CPPFLAGS) -DSTORAGE_BACKEND_FILE
tests_check_storage_file_CFLAGS = $(TEST_CFLAGS)
tests_check_storage_file_LDADD = core/libtorpor-core.la $(TEST_LIBS)

if WITH_POSTGRES
check_PROGRAMS += tests/check_storage_postgres
TESTS += tests/check_storage_postgres
tests_check_storage_postgres_SOURCES = $(STORAGE_TEST_SOURCES)
tests_check_storage_postgres_CPPFLAGS = $(AM_CPPFLAGS) \
	-DSTORAGE_BACKEND_POSTGRES
tests_check_storage_postgres_CFLAGS = $(TEST_CFLAGS)
tests_check_storage_postgres_LDADD = core/libtorpor-core.la $(TEST_LIBS)
endif
