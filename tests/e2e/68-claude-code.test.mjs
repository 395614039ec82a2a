// 68-claude-code: Claude Code itself (@anthropic-ai/claude-code), run as a user would with
// `copilot-gateway claude -- -p "…"`, against the gateway's Anthropic Messages API, with every
// claude-* model id mapped to the fake model by --anthropic-default-model. The command sets
// ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN and CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC; the
// test adds Claude Code's other documented offline variables (DISABLE_AUTOUPDATER,
// DISABLE_TELEMETRY, DISABLE_ERROR_REPORTING, DISABLE_BUG_COMMAND) and a fresh HOME /
// CLAUDE_CONFIG_DIR and working directory per run.
//
// Claude Code makes more model calls than the user's prompt (title / topic checks with the
// small fast model, quota checks, count_tokens …). Scripting therefore keys on a unique token:
// only the call whose last message is the user's prompt (match_prompt) gets the scripted
// reply, the call answering the tool result (match_tool on a marker the command prints) gets
// the final text, and everything else falls through to the fake's default "ECHO: …" reply.

import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { useGateway, test, uniq, ROOT, stripDatetime, textOf, metrics, sessionDeltas, runClient } from './lib.mjs';

const CLAUDE_BIN = join(ROOT, 'node_modules/.bin/claude');
const RUN_TIMEOUT_MS = 90_000;

/* A server-side agent too (model "agent/logs"): Claude Code pointed at an agent model. */
const agentTmp = mkdtempSync(join(tmpdir(), 'gw-cc-agent-'));
writeFileSync(join(agentTmp, 'app.log'), 'INFO up\nERROR disk full on /var\n');
writeFileSync(join(agentTmp, 'gateway.yaml'), `
agents:
  logs:
    model: fake-model
    instructions: You are LOGS-AGENT.
    workdir: ${agentTmp}
    tools: [bash]
    allow: {shell: [grep]}
`);
after(() => rmSync(agentTmp, { recursive: true, force: true }));

const ctx = useGateway({ args: ['--anthropic-default-model', 'fake-model', '--config', join(agentTmp, 'gateway.yaml')] });

/**
 * Runs `copilot-gateway claude --listen <gateway> -- ...args`, which points Claude Code at the
 * gateway (ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC)
 * and runs `claude` from PATH; cwd, HOME and CLAUDE_CONFIG_DIR are fresh temp dirs. Kills it
 * after RUN_TIMEOUT_MS. Resolves {code, signal, stdout, stderr, timedOut, cwd}; the caller
 * removes `tmp`.
 */
function runClaude(args, { tmp }) {
  const home = join(tmp, 'home');
  const config = join(tmp, 'config');
  const cwd = join(tmp, 'work');
  for (const d of [home, config, cwd]) mkdirSync(d, { recursive: true });
  const env = {
    PATH: `${dirname(CLAUDE_BIN)}:${process.env.PATH}`,
    HOME: home,
    CLAUDE_CONFIG_DIR: config,
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_BUG_COMMAND: '1',
    TERM: 'dumb',
  };
  return runClient(ctx.gw, 'claude', args, { cwd, env, timeoutMs: RUN_TIMEOUT_MS });
}

/** Every model request the fake logged, summarized (for failure messages). */
function modelCalls() {
  return ctx.fake.log().map((r) => {
    const msgs = r.body?.messages ?? [];
    const last = msgs.at(-1);
    return {
      model: r.body?.model,
      tools: (r.body?.tools ?? []).length,
      last: last ? `${last.role}: ${stripDatetime(textOf(last.content)).slice(0, 160)}` : null,
      outcome: r.outcome,
    };
  });
}

function explain(run) {
  return `claude exit ${run.code} signal ${run.signal}${run.timedOut ? ' (timed out, killed)' : ''}\n`
    + `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}\n`
    + `--- model calls ---\n${JSON.stringify(modelCalls(), null, 1)}`;
}

