// What the operational features need from the shared store: the one-time token ledger,
// revocations, the hash-chained audit trail, and rate-limit counters. Implemented in memory (one
// replica, tests), SQLite (embedded default) and PostgreSQL (several replicas).
import type { AuditRecord } from '../audit/types.js';
import type { ChainedRecord, ChainKey } from '../core/audit-chain.js';
import type { Revocation } from '../core/revocation.js';

export interface TokenLedgerStore {
  /** Records the key as used until expiresAt; false when it is already used and not expired. */
  claimToken(key: string, expiresAt: Date, now: Date): Promise<boolean>;
  releaseToken(key: string): Promise<void>;
  /** Deletes expired entries; returns how many. */
  purgeExpiredTokens(now: Date): Promise<number>;
}

export interface RevocationStore {
  addRevocation(r: Revocation): Promise<void>;
  /** Returns false when no such revocation exists. */
  removeRevocation(id: string): Promise<boolean>;
  /** Active (unexpired) revocations, or all with includeExpired. */
  listRevocations(now: Date, opts?: { includeExpired?: boolean }): Promise<Revocation[]>;
  /** Changes whenever a revocation is added or removed: replicas poll this cheaply. */
  revocationsVersion(): Promise<number>;
}

export interface AuditQuery {
  since?: Date;
  until?: Date;
  subject?: string;
  role?: string;
  decision?: 'allow' | 'deny' | 'error';
  event?: string;
  limit?: number;
}

export interface AuditStore {
  /**
   * Appends a record to the chain atomically (seq and prev hash assigned under a lock), chained
   * with HMAC under `key`. Without a key the row is a legacy SHA-256 row, refused (ERR_STORE_AUDIT_KEY_REQUIRED)
   * once the chain holds keyed rows: a process without the key must not downgrade the chain.
   */
  appendAudit(record: AuditRecord, key?: ChainKey): Promise<ChainedRecord>;
  /** The newest record's seq and hash (0 and the genesis hash when the chain is empty). */
  auditHead(): Promise<{ seq: number; hash: string }>;
  queryAudit(q: AuditQuery): Promise<ChainedRecord[]>;
  /** Records with seq > afterSeq in ascending order, for verification in batches. */
  scanAudit(afterSeq: number, limit: number): Promise<ChainedRecord[]>;
}

export interface CounterStore {
  /** Increments a fixed-window counter; returns hits in the window and when it resets. */
  incrementCounter(key: string, windowMs: number, now: Date): Promise<{ hits: number; resetAt: Date }>;
  decrementCounter(key: string): Promise<void>;
  resetCounter(key: string): Promise<void>;
}

export interface OpsStore extends TokenLedgerStore, RevocationStore, AuditStore, CounterStore {
  readonly driver: 'memory' | 'sqlite' | 'postgres';
  close(): Promise<void>;
}
