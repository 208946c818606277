/*
 * Limits per client address: how many connections one address holds
 * (max_connections_per_address) and how fast it may upgrade
 * (max_upgrades_per_second_per_address).  IPv4 counts per address, IPv6
 * per /64 prefix: a host is handed a whole /64 and may use any address in
 * it, so counting single IPv6 addresses would limit nobody.
 *
 * The table is a hash of address to counts with an entry only for an
 * address that has a connection or a bucket still refilling; an entry goes
 * as soon as it has neither.  Keys are hashed with SipHash-2-4 under a
 * random key, because an IPv6 client picks its prefixes' low bits and
 * could otherwise aim them all at one chain.
 *
 * Threads: accepts and upgrades run on the main loop, but a connection is
 * freed on its object's loop.  Every access is under the table's lock,
 * which only those points take, and only when a limit is set.  Atomic
 * counters alone would not do: an entry freed at zero by one loop could
 * be in use by the main loop's lookup.
 *
 * To find its entry again when a connection goes, whatever its peer did to
 * the socket meanwhile (getpeername fails once it reset), the table keeps
 * the entry of each counted socket in an array indexed by descriptor, as
 * an epoll loop does: 8 bytes per descriptor, and only when the connection
 * limit is set, rather than a field in every connection record.
 */
#include "ws.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

/* Buckets: never fewer; the table doubles past one entry per bucket. */
#define WS_PEER_MIN_BUCKETS 64

/* How often entries whose buckets have refilled are looked for. */
#define WS_PEER_REAP_MS 1000

struct ws_peer {
    struct ws_peer *next; /* in its hash chain */
    uint64_t prefix;      /* IPv4 address, or the first 64 bits of IPv6 */
    uint64_t hash;
    uint8_t family;     /* AF_INET or AF_INET6 */
    uint32_t conns;     /* connections counted, handshaking or open */
    uint32_t tokens;    /* upgrades left, in thousandths */
    uint64_t refill_ms; /* when tokens was last brought up to date */
};

struct ws_peer_table {
    pthread_mutex_t lock; /* over everything below */
    struct ws_peer **buckets;
    uint32_t n_buckets;
    uint32_t n_peers;
    uint64_t key[2]; /* the SipHash key */

    /* The entry of every counted socket, by descriptor. */
    struct ws_peer **by_fd;
    size_t n_by_fd;

    torpor_timer *reap_timer; /* main loop */
    uint32_t reap_cursor;
};

/* ---- SipHash-2-4 of a 16-byte message, as its authors define it ---- */

static uint64_t
ws_peer_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void
ws_peer_sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ws_peer_rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = ws_peer_rotl(v[0], 32);
    v[2] += v[3];
    v[3] = ws_peer_rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ws_peer_rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ws_peer_rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = ws_peer_rotl(v[2], 32);
}

/* ws_peer_siphash hashes the two little-endian words m0 and m1. */
static uint64_t
ws_peer_siphash(const uint64_t key[2], uint64_t m0, uint64_t m1)
{
    uint64_t v[4] = {
        key[0] ^ UINT64_C(0x736f6d6570736575),
        key[1] ^ UINT64_C(0x646f72616e646f6d),
        key[0] ^ UINT64_C(0x6c7967656e657261),
        key[1] ^ UINT64_C(0x7465646279746573),
    };
    const uint64_t m[3] = {m0, m1, UINT64_C(16) << 56};

    for (int i = 0; i < 3; i++) {
        v[3] ^= m[i];
        ws_peer_sipround(v);
        ws_peer_sipround(v);
        v[0] ^= m[i];
    }
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++) {
        ws_peer_sipround(v);
    }
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- the table ---- */

/* ws_peer_key reduces an address to what is counted; false if not IP. */
static bool
ws_peer_key(const struct sockaddr *sa, uint8_t *family, uint64_t *prefix)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        *family = AF_INET;
        *prefix = ntohl(sin->sin_addr.s_addr);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = sin6->sin6_addr.s6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                             0, 0, 0, 0, 0xff, 0xff};

        /* An IPv4 peer seen through an IPv6 socket is still that peer. */
        if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
            *family = AF_INET;
            *prefix = (uint64_t)b[12] << 24 | (uint64_t)b[13] << 16
                      | (uint64_t)b[14] << 8 | b[15];
            return true;
        }
        *family = AF_INET6;
        *prefix = 0;
        for (int i = 0; i < 8; i++) {
            *prefix = *prefix << 8 | b[i];
        }
        return true;
    }
    return false;
}

static void
ws_peer_unlink(struct ws_peer_table *t, struct ws_peer *p)
{
    struct ws_peer **pp = &t->buckets[p->hash & (t->n_buckets - 1)];

    while (*pp != p) {
        pp = &(*pp)->next;
    }
    *pp = p->next;
    t->n_peers--;
    free(p);
}

