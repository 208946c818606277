/*
 * tests/file_store_util.c: the harness of check_file_store and
 * check_file_recover (see file_store_util.h).
 *
 * Check runs each test in a forked child; the checked fixture makes the
 * temporary directory, the loop and the host table in that child, so
 * every global here is per test.
 */
#include "build-config.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/runtime.h"
#include "fs.h"
#include "tests/file_store_util.h"

/* ---- fixture: a temporary directory, a loop, a host, a log ---- */

char fx_base[64];
torpor_loop *fx_loop;
static torpor_timer *fx_guard;
struct torpor_host fx_host;
static bool fx_timed_out;
int fx_done;       /* completions since the last fx_wait_done */
static int fx_seq; /* completions since the test began */

pthread_mutex_t fx_log_mu = PTHREAD_MUTEX_INITIALIZER;
char *fx_log;
static size_t fx_log_len;

/* The worker logs from its own thread, hence the mutex. */
static void
fx_log_sink(void *arg, torpor_log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)level;
    pthread_mutex_lock(&fx_log_mu);
    char *p = realloc(fx_log, fx_log_len + len + 1);
    if (p != NULL) {
        memcpy(p + fx_log_len, line, len);
        fx_log_len += len;
        p[fx_log_len] = '\0';
        fx_log = p;
    }
    pthread_mutex_unlock(&fx_log_mu);
}

void
fx_log_clear(void)
{
    pthread_mutex_lock(&fx_log_mu);
    free(fx_log);
    fx_log = NULL;
    fx_log_len = 0;
    pthread_mutex_unlock(&fx_log_mu);
}

void
fx_assert_logged(const char *text)
{
    pthread_mutex_lock(&fx_log_mu);
    bool found = fx_log != NULL && strstr(fx_log, text) != NULL;
    pthread_mutex_unlock(&fx_log_mu);
    ck_assert_msg(found, "log lacks \"%s\":\n%s", text,
                  fx_log != NULL ? fx_log : "");
}

static void
fx_on_guard(torpor_timer *timer, void *arg)
{
    (void)timer;
    (void)arg;
    fx_timed_out = true;
    tpr_loop_break(fx_loop);
}

void
fx_setup(void)
{
    snprintf(fx_base, sizeof(fx_base), "/tmp/torpor-fs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fx_base));
    ck_assert_int_eq(tpr_loop_new(&fx_loop), TORPOR_OK);
    ck_assert_int_eq(tpr_timer_open(fx_loop, fx_on_guard, NULL, &fx_guard),
                     TORPOR_OK);
    tpr_host_init(&fx_host);
    tpr_log_set_sink(fx_log_sink, NULL);
    tpr_log_set_level(TORPOR_LOG_INFO);
    fx_done = 0;
    fx_seq = 0;
    fx_timed_out = false;
}

static int
fx_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
fx_teardown(void)
{
    nftw(fx_base, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
    tpr_timer_close(fx_guard);
    tpr_loop_free(fx_loop);
    fx_log_clear();
}

void
fx_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", fx_base, name);
}

/* ---- driving the plugin ---- */

const struct torpor_storage_ops *
fx_ops(struct fx_store *s)
{
    return &s->p->ops.storage;
}

const char *
fx_plugin_path(void)
{
    const char *p = getenv("TORPOR_PLUGIN_PATH");

    return p != NULL ? p : "plugins/.libs";
}

torpor_err
fx_store_open(struct fx_store *s, const char *sub, const char *const *kv)
{
    struct tpr_diag diag = {0};
    char dir[512];
    char why[128];

    memset(s, 0, sizeof(*s));
    ck_assert_int_eq(
        tpr_plugin_open("file", fx_plugin_path(), NULL, 0, &diag, &s->p),
        TORPOR_OK);
    tpr_diag_free(&diag);
    ck_assert_int_eq(s->p->desc.create(&fx_host, s->p, &s->st), TORPOR_OK);
    fx_path(dir, sizeof(dir), sub);
    ck_assert_int_eq(s->p->desc.configure(s->st, "dir", dir, why, sizeof(why)),
                     TORPOR_OK);
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
        ck_assert_msg(
            s->p->desc.configure(s->st, kv[i], kv[i + 1], why, sizeof(why))
                == TORPOR_OK,
            "%s = %s: %s", kv[i], kv[i + 1], why);
    }
    torpor_err err = s->p->desc.start(s->st);
    s->open = err == TORPOR_OK;
    return err;
}

void
fx_drain(void)
{
    tpr_timer_arm(fx_guard, 20);
    tpr_loop_run(fx_loop);
    tpr_timer_disarm(fx_guard);
    fx_timed_out = false;
}

