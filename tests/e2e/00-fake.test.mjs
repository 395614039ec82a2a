// 00-fake: the fake model itself, alone (HTTP, official openai client) and behind the real
// Copilot runtime (bench/rtclient.mjs). Needs no gateway. Run: node --test tests/e2e/00-fake.test.mjs

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { startFake, lastUserText, stripDatetime } from '../fake/fakemodel.mjs';
import { Runtime, RUNTIME_BIN } from '../../bench/rtclient.mjs';
import { ROOT, TINY_PNG_B64, waitFor, textOf } from './lib.mjs';

const post = (url, body) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('fake model alone', () => {
  let fake;
  let client;
  before(async () => {
    fake = await startFake();
    client = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'k', maxRetries: 0 });
  });
  after(() => fake.close());

  test('lists models in OpenAI list shape; one by id; 404 for unknown', async () => {
    const list = await (await fetch(`${fake.url}/v1/models`)).json();
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((m) => m.id), ['fake-model', 'fake-reasoner', 'fake-vision']);
    for (const m of list.data) {
      assert.equal(m.object, 'model');
      assert.equal(m.owned_by, 'fake');
      assert.equal(typeof m.created, 'number');
    }
    const one = await client.models.retrieve('fake-reasoner');
    assert.equal(one.id, 'fake-reasoner');
    await assert.rejects(client.models.retrieve('nope'), (e) => e.status === 404 && e.code === 'model_not_found');
  });

  test('control API: /_models, /_script, /_log, /_reset', async () => {
    assert.equal((await post(`${fake.url}/_models`, { data: [{ id: 'm1' }, 'm2'] })).status, 200);
    const list = await (await fetch(`${fake.url}/v1/models`)).json();
    assert.deepEqual(list.data.map((m) => m.id), ['m1', 'm2']);
    assert.equal(list.data[0].object, 'model');
    fake.setModels(['fake-model', 'fake-reasoner', 'fake-vision']);

    await post(`${fake.url}/_script`, { rules: [{ match: 'CTRL1', reply: { content: 'scripted-over-http' } }] });
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x CTRL1' }] });
    assert.equal(r.choices[0].message.content, 'scripted-over-http');
    const log = await (await fetch(`${fake.url}/_log`)).json();
    const e = log.at(-1);
    assert.equal(e.body.messages[0].content, 'x CTRL1');
    assert.equal(e.headers.authorization, 'Bearer k');
    assert.equal(e.source, 'rule:CTRL1');
    assert.equal(e.outcome, 'complete');
    assert.equal((await post(`${fake.url}/_reset`, {})).status, 200);
    assert.deepEqual(await (await fetch(`${fake.url}/_log`)).json(), []);
    const again = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x CTRL1' }] });
    assert.equal(again.choices[0].message.content, 'ECHO: x CTRL1', 'reset clears rules');
  });

  /* Reply selection, as data: script, then the sequence of last-user texts and the answers. */
  const selection = [
    {
      name: 'persistent rule answers every match',
      script: { rules: [{ match: 'P1', reply: { content: 'p' } }] },
      turns: [['a P1', 'p'], ['b P1', 'p'], ['c', 'ECHO: c']],
    },
    {
      name: 'once rule is consumed',
      script: { rules: [{ match: 'O1', once: true, reply: { content: 'o' } }] },
      turns: [['O1', 'o'], ['O1', 'ECHO: O1']],
    },
    {
      name: 'times=2 rule serves twice',
      script: { rules: [{ match: 'T2', reply: { content: 't', times: 2 } }] },
      turns: [['T2', 't'], ['T2', 't'], ['T2', 'ECHO: T2']],
    },
    {
      name: 'first matching rule wins; queue is FIFO after rules; default echoes',
      script: {
        rules: [{ match: 'AB', reply: { content: 'ab' } }, { match: 'A', reply: { content: 'a' } }],
        queue: [{ content: 'q1' }, { content: 'q2', times: 2 }],
      },
      turns: [['xABx', 'ab'], ['xAx', 'a'], ['z', 'q1'], ['z', 'q2'], ['z', 'q2'], ['z', 'ECHO: z']],
    },
    {
      name: 'datetime prefix is stripped before matching and echoing; only the last user message counts',
      script: { rules: [{ match: 'LAST', reply: { content: 'last' } }] },
      messages: (text) => [
        { role: 'user', content: 'LAST in an earlier message' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: `<current_datetime>2026-01-01T00:00:00.000+00:00</current_datetime>\n\n${text}` },
      ],
      turns: [['hello', 'ECHO: hello'], ['LAST', 'last']],
    },
    {
      name: 'content arrays: text parts are joined',
      script: {},
      messages: (text) => [{ role: 'user', content: [{ type: 'text', text }, { type: 'text', text: 'part2' }] }],
      turns: [['part1', 'ECHO: part1\npart2']],
    },
  ];
  for (const c of selection) {
    test(`selection: ${c.name}`, async () => {
      fake.reset();
      fake.script(c.script);
      for (const [text, want] of c.turns) {
        const messages = c.messages ? c.messages(text) : [{ role: 'user', content: text }];
        const r = await client.chat.completions.create({ model: 'fake-model', messages });
        assert.equal(r.choices[0].message.content, want, `reply to ${JSON.stringify(text)}`);
      }
    });
  }

  test('non-streamed completion: shape, reasoning, usage given and computed', async () => {
    fake.reset();
    fake.script({ rules: [
      { match: 'NS1', reply: { content: 'hello', reasoning: 'because', usage: { prompt_tokens: 11, completion_tokens: 7 } } },
    ] });
    const r = await client.chat.completions.create({ model: 'fake-reasoner', messages: [{ role: 'user', content: 'NS1' }] });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'fake-reasoner');
    assert.equal(typeof r.created, 'number');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.reasoning_content, 'because');
    assert.equal(r.usage.prompt_tokens, 11);
    assert.equal(r.usage.completion_tokens, 7);
    assert.equal(r.usage.total_tokens, 18);

    /* Default usage: prompt = ceil(chars of all message texts / 4), completion = ceil(chars / 4). */
    const d = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'system', content: 'abcd' }, { role: 'user', content: '12345' }] });
    assert.equal(d.choices[0].message.content, 'ECHO: 12345');
    assert.equal(d.usage.prompt_tokens, Math.ceil(9 / 4));
    assert.equal(d.usage.completion_tokens, Math.ceil('ECHO: 12345'.length / 4));
  });

  test('streamed completion: role first, chunks in order, finish, usage chunk, [DONE]', async () => {
    fake.reset();
    fake.script({ rules: [{ match: 'ST1', reply: { chunks: ['a', 'b', 'c'], reasoning: ['r1', 'r2'], usage: { prompt_tokens: 3, completion_tokens: 4 } } }] });
    const res = await post(`${fake.url}/v1/chat/completions`, {
      model: 'fake-model', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'ST1' }],
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const lines = (await res.text()).split('\n\n').filter(Boolean);
    assert.equal(lines.at(-1), 'data: [DONE]');
    const chunks = lines.slice(0, -1).map((l) => JSON.parse(l.replace(/^data: /, '')));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.deepEqual(chunks.map((c) => c.choices[0]?.delta?.reasoning_content).filter(Boolean), ['r1', 'r2']);
    assert.deepEqual(chunks.map((c) => c.choices[0]?.delta?.content).filter(Boolean), ['a', 'b', 'c']);
    const fin = chunks.at(-2);
    assert.equal(fin.choices[0].finish_reason, 'stop');
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.total_tokens, 7);
    for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');

    /* Without include_usage there is no usage chunk; the openai client consumes it. */
    const s = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'ST1' }] });
    let text = '';
    let sawUsage = false;
    for await (const c of s) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) sawUsage = true;
    }
    assert.equal(text, 'abc');
    assert.equal(sawUsage, false);
  });

  test('tool calls, streamed and not', async () => {
    fake.reset();
    fake.script({ rules: [{ match: 'TC1', reply: { tool_calls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }] } }] });
    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'TC1' }] });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(r.choices[0].message.tool_calls, [
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
    ]);
    const s = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'TC1' }] });
    const final = await s.finalChatCompletion?.().catch(() => null);
    if (!final) {
      /* Older clients: assemble by hand. */
      const s2 = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'TC1' }] });
      let args = '';
      let finish = null;
      for await (const c of s2) {
        for (const t of c.choices[0]?.delta?.tool_calls ?? []) args += t.function?.arguments ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(args, '{"city":"Paris"}');
      assert.equal(finish, 'tool_calls');
    }
  });

  test('error replies: status, OpenAI body, headers; times', async () => {
    fake.reset();
    fake.script({ rules: [
      { match: 'E429', reply: { status: 429, headers: { 'retry-after': '1' }, times: 1 } },
      { match: 'E400', reply: { status: 400, error_body: { error: { message: 'context too long', type: 'invalid_request_error', param: null, code: 'context_length_exceeded' } } } },
    ] });
    const r1 = await post(`${fake.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'user', content: 'E429' }] });
    assert.equal(r1.status, 429);
    assert.equal(r1.headers.get('retry-after'), '1');
    assert.equal((await r1.json()).error.type, 'invalid_request_error');
    const r2 = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'E429' }] });
    assert.equal(r2.choices[0].message.content, 'ECHO: E429', 'times:1 error is served once');
    await assert.rejects(
      client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'E400' }] }),
      (e) => e.status === 400 && e.code === 'context_length_exceeded' && /context too long/.test(e.message),
    );
    const bad = await fetch(`${fake.url}/v1/chat/completions`, { method: 'POST', body: '{nope' });
    assert.equal(bad.status, 400);
  });

  test('hang: no answer until the client goes away, which the log records', async () => {
    fake.reset();
    fake.script({ rules: [{ match: 'HANG1', reply: { hang: true } }] });
    const ac = new AbortController();
    const p = client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'HANG1' }] }, { signal: ac.signal });
    await waitFor(() => fake.requestsFor('HANG1').length === 1, { what: 'request logged' });
    assert.equal(fake.requestsFor('HANG1')[0].outcome, 'pending');
    ac.abort();
    await assert.rejects(p);
    await waitFor(() => fake.requestsFor('HANG1')[0].outcome === 'client_closed', { what: 'client_closed outcome' });
  });

  test('slow stream: chunks arrive one by one; cut_after drops the connection', async () => {
    fake.reset();
    fake.script({ rules: [
      { match: 'SLOW1', reply: { chunks: ['1', '2', '3'], chunk_delay_ms: 100 } },
      { match: 'CUT1', reply: { chunks: ['1', '2', '3', '4'], cut_after: 2 } },
    ] });
    const s = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'SLOW1' }] });
    /* Each content chunk is observed while the request is still streaming. */
    const seen = [];
    for await (const c of s) {
      const d = c.choices[0]?.delta?.content;
      if (d) seen.push([d, fake.requestsFor('SLOW1')[0].outcome]);
    }
    assert.deepEqual(seen, [['1', 'streaming'], ['2', 'streaming'], ['3', 'streaming']]);

    const cut = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'CUT1' }] });
    let text = '';
    let threw = false;
    try {
      for await (const c of cut) text += c.choices[0]?.delta?.content ?? '';
    } catch {
      threw = true;
    }
    assert.equal(text, '12');
    assert.ok(threw, 'a cut stream is an error for the client');
    assert.equal(fake.requestsFor('CUT1')[0].outcome, 'cut');
  });

  test('CLI: prints the listening line and serves', async () => {
    const child = spawn(process.execPath, ['tests/fake/fakemodel.mjs', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(out.split('\n')[0]);
        });
        child.on('exit', (c) => reject(new Error(`fakemodel exited ${c}`)));
      });
      const m = /^fakemodel listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      assert.ok(m, `listening line: ${line}`);
      const list = await (await fetch(`${m[1]}/v1/models`)).json();
      assert.equal(list.data[0].id, 'fake-model');
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('helpers: lastUserText and stripDatetime', () => {
    assert.equal(stripDatetime('<current_datetime>x</current_datetime>\n\nhi'), 'hi');
    assert.equal(stripDatetime('hi <current_datetime>x</current_datetime>\n\n'), 'hi <current_datetime>x</current_datetime>\n\n');
    assert.equal(lastUserText({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }), 'a');
    assert.equal(lastUserText({}), '');
  });
});

describe('fake model behind the real Copilot runtime', { skip: !existsSync(RUNTIME_BIN) && `no runtime at ${RUNTIME_BIN}` }, () => {
  let fake;
  let rt;
  let providerUrl;
  before(async () => {
    fake = await startFake();
    providerUrl = `${fake.url}/v1`;
    rt = await Runtime.start();
  });
  after(async () => {
    await rt?.stop();
    await fake?.close();
  });

  test('plain turn: default echo; request shape; datetime prefix', { timeout: 60_000 }, async () => {
    const r = await rt.turn({ providerUrl, prompt: 'hello PLAIN1', system: 'SYS line1\nline2' });
    assert.equal(r.error, null);
    assert.equal(r.content, 'ECHO: hello PLAIN1');
    const [e] = fake.requestsFor('PLAIN1');
    assert.equal(e.source, 'default');
    assert.equal(e.body.model, 'fake-model');
    assert.equal(e.body.stream, true);
    assert.deepEqual(e.body.stream_options, { include_usage: true });
    assert.equal(e.body.tools, undefined, 'no tools with availableTools:[]');
    assert.deepEqual(e.body.messages.map((m) => m.role), ['system', 'user']);
    assert.equal(e.body.messages[0].content, 'SYS line1\nline2');
    assert.match(e.body.messages[1].content, /^<current_datetime>[^<]+<\/current_datetime>\n\nhello PLAIN1$/);
    assert.equal(e.headers.authorization, 'Bearer k');
    assert.equal(e.headers['x-initiator'], 'user');
    assert.equal(e.outcome, 'complete');
  });

  test('streamed deltas, reasoning and usage reach the runtime', { timeout: 60_000 }, async () => {
    fake.script({ rules: [{ match: 'STREAM2', reply: {
      chunks: ['one ', 'two ', 'three'], chunk_delay_ms: 50, reasoning: ['think ', 'hard'],
      usage: { prompt_tokens: 11, completion_tokens: 7 },
    } }] });
    const r = await rt.turn({ providerUrl, prompt: 'STREAM2' });
    assert.equal(r.error, null);
    assert.deepEqual(r.deltas, ['one ', 'two ', 'three']);
    assert.equal(r.content, 'one two three');
    assert.deepEqual(r.reasoningDeltas, ['think ', 'hard']);
    assert.equal(r.reasoning, 'think hard');
    assert.equal(r.usage.inputTokens, 11);
    assert.equal(r.usage.outputTokens, 7);
  });

  test('non-streamed session: reasoning_content and content', { timeout: 60_000 }, async () => {
    fake.script({ rules: [{ match: 'NOSTREAM3', reply: { content: 'plain answer', reasoning: 'quiet thought' } }] });
    const r = await rt.turn({ providerUrl, prompt: 'NOSTREAM3', streaming: false });
    assert.equal(r.error, null);
    assert.equal(fake.requestsFor('NOSTREAM3')[0].body.stream, undefined);
    assert.equal(r.content, 'plain answer');
    assert.equal(r.reasoning, 'quiet thought');
  });

  test('response_format, reasoning_effort and an image attachment reach the fake', { timeout: 60_000 }, async () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };
    const r = await rt.turn({
      providerUrl, prompt: 'what is this IMG4', reasoningEffort: 'high',
      responseFormat: { type: 'json_schema', jsonSchema: { name: 'out', schema, strict: true } },
      attachments: [{ type: 'blob', data: TINY_PNG_B64, mimeType: 'image/png', displayName: 'px.png' }],
    });
    assert.equal(r.error, null);
    const [e] = fake.requestsFor('IMG4');
    assert.deepEqual(e.body.response_format, { type: 'json_schema', json_schema: { name: 'out', schema, strict: true } });
    assert.equal(e.body.reasoning_effort, 'high');
    const user = e.body.messages.at(-1);
    assert.ok(Array.isArray(user.content), 'image turns send a content array');
    const img = user.content.find((p) => p.type === 'image_url');
    assert.ok(img, 'an image_url part');
    assert.equal(img.image_url.url, `data:image/png;base64,${TINY_PNG_B64}`);
    assert.match(textOf(user.content), /what is this IMG4/);
  });

  test('provider 400 is not retried and becomes session.error', { timeout: 60_000 }, async () => {
    fake.script({ rules: [{ match: 'BAD5', reply: { status: 400, error_body: { error: { message: 'fake 400 error', type: 'invalid_request_error', param: null, code: null } } } }] });
    const r = await rt.turn({ providerUrl, prompt: 'BAD5' });
    assert.equal(r.error?.statusCode, 400);
    assert.match(r.error.message, /fake 400 error/);
    assert.equal(fake.requestsFor('BAD5').length, 1);
  });

  test('provider 429 once with retry-after:1 is retried, then answered', { timeout: 60_000 }, async () => {
    fake.script({ rules: [{ match: 'RATE6', reply: { status: 429, headers: { 'retry-after': '1' }, times: 1 } }] });
    const r = await rt.turn({ providerUrl, prompt: 'RATE6' });
    assert.equal(r.error, null);
    assert.equal(r.content, 'ECHO: RATE6');
    assert.deepEqual(fake.requestsFor('RATE6').map((e) => e.source), ['rule:RATE6', 'default']);
  });

  test('abort while the provider hangs closes the provider connection', { timeout: 60_000 }, async () => {
    fake.script({ rules: [{ match: 'HANG7', reply: { hang: true } }] });
    let idle;
    const done = new Promise((resolve) => {
      idle = resolve;
    });
    const sessionId = await rt.createSession({ providerUrl, onEvent: (ev) => ev.type === 'session.idle' && idle(ev.data) });
    try {
      await rt.request('session.send', { sessionId, prompt: 'HANG7' });
      await waitFor(() => fake.requestsFor('HANG7').length === 1, { what: 'hanging request reaches the fake' });
      await rt.request('session.abort', { sessionId });
      const data = await done;
      assert.equal(data.aborted, true);
      await waitFor(() => fake.requestsFor('HANG7')[0].outcome === 'client_closed', { what: 'provider connection closed' });
    } finally {
      rt.listen(sessionId, null);
      await rt.request('session.delete', { sessionId }).catch(() => {});
    }
  });
});

describe('fake model: rules on the last message, tool-call streaming', () => {
  let fake;
  let client;
  before(async () => {
    fake = await startFake();
    client = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'k', maxRetries: 0 });
  });
  after(() => fake.close());

  const toolTurn = (userText, toolResults) => [
    { role: 'user', content: `<current_datetime>2026-01-01T00:00:00.000+00:00</current_datetime>\n\n${userText}` },
    { role: 'assistant', content: null, tool_calls: toolResults.map(([id]) => ({ id, type: 'function', function: { name: 'f', arguments: '{}' } })) },
    ...toolResults.map(([id, content]) => ({ role: 'tool', tool_call_id: id, content })),
  ];

  test('on: user (default) / prompt / last / tool and the shorthands; log fields', async () => {
    fake.script({ rules: [
      { match_prompt: 'LST1', reply: { content: 'calls' } },
      { match_tool: 'RESULT-LST1', reply: { content: 'after tool' } },
      { match: 'USR1', reply: { content: 'user rule' } },
      { match: 'ANYTOOL', on: 'tool', reply: { content: 'tool rule' } },
      { match_last: 'LASTANY', reply: { content: 'last rule' } },
    ] });
    const ask = async (messages) => (await client.chat.completions.create({ model: 'fake-model', messages })).choices[0].message.content;
    assert.equal(await ask([{ role: 'user', content: '<current_datetime>x</current_datetime>\n\nq LST1' }]), 'calls', 'on:prompt sees the user prompt (prefix stripped)');
    assert.equal(await ask(toolTurn('q LST1', [['c1', 'RESULT-LST1 ok']])), 'after tool', 'on:prompt does not fire once a tool result follows');
    assert.equal(await ask(toolTurn('q', [['c1', 'x'], ['c2', 'y ANYTOOL']])), 'tool rule', 'on:tool sees any trailing tool message');
    assert.equal(await ask(toolTurn('q', [['c1', 'LASTANY'], ['c2', 'y']])), 'ECHO: q', 'on:last sees only the very last message');
    assert.equal(await ask(toolTurn('q', [['c1', 'x'], ['c2', 'LASTANY']])), 'last rule', 'on:last sees a tool message');
    assert.equal(await ask([{ role: 'user', content: 'q' }, { role: 'assistant', content: 'LASTANY' }]), 'last rule', 'on:last sees an assistant message');
    assert.equal(await ask([...toolTurn('q', [['c1', 'ANYTOOL']]), { role: 'user', content: 'next' }]), 'ECHO: next', 'on:tool needs a tool message last');
    assert.equal(await ask(toolTurn('q USR1', [['c1', 'whatever']])), 'user rule', 'on:user still sees the last user message');
    const e = fake.log().at(-1);
    assert.equal(e.last_role, 'tool');
    assert.equal(e.last_text, 'whatever');
    assert.equal(e.last_user_text, 'q USR1');
    assert.equal(e.source, 'rule:USR1');
    assert.equal(fake.requestsForLast('RESULT-LST1').length, 1);
    assert.equal(fake.requestsForLast('RESULT-LST1')[0].source, 'rule:tool:RESULT-LST1');
    assert.throws(() => fake.script({ rules: [{ match: 'x', on: 'nope', reply: {} }] }), /on must be/);
    assert.throws(() => fake.script({ rules: [{ on: 'last', reply: {} }] }), /non-empty string match/);
    assert.throws(() => fake.script({ rules: [{ match_prompt: '', reply: {} }] }), /non-empty string match/);
  });

  test('tool calls: content first, id/type/name on the first piece, arguments in pieces, finish tool_calls', async () => {
    fake.script({ rules: [{ match: 'TCS2', reply: {
      content: 'Let me check.',
      tool_calls: [
        { id: 'call_a', name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } },
        { id: 'call_b', name: 'get_time', arguments_chunks: ['{"tz":', '"Europe/', 'Paris"}'] },
      ],
    } }] });
    const s = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'TCS2' }] });
    const deltas = [];
    let content = '';
    let finish = null;
    for await (const c of s) {
      const d = c.choices[0]?.delta;
      if (d?.content) {
        assert.equal(deltas.length, 0, 'content comes before the tool calls');
        content += d.content;
      }
      for (const t of d?.tool_calls ?? []) deltas.push(t);
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(content, 'Let me check.');
    assert.equal(finish, 'tool_calls');
    const byIndex = (i) => deltas.filter((t) => t.index === i);
    const a = byIndex(0);
    assert.deepEqual(a[0], { index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } });
    assert.ok(a.length >= 3, `arguments come in several pieces (${a.length - 1})`);
    for (const p of a.slice(1)) assert.equal(p.id, undefined, 'id only on the first piece');
    assert.deepEqual(JSON.parse(a.map((p) => p.function.arguments).join('')), { city: 'Paris', unit: 'celsius' });
    const b = byIndex(1);
    assert.deepEqual(b.slice(1).map((p) => p.function.arguments), ['{"tz":', '"Europe/', 'Paris"}']);
    assert.ok(deltas.indexOf(b[0]) > deltas.indexOf(a.at(-1)), 'call 1 follows call 0');

    const r = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'TCS2' }] });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(r.choices[0].message.content, 'Let me check.');
    assert.deepEqual(r.choices[0].message.tool_calls.map((t) => [t.id, t.type, t.function.name, JSON.parse(t.function.arguments)]), [
      ['call_a', 'function', 'get_weather', { city: 'Paris', unit: 'celsius' }],
      ['call_b', 'function', 'get_time', { tz: 'Europe/Paris' }],
    ]);
  });

  test('the SDK stream helper assembles the streamed tool calls', async () => {
    fake.script({ rules: [{ match: 'TCS3', reply: { tool_calls: [{ id: 'call_z', name: 'lookup', arguments: { q: 'a longer query string' } }], tool_args_pieces: 5 } }] });
    const final = await client.chat.completions.stream({ model: 'fake-model', messages: [{ role: 'user', content: 'TCS3' }] }).finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(final.choices[0].message.tool_calls[0].id, 'call_z');
    assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { q: 'a longer query string' });
  });
});

describe('fake tool calls behind the real Copilot runtime', { skip: !existsSync(RUNTIME_BIN) && `no runtime at ${RUNTIME_BIN}` }, () => {
  let fake;
  let rt;
  let providerUrl;
  before(async () => {
    fake = await startFake();
    providerUrl = `${fake.url}/v1`;
    rt = await Runtime.start();
  });
  after(async () => {
    await rt?.stop();
    await fake?.close();
  });

  const TOOLS = [
    { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, skipPermission: true },
    { name: 'get_time', description: 'Time in a zone', parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] }, skipPermission: true },
  ];

  /** A session with client tools; returns {sessionId, events, waitEvent(pred), idle}. */
  async function toolSession() {
    const events = [];
    const waiters = [];
    const onEvent = (ev) => {
      events.push(ev);
      for (const w of [...waiters]) {
        if (w.pred(ev)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(ev);
        }
      }
    };
    const sessionId = randomUUID();
    rt.listen(sessionId, onEvent);
    await rt.request('session.create', {
      sessionId, model: 'fake-model', clientName: 'gw-test',
      provider: { type: 'openai', baseUrl: providerUrl, apiKey: 'k' },
      systemMessage: { mode: 'replace', content: 'SYS' },
      tools: TOOLS, availableTools: TOOLS.map((t) => t.name),
      streaming: true, infiniteSessions: { enabled: false }, requestPermission: false,
      envValueMode: 'direct', workingDirectory: rt.home,
    });
    const waitEvent = (pred, what) => {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return Promise.race([
        new Promise((resolve) => waiters.push({ pred, resolve })),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000).unref()),
      ]);
    };
    const close = async () => {
      rt.listen(sessionId, null);
      await rt.request('session.delete', { sessionId }).catch(() => {});
    };
    return { sessionId, events, waitEvent, close };
  }

  test('tool_calls reply → external_tool.requested with the same toolCallId; result → agent follow-up', { timeout: 60_000 }, async () => {
    fake.script({ rules: [
      { match_prompt: 'RTTOOL1', reply: { content: 'Checking.', tool_calls: [{ id: 'call_RT1', name: 'get_weather', arguments: { city: 'Oslo' } }] } },
      { match_tool: 'RESULT-RTTOOL1', reply: { content: 'It is RESULT-RTTOOL1 in Oslo.' } },
    ] });
    const s = await toolSession();
    try {
      await rt.request('session.send', { sessionId: s.sessionId, prompt: 'weather? RTTOOL1' });
      const req = await s.waitEvent((e) => e.type === 'external_tool.requested', 'external_tool.requested');
      assert.equal(req.data.toolCallId, 'call_RT1');
      assert.equal(req.data.toolName, 'get_weather');
      assert.deepEqual(req.data.arguments, { city: 'Oslo' });
      const deltas = s.events.filter((e) => e.type === 'assistant.tool_call_delta');
      assert.ok(deltas.length >= 2, `the arguments reach the runtime in pieces (${deltas.length} deltas)`);
      assert.equal(deltas.map((e) => e.data.inputDelta ?? '').join(''), '{"city":"Oslo"}');
      const msg = s.events.find((e) => e.type === 'assistant.message');
      assert.equal(msg.data.content, 'Checking.');
      assert.equal(msg.data.toolRequests[0].toolCallId, 'call_RT1');

      assert.deepEqual(await rt.request('session.tools.handlePendingToolCall', { sessionId: s.sessionId, requestId: req.data.requestId, result: 'RESULT-RTTOOL1: snow' }), { success: true });
      await s.waitEvent((e) => e.type === 'session.idle', 'session.idle');
      const final = s.events.filter((e) => e.type === 'assistant.message').at(-1);
      assert.equal(final.data.content, 'It is RESULT-RTTOOL1 in Oslo.');

      const reqs = fake.requestsFor('RTTOOL1');
      assert.equal(reqs.length, 2);
      assert.equal(reqs[0].headers['x-initiator'], 'user');
      assert.equal(reqs[1].headers['x-initiator'], 'agent');
      assert.deepEqual(reqs[0].body.tools.map((t) => t.function.name), ['get_weather', 'get_time']);
      const tail = reqs[1].body.messages.slice(-2);
      assert.equal(tail[0].role, 'assistant');
      assert.deepEqual(tail[0].tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]), [['call_RT1', 'get_weather', { city: 'Oslo' }]]);
      assert.equal(tail[1].role, 'tool');
      assert.equal(tail[1].tool_call_id, 'call_RT1');
      assert.equal(tail[1].content, 'RESULT-RTTOOL1: snow');
      assert.equal(reqs[1].source, 'rule:tool:RESULT-RTTOOL1');
    } finally {
      await s.close();
    }
  });

  test('two parallel calls: both requested; answered in call order, one follow-up with both results', { timeout: 60_000 }, async () => {
    fake.script({ rules: [
      { match_prompt: 'RTPAR2', reply: { tool_calls: [
        { id: 'call_P1', name: 'get_weather', arguments: { city: 'Rome' } },
        { id: 'call_P2', name: 'get_time', arguments: { tz: 'Europe/Rome' } },
      ] } },
      { match_tool: 'RESULT-RTPAR2', reply: { content: 'both done' } },
    ] });
    const s = await toolSession();
    try {
      await rt.request('session.send', { sessionId: s.sessionId, prompt: 'RTPAR2' });
      await waitFor(() => s.events.filter((e) => e.type === 'external_tool.requested').length === 2, { timeoutMs: 30_000, what: 'two external_tool.requested' });
      const reqs = s.events.filter((e) => e.type === 'external_tool.requested');
      assert.deepEqual(reqs.map((e) => e.data.toolCallId), ['call_P1', 'call_P2']);
      for (const r of reqs) {
        await rt.request('session.tools.handlePendingToolCall', { sessionId: s.sessionId, requestId: r.data.requestId, result: `RESULT-RTPAR2 for ${r.data.toolCallId}` });
      }
      await s.waitEvent((e) => e.type === 'session.idle', 'session.idle');
      const model = fake.requestsFor('RTPAR2');
      assert.equal(model.length, 2);
      const tools = model[1].body.messages.filter((m) => m.role === 'tool');
      assert.deepEqual(tools.map((m) => [m.tool_call_id, m.content]), [
        ['call_P1', 'RESULT-RTPAR2 for call_P1'], ['call_P2', 'RESULT-RTPAR2 for call_P2'],
      ]);
    } finally {
      await s.close();
    }
  });
});
