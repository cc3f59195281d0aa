// Failure paths, with exit codes and the one-line message asserted: broker down, timeouts, 401/403
// (never retried), 503 + Retry-After then success, 5xx/429 retries (with a fresh token where the
// provider can mint one, since tokens are one-time), redirects, malformed answers, usage errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeJwt, fakeMint, startGithubTokenEndpoint, type GithubTokenEndpoint } from '../support/ci-providers/index.js';
import { freePort } from '../support/moto.js';
import { EXIT, expectNoSecrets, runClient, startFakeBroker, type FakeBroker } from './helpers.js';

let broker: FakeBroker;
let github: GithubTokenEndpoint;

beforeAll(async () => {
  [broker, github] = await Promise.all([startFakeBroker(), startGithubTokenEndpoint(fakeMint('github'))]);
});
afterAll(async () => {
  await Promise.all([broker.close(), github.close()]);
});

const ONE_LINE = /^credbroker-client: error: [^\n]+\n$/;
const gitlabEnv = (token = fakeJwt({ p: 'gitlab' })) => ({ HOME: '/nonexistent', CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'deploy', GITLAB_CI: 'true', CREDBROKER_ID_TOKEN: token });
const githubEnv = () => ({ HOME: '/nonexistent', CREDBROKER_URL: broker.url, CREDBROKER_ROLE: 'deploy', ...github.env });
/** Broker requests made while `fn` runs. */
async function during<T>(fn: () => Promise<T>): Promise<{ result: T; calls: FakeBroker['requests'] }> {
  const before = broker.requests.length;
  const result = await fn();
  return { result, calls: broker.requests.slice(before) };
}

describe('broker unreachable', () => {
  it('retries with backoff, then exits "unavailable" naming the broker and the network error', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runClient(['--retries', '2', '--url', url], { ...gitlabEnv(), CREDBROKER_URL: undefined });
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toBe(`credbroker-client: error: broker ${url} unavailable after 3 attempt(s): cannot connect\n`);
    expect(r.ms).toBeGreaterThanOrEqual(700); // two backoffs of at least 250 ms and 500 ms
    expect(r.stdout).toBe('');
  });

  it('times out a broker that never answers', async () => {
    broker.hang = true;
    try {
      const r = await runClient(['--timeout', '1', '--retries', '0'], gitlabEnv());
      expect(r.code).toBe(EXIT.UNAVAILABLE);
      expect(r.stderr).toContain('unavailable after 1 attempt(s): timed out after 1s');
      expect(r.ms).toBeLessThan(5000);
    } finally {
      broker.hang = false;
    }
  });
});

