#!/usr/bin/python3
"""The chat class against a real torpord with the file store.

A joining client gets the room's history, oldest first, then its welcome;
everyone sees joins, leaves and every message (the sender's copy is its
acknowledgement); the history survives a clean restart and a kill -9: a
message any client has received is there afterwards, because the output
gate sends nothing before its write is durable.
"""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, connect, recv, stop_clean  # noqa

CONFIG = """\
[core]
log_level = notice
plugins = websocket, chat

[route.relay]
enabled = false

[route.echo]
enabled = false

[transport.websocket]
listen = 127.0.0.1:0

[class.chat]
history = %d

[storage.file]
fsync = always
"""


async def recv_json(ws):
    raw = await recv(ws)
    check(isinstance(raw, str), "chat sends text frames, got %r" % (raw,))
    return json.loads(raw)


async def join(d, room, query=""):
    """Connect; return (ws, history messages, own conn id)."""
    ws = await connect(d, "/chat/" + room + query)
    history = []
    while True:
        ev = await recv_json(ws)
        if ev["type"] == "welcome":
            return ws, history, ev["conn"]
        check_eq(ev["type"], "message", "before welcome only history")
        check_eq(ev.get("history"), True, "replayed message is marked")
        history.append(ev)


async def say(ws, text):
    """Send text and wait for its acknowledgement (our own copy)."""
    await ws.send(text)
    while True:
        ev = await recv_json(ws)
        if ev["type"] == "message" and ev["text"] == text:
            return ev


def daemon(history=100):
    d = harness.Daemon(CONFIG % history)
    d.start()
    return d


async def history_replayed_in_order(_):
    d = daemon()
    try:
        room = harness.unique()
        a, hist, a_id = await join(d, room)
        check_eq(hist, [], "a new room has no history")
        sent = ["first", "zweite \u00fc", 'quote " and \\ and \n newline']
        seqs = [(await say(a, t))["seq"] for t in sent]
        check_eq(seqs, [0, 1, 2], "sequence numbers")
        b, hist, b_id = await join(d, room)
        check_eq([m["text"] for m in hist], sent, "history, oldest first")
        check_eq([m["seq"] for m in hist], seqs, "history seqs")
        check_eq([m["conn"] for m in hist], [a_id] * 3, "history senders")
        check(a_id != b_id, "connections have distinct ids")
        check_eq(await recv_json(a), {"type": "join", "conn": b_id,
                                      "tags": []}, "a sees b join")
        await b.send("from b")
        ev_a = await recv_json(a)
        ev_b = await recv_json(b)
        want = {"type": "message", "conn": b_id, "seq": 3, "text": "from b"}
        check_eq(ev_a, want, "a gets b's message")
        check_eq(ev_b, want, "b gets its own copy as acknowledgement")
        await b.close()
        check_eq(await recv_json(a), {"type": "leave", "conn": b_id,
                                      "tags": []}, "a sees b leave")
        await harness.close_all(a)
    finally:
        stop_clean(d)


async def history_keeps_last_n(_):
    d = daemon(history=5)
    try:
        room = harness.unique()
        a, _, _ = await join(d, room)
        for i in range(8):
            await say(a, "m%d" % i)
        b, hist, _ = await join(d, room)
        check_eq([m["text"] for m in hist], ["m3", "m4", "m5", "m6", "m7"],
                 "the last 5 messages")
        check_eq([m["seq"] for m in hist], [3, 4, 5, 6, 7], "their seqs")
        await harness.close_all(a, b)
    finally:
        stop_clean(d)


async def history_survives_restart(_):
    d = daemon()
    room = harness.unique()
    try:
        a, _, _ = await join(d, room)
        for t in ("before", "the", "restart"):
            await say(a, t)
        await harness.close_all(a)
    finally:
        stop_clean(d)
    d.start()   # the same folder, so the same ./torpor-data
    try:
        b, hist, _ = await join(d, room)
        check_eq([m["text"] for m in hist], ["before", "the", "restart"],
                 "history after a clean restart")
        ev = await say(b, "after")
        check_eq(ev["seq"], 3, "numbering continues after a restart")
        await harness.close_all(b)
    finally:
        stop_clean(d)


