/*
 * One pooled connection: the non-blocking connect, the pipeline that
 * carries ops and their answers, group commit, and reconnecting with
 * backoff.
 *
 * Everything here runs on the connection's loop.  Functions reached from a
 * storage call (pg_conn_submit, pg_conn_start) never call a completion:
 * what fails there only marks the connection broken and arms the loop's
 * timer, which tears it down on its next run.
 *
 * The pipeline: once connected, the connection enters pipeline mode and
 * first sends the preparation of every statement, then the ops.  Nothing
 * waits for an answer before the next op goes out, so ops of many objects
 * share round trips, and answers come back in sending order: the in-flight
 * queue, read from its head, names the op each result belongs to.
 *
 * Group commit: PostgreSQL runs everything between two Syncs as one
 * transaction, and each transaction that writes waits for its own WAL
 * flush.  So commits are not sent one Sync each as they come: while a
 * write of the connection is unanswered, new commits wait, and when it is
 * answered the commits that queued meanwhile go as one group (at most
 * PG_GROUP_MAX_OPS), their statements back to back and one Sync: one
 * transaction, one flush, one round trip for all.  The group's size thus
 * follows the load; a lone commit still goes at once.  Any other op (a
 * read, a drop) goes alone and ends a group, so nothing is reordered.
 *
 * If a statement of a group fails, the server skips the rest and rolls the
 * whole transaction back: none of its commits is applied.  They go back
 * to the head of the waiting queue, the one whose statement failed marked
 * to go alone, and are sent again: those before it in one group, it alone
 * (so only it can fail), those after it grouped with whatever waits.  For
 * that to keep every object's order, nothing is sent behind a group until
 * its answer is in.
 */
#include "pg.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

static const int pg_formats[PG_MAX_PARAMS] = {1, 1, 1, 1};

static void pg_conn_on_io(torpor_io *io, int fd, unsigned events, void *arg);

void
pg_conn_init(struct pg_conn *c, struct pg_loop *lp, uint32_t index)
{
    memset(c, 0, sizeof(*c));
    c->lp = lp;
    c->index = index;
    c->fd = -1;
    c->state = PG_CONN_BACKOFF;
}

/*
 * pg_conn_break leaves a failure for the timer, which runs next.  In
 * destroy no loop runs: pg_conn_drain sees broken and stops.
 */
static void
pg_conn_break(struct pg_conn *c)
{
    c->broken = true;
    if (!c->lp->pg->destroying) {
        pg_loop_arm(c->lp, 0);
    }
}

/*
 * pg_conn_watch asks for events on libpq's socket, which may change during
 * the connect when libpq moves on to another address.
 */
static void
pg_conn_watch(struct pg_conn *c, unsigned events)
{
    const struct torpor_host *host = c->lp->pg->host;
    int fd = PQsocket(c->pq);

    if (c->io != NULL && fd == c->fd) {
        if (events != c->watching) {
            if (host->io_set(c->io, events) != TORPOR_OK) {
                pg_conn_break(c);
                return;
            }
            c->watching = events;
        }
        return;
    }
    host->io_close(c->io);
    c->io = NULL;
    c->fd = fd;
    c->watching = 0;
    if (fd < 0
        || host->io_open(c->lp->loop, fd, events, pg_conn_on_io, c, &c->io)
               != TORPOR_OK) {
        c->io = NULL;
        pg_conn_break(c);
        return;
    }
    c->watching = events;
}

/* pg_conn_flush pushes output; writes are watched while some is left. */
static void
pg_conn_flush(struct pg_conn *c)
{
    int r = PQflush(c->pq);

    if (r < 0) {
        pg_conn_break(c);
        return;
    }
    pg_conn_watch(c, TORPOR_IO_READ | (r == 1 ? TORPOR_IO_WRITE : 0));
}

/*
 * pg_conn_send_timeout bounds each statement on the server too.  When a
 * hung op's connection is closed, its backend does not notice while it
 * waits (on a lock, say), and could otherwise apply a commit long after it
 * was reported failed, even after later commits of the same object on a
 * new connection.  Twice op_timeout_ms, so that this side's deadline
 * fires first and the server only ends what was given up here.
 */
