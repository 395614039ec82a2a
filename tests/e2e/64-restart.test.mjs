// 64-restart: sessions survive a gateway restart and a runtime crash. The session map lives in
// SQLite under --data; a request that extends a recorded conversation resumes its runtime
// session (session.resume) instead of reseeding it, and the model sees the whole history.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake } from '../fake/fakemodel.mjs';
import { startGateway, openaiClient, test, uniq, waitFor, metrics } from './lib.mjs';

const STRIP = (s) => (typeof s === 'string' ? s.replace(/^<current_datetime>.*?<\/current_datetime>\n\n/s, '') : s);
let fake;
let dir;

before(async () => {
  fake = await startFake();
  dir = mkdtempSync(join(tmpdir(), 'gw-restart-'));
});
after(async () => {
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A gateway on a fixed --home/--data, so a second one finds the first one's sessions. */
const gateway = (name) => startGateway({ fake, args: ['--home', join(dir, name, 'home'), '--data', join(dir, name, 'data')] });

function delta(before, after, name) {
  return (after[`copilot_gateway_sessions_${name}`] ?? 0) - (before[`copilot_gateway_sessions_${name}`] ?? 0);
}

async function turn(client, messages, tok) {
  messages.push({ role: 'user', content: tok });
  const r = await client.chat.completions.create({ model: 'fake-model', messages });
  assert.equal(r.choices[0].message.content, `ECHO: ${tok}`);
  messages.push({ role: 'assistant', content: r.choices[0].message.content });
}

function sawWholeHistory(messages, tok) {
  const [req] = fake.requestsFor(tok);
  assert.ok(req, 'the model was called');
  assert.deepEqual(
    req.body.messages.map((m) => [m.role, STRIP(m.content)]),
    messages.slice(0, -1).map((m) => [m.role, m.content]),
    'the model received the whole conversation, in order',
  );
}

test('a gateway restart mid-conversation resumes the session, not reseeds it', { timeout: 120_000 }, async () => {
  const messages = [{ role: 'system', content: 'You are terse.' }];
  let gw = await gateway('a');
  await turn(openaiClient(gw), messages, uniq('R1'));
  await turn(openaiClient(gw), messages, uniq('R2'));
  assert.equal(await gw.stop(), 0);

  gw = await gateway('a');
  try {
    const before = await metrics(gw);
    const tok = uniq('R3');
    await turn(openaiClient(gw), messages, tok);
    const after = await metrics(gw);
    assert.equal(delta(before, after, 'resumed_total'), 1, 'resumed');
    assert.equal(delta(before, after, 'seeded_total'), 0, 'not reseeded');
    sawWholeHistory(messages, tok);
    // ... and the resumed session is live again: the next turn reuses it.
    const b2 = await metrics(gw);
    await turn(openaiClient(gw), messages, uniq('R4'));
    const a2 = await metrics(gw);
    assert.equal(delta(b2, a2, 'reused_total'), 1);
    assert.equal(delta(b2, a2, 'created_total'), 0);
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('after the runtime is killed, an idle conversation resumes in the new runtime', { timeout: 120_000 }, async () => {
  const gw = await gateway('b');
  try {
    const client = openaiClient(gw);
    const messages = [{ role: 'system', content: 'S' }];
    await turn(client, messages, uniq('K1'));
    const rt = (await gw.readyz()).body.runtime;
    process.kill(rt.pid, 'SIGKILL');
    await waitFor(async () => {
      const r = await gw.readyz();
      return r.status === 200 && r.body.runtime.generation > rt.generation;
    }, { timeoutMs: 30_000, what: 'the runtime to restart' });
    const before = await metrics(gw);
    const tok = uniq('K2');
    await turn(client, messages, tok);
    const after = await metrics(gw);
    assert.equal(delta(before, after, 'resumed_total'), 1, 'resumed');
    assert.equal(delta(before, after, 'seeded_total'), 0, 'not reseeded');
    sawWholeHistory(messages, tok);
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('an edited history after a restart is reseeded, and stale session files are swept at start', { timeout: 120_000 }, async () => {
  const messages = [{ role: 'system', content: 'S' }];
  let gw = await gateway('c');
  await turn(openaiClient(gw), messages, uniq('E1'));
  assert.equal(await gw.stop(), 0);
  gw = await gateway('c');
  try {
    const before = await metrics(gw);
    messages[1].content = uniq('E1-edited');
    const tok = uniq('E2');
    await turn(openaiClient(gw), messages, tok);
    const after = await metrics(gw);
    assert.equal(delta(before, after, 'resumed_total'), 0);
    assert.equal(delta(before, after, 'seeded_total'), 1);
    sawWholeHistory(messages, tok);
  } finally {
    assert.equal(await gw.stop(), 0);
  }
  // Every session directory left on disk is one the session map can resume.
  const state = join(dir, 'c', 'home', 'session-state');
  const dirs = existsSync(state) ? readdirSync(state).filter((d) => !d.startsWith('.')) : [];
  gw = await gateway('c');
  try {
    const list = () => (existsSync(state) ? readdirSync(state).filter((d) => !d.startsWith('.')) : []);
    // The start-up warm-up turn's own session directory may still be there for a moment
    // after readiness (it is deleted once the turn is over): wait for the steady state.
    await waitFor(() => list().length <= dirs.length, { what: 'the warm-up session to be deleted' });
    const kept = list();
    assert.ok(kept.length >= 1, 'the idle session of the last turn is kept for resuming');
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});
