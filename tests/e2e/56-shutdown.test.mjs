// 56-shutdown: SIGTERM while a slow streamed request is in flight. The request completes in
// full, then the gateway exits 0.

import assert from 'node:assert/strict';
import { useGateway, test, uniq, collectStream, waitFor } from './lib.mjs';

const ctx = useGateway();

test('SIGTERM drains an in-flight stream, then exits 0', { timeout: 90_000 }, async () => {
  const tok = uniq('DRAIN');
  const parts = Array.from({ length: 10 }, (_, i) => `piece${i} `);
  ctx.fake.script({ rules: [{ match: tok, reply: { chunks: parts, chunk_delay_ms: 300 } }] });
  const stream = await ctx.client.chat.completions.create({
    model: 'fake-model', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: tok }],
  });
  let signalled = false;
  let exitedWhileStreaming = false;
  const out = await collectStream(stream, (c) => {
    if (ctx.gw.exited) exitedWhileStreaming = true;
    if (!signalled && c.choices?.[0]?.delta?.content) {
      signalled = true;
      ctx.gw.kill('SIGTERM');
    }
  });
  assert.ok(signalled, 'SIGTERM was sent mid-stream');
  assert.equal(out.error, null, `stream error: ${out.error?.message}`);
  assert.equal(out.content, parts.join(''), 'the answer is complete');
  const finish = out.chunks.filter((c) => c.choices?.[0]?.finish_reason).map((c) => c.choices[0].finish_reason);
  assert.deepEqual(finish, ['stop']);
  assert.ok(out.usageChunk, 'the usage chunk still arrives');
  assert.equal(exitedWhileStreaming, false, 'the gateway did not exit before the stream ended');
  assert.equal(ctx.fake.requestsFor(tok)[0].outcome, 'complete');

  const exit = await waitFor(() => ctx.gw.exited, { timeoutMs: 30_000, what: 'the gateway to exit after draining' });
  assert.equal(exit.code, 0, `exit code (signal ${exit.signal})`);
});
