// Policy evaluation cost as the number of bindings grows. The policy is compiled once and indexed
// by role → issuer → each binding's most selective exact condition, or, for a binding without one,
// the literal prefix of a glob — so evaluation should stay flat. Three binding shapes: the
// distinguishing id first, a shared organization pin first, and globs only.
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../server/src/config/load.js';
import { evaluate, type CompiledPolicy, type EvaluationInput } from '../server/src/core/policy.js';
import { providerClaims } from '../test/support/fixtures.js';

export type BindingShape = 'id-first' | 'org-pin-first' | 'glob-only';

export interface PolicyPoint {
  bindings: number;
  shape: BindingShape;
  compileMs: number;
  allowUs: number;
  denyUs: number;
}

const ISSUER_URL = 'https://token.actions.githubusercontent.com';

function policyWith(n: number, shape: BindingShape): CompiledPolicy {
  const allow = Array.from({ length: n }, (_, i) => {
    const repo = String(100_000_000 + i);
    const claims: Record<string, unknown> =
      shape === 'id-first'
        ? { repository_id: repo, repository_owner_id: '9919', ref: { glob: 'refs/heads/**' } }
        : shape === 'org-pin-first'
          ? { repository_owner_id: '9919', repository_id: repo, ref: { glob: 'refs/heads/**' } }
          : { repository: { glob: `octo-org/repo-${i}` }, ref: { glob: 'refs/heads/**' } };
    return { issuer: 'gh', claims };
  });
  const text = JSON.stringify({
    issuers: { gh: { preset: 'github-actions', audiences: ['https://credbroker.bench'] } },
    roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/deploy', allow } },
    deny: [{ issuer: 'gh', claims: { runner_environment: 'self-hosted' } }],
  });
  return parseConfig(text, 'bench').config.policy;
}

/** Mean µs per call: repeats for at least `minMs` (and at least 3 calls), at most `maxCalls`. */
function timeIt(fn: () => unknown, minMs = 300, maxCalls = 200_000): number {
  // Warm up for a third of the measuring time (at least 50 calls), so the JIT has compiled the path.
  const warm = performance.now();
  for (let i = 0; i < 50 || performance.now() - warm < minMs / 3; i++) {
    fn();
    if (i >= maxCalls) break;
  }
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  while (calls < maxCalls && (elapsed < minMs || calls < 3)) {
    fn();
    calls++;
    if ((calls & 15) === 0 || elapsed < minMs) elapsed = performance.now() - started;
  }
  return ((performance.now() - started) * 1000) / calls;
}

export function benchPolicy(sizes = [10, 1_000, 10_000, 100_000], shapes: BindingShape[] = ['id-first', 'org-pin-first', 'glob-only']): PolicyPoint[] {
  const base = providerClaims('github-actions');
  const points: PolicyPoint[] = [];
  for (const shape of shapes) {
    for (const n of sizes) {
      const t0 = performance.now();
      const policy = policyWith(n, shape);
      const compileMs = performance.now() - t0;
      const last = n - 1;
      const input = (claims: Record<string, unknown>): EvaluationInput => ({
        issuer: 'gh',
        claims: { iss: ISSUER_URL, ...claims },
        role: 'deploy',
        requestedDuration: undefined,
        tokenHash: 'a'.repeat(64),
        roleChaining: false,
        now: new Date(),
      });
      // Allow: the last binding matches (a scan would have to look at every binding before it).
      const allowInput = input({ ...base, repository_id: String(100_000_000 + last), repository: `octo-org/repo-${last}` });
      const denyInput = input({ ...base, repository_id: '1', repository: 'octo-org/unknown' });
      const check = evaluate(policy, allowInput);
      if (check.effect !== 'allow') throw new Error(`policy bench: expected allow at ${n} ${shape}`);
      if (evaluate(policy, denyInput).effect !== 'deny') throw new Error(`policy bench: expected deny at ${n} ${shape}`);
      points.push({
        bindings: n,
        shape,
        compileMs,
        allowUs: timeIt(() => evaluate(policy, allowInput)),
        denyUs: timeIt(() => evaluate(policy, denyInput)),
      });
    }
  }
  return points;
}
