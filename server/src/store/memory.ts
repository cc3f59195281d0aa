// In-memory store: for unit tests only. Rotation refuses to run on it (a crash would forget which
// key was being rolled out); see assertPersistentStore.
import { StoreError, type Lease, type RotationState, type Store } from './types.js';

export class MemoryStore implements Store {
  readonly driver = 'memory' as const;
  private readonly states = new Map<string, string>();
  private readonly leases = new Map<string, Lease>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  async schemaVersion(): Promise<number> {
    return 0;
  }

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

  async close(): Promise<void> {}
}
