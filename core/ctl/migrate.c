/*
 * core/ctl/migrate.c: torporctl migrate copies every object's keys and
 * alarms from one storage backend to another, then counts both sides.
 *
 * An object is copied in chunks of MIGRATE_CHUNK keys, each chunk one
 * atomic commit, so an object larger than a commit can hold still moves;
 * a migration interrupted half way leaves the destination partly filled,
 * which is why it refuses a destination that is not empty.  Run it with
 * torpord stopped: writes made meanwhile would be missed.
 */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ctl/ctl.h"
#include "core/ctl/sync.h"
#include "core/log.h"

#define MIGRATE_PAGE 128
#define MIGRATE_CHUNK 256

struct migrate_counts {
    uint64_t objects;
    uint64_t keys;
    uint64_t alarms;
    uint64_t bytes;
};

/* migrate_count_object adds one object's keys and alarms to c. */
static torpor_err
migrate_count_object(struct tpr_storage *s, torpor_loop *loop,
                     const torpor_storage_object *o,
                     struct migrate_counts *c)
{
    struct ctl_result r;
    torpor_range range = {.limit = MIGRATE_CHUNK};
    uint8_t *last = NULL;
    torpor_err err;

    for (;;) {
        err = ctl_list(s, loop, o, &range, &r);
        if (err != TORPOR_OK) {
            ctl_result_free(&r);
            break;
        }
        for (size_t i = 0; i < r.nrows; i++) {
            c->bytes += r.rows[i].key.len + r.rows[i].value.len;
        }
        c->keys += r.nrows;
        size_t n = r.nrows;
        if (n > 0) {
            /* Continue just after the last key: it plus a NUL byte. */
            torpor_bytes k = r.rows[n - 1].key;
            free(last);
            last = malloc(k.len + 1);
            if (last == NULL) {
                ctl_result_free(&r);
                return TORPOR_ENOMEM;
            }
            memcpy(last, k.data, k.len);
            last[k.len] = 0;
            range.start = (torpor_bytes){.data = last, .len = k.len + 1};
            range.has_start = true;
        }
        ctl_result_free(&r);
        if (n < MIGRATE_CHUNK) {
            break;
        }
    }
    free(last);
    if (err == TORPOR_OK) {
        err = ctl_alarms(s, loop, o, &r);
        c->alarms += r.nalarms;
        ctl_result_free(&r);
    }
    c->objects++;
    return err;
}

/* migrate_copy_object copies one object, chunk by chunk. */
static torpor_err
migrate_copy_object(struct tpr_storage *from, struct tpr_storage *to,
                    torpor_loop *loop, const torpor_storage_object *o)
{
    struct ctl_result rows, alarms;
    torpor_range range = {.limit = MIGRATE_CHUNK};
    uint8_t *last = NULL;
    torpor_err err = ctl_alarms(from, loop, o, &alarms);
    bool first = true;

    if (err != TORPOR_OK) {
        ctl_result_free(&alarms);
        return err;
    }
    torpor_write *w = calloc(MIGRATE_CHUNK + alarms.nalarms + 1, sizeof(*w));
    if (w == NULL) {
        ctl_result_free(&alarms);
        return TORPOR_ENOMEM;
    }
    for (;;) {
        err = ctl_list(from, loop, o, &range, &rows);
        if (err != TORPOR_OK) {
            ctl_result_free(&rows);
            break;
        }
        size_t n = 0;
        for (size_t i = 0; i < rows.nrows; i++) {
            w[n++] = (torpor_write){.kind = TORPOR_WRITE_PUT,
                                    .key = rows.rows[i].key,
                                    .value = rows.rows[i].value};
        }
        /* Alarms ride with the first chunk. */
        for (size_t i = 0; first && i < alarms.nalarms; i++) {
            w[n++] = (torpor_write){.kind = TORPOR_WRITE_ALARM_SET,
                                    .key = alarms.alarms[i].name,
                                    .time_ms = alarms.alarms[i].time_ms};
        }
        first = false;
        if (n > 0) {
            err = ctl_commit(to, loop, o, w, n);
        }
        size_t got = rows.nrows;
        if (err == TORPOR_OK && got > 0) {
            torpor_bytes k = rows.rows[got - 1].key;
            free(last);
            last = malloc(k.len + 1);
            if (last == NULL) {
                err = TORPOR_ENOMEM;
            } else {
                memcpy(last, k.data, k.len);
                last[k.len] = 0;
                range.start = (torpor_bytes){.data = last, .len = k.len + 1};
                range.has_start = true;
            }
        }
        ctl_result_free(&rows);
        if (err != TORPOR_OK || got < MIGRATE_CHUNK) {
            break;
        }
    }
    free(last);
    free(w);
    ctl_result_free(&alarms);
    return err;
}

