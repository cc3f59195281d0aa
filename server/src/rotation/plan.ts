// The rotation state machine, as pure functions: `planNext` picks the one next action from the
// persisted state, the user's keys as IAM lists them, the clock and whether the new key's secret is
// still in this process's memory; `applyAction` gives the state after that action succeeded. The
// executor (rotate-user.ts) only performs the side effect between the two. See docs/rotation.md.
//
// Invariant kept at every persisted state: every sink holds a key that exists and is Active.
//   - the old key is deactivated only after every sink confirmed the new key and it was verified;
//   - the old key is deleted only after it was Inactive for the grace period;
//   - a new key is created only when the user has at most one key, so there are never more than 2.
// The one unavoidable exception is recovery from a crash mid-push: the new key's secret died with
// the process, so that key must be deleted and the sinks that already had it are without a working
// key until the replacement reaches them — they are pushed first (prioritySinks).
//
// Late writes: every push has a deadline before its runner's lease expires. Before the push, the
// state records until when a write of it may still land (lateWriteUntil: the deadline plus one
// lease period, for what escapes the fence); when the push ends with nothing in flight, that is
// cut to the moment it ended. When a key is dropped while a push of it may still land — its runner
// was paused or died mid-push, or a request was aborted that the CI API may still apply — those
// sinks are recorded in lateWrites, and the replacement key is pushed to them once more after
// `until`, before it is verified and the old key retired.
import type { AccessKeyInfo } from '../aws/iam.js';
import type { PendingIamChange, RotationState } from '../store/types.js';

export type Action =
  | { kind: 'idle'; nextRotationAt: Date | null }
  | { kind: 'wait'; until: Date; reason: string }
  | { kind: 'error'; code: 'ERR_ROTATION_TWO_ACTIVE_KEYS' | 'ERR_ROTATION_KEY_STATE'; message: string }
  | { kind: 'delete_inactive'; keyId: string }
  | { kind: 'start'; oldKeyId: string | null; reason: string }
  | { kind: 'discard'; keyId: string; reason: string; lateWrites?: LateWrites; undelivered?: boolean }
  | { kind: 'create' }
  | { kind: 'propagate'; keyId: string }
  | { kind: 'push'; sinkId: string; keyId: string }
  | { kind: 'repush'; sinkId: string; keyId: string; notBefore: Date }
  | { kind: 'verify'; keyId: string; signed: boolean }
  | { kind: 'deactivate'; keyId: string }
  | { kind: 'delete'; keyId: string }
  | { kind: 'complete' }
  | { kind: 'restart'; reason: string; lateWrites?: LateWrites };

export interface LateWrites {
  sinks: string[];
  until: string;
}

/** Steps whose side effect is an IAM change: an intent is recorded (state and audit) before the call. */
export const IAM_STEPS = new Set<Action['kind']>(['delete_inactive', 'discard', 'create', 'deactivate', 'delete']);

export type StepAction = Exclude<Action, { kind: 'idle' } | { kind: 'wait' } | { kind: 'error' }>;

export const isTerminal = (a: Action): a is Extract<Action, { kind: 'idle' | 'wait' | 'error' }> =>
  a.kind === 'idle' || a.kind === 'wait' || a.kind === 'error';

export interface PlanInput {
  state: RotationState;
  keys: AccessKeyInfo[];
  now: Date;
  maxKeyAgeMs: number;
  graceMs: number;
  /** Configured sink ids, in config order. */
  sinkIds: string[];
  /** The secret of state.newKeyId is in this process's memory. */
  hasSecret: boolean;
  /** Rotate now even if the key is not due, and ignore failure backoff. */
  force: boolean;
  /** How long after a push's deadline a late write of it is still guarded against (the lease duration). */
  fenceMs: number;
}

export function orderedSinks(sinkIds: string[], priority: string[]): string[] {
  return [...priority.filter((s) => sinkIds.includes(s)), ...sinkIds.filter((s) => !priority.includes(s))];
}

/** planNext for a configured user: its key age, grace period and sinks from its settings. */
export function planFor(
  user: { maxKeyAgeSeconds: number; graceSeconds: number; sinkIds: string[] },
  at: Pick<PlanInput, 'state' | 'keys' | 'now' | 'hasSecret' | 'force' | 'fenceMs'>,
): Action {
  return planNext({ ...at, maxKeyAgeMs: user.maxKeyAgeSeconds * 1000, graceMs: user.graceSeconds * 1000, sinkIds: user.sinkIds });
}

export function planNext(input: PlanInput): Action {
  const { state, now } = input;
  if (!input.force && state.nextAttemptAt !== null && state.phase !== 'error') {
    const until = new Date(state.nextAttemptAt);
    if (until > now) return { kind: 'wait', until, reason: 'backing off after a failed attempt' };
  }
  switch (state.phase) {
    case 'idle':
    case 'error':
      return planIdle(input);
    case 'creating':
      return planCreating(input);
    case 'pushing':
      return planDelivery(input);
    case 'verified':
      return planDeactivate(input);
    case 'grace':
      return planGrace(input);
  }
}

