// 62-tools: OpenAI function tools through the real gateway and runtime. The model (our fake)
// calls the client's tools; the gateway answers with finish_reason "tool_calls" and keeps the
// runtime session parked; the client's next request (history + assistant tool_calls + tool
// messages) is answered by handing the results to that same session.
//
// Scripting: {match_prompt: tok} answers the user's prompt with tool calls, {match_tool:
// `RESULT-${tok}`} answers the tool results (tests/fake/fakemodel.mjs). "What the model
// received" is fake.requestsFor(tok) (every model call whose last user message has tok).

import assert from 'node:assert/strict';
import {
  useGateway, test, uniq, collectStream, textOf, stripDatetime, expectAPIError, metrics, waitFor,
  callsOf, expectSessions as expectSessionsOf,
} from './lib.mjs';

const ctx = useGateway();

const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city.',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', description: 'City name' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};
const TIME = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'Local time in an IANA time zone.',
    parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'], additionalProperties: false },
  },
};
const TOOLS = [WEATHER, TIME];
const MODEL = 'fake-model';

/** expectSessions of lib.mjs, on this file's gateway. */
const expectSessions = (before, want, what) => expectSessionsOf(ctx.gw, before, want, what);

/** The role/text view of a model request's messages (datetime prefixes stripped). */
const view = (messages) => messages.map((m) => ({ role: m.role, content: stripDatetime(textOf(m.content)) }));

/** [id, name, parsed arguments] of each tool call (OpenAI shape). */

/** The trailing assistant-with-tool_calls message and the tool messages after it, in a model request. */
function lastToolRound(body) {
  const msgs = body.messages;
  const i = msgs.findLastIndex((m) => m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length);
  assert.ok(i >= 0, `the model request has an assistant message with tool_calls: ${JSON.stringify(view(msgs))}`);
  return { assistant: msgs[i], tools: msgs.slice(i + 1).filter((m) => m.role === 'tool'), after: msgs.slice(i + 1) };
}

