/*
 * The websocket transport's internal types, shared by its files.
 *
 * Threads: listeners, the accept pause timer and connections in their
 * handshake live on the host's main loop.  Once the core attaches a
 * connection it moves to its object's loop and from then on only that
 * loop touches it.  What several loops share: the per-address counts
 * (under their table's lock), the TLS sessions by descriptor (each entry
 * touched by the loop of its connection), the keepalive sweeps' list
 * (pushed to atomically) and the counters (atomic).  Per-route options
 * are fixed once the plugin has started, and read from any loop.
 *
 * Memory: an idle open connection is one struct ws_conn of 24 bytes, kept
 * by the core beside its own record (transport ops conn_bytes), and
 * nothing else: no pointer to the plugin's state (there is one, ws_of),
 * to its loop (the core's store knows it, ws_loop) or to the core's
 * handle (it follows the record, ws_core).  A TLS connection has its
 * session besides, in a table by descriptor (ws_tls_io.c) that exists
 * only when listen_tls is set.  Everything that exists only while work is
 * in progress (the handshake bytes, a frame or message that spans reads,
 * unsent output, a deadline) lives in a struct ws_busy that is freed as
 * soon as the work is done.  During its handshake a connection is a
 * struct ws_hs_conn of the plugin's own, listed so that stop and destroy
 * find it; attaching copies its ws_conn into the core.
 */
#ifndef TORPOR_PLUGINS_WS_H
#define TORPOR_PLUGINS_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <torpor/torpor.h>

#include "ws_deflate.h"
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

/*
 * Routes that may have options of their own; ws_conn.route holds the
 * index in 8 bits, 0 being the defaults.
 */
#define WS_ROUTES_MAX 255

/*
 * The unit of ws_conn.seen_tick.  24 bits of it wrap after 19 days; the
 * keepalive compares stamps modulo 2^24 and never waits that long.
 */
#define WS_TICK_MS 100
#define WS_TICK_BITS 24

struct ws_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/*
 * The keys of [transport.websocket] that apply to the whole transport; see
 * ws_config.c for each.  Keys that may differ by route are in struct
 * ws_route_opts.
 */
struct ws_config {
    struct ws_addr listen[WS_LISTEN_MAX];
    size_t n_listen;
    struct ws_addr listen_tls[WS_LISTEN_MAX];
    size_t n_listen_tls;
    char *tls_certificate; /* paths; NULL until set (ws_tls.c) */
    char *tls_private_key;
    int tls_min_version; /* OpenSSL's version number; 0: TLS 1.2 */
    size_t max_handshake_bytes;
    uint64_t handshake_timeout_ms;
    uint64_t close_timeout_ms;
    uint32_t max_connections_per_address; /* 0: no limit */
    uint32_t max_upgrades_per_second_per_address; /* 0: no limit */
    uint32_t max_handshakes;                      /* 0: no limit */
};

/* A list of words from the config, each a NUL-terminated copy. */
struct ws_names {
    char **items;
    uint32_t n;
    bool any; /* "*": every value matches, items is empty */
};

/*
 * The options of one route, or the defaults every route starts from; see
 * ws_route.c for each key.  Complete once the plugin has started: a route
 * holds its own value or a copy of the default for every member, so code
 * that reads one never falls back by itself.
 *
 * A new per-route setting is a member here and a row in ws_route_keys
 * (ws_route.c), which gives its key, kind and range; parsing, inheriting
 * from the defaults and freeing follow from the row.
 */
struct ws_route_opts {
    char *name;    /* the route, e.g. "chat"; NULL for the defaults */
    uint8_t index; /* place in ws_state.routes, kept in ws_conn.route */
    uint64_t set;  /* bit i: row i of ws_route_keys was given for it */

    size_t max_message_bytes;
    size_t max_output_bytes;
    uint64_t ping_interval_ms; /* 0: no keepalive */
    uint64_t pong_timeout_ms;
    struct ws_names subprotocols; /* in the server's order of preference */
    bool subprotocol_required;
    struct ws_names allowed_origins; /* lowercase; any by default */
    bool origin_required;
    struct ws_deflate_config deflate; /* the compression_* keys */
};

