// Tamper evidence that survives a database writer, on both SQL stores. The broker's sink chains
// records with an HMAC key the database never holds and writes signed checkpoints of the head to
// a file; then someone with write access to the database rewrites the audit table with SQL — the
// chain recomputed without the key, or with a key of their own — or deletes the newest records.
// `audit verify` (the function the admin API uses, and the CLI) must name what was done. Rows
// written before keying existed stay verifiable as legacy.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../server/src/store/sqlite.js';
import { PostgresStore } from '../../server/src/store/postgres.js';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../../server/src/store/migrations.js';
import type { Store } from '../../server/src/store/index.js';
import type { AuditRecord } from '../../server/src/audit/types.js';
import { StoreAuditSink } from '../../server/src/ops/adapters.js';
import { CheckpointWriter, checkpointSink, readCheckpointFiles } from '../../server/src/audit/checkpoints.js';
import { verifyAuditChain } from '../../server/src/audit/verify.js';
import { loadAuditKeyring } from '../../server/src/audit/keys.js';
import { chainHash, GENESIS_HASH, type ChainKey, type Keyring } from '../../server/src/core/audit-chain.js';
import { createLogger } from '../../server/src/log.js';
import { configSchema } from '../../server/src/config/schema.js';
import { createTestSchema, type TestSchema } from './store/pg.js';

const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-tamper-'));
const KEY_ENV = 'CREDBROKER_TAMPER_TEST_KEY';
const keyText = randomBytes(32).toString('base64');
const auditConfig = configSchema.parse({ issuers: {}, roles: {}, audit: { sink: 'store', hmac_key_env: KEY_ENV } }).audit;
const keyring: Keyring = loadAuditKeyring(auditConfig, { [KEY_ENV]: keyText });
const key = keyring.current!;
const attackerKey: ChainKey = { id: key.id, secret: Buffer.from('the attacker does not have the key, only its id') };
const logger = createLogger({ level: 'silent' });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface RawRow {
  seq: number;
  prev_hash: string;
  hash: string;
  key_id: string | null;
  record: string;
}

/** A store plus raw SQL access to its audit table, as a database writer has. */
interface Harness {
  name: string;
  open(migrations?: 'before-keying'): Promise<Store>;
  rows(): Promise<RawRow[]>;
  /** Rewrites one row in place. */
  update(row: RawRow): Promise<void>;
  /** Inserts a row into a table that predates the key_id column. */
  insertLegacy(row: Omit<RawRow, 'key_id'>): Promise<void>;
  deleteAfter(seq: number): Promise<void>;
  /** The `store:` section of a config file for the CLI. */
  storeConfig(): string;
  close(): Promise<void>;
}

function sqliteHarness(): Harness {
  const file = path.join(dir, `store-${randomBytes(4).toString('hex')}.sqlite`);
  const stores: Store[] = [];
  const raw = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(file);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    name: 'SQLite',
    async open(migrations) {
      const s = SqliteStore.open(file, migrations ? { migrations: SQLITE_MIGRATIONS.slice(0, 6) } : {});
      stores.push(s);
      return s;
    },
    rows: async () => raw((db) => db.prepare('SELECT seq, prev_hash, hash, key_id, record FROM audit_chain ORDER BY seq').all() as RawRow[]),
    update: async (r) => void raw((db) => db.prepare('UPDATE audit_chain SET prev_hash = ?, hash = ?, key_id = ?, record = ? WHERE seq = ?').run(r.prev_hash, r.hash, r.key_id, r.record, r.seq)),
    insertLegacy: async (r) =>
      void raw((db) => db.prepare('INSERT INTO audit_chain (seq, prev_hash, hash, time_ms, event, record) VALUES (?, ?, ?, ?, ?, ?)').run(r.seq, r.prev_hash, r.hash, Date.now(), 'exchange', r.record)),
    deleteAfter: async (seq) => void raw((db) => db.prepare('DELETE FROM audit_chain WHERE seq > ?').run(seq)),
    storeConfig: () => `store: { driver: sqlite, sqlite_path: ${JSON.stringify(file)} }`,
    async close() {
      for (const s of stores) await s.close();
    },
  };
}

