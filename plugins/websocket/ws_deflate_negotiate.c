/*
 * permessage-deflate negotiation: reading Sec-WebSocket-Extensions (RFC
 * 6455 9.1) and answering the first offer we can take (RFC 7692 5 and
 * 7.1).  See ws_deflate_negotiate in ws_deflate.h.
 *
 * The grammar, with the implied whitespace of RFC 2616 that RFC 6455
 * inherits:
 *
 *   extension-list = 1#extension
 *   extension      = token *( ";" extension-param )
 *   extension-param = token [ "=" ( token | quoted-string ) ]
 *
 * where a quoted value must still be a token once unescaped.  Each header
 * line is a list of its own: an element never spans two lines.
 */
#include "ws_deflate.h"

#include <stdio.h>
#include <string.h>

#define WS_DEFLATE_NAME "permessage-deflate"

/* Unescaped bytes of a parameter value kept to judge it; ours need 2. */
#define WS_DEFLATE_VALUE_MAX 8

/* A cursor over one header line. */
struct ws_neg_cursor {
    const char *s;
    size_t len;
    size_t pos;
};

/* One parameter as parsed. */
struct ws_neg_param {
    const char *name;
    size_t name_len;
    bool has_value;
    char value[WS_DEFLATE_VALUE_MAX];
    size_t value_len; /* unescaped length; may exceed what value keeps */
};

/* A permessage-deflate offer as parsed, before it is judged. */
struct ws_neg_offer {
    bool declined; /* broke a rule of RFC 7692 5 */
    bool server_no_takeover;
    bool client_no_takeover;
    bool server_bits_seen;
    bool client_bits_seen;
    uint8_t server_bits;
    uint8_t client_bits; /* 0: the parameter came without a value */
};

static bool
ws_neg_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static unsigned char
ws_neg_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ws_neg_eq compares s[0..len) with the lowercase literal, ignoring case. */
static bool
ws_neg_eq(const char *s, size_t len, const char *lit)
{
    if (len != strlen(lit)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (ws_neg_lower((unsigned char)s[i]) != (unsigned char)lit[i]) {
            return false;
        }
    }
    return true;
}

static void
ws_neg_skip_ows(struct ws_neg_cursor *c)
{
    while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t')) {
        c->pos++;
    }
}

static bool
ws_neg_peek(const struct ws_neg_cursor *c, char ch)
{
    return c->pos < c->len && c->s[c->pos] == ch;
}

/* ws_neg_token reads 1*tchar; false if there is none. */
static bool
ws_neg_token(struct ws_neg_cursor *c, const char **tok, size_t *tok_len)
{
    size_t start = c->pos;

    while (c->pos < c->len && ws_neg_is_tchar((unsigned char)c->s[c->pos])) {
        c->pos++;
    }
    *tok = c->s + start;
    *tok_len = c->pos - start;
    return *tok_len > 0;
}

/* ws_neg_keep appends one unescaped value byte to p, as far as it fits. */
static void
ws_neg_keep(struct ws_neg_param *p, char ch)
{
    if (p->value_len < sizeof(p->value)) {
        p->value[p->value_len] = ch;
    }
    p->value_len++;
}

/*
 * ws_neg_quoted reads a quoted-string (RFC 7230 3.2.6) whose unescaped
 * content must be a non-empty token, as RFC 6455 9.1 requires.
 */
static bool
ws_neg_quoted(struct ws_neg_cursor *c, struct ws_neg_param *p)
{
    c->pos++; /* the opening quote */
    while (c->pos < c->len) {
        unsigned char ch = (unsigned char)c->s[c->pos++];

        if (ch == '"') {
            return p->value_len > 0;
        }
        if (ch == '\\') {
            if (c->pos == c->len) {
                return false;
            }
            ch = (unsigned char)c->s[c->pos++];
        }
        if (!ws_neg_is_tchar(ch)) {
            return false;
        }
        ws_neg_keep(p, (char)ch);
    }
    return false; /* no closing quote */
}

/* ws_neg_param reads one extension-param after its ';'. */
static bool
ws_neg_param(struct ws_neg_cursor *c, struct ws_neg_param *p)
{
    const char *value;
    size_t value_len;

    memset(p, 0, sizeof(*p));
    ws_neg_skip_ows(c);
    if (!ws_neg_token(c, &p->name, &p->name_len)) {
        return false;
    }
    ws_neg_skip_ows(c);
    if (!ws_neg_peek(c, '=')) {
        return true;
    }
    c->pos++;
    ws_neg_skip_ows(c);
    p->has_value = true;
    if (ws_neg_peek(c, '"')) {
        return ws_neg_quoted(c, p);
    }
    if (!ws_neg_token(c, &value, &value_len)) {
        return false;
    }
    for (size_t i = 0; i < value_len; i++) {
        ws_neg_keep(p, value[i]);
    }
    return true;
}

/*
 * ws_neg_bits reads a window size: a decimal from min to 15 without
 * leading zeros (RFC 7692 7.1.2).  0 if the value is not one.
 */
static uint8_t
ws_neg_bits(const struct ws_neg_param *p, unsigned min)
{
    unsigned v;

    if (p->value_len == 1 && p->value[0] >= '8' && p->value[0] <= '9') {
        v = (unsigned)(p->value[0] - '0');
    } else if (p->value_len == 2 && p->value[0] == '1' && p->value[1] >= '0'
               && p->value[1] <= '5') {
        v = 10 + (unsigned)(p->value[1] - '0');
    } else {
        return 0;
    }
    return v >= min ? (uint8_t)v : 0;
}

/*
 * ws_neg_take records one parameter of a permessage-deflate offer.  A
 * parameter we do not know, a repeated one or a bad value declines the
 * offer (RFC 7692 5), which is not an error in the header.
 */