test('one tool call round trip: ids, name, arguments; results reach the same runtime session', { timeout: 90_000 }, async () => {
  const tok = uniq('TOOL');
  const callId = `call_${tok}`;
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: callId, name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } }] } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Paris: sunny, 21C (${tok}).` } },
  ] });
  const messages = [
    { role: 'system', content: 'You are a weather bot.' },
    { role: 'user', content: `What is the weather in Paris? ${tok}` },
  ];
  const m0 = await metrics(ctx.gw);
  const r1 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  const c1 = r1.choices[0];
  assert.equal(c1.finish_reason, 'tool_calls');
  assert.equal(c1.message.role, 'assistant');
  assert.equal(c1.message.content, null, 'no text came with the call: content null');
  assert.equal(c1.message.tool_calls.length, 1);
  assert.equal(c1.message.tool_calls[0].id, callId, "the model's own id");
  assert.equal(c1.message.tool_calls[0].type, 'function');
  assert.equal(c1.message.tool_calls[0].function.name, 'get_weather');
  assert.equal(typeof c1.message.tool_calls[0].function.arguments, 'string');
  assert.deepEqual(JSON.parse(c1.message.tool_calls[0].function.arguments), { city: 'Paris', unit: 'celsius' });

  /* The model saw exactly the client's tools, no built-ins. */
  const [first] = ctx.fake.requestsFor(tok);
  assert.deepEqual((first.body.tools ?? []).map((t) => t.function?.name), ['get_weather', 'get_time'], 'exactly the request tools');
  for (const t of first.body.tools) {
    const mine = TOOLS.find((x) => x.function.name === t.function.name);
    assert.equal(t.type, 'function');
    assert.deepEqual(t.function.parameters, mine.function.parameters, `${t.function.name}: parameters unchanged`);
    assert.equal(t.function.description, mine.function.description, `${t.function.name}: description unchanged`);
  }
  assert.equal(first.headers['x-initiator'], 'user');

  const m1 = await metrics(ctx.gw);
  /* The client hands back the assistant message as the SDK returned it, as real clients do. */
  const r2 = await ctx.client.chat.completions.create({
    model: MODEL,
    tools: TOOLS,
    messages: [...messages, c1.message, { role: 'tool', tool_call_id: callId, content: `RESULT-${tok}: sunny, 21C` }],
  });
  assert.equal(r2.choices[0].finish_reason, 'stop');
  assert.equal(r2.choices[0].message.content, `Paris: sunny, 21C (${tok}).`);
  assert.equal(r2.choices[0].message.tool_calls ?? undefined, undefined, 'no tool_calls on a plain answer');
  await expectSessions(m1, { created: 0, reused: 1, seeded: 0 }, 'the results continue the parked session');

  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2, 'two model calls: the prompt, then the results');
  const second = reqs[1];
  assert.equal(second.headers['x-initiator'], 'agent', 'the follow-up call is agent-initiated');
  assert.deepEqual(view(second.body.messages.slice(0, 2)), [
    { role: 'system', content: 'You are a weather bot.' },
    { role: 'user', content: `What is the weather in Paris? ${tok}` },
  ]);
  const round = lastToolRound(second.body);
  assert.deepEqual(callsOf(round.assistant.tool_calls), [[callId, 'get_weather', { city: 'Paris', unit: 'celsius' }]]);
  assert.equal(round.after.length, 1, 'one tool message after the call');
  assert.equal(round.tools[0].tool_call_id, callId);
  assert.equal(textOf(round.tools[0].content), `RESULT-${tok}: sunny, 21C`);

  /* Request accounting: both requests were counted as chat requests with status 200 (a
   * request may be counted just after its response went out, hence the bounded poll). */
  const chat200 = (m) => Object.entries(m)
    .filter(([k]) => k.startsWith('copilot_gateway_requests_total{') && /route="[^"]*chat[^"]*"/.test(k) && /status="200"/.test(k))
    .reduce((n, [, v]) => n + v, 0);
  let d = null;
  await waitFor(async () => (d = chat200(await metrics(ctx.gw)) - chat200(m0)) >= 2, { timeoutMs: 5_000, what: 'requests counted' }).catch(() => {});
  assert.equal(d, 2, 'requests_total{route=chat…,status="200"} +2');
});

test('two parallel calls answered in reverse order: the model gets both results, in call order', { timeout: 90_000 }, async () => {
  const tok = uniq('PAR');
  const [idW, idT] = [`call_w_${tok}`, `call_t_${tok}`];
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [
      { id: idW, name: 'get_weather', arguments: { city: 'Rome' } },
      { id: idT, name: 'get_time', arguments: { tz: 'Europe/Rome' } },
    ] } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Rome: warm, 14:05 (${tok})` } },
  ] });
  const messages = [{ role: 'user', content: `Weather and time in Rome? ${tok}` }];
  const r1 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(callsOf(r1.choices[0].message.tool_calls), [
    [idW, 'get_weather', { city: 'Rome' }],
    [idT, 'get_time', { tz: 'Europe/Rome' }],
  ]);

  const m1 = await metrics(ctx.gw);
  const r2 = await ctx.client.chat.completions.create({
    model: MODEL,
    tools: TOOLS,
    messages: [
      ...messages,
      { role: 'assistant', content: null, tool_calls: r1.choices[0].message.tool_calls },
      { role: 'tool', tool_call_id: idT, content: `RESULT-${tok} time: 14:05` },
      { role: 'tool', tool_call_id: idW, content: `RESULT-${tok} weather: warm` },
    ],
  });
  assert.equal(r2.choices[0].message.content, `Rome: warm, 14:05 (${tok})`);
  await expectSessions(m1, { created: 0, reused: 1, seeded: 0 }, 'parallel results continue the parked session');

  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2, 'one follow-up model call for both results');
  const round = lastToolRound(reqs[1].body);
  assert.deepEqual(callsOf(round.assistant.tool_calls), [[idW, 'get_weather', { city: 'Rome' }], [idT, 'get_time', { tz: 'Europe/Rome' }]]);
  assert.deepEqual(round.tools.map((m) => [m.tool_call_id, textOf(m.content)]), [
    [idW, `RESULT-${tok} weather: warm`],
    [idT, `RESULT-${tok} time: 14:05`],
  ], 'tool results in call order');
  assert.equal(reqs[1].headers['x-initiator'], 'agent');
});

