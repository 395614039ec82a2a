// 74-storage: what the gateway keeps on disk, and what happens when the disk cannot take it.
// gateway.db must survive another process reading it (the sqlite3 shell, a backup) and a
// kill -9; a store: true response is answered 200 only once it is stored (507 otherwise); a
// full data or runtime-home disk fails requests fast (507) and takes /readyz out of service
// until there is room again; an unwritable data directory stops the gateway at start; and
// /readyz tells its details only to a client with a key.
//
// The disk-full cases mount small tmpfs file systems (root only; they are skipped, with a
// message, where mount is not possible).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake } from '../fake/fakemodel.mjs';
import {
  GATEWAY_BIN, ROOT, startGateway, openaiClient, test, uniq, waitFor, http,
  expectAPIError, assertNoLeaks, sessionDirs,
} from './lib.mjs';

const MODEL = 'fake-model';
let fake;
let dir;
const mounts = [];

/* Whether this process may mount a tmpfs (root, and a kernel and container that allow it). */
function mountPossible() {
  if (process.getuid?.() !== 0) return 'not root';
  const probe = mkdtempSync(join(tmpdir(), 'gw-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `mount failed: ${String(e.stderr || e.message).trim()}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const noMount = mountPossible();
const MOUNT_SKIP = noMount ? `needs a tmpfs mount (${noMount})` : false;

/** A fresh tmpfs of sizeMb at path (unmounted after the file's tests). */
function tmpfs(path, sizeMb) {
  mkdirSync(path, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700`, 'tmpfs', path]);
  mounts.push(path);
  return path;
}

/** Fills the file system of `path` to the last block with path/<name>. */
function fill(path, name = 'fill') {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(path, name)}`, 'bs=4k'], { stdio: 'ignore' });
  } catch {
    /* dd stops with ENOSPC: that is the point */
  }
}

/** Gives back `kb` KB of the filler (or all of it). */
function unfill(path, kb) {
  if (kb === undefined) {
    rmSync(join(path, 'fill'), { force: true });
    rmSync(join(path, 'fill2'), { force: true });
  }
  else execFileSync('truncate', ['-s', `-${kb}K`, join(path, 'fill')]);
}

before(async () => {
  fake = await startFake();
  dir = mkdtempSync(join(tmpdir(), 'gw-storage-'));
});
after(async () => {
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const gateway = (name, args = [], opts = {}) => startGateway({
  fake,
  ...opts,
  args: ['--home', join(dir, name, 'home'), '--data', join(dir, name, 'data'), ...args],
});

const ask = (client, input, extra = {}) => client.responses.create({ model: MODEL, input, ...extra });

async function readyz(gw, headers = {}) {
  return http(gw, 'GET', '/readyz', { headers });
}

test('gateway.db keeps every acknowledged response when another process opens it, across a kill -9', { timeout: 120_000 }, async () => {
  const db = join(dir, 'wal', 'data', 'gateway.db');
  let gw = await gateway('wal');
  const ids = [];
  try {
    const client = openaiClient(gw);
    for (let i = 0; i < 5; i++) ids.push((await ask(client, uniq('WAL-A'))).id);
    // An operator checks the file while the gateway runs (Debian's sqlite3 shell).
    assert.equal(execFileSync('sqlite3', [db, 'pragma integrity_check']).toString().trim(), 'ok');
    for (let i = 0; i < 5; i++) ids.push((await ask(client, uniq('WAL-B'))).id);
  } finally {
    gw.kill('SIGKILL');
    await gw.waitExit();
  }
  gw = await gateway('wal');
  try {
    for (const id of ids) {
      const r = await http(gw, 'GET', `/v1/responses/${id}`);
      assert.equal(r.status, 200, `GET ${id} after the restart: ${r.text}`);
      assert.equal(r.json.status, 'completed');
      assert.match(r.json.output[0].content[0].text, /^ECHO: WAL-/);
    }
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('a full data disk: store: true answers 507 before any 200, /readyz is 503, both recover', { timeout: 120_000, skip: MOUNT_SKIP }, async () => {
  const data = tmpfs(join(dir, 'full-data', 'data'), 4);
  const gw = await gateway('full-data', ['--min-free-mb', '1']);
  try {
    const client = openaiClient(gw);
    const kept = await ask(client, uniq('KEPT'));
    fill(data);
    /* The first 503 may say "cannot write gateway.db": the request's usage and session rows wait
     * up to 100 ms for their group commit, which can meet the full disk before the free-space
     * check (cached 1 s) does.  Once that check runs, it is the reason. */
    await waitFor(async () => (await readyz(gw)).json.reason === 'low disk space', { timeoutMs: 5_000, what: '/readyz 503 "low disk space" on a full data disk' });
    const rz = await readyz(gw);
    assert.equal(rz.status, 503);
    assert.equal(rz.json.status, 'not_ready');
    assert.equal(rz.json.reason, 'low disk space');
    assert.ok(rz.json.disk.data_free_mb < 1, JSON.stringify(rz.json.disk));

    const tok = uniq('FULL');
    const t0 = Date.now();
    for (const extra of [{}, { stream: true }, { background: true }]) {
      const err = await expectAPIError(() => ask(client, `${tok} ${JSON.stringify(extra)}`, extra), {
        status: 507, code: 'insufficient_storage', type: 'server_error',
      });
      assert.match(err.message, /disk space/);
    }
    assert.ok(Date.now() - t0 < 5_000, `three refusals took ${Date.now() - t0} ms`);
    assert.equal(fake.requestsFor(tok).length, 0, 'the model is not called for a request that cannot be kept');
    // A chat completion (nothing to store, but the runtime writes) is refused as well.
    await expectAPIError(() => client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: tok }] }), {
      status: 507, code: 'insufficient_storage',
    });
    // What was stored before stays readable.
    assert.equal((await http(gw, 'GET', `/v1/responses/${kept.id}`)).json.status, 'completed');

    unfill(data);
    await waitFor(async () => (await readyz(gw)).status === 200, { timeoutMs: 5_000, what: '/readyz 200 once space is back' });
    const r = await ask(client, uniq('BACK'));
    assert.equal(r.status, 'completed');
    assert.equal((await http(gw, 'GET', `/v1/responses/${r.id}`)).json.status, 'completed');
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('a data disk that fills mid-response: never a 200 (or a completed stream) for what was not stored', { timeout: 120_000, skip: MOUNT_SKIP }, async () => {
  const data = tmpfs(join(dir, 'mid-data', 'data'), 4);
  // --min-free-mb 0: no free-space check, so the write itself has to fail and say so.
  const gw = await gateway('mid-data', ['--min-free-mb', '0']);
  try {
    const client = openaiClient(gw);
    const tok = uniq('BIG');
    const big = 'x'.repeat(1024 * 1024);
    fake.script({ rules: [{ match: tok, reply: { content: big } }] });
    fill(data);
    unfill(data, 256); // room for the small in_progress row, not for a 1 MB answer

    // Plain: 507, and a later GET says failed, never completed (nor 404 after a 200).
    const err = await expectAPIError(() => ask(client, `${tok} plain`), { status: 507, code: 'insufficient_storage' });
    assert.match(err.message, /could not be stored/);
    const list = await http(gw, 'GET', '/v1/responses/none'); // the store still answers reads
    assert.equal(list.status, 404);

    // Streamed: the 200 went out with the stream; it ends with response.failed.
    const stream = await ask(client, `${tok} streamed`, { stream: true });
    const evs = [];
    for await (const ev of stream) evs.push(ev);
    const last = evs.at(-1);
    assert.equal(last.type, 'response.failed', `last event: ${last.type}`);
    assert.ok(!evs.some((e) => e.type === 'response.completed'), 'no response.completed');
    assert.match(last.response.error.message, /could not be stored/);
    assertNoLeaks(JSON.stringify(last), 'response.failed event');
    evs.forEach((ev, i) => assert.equal(ev.sequence_number, i, `sequence_number of event ${i} (${ev.type})`));
    const got = await http(gw, 'GET', `/v1/responses/${last.response.id}`);
    assert.ok(got.status !== 200 || got.json.status === 'failed', `GET after the failed stream: ${got.status} ${got.json?.status}`);

    // Background: accepted (its in_progress row fit), and it ends as failed, not completed.
    const bg = await ask(client, `${tok} background`, { background: true });
    assert.equal(bg.status, 'in_progress');
    const done = await waitFor(async () => {
      const r = await http(gw, 'GET', `/v1/responses/${bg.id}`);
      return r.status === 200 && r.json.status !== 'in_progress' && r.json;
    }, { timeoutMs: 30_000, what: 'the background response to end' });
    assert.equal(done.status, 'failed');
    assert.match(done.error.message, /could not be stored/);
  } finally {
    unfill(data);
    assert.equal(await gw.stop(), 0);
  }
});

test('a full runtime home: requests fail fast with 507 in each API\'s shape, no hang', { timeout: 120_000, skip: MOUNT_SKIP }, async () => {
  const home = tmpfs(join(dir, 'full-home', 'home'), 8);
  const gw = await gateway('full-home', ['--min-free-mb', '1']);
  try {
    const client = openaiClient(gw, { timeout: 20_000 });
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: uniq('H1') }] });
    fill(home);
    await waitFor(async () => (await readyz(gw)).status === 503, { timeoutMs: 5_000, what: '/readyz 503 on a full home disk' });
    assert.equal((await readyz(gw)).json.reason, 'low disk space');
    const t0 = Date.now();
    await expectAPIError(() => client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: uniq('H2') }] }), {
      status: 507, code: 'insufficient_storage', type: 'server_error',
    });
    const a = await http(gw, 'POST', '/v1/messages', {
      headers: { 'anthropic-version': '2023-06-01' },
      body: { model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: uniq('H3') }] },
    });
    assert.equal(a.status, 507, a.text);
    assert.equal(a.json.type, 'error');
    assert.equal(a.json.error.type, 'api_error');
    assertNoLeaks(a.text);
    assert.ok(Date.now() - t0 < 5_000, `refusals took ${Date.now() - t0} ms`);
  } finally {
    unfill(home);
    assert.equal(await gw.stop(), 0);
  }
});

