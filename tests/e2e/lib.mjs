// lib.mjs - end-to-end harness: the real gateway binary, driving the real Copilot runtime,
// whose BYOK provider is our fake model (tests/fake/fakemodel.mjs).
//
//   const fake = await startFake();
//   const gw = await startGateway({ fake, args: ['--turn-timeout-ms', '2000'] });
//   const client = openaiClient(gw);
//   ...
//   await gw.stop(); await fake.close();
//
// or, for a file whose tests share one fake model and one gateway, at the top level:
//
//   const ctx = useGateway({ args: ['--turn-timeout-ms', '2000'] });
//   test('…', async () => { ctx.fake.script(…); await ctx.client.chat.completions.create(…); });
//
// Environment: COPILOT_GATEWAY_BIN (default build/copilot-gateway), GW_TEST_VERBOSE=1 (stream
// the gateway's stderr), GW_KEEP_TMP=1 (keep the temporary home/data directories).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { startFake } from '../fake/fakemodel.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const GATEWAY_BIN = resolve(ROOT, process.env.COPILOT_GATEWAY_BIN || 'build/copilot-gateway');
export const VERBOSE = process.env.GW_TEST_VERBOSE === '1';

const START_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;
const STDERR_MAX = 4 * 1024 * 1024;

/* Every gateway this process started, so a failing test can print their logs, and so that
 * none outlives the test process. */
const live = new Set();
process.on('exit', () => {
  for (const g of live) {
    try {
      g.proc.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls fn() until it returns a truthy value (which is returned) or timeoutMs passes
 * (then throws, with `what` and the last value or error in the message).
 */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

function tail(text, lines = 200) {
  const all = text.split('\n');
  return all.slice(-lines).join('\n');
}

/**
 * Starts `copilot-gateway serve` on an ephemeral loopback port against the fake model.
 * Options: fake (a startFake() handle, or a base URL "http://127.0.0.1:P"), args (extra CLI
 * arguments), env (extra environment), providerKey (default "test-key"), readyTimeoutMs,
 * wrap (a command line to run the gateway under, e.g. ['prlimit', '--nofile=128', '--']).
 * Resolves once the gateway logged "listening on http://…" and GET /readyz answered 200.
 * Returns {url, baseURL, proc, home, data, tmp, stderr(), stop(), kill(sig), readyz(),
 * runtime(), exited}.
 */
export async function startGateway({
  fake, args = [], env = {}, providerKey = 'test-key', readyTimeoutMs = READY_TIMEOUT_MS,
  byok = true, ready = (r) => r.status === 200, wrap = [], bin = GATEWAY_BIN,
} = {}) {
  if (!existsSync(bin)) {
    throw new Error(`gateway binary not found at ${bin} (build it with make, or set COPILOT_GATEWAY_BIN)`);
  }
  const fakeUrl = typeof fake === 'string' ? fake : fake?.url;
  if (byok && !fakeUrl) throw new Error('startGateway: needs {fake} (or byok: false)');
  const tmp = mkdtempSync(join(tmpdir(), 'gw-e2e-'));
  const home = join(tmp, 'home');
  const data = join(tmp, 'data');
  const argv = [
    'serve',
    '--listen', '127.0.0.1:0',
    '--home', home,
    '--data', data,
    ...(byok ? ['--provider-url', `${fakeUrl}/v1`, '--provider-key', providerKey, '--provider-type', 'openai'] : []),
    '--log-level', 'debug',
    '--runtime-pool', '1', // one runtime unless a test asks for more (a later flag wins)
    ...args,
  ];
  /* wrap: a command to run the gateway under, e.g. ['prlimit', '--nofile=128', '--']. */
  const proc = spawn(wrap.length ? wrap[0] : bin, wrap.length ? [...wrap.slice(1), bin, ...argv] : argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const capture = (d) => {
    const s = d.toString();
    if (VERBOSE) process.stderr.write(s.replace(/^/gm, '[gw] '));
    err += s;
    if (err.length > STDERR_MAX) err = err.slice(-STDERR_MAX / 2);
  };
  proc.stderr.on('data', capture);
  proc.stdout.on('data', capture);

  const gw = {
    proc, tmp, home, data, args,
    url: null, baseURL: null,
    exited: null,
    stderr: () => err,
  };
  const exitPromise = new Promise((res) => {
    proc.on('exit', (code, signal) => {
      gw.exited = { code, signal };
      live.delete(gw);
      res(gw.exited);
    });
  });
  live.add(gw);

  gw.kill = (sig = 'SIGKILL') => proc.kill(sig);

  /** SIGTERM, wait for exit (bounded, then SIGKILL); resolves to the exit code (null if signalled). */
  gw.stop = async ({ timeoutMs = STOP_TIMEOUT_MS } = {}) => {
    if (!gw.exited) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      await exitPromise;
      clearTimeout(t);
    }
    if (process.env.GW_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true });
    return gw.exited.code;
  };
  gw.waitExit = () => exitPromise;

  /** GET /readyz: {status (HTTP), body (parsed JSON or null)}. */
  gw.readyz = async () => {
    const r = await fetch(`${gw.url}/readyz`);
    const text = await r.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body };
  };
  /** The runtime section of /readyz: {state, pid, version, generation}. */
  gw.runtime = async () => (await gw.readyz()).body?.runtime;

  const fail = async (msg) => {
    proc.kill('SIGKILL');
    await exitPromise;
    if (process.env.GW_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true });
    throw new Error(`${msg}\n--- gateway stderr (tail) ---\n${tail(err)}`);
  };

  /* 1. Wait for the listening line (or an early exit). */
  const listenRe = /listening on http:\/\/(127\.0\.0\.1:\d+)/;
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!listenRe.test(err)) {
    if (gw.exited) return fail(`gateway exited before listening (code ${gw.exited.code}, signal ${gw.exited.signal})`);
    if (Date.now() > deadline) return fail(`gateway did not log "listening on http://…" within ${START_TIMEOUT_MS} ms`);
    await sleep(20);
  }
  gw.url = `http://${listenRe.exec(err)[1]}`;
  gw.baseURL = `${gw.url}/v1`;

  /* 2. Wait for /readyz 200. */
  try {
    await waitFor(async () => {
      if (gw.exited) throw new Error(`gateway exited (code ${gw.exited.code})`);
      return ready(await gw.readyz());
    }, { timeoutMs: readyTimeoutMs, intervalMs: 100, what: 'GET /readyz in the expected state' });
  } catch (e) {
    return fail(e.message);
  }
  return gw;
}

