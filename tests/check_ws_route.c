/*
 * Unit tests of the WebSocket transport's per-route options: the keys and
 * their route.NAME.KEY form, the parsing of subprotocol and origin lists,
 * inheritance from the defaults, the lookup, the choice of a subprotocol
 * and the Origin check (plugins/websocket/ws_route.c).
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

/* The last line the plugin logged, for the checks that judge a route. */
static char route_test_logged[512];

static void
route_test_log(torpor_plugin_ctx *self, torpor_log_level level,
               const torpor_object *object, const torpor_conn *conn,
               const char *fmt, ...)
{
    va_list ap;

    (void)self;
    (void)level;
    (void)object;
    (void)conn;
    va_start(ap, fmt);
    vsnprintf(route_test_logged, sizeof(route_test_logged), fmt, ap);
    va_end(ap);
}

static struct torpor_host route_test_host = {
    .size = sizeof(struct torpor_host),
    .log = route_test_log,
};

static struct ws_state *ws;
static char why[256];

static void
route_setup(void)
{
    ws = calloc(1, sizeof(*ws));
    ck_assert_ptr_nonnull(ws);
    ws->host = &route_test_host;
    ck_assert_int_eq(ws_route_init(ws), TORPOR_OK);
    why[0] = '\0';
    route_test_logged[0] = '\0';
}

static void
route_teardown(void)
{
    ws_route_free_all(ws);
    free(ws);
    ws = NULL;
}

static torpor_err
route_set(const char *key, const char *value)
{
    why[0] = '\0';
    return ws_route_set(ws, key, value, why, sizeof(why));
}

/* What ws_route_finish reported, one "KEY: reason" line each. */
static char route_test_reports[4096];

static void
route_test_report(void *ctx, const char *key, const char *reason)
{
    size_t used = strlen(route_test_reports);

    (void)ctx;
    snprintf(route_test_reports + used, sizeof(route_test_reports) - used,
             "%s: %s\n", key != NULL ? key : "-", reason);
}

/*
 * route_finish runs ws_route_finish as the configured hook does, with the
 * daemon's routes being the plugin's own routes but unknown, if not NULL.
 */
static torpor_err
route_finish_without(const char *unknown)
{
    const char *names[WS_ROUTES_MAX];
    size_t n = 0;

    for (uint32_t i = 1; i < ws->n_routes; i++) {
        if (unknown == NULL || strcmp(ws->routes[i]->name, unknown) != 0) {
            names[n++] = ws->routes[i]->name;
        }
    }
    route_test_reports[0] = '\0';
    return ws_route_finish(ws, names, n, route_test_report, NULL);
}

static torpor_err
route_finish(void)
{
    return route_finish_without(NULL);
}

static const struct ws_route_opts *
route_for(const char *name)
{
    torpor_bytes route = {name, strlen(name)};

    return ws_route_opts_for(ws, &route);
}

/* ---- core ---- */

/* The defaults are those the documentation promises. */
START_TEST(test_route_defaults)
{
    const struct ws_route_opts *d;

    ck_assert_int_eq(route_finish(), TORPOR_OK);
    d = route_for("anything");
    ck_assert_ptr_eq(d, ws->routes[0]);
    ck_assert_uint_eq(d->max_message_bytes, 1048576);
    ck_assert_uint_eq(d->max_output_bytes, 16777216);
    ck_assert_uint_eq(d->ping_interval_ms, 30000);
    ck_assert_uint_eq(d->pong_timeout_ms, 10000);
    ck_assert_uint_eq(d->subprotocols.n, 0);
    ck_assert(!d->subprotocol_required);
    ck_assert(d->allowed_origins.any);
    ck_assert(!d->origin_required);
}
END_TEST

