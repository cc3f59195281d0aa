// 1 000 exchanges in flight at once, over real sockets on loopback, against an STS responder that
// takes 20 ms per call: every one gets complete credentials, each its own, with one STS call each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { expectCompleteCredentials, expectRetryable503, startLoadBroker } from './helpers.js';

const CONCURRENT = 1000;
let issuer: TestIssuer;
let sts: FakeSts;

const signMany = (n: number) =>
  Promise.all(Array.from({ length: n }, () => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE })));

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
  sts.latencyMs = 20;
});
afterAll(async () => {
  await Promise.all([issuer?.close(), sts?.close()]);
});

describe('concurrency', () => {
  it(`answers ${CONCURRENT} concurrent exchanges with complete credentials and no errors`, async () => {
    const tb = await startLoadBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint } } });
    try {
      sts.requests.length = 0;
      const tokens = await signMany(CONCURRENT);
      const started = Date.now();
      const results = await Promise.all(tokens.map((t) => requestCredentials(tb.url, t)));
      const elapsed = Date.now() - started;
      const statuses: Record<number, number> = {};
      for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      expect(statuses).toEqual({ 200: CONCURRENT });
      for (const r of results) expectCompleteCredentials(r);
      expect(new Set(results.map((r) => r.body.AccessKeyId)).size).toBe(CONCURRENT);
      expect(sts.requests.length).toBe(CONCURRENT);
      expect(tb.auditCounts.decisions).toEqual({ 'allow:OK': CONCURRENT });
      console.info(`${CONCURRENT} concurrent exchanges: ${elapsed} ms`);
    } finally {
      await tb.close();
    }
  });

  it(`with per-account STS pacing at 50 calls/s (a tight account quota), answers a burst of ${CONCURRENT} with credentials or 503 + Retry-After, nothing else`, async () => {
    // Pacing well below the burst (the default is 500/s): what a burst of jobs gets on a tight quota.
    const tb = await startLoadBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint, sts_calls_per_second_per_account: 50 } } });
    try {
      sts.requests.length = 0;
      const tokens = await signMany(CONCURRENT);
      const results = await Promise.all(tokens.map((t) => requestCredentials(tb.url, t)));
      let ok = 0;
      for (const r of results) {
        if (r.status === 200) {
          expectCompleteCredentials(r);
          ok++;
        } else expectRetryable503(r, ['ERR_STS_THROTTLED']);
      }
      // At least the first bucket (50) plus ~2 s of pacing at 50/s got through; STS saw no more calls than answers.
      expect(ok).toBeGreaterThanOrEqual(50);
      expect(sts.requests.length).toBe(ok);
      console.info(`pacing 50/s, burst of ${CONCURRENT}: ${ok} issued, ${CONCURRENT - ok} × 503 ERR_STS_THROTTLED (broker-side pacing)`);
    } finally {
      await tb.close();
    }
  });
});
