"""The nng transport's wire protocol, written from docs/nng-protocol.md
alone, for the integration tests and as a second implementation of it.

Protobuf is encoded and decoded by hand here (varints and length-delimited
fields are all the protocol uses), so that these tests do not share
generated code with torpord.  nng's side is nngcat from Debian's
nng-utils: requests go through `nngcat --req --file` and the event stream
through `nngcat --sub --hex`, one line per message; pushes go through a
small SP client of our own (Pusher), which keeps one connection.

Every wait is bounded; subscribers started here are killed by pid.
"""

import hashlib
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import time

from harness import SCRATCH, TestFailure, IO_TIMEOUT_S

PROTOCOL_VERSION = 1

TEXT, BINARY = 1, 2

# Reply.status
STATUS = {
    0: "OK", 1: "BAD_REQUEST", 2: "UNSUPPORTED_VERSION",
    3: "UNKNOWN_OPERATION", 4: "NOT_PERMITTED", 5: "NOT_FOUND",
    6: "OVERLOADED", 7: "UNAVAILABLE", 8: "HANDLER_FAILED",
    9: "COMMIT_FAILED", 10: "REFUSED", 11: "TOO_LARGE", 12: "INTERNAL",
}

# Request.operation field numbers
OP_PUBLISH, OP_DELIVER, OP_LIST_CONNECTIONS = 10, 11, 12
OP_STORAGE_GET, OP_STORAGE_LIST = 13, 14


def nngcat_path():
    path = shutil.which("nngcat")
    if path is None:
        raise TestFailure("nngcat not found: install Debian's nng-utils "
                          "(packaging/install-deps.sh --test)")
    return path


# ---- encoding ----

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return varint(field << 3 | 2) + varint(len(data)) + data


def room(name=None, route=None, class_name=None, id=None):
    out = b""
    if route is not None:
        out += f_bytes(1, route)
    if class_name is not None:
        out += f_bytes(2, class_name)
    if name is not None:
        out += f_bytes(3, name)
    if id is not None:
        out += f_bytes(4, id)
    return out


def message(data, kind=None):
    if kind is None:
        kind = TEXT if isinstance(data, str) else BINARY
    if isinstance(data, str):
        data = data.encode("utf-8")
    return f_varint(1, kind) + f_bytes(2, data)


def request(op_field, op_body, version=PROTOCOL_VERSION):
    out = b""
    if version:
        out += f_varint(1, version)
    return out + f_bytes(op_field, op_body)


def publish(room_bytes, msg_bytes, **kw):
    return request(OP_PUBLISH, f_bytes(1, room_bytes) + f_bytes(2, msg_bytes),
                   **kw)


def deliver(room_bytes, msg_bytes, tag=None, except_conn=0):
    body = f_bytes(1, room_bytes) + f_bytes(2, msg_bytes)
    if tag is not None:
        body += f_bytes(3, tag)
    if except_conn:
        body += f_varint(4, except_conn)
    return request(OP_DELIVER, body)


def list_connections(room_bytes, tag=None):
    body = f_bytes(1, room_bytes)
    if tag is not None:
        body += f_bytes(2, tag)
    return request(OP_LIST_CONNECTIONS, body)


def storage_get(room_bytes, keys):
    body = f_bytes(1, room_bytes)
    for k in keys:
        body += f_bytes(2, k)
    return request(OP_STORAGE_GET, body)


def storage_list(room_bytes, prefix=b"", start=b"", end=b"", reverse=False,
                 limit=0):
    body = f_bytes(1, room_bytes)
    if prefix:
        body += f_bytes(2, prefix)
    if start:
        body += f_bytes(3, start)
    if end:
        body += f_bytes(4, end)
    if reverse:
        body += f_varint(5, 1)
    if limit:
        body += f_varint(6, limit)
    return request(OP_STORAGE_LIST, body)


def object_id(class_name, name):
    """The 128-bit id of a named room: SHA-256 over the class name, a NUL
    and the name, first 16 bytes, top bit cleared."""
    if isinstance(name, str):
        name = name.encode("utf-8")
    d = bytearray(hashlib.sha256(class_name.encode() + b"\0" + name)
                  .digest()[:16])
    d[0] &= 0x7F
    return bytes(d)


def topic(class_name, name):
    """The event stream topic of one room, as bytes."""
    return pct(class_name.encode()) + b"/" + pct(
        name.encode() if isinstance(name, str) else name) + b":"


def pct(data):
    keep = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            b"0123456789-._~")
    return b"".join(bytes([c]) if c in keep else b"%%%02X" % c
                    for c in data)


