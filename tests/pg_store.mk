# The postgres storage plugin's unit tests: a throwaway PostgreSQL cluster
# (tests/pg/pgctl.sh) and the plugin loaded from plugins/.libs.
if WITH_POSTGRES
check_PROGRAMS += tests/check_pg_store
tests_check_pg_store_SOURCES = tests/check_pg_store.c \
	tests/pg/harness.c tests/pg/harness.h
tests_check_pg_store_CFLAGS = $(TEST_CFLAGS) $(LIBPQ_CFLAGS)
tests_check_pg_store_LDADD = core/libtorpor-core.la $(CHECK_LIBS) \
	$(LIBPQ_LIBS)
TESTS += tests/check_pg_store
endif
EXTRA_DIST += tests/pg/pgctl.sh