/** The official OpenAI client pointed at a gateway (no retries: every error must surface). */
export function openaiClient(gw, opts = {}) {
  return new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120_000, ...opts });
}

/**
 * The set-up most test files share, as node:test before/after hooks of the calling file:
 * before its tests, a fake model, a gateway against it (startGateway() options `opts`, e.g.
 * {args}; and fakeModels, the ids the fake lists) and an openai client for that gateway;
 * after them, the gateway is stopped and must exit 0 on SIGTERM, and the fake is closed. Returns {fake, gw, client}, filled in by the time
 * the tests run.
 */
export function useGateway(opts = {}) {
  const ctx = { fake: null, gw: null, client: null };
  before(async () => {
    ctx.fake = await startFake(opts.fakeModels ? { models: opts.fakeModels } : {});
    ctx.gw = await startGateway({ ...opts, fake: ctx.fake });
    ctx.client = openaiClient(ctx.gw);
  }, { timeout: 90_000 });
  after(async () => {
    try {
      if (ctx.gw) assert.equal(await ctx.gw.stop(), 0, 'gateway exits 0 on SIGTERM');
    } finally {
      await ctx.fake?.close();
    }
  });
  return ctx;
}

/**
 * node:test's test(), but a failure also prints the stderr tail of every gateway this process
 * has running (all of it with GW_TEST_VERBOSE=1 already streamed).
 */
export function test(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  return nodeTest(name, opts, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      if (!VERBOSE) {
        for (const g of live) {
          process.stderr.write(`\n--- gateway ${g.url} stderr (tail), test "${name}" failed ---\n${tail(g.stderr())}\n---\n`);
        }
      }
      throw e;
    }
  });
}