test('a runtime home that fills between turns (no free-space check): the turn ends at once with 507', { timeout: 120_000, skip: MOUNT_SKIP }, async () => {
  const home = tmpfs(join(dir, 'mid-home', 'home'), 8);
  const gw = await gateway('mid-home', ['--min-free-mb', '0']);
  try {
    const client = openaiClient(gw, { timeout: 30_000 });
    const messages = [{ role: 'user', content: uniq('M1') }];
    const r1 = await client.chat.completions.create({ model: MODEL, messages });
    messages.push({ role: 'assistant', content: r1.choices[0].message.content });
    fill(home);
    // The live session continues: the runtime cannot write the turn to its events.jsonl
    // (a turn larger than what is left in the file's last page).
    messages.push({ role: 'user', content: `${uniq('M2')} ${'y'.repeat(32 * 1024)}` });
    let t0 = Date.now();
    const err = await expectAPIError(() => client.chat.completions.create({ model: MODEL, messages }), {
      status: 507, code: 'insufficient_storage',
    });
    assert.match(err.message, /cannot save the conversation/);
    assert.ok(Date.now() - t0 < 10_000, `the failed turn took ${Date.now() - t0} ms`);
    // A new conversation: the runtime cannot create the session's files.  (Removing the failed
    // session frees a few KB: take them too.)
    await waitFor(() => sessionDirs(home).length === 0, { timeoutMs: 10_000, what: 'the failed session to be removed' });
    fill(home, 'fill2');
    t0 = Date.now();
    await expectAPIError(() => client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: uniq('M3') }] }), {
      status: 507, code: 'insufficient_storage',
    });
    assert.ok(Date.now() - t0 < 10_000, `the refused session took ${Date.now() - t0} ms`);
    // Space back: the gateway serves again.
    unfill(home);
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: uniq('M4') }] });
    assert.match(r.choices[0].message.content, /^ECHO: M4/);
  } finally {
    unfill(home);
    assert.equal(await gw.stop(), 0);
  }
});