function postgresHarness(): Harness {
  let schema: TestSchema | undefined;
  const stores: Store[] = [];
  const q = async <R extends object>(sql: string, params: unknown[] = []) => (await schema!.query(sql, params)).rows as R[];
  return {
    name: 'PostgreSQL',
    async open(migrations) {
      schema ??= await createTestSchema('tamper');
      const s = await PostgresStore.open(schema.url, migrations ? { migrations: POSTGRES_MIGRATIONS.slice(0, 6) } : {});
      stores.push(s);
      return s;
    },
    rows: async () => (await q<Omit<RawRow, 'seq'> & { seq: string }>('SELECT seq, prev_hash, hash, key_id, record::text AS record FROM audit_chain ORDER BY seq')).map((r) => ({ ...r, seq: Number(r.seq) })),
    update: async (r) => void (await q('UPDATE audit_chain SET prev_hash = $1, hash = $2, key_id = $3, record = $4::json WHERE seq = $5', [r.prev_hash, r.hash, r.key_id, r.record, r.seq])),
    async insertLegacy(r) {
      await q("INSERT INTO audit_chain (seq, prev_hash, hash, time, event, record) VALUES ($1, $2, $3, now(), 'exchange', $4::json)", [r.seq, r.prev_hash, r.hash, r.record]);
      await q('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [r.seq, r.hash]);
    },
    deleteAfter: async (seq) => void (await q('DELETE FROM audit_chain WHERE seq > $1', [seq])),
    storeConfig: () => `store: { driver: postgres, postgres_url: ${JSON.stringify(schema!.url)} }`,
    async close() {
      for (const s of stores) await s.close();
      await schema?.drop();
    },
  };
}

/** Recomputes the chain from `fromSeq` on, the way a database writer would: with their key, or none. */
async function rechain(h: Harness, fromSeq: number, withKey: ChainKey | undefined, edit: (record: Record<string, unknown>) => void = () => undefined) {
  const rows = await h.rows();
  let prev = rows.find((r) => r.seq === fromSeq - 1)?.hash ?? GENESIS_HASH;
  for (const r of rows.filter((x) => x.seq >= fromSeq)) {
    const record = JSON.parse(r.record) as Record<string, unknown>;
    edit(record);
    const hash = chainHash(r.seq, prev, record, withKey);
    await h.update({ seq: r.seq, prev_hash: prev, hash, key_id: withKey?.id ?? null, record: JSON.stringify(record) });
    prev = hash;
  }
}

const record = (i: number): AuditRecord => ({ time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), event: 'exchange', decision: i % 4 === 0 ? 'deny' : 'allow', subject: `repo:acme/app:${i}`, role: 'deploy' });

