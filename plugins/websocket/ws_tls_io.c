/*
 * One TLS connection: a non-blocking OpenSSL session over its socket.
 *
 * The session lies in a table indexed by descriptor, which exists only
 * when listen_tls is set, so a plain connection pays nothing for TLS and a
 * TLS one 16 bytes there besides its SSL; WS_F_TLS tells which records
 * have an entry.  The core copies a connection's record byte for byte
 * when it attaches it, which a pointer from the record to a session of
 * its own would survive too, but not without 8 more bytes in every
 * record.  An entry is written on the main loop at accept, then only on
 * the loop of its connection, and emptied before the socket is closed, so
 * a descriptor number reused by a later accept finds it empty.  An idle
 * connection holds its SSL and nothing else of OpenSSL's:
 * SSL_MODE_RELEASE_BUFFERS (ws_tls.c) gives the read and write buffers
 * back whenever they are empty.
 *
 * How OpenSSL's rules for non-blocking sockets are kept:
 *
 * - A call that fails with SSL_ERROR_WANT_READ or SSL_ERROR_WANT_WRITE is
 *   repeated once the socket is ready in that direction, whichever call it
 *   was: a read may wait for writability (its handshake flight, an alert)
 *   and a write for readability.  Two flags say which; ws_tls_watch and
 *   ws_tls_ready turn them into io events.
 * - A write that failed so must be repeated with the same bytes and
 *   length; the buffer may move (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
 *   WS_TLS_BEGUN and begun_len make the output queue keep those bytes at
 *   its head, whole frames of them, and the repeat join them again.
 * - Small frames are joined into one record per write (ws_tls_chunk), so
 *   a pass's corked frames cost one record and one write(), as they cost
 *   one sendmsg() on a plain connection.
 * - Decrypted bytes may wait inside the session after a read into a small
 *   buffer, with nothing left on the socket to wake the loop;
 *   ws_tls_pending tells the reader to come back at once.
 * - The thread's error queue is cleared before each call, so SSL_get_error
 *   sees that call's errors only: a connection changes loops, and each
 *   loop is a thread of its own.
 * - After a fatal error nothing but SSL_free is called.
 *
 * The socket BIO writes with write(2): torpord ignores SIGPIPE
 * (core/runtime.c), so a vanished peer is EPIPE here as with send's
 * MSG_NOSIGNAL on plain connections.
 */
#include "ws.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum {
    WS_TLS_READ_WANTS_WRITE = 1, /* SSL_read waits for writability */
    WS_TLS_WRITE_WANTS_READ = 2, /* SSL_write waits for readability */
    WS_TLS_BEGUN = 4,            /* SSL_write must be repeated as it was */
    WS_TLS_BROKEN = 8            /* a fatal error: only SSL_free is left */
};

/*
 * The most descriptors the table has room for, whatever RLIMIT_NOFILE
 * says: 16 MiB of address space, of which only the pages that sessions
 * use are touched.
 */
#define WS_TLS_TABLE_MAX ((size_t)1 << 20)

struct ws_tls_conn {
    SSL *ssl;       /* NULL: no TLS connection on this descriptor */
    uint8_t tflags; /* WS_TLS_* */
    /* With WS_TLS_BEGUN: the length of the write to repeat. */
    uint32_t begun_len;
};

/*
 * Plaintext of one TLS record, the most a write of small frames joins:
 * one record and one write() for what a pass sends to a connection.
 */
#define WS_TLS_RECORD 16384

static struct ws_tls_conn *
ws_tls_of(const struct ws_conn *c)
{
    return &ws_of(c)->tls_conns[c->fd];
}

torpor_err
ws_tls_table_new(struct ws_state *ws)
{
    struct rlimit lim;
    size_t n = WS_TLS_TABLE_MAX;

    /*
     * The hard limit, not the soft one: the process may raise its soft
     * limit later (a service manager or prlimit often does), and rows it
     * never uses cost address space only.
     */
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_max != RLIM_INFINITY
        && lim.rlim_max < n) {
        n = (size_t)lim.rlim_max;
    }
    ws->tls_conns = calloc(n, sizeof(*ws->tls_conns));
    if (ws->tls_conns == NULL) {
        return TORPOR_ENOMEM;
    }
    ws->n_tls_conns = n;
    return TORPOR_OK;
}

void
ws_tls_table_free(struct ws_state *ws)
{
    free(ws->tls_conns);
    ws->tls_conns = NULL;
    ws->n_tls_conns = 0;
}

