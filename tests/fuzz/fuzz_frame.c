/*
 * Fuzz target: the frame header parser and unmasking (ws_frame.c).
 *
 * Input: one control byte, then the bytes a client sent.  The control
 * byte's low 3 bits are the RSV bits an extension allows; the rest picks
 * where the payload is cut in two for unmasking.
 *
 * Beyond "no crash", it checks that:
 *   - a parsed header is 6 to 14 bytes, never longer than the input, and
 *     agrees with the bytes it came from (fields, length encoding);
 *   - every strict prefix of a valid header is "more", never an error;
 *   - an error is 1002, and stays an error, with the same code, however
 *     many bytes follow (an error is final, so a bad peer goes at once);
 *   - bytes after the header never change the result;
 *   - encoding the parsed fields as a server header, then masking it as a
 *     client would, parses back to the same fields, and gives the very
 *     same bytes when the client used the shortest length encoding;
 *   - unmasking in two pieces equals unmasking in one, and unmasking twice
 *     restores the input.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz_check.h"
#include "ws_frame.h"

/* The shortest length field for payload_len: 0, 2 or 8 extra bytes. */
static size_t
fuzz_ext_len(uint64_t payload_len)
{
    if (payload_len <= 125) {
        return 0;
    }
    return payload_len <= 0xFFFF ? 2 : 8;
}

static bool
fuzz_same_header(const struct ws_frame_header *a,
                 const struct ws_frame_header *b)
{
    return a->fin == b->fin && a->rsv == b->rsv && a->opcode == b->opcode
           && a->masked == b->masked && memcmp(a->mask, b->mask, 4) == 0
           && a->payload_len == b->payload_len
           && a->header_len == b->header_len;
}

static void
fuzz_check_ok(const uint8_t *buf, size_t len, uint8_t allowed_rsv,
              const struct ws_frame_header *h)
{
    uint8_t seven = buf[1] & 0x7F;
    size_t ext = seven == 126 ? 2 : seven == 127 ? 8 : 0;
    uint8_t enc[WS_FRAME_HEADER_MAX];
    struct ws_frame_header again;
    uint16_t code = 0;
    size_t n;

    FUZZ_CHECK(h->header_len >= 6 && h->header_len <= WS_FRAME_HEADER_MAX,
               "header length within 6..14");
    FUZZ_CHECK(h->header_len <= len, "header never longer than the input");
    FUZZ_CHECK(h->header_len == 2 + ext + 4,
               "header length matches the length encoding");
    FUZZ_CHECK(h->masked && (buf[1] & 0x80) != 0, "only masked frames pass");
    FUZZ_CHECK(h->fin == ((buf[0] & 0x80) != 0), "fin bit");
    FUZZ_CHECK(h->rsv == ((buf[0] >> 4) & 7), "rsv bits");
    FUZZ_CHECK((h->rsv & ~allowed_rsv) == 0, "only allowed rsv bits pass");
    FUZZ_CHECK(h->opcode == (buf[0] & 0x0F), "opcode");
    FUZZ_CHECK(h->opcode <= WS_OP_BINARY
                   || (h->opcode >= WS_OP_CLOSE && h->opcode <= WS_OP_PONG),
               "no reserved opcode passes");
    FUZZ_CHECK(memcmp(h->mask, buf + 2 + ext, 4) == 0, "mask key");
    FUZZ_CHECK(h->payload_len >> 63 == 0, "payload length below 2^63");
    if (h->opcode >= WS_OP_CLOSE) {
        FUZZ_CHECK(h->fin && h->payload_len <= WS_CONTROL_PAYLOAD_MAX,
                   "control frames are whole and at most 125 bytes");
    }
    if (ext == 0) {
        FUZZ_CHECK(h->payload_len == seven, "7-bit length");
    }

    /* Re-encode as the server would, then mask it as a client. */
    n = ws_frame_header_encode(enc, h->fin, h->rsv, h->opcode, h->payload_len);
    FUZZ_CHECK(n == 2 + fuzz_ext_len(h->payload_len),
               "server header uses the shortest length encoding");
    enc[1] |= 0x80;
    memcpy(enc + n, h->mask, 4);
    FUZZ_CHECK(ws_frame_parse_header(enc, n + 4, allowed_rsv, &again, &code)
                   == WS_PARSE_OK,
               "a re-encoded header parses");
    again.header_len = h->header_len;
    FUZZ_CHECK(fuzz_same_header(h, &again),
               "a re-encoded header parses to the same fields");
    if (ext == fuzz_ext_len(h->payload_len)) {
        FUZZ_CHECK(n + 4 == h->header_len
                       && memcmp(enc, buf, h->header_len) == 0,
                   "re-encoding a shortest-form header gives its bytes");
    }
}

