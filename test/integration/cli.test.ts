// The broker as users start it: `credbroker serve` and `credbroker config validate` as real
// processes, with real config files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startServe } from '../support/serve-process.js';
import { startFakeSts } from '../support/fake-sts.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';

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

  it('reports a missing audit.path together with a malformed role, not after it is fixed', () => {
    const file = path.join(dir, 'together.yaml');
    writeFileSync(
      file,
      [
        'audit: { sink: file }',
        'issuers:',
        '  gh: { preset: github-actions, audiences: [https://broker] }',
        'roles:',
        '  deploy:',
        '    arn: arn:aws:iam::111122223333:role/x',
        '    max_duration_seconds: 5',
        '    allow: [{ issuer: gh, claims: { repository_id: "1" } }, { issuer: nobody, claims: { ref: main } }, { issuer: gh, claims: { ref: main }, bogus: 1 }]',
      ].join('\n'),
    );
    const r = run(['config', 'validate', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('roles.deploy.max_duration_seconds');
    expect(r.stderr).toContain('audit.path: required when audit.sink is "file"');
    expect(r.stderr).toContain('roles.deploy.allow[2]');
    // The known issuers are the configured ones: no stand-in, nothing unprintable.
    expect(r.stderr).toContain('roles.deploy.allow[1].issuer: unknown issuer "nobody" (known: gh)\n');
    expect(r.stderr).not.toMatch(/[\u0000-\u0008]|placeholder/);
  });

  it('reports an unset ${VAR} with its line, and still every other problem', () => {
    const file = path.join(dir, 'env.yaml');
    writeFileSync(
      file,
      [
        '# ${NOT_THIS_ONE} in a comment is documentation',
        'audit: { sink: file }',
        'issuers:',
        '  gh: { preset: github-actions, url: "${CREDBROKER_TEST_UNSET_URL}", audiences: [https://broker] }',
        'roles:',
        '  deploy:',
        '    arn: arn:aws:iam::${CREDBROKER_TEST_UNSET_ACCOUNT}:role/x',
        '    allow: [{ issuer: gh, claims: { repository_id: "1" } }]',
        '  broken: { arn: nope, allow: [{ issuer: gh, claims: { repository_id: "1" } }] }',
      ].join('\n'),
    );
    const r = run(['config', 'validate', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('  - line 4: ${CREDBROKER_TEST_UNSET_URL}: the environment variable CREDBROKER_TEST_UNSET_URL is not set\n');
    expect(r.stderr).toContain('  - line 7: ${CREDBROKER_TEST_UNSET_ACCOUNT}: the environment variable CREDBROKER_TEST_UNSET_ACCOUNT is not set\n');
    expect(r.stderr).toContain('audit.path: required when audit.sink is "file"');
    expect(r.stderr).toContain('roles.broken.arn');
    // Not reported twice: the values on those lines are empty because the variables are unset.
    expect(r.stderr).not.toContain('issuers.gh.url');
    expect(r.stderr).not.toContain('roles.deploy.arn');
    expect(r.stderr).not.toContain('NOT_THIS_ONE');
  });

  it('lists the valid condition forms when a condition is not one, e.g. {regex: …}', () => {
    const file = path.join(dir, 'regex.yaml');
    writeFileSync(file, ['issuers:', '  gh: { preset: github-actions, audiences: [https://broker] }', 'roles:', '  deploy:', '    arn: arn:aws:iam::111122223333:role/x', '    allow: [{ issuer: gh, claims: { repository_id: "1", ref: { regex: "^refs/heads/.*" } } }]'].join('\n'));
    const r = run(['config', 'validate', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'roles.deploy.allow[0].claims.ref: unknown condition "regex": expected a value, a list of values, {equals: V}, {one_of: [V, …]}, {glob: PATTERN or [PATTERN, …]}, {present: true|false} or {contains: V or [V, …]} (regular expressions are not supported: use glob',
    );
  });

  it('--json reports problems and warnings for scripts; --strict makes warnings fail', () => {
    const lint = path.join(dir, 'lint.yaml');
    const ok = run(['config', 'validate', '--config', lint, '--json']);
    expect(ok.status).toBe(0);
    expect(ok.stderr).toBe('');
    const report = JSON.parse(ok.stdout) as { ok: boolean; file: string; problems: unknown[]; warnings: Array<{ path: string; message: string }>; roles: number };
    expect(report).toMatchObject({ ok: true, file: lint, problems: [], roles: 1, strict: false });
    expect(report.warnings.map((w) => w.path)).toContain('roles.deploy.allow[0]');

    const strict = run(['config', 'validate', '--config', lint, '--strict']);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toMatch(/^warning: roles\.deploy\.allow\[0\]: binds on mutable name/m);
    expect(strict.stderr).toMatch(/--strict: \d+ warning\(s\) fail the check\n$/);
    expect(strict.stdout).toBe('');
    expect(JSON.parse(run(['config', 'validate', '--config', lint, '--strict', '--json']).stdout)).toMatchObject({ ok: false, strict: true });
    // A config with no warning passes --strict.
    expect(run(['config', 'validate', '--config', 'config/example.yaml', '--strict']).status).toBe(0);

    const bad = run(['config', 'validate', '--config', path.join(dir, 'regex.yaml'), '--json']);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, problems: [{ path: 'roles.deploy.allow[0].claims.ref' }] });
  });

  it('warns about a claim no token of the issuer carries, with the likely intended one', () => {
    const file = path.join(dir, 'typo.yaml');
    writeFileSync(file, ['issuers:', '  gh: { preset: github-actions, audiences: [https://broker] }', 'roles:', '  deploy:', '    arn: arn:aws:iam::111122223333:role/x', '    allow: [{ issuer: gh, claims: { repository_owner_id: "9919", repo_id: "1" } }]'].join('\n'));
    const r = run(['config', 'validate', '--config', file]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('warning: roles.deploy.allow[0].claims.repo_id: no github-actions token is known to carry the claim "repo_id" (did you mean "repository_id"?): this binding never matches\n');
  });

  it('names a missing config file in one line', () => {
    const r = run(['config', 'validate', '--config', path.join(dir, 'absent.yaml')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`credbroker config validate: config file not found: ${path.join(dir, 'absent.yaml')}\n`);
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

  it('writes only JSON lines on stderr: lint warnings through the logger, no AWS SDK banner (even on Node 20)', async () => {
    const sts = await startFakeSts();
    const file = path.join(dir, 'json-lines.yaml');
    writeFileSync(
      file,
      [
        'server: { port: 0 }',
        'metrics: { enabled: false }',
        `aws: { sts_endpoint: "${sts.endpoint}", role_chaining: never }`,
        'issuers:',
        `  github: { preset: github-actions, url: "${issuer.url}", audiences: [${TEST_AUDIENCE}], allow_insecure_http: true }`,
        'roles:',
        '  deploy:',
        '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
        '    allow: [{ issuer: github, claims: { repository_owner_id: "9919", repository_id: "487920697" } }]',
      ].join('\n'),
    );
    // Without the variable the test runner sets: the CLI must silence the SDK's banner itself.
    const broker = await startServe(file, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined });
    try {
      // The first exchange loads the STS client, which is when the SDK would warn.
      const res = await requestCredentials(broker.url, await issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE }));
      expect(res.status).toBe(200);
    } finally {
      expect(await broker.stop('SIGTERM')).toBe(0);
      await sts.close();
    }
    const lines = broker.stderr().split('\n').filter((l) => l.trim() !== '');
    const notJson = lines.filter((l) => {
      try {
        return typeof JSON.parse(l) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    expect(broker.stderr()).not.toMatch(/NodeVersionSupportWarning|upgrade to node/i);
    const warning = lines.map((l) => JSON.parse(l) as { msg: string; warning?: string }).find((l) => l.msg === 'config lint warning');
    expect(warning?.warning).toBe('issuers.github.allow_insecure_http: http issuer allowed: for local testing only');
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
