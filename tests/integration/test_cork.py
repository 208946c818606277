#!/usr/bin/python3
"""Corked output: what one pass of a loop sends to a connection leaves in
one system call, in order, over ws and over wss (one TLS record), and a
connection that dies while frames wait for it takes only its own frames
with it.

The system calls are counted with strace, attached to the running torpord
(a real tracer on the real daemon: nothing is mocked).
"""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, make_frame, OP_BINARY, RawWS  # noqa: E402
import tls_util  # noqa: E402

CERTS = tls_util.Certs()
CERT, KEY = CERTS.server("server", 0x1001, "torpor test server")

CONFIG = """\
[core]
log_level = notice
plugins = websocket, relay
loops = 2

[transport.websocket]
listen = 127.0.0.1:0
listen_tls = 127.0.0.1:0
tls_certificate = %s
tls_private_key = %s
ping_interval_ms = 0

[route.relay]
class = relay
""" % (CERT, KEY)

SUBSCRIBERS = 4
BURST = 24
BOUND_S = 30
# Plain connections write with send() and sendmsg(), TLS ones with write();
# the loops also wake each other with write(), 8 bytes on an eventfd, which
# are left out.
SEND_CALLS = re.compile(r"\b(sendmsg|sendto|sendmmsg|write)\(")
EVENTFD_WRITE = re.compile(r"\bwrite\(\d+, \"\\1\\0\\0\\0\\0\\0\\0\\0\", 8\)")


def payload(room_seq, i):
    """Message i of a burst: its numbers, then padding to 64 bytes."""
    return struct.pack("!II", room_seq, i) + bytes(56)


def read_messages(sub, n, what):
    """n binary messages from raw client sub, as payloads, in order."""
    got = []
    for k in range(n):
        fin, rsv, op, data = sub.recv_frame()
        check(fin and op == OP_BINARY, "%s: frame %d is fin=%s opcode=%d"
              % (what, k, fin, op))
        got.append(data)
    return got


class Tracer:
    """strace attached to every thread of a running process, writing its
    socket sends to a file; stopped by its own pid."""

    def __init__(self, pid):
        fd, self.path = tempfile.mkstemp(prefix="strace-", dir=harness.SCRATCH)
        os.close(fd)
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-e",
             "trace=sendmsg,sendto,sendmmsg,write",
             "-o", self.path, "-p", str(pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        # Attached once every thread of pid names strace as its tracer.
        tasks = "/proc/%d/task" % pid
        deadline = time.monotonic() + BOUND_S
        while True:
            if self.proc.poll() is not None:
                raise harness.TestFailure(
                    "strace exited with %d: %s" % (self.proc.returncode,
                    self.proc.stderr.read().decode(errors="replace")))
            tracers = []
            for tid in os.listdir(tasks):
                with open("%s/%s/status" % (tasks, tid)) as f:
                    line = [x for x in f if x.startswith("TracerPid:")][0]
                tracers.append(int(line.split()[1]))
            if tracers and all(t == self.proc.pid for t in tracers):
                return
            check(time.monotonic() < deadline,
                  "strace did not attach within %d s" % BOUND_S)
            time.sleep(0.05)

    def stop(self):
        """Detach; return the traced send calls, one line each."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=BOUND_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        with open(self.path) as f:
            return [line for line in f if SEND_CALLS.search(line)
                    and not EVENTFD_WRITE.search(line)]


def _burst_leaves_in_one_call_per_subscriber(tls):
    async def run(d):
        await burst_run(d, tls)
    return run


async def burst_run(d, tls):
    room = "/relay/" + harness.unique()
    if tls:
        port = tls_util.tls_port(d)
        ctx = CERTS.client_context()
        subs = [tls_util.TlsRawWS(port, room, ctx, timeout=BOUND_S)
                for _ in range(SUBSCRIBERS)]
        pub = tls_util.TlsRawWS(port, room, ctx, timeout=BOUND_S)
    else:
        subs = [RawWS(d.port, room, timeout=BOUND_S)
                for _ in range(SUBSCRIBERS)]
        pub = RawWS(d.port, room, timeout=BOUND_S)
    tracer = None
    try:
        msgs = [payload(1, i) for i in range(BURST)]
        tracer = Tracer(d.proc.pid)
        # One write (over TLS, one record): one read on the server, one
        # pass of its loop.
        pub.send_raw(b"".join(make_frame(OP_BINARY, m) for m in msgs))
        for j, sub in enumerate(subs):
            check(read_messages(sub, BURST, "subscriber %d" % j) == msgs,
                  "subscriber %d got the burst out of order or changed" % j)
        calls = tracer.stop()
        tracer = None
    finally:
        if tracer is not None:
            tracer.stop()
        for c in subs + [pub]:
            c.close()
    # Written frame by frame, the burst would take BURST calls per
    # subscriber; corked, one each (over TLS: one record, one write), two
    # should a read split the burst.
    check(len(calls) <= 2 * SUBSCRIBERS,
          "%d send calls for %d frames to %d subscribers (want at most %d):"
          "\n%s" % (len(calls), BURST * SUBSCRIBERS, SUBSCRIBERS,
                    2 * SUBSCRIBERS, "".join(calls[:20])))
    check(len(calls) >= SUBSCRIBERS,
          "%d send calls traced, fewer than the %d subscribers: is strace "
          "tracing the daemon's threads?" % (len(calls), SUBSCRIBERS))


def reset(sock):
    """Close sock with a TCP reset, as a crashed client's kernel would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


async def reset_subscriber_loses_only_its_own(d):
    """While bursts stream into a room, one subscriber resets its
    connection: frames held for it at the end of some pass meet a dead
    socket.  The others get every message in order, and the daemon runs
    on (its clean exit, with no sanitizer report, is checked at stop)."""
    room = "/relay/" + harness.unique()
    keep = [RawWS(d.port, room, timeout=BOUND_S) for _ in range(3)]
    doomed = RawWS(d.port, room, timeout=BOUND_S)
    pub = RawWS(d.port, room, timeout=BOUND_S)
    bursts = 40
    try:
        sent = []
        for b in range(bursts):
            msgs = [payload(b, i) for i in range(8)]
            sent += msgs
            pub.send_raw(b"".join(make_frame(OP_BINARY, m) for m in msgs))
            if b == bursts // 2:
                reset(doomed.sock)
        for j, sub in enumerate(keep):
            got = read_messages(sub, len(sent), "subscriber %d" % j)
            check(got == sent, "subscriber %d: %d messages differ or are "
                  "out of order" % (j, sum(a != b for a, b in zip(got, sent))))
        # The room still relays, to the survivors only.
        pub.send_raw(make_frame(OP_BINARY, b"after"))
        for j, sub in enumerate(keep):
            check_eq(read_messages(sub, 1, "subscriber %d" % j), [b"after"],
                     "message after the reset at subscriber %d" % j)
    finally:
        for c in keep + [pub]:
            c.close()


TESTS = [
    ("a burst that one read brings goes to each subscriber in order, "
     "in one or two send calls, not one per frame",
     _burst_leaves_in_one_call_per_subscriber(False)),
    ("over wss, such a burst goes to each subscriber in one or two TLS "
     "records and writes, not one per frame",
     _burst_leaves_in_one_call_per_subscriber(True)),
    ("a subscriber that resets while bursts stream takes only its own "
     "frames with it; the others get every message in order",
     reset_subscriber_loses_only_its_own),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, daemon_config=CONFIG)
