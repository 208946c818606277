#!/usr/bin/python3
"""The nng transport against real peers: nngcat (Debian's nng-utils) on
the nng side, Python websockets clients in the rooms, one real torpord.

Requests are encoded by hand from docs/nng-protocol.md (nng_wire.py), not
with torpord's generated code.  Backends publish into rooms and the
clients receive byte for byte; a subscriber follows a room's opens,
messages and closes and nothing of other rooms; deliveries go by tag;
inspection lists connections with tags; a chat room's history is read
from storage; an address refuses what it does not allow; malformed,
unknown and unsupported requests get clear replies and leave the room as
it was; a published message wakes a hibernating room; pushed messages
arrive in order without replies.  test_nng_limits.py has the limits:
oversized requests, a full room queue, a runaway handler, bad config.
"""

import asyncio
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import nng_wire as w  # noqa: E402
from harness import check, check_eq, connect, recv, expect_nothing  # noqa

IPC_PATH = os.path.join(harness.SCRATCH, "nng-publish-only.ipc")

CONFIG = """\
[core]
log_level = info
plugins = websocket, relay, echo, chat, nng
shutdown_timeout_ms = 5000

[transport.websocket]
listen = 127.0.0.1:0

[transport.nng]
listen.ops = rep tcp://127.0.0.1:0 publish,deliver,inspect,storage_read
listen.stream = pull tcp://127.0.0.1:0 publish,deliver
listen.events = pub tcp://127.0.0.1:0
listen.narrow = rep ipc://%s publish
max_message_bytes = 65536

[class.relay]
hibernate_after_ms = 400
""" % IPC_PATH

ALL_BYTES = bytes(range(256)) * 4
TEXT_UTF8 = "h\u00e9llo \u65e5\u672c \U0001F389 a\x00b"

HIBERNATED = re.compile(r'INFO core object="([^"]*)": object hibernated')
WOKE = re.compile(r'INFO core object="([^"]*)": object woke from '
                  r'hibernation')


def urls(d):
    found = w.listen_urls(d.log())
    for key in ("listen.ops", "listen.stream", "listen.events",
                "listen.narrow"):
        check(key in found, "no 'listening on' line for %s in the log:\n%s"
              % (key, harness.tail(d.log())))
    return found


def ops(d):
    return urls(d)["listen.ops"]


def relay(name):
    return w.room(name, route="relay")


def check_ok(reply, what):
    check(reply.status == "OK", "%s: expected OK, got %r" % (what, reply))
    check_eq(reply.version, w.PROTOCOL_VERSION, "%s: reply version" % what)


def check_status(reply, status, words, what):
    check_eq(reply.status, status, "%s: status (message %r)"
             % (what, reply.message))
    check(words in reply.message, "%s: message %r lacks %r"
          % (what, reply.message, words))


async def subscribed(d, room, *prefixes):
    """A subscriber on prefixes (default: relay/ROOM:) that is known to
    receive: probe messages are published into relay/ROOM, which has no
    client yet, until one arrives; the stream is FIFO, so once the last
    probe has arrived nothing of them is left in flight."""
    sub = w.Subscriber(urls(d)["listen.events"],
                       *(prefixes or (w.topic("relay", room),)))
    deadline = time.monotonic() + harness.IO_TIMEOUT_S
    sent = 0
    seen = None
    while seen is None:
        check(time.monotonic() < deadline,
              "the subscriber saw none of %d probes" % sent)
        sent += 1
        check_ok(w.call(ops(d), w.publish(relay(room),
                                          w.message("probe-%d" % sent))),
                 "probe")
        ev = sub.poll(0.3)
        if ev is not None:
            seen = ev
    while seen.type != "message" or seen.data != "probe-%d" % sent:
        seen = sub.next()
    return sub


# ---- publish ----

