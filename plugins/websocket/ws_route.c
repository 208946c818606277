/*
 * Options that may differ by route.  Routes are the core's ([route.NAME]);
 * the plugin sees only its own section, so a per-route setting is a key of
 * [transport.websocket] in one of two forms:
 *
 *     KEY = VALUE              the default of every route
 *     route.NAME.KEY = VALUE   route NAME's own value
 *
 * A route's own value wins whichever comes first in the file.  A route
 * form of a transport-wide key (route.chat.listen) is a config error.
 * The keys:
 *
 * max_message_bytes = 1048576
 *     Largest message a client may send, counted across its fragments.  A
 *     larger one is refused with close code 1009 as soon as its running
 *     size goes over, before it is buffered.
 *
 * max_output_bytes = 16777216
 *     Unsent output a connection may queue.  A client that reads slower
 *     than it is sent to and goes over is closed with 1013 (try again
 *     later): see ws_write.c.
 *
 * ping_interval_ms = 30000
 *     A connection that has sent nothing for this long gets a ping; 0
 *     turns keepalive off.  Any input counts, not just pongs.
 *
 * pong_timeout_ms = 10000
 *     How long the peer has to send anything after that ping before the
 *     connection is dropped without a close handshake (reported as 1006):
 *     a peer that cannot answer a ping cannot answer a close frame either.
 *
 * subprotocols =
 *     Comma-separated Sec-WebSocket-Protocol values the route speaks, in
 *     the server's order of preference: of those the client offers, the
 *     first in this list is chosen and answered in the 101.  The server
 *     decides because it knows which version of its protocol is current;
 *     a client lists what it can speak.  Empty: none is chosen.
 *
 * subprotocol_required = no
 *     Refuse with 400 a request that offers none of subprotocols, instead
 *     of upgrading it without one.  Needs a non-empty subprotocols.
 *
 * allowed_origins = *
 *     Comma-separated origins (scheme://host[:port], matched ignoring
 *     case) whose pages may connect; another Origin gets 403.  "*" allows
 *     every origin.  The default is "*" because the transport itself holds
 *     no credentials: a page elsewhere gains nothing a script could not do
 *     directly, unless a class trusts cookies, and such a route must list
 *     its origins.
 *
 * origin_required = no
 *     Refuse with 403 a request without Origin.  Browsers always send one;
 *     other clients usually do not, so the default lets them in.
 *
 * compression, compression_threshold, compression_level,
 * compression_context_takeover, compression_max_window_bits
 *     permessage-deflate: see ws_deflate_config.c.
 */
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Limits on lists, which are copied per route and scanned per upgrade. */
#define WS_ROUTE_LIST_MAX 32
#define WS_ROUTE_SUBPROTOCOL_MAX 64
#define WS_ROUTE_ORIGIN_MAX 255
#define WS_ROUTE_NAME_MAX 64

enum ws_route_kind {
    WS_RK_SIZE,         /* size_t within [min, max] */
    WS_RK_MS,           /* uint64_t, 0 or within [min, max] */
    WS_RK_BOOL,         /* bool: yes/no, true/false, on/off, 1/0 */
    WS_RK_SUBPROTOCOLS, /* struct ws_names of tokens */
    WS_RK_ORIGINS,      /* struct ws_names of origins, or "*" */
    WS_RK_DEFLATE       /* a member of struct ws_deflate_config */
};

struct ws_route_key {
    const char *name;
    enum ws_route_kind kind;
    size_t offset;
    uint64_t min;
    uint64_t max;
};