/** Runs `copilot-gateway serve` expecting it to exit on its own: {code, stderr}. */
function serveUntilExit(args, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    const p = spawn(GATEWAY_BIN, ['serve', '--listen', '127.0.0.1:0', '--provider-url', `${fake.url}/v1`,
      '--provider-key', 'test-key', '--runtime-pool', '1', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    p.stdout.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stderr });
    });
  });
}

test('an unwritable data directory stops the gateway at start with a clear message', { timeout: 120_000, skip: MOUNT_SKIP }, async () => {
  const mnt = tmpfs(join(dir, 'ro'), 4);
  const data = join(mnt, 'data');
  const home = join(dir, 'ro-home');
  // A data directory from an earlier run (gateway.db and all), then made read-only.
  const gw = await startGateway({ fake, args: ['--home', home, '--data', data, '--min-free-mb', '1'] });
  assert.equal(await gw.stop(), 0);
  assert.ok(existsSync(join(data, 'gateway.db')));
  execFileSync('mount', ['-o', 'remount,ro', mnt]);
  const r = await serveUntilExit(['--home', home, '--data', data]);
  assert.equal(r.signal, null, `it exits on its own (stderr: ${r.stderr.slice(-2000)})`);
  assert.equal(r.code, 1, r.stderr.slice(-2000));
  assert.match(r.stderr, /cannot write to the data directory '[^']*': Read-only file system/);
  assert.doesNotMatch(r.stderr, /listening on/);
});

