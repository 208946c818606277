/*
 * Keepalive: a connection whose peer has sent nothing for its route's
 * ping_interval_ms gets a ping; if still nothing arrives within
 * pong_timeout_ms, the connection is dropped and reported as 1006.
 *
 * No connection has a timer of its own.  Each loop runs one sweep timer
 * that walks the records the core keeps for the plugin on that loop
 * (host->conn_walk, over the loop's store of connections) in batches, and
 * each connection keeps only a 24-bit stamp of its last input in its
 * record (ws_conn.seen_tick, in WS_TICK_MS), which it shares with the
 * route's index in four bytes.  A pass over the store takes sweep_ms: a
 * quarter of the shortest interval or timeout of any route, within
 * [WS_SWEEP_MIN_MS, WS_SWEEP_MAX_MS], so a ping or a drop comes at most
 * one pass and one tick late, never early.
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

#include <stdlib.h>

/*
 * Bounds of the pass period: finer costs CPU on idle connections, coarser
 * makes keepalive late.
 */
#define WS_SWEEP_MIN_MS 50
#define WS_SWEEP_MAX_MS 5000

/*
 * Connections looked at per run, so one run never holds up the loop for
 * long; a larger store is walked in several runs, back to back.
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
 * drops it when its time has come; arg is its loop's sweep.  Never frees
 * c: a drop marks it failed and shuts its socket, so its own watch
 * callback frees it.
 */
static void
ws_keepalive_check(void *arg, void *tconn)
{
    const struct ws_sweep *sw = arg;
    struct ws_conn *c = tconn;
    const struct ws_route_opts *opts;
    uint32_t now;
    uint32_t silent;

    /*
     * A record still arriving is the main loop's until its move runs
     * here; one not open has no keepalive.
     */
    if ((c->flags & (WS_F_ARRIVING | WS_F_FAILED)) != 0
        || c->state != WS_ST_OPEN) {
        return;
    }
    opts = ws_conn_opts(c);
    if (opts->ping_interval_ms == 0) {
        return;
    }
    now = ws_tick_now(sw->ws);
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
    WS_COUNT(sw->ws, keepalive_drops);
    WS_LOG(sw->ws, TORPOR_LOG_DEBUG, ws_core(c),
           "dropping connection: no answer to a ping within %llu ms",
           (unsigned long long)opts->pong_timeout_ms);
    ws_conn_fail(c);
}

static void
ws_keepalive_on_sweep(torpor_timer *timer, void *arg)
{
    struct ws_sweep *sw = arg;
    struct ws_state *ws = sw->ws;
    bool done;

    if (__atomic_load_n(&ws->sweep_off, __ATOMIC_RELAXED)) {
        return;
    }
    /* The walk's records stay valid: a check frees none of them. */
    done = ws->host->conn_walk(sw->loop, ws->self, &sw->cursor, WS_SWEEP_BATCH,
                               ws_keepalive_check, sw);
    ws->host->timer_arm(timer, done ? ws->sweep_ms : 0);
}

/* ws_keepalive_find: the sweep of loop, or NULL if it has none yet. */
static struct ws_sweep *
ws_keepalive_find(struct ws_state *ws, const torpor_loop *loop)
{
    struct ws_sweep *sw = __atomic_load_n(&ws->sweeps, __ATOMIC_ACQUIRE);

    /* A handful of loops: a scan beats any index. */
    for (; sw != NULL; sw = sw->next) {
        if (sw->loop == loop) {
            return sw;
        }
    }
    return NULL;
}

/* ws_keepalive_open starts the sweep of loop, on loop itself. */
static void
ws_keepalive_open(struct ws_state *ws, torpor_loop *loop)
{
    struct ws_sweep *sw = calloc(1, sizeof(*sw));
    torpor_err err = TORPOR_ENOMEM;

    if (sw != NULL) {
        sw->ws = ws;
        sw->loop = loop;
        err = ws->host->timer_open(loop, ws_keepalive_on_sweep, sw, &sw->timer);
    }
    if (err != TORPOR_OK) {
        free(sw);
        WS_LOG(ws, TORPOR_LOG_ERR, NULL,
               "could not start keepalive on a loop: %s",
               ws->host->strerror(err));
        return;
    }
    /* Only this loop pushes its own sweep; others may push theirs. */
    sw->next = __atomic_load_n(&ws->sweeps, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&ws->sweeps, &sw->next, sw, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
    }
    ws->host->timer_arm(sw->timer, ws->sweep_ms);
}

void
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
        return;
    }
    ws->sweep_ms = shortest / 4;
    if (ws->sweep_ms < WS_SWEEP_MIN_MS) {
        ws->sweep_ms = WS_SWEEP_MIN_MS;
    }
    if (ws->sweep_ms > WS_SWEEP_MAX_MS) {
        ws->sweep_ms = WS_SWEEP_MAX_MS;
    }
}

void
ws_keepalive_arrive(struct ws_conn *c)
{
    struct ws_state *ws = ws_of(c);
    torpor_loop *loop;

    ws_keepalive_heard(c);
    if (ws->sweep_ms == 0
        || __atomic_load_n(&ws->sweep_off, __ATOMIC_RELAXED)) {
        return;
    }
    loop = ws_loop(c);
    if (ws_keepalive_find(ws, loop) == NULL) {
        ws_keepalive_open(ws, loop);
    }
}

void
ws_keepalive_stop(struct ws_state *ws)
{
    __atomic_store_n(&ws->sweep_off, true, __ATOMIC_RELAXED);
}

void
ws_keepalive_free(struct ws_state *ws)
{
    while (ws->sweeps != NULL) {
        struct ws_sweep *sw = ws->sweeps;

        ws->sweeps = sw->next;
        ws->host->timer_close(sw->timer);
        free(sw);
    }
}
