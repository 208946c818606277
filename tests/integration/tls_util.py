"""TLS parts shared by the wss tests: certificates made with the `openssl`
command in a temporary folder, client contexts that trust only the test
CA, and a raw TLS socket for the cases a WebSocket library will not
produce.

The certificates form a real chain: a root CA, an intermediate CA, and
server certificates for 127.0.0.1 signed by the intermediate.  The server
is given the leaf and the intermediate (a "fullchain" file) and the client
trusts only the root, so a client verifies only if the server sends the
chain.
"""

import asyncio
import base64
import hashlib
import os
import re
import socket
import ssl
import subprocess
import time

import harness
from harness import check, check_eq, TestFailure, IO_TIMEOUT_S, GUID

import websockets

TLS_LISTEN_RE = re.compile(r'listening on "127\.0\.0\.1:(\d+)" with TLS')

CA_EXT = ("basicConstraints=critical,CA:TRUE\n"
          "keyUsage=critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier=hash\n"
          "authorityKeyIdentifier=keyid:always\n")
LEAF_EXT = ("basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid:always\n")


def openssl(args, cwd):
    """Run the openssl command; raise with its stderr if it fails."""
    proc = subprocess.run(["openssl"] + list(args), cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=60)
    if proc.returncode != 0:
        raise TestFailure("openssl %s failed: %s"
                          % (" ".join(args),
                             proc.stderr.decode(errors="replace")))


class Certs:
    """A root CA, an intermediate, and server pairs made on demand."""

    def __init__(self):
        self.dir = os.path.join(harness.SCRATCH, "certs-%s" % os.urandom(3)
                                .hex())
        os.mkdir(self.dir)
        self.ca = self.path("root.pem")
        with open(self.path("ca.ext"), "w") as f:
            f.write(CA_EXT)
        with open(self.path("leaf.ext"), "w") as f:
            f.write(LEAF_EXT)
        self._key("root.key")
        openssl(["req", "-x509", "-new", "-key", "root.key", "-out",
                 "root.pem", "-days", "2", "-subj", "/CN=torpor test root",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                self.dir)
        self._key("inter.key")
        openssl(["req", "-new", "-key", "inter.key", "-out", "inter.csr",
                 "-subj", "/CN=torpor test intermediate"], self.dir)
        openssl(["x509", "-req", "-in", "inter.csr", "-CA", "root.pem",
                 "-CAkey", "root.key", "-set_serial", "0x77", "-days", "2",
                 "-extfile", "ca.ext", "-out", "inter.pem"], self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name):
        openssl(["genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-out", name], self.dir)

    def server(self, name, serial, common_name):
        """Make NAME.key and NAME.pem (leaf then intermediate); returns
        (certificate path, key path)."""
        self._key(name + ".key")
        openssl(["req", "-new", "-key", name + ".key", "-out",
                 name + ".csr", "-subj", "/CN=" + common_name], self.dir)
        openssl(["x509", "-req", "-in", name + ".csr", "-CA", "inter.pem",
                 "-CAkey", "inter.key", "-set_serial", hex(serial),
                 "-days", "2", "-extfile", "leaf.ext", "-out",
                 name + ".leaf"], self.dir)
        with open(self.path(name + ".pem"), "wb") as out:
            for part in (name + ".leaf", "inter.pem"):
                with open(self.path(part), "rb") as f:
                    out.write(f.read())
        return self.path(name + ".pem"), self.path(name + ".key")

    def client_context(self, alpn=("http/1.1",), max_version=None):
        """A client context that trusts the test root only."""
        ctx = ssl.create_default_context(cafile=self.ca)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        if max_version is not None:
            ctx.maximum_version = max_version
        return ctx


def install_pair(src_cert, src_key, dst_cert, dst_key):
    """Replace dst's files with src's the way a renewal would: write
    aside, then rename over, so the server never reads a half file."""
    for src, dst in ((src_cert, dst_cert), (src_key, dst_key)):
        with open(src, "rb") as f:
            data = f.read()
        tmp = dst + ".new"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)


