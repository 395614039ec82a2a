// 86-user-tokens: each person's own GitHub identity (issue 11). A key's user stores their own
// GitHub token (PUT /v1/me/github-token, or the admin for them, or `copilot-gateway keys
// set-token`), sealed at rest under the operator's --token-key-file; their sessions run with it
// (gitHubToken on session.create), never with the gateway's own sign-in. This machine cannot
// reach GitHub, so GitHub "rejects" every token here: what the user must see then is a 401 that
// says their token was not accepted, never the gateway's sign-in advice and never the token.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway, test, http, uniq, waitFor, GATEWAY_BIN } from './lib.mjs';
import { startFake } from '../fake/fakemodel.mjs';

const ADMIN_KEY = 'admin-secret-86';
const NO_TOKENS = { COPILOT_GITHUB_TOKEN: '', GH_TOKEN: '', GITHUB_TOKEN: '' };
const tok = (prefix) => `${prefix}${uniq('').replace(/[^A-Za-z0-9]/g, '')}Abc123xyz7890QWERTY`.slice(0, 40);
const ALICE_TOKEN = tok('gho_');
const BOB_TOKEN = tok('github_pat_');
const CLI_TOKEN = tok('ghu_');

const dir = mkdtempSync(join(tmpdir(), 'gw-86-'));
const data = join(dir, 'data');
const keyFile = join(dir, 'token.key');
writeFileSync(keyFile, 'k'.repeat(24) + Math.random().toString(36).repeat(4));
chmodSync(keyFile, 0o600);
const otherKeyFile = join(dir, 'other.key');
writeFileSync(otherKeyFile, 'o'.repeat(48));
chmodSync(otherKeyFile, 0o600);

/* A gateway without a BYOK provider: Copilot models, no sign-in of its own (offline). */
const copilotGateway = (extra = []) => startGateway({
  byok: false,
  env: NO_TOKENS,
  args: ['--admin-key', ADMIN_KEY, '--data', data, ...extra],
  /* ready without its own sign-in when users may bring theirs (--token-key-file); not ready
   * without the key file */
  ready: extra.includes('--token-key-file') ? (r) => r.status === 200 : (r) => r.status === 503 && r.body?.reason === 'not signed in to GitHub',
});

let gw;
const keys = {};
const logs = [];

before(async () => {
  gw = await copilotGateway(['--token-key-file', keyFile]);
  for (const [name, user] of [['alice', 'alice@corp'], ['alice-ci', 'alice@corp'], ['bob', 'bob@corp'], ['carol', null]]) {
    const r = await admin('POST', '/admin/keys', user ? { name, user } : { name });
    assert.equal(r.status, 201, r.text);
    keys[name] = r.json.key;
  }
}, { timeout: 90_000 });

