/*
 * permessage-deflate (RFC 7692) for the websocket transport: its settings,
 * the negotiation in the opening handshake, and the zlib streams that
 * compress and decompress messages.
 *
 * Memory is the point of the design.  By default the server answers every
 * offer with server_no_context_takeover and client_no_context_takeover, so
 * each message is compressed and decompressed on its own: one set of zlib
 * streams per thread (per event loop), reset per message, serves every
 * connection of that loop, and a connection holds no zlib state at all,
 * only the two bytes of what it negotiated.  With compression_context_
 * takeover = yes a connection that asks for context takeover gets zlib
 * streams of its own, made on first use and freed at close; see
 * ws_deflate.c for what they cost.
 *
 * zlib does the DEFLATE; the framing around it (RSV1, the 0x00 0x00 0xff
 * 0xff tail, the size limits) is ours.
 */
#ifndef TORPOR_PLUGINS_WS_DEFLATE_H
#define TORPOR_PLUGINS_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <torpor/torpor.h>

#include "ws_inflate.h"

/*
 * Window sizes (log2 of bytes) the server compresses with.  zlib makes no
 * raw DEFLATE stream with a 256-byte window, so an offer that limits the
 * server to 8 bits is declined.  The client may use 8 to 15.
 */
#define WS_DEFLATE_SERVER_BITS_MIN 9
#define WS_DEFLATE_CLIENT_BITS_MIN 8
#define WS_DEFLATE_BITS_MAX 15

/* Longest Sec-WebSocket-Extensions value the negotiation answers with. */
#define WS_DEFLATE_RESPONSE_MAX 160

/*
 * The compression settings of [transport.websocket]; every key is
 * described in ws_deflate_config.c.  Kept in one struct so a route can
 * carry its own copy.
 */
struct ws_deflate_config {
    bool enabled;            /* compression */
    bool context_takeover;   /* compression_context_takeover */
    uint8_t level;           /* compression_level, 1..9 */
    uint8_t max_window_bits; /* compression_max_window_bits, 9..15 */
    size_t threshold_bytes;  /* compression_threshold */
};

/* What one connection agreed to in its handshake. */
struct ws_deflate_params {
    bool server_takeover;       /* our compressor keeps its window */
    bool client_takeover;       /* the client's compressor keeps its window */
    uint8_t server_window_bits; /* window we compress with, 9..15 */
    uint8_t client_window_bits; /* most the client compresses with, 8..15 */
};

/* A connection's negotiated state, in ws_conn.deflate. */
enum {
    WS_DEFLATE_ON = 1,              /* permessage-deflate was agreed */
    WS_DEFLATE_SERVER_TAKEOVER = 2, /* ws_deflate_params.server_takeover */
    WS_DEFLATE_CLIENT_TAKEOVER = 4  /* ws_deflate_params.client_takeover */
};

/* ---- ws_deflate_config.c ---- */

/* ws_deflate_config_defaults fills cfg with every key's default. */
void ws_deflate_config_defaults(struct ws_deflate_config *cfg);

/*
 * ws_deflate_config_set applies one compression key.  Returns TORPOR_ENOKEY
 * for a key that is not one of them, TORPOR_EINVAL with a reason in why
 * for a bad value (cfg then keeps its previous value).  Main thread.
 */
torpor_err ws_deflate_config_set(struct ws_deflate_config *cfg, const char *key,
                                 const char *value, char *why, size_t why_size);

/*
 * ws_deflate_config_copy_key copies the member that key sets from src to
 * dst; nothing for a key that is not a compression key.
 */
void ws_deflate_config_copy_key(struct ws_deflate_config *dst,
                                const struct ws_deflate_config *src,
                                const char *key);

/* ---- ws_deflate_negotiate.c ---- */

/* One Sec-WebSocket-Extensions header line's value. */
struct ws_deflate_line {
    const char *text;
    size_t len;
};

enum ws_deflate_result {
    WS_DEFLATE_ACCEPTED = 0, /* *params and response are set */
    WS_DEFLATE_NONE = 1,     /* no offer we take: answer without it */
    WS_DEFLATE_MALFORMED = 2 /* the header breaks RFC 6455 9.1: 400 */
};

