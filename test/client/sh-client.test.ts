// The POSIX sh + curl variant, run under dash when available (the strictest common /bin/sh):
// token acquisition over curl, the env format validated before anyone evals it, retries, exit
// codes, and tokens kept out of curl's argv (visible to every user through `ps`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, lstatSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
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
import { freePort } from '../support/moto.js';
import { EXIT, POSIX_SH, expectNoSecrets, fileMode, run, runShClient, secretsOf, startFakeBroker, tempDir, type FakeBroker } from './helpers.js';

let broker: FakeBroker;
let github: GithubTokenEndpoint;
let buildkite: BuildkiteAgentApi;
let azure: AzureOidcEndpoint;
let circleci: FakeCircleci;
let tmp: { dir: string; cleanup(): void };
const AUD = 'https://credbroker.example.test';

beforeAll(async () => {
  [broker, github, buildkite, azure, circleci] = await Promise.all([
    startFakeBroker(),
    startGithubTokenEndpoint(fakeMint('github')),
    startBuildkiteAgentApi(fakeMint('buildkite')),
    startAzureOidcEndpoint(fakeMint('azure')),
    startFakeCircleci(fakeMint('circleci')),
  ]);
  tmp = tempDir();
});
afterAll(async () => {
  await Promise.all([broker.close(), github.close(), buildkite.close(), azure.close(), circleci.close()]);
  tmp.cleanup();
});

const base = () => ({ CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'deploy', HOME: tmp.dir });
const ONE_LINE = /^credbroker-client\.sh: error: [^\n]+\n$/;
async function during<T>(fn: () => Promise<T>): Promise<{ result: T; calls: FakeBroker['requests'] }> {
  const before = broker.requests.length;
  const result = await fn();
  return { result, calls: broker.requests.slice(before) };
}

it('runs under a POSIX sh (dash when installed)', () => {
  expect(POSIX_SH).toMatch(/dash$|\/sh$/);
  execFileSync(POSIX_SH, ['-n', path.join(process.cwd(), 'client/credbroker-client.sh')]);
});

describe('the env format', () => {
  it('asks the broker for format=env and prints export lines that dash evaluates to the credentials', async () => {
    const token = fakeJwt({ p: 'sh' });
    const { result: r, calls } = await during(() => runShClient(['--token-env', 'T', '--duration', '1800'], { ...base(), T: token }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.OK);
    expect(calls[0]).toMatchObject({ format: 'env', token, body: { role: 'deploy', duration_seconds: 1800 } });
    const c = broker.issued.at(-1)!;
    const ev = await run(POSIX_SH, ['-c', 'eval "$CREDS"; printf "%s|%s|%s|%s" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" "$AWS_CREDENTIAL_EXPIRATION"'], { CREDS: r.stdout });
    expect(ev.stdout).toBe(`${c.AccessKeyId}|${c.SecretAccessKey}|${c.SessionToken}|${c.Expiration}`);
  });

  it('adds AWS_REGION and AWS_DEFAULT_REGION, and writes --output with mode 0600', async () => {
    const out = path.join(tmp.dir, 'aws.env');
    const r = await runShClient(['--token-env', 'T', '--region', 'eu-west-1', '--output', out], { ...base(), T: fakeJwt({ p: 'out' }) });
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe('');
    expect(fileMode(out)).toBe(0o600);
    const text = readFileSync(out, 'utf8');
    expect(text).toContain(`export AWS_SESSION_TOKEN='${broker.issued.at(-1)!.SessionToken}'\n`);
    expect(text.endsWith("export AWS_REGION='eu-west-1'\nexport AWS_DEFAULT_REGION='eu-west-1'\n")).toBe(true);
  });

  it('keeps secrets off stderr, also with -v', async () => {
    const token = fakeJwt({ p: 'verbose' });
    broker.script({ status: 503, code: 'ERR_STS_THROTTLED', retryAfter: '0' });
    const r = await runShClient(['-v', '--token-env', 'T'], { ...base(), T: token });
    expect(r.code).toBe(EXIT.OK);
    expect(r.stderr).toContain('debug: broker: HTTP 503');
    expectNoSecrets('stderr', r.stderr, { ...secretsOf(broker.issued.at(-1)!), OIDCToken: token });
  });

  it('refuses a body that is not plain export lines, so an eval cannot run anything else', async () => {
    broker.script({ status: 200, body: "export AWS_ACCESS_KEY_ID='x'\ntouch /tmp/pwned\n", headers: { 'content-type': 'text/plain' } });
    const r = await runShClient(['--token-env', 'T'], { ...base(), T: fakeJwt({ p: 'evil' }) });
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/malformed env body/);
  });
});

