// The client users download is one file built from client/src/ (and the Action's entry point from
// action/src/ and client/src/). The committed files must be exactly what the sources build to, and
// must need nothing but Node's built-ins.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { run } from './helpers.js';

describe('the committed bundles', () => {
  it('match their sources (npm run build:client leaves nothing to commit)', async () => {
    const r = await run(process.execPath, ['scripts/build-client.mjs', '--check'], {}, { cwd: process.cwd() });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('client bundles match their sources\n');
    expect(r.code).toBe(0);
  });

  for (const file of ['client/credbroker-client.mjs', 'action/credbroker-action.mjs']) {
    it(`${file} imports nothing but node: built-ins`, () => {
      const text = readFileSync(file, 'utf8');
      const specifiers = [...text.matchAll(/(?:^|\n)\s*import\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
      expect(specifiers.length).toBeGreaterThan(3);
      expect(specifiers.filter((s) => !s!.startsWith('node:'))).toEqual([]);
      expect(text).not.toMatch(/\brequire\(/);
    });
  }
});
