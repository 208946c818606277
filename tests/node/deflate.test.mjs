// permessage-deflate with Node's `ws` client against a real torpord on
// loopback: what the 101 answers to ws's offers, and a relay room where
// compressing and plain clients exchange text and binary byte for byte.
// Prints TAP; exits non-zero if anything failed.

import { randomBytes } from 'node:crypto';

import {
    check, checkEq, IO_TIMEOUT_MS, importOrFail, runSuite, TestFailure, unique, withTimeout,
} from './torpord.mjs';

const { WebSocket } = await importOrFail('ws');

const LIMIT = 1048576;
const NCT = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

// connect opens a ws client that queues what it receives and keeps the
// Sec-WebSocket-Extensions of its 101.
function connect(d, room, perMessageDeflate) {
    const ws = new WebSocket(d.uri(`/relay/${room}`), { perMessageDeflate, maxPayload: 4 * LIMIT });
    ws.inbox = [];
    ws.waiters = [];
    ws.on('upgrade', (res) => {
        ws.extHeader = res.headers['sec-websocket-extensions'];
    });
    ws.on('close', (code) => {
        for (const w of ws.waiters.splice(0)) {
            w.reject(new TestFailure(`connection closed with ${code} while waiting for a message`));
        }
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
    ws.on('error', () => {});
    return withTimeout(new Promise((resolve, reject) => {
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
    }), IO_TIMEOUT_MS, 'open');
}

function recv(ws) {
    if (ws.inbox.length > 0) {
        return Promise.resolve(ws.inbox.shift());
    }
    return withTimeout(new Promise((resolve, reject) => ws.waiters.push({ resolve, reject })),
        IO_TIMEOUT_MS, 'message');
}

function send(ws, data, opts = {}) {
    return new Promise((resolve, reject) => ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
}

async function closeAll(...clients) {
    await Promise.all(clients.map((ws) => withTimeout(new Promise((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) {
            resolve();
            return;
        }
        ws.once('close', resolve);
        ws.close(1000);
    }), IO_TIMEOUT_MS, 'close').catch(() => {})));
}

async function expectMessage(ws, want, what) {
    const msg = await recv(ws);
    checkEq(msg.isBinary, Buffer.isBuffer(want), `${what}: kind`);
    checkEq(msg.data, Buffer.isBuffer(want) ? want : Buffer.from(want), what);
}

function messages() {
    return [
        'x',
        'caf\u00e9 \u65e5\u672c \u{1F389} '.repeat(30),
        Buffer.from([...Array(256).keys()].flatMap((i) => [i, i, i, i])),
        randomBytes(60000),
        JSON.stringify({ rows: Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `user${i}` })) }),
        Buffer.alloc(0),
    ];
}

// ws's offer is answered with both no-context-takeover parameters.
async function negotiatesWithWs(d) {
    const room = unique();
    const a = await connect(d, room, true);
    const b = await connect(d, room, { serverMaxWindowBits: 10 });
    checkEq(a.extHeader, NCT, 'the 101 for ws\'s default offer');
    checkEq(b.extHeader, `${NCT}; server_max_window_bits=10`, 'the 101 for serverMaxWindowBits: 10');
    checkEq(a.extensions, 'permessage-deflate', 'ws.extensions');
    await send(a, 'hello there '.repeat(50));
    await expectMessage(b, 'hello there '.repeat(50), 'b got a\'s text');
    await closeAll(a, b);
}

// Compressing and plain clients in one room get every message exactly.
async function mixedRoomByteExact(d) {
    const room = unique();
    const a = await connect(d, room, { threshold: 0 });
    const b = await connect(d, room, false);
    const c = await connect(d, room, { serverMaxWindowBits: 11, threshold: 0 });
    check(b.extHeader === undefined, `no extension for a plain client, got ${b.extHeader}`);
    for (const m of messages()) {
        for (const [sender, others] of [[a, [b, c]], [b, [a, c]], [c, [a, b]]]) {
            await send(sender, m, { binary: Buffer.isBuffer(m) });
            for (const o of others) {
                await expectMessage(o, m, 'relayed message');
            }
        }
    }
    await closeAll(a, b, c);
}

// A compressed message sent in fragments arrives whole.
async function fragmentedCompressed(d) {
    const room = unique();
    const a = await connect(d, room, { threshold: 0 });
    const b = await connect(d, room, false);
    const parts = ['first part '.repeat(40), 'second part '.repeat(40), 'end'];
    await send(a, parts[0], { fin: false, compress: true });
    await send(a, parts[1], { fin: false, compress: true });
    await send(a, parts[2], { fin: true, compress: true });
    await expectMessage(b, parts.join(''), 'the reassembled message');
    const bin = randomBytes(3000);
    await send(a, Buffer.concat([bin, bin]).subarray(0, 4000), { binary: true, fin: false });
    await send(a, bin.subarray(0, 2000), { binary: true, fin: true });
    await expectMessage(b, Buffer.concat([Buffer.concat([bin, bin]).subarray(0, 4000), bin.subarray(0, 2000)]),
        'binary in fragments');
    await closeAll(a, b);
}

await runSuite([
    ['ws\'s offers are answered in the 101', negotiatesWithWs],
    ['compressing and plain ws clients in one room get exact bytes', mixedRoomByteExact],
    ['a compressed message in fragments arrives whole', fragmentedCompressed],
]);