describe('token acquisition over curl', () => {
  it('GitHub: GET with bearer and &audience= (URL-encoded) after the existing query', async () => {
    const before = github.requests.length;
    const r = await runShClient(['--audience', AUD], { ...base(), ...github.env });
    expect(r.code).toBe(EXIT.OK);
    const req = github.requests[before]!;
    // curl percent-encodes with lower-case hex (equivalent per RFC 3986), so compare decoded.
    expect(req.rawQuery).toMatch(/^api-version=2\.0&audience=https%3a%2f%2f/i);
    expect(req.query.get('audience')).toBe(AUD);
    expect(jwtPayload(broker.requests.at(-1)!.token!)).toMatchObject({ provider: 'github', aud: AUD });
  });

  it('Buildkite: POST to the agent API with the audience', async () => {
    const before = buildkite.requests.length;
    const r = await runShClient(['--audience', AUD], { ...base(), ...buildkite.env });
    expect(r.code).toBe(EXIT.OK);
    expect(JSON.parse(buildkite.requests[before]!.body)).toEqual({ audience: AUD, claims: ['organization_id', 'pipeline_id'] });
    expect(jwtPayload(broker.requests.at(-1)!.token!)).toMatchObject({ provider: 'buildkite', aud: AUD });
  });

  it('Azure: POST with api-version 7.1 and the service connection', async () => {
    const r = await runShClient(['--azure-service-connection-id', azure.serviceConnectionId], { ...base(), ...azure.env });
    expect(r.code).toBe(EXIT.OK);
    expect(jwtPayload(broker.requests.at(-1)!.token!)).toMatchObject({ provider: 'azure' });
  });

  it('CircleCI: `circleci run oidc get --claims` for a chosen audience', async () => {
    const r = await runShClient([], { ...base(), CIRCLECI: 'true', CREDBROKER_AUDIENCE: AUD, PATH: `${circleci.binDir}:${process.env.PATH}` });
    expect(r.code).toBe(EXIT.OK);
    expect(circleci.invocations().at(-1)).toEqual(['run', 'oidc', 'get', '--claims', JSON.stringify({ aud: AUD })]);
    expect(jwtPayload(broker.requests.at(-1)!.token!)).toMatchObject({ provider: 'circleci', aud: AUD });
  });

  it('env-var providers: GitLab, Bitbucket, Terraform Cloud, Jenkins (file)', async () => {
    const file = path.join(tmp.dir, 'jenkins-token');
    const cases: Array<[Record<string, string>, string[], string]> = [
      [{ GITLAB_CI: 'true', CREDBROKER_ID_TOKEN: fakeJwt({ p: 'gl' }) }, [], 'gl'],
      [{ BITBUCKET_BUILD_NUMBER: '3', BITBUCKET_STEP_OIDC_TOKEN: fakeJwt({ p: 'bb' }) }, [], 'bb'],
      [{ TFC_RUN_ID: 'run-x', TFC_WORKLOAD_IDENTITY_TOKEN: fakeJwt({ p: 'tfc' }) }, [], 'tfc'],
      [{ JENKINS_URL: 'https://j.example/' }, ['--token-file', file], 'jk'],
    ];
    writeFileSync(file, `${fakeJwt({ p: 'jk' })}\n`);
    for (const [env, args, p] of cases) {
      const r = await runShClient(args, { ...base(), ...env });
      expect(r.code, p).toBe(EXIT.OK);
      expect(jwtPayload(broker.requests.at(-1)!.token!).p).toBe(p);
    }
  });

  it('exits 3 when the token endpoint keeps failing, without calling the broker', async () => {
    github.failAlways({ status: 500, body: {} });
    try {
      const { result: r, calls } = await during(() => runShClient(['--retries', '1'], { ...base(), ...github.env }));
      expect(r.code).toBe(EXIT.TOKEN);
      expect(r.stderr).toBe('credbroker-client.sh: error: GitHub token endpoint failed: HTTP 500\n');
      expect(calls).toHaveLength(0);
    } finally {
      github.failAlways(undefined);
    }
  });

  it('exits 3 with a hint when a provider variable is missing', async () => {
    const r = await runShClient([], { ...base(), BITBUCKET_BUILD_NUMBER: '1' });
    expect(r.code).toBe(EXIT.TOKEN);
    expect(r.stderr).toBe('credbroker-client.sh: error: environment variable BITBUCKET_STEP_OIDC_TOKEN is not set: set "oidc: true" on the step\n');
  });

  it('never puts a token on curl\'s command line', async () => {
    const binDir = path.join(tmp.dir, 'spy-bin');
    const log = path.join(tmp.dir, 'curl-argv.log');
    execFileSync('mkdir', ['-p', binDir]);
    const realCurl = execFileSync('sh', ['-c', 'command -v curl']).toString().trim();
    writeFileSync(path.join(binDir, 'curl'), `#!/bin/sh\nprintf '%s\\n' "$@" >> '${log}'\nexec '${realCurl}' "$@"\n`);
    chmodSync(path.join(binDir, 'curl'), 0o755);
    const r = await runShClient([], { ...base(), ...github.env, PATH: `${binDir}:${process.env.PATH}` });
    expect(r.code).toBe(EXIT.OK);
    const argv = readFileSync(log, 'utf8');
    expect(argv).toContain('/v1/credentials?format=env'); // the spy saw the broker call
    expectNoSecrets('curl argv', argv, { OIDCToken: broker.requests.at(-1)!.token!, RequestToken: github.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN! });
  });
});

