// Starts a real broker on loopback for integration tests: real HTTP, a real local OIDC issuer,
// moto as STS. Logs and audit records are captured so tests can assert on them (and scan them
// for secrets).
import { Writable } from 'node:stream';
import { parseConfig } from '../../server/src/config/load.js';
import type { ConfigInput } from '../../server/src/config/schema.js';
import { createBroker, type Broker, type BrokerOptions } from '../../server/src/broker.js';
import { StsCredentialIssuer, type CredentialIssuer } from '../../server/src/aws/sts.js';
import { createNetwork } from '../../server/src/net/network.js';
import { createLogger } from '../../server/src/log.js';
import { MemoryAuditSink } from '../../server/src/audit/sinks.js';
import type { AuditRecord } from '../../server/src/audit/types.js';
import type { Moto } from './moto.js';
import type { TestIssuer } from './oidc-issuer.js';

export const TEST_AUDIENCE = 'https://credbroker.test';
export const TEST_ACCOUNT = '123456789012';
export const DEPLOY_ROLE_ARN = `arn:aws:iam::${TEST_ACCOUNT}:role/credbroker/deploy`;

export interface TestBrokerOptions {
  moto?: Moto;
  /** Issuers by id; a single issuer gets the id `test`. */
  issuer: TestIssuer | Record<string, TestIssuer>;
  /** Extra issuer settings per id (preset, audiences, max_token_age_seconds…). */
  issuerSettings?: Record<string, Record<string, unknown>>;
  roles?: ConfigInput['roles'];
  /** Other top-level config sections (server, aws, deny, audit, store…), merged over defaults. */
  config?: Partial<ConfigInput>;
  /** Replace adapters (e.g. a fault-injecting STS). */
  brokerOptions?: BrokerOptions;
  /** Wrap the real (moto-backed) STS adapter, e.g. to count calls. */
  wrapSts?: (sts: CredentialIssuer) => CredentialIssuer;
  /** The environment the broker's network reads (HTTPS_PROXY, NO_PROXY…); default none of the runner's proxy variables. */
  env?: NodeJS.ProcessEnv;
}

export interface TestBroker {
  url: string;
  /** The metrics listener's /metrics URL (metrics are never on the public listener). */
  metricsUrl: string;
  broker: Broker;
  /** Every log line the broker wrote, raw. */
  logs: string[];
  /** Every audit record the broker wrote (empty with audit.sink "store" or "file"). */
  audit: AuditRecord[];
  close(): Promise<void>;
}

export function defaultRoles(): NonNullable<ConfigInput['roles']> {
  return {
    deploy: {
      arn: DEPLOY_ROLE_ARN,
      allow: [{ issuer: 'test', claims: { repository_id: '487920697' } }],
    },
  };
}

export async function startTestBroker(opts: TestBrokerOptions): Promise<TestBroker> {
  const issuers = 'url' in opts.issuer ? { test: opts.issuer as TestIssuer } : opts.issuer;
  const input: ConfigInput = {
    ...opts.config,
    server: {
      port: 0,
      readiness_wait_ms: 5000,
      // Tests send many requests from one IP and one identity; rate-limit tests set their own.
      rate_limit: { per_ip: { limit: 1_000_000, window_seconds: 60 }, per_identity: { limit: 1_000_000, window_seconds: 60 } },
      ...opts.config?.server,
    },
    aws: {
      region: 'us-east-1',
      role_chaining: 'never',
      ...(opts.moto ? { sts_endpoint: opts.moto.endpoint, iam_endpoint: opts.moto.endpoint } : {}),
      ...opts.config?.aws,
    },
    logging: { level: 'debug', ...opts.config?.logging },
    issuers: Object.fromEntries(
      Object.entries(issuers).map(([id, iss]) => [
        id,
        { url: iss.url, audiences: [TEST_AUDIENCE], allow_insecure_http: true, jwks_cooldown_seconds: 1, ...opts.issuerSettings?.[id] },
      ]),
    ),
    roles: opts.roles ?? defaultRoles(),
  };
  // The proxy variables come from the test, never from the machine running it.
  const env = opts.env ?? {};
  const { config } = parseConfig(JSON.stringify(input), 'test', env);
  const network = createNetwork(config.network, env);

  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      cb();
    },
  });
  const audit = new MemoryAuditSink();
  const sts = new StsCredentialIssuer({
    defaultRegion: config.aws.region,
    endpoint: config.aws.sts_endpoint,
    maxAttempts: config.aws.max_attempts,
    httpTimeoutMs: config.aws.http_timeout_ms,
    credentials: { accessKeyId: 'AKIDBROKERTESTONLY00', secretAccessKey: 'broker-test-secret-not-real' },
    network,
  });
  const broker = createBroker(config, {
    logger: createLogger({ level: config.logging.level, destination }),
    // With the default stdout sink, records are captured here; "store" and "file" are used for real.
    ...(config.audit.sink === 'stdout' ? { audit } : {}),
    sts: opts.wrapSts ? opts.wrapSts(sts) : sts,
    network,
    ...opts.brokerOptions,
  });
  await broker.start();
  const { url } = await broker.listen(0, '127.0.0.1');
  const metrics = await broker.listenMetrics(0, '127.0.0.1');
  return {
    url,
    metricsUrl: `${metrics.url}/metrics`,
    broker,
    logs,
    audit: audit.records,
    close: async () => {
      await broker.close();
      await network.close();
    },
  };
}

/** POST /v1/credentials with a token; returns status, parsed body and headers. */
export async function requestCredentials(
  url: string,
  token: string | undefined,
  body: unknown = { role: 'deploy' },
  opts: { format?: string; contentType?: string; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/json', ...opts.headers };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const q = opts.format ? `?format=${encodeURIComponent(opts.format)}` : '';
  const res = await fetch(`${url}/v1/credentials${q}`, { method: 'POST', headers, body: opts.rawBody ?? JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}