def tls_port(daemon, timeout=IO_TIMEOUT_S):
    """The port of daemon's first TLS listener, from its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = TLS_LISTEN_RE.search(daemon.log())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise TestFailure("no 'listening on ... with TLS' line; log:\n"
                      + harness.tail(daemon.log()))


def wss_uri(daemon, path):
    return "wss://127.0.0.1:%d%s" % (tls_port(daemon), path)


async def wss(daemon, certs, path):
    """A websockets client over TLS that trusts certs' root only."""
    return await asyncio.wait_for(
        websockets.connect(wss_uri(daemon, path),
                           ssl=certs.client_context(),
                           max_size=2 * harness.MAX_MESSAGE_BYTES,
                           compression=None, open_timeout=IO_TIMEOUT_S,
                           close_timeout=IO_TIMEOUT_S, ping_interval=None),
        IO_TIMEOUT_S)


def ssl_object(ws):
    """The ssl.SSLObject under a websockets client."""
    return ws.transport.get_extra_info("ssl_object")


def wait_log(daemon, mark, pattern, timeout=IO_TIMEOUT_S):
    """The first line of daemon's log after offset mark that matches
    pattern; the wait is bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in daemon.log()[mark:].splitlines():
            if re.search(pattern, line):
                return line
        time.sleep(0.05)
    raise TestFailure("no log line matching %r; log tail:\n%s"
                      % (pattern, harness.tail(daemon.log())))


def tls_socket(port, ctx, timeout=IO_TIMEOUT_S):
    """A blocking TLS socket to 127.0.0.1:port, handshake done.  Ragged
    EOFs are errors here (Python ignores them by default), so a missing
    close_notify shows."""
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                               suppress_ragged_eofs=False)
    except Exception:
        raw.close()
        raise


class TlsRawWS(harness.RawWS):
    """harness.RawWS over TLS.  rcvbuf, if given, is the socket's receive
    buffer, set before connecting so that it bounds the TCP window: a
    client that does not read then stops the server's writes soon."""

    def __init__(self, port, path, ctx, rcvbuf=None, timeout=IO_TIMEOUT_S):
        self.timeout = timeout
        self.buf = b""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        raw.connect(("127.0.0.1", port))
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(harness.upgrade_request(path, port, key=key))
        status, headers, _ = self._read_head()
        check_eq(status, 101, "handshake status for %s" % path)
        want = base64.b64encode(
            hashlib.sha1((key + GUID).encode()).digest()).decode()
        check_eq(headers.get("sec-websocket-accept"), want,
                 "Sec-WebSocket-Accept")


def read_to_eof(sock, timeout=IO_TIMEOUT_S):
    """Read until the peer ends the stream; returns (bytes, how) where how
    is "eof" (TLS close_notify, or TCP FIN on a plain socket), "reset" or
    "ragged" (TCP ended inside TLS without close_notify)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        check(left > 0, "the server did not end the stream within %.0f s; "
              "got %r" % (timeout, data[:200]))
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, "reset"
        except ssl.SSLError as exc:
            if "EOF" in str(exc).upper():
                return data, "ragged"
            raise
        if not chunk:
            return data, "eof"
        data += chunk


def client_hello(ctx=None):
    """The bytes of a real TLS ClientHello for 127.0.0.1."""
    ctx = ctx or ssl.create_default_context()
    incoming = ssl.MemoryBIO()
    outgoing = ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    check(len(hello) > 100, "ClientHello of %d bytes" % len(hello))
    return hello


def fd_count(daemon):
    """Open descriptors of the daemon's process."""
    return len(os.listdir("/proc/%d/fd" % daemon.proc.pid))


def wait_fd_count(daemon, want, timeout=IO_TIMEOUT_S):
    """Wait until the daemon holds at most want descriptors; returns the
    last count.  The deadline only stops a hang."""
    deadline = time.monotonic() + timeout
    n = fd_count(daemon)
    while n > want and time.monotonic() < deadline:
        time.sleep(0.05)
        n = fd_count(daemon)
    return n
