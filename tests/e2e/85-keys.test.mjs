// 85-keys: virtual API keys (issue 11) as a platform team uses them: created with the admin API
// and with `copilot-gateway keys` (on the database, while the daemon runs), used from the
// official clients with each header clients send (Authorization: Bearer, x-api-key, api-key),
// limited to some models, updated, revoked and expired; the admin API refuses client keys; a
// key's stored responses are its own. What a user sees: the secret once, 401/403 in each API's
// error shape, and changes taking effect at once (admin API) or within a second (CLI).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGateway, startGateway, test, uniq, http, GATEWAY_BIN, waitFor, parseMetrics } from './lib.mjs';

const ADMIN_KEY = 'admin-secret-85';
/* Prices for the fake model: 1 AI credit per input token, 2 per output token, 0.5 per cached one. */
const ctx = useGateway({ args: ['--admin-key', ADMIN_KEY, '--model-prices', 'fake-model=1000000/2000000/500000,fake-v*=1/1'] });

const admin = (method, path, body) => http(ctx.gw, method, path, { body, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
const openai = (key) => new OpenAI({ baseURL: `${ctx.gw.url}/v1`, apiKey: key, maxRetries: 0 });
const hi = (client, model = 'fake-model') => client.chat.completions.create({ model, messages: [{ role: 'user', content: `hi ${uniq('K')}` }] });

/** `copilot-gateway keys ...` on the gateway's data directory: {status, stdout, stderr}. */
function cli(...args) {
  const r = spawnSync(GATEWAY_BIN, ['keys', ...args, '--data', ctx.gw.data], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let alice; /* the secret of the key "alice" */

test('without keys the gateway is open (loopback); the first key closes it', async () => {
  assert.equal((await hi(openai('anything'))).object, 'chat.completion');
  const r = await admin('POST', '/admin/keys', { name: 'alice', user: 'alice@corp', rpm: 60, budget_credits: 500, expires_at: '2099-06-30T00:00:00Z' });
  assert.equal(r.status, 201, r.text);
  alice = r.json.key;
  assert.match(alice, /^sk-cg-[A-Za-z0-9]{48}$/);
  assert.deepEqual({ ...r.json, key: undefined, created_at: undefined }, {
    object: 'key', name: 'alice', user: 'alice@corp', models: null, rpm: 60, tpm: null, max_concurrent: null,
    budget_credits: 500, budget_period: 'month', expires_at: '2099-06-30T00:00:00.000Z', key: undefined, created_at: undefined,
  });
  // now every API request needs a key, in each API's own error shape
  await assert.rejects(hi(openai('not-a-key')), (e) => e.status === 401 && e.error?.type === 'authentication_error');
  const anth = new Anthropic({ baseURL: ctx.gw.url, apiKey: 'not-a-key', maxRetries: 0 });
  await assert.rejects(anth.messages.create({ model: 'fake-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 401 && e.error?.error?.type === 'authentication_error');
  const none = await http(ctx.gw, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: 'x' }] } });
  assert.equal(none.status, 401);
  assert.ok(!none.text.includes('sk-cg-'), none.text);
});

test('a key works as Bearer (openai), x-api-key (Anthropic) and api-key (Azure style)', async () => {
  assert.equal((await hi(openai(alice))).object, 'chat.completion');
  const anth = new Anthropic({ baseURL: ctx.gw.url, apiKey: alice, maxRetries: 0 });
  const m = await anth.messages.create({ model: 'fake-model', max_tokens: 10, messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(m.type, 'message');
  const azure = await http(ctx.gw, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: 'x' }] }, headers: { 'api-key': alice } });
  assert.equal(azure.status, 200, azure.text);
});

test('the admin API lists keys without secrets, refuses client keys, and checks what it is given', async () => {
  const list = await admin('GET', '/admin/keys');
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.data.map((k) => k.name), ['alice']);
  assert.ok(!list.text.includes(alice) && !list.text.includes('digest'), list.text);
  const asClient = await http(ctx.gw, 'GET', '/admin/keys', { headers: { authorization: `Bearer ${alice}` } });
  assert.equal(asClient.status, 401);
  for (const [body, field] of [[{ name: 'bad name' }, 'name'], [{ name: 'x', rpm: -1 }, 'rpm'], [{ name: 'x', models: 'gpt-*' }, 'models'],
    [{ name: 'x', budget_period: 'year' }, 'budget_period'], [{ name: 'x', expires_at: 'soon' }, 'expires_at'], [{ name: 'x', colour: 'red' }, 'colour']]) {
    const r = await admin('POST', '/admin/keys', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.json.error.message, new RegExp(field), r.text);
  }
  const dup = await admin('POST', '/admin/keys', { name: 'alice' });
  assert.equal(dup.status, 409, dup.text);
  assert.equal((await admin('GET', '/admin/keys/nobody')).status, 404);
});

