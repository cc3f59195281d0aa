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
import type { AuditQuery, AuditSearch, AuditSummary, AuditSummaryQuery } from '../ops/types.js';
import { foldBuckets } from '../ops/audit-query.js';
import { auditColumns, auditSearchWhere, auditWhere, type AuditDialect } from './audit-rows.js';
import { POSTGRES_MIGRATIONS, assertMigrationList, checkAppliedMigrations, type Migration } from './migrations.js';
import { TurnBatcher, type Settled } from './turn-batch.js';
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

interface Claim {
  key: string;
  expiresAt: number;
  now: number;
}
interface Increment {
  key: string;
  windowMs: number;
  now: number;
}
interface Append {
  cols: ReturnType<typeof auditColumns>;
  key: ChainKey | undefined;
}

export class PostgresStore implements Store {
  readonly driver = 'postgres' as const;
  // The writes of every exchange, batched per turn of the event loop: one statement (claims,
  // counters) or one transaction (audit appends) for all the exchanges in flight, instead of one
  // round trip each. Every caller's promise settles after its batch is committed.
  private readonly claims = new TurnBatcher<Claim, boolean>((batch) => this.claimBatch(batch));
  private readonly increments = new TurnBatcher<Increment, { hits: number; resetAt: Date }>((batch) => this.incrementBatch(batch));
  private readonly appends = new TurnBatcher<Append, ChainedRecord>((batch) => this.appendBatch(batch));

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

  claimToken(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    return this.claims.add({ key, expiresAt: expiresAt.getTime(), now: now.getTime() });
  }

