// 63-sessions: the session broker. A conversation that only grows (a new user turn, or tool
// results) continues its live runtime session; an edited history is served by a new session
// seeded with exactly that history; X-Session-Id pins a conversation to a named session; a
// parked tool call nobody answers is timed out (--tool-timeout-s) and the late results are
// still answered by reseeding; 50 concurrent tool conversations never cross.
//
// Session counts come from GET /metrics, always as deltas (the warm-up and earlier tests share
// the gateway). "What the model received" is fake.requestsFor(token).

import assert from 'node:assert/strict';
import {
  useGateway, startGateway, openaiClient, test, uniq, textOf, stripDatetime, metrics,
  sessionDirs, waitFor, http, expectSessions,
} from './lib.mjs';

const ctx = useGateway({ args: ['--max-sessions', '256'] });
const MODEL = 'fake-model';

const LOOKUP = {
  type: 'function',
  function: {
    name: 'lookup',
    description: 'Look a key up.',
    parameters: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'], additionalProperties: false },
  },
};
const TOOLS = [LOOKUP];


/**
 * The role/text view of messages, datetime prefixes stripped. Assistant tool calls and tool
 * ids are kept when present, so that a tool round is compared too.
 */
function view(messages) {
  return messages.map((m) => {
    const v = { role: m.role, content: stripDatetime(textOf(m.content)) };
    if (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length) {
      v.tool_calls = m.tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]);
    }
    if (m.role === 'tool') v.tool_call_id = m.tool_call_id;
    return v;
  });
}

/** The only model call whose last user message holds `tok`. */
function onlyRequest(tok) {
  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 1, `the model got exactly one request for ${tok} (got ${reqs.length})`);
  return reqs[0];
}

/** Runs one plain user turn: appends the user message, asks, appends the answer. */
async function turn(client, messages, userText, want, opts) {
  messages.push({ role: 'user', content: userText });
  const r = await client.chat.completions.create({ model: MODEL, messages }, opts);
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, want, `answer to ${JSON.stringify(userText)}`);
  messages.push({ role: 'assistant', content: r.choices[0].message.content });
  return r;
}

test('GET /metrics: Prometheus text with the session, request and duration series', { timeout: 60_000 }, async () => {
  const tok = uniq('MET');
  ctx.fake.script({ rules: [{ match_prompt: tok, reply: { content: 'metrics warm' } }] });
  await ctx.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: tok }] });
  /* A request may be counted just after its response went out. */
  await waitFor(async () => Object.entries(await metrics(ctx.gw))
    .some(([k, v]) => /^copilot_gateway_requests_total\{route="[^"]*chat[^"]*",status="200"\}$/.test(k) && v >= 1),
  { timeoutMs: 5_000, what: 'the chat request counted' });
  const r = await http(ctx.gw, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  const types = Object.fromEntries([...r.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  for (const n of ['created_total', 'reused_total', 'seeded_total']) {
    assert.equal(types[`copilot_gateway_sessions_${n}`], 'counter', `copilot_gateway_sessions_${n} is a counter`);
  }
  for (const n of ['live', 'parked']) assert.equal(types[`copilot_gateway_sessions_${n}`], 'gauge', `copilot_gateway_sessions_${n} is a gauge`);
  assert.equal(types.copilot_gateway_requests_total, 'counter');
  assert.equal(types.copilot_gateway_request_duration_seconds, 'histogram');

  const m = await metrics(ctx.gw);
  for (const k of ['created_total', 'reused_total', 'seeded_total', 'live', 'parked']) {
    const v = m[`copilot_gateway_sessions_${k}`];
    assert.ok(Number.isFinite(v) && v >= 0, `copilot_gateway_sessions_${k} = ${v}`);
  }
  const reqKeys = Object.keys(m).filter((k) => k.startsWith('copilot_gateway_requests_total{'));
  assert.ok(reqKeys.some((k) => /route="[^"]*chat[^"]*"/.test(k) && /status="200"/.test(k)),
    `a requests_total series for the chat route with status 200: ${reqKeys.join(' ')}`);
  /* The histogram: buckets per label set are cumulative, end with +Inf, which equals _count. */
  const buckets = Object.entries(m).filter(([k]) => k.startsWith('copilot_gateway_request_duration_seconds_bucket{'));
  assert.ok(buckets.length > 0, 'histogram buckets present');
  const groups = new Map();
  for (const [k, v] of buckets) {
    const le = /le="([^"]*)"/.exec(k)[1];
    const rest = k.replace(/,?le="[^"]*"/, '').replace('{,', '{').replace('_bucket', '');
    if (!groups.has(rest)) groups.set(rest, []);
    groups.get(rest).push([le === '+Inf' ? Infinity : Number(le), v]);
  }
  for (const [rest, list] of groups) {
    list.sort((a, b) => a[0] - b[0]);
    assert.equal(list.at(-1)[0], Infinity, `${rest}: a +Inf bucket`);
    for (let i = 1; i < list.length; i++) assert.ok(list[i][1] >= list[i - 1][1], `${rest}: cumulative buckets`);
    const countKey = rest.replace('copilot_gateway_request_duration_seconds', 'copilot_gateway_request_duration_seconds_count').replace('{}', '');
    if (countKey in m) assert.equal(m[countKey], list.at(-1)[1], `${rest}: +Inf bucket equals _count`);
  }
  assert.ok(buckets.some(([k, v]) => /le="\+Inf"/.test(k) && v >= 1), 'at least one request observed');
});

