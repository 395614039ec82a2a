// 70-responses: the OpenAI Responses API (POST /v1/responses) through the gateway, driven by
// the official `openai` client: plain and streamed answers, instructions, function calls
// continued by previous_response_id and by replaying the whole input, reasoning summaries,
// json_schema output, incomplete answers, stored responses (retrieve, delete), background
// responses (poll, cancel), and errors in OpenAI's shape.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import {
  useGateway, startGateway, openaiClient, test, uniq, metrics, expectSessions, expectAPIError,
  stripDatetime, textOf, waitFor, http, assertOpenAIError,
} from './lib.mjs';

const ctx = useGateway();
const MODEL = 'fake-model';

const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

function onlyRequest(tok) {
  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 1, `the model got exactly one request for ${tok} (got ${reqs.length})`);
  return reqs[0];
}

/** Collects a Responses event stream; checks sequence numbers run 0, 1, 2, … */
async function events(stream) {
  const list = [];
  for await (const ev of stream) list.push(ev);
  list.forEach((ev, i) => assert.equal(ev.sequence_number, i, `sequence_number of event ${i} (${ev.type})`));
  return list;
}

const types = (evs) => evs.map((e) => e.type);

test('plain answer: id, object, status, output message, output_text, usage, model', { timeout: 60_000 }, async () => {
  const tok = uniq('RPLAIN');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: `Hello (${tok}).`, usage: { prompt_tokens: 21, completion_tokens: 5 } } }] });
  const r = await ctx.client.responses.create({ model: MODEL, input: `Say hello ${tok}` });
  assert.match(r.id, /^resp_[A-Za-z0-9]{20,}$/);
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.equal(r.model, MODEL);
  assert.ok(Math.abs(r.created_at - Date.now() / 1000) < 120, `created_at is now: ${r.created_at}`);
  assert.equal(r.output.length, 1);
  const [msg] = r.output;
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.status, 'completed');
  assert.match(msg.id, /^msg_/);
  assert.deepEqual(msg.content.map((p) => [p.type, p.text]), [['output_text', `Hello (${tok}).`]]);
  assert.equal(r.output_text, `Hello (${tok}).`);
  assert.equal(r.usage.input_tokens, 21);
  assert.equal(r.usage.output_tokens, 5);
  assert.equal(r.usage.total_tokens, 26);
  assert.equal(r.usage.output_tokens_details.reasoning_tokens, 0);
  assert.equal(r.error, null);
  const body = onlyRequest(tok).body;
  assert.equal(stripDatetime(textOf(body.messages.at(-1).content)), `Say hello ${tok}`);
});

test('instructions and developer messages become the system prompt; input items in order', { timeout: 60_000 }, async () => {
  const tok = uniq('RSYS');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'ok' } }] });
  const r = await ctx.client.responses.create({
    model: MODEL,
    instructions: `Be brief ${tok}.`,
    input: [
      { role: 'developer', content: 'Answer in English.' },
      { role: 'user', content: 'First question' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'First answer' }] },
      { role: 'user', content: [{ type: 'input_text', text: `Second question ${tok}` }] },
    ],
  });
  assert.equal(r.output_text, 'ok');
  assert.equal(r.instructions, `Be brief ${tok}.`);
  const msgs = onlyRequest(tok).body.messages;
  const system = msgs.filter((m) => m.role === 'system').map((m) => textOf(m.content)).join('\n');
  assert.ok(system.includes(`Be brief ${tok}.`) && system.includes('Answer in English.'), `system prompt: ${system.slice(0, 300)}`);
  assert.ok(system.indexOf(`Be brief ${tok}.`) < system.indexOf('Answer in English.'), 'instructions come first');
  assert.deepEqual(msgs.filter((m) => m.role !== 'system').map((m) => [m.role, stripDatetime(textOf(m.content))]),
    [['user', 'First question'], ['assistant', 'First answer'], ['user', `Second question ${tok}`]]);
});

