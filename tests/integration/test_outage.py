#!/usr/bin/python3
"""PostgreSQL goes away under a chat room and comes back.

While the server is down, messages fail cleanly: nobody receives a message
whose write did not commit, torpord logs the failure and keeps every
WebSocket client connected.  Once the server is back, the plugin
reconnects and the room works again, with its history intact.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, connect, recv  # noqa: E402
import storage_util  # noqa: E402

CONFIG = """\
[core]
log_level = notice
plugins = websocket, chat

[route.relay]
enabled = false

[route.echo]
enabled = false

[transport.websocket]
listen = 127.0.0.1:0

[storage]
backend = postgres

[storage.postgres]
conninfo = %s
op_timeout_ms = 1500
reconnect_min_ms = 50
reconnect_max_ms = 500
"""


async def recv_json(ws, timeout=harness.IO_TIMEOUT_S):
    return json.loads(await recv(ws, timeout))


async def join(d, room):
    ws = await connect(d, "/chat/" + room)
    history = []
    while True:
        ev = await recv_json(ws)
        if ev["type"] == "welcome":
            return ws, history
        history.append(ev["text"])


async def said(ws, text, timeout=harness.IO_TIMEOUT_S):
    """Send text; return True once acknowledged, False if nothing came."""
    await ws.send(text)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            ev = await recv_json(ws, max(0.1, end - time.monotonic()))
        except harness.TestFailure:
            return False
        if ev["type"] == "message" and ev["text"] == text:
            return True
    return False


async def outage(_):
    pg = storage_util.Postgres()
    d = harness.Daemon(CONFIG % pg.conninfo)
    try:
        d.start()
        room = harness.unique()
        a, _ = await join(d, room)
        b, _ = await join(d, room)
        await recv_json(a)  # b's join
        check(await said(a, "before"), "a message before the outage")
        check_eq((await recv_json(b))["text"], "before", "b got it")

        pg.ctl("down")
        # The commit cannot succeed: neither client may see the message.
        check(not await said(a, "during", timeout=6),
              "a message whose write failed is never acknowledged")
        await harness.expect_nothing(b, 1.0)
        check(a.open and b.open, "both clients stay connected")
        check("could not commit" in d.log(), "the failure is logged")

        pg.ctl("up")
        ok = False
        end = time.monotonic() + 30
        while not ok and time.monotonic() < end:
            ok = await said(a, "after", timeout=3)
        check(ok, "the room works again once PostgreSQL is back")
        while True:
            ev = await recv_json(b)
            if ev["type"] == "message" and ev["text"] == "after":
                break
        c, history = await join(d, room)
        check_eq(history[0], "before", "history kept across the outage")
        check("during" not in history, "the failed message is not there")
        check_eq(history[-1], "after", "and the new one is")
        await harness.close_all(a, b, c)
        rc, log = d.stop()
        check_eq(rc, 0, "torpord exit code")
        harness.check_clean_exit(rc, log)
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
        pg.stop()


TESTS = [
    ("PostgreSQL outage: writes fail cleanly, clients stay, storage works "
     "again afterwards", outage),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
