/*
 * core/loader.c: dlopen and the checks that keep a mismatched plugin out.
 *
 * The order of the checks matters: nothing past the magic is read until the
 * magic matches, and nothing past the fixed header until the versions and
 * the size say the rest is there.
 */
#include "build-config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/loader.h"
#include "core/object_internal.h"

/*
 * The smallest descriptor this core accepts: everything ABI 1.0 had, which
 * ends where the first hook of 1.1 (reload) begins.
 */
#define LOADER_MIN_DESC_SIZE offsetof(struct torpor_plugin, reload)
/* Transport ops of ABI 1.0 end where conn_bytes, of 1.1, begins. */
#define LOADER_MIN_TRANSPORT_SIZE                                          \
    offsetof(struct torpor_transport_ops, conn_bytes)
#define LOADER_MIN_CLASS_SIZE sizeof(struct torpor_class_ops)
#define LOADER_MIN_STORAGE_SIZE sizeof(struct torpor_storage_ops)
#define LOADER_MIN(a, b) ((size_t)(a) < (b) ? (size_t)(a) : (b))

const char *
tpr_plugin_kind_name(uint32_t kind)
{
    switch (kind) {
    case TORPOR_KIND_TRANSPORT:
        return "transport";
    case TORPOR_KIND_STORAGE:
        return "storage";
    case TORPOR_KIND_CLASS:
        return "class";
    }
    return "unknown";
}

/* loader_find resolves a plugin name against the search path. */
static char *
loader_find(const char *spec, const char *search_path)
{
    if (strchr(spec, '/') != NULL) {
        return access(spec, F_OK) == 0 ? strdup(spec) : NULL;
    }
    const char *dir = search_path;
    while (dir != NULL && *dir != '\0') {
        const char *end = strchr(dir, ':');
        size_t dir_len = end ? (size_t)(end - dir) : strlen(dir);
        if (dir_len > 0) {
            char *path;
            if (asprintf(&path, "%.*s/%s.so", (int)dir_len, dir, spec) < 0) {
                return NULL;
            }
            if (access(path, F_OK) == 0) {
                return path;
            }
            free(path);
        }
        dir = end ? end + 1 : NULL;
    }
    return NULL;
}

#define LOADER_REFUSE(...)                                          \
    do {                                                            \
        tpr_diag_add(diag, file, line, __VA_ARGS__);                \
        return TORPOR_EABI;                                         \
    } while (0)

/* loader_check_ops copies and checks the kind's table. */
static torpor_err
loader_check_ops(struct torpor_plugin_ctx *p, const char *file, unsigned line,
                 struct tpr_diag *diag)
{
    const struct torpor_plugin *d = &p->desc;
    const char *path = p->path;