test('models: a key limited to some models lists only those, and gets 403 for others', async () => {
  const r = await admin('POST', '/admin/keys', { name: 'narrow', models: ['fake-model', 'fake-v*'] });
  assert.equal(r.status, 201, r.text);
  const c = openai(r.json.key);
  const ids = (await c.models.list()).data.map((m) => m.id).sort();
  assert.deepEqual(ids, ['fake-model', 'fake-vision']);
  assert.equal((await hi(c)).object, 'chat.completion');
  await assert.rejects(hi(c, 'fake-reasoner'), (e) => e.status === 403 && e.code === 'model_not_allowed' && /fake-reasoner/.test(e.message));
  const anth = new Anthropic({ baseURL: ctx.gw.url, apiKey: r.json.key, maxRetries: 0 });
  await assert.rejects(anth.messages.create({ model: 'fake-reasoner', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 403 && e.error?.error?.type === 'permission_error');
});

test('PATCH updates a key at once; DELETE revokes it at once; an expired key is refused', async () => {
  const r = await admin('POST', '/admin/keys', { name: 'temp' });
  const c = openai(r.json.key);
  assert.equal((await hi(c)).object, 'chat.completion');
  const p = await admin('PATCH', '/admin/keys/temp', { models: ['nothing-*'], rpm: 5 });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.rpm, 5);
  assert.deepEqual(p.json.models, ['nothing-*']);
  await assert.rejects(hi(c), (e) => e.status === 403);
  assert.equal((await admin('PATCH', '/admin/keys/temp', { models: null, expires_at: '2001-01-01T00:00:00Z' })).status, 200);
  await assert.rejects(hi(c), (e) => e.status === 401 && /expired/.test(e.message));
  assert.equal((await admin('PATCH', '/admin/keys/temp', { expires_at: null })).status, 200);
  assert.equal((await hi(c)).object, 'chat.completion');
  const d = await admin('DELETE', '/admin/keys/temp');
  assert.equal(d.status, 200, d.text);
  await assert.rejects(hi(c), (e) => e.status === 401);
  assert.equal((await admin('DELETE', '/admin/keys/temp')).status, 404);
  // the name is free again; the old secret stays dead
  const again = await admin('POST', '/admin/keys', { name: 'temp' });
  assert.equal(again.status, 201);
  await assert.rejects(hi(c), (e) => e.status === 401);
  assert.equal((await hi(openai(again.json.key))).object, 'chat.completion');
});

test('the CLI creates, lists, updates and revokes keys while the daemon runs', async () => {
  const created = cli('create', 'bob', '--user', 'bob@corp', '--rpm', '30', '--models', 'fake-*');
  assert.equal(created.status, 0, created.stderr);
  const secret = created.stdout.trim();
  assert.match(secret, /^sk-cg-[A-Za-z0-9]{48}$/); /* the secret and nothing else */
  await waitFor(async () => (await http(ctx.gw, 'GET', '/v1/models', { headers: { authorization: `Bearer ${secret}` } })).status === 200,
    { what: 'the daemon to pick up the key the CLI created' });
  assert.equal((await hi(openai(secret))).object, 'chat.completion');
  const list = cli('list');
  assert.equal(list.status, 0);
  assert.match(list.stdout, /^bob\s+bob@corp\s+\["fake-\*"\]\s+30\s/m);
  assert.ok(!list.stdout.includes(secret));
  assert.equal(cli('create', 'bob').status, 1);
  const bad = cli('update', 'bob', '--budget-period', 'year');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /budget_period/);
  assert.equal(cli('revoke', 'bob').status, 0);
  await waitFor(async () => (await http(ctx.gw, 'GET', '/v1/models', { headers: { authorization: `Bearer ${secret}` } })).status === 401,
    { what: 'the daemon to drop the key the CLI revoked' });
  assert.equal(cli('show', 'bob').status, 1);
});

