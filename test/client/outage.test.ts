// Calm when the broker is down or the token is spent, in credential_process mode (the AWS CLI runs
// the client before every command, botocore whenever fewer than 15 minutes are left). Real broker,
// real tokens, moto; a TCP front we can switch off (refused) or make hang sits between client and
// broker. Every call here is in the refresh window (--refresh-before 43200 > the 900 s session).
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGithubTokenEndpoint, type GithubTokenEndpoint } from '../support/ci-providers/index.js';
import { TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { EXIT, expectNoSecrets, runClient, tempDir } from './helpers.js';
import { startStack, type Stack } from './stack.js';
import { startFront, type Front } from './tcp-front.js';

let stack: Stack;
let github: GithubTokenEndpoint;
let front: Front;
let home: { dir: string; cleanup(): void };

beforeAll(async () => {
  stack = await startStack();
  github = await startGithubTokenEndpoint(async (aud) => stack.issuer.sign({ ...providerClaims('github-actions'), aud: aud ?? TEST_AUDIENCE }));
});
afterAll(async () => {
  await github?.close();
  await stack?.close();
});
beforeEach(async () => {
  home = tempDir();
  front = await startFront(stack.broker.url);
});
afterEach(async () => {
  await front.close();
  home.cleanup();
});

const ARGS = ['--format', 'credential-process', '--duration', '900', '--refresh-before', '43200'];
const env = (extra: Record<string, string> = {}) => stack.stepEnv(home.dir, { CREDBROKER_URL: front.url, ...extra });
const githubJob = () => env({ ...github.env, GITHUB_RUN_ID: '9', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'deploy' });
const auditFrom = () => stack.broker.audit.length;
const status = async (e: Record<string, string>) => (await runClient([...ARGS, '--status'], e)).stdout;

describe('the broker goes down during the refresh window (GitHub: the job can mint tokens)', () => {
  it('serves the cached credentials at once, records the failure, and backs off instead of retrying every call', async () => {
    const first = await runClient(ARGS, githubJob());
    expect(first.code, first.stderr).toBe(EXIT.OK);
    const cached = JSON.parse(first.stdout);

    await front.set('down');
    const from = auditFrom();
    // Three AWS commands at once, as `aws` in parallel steps would run them.
    const started = Date.now();
    const results = await Promise.all([0, 1, 2].map(() => runClient(ARGS, githubJob())));
    const elapsed = Date.now() - started;
    expect(results.map((r) => r.code)).toEqual([EXIT.OK, EXIT.OK, EXIT.OK]);
    for (const r of results) expect(JSON.parse(r.stdout)).toEqual(cached);
    expect(elapsed).toBeLessThan(3000); // was 18 s: each call spent the full retry budget, queued on the lock
    const warned = results.filter((r) => r.stderr !== '');
    expect(warned).toHaveLength(1); // the one that tried; the others did not wait for it
    expect(warned[0]!.stderr).toMatch(
      new RegExp(`^credbroker-client: warning: renewal failed \\(broker ${front.url.replace(/[.]/g, '\\.')} unavailable after 1 attempt\\(s\\): cannot connect\\); using cached credentials that expire in \\d+s; next attempt in 30s\\n$`),
    );
    expectNoSecrets('stderr', warned[0]!.stderr, { SecretAccessKey: cached.SecretAccessKey, SessionToken: cached.SessionToken });

    // Within the back-off, no connection is even attempted, though the broker is back.
    await front.set('up');
    const before = front.connections;
    const quiet = await runClient(ARGS, githubJob());
    expect(quiet.code).toBe(EXIT.OK);
    expect(quiet.stderr).toBe('');
    expect(quiet.ms).toBeLessThan(1500);
    expect(front.connections - before).toBe(0);
    expect(stack.exchanges(from)).toEqual([]);

    // --status shows what the AWS CLI hid (it discards a successful credential_process's stderr).
    const s = await status(githubJob());
    expect(s).toMatch(/^ {2}failed renewals: 1 \(last at \S+: broker .* unavailable after 1 attempt\(s\): cannot connect\); next attempt after \S+$/m);
    expect(s).toMatch(/^ {2}credentials: expire at \S+ \(in \d+s; in the refresh window\)$/m);
    expect(s).toMatch(/^ {2}warning: a 900s session leaves little or nothing outside botocore's 15-minute refresh window$/m);
    expectNoSecrets('--status', s, { AccessKeyId: cached.AccessKeyId, SecretAccessKey: cached.SecretAccessKey, SessionToken: cached.SessionToken });
  });

  it('a broker that hangs costs one bounded attempt, not the retry budget', async () => {
    expect((await runClient(ARGS, githubJob())).code).toBe(EXIT.OK);
    await front.set('hang');
    const r = await runClient([...ARGS, '--timeout', '2'], githubJob());
    expect(r.code).toBe(EXIT.OK);
    expect(r.ms).toBeGreaterThanOrEqual(1900);
    expect(r.ms).toBeLessThan(3500); // 5 attempts of 2 s plus back-off before
    expect(r.stderr).toContain('unavailable after 1 attempt(s): timed out after 2s');
  });

  it('once the back-off has passed, the next call renews against the broker, which is back', async () => {
    const first = await runClient(ARGS, githubJob());
    await front.set('down');
    expect((await runClient(ARGS, githubJob())).code).toBe(EXIT.OK);
    await front.set('up');
    // Move the next attempt into the past, as 30 s of waiting would.
    const dir = path.join(home.dir, '.cache', 'credbroker');
    const [job] = readdirSync(dir);
    const [file] = readdirSync(path.join(dir, job!)).filter((f) => /^[0-9a-f]{32}\.json$/.test(f));
    const entryPath = path.join(dir, job!, file!);
    const entry = JSON.parse(readFileSync(entryPath, 'utf8'));
    writeFileSync(entryPath, JSON.stringify({ ...entry, Renewal: { ...entry.Renewal, next_attempt_at: new Date(Date.now() - 1000).toISOString() } }), { mode: 0o600 });
    const from = auditFrom();
    const r = await runClient(ARGS, githubJob());
    expect(r.code).toBe(EXIT.OK);
    expect(JSON.parse(r.stdout).AccessKeyId).not.toBe(JSON.parse(first.stdout).AccessKeyId);
    expect(stack.exchanges(from).map((a) => a.decision)).toEqual(['allow']);
    expect(await status(githubJob())).toMatch(/^ {2}failed renewals: 0$/m);
  });
});

describe('a token the job cannot renew (GitLab id_tokens, Jenkins, Bitbucket, HCP Terraform)', () => {
  it('is never presented twice: renewals in the refresh window serve the cache, and the broker audits no replay', async () => {
    const token = await stack.sign();
    const job = env({ GITLAB_CI: 'true', CI_JOB_ID: '501', CREDBROKER_ID_TOKEN: token });
    const from = auditFrom();
    const first = await runClient(ARGS, job);
    expect(first.code, first.stderr).toBe(EXIT.OK);

    const started = Date.now();
    const again = [await runClient(ARGS, job), ...(await Promise.all([0, 1, 2].map(() => runClient(ARGS, job)))), await runClient(ARGS, job)];
    expect(Date.now() - started).toBeLessThan(4000);
    expect(again.map((r) => r.code)).toEqual(Array(5).fill(EXIT.OK));
    for (const r of again) expect(r.stdout).toBe(first.stdout);
    // One exchange, no replay alarms for the security team.
    expect(stack.exchanges(from).map((a) => [a.decision, a.code])).toEqual([['allow', undefined]]);
    expect(again[0]!.stderr).toContain('was already exchanged');
    expect(again[0]!.stderr).toContain('a fresh token is needed, and gitlab cannot mint one from within the job');

    const s = await status(job);
    expect(s).toMatch(/^ {2}token: already exchanged at \S+; renewing needs a fresh token$/m);
    expect(s).toMatch(/^ {2}failed renewals: 1 /m);
    expectNoSecrets('--status', s, { OIDCToken: token });
  });

  it('once the cached credentials are nearly gone: exit 4 at once, saying a fresh token is needed, and still no replay', async () => {
    const token = await stack.sign();
    const job = env({ GITLAB_CI: 'true', CI_JOB_ID: '502', CREDBROKER_ID_TOKEN: token });
    const from = auditFrom();
    expect((await runClient(ARGS, job)).code).toBe(EXIT.OK);
    // 30 s left: below the one-minute floor for serving cached credentials.
    const dir = path.join(home.dir, '.cache', 'credbroker');
    const [jobDir] = readdirSync(dir);
    const [file] = readdirSync(path.join(dir, jobDir!)).filter((f) => /^[0-9a-f]{32}\.json$/.test(f));
    const entryPath = path.join(dir, jobDir!, file!);
    const entry = JSON.parse(readFileSync(entryPath, 'utf8'));
    writeFileSync(entryPath, JSON.stringify({ ...entry, Expiration: new Date(Date.now() + 30_000).toISOString() }), { mode: 0o600 });

    const r = await runClient(ARGS, job);
    expect(r.code).toBe(EXIT.TOKEN_REJECTED);
    expect(r.ms).toBeLessThan(1500);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^credbroker-client: error: the OIDC token from environment variable CREDBROKER_ID_TOKEN was already exchanged \(at \S+\); a fresh token is needed.*\(the token was not sent again\)\n$/);
    expect(stack.exchanges(from).map((a) => a.decision)).toEqual(['allow']);
  });

  it('a token presented to a broker that then timed out is not sent again on the next call', async () => {
    const token = await stack.sign();
    const job = env({ GITLAB_CI: 'true', CI_JOB_ID: '503', CREDBROKER_ID_TOKEN: token });
    await front.set('hang');
    const r1 = await runClient([...ARGS, '--timeout', '1', '--retries', '0'], job);
    expect(r1.code).toBe(EXIT.UNAVAILABLE); // nothing cached to fall back on
    await front.set('up');
    const before = front.connections;
    const r2 = await runClient(ARGS, job);
    expect(r2.code).toBe(EXIT.TOKEN_REJECTED);
    expect(r2.stderr).toContain('(the token was not sent again)');
    expect(front.connections - before).toBe(0);
  });
});