/** Raw HTTP helper: fetch with a JSON body; returns {status, headers, text, json}. */
export async function http(gw, method, path, { body, headers = {}, raw } = {}) {
  const init = { method, headers: { ...headers } };
  if (raw !== undefined) {
    init.body = raw;
    if (!init.headers['content-type']) init.headers['content-type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const r = await fetch(`${gw.url}${path}`, init);
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, headers: r.headers, text, json };
}

/** Things no error body may contain: file paths, stack traces, the provider key. */
export const LEAKS = ['/work', '/tmp', 'node_modules', '    at ', 'test-key'];

export function assertNoLeaks(text, where = 'error body') {
  for (const s of LEAKS) {
    assert.ok(!text.includes(s), `${where} leaks ${JSON.stringify(s)}: ${text}`);
  }
}

/**
 * Checks an OpenAI-shaped error body {error:{message,type,param,code}} (given parsed) and the
 * expected fields of `want` ({param, code, type}, each only when present), plus no leaks.
 */
export function assertOpenAIError(body, want = {}, where = 'error body') {
  assert.ok(body && typeof body === 'object' && body.error && typeof body.error === 'object',
    `${where}: not an OpenAI error object: ${JSON.stringify(body)}`);
  const e = body.error;
  assert.equal(typeof e.message, 'string', `${where}: error.message must be a string`);
  assert.ok(e.message.length > 0, `${where}: error.message is empty`);
  assert.equal(typeof e.type, 'string', `${where}: error.type must be a string`);
  assert.ok('param' in e, `${where}: error.param missing (null is fine)`);
  assert.ok('code' in e, `${where}: error.code missing (null is fine)`);
  for (const k of ['param', 'code', 'type']) {
    if (k in want) assert.equal(e[k], want[k], `${where}: error.${k}`);
  }
  assertNoLeaks(JSON.stringify(body), where);
}

/**
 * Runs `fn` (an openai-client call) and returns the APIError it must throw, after checking
 * its status and OpenAI error fields.
 */
export async function expectAPIError(fn, { status, param, code, type } = {}) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an APIError with status ${status}, but the call succeeded`);
  assert.ok(err instanceof OpenAI.APIError, `expected OpenAI.APIError, got ${err?.constructor?.name}: ${err?.message}`);
  if (status !== undefined) assert.equal(err.status, status, `status (error: ${err.message})`);
  const want = {};
  if (param !== undefined) want.param = param;
  if (code !== undefined) want.code = code;
  if (type !== undefined) want.type = type;
  assertOpenAIError({ error: err.error }, want, `${status} error`);
  if (param !== undefined) assert.equal(err.param, param);
  if (code !== undefined) assert.equal(err.code, code);
  assertNoLeaks(err.message, 'error message');
  return err;
}

/** Text of an OpenAI message content (string, or the text parts of an array). */
export function textOf(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.filter((p) => p?.type === 'text').map((p) => p.text).join('\n');
  return content == null ? '' : String(content);
}

export const stripDatetime = (s) => (typeof s === 'string' ? s.replace(/^<current_datetime>[\s\S]*?<\/current_datetime>\n\n/, '') : s);

/** A token unique to this run, for matching fake rules and log entries. */
let tokenSeq = 0;
export function uniq(prefix = 'T') {
  tokenSeq += 1;
  return `${prefix}${tokenSeq}x${Math.random().toString(36).slice(2, 8)}`;
}

/** Session directories under <home>/session-state (names only; [] when absent). */
export function sessionDirs(home) {
  const dir = join(home, 'session-state');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isDirectory());
}

/** Collects an openai-client stream: {chunks, content, reasoning, error, usageChunk}. */
export async function collectStream(stream, onChunk) {
  const out = { chunks: [], content: '', reasoning: '', error: null, usageChunk: null };
  try {
    for await (const c of stream) {
      out.chunks.push(c);
      const d = c.choices?.[0]?.delta;
      if (d?.content) out.content += d.content;
      if (d?.reasoning_content) out.reasoning += d.reasoning_content;
      if (c.usage) out.usageChunk = c;
      if (onChunk) await onChunk(c, out);
    }
  } catch (e) {
    out.error = e;
  }
  return out;
}

/** A 1x1 transparent PNG. */
export const TINY_PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

/**
 * GET /metrics (Prometheus text format) parsed into a plain object: series → number. A series
 * without labels is keyed by its name ("copilot_gateway_sessions_live"); one with labels by the
 * name and its labels sorted by label name, as written in the exposition format
 * ('copilot_gateway_requests_total{route="/v1/chat/completions",status="200"}'). Comments and
 * blank lines are skipped; "+Inf", "-Inf" and "NaN" values parse as numbers. Throws when the
 * endpoint does not answer 200.
 */
export async function metrics(gw) {
  /* Behind --api-key, /metrics needs a key: the first one the gateway was started with. */
  const k = gw.args?.indexOf('--api-key') ?? -1;
  const key = k >= 0 ? gw.args[k + 1].split(',')[0] : null;
  const r = await fetch(`${gw.url}/metrics`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  const text = await r.text();
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${text.slice(0, 200)}`);
  return parseMetrics(text);
}

