#!/usr/bin/python3
"""RFC 6455 conformance, Autobahn section 6: UTF-8 handling.

A text message of valid UTF-8 is echoed however it is fragmented, even
with fragments that end inside a character.  Invalid UTF-8 fails the
connection with 1007, and fails it fast: at the first byte that no
continuation could make valid, before any later frame or byte is
processed.

6.1-6.4   empty messages, valid text in fragments, invalid text, fail-fast
          with the invalid byte in a middle frame or a middle chop.
6.5-6.23  Autobahn's sequences (utf8_cases.py).  Every case sends its
          payload whole; then, at every byte boundary k, as two fragments
          payload[:k] + payload[k:] and as one frame cut into two writes
          at k.  A valid payload must come back each time.  For an invalid
          one, the first part must already fail the connection if it holds
          the first invalid byte (nothing more is sent), and must not if it
          does not (a ping after it is answered), in which case the rest
          fails it.
6.24      torpor's addition: an invalid byte deep inside one large frame
          fails the connection before the frame ends.

Each case is one TAP line named by its Autobahn number.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import (Client, TestFailure, frame, run,  # noqa: E402
                      OP_CONT, OP_TEXT, CLOSE_INVALID_DATA)
import utf8_cases  # noqa: E402

KOSME = utf8_cases._KOSME
HELLO = "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode()
# 0xF4 0x90 starts U+110000: invalid at its second byte, index 12 overall.
PART1 = KOSME
PART2 = b"\xf4\x90\x80\x80"
PART3 = b"edited"
FAIL_FAST_PAYLOAD = PART1 + PART2 + PART3


def fragments(payload, sizes):
    """payload as a text message of fragments of the given sizes (the last
    takes the rest)."""
    out = []
    at = 0
    for size in sizes:
        out.append(payload[at:at + size])
        at += size
    out.append(payload[at:])
    frames = []
    for i, part in enumerate(out):
        frames.append(frame(OP_TEXT if i == 0 else OP_CONT, part,
                            fin=i == len(out) - 1))
    return frames


def one_byte_fragments(payload):
    return fragments(payload, [1] * (len(payload) - 1)) if payload else \
        [frame(OP_TEXT, b"")]


def frame_head(payload):
    """A masked text frame cut after its header: (head, masked payload)."""
    whole = frame(OP_TEXT, payload)
    head = len(whole) - len(payload)
    return whole[:head], whole[head:]


# ---- 6.1 to 6.4 ----

def echoed(frames, payload):
    def run_case(d, number):
        c = Client(d, number)
        c.send(*frames)
        c.expect_message(OP_TEXT, payload)
        c.close_normally()
    return run_case


def case_6_3_2(d, number):
    payload = KOSME + b"\xed\xa0\x80" + b"edited"
    bad = utf8_cases.first_invalid(payload)
    frames = one_byte_fragments(payload)
    c = Client(d, number)
    c.send(*frames[:bad])
    c.probe("before the invalid byte")
    c.send(frames[bad])
    c.expect_fail(CLOSE_INVALID_DATA)


def fail_fast_frames(cuts):
    """FAIL_FAST_PAYLOAD as 3 fragments cut at cuts: the first is probed,
    the second holds the first invalid byte and must fail the connection
    before the third is sent; the third, sent after, is not echoed."""
    def run_case(d, number):
        first, second, third = fragments(FAIL_FAST_PAYLOAD, cuts)
        c = Client(d, number)
        c.send(first)
        c.probe("after the valid first fragment")
        c.send(second)
        c.expect_close(CLOSE_INVALID_DATA)
        c.send(third)
        c.answer_close(CLOSE_INVALID_DATA)
    return run_case


def fail_fast_chops(cut1, cut2):
    """FAIL_FAST_PAYLOAD in one frame, written as 3 chops: the second
    holds the first invalid byte and must fail the connection before the
    third is written."""
    def run_case(d, number):
        head, body = frame_head(FAIL_FAST_PAYLOAD)
        c = Client(d, number)
        c.send(head + body[:cut1])
        c.send(body[cut1:cut2])
        c.expect_close(CLOSE_INVALID_DATA)
        c.send(body[cut2:])
        c.answer_close(CLOSE_INVALID_DATA)
    return run_case


def sections_6_1_to_6_4():
    bad_at = utf8_cases.first_invalid(FAIL_FAST_PAYLOAD)
    assert bad_at == 12
    return [
        ("6.1.1", "empty text message is echoed",
         echoed([frame(OP_TEXT, b"")], b"")),
        ("6.1.2", "text message of 3 empty fragments is echoed empty",
         echoed(fragments(b"", [0, 0]), b"")),
        ("6.1.3", "text message of empty, non-empty, empty fragments is "
         "echoed", echoed([frame(OP_TEXT, b"", fin=False),
                           frame(OP_CONT, b"middle frame payload",
                                 fin=False),
                           frame(OP_CONT, b"")], b"middle frame payload")),
        ("6.2.1", "valid UTF-8 text in one frame is echoed",
         echoed([frame(OP_TEXT, HELLO)], HELLO)),
        ("6.2.2", "valid UTF-8 text in 2 fragments cut at a code point "
         "boundary is echoed", echoed(fragments(HELLO, [8]), HELLO)),
        ("6.2.3", "valid UTF-8 text in 1-byte fragments (cut inside code "
         "points) is echoed", echoed(one_byte_fragments(HELLO), HELLO)),
        ("6.2.4", "κόσμε in 1-byte fragments is echoed",
         echoed(one_byte_fragments(KOSME), KOSME)),
        ("6.3.1", "invalid UTF-8 (a surrogate) in one frame fails with 1007",
         fails_whole(KOSME + b"\xed\xa0\x80edited")),
        ("6.3.2", "invalid UTF-8 in 1-byte fragments fails with 1007 at "
         "the fragment of the first invalid byte", case_6_3_2),
        ("6.4.1", "fail-fast: 3 fragments, the 2nd invalid: 1007 before "
         "the 3rd is sent", fail_fast_frames([len(PART1), len(PART2)])),
        ("6.4.2", "fail-fast: 3 fragments, the 2nd is just the invalid "
         "byte: 1007 before the 3rd is sent",
         fail_fast_frames([bad_at, 1])),
        ("6.4.3", "fail-fast: one frame in 3 chops, the 2nd invalid: 1007 "
         "before the 3rd is written",
         fail_fast_chops(len(PART1), len(PART1) + len(PART2))),
        ("6.4.4", "fail-fast: one frame in 3 chops, the 2nd is just the "
         "invalid byte: 1007 before the 3rd is written",
         fail_fast_chops(bad_at, bad_at + 1)),
    ]


# ---- 6.5 to 6.23 ----

def fails_whole(payload):
    def run_case(d, number):
        c = Client(d, number)
        c.send(frame(OP_TEXT, payload))
        c.expect_fail(CLOSE_INVALID_DATA)
    return run_case


def valid_everywhere(d, number, payload):
    """One connection: whole, then split in two fragments at each
    boundary, then in 1-byte fragments, then as one frame in 1-byte
    writes; every time the same bytes come back."""
    c = Client(d, number)
    c.send(frame(OP_TEXT, payload))
    c.expect_message(OP_TEXT, payload)
    for k in range(len(payload) + 1):
        c.send(*fragments(payload, [k]))
        c.expect_message(OP_TEXT, payload)
    c.send(*one_byte_fragments(payload))
    c.expect_message(OP_TEXT, payload)
    c.send(frame(OP_TEXT, payload), chop=1)
    c.expect_message(OP_TEXT, payload)
    c.close_normally()


def invalid_split_fragments(d, number, payload, k, bad):
    first, second = fragments(payload, [k])
    c = Client(d, number)
    c.send(first)
    if bad is not None and bad < k:
        c.expect_fail(CLOSE_INVALID_DATA)
        return
    c.probe("first %d bytes hold no invalid byte" % k)
    c.send(second)
    c.expect_fail(CLOSE_INVALID_DATA)


def invalid_split_chops(d, number, payload, k, bad):
    head, body = frame_head(payload)
    c = Client(d, number)
    c.send(head + body[:k])
    if bad is not None and bad < k:
        c.expect_close(CLOSE_INVALID_DATA)
        # The frame is finished before the close is answered: bytes of a
        # close frame written now would count as its payload.
        c.send(body[k:])
    else:
        c.send(body[k:])
        c.expect_close(CLOSE_INVALID_DATA)
    c.answer_close(CLOSE_INVALID_DATA)


def invalid_everywhere(d, number, payload):
    bad = utf8_cases.first_invalid(payload)
    fails_whole(payload)(d, number)
    for k in range(len(payload) + 1):
        for how, fn in (("fragments", invalid_split_fragments),
                        ("chops", invalid_split_chops)):
            if how == "chops" and k in (0, len(payload)):
                continue            # the same bytes as the whole frame
            try:
                fn(d, number, payload, k, bad)
            except TestFailure as exc:
                raise TestFailure("split as %s at byte %d of %d (first "
                                  "invalid byte: %s): %s"
                                  % (how, k, len(payload), bad, exc)) \
                    from None


def sequence_case(payload, valid):
    def run_case(d, number):
        if valid:
            valid_everywhere(d, number, payload)
        else:
            invalid_everywhere(d, number, payload)
    return run_case


def sections_6_5_to_6_23():
    utf8_cases.self_check()
    cases = []
    for number, title, payload, valid in utf8_cases.numbered():
        bad = utf8_cases.first_invalid(payload)
        if valid:
            verdict = "echoed"
        elif bad is None:
            verdict = "1007 at the end"
        else:
            verdict = "1007 at byte %d" % bad
        shown = payload[:8].hex() + ("..." if len(payload) > 8 else "")
        name = "%s (%s): %s, whole and split at every byte" % (
            title, shown, verdict)
        cases.append((number, name, sequence_case(payload, valid)))
    return cases


# ---- 6.24: torpor's addition ----

def invalid_deep_in_large_frame(d, number):
    """A 1 MiB text frame whose byte 200000 is invalid: the server reads
    it in many reads and must close after that byte, long before the
    frame's end, which is never sent."""
    size = 1 << 20
    bad_at = 200000
    payload = bytearray(b"a" * size)
    payload[bad_at] = 0xFF
    head, body = frame_head(bytes(payload))
    c = Client(d, number)
    c.send(head + body[:bad_at + 1])
    c.expect_close(CLOSE_INVALID_DATA)
    c.send(body[bad_at + 1:])
    c.answer_close(CLOSE_INVALID_DATA)


def section_6_24():
    return [("6.24.1", "an invalid byte 200000 bytes into a 1 MiB text "
             "frame fails with 1007 before the frame ends",
             invalid_deep_in_large_frame)]


if __name__ == "__main__":
    run(sections_6_1_to_6_4() + sections_6_5_to_6_23() + section_6_24())
