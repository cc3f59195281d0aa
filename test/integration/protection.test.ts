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

  it('does not let forged tokens naming a victim use up the victim\'s identity limit', async () => {
    const tb = await startTestBroker({
      issuer,
      config: {
        aws: { sts_endpoint: sts.endpoint },
        server: { rate_limit: { per_ip: { limit: 10_000, window_seconds: 60 }, per_identity: { limit: 3, window_seconds: 60 } } },
      },
    });
    try {
      // 300 tokens that claim the victim's iss + sub but are signed by the attacker's key.
      const attackerKey = await issuer.unpublishedKey();
      const forged = await issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE }, { key: attackerKey, kid: issuer.keys[0]!.kid });
      for (let batch = 0; batch < 10; batch++) {
        const results = await Promise.all(Array.from({ length: 30 }, () => requestCredentials(tb.url, forged)));
        expect(results.every((r) => r.status === 401 && r.body.error.code === 'ERR_TOKEN_INVALID')).toBe(true);
      }
      const victim = await requestCredentials(tb.url, await sign());
      expect(victim.status).toBe(200);
      // The identity limit still holds for the verified identity itself.
      const statuses = [victim.status];
      for (let i = 0; i < 3; i++) statuses.push((await requestCredentials(tb.url, await sign())).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
    } finally {
      await tb.close();
    }
  });

  it('audits a per-identity refusal with the verified identity, and leaves the token unspent', async () => {
    const tb = await startTestBroker({
      issuer,
      config: {
        aws: { sts_endpoint: sts.endpoint },
        server: { rate_limit: { per_ip: { limit: 10_000, window_seconds: 60 }, per_identity: { limit: 1, window_seconds: 1 } } },
      },
    });
    try {
      expect((await requestCredentials(tb.url, await sign())).status).toBe(200);
      const token = await sign();
      const limited = await requestCredentials(tb.url, token);
      expect([limited.status, limited.body.error.code]).toEqual([429, 'ERR_RATE_LIMITED']);
      expect(tb.audit.find((r) => r.request_id === limited.body.error.request_id)).toMatchObject({
        code: 'ERR_RATE_LIMITED',
        subject: providerClaims('github-actions').sub,
      });
      await new Promise((r) => setTimeout(r, Number(limited.headers.get('retry-after')) * 1000 + 100));
      expect((await requestCredentials(tb.url, token)).status).toBe(200);
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

describe('exchanges in progress at once (server.max_concurrent_exchanges)', () => {
  it('lets the others wait their turn and serves them all: 6 exchanges through 2 slots take 3 rounds', async () => {
    const timed = async (limit: number) => {
      const tb = await startTestBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint }, server: { max_concurrent_exchanges: limit } } });
      try {
        const tokens = await Promise.all(Array.from({ length: 6 }, () => sign()));
        const started = Date.now();
        const statuses = (await Promise.all(tokens.map((t) => requestCredentials(tb.url, t)))).map((r) => r.status);
        return { statuses, ms: Date.now() - started };
      } finally {
        await tb.close();
      }
    };
    sts.latencyMs = 300; // each exchange holds its slot for at least one STS round trip
    try {
      const two = await timed(2);
      const many = await timed(100);
      expect(two.statuses).toEqual([200, 200, 200, 200, 200, 200]);
      expect(many.statuses).toEqual([200, 200, 200, 200, 200, 200]);
      expect(two.ms).toBeGreaterThanOrEqual(900);
      expect(many.ms).toBeLessThan(two.ms);
    } finally {
      sts.latencyMs = 0;
    }
  });

  it('defaults to 128', async () => {
    const tb = await startTestBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint } } });
    try {
      expect(tb.broker.config().server.max_concurrent_exchanges).toBe(128);
    } finally {
      await tb.close();
    }
  });
});

describe('client IP behind proxies (server.trust_proxy)', () => {
  const viaProxy = (forwardedFor: string) => ({ headers: { 'x-forwarded-for': forwardedFor } });
  const clientIpOf = (tb: Awaited<ReturnType<typeof startTestBroker>>, requestId: string) =>
    tb.audit.find((r) => r.request_id === requestId)?.client_ip;

  it.each([
    ['a hop count of 1', 1],
    ['the proxy\'s CIDR', ['127.0.0.0/8']],
  ] as const)('with %s, takes the address the proxy appended: spoofed entries neither change the audit nor dodge the per-IP limit', async (_name, trust) => {
    const tb = await startTestBroker({
      issuer,
      config: {
        aws: { sts_endpoint: sts.endpoint },
        server: { trust_proxy: trust as never, rate_limit: { per_ip: { limit: 2, window_seconds: 60 }, per_identity: { limit: 100, window_seconds: 60 } } },
      },
    });
    try {
      // The test client plays the load balancer (127.0.0.1), which appends the caller's address.
      const results = [];
      for (const spoofed of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
        results.push(await requestCredentials(tb.url, await sign(), { role: 'deploy' }, viaProxy(`${spoofed}, 198.51.100.9`)));
      }
      expect(results.map((r) => r.status)).toEqual([200, 200, 429]);
      expect(clientIpOf(tb, results[0]!.headers.get('x-request-id')!)).toBe('198.51.100.9');
    } finally {
      await tb.close();
    }
  });

  it('with the default (false), ignores X-Forwarded-For altogether', async () => {
    const tb = await startTestBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint } } });
    try {
      const res = await requestCredentials(tb.url, await sign(), { role: 'deploy' }, viaProxy('203.0.113.1'));
      expect(clientIpOf(tb, res.headers.get('x-request-id')!)).toBe('127.0.0.1');
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
