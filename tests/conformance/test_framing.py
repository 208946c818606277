#!/usr/bin/python3
"""RFC 6455 conformance, Autobahn sections 1 to 4: framing, pings and
pongs, reserved bits, reserved opcodes.

1.x  text (1.1) and binary (1.2) messages of 0 to 65536 bytes are echoed
     byte for byte, also when the frame arrives in chops.
2.x  a ping is answered by a pong with its payload (up to 125 bytes), even
     when cut into 1-byte writes; a ping of 126 bytes fails the connection
     with 1002; unsolicited pongs are ignored.
3.x  a frame with an RSV bit set (no extension negotiated) fails the
     connection with 1002; messages before it are echoed, and nothing after
     it is answered.
4.x  a frame with a reserved opcode (3-7, 11-15) fails likewise.

Each case is one TAP line named by its Autobahn number.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import (Client, frame, run, close_payload,  # noqa: E402
                      OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG,
                      CLOSE_PROTOCOL)


def pattern(n):
    """n bytes that are not one repeated value, so shifts and holes show."""
    block = bytes(range(256)) + bytes(reversed(range(256)))
    return (block * (n // len(block) + 1))[:n]


def text_of(n):
    """n bytes of ASCII text, varied so a misplaced byte shows."""
    unit = b"The quick brown fox jumps over the lazy dog; 0123456789*"
    return (unit * (n // len(unit) + 1))[:n]


# ---- 1: framing ----

def echo_case(opcode, size, chop=None):
    def run_case(d, number):
        payload = text_of(size) if opcode == OP_TEXT else pattern(size)
        c = Client(d, number)
        c.send(frame(opcode, payload), chop=chop)
        c.expect_message(opcode, payload)
        c.close_normally()
    return run_case


SIZES = [(0, None), (125, None), (126, None), (127, None), (128, None),
         (65535, None), (65536, None), (65536, 997)]


def section1():
    cases = []
    for sub, opcode, kind in ((1, OP_TEXT, "text"), (2, OP_BINARY, "binary")):
        for k, (size, chop) in enumerate(SIZES, 1):
            title = "%s message of %d bytes is echoed" % (kind, size)
            if chop:
                title += " (sent in chops of %d bytes)" % chop
            cases.append(("1.%d.%d" % (sub, k), title,
                          echo_case(opcode, size, chop)))
    return cases


# ---- 2: pings and pongs ----

def ping_case(payload, chop=None):
    def run_case(d, number):
        c = Client(d, number)
        c.send(frame(OP_PING, payload), chop=chop)
        c.expect_pong(payload)
        c.close_normally()
    return run_case


def ping_126_bytes(d, number):
    c = Client(d, number)
    c.send(frame(OP_PING, b"\xfe" * 126))
    c.expect_fail(CLOSE_PROTOCOL, framing_lost=True)


def unsolicited_pong(payload):
    def run_case(d, number):
        c = Client(d, number)
        c.send(frame(OP_PONG, payload))
        # The close answer must be the first frame back: no reply to a pong.
        c.close_normally()
    return run_case


def unsolicited_pong_then_ping(d, number):
    c = Client(d, number)
    c.send(frame(OP_PONG, b"unsolicited pong payload"),
           frame(OP_PING, b"ping payload"))
    c.expect_pong(b"ping payload")
    c.close_normally()


def ten_pings(chop):
    def run_case(d, number):
        c = Client(d, number)
        payloads = [("payload-%d" % i).encode() for i in range(10)]
        c.send(*[frame(OP_PING, p) for p in payloads], chop=chop)
        for p in payloads:
            c.expect_pong(p)
        c.close_normally()
    return run_case


def section2():
    return [
        ("2.1", "ping without payload is answered by an empty pong",
         ping_case(b"")),
        ("2.2", "ping with a small text payload is ponged back",
         ping_case(b"Hello, world!")),
        ("2.3", "ping with a small binary payload is ponged back",
         ping_case(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")),
        ("2.4", "ping with a 125-byte payload is ponged back",
         ping_case(b"\xfe" * 125)),
        ("2.5", "ping with a 126-byte payload fails with 1002, no pong",
         ping_126_bytes),
        ("2.6", "ping of 125 bytes sent in 1-byte chops is ponged back",
         ping_case(b"\xfe" * 125, chop=1)),
        ("2.7", "unsolicited empty pong is ignored",
         unsolicited_pong(b"")),
        ("2.8", "unsolicited pong with payload is ignored",
         unsolicited_pong(b"unsolicited pong payload")),
        ("2.9", "unsolicited pong, then ping: only the ping is answered",
         unsolicited_pong_then_ping),
        ("2.10", "10 pings are answered by 10 pongs in order",
         ten_pings(None)),
        ("2.11", "10 pings in 1-byte chops are answered in order",
         ten_pings(1)),
    ]


# ---- 3 and 4: reserved bits and opcodes ----

def bad_frame_alone(bad):
    """bad is a frame the server must refuse on its header alone."""
    def run_case(d, number):
        c = Client(d, number)
        c.send(bad)
        c.expect_fail(CLOSE_PROTOCOL, framing_lost=True)
    return run_case


def bad_frame_between(bad, how):
    """A good message, the bad frame, then a ping: the message is echoed,
    the connection fails with 1002, and the ping is never answered.  how:
    "together" (one write), "frames" (a write per frame) or "octets"."""
    def run_case(d, number):
        c = Client(d, number)
        frames = [frame(OP_TEXT, b"Hello, world!"), bad,
                  frame(OP_PING, b"after the bad frame")]
        if how == "frames":
            c.send_each(*frames)
        else:
            c.send(*frames, chop=1 if how == "octets" else None)
        c.expect_message(OP_TEXT, b"Hello, world!")
        c.expect_fail(CLOSE_PROTOCOL, framing_lost=True)
    return run_case


def section3():
    rsv_text = "text message with RSV=%d fails with 1002"
    return [
        ("3.1", rsv_text % 1,
         bad_frame_alone(frame(OP_TEXT, b"Hello, world!", rsv=1))),
        ("3.2", "echo, then " + rsv_text % 2 + " and the ping after it is "
         "not answered", bad_frame_between(
             frame(OP_TEXT, b"Hello, world!", rsv=2), "together")),
        ("3.3", "as 3.2 with RSV=3, frame-wise chops", bad_frame_between(
            frame(OP_TEXT, b"Hello, world!", rsv=3), "frames")),
        ("3.4", "as 3.2 with RSV=4, octet-wise chops", bad_frame_between(
            frame(OP_TEXT, b"Hello, world!", rsv=4), "octets")),
        ("3.5", "binary message with RSV=5 fails with 1002",
         bad_frame_alone(frame(OP_BINARY, pattern(8), rsv=5))),
        ("3.6", "ping with RSV=6 fails with 1002, no pong",
         bad_frame_alone(frame(OP_PING, b"Hello, world!", rsv=6))),
        ("3.7", "close with RSV=7 fails with 1002",
         bad_frame_alone(frame(OP_CLOSE, close_payload(1000), rsv=7))),
    ]


def section4():
    payload = b"reserved opcode payload"
    cases = []
    for sub, ops in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        kind = "non-control" if sub == 1 else "control"
        for k, op in enumerate(ops, 1):
            number = "4.%d.%d" % (sub, k)
            body = payload if k in (2, 4, 5) else b""
            bad = frame(op, body)
            what = "reserved %s opcode %d%s" % (
                kind, op, " with payload" if body else "")
            if k <= 2:
                cases.append((number, what + " fails with 1002",
                              bad_frame_alone(bad)))
            else:
                how = "octets" if k == 5 else "together"
                title = "echo, then %s fails with 1002, ping after it not " \
                        "answered" % what
                if how == "octets":
                    title += " (octet-wise chops)"
                cases.append((number, title, bad_frame_between(bad, how)))
    return cases


if __name__ == "__main__":
    run(section1() + section2() + section3() + section4())