static bool
pg_conn_send_timeout(struct pg_conn *c)
{
    char sql[64];

    snprintf(sql, sizeof(sql), "SET statement_timeout = %llu",
             (unsigned long long)c->lp->pg->cfg.op_timeout_ms * 2);
    return PQsendQueryParams(c->pq, sql, 0, NULL, NULL, NULL, NULL, 1) == 1;
}

/*
 * pg_conn_append appends op's statements to the pipeline, then a Sync if
 * sync: the ops between two Syncs are one transaction.  Whatever happens,
 * op joins the in-flight queue, so that a failure fails it in its place
 * in the order.  The caller flushes.
 */
static void
pg_conn_append(struct pg_conn *c, struct pg_op *op, bool sync)
{
    bool ok = !c->broken;

    for (uint32_t i = 0; ok && i < op->n_stmts; i++) {
        const struct pg_stmt *s = &op->stmts[i];
        const struct pg_stmt_def *d;

        if (s->id == PG_ST_SESSION) {
            ok = pg_conn_send_timeout(c);
            continue;
        }
        d = &pg_stmt_defs[s->id];
        if (op->kind == PG_OP_PREPARE) {
            ok = PQsendPrepare(c->pq, d->name, d->sql, d->nparams, d->types)
                 == 1;
        } else {
            ok = PQsendQueryPrepared(c->pq, d->name, s->nparams, s->values,
                                     s->lengths, pg_formats, 1)
                 == 1;
        }
    }
    /* Missing: PQpipelineSync flushes, so each transaction costs one write even when several are sent at once; libpq 17's PQsendPipelineSync would batch them. */
    if (sync) {
        ok = ok && PQpipelineSync(c->pq) == 1;
    }
    op->sync_after = sync;
    pg_queue_push(&c->inflight, op);
    if (op->is_write) {
        c->writes_inflight++;
    }
    if (!ok) {
        pg_conn_break(c);
    }
}

/* pg_conn_groupable: a commit that may share its transaction. */
static bool
pg_conn_groupable(const struct pg_op *op)
{
    return op->kind == PG_OP_COMMIT && !op->alone;
}

/*
 * pg_conn_send_group sends the run of groupable commits at the head of
 * the waiting queue, within the PG_GROUP_MAX_* caps, as one transaction.
 */
static void
pg_conn_send_group(struct pg_conn *c)
{
    const struct pg_op *op = c->waiting.head;
    size_t bytes = 0;
    uint32_t n = 0;

    while (op != NULL && pg_conn_groupable(op) && n < PG_GROUP_MAX_OPS
           && (n == 0 || op->bytes <= PG_GROUP_MAX_BYTES - bytes)) {
        bytes += op->bytes;
        n++;
        op = op->next;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct pg_op *member = pg_queue_pop(&c->waiting);

        member->in_group = n > 1;
        pg_conn_append(c, member, i + 1 == n);
    }
    c->group_inflight = n > 1;
}

/*
 * pg_conn_pump_now sends from the waiting queue while nothing forbids it.
 * hold: a commit waits while a write is unanswered, to form a group; off
 * in destroy, which only wants everything answered soon.
 */
static void
pg_conn_pump_now(struct pg_conn *c, bool hold)
{
    while (c->waiting.head != NULL && !c->group_inflight && !c->broken) {
        struct pg_op *op = c->waiting.head;

        if (!pg_conn_groupable(op)) {
            pg_queue_pop(&c->waiting);
            pg_conn_append(c, op, true);
        } else if (hold && c->writes_inflight > 0) {
            break;
        } else {
            pg_conn_send_group(c);
        }
    }
}

void
pg_conn_pump(struct pg_conn *c)
{
    if (!pg_conn_is_ready(c) || c->lp->defer > 0 || c->lp->pg->destroying
        || c->waiting.head == NULL) {
        return;
    }
    pg_conn_pump_now(c, true);
    if (!c->broken) {
        pg_conn_flush(c);
    }
}

