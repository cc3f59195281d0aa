// `credbroker policy test`, `policy explain` and `token decode` as the security team runs them.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer } from '../support/oidc-issuer.js';
import { providerClaims } from '../support/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-policy-'));
const run = (args: string[], input?: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000, ...(input ? { input } : {}) });

describe('credbroker policy test', () => {
  it('passes the example table against the example config', () => {
    const r = run(['policy', 'test', 'config/policy-tests.example.yaml', '--config', 'config/example.yaml']);
    expect(r.stdout).toContain('9 passed, 0 failed');
    expect(r.status).toBe(0);
  });

  it('fails, naming the case and the actual decision, when a policy change breaks an expectation', () => {
    const cases = path.join(dir, 'cases.yaml');
    writeFileSync(
      cases,
      [
        'cases:',
        '  - name: feature branches deploy to production',
        '    role: deploy-production',
        `    claims_file: ${path.resolve('test/fixtures/ci-tokens/github-actions.json')}`,
        '    claims: { ref: refs/heads/feature }',
        '    expect: allow',
      ].join('\n'),
    );
    const r = run(['policy', 'test', cases, '--config', 'config/example.yaml']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('not ok 1 - feature branches deploy to production: expected allow, got DENY ERR_POLICY_NO_MATCH');
    expect(r.stdout).toContain('0 passed, 1 failed');
  });
});

describe('credbroker policy test, for scripts and against typos', () => {
  const cases = path.join(dir, 'typo-cases.yaml');
  writeFileSync(
    cases,
    [
      'cases:',
      '  - name: production, spelt wrong',
      '    role: deploy-production',
      `    claims_file: ${path.resolve('test/fixtures/ci-tokens/github-actions.json')}`,
      '    claims: { enviroment: staging }',
      '    expect: allow',
      '  - name: a feature branch',
      '    role: deploy-production',
      `    claims_file: ${path.resolve('test/fixtures/ci-tokens/github-actions.json')}`,
      '    claims: { ref: refs/heads/feature }',
      '    expect: allow',
    ].join('\n'),
  );

  it('warns about a claim the issuer never sends, naming the case and the likely intended claim', () => {
    const r = run(['policy', 'test', cases, '--config', 'config/example.yaml']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`warning: ${cases}: case 1 "production, spelt wrong": claims.enviroment: no github-actions token is known to carry the claim "enviroment" (did you mean "environment"?)\n`);
    expect(r.stdout).toContain('ok 1 - production, spelt wrong');
    expect(r.stdout).toContain('1 passed, 1 failed');
  });

  it('--json gives every case, its decision and the warnings', () => {
    const r = run(['policy', 'test', cases, '--config', 'config/example.yaml', '--json']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { passed: number; failed: number; cases: Array<{ name: string; ok: boolean; decision: string; problems: string[] }>; warnings: string[] };
    expect(out).toMatchObject({ passed: 1, failed: 1 });
    expect(out.cases[0]).toMatchObject({ name: 'production, spelt wrong', ok: true, decision: expect.stringMatching(/^ALLOW by roles\.deploy-production\.allow\[0\]/) });
    expect(out.cases[1]).toMatchObject({ ok: false, problems: ['expected allow, got DENY ERR_POLICY_NO_MATCH'] });
    expect(out.warnings).toEqual([expect.stringContaining('claims.enviroment: no github-actions token is known to carry the claim "enviroment"')]);
  });
});

describe('credbroker policy explain', () => {
  it('gives a verdict per binding and per condition, exit 1 on deny', () => {
    const claims = path.join(dir, 'claims.json');
    writeFileSync(claims, JSON.stringify({ ...providerClaims('github-actions'), iss: 'https://token.actions.githubusercontent.com', ref: 'refs/heads/dev' }));
    const r = run(['policy', 'explain', '--claims', claims, '--role', 'deploy-production', '--config', 'config/example.yaml']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('DENY ERR_POLICY_NO_MATCH');
    expect(r.stdout).toContain('✓ repository_id: expected "487920697", got "487920697"');
    expect(r.stdout).toContain('✗ ref: expected "refs/heads/main", got "refs/heads/dev" (value)');
    expect(r.stdout).toContain('roles.deploy-production.allow[1]  other issuer');
  });

  it('accepts a raw JWT as the claims file and answers allow with exit 0, also as JSON', async () => {
    const issuer = await startIssuer();
    try {
      const jwt = await issuer.sign({ ...providerClaims('github-actions'), iss: 'https://token.actions.githubusercontent.com' });
      const file = path.join(dir, 'token.jwt');
      writeFileSync(file, jwt);
      const r = run(['policy', 'explain', '--claims', file, '--role', 'deploy-production', '--config', 'config/example.yaml', '--json']);
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout) as { decision: { effect: string; sessionName: string } };
      expect(out.decision).toMatchObject({ effect: 'allow', sessionName: 'gh-487920697-16055869479-1' });
    } finally {
      await issuer.close();
    }
  });
});

describe('credbroker token decode', () => {
  it('prints header and claims without the signature, and flags a live token as a secret', async () => {
    const issuer = await startIssuer();
    try {
      const jwt = await issuer.sign({ sub: 'repo:o/r:ref:refs/heads/main' });
      const r = run(['token', 'decode', '-'], jwt);
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout) as { header: { alg: string }; claims: { sub: string } };
      expect(out.header.alg).toBe('RS256');
      expect(out.claims.sub).toBe('repo:o/r:ref:refs/heads/main');
      expect(r.stdout).not.toContain(jwt.split('.')[2]!);
      expect(r.stderr).toMatch(/NOT verified/);
      expect(r.stderr).toMatch(/treat it as a secret/);
    } finally {
      await issuer.close();
    }
  });

  it('reads the token from a file with --file, so it never sits in argv', async () => {
    const issuer = await startIssuer();
    try {
      const file = path.join(dir, 'token.jwt');
      writeFileSync(file, `${await issuer.sign({ sub: 'project_path:g/p:ref_type:branch:ref:main' })}\n`, { mode: 0o600 });
      const r = run(['token', 'decode', '--file', file]);
      expect(r.status).toBe(0);
      expect((JSON.parse(r.stdout) as { claims: { sub: string } }).claims.sub).toBe('project_path:g/p:ref_type:branch:ref:main');
      expect(r.stderr).not.toMatch(/command line/);
    } finally {
      await issuer.close();
    }
  });

  it('warns that a token given on the command line is exposed', () => {
    const r = run(['token', 'decode', 'hello']);
    expect(r.stderr).toMatch(/shell history and the process list; use --file or stdin/);
  });

  it('refuses what is not a JWT', () => {
    const r = run(['token', 'decode', 'hello']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not a JWT/);
  });

  it('names a missing token file with exit 2', () => {
    const r = run(['token', 'decode', '--file', path.join(dir, 'absent.jwt')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot read the token: ENOENT/);
  });
});

describe('credbroker policy diff', () => {
  it('shows, as markdown, the access a change gains against the committed config (git REV:PATH)', () => {
    const changed = path.join(dir, 'changed.yaml');
    const text = readFileSync('config/example.yaml', 'utf8').replace(
      '          ref_protected: true                # GitHub sends "true": the preset knows\n',
      '          ref_protected: true                # GitHub sends "true": the preset knows\n      - issuer: github\n        claims: { repository_owner_id: "9919", repository_id: "5550001" }\n',
    );
    writeFileSync(changed, text);
    const r = run(['policy', 'diff', 'HEAD:config/example.yaml', changed]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('### Access gained (1)');
    expect(r.stdout).toContain('| `deploy-production` | `github` | `repository_owner_id: "9919"`, `repository_id: "5550001"` | `roles.deploy-production.allow[1]` |');
    const json = JSON.parse(run(['policy', 'diff', changed, 'config/example.yaml', '--json']).stdout) as { lost: Array<{ path: string }> };
    expect(json.lost.map((l) => l.path)).toEqual(['roles.deploy-production.allow[1]']);
  });

  it('exits 2 naming the problem when a side does not load', () => {
    const r = run(['policy', 'diff', 'config/example.yaml', 'no-such-rev:credbroker.yaml']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no-such-rev:credbroker\.yaml: no such file, and git show failed/);
  });
});
