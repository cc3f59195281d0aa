// The behaviour every Store implementation must have: for rotation (state round trip, one lease
// holder at a time, growing fencing tokens, fenced writes) and for the operational features (token
// ledger, revocations with their version, the hash-chained audit, rate-limit counters). Run
// against every driver: memory, SQLite, PostgreSQL.
import { describe, expect, it } from 'vitest';
import { emptyRotationState, type Store } from '../../../server/src/store/index.js';
import { chainVerifier } from '../../../server/src/core/audit-chain.js';
import type { Revocation } from '../../../server/src/core/revocation.js';

export interface ContractClock {
  nowMs: number;
}

/** `open` returns two handles on the same underlying store (two processes on one database). */
export function storeContract(name: string, open: (clock: ContractClock) => Promise<{ a: Store; b: Store; close(): Promise<void> }>): void {
  describe(`${name} store contract`, () => {
    it('round-trips rotation state, and lists it', async () => {
      const clock = { nowMs: 1_000_000 };
      const { a, b, close } = await open(clock);
      const lease = (await a.acquireLease('rotation', 'A', 10_000))!;
      expect(await a.getRotationState('nobody')).toBeUndefined();
      const s = { ...emptyRotationState('u1', new Date(clock.nowMs)), phase: 'pushing' as const, oldKeyId: 'AKIAOLD', newKeyId: 'AKIANEW', sinksDone: ['gh'] };
      await a.putRotationState(s, lease);
      await a.putRotationState({ ...emptyRotationState('u0', new Date(clock.nowMs)) }, lease);
      expect(await b.getRotationState('u1')).toEqual(s);
      expect((await b.listRotationStates()).map((x) => x.userName)).toEqual(['u0', 'u1']);
      await close();
    });

    it('one holder at a time; the fencing token grows on every change of holder', async () => {
      const clock = { nowMs: 1_000_000 };
      const { a, b, close } = await open(clock);
      const la = await a.acquireLease('rotation', 'A', 10_000);
      expect(la).toMatchObject({ holder: 'A', token: 1, expiresAt: 1_010_000 });
      expect(await b.acquireLease('rotation', 'B', 10_000)).toBeUndefined();
      expect(await a.acquireLease('rotation', 'A', 10_000)).toMatchObject({ token: 1 });
      clock.nowMs += 5_000;
      expect(await a.renewLease(la!, 10_000)).toMatchObject({ token: 1, expiresAt: 1_015_000 });
      clock.nowMs += 10_001;
      expect(await a.renewLease(la!, 10_000)).toBeUndefined();
      const lb = await b.acquireLease('rotation', 'B', 10_000);
      expect(lb).toMatchObject({ holder: 'B', token: 2 });
      await b.releaseLease(lb!);
      expect(await a.acquireLease('rotation', 'A', 10_000)).toMatchObject({ token: 3 });
      await close();
    });

    it('refuses a state write from a holder whose lease was taken over (fencing)', async () => {
      const clock = { nowMs: 1_000_000 };
      const { a, b, close } = await open(clock);
      const la = (await a.acquireLease('rotation', 'A', 10_000))!;
      const s = emptyRotationState('u1', new Date(clock.nowMs));
      await a.putRotationState(s, la);
      clock.nowMs += 10_001;
      await expect(a.putRotationState({ ...s, phase: 'grace' }, la)).rejects.toMatchObject({ code: 'ERR_STORE_LEASE_LOST' });
      const lb = (await b.acquireLease('rotation', 'B', 10_000))!;
      await b.putRotationState({ ...s, phase: 'verified' }, lb);
      await expect(a.putRotationState({ ...s, phase: 'grace' }, la)).rejects.toMatchObject({ code: 'ERR_STORE_LEASE_LOST' });
      expect((await a.getRotationState('u1'))!.phase).toBe('verified');
      await close();
    });

    it('a token is claimed once across handles until it expires; release and purge', async () => {
      const { a, b, close } = await open({ nowMs: 0 });
      const t0 = new Date('2026-01-01T00:00:00Z');
      const at = (s: number) => new Date(t0.getTime() + s * 1000);
      expect(await a.claimToken('k1', at(60), t0)).toBe(true);
      expect(await b.claimToken('k1', at(60), at(1))).toBe(false);
      expect(await a.claimToken('k1', at(60), at(59))).toBe(false);
      expect(await b.claimToken('k1', at(200), at(60))).toBe(true); // expired: usable again
      await a.releaseToken('k1');
      expect(await b.claimToken('k1', at(200), at(61))).toBe(true);
      expect(await a.claimToken('k2', at(10), t0)).toBe(true);
      expect(await a.claimToken('k3', at(500), t0)).toBe(true);
      expect(await b.purgeExpiredTokens(at(300))).toBe(2); // k1 (200) and k2 (10)
      expect(await a.claimToken('k3', at(600), at(300))).toBe(false);
      await close();
    });

    it('concurrent claims of one token from two handles: exactly one wins', async () => {
      const { a, b, close } = await open({ nowMs: 0 });
      const now = new Date();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claimToken('race', new Date(now.getTime() + 60_000), now)));
      expect(results.filter(Boolean)).toHaveLength(1);
      await close();
    });

    it('revocations round-trip, expire from the active list, and bump the version on every change', async () => {
      const { a, b, close } = await open({ nowMs: 0 });
      const now = new Date('2026-01-01T00:00:00Z');
      const rev = (id: string, createdAt: string, expiresAt: string): Revocation => ({
        id,
        issuer: 'github',
        claims: { repository_id: '42', sub: { glob: 'repo:acme/*' } } as Revocation['claims'],
        session_name: null,
        source_identity: 'gh-42-*',
        reason: 'leaked workflow',
        created_by: 'alice',
        created_at: createdAt,
        expires_at: expiresAt,
      });
      const v0 = await b.revocationsVersion();
      const r1 = rev('r1', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z');
      const r2 = rev('r2', '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:30.000Z');
      await a.addRevocation(r1);
      const v1 = await b.revocationsVersion();
      expect(v1).not.toBe(v0);
      await a.addRevocation(r2);
      expect(await b.listRevocations(now)).toEqual([r1, r2]);
      expect(await b.listRevocations(new Date('2026-01-01T00:01:00Z'))).toEqual([r1]);
      expect(await b.listRevocations(new Date('2026-01-01T00:01:00Z'), { includeExpired: true })).toEqual([r1, r2]);
      const v2 = await b.revocationsVersion();
      expect(await a.removeRevocation('r2')).toBe(true);
      const v3 = await b.revocationsVersion();
      expect(v3).not.toBe(v2);
      expect(await a.removeRevocation('r2')).toBe(false);
      expect(await b.revocationsVersion()).toBe(v3); // nothing changed, no new version
      expect(await b.listRevocations(now, { includeExpired: true })).toEqual([r1]);
      await close();
    });

    it('appends audit records from both handles into one chain that verifies, and answers queries', async () => {
      const { a, b, close } = await open({ nowMs: 0 });
      const rec = (i: number) => ({
        time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
        event: i % 5 === 0 ? 'admin.revoke' : 'exchange',
        decision: (['allow', 'deny', 'error'] as const)[i % 3],
        subject: `repo:acme/app${i % 2}`,
        role: i % 2 ? 'deploy' : 'read',
        request_id: `req-${i}`,
        detail: { nested: { b: 1, a: [i, 'x'] }, dropped: undefined },
      });
      const first = await a.appendAudit(rec(0));
      expect(first).toMatchObject({ seq: 1, prevHash: '0'.repeat(64) });
      // Concurrent appends from two handles (two replicas): seq and prev_hash never fork.
      await Promise.all(Array.from({ length: 29 }, (_, i) => (i % 2 ? a : b).appendAudit(rec(i + 1))));
      const rows = await b.scanAudit(0, 1000);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      const v = chainVerifier();
      v.add((await a.scanAudit(0, 7)).concat(await a.scanAudit(7, 1000)));
      expect(v.result(rows.at(-1)!.hash)).toMatchObject({ ok: true, checked: 30 });
      expect(rows[0]!.record).toEqual({ ...rec(0), detail: { nested: { b: 1, a: [0, 'x'] } } });

      const deny = await a.queryAudit({ decision: 'deny', role: 'deploy', limit: 100 });
      expect(deny.length).toBeGreaterThan(0);
      for (const r of deny) expect(r.record).toMatchObject({ decision: 'deny', role: 'deploy' });
      const bySubject = await b.queryAudit({ subject: 'repo:acme/app0', event: 'admin.revoke' });
      expect(bySubject.map((r) => r.record.request_id).sort()).toEqual(['req-0', 'req-10', 'req-20']);
      const window = await a.queryAudit({ since: new Date(Date.UTC(2026, 0, 1, 0, 0, 10)), until: new Date(Date.UTC(2026, 0, 1, 0, 0, 13)) });
      expect(window.map((r) => r.record.request_id).sort()).toEqual(['req-10', 'req-11', 'req-12']); // chain order, not request order
      expect(window.map((r) => r.seq)).toEqual([...window.map((r) => r.seq)].sort((x, y) => x - y)); // ascending
      const newest = await a.queryAudit({ limit: 2 });
      expect(newest.map((r) => r.seq)).toEqual([29, 30]);
      await close();
    });

    it('rate-limit counters are shared, per fixed window, and can be decremented and reset', async () => {
      const { a, b, close } = await open({ nowMs: 0 });
      const t0 = new Date('2026-01-01T00:00:00Z');
      const at = (ms: number) => new Date(t0.getTime() + ms);
      expect(await a.incrementCounter('rl:id:x', 60_000, t0)).toEqual({ hits: 1, resetAt: at(60_000) });
      expect(await b.incrementCounter('rl:id:x', 60_000, at(1000))).toEqual({ hits: 2, resetAt: at(60_000) });
      const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).incrementCounter('rl:id:x', 60_000, at(2000))));
      expect(burst.map((r) => r.hits).sort((x, y) => x - y)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      await b.decrementCounter('rl:id:x');
      expect((await a.incrementCounter('rl:id:x', 60_000, at(3000))).hits).toBe(12);
      expect(await a.incrementCounter('rl:id:x', 60_000, at(60_000))).toEqual({ hits: 1, resetAt: at(120_000) }); // new window
      expect((await a.incrementCounter('rl:id:y', 60_000, at(60_000))).hits).toBe(1);
      await b.resetCounter('rl:id:x');
      expect((await a.incrementCounter('rl:id:x', 60_000, at(61_000))).hits).toBe(1);
      await close();
    });
  });
}
