/*
 * The postgres storage plugin's internal types, shared by its files.
 *
 * Threads: create, configure, start, stop and destroy run on the main
 * thread.  Storage ops run on the caller's loop, and everything an op
 * touches after it is queued (its loop's pool, connections, timer and
 * queues) belongs to that loop alone.  The list of per-loop pools is the
 * one structure that several loops share, under pg_state.lock; the
 * started and stopping flags and the warning budget are __atomic.
 *
 * Memory: an op is one allocation holding its statements, its parameter
 * bytes and its copy of the object, made when it is queued, because the
 * caller's buffers are valid only during the call.  Results point into
 * the PGresults the op keeps until its completion returns.
 */
#ifndef TORPOR_PLUGINS_PG_H
#define TORPOR_PLUGINS_PG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <torpor/torpor.h>

#define PG_PLUGIN_NAME "postgres"

/* The most parameters any statement takes. */
#define PG_MAX_PARAMS 4

/* "host=... port=... dbname=..." as logs show the server; never secrets. */
#define PG_TARGET_MAX 320

/*
 * The most commits one transaction carries, and the most parameter bytes
 * (a single larger commit still goes, alone).  A group that fails is sent
 * again in parts, so a bigger group costs more when one of it fails.
 */
#define PG_GROUP_MAX_OPS 64
#define PG_GROUP_MAX_BYTES (1024 * 1024)

/* Disconnect and connect-failure WARN lines allowed per window. */
#define PG_WARN_PER_WINDOW 5
#define PG_WARN_WINDOW_MS 10000

/* The [storage.postgres] section; see pg_config.c for each key. */
struct pg_config {
    char *conninfo; /* never NULL; "" lets libpq use its environment */
    uint32_t pool_size;
    uint64_t op_timeout_ms;
    uint64_t connect_timeout_ms;
    uint64_t reconnect_min_ms;
    uint64_t reconnect_max_ms;
};

/* Every prepared statement, by index into pg_stmt_defs. */
enum pg_stmt_id {
    PG_ST_OBJECT_UPSERT = 0,
    PG_ST_OBJECT_TIDY,
    PG_ST_KV_PUT,
    PG_ST_KV_DELETE,
    PG_ST_ALARM_SET,
    PG_ST_ALARM_DELETE,
    PG_ST_KV_GET,
    PG_ST_LIST_ASC,
    PG_ST_LIST_ASC_END,
    PG_ST_LIST_DESC,
    PG_ST_LIST_DESC_END,
    PG_ST_ALARMS,
    PG_ST_ALARMS_DUE,
    PG_ST_OBJECTS,
    PG_ST_DROP_KV,
    PG_ST_DROP_ALARMS,
    PG_ST_DROP_OBJECT,
    PG_ST_COUNT,
    /* Not prepared: the connection's SET statement_timeout. */
    PG_ST_SESSION = PG_ST_COUNT
};

struct pg_stmt_def {
    const char *name;
    const char *sql;
    int nparams;
    Oid types[PG_MAX_PARAMS];
};

extern const struct pg_stmt_def pg_stmt_defs[PG_ST_COUNT];

/*
 * One statement of an op, ready to send.  values point into the op's own
 * allocation; all parameters are binary, NULL is SQL NULL.
 */
struct pg_stmt {
    uint8_t id; /* enum pg_stmt_id */
    uint8_t nparams;
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS];
};

enum pg_op_kind {
    PG_OP_GET = 1,
    PG_OP_LIST,
    PG_OP_COMMIT,
    PG_OP_ALARMS,
    PG_OP_ALARMS_DUE,
    PG_OP_OBJECTS,
    PG_OP_DROP,
    PG_OP_PREPARE /* the connection's own: prepares every statement */
};

struct pg_loop;

/*
 * A queued operation.  It is on exactly one queue at a time: a
 * connection's waiting or in-flight queue, or its loop's held queue.
 * Commits and drops are also on their loop's list of outstanding writes
 * until they complete.  A commit sent in a group that failed goes back to
 * its connection's waiting queue, reset, to be sent again.
 */
