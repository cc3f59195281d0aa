// Executes one user's rotation: reload state and keys, ask the planner for the next action,
// perform its side effect, persist the new state (fenced by the lease), audit — until the planner
// says idle / wait / error. Every step is idempotent and re-planned from IAM's truth after a crash.
//
// Two disciplines make a crash, a pause or a takeover visible and harmless:
// - IAM changes: before the call, the intent is recorded in the state (`pendingIam`) and audited
//   (`outcome: "intent"`); after it, the outcome is audited, then the state written. A run that
//   finds a pending change (its runner died, or the call got no answer) audits what IAM shows,
//   with `observed: "after_crash"` / `"after_no_answer"`, before anything else.
// - Pushes: the lease is renewed just before, and the push runs under a deadline before the lease
//   expires (recorded in `lateWriteUntil` first); after it, the lease is checked again before the
//   state moves forward. Late writes the fence could not stop are overwritten (plan.ts, lateWrites).
import type { Network } from '../net/network.js';
import type { IamKeys, AccessKeyInfo } from '../aws/iam.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import { createSink, type Sink } from './sinks/index.js';
import type { PushFence } from './sinks/types.js';
import { StoreError, emptyRotationState, type RotationState, type Store } from '../store/index.js';
import { auditStep } from './audit.js';
import type { RotationConfig, SinkConfig } from './config-schema.js';
import { RotationError, errorCodeOf, safeMessage } from './errors.js';
import type { LeaseKeeper } from './lease.js';
import type { RotationMetrics } from './metrics.js';
import { applyAction, IAM_STEPS, isTerminal, lateWritesOf, markAttempted, planFor, reconcilePending, recordFailure, type Action, type StepAction } from './plan.js';
import type { NewAccessKey } from './secret.js';
import type { ManagedUser } from './users.js';
import { verifySignedWithKey } from './verify.js';

/** Secrets of keys being rolled out, by user. Process memory only; never persisted. */
export type SecretCache = Map<string, NewAccessKey>;

export interface BoundaryInfo {
  userName: string;
  step: StepAction['kind'];
  /** before: nothing done yet; applied: side effect done, state not yet persisted; persisted: state written. */
  point: 'before' | 'applied' | 'persisted';
  sinkId?: string;
}

export interface RotationHooks {
  /** Called at every step boundary. An error thrown here aborts the run on the spot, writing nothing
   *  more — the test's way to simulate the process dying there. */
  boundary?(info: BoundaryInfo): void | Promise<void>;
}

/** Thrown out of the run when a boundary hook aborted it. */
export class BoundaryAbort extends Error {
  override readonly name = 'BoundaryAbort';
  constructor(readonly info: BoundaryInfo) {
    super(`run aborted by hook at ${info.step}/${info.point}`);
  }
}

export interface RotationRuntime {
  config: RotationConfig;
  iam: IamKeys;
  store: Store;
  audit: AuditSink;
  logger: Logger;
  metrics: RotationMetrics;
  env: NodeJS.ProcessEnv;
  network: Network | undefined;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  secrets: SecretCache;
  hooks: RotationHooks | undefined;
}

export type UserOutcome = 'idle' | 'progressed' | 'waiting' | 'error' | 'failed' | 'aborted';

export interface UserResult {
  userName: string;
  outcome: UserOutcome;
  phase: RotationState['phase'];
  steps: string[];
  code?: string;
  message?: string;
  until?: string;
  nextRotationAt?: string | null;
}

const MAX_STEPS = 64;

/** HTTP requests one delivery makes at most, per sink type (each bounded by sink_timeout_ms). */
const REQUESTS_PER_DELIVERY = { github: 3, gitlab: 4, circleci: 2, travis: 3 } as const;

/** The longest one push (every attempt and the waits between them) can take by its own limits. */
export function pushBoundMs(sink: SinkConfig, config: RotationConfig): number {
  const attempt = sink.type === 'command' ? sink.timeout_seconds * 1000 + 1000 : config.sink_timeout_ms * REQUESTS_PER_DELIVERY[sink.type];
  const waits = config.sink_backoff_ms * (2 ** (config.sink_attempts - 1) - 1);
  return config.sink_attempts * attempt + waits;
}

export function observeKeys(metrics: RotationMetrics, userName: string, keys: AccessKeyInfo[], now: Date): void {
  const active = keys.filter((k) => k.status === 'Active');
  metrics.keys.set({ user: userName, status: 'Active' }, active.length);
  metrics.keys.set({ user: userName, status: 'Inactive' }, keys.length - active.length);
  const oldest = active[0];
  metrics.keyAge.set({ user: userName }, oldest ? Math.max(0, (now.getTime() - oldest.createDate.getTime()) / 1000) : 0);
}

