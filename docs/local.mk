EXTRA_DIST += docs/architecture.md docs/plugin-abi.md docs/chat.md \
	docs/class-tutorial.md docs/backend-workers.md docs/testing.md \
	docs/nng-protocol.md
