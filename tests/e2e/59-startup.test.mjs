// 59-startup: start-up errors are clear and early; client API keys; the YAML config file.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake } from '../fake/fakemodel.mjs';
import { startGateway, openaiClient, test, uniq, GATEWAY_BIN } from './lib.mjs';

let fake;
before(async () => { fake = await startFake(); });
after(async () => { await fake?.close(); });

/** Runs the gateway expecting it to exit by itself; resolves {code, out}. */
function runToExit(args, env = {}) {
  const tmp = mkdtempSync(join(tmpdir(), 'gw-start-'));
  return new Promise((resolve) => {
    const p = spawn(GATEWAY_BIN, [...args, '--data', tmp], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      rmSync(tmp, { recursive: true, force: true });
      resolve({ code, out });
    });
  });
}

test('a missing runtime is a clear start-up error', async () => {
  const { code, out } = await runToExit(['serve', '--listen', '127.0.0.1:0', '--copilot', '/nonexistent/copilot-runtime']);
  assert.notEqual(code, 0);
  assert.match(out, /\/nonexistent\/copilot-runtime/);
  assert.doesNotMatch(out, /listening on/);
});

test('listening beyond loopback without API keys is refused', async () => {
  const { code, out } = await runToExit(['serve', '--listen', '0.0.0.0:0']);
  assert.notEqual(code, 0);
  assert.match(out, /refusing to listen on 0\.0\.0\.0 without client API keys/);
});

test('unknown flags and bad values are reported with exit status 2', async () => {
  let r = await runToExit(['serve', '--no-such-flag', 'x']);
  assert.equal(r.code, 2);
  assert.match(r.out, /unknown flag '--no-such-flag'/);
  r = await runToExit(['serve', '--max-body-bytes', 'lots']);
  assert.equal(r.code, 2);
  assert.match(r.out, /max-body-bytes/);
  r = await runToExit(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.out, /unknown command 'frobnicate'/);
});

test('with --api-key, requests need the key (Bearer or x-api-key); health checks do not', async () => {
  const gw = await startGateway({ fake, args: ['--api-key', 'k-one,k-two'] });
  try {
    const tok = uniq('KEY');
    const body = { model: 'fake-model', messages: [{ role: 'user', content: tok }] };
    await assert.rejects(openaiClient(gw, { apiKey: 'wrong' }).chat.completions.create(body), (e) => {
      assert.equal(e.status, 401);
      assert.equal(e.error?.type, 'authentication_error');
      return true;
    });
    const r = await openaiClient(gw, { apiKey: 'k-two' }).chat.completions.create(body);
    assert.equal(r.choices[0].message.content, `ECHO: ${tok}`);
    const viaHeader = await fetch(`${gw.baseURL}/models`, { headers: { 'x-api-key': 'k-one' } });
    assert.equal(viaHeader.status, 200);
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    assert.equal(fake.requestsFor(tok).length, 1, 'the rejected request never reached the model');
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('settings come from the YAML --config file; flags override it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-cfg-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, `# test config\nmax-body-bytes: 2048\napi_key: from-file\n`);
  const gw = await startGateway({ fake, args: ['--config', file, '--api-key', 'from-flag'] });
  try {
    const client = openaiClient(gw, { apiKey: 'from-flag' });
    await assert.rejects(
      client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x'.repeat(4096) }] }),
      (e) => { assert.equal(e.status, 413); return true; },
    );
    await assert.rejects(openaiClient(gw, { apiKey: 'from-file' }).models.list(), (e) => e.status === 401);
  } finally {
    assert.equal(await gw.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