function planIdle(input: PlanInput): Action {
  const { keys, now } = input;
  const active = keys.filter((k) => k.status === 'Active');
  if (active.length >= 2) {
    return {
      kind: 'error',
      code: 'ERR_ROTATION_TWO_ACTIVE_KEYS',
      message: `two Active keys (${active.map((k) => k.accessKeyId).join(', ')}) and no rotation of ours in progress: a human must decide which one the consumers use`,
    };
  }
  const oldest = active[0];
  const due = input.force || oldest === undefined || now.getTime() - oldest.createDate.getTime() >= input.maxKeyAgeMs;
  if (!due) return { kind: 'idle', nextRotationAt: new Date(oldest.createDate.getTime() + input.maxKeyAgeMs) };
  if (keys.length >= 2) {
    // Preflight: a free slot is needed. An Inactive key past the grace period goes first.
    const inactive = keys.filter((k) => k.status === 'Inactive');
    const staleAt = (k: AccessKeyInfo) => new Date(inactiveSince(k, input.state).getTime() + input.graceMs);
    const stale = inactive.find((k) => staleAt(k) <= now);
    if (stale) return { kind: 'delete_inactive', keyId: stale.accessKeyId };
    const until = new Date(Math.min(...inactive.map((k) => staleAt(k).getTime())));
    return { kind: 'wait', until, reason: 'an Inactive key is still within its grace period' };
  }
  const reason = input.force ? 'forced' : oldest === undefined ? 'no Active key' : 'key older than max_key_age';
  return { kind: 'start', oldKeyId: keys[0]?.accessKeyId ?? null, reason };
}

/** When an Inactive key became Inactive: known if we deactivated it, else (conservatively late) its creation. */
function inactiveSince(k: AccessKeyInfo, state: RotationState): Date {
  if (state.oldKeyId === k.accessKeyId && state.deactivatedAt !== null) return new Date(state.deactivatedAt);
  return k.createDate;
}

function planCreating(input: PlanInput): Action {
  const { state, keys } = input;
  // `start` required at most one key (the old one), so any other key was created after it: by this
  // rotation before an interruption, never recorded. No sink has it and its secret is gone.
  // (Timestamps can't tell ours from a human's: createDate is AWS's clock, startedAt ours.)
  const orphan = keys.find((k) => k.accessKeyId !== state.oldKeyId);
  if (orphan) return { kind: 'discard', keyId: orphan.accessKeyId, reason: 'created before an interruption; its secret is lost' };
  return { kind: 'create' };
}

function planDelivery(input: PlanInput): Action {
  const { state, keys } = input;
  const newKey = keys.find((k) => k.accessKeyId === state.newKeyId);
  if (!newKey) return { kind: 'restart', reason: `new key ${state.newKeyId} no longer exists`, ...lateWritesOf(input) };
  if (newKey.status !== 'Active') {
    return { kind: 'error', code: 'ERR_ROTATION_KEY_STATE', message: `new key ${newKey.accessKeyId} was made Inactive during the rotation` };
  }
  const remaining = orderedSinks(input.sinkIds, state.prioritySinks).filter((s) => !state.sinksDone.includes(s));
  const late = (state.lateWrites?.sinks ?? []).filter((s) => input.sinkIds.includes(s));
  if (remaining.length === 0 && late.length === 0) return { kind: 'verify', keyId: newKey.accessKeyId, signed: input.hasSecret };
  if (!input.hasSecret) {
    const reason = remaining.length > 0 ? 'its secret was lost before every sink confirmed it' : 'its secret was lost before the push that overwrites late writes';
    return { kind: 'discard', keyId: newKey.accessKeyId, reason, ...lateWritesOf(input) };
  }
  if (state.propagatedAt === null) return { kind: 'propagate', keyId: newKey.accessKeyId };
  if (remaining.length > 0) return { kind: 'push', sinkId: remaining[0]!, keyId: newKey.accessKeyId };
  return { kind: 'repush', sinkId: late[0]!, keyId: newKey.accessKeyId, notBefore: new Date(state.lateWrites!.until) };
}

/**
 * The sinks a push of the key being dropped may still write to, and until when (lateWriteUntil),
 * merged with late writes already pending. Nothing when every window has passed.
 */
