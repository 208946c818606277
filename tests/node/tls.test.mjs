// wss:// with Node's `ws` client against a real torpord on loopback: the
// certificates (a root, an intermediate, a server pair for 127.0.0.1) are
// made by the `openssl` command in a temporary folder, and the client
// trusts the root only.  Prints TAP; exits non-zero if anything failed.
//
// Needs $TORPORD, $TORPOR_PLUGIN_PATH, the openssl command and the `ws`
// package in tests/node/node_modules (`npm ci --prefix tests/node`).  A
// missing prerequisite is a failure, never a skip.  Every wait is bounded;
// the only process ended is the torpord started here, by pid.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
    Daemon, IO_TIMEOUT_MS, SANITIZER, STOP_TIMEOUT_MS, TEST_TIMEOUT_MS, TestFailure,
    check, checkEq, sleep, unique, withTimeout,
} from './torpord.mjs';

const LIMIT = 1048576;

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

// ---- certificates ----

function openssl(dir, args) {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60000 });
}

// makeCerts writes root.pem, and server.pem (leaf then intermediate) with
// server.key, into dir.
function makeCerts(dir) {
    const key = (name) => openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt',
        'ec_paramgen_curve:P-256', '-out', name]);
    fs.writeFileSync(path.join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\n'
        + 'keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n'
        + 'authorityKeyIdentifier=keyid:always\n');
    fs.writeFileSync(path.join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\n'
        + 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n'
        + 'subjectAltName=IP:127.0.0.1\nsubjectKeyIdentifier=hash\n'
        + 'authorityKeyIdentifier=keyid:always\n');
    key('root.key');
    openssl(dir, ['req', '-x509', '-new', '-key', 'root.key', '-out', 'root.pem', '-days', '2',
        '-subj', '/CN=torpor node root', '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    key('inter.key');
    openssl(dir, ['req', '-new', '-key', 'inter.key', '-out', 'inter.csr', '-subj',
        '/CN=torpor node intermediate']);
    openssl(dir, ['x509', '-req', '-in', 'inter.csr', '-CA', 'root.pem', '-CAkey', 'root.key',
        '-set_serial', '0x71', '-days', '2', '-extfile', 'ca.ext', '-out', 'inter.pem']);
    key('server.key');
    openssl(dir, ['req', '-new', '-key', 'server.key', '-out', 'server.csr', '-subj',
        '/CN=torpor node server']);
    openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'inter.pem', '-CAkey', 'inter.key',
        '-set_serial', '0x5150', '-days', '2', '-extfile', 'leaf.ext', '-out', 'leaf.pem']);
    fs.writeFileSync(path.join(dir, 'server.pem'), Buffer.concat([
        fs.readFileSync(path.join(dir, 'leaf.pem')), fs.readFileSync(path.join(dir, 'inter.pem'))]));
}

// ---- the daemon ----

// TlsDaemon is a torpord with a plain and a TLS listener, on certificates
// made in its own folder; ca is the root a client must trust.
class TlsDaemon extends Daemon {
    constructor() {
        super('');
        makeCerts(this.dir);
        this.ca = fs.readFileSync(path.join(this.dir, 'root.pem'));
        fs.writeFileSync(this.configPath, `[core]
log_level = notice
plugins = websocket, relay, echo
shutdown_timeout_ms = 5000

[transport.websocket]
listen = 127.0.0.1:0
listen_tls = 127.0.0.1:0
tls_certificate = ${path.join(this.dir, 'server.pem')}
tls_private_key = ${path.join(this.dir, 'server.key')}
max_message_bytes = ${LIMIT}

[route.relay]
class = relay

[route.echo]
class = echo
`);
    }
}

// ---- clients ----

