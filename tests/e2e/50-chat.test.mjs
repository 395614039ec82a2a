// 50-chat: POST /v1/chat/completions through the real gateway and runtime, with the official
// openai client. Each case: what the fake model is scripted to answer, the request, what the
// model must have received, and the response the client must see.

import assert from 'node:assert/strict';
import { useGateway, test, uniq, collectStream, textOf, stripDatetime, TINY_PNG_B64 } from './lib.mjs';

const ctx = useGateway();

/** The single request the fake received for `tok` (a request must not be sent twice). */
function onlyRequest(tok) {
  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 1, `the model got exactly one request for ${tok} (got ${reqs.length})`);
  return reqs[0];
}

test('plain answer: content, id, object, created, model, finish_reason, usage', { timeout: 60_000 }, async () => {
  const tok = uniq('PLAIN');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'The scripted answer.', usage: { prompt_tokens: 42, completion_tokens: 7 } } }] });
  const t0 = Math.floor(Date.now() / 1000);
  const r1 = await ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `say it ${tok}` }] });
  const r2 = await ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `again ${tok}` }] });
  const afterT = Math.floor(Date.now() / 1000);

  for (const r of [r1, r2]) {
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.ok(Number.isInteger(r.created) && r.created >= t0 - 1 && r.created <= afterT + 1, `created ${r.created}`);
    assert.equal(r.model, 'fake-model');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'The scripted answer.');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.prompt_tokens, 42);
    assert.equal(r.usage.completion_tokens, 7);
    assert.equal(r.usage.total_tokens, 49);
  }
  assert.notEqual(r1.id, r2.id, 'ids are unique per request');

  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 2);
  assert.equal(reqs[0].headers.authorization, 'Bearer test-key', 'the provider key reaches the model');
  assert.equal(reqs[0].body.model, 'fake-model');
});

test('streamed answer: chunks arrive while the model is still streaming; role, finish, usage', { timeout: 60_000 }, async () => {
  const tok = uniq('STREAM');
  const parts = ['Alpha ', 'beta ', 'gamma ', 'delta ', 'epsilon'];
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: parts, chunk_delay_ms: 150, usage: { prompt_tokens: 21, completion_tokens: 5 } } }] });
  const stream = await ctx.client.chat.completions.create({
    model: 'fake-model', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: `stream please ${tok}` }],
  });
  /* For each content chunk, note whether the model was still sending at that moment: a gateway
   * that buffers the answer would deliver every chunk after the model finished. */
  let liveChunks = 0;
  const out = await collectStream(stream, (c) => {
    if (c.choices?.[0]?.delta?.content && ctx.fake.requestsFor(tok)[0]?.outcome === 'streaming') liveChunks++;
  });
  assert.equal(out.error, null, `stream error: ${out.error?.message}`);
  assert.equal(out.content, parts.join(''));
  assert.ok(liveChunks >= 2, `at least two content chunks arrive before the model finished (got ${liveChunks})`);

  const withChoices = out.chunks.filter((c) => c.choices?.length);
  assert.equal(withChoices[0].choices[0].delta.role, 'assistant', 'first chunk carries the role');
  const last = withChoices.at(-1);
  assert.equal(last.choices[0].finish_reason, 'stop');
  assert.equal(withChoices.filter((c) => c.choices[0].finish_reason).length, 1, 'one finish_reason');
  const ids = new Set(out.chunks.map((c) => c.id));
  assert.equal(ids.size, 1, 'all chunks share one id');
  assert.match([...ids][0], /^chatcmpl-/);
  for (const c of out.chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, 'fake-model');
  }
  assert.ok(out.usageChunk, 'include_usage gives a usage chunk');
  assert.equal(out.chunks.at(-1), out.usageChunk, 'the usage chunk is last');
  assert.deepEqual(out.usageChunk.choices, []);
  assert.equal(out.usageChunk.usage.prompt_tokens, 21);
  assert.equal(out.usageChunk.usage.completion_tokens, 5);
  assert.equal(out.usageChunk.usage.total_tokens, 26);
  onlyRequest(tok);
});

