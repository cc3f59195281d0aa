// STS AssumeRole for the broker: one client per region/endpoint (keep-alive), SDK retries only
// for throttling, 5xx and network errors, and STS errors mapped to stable codes.
import { Agent as HttpsAgent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BrokerError } from '../errors.js';
import { awsRequestTimeouts } from './timeouts.js';
import type { AllowDecision } from '../core/policy.js';

/** Exactly what the policy decided STS should be asked for. */
export type AssumeRoleRequest = Pick<
  AllowDecision,
  'roleArn' | 'region' | 'sessionName' | 'sourceIdentity' | 'tags' | 'transitiveTagKeys' | 'durationSeconds' | 'sessionPolicy' | 'policyArns'
>;

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  assumedRoleArn: string;
  sourceIdentity: string | undefined;
}

/** What the broker needs from STS; tests and benchmarks can hand in another implementation. */
export interface CredentialIssuer {
  assumeRole(req: AssumeRoleRequest, signal?: AbortSignal): Promise<IssuedCredentials>;
  /** Whether the broker's own credentials are temporary (AssumeRole is then role chaining). */
  runsOnTemporaryCredentials(): Promise<boolean>;
}

export interface StsOptions {
  defaultRegion: string;
  endpoint: string | undefined;
  maxAttempts: number;
  httpTimeoutMs: number;
  /** Explicit broker credentials; default: the SDK's provider chain (env, profile, ECS/EC2 role…). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** Never retried, whatever the SDK thinks: the request itself is wrong or not allowed. */
const NON_RETRYABLE = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'ValidationError',
  'MalformedPolicyDocument',
  'MalformedPolicyDocumentException',
  'PackedPolicyTooLarge',
  'PackedPolicyTooLargeException',
  'RegionDisabledException',
  'ExpiredTokenException',
  'InvalidParameterValue',
]);

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'SlowDown']);

export function mapStsError(err: unknown, roleArn: string): BrokerError {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string; $retryable?: unknown };
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  const detail = { sts_error: name, http_status: status, role_arn: roleArn, error: e?.message?.slice(0, 500) };
  if (name === 'AccessDenied' || name === 'AccessDeniedException') return new BrokerError('ERR_STS_ACCESS_DENIED', { detail, cause: err });
  if (THROTTLING.has(name) || status === 429) return new BrokerError('ERR_STS_THROTTLED', { detail, retryAfter: 2, cause: err });
  if (NON_RETRYABLE.has(name) || (status !== undefined && status >= 400 && status < 500)) {
    return new BrokerError('ERR_STS_REJECTED', { detail, cause: err });
  }
  return new BrokerError('ERR_STS_UNAVAILABLE', { detail, retryAfter: 2, cause: err });
}

export class StsCredentialIssuer implements CredentialIssuer {
  private readonly clients = new Map<string, STSClient>();
  private temporary: Promise<boolean> | undefined;

  constructor(private readonly opts: StsOptions) {}

  client(region: string | undefined): STSClient {
    const r = region ?? this.opts.defaultRegion;
    const key = `${r}|${this.opts.endpoint ?? ''}`;
    let c = this.clients.get(key);
    if (!c) {
      c = new STSClient({
        region: r,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
        ...(this.opts.credentials ? { credentials: this.opts.credentials } : {}),
        maxAttempts: this.opts.maxAttempts,
        retryMode: 'standard',
        requestHandler: new NodeHttpHandler({
          httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 128 }),
          // http only for local endpoints (tests, benchmarks): same pool settings.
          httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 128 }),
          // Each attempt gets http_timeout_ms to connect and to answer; a hung STS fails the attempt
          // (retried like any transient error, then ERR_STS_UNAVAILABLE) instead of only a warning.
          ...awsRequestTimeouts(this.opts.httpTimeoutMs),
        }),
      });
      this.clients.set(key, c);
    }
    return c;
  }

  async assumeRole(req: AssumeRoleRequest, signal?: AbortSignal): Promise<IssuedCredentials> {
    const cmd = new AssumeRoleCommand({
      RoleArn: req.roleArn,
      RoleSessionName: req.sessionName,
      SourceIdentity: req.sourceIdentity,
      DurationSeconds: req.durationSeconds,
      ...(req.tags.length > 0 ? { Tags: req.tags } : {}),
      ...(req.transitiveTagKeys.length > 0 ? { TransitiveTagKeys: req.transitiveTagKeys } : {}),
      ...(req.sessionPolicy ? { Policy: req.sessionPolicy } : {}),
      ...(req.policyArns.length > 0 ? { PolicyArns: req.policyArns.map((arn) => ({ arn })) } : {}),
    });
    let out;
    try {
      out = await this.client(req.region).send(cmd, signal ? { abortSignal: signal } : {});
    } catch (err) {
      throw mapStsError(err, req.roleArn);
    }
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      // Never hand out partial credentials.
      throw new BrokerError('ERR_STS_UNAVAILABLE', { detail: { role_arn: req.roleArn, error: 'incomplete credentials in STS response' }, retryAfter: 2 });
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
      assumedRoleArn: out.AssumedRoleUser?.Arn ?? '',
      sourceIdentity: out.SourceIdentity ?? req.sourceIdentity,
    };
  }

  runsOnTemporaryCredentials(): Promise<boolean> {
    this.temporary ??= (async () => {
      const provider = this.client(undefined).config.credentials;
      const creds = await provider();
      return Boolean(creds.sessionToken);
    })().catch(() => false);
    return this.temporary;
  }

  async callerIdentity(): Promise<string | undefined> {
    const out = await this.client(undefined).send(new GetCallerIdentityCommand({}));
    return out.Arn;
  }

  destroy(): void {
    for (const c of this.clients.values()) c.destroy();
  }
}
