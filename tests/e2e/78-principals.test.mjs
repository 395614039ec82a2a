// 78-principals: no two principals ever share a runtime session or a stored response. Each
// configured --api-key is its own principal. The same history sent with two keys lands on two
// sessions (the second is seeded, never a continuation of the first's), an X-Session-Id pin is
// per key, and a stored Responses API response is a 404 for the other key (GET, DELETE,
// input_items, previous_response_id), while its owner keeps using it.

import assert from 'node:assert/strict';
import { useGateway, openaiClient, test, uniq, metrics, expectSessions, http } from './lib.mjs';

const KEY_A = 'principal-key-a-0123456789';
const KEY_B = 'principal-key-b-9876543210';
const ctx = useGateway({ args: ['--api-key', `${KEY_A},${KEY_B}`] });
const MODEL = 'fake-model';

const clientA = () => openaiClient(ctx.gw, { apiKey: KEY_A });
const clientB = () => openaiClient(ctx.gw, { apiKey: KEY_B });

async function ask(client, messages, opts) {
  const r = await client.chat.completions.create({ model: MODEL, messages }, opts);
  return r.choices[0].message.content;
}

test('the same history from two keys: two sessions, the second never continues the first', { timeout: 60_000 }, async () => {
  const u1 = uniq('PA');
  const a = clientA();
  const b = clientB();

  let before = await metrics(ctx.gw);
  const a1 = await ask(a, [{ role: 'user', content: u1 }]);
  assert.equal(a1, `ECHO: ${u1}`);
  await expectSessions(ctx.gw, before, { created: 1, reused: 0 }, 'key A opens a session');

  /* Key B sends A's history plus a new turn: that would continue A's idle session if
   * sessions were shared. It must get its own, seeded with the history. */
  const hist = [{ role: 'user', content: u1 }, { role: 'assistant', content: a1 }, { role: 'user', content: `${u1} more` }];
  before = await metrics(ctx.gw);
  assert.equal(await ask(b, hist), `ECHO: ${u1} more`);
  await expectSessions(ctx.gw, before, { created: 1, seeded: 1, reused: 0 }, 'key B gets a new, seeded session');

  /* A continues its own session. */
  before = await metrics(ctx.gw);
  assert.equal(await ask(a, hist), `ECHO: ${u1} more`);
  await expectSessions(ctx.gw, before, { created: 0, reused: 1 }, 'key A continues its own session');
});

test('an X-Session-Id pin is per key', { timeout: 60_000 }, async () => {
  const u1 = uniq('PP');
  const pin = { headers: { 'X-Session-Id': `shared-pin-${u1}` } };
  const a = clientA();
  const b = clientB();

  let before = await metrics(ctx.gw);
  const a1 = await ask(a, [{ role: 'user', content: u1 }], pin);
  await expectSessions(ctx.gw, before, { created: 1 }, 'key A opens its pinned session');

  const hist = [{ role: 'user', content: u1 }, { role: 'assistant', content: a1 }, { role: 'user', content: `${u1} again` }];
  before = await metrics(ctx.gw);
  await ask(b, hist, pin);
  await expectSessions(ctx.gw, before, { created: 1, reused: 0 }, 'key B with the same pin gets its own session');

  before = await metrics(ctx.gw);
  await ask(a, hist, pin);
  await expectSessions(ctx.gw, before, { created: 0, reused: 1 }, "key B's pin did not replace key A's session");
});

test("a stored response is a 404 for another key, and still its owner's", { timeout: 60_000 }, async () => {
  const u = uniq('PR');
  const a = clientA();
  const r = await a.responses.create({ model: MODEL, input: u, store: true });
  assert.equal(r.output_text, `ECHO: ${u}`);
  const hB = { authorization: `Bearer ${KEY_B}` };
  const hA = { authorization: `Bearer ${KEY_A}` };

  for (const [method, path] of [['GET', `/v1/responses/${r.id}`], ['GET', `/v1/responses/${r.id}/input_items`], ['DELETE', `/v1/responses/${r.id}`]]) {
    const got = await http(ctx.gw, method, path, { headers: hB });
    assert.equal(got.status, 404, `${method} ${path} with key B`);
    assert.match(got.json?.error?.message ?? '', /not found/, `${method} ${path} with key B: an OpenAI-shaped error`);
  }
  const cont = await http(ctx.gw, 'POST', '/v1/responses', {
    headers: hB, body: { model: MODEL, input: `${u} next`, previous_response_id: r.id },
  });
  assert.equal(cont.status, 404, 'previous_response_id of another key');
  assert.equal(cont.json?.error?.param, 'previous_response_id');

  /* The owner still has it (key B's DELETE did nothing). */
  const mine = await http(ctx.gw, 'GET', `/v1/responses/${r.id}`, { headers: hA });
  assert.equal(mine.status, 200);
  assert.equal(mine.json.id, r.id);
  const next = await a.responses.create({ model: MODEL, input: `${u} next`, previous_response_id: r.id, store: true });
  assert.equal(next.output_text, `ECHO: ${u} next`);
});