/*
 * migrate_walk visits every object of s, copying each to to (if not NULL)
 * and counting it in c.
 */
static torpor_err
migrate_walk(struct tpr_storage *s, struct tpr_storage *to,
             torpor_loop *loop, struct migrate_counts *c)
{
    uint8_t after[16];
    bool have_after = false;

    for (;;) {
        struct ctl_result page;
        torpor_err err = ctl_objects(s, loop, have_after ? after : NULL,
                                     MIGRATE_PAGE, &page);
        for (size_t i = 0; err == TORPOR_OK && i < page.nobjects; i++) {
            const torpor_storage_object *o = &page.objects[i];
            if (to != NULL) {
                err = migrate_copy_object(s, to, loop, o);
            }
            if (err == TORPOR_OK) {
                err = migrate_count_object(s, loop, o, c);
            }
        }
        size_t n = page.nobjects;
        if (n > 0) {
            memcpy(after, page.objects[n - 1].id, sizeof(after));
            have_after = true;
        }
        ctl_result_free(&page);
        if (err != TORPOR_OK) {
            return err;
        }
        if (n < MIGRATE_PAGE) {
            return TORPOR_OK;
        }
    }
}

int
ctl_migrate(struct tpr_runtime *from, struct tpr_runtime *to)
{
    struct migrate_counts src = {0}, dst = {0};
    struct ctl_result probe;
    torpor_loop *loop = from->loop;

    torpor_err err = ctl_objects(&to->storage, loop, NULL, 1, &probe);
    size_t present = probe.nobjects;
    ctl_result_free(&probe);
    if (err != TORPOR_OK) {
        tpr_log(TORPOR_LOG_ERR, "ctl", NULL, "could not read the destination: %s", tpr_strerror(err));
        return 1;
    }
    if (present > 0) {
        tpr_log(TORPOR_LOG_ERR, "ctl", NULL, "could not migrate: the destination already holds objects; migrate into an empty backend");
        return 1;
    }
    err = migrate_walk(&from->storage, &to->storage, loop, &src);
    if (err != TORPOR_OK) {
        tpr_log(TORPOR_LOG_ERR, "ctl", NULL, "could not migrate: %s after %llu objects", tpr_strerror(err), (unsigned long long)src.objects);
        return 1;
    }
    err = migrate_walk(&to->storage, NULL, loop, &dst);
    if (err != TORPOR_OK) {
        tpr_log(TORPOR_LOG_ERR, "ctl", NULL, "could not count the destination: %s", tpr_strerror(err));
        return 1;
    }
    printf("source:      %llu objects, %llu keys, %llu alarms, %llu bytes\n",
           (unsigned long long)src.objects, (unsigned long long)src.keys,
           (unsigned long long)src.alarms, (unsigned long long)src.bytes);
    printf("destination: %llu objects, %llu keys, %llu alarms, %llu bytes\n",
           (unsigned long long)dst.objects, (unsigned long long)dst.keys,
           (unsigned long long)dst.alarms, (unsigned long long)dst.bytes);
    if (memcmp(&src, &dst, sizeof(src)) != 0) {
        tpr_log(TORPOR_LOG_ERR, "ctl", NULL, "migration incomplete: the counts differ");
        return 1;
    }
    printf("migrated: counts match\n");
    return 0;
}
