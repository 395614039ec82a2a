// 66-anthropic: the Anthropic Messages API (POST /v1/messages, POST /v1/messages/count_tokens)
// through the real gateway and runtime, driven by the official client (@anthropic-ai/sdk). The
// model behind it is our fake OpenAI-compatible model: what it scripts as OpenAI tool_calls
// comes back as Anthropic tool_use blocks, its reasoning as thinking blocks, its usage as the
// message's usage.
//
// Gateways: `ctx.gw` (defaults); `alt` (--anthropic-default-model fake-model, --max-body-bytes
// 2048); a third with --api-key, started by the auth test. Scripting follows 62-tools: rules on
// a unique token (match_prompt for the prompt, match_tool for the tool results), and "what the
// model received" is ctx.fake.requestsFor(tok).
//
// Client notes (@anthropic-ai/sdk 1.10.0): `apiKey` goes out as "Authorization: Bearer …"
// (x-api-key only when set in defaultHeaders); beta.messages does not add "?beta=true" to the
// path, so Claude Code's path is requested with {query: {beta: 'true'}}.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startFake } from '../fake/fakemodel.mjs';
import {
  startGateway, test, uniq, textOf, stripDatetime, metrics, http, assertNoLeaks, expectSessions, callsOf,
} from './lib.mjs';

const MODEL = 'fake-model';
const CLAUDE = 'claude-sonnet-4-5-20250929';

/** The official Anthropic client for a gateway (no retries: every error must surface). */
function anthropic(gw, opts = {}) {
  return new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0, timeout: 120_000, ...opts });
}

/* One set-up hook (node 20 does not wait for one root before() to finish before the next). */
const ctx = { fake: null, gw: null };
let client; /* → ctx.gw */
let alt; /* --anthropic-default-model fake-model --max-body-bytes 2048 */
let altClient;

before(async () => {
  ctx.fake = await startFake();
  [ctx.gw, alt] = await Promise.all([
    startGateway({ fake: ctx.fake }),
    startGateway({ fake: ctx.fake, args: ['--anthropic-default-model', MODEL, '--max-body-bytes', '2048'] }),
  ]);
  client = anthropic(ctx.gw);
  altClient = anthropic(alt);
}, { timeout: 120_000 });

after(async () => {
  try {
    const codes = await Promise.all([ctx.gw?.stop(), alt?.stop()]);
    assert.deepEqual(codes, [0, 0], 'gateways exit 0 on SIGTERM');
  } finally {
    await ctx.fake?.close();
  }
});

const WEATHER = {
  name: 'get_weather',
  description: 'Current weather for a city.',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string', description: 'City name' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city'],
  },
};
const TIME = {
  name: 'get_time',
  description: 'Local time in an IANA time zone.',
  input_schema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] },
};
const TOOLS = [WEATHER, TIME];

/* ---- helpers ---------------------------------------------------------------------------- */

/** Checks an Anthropic error body {type:'error', error:{type, message}} (parsed), and no leaks. */
function assertAnthropicError(body, type, where = 'error body') {
  assert.ok(body && typeof body === 'object', `${where}: not an object: ${JSON.stringify(body)}`);
  assert.equal(body.type, 'error', `${where}: type "error": ${JSON.stringify(body)}`);
  assert.ok(body.error && typeof body.error === 'object', `${where}: error object: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error.message, 'string', `${where}: error.message is a string`);
  assert.ok(body.error.message.length > 0, `${where}: error.message is empty`);
  if (type !== undefined) assert.equal(body.error.type, type, `${where}: error.type (${body.error.message})`);
  assertNoLeaks(JSON.stringify(body), where);
}

/** Runs fn (an Anthropic client call); returns the APIError it must throw, checked for status and error type. */
async function expectAnthropicError(fn, { status, type } = {}) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an Anthropic APIError with status ${status}, but the call succeeded`);
  assert.ok(err instanceof Anthropic.APIError, `expected Anthropic.APIError, got ${err?.constructor?.name}: ${err?.message}`);
  if (status !== undefined) assert.equal(err.status, status, `status (error: ${err.message})`);
  assertAnthropicError(err.error, type, `${status} error`);
  assert.equal(err.error?.error?.type, type ?? err.error?.error?.type);
  return err;
}

/** The role/text view of a model request's messages (datetime prefixes stripped). */
const view = (messages) => messages.map((m) => ({ role: m.role, content: stripDatetime(textOf(m.content)) }));

/** The system message text of a model request ('' when none). */
const systemOf = (body) => textOf(body.messages.find((m) => m.role === 'system')?.content ?? '');

/** [id, name, parsed arguments] of each OpenAI tool call. */

/** The trailing assistant-with-tool_calls message and the tool messages after it, in a model request. */
function lastToolRound(body) {
  const msgs = body.messages;
  const i = msgs.findLastIndex((m) => m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length);
  assert.ok(i >= 0, `the model request has an assistant message with tool_calls: ${JSON.stringify(view(msgs))}`);
  return { assistant: msgs[i], tools: msgs.slice(i + 1).filter((m) => m.role === 'tool'), after: msgs.slice(i + 1) };
}


/** Collects the events of an SDK stream (MessageStream or Stream); onEvent(event) runs per event. */
async function collectEvents(stream, onEvent) {
  const events = [];
  for await (const ev of stream) {
    events.push(structuredClone(ev)); /* MessageStream accumulates into the message_start event's object */
    if (onEvent) onEvent(ev);
  }
  return events;
}

