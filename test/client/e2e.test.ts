// End to end: the client against the real broker (test/support/broker.ts) with moto as STS, and
// real AWS clients consuming its outputs — the AWS CLI through a credential_process profile, after
// `eval` of the env output and through a written profile; SDK v3 fromEnv and fromProcess. Each must
// come back from moto's GetCallerIdentity as the assumed role.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fromProcess } from '@aws-sdk/credential-providers';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, TEST_AUDIENCE, DEPLOY_ROLE_ARN, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { venvBin } from '../support/venv.js';
import { startGithubTokenEndpoint, type GithubTokenEndpoint } from '../support/ci-providers/index.js';
import { EXIT, NODE_CLIENT, POSIX_SH, SH_CLIENT, expectNoSecrets, fileMode, run, runClient, tempDir } from './helpers.js';

let moto: Moto;
let issuer: TestIssuer;
let tb: TestBroker;
let github: GithubTokenEndpoint;
let tmp: { dir: string; cleanup(): void };

const ASSUMED_ROLE = /^arn:aws:sts::123456789012:assumed-role\/deploy\/[\w+=,.@-]+$/;
const AWS = venvBin('aws');
const githubClaims = (extra: Record<string, unknown> = {}) => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });

beforeAll(async () => {
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  tb = await startTestBroker({ moto, issuer, issuerSettings: { test: { preset: 'github-actions' } } });
  // GitHub's token endpoint, minting real tokens from the issuer the broker trusts, for the audience asked.
  github = await startGithubTokenEndpoint(async (audience) => issuer.sign(githubClaims({ aud: audience })));
  tmp = tempDir();
});
afterAll(async () => {
  await Promise.all([tb?.close(), github?.close()]);
  await Promise.all([issuer?.close(), moto?.stop()]);
  tmp?.cleanup();
});

const issued = () => tb.audit.filter((r) => r.event === 'exchange' && r.decision === 'allow').length;

/** The environment of a GitHub job step talking to this broker; AWS tools pointed at moto, nothing else. */
function jobEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: tmp.dir,
    ...github.env,
    CREDBROKER_URL: tb.url,
    CREDBROKER_ROLE: 'deploy',
    CREDBROKER_AUDIENCE: TEST_AUDIENCE,
    AWS_CONFIG_FILE: path.join(tmp.dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp.dir, 'no-credentials'),
    AWS_ENDPOINT_URL_STS: moto.endpoint,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

