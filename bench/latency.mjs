// latency.mjs - what the gateway adds on top of the Copilot runtime, against an instant fake model.
//
//   node bench/latency.mjs [--n 200] [--warmup 20] [--duration 10] [--concurrency 1,8,32]
//                          [--json FILE] [--no-gateway] [--no-direct]
//
// (a) Added latency. The same short turn ("bench ping <i>" -> "ECHO: bench ping <i>"), N times
//     each, sequentially:
//       - direct: straight to a runtime over JSON-RPC (bench/rtclient.mjs), the way a careful
//         client does it per request: session.create, session.send, first
//         assistant.message_delta (TTFB), session.idle (total), session.delete (cycle);
//       - gateway, non-streamed: POST /v1/chat/completions; TTFB = first body byte, total = end;
//       - gateway, streamed: TTFB = first SSE chunk with content, total = end of the stream.
// (b) Throughput: C workers loop on non-streamed requests for D seconds, for each concurrency,
//     through the gateway and, for reference, directly on a runtime.
//
// The fake model runs as its own process (tests/fake/fakemodel.mjs) so it does not share this
// process's event loop. The gateway is COPILOT_GATEWAY_BIN or build/copilot-gateway.

import http from 'node:http';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from './rtclient.mjs';
import { ms, spawnFake, summary } from './lib.mjs';
import { startGateway, GATEWAY_BIN, ROOT } from '../tests/e2e/lib.mjs';

function parseArgs(argv) {
  const o = { n: 200, warmup: 20, duration: 10, concurrency: [1, 8, 32], json: null, gateway: true, direct: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--n') o.n = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--duration') o.duration = Number(argv[++i]);
    else if (a === '--concurrency') o.concurrency = argv[++i].split(',').map(Number);
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--no-gateway') o.gateway = false;
    else if (a === '--no-direct') o.direct = false;
    else {
      console.error(`latency.mjs: unknown argument '${a}'`);
      process.exit(2);
    }
  }
  return o;
}


