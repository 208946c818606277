#!/usr/bin/python3
"""The backend class with the C moderator worker (examples/workers/c).

Real peers throughout: torpord, worker processes over nng, WebSocket
clients.  Beyond the moderator's conversation: state in storage across
hibernation and a restart, alarms set by a worker, and what torpord does
when workers misbehave: a worker killed mid-event, one that answers too
late, one that answers garbage, none at all.  Each test has its own
torpord and workers.
"""

import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ask, check, check_eq, recv  # noqa: E402
from backend_util import Backend, join, moderator_conversation  # noqa


async def conversation(_):
    b = Backend().start()
    try:
        b.start_worker("w1")
        await b.wait_connected(1)
        await moderator_conversation(b)
    finally:
        log = b.stop()
    m = re.search(r"backend: stopped: (\d+) events, (\d+) applied, "
                  r"(\d+) timeouts, (\d+) workers lost, (\d+) malformed "
                  r"replies, (\d+) refused, (\d+) dropped", log)
    check(m is not None, "the class's counters are logged at shutdown")
    check(int(m.group(1)) >= 15 and m.group(1) == m.group(2),
          "every event was applied: %s" % m.group(0))
    check(m.group(3, 4, 5, 6, 7) == ("0",) * 5, "and nothing failed: %s"
          % m.group(0))


async def hibernation_and_restart(_):
    b = Backend(hibernate_ms=200).start()
    room = harness.unique()
    try:
        b.start_worker("w1")
        await b.wait_connected(1)
        bob = await join(b, "/mod/" + room, "bob")
        for n in (1, 2):
            await bob.send("heck %d" % n)
            check_eq(await recv(bob), "warning %d of 3: message refused" % n,
                     "warning %d" % n)
        await b.wait_log('object="backend/%s": object hibernated' % room)
        check_eq(await ask(bob, "!warnings"), "warnings 2",
                 "read back after hibernation, which woke the room")
        check('object="backend/%s": object woke from hibernation' % room
              in b.daemon.log(), "the room woke")
        await harness.close_all(bob)
        harness.stop_clean(b.daemon)
        b.daemon.start()    # the same folder: data and workers' socket
        await b.wait_connected(1)   # the worker dials again by itself
        bob = await join(b, "/mod/" + room, "bob")
        check_eq(await ask(bob, "!warnings"), "warnings 2",
                 "the count survives a restart of torpord")
        await bob.send("darn")
        check_eq(await recv(bob), "warning 3 of 3: message refused",
                 "the third warning after the restart")
        await harness.expect_server_close(bob, 1008)
    finally:
        b.stop()


async def alarm_reaches_the_worker(_):
    b = Backend(hibernate_ms=200).start()
    room = harness.unique()
    try:
        b.start_worker("w1")
        await b.wait_connected(1)
        alice = await join(b, "/mod/" + room, "alice")
        check_eq(await ask(alice, "!remind 1500 tea time"), "reminder set",
                 "the worker set an alarm")
        await b.wait_log('object="backend/%s": object hibernated' % room)
        check_eq(await recv(alice), "reminder: tea time",
                 "the alarm fired, reached the worker, whose broadcast "
                 "reached the room")
        log = b.worker_log("w1")
        check(re.search(r"step 0 attempt 0: alarm of conn 0", log)
              and re.search(r"step 1 attempt 0: alarm of conn 0", log),
              "the worker got the alarm event and read the reminder: %s"
              % harness.tail(log, 6))
        await harness.close_all(alice)
    finally:
        b.stop()


