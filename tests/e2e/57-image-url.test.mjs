// 57-image-url: an image_url given as an http(s) URL is downloaded by the gateway and reaches
// the model inline, as a data: URL with the exact bytes. Downloads that fail (404, not an
// image, a private address without --image-fetch-private) are a 400 naming the part, and the
// model is never called. A client that leaves mid-download cancels it.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFake } from '../fake/fakemodel.mjs';
import {
  startGateway, openaiClient, test, uniq, expectAPIError, waitFor, TINY_PNG_B64,
} from './lib.mjs';

const PNG = Buffer.from(TINY_PNG_B64, 'base64');

let fake;
let gwPriv; /* --image-fetch-private 1: may fetch from 127.0.0.1 */
let gwPub; /* default: public addresses only */
let clientPriv;
let clientPub;
let img; /* the image server */
let imgBase;
const hits = []; /* paths the image server was asked for, in order */
const hung = new Set(); /* requests to /hang still open */

/* The image server: what each path answers. */
function serveImage(req, res) {
  const path = req.url.split('?')[0];
  hits.push(path);
  if (path === '/px.png') {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
    res.end(PNG);
  } else if (path === '/px-param.png') {
    res.writeHead(200, { 'content-type': 'Image/PNG; charset=binary' });
    res.end(PNG);
  } else if (path === '/moved.png') {
    res.writeHead(302, { location: '/px.png', 'content-type': 'text/html' });
    res.end('<a href="/px.png">moved</a>');
  } else if (path === '/page.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<html><body>not an image</body></html>');
  } else if (path === '/hang.png') {
    hung.add(res);
    res.on('close', () => hung.delete(res));
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no such image');
  }
}

before(async () => {
  img = http.createServer(serveImage);
  await new Promise((r) => img.listen(0, '127.0.0.1', r));
  imgBase = `http://127.0.0.1:${img.address().port}`;
  fake = await startFake();
  [gwPriv, gwPub] = await Promise.all([
    startGateway({ fake, args: ['--image-fetch-private', '1'] }),
    startGateway({ fake }),
  ]);
  clientPriv = openaiClient(gwPriv);
  clientPub = openaiClient(gwPub);
}, { timeout: 120_000 });

after(async () => {
  const codes = await Promise.all([gwPriv?.stop(), gwPub?.stop()]);
  await fake?.close();
  for (const res of hung) res.destroy();
  img?.closeAllConnections?.();
  await new Promise((r) => (img ? img.close(r) : r()));
  assert.deepEqual(codes, [0, 0], 'gateways exit 0 on SIGTERM');
});

/** A system message, then a user message: text with tok, then one image part per URL. */
function imageRequest(tok, urls, extra = {}) {
  return {
    model: 'fake-model',
    messages: [
      { role: 'system', content: 'You describe images.' },
      { role: 'user', content: [
        { type: 'text', text: `what is in this image? ${tok}` },
        ...urls.map((url) => ({ type: 'image_url', image_url: { url } })),
      ] },
    ],
    ...extra,
  };
}

/** The image_url parts of the last message the model got for tok (exactly one request). */
function modelImages(tok) {
  const reqs = fake.requestsFor(tok);
  assert.equal(reqs.length, 1, `the model got exactly one request for ${tok} (got ${reqs.length})`);
  const last = reqs[0].body.messages.at(-1);
  assert.equal(last.role, 'user');
  assert.ok(Array.isArray(last.content), `the user message is a content array: ${JSON.stringify(last.content).slice(0, 200)}`);
  return last.content.filter((p) => p.type === 'image_url').map((p) => p.image_url.url);
}

test('an http image URL reaches the model as a data: URL with the exact bytes', { timeout: 60_000 }, async () => {
  const tok = uniq('IMGURL');
  fake.script({ rules: [{ match: tok, reply: { content: 'A transparent pixel.' } }] });
  const r = await clientPriv.chat.completions.create(imageRequest(tok, [`${imgBase}/px.png`]));
  assert.equal(r.choices[0].message.content, 'A transparent pixel.');
  assert.deepEqual(modelImages(tok), [`data:image/png;base64,${TINY_PNG_B64}`]);
});

test('several image URLs, a redirect and a Content-Type with parameters, streamed', { timeout: 60_000 }, async () => {
  const tok = uniq('IMGMANY');
  fake.script({ rules: [{ match: tok, reply: { content: 'Three pixels.' } }] });
  const stream = await clientPriv.chat.completions.create(
    imageRequest(tok, [`${imgBase}/px.png`, `${imgBase}/px-param.png`, `${imgBase}/moved.png`], { stream: true }),
  );
  let content = '';
  for await (const c of stream) content += c.choices?.[0]?.delta?.content ?? '';
  assert.equal(content, 'Three pixels.');
  const want = `data:image/png;base64,${TINY_PNG_B64}`;
  assert.deepEqual(modelImages(tok), [want, want, want]);
});

