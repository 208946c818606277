/*
 * WebSocket frame headers (RFC 6455 section 5): parsing what clients send,
 * encoding what the server sends, unmasking payloads and checking close
 * codes.  Everything here is pure and allocation-free, so it runs on any
 * loop and in fuzz targets without setup.
 */
#ifndef TORPOR_PLUGINS_WS_FRAME_H
#define TORPOR_PLUGINS_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT 0
#define WS_OP_TEXT 1
#define WS_OP_BINARY 2
#define WS_OP_CLOSE 8
#define WS_OP_PING 9
#define WS_OP_PONG 10

/* The RSV bits as they appear in ws_frame_header.rsv. */
#define WS_RSV1 4
#define WS_RSV2 2
#define WS_RSV3 1

/* Close codes this module reports; the full set is in RFC 6455 7.4.1. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_TOO_BIG 1009

/* Longest header a client may send: 2 + 8 (64-bit length) + 4 (mask). */
#define WS_FRAME_HEADER_MAX 14

/* Longest header the server sends: unmasked, so no mask key. */
#define WS_FRAME_SERVER_HEADER_MAX 10

/* Payload limit of control frames (RFC 6455 5.5). */
#define WS_CONTROL_PAYLOAD_MAX 125

struct ws_frame_header {
    bool fin;
    uint8_t rsv;            /* the three RSV bits, as (byte0 >> 4) & 7 */
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
    uint8_t header_len;     /* 2..14 bytes */
};

enum ws_parse { WS_PARSE_OK = 0, WS_PARSE_MORE = 1, WS_PARSE_ERROR = 2 };

/*
 * ws_frame_parse_header parses a client-to-server frame header at
 * buf[0..len) and never reads past len.  allowed_rsv is the mask of RSV bits
 * that a negotiated extension gives meaning to (0 without extensions,
 * WS_RSV1 for permessage-deflate).
 *
 * Returns WS_PARSE_OK with *out filled (out->header_len bytes belong to the
 * header, the payload follows), WS_PARSE_MORE when buf holds only a prefix
 * of a valid header, or WS_PARSE_ERROR with *close_code set to 1002 when the
 * header breaks the protocol: RSV bits outside allowed_rsv, a reserved
 * opcode, a fragmented or oversized control frame, an unmasked frame, or a
 * 64-bit length with its most significant bit set.  Errors are reported as
 * soon as the offending byte is in buf, even if the header is not complete,
 * so a bad peer is dropped without waiting for more input.  *out is
 * unspecified unless WS_PARSE_OK; *close_code is written only on error.
 * Non-minimal length encodings are accepted.
 */
enum ws_parse ws_frame_parse_header(const uint8_t *buf, size_t len,
                                    uint8_t allowed_rsv,
                                    struct ws_frame_header *out,
                                    uint16_t *close_code);

/*
 * ws_unmask XORs data[0..len) in place with the mask key.  offset is the
 * number of payload bytes of the same frame that preceded data, so a payload
 * that arrives in several reads is unmasked piece by piece with the same
 * result as in one go.  data needs no particular alignment.
 */
void ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4],
               size_t offset);

/*
 * ws_frame_header_encode writes the header of an unmasked server-to-client
 * frame into out, using the shortest length encoding, and returns its length
 * (2, 4 or 10).  Only the low 3 bits of rsv and the low 4 bits of opcode are
 * used.  payload_len must be below 2^63, as RFC 6455 5.2 requires; the
 * caller fragments anything larger.
 */
size_t ws_frame_header_encode(uint8_t out[WS_FRAME_SERVER_HEADER_MAX],
                              bool fin, uint8_t rsv, uint8_t opcode,
                              uint64_t payload_len);

/*
 * ws_close_code_valid tells whether a peer may send code in a close frame:
 * 1000-1003, 1007-1014 and 3000-4999.  Codes reserved for local use only
 * (1005, 1006, 1015), unassigned ones and anything below 1000 or from 5000
 * up are invalid, and the receiver answers them with 1002.  1012-1014 are
 * accepted because browsers accept them and torpor sends 1012 on drain.
 */
bool ws_close_code_valid(uint16_t code);

#endif /* TORPOR_PLUGINS_WS_FRAME_H */
