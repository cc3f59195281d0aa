// credential-process mode: AWS tools re-invoke the client for every command, so it caches the
// credentials in a private 0600 file and re-exchanges only near expiry — which needs a fresh
// OIDC token, something only providers with a token endpoint (GitHub, Buildkite, Azure, CircleCI
// via its CLI) can give. Parallel invocations must not spend a one-time token twice.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fakeJwt, fakeMint, startGithubTokenEndpoint, type GithubTokenEndpoint } from '../support/ci-providers/index.js';
import { EXIT, expectNoSecrets, fileMode, runClient, secretsOf, startFakeBroker, tempDir, type FakeBroker } from './helpers.js';

let broker: FakeBroker;
let github: GithubTokenEndpoint;
let home: { dir: string; cleanup(): void };

beforeAll(async () => {
  [broker, github] = await Promise.all([startFakeBroker(), startGithubTokenEndpoint(fakeMint('github'))]);
});
afterAll(async () => {
  await Promise.all([broker.close(), github.close()]);
});
beforeEach(() => {
  home = tempDir();
  broker.expiresInSeconds = 3600;
});
afterEach(() => home.cleanup());

const cacheBase = () => path.join(home.dir, '.cache', 'credbroker');
/** The one per-job directory under the default cache location. */
const cacheDir = () => {
  const jobs = readdirSync(cacheBase());
  expect(jobs).toHaveLength(1);
  expect(jobs[0]).toMatch(/^job-[0-9a-f]{16}$/);
  return path.join(cacheBase(), jobs[0]!);
};
const common = () => ({ HOME: home.dir, CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'deploy', CREDBROKER_FORMAT: 'credential-process' });
/** The one cache entry of the job (beside it: the hashes of tokens presented). */
const entryFile = () => {
  const entries = readdirSync(cacheDir()).filter((f) => /^[0-9a-f]{32}\.json$/.test(f));
  expect(entries).toHaveLength(1);
  return path.join(cacheDir(), entries[0]!);
};
const gitlab = (token: string) => ({ ...common(), GITLAB_CI: 'true', CREDBROKER_ID_TOKEN: token });
const gh = () => ({ ...common(), ...github.env });
async function calls<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const before = broker.requests.length;
  const r = await fn();
  return [r, broker.requests.length - before];
}