/*
 * What the plugin counts over its life, with __atomic builtins from any
 * loop, and logs in one line when it is destroyed.
 */
struct ws_counters {
    uint64_t keepalive_drops;     /* no answer to a ping in time */
    uint64_t slow_consumers;      /* closed over max_output_bytes */
    uint64_t handshake_timeouts;  /* no complete request in time */
    uint64_t refused_connections; /* over max_connections_per_address */
    uint64_t refused_rate;        /* over the upgrade rate of an address */
    uint64_t refused_origin;      /* Origin not allowed or missing */
    uint64_t refused_subprotocol; /* no subprotocol in common */
    uint64_t handshakes_evicted;  /* the oldest, over max_handshakes */
};

#define WS_COUNT(ws, counter)                                                  \
    ((void)__atomic_add_fetch(&(ws)->counters.counter, 1, __ATOMIC_RELAXED))

struct ws_conn;

/*
 * One loop's keepalive sweep, which walks the connections the core keeps
 * for the plugin on that loop (host->conn_walk).  Made by the loop's
 * first connection on that loop and only ever touched there; freed at
 * destroy.
 */
struct ws_sweep {
    struct ws_sweep *next; /* in ws_state.sweeps */
    struct ws_state *ws;
    torpor_loop *loop;
    torpor_timer *timer;
    uint64_t cursor; /* where the walk goes on */
};

struct ws_tls_conn;

struct ws_peer_table;

struct ws_cork;

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
     * Connections in their handshake, newest first, so that stop and
     * destroy find them and max_handshakes evicts the oldest; main loop
     * only.  Attached ones are the core's to find.
     */
    struct ws_hs_conn *handshakes;
    struct ws_hs_conn *handshakes_oldest;
    uint32_t n_handshakes;

    /* Options by route; routes[0] are the defaults.  Fixed after start. */
    struct ws_route_opts *routes[WS_ROUTES_MAX + 1];
    uint32_t n_routes;

    /* Per-address counts, with their own lock; NULL when no limit is set. */
    struct ws_peer_table *peers;

    /* TLS sessions by descriptor; NULL unless listen_tls is set. */
    struct ws_tls_conn *tls_conns;
    size_t n_tls_conns;

    /*
     * Keepalive: ticks count from epoch_ms; sweep_ms is the pass period.
     * sweeps lists one sweep per loop that has had a connection, pushed
     * with __atomic by that loop and freed at destroy.
     */
    uint64_t epoch_ms;
    uint64_t sweep_ms; /* 0: no route pings */
    bool sweep_off;    /* __atomic; set at stop */
    struct ws_sweep *sweeps;

    bool started;
    struct ws_counters counters;

    /*
     * One cork per loop that has sent a frame, pushed with __atomic by
     * that loop and freed at destroy; see ws_cork.c.
     */
    struct ws_cork *corks;

    /* Each thread's shared zlib streams; see ws_deflate.c. */
    struct ws_deflate_threads *zthreads;

    /* Rate limit of per-peer warnings; __atomic, any loop. */
    uint64_t warn_window_ms;
    uint32_t warn_count;
};

/*
 * A message encoded once and shared by every connection it is sent to.
 * The header and payload sit in one allocation, header first.  refs is
 * changed with __atomic builtins because a broadcast may release it on
 * another loop than the one that encoded it.
 *
 * A message frame also carries its permessage-deflate variants, made on
 * first need, one per window size and compression level, each a frame
 * with references of its own (ws_deflate.c); a connection picks the one
 * of its window and its route's level.
 */
struct torpor_frame {
    uint32_t refs;
    uint8_t opcode;         /* WS_OP_TEXT or WS_OP_BINARY; 0: raw bytes */
    uint8_t header_len;     /* bytes of data before the payload */
    uint8_t window_bits;    /* a variant: the window it was compressed with */
    bool plain_wins;        /* a variant: no smaller, so the plain frame goes */
    uint8_t level;          /* a variant: the zlib level it was made at */
    torpor_frame *variants; /* a message: its variants, __atomic */
    torpor_frame *next_variant; /* a variant: the next in that list */
    size_t len;                 /* bytes in data */
    uint8_t data[];
};

