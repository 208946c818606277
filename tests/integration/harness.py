"""Shared parts of torpor's integration tests.

Run with Debian's /usr/bin/python3, whose python3-websockets (10.4) the tests
use.  Every test drives a real torpord over loopback:

- Daemon writes a config (always `listen = 127.0.0.1:0`), starts torpord
  from $TORPORD with `--config FILE --plugin-path $TORPOR_PLUGIN_PATH`,
  sends its stderr to a file and reads the port it logs.
- RawWS and http_exchange speak the wire protocol by hand, for the cases a
  well-behaved client library refuses to produce (unmasked frames, invalid
  UTF-8, reserved opcodes) and for exact status lines and close codes.
- run_suite prints TAP (`1..N`, `ok K - name`, `# diagnostics`) and exits
  non-zero if any test failed.

Every wait is bounded; the only processes ended are those started here, by
pid.
"""

import asyncio
import atexit
import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

try:
    import websockets
    import websockets.exceptions
except ImportError as exc:  # A missing prerequisite fails, never skips.
    print("1..1")
    print("not ok 1 - python websockets module is importable")
    print("# %s: install Debian's python3-websockets and run with "
          "/usr/bin/python3 (this is %s)" % (exc, sys.executable))
    sys.exit(1)

# A loaded 2-core CI machine under ASan is slow: these only stop hangs.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
TEST_TIMEOUT_S = 60.0
IO_TIMEOUT_S = 10.0

MAX_MESSAGE_BYTES = 1048576
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

LISTEN_RE = re.compile(r'listening on "127\.0\.0\.1:(\d+)"')
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:")

DEFAULT_CONFIG = """\
[core]
log_level = notice
plugins = websocket, relay, echo
shutdown_timeout_ms = 5000

[transport.websocket]
listen = 127.0.0.1:0
max_message_bytes = 1048576

[route.relay]
class = relay

[route.echo]
class = echo
"""

# Daemons still running at exit; killed by pid, never by name.
_live = set()

# Configs and logs of this process; removed at exit.
SCRATCH = tempfile.mkdtemp(prefix="torpor-it-")


def _kill_leftovers():
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _at_exit():
    _kill_leftovers()
    shutil.rmtree(SCRATCH, ignore_errors=True)


atexit.register(_at_exit)


class TestFailure(AssertionError):
    """A check failed; the message says what was expected and seen."""


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def check_eq(seen, want, what):
    if seen != want:
        raise TestFailure("%s: expected %s, got %s"
                          % (what, _short(want), _short(seen)))


def _short(value, limit=120):
    text = repr(value)
    if len(text) > limit:
        text = "%s... (%d chars, len %s)" % (
            text[:limit], len(text),
            len(value) if hasattr(value, "__len__") else "?")
    return text


def env_path(name):
    """Return an environment variable the test cannot run without."""
    value = os.environ.get(name)
    if not value:
        raise TestFailure("environment variable %s is not set: run the "
                          "tests with `make check`, or export it" % name)
    return value


def unique(prefix="room"):
    """A room name no other test uses."""
    return "%s-%s-%d" % (prefix, os.urandom(4).hex(), os.getpid())


def sanitizer_lines(log):
    return [l for l in log.splitlines()
            if any(m in l for m in SANITIZER_MARKERS)]


def log_lines_at(log, level):
    """Lines of a torpord log at one level ("DEBUG", "NOTICE", ...)."""
    pat = re.compile(r"^\S+Z %s " % re.escape(level))
    return [l for l in log.splitlines() if pat.match(l)]


