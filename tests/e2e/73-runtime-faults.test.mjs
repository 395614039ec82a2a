// 73-runtime-faults: what a client sees when a runtime process fails under its request.
// - A frozen process (SIGSTOP) is found by the liveness ping, killed and restarted; the
//   request it held is answered by another attempt, /readyz shows it down meanwhile, and new
//   sessions do not wait on it.
// - A process killed (SIGKILL) under a non-streamed request: the request is retried and
//   answered in full, with only the retried attempt's text; a stream that had sent bytes ends
//   with an error event.
// - Error bodies never name the runtime's JSON-RPC methods.
// - A provider 429 reaches the client as a 429 with a Retry-After header.

import assert from 'node:assert/strict';
import { startFake } from '../fake/fakemodel.mjs';
import {
  startGateway, openaiClient, test, uniq, waitFor, sleep, http, collectStream, expectAPIError,
  assertOpenAIError, assertNoLeaks,
} from './lib.mjs';

const PING = ['--runtime-ping-interval-ms', '200', '--runtime-ping-timeout-ms', '1000'];

/* First attempt: a slow stream of "partN " chunks (times: 1); any retry gets the fake's default
 * answer "ECHO: <prompt>". */
const slowOnce = (tok) => ({
  rules: [{ match: tok, times: 1, reply: { chunks: Array.from({ length: 40 }, (_, i) => `part${i} `), chunk_delay_ms: 300 } }],
});

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/* Never leave a stopped process behind, whatever happened. */
function release(pid) {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    /* gone */
  }
}

async function withGateway(args, fn) {
  const fake = await startFake();
  const gw = await startGateway({ fake, args });
  try {
    await fn({ fake, gw, client: openaiClient(gw) });
  } finally {
    try {
      assert.equal(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
    } finally {
      await fake.close();
    }
  }
}

/* Polls /readyz until `pred(body)`; records whether any answer was not ready (503). */
async function watchReady(gw, pred, what, timeoutMs = 30_000) {
  let sawNotReady = false;
  const body = await waitFor(async () => {
    const r = await gw.readyz();
    if (r.status !== 200) sawNotReady = true;
    return r.status === 200 && pred(r.body) ? r.body : null;
  }, { timeoutMs, intervalMs: 25, what });
  return { body, sawNotReady };
}

test('a frozen runtime (SIGSTOP) is killed and restarted; the request it held is answered', { timeout: 90_000 }, async () => {
  await withGateway(PING, async ({ fake, gw, client }) => {
    const tok = uniq('FROZEN');
    fake.script(slowOnce(tok));
    const old = await gw.runtime();
    const t0 = Date.now();
    const pending = client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] });
    await waitFor(() => fake.requestsFor(tok).some((e) => e.outcome === 'streaming'), { what: 'the model call to be under way' });
    await sleep(700); /* let a few deltas reach the gateway */
    process.kill(old.pid, 'SIGSTOP');
    try {
      const watch = watchReady(gw, (b) => b.runtime.state === 'ready' && b.runtime.pid !== old.pid,
        'a new, ready runtime in /readyz');
      const r = await pending;
      assert.equal(r.choices[0].message.content, `ECHO: ${tok}`, 'the retried answer, alone');
      assert.ok(Date.now() - t0 < 30_000, `answered in ${Date.now() - t0} ms`);
      const { body, sawNotReady } = await watch;
      assert.ok(sawNotReady, '/readyz said not ready while the runtime was down');
      assert.ok(body.runtime.generation > old.generation, 'the runtime was restarted');
      await waitFor(() => !alive(old.pid), { what: `the stopped runtime ${old.pid} to be gone` });
      assert.match(gw.stderr(), new RegExp(`runtime ${old.pid} did not answer a ping .*stopped`), 'logged with its pid');
      assert.equal(fake.requestsFor(tok).length, 2, 'one model call per attempt');
      const tok2 = uniq('AFTER');
      const r2 = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok2 }] });
      assert.equal(r2.choices[0].message.content, `ECHO: ${tok2}`);
    } finally {
      release(old.pid);
    }
  });
});

