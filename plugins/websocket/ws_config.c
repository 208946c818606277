/*
 * The [transport.websocket] section of the configuration: the keys that
 * apply to the whole transport.  Keys that may differ by route are in
 * ws_route.c.  Keys arrive one by one through the configure hook, on the
 * main thread, before start.
 *
 * listen = 127.0.0.1:8080
 *     Comma-separated addresses to accept clients on, each HOST:PORT with
 *     a numeric host; IPv6 in brackets, as [::1]:8080.  Port 0 takes any
 *     free port; the "listening on" log line names the one bound.  An IPv6
 *     listener accepts IPv6 only, so [::]:8080 and 0.0.0.0:8080 can both be
 *     listed.  At most 16 addresses.
 *
 * max_handshake_bytes = 8192
 *     Largest HTTP upgrade request; a longer one is answered with 431.
 *
 * handshake_timeout_ms = 10000
 *     Time from TCP accept to a complete upgrade request; a peer slower
 *     than that is disconnected, however it trickles its bytes, because
 *     the deadline is set once at accept and never moved by a read.
 *
 * close_timeout_ms = 5000
 *     Time the server waits for the peer's close frame after sending its
 *     own, and for the last output to drain after the close handshake.  On
 *     expiry the TCP connection is closed and reported as 1006.
 *
 * max_connections_per_address = 0
 *     Connections one client address may hold at once, in their handshake
 *     or open; 0 for no limit.  IPv4 counts per address, IPv6 per /64,
 *     because a single host is handed a whole /64 and can pick any address
 *     in it.  A connection over the limit is closed as soon as it is
 *     accepted, before anything is read or allocated for it: under a flood
 *     the refusal must cost less than the attack.  Off by default because
 *     behind a proxy or a large NAT every client shares one address.
 *
 * max_handshakes = 4096
 *     Connections in their handshake at once, over all addresses: accepted
 *     and not yet upgraded, or refused and being drained.  One more evicts
 *     the oldest, whose peer has had the longest to finish; a client that
 *     completes its upgrade promptly gets in while a flood of idle or
 *     trickling connections, from however many addresses, churns through
 *     the rest.  Each costs a few hundred bytes, a TLS one tens of KiB
 *     while OpenSSL's handshake lasts.  0 for no limit.
 *
 * max_upgrades_per_second_per_address = 0
 *     Upgrade requests one address may make per second, as a token bucket
 *     that holds one second's worth (so a burst of that many passes); 0
 *     for no limit.  A request over it is answered 429 with Retry-After,
 *     the seconds until the bucket holds a token again.  Off by default
 *     for the same reason.
 *
 * listen_tls, tls_certificate, tls_private_key, tls_min_version
 *     TLS (wss://); see ws_tls.c.  listen_tls takes addresses as listen
 *     does; an empty listen leaves only the TLS ones.
 */
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_DEFAULT_LISTEN "127.0.0.1:8080"

static void
ws_config_why(char *why, size_t why_size, const char *text)
{
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "%s", text);
    }
}

/*
 * ws_config_uint parses a decimal integer in [min, max].  strtoull alone
 * accepts a sign and leading blanks, so the first character is checked.
 */
static torpor_err
ws_config_uint(const char *value, uint64_t min, uint64_t max, uint64_t *out,
               char *why, size_t why_size)
{
    unsigned long long v;
    char *end;

    if (value[0] < '0' || value[0] > '9') {
        goto bad;
    }
    errno = 0;
    v = strtoull(value, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        goto bad;
    }
    *out = v;
    return TORPOR_OK;

bad:
    if (why != NULL && why_size > 0) {
        snprintf(why, why_size, "expected an integer from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
    }
    return TORPOR_EINVAL;
}

/* ws_config_port parses a port number of 1 to 5 digits. */
static bool
ws_config_port(const char *s, size_t len, uint16_t *port)
{
    uint32_t v = 0;

    if (len == 0 || len > 5) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535) {
        return false;
    }
    *port = (uint16_t)v;
    return true;
}

/*
 * ws_config_addr parses one HOST:PORT of s[0..len) into a.  Hosts must be
 * numeric: resolving names here would block and could bind to whichever
 * address a resolver returns first.
 */
