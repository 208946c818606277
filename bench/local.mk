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

# torpor against the servers people pick instead (bench/peers/: workerd,
# a Node ws relay, Socket.IO with Redis) and against the kernel's floor.
# torpor-bench is the load generator, floor a relay that does nothing but
# the system calls.  Both are built by `make check` too, whose smoke test
# (tests/integration/bench_smoke.sh) keeps them working; `make bench`
# runs the comparison, about 10 minutes at full size (see BENCHMARKS.md).
check_PROGRAMS += bench/torpor-bench bench/floor

bench_torpor_bench_SOURCES = bench/tb.h bench/tb_main.c bench/tb_run.c \
	bench/tb_run.h bench/tb_client.c bench/tb_client.h bench/tb_conn.c \
	bench/tb_phase.c bench/tb_wire.c bench/tb_wire.h bench/tb_proc.c \
	bench/tb_proc.h bench/tb_hist.c bench/tb_hist.h bench/bench_util.c \
	bench/bench_util.h
bench_torpor_bench_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
bench_torpor_bench_LDADD = $(LIBEVENT_LIBS)

bench_floor_SOURCES = bench/floor.c bench/bench_util.c bench/bench_util.h

EXTRA_DIST += bench/run-peers.sh bench/report-peers.sh bench/plot-peers.gp \
	bench/peers/install.sh bench/peers/servers.sh \
	bench/peers/package.json bench/peers/package-lock.json \
	bench/peers/ws-relay.mjs bench/peers/socketio-relay.mjs \
	bench/peers/workerd/relay.js bench/peers/workerd/relay.capnp

BENCH_PEERS_PLUGINS = plugins/websocket.la plugins/relay.la

# Writes bench/results/peers.md and its plots into the source tree, to be
# read with BENCHMARKS.md.  Needs bench/peers/install.sh run once.  The
# sizes come from BENCH_* variables in the environment (run-peers.sh).
bench: bench/torpor-bench bench/floor core/torpord $(BENCH_PEERS_PLUGINS)
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	BENCH_BINDIR='$(abs_top_builddir)/bench' \
	BENCH_SANITIZED='$(SAN_CFLAGS)' \
	bash '$(abs_top_srcdir)/bench/run-peers.sh'

.PHONY: bench
