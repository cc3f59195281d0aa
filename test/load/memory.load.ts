// Memory stays flat across 50 000 exchanges. Tokens live 5 s (clock skew 0), so the in-memory
// replay ledger's sweep (every 10 s, of entries past their token's expiry) runs several times.
// Heap used is measured after a full GC every 2 500 exchanges from 10 000 on (by then JIT code and
// lazily loaded SDK parts are in). It moves by several MB between checkpoints with whatever is live
// at that moment (ledger size, sockets, buffers), so the bounds compare peaks, not single points:
//   - the peak of the second half (27 500 → 50 000) is ≤ the peak of the first half (10 000 →
//     25 000) + 8 MB: a leak of ~350 bytes per exchange or more breaks it;
//   - no checkpoint exceeds the first one by more than 20 MB;
//   - the ledger holds no more entries than exchanges whose token could still be live or not yet
//     swept: those signed in the last 5 s (lifetime) + 10 s (sweep interval) + 2 s (slack).
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { MemoryReplayLedger } from '../../server/src/replay/ledger.js';
import { pool, startLoadBroker } from './helpers.js';

const TOTAL = 50_000;
const BATCH = 500;
const CONCURRENCY = 50;
const LIFETIME_S = 5;
const SWEEP_S = 10;
const MB = 1024 * 1024;
const WARM = 10_000;

function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

interface HeapPoint {
  used: number;
  /** Per V8 heap space (old, code, large objects…), to tell leaks from JIT code growth. */
  spaces: Record<string, number>;
}

function heapAfterGc(gc: () => void): HeapPoint {
  for (let i = 0; i < 3; i++) gc();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round((s.space_used_size / MB) * 10) / 10]));
  return { used: process.memoryUsage().heapUsed, spaces };
}

let issuer: TestIssuer;
let sts: FakeSts;

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
  // ES256 signs several times faster than RS256: the test spends its time in the broker.
  await issuer.rotate({ alg: 'ES256' });
});
afterAll(async () => {
  await Promise.all([issuer?.close(), sts?.close()]);
});

describe('memory', () => {
  it(`stays flat across ${TOTAL} exchanges, with the replay ledger swept of expired tokens`, async () => {
    const gc = gcFunction();
    const ledger = new MemoryReplayLedger();
    const tb = await startLoadBroker({
      issuer,
      issuerSettings: { test: { clock_skew_seconds: 0 } },
      config: { aws: { sts_endpoint: sts.endpoint } },
      brokerOptions: { ledger },
    });
    const base = providerClaims('github-actions');
    const batches: Array<{ signedAt: number; count: number }> = [];
    const heap: Record<number, HeapPoint> = {};
    const started = Date.now();
    const deadline = started + 200_000;
    let done = 0;
    let failures = 0;
    try {
      while (done < TOTAL) {
        if (Date.now() > deadline) throw new Error(`deadline passed after ${done} exchanges`);
        const signedAt = Date.now();
        // 100 identities (repositories), as many jobs each.
        const tokens = await Promise.all(
          Array.from({ length: BATCH }, (_, i) =>
            issuer.sign({ ...base, aud: TEST_AUDIENCE, sub: `repo:octo-org/repo-${(done + i) % 100}:ref:refs/heads/main` }, { lifetimeSeconds: LIFETIME_S }),
          ),
        );
        const statuses = await pool(BATCH, CONCURRENCY, deadline, async (i) => (await requestCredentials(tb.url, tokens[i])).status);
        failures += statuses.filter((s) => s !== 200).length;
        batches.push({ signedAt, count: BATCH });
        done += BATCH;
        sts.requests.length = 0; // the responder's own request log, not the broker's memory
        if (done >= WARM && done % 2_500 === 0) heap[done] = heapAfterGc(gc);
      }
      const elapsedS = (Date.now() - started) / 1000;
      const recent = batches.filter((b) => b.signedAt >= Date.now() - (LIFETIME_S + SWEEP_S + 2) * 1000).reduce((a, b) => a + b.count, 0);
      const points = Object.entries(heap).map(([n, h]) => ({ n: Number(n), used: h.used }));
      const peak = (from: number, to: number) => Math.max(...points.filter((p) => p.n >= from && p.n <= to).map((p) => p.used));
      const firstHalf = peak(WARM, TOTAL / 2);
      const secondHalf = peak(TOTAL / 2 + 1, TOTAL);
      const first = heap[WARM]!.used;
      console.info(
        `${TOTAL} exchanges in ${elapsedS.toFixed(0)} s (${(TOTAL / elapsedS).toFixed(0)}/s); heap after GC (MB) by exchanges: ` +
          points.map((p) => `${p.n}: ${(p.used / MB).toFixed(1)}`).join(', ') +
          `; peak first half ${(firstHalf / MB).toFixed(1)}, second half ${(secondHalf / MB).toFixed(1)}; ` +
          `RSS ${(process.memoryUsage().rss / MB).toFixed(0)} MB; ledger ${ledger.size} entries (bound ${recent}); ` +
          `spaces at ${WARM} / ${TOTAL}: ${JSON.stringify(heap[WARM]!.spaces)} / ${JSON.stringify(heap[TOTAL]!.spaces)}`,
      );
      expect(failures).toBe(0);
      expect(secondHalf - firstHalf).toBeLessThanOrEqual(8 * MB);
      for (const p of points) expect(p.used - first, `at ${p.n}`).toBeLessThanOrEqual(20 * MB);
      expect(ledger.size).toBeLessThanOrEqual(recent);
      expect(ledger.size).toBeLessThan(TOTAL);
    } finally {
      await tb.close();
    }
  });
});
