/*
 * The WebSocket opening handshake: see ws_handshake.h.
 *
 * The parser is stateless: it reads the buffer from the start on every call
 * and judges each line as soon as its end is in the buffer.  Requests are a
 * few hundred bytes and max_len bounds the rescans, so keeping no state
 * between reads is cheaper than the bookkeeping it would take.
 */
#include "ws_handshake.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

/* RFC 6455 1.3: appended to the key before hashing. */
static const char ws_hs_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
#define WS_HS_GUID_LEN (sizeof(ws_hs_guid) - 1)

/* Raw SHA-1 digest length; its base64 is WS_ACCEPT_LEN characters. */
#define WS_HS_SHA1_LEN 20

/* A valid Sec-WebSocket-Key: 16 bytes in base64, 22 characters and "==". */
#define WS_HS_KEY_LEN 24

/*
 * What the header lines said, gathered line by line and judged only once
 * the whole request is in, because the order of headers is free.
 */
struct ws_hs_scan {
    unsigned host_count;
    unsigned key_count;
    bool upgrade_ok;
    bool connection_ok;
    bool version_seen;
    bool version_bad;
};

/* An output buffer that remembers it ran out instead of writing past it. */
struct ws_hs_out {
    char *buf;
    size_t size;
    size_t len;
    bool overflow;
};

/* ws_hs_is_tchar tells whether c may appear in a token (RFC 7230 3.2.6). */
static bool
ws_hs_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * ws_hs_is_field_char tells whether c may appear in a header value: any
 * byte but the control characters other than HTAB.  This is what keeps CR,
 * LF and NUL out of values that may be echoed back.
 */
static bool
ws_hs_is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* ws_hs_is_blank tells whether c is optional whitespace (SP or HTAB). */
static bool
ws_hs_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* ws_hs_lower folds ASCII letters only, whatever the C locale says. */
static unsigned char
ws_hs_lower(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return (unsigned char)(c + ('a' - 'A'));
    }
    return c;
}

/*
 * ws_hs_eq_nocase compares s[0..len) with the lowercase literal lit,
 * ignoring the case of s.
 */
static bool
ws_hs_eq_nocase(const char *s, size_t len, const char *lit)
{
    size_t lit_len = strlen(lit);

    if (len != lit_len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (ws_hs_lower((unsigned char)s[i]) != (unsigned char)lit[i]) {
            return false;
        }
    }
    return true;
}

/* ws_hs_trim drops optional whitespace from both ends of *s[0..*len). */
static void
ws_hs_trim(const char **s, size_t *len)
{
    while (*len > 0 && ws_hs_is_blank((*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ws_hs_is_blank((*s)[*len - 1])) {
        (*len)--;
    }
}

/*
 * ws_hs_list_has tells whether the comma-separated list s[0..len) holds
 * token (lowercase), compared case-insensitively.  Empty elements are
 * allowed, as RFC 7230 7 asks recipients to accept them.
 */
static bool
ws_hs_list_has(const char *s, size_t len, const char *token)
{
    size_t start = 0;

    while (start <= len) {
        const char *comma = memchr(s + start, ',', len - start);
        size_t end = comma != NULL ? (size_t)(comma - s) : len;
        const char *elem = s + start;
        size_t elem_len = end - start;

        ws_hs_trim(&elem, &elem_len);
        if (ws_hs_eq_nocase(elem, elem_len, token)) {
            return true;
        }
        start = end + 1;
    }
    return false;
}

/*
 * ws_hs_host_valid checks that Host is a non-empty uri-host with an optional
 * port: the characters of reg-name, IPv4 and bracketed IPv6 (RFC 3986).
 * It does not check the structure; whether the host is ours is for the
 * caller to decide.
 */
static bool
ws_hs_host_valid(const char *host, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')) {
            continue;
        }
        if (c == '\0' || strchr("-._~%!$&'()*+,;=:[]", c) == NULL) {
            return false;
        }
    }
    return true;
}

