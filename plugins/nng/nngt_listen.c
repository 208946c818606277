/*
 * The nng sockets: one per configured address, with the pattern the
 * address names, and the receive loops that feed requests to
 * nngt_request.c.
 *
 * A rep address runs NNGT_REP_CONTEXTS contexts, each receiving one
 * request, waiting for its reply and receiving again, so that a slow room
 * holds up one context, not the address.  A pull address receives with
 * one aio, so that the requests of a pusher reach the rooms in the order
 * sent, and stops receiving while NNGT_PULL_INFLIGHT of them are in
 * flight, so that a fast pusher is slowed by nng's queues and TCP instead
 * of filling memory.  A pub address only counts its subscribers.
 *
 * Missing: authentication and encryption on nng addresses; whoever can connect may use every operation an address allows.
 */
#include "nngt.h"

#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A request may carry this much beyond its message: room, tags, keys. */
#define NNGT_ENVELOPE_BYTES 65536

static bool
nngt_stopping(const struct nngt_state *nt)
{
    return __atomic_load_n(&nt->stopping, __ATOMIC_ACQUIRE);
}

bool
nngt_warn_allowed(struct nngt_state *nt)
{
    uint64_t now = nt->host->now_ms();
    uint64_t start = __atomic_load_n(&nt->warn_window_ms, __ATOMIC_RELAXED);

    /* Whoever moves the window on resets the count; a race only lets a
     * line or two more through. */
    if (now - start >= 1000
        && __atomic_compare_exchange_n(&nt->warn_window_ms, &start, now,
                                       false, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED)) {
        uint32_t seen = __atomic_exchange_n(&nt->warn_count, 0,
                                            __ATOMIC_RELAXED);
        if (seen > NNGT_WARN_PER_SECOND) {
            NNGT_LOG(nt, TORPOR_LOG_WARN, "suppressed %u warnings about requests", seen - NNGT_WARN_PER_SECOND);
        }
    }
    return __atomic_add_fetch(&nt->warn_count, 1, __ATOMIC_RELAXED)
           <= NNGT_WARN_PER_SECOND;
}

/* ---- rep ---- */

static void
nngt_rep_recv(struct nngt_rep_ctx *rc)
{
    if (!nngt_stopping(rc->listener->nt)) {
        nng_ctx_recv(rc->ctx, rc->aio);
    }
}

void
nngt_reply_send(struct nngt_rep_ctx *rc, nng_msg *msg)
{
    if (msg == NULL) {
        /* Receiving again abandons the request: its sender times out. */
        nngt_rep_recv(rc);
        return;
    }
    if (nngt_stopping(rc->listener->nt)) {
        nng_msg_free(msg);
        return;
    }
    rc->sending = true;
    nng_aio_set_msg(rc->aio, msg);
    nng_ctx_send(rc->ctx, rc->aio);
}

static void
nngt_rep_cb(void *arg)
{
    struct nngt_rep_ctx *rc = arg;
    int rv = nng_aio_result(rc->aio);

    if (rc->sending) {
        rc->sending = false;
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(rc->aio));
            nng_aio_set_msg(rc->aio, NULL);
        }
        if (rv != NNG_ECLOSED) {
            nngt_rep_recv(rc);
        }
        return;
    }
    if (rv != 0) {
        /* Closed or cancelled at shutdown; anything else is one bad
         * request's problem, not the context's. */
        if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
            nngt_rep_recv(rc);
        }
        return;
    }
    nng_msg *msg = nng_aio_get_msg(rc->aio);
    nng_aio_set_msg(rc->aio, NULL);
    nngt_request_handle(rc->listener, rc, msg);
}

static int
nngt_rep_open(struct nngt_listener *l)
{
    int rv = nng_rep0_open(&l->sock);

    if (rv != 0) {
        return rv;
    }
    l->sock_open = true;
    for (size_t i = 0; i < NNGT_REP_CONTEXTS; i++) {
        struct nngt_rep_ctx *rc = &l->ctxs[i];
        rc->listener = l;
        rv = nng_ctx_open(&rc->ctx, l->sock);
        if (rv == 0) {
            rv = nng_aio_alloc(&rc->aio, nngt_rep_cb, rc);
            if (rv != 0) {
                nng_ctx_close(rc->ctx);
            }
        }
        if (rv != 0) {
            return rv;
        }
        l->nctxs++;
    }
    return 0;
}

