/*
 * Unit tests of the WebSocket opening handshake: request parsing, target
 * splitting, the accept key and the responses
 * (plugins/websocket/ws_handshake.c).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_handshake.h"

#define MAX_LEN 8192

/* The request of RFC 6455 1.2, built from parts that tests swap out. */
#define REQ_LINE "GET /chat HTTP/1.1\r\n"
#define H_HOST "Host: server.example.com\r\n"
#define H_UPGRADE "Upgrade: websocket\r\n"
#define H_CONN "Connection: Upgrade\r\n"
#define H_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define H_VERSION "Sec-WebSocket-Version: 13\r\n"
#define H_ORIGIN "Origin: http://example.com\r\n"
#define H_PROTO "Sec-WebSocket-Protocol: chat, superchat\r\n"
#define H_EXT "Sec-WebSocket-Extensions: permessage-deflate\r\n"
#define RFC_REQUEST                                                          \
    REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY H_ORIGIN H_PROTO H_VERSION "\r\n"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
/* RFC 6455 1.3 prints this value; Python's hashlib and openssl agree. */
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* A value no parse result uses, to prove an output was left alone. */
#define UNTOUCHED (-12345)

/*
 * hs_test_parse parses the string s with MAX_LEN, and fails the test if a
 * result other than WS_HS_ERROR writes *status.
 */
static enum ws_hs
hs_test_parse(const char *s, struct ws_hs_request *req, int *status,
              size_t *consumed)
{
    enum ws_hs r;

    *status = UNTOUCHED;
    *consumed = 0;
    r = ws_handshake_parse(s, strlen(s), MAX_LEN, req, status, consumed);
    if (r != WS_HS_ERROR) {
        ck_assert_int_eq(*status, UNTOUCHED);
    }
    return r;
}

/*
 * hs_test_status returns the status a complete request s is refused with,
 * or 0 if it is accepted.
 */
static int
hs_test_status(const char *s)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;
    enum ws_hs r = hs_test_parse(s, &req, &status, &consumed);

    ck_assert_int_ne(r, WS_HS_MORE);
    return r == WS_HS_OK ? 0 : status;
}

/* hs_test_field_is asserts that a parsed field equals the string want. */
static void
hs_test_field_is(const char *field, size_t len, const char *want)
{
    ck_assert_ptr_nonnull(field);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(field, want, len);
}

/* The key from RFC 6455 1.3 gives the accept value printed there. */
START_TEST(test_accept_key_rfc_example)
{
    char out[WS_ACCEPT_LEN + 1];

    ws_accept_key(RFC_KEY, strlen(RFC_KEY), out);
    ck_assert_str_eq(out, RFC_ACCEPT);
}
END_TEST

/* The RFC 6455 example request parses with every field pointing into it. */
START_TEST(test_hs_parse_rfc_request)
{
    const char *s = RFC_REQUEST;
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse(s, &req, &status, &consumed), WS_HS_OK);
    ck_assert_uint_eq(consumed, strlen(s));
    hs_test_field_is(req.target, req.target_len, "/chat");
    ck_assert_ptr_eq(req.target, s + 4);
    hs_test_field_is(req.host, req.host_len, "server.example.com");
    hs_test_field_is(req.key, req.key_len, RFC_KEY);
    hs_test_field_is(req.origin, req.origin_len, "http://example.com");
    hs_test_field_is(req.protocols, req.protocols_len, "chat, superchat");
    ck_assert_ptr_null(req.extensions);
    ck_assert_uint_eq(req.extensions_len, 0);
}
END_TEST

/* Optional headers that are absent come back NULL with length 0. */
START_TEST(test_hs_parse_optional_headers_absent)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                                       H_VERSION "\r\n",
                                   &req, &status, &consumed),
                     WS_HS_OK);
    ck_assert_ptr_null(req.origin);
    ck_assert_uint_eq(req.origin_len, 0);
    ck_assert_ptr_null(req.protocols);
    ck_assert_uint_eq(req.protocols_len, 0);
    ck_assert_ptr_null(req.extensions);
}
END_TEST

