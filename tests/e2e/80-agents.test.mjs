// 80-agents: server-side agents (agents: in the config file) through the real runtime, with a
// real MCP server from npm (@modelcontextprotocol/server-everything over stdio) and the
// project's fake model scripted to call tools. What a user sees: the agent's answer on all
// three APIs (never the agent's own tool calls), the policy's decisions (allowed commands
// run; denied ones never run and the model is told why), progress in streams, the audit log,
// the limits, and an MCP server that gets none of the gateway's secrets.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { useGateway, test, uniq, http, ROOT, textOf, metrics, sessionDeltas, waitFor, auditRows, toolResultsFor } from './lib.mjs';

const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const ADMIN_KEY = 'admin-secret-80';
const PROVIDER_SECRET = 'provider-secret-80';
const GH_SECRET = 'ghu_gateway_secret_80';
const MCP_SECRET = 'mcp-only-secret-80';

const tmp = mkdtempSync(join(tmpdir(), 'gw-agents-'));
const work = join(tmp, 'logs');
const other = join(tmp, 'outside');

function yaml() {
  return `
agents:
  logs:
    description: Finds errors in the application logs
    model: fake-model
    instructions: You are LOGS-AGENT, a log analyst.
    workdir: ${work}
    tools: [bash, view, create]
    mcp-servers:
      everything:
        command: node
        args: [${EVERYTHING}, stdio]
        env: {FOO: "bar-80", MCP_ONLY: "\${SECRET_80}"}
        tools: [echo, get-env, get-sum, trigger-long-running-operation]
    allow:
      shell: [ls, cat, grep, wc, echo]
      read: [${work}]
      mcp: [everything-echo, everything-get-env, everything-trigger-*]
    deny:
      shell: [rm]
    max-tool-calls: 3
  tiny:
    model: fake-model
    instructions: You are TINY.
    workdir: ${work}
    tools: [bash]
    allow: {shell: [ls]}
    timeout-s: 2
`;
}

mkdirSync(work, { recursive: true });
mkdirSync(other, { recursive: true });
writeFileSync(join(work, 'app.log'), 'INFO start\nERROR disk full on /var\n');
writeFileSync(join(work, 'victim.txt'), 'keep me\n');
writeFileSync(join(other, 'secret.txt'), 'outside the roots\n');
writeFileSync(join(tmp, 'gateway.yaml'), yaml());

const ctx = useGateway({
  providerKey: PROVIDER_SECRET,
  args: ['--config', join(tmp, 'gateway.yaml'), '--admin-key', ADMIN_KEY],
  env: {
    GITHUB_TOKEN: GH_SECRET, GH_TOKEN: GH_SECRET, COPILOT_GATEWAY_ADMIN_KEY: ADMIN_KEY,
    COPILOT_GATEWAY_PROVIDER_KEY: PROVIDER_SECRET, SECRET_80: MCP_SECRET,
  },
});
after(() => rmSync(tmp, { recursive: true, force: true })); /* after the gateway has stopped */

/** A tool round trip: the prompt with tok gets `calls`, the tool result containing `seen`
 * gets `final`. */
function script(tok, calls, seen, final) {
  ctx.fake.reset();
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: calls.map((c, i) => ({ id: `call_${tok}_${i}`, ...c })) } },
    { match_tool: seen, reply: { content: final } },
  ] });
}

const toolResults = (tok) => toolResultsFor(ctx.fake, tok);

const audit = (query = '') => auditRows(ctx.gw, ADMIN_KEY, query);

const chat = (tok, extra = {}) => ctx.client.chat.completions.create({
  model: 'agent/logs', messages: [{ role: 'user', content: `Look at the logs ${tok}` }], ...extra,
});

test('the agents are models: GET /v1/models lists agent/logs (OpenAI and Anthropic shapes)', async () => {
  const r = await http(ctx.gw, 'GET', '/v1/models');
  assert.ok(r.json.data.some((m) => m.id === 'agent/logs'), r.text);
  const a = await http(ctx.gw, 'GET', '/v1/models', { headers: { 'anthropic-version': '2023-06-01' } });
  assert.ok(a.json.data.some((m) => m.id === 'agent/logs' && m.type === 'model'), a.text);
});

