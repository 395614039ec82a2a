// 54-runtime-crash: the runtime child is SIGKILLed in the middle of a request. A stream that
// had started fails cleanly; a non-streamed request is retried; the gateway restarts the
// runtime (new pid, new generation), and the next request is answered correctly.

import assert from 'node:assert/strict';
import {
  useGateway, test, uniq, waitFor, collectStream, assertOpenAIError, assertNoLeaks,
} from './lib.mjs';

const ctx = useGateway();

const SLOW = { chunks: Array.from({ length: 20 }, (_, i) => `part${i} `), chunk_delay_ms: 500 };

/** Kills the runtime; waits until /readyz reports a new, ready runtime. Returns both. */
async function killRuntimeAndWait(old) {
  process.kill(old.pid, 'SIGKILL');
  const fresh = await waitFor(async () => {
    const r = await ctx.gw.readyz();
    const rt = r.body?.runtime;
    return r.status === 200 && r.body.status === 'ready' && rt?.state === 'ready' && rt.pid !== old.pid ? rt : null;
  }, { timeoutMs: 30_000, intervalMs: 100, what: 'a restarted, ready runtime in /readyz' });
  assert.notEqual(fresh.pid, old.pid, 'new runtime pid');
  assert.ok(fresh.generation > old.generation, `generation ${old.generation} -> ${fresh.generation}`);
  return fresh;
}

async function expectHealthyAnswer() {
  const tok = uniq('AFTER');
  const r = await ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `after crash ${tok}` }] });
  assert.equal(r.choices[0].message.content, `ECHO: after crash ${tok}`);
  const s = await collectStream(await ctx.client.chat.completions.create({
    model: 'fake-model', stream: true, messages: [{ role: 'user', content: `after crash stream ${tok}` }],
  }));
  assert.equal(s.error, null);
  assert.equal(s.content, `ECHO: after crash stream ${tok}`);
}

test('runtime killed mid-stream: the stream errors, the runtime comes back, the next request works', { timeout: 90_000 }, async () => {
  const tok = uniq('KILLS');
  ctx.fake.script({ rules: [{ match: tok, reply: SLOW }] });
  const old = await ctx.gw.runtime();
  assert.equal(old?.state, 'ready');

  const stream = await ctx.client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: tok }] });
  let killed = null;
  const out = await collectStream(stream, async (c) => {
    if (!killed && c.choices?.[0]?.delta?.content) {
      killed = killRuntimeAndWait(old);
      killed.catch(() => {}); /* awaited below */
    }
  });
  assert.ok(killed, 'at least one content chunk arrived before the kill');
  assert.ok(out.error, `the stream ends with an error, not silently (content: ${JSON.stringify(out.content)})`);
  assert.notEqual(out.content, SLOW.chunks.join(''), 'the answer was not completed');
  assertNoLeaks(String(out.error.message), 'stream error');
  if (out.error.error) assertOpenAIError({ error: out.error.error }, {}, 'stream error event');
  await killed;
  await expectHealthyAnswer();
});

test('runtime killed during a non-streamed request: retried, the whole answer once, then recovery', { timeout: 90_000 }, async () => {
  const tok = uniq('KILLN');
  ctx.fake.script({ rules: [{ match: tok, reply: SLOW }] });
  const old = await ctx.gw.runtime();
  assert.equal(old?.state, 'ready');

  /* Nothing had reached the client: the request is retried on the restarted runtime. */
  const pending = ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] });
  await waitFor(() => ctx.fake.requestsFor(tok).some((e) => e.outcome === 'streaming'), { what: 'the model call to be under way' });
  const killed = killRuntimeAndWait(old);
  killed.catch(() => {}); /* awaited below */
  const r = await pending;
  assert.equal(r.choices[0].message.content, SLOW.chunks.join(''), 'the retried answer, not spliced with the first attempt');
  assert.equal(ctx.fake.requestsFor(tok).length, 2, 'one model call per attempt');
  await killed;
  await expectHealthyAnswer();
});

test('runtime killed while idle: recovered before the next request', { timeout: 90_000 }, async () => {
  const old = await ctx.gw.runtime();
  await killRuntimeAndWait(old);
  await expectHealthyAnswer();
});
