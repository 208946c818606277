# The backend class: room handlers in worker processes over nng.  Its
# UTF-8 check is the WebSocket plugin's, compiled in again.
if WITH_NNG
plugin_LTLIBRARIES += plugins/backend.la
plugins_backend_la_SOURCES = \
	plugins/backend/backend.h \
	plugins/backend/bk_plugin.c \
	plugins/backend/bk_room.c \
	plugins/backend/bk_call.c \
	plugins/backend/bk_apply.c \
	plugins/backend/bk_reply.c \
	plugins/backend/bk_wire.c \
	plugins/websocket/ws_utf8.c \
	plugins/websocket/ws_utf8.h
nodist_plugins_backend_la_SOURCES = $(PROTO_C) $(PROTO_H) \
	$(BACKEND_PROTO_C) $(BACKEND_PROTO_H)
plugins_backend_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/websocket
plugins_backend_la_CFLAGS = $(AM_CFLAGS) $(NNG_CFLAGS) $(PROTOBUF_C_CFLAGS)
# nng's threads outlive the socket: unloading libnng under them at exit
# would crash, so the plugin, and with it libnng, stays loaded.
plugins_backend_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_backend_la_LIBADD = $(NNG_LIBS) $(PROTOBUF_C_LIBS)
endif
