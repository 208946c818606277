/*
 * bk_plugin.c: the backend class's descriptor, settings and socket.
 *
 * torpord listens on one nng REQ socket at the [class.backend] workers
 * address; workers dial it with REP sockets, as many as there are worker
 * processes (or threads), and may come and go at any time.  nng hands
 * each request to a connected worker that is ready for one, in turn.
 *
 * [class.backend]
 *   workers = tcp://127.0.0.1:5600   the address to listen on
 *   timeout_ms = 5000                per attempt, 1 to 3600000
 *   retries = 2                      attempts after the first, 0 to 10
 *   max_reply_bytes = 16777216       largest reply taken, 1024 to 1 GiB
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "backend.h"

#define BK_DEFAULT_WORKERS "tcp://127.0.0.1:5600"
#define BK_DEFAULT_TIMEOUT_MS 5000
#define BK_DEFAULT_RETRIES 2
#define BK_DEFAULT_MAX_REPLY_BYTES (16u << 20)

static torpor_err
bk_create(const struct torpor_host *host, torpor_plugin_ctx *self,
          void **state)
{
    struct bk_state *bk;

    if (!TORPOR_HOST_HAS(host, object_loop)) {
        return TORPOR_EABI;
    }
    bk = calloc(1, sizeof(*bk));
    if (bk == NULL) {
        return TORPOR_ENOMEM;
    }
    bk->host = host;
    bk->self = self;
    snprintf(bk->workers, sizeof(bk->workers), "%s", BK_DEFAULT_WORKERS);
    bk->timeout_ms = BK_DEFAULT_TIMEOUT_MS;
    bk->retries = BK_DEFAULT_RETRIES;
    bk->max_reply_bytes = BK_DEFAULT_MAX_REPLY_BYTES;
    *state = bk;
    return TORPOR_OK;
}

/* bk_parse_uint reads a decimal in [min, max]. */
static bool
bk_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;

    if (text[0] < '0' || text[0] > '9') {
        return false;
    }
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static torpor_err
bk_configure(void *state, const char *key, const char *value, char *why,
             size_t why_size)
{
    struct bk_state *bk = state;
    uint64_t v;

    if (strcmp(key, "workers") == 0) {
        nng_url *url;
        if (strlen(value) >= sizeof(bk->workers)
            || nng_url_parse(&url, value) != 0) {
            snprintf(why, why_size, "expected an nng address such as tcp://127.0.0.1:5600 or ipc:///run/torpor/workers.sock");
            return TORPOR_EINVAL;
        }
        nng_url_free(url);
        snprintf(bk->workers, sizeof(bk->workers), "%s", value);
        return TORPOR_OK;
    }
    if (strcmp(key, "timeout_ms") == 0) {
        if (!bk_parse_uint(value, 1, 3600000, &v)) {
            snprintf(why, why_size, "expected milliseconds from 1 to 3600000");
            return TORPOR_EINVAL;
        }
        bk->timeout_ms = (uint32_t)v;
        return TORPOR_OK;
    }
    if (strcmp(key, "retries") == 0) {
        if (!bk_parse_uint(value, 0, 10, &v)) {
            snprintf(why, why_size, "expected a count from 0 to 10");
            return TORPOR_EINVAL;
        }
        bk->retries = (uint32_t)v;
        return TORPOR_OK;
    }
    if (strcmp(key, "max_reply_bytes") == 0) {
        if (!bk_parse_uint(value, 1024, 1u << 30, &v)) {
            snprintf(why, why_size, "expected bytes from 1024 to 1073741824");
            return TORPOR_EINVAL;
        }
        bk->max_reply_bytes = (size_t)v;
        return TORPOR_OK;
    }
    return TORPOR_ENOKEY;
}

