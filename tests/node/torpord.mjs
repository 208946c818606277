// Shared parts of the Node tests that start their own torpord: the daemon
// on a temporary config, TAP output and bounded waits.  Needs $TORPORD and
// $TORPOR_PLUGIN_PATH (set by `make check`).  The only process ended is
// the torpord started here, by pid.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const START_TIMEOUT_MS = 20000;
export const STOP_TIMEOUT_MS = 20000;
export const TEST_TIMEOUT_MS = 90000;
export const IO_TIMEOUT_MS = 10000;
export const SANITIZER = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

export const RELAY_CONFIG = `[core]
log_level = notice
plugins = websocket, relay
shutdown_timeout_ms = 5000

[transport.websocket]
listen = 127.0.0.1:0
max_message_bytes = 1048576

[route.relay]
class = relay
`;

export class TestFailure extends Error {}

export function check(cond, what) {
    if (!cond) {
        throw new TestFailure(what);
    }
}

export function short(v) {
    let s = Buffer.isBuffer(v) ? `<Buffer ${v.length} bytes ${v.subarray(0, 24).toString('hex')}>`
        : JSON.stringify(v);
    if (s !== undefined && s.length > 160) {
        s = s.slice(0, 160) + '...';
    }
    return s;
}

export function checkEq(seen, want, what) {
    const same = Buffer.isBuffer(want) ? Buffer.isBuffer(seen) && want.equals(seen)
        : JSON.stringify(seen) === JSON.stringify(want);
    if (!same) {
        throw new TestFailure(`${what}: expected ${short(want)}, got ${short(seen)}`);
    }
}

export function unique(prefix = 'room') {
    return `${prefix}-${randomBytes(4).toString('hex')}-${process.pid}`;
}

export function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

export function withTimeout(promise, ms, what) {
    let timer;
    const limit = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new TestFailure(`${what}: nothing within ${ms} ms`)), ms);
    });
    return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

export function envPath(name) {
    const v = process.env[name];
    if (!v) {
        throw new TestFailure(`environment variable ${name} is not set: run with \`make check\` or export it`);
    }
    return v;
}

export class Daemon {
    constructor(config = RELAY_CONFIG) {
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torpor-node-'));
        this.configPath = path.join(this.dir, 'torpor.conf');
        this.logPath = path.join(this.dir, 'torpord.log');
        fs.writeFileSync(this.configPath, config);
        this.proc = null;
        this.port = null;
        this.tlsPort = null;
        this.exit = null;
    }

    log() {
        try {
            return fs.readFileSync(this.logPath, 'utf8');
        } catch {
            return '';
        }
    }

    async start() {
        const logFd = fs.openSync(this.logPath, 'w');
        this.proc = spawn(envPath('TORPORD'),
            ['--config', this.configPath, '--plugin-path', envPath('TORPOR_PLUGIN_PATH')],
            { stdio: ['ignore', logFd, logFd], cwd: this.dir });
        fs.closeSync(logFd);
        this.exited = new Promise((resolve) => {
            this.proc.on('exit', (code, sig) => {
                this.exit = { code, sig };
                resolve(this.exit);
            });
            this.proc.on('error', (err) => {
                this.exit = { code: null, sig: null, err };
                resolve(this.exit);
            });
        });
        // With listen_tls in the config, both listeners must be up; the
        // plain one opens first.
        const wantTls = /^listen_tls\s*=/m.test(fs.readFileSync(this.configPath, 'utf8'));
        const deadline = Date.now() + START_TIMEOUT_MS;
        while (Date.now() < deadline) {
            const plain = /listening on "127\.0\.0\.1:(\d+)"\n/.exec(this.log());
            const tls = /listening on "127\.0\.0\.1:(\d+)" with TLS/.exec(this.log());
            if (plain && (tls || !wantTls)) {
                this.port = Number(plain[1]);
                this.tlsPort = tls ? Number(tls[1]) : null;
                return this.port;
            }
            if (this.exit) {
                throw new TestFailure(`torpord exited (${JSON.stringify(this.exit)}) before listening; log:\n${this.log()}`);
            }
            await sleep(50);
        }
        throw new TestFailure(`torpord logged no listening line within ${START_TIMEOUT_MS} ms; log:\n${this.log()}`);
    }

    // stop sends sig and waits bounded; returns { code, sig } or null.
    async stop(sig = 'SIGTERM') {
        if (!this.proc) {
            return null;
        }
        if (!this.exit) {
            this.proc.kill(sig);
        }
        const done = await Promise.race([this.exited, sleep(STOP_TIMEOUT_MS).then(() => null)]);
        if (!done) {
            this.proc.kill('SIGKILL');
            await Promise.race([this.exited, sleep(5000)]);
        }
        return done;
    }

    uri(p) {
        return `ws://127.0.0.1:${this.port}${p}`;
    }

    cleanup() {
        if (this.proc && !this.exit) {
            this.proc.kill('SIGKILL');
        }
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

function diag(text) {
    for (const line of String(text).split('\n')) {
        console.log(`# ${line}`);
    }
}

// runSuite runs tests, [name, async fn(daemon)] pairs, on one torpord as
// TAP, then checks that SIGTERM stops it with exit 0 and no sanitizer
// report.  Exits the process, non-zero if anything failed.
export async function runSuite(tests, config = RELAY_CONFIG) {
    const plan = tests.length + 1;
    console.log(`1..${plan}`);
    let failed = 0;
    const d = new Daemon(config);
    process.on('exit', () => d.cleanup());
    let startError = null;
    try {
        await d.start();
    } catch (err) {
        startError = err;
    }
    for (let k = 0; k < tests.length; k++) {
        const [name, fn] = tests[k];
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
    const name = 'torpord exits 0 on SIGTERM with no sanitizer report';
    try {
        if (startError) {
            throw startError;
        }
        const exit = await d.stop('SIGTERM');
        check(exit !== null, `torpord did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
        const bad = d.log().split('\n').filter((l) => SANITIZER.test(l));
        check(bad.length === 0, `sanitizer reports:\n${bad.join('\n')}`);
        checkEq(exit, { code: 0, sig: null }, 'exit status');
        console.log(`ok ${plan} - ${name}`);
    } catch (err) {
        failed++;
        console.log(`not ok ${plan} - ${name}`);
        diag(err instanceof TestFailure ? err.message : err.stack);
    }
    process.exit(failed ? 1 : 0);
}

// importOrFail loads a package from tests/node/node_modules, or prints a
// failing TAP plan: a missing prerequisite is a failure, never a skip.
export async function importOrFail(name) {
    try {
        return await import(name);
    } catch (err) {
        console.log('1..1');
        console.log(`not ok 1 - the ${name} package is installed`);
        console.log(`# ${err.message}`);
        console.log('# run `npm ci --prefix tests/node` in the source tree');
        process.exit(1);
    }
}