export function lateWritesOf(input: Pick<PlanInput, 'state' | 'now' | 'fenceMs'>): { lateWrites?: LateWrites } {
  const { state, now, fenceMs } = input;
  const sinks = new Set<string>();
  let until = 0;
  const consider = (sink: string, endMs: number) => {
    if (endMs <= now.getTime()) return;
    sinks.add(sink);
    until = Math.max(until, endMs);
  };
  for (const sink of state.sinksAttempted) {
    const end = state.lateWriteUntil?.[sink];
    // A push recorded without one (an older version) may have run until now.
    consider(sink, end !== undefined ? Date.parse(end) : now.getTime() + fenceMs);
  }
  if (state.lateWrites) for (const sink of state.lateWrites.sinks) consider(sink, Date.parse(state.lateWrites.until));
  return sinks.size === 0 ? {} : { lateWrites: { sinks: [...sinks].sort(), until: new Date(until).toISOString() } };
}

function checkNewKey(input: PlanInput): Action | undefined {
  const { state, keys } = input;
  const newKey = keys.find((k) => k.accessKeyId === state.newKeyId);
  if (!newKey) return { kind: 'restart', reason: `new key ${state.newKeyId} no longer exists` };
  if (newKey.status !== 'Active') {
    return { kind: 'error', code: 'ERR_ROTATION_KEY_STATE', message: `new key ${newKey.accessKeyId} is Inactive while every sink holds it` };
  }
  return undefined;
}

function planDeactivate(input: PlanInput): Action {
  const problem = checkNewKey(input);
  if (problem) return problem;
  const old = input.keys.find((k) => k.accessKeyId === input.state.oldKeyId);
  if (!old) return { kind: 'complete' };
  return { kind: 'deactivate', keyId: old.accessKeyId };
}

function planGrace(input: PlanInput): Action {
  const problem = checkNewKey(input);
  if (problem) return problem;
  const { state, now } = input;
  const old = input.keys.find((k) => k.accessKeyId === state.oldKeyId);
  if (!old) return { kind: 'complete' };
  if (old.status === 'Active') {
    return { kind: 'error', code: 'ERR_ROTATION_KEY_STATE', message: `old key ${old.accessKeyId} was re-activated during its grace period` };
  }
  const until = new Date(Date.parse(state.deactivatedAt ?? now.toISOString()) + input.graceMs);
  if (until <= now) return { kind: 'delete', keyId: old.accessKeyId };
  return { kind: 'wait', until, reason: 'old key Inactive; deleted after the grace period' };
}

/** The state after `action` succeeded (for `create`, with the new key's id). */
export function applyAction(state: RotationState, action: StepAction | Extract<Action, { kind: 'error' }>, now: Date, result: { newKeyId?: string } = {}): RotationState {
  const at = now.toISOString();
  const ok = { ...state, updatedAt: at, failures: 0, nextAttemptAt: null, errorCode: null, errorMessage: null };
  const backToCreating = (s: RotationState, lateWrites: LateWrites | undefined): RotationState => ({
    ...s,
    phase: 'creating',
    newKeyId: null,
    prioritySinks: [...new Set([...s.prioritySinks, ...s.sinksAttempted])],
    sinksAttempted: [],
    sinksDone: [],
    lateWriteUntil: {},
    lateWrites: lateWrites ?? null,
    propagatedAt: null,
    verifiedAt: null,
  });
  switch (action.kind) {
    case 'error':
      return { ...state, phase: 'error', errorCode: action.code, errorMessage: action.message, updatedAt: at };
    case 'delete_inactive':
      return { ...ok, phase: 'idle' };
    case 'start':
      return {
        ...ok,
        phase: 'creating',
        oldKeyId: action.oldKeyId,
        newKeyId: null,
        sinksAttempted: [],
        sinksDone: [],
        startedAt: at,
        propagatedAt: null,
        verifiedAt: null,
        deactivatedAt: null,
      };
    case 'discard':
      if (state.newKeyId !== action.keyId) return ok;
      // A key discarded because nobody received it keeps the failure that caused it (and its backoff).
      return backToCreating(action.undelivered ? { ...state, updatedAt: at } : ok, action.lateWrites);
    case 'restart':
      return backToCreating(ok, action.lateWrites);
    case 'create':
      return { ...ok, phase: 'pushing', newKeyId: result.newKeyId ?? null, lateWriteUntil: {} };
    case 'propagate':
      return { ...ok, propagatedAt: at };
    case 'push': {
      const sinksDone = state.sinksDone.includes(action.sinkId) ? state.sinksDone : [...state.sinksDone, action.sinkId];
      return { ...ok, sinksDone };
    }
    case 'repush': {
      const sinks = (state.lateWrites?.sinks ?? []).filter((s) => s !== action.sinkId);
      return { ...ok, lateWrites: sinks.length > 0 && state.lateWrites ? { ...state.lateWrites, sinks } : null };
    }
    case 'verify':
      return { ...ok, phase: 'verified', verifiedAt: at };
    case 'deactivate':
      return { ...ok, phase: 'grace', deactivatedAt: at };
    case 'delete':
    case 'complete':
      return {
        ...ok,
        phase: 'idle',
        currentKeyId: state.newKeyId,
        oldKeyId: null,
        newKeyId: null,
        sinksAttempted: [],
        sinksDone: [],
        prioritySinks: [],
        lateWriteUntil: {},
        lateWrites: null,
        lastCompletedAt: at,
      };
  }
}

