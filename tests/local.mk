# The test suite.  Every test speaks TAP, C and scripts alike, so `make
# check` counts single cases, not just programs.
TAP_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
LOG_DRIVER = $(TAP_DRIVER)
TEST_EXTENSIONS = .py .mjs .sh
PY_LOG_DRIVER = $(TAP_DRIVER)
PY_LOG_COMPILER = $(PYTHON3)
MJS_LOG_DRIVER = $(TAP_DRIVER)
MJS_LOG_COMPILER = $(NODE)
SH_LOG_DRIVER = $(TAP_DRIVER)
SH_LOG_COMPILER = bash

# ASan reports leaks at exit; plugins stay mapped so reports can name them.
AM_TESTS_ENVIRONMENT = \
	export TORPORD='$(abs_top_builddir)/core/torpord'; \
	export TORPORCTL='$(abs_top_builddir)/core/torporctl'; \
	export STORAGE_TOOL='$(abs_top_builddir)/tests/tools/storage_tool'; \
	export TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs'; \
	export TORPOR_FIXTURE_PATH='$(abs_top_builddir)/tests/fixtures/.libs'; \
	export TOP_BUILDDIR='$(abs_top_builddir)'; \
	export TOP_SRCDIR='$(abs_top_srcdir)'; \
	export PYTHON3='$(PYTHON3)'; \
	export NODE='$(NODE)'; \
	export TORPOR_NO_DLCLOSE=1; \
	export ASAN_OPTIONS='abort_on_error=0:detect_leaks=1'; \
	export UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1';

TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = $(CHECK_LIBS)

# Unit tests of the core link its convenience library to reach internals.
check_PROGRAMS += tests/check_config tests/check_loader tests/check_schema \
	tests/check_object_id tests/check_loop
tests_check_config_SOURCES = tests/check_config.c
tests_check_config_CFLAGS = $(TEST_CFLAGS)
tests_check_config_LDADD = core/libtorpor-core.la $(TEST_LIBS)
tests_check_loader_SOURCES = tests/check_loader.c
tests_check_loader_CFLAGS = $(TEST_CFLAGS)
tests_check_loader_LDADD = core/libtorpor-core.la $(TEST_LIBS)
tests_check_object_id_SOURCES = tests/check_object_id.c
tests_check_object_id_CFLAGS = $(TEST_CFLAGS)
tests_check_object_id_LDADD = core/libtorpor-core.la $(TEST_LIBS)
check_PROGRAMS += tests/check_watch tests/check_conn_store
tests_check_watch_SOURCES = tests/check_watch.c
tests_check_watch_CFLAGS = $(TEST_CFLAGS)
tests_check_watch_LDADD = core/libtorpor-core.la $(TEST_LIBS)
tests_check_conn_store_SOURCES = tests/check_conn_store.c
tests_check_conn_store_CFLAGS = $(TEST_CFLAGS)
tests_check_conn_store_LDADD = core/libtorpor-core.la $(TEST_LIBS)
tests_check_loop_SOURCES = tests/check_loop.c
tests_check_loop_CFLAGS = $(TEST_CFLAGS)
tests_check_loop_LDADD = core/libtorpor-core.la $(TEST_LIBS)
tests_check_schema_SOURCES = tests/check_schema.c
tests_check_schema_CFLAGS = $(TEST_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_check_schema_LDADD = core/libtorpor-core.la $(TEST_LIBS)

# Unit tests of the WebSocket plugin's codec compile its files directly.
check_PROGRAMS += tests/check_ws_frame tests/check_ws_utf8 \
	tests/check_ws_handshake tests/check_ws_deflate
tests_check_ws_frame_SOURCES = tests/check_ws_frame.c \
	plugins/websocket/ws_frame.c
tests_check_ws_frame_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/plugins/websocket
tests_check_ws_frame_LDADD = $(TEST_LIBS)
tests_check_ws_utf8_SOURCES = tests/check_ws_utf8.c \
	plugins/websocket/ws_utf8.c
tests_check_ws_utf8_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/plugins/websocket
tests_check_ws_utf8_LDADD = $(TEST_LIBS)
tests_check_ws_handshake_SOURCES = tests/check_ws_handshake.c \
	plugins/websocket/ws_handshake.c
tests_check_ws_handshake_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS) \
	-I$(top_srcdir)/plugins/websocket
tests_check_ws_handshake_LDADD = $(TEST_LIBS) $(OPENSSL_LIBS)
tests_check_ws_deflate_SOURCES = tests/check_ws_deflate.c \
	plugins/websocket/ws_deflate_negotiate.c \
	plugins/websocket/ws_deflate_config.c \
	plugins/websocket/ws_handshake.c
tests_check_ws_deflate_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS) \
	-I$(top_srcdir)/plugins/websocket
tests_check_ws_deflate_LDADD = $(TEST_LIBS) $(OPENSSL_LIBS)

# The per-route options compile with the config file they consult.
check_PROGRAMS += tests/check_ws_route
tests_check_ws_route_SOURCES = tests/check_ws_route.c \
	plugins/websocket/ws_route.c plugins/websocket/ws_config.c \
	plugins/websocket/ws_deflate_config.c plugins/websocket/ws_tls.c
tests_check_ws_route_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS) \
	-I$(top_srcdir)/plugins/websocket
tests_check_ws_route_LDADD = $(TEST_LIBS) $(OPENSSL_LIBS)
# The per-address table is included by its test, which looks inside it.
check_PROGRAMS += tests/check_ws_peer
tests_check_ws_peer_SOURCES = tests/check_ws_peer.c
tests_check_ws_peer_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/plugins/websocket
tests_check_ws_peer_LDADD = $(TEST_LIBS)

# The nng transport's config and topics, compiled from its files.
if WITH_NNG
check_PROGRAMS += tests/check_nng_config
tests_check_nng_config_SOURCES = tests/check_nng_config.c \
	plugins/nng/nngt_config.c plugins/nng/nngt_topic.c
tests_check_nng_config_CFLAGS = $(TEST_CFLAGS) $(NNG_CFLAGS) \
	$(PROTOBUF_C_CFLAGS) -I$(top_srcdir)/plugins/nng
tests_check_nng_config_LDADD = $(TEST_LIBS) $(NNG_LIBS)
TESTS += tests/check_nng_config
endif

TESTS += tests/check_config tests/check_loader tests/check_schema \
	tests/check_object_id tests/check_watch tests/check_conn_store \
	tests/check_loop \
	tests/check_ws_frame \
	tests/check_ws_utf8 tests/check_ws_handshake tests/check_ws_deflate \
	tests/check_ws_route tests/check_ws_peer


# A driver of storage backends for the crash and migration tests.
check_PROGRAMS += tests/tools/storage_tool
tests_tools_storage_tool_SOURCES = tests/tools/storage_tool.c \
	core/ctl/sync.c core/ctl/sync.h
tests_tools_storage_tool_LDADD = core/libtorpor-core.la

include tests/fixtures/local.mk
include tests/integration/local.mk
include tests/conformance/local.mk
include tests/fuzz/local.mk

include tests/storage.mk
include tests/file_store.mk
include tests/pg_store.mk
include tests/backend.mk
