#!/usr/bin/python3
"""Keepalive and the upgrade deadline: peers that stop talking are let go.

With short settings (a ping after 250 ms of silence, 3 s to answer it), a
raw client that never answers pings is dropped without a close frame, and
one that answers every ping stays open long past both.  A route with
ping_interval_ms = 0 is never pinged.  A client of a room that hibernates
is pinged too, and its pongs do not wake the room.  A peer that opens TCP
and sends nothing, or trickles its request a byte at a time, is closed at
handshake_timeout_ms.  The plugin's counters at stop say how many of each.
"""

import os
import re
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (check, check_eq, RawWS, OP_PING, OP_PONG,  # noqa: E402
                     OP_TEXT, OP_CLOSE)

PING_MS = 250
PONG_TIMEOUT_MS = 3000

CONFIG = """\
[core]
log_level = info
plugins = websocket, echo, probe
loops = 4

[transport.websocket]
listen = 127.0.0.1:0
handshake_timeout_ms = 1000
ping_interval_ms = %d
pong_timeout_ms = %d
route.quiet.ping_interval_ms = 0

[route.echo]
class = echo
[route.quiet]
class = echo
[route.probe]
class = probe
""" % (PING_MS, PONG_TIMEOUT_MS)

# Only bounds a wait; no test asserts how long anything took.
BOUND_S = 20

HIBERNATED = re.compile(r'INFO core object="([^"]*)": object hibernated')
WOKE = re.compile(r'INFO core object="([^"]*)": object woke from hibernation')


def count(pattern, log, obj):
    return sum(1 for m in pattern.finditer(log) if m.group(1) == obj)


def answer_pings(raw, n):
    """Answer server pings until n have come; fail on any other frame."""
    for _ in range(n):
        _, _, op, payload = raw.recv_frame()
        check_eq(op, OP_PING, "opcode of a frame the idle client got")
        raw.send_frame(OP_PONG, payload)


def ask_raw(raw, text):
    """Send text; answer pings until the reply comes; return it."""
    raw.send_frame(OP_TEXT, text.encode())
    while True:
        _, _, op, payload = raw.recv_frame()
        if op == OP_PING:
            raw.send_frame(OP_PONG, payload)
            continue
        check_eq(op, OP_TEXT, "opcode of the reply")
        return payload.decode()


async def silent_peer_dropped(d):
    raw = RawWS(d.port, "/echo/" + harness.unique(), timeout=BOUND_S)
    pings = 0
    try:
        while True:
            try:
                _, _, op, payload = raw.recv_frame()
            except EOFError:
                break
            check(op != OP_CLOSE, "a dropped peer gets no close frame")
            check_eq(op, OP_PING, "opcode of a frame the silent client got")
            check_eq(payload, b"", "ping payload")
            pings += 1
    finally:
        raw.close()
    check_eq(pings, 1, "pings sent to a peer that never answers")


async def answering_peer_kept(d):
    raw = RawWS(d.port, "/echo/" + harness.unique(), timeout=BOUND_S)
    try:
        # 14 pings take over 3.5 s: longer than an interval and a timeout.
        answer_pings(raw, 14)
        check_eq(ask_raw(raw, "still here"), "still here",
                 "echo after answering every ping")
    finally:
        raw.close()


async def quiet_route_not_pinged(d):
    quiet = RawWS(d.port, "/quiet/" + harness.unique(), timeout=BOUND_S)
    loud = RawWS(d.port, "/echo/" + harness.unique(), timeout=BOUND_S)
    try:
        # Three pings to the other client take three intervals at least.
        answer_pings(loud, 3)
        quiet.sock.setblocking(False)
        try:
            data = quiet.sock.recv(64)
        except BlockingIOError:
            data = None
        check_eq(data, None, "bytes sent to a client of a route whose "
                 "ping_interval_ms is 0")
        quiet.sock.setblocking(True)
        check_eq(ask_raw(quiet, "quiet"), "quiet", "echo on the quiet route")
    finally:
        quiet.close()
        loud.close()