// connect opens a client, wss unless tls is false, and queues what it
// receives so that recv() never misses a message.
function connect(d, p, tls = true) {
    const uri = tls ? `wss://127.0.0.1:${d.tlsPort}${p}` : `ws://127.0.0.1:${d.port}${p}`;
    const opts = { perMessageDeflate: false, maxPayload: 4 * LIMIT };
    if (tls) {
        Object.assign(opts, { ca: d.ca, ALPNProtocols: ['http/1.1'] });
    }
    const ws = new WebSocket(uri, opts);
    ws.inbox = [];
    ws.waiters = [];
    ws.closed = new Promise((resolve) => {
        ws.on('close', (code) => {
            resolve({ code });
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
        ws.once('error', (err) => reject(new TestFailure(`could not connect to ${uri}: ${err.message}`)));
    }), IO_TIMEOUT_MS, `connect ${uri}`);
}

function recv(ws, ms = IO_TIMEOUT_MS) {
    if (ws.inbox.length) {
        return Promise.resolve(ws.inbox.shift());
    }
    return withTimeout(new Promise((resolve, reject) => ws.waiters.push({ resolve, reject })),
        ms, 'waiting for a message');
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

async function expect(ws, data, isBinary, what) {
    const m = await recv(ws, 30000);
    checkEq(m.isBinary, isBinary, `${what}: kind`);
    checkEq(m.data, data, `${what}: bytes`);
}

// ---- the tests ----

const TESTS = [
    ['wss: echo over TLS with the chain verified, ALPN http/1.1', async (d) => {
        const ws = await connect(d, `/echo/${unique()}`);
        const sock = ws._socket;
        checkEq(sock.alpnProtocol, 'http/1.1', 'ALPN');
        checkEq(sock.getPeerCertificate().serialNumber, '5150', 'serial of the server certificate');
        check(sock.authorized, `certificate not verified: ${sock.authorizationError}`);
        await send(ws, 'h\u00e9llo over tls \u{1F512}', false);
        await expect(ws, Buffer.from('h\u00e9llo over tls \u{1F512}'), false, 'text echo');
        await closeAll(ws);
        checkEq((await ws.closed).code, 1000, 'close code');
    }],
    ['wss: 1 MiB binary both ways, byte-exact, and a 1 MiB text', async (d) => {
        const ws = await connect(d, `/echo/${unique()}`);
        const big = randomBytes(LIMIT);
        await send(ws, big, true);
        await expect(ws, big, true, '1 MiB binary echo');
        const text = 'x\u00e9'.repeat(Math.floor(LIMIT / 3));
        await send(ws, text, false);
        await expect(ws, Buffer.from(text), false, 'text echo');
        await closeAll(ws);
    }],
    ['relay: ws and wss clients in one room get every message byte-exact', async (d) => {
        const room = `/relay/${unique()}`;
        const kinds = [false, true, true, false];
        const clients = [];
        for (const tls of kinds) {
            clients.push(await connect(d, room, tls));
        }
        const sent = clients.map((_, i) => [randomBytes(300000 + i), randomBytes(5 + i)]);
        for (let i = 0; i < clients.length; i++) {
            for (const m of sent[i]) {
                await send(clients[i], m, true);
            }
        }
        for (let j = 0; j < clients.length; j++) {
            const want = new Map(sent.map((msgs, i) => [i, [...msgs]]).filter(([i]) => i !== j));
            for (let k = 0; k < 2 * (clients.length - 1); k++) {
                const m = await recv(clients[j], 30000);
                const owner = [...want.entries()].find(([, q]) => q.length && q[0].equals(m.data));
                check(owner, `${kinds[j] ? 'wss' : 'ws'} client ${j} got a message that is no sender's next (${m.data.length} bytes)`);
                owner[1].shift();
            }
        }
        await closeAll(...clients);
    }],
    ['wss: a client that does not trust the root gives up in the handshake; the next is served', async (d) => {
        const ws = new WebSocket(`wss://127.0.0.1:${d.tlsPort}/echo/${unique()}`, { perMessageDeflate: false });
        const err = await withTimeout(new Promise((resolve) => {
            ws.once('open', () => resolve(null));
            ws.once('error', resolve);
        }), IO_TIMEOUT_MS, 'untrusted connect');
        check(err !== null, 'a client without the test root connected');
        check(/certificate/i.test(err.message), `error: ${err.message}`);
        ws.terminate();
        // And the server is fine afterwards.
        const ok = await connect(d, `/echo/${unique()}`);
        await send(ok, 'after', false);
        await expect(ok, Buffer.from('after'), false, 'echo after a refused client');
        await closeAll(ok);
    }],
];

function diag(text) {
    for (const line of String(text).split('\n')) {
        console.log(`# ${line}`);
    }
}

let liveDaemon = null;

async function sigtermExitsClean(d) {
    const ws = await connect(d, `/echo/${unique()}`);
    const stopped = d.stop('SIGTERM');
    checkEq((await withTimeout(ws.closed, STOP_TIMEOUT_MS, 'close after SIGTERM')).code, 1001,
        'close code after SIGTERM');
    const exit = await stopped;
    check(exit !== null, `torpord did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
    const bad = d.log().split('\n').filter((l) => SANITIZER.test(l));
    check(bad.length === 0, `sanitizer reports:\n${bad.join('\n')}`);
    checkEq(exit, { code: 0, sig: null }, 'exit status');
}

async function main() {
    const all = [...TESTS, ['SIGTERM closes a wss client with 1001; exit 0, no sanitizer report',
        sigtermExitsClean]];
    console.log(`1..${all.length}`);
    let failed = 0;
    const d = new TlsDaemon();
    liveDaemon = d;
    let startError = null;
    try {
        await d.start();
    } catch (err) {
        startError = err;
    }
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
