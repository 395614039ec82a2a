// 55-disconnect: a client that goes away mid-request. The gateway must cancel the turn: the
// model call is closed, no turn stays active, and no session directory is left behind.

import assert from 'node:assert/strict';
import { useGateway, test, uniq, waitFor, sessionDirs } from './lib.mjs';

const ctx = useGateway();

const SLOW = { chunks: Array.from({ length: 20 }, (_, i) => `part${i} `), chunk_delay_ms: 500 };

/** turns_active from /readyz, wherever the gateway puts it (top level or nested). */
async function turnsActive() {
  const { body } = await ctx.gw.readyz();
  const find = (o) => {
    if (!o || typeof o !== 'object') return undefined;
    if ('turns_active' in o) return o.turns_active;
    for (const v of Object.values(o)) {
      const f = find(v);
      if (f !== undefined) return f;
    }
    return undefined;
  };
  return find(body);
}

/** Waits until the cancelled request is cleaned up everywhere. */
async function expectCleanedUp(tok, dirsBefore) {
  await waitFor(() => ctx.fake.requestsFor(tok).every((e) => e.outcome === 'client_closed'), {
    timeoutMs: 15_000, what: 'the model call to be closed by the runtime',
  });
  await waitFor(async () => (await turnsActive()) === 0, { timeoutMs: 15_000, what: 'turns_active 0 in /readyz' });
  await waitFor(() => sessionDirs(ctx.gw.home).filter((d) => !dirsBefore.includes(d)).length === 0, {
    timeoutMs: 15_000, what: `no new session directory left under ${ctx.gw.home}/session-state`,
  });
  assert.equal(ctx.fake.requestsFor(tok).length, 1, 'the cancelled turn was not retried');
}

test('client aborts a stream after the first chunk', { timeout: 60_000 }, async () => {
  const tok = uniq('ABORTS');
  ctx.fake.script({ rules: [{ match: tok, reply: SLOW }] });
  const dirsBefore = sessionDirs(ctx.gw.home);
  const ac = new AbortController();
  const stream = await ctx.client.chat.completions.create(
    { model: 'fake-model', stream: true, messages: [{ role: 'user', content: tok }] },
    { signal: ac.signal },
  );
  let got = '';
  try {
    for await (const c of stream) {
      got += c.choices?.[0]?.delta?.content ?? '';
      if (got) ac.abort();
    }
  } catch {
    /* aborting makes the iterator throw or end; either is fine */
  }
  assert.ok(got.startsWith('part0'), `first chunk seen: ${got}`);
  await expectCleanedUp(tok, dirsBefore);
});

test('client aborts a non-streamed request while the model is answering', { timeout: 60_000 }, async () => {
  const tok = uniq('ABORTN');
  ctx.fake.script({ rules: [{ match: tok, reply: SLOW }] });
  const dirsBefore = sessionDirs(ctx.gw.home);
  const ac = new AbortController();
  const p = ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }, { signal: ac.signal });
  await waitFor(() => ctx.fake.requestsFor(tok).some((e) => e.outcome === 'streaming'), { what: 'the model call to be under way' });
  ac.abort();
  await assert.rejects(p);
  await expectCleanedUp(tok, dirsBefore);
});

test('the gateway still answers after the disconnects', { timeout: 60_000 }, async () => {
  const tok = uniq('AFTER');
  const r = await ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] });
  assert.equal(r.choices[0].message.content, `ECHO: ${tok}`);
  // The runtime session is deleted just after the answer is sent.
  await waitFor(async () => (await turnsActive()) === 0, { what: 'turns_active to return to 0' });
});
