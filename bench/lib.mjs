// lib.mjs - helpers shared by the benchmarks: percentiles and the fake model in its own process.

import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { ROOT } from '../tests/e2e/lib.mjs';

/* ---- statistics ---- */
export function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k];
}
export function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), min: s[0], max: s.at(-1) };
}
export const ms = (v) => (Number.isFinite(v) ? v.toFixed(1) : '–');

/* ---- the fake model, in its own process ---- */
export async function spawnFake() {
  const child = spawn(process.execPath, [join(ROOT, 'tests/fake/fakemodel.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`fakemodel exited with ${c}`)));
  });
  return { url, close: () => child.kill('SIGTERM') };
}

/* ---- timed HTTP ---- */
/** POSTs body as JSON to base+path over `agent` (an http.Agent); resolves {status, ms (whole
 * exchange), text}. */
export function postTimed(agent, base, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const url = new URL(`${base}${path}`);
    const t0 = performance.now();
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}