/* route.NAME.KEY sets one route; the others keep the default. */
START_TEST(test_route_override_one_route)
{
    ck_assert_int_eq(route_set("route.chat.ping_interval_ms", "500"),
                     TORPOR_OK);
    ck_assert_int_eq(route_set("ping_interval_ms", "1000"), TORPOR_OK);
    ck_assert_int_eq(route_set("route.other.max_message_bytes", "77"),
                     TORPOR_OK);
    ck_assert_int_eq(route_finish(), TORPOR_OK);
    ck_assert_uint_eq(route_for("chat")->ping_interval_ms, 500);
    ck_assert_uint_eq(route_for("chat")->max_message_bytes, 1048576);
    ck_assert_uint_eq(route_for("other")->ping_interval_ms, 1000);
    ck_assert_uint_eq(route_for("other")->max_message_bytes, 77);
    ck_assert_uint_eq(route_for("relay")->ping_interval_ms, 1000);
    ck_assert_ptr_eq(route_for("relay"), ws->routes[0]);
    ck_assert_str_eq(route_for("chat")->name, "chat");
    ck_assert_ptr_eq(ws->routes[route_for("chat")->index], route_for("chat"));
    ck_assert_str_eq(route_test_logged,
                     "route \"other\" has its own max_message_bytes");
}
END_TEST

/* A route's own value wins, whether it comes before the default or after. */
START_TEST(test_route_override_any_order)
{
    ck_assert_int_eq(route_set("route.a.pong_timeout_ms", "200"), TORPOR_OK);
    ck_assert_int_eq(route_set("pong_timeout_ms", "4000"), TORPOR_OK);
    ck_assert_int_eq(route_set("pong_timeout_ms", "5000"), TORPOR_OK);
    ck_assert_int_eq(route_finish(), TORPOR_OK);
    ck_assert_uint_eq(route_for("a")->pong_timeout_ms, 200);
    ck_assert_uint_eq(route_for("b")->pong_timeout_ms, 5000);
}
END_TEST

/* Route names compare exactly: no prefix, no case folding. */
START_TEST(test_route_lookup_exact)
{
    ck_assert_int_eq(route_set("route.chat.max_output_bytes", "99"), TORPOR_OK);
    ck_assert_int_eq(route_finish(), TORPOR_OK);
    ck_assert_uint_eq(route_for("chat")->max_output_bytes, 99);
    ck_assert_ptr_eq(route_for("cha"), ws->routes[0]);
    ck_assert_ptr_eq(route_for("chats"), ws->routes[0]);
    ck_assert_ptr_eq(route_for("Chat"), ws->routes[0]);
    ck_assert_ptr_eq(route_for(""), ws->routes[0]);
}
END_TEST

/* Lists given as defaults are copied into each route that has none. */
START_TEST(test_route_lists_inherited)
{
    const struct ws_route_opts *r;

    ck_assert_int_eq(route_set("subprotocols", "v2, v1"), TORPOR_OK);
    ck_assert_int_eq(route_set("allowed_origins", "https://a.example"),
                     TORPOR_OK);
    ck_assert_int_eq(route_set("route.x.ping_interval_ms", "0"), TORPOR_OK);
    ck_assert_int_eq(route_set("route.y.subprotocols", "only"), TORPOR_OK);
    ck_assert_int_eq(route_finish(), TORPOR_OK);
    r = route_for("x");
    ck_assert_uint_eq(r->ping_interval_ms, 0);
    ck_assert_uint_eq(r->subprotocols.n, 2);
    ck_assert_str_eq(r->subprotocols.items[0], "v2");
    ck_assert_str_eq(r->subprotocols.items[1], "v1");
    ck_assert_ptr_ne(r->subprotocols.items[0],
                     ws->routes[0]->subprotocols.items[0]);
    ck_assert_uint_eq(r->allowed_origins.n, 1);
    ck_assert(!r->allowed_origins.any);
    r = route_for("y");
    ck_assert_uint_eq(r->subprotocols.n, 1);
    ck_assert_str_eq(r->subprotocols.items[0], "only");
}
END_TEST

/* An empty subprotocols gives a route none, even if the default has some. */
START_TEST(test_route_subprotocols_empty)
{
    ck_assert_int_eq(route_set("subprotocols", "v1"), TORPOR_OK);
    ck_assert_int_eq(route_set("route.plain.subprotocols", ""), TORPOR_OK);
    ck_assert_int_eq(route_finish(), TORPOR_OK);
    ck_assert_uint_eq(route_for("plain")->subprotocols.n, 0);
    ck_assert_uint_eq(route_for("other")->subprotocols.n, 1);
}
END_TEST