/* ---- pull ---- */

static void
nngt_pull_cb(void *arg)
{
    struct nngt_listener *l = arg;
    int rv = nng_aio_result(l->pull_aio);

    if (rv != 0) {
        if (rv != NNG_ECLOSED && rv != NNG_ECANCELED
            && !nngt_stopping(l->nt)) {
            nng_recv_aio(l->sock, l->pull_aio);
        }
        return;
    }
    nng_msg *msg = nng_aio_get_msg(l->pull_aio);
    nng_aio_set_msg(l->pull_aio, NULL);
    pthread_mutex_lock(&l->pull_lock);
    l->pull_inflight++;
    pthread_mutex_unlock(&l->pull_lock);

    nngt_request_handle(l, NULL, msg);

    pthread_mutex_lock(&l->pull_lock);
    bool more = l->pull_inflight < NNGT_PULL_INFLIGHT;
    l->pull_paused = !more;
    pthread_mutex_unlock(&l->pull_lock);
    if (more && !nngt_stopping(l->nt)) {
        nng_recv_aio(l->sock, l->pull_aio);
    }
}

void
nngt_pull_done(struct nngt_listener *l)
{
    pthread_mutex_lock(&l->pull_lock);
    l->pull_inflight--;
    bool resume = l->pull_paused && l->pull_inflight < NNGT_PULL_INFLIGHT;
    if (resume) {
        l->pull_paused = false;
    }
    pthread_mutex_unlock(&l->pull_lock);
    if (resume && !nngt_stopping(l->nt)) {
        nng_recv_aio(l->sock, l->pull_aio);
    }
}

static int
nngt_pull_open(struct nngt_listener *l)
{
    int rv = nng_pull0_open(&l->sock);

    if (rv != 0) {
        return rv;
    }
    l->sock_open = true;
    if (pthread_mutex_init(&l->pull_lock, NULL) != 0) {
        return NNG_ENOMEM;
    }
    l->pull_lock_ready = true;
    return nng_aio_alloc(&l->pull_aio, nngt_pull_cb, l);
}

/* ---- pub ---- */

static void
nngt_pub_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct nngt_listener *l = arg;

    (void)pipe;
    nngt_events_subscriber(l->nt, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

static int
nngt_pub_open(struct nngt_listener *l)
{
    int rv = nng_pub0_open(&l->sock);

    if (rv != 0) {
        return rv;
    }
    l->sock_open = true;
    rv = nng_socket_set_int(l->sock, NNG_OPT_SENDBUF,
                            (int)l->nt->cfg.subscriber_queue);
    if (rv == 0) {
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST, nngt_pub_pipe_cb,
                             l);
    }
    if (rv == 0) {
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, nngt_pub_pipe_cb,
                             l);
    }
    return rv;
}

/* ---- listening ---- */

/* nngt_bound_url names what l is bound to, with port 0 resolved. */
static void
nngt_bound_url(struct nngt_listener *l, nng_listener lst)
{
    nng_url *url;
    int port;

    snprintf(l->url, sizeof(l->url), "%s", l->addr->url);
    if (nng_url_parse(&url, l->addr->url) != 0) {
        return;
    }
    if (strncmp(url->u_scheme, "tcp", 3) == 0
        && nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
        bool v6 = strchr(url->u_hostname, ':') != NULL;
        snprintf(l->url, sizeof(l->url), "%s://%s%s%s:%d", url->u_scheme,
                 v6 ? "[" : "", url->u_hostname, v6 ? "]" : "", port);
    }
    nng_url_free(url);
}