test('streamed tool calls: the client assembles them from deltas; the streamed follow-up answers', { timeout: 90_000 }, async () => {
  const tok = uniq('STC');
  const [id0, id1] = [`call_s0_${tok}`, `call_s1_${tok}`];
  const args0 = { city: 'Reykjavik', unit: 'celsius' };
  const args1 = { tz: 'Atlantic/Reykjavik' };
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: {
      tool_args_pieces: 4,
      chunk_delay_ms: 10,
      tool_calls: [{ id: id0, name: 'get_weather', arguments: args0 }, { id: id1, name: 'get_time', arguments: args1 }],
    } },
    { match_tool: `RESULT-${tok}`, reply: { chunks: ['Cold ', 'and ', `early (${tok}).`] } },
  ] });
  const messages = [{ role: 'user', content: `Reykjavik weather and time? ${tok}` }];
  const out = await collectStream(await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, stream: true }));
  assert.equal(out.error, null, `stream error: ${out.error?.message}`);

  const withChoices = out.chunks.filter((c) => c.choices?.length);
  assert.equal(withChoices[0].choices[0].delta.role, 'assistant', 'first chunk carries the role');
  const finishes = withChoices.filter((c) => c.choices[0].finish_reason);
  assert.equal(finishes.length, 1, 'one finish_reason');
  assert.equal(withChoices.at(-1).choices[0].finish_reason, 'tool_calls', 'finish_reason tool_calls in the last chunk');
  assert.equal(out.content, '', 'no text came with the calls');

  /* Assemble by index, as the OpenAI docs tell clients to. */
  const calls = [];
  for (const c of withChoices) {
    for (const d of c.choices[0].delta.tool_calls ?? []) {
      assert.equal(typeof d.index, 'number', `every tool-call delta has an index: ${JSON.stringify(d)}`);
      if (!calls[d.index]) {
        assert.ok(d.id, `the first piece of call ${d.index} carries the id: ${JSON.stringify(d)}`);
        assert.equal(d.type, 'function', `the first piece of call ${d.index} carries type`);
        assert.ok(d.function?.name, `the first piece of call ${d.index} carries the name`);
        calls[d.index] = { id: d.id, type: d.type, name: d.function.name, arguments: '', pieces: 0 };
      } else if (d.id) {
        assert.equal(d.id, calls[d.index].id, 'a repeated id does not change');
      }
      if (d.function?.arguments) {
        calls[d.index].arguments += d.function.arguments;
        calls[d.index].pieces += 1;
      }
    }
  }
  assert.equal(calls.length, 2, `two calls: ${JSON.stringify(calls)}`);
  assert.deepEqual(calls.map((c) => [c.id, c.type, c.name, JSON.parse(c.arguments)]), [
    [id0, 'function', 'get_weather', args0],
    [id1, 'function', 'get_time', args1],
  ]);
  assert.ok(calls.reduce((n, c) => n + c.pieces, 0) > 2, `arguments arrive in pieces: ${calls.map((c) => c.pieces)}`);

  /* Follow-up, streamed too. */
  const m1 = await metrics(ctx.gw);
  const follow = await collectStream(await ctx.client.chat.completions.create({
    model: MODEL,
    tools: TOOLS,
    stream: true,
    messages: [
      ...messages,
      { role: 'assistant', content: null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) },
      { role: 'tool', tool_call_id: id0, content: `RESULT-${tok} -3C` },
      { role: 'tool', tool_call_id: id1, content: `RESULT-${tok} 06:10` },
    ],
  }));
  assert.equal(follow.error, null, `stream error: ${follow.error?.message}`);
  assert.equal(follow.content, `Cold and early (${tok}).`);
  assert.equal(follow.chunks.filter((c) => c.choices?.length).at(-1).choices[0].finish_reason, 'stop');
  await expectSessions(m1, { created: 0, reused: 1, seeded: 0 }, 'streamed results continue the parked session');
});

