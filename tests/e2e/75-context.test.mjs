// 75-context: a conversation larger than the model's context window is refused with a 400 in
// the request's own API before it reaches the runtime, as OpenAI and Anthropic refuse it:
// chat completions and Responses say context_length_exceeded, Anthropic Messages "prompt is
// too long". The limit is the window the model catalogue states (here the fake's GET /models
// gives `fake-small` a context_length of 4000), capped by --max-input-tokens, which alone
// applies to a model whose window is unknown. The size is the gateway's token estimate (about
// four bytes a token, plus 4 a message, plus 1: the same number count_tokens answers).
//
// Gateways: `gw` (defaults: --max-input-tokens 1000000) and `capped` (--max-input-tokens 2000).
// "The runtime was not involved" is: no new runtime session in /metrics and no model call.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { startFake, DEFAULT_MODELS } from '../fake/fakemodel.mjs';
import {
  startGateway, openaiClient, test, uniq, http, metrics, expectSessions, expectAPIError, assertNoLeaks, textOf,
  stripDatetime,
} from './lib.mjs';

const SMALL = 'fake-small'; /* context_length 4000 in the fake's model list */
const WINDOW = 4000;
const CAP = 2000; /* --max-input-tokens of `capped` */
const MIB = 1024 * 1024;

let fake;
let gw;
let capped;
let client;
let cappedClient;
let claude;

before(async () => {
  fake = await startFake({
    models: [...DEFAULT_MODELS, { id: SMALL, object: 'model', created: 1764028800, owned_by: 'fake', context_length: WINDOW }],
  });
  [gw, capped] = await Promise.all([
    startGateway({ fake }),
    startGateway({ fake, args: ['--max-input-tokens', String(CAP)] }),
  ]);
  client = openaiClient(gw);
  cappedClient = openaiClient(capped);
  claude = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
}, { timeout: 120_000 });

after(async () => {
  try {
    const codes = await Promise.all([gw?.stop(), capped?.stop()]);
    assert.deepEqual(codes, [0, 0], 'gateways exit 0 on SIGTERM');
  } finally {
    await fake?.close();
  }
});

/** The gateway's estimate of one user message of `bytes` bytes (ASCII). */
const estimate1 = (bytes) => Math.floor((bytes + 3) / 4) + 4 + 1;

/** A user text of exactly `bytes` bytes that starts with tok (so the fake's log can find it). */
const text = (tok, bytes) => `${tok} ${'a'.repeat(Math.max(0, bytes - tok.length - 1))}`;

/** OpenAI's wording, with the gateway's numbers. */
const openaiMsg = (limit, tokens) =>
  `This model's maximum context length is ${limit} tokens. However, your messages resulted in about ${tokens} tokens. Please reduce the length of the messages.`;

/** Checks an OpenAI context_length_exceeded error (APIError from the openai client). */
async function expectTooLong(fn, { param = 'messages', limit, tokens } = {}) {
  const err = await expectAPIError(fn, { status: 400, param, code: 'context_length_exceeded', type: 'invalid_request_error' });
  if (tokens !== undefined) assert.equal(err.error.message, openaiMsg(limit, tokens));
  else assert.match(err.error.message, new RegExp(`^This model's maximum context length is ${limit} tokens\\. However, your messages resulted in about \\d+ tokens\\.`));
  return err;
}

/** Checks Anthropic's 400 for a prompt over the limit (APIError from @anthropic-ai/sdk). */
async function expectPromptTooLong(fn, limit) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Anthropic.APIError, `expected an Anthropic APIError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 400, err.message);
  assert.equal(err.error?.type, 'error', JSON.stringify(err.error));
  assert.equal(err.error?.error?.type, 'invalid_request_error', JSON.stringify(err.error));
  const m = /^prompt is too long: (\d+) tokens > (\d+) maximum$/.exec(err.error?.error?.message ?? '');
  assert.ok(m, `Anthropic's wording: ${err.error?.error?.message}`);
  assert.equal(Number(m[2]), limit);
  assert.ok(Number(m[1]) > limit, `${m[1]} tokens > ${limit}`);
  assertNoLeaks(JSON.stringify(err.error));
  return Number(m[1]);
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** A process's peak and current resident memory in MiB, from /proc (Linux). */
function memMiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { peak: Math.round(kb('VmHWM') / 1024), now: Math.round(kb('VmRSS') / 1024) };
}