async def publish_reaches_clients_byte_exact(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    for payload in (TEXT_UTF8, ALL_BYTES, "", b"", "last"):
        reply = w.call(ops(d), w.publish(relay(room), w.message(payload)))
        check_ok(reply, "publish %r" % payload[:8])
        check_eq(reply.replies(), [], "relay sends the publisher nothing")
        for who, ws in (("a", a), ("b", b)):
            got = await recv(ws)
            check_eq((type(got), got), (type(payload), payload),
                     "message at %s" % who)
    await a.send("from a")
    check_eq(await recv(b), "from a", "clients still relay to each other")
    await harness.close_all(a, b)


async def publish_by_class_and_by_id(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    reply = w.call(ops(d), w.publish(w.room(room, class_name="relay"),
                                     w.message("by class")))
    check_ok(reply, "publish by class_name")
    check_eq(await recv(a), "by class", "message by class_name")
    reply = w.call(ops(d), w.publish(w.room(id=w.object_id("relay", room)),
                                     w.message(b"by id")))
    check_ok(reply, "publish by id")
    check_eq(await recv(a), b"by id", "message by id")
    absent = w.object_id("relay", harness.unique("absent"))
    reply = w.call(ops(d), w.publish(w.room(id=absent), w.message("x")))
    check_status(reply, "NOT_FOUND", "no room with this id is in memory",
                 "publish by the id of no room")
    await harness.close_all(a)


async def publish_gets_the_class_answers(d):
    reply = w.call(ops(d), w.publish(w.room(harness.unique(), route="echo"),
                                     w.message(b"\x00echo\xff")))
    check_ok(reply, "publish into echo")
    check_eq(reply.replies(), [b"\x00echo\xff"],
             "echo's answer to the publisher")


async def publish_into_chat_is_stored(d):
    room = harness.unique()
    a = await connect(d, "/chat/" + room)
    check_eq(json.loads(await recv(a))["type"], "welcome", "welcome")
    reply = w.call(ops(d), w.publish(w.room(room, route="chat"),
                                     w.message("from the backend")))
    check_ok(reply, "publish into chat")
    got = json.loads(await recv(a))
    check_eq((got["type"], got["conn"], got["seq"], got["text"]),
             ("message", 0, 0, "from the backend"),
             "chat relays the backend's message as conn 0")
    check_eq(reply.replies(), [], "chat answers a sender nothing directly")
    # A client's message too, so that the history has two senders.
    await a.send("from a client")
    mine = json.loads(await recv(a))
    rows = w.call(ops(d), w.storage_list(w.room(room, route="chat"),
                                         prefix=b"h/"))
    check_ok(rows, "storage_list")
    check_eq([(k, v[:8], v[8:], f) for k, v, f in rows.rows()],
             [(b"h/0000000000000000", bytes(8), b"from the backend", True),
              (b"h/0000000000000001", mine["conn"].to_bytes(8, "little"),
               b"from a client", True)],
             "the chat history in storage")
    rows = w.call(ops(d), w.storage_list(w.room(room, route="chat"),
                                         prefix=b"h/", reverse=True,
                                         limit=1))
    check_eq([k for k, _, _ in rows.rows()], [b"h/0000000000000001"],
             "newest first, limit 1")
    got = w.call(ops(d), w.storage_get(w.room(room, route="chat"),
                                       [b"h/0000000000000000", b"h/none"]))
    check_ok(got, "storage_get")
    check_eq(got.rows(), [(b"h/0000000000000000",
                           bytes(8) + b"from the backend", True),
                          (b"h/none", b"", False)],
             "storage_get rows in the order asked, absent ones not found")
    await harness.close_all(a)


async def chat_refuses_binary_from_a_backend(d):
    room = harness.unique()
    a = await connect(d, "/chat/" + room)
    await recv(a)   # welcome
    reply = w.call(ops(d), w.publish(w.room(room, route="chat"),
                                     w.message(b"binary")))
    check_status(reply, "REFUSED", "1003", "binary into chat")
    check_eq(reply.closed(), (True, 1003, b"chat takes text"),
             "the close the class sent the publisher")
    reply = w.call(ops(d), w.publish(w.room(room, route="chat"),
                                     w.message("text")))
    check_ok(reply, "text after the refusal")
    got = json.loads(await recv(a))
    check_eq((got["seq"], got["text"]), (0, "text"),
             "the refused message left nothing behind")
    await harness.close_all(a)


# ---- deliver and inspect ----

async def deliver_by_tag_and_except(d):
    room = harness.unique()
    red1 = await connect(d, "/chat/%s?tag=red" % room)
    red1_id = json.loads(await recv(red1))["conn"]
    red2 = await connect(d, "/chat/%s?tag=red&tag=x" % room)
    red2_id = json.loads(await recv(red2))["conn"]
    blue = await connect(d, "/chat/%s?tag=blue" % room)
    await recv(blue)
    for ws in (red1, red1, red2):   # joins announced before the test
        check_eq(json.loads(await recv(ws))["type"], "join", "join")
    reply = w.call(ops(d), w.deliver(w.room(room, route="chat"),
                                     w.message("to red"), tag="red"))
    check_ok(reply, "deliver to red")
    check_eq(reply.recipients(), 2, "recipients with tag red")
    check_eq(await recv(red1), "to red", "red1 got it")
    check_eq(await recv(red2), "to red", "red2 got it")
    reply = w.call(ops(d), w.deliver(w.room(room, route="chat"),
                                     w.message(b"all but red1"),
                                     except_conn=red1_id))
    check_eq(reply.recipients(), 2, "recipients but red1")
    check_eq(await recv(red2), b"all but red1", "red2 got the second")
    check_eq(await recv(blue), b"all but red1",
             "blue's first is the second: the tagged one skipped it")
    reply = w.call(ops(d), w.deliver(w.room(room, route="chat"),
                                     w.message("x only"), tag="x",
                                     except_conn=red2_id))
    check_eq(reply.recipients(), 0, "the only x connection is excepted")
    # The class never heard of the deliveries: the next stored seq is 0.
    await blue.send("after")
    for ws in (red1, red2, blue):
        got = json.loads(await recv(ws))
        check_eq((got["seq"], got["text"]), (0, "after"),
                 "the class saw no delivered message")
    reply = w.call(ops(d), w.deliver(w.room(harness.unique(), route="chat"),
                                     w.message("nobody")))
    check_ok(reply, "deliver to a room not in memory")
    check_eq(reply.recipients(), 0, "nobody to deliver to")
    await harness.close_all(red1, red2, blue)


async def list_connections_with_tags(d):
    room = harness.unique()
    alice = await connect(d, "/chat/%s?tag=alice&tag=admins" % room)
    alice_id = json.loads(await recv(alice))["conn"]
    bob = await connect(d, "/chat/%s?tag=bob" % room)
    bob_id = json.loads(await recv(bob))["conn"]
    reply = w.call(ops(d), w.list_connections(w.room(room, route="chat")))
    check_ok(reply, "list_connections")
    check_eq(sorted(reply.connections()),
             sorted([(alice_id, [b"alice", b"admins"]), (bob_id, [b"bob"])]),
             "connections with their tags")
    reply = w.call(ops(d), w.list_connections(w.room(room, route="chat"),
                                              tag="admins"))
    check_eq(reply.connections(), [(alice_id, [b"alice", b"admins"])],
             "connections with tag admins")
    reply = w.call(ops(d), w.list_connections(
        w.room(harness.unique(), route="chat")))
    check_ok(reply, "list_connections of a room not in memory")
    check_eq(reply.connections(), [], "no connections")
    await harness.close_all(alice, bob)


# ---- subscribe ----

async def subscribe_follows_one_room(d):
    room = harness.unique("lob")
    longer = room + "by"
    sub = await subscribed(d, room)
    everything = await subscribed(d, longer, b"relay/")
    a = await connect(d, "/relay/%s?tag=t1" % room)
    b = await connect(d, "/relay/" + room)
    x = await connect(d, "/relay/" + longer)
    await a.send("hello")
    check_eq(await recv(b), "hello", "b got a's message")
    await b.send(ALL_BYTES)
    check_eq(await recv(a), ALL_BYTES, "a got b's message")
    await x.send("in the longer room")
    reply = w.call(ops(d), w.publish(relay(room), w.message("backend")))
    check_ok(reply, "publish")
    await recv(a)
    await recv(b)
    await a.close()
    await b.close()

    seen = [sub.next() for _ in range(7)]
    check_eq([e.type for e in seen],
             ["open", "open", "message", "message", "message", "close",
              "close"],
             "the room's events, in order")
    check(all(e.topic == w.topic("relay", room) for e in seen),
          "topics: %r" % set(e.topic for e in seen))
    check(all(e.class_name == "relay" and e.name == room.encode()
              and e.id == w.object_id("relay", room) for e in seen),
          "every event names the room and its id")
    a_id, b_id = seen[0].conn_id, seen[1].conn_id
    check_eq(seen[0].tags, [b"t1"], "a's open carries its tags")
    check_eq((seen[2].conn_id, seen[2].data), (a_id, "hello"), "a's message")
    check_eq((seen[3].conn_id, seen[3].data), (b_id, ALL_BYTES),
             "b's binary, byte for byte")
    check_eq((seen[4].conn_id, seen[4].backend, seen[4].data),
             (0, True, "backend"), "the backend's message")
    check_eq(sorted((e.conn_id, e.code, e.clean) for e in seen[5:]),
             sorted([(a_id, 1000, True), (b_id, 1000, True)]),
             "clean closes")
    check(all(e.time_ms > 1600000000000 for e in seen), "wall-clock times")
    nothing = sub.poll(0.5)
    check(nothing is None, "the one-room subscriber saw %r of another room"
          % nothing)

    # Rooms of earlier tests may still be closing: keep to these two.
    ours = {room.encode(), longer.encode()}
    classwide = []
    while len(classwide) < 9:
        ev = everything.next()
        if ev.name in ours:
            classwide.append(ev)
    check_eq(sorted(set(e.name for e in classwide)), sorted(ours),
             "the class subscriber follows both rooms")
    check(any(e.name == longer.encode() and e.type == "message"
              and e.data == "in the longer room" for e in classwide),
          "it saw the longer room's message")
    sub.close()
    everything.close()
    await harness.close_all(x)


# ---- permissions and bad requests ----

async def address_refuses_what_it_does_not_allow(d):
    narrow = urls(d)["listen.narrow"]
    check(narrow.startswith("ipc://"), "the narrow address is ipc")
    room = harness.unique()
    a = await connect(d, "/chat/" + room)
    await recv(a)
    refused = [
        ("deliver", w.deliver(w.room(room, route="chat"), w.message("x")),
         '"deliver" needs "deliver"'),
        ("list_connections", w.list_connections(w.room(room, route="chat")),
         '"list_connections" needs "inspect"'),
        ("storage_get", w.storage_get(w.room(room, route="chat"), [b"h/"]),
         '"storage_get" needs "storage_read"'),
        ("storage_list", w.storage_list(w.room(room, route="chat")),
         '"storage_list" needs "storage_read"'),
    ]
    for what, req, words in refused:
        reply = w.call(narrow, req)
        check_status(reply, "NOT_PERMITTED", words, what)
        check("listen.narrow" in reply.message
              and "it allows publish" in reply.message,
              "%s: the refusal names the address and what it allows: %r"
              % (what, reply.message))
    reply = w.call(narrow, w.publish(w.room(room, route="chat"),
                                     w.message("allowed")))
    check_ok(reply, "publish on the narrow address")
    got = json.loads(await recv(a))
    check_eq((got["seq"], got["text"]), (0, "allowed"),
             "nothing refused reached the room")
    await harness.close_all(a)


def bad_requests(room):
    """(what, request bytes, status, words of the message), aimed at room
    where a request names one."""
    r = relay(room)
    return [
        ("garbage", b"\xff\xff\xff\xff", "BAD_REQUEST", "malformed request"),
        ("truncated", w.publish(r, w.message("hello"))[:-3], "BAD_REQUEST",
         "malformed request"),
        ("empty", b"", "BAD_REQUEST", "version is missing"),
        ("no version", w.publish(r, w.message("x"), version=0),
         "BAD_REQUEST", "version is missing"),
        ("version 2", w.publish(r, w.message("x"), version=2),
         "UNSUPPORTED_VERSION", "protocol version 2 is not supported"),
        ("unknown operation", w.request(42, b"\x08\x01"),
         "UNKNOWN_OPERATION", "unknown operation (field 42)"),
        ("no operation", w.f_varint(1, 1), "BAD_REQUEST", "no operation"),
        ("no room", w.request(w.OP_PUBLISH, w.f_bytes(2, w.message("x"))),
         "BAD_REQUEST", "publish.room is missing"),
        ("no message", w.request(w.OP_PUBLISH, w.f_bytes(1, r)),
         "BAD_REQUEST", "publish.message is missing"),
        ("route and class",
         w.publish(w.room(room, route="relay", class_name="relay"),
                   w.message("x")),
         "BAD_REQUEST", "bad room"),
        ("no name", w.publish(w.room(route="relay"), w.message("x")),
         "BAD_REQUEST", "bad room"),
        ("~new", w.publish(relay("~new"), w.message("x")), "BAD_REQUEST",
         "bad room"),
        ("long name", w.publish(relay("n" * 257), w.message("x")),
         "BAD_REQUEST", "bad room"),
        ("short id", w.publish(w.room(id=b"\x01" * 15), w.message("x")),
         "BAD_REQUEST", "publish.room.id has 15 bytes"),
        ("unknown route", w.publish(w.room(room, route="nope"),
                                    w.message("x")),
         "NOT_FOUND", 'no route "nope"'),
        ("unknown class", w.publish(w.room(room, class_name="nope"),
                                    w.message("x")),
         "NOT_FOUND", 'no class "nope" is loaded'),
        ("kind 0", w.publish(r, w.message(b"x", kind=0)), "BAD_REQUEST",
         "publish.message.kind is 0"),
        ("bad UTF-8", w.publish(r, w.message(b"\xc3\x28", kind=w.TEXT)),
         "BAD_REQUEST", "not valid UTF-8"),
        ("too large", w.publish(r, w.message(b"x" * 65537)), "TOO_LARGE",
         "65537 bytes, limit 65536"),
        ("no keys", w.storage_get(r, []), "BAD_REQUEST",
         "expected 1 to 1000"),
    ]


async def bad_requests_get_clear_replies(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    for what, payload, status, words in bad_requests(room):
        check_status(w.call(ops(d), payload), status, words, what)
    await expect_nothing(a, 0.3)
    await a.send("still here")
    check_eq(await recv(b), "still here", "the room works as before")
    check_ok(w.call(ops(d), w.publish(relay(room), w.message("and this"))),
             "a good request after the bad ones")
    check_eq(await recv(a), "and this", "a")
    check_eq(await recv(b), "and this", "b")
    await harness.close_all(a, b)


async def unknown_fields_are_ignored(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    extra_room = relay(room) + w.f_varint(9, 7) + w.f_bytes(15, b"later")
    payload = (w.f_varint(1, 1) + w.f_bytes(7, b"a field of a later version")
               + w.f_bytes(w.OP_PUBLISH, w.f_bytes(1, extra_room)
                           + w.f_bytes(2, w.message("ok")
                                       + w.f_varint(6, 1))))
    check_ok(w.call(ops(d), payload), "a request with unknown fields")
    check_eq(await recv(a), "ok", "delivered")
    await harness.close_all(a)


async def raw_sp_client(d):
    """A client built from the protocol description alone: SP over TCP by
    hand, protobuf by hand, one connection for several requests."""
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    req = w.Requester(ops(d))
    for i in range(3):
        check_ok(req.call(w.publish(relay(room), w.message("raw %d" % i))),
                 "raw publish %d" % i)
        check_eq(await recv(a), "raw %d" % i, "raw publish %d arrived" % i)
    reply = req.call(w.list_connections(relay(room)))
    check_eq(len(reply.connections()), 1, "one connection listed")
    check_status(req.call(b"\x0a"), "BAD_REQUEST", "malformed request",
                 "a raw malformed request")
    req.close()
    await harness.close_all(a)


# ---- push, hibernation ----

async def push_is_fire_and_forget_in_order(d):
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    pusher = w.Pusher(urls(d)["listen.stream"])
    sent = ["push-%03d" % i for i in range(100)]
    for text in sent:
        pusher.send(w.publish(relay(room), w.message(text)))
    got = [await recv(a) for _ in sent]
    check_eq(got, sent, "pushed messages, in order")
    pusher.send(w.deliver(relay(room), w.message(b"delivered")))
    check_eq(await recv(a), b"delivered", "a pushed deliver")
    mark = len(d.log())
    pusher.send(b"\xff\xff")
    pusher.send(w.list_connections(relay(room)))
    deadline = time.monotonic() + harness.IO_TIMEOUT_S
    while d.log()[mark:].count("could not handle a request on "
                               "listen.stream") < 2:
        check(time.monotonic() < deadline,
              "no warnings for the bad pushes:\n" + d.log()[mark:])
        await asyncio.sleep(0.05)
    tail = d.log()[mark:]
    check("BAD_REQUEST: malformed request" in tail, "malformed push logged")
    check('NOT_PERMITTED: operation "list_connections" needs "inspect"'
          in tail, "refused push logged")
    pusher.send(w.publish(relay(room), w.message("after")))
    check_eq(await recv(a), "after", "the room works after bad pushes")
    pusher.close()
    await harness.close_all(a)


async def publish_wakes_a_hibernating_room(d):
    room = harness.unique()
    obj = "relay/" + room
    a = await connect(d, "/relay/" + room)
    b = await connect(d, "/relay/" + room)
    await a.send("warm up")
    check_eq(await recv(b), "warm up", "before hibernation")
    deadline = time.monotonic() + harness.IO_TIMEOUT_S
    while not any(m.group(1) == obj for m in HIBERNATED.finditer(d.log())):
        check(time.monotonic() < deadline, "%s did not hibernate" % obj)
        await asyncio.sleep(0.05)
    check(not any(m.group(1) == obj for m in WOKE.finditer(d.log())),
          "not woken yet")
    check_ok(w.call(ops(d), w.publish(relay(room), w.message("wake up"))),
             "publish into the hibernating room")
    check_eq(await recv(a), "wake up", "a")
    check_eq(await recv(b), "wake up", "b")
    check(any(m.group(1) == obj for m in WOKE.finditer(d.log())),
          "the log says the room woke")
    await harness.close_all(a, b)



TESTS = [
    ("publish: WebSocket clients of a relay room get it byte for byte",
     publish_reaches_clients_byte_exact),
    ("publish: by class name and by 128-bit id; an unknown id is NOT_FOUND",
     publish_by_class_and_by_id),
    ("publish: what the class sends the publisher comes back in the reply",
     publish_gets_the_class_answers),
    ("publish: a chat room stores it as conn 0; storage_list and "
     "storage_get read the history", publish_into_chat_is_stored),
    ("publish: chat closes a binary publisher, REFUSED 1003, nothing stored",
     chat_refuses_binary_from_a_backend),
    ("deliver: by tag, except one connection, unseen by the class",
     deliver_by_tag_and_except),
    ("list_connections: ids and tags, all or by tag",
     list_connections_with_tags),
    ("subscribe: one room's opens, messages and closes, nothing of "
     "relay/ROOMby; relay/ follows both", subscribe_follows_one_room),
    ("permissions: an ipc address that allows publish refuses the rest",
     address_refuses_what_it_does_not_allow),
    ("bad requests: malformed, unknown operation, wrong version, bad fields"
     " each get a clear reply; the room is unaffected",
     bad_requests_get_clear_replies),
    ("versioning: unknown fields are ignored", unknown_fields_are_ignored),
    ("a raw SP/TCP client written from the protocol description works",
     raw_sp_client),
    ("pull: pushed messages arrive in order; bad pushes are logged",
     push_is_fire_and_forget_in_order),
    ("publish wakes a hibernating room", publish_wakes_a_hibernating_room),
]


if __name__ == "__main__":
    harness.run_suite(TESTS, daemon_config=CONFIG)
