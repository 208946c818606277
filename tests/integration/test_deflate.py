#!/usr/bin/python3
"""permessage-deflate (RFC 7692) against a real torpord.

Real clients on both sides: Python's websockets with compression="deflate"
(and without), and raw sockets that compress with Python's zlib for what a
library will not send (RSV1 misuse, bombs, corrupt data, chosen fragments).
A relay room delivers every message to every other member, so each test
checks the bytes that reach compressed and uncompressed members alike.
"""

import asyncio
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa
                     RawWS, check, check_eq, recv)
import websockets  # noqa: E402

MAX = harness.MAX_MESSAGE_BYTES
NCT = ("permessage-deflate; server_no_context_takeover; "
       "client_no_context_takeover")
TAIL = b"\x00\x00\xff\xff"
RSV1 = 4

TEXT_UTF8 = "h\u00e9llo w\u00f6rld \u2014 \u65e5\u672c\u8a9e \U0001F389 "


def deflate(data, wbits=15, co=None, level=6):
    """One message compressed as RFC 7692 7.2.1 says, tail stripped."""
    if co is None:
        co = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)
    check(out.endswith(TAIL), "zlib's sync flush ends in 00 00 ff ff")
    return out[:-4]


def inflate(data, wbits=15, do=None):
    if do is None:
        do = zlib.decompressobj(-wbits)
    return do.decompress(data + TAIL)


def ext(offer):
    return "Sec-WebSocket-Extensions: %s\r\n" % offer


def raw(d, room, offer=None):
    return RawWS(d.port, "/relay/" + room,
                 extra=ext(offer) if offer is not None else "")


async def lib(d, room, compressed):
    return await asyncio.wait_for(
        websockets.connect(d.uri("/relay/" + room), max_size=MAX * 2,
                           compression="deflate" if compressed else None,
                           open_timeout=harness.IO_TIMEOUT_S,
                           close_timeout=harness.IO_TIMEOUT_S,
                           ping_interval=None),
        harness.IO_TIMEOUT_S)


def recv_data(w):
    """The next data frame of a raw client: (rsv, opcode, payload).  The
    server never fragments, so one frame is one message."""
    while True:
        fin, rsv, op, payload = w.recv_frame()
        if op in (OP_TEXT, OP_BINARY):
            check(fin, "server frames are not fragmented")
            return rsv, op, payload


def recv_message(w, wbits=15, do=None):
    """The next message at a raw client, inflated if it came with RSV1:
    (compressed, opcode, bytes)."""
    rsv, op, payload = recv_data(w)
    check(rsv in (0, RSV1), "rsv bits %d" % rsv)
    if rsv == RSV1:
        return True, op, inflate(payload, wbits, do)
    return False, op, payload


def messages():
    """Text and binary, small and large, compressible and not."""
    return [
        "hi",
        TEXT_UTF8 * 40,
        bytes(range(256)) * 64,
        os.urandom(40000),
        ("{\"user\":\"alice\",\"text\":\"%s\"}" % ("lorem ipsum " * 20000)),
        b"",
    ]


def as_bytes(m):
    return m.encode() if isinstance(m, str) else m


def op_of(m):
    return OP_TEXT if isinstance(m, str) else OP_BINARY


async def negotiated_by_python_websockets(d):
    room = harness.unique()
    a = await lib(d, room, True)
    b = await lib(d, room, True)
    check_eq(a.response_headers.get("Sec-WebSocket-Extensions"), NCT,
             "the 101's Sec-WebSocket-Extensions")
    for m in messages():
        await a.send(m)
        check_eq(await recv(b), m, "message at b")
        await b.send(m)
        check_eq(await recv(a), m, "message at a")
    await harness.close_all(a, b)