describe('the cache', () => {
  it('serves the second invocation from the cache, so an env-var token (GitLab) is used only once', async () => {
    const env = gitlab(fakeJwt({ p: 'gitlab' }));
    const [first, n1] = await calls(() => runClient([], env));
    const [second, n2] = await calls(() => runClient([], env));
    expect([first.code, second.code]).toEqual([EXIT.OK, EXIT.OK]);
    expect([n1, n2]).toEqual([1, 0]);
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toBe('');
    expect(fileMode(entryFile())).toBe(0o600);
    expect(fileMode(cacheDir())).toBe(0o700);
    expect(fileMode(cacheBase())).toBe(0o700);
  });

  it('re-exchanges near expiry, with a fresh token from the GitHub endpoint each time', async () => {
    broker.expiresInSeconds = 300; // inside the default 600 s refresh window
    const ghBefore = github.requests.length;
    const [first, n1] = await calls(() => runClient([], gh()));
    const [second, n2] = await calls(() => runClient([], gh()));
    expect([first.code, second.code]).toEqual([EXIT.OK, EXIT.OK]);
    expect([n1, n2]).toEqual([1, 1]);
    expect(github.requests.length - ghBefore).toBe(2);
    expect(JSON.parse(second.stdout).AccessKeyId).not.toBe(JSON.parse(first.stdout).AccessKeyId);
    const tokens = broker.requests.slice(-2).map((r) => r.token);
    expect(tokens[0]).not.toBe(tokens[1]);
  });

  it('near expiry on GitLab, the spent token is not sent again: the still-valid cached credentials are served, with a warning', async () => {
    broker.expiresInSeconds = 300;
    const env = gitlab(fakeJwt({ p: 'gitlab-expiring' }));
    const first = await runClient([], env);
    expect(first.code).toBe(EXIT.OK);
    const [r, n] = await calls(() => runClient([], env));
    expect(n).toBe(0); // the broker never sees the token twice (no replay alarm)
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe(first.stdout);
    expect(r.stderr).toMatch(
      /^credbroker-client: warning: renewal failed \(the OIDC token from environment variable CREDBROKER_ID_TOKEN was already exchanged \(at \S+\); a fresh token is needed, and gitlab cannot mint one from within the job\); using cached credentials that expire in \d+s; next attempt in 30s\n$/,
    );
    expectNoSecrets('stderr', r.stderr, secretsOf(broker.issued.at(-1)!));
  });

  it('once the cached credentials are nearly gone, a failed re-exchange on GitLab is exit 4 with an explanation', async () => {
    broker.expiresInSeconds = 30; // below the one-minute floor for serving cached credentials
    const env = gitlab(fakeJwt({ p: 'gitlab-expired' }));
    expect((await runClient([], env)).code).toBe(EXIT.OK);
    const [r, n] = await calls(() => runClient([], env));
    expect(n).toBe(0);
    expect(r.code).toBe(EXIT.TOKEN_REJECTED);
    expect(r.stderr).toMatch(
      /^credbroker-client: error: the OIDC token from environment variable CREDBROKER_ID_TOKEN was already exchanged \(at \S+\); a fresh token is needed, and gitlab cannot mint one from within the job: re-run the job, or ask for a --duration that covers it \(the token was not sent again\)\n$/,
    );
    expect(r.stdout).toBe('');
  });

  it('does not fall back to cached credentials when the broker now denies the role (revoked)', async () => {
    broker.expiresInSeconds = 300;
    expect((await runClient([], gh())).code).toBe(EXIT.OK);
    broker.script({ status: 403, code: 'ERR_REVOKED', message: 'revoked' });
    const r = await runClient([], gh());
    expect(r.code).toBe(EXIT.DENIED);
    expect(r.stdout).toBe('');
  });

  it('honours --refresh-before: credentials with 5 minutes left are still served with a 60 s window', async () => {
    broker.expiresInSeconds = 300;
    const env = gitlab(fakeJwt({ p: 'gitlab-window' }));
    const [, n1] = await calls(() => runClient(['--refresh-before', '60'], env));
    const [r, n2] = await calls(() => runClient(['--refresh-before', '60'], env));
    expect(r.code).toBe(EXIT.OK);
    expect([n1, n2]).toEqual([1, 0]);
  });

  it('keeps separate entries per role', async () => {
    const [, n1] = await calls(() => runClient(['--role', 'a'], gh()));
    const [, n2] = await calls(() => runClient(['--role', 'b'], gh()));
    const [, n3] = await calls(() => runClient(['--role', 'a'], gh()));
    expect([n1, n2, n3]).toEqual([1, 1, 0]);
    expect(readdirSync(cacheDir()).filter((f) => f.endsWith('.json'))).toHaveLength(2);
  });

  it('ignores a cache file that others can read, and replaces it with a private one', async () => {
    expect((await runClient([], gh())).code).toBe(EXIT.OK);
    const file = entryFile();
    chmodSync(file, 0o644);
    const [r, n] = await calls(() => runClient([], gh()));
    expect(r.code).toBe(EXIT.OK);
    expect(n).toBe(1);
    expect(fileMode(file)).toBe(0o600);
  });

  it('ignores a cache entry that has expired', async () => {
    expect((await runClient([], gh())).code).toBe(EXIT.OK);
    const file = entryFile();
    const entry = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...entry, Expiration: new Date(Date.now() - 1000).toISOString() }), { mode: 0o600 });
    const [r, n] = await calls(() => runClient([], gh()));
    expect(r.code).toBe(EXIT.OK);
    expect(n).toBe(1);
    expect(JSON.parse(r.stdout).AccessKeyId).not.toBe(entry.AccessKeyId);
  });

  it('--no-cache exchanges every time and writes nothing', async () => {
    const [, n1] = await calls(() => runClient(['--no-cache'], gh()));
    const [, n2] = await calls(() => runClient(['--no-cache'], gh()));
    expect([n1, n2]).toEqual([1, 1]);
    expect(existsSync(cacheBase())).toBe(false);
  });

  it('parallel invocations (as AWS tools make) exchange once and share the result', async () => {
    const env = gitlab(fakeJwt({ p: 'parallel' }));
    const [results, n] = await calls(() => Promise.all(Array.from({ length: 6 }, () => runClient([], env))));
    expect(results.map((r) => r.code)).toEqual(Array(6).fill(EXIT.OK));
    expect(n).toBe(1);
    expect(new Set(results.map((r) => r.stdout)).size).toBe(1);
    expect(readdirSync(cacheDir()).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('binding to the identity that obtained the credentials', () => {
  it('does not serve a cached entry to another token, even with the same job id: the broker is asked', async () => {
    const a = { ...gitlab(fakeJwt({ iss: 'https://gitlab.example', sub: 'project_path:g/p:ref_type:branch:ref:main', p: 'A' })), CI_JOB_ID: '41' };
    const b = { ...gitlab(fakeJwt({ iss: 'https://gitlab.example', sub: 'project_path:g/fork:ref_type:branch:ref:x', p: 'B' })), CI_JOB_ID: '41' };
    const [ra, n1] = await calls(() => runClient([], a));
    const [rb, n2] = await calls(() => runClient([], b));
    expect([ra.code, rb.code]).toEqual([EXIT.OK, EXIT.OK]);
    expect([n1, n2]).toEqual([1, 1]);
    expect(JSON.parse(rb.stdout).AccessKeyId).not.toBe(JSON.parse(ra.stdout).AccessKeyId);
    expect(broker.requests.at(-1)!.token).toBe(b.CREDBROKER_ID_TOKEN);
  });

  it('keeps one directory per job by default, and records whom an entry is for (no token, only its hash)', async () => {
    const token = fakeJwt({ iss: 'https://gitlab.example', sub: 'project_path:g/p' });
    expect((await runClient([], { ...gitlab(token), CI_JOB_ID: '1' })).code).toBe(EXIT.OK);
    expect((await runClient([], { ...gitlab(fakeJwt({ p: 'other job' })), CI_JOB_ID: '2' })).code).toBe(EXIT.OK);
    const jobs = readdirSync(cacheBase());
    expect(jobs).toHaveLength(2);
    const entries = jobs.flatMap((j) => readdirSync(path.join(cacheBase(), j)).map((f) => readFileSync(path.join(cacheBase(), j, f), 'utf8')));
    const first = entries.map((e) => JSON.parse(e)).find((e) => e.Identity?.job === '1');
    expect(first.Identity).toEqual({ provider: 'gitlab', iss: 'https://gitlab.example', sub: 'project_path:g/p', job: '1', token_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(entries.some((e) => e.includes(token))).toBe(false);
  });

  it('ignores an entry planted under the expected name for another identity', async () => {
    const env = gitlab(fakeJwt({ p: 'planted' }));
    const first = await runClient([], env);
    expect(first.code).toBe(EXIT.OK);
    const file = entryFile();
    const entry = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...entry, AccessKeyId: 'FAKEKEYIDPLANTED', Identity: { ...entry.Identity, token_sha256: '0'.repeat(64) } }), { mode: 0o600 });
    const [r, n] = await calls(() => runClient([], env));
    // Not served; and the job's token, already presented, is not sent again either.
    expect(r.stdout).not.toContain('FAKEKEYIDPLANTED');
    expect(n).toBe(0);
    expect(r.code).toBe(EXIT.TOKEN_REJECTED);
  });

  it('GitHub: binds to the job\'s own request token, so another job (another request token) is not served from the cache', async () => {
    const other = await startGithubTokenEndpoint(fakeMint('github-other-job'));
    try {
      const [, n1] = await calls(() => runClient([], gh()));
      const [, n2] = await calls(() => runClient([], gh()));
      const [r, n3] = await calls(() => runClient([], { ...common(), ...other.env }));
      expect(r.code).toBe(EXIT.OK);
      expect([n1, n2, n3]).toEqual([1, 0, 1]);
    } finally {
      await other.close();
    }
  });

  it('GitHub: puts the cache in the job\'s $RUNNER_TEMP, which the runner empties between jobs', async () => {
    const runnerTemp = path.join(home.dir, 'runner-temp');
    const r = await runClient([], { ...gh(), RUNNER_TEMP: runnerTemp, GITHUB_RUN_ID: '77', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'deploy' });
    expect(r.code).toBe(EXIT.OK);
    expect(existsSync(cacheBase())).toBe(false);
    const [job] = readdirSync(path.join(runnerTemp, 'credbroker'));
    const [file] = readdirSync(path.join(runnerTemp, 'credbroker', job!)).filter((f) => f !== 'presented-tokens.json');
    expect(JSON.parse(readFileSync(path.join(runnerTemp, 'credbroker', job!, file!), 'utf8')).Identity).toMatchObject({ provider: 'github', job: '77/1/deploy' });
  });
});
