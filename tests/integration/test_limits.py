#!/usr/bin/python3
"""Limits, invalid input and the close handshake, against a real torpord.

max_message_bytes is 1048576: a message of exactly that size passes, one
byte more closes the sender with 1009.  Invalid UTF-8 in a text message
closes with 1007, a protocol error with 1002.  A client-initiated close
handshake completes with the client's code echoed.  A room outlives the
clients that leave it.  Frames a client library would never send are made
by hand (harness.RawWS).
"""

import asyncio
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (check, check_eq, connect, recv, expect_nothing,  # noqa
                     expect_server_close, RawWS, make_frame, close_payload,
                     OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)

import websockets.exceptions  # noqa: E402

LIMIT = harness.MAX_MESSAGE_BYTES


def pattern(n):
    """n bytes that are not one repeated value, so shifts and holes show."""
    block = bytes(range(256)) + bytes(reversed(range(256)))
    return (block * (n // len(block) + 1))[:n]


def utf8_text(n):
    """A str whose UTF-8 encoding is exactly n bytes, mixing widths."""
    unit = "a\u00e9\u65e5\U0001F389"       # 1 + 2 + 3 + 4 bytes
    s = unit * (n // 10)
    s += "b" * (n - len(s.encode("utf-8")))
    assert len(s.encode("utf-8")) == n
    return s


async def raw_in_thread(fn, *args):
    """Run blocking raw-socket work without stalling the event loop, so
    websockets clients in the same test keep reading."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def send_until_answered(raw, data, timeout=harness.IO_TIMEOUT_S):
    """Write data, stopping early once the server sends anything (it may
    close before reading all of an oversized message).  Bounded."""
    sock = raw.sock
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    try:
        while view and time.monotonic() < deadline:
            r, w, _ = select.select([sock], [sock], [], 0.5)
            if r:
                return
            if w:
                try:
                    sent = sock.send(view[:65536])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return  # reset by the server: its close frame is queued
                view = view[sent:]
    finally:
        sock.setblocking(True)
        sock.settimeout(raw.timeout)


# ---- size limits ----

async def max_binary_passes(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room, max_size=2 * LIMIT)
    c = await connect(d, "/relay/" + room, max_size=2 * LIMIT)
    data = pattern(LIMIT)
    await a.send(data)
    for who, ws in (("b", b), ("c", c)):
        got = await recv(ws, 30)
        check(isinstance(got, bytes), "binary arrived as %s" % type(got))
        check_eq(len(got), LIMIT, "length at %s" % who)
        check(got == data, "1 MiB binary differs at %s" % who)
    await harness.close_all(a, b, c)


async def max_text_passes(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room, max_size=2 * LIMIT)
    text = utf8_text(LIMIT)
    await a.send(text)
    got = await recv(b, 30)
    check(isinstance(got, str), "text arrived as %s" % type(got))
    check(got == text, "1 MiB text differs (len %d, want %d)"
          % (len(got), len(text)))
    await harness.close_all(a, b)


async def max_echo_passes(d):
    e = await connect(d, "/echo/" + harness.unique(), max_size=2 * LIMIT)
    data = pattern(LIMIT)
    await e.send(data)
    got = await recv(e, 30)
    check(got == data, "1 MiB echo differs")
    await harness.close_all(e)


async def _too_big(d, msg):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room, max_size=4 * LIMIT)
    c = await connect(d, "/relay/" + room)
    try:
        await a.send(msg)
    except websockets.exceptions.ConnectionClosed:
        pass  # the server may close while the frame is still being written
    await expect_server_close(a, 1009, 30)
    # Nothing of the oversized message reaches b: c's message comes first.
    await c.send("after")
    check_eq(await recv(b), "after", "b's first message after the 1009")
    await harness.close_all(b, c)


async def over_binary_1009(d):
    await _too_big(d, pattern(LIMIT + 1))


async def over_text_1009(d):
    await _too_big(d, utf8_text(LIMIT + 1))


async def over_fragmented_1009(d):
    room = harness.unique()
    b = await connect(d, "/relay/" + room, max_size=4 * LIMIT)
    c = await connect(d, "/relay/" + room)

    def work():
        raw = RawWS(d.port, "/relay/" + room)
        try:
            # Each frame is small; only the message is over the limit.
            piece = pattern(LIMIT // 4)
            data = make_frame(OP_BINARY, piece, fin=False)
            for _ in range(3):
                data += make_frame(OP_CONT, piece, fin=False)
            data += make_frame(OP_CONT, b"!", fin=True)
            send_until_answered(raw, data)
            return raw.expect_close()
        finally:
            raw.close()

    code, reason = await raw_in_thread(work)
    check_eq(code, 1009, "close code for a 1 MiB + 1 fragmented message")
    await c.send("after")
    check_eq(await recv(b), "after", "b's first message after the 1009")
    await harness.close_all(b, c)


async def max_fragmented_passes(d):
    room = harness.unique()
    b = await connect(d, "/relay/" + room, max_size=2 * LIMIT)
    data = pattern(LIMIT)

    def work():
        raw = RawWS(d.port, "/relay/" + room)
        quarter = LIMIT // 4
        frames = make_frame(OP_BINARY, data[:quarter], fin=False)
        frames += make_frame(OP_CONT, data[quarter:2 * quarter], fin=False)
        frames += make_frame(OP_CONT, data[2 * quarter:3 * quarter],
                             fin=False)
        frames += make_frame(OP_CONT, data[3 * quarter:], fin=True)
        raw.send_raw(frames)
        return raw

    raw = await raw_in_thread(work)
    try:
        got = await recv(b, 30)
        check(got == data, "1 MiB in four fragments arrives whole "
              "(got %d bytes)" % len(got))
    finally:
        raw.close()
    await harness.close_all(b)


# ---- UTF-8 ----

def _invalid_utf8_case(payload):
    async def run(d):
        room = harness.unique()
        b = await connect(d, "/relay/" + room)
        c = await connect(d, "/relay/" + room)

        def work():
            raw = RawWS(d.port, "/relay/" + room)
            try:
                raw.send_frame(OP_TEXT, payload)
                return raw.expect_close()
            finally:
                raw.close()

        code, _ = await raw_in_thread(work)
        check_eq(code, 1007, "close code for text %r" % payload)
        await c.send("valid")
        check_eq(await recv(b), "valid", "b's first message (the invalid "
                 "text must not be relayed)")
        await harness.close_all(b, c)
    return run


async def utf8_split_across_fragments_ok(d):
    room = harness.unique()
    b = await connect(d, "/relay/" + room)
    text = "x\u65e5y\U0001F389z"
    enc = text.encode("utf-8")        # 'x' e6 97 a5 'y' f0 9f 8e 89 'z'

    def work():
        raw = RawWS(d.port, "/relay/" + room)
        raw.send_frame(OP_TEXT, enc[:2], fin=False)     # x, e6
        raw.send_frame(OP_CONT, enc[2:7], fin=False)    # 97 a5 y f0 9f
        raw.send_frame(OP_CONT, enc[7:], fin=True)      # 8e 89 z
        return raw

    raw = await raw_in_thread(work)
    try:
        check_eq(await recv(b), text, "text split inside characters")
    finally:
        raw.close()
    await harness.close_all(b)


async def utf8_invalid_in_later_fragment_1007(d):
    def work():
        raw = RawWS(d.port, "/relay/" + harness.unique())
        try:
            raw.send_frame(OP_TEXT, b"ok \xe6", fin=False)
            raw.send_frame(OP_CONT, b"\x41\x41", fin=True)  # not 80..bf
            return raw.expect_close()
        finally:
            raw.close()

    code, _ = await raw_in_thread(work)
    check_eq(code, 1007, "close code for a broken sequence across fragments")


async def utf8_not_checked_in_binary(d):
    e = await connect(d, "/echo/" + harness.unique())
    data = b"\xff\xfe\xc0\xaf\xed\xa0\x80"
    await e.send(data)
    check_eq(await recv(e), data, "invalid UTF-8 in a binary message")
    await harness.close_all(e)


# ---- protocol errors ----

def _protocol_error_case(frames):
    async def run(d):
        def work():
            raw = RawWS(d.port, "/echo/" + harness.unique())
            try:
                raw.send_raw(frames)
                return raw.expect_close()
            finally:
                raw.close()

        code, _ = await raw_in_thread(work)
        check_eq(code, 1002, "server close code")
    return run


PROTOCOL_ERRORS = [
    ("an unmasked client frame",
     make_frame(OP_TEXT, b"hello", mask=False)),
    ("reserved data opcode 0x3", make_frame(0x3, b"x")),
    ("reserved control opcode 0xB", make_frame(0xB, b"")),
    ("RSV1 set with no extension agreed", make_frame(OP_TEXT, b"x", rsv=4)),
    ("RSV3 set", make_frame(OP_BINARY, b"x", rsv=1)),
    ("a continuation frame with no message started",
     make_frame(OP_CONT, b"x")),
    ("a new data frame inside a fragmented message",
     make_frame(OP_TEXT, b"a", fin=False) + make_frame(OP_TEXT, b"b")),
    ("a fragmented ping", make_frame(OP_PING, b"p", fin=False)),
    ("a ping of 126 bytes", make_frame(OP_PING, b"p" * 126)),
    ("a close frame with a 1-byte body", make_frame(OP_CLOSE, b"\x03")),
    ("a close frame with code 1005", make_frame(OP_CLOSE,
                                                close_payload(1005))),
    ("a close frame with code 999", make_frame(OP_CLOSE,
                                               close_payload(999))),
]


async def ping_gets_pong(d):
    def work():
        raw = RawWS(d.port, "/echo/" + harness.unique())
        try:
            raw.send_frame(OP_PING, b"are you there \x00\xff")
            fin, rsv, op, payload = raw.recv_frame()
            return fin, rsv, op, payload
        finally:
            raw.close()

    fin, rsv, op, payload = await raw_in_thread(work)
    check_eq((fin, rsv, op), (True, 0, OP_PONG), "pong frame header")
    check_eq(payload, b"are you there \x00\xff", "pong payload")


async def ping_between_fragments(d):
    def work():
        raw = RawWS(d.port, "/echo/" + harness.unique())
        try:
            raw.send_frame(OP_TEXT, b"frag", fin=False)
            raw.send_frame(OP_PING, b"mid")
            raw.send_frame(OP_CONT, b"mented", fin=True)
            pongs, opcode, message = [], None, b""
            for _ in range(20):
                fin, _, op, payload = raw.recv_frame()
                if op == OP_PONG:
                    pongs.append(payload)
                    continue
                check(op in (OP_TEXT, OP_CONT), "unexpected opcode %d" % op)
                opcode = op if opcode is None else opcode
                message += payload
                if fin:
                    break
            if not pongs:
                _, _, op, payload = raw.recv_frame()
                check_eq(op, OP_PONG, "opcode after the message")
                pongs.append(payload)
            return pongs, opcode, message
        finally:
            raw.close()

    pongs, opcode, message = await raw_in_thread(work)
    check_eq(pongs, [b"mid"], "pongs")
    check_eq((opcode, message), (OP_TEXT, b"fragmented"),
             "the echoed message, reassembled")


# ---- close handshake ----

async def close_1000_echoed(d):
    ws = await connect(d, "/relay/" + harness.unique())
    await asyncio.wait_for(ws.close(1000), harness.IO_TIMEOUT_S)
    check_eq(ws.close_code, 1000, "code the server sent back")


async def close_4000_reason_echoed(d):
    ws = await connect(d, "/echo/" + harness.unique())
    await ws.send("one")
    check_eq(await recv(ws), "one", "echo before closing")
    await asyncio.wait_for(ws.close(4000, "bye now"), harness.IO_TIMEOUT_S)
    check_eq(ws.close_code, 4000, "code the server sent back")


async def close_raw_exact(d):
    def work():
        raw = RawWS(d.port, "/relay/" + harness.unique())
        try:
            raw.send_frame(OP_CLOSE, close_payload(4000, b"done here"))
            code, reason = raw.expect_close()
            raw.expect_eof()
            return code, reason
        finally:
            raw.close()

    code, _ = await raw_in_thread(work)
    check_eq(code, 4000, "close code in the server's reply")


async def close_raw_no_status(d):
    def work():
        raw = RawWS(d.port, "/relay/" + harness.unique())
        try:
            raw.send_frame(OP_CLOSE, b"")
            code, _ = raw.expect_close()
            raw.expect_eof()
            return code
        finally:
            raw.close()

    code = await raw_in_thread(work)
    check(code in (None, 1000), "reply to a close without a code: expected "
          "no code or 1000, got %s" % code)


# ---- a room outlives its clients ----

async def room_survives_departures(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    c = await connect(d, "/relay/" + room)
    dropper = await connect(d, "/relay/" + room)

    await asyncio.wait_for(c.close(1000), harness.IO_TIMEOUT_S)
    check_eq(c.close_code, 1000, "c's close")
    await a.send("after c left")
    check_eq(await recv(b), "after c left", "b after a clean departure")
    check_eq(await recv(dropper), "after c left", "dropper still there")

    dropper.transport.abort()   # gone without a close handshake
    for i in range(5):
        await a.send("after drop %d" % i)
        check_eq(await recv(b), "after drop %d" % i, "b after a drop")
    await b.send("b still talks")
    check_eq(await recv(a), "b still talks", "a's first message")

    e = await connect(d, "/relay/" + room)
    await b.send("welcome")
    check_eq(await recv(e), "welcome", "a newcomer joins the room")
    check_eq(await recv(a), "welcome", "a")
    await harness.close_all(a, b, e)


async def room_usable_after_everyone_left(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await harness.close_all(a, b)
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await a.send("again")
    check_eq(await recv(b), "again", "the room works after emptying")
    await harness.close_all(a, b)


INVALID_UTF8 = [
    ("a lone 0xff", b"\xff"),
    ("a bad continuation", b"abc\xc3\x28"),
    ("an overlong '/'", b"\xc0\xaf"),
    ("a UTF-16 surrogate", b"\xed\xa0\x80"),
    ("a code point above U+10FFFF", b"\xf4\x90\x80\x80"),
    ("a sequence cut at the end", b"euro \xe2\x82"),
]

TESTS = [
    ("limits: a 1 MiB binary message reaches two receivers",
     max_binary_passes),
    ("limits: a 1 MiB UTF-8 text message passes", max_text_passes),
    ("limits: a 1 MiB message echoes", max_echo_passes),
    ("limits: 1 MiB + 1 binary closes the sender with 1009",
     over_binary_1009),
    ("limits: 1 MiB + 1 text closes the sender with 1009", over_text_1009),
    ("limits: 1 MiB + 1 in small fragments closes with 1009",
     over_fragmented_1009),
    ("limits: exactly 1 MiB in four fragments passes whole",
     max_fragmented_passes),
] + [
    ("utf-8: %s in a text message closes with 1007" % what,
     _invalid_utf8_case(payload)) for what, payload in INVALID_UTF8
] + [
    ("utf-8: a character split across fragments is accepted",
     utf8_split_across_fragments_ok),
    ("utf-8: a broken sequence across fragments closes with 1007",
     utf8_invalid_in_later_fragment_1007),
    ("utf-8: binary messages are not checked", utf8_not_checked_in_binary),
] + [
    ("protocol: %s closes with 1002" % what, _protocol_error_case(frames))
    for what, frames in PROTOCOL_ERRORS
] + [
    ("protocol: a ping gets a pong with the same payload", ping_gets_pong),
    ("protocol: a ping between fragments is answered, message whole",
     ping_between_fragments),
    ("close: client closes with 1000, server echoes 1000",
     close_1000_echoed),
    ("close: client closes with 4000 and a reason, server echoes 4000",
     close_4000_reason_echoed),
    ("close: raw close 4000 gets close 4000 back, then TCP close",
     close_raw_exact),
    ("close: raw close without a code gets a close back, then TCP close",
     close_raw_no_status),
    ("room: keeps working after a clean close and a dropped client",
     room_survives_departures),
    ("room: works again after all its clients left",
     room_usable_after_everyone_left),
]

if __name__ == "__main__":
    harness.run_suite(TESTS)
