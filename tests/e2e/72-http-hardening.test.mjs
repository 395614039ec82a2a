// 72-http-hardening: what a web page, a broken client, a slow client or a flood of
// connections can do to the HTTP front (issue 8, items 1, 4, 6, 8, 9, 10).
//
// Raw sockets where a browser or a misbehaving client would send bytes no SDK sends: a
// foreign Host (DNS rebinding), malformed heads, a header trickled a byte at a time, a body
// over the limit that the client keeps sending, a client that never reads.

import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { startFake } from '../fake/fakemodel.mjs';
import {
  useGateway, startGateway, test, http, assertOpenAIError, uniq, waitFor,
} from './lib.mjs';

/** Splits raw response bytes into responses: [{status, headers (lowercase), body}]. */
function parseResponses(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const end = buf.indexOf('\r\n\r\n', i);
    if (end < 0) break;
    const lines = buf.subarray(i, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.(\d) (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`not a status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    const status = Number(m[2]);
    i = end + 4;
    let body = Buffer.alloc(0);
    if (status === 100) {
      out.push({ status, headers, body });
      continue;
    }
    if (headers['transfer-encoding'] === 'chunked') {
      const parts = [];
      for (;;) {
        const le = buf.indexOf('\r\n', i);
        if (le < 0) { i = buf.length; break; }
        const n = parseInt(buf.subarray(i, le).toString(), 16);
        i = le + 2;
        if (n === 0) { i += 2; break; }
        parts.push(buf.subarray(i, i + n));
        i += n + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = buf.subarray(i, i + n);
      i += n;
    } else {
      body = buf.subarray(i);
      i = buf.length;
    }
    out.push({ status, headers, body, text: body.toString() });
  }
  return out;
}

/**
 * Opens a connection, writes `data` (a string/Buffer or an array written in order), and
 * collects what comes back until the server closes the connection (or `untilMs` passes).
 * Resolves {buf, responses, closed, error}.
 */
function rawExchange(gw, data, { untilMs = 15_000 } = {}) {
  const { port } = new URL(gw.url);
  return new Promise((resolve) => {
    const chunks = [];
    let error = null;
    const s = net.connect(Number(port), '127.0.0.1', () => {
      for (const d of [].concat(data)) s.write(d);
    });
    const t = setTimeout(() => s.destroy(), untilMs);
    s.on('data', (d) => chunks.push(d));
    s.on('error', (e) => { error = e; });
    s.on('close', () => {
      clearTimeout(t);
      const buf = Buffer.concat(chunks);
      let responses = [];
      try {
        responses = parseResponses(buf);
      } catch (e) {
        error = error || e;
      }
      resolve({ buf, responses, error, text: buf.toString() });
    });
  });
}

function portOf(gw) {
  return Number(new URL(gw.url).port);
}

function chatBody(text, extra = {}) {
  return JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: text }], ...extra });
}

function assertJSONError(res, status, where) {
  assert.equal(res.status, status, `${where}: status`);
  assert.match(res.headers['content-type'] || '', /application\/json/, `${where}: content-type`);
  assertOpenAIError(JSON.parse(res.text), {}, where);
}

/* ---- one gateway for the guards and the framing ------------------------------------------ */

const ctx = useGateway({
  args: ['--cors-origins', 'http://app.example,null', '--allowed-hosts', 'gw.corp',
    /* --read-timeout-s bounds a whole body: 10 s cuts the 20 s trickle below, yet leaves an
     * ASan gateway on a busy machine time to read 32 MiB of chunked body before its 413. */
    '--header-timeout-s', '2', '--read-timeout-s', '10'],
});

test('a foreign Origin is refused (403) before the model is called, in each API shape', async () => {
  const tok = uniq('ORIGIN');
  const before = (await ctx.fake.log()).length;
  for (const origin of ['http://evil.example', 'null', 'https://app.example']) {
    const r = await http(ctx.gw, 'POST', '/v1/chat/completions', {
      body: JSON.parse(chatBody(tok)), headers: { origin },
    });
    assert.equal(r.status, 403, `${origin}: ${r.text}`);
    assertOpenAIError(r.json, {}, origin);
    assert.equal(r.headers.get('access-control-allow-origin'), null, `${origin}: no CORS header`);
  }
  const a = await http(ctx.gw, 'POST', '/v1/messages', {
    body: { model: 'fake-model', max_tokens: 50, messages: [{ role: 'user', content: tok }] },
    headers: { origin: 'http://evil.example', 'anthropic-version': '2023-06-01' },
  });
  assert.equal(a.status, 403);
  assert.equal(a.json?.type, 'error');
  assert.equal(typeof a.json?.error?.message, 'string');
  const m = await http(ctx.gw, 'GET', '/v1/models', { headers: { origin: 'http://evil.example' } });
  assert.equal(m.status, 403, 'a page cannot read the model list either');
  assert.equal((await ctx.fake.log()).length, before, 'the model was never called');
});

test('CORS only for --cors-origins: its preflight passes, a foreign preflight gets no CORS', async () => {
  const pre = (origin) => fetch(`${ctx.gw.url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type, authorization' },
  });
  const ok = await pre('http://app.example');
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get('access-control-allow-origin'), 'http://app.example');
  assert.match(ok.headers.get('access-control-allow-methods') || '', /POST/);
  for (const origin of ['http://evil.example', 'null']) {
    const bad = await pre(origin);
    assert.equal(bad.status, 403, origin);
    assert.equal(bad.headers.get('access-control-allow-origin'), null, origin);
    await bad.text();
  }
  const tok = uniq('CORS');
  const r = await http(ctx.gw, 'POST', '/v1/chat/completions', {
    body: JSON.parse(chatBody(tok)), headers: { origin: 'http://app.example' },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('access-control-allow-origin'), 'http://app.example');
  assert.match(r.json.choices[0].message.content, new RegExp(tok));
});

