// SQLite implementation of the store (better-sqlite3: synchronous, wrapped in the async interface).
// WAL journal, synchronous=FULL: a committed state transition survives a process crash, which is
// what crash-safe rotation relies on. Migrations run at open, inside one immediate transaction.
// The writes every exchange makes (token claims, audit appends, rate counters) are group-committed:
// those issued within one turn of the event loop share one transaction and one fsync, each in its
// own savepoint, and every caller's promise settles only after that commit — durable as before,
// without one synchronous fsync per write blocking the event loop.
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import type { AuditRecord } from '../audit/types.js';
import { chainHash, GENESIS_HASH, type ChainKey, type ChainedRecord } from '../core/audit-chain.js';
import type { Revocation } from '../core/revocation.js';
import type { AuditQuery, AuditSearch, AuditSummary, AuditSummaryQuery } from '../ops/types.js';
import { foldBuckets } from '../ops/audit-query.js';
import { auditColumns, auditSearchWhere, auditWhere, type AuditDialect } from './audit-rows.js';
import { SQLITE_MIGRATIONS, assertMigrationList, checkAppliedMigrations, type Migration } from './migrations.js';
import { StoreError, auditKeyRequired, type Lease, type RotationState, type Store } from './types.js';
import { TurnBatcher, type Settled } from './turn-batch.js';

type Db = Database.Database;

export interface SqliteStoreOptions {
  /** Clock for lease expiry (epoch ms); tests freeze it. */
  nowMs?: () => number;
  /** Open without writing: no migrations, no file creation (dry runs, inventory). */
  readonly?: boolean;
  migrations?: readonly Migration[];
}

function migrate(db: Db, migrations: readonly Migration[]): number {
  assertMigrationList(migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const run = db.transaction(() => {
    const applied = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as Array<{ version: number; name: string }>;
    const newest = checkAppliedMigrations(applied, migrations);
    const insert = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of migrations.slice(newest)) {
      db.exec(m.sql);
      insert.run(m.version, m.name, new Date().toISOString());
    }
    return migrations.length;
  });
  try {
    return run.immediate();
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError('ERR_STORE_MIGRATION_FAILED', `store migration failed: ${(err as Error).message}`, { cause: err });
  }
}

export class SqliteStore implements Store {
  readonly driver = 'sqlite' as const;
  private readonly nowMs: () => number;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly writes = new TurnBatcher<() => unknown, unknown>((ops) => this.commitGroup(ops));

  private constructor(
    private readonly db: Db,
    private readonly version: number,
    nowMs: () => number,
  ) {
    this.nowMs = nowMs;
  }

