// rtclient.mjs - a tiny JSON-RPC client for the Copilot runtime (Content-Length framing over
// stdio), used by the benchmark as the "direct" baseline and by tests/e2e/00-fake.test.mjs to
// check the fake model against the real runtime.
//
//   const rt = await Runtime.start({ home });           // spawn + connect
//   const r = await rt.turn({ providerUrl, prompt });   // create, send, wait idle, delete
//   await rt.stop();
//
// turn() is what a careful client does per request: its own session id (events can precede
// the create reply), session.create with a BYOK provider and replace-mode system message,
// session.send, wait for session.idle (or session.error), session.delete.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const RUNTIME_BIN =
  process.env.COPILOT_RUNTIME_BIN ||
  join(ROOT, 'node_modules/@github/copilot-sdk-linux-x64/prebuilds/linux-x64/copilot-runtime');

const HEADER_END = Buffer.from('\r\n\r\n');

/** Splits a byte stream into Content-Length framed JSON messages. */
class Framer {
  constructor(onMessage) {
    this.buf = Buffer.alloc(0);
    this.onMessage = onMessage;
  }
  push(data) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    for (;;) {
      const end = this.buf.indexOf(HEADER_END);
      if (end < 0) return;
      const header = this.buf.subarray(0, end).toString('ascii');
      const m = /content-length:\s*(\d+)/i.exec(header);
      if (!m) throw new Error(`rtclient: frame header without Content-Length: ${header}`);
      const len = Number(m[1]);
      const start = end + HEADER_END.length;
      if (this.buf.length < start + len) return;
      const body = this.buf.subarray(start, start + len).toString('utf8');
      this.buf = this.buf.subarray(start + len);
      this.onMessage(JSON.parse(body));
    }
  }
}

