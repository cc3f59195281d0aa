// User-facing files speak to users: no development-history words ("issue 4", "(issue 7)") that
// mean something only to whoever wrote the code.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, docFiles, read } from './markdown.js';

const HISTORY = /\b(?:issue|ticket|milestone|phase)\s*#?\d+\b/gi;

function userFacing(): string[] {
  const inDir = (dir: string, ext: RegExp) =>
    readdirSync(path.join(ROOT, dir))
      .filter((f) => ext.test(f))
      .map((f) => path.join(dir, f));
  return [...docFiles(), ...inDir('config', /\.(ya?ml|json)$/), ...inDir('infra', /\.ya?ml$/), 'client/credbroker-client.mjs', 'client/credbroker-client.sh', '.ci/run'];
}

describe('user-facing files', () => {
  it('carry no development-history words', () => {
    const found = userFacing().flatMap((file) =>
      [...read(file).matchAll(HISTORY)].map((m) => `${file}:${read(file).slice(0, m.index).split('\n').length}: "${m[0]}"`),
    );
    expect(found).toEqual([]);
  });

  it('would catch one', () => {
    expect('Static-key rotation (issue 4): which users'.match(HISTORY)).toEqual(['issue 4']);
    expect('the issuer 4 times'.match(HISTORY)).toBeNull();
  });
});
