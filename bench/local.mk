# Benchmarks: built and run only by `make bench-storage`, never by `make
# all` or `make check`, because they take minutes and want an idle machine.
# See BENCHMARKS.md for the figures and how they were taken.
EXTRA_PROGRAMS = bench/torpor-storage-bench bench/fsync-floor
CLEANFILES += $(EXTRA_PROGRAMS)

bench_torpor_storage_bench_SOURCES = bench/storage_bench.c bench/bench_util.c \
	bench/bench_util.h
bench_torpor_storage_bench_LDADD = core/libtorpor-core.la

bench_fsync_floor_SOURCES = bench/fsync_floor.c

EXTRA_DIST += bench/run-storage.sh bench/lib.sh

BENCH_PLUGINS = plugins/file.la
if WITH_POSTGRES
BENCH_PLUGINS += plugins/postgres.la
BENCH_POSTGRES = yes
else
BENCH_POSTGRES = no
endif

# The script prints a Markdown table on stdout; its scratch files live in
# a temporary folder under /tmp (BENCH_TMPDIR overrides), removed at exit.
bench-storage: $(EXTRA_PROGRAMS) $(BENCH_PLUGINS)
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	BENCH_BINDIR='$(abs_top_builddir)/bench' \
	BENCH_PGCTL='$(abs_top_srcdir)/tests/pg/pgctl.sh' \
	BENCH_POSTGRES='$(BENCH_POSTGRES)' \
	$(SHELL) '$(abs_top_srcdir)/bench/run-storage.sh'

.PHONY: bench-storage

# Wake latency: torpord with the relay and chat classes, rooms that
# hibernate, and a client that times one message per room.  Built and run
# only by `make bench-wake`; it takes about a minute.
EXTRA_PROGRAMS += bench/torpor-wake-bench

bench_torpor_wake_bench_SOURCES = bench/wake_bench.c bench/bench_util.c \
	bench/bench_util.h

EXTRA_DIST += bench/run-wake.sh

BENCH_WAKE_PLUGINS = plugins/websocket.la plugins/relay.la plugins/chat.la \
	plugins/file.la

# Like bench-storage: a Markdown table on stdout, scratch files (torpord's
# config, log and ./torpor-data) in a temporary folder under /tmp
# (BENCH_TMPDIR overrides), removed at exit.
bench-wake: bench/torpor-wake-bench core/torpord $(BENCH_WAKE_PLUGINS)
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	BENCH_BINDIR='$(abs_top_builddir)/bench' \
	$(SHELL) '$(abs_top_srcdir)/bench/run-wake.sh'

.PHONY: bench-wake

# Backend messages over nng into a room of 100 WebSocket clients: rate and
# latency.  Built and run only by `make bench-nng`, which needs the nng
# transport (configure without --disable-nng); figures want a build
# without --enable-sanitizers.
if WITH_NNG
EXTRA_PROGRAMS += bench/torpor-nng-bench

bench_torpor_nng_bench_SOURCES = bench/nng_bench.c bench/nng_bench_ws.c \
	bench/nng_bench_ws.h bench/bench_util.c bench/bench_util.h
nodist_bench_torpor_nng_bench_SOURCES = $(PROTO_C) $(PROTO_H) \
	$(NNG_PROTO_C) $(NNG_PROTO_H)
bench_torpor_nng_bench_CFLAGS = $(AM_CFLAGS) $(NNG_CFLAGS) \
	$(PROTOBUF_C_CFLAGS)
bench_torpor_nng_bench_LDADD = $(NNG_LIBS) $(PROTOBUF_C_LIBS) -lpthread

BENCH_NNG_PLUGINS = plugins/websocket.la plugins/relay.la plugins/nng.la \
	plugins/file.la

# Like bench-wake: a Markdown table on stdout, scratch files in a
# temporary folder under /tmp (BENCH_TMPDIR overrides), removed at exit.
bench-nng: bench/torpor-nng-bench core/torpord $(BENCH_NNG_PLUGINS)
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	BENCH_BINDIR='$(abs_top_builddir)/bench' \
	$(SHELL) '$(abs_top_srcdir)/bench/run-nng.sh'
else
bench-nng:
	@echo "bench-nng needs the nng transport: configure without --disable-nng" >&2; exit 1
endif

EXTRA_DIST += bench/run-nng.sh

.PHONY: bench-nng
