/*
 * Unit tests of the WebSocket frame header parser, encoder, unmasking and
 * close code check (plugins/websocket/ws_frame.c).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

/* A value no parse result uses, to prove *close_code was left alone. */
#define UNTOUCHED 0xBEEF

/*
 * frame_test_parse wraps ws_frame_parse_header with allowed_rsv 0 and fails
 * the test if a result other than an error writes *close_code.
 */
static enum ws_parse
frame_test_parse(const uint8_t *buf, size_t len, struct ws_frame_header *h,
                 uint16_t *code)
{
    enum ws_parse r;

    *code = UNTOUCHED;
    r = ws_frame_parse_header(buf, len, 0, h, code);
    if (r != WS_PARSE_ERROR) {
        ck_assert_uint_eq(*code, UNTOUCHED);
    }
    return r;
}

/* frame_test_expect_error asserts that the header is refused with 1002. */
static void
frame_test_expect_error(const uint8_t *buf, size_t len, uint8_t allowed_rsv)
{
    struct ws_frame_header h;
    uint16_t code = UNTOUCHED;

    ck_assert_int_eq(ws_frame_parse_header(buf, len, allowed_rsv, &h, &code),
                     WS_PARSE_ERROR);
    ck_assert_uint_eq(code, 1002);
}

/* A 7-bit length gives a 6-byte header with every field decoded. */
START_TEST(test_frame_parse_7bit_length)
{
    const uint8_t buf[] = { 0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 'x' };
    struct ws_frame_header h;
    uint16_t code;

    ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                     WS_PARSE_OK);
    ck_assert(h.fin);
    ck_assert_uint_eq(h.rsv, 0);
    ck_assert_uint_eq(h.opcode, WS_OP_TEXT);
    ck_assert(h.masked);
    ck_assert_mem_eq(h.mask, buf + 2, 4);
    ck_assert_uint_eq(h.payload_len, 5);
    ck_assert_uint_eq(h.header_len, 6);
}
END_TEST

/* The 16-bit length form is big-endian and gives an 8-byte header. */
START_TEST(test_frame_parse_16bit_length)
{
    const uint8_t buf[] = { 0x02, 0xFE, 0x12, 0x34, 1, 2, 3, 4 };
    struct ws_frame_header h;
    uint16_t code;

    ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                     WS_PARSE_OK);
    ck_assert(!h.fin);
    ck_assert_uint_eq(h.opcode, WS_OP_BINARY);
    ck_assert_uint_eq(h.payload_len, 0x1234);
    ck_assert_uint_eq(h.header_len, 8);
    ck_assert_mem_eq(h.mask, buf + 4, 4);
}
END_TEST

/* The 64-bit length form is big-endian and gives a 14-byte header. */
START_TEST(test_frame_parse_64bit_length)
{
    const uint8_t buf[] = { 0x82, 0xFF, 0x01, 0x23, 0x45, 0x67, 0x89,
                            0xAB, 0xCD, 0xEF, 9,    8,    7,    6 };
    struct ws_frame_header h;
    uint16_t code;

    ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                     WS_PARSE_OK);
    ck_assert_uint_eq(h.payload_len, UINT64_C(0x0123456789ABCDEF));
    ck_assert_uint_eq(h.header_len, 14);
    ck_assert_mem_eq(h.mask, buf + 10, 4);
}
END_TEST

/* Lengths encoded in a longer form than needed are accepted as is. */
START_TEST(test_frame_parse_accepts_nonminimal_lengths)
{
    const uint8_t b16[] = { 0x81, 0xFE, 0x00, 0x05, 1, 2, 3, 4 };
    const uint8_t b64[] = { 0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x05, 1, 2, 3, 4 };
    struct ws_frame_header h;
    uint16_t code;

    ck_assert_int_eq(frame_test_parse(b16, sizeof(b16), &h, &code),
                     WS_PARSE_OK);
    ck_assert_uint_eq(h.payload_len, 5);
    ck_assert_uint_eq(h.header_len, 8);
    ck_assert_int_eq(frame_test_parse(b64, sizeof(b64), &h, &code),
                     WS_PARSE_OK);
    ck_assert_uint_eq(h.payload_len, 5);
    ck_assert_uint_eq(h.header_len, 14);
}
END_TEST

