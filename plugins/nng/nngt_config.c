/*
 * The [transport.nng] section of the configuration.  Keys arrive one by
 * one through the configure hook, on the main thread, before start.
 *
 * listen = PATTERN ADDRESS [OPERATIONS]
 * listen.NAME = PATTERN ADDRESS [OPERATIONS]
 *     One address to listen on; list several under different NAMEs (the
 *     config refuses a key given twice).  PATTERN is rep (requests with
 *     replies), pull (requests without replies) or pub (the event
 *     stream).  ADDRESS is tcp://HOST:PORT (port 0 takes a free one; the
 *     "listening on" log line names it) or ipc:///PATH.  OPERATIONS, comma-
 *     separated, are those the address allows: publish, deliver, inspect
 *     and storage_read on rep; publish and deliver on pull; subscribe on
 *     pub, which is also its default.  Nothing is allowed unless listed.
 *
 * max_message_bytes = 1048576
 *     Largest message a request may publish or deliver, and the bound on
 *     a reply's rows and replies; a larger request is dropped by nng.
 *
 * subscriber_queue = 1024
 *     Events queued for each subscriber of a pub address.  A subscriber
 *     that reads slower than rooms produce loses events once its queue is
 *     full; rooms never wait for it.
 */
#include "nngt.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned op;
} nngt_ops[] = {
    {"publish", NNGT_OP_PUBLISH},
    {"deliver", NNGT_OP_DELIVER},
    {"inspect", NNGT_OP_INSPECT},
    {"storage_read", NNGT_OP_STORAGE_READ},
    {"subscribe", NNGT_OP_SUBSCRIBE},
};

#define NNGT_NOPS (sizeof(nngt_ops) / sizeof(nngt_ops[0]))

/* What each pattern may serve. */
#define NNGT_REP_OPS                                                 \
    (NNGT_OP_PUBLISH | NNGT_OP_DELIVER | NNGT_OP_INSPECT                 \
     | NNGT_OP_STORAGE_READ)
#define NNGT_PULL_OPS (NNGT_OP_PUBLISH | NNGT_OP_DELIVER)

void
nngt_config_defaults(struct nngt_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_message_bytes = 1048576;
    cfg->subscriber_queue = 1024;
}

void
nngt_config_free(struct nngt_config *cfg)
{
    for (size_t i = 0; i < cfg->naddrs; i++) {
        free(cfg->addrs[i].key);
        free(cfg->addrs[i].url);
    }
    cfg->naddrs = 0;
}

const char *
nngt_pattern_name(uint8_t pattern)
{
    switch (pattern) {
    case NNGT_REP:
        return "rep";
    case NNGT_PULL:
        return "pull";
    case NNGT_PUB:
        return "pub";
    default:
        return "?";
    }
}

const char *
nngt_ops_text(unsigned ops, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < NNGT_NOPS; i++) {
        if (ops & nngt_ops[i].op) {
            int n = snprintf(buf + used, size - used, "%s%s",
                             used > 0 ? ", " : "", nngt_ops[i].name);
            if (n < 0 || (size_t)n >= size - used) {
                break;
            }
            used += (size_t)n;
        }
    }
    if (used == 0) {
        snprintf(buf, size, "nothing");
    }
    return buf;
}

bool
nngt_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t more;
        uint32_t cp;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= more) {
            return false;
        }
        for (size_t k = 1; k <= more; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += more + 1;
    }
    return true;
}

static torpor_err
nngt_config_why(char *why, size_t why_size, const char *fmt, ...)
    TORPOR_PRINTF(3, 4);

static torpor_err
nngt_config_why(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && why_size > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return TORPOR_EINVAL;
}

static torpor_err
nngt_config_uint(const char *value, uint64_t min, uint64_t max,
                 uint64_t *out, char *why, size_t why_size)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || errno != 0 || *end != '\0'
        || v < min || v > max) {
        return nngt_config_why(why, why_size, "expected an integer from %llu to %llu", (unsigned long long)min, (unsigned long long)max);
    }
    *out = v;
    return TORPOR_OK;
}

