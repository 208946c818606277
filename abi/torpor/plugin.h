/*
 * torpor/plugin.h: the descriptor a plugin hands to the core.
 *
 * A plugin is a shared object that exports one function,
 * torpor_plugin_entry(), returning a pointer to a static struct
 * torpor_plugin.  The core dlopen()s the file, calls the entry point once and
 * checks the fixed header before it touches anything else: the magic, the
 * ABI major version (must equal the core's), the ABI minor version (must
 * not be newer than the core's) and the size (must cover every field the
 * core needs).  A plugin built against ABI 1.x therefore loads into every
 * core 1.y with y >= x.
 */
#ifndef TORPOR_ABI_PLUGIN_H
#define TORPOR_ABI_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <torpor/types.h>
#include <torpor/host.h>
#include <torpor/transport.h>
#include <torpor/class.h>
#include <torpor/storage.h>
#include <torpor/room.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "tpr1": the upper half is non-zero so zeroed memory never matches. */
#define TORPOR_PLUGIN_MAGIC 0x74707231u

#define TORPOR_ABI_MAJOR 1
#define TORPOR_ABI_MINOR 1

/* The name of the one symbol a plugin exports. */
#define TORPOR_PLUGIN_ENTRY_SYMBOL "torpor_plugin_entry"

typedef enum torpor_plugin_kind {
    TORPOR_KIND_TRANSPORT = 1,
    TORPOR_KIND_STORAGE = 2,   /* see torpor/storage.h */
    TORPOR_KIND_CLASS = 3
} torpor_plugin_kind;

/*
 * torpor_config_report files one problem of a plugin's configuration, for
 * its configured hook: key is the key at fault in the plugin's section
 * (NULL for the section as a whole), reason a short text as configure's
 * why.  Both are copied before it returns.
 */
typedef void (*torpor_config_report)(void *ctx, const char *key,
                                     const char *reason);

struct torpor_plugin {
    /* Fixed header: filled by TORPOR_PLUGIN_HEADER, never by hand. */
    uint32_t magic;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size;          /* sizeof(struct torpor_plugin) at build time */
    uint32_t kind;          /* a torpor_plugin_kind */
    const char *name;       /* unique per kind: "websocket", "relay" */
    const char *version;    /* the plugin's own version, for logs */

    /*
     * create makes the plugin's state.  Called once, on the main thread,
     * before any other hook; self identifies the plugin in host calls and
     * lives until destroy returns.  Mandatory.
     */
    torpor_err (*create)(const struct torpor_host *host,
                         torpor_plugin_ctx *self, void **state);

    /*
     * configure receives one key of the plugin's config section
     * ("[transport.websocket]", "[class.chat]", "[storage.file]") per call,
     * on the main thread, after create and before start.  Returns
     * TORPOR_ENOKEY for a key it does not know, TORPOR_EINVAL for a bad value
     * with a short reason written to why (NUL-terminated, lowercase, no
     * final period); the core reports both with the file and line.  NULL:
     * the plugin takes no keys.
     */
    torpor_err (*configure)(void *state, const char *key, const char *value,
                            char *why, size_t why_size);

    /*
     * start brings the plugin into service once the whole configuration has
     * been accepted: a transport binds its listeners here.  Main thread.
     * Optional.
     */
    torpor_err (*start)(void *state);

    /*
     * stop begins a shutdown: a transport stops accepting and drops peers
     * still in their handshake.  The core closes attached connections
     * itself.  Main thread, loop still running.  Optional.
     */
    void (*stop)(void *state);

    /* destroy frees the state; no call reaches the plugin afterwards. */
    void (*destroy)(void *state);

    /* The kind's own table; the one matching kind must be non-NULL. */
    union {
        const struct torpor_transport_ops *transport;
        const struct torpor_class_ops *klass;
        const struct torpor_storage_ops *storage;
    } ops;

    /* ---- ABI 1.1 ---- */

    /*
     * reload re-reads what the plugin can change while it runs (a
     * transport's TLS certificate, say) after the daemon received SIGHUP.
     * Main thread, loop running, after start; it may read files but must
     * not wait on the network.  A failure must leave the plugin serving as
     * before: the plugin logs why and returns its code (TORPOR_EINVAL for
     * bad files), which the core only counts.  Optional; the core calls it
     * only for a descriptor whose size covers it.
     */
    torpor_err (*reload)(void *state);

    /*
     * configured looks at the plugin's configuration as a whole, once
     * configure has had every key of the plugin's section: what no single
     * key shows, such as a key that needs another one, or a key that names
     * a route.  routes are the names of the daemon's routes, n_routes of
     * them, valid during the call.  For each problem the plugin calls
     * report(ctx, ...) (torpor_config_report); the core files each with
     * the line of its key, so one call can report several.  Returns
     * TORPOR_OK, or TORPOR_EINVAL when it reported anything.  Main thread,
     * after the last configure and before start; torpord --check-config
     * calls it too.  Optional; the core calls it only for a descriptor
     * whose size covers it.
     */
    torpor_err (*configured)(void *state, const char *const *routes,
                             size_t n_routes, torpor_config_report report,
                             void *ctx);
};

/*
 * TORPOR_PLUGIN_HEADER fills the fixed header in a designated initializer:
 *
 *     static const struct torpor_plugin plugin = {
 *         TORPOR_PLUGIN_HEADER(TORPOR_KIND_CLASS, "relay", "1.0.0"),
 *         .create = relay_create,
 *         .ops.klass = &relay_ops,
 *     };
 */
#define TORPOR_PLUGIN_HEADER(kind_, name_, version_)                        \
    .magic = TORPOR_PLUGIN_MAGIC, .abi_major = TORPOR_ABI_MAJOR,            \
    .abi_minor = TORPOR_ABI_MINOR, .size = sizeof(struct torpor_plugin),    \
    .kind = (kind_), .name = (name_), .version = (version_)

/* Every plugin defines this, and nothing else is exported. */
TORPOR_API const struct torpor_plugin *torpor_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_PLUGIN_H */
