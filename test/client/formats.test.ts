// Output formats and secret hygiene: every format is run with stderr captured (also with -v), the
// secrets (OIDC token and AWS credentials) must appear only on stdout or in the target file, and
// every file the client creates is 0600.
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fakeJwt } from '../support/ci-providers/index.js';
import { EXIT, expectNoSecrets, fileMode, run, runClient, secretsOf, startFakeBroker, tempDir, type FakeBroker, type IssuedCredentials } from './helpers.js';

let broker: FakeBroker;
let home: { dir: string; cleanup(): void };
let token: string;

beforeAll(async () => {
  broker = await startFakeBroker();
});
afterAll(async () => {
  await broker.close();
});
beforeEach(() => {
  home = tempDir();
  token = fakeJwt({ test: 'formats' });
});
afterEach(() => home.cleanup());

const env = (extra: Record<string, string> = {}) => ({ HOME: home.dir, CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'deploy', CREDBROKER_TOKEN_ENV: 'JOB_TOKEN', JOB_TOKEN: token, ...extra });
const issued = (): IssuedCredentials => broker.issued.at(-1)!;
/** Everything that must never reach stderr. */
const secrets = () => ({ ...secretsOf(issued()), OIDCToken: token });

describe.each([[[] as string[]], [['-v']]])('with flags %j', (flags) => {
  it('env: prints export lines that sh evaluates to the credentials; stderr stays clean', async () => {
    const r = await runClient([...flags, '--format', 'env'], env());
    expect(r.code).toBe(EXIT.OK);
    const c = issued();
    expect(r.stdout).toBe(
      `export AWS_ACCESS_KEY_ID='${c.AccessKeyId}'\nexport AWS_SECRET_ACCESS_KEY='${c.SecretAccessKey}'\n` +
        `export AWS_SESSION_TOKEN='${c.SessionToken}'\nexport AWS_CREDENTIAL_EXPIRATION='${c.Expiration}'\n`,
    );
    const sh = await run('sh', ['-c', 'eval "$CREDS"; printf "%s|%s|%s" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"'], { CREDS: r.stdout });
    expect(sh.stdout).toBe(`${c.AccessKeyId}|${c.SecretAccessKey}|${c.SessionToken}`);
    expectNoSecrets('stderr', r.stderr, secrets());
    if (flags.length) expect(r.stderr).toContain('debug: credentials issued');
    else expect(r.stderr).toBe('');
  });

  it('github-env: appends NAME=value to $GITHUB_ENV and prints ::add-mask:: for each secret on stdout', async () => {
    const ghEnv = path.join(home.dir, 'github_env');
    writeFileSync(ghEnv, 'EARLIER=1\n');
    const r = await runClient([...flags, '--format', 'github-env', '--region', 'eu-central-1'], env({ GITHUB_ENV: ghEnv }));
    expect(r.code).toBe(EXIT.OK);
    const c = issued();
    expect(r.stdout).toBe(`::add-mask::${c.AccessKeyId}\n::add-mask::${c.SecretAccessKey}\n::add-mask::${c.SessionToken}\n`);
    expect(readFileSync(ghEnv, 'utf8')).toBe(
      `EARLIER=1\nAWS_ACCESS_KEY_ID=${c.AccessKeyId}\nAWS_SECRET_ACCESS_KEY=${c.SecretAccessKey}\nAWS_SESSION_TOKEN=${c.SessionToken}\n` +
        `AWS_CREDENTIAL_EXPIRATION=${c.Expiration}\nAWS_REGION=eu-central-1\nAWS_DEFAULT_REGION=eu-central-1\n`,
    );
    expect(r.stderr).toContain('added AWS credentials to $GITHUB_ENV');
    expectNoSecrets('stderr', r.stderr, secrets());
  });

  it('dotenv --output: writes a 0600 file, replacing earlier AWS_ values and keeping other variables', async () => {
    const file = path.join(home.dir, 'aws.env');
    writeFileSync(file, 'DEPLOY_ENV=prod\nAWS_ACCESS_KEY_ID=OLDVALUE\n', { mode: 0o644 });
    const r = await runClient([...flags, '--format', 'dotenv', '--output', file], env());
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe('');
    const c = issued();
    expect(readFileSync(file, 'utf8')).toBe(
      `DEPLOY_ENV=prod\nAWS_ACCESS_KEY_ID=${c.AccessKeyId}\nAWS_SECRET_ACCESS_KEY=${c.SecretAccessKey}\nAWS_SESSION_TOKEN=${c.SessionToken}\nAWS_CREDENTIAL_EXPIRATION=${c.Expiration}\n`,
    );
    expect(fileMode(file)).toBe(0o600);
    expectNoSecrets('stderr', r.stderr, secrets());
  });

  it('bash-env: appends export lines to $BASH_ENV, which bash then sources', async () => {
    const bashEnv = path.join(home.dir, 'bash_env');
    const r = await runClient([...flags, '--format', 'bash-env'], env({ BASH_ENV: bashEnv }));
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe('');
    expect(fileMode(bashEnv)).toBe(0o600);
    const c = issued();
    const b = await run('bash', ['-c', 'printf "%s" "$AWS_SESSION_TOKEN"'], { BASH_ENV: bashEnv });
    expect(b.stdout).toBe(c.SessionToken);
    expectNoSecrets('stderr', r.stderr, secrets());
  });

  it('credential-process: prints Version 1 JSON and keeps a 0600 cache in a 0700 directory', async () => {
    const cacheDir = path.join(home.dir, 'cache');
    const r = await runClient([...flags, '--format', 'credential-process', '--cache-dir', cacheDir], env());
    expect(r.code).toBe(EXIT.OK);
    const c = issued();
    expect(JSON.parse(r.stdout)).toEqual({ Version: 1, AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration });
    expect(fileMode(cacheDir)).toBe(0o700);
    // The entry, and the hashes of the tokens this job presented (a token it cannot renew is spent).
    const files = readdirSync(cacheDir).sort();
    expect(files).toEqual([expect.stringMatching(/^[0-9a-f]{32}\.json$/), 'presented-tokens.json']);
    for (const f of files) expect(fileMode(path.join(cacheDir, f))).toBe(0o600);
    expectNoSecrets('stderr', r.stderr, secrets());
    if (!flags.length) expect(r.stderr).toBe('');
  });

  it('profile: writes the named profile to ~/.aws/credentials with mode 0600', async () => {
    const r = await runClient([...flags, '--format', 'profile', '--profile', 'ci'], env());
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe('');
    const file = path.join(home.dir, '.aws', 'credentials');
    const c = issued();
    expect(readFileSync(file, 'utf8')).toBe(`[ci]\naws_access_key_id = ${c.AccessKeyId}\naws_secret_access_key = ${c.SecretAccessKey}\naws_session_token = ${c.SessionToken}\n`);
    expect(fileMode(file)).toBe(0o600);
    expect(fileMode(path.join(home.dir, '.aws'))).toBe(0o700);
    expect(r.stderr).toContain(`wrote profile ci to ${file}`);
    expectNoSecrets('stderr', r.stderr, secrets());
  });

  it('json: prints the broker answer with the assumed-role ARN', async () => {
    const r = await runClient([...flags, '--format', 'json'], env());
    expect(r.code).toBe(EXIT.OK);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ...issued(), AssumedRoleArn: 'arn:aws:sts::123456789012:assumed-role/deploy/fake-session', RoleSessionName: 'fake-session' });
    expectNoSecrets('stderr', r.stderr, secrets());
  });
});