/* Extensions are returned, and a repeated header keeps its first value. */
START_TEST(test_hs_parse_first_occurrence)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(
        hs_test_parse(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY H_VERSION H_EXT
                      "Sec-WebSocket-Extensions: x-other\r\n"
                      "Sec-WebSocket-Protocol: one\r\n"
                      "Sec-WebSocket-Protocol: two\r\n"
                      "Origin: https://a.example\r\n"
                      "Origin: https://b.example\r\n\r\n",
                      &req, &status, &consumed),
        WS_HS_OK);
    hs_test_field_is(req.extensions, req.extensions_len,
                     "permessage-deflate");
    hs_test_field_is(req.protocols, req.protocols_len, "one");
    hs_test_field_is(req.origin, req.origin_len, "https://a.example");
}
END_TEST

/* Every Sec-WebSocket-Protocol line is kept, in order: they are one list. */
START_TEST(test_hs_parse_protocol_lines)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(
        hs_test_parse(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY H_VERSION
                      "Sec-WebSocket-Protocol: one, two\r\n"
                      "Sec-WebSocket-Protocol:  three \r\n\r\n",
                      &req, &status, &consumed),
        WS_HS_OK);
    ck_assert_uint_eq(req.n_protocol_lines, 2);
    hs_test_field_is(req.protocol_lines[0], req.protocol_line_lens[0],
                     "one, two");
    hs_test_field_is(req.protocol_lines[1], req.protocol_line_lens[1],
                     "three");
}
END_TEST

/* More protocol lines than the parser keeps is a 400, not a loss. */
START_TEST(test_hs_parse_too_many_protocol_lines)
{
    char req[2048];
    struct ws_hs_request r;
    int status = 0;
    size_t consumed;
    int n = snprintf(req, sizeof(req), "%s",
                     REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY H_VERSION);

    for (int i = 0; i <= WS_HS_PROTOCOL_LINES_MAX; i++) {
        n += snprintf(req + n, sizeof(req) - (size_t)n,
                      "Sec-WebSocket-Protocol: p%d\r\n", i);
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    ck_assert_int_eq(hs_test_parse(req, &r, &status, &consumed), WS_HS_ERROR);
    ck_assert_int_eq(status, 400);
}
END_TEST

/* Header names and the Upgrade and Connection tokens ignore case. */
START_TEST(test_hs_parse_case_insensitive)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse("GET / HTTP/1.1\r\n"
                                   "HOST: h\r\n"
                                   "uPgRaDe: WebSocket\r\n"
                                   "CONNECTION: UPGRADE\r\n"
                                   "sec-websocket-key: " RFC_KEY "\r\n"
                                   "SEC-WEBSOCKET-VERSION: 13\r\n"
                                   "ORIGIN: o\r\n"
                                   "sec-WebSocket-protocol: p\r\n\r\n",
                                   &req, &status, &consumed),
                     WS_HS_OK);
    hs_test_field_is(req.host, req.host_len, "h");
    hs_test_field_is(req.key, req.key_len, RFC_KEY);
    hs_test_field_is(req.origin, req.origin_len, "o");
    hs_test_field_is(req.protocols, req.protocols_len, "p");
}
END_TEST

/* Connection and Upgrade are token lists: keep-alive, Upgrade passes. */
START_TEST(test_hs_parse_token_lists)
{
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_KEY H_VERSION
                                    "Connection: keep-alive, Upgrade\r\n"
                                    "Upgrade: websocket\r\n\r\n"),
                     0);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_KEY H_VERSION
                                    "Connection: keep-alive,upgrade,\r\n"
                                    "Upgrade: h2c, websocket\r\n\r\n"),
                     0);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_KEY H_VERSION
                                    "Connection: keep-alive\r\n"
                                    "Connection: Upgrade\r\n"
                                    "Upgrade: websocket\r\n\r\n"),
                     0);
}
END_TEST

/* Blanks around values are trimmed, inner blanks kept. */
START_TEST(test_hs_parse_trims_values)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse(REQ_LINE H_UPGRADE H_CONN H_VERSION
                                   "Host:h:80 \r\n"
                                   "Sec-WebSocket-Key: \t " RFC_KEY " \t\r\n"
                                   "Sec-WebSocket-Protocol:  a ,  b  \r\n"
                                   "\r\n",
                                   &req, &status, &consumed),
                     WS_HS_OK);
    hs_test_field_is(req.host, req.host_len, "h:80");
    hs_test_field_is(req.key, req.key_len, RFC_KEY);
    hs_test_field_is(req.protocols, req.protocols_len, "a ,  b");
}
END_TEST

