/*
 * core/storage.h: the configured storage backend, as the rest of the core
 * and torporctl use it.
 *
 * Each call checks the configured limits on keys and values before the
 * plugin sees anything, so every backend refuses the same things the same
 * way: a batch with one oversized key or value is refused whole, at once,
 * with TORPOR_ELIMIT, and nothing of it is applied.  Otherwise the call is
 * the plugin's (torpor/storage.h): it completes exactly once on loop.
 */
#ifndef TORPOR_CORE_STORAGE_H
#define TORPOR_CORE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include <torpor/storage.h>

#include "core/export.h"

struct torpor_plugin_ctx;

/* Alarm names share the key limit; they are short in practice. */
struct tpr_storage {
    struct torpor_plugin_ctx *plugin;
    size_t max_key_bytes;
    size_t max_value_bytes;
};

TPR_EXPORT torpor_err tpr_storage_get(struct tpr_storage *s, torpor_loop *loop,
                                      const torpor_storage_object *object,
                                      const torpor_bytes *keys, size_t n,
                                      torpor_storage_rows_cb cb, void *arg);
TPR_EXPORT torpor_err tpr_storage_list(struct tpr_storage *s,
                                       torpor_loop *loop,
                                       const torpor_storage_object *object,
                                       const torpor_range *range,
                                       torpor_storage_rows_cb cb, void *arg);
TPR_EXPORT torpor_err tpr_storage_commit(struct tpr_storage *s,
                                         torpor_loop *loop,
                                         const torpor_storage_object *object,
                                         const torpor_write *writes, size_t n,
                                         torpor_storage_done_cb cb,
                                         void *arg);
TPR_EXPORT torpor_err tpr_storage_alarms(struct tpr_storage *s,
                                         torpor_loop *loop,
                                         const torpor_storage_object *object,
                                         torpor_storage_alarms_cb cb,
                                         void *arg);
TPR_EXPORT torpor_err tpr_storage_alarms_due(struct tpr_storage *s,
                                             torpor_loop *loop,
                                             uint64_t before_ms,
                                             uint32_t limit,
                                             torpor_storage_alarms_cb cb,
                                             void *arg);
TPR_EXPORT torpor_err tpr_storage_objects(struct tpr_storage *s,
                                          torpor_loop *loop,
                                          const uint8_t *after, uint32_t limit,
                                          torpor_storage_objects_cb cb,
                                          void *arg);
TPR_EXPORT torpor_err tpr_storage_drop(struct tpr_storage *s,
                                       torpor_loop *loop,
                                       const torpor_storage_object *object,
                                       torpor_storage_done_cb cb, void *arg);

/*
 * tpr_storage_object_init fills o for (class_name, name), deriving the id
 * the way the object table does.  The strings are borrowed.
 */
TPR_EXPORT void tpr_storage_object_init(torpor_storage_object *o,
                                        const char *class_name,
                                        const void *name, size_t name_len);

#endif /* TORPOR_CORE_STORAGE_H */