test('an unknown agent is a 404 model_not_found', async () => {
  const r = await http(ctx.gw, 'POST', '/v1/chat/completions', { body: { model: 'agent/nope', messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.error.code, 'model_not_found');
});

test('an allowed command runs; the client gets the answer, never the agent\'s tool call', async () => {
  const tok = uniq('A1');
  script(tok, [{ name: 'bash', arguments: { command: 'grep ERROR app.log', description: 'find errors' } }], 'disk full', `The log says: disk full (${tok})`);
  const r = await chat(tok);
  assert.equal(r.choices[0].message.content, `The log says: disk full (${tok})`);
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(toolResults(tok).some((t) => t.includes('ERROR disk full')), JSON.stringify(toolResults(tok)));
  // The agent's instructions are its system prompt.
  const first = ctx.fake.requestsFor(tok)[0];
  assert.match(textOf(first.body.messages[0].content), /LOGS-AGENT/);
  const rows = await audit('?agent=logs&limit=5');
  const row = rows.find((x) => x.target === 'grep ERROR app.log' && x.tool === 'bash');
  assert.ok(row, JSON.stringify(rows));
  assert.equal(row.decision, 'allow');
  assert.equal(row.kind, 'shell');
  assert.equal(row.rule, 'shell(grep)');
  assert.equal(row.tool, 'bash');
  // One decision, one row: the runtime's permission prompt for the same command (the fence
  // behind the hook) is not a second row.
  assert.deepEqual(rows.filter((x) => x.target === 'grep ERROR app.log').map((x) => x.tool), ['bash'], JSON.stringify(rows));
  await waitFor(async () => (await audit('?agent=logs&limit=5')).find((x) => x.id === row.id)?.outcome === 'ok', { what: 'the outcome in the audit row' });
});

test('rm -rf is denied by the deny rule: the files stay, the model is told why, the audit says so', async () => {
  const tok = uniq('A2');
  script(tok, [{ name: 'bash', arguments: { command: 'rm -rf victim.txt', description: 'clean' } }], 'denied by policy', `Could not delete (${tok})`);
  const r = await chat(tok);
  assert.equal(r.choices[0].message.content, `Could not delete (${tok})`);
  assert.ok(existsSync(join(work, 'victim.txt')), 'the file is intact');
  assert.ok(toolResults(tok).some((t) => t.includes('denied by policy: shell(rm)')), JSON.stringify(toolResults(tok)));
  const rows = await audit('?decision=deny&limit=10');
  const row = rows.find((x) => x.target.includes('rm'));
  assert.ok(row, JSON.stringify(rows));
  assert.equal(row.rule, 'shell(rm)');
  assert.equal(row.outcome, 'denied');
});

test('a write through > is denied (no write roots), and so is a read outside the roots', async () => {
  const tok = uniq('A3');
  script(tok, [
    { name: 'bash', arguments: { command: 'echo pwned > out.txt', description: 'write' } },
    { name: 'view', arguments: { path: join(other, 'secret.txt') } },
  ], 'denied by policy', `Both refused (${tok})`);
  const r = await chat(tok);
  assert.equal(r.choices[0].message.content, `Both refused (${tok})`);
  assert.ok(!existsSync(join(work, 'out.txt')), 'nothing was written');
  const results = toolResults(tok);
  assert.ok(results.some((t) => t.includes('write(')), JSON.stringify(results));
  assert.ok(results.some((t) => t.includes('read(')), JSON.stringify(results));
  assert.ok(!results.some((t) => t.includes('outside the roots')), 'the file was not read');
});

test('MCP tools: allowed by glob, denied otherwise; the server gets none of the gateway\'s secrets', async () => {
  const tok = uniq('A4');
  script(tok, [
    { name: 'everything-get-env', arguments: {} },
    { name: 'everything-get-sum', arguments: { a: 1, b: 2 } },
  ], 'FOO', `MCP done (${tok})`);
  const r = await chat(tok);
  assert.equal(r.choices[0].message.content, `MCP done (${tok})`);
  const results = toolResults(tok);
  const env = results.find((t) => t.includes('FOO'));
  assert.ok(env, JSON.stringify(results));
  assert.match(env, /bar-80/);
  assert.match(env, new RegExp(MCP_SECRET)); /* its own ${VAR}, and only its own */
  for (const secret of [ADMIN_KEY, PROVIDER_SECRET, GH_SECRET, 'COPILOT_GATEWAY', 'COPILOT_HOME', 'SECRET_80']) {
    assert.ok(!env.includes(secret), `the MCP server's environment holds ${secret}: ${env}`);
  }
  assert.ok(results.some((t) => t.includes('denied by policy: no rule allows mcp(everything-get-sum)')), JSON.stringify(results));
});

test('the agent\'s shell gets none of the gateway\'s secrets (tokens, keys, MCP servers\' ${VAR}s)', async () => {
  const tok = uniq('A4s');
  const vars = ['GH_TOKEN', 'GITHUB_TOKEN', 'COPILOT_GITHUB_TOKEN', 'COPILOT_GATEWAY_ADMIN_KEY', 'COPILOT_GATEWAY_PROVIDER_KEY', 'SECRET_80'];
  script(tok, [{ name: 'bash', arguments: { command: `echo "${vars.map((v) => `${v}=[$${v}]`).join(' ')} HOME=[$HOME]"`, description: 'env' } }], 'HOME=', `Env (${tok})`);
  const r = await chat(tok);
  assert.equal(r.choices[0].message.content, `Env (${tok})`);
  const out = toolResults(tok).find((t) => t.includes('HOME=')) ?? '';
  assert.match(out, /HOME=\[\//, out); /* the shell ran, and expanded variables */
  for (const v of vars) assert.ok(out.includes(`${v}=[]`), `${v} reached the agent's shell: ${out}`);
  for (const secret of [ADMIN_KEY, PROVIDER_SECRET, GH_SECRET, MCP_SECRET]) assert.ok(!out.includes(secret), out);
});

test('streamed: progress lines while tools run, then the answer; multi-turn reuses the session', async () => {
  const tok = uniq('A5');
  script(tok, [{ name: 'bash', arguments: { command: 'ls', description: 'list' } }], 'app.log', `Listed (${tok})`);
  const messages = [{ role: 'user', content: `Look at the logs ${tok}` }];
  const stream = await ctx.client.chat.completions.create({ model: 'agent/logs', messages, stream: true });
  let text = '', progress = '';
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? '';
    progress += c.choices[0]?.delta?.reasoning_content ?? '';
  }
  assert.equal(text, `Listed (${tok})`);
  assert.match(progress, /> bash ls/);
  const tok2 = uniq('A5b');
  ctx.fake.script({ rules: [{ match_prompt: tok2, reply: { content: `second (${tok2})` } }] });
  const before = await metrics(ctx.gw);
  const r2 = await ctx.client.chat.completions.create({ model: 'agent/logs', messages: [...messages, { role: 'assistant', content: text }, { role: 'user', content: tok2 }] });
  const after = await metrics(ctx.gw);
  assert.equal(r2.choices[0].message.content, `second (${tok2})`);
  const d = sessionDeltas(before, after);
  assert.equal(d.reused, 1, JSON.stringify(d));
  assert.equal(d.created, 0, JSON.stringify(d));
});

test('the Anthropic Messages and Responses APIs serve agents too, plain and streamed', async () => {
  const anthropic = new Anthropic({ baseURL: ctx.gw.url, apiKey: 'unused', maxRetries: 0 });
  const tok = uniq('A6');
  script(tok, [{ name: 'bash', arguments: { command: 'wc -l app.log', description: 'count' } }], 'app.log', `Two lines (${tok})`);
  const m = await anthropic.messages.create({ model: 'agent/logs', max_tokens: 200, messages: [{ role: 'user', content: `Count ${tok}` }] });
  assert.deepEqual(m.content.map((b) => b.type), ['text']);
  assert.equal(m.content[0].text, `Two lines (${tok})`);
  assert.equal(m.stop_reason, 'end_turn');
  const tok2 = uniq('A6s');
  script(tok2, [{ name: 'bash', arguments: { command: 'ls', description: 'list' } }], 'app.log', `Listed (${tok2})`);
  const s = anthropic.messages.stream({ model: 'agent/logs', max_tokens: 200, messages: [{ role: 'user', content: `List ${tok2}` }] });
  const fin = await s.finalMessage();
  const texts = fin.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
  assert.equal(texts, `Listed (${tok2})`);
  assert.ok(fin.content.some((b) => b.type === 'thinking' && b.thinking.includes('> bash ls')), JSON.stringify(fin.content));
  const tok3 = uniq('A6r');
  script(tok3, [{ name: 'bash', arguments: { command: 'cat app.log', description: 'read' } }], 'disk full', `Responses (${tok3})`);
  const resp = await ctx.client.responses.create({ model: 'agent/logs', input: `Read ${tok3}` });
  assert.equal(resp.output_text, `Responses (${tok3})`);
  assert.ok(!resp.output.some((o) => o.type === 'function_call'), JSON.stringify(resp.output));
});

test('a client may send its own tools to an agent: those calls come back to the client', async () => {
  const tok = uniq('A7');
  ctx.fake.script({ rules: [{ match_prompt: tok, reply: { tool_calls: [{ id: 'call_w', name: 'get_weather', arguments: { city: 'Oslo' } }] } }] });
  const r = await ctx.client.chat.completions.create({
    model: 'agent/logs',
    messages: [{ role: 'user', content: `Weather ${tok}` }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
  });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(r.choices[0].message.tool_calls[0].function.name, 'get_weather');
});

test('max-tool-calls ends the turn with a 422 in the API\'s error shape', async () => {
  const tok = uniq('A8');
  ctx.fake.reset();
  // Every model call of this conversation asks for one more ls: the 4th call is over the limit of 3.
  ctx.fake.script({ rules: [{ match: tok, reply: { tool_calls: [{ id: `call_${tok}`, name: 'bash', arguments: { command: 'ls', description: 'again' } }] } }] });
  const r = await http(ctx.gw, 'POST', '/v1/chat/completions', { body: { model: 'agent/logs', messages: [{ role: 'user', content: `Loop ${tok}` }] } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'max_tool_calls');
  assert.match(r.json.error.message, /max-tool-calls/);
});

test('timeout-s ends the agent\'s turn with a 504, and the next request works', async () => {
  const tok = uniq('A9');
  ctx.fake.script({ rules: [{ match_prompt: tok, reply: { hang: true } }] });
  const r = await http(ctx.gw, 'POST', '/v1/chat/completions', { body: { model: 'agent/tiny', messages: [{ role: 'user', content: `Hang ${tok}` }] } });
  assert.equal(r.status, 504, r.text);
  assert.match(r.json.error.message, /timeout-s/);
  const tok2 = uniq('A9b');
  ctx.fake.script({ rules: [{ match_prompt: tok2, reply: { content: `fine ${tok2}` } }] });
  const ok = await ctx.client.chat.completions.create({ model: 'agent/tiny', messages: [{ role: 'user', content: tok2 }] });
  assert.equal(ok.choices[0].message.content, `fine ${tok2}`);
});

test('/admin/audit needs the admin key; filters work', async () => {
  const no = await http(ctx.gw, 'GET', '/admin/audit');
  assert.equal(no.status, 401, no.text);
  const deny = await audit('?decision=deny');
  assert.ok(deny.length >= 1 && deny.every((x) => x.decision === 'deny'), JSON.stringify(deny));
  const one = await audit('?limit=1');
  assert.equal(one.length, 1);
  // /metrics counts the decisions: one per audit row.
  const all = await audit('?limit=1000');
  const m = await metrics(ctx.gw);
  assert.equal(m['copilot_gateway_agent_tool_calls_total{decision="allow"}'], all.filter((x) => x.decision === 'allow').length);
  assert.equal(m['copilot_gateway_agent_tool_calls_total{decision="deny"}'], all.filter((x) => x.decision === 'deny').length);
});
