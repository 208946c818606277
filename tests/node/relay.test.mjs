// torpor's relay, echo and limits with Node's `ws` client against a real
// torpord on loopback.  Prints TAP; exits non-zero if anything failed.
//
// Needs $TORPORD (the daemon, or its libtool wrapper), $TORPOR_PLUGIN_PATH
// and the `ws` package in tests/node/node_modules (`npm ci --prefix
// tests/node`).  A missing prerequisite is a failure, never a skip.
// Every wait is bounded; the only process ended is the torpord started
// here, by pid.

import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import {
    Daemon, IO_TIMEOUT_MS, SANITIZER, STOP_TIMEOUT_MS, TEST_TIMEOUT_MS, TestFailure,
    check, checkEq, short, sleep, unique, withTimeout,
} from './torpord.mjs';

const LIMIT = 1048576;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

let WebSocket;
try {
    ({ WebSocket } = await import('ws'));
} catch (err) {
    console.log('1..1');
    console.log('not ok 1 - the ws package is installed');
    console.log(`# ${err.message}`);
    console.log('# run `npm ci --prefix tests/node` in the source tree');
    process.exit(1);
}

const CONFIG = `[core]
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
`;

// ---- clients ----

// connect opens a ws client and queues what it receives, so recv() never
// misses a message that arrived before it was called.
function connect(d, p, opts = {}) {
    const ws = new WebSocket(d.uri(p), { perMessageDeflate: false, maxPayload: 4 * LIMIT, ...opts });
    ws.inbox = [];
    ws.waiters = [];
    ws.closed = new Promise((resolve) => {
        ws.on('close', (code, reason) => {
            resolve({ code, reason: reason.toString() });
            for (const w of ws.waiters.splice(0)) {
                w.reject(new TestFailure(`connection closed with ${code} while waiting for a message`));
            }
        });
    });
    ws.on('message', (data, isBinary) => {
        const msg = { data: Buffer.from(data), isBinary };
        const w = ws.waiters.shift();
        if (w) {
            w.resolve(msg);
        } else {
            ws.inbox.push(msg);
        }
    });
    ws.on('error', () => {});   // surfaced through 'close' and the asserts
    return withTimeout(new Promise((resolve, reject) => {
        ws.once('open', () => resolve(ws));
        ws.once('unexpected-response', (req, res) => reject(new TestFailure(`handshake got HTTP ${res.statusCode}`)));
        ws.once('error', (err) => reject(new TestFailure(`could not connect: ${err.message}`)));
    }), IO_TIMEOUT_MS, `connect ${p}`);
}

function recv(ws, ms = IO_TIMEOUT_MS) {
    if (ws.inbox.length) {
        return Promise.resolve(ws.inbox.shift());
    }
    return withTimeout(new Promise((resolve, reject) => ws.waiters.push({ resolve, reject })),
        ms, 'waiting for a message');
}

async function expectNothing(ws, ms = 500) {
    await sleep(ms);
    check(ws.inbox.length === 0, `expected no message, got ${short(ws.inbox[0] && ws.inbox[0].data)}`);
}

function send(ws, data, binary) {
    return new Promise((resolve, reject) => {
        ws.send(data, { binary }, (err) => (err ? reject(err) : resolve()));
    });
}

async function closeAll(...clients) {
    for (const ws of clients) {
        if (ws.readyState === WebSocket.OPEN) {
            ws.close(1000);
        }
        await withTimeout(ws.closed, IO_TIMEOUT_MS, 'closing').catch(() => ws.terminate());
    }
}

async function expectText(ws, text, what) {
    const m = await recv(ws);
    checkEq(m.isBinary, false, `${what}: kind`);
    checkEq(m.data, Buffer.from(text, 'utf8'), `${what}: bytes`);
}

async function expectBinary(ws, buf, what) {
    const m = await recv(ws, 30000);
    checkEq(m.isBinary, true, `${what}: kind`);
    checkEq(m.data, buf, `${what}: bytes`);
}

// ---- a raw client, for frames ws never sends ----

