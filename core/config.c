/*
 * core/config.c: reading the INI file with libinih and checking the core's
 * sections.
 *
 * libinih does not report line numbers to the handler in Debian's build, so
 * config_read_line feeds it one line at a time and counts; the handler runs
 * while that line is current.  The reader also strips leading blanks, which
 * turns off libinih's continuation lines: an indented key is just a key.
 */
#include "build-config.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/log.h"

#ifndef TORPOR_PLUGIN_DIR
#define TORPOR_PLUGIN_DIR "/usr/lib/torpor/plugins"
#endif

#define CONFIG_DEFAULT_PLUGINS "websocket, relay, echo, chat"

/* What one section header turned out to be. */
enum config_section_kind {
    SECTION_NONE,       /* before the first header: keys here are errors */
    SECTION_CORE,
    SECTION_STORAGE,
    SECTION_ROUTE,
    SECTION_PLUGIN,
    SECTION_UNKNOWN     /* already reported; its keys are skipped */
};

struct config_parse {
    struct tpr_config *cfg;
    struct tpr_diag *diag;
    FILE *file;
    unsigned line;
    bool line_too_long;

    enum config_section_kind section;
    char *plugin_kind;      /* borrowed from the current section name */
    char *plugin_name;
    struct tpr_route_config *route;
    char section_name[INI_MAX_LINE];
    unsigned section_line;
    /* keys seen in the current section, to refuse duplicates */
    char **seen;
    size_t nseen;
};

static const char *const config_plugin_kinds[] = {
    "transport", "class", "storage",
};

torpor_err
tpr_config_parse_uint(const char *text, uint64_t min, uint64_t max,
                      uint64_t *out)
{
    char *end;

    if (text[0] == '\0' || !isdigit((unsigned char)text[0])) {
        return TORPOR_EINVAL;
    }
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return TORPOR_EINVAL;
    }
    *out = v;
    return TORPOR_OK;
}

torpor_err
tpr_config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return TORPOR_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return TORPOR_OK;
        }
    }
    return TORPOR_EINVAL;
}

static bool
config_name_valid(const char *name)
{
    if (name[0] == '\0') {
        return false;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            return false;
        }
    }
    return true;
}

static void
config_free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i]);
    }
    free(list);
}

/* config_split_list parses "a, b c" into words; commas or blanks divide. */
static torpor_err
config_split_list(const char *text, char ***out, size_t *nout)
{
    char **list = NULL;
    size_t n = 0;
    const char *p = text;

    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *start = p;
        while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p)) {
            p++;
        }
        char **grown = realloc(list, (n + 1) * sizeof(*list));
        if (grown == NULL) {
            config_free_list(list, n);
            return TORPOR_ENOMEM;
        }
        list = grown;
        list[n] = strndup(start, (size_t)(p - start));
        if (list[n] == NULL) {
            config_free_list(list, n);
            return TORPOR_ENOMEM;
        }
        n++;
    }
    *out = list;
    *nout = n;
    return TORPOR_OK;
}

static struct tpr_route_config *
config_route(struct tpr_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (strcmp(cfg->routes[i].name, name) == 0) {
            return &cfg->routes[i];
        }
    }
    return NULL;
}

static torpor_err
config_add_route(struct tpr_config *cfg, const char *name,
                 const char *class_name, unsigned line,
                 struct tpr_route_config **out)
{
    struct tpr_route_config *grown =
        realloc(cfg->routes, (cfg->nroutes + 1) * sizeof(*grown));
    if (grown == NULL) {
        return TORPOR_ENOMEM;
    }
    cfg->routes = grown;
    struct tpr_route_config *r = &cfg->routes[cfg->nroutes];
    r->name = strdup(name);
    r->class_name = class_name ? strdup(class_name) : NULL;
    r->enabled = true;
    r->line = line;
    r->class_line = 0;
    if (r->name == NULL || (class_name != NULL && r->class_name == NULL)) {
        free(r->name);
        free(r->class_name);
        return TORPOR_ENOMEM;
    }
    cfg->nroutes++;
    *out = r;
    return TORPOR_OK;
}

