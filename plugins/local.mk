# Plugins, each a folder of files by concern, built as modules into
# plugins/.libs so that the build tree itself is a plugin path.
include plugins/websocket/local.mk
include plugins/relay/local.mk
include plugins/echo/local.mk
include plugins/chat/local.mk
include plugins/file/local.mk
include plugins/postgres/local.mk
include plugins/backend/local.mk
include plugins/nng/local.mk
