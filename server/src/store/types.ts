// The persistent store, as the rest of the broker sees it. Methods are async and take/return plain
// values so that the three drivers — memory (one process, tests), SQLite (embedded default) and
// PostgreSQL (several replicas) — are interchangeable. Nothing secret is ever stored: rotation state
// holds key ids, the token ledger token hashes, the audit trail no token or key material.
import type { OpsStore } from '../ops/types.js';

/** Where one user's rotation stands. See docs/rotation.md for the state machine. */
export type RotationPhase =
  | 'idle' // no rotation in progress
  | 'creating' // intent recorded; CreateAccessKey may or may not have happened
  | 'pushing' // new key exists; delivered to the sinks (sinksDone grows), then verified
  | 'verified' // new key verified; deactivate the old key next
  | 'grace' // old key Inactive since deactivatedAt; delete it after the grace period
  | 'error'; // a human must look (e.g. two Active keys that credbroker did not create)

export interface RotationState {
  userName: string;
  phase: RotationPhase;
  /** The key being replaced (null when the user had none). */
  oldKeyId: string | null;
  /** The key being rolled out. */
  newKeyId: string | null;
  /** The key every sink holds once the last rotation completed. */
  currentKeyId: string | null;
  /** Sink ids a push was started to (recorded before the push). */
  sinksAttempted: string[];
  /** Sink ids that confirmed the new key. */
  sinksDone: string[];
  /** Sinks to push first on the next attempt (they may hold a key that was discarded). */
  prioritySinks: string[];
  startedAt: string | null;
  /** When the new key first passed GetCallerIdentity signed with it (before any push). */
  propagatedAt: string | null;
  verifiedAt: string | null;
  deactivatedAt: string | null;
  lastCompletedAt: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** Consecutive failed attempts, for backoff. */
  failures: number;
  nextAttemptAt: string | null;
  updatedAt: string;
  // Added later; absent in rows written before (read as null / empty).
  /** An IAM change about to be made: recorded before the call, cleared after it. Recovery audits what IAM shows. */
  pendingIam?: PendingIamChange | null;
  /**
   * Sink id → until when a write of the new key's push may still land there (ISO): the push's
   * deadline plus one lease period while it may be in flight, the moment it ended once nothing is.
   */
  lateWriteUntil?: Record<string, string>;
  /** Sinks that may still receive a late write of a discarded key: the new key is pushed to them again once `until` passed. */
  lateWrites?: { sinks: string[]; until: string } | null;
}

export interface PendingIamChange {
  step: 'create' | 'discard' | 'delete' | 'delete_inactive' | 'deactivate';
  keyId: string | null;
  at: string;
  /** The call was sent and got no answer (timeout, connection lost): it may or may not have happened. */
  unanswered?: boolean;
}

/** A held lease on a named lock. `token` increases on every change of holder (fencing token). */
export interface Lease {
  name: string;
  holder: string;
  token: number;
  expiresAt: number;
}

export interface RotationStateStore {
  getRotationState(userName: string): Promise<RotationState | undefined>;
  listRotationStates(): Promise<RotationState[]>;
  /** Writes the state only while `lease` is still the current holder of its lock (fencing). */
  putRotationState(state: RotationState, lease: Lease): Promise<void>;
}

export interface LeaseStore {
  /** Takes the lock if free, expired, or already ours (then renews); undefined if someone else holds it. */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined>;
  /** Extends a lease we hold; undefined if it was lost (expired and taken, or released). */
  renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined>;
  releaseLease(lease: Lease): Promise<void>;
}

export interface Store extends RotationStateStore, LeaseStore, OpsStore {
  readonly driver: 'memory' | 'sqlite' | 'postgres';
  /** Schema version after migrations (0 for memory). */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

export type StoreErrorCode =
  | 'ERR_STORE_LEASE_LOST'
  | 'ERR_STORE_SCHEMA_TOO_NEW'
  | 'ERR_STORE_MIGRATION_CHANGED'
  | 'ERR_STORE_MIGRATION_FAILED'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_STORE_NOT_PERSISTENT'
  | 'ERR_STORE_AUDIT_KEY_REQUIRED';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
  }
}

/** Thrown by appendAudit without a key once the chain holds keyed rows. */
export function auditKeyRequired(): StoreError {
  return new StoreError(
    'ERR_STORE_AUDIT_KEY_REQUIRED',
    'the audit chain is keyed and this process has no audit HMAC key (audit.hmac_key_file or audit.hmac_key_env): refusing to append an unkeyed record',
  );
}

export function emptyRotationState(userName: string, now: Date): RotationState {
  return {
    userName,
    phase: 'idle',
    oldKeyId: null,
    newKeyId: null,
    currentKeyId: null,
    sinksAttempted: [],
    sinksDone: [],
    prioritySinks: [],
    startedAt: null,
    propagatedAt: null,
    verifiedAt: null,
    deactivatedAt: null,
    lastCompletedAt: null,
    errorCode: null,
    errorMessage: null,
    failures: 0,
    nextAttemptAt: null,
    updatedAt: now.toISOString(),
  };
}