/*
 * Missing: libpq resolves a host name with a blocking lookup inside PQconnectStartParams, which stalls the loop while DNS is slow; only socket paths and numeric addresses stay non-blocking.
 */
void
pg_conn_start(struct pg_conn *c)
{
    static const char *const keys[] = {"dbname", "fallback_application_name",
                                       NULL};
    struct pg_state *pg = c->lp->pg;
    const char *values[] = {pg->cfg.conninfo, "torpor", NULL};

    c->broken = false;
    c->pq = PQconnectStartParams(keys, values, 1);
    if (c->pq == NULL) {
        pg_conn_lost(c, "out of memory");
        return;
    }
    if (PQstatus(c->pq) == CONNECTION_BAD) {
        pg_conn_lost(c, NULL);
        return;
    }
    c->state = PG_CONN_CONNECTING;
    c->when_ms = pg->host->now_ms() + pg->cfg.connect_timeout_ms;
    pg_conn_watch(c, TORPOR_IO_WRITE);
    pg_loop_arm(c->lp, c->when_ms);
}

/*
 * pg_conn_up turns a fresh connection into a pipeline: statements are
 * prepared first, and ops that waited for the connection follow at once,
 * because the pipeline runs the preparations before them.
 */
static void
pg_conn_up(struct pg_conn *c)
{
    struct pg_state *pg = c->lp->pg;
    struct pg_op *op;

    if (PQsetnonblocking(c->pq, 1) != 0 || PQenterPipelineMode(c->pq) != 1
        || pg_op_prepare(&op) != TORPOR_OK) {
        c->broken = true;
        return;
    }
    PQsetNoticeProcessor(c->pq, pg_notice, pg);
    op->lp = c->lp;
    op->deadline_ms = pg->host->now_ms() + pg->cfg.op_timeout_ms;
    c->state = PG_CONN_READY;
    pg_conn_watch(c, TORPOR_IO_READ);
    pg_conn_append(c, op, true);
    pg_conn_pump_now(c, true);
    if (!c->broken) {
        pg_conn_flush(c);
    }
    pg_loop_release(c->lp);
}

/* pg_conn_poll advances the connect by one step. */
static void
pg_conn_poll(struct pg_conn *c)
{
    switch (PQconnectPoll(c->pq)) {
    case PGRES_POLLING_READING:
        pg_conn_watch(c, TORPOR_IO_READ);
        break;
    case PGRES_POLLING_WRITING:
        pg_conn_watch(c, TORPOR_IO_WRITE);
        break;
    case PGRES_POLLING_OK:
        pg_conn_up(c);
        break;
    default:
        c->broken = true;
        break;
    }
}

/* pg_conn_prepared ends the connection's own first op. */
static void
pg_conn_prepared(struct pg_conn *c, struct pg_op *op, torpor_err err)
{
    struct pg_state *pg = c->lp->pg;

    pg_op_free(op);
    if (err != TORPOR_OK) {
        if (pg_warn_allowed(pg)) {
            PG_LOG(
                pg, TORPOR_LOG_ERR,
                "could not prepare statements on PostgreSQL \"%s\"; reconnecting",
                pg->target);
        }
        c->broken = true;
        return;
    }
    c->attempts = 0;
    if (c->was_lost) {
        c->was_lost = false;
        PG_LOG(pg, TORPOR_LOG_NOTICE, "reconnected to PostgreSQL \"%s\"",
               pg->target);
    }
}

/*
 * pg_conn_failed notes the first failing statement of op.  A statement the
 * server skipped after an earlier failure is not op's fault.  A failure in
 * a group is logged at DEBUG only: the commit is sent again alone, and
 * warned about if it fails then.
 */
