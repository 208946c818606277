#!/usr/bin/python3
"""Held events: a class keeps its object's event open after the handler
returns (host->event_hold) and ends it later (host->event_release).

The probe class (tests/fixtures/probe.c) holds an event for "hold MS KEY",
and when a timer fires puts KEY and answers "released KEY" within that
event.  Meanwhile the room's next events wait (the input gate), and the
answer waits for the put to be durable (the output gate).  Alarms named
"heldfailK-..." end their held event with an error for their first K
attempts, which the core retries like a failing handler.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ask, check, check_eq, connect, recv, stop_clean  # noqa

CONFIG = """\
[core]
log_level = info
plugins = websocket, probe
alarm_poll_ms = 50
alarm_retry_ms = 20
loops = 2

[transport.websocket]
listen = 127.0.0.1:0

[route.probe]
class = probe
"""


async def held_event_gates_the_next(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = "/probe/" + harness.unique()
        a = await connect(d, room)
        b = await connect(d, room)
        check_eq(await ask(a, "hold 300 k"), "holding k", "held")
        # Sent while a's event is held: answered only after it ends, so
        # it reads the held event's write.
        await b.send("get k")
        check_eq(await recv(a), "released k", "the held event finishes")
        check_eq(await recv(b), "value k held",
                 "the next event ran after the held one and saw its write")
        check_eq(await ask(a, "get k"), "value k held", "the write stayed")
        await harness.close_all(a, b)
    finally:
        stop_clean(d)


async def held_event_keeps_the_room_awake(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        ws = await connect(d, "/probe/" + room)
        # Far longer than the probe's hibernate_after_ms of 200: look
        # while the event is still held.
        check_eq(await ask(ws, "hold 1500 k"), "holding k", "held")
        await asyncio.sleep(0.8)
        hibernated = 'object="probe/%s": object hibernated' % room
        check(hibernated not in d.log(),
              "the room did not hibernate while its event was held")
        check_eq(await recv(ws), "released k", "released")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


async def held_alarm_failure_is_retried(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        ws = await connect(d, "/probe/" + harness.unique())
        check_eq(await ask(ws, "set heldfail2-x 50"), "set heldfail2-x",
                 "set")
        got = [await recv(ws) for _ in range(3)]
        check_eq(got, ["alarm heldfail2-x %d" % r for r in range(3)],
                 "two failed releases, then success on the third attempt")
        check_eq(await ask(ws, "fired heldfail2-x"),
                 "fired heldfail2-x 0,1,2", "every attempt recorded")
        check_eq(await ask(ws, "list"), "alarms ", "deleted after success")
        check('alarm "heldfail2-x" handler failed; retry 2' in d.log(),
              "the failed releases are retried like failed handlers")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


TESTS = [
    ("a held event keeps the room's next event waiting until released",
     held_event_gates_the_next),
    ("a room with a held event does not hibernate",
     held_event_keeps_the_room_awake),
    ("an alarm whose held event ends with an error is retried",
     held_alarm_failure_is_retried),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
