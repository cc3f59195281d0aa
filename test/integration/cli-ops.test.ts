// The admin commands on the shared store, as an operator runs them next to a running broker:
// `credbroker revoke` in one process is enforced by `credbroker serve` in another (same SQLite
// store); `audit` finds the decisions; `audit verify` catches a row edited with SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startServe, until as poll, TEST_AWS_ENV, type ServeProcess } from '../support/serve-process.js';

let issuer: TestIssuer;
let sts: FakeSts;
let broker: ServeProcess;
let url = '';
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-ops-'));
const file = path.join(dir, 'credbroker.yaml');
const db = path.join(dir, 'store.sqlite');
const env = { ...process.env, ...TEST_AWS_ENV };

const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', ...args, '--config', file], { encoding: 'utf8', env, timeout: 60_000 });
const exchange = async (extra: Record<string, unknown> = {}) =>
  requestCredentials(url, await issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra }));

const until = (predicate: () => boolean | Promise<boolean>) => poll(predicate, 10_000, () => broker.stderr());

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
  writeFileSync(
    file,
    [
      'server: { port: 0 }',
      `aws: { sts_endpoint: "${sts.endpoint}", role_chaining: never }`,
      `store: { driver: sqlite, sqlite_path: ${JSON.stringify(db)} }`,
      'audit: { sink: store }',
      'revocation: { poll_ms: 200 }',
      'issuers:',
      `  github: { preset: github-actions, url: "${issuer.url}", audiences: [${TEST_AUDIENCE}], allow_insecure_http: true }`,
      'roles:',
      '  deploy:',
      '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
      '    allow: [{ issuer: github, claims: { repository_owner_id: "9919", repository_id: "487920697" } }]',
    ].join('\n'),
  );
  broker = await startServe(file);
  url = broker.url;
});

afterAll(async () => {
  await broker?.stop();
  await Promise.all([issuer?.close(), sts?.close()]);
});

describe('revocation from the command line', () => {
  it('is enforced by the running broker within a second, and lifted by unrevoke', async () => {
    expect((await exchange()).status).toBe(200);
    const r = cli(['revoke', '--issuer', 'github', '--claim', 'repository_id=487920697', '--reason', 'token leak', '--expires-in', '1h']);
    // Only lint warnings (the local test issuer is http) may appear on stderr.
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('warning: '))).toEqual([]);
    expect(r.status).toBe(0);
    const revocation = JSON.parse(r.stdout) as { id: string; created_by: string; expires_at: string };
    expect(revocation.created_by).toMatch(/^cli:/);
    expect(Date.parse(revocation.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    const took = await until(async () => (await exchange()).body?.error?.code === 'ERR_REVOKED');
    expect(took).toBeLessThan(1000);

    const list = JSON.parse(cli(['revocations']).stdout) as { revocations: Array<{ id: string }> };
    expect(list.revocations.map((x) => x.id)).toEqual([revocation.id]);
    expect(cli(['unrevoke', revocation.id]).status).toBe(0);
    await until(async () => (await exchange()).status === 200);
    expect(cli(['unrevoke', revocation.id]).status).toBe(1);
  });

  it('refuses a revocation without a reason or a target, with the problem on stderr', () => {
    const r = cli(['revoke', '--issuer', 'github', '--claim', 'repository_id=1']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/reason/);
  });
});

describe('audit from the command line', () => {
  it('finds decisions by role and decision, one JSON object per line', () => {
    const r = cli(['audit', '--role', 'deploy', '--decision', 'deny', '--since', '1h']);
    expect(r.status).toBe(0);
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(0);
    for (const rec of records) expect(rec).toMatchObject({ event: 'exchange', role: 'deploy', decision: 'deny' });
    expect(records.some((rec) => rec.code === 'ERR_REVOKED')).toBe(true);
    const admin = cli(['audit', '--event', 'admin.revoke']);
    expect(admin.stdout).toContain('"token leak"');
  });

  it('verifies the chain, and catches a record edited with SQL', () => {
    const ok = cli(['audit', 'verify']);
    expect(ok.status).toBe(0);
    const result = JSON.parse(ok.stdout) as { ok: boolean; checked: number; head: { seq: number; hash: string } };
    expect(result.ok).toBe(true);
    expect(result.checked).toBeGreaterThan(3);
    const sqlite = new Database(db);
    try {
      sqlite.prepare(`UPDATE audit_chain SET record = replace(record, '"deny"', '"allow"') WHERE seq = (SELECT min(seq) FROM audit_chain WHERE decision = 'deny')`).run();
    } finally {
      sqlite.close();
    }
    const bad = cli(['audit', 'verify', '--head', result.head.hash]);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, problems: expect.arrayContaining([expect.objectContaining({ kind: 'modified' })]) });
  });
});