/* Bare LF line ends are accepted, alone or mixed with CRLF. */
START_TEST(test_hs_parse_bare_lf)
{
    const char *lf = "GET /x HTTP/1.1\nHost: h\nUpgrade: websocket\n"
                     "Connection: Upgrade\nSec-WebSocket-Key: " RFC_KEY "\n"
                     "Sec-WebSocket-Version: 13\n\n";
    const char *mixed = "GET /x HTTP/1.1\r\nHost: h\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\nSec-WebSocket-Key: " RFC_KEY
                        "\r\nSec-WebSocket-Version: 13\r\n\n";
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse(lf, &req, &status, &consumed), WS_HS_OK);
    ck_assert_uint_eq(consumed, strlen(lf));
    hs_test_field_is(req.key, req.key_len, RFC_KEY);
    ck_assert_int_eq(hs_test_parse(mixed, &req, &status, &consumed),
                     WS_HS_OK);
    ck_assert_uint_eq(consumed, strlen(mixed));
}
END_TEST

/* consumed stops at the empty line; bytes after it are left alone. */
START_TEST(test_hs_parse_consumed_excludes_trailing)
{
    const char *s = RFC_REQUEST "\x81\x85garbage";
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse(s, &req, &status, &consumed), WS_HS_OK);
    ck_assert_uint_eq(consumed, strlen(RFC_REQUEST));
}
END_TEST

/* Empty lines before the request line are skipped and counted. */
START_TEST(test_hs_parse_leading_empty_lines)
{
    const char *s = "\r\n\n" RFC_REQUEST;
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse(s, &req, &status, &consumed), WS_HS_OK);
    ck_assert_uint_eq(consumed, strlen(s));
    hs_test_field_is(req.target, req.target_len, "/chat");
}
END_TEST

/* The target is returned exactly as sent, query included. */
START_TEST(test_hs_parse_target_with_query)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse("GET /relay/lobby?x=1&y=%20 HTTP/1.1\r\n"
                                   H_HOST H_UPGRADE H_CONN H_KEY H_VERSION
                                   "\r\n",
                                   &req, &status, &consumed),
                     WS_HS_OK);
    hs_test_field_is(req.target, req.target_len, "/relay/lobby?x=1&y=%20");
}
END_TEST

/* Later HTTP versions than 1.1 are accepted. */
START_TEST(test_hs_parse_later_http_version)
{
    ck_assert_int_eq(hs_test_status("GET / HTTP/1.2\r\n" H_HOST H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     0);
    ck_assert_int_eq(hs_test_status("GET / HTTP/2.0\r\n" H_HOST H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     0);
}
END_TEST

/* Path and query are split, and no query is told from an empty one. */
START_TEST(test_target_split_path_query)
{
    const char *path;
    const char *query;
    size_t path_len;
    size_t query_len;
    const char *t1 = "/relay/lobby?x=1";
    const char *t2 = "/relay/lobby";
    const char *t3 = "/a?";
    const char *t4 = "/?a?b";

    ck_assert(ws_target_split(t1, strlen(t1), &path, &path_len, &query,
                              &query_len));
    hs_test_field_is(path, path_len, "/relay/lobby");
    hs_test_field_is(query, query_len, "x=1");
    ck_assert(ws_target_split(t2, strlen(t2), &path, &path_len, &query,
                              &query_len));
    hs_test_field_is(path, path_len, "/relay/lobby");
    ck_assert_ptr_null(query);
    ck_assert_uint_eq(query_len, 0);
    ck_assert(ws_target_split(t3, strlen(t3), &path, &path_len, &query,
                              &query_len));
    hs_test_field_is(path, path_len, "/a");
    ck_assert_ptr_eq(query, t3 + 3);
    ck_assert_uint_eq(query_len, 0);
    ck_assert(ws_target_split(t4, strlen(t4), &path, &path_len, &query,
                              &query_len));
    hs_test_field_is(path, path_len, "/");
    hs_test_field_is(query, query_len, "a?b");
}
END_TEST

/* Targets not starting with '/' or holding a fragment are refused. */
START_TEST(test_target_split_rejects)
{
    const char *bad[] = { "", "relay/x", "http://h/x", "*", "/x#frag",
                          "?q=1" };
    const char *path = NULL;
    const char *query = NULL;
    size_t path_len = 7;
    size_t query_len = 7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!ws_target_split(bad[i], strlen(bad[i]), &path,
                                       &path_len, &query, &query_len),
                      "target \"%s\"", bad[i]);
    }
    ck_assert_ptr_null(path);
    ck_assert_uint_eq(path_len, 7);
    /* The length bounds the target: a '/' past it does not count. */
    ck_assert(!ws_target_split("/x", 0, &path, &path_len, &query,
                               &query_len));
}
END_TEST

