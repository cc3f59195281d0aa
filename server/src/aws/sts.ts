// STS for the broker. AssumeRole — once per exchange — goes through a lean Query client
// (sts-query.ts) that keeps the SDK's credential chain, endpoint rules and SigV4 signer; the SDK
// client serves everything off the hot path (caller identity, the credential provider itself).
// One client per region/endpoint, keep-alive pools, retries only for throttling, 5xx, network
// errors and timeouts, and STS errors mapped to stable codes.
import type { STSClient } from '@aws-sdk/client-sts';
import { BrokerError } from '../errors.js';
import { awsRequestTimeouts } from './timeouts.js';
import { StsQueryClient, parseAssumeRoleResponse } from './sts-query.js';
import type { AllowDecision } from '../core/policy.js';
import { createNetwork, type Network } from '../net/network.js';
import { describeNetworkError } from '../net/errors.js';

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
  /** Why the broker has no AWS credentials of its own (checked at start), or undefined. */
  credentialProblem?(): Promise<string | undefined>;
}

export interface StsOptions {
  defaultRegion: string;
  endpoint: string | undefined;
  maxAttempts: number;
  httpTimeoutMs: number;
  /** Explicit broker credentials; default: the SDK's provider chain (env, profile, ECS/EC2 role…). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Proxy and CA bundles, with their keep-alive pools; default: a network of its own from the environment. */
  network?: Network;
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
  'InvalidParameterValue',
]);

/**
 * The broker's own credentials are missing or no longer valid: no retry can help, and nothing the
 * caller can change either. Permanent until the operators fix the broker (ERR_STS_CREDENTIALS).
 */
const OWN_CREDENTIALS = new Set([
  'CredentialsProviderError', // the SDK's provider chain found none (no env, profile, task or instance role)
  'InvalidClientTokenId', // the access key does not exist (deleted, or from another partition)
  'UnrecognizedClientException',
  'SignatureDoesNotMatch', // the secret key does not belong to the access key
  'ExpiredToken', // the broker's own session expired and was not refreshed
  'ExpiredTokenException',
]);

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'SlowDown']);

export function mapStsError(err: unknown, roleArn: string, endpoint?: URL): BrokerError {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string; $retryable?: unknown };
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  // No HTTP answer: say what failed on the way (TLS reason, proxy, DNS) and to which host.
  const onTheWay = status === undefined && endpoint !== undefined ? describeNetworkError(err, endpoint) : undefined;
  const detail = { sts_error: name, http_status: status, role_arn: roleArn, error: onTheWay ?? e?.message?.slice(0, 500) };
  if (OWN_CREDENTIALS.has(name)) return new BrokerError('ERR_STS_CREDENTIALS', { detail, cause: err });
  if (name === 'AccessDenied' || name === 'AccessDeniedException') return new BrokerError('ERR_STS_ACCESS_DENIED', { detail, cause: err });
  if (THROTTLING.has(name) || status === 429) return new BrokerError('ERR_STS_THROTTLED', { detail, retryAfter: 2, cause: err });
  if (NON_RETRYABLE.has(name) || (status !== undefined && status >= 400 && status < 500)) {
    return new BrokerError('ERR_STS_REJECTED', { detail, cause: err });
  }
  return new BrokerError('ERR_STS_UNAVAILABLE', { detail, retryAfter: 2, cause: err });
}

/** The Query parameters of an AssumeRole call for exactly what the policy decided. */
export function assumeRoleParams(req: AssumeRoleRequest): Array<[string, string | number]> {
  const params: Array<[string, string | number]> = [
    ['Action', 'AssumeRole'],
    ['Version', '2011-06-15'],
    ['RoleArn', req.roleArn],
    ['RoleSessionName', req.sessionName],
    ['SourceIdentity', req.sourceIdentity],
    ['DurationSeconds', req.durationSeconds],
  ];
  req.tags.forEach((t, i) => params.push([`Tags.member.${i + 1}.Key`, t.Key], [`Tags.member.${i + 1}.Value`, t.Value]));
  req.transitiveTagKeys.forEach((k, i) => params.push([`TransitiveTagKeys.member.${i + 1}`, k]));
  if (req.sessionPolicy) params.push(['Policy', req.sessionPolicy]);
  req.policyArns.forEach((arn, i) => params.push([`PolicyArns.member.${i + 1}.arn`, arn]));
  return params;
}

export class StsCredentialIssuer implements CredentialIssuer {
  private readonly clients = new Map<string, STSClient>();
  private readonly queryClients = new Map<string, Promise<StsQueryClient>>();
  private temporary: Promise<boolean> | undefined;
  /** Keep-alive pools (direct or through the proxy), shared with the broker's other AWS clients. */
  private readonly network: Network;
  private readonly ownsNetwork: boolean;

  constructor(private readonly opts: StsOptions) {
    this.network = opts.network ?? createNetwork(undefined, process.env);
    this.ownsNetwork = opts.network === undefined;
  }

