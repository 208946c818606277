/*
 * tests/storage_util.h: the harness of check_storage.  It starts a
 * runtime on the backend the binary was built for, queues storage
 * operations through core/storage.h and runs the loop until they complete,
 * keeping deep copies of what each completion delivered.
 *
 * Everything the harness allocates for a test (operations, copies of rows,
 * object names) lives in an arena freed by st_teardown, so tests free
 * nothing themselves.
 */
#ifndef TORPOR_TESTS_STORAGE_UTIL_H
#define TORPOR_TESTS_STORAGE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/storage.h>

#include "core/runtime.h"

#if defined(STORAGE_BACKEND_FILE)
#define ST_BACKEND "file"
#elif defined(STORAGE_BACKEND_POSTGRES)
#define ST_BACKEND "postgres"
#else
#error "build with -DSTORAGE_BACKEND_FILE or -DSTORAGE_BACKEND_POSTGRES"
#endif

/*
 * Alarm times of every test but alarms_due's, whose alarms lie below 1e12:
 * tests sharing a database thus never see each other's alarms as due.
 */
#define ST_FAR 4000000000000ULL

/* How long one wait may take before the test fails as hung. */
#define ST_WAIT_MS 60000

/* A byte string literal, NULs included; any run of bytes. */
#define ST_B(s) ((torpor_bytes){(s), sizeof(s) - 1})
#define ST_BYTES(p, n) ((torpor_bytes){(p), (n)})

#define ST_PUT(k, v)                                                           \
    ((torpor_write){.kind = TORPOR_WRITE_PUT, .key = ST_B(k), .value = ST_B(v)})
#define ST_DEL(k) ((torpor_write){.kind = TORPOR_WRITE_DELETE, .key = ST_B(k)})
#define ST_ALARM(k, t)                                                         \
    ((torpor_write){                                                           \
        .kind = TORPOR_WRITE_ALARM_SET, .key = ST_B(k), .time_ms = (t)})
#define ST_UNALARM(k)                                                          \
    ((torpor_write){.kind = TORPOR_WRITE_ALARM_DELETE, .key = ST_B(k)})

#define ST_N(a) (sizeof(a) / sizeof((a)[0]))

/* A copied row, alarm or object of a completion. */
struct st_row {
    torpor_bytes key;
    torpor_bytes value;
    bool found;
};

struct st_alarm {
    torpor_storage_object object;
    torpor_bytes name;
    uint64_t time_ms;
};

/*
 * One queued operation and what its completion reported.  calls counts
 * completions (the ABI promises exactly one); inside and off_thread catch
 * a completion run within the queuing call or away from the test's loop.
 */
struct st_op {
    torpor_loop *loop;
    bool returned; /* the queuing call has returned */
    bool accepted; /* ... and returned TORPOR_OK */
    bool inside;
    bool off_thread;
    unsigned calls;
    unsigned order; /* 1-based, in completion order of the test */
    torpor_err err;
    struct st_row *rows;
    size_t nrows;
    struct st_alarm *alarms;
    size_t nalarms;
    torpor_storage_object *objs;
    size_t nobjs;
    struct st_op *next_op; /* every op of the test, for st_teardown */
};

/* The running runtime; NULL between st_runtime_close and _open. */
extern struct tpr_runtime *st_rt;

/* Unchecked fixture: the scratch folder, and PostgreSQL when needed. */
void st_global_setup(void);
void st_global_teardown(void);
/* main calls this after the run: stops what st_global_setup started. */
void st_global_cleanup(void);

/* Checked fixture: a fresh config and a started runtime per test. */
void st_setup(void);
void st_teardown(void);

/* Restart support: stop and free the runtime, or start it again. */
void st_runtime_close(void);
void st_runtime_open(void);

/* st_alloc returns zeroed arena memory; st_dup copies len bytes into it. */
void *st_alloc(size_t size);
void *st_dup(const void *data, size_t len);

/*
 * st_name makes a name no other test of this run uses, "<tag>-<pid>-<n>",
 * so tests sharing one PostgreSQL database never see each other's data.
 */
const char *st_name(const char *tag);

/* st_object builds an object of (class_name, name[0..len)) in the arena. */
const torpor_storage_object *st_object(const char *class_name, const void *name,
                                       size_t len);
