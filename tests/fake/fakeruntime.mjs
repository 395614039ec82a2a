#!/usr/bin/env node
// fakeruntime: a stand-in for the Copilot runtime, for the broker's unit test
// (tests/unit/broker/test_broker.c).
//
// It speaks the runtime's JSON-RPC over stdio (Content-Length framing, as rt/frame.h) and
// answers what the broker calls: connect, ping, auth.getStatus, session.create/resume/
// send/sendMessages/abort/delete/detach, session.tools.handlePendingToolCall,
// session.permissions.handlePendingPermissionRequest and runtime.shutdown.  Every request
// is appended to $COPILOT_HOME/fake-calls.jsonl as {method, params}, so a test can see what
// the broker sent.  What a turn does is scripted by the user message's text:
//
//   contains TOOL  the model calls the session's first client tool (call_1), with an
//                  external_tool.requested; the result answers it: "tool said: <text>"
//   contains DIE   the process exits before any output (once per home: it leaves
//                  $COPILOT_HOME/fake-died behind, so the retry succeeds)
//   contains SLOW  nothing happens until session.abort, which ends the turn
//   contains PERM  a permission prompt (kind "shell"); its answer ends the turn with
//                  "permission: <decision kind>"
//   contains BYE   the usual answer, then the process exits (its idle sessions go dormant)
//   contains HOOK  a hooks.invoke request to the host (hookType preToolUse, toolName bash);
//                  its answer ends the turn with "hook: <output.hook> <output.principal>"
//                  ("hook: none" for an output without them, "hook: error <code>" for an error)
//   otherwise      the answer is "echo: <text>" (one delta, then the message)
//
// Deterministic: no timers, no randomness; ids count up.
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const HOME = process.env.COPILOT_HOME || '.';
const LOG = join(HOME, 'fake-calls.jsonl');
const sessions = new Map(); // sessionId -> {tools: [names]}
let nextMsg = 1;
const asked = new Map(); // our request id -> sessionId
let nextAsk = 1;

function write(obj) {
  const body = Buffer.from(JSON.stringify(obj));
  process.stdout.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]));
}
const reply = (id, result) => write({ jsonrpc: '2.0', id, result });
const fail = (id, code, message) => write({ jsonrpc: '2.0', id, error: { code, message } });
let nextEvent = 1;
function event(sessionId, type, data) {
  write({ jsonrpc: '2.0', method: 'session.event',
    params: { sessionId, event: { type, data, id: `ev-${nextEvent++}` } } });
}

function answer(sid, text) {
  const messageId = `msg-${nextMsg++}`;
  event(sid, 'assistant.message_delta', { messageId, deltaContent: text });
  event(sid, 'assistant.message', { messageId, content: text, toolRequests: [] });
  event(sid, 'assistant.usage', { inputTokens: 10, outputTokens: 2, finishReason: 'stop' });
  event(sid, 'session.idle', {});
}

function turn(sid, text) {
  const s = sessions.get(sid) || { tools: [] };
  if (text.includes('DIE')) {
    const marker = join(HOME, 'fake-died');
    if (!existsSync(marker)) {
      writeFileSync(marker, 'died\n');
      process.exit(3);
    }
  }
  if (text.includes('SLOW'))
    return;
  if (text.includes('HOOK')) {
    const id = nextAsk++;
    asked.set(id, sid);
    write({ jsonrpc: '2.0', id, method: 'hooks.invoke',
      params: { sessionId: sid, hookType: 'preToolUse', input: { sessionId: sid, toolName: 'bash', toolArgs: { command: 'ls' } } } });
    return;
  }
  if (text.includes('PERM')) {
    event(sid, 'permission.requested', { requestId: 'perm-1',
      permissionRequest: { kind: 'shell', fullCommandText: 'ls', intention: 'list' } });
    return;
  }
  if (text.includes('TOOL') && s.tools.length) {
    const messageId = `msg-${nextMsg++}`;
    const call = { toolCallId: 'call_1', name: s.tools[0], arguments: { city: 'Paris' } };
    event(sid, 'assistant.message', { messageId, content: '', toolRequests: [call] });
    event(sid, 'external_tool.requested', { requestId: 'tool-req-1', sessionId: sid,
      toolCallId: 'call_1', toolName: s.tools[0], arguments: call.arguments });
    return;
  }
  answer(sid, `echo: ${text}`);
  if (text.includes('BYE'))
    process.stdout.write('', () => process.exit(0));
}

function handle(msg) {
  const { id, method, params = {} } = msg;
  if (method === undefined) { // a reply to one of our requests
    const sid = asked.get(id);
    asked.delete(id);
    if (!sid)
      return;
    const out = msg.result?.output;
    if (msg.error)
      return answer(sid, `hook: error ${msg.error.code}`);
    return answer(sid, out && out.hook ? `hook: ${out.hook} ${out.principal}` : 'hook: none');
  }
  appendFileSync(LOG, JSON.stringify({ method, params }) + '\n');
  const sid = params.sessionId;
  switch (method) {
    case 'connect':
      return reply(id, { protocolVersion: 3, version: 'fake-1' });
    case 'ping':
      return reply(id, {});
    case 'auth.getStatus':
      return reply(id, { isAuthenticated: false });
    case 'session.create':
    case 'session.resume':
      sessions.set(sid, { tools: (params.tools || []).map((t) => t.name) });
      return reply(id, { sessionId: sid });
    case 'session.send':
      reply(id, { messageId: `user-${nextMsg++}` });
      return turn(sid, params.prompt || '');
    case 'session.sendMessages': {
      const m = params.messages || [];
      reply(id, {});
      return turn(sid, m.length ? m[m.length - 1].prompt || '' : '');
    }
    case 'session.tools.handlePendingToolCall':
      reply(id, { success: true });
      return answer(sid, `tool said: ${params.result?.textResultForLlm ?? ''}`);
    case 'session.permissions.handlePendingPermissionRequest':
      reply(id, { success: true });
      return answer(sid, `permission: ${params.result?.kind ?? ''}`);
    case 'session.abort':
      reply(id, {});
      event(sid, 'abort', { reason: 'user initiated' });
      return event(sid, 'session.idle', {});
    case 'session.delete':
    case 'session.detach':
      sessions.delete(sid);
      return reply(id, { success: true });
    case 'runtime.shutdown':
      reply(id, {});
      return process.stdout.write('', () => process.exit(0));
    default:
      return fail(id, -32601, `Unhandled method ${method}`);
  }
}

let acc = Buffer.alloc(0);
process.stdin.on('data', (d) => {
  acc = Buffer.concat([acc, d]);
  for (;;) {
    const end = acc.indexOf('\r\n\r\n');
    if (end < 0)
      return;
    const m = /content-length:\s*(\d+)/i.exec(acc.subarray(0, end).toString());
    if (!m)
      process.exit(2);
    const len = Number(m[1]);
    if (acc.length < end + 4 + len)
      return;
    const body = acc.subarray(end + 4, end + 4 + len).toString();
    acc = acc.subarray(end + 4 + len);
    handle(JSON.parse(body));
  }
});
process.stdin.on('end', () => process.exit(0));
