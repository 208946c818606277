/*
 * The registry of connections, one list per event loop.  Stop and destroy
 * find every connection through it, and each loop's keepalive sweep walks
 * only the list of its own loop, so a sweep never reads a connection
 * another thread owns.
 *
 * Everything here is under ws_state.lock, which accept, the move of a
 * connection to its object's loop and every free take anyway.  The
 * per-address counts (ws_peer.c) change at exactly those points and share
 * the lock.
 */
#include "ws.h"

#include <stdlib.h>

/* A list starts with room for this many and doubles. */
#define WS_REGISTRY_FIRST 64

static torpor_err
ws_registry_new_locked(struct ws_state *ws, torpor_loop *loop,
                       struct ws_loop_conns **out)
{
    struct ws_loop_conns **loops;
    struct ws_loop_conns *l;

    loops = realloc(ws->loops, (ws->n_loops + 1) * sizeof(*loops));
    if (loops == NULL) {
        return TORPOR_ENOMEM;
    }
    ws->loops = loops;
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return TORPOR_ENOMEM;
    }
    l->ws = ws;
    l->loop = loop;
    ws->loops[ws->n_loops++] = l;
    *out = l;
    return TORPOR_OK;
}

torpor_err
ws_registry_init(struct ws_state *ws)
{
    struct ws_loop_conns *l;

    return ws_registry_new_locked(ws, ws->host->loop_main(ws->self), &l);
}

struct ws_loop_conns *
ws_registry_find_locked(struct ws_state *ws, const torpor_loop *loop)
{
    /* A handful of loops: a scan beats any index. */
    for (uint32_t i = 0; i < ws->n_loops; i++) {
        if (ws->loops[i]->loop == loop) {
            return ws->loops[i];
        }
    }
    return NULL;
}

/* ws_registry_reserve_locked makes room for one more in l. */
static torpor_err
ws_registry_reserve_locked(struct ws_loop_conns *l)
{
    uint32_t cap;
    struct ws_conn **p;

    if (l->n < l->cap) {
        return TORPOR_OK;
    }
    cap = l->cap == 0 ? WS_REGISTRY_FIRST : l->cap * 2;
    if (cap <= l->cap) {
        return TORPOR_ENOMEM;
    }
    p = realloc(l->conns, (size_t)cap * sizeof(*p));
    if (p == NULL) {
        return TORPOR_ENOMEM;
    }
    l->conns = p;
    l->cap = cap;
    return TORPOR_OK;
}

static void
ws_registry_put_locked(struct ws_loop_conns *l, struct ws_conn *c)
{
    c->slot = l->n;
    l->conns[l->n++] = c;
}

static void
ws_registry_take_locked(struct ws_loop_conns *l, struct ws_conn *c)
{
    struct ws_conn *last = l->conns[--l->n];

    l->conns[c->slot] = last;
    last->slot = c->slot;
    /* Give memory back after a peak, keeping room to grow again. */
    if (l->cap > 256 && l->n < l->cap / 4) {
        struct ws_conn **p =
            realloc(l->conns, (size_t)(l->cap / 2) * sizeof(*p));

        if (p != NULL) {
            l->conns = p;
            l->cap /= 2;
        }
    }
}

torpor_err
ws_registry_add(struct ws_state *ws, struct ws_conn *c)
{
    struct ws_loop_conns *l;
    torpor_err err = TORPOR_ENOMEM;

    pthread_mutex_lock(&ws->lock);
    l = ws_registry_find_locked(ws, c->loop);
    if (l != NULL) {
        err = ws_registry_reserve_locked(l);
    }
    if (err == TORPOR_OK) {
        ws_registry_put_locked(l, c);
    }
    pthread_mutex_unlock(&ws->lock);
    return err;
}

torpor_err
ws_registry_move(struct ws_conn *c, torpor_loop *loop)
{
    struct ws_state *ws = c->ws;
    struct ws_loop_conns *from;
    struct ws_loop_conns *to;
    torpor_err err = TORPOR_OK;

    pthread_mutex_lock(&ws->lock);
    from = ws_registry_find_locked(ws, c->loop);
    to = ws_registry_find_locked(ws, loop);
    if (to == NULL) {
        err = ws_registry_new_locked(ws, loop, &to);
    }
    if (err == TORPOR_OK) {
        err = ws_registry_reserve_locked(to);
    }
    if (err == TORPOR_OK) {
        ws_registry_take_locked(from, c);
        /*
         * Written under lock, after every other write of the main loop's
         * to c: the sweep of loop reads c only under lock until c's first
         * callback there makes it that loop's.
         */
        c->loop = loop;
        ws_registry_put_locked(to, c);
    }
    pthread_mutex_unlock(&ws->lock);
    return err;
}

void
ws_registry_remove_locked(struct ws_state *ws, struct ws_conn *c)
{
    struct ws_loop_conns *l = ws_registry_find_locked(ws, c->loop);

    ws_registry_take_locked(l, c);
    ws_peer_forget_locked(ws, c->fd);
}

void
ws_registry_free(struct ws_state *ws)
{
    for (uint32_t i = 0; i < ws->n_loops; i++) {
        struct ws_loop_conns *l = ws->loops[i];

        if (l->sweep != NULL) {
            ws->host->timer_close(l->sweep);
        }
        free(l->conns);
        free(l);
    }
    free(ws->loops);
    ws->loops = NULL;
    ws->n_loops = 0;
}
