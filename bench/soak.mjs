// soak.mjs - the gateway under a long mixed load, watching for leaks: RSS and open fds of the
// gateway, RSS of its runtimes, sampled while C clients loop over every kind of request.
//
//   node bench/soak.mjs            (or: make soak)
//
// Environment:
//   SOAK_SECONDS       length of the load (default 600)
//   SOAK_CONCURRENCY   client loops running at once (default 8)
//   SOAK_SAMPLE_SECONDS  sampling period (default 10)
//   SOAK_POOL          runtime processes (--runtime-pool; default 0, the gateway's default: one
//                      per CPU core, so that a runtime past its memory budget can be recycled)
//   SOAK_SEED          seed of the request mix (default 1)
//   SOAK_ARGS          extra gateway arguments, e.g. "--max-sessions 200" (default none: the
//                      gateway's defaults, as a user runs it)
//   SOAK_JSON          where to write the results (default build/soak.json)
//   COPILOT_GATEWAY_BIN  the gateway (default build/copilot-gateway)
//
// Everything runs on loopback: the real gateway (tests/e2e/lib.mjs startGateway) drives the
// real Copilot runtime, whose BYOK provider is the fake model (tests/fake/fakemodel.mjs) in its
// own process. Each client loop picks a kind of request at random (weighted, seeded), runs it
// to the end, checks the answer, and stops by itself when SOAK_SECONDS have passed; each
// request has its own deadline, so the run always ends. The kinds:
//   chat, chat_stream        one-turn chat completions, plain and streamed (include_usage)
//   chat_multiturn           three turns of one conversation, the history growing (session reuse)
//   messages, messages_stream  Anthropic messages, plain and streamed
//   responses, responses_stream  a Responses chain: store, then previous_response_id twice
//                            (the second turn streamed)
//   tool                     a client tool round trip: chat -> tool_calls -> tool result -> answer
//                            (alternately plain and streamed)
//   abort                    a streamed chat on a slow model, the client hangs up after the
//                            first content chunk (the gateway must cancel the turn)
//   malformed                a request the gateway must refuse with 400
//   slow_reader              a streamed chat of ~200 KB read by a client that stops reading
//                            for a few seconds, then reads slowly
// It is a bench, not a test: it reports, it does not assert. Unexpected statuses, transport
// errors and wrong answers are counted as errors (expected 400s separately). Every sample
// records the gateway's VmRSS and fd count (/proc/PID), its runtimes' RSS (pids from /readyz,
// with their descendants), and the session gauges of /metrics; a last sample is taken after
// the load stopped and the client closed its connections ("idle"). Slopes are least squares
// over the samples taken under load. Last, the gateway's warn/error log lines, grouped.
// Markdown on stdout, progress on stderr, JSON to SOAK_JSON.

import http from 'node:http';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { startGateway, metrics, ROOT } from '../tests/e2e/lib.mjs';
import { ms, spawnFake, summary } from './lib.mjs';

const env = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);
const O = {
  seconds: env('SOAK_SECONDS', 600),
  concurrency: env('SOAK_CONCURRENCY', 8),
  sampleSeconds: env('SOAK_SAMPLE_SECONDS', 10),
  pool: env('SOAK_POOL', 0),
  seed: env('SOAK_SEED', 1),
  json: resolve(ROOT, process.env.SOAK_JSON || 'build/soak.json'),
  args: (process.env.SOAK_ARGS || '').split(/\s+/).filter(Boolean),
};
const MODEL = 'fake-model';
const REQUEST_TIMEOUT_MS = 60_000;
const progress = (s) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/* ---- a seeded PRNG (mulberry32), so a mix can be replayed ---- */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/* ---- HTTP ---- */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
let base;

/**
 * One request. body: an object (sent as JSON) or a string (sent as is). Options: headers,
 * onData(chunk, req, res) (return true to stop reading and hang up), pauseMs (stop reading
 * after the first chunk for that long), readDelayMs (then wait that long after each chunk).
 * Resolves {status, text, ms, ttfb, aborted}; rejects on transport errors and timeouts.
 */