# ---- decoding ----

def decode(data):
    """A message as {field: [values]}: ints for varints, bytes for
    length-delimited fields (decode nested ones again)."""
    fields = {}
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 2:
            n, i = _read_varint(data, i)
            if i + n > len(data):
                raise TestFailure("truncated field %d in %r" % (field, data))
            value, i = data[i:i + n], i + n
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise TestFailure("wire type %d in %r" % (wire, data))
        fields.setdefault(field, []).append(value)
    return fields


def _read_varint(data, i):
    n = shift = 0
    while True:
        if i >= len(data):
            raise TestFailure("truncated varint in %r" % data)
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def one(fields, field, default=None):
    values = fields.get(field)
    return values[-1] if values else default


class Reply:
    """A decoded Reply: status name, message text, version, and the raw
    fields of its result."""

    def __init__(self, data):
        f = decode(data)
        self.raw = data
        self.status = STATUS.get(one(f, 1, 0), "status %s" % one(f, 1, 0))
        self.message = one(f, 2, b"").decode("utf-8")
        self.version = one(f, 3, 0)
        self.fields = f

    def result(self, field):
        body = one(self.fields, field)
        return decode(body) if body is not None else {}

    def __repr__(self):
        return "Reply(%s, %r)" % (self.status, self.message)

    # PublishResult (field 10)
    def replies(self):
        r = self.result(10)
        return [_message_value(decode(m)) for m in r.get(1, [])]

    def closed(self):
        r = self.result(10)
        return (bool(one(r, 3, 0)), one(r, 4, 0), one(r, 5, b""))

    # DeliverResult (field 11)
    def recipients(self):
        return one(self.result(11), 1, 0)

    # Connections (field 12): [(id, [tags])]
    def connections(self):
        out = []
        for c in self.result(12).get(1, []):
            c = decode(c)
            out.append((one(c, 1, 0), list(c.get(2, []))))
        return out

    # Rows (field 13): [(key, value, found)]
    def rows(self):
        out = []
        for r in self.result(13).get(1, []):
            r = decode(r)
            out.append((one(r, 1, b""), one(r, 2, b""), bool(one(r, 3, 0))))
        return out


def _message_value(m):
    data = one(m, 2, b"")
    return data.decode("utf-8") if one(m, 1, 0) == TEXT else data


class Event:
    """A decoded message of the event stream: its topic and Event."""

    def __init__(self, raw):
        self.topic, sep, body = raw.partition(b":")
        if not sep:
            raise TestFailure("event without a topic: %r" % raw)
        self.topic += b":"
        f = decode(body)
        obj = decode(one(f, 1, b""))
        self.class_name = one(obj, 1, b"").decode()
        self.name = one(obj, 2, b"")
        self.id = one(obj, 3, b"")
        self.conn_id = one(f, 2, 0)
        self.time_ms = one(f, 3, 0)
        self.backend = bool(one(f, 4, 0))
        self.type = None
        if 10 in f:
            self.type = "open"
            self.tags = list(decode(one(f, 10)).get(1, []))
        elif 11 in f:
            self.type = "message"
            self.data = _message_value(decode(one(f, 11)))
        elif 12 in f:
            self.type = "close"
            c = decode(one(f, 12))
            self.code = one(c, 1, 0)
            self.reason = one(c, 2, b"")
            self.clean = bool(one(c, 3, 0))
        elif 14 in f:
            self.type = "alarm"
            a = decode(one(f, 14))
            self.alarm = one(a, 1, b"").decode("utf-8")
            self.retry = one(a, 2, 0)

    def __repr__(self):
        return "Event(%s %r conn=%d)" % (self.type, self.topic, self.conn_id)


# ---- nng through nngcat ----

# Request files live in the harness's scratch folder, removed at exit.
_scratch = SCRATCH


def _hex_line(line):
    """Bytes of one `nngcat --hex` line: "\\x68\\x69"."""
    text = line.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise TestFailure("unexpected nngcat output line %r" % line)
    return bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-fA-F]{2})",
                                                 text[1:-1]))