test('a 31 MiB prompt (under --max-body-bytes) is a fast 400 context_length_exceeded; the runtime never sees it', { timeout: 120_000 }, async (t) => {
  const tok = uniq('HUGE');
  const bytes = 31 * MIB;
  const before0 = await metrics(gw);
  const runtime0 = await gw.runtime();
  const cpu0 = cpuSeconds(gw.proc.pid);
  const t0 = Date.now();
  /* A bounded client: the gateway used to hand this to the runtime, which never answered. */
  const bounded = openaiClient(gw, { timeout: 30_000 });
  await expectTooLong(() => bounded.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: text(tok, bytes) }] }),
    { limit: 1000000, tokens: estimate1(bytes) });
  const rtMem = memMiB(runtime0.pid);
  t.diagnostic(`refused in ${Date.now() - t0} ms, gateway CPU ${(cpuSeconds(gw.proc.pid) - cpu0).toFixed(2)} s, `
    + `gateway memory peak ${memMiB(gw.proc.pid).peak} MiB, runtime memory ${rtMem.now} MiB (peak ${rtMem.peak} MiB)`);

  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');
  await expectSessions(gw, before0, { created: 0, seeded: 0, reused: 0, live: 0 }, 'no runtime session for a refused request');
  const runtime1 = await gw.runtime();
  assert.equal(runtime1.state, 'ready');
  assert.equal(runtime1.pid, runtime0.pid, 'the same runtime process');
  assert.equal(runtime1.generation, runtime0.generation, 'the runtime did not restart');

  /* The gateway still serves the next request (the same API and another one). */
  const ok = uniq('NEXT');
  const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `hello ${ok}` }] });
  assert.equal(stripDatetime(r.choices[0].message.content), `ECHO: hello ${ok}`);
  const m = await claude.messages.create({ model: 'fake-model', max_tokens: 64, messages: [{ role: 'user', content: `hi ${ok}` }] });
  assert.equal(m.content[0].text, `ECHO: hi ${ok}`);
});

test('the same 31 MiB prompt streamed: a 400 before any stream starts', { timeout: 120_000 }, async () => {
  const tok = uniq('HUGES');
  const bounded = openaiClient(gw, { timeout: 30_000 });
  await expectTooLong(() => bounded.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: text(tok, 31 * MIB) }] }),
    { limit: 1000000, tokens: estimate1(31 * MIB) });
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');
});

