// 61-copilot-cli: the Copilot CLI (`@github/copilot`, which users may already have) works as
// the gateway's runtime in place of the SDK's copilot-runtime: exact history, streaming,
// restart after a crash, clean shutdown.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, useGateway, test, uniq, waitFor } from './lib.mjs';

const CLI = join(ROOT, 'node_modules/.bin/copilot');
// The CLI unpacks itself on its first run and starts in 1-3 s: give it time.
const ctx = useGateway({ args: ['--copilot', CLI], readyTimeoutMs: 120_000 });

test('the CLI runtime reports itself and serves an exact multi-turn history', { timeout: 60_000 }, async () => {
  const rt = (await ctx.gw.readyz()).body.runtime;
  assert.match(rt.version, /^1\.0\.1\d\d$/, 'the CLI, not the SDK runtime (1.0.85)');
  const tok = uniq('CLI');
  const r = await ctx.client.chat.completions.create({
    model: 'fake-model',
    messages: [
      { role: 'system', content: 'SYS-CLI' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'A1' },
      { role: 'user', content: tok },
    ],
  });
  assert.equal(r.choices[0].message.content, `ECHO: ${tok}`);
  const [req] = ctx.fake.requestsFor(tok);
  const msgs = req.body.messages.map((m) => [m.role, m.content.replace(/^<current_datetime>.*?<\/current_datetime>\n\n/s, '')]);
  assert.deepEqual(msgs, [['system', 'SYS-CLI'], ['user', 'first'], ['assistant', 'A1'], ['user', tok]]);
  assert.equal(req.body.tools, undefined, 'no built-in tools');
});

test('the CLI runtime streams, and comes back after being killed', { timeout: 90_000 }, async () => {
  const tok = uniq('CLISTREAM');
  let text = '';
  for await (const ch of await ctx.client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: tok }] })) {
    text += ch.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, `ECHO: ${tok}`);
  const before = (await ctx.gw.readyz()).body.runtime;
  process.kill(before.pid, 'SIGKILL');
  await waitFor(async () => {
    const r = await ctx.gw.readyz();
    return r.status === 200 && r.body.runtime.generation > before.generation;
  }, { timeoutMs: 60_000, what: 'the CLI runtime to be restarted and ready' });
  const again = uniq('CLIAGAIN');
  const r = await ctx.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: again }] });
  assert.equal(r.choices[0].message.content, `ECHO: ${again}`);
});