/* ws_hs_is_base64 tells whether c is in the base64 alphabet (not '='). */
static bool
ws_hs_is_base64(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * ws_hs_key_valid checks that the key is base64 of exactly 16 bytes: 22
 * alphabet characters and "==".  The 4 unused bits of the last character
 * are not required to be zero: the key is hashed as text, never decoded.
 */
static bool
ws_hs_key_valid(const char *key, size_t len)
{
    if (len != WS_HS_KEY_LEN) {
        return false;
    }
    for (size_t i = 0; i < WS_HS_KEY_LEN - 2; i++) {
        if (!ws_hs_is_base64((unsigned char)key[i])) {
            return false;
        }
    }
    return key[22] == '=' && key[23] == '=';
}

/*
 * ws_hs_request_line parses "GET <target> HTTP/x.y" with single spaces
 * (RFC 7230 3.1.1).  Returns 0, or the HTTP status that refuses it.
 */
static int
ws_hs_request_line(const char *line, size_t len, struct ws_hs_request *r)
{
    const char *sp1 = memchr(line, ' ', len);
    const char *target;
    const char *sp2;
    const char *version;
    size_t method_len;
    size_t target_len;
    size_t version_len;
    int major;
    int minor;

    if (sp1 == NULL || sp1 == line) {
        return 400;
    }
    method_len = (size_t)(sp1 - line);
    for (size_t i = 0; i < method_len; i++) {
        if (!ws_hs_is_tchar((unsigned char)line[i])) {
            return 400;
        }
    }

    target = sp1 + 1;
    sp2 = memchr(target, ' ', len - method_len - 1);
    if (sp2 == NULL || sp2 == target) {
        return 400;
    }
    target_len = (size_t)(sp2 - target);
    for (size_t i = 0; i < target_len; i++) {
        unsigned char c = (unsigned char)target[i];

        /* A target is visible ASCII; clients percent-encode the rest. */
        if (c <= 0x20 || c >= 0x7F) {
            return 400;
        }
    }

    version = sp2 + 1;
    version_len = len - (size_t)(version - line);
    if (version_len != 8 || memcmp(version, "HTTP/", 5) != 0
        || version[5] < '0' || version[5] > '9' || version[6] != '.'
        || version[7] < '0' || version[7] > '9') {
        return 400;
    }
    major = version[5] - '0';
    minor = version[7] - '0';
    if (major < 1 || (major == 1 && minor < 1)) {
        return 505;
    }
    if (method_len != 3 || memcmp(line, "GET", 3) != 0) {
        return 405;
    }

    r->target = target;
    r->target_len = target_len;
    return 0;
}

/*
 * ws_hs_header_line parses one "name: value" line and records what the
 * handshake needs.  Returns 0, or 400 for a malformed line.  Whitespace
 * before the colon and obsolete line folding (a line starting with
 * whitespace) make the name invalid, which RFC 7230 3.2.4 lets a server
 * refuse with 400.
 */
static int
ws_hs_header_line(const char *line, size_t len, struct ws_hs_request *r,
                  struct ws_hs_scan *s)
{
    const char *colon = memchr(line, ':', len);
    const char *value;
    size_t name_len;
    size_t value_len;

    if (colon == NULL || colon == line) {
        return 400;
    }
    name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++) {
        if (!ws_hs_is_tchar((unsigned char)line[i])) {
            return 400;
        }
    }
    value = colon + 1;
    value_len = len - name_len - 1;
    for (size_t i = 0; i < value_len; i++) {
        if (!ws_hs_is_field_char((unsigned char)value[i])) {
            return 400;
        }
    }
    ws_hs_trim(&value, &value_len);

    if (ws_hs_eq_nocase(line, name_len, "host")) {
        s->host_count++;
        r->host = value;
        r->host_len = value_len;
    } else if (ws_hs_eq_nocase(line, name_len, "upgrade")) {
        if (ws_hs_list_has(value, value_len, "websocket")) {
            s->upgrade_ok = true;
        }
    } else if (ws_hs_eq_nocase(line, name_len, "connection")) {
        if (ws_hs_list_has(value, value_len, "upgrade")) {
            s->connection_ok = true;
        }
    } else if (ws_hs_eq_nocase(line, name_len, "sec-websocket-version")) {
        s->version_seen = true;
        if (value_len != 2 || memcmp(value, "13", 2) != 0) {
            s->version_bad = true;
        }
    } else if (ws_hs_eq_nocase(line, name_len, "sec-websocket-key")) {
        s->key_count++;
        r->key = value;
        r->key_len = value_len;
    } else if (ws_hs_eq_nocase(line, name_len, "origin")) {
        if (r->origin == NULL) {
            r->origin = value;
            r->origin_len = value_len;
        }
    } else if (ws_hs_eq_nocase(line, name_len, "sec-websocket-protocol")) {
        if (r->protocols == NULL) {
            r->protocols = value;
            r->protocols_len = value_len;
        }
        if (r->n_protocol_lines == WS_HS_PROTOCOL_LINES_MAX) {
            return 400;
        }
        r->protocol_lines[r->n_protocol_lines] = value;
        r->protocol_line_lens[r->n_protocol_lines] = value_len;
        r->n_protocol_lines++;
    } else if (ws_hs_eq_nocase(line, name_len, "sec-websocket-extensions")) {
        if (r->extensions == NULL) {
            r->extensions = value;
            r->extensions_len = value_len;
        }
        if (r->n_extension_lines == WS_HS_EXTENSION_LINES_MAX) {
            return 400;
        }
        r->extension_lines[r->n_extension_lines] = value;
        r->extension_line_lens[r->n_extension_lines] = value_len;
        r->n_extension_lines++;
    }
    return 0;
}

