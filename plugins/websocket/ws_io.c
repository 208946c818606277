/*
 * The byte stream of a connection: the plain implementation, and the
 * dispatch to the TLS one (ws_tls_io.c) for records with WS_F_TLS.  A
 * flag rather than a table of functions, so a plain connection's record
 * stays as small as it was.
 */
#include "ws.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static bool
ws_io_is_tls(const struct ws_conn *c)
{
    return (c->flags & WS_F_TLS) != 0;
}

torpor_err
ws_io_begin(struct ws_conn *c, bool tls)
{
    return tls ? ws_tls_conn_begin(c) : TORPOR_OK;
}

void
ws_io_end(struct ws_conn *c)
{
    if (ws_io_is_tls(c)) {
        ws_tls_conn_end(c);
    }
}

ssize_t
ws_io_recv(struct ws_conn *c, void *buf, size_t len)
{
    if (ws_io_is_tls(c)) {
        return ws_tls_recv(c, buf, len);
    }
    return recv(c->fd, buf, len, 0);
}

ssize_t
ws_io_send(struct ws_conn *c, const void *buf, size_t len)
{
    struct iovec iov;

    if (ws_io_is_tls(c)) {
        iov.iov_base = (void *)buf;
        iov.iov_len = len;
        return ws_tls_sendv(c, &iov, 1);
    }
    return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t
ws_io_sendv(struct ws_conn *c, const struct iovec *iov, size_t niov)
{
    struct msghdr msg;

    if (ws_io_is_tls(c)) {
        return ws_tls_sendv(c, iov, niov);
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = niov;
    return sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int
ws_io_shutdown(struct ws_conn *c)
{
    if (ws_io_is_tls(c)) {
        ws_tls_shutdown(c);
    }
    return shutdown(c->fd, SHUT_WR);
}

bool
ws_io_pending(const struct ws_conn *c)
{
    return ws_io_is_tls(c) && ws_tls_pending(c);
}

size_t
ws_io_write_begun(const struct ws_conn *c)
{
    return ws_io_is_tls(c) ? ws_tls_write_begun(c) : 0;
}

bool
ws_io_handshaking(const struct ws_conn *c)
{
    return ws_io_is_tls(c) && ws_tls_handshaking(c);
}

unsigned
ws_io_watch(const struct ws_conn *c, unsigned want)
{
    return ws_io_is_tls(c) ? ws_tls_watch(c, want) : want;
}

unsigned
ws_io_ready(const struct ws_conn *c, unsigned events)
{
    return ws_io_is_tls(c) ? ws_tls_ready(c, events) : events;
}
