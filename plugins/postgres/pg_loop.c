/*
 * One pool per caller loop: which connection an op takes, the order of
 * reads that span objects, and the timer that enforces every deadline.
 *
 * Order: the ops of one object always take the same connection, chosen by
 * its id, and a connection completes its ops in queue order (waiting ones
 * are sent in order, sent ones are answered in order, and a failure fails
 * all sent ones in order before a waiting one can complete).  Reads that
 * span objects (alarms_due, objects) may take any connection, so that a
 * read queued after a commit sees it they are held until every commit and
 * drop queued before them on this loop has completed.
 *
 * The timer runs whenever something is due: a deadline of an op, the end
 * of a connect attempt or of a backoff, or a failure found inside a call.
 *
 * Ops queued while the plugin's own io or timer callback runs (by the
 * completions it delivers) wait until it ends, and then go out together:
 * the commits among them share a transaction (see pg_conn.c).
 */
#include "pg.h"

#include <stdlib.h>
#include <string.h>

/* pg_loop_rand: xorshift64, for backoff jitter only. */
static uint64_t
pg_loop_rand(struct pg_loop *lp)
{
    uint64_t x = lp->rand;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    lp->rand = x;
    return x;
}

uint64_t
pg_loop_backoff(struct pg_loop *lp, uint32_t attempts)
{
    const struct pg_config *cfg = &lp->pg->cfg;
    uint64_t d = cfg->reconnect_min_ms;

    for (uint32_t i = 0; i < attempts && d < cfg->reconnect_max_ms; i++) {
        d *= 2;
    }
    if (d > cfg->reconnect_max_ms) {
        d = cfg->reconnect_max_ms;
    }
    /*
     * Half of the wait is fixed, so retries never come faster than half
     * the step; half is random, so that nodes which lost the server at the
     * same moment do not come back at the same moment.
     */
    return d - d / 2 + pg_loop_rand(lp) % (d / 2 + 1);
}

void
pg_loop_arm(struct pg_loop *lp, uint64_t at_ms)
{
    const struct torpor_host *host = lp->pg->host;
    uint64_t now;

    if (lp->in_tick || (lp->armed && lp->timer_at_ms <= at_ms)) {
        return;
    }
    now = host->now_ms();
    host->timer_arm(lp->timer, at_ms > now ? at_ms - now : 0);
    lp->armed = true;
    lp->timer_at_ms = at_ms;
}

/* pg_loop_rearm arms the timer for the earliest thing due. */
static void
pg_loop_rearm(struct pg_loop *lp)
{
    uint64_t next = UINT64_MAX;

    for (uint32_t i = 0; i < lp->n_conns; i++) {
        uint64_t t = pg_conn_next_ms(&lp->conns[i]);

        if (t < next) {
            next = t;
        }
    }
    if (lp->held.head != NULL && lp->held.head->deadline_ms < next) {
        next = lp->held.head->deadline_ms;
    }
    if (next != UINT64_MAX) {
        pg_loop_arm(lp, next);
    }
}

static void
pg_loop_on_timer(torpor_timer *timer, void *arg)
{
    struct pg_loop *lp = arg;
    uint64_t now = lp->pg->host->now_ms();
    struct pg_op *op;

    (void)timer;
    lp->armed = false;
    lp->in_tick = true;
    lp->defer++;
    for (uint32_t i = 0; i < lp->n_conns; i++) {
        pg_conn_tick(&lp->conns[i], now);
    }
    while (lp->held.head != NULL && lp->held.head->deadline_ms <= now) {
        op = pg_queue_pop(&lp->held);
        pg_loop_complete(op, TORPOR_EIO);
    }
    pg_loop_release(lp);
    lp->defer--;
    pg_loop_pump(lp);
    lp->in_tick = false;
    pg_loop_rearm(lp);
}

torpor_err
pg_loop_get(struct pg_state *pg, torpor_loop *loop, struct pg_loop **out)
{
    uint32_t n = pg->cfg.pool_size;
    struct pg_loop *lp;
    torpor_err err;

    pthread_mutex_lock(&pg->lock);
    for (lp = pg->loops; lp != NULL && lp->loop != loop; lp = lp->next) {
    }
    pthread_mutex_unlock(&pg->lock);
    if (lp != NULL) {
        *out = lp;
        return TORPOR_OK;
    }

    /* Only loop's own thread gets here for loop, so no one races us. */
    lp = calloc(1, sizeof(*lp) + n * sizeof(lp->conns[0]));
    if (lp == NULL) {
        return TORPOR_ENOMEM;
    }
    lp->pg = pg;
    lp->loop = loop;
    lp->n_conns = n;
    lp->rand = (pg->host->now_ms() << 20) ^ (uint64_t)(uintptr_t)lp
               ^ UINT64_C(0x9e3779b97f4a7c15);
    err = pg->host->timer_open(loop, pg_loop_on_timer, lp, &lp->timer);
    if (err != TORPOR_OK) {
        free(lp);
        return err;
    }
    for (uint32_t i = 0; i < n; i++) {
        pg_conn_init(&lp->conns[i], lp, i);
    }
    pthread_mutex_lock(&pg->lock);
    lp->next = pg->loops;
    pg->loops = lp;
    pthread_mutex_unlock(&pg->lock);
    for (uint32_t i = 0; i < n; i++) {
        pg_conn_start(&lp->conns[i]);
    }
    *out = lp;
    return TORPOR_OK;
}