test('a key\'s stored responses are its own: another key gets 404', async () => {
  const one = await admin('POST', '/admin/keys', { name: 'resp-a' });
  const two = await admin('POST', '/admin/keys', { name: 'resp-b' });
  const a = openai(one.json.key);
  const b = openai(two.json.key);
  const r = await a.responses.create({ model: 'fake-model', input: `keep me ${uniq('R')}` });
  assert.equal((await a.responses.retrieve(r.id)).id, r.id);
  await assert.rejects(b.responses.retrieve(r.id), (e) => e.status === 404);
});

test('limits: rpm and max_concurrent give 429 with Retry-After and the rate-limit headers of each API', async () => {
  const r = await admin('POST', '/admin/keys', { name: 'slow', rpm: 2 });
  const key = r.json.key;
  const body = { model: 'fake-model', messages: [{ role: 'user', content: `limited ${uniq('L')}` }] };
  const first = await http(ctx.gw, 'POST', '/v1/chat/completions', { body, headers: { authorization: `Bearer ${key}` } });
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-ratelimit-limit-requests'), '2');
  assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '1');
  assert.equal((await http(ctx.gw, 'POST', '/v1/chat/completions', { body, headers: { authorization: `Bearer ${key}` } })).status, 200);
  const third = await http(ctx.gw, 'POST', '/v1/chat/completions', { body, headers: { authorization: `Bearer ${key}` } });
  assert.equal(third.status, 429, third.text);
  assert.equal(third.json.error.code, 'rate_limit_exceeded');
  assert.equal(third.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.ok(Number(third.headers.get('retry-after')) >= 1, JSON.stringify([...third.headers]));
  // the official client sees a RateLimitError
  await assert.rejects(openai(key).chat.completions.create(body), (e) => e.status === 429);
  // Anthropic: rate_limit_error and anthropic-ratelimit-* headers
  const a = await http(ctx.gw, 'POST', '/v1/messages', { body: { model: 'fake-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }, headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01' } });
  assert.equal(a.status, 429, a.text);
  assert.equal(a.json.error.type, 'rate_limit_error');
  assert.equal(a.headers.get('anthropic-ratelimit-requests-limit'), '2');
  assert.equal(a.headers.get('anthropic-ratelimit-requests-remaining'), '0');

  // one request in flight at most: a second one meanwhile is refused; after it, one passes
  const c = await admin('POST', '/admin/keys', { name: 'single', max_concurrent: 1 });
  const tok = uniq('C');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'late', first_byte_delay_ms: 1500 } }] });
  const pending = http(ctx.gw, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: tok }] }, headers: { authorization: `Bearer ${c.json.key}` } });
  await waitFor(async () => (await http(ctx.gw, 'POST', '/v1/chat/completions', { body, headers: { authorization: `Bearer ${c.json.key}` } })).status === 429,
    { what: 'a second request of a max_concurrent 1 key to be refused while the first runs' });
  assert.equal((await pending).status, 200);
  assert.equal((await http(ctx.gw, 'POST', '/v1/chat/completions', { body, headers: { authorization: `Bearer ${c.json.key}` } })).status, 200);

  // a request larger than the key's tokens per minute can never pass: 429 without Retry-After
  const t = await admin('POST', '/admin/keys', { name: 'tiny', tpm: 20 });
  const big = await http(ctx.gw, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: 'word '.repeat(200) }] }, headers: { authorization: `Bearer ${t.json.key}` } });
  assert.equal(big.status, 429, big.text);
  assert.equal(big.headers.get('retry-after'), null);
  assert.equal(big.headers.get('x-ratelimit-limit-tokens'), '20');
});

