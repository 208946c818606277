#!/usr/bin/python3
"""The caps that keep one room from hurting the others: connections per
object, events queued per object, and the time a handler may run.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ask, check, check_eq, connect, stop_clean  # noqa

CONFIG = """\
[core]
log_level = notice
plugins = websocket, probe
max_connections_per_object = 2
max_queued_events = 5
handler_timeout_ms = 150

[transport.websocket]
listen = 127.0.0.1:0

[route.probe]
class = probe
"""


async def connections_per_object(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        a = await connect(d, "/probe/" + room)
        b = await connect(d, "/probe/" + room)
        req = harness.upgrade_request("/probe/" + room, d.port)
        check_eq(harness.http_exchange(d.port, req)[0], 503,
                 "a third connection is refused with 503")
        check("could not attach a connection" in d.log(), "and logged")
        other = await connect(d, "/probe/" + harness.unique())
        check_eq(await ask(other, "count x"), "count 0",
                 "another room is not affected")
        await b.close()
        await asyncio.sleep(0.2)
        c = await connect(d, "/probe/" + room)
        check_eq(await ask(c, "count x"), "count 0", "room has space again")
        await harness.close_all(a, c, other)
    finally:
        stop_clean(d)


async def queued_events_per_object(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        raw = harness.RawWS(d.port, "/probe/" + room)
        # One write: a storage read closes the gate, and the rest of the
        # frames, parsed from the same read, wait in the queue behind it.
        frames = harness.make_frame(1, b"fired x")
        frames += b"".join(harness.make_frame(1, b"count x")
                           for _ in range(30))
        raw.send_raw(frames)
        code, _ = raw.expect_close()
        check_eq(code, 1013, "the sender is closed with 1013")
        check("could not queue message" in d.log(), "and it is logged")
        raw.close()
        ws = await connect(d, "/probe/" + room)
        check_eq(await ask(ws, "count x"), "count 0",
                 "the room keeps working")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


async def runaway_handler_resets_object(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        ws = await connect(d, "/probe/" + harness.unique())
        made = await ask(ws, "instance")
        check_eq(await ask(ws, "spin 400"), "spun", "the handler finishes")
        again = await ask(ws, "instance")
        check("handler ran" in d.log() and "resetting the object" in d.log(),
              "the overrun is logged")
        check(int(again.split()[1]) == int(made.split()[1]) + 1,
              "the object was reset: a new instance (%s, then %s)"
              % (made, again))
        await harness.close_all(ws)
    finally:
        stop_clean(d)


TESTS = [
    ("max_connections_per_object: the next one gets 503, other rooms go on",
     connections_per_object),
    ("max_queued_events: past it the sender is closed with 1013",
     queued_events_per_object),
    ("handler_timeout_ms: a runaway handler is logged and its object reset",
     runaway_handler_resets_object),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