function request(path, body, { headers = {}, onData, pauseMs = 0, readDelayMs = 0, method = 'POST' } = {}) {
  return new Promise((resolveP, rejectP) => {
    const data = body === undefined ? '' : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const t0 = performance.now();
    let settled = false;
    const done = (fn, v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(v);
    };
    const req = http.request(`${base}${path}`, {
      method, agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers },
    }, (res) => {
      let text = '';
      let ttfb;
      let paused = false;
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        if (ttfb === undefined) ttfb = performance.now() - t0;
        text += chunk;
        if (onData && onData(chunk, text)) {
          req.destroy();
          done(resolveP, { status: res.statusCode, text, ms: performance.now() - t0, ttfb, aborted: true });
          return;
        }
        if (pauseMs && !paused) {
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), pauseMs);
        } else if (readDelayMs) {
          res.pause();
          setTimeout(() => res.resume(), readDelayMs);
        }
      });
      res.on('end', () => done(resolveP, { status: res.statusCode, text, ms: performance.now() - t0, ttfb, aborted: false }));
      res.on('error', (e) => done(rejectP, e));
      res.on('aborted', () => done(rejectP, new Error('response aborted by the server')));
    });
    const timer = setTimeout(() => {
      req.destroy();
      done(rejectP, new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    req.on('error', (e) => done(rejectP, e));
    req.end(data);
  });
}

const parseJson = (t) => {
  try {
    return JSON.parse(t);
  } catch {
    return null;
  }
};

/** The data: payloads of an SSE body, parsed ([DONE] kept as the string). */
function sseData(text) {
  const out = [];
  for (const ev of text.split('\n\n')) {
    for (const line of ev.split('\n')) {
      if (!line.startsWith('data: ')) continue;
      const d = line.slice(6);
      out.push(d === '[DONE]' ? d : parseJson(d));
    }
  }
  return out;
}
const chatStreamText = (text) => sseData(text).map((d) => d?.choices?.[0]?.delta?.content ?? '').join('');

/* ---- results ---- */
const stats = {}; // kind -> {n, ok, expected4xx, errors, lat[], samples: [first error messages]}
function record(kind, outcome, msTaken, detail) {
  const s = (stats[kind] ??= { n: 0, ok: 0, expected4xx: 0, errors: 0, unexpectedStatus: 0, transport: 0, wrong: 0, lat: [], errorSamples: [] });
  s.n += 1;
  if (outcome === 'ok' || outcome === 'expected4xx') {
    s[outcome === 'ok' ? 'ok' : 'expected4xx'] += 1;
    s.lat.push(msTaken);
    return;
  }
  s.errors += 1;
  s[outcome] += 1;
  if (s.errorSamples.length < 5) s.errorSamples.push(`${outcome}: ${String(detail).slice(0, 300)}`);
}

/** Runs one request of `kind`, checks it with check(r) (true, or a string saying what is wrong). */
async function timed(kind, fn, check, { expectStatus = 200 } = {}) {
  let r;
  try {
    r = await fn();
  } catch (e) {
    record(kind, 'transport', 0, e.message);
    return null;
  }
  if (r.status !== expectStatus) {
    record(kind, 'unexpectedStatus', r.ms, `${r.status} ${r.text.slice(0, 200)}`);
    return null;
  }
  const c = check ? check(r) : true;
  if (c !== true) {
    record(kind, 'wrong', r.ms, c);
    return null;
  }
  record(kind, expectStatus === 200 ? 'ok' : 'expected4xx', kind === 'abort' ? r.ttfb : r.ms);
  return r;
}

/* ---- the fake model's scripted replies ---- */
const SLOW = 'SOAK-SLOW';
const BIG = 'SOAK-BIG';
async function scriptFake(fakeUrl, rules) {
  const r = await fetch(`${fakeUrl}/_script`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rules }) });
  if (r.status !== 200) throw new Error(`fake /_script: ${r.status}`);
}