enum ws_conn_state {
    WS_ST_HANDSHAKE = 0, /* reading the upgrade request, main loop */
    WS_ST_REFUSED,       /* answered with an HTTP error; draining input */
    WS_ST_MOVING,        /* attached; posted to the object's loop */
    WS_ST_OPEN,          /* messages flow both ways */
    WS_ST_CLOSING,       /* our close frame is out; awaiting the peer's */
    WS_ST_FLUSHING,      /* reported closed; writing what is left */
    WS_ST_DEAD           /* to be freed by the callback that runs */
};

enum {
    WS_F_FAILED = 1,      /* the socket failed: drop it with 1006 */
    WS_F_WATCH_READ = 2,  /* the watch currently asks for reads */
    WS_F_WATCH_WRITE = 4, /* the watch currently asks for writes */
    WS_F_DISCARD = 8,     /* framing is lost: drop every input byte */
    WS_F_ARRIVING = 16,   /* on its way to its object's loop, not yet there */
    WS_F_CORE = 32,       /* the core keeps the record: attached */
    WS_F_REPORTED = 64,   /* conn_closed was said: the core is told no more */
    WS_F_PINGED = 128,    /* a keepalive ping is out; seen_tick is its time */
    WS_F_TLS = 256,       /* a TLS session is in ws_state.tls_conns[fd] */
    WS_F_CORKED = 512     /* frames wait in its loop's cork (ws_cork.c) */
};

struct ws_conn;

/* The hand-over of an attached connection to its object's loop. */
struct ws_move {
    torpor_task task;
    struct ws_conn *c;
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
    struct ws_move move;

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

    /* The message being assembled came with RSV1: it is compressed. */
    bool msg_deflated;