async function awsCallerArn(args: string[], env: Record<string, string>): Promise<string> {
  const r = await run(AWS, ['sts', 'get-caller-identity', '--output', 'json', ...args], env, { timeoutMs: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { Arn: string }).Arn;
}

describe('the AWS CLI', () => {
  it('works after eval of the Node client env output', async () => {
    const r = await run(POSIX_SH, ['-c', `eval "$("${process.execPath}" "${NODE_CLIENT}" --format env)" && exec "${AWS}" sts get-caller-identity --output json`], jobEnv(), { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).Arn).toMatch(ASSUMED_ROLE);
  });

  it('works after eval of the sh client env output', async () => {
    const r = await run(POSIX_SH, ['-c', `eval "$(${POSIX_SH} "${SH_CLIENT}")" && exec "${AWS}" sts get-caller-identity --output json`], jobEnv(), { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).Arn).toMatch(ASSUMED_ROLE);
  });

  it('works through a profile whose credential_process is the client, and reuses the cached credentials', async () => {
    const config = path.join(tmp.dir, 'aws-config-process');
    writeFileSync(config, `[profile ci]\ncredential_process = ${process.execPath} ${NODE_CLIENT} --format credential-process\n`);
    const env = jobEnv({ AWS_CONFIG_FILE: config, CREDBROKER_CACHE_DIR: path.join(tmp.dir, 'cli-cache') });
    const before = issued();
    const first = await awsCallerArn(['--profile', 'ci'], env);
    const second = await awsCallerArn(['--profile', 'ci'], env);
    expect(first).toMatch(ASSUMED_ROLE);
    expect(second).toBe(first);
    expect(issued() - before).toBe(1); // the second command was served from the 0600 cache
  });

  it('re-exchanges near expiry with a fresh GitHub token each time, which the real replay ledger accepts', async () => {
    const config = path.join(tmp.dir, 'aws-config-refresh');
    // A refresh window longer than any session: every invocation is "near expiry".
    writeFileSync(config, `[profile ci]\ncredential_process = ${process.execPath} ${NODE_CLIENT} --format credential-process --refresh-before 43200\n`);
    const env = jobEnv({ AWS_CONFIG_FILE: config, CREDBROKER_CACHE_DIR: path.join(tmp.dir, 'refresh-cache') });
    const before = issued();
    expect(await awsCallerArn(['--profile', 'ci'], env)).toMatch(ASSUMED_ROLE);
    expect(await awsCallerArn(['--profile', 'ci'], env)).toMatch(ASSUMED_ROLE);
    expect(issued() - before).toBe(2);
  });

  it('works through a credential_process that reads a one-time token from an env var (cache prevents a replay)', async () => {
    const config = path.join(tmp.dir, 'aws-config-envtoken');
    writeFileSync(config, `[profile ci]\ncredential_process = ${process.execPath} ${NODE_CLIENT} --format credential-process --token-env JOB_ID_TOKEN\n`);
    const env = jobEnv({ AWS_CONFIG_FILE: config, CREDBROKER_CACHE_DIR: path.join(tmp.dir, 'env-cache'), JOB_ID_TOKEN: await issuer.sign(githubClaims()) });
    expect(await awsCallerArn(['--profile', 'ci'], env)).toMatch(ASSUMED_ROLE);
    expect(await awsCallerArn(['--profile', 'ci'], env)).toMatch(ASSUMED_ROLE);
  });

  it('works with the profile the client writes to the shared credentials file (0600)', async () => {
    const credentials = path.join(tmp.dir, 'aws-credentials');
    const r = await runClient(['--format', 'profile', '--profile', 'job'], jobEnv({ AWS_SHARED_CREDENTIALS_FILE: credentials }));
    expect(r.code).toBe(EXIT.OK);
    expect(fileMode(credentials)).toBe(0o600);
    expect(await awsCallerArn(['--profile', 'job'], jobEnv({ AWS_SHARED_CREDENTIALS_FILE: credentials }))).toMatch(ASSUMED_ROLE);
  });
});

describe('the AWS SDK for JavaScript v3', () => {
  it('fromEnv: a Node program run after eval of the env output is the assumed role', async () => {
    const program = [
      "import { fromEnv } from '@aws-sdk/credential-providers';",
      "import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';",
      "const sts = new STSClient({ region: 'us-east-1', endpoint: process.env.AWS_ENDPOINT_URL_STS, credentials: fromEnv() });",
      'const id = await sts.send(new GetCallerIdentityCommand({}));',
      'process.stdout.write(id.Arn);',
    ].join('\n');
    const file = path.join(process.cwd(), 'test/client', `.fromenv-${process.pid}.mjs`);
    writeFileSync(file, program);
    try {
      // (The SDK warns on stderr that it will drop Node 20 in 2027; that is not the client's output.)
      const env = jobEnv({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
      const r = await run(POSIX_SH, ['-c', `eval "$("${process.execPath}" "${NODE_CLIENT}")" && exec "${process.execPath}" "${file}"`], env, { timeoutMs: 60_000, cwd: process.cwd() });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(ASSUMED_ROLE);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('fromProcess: the SDK runs the client as credential_process and calls STS as the assumed role', async () => {
    const config = path.join(tmp.dir, 'sdk-config');
    writeFileSync(config, `[profile sdk]\ncredential_process = ${process.execPath} ${NODE_CLIENT} --format credential-process --no-cache\n`);
    // The SDK starts the process with this process's environment, as in a CI job.
    const saved = { ...process.env };
    Object.assign(process.env, jobEnv());
    try {
      const credentials = fromProcess({ profile: 'sdk', configFilepath: config, filepath: path.join(tmp.dir, 'none') });
      const creds = await credentials();
      expect(creds.expiration).toBeInstanceOf(Date);
      const sts = new STSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials });
      const id = await sts.send(new GetCallerIdentityCommand({}));
      sts.destroy();
      expect(id.Arn).toMatch(ASSUMED_ROLE);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

describe('with the real broker', () => {
  it('json output names the role from the broker config, the duration asked for, and the session moto reports', async () => {
    const r = await runClient(['--format', 'json', '--duration', '1800'], jobEnv());
    expect(r.code).toBe(EXIT.OK);
    const out = JSON.parse(r.stdout);
    expect(out.RoleArn).toBe(DEPLOY_ROLE_ARN);
    expect(out.DurationSeconds).toBe(1800);
    expect(out.AssumedRoleArn).toMatch(ASSUMED_ROLE);
    const sts = new STSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: out.AccessKeyId, secretAccessKey: out.SecretAccessKey, sessionToken: out.SessionToken } });
    expect((await sts.send(new GetCallerIdentityCommand({}))).Arn).toBe(out.AssumedRoleArn);
    sts.destroy();
    expectNoSecrets('broker logs', tb.logs.join('\n'), { SecretAccessKey: out.SecretAccessKey, SessionToken: out.SessionToken });
  });

  it('a token the policy does not allow: exit 5 with ERR_POLICY_DENIED and the request id the broker audited', async () => {
    const token = await issuer.sign(githubClaims({ repository_id: '1' }));
    const r = await runClient([], jobEnv({ JOB_ID_TOKEN: token, CREDBROKER_TOKEN_ENV: 'JOB_ID_TOKEN' }));
    expect(r.code).toBe(EXIT.DENIED);
    const denied = tb.audit.filter((a) => a.event === 'exchange' && a.decision === 'deny').at(-1)!;
    expect(r.stderr).toMatch(/^credbroker-client: error: access denied by the broker.*\(code ERR_POLICY_DENIED, request id [^,]+, HTTP 403\)\n$/);
    expect(r.stderr).toContain(`request id ${denied.request_id}`);
    expectNoSecrets('stderr', r.stderr, { OIDCToken: token });
  });

  it('a one-time token used twice: the second run exits 4 with ERR_TOKEN_REPLAYED', async () => {
    const env = jobEnv({ JOB_ID_TOKEN: await issuer.sign(githubClaims()), CREDBROKER_TOKEN_ENV: 'JOB_ID_TOKEN' });
    expect((await runClient([], env)).code).toBe(EXIT.OK);
    const again = await runClient([], env);
    expect(again.code).toBe(EXIT.TOKEN_REJECTED);
    expect(again.stderr).toContain('code ERR_TOKEN_REPLAYED');
    expect(again.stderr).toContain('generic cannot mint a fresh token');
  });

  it('on GitHub, a replayed token is recovered by fetching a fresh one', async () => {
    // Pre-spend the token the endpoint will hand out first: the client must recover by itself.
    const spent = await issuer.sign(githubClaims());
    const pre = await runClient([], jobEnv({ JOB_ID_TOKEN: spent, CREDBROKER_TOKEN_ENV: 'JOB_ID_TOKEN' }));
    expect(pre.code).toBe(EXIT.OK);
    const replaying = await startGithubTokenEndpoint(
      (() => {
        let first = true;
        return async (aud) => {
          if (first) {
            first = false;
            return spent;
          }
          return issuer.sign(githubClaims({ aud }));
        };
      })(),
    );
    try {
      const r = await runClient(['-v'], jobEnv(replaying.env));
      expect(r.code).toBe(EXIT.OK);
      expect(r.stderr).toContain('ERR_TOKEN_REPLAYED: fetching a fresh OIDC token once');
      expect(replaying.requests).toHaveLength(2);
    } finally {
      await replaying.close();
    }
  });
});
