# RFC 6455 conformance: Autobahn's server cases of sections 1-7 and 9, run
# by a raw-frame client (wsclient.py) against a real torpord's echo route.
# Included from tests/local.mk, which sets the TAP log driver for .py and
# exports TORPORD and TORPOR_PLUGIN_PATH.
CONFORMANCE_TESTS = \
	tests/conformance/test_framing.py \
	tests/conformance/test_fragmentation.py \
	tests/conformance/test_utf8.py \
	tests/conformance/test_close.py \
	tests/conformance/test_limits.py

TESTS += $(CONFORMANCE_TESTS)
EXTRA_DIST += $(CONFORMANCE_TESTS) \
	tests/conformance/wsclient.py \
	tests/conformance/utf8_cases.py \
	tests/conformance/local.mk
