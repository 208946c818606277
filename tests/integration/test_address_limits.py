#!/usr/bin/python3
"""Limits per client address: connections held at once, upgrades per second;
and the limit on connections in their handshake over all addresses.

With max_connections_per_address = 3, a fourth connection from 127.0.0.1,
open or still in its handshake, is closed unanswered, while 127.0.0.2 still
gets in; once one of the three closes, on whichever loop it lived, the
address has room again.  With max_upgrades_per_second_per_address = 2, a
burst of upgrades gets 101 for the bucket's worth and 429 with Retry-After
for the rest, and the address is served again after that many seconds.
With max_handshakes = 4, a fifth connection in its handshake, from
whichever address, closes the oldest, and an upgrade still gets in.
"""

import asyncio
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, connect, parse_head  # noqa: E402

CONN_CONFIG = """\
[core]
log_level = notice
plugins = websocket, echo
loops = 4

[transport.websocket]
listen = 127.0.0.1:0
handshake_timeout_ms = 1500
max_connections_per_address = 3
ping_interval_ms = 0

[route.echo]
class = echo
"""

RATE_CONFIG = """\
[core]
log_level = notice
plugins = websocket, echo

[transport.websocket]
listen = 127.0.0.1:0
max_upgrades_per_second_per_address = 2

[route.echo]
class = echo
"""

HANDSHAKES_CONFIG = """\
[core]
log_level = notice
plugins = websocket, echo

[transport.websocket]
listen = 127.0.0.1:0
handshake_timeout_ms = 60000
max_handshakes = 4
ping_interval_ms = 0

[route.echo]
class = echo
"""

# Only bounds a wait; no test asserts how long anything took.
BOUND_S = 20


def open_raw(d, source="127.0.0.1"):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(BOUND_S)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", d.port))
    return sock


def read_answer(sock):
    """Bytes the server sent before it closed (bounded), or None if it
    kept the connection open past BOUND_S."""
    data = b""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data
        except socket.timeout:
            return None
        if not chunk:
            return data
        data += chunk
        if b"\r\n\r\n" in data:
            return data
    return None


def try_upgrade(d, source="127.0.0.1"):
    """Upgrade on a fresh socket: (status or None if closed unanswered,
    headers, socket).  The socket stays open for the caller."""
    sock = open_raw(d, source)
    try:
        sock.sendall(harness.upgrade_request("/echo/" + harness.unique(),
                                             d.port))
    except (BrokenPipeError, ConnectionResetError):
        return None, {}, sock
    data = read_answer(sock)
    check(data is not None, "no answer and no close within %d s" % BOUND_S)
    if data == b"":
        return None, {}, sock
    status, headers, _ = parse_head(data.split(b"\r\n\r\n", 1)[0])
    return status, headers, sock