test('usage: every request recorded once, totals equal what the answers reported (plain, streamed, aborted, concurrent)', async () => {
  const ka = (await admin('POST', '/admin/keys', { name: 'use-a', user: 'ua@corp' })).json.key;
  const kb = (await admin('POST', '/admin/keys', { name: 'use-b', user: 'ub@corp' })).json.key;
  const tok = uniq('U');
  ctx.fake.reset();
  ctx.fake.script({ rules: [
    { match: `hang ${tok}`, reply: { hang: true } },
    { match: `reason ${tok}`, reply: { content: 'thought through', reasoning: 'hmm', usage: { prompt_tokens: 40, completion_tokens: 9, reasoning_tokens: 3, cached_tokens: 16 } } },
  ] });
  const a = openai(ka), b = openai(kb);
  // key a: three plain requests at once; key b: two streamed (usage in the last chunk) and one the client abandons
  const plain = await Promise.all([1, 2, 3].map((i) => a.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `plain ${i} ${tok} ${'x'.repeat(i * 40)}` }] })));
  const streamed = await Promise.all([1, 2].map(async (i) => {
    const s = await b.chat.completions.create({ model: 'fake-model', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `streamed ${i} ${tok}` }] });
    let usage = null;
    for await (const c of s) if (c.usage) usage = c.usage;
    return usage;
  }));
  const ac = new AbortController();
  const gone = b.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: `hang ${tok}` }] }, { signal: ac.signal })
    .then(async (s) => { for await (const c of s) void c; return 'finished'; }, () => 'aborted');
  await waitFor(() => ctx.fake.requestsFor(`hang ${tok}`).length > 0, { what: 'the abandoned request to reach the model' });
  ac.abort();
  assert.equal(await gone, 'aborted');
  const r1 = await a.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `reason ${tok}` }] });
  const sum = (list, f) => list.reduce((n, u) => n + f(u), 0);
  const want = {
    'use-a': { requests: 4, errors: 0,
      input_tokens: sum(plain, (r) => r.usage.prompt_tokens) + r1.usage.prompt_tokens,
      output_tokens: sum(plain, (r) => r.usage.completion_tokens) + r1.usage.completion_tokens,
      cached_tokens: r1.usage.prompt_tokens_details?.cached_tokens ?? 0 },
    'use-b': { requests: 3, errors: 1,
      input_tokens: sum(streamed, (u) => u.prompt_tokens), output_tokens: sum(streamed, (u) => u.completion_tokens), cached_tokens: 0 },
  };
  assert.equal(want['use-a'].cached_tokens, 16);
  /* credits: input at 1 (cached at 0.5), output at 2, per token (--model-prices) */
  want['use-a'].credits = want['use-a'].input_tokens - 16 + 16 * 0.5 + 2 * want['use-a'].output_tokens;
  want['use-b'].credits = want['use-b'].input_tokens + 2 * want['use-b'].output_tokens;
  // the aborted request is recorded once its flow ends
  let got;
  await waitFor(async () => {
    got = (await admin('GET', '/admin/usage?group_by=key')).json.data.filter((g) => g.key === 'use-a' || g.key === 'use-b');
    return got.length === 2 && got.find((g) => g.key === 'use-b').requests === 3;
  }, { what: 'the usage rows of both keys' });
  for (const g of got) {
    for (const [k, v] of Object.entries(want[g.key])) assert.equal(g[k], v, `${g.key} ${k}: ${JSON.stringify(got)}`);
  }
  // /metrics counts the same per key
  const m = parseMetrics(await (await fetch(`${ctx.gw.url}/metrics`, { headers: { authorization: `Bearer ${ka}` } })).text());
  assert.equal(m['copilot_gateway_key_requests_total{key="use-b"}'], 3);
  assert.equal(m['copilot_gateway_key_errors_total{key="use-b"}'], 1);
  assert.equal(m['copilot_gateway_key_input_tokens_total{key="use-a"}'], want['use-a'].input_tokens);
  assert.equal(m['copilot_gateway_key_credits_total{key="use-a"}'], want['use-a'].credits);
  // by user, and the CLI prints the same numbers
  const byUser = (await admin('GET', '/admin/usage?group_by=user')).json;
  assert.equal(byUser.group_by, 'user');
  assert.equal(byUser.data.find((g) => g.user === 'ua@corp').input_tokens, want['use-a'].input_tokens);
  const r = spawnSync(GATEWAY_BIN, ['usage', '--group-by', 'key', '--key', 'use-b', '--json', '--data', ctx.gw.data], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const line = JSON.parse(r.stdout.trim());
  assert.equal(line.key, 'use-b');
  assert.equal(line.requests, 3);
  assert.equal(line.output_tokens, want['use-b'].output_tokens);
  // bad queries are 400s naming the parameter
  const bad = await admin('GET', '/admin/usage?group_by=colour');
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /group_by/);
  assert.equal((await http(ctx.gw, 'GET', '/admin/usage', { headers: { authorization: `Bearer ${ka}` } })).status, 401);
});

