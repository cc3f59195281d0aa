// What the Node client loads to get credentials over http: nothing it does not use. Start-up is its
// whole cost in a CI job, and the expensive parts are modules — undici (Node's fetch) costs ~40 ms
// and is loaded by the ESM facade of `import http from 'node:http'` on Node 22 and later (for
// http.WebSocket), node:tls and node:https are needed only for https. The list of built-in modules
// a process loaded (process.moduleLoadList) is read at exit, after a real exchange.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { NODE_CLIENT, run, startFakeBroker, tempDir, type FakeBroker } from './helpers.js';
import { fakeJwt } from '../support/ci-providers/index.js';

let broker: FakeBroker;
const tmp = tempDir('credbroker-startup-');
beforeAll(async () => {
  broker = await startFakeBroker();
});
afterAll(async () => {
  await broker.close();
  tmp.cleanup();
});

describe(`the Node client's start (node ${process.versions.node})`, () => {
  it('gets credentials over http without loading undici, node:tls or node:https', async () => {
    const report = path.join(tmp.dir, 'modules.json');
    const probe = path.join(tmp.dir, 'probe.mjs');
    writeFileSync(probe, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify(process.moduleLoadList)));\n`.replace("require('node:fs')", "process.getBuiltinModule('node:fs')"));
    const tokenFile = path.join(tmp.dir, 'token');
    writeFileSync(tokenFile, fakeJwt({ startup: 1 }));
    const r = await run(process.execPath, ['--import', probe, NODE_CLIENT, '--url', broker.url, '--role', 'deploy', '--provider', 'generic', '--token-file', tokenFile, '--format', 'json', '--quiet'], { HOME: tmp.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('SecretAccessKey');
    const loaded = JSON.parse((await import('node:fs')).readFileSync(report, 'utf8')) as string[];
    expect(loaded.length).toBeGreaterThan(10); // the probe saw the process's modules
    expect(loaded.filter((m) => /undici|\btls\b|_tls_|\bhttps\b/.test(m))).toEqual([]);
  });
});
