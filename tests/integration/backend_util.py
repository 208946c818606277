"""Shared parts of the backend class's tests.

- Backend runs a torpord whose [class.backend] listens for workers on a
  Unix socket in the daemon's own folder (so the address survives a
  restart), with route /mod/ on the backend class.
- It starts example workers, C (examples/workers/c, built by make) or
  Node.js (examples/workers/node, after `npm ci`), each logging to a file,
  and stops or kills them by pid.
- moderator_conversation is the scenario every moderator worker must
  pass: relaying, refusing and warning, closing at the third warning,
  warnings kept in storage.
"""

import asyncio
import os
import re
import signal
import subprocess
import time

import harness
from harness import check, check_eq, connect, recv, TestFailure

CONFIG = """\
[core]
log_level = info
plugins = websocket, backend
alarm_poll_ms = 50
loops = 2
shutdown_timeout_ms = 2000

[transport.websocket]
listen = 127.0.0.1:0

[class.backend]
workers = ipc://%(sock)s
timeout_ms = %(timeout_ms)d
retries = %(retries)d
hibernate_after_ms = %(hibernate_ms)d

[route.mod]
class = backend
"""

CONNECTED_RE = re.compile(r"worker (?:dis)?connected from \"[^\"]*\": "
                          r"(\d+) connected")


class Backend:
    """A torpord with the backend class, and the workers it serves."""

    def __init__(self, timeout_ms=5000, retries=2, hibernate_ms=10000):
        self.daemon = harness.Daemon("")
        self.sock = os.path.join(self.daemon.dir, "workers.sock")
        self.url = "ipc://" + self.sock
        self.daemon.write_config(CONFIG % {
            "sock": self.sock, "timeout_ms": timeout_ms, "retries": retries,
            "hibernate_ms": hibernate_ms})
        self.workers = {}

    def start(self):
        self.daemon.start()
        return self

    def start_worker(self, name, kind="c", args=()):
        """Start a worker; returns its Popen.  Its stderr goes to
        NAME.log in the daemon's folder."""
        if kind == "c":
            argv = [os.path.join(harness.env_path("TOP_BUILDDIR"),
                                 "examples/workers/c/torpor-moderator")]
        else:
            script = os.path.join(harness.env_path("TOP_SRCDIR"),
                                  "examples/workers/node/moderator.mjs")
            modules = os.path.join(os.path.dirname(script), "node_modules")
            check(os.path.isdir(modules),
                  "%s is missing: run `npm ci --prefix "
                  "examples/workers/node` in the source tree" % modules)
            argv = [harness.env_path("NODE"), script]
        argv += ["--url", self.url, "--name", name] + list(args)
        log = open(self.log_path(name), "wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
        log.close()
        harness._live.add(proc)     # killed at exit if a test fails
        self.workers[name] = proc
        return proc

    def log_path(self, name):
        return os.path.join(self.daemon.dir, name + ".log")

    def worker_log(self, name):
        try:
            with open(self.log_path(name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    async def wait_connected(self, n, timeout=harness.START_TIMEOUT_S):
        """Wait until torpord's log says n workers are connected."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            counts = CONNECTED_RE.findall(self.daemon.log())
            if counts and int(counts[-1]) == n:
                return
            await asyncio.sleep(0.05)
        raise TestFailure("torpord did not log %d connected workers within "
                          "%.0f s; log tail:\n%s"
                          % (n, timeout, harness.tail(self.daemon.log())))

    async def wait_log(self, text, where=None, timeout=harness.IO_TIMEOUT_S):
        """Wait until text appears in torpord's log, or worker where's."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            log = self.daemon.log() if where is None else \
                self.worker_log(where)
            if text in log:
                return log
            await asyncio.sleep(0.05)
        raise TestFailure("%r did not appear in %s's log within %.0f s"
                          % (text, where or "torpord", timeout))

    def kill_worker(self, name, signum=signal.SIGKILL):
        proc = self.workers.pop(name)
        if proc.poll() is None:
            os.kill(proc.pid, signum)
        proc.wait(timeout=harness.STOP_TIMEOUT_S)
        harness._live.discard(proc)
        return proc.returncode

    def stop_workers(self):
        """Stop every worker with SIGTERM; each must exit 0 with no
        sanitizer report."""
        for name in list(self.workers):
            rc = self.kill_worker(name, signal.SIGTERM)
            log = self.worker_log(name)
            bad = harness.sanitizer_lines(log)
            check(not bad, "worker %s has sanitizer reports:\n%s"
                  % (name, "\n".join(bad)))
            check_eq(rc, 0, "exit code of worker %s; log tail:\n%s"
                     % (name, harness.tail(log)))

    def stop(self):
        """Stop torpord, then the workers; returns torpord's log.  torpord
        first: its shutdown waits for the events still with the workers,
        the closes of the last clients among them."""
        try:
            log = harness.stop_clean(self.daemon)
        finally:
            self.stop_workers()
        return log


async def join(b, room, user):
    """Connect as user and read the welcome."""
    ws = await connect(b.daemon, "%s?tag=%s" % (room, user))
    check_eq(await recv(ws), "welcome " + user, "welcome of " + user)
    return ws


async def moderator_conversation(b):
    """Relay, refuse and warn, close at the third warning, keep the count.
    b has a worker connected."""
    room = "/mod/" + harness.unique()
    alice = await join(b, room, "alice")
    bob = await join(b, room, "bob")
    check_eq(await recv(alice), "bob joined", "alice hears bob join")

    await alice.send("hello bob")
    check_eq(await recv(bob), "alice: hello bob", "relayed to bob")
    await bob.send("hi alice")
    check_eq(await recv(alice), "bob: hi alice", "relayed to alice")
    # As large as torpord takes (1 MiB), with a NUL in it: relayed whole.
    big = "\u00e9t\u00e9 " * 174762 + "\x00end"
    check_eq(len(big.encode()), harness.MAX_MESSAGE_BYTES, "test message")
    await alice.send(big)
    check_eq(await recv(bob), "alice: " + big, "a large message, whole")

    await bob.send("what the heck")
    check_eq(await recv(bob), "warning 1 of 3: message refused",
             "the refused message is warned")
    check_eq(await harness.ask(bob, "!warnings"), "warnings 1",
             "the warning is counted in storage")
    await bob.send("DARN it")
    check_eq(await recv(bob), "warning 2 of 3: message refused",
             "a refused word in capitals is refused too")
    await alice.send("still here")
    check_eq(await recv(bob), "alice: still here",
             "alice heard none of bob's refused messages")
    await bob.send("heck again")
    check_eq(await recv(bob), "warning 3 of 3: message refused",
             "the third warning is told before the close")
    await harness.expect_server_close(bob, 1008)
    check_eq(await recv(alice), "bob left", "alice hears bob leave")

    bob = await join(b, room, "bob")
    check_eq(await recv(alice), "bob joined", "bob is back")
    check_eq(await harness.ask(bob, "!warnings"), "warnings 3",
             "the count outlives the connection")
    check_eq(await harness.ask(alice, "!warnings"), "warnings 0",
             "alice has none")
    await harness.close_all(alice, bob)