/* The 101 response is exact, with optional lines only when asked for. */
START_TEST(test_hs_accept_response)
{
    const char *plain = "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n";
    const char *full = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                       "Sec-WebSocket-Protocol: chat\r\n"
                       "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                       "\r\n";
    char out[512];

    ck_assert_uint_eq(ws_handshake_accept(out, sizeof(out), RFC_KEY,
                                          strlen(RFC_KEY), NULL, NULL),
                      strlen(plain));
    ck_assert_str_eq(out, plain);
    ck_assert_uint_eq(ws_handshake_accept(out, sizeof(out), RFC_KEY,
                                          strlen(RFC_KEY), "chat",
                                          "permessage-deflate"),
                      strlen(full));
    ck_assert_str_eq(out, full);
}
END_TEST

/* The 400 response is exact, and its Content-Length matches its body. */
START_TEST(test_hs_reject_response)
{
    const char *want = "HTTP/1.1 400 Bad Request\r\n"
                       "Connection: close\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 12\r\n"
                       "\r\n"
                       "Bad Request\n";
    char out[512];

    ck_assert_uint_eq(ws_handshake_reject(out, sizeof(out), 400),
                      strlen(want));
    ck_assert_str_eq(out, want);
}
END_TEST

/* A 429 with a delay carries Retry-After in seconds; without, none. */
START_TEST(test_hs_reject_retry_after)
{
    const char *want = "HTTP/1.1 429 Too Many Requests\r\n"
                       "Connection: close\r\n"
                       "Retry-After: 3\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 18\r\n"
                       "\r\n"
                       "Too Many Requests\n";
    char out[512];

    ck_assert_uint_eq(ws_handshake_reject_retry(out, sizeof(out), 429, 3),
                      strlen(want));
    ck_assert_str_eq(out, want);
    ck_assert_uint_gt(ws_handshake_reject_retry(out, sizeof(out), 429, 0), 0);
    ck_assert_ptr_null(strstr(out, "Retry-After"));
    ck_assert_uint_eq(ws_handshake_reject_retry(out, sizeof(out), 429, 0),
                      ws_handshake_reject(out, sizeof(out), 429));
}
END_TEST

/* Every status the parser returns has a response with its own headers. */
START_TEST(test_hs_reject_statuses)
{
    const int statuses[] = { 400, 403, 404, 405, 426, 429, 431, 500, 503,
                             505 };
    char out[512];

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        size_t n = ws_handshake_reject(out, sizeof(out), statuses[i]);
        const char *body;
        char line[64];

        ck_assert_uint_gt(n, 0);
        ck_assert_uint_eq(strlen(out), n);
        snprintf(line, sizeof(line), "HTTP/1.1 %d ", statuses[i]);
        ck_assert(strncmp(out, line, strlen(line)) == 0);
        body = strstr(out, "\r\n\r\n");
        ck_assert_ptr_nonnull(body);
        body += 4;
        snprintf(line, sizeof(line), "\r\nContent-Length: %zu\r\n",
                 strlen(body));
        ck_assert_ptr_nonnull(strstr(out, line));
        ck_assert_ptr_nonnull(strstr(out, "\r\nContent-Type: text/plain\r\n"));
        ck_assert((strstr(out, "\r\nSec-WebSocket-Version: 13\r\n") != NULL)
                  == (statuses[i] == 426));
        ck_assert((strstr(out, "\r\nAllow: GET\r\n") != NULL)
                  == (statuses[i] == 405));
        if (statuses[i] == 426) {
            ck_assert_ptr_nonnull(strstr(out, "\r\nUpgrade: websocket\r\n"));
            ck_assert_ptr_nonnull(
                strstr(out, "\r\nConnection: Upgrade, close\r\n"));
        } else {
            ck_assert_ptr_nonnull(strstr(out, "\r\nConnection: close\r\n"));
        }
    }
    ck_assert_str_eq(strstr(out, "\r\n\r\n") + 4,
                     "HTTP Version Not Supported\n");
}
END_TEST

