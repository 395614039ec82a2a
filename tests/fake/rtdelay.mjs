#!/usr/bin/env node
// rtdelay: the real Copilot runtime, with the replies to chosen JSON-RPC methods held back.
//
// The gateway spawns this in place of the runtime (`--copilot tests/fake/rtdelay.mjs`). It
// starts the real runtime ($RTDELAY_RUNTIME, default the repo's npm install) with the same
// arguments and passes every frame through unchanged, except that the reply to a request
// whose method is listed in $RTDELAY_METHODS (comma-separated) is written $RTDELAY_MS
// (default 300) later, while the runtime's notifications keep flowing. That makes an
// ordering the runtime produces only sometimes (events of the next model call before the
// reply to the call that caused them) happen every time, so a test can depend on it.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const RUNTIME = process.env.RTDELAY_RUNTIME
  || join(ROOT, 'node_modules/@github/copilot-sdk-linux-x64/prebuilds/linux-x64/copilot-runtime');
const METHODS = new Set((process.env.RTDELAY_METHODS || '').split(',').filter(Boolean));
const DELAY = Number(process.env.RTDELAY_MS || 300);

const child = spawn(RUNTIME, process.argv.slice(2), { stdio: ['pipe', 'pipe', 'inherit'] });
child.on('exit', (code, sig) => process.exit(sig ? 1 : code ?? 1));
process.on('SIGTERM', () => child.kill('SIGTERM'));
process.on('SIGINT', () => child.kill('SIGINT'));

/** Calls onFrame(header, body) for every Content-Length frame read from stream. */
function frames(stream, onFrame) {
  let acc = Buffer.alloc(0);
  stream.on('data', (d) => {
    acc = Buffer.concat([acc, d]);
    for (;;) {
      const end = acc.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /content-length:\s*(\d+)/i.exec(acc.subarray(0, end).toString());
      if (!m) throw new Error('rtdelay: frame without Content-Length');
      const len = Number(m[1]);
      if (acc.length < end + 4 + len) return;
      onFrame(acc.subarray(0, end + 4), acc.subarray(end + 4, end + 4 + len));
      acc = acc.subarray(end + 4 + len);
    }
  });
}

const held = new Set(); // ids of requests whose replies are delayed
frames(process.stdin, (head, body) => {
  try {
    const msg = JSON.parse(body);
    if (msg.id !== undefined && METHODS.has(msg.method)) held.add(msg.id);
  } catch { /* not ours to judge: pass it on */ }
  child.stdin.write(Buffer.concat([head, body]));
});
process.stdin.on('end', () => child.stdin.end());

frames(child.stdout, (head, body) => {
  const frame = Buffer.concat([head, body]);
  let id;
  try {
    const msg = JSON.parse(body);
    if (msg.method === undefined) id = msg.id;
  } catch { /* pass it on */ }
  if (id !== undefined && held.delete(id)) setTimeout(() => process.stdout.write(frame), DELAY);
  else process.stdout.write(frame);
});