async def worker_killed_mid_event(_):
    b = Backend(timeout_ms=10000).start()
    marker = os.path.join(b.daemon.dir, "stall-once")
    open(marker, "w").close()
    try:
        for name in ("w1", "w2"):
            b.start_worker(name, args=["--marker", marker,
                                       "--stall-on", "#stall"])
        await b.wait_connected(2)
        room = "/mod/" + harness.unique()
        alice = await join(b, room, "alice")
        bob = await join(b, room, "bob")
        check_eq(await recv(alice), "bob joined", "join")
        # A refused word: the warning is read, then written at step 1,
        # where one worker stalls with the event.
        await bob.send("heck #stall")
        stalled = None
        end = asyncio.get_running_loop().time() + harness.IO_TIMEOUT_S
        while stalled is None:
            check(asyncio.get_running_loop().time() < end,
                  "no worker stalled on the event")
            for name in ("w1", "w2"):
                if "stalling on event" in b.worker_log(name):
                    stalled = name
            await asyncio.sleep(0.05)
        b.kill_worker(stalled)      # SIGKILL, by pid
        check_eq(await recv(bob), "warning 1 of 3: message refused",
                 "the other worker finished the event")
        await harness.expect_nothing(bob, 0.5)
        check_eq(await ask(bob, "!warnings"), "warnings 1",
                 "counted once in storage, not lost, not doubled")
        await harness.expect_nothing(alice, 0.2)
        log = b.daemon.log()
        check(re.search(r"step 1: lost the worker: .*; retry 1 of 2", log),
              "the lost worker is logged with the retry:\n%s"
              % harness.tail(log, 8))
        await harness.close_all(alice, bob)
    finally:
        b.stop()


async def late_reply_is_ignored(_):
    b = Backend(timeout_ms=1000).start()
    marker = os.path.join(b.daemon.dir, "slow-once")
    open(marker, "w").close()
    try:
        b.start_worker("w1", args=["--marker", marker, "--slow-on", "#slow",
                                   "--slow-ms", "1300"])
        await b.wait_connected(1)
        room = "/mod/" + harness.unique()
        alice = await join(b, room, "alice")
        bob = await join(b, room, "bob")
        check_eq(await recv(alice), "bob joined", "join")
        await alice.send("hello #slow")
        check_eq(await recv(bob), "alice: hello #slow",
                 "the retry's reply is applied")
        await harness.expect_nothing(bob, 1.0)  # not the late one too
        await b.wait_log("answering event", where="w1")
        log = b.daemon.log()
        check("no reply within 1000 ms; retry 1 of 2" in log,
              "the timeout is logged:\n%s" % harness.tail(log, 8))
        wlog = b.worker_log("w1")
        check(re.search(r"step 0 attempt 1: message", wlog),
              "the worker got the retry after its late answer")
        await harness.close_all(alice, bob)
    finally:
        log = b.stop()
    check(re.search(r"stopped: \d+ events, \d+ applied, 1 timeouts", log),
          "one timeout counted")


async def malformed_reply(_):
    b = Backend(retries=2).start()
    marker = os.path.join(b.daemon.dir, "garbage-once")
    open(marker, "w").close()
    try:
        b.start_worker("w1", args=["--marker", marker,
                                   "--garbage-on", "#garbage"])
        await b.wait_connected(1)
        room = "/mod/" + harness.unique()
        alice = await join(b, room, "alice")
        bob = await join(b, room, "bob")
        check_eq(await recv(alice), "bob joined", "join")
        await alice.send("once #garbage")
        check_eq(await recv(bob), "alice: once #garbage",
                 "retried after the garbage, applied once")
        await harness.expect_nothing(bob, 0.3)
        check("malformed reply: 17 bytes that are not a Reply message; "
              "retry 1 of 2" in b.daemon.log(), "the garbage is logged")
        await harness.close_all(alice, bob)
    finally:
        b.stop()


async def always_malformed_is_dropped(_):
    b = Backend(retries=1).start()
    try:
        b.start_worker("w1", args=["--garbage-on", "#always"])
        await b.wait_connected(1)
        room = "/mod/" + harness.unique()
        alice = await join(b, room, "alice")
        bob = await join(b, room, "bob")
        check_eq(await recv(alice), "bob joined", "join")
        await alice.send("bad #always")
        await b.wait_log("dropped after 2 attempts")
        await harness.expect_nothing(bob, 0.3)
        await alice.send("fine now")
        check_eq(await recv(bob), "alice: fine now",
                 "the room goes on; alice is still connected")
        log = b.daemon.log()
        check(re.search(r"ERR backend object=\"backend/[^\"]*\": event \d+ "
                        r"\(message of conn \d+\) step 0: malformed reply: "
                        r"17 bytes that are not a Reply message; dropped "
                        r"after 2 attempts", log),
              "one clear ERR line names the event and why:\n%s"
              % harness.tail(log, 6))
        await harness.close_all(alice, bob)
    finally:
        b.stop()