/* Every proper prefix of a valid request is MORE, read without overrun. */
START_TEST(test_hs_parse_every_prefix_is_more)
{
    const char *s = RFC_REQUEST;
    size_t len = strlen(s);

    for (size_t n = 0; n <= len; n++) {
        char *copy = malloc(n > 0 ? n : 1);
        struct ws_hs_request req;
        int status = UNTOUCHED;
        size_t consumed = 0;
        enum ws_hs r;

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, s, n);
        r = ws_handshake_parse(copy, n, MAX_LEN, &req, &status, &consumed);
        free(copy);
        ck_assert_msg(r == (n == len ? WS_HS_OK : WS_HS_MORE), "prefix %zu",
                      n);
        ck_assert_int_eq(status, UNTOUCHED);
    }
}
END_TEST

/* A request is refused with 431 exactly when its end lies past max_len. */
START_TEST(test_hs_parse_max_len)
{
    const char *s = RFC_REQUEST;
    size_t len = strlen(s);
    struct ws_hs_request req;
    int status = UNTOUCHED;
    size_t consumed = 0;

    ck_assert_int_eq(ws_handshake_parse(s, len, len, &req, &status,
                                        &consumed),
                     WS_HS_OK);
    ck_assert_uint_eq(consumed, len);
    ck_assert_int_eq(ws_handshake_parse(s, len, len - 1, &req, &status,
                                        &consumed),
                     WS_HS_ERROR);
    ck_assert_int_eq(status, 431);
    /* Only max_len bytes are needed to know it will not fit. */
    status = UNTOUCHED;
    ck_assert_int_eq(ws_handshake_parse(s, 40, 40, &req, &status, &consumed),
                     WS_HS_ERROR);
    ck_assert_int_eq(status, 431);
    status = UNTOUCHED;
    ck_assert_int_eq(ws_handshake_parse(s, 39, 40, &req, &status, &consumed),
                     WS_HS_MORE);
    ck_assert_int_eq(status, UNTOUCHED);
}
END_TEST

/* A stream of endless header lines hits 431, not an endless MORE. */
START_TEST(test_hs_parse_endless_headers)
{
    static char buf[MAX_LEN + 64];
    size_t n = 0;
    struct ws_hs_request req;
    int status = UNTOUCHED;
    size_t consumed;

    memcpy(buf, REQ_LINE, strlen(REQ_LINE));
    n = strlen(REQ_LINE);
    while (n + 8 <= sizeof(buf)) {
        memcpy(buf + n, "X-A: b\r\n", 8);
        n += 8;
    }
    ck_assert_int_eq(ws_handshake_parse(buf, n, MAX_LEN, &req, &status,
                                        &consumed),
                     WS_HS_ERROR);
    ck_assert_int_eq(status, 431);
}
END_TEST

/* Responses that do not fit give 0 at every size short of the need. */
START_TEST(test_hs_responses_too_small)
{
    char out[512];
    size_t need = ws_handshake_accept(out, sizeof(out), RFC_KEY,
                                      strlen(RFC_KEY), "chat", "x");
    size_t need_reject = ws_handshake_reject(out, sizeof(out), 426);

    ck_assert_uint_gt(need, 0);
    for (size_t size = 0; size <= need; size++) {
        ck_assert_uint_eq(ws_handshake_accept(out, size, RFC_KEY,
                                              strlen(RFC_KEY), "chat", "x"),
                          0);
    }
    ck_assert_uint_eq(ws_handshake_accept(out, need + 1, RFC_KEY,
                                          strlen(RFC_KEY), "chat", "x"),
                      need);
    for (size_t size = 0; size <= need_reject; size++) {
        ck_assert_uint_eq(ws_handshake_reject(out, size, 426), 0);
    }
    ck_assert_uint_eq(ws_handshake_reject(out, need_reject + 1, 426),
                      need_reject);
}
END_TEST

