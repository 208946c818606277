#!/usr/bin/python3
"""deflate_memory.py: torpord's resident memory per idle connection, with
permessage-deflate off, on (the default: no context takeover) and on with
context takeover.  Prints a Markdown table.

Not a test: `make bench-deflate-memory` runs it with the environment below.
Figures mean something only for a build without sanitizers.

    TORPORD             core/torpord of the build
    TORPOR_PLUGIN_PATH  where websocket.so and relay.so are
    BENCH_CONNS         connections per run, 2000 by default, at most 10000
    BENCH_ROOMS         relay rooms they are spread over, 1 by default
    BENCH_TMPDIR        parent of the scratch folder, /tmp by default

Each run starts its own torpord on 127.0.0.1 (a free port), warms it up
(a few connections exchange compressed messages, so every loop's shared
zlib streams exist and are counted as the daemon's, not the
connections'), and reads VmRSS from /proc.  Then it opens the
connections, each offering what Chromium offers ("permessage-deflate;
client_max_window_bits") unless compression is off; the first member of
each room sends one 600-byte text, compressed where agreed, which reaches
every other member, so every connection has compressed or decompressed a
message.  The rooms are left to hibernate (hibernate_after_ms = 200, idle
for 1.5 s) and VmRSS is read again; the difference over the count is the
cost of one idle connection, both its record in torpord and its kernel
socket buffers are outside VmRSS.  torpord's closing counters must show a
hibernation per room.

Every wait is bounded; only the torpord started here is ended, by pid.
"""

import base64
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HIBERNATE_MS = 200
IDLE_S = 1.5
IO_TIMEOUT_S = 20.0
OFFER = "permessage-deflate; client_max_window_bits"
TAIL = b"\x00\x00\xff\xff"

CONFIG = """\
[core]
log_level = notice
plugins = websocket, relay
shutdown_timeout_ms = 5000

[transport.websocket]
listen = 127.0.0.1:0
%s

[route.relay]
class = relay

[class.relay]
hibernate_after_ms = %d
"""

MODES = [
    ("off", "compression = off"),
    ("on (default: no context takeover)", "compression = on"),
    ("on, context takeover, 15-bit windows",
     "compression = on\ncompression_context_takeover = yes"),
    ("on, context takeover, 10-bit windows",
     "compression = on\ncompression_context_takeover = yes\n"
     "compression_max_window_bits = 10"),
]


def env_int(name, default, lo, hi):
    v = int(os.environ.get(name, default))
    if not lo <= v <= hi:
        sys.exit("deflate_memory.py: %s must be from %d to %d" % (name, lo, hi))
    return v


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def frame(opcode, payload, rsv=0):
    """A masked client frame."""
    key = os.urandom(4)
    n = len(payload)
    b0 = 0x80 | (rsv << 4) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    else:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


class Client:
    def __init__(self, port, path, offer):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=IO_TIMEOUT_S)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        extra = ("Sec-WebSocket-Extensions: %s\r\n" % offer) if offer else ""
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n%s\r\n"
                           % (path, key, extra)).encode())
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("handshake refused: %r" % head[:80])
        self.deflate = b"permessage-deflate" in head.lower()

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        self.buf += chunk

    def send_text(self, text):
        data = text.encode()
        if self.deflate:
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            comp = co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)
            self.sock.sendall(frame(0x1, comp[:-4], rsv=4))
        else:
            self.sock.sendall(frame(0x1, data))

    def recv_text(self):
        while len(self.buf) < 2:
            self._more()
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._more()
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        while len(self.buf) < off + n:
            self._more()
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        if b0 & 0x40:
            payload = zlib.decompressobj(-15).decompress(payload + TAIL)
        return payload.decode()

    def close(self):
        self.sock.close()


