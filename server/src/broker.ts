// The composition root: builds the broker from a config and its adapters. Everything that does
// I/O is handed in here (or defaulted), so tests and benchmarks can swap any edge.
import http from 'node:http';
import type express from 'express';
import type { Config } from './config/compile.js';
import { createApp, type AppDeps } from './http/app.js';
import { TokenVerifier } from './oidc/verifier.js';
import { StsCredentialIssuer, type CredentialIssuer } from './aws/sts.js';
import { MemoryReplayLedger, type ReplayLedger } from './replay/ledger.js';
import { FileAuditSink, StdoutAuditSink } from './audit/sinks.js';
import type { AuditSink } from './audit/types.js';
import { createMetrics, type BrokerMetrics } from './metrics.js';
import { createLogger, type Logger } from './log.js';
import type { PreIssueCheck } from './exchange.js';
import { GuardedIssuer } from './aws/guard.js';
import { createRateLimiters, type IdentityLimiter, type RateLimitStoreFactory } from './http/rate-limit.js';
import type { OpsStore } from './ops/types.js';
import { MemoryStore } from './store/memory.js';
import { RevocationGuard } from './ops/revocations.js';
import { StoreAuditSink, StoreReplayLedger, counterRateLimitStore } from './ops/adapters.js';
import { createAdminApp, type AdminDeps, type ConsoleOptions } from './admin/app.js';
import { KeyFreshness } from './console/status.js';
import { adminListenerProblem, INSECURE_ADMIN_WARNING, isLoopbackHost } from './admin/listener.js';
import { startListener, type Listener } from './http/listener.js';
import { createNetwork, type Network } from './net/network.js';

/** At shutdown, connections still open this long after server.request_timeout_ms are cut. */
export const DRAIN_MARGIN_MS = 2000;

/** Logged at start when the SDK's credential chain finds no credentials for the broker itself. */
export const NO_AWS_CREDENTIALS_WARNING =
  'the broker has no AWS credentials of its own: every exchange will fail with 500 ERR_STS_CREDENTIALS until it has some (environment variables, a profile, a web identity, the ECS task role or the EC2 instance profile)';
import type { Keyring } from './core/audit-chain.js';
import { loadAuditKeyring } from './audit/keys.js';
import { CheckpointWriter, checkpointSink, readCheckpointFiles, type CheckpointSink } from './audit/checkpoints.js';

export interface BrokerOptions {
  sts?: CredentialIssuer;
  ledger?: ReplayLedger;
  audit?: AuditSink;
  logger?: Logger;
  metrics?: BrokerMetrics;
  now?: () => Date;
  preIssueChecks?: PreIssueCheck[];
  /** Replace the rate limits (per IP before verification, per identity after). */
  limiters?: { perIp: express.RequestHandler; perIdentity: IdentityLimiter };
  /** Shared counters for rate limits across replicas; default in-process. */
  rateLimitStore?: RateLimitStoreFactory;
  /** Set false to call STS without pacing and circuit breaker (benchmarks of the raw path). */
  guardSts?: boolean;
  /** The shared store (token ledger, revocations, audit chain, counters); default in memory. */
  ops?: OpsStore;
  /** Replace parts of the admin API's dependencies (tests: revokeSessions against moto). */
  admin?: Partial<AdminDeps>;
  /** The audit HMAC keys; default read from the files or variables `audit:` names. */
  auditKeys?: Keyring;
  /** Where signed checkpoints of the audit chain go; default per audit.checkpoints. */
  checkpointSink?: CheckpointSink;
  /** Outbound connections (proxy, CA bundles); default built from config.network and the process environment. */
  network?: Network;
  /** The console on the admin listener: its dev login (dev mode only), static keys, the config file. */
  console?: Partial<ConsoleOptions>;
}

