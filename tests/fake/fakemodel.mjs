// fakemodel.mjs - a scriptable OpenAI-compatible model server for tests (node:http only).
//
// It is the only fake in the end-to-end chain: the real gateway drives the real Copilot
// runtime, whose BYOK provider points here.
//
// Run it alone:   node tests/fake/fakemodel.mjs [--port 0] [--host 127.0.0.1] [--script FILE]
//   prints one line: "fakemodel listening on http://127.0.0.1:PORT"; FILE holds a script
//   ({rules, queue}, as POST /_script, and optionally models: the ids GET /v1/models lists)
//   loaded at start
// Or in-process:  import { startFake } from './fakemodel.mjs'
//   const fake = await startFake();  // {url, port, close, script, reset, log, setModels, ...}
//
// Model endpoints (with or without the /v1 prefix):
//   GET  /v1/models, GET /v1/models/{id}
//   POST /v1/chat/completions      streaming (SSE) and non-streaming
// Control endpoints:
//   POST /_script {rules:[{match, on?, once?, times?, reply}], queue:[reply]}   appends
//   POST /_reset                                                          rules, queue, log
//   GET  /_log                                                            logged requests
//   POST /_models {data:[...]}                                            replaces the model list
//
// Choosing a reply for a chat request: (a) the first rule whose `match` substring occurs in
// the text the rule looks at (its `on`, below), after a leading
// "<current_datetime>…</current_datetime>\n\n" has been stripped; (b) else the head of the FIFO
// queue; (c) else "ECHO: <text of the last user message>".
//
// What a rule looks at, by its `on` field:
//   "user" (default)  the LAST user message, wherever it is in the history (so it still matches
//                     the model calls that follow a tool result in the same agent loop)
//   "prompt"          the last message, only when it is a user message (a new user turn):
//                     it does not fire on the follow-up call after a tool result
//   "last"            the last message of the request, whatever its role (a tool message's
//                     content, an assistant message's text, a user message's text)
//   "tool"            the trailing tool messages (the run of role "tool" messages at the end),
//                     their contents joined by "\n"; nothing when the last message is no tool
//                     message. Matches a result of any of the parallel calls just answered.
//   Shorthands: `match_prompt: X` = {match: X, on: "prompt"}, `match_last: X` = {match: X,
//   on: "last"}, `match_tool: X` = {match: X, on: "tool"}.
// A typical tool round trip: {match_prompt: tok, reply: {tool_calls: [...]}} answers the user's
// prompt with calls, {match_tool: `RESULT-${tok}`, reply: {content}} answers the results.
// (Beware: {match_last: tok} would also fire on a tool result whose text contains tok.)
//
// Reply spec (every field optional):
//   content             string
//   chunks              array of strings, streamed one per SSE chunk (content = their join)
//   reasoning           string (or array of strings), streamed as delta.reasoning_content first
//   tool_calls          [{id, name, arguments, arguments_chunks?}]   (arguments: string or
//                       object). Streamed as OpenAI tool-call deltas after any content: per call
//                       {index, id, type:"function", function:{name, arguments:""}} first, then
//                       the arguments in pieces {index, function:{arguments}}: arguments_chunks
//                       (strings that join to the arguments) when given, else tool_args_pieces
//                       pieces of about equal length. Non-streamed: message.tool_calls, and
//                       message.content null unless content is given.
//   tool_args_pieces    streaming: split each call's arguments into this many pieces (default 3)
//   finish_reason       default "stop" ("tool_calls" when tool_calls are present)
//   usage               {prompt_tokens, completion_tokens, total_tokens?, reasoning_tokens?,
//                        cached_tokens?}; default computed from lengths (chars / 4, rounded up)
//   copilot_usage       object, sent as is as the top-level `copilot_usage` of the response
//                       (non-streamed) or of the usage chunk (streamed with include_usage), as
//                       CAPI does: e.g. {total_nano_aiu: 2500000000, token_details: [...]}
//                       (the runtime passes it on as assistant.usage copilotUsage)
//   chunk_delay_ms      delay before each streamed chunk after the first
//   first_byte_delay_ms delay before the response starts
//   status, error_body, headers   an HTTP error reply (headers also apply to success replies)
//   hang                accept the request and never answer, until the client goes away
//   cut_after           streaming only: destroy the connection after this many content chunks
//   times               serve this reply N times, then drop it (rules and queue alike)
//   model               model name to report (default: the request's model)
//   id                  completion id (default "chatcmpl-fake-<n>")

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const DATETIME_PREFIX = /^<current_datetime>[\s\S]*?<\/current_datetime>\n\n/;

