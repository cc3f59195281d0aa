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

/**
 * The console's search over the audit chain: indexed columns, the record's issuer and claims, a
 * free-text match, paged by seq (keyset) so that page N costs the same as page 1.
 */
export interface AuditSearch {
  since?: Date;
  until?: Date;
  decision?: 'allow' | 'deny' | 'error';
  role?: string;
  /** The record's issuer id. */
  issuer?: string;
  event?: string;
  /** Events starting with this (e.g. `admin.`). */
  eventPrefix?: string;
  /** record.claims[name] compared as text; `*` in the value matches any run of characters. */
  claims?: Array<{ name: string; value: string }>;
  /** A substring of the record's JSON, case-insensitive (ASCII). */
  text?: string;
  /** Older records than this seq (the next page). */
  beforeSeq?: number;
  /** Newer records than this seq (the previous page). */
  afterSeq?: number;
  limit: number;
}

/** Exchange decisions over a time range: counts per time bucket, top denial reasons, top identities. */
export interface AuditSummary {
  /** Buckets that hold at least one record, oldest first; `start` in epoch ms. */
  buckets: Array<{ start: number; allow: number; deny: number; error: number }>;
  denyReasons: Array<{ reason: string; count: number }>;
  identities: Array<{ issuer: string | null; subject: string; allow: number; deny: number; error: number; total: number }>;
}

export interface AuditSummaryQuery {
  since: Date;
  until: Date;
  bucketMs: number;
  /** How many reasons and identities. */
  top: number;
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
  /** Matching records, newest first: the `limit` just below `beforeSeq`, or just above `afterSeq`. */
  searchAudit(q: AuditSearch): Promise<ChainedRecord[]>;
  /** How many records match, counting at most `cap + 1` (more than `cap`: "cap+"). */
  countAudit(q: AuditSearch, cap: number): Promise<number>;
  summarizeAudit(q: AuditSummaryQuery): Promise<AuditSummary>;
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
