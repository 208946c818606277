/*
 * tests/storage_util.c: the harness of check_storage (see storage_util.h).
 *
 * Check runs each test in a forked child.  The unchecked fixture runs in
 * the parent, so the scratch folder and the PostgreSQL it starts outlive
 * every test; the checked fixture builds a runtime inside the child.
 */
#include "build-config.h"

#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/errors.h"
#include "core/loop.h"
#include "tests/storage_util.h"

struct tpr_runtime *st_rt;

/* Set in the parent by st_global_setup, inherited by each test's child. */
static char st_base[64];    /* scratch folder of this run */
static pid_t st_base_owner; /* the process that must remove it */
static bool st_global_tried;
#ifdef STORAGE_BACKEND_POSTGRES
static char st_pg_dir[128];
static char st_conninfo[1024];
static bool st_pg_running;
#endif

/* Per test. */
static char st_test_dir[128];
static char st_config_path[192];
static pthread_t st_thread;
static unsigned st_completions;
static unsigned st_names;
static struct st_op *st_ops;

/* ---- arena ---- */

struct st_block {
    struct st_block *next;
    alignas(max_align_t) unsigned char data[];
};

static struct st_block *st_arena;

void *
st_alloc(size_t size)
{
    struct st_block *b = calloc(1, sizeof(*b) + size + 1);

    ck_assert_ptr_nonnull(b);
    b->next = st_arena;
    st_arena = b;
    return b->data;
}

void *
st_dup(const void *data, size_t len)
{
    void *copy = st_alloc(len);

    if (len > 0) {
        memcpy(copy, data, len);
    }
    return copy;
}

static void
st_arena_free(void)
{
    while (st_arena != NULL) {
        struct st_block *next = st_arena->next;
        free(st_arena);
        st_arena = next;
    }
}

/* ---- files ---- */

static int
st_remove_one(const char *path, const struct stat *sb, int flag,
              struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void
st_remove_tree(const char *path)
{
    if (path[0] != '\0') {
        nftw(path, st_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void
st_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "could not create \"%s\"", path);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- PostgreSQL ---- */

#ifdef STORAGE_BACKEND_POSTGRES
static const char *
st_pgctl(void)
{
    static char path[512];
    const char *top = getenv("TOP_SRCDIR");

    snprintf(path, sizeof(path), "%s/tests/pg/pgctl.sh",
             top != NULL ? top : ".");
    return path;
}

/* st_pg_start runs "pgctl.sh start DIR" and keeps its last output line. */
static void
st_pg_start(void)
{
    char cmd[1024];
    char line[1024];

    snprintf(st_pg_dir, sizeof(st_pg_dir), "%s/pg", st_base);
    snprintf(cmd, sizeof(cmd), "'%s' start '%s'", st_pgctl(), st_pg_dir);
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "could not run \"%s\"", cmd);
    while (fgets(line, sizeof(line), p) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != '\0') {
            snprintf(st_conninfo, sizeof(st_conninfo), "%s", line);
        }
    }
    int status = pclose(p);
    ck_assert_msg(status == 0 && st_conninfo[0] != '\0',
                  "\"%s\" failed (status %d, output \"%s\")", cmd, status,
                  st_conninfo);
    st_pg_running = true;
}

static void
st_pg_stop(void)
{
    char cmd[1024];

    if (!st_pg_running) {
        return;
    }
    st_pg_running = false;
    snprintf(cmd, sizeof(cmd), "'%s' stop '%s' >/dev/null", st_pgctl(),
             st_pg_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "# could not stop PostgreSQL: \"%s\" failed\n", cmd);
    }
}
#endif

/* ---- fixtures ---- */

void
st_global_setup(void)
{
    if (st_global_tried) {
        ck_assert_msg(
            st_base[0] != '\0',
            "the scratch folder or PostgreSQL could not be set up; see the first failure");
#ifdef STORAGE_BACKEND_POSTGRES
        ck_assert_msg(st_pg_running,
                      "PostgreSQL did not start; see the first failure");
#endif
        return;
    }
    st_global_tried = true;
    char base[] = "/tmp/torpor-storage-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(base));
    /* Traversable, so that pgctl.sh's unprivileged server reaches pg/. */
    ck_assert_int_eq(chmod(base, 0755), 0);
    snprintf(st_base, sizeof(st_base), "%s", base);
    st_base_owner = getpid();
#ifdef STORAGE_BACKEND_POSTGRES
    st_pg_start();
#endif
}