export class Runtime {
  /**
   * Spawns the runtime and sends `connect`. Options: bin, home (COPILOT_HOME; a temporary
   * directory, removed by stop(), when absent), env, cwd, connectTimeoutMs.
   */
  static async start({ bin = RUNTIME_BIN, home, env = {}, cwd, connectTimeoutMs = 30_000 } = {}) {
    const ownHome = !home;
    const dir = home || mkdtempSync(join(tmpdir(), 'rtclient-'));
    const child = spawn(bin, ['--headless', '--no-auto-update', '--no-auto-login', '--stdio'], {
      env: { ...process.env, ...env, COPILOT_HOME: dir },
      cwd: cwd || dir,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const rt = new Runtime(child, dir, ownHome);
    rt.connectInfo = await rt.request('connect', {
      supportedTaskKinds: ['agent', 'client', 'shell'],
      clientInfo: { editorName: 'gw-bench', editorVersion: '0.1.0' },
    }, { timeoutMs: connectTimeoutMs });
    if (rt.connectInfo.protocolVersion !== 3) {
      await rt.stop();
      throw new Error(`rtclient: unsupported protocolVersion ${rt.connectInfo.protocolVersion}`);
    }
    return rt;
  }

  constructor(child, home, ownHome) {
    this.child = child;
    this.home = home;
    this.ownHome = ownHome;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map(); /* sessionId -> fn(event) */
    this.stderr = '';
    this.exited = null;
    const framer = new Framer((msg) => this.dispatch(msg));
    child.stdout.on('data', (d) => framer.push(d));
    child.stderr.on('data', (d) => {
      this.stderr += d.toString();
    });
    child.stdin.on('error', () => {});
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        const err = new Error(`rtclient: runtime exited (code ${code}, signal ${signal})`);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        for (const fn of this.listeners.values()) fn({ type: '__exit', data: { code, signal } });
        resolve(this.exited);
      });
    });
  }

  get pid() {
    return this.child.pid;
  }

  write(msg) {
    const body = Buffer.from(JSON.stringify(msg), 'utf8');
    this.child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]));
  }

  dispatch(msg) {
    if (msg.method && msg.id !== undefined && msg.id !== null) {
      /* A runtime->client request we do not implement. */
      this.write({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `Unhandled method ${msg.method}` } });
      return;
    }
    if (msg.method === 'session.event') {
      const fn = this.listeners.get(msg.params?.sessionId);
      if (fn) fn(msg.params.event);
      return;
    }
    if (msg.method) return; /* session.lifecycle, host.event */
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) {
      const e = new Error(`rtclient: ${p.method}: ${msg.error.message} (${msg.error.code})`);
      e.rpcError = msg.error;
      p.reject(e);
    } else {
      p.resolve(msg.result);
    }
  }

  /** Sends a request; resolves with its result, rejects on an error reply, exit or timeout. */
  request(method, params = {}, { timeoutMs = 60_000 } = {}) {
    if (this.exited) return Promise.reject(new Error('rtclient: runtime has exited'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`rtclient: ${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, method });
      this.write({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** Routes session.event notifications of sessionId to fn (null removes). */
  listen(sessionId, fn) {
    if (fn) this.listeners.set(sessionId, fn);
    else this.listeners.delete(sessionId);
  }

  /**
   * Creates a pure-model BYOK session. Returns its id. Options: providerUrl (…/v1), apiKey,
   * model, system, streaming, reasoningEffort, vision, onEvent.
   */
  async createSession({ providerUrl, apiKey = 'k', model = 'fake-model', system = 'You are a test assistant.',
    streaming = true, reasoningEffort, vision = false, onEvent, sessionId = randomUUID() } = {}) {
    if (onEvent) this.listen(sessionId, onEvent);
    const params = {
      sessionId,
      model,
      clientName: 'gw-bench',
      provider: { type: 'openai', baseUrl: providerUrl, apiKey },
      systemMessage: { mode: 'replace', content: system },
      availableTools: [],
      streaming,
      infiniteSessions: { enabled: false },
      requestPermission: false,
      envValueMode: 'direct',
      workingDirectory: this.home,
    };
    if (reasoningEffort) params.reasoningEffort = reasoningEffort;
    if (vision) params.modelCapabilities = { supports: { vision: true } };
    try {
      await this.request('session.create', params);
    } catch (e) {
      this.listen(sessionId, null);
      throw e;
    }
    return sessionId;
  }

  /**
   * One request the way a careful client makes it: create, send, wait for session.idle, delete.
   * Returns {content, reasoning, deltas, reasoningDeltas, error, usage, events, timing} where
   * timing = {created, firstDelta, idle, deleted} in ms since the call started (performance.now).
   */
  async turn({ providerUrl, prompt, apiKey, model, system, streaming = true, reasoningEffort, attachments,
    responseFormat, timeoutMs = 120_000, keepEvents = true } = {}) {
    const t0 = performance.now();
    const r = { content: '', reasoning: '', deltas: [], reasoningDeltas: [], error: null, usage: null, events: [], timing: {} };
    let resolveIdle;
    const idle = new Promise((resolve) => {
      resolveIdle = resolve;
    });
    const onEvent = (ev) => {
      if (keepEvents) r.events.push(ev);
      switch (ev.type) {
        case 'assistant.message_delta':
          if (r.timing.firstDelta === undefined) r.timing.firstDelta = performance.now() - t0;
          r.deltas.push(ev.data.deltaContent);
          break;
        case 'assistant.reasoning_delta':
          r.reasoningDeltas.push(ev.data.deltaContent);
          break;
        case 'assistant.message':
          if (!ev.agentId) r.content = ev.data.content ?? '';
          if (ev.data.reasoningText) r.reasoning = ev.data.reasoningText;
          break;
        case 'assistant.reasoning':
          r.reasoning = ev.data.content ?? r.reasoning;
          break;
        case 'assistant.usage':
          r.usage = ev.data;
          break;
        case 'session.error':
          r.error = ev.data;
          break;
        case 'session.idle':
        case '__exit':
          if (ev.type === '__exit') r.error = r.error || { message: 'runtime exited' };
          resolveIdle();
          break;
        default:
          break;
      }
    };
    const sessionId = await this.createSession({ providerUrl, apiKey, model, system, streaming, reasoningEffort,
      vision: !!attachments, onEvent });
    r.sessionId = sessionId;
    r.timing.created = performance.now() - t0;
    let timer;
    try {
      const params = { sessionId, prompt };
      if (attachments) params.attachments = attachments;
      if (responseFormat) params.responseFormat = responseFormat;
      await this.request('session.send', params);
      await Promise.race([
        idle,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`rtclient: turn timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      r.timing.idle = performance.now() - t0;
    } finally {
      clearTimeout(timer);
      this.listen(sessionId, null);
      if (!this.exited) {
        await this.request('session.delete', { sessionId }).catch(() => {});
      }
      r.timing.deleted = performance.now() - t0;
    }
    return r;
  }

  /** Closes stdin (the runtime exits 0 on EOF), then SIGTERM / SIGKILL if it lingers. */
  async stop({ graceMs = 3000 } = {}) {
    if (!this.exited) {
      this.child.stdin.end();
      const t = setTimeout(() => this.child.kill('SIGTERM'), graceMs);
      const k = setTimeout(() => this.child.kill('SIGKILL'), graceMs * 2);
      await this.exitPromise;
      clearTimeout(t);
      clearTimeout(k);
    }
    if (this.ownHome) rmSync(this.home, { recursive: true, force: true });
    return this.exited;
  }
}