/** Parses Prometheus text exposition (see metrics()). */
export function parseMetrics(text) {
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line);
    if (!m) continue;
    const [, name, , labelText, value] = m;
    let key = name;
    if (labelText !== undefined && labelText.trim() !== '') {
      const labels = [];
      const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      while ((lm = re.exec(labelText)) !== null) labels.push([lm[1], lm[2]]);
      labels.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      key = `${name}{${labels.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
    }
    const v = value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value);
    out[key] = v;
  }
  return out;
}

/** after[key] − before[key], a missing series counting as 0 (snapshots from metrics()). */
export function metricDelta(before, after, key) {
  return (after[key] ?? 0) - (before[key] ?? 0);
}

/** The copilot_gateway_sessions_* counters and gauges, as deltas between two metrics() snapshots. */
export function sessionDeltas(before, after) {
  const k = (n) => `copilot_gateway_sessions_${n}`;
  return {
    created: metricDelta(before, after, k('created_total')),
    reused: metricDelta(before, after, k('reused_total')),
    seeded: metricDelta(before, after, k('seeded_total')),
    live: metricDelta(before, after, k('live')),
    parked: metricDelta(before, after, k('parked')),
  };
}

/** Waits (bounded) until gw's session counters moved by exactly `want` since `before`, then checks. */
export async function expectSessions(gw, before, want, what) {
  let got;
  try {
    await waitFor(async () => {
      got = sessionDeltas(before, await metrics(gw));
      return Object.keys(want).every((k) => got[k] === want[k]);
    }, { timeoutMs: 5_000, what });
  } catch {
    /* fall through to a precise assertion message */
  }
  const picked = Object.fromEntries(Object.keys(want).map((k) => [k, got?.[k]]));
  assert.deepEqual(picked, want, `${what}: session metric deltas`);
}

/** [id, name, parsed arguments] of each OpenAI tool call. */
export const callsOf = (toolCalls) => (toolCalls ?? []).map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]);

/**
 * Runs a client CLI through the gateway's helper command, as a user would:
 * `copilot-gateway <command> --listen <gw> -- ...args` (command: 'claude' or 'codex'), with
 * the given environment only (plus nothing inherited), in cwd. Output is streamed to stderr
 * with GW_TEST_VERBOSE=1. Kills it after timeoutMs. Resolves {code, signal, stdout, stderr,
 * timedOut, cwd}.
 */
export function runClient(gw, command, args, { cwd, env, timeoutMs }) {
  return new Promise((resolve) => {
    const listen = gw.url.replace(/^http:\/\//, '');
    const proc = spawn(GATEWAY_BIN, [command, '--listen', listen, '--', ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; if (VERBOSE) process.stderr.write(`[${command} out] ${d}`); });
    proc.stderr.on('data', (d) => { stderr += d; if (VERBOSE) process.stderr.write(`[${command} err] ${d}`); });
    let timedOut = false;
    const t = setTimeout(() => { timedOut = true; proc.kill('SIGKILL'); }, timeoutMs);
    proc.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr, timedOut, cwd });
    });
  });
}

/** A free loopback port (bound and released: whatever is started next takes it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** GET /admin/audit{query} with the admin key; asserts 200 and returns the rows (`data`). */
export async function auditRows(gw, adminKey, query = '') {
  const r = await http(gw, 'GET', `/admin/audit${query}`, { headers: { authorization: `Bearer ${adminKey}` } });
  assert.equal(r.status, 200, r.text);
  return r.json.data;
}

/** The tool results (role "tool" message texts) in the model requests the fake logged for tok. */
export function toolResultsFor(fake, tok) {
  const out = [];
  for (const r of fake.requestsFor(tok)) {
    for (const m of r.body?.messages ?? []) if (m.role === 'tool') out.push(textOf(m.content));
  }
  return out;
}
