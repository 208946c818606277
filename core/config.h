/*
 * core/config.h: torpord's configuration, read from an INI file.
 *
 * The file has the core's own sections ([core], [storage], [route.NAME])
 * and one
 * section per plugin that takes settings ([transport.NAME], [class.NAME],
 * [storage.NAME]).  The core checks its own sections here; plugin sections
 * are kept as entries, with their line numbers, and handed to each plugin's
 * configure hook once the plugins are loaded.  A section the file leaves
 * out keeps its defaults.
 */
#ifndef TORPOR_CORE_CONFIG_H
#define TORPOR_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/types.h>

#include "core/errors.h"
#include "core/export.h"

/* One "key = value" of a plugin's section, for its configure hook. */
struct tpr_config_entry {
    char *kind;         /* "transport", "class", "storage" */
    char *plugin;       /* the plugin's name */
    char *key;
    char *value;
    unsigned line;
};

/* A route maps the first path segment, "/NAME/...", to a class. */
struct tpr_route_config {
    char *name;
    char *class_name;
    bool enabled;
    unsigned line;      /* of the section header; 0 for a built-in default */
    unsigned class_line; /* of "class ="; 0 when not set by the file */
};

struct tpr_config {
    char *path;                 /* NULL when running on defaults only */
    torpor_log_level log_level;
    char *plugin_path;          /* colon-separated folders */
    char **plugins;             /* names or paths, in load order */
    size_t nplugins;
    unsigned plugins_line;
    uint64_t shutdown_timeout_ms;
    uint64_t alarm_poll_ms;     /* how often storage is asked for due alarms */
    uint64_t alarm_retry_ms;    /* first backoff of a failed alarm; doubles */
    uint64_t max_connections_per_object;
    uint64_t max_queued_events;  /* per object; past it senders get 1013 */
    uint64_t handler_timeout_ms; /* a handler running longer resets its
                                    object */
    uint64_t loops;             /* event loop threads; 0: one per CPU */

    char *storage_backend;      /* the storage plugin's name */
    unsigned storage_backend_line;
    uint64_t max_key_bytes;
    uint64_t max_value_bytes;

    struct tpr_route_config *routes;
    size_t nroutes;

    struct tpr_config_entry *entries;
    size_t nentries;
};

/*
 * tpr_config_load reads path (NULL: defaults only) into a new config.
 * Every problem is added to diag as "FILE:LINE: reason".  Returns
 * TORPOR_OK, TORPOR_EINVAL when diag holds problems (and *out is NULL),
 * TORPOR_EIO when the file cannot be read, TORPOR_ENOMEM.
 */
TPR_EXPORT torpor_err tpr_config_load(const char *path, struct tpr_config **out,
                           struct tpr_diag *diag);

TPR_EXPORT void tpr_config_free(struct tpr_config *cfg);

/*
 * tpr_config_set_plugin_path replaces plugin_path, as --plugin-path does.
 */
TPR_EXPORT torpor_err tpr_config_set_plugin_path(struct tpr_config *cfg,
                                      const char *path);

/*
 * tpr_config_storage_only trims cfg to its storage backend: no other
 * plugin, no route, no other plugin section.  For tools that only touch
 * storage, like torporctl migrate.
 */
TPR_EXPORT torpor_err tpr_config_storage_only(struct tpr_config *cfg);

/*
 * Value parsers shared with plugins' own checks.  Each returns TORPOR_OK or
 * TORPOR_EINVAL and never touches *out on failure.
 */
torpor_err tpr_config_parse_uint(const char *text, uint64_t min, uint64_t max,
                                 uint64_t *out);
torpor_err tpr_config_parse_bool(const char *text, bool *out);

#endif /* TORPOR_CORE_CONFIG_H */
