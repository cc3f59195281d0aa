// Executes one user's rotation: reload state and keys, ask the planner for the next action,
// perform its side effect, persist the new state (fenced by the lease), audit — until the planner
// says idle / wait / error. Every step is idempotent and re-planned from IAM's truth after a crash.
import type { IamKeys, AccessKeyInfo } from '../aws/iam.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import { createSink, type Sink } from './sinks/index.js';
import { StoreError, emptyRotationState, type Lease, type RotationState, type Store } from '../store/index.js';
import { auditStep } from './audit.js';
import type { RotationConfig } from './config-schema.js';
import { RotationError, errorCodeOf, safeMessage } from './errors.js';
import type { RotationMetrics } from './metrics.js';
import { applyAction, isTerminal, markAttempted, planNext, recordFailure, type Action, type StepAction } from './plan.js';
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

export function observeKeys(metrics: RotationMetrics, userName: string, keys: AccessKeyInfo[], now: Date): void {
  const active = keys.filter((k) => k.status === 'Active');
  metrics.keys.set({ user: userName, status: 'Active' }, active.length);
  metrics.keys.set({ user: userName, status: 'Inactive' }, keys.length - active.length);
  const oldest = active[0];
  metrics.keyAge.set({ user: userName }, oldest ? Math.max(0, (now.getTime() - oldest.createDate.getTime()) / 1000) : 0);
}

async function deliverWithRetry(rt: RotationRuntime, sink: Sink, key: NewAccessKey, signal?: AbortSignal): Promise<number> {
  let wait = rt.config.sink_backoff_ms;
  for (let attempt = 1; ; attempt++) {
    try {
      await sink.deliver(key, signal);
      return attempt;
    } catch (err) {
      const retryable = err instanceof RotationError && err.retryable;
      if (!retryable || attempt >= rt.config.sink_attempts || signal?.aborted) throw err;
      rt.logger.warn({ user: key.userName, sink: sink.id, code: errorCodeOf(err), attempt }, 'sink delivery failed; retrying');
      await rt.sleep(wait);
      wait *= 2;
    }
  }
}