async def hibernating_room_pinged_without_waking(d):
    room = harness.unique()
    obj = "probe/" + room
    raw = RawWS(d.port, "/probe/" + room, timeout=BOUND_S)
    try:
        deadline = time.monotonic() + BOUND_S
        while count(HIBERNATED, d.log(), obj) == 0:
            check(time.monotonic() < deadline,
                  "%s did not hibernate within %d s" % (obj, BOUND_S))
            # Pings come meanwhile, and must be answered.
            if select.select([raw.sock], [], [], 0.05)[0] or raw.buf:
                answer_pings(raw, 1)
        answer_pings(raw, 4)
        check_eq(count(WOKE, d.log(), obj), 0,
                 "wakes of the room while its client was pinged")
        check_eq(ask_raw(raw, "name"), "name " + room,
                 "the room answers after the pings")
        check_eq(count(WOKE, d.log(), obj), 1,
                 "wakes once a message arrives (the check can see a wake)")
    finally:
        raw.close()


def expect_closed_unanswered(sock, what):
    """Read until EOF (bounded); the server must answer nothing."""
    sock.settimeout(BOUND_S)
    data = b""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            chunk = b""
        except socket.timeout:
            break
        if not chunk:
            check_eq(data, b"", "bytes the server sent to " + what)
            return
        data += chunk
    raise harness.TestFailure("%s still open after %d s; got %r"
                              % (what, BOUND_S, data))


async def silent_tcp_closed(d):
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=BOUND_S)
    try:
        expect_closed_unanswered(sock, "a peer that sent nothing")
    finally:
        sock.close()


async def trickling_request_closed(d):
    request = harness.upgrade_request("/echo/" + harness.unique(), d.port)
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=BOUND_S)
    sent = 0
    try:
        # One byte every 100 ms; the request would take 15 s or more.
        while sent < len(request) - 1:
            try:
                sock.sendall(request[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            sock.settimeout(0.1)
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            check_eq(chunk, b"", "what the server answered a partial "
                     "request")
            break
        check(sent < len(request) - 1,
              "the server still read after %d of %d bytes"
              % (sent, len(request)))
        expect_closed_unanswered(sock, "a peer trickling its request")
    finally:
        sock.close()


async def counters_at_stop(d):
    log = harness.stop_clean(d)
    m = re.search(r"NOTICE websocket: stopped: (\d+) keepalive drops, "
                  r"(\d+) slow consumers closed, (\d+) handshake timeouts",
                  log)
    check(m is not None, "the websocket plugin logs its counters at stop")
    check_eq(m.groups(), ("1", "0", "2"),
             "keepalive drops, slow consumers, handshake timeouts")


# One torpord serves every test, so the counters at the end add them up.
_shared = {}


def shared(fn):
    async def run(_):
        if "d" not in _shared:
            _shared["d"] = harness.fixture_daemon(CONFIG)
        await fn(_shared["d"])
    return run


TESTS = [
    ("keepalive: a peer that never answers a ping is dropped, no close "
     "frame", shared(silent_peer_dropped)),
    ("keepalive: a peer that answers every ping stays open",
     shared(answering_peer_kept)),
    ("keepalive: a route with ping_interval_ms = 0 is not pinged",
     shared(quiet_route_not_pinged)),
    ("keepalive: a hibernating room's client is pinged; the room stays "
     "asleep", shared(hibernating_room_pinged_without_waking)),
    ("deadline: a peer that opens TCP and sends nothing is closed",
     shared(silent_tcp_closed)),
    ("deadline: a peer trickling its request is closed at the deadline",
     shared(trickling_request_closed)),
    ("counters: the stop line counts 1 keepalive drop and 2 handshake "
     "timeouts, and torpord exits 0", shared(counters_at_stop)),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
