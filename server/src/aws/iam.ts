// IAM and STS for static-key rotation. The only module that talks to IAM about access keys.
// Endpoints come from config (aws.iam_endpoint / aws.sts_endpoint) or, when unset, the SDK's own
// resolution (AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL_STS). Throttling is retried with backoff on
// top of the SDK's own retries; every error leaves here as a RotationError without the SDK object.
// Every request is bounded by aws.http_timeout_ms (connect and answer): a hung IAM or STS endpoint
// fails the step with ERR_IAM_UNAVAILABLE / ERR_STS instead of holding the rotation lease forever.
import {
  IAMClient,
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GetAccessKeyLastUsedCommand,
  GetUserCommand,
  ListAccessKeysCommand,
  ListUserTagsCommand,
  ListUsersCommand,
  UpdateAccessKeyCommand,
  type IAMClientConfig,
  type User,
} from '@aws-sdk/client-iam';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { RotationError } from '../rotation/errors.js';
import { SecretValue, type NewAccessKey } from '../rotation/secret.js';
import { awsRequestTimeouts, timedOut } from './timeouts.js';
import { defaultNetwork, type Network } from '../net/network.js';
import { describeNetworkError } from '../net/errors.js';

export type KeyStatus = 'Active' | 'Inactive';

export interface AccessKeyInfo {
  accessKeyId: string;
  status: KeyStatus;
  createDate: Date;
}

export interface IamUserInfo {
  userName: string;
  arn: string;
  path: string;
  tags: Record<string, string>;
}

export interface KeyLastUsed {
  lastUsedDate?: Date;
  serviceName?: string;
  region?: string;
}

/** What rotation needs from IAM/STS; tests may wrap it to observe or inject faults. */
export interface IamKeys {
  getUser(userName: string): Promise<IamUserInfo | undefined>;
  /** Users under a path, with their tags. */
  listUsers(pathPrefix: string): Promise<IamUserInfo[]>;
  listAccessKeys(userName: string): Promise<AccessKeyInfo[]>;
  createAccessKey(userName: string): Promise<NewAccessKey>;
  setAccessKeyStatus(userName: string, accessKeyId: string, status: KeyStatus): Promise<void>;
  /** Idempotent: a key that is already gone is not an error. */
  deleteAccessKey(userName: string, accessKeyId: string): Promise<'deleted' | 'absent'>;
  getAccessKeyLastUsed(accessKeyId: string): Promise<KeyLastUsed>;
  /** STS GetCallerIdentity signed with the given key (not the broker's credentials). */
  callerIdentityWith(key: NewAccessKey): Promise<{ arn: string; account: string }>;
}

export interface IamAdapterOptions {
  region: string;
  iamEndpoint?: string | undefined;
  stsEndpoint?: string | undefined;
  maxAttempts?: number;
  httpTimeoutMs?: number;
  /** The broker's own credentials; default: the SDK's provider chain. */
  credentials?: IAMClientConfig['credentials'];
  /** Proxy and CA bundles; default: the environment's proxy, the system's CAs. */
  network?: Network;
  /** Extra attempts after the SDK gave up on throttling. */
  throttleAttempts?: number;
  throttleBaseMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'RequestThrottled']);

const nameOf = (err: unknown): string => (err && typeof err === 'object' && 'name' in err ? String((err as { name: unknown }).name) : 'Error');
const statusOf = (err: unknown): number | undefined =>
  (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;

export const isThrottling = (err: unknown): boolean => THROTTLING.has(nameOf(err)) || statusOf(err) === 429;

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retries `fn` while AWS says it is throttling, with exponential backoff and full jitter. */
export async function withThrottleBackoff<T>(
  fn: () => Promise<T>,
  opts: { attempts: number; baseMs: number; sleep?: (ms: number) => Promise<void>; random?: () => number },
): Promise<T> {
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isThrottling(err) || attempt >= opts.attempts) throw err;
      await sleep(Math.round(random() * opts.baseMs * 2 ** (attempt - 1)));
    }
  }
}

