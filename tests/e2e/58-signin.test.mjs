// 58-signin: a gateway with no BYOK provider and no GitHub sign-in (this machine cannot reach
// GitHub) tells the user how to sign in everywhere they look, and `copilot-gateway login`
// fails clearly without echoing the token.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, openaiClient, test, GATEWAY_BIN } from './lib.mjs';

// No ambient GitHub credentials may reach the runtime in this test.
const NO_TOKENS = { COPILOT_GITHUB_TOKEN: '', GH_TOKEN: '', GITHUB_TOKEN: '' };
let gw;

before(async () => {
  gw = await startGateway({
    byok: false,
    env: NO_TOKENS,
    ready: (r) => r.status === 503 && r.body?.reason === 'not signed in to GitHub' && r.body?.runtime?.state === 'ready',
  });
}, { timeout: 90_000 });

after(async () => {
  if (gw) assert.equal(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
});

test('not signed in: /readyz 503 says why, /healthz is still 200', async () => {
  const r = await gw.readyz();
  assert.equal(r.status, 503);
  assert.equal(r.body.signed_in, false);
  assert.equal(r.body.byok, false);
  const h = await fetch(`${gw.url}/healthz`);
  assert.equal(h.status, 200);
});

test('not signed in: chat completions and models are 401 with how to sign in', async () => {
  const client = openaiClient(gw);
  for (const call of [
    () => client.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }),
    () => client.models.list(),
  ]) {
    await assert.rejects(call, (e) => {
      assert.equal(e.status, 401);
      assert.equal(e.error?.type, 'authentication_error');
      assert.match(e.message, /copilot-gateway login/);
      assert.match(e.message, /COPILOT_GITHUB_TOKEN/);
      return true;
    });
  }
});

function runLogin(env, input = '') {
  const tmp = mkdtempSync(join(tmpdir(), 'gw-login-'));
  return new Promise((resolve) => {
    const p = spawn(GATEWAY_BIN, ['login', '--data', tmp, '--log-level', 'warn'], {
      env: { ...process.env, ...NO_TOKENS, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.stdin.end(input);
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      rmSync(tmp, { recursive: true, force: true });
      resolve({ code, out });
    });
  });
}

test('login without a token explains how to give one', async () => {
  const { code, out } = await runLogin({});
  assert.equal(code, 1);
  assert.match(out, /no token given/);
  assert.match(out, /COPILOT_GITHUB_TOKEN/);
});

test('login with a token GitHub cannot validate fails clearly and never prints the token', async () => {
  const token = 'github_pat_E2EBOGUS0123456789abcdef';
  const { code, out } = await runLogin({ COPILOT_GITHUB_TOKEN: token });
  assert.equal(code, 1);
  assert.match(out, /sign-in failed/);
  assert.ok(!out.includes(token), 'the token must not be printed');
});