/* st_fresh_object: an object of class "storage" with an st_name name. */
const torpor_storage_object *st_fresh_object(const char *tag);

/* Queue one operation; returns what the queuing call returned. */
struct st_op *st_op_new(void);
torpor_err st_queue_get(struct st_op *op, const torpor_storage_object *o,
                        const torpor_bytes *keys, size_t n);
torpor_err st_queue_list(struct st_op *op, const torpor_storage_object *o,
                         const torpor_range *range);
torpor_err st_queue_commit(struct st_op *op, const torpor_storage_object *o,
                           const torpor_write *writes, size_t n);
torpor_err st_queue_alarms(struct st_op *op, const torpor_storage_object *o);
torpor_err st_queue_alarms_due(struct st_op *op, uint64_t before_ms,
                               uint32_t limit);
torpor_err st_queue_objects(struct st_op *op, const uint8_t *after,
                            uint32_t limit);
torpor_err st_queue_drop(struct st_op *op, const torpor_storage_object *o);

/*
 * st_wait runs the loop until op has completed, and fails the test if it
 * takes longer than ST_WAIT_MS, completed more than once, inside the
 * queuing call or on another thread.
 */
void st_wait(struct st_op *op);
/* st_settle runs the loop until everything queued so far has completed. */
void st_settle(void);

/*
 * Queue, assert the call was accepted, wait, assert the completion was
 * TORPOR_OK, and return the op for its results.
 */
struct st_op *st_get(const torpor_storage_object *o, const torpor_bytes *keys,
                     size_t n);
struct st_op *st_list(const torpor_storage_object *o,
                      const torpor_range *range);
struct st_op *st_list_all(const torpor_storage_object *o);
struct st_op *st_commit(const torpor_storage_object *o,
                        const torpor_write *writes, size_t n);
struct st_op *st_alarms(const torpor_storage_object *o);
struct st_op *st_alarms_due(uint64_t before_ms, uint32_t limit);
struct st_op *st_objects(const uint8_t *after, uint32_t limit);
struct st_op *st_drop(const torpor_storage_object *o);

/* Shorthands for one key. */
void st_put1(const torpor_storage_object *o, torpor_bytes key,
             torpor_bytes value);
/* st_assert_value: key holds exactly value. */
void st_assert_value(const torpor_storage_object *o, torpor_bytes key,
                     torpor_bytes value);
/* st_assert_missing: key does not exist. */
void st_assert_missing(const torpor_storage_object *o, torpor_bytes key);

/*
 * st_assert_keys: the rows of op are exactly keys[0..n), in that order,
 * each holding its key as value (how the range tests fill objects).
 */
void st_assert_keys(const struct st_op *op, const torpor_bytes *keys, size_t n);

/* st_assert_row: row i of op is key, found or not, holding value. */
void st_assert_row(const struct st_op *op, size_t i, torpor_bytes key,
                   bool found, torpor_bytes value);

/* st_fill commits key = key for each of keys[0..n), in one batch. */
void st_fill(const torpor_storage_object *o, const torpor_bytes *keys,
             size_t n);

/* st_pattern: len arena bytes of a pattern that holds NUL and 0xff. */
uint8_t *st_pattern(size_t len);

/* st_assert_alarm: alarm i of op is object o's alarm name at time_ms. */
void st_assert_alarm(struct st_op *op, size_t i, const torpor_storage_object *o,
                     torpor_bytes name, uint64_t time_ms);

/*
 * st_alarms_by_name: st_alarms, sorted by name here, since the ABI does
 * not fix the order alarms() answers in.
 */
struct st_op *st_alarms_by_name(const torpor_storage_object *o);

/*
 * st_listed counts how often objects() names o, paging through them all,
 * and fails if it is named with another class or name.
 */
unsigned st_listed(const torpor_storage_object *o);

/* st_assert_refused: call returned want and op never completes. */
void st_assert_refused(struct st_op *op, torpor_err got, torpor_err want);

/* st_bytes_eq: a equals b byte for byte. */
bool st_bytes_eq(torpor_bytes a, torpor_bytes b);
/* st_object_eq: same id, class and name. */
bool st_object_eq(const torpor_storage_object *a,
                  const torpor_storage_object *b);

#endif /* TORPOR_TESTS_STORAGE_UTIL_H */
