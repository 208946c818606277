#!/usr/bin/python3
"""The HTTP side of the WebSocket handshake, sent by hand over loopback.

Each request is written byte for byte and the test asserts the exact status
code of the answer (and the headers the spec names).
"""

import base64
import hashlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, http_exchange, upgrade_request  # noqa

# The handshake timeout is short here so the idle-peer test ends soon; the
# test still only asserts that the peer is dropped, within a generous bound.
CONFIG = harness.DEFAULT_CONFIG.replace(
    "max_message_bytes = 1048576\n",
    "max_message_bytes = 1048576\nhandshake_timeout_ms = 1000\n")


def status_of(d, request):
    status, headers, line, body = http_exchange(d.port, request)
    return status, headers, line


def expect_status(d, request, want):
    status, headers, line = status_of(d, request)
    check_eq(status, want, "status for %r (line %r)"
             % (request.split(b"\r\n", 1)[0], line))
    return headers


async def upgrade_ok(d):
    key = base64.b64encode(os.urandom(16)).decode()
    status, headers, line = status_of(
        d, upgrade_request("/relay/" + harness.unique(), d.port, key=key))
    check_eq(status, 101, "status (line %r)" % line)
    want = base64.b64encode(hashlib.sha1(
        (key + harness.GUID).encode()).digest()).decode()
    check_eq(headers.get("sec-websocket-accept"), want,
             "Sec-WebSocket-Accept")
    check_eq(headers.get("upgrade", "").lower(), "websocket", "Upgrade")


async def unknown_route_404(d):
    expect_status(d, upgrade_request("/nosuch/room", d.port), 404)


async def relay_no_name_404(d):
    expect_status(d, upgrade_request("/relay/", d.port), 404)


async def relay_no_slash_404(d):
    expect_status(d, upgrade_request("/relay", d.port), 404)


async def echo_no_name_404(d):
    expect_status(d, upgrade_request("/echo/", d.port), 404)


async def root_404(d):
    expect_status(d, upgrade_request("/", d.port), 404)


async def plain_get_426(d):
    req = ("GET /relay/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Accept: text/html\r\n\r\n" % (harness.unique(), d.port)).encode()
    expect_status(d, req, 426)


async def no_upgrade_header_426(d):
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     upgrade=False), 426)


async def missing_key_400(d):
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     key=""), 400)


async def invalid_key_400(d):
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     key="not-a-key"), 400)


async def short_key_400(d):
    # Base64 of 15 bytes: well-formed, but the key must be 16 bytes.
    key = base64.b64encode(os.urandom(15)).decode()
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     key=key), 400)


async def two_keys_400(d):
    key2 = base64.b64encode(os.urandom(16)).decode()
    expect_status(d, upgrade_request(
        "/relay/" + harness.unique(), d.port,
        extra="Sec-WebSocket-Key: %s\r\n" % key2), 400)


async def post_405(d):
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     method="POST"), 405)


async def put_405(d):
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     method="PUT"), 405)


async def version_8_426(d):
    headers = expect_status(d, upgrade_request(
        "/relay/" + harness.unique(), d.port, version="8"), 426)
    check_eq(headers.get("sec-websocket-version"), "13",
             "Sec-WebSocket-Version header of the 426")


async def missing_host_400(d):
    # RFC 7230 5.4: an HTTP/1.1 request without Host gets 400.
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     host=False), 400)


async def oversized_head_431(d):
    filler = "X-Filler: %s\r\n" % ("f" * 9000)
    expect_status(d, upgrade_request("/relay/" + harness.unique(), d.port,
                                     extra=filler), 431)


async def idle_handshake_dropped(d):
    # A peer that sends half a request is dropped after handshake_timeout_ms
    # (1 s here); 15 s only bounds the wait.
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=15)
    try:
        sock.sendall(b"GET /relay/x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        deadline = time.monotonic() + 15
        data = b""
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return  # dropped, possibly after an error answer
            data += chunk
        raise harness.TestFailure("connection with an unfinished handshake"
                                  " still open after 15 s; got %r" % data)
    finally:
        sock.close()


async def still_serves(d):
    # After all the refusals above, a real client still gets through.
    room = harness.unique()
    a = await harness.connect(d, "/relay/" + room)
    b = await harness.connect(d, "/relay/" + room)
    await a.send("still here")
    check_eq(await harness.recv(b), "still here", "relay after refusals")
    await harness.close_all(a, b)


TESTS = [
    ("http: a valid upgrade gets 101 with the right Sec-WebSocket-Accept",
     upgrade_ok),
    ("http: unknown route gets 404", unknown_route_404),
    ("http: /relay/ with no name gets 404", relay_no_name_404),
    ("http: /relay with no slash gets 404", relay_no_slash_404),
    ("http: /echo/ with no name gets 404", echo_no_name_404),
    ("http: / gets 404", root_404),
    ("http: plain GET without upgrade gets 426", plain_get_426),
    ("http: key and version but no Upgrade/Connection gets 426",
     no_upgrade_header_426),
    ("http: missing Sec-WebSocket-Key gets 400", missing_key_400),
    ("http: malformed Sec-WebSocket-Key gets 400", invalid_key_400),
    ("http: a 15-byte Sec-WebSocket-Key gets 400", short_key_400),
    ("http: two Sec-WebSocket-Key headers get 400", two_keys_400),
    ("http: POST gets 405", post_405),
    ("http: PUT gets 405", put_405),
    ("http: Sec-WebSocket-Version 8 gets 426 naming version 13",
     version_8_426),
    ("http: HTTP/1.1 without Host gets 400", missing_host_400),
    ("http: a request head over max_handshake_bytes gets 431",
     oversized_head_431),
    ("http: an unfinished handshake is dropped after its timeout",
     idle_handshake_dropped),
    ("http: relay still works after the refusals", still_serves),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, daemon_config=CONFIG)