  /**
   * One statement for a batch of claims. A key can appear once per statement, so a token presented
   * twice in the same batch is claimed by its first presentation; the others are replays.
   */
  private async claimBatch(batch: Claim[]): Promise<Array<Settled<boolean>>> {
    const first = new Map<string, Claim>();
    for (const c of batch) if (!first.has(c.key)) first.set(c.key, c);
    const unique = [...first.values()];
    const now = Math.max(...unique.map((c) => c.now));
    const { rows } = await this.pool.query<{ key: string }>({
      name: 'credbroker.claim_tokens',
      text: `INSERT INTO token_ledger AS t (key, expires_at)
             SELECT * FROM unnest($1::text[], $2::bigint[])
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE t.expires_at <= $3
             RETURNING key`,
      values: [unique.map((c) => c.key), unique.map((c) => c.expiresAt), now],
    });
    const won = new Set(rows.map((r) => r.key));
    return batch.map((c) => ({ ok: true, value: first.get(c.key) === c && won.has(c.key) }));
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

  appendAudit(input: AuditRecord, key?: ChainKey): Promise<ChainedRecord> {
    return this.appends.add({ cols: auditColumns(input), key });
  }

  /** One transaction for a batch of appends, chained in order; a refused record is skipped alone. */
  private appendBatch(batch: Append[]): Promise<Array<Settled<ChainedRecord>>> {
    return this.tx(async (c) => {
      // The head row lock makes appends from every replica take turns.
      const head = (await c.query<{ seq: string; hash: string }>({ name: 'credbroker.audit_head_lock', text: 'SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE' })).rows[0]!;
      let keyed: boolean | undefined;
      if (batch.some((a) => !a.key)) {
        const last = (await c.query<{ key_id: string | null }>('SELECT key_id FROM audit_chain WHERE seq = $1', [head.seq])).rows[0];
        keyed = Boolean(last?.key_id);
      }
      let seq = Number(head.seq);
      let prevHash = head.hash;
      const rows: ChainedRecord[] = [];
      const cols: Array<Append['cols']> = [];
      const results: Array<Settled<ChainedRecord>> = batch.map((a) => {
        if (!a.key && keyed) return { ok: false, err: auditKeyRequired() };
        if (a.key) keyed = true;
        seq += 1;
        const hash = chainHash(seq, prevHash, a.cols.record, a.key);
        const row = { seq, prevHash, hash, keyId: a.key?.id ?? null, record: a.cols.record };
        prevHash = hash;
        rows.push(row);
        cols.push(a.cols);
        return { ok: true, value: row };
      });
      if (rows.length === 0) return results;
      await c.query({
        name: 'credbroker.audit_append',
        text: `INSERT INTO audit_chain (seq, prev_hash, hash, key_id, time, event, subject, role, decision, record)
               SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[], $10::json[])`,
        values: [
          rows.map((r) => r.seq),
          rows.map((r) => r.prevHash),
          rows.map((r) => r.hash),
          rows.map((r) => r.keyId),
          cols.map((k) => (k.timeMs === null ? null : new Date(k.timeMs))),
          cols.map((k) => k.event),
          cols.map((k) => k.subject),
          cols.map((k) => k.role),
          cols.map((k) => k.decision),
          cols.map((k) => k.json),
        ],
      });
      await c.query({ name: 'credbroker.audit_head_set', text: 'UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', values: [seq, prevHash] });
      return results;
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

  async searchAudit(q: AuditSearch): Promise<ChainedRecord[]> {
    const params: unknown[] = [];
    const where = auditSearchWhere(q, postgresDialect(params));
    const order = q.afterSeq !== undefined && q.beforeSeq === undefined ? 'ASC' : 'DESC';
    params.push(q.limit);
    const { rows } = await this.pool.query<AuditRow>(
      `SELECT seq, prev_hash, hash, key_id, record::text AS record FROM audit_chain ${where} ORDER BY seq ${order} LIMIT $${params.length}`,
      params,
    );
    return (order === 'ASC' ? rows.reverse() : rows).map(chained);
  }

  async countAudit(q: AuditSearch, cap: number): Promise<number> {
    const params: unknown[] = [];
    const where = auditSearchWhere(q, postgresDialect(params));
    params.push(cap + 1);
    const { rows } = await this.pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM (SELECT 1 FROM audit_chain ${where} LIMIT $${params.length}) AS m`, params);
    return rows[0]!.n;
  }

  async summarizeAudit(q: AuditSummaryQuery): Promise<AuditSummary> {
    const exchanges = `event = 'exchange' AND time >= $1 AND time < $2`;
    const [buckets, reasons, identities] = await Promise.all([
      this.pool.query<{ b: string; decision: string | null; n: number }>(
        `SELECT floor(extract(epoch FROM time) * 1000 / $3)::bigint AS b, decision, COUNT(*)::int AS n FROM audit_chain WHERE ${exchanges} GROUP BY 1, decision`,
        [q.since, q.until, q.bucketMs],
      ),
      this.pool.query<AuditSummary['denyReasons'][number]>(
        `SELECT COALESCE(record->>'reason', record->>'code', '?') AS reason, COUNT(*)::int AS count
         FROM audit_chain WHERE ${exchanges} AND decision = 'deny' GROUP BY 1 ORDER BY count DESC, reason LIMIT $3`,
        [q.since, q.until, q.top],
      ),
      this.pool.query<AuditSummary['identities'][number]>(
        `SELECT record->>'issuer' AS issuer, subject, COUNT(*) FILTER (WHERE decision = 'allow')::int AS allow,
                COUNT(*) FILTER (WHERE decision = 'deny')::int AS deny, COUNT(*) FILTER (WHERE decision = 'error')::int AS error, COUNT(*)::int AS total
         FROM audit_chain WHERE ${exchanges} AND subject IS NOT NULL GROUP BY 1, subject ORDER BY total DESC, subject LIMIT $3`,
        [q.since, q.until, q.top],
      ),
    ]);
    return { buckets: foldBuckets(buckets.rows.map((r) => ({ ...r, b: Number(r.b) })), q.bucketMs), denyReasons: reasons.rows, identities: identities.rows };
  }

  // --- rate-limit counters

  incrementCounter(key: string, windowMs: number, now: Date): Promise<{ hits: number; resetAt: Date }> {
    return this.increments.add({ key, windowMs, now: now.getTime() });
  }

  /**
   * One statement for a batch of increments: hits of the same key are added up first (a key once
   * per statement), and each caller gets the count as it would have been after its own increment.
   */
  private async incrementBatch(batch: Increment[]): Promise<Array<Settled<{ hits: number; resetAt: Date }>>> {
    const byKey = new Map<string, { n: number; windowMs: number }>();
    for (const i of batch) {
      const k = byKey.get(i.key);
      if (k) k.n += 1;
      else byKey.set(i.key, { n: 1, windowMs: i.windowMs });
    }
    const keys = [...byKey.keys()];
    const now = Math.max(...batch.map((i) => i.now));
    const { rows } = await this.pool.query<{ key: string; hits: number; reset_at: string }>({
      name: 'credbroker.increment_counters',
      text: `INSERT INTO rate_counters AS r (key, hits, reset_at)
             SELECT k, n, $3::bigint + w FROM unnest($1::text[], $2::int[], $4::bigint[]) AS u(k, n, w)
             ON CONFLICT (key) DO UPDATE SET
               hits = CASE WHEN r.reset_at <= $3::bigint THEN excluded.hits ELSE r.hits + excluded.hits END,
               reset_at = CASE WHEN r.reset_at <= $3::bigint THEN excluded.reset_at ELSE r.reset_at END
             RETURNING key, hits, reset_at`,
      values: [keys, keys.map((k) => byKey.get(k)!.n), now, keys.map((k) => byKey.get(k)!.windowMs)],
    });
    const after = new Map(rows.map((r) => [r.key, { hits: r.hits, resetAt: new Date(Number(r.reset_at)) }]));
    const seen = new Map<string, number>();
    return batch.map((i) => {
      const total = after.get(i.key)!;
      const nth = (seen.get(i.key) ?? 0) + 1;
      seen.set(i.key, nth);
      return { ok: true, value: { hits: total.hits - byKey.get(i.key)!.n + nth, resetAt: total.resetAt } };
    });
  }

  async decrementCounter(key: string): Promise<void> {
    await this.pool.query('UPDATE rate_counters SET hits = hits - 1 WHERE key = $1 AND hits > 0', [key]);
  }

  async resetCounter(key: string): Promise<void> {
    await this.pool.query('DELETE FROM rate_counters WHERE key = $1', [key]);
  }

  async close(): Promise<void> {
    // Writes already accepted are committed, not dropped.
    await Promise.all([this.claims.drain(), this.increments.drain(), this.appends.drain()]);
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

function postgresDialect(params: unknown[]): AuditDialect {
  const param = (v: unknown) => `$${params.push(v)}`;
  return {
    param,
    timeColumn: 'time',
    time: (d) => d,
    field: (name) => `(record->>'${name}')`,
    claim: (name) => `(record->'claims'->>${param(name)}::text)`,
    // LIKE: * any run; %, _ and the escape character itself stay literal.
    glob: (expr, pattern) => `${expr} LIKE ${param(pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%'))} ESCAPE '\\'`,
    contains: (text) => `strpos(lower(record::text), lower(${param(text)})) > 0`,
  };
}
