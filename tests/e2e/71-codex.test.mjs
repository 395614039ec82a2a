// 71-codex: Codex CLI itself (@openai/codex), run as a user would with
// `copilot-gateway codex -- exec "…"`, against the gateway's Responses API. The command adds the
// provider settings (-c model_provider=…, base_url, wire_api = "responses", env_key) and the key
// variable; the test gives Codex a fresh CODEX_HOME whose config.toml keeps it offline (no update
// check, no analytics, no retries) and a fresh working directory, and picks the model with -m.
//
// Codex sends a large developer prompt, its own tools (exec_command and others as function tools,
// plus web_search and a namespace of agent tools, which the gateway does not offer the model)
// and store: false, replaying the whole input on every request. Scripting keys on a unique token:
// the call whose last message is the user's prompt (match_prompt) gets the scripted reply, the
// call answering the command's output (match_tool) gets the final text.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { useGateway, test, uniq, ROOT, GATEWAY_BIN, stripDatetime, textOf, metrics, sessionDeltas, runClient } from './lib.mjs';

const CODEX_BIN = join(ROOT, 'node_modules/.bin/codex');
const RUN_TIMEOUT_MS = 90_000;
const MODEL = 'fake-model';

const ctx = useGateway();

const OFFLINE_CONFIG = `check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false
`;

/**
 * Runs `copilot-gateway codex --listen <gateway> -- ...args` with a fresh HOME, CODEX_HOME and
 * working directory under tmp. Kills it after RUN_TIMEOUT_MS. Resolves {code, signal, stdout,
 * stderr, timedOut, cwd}.
 */
function runCodex(args, { tmp }) {
  const home = join(tmp, 'home');
  const codexHome = join(tmp, 'codex-home');
  const cwd = join(tmp, 'work');
  for (const d of [home, codexHome, cwd]) mkdirSync(d, { recursive: true });
  writeFileSync(join(codexHome, 'config.toml'), OFFLINE_CONFIG);
  const env = {
    PATH: `${dirname(CODEX_BIN)}:${process.env.PATH}`,
    HOME: home,
    CODEX_HOME: codexHome,
    TERM: 'dumb',
    NO_COLOR: '1',
  };
  const retries = ['-c', 'model_providers.copilot-gateway.request_max_retries=0',
    '-c', 'model_providers.copilot-gateway.stream_max_retries=0'];
  return runClient(ctx.gw, 'codex', [...retries, ...args], { cwd, env, timeoutMs: RUN_TIMEOUT_MS });
}

function modelCalls() {
  return ctx.fake.log().map((r) => {
    const msgs = r.body?.messages ?? [];
    const last = msgs.at(-1);
    return {
      model: r.body?.model,
      tools: (r.body?.tools ?? []).map((t) => t.function?.name),
      last: last ? `${last.role}: ${stripDatetime(textOf(last.content)).slice(0, 200)}` : null,
      outcome: r.outcome,
    };
  });
}

function explain(run) {
  return `codex exit ${run.code} signal ${run.signal}${run.timedOut ? ' (timed out, killed)' : ''}\n`
    + `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr.slice(-4000)}\n`
    + `--- model calls ---\n${JSON.stringify(modelCalls(), null, 1)}`;
}

test('codex exec: a plain answer', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
  const tok = uniq('CX');
  const answer = `Plain answer for ${tok}: forty-two.`;
  ctx.fake.script({ rules: [{ match_prompt: tok, reply: { content: answer } }] });
  const tmp = mkdtempSync(join(tmpdir(), 'gw-codex-'));
  try {
    const run = await runCodex(['exec', '-m', MODEL, '--skip-git-repo-check', `Say the answer for ${tok}.`], { tmp });
    assert.equal(run.code, 0, explain(run));
    assert.equal(run.stdout.trim(), answer, explain(run));
    const reqs = ctx.fake.requestsFor(tok);
    assert.equal(reqs.length, 1, explain(run));
    /* Codex's own function tools reach the model; its hosted and namespaced ones do not. */
    const names = (reqs[0].body.tools ?? []).map((t) => t.function?.name);
    assert.ok(names.includes('exec_command'), `tools: ${names}`);
    assert.ok(!names.includes('web_search'), `tools: ${names}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('codex exec: Codex runs the shell command the model proposes, and the output reaches the model', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
  const tok = uniq('CXS');
  const final = `The command printed the mark for ${tok}.`;
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { reasoning: 'The user wants the mark.', content: 'Running it.', tool_calls: [{ id: `call_sh_${tok}`, name: 'exec_command', arguments: { cmd: `echo MARK-${tok}-$((6*7))` } }] } },
    { match_tool: `MARK-${tok}-42`, reply: { content: final } },
  ] });
  const m0 = await metrics(ctx.gw);
  const tmp = mkdtempSync(join(tmpdir(), 'gw-codex-'));
  try {
    const run = await runCodex(['exec', '-m', MODEL, '--skip-git-repo-check', `Run the mark command for ${tok}.`], { tmp });
    assert.equal(run.code, 0, explain(run));
    assert.equal(run.stdout.trim(), final, explain(run));
    const reqs = ctx.fake.requestsFor(tok);
    assert.equal(reqs.length, 2, explain(run));
    const tool = reqs[1].body.messages.at(-1);
    assert.equal(tool.role, 'tool', explain(run));
    assert.equal(tool.tool_call_id, `call_sh_${tok}`);
    assert.ok(textOf(tool.content).includes(`MARK-${tok}-42`), `the command's output reached the model: ${textOf(tool.content)}`);
    /* Codex replays its whole input (store: false): the gateway continues the same session. */
    const d = sessionDeltas(m0, await metrics(ctx.gw));
    assert.equal(d.created, 1, `one runtime session: ${JSON.stringify(d)}`);
    assert.equal(d.reused, 1, `the tool result continued it: ${JSON.stringify(d)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('copilot-gateway codex prints the provider block and the key variable', () => {
  const out = { s: execFileSync(GATEWAY_BIN, ['codex', '--listen', '0.0.0.0:4321', '--api-key', 'k1,k2'], { encoding: 'utf8' }) };
  assert.match(out.s, /^model_provider = "copilot-gateway"$/m);
  assert.match(out.s, /^\[model_providers\.copilot-gateway\]$/m);
  assert.match(out.s, /^base_url = "http:\/\/127\.0\.0\.1:4321\/v1"$/m);
  assert.match(out.s, /^wire_api = "responses"$/m);
  assert.match(out.s, /^env_key = "COPILOT_GATEWAY_API_KEY"$/m);
  assert.match(out.s, /^export COPILOT_GATEWAY_API_KEY='k1'$/m);
});