export const DEFAULT_MODELS = ['fake-model', 'fake-reasoner', 'fake-vision'];

const CREATED = 1764028800; /* fixed, so model listings are deterministic */

function modelEntry(id) {
  return { id, object: 'model', created: CREATED, owned_by: 'fake' };
}

/** Text of a message's content: a string, or the text parts of a content array joined by "\n". */
export function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter((p) => p && (p.type === 'text' || p.type === 'input_text') && typeof p.text === 'string')
      .map((p) => p.text)
      .join('\n');
  }
  return '';
}

/** Removes the runtime's "<current_datetime>…</current_datetime>\n\n" prefix, if present. */
export function stripDatetime(text) {
  return typeof text === 'string' ? text.replace(DATETIME_PREFIX, '') : text;
}

/** The stripped text of the last message of a chat request body, whatever its role ('' when none). */
export function lastMessageText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  const m = msgs.at(-1);
  return m ? stripDatetime(contentText(m.content)) : '';
}

/** The role of the last message of a chat request body (null when there is none). */
export function lastRole(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  return msgs.at(-1)?.role ?? null;
}

/** The contents of the trailing run of tool messages, joined by "\n" ('' when the last message is no tool message). */
export function trailingToolText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  const out = [];
  for (let i = msgs.length - 1; i >= 0 && msgs[i]?.role === 'tool'; i--) out.unshift(contentText(msgs[i].content));
  return out.join('\n');
}

/** The stripped text of the last user message of a chat request body ('' when there is none). */
export function lastUserText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    if (msgs[i] && msgs[i].role === 'user') return stripDatetime(contentText(msgs[i].content));
  }
  return '';
}

const tokens = (chars) => Math.ceil(chars / 4);

function promptChars(body) {
  let n = 0;
  for (const m of Array.isArray(body?.messages) ? body.messages : []) {
    n += contentText(m?.content).length;
  }
  return n;
}

function usageFor(reply, body, content, reasoning, toolCalls) {
  const u = reply.usage || {};
  const prompt = u.prompt_tokens ?? tokens(promptChars(body));
  const argsChars = toolCalls.reduce((n, t) => n + t.arguments.length + t.name.length, 0);
  const reasoningTokens = u.reasoning_tokens ?? tokens(reasoning.length);
  const completion = u.completion_tokens ?? tokens(content.length + argsChars) + reasoningTokens;
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: u.total_tokens ?? prompt + completion,
    prompt_tokens_details: { cached_tokens: u.cached_tokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: reasoningTokens },
  };
  return usage;
}

function normToolCalls(list) {
  return (Array.isArray(list) ? list : []).map((t, i) => {
    const args = Array.isArray(t.arguments_chunks)
      ? t.arguments_chunks.map(String).join('')
      : typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments ?? {});
    return {
      id: t.id || `call_fake_${i}`,
      name: t.name,
      arguments: args,
      chunks: Array.isArray(t.arguments_chunks) ? t.arguments_chunks.map(String) : null,
    };
  });
}

