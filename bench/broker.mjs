// broker.mjs - what the session broker buys, against an instant fake model.
//
//   node bench/broker.mjs [--conversations 5] [--turns 20] [--user-bytes 4000] [--answer-bytes 200]
//                         [--duration 10] [--concurrency 1,16,64] [--idle-sessions 1000]
//                         [--json FILE] [--no-turns] [--no-throughput] [--no-memory]
//
// (a) Reuse vs. reseed. A conversation of T turns whose history grows by ~4 KB a turn (a ~4 KB
//     user message plus a ~200-byte answer), C times, on one gateway, each conversation run
//     twice: through the broker as a client sends it (the same conversation each turn, so the
//     live session is continued), and with a new unique `X-Session-Id` on every turn (a pinned
//     request only matches its own pin's sessions, so every turn opens a fresh session seeded
//     with the whole history). Per-turn latency is the p50 over the C conversations; the
//     gateway's copilot_gateway_sessions_{created,reused,seeded}_total deltas show which path ran.
// (b) Throughput: K concurrent conversations, each looping (append a user message, request,
//     append the answer; a fresh conversation after T turns), D seconds per level; completed
//     turns per second and latency percentiles. The single runtime is `--runtime-pool 1` when
//     the gateway has a pool (its default is one runtime per core); `--runtime-pool 2` is run as
//     well then, and a note printed otherwise.
// (c) Memory: M one-turn conversations (16 at a time) left idle, on a gateway started with
//     --max-sessions 2M (and --runtime-recycle-mb 0 when it has that flag: ~2 GB of idle
//     sessions would otherwise get the runtime recycled mid-measurement); VmRSS of the gateway
//     and of the runtime (pid from GET /readyz) before and after.
//
// The fake model (tests/fake/fakemodel.mjs, its own process) answers every benchmark prompt at
// once with the same ~200-byte text (one scripted rule: its default, "ECHO: <prompt>", would
// repeat the 4 KB prompt and double the growth of the history). The gateway is
// COPILOT_GATEWAY_BIN or build/copilot-gateway. Markdown on stdout, progress on stderr.

import http from 'node:http';
import os from 'node:os';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway, metrics, sleep, GATEWAY_BIN, ROOT } from '../tests/e2e/lib.mjs';
import { ms, spawnFake, summary } from './lib.mjs';

function parseArgs(argv) {
  const o = {
    conversations: 5, turns: 20, userBytes: 4000, answerBytes: 200, duration: 10,
    concurrency: [1, 16, 64], idleSessions: 1000, json: null, doTurns: true, doThroughput: true, doMemory: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--conversations') o.conversations = Number(argv[++i]);
    else if (a === '--turns') o.turns = Number(argv[++i]);
    else if (a === '--user-bytes') o.userBytes = Number(argv[++i]);
    else if (a === '--answer-bytes') o.answerBytes = Number(argv[++i]);
    else if (a === '--duration') o.duration = Number(argv[++i]);
    else if (a === '--concurrency') o.concurrency = argv[++i].split(',').map(Number);
    else if (a === '--idle-sessions') o.idleSessions = Number(argv[++i]);
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--no-turns') o.doTurns = false;
    else if (a === '--no-throughput') o.doThroughput = false;
    else if (a === '--no-memory') o.doMemory = false;
    else {
      console.error(`broker.mjs: unknown argument '${a}'`);
      process.exit(2);
    }
  }
  return o;
}

const progress = (s) => process.stderr.write(`${s}\n`);


/* Every benchmark prompt carries MARKER; the fake answers it with ANSWER (answerBytes long). */
const MARKER = 'BROKER-BENCH-TURN';
function answerText(bytes) {
  const head = 'Understood. Here is a short answer to the request above, padded to a fixed size so that every turn of every conversation adds the same amount of history: ';
  let s = head;
  while (s.length < bytes) s += 'lorem ipsum dolor sit amet ';
  return s.slice(0, bytes);
}
async function scriptFake(fakeUrl, answer) {
  const r = await fetch(`${fakeUrl}/_script`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ rules: [{ match: MARKER, on: 'prompt', reply: { content: answer } }] }),
  });
  if (r.status !== 200) throw new Error(`fake /_script: ${r.status}`);
}

