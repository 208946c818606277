/*
 * tests/file_store_util.h: the harness of check_file_store and
 * check_file_recover.  It loads the file storage plugin from
 * plugins/.libs/file.so, drives it through its descriptor with the core's
 * own host table and loop, renders each completion as text for comparing,
 * and reads, cuts and flips the segment files it leaves on disk.
 *
 * Every test runs in a temporary directory, BASE, that the checked
 * fixture makes and removes; a store lives in a folder of it, BASE/sub.
 * The harness allocates nothing a test must free, except what
 * fx_file_read returns and what fx_dir_save fills (fx_dir_free).
 */
#ifndef TORPOR_TESTS_FILE_STORE_UTIL_H
#define TORPOR_TESTS_FILE_STORE_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/host.h>
#include <torpor/storage.h>
#include <torpor/types.h>

#include "core/loader.h"

/* A byte string literal; writes of one key, for commit batches. */
#define FX_B(s) ((torpor_bytes){(s), sizeof(s) - 1})
#define FX_PUT(k, v)                                                           \
    ((torpor_write){.kind = TORPOR_WRITE_PUT, .key = FX_B(k), .value = FX_B(v)})
#define FX_DEL(k) ((torpor_write){.kind = TORPOR_WRITE_DELETE, .key = FX_B(k)})
#define FX_ALARM(k, t)                                                         \
    ((torpor_write){                                                           \
        .kind = TORPOR_WRITE_ALARM_SET, .key = FX_B(k), .time_ms = (t)})
#define FX_N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture: a temporary directory, a loop, a host, a log ---- */

extern char fx_base[64];           /* BASE, this test's directory */
extern torpor_loop *fx_loop;       /* the loop completions arrive on */
extern struct torpor_host fx_host; /* the core's host table */
extern int fx_done;                /* completions since the last fx_wait_done */

/*
 * What the plugin logged since the test began or the last fx_log_clear.
 * The worker logs from its own thread: read fx_log under fx_log_mu.
 */
extern pthread_mutex_t fx_log_mu;
extern char *fx_log;

/* Checked fixture: BASE, the loop and host, and a log sink per test. */
void fx_setup(void);
void fx_teardown(void);

/* fx_log_clear forgets what was logged so far. */
void fx_log_clear(void);
/* fx_assert_logged checks that the log holds text. */
void fx_assert_logged(const char *text);

/* fx_path writes BASE/name into buf[0..size). */
void fx_path(char *buf, size_t size, const char *name);

/* ---- driving the plugin ---- */

/* A loaded plugin and its instance; open once start succeeded. */
struct fx_store {
    struct torpor_plugin_ctx *p;
    void *st;
    bool open;
};

/* fx_ops: the storage ops of s's plugin. */
const struct torpor_storage_ops *fx_ops(struct fx_store *s);
/* fx_plugin_path: $TORPOR_PLUGIN_PATH, else plugins/.libs. */
const char *fx_plugin_path(void);

/*
 * fx_store_open loads and starts a store on BASE/sub with the key, value
 * pairs of kv (NULL-terminated); returns what start returned.
 */
torpor_err fx_store_open(struct fx_store *s, const char *sub,
                         const char *const *kv);
/* fx_drain runs completions already posted to the loop. */
void fx_drain(void);
/* fx_store_close destroys the store, runs its last completions, unloads. */
void fx_store_close(struct fx_store *s);
/* fx_wait_done runs the loop until n completions have arrived. */
void fx_wait_done(int n);

/*
 * fx_obj: an object of class "chat" named name, whose id is the name's
 * first 16 bytes, so ids sort like the names.  It points into name.
 */
torpor_storage_object fx_obj(const char *name);

/* ---- completions: each renders its result as text for comparing ---- */

struct fx_result {
    torpor_err err;
    char text[8192];
    int seq; /* the order in which completions arrived */
};

/*
 * Completion callbacks taking a struct fx_result as arg: each records the
 * code and the arrival order, counts in fx_done and breaks the loop.
 * fx_on_rows renders rows as "key=value" ("key=-" when not found),
 * fx_on_alarms as "class/object:name@time", fx_on_objects as names, all
 * comma-separated.
 */
void fx_on_done(void *arg, torpor_err err);
void fx_on_rows(void *arg, torpor_err err, const torpor_kv *rows, size_t n);
void fx_on_alarms(void *arg, torpor_err err, const torpor_alarm *a, size_t n);
void fx_on_objects(void *arg, torpor_err err, const torpor_storage_object *o,
                   size_t n);

/* fx_commit queues a commit, waits, and returns what it completed with. */
torpor_err fx_commit(struct fx_store *s, const torpor_storage_object *o,
                     const torpor_write *w, size_t n);
/* fx_drop drops o, waits, and asserts TORPOR_OK. */
void fx_drop(struct fx_store *s, const torpor_storage_object *o);

/*
 * Queue one read, wait, assert TORPOR_OK and return its rendering;
 * fx_get_text: "key=value" rows of a get, "key=-" when absent.
 */
struct fx_result fx_get_text(struct fx_store *s, const torpor_storage_object *o,
                             const torpor_bytes *keys, size_t n);
struct fx_result fx_list_text(struct fx_store *s,
                              const torpor_storage_object *o,
                              const torpor_range *range);
struct fx_result fx_alarms_text(struct fx_store *s,
                                const torpor_storage_object *o);
struct fx_result fx_due_text(struct fx_store *s, uint64_t before,
                             uint32_t limit);
struct fx_result fx_objects_text(struct fx_store *s, const uint8_t *after,
                                 uint32_t limit);

/* The range of every key of an object. */
extern const torpor_range fx_all_keys;

/* ---- files ---- */

/* fx_file_size: the size of path, which must exist. */
uint64_t fx_file_size(const char *path);
/* fx_file_read returns all of path in memory the caller frees. */
uint8_t *fx_file_read(const char *path, size_t *len);
/* fx_file_write replaces path with p[0..len). */
void fx_file_write(const char *path, const uint8_t *p, size_t len);
/* fx_file_flip flips one bit of the byte at off of path. */
void fx_file_flip(const char *path, uint64_t off);

/* A directory's segment files, as they were at one moment. */
struct fx_dir_copy {
    size_t n;
    char name[64][32];
    uint8_t *data[64];
    size_t len[64];
    uint8_t kind[64]; /* from each segment's header record */
};

/* fx_dir_save copies the segments of BASE/sub, by name; fx_dir_free. */
void fx_dir_save(const char *sub, struct fx_dir_copy *c);
void fx_dir_free(struct fx_dir_copy *c);
/*
 * fx_dir_put writes file i of c into BASE/sub, cut to len bytes, under
 * name, or under its own name when name is NULL.
 */
void fx_dir_put(const char *sub, const struct fx_dir_copy *c, size_t i,
                size_t len, const char *name);
/* fx_dir_make creates the folder BASE/sub. */
void fx_dir_make(const char *sub);

/* fx_seg_count: the .seg files in BASE/sub; fx_seg_bytes: their bytes. */
size_t fx_seg_count(const char *sub);
uint64_t fx_seg_bytes(const char *sub);

#endif /* TORPOR_TESTS_FILE_STORE_UTIL_H */
