// 65-pool: a pool of runtime processes. Sessions spread over the processes; killing one loses no
// conversation (its idle sessions resume elsewhere, the others are reseeded); a process past its
// session budget is drained and restarted while every conversation keeps its right answers.

import assert from 'node:assert/strict';
import { useGateway, test, uniq, waitFor, metrics } from './lib.mjs';

const ctx = useGateway({ args: ['--runtime-pool', '2', '--runtime-recycle-sessions', '6'] });

const readyPool = async () => {
  const r = await ctx.gw.readyz();
  return r.status === 200 && r.body.runtimes.every((x) => x.state === 'ready') ? r.body.runtimes : null;
};

async function turn(conv, tag) {
  const tok = uniq(tag);
  conv.push({ role: 'user', content: tok });
  const r = await ctx.client.chat.completions.create({ model: 'fake-model', messages: conv });
  assert.equal(r.choices[0].message.content, `ECHO: ${tok}`, 'each answer is its own');
  conv.push({ role: 'assistant', content: r.choices[0].message.content });
  const [req] = ctx.fake.requestsFor(tok);
  assert.equal(req.body.messages.length, conv.length - 1, 'the model saw the whole conversation');
}

test('two runtime processes serve, and new sessions go to the least loaded', { timeout: 60_000 }, async () => {
  await waitFor(readyPool, { timeoutMs: 30_000, what: 'both runtimes ready' });
  const pool = await readyPool();
  assert.equal(pool.length, 2);
  assert.notEqual(pool[0].pid, pool[1].pid);
  const convs = Array.from({ length: 4 }, () => [{ role: 'system', content: 'S' }]);
  await Promise.all(convs.map((c, i) => turn(c, `SPREAD${i}`)));
  const after = (await ctx.gw.readyz()).body.runtimes;
  assert.ok(after.every((x) => x.sessions >= 1), `sessions on both: ${JSON.stringify(after)}`);
});

test('killing one of two runtimes loses no conversation', { timeout: 90_000 }, async () => {
  await waitFor(readyPool, { timeoutMs: 30_000, what: 'both runtimes ready' });
  const convs = Array.from({ length: 6 }, () => [{ role: 'system', content: 'S' }]);
  await Promise.all(convs.map((c, i) => turn(c, `KILL${i}`)));
  const pool = await readyPool();
  const victim = pool.reduce((a, b) => (b.sessions > a.sessions ? b : a));
  process.kill(victim.pid, 'SIGKILL');
  // Every conversation goes on right away: the other process takes the requests.
  for (let round = 0; round < 2; round++) {
    await Promise.all(convs.map((c, i) => turn(c, `AFTER${round}-${i}`)));
  }
  await waitFor(async () => {
    const r = await ctx.gw.readyz();
    return r.body.runtimes.every((x) => x.state === 'ready') &&
      r.body.runtimes.some((x) => x.generation > 1);
  }, { timeoutMs: 30_000, what: 'the killed runtime to be back' });
});

test('a runtime past its session budget is drained and restarted; conversations move by resuming', { timeout: 120_000 }, async () => {
  await waitFor(readyPool, { timeoutMs: 30_000, what: 'both runtimes ready' });
  const gens = (await readyPool()).map((x) => x.generation);
  const before = await metrics(ctx.gw);
  const convs = Array.from({ length: 4 }, () => [{ role: 'system', content: 'S' }]);
  // Enough new sessions to pass the budget of 6 per process (the budget is checked every 10 s).
  for (let i = 0; i < 8; i++) await turn([{ role: 'system', content: 'S' }], `FILL${i}`);
  await Promise.all(convs.map((c, i) => turn(c, `BUDGET${i}`)));
  await waitFor(async () => {
    const r = await ctx.gw.readyz();
    return r.status === 200 && r.body.runtimes.some((x, i) => x.generation > gens[i]) &&
      r.body.runtimes.every((x) => x.state === 'ready' && !x.draining);
  }, { timeoutMs: 60_000, intervalMs: 250, what: 'a runtime to be recycled' });
  for (let round = 0; round < 2; round++) {
    await Promise.all(convs.map((c, i) => turn(c, `MOVED${round}-${i}`)));
  }
  const after = await metrics(ctx.gw);
  assert.ok(after.copilot_gateway_runtime_restarts_total > before.copilot_gateway_runtime_restarts_total);
});