function iamError(op: string, err: unknown, timeoutMs: number, endpoint = 'https://iam.amazonaws.com'): RotationError {
  if (err instanceof RotationError) return err;
  const name = nameOf(err);
  const status = statusOf(err);
  if (isThrottling(err)) return new RotationError('ERR_IAM_THROTTLED', `IAM ${op}: throttled`, { retryable: true, status: status ?? 429 });
  // No answer (timeout, connection refused or reset) or a 5xx: transient, and the change may or may not have been made.
  if (timedOut(err)) return new RotationError('ERR_IAM_UNAVAILABLE', `IAM ${op}: no answer within ${timeoutMs} ms`, { retryable: true });
  // No HTTP answer: what failed on the way (TLS reason, proxy, DNS) and to which host.
  if (status === undefined) return new RotationError('ERR_IAM_UNAVAILABLE', `IAM ${op} failed: ${describeNetworkError(err, endpoint)}`, { retryable: true });
  if (status >= 500) return new RotationError('ERR_IAM_UNAVAILABLE', `IAM ${op} failed: ${name} (HTTP ${status})`, { retryable: true, status });
  return new RotationError('ERR_IAM', `IAM ${op} failed: ${name} (HTTP ${status})`, { retryable: false, status });
}

function toUser(u: User, tags: Record<string, string>): IamUserInfo {
  return { userName: u.UserName ?? '', arn: u.Arn ?? '', path: u.Path ?? '/', tags };
}