/* Blanks around elements are dropped; the order is kept. */
START_TEST(test_route_parse_subprotocols)
{
    const struct ws_names *l = &ws->routes[0]->subprotocols;

    ck_assert_int_eq(route_set("subprotocols", "  chat.v2 ,\tchat.v1,x~y "),
                     TORPOR_OK);
    ck_assert_uint_eq(l->n, 3);
    ck_assert_str_eq(l->items[0], "chat.v2");
    ck_assert_str_eq(l->items[1], "chat.v1");
    ck_assert_str_eq(l->items[2], "x~y");
}
END_TEST

/* Origins are kept lowercase; ports and IPv6 hosts are allowed. */
START_TEST(test_route_parse_origins)
{
    const struct ws_names *l = &ws->routes[0]->allowed_origins;

    ck_assert_int_eq(route_set("allowed_origins",
                               "HTTPS://App.Example, http://[::1]:8080,"
                               " http://127.0.0.1:3000"),
                     TORPOR_OK);
    ck_assert(!l->any);
    ck_assert_uint_eq(l->n, 3);
    ck_assert_str_eq(l->items[0], "https://app.example");
    ck_assert_str_eq(l->items[1], "http://[::1]:8080");
    ck_assert_str_eq(l->items[2], "http://127.0.0.1:3000");
    ck_assert_int_eq(route_set("allowed_origins", " * "), TORPOR_OK);
    ck_assert(l->any);
    ck_assert_uint_eq(l->n, 0);
}
END_TEST

/* route_pick picks from one Sec-WebSocket-Protocol line, as NUL-ended. */
static const char *
route_pick(const struct ws_route_opts *d, const char *offer)
{
    size_t len = strlen(offer);

    return ws_route_pick_subprotocol(d, &offer, &len, 1);
}

/* The server's order decides; offers compare exactly. */
START_TEST(test_route_pick_subprotocol)
{
    const struct ws_route_opts *d = ws->routes[0];
    const char *offer;
    size_t len;

    ck_assert_int_eq(route_set("subprotocols", "v2, v1"), TORPOR_OK);
    ck_assert_str_eq(route_pick(d, "v1, v2"), "v2");
    ck_assert_str_eq(route_pick(d, "v1"), "v1");
    ck_assert_str_eq(route_pick(d, " ,v1 , "), "v1");
    ck_assert_ptr_null(route_pick(d, "V2, v1x, xv1"));
    /* Only the given length counts, as a header value is not terminated. */
    offer = "v3, v2";
    len = 2;
    ck_assert_ptr_null(ws_route_pick_subprotocol(d, &offer, &len, 1));
    ck_assert_ptr_null(ws_route_pick_subprotocol(d, NULL, NULL, 0));
}
END_TEST

/* Lines make one list: the server's first choice wins on any line. */
START_TEST(test_route_pick_subprotocol_lines)
{
    const struct ws_route_opts *d = ws->routes[0];
    const char *lines[] = {"v1, x", "y, v2"};
    size_t lens[] = {5, 5};

    ck_assert_int_eq(route_set("subprotocols", "v2, v1"), TORPOR_OK);
    ck_assert_str_eq(ws_route_pick_subprotocol(d, lines, lens, 2), "v2");
    ck_assert_str_eq(ws_route_pick_subprotocol(d, lines, lens, 1), "v1");
    lines[0] = "x";
    lens[0] = 1;
    ck_assert_ptr_null(ws_route_pick_subprotocol(d, lines, lens, 1));
    ck_assert_str_eq(ws_route_pick_subprotocol(d, lines, lens, 2), "v2");
}
END_TEST