test('chat completions: a model with a 4000-token window takes a conversation under it and refuses one over it', { timeout: 90_000 }, async () => {
  const under = uniq('CHU');
  const r = await client.chat.completions.create({ model: SMALL, messages: [{ role: 'user', content: text(under, 12000) }] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(fake.requestsFor(under).length, 1, 'under the window: the model answered');

  const over = uniq('CHO');
  const before0 = await metrics(gw);
  /* The whole conversation counts: system prompt, earlier turns and the new message. */
  const messages = [
    { role: 'system', content: 's'.repeat(4000) },
    { role: 'user', content: 'u'.repeat(4000) },
    { role: 'assistant', content: 'a'.repeat(4000) },
    { role: 'user', content: text(over, 4001) },
  ];
  await expectTooLong(() => client.chat.completions.create({ model: SMALL, messages }),
    { limit: WINDOW, tokens: Math.floor((16001 + 3) / 4) + 3 * 4 + 1 });
  await expectTooLong(() => client.chat.completions.create({ model: SMALL, stream: true, messages }), { limit: WINDOW });
  assert.equal(fake.requestsFor(over).length, 0, 'over the window: the model was not called');
  await expectSessions(gw, before0, { created: 0, seeded: 0 }, 'no runtime session');
});

test('chat completions: tool definitions count (a small message with huge tools is refused)', { timeout: 60_000 }, async () => {
  const tok = uniq('TOOLS');
  const tools = [{
    type: 'function',
    function: { name: 'big', description: 'd'.repeat(20000), parameters: { type: 'object', properties: {} } },
  }];
  await expectTooLong(() => client.chat.completions.create({ model: SMALL, tools, messages: [{ role: 'user', content: `hi ${tok}` }] }), { limit: WINDOW });
  assert.equal(fake.requestsFor(tok).length, 0);
});

test('Anthropic Messages: over the window is "prompt is too long" (400), under it answers; count_tokens still counts', { timeout: 90_000 }, async () => {
  const under = uniq('ANU');
  const m = await claude.messages.create({ model: SMALL, max_tokens: 64, messages: [{ role: 'user', content: text(under, 8000) }] });
  assert.equal(m.type, 'message');
  assert.equal(m.stop_reason, 'end_turn');

  const over = uniq('ANO');
  const body = { model: SMALL, max_tokens: 64, system: 'be brief', messages: [{ role: 'user', content: text(over, 20000) }] };
  const tokens = await expectPromptTooLong(() => claude.messages.create(body), WINDOW);
  await expectPromptTooLong(() => claude.messages.create({ ...body, stream: true }), WINDOW);
  assert.equal(fake.requestsFor(over).length, 0, 'the model was not called');

  /* count_tokens is never refused: it answers the same estimate. */
  const { max_tokens: _, ...countBody } = body;
  const n = await claude.messages.countTokens(countBody);
  assert.equal(n.input_tokens, tokens, 'count_tokens = the refused request\'s token count');
});

test('Responses: input over the window is context_length_exceeded naming "input"; so is a previous_response_id chain that grows past it', { timeout: 120_000 }, async () => {
  const over = uniq('RSO');
  await expectTooLong(() => client.responses.create({ model: SMALL, input: text(over, 20000) }), { param: 'input', limit: WINDOW });
  assert.equal(fake.requestsFor(over).length, 0);

  /* 6000 bytes in, echoed back (6006 bytes out): about 3000 tokens stored in the chain. */
  const t1 = uniq('RS1');
  const r1 = await client.responses.create({ model: SMALL, input: text(t1, 6000) });
  assert.equal(r1.status, 'completed');
  assert.equal(stripDatetime(r1.output_text), `ECHO: ${text(t1, 6000)}`);

  /* The same again on top of the chain is over 4000, though alone it is far under. */
  const t2 = uniq('RS2');
  const before0 = await metrics(gw);
  await expectTooLong(() => client.responses.create({ model: SMALL, previous_response_id: r1.id, input: text(t2, 6000) }),
    { param: 'input', limit: WINDOW, tokens: Math.floor((6000 + 6006 + 6000 + 3) / 4) + 3 * 4 + 1 });
  await expectTooLong(() => client.responses.create({ model: SMALL, previous_response_id: r1.id, input: text(t2, 6000), stream: true }),
    { param: 'input', limit: WINDOW });
  await expectTooLong(() => client.responses.create({ model: SMALL, previous_response_id: r1.id, input: text(t2, 6000), background: true }),
    { param: 'input', limit: WINDOW });
  assert.equal(fake.requestsFor(t2).length, 0, 'the model was not called');
  await expectSessions(gw, before0, { created: 0, seeded: 0, reused: 0 }, 'no runtime session');

  /* A short follow-up on the same chain still fits. */
  const t3 = uniq('RS3');
  const r3 = await client.responses.create({ model: SMALL, previous_response_id: r1.id, input: `short ${t3}` });
  assert.equal(r3.status, 'completed');
  assert.equal(stripDatetime(r3.output_text), `ECHO: short ${t3}`);
  const seen = fake.requestsFor(t3)[0].body.messages.map((x) => stripDatetime(textOf(x.content)));
  assert.deepEqual(seen.slice(-3), [text(t1, 6000), `ECHO: ${text(t1, 6000)}`, `short ${t3}`], 'the model got the chain');
});

test('--max-input-tokens is the limit of a model without a known window, and caps a known one', { timeout: 90_000 }, async () => {
  /* fake-model states no window: the cap alone. */
  const under = uniq('CAPU');
  const r = await cappedClient.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: text(under, 6000) }] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  const over = uniq('CAPO');
  await expectTooLong(() => cappedClient.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: text(over, 9000) }] }),
    { limit: CAP, tokens: estimate1(9000) });
  await expectTooLong(() => cappedClient.responses.create({ model: 'fake-model', input: text(over, 9000) }), { param: 'input', limit: CAP });
  /* fake-small's 4000 is capped to 2000. */
  await expectTooLong(() => cappedClient.chat.completions.create({ model: SMALL, messages: [{ role: 'user', content: text(over, 9000) }] }),
    { limit: CAP, tokens: estimate1(9000) });
  assert.equal(fake.requestsFor(over).length, 0, 'the model was not called');

  /* The same 9000 bytes are fine under the default cap. */
  const ok = uniq('CAPD');
  const r2 = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: text(ok, 9000) }] });
  assert.equal(r2.choices[0].finish_reason, 'stop');
});

test('GET /v1/models shows the window the limit comes from', { timeout: 30_000 }, async () => {
  const r = await http(gw, 'GET', `/v1/models/${SMALL}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.context_length, WINDOW);
});