/* ~bytes of prose-like text, different for every (conversation, turn). */
const WORDS = ('the gateway keeps a runtime session alive across requests and recognises the next request of a ' +
  'conversation by a hash of its history so that an agent tool loop runs as one session instead of many ' +
  'function returns value buffer parser socket stream header event loop timeout retry model token context')
  .split(' ');
let nonce = 0;
function userText(tag, bytes) {
  let x = (++nonce * 2654435761) >>> 0;
  const parts = [`[${MARKER} ${tag} #${nonce}]`];
  let len = parts[0].length;
  while (len < bytes) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = WORDS[x % WORDS.length];
    parts.push(w);
    len += w.length + 1;
  }
  return parts.join(' ').slice(0, bytes);
}

/* ---- HTTP client ---- */
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/** POSTs a non-streamed chat request; resolves {status, total (ms), content}. */
function chatRequest(base, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const t0 = performance.now();
    const url = new URL(`${base}/v1/chat/completions`);
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => {
        const total = performance.now() - t0;
        let content = '';
        if (res.statusCode === 200) {
          try {
            content = JSON.parse(text).choices?.[0]?.message?.content ?? '';
          } catch {
            /* counted as an error by the caller */
          }
        }
        resolve({ status: res.statusCode, total, content, text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A client-side conversation: append user message, request, append the answer. */
class Conversation {
  constructor(tag, o, answer) {
    this.tag = tag;
    this.o = o;
    this.answer = answer;
    this.messages = [{ role: 'system', content: 'You are a helpful assistant.' }];
    this.turns = 0;
  }
  historyBytes() {
    return this.messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
  }
  /** One turn; resolves {ok, total, status}. headers: e.g. {'x-session-id': …}. */
  async turn(gw, { headers = {}, userBytes = this.o.userBytes } = {}) {
    this.messages.push({ role: 'user', content: userText(`${this.tag} turn ${this.turns + 1}`, userBytes) });
    const r = await chatRequest(gw.url, { model: 'fake-model', messages: this.messages }, headers);
    const ok = r.status === 200 && r.content === this.answer;
    if (!ok) {
      this.messages.pop();
      return { ok, total: r.total, status: r.status, detail: r.text.slice(0, 300) };
    }
    this.messages.push({ role: 'assistant', content: r.content });
    this.turns++;
    return { ok, total: r.total, status: r.status };
  }
}

/* resumed (dormant sessions, gateway 7d40fc3+) and evicted are collected too, not required. */
const SESSION_METRICS = ['created', 'reused', 'seeded', 'resumed', 'evicted'];
async function sessionCounters(gw) {
  const m = await metrics(gw);
  const out = {};
  for (const k of SESSION_METRICS) out[k] = m[`copilot_gateway_sessions_${k}_total`];
  out.live = m.copilot_gateway_sessions_live ?? NaN;
  return out;
}
function delta(after, before) {
  const out = {};
  for (const k of SESSION_METRICS) if (Number.isFinite(after[k])) out[k] = after[k] - before[k];
  return out;
}
function addInto(acc, d) {
  for (const k of Object.keys(d)) acc[k] = (acc[k] ?? 0) + d[k];
  return acc;
}

/* ---- (a) reuse vs. reseed ---- */
async function reuseVsReseed(gw, o, answer) {
  const modes = ['reuse', 'reseed'];
  const lat = { reuse: Array.from({ length: o.turns }, () => []), reseed: Array.from({ length: o.turns }, () => []) };
  const counters = { reuse: {}, reseed: {} };
  const history = Array.from({ length: o.turns }, () => 0);
  let errors = 0;
  let pin = 0;
  for (let c = 0; c < o.conversations; c++) {
    /* Alternate which mode goes first, so drift (e.g. sessions piling up) hits both alike. */
    const order = c % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      progress(`turns: conversation ${c + 1}/${o.conversations}, ${mode}, ${o.turns} turns`);
      const conv = new Conversation(`${mode}-c${c}`, o, answer);
      const before = await sessionCounters(gw);
      for (let t = 0; t < o.turns; t++) {
        const headers = mode === 'reseed' ? { 'x-session-id': `broker-bench-${process.pid}-${++pin}` } : {};
        const r = await conv.turn(gw, { headers });
        if (!r.ok) {
          errors++;
          progress(`  turn ${t + 1}: error ${r.status} ${r.detail ?? ''}`);
          break;
        }
        lat[mode][t].push(r.total);
        if (mode === 'reuse' && c === 0) history[t] = conv.historyBytes();
      }
      addInto(counters[mode], delta(await sessionCounters(gw), before));
    }
  }
  const perTurn = lat.reuse.map((_, t) => ({
    turn: t + 1, historyBytes: history[t], reuse: summary(lat.reuse[t]), reseed: summary(lat.reseed[t]),
  }));
  const all = (mode) => summary(lat[mode].flat());
  return { perTurn, counters, errors, overall: { reuse: all('reuse'), reseed: all('reseed') } };
}

/* ---- (b) throughput ---- */
async function throughput(gw, o, answer, concurrency, seconds) {
  const lat = [];
  let errors = 0;
  let convSeq = 0;
  const before = await sessionCounters(gw);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async (w) => {
    let conv = null;
    while (performance.now() < end) {
      if (!conv || conv.turns >= o.turns) conv = new Conversation(`tput-k${concurrency}-w${w}-c${++convSeq}`, o, answer);
      try {
        const r = await conv.turn(gw);
        if (r.ok) lat.push(r.total);
        else {
          errors++;
          conv = null;
        }
      } catch {
        errors++;
        conv = null;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = (performance.now() - t0) / 1000;
  const sessions = delta(await sessionCounters(gw), before);
  return { concurrency, turns: lat.length, errors, seconds: elapsed, tps: lat.length / elapsed, latency: summary(lat), sessions };
}

/* ---- (c) memory ---- */
function vmRssKb(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
/** VmRSS of pid plus all its descendants (kB), and how many processes that was. */
function treeRssKb(pid) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {
      /* gone */
    }
  }
  let kb = 0;
  let procs = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      kb += vmRssKb(p);
      procs++;
    } catch {
      /* gone */
    }
    stack.push(...(children.get(p) ?? []));
  }
  return { kb, procs };
}

/** The runtime pids from GET /readyz: runtimes[].pid (a pool), else runtime.pid. */
async function runtimePids(gw) {
  const body = (await gw.readyz()).body ?? {};
  if (Array.isArray(body.runtimes) && body.runtimes.length) return body.runtimes.map((r) => r.pid).filter((p) => p > 0);
  return body.runtime?.pid > 0 ? [body.runtime.pid] : [];
}
function runtimesRssKb(pids) {
  let kb = 0;
  let procs = 0;
  for (const p of pids) {
    const t = treeRssKb(p);
    kb += t.kb;
    procs += t.procs;
  }
  return { kb, procs };
}

async function idleMemory(gw, o, answer) {
  const rtPids = await runtimePids(gw);
  if (!rtPids.length) throw new Error('GET /readyz names no runtime pid');
  const gwPid = gw.proc.pid;
  const conc = 16;
  /* Warm both processes with a first batch of sessions, so "before" is not a cold process. */
  const runBatch = async (n, tag) => {
    let next = 0;
    let errors = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        const r = await new Conversation(`${tag}-${i}`, o, answer).turn(gw, { userBytes: 200 });
        if (!r.ok) errors++;
      }
    };
    await Promise.all(Array.from({ length: conc }, worker));
    return errors;
  };
  progress(`memory: ${conc} warm-up conversations`);
  let errors = await runBatch(conc, 'mem-warm');
  await sleep(2000);
  const before = { gateway: vmRssKb(gwPid), runtime: runtimesRssKb(rtPids), sessions: (await sessionCounters(gw)).live };
  progress(`memory: ${o.idleSessions} one-turn conversations, ${conc} at a time`);
  const t0 = performance.now();
  errors += await runBatch(o.idleSessions, 'mem');
  const seconds = (performance.now() - t0) / 1000;
  await sleep(2000);
  const after = { gateway: vmRssKb(gwPid), runtime: runtimesRssKb(rtPids), sessions: (await sessionCounters(gw)).live };
  if ((await runtimePids(gw)).join() !== rtPids.join()) throw new Error('a runtime restarted during the memory test');
  return { gwPid, rtPids, before, after, errors, seconds, concurrency: conc };
}

/* ---- tables ---- */
function turnsTable(r, pick) {
  const out = [
    '| turn | history sent (KB) | reuse p50 ms | reseed p50 ms | reseed / reuse |',
    '| ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of r.perTurn) {
    if (!pick.includes(row.turn)) continue;
    out.push(`| ${row.turn} | ${(row.historyBytes / 1024).toFixed(1)} | ${ms(row.reuse.p50)} | ${ms(row.reseed.p50)} | ${(row.reseed.p50 / row.reuse.p50).toFixed(2)}× |`);
  }
  out.push(`| all turns | – | ${ms(r.overall.reuse.p50)} | ${ms(r.overall.reseed.p50)} | ${(r.overall.reseed.p50 / r.overall.reuse.p50).toFixed(2)}× |`);
  return out.join('\n');
}
function countersTable(r) {
  const cols = SESSION_METRICS.filter((k) => k in r.counters.reuse);
  const out = [`| path | sessions ${cols.join(' | ')} |`, `| --- |${' ---: |'.repeat(cols.length)}`];
  for (const mode of ['reuse', 'reseed']) {
    const c = r.counters[mode];
    out.push(`| ${mode === 'reuse' ? 'broker (same conversation)' : 'reseed (new X-Session-Id per turn)'} | ${cols.map((k) => c[k]).join(' | ')} |`);
  }
  return out.join('\n');
}
function throughputTable(rows) {
  const out = [
    '| runtimes | conversations | turns | errors | turns/s | p50 ms | p90 ms | p99 ms | created | reused | seeded |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    out.push(`| ${r.runtimes} | ${r.concurrency} | ${r.turns} | ${r.errors} | ${r.tps.toFixed(1)} | ${ms(r.latency.p50)} | ${ms(r.latency.p90)} | ${ms(r.latency.p99)} | ${r.sessions.created} | ${r.sessions.reused} | ${r.sessions.seeded} |`);
  }
  return out.join('\n');
}
function memoryTable(m) {
  const n = m.after.sessions - m.before.sessions;
  const row = (name, b, a) => `| ${name} | ${(b / 1024).toFixed(1)} | ${(a / 1024).toFixed(1)} | ${((a - b) / 1024).toFixed(1)} | ${((a - b) / n).toFixed(1)} |`;
  return [
    `| process | RSS before (MB) | RSS after (MB) | growth (MB) | KB per session |`,
    '| --- | ---: | ---: | ---: | ---: |',
    row('gateway', m.before.gateway, m.after.gateway),
    row(`runtime${m.after.runtime.procs > 1 ? ` (${m.after.runtime.procs} processes)` : ''}`, m.before.runtime.kb, m.after.runtime.kb),
    row('both', m.before.gateway + m.before.runtime.kb, m.after.gateway + m.after.runtime.kb),
  ].join('\n');
}

function gatewayHelp() {
  try {
    return execFileSync(GATEWAY_BIN, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    /* a usage text on stderr with a non-zero exit is still the help */
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(GATEWAY_BIN)) throw new Error(`no gateway binary at ${GATEWAY_BIN} (make all)`);
  const answer = answerText(o.answerBytes);
  const help = gatewayHelp();
  const hasPool = /--runtime-pool\b/.test(help);
  /* With a pool, its default is one runtime per core: ask for the single runtime explicitly. */
  const single = hasPool ? ['--runtime-pool', '1'] : [];
  /* A runtime past --runtime-recycle-mb (default 2048) is drained and restarted, which 1,000
   * idle sessions (~2 GB) would trigger in the middle of the memory measurement. */
  const noRecycle = /--runtime-recycle-mb\b/.test(help) ? ['--runtime-recycle-mb', '0'] : [];
  const fake = await spawnFake();
  await scriptFake(fake.url, answer);
  const results = {
    date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model,
    options: o, runtimePool: hasPool, memoryArgs: noRecycle,
  };
  const base = ['--log-level', 'warn'];
  const started = [];
  const start = async (args) => {
    const gw = await startGateway({ fake: fake.url, args: [...base, ...args] });
    started.push(gw);
    results.runtimeVersion ??= (await gw.runtime())?.version;
    return gw;
  };
  const t0 = performance.now();
  try {
    if (o.doTurns || o.doThroughput) {
      const gw = await start(single);
      if (o.doTurns) results.turns = await reuseVsReseed(gw, o, answer);
      if (o.doThroughput) {
        results.throughput = [];
        for (const k of o.concurrency) {
          progress(`throughput: ${k} conversations for ${o.duration} s (1 runtime)`);
          results.throughput.push({ runtimes: 1, ...(await throughput(gw, o, answer, k, o.duration)) });
        }
      }
      await gw.stop();
      if (o.doThroughput && hasPool) {
        const gw2 = await start(['--runtime-pool', '2']);
        for (const k of o.concurrency) {
          progress(`throughput: ${k} conversations for ${o.duration} s (--runtime-pool 2)`);
          results.throughput.push({ runtimes: 2, ...(await throughput(gw2, o, answer, k, o.duration)) });
        }
        await gw2.stop();
      }
    }
    if (o.doMemory) {
      const gw = await start([...single, ...noRecycle, '--max-sessions', String(2 * o.idleSessions)]);
      results.memory = await idleMemory(gw, o, answer);
      await gw.stop();
    }
  } finally {
    for (const gw of started) if (!gw.exited) await gw.stop();
    fake.close();
    agent.destroy();
  }
  results.seconds = (performance.now() - t0) / 1000;

  const lines = [];
  lines.push('# copilot-gateway session broker benchmark');
  lines.push('');
  lines.push(`${results.date}; node ${results.node}; ${results.cpus} CPUs (${results.cpuModel}); runtime ${results.runtimeVersion ?? '?'}; instant fake model, ${o.answerBytes}-byte answers; ${results.seconds.toFixed(0)} s`);
  if (results.turns) {
    const r = results.turns;
    const pick = [1, 5, 10, 15, 20].filter((t) => t <= o.turns);
    if (!pick.includes(o.turns)) pick.push(o.turns);
    lines.push('');
    lines.push(`## Reuse vs. reseed: one turn of a growing conversation (non-streamed, p50 of ${o.conversations} conversations, ${o.turns} turns, ~${(o.userBytes / 1000).toFixed(0)} KB user message + ${o.answerBytes}-byte answer per turn)`);
    lines.push('');
    lines.push(turnsTable(r, pick));
    lines.push('');
    lines.push('Session counters (GET /metrics, deltas over each path\'s requests):');
    lines.push('');
    lines.push(countersTable(r));
    if (r.errors) lines.push(`\n${r.errors} conversation(s) stopped on an error.`);
  }
  if (results.throughput) {
    lines.push('');
    lines.push(`## Throughput: concurrent conversations (non-streamed, ${o.duration} s per level, a fresh conversation after ${o.turns} turns)`);
    lines.push('');
    lines.push(throughputTable(results.throughput));
    if (!hasPool) {
      lines.push('');
      lines.push(`Note: \`${GATEWAY_BIN.replace(`${ROOT}/`, '')} --help\` does not list \`--runtime-pool\`: the runtime pool is not available yet, so only the single runtime was measured.`);
    }
  }
  if (results.memory) {
    const m = results.memory;
    lines.push('');
    lines.push(`## Memory: ${o.idleSessions} idle sessions (VmRSS; one-turn conversations, ${m.concurrency} at a time, ${[...single, ...noRecycle, '--max-sessions', 2 * o.idleSessions].join(' ')})`);
    lines.push('');
    lines.push(memoryTable(m));
    lines.push('');
    lines.push(`Live sessions ${m.before.sessions} → ${m.after.sessions} (per-session figures divide by the ${m.after.sessions - m.before.sessions} added); created in ${m.seconds.toFixed(1)} s; ${m.errors} errors.`);
  }
  console.log(lines.join('\n'));
  if (o.json) writeFileSync(o.json, JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(`broker.mjs: ${e.stack || e.message}`);
  process.exit(1);
});