/* Origins match whole, ignoring case; "*" lets everyone in. */
START_TEST(test_route_origin_allowed)
{
    const struct ws_route_opts *d = ws->routes[0];
    const char *o;

    ck_assert(ws_route_origin_allowed(d, "https://x", 9));
    ck_assert_int_eq(route_set("allowed_origins",
                               "https://a.example, http://b.example:8080"),
                     TORPOR_OK);
    o = "https://a.example";
    ck_assert(ws_route_origin_allowed(d, o, strlen(o)));
    o = "HTTPS://A.EXAMPLE";
    ck_assert(ws_route_origin_allowed(d, o, strlen(o)));
    o = "http://b.example:8080";
    ck_assert(ws_route_origin_allowed(d, o, strlen(o)));
    o = "http://a.example";
    ck_assert(!ws_route_origin_allowed(d, o, strlen(o)));
    o = "https://a.example:443";
    ck_assert(!ws_route_origin_allowed(d, o, strlen(o)));
    o = "https://a.example.evil";
    ck_assert(!ws_route_origin_allowed(d, o, strlen(o)));
    o = "https://a.exampl";
    ck_assert(!ws_route_origin_allowed(d, o, strlen(o)));
    o = "http://b.example";
    ck_assert(!ws_route_origin_allowed(d, o, strlen(o)));
    ck_assert(!ws_route_origin_allowed(d, "null", 4));
    ck_assert(!ws_route_origin_allowed(d, "", 0));
}
END_TEST

/* Booleans take the usual spellings. */
START_TEST(test_route_parse_bool)
{
    ck_assert_int_eq(route_set("origin_required", "YES"), TORPOR_OK);
    ck_assert(ws->routes[0]->origin_required);
    ck_assert_int_eq(route_set("origin_required", "off"), TORPOR_OK);
    ck_assert(!ws->routes[0]->origin_required);
    ck_assert_int_eq(route_set("subprotocol_required", "true"), TORPOR_OK);
    ck_assert(ws->routes[0]->subprotocol_required);
}
END_TEST

/* ---- errors ---- */

/* A bad list is refused whole, with a reason, and the old one stays. */
START_TEST(test_route_subprotocols_rejected)
{
    static const char *const bad[] = {
        "a,,b", "a,", ",a", "a b", "a/b", "a;b", "\"a\"", "a,\tb c", "x\x7f",
    };
    char long_token[66];
    char many[200] = "p0";

    ck_assert_int_eq(route_set("subprotocols", "keep"), TORPOR_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(route_set("subprotocols", bad[i]) == TORPOR_EINVAL,
                      "accepted \"%s\"", bad[i]);
        ck_assert(why[0] != '\0');
    }
    memset(long_token, 'a', 65);
    long_token[65] = '\0';
    ck_assert_int_eq(route_set("subprotocols", long_token), TORPOR_EINVAL);
    ck_assert_str_eq(why, "a subprotocol is longer than 64 bytes");
    long_token[64] = '\0';
    ck_assert_int_eq(route_set("subprotocols", long_token), TORPOR_OK);
    ck_assert_int_eq(route_set("subprotocols", "keep"), TORPOR_OK);
    for (int i = 1; i < 33; i++) {
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ",p%d", i);
    }
    ck_assert_int_eq(route_set("subprotocols", many), TORPOR_EINVAL);
    ck_assert_str_eq(why, "at most 32 elements");
    ck_assert_uint_eq(ws->routes[0]->subprotocols.n, 1);
    ck_assert_str_eq(ws->routes[0]->subprotocols.items[0], "keep");
}
END_TEST

/* Anything but SCHEME://HOST[:PORT] or a lone "*" is refused. */
START_TEST(test_route_origins_rejected)
{
    static const char *const bad[] = {
        "",
        "a.example",
        "https://a.example/",
        "https://a.example/app",
        "https://a.example?x=1",
        "https://a.example#top",
        "https://user@a.example",
        "https://",
        "://a.example",
        "1http://a.example",
        "ht tp://a.example",
        "https://a.example:",
        "https://a.example:123456",
        "https://a.example:80x",
        "https://a ex",
        "http://[::1",
        "http://[]",
        "http://[g::1]",
        "http://[::1]x",
        "*, https://a.example",
        "https://a.example, *",
        "https://a.example,",
        "null",
    };

    ck_assert_int_eq(route_set("allowed_origins", "https://keep.example"),
                     TORPOR_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(route_set("allowed_origins", bad[i]) == TORPOR_EINVAL,
                      "accepted \"%s\"", bad[i]);
        ck_assert(why[0] != '\0');
    }
    ck_assert_int_eq(route_set("allowed_origins", "https://a.example/"),
                     TORPOR_EINVAL);
    ck_assert_str_eq(
        why, "an origin is SCHEME://HOST[:PORT], without path, query or user");
    ck_assert_uint_eq(ws->routes[0]->allowed_origins.n, 1);
    ck_assert_str_eq(ws->routes[0]->allowed_origins.items[0],
                     "https://keep.example");
}
END_TEST

