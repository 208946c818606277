# libtorpor: the runtime.  Built once as a convenience library, which the
# unit tests link statically to reach internals, and wrapped into the
# installed shared library with its SONAME.
noinst_LTLIBRARIES += core/libtorpor-core.la
core_libtorpor_core_la_SOURCES = \
	core/config.c core/config.h core/export.h \
	core/errors.c core/errors.h \
	core/host.c \
	core/loader.c core/loader.h \
	core/log.c core/log.h \
	core/loop.c core/loop.h \
	core/watch.c core/watch.h \
	core/object.c core/object.h core/object_internal.h \
	core/event.c core/output.c core/object_storage.c core/hibernate.c \
	core/alarm.c core/conn_extra.c core/auto_response.c core/event_hold.c \
	core/conn_store.c core/conn_store.h \
	core/room_ops.c core/room_ops.h core/room_publish.c core/room_tap.c \
	core/runtime.c core/runtime.h \
	core/storage.c core/storage.h
nodist_core_libtorpor_core_la_SOURCES = $(PROTO_C) $(PROTO_H)
core_libtorpor_core_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTORPOR_PLUGIN_DIR='"$(plugindir)"'
core_libtorpor_core_la_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) \
	$(PROTOBUF_C_CFLAGS) $(OPENSSL_CFLAGS) $(INIH_CFLAGS)
core_libtorpor_core_la_LIBADD = $(LIBEVENT_LIBS) $(PROTOBUF_C_LIBS) \
	$(OPENSSL_LIBS) $(INIH_LIBS)

lib_LTLIBRARIES += core/libtorpor.la
core_libtorpor_la_SOURCES =
core_libtorpor_la_LIBADD = core/libtorpor-core.la
core_libtorpor_la_LDFLAGS = -version-info $(LIBTORPOR_VERSION_INFO) \
	$(SAN_LDFLAGS)

bin_PROGRAMS += core/torpord
core_torpord_SOURCES = core/daemon/torpord.c
core_torpord_LDADD = core/libtorpor.la

bin_PROGRAMS += core/torporctl
core_torporctl_SOURCES = core/ctl/torporctl.c core/ctl/ctl.h \
	core/ctl/migrate.c core/ctl/sync.c core/ctl/sync.h
core_torporctl_LDADD = core/libtorpor.la
