// A broker started without AWS credentials of its own (no environment keys, no profile, no task or
// instance role): it says so at start, and every exchange is 500 ERR_STS_CREDENTIALS at once, with
// no call to STS and no retry by the client — not 503 ERR_STS_UNAVAILABLE and four retries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { startServe, until, type ServeProcess } from '../support/serve-process.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';

const root = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-nocreds-'));
let issuer: TestIssuer;
let sts: FakeSts;
let serve: ServeProcess;

/** Everything the SDK's provider chain could find, taken away (IMDS off: no instance role here). */
const NO_AWS = {
  AWS_ACCESS_KEY_ID: '',
  AWS_SECRET_ACCESS_KEY: '',
  AWS_SESSION_TOKEN: '',
  AWS_PROFILE: '',
  AWS_CONFIG_FILE: path.join(dir, 'no-config'),
  AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
  AWS_WEB_IDENTITY_TOKEN_FILE: '',
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
  AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
  AWS_EC2_METADATA_DISABLED: 'true',
};

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
  const file = path.join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      'server: { port: 0 }',
      `aws: { region: us-east-1, sts_endpoint: ${JSON.stringify(sts.endpoint)}, role_chaining: never }`,
      'issuers:',
      `  test: { url: "${issuer.url}", audiences: [${TEST_AUDIENCE}], allow_insecure_http: true }`,
      'roles:',
      '  deploy:',
      '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
      '    allow: [{ issuer: test, claims: { repository_id: "487920697" } }]',
    ].join('\n'),
  );
  serve = await startServe(file, NO_AWS);
});
afterAll(async () => {
  await serve?.stop();
  await Promise.all([issuer?.close(), sts?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const token = () => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE });

describe('a broker without AWS credentials of its own', () => {
  it('says so at start, as a JSON warning line that names the code exchanges will get', async () => {
    await until(() => serve.stderr().includes('has no AWS credentials of its own'), 15_000, serve.stderr);
    const line = serve.stderr().split('\n').find((l) => l.includes('has no AWS credentials of its own'))!;
    const parsed = JSON.parse(line) as { level: string; msg: string; error: string };
    expect(parsed.level).toBe('warn');
    expect(parsed.msg).toContain('500 ERR_STS_CREDENTIALS');
    expect(parsed.error).toMatch(/credential/i);
  });

  it('answers 500 ERR_STS_CREDENTIALS without calling STS, and the client stops at once (exit 6, one attempt)', async () => {
    const res = await requestCredentials(serve.url, await token());
    expect([res.status, res.body.error.code]).toEqual([500, 'ERR_STS_CREDENTIALS']);
    expect(res.body.error.message).toBe('The broker has no usable AWS credentials of its own.');
    expect(res.headers.get('retry-after')).toBeNull();
    expect(res.text).not.toContain('AccessKeyId');
    expect(sts.requests).toHaveLength(0);

    // The real Node client, with retries allowed: one request, then a permanent failure (a retry
    // would end in "broker unavailable after 4 attempt(s)").
    const client = spawnSync(process.execPath, ['client/credbroker-client.mjs', '--url', serve.url, '--role', 'deploy', '--retries', '3'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH, HOME: dir, GITLAB_CI: 'true', CREDBROKER_ID_TOKEN: await token() },
    });
    expect(client.status).toBe(6);
    expect(client.stderr).toMatch(/^credbroker-client: error: the broker cannot issue credentials, and retrying will not help: The broker has no usable AWS credentials of its own\. \(code ERR_STS_CREDENTIALS, request id [0-9a-f-]{36}, HTTP 500\)\n$/);
    expect(sts.requests).toHaveLength(0);
  });
});

describe('credentials that appear after the start', () => {
  it('are picked up by the next exchange, without a restart (the SDK chain is asked again)', async () => {
    const { StsCredentialIssuer } = await import('../../server/src/aws/sts.js');
    const saved = { ...process.env };
    Object.assign(process.env, NO_AWS);
    const issuer = new StsCredentialIssuer({ defaultRegion: 'us-east-1', endpoint: sts.endpoint, maxAttempts: 3, httpTimeoutMs: 5000 });
    const req = { roleArn: 'arn:aws:iam::123456789012:role/credbroker/deploy', region: undefined, sessionName: 's', sourceIdentity: 's', tags: [], transitiveTagKeys: [], durationSeconds: 900, sessionPolicy: undefined, policyArns: [] };
    try {
      sts.requests.length = 0;
      expect(await issuer.credentialProblem()).toMatch(/credential/i);
      await expect(issuer.assumeRole(req)).rejects.toMatchObject({ code: 'ERR_STS_CREDENTIALS', status: 500 });
      expect(sts.requests).toHaveLength(0);
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDAPPEAREDLATER000', AWS_SECRET_ACCESS_KEY: 'appeared-later-not-a-secret' });
      expect(await issuer.credentialProblem()).toBeUndefined();
      const creds = await issuer.assumeRole(req);
      expect(creds.accessKeyId).toMatch(/^ASIA/);
      expect(sts.requests).toHaveLength(1);
    } finally {
      issuer.destroy();
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
