// The real thing for client tests that need it: moto as STS, a local OIDC issuer, the real broker
// trusting that issuer (GitHub Actions claims, role `deploy` allowed for one repository), and the
// environment a CI step would have with the AWS CLI pointed at moto.
import path from 'node:path';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { venvBin } from '../support/venv.js';
import { run } from './helpers.js';

export const ASSUMED_ROLE = /^arn:aws:sts::123456789012:assumed-role\/deploy\/[\w+=,.@-]+$/;
export const AWS_CLI = venvBin('aws');

export interface Stack {
  moto: Moto;
  issuer: TestIssuer;
  broker: TestBroker;
  /** A signed token the broker's policy allows (or denies, with `repository_id: '1'`). */
  sign(extra?: Record<string, unknown>, opts?: { lifetimeSeconds?: number }): Promise<string>;
  /** Audit records of exchanges since `from` (an index into broker.audit). */
  exchanges(from?: number): Array<{ decision: string; code?: string; request_id?: string }>;
  /** A step's environment: the broker, and the AWS CLI pointed at moto with no other config. */
  stepEnv(home: string, extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  const broker = await startTestBroker({ moto, issuer, issuerSettings: { test: { preset: 'github-actions' } } });
  return {
    moto,
    issuer,
    broker,
    sign: (extra = {}, opts) => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra }, opts),
    exchanges: (from = 0) =>
      broker.audit.slice(from).filter((r) => r.event === 'exchange') as unknown as Array<{ decision: string; code?: string; request_id?: string }>,
    stepEnv: (home, extra = {}) => ({
      HOME: home,
      CREDBROKER_URL: broker.url,
      CREDBROKER_ROLE: 'deploy',
      CREDBROKER_AUDIENCE: TEST_AUDIENCE,
      AWS_CONFIG_FILE: path.join(home, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-aws-credentials'),
      AWS_ENDPOINT_URL_STS: moto.endpoint,
      AWS_EC2_METADATA_DISABLED: 'true',
      ...extra,
    }),
    close: async () => {
      await broker.close();
      await Promise.all([issuer.close(), moto.stop()]);
    },
  };
}

/** `aws sts get-caller-identity` as a later step would run it; the ARN it reports. */
export async function callerArn(env: Record<string, string>, args: string[] = []): Promise<{ arn?: string; code: number | null; stderr: string }> {
  const r = await run(AWS_CLI, ['sts', 'get-caller-identity', '--output', 'json', ...args], env, { timeoutMs: 60_000 });
  let arn: string | undefined;
  try {
    arn = (JSON.parse(r.stdout) as { Arn?: string }).Arn;
  } catch {
    arn = undefined;
  }
  return { arn, code: r.code, stderr: r.stderr };
}
