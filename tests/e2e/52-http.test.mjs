// 52-http: health and readiness, request ids, no CORS by default, paths without /v1, and the model list.

import assert from 'node:assert/strict';
import { DEFAULT_MODELS } from '../fake/fakemodel.mjs';
import { useGateway, openaiClient, test, uniq, http, expectAPIError, assertOpenAIError } from './lib.mjs';

const ctx = useGateway();

/** Finds `key` anywhere in a JSON value (depth first); undefined when absent. */
function findKey(obj, key) {
  if (!obj || typeof obj !== 'object') return undefined;
  if (key in obj) return obj[key];
  for (const v of Object.values(obj)) {
    const found = findKey(v, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

test('GET /healthz -> 200 {"status":"ok"}', async () => {
  const r = await http(ctx.gw, 'GET', '/healthz');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /application\/json/);
  assert.equal(r.json?.status, 'ok');
});

test('GET /readyz -> 200 with the runtime state, pid, version, generation; no active turns', async () => {
  const r = await http(ctx.gw, 'GET', '/readyz');
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ready');
  const rt = r.json.runtime;
  assert.equal(rt.state, 'ready');
  assert.ok(Number.isInteger(rt.pid) && rt.pid > 0, `runtime.pid ${rt.pid}`);
  assert.equal(typeof rt.version, 'string');
  assert.ok(Number.isInteger(rt.generation) && rt.generation >= 1, `runtime.generation ${rt.generation}`);
  assert.equal(findKey(r.json, 'turns_active'), 0, `turns_active in ${r.text}`);
  /* The pid is a live process. */
  assert.doesNotThrow(() => process.kill(rt.pid, 0));
});

test('x-request-id is echoed; without one, a fresh one is generated', async () => {
  const tok = uniq('RID');
  const mine = `req-${tok}`;
  const paths = [
    ['POST', '/v1/chat/completions', { model: 'fake-model', messages: [{ role: 'user', content: tok }] }, 200],
    ['GET', '/v1/models', undefined, 200],
    ['GET', '/healthz', undefined, 200],
    ['GET', '/v1/definitely-not-a-route', undefined, 404],
    ['POST', '/v1/chat/completions', { messages: [] }, 400],
  ];
  for (const [method, path, body, status] of paths) {
    const echoed = await http(ctx.gw, method, path, { body, headers: { 'x-request-id': mine } });
    assert.equal(echoed.status, status, `${method} ${path}`);
    assert.equal(echoed.headers.get('x-request-id'), mine, `${method} ${path} echoes x-request-id`);
    const a = await http(ctx.gw, method, path, { body });
    const b = await http(ctx.gw, method, path, { body });
    const ida = a.headers.get('x-request-id');
    const idb = b.headers.get('x-request-id');
    assert.ok(ida && ida.length >= 8, `${method} ${path}: generated x-request-id ${ida}`);
    assert.notEqual(ida, idb, 'generated ids differ');
  }
  /* The openai client exposes it too. */
  const { response } = await ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }, { headers: { 'x-request-id': `${mine}-2` } }).withResponse();
  assert.equal(response.headers.get('x-request-id'), `${mine}-2`);
});

test('no CORS unless --cors-origins: a preflight from any page is refused without CORS headers', async () => {
  for (const path of ['/v1/chat/completions', '/v1/models', '/chat/completions']) {
    const r = await fetch(`${ctx.gw.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization, x-request-id',
      },
    });
    assert.equal(r.status, 403, path);
    assert.equal(r.headers.get('access-control-allow-origin'), null, `${path}: no CORS header`);
    await r.arrayBuffer();
  }
});

test('paths without /v1 work', async () => {
  const tok = uniq('NOV1');
  const chat = await http(ctx.gw, 'POST', '/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: tok }] } });
  assert.equal(chat.status, 200, chat.text);
  assert.equal(chat.json.choices[0].message.content, `ECHO: ${tok}`);
  const models = await http(ctx.gw, 'GET', '/models');
  assert.equal(models.status, 200);
  assert.equal(models.json.object, 'list');
  const one = await http(ctx.gw, 'GET', '/models/fake-model');
  assert.equal(one.status, 200);
  assert.equal(one.json.id, 'fake-model');
  /* And with the openai client on a base URL without /v1. */
  const bare = openaiClient({ baseURL: ctx.gw.url });
  const r = await bare.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `${tok}-bare` }] });
  assert.equal(r.choices[0].message.content, `ECHO: ${tok}-bare`);
});

test('GET /v1/models lists the provider models in OpenAI list shape', async () => {
  const page = await ctx.client.models.list();
  const ids = page.data.map((m) => m.id);
  for (const id of DEFAULT_MODELS) assert.ok(ids.includes(id), `${id} listed in ${JSON.stringify(ids)}`);
  for (const m of page.data) {
    assert.equal(m.object, 'model');
    assert.equal(typeof m.id, 'string');
  }
  const raw = await http(ctx.gw, 'GET', '/v1/models');
  assert.equal(raw.json.object, 'list');
  assert.ok(Array.isArray(raw.json.data));
});

test('GET /v1/models/{id}: known -> the model; unknown -> 404', async () => {
  const m = await ctx.client.models.retrieve('fake-model');
  assert.equal(m.id, 'fake-model');
  assert.equal(m.object, 'model');
  await expectAPIError(() => ctx.client.models.retrieve('nope'), { status: 404 });
  const raw = await http(ctx.gw, 'GET', '/v1/models/nope');
  assert.equal(raw.status, 404);
  assertOpenAIError(raw.json, {}, 'model 404');
});
