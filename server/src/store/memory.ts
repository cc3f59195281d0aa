// In-memory store: one process, and tests. Same semantics as the SQL drivers. Rotation refuses to
// run on it (a crash would forget which key was being rolled out); see assertPersistentStore.
import type { AuditRecord } from '../audit/types.js';
import { chainHash, GENESIS_HASH, type ChainKey, type ChainedRecord } from '../core/audit-chain.js';
import type { Revocation } from '../core/revocation.js';
import type { AuditQuery, AuditSearch, AuditSummary, AuditSummaryQuery } from '../ops/types.js';
import { matchesAuditQuery, matchesAuditSearch, summarizeInCode } from '../ops/audit-query.js';
import { StoreError, auditKeyRequired, type Lease, type RotationState, type Store } from './types.js';

export class MemoryStore implements Store {
  readonly driver = 'memory' as const;
  private readonly states = new Map<string, string>();
  private readonly leases = new Map<string, Lease>();
  private readonly tokens = new Map<string, number>();
  private readonly revocations = new Map<string, Revocation>();
  private version = 0;
  private readonly audit: ChainedRecord[] = [];
  private readonly counters = new Map<string, { hits: number; resetAt: number }>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  async schemaVersion(): Promise<number> {
    return 0;
  }

  // --- rotation state and the leader lease

  async getRotationState(userName: string): Promise<RotationState | undefined> {
    const s = this.states.get(userName);
    return s === undefined ? undefined : (JSON.parse(s) as RotationState);
  }

  async listRotationStates(): Promise<RotationState[]> {
    return [...this.states.keys()].sort().map((k) => JSON.parse(this.states.get(k)!) as RotationState);
  }

  async putRotationState(state: RotationState, lease: Lease): Promise<void> {
    const cur = this.leases.get(lease.name);
    if (!cur || cur.holder !== lease.holder || cur.token !== lease.token || cur.expiresAt <= this.nowMs()) {
      throw new StoreError('ERR_STORE_LEASE_LOST', `lease "${lease.name}" (token ${lease.token}) is no longer held`);
    }
    this.states.set(state.userName, JSON.stringify(state));
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    const now = this.nowMs();
    const cur = this.leases.get(name);
    if (cur && cur.expiresAt > now && cur.holder !== holder) return undefined;
    const keep = cur !== undefined && cur.expiresAt > now && cur.holder === holder;
    const lease = { name, holder, token: keep ? cur.token : (cur?.token ?? 0) + 1, expiresAt: now + ttlMs };
    this.leases.set(name, lease);
    return { ...lease };
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    const now = this.nowMs();
    const cur = this.leases.get(lease.name);
    if (!cur || cur.holder !== lease.holder || cur.token !== lease.token || cur.expiresAt <= now) return undefined;
    cur.expiresAt = now + ttlMs;
    return { ...cur };
  }

  async releaseLease(lease: Lease): Promise<void> {
    const cur = this.leases.get(lease.name);
    if (cur && cur.holder === lease.holder && cur.token === lease.token) cur.expiresAt = 0;
  }

  // --- one-time token ledger

  async claimToken(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    const until = this.tokens.get(key);
    if (until !== undefined && until > now.getTime()) return false;
    this.tokens.set(key, expiresAt.getTime());
    return true;
  }
  async releaseToken(key: string): Promise<void> {
    this.tokens.delete(key);
  }
  async purgeExpiredTokens(now: Date): Promise<number> {
    let n = 0;
    for (const [k, until] of this.tokens) if (until <= now.getTime() && this.tokens.delete(k)) n++;
    for (const [k, c] of this.counters) if (c.resetAt <= now.getTime()) this.counters.delete(k);
    return n;
  }

  // --- revocations

  async addRevocation(r: Revocation): Promise<void> {
    this.revocations.set(r.id, structuredClone(r));
    this.version++;
  }
  async removeRevocation(id: string): Promise<boolean> {
    const had = this.revocations.delete(id);
    if (had) this.version++;
    return had;
  }
  async listRevocations(now: Date, opts: { includeExpired?: boolean } = {}): Promise<Revocation[]> {
    return [...this.revocations.values()]
      .filter((r) => opts.includeExpired || Date.parse(r.expires_at) > now.getTime())
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
      .map((r) => structuredClone(r));
  }
  async revocationsVersion(): Promise<number> {
    return this.version;
  }

  // --- hash-chained audit

  async appendAudit(record: AuditRecord, key?: ChainKey): Promise<ChainedRecord> {
    const prev = this.audit.at(-1);
    if (!key && prev?.keyId) throw auditKeyRequired();
    const seq = (prev?.seq ?? 0) + 1;
    const prevHash = prev?.hash ?? GENESIS_HASH;
    const stored = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
    const row: ChainedRecord = { seq, prevHash, hash: chainHash(seq, prevHash, stored, key), keyId: key?.id ?? null, record: stored };
    this.audit.push(row);
    return structuredClone(row);
  }
  async auditHead(): Promise<{ seq: number; hash: string }> {
    const last = this.audit.at(-1);
    return last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS_HASH };
  }
  async queryAudit(q: AuditQuery): Promise<ChainedRecord[]> {
    return this.audit.filter((r) => matchesAuditQuery(r.record, q)).slice(-(q.limit ?? 100));
  }
  async scanAudit(afterSeq: number, limit: number): Promise<ChainedRecord[]> {
    return this.audit.filter((r) => r.seq > afterSeq).slice(0, limit);
  }
  async searchAudit(q: AuditSearch): Promise<ChainedRecord[]> {
    const hits = this.audit.filter((r) => matchesAuditSearch(r.seq, r.record, q));
    const page = q.afterSeq !== undefined && q.beforeSeq === undefined ? hits.slice(0, q.limit) : hits.slice(-q.limit);
    return page.reverse();
  }
  async countAudit(q: AuditSearch, cap: number): Promise<number> {
    let n = 0;
    for (const r of this.audit) if (matchesAuditSearch(r.seq, r.record, q) && ++n > cap) break;
    return n;
  }
  async summarizeAudit(q: AuditSummaryQuery): Promise<AuditSummary> {
    return summarizeInCode(
      this.audit.map((r) => r.record),
      q,
    );
  }
  /** Test hook: the raw rows, to tamper with. */
  get auditRows(): ChainedRecord[] {
    return this.audit;
  }

  // --- rate-limit counters (fixed window)

  async incrementCounter(key: string, windowMs: number, now: Date): Promise<{ hits: number; resetAt: Date }> {
    let c = this.counters.get(key);
    if (!c || c.resetAt <= now.getTime()) this.counters.set(key, (c = { hits: 0, resetAt: now.getTime() + windowMs }));
    c.hits++;
    return { hits: c.hits, resetAt: new Date(c.resetAt) };
  }
  async decrementCounter(key: string): Promise<void> {
    const c = this.counters.get(key);
    if (c && c.hits > 0) c.hits--;
  }
  async resetCounter(key: string): Promise<void> {
    this.counters.delete(key);
  }

  async close(): Promise<void> {}
}