    if (d->kind == TORPOR_KIND_TRANSPORT) {
        const struct torpor_transport_ops *t = d->ops.transport;
        if (t == NULL) {
            LOADER_REFUSE("could not load plugin \"%s\": transport ops are NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        if (t->size < LOADER_MIN_TRANSPORT_SIZE) {
            LOADER_REFUSE("could not load plugin \"%s\": transport ops of %u bytes, core needs %zu (plugin ABI %u.%u, core ABI %u.%u)", path, t->size, LOADER_MIN_TRANSPORT_SIZE, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        memcpy(&p->ops.transport, t,
               LOADER_MIN(t->size, sizeof(p->ops.transport)));
        if (t->frame_encode == NULL || t->frame_send == NULL
            || t->frame_release == NULL || t->close == NULL) {
            LOADER_REFUSE("could not load plugin \"%s\": a mandatory transport hook is NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        const struct torpor_transport_ops *own = &p->ops.transport;
        if (own->conn_bytes > TORPOR_CONN_BYTES_MAX) {
            LOADER_REFUSE("could not load plugin \"%s\": conn_bytes of %u, at most %u (plugin ABI %u.%u, core ABI %u.%u)", path, own->conn_bytes, TORPOR_CONN_BYTES_MAX, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        if (own->conn_bytes > 0 && own->conn_discard == NULL) {
            LOADER_REFUSE("could not load plugin \"%s\": conn_bytes is set but hook \"conn_discard\" is NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
    } else if (d->kind == TORPOR_KIND_CLASS) {
        const struct torpor_class_ops *c = d->ops.klass;
        if (c == NULL) {
            LOADER_REFUSE("could not load plugin \"%s\": class ops are NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        if (c->size < LOADER_MIN_CLASS_SIZE) {
            LOADER_REFUSE("could not load plugin \"%s\": class ops of %u bytes, core needs %zu (plugin ABI %u.%u, core ABI %u.%u)", path, c->size, LOADER_MIN_CLASS_SIZE, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        memcpy(&p->ops.klass, c, LOADER_MIN(c->size, sizeof(p->ops.klass)));
        if (c->object_create == NULL) {
            LOADER_REFUSE("could not load plugin \"%s\": mandatory hook \"object_create\" is NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
    } else if (d->kind == TORPOR_KIND_STORAGE) {
        const struct torpor_storage_ops *s = d->ops.storage;
        if (s == NULL) {
            LOADER_REFUSE("could not load plugin \"%s\": storage ops are NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        if (s->size < LOADER_MIN_STORAGE_SIZE) {
            LOADER_REFUSE("could not load plugin \"%s\": storage ops of %u bytes, core needs %zu (plugin ABI %u.%u, core ABI %u.%u)", path, s->size, LOADER_MIN_STORAGE_SIZE, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
        memcpy(&p->ops.storage, s,
               LOADER_MIN(s->size, sizeof(p->ops.storage)));
        if (s->get == NULL || s->list == NULL || s->commit == NULL
            || s->alarms == NULL || s->alarms_due == NULL
            || s->objects == NULL || s->drop == NULL) {
            LOADER_REFUSE("could not load plugin \"%s\": a mandatory storage hook is NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        }
    } else {
        LOADER_REFUSE("could not load plugin \"%s\": unknown kind %u (plugin ABI %u.%u, core ABI %u.%u)", path, d->kind, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    return TORPOR_OK;
}

/* loader_check_desc checks the descriptor the entry point returned. */
static torpor_err
loader_check_desc(struct torpor_plugin_ctx *p, const struct torpor_plugin *d,
                  const char *file, unsigned line, struct tpr_diag *diag)
{
    const char *path = p->path;

    if (d == NULL) {
        LOADER_REFUSE("could not load plugin \"%s\": torpor_plugin_entry() returned NULL (core ABI %u.%u)", path, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    if (d->magic != TORPOR_PLUGIN_MAGIC) {
        LOADER_REFUSE("could not load plugin \"%s\": bad magic 0x%08x, expected 0x%08x: not a torpor plugin or built for another ABI (core ABI %u.%u)", path, d->magic, TORPOR_PLUGIN_MAGIC, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    if (d->abi_major != TORPOR_ABI_MAJOR) {
        LOADER_REFUSE("could not load plugin \"%s\": ABI major version differs (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    if (d->abi_minor > TORPOR_ABI_MINOR) {
        LOADER_REFUSE("could not load plugin \"%s\": plugin needs a newer core (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    if (d->size < LOADER_MIN_DESC_SIZE) {
        LOADER_REFUSE("could not load plugin \"%s\": descriptor of %u bytes, core needs %zu (plugin ABI %u.%u, core ABI %u.%u)", path, d->size, LOADER_MIN_DESC_SIZE, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    memcpy(&p->desc, d, LOADER_MIN(d->size, sizeof(p->desc)));
    if (d->name == NULL || d->name[0] == '\0' || d->version == NULL) {
        LOADER_REFUSE("could not load plugin \"%s\": descriptor has no name or version (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    if (d->create == NULL) {
        LOADER_REFUSE("could not load plugin \"%s\": mandatory hook \"create\" is NULL (plugin ABI %u.%u, core ABI %u.%u)", path, d->abi_major, d->abi_minor, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
    }
    return loader_check_ops(p, file, line, diag);
}

torpor_err
tpr_plugin_open(const char *spec, const char *search_path, const char *file,
                unsigned line, struct tpr_diag *diag,
                struct torpor_plugin_ctx **out)
{
    const struct torpor_plugin *(*entry)(void);
    torpor_err err;

    *out = NULL;
    struct torpor_plugin_ctx *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return TORPOR_ENOMEM;
    }
    p->path = loader_find(spec, search_path);
    if (p->path == NULL) {
        tpr_diag_add(diag, file, line, "could not find plugin \"%s\": no \"%s%s\" in plugin path \"%s\" (core ABI %u.%u)", spec, spec, strchr(spec, '/') ? "" : ".so", search_path ? search_path : "", TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        free(p);
        return TORPOR_ENOENT;
    }
    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        tpr_diag_add(diag, file, line, "could not load plugin \"%s\": %s (core ABI %u.%u)", p->path, dlerror(), TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        tpr_plugin_close(p);
        return TORPOR_EIO;
    }
    /* POSIX guarantees that a function pointer survives this round trip. */
    *(void **)&entry = dlsym(p->dl, TORPOR_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        tpr_diag_add(diag, file, line, "could not load plugin \"%s\": no entry point \"%s\" (core ABI %u.%u)", p->path, TORPOR_PLUGIN_ENTRY_SYMBOL, TORPOR_ABI_MAJOR, TORPOR_ABI_MINOR);
        tpr_plugin_close(p);
        return TORPOR_EABI;
    }
    err = loader_check_desc(p, entry(), file, line, diag);
    if (err != TORPOR_OK) {
        tpr_plugin_close(p);
        return err;
    }
    *out = p;
    return TORPOR_OK;
}

bool
tpr_plugin_has_reload(const struct torpor_plugin_ctx *p)
{
    /* desc is zero past the plugin's size; the check says so outright. */
    return p->desc.size >= offsetof(struct torpor_plugin, reload)
                               + sizeof(p->desc.reload)
           && p->desc.reload != NULL;
}

bool
tpr_plugin_has_configured(const struct torpor_plugin_ctx *p)
{
    return p->desc.size >= offsetof(struct torpor_plugin, configured)
                               + sizeof(p->desc.configured)
           && p->desc.configured != NULL;
}

void
tpr_plugin_destroy(struct torpor_plugin_ctx *p)
{
    if (p->created && p->desc.destroy != NULL) {
        p->desc.destroy(p->state);
    }
    p->state = NULL;
    p->created = false;
}

void
tpr_plugin_close(struct torpor_plugin_ctx *p)
{
    if (p == NULL) {
        return;
    }
    tpr_plugin_destroy(p);
    tpr_auto_table_free(p->auto_responses);
    /* Under ASan, keep the code mapped so leak reports can name plugins. */
    if (p->dl != NULL && getenv("TORPOR_NO_DLCLOSE") == NULL) {
        dlclose(p->dl);
    }
    free(p->path);
    free(p);
}
