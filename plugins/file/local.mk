plugin_LTLIBRARIES += plugins/file.la
plugins_file_la_SOURCES = \
	plugins/file/fs.h \
	plugins/file/fs_plugin.c \
	plugins/file/fs_config.c \
	plugins/file/fs_record.c \
	plugins/file/fs_dir.c \
	plugins/file/fs_scan.c \
	plugins/file/fs_scan.h \
	plugins/file/fs_recover.c \
	plugins/file/fs_index.c \
	plugins/file/fs_alarm.c \
	plugins/file/fs_read.c \
	plugins/file/fs_worker.c \
	plugins/file/fs_compact.c
plugins_file_la_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
plugins_file_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_file_la_LIBADD = $(ZLIB_LIBS) -lpthread
