// 51-errors: every error is an OpenAI-shaped body {error:{message,type,param,code}} with the
// right status, never leaks paths, stack traces or the provider key, and bad requests never
// reach the model. Provider failures map to 400 / 429 / 502 / 504.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFake } from '../fake/fakemodel.mjs';
import {
  startGateway, openaiClient, test, uniq, http, expectAPIError, assertOpenAIError, assertNoLeaks, waitFor, collectStream,
} from './lib.mjs';

let fake;
let gw; /* defaults */
let lim; /* --max-body-bytes 1024 --turn-timeout-ms 2000 */
let client;
let limClient;

before(async () => {
  fake = await startFake();
  [gw, lim] = await Promise.all([
    startGateway({ fake }),
    startGateway({ fake, args: ['--max-body-bytes', '1024', '--turn-timeout-ms', '2000'] }),
  ]);
  client = openaiClient(gw);
  limClient = openaiClient(lim);
}, { timeout: 120_000 });

after(async () => {
  const codes = await Promise.all([gw?.stop(), lim?.stop()]);
  await fake?.close();
  assert.deepEqual(codes, [0, 0], 'gateways exit 0 on SIGTERM');
});

/**
 * A streamed request for `tok` must fail: with HTTP `status` when the gateway had not started
 * the response yet, otherwise with an SSE error event (the openai client throws an APIError
 * without a status). Either way the error is OpenAI-shaped and no content was invented.
 */
async function expectStreamError(c, tok, status) {
  let err;
  let content = '';
  try {
    const s = await c.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: tok }] });
    const out = await collectStream(s);
    err = out.error;
    content = out.content;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the stream ends with an error, not a silent end');
  assert.equal(content, '', 'no content was invented');
  assert.ok(err.status === undefined || err.status === status, `status ${err.status}, want ${status}: ${err.message}`);
  assert.ok(err.error, `an OpenAI error object, not a transport error: ${err.message}`);
  assertOpenAIError({ error: err.error }, {}, 'stream error');
  assertNoLeaks(String(err.message), 'stream error message');
}

/* Request validation, as data. `raw` is sent as the body verbatim; `body` goes through the
 * openai client; `want` is the status and the OpenAI error fields that must match. None of
 * these may reach the model. */
const INVALID = [
  { name: 'invalid JSON body', raw: '{"model": "fake-model", "messages": [', want: { status: 400 } },
  { name: 'body is a JSON array', raw: '[1,2,3]', want: { status: 400 } },
  { name: 'missing model', body: { messages: [{ role: 'user', content: 'TOK' }] }, want: { status: 400, param: 'model' } },
  { name: 'missing messages', body: { model: 'fake-model' }, want: { status: 400 } },
  { name: 'bad role', body: { model: 'fake-model', messages: [{ role: 'wizard', content: 'TOK' }] }, want: { status: 400, param: 'messages[0].role' } },
  { name: 'n=2', body: { model: 'fake-model', n: 2, messages: [{ role: 'user', content: 'TOK' }] }, want: { status: 400, param: 'n' } },
  { name: 'unknown model', body: { model: 'no-such-model', messages: [{ role: 'user', content: 'TOK' }] }, want: { status: 404, code: 'model_not_found' } },
];

for (const c of INVALID) {
  test(`invalid request: ${c.name} -> ${c.want.status}`, { timeout: 30_000 }, async () => {
    const tok = uniq('INV');
    const seen = fake.log().length;
    if (c.raw !== undefined) {
      const r = await http(gw, 'POST', '/v1/chat/completions', { raw: c.raw.replace('TOK', tok) });
      assert.equal(r.status, c.want.status, r.text);
      assert.match(r.headers.get('content-type') || '', /application\/json/);
      const { status, ...fields } = c.want;
      assertOpenAIError(r.json, fields, c.name);
    } else {
      const body = JSON.parse(JSON.stringify(c.body).replaceAll('TOK', tok));
      await expectAPIError(() => client.chat.completions.create(body), c.want);
    }
    assert.equal(fake.requestsFor(tok).length, 0, 'a rejected request never reaches the model');
    assert.equal(fake.log().length, seen, 'no model call at all');
  });
}

test('unknown route -> 404; wrong method -> 405', { timeout: 30_000 }, async () => {
  const r404 = await http(gw, 'GET', '/v1/no/such/route');
  assert.equal(r404.status, 404);
  assertOpenAIError(r404.json, {}, '404 body');
  const r404b = await http(gw, 'POST', '/v1/nope', { body: {} });
  assert.equal(r404b.status, 404);
  assertOpenAIError(r404b.json, {}, '404 body (POST)');
  const r405 = await http(gw, 'GET', '/v1/chat/completions');
  assert.equal(r405.status, 405);
  assertOpenAIError(r405.json, {}, '405 body');
});

