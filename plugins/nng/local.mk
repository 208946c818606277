# The nng transport: backend services reach rooms over nng (requests with
# replies, fire-and-forget requests, and the event stream).  Its protobuf
# code, generated from schemas/torpor/nng.proto and event.proto, is built
# into the plugin.  -z nodelete keeps the plugin, and with it libnng, mapped
# after dlclose: nng's own threads outlive the sockets the plugin closes.
if WITH_NNG
plugin_LTLIBRARIES += plugins/nng.la
plugins_nng_la_SOURCES = \
	plugins/nng/nngt.h \
	plugins/nng/nngt_plugin.c \
	plugins/nng/nngt_config.c \
	plugins/nng/nngt_listen.c \
	plugins/nng/nngt_request.c \
	plugins/nng/nngt_reply.c \
	plugins/nng/nngt_events.c \
	plugins/nng/nngt_topic.c
nodist_plugins_nng_la_SOURCES = $(PROTO_C) $(PROTO_H) \
	$(NNG_PROTO_C) $(NNG_PROTO_H)
plugins_nng_la_CFLAGS = $(AM_CFLAGS) $(NNG_CFLAGS) $(PROTOBUF_C_CFLAGS)
plugins_nng_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_nng_la_LIBADD = $(NNG_LIBS) $(PROTOBUF_C_LIBS)
endif