/* clang-format off */
#define WS_RK(name, kind, min, max) \
    { #name, kind, offsetof(struct ws_route_opts, name), min, max }
#define WS_RK_Z(key) \
    { key, WS_RK_DEFLATE, offsetof(struct ws_route_opts, deflate), 0, 0 }
/* clang-format on */

static const struct ws_route_key ws_route_keys[] = {
    WS_RK(max_message_bytes, WS_RK_SIZE, 1, UINT64_C(1) << 30),
    WS_RK(max_output_bytes, WS_RK_SIZE, 1, UINT64_C(1) << 40),
    WS_RK(ping_interval_ms, WS_RK_MS, 100, 86400000),
    WS_RK(pong_timeout_ms, WS_RK_MS, 100, 3600000),
    WS_RK(subprotocols, WS_RK_SUBPROTOCOLS, 0, 0),
    WS_RK(subprotocol_required, WS_RK_BOOL, 0, 0),
    WS_RK(allowed_origins, WS_RK_ORIGINS, 0, 0),
    WS_RK(origin_required, WS_RK_BOOL, 0, 0),
    /* Parsed, with their ranges, in ws_deflate_config.c. */
    WS_RK_Z("compression"),
    WS_RK_Z("compression_threshold"),
    WS_RK_Z("compression_level"),
    WS_RK_Z("compression_context_takeover"),
    WS_RK_Z("compression_max_window_bits"),
};

#define WS_ROUTE_NKEYS (sizeof(ws_route_keys) / sizeof(ws_route_keys[0]))

_Static_assert(WS_ROUTE_NKEYS <= 64, "ws_route_opts.set has 64 bits");

static void
ws_route_why(char *why, size_t why_size, const char *text)
{
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "%s", text);
    }
}

static char
ws_route_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* ws_route_is_tchar: a token character of RFC 7230 3.2.6. */
static bool
ws_route_is_tchar(char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
        || (ch >= '0' && ch <= '9')) {
        return true;
    }
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static void
ws_route_names_free(struct ws_names *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
    l->any = false;
}

static torpor_err
ws_route_names_copy(struct ws_names *dst, const struct ws_names *src)
{
    struct ws_names out = {NULL, 0, src->any};

    if (src->n > 0) {
        out.items = calloc(src->n, sizeof(*out.items));
        if (out.items == NULL) {
            return TORPOR_ENOMEM;
        }
    }
    for (; out.n < src->n; out.n++) {
        out.items[out.n] = strdup(src->items[out.n]);
        if (out.items[out.n] == NULL) {
            ws_route_names_free(&out);
            return TORPOR_ENOMEM;
        }
    }
    *dst = out;
    return TORPOR_OK;
}

/* ws_route_is_host_char: what a host name or an IPv4 address holds. */
static bool
ws_route_is_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
           || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
}

/*
 * ws_route_origin_check validates one allowed origin, s[0..len), as a
 * browser serialises it: scheme "://" host, then optionally ":" port, and
 * nothing else.  A path, even "/", is the usual mistake and would never
 * match, so it is refused rather than kept.
 */
static bool
ws_route_origin_check(const char *s, size_t len, char *why, size_t why_size)
{
    const char *end = s + len;
    const char *sep = NULL;
    const char *host;
    const char *host_end;

    for (size_t i = 0; i + 2 < len; i++) {
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
            sep = s + i;
            break;
        }
    }
    if (sep == NULL || sep == s) {
        ws_route_why(why, why_size, "expected SCHEME://HOST[:PORT] or *");
        return false;
    }
    for (const char *p = s; p < sep; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
        bool other =
            (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.';

        if (!alpha && (p == s || !other)) {
            ws_route_why(why, why_size, "bad scheme in origin");
            return false;
        }
    }
    host = sep + 3;
    for (const char *p = host; p < end; p++) {
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@') {
            ws_route_why(
                why, why_size,
                "an origin is SCHEME://HOST[:PORT], without path, query or user");
            return false;
        }
    }
    if (host < end && *host == '[') {
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL || host_end == host + 1) {
            ws_route_why(why, why_size, "bad [IPV6] host in origin");
            return false;
        }
        for (const char *p = host + 1; p < host_end; p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
                  || (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.')) {
                ws_route_why(why, why_size, "bad [IPV6] host in origin");
                return false;
            }
        }
        host_end++;
    } else {
        host_end = host;
        while (host_end < end && ws_route_is_host_char(*host_end)) {
            host_end++;
        }
        if (host_end == host) {
            ws_route_why(why, why_size, "origin without a host");
            return false;
        }
    }
    if (host_end == end) {
        return true;
    }
    if (*host_end != ':' || end - host_end < 2 || end - host_end > 6) {
        ws_route_why(why, why_size, "bad host or port in origin");
        return false;
    }
    for (const char *p = host_end + 1; p < end; p++) {
        if (*p < '0' || *p > '9') {
            ws_route_why(why, why_size, "bad port in origin");
            return false;
        }
    }
    return true;
}