const DELTA_FOR = { text: ['text_delta'], thinking: ['thinking_delta', 'signature_delta'], tool_use: ['input_json_delta'] };

/**
 * Checks the event grammar of a streamed message: message_start, then per block
 * content_block_start / content_block_delta* / content_block_stop with indices 0, 1, …, then
 * message_delta and message_stop (pings anywhere). Returns {start, delta, blocks} with each
 * block assembled: {type:'text', text}, {type:'thinking', thinking}, {type:'tool_use', id, name,
 * input, pieces}.
 */
function checkStream(events) {
  const seq = events.filter((e) => e.type !== 'ping');
  const types = seq.map((e) => e.type);
  const shape = types.join(' ');
  assert.equal(types[0], 'message_start', `first event message_start: ${shape}`);
  assert.equal(types.at(-1), 'message_stop', `last event message_stop: ${shape}`);
  assert.equal(types.at(-2), 'message_delta', `message_delta just before message_stop: ${shape}`);
  assert.equal(types.filter((t) => t === 'message_start').length, 1, `one message_start: ${shape}`);
  assert.equal(types.filter((t) => t === 'message_delta').length, 1, `one message_delta: ${shape}`);
  const blocks = [];
  let open = null;
  for (const e of seq.slice(1, -2)) {
    if (e.type === 'content_block_start') {
      assert.equal(open, null, `a block starts while block ${open?.index} is open: ${shape}`);
      assert.equal(e.index, blocks.length, `block indices count up from 0: ${shape}`);
      open = { index: e.index, start: e.content_block, deltas: [] };
    } else if (e.type === 'content_block_delta') {
      assert.ok(open && e.index === open.index, `delta for the open block (index ${e.index}): ${shape}`);
      const allowed = DELTA_FOR[open.start.type] ?? [];
      assert.ok(allowed.includes(e.delta.type), `${e.delta.type} inside a ${open.start.type} block`);
      open.deltas.push(e.delta);
    } else if (e.type === 'content_block_stop') {
      assert.ok(open && e.index === open.index, `stop for the open block (index ${e.index}): ${shape}`);
      blocks.push(open);
      open = null;
    } else {
      assert.fail(`unexpected event ${e.type} between message_start and message_delta: ${shape}`);
    }
  }
  assert.equal(open, null, `every block is closed: ${shape}`);
  const assembled = blocks.map((b) => {
    const s = b.start;
    if (s.type === 'text') return { type: 'text', text: (s.text ?? '') + b.deltas.map((d) => d.text).join('') };
    if (s.type === 'thinking') {
      return { type: 'thinking', thinking: (s.thinking ?? '') + b.deltas.filter((d) => d.type === 'thinking_delta').map((d) => d.thinking).join('') };
    }
    if (s.type === 'tool_use') {
      assert.deepEqual(s.input, {}, 'tool_use content_block_start carries input {}');
      const json = b.deltas.map((d) => d.partial_json).join('');
      return { type: 'tool_use', id: s.id, name: s.name, input: json ? JSON.parse(json) : {}, pieces: b.deltas.length };
    }
    return { type: s.type };
  });
  const start = seq[0].message;
  assert.match(start.id, /^msg_/, 'message_start: id msg_…');
  assert.equal(start.type, 'message');
  assert.equal(start.role, 'assistant');
  assert.deepEqual(start.content, [], 'message_start: content []');
  assert.equal(start.stop_reason ?? null, null, 'message_start: stop_reason null');
  assert.equal(typeof start.usage?.input_tokens, 'number', 'message_start: usage.input_tokens');
  assert.ok(start.usage.input_tokens > 0, `message_start: usage.input_tokens > 0 (got ${start.usage.input_tokens})`);
  const delta = seq.at(-2);
  assert.equal(typeof delta.usage?.output_tokens, 'number', 'message_delta: usage.output_tokens');
  return { start, delta, blocks: assembled };
}

/** Checks the shape of a (non-streamed or final) message. */
function checkMessage(m, { model = MODEL, stop_reason } = {}) {
  assert.match(m.id, /^msg_/, `id msg_…: ${m.id}`);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, model);
  assert.ok(Array.isArray(m.content), 'content is an array');
  if (stop_reason) assert.equal(m.stop_reason, stop_reason);
  assert.equal(m.stop_sequence, null, 'stop_sequence null');
  assert.equal(typeof m.usage?.input_tokens, 'number', 'usage.input_tokens');
  assert.equal(typeof m.usage?.output_tokens, 'number', 'usage.output_tokens');
}

/** Content blocks reduced to what the contract fixes (drops citations/signature/empty extras). */
const blocksView = (content) => content.map((b) => {
  if (b.type === 'text') return { type: 'text', text: b.text };
  if (b.type === 'thinking') return { type: 'thinking', thinking: b.thinking };
  if (b.type === 'tool_use') return { type: 'tool_use', id: b.id, name: b.name, input: b.input };
  return { type: b.type };
});

/* ---- plain and streamed messages ------------------------------------------------------ */