static torpor_err
config_set_defaults(struct tpr_config *cfg)
{
    static const char *const routes[][2] = {
        {"relay", "relay"},
        {"echo", "echo"},
        {"chat", "chat"},
    };
    size_t nroutes = sizeof(routes) / sizeof(routes[0]);
    struct tpr_route_config *r;

    cfg->log_level = TORPOR_LOG_NOTICE;
    cfg->shutdown_timeout_ms = 5000;
    cfg->alarm_poll_ms = 250;
    cfg->alarm_retry_ms = 250;
    cfg->max_connections_per_object = 32768;
    cfg->max_queued_events = 1024;
    cfg->handler_timeout_ms = 1000;
    cfg->max_key_bytes = 2048;
    cfg->max_value_bytes = 131072;
    cfg->plugin_path = strdup(TORPOR_PLUGIN_DIR);
    cfg->storage_backend = strdup("file");
    if (cfg->plugin_path == NULL || cfg->storage_backend == NULL) {
        return TORPOR_ENOMEM;
    }
    torpor_err err = config_split_list(CONFIG_DEFAULT_PLUGINS, &cfg->plugins,
                                       &cfg->nplugins);
    for (size_t i = 0; err == TORPOR_OK && i < nroutes; i++) {
        err = config_add_route(cfg, routes[i][0], routes[i][1], 0, &r);
    }
    return err;
}

/* ---- [core] ---- */

/* The numeric keys of [core]: where each goes and what it accepts. */
struct config_number {
    const char *key;
    size_t offset;
    uint64_t min;
    uint64_t max;
    const char *unit;
};

static const struct config_number config_core_numbers[] = {
    {"shutdown_timeout_ms", offsetof(struct tpr_config, shutdown_timeout_ms),
     0, 3600000, "milliseconds"},
    {"alarm_poll_ms", offsetof(struct tpr_config, alarm_poll_ms), 10, 60000,
     "milliseconds"},
    {"alarm_retry_ms", offsetof(struct tpr_config, alarm_retry_ms), 1,
     3600000, "milliseconds"},
    {"max_connections_per_object",
     offsetof(struct tpr_config, max_connections_per_object), 1, 10000000,
     "connections"},
    {"max_queued_events", offsetof(struct tpr_config, max_queued_events), 1,
     10000000, "events"},
    {"handler_timeout_ms", offsetof(struct tpr_config, handler_timeout_ms), 1,
     3600000, "milliseconds"},
    {"loops", offsetof(struct tpr_config, loops), 0, 256,
     "event loops (0: one per CPU)"},
};

static void
config_core_key(struct config_parse *p, const char *key, const char *value)
{
    struct tpr_config *cfg = p->cfg;
    const char *file = cfg->path;

    for (size_t i = 0; i < sizeof(config_core_numbers)
                               / sizeof(config_core_numbers[0]);
         i++) {
        const struct config_number *num = &config_core_numbers[i];
        if (strcmp(key, num->key) != 0) {
            continue;
        }
        uint64_t *field = (uint64_t *)((char *)cfg + num->offset);
        if (tpr_config_parse_uint(value, num->min, num->max, field)
            != TORPOR_OK) {
            tpr_diag_add(p->diag, file, p->line, "bad %s \"%s\": expected %s from %llu to %llu", key, value, num->unit, (unsigned long long)num->min, (unsigned long long)num->max);
        }
        return;
    }
    if (strcmp(key, "log_level") == 0) {
        if (tpr_log_level_parse(value, &cfg->log_level) != TORPOR_OK) {
            tpr_diag_add(p->diag, file, p->line, "bad log_level \"%s\": expected err, warn, notice, info or debug", value);
        }
    } else if (strcmp(key, "plugin_path") == 0) {
        if (tpr_config_set_plugin_path(cfg, value) != TORPOR_OK) {
            tpr_diag_add(p->diag, file, p->line, "out of memory");
        }
    } else if (strcmp(key, "plugins") == 0) {
        char **list;
        size_t n;
        if (config_split_list(value, &list, &n) != TORPOR_OK) {
            tpr_diag_add(p->diag, file, p->line, "out of memory");
            return;
        }
        config_free_list(cfg->plugins, cfg->nplugins);
        cfg->plugins = list;
        cfg->nplugins = n;
        cfg->plugins_line = p->line;
    } else {
        tpr_diag_add(p->diag, file, p->line, "unknown key \"%s\" in section [core]", key);
    }
}

