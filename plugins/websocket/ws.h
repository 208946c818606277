/*
 * The websocket transport's internal types, shared by its files.
 *
 * Threads: listeners, the accept pause timer and connections in their
 * handshake live on the host's main loop.  Once the core attaches a
 * connection it moves to its object's loop and from then on only that
 * loop touches it; the registry of connections is the one structure that
 * several loops share, under ws_state.lock.
 *
 * Memory: an idle open connection is one struct ws_conn and nothing else;
 * a TLS one is the larger struct ws_tls_conn of ws_tls_io.c with its SSL.
 * Everything that exists only while work is in progress (the handshake
 * bytes, a frame or message that spans reads, unsent output, a deadline)
 * lives in a struct ws_busy that is freed as soon as the work is done.
 */
#ifndef TORPOR_PLUGINS_WS_H
#define TORPOR_PLUGINS_WS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <torpor/torpor.h>

#include "ws_frame.h"
#include "ws_io.h"
#include "ws_utf8.h"

#define WS_PLUGIN_NAME "websocket"

/* Bytes read per readiness, on the stack of the loop's thread. */
#define WS_READ_BUF_BYTES 65536

/* Connections accepted per readiness of a listener, so one busy listener
 * cannot starve the rest of the main loop. */
#define WS_ACCEPT_BATCH 64

/* How long accepting pauses when the process runs out of descriptors. */
#define WS_ACCEPT_PAUSE_MS 100

#define WS_LISTEN_BACKLOG 511
#define WS_LISTEN_MAX 16

/* "[ffff:...:255.255.255.255]:65535" and a NUL. */
#define WS_ADDR_STRLEN 56

/*
 * Longest wait for a refused peer to read our HTTP error and hang up.
 * Closing with its request bytes unread would reset the connection and
 * could destroy the answer before the peer reads it.
 */
#define WS_REFUSED_LINGER_MS 2000

/* Frames gathered into one sendmsg() when the output queue drains. */
#define WS_IOV_MAX 64

/* Per-peer WARN lines allowed per second, over the whole plugin. */
#define WS_WARN_PER_SECOND 10

/* Close reason bytes that fit a control frame after the 2-byte code. */
#define WS_CLOSE_REASON_MAX (WS_CONTROL_PAYLOAD_MAX - 2)

struct ws_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* The [transport.websocket] section; see ws_config.c for each key. */
struct ws_config {
    struct ws_addr listen[WS_LISTEN_MAX];
    size_t n_listen;
    struct ws_addr listen_tls[WS_LISTEN_MAX];
    size_t n_listen_tls;
    char *tls_certificate; /* paths; NULL until set (ws_tls.c) */
    char *tls_private_key;
    int tls_min_version; /* OpenSSL's version number; 0: TLS 1.2 */
    size_t max_message_bytes;
    size_t max_handshake_bytes;
    uint64_t handshake_timeout_ms;
    uint64_t close_timeout_ms;
    size_t max_output_bytes;
};

struct ws_state;

struct ws_listener {
    struct ws_state *ws;
    int fd;        /* -1 once closed */
    torpor_io *io; /* NULL while accepting is paused */
    bool tls;      /* from listen_tls */
};

struct ws_state {
    const struct torpor_host *host;
    torpor_plugin_ctx *self;
    struct ws_config cfg;

    /* Main loop only. */
    struct ws_listener listeners[2 * WS_LISTEN_MAX];
    size_t n_listeners;
    struct ssl_ctx_st *tls_ctx; /* new TLS connections' SSL_CTX, or NULL */
    torpor_timer *accept_timer; /* resumes accepting after EMFILE */
    uint64_t accept_warned_ms;  /* last "out of descriptors" line */
    bool stopping;

    /*
     * Every connection, so that stop and destroy find them.  Each
     * connection knows its slot, which makes removal a swap with the last
     * entry; slot is read and written only under lock.
     */
    pthread_mutex_t lock;
    struct ws_conn **conns;
    uint32_t n_conns;
    uint32_t cap_conns;