test('plain message: Anthropic shape, text, end_turn, usage = the model call\'s tokens', { timeout: 60_000 }, async () => {
  const tok = uniq('AMSG');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'The scripted answer.', usage: { prompt_tokens: 37, completion_tokens: 5 } } }] });
  const r = await client.messages.create({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `Hello ${tok}` }] });
  checkMessage(r, { stop_reason: 'end_turn' });
  assert.deepEqual(blocksView(r.content), [{ type: 'text', text: 'The scripted answer.' }]);
  assert.equal(r.usage.input_tokens, 37, 'usage.input_tokens = the model call\'s prompt_tokens');
  assert.equal(r.usage.output_tokens, 5, 'usage.output_tokens = the model call\'s completion_tokens');

  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 1, 'one model call');
  assert.equal(reqs[0].body.model, MODEL);
  assert.deepEqual(view(reqs[0].body.messages.filter((m) => m.role !== 'system')), [{ role: 'user', content: `Hello ${tok}` }]);

  /* Content as an array of text blocks, and a multi-turn history, reach the model as text. */
  const tok2 = uniq('AHIST');
  ctx.fake.script({ rules: [{ match: tok2, reply: { content: 'third' } }] });
  const r2 = await client.messages.create({
    model: MODEL,
    max_tokens: 256,
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'First: 2+2?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'It is 4.' }] },
      { role: 'user', content: 'Second, with\nnewlines and "quotes".' },
      { role: 'assistant', content: 'Noted.' },
      { role: 'user', content: [{ type: 'text', text: `Third ${tok2}` }] },
    ],
  });
  assert.deepEqual(blocksView(r2.content), [{ type: 'text', text: 'third' }]);
  assert.notEqual(r2.id, r.id, 'ids are unique per message');
  assert.deepEqual(view(ctx.fake.requestsFor(tok2)[0].body.messages.filter((m) => m.role !== 'system')), [
    { role: 'user', content: 'First: 2+2?' },
    { role: 'assistant', content: 'It is 4.' },
    { role: 'user', content: 'Second, with\nnewlines and "quotes".' },
    { role: 'assistant', content: 'Noted.' },
    { role: 'user', content: `Third ${tok2}` },
  ]);
});

test('messages.stream(): event order, text deltas while the model streams, finalMessage like the plain shape', { timeout: 60_000 }, async () => {
  const tok = uniq('ASTR');
  const parts = ['Alpha ', 'beta ', 'gamma ', 'delta ', 'epsilon'];
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: parts, chunk_delay_ms: 150, usage: { prompt_tokens: 23, completion_tokens: 6 } } }] });
  const stream = client.messages.stream({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: `stream please ${tok}` }] });
  /* For each text delta, note whether the model was still sending at that moment: a gateway
   * that buffers the answer would deliver every delta after the model finished. */
  let live = 0;
  const events = await collectEvents(stream, (e) => {
    if (e.type === 'content_block_delta' && e.delta.type === 'text_delta' && ctx.fake.requestsFor(tok)[0]?.outcome === 'streaming') live++;
  });
  const { start, delta, blocks } = checkStream(events);
  assert.deepEqual(blocks, [{ type: 'text', text: parts.join('') }]);
  const textDeltas = events.filter((e) => e.type === 'content_block_delta');
  assert.ok(textDeltas.length >= 2, `text in at least two deltas (got ${textDeltas.length})`);
  assert.ok(live >= 2, `at least two text deltas arrive before the model finished (got ${live})`);
  assert.equal(start.model, MODEL);
  assert.equal(delta.delta.stop_reason, 'end_turn');
  assert.equal(delta.delta.stop_sequence ?? null, null);
  assert.equal(delta.usage.output_tokens, 6, 'message_delta usage.output_tokens = completion_tokens');

  const final = await stream.finalMessage();
  checkMessage(final, { stop_reason: 'end_turn' });
  assert.equal(final.id, start.id, 'finalMessage keeps the message_start id');
  assert.deepEqual(blocksView(final.content), [{ type: 'text', text: parts.join('') }]);
  assert.equal(final.usage.output_tokens, 6);
  assert.equal(final.usage.input_tokens, 23, 'finalMessage usage.input_tokens = prompt_tokens (message_delta must carry it)');
  assert.equal(ctx.fake.requestsFor(tok).length, 1);
});

test('create({stream: true}): the same event sequence, raw', { timeout: 60_000 }, async () => {
  const tok = uniq('ASTR2');
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: ['one ', 'two ', 'three'], chunk_delay_ms: 100, usage: { prompt_tokens: 19, completion_tokens: 3 } } }] });
  const s = await client.messages.create({ model: MODEL, max_tokens: 256, stream: true, messages: [{ role: 'user', content: `raw stream ${tok}` }] });
  let live = 0;
  const events = await collectEvents(s, (e) => {
    if (e.type === 'content_block_delta' && ctx.fake.requestsFor(tok)[0]?.outcome === 'streaming') live++;
  });
  const { delta, blocks } = checkStream(events);
  assert.deepEqual(blocks, [{ type: 'text', text: 'one two three' }]);
  assert.ok(live >= 2, `at least two text deltas before the model finished (got ${live})`);
  assert.equal(delta.delta.stop_reason, 'end_turn');
  assert.equal(delta.usage.output_tokens, 3);
});

/* The runtime answers a model's finish_reason "length" by asking it to go on ("Please continue
 * from where you left off", observed on the SDK's runtime: two continuations, then it gives up
 * and reports "length"). So the model is scripted to stop on length three times in a row. */
const CONTINUE = 'Please continue from where you left off';

