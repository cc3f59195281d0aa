// Verification really depends on the new key: against moto, GetCallerIdentity signed with a key
// IAM does not know answers a different identity, and verification fails. (moto does not check
// the secret's signature, nor reject Inactive keys — only the access key id is attributed.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateAccessKeyCommand, CreateUserCommand, DeleteAccessKeyCommand } from '@aws-sdk/client-iam';
import { verifySignedWithKey } from '../../../server/src/rotation/verify.js';
import { SecretValue } from '../../../server/src/rotation/secret.js';
import { startEnv, type Env } from './harness.js';

let e: Env;
beforeAll(async () => {
  e = await startEnv();
}, 120_000);
afterAll(async () => {
  await e?.close();
});

const cfg = { successes: 3, initial_backoff_ms: 1, max_backoff_ms: 5, timeout_seconds: 1 };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('verification with the new key', () => {
  it('succeeds N times in a row for a key of the user', async () => {
    await e.iamAdmin.send(new CreateUserCommand({ UserName: 'verify-me', Path: '/ci/' }));
    const k = (await e.iamAdmin.send(new CreateAccessKeyCommand({ UserName: 'verify-me' }))).AccessKey!;
    const key = { userName: 'verify-me', accessKeyId: k.AccessKeyId!, secretAccessKey: new SecretValue(k.SecretAccessKey!), createdAt: new Date() };
    const r = await verifySignedWithKey(e.iam, key, 'arn:aws:iam::123456789012:user/ci/verify-me', cfg, sleep);
    expect(r).toEqual({ attempts: 3, successes: 3 });
  });

  it('fails for a key that no longer exists (another identity answers)', async () => {
    await e.iamAdmin.send(new CreateUserCommand({ UserName: 'verify-gone', Path: '/ci/' }));
    const k = (await e.iamAdmin.send(new CreateAccessKeyCommand({ UserName: 'verify-gone' }))).AccessKey!;
    await e.iamAdmin.send(new DeleteAccessKeyCommand({ UserName: 'verify-gone', AccessKeyId: k.AccessKeyId! }));
    const key = { userName: 'verify-gone', accessKeyId: k.AccessKeyId!, secretAccessKey: new SecretValue(k.SecretAccessKey!), createdAt: new Date() };
    await expect(verifySignedWithKey(e.iam, key, 'arn:aws:iam::123456789012:user/ci/verify-gone', cfg, sleep)).rejects.toMatchObject({
      code: 'ERR_ROTATION_VERIFY_FAILED',
      message: expect.stringContaining('ARN mismatch'),
    });
  });

  it('fails when STS is unreachable, with a code and no secret in the message', async () => {
    const { createIamKeys } = await import('../../../server/src/aws/iam.js');
    const iam = createIamKeys({ region: 'us-east-1', iamEndpoint: e.moto.endpoint, stsEndpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const secret = 'not-a-real-secret-but-long-enough-000000';
    const key = { userName: 'u', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: new SecretValue(secret), createdAt: new Date() };
    const err = (await verifySignedWithKey(iam, key, 'arn:x', cfg, sleep).catch((x: unknown) => x)) as Error & { code: string };
    expect(err.code).toBe('ERR_ROTATION_VERIFY_FAILED');
    expect(err.message).toContain('ERR_STS');
    expect(err.message).not.toContain(secret);
  });
});
