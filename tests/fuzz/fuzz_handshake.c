/*
 * Fuzz target: the upgrade request parser and the answers built from it
 * (ws_handshake.c).
 *
 * Input: the bytes a client sent before its first frame, as is, so a seed
 * is a plain HTTP request.  They are parsed with the default limit of 8192
 * bytes, and again with a smaller limit and on prefixes.
 *
 * Beyond "no crash", it checks that:
 *   - an accepted request was consumed within the input and the limit, and
 *     every field it reports lies inside the consumed bytes, trimmed, free
 *     of control characters, with a 24-character key and a Host; each
 *     Sec-WebSocket-Protocol and -Extensions line is kept so, the first
 *     one also as the header's own field;
 *   - a refusal carries one of the documented statuses;
 *   - the parser is consistent as bytes arrive: a prefix either asks for
 *     more or gives exactly the answer of the whole input (every strict
 *     prefix of an accepted request asks for more), and bytes after an
 *     accepted request change nothing;
 *   - a smaller limit accepts the same request if it fits, and otherwise
 *     answers 431 unless an earlier line was already refused;
 *   - the target splits into a path and a query inside it;
 *   - the 101 answer (with the request's protocol and extensions echoed)
 *     and every refusal are well-formed HTTP: CRLF line ends only, so no
 *     request byte can inject a header, and a refusal's Content-Length
 *     matches its body.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz_check.h"
#include "ws_handshake.h"

#define FUZZ_MAX_LEN 8192

struct fuzz_result {
    enum ws_hs r;
    struct ws_hs_request req;
    int status;
    size_t consumed;
};

static void
fuzz_parse(const char *buf, size_t len, size_t max_len, struct fuzz_result *out)
{
    memset(out, 0, sizeof(*out));
    out->r = ws_handshake_parse(buf, len, max_len, &out->req, &out->status,
                                &out->consumed);
}

static bool
fuzz_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
    if (a->r != b->r) {
        return false;
    }
    if (a->r == WS_HS_ERROR) {
        return a->status == b->status;
    }
    if (a->r == WS_HS_OK) {
        return a->consumed == b->consumed
               && memcmp(&a->req, &b->req, sizeof(a->req)) == 0;
    }
    return true;
}

/* fuzz_check_field: inside buf[0..end), trimmed, no control characters. */
static void
fuzz_check_field(const char *buf, size_t end, const char *p, size_t len,
                 const char *what)
{
    if (p == NULL) {
        FUZZ_CHECK(len == 0, what);
        return;
    }
    FUZZ_CHECK(p >= buf && (size_t)(p - buf) + len <= end, what);
    if (len > 0) {
        FUZZ_CHECK(p[0] != ' ' && p[0] != '\t' && p[len - 1] != ' '
                       && p[len - 1] != '\t',
                   what);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];

        FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7F), what);
    }
}

/*
 * fuzz_check_http: out[0..n) is a response head whose lines all end in
 * CRLF, with no lone CR or LF.  Returns its number of lines.
 */
static size_t
fuzz_check_http(const char *out, size_t n, const char *start)
{
    size_t lines = 0;

    FUZZ_CHECK(strncmp(out, start, strlen(start)) == 0, start);
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\r') {
            FUZZ_CHECK(i + 1 < n && out[i + 1] == '\n', "CR only before LF");
        } else if (out[i] == '\n') {
            FUZZ_CHECK(i > 0 && out[i - 1] == '\r',
                       "LF only after CR: no header injection");
            lines++;
        }
    }
    return lines;
}