test('SDK helpers: chat.completions.stream() assembles tool calls; runTools() completes the loop', { timeout: 90_000 }, async () => {
  const tok = uniq('SDK');
  ctx.fake.script({ rules: [
    { match_prompt: `${tok}-stream`, reply: { content: 'One moment. ', tool_calls: [{ id: `call_h_${tok}`, name: 'get_weather', arguments: { city: 'Lima' } }] } },
    { match_prompt: `${tok}-run`, reply: { tool_calls: [{ id: `call_r_${tok}`, name: 'get_weather', arguments: { city: 'Quito' } }] } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Quito is mild (${tok}).` } },
  ] });

  const final = await ctx.client.chat.completions.stream({
    model: MODEL, tools: TOOLS, messages: [{ role: 'user', content: `Lima? ${tok}-stream` }],
  }).finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(final.choices[0].message.content, 'One moment. ');
  assert.deepEqual(callsOf(final.choices[0].message.tool_calls), [[`call_h_${tok}`, 'get_weather', { city: 'Lima' }]]);

  if (typeof ctx.client.chat.completions.runTools !== 'function') return; /* optional helper */
  const seen = [];
  const runner = ctx.client.chat.completions.runTools({
    model: MODEL,
    messages: [{ role: 'user', content: `Quito? ${tok}-run` }],
    tools: [{
      type: 'function',
      function: {
        name: 'get_weather',
        description: WEATHER.function.description,
        parameters: WEATHER.function.parameters,
        parse: JSON.parse,
        function: async (args) => {
          seen.push(args);
          return `RESULT-${tok}: ${args.city} 18C`;
        },
      },
    }],
  });
  assert.equal(await runner.finalContent(), `Quito is mild (${tok}).`);
  assert.deepEqual(seen, [{ city: 'Quito' }]);
  const reqs = ctx.fake.requestsFor(`${tok}-run`);
  assert.equal(reqs.length, 2);
  const round = lastToolRound(reqs[1].body);
  assert.deepEqual(round.tools.map((m) => [m.tool_call_id, textOf(m.content)]), [[`call_r_${tok}`, `RESULT-${tok}: Quito 18C`]]);
});

test('a three-round tool loop runs in one runtime session', { timeout: 120_000 }, async () => {
  const tok = uniq('LOOP');
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: `call_1_${tok}`, name: 'get_weather', arguments: { city: 'Oslo' } }] } },
    { match_tool: `RESULT1-${tok}`, reply: { content: 'Now the time.', tool_calls: [{ id: `call_2_${tok}`, name: 'get_time', arguments: { tz: 'Europe/Oslo' } }] } },
    { match_tool: `RESULT2-${tok}`, reply: { tool_calls: [{ id: `call_3_${tok}`, name: 'get_weather', arguments: { city: 'Bergen' } }] } },
    { match_tool: `RESULT3-${tok}`, reply: { content: `Oslo snow, 09:00, Bergen rain (${tok}).` } },
  ] });
  const messages = [{ role: 'user', content: `Plan my day in Norway ${tok}` }];
  const m0 = await metrics(ctx.gw);
  const results = [`RESULT1-${tok}: snow`, `RESULT2-${tok}: 09:00`, `RESULT3-${tok}: rain`];
  const wantCalls = [
    [`call_1_${tok}`, 'get_weather', { city: 'Oslo' }],
    [`call_2_${tok}`, 'get_time', { tz: 'Europe/Oslo' }],
    [`call_3_${tok}`, 'get_weather', { city: 'Bergen' }],
  ];
  for (let round = 0; round < 3; round++) {
    const r = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    const msg = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls', `round ${round + 1}`);
    assert.deepEqual(callsOf(msg.tool_calls), [wantCalls[round]], `round ${round + 1} call`);
    assert.equal(msg.content, round === 1 ? 'Now the time.' : null, `round ${round + 1} content`);
    messages.push({ role: 'assistant', content: msg.content, tool_calls: msg.tool_calls });
    messages.push({ role: 'tool', tool_call_id: msg.tool_calls[0].id, content: results[round] });
  }
  const last = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  assert.equal(last.choices[0].finish_reason, 'stop');
  assert.equal(last.choices[0].message.content, `Oslo snow, 09:00, Bergen rain (${tok}).`);
  await expectSessions(m0, { created: 1, reused: 3, seeded: 0 }, 'four requests, one runtime session');

  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 4, 'four model calls');
  assert.deepEqual(reqs.map((e) => e.headers['x-initiator']), ['user', 'agent', 'agent', 'agent']);
  /* The last model call holds the whole loop, in order. */
  const body = reqs[3].body.messages.filter((m) => m.role !== 'system');
  assert.deepEqual(body.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'tool']);
  assert.deepEqual(body.filter((m) => m.role === 'assistant').map((m) => callsOf(m.tool_calls)[0]), wantCalls);
  assert.deepEqual(body.filter((m) => m.role === 'tool').map((m) => [m.tool_call_id, textOf(m.content)]),
    wantCalls.map((c, i) => [c[0], results[i]]));
});

test('an error text as tool result reaches the model verbatim', { timeout: 90_000 }, async () => {
  const tok = uniq('TERR');
  const callId = `call_e_${tok}`;
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: callId, name: 'get_weather', arguments: { city: 'Atlantis' } }] } },
    /* The follow-up: the last user message still carries tok, the last message is the tool result. */
    { match: tok, on: 'user', reply: { content: `I could not find that city (${tok}).` } },
  ] });
  const messages = [{ role: 'user', content: `Weather in Atlantis? ${tok}` }];
  const r1 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  const r2 = await ctx.client.chat.completions.create({
    model: MODEL,
    tools: TOOLS,
    messages: [...messages, r1.choices[0].message, { role: 'tool', tool_call_id: callId, content: 'Error: city not found' }],
  });
  assert.equal(r2.choices[0].message.content, `I could not find that city (${tok}).`);
  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2);
  const round = lastToolRound(reqs[1].body);
  assert.equal(round.tools.length, 1);
  assert.equal(round.tools[0].tool_call_id, callId);
  assert.equal(textOf(round.tools[0].content), 'Error: city not found', 'the error text, verbatim');
});

test('results for only some of the pending calls: 400 naming the missing tool_call_id', { timeout: 90_000 }, async () => {
  const tok = uniq('PART');
  const [idA, idB] = [`call_a_${tok}`, `call_b_${tok}`];
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [
      { id: idA, name: 'get_weather', arguments: { city: 'Nice' } },
      { id: idB, name: 'get_time', arguments: { tz: 'Europe/Paris' } },
    ] } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Nice: fine (${tok}).` } },
  ] });
  const messages = [{ role: 'user', content: `Nice? ${tok}` }];
  const r1 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  assert.equal(r1.choices[0].message.tool_calls.length, 2);
  const assistant = { role: 'assistant', content: null, tool_calls: r1.choices[0].message.tool_calls };

  const err = await expectAPIError(() => ctx.client.chat.completions.create({
    model: MODEL, tools: TOOLS, messages: [...messages, assistant, { role: 'tool', tool_call_id: idA, content: `RESULT-${tok} a` }],
  }), { status: 400 });
  assert.ok(err.message.includes(idB), `the error names the missing id ${idB}: ${err.message}`);
  assert.equal(ctx.fake.requestsFor(tok).length, 1, 'the refused request made no model call');

  /* With every result, the conversation goes on. */
  const r2 = await ctx.client.chat.completions.create({
    model: MODEL,
    tools: TOOLS,
    messages: [...messages, assistant,
      { role: 'tool', tool_call_id: idA, content: `RESULT-${tok} a` },
      { role: 'tool', tool_call_id: idB, content: `RESULT-${tok} b` }],
  });
  assert.equal(r2.choices[0].message.content, `Nice: fine (${tok}).`);
  const round = lastToolRound(ctx.fake.requestsFor(tok).at(-1).body);
  assert.deepEqual(round.tools.map((m) => [m.tool_call_id, textOf(m.content)]), [[idA, `RESULT-${tok} a`], [idB, `RESULT-${tok} b`]]);
});