test('a 6-turn conversation is served by one runtime session; every model call gets the whole history', { timeout: 120_000 }, async () => {
  const tok = uniq('SIX');
  const N = 6;
  const rules = [];
  for (let i = 0; i < N; i++) rules.push({ match_prompt: `${tok}-T${i}.`, reply: { content: `Answer ${i}: noted (${tok}).` } });
  ctx.fake.script({ rules });
  const messages = [{ role: 'system', content: 'You are SIX-SYS.\nBe brief.' }];
  const m0 = await metrics(ctx.gw);
  const sent = [];
  for (let i = 0; i < N; i++) {
    /* Varied content: newlines, quotes, unicode, indentation. */
    await turn(ctx.client, messages, `Turn ${i}: "quoted", ünïcode ✓\n  line two <b>${tok}-T${i}.</b>`, `Answer ${i}: noted (${tok}).`);
    sent.push(structuredClone(messages.slice(0, -1)));
  }
  await expectSessions(ctx.gw, m0, { created: 1, reused: N - 1, seeded: 0 }, '6 turns, one session');

  for (let i = 0; i < N; i++) {
    const e = onlyRequest(`${tok}-T${i}.`);
    assert.deepEqual(view(e.body.messages), view(sent[i]), `model call ${i} holds the whole history exactly`);
    assert.equal(e.headers['x-initiator'], 'user', `turn ${i} is user-initiated`);
  }
});

