// Token acquisition, per CI provider, by the Node client run as a real process: each provider's
// documented protocol is served locally (GitHub's ID-token endpoint, Buildkite's agent API, Azure's
// OIDC endpoint, a `circleci` executable on PATH) or given as env/file where that is the protocol.
// The stand-in broker records the bearer token, so each test proves the provider's token arrived.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  fakeJwt,
  fakeMint,
  jwtPayload,
  startAzureOidcEndpoint,
  startBuildkiteAgentApi,
  startFakeCircleci,
  startGithubTokenEndpoint,
  type AzureOidcEndpoint,
  type BuildkiteAgentApi,
  type FakeCircleci,
  type GithubTokenEndpoint,
} from '../support/ci-providers/index.js';
import { EXIT, runClient, startFakeBroker, tempDir, type FakeBroker } from './helpers.js';
import { freePort } from '../support/moto.js';

let broker: FakeBroker;
let github: GithubTokenEndpoint;
let buildkite: BuildkiteAgentApi;
let azure: AzureOidcEndpoint;
let circleci: FakeCircleci;
const AUD = 'https://credbroker.example.test';

beforeAll(async () => {
  [broker, github, buildkite, azure, circleci] = await Promise.all([
    startFakeBroker(),
    startGithubTokenEndpoint(fakeMint('github')),
    startBuildkiteAgentApi(fakeMint('buildkite')),
    startAzureOidcEndpoint(fakeMint('azure')),
    startFakeCircleci(fakeMint('circleci')),
  ]);
});
afterAll(async () => {
  await Promise.all([broker.close(), github.close(), buildkite.close(), azure.close(), circleci.close()]);
});
afterEach(() => {
  github.failAlways(undefined);
  buildkite.failAlways(undefined);
});

const base = () => ({ CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'deploy', HOME: '/nonexistent' });
/** The token the broker saw on its most recent request. */
const lastToken = () => broker.requests.at(-1)?.token;
const brokerCalls = () => broker.requests.length;