def start(dirpath, config):
    with open(os.path.join(dirpath, "torpor.conf"), "w") as f:
        f.write(config)
    log = open(os.path.join(dirpath, "torpord.log"), "wb")
    proc = subprocess.Popen([os.environ["TORPORD"], "--config", "torpor.conf",
                             "--plugin-path",
                             os.environ["TORPOR_PLUGIN_PATH"]],
                            cwd=dirpath, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = open(os.path.join(dirpath, "torpord.log"), errors="replace").read()
        m = re.search(r'listening on "127\.0\.0\.1:(\d+)"', text)
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError("torpord exited: %s" % text[-300:])
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("torpord did not listen within 20 s")


def stop(proc, dirpath):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    text = open(os.path.join(dirpath, "torpord.log"), errors="replace").read()
    m = re.findall(r"stopped: (\d+) wakeups, (\d+) hibernations", text)
    return int(m[-1][1]) if m else None


def message(i):
    return ('{"from":%d,"text":"%s"}' % (i, "the quick brown fox jumps " * 22))


def room_round(port, room, members, offer):
    """Opens members clients in room; the first one sends, the others
    read.  Returns the clients, left open."""
    clients = [Client(port, "/relay/%s" % room, offer) for _ in range(members)]
    text = message(0)
    clients[0].send_text(text)
    for c in clients[1:]:
        got = c.recv_text()
        if got != text:
            raise RuntimeError("wrong message at a member")
    return clients


def run(label, keys, conns, rooms, tmp):
    dirpath = tempfile.mkdtemp(prefix="run-", dir=tmp)
    proc, port = start(dirpath, CONFIG % (keys, HIBERNATE_MS))
    offer = None if keys == "compression = off" else OFFER
    clients = []
    try:
        # Warm-up: every loop gets its shared streams, malloc its arenas.
        warm = []
        for r in range(8):
            warm += room_round(port, "warm-%d" % r, 3, offer)
        for c in warm:
            c.close()
        time.sleep(IDLE_S)
        before = rss_kib(proc.pid)
        per_room = conns // rooms
        for r in range(rooms):
            clients += room_round(port, "room-%d" % r, per_room, offer)
        time.sleep(IDLE_S)
        after = rss_kib(proc.pid)
        agreed = sum(c.deflate for c in clients)
    finally:
        for c in clients:
            c.close()
        hib = stop(proc, dirpath)
        shutil.rmtree(dirpath, ignore_errors=True)
    if hib is None or hib < rooms:
        raise RuntimeError("%s: torpord counted %s hibernations for %d rooms"
                           % (label, hib, rooms))
    n = len(clients)
    return ("| %s | %d | %d | %d | %d | %.0f |"
            % (label, n, agreed, before, after, (after - before) * 1024.0 / n))


def main():
    conns = env_int("BENCH_CONNS", 2000, 10, 10000)
    rooms = env_int("BENCH_ROOMS", 1, 1, conns // 2)
    for name in ("TORPORD", "TORPOR_PLUGIN_PATH"):
        if not os.environ.get(name):
            sys.exit("deflate_memory.py: set %s" % name)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = conns + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit("deflate_memory.py: need %d descriptors, hard limit %d"
                     % (want, hard))
        # torpord inherits it.
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    tmp = tempfile.mkdtemp(prefix="torpor-deflate-mem.",
                           dir=os.environ.get("BENCH_TMPDIR", "/tmp"))
    failed = False
    try:
        print("Machine: %d cores, kernel %s." % (os.cpu_count(), os.uname().release))
        print("Each run: %d connections in %d relay room(s), one 600-byte "
              "text from the first member of each room to all others, then "
              "idle until hibernated." % (conns, rooms))
        print()
        print("| compression | connections | deflate agreed | RSS before KiB "
              "| RSS after KiB | bytes per idle connection |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, keys in MODES:
            try:
                print(run(label, keys, conns, rooms, tmp), flush=True)
            except Exception as exc:  # one failed run still prints the rest
                failed = True
                print("| %s | failed: %s |||||" % (label, exc), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