/** rt.sleep, cut short by `signal`. */
async function sleepUnless(rt: RotationRuntime, ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  let onAbort: (() => void) | undefined;
  await Promise.race([rt.sleep(ms), new Promise<void>((resolve) => signal.addEventListener('abort', (onAbort = () => resolve()), { once: true }))]);
  if (onAbort) signal.removeEventListener('abort', onAbort);
}

/** `inFlight` turns true when an attempt ended with a write possibly still on its way (a timeout, an abort). */
async function deliverWithRetry(
  rt: RotationRuntime,
  sink: Sink,
  key: NewAccessKey,
  fence: Required<PushFence>,
  track: { inFlight: boolean },
  stopping: AbortSignal,
): Promise<number> {
  let wait = rt.config.sink_backoff_ms;
  for (let attempt = 1; ; attempt++) {
    try {
      await sink.deliver(key, fence);
      return attempt;
    } catch (err) {
      if (!(err instanceof RotationError) || err.opts.inFlight) track.inFlight = true;
      const retryable = err instanceof RotationError && err.retryable && err.code !== 'ERR_SINK_DEADLINE';
      if (!retryable || attempt >= rt.config.sink_attempts || fence.signal.aborted || stopping.aborted || Date.now() + wait >= fence.deadline) throw err;
      rt.logger.warn({ user: key.userName, sink: sink.id, code: errorCodeOf(err), attempt }, 'sink delivery failed; retrying');
      await sleepUnless(rt, wait, AbortSignal.any([fence.signal, stopping]));
      wait *= 2;
    }
  }
}

/**
 * What may cut a push short. Losing the lease always does (the fence). A stop (a signal, serve
 * shutting down) cuts a command sink — its one process is killed before it writes — but not an
 * API sink in the middle of its calls: the access key id and the secret are separate writes there,
 * and stopping between them would leave a pair that matches no key. Its push ends on its own,
 * within the push deadline.
 */
const pushSignal = (sink: Sink, keeper: LeaseKeeper, stop: AbortSignal): AbortSignal => (sink.type === 'command' ? stop : keeper.lost);

const leaseLost = (err: unknown, keeper: LeaseKeeper): boolean =>
  keeper.lost.aborted ||
  (err instanceof StoreError && err.code === 'ERR_STORE_LEASE_LOST') ||
  (err instanceof RotationError && err.code === 'ERR_ROTATION_LEASE_LOST');

/** An IAM call that was answered (a refusal): it certainly did not happen. Anything else may have. */
const answered = (err: unknown): boolean => err instanceof RotationError && err.opts.status !== undefined && err.opts.status < 500;