function rawConnect(d, p) {
    return withTimeout(new Promise((resolve, reject) => {
        const sock = net.connect(d.port, '127.0.0.1');
        const key = randomBytes(16).toString('base64');
        let buf = Buffer.alloc(0);
        sock.on('error', reject);
        sock.on('connect', () => {
            sock.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n`
                + 'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        });
        const onData = (chunk) => {
            buf = Buffer.concat([buf, chunk]);
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) {
                return;
            }
            sock.off('data', onData);
            const head = buf.subarray(0, end).toString('latin1');
            const accept = createHash('sha1').update(key + GUID).digest('base64');
            if (!/^HTTP\/1\.1 101 /.test(head) || !head.includes(`Sec-WebSocket-Accept: ${accept}`)) {
                reject(new TestFailure(`bad handshake answer: ${head}`));
                return;
            }
            sock.rest = buf.subarray(end + 4);
            resolve(sock);
        };
        sock.on('data', onData);
    }), IO_TIMEOUT_MS, 'raw handshake');
}

function maskedFrame(opcode, payload, fin = true) {
    const mask = randomBytes(4);
    const n = payload.length;
    let head;
    if (n < 126) {
        head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | n]);
    } else if (n < 65536) {
        head = Buffer.alloc(4);
        head[0] = (fin ? 0x80 : 0) | opcode;
        head[1] = 0x80 | 126;
        head.writeUInt16BE(n, 2);
    } else {
        head = Buffer.alloc(10);
        head[0] = (fin ? 0x80 : 0) | opcode;
        head[1] = 0x80 | 127;
        head.writeBigUInt64BE(BigInt(n), 2);
    }
    const body = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
        body[i] = payload[i] ^ mask[i & 3];
    }
    return Buffer.concat([head, mask, body]);
}

// rawExpectClose reads server frames until a close frame; returns its code.
function rawExpectClose(sock) {
    return withTimeout(new Promise((resolve, reject) => {
        let buf = sock.rest || Buffer.alloc(0);
        const parse = () => {
            while (buf.length >= 2) {
                let n = buf[1] & 0x7f;
                let off = 2;
                if (n === 126) {
                    if (buf.length < 4) {
                        return;
                    }
                    n = buf.readUInt16BE(2);
                    off = 4;
                } else if (n === 127) {
                    if (buf.length < 10) {
                        return;
                    }
                    n = Number(buf.readBigUInt64BE(2));
                    off = 10;
                }
                if (buf.length < off + n) {
                    return;
                }
                const op = buf[0] & 0x0f;
                const payload = buf.subarray(off, off + n);
                buf = buf.subarray(off + n);
                if (op === 0x8) {
                    resolve(payload.length >= 2 ? payload.readUInt16BE(0) : null);
                    return;
                }
            }
        };
        sock.on('data', (chunk) => {
            buf = Buffer.concat([buf, chunk]);
            parse();
        });
        sock.on('close', () => reject(new TestFailure('connection closed without a close frame')));
        sock.on('error', () => {});
        parse();
    }), IO_TIMEOUT_MS, 'waiting for a close frame');
}

// ---- the tests ----

const ALL_BYTES = Buffer.concat(Array(4).fill(Buffer.from([...Array(256).keys()])));
const UTF8 = 'h\u00e9llo w\u00f6rld \u2014 \u65e5\u672c\u8a9e \u{1F389} a\u0000b';

function pattern(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
        b[i] = (i * 7 + (i >> 8)) & 0xff;
    }
    return b;
}

const TESTS = [
    ['relay: two clients, text reaches the other, not the sender', async (d) => {
        const room = unique();
        const a = await connect(d, `/relay/${room}`);
        const b = await connect(d, `/relay/${room}`);
        await send(a, 'hello', false);
        await expectText(b, 'hello', 'b');
        await send(b, 'world', false);
        // a's first message must be b's: its own would have come first.
        await expectText(a, 'world', "a's first message");
        await closeAll(a, b);
    }],
    ['relay: three clients, each message reaches exactly the two others', async (d) => {
        const room = unique();
        const c3 = [];
        for (let i = 0; i < 3; i++) {
            c3.push(await connect(d, `/relay/${room}`));
        }
        const [a, b, c] = c3;
        await send(a, 'from-a', false);
        await expectText(b, 'from-a', 'b');
        await expectText(c, 'from-a', 'c');
        await send(b, 'from-b', false);
        await expectText(a, 'from-b', "a's first message");
        await expectText(c, 'from-b', 'c');
        await send(c, 'from-c', false);
        await expectText(a, 'from-c', 'a');
        await expectText(b, 'from-c', "b's next message");
        await send(a, 'again', false);
        await expectText(c, 'again', "c's next message");
        await expectText(b, 'again', 'b');
        await closeAll(a, b, c);
    }],
    ['relay: binary with all 256 byte values and NULs, byte for byte', async (d) => {
        const room = unique();
        const a = await connect(d, `/relay/${room}`);
        const b = await connect(d, `/relay/${room}`);
        await send(a, ALL_BYTES, true);
        await expectBinary(b, ALL_BYTES, 'all byte values');
        await send(a, Buffer.alloc(1000), true);
        await expectBinary(b, Buffer.alloc(1000), '1000 NUL bytes');
        await closeAll(a, b);
    }],
    ['relay: multi-byte UTF-8 text with a NUL, byte for byte', async (d) => {
        const room = unique();
        const a = await connect(d, `/relay/${room}`);
        const b = await connect(d, `/relay/${room}`);
        await send(a, UTF8, false);
        await expectText(b, UTF8, 'utf-8 text');
        await send(a, Buffer.from('abc'), true);
        await send(a, 'abc', false);
        await expectBinary(b, Buffer.from('abc'), 'binary stays binary');
        await expectText(b, 'abc', 'text stays text');
        await closeAll(a, b);
    }],
    ['relay: another room receives nothing', async (d) => {
        const r1 = unique('one');
        const r2 = unique('two');
        const a = await connect(d, `/relay/${r1}`);
        const b = await connect(d, `/relay/${r1}`);
        const x = await connect(d, `/relay/${r2}`);
        const y = await connect(d, `/relay/${r2}`);
        await send(a, 'room one only', false);
        await expectText(b, 'room one only', 'b');
        await expectNothing(x, 500);
        await send(y, 'room two', false);
        await expectText(x, 'room two', "x's first message");
        await closeAll(a, b, x, y);
    }],
    ['relay: 200 messages arrive in order', async (d) => {
        const room = unique();
        const a = await connect(d, `/relay/${room}`);
        const b = await connect(d, `/relay/${room}`);
        for (let i = 0; i < 200; i++) {
            await send(a, `m${i}`, i % 2 === 0);
        }
        for (let i = 0; i < 200; i++) {
            const m = await recv(b);
            checkEq([m.isBinary, m.data.toString()], [i % 2 === 0, `m${i}`], `message ${i}`);
        }
        await closeAll(a, b);
    }],
    ['echo: back to the sender only, text and binary unchanged', async (d) => {
        const room = unique();
        const e1 = await connect(d, `/echo/${room}`);
        const e2 = await connect(d, `/echo/${room}`);
        await send(e1, UTF8, false);
        await expectText(e1, UTF8, 'text echo');
        await send(e1, ALL_BYTES, true);
        await expectBinary(e1, ALL_BYTES, 'binary echo');
        await send(e2, 'mine', false);
        await expectText(e2, 'mine', "e2's first message is its own echo");
        await closeAll(e1, e2);
    }],
    ['limits: a 1 MiB binary message passes through relay', async (d) => {
        const room = unique();
        const a = await connect(d, `/relay/${room}`);
        const b = await connect(d, `/relay/${room}`);
        const data = pattern(LIMIT);
        await send(a, data, true);
        await expectBinary(b, data, '1 MiB');
        await closeAll(a, b);
    }],
    ['limits: 1 MiB + 1 closes the sender with 1009', async (d) => {
        const room = unique();
        const a = await connect(d, `/relay/${room}`);
        const b = await connect(d, `/relay/${room}`);
        const c = await connect(d, `/relay/${room}`);
        a.send(pattern(LIMIT + 1), { binary: true }, () => {});
        const { code } = await withTimeout(a.closed, 30000, 'close after 1 MiB + 1');
        checkEq(code, 1009, "sender's close code");
        await send(c, 'after', false);
        await expectText(b, 'after', "b's first message after the 1009");
        await closeAll(b, c);
    }],
    ['utf-8: invalid UTF-8 in a raw text frame closes with 1007', async (d) => {
        const room = unique();
        const b = await connect(d, `/relay/${room}`);
        const c = await connect(d, `/relay/${room}`);
        const sock = await rawConnect(d, `/relay/${room}`);
        sock.write(maskedFrame(0x1, Buffer.from([0x61, 0xc3, 0x28])));
        const code = await rawExpectClose(sock);
        sock.destroy();
        checkEq(code, 1007, 'close code');
        await send(c, 'valid', false);
        await expectText(b, 'valid', "b's first message (invalid text not relayed)");
        await closeAll(b, c);
    }],
    ['close: client closes with 4000 and a reason, server echoes 4000', async (d) => {
        const ws = await connect(d, `/echo/${unique()}`);
        ws.close(4000, 'bye now');
        const { code } = await withTimeout(ws.closed, IO_TIMEOUT_MS, 'close handshake');
        checkEq(code, 4000, 'code the server sent back');
    }],
    ['room: keeps working after a client leaves and another drops', async (d) => {
        const room = unique();
        const a = await connect(d, `/relay/${room}`);
        const b = await connect(d, `/relay/${room}`);
        const c = await connect(d, `/relay/${room}`);
        const e = await connect(d, `/relay/${room}`);
        await closeAll(c);
        e.terminate();
        await send(a, 'still here', false);
        await expectText(b, 'still here', 'b');
        await send(b, 'me too', false);
        await expectText(a, 'me too', "a's first message");
        await closeAll(a, b);
    }],
];

async function sigtermCloses1001(d) {
    const room = unique();
    const clients = [];
    for (let i = 0; i < 3; i++) {
        clients.push(await connect(d, `/relay/${room}`));
    }
    clients.push(await connect(d, `/echo/${room}`));
    await send(clients[0], 'warm up', false);
    await expectText(clients[1], 'warm up', 'relay before SIGTERM');
    const stopped = d.stop('SIGTERM');
    const codes = [];
    for (const ws of clients) {
        codes.push((await withTimeout(ws.closed, STOP_TIMEOUT_MS, 'close after SIGTERM')).code);
    }
    const exit = await stopped;
    checkEq(codes, [1001, 1001, 1001, 1001], 'close codes after SIGTERM');
    check(exit !== null, `torpord did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
    const bad = d.log().split('\n').filter((l) => SANITIZER.test(l));
    check(bad.length === 0, `sanitizer reports:\n${bad.join('\n')}`);
    checkEq(exit, { code: 0, sig: null }, 'exit status');
}

function diag(text) {
    for (const line of String(text).split('\n')) {
        console.log(`# ${line}`);
    }
}

let liveDaemon = null;

async function main() {
    const plan = TESTS.length + 1;
    console.log(`1..${plan}`);
    let failed = 0;
    const d = new Daemon(CONFIG);
    liveDaemon = d;
    let startError = null;
    try {
        await d.start();
    } catch (err) {
        startError = err;
    }
    const all = [...TESTS, ['SIGTERM closes every client with 1001; exit 0, no sanitizer report', sigtermCloses1001]];
    for (let k = 0; k < all.length; k++) {
        const [name, fn] = all[k];
        try {
            if (startError) {
                throw startError;
            }
            await withTimeout(fn(d), TEST_TIMEOUT_MS, 'test');
            console.log(`ok ${k + 1} - ${name}`);
        } catch (err) {
            failed++;
            console.log(`not ok ${k + 1} - ${name}`);
            diag(err instanceof TestFailure ? err.message : err.stack);
            if (!startError) {
                diag(`torpord log tail:\n${d.log().split('\n').slice(-15).join('\n')}`);
            }
        }
    }
    await d.stop('SIGKILL');   // only if the SIGTERM test left it running
    process.exit(failed ? 1 : 0);
}

process.on('exit', () => {
    // Never leave our torpord behind, whatever happened.
    if (liveDaemon) {
        liveDaemon.cleanup();
    }
});

await main();
