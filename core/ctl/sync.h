/*
 * core/ctl/sync.h: blocking wrappers around the asynchronous storage calls,
 * for torporctl, which does one thing at a time.  Each runs the loop until
 * the completion arrives and keeps deep copies of what it returned.
 */
#ifndef TORPOR_CORE_CTL_SYNC_H
#define TORPOR_CORE_CTL_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include <torpor/storage.h>

struct tpr_storage;

/* Rows, objects or alarms returned by one call; free with ctl_result_free. */
struct ctl_result {
    torpor_err err;
    torpor_kv *rows;
    size_t nrows;
    torpor_storage_object *objects;
    size_t nobjects;
    torpor_alarm *alarms;
    size_t nalarms;
};

void ctl_result_free(struct ctl_result *r);

torpor_err ctl_objects(struct tpr_storage *s, torpor_loop *loop,
                       const uint8_t *after, uint32_t limit,
                       struct ctl_result *r);
torpor_err ctl_list(struct tpr_storage *s, torpor_loop *loop,
                    const torpor_storage_object *o, const torpor_range *range,
                    struct ctl_result *r);
torpor_err ctl_alarms(struct tpr_storage *s, torpor_loop *loop,
                      const torpor_storage_object *o, struct ctl_result *r);
torpor_err ctl_commit(struct tpr_storage *s, torpor_loop *loop,
                      const torpor_storage_object *o,
                      const torpor_write *writes, size_t n);

#endif /* TORPOR_CORE_CTL_SYNC_H */
