// 83-agents-faults: no tool an agent starts keeps running unattended. A job the agent's shell
// puts in the background, a command still running when the client goes away, and commands
// running when the runtime is killed all end; the agent's next request works.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { mkdtempSync, writeFileSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useGateway, test, uniq, metrics, waitFor } from './lib.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'gw-agents-faults-'));
writeFileSync(join(tmp, 'gateway.yaml'), `
agents:
  ops:
    model: fake-model
    instructions: You are OPS.
    workdir: ${tmp}
    tools: [bash]
    allow: {shell: [sleep, echo, nohup, setsid]}
`);
const ctx = useGateway({ args: ['--config', join(tmp, 'gateway.yaml')] });
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Pids of the processes whose command line is exactly `sleep <secs>`. */
function sleeping(secs) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'latin1') === `sleep\0${secs}\0`) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

let nextSecs = 7000 + (process.pid % 1000) * 3;
const uniqueSecs = () => nextSecs++;

/** The prompt with tok runs `command` once; every later call answers `final`. */
function script(tok, command, final) {
  ctx.fake.reset();
  ctx.fake.script({ rules: [
    { match_prompt: tok, times: 1, reply: { tool_calls: [{ id: `call_${tok}`, name: 'bash', arguments: { command, description: 'run' } }] } },
    { match: tok, reply: { content: final } },
  ] });
}

const ask = (tok, opts) => ctx.client.chat.completions.create({ model: 'agent/ops', messages: [{ role: 'user', content: `Do ${tok}` }] }, opts);

after(() => { for (const s of [...Array(nextSecs - 7000).keys()]) for (const pid of sleeping(7000 + s)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });

test('jobs put in the background (&, nohup, setsid) are ended once their shell lets them go', async () => {
  const tok = uniq('F1');
  const [a, b, c] = [uniqueSecs(), uniqueSecs(), uniqueSecs()];
  script(tok, `sleep ${a} & nohup sleep ${b} >/dev/null 2>&1 & setsid sleep ${c} & echo started`, `Started (${tok})`);
  const before = await metrics(ctx.gw);
  const r = await ask(tok);
  assert.equal(r.choices[0].message.content, `Started (${tok})`);
  await waitFor(() => sleeping(a).length + sleeping(b).length + sleeping(c).length === 0, { timeoutMs: 15_000, what: `the background sleeps ${a} ${b} ${c} to end` });
  const m = await metrics(ctx.gw);
  assert.ok(m.copilot_gateway_orphans_ended_total - (before.copilot_gateway_orphans_ended_total ?? 0) >= 3, JSON.stringify(m.copilot_gateway_orphans_ended_total));
});

test('a command still running when the client goes away is ended, and the agent answers the next request', async () => {
  const tok = uniq('F2');
  const secs = uniqueSecs();
  script(tok, `sleep ${secs}`, `never (${tok})`);
  const ac = new AbortController();
  const pending = ask(tok, { signal: ac.signal }).then(() => 'answered', () => 'aborted');
  await waitFor(() => sleeping(secs).length > 0, { timeoutMs: 30_000, what: `sleep ${secs} to start` });
  ac.abort();
  assert.equal(await pending, 'aborted');
  await waitFor(() => sleeping(secs).length === 0, { timeoutMs: 15_000, what: `sleep ${secs} to end` });
  const tok2 = uniq('F2b');
  ctx.fake.script({ rules: [{ match_prompt: tok2, reply: { content: `fine (${tok2})` } }] });
  const r = await ask(tok2);
  assert.equal(r.choices[0].message.content, `fine (${tok2})`);
});

test('commands running when the runtime is killed are ended; the request is answered by the retry', async () => {
  const tok = uniq('F3');
  const secs = uniqueSecs();
  script(tok, `sleep ${secs}`, `Retried (${tok})`);
  const pending = ask(tok);
  await waitFor(() => sleeping(secs).length > 0, { timeoutMs: 30_000, what: `sleep ${secs} to start` });
  const rt = await ctx.gw.runtime();
  process.kill(rt.pid, 'SIGKILL');
  const r = await pending;
  assert.equal(r.choices[0].message.content, `Retried (${tok})`);
  await waitFor(() => sleeping(secs).length === 0, { timeoutMs: 15_000, what: `sleep ${secs} (left by the killed runtime) to end` });
});