async def mixed_room_is_byte_exact(d):
    """Compressed and plain members of one room all get every byte."""
    room = harness.unique()
    a = await lib(d, room, True)
    b = await lib(d, room, False)
    r = raw(d, room, "permessage-deflate")
    p = raw(d, room)
    check_eq(r.headers.get("sec-websocket-extensions"), NCT, "raw's 101")
    check("sec-websocket-extensions" not in p.headers,
          "no extension for a client that offered none")
    saw_compressed = False
    for m in messages():
        for sender, others in ((a, (b,)), (b, (a,))):
            await sender.send(m)
            for o in others:
                check_eq(await recv(o), m, "library member")
            comp, op, data = await asyncio.to_thread(recv_message, r)
            check_eq((op, data), (op_of(m), as_bytes(m)), "raw deflate member")
            saw_compressed |= comp
            comp, op, data = await asyncio.to_thread(recv_message, p)
            check(not comp, "a plain member never gets RSV1")
            check_eq((op, data), (op_of(m), as_bytes(m)), "raw plain member")
        # The raw member sends compressed; everyone gets the plain bytes.
        r.send_frame(op_of(m), deflate(as_bytes(m)), rsv=RSV1)
        check_eq(await recv(a), m, "a, from the raw deflate member")
        check_eq(await recv(b), m, "b, from the raw deflate member")
        comp, op, data = await asyncio.to_thread(recv_message, p)
        check_eq((comp, op, data), (False, op_of(m), as_bytes(m)),
                 "plain member, from the raw deflate member")
    check(saw_compressed, "large compressible messages went compressed")
    r.close()
    p.close()
    await harness.close_all(a, b)


async def threshold_and_incompressible_go_plain(d):
    room = harness.unique()
    s = await lib(d, room, False)
    r = raw(d, room, "permessage-deflate")
    await s.send("a" * 127)
    rsv, op, payload = recv_data(r)
    check_eq((rsv, payload), (0, b"a" * 127), "127 bytes: below threshold")
    await s.send("a" * 128)
    rsv, op, payload = recv_data(r)
    check_eq(rsv, RSV1, "128 bytes: compressed")
    check(len(payload) < 20, "128 a's compress to a few bytes")
    check_eq(inflate(payload), b"a" * 128, "inflated 128 a's")
    noise = os.urandom(1000)
    await s.send(noise)
    rsv, op, payload = recv_data(r)
    check_eq((rsv, op, payload), (0, OP_BINARY, noise),
             "incompressible data goes plain")
    r.close()
    await harness.close_all(s)


async def server_window_bits_in_101_and_honoured(d):
    room = harness.unique()
    s = await lib(d, room, False)
    r10 = raw(d, room, "permessage-deflate; server_max_window_bits=10; "
                       "client_max_window_bits")
    r15 = raw(d, room, "permessage-deflate")
    check_eq(r10.headers.get("sec-websocket-extensions"),
             NCT + "; server_max_window_bits=10", "101 for 10 bits")
    check_eq(r15.headers.get("sec-websocket-extensions"), NCT, "101 for 15")
    # A repeat 3000 bytes back: only a window over 1 KiB can reach it.
    block = os.urandom(3000)
    m = b"abcdefgh" * 200 + block + block
    await s.send(m)
    rsv, _, p10 = recv_data(r10)
    check_eq(rsv, RSV1, "10-bit member got it compressed")
    # zlib refuses a distance past the window it was given.
    check_eq(inflate(p10, wbits=10), m, "inflates with a 1 KiB window")
    rsv, _, p15 = recv_data(r15)
    check_eq(rsv, RSV1, "15-bit member got it compressed")
    check_eq(inflate(p15), m, "inflates with a 32 KiB window")
    check(len(p15) < 3400 < len(p10),
          "the 32 KiB variant reaches the repeat, the 1 KiB one does not "
          "(%d and %d bytes)" % (len(p15), len(p10)))
    r10.close()
    r15.close()
    await harness.close_all(s)


async def offers_declined_or_taken(d):
    room = harness.unique()
    r = raw(d, room, "permessage-deflate; server_max_window_bits=8")
    check("sec-websocket-extensions" not in r.headers,
          "server_max_window_bits=8 alone is declined: %r" % r.headers)
    r.close()
    r = raw(d, room, "permessage-deflate; server_max_window_bits=8, "
                     "x-webkit-deflate-frame, permessage-deflate; "
                     "client_max_window_bits")
    check_eq(r.headers.get("sec-websocket-extensions"), NCT,
             "the first acceptable offer")
    r.close()
    r = raw(d, room, "permessage-deflate; mystery=1")
    check("sec-websocket-extensions" not in r.headers,
          "an unknown parameter declines the offer")
    r.close()
    r = raw(d, room, "permessage-deflate; server_max_window_bits=\"12\"")
    check_eq(r.headers.get("sec-websocket-extensions"),
             NCT + "; server_max_window_bits=12", "a quoted value")
    r.close()


