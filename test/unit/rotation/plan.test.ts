// The rotation planner: one next action from state + keys + clock + whether the secret is in memory.
import { describe, expect, it } from 'vitest';
import { applyAction, markAttempted, planNext, reconcilePending, recordFailure, type Action, type PlanInput } from '../../../server/src/rotation/plan.js';
import { emptyRotationState, type RotationState } from '../../../server/src/store/types.js';
import type { AccessKeyInfo } from '../../../server/src/aws/iam.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const DAY = 86_400_000;
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);
const key = (id: string, status: 'Active' | 'Inactive', ageDays: number): AccessKeyInfo => ({ accessKeyId: id, status, createDate: ago(ageDays) });
const state = (over: Partial<RotationState> = {}): RotationState => ({ ...emptyRotationState('u', NOW), ...over });

const base = (over: Partial<PlanInput>): PlanInput => ({
  state: state(),
  keys: [],
  now: NOW,
  maxKeyAgeMs: 30 * DAY,
  graceMs: 7 * DAY,
  sinkIds: ['gh', 'travis'],
  hasSecret: false,
  force: false,
  fenceMs: 120_000,
  ...over,
});

const cases: Array<{ name: string; input: Partial<PlanInput>; expected: Partial<Action> }> = [
  { name: 'a young Active key: nothing to do until it reaches max age', input: { keys: [key('K1', 'Active', 10)] }, expected: { kind: 'idle', nextRotationAt: ago(-20) } as Partial<Action> },
  { name: 'a key older than max age starts a rotation replacing it', input: { keys: [key('K1', 'Active', 31)] }, expected: { kind: 'start', oldKeyId: 'K1' } },
  { name: '--force starts a rotation of a young key', input: { keys: [key('K1', 'Active', 1)], force: true }, expected: { kind: 'start', oldKeyId: 'K1', reason: 'forced' } },
  { name: 'a user without keys gets one', input: { keys: [] }, expected: { kind: 'start', oldKeyId: null } },
  { name: 'a lone Inactive key is replaced at once', input: { keys: [key('K1', 'Inactive', 3)] }, expected: { kind: 'start', oldKeyId: 'K1' } },
  {
    name: 'two Active keys with no rotation of ours in progress: error for a human',
    input: { keys: [key('K1', 'Active', 40), key('K2', 'Active', 2)] },
    expected: { kind: 'error', code: 'ERR_ROTATION_TWO_ACTIVE_KEYS' },
  },
  { name: 'two Active keys are an error even when forced', input: { keys: [key('K1', 'Active', 40), key('K2', 'Active', 2)], force: true }, expected: { kind: 'error' } },
  {
    name: 'preflight: an Inactive key older than the grace period is deleted first',
    input: { keys: [key('K0', 'Inactive', 60), key('K1', 'Active', 31)] },
    expected: { kind: 'delete_inactive', keyId: 'K0' },
  },
  {
    name: 'preflight: an Inactive key within the grace period blocks the rotation until it ends',
    input: { keys: [key('K0', 'Inactive', 3), key('K1', 'Active', 31)] },
    expected: { kind: 'wait', until: ago(-4) },
  },
  {
    name: 'creating: a key other than the old one was created before a crash and is discarded',
    input: { state: state({ phase: 'creating', oldKeyId: 'K1', startedAt: NOW.toISOString() }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)] },
    expected: { kind: 'discard', keyId: 'K2' },
  },
  { name: 'creating: no new key yet → create it', input: { state: state({ phase: 'creating', oldKeyId: 'K1' }), keys: [key('K1', 'Active', 31)] }, expected: { kind: 'create' } },
  {
    name: 'pushing with the secret in memory: check propagation before the first push',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2' }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)], hasSecret: true },
    expected: { kind: 'propagate', keyId: 'K2' },
  },
  {
    name: 'pushing: sinks in config order',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2', propagatedAt: NOW.toISOString(), sinksDone: ['gh'] }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)], hasSecret: true },
    expected: { kind: 'push', sinkId: 'travis' },
  },
  {
    name: 'pushing: sinks that may hold a discarded key go first',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K3', propagatedAt: NOW.toISOString(), prioritySinks: ['travis'] }), keys: [key('K1', 'Active', 31), key('K3', 'Active', 0)], hasSecret: true },
    expected: { kind: 'push', sinkId: 'travis' },
  },
  {
    name: 'pushing without the secret (process restarted) before every sink confirmed: discard the new key',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2', sinksDone: ['gh'] }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)] },
    expected: { kind: 'discard', keyId: 'K2' },
  },
  {
    name: 'every sink confirmed but the secret is gone: verify by IAM status, never discard a delivered key',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2', sinksDone: ['gh', 'travis'], propagatedAt: NOW.toISOString() }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)] },
    expected: { kind: 'verify', keyId: 'K2', signed: false },
  },
  {
    name: 'every sink confirmed with the secret in memory: signed verification',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2', sinksDone: ['gh', 'travis'] }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)], hasSecret: true },
    expected: { kind: 'verify', signed: true },
  },
  {
    name: 'the new key vanished mid-rotation: start over',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2' }), keys: [key('K1', 'Active', 31)] },
    expected: { kind: 'restart' },
  },
  {
    name: 'the new key was deactivated by someone mid-rotation: error for a human',
    input: { state: state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2' }), keys: [key('K1', 'Active', 31), key('K2', 'Inactive', 0)], hasSecret: true },
    expected: { kind: 'error', code: 'ERR_ROTATION_KEY_STATE' },
  },
  {
    name: 'verified: deactivate the old key',
    input: { state: state({ phase: 'verified', oldKeyId: 'K1', newKeyId: 'K2' }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)] },
    expected: { kind: 'deactivate', keyId: 'K1' },
  },
  { name: 'verified and the old key is already gone: complete', input: { state: state({ phase: 'verified', oldKeyId: 'K1', newKeyId: 'K2' }), keys: [key('K2', 'Active', 0)] }, expected: { kind: 'complete' } },
  {
    name: 'grace: wait until the grace period has passed since deactivation',
    input: { state: state({ phase: 'grace', oldKeyId: 'K1', newKeyId: 'K2', deactivatedAt: ago(2).toISOString() }), keys: [key('K1', 'Inactive', 31), key('K2', 'Active', 2)] },
    expected: { kind: 'wait', until: ago(-5) },
  },
  {
    name: 'grace over: delete the old key',
    input: { state: state({ phase: 'grace', oldKeyId: 'K1', newKeyId: 'K2', deactivatedAt: ago(8).toISOString() }), keys: [key('K1', 'Inactive', 39), key('K2', 'Active', 8)] },
    expected: { kind: 'delete', keyId: 'K1' },
  },
  {
    name: 'grace: the old key was re-activated by someone: error for a human',
    input: { state: state({ phase: 'grace', oldKeyId: 'K1', newKeyId: 'K2', deactivatedAt: ago(2).toISOString() }), keys: [key('K1', 'Active', 31), key('K2', 'Active', 2)] },
    expected: { kind: 'error', code: 'ERR_ROTATION_KEY_STATE' },
  },
  {
    name: 'backoff after a failure: wait, unless forced',
    input: { state: state({ phase: 'pushing', newKeyId: 'K2', nextAttemptAt: ago(-0.01).toISOString() }), keys: [key('K2', 'Active', 0)] },
    expected: { kind: 'wait' },
  },
  {
    name: 'an error state clears itself once a human fixed the keys',
    input: { state: state({ phase: 'error', errorCode: 'ERR_ROTATION_TWO_ACTIVE_KEYS' }), keys: [key('K2', 'Active', 2)] },
    expected: { kind: 'idle' },
  },
];

