// 77-routes: the route table. Every route answers a wrong method with 405, an Allow header
// naming exactly the methods of that path, and the error in the route's API shape (Anthropic's
// on /v1/messages and /v1/messages/count_tokens, OpenAI's elsewhere); OPTIONS answers with the
// same Allow; unknown paths are 404. And the cheap checks run before the expensive work: a
// request for a model that does not exist downloads none of its image URLs.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import nodeHttp from 'node:http';
import { createHash } from 'node:crypto';
import { startFake } from '../fake/fakemodel.mjs';
import {
  startGateway, test, http, uniq, assertOpenAIError, TINY_PNG_B64,
} from './lib.mjs';

const GET = 'GET, HEAD, OPTIONS';
const POST = 'POST, OPTIONS';

/* [path, Allow, API shape]: one row per path of the table, with a sample capture. */
const ROUTES = [
  ['/', GET, 'openai'],
  ['/healthz', GET, 'openai'],
  ['/readyz', GET, 'openai'],
  ['/metrics', GET, 'openai'],
  ['/v1/chat/completions', POST, 'openai'],
  ['/chat/completions', POST, 'openai'],
  ['/v1/messages', POST, 'anthropic'],
  ['/messages', POST, 'anthropic'],
  ['/v1/messages/count_tokens', POST, 'anthropic'],
  ['/v1/responses', POST, 'openai'],
  ['/v1/responses/resp_abc', 'GET, HEAD, DELETE, OPTIONS', 'openai'],
  ['/v1/responses/resp_abc/cancel', POST, 'openai'],
  ['/v1/responses/resp_abc/input_items', GET, 'openai'],
  ['/v1/models', GET, 'openai'],
  ['/models', GET, 'openai'],
  ['/v1/models/fake-model', GET, 'openai'],
];

/* Methods whose error body can be read (HEAD's cannot). */
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

function assertAnthropicError(body, where) {
  assert.equal(body?.type, 'error', `${where}: Anthropic error shape: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error?.type, 'string', `${where}: error.type`);
  assert.equal(typeof body.error?.message, 'string', `${where}: error.message`);
  assert.equal(body.error.type, 'invalid_request_error', `${where}: error.type`);
}

let fake;
let gw;
let img; /* counts hits on image URLs */
let imgBase;
const hits = [];

before(async () => {
  img = nodeHttp.createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end(Buffer.from(TINY_PNG_B64, 'base64'));
  });
  await new Promise((r) => img.listen(0, '127.0.0.1', r));
  imgBase = `http://127.0.0.1:${img.address().port}`;
  fake = await startFake();
  gw = await startGateway({ fake, args: ['--image-fetch-private', '1'] });
}, { timeout: 90_000 });