/* ---- the kinds of load ---- */
let seq = 0;
const tok = (p) => `${p}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
const has = (s, t) => (typeof s === 'string' && s.includes(t) ? true : `answer lacks ${t}: ${String(s).slice(0, 120)}`);
const ANTHROPIC = { 'anthropic-version': '2023-06-01', 'x-api-key': 'unused' };
const WEATHER = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city.', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

const kinds = {
  async chat() {
    const t = tok('chat');
    await timed('chat', () => request('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: `hello ${t}` }] }),
      (r) => has(parseJson(r.text)?.choices?.[0]?.message?.content, t));
  },
  async chat_stream() {
    const t = tok('chats');
    await timed('chat_stream', () => request('/v1/chat/completions', {
      model: MODEL, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `hello ${t}` }],
    }), (r) => (sseData(r.text).at(-1) !== '[DONE]' ? 'no [DONE]' : has(chatStreamText(r.text), t)));
  },
  async chat_multiturn() {
    const messages = [{ role: 'system', content: 'You are a soak test.' }];
    for (let turn = 1; turn <= 3; turn++) {
      const t = tok(`turn${turn}`);
      messages.push({ role: 'user', content: `question ${turn} ${t}` });
      const r = await timed('chat_multiturn', () => request('/v1/chat/completions', { model: MODEL, messages }),
        (x) => has(parseJson(x.text)?.choices?.[0]?.message?.content, t));
      if (!r) return;
      messages.push({ role: 'assistant', content: parseJson(r.text).choices[0].message.content });
    }
  },
  async messages() {
    const t = tok('msg');
    await timed('messages', () => request('/v1/messages', { model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `hi ${t}` }] }, { headers: ANTHROPIC }),
      (r) => has(parseJson(r.text)?.content?.find((b) => b.type === 'text')?.text, t));
  },
  async messages_stream() {
    const t = tok('msgs');
    await timed('messages_stream', () => request('/v1/messages', {
      model: MODEL, max_tokens: 256, stream: true, system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: `hi ${t}` }] }],
    }, { headers: ANTHROPIC }), (r) => {
      const ev = sseData(r.text);
      if (ev.at(-1)?.type !== 'message_stop') return 'no message_stop';
      return has(ev.map((d) => (d?.delta?.type === 'text_delta' ? d.delta.text : '')).join(''), t);
    });
  },
  async responses() {
    let prev = null;
    for (let turn = 1; turn <= 3; turn++) {
      const t = tok(`resp${turn}`);
      const stream = turn === 2;
      const kind = stream ? 'responses_stream' : 'responses';
      const body = { model: MODEL, store: true, input: [{ role: 'user', content: `step ${turn} ${t}` }], stream };
      if (turn === 1) body.instructions = 'You are a soak test.';
      if (prev) body.previous_response_id = prev;
      const r = await timed(kind, () => request('/v1/responses', body), (x) => {
        if (stream) {
          const last = sseData(x.text).filter((d) => d?.type === 'response.completed').at(-1);
          if (!last) return 'no response.completed';
          x.id = last.response.id;
          return has(last.response.output?.find((o) => o.type === 'message')?.content?.[0]?.text, t);
        }
        const j = parseJson(x.text);
        x.id = j?.id;
        return has(j?.output?.find((o) => o.type === 'message')?.content?.[0]?.text, t);
      });
      if (!r) return;
      prev = r.id;
    }
  },
  async tool(fakeUrl, rand) {
    const t = tok('TOOL');
    const callId = `call_${t}`;
    const stream = rand() < 0.5;
    await scriptFake(fakeUrl, [
      { match_prompt: t, times: 1, reply: { tool_calls: [{ id: callId, name: 'get_weather', arguments: { city: 'Paris' } }] } },
      { match_tool: `RESULT-${t}`, times: 1, reply: { content: `sunny ${t}` } },
    ]);
    const messages = [{ role: 'user', content: `weather in Paris? ${t}` }];
    const r1 = await timed('tool', () => request('/v1/chat/completions', { model: MODEL, messages, tools: [WEATHER] }),
      (r) => (parseJson(r.text)?.choices?.[0]?.message?.tool_calls?.[0]?.id === callId ? true : `no call ${callId}: ${r.text.slice(0, 200)}`));
    if (!r1) return;
    messages.push(parseJson(r1.text).choices[0].message);
    messages.push({ role: 'tool', tool_call_id: callId, content: `RESULT-${t} 21C` });
    await timed('tool', () => request('/v1/chat/completions', { model: MODEL, messages, tools: [WEATHER], stream }),
      (r) => has(stream ? chatStreamText(r.text) : parseJson(r.text)?.choices?.[0]?.message?.content, `sunny ${t}`));
  },
  async abort() {
    const t = tok(SLOW);
    await timed('abort', () => request('/v1/chat/completions', { model: MODEL, stream: true, messages: [{ role: 'user', content: `${t} go` }] }, {
      onData: (chunk, text) => chatStreamText(text).length > 0,
    }), (r) => (r.aborted ? true : 'the stream ended before the client hung up'));
  },
  async malformed(fakeUrl, rand) {
    const cases = [
      ['/v1/chat/completions', '{"model":"fake-model","messages":[{"role":"user","content":"x"}'],
      ['/v1/chat/completions', { model: MODEL }],
      ['/v1/chat/completions', { model: MODEL, messages: 'hello' }],
      ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }],
      ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }],
      ['/v1/messages', { model: MODEL, messages: [{ role: 'user', content: 'x' }] }, ANTHROPIC],
      ['/v1/messages', { model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'nope' }] }] }, ANTHROPIC],
      ['/v1/responses', { model: MODEL, input: 42 }],
      ['/v1/responses', '[1,2,3]'],
      ['/v1/responses', Buffer.concat([Buffer.from(`{"model":"${MODEL}","input":"bad utf-8 `), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')])],
    ];
    const [path, body, headers] = cases[Math.floor(rand() * cases.length)];
    await timed('malformed', () => request(path, body, { headers }), (r) => (parseJson(r.text) ? true : `error body is no JSON: ${r.text.slice(0, 100)}`), { expectStatus: 400 });
  },
  async slow_reader() {
    const t = tok(BIG);
    await timed('slow_reader', () => request('/v1/chat/completions', { model: MODEL, stream: true, messages: [{ role: 'user', content: `${t} go` }] }, {
      pauseMs: 3000, readDelayMs: 20,
    }), (r) => {
      const s = chatStreamText(r.text);
      return s.length >= 200 * 1024 ? true : `short stream: ${s.length} chars`;
    });
  },
};

