"""A raw RFC 6455 client for the conformance suite.

Each case opens its own connection to the `echo` route of one torpord
(ws://127.0.0.1:PORT/echo/NAME sends every message back to its sender) and
drives it frame by frame: frames the server must refuse are written by
hand, byte streams are cut into chops of any size, and every frame the
server sends is read and checked, in order.  A case states exactly what
must come back: echoed payload bytes, pong payloads, the close code, and
that nothing else arrives before the close.

Fail-fast checks need no clock: the client sends a prefix that must
already make the server fail, then only reads.  A server that waits for
more input never closes, and the bounded read fails the case.  A prefix
that must NOT fail yet is probed with a ping: its pong proves the server
read the prefix and kept the connection open.

Built on harness.RawWS (handshake, frame reading); its byte buffer is
replaced by a bytearray so that multi-megabyte messages read in linear
time.  Every read is bounded by harness.IO_TIMEOUT_S.
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import harness  # noqa: E402
from harness import (TestFailure, check, check_eq, make_frame,  # noqa: E402
                     close_payload, OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE,
                     OP_PING, OP_PONG)

# Large enough for Autobahn's 16 MiB messages of section 9; the output
# limit leaves room for the echo of such a message while it drains.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

CONFIG = """\
[core]
log_level = notice
plugins = websocket, echo
shutdown_timeout_ms = 5000

[transport.websocket]
listen = 127.0.0.1:0
max_message_bytes = %d
max_output_bytes = %d

[route.echo]
class = echo
""" % (MAX_MESSAGE_BYTES, 2 * MAX_MESSAGE_BYTES + 1024)

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009

OP_NAMES = {OP_CONT: "continuation", OP_TEXT: "text", OP_BINARY: "binary",
            OP_CLOSE: "close", OP_PING: "ping", OP_PONG: "pong"}


def frame(opcode, payload=b"", fin=True, rsv=0, length=None, mask=True):
    """One client frame, masked with a random key (see harness.make_frame).
    str payloads are sent as UTF-8."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return make_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv,
                      length=length)


def describe(fin, rsv, op, payload):
    name = OP_NAMES.get(op, "opcode %d" % op)
    text = "%s frame%s%s of %d bytes" % (name, "" if fin else " (fin=0)",
                                         " rsv=%d" % rsv if rsv else "",
                                         len(payload))
    if op == OP_CLOSE and len(payload) >= 2:
        text += " (code %d)" % struct.unpack("!H", payload[:2])[0]
    elif len(payload) <= 32:
        text += " %r" % bytes(payload)
    return text


