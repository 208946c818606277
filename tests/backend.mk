# The backend class: its wire format checked against protobuf-c, compiled
# from the plugin's own files; its integration tests are listed in
# tests/integration/local.mk.  Included from tests/local.mk.
if WITH_NNG
check_PROGRAMS += tests/check_backend_wire
TESTS += tests/check_backend_wire
tests_check_backend_wire_SOURCES = tests/check_backend_wire.c \
	plugins/backend/bk_wire.c plugins/backend/bk_reply.c \
	plugins/websocket/ws_utf8.c
nodist_tests_check_backend_wire_SOURCES = $(PROTO_C) $(PROTO_H) \
	$(BACKEND_PROTO_C) $(BACKEND_PROTO_H)
tests_check_backend_wire_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/plugins/backend -I$(top_srcdir)/plugins/websocket
tests_check_backend_wire_CFLAGS = $(TEST_CFLAGS) $(NNG_CFLAGS) \
	$(PROTOBUF_C_CFLAGS)
tests_check_backend_wire_LDADD = $(TEST_LIBS) $(PROTOBUF_C_LIBS)
endif
