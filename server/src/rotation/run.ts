// One rotation run over the managed users: take the leader lock (a lease with a fencing token in
// the store), rotate users with bounded concurrency, release. Also the read-only views: the dry-run
// plan and the key inventory.
import type { Network } from '../net/network.js';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { AccessKeyInfo, IamKeys, KeyLastUsed } from '../aws/iam.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import { assertPersistentStore, emptyRotationState, type RotationState, type Store } from '../store/index.js';
import type { RotationConfig } from './config-schema.js';
import { errorCodeOf, safeMessage } from './errors.js';
import { rotationMetrics } from './metrics.js';
import { describeRemaining, planFor, type Action } from './plan.js';
import { keepLease, type LeaseKeeper } from './lease.js';
import { discardUndelivered, rotateUser, type RotationHooks, type RotationRuntime, type SecretCache, type UserResult } from './rotate-user.js';
import { createSink } from './sinks/index.js';
import { discoverUsers, type DiscoveryProblem, type ManagedUser } from './users.js';

export const ROTATION_LOCK = 'rotation';

export interface RotationDeps {
  config: RotationConfig;
  store: Store;
  iam: IamKeys;
  audit: AuditSink;
  logger: Logger;
  registry: Registry;
  env?: NodeJS.ProcessEnv;
  /** Egress proxy and CA bundles for the HTTP sinks; default: the environment's proxy, the system's CAs. */
  network?: Network;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** Lease holder id; default host:pid:random. */
  holder?: string;
  /** Keep across runs (the loop does) so a later run can resume pushing without discarding the key. */
  secrets?: SecretCache;
  hooks?: RotationHooks;
}

export interface RunOptions {
  /** Only these users (must be managed); default every managed user. */
  users?: string[];
  /** Rotate now even when not due, ignoring failure backoff. */
  force?: boolean;
  /** Stop after the step in flight (its push is aborted, an IAM call finishes); the lease is released. */
  signal?: AbortSignal;
  /** Only delete the keys of `users` that no sink received (the loop, when it stops). */
  discardOnly?: boolean;
}

