/*
 * Listening sockets and accepting peers, on the host's main loop.
 */
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
ws_addr_format(const struct sockaddr *sa, char out[WS_ADDR_STRLEN])
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(out, WS_ADDR_STRLEN, "%s:%u", ip,
                 (unsigned)ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(out, WS_ADDR_STRLEN, "[%s]:%u", ip,
                 (unsigned)ntohs(sin6->sin6_port));
    } else {
        snprintf(out, WS_ADDR_STRLEN, "?");
    }
}

static void ws_listen_on_io(torpor_io *io, int fd, unsigned events, void *arg);

/* ws_listen_watch (re)opens the io of every listener that has none. */
static torpor_err
ws_listen_watch(struct ws_state *ws)
{
    torpor_loop *loop = ws->host->loop_main(ws->self);
    torpor_err err;

    for (size_t i = 0; i < ws->n_listeners; i++) {
        struct ws_listener *l = &ws->listeners[i];

        if (l->fd < 0 || l->io != NULL) {
            continue;
        }
        err = ws->host->io_open(loop, l->fd, TORPOR_IO_READ, ws_listen_on_io, l,
                                &l->io);
        if (err != TORPOR_OK) {
            return err;
        }
    }
    return TORPOR_OK;
}

static void
ws_listen_unwatch(struct ws_state *ws)
{
    for (size_t i = 0; i < ws->n_listeners; i++) {
        struct ws_listener *l = &ws->listeners[i];

        if (l->io != NULL) {
            ws->host->io_close(l->io);
            l->io = NULL;
        }
    }
}

static void
ws_listen_on_resume(torpor_timer *timer, void *arg)
{
    struct ws_state *ws = arg;
    torpor_err err;

    if (ws->stopping) {
        return;
    }
    err = ws_listen_watch(ws);
    if (err != TORPOR_OK) {
        /* Without a watch nobody is accepted: try again shortly. */
        WS_LOG(ws, TORPOR_LOG_ERR, NULL, "could not resume accepting: %s",
               ws->host->strerror(err));
        ws->host->timer_arm(timer, WS_ACCEPT_PAUSE_MS);
    }
}

/*
 * ws_listen_pause stops accepting for a while when the process is out of
 * descriptors: the pending peer stays in the backlog, and a level-triggered
 * watch would otherwise spin on it.
 */
static void
ws_listen_pause(struct ws_state *ws, int err)
{
    uint64_t now = ws->host->now_ms();
    char buf[128];

    if (ws->accept_timer == NULL
        && ws->host->timer_open(ws->host->loop_main(ws->self),
                                ws_listen_on_resume, ws, &ws->accept_timer)
               != TORPOR_OK) {
        /* Without a timer, keep watching: a spin beats never resuming. */
        return;
    }
    if (ws->accept_warned_ms == 0 || now - ws->accept_warned_ms >= 1000) {
        ws->accept_warned_ms = now;
        WS_LOG(ws, TORPOR_LOG_WARN, NULL,
               "could not accept connection: %s; pausing for %d ms",
               ws_strerror(err, buf, sizeof(buf)), WS_ACCEPT_PAUSE_MS);
    }
    ws_listen_unwatch(ws);
    ws->host->timer_arm(ws->accept_timer, WS_ACCEPT_PAUSE_MS);
}