test('streamed answer without include_usage has no usage chunk', { timeout: 60_000 }, async () => {
  const tok = uniq('NOUSAGE');
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: ['x', 'y'] } }] });
  const out = await collectStream(await ctx.client.chat.completions.create({
    model: 'fake-model', stream: true, messages: [{ role: 'user', content: tok }],
  }));
  assert.equal(out.error, null);
  assert.equal(out.content, 'xy');
  assert.equal(out.usageChunk, null);
});

/* History cases: the request's messages, the system prompt the model must get, and the
 * messages that must follow it, in order and nothing else. */
const HISTORY = [
  {
    name: 'system + 3 user turns',
    system: ['You are TEST-SYS.\nAnswer in one line.\n\n  Keep   spacing.'],
    expectSystem: 'You are TEST-SYS.\nAnswer in one line.\n\n  Keep   spacing.',
  },
  {
    name: 'multi-line system + developer joined by a blank line',
    system: ['System line one.\nSystem line two.'],
    developer: 'Developer rule:\n- be terse\n- no emoji',
    expectSystem: 'System line one.\nSystem line two.\n\nDeveloper rule:\n- be terse\n- no emoji',
  },
];
for (const h of HISTORY) {
  test(`history reaches the model exactly: ${h.name}`, { timeout: 60_000 }, async () => {
    const tok = uniq('HIST');
    ctx.fake.script({ rules: [{ match: tok, reply: { content: 'third answer' } }] });
    const convo = [
      { role: 'user', content: 'First question: what is 2+2?' },
      { role: 'assistant', content: 'It is 4.' },
      { role: 'user', content: 'Second question, with\nnewlines and "quotes" and <tags>.' },
      { role: 'assistant', content: 'Noted:\n- newlines\n- "quotes"' },
      { role: 'user', content: `Third question ${tok}` },
    ];
    const messages = [
      ...h.system.map((content) => ({ role: 'system', content })),
      ...(h.developer ? [{ role: 'developer', content: h.developer }] : []),
      ...convo,
    ];
    const r = await ctx.client.chat.completions.create({ model: 'fake-model', messages });
    assert.equal(r.choices[0].message.content, 'third answer');

    const body = onlyRequest(tok).body;
    const got = body.messages.map((m) => ({ role: m.role, content: textOf(m.content) }));
    assert.equal(got.length, 1 + convo.length, `message count: ${JSON.stringify(got.map((m) => m.role))}`);
    assert.deepEqual(got[0], { role: 'system', content: h.expectSystem }, 'system prompt verbatim');
    for (let i = 0; i < convo.length - 1; i++) {
      assert.deepEqual(got[1 + i], convo[i], `history message ${i} verbatim (no datetime prefix)`);
    }
    assert.equal(got.at(-1).role, 'user');
    assert.equal(stripDatetime(got.at(-1).content), convo.at(-1).content, 'last user message (prefix stripped)');
    assert.ok(body.tools === undefined || (Array.isArray(body.tools) && body.tools.length === 0),
      `no tools offered to the model: ${JSON.stringify(body.tools)?.slice(0, 200)}`);
  });
}

test('reasoning: reasoning_content in the message and in streamed deltas, before content', { timeout: 60_000 }, async () => {
  const tok = uniq('REASON');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'Four.', reasoning: ['Two plus two ', 'is four.'], chunk_delay_ms: 20 } }] });
  const r = await ctx.client.chat.completions.create({ model: 'fake-reasoner', messages: [{ role: 'user', content: `2+2? ${tok}` }] });
  assert.equal(r.choices[0].message.content, 'Four.');
  assert.equal(r.choices[0].message.reasoning_content, 'Two plus two is four.');

  const out = await collectStream(await ctx.client.chat.completions.create({
    model: 'fake-reasoner', stream: true, messages: [{ role: 'user', content: `2+2 again? ${tok}` }],
  }));
  assert.equal(out.error, null);
  assert.equal(out.reasoning, 'Two plus two is four.');
  assert.equal(out.content, 'Four.');
  const kinds = out.chunks
    .map((c) => c.choices?.[0]?.delta)
    .filter((d) => d && (d.reasoning_content || d.content))
    .map((d) => (d.reasoning_content ? 'r' : 'c'));
  assert.ok(kinds.lastIndexOf('r') < kinds.indexOf('c'), `reasoning deltas come before content: ${kinds.join('')}`);
});