torpor_err
ws_tls_conn_begin(struct ws_conn *c)
{
    struct ws_state *ws = ws_of(c);
    struct ws_tls_conn *t;
    SSL *ssl;

    if (ws->tls_ctx == NULL || ws->tls_conns == NULL) {
        return TORPOR_ESTATE;
    }
    /* Missing: the table has room for the hard RLIMIT_NOFILE as it was at start; a connection on a descriptor past it, once root raises that limit, is refused. */
    if (c->fd < 0 || (size_t)c->fd >= ws->n_tls_conns) {
        return TORPOR_ELIMIT;
    }
    ERR_clear_error();
    /* SSL_new takes a reference: a reload never pulls the pair from under
     * a session. */
    ssl = SSL_new(ws->tls_ctx);
    if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return TORPOR_ENOMEM;
    }
    SSL_set_accept_state(ssl);
    t = ws_tls_of(c);
    t->ssl = ssl;
    t->tflags = 0;
    t->begun_len = 0;
    c->flags |= WS_F_TLS;
    return TORPOR_OK;
}

/*
 * ws_tls_close_notify says goodbye in TLS once, if the session can: one
 * try, since the alert is a few dozen bytes and the socket has just taken
 * all our output; a peer it does not reach still gets the FIN.
 */
static void
ws_tls_close_notify(struct ws_tls_conn *t)
{
    if ((t->tflags & (WS_TLS_BROKEN | WS_TLS_BEGUN)) != 0
        || !SSL_is_init_finished(t->ssl)
        || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN) != 0) {
        return;
    }
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void
ws_tls_conn_end(struct ws_conn *c)
{
    struct ws_tls_conn *t = ws_tls_of(c);

    /* A failed socket is shut down already: nothing would get through. */
    if ((c->flags & WS_F_FAILED) == 0) {
        ws_tls_close_notify(t);
    }
    SSL_free(t->ssl);
    t->ssl = NULL;
    t->tflags = 0;
    t->begun_len = 0;
    c->flags &= (uint16_t)~WS_F_TLS;
}

void
ws_tls_shutdown(struct ws_conn *c)
{
    ws_tls_close_notify(ws_tls_of(c));
}

/* ws_tls_http_request: the handshake failed on plain HTTP. */
static bool
ws_tls_http_request(void)
{
    unsigned long e = ERR_peek_last_error();

    return ERR_GET_LIB(e) == ERR_LIB_SSL
           && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST;
}

/* ws_tls_conn_reason names the error OpenSSL queued last, for a log line. */
static const char *
ws_tls_conn_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason;

    if (e == 0) {
        return "unknown error";
    }
    if (ws_tls_http_request()) {
        return "a plain HTTP request on a TLS port, answered 400";
    }
    reason = ERR_reason_error_string(e);
    return reason != NULL ? reason : "unknown error";
}

/*
 * What a plain HTTP client gets from a TLS port, instead of a reset: most
 * likely someone wrote ws:// for wss://.
 */
#define WS_TLS_PLAIN_BODY "This port speaks TLS: use wss://.\n"

/*
 * ws_tls_answer_plain answers a plain HTTP request in plain HTTP, once,
 * without waiting.  The request has in all likelihood arrived whole, and
 * reading what is there lets the close that follows be a FIN rather than
 * a reset, which could destroy the answer before the client reads it.
 */
static void
ws_tls_answer_plain(int fd)
{
    char answer[256];
    char sink[4096];
    int n = snprintf(answer, sizeof(answer),
                     "HTTP/1.1 400 Bad Request\r\n"
                     "Connection: close\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "\r\n"
                     "%s",
                     sizeof(WS_TLS_PLAIN_BODY) - 1, WS_TLS_PLAIN_BODY);

    if (n > 0 && (size_t)n < sizeof(answer)) {
        (void)send(fd, answer, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    (void)shutdown(fd, SHUT_WR);
    for (int i = 0; i < 4; i++) {
        if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0) {
            break;
        }
    }
}

/* ws_tls_log_failure logs a fatal TLS error of c, then clears the queue. */
static void
ws_tls_log_failure(const struct ws_conn *c, bool handshaking, bool reading)
{
    struct ws_state *ws = ws_of(c);
    char peer[WS_ADDR_STRLEN];

    if (handshaking) {
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            WS_LOG(ws, TORPOR_LOG_WARN, NULL,
                   "could not complete TLS handshake with \"%s\": %s", peer,
                   ws_tls_conn_reason());
        }
    } else if (WS_DEBUG_ON(ws)) {
        WS_LOG(ws, TORPOR_LOG_DEBUG, ws_core(c), "could not %s TLS: %s",
               reading ? "read" : "write", ws_tls_conn_reason());
    }
    ERR_clear_error();
}

static void
ws_tls_log_handshake(const struct ws_conn *c, struct ws_tls_conn *t)
{
    struct ws_state *ws = ws_of(c);
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    char peer[WS_ADDR_STRLEN];

    if (!WS_DEBUG_ON(ws)) {
        return;
    }
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
    ws_conn_peer(c, peer);
    WS_LOG(ws, TORPOR_LOG_DEBUG, NULL,
           "TLS handshake with \"%s\" done: %s, %s, ALPN \"%.*s\"", peer,
           SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl), (int)alpn_len,
           alpn != NULL ? (const char *)alpn : "");
}