export async function rotateUser(rt: RotationRuntime, user: ManagedUser, keeper: LeaseKeeper, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<UserResult> {
  const sinks = new Map<string, { sink: Sink; config: SinkConfig }>();
  for (const cfg of user.sinks) {
    const sink = createSink(cfg, { env: rt.env, timeoutMs: rt.config.sink_timeout_ms, network: rt.network });
    sinks.set(sink.id, { sink, config: cfg });
  }
  let force = opts.force ?? false;
  const steps: string[] = [];
  const log = rt.logger.child({ component: 'rotation', user: user.userName });
  const stop = opts.signal ? AbortSignal.any([opts.signal, keeper.lost]) : keeper.lost;

  for (let i = 0; i < MAX_STEPS; i++) {
    const now = rt.now();
    let state = (await rt.store.getRotationState(user.userName)) ?? emptyRotationState(user.userName, now);
    if (stop.aborted) return { userName: user.userName, outcome: 'aborted', phase: state.phase, steps };
    const keys = await rt.iam.listAccessKeys(user.userName);
    observeKeys(rt.metrics, user.userName, keys, now);
    if (state.pendingIam) state = await recoverPending(rt, user, state, keys, keeper, log);
    const cached = rt.secrets.get(user.userName);
    const hasSecret = cached !== undefined && cached.accessKeyId === state.newKeyId;
    if (cached !== undefined && !hasSecret) rt.secrets.delete(user.userName);

    const action: Action = planFor(user, { state, keys, now, hasSecret, force, fenceMs: keeper.ttlMs });

    if (isTerminal(action)) {
      if (action.kind === 'error') {
        rt.metrics.userError.set({ user: user.userName }, 1);
        if (state.phase !== 'error' || state.errorCode !== action.code) {
          await rt.store.putRotationState(applyAction(state, action, now), keeper.current());
          await auditStep(rt.audit, 'error', { user: user.userName, outcome: 'failed', code: action.code, message: action.message, fence: keeper.current().token }, now);
          rt.metrics.steps.inc({ step: 'error', outcome: 'failed' });
          log.error({ code: action.code }, action.message);
        }
        return { userName: user.userName, outcome: 'error', phase: 'error', steps, code: action.code, message: action.message };
      }
      rt.metrics.userError.set({ user: user.userName }, 0);
      if (action.kind === 'idle') {
        return { userName: user.userName, outcome: steps.length > 0 ? 'progressed' : 'idle', phase: state.phase, steps, nextRotationAt: action.nextRotationAt?.toISOString() ?? null };
      }
      return { userName: user.userName, outcome: steps.length > 0 ? 'progressed' : 'waiting', phase: state.phase, steps, until: action.until.toISOString(), message: action.reason };
    }
    rt.metrics.userError.set({ user: user.userName }, 0);

    try {
      await performStep(rt, user, state, action, sinks, keeper, log, stop);
    } catch (err) {
      if (err instanceof BoundaryAbort) throw err;
      const lost = leaseLost(err, keeper);
      const aborted = !lost && opts.signal?.aborted === true;
      const code = lost ? 'ERR_ROTATION_LEASE_LOST' : aborted ? 'ERR_ROTATION_ABORTED' : errorCodeOf(err);
      const message = lost ? 'the rotation lease was lost; another runner continues' : aborted ? `stopped: ${safeMessage(err)}` : safeMessage(err);
      rt.metrics.steps.inc({ step: action.kind, outcome: 'failed' });
      log.warn({ step: action.kind, code }, `rotation step failed: ${message}`);
      // Without the lease nothing more is written: the new holder owns the state.
      if (!lost) {
        const failedAt = rt.now();
        await auditStep(rt.audit, action.kind, { user: user.userName, outcome: 'failed', code, message, ...keyFields(state, action), fence: keeper.current().token }, failedAt);
        try {
          const latest = (await rt.store.getRotationState(user.userName)) ?? state;
          let next = latest;
          if (latest.pendingIam) {
            // A refused call did not happen; an unanswered one may have: the next run looks.
            next = { ...latest, pendingIam: answered(err) ? null : { ...latest.pendingIam, unanswered: true } };
          }
          // Stopping (a signal) is not the step's fault: no backoff.
          if (!aborted) next = recordFailure(next, code, message, failedAt, rt.config.retry_backoff_seconds * 1000);
          if (next !== latest) await rt.store.putRotationState(next, keeper.current());
        } catch (e) {
          if (!leaseLost(e, keeper)) throw e;
        }
      }
      return { userName: user.userName, outcome: aborted ? 'aborted' : 'failed', phase: state.phase, steps, code, message };
    }
    steps.push(action.kind === 'push' || action.kind === 'repush' ? `${action.kind}:${action.sinkId}` : action.kind);
    // `force` starts one rotation; it must not start another once this one is done.
    if (action.kind === 'start' || action.kind === 'delete' || action.kind === 'complete') force = false;
  }
  return { userName: user.userName, outcome: 'failed', phase: 'error', steps, code: 'ERR_INTERNAL', message: 'too many steps in one run' };
}

/**
 * A runner recorded an IAM change as pending and did not finish the step (it died, lost its lease,
 * or the call got no answer). Audit what IAM shows happened, so that every change the broker made
 * is in the trail even when its own record of it never got written, then clear it.
 */
async function recoverPending(rt: RotationRuntime, user: ManagedUser, state: RotationState, keys: AccessKeyInfo[], keeper: LeaseKeeper, log: Logger): Promise<RotationState> {
  const pending = state.pendingIam!;
  const { applied, keyId } = reconcilePending(pending, state, keys);
  const now = rt.now();
  const observed = pending.unanswered ? 'after_no_answer' : 'after_crash';
  await auditStep(
    rt.audit,
    pending.step,
    {
      user: user.userName,
      outcome: applied ? 'ok' : 'not_applied',
      observed,
      key_id: keyId,
      old_key_id: state.oldKeyId,
      new_key_id: state.newKeyId,
      intent_at: pending.at,
      fence: keeper.current().token,
    },
    now,
  );
  log.warn({ step: pending.step, key_id: keyId, observed }, `IAM ${pending.step} recorded as pending: ${applied ? 'IAM shows it happened' : 'IAM shows it did not happen'}`);
  const next = { ...state, pendingIam: null, updatedAt: now.toISOString() };
  await rt.store.putRotationState(next, keeper.current());
  return next;
}

/**
 * Before a process whose memory holds the only copy of a new key's secret ends (a one-shot run, or
 * `serve` stopping): a key that no sink confirmed is deleted now rather than left Active — nobody
 * holds it — until the next run. A key that some sinks hold stays: they work with it, and the next
 * run replaces it (those sinks first). Returns whether a key was discarded.
 */
export async function discardUndelivered(rt: RotationRuntime, user: ManagedUser, keeper: LeaseKeeper): Promise<boolean> {
  if (keeper.lost.aborted) return false;
  const state = await rt.store.getRotationState(user.userName);
  if (!state || state.phase !== 'pushing' || state.newKeyId === null || state.sinksDone.length > 0) return false;
  const keys = await rt.iam.listAccessKeys(user.userName);
  if (!keys.some((k) => k.accessKeyId === state.newKeyId)) return false;
  const log = rt.logger.child({ component: 'rotation', user: user.userName });
  const action: StepAction = {
    kind: 'discard',
    keyId: state.newKeyId,
    reason: 'no sink received it, and its secret ends with this process',
    undelivered: true,
    ...lateWritesOf({ state, now: rt.now(), fenceMs: keeper.ttlMs }),
  };
  await performStep(rt, user, state, action, new Map(), keeper, log, keeper.lost);
  return true;
}

function keyFields(state: RotationState, action: StepAction): Record<string, unknown> {
  const fields: Record<string, unknown> = { old_key_id: action.kind === 'start' ? action.oldKeyId : state.oldKeyId, new_key_id: state.newKeyId };
  if ('keyId' in action) fields.key_id = action.keyId;
  if (action.kind === 'push' || action.kind === 'repush') fields.sink = action.sinkId;
  return fields;
}

async function performStep(
  rt: RotationRuntime,
  user: ManagedUser,
  state: RotationState,
  action: StepAction,
  sinks: Map<string, { sink: Sink; config: SinkConfig }>,
  keeper: LeaseKeeper,
  log: Logger,
  stop: AbortSignal,
): Promise<void> {
  const boundary = async (point: BoundaryInfo['point']) => {
    if (!rt.hooks?.boundary) return;
    const info: BoundaryInfo = { userName: user.userName, step: action.kind, point, ...(action.kind === 'push' || action.kind === 'repush' ? { sinkId: action.sinkId } : {}) };
    try {
      await rt.hooks.boundary(info);
    } catch {
      throw new BoundaryAbort(info);
    }
  };
  const secret = () => {
    const key = rt.secrets.get(user.userName);
    if (!key || key.accessKeyId !== state.newKeyId) throw new RotationError('ERR_ROTATION_KEY_STATE', 'new key secret not in memory');
    return key;
  };
  const iamChange = IAM_STEPS.has(action.kind);
  const fields = keyFields(state, action);
  let current = state;
  let fence: Required<PushFence> | undefined;
  let pushDeadline: Date | undefined;

  if (action.kind === 'push' || action.kind === 'repush') {
    const target = sinks.get(action.sinkId);
    if (!target) throw new RotationError('ERR_ROTATION_CONFIG', `sink ${action.sinkId} is not configured`);
    if (action.kind === 'repush') {
      // A late write of a discarded key may still land until then; this push must come after it.
      const ms = action.notBefore.getTime() - rt.now().getTime();
      if (ms > 0) log.info({ sink: action.sinkId, until: action.notBefore.toISOString() }, 'waiting out late writes of a discarded key before pushing again');
      await sleepUnless(rt, ms, stop);
      if (stop.aborted) throw new RotationError('ERR_ROTATION_ABORTED', 'stopped while waiting to push again');
    }
    // Never start a push without a lease that outlasts it: renew now, and end the push before it expires.
    const leaseHolds = await keeper.renew();
    const deadline = Math.min(leaseHolds, Date.now() + pushBoundMs(target.config, rt.config));
    // In the state's clock (rt.now: the tests' clock may differ from this host's).
    pushDeadline = new Date(rt.now().getTime() + (deadline - Date.now()));
    // Recorded before the push: this sink may now hold the new key, and a write of it may land until
    // the deadline plus one lease period (what escapes the fence: see plan.ts, late writes).
    current = markAttempted(state, action.sinkId, rt.now(), new Date(pushDeadline.getTime() + keeper.ttlMs));
    await rt.store.putRotationState(current, keeper.current());
    fence = { signal: stop, deadline };
  }
  if (iamChange) {
    current = { ...current, pendingIam: { step: action.kind as 'create', keyId: 'keyId' in action ? action.keyId : null, at: rt.now().toISOString() } };
    await rt.store.putRotationState(current, keeper.current());
    await auditStep(rt.audit, action.kind, { user: user.userName, outcome: 'intent', ...fields, fence: keeper.current().token }, rt.now());
  }
  await boundary('before');

  const details: Record<string, unknown> = {};
  let newKeyId: string | undefined;
  switch (action.kind) {
    case 'delete_inactive':
      details.result = await rt.iam.deleteAccessKey(user.userName, action.keyId);
      break;
    case 'start':
      // Preflight the sinks (tokens, reachability) before a key exists that could be stranded.
      for (const { sink } of sinks.values()) await sink.preflight(stop);
      details.reason = action.reason;
      break;
    case 'discard':
      details.result = await rt.iam.deleteAccessKey(user.userName, action.keyId);
      details.reason = action.reason;
      if (action.lateWrites) details.late_writes = action.lateWrites;
      rt.secrets.delete(user.userName);
      break;
    case 'restart':
      details.reason = action.reason;
      if (action.lateWrites) details.late_writes = action.lateWrites;
      break;
    case 'create': {
      const key = await rt.iam.createAccessKey(user.userName);
      rt.secrets.set(user.userName, key);
      newKeyId = key.accessKeyId;
      details.key_id = key.accessKeyId;
      break;
    }
    case 'propagate': {
      const r = await verifySignedWithKey(rt.iam, secret(), user.arn, rt.config.verify, rt.sleep, stop);
      Object.assign(details, { method: 'sts-signed', attempts: r.attempts, successes: r.successes });
      break;
    }
    case 'push':
    case 'repush': {
      const { sink } = sinks.get(action.sinkId)!;
      const track = { inFlight: false };
      // The push ended with nothing of it left in flight: no late write of it can come.
      const settled = () => markAttempted(current, action.sinkId, rt.now(), rt.now());
      try {
        details.attempts = await deliverWithRetry(rt, sink, secret(), { ...fence!, signal: pushSignal(sink, keeper, stop) }, track, stop);
      } catch (err) {
        if (!track.inFlight && !keeper.lost.aborted) await rt.store.putRotationState(settled(), keeper.current()).catch(() => undefined);
        throw err;
      }
      if (!track.inFlight) current = settled();
      details.sink_type = sink.type;
      details.deadline = pushDeadline!.toISOString();
      // The push is over: check the lease still holds before the state moves forward on it.
      await keeper.renew();
      break;
    }
    case 'verify':
      if (action.signed) {
        const r = await verifySignedWithKey(rt.iam, secret(), user.arn, rt.config.verify, rt.sleep, stop);
        Object.assign(details, { method: 'sts-signed', attempts: r.attempts, successes: r.successes });
      } else {
        // The secret died with a previous process after every sink confirmed it. IAM lists the key
        // as Active, and it passed the signed check before the first push (propagated_at).
        Object.assign(details, { method: 'iam-status', propagated_at: state.propagatedAt });
      }
      break;
    case 'deactivate': {
      // For the audit trail: was the old key still in use (a consumer that did not move over)?
      const used = await rt.iam.getAccessKeyLastUsed(action.keyId).catch(() => undefined);
      if (used?.lastUsedDate) Object.assign(details, { old_key_last_used: used.lastUsedDate.toISOString(), old_key_last_service: used.serviceName ?? null });
      await rt.iam.setAccessKeyStatus(user.userName, action.keyId, 'Inactive');
      break;
    }
    case 'delete':
      details.result = await rt.iam.deleteAccessKey(user.userName, action.keyId);
      break;
    case 'complete':
      break;
  }
  await boundary('applied');
  const now = rt.now();
  const record = { user: user.userName, outcome: 'ok' as const, ...fields, ...(newKeyId ? { new_key_id: newKeyId } : {}), ...details, fence: keeper.current().token };
  // An IAM change is audited before the state that clears its intent: a crash in between is then
  // audited twice (once more as observed), never not at all.
  if (iamChange) await auditStep(rt.audit, action.kind, record, now);
  const next = applyAction(current, action, now, newKeyId !== undefined ? { newKeyId } : {});
  await rt.store.putRotationState(iamChange ? { ...next, pendingIam: null } : next, keeper.current());
  if (action.kind === 'verify' || action.kind === 'delete' || action.kind === 'complete') rt.secrets.delete(user.userName);
  await boundary('persisted');
  rt.metrics.steps.inc({ step: action.kind, outcome: 'ok' });
  if (!iamChange) await auditStep(rt.audit, action.kind, record, now);
  log.info({ step: action.kind, ...fields, ...details }, `rotation step ${action.kind}`);
}
