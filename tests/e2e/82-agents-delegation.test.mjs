// 82-agents-delegation: an agent that hands a sub-task to another agent (`delegates`), through
// the runtime's sub-agents. What a user sees: the delegating agent's answer only (the
// sub-agent's own text and tool calls never reach the client), the sub-agent's tools decided by
// the delegate's own rules and audited under its name, delegation to an agent not listed denied,
// and the sub-agent's prompt listing the agent's workdir, never the gateway's.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGateway, test, uniq, http, textOf, auditRows } from './lib.mjs';

const ADMIN_KEY = 'admin-secret-82';
const tmp = mkdtempSync(join(tmpdir(), 'gw-agents-deleg-'));
const rcaDir = join(tmp, 'incident');
const logsDir = join(tmp, 'logs');
mkdirSync(rcaDir, { recursive: true });
mkdirSync(logsDir, { recursive: true });
writeFileSync(join(rcaDir, 'marker-rca-82.txt'), 'x\n');
writeFileSync(join(rcaDir, 'app.log'), 'INFO up\nERROR db timeout after 30s\n');
writeFileSync(join(logsDir, 'other.log'), 'nothing\n');

writeFileSync(join(tmp, 'gateway.yaml'), `
agents:
  rca:
    model: fake-model
    instructions: You are RCA-AGENT.
    workdir: ${rcaDir}
    delegates: [logs]
  logs:
    description: Reads the logs
    model: fake-model
    instructions: You are LOGS-SUB-AGENT.
    workdir: ${logsDir}
    tools: [bash, view]
    allow:
      shell: [grep]
      read: [${rcaDir}]
    deny:
      shell: [rm]
`);

const ctx = useGateway({ args: ['--config', join(tmp, 'gateway.yaml'), '--admin-key', ADMIN_KEY] });
after(() => rmSync(tmp, { recursive: true, force: true }));

const audit = (query = '') => auditRows(ctx.gw, ADMIN_KEY, query);

/** The requests the fake model got whose system prompt matches re. */
const requestsWithSystem = (re) => ctx.fake.log().filter((r) => re.test(textOf(r.body?.messages?.[0]?.content ?? '')));

/** The parent delegates `SUB <tok>` to agent_type; the sub-agent runs `subCalls`, answers
 * `subAnswer`; the parent then answers `final`. */
function script(tok, agentType, subCalls, subAnswer, final) {
  ctx.fake.reset();
  ctx.fake.script({ rules: [
    // the sub-agent's turn: its prompt is the task's prompt
    { match_prompt: `SUB ${tok}`, reply: subCalls.length ? { tool_calls: subCalls.map((c, i) => ({ id: `sub_${tok}_${i}`, ...c })) } : { content: subAnswer } },
    { match: `SUB ${tok}`, reply: { content: subAnswer } },
    // the parent: delegate, then answer once the task's result is back
    { match_prompt: `Investigate ${tok}`, reply: { tool_calls: [{ id: `task_${tok}`, name: 'task', arguments: { agent_type: agentType, name: 'read-logs', description: 'read the logs', prompt: `SUB ${tok}: find the errors` } }] } },
    { match: `Investigate ${tok}`, reply: { content: final } },
  ] });
}

