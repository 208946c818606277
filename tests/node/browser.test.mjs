// A real browser in a relay room: headless Chromium (Debian's, driven by
// playwright-core) opens two WebSockets to one room of a real torpord on
// loopback and exchanges text and binary messages, over ws:// and over
// wss:// (a certificate made here with the openssl command, which this
// Chromium is told to accept).  Asserts that permessage-deflate was
// negotiated (WebSocket.extensions on the page) and that every byte
// arrives exactly.  Prints TAP; exits non-zero if anything
// failed.  torpord serves no pages, so a tiny http server of this test
// serves an empty page on 127.0.0.1: a page from loopback may open a
// WebSocket to loopback, where Chromium keeps pages of other origins (even
// about:blank) from reaching the local network.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { RELAY_CONFIG, check, checkEq, importOrFail, runSuite, unique } from './torpord.mjs';

const { chromium } = await importOrFail('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NCT = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const PAGE_TIMEOUT_MS = 30000;

// No network but loopback: nothing in the background reaches out.
const ARGS = [
    '--no-sandbox',
    '--headless',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-default-apps',
    '--disable-domain-reliability',
    '--disable-sync',
    '--disable-extensions',
    '--disable-breakpad',
    '--disable-crash-reporter',
    '--no-first-run',
    '--no-default-browser-check',
    '--no-pings',
    '--metrics-recording-only',
    '--disable-dev-shm-usage',
    // The wss test's certificate is self-signed, made a moment ago.
    '--ignore-certificate-errors',
];

// A self-signed certificate for 127.0.0.1, removed at exit.
const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-browser-'));
process.on('exit', () => fs.rmSync(certDir, { recursive: true, force: true }));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: certDir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60000 });
const CONFIG = RELAY_CONFIG.replace('listen = 127.0.0.1:0\n', `listen = 127.0.0.1:0
listen_tls = 127.0.0.1:0
tls_certificate = ${path.join(certDir, 'cert.pem')}
tls_private_key = ${path.join(certDir, 'key.pem')}
`);

// tlsUri is the wss:// address of path p on d's TLS listener.
function tlsUri(d, p) {
    const m = /listening on "127\.0\.0\.1:(\d+)" with TLS/.exec(d.log());
    check(m !== null, 'torpord logged no TLS listener');
    return `wss://127.0.0.1:${m[1]}${p}`;
}

// inPage runs in the browser: two clients of one room, each sending every
// message and collecting what the other sent.  Bytes travel as base64.
async function inPage({ url, messages, timeoutMs }) {
    const fromB64 = (s) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
    const toB64 = (buf) => {
        const bytes = new Uint8Array(buf);
        let s = '';
        for (let i = 0; i < bytes.length; i += 8192) {
            s += String.fromCharCode(...bytes.subarray(i, i + 8192));
        }
        return btoa(s);
    };
    const open = () => new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        ws.inbox = [];
        ws.onmessage = (e) => ws.inbox.push(typeof e.data === 'string' ? { text: e.data } : { b64: toB64(e.data) });
        ws.onopen = () => resolve(ws);
        ws.onerror = () => reject(new Error(`could not open ${url}`));
    });
    const until = async (cond, what) => {
        const end = Date.now() + timeoutMs;
        while (!cond()) {
            if (Date.now() > end) {
                throw new Error(`timed out waiting for ${what}`);
            }
            await new Promise((r) => setTimeout(r, 20));
        }
    };
    const a = await open();
    const b = await open();
    for (const m of messages) {
        a.send(m.text !== undefined ? m.text : fromB64(m.b64));
    }
    await until(() => b.inbox.length >= messages.length, 'b\'s messages');
    for (const m of messages) {
        b.send(m.text !== undefined ? m.text : fromB64(m.b64));
    }
    await until(() => a.inbox.length >= messages.length, 'a\'s messages');
    const result = { extA: a.extensions, extB: b.extensions, atA: a.inbox, atB: b.inbox };
    a.close(1000);
    b.close(1000);
    return result;
}

function messages() {
    const pattern = Buffer.alloc(20000);
    for (let i = 0; i < pattern.length; i++) {
        pattern[i] = (i * 7) % 251;
    }
    return [
        { text: 'hi' },
        { text: 'caf\u00e9 \u65e5\u672c\u8a9e \u{1F389} '.repeat(200) },
        { text: JSON.stringify({ rows: Array.from({ length: 2000 }, (_, i) => ({ id: i, n: `u${i}` })) }) },
        { b64: Buffer.from([0, 1, 2, 255]).toString('base64') },
        { b64: pattern.toString('base64') },
        { b64: randomBytes(50000).toString('base64') },
        { text: '' },
    ];
}

// pageServer serves one empty page on 127.0.0.1; resolves to the server.
function pageServer() {
    const server = http.createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>torpor</title>');
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
    });
}

async function browserRoom(d, url) {
    check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (packaging/install-deps.sh --test)`);
    const server = await pageServer();
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: PAGE_TIMEOUT_MS })
        .catch((err) => {
            server.close();
            throw err;
        });
    try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${server.address().port}/`, { timeout: PAGE_TIMEOUT_MS });
        const sent = messages();
        const got = await page.evaluate(inPage, {
            url, messages: sent, timeoutMs: PAGE_TIMEOUT_MS,
        });
        checkEq(got.extA, NCT, 'extensions of the first page client');
        checkEq(got.extB, NCT, 'extensions of the second page client');
        checkEq(got.atB.length, sent.length, 'messages at b');
        checkEq(got.atA.length, sent.length, 'messages at a');
        for (let i = 0; i < sent.length; i++) {
            checkEq(got.atB[i], sent[i], `message ${i} at b`);
            checkEq(got.atA[i], sent[i], `message ${i} at a`);
        }
    } finally {
        await browser.close();
        server.close();
    }
}

await runSuite([
    ['headless Chromium negotiates permessage-deflate and relays exact bytes',
        (d) => browserRoom(d, d.uri(`/relay/${unique('browser')}`))],
    ['the same over wss://',
        (d) => browserRoom(d, tlsUri(d, `/relay/${unique('browser-tls')}`))],
], CONFIG);