after(async () => {
  if (gw) {
    logs.push(gw.stderr());
    assert.equal(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
  }
  rmSync(dir, { recursive: true, force: true });
});

function admin(method, path, body, g = gw) {
  return http(g, method, path, { body, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
}
const as = (name, method, path, body, g = gw) => http(g, method, path, { body, headers: { authorization: `Bearer ${keys[name]}` } });
const openai = (name, g = gw) => new OpenAI({ baseURL: `${g.url}/v1`, apiKey: keys[name], maxRetries: 0 });
const ask = (name, g = gw) => openai(name, g).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hi ${uniq('U')}` }] });

/** The request fails as a user whose own token GitHub did not accept: 401, and not the gateway's advice. */
async function rejectsAsUserToken(promise) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, 401, e.message);
    assert.equal(e.error?.type === 'error' ? e.error.error?.type : e.error?.type, 'authentication_error', JSON.stringify(e.error));
    assert.match(e.message, /your own GitHub token was not accepted/);
    assert.match(e.message, /could not be reached/); /* offline: the reason, in a few words */
    assert.match(e.message, /PUT \/v1\/me\/github-token/);
    assert.doesNotMatch(e.message, /copilot-gateway login/); /* never the gateway's own sign-in */
    for (const t of [ALICE_TOKEN, BOB_TOKEN, CLI_TOKEN]) assert.ok(!e.message.includes(t));
    return true;
  });
}

test('tokens are checked before they are kept: classic PATs, non-tokens and extra fields are 400', async () => {
  for (const [body, re] of [
    [{ token: 'ghp_' + 'a'.repeat(36) }, /classic personal access tokens \(ghp_\)/],
    [{ token: 'hello world' }, /not a GitHub token/],
    [{ token: 'ghs_' + 'a'.repeat(36) }, /not a GitHub user token/],
    [{ token: 42 }, /token must be a string/],
    [{}, /needs "token"/],
    [{ token: ALICE_TOKEN, user: 'bob@corp' }, /other than "token"/],
  ]) {
    const r = await as('alice', 'PUT', '/v1/me/github-token', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.json.error.message, re);
    assert.ok(!r.text.includes('a'.repeat(36)) && !r.text.includes(ALICE_TOKEN), r.text);
  }
  const anon = await http(gw, 'PUT', '/v1/me/github-token', { body: { token: ALICE_TOKEN } });
  assert.equal(anon.status, 401);
});

test('without a token a user is served by the gateway\'s own sign-in (here: none, so its advice)', async () => {
  await assert.rejects(ask('alice'), (e) => e.status === 401 && /copilot-gateway login/.test(e.message));
  const me = await as('alice', 'GET', '/v1/me');
  assert.equal(me.status, 200, me.text);
  assert.deepEqual(me.json.github_token, { user: 'alice@corp', state: 'none', in_use: false });
  /* the gateway is ready (its users may bring their identity) and says it is not signed in */
  const ready = await as('alice', 'GET', '/readyz');
  assert.equal(ready.status, 200, ready.text);
  assert.equal(ready.json.signed_in, false);
  assert.equal(me.json.copilot_quota, undefined);
});

test('a user sets their own token; their sessions use it and GitHub\'s refusal is a 401 that says so', async () => {
  const r = await as('alice', 'PUT', '/v1/me/github-token', { token: ALICE_TOKEN });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'github_token');
  assert.equal(r.json.user, 'alice@corp');
  assert.equal(r.json.set, true);
  assert.ok(!r.text.includes(ALICE_TOKEN));
  /* at once, for every key of the same user, in every API */
  await rejectsAsUserToken(ask('alice'));
  await rejectsAsUserToken(ask('alice-ci'));
  const anth = new Anthropic({ baseURL: gw.url, apiKey: keys.alice, maxRetries: 0 });
  await rejectsAsUserToken(anth.messages.create({ model: 'claude-sonnet-4.5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }));
  const stream = await http(gw, 'POST', '/v1/chat/completions', {
    body: { model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: `s ${uniq('S')}` }] },
    headers: { authorization: `Bearer ${keys.alice}` },
  });
  assert.equal(stream.status, 401, stream.text);
  assert.equal(stream.json.error.code, 'github_token_rejected');
  /* other users are not affected */
  await assert.rejects(ask('bob'), (e) => e.status === 401 && /copilot-gateway login/.test(e.message));
});

test('a user with a token lists their own models: GitHub\'s answer for them, not the gateway\'s', async () => {
  /* (offline: the refusal; other users get the gateway's sign-in advice) */
  await rejectsAsUserToken(openai('alice').models.list());
  await assert.rejects(openai('bob').models.list(), (e) => e.status === 401 && /copilot-gateway login/.test(e.message));
});

test('/v1/me shows the token\'s state (never the token) and what the quota lookup said', async () => {
  const me = await as('alice-ci', 'GET', '/v1/me');
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.github_token.user, 'alice@corp');
  assert.equal(me.json.github_token.state, 'set');
  assert.equal(me.json.github_token.in_use, true);
  assert.match(me.json.github_token.updated_at, /^\d{4}-\d\d-\d\dT/);
  /* account.getQuota with the user's token: GitHub cannot be reached from here */
  assert.equal(me.json.copilot_quota, null);
  assert.match(me.json.copilot_quota_error, /could not be reached/);
  assert.ok(!me.text.includes(ALICE_TOKEN), me.text);
});

test('the admin sets and removes a user\'s token; a key without a user is its own user', async () => {
  assert.equal((await admin('PUT', '/admin/users/bob@corp/github-token', { token: BOB_TOKEN })).status, 200);
  await rejectsAsUserToken(ask('bob'));
  const asClient = await as('bob', 'PUT', '/admin/users/bob@corp/github-token', { token: BOB_TOKEN });
  assert.equal(asClient.status, 401, 'a client key never reaches the admin API');
  const del = await admin('DELETE', '/admin/users/bob@corp/github-token');
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.set, false);
  /* removed at once: bob is back on the gateway's own sign-in */
  await assert.rejects(ask('bob'), (e) => e.status === 401 && /copilot-gateway login/.test(e.message));
  const me = await as('carol', 'PUT', '/v1/me/github-token', { token: BOB_TOKEN });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.user, 'carol');
  await rejectsAsUserToken(ask('carol'));
  assert.equal((await as('carol', 'DELETE', '/v1/me/github-token')).status, 200);
  await assert.rejects(ask('carol'), (e) => e.status === 401 && /copilot-gateway login/.test(e.message));
});

test('`copilot-gateway keys set-token` reads the token from stdin and never prints it', async () => {
  const run = (args, input) => spawnSync(GATEWAY_BIN, ['keys', ...args, '--data', data], { input, encoding: 'utf8' });
  const noFile = run(['set-token', 'bob@corp'], `${CLI_TOKEN}\n`);
  assert.equal(noFile.status, 2);
  assert.match(noFile.stderr, /needs --token-key-file/);
  const bad = run(['set-token', 'bob@corp', '--token-key-file', keyFile], 'ghp_' + 'b'.repeat(36) + '\n');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /classic personal access tokens/);
  const ok = run(['set-token', 'bob@corp', '--token-key-file', keyFile], `${CLI_TOKEN}\n`);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout + ok.stderr, '');
  /* the daemon picks the change up within a second */
  let last;
  for (let i = 0; i < 40; i++) {
    last = await ask('bob').catch((e) => e);
    if (/your own GitHub token/.test(last.message)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await rejectsAsUserToken(Promise.reject(last));
  assert.equal(run(['clear-token', 'bob@corp'], '').status, 0);
  assert.equal(run(['clear-token', 'bob@corp'], '').status, 1);
});

test('at rest the token is sealed: not in the database, the log, the key list', async () => {
  const files = readdirSync(data).filter((f) => f.startsWith('gateway.db'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const bytes = readFileSync(join(data, f));
    for (const t of [ALICE_TOKEN, BOB_TOKEN, CLI_TOKEN]) assert.equal(bytes.indexOf(t), -1, `${f} holds a token in clear`);
  }
  const list = await admin('GET', '/admin/keys');
  assert.equal(list.status, 200);
  assert.ok(!list.text.includes(ALICE_TOKEN) && !list.text.includes('v1.'), list.text);
  for (const t of [ALICE_TOKEN, BOB_TOKEN, CLI_TOKEN]) assert.ok(!gw.stderr().includes(t), 'the log holds a token');
});

test('a stored token this gateway cannot open refuses the user; it never falls back', async () => {
  assert.equal(await gw.stop(), 0);
  logs.push(gw.stderr());
  for (const extra of [[], ['--token-key-file', otherKeyFile]]) {
    gw = await copilotGateway(extra);
    await waitFor(async () => (await as('alice', 'GET', '/v1/me')).status === 200, { what: 'the keys loaded' });
    const r = await as('alice', 'POST', '/v1/chat/completions', { model: 'gpt-4.1', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.error.code, 'github_token_unreadable');
    assert.match(r.json.error.message, /--token-key-file/);
    assert.equal((await as('alice', 'GET', '/v1/me')).json.github_token.state, 'unreadable');
    const set = await as('alice', 'PUT', '/v1/me/github-token', { token: ALICE_TOKEN });
    if (extra.length === 0) {
      assert.equal(set.status, 501, set.text); /* no key file: it cannot keep one */
      assert.match(set.json.error.message, /--token-key-file/);
    } else {
      assert.equal(set.status, 200, set.text); /* set again under this key: usable at once */
      await rejectsAsUserToken(ask('alice'));
    }
    assert.match(gw.stderr(), /alice@corp/);
    assert.equal(await gw.stop(), 0);
    logs.push(gw.stderr());
  }
  gw = null;
  for (const l of logs) for (const t of [ALICE_TOKEN, BOB_TOKEN, CLI_TOKEN]) assert.ok(!l.includes(t), 'a log holds a token');
});

test('with a BYOK provider no GitHub identity is involved: the token is kept but not used', async () => {
  const fake = await startFake();
  const byok = await startGateway({ fake, args: ['--admin-key', ADMIN_KEY, '--data', data, '--token-key-file', otherKeyFile] });
  try {
    const r = await openai('alice', byok).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hello' }] });
    assert.equal(r.object, 'chat.completion');
    const me = await as('alice', 'GET', '/v1/me', undefined, byok);
    assert.equal(me.json.github_token.state, 'set');
    assert.equal(me.json.github_token.in_use, false);
    assert.equal(me.json.copilot_quota, undefined);
  } finally {
    assert.equal(await byok.stop(), 0);
    await fake.close();
  }
});
