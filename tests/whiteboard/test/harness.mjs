// Test harness: starts the relay binary, connects real socket.io clients, reads /metrics.
//
// The server is `$CONVENE_BIN whiteboard` (CONVENE_BIN defaults to <target>/debug/convene,
// <target> being CARGO_TARGET_DIR or the repository's target/), or CONVENE_CMD when set (a
// whole command, words separated by spaces, e.g. the crate's example relay). The harness
// appends `--listen 127.0.0.1:0` and, when a test needs other limits, `--config FILE` with a
// [whiteboard] section.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { io as io4 } from 'sio4';
import io2 from 'sio2';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const target = process.env.CARGO_TARGET_DIR || join(repo, 'target');
const command = process.env.CONVENE_CMD
  ? process.env.CONVENE_CMD.split(' ').filter(Boolean)
  : [process.env.CONVENE_BIN || join(target, 'debug', 'convene'), 'whiteboard'];

const ANSI = /\x1b\[[0-9;]*m/g;

/** Starts the relay; `config` is an object of [whiteboard] keys (TOML values as JS literals). */
export async function startServer(config = {}) {
  const args = [...command.slice(1), '--listen', '127.0.0.1:0'];
  if (Object.keys(config).length > 0) {
    const dir = mkdtempSync(join(tmpdir(), 'convene-wb-'));
    const file = join(dir, 'convene.toml');
    const lines = Object.entries(config).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
    writeFileSync(file, `[whiteboard]\n${lines.join('\n')}\n`);
    args.push('--config', file);
  }
  const child = spawn(command[0], args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1' },
  });
  // Never leave a server behind, even if this process dies mid-test.
  process.on('exit', () => child.kill('SIGKILL'));
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20000);
    const onData = (chunk) => {
      output += chunk.toString().replace(ANSI, '');
      const m = output.match(/http listening on (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  return {
    url,
    child,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Parses /metrics into { 'name{labels}': value }. */
export async function metrics(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

/** Sum of every sample of `name` whose labels contain all of `labels` (e.g. 'reason="oversized"'). */
export function sum(m, name, ...labels) {
  let total = 0;
  for (const [key, value] of Object.entries(m)) {
    const base = key.split('{')[0];
    if (base === name && labels.every((l) => key.includes(l))) total += value;
  }
  return total;
}

/** Polls until `check()` is truthy, or fails with `what`. */
export async function eventually(what, check, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const EVENTS = [
  'init-room', 'first-in-room', 'new-user', 'room-user-change', 'client-broadcast',
  'user-follow-room-change', 'broadcast-unfollow', 'room-full',
];

/** The client kinds real deployments use: library version × transport. */
export const KINDS = [
  { name: 'v4/websocket', lib: 4, transports: ['websocket'] },
  { name: 'v4/polling', lib: 4, transports: ['polling'] },
  { name: 'v4/upgrade', lib: 4, transports: ['polling', 'websocket'] },
  { name: 'v3/websocket', lib: 2, transports: ['websocket'] },
  { name: 'v3/polling', lib: 2, transports: ['polling'] },
  // Clients without binary XHR ask for base64 payloads (b64=1).
  { name: 'v3/polling-b64', lib: 2, transports: ['polling'], forceBase64: true },
];
export const kind = (name) => KINDS.find((k) => k.name === name);

/**
 * A connected client that records every protocol event in arrival order, so tests can
 * wait for the next one of a kind and also assert that something did NOT arrive.
 */
export class Client {
  constructor(server, k, query = '') {
    this.kind = k;
    const url = server.url + query;
    const opts = {
      transports: k.transports, forceNew: true, reconnection: false, timeout: 5000, forceBase64: !!k.forceBase64,
    };
    this.socket = k.lib === 4 ? io4(url, opts) : io2(url, opts);
    this.events = [];
    this.waiters = [];
    this.disconnected = false;
    for (const name of EVENTS) {
      this.socket.on(name, (...args) => this.push(name, args));
    }
    this.socket.on('disconnect', (reason) => {
      this.disconnected = true;
      this.push('disconnect', [reason]);
    });
  }

  push(name, args) {
    this.events.push({ name, args });
    for (const w of [...this.waiters]) w();
  }

  get id() {
    return this.socket.id;
  }

  /** Resolves when connected and `init-room` arrived. */
  async ready() {
    await this.next('init-room');
    if (!this.socket.connected) throw new Error('init-room before connect');
    return this;
  }

  /** Removes and returns the first recorded `name` event (waiting for it if needed). */
  next(name, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = this.events.findIndex((e) => e.name === name);
        if (at >= 0) {
          const [e] = this.events.splice(at, 1);
          cleanup();
          resolve(e.args);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.kind.name} ${this.id}: no '${name}' within ${timeoutMs} ms; got ${this.events.map((e) => e.name)}`));
      }, timeoutMs);
      const waiter = () => check();
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      if (!check()) this.waiters.push(waiter);
    });
  }

  /** Recorded events of `name` not yet taken by next(). */
  pending(name) {
    return this.events.filter((e) => e.name === name);
  }

  emit(...args) {
    this.socket.emit(...args);
  }

  /** Joins the way Excalidraw does (after init-room); returns the room-user-change list. */
  async join(room) {
    this.emit('join-room', room);
    const [ids] = await this.next('room-user-change');
    return ids;
  }

  close() {
    this.socket.close();
  }
}

/** Opens a client of kind `k` and waits for init-room. */
export async function connect(server, k, query) {
  return new Client(server, typeof k === 'string' ? kind(k) : k, query).ready();
}

export const roomName = () => randomBytes(10).toString('hex');

/** Ciphertext-like payload and 12-byte IV, as Excalidraw sends them. */
export function payload(size = 1024) {
  const data = randomBytes(size);
  const iv = randomBytes(12);
  return {
    data,
    iv,
    // Excalidraw sends the ciphertext as an ArrayBuffer and the IV as a Uint8Array.
    args: [data.buffer.slice(data.byteOffset, data.byteOffset + data.length), new Uint8Array(iv)],
  };
}

/** Asserts a received client-broadcast carries exactly `p`'s bytes. */
export function sameBytes(received, p) {
  const [data, iv] = received.map((x) => Buffer.from(x instanceof ArrayBuffer ? new Uint8Array(x) : x));
  return received.length === 2 && data.equals(p.data) && iv.equals(p.iv);
}