/* Weights of the mix: what a busy gateway sees, with a few of the nasty ones. */
const MIX = [
  ['chat', 3], ['chat_stream', 3], ['chat_multiturn', 1.5], ['messages', 2], ['messages_stream', 2],
  ['responses', 1.5], ['tool', 1.5], ['abort', 1], ['malformed', 1], ['slow_reader', 0.3],
];
const MIX_TOTAL = MIX.reduce((a, [, w]) => a + w, 0);
function pick(rand) {
  let x = rand() * MIX_TOTAL;
  for (const [k, w] of MIX) {
    if ((x -= w) < 0) return k;
  }
  return MIX[0][0];
}

/* ---- sampling /proc ---- */
function procRssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}
/** pid and its descendants (from /proc/<pid>/task/<tid>/children). */
function tree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      /* gone */
    }
  }
  return out;
}

async function sample(gw, t0, phase) {
  const pid = gw.proc.pid;
  const s = { t: (performance.now() - t0) / 1000, phase, requests: Object.values(stats).reduce((a, x) => a + x.n, 0), gwRssKb: procRssKb(pid), gwFds: fdCount(pid), rtRssKb: null, rtPids: [], rtProcs: 0 };
  try {
    const rz = await gw.readyz();
    const pids = (rz.body?.runtimes ?? []).map((r) => r.pid).filter((p) => p > 0);
    s.rtPids = pids;
    let kb = 0;
    s.rtEachKb = [];
    for (const p of pids) {
      let one = 0;
      for (const q of tree(p)) {
        one += procRssKb(q) ?? 0;
        s.rtProcs += 1;
      }
      s.rtEachKb.push(one);
      kb += one;
    }
    s.rtRssKb = kb;
    s.rtMaxKb = Math.max(0, ...s.rtEachKb);
    s.turnsActive = rz.body?.turns_active;
  } catch (e) {
    s.readyzError = e.message;
  }
  try {
    const m = await metrics(gw);
    s.sessionsLive = m.copilot_gateway_sessions_live;
    s.sessionsParked = m.copilot_gateway_sessions_parked;
    s.runtimeRestarts = m.copilot_gateway_runtime_restarts_total;
  } catch (e) {
    s.metricsError = e.message;
  }
  return s;
}