/* ---- [storage] ---- */

static void
config_storage_key(struct config_parse *p, const char *key,
                   const char *value)
{
    struct tpr_config *cfg = p->cfg;
    const char *file = cfg->path;

    if (strcmp(key, "backend") == 0) {
        if (!config_name_valid(value)) {
            tpr_diag_add(p->diag, file, p->line, "bad backend \"%s\": expected a storage plugin's name, such as file or postgres", value);
            return;
        }
        char *copy = strdup(value);
        if (copy == NULL) {
            tpr_diag_add(p->diag, file, p->line, "out of memory");
            return;
        }
        free(cfg->storage_backend);
        cfg->storage_backend = copy;
        cfg->storage_backend_line = p->line;
    } else if (strcmp(key, "max_key_bytes") == 0) {
        if (tpr_config_parse_uint(value, 1, 1048576, &cfg->max_key_bytes)
            != TORPOR_OK) {
            tpr_diag_add(p->diag, file, p->line, "bad max_key_bytes \"%s\": expected bytes from 1 to 1048576", value);
        }
    } else if (strcmp(key, "max_value_bytes") == 0) {
        if (tpr_config_parse_uint(value, 1, 67108864, &cfg->max_value_bytes)
            != TORPOR_OK) {
            tpr_diag_add(p->diag, file, p->line, "bad max_value_bytes \"%s\": expected bytes from 1 to 67108864", value);
        }
    } else {
        tpr_diag_add(p->diag, file, p->line, "unknown key \"%s\" in section [storage]", key);
    }
}

/* ---- [route.NAME] ---- */

static void
config_route_key(struct config_parse *p, const char *key, const char *value)
{
    struct tpr_route_config *r = p->route;
    const char *file = p->cfg->path;

    if (strcmp(key, "class") == 0) {
        if (!config_name_valid(value)) {
            /* Still kept, so the route is not also reported as classless. */
            tpr_diag_add(p->diag, file, p->line, "bad class \"%s\": expected letters, digits, '_' or '-'", value);
        }
        char *copy = strdup(value);
        if (copy == NULL) {
            tpr_diag_add(p->diag, file, p->line, "out of memory");
            return;
        }
        free(r->class_name);
        r->class_name = copy;
        r->class_line = p->line;
    } else if (strcmp(key, "enabled") == 0) {
        if (tpr_config_parse_bool(value, &r->enabled) != TORPOR_OK) {
            tpr_diag_add(p->diag, file, p->line, "bad enabled \"%s\": expected true or false", value);
        }
    } else {
        tpr_diag_add(p->diag, file, p->line, "unknown key \"%s\" in section [route.%s]", key, r->name);
    }
}

/* ---- plugin sections ---- */

static void
config_plugin_key(struct config_parse *p, const char *key, const char *value)
{
    struct tpr_config *cfg = p->cfg;
    struct tpr_config_entry *grown =
        realloc(cfg->entries, (cfg->nentries + 1) * sizeof(*grown));
    if (grown == NULL) {
        tpr_diag_add(p->diag, cfg->path, p->line, "out of memory");
        return;
    }
    cfg->entries = grown;
    struct tpr_config_entry *e = &cfg->entries[cfg->nentries];
    e->kind = strdup(p->plugin_kind);
    e->plugin = strdup(p->plugin_name);
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = p->line;
    if (e->kind == NULL || e->plugin == NULL || e->key == NULL
        || e->value == NULL) {
        free(e->kind);
        free(e->plugin);
        free(e->key);
        free(e->value);
        tpr_diag_add(p->diag, cfg->path, p->line, "out of memory");
        return;
    }
    cfg->nentries++;
}

/* ---- sections ---- */

