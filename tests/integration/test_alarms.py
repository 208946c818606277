#!/usr/bin/python3
"""Alarms: set within an event, fired by the core, retried with backoff
when the handler fails, and kept in storage across a restart of torpord.

The probe class (tests/fixtures/probe.c) sets alarms on command, records
every attempt in storage, broadcasts "alarm NAME RETRY", and fails the
first K attempts of an alarm named "failK-...".
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
alarm_poll_ms = 50
alarm_retry_ms = 20
; alarms are polled on the main loop and fired on each room's own loop
loops = 3

[transport.websocket]
listen = 127.0.0.1:0

[route.probe]
class = probe
"""


async def alarm_fires_once_and_is_deleted(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = "/probe/" + harness.unique()
        ws = await connect(d, room)
        check_eq(await ask(ws, "set tick 200"), "set tick", "set")
        check_eq(await ask(ws, "list"), "alarms tick", "pending")
        check_eq(await recv(ws), "alarm tick 0", "fired, first attempt")
        await asyncio.sleep(0.3)
        check_eq(await ask(ws, "list"), "alarms ", "deleted after success")
        check_eq(await ask(ws, "fired tick"), "fired tick 0",
                 "exactly one attempt")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


async def several_named_alarms(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        ws = await connect(d, "/probe/" + harness.unique())
        for name, ms in (("b", 300), ("a", 100), ("c", 500)):
            check_eq(await ask(ws, "set %s %d" % (name, ms)), "set " + name,
                     "set " + name)
        check_eq(await ask(ws, "list"), "alarms a,b,c", "three alarms")
        got = [await recv(ws) for _ in range(3)]
        check_eq(got, ["alarm a 0", "alarm b 0", "alarm c 0"],
                 "each fires, in time order")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


async def failing_handler_is_retried(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        ws = await connect(d, "/probe/" + harness.unique())
        check_eq(await ask(ws, "set fail3-x 50"), "set fail3-x", "set")
        got = [await recv(ws) for _ in range(4)]
        check_eq(got, ["alarm fail3-x %d" % r for r in range(4)],
                 "three failures, then success on the fourth attempt")
        await asyncio.sleep(0.3)
        check_eq(await ask(ws, "list"), "alarms ", "deleted after success")
        check_eq(await ask(ws, "fired fail3-x"), "fired fail3-x 0,1,2,3",
                 "every attempt recorded")
        await harness.close_all(ws)
        log = d.log()
        check("alarm \"fail3-x\" handler failed; retry 3" in log,
              "retries are logged")
    finally:
        stop_clean(d)


async def gives_up_after_six_retries(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        ws = await connect(d, "/probe/" + harness.unique())
        check_eq(await ask(ws, "set fail99-y 10"), "set fail99-y", "set")
        got = [await recv(ws) for _ in range(7)]
        check_eq(got, ["alarm fail99-y %d" % r for r in range(7)],
                 "the first attempt and six retries")
        await harness.expect_nothing(ws, 3.0)
        check_eq(await ask(ws, "list"), "alarms ", "given up and deleted")
        check("giving it up" in d.log(), "the give-up is logged at ERR")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


async def alarm_survives_restart(_):
    d = harness.fixture_daemon(CONFIG)
    room = "/probe/" + harness.unique()
    try:
        ws = await connect(d, room)
        check_eq(await ask(ws, "set later 1500"), "set later", "set")
        await harness.close_all(ws)
    finally:
        stop_clean(d)
    d.start()   # same data directory: the daemon's own folder
    try:
        await asyncio.sleep(2.5)
        ws = await connect(d, room)
        check_eq(await ask(ws, "fired later"), "fired later 0",
                 "fired after the restart, with no client connected")
        check_eq(await ask(ws, "list"), "alarms ", "and deleted")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


async def alarm_wakes_hibernating_room(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = harness.unique()
        ws = await connect(d, "/probe/" + room)
        check_eq(await ask(ws, "set nap 1200"), "set nap", "set")
        end = time.monotonic() + 5
        while ("object=\"probe/%s\": object hibernated" % room) not in d.log():
            check(time.monotonic() < end, "the room hibernates first")
            await asyncio.sleep(0.05)
        check_eq(await recv(ws), "alarm nap 0", "the alarm wakes it")
        check("object=\"probe/%s\": object woke from hibernation" % room
              in d.log(), "woken by the alarm")
        await harness.close_all(ws)
    finally:
        stop_clean(d)


TESTS = [
    ("an alarm fires once and is deleted after its handler succeeds",
     alarm_fires_once_and_is_deleted),
    ("several named alarms of one object fire in time order",
     several_named_alarms),
    ("a failing handler is retried with backoff until it succeeds",
     failing_handler_is_retried),
    ("an alarm that keeps failing is given up after six retries",
     gives_up_after_six_retries),
    ("an alarm fires after a restart of torpord", alarm_survives_restart),
    ("an alarm wakes a hibernating room", alarm_wakes_hibernating_room),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