void
st_global_teardown(void)
{
    /* Kept for the next TCase; st_global_cleanup ends it after the run. */
}

void
st_global_cleanup(void)
{
    if (st_base[0] == '\0' || st_base_owner != getpid()) {
        return;
    }
#ifdef STORAGE_BACKEND_POSTGRES
    st_pg_stop();
#endif
    st_remove_tree(st_base);
    st_base[0] = '\0';
}

void
st_runtime_open(void)
{
    struct tpr_diag diag = {0};
    struct tpr_config *cfg = NULL;

    torpor_err err = tpr_config_load(st_config_path, &cfg, &diag);
    ck_assert_msg(err == TORPOR_OK, "could not load \"%s\": %s\n%s",
                  st_config_path, tpr_strerror(err),
                  diag.text ? diag.text : "");
    /* No classes are loaded: built-in routes the file did not name go too. */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        cfg->routes[i].enabled = false;
    }
    const char *plugins = getenv("TORPOR_PLUGIN_PATH");
    if (plugins != NULL) {
        ck_assert_int_eq(tpr_config_set_plugin_path(cfg, plugins), TORPOR_OK);
    }
    err = tpr_runtime_new(cfg, &diag, &st_rt);
    ck_assert_msg(err == TORPOR_OK, "could not make the runtime: %s\n%s",
                  tpr_strerror(err), diag.text ? diag.text : "");
    tpr_diag_free(&diag);
    ck_assert_ptr_nonnull(st_rt->storage.plugin);
    ck_assert_int_eq(tpr_runtime_start(st_rt), TORPOR_OK);
}

void
st_runtime_close(void)
{
    torpor_loop *loop = st_rt->loop;

    tpr_runtime_stop(st_rt);
    tpr_runtime_free(st_rt);
    st_rt = NULL;
    /* Freeing storage finishes what was queued: each op completed once. */
    for (struct st_op *op = st_ops; op != NULL; op = op->next_op) {
        if (op->loop == loop && op->accepted) {
            ck_assert_msg(
                op->calls == 1,
                "an operation completed %u times by the end of the runtime, not once",
                op->calls);
            ck_assert_msg(!op->off_thread,
                          "an operation completed on another thread");
            op->loop = NULL;
        }
    }
}

void
st_setup(void)
{
    char text[2048];

    ck_assert_msg(st_base[0] != '\0', "no scratch folder");
    st_thread = pthread_self();
    snprintf(st_test_dir, sizeof(st_test_dir), "%s/t-XXXXXX", st_base);
    ck_assert_ptr_nonnull(mkdtemp(st_test_dir));
    snprintf(st_config_path, sizeof(st_config_path), "%s/torpor.conf",
             st_test_dir);
    int len = snprintf(text, sizeof(text),
                       "[core]\n"
                       "plugins =\n"
                       "log_level = warn\n"
                       "[route.relay]\n"
                       "enabled = false\n"
                       "[route.echo]\n"
                       "enabled = false\n"
                       "[storage]\n"
                       "backend = %s\n",
                       ST_BACKEND);
#ifdef STORAGE_BACKEND_FILE
    snprintf(text + len, sizeof(text) - (size_t)len,
             "[storage.file]\ndir = %s/data\n", st_test_dir);
#else
    snprintf(text + len, sizeof(text) - (size_t)len,
             "[storage.postgres]\nconninfo = %s\n", st_conninfo);
#endif
    st_write_file(st_config_path, text);
    st_runtime_open();
}

void
st_teardown(void)
{
    unsigned bad = 0;

    if (st_rt != NULL) {
        st_runtime_close();
    }
    for (struct st_op *op = st_ops; op != NULL; op = op->next_op) {
        if (op->calls > 1 || (op->accepted && op->calls == 0)) {
            bad++;
        }
    }
    st_ops = NULL;
    st_arena_free();
    st_remove_tree(st_test_dir);
    st_test_dir[0] = '\0';
    ck_assert_msg(bad == 0, "%u operations did not complete exactly once", bad);
}

