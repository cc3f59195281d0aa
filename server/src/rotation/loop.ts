// The rotation loop inside `credbroker serve`: a run every interval (plus random jitter), only on
// the replica holding the rotation lock. The secrets of keys being rolled out stay in memory across
// runs, so a sink that fails resumes with the same key. stop() aborts the step in flight (a push is
// stopped, an IAM call finishes), deletes new keys that no sink received, and releases the lock.
import type { Network } from '../net/network.js';
import type { Registry } from 'prom-client';
import { createIamKeys, type IamKeys } from '../aws/iam.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import { assertPersistentStore, type Store } from '../store/index.js';
import type { RotationConfig } from './config-schema.js';
import { safeMessage } from './errors.js';
import type { RotationHooks, SecretCache } from './rotate-user.js';
import { defaultHolder, runRotation, type RunReport } from './run.js';

export interface AwsSettings {
  region: string;
  iam_endpoint?: string | undefined;
  sts_endpoint?: string | undefined;
  max_attempts: number;
  http_timeout_ms: number;
}

export interface RotationLoopDeps {
  /** `config.rotation`; the loop does nothing when it is undefined or `enabled: false`. */
  config: RotationConfig | undefined;
  /** `config.aws`: region and endpoints for IAM/STS. */
  aws: AwsSettings;
  store: Store;
  audit: AuditSink;
  logger: Logger;
  registry: Registry;
  /** Override the IAM/STS adapter (tests). */
  iam?: IamKeys;
  env?: NodeJS.ProcessEnv;
  /** The broker's outbound network (proxy, CA bundles), for IAM and the sinks. */
  network?: Network;
  now?: () => Date;
  random?: () => number;
  holder?: string;
  hooks?: RotationHooks;
  /** Called after each run (tests, diagnostics). */
  onRun?: (report: RunReport) => void;
}

export interface RotationLoop {
  stop(): Promise<void>;
}

export function iamKeysFromAws(aws: AwsSettings, network?: Network): IamKeys {
  return createIamKeys({
    region: aws.region,
    iamEndpoint: aws.iam_endpoint,
    stsEndpoint: aws.sts_endpoint,
    maxAttempts: aws.max_attempts,
    httpTimeoutMs: aws.http_timeout_ms,
    ...(network ? { network } : {}),
  });
}

export function startRotationLoop(deps: RotationLoopDeps): RotationLoop {
  const config = deps.config;
  const log = deps.logger.child({ component: 'rotation' });
  if (!config || !config.enabled) {
    log.info('rotation loop disabled');
    return { stop: async () => {} };
  }
  assertPersistentStore(deps.store);
  const iam = deps.iam ?? iamKeysFromAws(deps.aws, deps.network);
  const random = deps.random ?? Math.random;
  const holder = deps.holder ?? defaultHolder();
  const secrets: SecretCache = new Map();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  const delay = () => config.interval_seconds * 1000 + Math.floor(random() * config.jitter_seconds * 1000);

  const runDeps = {
    config,
    store: deps.store,
    iam,
    audit: deps.audit,
    logger: deps.logger,
    registry: deps.registry,
    holder,
    secrets,
    ...(deps.env ? { env: deps.env } : {}),
    ...(deps.network ? { network: deps.network } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.hooks ? { hooks: deps.hooks } : {}),
  };

  const tick = () => {
    running = (async () => {
      try {
        const report = await runRotation(runDeps, { signal: controller.signal });
        if (!report.leader) log.debug('another replica holds the rotation lock');
        deps.onRun?.(report);
      } catch (err) {
        log.error({ err: { name: (err as Error).name } }, `rotation run failed: ${safeMessage(err)}`);
      } finally {
        running = undefined;
        schedule(delay());
      }
    })();
  };

  // First run soon after start, spread by the jitter so replicas don't race at boot.
  schedule(Math.floor(random() * Math.min(config.jitter_seconds, 60) * 1000));
  log.info({ interval_seconds: config.interval_seconds, users: config.users.length }, 'rotation loop started');

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      controller.abort();
      await running;
      // The secrets end with this process: a new key that no sink received is deleted now rather
      // than left Active, held by nobody, until the next start.
      if (secrets.size > 0) {
        await runRotation(runDeps, { users: [...secrets.keys()], discardOnly: true }).catch((err: unknown) =>
          log.error({ err: { name: (err as Error).name } }, `could not discard undelivered keys: ${safeMessage(err)}`),
        );
      }
      secrets.clear();
      log.info('rotation loop stopped');
    },
  };
}
