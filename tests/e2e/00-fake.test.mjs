// 00-fake: the fake model itself, alone (HTTP, official openai client) and behind the real
// Copilot runtime (bench/rtclient.mjs). Needs no gateway. Run: node --test tests/e2e/00-fake.test.mjs

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
