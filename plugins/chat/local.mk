plugin_LTLIBRARIES += plugins/chat.la
plugins_chat_la_SOURCES = plugins/chat/chat.h plugins/chat/chat.c \
	plugins/chat/chat_json.c
plugins_chat_la_LDFLAGS = $(PLUGIN_LDFLAGS)
