// The admin commands on the shared store, as an operator runs them next to a running broker:
// `credbroker revoke` in one process is enforced by `credbroker serve` in another (same SQLite
// store); `audit` finds the decisions; `audit verify` checks the keyed chain against the signed
// checkpoints the broker logged, and catches a row edited with SQL, the whole chain rewritten with
// SQL (recomputed without the key), and the newest records deleted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startServe, until as poll, TEST_AWS_ENV, type ServeProcess } from '../support/serve-process.js';
import { chainHash, GENESIS_HASH } from '../../server/src/core/audit-chain.js';

let issuer: TestIssuer;
let sts: FakeSts;
let broker: ServeProcess;
let url = '';
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-ops-'));
const file = path.join(dir, 'credbroker.yaml');
const db = path.join(dir, 'store.sqlite');
const auditKey = randomBytes(32).toString('base64');
const env = { ...process.env, ...TEST_AWS_ENV, CREDBROKER_TEST_AUDIT_KEY: auditKey };
const logFile = path.join(dir, 'broker.log');

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
      'metrics: { port: 0 }',
      `aws: { sts_endpoint: "${sts.endpoint}", role_chaining: never }`,
      `store: { driver: sqlite, sqlite_path: ${JSON.stringify(db)} }`,
      'audit: { sink: store, hmac_key_env: CREDBROKER_TEST_AUDIT_KEY }',
      'revocation: { poll_ms: 200 }',
      'issuers:',
      `  github: { preset: github-actions, url: "${issuer.url}", audiences: [${TEST_AUDIENCE}], allow_insecure_http: true }`,
      'roles:',
      '  deploy:',
      '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
      '    allow: [{ issuer: github, claims: { repository_owner_id: "9919", repository_id: "487920697" } }]',
    ].join('\n'),
  );
  broker = await startServe(file, { CREDBROKER_TEST_AUDIT_KEY: auditKey });
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

  it('refuses a revocation without a reason (usage, exit 2) or without a target (exit 1), with the problem on stderr', () => {
    const r = cli(['revoke', '--issuer', 'github', '--claim', 'repository_id=1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^credbroker revoke: --reason is required: .*; see credbroker revoke --help\nusage: credbroker revoke --reason TEXT /);
    const untargeted = cli(['revoke', '--reason', 'no target']);
    expect(untargeted.status).toBe(1);
    expect(untargeted.stderr.split('\n').filter((l) => l && !l.startsWith('warning: '))).toEqual([expect.stringMatching(/^credbroker revoke: /)]);
  });

  it('warns when a claim name is one no token of the issuer carries (it would never match)', () => {
    const r = cli(['revoke', '--issuer', 'github', '--claim', 'repo_id=487920697', '--reason', 'typo check', '--expires-in', '1m']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('warning: --claim repo_id: no github-actions token is known to carry the claim "repo_id" (did you mean "repository_id"?): this revocation matches no token\n');
    const { id } = JSON.parse(r.stdout) as { id: string };
    expect(cli(['unrevoke', id]).status).toBe(0);
    const known = cli(['revoke', '--issuer', 'github', '--claim', 'repository_id=1', '--reason', 'no warning', '--expires-in', '1m']);
    expect(known.stderr).not.toContain('--claim');
    expect(cli(['unrevoke', (JSON.parse(known.stdout) as { id: string }).id]).status).toBe(0);
  });
});

describe('audit from the command line', () => {
  it('finds decisions by role and decision, as a table for people', () => {
    const r = cli(['audit', '--role', 'deploy', '--decision', 'deny', '--since', '1h']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SEQ +TIME +EVENT +DECISION +ROLE +WHO +DETAIL$/);
    expect(lines.slice(1, -1).length).toBeGreaterThan(0);
    for (const line of lines.slice(1, -1)) expect(line).toMatch(/^\d+ +\d{4}-\d\d-\d\dT\S+ +exchange +deny +deploy +repo:\S+ +ERR_\w+$/);
    expect(lines.some((l) => l.endsWith(' ERR_REVOKED'))).toBe(true);
    expect(lines.at(-1)).toBe(`${lines.length - 2} record(s), newest first; --json for every field`);
    const none = cli(['audit', '--role', 'no-such-role']);
    expect(none.stdout).toBe('no matching records\n');
  });

  it('finds decisions by role and decision, one JSON object per line with --json', () => {
    const r = cli(['audit', '--role', 'deploy', '--decision', 'deny', '--since', '1h', '--json']);
    expect(r.status).toBe(0);
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(0);
    for (const rec of records) expect(rec).toMatchObject({ event: 'exchange', role: 'deploy', decision: 'deny' });
    expect(records.some((rec) => rec.code === 'ERR_REVOKED')).toBe(true);
    const admin = cli(['audit', '--event', 'admin.revoke', '--json']);
    expect(admin.stdout).toContain('"token leak"');
    expect(cli(['audit', '--event', 'admin.revoke']).stdout).toMatch(/ admin\.revoke +cli:\S+ +token leak$/m);
  });

  it('verifies the keyed chain against the checkpoints the broker logged, the last one at shutdown', async () => {
    expect((await exchange()).status).toBe(200);
    // Stopped from here on: nothing appends while the table is tampered with below.
    expect(await broker.stop('SIGTERM')).toBe(0);
    writeFileSync(logFile, broker.stderr());
    const head = rows().at(-1)!.seq;
    expect(checkpointSeqs(broker.stderr()).at(-1)).toBe(head);
    const ok = cli(['audit', 'verify', '--checkpoints', logFile]);
    expect(ok.status).toBe(0);
    const result = JSON.parse(ok.stdout) as Verification;
    expect(result).toMatchObject({ ok: true, checked: head, legacy: null, keyed: { from: 1, to: head }, problems: [] });
    expect(result.checkpoints.valid).toBeGreaterThanOrEqual(2); // at start and at shutdown
    expect(result.checkpoints.read).toBe(result.checkpoints.valid);
  });

  it('catches a record edited with SQL', () => {
    const snapshot = rows();
    withDb((sqlite) =>
      sqlite.prepare(`UPDATE audit_chain SET record = replace(record, '"deny"', '"allow"') WHERE seq = (SELECT min(seq) FROM audit_chain WHERE decision = 'deny')`).run(),
    );
    const bad = cli(['audit', 'verify']);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, problems: [expect.objectContaining({ kind: 'modified' })] });
    expect(bad.stderr).toMatch(/^problem: record \d+: content does not match the stored hash/m);
    restore(snapshot);
    expect(cli(['audit', 'verify']).status).toBe(0);
  });

  it('catches the whole chain rewritten with SQL and recomputed without the key, by the checkpoints', () => {
    const snapshot = rows();
    // What a database writer can do: change a decision, then recompute every hash as a legacy chain.
    withDb((sqlite) => {
      let prev = GENESIS_HASH;
      const update = sqlite.prepare('UPDATE audit_chain SET prev_hash = ?, hash = ?, key_id = NULL, record = ? WHERE seq = ?');
      for (const r of snapshot) {
        const record = JSON.parse(r.record) as Record<string, unknown>;
        if (record.decision === 'deny') record.decision = 'allow';
        const hash = chainHash(r.seq, prev, record);
        update.run(prev, hash, JSON.stringify(record), r.seq);
        prev = hash;
      }
    });
    const caught = cli(['audit', 'verify', '--checkpoints', logFile]);
    expect(caught.status).toBe(1);
    const result = JSON.parse(caught.stdout) as Verification;
    expect(result.problems).toContainEqual(expect.objectContaining({ kind: 'checkpoint-mismatch' }));
    expect(result.legacy).toMatchObject({ from: 1 }); // it looks like a legacy chain…
    // …and without a checkpoint it would pass, with warnings saying exactly that.
    const blind = cli(['audit', 'verify']);
    expect(JSON.parse(blind.stdout)).toMatchObject({ ok: true });
    expect(blind.stderr).toMatch(/warning: records 1–\d+ are legacy \(unkeyed\) and no keyed record follows: a database writer could rewrite them undetected/);
    expect(blind.stderr).toMatch(/warning: no checkpoint was checked/);
    restore(snapshot);
    expect(cli(['audit', 'verify', '--checkpoints', logFile]).status).toBe(0);
  });

  it('catches the deletion of the newest records with the checkpoint written at shutdown', () => {
    const head = rows().at(-1)!.seq;
    withDb((sqlite) => sqlite.prepare('DELETE FROM audit_chain WHERE seq > ?').run(head - 2));
    const r = cli(['audit', 'verify', '--checkpoints', logFile]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).problems).toContainEqual(expect.objectContaining({ kind: 'head-behind-checkpoint', headSeq: head - 2, checkpointSeq: head }));
    expect(r.stderr).toContain(`records ${head - 1}–${head} were deleted`);
  });
});