struct pg_op {
    torpor_task task; /* delivers the completion after destroy */
    struct pg_op *next;
    struct pg_op *wprev; /* loop's outstanding writes, queue order */
    struct pg_op *wnext;
    struct pg_loop *lp;
    uint8_t kind; /* enum pg_op_kind */
    bool is_write;
    bool has_object;
    bool cur_seen;   /* a result of stmts[cur] has arrived */
    bool sync_after; /* a Sync follows it: it ends its transaction */
    bool in_group;   /* sent in one transaction with other commits */
    bool alone;      /* failed a group: goes in a transaction of its own */
    bool culprit;    /* one of its statements failed at the server */
    torpor_err err;  /* the first failure of a statement */
    uint64_t seq;    /* queue order on its loop */
    uint64_t deadline_ms;
    uint32_t n_stmts;
    uint32_t cur; /* the statement whose results arrive now */
    size_t bytes; /* parameter bytes, for PG_GROUP_MAX_BYTES */
    struct pg_stmt *stmts;
    PGresult **res; /* reads: one result per statement, else NULL */
    union {
        torpor_storage_done_cb done;
        torpor_storage_rows_cb rows;
        torpor_storage_alarms_cb alarms;
        torpor_storage_objects_cb objects;
    } cb;
    void *arg;
    torpor_storage_object object; /* a copy; class_name and name in buf */
};

/* A FIFO of ops linked through next. */
struct pg_queue {
    struct pg_op *head;
    struct pg_op *tail;
};

static inline void
pg_queue_push(struct pg_queue *q, struct pg_op *op)
{
    op->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = op;
    } else {
        q->head = op;
    }
    q->tail = op;
}

static inline struct pg_op *
pg_queue_pop(struct pg_queue *q)
{
    struct pg_op *op = q->head;

    if (op != NULL) {
        q->head = op->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        op->next = NULL;
    }
    return op;
}

enum pg_conn_state {
    PG_CONN_BACKOFF = 0, /* closed; the next attempt is due at when_ms */
    PG_CONN_CONNECTING,  /* PQconnectPoll in progress until when_ms */
    PG_CONN_READY        /* in pipeline mode; ops are sent at once */
};

/*
 * One connection of a loop's pool.  Ops of one object always use the same
 * connection, and a pipeline answers in the order it was sent, so per-
 * object order needs no other bookkeeping.  Commits that wait together
 * are sent as one transaction (see pg_conn.c).
 */
struct pg_conn {
    struct pg_loop *lp;
    PGconn *pq;
    torpor_io *io;
    int fd;
    unsigned watching; /* TORPOR_IO_* the io asks for */
    uint8_t state;     /* enum pg_conn_state */
    bool broken;       /* failed inside a call; the tick tears it down */
    bool was_lost;     /* lost while ready: the next READY reconnects */
    uint32_t index;
    uint32_t attempts; /* failed attempts since the last READY */
    uint64_t when_ms;
    bool group_inflight;      /* a group of commits is unanswered: send none */
    uint32_t writes_inflight; /* commits and drops in inflight */
    struct pg_op *reading;    /* the op results arrive for; NULL: head */
    struct pg_queue waiting;  /* not sent yet, queue order */
    struct pg_queue inflight; /* sent, answered in this order */
};

/* Everything of one caller loop: its pool, its timer and its queues. */
struct pg_loop {
    struct pg_loop *next; /* pg_state.loops, under its lock */
    struct pg_state *pg;
    torpor_loop *loop;
    torpor_timer *timer;
    uint64_t timer_at_ms; /* when the timer fires, if armed */
    bool armed;
    uint64_t next_seq;
    uint64_t rand; /* backoff jitter; xorshift state */
    uint32_t rr;   /* round robin of cross-object reads */
    bool in_tick;
    uint32_t defer; /* inside our io or timer callback: send at its end */
    struct pg_op *writes_head; /* outstanding commits and drops */
    struct pg_op *writes_tail;
    struct pg_queue held; /* cross-object reads not yet sent */
    uint32_t n_conns;
    struct pg_conn conns[];
};

struct pg_state {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
    struct pg_config cfg;
    char target[PG_TARGET_MAX]; /* set by start */

    int started;     /* __atomic */
    int stopping;    /* __atomic */
    bool destroying; /* main thread, once no loop runs */

    pthread_mutex_t lock;
    struct pg_loop *loops;

    /* Rate limit of connection warnings; __atomic, any loop. */
    uint64_t warn_window_ms;
    uint32_t warn_count;
};

#define PG_LOG(pg, level, ...)                                                 \
    ((pg)->host->log((pg)->self, (level), NULL, NULL, __VA_ARGS__))

