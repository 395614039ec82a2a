// 79-audit: the audit log's read side and the admin key. GET /admin/audit needs the
// --admin-key when one is set (a client key is not enough), is closed to other origins even
// when --cors-origins allows them, checks its query parameters (400), and filters rows; a
// gateway listening beyond loopback without an admin key refuses it (403). The CLI
// `copilot-gateway audit` reads the same file while the gateway runs. Rows are written with
// the sqlite3 shell (there is no writer in the gateway yet); those tests are skipped without it.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake } from '../fake/fakemodel.mjs';
import { startGateway, test, http, assertOpenAIError, GATEWAY_BIN, waitFor, sleep, freePort } from './lib.mjs';

const ADMIN = 'admin-secret-0123456789';
const CLIENT = 'client-key-abcdef';
const ORIGIN = 'https://ui.example';
const HAVE_SQLITE3 = spawnSync('sqlite3', ['-version']).status === 0;

let fake;
let gw;

before(async () => {
  fake = await startFake();
  gw = await startGateway({
    fake,
    args: ['--admin-key', ADMIN, '--api-key', CLIENT, '--cors-origins', ORIGIN],
  });
}, { timeout: 90_000 });

after(async () => {
  try {
    if (gw) assert.equal(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
  } finally {
    await fake?.close();
  }
});

const bearer = (k) => ({ authorization: `Bearer ${k}` });

/** `copilot-gateway audit ARGS`: {code, out, err}. */
function cli(args, env = {}) {
  const r = spawnSync(GATEWAY_BIN, ['audit', ...args], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const HEADER = /^TIME\s+AGENT\s+DECISION\s+KIND\s+TARGET\s+RULE\s+OUTCOME\s+MS$/;

test('GET /admin/audit wants the admin key: none or a client key is 401', async () => {
  for (const headers of [{}, bearer(CLIENT), { 'x-api-key': CLIENT }, bearer('wrong')]) {
    const r = await http(gw, 'GET', '/admin/audit', { headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assertOpenAIError(r.json);
    assert.match(r.json.error.message, /admin key required/);
    assert.ok(!r.text.includes(ADMIN));
  }
  /* The admin key is not a client key either. */
  const m = await http(gw, 'GET', '/v1/models', { headers: bearer(ADMIN) });
  assert.equal(m.status, 401);
});

test('with the admin key: an empty list', async () => {
  for (const headers of [bearer(ADMIN), { 'x-api-key': ADMIN }]) {
    const r = await http(gw, 'GET', '/admin/audit', { headers });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { object: 'list', data: [], has_more: false });
  }
});

test('bad decision, since, limit or after is 400 in the OpenAI shape', async () => {
  for (const q of ['decision=maybe', 'since=yesterday', 'since=2026-12-05', 'limit=0',
    'limit=1001', 'limit=x', 'after=-1']) {
    const r = await http(gw, 'GET', `/admin/audit?${q}`, { headers: bearer(ADMIN) });
    assert.equal(r.status, 400, q);
    assertOpenAIError(r.json, {}, q);
    assert.match(r.json.error.message, new RegExp(`'${q.split('=')[0]}'`), q);
  }
});

test('other origins are refused, even one --cors-origins allows; no CORS headers', async () => {
  const r = await http(gw, 'GET', '/admin/audit', { headers: { ...bearer(ADMIN), origin: ORIGIN } });
  assert.equal(r.status, 403);
  assertOpenAIError(r.json);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  /* The same origin is allowed on the model API. */
  const m = await http(gw, 'GET', '/v1/models', { headers: { ...bearer(CLIENT), origin: ORIGIN } });
  assert.equal(m.status, 200);
  assert.equal(m.headers.get('access-control-allow-origin'), ORIGIN);
});

test('POST /admin/audit is 405 with Allow from the route table', async () => {
  const r = await http(gw, 'POST', '/admin/audit', { headers: bearer(ADMIN), body: {} });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, HEAD, OPTIONS');
});

test('the CLI prints the header and no rows for an empty log', () => {
  const r = cli(['--data', gw.data]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out.trimEnd(), HEADER);
  assert.equal(r.out.trim().split('\n').length, 1);
  const j = cli(['--data', gw.data, '--json']);
  assert.equal(j.code, 0, j.err);
  assert.equal(j.out, '');
});

test('the CLI refuses an unknown flag or a bad value with usage, exit 2', () => {
  for (const args of [['--bogus'], ['--decision', 'maybe'], ['--since', 'x'], ['--limit', '0']]) {
    const r = cli(['--data', gw.data, ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /usage: copilot-gateway audit/);
  }
});

const T0 = Date.parse('2026-12-05T10:00:00Z');
const ROWS = [
  // id, ms after T0, agent, kind, target, decision, rule, outcome, duration
  ['aud_a', 0, 'logs', 'shell', 'rm -rf /var/log/app', 'deny', 'shell(rm)', 'denied', null],
  ['aud_b', 1000, 'logs', 'read', '/var/log/app/error.log', 'allow', 'read(/var/log/**)', 'ok', 12],
  ['aud_c', 2000, 'deploy', 'url', 'https://example.com/' + 'x'.repeat(100), 'allow', null, null, null],
];

function insertRows(db) {
  const q = (v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`);
  const values = ROWS.map(([id, dt, agent, kind, target, decision, rule, outcome, dur]) => `(${[
    q(id), q(T0 + dt), q('req-1'), q('anon'), q(agent), q(null), q(kind === 'shell' ? 'bash' : 'view'),
    q(kind), q(target), q(decision), q(rule), q(outcome), q(dur ?? -1), q(null)].join(', ')})`);
  const sql = 'INSERT INTO audit(id, ts, request_id, principal, agent, session_id, tool, kind, '
    + `target, decision, rule, outcome, duration_ms, error) VALUES ${values.join(', ')};`;
  const r = spawnSync('sqlite3', ['-cmd', '.timeout 5000', db, sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test('rows written beside the running gateway: /admin/audit filters, the CLI table',
  { skip: !HAVE_SQLITE3 && 'no sqlite3 shell' }, async () => {
    insertRows(join(gw.data, 'gateway.db'));
    const get = async (q) => {
      const r = await http(gw, 'GET', `/admin/audit${q}`, { headers: bearer(ADMIN) });
      assert.equal(r.status, 200, r.text);
      return r.json;
    };
    let l = await get('');
    assert.deepEqual(l.data.map((x) => x.id), ['aud_c', 'aud_b', 'aud_a']);
    assert.equal(l.has_more, false);
    const b = l.data[1];
    assert.equal(b.time, '2026-12-05T10:00:01.000Z');
    assert.equal(b.duration_ms, 12);
    assert.equal(b.rule, 'read(/var/log/**)');
    assert.equal(b.request_id, 'req-1');
    assert.equal(b.session_id, null);
    assert.equal(l.data[0].outcome, null);
    assert.equal(l.data[0].duration_ms, null);
    assert.ok(l.data[0].seq > b.seq && b.seq > l.data[2].seq);

    assert.deepEqual((await get('?agent=deploy')).data.map((x) => x.id), ['aud_c']);
    assert.deepEqual((await get('?decision=deny')).data.map((x) => x.id), ['aud_a']);
    assert.deepEqual((await get('?since=2026-12-05T10:00:01Z')).data.map((x) => x.id), ['aud_c', 'aud_b']);
    assert.deepEqual((await get(`?since=${(T0 + 2000) / 1000}`)).data.map((x) => x.id), ['aud_c']);
    l = await get('?limit=1');
    assert.deepEqual(l.data.map((x) => x.id), ['aud_c']);
    assert.equal(l.has_more, true);
    assert.deepEqual((await get(`?after=${b.seq}`)).data.map((x) => x.id), ['aud_c']);

    /* The CLI: oldest to newest, targets cut to fit. */
    let r = cli(['--data', gw.data]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split('\n');
    assert.match(lines[0], HEADER);
    assert.equal(lines.length, 4);
    assert.match(lines[1], /^2026-12-05T10:00:00\.000Z\s+logs\s+deny\s+shell\s+rm -rf \/var\/log\/app\s+shell\(rm\)\s+denied\s+-$/);
    assert.match(lines[2], /\sallow\s+read\s+\/var\/log\/app\/error\.log\s+read\(\/var\/log\/\*\*\)\s+ok\s+12$/);
    assert.match(lines[3], /\sdeploy\s+allow\s+url\s+https:\/\/example\.com\/x+\.\.\.\s+-\s+-\s+-$/);
    assert.ok(!lines[3].includes('x'.repeat(100)));
    r = cli(['--data', gw.data, '--decision', 'allow', '--limit', '1', '--json']);
    assert.equal(r.code, 0, r.err);
    const rows = r.out.trim().split('\n').map((s) => JSON.parse(s));
    assert.deepEqual(rows.map((x) => x.id), ['aud_c']);
    r = cli(['--data', gw.data, '--agent', 'logs', '--since', '2026-12-05T10:00:01Z', '--json']);
    assert.deepEqual(r.out.trim().split('\n').map((s) => JSON.parse(s).id), ['aud_b']);
  });

test('--follow prints rows added later, until SIGINT', { skip: !HAVE_SQLITE3 && 'no sqlite3 shell' },
  async () => {
    const p = spawn(GATEWAY_BIN, ['audit', '--data', gw.data, '--json', '--follow', '--agent', 'follow'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const exited = new Promise((res) => p.on('exit', (code, signal) => res({ code, signal })));
    try {
      const db = join(gw.data, 'gateway.db');
      const add = (id) => {
        const r = spawnSync('sqlite3', ['-cmd', '.timeout 5000', db,
          `INSERT INTO audit(id, ts, principal, agent, tool, kind, target, decision) VALUES ('${id}', ${T0}, 'anon', 'follow', 'bash', 'shell', 'ls', 'allow')`]);
        assert.equal(r.status, 0);
      };
      await sleep(300); /* let it start; a row added before its first read shows up as well */
      add('aud_f1');
      await waitFor(() => out.includes('aud_f1'), { timeoutMs: 10_000, what: 'aud_f1 followed' });
      add('aud_f2');
      await waitFor(() => out.includes('aud_f2'), { timeoutMs: 10_000, what: 'aud_f2 followed' });
      assert.deepEqual(out.trim().split('\n').map((s) => JSON.parse(s).id), ['aud_f1', 'aud_f2']);
    } finally {
      p.kill('SIGINT');
    }
    assert.deepEqual(await exited, { code: 0, signal: null });
  });


test('beyond loopback without --admin-key the admin API is 403; the CLI reads its empty log',
  { timeout: 90_000 }, async () => {
    const port = await freePort();
    const tmp = mkdtempSync(join(tmpdir(), 'gw-e2e-audit-'));
    const data = join(tmp, 'data');
    const p = spawn(GATEWAY_BIN, ['serve', '--listen', `0.0.0.0:${port}`, '--home', join(tmp, 'home'),
      '--data', data, '--provider-url', `${fake.url}/v1`, '--provider-key', 'test-key',
      '--provider-type', 'openai', '--runtime-pool', '1', '--api-key', CLIENT],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.stdout.on('data', (d) => { err += d; });
    const exited = new Promise((res) => p.on('exit', (code) => res(code)));
    try {
      await waitFor(() => /listening on http:\/\/0\.0\.0\.0:\d+/.test(err),
        { timeoutMs: 30_000, what: `the gateway listening\n${err}` });
      const g = { url: `http://127.0.0.1:${port}` };
      for (const headers of [bearer(CLIENT), {}]) {
        const r = await http(g, 'GET', '/admin/audit', { headers });
        assert.equal(r.status, 403, r.text);
        assertOpenAIError(r.json);
        assert.match(r.json.error.message, /the admin API is disabled: set --admin-key/);
      }
      const m = await http(g, 'GET', '/v1/models', { headers: bearer(CLIENT) });
      assert.notEqual(m.status, 403);
      const r = cli(['--data', data]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out.trimEnd(), HEADER);
      /* The data directory from the environment, as serve takes it. */
      const e = cli([], { COPILOT_GATEWAY_DATA: data });
      assert.equal(e.code, 0, e.err);
      assert.match(e.out.trimEnd(), HEADER);
    } finally {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
      rmSync(tmp, { recursive: true, force: true });
    }
  });