static void
ws_neg_take(struct ws_neg_offer *o, const struct ws_neg_param *p)
{
    bool *seen;

    if (ws_neg_eq(p->name, p->name_len, "server_no_context_takeover")) {
        seen = &o->server_no_takeover;
        o->declined |= p->has_value;
    } else if (ws_neg_eq(p->name, p->name_len, "client_no_context_takeover")) {
        seen = &o->client_no_takeover;
        o->declined |= p->has_value;
    } else if (ws_neg_eq(p->name, p->name_len, "server_max_window_bits")) {
        seen = &o->server_bits_seen;
        /* Required to have a value; 8 is valid but declined below. */
        o->server_bits = p->has_value ? ws_neg_bits(p, 8) : 0;
        o->declined |= o->server_bits == 0;
    } else if (ws_neg_eq(p->name, p->name_len, "client_max_window_bits")) {
        seen = &o->client_bits_seen;
        o->client_bits = p->has_value ? ws_neg_bits(p, 8) : 0;
        o->declined |= p->has_value && o->client_bits == 0;
    } else {
        o->declined = true;
        return;
    }
    o->declined |= *seen;
    *seen = true;
}

/*
 * ws_neg_answer decides what to agree to for an acceptable offer and
 * writes the response.  False if the offer asks what we cannot do.
 */
static bool
ws_neg_answer(const struct ws_deflate_config *cfg, const struct ws_neg_offer *o,
              struct ws_deflate_params *params,
              char response[WS_DEFLATE_RESPONSE_MAX])
{
    struct ws_deflate_params p;
    int n;

    if (o->server_bits_seen && o->server_bits < WS_DEFLATE_SERVER_BITS_MIN) {
        return false;
    }
    p.server_window_bits = cfg->max_window_bits;
    if (o->server_bits_seen && o->server_bits < p.server_window_bits) {
        p.server_window_bits = o->server_bits;
    }
    /* Either side may be told not to take over (RFC 7692 7.1.1). */
    p.server_takeover = cfg->context_takeover && !o->server_no_takeover;
    p.client_takeover = cfg->context_takeover && !o->client_no_takeover;
    /*
     * Without takeover the per-thread inflater has the largest window
     * anyway; with it, a smaller window for the client's context is worth
     * asking for, when the client says it can honour one.
     */
    p.client_window_bits = WS_DEFLATE_BITS_MAX;
    if (p.client_takeover && o->client_bits_seen) {
        p.client_window_bits = cfg->max_window_bits;
        if (o->client_bits != 0 && o->client_bits < p.client_window_bits) {
            p.client_window_bits = o->client_bits;
        }
    }

    n = snprintf(response, WS_DEFLATE_RESPONSE_MAX, "%s%s%s", WS_DEFLATE_NAME,
                 p.server_takeover ? "" : "; server_no_context_takeover",
                 p.client_takeover ? "" : "; client_no_context_takeover");
    if (o->server_bits_seen || p.server_window_bits < WS_DEFLATE_BITS_MAX) {
        n += snprintf(response + n, WS_DEFLATE_RESPONSE_MAX - (size_t)n,
                      "; server_max_window_bits=%u",
                      (unsigned)p.server_window_bits);
    }
    if (p.client_window_bits < WS_DEFLATE_BITS_MAX) {
        n += snprintf(response + n, WS_DEFLATE_RESPONSE_MAX - (size_t)n,
                      "; client_max_window_bits=%u",
                      (unsigned)p.client_window_bits);
    }
    *params = p;
    return true;
}

/*
 * ws_neg_line parses one header line's list.  Returns false if it breaks
 * the grammar; otherwise accepts into *params the first good offer, unless
 * *accepted already is true.
 */
static bool
ws_neg_line(const struct ws_deflate_config *cfg, struct ws_neg_cursor *c,
            bool *accepted, struct ws_deflate_params *params,
            char response[WS_DEFLATE_RESPONSE_MAX])
{
    for (;;) {
        const char *name;
        size_t name_len;
        struct ws_neg_offer offer;
        bool ours;

        ws_neg_skip_ows(c);
        if (ws_neg_peek(c, ',')) {
            /* An empty element (RFC 7230 7) is tolerated. */
            c->pos++;
            continue;
        }
        if (c->pos == c->len) {
            return true;
        }
        if (!ws_neg_token(c, &name, &name_len)) {
            return false;
        }
        ours = ws_neg_eq(name, name_len, WS_DEFLATE_NAME);
        memset(&offer, 0, sizeof(offer));
        ws_neg_skip_ows(c);
        while (ws_neg_peek(c, ';')) {
            struct ws_neg_param p;

            c->pos++;
            if (!ws_neg_param(c, &p)) {
                return false;
            }
            if (ours) {
                ws_neg_take(&offer, &p);
            }
            ws_neg_skip_ows(c);
        }
        if (c->pos < c->len && !ws_neg_peek(c, ',')) {
            return false;
        }
        if (ours && !*accepted && cfg->enabled && !offer.declined) {
            *accepted = ws_neg_answer(cfg, &offer, params, response);
        }
    }
}

enum ws_deflate_result
ws_deflate_negotiate(const struct ws_deflate_config *cfg,
                     const struct ws_deflate_line *lines, size_t n_lines,
                     struct ws_deflate_params *params,
                     char response[WS_DEFLATE_RESPONSE_MAX])
{
    bool accepted = false;

    for (size_t i = 0; i < n_lines; i++) {
        struct ws_neg_cursor c = {lines[i].text, lines[i].len, 0};

        if (!ws_neg_line(cfg, &c, &accepted, params, response)) {
            return WS_DEFLATE_MALFORMED;
        }
    }
    return accepted ? WS_DEFLATE_ACCEPTED : WS_DEFLATE_NONE;
}