test('finish_reason "length" (after the runtime\'s continuations) → stop_reason max_tokens, plain and streamed', { timeout: 60_000 }, async (t) => {
  const tok = uniq('AMAX');
  ctx.fake.script({ rules: [
    { match: tok, reply: { content: 'cut ', finish_reason: 'length' } },
    { match: CONTINUE, times: 2, reply: { content: 'more ', finish_reason: 'length' } },
  ] });
  const r = await client.messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: `${tok} plain` }] });
  checkMessage(r, { stop_reason: 'max_tokens' });
  assert.deepEqual(blocksView(r.content), [{ type: 'text', text: 'cut more more ' }]);
  t.diagnostic(`max_tokens as the model saw it: ${JSON.stringify(ctx.fake.requestsFor(`${tok} plain`)[0].body.max_tokens)}`);

  ctx.fake.script({ rules: [{ match: CONTINUE, times: 2, reply: { content: 'more ', finish_reason: 'length' } }] });
  const stream = client.messages.stream({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: `${tok} streamed` }] });
  const { delta, blocks } = checkStream(await collectEvents(stream));
  assert.equal(delta.delta.stop_reason, 'max_tokens');
  assert.deepEqual(blocks, [{ type: 'text', text: 'cut more more ' }]);
  assert.equal((await stream.finalMessage()).stop_reason, 'max_tokens');
});

/* ---- tools ------------------------------------------------------------------------------ */

test('tool_use round trip: the model sees function tools; tool_use → tool_result in the same runtime session', { timeout: 90_000 }, async () => {
  const tok = uniq('ATOOL');
  const callId = `call_${tok}`;
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: callId, name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } }] } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Paris: sunny, 21C (${tok}).` } },
  ] });
  const messages = [{ role: 'user', content: `What is the weather in Paris? ${tok}` }];
  const r1 = await client.messages.create({ model: MODEL, max_tokens: 512, system: 'You are a weather bot.', tools: TOOLS, messages });
  checkMessage(r1, { stop_reason: 'tool_use' });
  assert.deepEqual(blocksView(r1.content), [{ type: 'tool_use', id: callId, name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } }]);

  /* The model was offered exactly the request's tools, as OpenAI function tools. */
  const [first] = ctx.fake.requestsFor(tok);
  assert.deepEqual((first.body.tools ?? []).map((t) => [t.type, t.function?.name]), [['function', 'get_weather'], ['function', 'get_time']]);
  for (const t of first.body.tools) {
    const mine = TOOLS.find((x) => x.name === t.function.name);
    assert.deepEqual(t.function.parameters, mine.input_schema, `${mine.name}: input_schema → parameters unchanged`);
    assert.equal(t.function.description, mine.description, `${mine.name}: description unchanged`);
  }
  assert.equal(systemOf(first.body), 'You are a weather bot.');

  const m1 = await metrics(ctx.gw);
  const r2 = await client.messages.create({
    model: MODEL,
    max_tokens: 512,
    system: 'You are a weather bot.',
    tools: TOOLS,
    messages: [
      ...messages,
      { role: 'assistant', content: r1.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: callId, content: `RESULT-${tok}: sunny, 21C` }] },
    ],
  });
  checkMessage(r2, { stop_reason: 'end_turn' });
  assert.deepEqual(blocksView(r2.content), [{ type: 'text', text: `Paris: sunny, 21C (${tok}).` }]);
  await expectSessions(ctx.gw, m1, { created: 0, reused: 1 }, 'the tool_result continues the parked session');

  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2, 'two model calls: the prompt, then the result');
  const round = lastToolRound(reqs[1].body);
  assert.deepEqual(callsOf(round.assistant.tool_calls), [[callId, 'get_weather', { city: 'Paris', unit: 'celsius' }]]);
  assert.equal(round.tools.length, 1);
  assert.equal(round.tools[0].tool_call_id, callId);
  assert.equal(textOf(round.tools[0].content), `RESULT-${tok}: sunny, 21C`, 'the tool_result text reaches the model');
});

test('two parallel tool uses: both blocks; results (answered in reverse, string and block content) both reach the model', { timeout: 90_000 }, async (t) => {
  const tok = uniq('APAR');
  const [idW, idT] = [`call_w_${tok}`, `call_t_${tok}`];
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [
      { id: idW, name: 'get_weather', arguments: { city: 'Rome' } },
      { id: idT, name: 'get_time', arguments: { tz: 'Europe/Rome' } },
    ] } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Rome: warm, 14:05 (${tok})` } },
  ] });
  const messages = [{ role: 'user', content: `Weather and time in Rome? ${tok}` }];
  const r1 = await client.messages.create({ model: MODEL, max_tokens: 512, tools: TOOLS, messages });
  assert.equal(r1.stop_reason, 'tool_use');
  assert.deepEqual(blocksView(r1.content), [
    { type: 'tool_use', id: idW, name: 'get_weather', input: { city: 'Rome' } },
    { type: 'tool_use', id: idT, name: 'get_time', input: { tz: 'Europe/Rome' } },
  ]);

  const m1 = await metrics(ctx.gw);
  const r2 = await client.messages.create({
    model: MODEL,
    max_tokens: 512,
    tools: TOOLS,
    messages: [
      ...messages,
      { role: 'assistant', content: r1.content },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: idT, content: [{ type: 'text', text: `RESULT-${tok} time: 14:05` }] },
        { type: 'tool_result', tool_use_id: idW, content: `RESULT-${tok} weather: warm` },
      ] },
    ],
  });
  assert.deepEqual(blocksView(r2.content), [{ type: 'text', text: `Rome: warm, 14:05 (${tok})` }]);
  await expectSessions(ctx.gw, m1, { created: 0, reused: 1 }, 'parallel results continue the parked session');

  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2, 'one follow-up model call for both results');
  const round = lastToolRound(reqs[1].body);
  assert.deepEqual(callsOf(round.assistant.tool_calls), [[idW, 'get_weather', { city: 'Rome' }], [idT, 'get_time', { tz: 'Europe/Rome' }]]);
  const got = round.tools.map((m) => [m.tool_call_id, textOf(m.content)]);
  t.diagnostic(`tool results reached the model in the order ${got.map((g) => g[0]).join(', ')}`);
  assert.deepEqual([...got].sort(), [[idT, `RESULT-${tok} time: 14:05`], [idW, `RESULT-${tok} weather: warm`]].sort());
});

