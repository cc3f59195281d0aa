// The PostgreSQL store on the real server: migrations at open (once, even when replicas start
// together), the store contract shared with SQLite and memory, fencing against a stale holder,
// a tampered audit row caught, and the factory. Each test gets its own schema.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PostgresStore, redactUrl } from '../../../server/src/store/postgres.js';
import { POSTGRES_MIGRATIONS } from '../../../server/src/store/migrations.js';
import { openStore, emptyRotationState } from '../../../server/src/store/index.js';
import { verifyAuditChain } from '../../../server/src/audit/verify.js';
import { storeContract } from '../rotation/store-contract.js';
import { createTestSchema, type TestSchema } from './pg.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function schema(): Promise<TestSchema> {
  const s = await createTestSchema('store');
  cleanups.push(() => s.drop());
  return s;
}

async function openIn(s: TestSchema, opts: Parameters<typeof PostgresStore.open>[1] = {}): Promise<PostgresStore> {
  const store = await PostgresStore.open(s.url, opts);
  cleanups.push(() => store.close());
  return store;
}

describe('PostgreSQL store', () => {
  it('applies every migration once, even when several replicas open the store at the same moment', async () => {
    const s = await schema();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openIn(s)));
    for (const st of stores) expect(await st.schemaVersion()).toBe(POSTGRES_MIGRATIONS.length);
    const rows = (await s.query('SELECT version, name FROM schema_migrations ORDER BY version')).rows;
    expect(rows).toEqual(POSTGRES_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    const tables = (await s.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [s.schema])).rows.map((r) => r.t);
    expect(tables).toEqual(['audit_chain', 'audit_head', 'leases', 'rate_counters', 'revocations', 'revocations_version', 'rotation_state', 'schema_migrations', 'token_ledger']);
  });

  it('applies only new migrations, refuses a newer schema and a changed migration', async () => {
    const s = await schema();
    await (await openIn(s)).close();
    const extra = [...POSTGRES_MIGRATIONS, { version: POSTGRES_MIGRATIONS.length + 1, name: 'later', sql: 'CREATE TABLE later (id INT);' }];
    const st = await openIn(s, { migrations: extra });
    expect(await st.schemaVersion()).toBe(extra.length);
    await expect(PostgresStore.open(s.url)).rejects.toMatchObject({ code: 'ERR_STORE_SCHEMA_TOO_NEW' });
    const renamed = extra.map((m, i) => (i === 0 ? { ...m, name: 'renamed' } : m));
    await expect(PostgresStore.open(s.url, { migrations: renamed })).rejects.toMatchObject({ code: 'ERR_STORE_MIGRATION_CHANGED' });
  });

  it('a failing migration leaves nothing behind (one transaction)', async () => {
    const s = await schema();
    const broken = [...POSTGRES_MIGRATIONS, { version: POSTGRES_MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE half (id INT); SELEC nonsense;' }];
    await expect(PostgresStore.open(s.url, { migrations: broken })).rejects.toMatchObject({ code: 'ERR_STORE_MIGRATION_FAILED' });
    expect((await s.query(`SELECT to_regclass('schema_migrations') AS t`)).rows[0].t).toBeNull();
  });

  it('uses the database clock for leases when no clock is injected', async () => {
    const s = await schema();
    const a = await openIn(s);
    const before = Date.now();
    const lease = (await a.acquireLease('rotation', 'A', 30_000))!;
    expect(lease.expiresAt).toBeGreaterThanOrEqual(before + 30_000 - 2000);
    expect(lease.expiresAt).toBeLessThanOrEqual(Date.now() + 30_000 + 2000);
    expect(await a.acquireLease('rotation', 'B', 30_000)).toBeUndefined();
    // A write fenced by a token the table no longer holds is refused, whatever the clock says.
    await s.query(`UPDATE leases SET token = token + 1, holder = 'B'`);
    await expect(a.putRotationState(emptyRotationState('u', new Date()), lease)).rejects.toMatchObject({ code: 'ERR_STORE_LEASE_LOST' });
  });

  it('records the fencing token of the lease that wrote each rotation state', async () => {
    const s = await schema();
    const clock = { nowMs: 1_000_000 };
    const a = await openIn(s, { nowMs: () => clock.nowMs });
    const b = await openIn(s, { nowMs: () => clock.nowMs });
    const la = (await a.acquireLease('rotation', 'A', 10_000))!;
    await a.putRotationState(emptyRotationState('u', new Date()), la);
    clock.nowMs += 20_000;
    const lb = (await b.acquireLease('rotation', 'B', 10_000))!;
    await b.putRotationState({ ...emptyRotationState('u', new Date()), phase: 'verified' }, lb);
    expect((await s.query('SELECT fence FROM rotation_state')).rows[0].fence).toBe(String(lb.token));
  });

  it('detects an audit row changed with SQL', async () => {
    const s = await schema();
    const st = await openIn(s);
    for (let i = 0; i < 5; i++) await st.appendAudit({ time: new Date().toISOString(), event: 'exchange', decision: 'deny', subject: `s${i}` });
    expect(await verifyAuditChain(st)).toMatchObject({ ok: true, checked: 5 });
    await s.query(`UPDATE audit_chain SET record = replace(record::text, '"decision":"deny"', '"decision":"allow"')::json WHERE seq = 3`);
    expect((await verifyAuditChain(st)).problems).toContainEqual(expect.objectContaining({ kind: 'modified', seq: 3 }));
  });

  it('openStore builds it from config; connection errors never show the password', async () => {
    const s = await schema();
    const st = await openStore({ driver: 'postgres', sqlite_path: '', postgres_url: s.url });
    cleanups.push(() => st.close());
    expect(st.driver).toBe('postgres');
    const bad = 'postgres://user:hunter2secret@127.0.0.1:1/none';
    const err = await openStore({ driver: 'postgres', sqlite_path: '', postgres_url: bad }).then(
      () => new Error('opened'),
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect(err.message).not.toContain('hunter2secret');
    expect(redactUrl(bad)).toBe('postgres://user:***@127.0.0.1:1/none');
  });
});

describe('PostgreSQL store: writes batched per turn', () => {
  it('gives a token presented many times in one batch, and across two replicas, to exactly one caller', async () => {
    const s = await schema();
    const [a, b] = [await openIn(s), await openIn(s)];
    const expires = new Date(Date.now() + 60_000);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).claimToken('same', expires, new Date())));
    expect(results.filter(Boolean)).toHaveLength(1);
    const mixed = await Promise.all(Array.from({ length: 60 }, (_, i) => a.claimToken(`k${i % 20}`, expires, new Date())));
    expect(mixed.filter(Boolean)).toHaveLength(20);
  });

  it('counts each increment of a batch as if made alone', async () => {
    const s = await schema();
    const a = await openIn(s);
    const hits = await Promise.all(Array.from({ length: 25 }, () => a.incrementCounter('rl:ip:x', 60_000, new Date())));
    expect(hits.map((h) => h.hits).sort((x, y) => x - y)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect((await a.incrementCounter('rl:ip:x', 60_000, new Date())).hits).toBe(26);
  });

  it('chains 200 concurrent appends from two replicas into one chain that verifies, each stored before its promise settles', async () => {
    const s = await schema();
    const [a, b] = [await openIn(s), await openIn(s)];
    const key = { id: 'k-test', secret: Buffer.alloc(32, 9) };
    const stored: boolean[] = [];
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const row = await (i % 2 ? a : b).appendAudit({ time: new Date().toISOString(), event: 'exchange', subject: `s${i}`, note: 'é "quoted" \\ {json}' }, key);
        stored.push((await s.query('SELECT 1 FROM audit_chain WHERE seq = $1', [row.seq])).rowCount === 1);
      }),
    );
    expect(stored.filter(Boolean)).toHaveLength(200);
    const result = await verifyAuditChain(a, { keyring: { current: key, byId: new Map([[key.id, key]]) } });
    expect(result).toMatchObject({ ok: true, checked: 200 });
  });

  it('refuses an unkeyed append onto a keyed chain alone: the rest of its batch is appended', async () => {
    const s = await schema();
    const a = await openIn(s);
    const key = { id: 'k-test', secret: Buffer.alloc(32, 9) };
    await a.appendAudit({ time: new Date().toISOString(), event: 'exchange' }, key);
    const [refused, kept] = await Promise.allSettled([a.appendAudit({ time: new Date().toISOString(), event: 'exchange' }), a.appendAudit({ time: new Date().toISOString(), event: 'exchange' }, key)]);
    expect(refused.status).toBe('rejected');
    expect(kept.status === 'fulfilled' && kept.value.seq).toBe(2);
  });
});

// A contract test that fails skips its close(): this drops what it left.
const contractLeftovers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of contractLeftovers) await c().catch(() => undefined);
});

storeContract('PostgreSQL', async (clock) => {
  const s = await createTestSchema('contract');
  const a = await PostgresStore.open(s.url, { nowMs: () => clock.nowMs });
  const b = await PostgresStore.open(s.url, { nowMs: () => clock.nowMs });
  contractLeftovers.push(async () => {
    await a.close();
    await b.close();
    await s.drop();
  });
  return {
    a,
    b,
    async close() {
      await a.close();
      await b.close();
      await s.drop();
    },
  };
});
