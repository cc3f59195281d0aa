// The console's audit search and summary on every store driver (memory, SQLite, PostgreSQL): the
// same records give the same pages, counts and summaries, and 100 000 records page quickly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore } from '../../server/src/store/memory.js';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../server/src/store/sqlite.js';
import { auditColumns } from '../../server/src/store/audit-rows.js';
import { PostgresStore } from '../../server/src/store/postgres.js';
import type { AuditSearch, OpsStore } from '../../server/src/ops/types.js';
import type { AuditRecord } from '../../server/src/audit/types.js';
import { createTestSchema, type TestSchema } from '../integration/store/pg.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** 40 records over 40 minutes: exchanges of three repositories, a few admin records. */
function records(): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let i = 0; i < 40; i++) {
    // 17 s past each minute: buckets must start on the minute, not at the first record.
    const time = new Date(T0 + i * 60_000 + 17_000).toISOString();
    if (i % 10 === 9) {
      out.push({ time, event: 'admin.request', admin: 'alice', route: '/v1/admin/audit' });
      continue;
    }
    const repo = ['487920697', '100', '200'][i % 3]!;
    const decision = i % 4 === 0 ? 'deny' : i % 7 === 0 ? 'error' : 'allow';
    out.push({
      time,
      event: 'exchange',
      request_id: `req-${i}`,
      issuer: i % 2 === 0 ? 'github' : 'gitlab',
      subject: `repo:octo/${repo}:ref:refs/heads/main`,
      role: i % 5 === 0 ? 'deploy-production' : 'deploy',
      decision,
      ...(decision === 'deny' ? { code: 'ERR_POLICY_DENIED', reason: i % 8 === 0 ? 'ERR_POLICY_DENY_RULE' : 'ERR_POLICY_NO_MATCH' } : {}),
      claims: { repository_id: repo, ref: i % 6 === 0 ? 'refs/heads/release/v1' : 'refs/heads/main', ref_protected: i % 2 === 0, run_number: i, note: i === 3 ? '<script>alert(1)</script>' : 'ok' },
    });
  }
  return out;
}

type Open = () => Promise<{ store: OpsStore; close(): Promise<void> }>;
const scratch = mkdtempSync(path.join(tmpdir(), 'cb-audit-search-'));
let pgSchema: TestSchema | undefined;
afterAll(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await pgSchema?.drop();
});

const drivers: Array<[string, Open]> = [
  ['memory', async () => ({ store: new MemoryStore(), close: async () => undefined })],
  [
    'sqlite',
    async () => {
      const store = SqliteStore.open(path.join(scratch, `s-${Math.random()}.sqlite`));
      return { store, close: () => store.close() };
    },
  ],
  [
    'postgres',
    async () => {
      pgSchema ??= await createTestSchema('search');
      const store = await PostgresStore.open(pgSchema.url);
      await pgSchema.query('DELETE FROM audit_chain');
      await pgSchema.query('UPDATE audit_head SET seq = 0, hash = $1', ['0'.repeat(64)]).catch(() => undefined);
      return { store, close: () => store.close() };
    },
  ],
];

const seqsOf = async (store: OpsStore, q: AuditSearch) => (await store.searchAudit(q)).map((r) => r.seq);
const expected = (pred: (r: AuditRecord, seq: number) => boolean) =>
  records()
    .map((r, i) => [r, i + 1] as const)
    .filter(([r, seq]) => pred(r, seq))
    .map(([, seq]) => seq)
    .reverse();
const claim = (r: AuditRecord, name: string) => (r.claims as Record<string, unknown> | undefined)?.[name];