class Asking:
    """One request in flight through its own nngcat --req process."""

    def __init__(self, url, payload, timeout=IO_TIMEOUT_S):
        self.url = url
        self.timeout = timeout
        self.path = os.path.join(_scratch, "req-%s.bin" % os.urandom(4).hex())
        with open(self.path, "wb") as f:
            f.write(payload)
        self.proc = subprocess.Popen(
            [nngcat_path(), "--req", "--dial", url, "--file", self.path,
             "--hex", "--recv-timeout", str(int(timeout))],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)

    def raw(self):
        """Wait for the reply; its bytes."""
        try:
            out, err = self.proc.communicate(timeout=self.timeout + 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=10)
            raise TestFailure("nngcat --req %s did not finish within %.0f s"
                              % (self.url, self.timeout + 5)) from None
        finally:
            os.unlink(self.path)
        lines = out.decode(errors="replace").splitlines()
        if self.proc.returncode != 0 or not lines:
            raise TestFailure("nngcat --req %s exited %d with no reply; "
                              "stderr: %s" % (self.url, self.proc.returncode,
                                              err.decode(errors="replace")))
        return _hex_line(lines[0])

    def reply(self):
        return Reply(self.raw())


def ask(url, payload, timeout=IO_TIMEOUT_S):
    """Send one request with nngcat --req; return the raw reply bytes."""
    return Asking(url, payload, timeout).raw()


def call(url, payload, timeout=IO_TIMEOUT_S):
    """ask() and decode the Reply."""
    return Reply(ask(url, payload, timeout))


class SPPeer:
    """An SP peer over TCP, written from the wire description in
    docs/nng-protocol.md: an 8-byte greeting each way (0, "S", "P", 0, the
    protocol number as 16 bits big-endian, 0, 0), then each message as a
    64-bit big-endian length and its bytes."""

    REQ, REP, PUSH, PULL = 0x30, 0x31, 0x50, 0x51

    def __init__(self, url, mine, theirs):
        m = re.fullmatch(r"tcp://([\d.]+):(\d+)", url)
        if m is None:
            raise TestFailure("SPPeer needs a tcp:// address, got %r" % url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))),
                                             timeout=IO_TIMEOUT_S)
        self.sock.sendall(b"\0SP\0" + struct.pack("!H", mine) + b"\0\0")
        want = b"\0SP\0" + struct.pack("!H", theirs) + b"\0\0"
        greeting = self._read(8)
        if greeting != want:
            raise TestFailure("SP greeting %r, expected %r" % (greeting, want))

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise TestFailure("the peer closed after %d of %d bytes"
                                  % (len(data), n))
            data += chunk
        return data

    def send(self, payload):
        self.sock.sendall(struct.pack("!Q", len(payload)) + payload)

    def recv(self):
        n = struct.unpack("!Q", self._read(8))[0]
        return self._read(n)

    def close(self):
        self.sock.close()


class Pusher(SPPeer):
    """A PUSH peer, because order holds only within one connection and
    nngcat sends one message per process."""

    def __init__(self, url):
        SPPeer.__init__(self, url, SPPeer.PUSH, SPPeer.PULL)


class Requester(SPPeer):
    """A REQ peer: each request goes out behind a 32-bit request id with
    its top bit set, and the reply comes back behind the same id."""

    def __init__(self, url):
        SPPeer.__init__(self, url, SPPeer.REQ, SPPeer.REP)
        self.next_id = 0x80000001

    def call(self, payload):
        rid = struct.pack("!I", self.next_id)
        self.next_id += 1
        self.send(rid + payload)
        reply = self.recv()
        if reply[:4] != rid:
            raise TestFailure("reply behind id %r, expected %r"
                              % (reply[:4], rid))
        return Reply(reply[4:])


class Subscriber:
    """nngcat --sub on the event stream, following the topic prefixes
    given (bytes without NUL, or str)."""

    def __init__(self, url, *prefixes):
        argv = [nngcat_path(), "--sub", "--dial", url, "--hex"]
        for p in prefixes:
            if isinstance(p, bytes):
                p = p.decode("latin-1")
            argv += ["--subscribe", p]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""

    def next(self, timeout=IO_TIMEOUT_S):
        """The next Event, or raise after timeout."""
        ev = self.poll(timeout)
        if ev is None:
            raise TestFailure("no event within %.0f s" % timeout)
        return ev

    def poll(self, timeout):
        """The next Event, or None after timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise TestFailure("nngcat --sub exited: %s" % (
                    self.proc.stderr.read().decode(errors="replace")))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return Event(_hex_line(line.decode("ascii")))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


def listen_urls(log):
    """{key: url} from torpord's "listening on" lines of the nng plugin."""
    return dict((m.group(2), m.group(1)) for m in re.finditer(
        r'listening on "((?:tcp|ipc)://[^"]+)" for (listen(?:\.[\w-]+)?)',
        log))
