// lib.mjs - helpers shared by the benchmarks: percentiles and the fake model in its own process.

import { spawn } from 'node:child_process';
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
