// responses.mjs - what a Codex-shaped conversation costs over the Responses API, against an
// instant fake model, and how the two ways of continuing it compare.
//
//   node bench/responses.mjs [--conversations 3] [--turns 20] [--system-bytes 40000]
//                            [--user-bytes 1000] [--answer-bytes 200] [--json FILE]
//
// One conversation: a large developer prompt (Codex sends ~40 KB of instructions, skills and
// environment), then T turns, each adding a user message and the model's answer. It is run
// C times along each of three paths, alternating which path goes first:
//   replay  POST /v1/responses with store: false and the whole input every turn (Codex);
//   chain   POST /v1/responses with previous_response_id and only the new user message
//           (the gateway rebuilds the conversation from its stored chain);
//   chat    POST /v1/chat/completions with the whole history (the baseline).
// All three land on one runtime session per conversation (the gateway recognises the history
// by its hash); the copilot_gateway_sessions_* deltas show it. Per-turn latency is the p50 over
// the C conversations, request start to end of the non-streamed response. Markdown on stdout,
// progress on stderr. The gateway is COPILOT_GATEWAY_BIN or build/copilot-gateway.

import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { startGateway, metrics } from '../tests/e2e/lib.mjs';
import { ms, postTimed, spawnFake, summary } from './lib.mjs';

function parseArgs(argv) {
  const o = { conversations: 3, turns: 20, systemBytes: 40000, userBytes: 1000, answerBytes: 200, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--conversations') o.conversations = Number(argv[++i]);
    else if (a === '--turns') o.turns = Number(argv[++i]);
    else if (a === '--system-bytes') o.systemBytes = Number(argv[++i]);
    else if (a === '--user-bytes') o.userBytes = Number(argv[++i]);
    else if (a === '--answer-bytes') o.answerBytes = Number(argv[++i]);
    else if (a === '--json') o.json = argv[++i];
    else {
      console.error(`responses.mjs: unknown argument '${a}'`);
      process.exit(2);
    }
  }
  return o;
}

const progress = (s) => process.stderr.write(`${s}\n`);
const MARKER = 'RESPONSES-BENCH-TURN';
const MODEL = 'fake-model';

function filler(tag, bytes) {
  const words = 'the model reads the instructions then the history and answers the last request with a short reply'.split(' ');
  let s = `[${tag}]`;
  for (let i = 0; s.length < bytes; i++) s += ` ${words[i % words.length]}`;
  return s.slice(0, bytes);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** POSTs JSON; resolves {status, ms, json}. */
async function post(base, path, body) {
  const r = await postTimed(agent, base, path, body);
  try {
    return { status: r.status, ms: r.ms, json: JSON.parse(r.text) };
  } catch {
    throw new Error(`${path}: ${r.status} ${r.text.slice(0, 200)}`);
  }
}

/** One conversation along `path`; returns per-turn latencies (ms). */
async function conversation(base, path, o, tag, answer) {
  const system = filler(`instructions ${tag}`, o.systemBytes);
  const times = [];
  const items = [{ type: 'message', role: 'developer', content: [{ type: 'input_text', text: system }] }];
  const messages = [{ role: 'system', content: system }];
  let prev = null;
  for (let turn = 1; turn <= o.turns; turn++) {
    const user = `${MARKER} ${filler(`${tag} turn ${turn}`, o.userBytes)}`;
    let r;
    if (path === 'chat') {
      messages.push({ role: 'user', content: user });
      r = await post(base, '/v1/chat/completions', { model: MODEL, messages });
      if (r.status !== 200 || r.json.choices[0].message.content !== answer) throw new Error(`chat turn ${turn}: ${r.status}`);
      messages.push({ role: 'assistant', content: answer });
    } else if (path === 'replay') {
      items.push({ type: 'message', role: 'user', content: [{ type: 'input_text', text: user }] });
      r = await post(base, '/v1/responses', { model: MODEL, input: items, store: false });
      if (r.status !== 200 || r.json.output?.[0]?.content?.[0]?.text !== answer) throw new Error(`replay turn ${turn}: ${r.status}`);
      items.push(...r.json.output);
    } else {
      const input = [{ role: 'user', content: user }];
      if (!prev) input.unshift({ role: 'developer', content: system });
      r = await post(base, '/v1/responses', { model: MODEL, input, previous_response_id: prev ?? undefined });
      if (r.status !== 200 || r.json.output?.[0]?.content?.[0]?.text !== answer) throw new Error(`chain turn ${turn}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
      prev = r.json.id;
    }
    times.push(r.ms);
  }
  return times;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const fake = await spawnFake();
  const answer = filler('answer', o.answerBytes);
  await fetch(`${fake.url}/_script`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ rules: [{ match: MARKER, on: 'prompt', reply: { content: answer } }] }),
  });
  const gw = await startGateway({ fake: fake.url, args: ['--log-level', 'warn', '--runtime-pool', '1'] });
  const paths = ['replay', 'chain', 'chat'];
  const perTurn = Object.fromEntries(paths.map((p) => [p, Array.from({ length: o.turns }, () => [])]));
  const deltas = Object.fromEntries(paths.map((p) => [p, { created: 0, reused: 0, seeded: 0 }]));
  try {
    for (let c = 0; c < o.conversations; c++) {
      const order = paths.map((_, i) => paths[(i + c) % paths.length]);
      for (const p of order) {
        progress(`conversation ${c + 1}/${o.conversations}: ${p}`);
        const m0 = await metrics(gw);
        const times = await conversation(gw.url, p, o, `${p}-${c}`, answer);
        const m1 = await metrics(gw);
        for (const k of ['created', 'reused', 'seeded']) {
          const key = `copilot_gateway_sessions_${k}_total`;
          deltas[p][k] += (m1[key] ?? 0) - (m0[key] ?? 0);
        }
        times.forEach((t, i) => perTurn[p][i].push(t));
      }
    }
  } finally {
    await gw.stop();
    fake.close();
    agent.destroy();
  }
  const p50 = (p, i) => summary(perTurn[p][i]).p50;
  const show = [...new Set([1, 2, 5, 10, 20, 40, 80, o.turns])].filter((t) => t <= o.turns).sort((a, b) => a - b);
  console.log(`### Responses API, a Codex-shaped conversation (ms, p50 of ${o.conversations} conversations)\n`);
  console.log(`${o.systemBytes} B developer prompt, ${o.userBytes} B user messages, ${o.answerBytes} B answers, non-streamed, one runtime.\n`);
  console.log('| turn | replay (store: false) | previous_response_id | chat completions |');
  console.log('| ---: | ---: | ---: | ---: |');
  for (const t of show) console.log(`| ${t} | ${ms(p50('replay', t - 1))} | ${ms(p50('chain', t - 1))} | ${ms(p50('chat', t - 1))} |`);
  const all = (p) => summary(perTurn[p].slice(1).flat()).p50;
  console.log(`| turns 2–${o.turns} | ${ms(all('replay'))} | ${ms(all('chain'))} | ${ms(all('chat'))} |\n`);
  console.log('| path | sessions created | reused | seeded |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const p of paths) console.log(`| ${p} | ${deltas[p].created} | ${deltas[p].reused} | ${deltas[p].seeded} |`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, perTurn, deltas }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