/*
 * ws_route_parse_list parses a comma-separated list into *out, all or
 * nothing.  Subprotocols are tokens; origins are lowercased, which
 * normalises the case of scheme and host (a port has none).
 */
static torpor_err
ws_route_parse_list(const char *value, bool origins, struct ws_names *out,
                    char *why, size_t why_size)
{
    struct ws_names l = {NULL, 0, false};
    size_t max_len = origins ? WS_ROUTE_ORIGIN_MAX : WS_ROUTE_SUBPROTOCOL_MAX;
    const char *p = value;

    l.items = calloc(WS_ROUTE_LIST_MAX, sizeof(*l.items));
    if (l.items == NULL) {
        return TORPOR_ENOMEM;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        bool star;

        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
            len--;
        }
        if (len == 0) {
            /* An empty value is an empty list; an empty element a typo. */
            if (comma == NULL && l.n == 0 && !origins) {
                break;
            }
            ws_route_why(why, why_size,
                         origins ? "expected origins separated by commas, or *"
                                 : "empty element in the list");
            goto bad;
        }
        if (len > max_len) {
            ws_route_why(why, why_size,
                         origins ? "an origin is longer than 255 bytes"
                                 : "a subprotocol is longer than 64 bytes");
            goto bad;
        }
        star = origins && len == 1 && s[0] == '*';
        if (star) {
            l.any = true;
        } else if (origins) {
            if (!ws_route_origin_check(s, len, why, why_size)) {
                goto bad;
            }
        } else {
            for (size_t i = 0; i < len; i++) {
                if (!ws_route_is_tchar(s[i])) {
                    ws_route_why(
                        why, why_size,
                        "a subprotocol is a token: letters, digits and !#$%&'*+-.^_`|~");
                    goto bad;
                }
            }
        }
        if (!star) {
            if (l.n == WS_ROUTE_LIST_MAX) {
                ws_route_why(why, why_size, "at most 32 elements");
                goto bad;
            }
            l.items[l.n] = strndup(s, len);
            if (l.items[l.n] == NULL) {
                ws_route_names_free(&l);
                return TORPOR_ENOMEM;
            }
            if (origins) {
                for (char *q = l.items[l.n]; *q != '\0'; q++) {
                    *q = ws_route_lower(*q);
                }
            }
            l.n++;
        }
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    if (l.any && l.n > 0) {
        ws_route_why(why, why_size,
                     "\"*\" allows every origin: list origins or *, not both");
        goto bad;
    }
    if (l.n == 0) {
        free(l.items);
        l.items = NULL;
    }
    *out = l;
    return TORPOR_OK;

bad:
    ws_route_names_free(&l);
    return TORPOR_EINVAL;
}

static torpor_err
ws_route_parse_uint(const char *value, uint64_t min, uint64_t max, bool zero_ok,
                    uint64_t *out, char *why, size_t why_size)
{
    unsigned long long v;
    char *end;

    if (value[0] >= '0' && value[0] <= '9') {
        errno = 0;
        v = strtoull(value, &end, 10);
        if (errno == 0 && *end == '\0'
            && ((v >= min && v <= max) || (zero_ok && v == 0))) {
            *out = v;
            return TORPOR_OK;
        }
    }
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "expected an integer from %llu to %llu%s",
                 (unsigned long long)min, (unsigned long long)max,
                 zero_ok ? ", or 0 for off" : "");
    }
    return TORPOR_EINVAL;
}

static torpor_err
ws_route_parse_bool(const char *value, bool *out, char *why, size_t why_size)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return TORPOR_OK;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return TORPOR_OK;
        }
    }
    ws_route_why(why, why_size, "expected yes or no");
    return TORPOR_EINVAL;
}