/* Close, ping and pong with fin set and up to 125 bytes are accepted. */
START_TEST(test_frame_parse_control_frames)
{
    const uint8_t ops[] = { WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };

    for (size_t i = 0; i < sizeof(ops); i++) {
        uint8_t buf[] = { (uint8_t)(0x80 | ops[i]), 0x80, 1, 2, 3, 4 };
        struct ws_frame_header h;
        uint16_t code;

        ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                         WS_PARSE_OK);
        ck_assert_uint_eq(h.opcode, ops[i]);
        ck_assert_uint_eq(h.payload_len, 0);
        buf[1] = 0x80 | 125;
        ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                         WS_PARSE_OK);
        ck_assert_uint_eq(h.payload_len, 125);
    }
}
END_TEST

/* Continuation frames and non-final data frames parse like any other. */
START_TEST(test_frame_parse_fragments)
{
    const uint8_t first[] = { 0x01, 0x83, 1, 2, 3, 4 };
    const uint8_t last[] = { 0x80, 0x83, 1, 2, 3, 4 };
    struct ws_frame_header h;
    uint16_t code;

    ck_assert_int_eq(frame_test_parse(first, sizeof(first), &h, &code),
                     WS_PARSE_OK);
    ck_assert(!h.fin);
    ck_assert_uint_eq(h.opcode, WS_OP_TEXT);
    ck_assert_int_eq(frame_test_parse(last, sizeof(last), &h, &code),
                     WS_PARSE_OK);
    ck_assert(h.fin);
    ck_assert_uint_eq(h.opcode, WS_OP_CONT);
}
END_TEST

/* An RSV bit that an extension negotiated is accepted and reported. */
START_TEST(test_frame_parse_allowed_rsv)
{
    const uint8_t buf[] = { 0xC1, 0x80, 1, 2, 3, 4 };
    struct ws_frame_header h;
    uint16_t code = UNTOUCHED;

    ck_assert_int_eq(
        ws_frame_parse_header(buf, sizeof(buf), WS_RSV1, &h, &code),
        WS_PARSE_OK);
    ck_assert_uint_eq(h.rsv, WS_RSV1);
    ck_assert_uint_eq(code, UNTOUCHED);
}
END_TEST

/* Bytes after the header (the payload) do not change the result. */
START_TEST(test_frame_parse_ignores_payload)
{
    uint8_t buf[64];
    struct ws_frame_header h;
    uint16_t code;

    memset(buf, 0xFF, sizeof(buf));
    buf[0] = 0x82;
    buf[1] = 0x80 | 50;
    ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                     WS_PARSE_OK);
    ck_assert_uint_eq(h.payload_len, 50);
    ck_assert_uint_eq(h.header_len, 6);
}
END_TEST

/* frame_test_ref_unmask is the byte-wise definition of RFC 6455 5.3. */
static void
frame_test_ref_unmask(uint8_t *data, size_t len, const uint8_t mask[4],
                      size_t offset)
{
    for (size_t i = 0; i < len; i++) {
        data[i] ^= mask[(offset + i) % 4];
    }
}

/* Unmasking matches the byte-wise reference at every offset, length, alignment.
 */
START_TEST(test_unmask_matches_reference)
{
    const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    uint8_t fast[64];
    uint8_t slow[64];

    for (size_t align = 0; align < 8; align++) {
        for (size_t offset = 0; offset <= 8; offset++) {
            for (size_t len = 0; len <= 40; len++) {
                for (size_t i = 0; i < sizeof(fast); i++) {
                    fast[i] = (uint8_t)(i * 7 + 3);
                }
                memcpy(slow, fast, sizeof(fast));
                ws_unmask(fast + align, len, mask, offset);
                frame_test_ref_unmask(slow + align, len, mask, offset);
                ck_assert_msg(memcmp(fast, slow, sizeof(fast)) == 0,
                              "align %zu offset %zu len %zu", align, offset,
                              len);
            }
        }
    }
}
END_TEST

/* A payload unmasked in two pieces, split anywhere, equals one pass. */
START_TEST(test_unmask_split_equals_whole)
{
    const uint8_t mask[4] = { 0xA1, 0xB2, 0xC3, 0xD4 };
    uint8_t whole[37];
    uint8_t split[37];

    for (size_t cut = 0; cut <= sizeof(whole); cut++) {
        for (size_t i = 0; i < sizeof(whole); i++) {
            whole[i] = (uint8_t)i;
        }
        memcpy(split, whole, sizeof(whole));
        ws_unmask(whole, sizeof(whole), mask, 0);
        ws_unmask(split, cut, mask, 0);
        ws_unmask(split + cut, sizeof(split) - cut, mask, cut);
        ck_assert_msg(memcmp(whole, split, sizeof(whole)) == 0, "cut %zu", cut);
    }
}
END_TEST

