/*
 * core/loader.h: finding, loading and checking plugins.
 */
#ifndef TORPOR_CORE_LOADER_H
#define TORPOR_CORE_LOADER_H

#include <stdbool.h>

#include <torpor/plugin.h>

#include "core/errors.h"

struct tpr_runtime;

/*
 * The core's record of one loaded plugin; plugins see it as the opaque
 * torpor_plugin_ctx.  desc and the ops are the core's own copies, zero-
 * filled past what the plugin's size covers, so the core reads an optional
 * hook of an older plugin as NULL and never past the plugin's struct.
 */
struct torpor_plugin_ctx {
    char *path;
    void *dl;
    struct torpor_plugin desc;
    union {
        struct torpor_transport_ops transport;
        struct torpor_class_ops klass;
        struct torpor_storage_ops storage;
    } ops;
    void *state;                /* from desc.create */
    struct tpr_auto_table *auto_responses;  /* a class's, or NULL */
    bool created;               /* create succeeded: destroy is owed */
    struct tpr_runtime *rt;
};

/*
 * tpr_plugin_open finds spec (a name looked up as NAME.so in each folder of
 * search_path, or a path if it contains '/'), loads it and checks its
 * descriptor.  Every refusal is one line in diag naming the file, the
 * reason and both ABI versions; file and line say where the config asked
 * for the plugin.  Returns TORPOR_ENOENT (no such file), TORPOR_EIO
 * (dlopen failed), TORPOR_EABI (no entry point, or a descriptor this core
 * cannot use), TORPOR_ENOMEM.  Main thread.
 */
torpor_err tpr_plugin_open(const char *spec, const char *search_path,
                           const char *file, unsigned line,
                           struct tpr_diag *diag,
                           struct torpor_plugin_ctx **out);

/*
 * tpr_plugin_has_reload tells whether p has a reload hook (ABI 1.1): its
 * descriptor is large enough to hold one and it is set.
 */
bool tpr_plugin_has_reload(const struct torpor_plugin_ctx *p);

/*
 * tpr_plugin_has_configured tells whether p has a configured hook (ABI
 * 1.1, after reload): its descriptor is large enough and the hook is set.
 */
bool tpr_plugin_has_configured(const struct torpor_plugin_ctx *p);

/*
 * tpr_plugin_destroy calls the plugin's destroy hook if create succeeded,
 * once; the code stays loaded.
 */
void tpr_plugin_destroy(struct torpor_plugin_ctx *p);

/* tpr_plugin_close destroys the plugin if that is still owed, and unloads. */
void tpr_plugin_close(struct torpor_plugin_ctx *p);

/* tpr_plugin_kind_name: "transport", "class", "storage" or "unknown". */
const char *tpr_plugin_kind_name(uint32_t kind);

#endif /* TORPOR_CORE_LOADER_H */
