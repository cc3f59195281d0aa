// The lean AssumeRole path signs its requests with AWS's own SigV4 signer; moto, told to enforce
// authentication, checks every signature against the IAM keys it holds and the caller's IAM
// policy — so a wrong signature, wrong credentials or a missing permission are refused for real.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IAMClient, AttachUserPolicyCommand, CreateAccessKeyCommand, CreatePolicyCommand, CreateRoleCommand, CreateUserCommand } from '@aws-sdk/client-iam';
import { callerArn, startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, TEST_AUDIENCE, DEPLOY_ROLE_ARN } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { StsCredentialIssuer, type AssumeRoleRequest } from '../../server/src/aws/sts.js';
import { createBroker } from '../../server/src/broker.js';
import { parseConfig } from '../../server/src/config/load.js';
import { createLogger } from '../../server/src/log.js';
import { MemoryAuditSink } from '../../server/src/audit/sinks.js';
import { Writable } from 'node:stream';

let moto: Moto;
let issuer: TestIssuer;
let brokerKey: { accessKeyId: string; secretAccessKey: string };

const request = (over: Partial<AssumeRoleRequest> = {}): AssumeRoleRequest => ({
  roleArn: DEPLOY_ROLE_ARN,
  region: undefined,
  sessionName: 'gh-487920697-1-1',
  sourceIdentity: 'gh-487920697-583231',
  // Values that need escaping in a form body and in the canonical request.
  tags: [
    { Key: 'ref', Value: 'refs/heads/release/2024 é+=@' },
    { Key: 'repository', Value: 'octo-org/octo repo' },
  ],
  transitiveTagKeys: ['ref'],
  durationSeconds: 900,
  sessionPolicy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] }),
  policyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
  ...over,
});

beforeAll(async () => {
  // Six unauthenticated calls set IAM up; from the seventh on, moto checks every signature against
  // the keys it holds, the caller's IAM policies, and the role's trust policy.
  [moto, issuer] = await Promise.all([startMoto({ authAfter: 6 }), startIssuer()]);
  const iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'AKIDSETUP', secretAccessKey: 'setup' } });
  const user = await iam.send(new CreateUserCommand({ UserName: 'credbroker-broker' }));
  const key = await iam.send(new CreateAccessKeyCommand({ UserName: 'credbroker-broker' }));
  const actions = ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'];
  const policy = await iam.send(
    new CreatePolicyCommand({ PolicyName: 'assume-targets', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }) }),
  );
  await iam.send(new AttachUserPolicyCommand({ UserName: 'credbroker-broker', PolicyArn: policy.Policy!.Arn! }));
  const trusts = (principal: string) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: principal }, Action: actions }] });
  await iam.send(new CreateRoleCommand({ RoleName: 'deploy', Path: '/credbroker/', AssumeRolePolicyDocument: trusts(user.User!.Arn!) }));
  // A role whose trust policy names someone else.
  await iam.send(new CreateRoleCommand({ RoleName: 'other', Path: '/credbroker/', AssumeRolePolicyDocument: trusts('arn:aws:iam::123456789012:user/someone-else') }));
  iam.destroy();
  brokerKey = { accessKeyId: key.AccessKey!.AccessKeyId!, secretAccessKey: key.AccessKey!.SecretAccessKey! };
});
afterAll(async () => {
  await Promise.all([issuer?.close(), moto?.stop()]);
});

describe('AssumeRole signed by the lean Query client, checked by moto', () => {
  it('is accepted with every kind of parameter (tags, transitive keys, session and managed policies), and the credentials work', async () => {
    const sts = new StsCredentialIssuer({ defaultRegion: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, httpTimeoutMs: 5000, credentials: brokerKey });
    try {
      const creds = await sts.assumeRole(request());
      expect(creds.accessKeyId).toMatch(/^ASIA/);
      expect(creds.assumedRoleArn).toBe('arn:aws:sts::123456789012:assumed-role/deploy/gh-487920697-1-1');
      expect(creds.expiration.getTime()).toBeGreaterThan(Date.now());
      expect(await callerArn(moto, { AccessKeyId: creds.accessKeyId, SecretAccessKey: creds.secretAccessKey, SessionToken: creds.sessionToken })).toBe(creds.assumedRoleArn);
    } finally {
      sts.destroy();
    }
  });

  it('is refused with a wrong secret (the signature does not match): 500 ERR_STS_CREDENTIALS, not retried', async () => {
    const sts = new StsCredentialIssuer({ defaultRegion: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 3, httpTimeoutMs: 5000, credentials: { ...brokerKey, secretAccessKey: `${brokerKey.secretAccessKey}x` } });
    try {
      await expect(sts.assumeRole(request())).rejects.toMatchObject({ code: 'ERR_STS_CREDENTIALS', status: 500, detail: { sts_error: 'SignatureDoesNotMatch', http_status: 403 } });
    } finally {
      sts.destroy();
    }
  });

  it('is refused with an access key AWS does not know: 500 ERR_STS_CREDENTIALS', async () => {
    const sts = new StsCredentialIssuer({ defaultRegion: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 3, httpTimeoutMs: 5000, credentials: { accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: brokerKey.secretAccessKey } });
    try {
      await expect(sts.assumeRole(request())).rejects.toMatchObject({ code: 'ERR_STS_CREDENTIALS', detail: { sts_error: 'InvalidClientTokenId', http_status: 403 } });
    } finally {
      sts.destroy();
    }
  });

  it('is refused when the broker identity may not assume the role: 502 ERR_STS_ACCESS_DENIED', async () => {
    const sts = new StsCredentialIssuer({ defaultRegion: 'us-east-1', endpoint: moto.endpoint, maxAttempts: 1, httpTimeoutMs: 5000, credentials: brokerKey });
    try {
      await expect(sts.assumeRole(request({ roleArn: 'arn:aws:iam::123456789012:role/credbroker/other' }))).rejects.toMatchObject({ code: 'ERR_STS_ACCESS_DENIED', detail: { sts_error: 'AccessDenied' } });
    } finally {
      sts.destroy();
    }
  });

  it('works end to end through the broker, with the broker identity from the SDK credential chain (environment)', async () => {
    const { config } = parseConfig(
      JSON.stringify({
        server: { port: 0 },
        aws: { region: 'us-east-1', sts_endpoint: moto.endpoint, role_chaining: 'never' },
        issuers: { test: { url: issuer.url, audiences: [TEST_AUDIENCE], allow_insecure_http: true, preset: 'github-actions' } },
        roles: { deploy: { arn: DEPLOY_ROLE_ARN, allow: [{ issuer: 'test', claims: { repository_owner_id: '9919', repository_id: '487920697' } }] } },
      }),
    );
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = brokerKey.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = brokerKey.secretAccessKey;
    const broker = createBroker(config, { logger: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }), audit: new MemoryAuditSink() });
    try {
      await broker.start();
      const { url } = await broker.listen(0, '127.0.0.1');
      const res = await requestCredentials(url, await issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE }));
      expect(res.status).toBe(200);
      expect(await callerArn(moto, res.body)).toMatch(/^arn:aws:sts::123456789012:assumed-role\/deploy\/gh-487920697-/);
    } finally {
      await broker.close();
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });
});