test('body larger than --max-body-bytes -> 413', { timeout: 30_000 }, async () => {
  const tok = uniq('BIG');
  await expectAPIError(
    () => limClient.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `${tok} ${'x'.repeat(2000)}` }] }),
    { status: 413 },
  );
  /* Raw, too: the error body itself must be well-formed. */
  const r = await http(lim, 'POST', '/v1/chat/completions', {
    body: { model: 'fake-model', messages: [{ role: 'user', content: `${tok} ${'y'.repeat(4000)}` }] },
  });
  assert.equal(r.status, 413);
  assertOpenAIError(r.json, {}, '413 body');
  assert.equal(fake.requestsFor(tok).length, 0);
  /* A request under the limit still works on that gateway. */
  const ok = await limClient.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `small ${tok}` }] });
  assert.equal(ok.choices[0].message.content, `ECHO: small ${tok}`);
});

test('provider 400 -> 400, not retried', { timeout: 60_000 }, async () => {
  const tok = uniq('P400');
  fake.script({ rules: [{ match: tok, reply: { status: 400, error_body: {
    error: { message: 'upstream rejected the request: unsupported value', type: 'invalid_request_error', param: null, code: 'bad_value' },
  } } }] });
  await expectAPIError(
    () => client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }),
    { status: 400 },
  );
  assert.equal(fake.requestsFor(tok).length, 1, 'a provider 400 is not retried');
});

test('provider 400 "prompt is too long" (runtime: context_limit, retried 5x over ~5 s) -> 400', { timeout: 60_000 }, async () => {
  /* Observed on runtime 1.0.85: a 400 whose message says "prompt is too long" becomes
   * errorType "context_limit" and is retried 5 times, 1 s apart; other 400s are not retried. */
  const tok = uniq('P400CTX');
  fake.script({ rules: [{ match: tok, reply: { status: 400, error_body: {
    error: { message: 'the prompt is too long', type: 'invalid_request_error', param: null, code: 'context_length_exceeded' },
  } } }] });
  await expectAPIError(
    () => client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }),
    { status: 400 },
  );
});

test('provider 400 on a stream -> 400, or an error event if the stream had started', { timeout: 60_000 }, async () => {
  const tok = uniq('P400S');
  fake.script({ rules: [{ match: tok, reply: { status: 400 } }] });
  await expectStreamError(client, tok, 400);
});

test('provider 429 (always, retry-after: 1) -> 429', { timeout: 60_000 }, async () => {
  const tok = uniq('P429');
  fake.script({ rules: [{ match: tok, reply: { status: 429, headers: { 'retry-after': '1' }, error_body: {
    error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
  } } }] });
  /* The runtime retries 5 times, honouring Retry-After: about 5-6 s. */
  await expectAPIError(
    () => client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }),
    { status: 429 },
  );
  assert.ok(fake.requestsFor(tok).length >= 1);
});

test('provider 402 (quota spent) -> 429 insufficient_quota at once, without Retry-After, in both APIs', { timeout: 60_000 }, async () => {
  const tok = uniq('P402');
  fake.script({ rules: [{ match: tok, reply: { status: 402, error_body: {
    error: { message: 'monthly quota exceeded', type: 'insufficient_quota', param: null, code: 'quota_exceeded' },
  } } }] });
  const r = await http(gw, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: tok }] } });
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.error.code, 'insufficient_quota');
  assert.match(r.json.error.message, /quota is spent: 402 monthly quota exceeded/);
  assert.equal(r.headers.get('retry-after'), null, 'a spent quota does not come back in seconds');
  const a = await http(gw, 'POST', '/v1/messages', { body: { model: 'fake-model', max_tokens: 10, messages: [{ role: 'user', content: `${tok} again` }] }, headers: { 'anthropic-version': '2023-06-01' } });
  assert.equal(a.status, 429, a.text);
  assert.equal(a.json.type, 'error');
  assert.equal(a.json.error.type, 'rate_limit_error');
  assert.equal(fake.requestsFor(tok).length, 2, 'no retries');
});

test('provider 500 (always) -> 502', { timeout: 90_000 }, async () => {
  const tok = uniq('P500');
  fake.script({ rules: [{ match: tok, reply: { status: 500, error_body: {
    error: { message: 'internal meltdown at /srv/model/secret.py', type: 'server_error', param: null, code: null },
  } } }] });
  /* The runtime retries 5 times over about 15 s. */
  await expectAPIError(
    () => client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }),
    { status: 502 },
  );
  assert.ok(fake.requestsFor(tok).length >= 1);
});

test('provider hangs -> 504 after --turn-timeout-ms; the model call is cancelled', { timeout: 60_000 }, async () => {
  const tok = uniq('HANG');
  fake.script({ rules: [{ match: tok, reply: { hang: true } }] });
  await expectAPIError(
    () => limClient.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }),
    { status: 504 },
  );
  await waitFor(() => fake.requestsFor(tok).every((e) => e.outcome === 'client_closed'), {
    timeoutMs: 15_000, what: 'the hanging provider request to be closed (session aborted)',
  });
});

test('provider hangs on a stream -> 504, or an error event if the stream had started', { timeout: 60_000 }, async () => {
  const tok = uniq('HANGS');
  fake.script({ rules: [{ match: tok, reply: { hang: true } }] });
  await expectStreamError(limClient, tok, 504);
});

test('the gateway still answers after all of the above', { timeout: 60_000 }, async () => {
  for (const c of [client, limClient]) {
    const tok = uniq('AFTER');
    const r = await c.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] });
    assert.equal(r.choices[0].message.content, `ECHO: ${tok}`);
  }
});