async def wait_admitted(d, what):
    """Retry an upgrade until one is answered 101 (bounded)."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        status, _, sock = try_upgrade(d)
        sock.close()
        if status == 101:
            return
        check(status is None, "status while waiting: %s" % status)
        await asyncio.sleep(0.05)
    raise harness.TestFailure("%s: no upgrade got through within %d s"
                              % (what, BOUND_S))


async def open_connections_limited(_):
    d = harness.Daemon(CONN_CONFIG)
    d.start()
    clients = []
    try:
        for _ in range(3):
            clients.append(await connect(d, "/echo/" + harness.unique()))
        status, _, sock = try_upgrade(d)
        sock.close()
        check_eq(status, None, "a fourth connection from 127.0.0.1 is "
                 "closed unanswered")
        status, _, sock = try_upgrade(d, source="127.0.0.2")
        sock.close()
        check_eq(status, 101, "127.0.0.2 is counted apart")
        for ws in clients:
            check_eq(await harness.ask(ws, "alive"), "alive",
                     "the three admitted clients still work")
        # Rooms spread over four loops: this close frees the slot on
        # whichever loop the room has, and the main loop sees it.
        await harness.close_all(clients.pop())
        await wait_admitted(d, "after one of three closed")
    finally:
        await harness.close_all(*clients)
        log = harness.stop_clean(d)
    m = re.search(r"refused (\d+) over the connections per address", log)
    check(m is not None and int(m.group(1)) >= 1,
          "refusals counted at stop: %s" % (m and m.group(0)))
    check(re.search(r'WARN websocket: could not accept "127\.0\.0\.1:\d+": '
                    r'its address has 3 connections, the limit; closed',
                    log) is not None, "the refusal is logged")


async def handshaking_connections_limited(_):
    d = harness.Daemon(CONN_CONFIG)
    d.start()
    idle = []
    try:
        idle = [open_raw(d) for _ in range(3)]
        # The three are accepted in order; the fourth finds no room.
        status, _, sock = try_upgrade(d)
        sock.close()
        check_eq(status, None, "a fourth connection while three are in "
                 "their handshake is closed unanswered")
        # handshake_timeout_ms closes the idle three, which frees the
        # address.
        for s in idle:
            check_eq(read_answer(s), b"", "the idle peer is closed")
        await wait_admitted(d, "after the idle peers timed out")
    finally:
        for s in idle:
            s.close()
        harness.stop_clean(d)


def still_open(sock):
    """sock has neither data nor an end to read within a moment: the
    server keeps it.  A slow server cannot make this fail, only one that
    closed it."""
    sock.settimeout(0.3)
    try:
        sock.recv(4096)
    except socket.timeout:
        return True
    except ConnectionResetError:
        pass
    return False


async def oldest_handshake_evicted(_):
    d = harness.Daemon(HANDSHAKES_CONFIG)
    d.start()
    idle = []
    try:
        # Four silent peers from four addresses fill max_handshakes.
        idle = [open_raw(d, "127.0.0.%d" % (i + 1)) for i in range(4)]
        idle.append(open_raw(d, "127.0.0.5"))
        check_eq(read_answer(idle[0]), b"", "the oldest handshake, closed "
                 "when a fifth connection came")
        for i, s in enumerate(idle[1:], 2):
            check(still_open(s), "peer %d of 5 is still in its handshake" % i)
        # An upgrade that comes now gets in; the next oldest makes room.
        status, _, sock = try_upgrade(d, source="127.0.0.6")
        sock.close()
        check_eq(status, 101, "an upgrade while max_handshakes are held")
        check_eq(read_answer(idle[1]), b"", "the second oldest, closed for "
                 "the upgrade")
        for i, s in enumerate(idle[2:], 3):
            check(still_open(s), "peer %d of 5 is still in its handshake" % i)
    finally:
        for s in idle:
            s.close()
        log = harness.stop_clean(d)
    m = re.search(r"evicted (\d+) handshakes over max_handshakes", log)
    check(m is not None and m.group(1) == "2",
          "evictions counted at stop: %s" % (m and m.group(0)))
    check(re.search(r'WARN websocket: could not keep "127\.0\.0\.1:\d+" in '
                    r'its handshake: 4 connections are in theirs, '
                    r'max_handshakes; closed the oldest', log) is not None,
          "the eviction is logged with the peer it closed")


async def upgrade_rate_limited(_):
    d = harness.Daemon(RATE_CONFIG)
    d.start()
    socks = []
    try:
        # All requests are written before any is read, so they arrive as
        # one burst: far faster than 2 a second on any machine.
        for _ in range(8):
            socks.append(open_raw(d))
        for s in socks:
            s.sendall(harness.upgrade_request("/echo/" + harness.unique(),
                                              d.port))
        statuses = []
        retry_afters = []
        for s in socks:
            data = read_answer(s)
            check(data, "an answer to every request of the burst")
            status, headers, _ = parse_head(data.split(b"\r\n\r\n", 1)[0])
            statuses.append(status)
            if status == 429:
                retry = headers.get("retry-after", "")
                check(retry.isdigit() and int(retry) >= 1,
                      "Retry-After of a 429 is whole seconds: %r" % retry)
                retry_afters.append(retry)
        check(set(statuses) <= {101, 429}, "statuses: %s" % statuses)
        check(statuses.count(101) >= 2, "the bucket's worth passes: %s"
              % statuses)
        check(statuses.count(429) >= 1, "the rest is refused: %s"
              % statuses)
        refused = statuses.count(429)
        # Retry-After was worked out after the whole burst was charged, so
        # waiting that long always finds a token.
        wait_s = max(int(h) for h in retry_afters)
        await asyncio.sleep(wait_s)
        status, _, sock = try_upgrade(d)
        sock.close()
        check_eq(status, 101, "an upgrade after Retry-After (%d s)" % wait_s)
    finally:
        for s in socks:
            s.close()
        log = harness.stop_clean(d)
    m = re.search(r"(\d+) over the upgrade rate", log)
    check(m is not None, "the stop line counts rate refusals")
    check(int(m.group(1)) >= refused, "rate refusals counted: %s, seen %d"
          % (m.group(0), refused))


TESTS = [
    ("address: a fourth open connection is closed; another address and a "
     "freed slot get in", open_connections_limited),
    ("address: connections in their handshake count too, until their "
     "deadline", handshaking_connections_limited),
    ("address: a burst over the upgrade rate gets 429 with Retry-After",
     upgrade_rate_limited),
    ("max_handshakes: one more connection in its handshake, from any "
     "address, closes the oldest; an upgrade still gets in",
     oldest_handshake_evicted),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