/*
 * ws_hs_finish judges the complete request.  A plain HTTP request, as a
 * browser sends when someone opens the URL, gets 426 before the key is
 * looked at, since "this is a WebSocket endpoint" is the useful answer.
 */
static int
ws_hs_finish(const struct ws_hs_request *r, const struct ws_hs_scan *s)
{
    if (s->host_count != 1 || !ws_hs_host_valid(r->host, r->host_len)) {
        return 400;
    }
    if (!s->upgrade_ok || !s->connection_ok) {
        return 426;
    }
    if (!s->version_seen || s->version_bad) {
        return 426;
    }
    if (s->key_count != 1 || !ws_hs_key_valid(r->key, r->key_len)) {
        return 400;
    }
    return 0;
}

enum ws_hs
ws_handshake_parse(const char *buf, size_t len, size_t max_len,
                   struct ws_hs_request *req, int *http_status,
                   size_t *consumed)
{
    struct ws_hs_request r = {0};
    struct ws_hs_scan scan = {0};
    size_t limit = len < max_len ? len : max_len;
    size_t pos = 0;
    bool have_request_line = false;

    for (;;) {
        const char *nl = NULL;
        size_t end;
        size_t next;
        int status;

        if (pos < limit) {
            nl = memchr(buf + pos, '\n', limit - pos);
        }
        if (nl == NULL) {
            /* Without the end in the first max_len bytes it never fits. */
            if (len >= max_len) {
                *http_status = 431;
                return WS_HS_ERROR;
            }
            return WS_HS_MORE;
        }
        next = (size_t)(nl - buf) + 1;
        end = next - 1;
        if (end > pos && buf[end - 1] == '\r') {
            end--;
        }

        if (end == pos) {
            if (!have_request_line) {
                pos = next;
                continue;
            }
            status = ws_hs_finish(&r, &scan);
            if (status != 0) {
                *http_status = status;
                return WS_HS_ERROR;
            }
            *req = r;
            *consumed = next;
            return WS_HS_OK;
        }

        if (!have_request_line) {
            status = ws_hs_request_line(buf + pos, end - pos, &r);
            have_request_line = true;
        } else {
            status = ws_hs_header_line(buf + pos, end - pos, &r, &scan);
        }
        if (status != 0) {
            *http_status = status;
            return WS_HS_ERROR;
        }
        pos = next;
    }
}

bool
ws_target_split(const char *target, size_t len, const char **path,
                size_t *path_len, const char **query, size_t *query_len)
{
    const char *qmark;

    if (len == 0 || target[0] != '/' || memchr(target, '#', len) != NULL) {
        return false;
    }
    qmark = memchr(target, '?', len);
    *path = target;
    if (qmark == NULL) {
        *path_len = len;
        *query = NULL;
        *query_len = 0;
        return true;
    }
    *path_len = (size_t)(qmark - target);
    *query = qmark + 1;
    *query_len = len - *path_len - 1;
    return true;
}

void
ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1])
{
    /* Concatenated on the stack: EVP_Digest takes one contiguous input. */
    unsigned char text[WS_KEY_MAX_LEN + WS_HS_GUID_LEN];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    out[0] = '\0';
    if (key_len > WS_KEY_MAX_LEN) {
        return;
    }
    if (key_len > 0) {
        memcpy(text, key, key_len);
    }
    memcpy(text + key_len, ws_hs_guid, WS_HS_GUID_LEN);
    if (EVP_Digest(text, key_len + WS_HS_GUID_LEN, md, &md_len, EVP_sha1(),
                   NULL) != 1
        || md_len != WS_HS_SHA1_LEN) {
        return;
    }
    /* Writes 4 characters per 3 bytes, 28 in all, then a NUL. */
    EVP_EncodeBlock((unsigned char *)out, md, WS_HS_SHA1_LEN);
}

