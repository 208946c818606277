#!/usr/bin/python3
"""Per-route options of the WebSocket transport, with real clients.

Routes get settings of their own through route.NAME.KEY in
[transport.websocket]: here several routes of the echo class differ only in
their subprotocols, allowed origins or message limit, and each test shows
that a request is answered by its own route's settings: the subprotocol the
server prefers in the 101, 400 where one is required and none matches, 403
for an origin not allowed, and the subprotocol reaching the class.  Bad
settings fail --check-config (or the start) with a line that says why.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (check, check_eq, http_exchange,  # noqa: E402
                     upgrade_request)

import websockets  # noqa: E402

CONFIG = """\
[core]
log_level = notice
plugins = websocket, relay, echo, probe

[transport.websocket]
listen = 127.0.0.1:0
route.proto.subprotocols = chat.v2, chat.v1
route.proto.subprotocol_required = yes
route.soft.subprotocols = chat.v1
route.origin.allowed_origins = https://a.example, HTTPS://B.Example:8443
route.origin.origin_required = yes
route.anyorigin.origin_required = yes
route.probe.subprotocols = probe.v1
route.small.max_message_bytes = 100

[route.proto]
class = echo
[route.soft]
class = echo
[route.origin]
class = echo
[route.anyorigin]
class = echo
[route.small]
class = echo
[route.probe]
class = probe
"""


def upgrade(d, route, protocols=None, origin=None):
    """Send an upgrade for a fresh room on route; return (status, headers).
    protocols is one Sec-WebSocket-Protocol value, or a list of them, one
    header line each."""
    extra = ""
    if isinstance(protocols, str):
        protocols = [protocols]
    for value in protocols or ():
        extra += "Sec-WebSocket-Protocol: %s\r\n" % value
    if origin is not None:
        extra += "Origin: %s\r\n" % origin
    status, headers, line, _ = http_exchange(
        d.port, upgrade_request("/%s/%s" % (route, harness.unique()), d.port,
                                extra=extra))
    return status, headers


def expect(d, route, want, protocols=None, origin=None, chosen=None):
    status, headers = upgrade(d, route, protocols, origin)
    what = "/%s/ with protocols %r, origin %r" % (route, protocols, origin)
    check_eq(status, want, "status of " + what)
    check_eq(headers.get("sec-websocket-protocol"), chosen,
             "Sec-WebSocket-Protocol answered to " + what)


# ---- subprotocols ----

async def server_order_decides(d):
    expect(d, "proto", 101, "chat.v1, chat.v2", chosen="chat.v2")
    expect(d, "proto", 101, "chat.v2,chat.v1", chosen="chat.v2")
    expect(d, "proto", 101, "chat.v1", chosen="chat.v1")
    expect(d, "proto", 101, "x, chat.v1, y", chosen="chat.v1")
    # Several lines are one list (RFC 6455 11.3.4): the order is still ours.
    expect(d, "proto", 101, ["chat.v1", "x, chat.v2"], chosen="chat.v2")
    expect(d, "proto", 101, ["x", "chat.v1"], chosen="chat.v1")


async def required_and_none_matches_400(d):
    expect(d, "proto", 400, "chat.v3")
    expect(d, "proto", 400, "CHAT.V2")
    expect(d, "proto", 400)
    # The refusal is the route's: another route takes the same request.
    expect(d, "echo", 101, "chat.v3")


async def optional_and_none_matches_101(d):
    expect(d, "soft", 101, "chat.v3")
    expect(d, "soft", 101)
    expect(d, "soft", 101, "chat.v3, chat.v1", chosen="chat.v1")
    # A route with no list never answers one, whatever is offered.
    expect(d, "echo", 101, "chat.v1")


async def library_client_gets_subprotocol(d):
    ws = await websockets.connect(
        d.uri("/proto/" + harness.unique()), subprotocols=["chat.v1",
                                                           "chat.v2"],
        compression=None, open_timeout=harness.IO_TIMEOUT_S,
        ping_interval=None)
    try:
        check_eq(ws.subprotocol, "chat.v2", "subprotocol the client saw")
        check_eq(await harness.ask(ws, "over chat.v2"), "over chat.v2",
                 "echo over the agreed subprotocol")
    finally:
        await harness.close_all(ws)


async def library_client_refused(d):
    try:
        ws = await websockets.connect(
            d.uri("/proto/" + harness.unique()), subprotocols=["chat.v9"],
            compression=None, open_timeout=harness.IO_TIMEOUT_S,
            ping_interval=None)
    except websockets.exceptions.InvalidStatusCode as exc:
        check_eq(exc.status_code, 400, "status the client saw")
        return
    await harness.close_all(ws)
    raise harness.TestFailure("a client offering only chat.v9 was upgraded")


async def class_sees_subprotocol(d):
    room = "/probe/" + harness.unique()
    a = await websockets.connect(
        d.uri(room), subprotocols=["probe.v1"], compression=None,
        open_timeout=harness.IO_TIMEOUT_S, ping_interval=None)
    b = await harness.connect(d, room)
    try:
        check_eq(a.subprotocol, "probe.v1", "subprotocol agreed")
        check_eq(b.subprotocol, None, "no subprotocol without an offer")
        check_eq(await harness.ask(b, "count subprotocol:probe.v1"),
                 "count 1", "connections the class tagged with the "
                 "subprotocol it was told in accept")
    finally:
        await harness.close_all(a, b)


# ---- origins ----

async def allowed_origins_pass(d):
    expect(d, "origin", 101, origin="https://a.example")
    expect(d, "origin", 101, origin="HTTPS://A.EXAMPLE")
    expect(d, "origin", 101, origin="https://b.example:8443")


async def other_origins_403(d):
    for origin in ("https://c.example", "http://a.example",
                   "https://a.example:444", "https://b.example",
                   "https://a.example.evil", "null"):
        expect(d, "origin", 403, origin=origin)


async def origin_required_403_without(d):
    expect(d, "origin", 403)
    expect(d, "anyorigin", 403)
    expect(d, "anyorigin", 101, origin="https://anything.example")


async def default_route_any_origin(d):
    expect(d, "echo", 101, origin="https://c.example")
    expect(d, "echo", 101)


# ---- other per-route settings ----

async def message_limit_per_route(d):
    small = await harness.connect(d, "/small/" + harness.unique())
    big = await harness.connect(d, "/echo/" + harness.unique())
    try:
        check_eq(await harness.ask(small, "x" * 100), "x" * 100,
                 "100 bytes pass on /small/")
        check_eq(await harness.ask(big, "x" * 101), "x" * 101,
                 "101 bytes pass on /echo/")
        await small.send("x" * 101)
        await harness.expect_server_close(small, 1009)
    finally:
        await harness.close_all(small, big)


async def refusals_counted(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        expect(d, "origin", 403, origin="https://c.example")
        expect(d, "origin", 403)
        expect(d, "proto", 400, "nope")
    finally:
        log = harness.stop_clean(d)
    m = re.search(r"NOTICE websocket: stopped: .*", log)
    check(m is not None, "the websocket plugin logs its counters at stop")
    check("refused 0 over the connections per address, 0 over the upgrade "
          "rate, 2 by origin, 1 without a subprotocol" in m.group(0),
          "counters: %s" % m.group(0))
    check(re.search(r'WARN websocket: could not upgrade "127\.0\.0\.1:\d+" '
                    r'on route "origin": origin "https://c\.example" is not '
                    r'allowed; answered 403', log) is not None,
          "the origin refusal is logged with its route and origin")
    check('route "proto" has its own subprotocols, subprotocol_required'
          in log, "the routes with settings of their own are logged")


# ---- bad settings ----

def check_config(lines):
    path = os.path.join(harness.SCRATCH, "bad-%s.conf" % harness.unique())
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    rc, out, err = harness.run_cli(["--config", path, "--check-config",
                                    "--plugin-path",
                                    harness.env_path("TORPOR_PLUGIN_PATH")])
    return path, rc, err


BASE = ["[core]", "plugins = websocket, echo", "[transport.websocket]",
        "listen = 127.0.0.1:0"]


def _bad_setting(line, words):
    async def run(_):
        path, rc, err = check_config(BASE + [line])
        check_eq(rc, 2, "--check-config exit code; stderr:\n" + err)
        want = "%s:5:" % path
        lines = [l for l in err.splitlines() if want in l]
        check(lines, "stderr names %s; stderr:\n%s" % (want, err))
        for word in words:
            check(word in lines[0], "%r not in %r" % (word, lines[0]))
        check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)
    return run


async def good_settings_pass(_):
    path, rc, err = check_config(BASE + [
        "route.echo.subprotocols = a, b",
        "route.echo.subprotocol_required = yes",
        "route.echo.allowed_origins = https://a.example",
        "route.echo.ping_interval_ms = 0",
        "allowed_origins = *",
        "max_connections_per_address = 10",
        "max_upgrades_per_second_per_address = 5"])
    check_eq(rc, 0, "--check-config exit code; stderr:\n" + err)


def _whole_section(lines, words):
    """A problem only the whole section shows: --check-config and a start
    both refuse it as a configuration problem, on the line of its key."""
    async def run(_):
        path, rc, err = check_config(lines)
        start = harness.run_cli(["--config", path, "--plugin-path",
                                 harness.env_path("TORPOR_PLUGIN_PATH")])
        for what, (rc, err) in (("--check-config", (rc, err)),
                                ("a start", (start[0], start[2]))):
            check_eq(rc, 2, "exit code of %s; stderr:\n%s" % (what, err))
            want = "%s:5:" % path
            found = [l for l in err.splitlines() if want in l]
            check(found, "%s names %s; stderr:\n%s" % (what, want, err))
            for word in words:
                check(word in found[0], "%s: %r not in %r"
                      % (what, word, found[0]))
            check("listening on" not in err, "it listened:\n" + err)
            check(not harness.sanitizer_lines(err),
                  "sanitizer report:\n" + err)
    return run


# One torpord, with the probe class, serves the tests that take it.
_shared = {}


def shared(fn):
    async def run(_):
        if "d" not in _shared:
            _shared["d"] = harness.fixture_daemon(CONFIG)
        await fn(_shared["d"])
    return run


async def shared_stops_clean(_):
    check("d" in _shared, "the shared torpord was started")
    harness.stop_clean(_shared.pop("d"))


TESTS = [
    ("routes: the server's order picks the subprotocol, answered in the 101",
     shared(server_order_decides)),
    ("routes: a required subprotocol with no match gets 400",
     shared(required_and_none_matches_400)),
    ("routes: an optional subprotocol with no match upgrades without one",
     shared(optional_and_none_matches_101)),
    ("routes: a websockets client sees the chosen subprotocol",
     shared(library_client_gets_subprotocol)),
    ("routes: a websockets client offering none of them sees 400",
     shared(library_client_refused)),
    ("routes: the class hears the subprotocol in accept",
     shared(class_sees_subprotocol)),
    ("routes: listed origins pass, ignoring case",
     shared(allowed_origins_pass)),
    ("routes: other origins, ports and schemes get 403",
     shared(other_origins_403)),
    ("routes: origin_required refuses a request without Origin with 403",
     shared(origin_required_403_without)),
    ("routes: a route without a list lets any origin in, and none",
     shared(default_route_any_origin)),
    ("routes: max_message_bytes is per route",
     shared(message_limit_per_route)),
    ("routes: the shared torpord exits 0 with no sanitizer report",
     shared_stops_clean),
    ("routes: refusals are counted in the stop line and logged",
     refusals_counted),
    ("config: a transport-wide key per route fails --check-config",
     _bad_setting("route.echo.listen = 127.0.0.1:0",
                  ['"route.echo.listen"', "applies to the whole transport "
                   "and cannot be set per route"])),
    ("config: an origin with a path fails --check-config",
     _bad_setting("route.echo.allowed_origins = https://a.example/",
                  ["allowed_origins", "without path"])),
    ("config: a subprotocol that is not a token fails --check-config",
     _bad_setting("subprotocols = chat v1", ["subprotocols", "token"])),
    ("config: an unknown per-route key fails --check-config",
     _bad_setting("route.echo.frobs = 1", ['unknown key "route.echo.frobs"'])),
    ("config: a bad route name fails --check-config",
     _bad_setting("route.e$ho.ping_interval_ms = 1000", ["route name"])),
    ("config: per-route and address settings pass --check-config",
     good_settings_pass),
    ("config: a required subprotocol with none listed is refused on its "
     "line, by --check-config and at start",
     _whole_section(BASE + ["route.echo.subprotocol_required = yes",
                            "[route.echo]", "class = echo"],
                    ['"route.echo.subprotocol_required" in section '
                     '[transport.websocket]',
                     "subprotocols is empty"])),
    ("config: settings for a route the configuration does not have are "
     "refused on their line",
     _whole_section(BASE + ["route.ecoh.ping_interval_ms = 1000",
                            "[route.echo]", "class = echo"],
                    ['"route.ecoh.ping_interval_ms" in section '
                     '[transport.websocket]',
                     "no route of that name"])),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
