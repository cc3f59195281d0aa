// The role index: each binding is indexed under its most selective exact condition, so a policy
// whose bindings all share an organization pin still finds its candidates in one lookup, and a
// denial's detail stays bounded however many bindings there are.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/src/config/load.js';
import fc from 'fast-check';
import { evaluate, explain } from '../../server/src/core/policy.js';

function policyWith(count: number, pinFirst: boolean) {
  const allow = Array.from({ length: count }, (_, i) => ({
    issuer: 'gh',
    claims: pinFirst ? { repository_owner_id: '9919', repository_id: String(1000 + i) } : { repository_id: String(1000 + i), repository_owner_id: '9919' },
  }));
  return parseConfig(
    JSON.stringify({
      issuers: { gh: { preset: 'github-actions', audiences: ['https://broker'] } },
      roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow } },
    }),
  ).config.policy;
}

const decide = (policy: ReturnType<typeof policyWith>, repositoryId: string) =>
  evaluate(policy, {
    issuer: 'gh',
    role: 'deploy',
    claims: { repository_owner_id: '9919', repository_id: repositoryId, run_id: '1', run_attempt: '1', actor_id: '2' },
    requestedDuration: undefined,
    tokenHash: '0'.repeat(64),
    roleChaining: false,
    now: new Date(0),
  });

describe('the role index', () => {
  it.each([true, false])('finds the one matching binding among 2 000 sharing an org pin (pin first: %s)', (pinFirst) => {
    const d = decide(policyWith(2000, pinFirst), '2500');
    expect(d.effect).toBe('allow');
    expect(d.effect === 'allow' && d.binding).toBe('roles.deploy.allow[1500]');
  });

  it('does not treat the shared org pin as the index: a foreign repository has no candidates', () => {
    const d = decide(policyWith(2000, true), '1');
    expect(d.effect).toBe('deny');
    if (d.effect !== 'deny') return;
    // Only the bounded sample of skipped bindings is explained; none was a candidate.
    expect(d.detail).toHaveLength(10);
    expect(d.omitted).toBe(0);
    expect(d.detail.every((v) => v.conditions.some((c) => c.claim === 'repository_id' && !c.matched))).toBe(true);
  });

  it('bounds the detail of a denial when many bindings are candidates', () => {
    // Every binding pins the same repository (its only exact claim) and a different ref pattern:
    // all 500 are candidates and none matches.
    const allow = Array.from({ length: 500 }, (_, i) => ({ issuer: 'gh', claims: { repository_id: '7', ref: { glob: `refs/heads/b${i}/*` } } }));
    const { config } = parseConfig(
      JSON.stringify({
        issuers: { gh: { preset: 'github-actions', audiences: ['https://broker'] } },
        roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow } },
      }),
    );
    const d = evaluate(config.policy, {
      issuer: 'gh',
      role: 'deploy',
      claims: { repository_id: '7', ref: 'refs/heads/main' },
      requestedDuration: undefined,
      tokenHash: '0'.repeat(64),
      roleChaining: false,
      now: new Date(0),
    });
    expect(d.effect === 'deny' && d.detail.length).toBe(20);
    expect(d.effect === 'deny' && d.omitted).toBe(480);
    expect(d.effect === 'deny' && d.detail.map((v) => v.path).slice(0, 2)).toEqual(['roles.deploy.allow[0]', 'roles.deploy.allow[1]']);
  });
});

describe('the glob-prefix index (bindings without an exact condition)', () => {
  const policyOf = (allow: Array<Record<string, unknown>>) =>
    parseConfig(
      JSON.stringify({
        issuers: { p: { url: 'https://p.example.com', audiences: ['https://broker'] } },
        roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: allow.map((claims) => ({ issuer: 'p', claims })) } },
      }),
    ).config.policy;
  const input = (claims: Record<string, unknown>) => ({
    issuer: 'p',
    role: 'deploy',
    claims,
    requestedDuration: undefined,
    tokenHash: '0'.repeat(64),
    roleChaining: false,
    now: new Date(0),
  });

  it('decides exactly like a scan of every binding, for random glob-only policies', () => {
    const char = fc.constantFrom('a', 'b', '/', '-', 'é');
    const pattern = fc.string({ unit: fc.oneof(char, char, fc.constantFrom('*', '?', '**')), minLength: 1, maxLength: 8 });
    const condition = fc.oneof(fc.record({ glob: pattern }), fc.record({ glob: fc.array(pattern, { minLength: 1, maxLength: 3 }) }));
    const binding = fc.dictionary(fc.constantFrom('r', 's'), condition, { minKeys: 1, maxKeys: 2 });
    const value = fc.oneof(fc.string({ unit: char, maxLength: 9 }), fc.constant(7), fc.constant(undefined));
    fc.assert(
      fc.property(fc.array(binding, { minLength: 1, maxLength: 40 }), value, value, (allow, r, s) => {
        const policy = policyOf(allow);
        const claims: Record<string, unknown> = {};
        if (r !== undefined) claims.r = r;
        if (s !== undefined) claims.s = s;
        const scanned = explain(policy, input(claims)).allow.find((v) => v.matched)?.path;
        const d = evaluate(policy, input(claims));
        expect(d.effect === 'allow' ? d.binding : undefined).toBe(scanned);
      }),
      { numRuns: 600, seed: 20261128 },
    );
  });

  it('finds the one binding among 10 000 by a long literal prefix, and does not scan the others', () => {
    const allow = Array.from({ length: 10_000 }, (_, i) => ({ repository: { glob: `octo-org/repo-${i}-*` } }));
    const policy = policyOf(allow);
    const d = evaluate(policy, input({ repository: 'octo-org/repo-9999-api' }));
    expect(d.effect === 'allow' && d.binding).toBe('roles.deploy.allow[9999]');
    const miss = evaluate(policy, input({ repository: 'octo-org/other' }));
    // Nothing shares the value's path past "octo-org/": no candidate, only the bounded sample.
    expect(miss.effect === 'deny' && miss.omitted).toBe(0);
  });
});