/* bk_on_pipe logs workers as they come and go; on an nng thread. */
static void
bk_on_pipe(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct bk_state *bk = arg;
    nng_sockaddr sa;
    char addr[64] = "?";

    if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) != 0) {
        sa.s_family = NNG_AF_UNSPEC;
    }
    if (sa.s_family == NNG_AF_INET) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip));
        snprintf(addr, sizeof(addr), "%s:%u", ip, ntohs(sa.s_in.sa_port));
    } else if (sa.s_family == NNG_AF_IPC) {
        snprintf(addr, sizeof(addr), "local");
    }
    if (ev == NNG_PIPE_EV_ADD_POST) {
        uint32_t n = __atomic_add_fetch(&bk->connected, 1, __ATOMIC_RELAXED);
        bk->host->log(bk->self, TORPOR_LOG_INFO, NULL, NULL, "worker connected from \"%s\": %u connected", addr, n);
        return;
    }
    /* A peer refused before it was added is removed all the same. */
    uint32_t n = __atomic_load_n(&bk->connected, __ATOMIC_RELAXED);
    while (n > 0 && !__atomic_compare_exchange_n(&bk->connected, &n, n - 1,
                                                 false, __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED)) {
    }
    bk->host->log(bk->self, TORPOR_LOG_INFO, NULL, NULL, "worker disconnected from \"%s\": %u connected", addr, n > 0 ? n - 1 : 0);
}

/* bk_bound_address names the address listened on, with the real port. */
static void
bk_bound_address(struct bk_state *bk, nng_listener l, char *out, size_t size)
{
    nng_url *url;
    int port;

    snprintf(out, size, "%s", bk->workers);
    if (nng_url_parse(&url, bk->workers) != 0) {
        return;
    }
    if (strncmp(url->u_scheme, "tcp", 3) == 0
        && nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
        snprintf(out, size, "%s://%s:%d", url->u_scheme, url->u_hostname,
                 port);
    }
    nng_url_free(url);
}

static torpor_err
bk_start(void *state)
{
    struct bk_state *bk = state;
    nng_listener listener;
    char bound[BK_URL_MAX + 16];
    int rv;

    /* Random per run, so ids of two runs hardly ever meet; 62 bits leave
     * room to count up without wrapping. */
    bk->next_event_id = ((uint64_t)nng_random() << 32 | nng_random())
                        & (((uint64_t)1 << 62) - 1);
    if ((rv = nng_req0_open(&bk->sock)) != 0) {
        bk->host->log(bk->self, TORPOR_LOG_ERR, NULL, NULL, "could not open the workers' socket: %s", nng_strerror(rv));
        return TORPOR_EIO;
    }
    bk->sock_open = true;
    /* Our retries replace nng's: every one is counted and logged. */
    nng_socket_set_ms(bk->sock, NNG_OPT_REQ_RESENDTIME,
                      NNG_DURATION_INFINITE);
    nng_socket_set_size(bk->sock, NNG_OPT_RECVMAXSZ, bk->max_reply_bytes);
    nng_pipe_notify(bk->sock, NNG_PIPE_EV_ADD_POST, bk_on_pipe, bk);
    nng_pipe_notify(bk->sock, NNG_PIPE_EV_REM_POST, bk_on_pipe, bk);
    if ((rv = nng_listen(bk->sock, bk->workers, &listener, 0)) != 0) {
        bk->host->log(bk->self, TORPOR_LOG_ERR, NULL, NULL, "could not listen for workers on \"%s\": %s", bk->workers, nng_strerror(rv));
        return TORPOR_EIO;
    }
    bk_bound_address(bk, listener, bound, sizeof(bound));
    bk->host->log(bk->self, TORPOR_LOG_NOTICE, NULL, NULL, "listening for workers on \"%s\": timeout %u ms, %u retries", bound, bk->timeout_ms, bk->retries);
    return TORPOR_OK;
}

static void
bk_destroy(void *state)
{
    struct bk_state *bk = state;
    struct bk_stats *s = &bk->stats;

    if (bk->sock_open) {
        nng_close(bk->sock);
        bk->host->log(bk->self, TORPOR_LOG_NOTICE, NULL, NULL, "stopped: %llu events, %llu applied, %llu timeouts, %llu workers lost, %llu malformed replies, %llu refused, %llu dropped", (unsigned long long)s->events, (unsigned long long)s->applied, (unsigned long long)s->timeouts, (unsigned long long)s->lost, (unsigned long long)s->malformed, (unsigned long long)s->refused, (unsigned long long)s->dropped);
    }
    free(bk);
}

static const struct torpor_plugin bk_plugin = {
    TORPOR_PLUGIN_HEADER(TORPOR_KIND_CLASS, "backend", "0.1.0"),
    .create = bk_create,
    .configure = bk_configure,
    .start = bk_start,
    .destroy = bk_destroy,
    .ops.klass = &bk_class_ops,
};

TORPOR_API const struct torpor_plugin *
torpor_plugin_entry(void)
{
    return &bk_plugin;
}
