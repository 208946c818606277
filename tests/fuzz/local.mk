# libFuzzer targets of the WebSocket plugin's parsers, built with clang
# whatever CC is (see configure.ac).  Each NAME.fuzz test replays the seeds
# in seeds/NAME and every input in regressions/NAME, then fuzzes briefly;
# `make fuzz` fuzzes each target for FUZZ_SECONDS (`make fuzz
# FUZZ_SECONDS=60`).  Without clang and libFuzzer the tests fail and say
# what to install.  Included from tests/local.mk, which exports TOP_SRCDIR
# and TOP_BUILDDIR.
#
# A target is a fuzz_NAME.c here, a NAME.fuzz test, a seeds/NAME folder and
# a line in each list below.
FUZZ_NAMES = frame handshake utf8 inflate
FUZZ_TARGETS = tests/fuzz/fuzz_frame tests/fuzz/fuzz_handshake \
	tests/fuzz/fuzz_utf8 tests/fuzz/fuzz_inflate
FUZZ_TESTS = tests/fuzz/frame.fuzz tests/fuzz/handshake.fuzz \
	tests/fuzz/utf8.fuzz tests/fuzz/inflate.fuzz

TEST_EXTENSIONS += .fuzz
FUZZ_LOG_DRIVER = $(TAP_DRIVER)
FUZZ_LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/fuzz/run.sh
TESTS += $(FUZZ_TESTS)

FUZZ_CFLAGS = -std=c11 -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(WARN_CFLAGS) $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/websocket \
	-I$(top_srcdir)/tests/fuzz
FUZZ_COMMON = $(srcdir)/tests/fuzz/fuzz_check.h

if HAVE_FUZZER
tests/fuzz/fuzz_frame: $(srcdir)/tests/fuzz/fuzz_frame.c \
		$(srcdir)/plugins/websocket/ws_frame.c \
		$(srcdir)/plugins/websocket/ws_frame.h $(FUZZ_COMMON)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ \
		$(srcdir)/tests/fuzz/fuzz_frame.c \
		$(srcdir)/plugins/websocket/ws_frame.c

tests/fuzz/fuzz_handshake: $(srcdir)/tests/fuzz/fuzz_handshake.c \
		$(srcdir)/plugins/websocket/ws_handshake.c \
		$(srcdir)/plugins/websocket/ws_handshake.h $(FUZZ_COMMON)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(OPENSSL_CFLAGS) -o $@ \
		$(srcdir)/tests/fuzz/fuzz_handshake.c \
		$(srcdir)/plugins/websocket/ws_handshake.c $(OPENSSL_LIBS)

tests/fuzz/fuzz_utf8: $(srcdir)/tests/fuzz/fuzz_utf8.c \
		$(srcdir)/plugins/websocket/ws_utf8.c \
		$(srcdir)/plugins/websocket/ws_utf8.h $(FUZZ_COMMON)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ \
		$(srcdir)/tests/fuzz/fuzz_utf8.c \
		$(srcdir)/plugins/websocket/ws_utf8.c

tests/fuzz/fuzz_inflate: $(srcdir)/tests/fuzz/fuzz_inflate.c \
		$(srcdir)/plugins/websocket/ws_inflate.c \
		$(srcdir)/plugins/websocket/ws_inflate.h $(FUZZ_COMMON)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(ZLIB_CFLAGS) -o $@ \
		$(srcdir)/tests/fuzz/fuzz_inflate.c \
		$(srcdir)/plugins/websocket/ws_inflate.c $(ZLIB_LIBS)

# Each test needs its target; the tests stay in TESTS either way.
tests/fuzz/frame.log: tests/fuzz/fuzz_frame
tests/fuzz/handshake.log: tests/fuzz/fuzz_handshake
tests/fuzz/utf8.log: tests/fuzz/fuzz_utf8
tests/fuzz/inflate.log: tests/fuzz/fuzz_inflate

fuzz: $(FUZZ_TARGETS)
	@failed=0; for name in $(FUZZ_NAMES); do \
		TOP_SRCDIR='$(abs_top_srcdir)' TOP_BUILDDIR='$(abs_top_builddir)' \
		FUZZ_SECONDS='$(FUZZ_SECONDS)' \
		$(SHELL) $(srcdir)/tests/fuzz/run.sh --long $$name || failed=1; \
	done; test $$failed = 0
else
fuzz:
	@echo "make fuzz: configure found no clang with libFuzzer: install Debian's clang and libclang-rt-14-dev (packaging/install-deps.sh --test), then run ./configure again" >&2; exit 1
endif

# Seconds each target runs under `make fuzz`.
FUZZ_SECONDS = 600

# The corpus and the crashes of make fuzz are kept across make clean, for
# the next run and for turning into regression inputs.
distclean-local:
	-rm -rf tests/fuzz/corpus tests/fuzz/crashes

.PHONY: fuzz
CLEANFILES += $(FUZZ_TARGETS) tests/fuzz/fuzz_*.log
EXTRA_DIST += $(FUZZ_TESTS) tests/fuzz/local.mk tests/fuzz/run.sh \
	tests/fuzz/fuzz_check.h tests/fuzz/fuzz_frame.c \
	tests/fuzz/fuzz_handshake.c tests/fuzz/fuzz_utf8.c \
	tests/fuzz/fuzz_inflate.c \
	tests/fuzz/seeds tests/fuzz/regressions