describe.each([['SQLite', sqliteHarness], ['PostgreSQL', postgresHarness]] as const)('%s', (_name, make) => {
  let h: Harness;
  let store: Store;
  let checkpointFile: string;
  let checkpoints: CheckpointWriter;

  /** 20 keyed records with checkpoints at 10 and 20, as a running broker leaves them. */
  beforeAll(async () => {
    h = make();
    store = await h.open();
    checkpointFile = path.join(dir, `checkpoints-${h.name}-${randomBytes(4).toString('hex')}.jsonl`);
    const sink = new StoreAuditSink(store, keyring);
    checkpoints = new CheckpointWriter({ store, key, sink: checkpointSink({ sink: 'file', path: checkpointFile, interval_seconds: 60 }), logger, intervalMs: 60_000, now: () => new Date() });
    await checkpoints.start();
    for (let i = 1; i <= 10; i++) await sink.write(record(i));
    await checkpoints.checkpoint(false);
    for (let i = 11; i <= 20; i++) await sink.write(record(i));
    await checkpoints.stop();
  });
  afterAll(async () => h?.close());

  let snapshot: RawRow[] = [];
  const verify = async () => verifyAuditChain(store, { keyring, ...(await readCheckpointFiles([checkpointFile])) });
  beforeAll(async () => {
    snapshot = await h.rows();
  });
  afterEach(async () => {
    // Put the table back as the broker wrote it.
    await h.deleteAfter(0);
    for (const r of snapshot) {
      await h.insertLegacy(r);
      await h.update(r);
    }
  });

  it('verifies the keyed chain and the signed checkpoints in the file', async () => {
    const r = await verify();
    expect(r).toMatchObject({ ok: true, checked: 20, legacy: null, keyed: { from: 1, to: 20, keyIds: [key.id] }, checkpoints: { read: 3, valid: 3, latest: { seq: 20 } }, problems: [] });
    expect(snapshot.every((row) => row.key_id === key.id && !row.record.includes(keyText))).toBe(true);
  });

  it('catches an SQL rewrite of the whole table with the chain recomputed without the key (checkpoints)', async () => {
    await rechain(h, 1, undefined, (rec) => {
      if (rec.decision === 'deny') rec.decision = 'allow';
    });
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.objectContaining({ kind: 'checkpoint-mismatch', seq: 10, message: expect.stringMatching(/^record 10 has hash \w+, but the checkpoint at .+ saw \w+: the chain up to record 10 was rewritten$/) }),
      expect.objectContaining({ kind: 'checkpoint-mismatch', seq: 20 }),
    ]);
  });

  it('catches an SQL rewrite of the newest rows recomputed without the key (a downgrade after keyed rows)', async () => {
    await rechain(h, 15, undefined, (rec) => (rec.subject = 'repo:someone/else'));
    const r = await verify();
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: 'unkeyed-after-keyed', seq: 15, through: 20, message: 'records 15–20: unkeyed record(s) after keyed records: rewritten without the key' }));
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: 'checkpoint-mismatch', seq: 20 }));
  });

  it('catches an SQL rewrite with the chain recomputed under a wrong key that claims the real key id', async () => {
    await rechain(h, 1, attackerKey, (rec) => (rec.decision = 'allow'));
    const r = await verify();
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: 'modified', seq: 1, through: 20, message: 'records 1–20: content does not match the stored hash (modified, or rewritten with another key)' }));
  });

  it('catches an SQL rewrite under a key of another id as unverifiable records', async () => {
    await rechain(h, 5, { id: 'k-attacker', secret: attackerKey.secret });
    const r = await verify();
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: 'unknown-key', seq: 5, through: 20, keyId: 'k-attacker' }));
  });

  it('catches the deletion of the newest records by the last checkpoint', async () => {
    await h.deleteAfter(17);
    const r = await verify();
    expect(r.problems).toEqual([
      expect.objectContaining({ kind: 'head-behind-checkpoint', headSeq: 17, checkpointSeq: 20, message: expect.stringMatching(/records 18–20 were deleted$/) }),
    ]);
  });

  it('refuses to append an unkeyed record once the chain is keyed (a process without the key cannot downgrade it)', async () => {
    await expect(store.appendAudit(record(99))).rejects.toMatchObject({ code: 'ERR_STORE_AUDIT_KEY_REQUIRED' });
    expect((await h.rows()).length).toBe(20);
  });

  it('`credbroker audit verify` names the rewritten records and exits 1', async () => {
    {
      await rechain(h, 15, undefined);
      const config = path.join(dir, `verify-${h.name}.yaml`);
      writeFileSync(
        config,
        [
          'issuers: {}',
          'roles: {}',
          h.storeConfig(),
          `audit: { sink: store, hmac_key_env: ${KEY_ENV}, checkpoints: { sink: file, path: ${JSON.stringify(checkpointFile)} } }`,
        ].join('\n'),
      );
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'audit', 'verify', '--config', config], {
        encoding: 'utf8',
        env: { ...process.env, [KEY_ENV]: keyText },
        timeout: 60_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('problem: records 15–20: unkeyed record(s) after keyed records: rewritten without the key');
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, checkpoints: { valid: 3 } });
      expect(r.stdout + r.stderr).not.toContain(keyText);
    }
  });
});

describe.each([['SQLite', sqliteHarness], ['PostgreSQL', postgresHarness]] as const)('%s: rows written before keying', (_name, make) => {
  let h: Harness;
  let store: Store;
  beforeAll(async () => {
    h = make();
    // A store as the previous release left it: no key_id column, five SHA-256 rows.
    const old = await h.open('before-keying');
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 5; seq++) {
      const rec = record(seq);
      const hash = chainHash(seq, prev, rec);
      await h.insertLegacy({ seq, prev_hash: prev, hash, record: JSON.stringify(rec) });
      prev = hash;
    }
    await old.close();
    store = await h.open(); // the upgrade: the key_id migration runs
    const sink = new StoreAuditSink(store, keyring);
    for (let i = 6; i <= 8; i++) await sink.write(record(i));
  });
  afterAll(async () => h?.close());

  it('verifies them as legacy, sealed by the first keyed record', async () => {
    const r = await verifyAuditChain(store, { keyring });
    expect(r).toMatchObject({ ok: true, legacy: { from: 1, to: 5 }, keyed: { from: 6, to: 8 } });
    expect(r.warnings).toContain('records 1–5 are legacy (unkeyed) and no checkpoint covers them: the first keyed record, 6, only proves they did not change after it was written');
  });

  it('catches a legacy row rewritten with the legacy chain recomputed: the first keyed record no longer links', async () => {
    const rows = await h.rows();
    await rechain(h, 3, undefined, (rec) => (rec.decision = 'allow'));
    // The rechain also turned 6–8 into unkeyed rows; put the keyed rows back as they were, relinked
    // to the forged legacy head: without the key, their HMAC can no longer match.
    const forged = await h.rows();
    for (const r of rows.filter((x) => x.seq >= 6)) await h.update({ ...r, prev_hash: r.seq === 6 ? forged[4]!.hash : r.prev_hash });
    const result = await verifyAuditChain(store, { keyring });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([expect.objectContaining({ kind: 'modified', seq: 6 })]);
  });
});