describe.each(drivers)('audit search on the %s store', (_name, open) => {
  let store: OpsStore;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, close } = await open());
    for (const r of records()) await store.appendAudit(r);
  });
  afterAll(() => close());

  it('pages newest first by seq, forwards and back', async () => {
    const all = expected(() => true);
    expect(await seqsOf(store, { limit: 10 })).toEqual(all.slice(0, 10));
    expect(await seqsOf(store, { limit: 10, beforeSeq: 31 })).toEqual(all.slice(10, 20));
    expect(await seqsOf(store, { limit: 10, afterSeq: 20 })).toEqual(all.slice(10, 20));
    expect(await seqsOf(store, { limit: 10, afterSeq: 35 })).toEqual([40, 39, 38, 37, 36]);
  });

  it('filters by decision, role, issuer, event and event prefix together', async () => {
    expect(await seqsOf(store, { limit: 100, decision: 'deny', issuer: 'github', event: 'exchange' })).toEqual(
      expected((r) => r.decision === 'deny' && r.issuer === 'github'),
    );
    expect(await seqsOf(store, { limit: 100, role: 'deploy-production' })).toEqual(expected((r) => r.role === 'deploy-production'));
    expect(await seqsOf(store, { limit: 100, eventPrefix: 'admin.' })).toEqual(expected((r) => r.event.startsWith('admin.')));
  });

  it('filters by any claim: text equality, a * pattern, and booleans and numbers spelled as JSON', async () => {
    expect(await seqsOf(store, { limit: 100, claims: [{ name: 'repository_id', value: '100' }] })).toEqual(expected((r) => claim(r, 'repository_id') === '100'));
    expect(await seqsOf(store, { limit: 100, claims: [{ name: 'ref', value: 'refs/heads/release/*' }] })).toEqual(
      expected((r) => String(claim(r, 'ref')).startsWith('refs/heads/release/')),
    );
    expect(await seqsOf(store, { limit: 100, claims: [{ name: 'ref', value: 'refs/heads/%' }] })).toEqual([]);
    expect(await seqsOf(store, { limit: 100, claims: [{ name: 'ref_protected', value: 'true' }, { name: 'run_number', value: '12' }] })).toEqual([13]);
  });

  it('finds text anywhere in the record, case-insensitively, and by time range', async () => {
    expect(await seqsOf(store, { limit: 100, text: '<SCRIPT>' })).toEqual([4]);
    const since = new Date(T0 + 5 * 60_000);
    const until = new Date(T0 + 8 * 60_000);
    expect(await seqsOf(store, { limit: 100, since, until })).toEqual([8, 7, 6]);
  });

  it('counts matches up to a cap', async () => {
    expect(await store.countAudit({ limit: 0, decision: 'deny' }, 1000)).toBe(expected((r) => r.decision === 'deny').length);
    expect(await store.countAudit({ limit: 0 }, 5)).toBe(6);
  });

  it('summarizes exchanges per minute, denial reasons and identities', async () => {
    const s = await store.summarizeAudit({ since: new Date(T0), until: new Date(T0 + 3600_000), bucketMs: 60_000, top: 2 });
    const exchanges = records().filter((r) => r.event === 'exchange');
    expect(s.buckets).toHaveLength(exchanges.length);
    expect(s.buckets[0]).toEqual({ start: T0, allow: 0, deny: 1, error: 0 });
    expect(s.buckets.reduce((n, b) => n + b.allow + b.deny + b.error, 0)).toBe(exchanges.length);
    const denies = exchanges.filter((r) => r.decision === 'deny');
    expect(s.denyReasons.reduce((n, r) => n + r.count, 0)).toBe(denies.length);
    const byReason = (reason: string) => denies.filter((r) => r.reason === reason).length;
    // Most frequent first; equal counts by name.
    expect(s.denyReasons).toEqual([
      { reason: 'ERR_POLICY_DENY_RULE', count: byReason('ERR_POLICY_DENY_RULE') },
      { reason: 'ERR_POLICY_NO_MATCH', count: byReason('ERR_POLICY_NO_MATCH') },
    ]);
    expect(byReason('ERR_POLICY_DENY_RULE')).toBe(byReason('ERR_POLICY_NO_MATCH'));
    expect(s.identities).toHaveLength(2);
    expect(s.identities[0]!.total).toBeGreaterThanOrEqual(s.identities[1]!.total);
    const top = s.identities[0]!;
    expect(top.allow + top.deny + top.error).toBe(top.total);
    expect(top.total).toBe(exchanges.filter((r) => r.issuer === top.issuer && r.subject === top.subject).length);
  });
});

describe('audit search over 100 000 records (SQLite)', () => {
  it('answers a filtered page deep in the trail quickly', async () => {
    const file = path.join(scratch, 'big.sqlite');
    const store = SqliteStore.open(file);
    try {
      const rows = Array.from({ length: 100_000 }, (_, i): AuditRecord => ({
        time: new Date(T0 + i * 1000).toISOString(),
        event: 'exchange',
        issuer: 'github',
        subject: `repo:octo/app${i % 500}:ref:refs/heads/main`,
        role: i % 2 ? 'deploy' : 'build',
        decision: i % 10 === 0 ? 'deny' : 'allow',
        claims: { repository_id: String(i % 500), ref: 'refs/heads/main' },
      }));
      // Rows written straight into the table in one transaction (appendAudit syncs each record to
      // disk, minutes for 100 000); the search reads columns and JSON, not the chain's hashes.
      const db = new Database(file);
      const insert = db.prepare('INSERT INTO audit_chain (seq, prev_hash, hash, time_ms, event, subject, role, decision, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      db.transaction(() => {
        rows.forEach((r, i) => {
          const c = auditColumns(r);
          insert.run(i + 1, 'x', 'x', c.timeMs, c.event, c.subject, c.role, c.decision, c.json);
        });
      })();
      db.close();
      const started = performance.now();
      const page = await store.searchAudit({ limit: 50, decision: 'deny', claims: [{ name: 'repository_id', value: '250' }], beforeSeq: 60_000 });
      const count = await store.countAudit({ limit: 0, decision: 'deny', claims: [{ name: 'repository_id', value: '250' }] }, 10_000);
      const ms = performance.now() - started;
      expect(page.length).toBe(50);
      expect(page.every((r) => r.seq < 60_000 && r.record.decision === 'deny')).toBe(true);
      expect(count).toBe(200);
      expect(ms).toBeLessThan(3000);
    } finally {
      await store.close();
    }
  }, 120_000);
});