const SEC = 1000;
const iso = (msFromNow: number) => new Date(NOW.getTime() + msFromNow).toISOString();
const pushing = (over: Partial<RotationState>) => state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2', propagatedAt: NOW.toISOString(), ...over });
const twoKeys = [key('K1', 'Active', 31), key('K2', 'Active', 0)];

// Late writes: a push of a dropped key may land until its recorded lateWriteUntil (the deadline plus one lease period, fenceMs 120 s, or the moment it ended with nothing in flight).
cases.push(
  {
    name: 'a key dropped while its push may still land: that sink is pushed again once that window has passed',
    input: { state: pushing({ sinksAttempted: ['gh'], lateWriteUntil: { gh: iso(110 * SEC) } }), keys: twoKeys, hasSecret: false },
    expected: { kind: 'discard', keyId: 'K2', lateWrites: { sinks: ['gh'], until: iso(110 * SEC) } } as Partial<Action>,
  },
  {
    name: 'a push recorded without a window (an older version) is taken to have run until now',
    input: { state: pushing({ sinksAttempted: ['travis'] }), keys: twoKeys, hasSecret: false },
    expected: { kind: 'discard', lateWrites: { sinks: ['travis'], until: iso(120 * SEC) } } as Partial<Action>,
  },
  {
    name: 'a new key that vanished while its pushes may still land: restart, guarding those sinks',
    input: { state: pushing({ sinksAttempted: ['gh'], lateWriteUntil: { gh: iso(120 * SEC) } }), keys: [key('K1', 'Active', 31)] },
    expected: { kind: 'restart', lateWrites: { sinks: ['gh'], until: iso(120 * SEC) } } as Partial<Action>,
  },
  {
    name: 'every sink confirmed but late writes pending: push again to those sinks, not before the window ends',
    input: { state: pushing({ sinksDone: ['gh', 'travis'], lateWrites: { sinks: ['gh'], until: iso(30 * SEC) } }), keys: twoKeys, hasSecret: true },
    expected: { kind: 'repush', sinkId: 'gh', keyId: 'K2', notBefore: new Date(iso(30 * SEC)) } as Partial<Action>,
  },
  {
    name: 'every sink confirmed, late writes pending, but the secret is gone: the key cannot be pushed again, so it is discarded',
    input: { state: pushing({ sinksDone: ['gh', 'travis'], lateWrites: { sinks: ['gh'], until: iso(30 * SEC) } }), keys: twoKeys, hasSecret: false },
    expected: { kind: 'discard', keyId: 'K2', lateWrites: { sinks: ['gh'], until: iso(30 * SEC) } } as Partial<Action>,
  },
  {
    name: 'late writes to a sink that is no longer configured do not hold the rotation',
    input: { state: pushing({ sinksDone: ['gh', 'travis'], lateWrites: { sinks: ['removed'], until: iso(30 * SEC) } }), keys: twoKeys, hasSecret: true },
    expected: { kind: 'verify', keyId: 'K2', signed: true },
  },
);