async def malformed_header_is_400(d):
    for bad in ("permessage-deflate;", "permessage-deflate; a=\"b c\"",
                "permessage-deflate server_no_context_takeover"):
        req = harness.upgrade_request("/relay/" + harness.unique(), d.port,
                                      extra=ext(bad))
        status, headers, _, body = harness.http_exchange(d.port, req)
        check_eq(status, 400, "status for %r" % bad)
        check_eq(body, b"Bad Request: malformed Sec-WebSocket-Extensions\n",
                 "body for %r" % bad)


async def rsv1_misuse_is_1002(d):
    room = harness.unique()
    # Not negotiated.
    w = raw(d, room)
    w.send_frame(OP_TEXT, deflate(b"hello"), rsv=RSV1)
    check_eq(w.expect_close()[0], 1002, "RSV1 without the extension")
    w.close()
    # On a continuation frame.
    w = raw(d, room, "permessage-deflate")
    comp = deflate(b"hello hello hello")
    w.send_frame(OP_TEXT, comp[:3], fin=False, rsv=RSV1)
    w.send_frame(OP_CONT, comp[3:], rsv=RSV1)
    check_eq(w.expect_close()[0], 1002, "RSV1 on a continuation")
    w.close()
    # On a control frame.
    w = raw(d, room, "permessage-deflate")
    w.send_frame(OP_PING, b"p", rsv=RSV1)
    check_eq(w.expect_close()[0], 1002, "RSV1 on a ping")
    w.close()
    # RSV2 means nothing even with the extension.
    w = raw(d, room, "permessage-deflate")
    w.send_frame(OP_TEXT, b"x", rsv=2)
    check_eq(w.expect_close()[0], 1002, "RSV2")
    w.close()


async def bomb_is_1009_and_the_limit_fits(d):
    room = harness.unique()
    s = await lib(d, room, False)
    w = raw(d, room, "permessage-deflate")
    exact = deflate(b"\x00" * MAX)
    check(len(exact) < 2048, "a MiB of zeros compresses to %d bytes"
          % len(exact))
    w.send_frame(OP_BINARY, exact, rsv=RSV1)
    got = await recv(s)
    check_eq((len(got), got.count(0)), (MAX, MAX), "exactly the limit")
    w.send_frame(OP_BINARY, deflate(b"\x00" * (MAX + 1)), rsv=RSV1)
    check_eq(w.expect_close()[0], 1009, "one byte past the limit")
    w.close()
    w = raw(d, room, "permessage-deflate")
    w.send_frame(OP_BINARY, deflate(b"\x00" * (64 * MAX)), rsv=RSV1)
    check_eq(w.expect_close()[0], 1009, "64 MiB of zeros")
    w.close()
    await harness.close_all(s)


async def corrupt_data_and_bad_utf8_are_1007(d):
    room = harness.unique()
    w = raw(d, room, "permessage-deflate")
    w.send_frame(OP_BINARY, b"\xff\xff\xff\xff", rsv=RSV1)
    check_eq(w.expect_close()[0], 1007, "a reserved block type")
    w.close()
    w = raw(d, room, "permessage-deflate")
    # A stream with a final block, then bytes after it.
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    w.send_frame(OP_TEXT, co.compress(b"abc") + co.flush() + b"junk",
                 rsv=RSV1)
    check_eq(w.expect_close()[0], 1007, "bytes after the final block")
    w.close()
    w = raw(d, room, "permessage-deflate")
    w.send_frame(OP_TEXT, deflate(b"ok \xc3\x28 no"), rsv=RSV1)
    check_eq(w.expect_close()[0], 1007, "bad UTF-8 once inflated")
    w.close()