/**
 * Marks a sink as being pushed to, before the push (so a crash knows it may hold the new key), with
 * until when a write of that push may land (so a later runner knows how long to guard against it).
 * Called again with the moment the push ended when nothing of it is left in flight.
 */
export function markAttempted(state: RotationState, sinkId: string, now: Date, lateWriteUntil: Date): RotationState {
  const sinksAttempted = state.sinksAttempted.includes(sinkId) ? state.sinksAttempted : [...state.sinksAttempted, sinkId];
  return { ...state, sinksAttempted, lateWriteUntil: { ...state.lateWriteUntil, [sinkId]: lateWriteUntil.toISOString() }, updatedAt: now.toISOString() };
}

/** What IAM shows of a change recorded as pending by a runner that did not finish its step. */
export function reconcilePending(pending: PendingIamChange, state: RotationState, keys: AccessKeyInfo[]): { applied: boolean; keyId: string | null } {
  switch (pending.step) {
    case 'create': {
      // `start` left at most the old key: any other key is the one this call created.
      const created = keys.find((k) => k.accessKeyId !== state.oldKeyId && k.accessKeyId !== state.currentKeyId && k.accessKeyId !== state.newKeyId);
      return { applied: created !== undefined, keyId: created?.accessKeyId ?? null };
    }
    case 'deactivate': {
      const k = keys.find((x) => x.accessKeyId === pending.keyId);
      return { applied: k === undefined || k.status === 'Inactive', keyId: pending.keyId };
    }
    case 'discard':
    case 'delete':
    case 'delete_inactive':
      return { applied: !keys.some((k) => k.accessKeyId === pending.keyId), keyId: pending.keyId };
  }
}

/** The state after a failed attempt: same phase, with backoff. */
export function recordFailure(state: RotationState, code: string, message: string, now: Date, backoffMs: number): RotationState {
  const failures = state.failures + 1;
  const delay = Math.min(backoffMs * 2 ** (failures - 1), 24 * 3600_000);
  return {
    ...state,
    failures,
    errorCode: code,
    errorMessage: message,
    nextAttemptAt: new Date(now.getTime() + delay).toISOString(),
    updatedAt: now.toISOString(),
  };
}

/** Human-readable remaining steps for --dry-run, starting with `action`. */
export function describeRemaining(action: Action, state: RotationState, sinkIds: string[], graceSeconds: number): string[] {
  const sinks = orderedSinks(sinkIds, state.prioritySinks);
  const old = action.kind === 'start' ? action.oldKeyId : state.oldKeyId;
  const tail = (fromPush: boolean) => [
    ...(fromPush ? [`push the new key to ${sinks.filter((s) => !state.sinksDone.includes(s)).join(', ')}`] : []),
    'verify: STS GetCallerIdentity signed with the new key',
    ...(old ? [`deactivate old key ${old}`, `delete ${old} after the grace period (${graceSeconds}s)`] : []),
  ];
  switch (action.kind) {
    case 'idle':
      return [`nothing to do; next rotation ${action.nextRotationAt?.toISOString() ?? 'when a key exists'}`];
    case 'wait':
      return [`wait until ${action.until.toISOString()}: ${action.reason}`];
    case 'error':
      return [`error ${action.code}: ${action.message}`];
    case 'delete_inactive':
      return [`delete Inactive key ${action.keyId} (past the grace period)`, 'then re-plan'];
    case 'start':
      return [`start (${action.reason}): create a new access key`, 'verify it works before any push', ...tail(true)];
    case 'discard':
      return [`delete key ${action.keyId}: ${action.reason}`, 'create a new access key', ...tail(true)];
    case 'restart':
      return [`restart: ${action.reason}`, 'create a new access key', ...tail(true)];
    case 'create':
      return ['create a new access key', ...tail(true)];
    case 'propagate':
      return ['verify the new key works before any push', ...tail(true)];
    case 'push':
      return tail(true);
    case 'repush':
      return [`after ${action.notBefore.toISOString()}, push the new key again to ${state.lateWrites?.sinks.join(', ')} (a late write of a discarded key may land until then)`, ...tail(false)];
    case 'verify':
      return tail(false);
    case 'deactivate':
      return [`deactivate old key ${action.keyId}`, `delete it after the grace period (${graceSeconds}s)`];
    case 'delete':
      return [`delete old key ${action.keyId}`];
    case 'complete':
      return ['record completion'];
  }
}