static void
pg_conn_failed(struct pg_conn *c, struct pg_op *op, const PGresult *r)
{
    struct pg_state *pg = c->lp->pg;
    torpor_log_level level = op->in_group ? TORPOR_LOG_DEBUG : TORPOR_LOG_WARN;
    char line[512];

    if (op->err != TORPOR_OK) {
        return;
    }
    op->err = TORPOR_EIO;
    if (PQresultStatus(r) != PGRES_FATAL_ERROR) {
        return;
    }
    /* Past its last statement the failure is the transaction's commit. */
    op->culprit = op->cur < op->n_stmts;
    if (level == TORPOR_LOG_WARN ? pg_warn_allowed(pg)
                                 : pg->host->log_enabled(pg->self, level)) {
        uint8_t id =
            op->cur < op->n_stmts ? op->stmts[op->cur].id : PG_ST_SESSION;
        const char *name =
            id != PG_ST_SESSION ? pg_stmt_defs[id].name : "session setup";

        PG_LOG(pg, level, "could not run \"%s\" on PostgreSQL \"%s\": %s", name,
               pg->target,
               pg_one_line(PQresultErrorMessage(r), line, sizeof(line)));
    }
}

/*
 * pg_conn_regroup puts back the commits of a group that failed, in order,
 * at the head of the waiting queue: the server rolled all of them back.
 * The one whose statement failed goes alone next time; if none did (the
 * commit itself failed), every one does.  So each failed group sends at
 * least one commit alone, which ends with its own answer: this ends.
 */
static void
pg_conn_regroup(struct pg_conn *c, struct pg_queue *group,
                const struct pg_op *culprit, uint32_t n)
{
    struct pg_state *pg = c->lp->pg;

    for (struct pg_op *op = group->head; op != NULL; op = op->next) {
        op->alone = op->alone || culprit == NULL || op == culprit;
        op->in_group = false;
        op->culprit = false;
        op->cur_seen = false;
        op->cur = 0;
        op->err = TORPOR_OK;
    }
    group->tail->next = c->waiting.head;
    if (c->waiting.tail == NULL) {
        c->waiting.tail = group->tail;
    }
    c->waiting.head = group->head;
    if (pg->host->log_enabled(pg->self, TORPOR_LOG_DEBUG)) {
        PG_LOG(
            pg, TORPOR_LOG_DEBUG,
            "could not commit a group of %u commits on PostgreSQL \"%s\"; sending them again, %s",
            n, pg->target,
            culprit != NULL ? "the failing one alone" : "each alone");
    }
}

/*
 * pg_conn_synced ends the transaction whose Sync follows last: the ops
 * from the head of the in-flight queue to last.  One op completes with
 * its own outcome; a group completes every commit with TORPOR_OK in
 * order, or, if it failed, is put back to be sent again.
 */
static void
pg_conn_synced(struct pg_conn *c, struct pg_op *last)
{
    struct pg_queue done = {NULL, NULL};
    const struct pg_op *culprit = NULL;
    bool failed = false;
    uint32_t n = 0;
    struct pg_op *op;

    c->reading = NULL;
    do {
        op = pg_queue_pop(&c->inflight);
        if (op->is_write) {
            c->writes_inflight--;
        }
        if (op->err == TORPOR_OK && op->cur != op->n_stmts) {
            op->err = TORPOR_EIO;
        }
        failed = failed || op->err != TORPOR_OK;
        if (culprit == NULL && op->culprit) {
            culprit = op;
        }
        pg_queue_push(&done, op);
        n++;
    } while (op != last && c->inflight.head != NULL);

    /* Only one group is ever unanswered; an op sent before it may end. */
    if (n > 1) {
        c->group_inflight = false;
    }
    if (n > 1 && failed) {
        pg_conn_regroup(c, &done, culprit, n);
        return;
    }
    while ((op = pg_queue_pop(&done)) != NULL) {
        if (op->kind == PG_OP_PREPARE) {
            pg_conn_prepared(c, op, op->err);
        } else {
            pg_loop_complete(op, op->err);
        }
    }
}

/*
 * pg_conn_process hands every answer that has arrived to its op and ends
 * each transaction at its Sync.  libpq ends each statement's results with
 * a NULL; a NULL before any result of the current statement means that
 * nothing more has arrived yet.  A member of a group whose statements are
 * all answered has no Sync of its own: what comes next is the next
 * member's.
 */