/* ws_hs_put appends n bytes, or marks the output overflowed. */
static void
ws_hs_put(struct ws_hs_out *o, const char *s, size_t n)
{
    if (o->overflow || o->size - o->len < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* ws_hs_puts appends a NUL-terminated string. */
static void
ws_hs_puts(struct ws_hs_out *o, const char *s)
{
    ws_hs_put(o, s, strlen(s));
}

/* ws_hs_put_uint appends n in decimal. */
static void
ws_hs_put_uint(struct ws_hs_out *o, size_t n)
{
    char digits[24];
    size_t i = sizeof(digits);

    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    ws_hs_put(o, digits + i, sizeof(digits) - i);
}

/*
 * ws_hs_finish_out terminates the output with a NUL and returns its length,
 * or 0 if it did not fit.
 */
static size_t
ws_hs_finish_out(struct ws_hs_out *o)
{
    ws_hs_put(o, "", 1);
    if (o->overflow) {
        return 0;
    }
    return o->len - 1;
}

/* ws_hs_value_safe tells whether s can go into a header value as is. */
static bool
ws_hs_value_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!ws_hs_is_field_char((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

size_t
ws_handshake_accept(char *out, size_t out_size, const char *key,
                    size_t key_len, const char *protocol,
                    const char *extensions)
{
    struct ws_hs_out o = { out, out_size, 0, false };
    char accept[WS_ACCEPT_LEN + 1];

    if ((protocol != NULL && !ws_hs_value_safe(protocol))
        || (extensions != NULL && !ws_hs_value_safe(extensions))) {
        return 0;
    }
    ws_accept_key(key, key_len, accept);
    if (accept[0] == '\0') {
        return 0;
    }

    ws_hs_puts(&o, "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: ");
    ws_hs_put(&o, accept, WS_ACCEPT_LEN);
    ws_hs_puts(&o, "\r\n");
    if (protocol != NULL) {
        ws_hs_puts(&o, "Sec-WebSocket-Protocol: ");
        ws_hs_puts(&o, protocol);
        ws_hs_puts(&o, "\r\n");
    }
    if (extensions != NULL) {
        ws_hs_puts(&o, "Sec-WebSocket-Extensions: ");
        ws_hs_puts(&o, extensions);
        ws_hs_puts(&o, "\r\n");
    }
    ws_hs_puts(&o, "\r\n");
    return ws_hs_finish_out(&o);
}

/* ws_hs_reason gives the reason phrase of a status, or NULL if unknown. */
static const char *
ws_hs_reason(int http_status)
{
    switch (http_status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return NULL;
    }
}

size_t
ws_handshake_reject(char *out, size_t out_size, int http_status)
{
    return ws_handshake_reject_full(out, out_size, http_status, NULL, 0);
}

size_t
ws_handshake_reject_why(char *out, size_t out_size, int http_status,
                        const char *why)
{
    return ws_handshake_reject_full(out, out_size, http_status, why, 0);
}

size_t
ws_handshake_reject_retry(char *out, size_t out_size, int http_status,
                          unsigned retry_after_s)
{
    return ws_handshake_reject_full(out, out_size, http_status, NULL,
                                    retry_after_s);
}

size_t
ws_handshake_reject_full(char *out, size_t out_size, int http_status,
                         const char *why, unsigned retry_after_s)
{
    struct ws_hs_out o = { out, out_size, 0, false };
    const char *reason = ws_hs_reason(http_status);
    size_t reason_len;
    size_t why_len = 0;

    if (reason == NULL || (why != NULL && !ws_hs_value_safe(why))) {
        return 0;
    }
    reason_len = strlen(reason);
    if (why != NULL) {
        why_len = strlen(why);
    }

    ws_hs_puts(&o, "HTTP/1.1 ");
    ws_hs_put_uint(&o, (size_t)http_status);
    ws_hs_puts(&o, " ");
    ws_hs_put(&o, reason, reason_len);
    ws_hs_puts(&o, "\r\n");
    if (http_status == 426) {
        /* RFC 7231 6.5.15 wants Upgrade, RFC 6455 4.4 the version. */
        ws_hs_puts(&o, "Connection: Upgrade, close\r\n"
                       "Upgrade: websocket\r\n"
                       "Sec-WebSocket-Version: 13\r\n");
    } else {
        ws_hs_puts(&o, "Connection: close\r\n");
    }
    if (http_status == 405) {
        /* RFC 7231 6.5.5: a 405 lists the methods that would work. */
        ws_hs_puts(&o, "Allow: GET\r\n");
    }
    if (retry_after_s > 0) {
        /* RFC 7231 7.1.3: delay-seconds, for a 429 or a 503. */
        ws_hs_puts(&o, "Retry-After: ");
        ws_hs_put_uint(&o, retry_after_s);
        ws_hs_puts(&o, "\r\n");
    }
    ws_hs_puts(&o, "Content-Type: text/plain\r\nContent-Length: ");
    ws_hs_put_uint(&o, reason_len + (why != NULL ? 2 + why_len : 0) + 1);
    ws_hs_puts(&o, "\r\n\r\n");
    ws_hs_put(&o, reason, reason_len);
    if (why != NULL) {
        ws_hs_puts(&o, ": ");
        ws_hs_put(&o, why, why_len);
    }
    ws_hs_puts(&o, "\n");
    return ws_hs_finish_out(&o);
}
