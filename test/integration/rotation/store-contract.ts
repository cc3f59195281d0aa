// The behaviour every Store implementation must have for rotation (state round trip, one lease
// holder at a time, growing fencing tokens, fenced writes). Run against each driver; issue 6's
// PostgreSQL store should pass the same contract.
import { describe, expect, it } from 'vitest';
import { emptyRotationState, type Store } from '../../../server/src/store/index.js';

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
  });
}
