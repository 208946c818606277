#!/usr/bin/python3
"""A client that stops reading is cut off; the rest of its room is not.

In a relay room, one sender sends 12 MiB as 48 binary messages of 256 KiB.
A fast receiver gets every one of them, byte for byte, in order.  A slow
receiver, with a tiny receive buffer, reads nothing: once more than
max_output_bytes (1 MiB) waits for it, the server drops what it had not
begun to send and closes it with 1013 (try again later).  When the slow
client finally reads, it finds whole messages, each byte-exact and in
order, then that close frame.  The plugin counts it at stop.
"""

import asyncio
import base64
import hashlib
import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, connect, recv  # noqa: E402

CONFIG = """\
[core]
log_level = notice
plugins = websocket, relay
loops = 2

[transport.websocket]
listen = 127.0.0.1:0
max_message_bytes = 1048576
max_output_bytes = 1048576
; The slow client reads its close frame only after the warning is logged.
close_timeout_ms = 60000
ping_interval_ms = 0
"""

MESSAGES = 48
MESSAGE_BYTES = 256 * 1024
# The sender runs at most this many messages ahead of the fast receiver,
# well under max_output_bytes, so the fast one is never the slow one.
WINDOW = 2
BOUND_S = 60


class SlowWS(harness.RawWS):
    """A raw client whose receive buffer is as small as the kernel allows,
    so the server, not the kernel, holds what it does not read."""

    def __init__(self, port, path, timeout=harness.IO_TIMEOUT_S):
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(harness.upgrade_request(path, port, key=key))
        status, headers, _ = self._read_head()
        check_eq(status, 101, "handshake status of the slow client")
        want = base64.b64encode(hashlib.sha1(
            (key + harness.GUID).encode()).digest()).decode()
        check_eq(headers.get("sec-websocket-accept"), want,
                 "Sec-WebSocket-Accept")


def message(i):
    """Message i: its number, then bytes no other message has."""
    seed = hashlib.sha256(b"slow-%d" % i).digest()
    body = (seed * (MESSAGE_BYTES // len(seed) + 1))[:MESSAGE_BYTES - 4]
    return struct.pack("!I", i) + body


async def slow_consumer_closed_others_served(_):
    d = harness.Daemon(CONFIG)
    d.start()
    room = "/relay/" + harness.unique()
    sender = fast = slow = None
    try:
        sender = await connect(d, room)
        fast = await connect(d, room, max_size=2 * MESSAGE_BYTES)
        slow = SlowWS(d.port, room, timeout=BOUND_S)
        got = []
        progress = asyncio.Condition()

        async def receive():
            for i in range(MESSAGES):
                data = await recv(fast, BOUND_S)
                check_eq(data, message(i), "message %d at the fast "
                         "receiver" % i)
                async with progress:
                    got.append(i)
                    progress.notify_all()

        async def send():
            for i in range(MESSAGES):
                async with progress:
                    await progress.wait_for(lambda: len(got) >= i - WINDOW)
                await sender.send(message(i))

        await asyncio.wait_for(asyncio.gather(receive(), send()), BOUND_S)
        check_eq(len(got), MESSAGES, "messages at the fast receiver")

        deadline = time.monotonic() + BOUND_S
        while "could not keep up with slow consumer" not in d.log():
            check(time.monotonic() < deadline,
                  "no slow-consumer warning within %d s" % BOUND_S)
            await asyncio.sleep(0.05)

        # Now the slow client reads: a prefix of the messages, each whole,
        # then the close frame.
        seen = 0
        while True:
            fin, rsv, op, payload = slow.recv_frame()
            if op == harness.OP_CLOSE:
                check(len(payload) >= 2, "the close frame has a code")
                code = struct.unpack("!H", payload[:2])[0]
                break
            check_eq((fin, rsv, op), (True, 0, harness.OP_BINARY),
                     "frame %d at the slow client" % seen)
            check(payload == message(seen), "message %d at the slow client "
                  "is byte-exact (%d bytes)" % (seen, len(payload)))
            seen += 1
        check_eq(code, 1013, "close code for a slow consumer")
        check(seen < MESSAGES, "the slow client was cut off (%d of %d)"
              % (seen, MESSAGES))
        slow.send_frame(harness.OP_CLOSE, harness.close_payload(1013))
        slow.expect_eof()
        # The room goes on without it.
        await sender.send(b"after")
        check_eq(await recv(fast), b"after", "the room still relays")
    finally:
        if slow is not None:
            slow.close()
        await harness.close_all(*[c for c in (sender, fast) if c])
        log = harness.stop_clean(d)
    m = re.search(r"stopped: \d+ keepalive drops, (\d+) slow consumers "
                  r"closed", log)
    check(m is not None, "the websocket plugin logs its counters at stop")
    check_eq(m.group(1), "1", "slow consumers counted")
    check(re.search(r"WARN websocket object=\"relay/[^\"]+\" conn=\d+: could "
                    r"not keep up with slow consumer: \d+ bytes queued, "
                    r"limit 1048576; closing with 1013", log) is not None,
          "the warning names the limit and the code")


TESTS = [
    ("slow consumer: closed with 1013 after whole messages; the fast "
     "receiver gets all 12 MiB byte-exact", slow_consumer_closed_others_served),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