test('an edited history is answered by a new session seeded with exactly that history', { timeout: 120_000 }, async () => {
  const tok = uniq('EDIT');
  ctx.fake.script({ rules: [
    { match_prompt: `${tok}-T0.`, reply: { content: `first answer ${tok}` } },
    { match_prompt: `${tok}-T1.`, reply: { content: `second answer ${tok}` } },
    { match_prompt: `${tok}-T2.`, reply: { content: `third answer ${tok}` } },
    { match_prompt: `${tok}-T3.`, reply: { content: `fourth answer ${tok}` } },
  ] });
  const messages = [{ role: 'system', content: 'EDIT-SYS' }];
  await turn(ctx.client, messages, `one ${tok}-T0.`, `first answer ${tok}`);
  await turn(ctx.client, messages, `two ${tok}-T1.`, `second answer ${tok}`);

  /* Edit an earlier user message, then ask. */
  const m0 = await metrics(ctx.gw);
  const edited = structuredClone(messages);
  edited[1].content = `one (edited) ${tok}-X0`;
  const r = await turn(ctx.client, edited, `three ${tok}-T2.`, `third answer ${tok}`);
  assert.ok(r);
  await expectSessions(ctx.gw, m0, { created: 1, seeded: 1, reused: 0 }, 'edited user message → seeded');
  assert.deepEqual(view(onlyRequest(`${tok}-T2.`).body.messages), view(edited.slice(0, -1)), 'the model got the edited history exactly');

  /* Edit an earlier assistant message of that conversation, then ask. */
  const m1 = await metrics(ctx.gw);
  const edited2 = structuredClone(edited);
  edited2[2].content = `first answer, rewritten by the client ${tok}`;
  await turn(ctx.client, edited2, `four ${tok}-T3.`, `fourth answer ${tok}`);
  await expectSessions(ctx.gw, m1, { created: 1, seeded: 1, reused: 0 }, 'edited assistant message → seeded');
  assert.deepEqual(view(onlyRequest(`${tok}-T3.`).body.messages), view(edited2.slice(0, -1)), 'the model got the edited history exactly');
});

test('X-Session-Id pins a conversation: extended → reused, edited → reseeded, then reused again', { timeout: 120_000 }, async () => {
  const tok = uniq('PIN');
  const name = `pin-${tok}`;
  const opts = { headers: { 'X-Session-Id': name } };
  const rules = [];
  for (let i = 0; i < 5; i++) rules.push({ match_prompt: `${tok}-T${i}.`, reply: { content: `pinned ${i} ${tok}` } });
  ctx.fake.script({ rules });
  const messages = [];

  const m0 = await metrics(ctx.gw);
  await turn(ctx.client, messages, `a ${tok}-T0.`, `pinned 0 ${tok}`, opts);
  await expectSessions(ctx.gw, m0, { created: 1, seeded: 0, reused: 0 }, 'first pinned turn');

  const m1 = await metrics(ctx.gw);
  await turn(ctx.client, messages, `b ${tok}-T1.`, `pinned 1 ${tok}`, opts);
  await expectSessions(ctx.gw, m1, { created: 0, seeded: 0, reused: 1 }, 'same name, extended history');

  const m2 = await metrics(ctx.gw);
  const edited = structuredClone(messages);
  edited[0].content = `a, edited ${tok}`;
  await turn(ctx.client, edited, `c ${tok}-T2.`, `pinned 2 ${tok}`, opts);
  await expectSessions(ctx.gw, m2, { created: 1, seeded: 1, reused: 0 }, 'same name, edited history');
  assert.deepEqual(view(onlyRequest(`${tok}-T2.`).body.messages), view(edited.slice(0, -1)), 'the model got the edited history exactly');

  const m3 = await metrics(ctx.gw);
  await turn(ctx.client, edited, `d ${tok}-T3.`, `pinned 3 ${tok}`, opts);
  await expectSessions(ctx.gw, m3, { created: 0, seeded: 0, reused: 1 }, 'the reseeded session is the pinned one now');
  assert.deepEqual(view(onlyRequest(`${tok}-T3.`).body.messages), view(edited.slice(0, -1)));
  assert.equal(onlyRequest(`${tok}-T3.`).headers['x-initiator'], 'user');
});

