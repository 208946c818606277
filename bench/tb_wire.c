#include "build-config.h"

#include "tb_wire.h"

#include <string.h>

static const char tb_hex_digit[] = "0123456789abcdef";

static void
tb_put_hex(char *out, uint64_t v, unsigned digits)
{
    for (unsigned i = digits; i-- > 0;) {
        out[i] = tb_hex_digit[v & 0xf];
        v >>= 4;
    }
}

static bool
tb_get_hex(const uint8_t *p, unsigned digits, uint64_t *v)
{
    uint64_t x = 0;

    for (unsigned i = 0; i < digits; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return false;
        }
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

/* tb_wire_head writes a client frame's header; returns its length. */
static size_t
tb_wire_head(uint8_t *out, int opcode, size_t len, uint32_t mask)
{
    size_t h = 0;

    out[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    }
    memcpy(out + h, &mask, 4);
    return h + 4;
}

static void
tb_wire_mask(uint8_t *p, size_t len, const uint8_t *key)
{
    for (size_t i = 0; i < len; i++) {
        p[i] ^= key[i & 3];
    }
}

size_t
tb_wire_frame(uint8_t *out, int opcode, const void *data, size_t len,
              uint32_t mask)
{
    size_t h = tb_wire_head(out, opcode, len, mask);

    memcpy(out + h, data, len);
    tb_wire_mask(out + h, len, out + h - 4);
    return h + len;
}

size_t
tb_wire_message(uint8_t *out, enum tb_proto proto, unsigned size, uint64_t seq,
                uint64_t sent_ns, uint32_t room, uint32_t mask)
{
    size_t len = proto == TB_SIO ? size + TB_SIO_WRAP_BYTES : size;
    size_t h = tb_wire_head(out, TB_OP_TEXT, len, mask);
    char *p = (char *)out + h;

    if (proto == TB_SIO) {
        memcpy(p, TB_SIO_MSG_HEAD, sizeof(TB_SIO_MSG_HEAD) - 1);
        p += sizeof(TB_SIO_MSG_HEAD) - 1;
    }
    tb_put_hex(p, seq, 16);
    tb_put_hex(p + 16, sent_ns, 16);
    tb_put_hex(p + 32, room, 8);
    memset(p + 40, 'x', size - 40);
    if (proto == TB_SIO) {
        memcpy(p + size, TB_SIO_MSG_TAIL, sizeof(TB_SIO_MSG_TAIL) - 1);
    }
    tb_wire_mask(out + h, len, out + h - 4);
    return h + len;
}

bool
tb_wire_parse_payload(const uint8_t *p, size_t len, unsigned size,
                      uint64_t *seq, uint64_t *sent_ns, uint32_t *room)
{
    uint64_t r;

    if (len != size || !tb_get_hex(p, 16, seq)
        || !tb_get_hex(p + 16, 16, sent_ns) || !tb_get_hex(p + 32, 8, &r)) {
        return false;
    }
    *room = (uint32_t)r;
    return true;
}

enum tb_frame_status
tb_wire_next(const uint8_t *p, size_t len, struct tb_frame *f)
{
    if (len < 2) {
        return TB_FRAME_PARTIAL;
    }
    if ((p[0] & 0xf0) != 0x80 || (p[1] & 0x80) != 0) {
        return TB_FRAME_BAD;
    }
    size_t h = 2;
    uint64_t n = p[1] & 0x7f;
    if (n == 126) {
        h = 4;
        if (len < h) {
            return TB_FRAME_PARTIAL;
        }
        n = (uint64_t)p[2] << 8 | p[3];
    } else if (n == 127) {
        h = 10;
        if (len < h) {
            return TB_FRAME_PARTIAL;
        }
        n = 0;
        for (size_t i = 2; i < h; i++) {
            n = n << 8 | p[i];
        }
    }
    if (n > len - h) {
        /* Tell a frame that cannot fit any buffer from one not yet read. */
        return n > SIZE_MAX / 2 ? TB_FRAME_BAD : TB_FRAME_PARTIAL;
    }
    f->opcode = p[0] & 0x0f;
    f->data = p + h;
    f->len = (size_t)n;
    f->total = h + (size_t)n;
    return TB_FRAME_OK;
}