/* ---- pg_plugin.c ---- */

/*
 * pg_warn_allowed tells whether one more connection WARN line fits the
 * current window, so a server that stays down does not flood the log.
 * Any loop.
 */
bool pg_warn_allowed(struct pg_state *pg);

/*
 * pg_one_line copies libpq's message msg into buf as one line: newlines
 * and tabs become spaces, trailing blanks go.  Returns buf.
 */
const char *pg_one_line(const char *msg, char *buf, size_t size);

/*
 * pg_target_of writes "host=H port=P dbname=D" for pq into out; libpq's
 * effective values, so PGHOST or a service file show as what they chose.
 */
void pg_target_of(PGconn *pq, char *out, size_t size);

/*
 * pg_notice is libpq's notice processor on every connection: a server
 * notice goes to the log at DEBUG instead of to stderr.  arg is the state.
 */
void pg_notice(void *arg, const char *message);

/* ---- pg_config.c ---- */

/* pg_config_defaults fills cfg with every key's default; ENOMEM only. */
torpor_err pg_config_defaults(struct pg_config *cfg);

/*
 * pg_config_set applies one key of [storage.postgres].  Returns
 * TORPOR_ENOKEY for an unknown key, TORPOR_EINVAL with a reason in why for
 * a bad value (cfg then keeps its previous value), TORPOR_ENOMEM.  Main
 * thread.
 */
torpor_err pg_config_set(struct pg_config *cfg, const char *key,
                         const char *value, char *why, size_t why_size);

/*
 * pg_config_check tests what single keys cannot: reconnect_min_ms above
 * reconnect_max_ms.  TORPOR_EINVAL with a reason in why.
 */
torpor_err pg_config_check(const struct pg_config *cfg, char *why,
                           size_t why_size);

void pg_config_free(struct pg_config *cfg);

/* ---- pg_schema.c ---- */

/*
 * pg_schema_migrate connects once, blocking for at most connect_timeout_ms,
 * applies the migrations this database lacks under an advisory lock, and
 * disconnects.  Fills pg->target.  Logs and returns TORPOR_EIO when the
 * server cannot be reached or a migration fails, TORPOR_ENOMEM.  Main
 * thread, from start.
 */
torpor_err pg_schema_migrate(struct pg_state *pg);

/* ---- pg_ops.c ---- */

/*
 * The builders copy what the caller passed into one new op, so the op
 * outlives the call.  Each returns TORPOR_ENOMEM or TORPOR_OK.
 */
torpor_err pg_op_get(const torpor_storage_object *object,
                     const torpor_bytes *keys, size_t n, struct pg_op **out);
torpor_err pg_op_list(const torpor_storage_object *object,
                      const torpor_range *range, struct pg_op **out);
torpor_err pg_op_commit(const torpor_storage_object *object,
                        const torpor_write *writes, size_t n,
                        struct pg_op **out);
torpor_err pg_op_alarms(const torpor_storage_object *object,
                        struct pg_op **out);
torpor_err pg_op_alarms_due(uint64_t before_ms, uint32_t limit,
                            struct pg_op **out);
torpor_err pg_op_objects(const uint8_t *after, uint32_t limit,
                         struct pg_op **out);
torpor_err pg_op_drop(const torpor_storage_object *object, struct pg_op **out);
torpor_err pg_op_prepare(struct pg_op **out);

/*
 * pg_op_take hands result r of the op's current statement to the op.
 * Returns true if the op keeps r (it clears it later), false if the
 * caller must clear it.  Sets op->err on a result that is not what the
 * statement returns.
 */
bool pg_op_take(struct pg_op *op, PGresult *r);

/*
 * pg_op_deliver calls the op's completion with err, or with the rows its
 * results hold when err is TORPOR_OK, then frees the op and its results.
 * The op must be on no queue.  On the op's loop, never inside the call
 * that queued it.
 */
void pg_op_deliver(struct pg_op *op, torpor_err err);

/* pg_op_free frees op and its results without calling back. */
void pg_op_free(struct pg_op *op);

/* ---- pg_loop.c ---- */

/*
 * pg_loop_get finds or makes the pool of loop; its connections start
 * connecting at once.  Returns TORPOR_ENOMEM.  Called on loop's thread:
 * storage ops are called on the loop they name.
 */