async def fragmented_with_ping_and_empty_tail(d):
    room = harness.unique()
    s = await lib(d, room, False)
    w = raw(d, room, "permessage-deflate")
    text = (TEXT_UTF8 * 30).encode()
    comp = deflate(text)
    third = len(comp) // 3
    w.send_frame(OP_TEXT, comp[:third], fin=False, rsv=RSV1)
    w.send_frame(OP_PING, b"mid")
    w.send_frame(OP_CONT, comp[third:2 * third], fin=False)
    w.send_frame(OP_CONT, comp[2 * third:])
    fin, rsv, op, payload = w.recv_frame()
    check_eq((op, rsv, payload), (OP_PONG, 0, b"mid"),
             "pong in the middle of a message")
    check_eq(await recv(s), text.decode(), "the fragmented message")
    # RFC 7692 7.2.3.6: the tail kept, then a last fragment of one 0x00.
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    full = co.compress(b"split end") + co.flush(zlib.Z_SYNC_FLUSH)
    w.send_frame(OP_BINARY, full, fin=False, rsv=RSV1)
    w.send_frame(OP_CONT, b"\x00")
    check_eq(await recv(s), b"split end", "message ending in an empty block")
    # An empty message, compressed (7.2.3.6's lone 0x00) and bare.
    w.send_frame(OP_TEXT, b"\x00", rsv=RSV1)
    check_eq(await recv(s), "", "a compressed empty message")
    w.send_frame(OP_BINARY, b"", rsv=RSV1)
    check_eq(await recv(s), b"", "an empty compressed payload")
    w.close()
    await harness.close_all(s)


async def bad_keys_fail_check_config(_):
    """Each bad compression value is named with its file and line."""
    cases = [
        ("compression = maybe", 'expected "on" or "off"'),
        ("compression_level = 0", "expected an integer from 1 to 9"),
        ("compression_max_window_bits = 8",
         "expected an integer from 9 to 15"),
        ("compression_context_takeover = on", 'expected "yes" or "no"'),
        ("compression_threshold = -1", "expected an integer from 0 to"),
    ]
    for line, reason in cases:
        d = harness.Daemon(harness.DEFAULT_CONFIG.replace(
            "max_message_bytes = 1048576\n",
            "max_message_bytes = 1048576\n%s\n" % line))
        rc, _, err = harness.run_cli(["--config", d.config_path,
                                      "--check-config", "--plugin-path",
                                      harness.env_path("TORPOR_PLUGIN_PATH")])
        check(rc != 0, "--check-config exited 0 for %r" % line)
        want = "%s:9:" % d.config_path
        hits = [l for l in err.splitlines() if want in l]
        check(hits and reason in hits[0],
              "no %r line naming %r for %r; stderr:\n%s"
              % (want, reason, line, err))
        check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)


DEBUG_CONFIG = harness.DEFAULT_CONFIG.replace("log_level = notice",
                                             "log_level = debug")


async def broadcast_compressed_once_per_window(_):
    """The daemon's debug log names every compression it does."""
    d = harness.Daemon(DEBUG_CONFIG)
    d.start()
    try:
        room = harness.unique()
        s = await lib(d, room, False)
        members = [raw(d, room, "permessage-deflate") for _ in range(3)]
        members += [raw(d, room, "permessage-deflate; "
                                 "server_max_window_bits=10")
                    for _ in range(2)]
        plain = raw(d, room)
        m = ("{\"text\":\"%s\"}" % ("once and for all " * 50)).encode()
        await s.send(m.decode())
        got = [recv_data(w) for w in members]
        check(all(rsv == RSV1 for rsv, _, _ in got), "all compressed")
        check_eq(len({p for _, _, p in got[:3]}), 1,
                 "the three 15-bit members got the same bytes")
        check_eq(len({p for _, _, p in got[3:]}), 1,
                 "the two 10-bit members got the same bytes")
        check_eq(inflate(got[0][2]), m, "15-bit variant")
        check_eq(inflate(got[3][2], wbits=10), m, "10-bit variant")
        check_eq(recv_data(plain), (0, OP_TEXT, m), "plain member")
        for w in members + [plain]:
            w.close()
        await harness.close_all(s)
    finally:
        log = harness.stop_clean(d)
    lines = [l for l in log.splitlines() if "compressed message for" in l]
    check_eq(sorted(l.split("compressed message for ")[1].split(":")[0]
                    for l in lines),
             ["10-bit windows", "15-bit windows"],
             "one compression per window size for 5 members")


TAKEOVER_CONFIG = harness.DEFAULT_CONFIG.replace(
    "max_message_bytes = 1048576\n",
    "max_message_bytes = 1048576\ncompression_context_takeover = yes\n"
    "compression_max_window_bits = 12\n")