static void
pg_conn_process(struct pg_conn *c)
{
    while (!c->broken && c->inflight.head != NULL && !PQisBusy(c->pq)) {
        struct pg_op *op = c->reading != NULL ? c->reading : c->inflight.head;
        PGresult *r;

        while (!op->sync_after && op->cur >= op->n_stmts && op->next != NULL) {
            op = op->next;
        }
        c->reading = op;
        r = PQgetResult(c->pq);
        if (r == NULL) {
            if (!op->cur_seen) {
                break;
            }
            op->cur++;
            op->cur_seen = false;
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(r);
            pg_conn_synced(c, op);
            break;
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
            op->cur_seen = true;
            if (!pg_op_take(op, r)) {
                PQclear(r);
            }
            break;
        default:
            op->cur_seen = true;
            pg_conn_failed(c, op, r);
            PQclear(r);
            break;
        }
    }
}

static void
pg_conn_on_io(torpor_io *io, int fd, unsigned events, void *arg)
{
    struct pg_conn *c = arg;

    (void)io;
    (void)fd;
    c->lp->defer++;
    if (c->state == PG_CONN_CONNECTING) {
        pg_conn_poll(c);
    } else if (c->state == PG_CONN_READY) {
        if ((events & TORPOR_IO_READ) && PQconsumeInput(c->pq) != 1) {
            c->broken = true;
        }
        pg_conn_process(c);
        if (!c->broken && (events & TORPOR_IO_WRITE)) {
            pg_conn_flush(c);
        }
    }
    if (c->state != PG_CONN_BACKOFF
        && (c->broken || PQstatus(c->pq) == CONNECTION_BAD)) {
        pg_conn_lost(c, NULL);
    }
    c->lp->defer--;
    pg_loop_pump(c->lp);
}

void
pg_conn_lost(struct pg_conn *c, const char *why)
{
    struct pg_loop *lp = c->lp;
    struct pg_state *pg = lp->pg;
    struct pg_queue failed = c->inflight;
    bool was_ready = c->state == PG_CONN_READY;
    uint64_t delay = pg_loop_backoff(lp, c->attempts);
    char line[512];
    struct pg_op *op;

    if (why == NULL) {
        why = c->pq != NULL
                  ? pg_one_line(PQerrorMessage(c->pq), line, sizeof(line))
                  : "";
    }
    if (why[0] == '\0') {
        why = "connection closed";
    }
    if (pg_warn_allowed(pg)) {
        if (was_ready) {
            PG_LOG(
                pg, TORPOR_LOG_WARN,
                "lost connection to PostgreSQL \"%s\": %s; retrying in %llu ms",
                pg->target, why, (unsigned long long)delay);
        } else {
            PG_LOG(
                pg, TORPOR_LOG_WARN,
                "could not connect to PostgreSQL \"%s\": %s; retrying in %llu ms",
                pg->target, why, (unsigned long long)delay);
        }
    }
    pg->host->io_close(c->io);
    c->io = NULL;
    c->fd = -1;
    c->watching = 0;
    PQfinish(c->pq);
    c->pq = NULL;
    c->state = PG_CONN_BACKOFF;
    c->broken = false;
    c->was_lost = c->was_lost || was_ready;
    c->attempts++;
    c->when_ms = pg->host->now_ms() + delay;
    c->inflight.head = NULL;
    c->inflight.tail = NULL;
    c->reading = NULL;
    c->writes_inflight = 0;
    c->group_inflight = false;
    pg_loop_arm(lp, c->when_ms);

    /*
     * Every op sent on the connection fails, in order, before any op that
     * waits for the next connection can complete.  For a commit this is
     * the honest answer but not the whole truth: if its Sync was sent, the
     * server may have committed it and lost the connection before its
     * answer arrived, and this side cannot tell.  So EIO from a commit
     * means "not known to be applied", not "known not to be": the caller
     * must neither report it durable nor assume it absent, and re-reads
     * after reconnecting to learn which.  Retrying the same batch is safe,
     * since every write sets or removes a whole value.
     */
    while ((op = pg_queue_pop(&failed)) != NULL) {
        if (op->kind == PG_OP_PREPARE) {
            pg_op_free(op);
        } else {
            pg_loop_complete(op, TORPOR_EIO);
        }
    }
}

