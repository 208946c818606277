#!/usr/bin/python3
"""The nng transport at its limits, against a real torpord with nngcat and
a small SP client: a request over the size limit loses its connection
and nothing else; a room whose queue is full turns publishes away as
OVERLOADED; a handler that overruns answers HANDLER_FAILED and the room
goes on; --check-config names every bad [transport.nng] line.  And,
since it needs the probe class too, a room's alarm on the event stream.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import nng_wire as w  # noqa: E402
from harness import check, check_eq, connect, recv  # noqa: E402
from test_nng import CONFIG, check_ok, check_status, ops, relay  # noqa

async def oversized_request_drops_its_connection(d):
    """nng itself drops a request over max_message_bytes + 64 KiB, and the
    connection that sent it; other connections go on."""
    room = harness.unique()
    a = await connect(d, "/relay/" + room)
    big = w.Requester(ops(d))
    try:
        big.call(w.publish(relay(room), w.message(b"x" * 200000)))
        raise harness.TestFailure("a 200000-byte request got a reply")
    except harness.TestFailure as exc:
        check("the peer closed" in str(exc), "unexpected failure: %s" % exc)
    big.close()
    small = w.Requester(ops(d))
    check_ok(small.call(w.publish(relay(room), w.message("small"))),
             "a request on another connection")
    check_eq(await recv(a), "small", "only the small message arrived")
    small.close()
    await harness.close_all(a)


# ---- a room that is busy or overruns: the probe class ----

PROBE_CONFIG = """\
[core]
log_level = debug
plugins = websocket, probe, nng
loops = 1
max_queued_events = 2
handler_timeout_ms = %d

[transport.websocket]
listen = 127.0.0.1:0

[transport.nng]
listen.ops = rep tcp://127.0.0.1:0 publish
listen.events = pub tcp://127.0.0.1:0