static torpor_err
nngt_listen_one(struct nngt_state *nt, struct nngt_listener *l)
{
    const struct nngt_addr *a = l->addr;
    nng_listener lst;
    char ops[128];
    int rv;

    switch (a->pattern) {
    case NNGT_REP:
        rv = nngt_rep_open(l);
        break;
    case NNGT_PULL:
        rv = nngt_pull_open(l);
        break;
    default:
        rv = nngt_pub_open(l);
        break;
    }
    if (rv == 0 && a->pattern != NNGT_PUB) {
        rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ,
                                 nt->cfg.max_message_bytes
                                     + NNGT_ENVELOPE_BYTES);
    }
    if (rv == 0) {
        rv = nng_listener_create(&lst, l->sock, a->url);
    }
    if (rv == 0) {
        rv = nng_listener_start(lst, 0);
    }
    if (rv != 0) {
        NNGT_LOG(nt, TORPOR_LOG_ERR, "could not listen on \"%s\" (%s): %s", a->url, a->key, nng_strerror(rv));
        return TORPOR_EIO;
    }
    nngt_bound_url(l, lst);
    NNGT_LOG(nt, TORPOR_LOG_NOTICE, "listening on \"%s\" for %s (%s: %s)", l->url, a->key, nngt_pattern_name(a->pattern), nngt_ops_text(a->ops, ops, sizeof(ops)));
    for (size_t i = 0; i < l->nctxs; i++) {
        nngt_rep_recv(&l->ctxs[i]);
    }
    if (l->pull_aio != NULL) {
        nng_recv_aio(l->sock, l->pull_aio);
    }
    return TORPOR_OK;
}

torpor_err
nngt_listen_start(struct nngt_state *nt)
{
    if (nt->cfg.naddrs == 0) {
        NNGT_LOG(nt, TORPOR_LOG_WARN, "no listen address in [transport.nng]: the nng transport serves nothing");
        return TORPOR_OK;
    }
    nt->listeners = calloc(nt->cfg.naddrs, sizeof(*nt->listeners));
    if (nt->listeners == NULL) {
        return TORPOR_ENOMEM;
    }
    for (size_t i = 0; i < nt->cfg.naddrs; i++) {
        struct nngt_listener *l = &nt->listeners[i];
        l->nt = nt;
        l->addr = &nt->cfg.addrs[i];
        nt->nlisteners++;
        torpor_err err = nngt_listen_one(nt, l);
        if (err != TORPOR_OK) {
            return err;
        }
    }
    return TORPOR_OK;
}

void
nngt_listen_stop(struct nngt_state *nt)
{
    __atomic_store_n(&nt->stopping, true, __ATOMIC_RELEASE);
    for (size_t i = 0; i < nt->nlisteners; i++) {
        struct nngt_listener *l = &nt->listeners[i];
        if (l->sock_open) {
            nng_close(l->sock);
            l->sock_open = false;
        }
    }
    /* Wait for callbacks that are running: none starts after this. */
    for (size_t i = 0; i < nt->nlisteners; i++) {
        struct nngt_listener *l = &nt->listeners[i];
        for (size_t k = 0; k < l->nctxs; k++) {
            nng_aio_stop(l->ctxs[k].aio);
        }
        if (l->pull_aio != NULL) {
            nng_aio_stop(l->pull_aio);
        }
    }
}

/* nngt_aio_free frees a stopped aio and a message it still holds. */
static void
nngt_aio_free(nng_aio *aio)
{
    nng_msg *msg = nng_aio_get_msg(aio);

    if (msg != NULL) {
        nng_msg_free(msg);
    }
    nng_aio_free(aio);
}

void
nngt_listen_free(struct nngt_state *nt)
{
    nngt_listen_stop(nt);
    for (size_t i = 0; i < nt->nlisteners; i++) {
        struct nngt_listener *l = &nt->listeners[i];
        for (size_t k = 0; k < l->nctxs; k++) {
            nngt_aio_free(l->ctxs[k].aio);
        }
        if (l->pull_aio != NULL) {
            nngt_aio_free(l->pull_aio);
        }
        if (l->pull_lock_ready) {
            pthread_mutex_destroy(&l->pull_lock);
        }
    }
    free(nt->listeners);
    nt->listeners = NULL;
    nt->nlisteners = 0;
}