const checkpointSeqs = (log: string) =>
  log
    .split('\n')
    .filter((l) => l.includes('"audit_checkpoint"'))
    .map((l) => (JSON.parse(l) as { audit_checkpoint: { seq: number } }).audit_checkpoint.seq);

interface Verification {
  ok: boolean;
  checked: number;
  legacy: { from: number; to: number } | null;
  checkpoints: { read: number; valid: number };
  problems: Array<{ kind: string }>;
}

interface Row {
  seq: number;
  prev_hash: string;
  hash: string;
  key_id: string | null;
  time_ms: number | null;
  event: string | null;
  subject: string | null;
  role: string | null;
  decision: string | null;
  record: string;
}

function withDb<T>(fn: (sqlite: Database.Database) => T): T {
  const sqlite = new Database(db);
  try {
    return fn(sqlite);
  } finally {
    sqlite.close();
  }
}

const rows = () => withDb((sqlite) => sqlite.prepare('SELECT * FROM audit_chain ORDER BY seq').all() as Row[]);

function restore(snapshot: Row[]): void {
  withDb((sqlite) =>
    sqlite.transaction(() => {
      sqlite.prepare('DELETE FROM audit_chain').run();
      const insert = sqlite.prepare(
        'INSERT INTO audit_chain (seq, prev_hash, hash, key_id, time_ms, event, subject, role, decision, record) VALUES (@seq, @prev_hash, @hash, @key_id, @time_ms, @event, @subject, @role, @decision, @record)',
      );
      for (const r of snapshot) insert.run(r);
    })(),
  );
}