async def acknowledged_survive_kill9(_):
    """Acknowledged messages are in the history after kill -9, every time."""
    d = daemon(history=1000)
    room = harness.unique()
    acked = []
    try:
        for round_no in range(5):
            a, hist, _ = await join(d, room)
            texts = [m["text"] for m in hist]
            check_eq(texts[:len(acked)], acked,
                     "round %d: every acknowledged message, in order"
                     % round_no)
            seqs = [m["seq"] for m in hist]
            check_eq(seqs, list(range(len(seqs))),
                     "round %d: sequence without gaps" % round_no)
            # Messages the server stored but whose copy never reached us
            # before the kill are fine; they just count from here on.
            acked = texts
            # Keep sending, then kill while messages are still in flight.
            for i in range(20):
                text = "r%d-m%d" % (round_no, i)
                await a.send(text)
            got = 0
            while got < 10:
                ev = await recv_json(a)
                if ev["type"] == "message":
                    acked.append(ev["text"])
                    got += 1
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(timeout=harness.STOP_TIMEOUT_S)
            harness._live.discard(d.proc)
            d._log_file.close()
            await harness.close_all(a)
            d.start()
        b, hist, _ = await join(d, room)
        texts = [m["text"] for m in hist]
        check_eq(texts[:len(acked)], acked, "after the last kill")
        await harness.close_all(b)
    finally:
        stop_clean(d)


async def presence_carries_tags(_):
    d = daemon()
    try:
        room = harness.unique()
        a, _, a_id = await join(d, room, "?tag=alice")
        ws = await connect(d, "/chat/%s?tag=b%%C3%%B6b&tag=admins&x=1" % room)
        welcome = await recv_json(ws)
        check_eq(welcome["type"], "welcome", "welcome first in a new room")
        check_eq(welcome["tags"], ["b\u00f6b", "admins"],
                 "own tags, percent-decoded, in the welcome")
        joined = await recv_json(a)
        check_eq((joined["type"], joined["tags"]),
                 ("join", ["b\u00f6b", "admins"]), "others see the tags")
        await ws.close()
        left = await recv_json(a)
        check_eq((left["type"], left["conn"], left["tags"]),
                 ("leave", welcome["conn"], ["b\u00f6b", "admins"]),
                 "leave carries them too")
        await harness.close_all(a)
    finally:
        stop_clean(d)


async def bad_tags_refused(_):
    d = daemon()
    try:
        room = harness.unique()
        eleven = "&".join("tag=t%d" % i for i in range(11))
        for query, what in (("?tag=%zz", "a malformed escape"),
                            ("?tag=%ff", "a tag that is not UTF-8"),
                            ("?" + eleven, "eleven tags"),
                            ("?tag=" + "x" * 257, "a tag of 257 bytes")):
            req = harness.upgrade_request("/chat/%s%s" % (room, query),
                                          d.port)
            status = harness.http_exchange(d.port, req)[0]
            check_eq(status, 400, what + " is refused with 400")
    finally:
        stop_clean(d)


async def binary_is_refused(_):
    d = daemon()
    try:
        a, _, _ = await join(d, harness.unique())
        await a.send(b"\x00\x01")
        check_eq(await harness.close_code_of(a), 1003,
                 "binary message closes with 1003")
    finally:
        stop_clean(d)


async def bad_history_setting_refused(_):
    d = harness.Daemon(CONFIG % 0)
    rc, out, err = harness.run_cli(["--check-config", "--config",
                                    d.config_path, "--plugin-path",
                                    d.plugin_path])
    check(rc != 0, "history = 0 is refused")
    check('torpor.conf:15: bad value "0" for "history" in section '
          '[class.chat]' in err, "FILE:LINE names the key: %s" % err)


TESTS = [
    ("history is replayed oldest first, then welcome; join, leave, "
     "acknowledgement", history_replayed_in_order),
    ("history keeps the last N messages", history_keeps_last_n),
    ("history survives a clean restart", history_survives_restart),
    ("every acknowledged message survives kill -9, five times",
     acknowledged_survive_kill9),
    ("presence: welcome, join and leave carry the URL's tags",
     presence_carries_tags),
    ("a malformed, non-UTF-8, oversized or eleventh tag is refused with 400",
     bad_tags_refused),
    ("a binary message is refused with 1003", binary_is_refused),
    ("a bad [class.chat] value fails --check-config with FILE:LINE",
     bad_history_setting_refused),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