static void
ws_listen_on_io(torpor_io *io, int lfd, unsigned events, void *arg)
{
    struct ws_listener *l = arg;
    struct ws_state *ws = l->ws;
    char name[WS_ADDR_STRLEN];
    char buf[128];
    int one = 1;

    for (int i = 0; i < WS_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t ss_len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &ss_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            switch (errno) {
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case EPERM:
                /* That peer is gone or was filtered; the next may not be. */
                continue;
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                ws_listen_pause(ws, errno);
                return;
            default:
                if (ws_warn_allowed(ws)) {
                    WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                           "could not accept connection: %s",
                           ws_strerror(errno, buf, sizeof(buf)));
                }
                return;
            }
        }
        /* Over its address's share: closed unread, before any allocation. */
        if (!ws_peer_admit(ws, fd, (const struct sockaddr *)&ss)) {
            if (ws_warn_allowed(ws)) {
                ws_addr_format((const struct sockaddr *)&ss, name);
                WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                       "could not accept \"%s\": its address has %u connections, the limit; closed",
                       name, ws->cfg.max_connections_per_address);
            }
            close(fd);
            continue;
        }
        if (ws->cfg.max_handshakes != 0
            && ws->n_handshakes >= ws->cfg.max_handshakes) {
            ws_conn_evict_oldest_handshake(ws);
        }
        /* Small frames go out at once; the output queue does batching. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (ws_conn_accept(ws, fd, l->tls) != TORPOR_OK) {
            ws_peer_forget(ws, fd);
            close(fd);
        }
    }
}

/* ws_listen_open binds and listens on one address; logs its failure. */
static torpor_err
ws_listen_open(struct ws_state *ws, const struct ws_addr *a, bool tls, int *out)
{
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    char name[WS_ADDR_STRLEN];
    char buf[128];
    const char *what;
    int one = 1;
    int fd;
    int err;

    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        what = "socket";
        goto fail;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        what = "setsockopt";
        goto fail;
    }
    if (a->ss.ss_family == AF_INET6
        && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
        what = "setsockopt";
        goto fail;
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        what = "bind";
        goto fail;
    }
    if (listen(fd, WS_LISTEN_BACKLOG) != 0) {
        what = "listen";
        goto fail;
    }
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        what = "getsockname";
        goto fail;
    }
    ws_addr_format((const struct sockaddr *)&bound, name);
    WS_LOG(ws, TORPOR_LOG_NOTICE, NULL, "listening on \"%s\"%s", name,
           tls ? " with TLS" : "");
    *out = fd;
    return TORPOR_OK;

fail:
    err = errno;
    ws_addr_format((const struct sockaddr *)&a->ss, name);
    WS_LOG(ws, TORPOR_LOG_ERR, NULL, "could not listen on \"%s\": %s", name,
           ws_strerror(err, buf, sizeof(buf)));
    WS_LOG(ws, TORPOR_LOG_DEBUG, NULL, "the failing call was %s()", what);
    if (fd >= 0) {
        close(fd);
    }
    return TORPOR_EIO;
}

torpor_err
ws_listen_start(struct ws_state *ws)
{
    size_t n_all = ws->cfg.n_listen + ws->cfg.n_listen_tls;
    torpor_err err;

    ws->stopping = false;
    /* The configured hook has refused this; a guard, no more. */
    if (n_all == 0) {
        WS_LOG(ws, TORPOR_LOG_ERR, NULL,
               "could not listen: listen and listen_tls are both empty");
        return TORPOR_EINVAL;
    }
    err = ws_tls_start(ws);
    if (err == TORPOR_OK && ws->cfg.n_listen_tls > 0
        && ws->tls_conns == NULL) {
        err = ws_tls_table_new(ws);
    }
    if (err != TORPOR_OK) {
        return err;
    }
    /* Plain addresses first, TLS ones after, each in the order given. */
    for (size_t i = 0; i < n_all; i++) {
        struct ws_listener *l = &ws->listeners[ws->n_listeners];
        bool tls = i >= ws->cfg.n_listen;
        const struct ws_addr *a =
            tls ? &ws->cfg.listen_tls[i - ws->cfg.n_listen]
                : &ws->cfg.listen[i];

        l->ws = ws;
        l->io = NULL;
        l->tls = tls;
        err = ws_listen_open(ws, a, tls, &l->fd);
        if (err != TORPOR_OK) {
            ws_listen_stop(ws);
            return err;
        }
        ws->n_listeners++;
    }
    err = ws_listen_watch(ws);
    if (err != TORPOR_OK) {
        WS_LOG(ws, TORPOR_LOG_ERR, NULL, "could not watch listeners: %s",
               ws->host->strerror(err));
        ws_listen_stop(ws);
        return err;
    }
    return TORPOR_OK;
}

void
ws_listen_stop(struct ws_state *ws)
{
    ws_listen_unwatch(ws);
    for (size_t i = 0; i < ws->n_listeners; i++) {
        if (ws->listeners[i].fd >= 0) {
            close(ws->listeners[i].fd);
            ws->listeners[i].fd = -1;
        }
    }
    ws->n_listeners = 0;
    if (ws->accept_timer != NULL) {
        ws->host->timer_close(ws->accept_timer);
        ws->accept_timer = NULL;
    }
}
