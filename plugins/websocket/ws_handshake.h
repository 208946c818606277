/*
 * The WebSocket opening handshake (RFC 6455 section 4.2): parsing the
 * client's HTTP/1.1 upgrade request and formatting the server's answer.
 * Nothing here allocates; parsed fields point into the caller's buffer.
 */
#ifndef TORPOR_PLUGINS_WS_HANDSHAKE_H
#define TORPOR_PLUGINS_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

/* Length of a Sec-WebSocket-Accept value, without its NUL. */
#define WS_ACCEPT_LEN 28

/* Longest key ws_accept_key hashes; a valid key is 24 characters. */
#define WS_KEY_MAX_LEN 128

/* Sec-WebSocket-Extensions lines a request may hold; more is a 400. */
#define WS_HS_EXTENSION_LINES_MAX 8

/* Sec-WebSocket-Protocol lines a request may hold; more is a 400. */
#define WS_HS_PROTOCOL_LINES_MAX 8

/*
 * A parsed request.  Every pointer points into the buffer given to
 * ws_handshake_parse and lives as long as it does; a header that was not
 * sent is NULL with length 0.  Values are trimmed of surrounding blanks.
 */
struct ws_hs_request {
    const char *target;         /* request-target as sent: "/relay/x?y=1" */
    size_t target_len;
    const char *key;            /* Sec-WebSocket-Key */
    size_t key_len;
    const char *origin;         /* Origin, first occurrence */
    size_t origin_len;
    const char *protocols;      /* Sec-WebSocket-Protocol, first occurrence */
    size_t protocols_len;
    /*
     * Every Sec-WebSocket-Protocol line, in order: RFC 6455 11.3.4 makes
     * them one list, as if joined by commas.
     */
    const char *protocol_lines[WS_HS_PROTOCOL_LINES_MAX];
    size_t protocol_line_lens[WS_HS_PROTOCOL_LINES_MAX];
    size_t n_protocol_lines;
    const char *extensions;     /* Sec-WebSocket-Extensions, first one */
    size_t extensions_len;
    /* Every Sec-WebSocket-Extensions line, in order: one list split. */
    const char *extension_lines[WS_HS_EXTENSION_LINES_MAX];
    size_t extension_line_lens[WS_HS_EXTENSION_LINES_MAX];
    size_t n_extension_lines;
    const char *host;           /* Host */
    size_t host_len;
};

enum ws_hs { WS_HS_OK = 0, WS_HS_MORE = 1, WS_HS_ERROR = 2 };

/*
 * ws_handshake_parse parses an upgrade request from buf[0..len), which may
 * hold only its beginning; call it again from the start with more bytes
 * after WS_HS_MORE.  Header names are matched case-insensitively, lines may
 * end in CRLF or, leniently, a bare LF, and empty lines before the request
 * line are skipped (RFC 7230 3.5).
 *
 * Returns WS_HS_OK with *req filled and *consumed set to the length of the
 * request up to and including its empty line; bytes after it are not
 * looked at.  Returns WS_HS_MORE when the request is incomplete but valid so
 * far.  Returns WS_HS_ERROR with *http_status set to:
 *   400  malformed request line or header line, missing, repeated or
 *        invalid Host, missing, repeated or invalid Sec-WebSocket-Key (it
 *        must be 24 characters of base64 that decode to 16 bytes), more
 *        than WS_HS_EXTENSION_LINES_MAX Sec-WebSocket-Extensions lines or
 *        WS_HS_PROTOCOL_LINES_MAX Sec-WebSocket-Protocol lines;
 *   405  a method other than GET;
 *   426  no "websocket" token in Upgrade, no "upgrade" token in Connection
 *        (both case-insensitive token lists), or a Sec-WebSocket-Version
 *        that is missing or other than 13;
 *   431  no end of request within the first max_len bytes;
 *   505  an HTTP version below 1.1.
 * A broken request line or header line fails as soon as that line is
 * complete, without waiting for the end of the request.  When several
 * faults are present the request line is judged first (400, 505, then 405),
 * then the header lines, then Host, the upgrade tokens, the version and the
 * key, in that order.  *req and *consumed are written only on WS_HS_OK,
 * *http_status only on WS_HS_ERROR.
 */
enum ws_hs ws_handshake_parse(const char *buf, size_t len, size_t max_len,
                              struct ws_hs_request *req, int *http_status,
                              size_t *consumed);

/*
 * ws_target_split splits a request-target at its first '?' into the path
 * and the query (without the '?').  query is NULL when there is no '?', and
 * an empty string at the end of target when the '?' ends it.  Returns false,
 * leaving the outputs unset, for a target that does not start with '/' or
 * that holds a '#' (RFC 6455 3 forbids fragments).
 */
bool ws_target_split(const char *target, size_t len, const char **path,
                     size_t *path_len, const char **query,
                     size_t *query_len);

/*
 * ws_accept_key writes into out the Sec-WebSocket-Accept value for a key:
 * base64 of the SHA-1 of the key and the RFC 6455 GUID, 28 characters and a
 * NUL.  If the key is longer than WS_KEY_MAX_LEN or libcrypto fails (a
 * provider without SHA-1), out is set to the empty string, which
 * ws_handshake_accept treats as a failure.
 */
void ws_accept_key(const char *key, size_t key_len,
                   char out[WS_ACCEPT_LEN + 1]);

/*
 * ws_handshake_accept formats the 101 Switching Protocols response with
 * Upgrade, Connection and Sec-WebSocket-Accept, plus Sec-WebSocket-Protocol
 * and Sec-WebSocket-Extensions when protocol and extensions are not NULL.
 * Writes a NUL after the response, not counted in the returned length.
 * Returns 0 if out_size cannot hold it all, if the accept key cannot be
 * computed, or if protocol or extensions hold a control character (they
 * would break the response).
 */
size_t ws_handshake_accept(char *out, size_t out_size, const char *key,
                           size_t key_len, const char *protocol,
                           const char *extensions);

/*
 * ws_handshake_reject formats an error response for http_status with
 * "Connection: close", Content-Type text/plain, Content-Length and a body
 * holding the reason phrase.  405 adds "Allow: GET"; 426 adds
 * "Upgrade: websocket" and "Sec-WebSocket-Version: 13", and its Connection
 * line reads "Upgrade, close" because RFC 7230 6.7 requires the "upgrade"
 * option next to an Upgrade header.  Writes a NUL after the response, not
 * counted in the returned length.  Returns 0 if out_size cannot hold it or
 * http_status is not one this module knows (400, 403, 404, 405, 426, 429,
 * 431, 500, 503, 505).
 */
size_t ws_handshake_reject(char *out, size_t out_size, int http_status);

/*
 * ws_handshake_reject_why is ws_handshake_reject with the body's line
 * reading "<reason phrase>: <why>", to tell a client which part of its
 * request was refused.  why must be short printable ASCII; NULL gives the
 * plain answer.
 */
size_t ws_handshake_reject_why(char *out, size_t out_size, int http_status,
                               const char *why);

/*
 * ws_handshake_reject_retry is ws_handshake_reject with a Retry-After
 * header of retry_after_s seconds when that is not 0, for a 429 or 503
 * that the client may try again after.
 */
size_t ws_handshake_reject_retry(char *out, size_t out_size, int http_status,
                                 unsigned retry_after_s);

/* ws_handshake_reject_full: both of the above at once. */
size_t ws_handshake_reject_full(char *out, size_t out_size, int http_status,
                                const char *why, unsigned retry_after_s);

#endif /* TORPOR_PLUGINS_WS_HANDSHAKE_H */
