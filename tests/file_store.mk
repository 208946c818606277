# Unit tests of the file storage plugin: its record codec compiled in, the
# plugin itself loaded from plugins/.libs.  check_file_store covers the
# codec, configuration, operations and the lock; check_file_recover covers
# recovery and compaction.  Both share the harness in file_store_util.c.
# The lead includes this fragment from tests/local.mk.
FILE_STORE_TEST_SOURCES = tests/file_store_util.c tests/file_store_util.h \
	plugins/file/fs_record.c
FILE_STORE_TEST_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS) \
	-I$(top_srcdir)/plugins/file
FILE_STORE_TEST_LIBS = core/libtorpor-core.la $(TEST_LIBS) $(ZLIB_LIBS) \
	-lpthread

check_PROGRAMS += tests/check_file_store tests/check_file_recover
TESTS += tests/check_file_store tests/check_file_recover
tests_check_file_store_SOURCES = tests/check_file_store.c \
	$(FILE_STORE_TEST_SOURCES)
tests_check_file_store_CFLAGS = $(FILE_STORE_TEST_CFLAGS)
tests_check_file_store_LDADD = $(FILE_STORE_TEST_LIBS)
tests_check_file_recover_SOURCES = tests/check_file_recover.c \
	$(FILE_STORE_TEST_SOURCES)
tests_check_file_recover_CFLAGS = $(FILE_STORE_TEST_CFLAGS)
tests_check_file_recover_LDADD = $(FILE_STORE_TEST_LIBS)
