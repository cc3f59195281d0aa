// In-process OpsStore: one replica, and tests. Same semantics as the SQL implementations.
import type { AuditRecord } from '../audit/types.js';
import { chainHash, GENESIS_HASH, type ChainedRecord } from '../core/audit-chain.js';
import type { Revocation } from '../core/revocation.js';
import type { AuditQuery, OpsStore } from './types.js';
import { matchesAuditQuery } from './audit-query.js';

export class MemoryOpsStore implements OpsStore {
  readonly driver = 'memory' as const;
  private readonly tokens = new Map<string, number>();
  private readonly revocations = new Map<string, Revocation>();
  private version = 0;
  private readonly audit: ChainedRecord[] = [];
  private readonly counters = new Map<string, { hits: number; resetAt: number }>();

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
    return n;
  }

  async addRevocation(r: Revocation): Promise<void> {
    this.revocations.set(r.id, r);
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
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
  }
  async revocationsVersion(): Promise<number> {
    return this.version;
  }

  async appendAudit(record: AuditRecord): Promise<ChainedRecord> {
    const prev = this.audit.at(-1);
    const seq = (prev?.seq ?? 0) + 1;
    const prevHash = prev?.hash ?? GENESIS_HASH;
    const row = { seq, prevHash, hash: chainHash(seq, prevHash, record), record: structuredClone(record) };
    this.audit.push(row);
    return row;
  }
  async queryAudit(q: AuditQuery): Promise<ChainedRecord[]> {
    return this.audit.filter((r) => matchesAuditQuery(r.record, q)).slice(-(q.limit ?? 100));
  }
  async scanAudit(afterSeq: number, limit: number): Promise<ChainedRecord[]> {
    return this.audit.filter((r) => r.seq > afterSeq).slice(0, limit);
  }
  /** Test hook: the raw rows, to tamper with. */
  get auditRows(): ChainedRecord[] {
    return this.audit;
  }

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
