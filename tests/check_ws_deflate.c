/*
 * Unit tests of permessage-deflate negotiation and settings
 * (plugins/websocket/ws_deflate_negotiate.c, ws_deflate_config.c), and of
 * the handshake parts it relies on: every Sec-WebSocket-Extensions line
 * collected, and the 400 that names the header.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_deflate.h"
#include "ws_handshake.h"

#define NCT "; server_no_context_takeover; client_no_context_takeover"

static struct ws_deflate_config cfg;
static struct ws_deflate_params params;
static char response[WS_DEFLATE_RESPONSE_MAX];

static void
setup(void)
{
    ws_deflate_config_defaults(&cfg);
    memset(&params, 0xA5, sizeof(params));
    memset(response, 0, sizeof(response));
}

/* neg negotiates the header lines given, NULL-terminated. */
static enum ws_deflate_result
neg_lines(const char *const *text)
{
    struct ws_deflate_line lines[8];
    size_t n = 0;

    for (; text[n] != NULL; n++) {
        lines[n].text = text[n];
        lines[n].len = strlen(text[n]);
    }
    return ws_deflate_negotiate(&cfg, lines, n, &params, response);
}

static enum ws_deflate_result
neg(const char *header)
{
    const char *lines[] = {header, NULL};

    return neg_lines(lines);
}

/* accepts asserts that header is accepted with exactly answer. */
static void
accepts(const char *header, const char *answer)
{
    ck_assert_msg(neg(header) == WS_DEFLATE_ACCEPTED, "not accepted: %s",
                  header);
    ck_assert_str_eq(response, answer);
}

static void
declines(const char *header)
{
    ck_assert_msg(neg(header) == WS_DEFLATE_NONE, "not declined: %s", header);
}

static void
malformed(const char *header)
{
    ck_assert_msg(neg(header) == WS_DEFLATE_MALFORMED, "not malformed: %s",
                  header);
}

/* The plain offer is answered with both no-context-takeover parameters. */
START_TEST(test_negotiate_plain_offer_imposes_no_takeover)
{
    accepts("permessage-deflate", "permessage-deflate" NCT);
    ck_assert(!params.server_takeover);
    ck_assert(!params.client_takeover);
    ck_assert_uint_eq(params.server_window_bits, 15);
    ck_assert_uint_eq(params.client_window_bits, 15);
}
END_TEST

/* Browsers' offer (client_max_window_bits without a value) is taken. */
START_TEST(test_negotiate_browser_offer)
{
    accepts("permessage-deflate; client_max_window_bits",
            "permessage-deflate" NCT);
    accepts("permessage-deflate;client_max_window_bits=15",
            "permessage-deflate" NCT);
    ck_assert_uint_eq(params.client_window_bits, 15);
}
END_TEST

/* Offers that already ask for no takeover get the same answer. */
START_TEST(test_negotiate_offer_asking_no_takeover)
{
    accepts("permessage-deflate; server_no_context_takeover; "
            "client_no_context_takeover",
            "permessage-deflate" NCT);
}
END_TEST

/* server_max_window_bits limits the window we compress with. */
START_TEST(test_negotiate_server_window_bits)
{
    accepts("permessage-deflate; server_max_window_bits=10",
            "permessage-deflate" NCT "; server_max_window_bits=10");
    ck_assert_uint_eq(params.server_window_bits, 10);
    accepts("permessage-deflate; server_max_window_bits=15",
            "permessage-deflate" NCT "; server_max_window_bits=15");
    ck_assert_uint_eq(params.server_window_bits, 15);
    /* Our own limit is announced even when the client set none. */
    cfg.max_window_bits = 11;
    accepts("permessage-deflate",
            "permessage-deflate" NCT "; server_max_window_bits=11");
    ck_assert_uint_eq(params.server_window_bits, 11);
    accepts("permessage-deflate; server_max_window_bits=13",
            "permessage-deflate" NCT "; server_max_window_bits=11");
}
END_TEST