export interface RunReport {
  leader: boolean;
  users: UserResult[];
  problems: DiscoveryProblem[];
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const defaultHolder = (): string => `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

function runtime(deps: RotationDeps): RotationRuntime {
  return {
    config: deps.config,
    iam: deps.iam,
    store: deps.store,
    audit: deps.audit,
    logger: deps.logger,
    metrics: rotationMetrics(deps.registry),
    env: deps.env ?? process.env,
    network: deps.network,
    now: deps.now ?? (() => new Date()),
    sleep: deps.sleep ?? defaultSleep,
    secrets: deps.secrets ?? new Map(),
    hooks: deps.hooks,
  };
}

async function selectUsers(deps: RotationDeps, only: string[] | undefined): Promise<{ users: ManagedUser[]; problems: DiscoveryProblem[] }> {
  const found = await discoverUsers(deps.config, deps.iam);
  if (!only) return found;
  const users = found.users.filter((u) => only.includes(u.userName));
  const problems = found.problems.filter((p) => p.userName === undefined || only.includes(p.userName));
  for (const name of only) {
    if (!users.some((u) => u.userName === name) && !problems.some((p) => p.userName === name)) {
      problems.push({ userName: name, entryIndex: -1, code: 'ERR_ROTATION_USER_NOT_FOUND', message: `${name} is not a managed user (no rotation.users entry matches it)` });
    }
  }
  return { users, problems };
}

async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** One rotation run. Returns leader:false (and does nothing) when another runner holds the lock. */
export async function runRotation(deps: RotationDeps, opts: RunOptions = {}): Promise<RunReport> {
  assertPersistentStore(deps.store);
  const rt = runtime(deps);
  const started = performance.now();
  const holder = deps.holder ?? defaultHolder();
  const ttlMs = deps.config.lease_seconds * 1000;
  const acquired = await deps.store.acquireLease(ROTATION_LOCK, holder, ttlMs);
  if (!acquired) {
    rt.metrics.runs.inc({ result: 'not_leader' });
    rt.metrics.leader.set(0);
    return { leader: false, users: [], problems: [] };
  }
  const keeper = keepLease(deps.store, acquired, ttlMs, deps.logger);
  rt.metrics.leader.set(1);
  const signal = opts.signal ? AbortSignal.any([opts.signal, keeper.lost]) : keeper.lost;
  let crashed = false;
  try {
    const { users, problems } = await selectUsers(deps, opts.users);
    for (const p of problems) deps.logger.warn({ component: 'rotation', user: p.userName, code: p.code }, p.message);
    const results = opts.discardOnly
      ? []
      : await pool(users, deps.config.concurrency, async (user) => {
          try {
            return await rotateUser(rt, user, keeper, { force: opts.force ?? false, signal });
          } catch (err) {
            if ((err as Error).name === 'BoundaryAbort') throw err;
            deps.logger.error({ component: 'rotation', user: user.userName, code: errorCodeOf(err) }, `rotation failed: ${safeMessage(err)}`);
            const state = await deps.store.getRotationState(user.userName).catch(() => undefined);
            return { userName: user.userName, outcome: 'failed' as const, phase: state?.phase ?? 'idle', steps: [], code: errorCodeOf(err), message: safeMessage(err) };
          }
        });
    // The secrets of this run end with it unless the caller keeps them (the loop does, until it stops).
    if (!deps.secrets || opts.discardOnly) await discardUndeliveredKeys(rt, users, keeper, results);
    const failed = results.some((r) => r.outcome === 'failed' || r.outcome === 'error') || problems.length > 0;
    rt.metrics.runs.inc({ result: failed ? 'partial' : 'ok' });
    return { leader: true, users: results, problems };
  } catch (err) {
    // A hook abort simulates process death: the lease is not released, as it would not be.
    crashed = (err as Error).name === 'BoundaryAbort';
    if (!crashed) rt.metrics.runs.inc({ result: 'failed' });
    throw err;
  } finally {
    keeper.stop();
    if (!crashed) {
      await deps.store.releaseLease(keeper.current()).catch(() => undefined);
      rt.metrics.leader.set(0);
      rt.metrics.runDuration.observe((performance.now() - started) / 1000);
      rt.metrics.lastRun.set(rt.now().getTime() / 1000);
    }
  }
}

/** Deletes each key of these users that no sink received (see discardUndelivered); noted in the users' results. */
async function discardUndeliveredKeys(rt: RotationRuntime, users: ManagedUser[], keeper: LeaseKeeper, results: UserResult[]): Promise<void> {
  for (const user of users) {
    if (keeper.lost.aborted) return;
    try {
      if (!(await discardUndelivered(rt, user, keeper))) continue;
      rt.secrets.delete(user.userName);
      const r = results.find((x) => x.userName === user.userName);
      if (r) {
        r.steps.push('discard');
        r.phase = 'creating';
      } else results.push({ userName: user.userName, outcome: 'progressed', phase: 'creating', steps: ['discard'] });
    } catch (err) {
      rt.logger.error({ component: 'rotation', user: user.userName, code: errorCodeOf(err) }, `could not discard the undelivered key: ${safeMessage(err)}`);
    }
  }
}

export interface PlannedUser {
  userName: string;
  phase: RotationState['phase'];
  action: Action['kind'];
  steps: string[];
  keys: AccessKeyInfo[];
  sinkProblems: Array<{ sink: string; code: string; message: string }>;
}

/** --dry-run: what the next run would do, from IAM reads and the stored state only. */
export async function planRotation(
  deps: Omit<RotationDeps, 'audit' | 'registry' | 'hooks' | 'secrets'>,
  opts: { users?: string[]; force?: boolean; checkSinks?: boolean } = {},
): Promise<{ users: PlannedUser[]; problems: DiscoveryProblem[] }> {
  const now = (deps.now ?? (() => new Date()))();
  const { users, problems } = await selectUsers(deps as RotationDeps, opts.users);
  const planned: PlannedUser[] = [];
  for (const user of users) {
    const state = (await deps.store.getRotationState(user.userName)) ?? emptyRotationState(user.userName, now);
    const keys = await deps.iam.listAccessKeys(user.userName);
    const action = planFor(user, { state, keys, now, hasSecret: false, force: opts.force ?? false, fenceMs: deps.config.lease_seconds * 1000 });
    const sinkProblems: PlannedUser['sinkProblems'] = [];
    if (opts.checkSinks) {
      for (const cfg of user.sinks) {
        const sink = createSink(cfg, { env: deps.env ?? process.env, timeoutMs: deps.config.sink_timeout_ms, network: deps.network });
        await sink.preflight().catch((err: unknown) => sinkProblems.push({ sink: sink.id, code: errorCodeOf(err), message: safeMessage(err) }));
      }
    }
    planned.push({ userName: user.userName, phase: state.phase, action: action.kind, steps: describeRemaining(action, state, user.sinkIds, user.graceSeconds), keys, sinkProblems });
  }
  return { users: planned, problems };
}

export interface InventoryKey extends AccessKeyInfo {
  ageSeconds: number;
  lastUsed: KeyLastUsed;
  /** Set for a key credbroker created that not every sink received (say which), e.g. after a crash. */
  undelivered?: string;
}

/** Why a key of this user is one credbroker created and has not delivered everywhere, if it is. */
export function undeliveredNote(state: RotationState, key: AccessKeyInfo, sinkIds: string[]): string | undefined {
  if (state.phase === 'pushing' && key.accessKeyId === state.newKeyId) {
    const done = sinkIds.filter((s) => state.sinksDone.includes(s));
    if (done.length === sinkIds.length) return undefined;
    return done.length === 0
      ? 'created by credbroker, delivered to no sink yet'
      : `created by credbroker, delivered to ${done.length} of ${sinkIds.length} sinks (${done.join(', ')})`;
  }
  // `creating` allows only the old key: another one was created by a run that did not record it.
  if (state.phase === 'creating' && key.accessKeyId !== state.oldKeyId) return 'created by credbroker in a run that was interrupted, delivered to no sink (the next run deletes it)';
  return undefined;
}

export interface InventoryUser {
  userName: string;
  arn: string;
  sinks: string[];
  keys: InventoryKey[];
  phase: RotationState['phase'];
  errorCode: string | null;
  errorMessage: string | null;
  lastCompletedAt: string | null;
  next: string;
}

/** `credbroker keys`: every managed user with key ids (never secrets), ages, last use, state, next step. */
export async function inventory(deps: Omit<RotationDeps, 'audit' | 'registry' | 'hooks' | 'secrets'>): Promise<{ users: InventoryUser[]; problems: DiscoveryProblem[] }> {
  const now = (deps.now ?? (() => new Date()))();
  const { users, problems } = await discoverUsers(deps.config, deps.iam);
  const out: InventoryUser[] = [];
  for (const user of users) {
    const state = (await deps.store.getRotationState(user.userName)) ?? emptyRotationState(user.userName, now);
    const keys = await deps.iam.listAccessKeys(user.userName);
    const withUse: InventoryKey[] = [];
    for (const k of keys) {
      const undelivered = undeliveredNote(state, k, user.sinkIds);
      withUse.push({
        ...k,
        ageSeconds: Math.floor((now.getTime() - k.createDate.getTime()) / 1000),
        lastUsed: await deps.iam.getAccessKeyLastUsed(k.accessKeyId),
        ...(undelivered ? { undelivered } : {}),
      });
    }
    const action = planFor(user, { state, keys, now, hasSecret: false, force: false, fenceMs: deps.config.lease_seconds * 1000 });
    const next =
      action.kind === 'idle'
        ? `rotate at ${action.nextRotationAt?.toISOString() ?? '-'}`
        : action.kind === 'wait'
          ? `${action.reason} (until ${action.until.toISOString()})`
          : action.kind === 'error'
            ? `needs a human: ${action.code}`
            : `next run: ${action.kind}`;
    out.push({
      userName: user.userName,
      arn: user.arn,
      sinks: user.sinkIds,
      keys: withUse,
      phase: state.phase,
      errorCode: state.errorCode,
      errorMessage: state.errorMessage,
      lastCompletedAt: state.lastCompletedAt,
      next,
    });
  }
  return { users: out, problems };
}