/* Masking twice with the same key gives the original bytes back. */
START_TEST(test_unmask_twice_restores)
{
    const uint8_t mask[4] = { 0xFF, 0x00, 0x5A, 0xA5 };
    uint8_t data[] = "Hello, masked world, longer than eight bytes";
    uint8_t orig[sizeof(data)];

    memcpy(orig, data, sizeof(data));
    ws_unmask(data, sizeof(data), mask, 3);
    ck_assert(memcmp(data, orig, sizeof(data)) != 0);
    ws_unmask(data, sizeof(data), mask, 3);
    ck_assert_mem_eq(data, orig, sizeof(data));
}
END_TEST

/* The RFC 6455 5.7 example "Hello" unmasks to the right text. */
START_TEST(test_unmask_rfc_example)
{
    const uint8_t frame[] = { 0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D,
                              0x7F, 0x9F, 0x4D, 0x51, 0x58 };
    struct ws_frame_header h;
    uint16_t code;
    uint8_t payload[5];

    ck_assert_int_eq(frame_test_parse(frame, sizeof(frame), &h, &code),
                     WS_PARSE_OK);
    memcpy(payload, frame + h.header_len, sizeof(payload));
    ws_unmask(payload, sizeof(payload), h.mask, 0);
    ck_assert_mem_eq(payload, "Hello", 5);
}
END_TEST

/* The encoder picks the shortest length form and writes exact bytes. */
START_TEST(test_frame_encode_lengths)
{
    uint8_t out[10];

    ck_assert_uint_eq(ws_frame_header_encode(out, true, 0, WS_OP_TEXT, 0), 2);
    ck_assert_mem_eq(out, "\x81\x00", 2);
    ck_assert_uint_eq(ws_frame_header_encode(out, true, 0, WS_OP_TEXT, 125), 2);
    ck_assert_mem_eq(out, "\x81\x7D", 2);
    ck_assert_uint_eq(ws_frame_header_encode(out, false, 0, WS_OP_BINARY, 126),
                      4);
    ck_assert_mem_eq(out, "\x02\x7E\x00\x7E", 4);
    ck_assert_uint_eq(ws_frame_header_encode(out, true, 0, WS_OP_BINARY, 65535),
                      4);
    ck_assert_mem_eq(out, "\x82\x7E\xFF\xFF", 4);
    ck_assert_uint_eq(ws_frame_header_encode(out, true, 0, WS_OP_BINARY, 65536),
                      10);
    ck_assert_mem_eq(out, "\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    ck_assert_uint_eq(ws_frame_header_encode(out, true, WS_RSV1, WS_OP_TEXT,
                                             UINT64_C(0x7FFFFFFFFFFFFFFF)),
                      10);
    ck_assert_mem_eq(out, "\xC1\x7F\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 10);
}
END_TEST

/* Out-of-range rsv and opcode bits do not leak into other fields. */
START_TEST(test_frame_encode_masks_fields)
{
    uint8_t out[10];

    ck_assert_uint_eq(ws_frame_header_encode(out, false, 0xFF, 0xF9, 1), 2);
    ck_assert_uint_eq(out[0], 0x79);
    ck_assert_uint_eq(out[1], 0x01);
}
END_TEST

/* An encoded header, masked as a client would, parses back to its fields. */
START_TEST(test_frame_encode_parse_round_trip)
{
    const uint64_t lens[] = { 0,
                              1,
                              125,
                              126,
                              127,
                              1000,
                              65535,
                              65536,
                              UINT64_C(1) << 32,
                              UINT64_C(0x7FFFFFFFFFFFFFFF) };
    const uint8_t ops[] = { WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY };
    const uint8_t mask[4] = { 0xDE, 0xAD, 0xBE, 0xEF };

    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        for (size_t o = 0; o < sizeof(ops); o++) {
            for (uint8_t rsv = 0; rsv < 8; rsv++) {
                uint8_t buf[14];
                size_t n;
                struct ws_frame_header h;
                uint16_t code = UNTOUCHED;
                bool fin = (rsv & 1) != 0;

                n = ws_frame_header_encode(buf, fin, rsv, ops[o], lens[l]);
                buf[1] |= 0x80;
                memcpy(buf + n, mask, 4);
                ck_assert_int_eq(
                    ws_frame_parse_header(buf, n + 4, 7, &h, &code),
                    WS_PARSE_OK);
                ck_assert(h.fin == fin);
                ck_assert_uint_eq(h.rsv, rsv);
                ck_assert_uint_eq(h.opcode, ops[o]);
                ck_assert(h.masked);
                ck_assert_mem_eq(h.mask, mask, 4);
                ck_assert_uint_eq(h.payload_len, lens[l]);
                ck_assert_uint_eq(h.header_len, n + 4);
            }
        }
    }
}
END_TEST

