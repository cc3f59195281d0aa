// The GitHub Action, run the way the runner runs it: `node <main>` with the inputs as INPUT_*
// variables, $GITHUB_ENV / $GITHUB_OUTPUT files, $RUNNER_TEMP, and $ACTIONS_ID_TOKEN_REQUEST_* pointed
// at a local token endpoint that mints real tokens from the issuer the broker trusts. The next
// "step" is the real AWS CLI, with the environment the runner would build from $GITHUB_ENV.
// Set CREDBROKER_TEST_NODES (paths, ':'-separated) to also run it on other Node versions (node24).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { startGithubTokenEndpoint, type GithubTokenEndpoint } from '../support/ci-providers/index.js';
import { DEPLOY_ROLE_ARN, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { EXIT, expectNoSecrets, fileMode, run, tempDir } from './helpers.js';
import { ASSUMED_ROLE, callerArn, startStack, type Stack } from './stack.js';

const ACTION = parse(readFileSync('action.yml', 'utf8')) as {
  inputs: Record<string, { required?: boolean; default?: string }>;
  outputs: Record<string, unknown>;
  runs: { using: string; main: string };
};
const NODES = [process.execPath, ...(process.env.CREDBROKER_TEST_NODES ?? '').split(':').filter(Boolean)];

let stack: Stack;
let github: GithubTokenEndpoint;
let tmp: { dir: string; cleanup(): void };

beforeAll(async () => {
  stack = await startStack();
  github = await startGithubTokenEndpoint(async (aud) => stack.issuer.sign({ ...providerClaims('github-actions'), aud: aud ?? 'none' }));
  tmp = tempDir();
});
afterAll(async () => {
  await github?.close();
  await stack?.close();
  tmp?.cleanup();
});

interface Step {
  code: number | null;
  stdout: string;
  stderr: string;
  githubEnv: string;
  githubOutput: string;
  runnerTemp: string;
}

/** One action step: inputs as the runner passes them (declared defaults filled in, unset inputs empty). */
async function runAction(node: string, name: string, inputs: Record<string, string>): Promise<Step> {
  const dir = path.join(tmp.dir, name);
  const runnerTemp = path.join(dir, '_temp');
  mkdirSync(runnerTemp, { recursive: true });
  const githubEnv = path.join(runnerTemp, '_runner_file_commands', 'set_env');
  const githubOutput = path.join(runnerTemp, '_runner_file_commands', 'set_output');
  mkdirSync(path.dirname(githubEnv), { recursive: true });
  writeFileSync(githubEnv, '');
  writeFileSync(githubOutput, '');
  const env: Record<string, string> = { HOME: dir, RUNNER_TEMP: runnerTemp, GITHUB_ENV: githubEnv, GITHUB_OUTPUT: githubOutput, ...github.env };
  for (const [k, spec] of Object.entries(ACTION.inputs)) env[`INPUT_${k.toUpperCase()}`] = inputs[k] ?? spec.default ?? '';
  const r = await run(node, [ACTION.runs.main], env, { cwd: process.cwd(), timeoutMs: 60_000 });
  return { ...r, githubEnv: readFileSync(githubEnv, 'utf8'), githubOutput: readFileSync(githubOutput, 'utf8'), runnerTemp };
}

/** NAME=value lines, as the runner reads $GITHUB_ENV / $GITHUB_OUTPUT (we never write the heredoc form). */
const keyValues = (text: string) => Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

it('action.yml: a JavaScript action on node24 whose entry point is the committed bundle', () => {
  expect(ACTION.runs.using).toBe('node24');
  expect(statSync(ACTION.runs.main).isFile()).toBe(true);
  expect(Object.keys(ACTION.inputs)).toEqual(['url', 'role', 'duration', 'audience', 'region', 'output', 'profile']);
  expect(Object.keys(ACTION.outputs)).toEqual(['aws-account-id', 'role-arn', 'expiration']);
  expect(ACTION.inputs.url!.required && ACTION.inputs.role!.required).toBe(true);
});

describe.each(NODES)('run by %s', (node) => {
  it('output env: masks first, exports for the next steps, sets the outputs; the next step\'s AWS CLI is the assumed role', async () => {
    const s = await runAction(node, `env-${NODES.indexOf(node)}`, { url: stack.broker.url, role: 'deploy', audience: TEST_AUDIENCE, region: 'eu-west-1', duration: '1800' });
    expect(s.stderr).toBe('');
    expect(s.code).toBe(EXIT.OK);
    const exported = keyValues(s.githubEnv);
    expect(Object.keys(exported)).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION', 'AWS_REGION', 'AWS_DEFAULT_REGION']);
    const secrets = { AccessKeyId: exported.AWS_ACCESS_KEY_ID!, SecretAccessKey: exported.AWS_SECRET_ACCESS_KEY!, SessionToken: exported.AWS_SESSION_TOKEN! };
    // The runner masks a value from the moment it reads ::add-mask::, so the masks come first.
    const lines = s.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual([`::add-mask::${secrets.AccessKeyId}`, `::add-mask::${secrets.SecretAccessKey}`, `::add-mask::${secrets.SessionToken}`]);
    expectNoSecrets('the rest of the log', lines.slice(3).join('\n') + s.stderr, secrets);
    expect(lines[3]).toMatch(/^credbroker: credentials for arn:aws:sts::123456789012:assumed-role\/deploy\/\S+ expire at \S+ \(in the environment of the next steps\)$/);
    const outputs = keyValues(s.githubOutput);
    expect(outputs).toEqual({ 'aws-account-id': '123456789012', 'role-arn': DEPLOY_ROLE_ARN, expiration: exported.AWS_CREDENTIAL_EXPIRATION });
    expect(Date.parse(outputs.expiration!) - Date.now()).toBeGreaterThan(1700_000);

    // The next step: the runner adds $GITHUB_ENV's variables to its environment.
    const next = await callerArn({ ...stack.stepEnv(s.runnerTemp), ...exported, AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' });
    expect(next.stderr).toBe('');
    expect(next.arn).toMatch(ASSUMED_ROLE);
  });

  it('output profile: no value in the environment, a 0600 credentials file in $RUNNER_TEMP that the next step\'s AWS CLI uses', async () => {
    const s = await runAction(node, `profile-${NODES.indexOf(node)}`, { url: stack.broker.url, role: 'deploy', audience: TEST_AUDIENCE, region: 'eu-west-1', output: 'profile' });
    expect(s.code, s.stdout).toBe(EXIT.OK);
    const exported = keyValues(s.githubEnv);
    const file = path.join(s.runnerTemp, 'credbroker', 'aws-credentials');
    expect(exported).toEqual({ AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'credbroker', AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-1' });
    expect(fileMode(file)).toBe(0o600);
    expect(s.stdout).toMatch(/^(::add-mask::\S+\n){3}credbroker: credentials for \S+ expire at \S+ \(profile credbroker\)\n$/);
    const env = { ...stack.stepEnv(s.runnerTemp), ...exported };
    delete (env as Record<string, string | undefined>).AWS_DEFAULT_REGION;
    const next = await callerArn({ ...env, AWS_DEFAULT_REGION: 'eu-west-1' });
    expect(next.stderr).toBe('');
    expect(next.arn).toMatch(ASSUMED_ROLE);
  });
});

describe('failures', () => {
  it('a token the policy denies: the step fails with the broker\'s code, as a workflow ::error::, and exports nothing', async () => {
    const denying = await startGithubTokenEndpoint(async (aud) => stack.issuer.sign({ ...providerClaims('github-actions'), repository_id: '1', aud: aud ?? 'none' }));
    try {
      const saved = github;
      github = denying;
      const s = await runAction(process.execPath, 'denied', { url: stack.broker.url, role: 'deploy', audience: TEST_AUDIENCE }).finally(() => {
        github = saved;
      });
      expect(s.code).toBe(EXIT.DENIED);
      expect(s.stdout).toMatch(/^::error title=credbroker::access denied by the broker: .*\(code ERR_POLICY_DENIED, request id [^,]+, HTTP 403\)\n$/);
      expect(s.githubEnv).toBe('');
      expect(s.githubOutput).toBe('');
    } finally {
      await denying.close();
    }
  });

  it('without id-token: write (no request URL): exit 3 with the hint, no broker call', async () => {
    const before = stack.exchanges().length;
    const dir = path.join(tmp.dir, 'no-permission');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'env'), '');
    writeFileSync(path.join(dir, 'out'), '');
    const r = await run(process.execPath, [ACTION.runs.main], { INPUT_URL: stack.broker.url, INPUT_ROLE: 'deploy', INPUT_OUTPUT: 'env', GITHUB_ACTIONS: 'true', GITHUB_ENV: path.join(dir, 'env'), GITHUB_OUTPUT: path.join(dir, 'out'), RUNNER_TEMP: dir });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stdout).toBe('::error title=credbroker::ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: give the job "permissions: id-token: write"\n');
    expect(stack.exchanges().length).toBe(before);
  });

  it('an invalid input: exit 2 before any token is requested', async () => {
    const before = github.requests.length;
    const s = await runAction(process.execPath, 'bad-input', { url: stack.broker.url, role: 'deploy', output: 'dotenv' });
    expect(s.code).toBe(EXIT.USAGE);
    expect(s.stdout).toBe('::error title=credbroker::input "output" must be env or profile\n');
    expect(github.requests.length).toBe(before);
  });
});
