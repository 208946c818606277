#!/usr/bin/python3
"""RFC 6455 conformance, Autobahn section 5: fragmentation.

A fragmented message is echoed whole, also with a ping between its
fragments (answered at once, before the message completes) and however the
stream is cut.  A fragmented ping or pong, a continuation with nothing to
continue, and a new message inside a fragmented one fail the connection
with 1002; messages completed before the fault are still echoed, and
nothing after it is.

Each case is one TAP line named by its Autobahn number.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import (Client, frame, run, OP_CONT, OP_TEXT,  # noqa: E402
                      OP_PING, OP_PONG, CLOSE_PROTOCOL)


def send_as(c, frames, how):
    """how: "together" (one write), "frames" (a write per frame) or
    "octets" (1-byte writes)."""
    if how == "frames":
        c.send_each(*frames)
    else:
        c.send(*frames, chop=1 if how == "octets" else None)


def fragmented_control(opcode):
    def run_case(d, number):
        c = Client(d, number)
        c.send(frame(opcode, b"fragment1", fin=False),
               frame(OP_CONT, b"fragment2"))
        c.expect_fail(CLOSE_PROTOCOL, framing_lost=True)
    return run_case


def two_fragments(how):
    def run_case(d, number):
        c = Client(d, number)
        send_as(c, [frame(OP_TEXT, b"fragment1", fin=False),
                    frame(OP_CONT, b"fragment2")], how)
        c.expect_message(OP_TEXT, b"fragment1fragment2")
        c.close_normally()
    return run_case


def ping_between_fragments(how):
    def run_case(d, number):
        c = Client(d, number)
        send_as(c, [frame(OP_TEXT, b"fragment1", fin=False),
                    frame(OP_PING, b"ping payload"),
                    frame(OP_CONT, b"fragment2")], how)
        c.expect_pong(b"ping payload")
        c.expect_message(OP_TEXT, b"fragment1fragment2")
        c.close_normally()
    return run_case


def orphan_continuation(fin, how):
    """A continuation with nothing to continue, then a whole text message:
    1002 at the continuation, and the text message is never echoed."""
    def run_case(d, number):
        c = Client(d, number)
        send_as(c, [frame(OP_CONT, b"non-continuation payload", fin=fin),
                    frame(OP_TEXT, b"Hello, world!")], how)
        c.expect_fail(CLOSE_PROTOCOL)
    return run_case


def case_5_15(d, number):
    c = Client(d, number)
    c.send(frame(OP_TEXT, b"fragment1", fin=False),
           frame(OP_CONT, b"fragment2"),
           frame(OP_CONT, b"fragment3", fin=False),
           frame(OP_TEXT, b"fragment4"))
    c.expect_message(OP_TEXT, b"fragment1fragment2")
    c.expect_fail(CLOSE_PROTOCOL)


def orphan_then_fragments_twice(fin):
    def run_case(d, number):
        c = Client(d, number)
        once = [frame(OP_CONT, b"fragment1", fin=fin),
                frame(OP_TEXT, b"fragment2", fin=False),
                frame(OP_CONT, b"fragment3")]
        c.send(*(once + once))
        c.expect_fail(CLOSE_PROTOCOL)
    return run_case


def case_5_18(d, number):
    c = Client(d, number)
    c.send(frame(OP_TEXT, b"fragment1", fin=False),
           frame(OP_TEXT, b"fragment2"))
    c.expect_fail(CLOSE_PROTOCOL)


def pings_amid_fragments(how):
    """Autobahn waits a second after the first ping; here the first pong
    itself is awaited, which proves it came before the message ended."""
    def run_case(d, number):
        c = Client(d, number)
        parts = [b"fragment%d" % i for i in range(1, 6)]
        send_as(c, [frame(OP_TEXT, parts[0], fin=False),
                    frame(OP_CONT, parts[1], fin=False),
                    frame(OP_PING, b"pongme 1!")], how)
        c.expect_pong(b"pongme 1!")
        send_as(c, [frame(OP_CONT, parts[2], fin=False),
                    frame(OP_CONT, parts[3], fin=False),
                    frame(OP_PING, b"pongme 2!"),
                    frame(OP_CONT, parts[4])], how)
        c.expect_pong(b"pongme 2!")
        c.expect_message(OP_TEXT, b"".join(parts))
        c.close_normally()
    return run_case


def section5():
    return [
        ("5.1", "ping in 2 fragments fails with 1002",
         fragmented_control(OP_PING)),
        ("5.2", "pong in 2 fragments fails with 1002",
         fragmented_control(OP_PONG)),
        ("5.3", "text message in 2 fragments is echoed whole",
         two_fragments("together")),
        ("5.4", "as 5.3, frame-wise chops", two_fragments("frames")),
        ("5.5", "as 5.3, octet-wise chops", two_fragments("octets")),
        ("5.6", "text message in 2 fragments with a ping between: pong, "
         "then the echo", ping_between_fragments("together")),
        ("5.7", "as 5.6, frame-wise chops",
         ping_between_fragments("frames")),
        ("5.8", "as 5.6, octet-wise chops",
         ping_between_fragments("octets")),
        ("5.9", "continuation (fin=1) with nothing to continue fails with "
         "1002; the text after it is not echoed",
         orphan_continuation(True, "together")),
        ("5.10", "as 5.9, frame-wise chops",
         orphan_continuation(True, "frames")),
        ("5.11", "as 5.9, octet-wise chops",
         orphan_continuation(True, "octets")),
        ("5.12", "continuation (fin=0) with nothing to continue fails with "
         "1002; the text after it is not echoed",
         orphan_continuation(False, "together")),
        ("5.13", "as 5.12, frame-wise chops",
         orphan_continuation(False, "frames")),
        ("5.14", "as 5.12, octet-wise chops",
         orphan_continuation(False, "octets")),
        ("5.15", "2-fragment message echoed, then a continuation (fin=0) "
         "with nothing to continue fails with 1002", case_5_15),
        ("5.16", "continuation (fin=0) before a fragmented message, twice: "
         "fails with 1002 at the first, nothing echoed",
         orphan_then_fragments_twice(False)),
        ("5.17", "as 5.16 with continuations of fin=1",
         orphan_then_fragments_twice(True)),
        ("5.18", "text message in 2 fragments both with opcode text fails "
         "with 1002", case_5_18),
        ("5.19", "5 fragments with 2 pings between: each pong before the "
         "message ends, then the echo", pings_amid_fragments("together")),
        ("5.20", "as 5.19, frame-wise chops",
         pings_amid_fragments("frames")),
    ]


if __name__ == "__main__":
    run(section5())
