/*
 * WebSocket frame headers: see ws_frame.h.  The parser is written to be
 * called again from the start each time more bytes arrive, which keeps it
 * stateless; a header is at most 14 bytes, so re-reading it costs nothing.
 */
#include "ws_frame.h"

#include <assert.h>
#include <string.h>

/*
 * ws_frame_check_byte0 rejects what the first byte alone proves wrong, so
 * a peer sending garbage is dropped after one byte.
 */
static bool
ws_frame_check_byte0(uint8_t b0, uint8_t allowed_rsv)
{
    uint8_t rsv = (uint8_t)((b0 >> 4) & 7);
    uint8_t opcode = (uint8_t)(b0 & 0x0F);

    if ((rsv & (uint8_t)~allowed_rsv) != 0) {
        return false;
    }
    /* 3-7 are reserved data opcodes, 0xB-0xF reserved control opcodes. */
    if ((opcode >= 3 && opcode <= 7) || opcode >= 0x0B) {
        return false;
    }
    /* Control frames may not be fragmented (RFC 6455 5.5). */
    if (opcode >= WS_OP_CLOSE && (b0 & 0x80) == 0) {
        return false;
    }
    return true;
}

/*
 * ws_frame_check_byte1 rejects unmasked frames and control frames whose
 * 7-bit length is over 125 (126 and 127 announce an extended length, which
 * is over 125 whatever follows).
 */
static bool
ws_frame_check_byte1(uint8_t b0, uint8_t b1)
{
    if ((b1 & 0x80) == 0) {
        return false;
    }
    if ((b0 & 0x0F) >= WS_OP_CLOSE && (b1 & 0x7F) > WS_CONTROL_PAYLOAD_MAX) {
        return false;
    }
    return true;
}

enum ws_parse
ws_frame_parse_header(const uint8_t *buf, size_t len, uint8_t allowed_rsv,
                      struct ws_frame_header *out, uint16_t *close_code)
{
    size_t ext_len;
    size_t need;
    uint64_t payload_len;

    if (len < 1) {
        return WS_PARSE_MORE;
    }
    if (!ws_frame_check_byte0(buf[0], allowed_rsv)) {
        goto protocol_error;
    }
    if (len < 2) {
        return WS_PARSE_MORE;
    }
    if (!ws_frame_check_byte1(buf[0], buf[1])) {
        goto protocol_error;
    }

    payload_len = buf[1] & 0x7F;
    if (payload_len == 126) {
        ext_len = 2;
    } else if (payload_len == 127) {
        ext_len = 8;
        /* The top bit must be 0 (RFC 6455 5.2): fail on its byte. */
        if (len >= 3 && (buf[2] & 0x80) != 0) {
            goto protocol_error;
        }
    } else {
        ext_len = 0;
    }

    need = 2 + ext_len + 4;
    if (len < need) {
        return WS_PARSE_MORE;
    }
    if (ext_len > 0) {
        payload_len = 0;
        for (size_t i = 0; i < ext_len; i++) {
            payload_len = (payload_len << 8) | buf[2 + i];
        }
    }

    out->fin = (buf[0] & 0x80) != 0;
    out->rsv = (uint8_t)((buf[0] >> 4) & 7);
    out->opcode = (uint8_t)(buf[0] & 0x0F);
    out->masked = true;
    memcpy(out->mask, buf + 2 + ext_len, 4);
    out->payload_len = payload_len;
    out->header_len = (uint8_t)need;
    return WS_PARSE_OK;

protocol_error:
    *close_code = WS_CLOSE_PROTOCOL_ERROR;
    return WS_PARSE_ERROR;
}

void
ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4], size_t offset)
{
    uint8_t key[8];
    uint64_t key64;
    size_t i = 0;

    /*
     * Rotate the key so key[0] applies to data[0].  Eight is a multiple of
     * four, so the same rotated key fits every 8-byte step and the tail.
     * memcpy keeps this free of alignment and byte-order assumptions; the
     * compiler turns it into plain loads and stores.
     */
    for (size_t k = 0; k < 8; k++) {
        key[k] = mask[(offset + k) & 3];
    }
    memcpy(&key64, key, sizeof(key64));

    for (; len - i >= 8; i += 8) {
        uint64_t word;

        memcpy(&word, data + i, sizeof(word));
        word ^= key64;
        memcpy(data + i, &word, sizeof(word));
    }
    for (; i < len; i++) {
        data[i] ^= key[i & 7];
    }
}

size_t
ws_frame_header_encode(uint8_t out[WS_FRAME_SERVER_HEADER_MAX], bool fin,
                       uint8_t rsv, uint8_t opcode, uint64_t payload_len)
{
    assert(payload_len >> 63 == 0);

    out[0] = (uint8_t)((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0F));
    if (payload_len <= 125) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (size_t i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    }
    return 10;
}

bool
ws_close_code_valid(uint16_t code)
{
    if (code >= 1000 && code <= 1003) {
        return true;
    }
    /* 1004 is reserved; 1005 and 1006 are for local reporting only. */
    if (code >= 1007 && code <= 1014) {
        return true;
    }
    /* 3000-3999 are registered with IANA, 4000-4999 private use. */
    if (code >= 3000 && code <= 4999) {
        return true;
    }
    return false;
}