/* 8 bits is valid but zlib cannot keep to it: the offer is declined. */
START_TEST(test_negotiate_server_window_bits_8_declined)
{
    declines("permessage-deflate; server_max_window_bits=8");
    accepts("permessage-deflate; server_max_window_bits=8, "
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate" NCT "; server_max_window_bits=9");
    ck_assert_uint_eq(params.server_window_bits, 9);
}
END_TEST

/* The first acceptable offer of several wins; others are skipped. */
START_TEST(test_negotiate_first_acceptable_offer)
{
    accepts("x-webkit-deflate-frame, permessage-deflate; "
            "server_max_window_bits=12, permessage-deflate",
            "permessage-deflate" NCT "; server_max_window_bits=12");
    accepts("permessage-deflate; foo=1, permessage-deflate",
            "permessage-deflate" NCT);
    ck_assert_uint_eq(params.server_window_bits, 15);
}
END_TEST

/* RFC 7692 5: unknown, repeated or badly valued parameters decline. */
START_TEST(test_negotiate_bad_parameters_decline)
{
    declines("permessage-deflate; foo");
    declines("permessage-deflate; server_no_context_takeover; "
             "server_no_context_takeover");
    declines("permessage-deflate; client_max_window_bits=10; "
             "client_max_window_bits=10");
    declines("permessage-deflate; server_no_context_takeover=1");
    declines("permessage-deflate; client_no_context_takeover=\"x\"");
    declines("permessage-deflate; server_max_window_bits");
    declines("permessage-deflate; server_max_window_bits=7");
    declines("permessage-deflate; server_max_window_bits=16");
    declines("permessage-deflate; server_max_window_bits=010");
    declines("permessage-deflate; client_max_window_bits=0");
    declines("permessage-deflate; client_max_window_bits=1a");
    declines("permessage-deflate; client_max_window_bits=123456789012");
    declines("x-other; server_max_window_bits=10");
}
END_TEST

/* Quoted values count once unescaped; names ignore case. */
START_TEST(test_negotiate_quoted_values_and_case)
{
    accepts("permessage-deflate; server_max_window_bits=\"12\"",
            "permessage-deflate" NCT "; server_max_window_bits=12");
    accepts("permessage-deflate; server_max_window_bits=\"1\\2\"",
            "permessage-deflate" NCT "; server_max_window_bits=12");
    accepts("PerMessage-Deflate; Server_Max_Window_Bits=9",
            "permessage-deflate" NCT "; server_max_window_bits=9");
    /* A comma inside quotes is no separator, and no token either. */
    malformed("x-other; a=\"b,permessage-deflate\"");
}
END_TEST

/* Whitespace around separators and empty list elements are tolerated. */
START_TEST(test_negotiate_whitespace_and_empty_elements)
{
    accepts(" ,, permessage-deflate \t;\tserver_max_window_bits = 10 ,",
            "permessage-deflate" NCT "; server_max_window_bits=10");
    declines("");
    declines(" , ,");
}
END_TEST

/* Anything against RFC 6455 9.1 is malformed, wherever it stands. */
START_TEST(test_negotiate_malformed)
{
    malformed("permessage-deflate;");
    malformed("permessage-deflate; ; server_no_context_takeover");
    malformed("permessage-deflate; =10");
    malformed("permessage-deflate; server_max_window_bits=");
    malformed("permessage-deflate; a=\"b c\"");
    malformed("permessage-deflate; a=\"\"");
    malformed("permessage-deflate; a=\"10");
    malformed("permessage-deflate; a=\"1\\");
    malformed("permessage-deflate server_no_context_takeover");
    malformed("permessage-deflate, @x");
    malformed("permessage-deflate; a=b=c");
    malformed("\"permessage-deflate\"");
    malformed(";permessage-deflate");
    /* After an accepted offer too: the whole header is judged. */
    malformed("permessage-deflate, x;");
}
END_TEST

/* Several header lines are one list; one bad line spoils all. */
START_TEST(test_negotiate_several_lines)
{
    const char *two[] = {"x-foo; a=1", "permessage-deflate", NULL};
    const char *bad[] = {"permessage-deflate", "x;;", NULL};
    const char *first[] = {"permessage-deflate; server_max_window_bits=10",
                           "permessage-deflate", NULL};

    ck_assert_int_eq(neg_lines(two), WS_DEFLATE_ACCEPTED);
    ck_assert_str_eq(response, "permessage-deflate" NCT);
    ck_assert_int_eq(neg_lines(bad), WS_DEFLATE_MALFORMED);
    ck_assert_int_eq(neg_lines(first), WS_DEFLATE_ACCEPTED);
    ck_assert_uint_eq(params.server_window_bits, 10);
}
END_TEST

/* With compression off nothing is agreed, but the grammar still holds. */
START_TEST(test_negotiate_compression_off)
{
    cfg.enabled = false;
    declines("permessage-deflate");
    malformed("permessage-deflate;");
}
END_TEST

/* Context takeover mode keeps what the client does not refuse. */
START_TEST(test_negotiate_takeover_mode)
{
    cfg.context_takeover = true;
    accepts("permessage-deflate", "permessage-deflate");
    ck_assert(params.server_takeover);
    ck_assert(params.client_takeover);
    ck_assert_uint_eq(params.client_window_bits, 15);

    accepts("permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover");
    ck_assert(!params.server_takeover);
    ck_assert(params.client_takeover);

    accepts("permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover");
    ck_assert(params.server_takeover);
    ck_assert(!params.client_takeover);
}
END_TEST

/* With takeover, a client that allows it is asked for a smaller window. */
START_TEST(test_negotiate_takeover_client_window)
{
    cfg.context_takeover = true;
    cfg.max_window_bits = 12;
    accepts("permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12; "
            "client_max_window_bits=12");
    ck_assert_uint_eq(params.client_window_bits, 12);
    ck_assert_uint_eq(params.server_window_bits, 12);
    accepts("permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=12; "
            "client_max_window_bits=10");
    ck_assert_uint_eq(params.client_window_bits, 10);
    /* Without the parameter the response must not carry it (7.1.2.2). */
    accepts("permessage-deflate", "permessage-deflate; "
                                  "server_max_window_bits=12");
    ck_assert_uint_eq(params.client_window_bits, 15);
}
END_TEST

/* Config keys: defaults, good values and refusals with reasons. */
START_TEST(test_config_keys)
{
    char why[128];

    ck_assert(cfg.enabled);
    ck_assert(!cfg.context_takeover);
    ck_assert_uint_eq(cfg.level, 6);
    ck_assert_uint_eq(cfg.max_window_bits, 15);
    ck_assert_uint_eq(cfg.threshold_bytes, 128);

    ck_assert_int_eq(
        ws_deflate_config_set(&cfg, "compression", "off", why, sizeof(why)),
        TORPOR_OK);
    ck_assert(!cfg.enabled);
    ck_assert_int_eq(
        ws_deflate_config_set(&cfg, "compression", "yes", why, sizeof(why)),
        TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected \"on\" or \"off\"");
    ck_assert(!cfg.enabled);
    ck_assert_int_eq(ws_deflate_config_set(&cfg, "compression_context_takeover",
                                           "yes", why, sizeof(why)),
                     TORPOR_OK);
    ck_assert(cfg.context_takeover);
    ck_assert_int_eq(
        ws_deflate_config_set(&cfg, "compression_level", "0", why, sizeof(why)),
        TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected an integer from 1 to 9");
    ck_assert_int_eq(
        ws_deflate_config_set(&cfg, "compression_level", "9", why, sizeof(why)),
        TORPOR_OK);
    ck_assert_uint_eq(cfg.level, 9);
    ck_assert_int_eq(ws_deflate_config_set(&cfg, "compression_max_window_bits",
                                           "8", why, sizeof(why)),
                     TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected an integer from 9 to 15");
    ck_assert_uint_eq(cfg.max_window_bits, 15);
    ck_assert_int_eq(ws_deflate_config_set(&cfg, "compression_threshold", "0",
                                           why, sizeof(why)),
                     TORPOR_OK);
    ck_assert_uint_eq(cfg.threshold_bytes, 0);
    ck_assert_int_eq(ws_deflate_config_set(&cfg, "compression_threshold", "-1",
                                           why, sizeof(why)),
                     TORPOR_EINVAL);
    ck_assert_int_eq(
        ws_deflate_config_set(&cfg, "compression_nope", "1", why, sizeof(why)),
        TORPOR_ENOKEY);
}
END_TEST

#define HS_HEAD                                                                \
    "GET /relay/x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"               \
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"   \
    "Sec-WebSocket-Version: 13\r\n"

/* Every Sec-WebSocket-Extensions line reaches the negotiation, in order. */
START_TEST(test_handshake_collects_extension_lines)
{
    const char *req =
        HS_HEAD "Sec-WebSocket-Extensions: a; x=1\r\n"
                "Sec-WebSocket-Extensions:  permessage-deflate \r\n"
                "\r\n";
    struct ws_hs_request r;
    size_t consumed;
    int status;

    ck_assert_int_eq(
        ws_handshake_parse(req, strlen(req), 8192, &r, &status, &consumed),
        WS_HS_OK);
    ck_assert_uint_eq(r.n_extension_lines, 2);
    ck_assert_uint_eq(r.extension_line_lens[0], 6);
    ck_assert(memcmp(r.extension_lines[0], "a; x=1", 6) == 0);
    ck_assert_uint_eq(r.extension_line_lens[1], 18);
    ck_assert(memcmp(r.extension_lines[1], "permessage-deflate", 18) == 0);
}
END_TEST

/* More extension lines than the parser keeps is a 400, not a loss. */
START_TEST(test_handshake_too_many_extension_lines)
{
    char req[2048];
    struct ws_hs_request r;
    size_t consumed;
    int status = 0;
    int n = snprintf(req, sizeof(req), "%s", HS_HEAD);

    for (int i = 0; i <= WS_HS_EXTENSION_LINES_MAX; i++) {
        n += snprintf(req + n, sizeof(req) - (size_t)n,
                      "Sec-WebSocket-Extensions: x%d\r\n", i);
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    ck_assert_int_eq(
        ws_handshake_parse(req, (size_t)n, 8192, &r, &status, &consumed),
        WS_HS_ERROR);
    ck_assert_int_eq(status, 400);
}
END_TEST

/* The 400 for a bad header names it in the body. */
START_TEST(test_handshake_reject_why)
{
    char out[512];
    size_t n = ws_handshake_reject_why(out, sizeof(out), 400,
                                       "malformed Sec-WebSocket-Extensions");
    const char *body;

    ck_assert_uint_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(out, "Content-Length: 48\r\n"));
    body = strstr(out, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body + 4,
                     "Bad Request: malformed Sec-WebSocket-Extensions\n");
    ck_assert_uint_eq(ws_handshake_reject_why(out, sizeof(out), 400, "a\r\n"),
                      0);
}
END_TEST

static Suite *
deflate_suite(void)
{
    Suite *s = suite_create("ws_deflate");
    TCase *tc = tcase_create("negotiate");
    TCase *tk = tcase_create("config");
    TCase *th = tcase_create("handshake");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_negotiate_plain_offer_imposes_no_takeover);
    tcase_add_test(tc, test_negotiate_browser_offer);
    tcase_add_test(tc, test_negotiate_offer_asking_no_takeover);
    tcase_add_test(tc, test_negotiate_server_window_bits);
    tcase_add_test(tc, test_negotiate_server_window_bits_8_declined);
    tcase_add_test(tc, test_negotiate_first_acceptable_offer);
    tcase_add_test(tc, test_negotiate_bad_parameters_decline);
    tcase_add_test(tc, test_negotiate_quoted_values_and_case);
    tcase_add_test(tc, test_negotiate_whitespace_and_empty_elements);
    tcase_add_test(tc, test_negotiate_malformed);
    tcase_add_test(tc, test_negotiate_several_lines);
    tcase_add_test(tc, test_negotiate_compression_off);
    tcase_add_test(tc, test_negotiate_takeover_mode);
    tcase_add_test(tc, test_negotiate_takeover_client_window);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(tk, setup, NULL);
    tcase_add_test(tk, test_config_keys);
    suite_add_tcase(s, tk);

    tcase_add_test(th, test_handshake_collects_extension_lines);
    tcase_add_test(th, test_handshake_too_many_extension_lines);
    tcase_add_test(th, test_handshake_reject_why);
    suite_add_tcase(s, th);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(deflate_suite());
    int failed;

    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
