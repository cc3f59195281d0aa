// Rate limits on the public endpoint, and the per-account STS circuit breaker and pacing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, DEPLOY_ROLE_ARN } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';

let issuer: TestIssuer;
let sts: FakeSts;
const sign = (extra: Record<string, unknown> = {}) => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
});
afterAll(async () => {
  await Promise.all([issuer?.close(), sts?.close()]);
});

describe('rate limits', () => {
  it('limits one identity (issuer + subject) with 429 ERR_RATE_LIMITED and Retry-After, without touching STS', async () => {
    const tb = await startTestBroker({
      issuer,
      config: {
        aws: { sts_endpoint: sts.endpoint },
        server: { rate_limit: { per_ip: { limit: 100, window_seconds: 60 }, per_identity: { limit: 3, window_seconds: 60 } } },
      },
    });
    try {
      sts.requests.length = 0;
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await requestCredentials(tb.url, await sign())).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const limited = await requestCredentials(tb.url, await sign());
      expect(limited.body.error.code).toBe('ERR_RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(sts.requests.length).toBe(3);
      // Another identity is not affected.
      expect((await requestCredentials(tb.url, await sign({ sub: 'repo:octo-org/other:ref:refs/heads/main' }))).status).toBe(200);
      const metrics = await (await fetch(tb.metricsUrl)).text();
      expect(metrics).toMatch(/credbroker_rate_limited_total\{limit="identity"\} 2/);
    } finally {
      await tb.close();
    }
  });

  it('limits one client IP across identities', async () => {
    const tb = await startTestBroker({
      issuer,
      config: {
        aws: { sts_endpoint: sts.endpoint },
        server: { rate_limit: { per_ip: { limit: 2, window_seconds: 60 }, per_identity: { limit: 100, window_seconds: 60 } } },
      },
    });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await requestCredentials(tb.url, await sign({ sub: `s${i}` }))).status);
      expect(statuses).toEqual([200, 200, 429]);
    } finally {
      await tb.close();
    }
  });
});

describe('STS circuit breaker', () => {
  it('opens after repeated STS failures for an account, answers 503 without calling STS, and closes after a good trial', async () => {
    const tb = await startTestBroker({
      issuer,
      config: { aws: { sts_endpoint: sts.endpoint, max_attempts: 1, circuit_breaker: { failure_threshold: 2, open_seconds: 1 } } },
      roles: { deploy: { arn: DEPLOY_ROLE_ARN, allow: [{ issuer: 'test', claims: { repository_id: '487920697' } }] } },
    });
    try {
      sts.requests.length = 0;
      sts.script = [{ kind: 'error', status: 500, code: 'InternalFailure' }];
      for (let i = 0; i < 2; i++) expect((await requestCredentials(tb.url, await sign())).body.error.code).toBe('ERR_STS_UNAVAILABLE');
      expect(sts.requests.length).toBe(2);
      const open = await requestCredentials(tb.url, await sign());
      expect(open.status).toBe(503);
      expect(open.body.error.code).toBe('ERR_STS_UNAVAILABLE');
      expect(open.headers.get('retry-after')).toBe('1');
      expect(sts.requests.length).toBe(2); // not called while open
      expect(await (await fetch(tb.metricsUrl)).text()).toMatch(/credbroker_sts_circuit_open\{account="123456789012"\} 1/);
      sts.script = [{ kind: 'ok' }];
      await new Promise((r) => setTimeout(r, 1100));
      expect((await requestCredentials(tb.url, await sign())).status).toBe(200);
      expect(await (await fetch(tb.metricsUrl)).text()).toMatch(/credbroker_sts_circuit_open\{account="123456789012"\} 0/);
    } finally {
      sts.script = [{ kind: 'ok' }];
      await tb.close();
    }
  });

  it('paces calls per account: a burst over the rate is spread out, not refused', async () => {
    const tb = await startTestBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint, sts_calls_per_second_per_account: 5 } } });
    try {
      const tokens = await Promise.all(Array.from({ length: 10 }, () => sign()));
      const started = Date.now();
      const results = await Promise.all(tokens.map((t) => requestCredentials(tb.url, t)));
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
      // 5 immediately, 5 more at 5/s: about a second.
      expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    } finally {
      await tb.close();
    }
  });
});
