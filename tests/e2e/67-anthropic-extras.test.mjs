// 67-anthropic-extras: /v1/models in Anthropic's format, and `copilot-gateway claude`, which
// prints the environment for Claude Code or runs `claude` with it (here a stand-in script on
// PATH records what it was given; Claude Code itself is exercised in its own test).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGateway, startGateway, openaiClient, test, uniq, metrics, sessionDeltas, GATEWAY_BIN } from './lib.mjs';

const ctx = useGateway();

test('GET /v1/models with anthropic-version answers in Anthropic\'s format', async () => {
  const r = await fetch(`${ctx.gw.baseURL}/models`, { headers: { 'anthropic-version': '2023-06-01' } });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.has_more, false);
  const ids = body.data.map((m) => m.id);
  assert.ok(ids.includes('fake-model'));
  assert.equal(body.first_id, ids[0]);
  assert.equal(body.last_id, ids.at(-1));
  for (const m of body.data) {
    assert.equal(m.type, 'model');
    assert.equal(typeof m.display_name, 'string');
    assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  }
  const one = await fetch(`${ctx.gw.baseURL}/models/fake-model`, { headers: { 'anthropic-version': '2023-06-01' } });
  assert.equal((await one.json()).type, 'model');
  const missing = await fetch(`${ctx.gw.baseURL}/models/nope`, { headers: { 'anthropic-version': '2023-06-01' } });
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.type, 'not_found_error');
  // Without the header: OpenAI's list.
  const openai = await (await fetch(`${ctx.gw.baseURL}/models`)).json();
  assert.equal(openai.object, 'list');
});

test('copilot-gateway claude prints the environment for Claude Code', () => {
  const out = execFileSync(GATEWAY_BIN, ['claude', '--listen', '0.0.0.0:4567', '--api-key', 'k1,k2',
    '--anthropic-default-model', 'fake-model'], { encoding: 'utf8' });
  assert.match(out, /^export ANTHROPIC_BASE_URL='http:\/\/127\.0\.0\.1:4567'$/m);
  assert.match(out, /^export ANTHROPIC_AUTH_TOKEN='k1'$/m);
  assert.match(out, /^export ANTHROPIC_MODEL='fake-model'$/m);
  assert.match(out, /^export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC='1'$/m);
});

test('copilot-gateway claude -- ARGS runs claude with that environment and those arguments', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-claude-'));
  try {
    const fake = join(dir, 'claude');
    writeFileSync(fake, '#!/bin/sh\necho "$ANTHROPIC_BASE_URL|$ANTHROPIC_AUTH_TOKEN|$CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC|$*"\n');
    chmodSync(fake, 0o755);
    const out = execFileSync(GATEWAY_BIN, ['claude', '--listen', '127.0.0.1:4567', '--', '-p', 'hello there'], {
      encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    assert.equal(out.trim(), 'http://127.0.0.1:4567|copilot-gateway|1|-p hello there');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--model-alias rewrites model names for both APIs; the response names the requested model', { timeout: 60_000 }, async () => {
  const gw = await startGateway({ fake: ctx.fake, args: ['--model-alias', 'team-default=fake-model,claude-opus-4-1=fake-model'] });
  try {
    const tok = uniq('ALIAS');
    const r = await openaiClient(gw).chat.completions.create({ model: 'team-default', messages: [{ role: 'user', content: tok }] });
    assert.equal(r.choices[0].message.content, `ECHO: ${tok}`);
    assert.equal(r.model, 'team-default');
    assert.equal(ctx.fake.requestsFor(tok)[0].body.model, 'fake-model');
    const tok2 = uniq('ALIAS2');
    const a = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-opus-4-1', max_tokens: 10, messages: [{ role: 'user', content: tok2 }] }),
    });
    assert.equal(a.status, 200);
    assert.equal(ctx.fake.requestsFor(tok2)[0].body.model, 'fake-model');
    await assert.rejects(openaiClient(gw).chat.completions.create({ model: 'not-an-alias', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status === 404);
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('metadata.user_id pins the conversation like X-Session-Id', { timeout: 60_000 }, async () => {
  const user = uniq('user');
  const post = (messages) => fetch(`${ctx.gw.url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'fake-model', max_tokens: 50, metadata: { user_id: user }, messages }),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const t1 = uniq('PIN1');
  const a1 = await post([{ role: 'user', content: t1 }]);
  assert.equal(a1.status, 200);
  const history = [{ role: 'user', content: t1 }, { role: 'assistant', content: a1.body.content }];
  const before = await metrics(ctx.gw);
  const t2 = uniq('PIN2');
  assert.equal((await post([...history, { role: 'user', content: t2 }])).status, 200);
  const mid = await metrics(ctx.gw);
  assert.equal(sessionDeltas(before, mid).reused, 1, 'extended under the same user_id: reused');
  const edited = [{ role: 'user', content: uniq('PIN1-edited') }, { role: 'assistant', content: a1.body.content }];
  assert.equal((await post([...edited, { role: 'user', content: uniq('PIN3') }])).status, 200);
  const after = await metrics(ctx.gw);
  assert.equal(sessionDeltas(mid, after).seeded, 1, 'edited under the same user_id: reseeded');
});

test('under one metadata.user_id, side requests with another system prompt do not evict the main conversation', { timeout: 60_000 }, async () => {
  /* Claude Code sends the same user_id with its main loop, its sub-agents and its small
   * side requests (titles, topic checks): only an edit of the same conversation replaces it. */
  const user = uniq('user');
  const post = (system, messages) => fetch(`${ctx.gw.url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'fake-model', max_tokens: 50, system, metadata: { user_id: user }, messages }),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const t1 = uniq('MAIN1');
  const a1 = await post('You are the main agent.', [{ role: 'user', content: t1 }]);
  assert.equal(a1.status, 200);
  const before = await metrics(ctx.gw);
  assert.equal((await post('Write a title.', [{ role: 'user', content: uniq('SIDE') }])).status, 200);
  const t2 = uniq('MAIN2');
  const a2 = await post('You are the main agent.', [{ role: 'user', content: t1 }, { role: 'assistant', content: a1.body.content }, { role: 'user', content: t2 }]);
  assert.equal(a2.status, 200);
  const d = sessionDeltas(before, await metrics(ctx.gw));
  assert.equal(d.reused, 1, `the main conversation continued its session: ${JSON.stringify(d)}`);
  assert.equal(d.seeded, 0, `nothing was reseeded: ${JSON.stringify(d)}`);
});