/*
 * ws_tls_result maps the failure ret of SSL_read (reading) or SSL_write
 * to the recv/send convention: -1 with EAGAIN and the direction to wait
 * for noted, 0 at the peer's end of a read, or -1 with errno for a fatal
 * error, which is logged.
 */
static ssize_t
ws_tls_result(const struct ws_conn *c, struct ws_tls_conn *t, int ret,
              bool reading, bool handshaking)
{
    int sys_errno = errno;

    switch (SSL_get_error(t->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        if (!reading) {
            t->tflags |= WS_TLS_WRITE_WANTS_READ;
        }
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        if (reading) {
            t->tflags |= WS_TLS_READ_WANTS_WRITE;
        }
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        /* The peer's close_notify, or its plain FIN (unexpected EOF is
         * accepted: WebSocket's close frame already ends the stream). */
        ERR_clear_error();
        if (reading) {
            return 0;
        }
        errno = EPIPE;
        return -1;
    case SSL_ERROR_SYSCALL:
        t->tflags |= WS_TLS_BROKEN;
        ERR_clear_error();
        if (sys_errno == 0) {
            if (reading) {
                return 0;
            }
            sys_errno = EPIPE;
        }
        errno = sys_errno;
        return -1;
    default:
        t->tflags |= WS_TLS_BROKEN;
        if (handshaking && ws_tls_http_request()) {
            ws_tls_answer_plain(c->fd);
        }
        ws_tls_log_failure(c, handshaking, reading);
        errno = EPROTO;
        return -1;
    }
}

ssize_t
ws_tls_recv(struct ws_conn *c, void *buf, size_t len)
{
    struct ws_tls_conn *t = ws_tls_of(c);
    bool handshaking;
    size_t total;
    int n;

    if ((t->tflags & WS_TLS_BROKEN) != 0) {
        errno = EPROTO;
        return -1;
    }
    if (len > INT_MAX) {
        len = INT_MAX;
    }
    /* The server side of the handshake runs inside the first reads. */
    handshaking = !SSL_is_init_finished(t->ssl);
    t->tflags &= (uint8_t)~WS_TLS_READ_WANTS_WRITE;
    ERR_clear_error();
    n = SSL_read(t->ssl, buf, (int)len);
    if (n <= 0) {
        return ws_tls_result(c, t, n, true, handshaking);
    }
    if (handshaking) {
        ws_tls_log_handshake(c, t);
        return n;
    }
    /*
     * One SSL_read gives at most one record, and a client may send a
     * record per message: read on while records wait, so that what one
     * readiness brings is handled in one pass of the loop, as on a plain
     * socket, and what it relays is corked together.  Whatever stops the
     * run is told again by the next call; the bytes come first.
     */
    total = (size_t)n;
    while (total < len) {
        t->tflags &= (uint8_t)~WS_TLS_READ_WANTS_WRITE;
        ERR_clear_error();
        n = SSL_read(t->ssl, (uint8_t *)buf + total, (int)(len - total));
        if (n <= 0) {
            (void)ws_tls_result(c, t, n, true, false);
            break;
        }
        total += (size_t)n;
    }
    return (ssize_t)total;
}

/*
 * ws_tls_chunk picks the bytes of iov[*i..niov) that the next SSL_write
 * takes, from byte *skip of iov[*i], and advances *i and *skip past them.
 * While a write is begun they are exactly the begun_len bytes it was made
 * with; otherwise whole iovecs joined into one record's worth, in
 * scratch, or the rest of one iovec that is larger on its own.  A
 * repeated write so meets the same bytes, which the output queue keeps
 * (ws_io_write_begun).  Returns the length, 0 when iov holds fewer bytes
 * than a begun write needs.
 */
static size_t
ws_tls_chunk(const struct ws_tls_conn *t, const struct iovec *iov, size_t niov,
             size_t *i, size_t *skip, uint8_t *scratch, const uint8_t **out)
{
    size_t want = (t->tflags & WS_TLS_BEGUN) != 0 ? t->begun_len : 0;
    size_t first = iov[*i].iov_len - *skip;
    size_t len = 0;

    if (want == 0
        && (first >= WS_TLS_RECORD || *i + 1 == niov
            || first + iov[*i + 1].iov_len > WS_TLS_RECORD)) {
        want = first;
    }
    if (want != 0 && want <= first) {
        *out = (const uint8_t *)iov[*i].iov_base + *skip;
        *skip += want;
        if (*skip == iov[*i].iov_len) {
            (*i)++;
            *skip = 0;
        }
        return want;
    }
    /* Joined in scratch: a begun chunk of several, or whole iovecs. */
    while (*i < niov) {
        size_t part = iov[*i].iov_len - *skip;

        if (want != 0 ? len == want : len + part > WS_TLS_RECORD) {
            break;
        }
        if (want != 0 && len + part > want) {
            part = want - len;
        }
        memcpy(scratch + len, (const uint8_t *)iov[*i].iov_base + *skip, part);
        len += part;
        *skip += part;
        if (*skip == iov[*i].iov_len) {
            (*i)++;
            *skip = 0;
        }
    }
    *out = scratch;
    return want != 0 && len < want ? 0 : len;
}

ssize_t
ws_tls_sendv(struct ws_conn *c, const struct iovec *iov, size_t niov)
{
    static _Thread_local uint8_t scratch[WS_TLS_RECORD];
    struct ws_tls_conn *t = ws_tls_of(c);
    size_t total = 0;
    size_t i = 0;
    size_t skip = 0;

    if ((t->tflags & WS_TLS_BROKEN) != 0) {
        errno = EPIPE;
        return -1;
    }
    for (;;) {
        const uint8_t *p;
        size_t left;

        while (i < niov && iov[i].iov_len == skip) {
            i++;
            skip = 0;
        }
        if (i == niov) {
            break;
        }
        left = ws_tls_chunk(t, iov, niov, &i, &skip, scratch, &p);

        if (left == 0) {
            /* The bytes a begun write was made with are gone: our bug. */
            t->tflags |= WS_TLS_BROKEN;
            errno = EPROTO;
            return total > 0 ? (ssize_t)total : -1;
        }
        while (left > 0) {
            /* The same bytes give the same length, as a repeat needs. */
            int len = left > INT_MAX ? INT_MAX : (int)left;
            int n;

            t->tflags &= (uint8_t)~WS_TLS_WRITE_WANTS_READ;
            ERR_clear_error();
            n = SSL_write(t->ssl, p, len);
            if (n <= 0) {
                ssize_t r = ws_tls_result(c, t, n, false, false);

                if (r < 0 && errno == EAGAIN) {
                    t->tflags |= WS_TLS_BEGUN;
                    t->begun_len = (uint32_t)len;
                }
                /* A fatal error after some bytes shows on the next call. */
                return total > 0 ? (ssize_t)total : r;
            }
            t->tflags &= (uint8_t)~WS_TLS_BEGUN;
            t->begun_len = 0;
            total += (size_t)n;
            p += n;
            left -= (size_t)n;
        }
    }
    return (ssize_t)total;
}

bool
ws_tls_pending(const struct ws_conn *c)
{
    const struct ws_tls_conn *t = ws_tls_of(c);

    return (t->tflags & WS_TLS_BROKEN) == 0 && SSL_pending(t->ssl) > 0;
}

size_t
ws_tls_write_begun(const struct ws_conn *c)
{
    const struct ws_tls_conn *t = ws_tls_of(c);

    return (t->tflags & WS_TLS_BEGUN) != 0 ? t->begun_len : 0;
}

bool
ws_tls_handshaking(const struct ws_conn *c)
{
    return !SSL_is_init_finished(ws_tls_of(c)->ssl);
}

unsigned
ws_tls_watch(const struct ws_conn *c, unsigned want)
{
    uint8_t tf = ws_tls_of(c)->tflags;
    bool read_stalled =
        (tf & WS_TLS_READ_WANTS_WRITE) != 0 && (want & TORPOR_IO_READ) != 0;
    bool write_stalled =
        (tf & WS_TLS_WRITE_WANTS_READ) != 0 && (want & TORPOR_IO_WRITE) != 0;
    unsigned out = want;

    /* Watching the stalled direction itself would only spin the loop. */
    if (read_stalled) {
        out &= ~(unsigned)TORPOR_IO_READ;
    }
    if (write_stalled) {
        out &= ~(unsigned)TORPOR_IO_WRITE;
    }
    if (read_stalled) {
        out |= TORPOR_IO_WRITE;
    }
    if (write_stalled) {
        out |= TORPOR_IO_READ;
    }
    return out;
}

unsigned
ws_tls_ready(const struct ws_conn *c, unsigned events)
{
    uint8_t tf = ws_tls_of(c)->tflags;
    unsigned out = events;

    if ((events & TORPOR_IO_WRITE) != 0
        && (tf & WS_TLS_READ_WANTS_WRITE) != 0) {
        out |= TORPOR_IO_READ;
    }
    if ((events & TORPOR_IO_READ) != 0 && (tf & WS_TLS_WRITE_WANTS_READ) != 0) {
        out |= TORPOR_IO_WRITE;
    }
    return out;
}