/** Splits s into n pieces of about equal length (fewer when s is shorter; [] for ''). */
export function splitPieces(s, n) {
  if (!s) return [];
  const k = Math.max(1, Math.min(Math.floor(n) || 1, s.length));
  const size = Math.ceil(s.length / k);
  const out = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

const RULE_ON = new Set(['user', 'prompt', 'last', 'tool']);

/* Unref'd: a scripted delay never keeps a finished test process alive. */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

function readBody(req, limit = 64 * 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj, headers = {}) {
  const data = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

function openaiError(status, message, type = 'invalid_request_error', code = null, param = null) {
  return { error: { message, type, param, code } };
}

/**
 * Starts a fake model server. Resolves to a handle:
 *   url ("http://127.0.0.1:PORT", no /v1), port, server,
 *   script({rules, queue}) or script([rules...]): appends, like POST /_script
 *   enqueue(...replies): appends to the FIFO queue
 *   reset(): clears rules, queue and log (the model list stays)
 *   log(): a deep copy of the logged requests (each: seq, time, method, path, headers (names
 *     lowercased), body, last_user_text, last_role, last_text, source, outcome)
 *   requestsFor(tok) / requestsForLast(tok): logged chat requests whose last user message /
 *     last message (any role) contains tok; requestsWhere(pred)
 *   setModels([ids or entries]), close()
 */
export async function startFake({ port = 0, host = '127.0.0.1', models = DEFAULT_MODELS } = {}) {
  const state = {
    rules: [],
    queue: [],
    log: [],
    models: models.map((m) => (typeof m === 'string' ? modelEntry(m) : m)),
    seq: 0,
  };

  function script(spec) {
    const s = Array.isArray(spec) ? { rules: spec } : spec || {};
    for (const r of s.rules || []) {
      let { match, on = 'user' } = r;
      if (r.match_prompt !== undefined) {
        match = r.match_prompt;
        on = 'prompt';
      } else if (r.match_last !== undefined) {
        match = r.match_last;
        on = 'last';
      } else if (r.match_tool !== undefined) {
        match = r.match_tool;
        on = 'tool';
      }
      if (typeof match !== 'string' || !match) throw new Error('rule needs a non-empty string match (or match_prompt / match_last / match_tool)');
      if (!RULE_ON.has(on)) throw new Error(`rule: on must be "user", "prompt", "last" or "tool", not ${JSON.stringify(on)}`);
      state.rules.push({ match, on, once: !!r.once, left: r.times ?? r.reply?.times ?? Infinity, reply: r.reply || {} });
    }
    for (const q of s.queue || []) state.queue.push({ left: q.times ?? 1, reply: q });
  }

  function reset() {
    state.rules = [];
    state.queue = [];
    state.log = [];
  }

  /* texts: {user, prompt, last, tool}: what a rule with that `on` looks at. */
  function choose(texts) {
    const text = texts.user;
    for (let i = 0; i < state.rules.length; i++) {
      const r = state.rules[i];
      if (!texts[r.on].includes(r.match)) continue;
      r.left -= 1;
      if (r.once || r.left <= 0) state.rules.splice(i, 1);
      return { source: r.on === 'user' ? `rule:${r.match}` : `rule:${r.on}:${r.match}`, reply: r.reply };
    }
    if (state.queue.length > 0) {
      const q = state.queue[0];
      q.left -= 1;
      if (q.left <= 0) state.queue.shift();
      return { source: 'queue', reply: q.reply };
    }
    return { source: 'default', reply: { content: `ECHO: ${text}` } };
  }

  async function handleChat(req, res, raw) {
    const entry = {
      seq: ++state.seq,
      time: new Date().toISOString(),
      method: req.method,
      path: req.url,
      headers: { ...req.headers },
      body: null,
      last_user_text: '',
      last_role: null,
      last_text: '',
      source: null,
      outcome: 'pending',
    };
    state.log.push(entry);
    res.on('close', () => {
      if (entry.outcome === 'pending' || entry.outcome === 'streaming') entry.outcome = 'client_closed';
    });

    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      entry.body = raw;
      entry.outcome = 'complete';
      sendJson(res, 400, openaiError(400, 'fake: body is not JSON'));
      return;
    }
    entry.body = body;
    const text = lastUserText(body);
    entry.last_user_text = text;
    entry.last_role = lastRole(body);
    entry.last_text = lastMessageText(body);
    const { source, reply } = choose({
      user: text,
      prompt: entry.last_role === 'user' ? entry.last_text : '',
      last: entry.last_text,
      tool: trailingToolText(body),
    });
    entry.source = source;

    if (reply.first_byte_delay_ms) await sleep(reply.first_byte_delay_ms);
    if (res.destroyed) return;
    if (reply.hang) return; /* answered never; 'close' marks the entry */

    if (reply.status && reply.status >= 400) {
      entry.outcome = 'complete';
      const eb = reply.error_body ?? openaiError(reply.status, `fake error ${reply.status}`, reply.status >= 500 ? 'server_error' : 'invalid_request_error');
      sendJson(res, reply.status, eb, reply.headers || {});
      return;
    }

    const chunks = Array.isArray(reply.chunks) ? reply.chunks.map(String) : null;
    const content = chunks ? chunks.join('') : reply.content ?? '';
    const reasoningParts = Array.isArray(reply.reasoning) ? reply.reasoning.map(String) : reply.reasoning ? [String(reply.reasoning)] : [];
    const reasoning = reasoningParts.join('');
    const toolCalls = normToolCalls(reply.tool_calls);
    const finish = reply.finish_reason ?? (toolCalls.length ? 'tool_calls' : 'stop');
    const usage = usageFor(reply, body, content, reasoning, toolCalls);
    const id = reply.id ?? `chatcmpl-fake-${entry.seq}`;
    const model = reply.model ?? body.model ?? 'fake-model';
    const created = Math.floor(Date.now() / 1000);
    const copilotUsage = reply.copilot_usage && typeof reply.copilot_usage === 'object' ? { copilot_usage: reply.copilot_usage } : {};

    if (!body.stream) {
      const message = { role: 'assistant', content: toolCalls.length && !content ? null : content, refusal: null };
      if (reasoning) message.reasoning_content = reasoning;
      if (toolCalls.length) {
        message.tool_calls = toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }));
      }
      entry.outcome = 'complete';
      sendJson(res, 200, {
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message, finish_reason: finish, logprobs: null }],
        usage,
        ...copilotUsage,
      }, reply.headers || {});
      return;
    }

    entry.outcome = 'streaming';
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...(reply.headers || {}),
    });
    const base = { id, object: 'chat.completion.chunk', created, model };
    const chunk = (delta, finishReason = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }] });
    const delay = reply.chunk_delay_ms || 0;
    let sent = 0;
    const write = async (obj) => {
      if (sent > 0 && delay) await sleep(delay);
      if (res.destroyed || res.writableEnded) return false;
      /* Wait until the chunk is handed to the kernel, so a following cut cannot drop it. */
      await new Promise((resolve) => res.write(`data: ${JSON.stringify(obj)}\n\n`, resolve));
      sent++;
      return !res.destroyed;
    };

    const steps = [];
    for (const r of reasoningParts) steps.push({ role: 'assistant', content: null, reasoning_content: r });
    const contentParts = chunks ?? (content ? [content] : []);
    contentParts.forEach((c) => steps.push({ content: c, _content: true }));
    const pieces = reply.tool_args_pieces ?? 3;
    toolCalls.forEach((t, i) => {
      steps.push({ tool_calls: [{ index: i, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] });
      for (const a of t.chunks ?? splitPieces(t.arguments, pieces)) {
        if (a) steps.push({ tool_calls: [{ index: i, function: { arguments: a } }] });
      }
    });
    if (steps.length === 0) steps.push({ content: '' });
    steps[0] = { role: 'assistant', ...steps[0] };

    let contentSent = 0;
    for (const s of steps) {
      const isContent = s._content;
      delete s._content;
      if (!(await write(chunk(s)))) return;
      if (isContent) {
        contentSent++;
        if (reply.cut_after && contentSent >= reply.cut_after) {
          entry.outcome = 'cut';
          res.destroy();
          return;
        }
      }
    }
    if (!(await write(chunk({}, finish)))) return;
    if (body.stream_options?.include_usage) {
      if (!(await write({ ...base, choices: [], usage, ...copilotUsage }))) return;
    }
    res.write('data: [DONE]\n\n');
    entry.outcome = 'complete';
    res.end();
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://x');
    const path = url.pathname.replace(/^\/v1(?=\/)/, '');
    try {
      if (req.method === 'POST' && path === '/chat/completions') {
        const raw = await readBody(req);
        await handleChat(req, res, raw);
        return;
      }
      if (req.method === 'GET' && path === '/models') {
        sendJson(res, 200, { object: 'list', data: state.models });
        return;
      }
      if (req.method === 'GET' && path.startsWith('/models/')) {
        const id = decodeURIComponent(path.slice('/models/'.length));
        const m = state.models.find((x) => x.id === id);
        if (m) sendJson(res, 200, m);
        else sendJson(res, 404, openaiError(404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found', 'model'));
        return;
      }
      if (req.method === 'POST' && path === '/_script') {
        script(JSON.parse((await readBody(req)) || '{}'));
        sendJson(res, 200, { ok: true, rules: state.rules.length, queue: state.queue.length });
        return;
      }
      if (req.method === 'POST' && path === '/_reset') {
        await readBody(req);
        reset();
        sendJson(res, 200, { ok: true });
        return;
      }
      if (req.method === 'GET' && path === '/_log') {
        sendJson(res, 200, state.log);
        return;
      }
      if (req.method === 'POST' && path === '/_models') {
        const b = JSON.parse((await readBody(req)) || '{}');
        setModels(b.data || []);
        sendJson(res, 200, { ok: true });
        return;
      }
      sendJson(res, 404, openaiError(404, `fake: no route ${req.method} ${url.pathname}`));
    } catch (e) {
      if (!res.headersSent) sendJson(res, 400, openaiError(400, `fake: ${e.message}`));
      else res.destroy();
    }
  }

  function setModels(list) {
    state.models = list.map((m) => (typeof m === 'string' ? modelEntry(m) : { ...modelEntry(m.id), ...m }));
  }

  const server = http.createServer((req, res) => {
    handle(req, res);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  const url = `http://${host}:${actual}`;

  return {
    url,
    port: actual,
    server,
    script,
    enqueue: (...replies) => script({ queue: replies }),
    reset,
    log: () => structuredClone(state.log),
    setModels,
    /** Logged chat requests whose last user text contains `token`. */
    requestsFor: (token) => structuredClone(state.log.filter((e) => e.last_user_text.includes(token))),
    /** Logged chat requests whose last message (any role) contains `token`. */
    requestsForLast: (token) => structuredClone(state.log.filter((e) => e.last_text.includes(token))),
    /** Logged chat requests for which pred(entry) is true. */
    requestsWhere: (pred) => structuredClone(state.log.filter(pred)),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parseArgs(argv) {
  const out = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') out.port = Number(argv[++i]);
    else if (argv[i] === '--host') out.host = argv[++i];
    else if (argv[i] === '--script') out.scriptFile = argv[++i];
    else {
      process.stderr.write(`fakemodel: unknown argument '${argv[i]}'\nusage: fakemodel.mjs [--port N] [--host H] [--script FILE]\n`);
      process.exit(2);
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = parseArgs(process.argv.slice(2));
  const fake = await startFake(opts);
  if (opts.scriptFile) {
    const spec = JSON.parse(readFileSync(opts.scriptFile, 'utf8'));
    if (spec.models) fake.setModels(spec.models);
    fake.script({ rules: spec.rules ?? [], queue: spec.queue ?? [] });
  }
  process.stdout.write(`fakemodel listening on ${fake.url}\n`);
  const stop = () => fake.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