export interface Broker {
  app: express.Express;
  metrics: BrokerMetrics;
  logger: Logger;
  verifier(): TokenVerifier;
  config(): Config;
  /** Swap in a new, already validated config (hot reload). In-flight requests keep the old one. */
  reload(next: Config): Promise<void>;
  ops: OpsStore;
  /** Where audit records go (rotation in `serve` writes to the same sink). */
  audit: AuditSink;
  revocations: RevocationGuard;
  /** The audit HMAC keys (empty without audit.hmac_key_*). */
  auditKeys: Keyring;
  /** Signed checkpoints of the store's audit chain (audit.sink "store" with a key), else undefined. */
  checkpoints: CheckpointWriter | undefined;
  /** Outbound connections: issuers, STS, IAM and (in `serve`) the rotation sinks go through it. */
  network: Network;
  /** Starts the admin API on its own listener (never on the public one); refuses a non-loopback host unless allowed. */
  listenAdmin(port?: number, host?: string): Promise<{ url: string; server: http.Server }>;
  /** Starts the Prometheus metrics listener (never on the public one). */
  listenMetrics(port?: number, host?: string): Promise<{ url: string; server: http.Server }>;
  /** Prefetch issuer keys (bounded by server.readiness_wait_ms), then refresh in the background. */
  start(): Promise<void>;
  listen(port?: number, host?: string): Promise<{ url: string; server: http.Server }>;
  /** Re-reads server.tls's certificate and key for every listener (SIGHUP; file changes do it by themselves). */
  reloadTls(trigger: string): void;
  close(): Promise<void>;
}

export function defaultAuditSink(config: Config, ops: OpsStore, keyring?: Keyring): AuditSink {
  if (config.audit.sink === 'file') return new FileAuditSink(config.audit.path!);
  if (config.audit.sink === 'store') return new StoreAuditSink(ops, keyring);
  return new StdoutAuditSink();
}

/** GET/HEAD /metrics and nothing else: a listener of its own, so the public one never shows them. */
function metricsHandler(metrics: BrokerMetrics): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (path !== '/metrics') return reply(404, 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    metrics.registry.metrics().then(
      (text) => reply(200, text, { 'Content-Type': metrics.registry.contentType }),
      () => reply(500, 'internal error\n'),
    );
  };
}