test('a credit budget runs out: 429 insufficient_quota until the next period', async () => {
  const tok = uniq('B');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'spent', usage: { prompt_tokens: 30, completion_tokens: 10 } } }] });
  const k = (await admin('POST', '/admin/keys', { name: 'thrifty', budget_credits: 60, budget_period: 'day' })).json.key;
  const c = openai(k);
  const ask = () => c.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `spend ${tok}` }] });
  assert.equal((await ask()).usage.prompt_tokens, 30); /* 30 + 2 * 10 = 50 credits of 60 */
  assert.equal((await ask()).object, 'chat.completion'); /* 100 of 60: allowed, as it was under budget when it began */
  await assert.rejects(ask(), (e) => e.status === 429 && e.code === 'insufficient_quota' && /budget/.test(e.message));
  const u = (await admin('GET', '/admin/usage?group_by=key&key=thrifty')).json.data[0];
  assert.equal(u.credits, 100);
  assert.equal(u.requests, 3);
  assert.equal(u.errors, 1);
  // the key's holder sees the same in GET /v1/me, never the secret
  const me = await http(ctx.gw, 'GET', '/v1/me', { headers: { authorization: `Bearer ${k}` } });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.key.name, 'thrifty');
  assert.equal(me.json.key.budget_credits, 60);
  assert.equal(me.json.usage.credits, 100);
  assert.equal(me.json.usage.requests, 3);
  assert.equal(me.json.usage.budget_left, 0);
  assert.match(me.json.usage.since, /T00:00:00.000Z$/); /* the day's start, UTC */
  assert.ok(!me.text.includes(k));
});

/* What a model call cost, as CAPI reports it in its response (the runtime passes it on). */
const copilotUsage = (nanoAiu) => ({ total_nano_aiu: nanoAiu, token_details: [
  { batch_size: 1000, cost_per_batch: 1000, token_count: 30, token_type: 'input' },
  { batch_size: 1000, cost_per_batch: 4000, token_count: 10, token_type: 'output' },
] });
const usageOf = async (key) => (await admin('GET', `/admin/usage?group_by=key&key=${key}`)).json.data[0];
const meOf = async (secret) => (await http(ctx.gw, 'GET', '/v1/me', { headers: { authorization: `Bearer ${secret}` } })).json;

test('credits: the runtime\'s reported cost (copilot_usage) is what a request costs, plain and streamed, over --model-prices', async () => {
  const tok = uniq('N');
  /* fake-model has a --model-prices entry: these tokens would cost 30 + 2 * 10 = 50 credits by it */
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'costed', usage: { prompt_tokens: 30, completion_tokens: 10 }, copilot_usage: copilotUsage(2_500_000_000) } }] });
  const k = (await admin('POST', '/admin/keys', { name: 'nano' })).json.key;
  const c = openai(k);
  const plain = await c.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `plain ${tok}` }] });
  assert.equal(plain.choices[0].message.content, 'costed');
  const s = await c.chat.completions.create({ model: 'fake-model', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `streamed ${tok}` }] });
  let text = '';
  for await (const ch of s) text += ch.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'costed');
  const u = await usageOf('nano');
  assert.equal(u.requests, 2, JSON.stringify(u));
  assert.equal(u.input_tokens, 60, JSON.stringify(u)); /* the tokens are still recorded */
  assert.equal(u.credits, 5, JSON.stringify(u)); /* 2.5 each, not 50 */
  const me = await meOf(k);
  assert.equal(me.usage.credits, 5, JSON.stringify(me));
  const m = parseMetrics(await (await fetch(`${ctx.gw.url}/metrics`, { headers: { authorization: `Bearer ${k}` } })).text());
  assert.equal(m['copilot_gateway_key_credits_total{key="nano"}'], 5);
});