/**
 * The gateway's warn and error lines (it runs with --log-level warn), grouped by their text
 * with numbers and ids blanked: [{level, module, text, n}], most frequent first.
 */
function logSummary(text) {
  const groups = new Map();
  for (const line of text.split('\n')) {
    const m = /^\S+Z (warn|error)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const norm = m[3].replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').replace(/\b[A-Za-z]+[-_][A-Za-z0-9_-]*\d[A-Za-z0-9_-]*/g, '<id>').replace(/\d+/g, '#').slice(0, 200);
    const k = `${m[1]} ${m[2]} ${norm}`;
    const g = groups.get(k) ?? { level: m[1], module: m[2], text: norm, n: 0 };
    g.n += 1;
    groups.set(k, g);
  }
  return [...groups.values()].sort((a, b) => b.n - a.n);
}

/** Least-squares slope of ys over xs (per unit of x); NaN with fewer than 2 points. */
function slope(xs, ys) {
  const pts = xs.map((x, i) => [x, ys[i]]).filter(([, y]) => Number.isFinite(y));
  if (pts.length < 2) return NaN;
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
  let num = 0;
  let den = 0;
  for (const [x, y] of pts) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? num / den : NaN;
}

/* ---- main ---- */
async function main() {
  progress(`${O.seconds}s at concurrency ${O.concurrency}, sampling every ${O.sampleSeconds}s, runtime pool ${O.pool || 'default (one per core)'}${O.args.length ? `, gateway args ${O.args.join(' ')}` : ''}`);
  const fake = await spawnFake();
  await scriptFake(fake.url, [
    { match_prompt: SLOW, reply: { chunks: Array.from({ length: 20 }, (_, i) => `slow ${i} `), chunk_delay_ms: 100 } },
    { match_prompt: BIG, reply: { chunks: Array.from({ length: 100 }, (_, i) => `${String(i).padStart(4, '0')}${'x'.repeat(2044)}`) } },
  ]);
  const gw = await startGateway({ fake: fake.url, args: ['--log-level', 'warn', '--runtime-pool', String(O.pool), ...O.args] });
  base = gw.url;
  const samples = [];
  let exitCode = null;
  let wall;
  try {
    /* Warm the runtime up (its first turn builds the tokenizer), then start the clock. */
    await request('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'warm up' }] });
    const t0 = performance.now();
    samples.push(await sample(gw, t0, 'start'));
    const deadline = Date.now() + O.seconds * 1000;
    const ticker = setInterval(async () => {
      const s = await sample(gw, t0, 'load');
      samples.push(s);
      const done = Object.values(stats).reduce((a, x) => a + x.n, 0);
      const errs = Object.values(stats).reduce((a, x) => a + x.errors, 0);
      progress(`t=${s.t.toFixed(0)}s requests ${done} errors ${errs} gateway rss ${(s.gwRssKb / 1024).toFixed(1)} MB fds ${s.gwFds} runtime rss ${(s.rtRssKb / 1024).toFixed(1)} MB sessions ${s.sessionsLive}/${s.sessionsParked}`);
    }, O.sampleSeconds * 1000);
    const loops = Array.from({ length: O.concurrency }, async (_, i) => {
      const rand = rng(O.seed * 1000 + i);
      while (Date.now() < deadline) {
        const k = pick(rand);
        try {
          await kinds[k](fake.url, rand);
        } catch (e) {
          record(k, 'transport', 0, e.message);
        }
      }
    });
    await Promise.all(loops);
    clearInterval(ticker);
    wall = (performance.now() - t0) / 1000;
    samples.push(await sample(gw, t0, 'end'));
    /* Idle: the client hangs up its keep-alive connections; what stays open is the gateway's own. */
    agent.destroy();
    await new Promise((r) => setTimeout(r, 3000));
    samples.push(await sample(gw, t0, 'idle'));
  } finally {
    exitCode = await gw.stop();
    fake.close();
  }
  report(samples, wall, exitCode, logSummary(gw.stderr()));
}

function report(samples, wall, exitCode, logs) {
  const mb = (kb) => (Number.isFinite(kb) ? (kb / 1024).toFixed(1) : '–');
  const kindsSeen = Object.keys(kinds).flatMap((k) => (k === 'responses' ? [k, 'responses_stream'] : [k])).filter((k) => stats[k]);
  const rows = kindsSeen.map((k) => ({ kind: k, ...stats[k], lat: summary(stats[k].lat) }));
  const total = rows.reduce((a, r) => ({ n: a.n + r.n, ok: a.ok + r.ok, x: a.x + r.expected4xx, e: a.e + r.errors }), { n: 0, ok: 0, x: 0, e: 0 });

  console.log(`### Soak: ${O.seconds} s, concurrency ${O.concurrency}, runtime pool ${O.pool || 'default (one per core)'}${O.args.length ? `, gateway args ${O.args.join(' ')}` : ''}\n`);
  console.log(`Runtime processes at the start: ${samples[0]?.rtPids?.length ?? '–'}. ${total.n} requests in ${wall.toFixed(0)} s (${(total.n / wall).toFixed(1)}/s): ${total.ok} ok, ${total.x} expected 400s, ${total.e} errors. Gateway exit code on SIGTERM: ${exitCode}.\n`);
  console.log('| kind | requests | ok | expected 400 | errors (status / transport / wrong) | p50 ms | p99 ms |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.kind} | ${r.n} | ${r.ok} | ${r.expected4xx} | ${r.errors} (${r.unexpectedStatus} / ${r.transport} / ${r.wrong}) | ${ms(r.lat.p50)} | ${ms(r.lat.p99)} |`);
  }
  console.log('\n(abort: time to the first content chunk, when the client hangs up; the others: request start to end of the response)\n');

  const load = samples.filter((s) => s.phase !== 'idle');
  const mid = load[Math.floor((load.length - 1) / 2)];
  const at = { start: samples[0], middle: mid, end: samples.find((s) => s.phase === 'end'), idle: samples.find((s) => s.phase === 'idle') };
  const max = (f) => Math.max(...samples.map(f).filter(Number.isFinite));
  /* Slopes over the samples taken while the clients ran ("start" is before their connections
   * opened, "end" after the last request), then over the second half alone: a warm-up rise
   * flattens out, a leak does not. */
  const under = samples.filter((s) => s.phase === 'load');
  const xs = under.map((s) => s.t / 60);
  const slopes = {
    gwRssMbPerMin: slope(xs, under.map((s) => s.gwRssKb / 1024)),
    gwFdsPerMin: slope(xs, under.map((s) => s.gwFds)),
    rtRssMbPerMin: slope(xs, under.map((s) => s.rtRssKb / 1024)),
  };
  const half = under.filter((s) => s.t >= (at.end?.t ?? 0) / 2);
  const xh = half.map((s) => s.t / 60);
  const slopes2 = {
    gwRssMbPerMin: slope(xh, half.map((s) => s.gwRssKb / 1024)),
    gwFdsPerMin: slope(xh, half.map((s) => s.gwFds)),
    rtRssMbPerMin: slope(xh, half.map((s) => s.rtRssKb / 1024)),
  };
  const sgn = (v, d = 2) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(d)}` : '–');
  console.log('| sample | t (s) | gateway RSS MB | gateway fds | runtimes RSS MB (procs) | largest runtime MB | sessions live / parked |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, s] of Object.entries(at)) {
    if (!s) continue;
    console.log(`| ${name} | ${s.t.toFixed(0)} | ${mb(s.gwRssKb)} | ${s.gwFds ?? '–'} | ${mb(s.rtRssKb)} (${s.rtProcs}) | ${mb(s.rtMaxKb)} | ${s.sessionsLive ?? '–'} / ${s.sessionsParked ?? '–'} |`);
  }
  console.log(`| max | | ${mb(max((s) => s.gwRssKb))} | ${max((s) => s.gwFds)} | ${mb(max((s) => s.rtRssKb))} | ${mb(max((s) => s.rtMaxKb))} | ${max((s) => s.sessionsLive)} / ${max((s) => s.sessionsParked)} |`);
  console.log(`| slope per min, whole run | | ${sgn(slopes.gwRssMbPerMin)} | ${sgn(slopes.gwFdsPerMin)} | ${sgn(slopes.rtRssMbPerMin)} | | |`);
  console.log(`| slope per min, 2nd half | | ${sgn(slopes2.gwRssMbPerMin)} | ${sgn(slopes2.gwFdsPerMin)} | ${sgn(slopes2.rtRssMbPerMin)} | | |`);
  console.log(`\n${samples.length} samples: start (before the load), every ${O.sampleSeconds} s under load (the slopes use these), end (after the last request) and idle (3 s after the client closed its keep-alive connections, so its fd count is the gateway's own: compare it with start). Runtime restarts: ${at.idle?.runtimeRestarts ?? '–'}.`);
  if (at.idle && at.start) console.log(`Idle minus start: gateway fds ${sgn(at.idle.gwFds - at.start.gwFds, 0)}, gateway RSS ${sgn((at.idle.gwRssKb - at.start.gwRssKb) / 1024, 1)} MB, runtime RSS ${sgn((at.idle.rtRssKb - at.start.rtRssKb) / 1024, 1)} MB.`);

  const errs = rows.filter((r) => r.errorSamples.length);
  if (errs.length) {
    console.log('\nFirst errors by kind:');
    for (const r of errs) for (const e of r.errorSamples) console.log(`- ${r.kind}: ${e}`);
  }

  const nlog = logs.reduce((a, g) => a + g.n, 0);
  console.log(`\nGateway log: ${nlog} warn/error lines${nlog ? ', most frequent:' : '.'}`);
  for (const g of logs.slice(0, 8)) console.log(`- ${g.n} x ${g.level} ${g.module}: ${g.text}`);

  mkdirSync(dirname(O.json), { recursive: true });
  writeFileSync(O.json, JSON.stringify({
    options: O, wallSeconds: wall, exitCode, totals: total,
    kinds: Object.fromEntries(rows.map((r) => [r.kind, { n: r.n, ok: r.ok, expected4xx: r.expected4xx, errors: r.errors, unexpectedStatus: r.unexpectedStatus, transport: r.transport, wrong: r.wrong, latencyMs: r.lat, errorSamples: r.errorSamples }])),
    samples, slopes: { wholeRun: slopes, secondHalf: slopes2 }, gatewayLog: logs,
  }, null, 1));
  progress(`wrote ${O.json}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