/* ws_route_apply parses value into opts's member for key k. */
static torpor_err
ws_route_apply(struct ws_route_opts *opts, const struct ws_route_key *k,
               const char *value, char *why, size_t why_size)
{
    void *field = (char *)opts + k->offset;
    struct ws_names list;
    uint64_t v;
    torpor_err err;

    switch (k->kind) {
    case WS_RK_SIZE:
    case WS_RK_MS:
        err = ws_route_parse_uint(value, k->min, k->max, k->kind == WS_RK_MS,
                                  &v, why, why_size);
        if (err != TORPOR_OK) {
            return err;
        }
        if (k->kind == WS_RK_SIZE) {
            *(size_t *)field = (size_t)v;
        } else {
            *(uint64_t *)field = v;
        }
        return TORPOR_OK;
    case WS_RK_BOOL:
        return ws_route_parse_bool(value, field, why, why_size);
    case WS_RK_SUBPROTOCOLS:
    case WS_RK_ORIGINS:
        err = ws_route_parse_list(value, k->kind == WS_RK_ORIGINS, &list, why,
                                  why_size);
        if (err == TORPOR_OK) {
            ws_route_names_free(field);
            *(struct ws_names *)field = list;
        }
        return err;
    case WS_RK_DEFLATE:
        return ws_deflate_config_set(field, k->name, value, why, why_size);
    default:
        return TORPOR_EINVAL;
    }
}

/* ws_route_inherit copies key k's value from the defaults into opts. */
static torpor_err
ws_route_inherit(struct ws_route_opts *opts, const struct ws_route_opts *def,
                 const struct ws_route_key *k)
{
    void *dst = (char *)opts + k->offset;
    const void *src = (const char *)def + k->offset;

    switch (k->kind) {
    case WS_RK_SIZE:
        memcpy(dst, src, sizeof(size_t));
        return TORPOR_OK;
    case WS_RK_MS:
        memcpy(dst, src, sizeof(uint64_t));
        return TORPOR_OK;
    case WS_RK_BOOL:
        memcpy(dst, src, sizeof(bool));
        return TORPOR_OK;
    case WS_RK_SUBPROTOCOLS:
    case WS_RK_ORIGINS:
        ws_route_names_free(dst);
        return ws_route_names_copy(dst, src);
    case WS_RK_DEFLATE:
        ws_deflate_config_copy_key(dst, src, k->name);
        return TORPOR_OK;
    default:
        return TORPOR_EINVAL;
    }
}

static void
ws_route_opts_free(struct ws_route_opts *opts)
{
    if (opts == NULL) {
        return;
    }
    for (size_t i = 0; i < WS_ROUTE_NKEYS; i++) {
        const struct ws_route_key *k = &ws_route_keys[i];

        if (k->kind == WS_RK_SUBPROTOCOLS || k->kind == WS_RK_ORIGINS) {
            ws_route_names_free((void *)((char *)opts + k->offset));
        }
    }
    free(opts->name);
    free(opts);
}

torpor_err
ws_route_init(struct ws_state *ws)
{
    struct ws_route_opts *def = calloc(1, sizeof(*def));

    if (def == NULL) {
        return TORPOR_ENOMEM;
    }
    def->max_message_bytes = 1048576;
    def->max_output_bytes = 16777216;
    def->ping_interval_ms = 30000;
    def->pong_timeout_ms = 10000;
    def->allowed_origins.any = true;
    ws_deflate_config_defaults(&def->deflate);
    ws->routes[0] = def;
    ws->n_routes = 1;
    return TORPOR_OK;
}

static const struct ws_route_key *
ws_route_key_named(const char *name, size_t *index)
{
    for (size_t i = 0; i < WS_ROUTE_NKEYS; i++) {
        if (strcmp(ws_route_keys[i].name, name) == 0) {
            *index = i;
            return &ws_route_keys[i];
        }
    }
    return NULL;
}

/* ws_route_named finds or makes the options of route name[0..len). */
static torpor_err
ws_route_named(struct ws_state *ws, const char *name, size_t len,
               struct ws_route_opts **out)
{
    struct ws_route_opts *opts;

    for (uint32_t i = 1; i < ws->n_routes; i++) {
        if (strlen(ws->routes[i]->name) == len
            && memcmp(ws->routes[i]->name, name, len) == 0) {
            *out = ws->routes[i];
            return TORPOR_OK;
        }
    }
    if (ws->n_routes > WS_ROUTES_MAX) {
        return TORPOR_ELIMIT;
    }
    opts = calloc(1, sizeof(*opts));
    if (opts == NULL || (opts->name = strndup(name, len)) == NULL) {
        free(opts);
        return TORPOR_ENOMEM;
    }
    opts->index = (uint8_t)ws->n_routes;
    ws->routes[ws->n_routes++] = opts;
    *out = opts;
    return TORPOR_OK;
}