after(async () => {
  try {
    if (gw) assert.equal(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
  } finally {
    await fake?.close();
    img?.closeAllConnections?.();
    await new Promise((r) => (img ? img.close(r) : r()));
  }
});

test('every route: a wrong method is 405 with the exact Allow, in the route\'s API shape', async () => {
  let checked = 0;
  for (const [path, allow, shape] of ROUTES) {
    const allowed = allow.split(', ');
    for (const method of METHODS.filter((m) => !allowed.includes(m))) {
      const where = `${method} ${path}`;
      const r = await http(gw, method, path, method === 'GET' ? {} : { body: {} });
      assert.equal(r.status, 405, `${where}: ${r.text}`);
      assert.equal(r.headers.get('allow'), allow, `${where}: Allow`);
      if (shape === 'anthropic') assertAnthropicError(r.json, where);
      else assertOpenAIError(r.json, {}, where);
      checked++;
    }
  }
  assert.ok(checked >= ROUTES.length * 3, `${checked} wrong methods checked`);
});

test('every route: OPTIONS is 204 with the same Allow', async () => {
  for (const [path, allow] of ROUTES) {
    const r = await fetch(`${gw.url}${path}`, { method: 'OPTIONS' });
    assert.equal(r.status, 204, `OPTIONS ${path}`);
    assert.equal(r.headers.get('allow'), allow, `OPTIONS ${path}: Allow`);
    await r.arrayBuffer();
  }
});

test('a served method is never answered 405 or 404 by the router', async () => {
  /* HEAD has GET's status and headers: every GET route routes it to its handler. */
  for (const path of ['/', '/healthz', '/readyz', '/metrics', '/v1/models', '/v1/models/fake-model']) {
    const r = await fetch(`${gw.url}${path}`, { method: 'HEAD' });
    assert.equal(r.status, 200, `HEAD ${path}`);
    await r.arrayBuffer();
  }
  /* An unknown stored response is the handler's 404, with its own message. */
  const g = await http(gw, 'GET', '/v1/responses/resp_nope/input_items');
  assert.equal(g.status, 404);
  assert.match(g.json.error.message, /resp_nope/);
});

test('unknown paths are 404 in the OpenAI shape, whatever the method', async () => {
  for (const [method, path] of [
    ['GET', '/v1/no/such/route'], ['POST', '/v1/nope'], ['DELETE', '/v1/chat'],
    ['GET', '/v1/responses/resp_abc/nope'], ['POST', '/v1/messages/nope'], ['GET', '/v2/models'],
    ['OPTIONS', '/v1/no/such/route'],
  ]) {
    const r = await http(gw, method, path, method === 'POST' ? { body: {} } : {});
    assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
    if (method !== 'OPTIONS') assertOpenAIError(r.json, {}, `${method} ${path}`);
  }
});

test('an unknown model: its image URLs are never downloaded, the reply is model_not_found', async () => {
  const tok = uniq('NOIMG');
  const before = hits.length;
  const chat = await http(gw, 'POST', '/v1/chat/completions', {
    body: {
      model: 'no-such-model',
      messages: [{ role: 'user', content: [
        { type: 'text', text: tok },
        { type: 'image_url', image_url: { url: `${imgBase}/a.png` } },
        { type: 'image_url', image_url: { url: `${imgBase}/b.png` } },
      ] }],
    },
  });
  assert.equal(chat.status, 404, chat.text);
  assertOpenAIError(chat.json, { code: 'model_not_found', param: 'model' }, 'chat');
  const msg = await http(gw, 'POST', '/v1/messages', {
    body: {
      model: 'no-such-model', max_tokens: 16,
      messages: [{ role: 'user', content: [
        { type: 'text', text: tok },
        { type: 'image', source: { type: 'url', url: `${imgBase}/c.png` } },
      ] }],
    },
  });
  assert.equal(msg.status, 404, msg.text);
  assert.equal(msg.json.type, 'error');
  assert.equal(msg.json.error.type, 'not_found_error');
  const resp = await http(gw, 'POST', '/v1/responses', {
    body: {
      model: 'no-such-model',
      input: [{ role: 'user', content: [
        { type: 'input_text', text: tok },
        { type: 'input_image', image_url: `${imgBase}/d.png` },
      ] }],
    },
  });
  assert.equal(resp.status, 404, resp.text);
  assertOpenAIError(resp.json, { code: 'model_not_found' }, 'responses');
  assert.equal(hits.length - before, 0, `image URLs fetched: ${JSON.stringify(hits.slice(before))}`);
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was never called');

  /* The same request for a model that exists does download them (the test can fail). */
  const ok = await http(gw, 'POST', '/v1/chat/completions', {
    body: {
      model: 'fake-model',
      messages: [{ role: 'user', content: [
        { type: 'text', text: tok },
        { type: 'image_url', image_url: { url: `${imgBase}/e.png` } },
      ] }],
    },
  });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(hits.slice(before), ['/e.png']);
});

test('each --api-key is its own principal, named by its hash; without keys it is "anon"', { timeout: 90_000 }, async () => {
  const tok = uniq('PRINC');
  const body = { model: 'fake-model', messages: [{ role: 'user', content: tok }] };
  const r = await http(gw, 'POST', '/v1/chat/completions', { body });
  assert.equal(r.status, 200, r.text);
  assert.match(gw.stderr(), new RegExp(`req=${r.headers.get('x-request-id')} turn for principal anon\\b`));

  const keyed = await startGateway({ fake, args: ['--api-key', 'k-one,k-two'] });
  try {
    const id = (k) => `key:${createHash('sha256').update(k).digest('hex').slice(0, 16)}`;
    for (const [key, how] of [['k-two', 'authorization'], ['k-one', 'x-api-key']]) {
      const headers = how === 'authorization' ? { authorization: `Bearer ${key}` } : { 'x-api-key': key };
      const k = await http(keyed, 'POST', '/v1/chat/completions', { body, headers });
      assert.equal(k.status, 200, k.text);
      const line = keyed.stderr().split('\n').find((l) => l.includes(`req=${k.headers.get('x-request-id')} turn for principal`));
      assert.ok(line, 'the turn names its principal');
      assert.ok(line.endsWith(`principal ${id(key)}`), line);
      assert.ok(!line.includes(key), 'the key itself is never logged');
    }
    /* A wrong key, or a right key's prefix, is 401 on every route but the probes. */
    for (const key of ['k-on', 'k-one2', '']) {
      const w = await http(keyed, 'POST', '/v1/chat/completions', { body, headers: { authorization: `Bearer ${key}` } });
      assert.equal(w.status, 401, `key ${JSON.stringify(key)}`);
      assertOpenAIError(w.json, {}, 'wrong key');
    }
    const probe = await http(keyed, 'POST', '/healthz');
    assert.equal(probe.status, 405, 'a probe route needs no key, even for its 405');
    const unkeyed = await http(keyed, 'POST', '/v1/nope', { body: {} });
    assert.equal(unkeyed.status, 401, 'unknown paths are not revealed without a key');
  } finally {
    assert.equal(await keyed.stop(), 0);
  }
});