[route.probe]
class = probe
"""


def probe(name):
    return w.room(name, route="probe")


async def full_queue_is_overloaded(_):
    """While a room commits, two publishes wait in its queue
    (max_queued_events = 2) and the others are turned away as OVERLOADED.
    The probe's "block" writes and then keeps the loop until a file
    exists; the publishes are released only once all four are handed to
    the loop, so what is queued and what is refused does not depend on
    timing."""
    d = harness.fixture_daemon(PROBE_CONFIG % 60000)
    try:
        u = w.listen_urls(d.log())
        room = harness.unique()
        flag = os.path.join(harness.SCRATCH, "hold-" + os.urandom(4).hex())
        sub = w.Subscriber(u["listen.events"], w.topic("probe", room))
        deadline = time.monotonic() + harness.IO_TIMEOUT_S
        while sub.poll(0.3) is None:
            check(time.monotonic() < deadline, "the subscriber saw nothing")
            check_eq(w.call(u["listen.ops"], w.publish(
                probe(room), w.message("name"))).replies(),
                ["name " + room], "probe's answer to the backend")
        holder = w.Asking(u["listen.ops"],
                          w.publish(probe(room), w.message("block " + flag)))
        ev = sub.next()
        while ev.type != "message" or ev.data != "block " + flag:
            ev = sub.next()
        mark = len(d.log())
        others = [w.Asking(u["listen.ops"],
                           w.publish(probe(room), w.message("instance")))
                  for _ in range(4)]
        while d.log()[mark:].count("publish request on listen.ops handed "
                                   "to its room") < 4:
            check(time.monotonic() < deadline + 30,
                  "the four publishes were not handed to the room:\n"
                  + d.log()[mark:])
            await asyncio.sleep(0.02)
        open(flag, "w").close()
        held = holder.reply()
        check_ok(held, "the holding publish")
        check_eq(held.replies(), ["held"], "probe's answer")
        replies = [a.reply() for a in others]
        check_eq(sorted(r.status for r in replies),
                 ["OK", "OK", "OVERLOADED", "OVERLOADED"],
                 "two wait in the queue, two are refused: %r" % replies)
        for r in replies:
            if r.status == "OVERLOADED":
                check("max_queued_events" in r.message,
                      "the refusal names the limit: %r" % r.message)
            else:
                check_eq(len(r.replies()), 1, "a queued one ran")
        sub.close()
    finally:
        harness.stop_clean(d)


async def overrun_handler_fails(_):
    d = harness.fixture_daemon(PROBE_CONFIG % 100)
    try:
        u = w.listen_urls(d.log())
        room = harness.unique()
        reply = w.call(u["listen.ops"],
                       w.publish(probe(room), w.message("spin 300")))
        check_status(reply, "HANDLER_FAILED",
                     "ran past [core] handler_timeout_ms", "a runaway handler")
        reply = w.call(u["listen.ops"],
                       w.publish(probe(room), w.message("myid")))
        check_ok(reply, "the room after the reset")
        check_eq(reply.replies(), ["id 0"], "a backend's sender has id 0")
    finally:
        harness.stop_clean(d)


async def alarms_appear_on_the_stream(_):
    d = harness.fixture_daemon(PROBE_CONFIG % 60000)
    try:
        u = w.listen_urls(d.log())
        room = harness.unique()
        sub = w.Subscriber(u["listen.events"], w.topic("probe", room))
        deadline = time.monotonic() + harness.IO_TIMEOUT_S
        while sub.poll(0.3) is None:
            check(time.monotonic() < deadline, "the subscriber saw nothing")
            check_ok(w.call(u["listen.ops"], w.publish(
                probe(room), w.message("name"))), "probe")
        reply = w.call(u["listen.ops"],
                       w.publish(probe(room), w.message("set a1 1")))
        check_eq(reply.replies(), ["set a1"], "the alarm was set")
        ev = sub.next()
        while ev.type != "alarm":
            ev = sub.next()
        check_eq((ev.alarm, ev.retry, ev.conn_id, ev.name),
                 ("a1", 0, 0, room.encode()), "the alarm event")
        sub.close()
    finally:
        harness.stop_clean(d)


# ---- configuration ----

async def check_config_reports_bad_lines(_):
    cases = [
        ("listen = rep tcp://127.0.0.1 publish", "numeric port"),
        ("listen = rep http://127.0.0.1:1 publish", "scheme must be"),
        ("listen = rep tcp://127.0.0.1:1 publish,shout",
         'unknown operation "shout"'),
        ("listen = req tcp://127.0.0.1:1 publish", 'unknown pattern "req"'),
        ("listen = pull tcp://127.0.0.1:1 inspect", "needs a reply"),
        ("max_message_bytes = lots", "expected an integer"),
        ("port = 1", 'unknown key "port"'),
    ]
    for line, words in cases:
        path = os.path.join(harness.SCRATCH, "nng-%s.conf" % harness.unique())
        with open(path, "w") as f:
            f.write("[core]\nplugins = websocket, relay, nng\n"
                    "[transport.nng]\n%s\n" % line)
        rc, out, err = harness.run_cli(
            ["--config", path, "--check-config", "--plugin-path",
             harness.env_path("TORPOR_PLUGIN_PATH")])
        check(rc != 0, "--check-config accepted %r" % line)
        want = "%s:4:" % path
        lines = [l for l in err.splitlines() if want in l]
        check(lines, "no %r line for %r; stderr:\n%s" % (want, line, err))
        check(words in lines[0], "the line for %r lacks %r: %r"
              % (line, words, lines[0]))
        check(not harness.sanitizer_lines(err), "sanitizer report:\n" + err)


TESTS = [
    ("an oversized request loses its connection, nothing else",
     oversized_request_drops_its_connection),
    ("a room's full queue turns publishes away as OVERLOADED",
     full_queue_is_overloaded),
    ("a handler past handler_timeout_ms: HANDLER_FAILED; the room goes on",
     overrun_handler_fails),
    ("a room's alarms appear on the event stream",
     alarms_appear_on_the_stream),
    ("--check-config names the line of each bad [transport.nng] key",
     check_config_reports_bad_lines),
]


if __name__ == "__main__":
    harness.run_suite(TESTS, daemon_config=CONFIG)