test('pool of 2: requests keep being answered while one runtime is frozen', { timeout: 120_000 }, async () => {
  await withGateway([...PING, '--runtime-pool', '2'], async ({ gw, client }) => {
    const pool = (await watchReady(gw, (b) => b.runtimes.every((x) => x.state === 'ready'), 'both runtimes ready')).body.runtimes;
    const victim = pool[0];
    process.kill(victim.pid, 'SIGSTOP');
    try {
      /* New conversations right away: any placed on the frozen process before it is found
       * out fail over; the rest go to the live one. None waits for the turn timeout. */
      const t0 = Date.now();
      const toks = Array.from({ length: 4 }, (_, i) => uniq(`POOL${i}`));
      const answers = await Promise.all(toks.map((tok) => client.chat.completions.create({
        model: 'fake-model', messages: [{ role: 'user', content: tok }],
      })));
      answers.forEach((r, i) => assert.equal(r.choices[0].message.content, `ECHO: ${toks[i]}`));
      assert.ok(Date.now() - t0 < 30_000, `answered in ${Date.now() - t0} ms`);
      /* Once found out, the frozen process is out of rotation: /readyz no longer shows its pid
       * as ready, while the gateway as a whole stays ready on the other one. */
      await waitFor(async () => {
        const r = await gw.readyz();
        return r.status === 200 && !r.body.runtimes.some((x) => x.pid === victim.pid && x.state === 'ready');
      }, { timeoutMs: 15_000, intervalMs: 25, what: 'the frozen runtime out of rotation' });
      const more = Array.from({ length: 3 }, (_, i) => uniq(`LATER${i}`));
      const r2 = await Promise.all(more.map((tok) => client.chat.completions.create({
        model: 'fake-model', messages: [{ role: 'user', content: tok }],
      })));
      r2.forEach((r, i) => assert.equal(r.choices[0].message.content, `ECHO: ${more[i]}`));
      await waitFor(() => !alive(victim.pid), { what: `the stopped runtime ${victim.pid} to be gone` });
      await watchReady(gw, (b) => b.runtimes.every((x) => x.state === 'ready') &&
        b.runtimes.some((x) => x.generation > victim.generation), 'the frozen runtime replaced');
    } finally {
      release(victim.pid);
    }
  });
});

test('runtime killed under a non-streamed request: 200 with the whole answer of the retry', { timeout: 90_000 }, async () => {
  await withGateway([], async ({ fake, gw, client }) => {
    for (const api of ['chat', 'anthropic']) {
      const tok = uniq(`KILL9${api}`);
      fake.script(slowOnce(tok));
      const old = await gw.runtime();
      const pending = api === 'chat'
        ? client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] })
        : http(gw, 'POST', '/v1/messages', {
          headers: { 'anthropic-version': '2023-06-01' },
          body: { model: 'fake-model', max_tokens: 100, messages: [{ role: 'user', content: tok }] },
        });
      await waitFor(() => fake.requestsFor(tok).some((e) => e.outcome === 'streaming'), { what: 'the model call to be under way' });
      await sleep(700); /* let a few deltas reach the gateway */
      process.kill(old.pid, 'SIGKILL');
      const r = await pending;
      if (api === 'chat') {
        assert.equal(r.choices[0].message.content, `ECHO: ${tok}`, 'the retried answer, not spliced');
        assert.equal(r.choices[0].finish_reason, 'stop');
      } else {
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.content, [{ type: 'text', text: `ECHO: ${tok}` }]);
      }
      assert.equal(fake.requestsFor(tok).length, 2, 'one model call per attempt');
      await watchReady(gw, (b) => b.runtime.state === 'ready', 'the runtime back');
    }
  });
});