    /* Rate limit of per-peer warnings; __atomic, any loop. */
    uint64_t warn_window_ms;
    uint32_t warn_count;
};

/*
 * A message encoded once and shared by every connection it is sent to.
 * The header and payload sit in one allocation, header first.  refs is
 * changed with __atomic builtins because a broadcast may release it on
 * another loop than the one that encoded it.
 */
struct torpor_frame {
    uint32_t refs;
    size_t len; /* bytes in data */
    uint8_t data[];
};

enum ws_conn_state {
    WS_ST_HANDSHAKE = 0, /* reading the upgrade request, main loop */
    WS_ST_REFUSED,       /* answered with an HTTP error; draining input */
    WS_ST_MOVING,        /* attached; io reopened on the object's loop */
    WS_ST_OPEN,          /* messages flow both ways */
    WS_ST_CLOSING,       /* our close frame is out; awaiting the peer's */
    WS_ST_FLUSHING,      /* reported closed; writing what is left */
    WS_ST_DEAD           /* to be freed by the callback that runs */
};

enum {
    WS_F_FAILED = 1,      /* the socket failed: drop it with 1006 */
    WS_F_WATCH_READ = 2,  /* the io currently watches reads */
    WS_F_WATCH_WRITE = 4, /* the io currently watches writes */
    WS_F_DISCARD = 8,     /* framing is lost: drop every input byte */
    WS_F_TLS = 16         /* the record is a struct ws_tls_conn (ws_tls_io.c) */
};

/*
 * What a connection holds only while something is in progress.  Input
 * fields belong to the reading side, q_* to the writing side; timer is the
 * handshake or close deadline.
 */
struct ws_busy {
    torpor_timer *timer;

    /* The handshake request, then the bytes pipelined after it. */
    uint8_t *in;
    size_t in_len;
    size_t in_cap;

    /* The 101 response, while the connection moves to its object's loop. */
    char *upgrade_resp;
    size_t upgrade_resp_len;

    /* The data message being assembled across frames or reads. */
    uint8_t *msg;
    size_t msg_len;
    size_t msg_cap;
    uint8_t msg_op; /* WS_OP_TEXT or WS_OP_BINARY; 0: none open */
    struct ws_utf8 utf8;

    /* The frame whose payload is being read. */
    bool in_frame;
    struct ws_frame_header fh;
    uint64_t frame_done; /* payload bytes of fh consumed so far */

    /* A frame header cut by the end of a read. */
    uint8_t hdr_len;
    uint8_t hdr[WS_FRAME_HEADER_MAX];

    /* A control frame's payload, which may also be cut by a read. */
    uint8_t ctl[WS_CONTROL_PAYLOAD_MAX];

    /* Unsent output: a ring of frame references, head partly sent. */
    torpor_frame **q;
    uint32_t q_head;
    uint32_t q_count;
    uint32_t q_cap;
    size_t q_off;   /* bytes of the head frame already sent */
    size_t q_bytes; /* unsent bytes over the whole queue */
};

/*
 * One peer.  Kept small on purpose: a room server holds many idle
 * connections, so nothing here is a buffer.
 */
struct ws_conn {
    struct ws_state *ws;
    torpor_loop *loop; /* main loop, then the object's loop */
    torpor_io *io;
    torpor_conn *conn;    /* the core's handle; NULL before attach and
                               after conn_closed */
    struct ws_busy *busy; /* NULL while idle */
    int fd;
    uint32_t slot;       /* index in ws_state.conns, under its lock */
    uint16_t close_code; /* what our close frame said */
    uint8_t state;       /* enum ws_conn_state */
    uint8_t flags;       /* WS_F_* */
};

/*
 * Logging through the host, so lines carry the plugin's name and the
 * connection's ids.  conn may be NULL.
 */
#define WS_LOG(ws, level, conn, ...)                                           \
    ((ws)->host->log((ws)->self, (level), NULL, (conn), __VA_ARGS__))

