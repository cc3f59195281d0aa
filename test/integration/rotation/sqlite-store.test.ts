// The SQLite store on a real file: versioned migrations at open, rotation state round trip,
// and the leader lease with its fencing token.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../../server/src/store/sqlite.js';
import { SQLITE_MIGRATIONS } from '../../../server/src/store/migrations.js';
import { openStore, assertPersistentStore, StoreError } from '../../../server/src/store/index.js';
import { MemoryStore } from '../../../server/src/store/memory.js';
import { storeContract } from './store-contract.js';
import { chainVerifier } from '../../../server/src/core/audit-chain.js';

let dir: string;
let file: string;
let nowMs = 1_000_000;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'credbroker-store-'));
  file = path.join(dir, 'store.sqlite');
  nowMs = 1_000_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const open = () => SqliteStore.open(file, { nowMs: () => nowMs });

describe('SQLite store', () => {
  it('applies every migration once, records it, and is owner-only on disk', async () => {
    const s = open();
    expect(await s.schemaVersion()).toBe(SQLITE_MIGRATIONS.length);
    await s.close();
    const again = open();
    await again.close();
    const db = new Database(file, { readonly: true });
    const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    db.close();
    expect(rows).toEqual(SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('applies only the new migrations when a later version appends one', async () => {
    (await open()).close();
    const extra = [...SQLITE_MIGRATIONS, { version: SQLITE_MIGRATIONS.length + 1, name: 'later_table', sql: 'CREATE TABLE later_table (id INTEGER PRIMARY KEY);' }];
    const s = SqliteStore.open(file, { migrations: extra });
    expect(await s.schemaVersion()).toBe(extra.length);
    await s.close();
  });

  it('refuses a store written by a newer credbroker, and a changed migration', async () => {
    const extra = [...SQLITE_MIGRATIONS, { version: SQLITE_MIGRATIONS.length + 1, name: 'future', sql: 'CREATE TABLE future (id INTEGER);' }];
    (SqliteStore.open(file, { migrations: extra })).close();
    expect(() => open()).toThrow(expect.objectContaining({ code: 'ERR_STORE_SCHEMA_TOO_NEW' }));
    const renamed = SQLITE_MIGRATIONS.map((m, i) => (i === 0 ? { ...m, name: 'renamed' } : m));
    expect(() => SqliteStore.open(file, { migrations: [...renamed, extra.at(-1)!] })).toThrow(expect.objectContaining({ code: 'ERR_STORE_MIGRATION_CHANGED' }));
  });

  it('read-only open creates nothing', async () => {
    expect(() => SqliteStore.open(file, { readonly: true })).toThrow(expect.objectContaining({ code: 'ERR_STORE_UNAVAILABLE' }));
    await expect(openStore({ driver: 'sqlite', sqlite_path: file }, { readonly: true })).rejects.toBeInstanceOf(StoreError);
  });

  it('the memory store is refused for rotation', async () => {
    const mem = await openStore({ driver: 'memory', sqlite_path: '' });
    expect(() => assertPersistentStore(mem)).toThrow(expect.objectContaining({ code: 'ERR_STORE_NOT_PERSISTENT' }));
    await expect(openStore({ driver: 'postgres', sqlite_path: '' })).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
  });
});

storeContract('SQLite', async (clock) => {
  const d = mkdtempSync(path.join(tmpdir(), 'credbroker-contract-'));
  const f = path.join(d, 'store.sqlite');
  const a = SqliteStore.open(f, { nowMs: () => clock.nowMs });
  const b = SqliteStore.open(f, { nowMs: () => clock.nowMs });
  return {
    a,
    b,
    async close() {
      await a.close();
      await b.close();
      rmSync(d, { recursive: true, force: true });
    },
  };
});

storeContract('memory', async (clock) => {
  const m = new MemoryStore(() => clock.nowMs);
  return { a: m, b: m, close: async () => {} };
});

describe('SQLite store: group commit', () => {
  it('commits each write before its promise settles: 300 concurrent claims and appends, every one already visible to another connection', async () => {
    const s = open();
    const reader = new Database(file, { readonly: true });
    try {
      const expires = new Date(nowMs + 60_000);
      const seen: boolean[] = [];
      await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          if (i % 2 === 0) {
            expect(await s.claimToken(`t${i}`, expires, new Date(nowMs))).toBe(true);
            seen.push(reader.prepare('SELECT 1 FROM token_ledger WHERE key = ?').get(`t${i}`) !== undefined);
          } else {
            const row = await s.appendAudit({ time: new Date(nowMs).toISOString(), event: 'exchange', subject: `s${i}` });
            seen.push(reader.prepare('SELECT 1 FROM audit_chain WHERE seq = ?').get(row.seq) !== undefined);
          }
        }),
      );
      expect(seen.filter(Boolean)).toHaveLength(300);
      const v = chainVerifier();
      v.add(await s.scanAudit(0, 1000));
      expect(v.result().ok).toBe(true);
      expect(v.result().checked).toBe(150);
    } finally {
      reader.close();
      await s.close();
    }
  });

  it('a write that fails is undone alone: the other writes of its batch commit', async () => {
    const s = open();
    try {
      const key = { id: 'k-test', secret: Buffer.alloc(32, 7) };
      await s.appendAudit({ time: new Date(nowMs).toISOString(), event: 'exchange' }, key);
      // Same turn of the event loop, so one batch: an unkeyed append onto a keyed chain is refused.
      const [refused, claimed, appended] = await Promise.allSettled([
        s.appendAudit({ time: new Date(nowMs).toISOString(), event: 'exchange' }),
        s.claimToken('after-failure', new Date(nowMs + 60_000), new Date(nowMs)),
        s.appendAudit({ time: new Date(nowMs).toISOString(), event: 'exchange' }, key),
      ]);
      expect(refused.status).toBe('rejected');
      expect(claimed).toEqual({ status: 'fulfilled', value: true });
      expect(appended.status === 'fulfilled' && appended.value.seq).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('close() commits the writes already accepted', async () => {
    const s = open();
    const pending = s.claimToken('at-close', new Date(nowMs + 60_000), new Date(nowMs));
    await s.close();
    expect(await pending).toBe(true);
    const again = open();
    expect(await again.claimToken('at-close', new Date(nowMs + 60_000), new Date(nowMs))).toBe(false);
    await again.close();
  });
});

