// Faults under load: STS throttling a share of calls, STS answering without a secret, and the
// issuer's JWKS endpoint down for the whole run. Whatever happens, a caller gets complete
// credentials or a retryable 503 — never partial credentials, never another 5xx.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startFakeSts, type FakeSts, type StsBehaviour } from '../support/fake-sts.js';
import { expectCompleteCredentials, expectRetryable503, pool, seededRandom, startLoadBroker } from './helpers.js';

const EXCHANGES = 1000;
const CONCURRENCY = 100;
let issuer: TestIssuer;
let sts: FakeSts;

const claims = () => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE });
const signMany = (n: number) => Promise.all(Array.from({ length: n }, () => issuer.sign(claims())));

/** A script of `calls` STS behaviours where a seeded `share` of calls get `fault`. */
function scriptWith(fault: StsBehaviour, share: number, calls: number, seed: number): StsBehaviour[] {
  const random = seededRandom(seed);
  return Array.from({ length: calls }, () => (random() < share ? fault : { kind: 'ok' }));
}

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
  sts.latencyMs = 5;
});
afterAll(async () => {
  await Promise.all([issuer?.close(), sts?.close()]);
});

describe('STS faults under load', () => {
  it('with Throttling on 30 % of STS calls, answers every exchange with complete credentials or 503 + Retry-After', async () => {
    const tb = await startLoadBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint, max_attempts: 3 } } });
    try {
      sts.requests.length = 0;
      // Enough script for every attempt (≤ 3 per exchange); the last entry repeats.
      sts.script = [...scriptWith({ kind: 'error', status: 400, code: 'Throttling' }, 0.3, EXCHANGES * 3, 7), { kind: 'ok' }];
      const tokens = await signMany(EXCHANGES);
      const results = await pool(EXCHANGES, CONCURRENCY, Date.now() + 120_000, (i) => requestCredentials(tb.url, tokens[i]));
      let ok = 0;
      const codes: Record<string, number> = {};
      for (const r of results) {
        if (r.status === 200) {
          expectCompleteCredentials(r);
          ok++;
        } else {
          expectRetryable503(r, ['ERR_STS_THROTTLED', 'ERR_STS_UNAVAILABLE']);
          codes[r.body.error.code] = (codes[r.body.error.code] ?? 0) + 1;
        }
      }
      const throttled = sts.requests.length - ok;
      console.info(`30 % STS throttling: ${ok}/${EXCHANGES} issued, 503s ${JSON.stringify(codes)}, ${sts.requests.length} STS calls (${throttled} throttled)`);
      // Retries absorb most throttling: far more than the 70 % a no-retry broker would issue.
      expect(ok).toBeGreaterThan(EXCHANGES * 0.7);
      // A 503 releases the one-time token: the job can retry with the same token.
      const failed = results.findIndex((r) => r.status === 503);
      if (failed >= 0) {
        sts.script = [{ kind: 'ok' }];
        expectCompleteCredentials(await requestCredentials(tb.url, tokens[failed]));
      }
    } finally {
      sts.script = [{ kind: 'ok' }];
      await tb.close();
    }
  });

  it('with 30 % of STS answers missing the secret key, never hands out partial credentials', async () => {
    // The circuit breaker would open after 5 failures in a row (a few times per 1 000 at 30 %) and
    // refuse the rest with 503 without calling STS — correct, but this test is about partial answers.
    const tb = await startLoadBroker({
      issuer,
      config: { aws: { sts_endpoint: sts.endpoint, circuit_breaker: { failure_threshold: 1000, open_seconds: 1 } } },
    });
    try {
      sts.requests.length = 0;
      sts.script = [...scriptWith({ kind: 'partial' }, 0.3, EXCHANGES, 11), { kind: 'ok' }];
      const tokens = await signMany(EXCHANGES);
      const results = await pool(EXCHANGES, CONCURRENCY, Date.now() + 120_000, (i) => requestCredentials(tb.url, tokens[i]));
      let ok = 0;
      for (const r of results) {
        if (r.status === 200) {
          expectCompleteCredentials(r);
          ok++;
        } else expectRetryable503(r, ['ERR_STS_UNAVAILABLE']);
      }
      // Each exchange made one STS call (a 200 with a missing field is not retried by the SDK).
      expect(sts.requests.length).toBe(EXCHANGES);
      const partialCalls = sts.requests.length - ok;
      expect(partialCalls).toBeGreaterThan(EXCHANGES * 0.2);
      expect(partialCalls).toBeLessThan(EXCHANGES * 0.4);
    } finally {
      sts.script = [{ kind: 'ok' }];
      await tb.close();
    }
  });
});

describe('issuer down', () => {
  it('keeps verifying with cached keys while the JWKS endpoint is down for the whole run', async () => {
    const tb = await startLoadBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint } } });
    try {
      issuer.down = true;
      // Tokens signed with the published key work; tokens with a key the broker never saw are refused
      // (their refetch fails against the down issuer) without disturbing the others.
      const stranger = await issuer.unpublishedKey();
      const good = await signMany(EXCHANGES);
      const strangers = await Promise.all(Array.from({ length: 50 }, () => issuer.sign(claims(), { key: stranger })));
      const all = [...good.map((t) => ({ t, good: true })), ...strangers.map((t) => ({ t, good: false }))];
      const results = await pool(all.length, CONCURRENCY, Date.now() + 120_000, (i) => requestCredentials(tb.url, all[i]!.t));
      results.forEach((r, i) => {
        if (all[i]!.good) expectCompleteCredentials(r);
        else {
          expect(r.status).toBe(401);
          expect(r.body.error.code).toBe('ERR_TOKEN_INVALID');
        }
      });
      expect((await fetch(`${tb.url}/readyz`)).status).toBe(200);
    } finally {
      issuer.down = false;
      await tb.close();
    }
  });
});