/* ---- objects and names ---- */

const char *
st_name(const char *tag)
{
    char buf[256];

    int len = snprintf(buf, sizeof(buf), "%s-%ld-%u", tag, (long)getpid(),
                       ++st_names);
    return st_dup(buf, (size_t)len + 1);
}

const torpor_storage_object *
st_object(const char *class_name, const void *name, size_t len)
{
    torpor_storage_object *o = st_alloc(sizeof(*o));

    tpr_storage_object_init(o, st_dup(class_name, strlen(class_name) + 1),
                            st_dup(name, len), len);
    return o;
}

const torpor_storage_object *
st_fresh_object(const char *tag)
{
    const char *name = st_name(tag);

    return st_object("storage", name, strlen(name));
}

/* ---- completions ---- */

static void
st_copy_object(torpor_storage_object *dst, const torpor_storage_object *src)
{
    memcpy(dst->id, src->id, sizeof(dst->id));
    dst->class_name =
        src->class_name == NULL
            ? NULL
            : st_dup(src->class_name, strlen(src->class_name) + 1);
    dst->name.data = st_dup(src->name.data, src->name.len);
    dst->name.len = src->name.len;
}

static torpor_bytes
st_copy_bytes(torpor_bytes b)
{
    return (torpor_bytes){st_dup(b.data, b.len), b.len};
}

/* st_complete records the facts every completion must satisfy. */
static struct st_op *
st_complete(void *arg, torpor_err err)
{
    struct st_op *op = arg;

    if (!pthread_equal(pthread_self(), st_thread)) {
        op->off_thread = true;
    }
    if (!op->returned) {
        op->inside = true;
    }
    op->calls++;
    op->order = ++st_completions;
    op->err = err;
    if (op->loop != NULL) {
        tpr_loop_break(op->loop);
    }
    return op;
}

static void
st_on_done(void *arg, torpor_err err)
{
    st_complete(arg, err);
}

static void
st_on_rows(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct st_op *op = st_complete(arg, err);

    if (op->calls != 1 || n == 0) {
        return;
    }
    op->rows = st_alloc(n * sizeof(*op->rows));
    op->nrows = n;
    for (size_t i = 0; i < n; i++) {
        op->rows[i].key = st_copy_bytes(rows[i].key);
        op->rows[i].value = st_copy_bytes(rows[i].value);
        op->rows[i].found = rows[i].found;
    }
}

static void
st_on_alarms(void *arg, torpor_err err, const torpor_alarm *alarms, size_t n)
{
    struct st_op *op = st_complete(arg, err);

    if (op->calls != 1 || n == 0) {
        return;
    }
    op->alarms = st_alloc(n * sizeof(*op->alarms));
    op->nalarms = n;
    for (size_t i = 0; i < n; i++) {
        st_copy_object(&op->alarms[i].object, &alarms[i].object);
        op->alarms[i].name = st_copy_bytes(alarms[i].name);
        op->alarms[i].time_ms = alarms[i].time_ms;
    }
}

static void
st_on_objects(void *arg, torpor_err err, const torpor_storage_object *objs,
              size_t n)
{
    struct st_op *op = st_complete(arg, err);

    if (op->calls != 1 || n == 0) {
        return;
    }
    op->objs = st_alloc(n * sizeof(*op->objs));
    op->nobjs = n;
    for (size_t i = 0; i < n; i++) {
        st_copy_object(&op->objs[i], &objs[i]);
    }
}

/* ---- queueing ---- */

struct st_op *
st_op_new(void)
{
    struct st_op *op = st_alloc(sizeof(*op));

    ck_assert_ptr_nonnull(st_rt);
    op->loop = st_rt->loop;
    op->next_op = st_ops;
    st_ops = op;
    return op;
}

static torpor_err
st_queued(struct st_op *op, torpor_err err)
{
    op->returned = true;
    op->accepted = err == TORPOR_OK;
    return err;
}