/* A key over WS_KEY_MAX_LEN gives no accept value and no 101 response. */
START_TEST(test_accept_key_too_long)
{
    char key[WS_KEY_MAX_LEN + 1];
    char out[WS_ACCEPT_LEN + 1];
    char resp[512];

    memset(key, 'A', sizeof(key));
    ws_accept_key(key, WS_KEY_MAX_LEN, out);
    ck_assert_uint_eq(strlen(out), WS_ACCEPT_LEN);
    ws_accept_key(key, sizeof(key), out);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(ws_handshake_accept(resp, sizeof(resp), key,
                                          sizeof(key), NULL, NULL),
                      0);
}
END_TEST

/* A method other than GET is refused with 405. */
START_TEST(test_hs_parse_rejects_method)
{
    ck_assert_int_eq(hs_test_status("POST /chat HTTP/1.1\r\n" H_HOST H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     405);
    ck_assert_int_eq(hs_test_status("get /chat HTTP/1.1\r\n" H_HOST H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     405);
    ck_assert_int_eq(hs_test_status("GETX /chat HTTP/1.1\r\n" H_HOST
                                        H_UPGRADE H_CONN H_KEY H_VERSION
                                    "\r\n"),
                     405);
}
END_TEST

/* HTTP versions before 1.1 are refused with 505. */
START_TEST(test_hs_parse_rejects_old_http)
{
    ck_assert_int_eq(hs_test_status("GET /chat HTTP/1.0\r\n" H_HOST H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     505);
    ck_assert_int_eq(hs_test_status("GET /chat HTTP/0.9\r\n" H_HOST H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     505);
}
END_TEST

/* Malformed request lines are refused with 400. */
START_TEST(test_hs_parse_rejects_request_line)
{
    const char *lines[] = {
        "GET /chat\r\n",           "GET  /chat HTTP/1.1\r\n",
        "GET /chat  HTTP/1.1\r\n", "GET /chat HTTP/1.1 \r\n",
        " GET /chat HTTP/1.1\r\n", "GET /chat http/1.1\r\n",
        "GET /chat HTTP/1.10\r\n", "GET /chat HTTP/11\r\n",
        "GET /chat HTTPS/1.1\r\n", "GET /c\x01t HTTP/1.1\r\n",
        "GET /c\x7Ft HTTP/1.1\r\n", "GET /c\xC3\xA9 HTTP/1.1\r\n",
        "G(T /chat HTTP/1.1\r\n",  "GET /chat\tHTTP/1.1\r\n",
        "GET /chat HTTP/1.1\rX\r\n",
    };

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char buf[512];

        snprintf(buf, sizeof(buf), "%s%s", lines[i],
                 H_HOST H_UPGRADE H_CONN H_KEY H_VERSION "\r\n");
        ck_assert_msg(hs_test_status(buf) == 400, "line %zu", i);
    }
}
END_TEST

/* Malformed header lines are refused with 400. */
START_TEST(test_hs_parse_rejects_header_line)
{
    const char *lines[] = {
        "NoColon\r\n",       "Bad Name: x\r\n",   "Host : h\r\n",
        ": empty\r\n",       " folded: x\r\n",    "X-A: a\x01z\r\n",
        "X-A: a\x7Fz\r\n",   "X-A: a\rz\r\n",     "X(A): x\r\n",
    };

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char buf[512];

        snprintf(buf, sizeof(buf), "%s%s%s", REQ_LINE, lines[i],
                 H_HOST H_UPGRADE H_CONN H_KEY H_VERSION "\r\n");
        ck_assert_msg(hs_test_status(buf) == 400, "line %zu", i);
    }
    /* A NUL inside a value, which strlen-based helpers would not see. */
    {
        const char s[] = REQ_LINE "X-A: a\0b\r\n" H_HOST H_UPGRADE H_CONN
            H_KEY H_VERSION "\r\n";
        struct ws_hs_request req;
        int status = UNTOUCHED;
        size_t consumed;

        ck_assert_int_eq(ws_handshake_parse(s, sizeof(s) - 1, MAX_LEN, &req,
                                            &status, &consumed),
                         WS_HS_ERROR);
        ck_assert_int_eq(status, 400);
    }
}
END_TEST

/* A missing, repeated, empty or malformed Host is refused with 400. */
START_TEST(test_hs_parse_rejects_host)
{
    ck_assert_int_eq(
        hs_test_status(REQ_LINE H_UPGRADE H_CONN H_KEY H_VERSION "\r\n"), 400);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_HOST H_UPGRADE H_CONN
                                        H_KEY H_VERSION "\r\n"),
                     400);
    ck_assert_int_eq(hs_test_status(REQ_LINE "Host:  \r\n" H_UPGRADE H_CONN
                                        H_KEY H_VERSION "\r\n"),
                     400);
    ck_assert_int_eq(hs_test_status(REQ_LINE "Host: a b\r\n" H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     400);
    ck_assert_int_eq(hs_test_status(REQ_LINE "Host: a/b\r\n" H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     400);
    ck_assert_int_eq(hs_test_status(REQ_LINE "Host: [::1]:8080\r\n" H_UPGRADE
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     0);
}
END_TEST

/* A request without the websocket upgrade tokens is refused with 426. */
START_TEST(test_hs_parse_rejects_not_upgrade)
{
    ck_assert_int_eq(
        hs_test_status(REQ_LINE H_HOST H_CONN H_KEY H_VERSION "\r\n"), 426);
    ck_assert_int_eq(
        hs_test_status(REQ_LINE H_HOST H_UPGRADE H_KEY H_VERSION "\r\n"), 426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST "Upgrade: h2c\r\n" H_CONN
                                        H_KEY H_VERSION "\r\n"),
                     426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST "Upgrade: websockets\r\n"
                                        H_CONN H_KEY H_VERSION "\r\n"),
                     426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_UPGRADE
                                    "Connection: keep-alive\r\n" H_KEY
                                        H_VERSION "\r\n"),
                     426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_UPGRADE
                                    "Connection: upgraded\r\n" H_KEY
                                        H_VERSION "\r\n"),
                     426);
    /* What a browser sends when someone opens the URL. */
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST
                                    "Connection: keep-alive\r\n"
                                    "Accept: text/html\r\n\r\n"),
                     426);
}
END_TEST