torpor_err
ws_route_set(struct ws_state *ws, const char *key, const char *value, char *why,
             size_t why_size)
{
    const struct ws_route_key *k;
    struct ws_route_opts *opts;
    const char *name;
    const char *dot;
    size_t index;
    torpor_err err;

    if (strncmp(key, "route.", 6) != 0) {
        k = ws_route_key_named(key, &index);
        if (k == NULL) {
            return TORPOR_ENOKEY;
        }
        return ws_route_apply(ws->routes[0], k, value, why, why_size);
    }
    name = key + 6;
    dot = strchr(name, '.');
    if (dot == NULL) {
        return TORPOR_ENOKEY;
    }
    k = ws_route_key_named(dot + 1, &index);
    if (k == NULL) {
        if (ws_config_known(dot + 1)) {
            if (why != NULL && why_size > 0) {
                snprintf(
                    why, why_size,
                    "\"%s\" applies to the whole transport and cannot be set per route",
                    dot + 1);
            }
            return TORPOR_EINVAL;
        }
        return TORPOR_ENOKEY;
    }
    if (dot == name || (size_t)(dot - name) > WS_ROUTE_NAME_MAX) {
        ws_route_why(
            why, why_size,
            "expected route.NAME.KEY with a route name of 1 to 64 letters, digits, '_' or '-'");
        return TORPOR_EINVAL;
    }
    for (const char *p = name; p < dot; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
            ws_route_why(
                why, why_size,
                "expected route.NAME.KEY with a route name of 1 to 64 letters, digits, '_' or '-'");
            return TORPOR_EINVAL;
        }
    }
    err = ws_route_named(ws, name, (size_t)(dot - name), &opts);
    if (err == TORPOR_ELIMIT) {
        ws_route_why(why, why_size,
                     "at most 255 routes may have settings of their own");
        return TORPOR_EINVAL;
    }
    if (err != TORPOR_OK) {
        return err;
    }
    err = ws_route_apply(opts, k, value, why, why_size);
    if (err == TORPOR_OK) {
        opts->set |= UINT64_C(1) << index;
    }
    return err;
}

/*
 * ws_route_key_of writes to key the name by which opts's own setting
 * key_name is written in the config: KEY for the defaults,
 * route.NAME.KEY for a route.
 */
static void
ws_route_key_of(const struct ws_route_opts *opts, const char *key_name,
                char *key, size_t key_size)
{
    if (opts->name == NULL) {
        snprintf(key, key_size, "%s", key_name);
    } else {
        snprintf(key, key_size, "route.%s.%s", opts->name, key_name);
    }
}

/* ws_route_sets tells whether opts has its own value of key_name. */
static bool
ws_route_sets(const struct ws_route_opts *opts, const char *key_name)
{
    size_t index;

    return ws_route_key_named(key_name, &index) != NULL
           && (opts->set & (UINT64_C(1) << index)) != 0;
}

/*
 * ws_route_check judges what no single key can: a combination.  Reports
 * each problem; returns whether there was none.
 */
static bool
ws_route_check(const struct ws_route_opts *opts, torpor_config_report report,
               void *ctx)
{
    char key[128];

    if (opts->subprotocol_required && opts->subprotocols.n == 0) {
        /* The route's own key of the two, or the default's. */
        ws_route_key_of(opts,
                        ws_route_sets(opts, "subprotocol_required")
                                || !ws_route_sets(opts, "subprotocols")
                            ? "subprotocol_required"
                            : "subprotocols",
                        key, sizeof(key));
        report(ctx, key,
               "subprotocol_required is set but subprotocols is empty, so every request would be refused");
        return false;
    }
    return true;
}

/* ws_route_known tells whether name is one of the daemon's routes. */
static bool
ws_route_known(const char *name, const char *const *routes, size_t n_routes)
{
    for (size_t i = 0; i < n_routes; i++) {
        if (strcmp(routes[i], name) == 0) {
            return true;
        }
    }
    return false;
}