torpor_err
st_queue_get(struct st_op *op, const torpor_storage_object *o,
             const torpor_bytes *keys, size_t n)
{
    return st_queued(op, tpr_storage_get(&st_rt->storage, op->loop, o, keys, n,
                                         st_on_rows, op));
}

torpor_err
st_queue_list(struct st_op *op, const torpor_storage_object *o,
              const torpor_range *range)
{
    return st_queued(op, tpr_storage_list(&st_rt->storage, op->loop, o, range,
                                          st_on_rows, op));
}

torpor_err
st_queue_commit(struct st_op *op, const torpor_storage_object *o,
                const torpor_write *writes, size_t n)
{
    return st_queued(op, tpr_storage_commit(&st_rt->storage, op->loop, o,
                                            writes, n, st_on_done, op));
}

torpor_err
st_queue_alarms(struct st_op *op, const torpor_storage_object *o)
{
    return st_queued(
        op, tpr_storage_alarms(&st_rt->storage, op->loop, o, st_on_alarms, op));
}

torpor_err
st_queue_alarms_due(struct st_op *op, uint64_t before_ms, uint32_t limit)
{
    return st_queued(op, tpr_storage_alarms_due(&st_rt->storage, op->loop,
                                                before_ms, limit, st_on_alarms,
                                                op));
}

torpor_err
st_queue_objects(struct st_op *op, const uint8_t *after, uint32_t limit)
{
    return st_queued(op, tpr_storage_objects(&st_rt->storage, op->loop, after,
                                             limit, st_on_objects, op));
}

torpor_err
st_queue_drop(struct st_op *op, const torpor_storage_object *o)
{
    return st_queued(
        op, tpr_storage_drop(&st_rt->storage, op->loop, o, st_on_done, op));
}

/* ---- waiting ---- */

struct st_guard {
    torpor_loop *loop;
    bool fired;
};

static void
st_on_guard(torpor_timer *timer, void *arg)
{
    struct st_guard *g = arg;

    (void)timer;
    g->fired = true;
    tpr_loop_break(g->loop);
}

void
st_wait(struct st_op *op)
{
    ck_assert_msg(op->accepted, "waiting for an operation that was not queued");
    ck_assert_msg(op->loop != NULL,
                  "waiting for an operation of a runtime that is gone");
    if (op->calls == 0) {
        struct st_guard g = {.loop = op->loop};
        torpor_timer *timer;
        ck_assert_int_eq(tpr_timer_open(op->loop, st_on_guard, &g, &timer),
                         TORPOR_OK);
        tpr_timer_arm(timer, ST_WAIT_MS);
        while (op->calls == 0 && !g.fired) {
            ck_assert_int_eq(tpr_loop_run(op->loop), TORPOR_OK);
        }
        tpr_timer_close(timer);
        ck_assert_msg(op->calls > 0,
                      "an operation did not complete within %d ms", ST_WAIT_MS);
    }
    ck_assert_msg(
        !op->off_thread,
        "the completion ran on another thread, not on the loop given");
    ck_assert_msg(!op->inside,
                  "the completion ran inside the call that queued it");
    ck_assert_msg(op->calls == 1, "the completion ran %u times", op->calls);
}

void
st_settle(void)
{
    for (struct st_op *op = st_ops; op != NULL; op = op->next_op) {
        if (op->accepted && op->loop != NULL) {
            st_wait(op);
        }
    }
}

static struct st_op *
st_done_ok(struct st_op *op, torpor_err queued, const char *what)
{
    ck_assert_msg(queued == TORPOR_OK, "%s: the call returned %s", what,
                  tpr_strerror(queued));
    st_wait(op);
    ck_assert_msg(op->err == TORPOR_OK, "%s: completed with %s", what,
                  tpr_strerror(op->err));
    return op;
}

struct st_op *
st_get(const torpor_storage_object *o, const torpor_bytes *keys, size_t n)
{
    struct st_op *op = st_op_new();

    return st_done_ok(op, st_queue_get(op, o, keys, n), "get");
}

struct st_op *
st_list(const torpor_storage_object *o, const torpor_range *range)
{
    struct st_op *op = st_op_new();

    return st_done_ok(op, st_queue_list(op, o, range), "list");
}