/* nngt_port_ok: a decimal port of 1 to 5 digits, at most 65535. */
static bool
nngt_port_ok(const char *port)
{
    size_t len = strlen(port);
    unsigned long v = 0;

    if (len == 0 || len > 5) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (port[i] < '0' || port[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    return v <= 65535;
}

/*
 * nngt_config_url checks an address the way nng will read it, so a bad
 * one is reported with its line, not when torpord starts.
 */
static torpor_err
nngt_config_url(const char *text, char *why, size_t why_size)
{
    nng_url *url;
    torpor_err err = TORPOR_OK;

    if (nng_url_parse(&url, text) != 0) {
        return nngt_config_why(why, why_size, "bad address \"%s\": expected tcp://HOST:PORT or ipc:///PATH", text);
    }
    if (strcmp(url->u_scheme, "tcp") == 0 || strcmp(url->u_scheme, "tcp4") == 0
        || strcmp(url->u_scheme, "tcp6") == 0) {
        if (url->u_hostname[0] == '\0' || !nngt_port_ok(url->u_port)
            || (url->u_path[0] != '\0' && strcmp(url->u_path, "/") != 0)) {
            err = nngt_config_why(why, why_size, "bad address \"%s\": expected tcp://HOST:PORT with a numeric port (0 takes a free one)", text);
        }
    } else if (strcmp(url->u_scheme, "ipc") == 0) {
        if (url->u_path[0] == '\0') {
            err = nngt_config_why(why, why_size, "bad address \"%s\": expected ipc:///PATH with the socket file's path", text);
        }
    } else {
        err = nngt_config_why(why, why_size, "bad address \"%s\": the scheme must be tcp or ipc", text);
    }
    nng_url_free(url);
    return err;
}

/* nngt_config_ops reads "publish, deliver" into *ops. */
static torpor_err
nngt_config_ops(const char *text, unsigned *ops, char *why, size_t why_size)
{
    const char *p = text;

    *ops = 0;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t') {
            p++;
        }
        size_t len = (size_t)(p - start);
        if (len == 0) {
            continue;
        }
        size_t i;
        for (i = 0; i < NNGT_NOPS; i++) {
            if (strlen(nngt_ops[i].name) == len
                && memcmp(nngt_ops[i].name, start, len) == 0) {
                break;
            }
        }
        if (i == NNGT_NOPS) {
            return nngt_config_why(why, why_size, "unknown operation \"%.*s\": expected publish, deliver, inspect, storage_read or subscribe", (int)len, start);
        }
        if (*ops & nngt_ops[i].op) {
            return nngt_config_why(why, why_size, "operation \"%s\" is listed twice", nngt_ops[i].name);
        }
        *ops |= nngt_ops[i].op;
    }
    return TORPOR_OK;
}

/* nngt_config_fits checks ops against what pattern can serve. */
static torpor_err
nngt_config_fits(uint8_t pattern, unsigned ops, char *why, size_t why_size)
{
    char allowed[128];

    switch (pattern) {
    case NNGT_PUB:
        if (ops & ~(unsigned)NNGT_OP_SUBSCRIBE) {
            return nngt_config_why(why, why_size, "a pub address serves only subscribe, not %s", nngt_ops_text(ops & ~(unsigned)NNGT_OP_SUBSCRIBE, allowed, sizeof(allowed)));
        }
        return TORPOR_OK;
    case NNGT_PULL:
        if (ops & (NNGT_OP_INSPECT | NNGT_OP_STORAGE_READ)) {
            return nngt_config_why(why, why_size, "%s needs a reply, which pull does not send: list it on a rep address", nngt_ops_text(ops & (NNGT_OP_INSPECT | NNGT_OP_STORAGE_READ), allowed, sizeof(allowed)));
        }
        break;
    default:
        break;
    }
    if (ops & NNGT_OP_SUBSCRIBE) {
        return nngt_config_why(why, why_size, "subscribe is served by pub addresses only");
    }
    if (ops == 0) {
        return nngt_config_why(why, why_size, "name the operations this %s address allows, from %s", nngt_pattern_name(pattern), nngt_ops_text(pattern == NNGT_REP ? NNGT_REP_OPS : NNGT_PULL_OPS, allowed, sizeof(allowed)));
    }
    return TORPOR_OK;
}

