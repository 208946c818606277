#!/usr/bin/python3
"""Objects hibernate when idle and wake on the next message, while their
clients stay connected.

With hibernate_after_ms set low, a room's instance leaves memory between
messages (the log says so, and the counters at shutdown count it); its
clients never notice: messages after each wake arrive, and a chat room's
history is rebuilt from storage.  Under a steady load over many rooms that
hibernate and wake over and over, no message is lost or reordered.
"""

import asyncio
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, connect, recv, stop_clean  # noqa

CONFIG = """\
[core]
log_level = info
plugins = websocket, relay, chat
; more loops than cores: rooms spread over four threads
loops = 4

[transport.websocket]
listen = 127.0.0.1:0

[class.relay]
hibernate_after_ms = %(ms)d

[class.chat]
hibernate_after_ms = %(ms)d
"""

HIBERNATED = re.compile(r'INFO core object="([^"]*)": object hibernated')
WOKE = re.compile(r'INFO core object="([^"]*)": object woke from hibernation')


def count(pattern, log, obj):
    return sum(1 for m in pattern.finditer(log) if m.group(1) == obj)


async def wait_hibernated(d, obj, times, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if count(HIBERNATED, d.log(), obj) >= times:
            return
        await asyncio.sleep(0.05)
    raise harness.TestFailure("%s did not hibernate %d times within %d s"
                              % (obj, times, timeout))


async def relay_hibernates_and_wakes(_):
    d = harness.Daemon(CONFIG % {"ms": 150})
    d.start()
    try:
        room = harness.unique()
        obj = "relay/" + room
        a = await connect(d, "/relay/" + room)
        b = await connect(d, "/relay/" + room)
        for cycle in range(1, 4):
            await a.send("before sleep %d" % cycle)
            check_eq(await recv(b), "before sleep %d" % cycle, "delivered")
            await wait_hibernated(d, obj, cycle)
            check(a.open and b.open, "clients stay connected")
            await b.send(b"wake %d" % cycle)
            check_eq(await recv(a), b"wake %d" % cycle,
                     "the message that wakes the room arrives")
        check(count(WOKE, d.log(), obj) >= 3, "woke three times")
        await harness.close_all(a, b)
    finally:
        log = stop_clean(d)
    m = re.search(r"stopped: (\d+) wakeups, (\d+) hibernations", log)
    check(m is not None, "the counters are logged at shutdown")
    check(int(m.group(2)) >= 3, "hibernations counted: %s" % m.group(0))


async def chat_state_survives_hibernation(_):
    d = harness.Daemon(CONFIG % {"ms": 150})
    d.start()
    try:
        room = harness.unique()
        obj = "chat/" + room
        a = await connect(d, "/chat/" + room)
        check_eq(json.loads(await recv(a))["type"], "welcome", "welcome")
        await a.send("one")
        check_eq(json.loads(await recv(a))["seq"], 0, "first message")
        await wait_hibernated(d, obj, 1)
        await a.send("two")
        ev = json.loads(await recv(a))
        check_eq((ev["text"], ev["seq"]), ("two", 1),
                 "numbering continues after the wake: state came from "
                 "storage")
        b = await connect(d, "/chat/" + room)
        hist = []
        while True:
            ev = json.loads(await recv(b))
            if ev["type"] == "welcome":
                break
            hist.append(ev["text"])
        check_eq(hist, ["one", "two"], "history after hibernation")
        await harness.close_all(a, b)
    finally:
        stop_clean(d)


ROOMS = 1000
ROUNDS = 6


async def many_rooms_hibernate_and_wake_under_load(_):
    """1,000 rooms, each woken every round after it hibernated."""
    d = harness.Daemon(CONFIG % {"ms": 100})
    d.start()
    try:
        names = [harness.unique("load%d" % i) for i in range(ROOMS)]
        senders, receivers = [], []
        for i in range(0, ROOMS, 100):
            batch = names[i:i + 100]
            senders += await asyncio.gather(
                *(connect(d, "/relay/" + n) for n in batch))
            receivers += await asyncio.gather(
                *(connect(d, "/relay/" + n) for n in batch))
        for rnd in range(ROUNDS):
            # Three messages per room and round, numbered.
            for k in range(3):
                await asyncio.gather(*(
                    s.send("%d:%d" % (i, rnd * 3 + k))
                    for i, s in enumerate(senders)))
            async def three(r):
                return [await recv(r) for _ in range(3)]

            got = await asyncio.gather(*(three(r) for r in receivers))
            for i, msgs in enumerate(got):
                want = ["%d:%d" % (i, rnd * 3 + k) for k in range(3)]
                check_eq(list(msgs), want,
                         "room %d round %d: all, in order" % (i, rnd))
            # Let every room hibernate before the next round.
            await asyncio.sleep(0.4)
        log = d.log()
        check("4 event loops" in log, "torpord runs four loops")
        hib = len(HIBERNATED.findall(log))
        check(hib >= ROOMS * (ROUNDS - 1),
              "rooms hibernated between rounds: %d hibernations" % hib)
        await harness.close_all(*senders, *receivers)
    finally:
        stop_clean(d)


TESTS = [
    ("relay: hibernates when idle, clients stay, the next message wakes it "
     "and arrives, three cycles", relay_hibernates_and_wakes),
    ("chat: state is rebuilt from storage after hibernation",
     chat_state_survives_hibernation),
    ("1,000 rooms hibernate and wake %d times under load: nothing lost or "
     "reordered" % ROUNDS, many_rooms_hibernate_and_wake_under_load),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