OFF_CONFIG = harness.DEFAULT_CONFIG.replace(
    "max_message_bytes = 1048576\n",
    "max_message_bytes = 1048576\ncompression = off\n")


async def compression_off(_):
    d = harness.Daemon(OFF_CONFIG)
    d.start()
    try:
        room = harness.unique()
        a = await lib(d, room, True)
        b = await lib(d, room, False)
        check("Sec-WebSocket-Extensions" not in a.response_headers,
              "no extension when compression is off")
        await a.send("x" * 5000)
        check_eq(await recv(b), "x" * 5000, "plain relay")
        w = raw(d, room, "permessage-deflate")
        check("sec-websocket-extensions" not in w.headers, "raw 101")
        w.send_frame(OP_TEXT, deflate(b"hello"), rsv=RSV1)
        check_eq(w.expect_close()[0], 1002, "RSV1 when off")
        w.close()
        await harness.close_all(a, b)
    finally:
        harness.stop_clean(d)


ROUTE_OFF_CONFIG = harness.DEFAULT_CONFIG.replace(
    "max_message_bytes = 1048576\n",
    "max_message_bytes = 1048576\nroute.echo.compression = off\n"
    "route.echo.compression_threshold = 0\n")


async def compression_per_route(_):
    """route.echo.compression = off leaves the relay route compressing."""
    d = harness.Daemon(ROUTE_OFF_CONFIG)
    d.start()
    try:
        room = harness.unique()
        w = RawWS(d.port, "/echo/" + room, extra=ext("permessage-deflate"))
        check("sec-websocket-extensions" not in w.headers,
              "the echo route negotiates nothing")
        w.send_frame(OP_TEXT, deflate(b"hello"), rsv=RSV1)
        check_eq(w.expect_close()[0], 1002, "RSV1 on the echo route")
        w.close()
        r = raw(d, room, "permessage-deflate")
        check("permessage-deflate" in r.headers.get(
            "sec-websocket-extensions", ""), "the relay route still agrees")
        r.close()
    finally:
        harness.stop_clean(d)


LEVELS_CONFIG = harness.DEFAULT_CONFIG.replace(
    "max_message_bytes = 1048576\n",
    "max_message_bytes = 1048576\nroute.relay.compression_level = 9\n"
    "route.fast.compression_level = 1\n") + """
[route.fast]
class = relay
"""


async def compression_level_per_route_in_one_room(_):
    """Two routes to the relay class reach the same rooms; members that came
    by the route with compression_level 1 and by the one with 9 are in one
    room, and each gets the message compressed at its own route's level
    (the bytes zlib makes at that level, as Python's zlib makes them)."""
    d = harness.Daemon(LEVELS_CONFIG)
    d.start()
    try:
        room = harness.unique()
        s = await lib(d, room, False)
        best = raw(d, room, "permessage-deflate")
        fast = RawWS(d.port, "/fast/" + room, extra=ext("permessage-deflate"))
        m = ("{\"text\":\"%s\"}" % " ".join(
            "word%d" % (i * 7919 % 1000) for i in range(3000))).encode()
        check(deflate(m, level=1) != deflate(m, level=9),
              "the message compresses differently at levels 1 and 9")
        await s.send(m.decode())
        rsv, op, got = recv_data(best)
        check_eq((rsv, op), (RSV1, OP_TEXT), "level-9 member's frame")
        check_eq(got, deflate(m, level=9), "the level-9 route's bytes")
        rsv, op, got = recv_data(fast)
        check_eq((rsv, op), (RSV1, OP_TEXT), "level-1 member's frame")
        check_eq(got, deflate(m, level=1), "the level-1 route's bytes")
        for w in (best, fast):
            w.close()
        await harness.close_all(s)
    finally:
        harness.stop_clean(d)