async def no_worker_then_one(_):
    b = Backend(timeout_ms=300, retries=1).start()
    try:
        room = "/mod/" + harness.unique()
        alice = await harness.connect(b.daemon, room + "?tag=alice")
        await b.wait_log("dropped after 2 attempts")
        check("(open of conn 1) step 0: no worker took it within 300 ms "
              "(0 connected); retry 1 of 1" in b.daemon.log(),
              "the timeout without workers is logged")
        b.start_worker("w1")
        await b.wait_connected(1)
        bob = await join(b, room, "bob")
        check_eq(await recv(alice), "bob joined",
                 "alice, whose open was dropped, is in the room")
        await harness.close_all(alice, bob)
    finally:
        b.stop()


async def shutdown_with_an_event_in_flight(_):
    b = Backend(timeout_ms=60000).start()
    try:
        b.start_worker("w1", args=["--stall-on", "#stall"])
        await b.wait_connected(1)
        alice = await join(b, "/mod/" + harness.unique(), "alice")
        await alice.send("wait #stall")
        await b.wait_log("stalling on event", where="w1")
        rc, log = b.daemon.stop()
        harness.check_clean_exit(rc, log)
        check("within 2000 ms and 1 held events did not end" in log,
              "the shutdown waited for the held event, then gave up")
        check(re.search(r"backend: stopped: 2 events, 1 applied", log),
              "the event in flight was never applied")
    finally:
        b.stop_workers()


async def bad_settings_refused(_):
    b = Backend()
    for key, value, why in (
            ("timeout_ms", "0", "expected milliseconds from 1 to 3600000"),
            ("retries", "11", "expected a count from 0 to 10"),
            ("workers", "nonsense", "expected an nng address")):
        text = re.sub(r"(?m)^%s = .*$" % key, "%s = %s" % (key, value),
                      open(b.daemon.config_path).read())
        path = b.daemon.config_path + "." + key
        with open(path, "w") as f:
            f.write(text)
        line = text.splitlines().index("%s = %s" % (key, value)) + 1
        rc, out, err = harness.run_cli(["--check-config", "--config", path,
                                        "--plugin-path",
                                        b.daemon.plugin_path])
        check(rc != 0, "%s = %s is refused" % (key, value))
        want = '%s:%d: bad value "%s" for "%s" in section [class.backend]: %s' \
            % (path, line, value, key, why)
        check(want in err, "stderr names FILE:LINE and why: %s" % err)


TESTS = [
    ("moderator: relayed, refused and warned, closed at the third warning,"
     " counted in storage", conversation),
    ("warnings in storage survive hibernation and a restart of torpord",
     hibernation_and_restart),
    ("an alarm set by a worker fires and reaches the worker",
     alarm_reaches_the_worker),
    ("a worker killed mid-event: the other worker finishes it, nothing "
     "lost or doubled", worker_killed_mid_event),
    ("a reply after timeout_ms is ignored; the retry's is applied once",
     late_reply_is_ignored),
    ("a malformed reply is logged and retried", malformed_reply),
    ("an event answered only with garbage is dropped with one ERR line; "
     "the room goes on", always_malformed_is_dropped),
    ("with no worker connected events time out and are dropped; a worker "
     "that connects later is used", no_worker_then_one),
    ("torpord stops cleanly while an event waits for a stalled worker",
     shutdown_with_an_event_in_flight),
    ("bad [class.backend] values fail --check-config with FILE:LINE",
     bad_settings_refused),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