test('rca delegates to logs: the client gets rca\'s answer only; logs\'s tools run under logs\'s rules', async () => {
  const tok = uniq('D1');
  script(tok, 'logs', [
    { name: 'bash', arguments: { command: 'grep ERROR app.log', description: 'errors' } },
    { name: 'bash', arguments: { command: 'rm -f app.log', description: 'clean' } },
    { name: 'view', arguments: { path: 'app.log' } }, /* relative: to the session's directory */
  ], `SUBANSWER db timeout ${tok}`, `Root cause: the database timed out (${tok})`);
  const r = await ctx.client.chat.completions.create({ model: 'agent/rca', messages: [{ role: 'user', content: `Investigate ${tok}` }] });
  assert.equal(r.choices[0].message.content, `Root cause: the database timed out (${tok})`);
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.doesNotMatch(r.choices[0].message.content, /SUBANSWER/);

  // The sub-agent ran with its own instructions, in the session's (rca's) workdir, and its
  // built-in prompt lists that directory's files.
  const sub = requestsWithSystem(/LOGS-SUB-AGENT/);
  assert.ok(sub.length >= 1, 'the sub-agent made model calls');
  const subSystem = textOf(sub[0].body.messages[0].content);
  assert.match(subSystem, /marker-rca-82\.txt/);
  assert.doesNotMatch(subSystem, /package\.json|Makefile/); /* the gateway's own directory */
  const subTools = sub.flatMap((q) => q.body.messages.filter((m) => m.role === 'tool').map((m) => textOf(m.content)));
  assert.equal(subTools.filter((t) => t.includes('ERROR db timeout')).length, 2, JSON.stringify(subTools));
  assert.ok(subTools.some((t) => t.includes('denied by policy: shell(rm)')), JSON.stringify(subTools));

  // The delegate's tools are offered to the sub-agent only, not to rca itself.
  const toolNames = (q) => (q.body.tools ?? []).map((t) => t.function?.name);
  assert.ok(toolNames(sub[0]).includes('bash'), JSON.stringify(toolNames(sub[0])));
  const parent0 = requestsWithSystem(/RCA-AGENT/)[0];
  assert.ok(toolNames(parent0).includes('task'), JSON.stringify(toolNames(parent0)));
  assert.ok(!toolNames(parent0).includes('bash') && !toolNames(parent0).includes('view'), JSON.stringify(toolNames(parent0)));

  // The parent got the sub-agent's answer as the task's result.
  const parentTools = requestsWithSystem(/RCA-AGENT/).flatMap((q) => q.body.messages.filter((m) => m.role === 'tool').map((m) => textOf(m.content)));
  assert.ok(parentTools.some((t) => t.includes(`SUBANSWER db timeout ${tok}`)), JSON.stringify(parentTools));

  const rows = await audit('?limit=20');
  assert.ok(rows.some((x) => x.agent === 'rca' && x.kind === 'agent' && x.target === 'logs' && x.decision === 'allow'), JSON.stringify(rows));
  assert.ok(rows.some((x) => x.agent === 'logs' && x.target === 'grep ERROR app.log' && x.decision === 'allow' && x.rule === 'shell(grep)'), JSON.stringify(rows));
  assert.ok(rows.some((x) => x.agent === 'logs' && x.decision === 'deny' && x.rule === 'shell(rm)'), JSON.stringify(rows));
});

test('delegating to an agent that is not among the delegates is denied', async () => {
  const tok = uniq('D2');
  script(tok, 'general-purpose', [], `SUBANSWER never ${tok}`, `Could not delegate (${tok})`);
  const r = await ctx.client.chat.completions.create({ model: 'agent/rca', messages: [{ role: 'user', content: `Investigate ${tok}` }] });
  assert.equal(r.choices[0].message.content, `Could not delegate (${tok})`);
  const parentTools = requestsWithSystem(/RCA-AGENT/).flatMap((q) => q.body.messages.filter((m) => m.role === 'tool').map((m) => textOf(m.content)));
  assert.ok(parentTools.some((t) => t.includes('denied by policy: no rule allows agent(general-purpose)')), JSON.stringify(parentTools));
  assert.equal(ctx.fake.log().filter((q) => JSON.stringify(q.body).includes(`SUBANSWER never ${tok}`)).length, 0);
});

test('streamed: the client sees progress for the delegation, and only rca\'s text', async () => {
  const tok = uniq('D3');
  script(tok, 'logs', [], `SUBANSWER streamed ${tok}`, `Streamed root cause (${tok})`);
  const stream = await ctx.client.chat.completions.create({ model: 'agent/rca', stream: true, messages: [{ role: 'user', content: `Investigate ${tok}` }] });
  let text = '', progress = '';
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? '';
    progress += c.choices[0]?.delta?.reasoning_content ?? '';
  }
  assert.equal(text, `Streamed root cause (${tok})`);
  assert.match(progress, /> task/);
  assert.doesNotMatch(text + progress, /SUBANSWER/);
});