/* pg_loop_pick: an object's connection, the same for all its ops. */
static struct pg_conn *
pg_loop_pick(struct pg_loop *lp, const uint8_t id[16])
{
    uint32_t h = (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16
                 | (uint32_t)id[3] << 24;

    return &lp->conns[h % lp->n_conns];
}

void
pg_loop_release(struct pg_loop *lp)
{
    if (lp->pg->destroying) {
        return;
    }
    while (lp->held.head != NULL) {
        struct pg_op *op = lp->held.head;
        struct pg_conn *c = NULL;

        if (lp->writes_head != NULL && lp->writes_head->seq < op->seq) {
            return;
        }
        for (uint32_t i = 0; i < lp->n_conns && c == NULL; i++) {
            struct pg_conn *cand = &lp->conns[(lp->rr + i) % lp->n_conns];

            if (pg_conn_is_ready(cand)) {
                c = cand;
            }
        }
        if (c == NULL) {
            return;
        }
        lp->rr = c->index + 1;
        pg_queue_pop(&lp->held);
        pg_conn_submit(c, op);
    }
}

void
pg_loop_pump(struct pg_loop *lp)
{
    for (uint32_t i = 0; i < lp->n_conns; i++) {
        pg_conn_pump(&lp->conns[i]);
    }
}

void
pg_loop_submit(struct pg_loop *lp, struct pg_op *op)
{
    op->lp = lp;
    op->seq = lp->next_seq++;
    op->deadline_ms = lp->pg->host->now_ms() + lp->pg->cfg.op_timeout_ms;
    if (op->is_write) {
        op->wprev = lp->writes_tail;
        if (lp->writes_tail != NULL) {
            lp->writes_tail->wnext = op;
        } else {
            lp->writes_head = op;
        }
        lp->writes_tail = op;
    }
    if (op->has_object) {
        pg_conn_submit(pg_loop_pick(lp, op->object.id), op);
    } else {
        pg_queue_push(&lp->held, op);
        pg_loop_release(lp);
    }
    pg_loop_arm(lp, op->deadline_ms);
}

/*
 * pg_loop_on_task delivers a completion posted by destroy.  It needs
 * nothing but the op itself, which may outlive the plugin's state.
 */
static void
pg_loop_on_task(torpor_task *task)
{
    struct pg_op *op =
        (struct pg_op *)(void *)((char *)task - offsetof(struct pg_op, task));

    pg_op_deliver(op, op->err);
}

void
pg_loop_complete(struct pg_op *op, torpor_err err)
{
    struct pg_loop *lp = op->lp;
    struct pg_state *pg = lp->pg;
    bool write = op->is_write;

    if (write) {
        if (op->wprev != NULL) {
            op->wprev->wnext = op->wnext;
        } else {
            lp->writes_head = op->wnext;
        }
        if (op->wnext != NULL) {
            op->wnext->wprev = op->wprev;
        } else {
            lp->writes_tail = op->wprev;
        }
    }
    if (pg->destroying) {
        /*
         * The loop no longer runs, so the completion cannot be called on
         * it now; posted, it runs when the core frees the loop, still on
         * the loop's thread and in order.
         */
        op->err = err;
        op->task.run = pg_loop_on_task;
        pg->host->loop_post(lp->loop, &op->task);
        return;
    }
    pg_op_deliver(op, err);
    if (write) {
        pg_loop_release(lp);
    }
}

void
pg_loop_shutdown(struct pg_loop *lp)
{
    struct pg_op *op;

    for (uint32_t i = 0; i < lp->n_conns; i++) {
        pg_conn_drain(&lp->conns[i]);
    }
    for (uint32_t i = 0; i < lp->n_conns; i++) {
        pg_conn_shutdown(&lp->conns[i]);
    }
    while ((op = pg_queue_pop(&lp->held)) != NULL) {
        pg_loop_complete(op, TORPOR_ECLOSED);
    }
    lp->pg->host->timer_close(lp->timer);
    free(lp);
}
