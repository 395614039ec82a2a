// 76-config: the YAML --config file may hold lists and maps; every key is checked, and a bad
// file stops the gateway at start-up (status 2) naming FILE:LINE and the key path.  Agents
// (`agents:`) are checked at start-up too and listed in GET /v1/models as agent/<name>.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake } from '../fake/fakemodel.mjs';
import { startGateway, test, GATEWAY_BIN } from './lib.mjs';

let fake, dir;
before(async () => {
  fake = await startFake();
  dir = mkdtempSync(join(tmpdir(), 'gw-cfg76-'));
});
after(async () => {
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a config file named `name` in the test directory; returns its path. */
function configFile(name, text) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Runs `serve --config FILE` expecting the gateway to exit by itself; resolves {code, err}. */
function serveToExit(file) {
  return new Promise((resolve) => {
    const p = spawn(GATEWAY_BIN, ['serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--config', file], {
      env: process.env, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, err }); });
  });
}

const bad = [
  {
    what: 'an unknown section (nested)',
    text: 'listen: 127.0.0.1:0\nmodel-alias:\n  gpt-4: gpt-5-mini\nskills:\n  logs:\n    model: m\n',
    want: ":4: 'skills': unknown key",
  },
  {
    what: 'a wrong type inside a list',
    text: '# keys\napi-key:\n  - k-one\n  - {k: two}\n',
    want: ":4: 'api-key[1]': expected a string, got a mapping",
  },
  {
    what: 'an agent whose workdir does not exist',
    text: 'agents:\n  logs:\n    model: fake-model\n    instructions: x\n    workdir: /nonexistent/gw-76\n',
    want: ":5: 'agents.logs.workdir': '/nonexistent/gw-76' does not exist",
  },
  {
    what: 'an agent delegating to an agent that is not there',
    text: 'agents:\n  logs:\n    model: fake-model\n    instructions: x\n    workdir: /\n    delegates: [sql]\n',
    want: ":6: 'agents.logs.delegates[0]': no agent named 'sql'",
  },
  {
    what: 'a duplicate key',
    text: 'max-body-bytes: 2048\nlog-level: info\nmax-body-bytes: 4096\n',
    want: ":3: 'max-body-bytes': duplicate key (first at line 1)",
  },
  {
    what: 'a value outside its choices',
    text: 'provider-type: openia\n',
    want: ":1: 'provider-type': expected one of openai|azure|anthropic, got 'openia'",
  },
];

for (const c of bad) {
  test(`a config file with ${c.what} stops the gateway with status 2, naming file:line and the key`, async () => {
    const file = configFile(`bad-${bad.indexOf(c)}.yaml`, c.text);
    const { code, err } = await serveToExit(file);
    assert.equal(code, 2, err);
    assert.ok(err.includes(`${file}${c.want}`), `stderr names ${file}${c.want}:\n${err}`);
    assert.doesNotMatch(err, /listening on/);
  });
}

test('api-key as a YAML list: requests need one of the keys', async () => {
  const file = configFile('keys.yaml', '# client keys\napi-key:\n  - k-first\n  - "k-second"\nimage-fetch-private: no\n');
  const gw = await startGateway({ fake, args: ['--config', file] });
  try {
    assert.equal((await fetch(`${gw.baseURL}/models`)).status, 401);
    assert.equal((await fetch(`${gw.baseURL}/models`, { headers: { authorization: 'Bearer k-firs' } })).status, 401);
    const ok = await fetch(`${gw.baseURL}/models`, { headers: { authorization: 'Bearer k-second' } });
    assert.notEqual(ok.status, 401);
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).object, 'list');
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('an agent from the config file is listed in GET /v1/models as agent/<name>, in both shapes', async () => {
  const file = configFile('agents.yaml', [
    'agents:',
    '  logs:',
    '    description: Finds errors in the application logs',
    '    model: fake-model',
    '    instructions: You are a log analyst.',
    `    workdir: ${dir}`,
    '    tools: [view, grep]',
    '',
  ].join('\n'));
  const gw = await startGateway({ fake, args: ['--config', file] });
  try {
    const list = await (await fetch(`${gw.baseURL}/models`)).json();
    assert.equal(list.object, 'list');
    const ids = list.data.map((m) => m.id);
    assert.ok(ids.includes('fake-model'), ids.join(','));
    const agent = list.data.find((m) => m.id === 'agent/logs');
    assert.deepEqual(agent, { id: 'agent/logs', object: 'model', created: 0, owned_by: 'copilot-gateway' });

    const anth = await (await fetch(`${gw.baseURL}/models`, { headers: { 'anthropic-version': '2023-06-01' } })).json();
    const a = anth.data.find((m) => m.id === 'agent/logs');
    assert.deepEqual(a, { type: 'model', id: 'agent/logs', display_name: 'agent/logs', created_at: '1970-01-01T00:00:00Z' });
    assert.equal(anth.last_id, 'agent/logs');

    for (const path of ['/models/agent/logs', '/models/agent%2Flogs']) {
      const one = await fetch(`${gw.baseURL}${path}`);
      assert.equal(one.status, 200, path);
      assert.deepEqual(await one.json(), agent, path);
      const oneAnth = await fetch(`${gw.baseURL}${path}`, { headers: { 'anthropic-version': '2023-06-01' } });
      assert.deepEqual(await oneAnth.json(), a, path);
    }
    const missing = await fetch(`${gw.baseURL}/models/agent/nope`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, 'model_not_found');
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});
