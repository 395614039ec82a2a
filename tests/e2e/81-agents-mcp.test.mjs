// 81-agents-mcp: agents and MCP servers the way an operator wires them: the filesystem server
// from npm over stdio, the everything server over streamable HTTP (a remote server the test
// starts itself), a server that cannot start and one that dies in the middle of a call.
// What a user sees: allowed MCP tools work, denied ones never run, and a broken or crashed
// server becomes a tool error for the model while the request still completes.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGateway, test, uniq, http, ROOT, textOf, waitFor, metrics, metricDelta, sessionDeltas, auditRows, freePort, toolResultsFor } from './lib.mjs';

const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const FILESYSTEM = join(ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
const ADMIN_KEY = 'admin-secret-81';
const CRASH_MARK = `CRASH_MARK_81=${process.pid}`;
const CAP_MARK = `CAP_MARK_81=${process.pid}`;

const tmp = mkdtempSync(join(tmpdir(), 'gw-agents-mcp-'));
const work = join(tmp, 'docs');
mkdirSync(work, { recursive: true });
writeFileSync(join(work, 'runbook.md'), '# Disk full\n1. Rotate the logs.\n');


/* The remote MCP server: server-everything over streamable HTTP, started before the gateway
 * (the runtime connects to it when an agent's session is created). */
const remotePort = await freePort();
const remote = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
  env: { PATH: process.env.PATH, PORT: String(remotePort) }, stdio: ['ignore', 'ignore', 'pipe'],
});
let remoteErr = '';
remote.stderr.on('data', (d) => { remoteErr += d; });
await waitFor(() => remoteErr.includes('listening'), { what: `the remote MCP server on ${remotePort}: ${remoteErr}` });
after(() => remote.kill('SIGKILL'));

writeFileSync(join(tmp, 'gateway.yaml'), `
agents:
  files:
    model: fake-model
    instructions: You are FILES-AGENT.
    workdir: ${work}
    mcp-servers:
      fs:
        command: node
        args: [${FILESYSTEM}, ${work}]
        tools: [read_text_file, list_directory, write_file]
      remote:
        url: http://127.0.0.1:${remotePort}/mcp
        type: http
        headers: {X-Token: "\${MCP_TOKEN_81}"}
        tools: [echo, get-sum]
      crashy:
        command: node
        args: [${EVERYTHING}, stdio]
        env: {${CRASH_MARK.replace('=', ': "')}"}
        tools: [trigger-long-running-operation]
      broken:
        command: node
        args: [-e, "process.exit(3)"]
    allow:
      mcp: [fs-read_text_file, fs-list_directory, remote-echo, crashy-*, broken-*]
    deny:
      mcp: [fs-write_file]
  capped:
    model: fake-model
    instructions: You are CAPPED.
    workdir: ${work}
    mcp-servers:
      ev:
        command: node
        args: [${EVERYTHING}, stdio]
        env: {${CAP_MARK.replace('=', ': "')}"}
        tools: [echo]
    allow:
      mcp: [ev-echo]
    max-sessions: 2
`);

const ctx = useGateway({
  args: ['--config', join(tmp, 'gateway.yaml'), '--admin-key', ADMIN_KEY],
  env: { MCP_TOKEN_81: 'token-81' },
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The prompt with tok gets `calls`; any tool result afterwards gets `final`. */
function script(tok, calls, final) {
  ctx.fake.reset();
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: calls.map((c, i) => ({ id: `call_${tok}_${i}`, ...c })) } },
    { match: tok, reply: { content: final } }, /* the calls after the tool results */
  ] });
}

const toolResults = (tok) => toolResultsFor(ctx.fake, tok);

const audit = (query = '') => auditRows(ctx.gw, ADMIN_KEY, query);

const ask = (tok) => ctx.client.chat.completions.create({
  model: 'agent/files', messages: [{ role: 'user', content: `Help ${tok}` }],
});

test('the filesystem server (stdio): allowed reads work, write_file is denied and nothing is written', async () => {
  const tok = uniq('M1');
  script(tok, [
    { name: 'fs-read_text_file', arguments: { path: join(work, 'runbook.md') } },
    { name: 'fs-write_file', arguments: { path: join(work, 'evil.md'), content: 'pwned' } },
  ], `Read it (${tok})`);
  const r = await ask(tok);
  assert.equal(r.choices[0].message.content, `Read it (${tok})`);
  const results = toolResults(tok);
  assert.ok(results.some((t) => t.includes('Rotate the logs')), JSON.stringify(results));
  assert.ok(results.some((t) => t.includes('denied by policy: mcp(fs-write_file)')), JSON.stringify(results));
  assert.equal(existsSync(join(work, 'evil.md')), false);
  const rows = await audit('?agent=files&limit=20');
  assert.ok(rows.some((x) => x.target === 'fs-read_text_file' && x.decision === 'allow' && x.kind === 'mcp' && x.rule === 'mcp(fs-read_text_file)'), JSON.stringify(rows));
  assert.ok(rows.some((x) => x.target === 'fs-write_file' && x.decision === 'deny' && x.rule === 'mcp(fs-write_file)'), JSON.stringify(rows));
});

