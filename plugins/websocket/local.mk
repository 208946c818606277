plugin_LTLIBRARIES += plugins/websocket.la
plugins_websocket_la_SOURCES = \
	plugins/websocket/ws.h \
	plugins/websocket/ws_plugin.c \
	plugins/websocket/ws_config.c \
	plugins/websocket/ws_listen.c \
	plugins/websocket/ws_conn.c \
	plugins/websocket/ws_upgrade.c \
	plugins/websocket/ws_read.c \
	plugins/websocket/ws_write.c \
	plugins/websocket/ws_cork.c \
	plugins/websocket/ws_route.c \
	plugins/websocket/ws_keepalive.c \
	plugins/websocket/ws_peer.c \
	plugins/websocket/ws_admit.c \
	plugins/websocket/ws_io.c \
	plugins/websocket/ws_io.h \
	plugins/websocket/ws_tls.c \
	plugins/websocket/ws_tls_io.c \
	plugins/websocket/ws_frame.c \
	plugins/websocket/ws_frame.h \
	plugins/websocket/ws_utf8.c \
	plugins/websocket/ws_utf8.h \
	plugins/websocket/ws_handshake.c \
	plugins/websocket/ws_handshake.h \
	plugins/websocket/ws_deflate.h \
	plugins/websocket/ws_deflate.c \
	plugins/websocket/ws_inflate.c \
	plugins/websocket/ws_inflate.h \
	plugins/websocket/ws_deflate_send.c \
	plugins/websocket/ws_deflate_streams.h \
	plugins/websocket/ws_deflate_config.c \
	plugins/websocket/ws_deflate_negotiate.c
plugins_websocket_la_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS) $(ZLIB_CFLAGS)
plugins_websocket_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_websocket_la_LIBADD = $(OPENSSL_LIBS) $(ZLIB_LIBS)
