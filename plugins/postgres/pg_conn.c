/*
 * One pooled connection: the non-blocking connect, the pipeline that
 * carries ops and their answers, and reconnecting with backoff.
 *
 * Everything here runs on the connection's loop.  Functions reached from a
 * storage call (pg_conn_submit, pg_conn_start) never call a completion:
 * what fails there only marks the connection broken and arms the loop's
 * timer, which tears it down on its next run.
 *
 * The pipeline: once connected, the connection enters pipeline mode and
 * first sends the preparation of every statement, then each op as its
 * statements followed by a Sync.  Nothing waits for an answer before the
 * next op goes out, so ops of many objects share round trips, and answers
 * come back in sending order: the head of the in-flight queue is always
 * the op the next result belongs to.
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

/* pg_conn_break leaves a failure for the timer, which runs next. */
static void
pg_conn_break(struct pg_conn *c)
{
    c->broken = true;
    pg_loop_arm(c->lp, 0);
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
 * pg_conn_send appends op to the pipeline.  Whatever happens, op joins the
 * in-flight queue, so that a failure fails it in its place in the order.
 */
static void
pg_conn_send(struct pg_conn *c, struct pg_op *op)
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
    /* Missing: PQpipelineSync flushes, so each op costs one write even when many are queued at once; libpq 17's PQsendPipelineSync would batch them. */
    ok = ok && PQpipelineSync(c->pq) == 1;
    pg_queue_push(&c->inflight, op);
    if (!ok) {
        pg_conn_break(c);
    } else {
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
    pg_conn_send(c, op);
    while ((op = pg_queue_pop(&c->waiting)) != NULL) {
        pg_conn_send(c, op);
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

/* pg_conn_failed notes the first failing statement of op. */
static void
pg_conn_failed(struct pg_conn *c, struct pg_op *op, const PGresult *r)
{
    struct pg_state *pg = c->lp->pg;
    char line[512];

    if (op->err != TORPOR_OK) {
        return;
    }
    op->err = TORPOR_EIO;
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && pg_warn_allowed(pg)) {
        uint8_t id =
            op->cur < op->n_stmts ? op->stmts[op->cur].id : PG_ST_SESSION;
        const char *name =
            id != PG_ST_SESSION ? pg_stmt_defs[id].name : "session setup";

        PG_LOG(pg, TORPOR_LOG_WARN,
               "could not run \"%s\" on PostgreSQL \"%s\": %s", name,
               pg->target,
               pg_one_line(PQresultErrorMessage(r), line, sizeof(line)));
    }
}

/*
 * pg_conn_process hands every answer that has arrived to its op and
 * completes each op at its Sync.  libpq ends each statement's results with
 * a NULL; a NULL before any result of the current statement means that
 * nothing more has arrived yet.
 */
static void
pg_conn_process(struct pg_conn *c)
{
    while (!c->broken && c->inflight.head != NULL && !PQisBusy(c->pq)) {
        struct pg_op *op = c->inflight.head;
        PGresult *r = PQgetResult(c->pq);
        torpor_err err;

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
            pg_queue_pop(&c->inflight);
            err = op->err;
            if (err == TORPOR_OK && op->cur != op->n_stmts) {
                err = TORPOR_EIO;
            }
            if (op->kind == PG_OP_PREPARE) {
                pg_conn_prepared(c, op, err);
            } else {
                pg_loop_complete(op, err);
            }
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
    if (c->state == PG_CONN_READY && !c->broken && c->waiting.head == NULL) {
        pg_conn_send(c, op);
    } else {
        pg_queue_push(&c->waiting, op);
    }
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

    while (c->state == PG_CONN_READY && !c->broken
           && c->inflight.head != NULL) {
        uint64_t now = host->now_ms();
        uint64_t deadline = c->inflight.head->deadline_ms;
        struct pollfd p = {.fd = PQsocket(c->pq), .events = POLLIN};
        int r = PQflush(c->pq);

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