void
fx_store_close(struct fx_store *s)
{
    s->p->desc.destroy(s->st);
    fx_drain();
    tpr_plugin_close(s->p);
    memset(s, 0, sizeof(*s));
}

void
fx_wait_done(int n)
{
    while (fx_done < n) {
        tpr_timer_arm(fx_guard, 10000);
        tpr_loop_run(fx_loop);
        tpr_timer_disarm(fx_guard);
        ck_assert_msg(!fx_timed_out, "a completion never came");
    }
    fx_done = 0;
}

torpor_storage_object
fx_obj(const char *name)
{
    torpor_storage_object o = {.class_name = "chat"};

    /* Ids sort like the names, which the objects test relies on. */
    memcpy(o.id, name, strlen(name) < 16 ? strlen(name) : 16);
    o.name.data = name;
    o.name.len = strlen(name);
    return o;
}

/* ---- completions: each renders its result as text for comparing ---- */

void
fx_on_done(void *arg, torpor_err err)
{
    struct fx_result *r = arg;

    r->err = err;
    r->seq = ++fx_seq;
    fx_done++;
    tpr_loop_break(fx_loop);
}

static void
append(struct fx_result *r, const char *fmt, ...)
{
    size_t len = strlen(r->text);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->text + len, sizeof(r->text) - len, fmt, ap);
    va_end(ap);
}

void
fx_on_rows(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct fx_result *r = arg;

    for (size_t i = 0; i < n; i++) {
        if (!rows[i].found) {
            append(r, "%s%.*s=-", i > 0 ? "," : "", (int)rows[i].key.len,
                   (const char *)rows[i].key.data);
            continue;
        }
        append(r, "%s%.*s=%.*s", i > 0 ? "," : "", (int)rows[i].key.len,
               (const char *)rows[i].key.data, (int)rows[i].value.len,
               (const char *)rows[i].value.data);
    }
    fx_on_done(arg, err);
}

void
fx_on_alarms(void *arg, torpor_err err, const torpor_alarm *a, size_t n)
{
    struct fx_result *r = arg;

    for (size_t i = 0; i < n; i++) {
        append(r, "%s%s/%.*s:%.*s@%llu", i > 0 ? "," : "",
               a[i].object.class_name, (int)a[i].object.name.len,
               (const char *)a[i].object.name.data, (int)a[i].name.len,
               (const char *)a[i].name.data, (unsigned long long)a[i].time_ms);
    }
    fx_on_done(arg, err);
}

void
fx_on_objects(void *arg, torpor_err err, const torpor_storage_object *o,
              size_t n)
{
    struct fx_result *r = arg;

    for (size_t i = 0; i < n; i++) {
        append(r, "%s%.*s", i > 0 ? "," : "", (int)o[i].name.len,
               (const char *)o[i].name.data);
    }
    fx_on_done(arg, err);
}

torpor_err
fx_commit(struct fx_store *s, const torpor_storage_object *o,
          const torpor_write *w, size_t n)
{
    struct fx_result r = {0};

    ck_assert_int_eq(fx_ops(s)->commit(s->st, fx_loop, o, w, n, fx_on_done, &r),
                     TORPOR_OK);
    fx_wait_done(1);
    return r.err;
}

void
fx_drop(struct fx_store *s, const torpor_storage_object *o)
{
    struct fx_result r = {0};

    ck_assert_int_eq(fx_ops(s)->drop(s->st, fx_loop, o, fx_on_done, &r),
                     TORPOR_OK);
    fx_wait_done(1);
    ck_assert_int_eq(r.err, TORPOR_OK);
}

struct fx_result
fx_get_text(struct fx_store *s, const torpor_storage_object *o,
            const torpor_bytes *keys, size_t n)
{
    struct fx_result r = {0};

    ck_assert_int_eq(fx_ops(s)->get(s->st, fx_loop, o, keys, n, fx_on_rows, &r),
                     TORPOR_OK);
    fx_wait_done(1);
    ck_assert_int_eq(r.err, TORPOR_OK);
    return r;
}

struct fx_result
fx_list_text(struct fx_store *s, const torpor_storage_object *o,
             const torpor_range *range)
{
    struct fx_result r = {0};

    ck_assert_int_eq(fx_ops(s)->list(s->st, fx_loop, o, range, fx_on_rows, &r),
                     TORPOR_OK);
    fx_wait_done(1);
    ck_assert_int_eq(r.err, TORPOR_OK);
    return r;
}