/* A missing or other Sec-WebSocket-Version is refused with 426. */
START_TEST(test_hs_parse_rejects_version)
{
    ck_assert_int_eq(
        hs_test_status(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY "\r\n"), 426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                                    "Sec-WebSocket-Version: 8\r\n\r\n"),
                     426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                                    "Sec-WebSocket-Version: 13, 8\r\n\r\n"),
                     426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                                        H_VERSION
                                    "Sec-WebSocket-Version: 8\r\n\r\n"),
                     426);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                                    "Sec-WebSocket-Version: 130\r\n\r\n"),
                     426);
}
END_TEST

/* A missing, repeated or malformed Sec-WebSocket-Key is refused with 400. */
START_TEST(test_hs_parse_rejects_key)
{
    const char *keys[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",      /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===",    /* 25 characters */
        "dGhlIHNhbXBsZSBub25jZQAA",     /* 18 bytes, no padding */
        "dGhlIHNhbXBsZSBub25j ZQ==",    /* inner blank */
        "dGhlIHNhbXBsZSBub25jZ-==",     /* base64url alphabet */
        "dGhlIHNhbXBsZSBub25jZ==A",     /* padding in the middle */
        "dGhlIHNhbXBsZSBub25jZQ=A",
        "dGhlIHNhbXBsZSBub25jZQA=",     /* 17 bytes */
        "c2FtcGxlIG5vbmNl",             /* 12 bytes */
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char buf[512];

        snprintf(buf, sizeof(buf), "%sSec-WebSocket-Key: %s\r\n%s", REQ_LINE,
                 keys[i], H_HOST H_UPGRADE H_CONN H_VERSION "\r\n");
        ck_assert_msg(hs_test_status(buf) == 400, "key %zu", i);
    }
    ck_assert_int_eq(
        hs_test_status(REQ_LINE H_HOST H_UPGRADE H_CONN H_VERSION "\r\n"),
        400);
    ck_assert_int_eq(hs_test_status(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                                        H_KEY H_VERSION "\r\n"),
                     400);
}
END_TEST

