#!/usr/bin/python3
"""What a connection carries across hibernation, and what the core answers
without waking a room.

Tags (from the URL), attachments (set by the class) and the listing of a
room's connections by tag survive the room's hibernation; a broadcast to a
tag reaches exactly the connections that carry it; auto-response pairs,
the class's and the object's own, are answered while the room hibernates
without waking it.  The probe class (tests/fixtures/probe.c) hibernates
after 200 ms.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ask, check, check_eq, connect, recv, stop_clean  # noqa

CONFIG = """\
[core]
log_level = info
plugins = websocket, probe

[transport.websocket]
listen = 127.0.0.1:0

[route.probe]
class = probe
"""


def wakes(d, room):
    return d.log().count('object="probe/%s": object woke from hibernation'
                         % room)


async def hibernated(d, room, times=1, timeout=10):
    line = 'object="probe/%s": object hibernated' % room
    end = time.monotonic() + timeout
    while d.log().count(line) < times:
        check(time.monotonic() < end, "room did not hibernate")
        await asyncio.sleep(0.05)


async def attachment_survives_hibernation(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        ws = await connect(d, "/probe/" + room)
        other = await connect(d, "/probe/" + room)
        await ws.send("attach state-of-ws")
        await other.send("attach state-of-other")
        check_eq(await ask(ws, "attachment"), "attachment state-of-ws",
                 "set and read")
        await hibernated(d, room)
        check_eq(await ask(ws, "attachment"), "attachment state-of-ws",
                 "intact after hibernation")
        check_eq(await ask(other, "attachment"),
                 "attachment state-of-other", "each connection its own")
        check(wakes(d, room) >= 1, "the read woke the room")
        await harness.close_all(ws, other)
    finally:
        stop_clean(d)


async def tags_list_and_broadcast_across_hibernation(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        red1 = await connect(d, "/probe/%s?tag=red" % room)
        red2 = await connect(d, "/probe/%s?tag=red&tag=big" % room)
        blue = await connect(d, "/probe/%s?tag=blue" % room)
        check_eq(await ask(blue, "count red"), "count 2", "two red")
        await hibernated(d, room)
        check_eq(await ask(blue, "count red"), "count 2",
                 "still two red after hibernation")
        check_eq(await ask(blue, "count big"), "count 1", "one big")
        await blue.send("tagged red hello")
        check_eq(await recv(red1), "hello", "red1 got it")
        check_eq(await recv(red2), "hello", "red2 got it")
        # blue's next reply must be to its own question, not "hello".
        check_eq(await ask(blue, "count blue"), "count 1",
                 "blue got nothing of the red broadcast")
        await harness.close_all(red1, red2, blue)
    finally:
        stop_clean(d)


async def auto_response_without_waking(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        ws = await connect(d, "/probe/" + room)
        check_eq(await ask(ws, "auto ping pong"), "auto set",
                 "object pair set")
        check_eq(await ask(ws, "lastauto"), "auto no", "none answered yet")
        await hibernated(d, room)
        before = wakes(d, room)
        for _ in range(5):
            check_eq(await ask(ws, "heartbeat"), "alive", "class pair")
            check_eq(await ask(ws, "ping"), "pong", "object pair")
        check_eq(wakes(d, room), before,
                 "ten auto-responses did not wake the room")
        check_eq(await ask(ws, "lastauto"), "auto yes",
                 "the time of the last auto-response is kept")
        check_eq(wakes(d, room), before + 1, "a real message wakes it")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


async def lazy_close_told_on_wake(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        a = await connect(d, "/probe/" + room)
        b = await connect(d, "/probe/" + room)
        b_id = (await ask(b, "myid")).split()[1]
        await hibernated(d, room)
        before = wakes(d, room)
        await b.close(code=4001)
        await asyncio.sleep(0.5)
        check_eq(wakes(d, room), before,
                 "a client leaving the hibernating room did not wake it")
        check_eq(await ask(a, "closed"), "closed %s:4001" % b_id,
                 "the close was told when the next message woke it")
        await a.close()
        await asyncio.sleep(0.3)
        c = await connect(d, "/probe/" + room)
        later = await ask(c, "closed")
        check("%s:4001" % b_id in later,
              "and committed with that event: %s" % later)
        await harness.close_all(c)
    finally:
        stop_clean(d)


async def unique_objects(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        a = await connect(d, "/probe/~new?tag=t")
        name = (await ask(a, "name")).split()[1]
        check(len(name) == 33 and name[0] == "~"
              and int(name[1:3], 16) >= 0x80,
              "a unique object is named by its random id: %s" % name)
        b = await connect(d, "/probe/%s?tag=t" % name)
        check_eq(await ask(b, "count t"), "count 2",
                 "its name reaches the same object")
        c = await connect(d, "/probe/~new?tag=t")
        other = (await ask(c, "name")).split()[1]
        check(other != name, "every ~new is a new object")
        check_eq(await ask(c, "count t"), "count 1", "and a room of its own")
        await harness.close_all(a, b, c)
    finally:
        stop_clean(d)


async def accept_refuses_and_sets_tags(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        req = harness.upgrade_request("/probe/forbidden-" + harness.unique(),
                                      d.port)
        check_eq(harness.http_exchange(d.port, req)[0], 403,
                 "the class's accept refuses with its own status")
        room = harness.unique()
        a = await connect(d, "/probe/%s?tag=red&vip=1" % room)
        b = await connect(d, "/probe/%s?tag=red" % room)
        check_eq(await ask(a, "count vip"), "count 1",
                 "accept added a tag to the URL's")
        check_eq(await ask(a, "count red"), "count 2", "the URL's tags stay")
        await harness.close_all(a, b)
    finally:
        stop_clean(d)


async def dropped_connection_reports_error(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        a = await connect(d, "/probe/" + room)
        raw = harness.RawWS(d.port, "/probe/" + room)
        raw.send_frame(1, b"myid")
        raw_id = raw.recv_frame()[3].decode().split()[1]
        raw.sock.close()    # no close frame: the connection drops
        await asyncio.sleep(0.5)
        closed = await ask(a, "closed")
        errors = await ask(a, "errors")
        check_eq(errors, "errors %s:%d" % (raw_id, 11),
                 "the class's error hook heard of the drop (TORPOR_ECLOSED); "
                 "closes: %s" % closed)
        check_eq(closed, "closed %s:1006" % raw_id,
                 "and close followed with 1006")
        await harness.close_all(a)
    finally:
        stop_clean(d)


TESTS = [
    ("attachments survive hibernation, one per connection",
     attachment_survives_hibernation),
    ("tags from the URL: listing and broadcast by tag, across hibernation",
     tags_list_and_broadcast_across_hibernation),
    ("auto-responses of the class and the object are answered without "
     "waking the room", auto_response_without_waking),
    ("a lazy-close class is told of a close during hibernation when it "
     "next wakes, without being woken by it", lazy_close_told_on_wake),
    ("unique objects: ~new makes a random id, its ~name reaches it",
     unique_objects),
    ("accept: the class refuses with an HTTP status, and sets tags",
     accept_refuses_and_sets_tags),
    ("a connection that drops without a close handshake reaches the class's "
     "error hook, then close with 1006", dropped_connection_reports_error),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