test('a page of the gateway itself (same origin) is served', async () => {
  const r = await http(ctx.gw, 'GET', '/v1/models', { headers: { origin: ctx.gw.url } });
  assert.equal(r.status, 200, r.text);
});

test('POST bodies must be JSON: text/plain and form bodies (no preflight needed) get 415', async () => {
  const body = chatBody(uniq('CT'));
  for (const ct of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x']) {
    const r = await fetch(`${ctx.gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': ct }, body,
    });
    const text = await r.text();
    assert.equal(r.status, 415, `${ct}: ${text}`);
    assertOpenAIError(JSON.parse(text), {}, ct);
  }
  const a = await fetch(`${ctx.gw.url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'text/plain' },
    body: JSON.stringify({ model: 'fake-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(a.status, 415);
  assert.equal((await a.json()).type, 'error', 'Anthropic shape on /v1/messages');
  const ok = await fetch(`${ctx.gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body,
  });
  assert.equal(ok.status, 200, 'application/json with a charset is JSON');
  await ok.text();
});

test('a Host that is neither loopback nor --allowed-hosts is refused (DNS rebinding)', async () => {
  const port = portOf(ctx.gw);
  const ask = (host, path = '/v1/models') =>
    rawExchange(ctx.gw, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`]) {
    const { responses } = await ask(host);
    assertJSONError(responses[0], 421, host);
    assert.match(JSON.parse(responses[0].text).error.message, /--allowed-hosts/);
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'gw.corp',
    'gw.corp:8443', `app.localhost:${port}`]) {
    const { responses } = await ask(host);
    assert.equal(responses[0]?.status, 200, `${host}: ${responses[0]?.text}`);
  }
  const { responses } = await ask('evil.example', '/healthz');
  assert.equal(responses[0].status, 200, 'liveness probes are answered whatever their Host');
});

/* ---- framing errors, all in JSON ---------------------------------------------------------- */

test('errors raised by the HTTP layer are JSON in the API shape', async () => {
  const cases = [
    ['HTTP/1.1 without Host', 'GET /v1/models HTTP/1.1\r\n\r\n', 400],
    ['garbage request line', 'HELLO\r\n\r\n', 400],
    ['a space before the colon', 'GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-A : 1\r\n\r\n', 400],
    ['a folded header line', 'GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n  2\r\n\r\n', 400],
    ['two Hosts', 'GET /v1/models HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n', 400],
    ['an unknown method', 'BREW /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n', 501],
    ['HTTP/2.0 in a text request line', 'GET /v1/models HTTP/2.0\r\nHost: localhost\r\n\r\n', 505],
    ['a transfer coding we cannot undo', 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n', 501],
    ['Content-Length and Transfer-Encoding together (smuggling)', 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['two different Content-Lengths', 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400],
    ['a header block over --max-header-bytes', `GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 431],
  ];
  for (const [what, bytes, status] of cases) {
    const { responses, buf } = await rawExchange(ctx.gw, bytes);
    assert.ok(responses[0], `${what}: no response (${buf.length} bytes)`);
    assertJSONError(responses[0], status, what);
    assert.equal(responses[0].headers.connection, 'close', `${what}: the connection is closed after it`);
  }
  const a = await rawExchange(ctx.gw, 'BREW /v1/messages HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.equal(JSON.parse(a.responses[0].text).type, 'error', 'Anthropic paths get Anthropic errors');
});

test('HEAD answers carry the headers of GET and no body', async () => {
  const { buf } = await rawExchange(ctx.gw,
    'HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  const text = buf.toString();
  const second = text.indexOf('HTTP/1.1', 1);
  assert.ok(second > 0, `two responses on one connection: ${text}`);
  const head = text.slice(0, second);
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /content-length: \d+/i);
  assert.ok(head.endsWith('\r\n\r\n'), `HEAD response has a body: ${JSON.stringify(head)}`);
  assert.match(text.slice(second), /^HTTP\/1\.1 200[\s\S]*"status":"ok"/);
});

test('keep-alive and pipelining: three requests on one connection, answered in order', async () => {
  const req = (id, last) => `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: ${id}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
  const { responses } = await rawExchange(ctx.gw, req('p-1') + req('p-2') + req('p-3', true));
  assert.deepEqual(responses.map((r) => [r.status, r.headers['x-request-id']]),
    [[200, 'p-1'], [200, 'p-2'], [200, 'p-3']]);
});

test('a 40 MiB body (over the 32 MiB limit) gets a JSON 413 the client can read, not a reset', async () => {
  const size = 40 * 1024 * 1024;
  const { responses, error } = await rawExchange(ctx.gw, [
    `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
    Buffer.alloc(size, 0x20),
  ], { untilMs: 60_000 });
  assert.equal(error?.code, undefined, `no transport error: ${error?.message}`);
  assertJSONError(responses[0], 413, '40 MiB body');
  assert.match(JSON.parse(responses[0].text).error.message, /too large/);

  /* The same with fetch, as an SDK would send it. */
  const r = await fetch(`${ctx.gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(size, 0x20),
  });
  assert.equal(r.status, 413);
  assertOpenAIError(await r.json(), {}, 'fetch 413');
});

test('chunked request bodies are decoded, and capped like any body', async () => {
  const tok = uniq('CHUNKED');
  const body = chatBody(tok);
  const half = Math.floor(body.length / 2);
  const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  const { responses } = await rawExchange(ctx.gw,
    'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
    'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
    chunk(body.slice(0, half)) + chunk(body.slice(half)) + '0\r\n\r\n');
  assert.equal(responses[0]?.status, 200, responses[0]?.text);
  assert.match(JSON.parse(responses[0].text).choices[0].message.content, new RegExp(tok));

  const big = Buffer.alloc(1024 * 1024, 0x20);
  const parts = ['POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'];
  for (let i = 0; i < 40; i++) parts.push(`100000\r\n`, big, '\r\n');
  parts.push('0\r\n\r\n');
  const over = await rawExchange(ctx.gw, parts, { untilMs: 60_000 });
  assertJSONError(over.responses[0], 413, 'chunked over the limit');
});

test('Expect: 100-continue gets its interim answer before the body is sent', async () => {
  const tok = uniq('EXPECT');
  const body = chatBody(tok);
  const { port } = new URL(ctx.gw.url);
  const text = await new Promise((resolve, reject) => {
    const s = net.connect(Number(port), '127.0.0.1', () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    });
    let got = '';
    let sent = false;
    s.on('data', (d) => {
      got += d.toString();
      if (!sent && got.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        sent = true;
        s.write(body);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
  assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
  assert.match(text, new RegExp(tok));
});

/* ---- slow clients ------------------------------------------------------------------------ */

/** Writes `text` a few bytes at a time every `everyMs`; resolves with what the server sent
 * and how many bytes it had written when the server closed. */
function trickle(gw, text, { everyMs = 100, step = 1 } = {}) {
  const { port } = new URL(gw.url);
  return new Promise((resolve) => {
    const got = [];
    let sent = 0;
    let timer;
    const s = net.connect(Number(port), '127.0.0.1', () => {
      timer = setInterval(() => {
        if (sent >= text.length || s.destroyed) return;
        s.write(text.slice(sent, sent + step));
        sent += step;
      }, everyMs);
    });
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      resolve({ responses: parseResponses(Buffer.concat(got)), sent, total: text.length });
    });
  });
}

test('slowloris: a header trickled a byte at a time is cut at --header-timeout-s (408)', async () => {
  /* 100 bytes a second for a 5 KB header block would take 50 s; every read is well inside
   * any per-read timeout, so only a deadline for the whole block ends it. */
  const head = `GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Slow: ${'s'.repeat(5000)}\r\n\r\n`;
  const slow = Array.from({ length: 20 }, () => trickle(ctx.gw, head, { everyMs: 50, step: 5 }));
  /* The gateway keeps serving everyone else meanwhile. */
  const h = await http(ctx.gw, 'GET', '/healthz');
  assert.equal(h.status, 200);
  const done = await Promise.all(slow);
  for (const d of done) {
    assert.ok(d.sent < d.total, `cut before the header was complete (${d.sent}/${d.total})`);
    assertJSONError(d.responses[0], 408, 'slow header');
  }
});

test('a body trickled slowly is cut at --read-timeout-s (408)', async () => {
  const body = chatBody(uniq('SLOWBODY')).padEnd(4000, ' ');
  const req = `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const { port } = new URL(ctx.gw.url);
  const d = await new Promise((resolve) => {
    const got = [];
    let sent = 0;
    let timer;
    const s = net.connect(Number(port), '127.0.0.1', () => {
      s.write(req);
      timer = setInterval(() => {
        if (sent < body.length && !s.destroyed) s.write(body.slice(sent, sent += 10));
      }, 50);
    });
    s.on('data', (x) => got.push(x));
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      resolve({ responses: parseResponses(Buffer.concat(got)), sent, total: body.length });
    });
  });
  assert.ok(d.sent < d.total, `cut before the body was complete (${d.sent}/${d.total})`);
  assertJSONError(d.responses[0], 408, 'slow body');
});

/* ---- shutdown ---------------------------------------------------------------------------- */

/** Starts a stream and resolves once `mark` arrived: {reader, text()} to read the rest. */
async function streamUntil(url, path, body, mark, headers = {}) {
  const res = await fetch(url + path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
  });
  assert.equal(res.status, 200, path);
  const reader = res.body.getReader();
  let text = '';
  while (!text.includes(mark)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  return async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += Buffer.from(value).toString();
    }
  };
}

test('streams cut by the shutdown timeout end with their API\'s error event and terminator', async () => {
  const fake = await startFake();
  const gw = await startGateway({ fake, args: ['--shutdown-timeout-s', '1'] });
  try {
    const tok = uniq('SHUTDOWN');
    await fake.script({ rules: [{ match: tok, reply: { chunks: ['first ', 'never'], chunk_delay_ms: 120_000 } }] });
    const chat = await streamUntil(gw.url, '/v1/chat/completions', chatBody(`${tok}-chat`, { stream: true }), 'first');
    const msgs = await streamUntil(gw.url, '/v1/messages', JSON.stringify({
      model: 'fake-model', max_tokens: 100, stream: true, messages: [{ role: 'user', content: `${tok}-anthropic` }],
    }), 'first', { 'anthropic-version': '2023-06-01' });
    gw.kill('SIGTERM');
    const [ctext, mtext] = await Promise.all([chat(), msgs()]);
    assert.match(ctext, /data: \{"error":\{[^\n]*shutting down/, `an error event: ${ctext}`);
    assert.match(ctext, /data: \[DONE\]\n\n$/, 'the chat stream ends with its terminator');
    assert.match(mtext, /event: error\ndata: \{"type":"error","error":\{[^\n]*shutting down[^\n]*\}\}\n\n$/,
      `the Anthropic stream ends with its error event: ${mtext}`);
    assert.equal((await gw.waitExit()).code, 0);
  } finally {
    await gw.stop();
    await fake.close();
  }
});

/* ---- connections ------------------------------------------------------------------------- */

function openIdle(gw, n) {
  const { port } = new URL(gw.url);
  return Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => resolve(s));
    s.got = [];
    s.on('data', (d) => s.got.push(d));
    s.on('error', () => {});
  })));
}

test('--max-connections: the next connection gets a JSON 503, and room frees up again', async () => {
  const fake = await startFake();
  const gw = await startGateway({ fake, args: ['--max-connections', '8'] });
  try {
    const idle = await openIdle(gw, 8);
    const m = await waitFor(async () => {
      const r = await rawExchange(gw, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      return r.responses[0]?.status === 503 && r;
    }, { what: 'a 503 once 8 connections are open' });
    assertJSONError(m.responses[0], 503, 'over the limit');
    assert.match(m.responses[0].text, /connection limit/);
    for (const s of idle) s.destroy();
    await waitFor(async () => (await http(gw, 'GET', '/healthz')).status === 200,
      { what: '/healthz once the connections closed' });
    const text = (await http(gw, 'GET', '/metrics')).text;
    assert.match(text, /copilot_gateway_connections_refused_total [1-9]/);
  } finally {
    await gw.stop();
    await fake.close();
  }
});

test('out of descriptors: 503 through a reserved descriptor, one log line, no spin', async () => {
  const fake = await startFake();
  const gw = await startGateway({ fake, args: ['--max-connections', '5000', '--log-level', 'info'] });
  try {
    const pid = gw.proc.pid;
    const used = readdirSync(`/proc/${pid}/fd`).length;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${used + 16}:${used + 16}`]);
    const logBefore = gw.stderr().length;
    const idle = await openIdle(gw, 60);
    const replies = await Promise.all(idle.map((s) => new Promise((resolve) => {
      if (s.destroyed) return resolve('');
      s.once('close', () => resolve(Buffer.concat(s.got).toString()));
      setTimeout(() => resolve(Buffer.concat(s.got).toString()), 3000);
    })));
    const refused = replies.filter((t) => t.startsWith('HTTP/1.1 503'));
    assert.ok(refused.length > 0, 'some connections got a 503 instead of silence');
    assert.match(refused[0], /"error":\{"message":"the gateway is at its connection limit/);
    const log = gw.stderr().slice(logBefore);
    const lines = log.split('\n').filter((l) => /refused \d+ connection/.test(l));
    assert.ok(lines.length >= 1 && lines.length <= 3, `one log line per interval, got ${lines.length}`);
    assert.ok(log.length < 50_000, `the log is not flooded (${log.length} bytes)`);
    for (const s of idle) s.destroy();
    await waitFor(async () => (await http(gw, 'GET', '/healthz')).status === 200,
      { what: '/healthz once descriptors are free again' });
  } finally {
    await gw.stop();
    await fake.close();
  }
});

/* ---- slow readers ------------------------------------------------------------------------ */

/** Starts a streamed chat request on a raw socket and stops reading once the headers are in. */
function stalledStream(gw, body) {
  const { port } = new URL(gw.url);
  return new Promise((resolve) => {
    const got = [];
    const s = net.connect(Number(port), '127.0.0.1', () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    const closed = new Promise((res) => s.on('close', () => res(Buffer.concat(got).toString())));
    const st = { s, got, closed };
    let paused = false;
    s.on('data', (d) => {
      got.push(d);
      if (!paused && Buffer.concat(got).includes('\r\n\r\n')) {
        paused = true;
        s.pause();
        resolve(st);
      }
    });
    s.on('error', () => {});
    closed.then(() => resolve(st));
  });
}

async function readRest({ s, closed }) {
  s.resume();
  return closed;
}

for (const [what, args] of [
  ['--max-write-buffer-bytes of queued output', ['--max-write-buffer-bytes', '65536']],
  ['--write-timeout-s without progress', ['--write-timeout-s', '1', '--max-write-buffer-bytes', '1073741824']],
]) {
  test(`a client that stops reading is dropped after ${what}; its turn is cancelled`, async () => {
    const fake = await startFake();
    const gw = await startGateway({ fake, args });
    try {
      const tok = uniq('STALL');
      const piece = 'x'.repeat(16 * 1024);
      await fake.script({ rules: [{ match: tok, reply: { chunks: Array(1600).fill(piece) } }] });
      const st = await stalledStream(gw, chatBody(tok, { stream: true }));
      await waitFor(async () => /copilot_gateway_slow_clients_dropped_total 1/.test((await http(gw, 'GET', '/metrics')).text),
        { timeoutMs: 60_000, what: 'the stalled client to be dropped' });
      await waitFor(async () => /copilot_gateway_turns_active 0/.test((await http(gw, 'GET', '/metrics')).text),
        { timeoutMs: 30_000, what: 'the turn to be cancelled' });
      const text = await readRest(st);
      assert.ok(text.length < 1600 * piece.length, `not the whole answer (${text.length} bytes)`);
      assert.ok(!text.includes('[DONE]'), 'the stream was cut, not completed');
      assert.equal((await http(gw, 'GET', '/healthz')).status, 200);
    } finally {
      await gw.stop();
      await fake.close();
    }
  });
}
