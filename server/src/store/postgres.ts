// PostgreSQL implementation of the store, for several broker replicas sharing one database.
//
// What makes it safe with N replicas:
// - Migrations run at open in one transaction that first takes pg_advisory_xact_lock (keyed by
//   schema), so replicas starting together apply them exactly once.
// - claimToken is one INSERT … ON CONFLICT … WHERE expired: two replicas racing on one token
//   serialize on the row; exactly one gets it.
// - appendAudit locks the chain-head row (SELECT … FOR UPDATE) for the transaction that reads the
//   head, inserts the row and moves the head: seq and prev_hash never fork.
// - The rotation lock is a lease row with a fencing token (not a session advisory lock: a lease
//   survives connection churn in the pool and gives rotation a token to fence its writes with).
//   Lease times come from the database clock, so replicas with skewed clocks agree on expiry.
//   putRotationState locks the lease row FOR SHARE while it writes: a takeover (which updates
//   that row) waits for the write to commit, and a write after the takeover sees the new token
//   and is refused.
import pg from 'pg';
import type { AuditRecord } from '../audit/types.js';
import { chainHash, GENESIS_HASH, type ChainKey, type ChainedRecord } from '../core/audit-chain.js';
import type { Revocation } from '../core/revocation.js';
import type { AuditQuery } from '../ops/types.js';
import { auditColumns, auditWhere } from './audit-rows.js';
import { POSTGRES_MIGRATIONS, assertMigrationList, checkAppliedMigrations, type Migration } from './migrations.js';
import { StoreError, auditKeyRequired, type Lease, type RotationState, type Store } from './types.js';

export interface PostgresStoreOptions {
  /** Clock for lease expiry (epoch ms); tests freeze it. Default: the database clock. */
  nowMs?: () => number;
  /** Open without writing: no migrations. */
  readonly?: boolean;
  migrations?: readonly Migration[];
  /** Connections in the pool (default 10). */
  maxConnections?: number;
}

/** The lease clock in SQL: the injected time ($n) when given, else the database's. */
const nowSql = (n: number) => `COALESCE($${n}::bigint, (extract(epoch from statement_timestamp()) * 1000)::bigint)`;

