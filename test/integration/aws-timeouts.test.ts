// aws.http_timeout_ms holds for every AWS call the broker makes: STS AssumeRole (the exchange),
// IAM (rotation), STS GetCallerIdentity signed with a new key (rotation verify) and PutRolePolicy
// (revoke-sessions). The stand-in accepts the TCP connection, reads the request and never answers
// — the failure the SDK's default only warns about while it keeps waiting.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StsCredentialIssuer } from '../../server/src/aws/sts.js';
import { createIamKeys } from '../../server/src/aws/iam.js';
import { revokeOlderSessions } from '../../server/src/aws/revoke-sessions.js';
import { BrokerError } from '../../server/src/errors.js';
import { RotationError } from '../../server/src/rotation/errors.js';
import { SecretValue } from '../../server/src/rotation/secret.js';
import { startHungEndpoint, type HungEndpoint } from '../support/hung-endpoint.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { DEPLOY_ROLE_ARN, requestCredentials, startTestBroker, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';

const credentials = { accessKeyId: 'AKIDTIMEOUTTEST00000', secretAccessKey: 'timeout-test-not-a-secret' };
let hung: HungEndpoint;
let issuer: TestIssuer;

beforeAll(async () => {
  [hung, issuer] = await Promise.all([startHungEndpoint(), startIssuer()]);
});
afterAll(async () => {
  await Promise.all([hung?.close(), issuer?.close()]);
});

/** Settles `p` and measures it; fails clearly (instead of hanging the file) if it takes longer than `limitMs`. */
async function settle<T>(p: Promise<T>, limitMs: number): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${limitMs} ms: the timeout is not enforced`)), limitMs);
  });
  try {
    await Promise.race([p, limit]);
    return { error: undefined, ms: performance.now() - started };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('still waiting')) throw error;
    return { error, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

const assumeRoleRequest = {
  roleArn: DEPLOY_ROLE_ARN,
  region: undefined,
  sessionName: 'timeout-test',
  sourceIdentity: 'timeout-test',
  tags: [],
  transitiveTagKeys: [],
  durationSeconds: 900,
  sessionPolicy: undefined,
  policyArns: [],
};

describe('STS that never answers', () => {
  it('AssumeRole fails with ERR_STS_UNAVAILABLE after max_attempts × http_timeout_ms', async () => {
    const sts = new StsCredentialIssuer({ defaultRegion: 'us-east-1', endpoint: hung.endpoint, maxAttempts: 2, httpTimeoutMs: 300, credentials });
    const before = hung.requests.length;
    try {
      const { error, ms } = await settle(sts.assumeRole(assumeRoleRequest), 5000);
      expect(error).toBeInstanceOf(BrokerError);
      expect((error as BrokerError).code).toBe('ERR_STS_UNAVAILABLE');
      expect(hung.requests.length - before).toBe(2); // each attempt timed out; the SDK retried once
      expect(ms).toBeGreaterThanOrEqual(2 * 300 - 20);
      expect(ms).toBeLessThan(3000);
    } finally {
      sts.destroy();
    }
  });

  it('an exchange answers 503 ERR_STS_UNAVAILABLE with Retry-After long before the request timeout, and issues nothing', async () => {
    const tb = await startTestBroker({ issuer, config: { aws: { sts_endpoint: hung.endpoint, http_timeout_ms: 500, max_attempts: 2 } } });
    try {
      const token = await issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE });
      const started = performance.now();
      const res = await requestCredentials(tb.url, token);
      const ms = performance.now() - started;
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('ERR_STS_UNAVAILABLE');
      expect(res.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
      expect(res.text).not.toMatch(/AccessKeyId|SecretAccessKey|SessionToken/);
      expect(ms).toBeLessThan(5000); // server.request_timeout_ms is 15 s
      expect(tb.audit.filter((r) => r.decision === 'allow')).toHaveLength(0);
    } finally {
      await tb.close();
    }
  });
});

describe('IAM that never answers', () => {
  const iam = () => createIamKeys({ region: 'us-east-1', iamEndpoint: hung.endpoint, stsEndpoint: hung.endpoint, credentials, httpTimeoutMs: 300, maxAttempts: 2, throttleBaseMs: 1 });

  const calls: Array<{ op: string; call: (i: ReturnType<typeof iam>) => Promise<unknown> }> = [
    { op: 'GetUser', call: (i) => i.getUser('u') },
    { op: 'ListUsers', call: (i) => i.listUsers('/ci/') },
    { op: 'ListAccessKeys', call: (i) => i.listAccessKeys('u') },
    { op: 'UpdateAccessKey', call: (i) => i.setAccessKeyStatus('u', 'AKIAOLD', 'Inactive') },
    { op: 'DeleteAccessKey', call: (i) => i.deleteAccessKey('u', 'AKIAOLD') },
    { op: 'GetAccessKeyLastUsed', call: (i) => i.getAccessKeyLastUsed('AKIAOLD') },
  ];

  it.each(calls)('$op fails with the transient code ERR_IAM_UNAVAILABLE once the timeout passes', async ({ op, call }) => {
    const { error, ms } = await settle(call(iam()), 5000);
    expect(error).toBeInstanceOf(RotationError);
    expect(error).toMatchObject({ code: 'ERR_IAM_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toBe(`IAM ${op}: no answer within 300 ms`);
    expect(ms).toBeLessThan(3000);
  });

  it('CreateAccessKey fails after one attempt: a retry could create a second key', async () => {
    const before = hung.requests.length;
    const { error, ms } = await settle(iam().createAccessKey('u'), 5000);
    expect(error).toMatchObject({ code: 'ERR_IAM_UNAVAILABLE', retryable: true });
    expect(hung.requests.length - before).toBe(1);
    expect(ms).toBeLessThan(2000);
  });

  it('GetCallerIdentity signed with a new key (rotation verify) fails with ERR_STS once the timeout passes', async () => {
    const key = { userName: 'u', accessKeyId: 'AKIANEW', secretAccessKey: new SecretValue('not-a-real-secret'), createdAt: new Date() };
    const { error, ms } = await settle(iam().callerIdentityWith(key), 5000);
    expect(error).toMatchObject({ code: 'ERR_STS', retryable: true });
    expect((error as Error).message).toContain('no answer within 300 ms');
    expect((error as Error).message).not.toContain('not-a-real-secret');
    expect(ms).toBeLessThan(2000);
  });

  it('revoke-sessions (PutRolePolicy) fails with a TimeoutError once the timeout passes', async () => {
    // revoke-sessions signs with the broker's own credentials from the SDK's default chain.
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
    const { error, ms } = await settle(revokeOlderSessions(DEPLOY_ROLE_ARN, { region: 'us-east-1', endpoint: hung.endpoint, httpTimeoutMs: 300, maxAttempts: 1 }), 5000);
    vi.unstubAllEnvs();
    // A stable, transient code for the admin API to answer with (503, retry), not a raw SDK error.
    expect(error).toMatchObject({ code: 'ERR_IAM_UNAVAILABLE', status: 503 });
    expect(ms).toBeLessThan(2000);
  });
});