test('tool_result with is_error: true reaches the model as the client\'s text, verbatim', { timeout: 90_000 }, async () => {
  const tok = uniq('AERR');
  const callId = `call_e_${tok}`;
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: callId, name: 'get_weather', arguments: { city: 'Atlantis' } }] } },
    { match: tok, on: 'user', reply: { content: `I could not find that city (${tok}).` } },
  ] });
  const messages = [{ role: 'user', content: `Weather in Atlantis? ${tok}` }];
  const r1 = await client.messages.create({ model: MODEL, max_tokens: 512, tools: TOOLS, messages });
  assert.equal(r1.stop_reason, 'tool_use');
  const m1 = await metrics(ctx.gw);
  const r2 = await client.messages.create({
    model: MODEL,
    max_tokens: 512,
    tools: TOOLS,
    messages: [...messages, { role: 'assistant', content: r1.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: callId, content: 'Error: city not found', is_error: true }] }],
  });
  assert.deepEqual(blocksView(r2.content), [{ type: 'text', text: `I could not find that city (${tok}).` }]);
  await expectSessions(ctx.gw, m1, { created: 0, reused: 1 }, 'the error result continues the parked session');
  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2);
  const round = lastToolRound(reqs[1].body);
  assert.equal(round.tools.length, 1);
  assert.equal(round.tools[0].tool_call_id, callId);
  assert.equal(textOf(round.tools[0].content), 'Error: city not found', 'the error text, verbatim');
});

test('streamed tool use: text block then tool_use block from input_json_delta pieces; streamed follow-up', { timeout: 90_000 }, async () => {
  const tok = uniq('ASTC');
  const [id0, id1] = [`call_s0_${tok}`, `call_s1_${tok}`];
  const args0 = { city: 'Reykjavik', unit: 'celsius' };
  const args1 = { tz: 'Atlantic/Reykjavik' };
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: {
      chunks: ['Let me ', 'check.'],
      tool_args_pieces: 4,
      chunk_delay_ms: 10,
      tool_calls: [{ id: id0, name: 'get_weather', arguments: args0 }, { id: id1, name: 'get_time', arguments: args1 }],
    } },
    { match_tool: `RESULT-${tok}`, reply: { chunks: ['Cold ', 'and ', `early (${tok}).`] } },
  ] });
  const messages = [{ role: 'user', content: `Reykjavik weather and time? ${tok}` }];
  const stream = client.messages.stream({ model: MODEL, max_tokens: 512, tools: TOOLS, messages });
  const events = await collectEvents(stream);
  const { delta, blocks } = checkStream(events);
  assert.deepEqual(blocks.map(({ pieces, ...b }) => b), [
    { type: 'text', text: 'Let me check.' },
    { type: 'tool_use', id: id0, name: 'get_weather', input: args0 },
    { type: 'tool_use', id: id1, name: 'get_time', input: args1 },
  ]);
  assert.ok(blocks.slice(1).reduce((n, b) => n + b.pieces, 0) > 2, `input arrives in pieces: ${blocks.map((b) => b.pieces)}`);
  assert.equal(delta.delta.stop_reason, 'tool_use');
  const final = await stream.finalMessage();
  checkMessage(final, { stop_reason: 'tool_use' });
  assert.deepEqual(blocksView(final.content), blocks.map(({ pieces, ...b }) => b), 'finalMessage assembles the same blocks');

  const m1 = await metrics(ctx.gw);
  const follow = client.messages.stream({
    model: MODEL,
    max_tokens: 512,
    tools: TOOLS,
    messages: [...messages, { role: 'assistant', content: final.content },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: id0, content: `RESULT-${tok} -3C` },
        { type: 'tool_result', tool_use_id: id1, content: `RESULT-${tok} 06:10` },
      ] }],
  });
  const f = checkStream(await collectEvents(follow));
  assert.deepEqual(f.blocks, [{ type: 'text', text: `Cold and early (${tok}).` }]);
  assert.equal(f.delta.delta.stop_reason, 'end_turn');
  await expectSessions(ctx.gw, m1, { created: 0, reused: 1 }, 'streamed results continue the parked session');
  const round = lastToolRound(ctx.fake.requestsFor(tok)[1].body);
  assert.equal(textOf(round.assistant.content), 'Let me check.', 'the text that came with the calls is in the history');
  assert.deepEqual(callsOf(round.assistant.tool_calls), [[id0, 'get_weather', args0], [id1, 'get_time', args1]]);
});

