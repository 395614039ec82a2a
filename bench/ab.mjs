// ab.mjs - two gateway builds side by side in one run, request by request.
//
//   node bench/ab.mjs --a OLD_BINARY --b NEW_BINARY [--n 200] [--warmup 20] [--duration 3]
//                     [--windows 4] [--concurrency 8] [--b-key 0|1] [--json FILE]
//
// Both gateways run at once, each with its own runtime (--runtime-pool 1), against one instant
// fake model (its own process). This machine is shared and noisy, so nothing is measured in
// separate phases: every measurement alternates between A and B.
//
// (a) Latency, sequential: N rounds; each round sends, to A then B (the order flips every
//     round), a non-streamed short turn of a new conversation, a streamed one, and the next
//     turn of a conversation that keeps growing (the session-reuse path).  Per kind: p50/p99 of
//     the total time and the B/A ratio of the medians.
// (b) Throughput: C workers loop on non-streamed short turns for D seconds; windows alternate
//     A, B, A, B, ... (W each).  Requests per second: the median over a gateway's windows.
// (c) Gateway CPU per request: utime+stime of each gateway process (/proc/PID/stat) over its
//     part of (a), divided by the requests it served there.
//
// --b-key 1: B runs with an admin key and, once started, gets a virtual key through its admin
// API (POST /admin/keys) with rpm, tpm and max_concurrent limits far above what this bench
// sends; every request to B then carries that key (Authorization: Bearer), so B pays the key
// lookup, the limiter's admit and done, the per-key metrics and the usage row on each one.
// A stays keyless (a build from before keys has no /admin/keys, so A never gets one).
//
// Markdown on stdout, progress on stderr.

import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { ms, spawnFake, summary } from './lib.mjs';
import { startGateway } from '../tests/e2e/lib.mjs';

function parseArgs(argv) {
  const o = { a: null, b: null, n: 200, warmup: 20, duration: 3, windows: 4, concurrency: 8, 'b-key': 0, json: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o)) {
      console.error(`ab.mjs: unknown argument '${argv[i]}'`);
      process.exit(2);
    }
    const v = argv[++i];
    o[k] = ['a', 'b', 'json'].includes(k) ? v : Number(v);
  }
  if (!o.a || !o.b) {
    console.error('usage: node bench/ab.mjs --a OLD_BINARY --b NEW_BINARY [--n 200] ...');
    process.exit(2);
  }
  return o;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** POSTs a chat request; resolves {total, ttfb, text} in ms, rejects on a non-200. */
