/*
 * torpor/storage.h: what the core asks of a storage plugin.
 *
 * Storage is per object: each object has its own key-value space and its
 * own alarms.  Keys and values are byte strings that may hold NUL; keys
 * sort bytewise (memcmp, a prefix before its extensions).  Every operation
 * is asynchronous: the call only queues it and returns TORPOR_OK, and the
 * plugin later calls the completion exactly once, on the loop given with
 * the call (host->loop_post reaches a loop from any thread).  A completion
 * never runs inside the call that queued it.  A call that returns anything
 * but TORPOR_OK queued nothing and never calls back.
 *
 * Everything an operation's arguments point to (keys, values, names, the
 * object) is only read during the call: the plugin copies what it keeps.
 *
 * Operations of one object complete in the order they were queued, and a
 * read queued after a commit sees that commit.  Size limits on keys and
 * values are enforced by the core before a call reaches the plugin.
 */
#ifndef TORPOR_ABI_STORAGE_H
#define TORPOR_ABI_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The object an operation is about.  id is what the plugin keys on; class
 * and name are recorded with the object's first commit so that objects can
 * be enumerated and copied to another backend.
 */
typedef struct torpor_storage_object {
    uint8_t id[16];
    const char *class_name;     /* NUL-terminated */
    torpor_bytes name;
} torpor_storage_object;

/* One change of an atomic batch. */
typedef enum torpor_write_kind {
    TORPOR_WRITE_PUT = 1,           /* key = value */
    TORPOR_WRITE_DELETE = 2,        /* remove key; absent is not an error */
    TORPOR_WRITE_ALARM_SET = 3,     /* alarm key fires at time_ms */
    TORPOR_WRITE_ALARM_DELETE = 4   /* remove alarm key; absent is fine */
} torpor_write_kind;

typedef struct torpor_write {
    uint32_t kind;          /* a torpor_write_kind */
    torpor_bytes key;       /* the key, or the alarm's name */
    torpor_bytes value;     /* TORPOR_WRITE_PUT only */
    uint64_t time_ms;       /* TORPOR_WRITE_ALARM_SET: wall clock, ms since
                               1970 */
} torpor_write;

/*
 * A row of a read.  For get, rows come in the order of the keys asked for
 * and found says whether the key exists (an empty value is a value).
 */
typedef struct torpor_kv {
    torpor_bytes key;
    torpor_bytes value;
    bool found;
} torpor_kv;

/*
 * Which keys a list returns: those that start with prefix, and lie in
 * [start, end), each bound only if has_start / has_end.  Ascending, or
 * descending if reverse; at most limit rows (0: no limit), counted in that
 * order.
 */
typedef struct torpor_range {
    torpor_bytes prefix;
    torpor_bytes start;
    torpor_bytes end;
    bool has_start;
    bool has_end;
    bool reverse;
    uint32_t limit;
} torpor_range;

/* An alarm: an object's named timer, kept in storage. */
typedef struct torpor_alarm {
    torpor_storage_object object;
    torpor_bytes name;
    uint64_t time_ms;
} torpor_alarm;

/*
 * Completions.  Everything they point to is valid only during the call.
 * err is TORPOR_OK, TORPOR_EIO (the backend failed or is unreachable:
 * nothing of a failed commit was applied), TORPOR_ECLOSED (the plugin is
 * shutting down), TORPOR_ENOMEM.
 */
typedef void (*torpor_storage_done_cb)(void *arg, torpor_err err);
typedef void (*torpor_storage_rows_cb)(void *arg, torpor_err err,
                                       const torpor_kv *rows, size_t n);
typedef void (*torpor_storage_alarms_cb)(void *arg, torpor_err err,
                                         const torpor_alarm *alarms,
                                         size_t n);
typedef void (*torpor_storage_objects_cb)(void *arg, torpor_err err,
                                          const torpor_storage_object *objs,
                                          size_t n);

struct torpor_storage_ops {
    uint32_t size;  /* sizeof(struct torpor_storage_ops) at build time */

    /* get reads keys[0..n).  Mandatory. */
    torpor_err (*get)(void *state, torpor_loop *loop,
                      const torpor_storage_object *object,
                      const torpor_bytes *keys, size_t n,
                      torpor_storage_rows_cb cb, void *arg);

    /* list reads the rows range selects.  Mandatory. */
    torpor_err (*list)(void *state, torpor_loop *loop,
                       const torpor_storage_object *object,
                       const torpor_range *range,
                       torpor_storage_rows_cb cb, void *arg);

    /*
     * commit applies writes[0..n) atomically: all or nothing, in order (a
     * later write to the same key wins).  TORPOR_OK in the completion means
     * durable as the plugin's sync policy promises.  The plugin may group
     * the commits of many objects into one sync.  Mandatory.
     */
    torpor_err (*commit)(void *state, torpor_loop *loop,
                         const torpor_storage_object *object,
                         const torpor_write *writes, size_t n,
                         torpor_storage_done_cb cb, void *arg);

    /* alarms reads every alarm of object, by name.  Mandatory. */
    torpor_err (*alarms)(void *state, torpor_loop *loop,
                         const torpor_storage_object *object,
                         torpor_storage_alarms_cb cb, void *arg);

    /*
     * alarms_due reads alarms of any object due at or before before_ms,
     * earliest first, at most limit (> 0).  Mandatory.
     */
    torpor_err (*alarms_due)(void *state, torpor_loop *loop,
                             uint64_t before_ms, uint32_t limit,
                             torpor_storage_alarms_cb cb, void *arg);

    /*
     * objects enumerates objects that have data or alarms, in id order,
     * starting after the id after (NULL: from the first), at most limit
     * (> 0).  Fewer than limit means the end.  Mandatory.
     */
    torpor_err (*objects)(void *state, torpor_loop *loop,
                          const uint8_t *after, uint32_t limit,
                          torpor_storage_objects_cb cb, void *arg);

    /* drop deletes every key and alarm of object, atomically. Mandatory. */
    torpor_err (*drop)(void *state, torpor_loop *loop,
                       const torpor_storage_object *object,
                       torpor_storage_done_cb cb, void *arg);
};

#ifdef __cplusplus
}
#endif

#endif /* TORPOR_ABI_STORAGE_H */
