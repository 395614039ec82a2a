// 84-examples: examples/agents.yaml as the README's walkthrough runs it: the four agents (logs,
// sql on a real PostgreSQL through @modelcontextprotocol/server-postgres, sop, rca delegating
// to logs and sql), the fake model scripted by examples/demo/fake-model.json. What a user sees:
// each walkthrough question answered, every tool really run (its output reached the model),
// and an audit row for each call.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGateway, test, http, ROOT, textOf, auditRows, freePort } from './lib.mjs';

const ADMIN_KEY = 'admin-secret-84';
const DB_PASSWORD = 'demo-only-password'; /* examples/demo/shop.sql */
const spec = JSON.parse(readFileSync(join(ROOT, 'examples/demo/fake-model.json'), 'utf8'));


/* The sql agent's database, as examples/demo.sh starts it. */
const tmp = mkdtempSync(join(tmpdir(), 'gw-examples-'));
chmodSync(tmp, 0o755); /* as root, the cluster belongs to the postgres user, who must reach it */
const pgDir = join(tmp, 'pg');
const pgPort = await freePort();
execFileSync(join(ROOT, 'examples/demo-db.sh'), ['start', pgDir, String(pgPort)], { stdio: ['ignore', 'ignore', 'inherit'] });
after(() => {
  execFileSync(join(ROOT, 'examples/demo-db.sh'), ['stop', pgDir], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
});

const ctx = useGateway({
  fakeModels: spec.models,
  args: ['--config', join(ROOT, 'examples/agents.yaml'), '--admin-key', ADMIN_KEY],
  env: { SHOP_DB_HOST: '127.0.0.1', SHOP_DB_PORT: String(pgPort), SHOP_DB_PASSWORD: DB_PASSWORD },
});

const audit = (query = '') => auditRows(ctx.gw, ADMIN_KEY, query);

/** Asks agent/<agent> the question; returns the answer, the tool results the model saw
 * (sub-agents' included), and the request's audit rows. */
async function ask(agent, question) {
  ctx.fake.reset();
  ctx.fake.script({ rules: spec.rules });
  const r = await ctx.client.chat.completions.create({ model: `agent/${agent}`, messages: [{ role: 'user', content: question }] });
  const results = ctx.fake.log().flatMap((q) => (q.body?.messages ?? []).filter((m) => m.role === 'tool').map((m) => textOf(m.content)));
  const id = r._request_id ?? null;
  const rows = (await audit('?limit=50')).filter((x) => !id || x.request_id === id);
  return { answer: r.choices[0].message.content, results, rows };
}

/** The canned answer the script gives to the conversation of `prompt`. */
const canned = (prompt) => spec.rules.find((x) => x.match && prompt.includes(x.match)).reply.content;

test('the agents of examples/agents.yaml are models', async () => {
  const r = await http(ctx.gw, 'GET', '/v1/models');
  for (const a of ['logs', 'sql', 'sop', 'rca']) assert.ok(r.json.data.some((m) => m.id === `agent/${a}`), r.text);
});

test('logs: greps the log and answers', async () => {
  const q = 'Why did checkouts fail last night?';
  const { answer, results } = await ask('logs', q);
  assert.equal(answer, canned(q));
  assert.ok(results.some((t) => t.includes('ERROR payment: db timeout after 30s order=10385')), JSON.stringify(results));
});

test('sql: queries PostgreSQL through the MCP server, read-only', async () => {
  const q = 'How many payments failed last night, by provider?';
  const { answer, results } = await ask('sql', q);
  assert.equal(answer, canned(q));
  const rows = JSON.parse(results.find((t) => t.includes('provider')));
  assert.deepEqual(rows, [{ provider: 'acmepay', failed: '5' }, { provider: 'paybridge', failed: '2' }]);
});

test('sop: finds the runbook and reads it', async () => {
  const q = 'What do we do when the database times out?';
  const { answer, results } = await ask('sop', q);
  assert.equal(answer, canned(q));
  assert.ok(results.some((t) => t.includes('db-timeouts.md')), JSON.stringify(results));
  assert.ok(results.some((t) => t.includes('Runbook: database timeouts in checkout')), JSON.stringify(results));
});

test('rca: delegates to logs and sql, then writes the summary', async () => {
  const q = "Investigate last night's checkout incident.";
  const { answer, results } = await ask('rca', q);
  assert.equal(answer, canned('checkout incident'));
  /* the sub-agents' tools ran: the log lines and the query's rows reached their model calls */
  assert.ok(results.some((t) => t.includes('WARN  db: pool 50/50 connections in use, 17 waiting')), JSON.stringify(results));
  assert.ok(results.some((t) => t.includes('"provider":"acmepay"') && t.includes('"failed":"5"')), JSON.stringify(results));
  /* rca itself is offered delegation only: its delegates' tools are theirs */
  const own = ctx.fake.log().find((x) => textOf(x.body?.messages?.[0]?.content ?? '').startsWith('You investigate incidents'));
  const names = (own.body.tools ?? []).map((t) => t.function.name);
  assert.ok(names.includes('task'), JSON.stringify(names));
  assert.ok(!names.includes('db-query') && !names.includes('bash'), JSON.stringify(names));
  const rows = await audit('?limit=20');
  for (const [agent, tool] of [['rca', 'task'], ['logs', 'bash'], ['sql', 'db-query']]) {
    assert.ok(rows.some((x) => x.agent === agent && x.tool === tool && x.decision === 'allow'), `${agent} ${tool}: ${JSON.stringify(rows)}`);
  }
});

test('every call of the walkthrough was allowed, ran and is in the audit log', async () => {
  const rows = await audit('?limit=100');
  assert.ok(rows.length >= 8, JSON.stringify(rows));
  for (const x of rows) {
    assert.equal(x.decision, 'allow', JSON.stringify(x));
    assert.equal(x.outcome, 'ok', JSON.stringify(x));
  }
});

test('a denied action: the logs agent may not delete, the file stays, the audit says why', async () => {
  const q = 'Clean up the old logs, please.';
  const { answer, results } = await ask('logs', q);
  assert.equal(answer, canned('Clean up the old logs'));
  assert.ok(results.some((t) => t.includes('denied by policy: shell(rm)')), JSON.stringify(results));
  assert.ok(existsSync(join(ROOT, 'examples/demo/logs/app.log.1')));
  const rows = await audit('?decision=deny&limit=5');
  assert.ok(rows.some((x) => x.agent === 'logs' && x.target === 'rm -f app.log.1' && x.rule === 'shell(rm)'), JSON.stringify(rows));
});
