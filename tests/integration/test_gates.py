#!/usr/bin/python3
"""The output gate holds a close as it holds messages.

A handler that writes, then sends, then closes the connection (the probe
class's "putclose KEY") must not have the close overtake the message: the
message waits for the write to be durable, and so does the close, in the
order they were asked for.  The client reads the message, then the close
frame, and the write is in storage.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ask, check_eq, connect, recv, stop_clean  # noqa

CONFIG = """\
[core]
log_level = info
plugins = websocket, probe

[transport.websocket]
listen = 127.0.0.1:0

[route.probe]
class = probe
"""


async def close_after_write_waits_for_the_message(_):
    d = harness.fixture_daemon(CONFIG)
    try:
        room = "/probe/" + harness.unique()
        ws = await connect(d, room)
        await ws.send("putclose k")
        check_eq(await recv(ws), "bye k",
                 "the message sent before the close arrives first")
        await harness.expect_server_close(ws, 4001)
        other = await connect(d, room)
        check_eq(await ask(other, "get k"), "value k closed",
                 "the write the close followed is in storage")
        await harness.close_all(other)
    finally:
        stop_clean(d)


TESTS = [
    ("a close asked for after a write waits in the output gate behind the "
     "messages sent before it", close_after_write_waits_for_the_message),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