function chat(gw, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const t0 = performance.now();
    const url = new URL(`${gw.url}/v1/chat/completions`);
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...gw.auth },
    }, (res) => {
      let ttfb = null;
      let buf = '';
      res.on('data', (d) => {
        if (ttfb === null) ttfb = performance.now() - t0;
        buf += d;
      });
      res.on('end', () => {
        const total = performance.now() - t0;
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${buf.slice(0, 200)}`));
        let text = '';
        if (body.stream) {
          for (const line of buf.split('\n')) {
            if (!line.startsWith('data: {')) continue;
            text += JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? '';
          }
        } else {
          text = JSON.parse(buf).choices[0].message.content;
        }
        resolve({ total, ttfb, text });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10; /* utime + stime, in 100 Hz ticks */
}

async function turn(gw, messages, stream) {
  const r = await chat(gw, { model: 'fake-model', messages, stream });
  const want = `ECHO: ${messages.at(-1).content}`;
  if (r.text !== want) throw new Error(`unexpected answer '${r.text.slice(0, 80)}'`);
  return r;
}

/* B's virtual key, with limits it never reaches: {authorization} headers for its requests. */
const ADMIN_KEY = 'ab-admin-key';
async function keySetup(gw) {
  const r = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ name: 'ab-bench', user: 'bench@local', rpm: 1_000_000_000, tpm: 1_000_000_000_000, max_concurrent: 10_000 }),
  });
  const j = await r.json();
  if (r.status !== 201 && r.status !== 200) throw new Error(`POST /admin/keys: HTTP ${r.status} ${JSON.stringify(j)}`);
  return { authorization: `Bearer ${j.key}` };
}

let fake = null;
async function main() {
  const o = parseArgs(process.argv.slice(2));
  fake = await spawnFake();
  const gws = {};
  for (const [k, bin] of [['A', o.a], ['B', o.b]]) {
    const withKey = k === 'B' && o['b-key'];
    const extra = withKey ? ['--admin-key', ADMIN_KEY] : [];
    gws[k] = await startGateway({ fake, bin, args: ['--log-level', 'warn', '--runtime-pool', '1', ...extra] });
    gws[k].auth = withKey ? await keySetup(gws[k]) : {};
    gws[k].label = k;
    gws[k].bin = bin;
    gws[k].convo = [];
  }
  const kinds = ['non-streamed', 'streamed', 'continued'];
  const times = { A: { 'non-streamed': [], streamed: [], continued: [] }, B: { 'non-streamed': [], streamed: [], continued: [] } };
  const cpu = { A: 0, B: 0 };
  const served = { A: 0, B: 0 };

  const round = async (g, i, record) => {
    const u = `ab ${g.label} ${i} ${Math.random().toString(36).slice(2, 8)}`;
    const c0 = cpuMs(g.proc.pid);
    const r1 = await turn(g, [{ role: 'user', content: `${u} plain` }], false);
    const r2 = await turn(g, [{ role: 'user', content: `${u} stream` }], true);
    if (g.convo.length > 40) g.convo = [];
    g.convo.push({ role: 'user', content: `${u} next` });
    const r3 = await turn(g, g.convo, false);
    g.convo.push({ role: 'assistant', content: r3.text });
    if (record) {
      cpu[g.label] += cpuMs(g.proc.pid) - c0;
      served[g.label] += 3;
      times[g.label]['non-streamed'].push(r1.total);
      times[g.label].streamed.push(r2.total);
      times[g.label].continued.push(r3.total);
    }
  };
  process.stderr.write(`ab: warm-up ${o.warmup} rounds\n`);
  for (let i = 0; i < o.warmup; i++) for (const g of [gws.A, gws.B]) await round(g, `w${i}`, false);
  process.stderr.write(`ab: ${o.n} latency rounds\n`);
  for (let i = 0; i < o.n; i++) {
    const order = i % 2 ? [gws.B, gws.A] : [gws.A, gws.B];
    for (const g of order) await round(g, i, true);
  }

  const rps = { A: [], B: [] };
  for (let w = 0; w < o.windows * 2; w++) {
    const g = w % 2 ? gws.B : gws.A;
    process.stderr.write(`ab: throughput window ${w + 1}/${o.windows * 2} (${g.label}, c=${o.concurrency})\n`);
    const end = performance.now() + o.duration * 1000;
    let done = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: o.concurrency }, async (_, k) => {
      for (let j = 0; performance.now() < end; j++) {
        await turn(g, [{ role: 'user', content: `tp ${w} ${k} ${j}` }], false);
        done++;
      }
    }));
    rps[g.label].push(done / ((performance.now() - t0) / 1000));
  }

  const med = (v) => summary(v).p50;
  const out = [];
  out.push(`A: \`${o.a}\`  B: \`${o.b}\`${o['b-key'] ? ' with a virtual key (rpm, tpm, max_concurrent)' : ''}  (N=${o.n} rounds after ${o.warmup} warm-up, interleaved)\n`);
  out.push('| turn | A p50 | A p99 | B p50 | B p99 | B/A p50 |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const k of kinds) {
    const a = summary(times.A[k]);
    const b = summary(times.B[k]);
    out.push(`| ${k} (ms) | ${ms(a.p50)} | ${ms(a.p99)} | ${ms(b.p50)} | ${ms(b.p99)} | ${(b.p50 / a.p50).toFixed(2)} |`);
  }
  const ra = med(rps.A);
  const rb = med(rps.B);
  out.push(`| throughput c=${o.concurrency} (req/s, median of ${o.windows} × ${o.duration} s) | ${ra.toFixed(0)} | | ${rb.toFixed(0)} | | ${(rb / ra).toFixed(2)} |`);
  const ca = cpu.A / served.A;
  const cb = cpu.B / served.B;
  out.push(`| gateway CPU per request (ms, over the latency rounds) | ${ca.toFixed(2)} | | ${cb.toFixed(2)} | | ${(cb / ca).toFixed(2)} |`);
  console.log(out.join('\n'));
  if (o.json) writeFileSync(o.json, JSON.stringify({ times, rps, cpu, served }, null, 1));
  for (const g of [gws.A, gws.B]) await g.stop();
  fake.close();
  agent.destroy();
}

main().catch((e) => {
  console.error(e);
  fake?.close();
  process.exit(1);
});
