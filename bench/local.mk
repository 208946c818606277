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

# Memory per idle connection: torpord with relay rooms that hibernate, and
# client processes that hold 15,000 connections open.  Built and run only
# by `make bench-idle`; it takes about 10 s.  Figures mean something only
# from a build without sanitizers (see BENCHMARKS.md).
EXTRA_PROGRAMS += bench/torpor-idle-bench

bench_torpor_idle_bench_SOURCES = bench/idle_bench.c bench/idle_sizes.c \
	bench/idle_sizes.h bench/bench_util.c bench/bench_util.h

EXTRA_DIST += bench/run-idle.sh

BENCH_IDLE_PLUGINS = plugins/websocket.la plugins/relay.la plugins/file.la

# Like bench-wake: a Markdown table on stdout, scratch files in a
# temporary folder under /tmp (BENCH_TMPDIR overrides), removed at exit.
bench-idle: bench/torpor-idle-bench core/torpord $(BENCH_IDLE_PLUGINS)
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	BENCH_BINDIR='$(abs_top_builddir)/bench' \
	$(SHELL) '$(abs_top_srcdir)/bench/run-idle.sh'

.PHONY: bench-idle
# Memory per idle connection with permessage-deflate off, on and with
# context takeover: torpord with the relay class and a Python client of
# the standard library.  Run only by `make bench-deflate-memory`, on a
# build without sanitizers; it prints a Markdown table and takes about a
# minute.  BENCH_CONNS and BENCH_ROOMS change the load (see the script).
EXTRA_DIST += bench/deflate_memory.py

bench-deflate-memory: core/torpord plugins/websocket.la plugins/relay.la
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	$(PYTHON3) '$(abs_top_srcdir)/bench/deflate_memory.py'

.PHONY: bench-deflate-memory

# Keepalive sweep: torpord with thousands of idle connections, keepalive
# off and on, and its CPU time.  Run only by `make bench-keepalive`; it
# takes about two minutes and needs 20,000 descriptors.
EXTRA_DIST += bench/keepalive_sweep.py

bench-keepalive: core/torpord plugins/websocket.la plugins/echo.la
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	$(PYTHON3) '$(abs_top_srcdir)/bench/keepalive_sweep.py' \
		--conns 19000 --seconds 30

.PHONY: bench-keepalive

# The memory of idle WebSocket connections, ws and wss, in a hibernating
# relay room: torpord's RSS before and after a client opens BENCH_CONNS
# (2000) connections.  Run it on a build without sanitizers.  A Markdown
# table on stdout; scratch files in a temporary folder under /tmp
# (BENCH_TMPDIR overrides), removed at exit.
EXTRA_DIST += bench/run-tls-memory.sh bench/idle_conns.py

bench-tls-memory: core/torpord plugins/websocket.la plugins/relay.la
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	PYTHON3='$(PYTHON3)' \
	BENCH_SRCDIR='$(abs_top_srcdir)/bench' \
	$(SHELL) '$(abs_top_srcdir)/bench/run-tls-memory.sh'

.PHONY: bench-tls-memory

# Round trips through the backend class: torpord, C moderator workers
# over nng, and a WebSocket client, with 1 and then 4 workers.  Built and
# run only by `make bench-backend`; configure without --enable-sanitizers
# for figures.
if WITH_NNG
EXTRA_PROGRAMS += bench/torpor-backend-bench

bench_torpor_backend_bench_SOURCES = bench/backend_bench.c \
	bench/bench_util.c bench/bench_util.h

bench-backend: bench/torpor-backend-bench core/torpord \
		examples/workers/c/torpor-moderator plugins/websocket.la \
		plugins/backend.la plugins/file.la
	TORPORD='$(abs_top_builddir)/core/torpord' \
	TORPOR_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs' \
	BENCH_BINDIR='$(abs_top_builddir)/bench' \
	BENCH_WORKER='$(abs_top_builddir)/examples/workers/c/torpor-moderator' \
	$(SHELL) '$(abs_top_srcdir)/bench/run-backend.sh'
else
bench-backend:
	@echo "bench-backend needs nng: configure found none, or --disable-nng" >&2; exit 1
endif

EXTRA_DIST += bench/run-backend.sh
.PHONY: bench-backend

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
