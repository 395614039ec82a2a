// 69-reply-order: the runtime may emit the events of the model call that follows a tool
// result before its reply to session.tools.handlePendingToolCall. With a fast model that
// happens only sometimes, so here the runtime runs behind tests/fake/rtdelay.mjs, which holds
// that reply back 300 ms: every answered tool round sees the next model message first. The
// answered calls must not be taken for calls of that message (a CI run once ended a tool
// loop's last turn with finish_reason "tool_calls" and the previous round's call).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import {
  useGateway, test, uniq, collectStream, metrics, expectSessions, callsOf, ROOT,
} from './lib.mjs';

const ctx = useGateway({
  args: ['--copilot', join(ROOT, 'tests/fake/rtdelay.mjs')],
  env: { RTDELAY_METHODS: 'session.tools.handlePendingToolCall', RTDELAY_MS: '300' },
});

const MODEL = 'fake-model';
const tool = (name) => ({
  type: 'function',
  function: { name, parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } },
});
const TOOLS = [tool('lookup'), tool('fetch')];

test('a two-round tool loop with parallel calls ends with the final answer', { timeout: 90_000 }, async () => {
  const tok = uniq('ORD');
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [
      { id: `c1a_${tok}`, name: 'lookup', arguments: { q: 'a' } },
      { id: `c1b_${tok}`, name: 'fetch', arguments: { q: 'b' } },
    ] } },
    { match_tool: `R1-${tok}`, reply: { content: 'One more.', tool_calls: [{ id: `c2_${tok}`, name: 'lookup', arguments: { q: 'c' } }] } },
    { match_tool: `R2-${tok}`, reply: { content: `Done (${tok}).` } },
  ] });
  const m0 = await metrics(ctx.gw);
  const messages = [{ role: 'user', content: `Go ${tok}` }];

  const r1 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(callsOf(r1.choices[0].message.tool_calls),
    [[`c1a_${tok}`, 'lookup', { q: 'a' }], [`c1b_${tok}`, 'fetch', { q: 'b' }]]);
  messages.push({ role: 'assistant', content: null, tool_calls: r1.choices[0].message.tool_calls });
  for (const c of r1.choices[0].message.tool_calls) messages.push({ role: 'tool', tool_call_id: c.id, content: `R1-${tok} ${c.id}` });

  /* Round two streamed: the new call's deltas must not carry the answered calls. */
  const calls = new Map();
  let finish = null;
  let text = '';
  await collectStream(await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, stream: true }), (ch) => {
    const ch0 = ch.choices[0];
    if (!ch0) return;
    text += ch0.delta?.content ?? '';
    for (const d of ch0.delta?.tool_calls ?? []) {
      const c = calls.get(d.index) ?? { id: null, name: null, args: '' };
      c.id ??= d.id; c.name ??= d.function?.name;
      c.args += d.function?.arguments ?? '';
      calls.set(d.index, c);
    }
    finish = ch0.finish_reason ?? finish;
  });
  assert.equal(finish, 'tool_calls');
  assert.equal(text, 'One more.');
  assert.deepEqual([...calls.entries()].map(([i, c]) => [i, c.id, c.name, JSON.parse(c.args)]),
    [[0, `c2_${tok}`, 'lookup', { q: 'c' }]]);
  messages.push({ role: 'assistant', content: text, tool_calls: [
    { id: `c2_${tok}`, type: 'function', function: { name: 'lookup', arguments: calls.get(0).args } }] });
  messages.push({ role: 'tool', tool_call_id: `c2_${tok}`, content: `R2-${tok}` });

  const r3 = await ctx.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  assert.equal(r3.choices[0].finish_reason, 'stop');
  assert.equal(r3.choices[0].message.content, `Done (${tok}).`);
  assert.equal(r3.choices[0].message.tool_calls, undefined);
  await expectSessions(ctx.gw, m0, { created: 1, reused: 2, seeded: 0 }, 'three requests, one runtime session');
});

test('Anthropic: a tool_result round ends with end_turn and the final text', { timeout: 90_000 }, async () => {
  const tok = uniq('AORD');
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: `tu_${tok}`, name: 'lookup', arguments: { q: 'x' } }] } },
    { match_tool: `AR-${tok}`, reply: { content: `Answer (${tok}).` } },
  ] });
  const client = new Anthropic({ baseURL: ctx.gw.url, apiKey: 'unused', maxRetries: 0 });
  const tools = [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
  const messages = [{ role: 'user', content: `Ask ${tok}` }];
  const m1 = await client.messages.create({ model: MODEL, max_tokens: 100, messages, tools });
  assert.equal(m1.stop_reason, 'tool_use');
  messages.push({ role: 'assistant', content: m1.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `tu_${tok}`, content: `AR-${tok}` }] });
  const m2 = await client.messages.create({ model: MODEL, max_tokens: 100, messages, tools });
  assert.equal(m2.stop_reason, 'end_turn');
  assert.deepEqual(m2.content, [{ type: 'text', text: `Answer (${tok}).` }]);
});