static void
config_begin_section(struct config_parse *p, const char *name)
{
    const char *file = p->cfg->path;
    const char *dot = strchr(name, '.');

    config_free_list(p->seen, p->nseen);
    p->seen = NULL;
    p->nseen = 0;
    snprintf(p->section_name, sizeof(p->section_name), "%s", name);
    p->section_line = p->line;
    p->section = SECTION_UNKNOWN;
    p->route = NULL;

    if (strcmp(name, "core") == 0) {
        p->section = SECTION_CORE;
        return;
    }
    if (strcmp(name, "storage") == 0) {
        p->section = SECTION_STORAGE;
        return;
    }
    if (dot == NULL) {
        tpr_diag_add(p->diag, file, p->line, "unknown section [%s]: expected [core], [storage], [route.NAME], [transport.NAME], [class.NAME] or [storage.NAME]", name);
        return;
    }
    if (!config_name_valid(dot + 1)) {
        tpr_diag_add(p->diag, file, p->line, "bad section name [%s]: after the dot expected letters, digits, '_' or '-'", name);
        return;
    }
    size_t kind_len = (size_t)(dot - name);
    p->section_name[kind_len] = '\0';
    p->plugin_kind = p->section_name;
    p->plugin_name = p->section_name + kind_len + 1;

    if (strcmp(p->plugin_kind, "route") == 0) {
        struct tpr_route_config *r = config_route(p->cfg, p->plugin_name);
        if (r != NULL && r->line != 0) {
            tpr_diag_add(p->diag, file, p->line, "duplicate section [route.%s], first at line %u", p->plugin_name, r->line);
            return;
        }
        if (r == NULL) {
            if (config_add_route(p->cfg, p->plugin_name, NULL, p->line,
                                 &r) != TORPOR_OK) {
                tpr_diag_add(p->diag, file, p->line, "out of memory");
                return;
            }
        }
        r->line = p->line;
        p->route = r;
        p->section = SECTION_ROUTE;
        return;
    }
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(p->plugin_kind, config_plugin_kinds[i]) == 0) {
            p->section = SECTION_PLUGIN;
            return;
        }
    }
    p->section_name[kind_len] = '.';
    tpr_diag_add(p->diag, file, p->line, "unknown section [%s]: expected [core], [storage], [route.NAME], [transport.NAME], [class.NAME] or [storage.NAME]", name);
}

/* config_seen records key in the current section; false if it was there. */
static bool
config_seen(struct config_parse *p, const char *key)
{
    for (size_t i = 0; i < p->nseen; i++) {
        if (strcmp(p->seen[i], key) == 0) {
            return false;
        }
    }
    char **grown = realloc(p->seen, (p->nseen + 1) * sizeof(*grown));
    if (grown != NULL) {
        p->seen = grown;
        p->seen[p->nseen] = strdup(key);
        if (p->seen[p->nseen] != NULL) {
            p->nseen++;
        }
    }
    return true;
}

static int
config_on_key(void *user, const char *section, const char *key,
              const char *value)
{
    struct config_parse *p = user;

    (void)section;  /* config_read_line already classified it */
    if (p->section == SECTION_UNKNOWN) {
        return 1;
    }
    if (p->section == SECTION_NONE) {
        tpr_diag_add(p->diag, p->cfg->path, p->line, "key \"%s\" outside any section", key);
        return 1;
    }
    if (!config_seen(p, key)) {
        tpr_diag_add(p->diag, p->cfg->path, p->line, "duplicate key \"%s\"", key);
        return 1;
    }
    switch (p->section) {
    case SECTION_CORE:
        config_core_key(p, key, value);
        break;
    case SECTION_STORAGE:
        config_storage_key(p, key, value);
        break;
    case SECTION_ROUTE:
        config_route_key(p, key, value);
        break;
    case SECTION_PLUGIN:
        config_plugin_key(p, key, value);
        break;
    default:
        break;
    }
    return 1;
}

/*
 * config_read_line is libinih's reader: one line per call, so p->line is
 * the line the handler is looking at.  It also sees section headers first,
 * which is how empty and unknown sections get reported.
 */