test('response_format json_schema and reasoning_effort reach the model', { timeout: 60_000 }, async () => {
  const tok = uniq('JSON');
  const schema = {
    type: 'object',
    properties: { city: { type: 'string' }, temp: { type: 'number' } },
    required: ['city', 'temp'],
    additionalProperties: false,
  };
  ctx.fake.script({ rules: [{ match: tok, reply: { content: '{"city":"Paris","temp":21}' } }] });
  const r = await ctx.client.chat.completions.create({
    model: 'fake-reasoner',
    reasoning_effort: 'high',
    response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } },
    messages: [{ role: 'user', content: `weather as JSON ${tok}` }],
  });
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { city: 'Paris', temp: 21 });
  const body = onlyRequest(tok).body;
  assert.deepEqual(body.response_format, { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } });
  assert.equal(body.reasoning_effort, 'high');
});

test('image_url data: URL reaches the model as an image_url part', { timeout: 60_000 }, async () => {
  const tok = uniq('IMG');
  const dataUrl = `data:image/png;base64,${TINY_PNG_B64}`;
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'A transparent pixel.' } }] });
  const r = await ctx.client.chat.completions.create({
    model: 'fake-model',
    messages: [{ role: 'user', content: [
      { type: 'text', text: `what is in this image? ${tok}` },
      { type: 'image_url', image_url: { url: dataUrl } },
    ] }],
  });
  assert.equal(r.choices[0].message.content, 'A transparent pixel.');
  const last = onlyRequest(tok).body.messages.at(-1);
  assert.equal(last.role, 'user');
  assert.ok(Array.isArray(last.content), `the user message is a content array: ${JSON.stringify(last.content).slice(0, 200)}`);
  const imgs = last.content.filter((p) => p.type === 'image_url');
  assert.equal(imgs.length, 1, 'one image part');
  assert.ok(imgs[0].image_url.url.startsWith('data:image/png;base64,'), imgs[0].image_url.url.slice(0, 60));
  assert.equal(imgs[0].image_url.url, dataUrl, 'image bytes unchanged');
  assert.match(textOf(last.content), new RegExp(`what is in this image\\? ${tok}`));
});

test('20 concurrent requests each get their own answer', { timeout: 120_000 }, async () => {
  const tok = uniq('CONC');
  const N = 20;
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      ctx.client.chat.completions.create({
        model: 'fake-model',
        messages: [{ role: 'user', content: `request ${tok}-${i}-end` }],
      }),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.choices[0].message.content, `ECHO: request ${tok}-${i}-end`, `answer ${i}`);
  });
  assert.equal(new Set(results.map((r) => r.id)).size, N, 'ids are unique');
  assert.equal(ctx.fake.requestsFor(tok).length, N, 'one model call per request');
});

test('20 concurrent streams each get their own answer', { timeout: 120_000 }, async () => {
  const tok = uniq('CSTR');
  const N = 20;
  const outs = await Promise.all(
    Array.from({ length: N }, async (_, i) =>
      collectStream(await ctx.client.chat.completions.create({
        model: 'fake-model', stream: true, messages: [{ role: 'user', content: `stream ${tok}-${i}-end` }],
      })),
    ),
  );
  outs.forEach((o, i) => {
    assert.equal(o.error, null, `stream ${i}: ${o.error?.message}`);
    assert.equal(o.content, `ECHO: stream ${tok}-${i}-end`, `stream ${i}`);
  });
});
