/*
 * Unit tests of the WebSocket transport's per-address limits
 * (plugins/websocket/ws_peer.c): what counts as one address, the counts,
 * the token bucket and the freeing of entries.  The file is included so the
 * tests can see the table; time comes from a clock the tests move.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ws_peer.c"

static uint64_t peer_test_clock = 1000000;

static uint64_t
peer_test_now(void)
{
    return peer_test_clock;
}

static void
peer_test_arm(torpor_timer *timer, uint64_t after_ms)
{
    (void)timer;
    (void)after_ms;
}

static struct torpor_host peer_test_host = {
    .size = sizeof(struct torpor_host),
    .now_ms = peer_test_now,
    .timer_arm = peer_test_arm,
};

static struct ws_state *ws;

/* peer_setup makes a table for a connection limit of 2, and no rate. */
static void
peer_setup(void)
{
    ws = calloc(1, sizeof(*ws));
    ck_assert_ptr_nonnull(ws);
    ws->host = &peer_test_host;
    ws->cfg.max_connections_per_address = 2;
    ck_assert_int_eq(ws_peer_start(ws), TORPOR_OK);
    ck_assert_ptr_nonnull(ws->peers);
    ck_assert_ptr_null(ws->peers->reap_timer);
}

static void
peer_teardown(void)
{
    ws_peer_free(ws);
    free(ws);
}

static struct sockaddr_storage
peer_addr(const char *ip)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

        sin6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

        sin->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    }
    return ss;
}

static bool
peer_admit(int fd, const char *ip)
{
    struct sockaddr_storage ss = peer_addr(ip);

    return ws_peer_admit(ws, fd, (const struct sockaddr *)&ss);
}

/* ---- core ---- */

/* IPv4 counts per address; the third from one address is refused. */
START_TEST(test_peer_ipv4_per_address)
{
    ck_assert(peer_admit(10, "192.0.2.1"));
    ck_assert(peer_admit(11, "192.0.2.1"));
    ck_assert(!peer_admit(12, "192.0.2.1"));
    ck_assert(peer_admit(13, "192.0.2.2"));
    ck_assert_uint_eq(ws->counters.refused_connections, 1);
    ck_assert_uint_eq(ws->peers->n_peers, 2);
}
END_TEST

/* IPv6 counts per /64: any address in it is the same client. */
START_TEST(test_peer_ipv6_per_64)
{
    ck_assert(peer_admit(10, "2001:db8::1"));
    ck_assert(peer_admit(11, "2001:db8::ffff:1234:1"));
    ck_assert(!peer_admit(12, "2001:db8:0:0:8000::9"));
    ck_assert(peer_admit(13, "2001:db8:0:1::1"));
    ck_assert(peer_admit(14, "2001:db9::1"));
    ck_assert_uint_eq(ws->peers->n_peers, 3);
}
END_TEST

/* An IPv4 client seen through an IPv6 socket is the same client. */
START_TEST(test_peer_v4_mapped)
{
    ck_assert(peer_admit(10, "198.51.100.7"));
    ck_assert(peer_admit(11, "::ffff:198.51.100.7"));
    ck_assert(!peer_admit(12, "::ffff:198.51.100.7"));
    ck_assert(!peer_admit(13, "198.51.100.7"));
    /* ::/64 with another tail is not that IPv4 client. */
    ck_assert(peer_admit(14, "::1"));
}
END_TEST

/* Forgetting gives the slot back; the entry goes once it holds nothing. */
START_TEST(test_peer_forget_frees)
{
    ck_assert(peer_admit(10, "192.0.2.1"));
    ck_assert(peer_admit(11, "192.0.2.1"));
    ws_peer_forget(ws, 10);
    ck_assert(peer_admit(12, "192.0.2.1"));
    ck_assert(!peer_admit(13, "192.0.2.1"));
    ws_peer_forget(ws, 11);
    ws_peer_forget(ws, 12);
    ck_assert_uint_eq(ws->peers->n_peers, 0);
    /* Sockets never counted, or counted and forgotten, are no-ops. */
    ws_peer_forget(ws, 12);
    ws_peer_forget(ws, 999999);
    ws_peer_forget(ws, -1);
    ck_assert_uint_eq(ws->peers->n_peers, 0);
}
END_TEST

/* Only IP peers are counted; others pass and leave nothing behind. */
START_TEST(test_peer_not_ip)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    for (int fd = 10; fd < 15; fd++) {
        ck_assert(ws_peer_admit(ws, fd, (const struct sockaddr *)&sun));
    }
    ck_assert_uint_eq(ws->peers->n_peers, 0);
}
END_TEST

/* ---- limits ---- */