    /*
     * The connection's own zlib streams, under context takeover; they
     * keep this record while the connection lives.  Made on first use, on
     * the connection's loop, so after the attach; even so a pointer here,
     * and not in struct ws_conn, is what keeps one owner when the core
     * copies the record: the handshake's copy lets go of busy at once.
     */
    struct ws_deflate_conn *zconn;

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
 * connections, so nothing here is a buffer or a pointer that can be
 * found another way.  Once attached the core keeps it, so every byte here
 * costs every idle connection; its size is rounded up to 8 (see
 * TORPOR_CONN_SPAN): at 23 bytes, one more fits before the next step.
 */
struct ws_conn {
    struct ws_busy *busy; /* NULL while idle */
    int fd;
    uint16_t close_code; /* what our close frame said */
    uint16_t flags;      /* WS_F_* */
    /*
     * The last input, or the keepalive ping, in WS_TICK_MS since
     * epoch_ms of the plugin's state; and the route's index in its
     * routes.  Only c's loop touches them.
     */
    uint32_t seen_tick : WS_TICK_BITS;
    uint32_t route : 32 - WS_TICK_BITS;
    uint8_t state;        /* enum ws_conn_state */
    uint8_t deflate;      /* WS_DEFLATE_*: what the handshake agreed */
    uint8_t deflate_bits; /* server window bits - 8 << 4 | client's - 8 */
};

/* The bytes between a record the core keeps and the core's handle. */
#define WS_CONN_SPAN TORPOR_CONN_SPAN(sizeof(struct ws_conn))

/* A connection in its handshake: the plugin's own, on the main loop. */
struct ws_hs_conn {
    struct ws_conn c; /* first: a ws_conn of a handshake is one of these */
    struct ws_hs_conn *prev;
    struct ws_hs_conn *next;
};

/* The plugin's one state, made by create; there is one per process. */
extern struct ws_state *ws_the_state;

/* ws_of: the plugin's state, for any record. */
static inline struct ws_state *
ws_of(const struct ws_conn *c)
{
    (void)c;
    return ws_the_state;
}

/* ws_handle: the core's handle of a record the core keeps (WS_F_CORE). */
static inline torpor_conn *
ws_handle(const struct ws_conn *c)
{
    return (torpor_conn *)((char *)(uintptr_t)c + WS_CONN_SPAN);
}

/*
 * ws_core: the core's handle while the core may hear of c, from attach
 * until conn_closed; NULL before and after.  Host calls that report on a
 * connection take it.
 */
static inline torpor_conn *
ws_core(const struct ws_conn *c)
{
    return (c->flags & (WS_F_CORE | WS_F_REPORTED)) == WS_F_CORE
               ? ws_handle(c)
               : NULL;
}

/* ws_conn_of: the record of a handle of the core. */
static inline struct ws_conn *
ws_conn_of(torpor_conn *conn)
{
    return (struct ws_conn *)((char *)conn - WS_CONN_SPAN);
}

/*
 * Logging through the host, so lines carry the plugin's name and the
 * connection's ids.  conn may be NULL.
 */
#define WS_LOG(ws, level, conn, ...)                                           \
    ((ws)->host->log((ws)->self, (level), NULL, (conn), __VA_ARGS__))

#define WS_DEBUG_ON(ws) ((ws)->host->log_enabled((ws)->self, TORPOR_LOG_DEBUG))

/* ws_conn_opts: the options of the route c was attached by. */
static inline const struct ws_route_opts *
ws_conn_opts(const struct ws_conn *c)
{
    return ws_of(c)->routes[c->route];
}

/* ws_tick_now: the current time in ticks of ws_conn.seen_tick. */
static inline uint32_t
ws_tick_now(const struct ws_state *ws)
{
    return (uint32_t)((ws->host->now_ms() - ws->epoch_ms) / WS_TICK_MS)
           & ((UINT32_C(1) << WS_TICK_BITS) - 1);
}

/*
 * ws_keepalive_heard notes input from c's peer: a live peer needs no ping
 * for another ping_interval_ms, and a ping it was sent is answered.
 */
static inline void
ws_keepalive_heard(struct ws_conn *c)
{
    c->seen_tick = ws_tick_now(ws_of(c));
    c->flags &= (uint16_t)~WS_F_PINGED;
}

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
static inline const char *
ws_strerror(int err, char *buf, size_t size)
{
    /* The GNU strerror_r, as _GNU_SOURCE selects: it returns the text. */
    return strerror_r(err, buf, size);
}

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

/*
 * ws_config_known tells whether key is one of struct ws_config's, whatever
 * its value.
 */
bool ws_config_known(const char *key);

/* ---- ws_route.c ---- */

/* ws_route_init makes the defaults, routes[0].  Main thread, at create. */
torpor_err ws_route_init(struct ws_state *ws);

/*
 * ws_route_set applies a per-route key: KEY sets the default of every
 * route, route.NAME.KEY route NAME's own.  Returns TORPOR_ENOKEY for a key
 * that is not per-route (and not route.NAME.KEY of a transport-wide key),
 * TORPOR_EINVAL with a reason in why for a bad value, a bad route name or
 * a transport-wide key set per route, TORPOR_ELIMIT past WS_ROUTES_MAX
 * routes.  Main thread, before start.
 */
torpor_err ws_route_set(struct ws_state *ws, const char *key,
                        const char *value, char *why, size_t why_size);

/*
 * ws_route_finish completes every route with the defaults it did not
 * override and checks what only the whole section can tell: settings for
 * a route that routes[0..n_routes), the daemon's, does not name, and a
 * route that requires a subprotocol and lists none.  Each problem goes to
 * report (torpor/plugin.h), with the key at fault; then it returns
 * TORPOR_EINVAL.  TORPOR_ENOMEM.  Main thread, from the configured hook.
 */
torpor_err ws_route_finish(struct ws_state *ws, const char *const *routes,
                           size_t n_routes, torpor_config_report report,
                           void *ctx);

/*
 * ws_route_opts_for returns the options of the route named route, or the
 * defaults for a route that has none of its own.  Never NULL.  Any
 * thread once started: the table no longer changes.
 */
const struct ws_route_opts *ws_route_opts_for(const struct ws_state *ws,
                                              const torpor_bytes *route);

/*
 * ws_route_pick_subprotocol chooses from the client's Sec-WebSocket-Protocol
 * lines, offered[i][0..lens[i]) for i < n, which make one list, the first
 * of the route's subprotocols that the client offered: the server's order
 * decides.  NULL when none matches or the route lists none.
 */
const char *ws_route_pick_subprotocol(const struct ws_route_opts *opts,
                                      const char *const *offered,
                                      const size_t *lens, size_t n);

/*
 * ws_route_origin_allowed tells whether an Origin header value may use the
 * route: "*" allows all, otherwise it must equal an allowed origin,
 * ignoring case.  The absence of Origin is the caller's to judge.
 */
bool ws_route_origin_allowed(const struct ws_route_opts *opts,
                             const char *origin, size_t len);

/* ws_route_free_all frees every route's options. */
void ws_route_free_all(struct ws_state *ws);

/* ---- ws_keepalive.c ---- */

/*
 * ws_keepalive_start works out the sweep period from the routes' settings.
 * Main thread, at start; ws_route_finish has run, from the configured hook.
 */
void ws_keepalive_start(struct ws_state *ws);

/*
 * ws_keepalive_arrive stamps c as just heard from and starts its loop's
 * sweep if that loop has none yet.  On c's loop, once c is open there.
 */
void ws_keepalive_arrive(struct ws_conn *c);

/*
 * ws_keepalive_stop stops every sweep at its next run.  Main thread, at
 * stop.
 */
void ws_keepalive_stop(struct ws_state *ws);

/*
 * ws_keepalive_free closes every sweep's timer and frees the sweeps.
 * Only once no loop runs.
 */
void ws_keepalive_free(struct ws_state *ws);

/* ---- ws_peer.c ---- */

/*
 * ws_peer_start makes the per-address table when a per-address limit is
 * set.  Returns TORPOR_ENOMEM or TORPOR_EIO (no random seed).  Main
 * thread, at start.
 */
torpor_err ws_peer_start(struct ws_state *ws);

/* ws_peer_stop stops the table's timer.  Main thread, at stop. */
void ws_peer_stop(struct ws_state *ws);

/* ws_peer_free frees the table.  Only once no loop runs. */
void ws_peer_free(struct ws_state *ws);

/*
 * ws_peer_admit counts the socket fd just accepted from sa against its
 * address's max_connections_per_address.  Returns false, counting the
 * refusal, if the address has no room (or memory ran out); the caller then
 * closes fd unread.  Main loop; takes lock.
 */
bool ws_peer_admit(struct ws_state *ws, int fd, const struct sockaddr *sa);

/*
 * ws_peer_forget gives back what ws_peer_admit counted for fd, before fd
 * is closed; a no op for a socket it did not count.  Any loop; takes
 * lock.
 */
void ws_peer_forget(struct ws_state *ws, int fd);

/*
 * ws_peer_upgrade charges one upgrade to the address of fd's peer.
 * Returns 0 if it is within max_upgrades_per_second_per_address, else the
 * whole seconds until the next one would be (at least 1).  Main loop;
 * takes lock.
 */
uint32_t ws_peer_upgrade(struct ws_state *ws, int fd);

/* ---- ws_admit.c ---- */

struct ws_hs_request;

/*
 * ws_admit_request applies the route's policy to hs, a complete upgrade
 * request of c: the upgrade rate of its address, then Origin, then the
 * subprotocol.  Returns 0 with *subprotocol set to the one chosen (NULL for
 * none), or the HTTP status to refuse with: 429 with *retry_after_s, 403,
 * or 400.  Counts and logs each refusal.  Main loop.
 */
int ws_admit_request(struct ws_conn *c, const struct ws_route_opts *opts,
                     const struct ws_hs_request *hs, const char **subprotocol,
                     uint32_t *retry_after_s);

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
 * ws_conn_on_ready is every connection's watch callback, arg being the
 * connection; the opening handshake moves the watch to the object's loop.
 */
void ws_conn_on_ready(void *arg, unsigned events);

/* ws_loop: the loop c lives on: main until attached, then its object's. */
torpor_loop *ws_loop(const struct ws_conn *c);

/*
 * ws_conn_settle ends every callback of c: it frees c if it is done, and
 * otherwise trims its in-progress record and updates its watch.
 */
void ws_conn_settle(struct ws_conn *c);

/*
 * ws_conn_read_held reads what TLS has already decrypted: no readiness of
 * the socket will announce it.  Each round takes some of it, or ends c.
 */
void ws_conn_read_held(struct ws_conn *c);

/*
 * ws_conn_hs_forget takes a handshake record off the plugin's list and
 * frees it, and only it: an attached copy owns its socket and busy now.
 * Main loop.
 */
void ws_conn_hs_forget(struct ws_conn *c);

/*
 * ws_conn_op_discard is the transport's conn_discard op: frees what an
 * attached record holds, at teardown, without telling the core.
 */
void ws_conn_op_discard(void *tconn);

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
 * ws_conn_watch asks the watch for what c needs now: reads unless flushing,
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
 * ws_conn_evict_oldest_handshake closes the connection that has been in
 * its handshake longest, over max_handshakes; counts and logs it.  Main
 * loop, outside any callback of that connection.
 */
void ws_conn_evict_oldest_handshake(struct ws_state *ws);

/*
 * ws_conn_destroy_all frees every handshake left, with no call to the
 * host's connection functions; the core hands the attached records left
 * to ws_conn_op_discard before.  Only once no loop runs.
 */
void ws_conn_destroy_all(struct ws_state *ws);

/* ---- ws_upgrade.c ---- */

/*
 * ws_upgrade_read reads the upgrade request and, once it is whole, refuses
 * or attaches c.  Returns false when c is gone: attached, it was copied
 * into the core's record, which went on to its object's loop.  Main loop.
 */
bool ws_upgrade_read(struct ws_conn *c);

/*
 * ws_upgrade_answer writes c's 101, unless it is out already.  On c's
 * object's loop, while c moves there: its arrival answers, and so does
 * the first write or close asked for before it, so that nothing reaches
 * the client ahead of its 101.  A client answered so early may miss a
 * broadcast made before its open; it is one the class wrote to, or closed,
 * before it opened.
 */
void ws_upgrade_answer(struct ws_conn *c);

/*
 * ws_upgrade_drain reads and drops what a refused peer still sends, and
 * marks c dead once the peer hangs up.  Main loop.
 */
void ws_upgrade_drain(struct ws_conn *c);


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

/*
 * ws_frame_alloc makes a raw frame of len bytes with one reference; NULL
 * when memory runs out.
 */
torpor_frame *ws_frame_alloc(size_t len);

/* ws_frame_ref takes one more reference.  Any loop. */
void ws_frame_ref(torpor_frame *frame);

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

/*
 * ws_write_frames writes frames[0..n), the bytes chosen for c, in order,
 * with as few system calls as the socket allows, and queues references to
 * what it does not take, behind what is queued already.  Takes over one
 * reference to each frame.  On c's loop.  Returns TORPOR_ECLOSED, with c
 * marked failed, if the socket failed; TORPOR_ELIMIT, with c closing with
 * 1013, if the queue went over max_output_bytes; TORPOR_ENOMEM, with c
 * marked failed, if the queue could not grow.
 */
torpor_err ws_write_frames(struct ws_conn *c, torpor_frame **frames,
                           size_t n);

/* ws_write_flush writes queued output on writability. */
void ws_write_flush(struct ws_conn *c);

/*
 * ws_write_pending tells whether c has unsent output: queued, or held in
 * its loop's cork until the end of the pass.
 */
bool ws_write_pending(const struct ws_conn *c);

/*
 * ws_write_free releases every queued frame and the queue itself, when a
 * connection is freed.
 */
void ws_write_free(struct ws_busy *b);

/* ---- ws_cork.c ---- */

/*
 * ws_cork_add holds frame, which c has nothing queued before, until the
 * end of this pass of c's loop, where it goes out with whatever else the
 * pass holds for c; takes over one reference.  On c's loop.  Returns
 * TORPOR_ENOMEM, holding nothing, when the cork cannot grow: the caller
 * writes the frame itself then.
 */
torpor_err ws_cork_add(struct ws_conn *c, torpor_frame *frame);

/*
 * ws_cork_release writes what c holds now, before a write that must
 * follow it; nothing if c holds nothing.  On c's loop.
 */
void ws_cork_release(struct ws_conn *c);

/* ws_cork_forget drops what c holds, when c is freed.  On c's loop. */
void ws_cork_forget(struct ws_conn *c);

/* ws_cork_free_all frees every loop's cork, at destroy. */
void ws_cork_free_all(struct ws_state *ws);

#endif /* TORPOR_PLUGINS_WS_H */