static bool
ws_config_addr(const char *s, size_t len, struct ws_addr *a, char *why,
               size_t why_size)
{
    char host[INET6_ADDRSTRLEN];
    const char *host_start;
    const char *colon;
    size_t host_len;
    uint16_t port;
    bool v6 = false;

    memset(a, 0, sizeof(*a));
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);

        if (rb == NULL || rb + 1 == s + len || rb[1] != ':') {
            ws_config_why(why, why_size, "expected [IPV6]:PORT");
            return false;
        }
        v6 = true;
        host_start = s + 1;
        host_len = (size_t)(rb - host_start);
        colon = rb + 1;
    } else {
        colon = NULL;
        for (size_t i = len; i > 0; i--) {
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        }
        if (colon == NULL) {
            ws_config_why(why, why_size, "expected HOST:PORT");
            return false;
        }
        host_start = s;
        host_len = (size_t)(colon - s);
    }
    if (host_len == 0 || host_len >= sizeof(host)) {
        ws_config_why(why, why_size,
                      "host must be a numeric ipv4 or [ipv6] address");
        return false;
    }
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    if (!ws_config_port(colon + 1, (size_t)(s + len - colon - 1), &port)) {
        ws_config_why(why, why_size, "port must be a number from 0 to 65535");
        return false;
    }

    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            ws_config_why(why, why_size,
                          "host must be a numeric ipv4 or [ipv6] address");
            return false;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        a->len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            ws_config_why(why, why_size,
                          "host must be a numeric ipv4 or [ipv6] address");
            return false;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        a->len = sizeof(*sin);
    }
    return true;
}

/*
 * ws_config_listen parses the comma-separated list into list and *n_list
 * only when all of it is valid, so a bad value leaves the previous list in
 * place.  An empty value is an empty list.
 */
static torpor_err
ws_config_listen(struct ws_addr *list, size_t *n_list, const char *value,
                 char *why, size_t why_size)
{
    struct ws_addr addrs[WS_LISTEN_MAX];
    size_t n = 0;
    const char *p = value;

    if (value[strspn(value, " \t")] == '\0') {
        *n_list = 0;
        return TORPOR_OK;
    }
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (len == 0) {
            ws_config_why(why, why_size, "expected HOST:PORT");
            return TORPOR_EINVAL;
        }
        if (n == WS_LISTEN_MAX) {
            ws_config_why(why, why_size, "at most 16 addresses");
            return TORPOR_EINVAL;
        }
        if (!ws_config_addr(p, len, &addrs[n], why, why_size)) {
            return TORPOR_EINVAL;
        }
        n++;
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    memcpy(list, addrs, n * sizeof(addrs[0]));
    *n_list = n;
    return TORPOR_OK;
}

void
ws_config_defaults(struct ws_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    /* The default is a literal that parses; a failure would be our bug. */
    (void)ws_config_listen(cfg->listen, &cfg->n_listen, WS_DEFAULT_LISTEN, NULL,
                           0);
    cfg->max_handshake_bytes = 8192;
    cfg->handshake_timeout_ms = 10000;
    cfg->close_timeout_ms = 5000;
    cfg->max_handshakes = 4096;
}

torpor_err
ws_config_set(struct ws_config *cfg, const char *key, const char *value,
              char *why, size_t why_size)
{
    uint64_t v;
    torpor_err err;

    if (strcmp(key, "listen") == 0) {
        return ws_config_listen(cfg->listen, &cfg->n_listen, value, why,
                                why_size);
    }
    if (strcmp(key, "listen_tls") == 0) {
        return ws_config_listen(cfg->listen_tls, &cfg->n_listen_tls, value, why,
                                why_size);
    }
    if (strcmp(key, "max_handshake_bytes") == 0) {
        err = ws_config_uint(value, 256, UINT64_C(1) << 20, &v, why, why_size);
        if (err == TORPOR_OK) {
            cfg->max_handshake_bytes = (size_t)v;
        }
        return err;
    }
    if (strcmp(key, "handshake_timeout_ms") == 0) {
        return ws_config_uint(value, 1, 3600000, &cfg->handshake_timeout_ms,
                              why, why_size);
    }
    if (strcmp(key, "close_timeout_ms") == 0) {
        return ws_config_uint(value, 1, 3600000, &cfg->close_timeout_ms, why,
                              why_size);
    }
    if (strcmp(key, "max_connections_per_address") == 0) {
        err = ws_config_uint(value, 0, 1000000, &v, why, why_size);
        if (err == TORPOR_OK) {
            cfg->max_connections_per_address = (uint32_t)v;
        }
        return err;
    }
    if (strcmp(key, "max_handshakes") == 0) {
        err = ws_config_uint(value, 0, 1000000, &v, why, why_size);
        if (err == TORPOR_OK) {
            cfg->max_handshakes = (uint32_t)v;
        }
        return err;
    }
    if (strcmp(key, "max_upgrades_per_second_per_address") == 0) {
        err = ws_config_uint(value, 0, 100000, &v, why, why_size);
        if (err == TORPOR_OK) {
            cfg->max_upgrades_per_second_per_address = (uint32_t)v;
        }
        return err;
    }
    return ws_tls_config_set(cfg, key, value, why, why_size);
}

bool
ws_config_known(const char *key)
{
    struct ws_config scratch;

    /* ws_config_set tells an unknown key before it looks at the value. */
    ws_config_defaults(&scratch);
    return ws_config_set(&scratch, key, "", NULL, 0) != TORPOR_ENOKEY;
}
