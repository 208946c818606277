# Integration tests: a real torpord driven by real clients over loopback
# (Python's websockets, Node's ws, raw sockets) and an out-of-tree plugin
# build.  Included from tests/local.mk, which sets the TAP log drivers and
# exports TORPORD, TORPOR_PLUGIN_PATH, TOP_BUILDDIR, TOP_SRCDIR, PYTHON3 and
# NODE.  The Node test needs `npm ci --prefix tests/node` in the source tree.
INTEGRATION_TESTS = \
	tests/integration/test_relay.py \
	tests/integration/test_limits.py \
	tests/integration/test_http.py \
	tests/integration/test_daemon.py \
	tests/integration/test_chat.py \
	tests/integration/test_crash.py \
	tests/integration/test_hibernate.py \
	tests/integration/test_alarms.py \
	tests/integration/test_connections.py \
	tests/integration/test_caps.py \
	tests/node/relay.test.mjs \
	tests/out_of_tree/run.sh \
	tests/out_of_tree/counter_test.sh

if WITH_POSTGRES
INTEGRATION_TESTS += tests/integration/test_migrate.py \
	tests/integration/test_outage.py
endif

# The nng transport, driven by nngcat (nng-utils) and hand-encoded requests.
if WITH_NNG
INTEGRATION_TESTS += tests/integration/test_nng.py \
	tests/integration/test_nng_limits.py
endif

TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) \
	tests/integration/harness.py \
	tests/integration/storage_util.py \
	tests/integration/test_migrate.py \
	tests/integration/test_outage.py \
	tests/integration/test_nng.py \
	tests/integration/test_nng_limits.py \
	tests/integration/nng_wire.py \
	tests/integration/local.mk \
	tests/node/package.json \
	tests/node/package-lock.json \
	tests/out_of_tree/shout.c \
	tests/out_of_tree/tap.sh \
	examples/counter/counter.c \
	examples/counter/Makefile \
	examples/counter/README.md