/*
 * fuzz_check_unmask cuts the payload at cut and unmasks both pieces with
 * the offset of the second, which must equal unmasking it whole.
 */
static void
fuzz_check_unmask(const uint8_t *payload, size_t len, const uint8_t mask[4],
                  size_t cut)
{
    uint8_t *whole = malloc(len + 1);
    uint8_t *pieces = malloc(len + 1);

    FUZZ_CHECK(whole != NULL && pieces != NULL, "allocation");
    memcpy(whole, payload, len);
    memcpy(pieces, payload, len);
    ws_unmask(whole, len, mask, 0);
    ws_unmask(pieces, cut, mask, 0);
    ws_unmask(pieces + cut, len - cut, mask, cut);
    FUZZ_CHECK(memcmp(whole, pieces, len) == 0,
               "unmasking in two pieces equals unmasking whole");
    for (size_t i = 0; i < len; i++) {
        FUZZ_CHECK(whole[i] == (payload[i] ^ mask[i & 3]),
                   "unmasking XORs with the key, byte by byte");
    }
    ws_unmask(whole, len, mask, 0);
    FUZZ_CHECK(memcmp(whole, payload, len) == 0,
               "unmasking twice restores the payload");
    free(whole);
    free(pieces);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ws_frame_header h;
    struct ws_frame_header again;
    uint16_t code = 0;
    uint16_t code_again = 0;
    uint8_t allowed_rsv;
    const uint8_t *buf;
    size_t len;
    enum ws_parse r;

    if (size < 1) {
        return 0;
    }
    allowed_rsv = data[0] & 7;
    buf = data + 1;
    len = size - 1;

    r = ws_frame_parse_header(buf, len, allowed_rsv, &h, &code);
    FUZZ_CHECK(r == WS_PARSE_OK || r == WS_PARSE_MORE || r == WS_PARSE_ERROR,
               "result is one of the three");

    if (r == WS_PARSE_MORE) {
        FUZZ_CHECK(len < WS_FRAME_HEADER_MAX,
                   "14 bytes always decide a header");
        return 0;
    }

    if (r == WS_PARSE_ERROR) {
        size_t first_bad = 0;

        FUZZ_CHECK(code == WS_CLOSE_PROTOCOL_ERROR, "errors close with 1002");
        /* The shortest failing prefix; every shorter one asks for more. */
        for (size_t p = 0; p <= len; p++) {
            r = ws_frame_parse_header(buf, p, allowed_rsv, &again, &code_again);
            if (r == WS_PARSE_ERROR) {
                first_bad = p;
                break;
            }
            FUZZ_CHECK(r == WS_PARSE_MORE,
                       "no prefix of a bad header is a good header");
        }
        FUZZ_CHECK(first_bad >= 1 && first_bad <= WS_FRAME_HEADER_MAX,
                   "an error shows within 14 bytes");
        for (size_t p = first_bad; p <= len; p++) {
            code_again = 0;
            FUZZ_CHECK(
                ws_frame_parse_header(buf, p, allowed_rsv, &again, &code_again)
                        == WS_PARSE_ERROR
                    && code_again == WS_CLOSE_PROTOCOL_ERROR,
                "an error stays an error as bytes arrive");
        }
        return 0;
    }

    fuzz_check_ok(buf, len, allowed_rsv, &h);
    for (size_t p = 0; p < h.header_len; p++) {
        FUZZ_CHECK(
            ws_frame_parse_header(buf, p, allowed_rsv, &again, &code_again)
                == WS_PARSE_MORE,
            "every strict prefix of a good header asks for more");
    }
    FUZZ_CHECK(ws_frame_parse_header(buf, h.header_len, allowed_rsv, &again,
                                     &code_again)
                       == WS_PARSE_OK
                   && fuzz_same_header(&h, &again),
               "bytes after the header change nothing");

    {
        const uint8_t *payload = buf + h.header_len;
        size_t avail = len - h.header_len;
        size_t cut = avail == 0 ? 0 : (size_t)(data[0] >> 3) % (avail + 1);

        fuzz_check_unmask(payload, avail, h.mask, cut);
    }
    return 0;
}