/* A transport-wide key in the route form is an error that says so. */
START_TEST(test_route_transport_key_per_route)
{
    static const char *const keys[] = {
        "route.chat.listen",
        "route.chat.handshake_timeout_ms",
        "route.chat.max_handshake_bytes",
        "route.chat.close_timeout_ms",
        "route.chat.max_connections_per_address",
        "route.chat.max_upgrades_per_second_per_address",
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        ck_assert_int_eq(route_set(keys[i], "1"), TORPOR_EINVAL);
        ck_assert_msg(
            strstr(why,
                   "applies to the whole transport and cannot be set per route")
                != NULL,
            "why: %s", why);
        ck_assert(strstr(why, strchr(keys[i] + 6, '.') + 1) != NULL);
    }
    ck_assert_uint_eq(ws->n_routes, 1);
}
END_TEST

/* Unknown keys are unknown in both forms; a bad route name is an error. */
START_TEST(test_route_bad_keys)
{
    ck_assert_int_eq(route_set("route.chat.frobs", "1"), TORPOR_ENOKEY);
    ck_assert_int_eq(route_set("route.chat", "1"), TORPOR_ENOKEY);
    ck_assert_int_eq(route_set("frobs", "1"), TORPOR_ENOKEY);
    ck_assert_int_eq(route_set("listen", "127.0.0.1:1"), TORPOR_ENOKEY);
    ck_assert_int_eq(route_set("route..ping_interval_ms", "1000"),
                     TORPOR_EINVAL);
    ck_assert_int_eq(route_set("route.a$b.ping_interval_ms", "1000"),
                     TORPOR_EINVAL);
    ck_assert_int_eq(route_set("route.a.b.ping_interval_ms", "1000"),
                     TORPOR_ENOKEY);
    ck_assert_uint_eq(ws->n_routes, 1);
}
END_TEST