describe('files', () => {
  it('profile: replaces only its own section, keeps other profiles and comments, and tightens the mode to 0600', async () => {
    const file = path.join(home.dir, 'creds');
    writeFileSync(file, '# managed by hand\n[default]\naws_access_key_id = KEEPME\n\n[ci]\naws_access_key_id = STALE\naws_session_token = STALE\n[other]\nregion = x\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const r = await runClient(['--format', 'profile', '--profile', 'ci', '--region', 'us-west-2'], env({ AWS_SHARED_CREDENTIALS_FILE: file }));
    expect(r.code).toBe(EXIT.OK);
    const c = issued();
    expect(readFileSync(file, 'utf8')).toBe(
      `# managed by hand\n[default]\naws_access_key_id = KEEPME\n\n[ci]\naws_access_key_id = ${c.AccessKeyId}\naws_secret_access_key = ${c.SecretAccessKey}\n` +
        `aws_session_token = ${c.SessionToken}\nregion = us-west-2\n[other]\nregion = x\n`,
    );
    expect(fileMode(file)).toBe(0o600);
    expect(readdirSync(home.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('github-env: creates a missing $GITHUB_ENV with mode 0600', async () => {
    const ghEnv = path.join(home.dir, 'new_github_env');
    const r = await runClient(['--format', 'github-env'], env({ GITHUB_ENV: ghEnv }));
    expect(r.code).toBe(EXIT.OK);
    expect(fileMode(ghEnv)).toBe(0o600);
  });

  it('env --output and json --output write 0600 files and print nothing', async () => {
    for (const format of ['env', 'json']) {
      const file = path.join(home.dir, `out.${format}`);
      const r = await runClient(['--format', format, '--output', file], env({ JOB_TOKEN: fakeJwt({ format }) }));
      expect(r.code).toBe(EXIT.OK);
      expect(r.stdout).toBe('');
      expect(fileMode(file)).toBe(0o600);
      expect(readFileSync(file, 'utf8')).toContain(issued().SessionToken);
    }
  });

  it('fails with the output exit code, and no secret, when the file cannot be written', async () => {
    const blocker = path.join(home.dir, 'not-a-dir');
    writeFileSync(blocker, '');
    const r = await runClient(['--format', 'profile', '--credentials-file', path.join(blocker, 'credentials')], env());
    expect(r.code).toBe(EXIT.OUTPUT);
    expect(r.stderr).toMatch(/^credbroker-client: error: cannot write .*not-a-dir\/credentials: (ENOTDIR|EEXIST)\n$/);
    expect(r.stdout).toBe('');
    expectNoSecrets('stderr', r.stderr, secrets());
  });

  it('github-env without $GITHUB_ENV is a usage error, before any token is spent', async () => {
    const before = broker.requests.length;
    const r = await runClient(['--format', 'github-env'], env());
    expect(r.code).toBe(EXIT.USAGE);
    expect(broker.requests.length).toBe(before);
    expect(existsSync(path.join(home.dir, '.aws'))).toBe(false);
  });
});

describe('log masking where the CI has it', () => {
  it('GitHub Actions, profile format: prints ::add-mask:: for each secret (stdout is free)', async () => {
    const r = await runClient(['--format', 'profile'], env({ GITHUB_ACTIONS: 'true' }));
    expect(r.code).toBe(EXIT.OK);
    const c = issued();
    expect(r.stdout).toBe(`::add-mask::${c.AccessKeyId}\n::add-mask::${c.SecretAccessKey}\n::add-mask::${c.SessionToken}\n`);
  });

  it('GitHub Actions, env format: stdout stays pure export lines, fit for eval', async () => {
    const r = await runClient(['--format', 'env'], env({ GITHUB_ACTIONS: 'true' }));
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout.split('\n').filter(Boolean).every((l) => l.startsWith('export AWS_'))).toBe(true);
  });

  it('Azure Pipelines, bash-env: prints ##vso[task.setsecret] for each secret', async () => {
    const r = await runClient(['--format', 'bash-env', '--output', path.join(home.dir, 'vars')], env({ TF_BUILD: 'True' }));
    expect(r.code).toBe(EXIT.OK);
    const c = issued();
    expect(r.stdout).toBe(`##vso[task.setsecret]${c.AccessKeyId}\n##vso[task.setsecret]${c.SecretAccessKey}\n##vso[task.setsecret]${c.SessionToken}\n`);
  });

  it('Buildkite: hands each secret to `buildkite-agent redactor add` on stdin, never in argv', async () => {
    const binDir = path.join(home.dir, 'bin');
    const log = path.join(home.dir, 'redactor.log');
    mkdirSync(binDir);
    // A stand-in agent: records its argv and what it read on stdin.
    writeFileSync(path.join(binDir, 'buildkite-agent'), `#!/bin/sh\nprintf 'argv:%s\\n' "$*" >> '${log}'\nprintf 'stdin:%s\\n' "$(cat)" >> '${log}'\n`);
    chmodSync(path.join(binDir, 'buildkite-agent'), 0o755);
    const r = await runClient(['--format', 'env'], env({ BUILDKITE: 'true', PATH: `${binDir}:${process.env.PATH}` }));
    expect(r.code).toBe(EXIT.OK);
    expect(r.stderr).toBe('');
    const c = issued();
    expect(readFileSync(log, 'utf8')).toBe(
      `argv:redactor add\nstdin:${c.AccessKeyId}\nargv:redactor add\nstdin:${c.SecretAccessKey}\nargv:redactor add\nstdin:${c.SessionToken}\n`,
    );
  });

  it('Buildkite without a working agent: warns (without secrets) and still delivers', async () => {
    const r = await runClient(['--format', 'env'], env({ BUILDKITE: 'true', PATH: '/nonexistent' }));
    expect(r.code).toBe(EXIT.OK);
    expect(r.stderr).toMatch(/^credbroker-client: warning: "buildkite-agent redactor add" failed \(ENOENT\): the credentials are not redacted from the log\n$/);
    expectNoSecrets('stderr', r.stderr, secrets());
  });

  it('--no-mask leaves stdout empty for the profile format', async () => {
    const r = await runClient(['--format', 'profile', '--no-mask'], env({ GITHUB_ACTIONS: 'true' }));
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe('');
  });
});