#define WS_DEBUG_ON(ws) ((ws)->host->log_enabled((ws)->self, TORPOR_LOG_DEBUG))

/* ---- ws_plugin.c ---- */

/*
 * ws_warn_allowed tells whether one more per-peer WARN line fits this
 * second's budget, so a storm of bad peers cannot flood the log.  Any loop.
 */
bool ws_warn_allowed(struct ws_state *ws);

/*
 * ws_strerror names errno value err in buf, thread-safely, and returns the
 * text to print (which may not be buf).
 */
const char *ws_strerror(int err, char *buf, size_t size);

/* ---- ws_config.c ---- */

/* ws_config_defaults fills cfg with every key's default. */
void ws_config_defaults(struct ws_config *cfg);

/*
 * ws_config_set applies one key of [transport.websocket].  Returns
 * TORPOR_ENOKEY for an unknown key, TORPOR_EINVAL with a reason in why for
 * a bad value (cfg then keeps its previous value).  Main thread.
 */
torpor_err ws_config_set(struct ws_config *cfg, const char *key,
                         const char *value, char *why, size_t why_size);

/* ---- ws_listen.c ---- */

/*
 * ws_listen_start binds, listens on and watches every configured address
 * on the main loop.  Returns TORPOR_EIO, after logging, if one of them
 * fails; the ones opened before are closed again.  Main thread.
 */
torpor_err ws_listen_start(struct ws_state *ws);

/* ws_listen_stop closes every listener and the pause timer.  Main thread. */
void ws_listen_stop(struct ws_state *ws);

/*
 * ws_addr_format writes "IP:PORT" (IPv6 as "[IP]:PORT") for sa into out,
 * which holds WS_ADDR_STRLEN bytes; "?" if the family is unknown.
 */
void ws_addr_format(const struct sockaddr *sa, char out[WS_ADDR_STRLEN]);

/* ---- ws_conn.c ---- */

/*
 * ws_conn_accept takes over a freshly accepted, non-blocking socket and
 * starts its handshake on the main loop, a TLS one first if tls.  On
 * failure the caller still owns fd and closes it; the error is logged
 * here.  Main loop.
 */
torpor_err ws_conn_accept(struct ws_state *ws, int fd, bool tls);

/*
 * ws_conn_on_io is every connection's io callback; the opening handshake
 * reopens the io with it on the object's loop.
 */
void ws_conn_on_io(torpor_io *io, int fd, unsigned events, void *arg);

/* ws_conn_peer writes the peer's "IP:PORT" for logs; "?" if unknown. */
void ws_conn_peer(const struct ws_conn *c, char out[WS_ADDR_STRLEN]);

/*
 * ws_conn_busy returns c's in-progress record, making it if needed, or
 * NULL when memory runs out.
 */
struct ws_busy *ws_conn_busy(struct ws_conn *c);

/*
 * ws_conn_fail marks c as failed and shuts its socket down, so that the
 * next readiness on c's loop drops it with 1006.  Safe anywhere on c's
 * loop, including inside host calls, because it frees nothing.
 */
void ws_conn_fail(struct ws_conn *c);

/*
 * ws_conn_watch asks the io for what c needs now: reads unless flushing,
 * writes while output is queued.
 */
void ws_conn_watch(struct ws_conn *c);

/*
 * ws_conn_start_close sends a close frame with code and reason, stops
 * delivering messages and waits close_timeout_ms for the peer's close
 * frame.  code 1005 sends an empty close frame.  c must be open.
 */
void ws_conn_start_close(struct ws_conn *c, uint16_t code, const char *reason,
                         size_t reason_len);

/*
 * ws_conn_closed ends a close handshake: it reports conn_closed to the
 * core and lets c go once its remaining output is written (bounded by
 * close_timeout_ms).  Called from the read side on c's loop.
 */