/* ---- thinking --------------------------------------------------------------------------- */

test('thinking enabled (budget 2048): thinking block first = the reasoning; reasoning_effort low; without thinking no block', { timeout: 90_000 }, async (t) => {
  const tok = uniq('ATHK');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'Four.', reasoning: ['Two plus two ', 'is four.'], chunk_delay_ms: 20 } }] });
  const thinking = { type: 'enabled', budget_tokens: 2048 };
  const r = await client.messages.create({ model: MODEL, max_tokens: 4096, thinking, messages: [{ role: 'user', content: `2+2? ${tok} plain` }] });
  checkMessage(r, { stop_reason: 'end_turn' });
  assert.deepEqual(blocksView(r.content), [{ type: 'thinking', thinking: 'Two plus two is four.' }, { type: 'text', text: 'Four.' }]);
  assert.equal(typeof r.content[0].signature, 'string', 'a thinking block carries a signature (string)');
  const [req] = ctx.fake.requestsFor(`${tok} plain`);
  assert.equal(req.body.reasoning_effort, 'low', 'budget 2048 → reasoning_effort low');

  /* Streamed: thinking deltas first, in their own block. */
  const stream = client.messages.stream({ model: MODEL, max_tokens: 4096, thinking, messages: [{ role: 'user', content: `2+2? ${tok} streamed` }] });
  const { blocks } = checkStream(await collectEvents(stream));
  assert.deepEqual(blocks, [{ type: 'thinking', thinking: 'Two plus two is four.' }, { type: 'text', text: 'Four.' }]);
  const final = await stream.finalMessage();
  assert.deepEqual(blocksView(final.content), blocks);
  assert.equal(ctx.fake.requestsFor(`${tok} streamed`)[0].body.reasoning_effort, 'low');

  /* The assistant content as returned (thinking block included) is accepted back in history. */
  const tok2 = uniq('ATHK2');
  ctx.fake.script({ rules: [{ match: tok2, reply: { content: 'Eight.' } }] });
  const r2 = await client.messages.create({
    model: MODEL, max_tokens: 4096, thinking,
    messages: [{ role: 'user', content: `2+2? ${tok} plain` }, { role: 'assistant', content: r.content }, { role: 'user', content: `and 4+4? ${tok2}` }],
  });
  assert.equal(r2.content.at(-1).text, 'Eight.');

  /* Without `thinking`: no thinking block, though the model reasoned. */
  const r3 = await client.messages.create({ model: MODEL, max_tokens: 4096, messages: [{ role: 'user', content: `2+2? ${tok} none` }] });
  assert.deepEqual(blocksView(r3.content), [{ type: 'text', text: 'Four.' }]);
  const s3 = checkStream(await collectEvents(client.messages.stream({ model: MODEL, max_tokens: 4096, messages: [{ role: 'user', content: `2+2? ${tok} none-s` }] })));
  assert.deepEqual(s3.blocks, [{ type: 'text', text: 'Four.' }]);
  t.diagnostic(`without thinking, reasoning_effort sent to the model: ${JSON.stringify(ctx.fake.requestsFor(`${tok} none`)[0].body.reasoning_effort)}`);
});

/* ---- system ----------------------------------------------------------------------------- */

test('system: a string, text blocks, and role "system" entries reach the model as its system message', { timeout: 60_000 }, async () => {
  const tok = uniq('ASYS');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'ok' } }] });
  const sysStr = 'You are TEST-SYS.\nAnswer in one line.\n\n  Keep   spacing.';
  await client.messages.create({ model: MODEL, max_tokens: 64, system: sysStr, messages: [{ role: 'user', content: `${tok}-a` }] });
  assert.equal(systemOf(ctx.fake.requestsFor(`${tok}-a`)[0].body), sysStr, 'string system, verbatim');

  await client.messages.create({
    model: MODEL,
    max_tokens: 64,
    system: [{ type: 'text', text: 'Block one.\nline 2' }, { type: 'text', text: 'Block two.', cache_control: { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: `${tok}-b` }],
  });
  /* The gateway joins system pieces with "\n\n" (api/messages.c), as chat joins system messages. */
  assert.equal(systemOf(ctx.fake.requestsFor(`${tok}-b`)[0].body), 'Block one.\nline 2\n\nBlock two.', 'text blocks, verbatim, joined');

  await client.messages.create({
    model: MODEL,
    max_tokens: 64,
    system: 'Top rule.',
    messages: [
      { role: 'system', content: 'Extra rule from the client.' },
      { role: 'user', content: 'earlier' },
      { role: 'assistant', content: 'noted' },
      { role: 'user', content: `${tok}-c` },
    ],
  });
  const body = ctx.fake.requestsFor(`${tok}-c`)[0].body;
  assert.equal(systemOf(body), 'Top rule.\n\nExtra rule from the client.', 'role system entries appended to the system prompt');
  assert.equal(body.messages.filter((m) => m.role === 'system').length, 1, 'one system message');
  assert.deepEqual(view(body.messages.filter((m) => m.role !== 'system')), [
    { role: 'user', content: 'earlier' }, { role: 'assistant', content: 'noted' }, { role: 'user', content: `${tok}-c` },
  ]);
});

