#!/usr/bin/env node
// torpor-moderator-node: a backend worker in Node.js, the chat moderator
// of examples/workers/c/moderator.c with the same rules, word for word.
//
//   node moderator.mjs --url tcp://127.0.0.1:5600 [--words darn,heck]
//                      [--max-warnings 3] [--name NAME] [--proto-dir DIR]
//
// It speaks nng's REP protocol itself (sp_rep.mjs) and reads the messages
// with protobufjs straight from the .proto files: schemas/ of the torpor
// source tree by default, or --proto-dir.  Each event is logged on
// stderr, one line, starting with the worker's name.
//
// The rules:
//   a client joins      it gets "welcome USER"; the others "USER joined"
//   a text message      the others get "USER: TEXT"
//   ... with a refused  it is not relayed; the sender gets "warning N of
//   word                MAX: message refused", and at the MAXth warning
//                       is closed with 1008 "too many warnings"
//   "!warnings"         the sender gets "warnings N"
//   "!remind MS TEXT"   the sender gets "reminder set"; MS ms later the
//                       whole room gets "reminder: TEXT" (TEXT up to 1000
//                       bytes, or the sender gets "reminder too long")
//   a binary message    the sender is closed with 1003 "text only"
//   a client leaves     the others get "USER left"
//
// USER is the client's first tag, kept as its attachment, or "guest-ID".
// All state is in the room's storage: "warnings/USER", and a reminder's
// text under its alarm's name.  A key is read in a second step: the first
// reply asks for it, with a continuation saying why.

import path from "node:path";
import { fileURLToPath } from "node:url";

import Long from "long";
import protobuf from "protobufjs";

import { RepDialer } from "./sp_rep.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

function options(argv) {
  const o = {
    url: null,
    words: ["darn", "heck"],
    maxWarnings: 3,
    name: "node-worker",
    protoDir: path.resolve(here, "../../../schemas"),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) {
      usage();
    }
    if (k === "--url") o.url = v;
    else if (k === "--words") o.words = v.split(",").map((w) => w.toLowerCase());
    else if (k === "--max-warnings") o.maxWarnings = Number(v);
    else if (k === "--name") o.name = v;
    else if (k === "--proto-dir") o.protoDir = v;
    else usage();
  }
  if (!o.url || !(o.maxWarnings > 0)) {
    usage();
  }
  return o;
}

function usage() {
  process.stderr.write("usage: moderator.mjs --url URL [--words W1,W2] [--max-warnings N] [--name NAME] [--proto-dir DIR]\n");
  process.exit(2);
}

function loadSchema(dir) {
  protobuf.util.Long = Long;   // 64-bit ids stay exact
  protobuf.configure();
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => path.join(dir, target);
  root.loadSync("torpor/backend.proto", { keepCase: true });
  return {
    Request: root.lookupType("torpor.backend.Request"),
    Reply: root.lookupType("torpor.backend.Reply"),
  };
}

const TEXT = 1;
const BINARY = 2;

// A reply under construction, in the order torpord applies it.
class Reply {
  constructor(req) {
    this.msg = {
      version: 1, event_id: req.event_id, step: req.step,
      actions: [], reads: [],
    };
  }
  send(conn, text) {
    this.msg.actions.push({ send: { conn_id: conn, message: textMessage(text) } });
  }
  broadcast(text, exclude) {
    this.msg.actions.push({ broadcast: { message: textMessage(text), exclude } });
  }
  close(conn, code, reason) {
    this.msg.actions.push({ close: { conn_id: conn, code, reason: Buffer.from(reason) } });
  }
  setAttachment(conn, text) {
    this.msg.actions.push({ set_attachment: { conn_id: conn, data: Buffer.from(text) } });
  }
  put(key, value) {
    this.msg.actions.push({ put: { key: Buffer.from(key), value: Buffer.from(value) } });
  }
  delete(key) {
    this.msg.actions.push({ delete: { key: Buffer.from(key) } });
  }
  setAlarm(name, delayMs) {
    this.msg.actions.push({ set_alarm: { name, delay_ms: delayMs } });
  }
  get(key, continuation) {
    this.msg.reads.push({ get: { keys: [Buffer.from(key)] } });
    this.msg.continuation = Buffer.from(continuation);
  }
}

function textMessage(text) {
  return { kind: TEXT, data: Buffer.from(text) };
}