/* nngt_config_word cuts the next blank-separated word of *p into out. */
static bool
nngt_config_word(const char **p, char *out, size_t size)
{
    const char *s = *p;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    const char *start = s;
    while (*s != '\0' && *s != ' ' && *s != '\t') {
        s++;
    }
    size_t len = (size_t)(s - start);
    *p = s;
    if (len == 0 || len >= size) {
        return false;
    }
    memcpy(out, start, len);
    out[len] = '\0';
    return true;
}

static bool
nngt_config_listen_key(const char *key)
{
    if (strcmp(key, "listen") == 0) {
        return true;
    }
    if (strncmp(key, "listen.", 7) != 0 || key[7] == '\0') {
        return false;
    }
    for (const char *c = key + 7; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
            return false;
        }
    }
    return true;
}

static torpor_err
nngt_config_listen(struct nngt_config *cfg, const char *key,
                   const char *value, char *why, size_t why_size)
{
    char pattern_text[16];
    char url[256];
    uint8_t pattern;
    unsigned ops;
    const char *p = value;

    if (!nngt_config_word(&p, pattern_text, sizeof(pattern_text))
        || !nngt_config_word(&p, url, sizeof(url))) {
        return nngt_config_why(why, why_size, "expected \"PATTERN ADDRESS OPERATIONS\", e.g. \"rep tcp://127.0.0.1:7450 publish,inspect\"");
    }
    if (strcmp(pattern_text, "rep") == 0) {
        pattern = NNGT_REP;
    } else if (strcmp(pattern_text, "pull") == 0) {
        pattern = NNGT_PULL;
    } else if (strcmp(pattern_text, "pub") == 0) {
        pattern = NNGT_PUB;
    } else {
        return nngt_config_why(why, why_size, "unknown pattern \"%s\": expected rep (requests with replies), pull (without replies) or pub (the event stream)", pattern_text);
    }
    torpor_err err = nngt_config_url(url, why, why_size);
    if (err == TORPOR_OK) {
        err = nngt_config_ops(p, &ops, why, why_size);
    }
    if (err != TORPOR_OK) {
        return err;
    }
    if (pattern == NNGT_PUB && ops == 0) {
        ops = NNGT_OP_SUBSCRIBE;
    }
    err = nngt_config_fits(pattern, ops, why, why_size);
    if (err != TORPOR_OK) {
        return err;
    }
    /* Port 0 picks a different free port each time. */
    size_t url_len = strlen(url);
    bool any_port = strncmp(url, "tcp", 3) == 0 && url_len > 2
                    && strcmp(url + url_len - 2, ":0") == 0;
    for (size_t i = 0; i < cfg->naddrs && !any_port; i++) {
        if (strcmp(cfg->addrs[i].url, url) == 0) {
            return nngt_config_why(why, why_size, "address \"%s\" is already listed by \"%s\"", url, cfg->addrs[i].key);
        }
    }
    if (cfg->naddrs == NNGT_ADDRS_MAX) {
        return nngt_config_why(why, why_size, "at most %d addresses", NNGT_ADDRS_MAX);
    }
    struct nngt_addr *a = &cfg->addrs[cfg->naddrs];
    a->key = strdup(key);
    a->url = strdup(url);
    if (a->key == NULL || a->url == NULL) {
        free(a->key);
        free(a->url);
        return TORPOR_ENOMEM;
    }
    a->pattern = pattern;
    a->ops = ops;
    cfg->naddrs++;
    return TORPOR_OK;
}

torpor_err
nngt_config_set(struct nngt_config *cfg, const char *key, const char *value,
                char *why, size_t why_size)
{
    if (nngt_config_listen_key(key)) {
        return nngt_config_listen(cfg, key, value, why, why_size);
    }
    if (strcmp(key, "max_message_bytes") == 0) {
        return nngt_config_uint(value, 1, 67108864, &cfg->max_message_bytes,
                                why, why_size);
    }
    if (strcmp(key, "subscriber_queue") == 0) {
        return nngt_config_uint(value, 1, 8192, &cfg->subscriber_queue, why,
                                why_size);
    }
    return TORPOR_ENOKEY;
}