struct fx_result
fx_alarms_text(struct fx_store *s, const torpor_storage_object *o)
{
    struct fx_result r = {0};

    ck_assert_int_eq(fx_ops(s)->alarms(s->st, fx_loop, o, fx_on_alarms, &r),
                     TORPOR_OK);
    fx_wait_done(1);
    ck_assert_int_eq(r.err, TORPOR_OK);
    return r;
}

struct fx_result
fx_due_text(struct fx_store *s, uint64_t before, uint32_t limit)
{
    struct fx_result r = {0};

    ck_assert_int_eq(
        fx_ops(s)->alarms_due(s->st, fx_loop, before, limit, fx_on_alarms, &r),
        TORPOR_OK);
    fx_wait_done(1);
    ck_assert_int_eq(r.err, TORPOR_OK);
    return r;
}

struct fx_result
fx_objects_text(struct fx_store *s, const uint8_t *after, uint32_t limit)
{
    struct fx_result r = {0};

    ck_assert_int_eq(
        fx_ops(s)->objects(s->st, fx_loop, after, limit, fx_on_objects, &r),
        TORPOR_OK);
    fx_wait_done(1);
    ck_assert_int_eq(r.err, TORPOR_OK);
    return r;
}

const torpor_range fx_all_keys = {.prefix = {NULL, 0}};

/* ---- files ---- */

uint64_t
fx_file_size(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

uint8_t *
fx_file_read(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    uint8_t *p = malloc(*len + 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(pread(fd, p, *len, 0), (ssize_t)*len);
    close(fd);
    return p;
}

void
fx_file_write(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
    close(fd);
}

void
fx_file_flip(const char *path, uint64_t off)
{
    size_t len;
    uint8_t *p = fx_file_read(path, &len);

    ck_assert_uint_lt(off, len);
    p[off] ^= 0x40;
    fx_file_write(path, p, len);
    free(p);
}

void
fx_dir_save(const char *sub, struct fx_dir_copy *c)
{
    char dir[512];
    char path[1024];
    struct dirent *e;

    memset(c, 0, sizeof(*c));
    fx_path(dir, sizeof(dir), sub);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len >= sizeof(c->name[0]) || strstr(e->d_name, ".seg") == NULL) {
            continue;
        }
        ck_assert_uint_lt(c->n, 64);
        memcpy(c->name[c->n], e->d_name, len + 1);
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        c->data[c->n] = fx_file_read(path, &c->len[c->n]);
        struct fs_rec_header h;
        struct fs_rec_segment seg;
        const char *why;
        ck_assert(fs_rec_parse_header(c->data[c->n], &h, &why));
        ck_assert(fs_rec_segment_decode(c->data[c->n] + 16, h.len, &seg));
        c->kind[c->n] = seg.kind;
        c->n++;
    }
    closedir(d);
    /* By name, which is by number: a few dozen files at most. */
    for (size_t i = 1; i < c->n; i++) {
        for (size_t j = i; j > 0 && strcmp(c->name[j - 1], c->name[j]) > 0;
             j--) {
            char name[32];
            memcpy(name, c->name[j], sizeof(name));
            memcpy(c->name[j], c->name[j - 1], sizeof(name));
            memcpy(c->name[j - 1], name, sizeof(name));
            uint8_t *data = c->data[j];
            c->data[j] = c->data[j - 1];
            c->data[j - 1] = data;
            size_t len = c->len[j];
            c->len[j] = c->len[j - 1];
            c->len[j - 1] = len;
            uint8_t kind = c->kind[j];
            c->kind[j] = c->kind[j - 1];
            c->kind[j - 1] = kind;
        }
    }
}

void
fx_dir_free(struct fx_dir_copy *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->data[i]);
    }
    memset(c, 0, sizeof(*c));
}

void
fx_dir_put(const char *sub, const struct fx_dir_copy *c, size_t i, size_t len,
           const char *name)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/%s/%s", fx_base, sub,
             name != NULL ? name : c->name[i]);
    fx_file_write(path, c->data[i], len);
}

void
fx_dir_make(const char *sub)
{
    char dir[512];

    fx_path(dir, sizeof(dir), sub);
    ck_assert_int_eq(mkdir(dir, 0750), 0);
}

size_t
fx_seg_count(const char *sub)
{
    struct fx_dir_copy c;
    size_t n;

    fx_dir_save(sub, &c);
    n = c.n;
    fx_dir_free(&c);
    return n;
}

uint64_t
fx_seg_bytes(const char *sub)
{
    struct fx_dir_copy c;
    uint64_t n = 0;

    fx_dir_save(sub, &c);
    for (size_t i = 0; i < c.n; i++) {
        n += c.len[i];
    }
    fx_dir_free(&c);
    return n;
}