function userOf(req) {
  const c = req.conn;
  if (c && c.attachment && c.attachment.length > 0) {
    return Buffer.from(c.attachment).toString();
  }
  if (c && c.tags && c.tags.length > 0 && c.tags[0].length > 0) {
    return Buffer.from(c.tags[0]).toString();
  }
  return `guest-${c ? c.id.toString() : "0"}`;
}

// continued: whether this step carries the continuation what.
function continued(req, what) {
  return req.step > 0 && Buffer.from(req.continuation || []).toString() === what;
}

// firstValue: the value of the first key the last step read, or null.
function firstValue(req) {
  const r = req.results && req.results[0];
  const e = r && r.entries && r.entries[0];
  return e && e.found ? Buffer.from(e.value).toString() : null;
}

function moderateMessage(o, req, user, reply) {
  const m = req.event.message;
  const id = req.conn.id;
  if (m.kind !== TEXT) {
    reply.close(id, 1003, "text only");
    return;
  }
  const text = Buffer.from(m.data).toString();
  const key = `warnings/${user}`;
  if (text === "!warnings") {
    if (!continued(req, "count")) {
      reply.get(key, "count");
    } else {
      reply.send(id, `warnings ${firstValue(req) ?? "0"}`);
    }
  } else if (text.startsWith("!remind ")) {
    const m2 = /^(\d+) (.*)$/s.exec(text.slice(8));
    if (!m2) {
      reply.send(id, "usage: !remind MS TEXT");
      return;
    }
    if (Buffer.byteLength(m2[2]) > 1000) {
      reply.send(id, "reminder too long");
      return;
    }
    const name = `reminder/${req.event_id.toString()}`;
    reply.put(name, m2[2]);
    reply.setAlarm(name, Number(m2[1]));
    reply.send(id, "reminder set");
  } else if (o.words.some((w) => text.toLowerCase().includes(w))) {
    if (!continued(req, "warn")) {
      reply.get(key, "warn");
      return;
    }
    const warnings = Number(firstValue(req) ?? "0") + 1;
    reply.put(key, String(warnings));
    reply.send(id, `warning ${warnings} of ${o.maxWarnings}: message refused`);
    if (warnings >= o.maxWarnings) {
      reply.close(id, 1008, "too many warnings");
    }
  } else {
    reply.broadcast(`${user}: ${text}`, id);
  }
}

function moderateAlarm(req, reply) {
  const name = req.event.alarm.name;
  if (!name.startsWith("reminder/")) {
    return;   // not ours: succeeding deletes it
  }
  if (!continued(req, "remind")) {
    reply.get(name, "remind");
    return;
  }
  const text = firstValue(req);
  if (text !== null) {
    reply.broadcast(`reminder: ${text}`, Long.UZERO);
    reply.delete(name);
  }
}

function moderate(o, req, reply) {
  const ev = req.event;
  const user = userOf(req);
  switch (ev.body) {
    case "open":
      reply.setAttachment(req.conn.id, user);
      reply.send(req.conn.id, `welcome ${user}`);
      reply.broadcast(`${user} joined`, req.conn.id);
      break;
    case "message":
      moderateMessage(o, req, user, reply);
      break;
    case "close":
      reply.broadcast(`${user} left`, req.conn.id);
      break;
    case "alarm":
      moderateAlarm(req, reply);
      break;
    default:
      break;
  }
}

function main() {
  const o = options(process.argv.slice(2));
  const { Request, Reply: ReplyType } = loadSchema(o.protoDir);
  const log = (line) => process.stderr.write(`${o.name}: ${line}\n`);
  const handle = (body) => {
    const req = Request.decode(body);
    if (req.version !== 1 || !req.event) {
      log(`refusing a request that is not protocol version 1 (${body.length} bytes)`);
      return null;
    }
    const conn = req.conn ? req.conn.id.toString() : "0";
    log(`event ${req.event_id.toString()} step ${req.step} attempt ${req.attempt}: ${req.event.body} of conn ${conn}`);
    const reply = new Reply(req);
    moderate(o, req, reply);
    return ReplyType.encode(ReplyType.fromObject(reply.msg)).finish();
  };
  const dialer = new RepDialer(o.url, handle, { log });
  const stop = () => {
    dialer.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  log(`pid ${process.pid} serving "${o.url}"`);
  dialer.start();
}

main();
