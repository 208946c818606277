plugin_LTLIBRARIES += plugins/echo.la
plugins_echo_la_SOURCES = plugins/echo/echo.c
plugins_echo_la_LDFLAGS = $(PLUGIN_LDFLAGS)