test('a remote server over streamable HTTP: its allowed tool runs, the others are denied', async () => {
  const tok = uniq('M2');
  script(tok, [
    { name: 'remote-echo', arguments: { message: `hello ${tok}` } },
    { name: 'remote-get-sum', arguments: { a: 2, b: 3 } },
  ], `Echoed (${tok})`);
  const r = await ask(tok);
  assert.equal(r.choices[0].message.content, `Echoed (${tok})`);
  const results = toolResults(tok);
  assert.ok(results.some((t) => t.includes(`Echo: hello ${tok}`)), JSON.stringify(results));
  assert.ok(results.some((t) => t.includes('denied by policy: no rule allows mcp(remote-get-sum)')), JSON.stringify(results));
});

test('a server that cannot start: calling its tool is a tool error, and the request completes', async () => {
  const tok = uniq('M3');
  script(tok, [{ name: 'broken-echo', arguments: { message: 'x' } }], `Could not (${tok})`);
  const r = await ask(tok);
  assert.equal(r.choices[0].message.content, `Could not (${tok})`);
  const results = toolResults(tok);
  assert.equal(results.length, 1, JSON.stringify(results));
  assert.doesNotMatch(results[0], /^Echo:/);
});

/** The pids of the processes whose environment holds mark (stdio MCP servers: one per session). */
function pidsWith(mark) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(mark)) out.push(Number(d));
    } catch { /* gone, or not ours */ }
  }
  return out;
}
const crashyPids = () => pidsWith(CRASH_MARK);

test('a server that dies in the middle of a call: the model gets a tool error, the request completes', async () => {
  const tok = uniq('M4');
  script(tok, [{ name: 'crashy-trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }], `It broke (${tok})`);
  const pending = ask(tok);
  // The call is running once the policy has allowed it; then the server is killed.
  await waitFor(async () => (await audit('?agent=files&limit=5')).some((x) => x.target === 'crashy-trigger-long-running-operation' && x.decision === 'allow'),
    { timeoutMs: 30_000, what: 'the long-running MCP call to start' });
  let pids = [];
  await waitFor(() => (pids = crashyPids()).length > 0, { what: 'the crashy MCP server process' });
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  const r = await pending;
  assert.equal(r.choices[0].message.content, `It broke (${tok})`);
  const results = toolResults(tok);
  assert.equal(results.length, 1, JSON.stringify(results));
  assert.doesNotMatch(results[0], /completed/);
  // The audit row of the call records that it failed.
  await waitFor(async () => (await audit('?agent=files&limit=10')).find((x) => x.target === 'crashy-trigger-long-running-operation')?.outcome === 'error',
    { what: 'the error outcome of the crashed call' });
});

test('max-sessions bounds an agent\'s live sessions, and so its stdio MCP servers; an evicted conversation resumes', async () => {
  const toks = [uniq('M5a'), uniq('M5b'), uniq('M5c'), uniq('M5d')];
  ctx.fake.reset();
  ctx.fake.script({ rules: toks.flatMap((tok) => [
    { match_prompt: `Echo ${tok}`, reply: { tool_calls: [{ id: `call_${tok}`, name: 'ev-echo', arguments: { message: tok } }] } },
    { match: `Echo ${tok}`, reply: { content: `echoed ${tok}` } },
  ]) });
  const first = [{ role: 'user', content: `Echo ${toks[0]}` }];
  for (const tok of toks) {
    const r = await ctx.client.chat.completions.create({ model: 'agent/capped', messages: [{ role: 'user', content: `Echo ${tok}` }] });
    assert.equal(r.choices[0].message.content, `echoed ${tok}`);
    await waitFor(() => pidsWith(CAP_MARK).length <= 2, { what: `at most 2 MCP servers (max-sessions 2): ${pidsWith(CAP_MARK).length}` });
  }
  // The first conversation's session went dormant; its next turn resumes it.
  const tok2 = uniq('M5e');
  ctx.fake.script({ rules: [{ match_prompt: tok2, reply: { content: `again ${tok2}` } }] });
  const before = await metrics(ctx.gw);
  const r = await ctx.client.chat.completions.create({ model: 'agent/capped', messages: [...first, { role: 'assistant', content: `echoed ${toks[0]}` }, { role: 'user', content: tok2 }] });
  const after = await metrics(ctx.gw);
  assert.equal(r.choices[0].message.content, `again ${tok2}`);
  assert.equal(metricDelta(before, after, 'copilot_gateway_sessions_resumed_total'), 1);
  assert.equal(sessionDeltas(before, after).created, 0, JSON.stringify(sessionDeltas(before, after)));
  await waitFor(() => pidsWith(CAP_MARK).length <= 2, { what: 'still at most 2 MCP servers' });
});
