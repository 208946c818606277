#!/usr/bin/python3
"""Relay and echo rooms with real websockets clients against a real torpord.

relay: each message reaches every other client of the same room, byte for
byte, and never the sender nor another room.  echo: each message comes back
to its sender only.  Where "nothing arrives" must be shown, a later message
that must arrive first is used as the proof where ordering allows it, and a
short bounded wait where it does not (another room).
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, connect, recv, expect_nothing  # noqa

ALL_BYTES = bytes(range(256)) * 4
TEXT_UTF8 = "h\u00e9llo w\u00f6rld \u2014 \u65e5\u672c\u8a9e \U0001F389 \u00a9"
TEXT_WITH_NUL = "a\x00b\x00\x00c"


async def relay_two_text(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await a.send("hello")
    check_eq(await recv(b), "hello", "message at b")
    await b.send("world")
    # a's first message must be b's: had the server sent a its own
    # "hello", it would have been queued before b even got it.
    check_eq(await recv(a), "world", "first message at a")
    await harness.close_all(a, b)


async def relay_three_exactly_others(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    c = await connect(d, "/relay/" + room)
    await a.send("from-a")
    check_eq(await recv(b), "from-a", "b got a's message")
    check_eq(await recv(c), "from-a", "c got a's message")
    await b.send("from-b")
    check_eq(await recv(a), "from-b", "a's first message (not its own)")
    check_eq(await recv(c), "from-b", "c got b's message")
    await c.send("from-c")
    check_eq(await recv(a), "from-c", "a got c's message")
    check_eq(await recv(b), "from-c", "b's next message (not its own)")
    await a.send("again-a")
    check_eq(await recv(c), "again-a", "c's next message (not its own)")
    check_eq(await recv(b), "again-a", "b got a's second message")
    await harness.close_all(a, b, c)


async def relay_rooms_isolated(d):
    room1, room2 = harness.unique("one"), harness.unique("two")
    a = await connect(d, "/relay/" + room1)
    b = await connect(d, "/relay/" + room1)
    x = await connect(d, "/relay/" + room2)
    y = await connect(d, "/relay/" + room2)
    await a.send("only-room-one")
    await a.send(b"only-room-one-binary")
    check_eq(await recv(b), "only-room-one", "b, text")
    check_eq(await recv(b), b"only-room-one-binary", "b, binary")
    await expect_nothing(x, 0.5)
    await y.send("room-two")
    check_eq(await recv(x), "room-two", "x's first message")
    await expect_nothing(a, 0.3)
    await expect_nothing(b, 0.3)
    await harness.close_all(a, b, x, y)


async def relay_lone_client_gets_nothing(d):
    a = await connect(d, "/relay/" + harness.unique())
    await a.send("anyone?")
    await a.send(b"\x00")
    await expect_nothing(a, 0.5)
    pong = await a.ping(b"p")  # the connection still works
    await asyncio.wait_for(pong, harness.IO_TIMEOUT_S)
    await harness.close_all(a)


async def relay_binary_all_bytes(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await a.send(ALL_BYTES)
    got = await recv(b)
    check(isinstance(got, bytes), "binary arrived as %s" % type(got))
    check_eq(got, ALL_BYTES, "binary of all 256 byte values")
    await a.send(b"\x00")
    check_eq(await recv(b), b"\x00", "a single NUL byte")
    await a.send(b"\x00" * 1000)
    check_eq(await recv(b), b"\x00" * 1000, "1000 NUL bytes")
    await harness.close_all(a, b)


async def relay_text_utf8(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    for text in (TEXT_UTF8, TEXT_WITH_NUL, "\U0010FFFF\uFFFD\u0080"):
        await a.send(text)
        got = await recv(b)
        check(isinstance(got, str), "text arrived as %s" % type(got))
        check_eq(got.encode("utf-8"), text.encode("utf-8"), "text bytes")
    await harness.close_all(a, b)


async def relay_kind_preserved(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await a.send("abc")
    await a.send(b"abc")
    first, second = await recv(b), await recv(b)
    check_eq((type(first), first), (str, "abc"), "text stays text")
    check_eq((type(second), second), (bytes, b"abc"), "binary stays binary")
    await harness.close_all(a, b)


async def relay_empty_messages(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await a.send("")
    await a.send(b"")
    await a.send("end")
    check_eq(await recv(b), "", "empty text")
    check_eq(await recv(b), b"", "empty binary")
    check_eq(await recv(b), "end", "after the empty ones")
    await harness.close_all(a, b)


async def relay_order(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    c = await connect(d, "/relay/" + room)
    sent = []
    for i in range(200):
        msg = ("m%03d" % i) if i % 2 else ("m%03d" % i).encode()
        sent.append(msg)
        await a.send(msg)
    for who, ws in (("b", b), ("c", c)):
        got = [await recv(ws) for _ in range(len(sent))]
        check_eq(got, sent, "order at %s" % who)
    await harness.close_all(a, b, c)


async def relay_two_senders_each_in_order(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    c = await connect(d, "/relay/" + room)
    for i in range(50):
        await a.send("a%d" % i)
        await b.send("b%d" % i)
    got = [await recv(c) for _ in range(100)]
    check_eq([m for m in got if m[0] == "a"], ["a%d" % i for i in range(50)],
             "a's messages at c")
    check_eq([m for m in got if m[0] == "b"], ["b%d" % i for i in range(50)],
             "b's messages at c")
    got_a = [await recv(a) for _ in range(50)]
    check_eq(got_a, ["b%d" % i for i in range(50)], "a gets only b's")
    got_b = [await recv(b) for _ in range(50)]
    check_eq(got_b, ["a%d" % i for i in range(50)], "b gets only a's")
    await harness.close_all(a, b, c)


async def relay_late_joiner(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await a.send("before")
    check_eq(await recv(b), "before", "b")
    c = await connect(d, "/relay/" + room)
    await a.send("after")
    check_eq(await recv(b), "after", "b")
    check_eq(await recv(c), "after", "late joiner's first message")
    await harness.close_all(a, b, c)


async def relay_name_percent_decoded(d):
    # The same name, spelled plainly and percent-encoded, is one room.
    base = harness.unique()
    a = await connect(d, "/relay/" + base + "x")
    b = await connect(d, "/relay/" + base + "%78")
    await a.send("same room")
    check_eq(await recv(b), "same room", "percent-decoded name")
    await harness.close_all(a, b)


async def echo_back_to_sender(d):
    e = await connect(d, "/echo/" + harness.unique())
    for msg in ("hi", TEXT_UTF8, TEXT_WITH_NUL, ALL_BYTES, b"", ""):
        await e.send(msg)
        got = await recv(e)
        check_eq((type(got), got), (type(msg), msg), "echo of %s"
                 % harness._short(msg, 40))
    await harness.close_all(e)


async def echo_sender_only(d):
    room = harness.unique()
    e1 = await connect(d, "/echo/" + room)
    e2 = await connect(d, "/echo/" + room)
    await e1.send("one")
    check_eq(await recv(e1), "one", "echo to e1")
    await e2.send("two")
    # Had e1's message gone to e2, it would have been queued before e1's
    # echo arrived, hence before e2's own.
    check_eq(await recv(e2), "two", "e2's first message is its own echo")
    await expect_nothing(e1, 0.3)
    await harness.close_all(e1, e2)


async def echo_order(d):
    e = await connect(d, "/echo/" + harness.unique())
    sent = [("e%d" % i) if i % 3 else bytes([i % 256]) * i
            for i in range(100)]
    for msg in sent:
        await e.send(msg)
    got = [await recv(e) for _ in sent]
    check_eq(got, sent, "echo order")
    await harness.close_all(e)


async def relay_and_echo_same_name_distinct(d):
    # /relay/N and /echo/N are different objects.
    name = harness.unique()
    r1 = await connect(d, "/relay/" + name)
    r2 = await connect(d, "/relay/" + name)
    e = await connect(d, "/echo/" + name)
    await e.send("echo-only")
    check_eq(await recv(e), "echo-only", "echo")
    await r1.send("relay-only")
    check_eq(await recv(r2), "relay-only", "relay")
    await expect_nothing(e, 0.3)
    await r2.send("r2")
    check_eq(await recv(r1), "r2", "r1's first message")
    await harness.close_all(r1, r2, e)


TESTS = [
    ("relay: two clients, text reaches the other, not the sender",
     relay_two_text),
    ("relay: three clients, each message reaches exactly the two others",
     relay_three_exactly_others),
    ("relay: another room receives nothing", relay_rooms_isolated),
    ("relay: a lone client receives nothing back",
     relay_lone_client_gets_nothing),
    ("relay: binary with all 256 byte values and NULs, byte for byte",
     relay_binary_all_bytes),
    ("relay: multi-byte UTF-8 and NUL text, byte for byte", relay_text_utf8),
    ("relay: text stays text, binary stays binary", relay_kind_preserved),
    ("relay: empty text and binary messages", relay_empty_messages),
    ("relay: 200 messages arrive in order at two receivers", relay_order),
    ("relay: two senders, each one's messages in order",
     relay_two_senders_each_in_order),
    ("relay: a late joiner gets later messages", relay_late_joiner),
    ("relay: percent-encoded room name is the same room",
     relay_name_percent_decoded),
    ("echo: text and binary come back unchanged", echo_back_to_sender),
    ("echo: only to the sender, not to others in the room",
     echo_sender_only),
    ("echo: 100 messages come back in order", echo_order),
    ("relay and echo rooms of one name are distinct",
     relay_and_echo_same_name_distinct),
]

if __name__ == "__main__":
    harness.run_suite(TESTS)
