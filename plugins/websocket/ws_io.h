/*
 * The websocket transport's byte stream: the one layer between the
 * protocol code and a connection's socket, plain (ws_io.c) or TLS with
 * OpenSSL (ws_tls_io.c), chosen per connection by WS_F_TLS.
 *
 * The calls follow recv(2) and send(2): a count of bytes, 0 for the end
 * of the peer's stream on a read, or -1 with errno set, EAGAIN meaning
 * "not now".  For TLS, "not now" may mean that a read waits for the socket
 * to be writable or a write for it to be readable (a TLS record of the
 * other direction is in the way); ws_io_watch and ws_io_ready translate
 * that for the io watch, so callers keep thinking in plain reads and
 * writes.  Two TLS rules leak through and callers must honour them:
 *
 * - ws_io_pending: TLS may hold decrypted bytes that no readiness of the
 *   socket will announce; a reader reads again while it says so.
 * - ws_io_write_begun: a send that returned 0 bytes (EAGAIN) may still
 *   have been taken into a TLS record, which the next send must repeat
 *   with the same bytes; the output queue keeps the frames that hold them
 *   like a head that is partly sent.
 *
 * Every call runs on the connection's loop.
 */
#ifndef TORPOR_PLUGINS_WS_IO_H
#define TORPOR_PLUGINS_WS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <torpor/types.h>

struct ws_config;
struct ws_conn;
struct ws_state;

/* ---- ws_io.c: the calls, plain or TLS ---- */

/*
 * ws_io_begin starts the stream of c, whose fd is set: nothing for a plain
 * one; with tls, a TLS session in the table by descriptor, which takes
 * ws_state.tls_ctx as it is now, and WS_F_TLS.  TORPOR_ENOMEM, TORPOR_ESTATE
 * without TLS configured, TORPOR_ELIMIT for a descriptor past the table.
 * Main loop.
 */
torpor_err ws_io_begin(struct ws_conn *c, bool tls);

/*
 * ws_io_end ends c's stream before its socket is closed: a TLS
 * connection that ended without failing sends close_notify first, if the
 * socket takes it at once, and its session is freed.  c's loop.
 */
void ws_io_end(struct ws_conn *c);

/* ws_io_recv reads at most len bytes, as recv(2). */
ssize_t ws_io_recv(struct ws_conn *c, void *buf, size_t len);

/* ws_io_send writes at most len bytes without blocking, as send(2). */
ssize_t ws_io_send(struct ws_conn *c, const void *buf, size_t len);

/*
 * ws_io_sendv writes the iovecs in order without blocking, as sendmsg(2)
 * would: a short count means the socket took no more.
 */
ssize_t ws_io_sendv(struct ws_conn *c, const struct iovec *iov, size_t niov);

/*
 * ws_io_shutdown ends our direction of the stream (close_notify, then the
 * socket's write side) while the peer may still send.  Returns what
 * shutdown(2) returned.
 */
int ws_io_shutdown(struct ws_conn *c);

/* ws_io_pending: decrypted input is waiting inside TLS; read it now. */
bool ws_io_pending(const struct ws_conn *c);

/*
 * ws_io_write_begun: how many bytes the last send left in a TLS record,
 * which the next send must present again, unchanged, at its start; 0 when
 * none (always, on a plain connection).
 */
size_t ws_io_write_begun(const struct ws_conn *c);

/* ws_io_handshaking: a TLS connection whose TLS handshake is not done. */
bool ws_io_handshaking(const struct ws_conn *c);

/*
 * ws_io_watch turns the TORPOR_IO_* events c's protocol wants into those
 * to watch: TLS may need the other direction first.
 */
unsigned ws_io_watch(const struct ws_conn *c, unsigned want);

/*
 * ws_io_ready turns the events the socket reports into the work to do:
 * writability lets a stalled TLS read go on, readability a stalled write.
 */
unsigned ws_io_ready(const struct ws_conn *c, unsigned events);

/* ---- ws_tls.c: the TLS keys, the context, reload ---- */

/*
 * ws_tls_config_set applies tls_certificate, tls_private_key or
 * tls_min_version; TORPOR_ENOKEY for any other key.  A file is read and
 * checked at once, and once both are known, that they make a pair; a bad
 * one is TORPOR_EINVAL with a reason naming the file and OpenSSL's words
 * in why, and leaves cfg as it was.  Main thread.
 */
torpor_err ws_tls_config_set(struct ws_config *cfg, const char *key,
                             const char *value, char *why, size_t why_size);

/* ws_tls_config_free frees the paths cfg holds. */
void ws_tls_config_free(struct ws_config *cfg);

/*
 * ws_tls_start loads the certificate and key into ws->tls_ctx when some
 * address is in listen_tls; logs and returns TORPOR_EINVAL when that
 * cannot be done.  Main thread, before any listener opens.
 */
torpor_err ws_tls_start(struct ws_state *ws);

/*
 * ws_tls_reload reads the certificate and key again from the same paths
 * and makes them the pair of new connections; existing ones keep theirs.
 * A bad pair is logged and the old one kept (TORPOR_EINVAL).  Main thread.
 */
torpor_err ws_tls_reload(struct ws_state *ws);

/* ws_tls_stop drops the plugin's reference to the context. */
void ws_tls_stop(struct ws_state *ws);

/*
 * ws_tls_table_new makes the table of TLS sessions by descriptor, with a
 * place for every descriptor the process may open (the hard
 * RLIMIT_NOFILE).
 * Only its pages that sessions use are ever touched.  TORPOR_ENOMEM.  Main
 * thread, at start.  ws_tls_table_free frees it, once no loop runs.
 */
torpor_err ws_tls_table_new(struct ws_state *ws);
void ws_tls_table_free(struct ws_state *ws);

/*
 * ---- ws_tls_io.c: one TLS connection ----
 * Each has the contract of the ws_io_ call of the same name, for a record
 * with WS_F_TLS; ws_io.c is their only caller.
 */

torpor_err ws_tls_conn_begin(struct ws_conn *c);
void ws_tls_conn_end(struct ws_conn *c);
ssize_t ws_tls_recv(struct ws_conn *c, void *buf, size_t len);
ssize_t ws_tls_sendv(struct ws_conn *c, const struct iovec *iov, size_t niov);
void ws_tls_shutdown(struct ws_conn *c);
bool ws_tls_pending(const struct ws_conn *c);
size_t ws_tls_write_begun(const struct ws_conn *c);
bool ws_tls_handshaking(const struct ws_conn *c);
unsigned ws_tls_watch(const struct ws_conn *c, unsigned want);
unsigned ws_tls_ready(const struct ws_conn *c, unsigned events);

#endif /* TORPOR_PLUGINS_WS_IO_H */
