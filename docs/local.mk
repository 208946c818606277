EXTRA_DIST += docs/architecture.md docs/plugin-abi.md docs/chat.md \
	docs/class-tutorial.md docs/nng-protocol.md