/*
 * ws_deflate_negotiate reads the Sec-WebSocket-Extensions lines of a
 * request, in order, as one list (RFC 7230 3.2.2), and picks the first
 * permessage-deflate offer that cfg lets it accept.
 *
 * The whole list is checked against the grammar of RFC 6455 9.1 (tokens,
 * parameters with or without a token or quoted-string value, optional
 * whitespace around separators, empty list elements tolerated); anything
 * else is WS_DEFLATE_MALFORMED, whatever cfg says.  Other extensions are
 * skipped.  An offer is declined, as RFC 7692 5 requires, for an unknown
 * parameter, a repeated one, or a bad value; also for server_max_window_bits
 * = 8, which zlib cannot honour.
 *
 * On WS_DEFLATE_ACCEPTED, *params holds what was agreed and response (of
 * WS_DEFLATE_RESPONSE_MAX bytes) the NUL-terminated value to send back.
 * Pure: no allocation, any thread.
 */
enum ws_deflate_result
ws_deflate_negotiate(const struct ws_deflate_config *cfg,
                     const struct ws_deflate_line *lines, size_t n_lines,
                     struct ws_deflate_params *params,
                     char response[WS_DEFLATE_RESPONSE_MAX]);

/* ---- ws_deflate.c ---- */

struct ws_state;
struct ws_conn;
struct ws_busy;

/*
 * ws_deflate_config_for gives the compression settings of the route c
 * came by; c->route must be set.  Every lookup goes through here.
 */
const struct ws_deflate_config *ws_deflate_config_for(const struct ws_conn *c);

/*
 * ws_deflate_start makes the registry of per-thread zlib streams of ws.
 * TORPOR_ENOMEM if it cannot.  Main thread, at create.
 */
torpor_err ws_deflate_start(struct ws_state *ws);

/*
 * ws_deflate_stop frees every thread's streams.  Only once no loop runs
 * and no connection is left.
 */
void ws_deflate_stop(struct ws_state *ws);

/* ws_deflate_conn_set records what c negotiated in its two bytes. */
void ws_deflate_conn_set(struct ws_conn *c, const struct ws_deflate_params *p);

/* ws_deflate_conn_params reads back what ws_deflate_conn_set recorded. */
void ws_deflate_conn_params(const struct ws_conn *c,
                            struct ws_deflate_params *p);

/*
 * ws_deflate_inflate decompresses the payload of one whole message from c,
 * appending the 0x00 0x00 0xff 0xff that RFC 7692 7.2.2 strips.  Output over
 * limit bytes stops decompression at once.  Returns TORPOR_OK with *out
 * set (valid until the next call on this thread; release it with
 * ws_deflate_inflated_free), TORPOR_ELIMIT past limit, TORPOR_EINVAL for
 * data that is not DEFLATE, TORPOR_ENOMEM.  c's loop.
 */
torpor_err ws_deflate_inflate(struct ws_conn *c, const uint8_t *in, size_t len,
                              size_t limit, struct ws_inflated *out);

/* ws_deflate_inflated_free frees what ws_deflate_inflate allocated. */
void ws_deflate_inflated_free(struct ws_inflated *out);

/*
 * ws_deflate_wire picks the bytes to write to c for frame: frame itself, or
 * its compressed variant for c's window, made at most once per window size
 * and then shared by every connection that uses it.  A connection whose
 * server context carries over gets a frame compressed with its own
 * stream.  Returns a reference the caller releases, or NULL (out of
 * memory) only when c's own stream is left unusable, after which c must
 * be failed.  c's loop.
 */
torpor_frame *ws_deflate_wire(struct ws_conn *c, torpor_frame *frame);

/* ws_deflate_frame_free drops the compressed variants of a freed frame. */
void ws_deflate_frame_free(torpor_frame *frame);

/*
 * ws_deflate_busy_free frees a connection's own zlib streams, which live
 * in its in-progress record while context takeover is agreed.
 */
void ws_deflate_busy_free(struct ws_busy *b);

#endif /* TORPOR_PLUGINS_WS_DEFLATE_H */
