// The broker as users start it: `credbroker serve` and `credbroker config validate` as real
// processes, with real config files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startServe } from '../support/serve-process.js';

const cli = ['--import', 'tsx', 'server/src/cli.ts'];
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-cli-'));
let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(async () => {
  await issuer?.close();
});

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [...cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

describe('credbroker config validate', () => {
  it('accepts the example config with no warnings', () => {
    const r = run(['config', 'validate', '--config', 'config/example.yaml']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ok: config\/example.yaml: 2 issuer\(s\), 2 role\(s\), 3 binding\(s\)/);
    expect(r.status).toBe(0);
  });

  it('reports every problem at once with its path and exits non-zero', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'issuers:',
        '  gh: { preset: github-actions, audiences: [], algorithms: [HS256] }',
        'roles:',
        '  deploy:',
        '    arn: not-an-arn',
        '    allow:',
        '      - { issuer: nobody, claims: { ref: main } }',
        'bogus: 1',
      ].join('\n'),
    );
    const r = run(['config', 'validate', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('issuers.gh.audiences');
    expect(r.stderr).toContain('issuers.gh.algorithms[0]');
    expect(r.stderr).toContain('bogus');
    // Schema problems come first; cross-references are checked once the shape is right.
    const fixed = path.join(dir, 'bad2.yaml');
    writeFileSync(fixed, ['issuers:', '  gh: { preset: github-actions, audiences: [x] }', 'roles:', '  deploy:', '    arn: not-an-arn', '    allow:', '      - { issuer: nobody, claims: { ref: main } }', '      - { issuer: gh, claims: {} }'].join('\n'));
    const r2 = run(['config', 'validate', '--config', fixed]);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toContain('roles.deploy.arn');
    expect(r2.stderr).toContain('roles.deploy.allow[0].issuer: unknown issuer "nobody"');
    expect(r2.stderr).toContain('roles.deploy.allow[1].claims: at least one claim condition is required');
  });

  it('prints lint warnings for risky bindings', () => {
    const file = path.join(dir, 'lint.yaml');
    writeFileSync(file, ['issuers:', '  gh: { preset: github-actions, audiences: [https://broker] }', 'roles:', '  deploy:', '    arn: arn:aws:iam::111122223333:role/x', '    allow:', '      - { issuer: gh, claims: { repository: octo-org/octo-repo } }'].join('\n'));
    const r = run(['config', 'validate', '--config', file]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: roles\.deploy\.allow\[0\]: binds on mutable name\(s\) repository only/);
    expect(r.stderr).toMatch(/warning: roles\.deploy\.allow\[0\]: shared issuer \(github-actions\)/);
  });

  it('takes the path from CREDBROKER_CONFIG', () => {
    const r = run(['config', 'validate'], { CREDBROKER_CONFIG: 'config/example.yaml' });
    expect(r.status).toBe(0);
  });
});

describe('credbroker serve', () => {
  it('refuses to start on an invalid config (never a partial start)', () => {
    const file = path.join(dir, 'invalid.yaml');
    writeFileSync(file, 'issuers: {}\nroles: { r: { arn: x, allow: [] } }\n');
    const r = run(['serve', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('roles.r.allow');
  });

  it('serves health and readiness, then stops cleanly on SIGTERM', async () => {
    const file = path.join(dir, 'good.yaml');
    writeFileSync(
      file,
      [
        'server: { port: 0 }',
        'metrics: { enabled: false }',
        'logging: { level: info }',
        'issuers:',
        `  local: { url: "${issuer.url}", audiences: [https://credbroker.test], allow_insecure_http: true }`,
        'roles:',
        '  deploy:',
        '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
        '    allow: [{ issuer: local, claims: { repository_id: "1" } }]',
      ].join('\n'),
    );
    const broker = await startServe(file);
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(200);
    expect(await broker.stop('SIGTERM')).toBe(0);
  });
});