void
pg_conn_submit(struct pg_conn *c, struct pg_op *op)
{
    pg_queue_push(&c->waiting, op);
    pg_conn_pump(c);
}

bool
pg_conn_is_ready(const struct pg_conn *c)
{
    return c->state == PG_CONN_READY && !c->broken;
}

void
pg_conn_tick(struct pg_conn *c, uint64_t now)
{
    struct pg_op *op;

    if (c->broken) {
        pg_conn_lost(c, NULL);
    } else if (c->state == PG_CONN_CONNECTING && now >= c->when_ms) {
        pg_conn_lost(c, "timeout expired");
    } else if (c->state == PG_CONN_READY && c->inflight.head != NULL
               && now >= c->inflight.head->deadline_ms) {
        /* Missing: no cancel request is sent for a hung op (libpq 15 has only a blocking one); its statement runs on until statement_timeout ends it. */
        /* A pipeline cannot skip one answer: a hung op hangs all after it. */
        pg_conn_lost(c, "no answer within op_timeout_ms");
    }
    if (c->state == PG_CONN_BACKOFF && now >= c->when_ms) {
        pg_conn_start(c);
    }
    while (c->waiting.head != NULL && c->waiting.head->deadline_ms <= now) {
        op = pg_queue_pop(&c->waiting);
        pg_loop_complete(op, TORPOR_EIO);
    }
}

uint64_t
pg_conn_next_ms(const struct pg_conn *c)
{
    uint64_t next = UINT64_MAX;

    if (c->broken) {
        return 0;
    }
    if (c->state != PG_CONN_READY) {
        next = c->when_ms;
    }
    if (c->inflight.head != NULL && c->inflight.head->deadline_ms < next) {
        next = c->inflight.head->deadline_ms;
    }
    if (c->waiting.head != NULL && c->waiting.head->deadline_ms < next) {
        next = c->waiting.head->deadline_ms;
    }
    return next;
}

void
pg_conn_drain(struct pg_conn *c)
{
    const struct torpor_host *host = c->lp->pg->host;

    while (c->state == PG_CONN_READY && !c->broken) {
        uint64_t now;
        uint64_t deadline;
        struct pollfd p;
        int r;

        pg_conn_pump_now(c, false);
        if (c->inflight.head == NULL || c->broken) {
            return;
        }
        now = host->now_ms();
        deadline = c->inflight.head->deadline_ms;
        p = (struct pollfd){.fd = PQsocket(c->pq), .events = POLLIN};
        r = PQflush(c->pq);

        if (r < 0 || now >= deadline) {
            return;
        }
        if (r == 1) {
            p.events |= POLLOUT;
        }
        r = poll(&p, 1,
                 deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
        if (r < 0 && errno != EINTR) {
            return;
        }
        if ((p.revents & (POLLIN | POLLERR | POLLHUP))
            && PQconsumeInput(c->pq) != 1) {
            return;
        }
        pg_conn_process(c);
    }
}

void
pg_conn_shutdown(struct pg_conn *c)
{
    struct pg_op *op;

    while ((op = pg_queue_pop(&c->inflight)) != NULL) {
        if (op->kind == PG_OP_PREPARE) {
            pg_op_free(op);
        } else {
            /* Sent and unanswered: maybe applied, so not ECLOSED. */
            pg_loop_complete(op, TORPOR_EIO);
        }
    }
    while ((op = pg_queue_pop(&c->waiting)) != NULL) {
        pg_loop_complete(op, TORPOR_ECLOSED);
    }
    c->lp->pg->host->io_close(c->io);
    c->io = NULL;
    PQfinish(c->pq);
    c->pq = NULL;
}
