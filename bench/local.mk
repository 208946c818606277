# Benchmarks: built and run only by `make bench-storage`, never by `make
# all` or `make check`, because they take minutes and want an idle machine.
# See BENCHMARKS.md for the figures and how they were taken.
EXTRA_PROGRAMS = bench/torpor-storage-bench bench/fsync-floor
CLEANFILES += $(EXTRA_PROGRAMS)

bench_torpor_storage_bench_SOURCES = bench/storage_bench.c
bench_torpor_storage_bench_LDADD = core/libtorpor-core.la

bench_fsync_floor_SOURCES = bench/fsync_floor.c

EXTRA_DIST += bench/run-storage.sh

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