describe('failures', () => {
  it('403: exit 5 with the broker code and request id, one request', async () => {
    broker.script({ status: 403, code: 'ERR_POLICY_DENIED', message: 'no rule matches' });
    const { result: r, calls } = await during(() => runShClient(['--token-env', 'T'], { ...base(), T: fakeJwt({}) }));
    expect(r.code).toBe(EXIT.DENIED);
    expect(calls).toHaveLength(1);
    expect(r.stderr).toBe(`credbroker-client.sh: error: access denied by the broker: no rule matches (code ERR_POLICY_DENIED, request id ${calls[0]!.requestId}, HTTP 403)\n`);
  });

  it('503 with Retry-After: waits, retries with the same token, succeeds', async () => {
    const token = fakeJwt({ p: 'sh-503' });
    broker.script({ status: 503, code: 'ERR_STS_UNAVAILABLE', retryAfter: '1' });
    const { result: r, calls } = await during(() => runShClient(['--token-env', 'T'], { ...base(), T: token }));
    expect(r.code).toBe(EXIT.OK);
    expect(calls.map((c) => [c.status, c.token])).toEqual([
      [503, token],
      [200, token],
    ]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it('500 on GitHub: retries with a freshly minted token', async () => {
    broker.script({ status: 500, code: 'ERR_INTERNAL' });
    const { result: r, calls } = await during(() => runShClient([], { ...base(), ...github.env }));
    expect(r.code).toBe(EXIT.OK);
    expect(calls.map((c) => c.status)).toEqual([500, 200]);
    expect(calls[0]!.token).not.toBe(calls[1]!.token);
  });

  it('401 replayed on GitLab: exit 4 explaining that no fresh token can be minted', async () => {
    broker.script({ status: 401, code: 'ERR_TOKEN_REPLAYED' });
    const r = await runShClient([], { ...base(), GITLAB_CI: 'true', CREDBROKER_ID_TOKEN: fakeJwt({}) });
    expect(r.code).toBe(EXIT.TOKEN_REJECTED);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain('gitlab cannot mint a fresh token from within the job');
  });

  it('broker down: exit 6 after the retries', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runShClient(['--url', url, '--retries', '1', '--token-env', 'T'], { ...base(), T: fakeJwt({}) });
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toBe(`credbroker-client.sh: error: broker ${url} unavailable after 2 attempt(s): cannot connect\n`);
  });

  it('usage errors exit 2', async () => {
    for (const [args, env] of [
      [['--token-env', 'T'], { CREDBROKER_URL: undefined }],
      [['--url', 'http://remote.example'], {}],
      [['--format', 'json'], {}],
      [['--duration', '5'], {}],
      [['--bogus'], {}],
    ] as Array<[string[], Record<string, string | undefined>]>) {
      const r = await runShClient(args, { ...base(), T: fakeJwt({}), ...env });
      expect(r.code, args.join(' ')).toBe(EXIT.USAGE);
      expect(r.stderr).toMatch(ONE_LINE);
    }
  });
});

describe('--format profile', () => {
  it('writes the named section into the credentials file (0600), in place, keeping other sections and comments', async () => {
    const file = path.join(tmp.dir, 'sh-credentials');
    writeFileSync(file, '# managed by hand\n[default]\naws_access_key_id = KEEPME\n\n[ci]\naws_access_key_id = STALE\naws_session_token = STALE\n[other]\nregion = x\n', { mode: 0o644 });
    const r = await runShClient(['--token-env', 'T', '--format', 'profile', '--profile', 'ci', '--region', 'us-west-2', '--credentials-file', file], { ...base(), T: fakeJwt({ p: 'profile' }) });
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe('');
    const c = broker.issued.at(-1)!;
    // The same file the Node client writes for the same input (formats.test.ts).
    expect(readFileSync(file, 'utf8')).toBe(
      `# managed by hand\n[default]\naws_access_key_id = KEEPME\n\n[ci]\naws_access_key_id = ${c.AccessKeyId}\naws_secret_access_key = ${c.SecretAccessKey}\n` +
        `aws_session_token = ${c.SessionToken}\nregion = us-west-2\n[other]\nregion = x\n`,
    );
    expect(fileMode(file)).toBe(0o600);
    expect(r.stderr).toBe(`credbroker-client.sh: wrote profile ci to ${file}: credentials expire at ${c.Expiration}\n`);
  });

  it('defaults to [credbroker] in $AWS_SHARED_CREDENTIALS_FILE, creating it', async () => {
    const file = path.join(tmp.dir, 'new-dir', 'credentials');
    const r = await runShClient(['--token-env', 'T', '--format', 'profile'], { ...base(), T: fakeJwt({ p: 'profile2' }), AWS_SHARED_CREDENTIALS_FILE: file });
    expect(r.code).toBe(EXIT.OK);
    expect(readFileSync(file, 'utf8')).toMatch(/^\[credbroker\]\naws_access_key_id = FAKEKEYID/);
    expect(fileMode(file)).toBe(0o600);
  });
});

describe('--output safety', () => {
  it('refuses to write through a symlink at the target path (exit 8), leaving its target untouched', async () => {
    const victim = path.join(tmp.dir, 'victim-target');
    writeFileSync(victim, 'precious\n');
    const link = path.join(tmp.dir, 'link-output');
    symlinkSync(victim, link);
    const r = await runShClient(['--token-env', 'T', '--output', link], { ...base(), T: fakeJwt({ p: 'symlink' }) });
    expect(r.code).toBe(EXIT.OUTPUT);
    expect(r.stderr).toBe(`credbroker-client.sh: error: cannot write ${link}: it is a symbolic link\n`);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expectNoSecrets('stderr', r.stderr, secretsOf(broker.issued.at(-1)!));
  });

  it('uses an unpredictable temp file: a symlink planted at the old name pattern (.credbroker.$$.tmp) is not followed', async () => {
    const dir = path.join(tmp.dir, 'planted');
    execFileSync('mkdir', ['-p', dir]);
    const victim = path.join(tmp.dir, 'planted-victim');
    writeFileSync(victim, 'precious\n');
    // `exec` keeps the pid, so the pid-based name is known before the client runs; it waits on stdin.
    const child = spawn('/bin/sh', ['-c', `read go; exec ${POSIX_SH} "$0" "$@"`, path.join(process.cwd(), 'client/credbroker-client.sh'), '--token-env', 'T', '--output', path.join(dir, 'aws.env')], {
      env: { PATH: process.env.PATH!, ...base(), T: fakeJwt({ p: 'planted' }) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    symlinkSync(victim, path.join(dir, `.credbroker.${child.pid}.tmp`));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end('go\n');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(EXIT.OK);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(readFileSync(path.join(dir, 'aws.env'), 'utf8')).toContain(broker.issued.at(-1)!.SessionToken);
    expect(fileMode(path.join(dir, 'aws.env'))).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.startsWith('.credbroker.') && !f.endsWith(`${child.pid}.tmp`))).toEqual([]);
  });
});

describe('plain http only to loopback, matched exactly', () => {
  const refused = [
    'http://127.0.0.1.attacker.example',
    'http://127.0.0.1.attacker.example:8080/x',
    'http://localhost.attacker.example',
    'http://127.attacker.example',
    'http://[::1].attacker.example',
    'http://127.0.0.1:80x',
    'http://remote.example',
  ];
  for (const url of refused) {
    it(`refuses ${url}`, async () => {
      const { result: r, calls } = await during(() => runShClient(['--url', url, '--token-env', 'T'], { ...base(), T: fakeJwt({}) }));
      expect(r.code).toBe(EXIT.USAGE);
      expect(r.stderr).toBe('credbroker-client.sh: error: --url must use https (plain http is accepted only for loopback addresses)\n');
      expect(calls).toHaveLength(0);
    });
  }

  it('accepts 127.x.y.z, localhost and [::1], with a port and a path', async () => {
    const port = new URL(broker.url).port;
    for (const url of [`http://127.0.0.1:${port}`, `http://localhost:${port}/`, `http://127.0.0.1:${port}/`]) {
      const r = await runShClient(['--url', url, '--token-env', 'T'], { ...base(), T: fakeJwt({}) });
      expect(r.code, url).toBe(EXIT.OK);
    }
    // [::1] passes the check (the stand-in listens on IPv4 only, so the connection itself fails).
    const r = await runShClient(['--url', `http://[::1]:${port}`, '--token-env', 'T', '--retries', '0'], { ...base(), T: fakeJwt({}) });
    expect(r.code).toBe(EXIT.UNAVAILABLE);
  });
});
