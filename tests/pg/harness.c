/*
 * tests/pg/harness.c: the cluster, the log and the plugin harness of
 * check_pg_store; see harness.h.
 */
#include "build-config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/runtime.h"
#include "tests/pg/harness.h"

static char pgt_dir[64];
char pgt_conninfo[512];
int pgt_tcases_left;
static pid_t pgt_owner;

/* ---- the cluster, once per binary ---- */

/* pgt_ctl runs tests/pg/pgctl.sh and keeps the first line it prints. */
int
pgt_ctl(const char *cmd, char *out, size_t size)
{
    const char *top = getenv("TOP_SRCDIR");
    char line[1024];
    FILE *f;

    snprintf(line, sizeof(line), "bash '%s/tests/pg/pgctl.sh' %s '%s'",
             top != NULL ? top : ".", cmd, pgt_dir);
    f = popen(line, "r");
    if (f == NULL) {
        return -1;
    }
    if (out != NULL && size > 0) {
        out[0] = '\0';
        if (fgets(out, (int)size, f) != NULL) {
            out[strcspn(out, "\n")] = '\0';
        }
    }
    while (fgets(line, sizeof(line), f) != NULL) {
    }
    return pclose(f);
}

static void log_sink(void *arg, torpor_log_level level, const char *line,
                     size_t len);

static void
pgt_cluster_stop(void)
{
    /* Forked tests exit through here too: only the owner stops it. */
    if (pgt_dir[0] != '\0' && getpid() == pgt_owner) {
        pgt_ctl("stop", NULL, 0);
        pgt_dir[0] = '\0';
    }
}

void
pgt_cluster_setup(void)
{
    if (pgt_dir[0] != '\0') {
        return;
    }
    tpr_log_set_sink(log_sink, NULL);
    /* CK_RUN_CASE may run fewer TCases than the count expects. */
    pgt_owner = getpid();
    atexit(pgt_cluster_stop);
    snprintf(pgt_dir, sizeof(pgt_dir), "/tmp/torpor-pg-XXXXXX");
    if (mkdtemp(pgt_dir) == NULL
        || pgt_ctl("start", pgt_conninfo, sizeof(pgt_conninfo)) != 0
        || pgt_conninfo[0] == '\0') {
        fprintf(stderr, "could not start PostgreSQL in %s\n", pgt_dir);
        pgt_conninfo[0] = '\0';
    }
}

/* Every TCase shares the cluster; the last one to finish stops it. */
void
pgt_cluster_teardown(void)
{
    if (--pgt_tcases_left == 0) {
        pgt_cluster_stop();
    }
}

static void
quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* pgt_admin connects to database db, for checks behind the plugin. */
PGconn *
pgt_admin(const char *db)
{
    char ci[600];
    PGconn *c;

    snprintf(ci, sizeof(ci), "%s dbname=%s", pgt_conninfo, db);
    c = PQconnectdb(ci);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void
pgt_admin_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);

    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s",
                  sql, PQerrorMessage(c));
    PQclear(r);
}

/* pgt_admin_count runs a SELECT count(*) and returns the count. */
int
pgt_admin_count(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int n;

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(c));
    n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* pgt_fresh_db makes an empty database and returns its conninfo in ci. */
