#!/usr/bin/python3
"""The backend class with the Node.js moderator worker
(examples/workers/node), which speaks nng's REP protocol in plain
JavaScript and reads the messages with protobufjs: the same conversation
as the C worker's, the same storage across hibernation, and its alarms.

Needs `npm ci --prefix examples/workers/node` in the source tree
(packaging/install-deps.sh --test does it); without it the tests fail and
say so.
"""

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
        b.start_worker("n1", kind="node")
        await b.wait_connected(1)
        await moderator_conversation(b)
        check(re.search(r"n1: event \d+ step 1 attempt 0: message of conn",
                        b.worker_log("n1")),
              "the Node.js worker served the events, reads included")
    finally:
        b.stop()


async def storage_and_alarms(_):
    b = Backend(hibernate_ms=200).start()
    room = harness.unique()
    try:
        b.start_worker("n1", kind="node")
        await b.wait_connected(1)
        bob = await join(b, "/mod/" + room, "bob")
        await bob.send("heck")
        check_eq(await recv(bob), "warning 1 of 3: message refused",
                 "warned")
        check_eq(await ask(bob, "!remind 1200 stretch"), "reminder set",
                 "alarm set")
        await b.wait_log('object="backend/%s": object hibernated' % room)
        check_eq(await recv(bob), "reminder: stretch",
                 "the alarm woke the room and reached the worker")
        check_eq(await ask(bob, "!warnings"), "warnings 1",
                 "the count outlived the hibernation")
        await harness.close_all(bob)
    finally:
        b.stop()


async def c_and_node_share_a_room(_):
    b = Backend().start()
    try:
        b.start_worker("c1", kind="c")
        b.start_worker("n1", kind="node")
        await b.wait_connected(2)
        room = "/mod/" + harness.unique()
        bob = await join(b, room, "bob")
        for n in (1, 2, 3):
            await bob.send("darn %d" % n)
            check_eq(await recv(bob), "warning %d of 3: message refused" % n,
                     "warning %d, whichever worker served it" % n)
        await harness.expect_server_close(bob, 1008)
        # nng hands requests to ready workers in turn.
        check("message of conn" in b.worker_log("c1") and
              "message of conn" in b.worker_log("n1"),
              "both workers served events of this room")
    finally:
        b.stop()


TESTS = [
    ("moderator in Node.js: relayed, refused and warned, closed at the "
     "third warning, counted in storage", conversation),
    ("Node.js worker: warnings across hibernation, a reminder alarm",
     storage_and_alarms),
    ("a C and a Node.js worker serve one room's events in turn",
     c_and_node_share_a_room),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, start_daemon=False)