test('X-Session-Id: two names with the same opening message are two conversations', { timeout: 120_000 }, async () => {
  const tok = uniq('TWIN');
  ctx.fake.script({ rules: [
    { match_prompt: `${tok}-open`, reply: { content: `opened ${tok}` } },
    { match_prompt: `${tok}-A.`, reply: { content: `A goes on ${tok}` } },
    { match_prompt: `${tok}-B.`, reply: { content: `B goes on ${tok}` } },
  ] });
  const a = [];
  const b = [];
  const optsA = { headers: { 'X-Session-Id': `twin-a-${tok}` } };
  const optsB = { headers: { 'X-Session-Id': `twin-b-${tok}` } };
  const m0 = await metrics(ctx.gw);
  await turn(ctx.client, a, `hello ${tok}-open`, `opened ${tok}`, optsA);
  await turn(ctx.client, b, `hello ${tok}-open`, `opened ${tok}`, optsB);
  await turn(ctx.client, a, `more ${tok}-A.`, `A goes on ${tok}`, optsA);
  await turn(ctx.client, b, `more ${tok}-B.`, `B goes on ${tok}`, optsB);
  await expectSessions(ctx.gw, m0, { created: 2, reused: 2, seeded: 0 }, 'one session per name');
  assert.deepEqual(view(onlyRequest(`${tok}-A.`).body.messages), view(a.slice(0, -1)));
  assert.deepEqual(view(onlyRequest(`${tok}-B.`).body.messages), view(b.slice(0, -1)));
});

