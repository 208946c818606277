#!/usr/bin/python3
"""wss://: the WebSocket transport over TLS, with real clients and real
certificates (made with the openssl command for this run).

One torpord serves plain ws and wss for most tests; the deadline and
protocol-version tests have one of their own with a short
handshake_timeout_ms and tls_min_version = 1.3.
"""

import asyncio
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (check, check_eq, close_all, connect, recv,  # noqa: E402
                     Daemon, IO_TIMEOUT_S, make_frame,
                     OP_TEXT, OP_CLOSE, parse_head, upgrade_request)
import tls_util  # noqa: E402
from tls_util import (read_to_eof, ssl_object, tls_port,  # noqa: E402
                      tls_socket, wait_log, wss)

CERTS = tls_util.Certs()
CERT, KEY = CERTS.server("server", 0x1001, "torpor test server")

CONFIG = """\
[core]
log_level = notice
plugins = websocket, relay, echo
shutdown_timeout_ms = 5000

[transport.websocket]
listen = 127.0.0.1:0
listen_tls = 127.0.0.1:0
tls_certificate = %s
tls_private_key = %s
max_message_bytes = 1048576

[route.relay]
class = relay

[route.echo]
class = echo
""" % (CERT, KEY)

SHORT_MS = 500
# Below one large message of the slow-consumer tests, so that the message
# a blocked TLS write has begun is always one the limit would refuse, and
# below one record's worth of the small ones it joins.
OUTPUT_LIMIT = 8192
STRICT_CONFIG = CONFIG.replace(
    "max_message_bytes = 1048576",
    "max_message_bytes = 1048576\nhandshake_timeout_ms = %d\n"
    "tls_min_version = 1.3\nmax_output_bytes = %d" % (SHORT_MS, OUTPUT_LIMIT))


async def wss_echo(d):
    ws = await wss(d, CERTS, "/echo/" + harness.unique())
    try:
        so = ssl_object(ws)
        check_eq(so.version(), "TLSv1.3", "negotiated protocol")
        check_eq(so.selected_alpn_protocol(), "http/1.1", "ALPN")
        check_eq(so.getpeercert()["serialNumber"], "1001",
                 "serial of the server's certificate")
        await ws.send("hello over tls")
        check_eq(await recv(ws), "hello over tls", "text echo")
        payload = os.urandom(70000)
        await ws.send(payload)
        check_eq(await recv(ws), payload, "binary echo")
    finally:
        await close_all(ws)
    check_eq(ws.close_code, 1000, "close code")


async def alpn_choices(d):
    port = tls_port(d)
    for offered, want in ((["h2", "http/1.1"], "http/1.1"),
                          (["h2"], None), (None, None)):
        sock = tls_socket(port, CERTS.client_context(alpn=offered))
        try:
            check_eq(sock.selected_alpn_protocol(), want,
                     "ALPN chosen from %s" % offered)
            path = "/echo/" + harness.unique()
            sock.sendall(upgrade_request(path, port))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                check(chunk, "closed before the 101 (offered %s)" % offered)
                head += chunk
            status, _, _ = parse_head(head.split(b"\r\n\r\n")[0])
            check_eq(status, 101, "upgrade status with ALPN %s" % offered)
        finally:
            sock.close()