struct st_op *
st_list_all(const torpor_storage_object *o)
{
    torpor_range all = {0};

    return st_list(o, &all);
}

struct st_op *
st_commit(const torpor_storage_object *o, const torpor_write *writes, size_t n)
{
    struct st_op *op = st_op_new();

    return st_done_ok(op, st_queue_commit(op, o, writes, n), "commit");
}

struct st_op *
st_alarms(const torpor_storage_object *o)
{
    struct st_op *op = st_op_new();

    return st_done_ok(op, st_queue_alarms(op, o), "alarms");
}

struct st_op *
st_alarms_due(uint64_t before_ms, uint32_t limit)
{
    struct st_op *op = st_op_new();

    return st_done_ok(op, st_queue_alarms_due(op, before_ms, limit),
                      "alarms_due");
}

struct st_op *
st_objects(const uint8_t *after, uint32_t limit)
{
    struct st_op *op = st_op_new();

    return st_done_ok(op, st_queue_objects(op, after, limit), "objects");
}

struct st_op *
st_drop(const torpor_storage_object *o)
{
    struct st_op *op = st_op_new();

    return st_done_ok(op, st_queue_drop(op, o), "drop");
}

/* ---- assertions ---- */

bool
st_bytes_eq(torpor_bytes a, torpor_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

bool
st_object_eq(const torpor_storage_object *a, const torpor_storage_object *b)
{
    return memcmp(a->id, b->id, sizeof(a->id)) == 0 && a->class_name != NULL
           && b->class_name != NULL && strcmp(a->class_name, b->class_name) == 0
           && st_bytes_eq(a->name, b->name);
}

/* st_show renders b for a failure message: printable ASCII, else \xNN. */
static const char *
st_show(torpor_bytes b)
{
    size_t shown = b.len > 64 ? 64 : b.len;
    char *out = st_alloc(shown * 4 + 32);
    const unsigned char *p = b.data;
    size_t at = 0;

    out[at++] = '"';
    for (size_t i = 0; i < shown; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') {
            out[at++] = (char)p[i];
        } else {
            at += (size_t)sprintf(out + at, "\\x%02x", p[i]);
        }
    }
    out[at++] = '"';
    if (shown < b.len) {
        sprintf(out + at, "...(%zu bytes)", b.len);
    }
    return out;
}

void
st_put1(const torpor_storage_object *o, torpor_bytes key, torpor_bytes value)
{
    torpor_write w = {.kind = TORPOR_WRITE_PUT, .key = key, .value = value};

    st_commit(o, &w, 1);
}

void
st_assert_value(const torpor_storage_object *o, torpor_bytes key,
                torpor_bytes value)
{
    struct st_op *op = st_get(o, &key, 1);

    ck_assert_uint_eq(op->nrows, 1);
    ck_assert_msg(op->rows[0].found, "key %s is missing", st_show(key));
    ck_assert_msg(st_bytes_eq(op->rows[0].key, key),
                  "asked %s, the row has key %s", st_show(key),
                  st_show(op->rows[0].key));
    ck_assert_msg(st_bytes_eq(op->rows[0].value, value),
                  "key %s holds %s, not %s", st_show(key),
                  st_show(op->rows[0].value), st_show(value));
}

void
st_assert_missing(const torpor_storage_object *o, torpor_bytes key)
{
    struct st_op *op = st_get(o, &key, 1);

    ck_assert_uint_eq(op->nrows, 1);
    ck_assert_msg(!op->rows[0].found, "key %s exists, holding %s", st_show(key),
                  st_show(op->rows[0].value));
}

void
st_assert_keys(const struct st_op *op, const torpor_bytes *keys, size_t n)
{
    char got[2048] = "";
    size_t at = 0;

    for (size_t i = 0; i < op->nrows && at < sizeof(got) - 80; i++) {
        at += (size_t)snprintf(got + at, sizeof(got) - at, " %s",
                               st_show(op->rows[i].key));
    }
    ck_assert_msg(op->nrows == n, "wanted %zu rows, got %zu:%s", n, op->nrows,
                  got);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(st_bytes_eq(op->rows[i].key, keys[i]),
                      "row %zu: wanted key %s, got:%s", i, st_show(keys[i]),
                      got);
        ck_assert_msg(st_bytes_eq(op->rows[i].value, keys[i]),
                      "row %zu: key %s holds %s", i, st_show(keys[i]),
                      st_show(op->rows[i].value));
    }
}

