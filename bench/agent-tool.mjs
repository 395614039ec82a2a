// agent-tool.mjs - one agent turn with one allowed tool call: through the gateway vs the runtime alone.
//
//   node bench/agent-tool.mjs [--n 100] [--warmup 10] [--json FILE]
//
// The turn: the user asks; the fake model (tests/fake/fakemodel.mjs, its own process) answers
// with one `bash` call `ls`; the runtime runs it in the agent's workdir; the model, given the
// listing (it must name app.log), answers "Listed (<tok>)". Measured two ways, interleaved
// request by request (the order alternating), N times after a warm-up:
//   (a) gateway: POST /v1/chat/completions, model "agent/bench", non-streamed, against a
//       gateway whose config file has an agents: section (bash, allow shell [ls]); the call
//       passes the gateway's preToolUse hook (policy_check + an audit row) and its outcome
//       (postToolUse, the row's outcome); total = the whole HTTP exchange. The audit rows are
//       counted at the end (GET /admin/audit) to show the policy saw every call.
//   (b) runtime alone, over JSON-RPC (bench/rtclient.mjs): session.create with the parameters
//       the gateway sends for that agent (availableTools ["bash"], the same BYOK provider,
//       system message, workdir and switches) but no hooks, requestPermission on and each
//       permission.requested answered approve-once by this client (what lets bash run
//       without the gateway); session.send; total = until session.idle. session.delete
//       follows, outside the total (the gateway keeps an agent's session for the next turn).
// Each turn has its own token, scripted into the fake (after a reset) before the turn starts,
// so every turn is a new conversation and a new session on both paths. A turn counts only
// if its answer is exactly "Listed (<tok>)", which the fake gives only to a tool result that
// names app.log: the tool ran.
//
// The gateway is COPILOT_GATEWAY_BIN or build/copilot-gateway; the runtime, the one
// bench/rtclient.mjs finds (the gateway finds the same one).

import http from 'node:http';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from './rtclient.mjs';
import { ms, postTimed, spawnFake, summary } from './lib.mjs';
import { startGateway } from '../tests/e2e/lib.mjs';

const INSTRUCTIONS = 'You are a bench agent. List files when asked.';
const ADMIN_KEY = 'bench-admin-key';

function parseArgs(argv) {
  const o = { n: 100, warmup: 10, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--n') o.n = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--json') o.json = argv[++i];
    else {
      console.error(`agent-tool.mjs: unknown argument '${a}'`);
      process.exit(2);
    }
  }
  return o;
}

/* ---- the fake model, over its control endpoints ---- */
async function post(url, body) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
}

/** Scripts turn tok: the prompt gets one bash `ls`, a tool result naming app.log the answer. */
async function scriptTurn(fakeUrl, tok) {
  await post(`${fakeUrl}/_reset`, {});
  await post(`${fakeUrl}/_script`, { rules: [
    { match_prompt: tok, times: 1, reply: { tool_calls: [{ id: `call_${tok}`, name: 'bash', arguments: { command: 'ls', description: 'list the files' } }] } },
    { match_tool: 'app.log', times: 1, reply: { content: `Listed (${tok})` } },
  ] });
}

/* ---- (a) through the gateway ---- */
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** POSTs a non-streamed chat request; resolves {status, total (ms), content}. */
async function chat(base, body) {
  const r = await postTimed(agent, base, '/v1/chat/completions', body);
  let content = '';
  try {
    content = JSON.parse(r.text).choices?.[0]?.message?.content ?? '';
  } catch {
    content = r.text;
  }
  return { status: r.status, total: r.ms, content };
}

async function gatewayTurn(gw, tok) {
  const r = await chat(gw.url, { model: 'agent/bench', messages: [{ role: 'user', content: `List the files ${tok}` }] });
  return { ok: r.status === 200 && r.content === `Listed (${tok})`, total: r.total, got: `${r.status} ${r.content}` };
}