/* ws_peer_resize rehashes into n buckets; on failure the table stays. */
static void
ws_peer_resize(struct ws_peer_table *t, uint32_t n)
{
    struct ws_peer **buckets = calloc(n, sizeof(*buckets));

    if (buckets == NULL) {
        return;
    }
    for (uint32_t i = 0; i < t->n_buckets; i++) {
        struct ws_peer *p = t->buckets[i];

        while (p != NULL) {
            struct ws_peer *next = p->next;
            struct ws_peer **head = &buckets[p->hash & (n - 1)];

            p->next = *head;
            *head = p;
            p = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->n_buckets = n;
    t->reap_cursor = 0;
}

/* ws_peer_get finds the entry of an address, making it if need be. */
static struct ws_peer *
ws_peer_get(struct ws_state *ws, uint8_t family, uint64_t prefix, uint64_t now)
{
    struct ws_peer_table *t = ws->peers;
    uint64_t hash = ws_peer_siphash(t->key, prefix, family);
    struct ws_peer *p = t->buckets[hash & (t->n_buckets - 1)];

    for (; p != NULL; p = p->next) {
        if (p->prefix == prefix && p->family == family) {
            return p;
        }
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->prefix = prefix;
    p->family = family;
    p->hash = hash;
    p->tokens = ws->cfg.max_upgrades_per_second_per_address * 1000;
    p->refill_ms = now;
    p->next = t->buckets[hash & (t->n_buckets - 1)];
    t->buckets[hash & (t->n_buckets - 1)] = p;
    t->n_peers++;
    if (t->n_peers > t->n_buckets && t->n_buckets <= UINT32_MAX / 2) {
        ws_peer_resize(t, t->n_buckets * 2);
    }
    return p;
}

/*
 * ws_peer_refill brings p's bucket up to now: rate tokens a second, at
 * most one second's worth.  Tokens are in thousandths, so a rate of r adds
 * r of them each millisecond.
 */
static void
ws_peer_refill(const struct ws_state *ws, struct ws_peer *p, uint64_t now)
{
    uint64_t rate = ws->cfg.max_upgrades_per_second_per_address;
    uint64_t elapsed = now - p->refill_ms;
    uint64_t tokens;

    if (elapsed > 1000) {
        elapsed = 1000;
    }
    tokens = p->tokens + elapsed * rate;
    p->tokens = (uint32_t)(tokens < rate * 1000 ? tokens : rate * 1000);
    p->refill_ms = now;
}

/* ws_peer_idle tells whether p holds nothing worth keeping. */
static bool
ws_peer_idle(const struct ws_state *ws, struct ws_peer *p, uint64_t now)
{
    if (p->conns > 0) {
        return false;
    }
    ws_peer_refill(ws, p, now);
    return p->tokens >= ws->cfg.max_upgrades_per_second_per_address * 1000;
}

/*
 * ws_peer_on_reap frees a share of the entries that kept only a bucket,
 * now refilled, so that a whole sweep of the table takes a few seconds
 * whatever its size.
 */
static void
ws_peer_on_reap(torpor_timer *timer, void *arg)
{
    struct ws_state *ws = arg;
    struct ws_peer_table *t;
    uint64_t now = ws->host->now_ms();
    uint32_t share;

    t = ws->peers;
    pthread_mutex_lock(&t->lock);
    share = t->n_buckets / 4 > WS_PEER_MIN_BUCKETS ? t->n_buckets / 4
                                                   : WS_PEER_MIN_BUCKETS;
    for (uint32_t i = 0; i < share && i < t->n_buckets; i++) {
        struct ws_peer *p = t->buckets[t->reap_cursor];

        while (p != NULL) {
            struct ws_peer *next = p->next;

            if (ws_peer_idle(ws, p, now)) {
                ws_peer_unlink(t, p);
            }
            p = next;
        }
        t->reap_cursor = (t->reap_cursor + 1) & (t->n_buckets - 1);
    }
    if (t->n_buckets > WS_PEER_MIN_BUCKETS && t->n_peers < t->n_buckets / 8) {
        ws_peer_resize(t, t->n_buckets / 2);
    }
    pthread_mutex_unlock(&t->lock);
    ws->host->timer_arm(timer, WS_PEER_REAP_MS);
}

torpor_err
ws_peer_start(struct ws_state *ws)
{
    struct ws_peer_table *t;
    torpor_err err;

    if (ws->cfg.max_connections_per_address == 0
        && ws->cfg.max_upgrades_per_second_per_address == 0) {
        return TORPOR_OK;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return TORPOR_ENOMEM;
    }
    t->buckets = calloc(WS_PEER_MIN_BUCKETS, sizeof(*t->buckets));
    if (t->buckets == NULL) {
        free(t);
        return TORPOR_ENOMEM;
    }
    t->n_buckets = WS_PEER_MIN_BUCKETS;
    if (getrandom(t->key, sizeof(t->key), 0) != (ssize_t)sizeof(t->key)) {
        free(t->buckets);
        free(t);
        return TORPOR_EIO;
    }
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->buckets);
        free(t);
        return TORPOR_ENOMEM;
    }
    ws->peers = t;
    if (ws->cfg.max_upgrades_per_second_per_address > 0) {
        err = ws->host->timer_open(ws->host->loop_main(ws->self),
                                   ws_peer_on_reap, ws, &t->reap_timer);
        if (err != TORPOR_OK) {
            t->reap_timer = NULL;
            return err;
        }
        ws->host->timer_arm(t->reap_timer, WS_PEER_REAP_MS);
    }
    return TORPOR_OK;
}

void
ws_peer_stop(struct ws_state *ws)
{
    if (ws->peers != NULL && ws->peers->reap_timer != NULL) {
        ws->host->timer_close(ws->peers->reap_timer);
        ws->peers->reap_timer = NULL;
    }
}

void
ws_peer_free(struct ws_state *ws)
{
    struct ws_peer_table *t = ws->peers;

    if (t == NULL) {
        return;
    }
    ws_peer_stop(ws);
    for (uint32_t i = 0; i < t->n_buckets; i++) {
        while (t->buckets[i] != NULL) {
            struct ws_peer *p = t->buckets[i];

            t->buckets[i] = p->next;
            free(p);
        }
    }
    free(t->buckets);
    free(t->by_fd);
    pthread_mutex_destroy(&t->lock);
    free(t);
    ws->peers = NULL;
}

/* ws_peer_track_locked makes room for fd in by_fd. */
static bool
ws_peer_track_locked(struct ws_peer_table *t, int fd)
{
    size_t n = t->n_by_fd == 0 ? 1024 : t->n_by_fd;
    struct ws_peer **p;

    if ((size_t)fd < t->n_by_fd) {
        return true;
    }
    while (n <= (size_t)fd) {
        n *= 2;
    }
    p = realloc(t->by_fd, n * sizeof(*p));
    if (p == NULL) {
        return false;
    }
    memset(p + t->n_by_fd, 0, (n - t->n_by_fd) * sizeof(*p));
    t->by_fd = p;
    t->n_by_fd = n;
    return true;
}

bool
ws_peer_admit(struct ws_state *ws, int fd, const struct sockaddr *sa)
{
    struct ws_peer_table *t = ws->peers;
    uint32_t max = ws->cfg.max_connections_per_address;
    struct ws_peer *p;
    uint64_t prefix;
    uint8_t family;
    bool ok = false;

    if (t == NULL || max == 0 || fd < 0 || !ws_peer_key(sa, &family, &prefix)) {
        return true;
    }
    pthread_mutex_lock(&t->lock);
    p = ws_peer_get(ws, family, prefix, ws->host->now_ms());
    if (p != NULL && p->conns < max && ws_peer_track_locked(t, fd)) {
        p->conns++;
        t->by_fd[fd] = p;
        ok = true;
    }
    pthread_mutex_unlock(&t->lock);
    if (!ok) {
        WS_COUNT(ws, refused_connections);
    }
    return ok;
}

void
ws_peer_forget(struct ws_state *ws, int fd)
{
    struct ws_peer_table *t = ws->peers;
    struct ws_peer *p;

    if (t == NULL || fd < 0) {
        return;
    }
    pthread_mutex_lock(&t->lock);
    if ((size_t)fd < t->n_by_fd && t->by_fd[fd] != NULL) {
        p = t->by_fd[fd];
        t->by_fd[fd] = NULL;
        p->conns--;
        if (ws_peer_idle(ws, p, ws->host->now_ms())) {
            ws_peer_unlink(t, p);
        }
    }
    pthread_mutex_unlock(&t->lock);
}

uint32_t
ws_peer_upgrade(struct ws_state *ws, int fd)
{
    uint64_t rate = ws->cfg.max_upgrades_per_second_per_address;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    uint64_t now = ws->host->now_ms();
    uint32_t retry_after_s = 0;
    struct ws_peer *p;
    uint64_t prefix;
    uint8_t family;

    if (ws->peers == NULL || rate == 0
        || getpeername(fd, (struct sockaddr *)&ss, &len) != 0
        || !ws_peer_key((const struct sockaddr *)&ss, &family, &prefix)) {
        return 0;
    }
    pthread_mutex_lock(&ws->peers->lock);
    p = ws_peer_get(ws, family, prefix, now);
    if (p != NULL) {
        ws_peer_refill(ws, p, now);
        if (p->tokens >= 1000) {
            p->tokens -= 1000;
        } else {
            /* Milliseconds until a whole token, rounded up to seconds. */
            uint64_t wait_ms = (1000 - p->tokens + rate - 1) / rate;

            retry_after_s = (uint32_t)((wait_ms + 999) / 1000);
        }
    }
    pthread_mutex_unlock(&ws->peers->lock);
    return retry_after_s;
}
