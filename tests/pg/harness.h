/*
 * tests/pg/harness.h: what check_pg_store's tests share: one throwaway
 * PostgreSQL cluster per binary, the log kept for checks, and the postgres
 * plugin driven through its entry point on a real loop.
 *
 * Every completion is recorded in a struct pgt_res whose text sums up its
 * rows, so a test compares one string: rows read "key=value," or "key!,"
 * (not found), alarms "class/name:alarm@time,", objects "class/name,";
 * bytes outside [0-9a-z] are written \xNN.
 */
#ifndef TORPOR_TESTS_PG_HARNESS_H
#define TORPOR_TESTS_PG_HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/torpor.h>

/* Generous: a guard against hangs, never a measure of speed. */
#define PGT_GUARD_MS 30000

#define PGT_BYTES(s) ((torpor_bytes){(s), sizeof(s) - 1})

/* The cluster's conninfo; empty if it could not be started. */
extern char pgt_conninfo[512];

/* How many TCases share the cluster; the last teardown stops it. */
extern int pgt_tcases_left;

/* A plugin instance on a loop of its own. */
struct pgt_harness {
    torpor_loop *loop;
    torpor_timer *guard;
    struct torpor_host host;
    struct torpor_plugin_ctx *p;
    const struct torpor_storage_ops *ops;
    bool in_call;  /* an op call is on the stack */
    int completed; /* completions so far */
};

/* One op's outcome; text is a summary of its rows for string compares. */
struct pgt_res {
    struct pgt_harness *h;
    bool done;
    torpor_err err;
    int order; /* h->completed when it completed */
    char text[2048];
};

/* ---- the cluster ---- */

/*
 * pgt_cluster_setup and pgt_cluster_teardown are the unchecked fixture of
 * every TCase: the first setup starts the cluster with tests/pg/pgctl.sh,
 * the last teardown (or the exit of the binary) stops it.
 */
void pgt_cluster_setup(void);
void pgt_cluster_teardown(void);

/* pgt_ctl runs "pgctl.sh CMD DIR" on the cluster; returns its status. */
int pgt_ctl(const char *cmd, char *out, size_t size);

/* pgt_admin connects to database db, behind the plugin's back. */
PGconn *pgt_admin(const char *db);
void pgt_admin_exec(PGconn *c, const char *sql);

/* pgt_admin_count runs a SELECT count(*) and returns the count. */
int pgt_admin_count(PGconn *c, const char *sql);

/* pgt_fresh_db makes an empty database and writes its conninfo to ci. */
void pgt_fresh_db(const char *name, char *ci, size_t size);

/* ---- the log ---- */

bool pgt_log_has(const char *text);
void pgt_log_clear(void);

/* ---- the plugin ---- */

/*
 * pgt_open loads the plugin and configures it with conninfo ci and the
 * NULL-terminated key, value pairs in kv (may be NULL).
 */
void pgt_open(struct pgt_harness *h, const char *ci, const char *const *kv);
torpor_err pgt_start(struct pgt_harness *h);

/* pgt_open_started: pgt_open and a successful start; ci NULL: the cluster. */
void pgt_open_started(struct pgt_harness *h, const char *ci,
                      const char *const *kv);

/*
 * pgt_close shuts the plugin down as the core does: stop, destroy, then
 * the loop is freed (running what destroy posted) before the code goes.
 */
void pgt_close(struct pgt_harness *h);

/* pgt_wait runs the loop until r completes; fails after PGT_GUARD_MS. */
void pgt_wait(struct pgt_harness *h, struct pgt_res *r);

/* pgt_sleep runs the loop for ms. */
void pgt_sleep(struct pgt_harness *h, uint64_t ms);

/* ---- ops ---- */

torpor_storage_object pgt_object(uint8_t tag, const char *name);
torpor_write pgt_put(torpor_bytes key, torpor_bytes value);
torpor_write pgt_del(torpor_bytes key);
torpor_write pgt_alarm(torpor_bytes name, uint64_t time_ms);
torpor_write pgt_alarm_del(torpor_bytes name);

/* pgt_on_done is the completion of commits and drops; arg a pgt_res. */
void pgt_on_done(void *arg, torpor_err err);

/*
 * Each queues one op and checks that queueing succeeded; the completion
 * fills r.  A completion inside the call fails the test.
 */
void pgt_commit(struct pgt_harness *h, const torpor_storage_object *o,
                const torpor_write *w, size_t n, struct pgt_res *r);
void pgt_get(struct pgt_harness *h, const torpor_storage_object *o,
             const torpor_bytes *keys, size_t n, struct pgt_res *r);
void pgt_list(struct pgt_harness *h, const torpor_storage_object *o,
              const torpor_range *range, struct pgt_res *r);
void pgt_alarms(struct pgt_harness *h, const torpor_storage_object *o,
                struct pgt_res *r);
void pgt_due(struct pgt_harness *h, uint64_t before_ms, uint32_t limit,
             struct pgt_res *r);
void pgt_objects(struct pgt_harness *h, const uint8_t *after, uint32_t limit,
                 struct pgt_res *r);
void pgt_drop(struct pgt_harness *h, const torpor_storage_object *o,
              struct pgt_res *r);

/* pgt_commit_ok commits and waits for TORPOR_OK. */
void pgt_commit_ok(struct pgt_harness *h, const torpor_storage_object *o,
                   const torpor_write *w, size_t n);

/* pgt_list_is lists range of o and checks the rows read as want. */
void pgt_list_is(struct pgt_harness *h, const torpor_storage_object *o,
                 const torpor_range *range, const char *want);

/* pgt_expect_text waits for r and checks TORPOR_OK and its rows. */
void pgt_expect_text(struct pgt_harness *h, struct pgt_res *r,
                     const char *want);

#endif /* TORPOR_TESTS_PG_HARNESS_H */