/* Numbers outside their range, or not numbers, are refused with the range. */
START_TEST(test_route_bad_numbers)
{
    ck_assert_int_eq(route_set("ping_interval_ms", "50"), TORPOR_EINVAL);
    ck_assert_str_eq(why,
                     "expected an integer from 100 to 86400000, or 0 for off");
    ck_assert_int_eq(route_set("ping_interval_ms", "-1"), TORPOR_EINVAL);
    ck_assert_int_eq(route_set("ping_interval_ms", " 100"), TORPOR_EINVAL);
    ck_assert_int_eq(route_set("ping_interval_ms", "100ms"), TORPOR_EINVAL);
    ck_assert_int_eq(route_set("max_message_bytes", "0"), TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected an integer from 1 to 1073741824");
    ck_assert_int_eq(route_set("route.r.pong_timeout_ms", "3600001"),
                     TORPOR_EINVAL);
    ck_assert_int_eq(route_set("origin_required", "maybe"), TORPOR_EINVAL);
    ck_assert_str_eq(why, "expected yes or no");
    ck_assert_uint_eq(ws->routes[0]->ping_interval_ms, 30000);
}
END_TEST

/* A route that requires a subprotocol must list one; the key is named. */
START_TEST(test_route_required_without_list)
{
    ck_assert_int_eq(route_set("route.strict.subprotocol_required", "yes"),
                     TORPOR_OK);
    ck_assert_int_eq(route_finish(), TORPOR_EINVAL);
    ck_assert_str_eq(
        route_test_reports,
        "route.strict.subprotocol_required: subprotocol_required is set but subprotocols is empty, so every request would be refused\n");
}
END_TEST

/* So must the defaults, and an empty route list undoes a default one. */
START_TEST(test_route_required_default_without_list)
{
    ck_assert_int_eq(route_set("subprotocol_required", "yes"), TORPOR_OK);
    ck_assert_int_eq(route_set("subprotocols", "v1"), TORPOR_OK);
    ck_assert_int_eq(route_set("route.bare.subprotocols", ""), TORPOR_OK);
    ck_assert_int_eq(route_finish(), TORPOR_EINVAL);
    ck_assert_msg(strstr(route_test_reports, "route.bare.subprotocols: ")
                      == route_test_reports,
                  "reported: %s", route_test_reports);
}
END_TEST

/* Settings for a route the daemon does not have are a typo, reported. */
START_TEST(test_route_unknown_name)
{
    ck_assert_int_eq(route_set("route.chta.ping_interval_ms", "1000"),
                     TORPOR_OK);
    ck_assert_int_eq(route_set("route.chat.ping_interval_ms", "2000"),
                     TORPOR_OK);
    ck_assert_int_eq(route_finish_without("chta"), TORPOR_EINVAL);
    ck_assert_str_eq(
        route_test_reports,
        "route.chta.ping_interval_ms: no route of that name in the configuration: add a [route.NAME] section, or fix the name\n");
    ck_assert_uint_eq(route_for("chat")->ping_interval_ms, 2000);
}
END_TEST

/* ---- limits ---- */

/* 255 routes may have options of their own; the next is refused. */
START_TEST(test_route_limit)
{
    char key[64];

    for (int i = 0; i < WS_ROUTES_MAX; i++) {
        snprintf(key, sizeof(key), "route.r%d.ping_interval_ms", i);
        ck_assert_int_eq(route_set(key, "1000"), TORPOR_OK);
    }
    ck_assert_int_eq(route_set("route.r0.pong_timeout_ms", "1000"), TORPOR_OK);
    ck_assert_int_eq(route_set("route.one-more.ping_interval_ms", "1000"),
                     TORPOR_EINVAL);
    ck_assert_str_eq(why, "at most 255 routes may have settings of their own");
    ck_assert_int_eq(route_finish(), TORPOR_OK);
    ck_assert_uint_eq(route_for("r254")->index, 255);
    ck_assert_ptr_eq(ws->routes[255], route_for("r254"));
}
END_TEST

static Suite *
ws_route_suite(void)
{
    Suite *s = suite_create("ws_route");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");
    TCase *limits = tcase_create("limits");

    tcase_add_checked_fixture(core, route_setup, route_teardown);
    tcase_add_test(core, test_route_defaults);
    tcase_add_test(core, test_route_override_one_route);
    tcase_add_test(core, test_route_override_any_order);
    tcase_add_test(core, test_route_lookup_exact);
    tcase_add_test(core, test_route_lists_inherited);
    tcase_add_test(core, test_route_subprotocols_empty);
    tcase_add_test(core, test_route_parse_subprotocols);
    tcase_add_test(core, test_route_parse_origins);
    tcase_add_test(core, test_route_pick_subprotocol);
    tcase_add_test(core, test_route_pick_subprotocol_lines);
    tcase_add_test(core, test_route_origin_allowed);
    tcase_add_test(core, test_route_parse_bool);
    suite_add_tcase(s, core);

    tcase_add_checked_fixture(errors, route_setup, route_teardown);
    tcase_add_test(errors, test_route_subprotocols_rejected);
    tcase_add_test(errors, test_route_origins_rejected);
    tcase_add_test(errors, test_route_transport_key_per_route);
    tcase_add_test(errors, test_route_bad_keys);
    tcase_add_test(errors, test_route_bad_numbers);
    tcase_add_test(errors, test_route_required_without_list);
    tcase_add_test(errors, test_route_required_default_without_list);
    tcase_add_test(errors, test_route_unknown_name);
    suite_add_tcase(s, errors);

    tcase_add_checked_fixture(limits, route_setup, route_teardown);
    tcase_add_test(limits, test_route_limit);
    suite_add_tcase(s, limits);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(ws_route_suite());
    srunner_set_tap(sr, "/dev/stdout");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
