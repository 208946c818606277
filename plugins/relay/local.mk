plugin_LTLIBRARIES += plugins/relay.la
plugins_relay_la_SOURCES = plugins/relay/relay.c
plugins_relay_la_LDFLAGS = $(PLUGIN_LDFLAGS)