void
pgt_fresh_db(const char *name, char *ci, size_t size)
{
    char sql[128];
    PGconn *c = pgt_admin("torpor");

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", name);
    pgt_admin_exec(c, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    pgt_admin_exec(c, sql);
    PQfinish(c);
    snprintf(ci, size, "%s dbname=%s", pgt_conninfo, name);
}

/* ---- the log, kept to check what the plugin said ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];
static size_t log_len;

static void
log_sink(void *arg, torpor_log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)level;
    fwrite(line, 1, len, stderr);
    pthread_mutex_lock(&log_lock);
    if (log_len + len < sizeof(log_text)) {
        memcpy(log_text + log_len, line, len);
        log_len += len;
        log_text[log_len] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

bool
pgt_log_has(const char *text)
{
    bool has;

    pthread_mutex_lock(&log_lock);
    has = strstr(log_text, text) != NULL;
    pthread_mutex_unlock(&log_lock);
    return has;
}

void
pgt_log_clear(void)
{
    pthread_mutex_lock(&log_lock);
    log_len = 0;
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

/* ---- a plugin instance on a loop ---- */

static void
on_guard(torpor_timer *t, void *arg)
{
    struct pgt_harness *h = arg;

    (void)t;
    tpr_loop_break(h->loop);
}

/*
 * pgt_open loads the plugin and configures it with conninfo ci and the
 * NULL-terminated key, value pairs in kv.
 */
void
pgt_open(struct pgt_harness *h, const char *ci, const char *const *kv)
{
    struct tpr_diag diag = {0};
    char why[128] = "";

    memset(h, 0, sizeof(*h));
    ck_assert_int_eq(tpr_loop_new(&h->loop), TORPOR_OK);
    ck_assert_int_eq(tpr_timer_open(h->loop, on_guard, h, &h->guard),
                     TORPOR_OK);
    tpr_host_init(&h->host);
    ck_assert_int_eq(tpr_plugin_open("postgres", getenv("TORPOR_PLUGIN_PATH"),
                                     NULL, 0, &diag, &h->p),
                     TORPOR_OK);
    tpr_diag_free(&diag);
    ck_assert_int_eq(h->p->desc.create(&h->host, h->p, &h->p->state),
                     TORPOR_OK);
    h->p->created = true;
    h->ops = &h->p->ops.storage;
    ck_assert_int_eq(
        h->p->desc.configure(h->p->state, "conninfo", ci, why, sizeof(why)),
        TORPOR_OK);
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
        ck_assert_int_eq(h->p->desc.configure(h->p->state, kv[i], kv[i + 1],
                                              why, sizeof(why)),
                         TORPOR_OK);
    }
}

torpor_err
pgt_start(struct pgt_harness *h)
{
    return h->p->desc.start(h->p->state);
}

/*
 * pgt_close shuts the plugin down as the core does: destroy posts what it
 * completes to the loop, which runs it when freed, before the plugin's
 * code is unloaded.
 */
void
pgt_close(struct pgt_harness *h)
{
    h->p->desc.stop(h->p->state);
    tpr_plugin_destroy(h->p);
    tpr_timer_close(h->guard);
    tpr_loop_free(h->loop);
    tpr_plugin_close(h->p);
}

/* pgt_wait runs the loop until r completes; fails after PGT_GUARD_MS. */
void
pgt_wait(struct pgt_harness *h, struct pgt_res *r)
{
    uint64_t deadline = tpr_now_ms() + PGT_GUARD_MS;

    while (!r->done && tpr_now_ms() < deadline) {
        tpr_timer_arm(h->guard, 100);
        tpr_loop_run(h->loop);
    }
    ck_assert_msg(r->done, "an operation did not complete");
}

/* pgt_sleep runs the loop for ms, so connections can come and go. */
void
pgt_sleep(struct pgt_harness *h, uint64_t ms)
{
    uint64_t end = tpr_now_ms() + ms;

    while (tpr_now_ms() < end) {
        tpr_timer_arm(h->guard, end - tpr_now_ms());
        tpr_loop_run(h->loop);
    }
}

static void
res_init(struct pgt_res *r, struct pgt_harness *h)
{
    memset(r, 0, sizeof(*r));
    r->h = h;
}

/* res_finish records a completion; it must never run inside the call. */
static void
res_finish(struct pgt_res *r, torpor_err err)
{
    ck_assert_msg(!r->h->in_call, "completion inside the queuing call");
    ck_assert_msg(!r->done, "completion called twice");
    r->done = true;
    r->err = err;
    r->order = ++r->h->completed;
    tpr_loop_break(r->h->loop);
}