test('runtime killed under a stream that had sent bytes: the stream ends with an error event', { timeout: 90_000 }, async () => {
  await withGateway([], async ({ fake, gw, client }) => {
    const tok = uniq('KILLS');
    fake.script(slowOnce(tok));
    const old = await gw.runtime();
    const stream = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: tok }] });
    let killed = false;
    const out = await collectStream(stream, (c) => {
      if (!killed && c.choices?.[0]?.delta?.content) {
        killed = true;
        process.kill(old.pid, 'SIGKILL');
      }
    });
    assert.ok(killed, 'content arrived before the kill');
    assert.ok(out.error, `the stream ends with an error (content: ${JSON.stringify(out.content)})`);
    assert.ok(out.content.startsWith('part0 '), 'what was sent stays what it was');
    assert.ok(!out.content.includes('ECHO'), 'no retried text spliced in');
    if (out.error.error) assertOpenAIError({ error: out.error.error }, {}, 'stream error event');
    await watchReady(gw, (b) => b.runtime.state === 'ready' && b.runtime.pid !== old.pid, 'the runtime back');
  });
});

test('a runtime call that times out: the error names no JSON-RPC method', { timeout: 90_000 }, async () => {
  /* No pings, so only the call timeout can notice the frozen process. */
  await withGateway(['--runtime-ping-interval-ms', '0', '--call-timeout-ms', '2000'], async ({ gw }) => {
    const rt = await gw.runtime();
    process.kill(rt.pid, 'SIGSTOP');
    try {
      for (const [path, headers, body] of [
        ['/v1/chat/completions', {}, { model: 'fake-model', messages: [{ role: 'user', content: uniq('TIMEOUT') }] }],
        ['/v1/messages', { 'anthropic-version': '2023-06-01' }, { model: 'fake-model', max_tokens: 10, messages: [{ role: 'user', content: uniq('TIMEOUT') }] }],
      ]) {
        const r = await http(gw, 'POST', path, { headers, body });
        assert.equal(r.status, 504, r.text);
        for (const bad of ['session.', 'runtime call', 'timed out after', "'"]) {
          assert.ok(!r.text.includes(bad), `error body names an internal call (${JSON.stringify(bad)}): ${r.text}`);
        }
        assert.match(r.text, /did not answer in time/);
        assertNoLeaks(r.text);
        if (path === '/v1/chat/completions') assertOpenAIError(r.json);
      }
      assert.match(gw.stderr(), /call 'session\.create' \(id \d+\) timed out/, 'the log keeps the detail');
    } finally {
      release(rt.pid);
    }
  });
});

test('provider 429 with Retry-After: the client gets 429 with a Retry-After header', { timeout: 90_000 }, async () => {
  await withGateway([], async ({ fake, gw, client }) => {
    const tok = uniq('RL');
    fake.script({ rules: [{ match: tok, reply: { status: 429, headers: { 'retry-after': '1' }, error_body: {
      error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
    } } }] });
    /* The runtime itself retries 5 times, honouring Retry-After: about 6 s. */
    const r = await http(gw, 'POST', '/v1/chat/completions', { body: { model: 'fake-model', messages: [{ role: 'user', content: tok }] } });
    assert.equal(r.status, 429, r.text);
    assertOpenAIError(r.json, { code: 'rate_limit_exceeded' });
    const ra = r.headers.get('retry-after');
    assert.ok(ra !== null, 'a Retry-After header');
    assert.match(ra, /^\d+$/, `Retry-After is whole seconds: ${ra}`);
    assert.ok(Number(ra) >= 1 && Number(ra) <= 5, `Retry-After ${ra} s: at least the provider's 1 s, not much more`);
    /* The same through the openai client. */
    const err = await expectAPIError(() => client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: tok }] }), { status: 429 });
    assert.ok(err.headers?.get?.('retry-after') ?? err.headers?.['retry-after'], 'Retry-After on the client error');
  });
});