export function createIamKeys(opts: IamAdapterOptions): IamKeys {
  const timeoutMs = opts.httpTimeoutMs ?? 5000;
  const common = {
    region: opts.region,
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: awsRequestTimeouts(timeoutMs, opts.network ?? defaultNetwork()),
  };
  const iamConfig = {
    ...common,
    ...(opts.iamEndpoint ? { endpoint: opts.iamEndpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  };
  const iam = new IAMClient(iamConfig);
  // CreateAccessKey is never retried by the SDK: an attempt that timed out may have created a key,
  // and a retry would create another. The step fails instead; the next run finds the key in IAM.
  const iamOnce = new IAMClient({ ...iamConfig, maxAttempts: 1 });
  const retry = <T>(op: string, fn: () => Promise<T>): Promise<T> =>
    withThrottleBackoff(fn, {
      attempts: opts.throttleAttempts ?? 5,
      baseMs: opts.throttleBaseMs ?? 500,
      ...(opts.sleep ? { sleep: opts.sleep } : {}),
    }).catch((err: unknown) => {
      throw iamError(op, err, timeoutMs, opts.iamEndpoint);
    });

  const tagsOf = async (userName: string): Promise<Record<string, string>> => {
    const tags: Record<string, string> = {};
    let marker: string | undefined;
    do {
      const page = await retry('ListUserTags', () => iam.send(new ListUserTagsCommand({ UserName: userName, Marker: marker })));
      for (const t of page.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    return tags;
  };

  return {
    async getUser(userName) {
      try {
        const out = await withThrottleBackoff(() => iam.send(new GetUserCommand({ UserName: userName })), {
          attempts: opts.throttleAttempts ?? 5,
          baseMs: opts.throttleBaseMs ?? 500,
          ...(opts.sleep ? { sleep: opts.sleep } : {}),
        });
        if (!out.User) return undefined;
        return toUser(out.User, await tagsOf(userName));
      } catch (err) {
        if (nameOf(err) === 'NoSuchEntityException' || nameOf(err) === 'NoSuchEntity') return undefined;
        throw iamError('GetUser', err, timeoutMs, opts.iamEndpoint);
      }
    },

    async listUsers(pathPrefix) {
      const users: User[] = [];
      let marker: string | undefined;
      do {
        const page = await retry('ListUsers', () => iam.send(new ListUsersCommand({ PathPrefix: pathPrefix, Marker: marker })));
        users.push(...(page.Users ?? []));
        marker = page.IsTruncated ? page.Marker : undefined;
      } while (marker);
      const out: IamUserInfo[] = [];
      for (const u of users) out.push(toUser(u, await tagsOf(u.UserName ?? '')));
      return out;
    },

    async listAccessKeys(userName) {
      const keys: AccessKeyInfo[] = [];
      let marker: string | undefined;
      do {
        const page = await retry('ListAccessKeys', () => iam.send(new ListAccessKeysCommand({ UserName: userName, Marker: marker })));
        for (const k of page.AccessKeyMetadata ?? []) {
          if (!k.AccessKeyId) continue;
          keys.push({
            accessKeyId: k.AccessKeyId,
            status: k.Status === 'Active' ? 'Active' : 'Inactive',
            createDate: k.CreateDate ?? new Date(0),
          });
        }
        marker = page.IsTruncated ? page.Marker : undefined;
      } while (marker);
      return keys.sort((a, b) => a.createDate.getTime() - b.createDate.getTime());
    },

    async createAccessKey(userName) {
      // Not retried on anything but throttling (an answered refusal): a lost response could otherwise create two keys.
      const out = await retry('CreateAccessKey', () => iamOnce.send(new CreateAccessKeyCommand({ UserName: userName })));
      const k = out.AccessKey;
      if (!k?.AccessKeyId || !k.SecretAccessKey) throw new RotationError('ERR_IAM', 'IAM CreateAccessKey returned no key');
      return {
        userName,
        accessKeyId: k.AccessKeyId,
        secretAccessKey: new SecretValue(k.SecretAccessKey),
        createdAt: k.CreateDate ?? new Date(),
      };
    },

    async setAccessKeyStatus(userName, accessKeyId, status) {
      await retry('UpdateAccessKey', () => iam.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: accessKeyId, Status: status })));
    },

    async deleteAccessKey(userName, accessKeyId) {
      try {
        await withThrottleBackoff(() => iam.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: accessKeyId })), {
          attempts: opts.throttleAttempts ?? 5,
          baseMs: opts.throttleBaseMs ?? 500,
          ...(opts.sleep ? { sleep: opts.sleep } : {}),
        });
        return 'deleted';
      } catch (err) {
        if (nameOf(err) === 'NoSuchEntityException' || nameOf(err) === 'NoSuchEntity') return 'absent';
        throw iamError('DeleteAccessKey', err, timeoutMs, opts.iamEndpoint);
      }
    },

    async getAccessKeyLastUsed(accessKeyId) {
      const out = await retry('GetAccessKeyLastUsed', () => iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId })));
      const u = out.AccessKeyLastUsed;
      const result: KeyLastUsed = {};
      if (u?.LastUsedDate) result.lastUsedDate = u.LastUsedDate;
      if (u?.ServiceName && u.ServiceName !== 'N/A') result.serviceName = u.ServiceName;
      if (u?.Region && u.Region !== 'N/A') result.region = u.Region;
      return result;
    },

    async callerIdentityWith(key) {
      const sts = new STSClient({
        ...common,
        maxAttempts: 1, // the caller's verification loop does the backoff
        ...(opts.stsEndpoint ? { endpoint: opts.stsEndpoint } : {}),
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey.reveal() },
      });
      try {
        const out = await sts.send(new GetCallerIdentityCommand({}));
        return { arn: out.Arn ?? '', account: out.Account ?? '' };
      } catch (err) {
        const status = statusOf(err);
        const what = timedOut(err) ? `no answer within ${timeoutMs} ms` : `${nameOf(err)}${status ? ` (HTTP ${status})` : ''}`;
        throw new RotationError('ERR_STS', `STS GetCallerIdentity with the new key failed: ${what}`, {
          retryable: true,
          ...(status ? { status } : {}),
        });
      } finally {
        sts.destroy();
      }
    },
  };
}
