// sp_rep.mjs: the REP side of nng's request/reply protocol (the SP
// protocols' REQ/REP version 0), spoken over TCP or a Unix socket with
// Node's net module, so a worker needs no native code.
//
// The wire, as docs/backend-workers.md describes it:
//
//   - Each side first sends 8 bytes: 0x00 'S' 'P' 0x00, its protocol id
//     as 16 bits big-endian (REQ 0x0030, REP 0x0031), then 0x00 0x00.
//   - Then messages, each a header and a payload.  Over TCP the header is
//     the payload's length, 64 bits big-endian; over IPC (a Unix socket)
//     it is one byte 0x01 and then that length.
//   - A request's payload starts with its backtrace: 32-bit big-endian
//     words, the last of which (the request id) has its high bit set.
//     The reply's payload is the same backtrace, then the answer.
//
// One request is handled at a time, in arrival order, as nng's REP
// socket does; run several workers for parallel work.  A dropped
// connection is dialled again after a short wait.

import net from "node:net";

const SP_REQ = 0x30;
const SP_REP = 0x31;
const MAX_BACKTRACE_WORDS = 8;

function handshake() {
  return Buffer.from([0x00, 0x53, 0x50, 0x00, 0x00, SP_REP, 0x00, 0x00]);
}

// parseUrl turns "tcp://host:port" or "ipc:///path" into net.connect's
// options and the framing it uses.
export function parseUrl(url) {
  let m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)$/.exec(url);
  if (m) {
    return {
      connect: { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) },
      ipc: false,
    };
  }
  m = /^ipc:\/\/(\/.+)$/.exec(url);
  if (m) {
    return { connect: { path: m[1] }, ipc: true };
  }
  throw new Error(`unsupported address "${url}": expected tcp://HOST:PORT or ipc:///PATH`);
}

// splitBacktrace returns [backtrace, body] of a request payload, or null
// when no word of the first eight has the high bit set.
export function splitBacktrace(payload) {
  for (let i = 0; i < MAX_BACKTRACE_WORDS; i++) {
    const end = (i + 1) * 4;
    if (payload.length < end) {
      return null;
    }
    if (payload[i * 4] & 0x80) {
      return [payload.subarray(0, end), payload.subarray(end)];
    }
  }
  return null;
}

// RepDialer dials url and calls handle(body) for each request; handle
// returns (or resolves to) the reply body, a Buffer or Uint8Array, or null
// to send nothing.
export class RepDialer {
  constructor(url, handle, { log = () => {}, redialMs = 100 } = {}) {
    this.target = parseUrl(url);
    this.url = url;
    this.handle = handle;
    this.log = log;
    this.redialMs = redialMs;
    this.socket = null;
    this.stopped = false;
    this.queue = [];
    this.busy = false;
  }

  start() {
    this.dial();
  }

  stop() {
    this.stopped = true;
    if (this.socket) {
      this.socket.destroy();
    }
  }

  dial() {
    if (this.stopped) {
      return;
    }
    const sock = net.connect(this.target.connect);
    this.socket = sock;
    let buf = Buffer.alloc(0);
    let greeted = false;
    sock.setNoDelay(true);
    sock.on("connect", () => sock.write(handshake()));
    sock.on("data", (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!greeted) {
        if (buf.length < 8) {
          return;
        }
        if (buf[0] !== 0 || buf[1] !== 0x53 || buf[2] !== 0x50 || buf[3] !== 0
            || buf.readUInt16BE(4) !== SP_REQ) {
          this.log(`could not greet "${this.url}": the peer is not an SP REQ socket`);
          sock.destroy();
          return;
        }
        greeted = true;
        buf = buf.subarray(8);
      }
      buf = this.takeMessages(sock, buf);
    });
    sock.on("error", () => {});
    sock.on("close", () => {
      if (this.socket === sock) {
        this.socket = null;
      }
      this.queue = this.queue.filter((q) => q.sock !== sock);
      if (!this.stopped) {
        setTimeout(() => this.dial(), this.redialMs);
      }
    });
  }

  // takeMessages queues every whole message in buf; returns the rest.
  takeMessages(sock, buf) {
    const head = this.target.ipc ? 9 : 8;
    for (;;) {
      if (buf.length < head) {
        return buf;
      }
      if (this.target.ipc && buf[0] !== 1) {
        this.log("dropping the connection: an IPC message of another type");
        sock.destroy();
        return Buffer.alloc(0);
      }
      const len = buf.readBigUInt64BE(head - 8);
      if (len > BigInt(buf.length - head)) {
        return buf;
      }
      const payload = buf.subarray(head, head + Number(len));
      buf = buf.subarray(head + Number(len));
      this.queue.push({ sock, payload: Buffer.from(payload) });
      this.next();
    }
  }

  async next() {
    if (this.busy || this.queue.length === 0) {
      return;
    }
    this.busy = true;
    const { sock, payload } = this.queue.shift();
    try {
      const parts = splitBacktrace(payload);
      if (parts === null) {
        this.log("dropping a request without a backtrace");
      } else {
        const reply = await this.handle(parts[1]);
        if (reply != null && !sock.destroyed) {
          this.send(sock, Buffer.concat([parts[0], Buffer.from(reply)]));
        }
      }
    } catch (err) {
      this.log(`could not handle a request: ${err && err.stack ? err.stack : err}`);
    }
    this.busy = false;
    this.next();
  }

  send(sock, payload) {
    const head = Buffer.alloc(this.target.ipc ? 9 : 8);
    if (this.target.ipc) {
      head[0] = 1;
    }
    head.writeBigUInt64BE(BigInt(payload.length), this.target.ipc ? 1 : 0);
    sock.write(Buffer.concat([head, payload]));
  }
}