describe('planNext', () => {
  it.each(cases)('$name', ({ input, expected }) => {
    expect(planNext(base(input))).toMatchObject(expected);
  });
  it('a key dropped after the windows of its pushes ended (or they ended with nothing in flight): no late writes to guard against', () => {
    const a = planNext(base({ state: pushing({ sinksAttempted: ['gh'], lateWriteUntil: { gh: iso(-80 * SEC) } }), keys: twoKeys, hasSecret: false }));
    expect(a).toEqual({ kind: 'discard', keyId: 'K2', reason: 'its secret was lost before every sink confirmed it' });
  });
});

describe('applyAction', () => {
  it('discarding the new key goes back to creating and remembers which sinks may hold it', () => {
    let s = state({ phase: 'pushing', oldKeyId: 'K1', newKeyId: 'K2', propagatedAt: NOW.toISOString() });
    s = markAttempted(s, 'gh', NOW, NOW);
    s = applyAction(s, { kind: 'push', sinkId: 'gh', keyId: 'K2' }, NOW);
    s = markAttempted(s, 'travis', NOW, NOW);
    const next = applyAction(s, { kind: 'discard', keyId: 'K2', reason: 'x' }, NOW);
    expect(next).toMatchObject({ phase: 'creating', oldKeyId: 'K1', newKeyId: null, sinksDone: [], sinksAttempted: [], prioritySinks: ['gh', 'travis'], propagatedAt: null });
  });

  it('a discard records the late-write window; each push again clears its sink; completion clears it all', () => {
    let s = pushing({ sinksAttempted: ['gh'], lateWriteUntil: { gh: iso(120 * SEC) } });
    s = applyAction(s, { kind: 'discard', keyId: 'K2', reason: 'x', lateWrites: { sinks: ['gh', 'travis'], until: iso(120 * SEC) } }, NOW);
    expect(s).toMatchObject({ phase: 'creating', lateWriteUntil: {}, lateWrites: { sinks: ['gh', 'travis'], until: iso(120 * SEC) } });
    s = applyAction(s, { kind: 'create' }, NOW, { newKeyId: 'K3' });
    expect(s.lateWrites).toEqual({ sinks: ['gh', 'travis'], until: iso(120 * SEC) });
    s = applyAction(s, { kind: 'repush', sinkId: 'gh', keyId: 'K3', notBefore: NOW }, NOW);
    expect(s.lateWrites).toEqual({ sinks: ['travis'], until: iso(120 * SEC) });
    s = applyAction(s, { kind: 'repush', sinkId: 'travis', keyId: 'K3', notBefore: NOW }, NOW);
    expect(s.lateWrites).toBeNull();
  });

  it('a key discarded because nobody received it keeps the failure and its backoff', () => {
    const failed = recordFailure(pushing({ sinksAttempted: ['gh'] }), 'ERR_SINK_HTTP', 'gh answered 500', NOW, 60_000);
    const next = applyAction(failed, { kind: 'discard', keyId: 'K2', reason: 'x', undelivered: true }, NOW);
    expect(next).toMatchObject({ phase: 'creating', newKeyId: null, failures: 1, errorCode: 'ERR_SINK_HTTP', nextAttemptAt: failed.nextAttemptAt, prioritySinks: ['gh'] });
  });

  it('completion records the new key as current and clears the rotation', () => {
    const s = state({ phase: 'grace', oldKeyId: 'K1', newKeyId: 'K2', sinksDone: ['gh'], prioritySinks: ['gh'] });
    expect(applyAction(s, { kind: 'delete', keyId: 'K1' }, NOW)).toMatchObject({ phase: 'idle', currentKeyId: 'K2', oldKeyId: null, newKeyId: null, prioritySinks: [], lastCompletedAt: NOW.toISOString() });
  });

  it('a failure keeps the phase and backs off exponentially', () => {
    const s = state({ phase: 'pushing', newKeyId: 'K2' });
    const f1 = recordFailure(s, 'ERR_SINK_HTTP', 'm', NOW, 60_000);
    const f2 = recordFailure(f1, 'ERR_SINK_HTTP', 'm', NOW, 60_000);
    expect(f1).toMatchObject({ phase: 'pushing', failures: 1, nextAttemptAt: new Date(NOW.getTime() + 60_000).toISOString() });
    expect(f2.nextAttemptAt).toBe(new Date(NOW.getTime() + 120_000).toISOString());
    expect(applyAction(f2, { kind: 'propagate', keyId: 'K2' }, NOW)).toMatchObject({ failures: 0, nextAttemptAt: null, errorCode: null });
  });
});

