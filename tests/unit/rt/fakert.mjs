// fakert.mjs - a stand-in Copilot runtime for tests/unit/rt/test_rt_requests.c.
//
// Speaks Content-Length framed JSON-RPC on stdin/stdout, like the real one, and lets the test
// make it send runtime->host requests:
//   connect                         -> {ok, protocolVersion: 3, version: "fake"}
//   fake.request {method, params?, id?}
//                                   sends the host the request {id, method, params} (id: the
//                                   given one, else "srv-N") and answers this call, once the
//                                   host has answered, with {answer: <the host's whole message>}
//   fake.exit {code?}               exits at once (default status 3), calls left unanswered
//   ping, runtime.shutdown          answered ({} / and then exit 0)
//   anything else                   -32601, as the real runtime does
// stdin EOF ends it.
let buf = Buffer.alloc(0);
let next = 1;
const waiting = new Map(); // our request id (as JSON) -> the host's fake.request call id

function send(msg) {
  const body = Buffer.from(JSON.stringify(msg));
  process.stdout.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]));
}

function reply(id, result) {
  send({ jsonrpc: '2.0', id, result });
}

function onMessage(m) {
  if (m.method === undefined) {
    const key = JSON.stringify(m.id);
    if (waiting.has(key)) {
      reply(waiting.get(key), { answer: m });
      waiting.delete(key);
    }
    return;
  }
  const p = m.params || {};
  switch (m.method) {
    case 'connect':
      return reply(m.id, { ok: true, protocolVersion: 3, version: 'fake' });
    case 'ping':
      return reply(m.id, { message: 'pong', protocolVersion: 3 });
    case 'fake.request': {
      const id = p.id !== undefined ? p.id : `srv-${next++}`;
      waiting.set(JSON.stringify(id), m.id);
      const req = { jsonrpc: '2.0', id, method: p.method };
      if (p.params !== undefined) req.params = p.params;
      return send(req);
    }
    case 'fake.exit':
      return process.exit(p.code ?? 3);
    case 'runtime.shutdown':
      reply(m.id, {});
      return setImmediate(() => process.exit(0));
    default:
      return send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `Unhandled method ${m.method}` } });
  }
}

process.stdin.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const len = Number(/content-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString())[1]);
    if (buf.length < end + 4 + len) return;
    const body = buf.subarray(end + 4, end + 4 + len).toString();
    buf = buf.subarray(end + 4 + len);
    onMessage(JSON.parse(body));
  }
});
process.stdin.on('end', () => process.exit(0));
