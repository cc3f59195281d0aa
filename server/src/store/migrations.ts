// Versioned schema migrations. Each driver has its own ordered list (SQL dialects differ); a
// migration is never edited once released — append a new one. Both lists describe the same tables:
// rotation state, leases, the one-time token ledger, revocations (with a version counter replicas
// poll), the hash-chained audit trail (with a chain-head row; rows name the HMAC key that chained
// them, null for legacy unkeyed rows) and rate-limit counters.
import { StoreError } from './types.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'rotation_state',
    sql: `
      CREATE TABLE rotation_state (
        user_name  TEXT PRIMARY KEY,
        phase      TEXT NOT NULL,
        state      TEXT NOT NULL,      -- JSON of RotationState: key ids and timestamps only
        fence      INTEGER NOT NULL,   -- fencing token of the lease that wrote it
        updated_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'leases',
    sql: `
      CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        token      INTEGER NOT NULL,   -- fencing token: grows on every change of holder
        expires_at INTEGER NOT NULL    -- epoch milliseconds
      );
    `,
  },
  {
    version: 3,
    name: 'token_ledger',
    sql: `
      CREATE TABLE token_ledger (
        key        TEXT PRIMARY KEY,   -- SHA-256 of the token, never the token
        expires_at INTEGER NOT NULL    -- epoch milliseconds; a used token is refused until then
      );
      CREATE INDEX token_ledger_expires ON token_ledger (expires_at);
    `,
  },
  {
    version: 4,
    name: 'revocations',
    sql: `
      CREATE TABLE revocations (
        id         TEXT PRIMARY KEY,
        revocation TEXT NOT NULL,      -- JSON of Revocation
        created_at TEXT NOT NULL,
        expires_at INTEGER NOT NULL    -- epoch milliseconds
      );
      CREATE TABLE revocations_version (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL       -- bumped on every add/remove; replicas poll it
      );
      INSERT INTO revocations_version (id, version) VALUES (1, 0);
    `,
  },
  {
    version: 5,
    name: 'audit_chain',
    sql: `
      CREATE TABLE audit_chain (
        seq       INTEGER PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL,       -- sha256(seq, prev_hash, canonical JSON of record)
        time_ms   INTEGER,             -- record.time, for queries
        event     TEXT,
        subject   TEXT,
        role      TEXT,
        decision  TEXT,
        record    TEXT NOT NULL        -- JSON of the audit record, exactly as hashed
      );
      CREATE INDEX audit_chain_time ON audit_chain (time_ms);
      CREATE INDEX audit_chain_subject ON audit_chain (subject, seq);
      CREATE INDEX audit_chain_role ON audit_chain (role, seq);
      CREATE INDEX audit_chain_decision ON audit_chain (decision, seq);
      CREATE INDEX audit_chain_event ON audit_chain (event, seq);
    `,
  },
  {
    version: 6,
    name: 'rate_counters',
    sql: `
      CREATE TABLE rate_counters (
        key      TEXT PRIMARY KEY,
        hits     INTEGER NOT NULL,
        reset_at INTEGER NOT NULL      -- epoch milliseconds: end of the fixed window
      );
      CREATE INDEX rate_counters_reset ON rate_counters (reset_at);
    `,
  },
  {
    version: 7,
    name: 'audit_key_id',
    sql: `
      -- The id of the HMAC key that produced hash (never the key); NULL: a legacy SHA-256 row.
      ALTER TABLE audit_chain ADD COLUMN key_id TEXT;
    `,
  },
];

/**
 * PostgreSQL: applied at open inside one transaction that first takes pg_advisory_xact_lock, so
 * replicas starting together apply them once. Times are epoch milliseconds (BIGINT) as in SQLite,
 * except audit_chain.time, a timestamptz for people who query the table with SQL.
 */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'rotation_state',
    sql: `
      CREATE TABLE rotation_state (
        user_name  TEXT PRIMARY KEY,
        phase      TEXT NOT NULL,
        state      TEXT NOT NULL,
        fence      BIGINT NOT NULL,
        updated_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'leases',
    sql: `
      CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        token      BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'token_ledger',
    sql: `
      CREATE TABLE token_ledger (
        key        TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL
      );
      CREATE INDEX token_ledger_expires ON token_ledger (expires_at);
    `,
  },
  {
    version: 4,
    name: 'revocations',
    sql: `
      CREATE TABLE revocations (
        id         TEXT PRIMARY KEY,
        revocation JSON NOT NULL,
        created_at TEXT NOT NULL,
        expires_at BIGINT NOT NULL
      );
      CREATE TABLE revocations_version (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL
      );
      INSERT INTO revocations_version (id, version) VALUES (1, 0);
    `,
  },
  {
    version: 5,
    name: 'audit_chain',
    sql: `
      CREATE TABLE audit_chain (
        seq       BIGINT PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL,
        time      TIMESTAMPTZ,
        event     TEXT,
        subject   TEXT,
        role      TEXT,
        decision  TEXT,
        record    JSON NOT NULL        -- json, not jsonb: kept verbatim, exactly as hashed
      );
      CREATE INDEX audit_chain_time ON audit_chain (time);
      CREATE INDEX audit_chain_subject ON audit_chain (subject, seq);
      CREATE INDEX audit_chain_role ON audit_chain (role, seq);
      CREATE INDEX audit_chain_decision ON audit_chain (decision, seq);
      CREATE INDEX audit_chain_event ON audit_chain (event, seq);
      -- The head of the chain: appends lock this row (SELECT … FOR UPDATE), so replicas take turns.
      CREATE TABLE audit_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  BIGINT NOT NULL,
        hash TEXT NOT NULL
      );
      INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}');
    `,
  },
  {
    version: 6,
    name: 'rate_counters',
    sql: `
      CREATE TABLE rate_counters (
        key      TEXT PRIMARY KEY,
        hits     INTEGER NOT NULL,
        reset_at BIGINT NOT NULL
      );
      CREATE INDEX rate_counters_reset ON rate_counters (reset_at);
    `,
  },
  {
    version: 7,
    name: 'audit_key_id',
    sql: `
      -- The id of the HMAC key that produced hash (never the key); NULL: a legacy SHA-256 row.
      ALTER TABLE audit_chain ADD COLUMN key_id TEXT;
    `,
  },
];

/**
 * Checks what a store has applied against this credbroker's list; returns the newest applied
 * version. A newer schema (a newer credbroker ran) or a changed migration stops the start.
 */
export function checkAppliedMigrations(applied: ReadonlyArray<{ version: number; name: string }>, migrations: readonly Migration[]): number {
  const newest = applied.at(-1)?.version ?? 0;
  if (newest > migrations.length) {
    throw new StoreError('ERR_STORE_SCHEMA_TOO_NEW', `store schema version ${newest} is newer than this credbroker (${migrations.length})`);
  }
  for (const row of applied) {
    const known = migrations[row.version - 1];
    if (!known || known.name !== row.name) {
      throw new StoreError('ERR_STORE_MIGRATION_CHANGED', `applied migration ${row.version} "${row.name}" does not match this credbroker`);
    }
  }
  return newest;
}

/** Checks the list itself: versions 1..n in order, unique names. */
export function assertMigrationList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name}: version ${m.version}, expected ${i + 1}`);
  });
}