describe('the whole machine, simulated', () => {
  it('from a due key to a single new key, never more than two keys, never deactivating before every sink confirmed', () => {
    let keys = [key('K1', 'Active', 31)];
    let s = state();
    let now = NOW;
    let secret = false;
    const trace: string[] = [];
    for (let i = 0; i < 30; i++) {
      const a = planNext(base({ state: s, keys, now, hasSecret: secret }));
      trace.push(a.kind);
      if (a.kind === 'idle') break;
      if (a.kind === 'wait') {
        now = new Date(a.until.getTime() + 1);
        continue;
      }
      if (a.kind === 'error') throw new Error(a.message);
      if (a.kind === 'create') {
        keys = [...keys, { accessKeyId: 'K2', status: 'Active', createDate: now }];
        secret = true;
      }
      if (a.kind === 'deactivate') {
        expect(s.sinksDone).toEqual(['gh', 'travis']);
        keys = keys.map((k) => (k.accessKeyId === a.keyId ? { ...k, status: 'Inactive' as const } : k));
      }
      if (a.kind === 'delete') keys = keys.filter((k) => k.accessKeyId !== a.keyId);
      if (a.kind === 'verify') secret = false;
      if (a.kind === 'push') s = markAttempted(s, a.sinkId, now, now);
      expect(keys.length).toBeLessThanOrEqual(2);
      s = applyAction(s, a as Exclude<Action, { kind: 'idle' | 'wait' | 'error' }>, now, a.kind === 'create' ? { newKeyId: 'K2' } : {});
    }
    expect(trace).toEqual(['start', 'create', 'propagate', 'push', 'push', 'verify', 'deactivate', 'wait', 'delete', 'idle']);
    expect(keys).toEqual([expect.objectContaining({ accessKeyId: 'K2', status: 'Active' })]);
  });
});