async def large_messages(d):
    room = "/echo/" + harness.unique()
    ws = await wss(d, CERTS, room)
    try:
        for payload in (os.urandom(harness.MAX_MESSAGE_BYTES),
                        ("é" * (harness.MAX_MESSAGE_BYTES // 2))):
            await ws.send(payload)
            back = await recv(ws, timeout=30)
            check_eq(type(back), type(payload), "type of the echo")
            check(back == payload, "1 MiB %s echo differs (%d bytes back)"
                  % (type(payload).__name__, len(back)))
    finally:
        await close_all(ws)


async def mixed_relay_room(d):
    room = "/relay/" + harness.unique()
    clients = [await connect(d, room), await wss(d, CERTS, room),
               await connect(d, room), await wss(d, CERTS, room)]
    kinds = ["ws", "wss", "ws", "wss"]
    try:
        sent = []
        for i, ws in enumerate(clients):
            msgs = [("%s client %d: é ✓" % (kinds[i], i)),
                    os.urandom(1 + 37 * i), os.urandom(200000 + i)]
            for m in msgs:
                await ws.send(m)
            sent.append(msgs)
        for j, ws in enumerate(clients):
            want = {i: list(msgs) for i, msgs in enumerate(sent) if i != j}
            for _ in range(3 * (len(clients) - 1)):
                got = await recv(ws, timeout=30)
                owner = next((i for i, q in want.items()
                              if q and q[0] == got), None)
                check(owner is not None,
                      "%s client %d received a message that is not the "
                      "next one of any other client (%d bytes)"
                      % (kinds[j], j, len(got)))
                want[owner].pop(0)
            check(all(not q for q in want.values()),
                  "%s client %d misses messages" % (kinds[j], j))
            await harness.expect_nothing(ws, 0.2)
    finally:
        await close_all(*clients)


async def pipelined_in_one_record(d):
    """A request longer than the first read, and a frame after it, in one
    TLS record: what OpenSSL has decrypted but not handed over must be read
    without the socket ever becoming readable again."""
    port = tls_port(d)
    for pad, frame_len in ((3000, 100), (1200, 3000), (1200, 9000)):
        for _ in range(4):
            sock = tls_socket(port, CERTS.client_context())
            try:
                payload = os.urandom(frame_len // 2).hex().encode()
                record = (upgrade_request("/echo/" + harness.unique(), port,
                                          extra="X-Pad: %s\r\n" % ("a" * pad))
                          + make_frame(harness.OP_BINARY, payload))
                check(len(record) < 16384, "one record")
                sock.sendall(record)
                want = make_frame(harness.OP_BINARY, payload, mask=False)
                data = b""
                while not (b"\r\n\r\n" in data
                           and len(data.split(b"\r\n\r\n", 1)[1])
                           >= len(want)):
                    chunk = sock.recv(65536)
                    check(chunk, "closed before the echo; got %r"
                          % data[:80])
                    data += chunk
                head, rest = data.split(b"\r\n\r\n", 1)
                check(head.startswith(b"HTTP/1.1 101 "), "answer %r"
                      % head[:80])
                check(rest == want, "echo of the pipelined %d-byte frame "
                      "after a %d-byte pad" % (frame_len, pad))
            finally:
                sock.close()


async def slow_reader_gets_everything(d):
    """A wss reader that stops reading while 10 MB are relayed to it, more
    than the kernel's socket buffers take: the server's TLS writes block
    mid-record and the output queues behind them; once it reads, every
    message arrives whole and in order.

    The reader reads in a thread: the sender's last bytes may still sit in
    its asyncio transport when its sends return, and a blocking read on
    the event loop's thread would keep them from ever leaving."""
    port = tls_port(d)
    room = "/relay/" + harness.unique()
    reader = tls_util.TlsRawWS(port, room, CERTS.client_context(),
                               rcvbuf=4096, timeout=30)
    sender = await wss(d, CERTS, room)
    msgs = [os.urandom(100000 + i) for i in range(100)]

    def read_all():
        for i, m in enumerate(msgs):
            fin, rsv, op, payload = reader.recv_frame()
            while op == harness.OP_PING:    # keepalive, on a slow run
                fin, rsv, op, payload = reader.recv_frame()
            check(fin and op == harness.OP_BINARY,
                  "message %d: frame fin=%s opcode=%d" % (i, fin, op))
            check(payload == m, "message %d differs (%d bytes, want %d)"
                  % (i, len(payload), len(m)))

    try:
        for m in msgs:
            await sender.send(m)
        await asyncio.to_thread(read_all)
    finally:
        reader.close()
        await close_all(sender)


async def http_error_inside_tls(d):
    port = tls_port(d)
    sock = tls_socket(port, CERTS.client_context())
    try:
        sock.sendall(upgrade_request("/nosuchroute/x", port))
        data, how = read_to_eof(sock)
    finally:
        sock.close()
    check(data.startswith(b"HTTP/1.1 404 "), "answer %r" % data[:80])
    check_eq(how, "eof", "end of the TLS stream (close_notify expected)")


async def websocket_close_ends_with_close_notify(d):
    port = tls_port(d)
    sock = tls_socket(port, CERTS.client_context())
    try:
        sock.sendall(upgrade_request("/echo/" + harness.unique(), port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            check(chunk, "closed before the 101")
            head += chunk
        check(head.startswith(b"HTTP/1.1 101 "), "answer %r" % head[:80])
        sock.sendall(make_frame(OP_TEXT, b"ping?"))
        sock.sendall(make_frame(OP_CLOSE, b"\x03\xe8"))
        data, how = read_to_eof(sock)
    finally:
        sock.close()
    rest = head.split(b"\r\n\r\n", 1)[1] + data
    check(b"ping?" in rest, "the echo before the close: %r" % rest[:80])
    check(rest.endswith(b"\x88\x02\x03\xe8"), "our close frame last: %r"
          % rest[-16:])
    check_eq(how, "eof", "end of the TLS stream (close_notify expected)")


async def plain_http_on_tls_port(d):
    port = tls_port(d)
    base = tls_util.fd_count(d)
    mark = len(d.log())
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", port),
                                        timeout=IO_TIMEOUT_S)
        try:
            sock.sendall(upgrade_request("/echo/" + harness.unique(), port))
            data, how = read_to_eof(sock)
        finally:
            sock.close()
        check(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"),
              "answer to plain HTTP: %r" % data[:80])
        check(data.endswith(b"\r\n\r\nThis port speaks TLS: use wss://.\n"),
              "body of the answer: %r" % data[-60:])
        check_eq(how, "eof", "end of the plain answer (a FIN, not a reset)")
    line = wait_log(d, mark, r"could not complete TLS handshake with .*: "
                    r"a plain HTTP request on a TLS port")
    check(re.match(r"^\S+Z WARN ", line), "not a WARN line: %r" % line)
    n = tls_util.wait_fd_count(d, base)
    check(n <= base, "the daemon holds %d descriptors, %d before the "
          "plain requests" % (n, base))
    # And TLS still works on that port.
    ws = await wss(d, CERTS, "/echo/" + harness.unique())
    await ws.send("still here")
    check_eq(await recv(ws), "still here", "echo after plain requests")
    await close_all(ws)


async def plain_ws_unchanged(d):
    a = await connect(d, "/echo/" + harness.unique())
    await a.send("plain")
    check_eq(await recv(a), "plain", "plain ws echo")
    check(a.transport.get_extra_info("ssl_object") is None,
          "the plain listener spoke TLS")
    await close_all(a)


# ---- the daemon with a short deadline and TLS 1.3 only ----

def strict_daemon():
    d = Daemon(STRICT_CONFIG)
    d.start()
    return d


async def incomplete_handshake_hits_deadline(_):
    d = strict_daemon()
    try:
        port = tls_port(d)
        mark = len(d.log())
        hello = tls_util.client_hello()
        sock = socket.create_connection(("127.0.0.1", port),
                                        timeout=IO_TIMEOUT_S)
        try:
            sock.sendall(hello[:len(hello) // 2])
            data, how = read_to_eof(sock)
        finally:
            sock.close()
        check_eq(data, b"", "bytes sent for half a ClientHello")
        check(how in ("eof", "reset"), "end of stream: %s" % how)
        line = wait_log(d, mark, r"no complete TLS handshake within %d ms"
                        % SHORT_MS)
        check(re.match(r"^\S+Z WARN ", line), "not a WARN line: %r" % line)

        # A finished TLS handshake with no request after it: same deadline.
        mark = len(d.log())
        sock = tls_socket(port, CERTS.client_context())
        try:
            data, how = read_to_eof(sock)
        finally:
            sock.close()
        check_eq(data, b"", "bytes for a silent TLS client")
        check(how in ("eof", "reset"), "end of stream: %s" % how)
        wait_log(d, mark, r"no complete request within %d ms" % SHORT_MS)
    finally:
        rc, log = d.stop()
    harness.check_clean_exit(rc, log)


def _slow_consumer_closed_cleanly(size, count):
    """Over max_output_bytes the server drops what it has not begun and
    closes with 1013; what it had begun, inside TLS too, is finished, so
    the reader gets whole messages, then the close frame.  count messages
    of about size bytes make 7 MB, past the kernel's socket buffers (4 MiB
    at most here).  Messages of 12,000 bytes are a TLS record each, every
    one over the limit: the write that blocks has begun a record of a
    message the limit refuses.  Messages of 600 bytes are joined, some 27
    to a record: the write that blocks holds many of them, and its repeat
    needs every one."""
    return lambda _: slow_consumer_run(size, count)


async def slow_consumer_run(size, count):
    d = strict_daemon()
    try:
        port = tls_port(d)
        room = "/relay/" + harness.unique()
        reader = tls_util.TlsRawWS(port, room, CERTS.client_context(),
                                   rcvbuf=4096, timeout=30)
        sender = await wss(d, CERTS, room)
        msgs = [os.urandom(size + i % 7) for i in range(count)]

        def read_to_close():
            got = 0
            while True:
                fin, rsv, op, payload = reader.recv_frame()
                if op == OP_CLOSE:
                    check_eq(payload[:2], b"\x03\xf5", "close code (1013)")
                    return got
                if op == harness.OP_PING:
                    continue    # keepalive, on a slow run
                check(op == harness.OP_BINARY and got < len(msgs)
                      and payload == msgs[got],
                      "message %d differs or is cut (opcode %d, %d bytes)"
                      % (got, op, len(payload)))
                got += 1

        mark = len(d.log())
        for m in msgs:
            await sender.send(m)
        # The reader reads only once the server has cut it off: the sends
        # may return while most of them are still on their way to it.  The
        # wait sleeps on the event loop, which goes on flushing the sender.
        deadline = time.monotonic() + 60
        while "could not keep up with slow consumer" not in d.log()[mark:]:
            check(time.monotonic() < deadline,
                  "no slow-consumer warning within 60 s")
            await asyncio.sleep(0.05)
        # In a thread, so the sender's event loop goes on flushing.
        got = await asyncio.to_thread(read_to_close)
        check(0 < got < len(msgs), "%d of %d messages before the close"
              % (got, len(msgs)))
        reader.close()
        await sender.send("still open")
        await close_all(sender)
    finally:
        rc, log = d.stop()
    harness.check_clean_exit(rc, log)


async def old_protocol_refused(_):
    d = strict_daemon()
    try:
        port = tls_port(d)
        mark = len(d.log())
        ctx = CERTS.client_context(max_version=ssl.TLSVersion.TLSv1_2)
        try:
            sock = tls_socket(port, ctx)
            sock.close()
            raise harness.TestFailure("a TLS 1.2 client got through "
                                      "tls_min_version = 1.3")
        except ssl.SSLError as exc:
            check("version" in str(exc).lower() or "alert" in
                  str(exc).lower(), "client error: %s" % exc)
        wait_log(d, mark, r"could not complete TLS handshake with .*: "
                 r"unsupported protocol")
        ws = await wss(d, CERTS, "/echo/" + harness.unique())
        check_eq(ssl_object(ws).version(), "TLSv1.3", "version")
        await close_all(ws)
    finally:
        rc, log = d.stop()
    harness.check_clean_exit(rc, log)


TESTS = [
    ("wss: Python websockets echoes over TLS 1.3 with ALPN http/1.1, "
     "verified through the intermediate in the chain file", wss_echo),
    ("ALPN: http/1.1 is chosen when offered; h2 alone or no ALPN still "
     "upgrades", alpn_choices),
    ("1 MiB binary and text messages both ways over wss, byte-exact",
     large_messages),
    ("a relay room mixing ws and wss clients delivers every message "
     "byte-exact", mixed_relay_room),
    ("a long request and a frame pipelined in one TLS record are served "
     "from what TLS holds decrypted", pipelined_in_one_record),
    ("a wss reader that stops reading gets every relayed message once it "
     "reads again", slow_reader_gets_everything),
    ("an unknown route over TLS is answered 404 inside TLS, then "
     "close_notify", http_error_inside_tls),
    ("a WebSocket close over TLS ends with close_notify",
     websocket_close_ends_with_close_notify),
    ("plain HTTP to the TLS port gets a plain 400 and a FIN, 20 times, "
     "and no descriptor stays behind", plain_http_on_tls_port),
    ("the plain listener still speaks plain ws", plain_ws_unchanged),
    ("half a ClientHello, and a silent TLS client, are dropped at "
     "handshake_timeout_ms with a WARN", incomplete_handshake_hits_deadline),
    ("a wss slow consumer over max_output_bytes gets whole messages, "
     "then 1013", _slow_consumer_closed_cleanly(12000, 600)),
    ("a wss slow consumer of small messages, joined into records, gets "
     "whole messages, then 1013", _slow_consumer_closed_cleanly(600, 12000)),
    ("tls_min_version = 1.3 refuses a TLS 1.2 client and serves 1.3",
     old_protocol_refused),
]

if __name__ == "__main__":
    harness.run_suite(TESTS, daemon_config=CONFIG)