test('tool_choice: "none" offers the model no tools; "required" and a named function are 400 tool_choice', { timeout: 90_000 }, async () => {
  const tok = uniq('TCH');
  ctx.fake.script({ rules: [{ match_prompt: `${tok}-none`, reply: { content: 'answered without tools' } }] });
  const r = await ctx.client.chat.completions.create({
    model: MODEL, tools: TOOLS, tool_choice: 'none', messages: [{ role: 'user', content: `no tools please ${tok}-none` }],
  });
  assert.equal(r.choices[0].message.content, 'answered without tools');
  assert.equal(r.choices[0].finish_reason, 'stop');
  const [e] = ctx.fake.requestsFor(`${tok}-none`);
  assert.ok(e.body.tools === undefined || (Array.isArray(e.body.tools) && e.body.tools.length === 0),
    `tool_choice none: no tools reach the model: ${JSON.stringify(e.body.tools)?.slice(0, 200)}`);

  /* "auto" (the default spelled out) offers them. */
  ctx.fake.script({ rules: [{ match_prompt: `${tok}-auto`, reply: { content: 'auto ok' } }] });
  const ra = await ctx.client.chat.completions.create({
    model: MODEL, tools: TOOLS, tool_choice: 'auto', messages: [{ role: 'user', content: `${tok}-auto` }],
  });
  assert.equal(ra.choices[0].message.content, 'auto ok');
  assert.deepEqual(ctx.fake.requestsFor(`${tok}-auto`)[0].body.tools.map((t) => t.function.name), ['get_weather', 'get_time']);

  const before = ctx.fake.log().length;
  await expectAPIError(() => ctx.client.chat.completions.create({
    model: MODEL, tools: TOOLS, tool_choice: 'required', messages: [{ role: 'user', content: `${tok}-required` }],
  }), { status: 400, param: 'tool_choice' });
  await expectAPIError(() => ctx.client.chat.completions.create({
    model: MODEL, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } },
    messages: [{ role: 'user', content: `${tok}-named` }],
  }), { status: 400, param: 'tool_choice' });
  assert.equal(ctx.fake.log().length, before, 'refused requests make no model call');
});

