#!/usr/bin/python3
"""RFC 6455 conformance, Autobahn section 7: the close handshake.

A client's close is answered with the same code (an empty close with an
empty one) and then the server closes TCP; nothing the client sends after
its close is answered or echoed.  A close body of 1 byte, a code that no
peer may send, or a reason that is not UTF-8 is answered with 1002 or
1007.  A close frame over 125 bytes fails with 1002.

Numbers past Autobahn's own (7.14) are torpor's additions: the codes it
accepts beyond Autobahn's list (1012-1014, as browsers do), 1015, which is
for local use only, and a close frame cut into 1-byte writes.

Each case is one TAP line named by its Autobahn number.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import (Client, frame, run, close_payload,  # noqa: E402
                      OP_CONT, OP_TEXT, OP_CLOSE, OP_PING, CLOSE_NORMAL,
                      CLOSE_PROTOCOL, CLOSE_INVALID_DATA)


def close_frame(code=CLOSE_NORMAL, reason=b""):
    return frame(OP_CLOSE, close_payload(code, reason))


# ---- 7.1: data around the close ----

def case_7_1_1(d, number):
    c = Client(d, number)
    c.send(frame(OP_TEXT, b"Hello World"), close_frame())
    c.expect_message(OP_TEXT, b"Hello World")
    c.expect_close(CLOSE_NORMAL)
    c.expect_eof()


def after_close(*later):
    """A close, then frames the server must ignore: its answer is the
    close alone, then TCP closes."""
    def run_case(d, number):
        c = Client(d, number)
        c.send(close_frame(), *later)
        c.expect_close(CLOSE_NORMAL)
        c.expect_eof()
    return run_case


def case_7_1_5(d, number):
    c = Client(d, number)
    c.send(frame(OP_TEXT, b"fragment1", fin=False), close_frame(),
           frame(OP_CONT, b"fragment2"))
    c.expect_close(CLOSE_NORMAL)
    c.expect_eof()


def case_7_1_6(d, number):
    payload = b"BAsd7&jh23" * 26214
    c = Client(d, number)
    c.send(frame(OP_TEXT, payload), close_frame(),
           frame(OP_PING, b"ping after close"))
    c.expect_message(OP_TEXT, payload)
    c.expect_close(CLOSE_NORMAL)
    c.expect_eof()


def section_7_1():
    return [
        ("7.1.1", "message then close: echo, close 1000, TCP closed",
         case_7_1_1),
        ("7.1.2", "two closes: one answer, then TCP closed",
         after_close(close_frame())),
        ("7.1.3", "ping after close is not answered",
         after_close(frame(OP_PING, b"ping after close"))),
        ("7.1.4", "text after close is not echoed",
         after_close(frame(OP_TEXT, b"text after close"))),
        ("7.1.5", "first fragment, close, last fragment: nothing echoed",
         case_7_1_5),
        ("7.1.6", "256 KiB message, close, ping: echo, close, no pong",
         case_7_1_6),
    ]


# ---- 7.3 to 7.13: close bodies and codes ----

def close_answered(body, want, chop=None):
    """Send a close with body; the server answers with close code want
    (None: an empty close) and closes TCP."""
    def run_case(d, number):
        c = Client(d, number)
        c.send(frame(OP_CLOSE, body), chop=chop)
        c.expect_close(want)
        c.expect_eof()
    return run_case


def close_too_long(d, number):
    c = Client(d, number)
    c.send(frame(OP_CLOSE, close_payload(CLOSE_NORMAL, b"*" * 124)))
    c.expect_fail(CLOSE_PROTOCOL, framing_lost=True)


# Invalid UTF-8 in a close reason: a surrogate after valid text.
BAD_REASON = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80edited"

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000,
               3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]


def sections_7_3_to_7_13():
    cases = [
        ("7.3.1", "close without body is answered by a close without body",
         close_answered(b"", None)),
        ("7.3.2", "close with a 1-byte body is answered with 1002",
         close_answered(b"\x03", CLOSE_PROTOCOL)),
        ("7.3.3", "close 1000 without reason is answered with 1000",
         close_answered(close_payload(1000), CLOSE_NORMAL)),
        ("7.3.4", "close 1000 with a reason is answered with 1000",
         close_answered(close_payload(1000, b"Hello World!"), CLOSE_NORMAL)),
        ("7.3.5", "close 1000 with a 123-byte reason (125-byte body) is "
         "answered with 1000",
         close_answered(close_payload(1000, b"*" * 123), CLOSE_NORMAL)),
        ("7.3.6", "close with a 124-byte reason (126-byte body) fails with "
         "1002", close_too_long),
        ("7.5.1", "close with a reason that is not UTF-8 is answered with "
         "1007", close_answered(close_payload(1000, BAD_REASON),
                                CLOSE_INVALID_DATA)),
    ]
    for k, code in enumerate(VALID_CODES, 1):
        cases.append(("7.7.%d" % k, "close with valid code %d is answered "
                      "with %d" % (code, code),
                      close_answered(close_payload(code), code)))
    for k, code in enumerate(INVALID_CODES, 1):
        cases.append(("7.9.%d" % k, "close with invalid code %d is answered "
                      "with 1002" % code,
                      close_answered(close_payload(code), CLOSE_PROTOCOL)))
    cases += [
        ("7.13.1", "close with code 5000 is answered with 1002",
         close_answered(close_payload(5000), CLOSE_PROTOCOL)),
        ("7.13.2", "close with code 65535 is answered with 1002",
         close_answered(close_payload(65535), CLOSE_PROTOCOL)),
    ]
    for k, code in enumerate((1012, 1013, 1014), 1):
        cases.append(("7.14.%d" % k, "close with registered code %d is "
                      "answered with %d" % (code, code),
                      close_answered(close_payload(code), code)))
    cases += [
        ("7.14.4", "close with code 1015 (local use only) is answered with "
         "1002", close_answered(close_payload(1015), CLOSE_PROTOCOL)),
        ("7.14.5", "close with a reason, in 1-byte writes, is answered "
         "with 1000", close_answered(close_payload(1000, b"bye now"),
                                     CLOSE_NORMAL, chop=1)),
        ("7.14.6", "close with an invalid reason, in 1-byte writes, is "
         "answered with 1007", close_answered(
             close_payload(1000, BAD_REASON), CLOSE_INVALID_DATA, chop=1)),
    ]
    return cases


if __name__ == "__main__":
    run(section_7_1() + sections_7_3_to_7_13())