void
st_assert_refused(struct st_op *op, torpor_err got, torpor_err want)
{
    ck_assert_msg(got == want, "the call returned %s, wanted %s",
                  tpr_strerror(got), tpr_strerror(want));
    /* A refused call queued nothing: a later operation overtakes nothing. */
    const torpor_storage_object *probe = st_fresh_object("probe");
    torpor_bytes key = ST_B("k");
    st_get(probe, &key, 1);
    ck_assert_msg(op->calls == 0, "a refused call completed %u times",
                  op->calls);
}

/* ---- helpers of the cases ---- */

void
st_assert_row(const struct st_op *op, size_t i, torpor_bytes key, bool found,
              torpor_bytes value)
{
    ck_assert_uint_gt(op->nrows, i);
    ck_assert_msg(st_bytes_eq(op->rows[i].key, key), "row %zu has another key",
                  i);
    ck_assert_msg(op->rows[i].found == found, "row %zu: found is %d", i,
                  op->rows[i].found);
    if (found) {
        ck_assert_msg(st_bytes_eq(op->rows[i].value, value),
                      "row %zu has another value (%zu bytes)", i,
                      op->rows[i].value.len);
    }
}

/* st_fill commits key = key for each of keys, in one batch. */
void
st_fill(const torpor_storage_object *o, const torpor_bytes *keys, size_t n)
{
    torpor_write *w = st_alloc(n * sizeof(*w));

    for (size_t i = 0; i < n; i++) {
        w[i] = (torpor_write){
            .kind = TORPOR_WRITE_PUT, .key = keys[i], .value = keys[i]};
    }
    st_commit(o, w, n);
}

uint8_t *
st_pattern(size_t len)
{
    uint8_t *p = st_alloc(len);

    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 7 + 3);
    }
    return p;
}

static int
st_alarm_cmp(const void *a, const void *b)
{
    const struct st_alarm *x = a;
    const struct st_alarm *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = n > 0 ? memcmp(x->name.data, y->name.data, n) : 0;

    if (c != 0) {
        return c;
    }
    return x->name.len < y->name.len ? -1 : x->name.len > y->name.len;
}

void
st_assert_alarm(struct st_op *op, size_t i, const torpor_storage_object *o,
                torpor_bytes name, uint64_t time_ms)
{
    ck_assert_uint_gt(op->nalarms, i);
    const struct st_alarm *a = &op->alarms[i];
    ck_assert_msg(st_object_eq(&a->object, o),
                  "alarm %zu belongs to another object (class \"%s\")", i,
                  a->object.class_name ? a->object.class_name : "(null)");
    ck_assert_msg(st_bytes_eq(a->name, name), "alarm %zu has another name", i);
    ck_assert_uint_eq(a->time_ms, time_ms);
}

struct st_op *
st_alarms_by_name(const torpor_storage_object *o)
{
    struct st_op *op = st_alarms(o);

    if (op->nalarms > 1) {
        qsort(op->alarms, op->nalarms, sizeof(*op->alarms), st_alarm_cmp);
    }
    return op;
}

/* st_listed counts how often objects() names o, paging through them all. */
unsigned
st_listed(const torpor_storage_object *o)
{
    const uint8_t *after = NULL;
    unsigned seen = 0;

    for (unsigned page = 0; page < 100000; page++) {
        struct st_op *op = st_objects(after, 100);
        for (size_t i = 0; i < op->nobjs; i++) {
            if (memcmp(op->objs[i].id, o->id, sizeof(o->id)) == 0) {
                ck_assert_msg(
                    st_object_eq(&op->objs[i], o),
                    "the object is listed with another class or name");
                seen++;
            }
        }
        if (op->nobjs < 100) {
            return seen;
        }
        after = op->objs[op->nobjs - 1].id;
    }
    ck_abort_msg("objects() never ended");
    return seen;
}