/* ---- count_tokens ----------------------------------------------------------------------- */

test('count_tokens: > 0, larger for a longer prompt, equal to message_start input_tokens; no model call', { timeout: 60_000 }, async () => {
  const tok = uniq('ACNT');
  const body = {
    model: MODEL,
    system: 'You are a weather bot.',
    tools: TOOLS,
    messages: [{ role: 'user', content: `What is the weather in Oslo? ${tok}` }],
  };
  const n = await client.messages.countTokens(body);
  assert.equal(typeof n.input_tokens, 'number', `input_tokens: ${JSON.stringify(n)}`);
  assert.ok(n.input_tokens > 0, `input_tokens > 0: ${n.input_tokens}`);
  const longer = await client.messages.countTokens({
    ...body, messages: [{ role: 'user', content: `What is the weather in Oslo? ${tok} ${'and more words '.repeat(200)}` }],
  });
  assert.ok(longer.input_tokens > n.input_tokens, `a longer prompt counts more: ${longer.input_tokens} vs ${n.input_tokens}`);
  assert.equal(ctx.fake.requestsFor(tok).length, 0, 'count_tokens makes no model call');

  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'Cold.' } }] });
  const events = await collectEvents(client.messages.stream({ ...body, max_tokens: 256 }));
  const { start } = checkStream(events);
  assert.equal(start.usage.input_tokens, n.input_tokens, 'message_start usage.input_tokens = count_tokens for the same body');
});

/* ---- models ----------------------------------------------------------------------------- */

test('claude-* ids: mapped to --anthropic-default-model when set, else 404 not_found_error', { timeout: 60_000 }, async (t) => {
  const tok = uniq('ACLA');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'mapped' } }] });
  const r = await altClient.messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: `${tok} alt` }] });
  assert.deepEqual(blocksView(r.content), [{ type: 'text', text: 'mapped' }]);
  t.diagnostic(`response model for ${CLAUDE} via the default model: ${r.model}`);
  assert.equal(ctx.fake.requestsFor(`${tok} alt`)[0].body.model, MODEL, 'the model call went to the default model');
  const s = checkStream(await collectEvents(altClient.messages.stream({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: `${tok} alt-s` }] })));
  assert.deepEqual(s.blocks, [{ type: 'text', text: 'mapped' }]);

  /* A non-claude unknown id is not mapped. */
  await expectAnthropicError(() => altClient.messages.create({ model: 'no-such-model', max_tokens: 64, messages: [{ role: 'user', content: `${tok} alt-x` }] }),
    { status: 404, type: 'not_found_error' });
  /* Without the flag: 404. */
  await expectAnthropicError(() => client.messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: `${tok} main` }] }),
    { status: 404, type: 'not_found_error' });
  assert.equal(ctx.fake.requestsFor(`${tok} main`).length + ctx.fake.requestsFor(`${tok} alt-x`).length, 0, 'refused requests make no model call');
});

/* ---- errors ----------------------------------------------------------------------------- */

test('request errors in Anthropic\'s shape: missing max_tokens, bad role, unknown model, never reaching the model', { timeout: 60_000 }, async () => {
  const tok = uniq('AVAL');
  const user = (s) => [{ role: 'user', content: `${tok} ${s}` }];
  const e1 = await expectAnthropicError(() => client.messages.create({ model: MODEL, messages: user('nomax') }), { status: 400, type: 'invalid_request_error' });
  assert.match(e1.error.error.message, /max_tokens/, 'the message names max_tokens');
  assert.ok(e1 instanceof Anthropic.BadRequestError);
  await expectAnthropicError(() => client.messages.create({ model: MODEL, stream: true, messages: user('nomax-s') }).then(async (s) => {
    for await (const _ of s) { /* drain */ }
  }), { status: 400, type: 'invalid_request_error' });
  await expectAnthropicError(() => client.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'bot', content: `${tok} role` }] }),
    { status: 400, type: 'invalid_request_error' });
  const e4 = await expectAnthropicError(() => client.messages.create({ model: 'no-such-model', max_tokens: 64, messages: user('model') }),
    { status: 404, type: 'not_found_error' });
  assert.ok(e4 instanceof Anthropic.NotFoundError);
  assert.equal(ctx.fake.requestsFor(tok).length, 0, 'refused requests make no model call');

  /* Raw: the body is exactly Anthropic's error object, JSON. */
  const raw = await http(ctx.gw, 'POST', '/v1/messages', { body: { model: MODEL, messages: user('raw') } });
  assert.equal(raw.status, 400);
  assert.match(raw.headers.get('content-type') ?? '', /application\/json/);
  assertAnthropicError(raw.json, 'invalid_request_error', 'raw 400 body');
  const bad = await http(ctx.gw, 'POST', '/v1/messages', { raw: '{"model": "fake-model", "max_tokens": 5, "messages": [' });
  assert.equal(bad.status, 400, 'malformed JSON → 400');
  assertAnthropicError(bad.json, 'invalid_request_error', 'malformed JSON body');
});