/* Close codes are judged right on both sides of every range boundary. */
START_TEST(test_close_code_valid_ranges)
{
    const uint16_t good[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                              1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };
    const uint16_t bad[] = { 0,    1,    999,  1004, 1005, 1006, 1015,
                             1016, 1100, 2000, 2999, 5000, 65535 };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(ws_close_code_valid(good[i]), "code %u",
                      (unsigned)good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!ws_close_code_valid(bad[i]), "code %u",
                      (unsigned)bad[i]);
    }
}
END_TEST

/* Every proper prefix of each length form is MORE, read without overrun. */
START_TEST(test_frame_parse_every_prefix_is_more)
{
    const uint8_t h7[] = { 0x81, 0x85, 1, 2, 3, 4 };
    const uint8_t h16[] = { 0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4 };
    const uint8_t h64[] = { 0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4 };
    const uint8_t *hdrs[] = { h7, h16, h64 };
    const size_t lens[] = { sizeof(h7), sizeof(h16), sizeof(h64) };

    for (size_t k = 0; k < 3; k++) {
        for (size_t n = 0; n <= lens[k]; n++) {
            uint8_t *copy = malloc(n > 0 ? n : 1);
            struct ws_frame_header h;
            uint16_t code;
            enum ws_parse want = n == lens[k] ? WS_PARSE_OK : WS_PARSE_MORE;

            ck_assert_ptr_nonnull(copy);
            memcpy(copy, hdrs[k], n);
            ck_assert_msg(frame_test_parse(copy, n, &h, &code) == want,
                          "form %zu prefix %zu", k, n);
            free(copy);
        }
    }
}
END_TEST

/* The largest legal length, 2^63 - 1, is accepted. */
START_TEST(test_frame_parse_max_length)
{
    const uint8_t buf[] = { 0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF,
                            0xFF, 0xFF, 0xFF, 1,    2,    3,    4 };
    struct ws_frame_header h;
    uint16_t code;

    ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                     WS_PARSE_OK);
    ck_assert_uint_eq(h.payload_len, UINT64_C(0x7FFFFFFFFFFFFFFF));
}
END_TEST

/* Each RSV bit outside allowed_rsv is a protocol error. */
START_TEST(test_frame_parse_rejects_rsv)
{
    const uint8_t rsv1[] = { 0xC1, 0x80, 1, 2, 3, 4 };
    const uint8_t rsv2[] = { 0xA1, 0x80, 1, 2, 3, 4 };
    const uint8_t rsv3[] = { 0x91, 0x80, 1, 2, 3, 4 };

    frame_test_expect_error(rsv1, sizeof(rsv1), 0);
    frame_test_expect_error(rsv2, sizeof(rsv2), 0);
    frame_test_expect_error(rsv3, sizeof(rsv3), 0);
    frame_test_expect_error(rsv2, sizeof(rsv2), WS_RSV1);
    frame_test_expect_error(rsv3, sizeof(rsv3), WS_RSV1);
}
END_TEST

/* Opcodes 3-7 and 0xB-0xF are reserved and refused. */
START_TEST(test_frame_parse_rejects_reserved_opcodes)
{
    for (uint8_t op = 0; op < 16; op++) {
        const uint8_t buf[] = { (uint8_t)(0x80 | op), 0x80, 1, 2, 3, 4 };
        bool reserved = (op >= 3 && op <= 7) || op >= 0x0B;
        struct ws_frame_header h;
        uint16_t code;

        if (reserved) {
            frame_test_expect_error(buf, sizeof(buf), 0);
        } else {
            ck_assert_int_eq(frame_test_parse(buf, sizeof(buf), &h, &code),
                             WS_PARSE_OK);
        }
    }
}
END_TEST

/* A control frame without fin is refused. */
START_TEST(test_frame_parse_rejects_fragmented_control)
{
    const uint8_t close[] = { 0x08, 0x80, 1, 2, 3, 4 };
    const uint8_t ping[] = { 0x09, 0x80, 1, 2, 3, 4 };
    const uint8_t pong[] = { 0x0A, 0x80, 1, 2, 3, 4 };

    frame_test_expect_error(close, sizeof(close), 0);
    frame_test_expect_error(ping, sizeof(ping), 0);
    frame_test_expect_error(pong, sizeof(pong), 0);
}
END_TEST

