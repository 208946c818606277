#!/usr/bin/python3
"""RFC 6455 conformance, Autobahn section 9: large messages, many
fragments, many messages.

The daemon runs with max_message_bytes = 16 MiB (wsclient.CONFIG), the
largest of Autobahn's sizes, so every message here is within the limit and
must come back byte for byte.  These cases check correctness only; speed
is measured by the benchmarks, not asserted here.

9.1/9.2  text/binary messages of 64 KiB to 16 MiB in one frame.
9.3/9.4  4 MiB text/binary messages in fragments of 64 bytes to 4 MiB.
9.5/9.6  1 MiB text/binary frames written in chops of 64 to 2048 bytes.
9.7/9.8  1000 text/binary messages of 0 to 4096 bytes, each echoed before
         the next is sent.
9.9      torpor's addition: the limit itself.  A message one byte over it
         fails with 1009 as soon as a frame header announces the excess,
         before any of that frame's payload is sent.

Each case is one TAP line named by its Autobahn number.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import (Client, frame, run, MAX_MESSAGE_BYTES,  # noqa: E402
                      OP_CONT, OP_TEXT, OP_BINARY, CLOSE_TOO_BIG)

KIB = 1024
MIB = 1024 * KIB


def payload_of(opcode, size):
    """size bytes: varied ASCII text, or every byte value, in a pattern
    that shows a shifted or lost block."""
    if opcode == OP_TEXT:
        unit = b"Autobahn section 9 payload, 0123456789 abcdefghij*\n"
    else:
        unit = bytes(range(256)) + bytes(reversed(range(256))) + b"\x01"
    return (unit * (size // len(unit) + 1))[:size]


def kind(opcode):
    return "text" if opcode == OP_TEXT else "binary"


def size_name(n):
    if n >= MIB and n % MIB == 0:
        return "%d MiB" % (n // MIB)
    if n >= KIB and n % KIB == 0:
        return "%d KiB" % (n // KIB)
    return "%d bytes" % n


def one_frame(opcode, size):
    def run_case(d, number):
        payload = payload_of(opcode, size)
        c = Client(d, number)
        c.send(frame(opcode, payload))
        c.expect_message(opcode, payload)
        c.close_normally()
    return run_case


def fragmented(opcode, size, fragment):
    def run_case(d, number):
        payload = payload_of(opcode, size)
        frames = []
        for at in range(0, size, fragment):
            frames.append(frame(opcode if at == 0 else OP_CONT,
                                payload[at:at + fragment],
                                fin=at + fragment >= size))
        c = Client(d, number)
        c.send(*frames)
        c.expect_message(opcode, payload)
        c.close_normally()
    return run_case


def chopped(opcode, size, chop):
    def run_case(d, number):
        payload = payload_of(opcode, size)
        c = Client(d, number)
        c.send(frame(opcode, payload), chop=chop)
        c.expect_message(opcode, payload)
        c.close_normally()
    return run_case


def round_trips(opcode, size, count=1000):
    def run_case(d, number):
        payload = payload_of(opcode, size)
        c = Client(d, number)
        for _ in range(count):
            c.send(frame(opcode, payload))
            c.expect_message(opcode, payload)
        c.close_normally()
    return run_case


def over_limit_in_one_frame(d, number):
    """Only the header is sent: the server must refuse on the length it
    announces.  The client then hangs up, since the announced payload would
    swallow a close frame written after it."""
    c = Client(d, number)
    c.send(frame(OP_BINARY, b"", length=MAX_MESSAGE_BYTES + 1))
    c.expect_fail(CLOSE_TOO_BIG, framing_lost=True)


def over_limit_in_fragments(d, number):
    """A 1-byte first fragment, then a header announcing the limit: the
    running size goes one over, and 1009 comes before that payload."""
    c = Client(d, number)
    c.send(frame(OP_TEXT, b"x", fin=False))
    c.probe("first fragment is within the limit")
    c.send(frame(OP_CONT, b"", length=MAX_MESSAGE_BYTES))
    c.expect_fail(CLOSE_TOO_BIG, framing_lost=True)


def section9():
    cases = []
    for sub, opcode in ((1, OP_TEXT), (2, OP_BINARY)):
        for k, size in enumerate((64 * KIB, 256 * KIB, MIB, 4 * MIB,
                                  8 * MIB, 16 * MIB), 1):
            cases.append(("9.%d.%d" % (sub, k), "%s message of %s is echoed"
                          % (kind(opcode), size_name(size)),
                          one_frame(opcode, size)))
    for sub, opcode in ((3, OP_TEXT), (4, OP_BINARY)):
        for k, fragment in enumerate((64, 256, KIB, 4 * KIB, 16 * KIB,
                                      64 * KIB, 256 * KIB, MIB, 4 * MIB), 1):
            cases.append(("9.%d.%d" % (sub, k), "4 MiB %s message in "
                          "fragments of %s is echoed"
                          % (kind(opcode), size_name(fragment)),
                          fragmented(opcode, 4 * MIB, fragment)))
    for sub, opcode in ((5, OP_TEXT), (6, OP_BINARY)):
        for k, chop in enumerate((64, 128, 256, 512, 1024, 2048), 1):
            cases.append(("9.%d.%d" % (sub, k), "1 MiB %s frame written in "
                          "chops of %d bytes is echoed"
                          % (kind(opcode), chop),
                          chopped(opcode, MIB, chop)))
    for sub, opcode in ((7, OP_TEXT), (8, OP_BINARY)):
        for k, size in enumerate((0, 16, 64, 256, 1024, 4096), 1):
            cases.append(("9.%d.%d" % (sub, k), "1000 %s messages of %d "
                          "bytes, each echoed in turn"
                          % (kind(opcode), size),
                          round_trips(opcode, size)))
    cases += [
        ("9.9.1", "a frame announcing max_message_bytes + 1 fails with 1009 "
         "before its payload", over_limit_in_one_frame),
        ("9.9.2", "a fragment taking the message to max_message_bytes + 1 "
         "fails with 1009 before its payload", over_limit_in_fragments),
    ]
    return cases


if __name__ == "__main__":
    run(section9())