/** Hides credentials in a connection string before it appears in an error message. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable postgres_url)';
  }
}

async function migrate(pool: pg.Pool, migrations: readonly Migration[]): Promise<number> {
  assertMigrationList(migrations);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Serializes replicas starting together; released at COMMIT/ROLLBACK.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('credbroker.migrate:' || coalesce(current_schema(), '')))`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const applied = (await client.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')).rows;
    const newest = checkAppliedMigrations(applied, migrations);
    for (const m of migrations.slice(newest)) {
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
    }
    await client.query('COMMIT');
    return migrations.length;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (err instanceof StoreError) throw err;
    throw new StoreError('ERR_STORE_MIGRATION_FAILED', `store migration failed: ${(err as Error).message}`, { cause: err });
  } finally {
    client.release();
  }
}

export class PostgresStore implements Store {
  readonly driver = 'postgres' as const;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly version: number,
    private readonly nowMs: (() => number) | undefined,
  ) {}

  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, max: opts.maxConnections ?? 10, connectionTimeoutMillis: 10_000 });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new StoreError('ERR_STORE_UNAVAILABLE', `cannot connect to ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
    }
    try {
      let version: number;
      if (opts.readonly) {
        const exists = (await pool.query(`SELECT to_regclass('schema_migrations') IS NOT NULL AS ok`)).rows[0] as { ok: boolean };
        version = exists.ok ? Number((await pool.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0].v) : 0;
      } else {
        version = await migrate(pool, opts.migrations ?? POSTGRES_MIGRATIONS);
      }
      return new PostgresStore(pool, version, opts.nowMs);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  async schemaVersion(): Promise<number> {
    return this.version;
  }

  private injectedNow(): number | null {
    return this.nowMs ? this.nowMs() : null;
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  // --- rotation state and the leader lease

  async getRotationState(userName: string): Promise<RotationState | undefined> {
    const { rows } = await this.pool.query<{ state: string }>('SELECT state FROM rotation_state WHERE user_name = $1', [userName]);
    return rows[0] ? (JSON.parse(rows[0].state) as RotationState) : undefined;
  }

  async listRotationStates(): Promise<RotationState[]> {
    const { rows } = await this.pool.query<{ state: string }>('SELECT state FROM rotation_state ORDER BY user_name');
    return rows.map((r) => JSON.parse(r.state) as RotationState);
  }

  async putRotationState(state: RotationState, lease: Lease): Promise<void> {
    await this.tx(async (c) => {
      const held = await c.query(
        `SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > ${nowSql(4)} FOR SHARE`,
        [lease.name, lease.holder, lease.token, this.injectedNow()],
      );
      if (held.rowCount !== 1) throw new StoreError('ERR_STORE_LEASE_LOST', `lease "${lease.name}" (token ${lease.token}) is no longer held`);
      // Defence in depth: a row written under a newer fence is never overwritten by an older one.
      const res = await c.query(
        `INSERT INTO rotation_state (user_name, phase, state, fence, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_name) DO UPDATE SET phase = excluded.phase, state = excluded.state, fence = excluded.fence, updated_at = excluded.updated_at
         WHERE rotation_state.fence <= excluded.fence`,
        [state.userName, state.phase, JSON.stringify(state), lease.token, state.updatedAt],
      );
      if (res.rowCount !== 1) throw new StoreError('ERR_STORE_LEASE_LOST', `rotation state of ${state.userName} was written under a newer lease`);
    });
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    // One statement: free, expired or ours → take it (token + 1 on a change of holder or after
    // expiry); held by another → no row.
    const { rows } = await this.pool.query<{ token: string; expires_at: string }>(
      `INSERT INTO leases AS l (name, holder, token, expires_at) VALUES ($1, $2, 1, ${nowSql(4)} + $3)
       ON CONFLICT (name) DO UPDATE SET
         holder = excluded.holder,
         token = CASE WHEN l.holder = excluded.holder AND l.expires_at > ${nowSql(4)} THEN l.token ELSE l.token + 1 END,
         expires_at = excluded.expires_at
       WHERE l.expires_at <= ${nowSql(4)} OR l.holder = excluded.holder
       RETURNING token, expires_at`,
      [name, holder, ttlMs, this.injectedNow()],
    );
    const row = rows[0];
    return row ? { name, holder, token: Number(row.token), expiresAt: Number(row.expires_at) } : undefined;
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    const { rows } = await this.pool.query<{ expires_at: string }>(
      `UPDATE leases SET expires_at = ${nowSql(5)} + $4
       WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > ${nowSql(5)}
       RETURNING expires_at`,
      [lease.name, lease.holder, lease.token, ttlMs, this.injectedNow()],
    );
    return rows[0] ? { ...lease, expiresAt: Number(rows[0].expires_at) } : undefined;
  }

  async releaseLease(lease: Lease): Promise<void> {
    // The row stays so that the next holder's token keeps growing.
    await this.pool.query('UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3', [lease.name, lease.holder, lease.token]);
  }

  // --- one-time token ledger

  async claimToken(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    const res = await this.pool.query(
      `INSERT INTO token_ledger AS t (key, expires_at) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE t.expires_at <= $3`,
      [key, expiresAt.getTime(), now.getTime()],
    );
    return res.rowCount === 1;
  }

  async releaseToken(key: string): Promise<void> {
    await this.pool.query('DELETE FROM token_ledger WHERE key = $1', [key]);
  }

  /** Also drops rate-limit windows that have ended (the broker calls this every minute). */
  async purgeExpiredTokens(now: Date): Promise<number> {
    await this.pool.query('DELETE FROM rate_counters WHERE reset_at <= $1', [now.getTime()]);
    return (await this.pool.query('DELETE FROM token_ledger WHERE expires_at <= $1', [now.getTime()])).rowCount ?? 0;
  }

  // --- revocations: the change and the version bump in one statement

  async addRevocation(r: Revocation): Promise<void> {
    await this.pool.query(
      `WITH ins AS (
         INSERT INTO revocations (id, revocation, created_at, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET revocation = excluded.revocation, created_at = excluded.created_at, expires_at = excluded.expires_at
         RETURNING 1)
       UPDATE revocations_version SET version = version + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM ins)`,
      [r.id, JSON.stringify(r), r.created_at, Date.parse(r.expires_at)],
    );
  }

  async removeRevocation(id: string): Promise<boolean> {
    const res = await this.pool.query(
      `WITH del AS (DELETE FROM revocations WHERE id = $1 RETURNING 1)
       UPDATE revocations_version SET version = version + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM del)`,
      [id],
    );
    return res.rowCount === 1;
  }

  async listRevocations(now: Date, opts: { includeExpired?: boolean } = {}): Promise<Revocation[]> {
    const { rows } = opts.includeExpired
      ? await this.pool.query<{ revocation: Revocation }>('SELECT revocation FROM revocations ORDER BY created_at, id')
      : await this.pool.query<{ revocation: Revocation }>('SELECT revocation FROM revocations WHERE expires_at > $1 ORDER BY created_at, id', [now.getTime()]);
    return rows.map((r) => r.revocation);
  }

  async revocationsVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ version: string }>('SELECT version FROM revocations_version WHERE id = 1');
    return Number(rows[0]!.version);
  }

  // --- hash-chained audit

  async appendAudit(input: AuditRecord, key?: ChainKey): Promise<ChainedRecord> {
    const cols = auditColumns(input);
    return this.tx(async (c) => {
      // The head row lock makes appends from every replica take turns.
      const head = (await c.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE')).rows[0]!;
      if (!key) {
        const last = (await c.query<{ key_id: string | null }>('SELECT key_id FROM audit_chain WHERE seq = $1', [head.seq])).rows[0];
        if (last?.key_id) throw auditKeyRequired();
      }
      const seq = Number(head.seq) + 1;
      const prevHash = head.hash;
      const hash = chainHash(seq, prevHash, cols.record, key);
      const keyId = key?.id ?? null;
      await c.query(
        `INSERT INTO audit_chain (seq, prev_hash, hash, key_id, time, event, subject, role, decision, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [seq, prevHash, hash, keyId, cols.timeMs === null ? null : new Date(cols.timeMs), cols.event, cols.subject, cols.role, cols.decision, cols.json],
      );
      await c.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [seq, hash]);
      return { seq, prevHash, hash, keyId, record: cols.record };
    });
  }

  /** The newest row of the table itself (not audit_head): what a verifier will read. */
  async auditHead(): Promise<{ seq: number; hash: string }> {
    const { rows } = await this.pool.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1');
    return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : { seq: 0, hash: GENESIS_HASH };
  }

  async queryAudit(q: AuditQuery): Promise<ChainedRecord[]> {
    const params: unknown[] = [];
    const where = auditWhere(q, (v) => `$${params.push(v)}`, 'time', (d) => d);
    params.push(q.limit ?? 100);
    const { rows } = await this.pool.query<AuditRow>(
      `SELECT seq, prev_hash, hash, key_id, record::text AS record FROM audit_chain ${where} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    return rows.reverse().map(chained);
  }

  async scanAudit(afterSeq: number, limit: number): Promise<ChainedRecord[]> {
    const { rows } = await this.pool.query<AuditRow>(
      'SELECT seq, prev_hash, hash, key_id, record::text AS record FROM audit_chain WHERE seq > $1 ORDER BY seq LIMIT $2',
      [afterSeq, limit],
    );
    return rows.map(chained);
  }

  // --- rate-limit counters

  async incrementCounter(key: string, windowMs: number, now: Date): Promise<{ hits: number; resetAt: Date }> {
    const { rows } = await this.pool.query<{ hits: number; reset_at: string }>(
      `INSERT INTO rate_counters AS r (key, hits, reset_at) VALUES ($1, 1, $2::bigint + $3::bigint)
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN r.reset_at <= $2::bigint THEN 1 ELSE r.hits + 1 END,
         reset_at = CASE WHEN r.reset_at <= $2::bigint THEN $2::bigint + $3::bigint ELSE r.reset_at END
       RETURNING hits, reset_at`,
      [key, now.getTime(), windowMs],
    );
    return { hits: rows[0]!.hits, resetAt: new Date(Number(rows[0]!.reset_at)) };
  }

  async decrementCounter(key: string): Promise<void> {
    await this.pool.query('UPDATE rate_counters SET hits = hits - 1 WHERE key = $1 AND hits > 0', [key]);
  }

  async resetCounter(key: string): Promise<void> {
    await this.pool.query('DELETE FROM rate_counters WHERE key = $1', [key]);
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

interface AuditRow {
  seq: string;
  prev_hash: string;
  hash: string;
  key_id: string | null;
  record: string;
}

const chained = (r: AuditRow): ChainedRecord => ({
  seq: Number(r.seq),
  prevHash: r.prev_hash,
  hash: r.hash,
  keyId: r.key_id,
  record: JSON.parse(r.record) as Record<string, unknown>,
});