test('claude -p: a plain answer', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
  const tok = uniq('CC');
  const answer = `Plain answer for ${tok}: forty-two.`;
  ctx.fake.script({ rules: [{ match_prompt: tok, reply: { content: answer } }] });
  const tmp = mkdtempSync(join(tmpdir(), 'gw-cc-'));
  try {
    const run = await runClaude(['-p', `Say the answer for ${tok}.`, '--output-format', 'json'], { tmp });
    assert.equal(run.code, 0, explain(run));
    let out;
    try {
      out = JSON.parse(run.stdout);
    } catch {
      assert.fail(`stdout is not JSON\n${explain(run)}`);
    }
    assert.equal(out.is_error, false, explain(run));
    assert.equal(out.result, answer, explain(run));
    assert.ok(ctx.fake.requestsFor(tok).length >= 1, explain(run));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('claude -p: Claude Code runs its Bash tool through the gateway and the result reaches the model', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
  const tok = uniq('CB');
  const tmp = mkdtempSync(join(tmpdir(), 'gw-cc-'));
  const file = join(tmp, 'work', 'made-by-claude');
  const final = `Done: the command printed`;
  ctx.fake.script({
    rules: [
      {
        match_prompt: tok,
        reply: {
          tool_calls: [{
            id: 'call_bash1',
            name: 'Bash',
            arguments: JSON.stringify({ command: `touch ${file} && echo MARK-${tok}`, description: 'create a file' }),
          }],
        },
      },
      { match_tool: `MARK-${tok}`, reply: { content: `${final} MARK-${tok}-SEEN` } },
    ],
  });
  try {
    const before = await metrics(ctx.gw);
    const run = await runClaude(['-p', `Create the file for ${tok}.`, '--output-format', 'json',
      '--allowedTools', 'Bash(touch:*)', 'Bash(echo:*)'], { tmp });
    const after = await metrics(ctx.gw);
    assert.equal(run.code, 0, explain(run));
    let out;
    try {
      out = JSON.parse(run.stdout);
    } catch {
      assert.fail(`stdout is not JSON\n${explain(run)}`);
    }
    assert.ok(existsSync(file), `the command created ${file}\n${explain(run)}`);
    assert.equal(out.is_error, false, explain(run));
    assert.equal(out.result, `${final} MARK-${tok}-SEEN`, explain(run));
    /* The model call that answered the tool result saw the command's output. */
    const first = ctx.fake.requestsFor(tok).find((r) => r.body?.messages?.at(-1)?.role === 'user');
    assert.ok(first, `the prompt reached the model\n${explain(run)}`);
    assert.ok((first.body.tools ?? []).some((t) => t.function?.name === 'Bash'), `the model was offered Claude Code's Bash tool\n${explain(run)}`);
    const toolCall = ctx.fake.log().find((r) => (r.body?.messages ?? []).some((m) => m.role === 'tool' && textOf(m.content).includes(`MARK-${tok}`)));
    assert.ok(toolCall, `a model call carried the tool result MARK-${tok}\n${explain(run)}`);
    const result = toolCall.body.messages.find((m) => m.role === 'tool' && textOf(m.content).includes(`MARK-${tok}`));
    assert.equal(result.tool_call_id, 'call_bash1', 'the tool result answers the model\'s call id');
    /* Claude Code's tool loop ran on one runtime session: the tool result went to the
     * session that was waiting for it, not to a reseeded one. */
    const d = sessionDeltas(before, after);
    assert.equal(d.created, 1, `one runtime session for the whole loop: ${JSON.stringify(d)}`);
    assert.ok(d.reused >= 1, `the tool result continued that session: ${JSON.stringify(d)}`);
    assert.equal(d.seeded, 0, `nothing was reseeded: ${JSON.stringify(d)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('claude -p --model agent/logs: the agent runs its own tool on the gateway; Claude Code shows its progress and gets the answer', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
  const tok = uniq('CA');
  const final = `The log says the disk is full (${tok}).`;
  ctx.fake.script({ rules: [
    { match_prompt: tok, reply: { tool_calls: [{ id: 'call_agent1', name: 'bash', arguments: { command: 'grep ERROR app.log', description: 'errors' } }] } },
    { match_tool: 'disk full', reply: { content: final } },
  ] });
  const tmp = mkdtempSync(join(tmpdir(), 'gw-cc-'));
  try {
    const run = await runClaude(['-p', `What is wrong in the logs? ${tok}`, '--model', 'agent/logs',
      '--output-format', 'stream-json', '--verbose'], { tmp });
    assert.equal(run.code, 0, explain(run));
    const events = run.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    const result = events.find((e) => e.type === 'result');
    assert.ok(result, explain(run));
    assert.equal(result.is_error, false, explain(run));
    assert.equal(result.result, final, explain(run));
    /* Claude Code never saw the agent's bash call as a tool use of its own ... */
    const blocks = events.filter((e) => e.type === 'assistant').flatMap((e) => e.message?.content ?? []);
    assert.ok(!blocks.some((b) => b.type === 'tool_use'), explain(run));
    /* ... but got the progress, as thinking. */
    const thinking = blocks.filter((b) => b.type === 'thinking').map((b) => b.thinking).join('');
    assert.match(thinking, /> bash grep ERROR app\.log/, explain(run));
    /* The agent's instructions were the system prompt; the command ran on the gateway. */
    const first = ctx.fake.requestsFor(tok)[0];
    assert.match(textOf(first.body.messages[0].content), /LOGS-AGENT/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