/* A broken line is refused when complete, before the request ends. */
START_TEST(test_hs_parse_rejects_early)
{
    struct ws_hs_request req;
    int status;
    size_t consumed;

    ck_assert_int_eq(hs_test_parse("POST / HTTP/1.1\r\n", &req, &status,
                                   &consumed),
                     WS_HS_ERROR);
    ck_assert_int_eq(status, 405);
    ck_assert_int_eq(hs_test_parse("GET / HTTP/1.0\n", &req, &status,
                                   &consumed),
                     WS_HS_ERROR);
    ck_assert_int_eq(status, 505);
    ck_assert_int_eq(hs_test_parse(REQ_LINE "Bad Header\r\nHost: h\r\n",
                                   &req, &status, &consumed),
                     WS_HS_ERROR);
    ck_assert_int_eq(status, 400);
    /* Semantic checks wait for the end: the key may still come. */
    ck_assert_int_eq(hs_test_parse(REQ_LINE H_HOST, &req, &status,
                                   &consumed),
                     WS_HS_MORE);
}
END_TEST

/* Response lines that would smuggle CR or LF are refused. */
START_TEST(test_hs_accept_rejects_unsafe_values)
{
    char out[512];

    ck_assert_uint_eq(ws_handshake_accept(out, sizeof(out), RFC_KEY,
                                          strlen(RFC_KEY), "chat\r\nX: y",
                                          NULL),
                      0);
    ck_assert_uint_eq(ws_handshake_accept(out, sizeof(out), RFC_KEY,
                                          strlen(RFC_KEY), NULL, "a\nb"),
                      0);
    ck_assert_uint_eq(ws_handshake_reject(out, sizeof(out), 200), 0);
    ck_assert_uint_eq(ws_handshake_reject(out, sizeof(out), 418), 0);
}
END_TEST

static Suite *
ws_handshake_suite(void)
{
    Suite *s = suite_create("ws_handshake");
    TCase *core = tcase_create("core");
    TCase *limits = tcase_create("limits");
    TCase *errors = tcase_create("errors");

    tcase_add_test(core, test_accept_key_rfc_example);
    tcase_add_test(core, test_hs_parse_rfc_request);
    tcase_add_test(core, test_hs_parse_optional_headers_absent);
    tcase_add_test(core, test_hs_parse_first_occurrence);
    tcase_add_test(core, test_hs_parse_protocol_lines);
    tcase_add_test(core, test_hs_parse_case_insensitive);
    tcase_add_test(core, test_hs_parse_token_lists);
    tcase_add_test(core, test_hs_parse_trims_values);
    tcase_add_test(core, test_hs_parse_bare_lf);
    tcase_add_test(core, test_hs_parse_consumed_excludes_trailing);
    tcase_add_test(core, test_hs_parse_leading_empty_lines);
    tcase_add_test(core, test_hs_parse_target_with_query);
    tcase_add_test(core, test_hs_parse_later_http_version);
    tcase_add_test(core, test_target_split_path_query);
    tcase_add_test(core, test_hs_accept_response);
    tcase_add_test(core, test_hs_reject_response);
    tcase_add_test(core, test_hs_reject_statuses);
    tcase_add_test(core, test_hs_reject_retry_after);
    suite_add_tcase(s, core);

    tcase_add_test(limits, test_hs_parse_every_prefix_is_more);
    tcase_add_test(limits, test_hs_parse_max_len);
    tcase_add_test(limits, test_hs_parse_endless_headers);
    tcase_add_test(limits, test_hs_responses_too_small);
    tcase_add_test(limits, test_accept_key_too_long);
    suite_add_tcase(s, limits);

    tcase_add_test(errors, test_hs_parse_rejects_method);
    tcase_add_test(errors, test_hs_parse_rejects_old_http);
    tcase_add_test(errors, test_hs_parse_rejects_request_line);
    tcase_add_test(errors, test_hs_parse_rejects_header_line);
    tcase_add_test(errors, test_hs_parse_rejects_host);
    tcase_add_test(errors, test_hs_parse_rejects_not_upgrade);
    tcase_add_test(errors, test_hs_parse_rejects_version);
    tcase_add_test(errors, test_hs_parse_rejects_key);
    tcase_add_test(errors, test_hs_parse_rejects_early);
    tcase_add_test(errors, test_hs_parse_too_many_protocol_lines);
    tcase_add_test(errors, test_hs_accept_rejects_unsafe_values);
    tcase_add_test(errors, test_target_split_rejects);
    suite_add_tcase(s, errors);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_handshake_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