test('text that comes with the calls is kept: content + tool_calls, plain and streamed', { timeout: 90_000 }, async () => {
  const tok = uniq('TXT');
  const callId = `call_x_${tok}`;
  /* Separate prompts (and call ids) for the plain and the streamed request: two parked
   * sessions with one history and one call id would be a different test. */
  ctx.fake.script({ rules: [
    { match_prompt: `${tok}-plain`, reply: {
      chunks: ['Let me ', 'look that up.'],
      tool_calls: [{ id: callId, name: 'get_weather', arguments: { city: 'Cairo' } }],
    } },
    { match_prompt: `${tok}-stream`, reply: {
      chunks: ['Let me ', 'look that up.'],
      tool_calls: [{ id: `call_xs_${tok}`, name: 'get_weather', arguments: { city: 'Cairo' } }],
    } },
    { match_tool: `RESULT-${tok}`, reply: { content: `Cairo is hot (${tok}).` } },
  ] });
  const messages = [{ role: 'user', content: `Cairo? ${tok}-plain` }];

  const r = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(r.choices[0].message.content, 'Let me look that up.');
  assert.deepEqual(callsOf(r.choices[0].message.tool_calls), [[callId, 'get_weather', { city: 'Cairo' }]]);

  const s = await collectStream(await ctx.client.chat.completions.create({
    model: MODEL, tools: TOOLS, stream: true, messages: [{ role: 'user', content: `Cairo? ${tok}-stream` }],
  }));
  assert.equal(s.error, null);
  assert.equal(s.content, 'Let me look that up.');
  const kinds = s.chunks.map((c) => c.choices?.[0]?.delta).filter((d) => d && (d.content || d.tool_calls)).map((d) => (d.tool_calls ? 't' : 'c'));
  assert.ok(kinds.lastIndexOf('c') < kinds.indexOf('t'), `content deltas come before tool-call deltas: ${kinds.join('')}`);
  assert.equal(s.chunks.filter((c) => c.choices?.length).at(-1).choices[0].finish_reason, 'tool_calls');
  assert.deepEqual([...new Set(s.chunks.flatMap((c) => c.choices?.[0]?.delta?.tool_calls ?? []).filter((d) => d.id).map((d) => d.id))], [`call_xs_${tok}`]);

  /* Continue the non-streamed one: the model sees the text and the call in one assistant message. */
  const r2 = await ctx.client.chat.completions.create({
    model: MODEL,
    tools: TOOLS,
    messages: [...messages, r.choices[0].message, { role: 'tool', tool_call_id: callId, content: `RESULT-${tok} 38C` }],
  });
  assert.equal(r2.choices[0].message.content, `Cairo is hot (${tok}).`);
  const last = ctx.fake.requestsForLast(`RESULT-${tok} 38C`).at(-1);
  assert.ok(last, 'the model got the tool result');
  const round = lastToolRound(last.body);
  assert.equal(textOf(round.assistant.content), 'Let me look that up.');
  assert.deepEqual(callsOf(round.assistant.tool_calls), [[callId, 'get_weather', { city: 'Cairo' }]]);
});
