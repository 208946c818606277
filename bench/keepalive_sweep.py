#!/usr/bin/python3
"""keepalive_sweep.py: what the keepalive sweep costs on idle connections.

Starts torpord twice with N idle WebSocket connections to one echo room
(so that one room, not N, hibernates meanwhile), once with
keepalive off (ping_interval_ms = 0: no sweep runs) and once with a sweep
pass every 100 ms (pong_timeout_ms = 400, a quarter of which is the pass
period, and a ping interval of a day, so no ping falls due and only the
walk itself is measured).  For each it reads torpord's CPU time (user +
system, from /proc/PID/stat) over S seconds of idling and prints a
Markdown table with the difference per connection and pass.

Environment: TORPORD, TORPOR_PLUGIN_PATH (where websocket.so and echo.so
are).  Options: --conns N (default 8000, at most 50000; the process needs
N descriptors, and so does torpord), --seconds S (default 10, at most 60).
Every wait is bounded; torpord is stopped with SIGTERM by pid, then killed
if it does not exit within 20 s.  Scratch files live in a temporary folder
removed at exit.
"""

import argparse
import base64
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CONFIG = """\
[core]
log_level = notice
plugins = websocket, echo

[transport.websocket]
listen = 127.0.0.1:0
handshake_timeout_ms = 60000
ping_interval_ms = %s
pong_timeout_ms = 400

[route.echo]
class = echo
"""

PASS_MS = 100


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def start(tmp, ping_interval_ms):
    conf = os.path.join(tmp, "torpor-%s.conf" % ping_interval_ms)
    with open(conf, "w") as f:
        f.write(CONFIG % ping_interval_ms)
    log = open(os.path.join(tmp, "torpord-%s.log" % ping_interval_ms), "w+")
    proc = subprocess.Popen([os.environ["TORPORD"], "--config", conf,
                             "--plugin-path",
                             os.environ["TORPOR_PLUGIN_PATH"]],
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log, cwd=tmp)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r'listening on "127\.0\.0\.1:(\d+)"', log.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    log.seek(0)
    sys.exit("keepalive_sweep.py: torpord did not start:\n" + log.read())


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def connect_all(port, n):
    """Open n upgraded connections, a few hundred handshakes at a time."""
    sel = selectors.DefaultSelector()
    socks = []
    pending = {}
    deadline = time.monotonic() + 120
    while len(socks) < n or pending:
        while len(socks) < n and len(pending) < 256:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(("GET /echo/bench HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n"
                       % key).encode())
            s.setblocking(False)
            socks.append(s)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        if time.monotonic() > deadline:
            sys.exit("keepalive_sweep.py: handshakes not done in 120 s")
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            data = s.recv(4096)
            if not data:
                sys.exit("keepalive_sweep.py: a connection closed early")
            pending[s] += data
            if b"\r\n\r\n" in pending[s]:
                if not pending[s].startswith(b"HTTP/1.1 101"):
                    sys.exit("keepalive_sweep.py: upgrade refused: %r"
                             % pending[s][:40])
                del pending[s]
                sel.unregister(s)
    sel.close()
    return socks


def measure(tmp, ping_interval_ms, n, seconds):
    proc, port = start(tmp, ping_interval_ms)
    socks = []
    try:
        socks = connect_all(port, n)
        time.sleep(1)
        before = cpu_s(proc.pid)
        time.sleep(seconds)
        return (cpu_s(proc.pid) - before) / seconds
    finally:
        for s in socks:
            s.close()
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=8000)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    n = max(1, min(args.conns, 50000))
    seconds = max(1, min(args.seconds, 60))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit("keepalive_sweep.py: %d descriptors needed, hard limit "
                     "%d" % (want, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    tmp = tempfile.mkdtemp(prefix="torpor-sweep.")
    try:
        off = measure(tmp, "0", n, seconds)
        on = measure(tmp, "86400000", n, seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passes = 1000 / PASS_MS
    per = (on - off) / (n * passes) * 1e9
    print("| keepalive | idle connections | torpord CPU, ms per s |")
    print("| --- | --- | --- |")
    print("| off | %d | %.2f |" % (n, off * 1000))
    print("| sweep every %d ms | %d | %.2f |" % (PASS_MS, n, on * 1000))
    print()
    print("Sweep: %.0f ns per connection and pass (%d s of idling each)."
          % (per, seconds))


if __name__ == "__main__":
    main()
