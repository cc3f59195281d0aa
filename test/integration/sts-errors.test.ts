// How STS failures reach the caller. moto cannot throttle or fail, so these use a local
// responder that speaks STS's Query/XML protocol (test/support/fake-sts.ts); the AWS SDK, its
// retry strategy and our error mapping are the real ones.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, DEPLOY_ROLE_ARN, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';

let issuer: TestIssuer;
let sts: FakeSts;
let tb: TestBroker;
const token = () => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE });

async function waitFor<T>(probe: () => T | undefined, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
  tb = await startTestBroker({
    issuer,
    config: { aws: { sts_endpoint: sts.endpoint, max_attempts: 3, role_chaining: 'never' } },
    roles: {
      deploy: { arn: DEPLOY_ROLE_ARN, max_duration_seconds: 7200, allow: [{ issuer: 'test', claims: { repository_id: '487920697' } }] },
    },
  });
});
afterAll(async () => {
  await tb?.close();
  await Promise.all([issuer?.close(), sts?.close()]);
});
beforeEach(() => {
  sts.requests.length = 0;
  sts.script = [{ kind: 'ok' }];
});

describe('STS failures', () => {
  it('retries throttling, then answers 503 ERR_STS_THROTTLED with Retry-After and no credentials', async () => {
    sts.script = [{ kind: 'error', status: 400, code: 'Throttling' }];
    const res = await requestCredentials(tb.url, await token());
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('ERR_STS_THROTTLED');
    expect(res.headers.get('retry-after')).toBe('2');
    expect(res.text).not.toContain('SecretAccessKey');
    expect(sts.requests.length).toBe(3);
  });

  it('releases the one-time token after a transient STS failure, so the same token can retry', async () => {
    const t = await token();
    sts.script = [
      { kind: 'error', status: 503, code: 'ServiceUnavailable' },
      { kind: 'error', status: 503, code: 'ServiceUnavailable' },
      { kind: 'error', status: 503, code: 'ServiceUnavailable' },
      { kind: 'ok' },
    ];
    const first = await requestCredentials(tb.url, t);
    expect(first.status).toBe(503);
    expect(first.body.error.code).toBe('ERR_STS_UNAVAILABLE');
    const retry = await requestCredentials(tb.url, t);
    expect(retry.status).toBe(200);
    expect(retry.body.AccessKeyId).toMatch(/^ASIAFAKE/);
  });

  it.each([
    ['AccessDenied', 403, 'ERR_STS_ACCESS_DENIED'],
    ['ValidationError', 400, 'ERR_STS_REJECTED'],
  ] as const)('keeps the token spent after a permanent STS refusal (%s, 502): a retry with it is a replay', async (code, status, publicCode) => {
    const t = await token();
    sts.script = [{ kind: 'error', status, code }, { kind: 'ok' }];
    const first = await requestCredentials(tb.url, t);
    expect([first.status, first.body.error.code]).toEqual([502, publicCode]);
    const retry = await requestCredentials(tb.url, t);
    expect([retry.status, retry.body.error.code]).toEqual([401, 'ERR_TOKEN_REPLAYED']);
    expect(sts.requests.length).toBe(1);
  });

  it('never retries AccessDenied: one STS call, 502 ERR_STS_ACCESS_DENIED', async () => {
    sts.script = [{ kind: 'error', status: 403, code: 'AccessDenied' }];
    const res = await requestCredentials(tb.url, await token());
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('ERR_STS_ACCESS_DENIED');
    expect(res.body.error.message).not.toContain('injected');
    expect(sts.requests.length).toBe(1);
  });

  it.each(['ValidationError', 'MalformedPolicyDocument', 'PackedPolicyTooLarge', 'RegionDisabledException'])(
    'never retries %s: one STS call, 502 ERR_STS_REJECTED',
    async (code) => {
      sts.script = [{ kind: 'error', status: 400, code }];
      const res = await requestCredentials(tb.url, await token());
      expect(res.status).toBe(502);
      expect(res.body.error.code).toBe('ERR_STS_REJECTED');
      expect(sts.requests.length).toBe(1);
      const record = tb.audit.find((r) => r.request_id === res.body.error.request_id)!;
      expect(record).toMatchObject({ decision: 'error', code: 'ERR_STS_REJECTED' });
      // The SDK names modelled errors "<Code>Exception"; either way it is the code STS sent.
      expect((record.detail as { sts_error: string }).sts_error).toMatch(new RegExp(`^${code}`));
    },
  );

  it.each(['InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken'])(
    "answers 500 ERR_STS_CREDENTIALS when STS refuses the broker's own credentials (%s): one STS call, no retry, token spent",
    async (code) => {
      sts.script = [{ kind: 'error', status: 403, code }, { kind: 'ok' }];
      const t = await token();
      const res = await requestCredentials(tb.url, t);
      expect([res.status, res.body.error.code]).toEqual([500, 'ERR_STS_CREDENTIALS']);
      expect(res.headers.get('retry-after')).toBeNull();
      expect(res.text).not.toContain('SecretAccessKey');
      expect(sts.requests.length).toBe(1);
      const record = tb.audit.find((r) => r.request_id === res.body.error.request_id)!;
      expect(record).toMatchObject({ decision: 'error', code: 'ERR_STS_CREDENTIALS' });
      expect((record.detail as { sts_error: string }).sts_error).toMatch(new RegExp(`^${code}`));
      expect((await requestCredentials(tb.url, t)).body.error.code).toBe('ERR_TOKEN_REPLAYED');
    },
  );

  it('never hands out partial credentials', async () => {
    sts.script = [{ kind: 'partial' }];
    const res = await requestCredentials(tb.url, await token());
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('ERR_STS_UNAVAILABLE');
    expect(res.text).not.toMatch(/ASIAFAKE|SessionToken/);
  });

  it('answers 503 when STS cannot be reached at all', async () => {
    const down = await startTestBroker({
      issuer,
      config: { aws: { sts_endpoint: 'http://127.0.0.1:9', max_attempts: 2 } },
    });
    try {
      const res = await requestCredentials(down.url, await token());
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('ERR_STS_UNAVAILABLE');
      expect(res.headers.get('retry-after')).toBe('2');
    } finally {
      await down.close();
    }
  });

  it('clamps the duration to 1 h when the broker runs on role credentials (role chaining)', async () => {
    const chained = await startTestBroker({
      issuer,
      config: { aws: { sts_endpoint: sts.endpoint, role_chaining: 'always' } },
      roles: { deploy: { arn: DEPLOY_ROLE_ARN, max_duration_seconds: 7200, allow: [{ issuer: 'test', claims: { repository_id: '487920697' } }] } },
    });
    try {
      const res = await requestCredentials(chained.url, await token(), { role: 'deploy', duration_seconds: 7200 });
      expect(res.status).toBe(200);
      expect(res.body.DurationSeconds).toBe(3600);
      expect(sts.requests.at(-1)!.get('DurationSeconds')).toBe('3600');
    } finally {
      await chained.close();
    }
  });

  it('times out a slow STS with 503 ERR_TIMEOUT: the call is cancelled, nothing is issued, the token can retry', async () => {
    const slow = await startTestBroker({
      issuer,
      config: { server: { request_timeout_ms: 1000 }, aws: { sts_endpoint: sts.endpoint, max_attempts: 1 } },
    });
    sts.latencyMs = 3000;
    try {
      const t = await token();
      const started = Date.now();
      const res = await requestCredentials(slow.url, t);
      expect([res.status, res.body.error.code]).toEqual([503, 'ERR_TIMEOUT']);
      expect(Date.now() - started).toBeLessThan(2500);
      // The exchange itself ends as a timeout, not as an issue nobody received.
      await waitFor(() => slow.audit.find((r) => r.request_id === res.body.error.request_id));
      const record = slow.audit.find((r) => r.request_id === res.body.error.request_id)!;
      expect(record).toMatchObject({ decision: 'error', code: 'ERR_TIMEOUT' });
      expect(record.access_key_id).toBeUndefined();
      sts.latencyMs = 0;
      expect((await requestCredentials(slow.url, t)).status).toBe(200);
    } finally {
      sts.latencyMs = 0;
      await slow.close();
    }
  });

  it('writes nothing more for an exchange answered in time, once the request timeout has passed', async () => {
    const quick = await startTestBroker({
      issuer,
      config: { server: { request_timeout_ms: 1000 }, aws: { sts_endpoint: sts.endpoint, max_attempts: 1 } },
    });
    try {
      const res = await requestCredentials(quick.url, await token());
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 1300));
      const records = quick.audit.filter((r) => r.request_id === res.headers.get('x-request-id'));
      expect(records.map((r) => [r.event, r.decision])).toEqual([['exchange', 'allow']]);
    } finally {
      await quick.close();
    }
  });

  it('audits credentials that STS issued after the caller was told the request timed out', async () => {
    // An STS adapter that ignores cancellation (as a call already on the wire may): it stands in
    // for the window between STS answering and the answer reaching the broker.
    const late = await startTestBroker({
      issuer,
      config: { server: { request_timeout_ms: 1000 }, aws: { sts_endpoint: sts.endpoint, max_attempts: 1 } },
      wrapSts: (inner) => ({
        runsOnTemporaryCredentials: () => inner.runsOnTemporaryCredentials(),
        assumeRole: async (req) => {
          const creds = await inner.assumeRole(req);
          await new Promise((r) => setTimeout(r, 1500));
          return creds;
        },
      }),
    });
    try {
      const res = await requestCredentials(late.url, await token());
      expect([res.status, res.body.error.code]).toEqual([503, 'ERR_TIMEOUT']);
      const record = await waitFor(() => late.audit.find((r) => r.request_id === res.body.error.request_id));
      expect(record).toMatchObject({ decision: 'error', code: 'ERR_TIMEOUT', detail: { credentials_withheld: true } });
      expect(record.access_key_id).toMatch(/^ASIAFAKE/);
      expect(late.audit.filter((r) => r.request_id === res.body.error.request_id && r.decision === 'allow')).toEqual([]);
    } finally {
      await late.close();
    }
  });
});