test('/readyz with client keys: a minimal answer without a key, the details with one', { timeout: 90_000 }, async () => {
  const gw = await gateway('keys', ['--api-key', 'k-ready-1,k-ready-2']);
  try {
    for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
      const r = await readyz(gw, headers);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { status: 'ready', reason: 'ready' });
    }
    const r = await readyz(gw, { authorization: 'Bearer k-ready-2' });
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'ready');
    assert.ok(r.json.runtime.pid > 0, r.text);
    assert.match(r.json.runtime.version, /\d/);
    assert.equal(r.json.runtimes.length, 1);
    assert.equal(typeof r.json.disk.data_free_mb, 'number');
    assert.equal(r.json.disk.store_writable, true);
    const x = await readyz(gw, { 'x-api-key': 'k-ready-1' });
    assert.ok(x.json.runtime.pid > 0);
  } finally {
    assert.equal(await gw.stop(), 0);
  }
  // Without keys configured, everyone gets the details (as before).
  const open = await gateway('nokeys');
  try {
    const r = await readyz(open);
    assert.ok(r.json.runtime.pid > 0);
    assert.equal(r.json.disk.min_free_mb, 64);
  } finally {
    assert.equal(await open.stop(), 0);
  }
});

test('a client that leaves a stored response mid-stream leaves no in_progress row behind', { timeout: 60_000 }, async () => {
  const gw = await gateway('gone');
  try {
    const tok = uniq('GONE');
    fake.script({ rules: [{ match: tok, reply: { chunks: ['a', 'b', 'c', 'd'], chunk_delay_ms: 3_000 } }] });
    const ac = new AbortController();
    const stream = await openaiClient(gw).responses.create({ model: MODEL, input: tok, stream: true }, { signal: ac.signal });
    let id;
    try {
      for await (const ev of stream) {
        id = ev.response?.id ?? id;
        if (ev.type === 'response.output_text.delta') ac.abort();
      }
    } catch {
      /* aborted */
    }
    assert.match(id, /^resp_/);
    await waitFor(async () => (await http(gw, 'GET', `/v1/responses/${id}`)).status === 404, {
      timeoutMs: 10_000, what: 'the abandoned response to be gone',
    });
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});