/* put_bytes appends data to text, bytes outside [0-9a-z] as \xNN. */
static void
put_bytes(char *text, size_t size, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t n = strlen(text);

    for (size_t i = 0; i < len && n + 5 < size; i++) {
        if ((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z')) {
            text[n++] = (char)p[i];
        } else {
            n += (size_t)snprintf(text + n, size - n, "\\x%02x", p[i]);
        }
    }
    text[n] = '\0';
}

static void
put_text(char *text, size_t size, const char *s)
{
    size_t n = strlen(text);

    snprintf(text + n, size - n, "%s", s);
}

void
pgt_on_done(void *arg, torpor_err err)
{
    res_finish(arg, err);
}

/* Rows read as "key=value," or "key!," when not found. */
static void
on_rows(void *arg, torpor_err err, const torpor_kv *rows, size_t n)
{
    struct pgt_res *r = arg;

    for (size_t i = 0; i < n; i++) {
        put_bytes(r->text, sizeof(r->text), rows[i].key.data, rows[i].key.len);
        if (rows[i].found) {
            put_text(r->text, sizeof(r->text), "=");
            put_bytes(r->text, sizeof(r->text), rows[i].value.data,
                      rows[i].value.len);
            put_text(r->text, sizeof(r->text), ",");
        } else {
            put_text(r->text, sizeof(r->text), "!,");
        }
    }
    res_finish(r, err);
}

/* Alarms read as "class/name:alarm@time,". */
static void
on_alarms(void *arg, torpor_err err, const torpor_alarm *a, size_t n)
{
    struct pgt_res *r = arg;
    char num[32];

    for (size_t i = 0; i < n; i++) {
        put_text(r->text, sizeof(r->text), a[i].object.class_name);
        put_text(r->text, sizeof(r->text), "/");
        put_bytes(r->text, sizeof(r->text), a[i].object.name.data,
                  a[i].object.name.len);
        put_text(r->text, sizeof(r->text), ":");
        put_bytes(r->text, sizeof(r->text), a[i].name.data, a[i].name.len);
        snprintf(num, sizeof(num), "@%llu,", (unsigned long long)a[i].time_ms);
        put_text(r->text, sizeof(r->text), num);
    }
    res_finish(r, err);
}

/* Objects read as "class/name,". */
static void
on_objects(void *arg, torpor_err err, const torpor_storage_object *o, size_t n)
{
    struct pgt_res *r = arg;

    for (size_t i = 0; i < n; i++) {
        put_text(r->text, sizeof(r->text), o[i].class_name);
        put_text(r->text, sizeof(r->text), "/");
        put_bytes(r->text, sizeof(r->text), o[i].name.data, o[i].name.len);
        put_text(r->text, sizeof(r->text), ",");
    }
    res_finish(r, err);
}

/* ---- ops, queued and awaited ---- */

torpor_storage_object
pgt_object(uint8_t tag, const char *name)
{
    torpor_storage_object o;

    memset(o.id, 0, sizeof(o.id));
    o.id[0] = tag;
    o.id[15] = tag;
    o.class_name = "relay";
    o.name.data = name;
    o.name.len = strlen(name);
    return o;
}

torpor_write
pgt_put(torpor_bytes key, torpor_bytes value)
{
    torpor_write w = {.kind = TORPOR_WRITE_PUT, .key = key, .value = value};

    return w;
}

torpor_write
pgt_del(torpor_bytes key)
{
    torpor_write w = {.kind = TORPOR_WRITE_DELETE, .key = key};

    return w;
}

torpor_write
pgt_alarm(torpor_bytes name, uint64_t time_ms)
{
    torpor_write w = {
        .kind = TORPOR_WRITE_ALARM_SET, .key = name, .time_ms = time_ms};

    return w;
}

torpor_write
pgt_alarm_del(torpor_bytes name)
{
    torpor_write w = {.kind = TORPOR_WRITE_ALARM_DELETE, .key = name};

    return w;
}

/*
 * The q_ functions queue an op and check that queueing succeeded; the
 * completion fills r.  in_call brackets the call so that a completion
 * inside it is caught.
 */
#define H_CALL(h, expr)                                                        \
    do {                                                                       \
        (h)->in_call = true;                                                   \
        torpor_err call_err_ = (expr);                                         \
        (h)->in_call = false;                                                  \
        ck_assert_int_eq(call_err_, TORPOR_OK);                                \
    } while (0)

void
pgt_commit(struct pgt_harness *h, const torpor_storage_object *o,
           const torpor_write *w, size_t n, struct pgt_res *r)
{
    res_init(r, h);
    H_CALL(h, h->ops->commit(h->p->state, h->loop, o, w, n, pgt_on_done, r));
}

void
pgt_get(struct pgt_harness *h, const torpor_storage_object *o,
        const torpor_bytes *keys, size_t n, struct pgt_res *r)
{
    res_init(r, h);
    H_CALL(h, h->ops->get(h->p->state, h->loop, o, keys, n, on_rows, r));
}

void
pgt_list(struct pgt_harness *h, const torpor_storage_object *o,
         const torpor_range *range, struct pgt_res *r)
{
    res_init(r, h);
    H_CALL(h, h->ops->list(h->p->state, h->loop, o, range, on_rows, r));
}

void
pgt_alarms(struct pgt_harness *h, const torpor_storage_object *o,
           struct pgt_res *r)
{
    res_init(r, h);
    H_CALL(h, h->ops->alarms(h->p->state, h->loop, o, on_alarms, r));
}

void
pgt_due(struct pgt_harness *h, uint64_t before_ms, uint32_t limit,
        struct pgt_res *r)
{
    res_init(r, h);
    H_CALL(h, h->ops->alarms_due(h->p->state, h->loop, before_ms, limit,
                                 on_alarms, r));
}

void
pgt_objects(struct pgt_harness *h, const uint8_t *after, uint32_t limit,
            struct pgt_res *r)
{
    res_init(r, h);
    H_CALL(h,
           h->ops->objects(h->p->state, h->loop, after, limit, on_objects, r));
}

void
pgt_drop(struct pgt_harness *h, const torpor_storage_object *o,
         struct pgt_res *r)
{
    res_init(r, h);
    H_CALL(h, h->ops->drop(h->p->state, h->loop, o, pgt_on_done, r));
}

/* pgt_commit_ok commits and waits for TORPOR_OK. */
void
pgt_commit_ok(struct pgt_harness *h, const torpor_storage_object *o,
              const torpor_write *w, size_t n)
{
    struct pgt_res r;

    pgt_commit(h, o, w, n, &r);
    pgt_wait(h, &r);
    ck_assert_int_eq(r.err, TORPOR_OK);
}

/* pgt_list_is lists range of o and checks the rows read as want. */
void
pgt_list_is(struct pgt_harness *h, const torpor_storage_object *o,
            const torpor_range *range, const char *want)
{
    struct pgt_res r;

    pgt_list(h, o, range, &r);
    pgt_wait(h, &r);
    ck_assert_int_eq(r.err, TORPOR_OK);
    ck_assert_str_eq(r.text, want);
}

/* pgt_open_started: a started plugin on the cluster's database, or ci's. */
void
pgt_open_started(struct pgt_harness *h, const char *ci, const char *const *kv)
{
    pgt_open(h, ci != NULL ? ci : pgt_conninfo, kv);
    ck_assert_int_eq(pgt_start(h), TORPOR_OK);
}

/* pgt_expect_text runs a queued op to completion and checks its rows. */
void
pgt_expect_text(struct pgt_harness *h, struct pgt_res *r, const char *want)
{
    pgt_wait(h, r);
    ck_assert_int_eq(r->err, TORPOR_OK);
    ck_assert_str_eq(r->text, want);
}