test('--tool-timeout-s: an unanswered parked call is aborted and deleted; late results are answered by reseeding', { timeout: 120_000 }, async () => {
  const gw = await startGateway({ fake: ctx.fake, args: ['--tool-timeout-s', '2'] });
  try {
    const client = openaiClient(gw);
    const tok = uniq('PTO');
    const callId = `call_pto_${tok}`;
    ctx.fake.script({ rules: [
      { match_prompt: tok, reply: { content: 'Looking.', tool_calls: [{ id: callId, name: 'lookup', arguments: { key: tok } }] } },
      { match_tool: `RESULT-${tok}`, reply: { content: `found it (${tok})` } },
    ] });
    const messages = [{ role: 'system', content: 'PTO-SYS' }, { role: 'user', content: `look ${tok} up` }];
    const dirs0 = new Set(sessionDirs(gw.home));
    const m0 = await metrics(gw);
    const r1 = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    assert.equal(r1.choices[0].finish_reason, 'tool_calls');
    assert.equal(r1.choices[0].message.tool_calls[0].id, callId);
    const newDirs = sessionDirs(gw.home).filter((d) => !dirs0.has(d));

    /* Parked, then timed out: the gauge goes back, the session and its files go away. */
    const parked0 = m0.copilot_gateway_sessions_parked ?? 0;
    const live0 = m0.copilot_gateway_sessions_live ?? 0;
    await waitFor(async () => (await metrics(gw)).copilot_gateway_sessions_parked === parked0 + 1, {
      timeoutMs: 1_500, intervalMs: 20, what: 'sessions_parked +1 right after the tool_calls answer (before the 2 s timeout)',
    });
    await waitFor(async () => {
      const m = await metrics(gw);
      return m.copilot_gateway_sessions_parked === parked0 && m.copilot_gateway_sessions_live === live0;
    }, { timeoutMs: 30_000, what: 'sessions_parked and sessions_live back to their values before the call' });
    await waitFor(() => newDirs.every((d) => !sessionDirs(gw.home).includes(d)), {
      timeoutMs: 10_000, what: `the timed-out session's directory removed (${newDirs.join(', ')})`,
    });

    const m1 = await metrics(gw);
    const r2 = await client.chat.completions.create({
      model: MODEL,
      tools: TOOLS,
      messages: [...messages, r1.choices[0].message, { role: 'tool', tool_call_id: callId, content: `RESULT-${tok}: 42` }],
    });
    assert.equal(r2.choices[0].finish_reason, 'stop');
    assert.equal(r2.choices[0].message.content, `found it (${tok})`);
    await expectSessions(gw, m1, { created: 1, seeded: 1, reused: 0 }, 'late results → a seeded session');

    const reqs = ctx.fake.requestsFor(tok);
    assert.equal(reqs.length, 2, 'two model calls: the prompt, then the results in the seeded session');
    assert.deepEqual(view(reqs[1].body.messages), [
      { role: 'system', content: 'PTO-SYS' },
      { role: 'user', content: `look ${tok} up` },
      { role: 'assistant', content: 'Looking.', tool_calls: [[callId, 'lookup', { key: tok }]] },
      { role: 'tool', content: `RESULT-${tok}: 42`, tool_call_id: callId },
    ], 'the seeded session holds the call and its result, and nothing the runtime made up');
  } finally {
    assert.equal(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
  }
});

test('50 concurrent conversations × 5 tool turns: no cross-talk', { timeout: 120_000 }, async () => {
  const C = 50;
  const T = 5;
  const toks = Array.from({ length: C }, () => uniq('CONV'));
  const rules = [];
  for (const ct of toks) {
    for (let t = 0; t < T; t++) {
      rules.push({ match_prompt: `${ct}-T${t}.`, reply: { tool_calls: [{ id: `call_${ct}_${t}`, name: 'lookup', arguments: { key: `${ct}-K${t}` } }] } });
      rules.push({ match_tool: `RESULT-${ct}-T${t}.`, reply: { content: `answer ${ct} turn ${t}` } });
    }
  }
  ctx.fake.script({ rules });
  const m0 = await metrics(ctx.gw);

  const conversation = async (ct) => {
    const messages = [{ role: 'system', content: `You serve ${ct}.` }];
    for (let t = 0; t < T; t++) {
      messages.push({ role: 'user', content: `conversation ${ct}, question ${ct}-T${t}.` });
      const r1 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
      const msg = r1.choices[0].message;
      assert.equal(r1.choices[0].finish_reason, 'tool_calls', `${ct} turn ${t}: ${JSON.stringify(msg)}`);
      assert.equal(msg.tool_calls.length, 1, `${ct} turn ${t}: one call`);
      assert.equal(msg.tool_calls[0].id, `call_${ct}_${t}`, `${ct} turn ${t}: its own call`);
      assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { key: `${ct}-K${t}` });
      messages.push({ role: 'assistant', content: msg.content, tool_calls: msg.tool_calls });
      messages.push({ role: 'tool', tool_call_id: msg.tool_calls[0].id, content: `RESULT-${ct}-T${t}. value ${t}` });
      const r2 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
      assert.equal(r2.choices[0].message.content, `answer ${ct} turn ${t}`, `${ct} turn ${t}: its own answer`);
      messages.push({ role: 'assistant', content: r2.choices[0].message.content });
    }
    return messages;
  };
  const results = await Promise.allSettled(toks.map(conversation));
  const failed = results.map((r, i) => [toks[i], r]).filter(([, r]) => r.status === 'rejected');
  assert.equal(failed.length, 0, `${failed.length} conversations failed; first: ${failed[0]?.[0]}: ${failed[0]?.[1].reason?.message}`);

  /* The model side: every call of a conversation holds that conversation's tokens only. */
  const tokenRe = /CONV\d+x[a-z0-9]+/g;
  for (const ct of toks) {
    const reqs = ctx.fake.requestsFor(ct);
    assert.equal(reqs.length, 2 * T, `${ct}: ${2 * T} model calls`);
    for (const e of reqs) {
      const found = new Set(JSON.stringify(e.body.messages).match(tokenRe));
      assert.deepEqual([...found], [ct], `${ct}: a model call holds another conversation's token`);
    }
    const last = reqs.at(-1).body.messages;
    assert.equal(last.filter((m) => m.role === 'user').length, T, `${ct}: the last call holds all ${T} user turns`);
    assert.equal(last.filter((m) => m.role === 'tool').length, T, `${ct}: … and all ${T} tool results`);
  }
  await expectSessions(ctx.gw, m0, { created: C, reused: C * (2 * T - 1), seeded: 0 }, 'one session per conversation');
});