/* ---- HTTP client with precise timings ---- */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** POSTs a chat request; resolves {status, ttfb, total, content} (ms, from the request start). */
function chatRequest(base, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const t0 = performance.now();
    const url = new URL(`${base}/v1/chat/completions`);
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let ttfb;
      let text = '';
      let pendingSse = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
        if (ttfb !== undefined) return;
        if (!body.stream) {
          ttfb = performance.now() - t0;
          return;
        }
        /* Streamed: the first event that carries content. */
        pendingSse += chunk;
        const events = pendingSse.split('\n\n');
        pendingSse = events.pop();
        for (const ev of events) {
          const line = ev.split('\n').find((l) => l.startsWith('data: '));
          if (!line || line === 'data: [DONE]') continue;
          try {
            if (JSON.parse(line.slice(6)).choices?.[0]?.delta?.content) {
              ttfb = performance.now() - t0;
              break;
            }
          } catch {
            /* partial or foreign line */
          }
        }
      });
      res.on('end', () => {
        const total = performance.now() - t0;
        let content = '';
        if (res.statusCode === 200 && !body.stream) content = JSON.parse(text).choices?.[0]?.message?.content ?? '';
        if (res.statusCode === 200 && body.stream) {
          for (const ev of text.split('\n\n')) {
            if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
            try {
              content += JSON.parse(ev.slice(6)).choices?.[0]?.delta?.content ?? '';
            } catch {
              /* ignore */
            }
          }
        }
        resolve({ status: res.statusCode, ttfb, total, content });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

const prompt = (i) => `bench ping ${i}`;
const expect = (i) => `ECHO: bench ping ${i}`;

async function gatewayLatency(gw, n, warmup, stream) {
  const ttfb = [];
  const total = [];
  let errors = 0;
  for (let i = -warmup; i < n; i++) {
    const r = await chatRequest(gw.url, { model: 'fake-model', stream, messages: [{ role: 'user', content: prompt(i) }] });
    if (r.status !== 200 || r.content !== expect(i)) {
      errors++;
      continue;
    }
    if (i < 0) continue;
    ttfb.push(r.ttfb);
    total.push(r.total);
  }
  return { ttfb: summary(ttfb), total: summary(total), errors };
}

async function directLatency(rt, providerUrl, n, warmup) {
  const ttfb = [];
  const total = [];
  const cycle = [];
  let errors = 0;
  for (let i = -warmup; i < n; i++) {
    const r = await rt.turn({ providerUrl, prompt: prompt(i), keepEvents: false });
    if (r.error || r.content !== expect(i)) {
      errors++;
      continue;
    }
    if (i < 0) continue;
    ttfb.push(r.timing.firstDelta);
    total.push(r.timing.idle);
    cycle.push(r.timing.deleted);
  }
  return { ttfb: summary(ttfb), total: summary(total), cycle: summary(cycle), errors };
}

/** C workers loop on `one(i)` for `seconds`; returns {requests, errors, rps, latency}. */
async function throughput(concurrency, seconds, one) {
  const lat = [];
  let errors = 0;
  let seq = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const i = seq++;
      const s = performance.now();
      try {
        if (await one(i)) lat.push(performance.now() - s);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  return { concurrency, requests: lat.length, errors, seconds: elapsed, rps: lat.length / elapsed, latency: summary(lat) };
}

function latencyTable(rows) {
  const out = [
    '| path | TTFB p50 | TTFB p90 | TTFB p99 | total p50 | total p90 | total p99 | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [name, r] of rows) {
    out.push(`| ${name} | ${ms(r.ttfb.p50)} | ${ms(r.ttfb.p90)} | ${ms(r.ttfb.p99)} | ${ms(r.total.p50)} | ${ms(r.total.p90)} | ${ms(r.total.p99)} | ${r.errors} |`);
  }
  return out.join('\n');
}

function throughputTable(rows) {
  const out = [
    '| target | concurrency | requests | errors | req/s | p50 ms | p90 ms | p99 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [name, r] of rows) {
    out.push(`| ${name} | ${r.concurrency} | ${r.requests} | ${r.errors} | ${r.rps.toFixed(1)} | ${ms(r.latency.p50)} | ${ms(r.latency.p90)} | ${ms(r.latency.p99)} |`);
  }
  return out.join('\n');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const fake = await spawnFake();
  const providerUrl = `${fake.url}/v1`;
  const results = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, options: o };
  const latencyRows = [];
  const tputRows = [];
  let rt;
  let gw;
  try {
    if (o.direct) {
      rt = await Runtime.start();
      results.runtimeVersion = rt.connectInfo.version;
      process.stderr.write(`direct: ${o.n} turns on runtime ${rt.connectInfo.version} (pid ${rt.pid})\n`);
      results.direct = await directLatency(rt, providerUrl, o.n, o.warmup);
      latencyRows.push(['runtime direct, JSON-RPC (create+send→idle)', results.direct]);
    }
    if (o.gateway && !existsSync(GATEWAY_BIN)) {
      process.stderr.write(`gateway: skipped, no binary at ${GATEWAY_BIN}\n`);
      o.gateway = false;
    }
    if (o.gateway) {
      gw = await startGateway({ fake: fake.url, args: ['--log-level', 'warn'] });
      process.stderr.write(`gateway: ${o.n} non-streamed + ${o.n} streamed requests at ${gw.url}\n`);
      results.gatewayNonStream = await gatewayLatency(gw, o.n, o.warmup, false);
      results.gatewayStream = await gatewayLatency(gw, o.n, o.warmup, true);
      latencyRows.push(['gateway, non-streamed', results.gatewayNonStream]);
      latencyRows.push(['gateway, streamed', results.gatewayStream]);
    }

    results.throughput = [];
    for (const c of o.concurrency) {
      if (o.gateway) {
        process.stderr.write(`gateway: concurrency ${c} for ${o.duration} s\n`);
        const r = await throughput(c, o.duration, async (i) => {
          const x = await chatRequest(gw.url, { model: 'fake-model', messages: [{ role: 'user', content: prompt(i) }] });
          return x.status === 200 && x.content === expect(i);
        });
        results.throughput.push({ target: 'gateway', ...r });
        tputRows.push(['gateway', r]);
      }
      if (o.direct) {
        process.stderr.write(`direct: concurrency ${c} for ${o.duration} s\n`);
        const r = await throughput(c, o.duration, async (i) => {
          const x = await rt.turn({ providerUrl, prompt: prompt(i), keepEvents: false });
          return !x.error && x.content === expect(i);
        });
        results.throughput.push({ target: 'runtime direct', ...r });
        tputRows.push(['runtime direct', r]);
      }
    }
  } finally {
    if (gw) await gw.stop();
    if (rt) await rt.stop();
    fake.close();
    agent.destroy();
  }

  const lines = [];
  lines.push(`# copilot-gateway latency benchmark`);
  lines.push('');
  lines.push(`${results.date}; node ${results.node}; ${results.cpus} CPUs (${results.cpuModel}); runtime ${results.runtimeVersion ?? '?'}; instant fake model`);
  lines.push('');
  lines.push(`## Latency of one short turn (ms, N=${o.n} after ${o.warmup} warm-up turns, sequential)`);
  lines.push('');
  lines.push(latencyTable(latencyRows));
  if (results.direct && results.gatewayNonStream) {
    const d = results.direct;
    const ns = results.gatewayNonStream;
    const st = results.gatewayStream;
    lines.push('');
    lines.push('Added by the gateway (gateway p50 minus direct p50; a non-streamed answer is compared with the');
    lines.push('direct turn\'s session.idle, a streamed one with its first delta and its session.idle):');
    lines.push(`non-streamed total +${ms(ns.total.p50 - d.total.p50)} ms; streamed TTFB +${ms(st.ttfb.p50 - d.ttfb.p50)} ms, total +${ms(st.total.p50 - d.total.p50)} ms.`);
    lines.push(`The direct client's full cycle including session.delete: p50 ${ms(d.cycle.p50)} ms, p99 ${ms(d.cycle.p99)} ms.`);
  }
  lines.push('');
  lines.push(`## Throughput (non-streamed, ${o.duration} s per level)`);
  lines.push('');
  lines.push(throughputTable(tputRows));
  console.log(lines.join('\n'));
  if (o.json) writeFileSync(o.json, JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(`latency.mjs: ${e.stack || e.message}`);
  process.exit(1);
});