test('streamed answer: the Responses event sequence, flushed deltas, final object', { timeout: 60_000 }, async () => {
  const tok = uniq('RSTREAM');
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: ['One ', 'two ', 'three.'] } }] });
  const evs = await events(await ctx.client.responses.create({ model: MODEL, input: `Count ${tok}`, stream: true }));
  assert.deepEqual(types(evs).filter((t, i, a) => t !== 'response.output_text.delta' || a[i - 1] !== t), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.done', 'response.content_part.done',
    'response.output_item.done', 'response.completed',
  ]);
  const deltas = evs.filter((e) => e.type === 'response.output_text.delta');
  assert.ok(deltas.length >= 3, `one delta per model chunk at least: ${deltas.length}`);
  assert.equal(deltas.map((d) => d.delta).join(''), 'One two three.');
  const created = evs[0].response;
  const done = evs.at(-1).response;
  assert.equal(created.status, 'in_progress');
  assert.equal(done.status, 'completed');
  assert.equal(created.id, done.id);
  const added = evs.find((e) => e.type === 'response.output_item.added');
  assert.equal(added.item.type, 'message');
  for (const d of deltas) assert.equal(d.item_id, added.item.id);
  assert.equal(evs.find((e) => e.type === 'response.output_text.done').text, 'One two three.');
  assert.deepEqual(done.output.map((o) => [o.id, o.type, o.content[0].text]), [[added.item.id, 'message', 'One two three.']]);
  assert.ok(done.usage.output_tokens > 0);

  /* The SDK's stream helper assembles the same answer. */
  const tok2 = uniq('RHELP');
  ctx.fake.script({ rules: [{ match: tok2, reply: { chunks: ['Fine', ', thanks.'] } }] });
  const s = ctx.client.responses.stream({ model: MODEL, input: `How are you ${tok2}` });
  const final = await s.finalResponse();
  assert.equal(final.output_text, 'Fine, thanks.');
});