/* fuzz_copy gives a NUL-terminated copy of a field, or NULL. */
static char *
fuzz_copy(const char *p, size_t len)
{
    char *s;

    if (p == NULL) {
        return NULL;
    }
    s = malloc(len + 1);
    FUZZ_CHECK(s != NULL, "allocation");
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static void
fuzz_check_accepted(const char *buf, const struct fuzz_result *res)
{
    const struct ws_hs_request *q = &res->req;
    const char *path;
    const char *query;
    size_t path_len;
    size_t query_len;
    char accept[WS_ACCEPT_LEN + 1];
    char out[2 * FUZZ_MAX_LEN + 256];
    char *protocol = fuzz_copy(q->protocols, q->protocols_len);
    char *extensions = fuzz_copy(q->extensions, q->extensions_len);
    size_t n;

    FUZZ_CHECK(q->target != NULL && q->target_len > 0, "a target");
    FUZZ_CHECK(q->target >= buf
                   && (size_t)(q->target - buf) + q->target_len
                          <= res->consumed,
               "target inside the request");
    for (size_t i = 0; i < q->target_len; i++) {
        unsigned char c = (unsigned char)q->target[i];

        FUZZ_CHECK(c > 0x20 && c < 0x7F, "target is visible ASCII");
    }
    fuzz_check_field(buf, res->consumed, q->key, q->key_len, "key");
    fuzz_check_field(buf, res->consumed, q->host, q->host_len, "host");
    fuzz_check_field(buf, res->consumed, q->origin, q->origin_len, "origin");
    fuzz_check_field(buf, res->consumed, q->protocols, q->protocols_len,
                     "protocols");
    fuzz_check_field(buf, res->consumed, q->extensions, q->extensions_len,
                     "extensions");
    /* Every line of a list header, the first of them reported alone too. */
    FUZZ_CHECK(q->n_protocol_lines <= WS_HS_PROTOCOL_LINES_MAX
                   && (q->n_protocol_lines == 0) == (q->protocols == NULL),
               "protocol lines counted");
    for (size_t i = 0; i < q->n_protocol_lines; i++) {
        fuzz_check_field(buf, res->consumed, q->protocol_lines[i],
                         q->protocol_line_lens[i], "a protocol line");
    }
    FUZZ_CHECK(q->n_protocol_lines == 0
                   || (q->protocol_lines[0] == q->protocols
                       && q->protocol_line_lens[0] == q->protocols_len),
               "the first protocol line is protocols");
    FUZZ_CHECK(q->n_extension_lines <= WS_HS_EXTENSION_LINES_MAX
                   && (q->n_extension_lines == 0) == (q->extensions == NULL),
               "extension lines counted");
    for (size_t i = 0; i < q->n_extension_lines; i++) {
        fuzz_check_field(buf, res->consumed, q->extension_lines[i],
                         q->extension_line_lens[i], "an extension line");
    }
    FUZZ_CHECK(q->key != NULL && q->key_len == 24
                   && memcmp(q->key + 22, "==", 2) == 0,
               "key is 24 characters of base64 ending in ==");
    FUZZ_CHECK(q->host != NULL && q->host_len > 0, "a Host");

    if (ws_target_split(q->target, q->target_len, &path, &path_len, &query,
                        &query_len)) {
        FUZZ_CHECK(path == q->target && path_len >= 1 && path[0] == '/',
                   "path starts the target");
        FUZZ_CHECK(memchr(q->target, '#', q->target_len) == NULL,
                   "no fragment in a split target");
        if (query == NULL) {
            FUZZ_CHECK(path_len == q->target_len, "no query: all path");
        } else {
            FUZZ_CHECK(query == path + path_len + 1 && query[-1] == '?'
                           && path_len + 1 + query_len == q->target_len
                           && memchr(path, '?', path_len) == NULL,
                       "query follows the first '?'");
        }
    } else {
        FUZZ_CHECK(q->target[0] != '/'
                       || memchr(q->target, '#', q->target_len) != NULL,
                   "only a target not starting with / or with # is refused");
    }

    ws_accept_key(q->key, q->key_len, accept);
    FUZZ_CHECK(strlen(accept) == WS_ACCEPT_LEN && accept[27] == '=',
               "accept value is 28 characters of base64");

    n = ws_handshake_accept(out, sizeof(out), q->key, q->key_len, protocol,
                            extensions);
    FUZZ_CHECK(n > 0, "a valid request always gets its 101");
    FUZZ_CHECK(strlen(out) == n, "NUL right after the 101");
    FUZZ_CHECK(fuzz_check_http(out, n, "HTTP/1.1 101 Switching Protocols\r\n")
                   == 5 + (protocol != NULL) + (extensions != NULL),
               "101 has exactly its own header lines");
    FUZZ_CHECK(strstr(out, accept) != NULL, "101 carries the accept value");
    free(protocol);
    free(extensions);
}

static void
fuzz_check_refused(int status)
{
    char out[1024];
    char head[16];
    size_t n;
    const char *body;
    const char *cl;

    FUZZ_CHECK(status == 400 || status == 405 || status == 426 || status == 431
                   || status == 505,
               "a documented refusal status");
    n = ws_handshake_reject(out, sizeof(out), status);
    FUZZ_CHECK(n > 0, "every refusal status has an answer");
    FUZZ_CHECK(strlen(out) == n, "NUL right after the refusal");
    snprintf(head, sizeof(head), "HTTP/1.1 %d ", status);
    body = strstr(out, "\r\n\r\n");
    FUZZ_CHECK(body != NULL, "the answer has a head");
    body += 4;
    fuzz_check_http(out, (size_t)(body - out), head);
    cl = strstr(out, "Content-Length: ");
    FUZZ_CHECK(cl != NULL && cl < body
                   && strtoul(cl + 16, NULL, 10) == strlen(body),
               "Content-Length matches the body");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct fuzz_result whole;
    struct fuzz_result part;
    size_t probes[4];

    fuzz_parse(buf, size, FUZZ_MAX_LEN, &whole);
    switch (whole.r) {
    case WS_HS_OK:
        FUZZ_CHECK(whole.consumed > 0 && whole.consumed <= size
                       && whole.consumed <= FUZZ_MAX_LEN,
                   "consumed within the input and the limit");
        FUZZ_CHECK(buf[whole.consumed - 1] == '\n',
                   "a request ends with its empty line");
        fuzz_check_accepted(buf, &whole);
        /* Bytes after the request are not looked at. */
        fuzz_parse(buf, whole.consumed, FUZZ_MAX_LEN, &part);
        FUZZ_CHECK(fuzz_same(&whole, &part),
                   "bytes after the request change nothing");
        fuzz_parse(buf, whole.consumed - 1, FUZZ_MAX_LEN, &part);
        FUZZ_CHECK(part.r == WS_HS_MORE,
                   "a request one byte short asks for more");
        break;
    case WS_HS_ERROR:
        fuzz_check_refused(whole.status);
        break;
    case WS_HS_MORE:
        FUZZ_CHECK(size < FUZZ_MAX_LEN, "the limit always decides");
        break;
    default:
        FUZZ_CHECK(false, "result is one of the three");
    }

    /* Prefixes ask for more or give the whole input's answer. */
    probes[0] = size / 2;
    probes[1] = size > 0 ? size - 1 : 0;
    probes[2] = size > 0 ? (size_t)data[0] * 31 % size : 0;
    probes[3] = size > 1 ? (size_t)data[size - 1] * 257 % size : 0;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        fuzz_parse(buf, probes[i], FUZZ_MAX_LEN, &part);
        FUZZ_CHECK(part.r == WS_HS_MORE || fuzz_same(&whole, &part),
                   "a prefix asks for more or answers as the whole");
        if (whole.r == WS_HS_OK && probes[i] < whole.consumed) {
            FUZZ_CHECK(part.r == WS_HS_MORE,
                       "a strict prefix of a request asks for more");
        }
    }

    /* A smaller limit: the same request if it fits, else 431. */
    {
        size_t small = size / 2 + 1;

        fuzz_parse(buf, size, small, &part);
        if (whole.r == WS_HS_OK && whole.consumed <= small) {
            FUZZ_CHECK(fuzz_same(&whole, &part),
                       "a request within the limit is accepted");
        } else if (whole.r == WS_HS_OK) {
            FUZZ_CHECK(part.r == WS_HS_ERROR && part.status == 431,
                       "a valid request over the limit gets 431");
        } else if (whole.r == WS_HS_ERROR) {
            FUZZ_CHECK(
                part.r == WS_HS_ERROR
                    && (part.status == whole.status || part.status == 431),
                "a smaller limit refuses as the whole or with 431");
        }
    }
    return 0;
}