void ws_conn_closed(struct ws_conn *c, uint16_t code, const char *reason,
                    size_t reason_len);

/*
 * ws_conn_op_close is the transport's close op: see torpor/transport.h.
 * TORPOR_ECLOSED if c is already closing, TORPOR_ESTATE before attach,
 * TORPOR_EINVAL for a code that may not be sent.
 */
torpor_err ws_conn_op_close(void *tconn, uint16_t code, const char *reason,
                            size_t reason_len);

/*
 * ws_conn_stop_handshakes drops every connection still in its handshake;
 * the core owns the closing of attached ones.  Main thread.
 */
void ws_conn_stop_handshakes(struct ws_state *ws);

/*
 * ws_conn_destroy_all frees every connection left, with no call to the
 * host's connection functions.  Only once no loop runs.
 */
void ws_conn_destroy_all(struct ws_state *ws);

/* ---- ws_upgrade.c ---- */

/*
 * ws_upgrade_read reads the upgrade request and, once it is whole, refuses
 * or attaches c.  Returns false when c has been handed to its object's
 * loop, after which the calling thread must not touch it.  Main loop.
 */
bool ws_upgrade_read(struct ws_conn *c);

/*
 * ws_upgrade_drain reads and drops what a refused peer still sends, and
 * marks c dead once the peer hangs up.  Main loop.
 */
void ws_upgrade_drain(struct ws_conn *c);

/*
 * ws_upgrade_arrive opens an attached c on its object's loop: tells the
 * core, then parses what the client pipelined after its request.
 */
void ws_upgrade_arrive(struct ws_conn *c);

/* ---- ws_read.c ---- */

/*
 * ws_read_ready reads once from c's socket into a stack buffer and feeds
 * it to the frame parser; EOF or an error marks c failed.  c's loop, open
 * or closing.
 */
void ws_read_ready(struct ws_conn *c);

/*
 * ws_read_feed parses data[0..len) as client frames: delivers whole
 * messages, answers control frames and starts the close handshake on a
 * protocol error.  data is unmasked in place, so it must be writable and
 * the caller's until the call returns.  Keeps in c->busy only what spans
 * past len.
 */
void ws_read_feed(struct ws_conn *c, uint8_t *data, size_t len);

/*
 * ws_read_drop_message frees a partly assembled message, once c stops
 * delivering messages.
 */
void ws_read_drop_message(struct ws_busy *b);

/* ---- ws_write.c ---- */

/* The transport ops on frames; see torpor/transport.h. */
torpor_err ws_frame_encode(void *state, torpor_msg_kind kind, const void *data,
                           size_t len, torpor_frame **out);
torpor_err ws_frame_send(void *tconn, torpor_frame *frame);
void ws_frame_release(torpor_frame *frame);

/*
 * ws_write_raw sends bytes that are not a shared frame (the 101 response,
 * a control frame), queueing a copy of what the socket does not take.  Not
 * subject to max_output_bytes.  Returns TORPOR_ECLOSED, with c marked
 * failed, if the socket failed; TORPOR_ENOMEM likewise.
 */
torpor_err ws_write_raw(struct ws_conn *c, const void *data, size_t len);

/*
 * ws_write_control sends a control frame (close, ping, pong) with a payload
 * of at most 125 bytes.  Errors as ws_write_raw; besides, anything but a
 * close frame counts against max_output_bytes, and going over starts the
 * slow-consumer close and returns TORPOR_ELIMIT.
 */
torpor_err ws_write_control(struct ws_conn *c, uint8_t opcode,
                            const void *payload, size_t len);

/* ws_write_flush writes queued output on writability. */
void ws_write_flush(struct ws_conn *c);

/* ws_write_pending tells whether c has unsent output. */
bool ws_write_pending(const struct ws_conn *c);

/*
 * ws_write_free releases every queued frame and the queue itself, when a
 * connection is freed.
 */
void ws_write_free(struct ws_busy *b);

#endif /* TORPOR_PLUGINS_WS_H */