class Daemon:
    """One torpord process on a temporary config."""

    def __init__(self, config=DEFAULT_CONFIG, plugin_path=None,
                 extra_args=()):
        self.torpord = env_path("TORPORD")
        self.plugin_path = (plugin_path if plugin_path is not None
                            else env_path("TORPOR_PLUGIN_PATH"))
        self.dir = tempfile.mkdtemp(prefix="daemon-", dir=SCRATCH)
        self.config_path = os.path.join(self.dir, "torpor.conf")
        self.log_path = os.path.join(self.dir, "torpord.log")
        self.write_config(config)
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def argv(self):
        return [self.torpord, "--config", self.config_path,
                "--plugin-path", self.plugin_path] + self.extra_args

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        """Start torpord and return the port it logs, or raise."""
        self._log_file = open(self.log_path, "wb")
        # The daemon's own folder is its working directory, so the file
        # store's default ./torpor-data is private to this daemon.
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_file,
                                     stderr=self._log_file, cwd=self.dir)
        _live.add(self.proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            m = LISTEN_RE.search(self.log())
            if m:
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                raise TestFailure("torpord exited with %d before listening;"
                                  " log:\n%s"
                                  % (self.proc.returncode, self.log()))
            time.sleep(0.05)
        raise TestFailure("torpord logged no 'listening on \"127.0.0.1:PORT\"'"
                          " line within %.0f s; log:\n%s"
                          % (START_TIMEOUT_S, self.log()))

    def send_signal(self, signum):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def wait(self, timeout=STOP_TIMEOUT_S):
        """Wait for exit; returns the exit code, or None on time-out."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, signum=signal.SIGTERM):
        """Send signum, wait bounded; return (exit code or None, log)."""
        if self.proc is None:
            return None, self.log()
        self.send_signal(signum)
        rc = self.wait()
        if rc is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        _live.discard(self.proc)
        self._log_file.close()
        return rc, self.log()

    def uri(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)


def check_clean_exit(rc, log, what="torpord"):
    """Exit code 0 and no sanitizer report in the log."""
    if rc is None:
        raise TestFailure("%s did not exit within %.0f s of the signal "
                          "(killed); log tail:\n%s"
                          % (what, STOP_TIMEOUT_S, tail(log)))
    bad = sanitizer_lines(log)
    check(not bad, "%s log has sanitizer reports:\n%s\nlog tail:\n%s"
          % (what, "\n".join(bad), tail(log)))
    check(rc == 0, "%s exited with %d, expected 0; log tail:\n%s"
          % (what, rc, tail(log)))


def stop_clean(d):
    """Stop daemon d with SIGTERM; check exit code 0 and no sanitizer
    report.  Returns the log."""
    rc, log = d.stop()
    check_eq(rc, 0, "torpord exit code; log tail:\n%s" % tail(log))
    check_clean_exit(rc, log)
    return log


def fixture_daemon(config):
    """A started torpord that also finds the test fixture plugins (the
    probe class)."""
    path = "%s:%s" % (env_path("TORPOR_PLUGIN_PATH"),
                      env_path("TORPOR_FIXTURE_PATH"))
    d = Daemon(config, plugin_path=path)
    d.start()
    return d


def tail(log, n=40):
    return "\n".join(log.splitlines()[-n:])


def run_cli(args, timeout=STOP_TIMEOUT_S):
    """Run torpord with args; returns (exit code, stdout, stderr)."""
    proc = subprocess.Popen([env_path("TORPORD")] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            cwd=tempfile.mkdtemp(prefix="cli-", dir=SCRATCH))
    _live.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        _live.discard(proc)
        raise TestFailure("torpord %s did not exit within %.0f s (killed); "
                          "stderr:\n%s" % (" ".join(args), timeout,
                                           err.decode(errors="replace")))
    _live.discard(proc)
    return (proc.returncode, out.decode(errors="replace"),
            err.decode(errors="replace"))


# ---- clients ----

async def connect(daemon, path, max_size=MAX_MESSAGE_BYTES * 2):
    """A websockets client on path, compression off so frames are plain."""
    return await asyncio.wait_for(
        websockets.connect(daemon.uri(path), max_size=max_size,
                           compression=None, open_timeout=IO_TIMEOUT_S,
                           close_timeout=IO_TIMEOUT_S, ping_interval=None),
        IO_TIMEOUT_S)


async def recv(ws, timeout=IO_TIMEOUT_S):
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise TestFailure("no message within %.0f s" % timeout) from None


async def expect_nothing(ws, wait_s=0.5):
    """Fail if ws receives a message within wait_s."""
    try:
        msg = await asyncio.wait_for(ws.recv(), wait_s)
    except asyncio.TimeoutError:
        return
    raise TestFailure("expected no message, got %s" % _short(msg))


async def close_code_of(ws, timeout=IO_TIMEOUT_S):
    """Wait for the connection to close; return the code the peer sent."""
    try:
        await asyncio.wait_for(ws.wait_closed(), timeout)
    except asyncio.TimeoutError:
        raise TestFailure("connection still open after %.0f s" % timeout) \
            from None
    return ws.close_code


async def expect_server_close(ws, code, timeout=IO_TIMEOUT_S):
    """Read until the server closes; assert its close code."""
    deadline = time.monotonic() + timeout
    got = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("server did not close within %.0f s (expected "
                              "%d); got messages %s"
                              % (timeout, code, _short(got)))
        try:
            got.append(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            continue
        except websockets.exceptions.ConnectionClosed as exc:
            rcvd = exc.rcvd.code if exc.rcvd is not None else None
            check(rcvd == code,
                  "server close code: expected %d, got %s (%s)"
                  % (code, rcvd, "no close frame" if rcvd is None
                     else "reason %r" % exc.rcvd.reason))
            return exc


async def ask(ws, command):
    """Send command and return the next message."""
    await ws.send(command)
    return await recv(ws)


async def close_all(*clients):
    for ws in clients:
        try:
            await asyncio.wait_for(ws.close(), IO_TIMEOUT_S)
        except Exception:
            pass


# ---- raw wire ----

def make_frame(opcode, payload=b"", fin=True, mask=True, rsv=0,
               length=None):
    """Encode one frame.  rsv is the 3-bit RSV1..3 field; length, when
    given, is written to the header in place of len(payload)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big")
            ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


class RawWS:
    """A WebSocket client written by hand on a blocking socket."""

    def __init__(self, port, path, timeout=IO_TIMEOUT_S, extra=""):
        """extra: more header lines for the request, each ending in
        CRLF; the response's headers are kept in self.headers."""
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (path, port, key, extra))
        self.sock.sendall(req.encode())
        status, headers, _ = self._read_head()
        self.headers = headers
        check_eq(status, 101, "handshake status for %s" % path)
        want = base64.b64encode(
            hashlib.sha1((key + GUID).encode()).digest()).decode()
        check_eq(headers.get("sec-websocket-accept"), want,
                 "Sec-WebSocket-Accept")

    def _fill(self, n):
        deadline = time.monotonic() + self.timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("timed out after %.0f s waiting for data "
                                  "(have %d of %d bytes)"
                                  % (self.timeout, len(self.buf), n))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise EOFError("connection closed with %d of %d bytes"
                               % (len(self.buf), n))
            self.buf += chunk

    def _take(self, n):
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_head(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise TestFailure("no complete HTTP response head")
            try:
                self._fill(len(self.buf) + 1)
            except EOFError:
                raise TestFailure("connection closed before the response "
                                  "head ended: %r" % self.buf) from None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return parse_head(head)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(make_frame(opcode, payload, **kw))

    def recv_frame(self):
        """Return (fin, rsv, opcode, payload) of the next server frame;
        raise EOFError on a closed connection."""
        b0, b1 = self._take(2)
        check(not b1 & 0x80, "server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, self._take(n)

    def expect_close(self):
        """Read frames up to the server's close frame; return (code,
        reason).  A close with no body gives code None."""
        seen = []
        while True:
            try:
                _, _, op, payload = self.recv_frame()
            except EOFError:
                raise TestFailure("connection closed without a close frame"
                                  " (frames before: %s)" % _short(seen)) \
                    from None
            if op == OP_CLOSE:
                if len(payload) == 0:
                    return None, b""
                check(len(payload) >= 2, "close frame with a 1-byte body")
                return struct.unpack("!H", payload[:2])[0], payload[2:]
            seen.append((op, payload[:32]))

    def expect_eof(self):
        """Assert the server closes the TCP connection (bounded)."""
        try:
            self._fill(len(self.buf) + 1)
        except EOFError:
            return
        raise TestFailure("expected the server to close the connection, "
                          "got more bytes: %r" % self.buf[:64])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    check(len(parts) >= 2 and parts[0].startswith("HTTP/1."),
          "bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, lines[0]


def http_exchange(port, request, timeout=IO_TIMEOUT_S):
    """Send raw request bytes; return (status, headers dict, status line,
    body read so far).  Reads the head and the body up to Content-Length
    or EOF, bounded by timeout."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            left = deadline - time.monotonic()
            check(left > 0, "no HTTP response head within %.0f s; got %r"
                  % (timeout, data))
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise TestFailure("connection closed before a complete "
                                  "response head; got %r" % data)
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        status, headers, line = parse_head(head)
        want = int(headers.get("content-length", "0") or 0)
        while len(body) < want and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            body += chunk
        return status, headers, line, body
    finally:
        sock.close()


def upgrade_request(path, port, key=None, version="13", method="GET",
                    extra="", upgrade=True, host=True):
    """A handshake request; pass key="" to leave the key header out."""
    if key is None:
        key = base64.b64encode(os.urandom(16)).decode()
    lines = ["%s %s HTTP/1.1" % (method, path)]
    if host:
        lines.append("Host: 127.0.0.1:%d" % port)
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if key != "":
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


# ---- TAP ----

def _diag(text):
    for line in str(text).splitlines() or [""]:
        print("# " + line)


def run_suite(tests, daemon_config=DEFAULT_CONFIG, start_daemon=True):
    """Run tests, a list of (name, async fn(daemon)), as one TAP stream.

    With start_daemon, one torpord serves every test, and a last test
    checks that it stops on SIGTERM with exit code 0 and no sanitizer
    report.  Each test has its own time limit.  Exits the process, non-zero
    if anything failed.
    """
    plan = len(tests) + (1 if start_daemon else 0)
    print("1..%d" % plan, flush=True)
    failed = 0
    daemon = None
    start_error = None
    if start_daemon:
        try:
            daemon = Daemon(daemon_config)
            daemon.start()
        except Exception as exc:
            start_error = exc

    for k, (name, fn) in enumerate(tests, 1):
        if start_error is not None:
            print("not ok %d - %s" % (k, name))
            _diag("torpord did not start: %s" % start_error)
            failed += 1
            continue
        ok, detail = _run_one(fn, daemon)
        print("%s %d - %s" % ("ok" if ok else "not ok", k, name))
        if not ok:
            failed += 1
            _diag(detail)
            if daemon is not None:
                _diag("torpord log tail:\n" + tail(daemon.log(), 15))
        sys.stdout.flush()

    if start_daemon:
        name = "torpord exits 0 on SIGTERM with no sanitizer report"
        try:
            if start_error is not None:
                raise start_error
            rc, log = daemon.stop()
            check_clean_exit(rc, log)
            print("ok %d - %s" % (plan, name))
        except Exception as exc:
            failed += 1
            print("not ok %d - %s" % (plan, name))
            _diag(exc)
    sys.stdout.flush()
    _kill_leftovers()
    sys.exit(1 if failed else 0)


def _run_one(fn, daemon):
    async def guarded():
        await asyncio.wait_for(fn(daemon), TEST_TIMEOUT_S)

    try:
        asyncio.run(guarded())
        return True, ""
    except asyncio.TimeoutError:
        return False, "test did not finish within %.0f s" % TEST_TIMEOUT_S
    except TestFailure as exc:
        return False, str(exc)
    except Exception:
        return False, traceback.format_exc()