/* Many addresses grow the table, and high descriptors are tracked. */
START_TEST(test_peer_many_addresses)
{
    char ip[32];

    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
        ck_assert(peer_admit(100 + i, ip));
    }
    ck_assert_uint_eq(ws->peers->n_peers, 5000);
    ck_assert_uint_ge(ws->peers->n_buckets, 5000);
    ck_assert(peer_admit(70000, "10.0.0.0"));
    ck_assert(!peer_admit(70001, "10.0.0.0"));
    for (int i = 0; i < 5000; i++) {
        ws_peer_forget(ws, 100 + i);
    }
    ck_assert_uint_eq(ws->peers->n_peers, 1);
    ws_peer_forget(ws, 70000);
    ck_assert_uint_eq(ws->peers->n_peers, 0);
}
END_TEST

/* ---- rate ---- */

/* A connected loopback socket, whose peer is 127.0.0.1. */
static int
peer_test_socket(int *other, int *listener)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *listener = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(*listener, 0);
    ck_assert_int_eq(bind(*listener, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(*listener, 1), 0);
    ck_assert_int_eq(getsockname(*listener, (struct sockaddr *)&sin, &len), 0);
    *other = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(*other, (struct sockaddr *)&sin, sizeof(sin)), 0);
    fd = accept(*listener, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/*
 * A bucket holds one second's worth: that many pass at once, then one
 * more per 1/rate s; a refusal says when, in whole seconds.
 */
START_TEST(test_peer_upgrade_bucket)
{
    int other;
    int listener;
    int fd = peer_test_socket(&other, &listener);

    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 0); /* no rate: always */
    ws->cfg.max_upgrades_per_second_per_address = 2;
    ws_peer_free(ws);
    ck_assert_int_eq(ws_peer_start(ws), TORPOR_OK);
    ck_assert_ptr_nonnull(ws->peers->reap_timer);

    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 0);
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 0);
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 1);
    peer_test_clock += 499;
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 1);
    peer_test_clock += 1;
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 0);
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 1);
    /* A long pause refills one second's worth, no more. */
    peer_test_clock += 3600000;
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 0);
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 0);
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 1);
    ck_assert_uint_eq(ws->peers->n_peers, 1);
    close(fd);
    close(other);
    close(listener);
}
END_TEST

/* An entry kept only for its bucket goes once the bucket is full again. */
START_TEST(test_peer_reaped_when_refilled)
{
    int other;
    int listener;
    int fd = peer_test_socket(&other, &listener);

    ws->cfg.max_upgrades_per_second_per_address = 4;
    ws_peer_free(ws);
    ck_assert_int_eq(ws_peer_start(ws), TORPOR_OK);
    ck_assert_ptr_nonnull(ws->peers->reap_timer);

    ck_assert(peer_admit(fd, "127.0.0.1"));
    ck_assert_uint_eq(ws_peer_upgrade(ws, fd), 0);
    ws_peer_forget(ws, fd);
    /* No connection left, but the bucket is not full: kept. */
    ck_assert_uint_eq(ws->peers->n_peers, 1);
    ws_peer_on_reap(NULL, ws);
    ck_assert_uint_eq(ws->peers->n_peers, 1);
    peer_test_clock += 250;
    ws_peer_on_reap(NULL, ws);
    ck_assert_uint_eq(ws->peers->n_peers, 0);
    close(fd);
    close(other);
    close(listener);
}
END_TEST

static void
peer_test_timer_close(torpor_timer *timer)
{
    ck_assert_ptr_eq(timer, (torpor_timer *)&peer_test_host);
}

static torpor_err
peer_test_timer_open(torpor_loop *loop, torpor_timer_cb cb, void *arg,
                     torpor_timer **out)
{
    (void)loop;
    (void)cb;
    (void)arg;
    *out = (torpor_timer *)&peer_test_host;
    return TORPOR_OK;
}

static torpor_loop *
peer_test_loop_main(const torpor_plugin_ctx *self)
{
    (void)self;
    return NULL;
}

static Suite *
ws_peer_suite(void)
{
    Suite *s = suite_create("ws_peer");
    TCase *core = tcase_create("core");
    TCase *limits = tcase_create("limits");
    TCase *rate = tcase_create("rate");

    peer_test_host.timer_open = peer_test_timer_open;
    peer_test_host.timer_close = peer_test_timer_close;
    peer_test_host.loop_main = peer_test_loop_main;

    tcase_add_checked_fixture(core, peer_setup, peer_teardown);
    tcase_add_test(core, test_peer_ipv4_per_address);
    tcase_add_test(core, test_peer_ipv6_per_64);
    tcase_add_test(core, test_peer_v4_mapped);
    tcase_add_test(core, test_peer_forget_frees);
    tcase_add_test(core, test_peer_not_ip);
    suite_add_tcase(s, core);

    tcase_add_checked_fixture(limits, peer_setup, peer_teardown);
    tcase_add_test(limits, test_peer_many_addresses);
    suite_add_tcase(s, limits);

    tcase_add_checked_fixture(rate, peer_setup, peer_teardown);
    tcase_add_test(rate, test_peer_upgrade_bucket);
    tcase_add_test(rate, test_peer_reaped_when_refilled);
    suite_add_tcase(s, rate);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_peer_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