test('an image URL in an earlier turn is downloaded too and replayed inline', { timeout: 60_000 }, async () => {
  const tok = uniq('IMGHIST');
  fake.script({ rules: [{ match: tok, reply: { content: 'Seen it.' } }] });
  const r = await clientPriv.chat.completions.create({
    model: 'fake-model',
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: `${imgBase}/px.png` } }] },
      { role: 'assistant', content: 'A pixel.' },
      { role: 'user', content: `and now? ${tok}` },
    ],
  });
  assert.equal(r.choices[0].message.content, 'Seen it.');
  const reqs = fake.requestsFor(tok);
  assert.equal(reqs.length, 1);
  const first = reqs[0].body.messages.find((m) => m.role === 'user');
  const urls = first.content.filter((p) => p.type === 'image_url').map((p) => p.image_url.url);
  assert.deepEqual(urls, [`data:image/png;base64,${TINY_PNG_B64}`]);
});

test('the failing part is named by its index in the request, system and assistant messages counted', { timeout: 60_000 }, async () => {
  const tok = uniq('IMGIDX');
  await expectAPIError(
    () => clientPriv.chat.completions.create({
      model: 'fake-model',
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'developer', content: 'dev' },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: `${imgBase}/px.png` } }] },
        { role: 'assistant', content: 'A pixel.' },
        { role: 'user', content: [
          { type: 'text', text: tok },
          { type: 'image_url', image_url: { url: `${imgBase}/px.png` } },
          { type: 'image_url', image_url: { url: `${imgBase}/gone.png` } },
        ] },
      ],
    }),
    { status: 400, param: 'messages[4].content[2].image_url', code: 'invalid_image_url' },
  );
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');
});

test('an image URL answering 404 is a 400 naming the part; the model is not called', { timeout: 60_000 }, async () => {
  const tok = uniq('IMG404');
  const err = await expectAPIError(
    () => clientPriv.chat.completions.create(imageRequest(tok, [`${imgBase}/px.png`, `${imgBase}/missing.png`])),
    { status: 400, param: 'messages[1].content[2].image_url', type: 'invalid_request_error' },
  );
  assert.match(err.message, /could not download the image/);
  assert.match(err.message, /HTTP 404/);
  assert.ok(!err.message.includes('missing.png'), `the URL path is not echoed: ${err.message}`);
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');
});

test('a URL that is not an image (text/html) is a 400', { timeout: 60_000 }, async () => {
  const tok = uniq('IMGHTML');
  const err = await expectAPIError(
    () => clientPriv.chat.completions.create(imageRequest(tok, [`${imgBase}/page.html`])),
    { status: 400, param: 'messages[1].content[1].image_url' },
  );
  assert.match(err.message, /not an image \(content-type text\/html\)/);
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');
});

test('without --image-fetch-private a loopback image URL is refused before any request', { timeout: 60_000 }, async () => {
  const tok = uniq('IMGPRIV');
  const before = hits.length;
  const err = await expectAPIError(
    () => clientPub.chat.completions.create(imageRequest(tok, [`${imgBase}/px.png`])),
    { status: 400, param: 'messages[1].content[1].image_url' },
  );
  assert.match(err.message, /private or local address/);
  assert.equal(hits.length, before, 'the image server was never asked');
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');

  /* "localhost" and an IPv4-mapped IPv6 literal are loopback too. */
  for (const url of [
    `http://localhost:${img.address().port}/px.png`,
    `http://[::ffff:127.0.0.1]:${img.address().port}/px.png`,
  ]) {
    const e = await expectAPIError(
      () => clientPub.chat.completions.create(imageRequest(tok, [url])),
      { status: 400, param: 'messages[1].content[1].image_url' },
    );
    assert.match(e.message, /private or local address/, url);
  }
  assert.equal(hits.length, before, 'the image server was never asked');
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');
});

test('more than 16 image URLs is a 400', { timeout: 60_000 }, async () => {
  const tok = uniq('IMG17');
  const before = hits.length;
  const urls = Array.from({ length: 17 }, () => `${imgBase}/px.png`);
  const err = await expectAPIError(
    () => clientPriv.chat.completions.create(imageRequest(tok, urls)),
    { status: 400, param: 'messages' },
  );
  assert.match(err.message, /too many image URLs/);
  assert.equal(hits.length, before, 'nothing was downloaded');
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');
});

test('a client leaving mid-download cancels the download; the gateway carries on', { timeout: 60_000 }, async () => {
  const tok = uniq('IMGGONE');
  const ac = new AbortController();
  const p = clientPriv.chat.completions.create(imageRequest(tok, [`${imgBase}/px.png`, `${imgBase}/hang.png`]), { signal: ac.signal });
  p.catch(() => {});
  await waitFor(() => hung.size === 1, { what: 'the gateway to request /hang.png' });
  ac.abort();
  await assert.rejects(p);
  await waitFor(() => hung.size === 0, { what: 'the gateway to drop the /hang.png download' });
  assert.equal(fake.requestsFor(tok).length, 0, 'the model was not called');

  const tok2 = uniq('IMGAFTER');
  fake.script({ rules: [{ match: tok2, reply: { content: 'Still here.' } }] });
  const r = await clientPriv.chat.completions.create(imageRequest(tok2, [`${imgBase}/px.png`]));
  assert.equal(r.choices[0].message.content, 'Still here.');
});