static char *
config_read_line(char *str, int num, void *stream)
{
    struct config_parse *p = stream;

    if (fgets(str, num, p->file) == NULL) {
        return NULL;
    }
    p->line++;
    size_t len = strlen(str);
    if (len > 0 && str[len - 1] != '\n' && !feof(p->file)) {
        p->line_too_long = true;
        tpr_diag_add(p->diag, p->cfg->path, p->line, "line longer than %d bytes", num - 2);
        return NULL;
    }
    size_t skip = strspn(str, " \t");
    memmove(str, str + skip, len - skip + 1);
    if (str[0] == '[') {
        char *close = strchr(str, ']');
        if (close != NULL) {
            *close = '\0';
            config_begin_section(p, str + 1);
            *close = ']';
        }
    }
    return str;
}

static void
config_check_routes(struct config_parse *p)
{
    for (size_t i = 0; i < p->cfg->nroutes; i++) {
        struct tpr_route_config *r = &p->cfg->routes[i];
        if (r->enabled && r->class_name == NULL) {
            tpr_diag_add(p->diag, p->cfg->path, r->line, "route \"%s\" has no class: add \"class = NAME\" or \"enabled = false\"", r->name);
        }
    }
}

torpor_err
tpr_config_load(const char *path, struct tpr_config **out,
                struct tpr_diag *diag)
{
    struct config_parse p = {.diag = diag, .section = SECTION_NONE};
    unsigned before = diag->count;

    *out = NULL;
    p.cfg = calloc(1, sizeof(*p.cfg));
    if (p.cfg == NULL) {
        return TORPOR_ENOMEM;
    }
    if (config_set_defaults(p.cfg) != TORPOR_OK) {
        tpr_config_free(p.cfg);
        return TORPOR_ENOMEM;
    }
    if (path == NULL) {
        *out = p.cfg;
        return TORPOR_OK;
    }
    p.cfg->path = strdup(path);
    p.file = fopen(path, "r");
    if (p.cfg->path == NULL || p.file == NULL) {
        tpr_diag_add(diag, path, 0, "could not open: %s", strerror(errno));
        if (p.file != NULL) {
            fclose(p.file);
        }
        tpr_config_free(p.cfg);
        return TORPOR_EIO;
    }
    int rc = ini_parse_stream(config_read_line, &p, config_on_key, &p);
    fclose(p.file);
    config_free_list(p.seen, p.nseen);
    if (rc > 0 && !p.line_too_long) {
        tpr_diag_add(diag, path, (unsigned)rc, "syntax error: expected \"[section]\", \"key = value\" or a comment");
    } else if (rc < 0) {
        tpr_diag_add(diag, path, 0, "could not parse: out of memory");
    }
    config_check_routes(&p);
    if (diag->count != before) {
        tpr_config_free(p.cfg);
        return TORPOR_EINVAL;
    }
    *out = p.cfg;
    return TORPOR_OK;
}

torpor_err
tpr_config_set_plugin_path(struct tpr_config *cfg, const char *path)
{
    char *copy = strdup(path);

    if (copy == NULL) {
        return TORPOR_ENOMEM;
    }
    free(cfg->plugin_path);
    cfg->plugin_path = copy;
    return TORPOR_OK;
}

void
tpr_config_free(struct tpr_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->path);
    free(cfg->plugin_path);
    free(cfg->storage_backend);
    config_free_list(cfg->plugins, cfg->nplugins);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].name);
        free(cfg->routes[i].class_name);
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->nentries; i++) {
        free(cfg->entries[i].kind);
        free(cfg->entries[i].plugin);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    free(cfg);
}

torpor_err
tpr_config_storage_only(struct tpr_config *cfg)
{
    size_t kept = 0;

    config_free_list(cfg->plugins, cfg->nplugins);
    cfg->plugins = NULL;
    cfg->nplugins = 0;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        cfg->routes[i].enabled = false;
    }
    for (size_t i = 0; i < cfg->nentries; i++) {
        struct tpr_config_entry *e = &cfg->entries[i];
        if (strcmp(e->kind, "storage") == 0
            && strcmp(e->plugin, cfg->storage_backend) == 0) {
            cfg->entries[kept++] = *e;
            continue;
        }
        free(e->kind);
        free(e->plugin);
        free(e->key);
        free(e->value);
    }
    cfg->nentries = kept;
    return TORPOR_OK;
}
