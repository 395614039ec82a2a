// 60-slow-model: a model that pauses longer than the gateway's --read-timeout-s (which is for
// receiving requests) must not cut a plain or a streamed answer. Regression: libevent arms the
// read timeout on a connection once a chunked reply starts.

import assert from 'node:assert/strict';
import { useGateway, test, uniq } from './lib.mjs';

const ctx = useGateway({ args: ['--read-timeout-s', '1'] });

test('a plain answer whose first byte comes after the read timeout', { timeout: 60_000 }, async () => {
  const tok = uniq('SLOWPLAIN');
  ctx.fake.script({ rules: [{ match: tok, reply: { content: 'late but whole', first_byte_delay_ms: 2500 } }] });
  const r = await ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] });
  assert.equal(r.choices[0].message.content, 'late but whole');
});

test('a stream with pauses longer than the read timeout between chunks', { timeout: 60_000 }, async () => {
  const tok = uniq('SLOWSTREAM');
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: ['one ', 'two ', 'three'], chunk_delay_ms: 2500 } }] });
  let text = '';
  let finish = null;
  const stream = await ctx.client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: tok }] });
  for await (const ch of stream) {
    text += ch.choices[0]?.delta?.content ?? '';
    finish = ch.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, 'one two three');
  assert.equal(finish, 'stop');
});