export function createBroker(initial: Config, opts: BrokerOptions = {}): Broker {
  let config = initial;
  const logger = opts.logger ?? createLogger({ level: config.logging.level });
  const metrics = opts.metrics ?? createMetrics({ defaultMetrics: true });
  const keyFreshness = new KeyFreshness(opts.now);
  const onRefresh = (issuer: string, outcome: 'success' | 'failure', trigger: string, error?: string) => {
    metrics.jwksRefresh.inc({ issuer, outcome, trigger });
    keyFreshness.record(issuer, outcome, error);
    if (outcome === 'failure') logger.warn({ issuer, trigger, error }, 'issuer key refresh failed; any keys already loaded stay in use');
    else logger.debug({ issuer, trigger }, 'issuer keys refreshed');
  };
  // Read at start only (a reload that changes network says needs_restart): the pools live as long as the process.
  const network = opts.network ?? createNetwork(config.network, process.env);
  logger.info(network.summary(), 'outbound network');
  let verifier = new TokenVerifier(config.issuers.values(), { onRefresh }, opts.now, undefined, network);
  const rawSts =
    opts.sts ??
    new StsCredentialIssuer({
      defaultRegion: config.aws.region,
      endpoint: config.aws.sts_endpoint,
      maxAttempts: config.aws.max_attempts,
      httpTimeoutMs: config.aws.http_timeout_ms,
      network,
    });
  const sts =
    opts.guardSts === false
      ? rawSts
      : new GuardedIssuer(rawSts, {
          callsPerSecond: config.aws.sts_calls_per_second_per_account,
          failureThreshold: config.aws.circuit_breaker.failure_threshold,
          openSeconds: config.aws.circuit_breaker.open_seconds,
          onStateChange: (account, state) => {
            metrics.stsCircuitOpen.set({ account }, state === 'open' ? 1 : 0);
            logger.warn({ account, state }, state === 'open' ? 'STS circuit opened for account' : 'STS circuit closed for account');
          },
        });
  const ops = opts.ops ?? new MemoryStore();
  // Read once, at construction: a key that cannot be read stops the broker before it serves.
  const auditKeys = opts.auditKeys ?? loadAuditKeyring(config.audit);
  const audit = opts.audit ?? defaultAuditSink(config, ops, auditKeys);
  const now = opts.now ?? (() => new Date());
  const checkpoints =
    config.audit.sink === 'store' && auditKeys.current && !opts.audit
      ? new CheckpointWriter({
          store: ops,
          key: auditKeys.current,
          sink: opts.checkpointSink ?? checkpointSink(config.audit.checkpoints),
          logger,
          intervalMs: config.audit.checkpoints.interval_seconds * 1000,
          now,
        })
      : undefined;
  const ledger = opts.ledger ?? (ops.driver === 'memory' ? new MemoryReplayLedger() : new StoreReplayLedger(ops));
  const revocations = new RevocationGuard(ops, () => config, logger, {
    pollMs: config.revocation.poll_ms,
    maxStalenessMs: config.revocation.max_staleness_ms,
  });
  const listeners: Listener[] = [];
  let purgeTimer: NodeJS.Timeout | undefined;

  const readiness = () => {
    const issuers: Record<string, boolean> = {};
    // Why the last fetch failed (host and TLS reason; never a credential), also when older keys are still in use.
    const errors: Record<string, string> = {};
    for (const [id, cache] of verifier.caches) {
      issuers[id] = cache.loaded;
      if (cache.lastError !== undefined) errors[id] = cache.lastError;
      metrics.issuerKeysLoaded.set({ issuer: id }, cache.loaded ? 1 : 0);
    }
    return { ready: Object.values(issuers).every(Boolean), issuers, ...(Object.keys(errors).length > 0 ? { issuer_errors: errors } : {}) };
  };

  const limiters =
    opts.limiters ??
    createRateLimiters(() => config.server.rate_limit, {
      metrics,
      store: opts.rateLimitStore ?? (ops.driver === 'memory' ? undefined : counterRateLimitStore(ops)),
    });
  const deps: AppDeps = {
    config: () => config,
    verifier: () => verifier,
    sts,
    ledger,
    audit,
    metrics,
    logger,
    now,
    ready: readiness,
    preIssueChecks: [revocations.check, ...(opts.preIssueChecks ?? [])],
    limiters: [limiters.perIp],
    identityLimiter: limiters.perIdentity,
  };
  const app = createApp(deps);

  /** `tls`: whether server.tls applies to this listener (public and admin; not metrics), and the client CA. */
  const listenOn = async (handler: http.RequestListener, port: number, host: string, name: string, useTls: { clientCaFile?: string | undefined } | false) => {
    const tls = config.server.tls && useTls ? { ...config.server.tls, client_ca_file: useTls.clientCaFile } : undefined;
    const listener = await startListener(handler, port, host, {
      requestTimeoutMs: config.server.request_timeout_ms + 5000,
      keepAliveTimeoutMs: config.server.keep_alive_timeout_ms,
      tls,
      onTlsLoad: (e) => {
        if (e.ok) logger.info({ listener: name, trigger: e.trigger, fingerprint256: e.fingerprint256, subject: e.subject, valid_to: e.validTo }, 'TLS certificate loaded');
        else logger.error({ listener: name, trigger: e.trigger, error: e.error }, 'TLS certificate reload refused; the current certificate stays in use');
      },
    });
    listeners.push(listener);
    return { url: listener.url, server: listener.server };
  };

  return {
    app,
    metrics,
    logger,
    ops,
    audit,
    revocations,
    auditKeys,
    checkpoints,
    network,
    verifier: () => verifier,
    config: () => config,
    async reload(next) {
      // Issuers whose settings did not change keep their key caches; new ones are fetched first.
      const fresh = new TokenVerifier(next.issuers.values(), { onRefresh }, opts.now, verifier, network);
      await fresh.start(next.server.readiness_wait_ms);
      const old = verifier;
      verifier = fresh;
      config = next;
      old.retire(fresh);
    },
    async start() {
      await audit.open?.();
      if (config.audit.sink === 'store' && !auditKeys.current) {
        logger.warn({ setting: 'audit.allow_unkeyed_chain' }, 'INSECURE: the audit chain is unkeyed: anyone who can write to the database can rewrite the audit trail undetected');
      }
      await checkpoints?.start();
      await Promise.all([verifier.start(config.server.readiness_wait_ms), revocations.start()]);
      if (ops.driver !== 'memory') {
        purgeTimer = setInterval(() => {
          ops.purgeExpiredTokens(new Date()).catch((err: unknown) => logger.warn({ error: String(err) }, 'token ledger purge failed'));
        }, 60_000);
        purgeTimer.unref();
      }
      // Not awaited: on EC2 the provider chain may take seconds to give up, and a start must not wait.
      void rawSts.credentialProblem?.().then((problem) => {
        if (problem !== undefined) logger.warn({ error: problem }, NO_AWS_CREDENTIALS_WARNING);
      });
      const r = readiness();
      if (!r.ready) logger.warn({ issuers: r.issuers, issuer_errors: r.issuer_errors }, 'not all issuer keys loaded yet; /readyz reports 503 until they are');
    },
    listen(port = config.server.port, host = config.server.host) {
      return listenOn(app, port, host, 'public', {});
    },
    reloadTls(trigger) {
      for (const l of listeners) l.reloadTls(trigger);
    },
    listenAdmin(port = config.admin.port, host = config.admin.host) {
      // With server.tls the admin listener is HTTPS, and may bind beyond loopback.
      const withTls = config.server.tls !== undefined;
      const problem = adminListenerProblem(host, config.admin.allow_insecure_non_loopback || withTls);
      if (problem) return Promise.reject(new Error(`admin.host: ${problem}`));
      if (!isLoopbackHost(host) && !withTls) logger.warn({ admin_host: host }, INSECURE_ADMIN_WARNING);
      const checkpointFile = config.audit.checkpoints.sink === 'file' ? config.audit.checkpoints.path : undefined;
      const adminApp = createAdminApp({
        config: () => config,
        store: ops,
        audit,
        logger,
        now,
        keyring: auditKeys,
        async checkpoints() {
          const own = checkpoints?.recent() ?? [];
          const fromFile = checkpointFile ? await readCheckpointFiles([checkpointFile]) : { checkpoints: [], unreadable: 0 };
          return { checkpoints: [...own, ...fromFile.checkpoints], unreadable: fromFile.unreadable };
        },
        revokeSessions: (roleArn, now) =>
          // The IAM client is loaded when an admin first revokes sessions, not at start.
          import('./aws/revoke-sessions.js').then(({ revokeOlderSessions }) =>
            revokeOlderSessions(roleArn, { region: config.aws.region, endpoint: config.aws.iam_endpoint, now, httpTimeoutMs: config.aws.http_timeout_ms, maxAttempts: config.aws.max_attempts, network }),
          ),
        console: {
          devLogin: false,
          adminHost: host,
          fetch: network.fetch,
          issuerKeys: () => [...verifier.caches].map(([id, cache]) => keyFreshness.status(id, cache.loaded)),
          stsCircuitOpen: (account) => sts instanceof GuardedIssuer && sts.isOpen(account),
          ...opts.console,
        },
        ...opts.admin,
      });
      return listenOn(adminApp, port, host, 'admin', { clientCaFile: config.admin.client_ca_file });
    },
    listenMetrics(port = config.metrics.port, host = config.metrics.host) {
      return listenOn(metricsHandler(metrics), port, host, 'metrics', false);
    },
    async close() {
      // Requests in flight finish first, with everything they use still running; exchanges end
      // on their own by server.request_timeout_ms (503 ERR_TIMEOUT).
      await Promise.all(listeners.map((l) => l.drain(config.server.request_timeout_ms + DRAIN_MARGIN_MS)));
      verifier.stop();
      revocations.stop();
      clearInterval(purgeTimer);
      await checkpoints?.stop();
      await audit.close?.();
      if (!opts.ops) await ops.close();
      if (rawSts instanceof StsCredentialIssuer) rawSts.destroy();
      if (!opts.network) await network.close();
    },
  };
}