async def context_takeover_mode(_):
    d = harness.Daemon(TAKEOVER_CONFIG)
    d.start()
    try:
        room = harness.unique()
        a = await lib(d, room, True)
        b = await lib(d, room, True)
        check_eq(a.response_headers.get("Sec-WebSocket-Extensions"),
                 "permessage-deflate; server_max_window_bits=12; "
                 "client_max_window_bits=12",
                 "takeover 101 for python websockets")
        r = raw(d, room, "permessage-deflate")
        check_eq(r.headers.get("sec-websocket-extensions"),
                 "permessage-deflate; server_max_window_bits=12",
                 "takeover 101 for a client without client_max_window_bits")
        n = raw(d, room, NCT)
        check_eq(n.headers.get("sec-websocket-extensions"),
                 NCT + "; server_max_window_bits=12",
                 "a client that refuses takeover")
        p = raw(d, room)
        # Compressed with one context across messages, both ways.
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        rdo = zlib.decompressobj(-12)
        # Hex does not repeat within itself: only the context helps.
        m = ("{\"user\":\"carol\",\"text\":\"%s\"}"
             % os.urandom(300).hex()).encode()
        sizes = []
        for i in range(3):
            r.send_frame(OP_TEXT, deflate(m, co=co), rsv=RSV1)
            check_eq(await recv(a), m.decode(), "a, message %d" % i)
            check_eq(await recv(b), m.decode(), "b, message %d" % i)
            comp, _, data = await asyncio.to_thread(recv_message, n)
            check_eq(data, m, "no-takeover member, message %d" % i)
            check_eq(await asyncio.to_thread(recv_message, p),
                     (False, OP_TEXT, m), "plain member, message %d" % i)
        for i in range(3):
            await a.send(m.decode())
            check_eq(await recv(b), m.decode(), "b from a, %d" % i)
            rsv, _, payload = recv_data(r)
            check_eq(rsv, RSV1, "takeover member got it compressed")
            check_eq(inflate(payload, do=rdo), m,
                     "inflated with the kept context, %d" % i)
            sizes.append(len(payload))
            comp, _, data = await asyncio.to_thread(recv_message, n)
            check_eq((comp, data), (True, m), "no-takeover member, %d" % i)
            check_eq(await asyncio.to_thread(recv_message, p),
                     (False, OP_TEXT, m), "plain member, %d" % i)
        check(sizes[1] < sizes[0] // 4,
              "a repeat costs little with the context kept: %s" % sizes)
        # A client held to 8 bits that, like zlib, compresses with 9.
        e = raw(d, room, "permessage-deflate; client_max_window_bits=8")
        check_eq(e.headers.get("sec-websocket-extensions"),
                 "permessage-deflate; server_max_window_bits=12; "
                 "client_max_window_bits=8", "takeover 101 for 8 bits")
        block = os.urandom(400)
        m9 = block + b"-" + block
        e.send_frame(OP_BINARY, deflate(m9, wbits=9), rsv=RSV1)
        check_eq(await recv(a), m9, "9-bit data from an 8-bit client")
        e.close()
        for w in (r, n, p):
            w.close()
        await harness.close_all(a, b)
    finally:
        harness.stop_clean(d)


TESTS = [
    ("python websockets negotiates and relays both ways",
     negotiated_by_python_websockets),
    ("compressed and plain members of one room get exact bytes",
     mixed_room_is_byte_exact),
    ("below the threshold and incompressible messages go plain",
     threshold_and_incompressible_go_plain),
    ("server_max_window_bits is answered in the 101 and honoured",
     server_window_bits_in_101_and_honoured),
    ("offers are declined or taken as RFC 7692 5 says",
     offers_declined_or_taken),
    ("a malformed Sec-WebSocket-Extensions is a 400 naming it",
     malformed_header_is_400),
    ("RSV1 on a continuation, a control frame or unnegotiated is 1002",
     rsv1_misuse_is_1002),
    ("a decompression bomb is 1009; exactly the limit is delivered",
     bomb_is_1009_and_the_limit_fits),
    ("corrupt deflate data and bad inflated UTF-8 are 1007",
     corrupt_data_and_bad_utf8_are_1007),
    ("a fragmented compressed message with a ping between fragments",
     fragmented_with_ping_and_empty_tail),
    ("a broadcast is compressed once per window size",
     broadcast_compressed_once_per_window),
    ("bad compression keys fail --check-config with file and line",
     bad_keys_fail_check_config),
    ("compression = off negotiates nothing and refuses RSV1",
     compression_off),
    ("context takeover mode keeps contexts per connection",
     context_takeover_mode),
    ("compression can be turned off for one route",
     compression_per_route),
    ("members of one room that came by routes with different "
     "compression_level each get their route's level",
     compression_level_per_route_in_one_room),
]

if __name__ == "__main__":
    harness.run_suite(TESTS)
