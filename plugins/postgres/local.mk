# The postgres storage plugin: libpq, asynchronous on the caller's loop.
if WITH_POSTGRES
plugin_LTLIBRARIES += plugins/postgres.la
plugins_postgres_la_SOURCES = \
	plugins/postgres/pg.h \
	plugins/postgres/pg_plugin.c \
	plugins/postgres/pg_config.c \
	plugins/postgres/pg_schema.c \
	plugins/postgres/pg_loop.c \
	plugins/postgres/pg_conn.c \
	plugins/postgres/pg_ops.c \
	plugins/postgres/pg_rows.c
plugins_postgres_la_CFLAGS = $(AM_CFLAGS) $(LIBPQ_CFLAGS)
plugins_postgres_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_postgres_la_LIBADD = $(LIBPQ_LIBS)
endif