torpor_err
ws_route_finish(struct ws_state *ws, const char *const *routes,
                size_t n_routes, torpor_config_report report, void *ctx)
{
    const struct ws_route_opts *def = ws->routes[0];
    torpor_err result = TORPOR_OK;
    torpor_err err;

    for (uint32_t i = 1; i < ws->n_routes; i++) {
        struct ws_route_opts *opts = ws->routes[i];
        const char *first = NULL;
        char own[256] = "";
        char key[128];

        for (size_t j = 0; j < WS_ROUTE_NKEYS; j++) {
            if ((opts->set & (UINT64_C(1) << j)) != 0) {
                size_t used = strlen(own);

                snprintf(own + used, sizeof(own) - used, "%s%s",
                         used > 0 ? ", " : "", ws_route_keys[j].name);
                first = first != NULL ? first : ws_route_keys[j].name;
                continue;
            }
            err = ws_route_inherit(opts, def, &ws_route_keys[j]);
            if (err != TORPOR_OK) {
                return err;
            }
        }
        /* A typo in a route's name would leave its settings unused. */
        if (!ws_route_known(opts->name, routes, n_routes)) {
            ws_route_key_of(opts, first != NULL ? first : "", key,
                            sizeof(key));
            report(ctx, key,
                   "no route of that name in the configuration: add a [route.NAME] section, or fix the name");
            result = TORPOR_EINVAL;
            continue;
        }
        if (!ws_route_check(opts, report, ctx)) {
            result = TORPOR_EINVAL;
            continue;
        }
        WS_LOG(ws, TORPOR_LOG_NOTICE, NULL, "route \"%s\" has its own %s",
               opts->name, own);
    }
    if (!ws_route_check(def, report, ctx)) {
        result = TORPOR_EINVAL;
    }
    return result;
}

const struct ws_route_opts *
ws_route_opts_for(const struct ws_state *ws, const torpor_bytes *route)
{
    for (uint32_t i = 1; i < ws->n_routes; i++) {
        const char *name = ws->routes[i]->name;

        if (strlen(name) == route->len
            && memcmp(name, route->data, route->len) == 0) {
            return ws->routes[i];
        }
    }
    return ws->routes[0];
}

/*
 * ws_route_offered tells whether the comma-separated list s[0..len) holds
 * token exactly.  Subprotocols compare case-sensitively: a browser checks
 * the server's answer against what it sent byte for byte.
 */
static bool
ws_route_offered(const char *s, size_t len, const char *token)
{
    size_t token_len = strlen(token);
    size_t start = 0;

    while (start <= len) {
        const char *comma = memchr(s + start, ',', len - start);
        size_t end = comma != NULL ? (size_t)(comma - s) : len;
        const char *elem = s + start;
        size_t elem_len = end - start;

        while (elem_len > 0 && (*elem == ' ' || *elem == '\t')) {
            elem++;
            elem_len--;
        }
        while (elem_len > 0
               && (elem[elem_len - 1] == ' ' || elem[elem_len - 1] == '\t')) {
            elem_len--;
        }
        if (elem_len == token_len && memcmp(elem, token, token_len) == 0) {
            return true;
        }
        start = end + 1;
    }
    return false;
}

const char *
ws_route_pick_subprotocol(const struct ws_route_opts *opts,
                          const char *const *offered, const size_t *lens,
                          size_t n)
{
    for (uint32_t i = 0; i < opts->subprotocols.n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (ws_route_offered(offered[j], lens[j],
                                 opts->subprotocols.items[i])) {
                return opts->subprotocols.items[i];
            }
        }
    }
    return NULL;
}

bool
ws_route_origin_allowed(const struct ws_route_opts *opts, const char *origin,
                        size_t len)
{
    if (opts->allowed_origins.any) {
        return true;
    }
    for (uint32_t i = 0; i < opts->allowed_origins.n; i++) {
        const char *allowed = opts->allowed_origins.items[i];
        size_t j = 0;

        if (strlen(allowed) != len) {
            continue;
        }
        while (j < len && ws_route_lower(origin[j]) == allowed[j]) {
            j++;
        }
        if (j == len) {
            return true;
        }
    }
    return false;
}

void
ws_route_free_all(struct ws_state *ws)
{
    for (uint32_t i = 0; i < ws->n_routes; i++) {
        ws_route_opts_free(ws->routes[i]);
        ws->routes[i] = NULL;
    }
    ws->n_routes = 0;
}
