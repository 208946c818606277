/*
 * Keepalive: a connection whose peer has sent nothing for its route's
 * ping_interval_ms gets a ping; if still nothing arrives within
 * pong_timeout_ms, the connection is dropped and reported as 1006.
 *
 * No connection has a timer of its own.  Each loop runs one sweep timer
 * that walks that loop's list of connections (ws_registry.c) in batches,
 * and each connection keeps only a 24-bit stamp of its last input in the
 * padding of its record (ws_conn.seen_tick, in WS_TICK_MS), so keepalive
 * costs no memory per idle connection.  A pass over the list takes
 * sweep_ms: a quarter of the shortest interval or timeout of any route,
 * within [WS_SWEEP_MIN_MS, WS_SWEEP_MAX_MS], so a ping or a drop comes at
 * most one pass and one tick late, never early.
 *
 * A room that hibernates keeps its connections on their loop, and the
 * sweep pings them and reads their pongs without calling the core: the
 * object does not wake for keepalive.
 *
 * Why a drop and not a close frame: a peer that answers no ping within
 * pong_timeout_ms would not answer a close frame either, and waiting
 * close_timeout_ms more for it only holds the socket longer.
 */
#include "ws.h"

/*
 * Bounds of the pass period: finer costs CPU on idle connections, coarser
 * makes keepalive late.
 */
#define WS_SWEEP_MIN_MS 50
#define WS_SWEEP_MAX_MS 5000

/*
 * Connections looked at per run, so one run never holds up the loop for
 * long; a longer list is walked in several runs, back to back.
 */
#define WS_SWEEP_BATCH 512

/* ws_keepalive_ticks: whole ticks of duration ms, rounded up. */
static uint32_t
ws_keepalive_ticks(uint64_t ms)
{
    return (uint32_t)((ms + WS_TICK_MS - 1) / WS_TICK_MS);
}

/*
 * ws_keepalive_check looks at one connection of this loop and pings or
 * drops it when its time has come.  Never frees c: a drop marks it failed
 * and shuts its socket, so its own io callback frees it.
 */
static void
ws_keepalive_check(struct ws_conn *c, uint32_t now)
{
    const struct ws_route_opts *opts;
    uint32_t silent;

    if (c->state != WS_ST_OPEN || (c->flags & WS_F_FAILED) != 0) {
        return;
    }
    opts = ws_conn_opts(c);
    if (opts->ping_interval_ms == 0) {
        return;
    }
    silent = (now - c->seen_tick) & ((UINT32_C(1) << WS_TICK_BITS) - 1);
    /*
     * Stamps are whole ticks, so a silence of k ticks may be nearly one
     * tick shorter; comparing k - 1 with the setting is never early.
     */
    if ((c->flags & WS_F_PINGED) == 0) {
        if (silent < 1 + ws_keepalive_ticks(opts->ping_interval_ms)) {
            return;
        }
        c->seen_tick = now;
        c->flags |= WS_F_PINGED;
        /* A failure here closes or fails c by itself. */
        (void)ws_write_control(c, WS_OP_PING, NULL, 0);
        return;
    }
    if (silent < 1 + ws_keepalive_ticks(opts->pong_timeout_ms)) {
        return;
    }
    WS_COUNT(c->ws, keepalive_drops);
    WS_LOG(c->ws, TORPOR_LOG_DEBUG, c->conn,
           "dropping connection: no answer to a ping within %llu ms",
           (unsigned long long)opts->pong_timeout_ms);
    ws_conn_fail(c);
}

static void
ws_keepalive_on_sweep(torpor_timer *timer, void *arg)
{
    struct ws_loop_conns *l = arg;
    struct ws_state *ws = l->ws;
    struct ws_conn *batch[WS_SWEEP_BATCH];
    uint32_t n = 0;
    uint32_t now;
    bool done;

    pthread_mutex_lock(&ws->lock);
    if (__atomic_load_n(&ws->sweep_off, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(&ws->lock);
        return;
    }
    if (l->cursor > l->n) {
        l->cursor = l->n;
    }
    while (n < WS_SWEEP_BATCH && l->cursor < l->n) {
        struct ws_conn *c = l->conns[l->cursor++];

        /*
         * A record with no io has not reached this loop yet: the main loop
         * may still fail and free it, so it is not ours to look at.
         */
        if (c->io != NULL) {
            batch[n++] = c;
        }
    }
    done = l->cursor >= l->n;
    if (done) {
        l->cursor = 0;
    }
    pthread_mutex_unlock(&ws->lock);

    /*
     * Outside the lock, because a ping may fail and close.  Every record
     * of the batch stays valid: only this loop frees its connections, and
     * not while this callback runs.
     */
    now = ws_tick_now(ws);
    for (uint32_t i = 0; i < n; i++) {
        ws_keepalive_check(batch[i], now);
    }
    ws->host->timer_arm(timer, done ? ws->sweep_ms : 0);
}

/* ws_keepalive_open starts the sweep of l, on l's own loop. */
static void
ws_keepalive_open(struct ws_state *ws, struct ws_loop_conns *l)
{
    torpor_err err;

    err = ws->host->timer_open(l->loop, ws_keepalive_on_sweep, l, &l->sweep);
    if (err != TORPOR_OK) {
        l->sweep = NULL;
        WS_LOG(ws, TORPOR_LOG_ERR, NULL,
               "could not start keepalive on a loop: %s",
               ws->host->strerror(err));
        return;
    }
    ws->host->timer_arm(l->sweep, ws->sweep_ms);
}

torpor_err
ws_keepalive_start(struct ws_state *ws)
{
    uint64_t shortest = 0;

    for (uint32_t i = 0; i < ws->n_routes; i++) {
        const struct ws_route_opts *o = ws->routes[i];
        uint64_t least = o->ping_interval_ms < o->pong_timeout_ms
                             ? o->ping_interval_ms
                             : o->pong_timeout_ms;

        if (o->ping_interval_ms != 0 && (shortest == 0 || least < shortest)) {
            shortest = least;
        }
    }
    if (shortest == 0) {
        ws->sweep_ms = 0;
        return TORPOR_OK;
    }
    ws->sweep_ms = shortest / 4;
    if (ws->sweep_ms < WS_SWEEP_MIN_MS) {
        ws->sweep_ms = WS_SWEEP_MIN_MS;
    }
    if (ws->sweep_ms > WS_SWEEP_MAX_MS) {
        ws->sweep_ms = WS_SWEEP_MAX_MS;
    }
    ws_keepalive_open(ws, ws->loops[0]);
    return ws->loops[0]->sweep != NULL ? TORPOR_OK : TORPOR_ENOMEM;
}

void
ws_keepalive_arrive(struct ws_conn *c)
{
    struct ws_state *ws = c->ws;
    struct ws_loop_conns *l;

    ws_keepalive_heard(c);
    if (ws->sweep_ms == 0) {
        return;
    }
    pthread_mutex_lock(&ws->lock);
    l = ws_registry_find_locked(ws, c->loop);
    pthread_mutex_unlock(&ws->lock);
    /* Only this loop opens its own sweep, so no other thread races here. */
    if (l != NULL && l->sweep == NULL
        && !__atomic_load_n(&ws->sweep_off, __ATOMIC_RELAXED)) {
        ws_keepalive_open(ws, l);
    }
}

void
ws_keepalive_stop(struct ws_state *ws)
{
    __atomic_store_n(&ws->sweep_off, true, __ATOMIC_RELAXED);
}