test('credits: a tool round trip costs what both of its model calls reported', async () => {
  const tok = uniq('T');
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: `call_${tok}`, name: 'get_weather', arguments: { city: 'Oslo' } }], copilot_usage: copilotUsage(1_250_000_000) } },
    { match_tool: `RESULT-${tok}`, reply: { content: 'Oslo: 4C', copilot_usage: copilotUsage(750_000_000) } },
  ] });
  const k = (await admin('POST', '/admin/keys', { name: 'roundtrip' })).json.key;
  const c = openai(k);
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city.', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const messages = [{ role: 'user', content: `weather in Oslo? ${tok}` }];
  const r1 = await c.chat.completions.create({ model: 'fake-model', messages, tools });
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  const call = r1.choices[0].message.tool_calls[0];
  messages.push(r1.choices[0].message, { role: 'tool', tool_call_id: call.id, content: `RESULT-${tok}: 4C` });
  const r2 = await c.chat.completions.create({ model: 'fake-model', messages, tools });
  assert.equal(r2.choices[0].message.content, 'Oslo: 4C');
  const u = await usageOf('roundtrip');
  assert.equal(u.requests, 2, JSON.stringify(u));
  assert.equal(u.credits, 2, JSON.stringify(u)); /* 1.25 + 0.75 */
  assert.equal((await meOf(k)).usage.credits, 2);
});

test('credits: a budget that reported costs exhaust gives 429 insufficient_quota', async () => {
  const tok = uniq('Q');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'dear', copilot_usage: copilotUsage(2_500_000_000) } }] });
  /* fake-reasoner has no --model-prices entry (and a BYOK catalogue no prices): only the
   * reported cost can spend this budget */
  const k = (await admin('POST', '/admin/keys', { name: 'nano-budget', budget_credits: 4, budget_period: 'day' })).json.key;
  const c = openai(k);
  const ask = () => c.chat.completions.create({ model: 'fake-reasoner', messages: [{ role: 'user', content: `dear ${tok}` }] });
  assert.equal((await ask()).choices[0].message.content, 'dear'); /* 2.5 of 4 */
  assert.equal((await ask()).choices[0].message.content, 'dear'); /* 5 of 4: began under budget */
  await assert.rejects(ask(), (e) => e.status === 429 && e.code === 'insufficient_quota' && /budget/.test(e.message));
  const me = await meOf(k);
  assert.equal(me.usage.credits, 5, JSON.stringify(me));
  assert.equal(me.usage.budget_left, 0);
});

test('a spent budget stays spent across a restart (seeded from the recorded usage)', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'gw-keys-restart-'));
  const args = ['--data', data, '--admin-key', ADMIN_KEY, '--model-prices', 'fake-model=1000000/2000000'];
  const tok = uniq('R');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'spent', usage: { prompt_tokens: 30, completion_tokens: 10 } } }] });
  let gw = await startGateway({ fake: ctx.fake, args });
  try {
    const made = await http(gw, 'POST', '/admin/keys', { body: { name: 'carry', budget_credits: 60, budget_period: 'month' }, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const key = made.json.key;
    const ask = (g) => http(g, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: `spend ${tok}` }] }, headers: { authorization: `Bearer ${key}` } });
    assert.equal((await ask(gw)).status, 200); /* 50 credits */
    assert.equal((await ask(gw)).status, 200); /* 100: over, from now on */
    assert.equal(await gw.stop(), 0);
    gw = await startGateway({ fake: ctx.fake, args });
    const r = await ask(gw);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.code, 'insufficient_quota');
  } finally {
    await gw.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('usage rows survive a SIGTERM right after the answers (issue 12: committed in groups, and at shutdown)', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'gw-keys-sigterm-'));
  const args = ['--data', data, '--admin-key', ADMIN_KEY];
  const tok = uniq('T');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'counted', usage: { prompt_tokens: 7, completion_tokens: 3 } } }] });
  const gw = await startGateway({ fake: ctx.fake, args });
  try {
    const made = await http(gw, 'POST', '/admin/keys', { body: { name: 'sigterm' }, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(made.status, 201, made.text);
    const ask = (i) => http(gw, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: `count ${i} ${tok}` }] }, headers: { authorization: `Bearer ${made.json.key}` } });
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(i)));
    assert.deepEqual(answers.map((r) => r.status), Array(12).fill(200));
    /* at once: nothing has read the store since, so the rows may still wait for their group commit */
    assert.equal(await gw.stop(), 0);
    const r = spawnSync(GATEWAY_BIN, ['usage', '--group-by', 'key', '--key', 'sigterm', '--json', '--data', data], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const line = JSON.parse(r.stdout.trim());
    assert.deepEqual([line.key, line.requests, line.errors, line.input_tokens, line.output_tokens], ['sigterm', 12, 0, 12 * 7, 12 * 3], r.stdout);
  } finally {
    await gw.stop();
    rmSync(data, { recursive: true, force: true });
  }
});