export async function rotateUser(
  rt: RotationRuntime,
  user: ManagedUser,
  lease: () => Lease,
  opts: { force?: boolean; signal?: AbortSignal } = {},
): Promise<UserResult> {
  const sinks = new Map<string, Sink>();
  for (const cfg of user.sinks) {
    const sink = createSink(cfg, { env: rt.env, timeoutMs: rt.config.sink_timeout_ms });
    sinks.set(sink.id, sink);
  }
  let force = opts.force ?? false;
  const steps: string[] = [];
  const log = rt.logger.child({ component: 'rotation', user: user.userName });

  for (let i = 0; i < MAX_STEPS; i++) {
    const now = rt.now();
    const state = (await rt.store.getRotationState(user.userName)) ?? emptyRotationState(user.userName, now);
    if (opts.signal?.aborted) return { userName: user.userName, outcome: 'aborted', phase: state.phase, steps };
    const keys = await rt.iam.listAccessKeys(user.userName);
    observeKeys(rt.metrics, user.userName, keys, now);
    const cached = rt.secrets.get(user.userName);
    const hasSecret = cached !== undefined && cached.accessKeyId === state.newKeyId;
    if (cached !== undefined && !hasSecret) rt.secrets.delete(user.userName);

    const action: Action = planNext({
      state,
      keys,
      now,
      maxKeyAgeMs: user.maxKeyAgeSeconds * 1000,
      graceMs: user.graceSeconds * 1000,
      sinkIds: user.sinkIds,
      hasSecret,
      force,
    });

    if (isTerminal(action)) {
      if (action.kind === 'error') {
        rt.metrics.userError.set({ user: user.userName }, 1);
        if (state.phase !== 'error' || state.errorCode !== action.code) {
          await rt.store.putRotationState(applyAction(state, action, now), lease());
          await auditStep(rt.audit, 'error', { user: user.userName, outcome: 'failed', code: action.code, message: action.message, fence: lease().token }, now);
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
      await performStep(rt, user, state, action, sinks, lease, log, opts.signal);
    } catch (err) {
      if (err instanceof BoundaryAbort) throw err;
      const lost = err instanceof StoreError && err.code === 'ERR_STORE_LEASE_LOST';
      const code = lost ? 'ERR_ROTATION_LEASE_LOST' : errorCodeOf(err);
      const message = safeMessage(err);
      rt.metrics.steps.inc({ step: action.kind, outcome: 'failed' });
      log.warn({ step: action.kind, code }, `rotation step failed: ${message}`);
      if (!lost) {
        const failedAt = rt.now();
        await auditStep(rt.audit, action.kind, { user: user.userName, outcome: 'failed', code, message, ...keyFields(state, action), fence: lease().token }, failedAt);
        try {
          const latest = (await rt.store.getRotationState(user.userName)) ?? state;
          await rt.store.putRotationState(recordFailure(latest, code, message, failedAt, rt.config.retry_backoff_seconds * 1000), lease());
        } catch (e) {
          if (!(e instanceof StoreError && e.code === 'ERR_STORE_LEASE_LOST')) throw e;
        }
      }
      return { userName: user.userName, outcome: 'failed', phase: state.phase, steps, code, message };
    }
    steps.push(action.kind === 'push' ? `push:${action.sinkId}` : action.kind);
    // `force` starts one rotation; it must not start another once this one is done.
    if (action.kind === 'start' || action.kind === 'delete' || action.kind === 'complete') force = false;
  }
  return { userName: user.userName, outcome: 'failed', phase: 'error', steps, code: 'ERR_INTERNAL', message: 'too many steps in one run' };
}

function keyFields(state: RotationState, action: StepAction): Record<string, unknown> {
  const fields: Record<string, unknown> = { old_key_id: state.oldKeyId, new_key_id: state.newKeyId };
  if ('keyId' in action) fields.key_id = action.keyId;
  if (action.kind === 'push') fields.sink = action.sinkId;
  return fields;
}

async function performStep(
  rt: RotationRuntime,
  user: ManagedUser,
  state: RotationState,
  action: StepAction,
  sinks: Map<string, Sink>,
  lease: () => Lease,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<void> {
  const boundary = async (point: BoundaryInfo['point']) => {
    if (!rt.hooks?.boundary) return;
    const info: BoundaryInfo = { userName: user.userName, step: action.kind, point, ...(action.kind === 'push' ? { sinkId: action.sinkId } : {}) };
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
  let current = state;
  if (action.kind === 'push') {
    // Recorded before the push: after a crash, this sink may hold the new key.
    current = markAttempted(state, action.sinkId, rt.now());
    await rt.store.putRotationState(current, lease());
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
      for (const sink of sinks.values()) await sink.preflight(signal);
      details.reason = action.reason;
      break;
    case 'discard':
      details.result = await rt.iam.deleteAccessKey(user.userName, action.keyId);
      details.reason = action.reason;
      rt.secrets.delete(user.userName);
      break;
    case 'restart':
      details.reason = action.reason;
      break;
    case 'create': {
      const key = await rt.iam.createAccessKey(user.userName);
      rt.secrets.set(user.userName, key);
      newKeyId = key.accessKeyId;
      details.key_id = key.accessKeyId;
      break;
    }
    case 'propagate': {
      const r = await verifySignedWithKey(rt.iam, secret(), user.arn, rt.config.verify, rt.sleep, signal);
      Object.assign(details, { method: 'sts-signed', attempts: r.attempts, successes: r.successes });
      break;
    }
    case 'push': {
      const sink = sinks.get(action.sinkId);
      if (!sink) throw new RotationError('ERR_ROTATION_CONFIG', `sink ${action.sinkId} is not configured`);
      details.attempts = await deliverWithRetry(rt, sink, secret(), signal);
      details.sink_type = sink.type;
      break;
    }
    case 'verify':
      if (action.signed) {
        const r = await verifySignedWithKey(rt.iam, secret(), user.arn, rt.config.verify, rt.sleep, signal);
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
  const next = applyAction(current, action, now, newKeyId !== undefined ? { newKeyId } : {});
  await rt.store.putRotationState(next, lease());
  if (action.kind === 'verify' || action.kind === 'delete' || action.kind === 'complete') rt.secrets.delete(user.userName);
  await boundary('persisted');
  rt.metrics.steps.inc({ step: action.kind, outcome: 'ok' });
  await auditStep(
    rt.audit,
    action.kind,
    { user: user.userName, outcome: 'ok', ...keyFields(state, action), ...(newKeyId ? { new_key_id: newKeyId } : {}), ...details, fence: lease().token },
    now,
  );
  log.info({ step: action.kind, ...keyFields(state, action), ...details }, `rotation step ${action.kind}`);
}
