# Integration tests: a real torpord driven by real clients over loopback
# (Python's websockets, Node's ws, raw sockets) and an out-of-tree plugin
# build.  Included from tests/local.mk, which sets the TAP log drivers and
# exports TORPORD, TORPOR_PLUGIN_PATH, TOP_BUILDDIR, TOP_SRCDIR, PYTHON3 and
# NODE.  The Node tests need `npm ci --prefix tests/node` in the source tree;
# browser.test.mjs also needs Debian's chromium.
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
	tests/integration/test_deflate.py \
	tests/integration/test_routes.py \
	tests/integration/test_keepalive.py \
	tests/integration/test_address_limits.py \
	tests/integration/test_slow_consumer.py \
	tests/integration/test_cork.py \
	tests/integration/test_tls.py \
	tests/integration/test_tls_config.py \
	tests/integration/test_hold.py \
	tests/integration/test_gates.py \
	tests/node/relay.test.mjs \
	tests/node/tls.test.mjs \
	tests/node/deflate.test.mjs \
	tests/node/browser.test.mjs \
	tests/out_of_tree/run.sh \
	tests/out_of_tree/counter_test.sh \
	tests/integration/bench_smoke.sh

if WITH_POSTGRES
INTEGRATION_TESTS += tests/integration/test_migrate.py \
	tests/integration/test_outage.py
endif

# The backend class, with the C worker (built by make) and the Node.js
# worker (after `npm ci --prefix examples/workers/node`), and the nng
# transport, driven by nngcat (nng-utils) and hand-encoded requests.
if WITH_NNG
INTEGRATION_TESTS += tests/integration/test_backend.py \
	tests/integration/test_backend_node.py \
	tests/integration/test_nng.py \
	tests/integration/test_nng_limits.py
endif

TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) \
	tests/integration/harness.py \
	tests/integration/storage_util.py \
	tests/integration/tls_util.py \
	tests/integration/backend_util.py \
	tests/integration/test_backend.py \
	tests/integration/test_backend_node.py \
	tests/integration/test_migrate.py \
	tests/integration/test_outage.py \
	tests/integration/test_nng.py \
	tests/integration/test_nng_limits.py \
	tests/integration/nng_wire.py \
	tests/integration/local.mk \
	tests/node/package.json \
	tests/node/package-lock.json \
	tests/node/torpord.mjs \
	tests/out_of_tree/shout.c \
	tests/out_of_tree/tap.sh \
	examples/counter/counter.c \
	examples/counter/Makefile \
	examples/counter/README.md \
	examples/workers/node/package.json \
	examples/workers/node/package-lock.json \
	examples/workers/node/moderator.mjs \
	examples/workers/node/sp_rep.mjs