/** The first request of a tool round: the model calls get_weather. */
async function weatherCall(tok, extra = {}) {
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { content: 'Let me check.', tool_calls: [{ id: `call_w_${tok}`, name: 'get_weather', arguments: { city: 'Oslo' } }] } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Oslo: snow (${tok}).` } },
  ] });
  const r1 = await ctx.client.responses.create({ model: MODEL, input: `Weather in Oslo? ${tok}`, tools: [WEATHER], ...extra });
  assert.equal(r1.status, 'completed');
  assert.deepEqual(r1.output.map((o) => o.type), ['message', 'function_call']);
  assert.equal(r1.output_text, 'Let me check.');
  const call = r1.output[1];
  assert.equal(call.call_id, `call_w_${tok}`);
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Oslo' });
  assert.match(call.id, /^fc_/);
  return r1;
}

test('function call round trip with previous_response_id continues the same runtime session', { timeout: 90_000 }, async () => {
  const tok = uniq('RPREV');
  const m0 = await metrics(ctx.gw);
  const r1 = await weatherCall(tok);
  const r2 = await ctx.client.responses.create({
    model: MODEL,
    previous_response_id: r1.id,
    tools: [WEATHER],
    input: [{ type: 'function_call_output', call_id: r1.output[1].call_id, output: `RESULT-${tok}: snow` }],
  });
  assert.equal(r2.output_text, `Oslo: snow (${tok}).`);
  assert.equal(r2.previous_response_id, r1.id);
  await expectSessions(ctx.gw, m0, { created: 1, reused: 1, seeded: 0 }, 'two requests, one runtime session');
  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2);
  const last = reqs[1].body.messages.at(-1);
  assert.equal(last.role, 'tool');
  assert.equal(last.tool_call_id, `call_w_${tok}`);
  assert.equal(textOf(last.content), `RESULT-${tok}: snow`);
});

test('a chain of previous_response_ids stands for the whole conversation, on one session', { timeout: 90_000 }, async () => {
  const tok = uniq('RCHAIN');
  ctx.fake.script({ rules: [1, 2, 3].map((n) => ({ match_prompt: `turn ${n} ${tok}`, reply: { content: `answer ${n}` } })) });
  const m0 = await metrics(ctx.gw);
  let prev;
  for (const n of [1, 2, 3]) {
    const r = await ctx.client.responses.create({ model: MODEL, input: `turn ${n} ${tok}`, previous_response_id: prev, instructions: 'Be terse.' });
    assert.equal(r.output_text, `answer ${n}`);
    prev = r.id;
  }
  const last = ctx.fake.requestsFor(`turn 3 ${tok}`)[0].body.messages.filter((m) => m.role !== 'system');
  assert.deepEqual(last.map((m) => [m.role, stripDatetime(textOf(m.content))]), [
    ['user', `turn 1 ${tok}`], ['assistant', 'answer 1'], ['user', `turn 2 ${tok}`], ['assistant', 'answer 2'], ['user', `turn 3 ${tok}`],
  ]);
  await expectSessions(ctx.gw, m0, { created: 1, reused: 2, seeded: 0 }, 'three responses, one runtime session');

  /* input_items lists what the last response was given, the chain included. */
  const itemText = (it) => (it.content ?? []).map((p) => p.text).join('');
  const asc = [];
  for await (const it of ctx.client.responses.inputItems.list(prev, { order: 'asc', limit: 2 })) asc.push(it);
  assert.deepEqual(asc.map((it) => [it.type, it.role, itemText(it)]), [
    ['message', 'user', `turn 1 ${tok}`], ['message', 'assistant', 'answer 1'], ['message', 'user', `turn 2 ${tok}`],
    ['message', 'assistant', 'answer 2'], ['message', 'user', `turn 3 ${tok}`],
  ]);
  assert.equal(new Set(asc.map((it) => it.id)).size, 5, 'every item has its own id');
  const desc = await ctx.client.responses.inputItems.list(prev);
  assert.deepEqual(desc.data.map((it) => it.id), asc.map((it) => it.id).reverse());
  assert.equal(desc.has_more, false);
});

test('function call round trip replaying the whole input (store: false), streamed', { timeout: 90_000 }, async () => {
  const tok = uniq('RFULL');
  const m0 = await metrics(ctx.gw);
  const r1 = await weatherCall(tok, { store: false });
  await expectAPIError(() => ctx.client.responses.retrieve(r1.id), { status: 404 });
  const input = [
    { role: 'user', content: `Weather in Oslo? ${tok}` },
    ...r1.output,
    { type: 'function_call_output', call_id: r1.output[1].call_id, output: `RESULT-${tok}: snow` },
  ];
  const evs = await events(await ctx.client.responses.create({ model: MODEL, input, tools: [WEATHER], store: false, stream: true }));
  assert.equal(evs.at(-1).type, 'response.completed');
  assert.equal(evs.at(-1).response.output[0].content[0].text, `Oslo: snow (${tok}).`);
  await expectSessions(ctx.gw, m0, { created: 1, reused: 1, seeded: 0 }, 'the replayed input continues the session');
});

test('a streamed function call: item added, argument deltas, done events', { timeout: 60_000 }, async () => {
  const tok = uniq('RFCS');
  ctx.fake.script({ rules: [{ match_prompt: tok, reply: { tool_calls: [{ id: `call_s_${tok}`, name: 'get_weather', arguments: { city: 'Bergen' }, arguments_chunks: ['{"city"', ':"Ber', 'gen"}'] }] } }] });
  const evs = await events(await ctx.client.responses.create({ model: MODEL, input: `Weather? ${tok}`, tools: [WEATHER], stream: true }));
  const added = evs.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call');
  assert.ok(added, `a function_call item was added: ${types(evs).join(', ')}`);
  assert.equal(added.item.call_id, `call_s_${tok}`);
  assert.equal(added.item.name, 'get_weather');
  const deltas = evs.filter((e) => e.type === 'response.function_call_arguments.delta');
  assert.equal(deltas.map((d) => d.delta).join(''), '{"city":"Bergen"}');
  for (const d of deltas) assert.equal(d.item_id, added.item.id);
  const done = evs.find((e) => e.type === 'response.function_call_arguments.done');
  assert.equal(done.arguments, '{"city":"Bergen"}');
  const final = evs.at(-1);
  assert.equal(final.type, 'response.completed');
  assert.deepEqual(final.response.output.map((o) => [o.type, o.call_id, o.arguments]), [['function_call', `call_s_${tok}`, '{"city":"Bergen"}']]);
});

test('reasoning: a reasoning item with its summary, plain and streamed; reasoning tokens', { timeout: 60_000 }, async () => {
  const tok = uniq('RREASON');
  ctx.fake.script({ rules: [{ match: tok, reply: { reasoning: ['Two plus ', 'two is four.'], content: 'Four.', usage: { prompt_tokens: 10, completion_tokens: 9, reasoning_tokens: 6 } } }] });
  const r = await ctx.client.responses.create({ model: MODEL, input: `2+2? ${tok}`, reasoning: { effort: 'high', summary: 'auto' } });
  assert.deepEqual(r.output.map((o) => o.type), ['reasoning', 'message']);
  assert.deepEqual(r.output[0].summary, [{ type: 'summary_text', text: 'Two plus two is four.' }]);
  assert.equal(r.output_text, 'Four.');
  assert.equal(r.usage.output_tokens_details.reasoning_tokens, 6);
  assert.equal(r.reasoning.effort, 'high');
  assert.equal(onlyRequest(tok).body.reasoning_effort, 'high');

  const tok2 = uniq('RREASONS');
  ctx.fake.script({ rules: [{ match: tok2, reply: { reasoning: ['Think', 'ing.'], chunks: ['Done', '.'] } }] });
  const evs = await events(await ctx.client.responses.create({ model: MODEL, input: `go ${tok2}`, reasoning: { summary: 'auto' }, stream: true }));
  const t = types(evs);
  assert.ok(t.includes('response.reasoning_summary_text.delta'), t.join(', '));
  assert.equal(evs.filter((e) => e.type === 'response.reasoning_summary_text.delta').map((e) => e.delta).join(''), 'Thinking.');
  assert.ok(t.lastIndexOf('response.reasoning_summary_text.delta') < t.indexOf('response.output_text.delta'), 'reasoning comes first');
  assert.deepEqual(evs.at(-1).response.output.map((o) => o.type), ['reasoning', 'message']);
});

test('text.format json_schema reaches the model as response_format', { timeout: 60_000 }, async () => {
  const tok = uniq('RJSON');
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
  ctx.fake.script({ rules: [{ match: tok, reply: { content: '{"city":"Paris"}' } }] });
  const r = await ctx.client.responses.create({
    model: MODEL, input: `city as JSON ${tok}`,
    text: { format: { type: 'json_schema', name: 'place', schema, strict: true } },
  });
  assert.deepEqual(JSON.parse(r.output_text), { city: 'Paris' });
  assert.equal(r.text.format.type, 'json_schema');
  const body = onlyRequest(tok).body;
  assert.deepEqual(body.response_format, { type: 'json_schema', json_schema: { name: 'place', schema, strict: true } });
});

/* The runtime answers finish_reason "length" by asking the model to go on twice before it
 * reports "length" (see 66-anthropic), so the model stops on length three times in a row. */
const CONTINUE = 'Please continue from where you left off';

test('an answer cut at the length limit is incomplete (max_output_tokens)', { timeout: 60_000 }, async () => {
  const tok = uniq('RLEN');
  ctx.fake.script({ rules: [
    { match: tok, reply: { content: 'Once upon a', finish_reason: 'length' } },
    { match: CONTINUE, times: 2, reply: { content: ' time', finish_reason: 'length' } },
  ] });
  const r = await ctx.client.responses.create({ model: MODEL, input: `story ${tok}`, max_output_tokens: 16 });
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.output_text, 'Once upon a time time');
  assert.equal(r.max_output_tokens, 16);
});

test('a stream that fails after it started ends with response.failed', { timeout: 90_000 }, async () => {
  const tok = uniq('RFAIL');
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: ['Partial', ' never'], chunk_delay_ms: 30_000 } }] });
  /* A gateway with a short turn deadline: the answer stops after its first chunk. */
  const short = await startGateway({ fake: ctx.fake, args: ['--turn-timeout-ms', '3000'] });
  let evs;
  try {
    evs = await events(await openaiClient(short).responses.create({ model: MODEL, input: `slow ${tok}`, stream: true }));
  } finally {
    assert.equal(await short.stop(), 0);
  }
  const last = evs.at(-1);
  assert.equal(last.type, 'response.failed', types(evs).join(', '));
  assert.equal(last.response.status, 'failed');
  assert.equal(typeof last.response.error.message, 'string');
  assert.ok(last.response.error.code, 'error.code is set');
  assert.equal(evs.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'Partial');
});

test('stored responses: retrieve returns the same object; delete removes it', { timeout: 60_000 }, async () => {
  const tok = uniq('RSTORE');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: `kept ${tok}` } }] });
  const r = await ctx.client.responses.create({ model: MODEL, input: `keep ${tok}`, metadata: { team: 'blue' } });
  assert.deepEqual(r.metadata, { team: 'blue' });
  const got = await ctx.client.responses.retrieve(r.id);
  assert.deepEqual(got, r);
  await ctx.client.responses.delete(r.id);
  await expectAPIError(() => ctx.client.responses.retrieve(r.id), { status: 404 });
  await expectAPIError(() => ctx.client.responses.delete(r.id), { status: 404 });
  await expectAPIError(() => ctx.client.responses.create({ model: MODEL, input: 'more', previous_response_id: r.id }),
    { status: 404, param: 'previous_response_id' });
});

test('background: answered at once, polled to completion; a running one can be cancelled', { timeout: 90_000 }, async () => {
  const tok = uniq('RBG');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: `background ${tok}` } }] });
  const r = await ctx.client.responses.create({ model: MODEL, input: `bg ${tok}`, background: true });
  assert.ok(['queued', 'in_progress', 'completed'].includes(r.status), r.status);
  assert.equal(r.background, true);
  const done = await waitFor(async () => {
    const x = await ctx.client.responses.retrieve(r.id);
    return x.status === 'completed' && x;
  }, { timeoutMs: 30_000, what: 'the background response to complete' });
  assert.equal(done.output_text, `background ${tok}`);
  await expectAPIError(() => ctx.client.responses.cancel(r.id), { status: 400 });

  const tok2 = uniq('RBGHANG');
  ctx.fake.script({ rules: [{ match: tok2, reply: { hang: true } }] });
  const h = await ctx.client.responses.create({ model: MODEL, input: `hang ${tok2}`, background: true });
  await waitFor(() => ctx.fake.requestsFor(tok2).length === 1, { what: 'the model to be called' });
  assert.equal((await ctx.client.responses.retrieve(h.id)).status, 'in_progress');
  const c = await ctx.client.responses.cancel(h.id);
  assert.equal(c.status, 'cancelled');
  assert.equal((await ctx.client.responses.retrieve(h.id)).status, 'cancelled');
  await waitFor(() => ctx.fake.requestsFor(tok2).every((e) => e.outcome === 'client_closed'), {
    timeoutMs: 15_000, what: 'the cancelled model call to be closed',
  });
});

test('errors: OpenAI-shaped, with the right status and param', { timeout: 60_000 }, async () => {
  await expectAPIError(() => ctx.client.responses.create({ input: 'hi' }), { status: 400, param: 'model' });
  await expectAPIError(() => ctx.client.responses.create({ model: MODEL }), { status: 400, param: 'input' });
  await expectAPIError(() => ctx.client.responses.create({ model: 'no-such-model', input: 'hi' }), { status: 404, code: 'model_not_found' });
  await expectAPIError(() => ctx.client.responses.create({ model: MODEL, input: 'hi', previous_response_id: 'resp_doesnotexist' }),
    { status: 404, param: 'previous_response_id' });
  await expectAPIError(() => ctx.client.responses.create({ model: MODEL, input: [{ type: 'function_call_output', call_id: 'call_x', output: 'r' }] }),
    { status: 400 });
  await expectAPIError(() => ctx.client.responses.create({ model: MODEL, input: 'hi', tools: [WEATHER], tool_choice: 'required' }),
    { status: 400, param: 'tool_choice' });
  await expectAPIError(() => ctx.client.responses.create({ model: MODEL, input: 'hi', background: true, stream: true }), { status: 400 });
  await expectAPIError(() => ctx.client.responses.retrieve('resp_nope'), { status: 404 });
  const bad = await http(ctx.gw, 'POST', '/v1/responses', { raw: '{"model":' });
  assert.equal(bad.status, 400);
  assertOpenAIError(bad.json);
  const wrong = await http(ctx.gw, 'GET', '/v1/responses');
  assert.equal(wrong.status, 405);
  assertOpenAIError(wrong.json);
  assert.ok(OpenAI.APIError);
});

test('hosted tool types (web_search) are accepted and not offered to the model', { timeout: 60_000 }, async () => {
  const tok = uniq('RHOST');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'no search needed' } }] });
  const r = await ctx.client.responses.create({
    model: MODEL, input: `news ${tok}`,
    tools: [{ type: 'web_search' }, WEATHER],
  });
  assert.equal(r.output_text, 'no search needed');
  const names = (onlyRequest(tok).body.tools ?? []).map((t) => t.function?.name);
  assert.deepEqual(names, ['get_weather']);
});

test('stored responses survive a restart; a background response cut by the shutdown is stored as failed', { timeout: 120_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'gw-resp-data-'));
  const tok = uniq('RRESTART');
  ctx.fake.script({ rules: [
    { match_prompt: `first ${tok}`, reply: { content: `first answer ${tok}` } },
    { match_prompt: `second ${tok}`, reply: { content: `second answer ${tok}` } },
    { match_prompt: `hang ${tok}`, reply: { hang: true } },
  ] });
  try {
    const args = ['--data', data, '--shutdown-timeout-s', '2'];
    const gw1 = await startGateway({ fake: ctx.fake, args });
    const c1 = openaiClient(gw1);
    const r1 = await c1.responses.create({ model: MODEL, input: `first ${tok}` });
    const bg = await c1.responses.create({ model: MODEL, input: `hang ${tok}`, background: true });
    await waitFor(() => ctx.fake.requestsFor(`hang ${tok}`).length === 1, { what: 'the hanging model call' });
    assert.equal(await gw1.stop(), 0, 'exits 0 with a background response running');

    const gw2 = await startGateway({ fake: ctx.fake, args });
    try {
      const c2 = openaiClient(gw2);
      assert.deepEqual(await c2.responses.retrieve(r1.id), r1);
      const cut = await c2.responses.retrieve(bg.id);
      assert.equal(cut.status, 'failed');
      assert.match(cut.error.message, /shut down/);
      const r2 = await c2.responses.create({ model: MODEL, previous_response_id: r1.id, input: `second ${tok}` });
      assert.equal(r2.output_text, `second answer ${tok}`);
      const seen = ctx.fake.requestsFor(`second ${tok}`)[0].body.messages.filter((m) => m.role !== 'system');
      assert.deepEqual(seen.map((m) => [m.role, stripDatetime(textOf(m.content))]),
        [['user', `first ${tok}`], ['assistant', `first answer ${tok}`], ['user', `second ${tok}`]]);
    } finally {
      assert.equal(await gw2.stop(), 0);
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