class Client(harness.RawWS):
    """One connection to /echo/NAME.  Methods read strictly in order: the
    next frame must be the one expected, or the case fails naming it."""

    def __init__(self, daemon, case, timeout=harness.IO_TIMEOUT_S):
        self.case = case
        super().__init__(daemon.port,
                         "/echo/" + harness.unique("case-" + case),
                         timeout=timeout)
        # Chops go out as written, not coalesced by Nagle's algorithm.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---- the byte buffer: bytearray, so long reads stay linear ----

    def _fill(self, n):
        if not isinstance(self.buf, bytearray):
            self.buf = bytearray(self.buf)
        super()._fill(n)

    def _take(self, n):
        self._fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    # ---- sending ----

    def send(self, *frames, chop=None):
        """Write frames back to back; with chop, in writes of chop bytes
        (1 is octet-wise).  The server must not depend on how the stream
        is cut."""
        data = b"".join(frames)
        if chop is None:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), chop):
            self.sock.sendall(data[i:i + chop])

    def send_each(self, *frames):
        """Write each frame with its own write (frame-wise chops)."""
        for f in frames:
            self.sock.sendall(f)

    # ---- reading ----

    def next_frame(self, waiting_for):
        """The next server frame as (fin, rsv, opcode, payload); a closed
        connection fails the case with what was awaited."""
        try:
            fin, rsv, op, payload = self.recv_frame()
        except EOFError:
            raise TestFailure("connection closed while waiting for %s"
                              % waiting_for) from None
        check(rsv == 0, "server frame has rsv=%d, no extension was "
              "negotiated: %s" % (rsv, describe(fin, rsv, op, payload)))
        return fin, rsv, op, payload

    def expect_message(self, opcode, payload):
        """The next frames form one data message equal to payload (str is
        compared as UTF-8).  The server may fragment it; no control frame
        may come between."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        want = "%s message of %d bytes" % (OP_NAMES[opcode], len(payload))
        fin, rsv, op, data = self.next_frame(want)
        check(op == opcode, "expected %s, got %s"
              % (want, describe(fin, rsv, op, data)))
        parts = [data]
        while not fin:
            fin, rsv, op, data = self.next_frame("the rest of " + want)
            check(op == OP_CONT, "expected a continuation of %s, got %s"
                  % (want, describe(fin, rsv, op, data)))
            parts.append(data)
        got = b"".join(parts)
        if got != payload:
            diff = next((i for i in range(min(len(got), len(payload)))
                         if got[i] != payload[i]),
                        min(len(got), len(payload)))
            raise TestFailure("echoed %s differs: %d bytes back, first "
                              "difference at byte %d (sent %r, got %r)"
                              % (want, len(got), diff,
                                 payload[diff:diff + 16],
                                 got[diff:diff + 16]))

    def expect_pong(self, payload):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        fin, rsv, op, data = self.next_frame("a pong")
        check(op == OP_PONG and fin, "expected a pong with %r, got %s"
              % (payload[:32], describe(fin, rsv, op, data)))
        check_eq(data, payload, "pong payload")

    def probe(self, tag="probe"):
        """Ping and expect its pong first: proves the server read all sent
        so far and has not failed the connection."""
        payload = ("%s-%s" % (tag, os.urandom(3).hex())).encode()
        self.send(frame(OP_PING, payload))
        self.expect_pong(payload)

    def expect_close(self, code):
        """The next frame is a close with code (None: an empty body);
        returns its reason."""
        want = "a close frame with code %s" % code
        fin, rsv, op, data = self.next_frame(want)
        check(op == OP_CLOSE, "expected %s, got %s"
              % (want, describe(fin, rsv, op, data)))
        if code is None:
            check_eq(bytes(data), b"", "close body")
            return b""
        check(len(data) >= 2, "expected %s, got a close with a %d-byte "
              "body" % (want, len(data)))
        check_eq(struct.unpack("!H", data[:2])[0], code, "close code")
        reason = bytes(data[2:])
        try:
            reason.decode("utf-8")
        except UnicodeDecodeError:
            raise TestFailure("server close reason is not UTF-8: %r"
                              % reason) from None
        return reason

    def expect_eof(self):
        """The server closes TCP and sends nothing more (bounded)."""
        try:
            super().expect_eof()
        except TestFailure:
            raise TestFailure("expected the server to close TCP and send "
                              "nothing more, got %r" % bytes(self.buf[:64])) \
                from None

    # ---- endings ----

    def close_normally(self):
        """Start the close handshake with 1000: the server's first frame
        must be its close with 1000, then TCP closes.  Any frame still
        pending (an echo, a pong) fails the case here."""
        self.send(frame(OP_CLOSE, close_payload(CLOSE_NORMAL)))
        self.expect_close(CLOSE_NORMAL)
        self.expect_eof()
        self.close()

    def expect_fail(self, code, framing_lost=False):
        """The server fails the connection: its next frame is a close with
        code.  When the stream stays parseable, the client answers and the
        server must then close TCP; when framing_lost, the server can no
        longer read a close frame, so the client just hangs up."""
        self.expect_close(code)
        if framing_lost:
            self.close()
            return
        self.answer_close(code)

    def answer_close(self, code):
        """After the server's close: answer it, and the server must close
        TCP with nothing more sent, whatever the client wrote since."""
        self.send(frame(OP_CLOSE, close_payload(code)))
        self.expect_eof()
        self.close()


def run(cases):
    """Run cases, a list of (number, title, fn(daemon, number)), against one
    torpord on CONFIG, one TAP line each."""
    tests = []
    for number, title, fn in cases:
        async def one(daemon, fn=fn, number=number):
            fn(daemon, number)
        tests.append(("%s %s" % (number, title), one))
    harness.run_suite(tests, daemon_config=CONFIG)