  /** The SDK client of a region: loaded on first use (it is not needed until the first exchange). */
  private async client(region: string | undefined): Promise<STSClient> {
    const r = region ?? this.opts.defaultRegion;
    const key = `${r}|${this.opts.endpoint ?? ''}`;
    let c = this.clients.get(key);
    if (!c) {
      const [{ STSClient }, { NodeHttpHandler }] = await Promise.all([import('@aws-sdk/client-sts'), import('@smithy/node-http-handler')]);
      c = this.clients.get(key); // another caller may have made it while the module loaded
      if (c) return c;
      c = new STSClient({
        region: r,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
        ...(this.opts.credentials ? { credentials: this.opts.credentials } : {}),
        maxAttempts: this.opts.maxAttempts,
        retryMode: 'standard',
        requestHandler: new NodeHttpHandler({
          // Agents that pick the direct pool or the proxy per host: the endpoint resolves later.
          httpsAgent: this.network.httpsAgent,
          httpAgent: this.network.httpAgent,
          // Each attempt gets http_timeout_ms to connect and to answer; a hung STS fails the attempt
          // (retried like any transient error, then ERR_STS_UNAVAILABLE) instead of only a warning.
          ...awsRequestTimeouts(this.opts.httpTimeoutMs),
        }),
      });
      this.clients.set(key, c);
    }
    return c;
  }

  /** The lean AssumeRole client of a region: the SDK client's credentials and endpoint, resolved once. */
  private queryClient(region: string | undefined): Promise<StsQueryClient> {
    const r = region ?? this.opts.defaultRegion;
    let q = this.queryClients.get(r);
    if (!q) {
      q = (async () => {
        const sdk = await this.client(r);
        const endpoint = this.opts.endpoint
          ? new URL(this.opts.endpoint)
          : new URL(
              sdk.config.endpointProvider({
                Region: r,
                UseFIPS: await sdk.config.useFipsEndpoint(),
                UseDualStack: await sdk.config.useDualstackEndpoint(),
                UseGlobalEndpoint: false,
              }).url.href,
            );
        return new StsQueryClient({
          region: r,
          endpoint,
          credentials: sdk.config.credentials,
          maxAttempts: this.opts.maxAttempts,
          httpTimeoutMs: this.opts.httpTimeoutMs,
          // Decided once per region: the hot path gets the pool itself, direct or through the proxy.
          agent: this.network.agentFor(endpoint),
        });
      })();
      // A failed resolution (bad region) is not cached: the next request tries again.
      q.catch(() => this.queryClients.delete(r));
      this.queryClients.set(r, q);
    }
    return q;
  }

  async assumeRole(req: AssumeRoleRequest, signal?: AbortSignal): Promise<IssuedCredentials> {
    let xml: string;
    let client: StsQueryClient | undefined;
    try {
      client = await this.queryClient(req.region);
      xml = await client.call(assumeRoleParams(req), signal);
    } catch (err) {
      throw mapStsError(err, req.roleArn, client?.endpoint);
    }
    const c = parseAssumeRoleResponse(xml);
    if (!c.accessKeyId || !c.secretAccessKey || !c.sessionToken || !c.expiration) {
      // Never hand out partial credentials.
      throw new BrokerError('ERR_STS_UNAVAILABLE', { detail: { role_arn: req.roleArn, error: 'incomplete credentials in STS response' }, retryAfter: 2 });
    }
    return {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiration: c.expiration,
      assumedRoleArn: c.assumedRoleArn ?? '',
      sourceIdentity: c.sourceIdentity ?? req.sourceIdentity,
    };
  }

  runsOnTemporaryCredentials(): Promise<boolean> {
    this.temporary ??= (async () => {
      const provider = (await this.client(undefined)).config.credentials;
      const creds = await provider();
      return Boolean(creds.sessionToken);
    })().catch(() => {
      this.temporary = undefined; // no credentials yet: asked again once they may have appeared
      return false;
    });
    return this.temporary;
  }

  /**
   * Why the broker has no AWS credentials of its own, or undefined when the SDK's provider chain
   * (environment, profile, web identity, ECS task role, EC2 instance profile) finds some. Only the
   * provider's words are returned, never a credential.
   */
  async credentialProblem(): Promise<string | undefined> {
    try {
      const creds = await (await this.client(undefined)).config.credentials();
      return creds.accessKeyId && creds.secretAccessKey ? undefined : 'the credential provider returned an incomplete key';
    } catch (err) {
      return (err as Error)?.message?.slice(0, 300) ?? String(err);
    }
  }

  async callerIdentity(): Promise<string | undefined> {
    const { GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
    const out = await (await this.client(undefined)).send(new GetCallerIdentityCommand({}));
    return out.Arn;
  }

  destroy(): void {
    for (const c of this.clients.values()) c.destroy();
    if (this.ownsNetwork) void this.network.close();
  }
}