describe('GitHub Actions', () => {
  it('requests the token from ACTIONS_ID_TOKEN_REQUEST_URL with the bearer and &audience=, and presents it to the broker', async () => {
    const before = github.requests.length;
    const r = await runClient(['--audience', AUD, '--format', 'json'], { ...base(), ...github.env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.OK);
    const req = github.requests[before]!;
    expect(req.rawQuery).toBe(`api-version=2.0&audience=${encodeURIComponent(AUD)}`);
    expect(req.headers.authorization?.toLowerCase()).toBe(`bearer ${github.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}`);
    expect(jwtPayload(lastToken()!)).toMatchObject({ provider: 'github', aud: AUD });
    expect(JSON.parse(r.stdout).AccessKeyId).toBe(broker.issued.at(-1)!.AccessKeyId);
  });

  it('asks for the broker URL as audience when none is configured', async () => {
    const r = await runClient([], { ...base(), ...github.env });
    expect(r.code).toBe(EXIT.OK);
    expect(jwtPayload(lastToken()!).aud).toBe(broker.url);
  });

  it('says to grant id-token: write when the request variables are missing', async () => {
    const before = brokerCalls();
    const r = await runClient([], { ...base(), GITHUB_ACTIONS: 'true' });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toMatch(/^credbroker-client: error: .*permissions: id-token: write.*\n$/);
    expect(brokerCalls()).toBe(before);
  });

  it('retries a token endpoint that answers 5xx, then succeeds', async () => {
    github.failNext({ status: 502, body: { message: 'bad gateway' } }, { status: 503, body: {}, headers: { 'retry-after': '0' } });
    const before = github.requests.length;
    const r = await runClient([], { ...base(), ...github.env });
    expect(r.code).toBe(EXIT.OK);
    expect(github.requests.length - before).toBe(3);
  });

  it('fails with the token-acquisition exit code when the token endpoint keeps failing, and never calls the broker', async () => {
    github.failAlways({ status: 500, body: { message: 'internal' } });
    const before = brokerCalls();
    const r = await runClient(['--retries', '1'], { ...base(), ...github.env });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toMatch(/GitHub token endpoint http:\/\/127\.0\.0\.1:\d+\/\S+ answered HTTP 500/);
    expect(r.stderr).not.toContain(github.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
    expect(brokerCalls()).toBe(before);
  });

  it('does not retry a token endpoint that rejects the request token', async () => {
    const before = github.requests.length;
    const r = await runClient([], { ...base(), ...github.env, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'not-the-right-one' });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('answered HTTP 401');
    expect(github.requests.length - before).toBe(1);
  });

  it('fails cleanly when the token endpoint is down', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await runClient(['--retries', '0'], {
        ...base(),
        GITHUB_ACTIONS: 'true',
        ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${await freePort()}/idtoken?api-version=2.0`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'x',
        HOME: dir,
      });
      expect(r.code).toBe(EXIT.TOKEN);
      expect(r.stderr).toMatch(/^credbroker-client: error: GitHub token endpoint http:\/\/127\.0\.0\.1:\d+\/idtoken failed: cannot connect\n$/);
    } finally {
      cleanup();
    }
  });
});

describe('Buildkite', () => {
  it('posts the audience and asks for the immutable id claims, with the agent token, and uses the token it returns', async () => {
    const before = buildkite.requests.length;
    const r = await runClient(['--audience', AUD], { ...base(), ...buildkite.env });
    expect(r.code).toBe(EXIT.OK);
    const req = buildkite.requests[before]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe(`/v3/jobs/${buildkite.env.BUILDKITE_JOB_ID}/oidc/tokens`);
    expect(req.headers.authorization).toBe(`Token ${buildkite.env.BUILDKITE_AGENT_ACCESS_TOKEN}`);
    expect(JSON.parse(req.body)).toEqual({ audience: AUD, claims: ['organization_id', 'pipeline_id'] });
    expect(jwtPayload(lastToken()!)).toMatchObject({ provider: 'buildkite', aud: AUD });
  });

  it('reports a missing agent token as a token-acquisition failure', async () => {
    const r = await runClient([], { ...base(), BUILDKITE: 'true', BUILDKITE_JOB_ID: 'j' });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('BUILDKITE_AGENT_ACCESS_TOKEN');
  });
});

describe('Azure Pipelines', () => {
  it('posts to SYSTEM_OIDCREQUESTURI with api-version 7.1, the service connection and SYSTEM_ACCESSTOKEN', async () => {
    const before = azure.requests.length;
    const r = await runClient([], { ...base(), ...azure.env, CREDBROKER_AZURE_SERVICE_CONNECTION_ID: azure.serviceConnectionId });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.OK);
    const req = azure.requests[before]!;
    expect(req.method).toBe('POST');
    expect(req.query.get('api-version')).toBe('7.1');
    expect(req.query.get('serviceConnectionId')).toBe(azure.serviceConnectionId);
    expect(jwtPayload(lastToken()!)).toMatchObject({ provider: 'azure', aud: 'api://AzureADTokenExchange' });
  });

  it('takes the service connection from --azure-service-connection-id too', async () => {
    const r = await runClient(['--azure-service-connection-id', azure.serviceConnectionId], { ...base(), ...azure.env });
    expect(r.code).toBe(EXIT.OK);
  });

  it('explains how to map SYSTEM_ACCESSTOKEN when it is absent', async () => {
    const r = await runClient([], { ...base(), ...azure.env, SYSTEM_ACCESSTOKEN: undefined, CREDBROKER_AZURE_SERVICE_CONNECTION_ID: azure.serviceConnectionId });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('SYSTEM_ACCESSTOKEN: $(System.AccessToken)');
  });

  it('fails with the token exit code for an unknown service connection', async () => {
    const r = await runClient(['--azure-service-connection-id', 'b5a2e0c4-0000-4000-8000-000000000000'], { ...base(), ...azure.env });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('Azure token endpoint');
    expect(r.stderr).toContain('answered HTTP 404');
  });
});

describe('CircleCI', () => {
  it('uses CIRCLE_OIDC_TOKEN_V2 when no audience is configured', async () => {
    const token = fakeJwt({ provider: 'circleci-env' });
    const r = await runClient([], { ...base(), CIRCLECI: 'true', CIRCLE_OIDC_TOKEN_V2: token });
    expect(r.code).toBe(EXIT.OK);
    expect(lastToken()).toBe(token);
  });

  it('runs `circleci run oidc get --claims {"aud":…}` for a chosen audience', async () => {
    const before = circleci.invocations().length;
    const env = { ...base(), CIRCLECI: 'true', CIRCLE_OIDC_TOKEN_V2: fakeJwt({ provider: 'wrong' }), CREDBROKER_AUDIENCE: AUD, PATH: `${circleci.binDir}:${process.env.PATH}` };
    const r = await runClient([], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.OK);
    expect(circleci.invocations().slice(before)).toEqual([['run', 'oidc', 'get', '--claims', JSON.stringify({ aud: AUD })]]);
    expect(jwtPayload(lastToken()!)).toMatchObject({ provider: 'circleci', aud: AUD });
  });

  it('fails with the token exit code when the circleci CLI is not on PATH for a custom audience', async () => {
    const r = await runClient(['--audience', AUD], { ...base(), CIRCLECI: 'true', PATH: '/nonexistent' });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('circleci run oidc get');
  });
});

describe('providers whose protocol is an environment variable or a file', () => {
  const cases: Array<{ name: string; env: (t: string) => Record<string, string>; args?: string[]; missing: Record<string, string>; hint: RegExp }> = [
    { name: 'GitLab (id_tokens: CREDBROKER_ID_TOKEN)', env: (t) => ({ GITLAB_CI: 'true', CREDBROKER_ID_TOKEN: t }), missing: { GITLAB_CI: 'true' }, hint: /CREDBROKER_ID_TOKEN is not set: declare it under id_tokens:/ },
    { name: 'GitLab with a custom variable name', env: (t) => ({ GITLAB_CI: 'true', AWS_BROKER_JWT: t }), args: ['--token-env', 'AWS_BROKER_JWT'], missing: { GITLAB_CI: 'true' }, hint: /AWS_BROKER_JWT is not set/ },
    { name: 'Bitbucket', env: (t) => ({ BITBUCKET_BUILD_NUMBER: '7', BITBUCKET_STEP_OIDC_TOKEN: t }), missing: { BITBUCKET_BUILD_NUMBER: '7' }, hint: /BITBUCKET_STEP_OIDC_TOKEN is not set: set "oidc: true" on the step/ },
    { name: 'Jenkins (credential bound to an env var)', env: (t) => ({ JENKINS_URL: 'https://jenkins.example/', CREDBROKER_ID_TOKEN: t }), missing: { JENKINS_URL: 'https://jenkins.example/' }, hint: /CREDBROKER_ID_TOKEN is not set: bind an OpenID Connect id token credential/ },
    { name: 'Terraform Cloud', env: (t) => ({ TFC_RUN_ID: 'run-1', TFC_WORKLOAD_IDENTITY_TOKEN: t }), missing: { TFC_RUN_ID: 'run-1' }, hint: /TFC_WORKLOAD_IDENTITY_TOKEN is not set: set the workspace variable TFC_WORKLOAD_IDENTITY_AUDIENCE/ },
    { name: 'generic --token-env', env: (t) => ({ MY_TOKEN: t }), args: ['--token-env', 'MY_TOKEN'], missing: {}, hint: /MY_TOKEN is not set/ },
  ];
  for (const c of cases) {
    it(`${c.name}: presents the token from the environment`, async () => {
      const token = fakeJwt({ case: c.name });
      const r = await runClient(c.args ?? [], { ...base(), ...c.env(token) });
      expect(r.code).toBe(EXIT.OK);
      expect(lastToken()).toBe(token);
    });
    it(`${c.name}: says what to configure when the token is missing`, async () => {
      const before = brokerCalls();
      const r = await runClient([...(c.args ?? []), ...(Object.keys(c.missing).length ? [] : ['--provider', 'generic'])], { ...base(), ...c.missing });
      expect(r.code).toBe(EXIT.TOKEN);
      expect(r.stderr).toMatch(c.hint);
      expect(brokerCalls()).toBe(before);
    });
  }

  it('Jenkins: reads the token from --token-file', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const token = fakeJwt({ provider: 'jenkins-file' });
      const file = path.join(dir, 'id-token');
      writeFileSync(file, `${token}\n`, { mode: 0o600 });
      const r = await runClient(['--provider', 'jenkins', '--token-file', file], base());
      expect(r.code).toBe(EXIT.OK);
      expect(lastToken()).toBe(token);
    } finally {
      cleanup();
    }
  });

  it('an explicit --token-file wins over the detected provider', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const token = fakeJwt({ provider: 'file' });
      const file = path.join(dir, 't');
      writeFileSync(file, token);
      const r = await runClient(['--token-file', file], { ...base(), ...github.env });
      expect(r.code).toBe(EXIT.OK);
      expect(lastToken()).toBe(token);
    } finally {
      cleanup();
    }
  });

  it('--provider overrides detection', async () => {
    const token = fakeJwt({ provider: 'bitbucket-forced' });
    const r = await runClient(['--provider', 'bitbucket'], { ...base(), ...github.env, BITBUCKET_STEP_OIDC_TOKEN: token });
    expect(r.code).toBe(EXIT.OK);
    expect(lastToken()).toBe(token);
  });

  it('rejects a value that is not a JWT without echoing it', async () => {
    const r = await runClient(['--token-env', 'T'], { ...base(), T: 'hunter2-not-a-jwt' });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('environment variable T does not hold a JWT');
    expect(r.stderr).not.toContain('hunter2');
  });

  it('reports a missing token file', async () => {
    const r = await runClient(['--token-file', '/nonexistent/token'], base());
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('cannot read token file /nonexistent/token: ENOENT');
  });

  it('fails with the token exit code when no provider can be detected', async () => {
    const r = await runClient([], base());
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toContain('no CI provider detected');
  });
});

describe('options from the environment', () => {
  it('takes role, duration, audience and region from CREDBROKER_* variables', async () => {
    const env = { ...github.env, CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'reader', CREDBROKER_DURATION: '1800', CREDBROKER_AUDIENCE: AUD, CREDBROKER_REGION: 'eu-west-1', CREDBROKER_FORMAT: 'env' };
    const r = await runClient([], env);
    expect(r.code).toBe(EXIT.OK);
    expect(broker.requests.at(-1)!.body).toEqual({ role: 'reader', duration_seconds: 1800 });
    expect(jwtPayload(lastToken()!).aud).toBe(AUD);
    expect(r.stdout).toContain("export AWS_REGION='eu-west-1'\n");
    expect(r.stdout).toContain("export AWS_DEFAULT_REGION='eu-west-1'\n");
  });

  it('lets flags override the environment', async () => {
    const r = await runClient(['--role', 'flagged', '--duration', '900'], { ...github.env, CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'from-env', CREDBROKER_DURATION: '1800' });
    expect(r.code).toBe(EXIT.OK);
    expect(broker.requests.at(-1)!.body).toEqual({ role: 'flagged', duration_seconds: 900 });
  });
});