torpor_err pg_loop_get(struct pg_state *pg, torpor_loop *loop,
                       struct pg_loop **out);

/*
 * pg_loop_submit queues op on lp: on its object's connection, or, for
 * reads across objects, once every earlier write of the loop has
 * completed.  Never calls back inside the call: a failure found here is
 * left for the loop's timer.  On lp's loop.
 */
void pg_loop_submit(struct pg_loop *lp, struct pg_op *op);

/*
 * pg_loop_complete takes op off the loop's outstanding writes, delivers
 * its completion with err and sends the reads that waited for it.  op is
 * on no queue.  From an io or timer callback of lp's loop only.
 */
void pg_loop_complete(struct pg_op *op, torpor_err err);

/* pg_loop_release sends the held reads that may go now. */
void pg_loop_release(struct pg_loop *lp);

/*
 * pg_loop_pump sends what waits on each connection of lp, as far as it
 * may go (pg_conn_pump).  At the end of the plugin's io and timer
 * callbacks, so that the commits their completions queue go together.
 */
void pg_loop_pump(struct pg_loop *lp);

/*
 * pg_loop_arm makes the timer run by at_ms (0: at once).  While the timer
 * callback runs it does nothing: the callback rearms when it ends.
 */
void pg_loop_arm(struct pg_loop *lp, uint64_t at_ms);

/* pg_loop_backoff: the wait before retry attempts + 1, with jitter. */
uint64_t pg_loop_backoff(struct pg_loop *lp, uint32_t attempts);

/*
 * pg_loop_shutdown finishes lp for destroy: it waits, blocking, for the
 * answers of ops already sent (until their deadline), fails the rest
 * (TORPOR_EIO for one sent but unanswered, TORPOR_ECLOSED for one never
 * sent), posts every completion to lp's loop in order, and frees lp.
 * Main thread, once lp's loop no longer runs.
 */
void pg_loop_shutdown(struct pg_loop *lp);

/* ---- pg_conn.c ---- */

void pg_conn_init(struct pg_conn *c, struct pg_loop *lp, uint32_t index);

/*
 * pg_conn_start begins a non-blocking connect; a failure puts c in backoff.
 * c must be in backoff with nothing in flight, so nothing calls back.
 */
void pg_conn_start(struct pg_conn *c);

/*
 * pg_conn_submit queues op on c and sends what may go now (pg_conn_pump).
 * Never calls back.
 */
void pg_conn_submit(struct pg_conn *c, struct pg_op *op);

/*
 * pg_conn_pump sends the ops waiting on c, in queue order, while c is
 * ready: commits in groups, one transaction each, other ops alone.  A
 * commit waits while another write of c is unanswered, so that the ones
 * queued meanwhile join it, and nothing goes while a group is unanswered.
 * Does nothing inside the loop's own callbacks, which pump at their end.
 * Never calls back.
 */
void pg_conn_pump(struct pg_conn *c);

/* pg_conn_is_ready: connected, prepared or preparing, not broken. */
bool pg_conn_is_ready(const struct pg_conn *c);

/*
 * pg_conn_lost closes c, logs why (libpq's message if NULL), fails what
 * it had in flight with TORPOR_EIO and schedules the next attempt.  Calls
 * back: from an io or timer callback only.
 */
void pg_conn_lost(struct pg_conn *c, const char *why);

/*
 * pg_conn_tick does what is due at now: tears down a broken or hung
 * connection, ends a connect that took too long, starts a retry, fails
 * waiting ops whose deadline passed.  From the loop's timer.
 */
void pg_conn_tick(struct pg_conn *c, uint64_t now);

/* pg_conn_next_ms: when c next needs the timer; UINT64_MAX: never. */
uint64_t pg_conn_next_ms(const struct pg_conn *c);

/*
 * pg_conn_drain sends what waits on a ready c, without holding commits
 * back, and blocks until every op sent is answered, c fails, or the first
 * unanswered op's deadline passes.  Only from destroy.
 */
void pg_conn_drain(struct pg_conn *c);

/*
 * pg_conn_shutdown fails what c still holds (sent: TORPOR_EIO, waiting:
 * TORPOR_ECLOSED) and closes it.  Only from destroy.
 */
void pg_conn_shutdown(struct pg_conn *c);

#endif /* TORPOR_PLUGINS_PG_H */