  static open(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
    const fresh = file !== ':memory:' && !existsSync(file);
    if (opts.readonly && fresh) throw new StoreError('ERR_STORE_UNAVAILABLE', `store file ${file} does not exist`);
    let db: Db;
    try {
      db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    } catch (err) {
      throw new StoreError('ERR_STORE_UNAVAILABLE', `cannot open store ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (fresh) chmodSync(file, 0o600);
    db.pragma('busy_timeout = 5000');
    let version: number;
    if (opts.readonly) {
      const row = db.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'").get();
      version = row ? ((db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0) : 0;
    } else {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      version = migrate(db, opts.migrations ?? SQLITE_MIGRATIONS);
    }
    return new SqliteStore(db, version, opts.nowMs ?? Date.now);
  }

  async schemaVersion(): Promise<number> {
    return this.version;
  }

  /** A prepared statement, compiled once per store (preparing is most of a small statement's cost). */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  /** Runs `op` in the next group commit; resolves with its result once that commit is durable. */
  private groupCommitted<T>(op: () => T): Promise<T> {
    return this.writes.add(op) as Promise<T>;
  }

  /** One immediate transaction for the whole group, each write in its own savepoint. */
  private commitGroup(ops: Array<() => unknown>): Array<Settled<unknown>> {
    const outcomes: Array<Settled<unknown>> = [];
    this.db
      .transaction(() => {
        // A write that fails is undone alone; the others commit.
        for (const op of ops) {
          try {
            outcomes.push({ ok: true, value: this.db.transaction(op)() });
          } catch (err) {
            outcomes.push({ ok: false, err });
          }
        }
      })
      .immediate();
    return outcomes;
  }

  private hasTable(name: string): boolean {
    return this.db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(name) !== undefined;
  }

  async getRotationState(userName: string): Promise<RotationState | undefined> {
    if (!this.hasTable('rotation_state')) return undefined;
    const row = this.db.prepare('SELECT state FROM rotation_state WHERE user_name = ?').get(userName) as { state: string } | undefined;
    return row ? (JSON.parse(row.state) as RotationState) : undefined;
  }

  async listRotationStates(): Promise<RotationState[]> {
    if (!this.hasTable('rotation_state')) return [];
    const rows = this.db.prepare('SELECT state FROM rotation_state ORDER BY user_name').all() as Array<{ state: string }>;
    return rows.map((r) => JSON.parse(r.state) as RotationState);
  }

  async putRotationState(state: RotationState, lease: Lease): Promise<void> {
    const write = this.db.transaction(() => {
      this.assertHolder(lease);
      this.db
        .prepare(
          `INSERT INTO rotation_state (user_name, phase, state, fence, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(user_name) DO UPDATE SET phase = excluded.phase, state = excluded.state, fence = excluded.fence, updated_at = excluded.updated_at`,
        )
        .run(state.userName, state.phase, JSON.stringify(state), lease.token, state.updatedAt);
    });
    write.immediate();
  }

  private assertHolder(lease: Lease): void {
    const row = this.db.prepare('SELECT holder, token, expires_at FROM leases WHERE name = ?').get(lease.name) as
      | { holder: string; token: number; expires_at: number }
      | undefined;
    if (!row || row.holder !== lease.holder || row.token !== lease.token || row.expires_at <= this.nowMs()) {
      throw new StoreError('ERR_STORE_LEASE_LOST', `lease "${lease.name}" (token ${lease.token}) is no longer held`);
    }
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    const take = this.db.transaction((): Lease | undefined => {
      const now = this.nowMs();
      const row = this.db.prepare('SELECT holder, token, expires_at FROM leases WHERE name = ?').get(name) as
        | { holder: string; token: number; expires_at: number }
        | undefined;
      if (row && row.expires_at > now && row.holder !== holder) return undefined;
      const keep = row !== undefined && row.expires_at > now && row.holder === holder;
      const token = keep ? row.token : (row?.token ?? 0) + 1;
      const expiresAt = now + ttlMs;
      this.db
        .prepare(
          `INSERT INTO leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at`,
        )
        .run(name, holder, token, expiresAt);
      return { name, holder, token, expiresAt };
    });
    return take.immediate();
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    const now = this.nowMs();
    const expiresAt = now + ttlMs;
    const res = this.db
      .prepare('UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?')
      .run(expiresAt, lease.name, lease.holder, lease.token, now);
    return res.changes === 1 ? { ...lease, expiresAt } : undefined;
  }

  async releaseLease(lease: Lease): Promise<void> {
    // The row stays so that the next holder's token keeps growing.
    this.db.prepare('UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?').run(lease.name, lease.holder, lease.token);
  }

  // --- one-time token ledger: INSERT … ON CONFLICT … WHERE expired, one statement, atomic.

  claimToken(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    return this.groupCommitted(
      () =>
        this.stmt(
          `INSERT INTO token_ledger (key, expires_at) VALUES (?, ?)
           ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at WHERE token_ledger.expires_at <= ?`,
        ).run(key, expiresAt.getTime(), now.getTime()).changes === 1,
    );
  }

  async releaseToken(key: string): Promise<void> {
    await this.groupCommitted(() => this.stmt('DELETE FROM token_ledger WHERE key = ?').run(key));
  }

  /** Also drops rate-limit windows that have ended (the broker calls this every minute). */
  async purgeExpiredTokens(now: Date): Promise<number> {
    const purge = this.db.transaction(() => {
      this.db.prepare('DELETE FROM rate_counters WHERE reset_at <= ?').run(now.getTime());
      return this.db.prepare('DELETE FROM token_ledger WHERE expires_at <= ?').run(now.getTime()).changes;
    });
    return purge.immediate();
  }

  // --- revocations, with a version counter bumped in the same transaction

  async addRevocation(r: Revocation): Promise<void> {
    const add = this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO revocations (id, revocation, created_at, expires_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET revocation = excluded.revocation, created_at = excluded.created_at, expires_at = excluded.expires_at`,
        )
        .run(r.id, JSON.stringify(r), r.created_at, Date.parse(r.expires_at));
      this.db.prepare('UPDATE revocations_version SET version = version + 1 WHERE id = 1').run();
    });
    add.immediate();
  }