describe('reconcilePending: what IAM shows of a change its runner did not finish', () => {
  const at = NOW.toISOString();
  it.each([
    { name: 'a create that happened: the key that is neither old nor current', step: 'create' as const, keyId: null, st: { phase: 'creating' as const, oldKeyId: 'K1' }, keys: [key('K1', 'Active', 31), key('K9', 'Active', 0)], expected: { applied: true, keyId: 'K9' } },
    { name: 'a create that did not happen', step: 'create' as const, keyId: null, st: { phase: 'creating' as const, oldKeyId: 'K1' }, keys: [key('K1', 'Active', 31)], expected: { applied: false, keyId: null } },
    { name: 'a delete that happened', step: 'delete' as const, keyId: 'K1', st: { phase: 'grace' as const, oldKeyId: 'K1', newKeyId: 'K2' }, keys: [key('K2', 'Active', 0)], expected: { applied: true, keyId: 'K1' } },
    { name: 'a delete that did not happen', step: 'delete' as const, keyId: 'K1', st: { phase: 'grace' as const, oldKeyId: 'K1', newKeyId: 'K2' }, keys: [key('K1', 'Inactive', 31), key('K2', 'Active', 0)], expected: { applied: false, keyId: 'K1' } },
    { name: 'a discard that happened', step: 'discard' as const, keyId: 'K2', st: { phase: 'pushing' as const, oldKeyId: 'K1', newKeyId: 'K2' }, keys: [key('K1', 'Active', 31)], expected: { applied: true, keyId: 'K2' } },
    { name: 'a deactivate that happened', step: 'deactivate' as const, keyId: 'K1', st: { phase: 'verified' as const, oldKeyId: 'K1', newKeyId: 'K2' }, keys: [key('K1', 'Inactive', 31), key('K2', 'Active', 0)], expected: { applied: true, keyId: 'K1' } },
    { name: 'a deactivate that did not happen', step: 'deactivate' as const, keyId: 'K1', st: { phase: 'verified' as const, oldKeyId: 'K1', newKeyId: 'K2' }, keys: [key('K1', 'Active', 31), key('K2', 'Active', 0)], expected: { applied: false, keyId: 'K1' } },
  ])('$name', ({ step, keyId, st, keys, expected }) => {
    expect(reconcilePending({ step, keyId, at }, state(st), keys)).toEqual(expected);
  });
});