/** The gateway's audit rows of the agent, by decision/outcome: that the policy saw every call. */
async function auditCounts(gw) {
  const r = await fetch(`${gw.url}/admin/audit?agent=bench&limit=1000`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const rows = (await r.json()).data ?? [];
  const counts = {};
  for (const x of rows) {
    const k = `${x.tool} ${x.decision}/${x.outcome}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

/* ---- (b) the runtime alone ---- */

/** session.create as broker/profile.c builds it for the agent, minus hooks (the gateway's). */
function createParams({ sessionId, providerUrl, workdir }) {
  return {
    sessionId,
    model: 'fake-model',
    clientName: 'gw-bench',
    systemMessage: { mode: 'replace', content: INSTRUCTIONS },
    availableTools: ['bash'],
    tools: [],
    streaming: true,
    infiniteSessions: { enabled: false },
    requestPermission: true,
    envValueMode: 'direct',
    workingDirectory: workdir,
    enableSessionTelemetry: false,
    skipEmbeddingRetrieval: true,
    enableOnDemandInstructionDiscovery: false,
    enableFileHooks: false,
    enableHostGitOperations: false,
    enableSessionStore: false,
    enableSkills: false,
    memory: { enabled: false },
    customAgentsLocalOnly: true,
    provider: { type: 'openai', baseUrl: providerUrl, apiKey: 'test-key' },
  };
}

async function directTurn(rt, providerUrl, workdir, tok, timeoutMs = 120_000) {
  const sessionId = randomUUID();
  const t0 = performance.now();
  let content = '';
  let error = null;
  let permissions = 0;
  let resolveIdle;
  const idle = new Promise((resolve) => {
    resolveIdle = resolve;
  });
  rt.listen(sessionId, (ev) => {
    switch (ev.type) {
      case 'permission.requested': {
        permissions++;
        rt.request('session.permissions.handlePendingPermissionRequest', {
          sessionId, requestId: ev.data.requestId, result: { kind: 'approve-once' },
        }).catch((e) => {
          error = error || { message: e.message };
        });
        break;
      }
      case 'assistant.message':
        if (!ev.agentId) content = ev.data.content ?? '';
        break;
      case 'session.error':
        error = ev.data;
        break;
      case 'session.idle':
      case '__exit':
        if (ev.type === '__exit') error = error || { message: 'runtime exited' };
        resolveIdle();
        break;
      default:
        break;
    }
  });
  let timer;
  let total;
  try {
    await rt.request('session.create', createParams({ sessionId, providerUrl, workdir }));
    await rt.request('session.send', { sessionId, prompt: `List the files ${tok}` });
    await Promise.race([idle, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`turn timed out after ${timeoutMs} ms`)), timeoutMs);
    })]);
    total = performance.now() - t0;
  } finally {
    clearTimeout(timer);
    rt.listen(sessionId, null);
    if (!rt.exited) await rt.request('session.delete', { sessionId }).catch(() => {});
  }
  return { ok: !error && content === `Listed (${tok})`, total, permissions, got: error ? JSON.stringify(error) : content };
}

/* ---- main ---- */
async function main() {
  const o = parseArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(os.tmpdir(), 'gw-bench-agent-'));
  const workdir = join(tmp, 'work');
  mkdirSync(workdir);
  writeFileSync(join(workdir, 'app.log'), 'INFO start\nERROR disk full on /var\n');
  writeFileSync(join(workdir, 'README'), 'bench\n');
  const work = realpathSync(workdir);
  writeFileSync(join(tmp, 'gateway.yaml'), `
agents:
  bench:
    model: fake-model
    instructions: ${INSTRUCTIONS}
    workdir: ${work}
    tools: [bash]
    allow: {shell: [ls], read: [${work}]}
`);
  const fake = await spawnFake();
  const providerUrl = `${fake.url}/v1`;
  const results = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model, loadavg: os.loadavg(), options: o };
  let gw;
  let rt;
  const g = [];
  const d = [];
  const diff = []; /* gateway minus direct, turn by turn (both of a pair ran back to back) */
  const errors = { gateway: 0, direct: 0 };
  let permissions = 0;
  try {
    gw = await startGateway({ fake: fake.url, args: ['--config', join(tmp, 'gateway.yaml'), '--log-level', 'warn', '--admin-key', ADMIN_KEY] });
    rt = await Runtime.start();
    results.runtimeVersion = rt.connectInfo.version;
    process.stderr.write(`agent-tool: ${o.warmup} warm-up + ${o.n} turns each, interleaved; gateway ${gw.url}, runtime ${rt.connectInfo.version} (pid ${rt.pid})\n`);
    for (let i = -o.warmup; i < o.n; i++) {
      const order = i % 2 === 0 ? ['gateway', 'direct'] : ['direct', 'gateway'];
      const pair = {};
      for (const path of order) {
        const tok = `AT${path[0]}${i + o.warmup}x${randomUUID().slice(0, 8)}`;
        await scriptTurn(fake.url, tok);
        const r = path === 'gateway' ? await gatewayTurn(gw, tok) : await directTurn(rt, providerUrl, work, tok);
        if (!r.ok) {
          errors[path]++;
          process.stderr.write(`agent-tool: ${path} turn ${i}: ${r.got}\n`);
          continue;
        }
        if (i < 0) continue;
        pair[path] = r.total;
        if (path === 'gateway') g.push(r.total);
        else {
          d.push(r.total);
          permissions += r.permissions;
        }
      }
      if (pair.gateway !== undefined && pair.direct !== undefined) diff.push(pair.gateway - pair.direct);
    }
    results.audit = await auditCounts(gw);
  } finally {
    if (gw) await gw.stop();
    if (rt) await rt.stop();
    fake.close();
    agent.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
  results.gateway = summary(g);
  results.direct = summary(d);
  results.diff = summary(diff);
  results.raw = { gateway: g, direct: d };
  results.errors = errors;
  results.directPermissionPrompts = permissions;
  const row = (name, s, errs) => `| ${name} | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${ms(s.min)} | ${ms(s.max)} | ${errs} |`;
  const lines = [
    '# one agent turn with one bash tool call (ls): gateway vs runtime alone',
    '',
    `${results.date}; node ${results.node}; ${results.cpus} CPUs (${results.cpuModel}); load ${results.loadavg.map((x) => x.toFixed(2)).join(' ')}; runtime ${results.runtimeVersion ?? '?'}; fake model`,
    '',
    `N=${o.n} per path after ${o.warmup} warm-up turns, interleaved (ms)`,
    '',
    '| path | n | p50 | p90 | p99 | min | max | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    row('gateway, agent/bench (HTTP, non-streamed)', results.gateway, errors.gateway),
    row('runtime alone (JSON-RPC, create+send→idle)', results.direct, errors.direct),
    '',
    `gateway / runtime: p50 ${(results.gateway.p50 / results.direct.p50).toFixed(2)}x (+${ms(results.gateway.p50 - results.direct.p50)} ms), ` +
      `p90 ${(results.gateway.p90 / results.direct.p90).toFixed(2)}x (+${ms(results.gateway.p90 - results.direct.p90)} ms)`,
    `paired (gateway minus runtime, the two turns of each pair back to back): p50 ${ms(results.diff.p50)} ms, ` +
      `p90 ${ms(results.diff.p90)} ms over ${diff.length} pairs`,
    `permission prompts the direct client answered: ${permissions} in ${d.length} turns; ` +
      `the gateway's audit rows (warm-up included): ${JSON.stringify(results.audit ?? {})}`,
  ];
  console.log(lines.join('\n'));
  if (o.json) writeFileSync(o.json, JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(`agent-tool.mjs: ${e.stack || e.message}`);
  process.exit(1);
});