test('body over --max-body-bytes → 413 request_too_large', { timeout: 60_000 }, async () => {
  const tok = uniq('ABIG');
  const e = await expectAnthropicError(() => altClient.messages.create({
    model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} ${'x'.repeat(4000)}` }],
  }), { status: 413, type: 'request_too_large' });
  assert.ok(e instanceof Anthropic.APIError);
  const raw = await http(alt, 'POST', '/v1/messages', { body: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} ${'y'.repeat(4000)}` }] } });
  assert.equal(raw.status, 413);
  assertAnthropicError(raw.json, 'request_too_large', 'raw 413 body');
  assert.equal(ctx.fake.requestsFor(tok).length, 0);
  /* Under the limit, that gateway answers. */
  ctx.fake.script({ rules: [{ match: `${tok}-small`, reply: { content: 'small ok' } }] });
  const ok = await altClient.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok}-small` }] });
  assert.deepEqual(blocksView(ok.content), [{ type: 'text', text: 'small ok' }]);
});

test('provider 429 → 429 rate_limit_error', { timeout: 90_000 }, async () => {
  const tok = uniq('A429');
  ctx.fake.script({ rules: [{ match: tok, reply: { status: 429, headers: { 'retry-after': '1' }, error_body: {
    error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
  } } }] });
  /* The runtime retries 5 times, honouring Retry-After: about 5-6 s. */
  const e = await expectAnthropicError(() => client.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: tok }] }),
    { status: 429, type: 'rate_limit_error' });
  assert.ok(e instanceof Anthropic.RateLimitError);
  assert.ok(ctx.fake.requestsFor(tok).length >= 1);
});

test('--api-key: x-api-key (and Bearer) accepted; none or a wrong key → 401 authentication_error', { timeout: 90_000 }, async () => {
  const gw = await startGateway({ fake: ctx.fake, args: ['--api-key', 'k-anth'] });
  try {
    const tok = uniq('AKEY');
    ctx.fake.script({ rules: [{ match: tok, reply: { content: 'keyed' } }] });
    const viaHeader = anthropic(gw, { apiKey: null, defaultHeaders: { 'x-api-key': 'k-anth' } });
    const r = await viaHeader.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} x-api-key` }] });
    assert.deepEqual(blocksView(r.content), [{ type: 'text', text: 'keyed' }]);
    const n = await viaHeader.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: `${tok} count` }] });
    assert.ok(n.input_tokens > 0);
    const viaBearer = anthropic(gw, { apiKey: 'k-anth' }); /* this SDK sends apiKey as Bearer */
    const rb = await viaBearer.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} bearer` }] });
    assert.deepEqual(blocksView(rb.content), [{ type: 'text', text: 'keyed' }]);

    const wrong = anthropic(gw, { apiKey: null, defaultHeaders: { 'x-api-key': 'nope' } });
    const e = await expectAnthropicError(() => wrong.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} wrong` }] }),
      { status: 401, type: 'authentication_error' });
    assert.ok(e instanceof Anthropic.AuthenticationError);
    const none = await http(gw, 'POST', '/v1/messages', { body: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} none` }] } });
    assert.equal(none.status, 401);
    assertAnthropicError(none.json, 'authentication_error', 'unkeyed 401 body');
    const noneCount = await http(gw, 'POST', '/v1/messages/count_tokens', { body: { model: MODEL, messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(noneCount.status, 401);
    assertAnthropicError(noneCount.json, 'authentication_error', 'unkeyed count_tokens 401 body');
    assert.equal(ctx.fake.requestsFor(`${tok} wrong`).length + ctx.fake.requestsFor(`${tok} none`).length, 0);

    /* Claude Code's probes, with its key. */
    for (const method of ['HEAD', 'GET']) {
      const p = await fetch(`${gw.url}/`, { method, headers: { 'x-api-key': 'k-anth' } });
      assert.equal(p.status, 200, `${method} / with the key`);
      const q = await fetch(`${gw.url}/`, { method });
      assert.equal(q.status, 200, `${method} / needs no key: it is a liveness probe`);
      await p.arrayBuffer();
    }
  } finally {
    assert.equal(await gw.stop(), 0, 'the keyed gateway exits 0 on SIGTERM');
  }
});

/* ---- Claude Code's paths ---------------------------------------------------------------- */

test('HEAD / and GET / answer 200; /v1/messages?beta=true works, plain and streamed', { timeout: 60_000 }, async () => {
  for (const method of ['HEAD', 'GET']) {
    const p = await fetch(`${ctx.gw.url}/`, { method });
    assert.equal(p.status, 200, `${method} /`);
    await p.arrayBuffer();
  }
  const tok = uniq('ABETA');
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: ['beta ', 'path'], chunk_delay_ms: 20 } }] });
  const r = await client.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} plain` }] }, { query: { beta: 'true' } });
  checkMessage(r, { stop_reason: 'end_turn' });
  assert.deepEqual(blocksView(r.content), [{ type: 'text', text: 'beta path' }]);
  const s = client.messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} streamed` }] }, { query: { beta: 'true' } });
  const { blocks } = checkStream(await collectEvents(s));
  assert.deepEqual(blocks, [{ type: 'text', text: 'beta path' }]);
  const raw = await http(ctx.gw, 'POST', '/v1/messages?beta=true', { body: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${tok} raw` }] } });
  assert.equal(raw.status, 200, raw.text);
  assert.equal(raw.json.content[0].text, 'beta path');
});

test('/v1/messages/count_tokens?beta=true works (Claude Code counts on that path too)', { timeout: 30_000 }, async () => {
  const n = await client.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'count me' }] }, { query: { beta: 'true' } });
  assert.ok(n.input_tokens > 0, JSON.stringify(n));
});