/* A control frame over 125 bytes is refused in every length form. */
START_TEST(test_frame_parse_rejects_oversized_control)
{
    const uint8_t l126[] = { 0x89, 0xFE, 0x00, 0x7E, 1, 2, 3, 4 };
    const uint8_t l16_small[] = { 0x89, 0xFE, 0x00, 0x05, 1, 2, 3, 4 };
    const uint8_t l64[] = { 0x88, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x7E, 1, 2, 3, 4 };

    frame_test_expect_error(l126, sizeof(l126), 0);
    /* The extended forms can carry no control frame, whatever the value. */
    frame_test_expect_error(l16_small, sizeof(l16_small), 0);
    frame_test_expect_error(l64, sizeof(l64), 0);
}
END_TEST

/* A frame from a client without a mask is refused. */
START_TEST(test_frame_parse_rejects_unmasked)
{
    const uint8_t text[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    const uint8_t ping[] = { 0x89, 0x00 };

    frame_test_expect_error(text, sizeof(text), 0);
    frame_test_expect_error(ping, sizeof(ping), 0);
}
END_TEST

/* A 64-bit length with its top bit set is refused. */
START_TEST(test_frame_parse_rejects_64bit_msb)
{
    const uint8_t buf[] = { 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };

    frame_test_expect_error(buf, sizeof(buf), 0);
}
END_TEST

/* Errors are reported from the first byte that proves them. */
START_TEST(test_frame_parse_errors_early)
{
    const uint8_t rsv[] = { 0xF1 };
    const uint8_t op[] = { 0x83 };
    const uint8_t ctl[] = { 0x09 };
    const uint8_t unmasked[] = { 0x81, 0x7E };
    const uint8_t msb[] = { 0x82, 0xFF, 0x80 };

    frame_test_expect_error(rsv, sizeof(rsv), 0);
    frame_test_expect_error(op, sizeof(op), 0);
    frame_test_expect_error(ctl, sizeof(ctl), 0);
    frame_test_expect_error(unmasked, sizeof(unmasked), 0);
    frame_test_expect_error(msb, sizeof(msb), 0);
}
END_TEST

static Suite *
ws_frame_suite(void)
{
    Suite *s = suite_create("ws_frame");
    TCase *core = tcase_create("core");
    TCase *limits = tcase_create("limits");
    TCase *errors = tcase_create("errors");

    tcase_add_test(core, test_frame_parse_7bit_length);
    tcase_add_test(core, test_frame_parse_16bit_length);
    tcase_add_test(core, test_frame_parse_64bit_length);
    tcase_add_test(core, test_frame_parse_accepts_nonminimal_lengths);
    tcase_add_test(core, test_frame_parse_control_frames);
    tcase_add_test(core, test_frame_parse_fragments);
    tcase_add_test(core, test_frame_parse_allowed_rsv);
    tcase_add_test(core, test_frame_parse_ignores_payload);
    tcase_add_test(core, test_unmask_matches_reference);
    tcase_add_test(core, test_unmask_split_equals_whole);
    tcase_add_test(core, test_unmask_twice_restores);
    tcase_add_test(core, test_unmask_rfc_example);
    tcase_add_test(core, test_frame_encode_lengths);
    tcase_add_test(core, test_frame_encode_masks_fields);
    tcase_add_test(core, test_frame_encode_parse_round_trip);
    tcase_add_test(core, test_close_code_valid_ranges);
    suite_add_tcase(s, core);

    tcase_add_test(limits, test_frame_parse_every_prefix_is_more);
    tcase_add_test(limits, test_frame_parse_max_length);
    suite_add_tcase(s, limits);

    tcase_add_test(errors, test_frame_parse_rejects_rsv);
    tcase_add_test(errors, test_frame_parse_rejects_reserved_opcodes);
    tcase_add_test(errors, test_frame_parse_rejects_fragmented_control);
    tcase_add_test(errors, test_frame_parse_rejects_oversized_control);
    tcase_add_test(errors, test_frame_parse_rejects_unmasked);
    tcase_add_test(errors, test_frame_parse_rejects_64bit_msb);
    tcase_add_test(errors, test_frame_parse_errors_early);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_frame_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