  async removeRevocation(id: string): Promise<boolean> {
    const remove = this.db.transaction(() => {
      const gone = this.db.prepare('DELETE FROM revocations WHERE id = ?').run(id).changes === 1;
      if (gone) this.db.prepare('UPDATE revocations_version SET version = version + 1 WHERE id = 1').run();
      return gone;
    });
    return remove.immediate();
  }

  async listRevocations(now: Date, opts: { includeExpired?: boolean } = {}): Promise<Revocation[]> {
    const rows = (
      opts.includeExpired
        ? this.db.prepare('SELECT revocation FROM revocations ORDER BY created_at, id').all()
        : this.db.prepare('SELECT revocation FROM revocations WHERE expires_at > ? ORDER BY created_at, id').all(now.getTime())
    ) as Array<{ revocation: string }>;
    return rows.map((r) => JSON.parse(r.revocation) as Revocation);
  }

  async revocationsVersion(): Promise<number> {
    return (this.db.prepare('SELECT version FROM revocations_version WHERE id = 1').get() as { version: number }).version;
  }

  // --- hash-chained audit: an immediate transaction holds SQLite's write lock across
  // read-head / insert, so processes sharing the file never fork the chain. The HMAC key is
  // handed in per append and never stored.

  appendAudit(input: AuditRecord, key?: ChainKey): Promise<ChainedRecord> {
    const cols = auditColumns(input);
    return this.groupCommitted((): ChainedRecord => {
      const head = this.stmt('SELECT seq, hash, key_id FROM audit_chain ORDER BY seq DESC LIMIT 1').get() as
        | { seq: number; hash: string; key_id: string | null }
        | undefined;
      if (!key && head?.key_id) throw auditKeyRequired();
      const seq = (head?.seq ?? 0) + 1;
      const prevHash = head?.hash ?? GENESIS_HASH;
      const hash = chainHash(seq, prevHash, cols.record, key);
      const keyId = key?.id ?? null;
      this.stmt(
        `INSERT INTO audit_chain (seq, prev_hash, hash, key_id, time_ms, event, subject, role, decision, record)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(seq, prevHash, hash, keyId, cols.timeMs, cols.event, cols.subject, cols.role, cols.decision, cols.json);
      return { seq, prevHash, hash, keyId, record: cols.record };
    });
  }

  async auditHead(): Promise<{ seq: number; hash: string }> {
    const head = this.db.prepare('SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    return head ?? { seq: 0, hash: GENESIS_HASH };
  }

  async queryAudit(q: AuditQuery): Promise<ChainedRecord[]> {
    const params: unknown[] = [];
    const where = auditWhere(q, (v) => (params.push(v), '?'), 'time_ms', (d) => d.getTime());
    const rows = this.db
      .prepare(`SELECT seq, prev_hash, hash, key_id, record FROM audit_chain ${where} ORDER BY seq DESC LIMIT ?`)
      .all(...params, q.limit ?? 100) as AuditRow[];
    return rows.reverse().map(chained);
  }

  async scanAudit(afterSeq: number, limit: number): Promise<ChainedRecord[]> {
    const rows = this.db.prepare('SELECT seq, prev_hash, hash, key_id, record FROM audit_chain WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as AuditRow[];
    return rows.map(chained);
  }

  async searchAudit(q: AuditSearch): Promise<ChainedRecord[]> {
    const params: unknown[] = [];
    const where = auditSearchWhere(q, sqliteDialect(params));
    const order = q.afterSeq !== undefined && q.beforeSeq === undefined ? 'ASC' : 'DESC';
    const rows = this.db.prepare(`SELECT seq, prev_hash, hash, key_id, record FROM audit_chain ${where} ORDER BY seq ${order} LIMIT ?`).all(...params, q.limit) as AuditRow[];
    return (order === 'ASC' ? rows.reverse() : rows).map(chained);
  }

  async countAudit(q: AuditSearch, cap: number): Promise<number> {
    const params: unknown[] = [];
    const where = auditSearchWhere(q, sqliteDialect(params));
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM audit_chain ${where} LIMIT ?)`).get(...params, cap + 1) as { n: number }).n;
  }

  async summarizeAudit(q: AuditSummaryQuery): Promise<AuditSummary> {
    const range = [q.since.getTime(), q.until.getTime()];
    const exchanges = `event = 'exchange' AND time_ms >= ? AND time_ms < ?`;
    const buckets = this.db
      .prepare(`SELECT time_ms / CAST(? AS INTEGER) AS b, decision, COUNT(*) AS n FROM audit_chain WHERE ${exchanges} GROUP BY b, decision`)
      .all(q.bucketMs, ...range) as Array<{ b: number; decision: string | null; n: number }>;
    const denyReasons = this.db
      .prepare(
        `SELECT COALESCE(json_extract(record, '$.reason'), json_extract(record, '$.code'), '?') AS reason, COUNT(*) AS count
         FROM audit_chain WHERE ${exchanges} AND decision = 'deny' GROUP BY 1 ORDER BY count DESC, reason LIMIT ?`,
      )
      .all(...range, q.top) as AuditSummary['denyReasons'];
    const identities = this.db
      .prepare(
        `SELECT json_extract(record, '$.issuer') AS issuer, subject, SUM(decision = 'allow') AS allow, SUM(decision = 'deny') AS deny,
                SUM(decision = 'error') AS error, COUNT(*) AS total
         FROM audit_chain WHERE ${exchanges} AND subject IS NOT NULL GROUP BY 1, subject ORDER BY total DESC, subject LIMIT ?`,
      )
      .all(...range, q.top) as AuditSummary['identities'];
    return { buckets: foldBuckets(buckets, q.bucketMs), denyReasons, identities };
  }

  // --- rate-limit counters: one fixed window per key, incremented in one statement

  incrementCounter(key: string, windowMs: number, now: Date): Promise<{ hits: number; resetAt: Date }> {
    const t = now.getTime();
    return this.groupCommitted(() => {
      const row = this.stmt(
        `INSERT INTO rate_counters (key, hits, reset_at) VALUES (@key, 1, @t + @w)
         ON CONFLICT(key) DO UPDATE SET
           hits = CASE WHEN rate_counters.reset_at <= @t THEN 1 ELSE rate_counters.hits + 1 END,
           reset_at = CASE WHEN rate_counters.reset_at <= @t THEN @t + @w ELSE rate_counters.reset_at END
         RETURNING hits, reset_at`,
      ).get({ key, t, w: windowMs }) as { hits: number; reset_at: number };
      return { hits: row.hits, resetAt: new Date(row.reset_at) };
    });
  }

  async decrementCounter(key: string): Promise<void> {
    await this.groupCommitted(() => this.stmt('UPDATE rate_counters SET hits = hits - 1 WHERE key = ? AND hits > 0').run(key));
  }

  async resetCounter(key: string): Promise<void> {
    this.db.prepare('DELETE FROM rate_counters WHERE key = ?').run(key);
  }

  async close(): Promise<void> {
    if (this.db.open) await this.writes.drain(); // writes already accepted are committed, not dropped
    if (this.db.open) this.db.close();
  }
}

interface AuditRow {
  seq: number;
  prev_hash: string;
  hash: string;
  key_id: string | null;
  record: string;
}

const chained = (r: AuditRow): ChainedRecord => ({
  seq: r.seq,
  prevHash: r.prev_hash,
  hash: r.hash,
  keyId: r.key_id,
  record: JSON.parse(r.record) as Record<string, unknown>,
});

/** SQLite's JSON functions; a claim name is a JSON path key in double quotes (so it holds no `"`). */
function sqliteDialect(params: unknown[]): AuditDialect {
  const param = (v: unknown) => (params.push(v), '?');
  const claimPath = (name: string) => {
    if (/["\\]/.test(name)) throw new RangeError('a claim name in an audit search cannot contain " or \\');
    return `$.claims."${name}"`;
  };
  return {
    param,
    timeColumn: 'time_ms',
    time: (d) => d.getTime(),
    field: (name) => `json_extract(record, '$.${name}')`,
    claim: (name) => {
      const p = claimPath(name);
      // Booleans read back as 1/0 from json_extract: spell them as JSON, as the other drivers do.
      return `(CASE json_type(record, ${param(p)}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'object' THEN json_extract(record, ${param(p)}) WHEN 'array' THEN json_extract(record, ${param(p)}) ELSE CAST(json_extract(record, ${param(p)}) AS TEXT) END)`;
    },
    // GLOB: * any run, ? and [ escaped into brackets so they stay literal.
    glob: (expr, pattern) => `${expr} GLOB ${param(pattern.replace(/[?[\]]/g, (c) => (c === ']' ? ']' : `[${c}]`)))}`,
    contains: (text) => `instr(lower(record), lower(${param(text)})) > 0`,
  };
}
