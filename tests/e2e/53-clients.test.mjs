// 53-clients: real third-party clients through the gateway: LangChain's ChatOpenAI and the
// Vercel AI SDK (chat-completions provider), plain and streamed, with usage.

import assert from 'node:assert/strict';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, streamText } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { useGateway, test, uniq, stripDatetime, textOf } from './lib.mjs';

const ctx = useGateway();

function script(tok, reply) {
  ctx.fake.script({ rules: [{ match: tok, reply }] });
}

function lastUser(tok) {
  const reqs = ctx.fake.requestsFor(tok);
  assert.equal(reqs.length, 1, `one model call for ${tok}`);
  return stripDatetime(textOf(reqs[0].body.messages.at(-1).content));
}

const langchain = () => new ChatOpenAI({
  model: 'fake-model', apiKey: 'unused', maxRetries: 0, configuration: { baseURL: ctx.gw.baseURL },
});
const aisdk = () => createOpenAI({ baseURL: ctx.gw.baseURL, apiKey: 'unused' }).chat('fake-model');

test('LangChain ChatOpenAI.invoke', { timeout: 60_000 }, async () => {
  const tok = uniq('LCI');
  script(tok, { content: 'LangChain says hi.', usage: { prompt_tokens: 13, completion_tokens: 5 } });
  const m = await langchain().invoke(`Hello from LangChain ${tok}`);
  assert.equal(m.content, 'LangChain says hi.');
  assert.equal(m.usage_metadata?.input_tokens, 13);
  assert.equal(m.usage_metadata?.output_tokens, 5);
  assert.equal(m.usage_metadata?.total_tokens, 18);
  assert.equal(lastUser(tok), `Hello from LangChain ${tok}`);
});

test('LangChain ChatOpenAI.invoke with a system message and history', { timeout: 60_000 }, async () => {
  const tok = uniq('LCH');
  script(tok, { content: 'history ok' });
  const m = await langchain().invoke([
    ['system', 'You are LC-SYS.'],
    ['human', 'first'],
    ['ai', 'first answer'],
    ['human', `second ${tok}`],
  ]);
  assert.equal(m.content, 'history ok');
  const msgs = ctx.fake.requestsFor(tok)[0].body.messages.map((x) => [x.role, stripDatetime(textOf(x.content))]);
  assert.deepEqual(msgs, [['system', 'You are LC-SYS.'], ['user', 'first'], ['assistant', 'first answer'], ['user', `second ${tok}`]]);
});

test('LangChain ChatOpenAI.stream', { timeout: 60_000 }, async () => {
  const tok = uniq('LCS');
  const parts = ['Lang', 'Chain ', 'streams ', 'fine.'];
  script(tok, { chunks: parts, chunk_delay_ms: 30 });
  let text = '';
  let n = 0;
  for await (const chunk of await langchain().stream(`stream ${tok}`)) {
    if (chunk.content) {
      text += chunk.content;
      n++;
    }
  }
  assert.equal(text, parts.join(''));
  assert.ok(n >= 2, `streamed in several chunks (${n})`);
  assert.equal(lastUser(tok), `stream ${tok}`);
});

test('AI SDK generateText (chat completions) with usage', { timeout: 60_000 }, async () => {
  const tok = uniq('AIG');
  script(tok, { content: 'Vercel says hi.', usage: { prompt_tokens: 17, completion_tokens: 4 } });
  const r = await generateText({ model: aisdk(), prompt: `Hello from the AI SDK ${tok}`, maxRetries: 0 });
  assert.equal(r.text, 'Vercel says hi.');
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.usage.inputTokens, 17);
  assert.equal(r.usage.outputTokens, 4);
  assert.equal(r.usage.totalTokens, 21);
  assert.equal(ctx.fake.requestsFor(tok)[0].path.endsWith('/chat/completions'), true);
  assert.equal(lastUser(tok), `Hello from the AI SDK ${tok}`);
});

test('AI SDK streamText with usage', { timeout: 60_000 }, async () => {
  const tok = uniq('AIS');
  const parts = ['Vercel ', 'streams ', 'too.'];
  script(tok, { chunks: parts, chunk_delay_ms: 30, usage: { prompt_tokens: 9, completion_tokens: 3 } });
  const r = streamText({ model: aisdk(), system: 'You are AI-SDK-SYS.', prompt: `stream ${tok}`, maxRetries: 0 });
  let text = '';
  let n = 0;
  for await (const p of r.textStream) {
    text += p;
    n++;
  }
  assert.equal(text, parts.join(''));
  assert.ok(n >= 2, `streamed in several parts (${n})`);
  assert.equal(await r.finishReason, 'stop');
  const usage = await r.usage;
  assert.equal(usage.inputTokens, 9);
  assert.equal(usage.outputTokens, 3);
  assert.equal(usage.totalTokens, 12);
  const body = ctx.fake.requestsFor(tok)[0].body;
  assert.equal(body.messages[0].role, 'system');
  assert.equal(body.messages[0].content, 'You are AI-SDK-SYS.');
});