describe('denials are final', () => {
  it('403: exits "denied" with the broker code, message and request id, after a single request', async () => {
    broker.script({ status: 403, code: 'ERR_POLICY_DENIED', message: 'no rule of role deploy matches this token' });
    const { result: r, calls } = await during(() => runClient(['--retries', '4'], gitlabEnv()));
    expect(r.code).toBe(EXIT.DENIED);
    expect(calls).toHaveLength(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toBe(
      `credbroker-client: error: access denied by the broker: no rule of role deploy matches this token (code ERR_POLICY_DENIED, request id ${calls[0]!.requestId}, HTTP 403)\n`,
    );
  });

  it('403 ERR_REVOKED is not retried either', async () => {
    broker.script({ status: 403, code: 'ERR_REVOKED' });
    const { result: r, calls } = await during(() => runClient([], githubEnv()));
    expect(r.code).toBe(EXIT.DENIED);
    expect(calls).toHaveLength(1);
    expect(r.stderr).toContain('code ERR_REVOKED');
  });

  it('401 ERR_TOKEN_INVALID: exits "token rejected" after a single request, without fetching another token', async () => {
    broker.script({ status: 401, code: 'ERR_TOKEN_INVALID', message: 'signature verification failed' });
    const ghBefore = github.requests.length;
    const { result: r, calls } = await during(() => runClient([], githubEnv()));
    expect(r.code).toBe(EXIT.TOKEN_REJECTED);
    expect(calls).toHaveLength(1);
    expect(github.requests.length - ghBefore).toBe(1);
    expect(r.stderr).toContain('the broker rejected the OIDC token: signature verification failed (code ERR_TOKEN_INVALID');
  });

  it('502 ERR_STS_ACCESS_DENIED is reported as denied and not retried', async () => {
    broker.script({ status: 502, code: 'ERR_STS_ACCESS_DENIED', message: 'the role does not trust the broker' });
    const { result: r, calls } = await during(() => runClient([], gitlabEnv()));
    expect(r.code).toBe(EXIT.DENIED);
    expect(calls).toHaveLength(1);
    expect(r.stderr).toContain('AWS STS refused to assume the role');
  });

  it('400: exits "request rejected" with the code', async () => {
    broker.script({ status: 400, code: 'ERR_BAD_REQUEST', message: 'duration_seconds exceeds the role maximum' });
    const r = await runClient([], gitlabEnv());
    expect(r.code).toBe(EXIT.REJECTED);
    expect(r.stderr).toContain('the broker rejected the request: duration_seconds exceeds the role maximum (code ERR_BAD_REQUEST');
  });
});

describe('transient failures are retried', () => {
  it('503 with Retry-After: waits that long, retries with the same (released) token, and succeeds', async () => {
    const token = fakeJwt({ p: 'retry-after' });
    broker.script({ status: 503, code: 'ERR_STS_THROTTLED', retryAfter: '1' });
    const { result: r, calls } = await during(() => runClient(['--format', 'json'], gitlabEnv(token)));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.OK);
    expect(calls.map((c) => c.status)).toEqual([503, 200]);
    expect(calls.map((c) => c.token)).toEqual([token, token]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(JSON.parse(r.stdout).AccessKeyId).toBe(broker.issued.at(-1)!.AccessKeyId);
  });

  it('429 then 500 on GitHub: retries each time with a freshly minted token, and succeeds', async () => {
    broker.script({ status: 429, code: 'ERR_RATE_LIMITED', retryAfter: '0' }, { status: 500, code: 'ERR_INTERNAL' });
    const ghBefore = github.requests.length;
    const { result: r, calls } = await during(() => runClient([], githubEnv()));
    expect(r.code).toBe(EXIT.OK);
    expect(calls.map((c) => c.status)).toEqual([429, 500, 200]);
    expect(new Set(calls.map((c) => c.token)).size).toBe(3);
    expect(github.requests.length - ghBefore).toBe(3);
  });

  it('500 on GitLab (no way to mint a token): the retry is a replay, and the message says why and what to do', async () => {
    broker.script({ status: 500, code: 'ERR_INTERNAL' });
    const { result: r, calls } = await during(() => runClient([], gitlabEnv()));
    expect(calls.map((c) => c.status)).toEqual([500, 401]);
    expect(r.code).toBe(EXIT.TOKEN_REJECTED);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain('gitlab cannot mint a fresh token from within the job (an earlier attempt failed: HTTP 500); re-run the job (code ERR_TOKEN_REPLAYED');
  });

  it('gives up with "unavailable" and the last code after the configured retries', async () => {
    broker.script(...Array.from({ length: 3 }, () => ({ status: 503, code: 'ERR_STS_UNAVAILABLE', retryAfter: '0' })));
    const { result: r, calls } = await during(() => runClient(['--retries', '2'], gitlabEnv()));
    expect(calls).toHaveLength(3);
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toMatch(/broker unavailable after 3 attempt\(s\): scripted failure \(code ERR_STS_UNAVAILABLE, request id [0-9a-f-]{36}, HTTP 503\)\n$/);
  });

  it('understands Retry-After as an HTTP date', async () => {
    broker.script({ status: 503, code: 'ERR_NOT_READY', retryAfter: new Date(Date.now() + 2000).toUTCString() });
    const { result: r, calls } = await during(() => runClient([], gitlabEnv()));
    expect(r.code).toBe(EXIT.OK);
    expect(calls.map((c) => c.status)).toEqual([503, 200]);
    // The date has whole seconds, so the wait is between 1 and 2 s; backoff alone would be < 0.5 s.
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('does not wait for an unreasonable Retry-After', async () => {
    broker.script({ status: 503, code: 'ERR_NOT_READY', retryAfter: '600' });
    const { result: r, calls } = await during(() => runClient([], gitlabEnv()));
    expect(calls).toHaveLength(1);
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toContain('asked to retry after 600s');
    expect(r.ms).toBeLessThan(5000);
  });
});

describe('replayed or expired tokens', () => {
  it('GitHub: fetches one fresh token after ERR_TOKEN_REPLAYED and succeeds', async () => {
    broker.script({ status: 401, code: 'ERR_TOKEN_REPLAYED' });
    const { result: r, calls } = await during(() => runClient([], githubEnv()));
    expect(r.code).toBe(EXIT.OK);
    expect(calls.map((c) => c.status)).toEqual([401, 200]);
    expect(calls[0]!.token).not.toBe(calls[1]!.token);
  });

  it('GitHub: only once — a second ERR_TOKEN_EXPIRED ends the run', async () => {
    broker.script({ status: 401, code: 'ERR_TOKEN_EXPIRED' }, { status: 401, code: 'ERR_TOKEN_EXPIRED' });
    const { result: r, calls } = await during(() => runClient([], githubEnv()));
    expect(calls).toHaveLength(2);
    expect(r.code).toBe(EXIT.TOKEN_REJECTED);
    expect(r.stderr).toContain('code ERR_TOKEN_EXPIRED');
  });
});

describe('hostile or broken answers', () => {
  it('never echoes the token, even when the broker error message contains it', async () => {
    const token = fakeJwt({ p: 'echo' });
    broker.script({ status: 403, code: 'ERR_POLICY_DENIED', message: `bad token ${token}\n::set-output name=x::y` });
    const r = await runClient([], gitlabEnv(token));
    expect(r.code).toBe(EXIT.DENIED);
    expect(r.stderr).toMatch(ONE_LINE);
    expectNoSecrets('stderr', r.stderr, { OIDCToken: token, TokenPayload: token.split('.')[1]! });
    expect(r.stderr).toContain('[redacted]');
  });

  it('treats a redirect as a rejected request instead of following it with the token', async () => {
    broker.script({ status: 307, body: '', headers: { location: 'http://127.0.0.1:1/steal' } });
    const r = await runClient([], gitlabEnv());
    expect(r.code).toBe(EXIT.REJECTED);
    expect(r.stderr).toContain('the broker answered a redirect; check --url');
  });

  it('reports a 200 that is not credentials as unavailable, with the request id', async () => {
    broker.script({ status: 200, body: '<html>captive portal</html>', headers: { 'content-type': 'text/html' } });
    const { result: r, calls } = await during(() => runClient([], gitlabEnv()));
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toBe(`credbroker-client: error: the broker answered 200 with a body that is not JSON (request id ${calls[0]!.requestId})\n`);
    expect(r.stdout).toBe('');
  });

  it('refuses credentials that would break out of shell quoting', async () => {
    broker.script({ status: 200, body: JSON.stringify({ AccessKeyId: "A'; rm -rf ~; '", SecretAccessKey: 's', SessionToken: 't', Expiration: new Date().toISOString() }) });
    const r = await runClient(['--format', 'env'], gitlabEnv());
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toContain('a missing or malformed AccessKeyId');
    expect(r.stdout).toBe('');
  });
});

describe('usage errors (exit 2, no token spent)', () => {
  const cases: Array<[string, string[], Record<string, string | undefined>, RegExp]> = [
    ['no broker URL', [], { CREDBROKER_URL: undefined }, /the broker URL is required/],
    ['no role', [], { CREDBROKER_ROLE: undefined }, /the role is required/],
    ['plain http to a remote host', ['--url', 'http://broker.example.com'], {}, /must use https/],
    ['plain http to a host that only starts like a loopback address', ['--url', 'http://127.0.0.1.attacker.example'], {}, /must use https/],
    ['credentials in the URL', ['--url', 'https://user:pw@broker.example.com'], {}, /must not contain credentials/],
    ['a duration out of range', ['--duration', '60'], {}, /--duration must be between 900 and 43200/],
    ['an unknown format', ['--format', 'yaml'], {}, /--format must be one of/],
    ['an unknown provider', ['--provider', 'travis'], {}, /--provider must be one of/],
    ['an unknown option', ['--rol', 'x'], {}, /Unknown option '--rol'/],
    ['--output with credential-process', ['--format', 'credential-process', '--output', '/tmp/x'], {}, /--output does not apply/],
  ];
  for (const [name, args, envPatch, message] of cases) {
    it(`rejects ${name}`, async () => {
      const { result: r, calls } = await during(() => runClient(args, { ...gitlabEnv(), ...envPatch }));
      expect(r.code).toBe(EXIT.USAGE);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toMatch(message);
      expect(calls).toHaveLength(0);
    });
  }

  it('--help and --version exit 0 on stdout', async () => {
    const h = await runClient(['--help'], {});
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Exit codes');
    const v = await runClient(['--version'], {});
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

