// Policy evaluation: deny wins, unknown roles, no-match detail, binding order, issuer isolation,
// the role index against a plain scan, and the claims a decision used.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { evaluate, explain, type CompiledPolicy, type Decision, type EvaluationInput } from '../../server/src/core/policy.js';
import { parseConfig } from '../../server/src/config/load.js';

const AUD = ['https://credbroker.example.com'];
const ARN = 'arn:aws:iam::111122223333:role/deploy';
const NOW = new Date('2026-01-01T00:00:00Z');

const policyOf = (cfg: Record<string, unknown>): CompiledPolicy => parseConfig(JSON.stringify(cfg), 'test').config.policy;

const input = (claims: Record<string, unknown>, over: Partial<EvaluationInput> = {}): EvaluationInput => ({
  issuer: 'gh',
  claims,
  role: 'deploy',
  requestedDuration: undefined,
  tokenHash: 'a1b2c3d4e5f6'.repeat(5) + 'abcd',
  roleChaining: false,
  now: NOW,
  ...over,
});

const github = {
  repository_id: '487920697',
  repository_owner_id: '9919',
  repository: 'octo-org/octo-repo',
  ref: 'refs/heads/main',
  ref_protected: 'true',
  event_name: 'push',
  runner_environment: 'github-hosted',
  environment: 'production',
  run_id: '16055869479',
  run_attempt: '1',
  actor: 'octocat',
  actor_id: '583231',
  sub: 'repo:octo-org/octo-repo:environment:production',
};

const ghPolicy = policyOf({
  issuers: {
    gh: { preset: 'github-actions', audiences: AUD },
    gl: { preset: 'gitlab', audiences: AUD },
  },
  roles: {
    deploy: {
      arn: ARN,
      allow: [
        { issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '487920697', ref: 'refs/heads/main', ref_protected: true } },
        { issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '487920697', environment: 'production' } },
        { issuer: 'gl', claims: { project_id: '20', ref_protected: 'true' } },
      ],
      deny: [{ issuer: 'gh', claims: { event_name: 'pull_request_target' } }],
    },
    other: { arn: 'arn:aws:iam::111122223333:role/other', allow: [{ issuer: 'gl', claims: { project_id: '20', ref_protected: 'true' } }] },
  },
  deny: [{ claims: { runner_environment: 'self-hosted' } }],
});

const decide = (claims: Record<string, unknown>, over: Partial<EvaluationInput> = {}): Decision => evaluate(ghPolicy, input(claims, over));
const reasonOf = (d: Decision) => (d.effect === 'deny' ? d.reason : 'allow');

describe('evaluate: allow and deny', () => {
  const cases: Array<[name: string, claims: Record<string, unknown>, over: Partial<EvaluationInput>, expected: string, binding?: string]> = [
    ['allows a token of the pinned repository on protected main', github, {}, 'allow', 'roles.deploy.allow[0]'],
    ['denies a token whose ref is not protected (and no other binding fits)', { ...github, ref_protected: 'false', environment: 'staging' }, {}, 'ERR_POLICY_NO_MATCH'],
    ['denies a token of another repository', { ...github, repository_id: '1' }, {}, 'ERR_POLICY_NO_MATCH'],
    ['denies a token of another owner with the same repository id', { ...github, repository_owner_id: '1' }, {}, 'ERR_POLICY_NO_MATCH'],
    ['denies an unknown role', github, { role: 'nope' }, 'ERR_POLICY_UNKNOWN_ROLE'],
    ['denies a role name that is an Object.prototype member', github, { role: 'constructor' }, 'ERR_POLICY_UNKNOWN_ROLE'],
    ['denies by a global deny rule even when a binding matches', { ...github, runner_environment: 'self-hosted' }, {}, 'ERR_POLICY_DENY_RULE'],
    ['denies by a per-role deny rule even when a binding matches', { ...github, event_name: 'pull_request_target' }, {}, 'ERR_POLICY_DENY_RULE'],
    ['applies a global deny rule without an issuer to every issuer', { project_id: '20', ref_protected: 'true', runner_environment: 'self-hosted' }, { issuer: 'gl' }, 'ERR_POLICY_DENY_RULE'],
    ['does not apply a per-role deny rule of another issuer', { project_id: '20', ref_protected: 'true', event_name: 'pull_request_target' }, { issuer: 'gl' }, 'allow', 'roles.deploy.allow[2]'],
    ['never matches a binding of another issuer with the same claims', { project_id: '20', ref_protected: 'true' }, { issuer: 'gh' }, 'ERR_POLICY_NO_MATCH'],
    ['never matches GitHub bindings for a token of GitLab with GitHub claims', github, { issuer: 'gl' }, 'ERR_POLICY_NO_MATCH'],
    ['denies a token of an issuer no binding of the role uses', { project_id: '20', ref_protected: 'true' }, { issuer: 'gh', role: 'other' }, 'ERR_POLICY_NO_MATCH'],
    ['denies a boolean true where GitHub sends strings (typed)', { ...github, ref_protected: true, environment: 'staging' }, {}, 'ERR_POLICY_NO_MATCH'],
    ['denies a number repository_id where GitHub sends strings (typed)', { ...github, repository_id: 487920697 }, {}, 'ERR_POLICY_NO_MATCH'],
  ];
  it.each(cases)('%s', (_name, claims, over, expected, binding) => {
    const d = decide(claims, over);
    expect(reasonOf(d)).toBe(expected);
    if (d.effect === 'allow') {
      expect(d.binding).toBe(binding);
      expect(d.roleArn).toBe(ARN);
    }
  });

  it('lets the first matching binding win', () => {
    // allow[0] and allow[1] both match the fixture claims.
    const d = decide(github);
    expect(d.effect).toBe('allow');
    if (d.effect === 'allow') expect(d.binding).toBe('roles.deploy.allow[0]');
    const second = decide({ ...github, ref: 'refs/heads/dev' });
    expect(second.effect === 'allow' && second.binding).toBe('roles.deploy.allow[1]');
  });

  it('keeps binding order even when the earlier binding is indexed on another claim', () => {
    const policy = policyOf({
      issuers: { p: { url: 'https://p.example.com', audiences: AUD } },
      roles: {
        deploy: {
          arn: ARN,
          allow: [
            { issuer: 'p', claims: { b: 'B' } },
            { issuer: 'p', claims: { a: 'A' } },
            { issuer: 'p', claims: { c: { glob: '*' } } },
          ],
        },
      },
    });
    const at = (claims: Record<string, unknown>) => {
      const d = evaluate(policy, input(claims, { issuer: 'p' }));
      return d.effect === 'allow' ? d.binding : d.reason;
    };
    expect(at({ a: 'A', b: 'B', c: 'C' })).toBe('roles.deploy.allow[0]');
    expect(at({ a: 'A', c: 'C' })).toBe('roles.deploy.allow[1]');
    expect(at({ c: 'C' })).toBe('roles.deploy.allow[2]');
    expect(at({ a: 'x' })).toBe('ERR_POLICY_NO_MATCH');
  });

  it('reports the matched deny rule with its path and conditions', () => {
    const d = decide({ ...github, event_name: 'pull_request_target' });
    expect(d).toMatchObject({
      effect: 'deny',
      reason: 'ERR_POLICY_DENY_RULE',
      detail: [{ path: 'roles.deploy.deny[0]', matched: true, conditions: [{ claim: 'event_name', matched: true, actual: '"pull_request_target"' }] }],
    });
  });

  it('checks global deny rules before per-role deny rules', () => {
    const d = decide({ ...github, event_name: 'pull_request_target', runner_environment: 'self-hosted' });
    expect(d.effect === 'deny' && d.detail[0]!.path).toBe('deny[0]');
  });

  it('returns no detail and no claims for an unknown role', () => {
    expect(decide(github, { role: 'nope' })).toEqual({ effect: 'deny', reason: 'ERR_POLICY_UNKNOWN_ROLE', detail: [], usedClaims: {}, evaluatedAt: '2026-01-01T00:00:00.000Z' });
  });

  it('stamps the decision with the given clock, not the wall clock', () => {
    expect(decide(github, { now: new Date('2030-05-06T07:08:09Z') }).evaluatedAt).toBe('2030-05-06T07:08:09.000Z');
  });
});

describe('evaluate: no-match detail', () => {
  it('names claim, expected, actual and mismatch kind for each condition of a considered binding', () => {
    const d = decide({ ...github, ref_protected: 'false', environment: undefined });
    expect(d.effect).toBe('deny');
    if (d.effect !== 'deny') return;
    expect(d.reason).toBe('ERR_POLICY_NO_MATCH');
    const first = d.detail.find((v) => v.path === 'roles.deploy.allow[0]');
    expect(first?.matched).toBe(false);
    expect(first?.conditions).toEqual([
      { claim: 'repository_owner_id', op: 'equals', expected: '"9919"', actual: '"9919"', matched: true },
      { claim: 'repository_id', op: 'equals', expected: '"487920697"', actual: '"487920697"', matched: true },
      { claim: 'ref', op: 'equals', expected: '"refs/heads/main"', actual: '"refs/heads/main"', matched: true },
      { claim: 'ref_protected', op: 'equals', expected: '"true"', actual: '"false"', matched: false, mismatch: 'value' },
    ]);
    const second = d.detail.find((v) => v.path === 'roles.deploy.allow[1]');
    expect(second?.conditions.find((c) => c.claim === 'environment')).toEqual({
      claim: 'environment', op: 'equals', expected: '"production"', actual: '(absent)', matched: false, mismatch: 'missing',
    });
  });

  it('reports a type mismatch for a number where the binding expects a string', () => {
    const d = decide({ ...github, ref_protected: true, environment: 'staging' });
    const cond = d.effect === 'deny' ? d.detail.find((v) => v.path === 'roles.deploy.allow[0]')?.conditions.find((c) => c.claim === 'ref_protected') : undefined;
    expect(cond).toMatchObject({ matched: false, mismatch: 'type', actual: 'true', expected: '"true"' });
  });

  it('lists each considered binding once in the no-match detail', () => {
    const policy = policyOf({
      issuers: { gh: { preset: 'github-actions', audiences: AUD } },
      roles: { deploy: { arn: ARN, allow: [{ issuer: 'gh', claims: { repository_id: { one_of: ['1', 1] }, ref: 'refs/heads/main' } }] } },
    });
    const d = evaluate(policy, input({ repository_id: '1', ref: 'refs/heads/dev' }));
    expect(d.effect === 'deny' && d.detail.map((v) => v.path)).toEqual(['roles.deploy.allow[0]']);
  });

  it('names at most ten bindings the index skipped, in config order', () => {
    const allow = Array.from({ length: 15 }, (_, i) => ({ issuer: 'gh', claims: { repository_id: String(i), ref: 'refs/heads/main' } }));
    const policy = policyOf({ issuers: { gh: { preset: 'github-actions', audiences: AUD } }, roles: { deploy: { arn: ARN, allow } } });
    const d = evaluate(policy, input({ repository_id: '12', ref: 'refs/heads/dev' }));
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_NO_MATCH');
    const paths = d.effect === 'deny' ? d.detail.map((v) => v.path) : [];
    // The candidate (allow[12]) plus ten skipped ones.
    expect(paths).toContain('roles.deploy.allow[12]');
    expect(paths).toHaveLength(11);
    const indexes = paths.map((p) => Number(/\[(\d+)\]$/.exec(p)![1]));
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
  });

  it('lists every claim the no-match detail names among the used claims', () => {
    const d = decide({ ...github, repository_owner_id: '1' });
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_NO_MATCH');
    const named = new Set(d.effect === 'deny' ? d.detail.flatMap((v) => v.conditions.map((c) => c.claim)) : []);
    expect(named.has('repository_owner_id')).toBe(true);
    for (const claim of named) if (claim in github) expect(Object.keys(d.usedClaims)).toContain(claim);
  });

  it('names the mismatching repository_id when a token of another repository is denied', () => {
    const d = decide({ ...github, repository_owner_id: '1' });
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_NO_MATCH');
    const conds = d.effect === 'deny' ? d.detail.flatMap((v) => v.conditions) : [];
    expect(conds).toContainEqual({ claim: 'repository_owner_id', op: 'equals', expected: '"9919"', actual: '"1"', matched: false, mismatch: 'value' });
  });
});

describe('evaluate: claims the decision used', () => {
  const policy = policyOf({
    issuers: { p: { url: 'https://p.example.com', audiences: AUD } },
    roles: {
      deploy: {
        arn: ARN,
        session_name: 'ci-{run}',
        source_identity: 'ci-{project}',
        tags: { branch: '{ref}' },
        allow: [{ issuer: 'p', claims: { project: 'p1', env: { glob: 'prod*' } } }],
        deny: [{ issuer: 'p', claims: { ssh: true } }],
      },
    },
    deny: [{ claims: { runner: 'self-hosted' } }],
  });
  const claims = { project: 'p1', env: 'prod', run: '42', ref: 'main', runner: 'hosted', unrelated: 'secret-ish', sub: 'x' };

  it('lists binding, deny-rule and template claims, and nothing else, on allow', () => {
    const d = evaluate(policy, input(claims, { issuer: 'p' }));
    expect(d.effect).toBe('allow');
    expect(d.usedClaims).toEqual({ project: 'p1', env: 'prod', run: '42', ref: 'main', runner: 'hosted' });
  });

  it('lists the deny-rule claims on a deny-rule hit', () => {
    const d = evaluate(policy, input({ ...claims, ssh: true }, { issuer: 'p' }));
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_DENY_RULE');
    expect(d.usedClaims).toEqual({ runner: 'hosted', ssh: true });
  });

  it('lists the claims of considered bindings on no match', () => {
    const d = evaluate(policy, input({ ...claims, env: 'dev' }, { issuer: 'p' }));
    expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_NO_MATCH');
    expect(d.usedClaims).toEqual({ project: 'p1', env: 'dev', runner: 'hosted' });
  });

  it('fills the allow decision with the rendered naming', () => {
    const d = evaluate(policy, input(claims, { issuer: 'p' }));
    expect(d).toMatchObject({ effect: 'allow', sessionName: 'ci-42', sourceIdentity: 'ci-p1', tags: [{ Key: 'branch', Value: 'main' }], durationSeconds: 3600 });
  });
});

describe('evaluate: session tags are exact or left out', () => {
  const policy = policyOf({
    issuers: { p: { url: 'https://p.example.com', audiences: AUD } },
    roles: {
      deploy: {
        arn: ARN,
        tags: { ref: '{ref}', project: '{project}' },
        transitive_tag_keys: ['ref'],
        allow: [{ issuer: 'p', claims: { project: 'p1' } }],
      },
    },
  });
  const tagsOf = (ref: string) => {
    const d = evaluate(policy, input({ project: 'p1', ref, sub: 'x' }, { issuer: 'p' }));
    if (d.effect !== 'allow') throw new Error('expected allow');
    return d;
  };

  it('does not give a branch with "#" the tag of the branch with "_" (an IAM condition on one must not match the other)', () => {
    const legit = tagsOf('refs/heads/release_2024');
    const lookalike = tagsOf('refs/heads/release#2024');
    expect(legit.tags).toContainEqual({ Key: 'ref', Value: 'refs/heads/release_2024' });
    expect(lookalike.tags.find((t) => t.Key === 'ref')).toBeUndefined();
    expect(lookalike.omittedTags).toEqual([{ key: 'ref', reason: 'characters' }]);
    expect(lookalike.tags).toContainEqual({ Key: 'project', Value: 'p1' });
  });

  it('does not cut two long values that differ after 256 characters into the same tag', () => {
    const a = tagsOf(`refs/heads/${'x'.repeat(250)}-a`);
    const b = tagsOf(`refs/heads/${'x'.repeat(250)}-b`);
    expect(a.tags.find((t) => t.Key === 'ref')).toBeUndefined();
    expect(b.tags.find((t) => t.Key === 'ref')).toBeUndefined();
    expect(a.omittedTags).toEqual([{ key: 'ref', reason: 'length' }]);
  });

  it('does not name an omitted tag as transitive', () => {
    expect(tagsOf('refs/heads/main').transitiveTagKeys).toEqual(['ref']);
    expect(tagsOf('refs/heads/a#b').transitiveTagKeys).toEqual([]);
  });
});

describe('evaluate: the role index decides like a full scan', () => {
  const VALUES = ['1', 1, 'x', 'true', true, false, 'a/b'] as const;
  const value = fc.constantFrom(...VALUES);
  const claimName = fc.constantFrom('a', 'b', 'c');
  const condition = fc.oneof(
    value,
    fc.record({ one_of: fc.array(value, { minLength: 1, maxLength: 3 }) }),
    fc.array(value, { minLength: 1, maxLength: 3 }),
    fc.record({ glob: fc.constantFrom('*', 'x', 'a/*', '**', '?') }),
    fc.record({ present: fc.boolean() }),
  );
  const claimsArb = fc.dictionary(claimName, condition, { minKeys: 1, maxKeys: 3 });
  const binding = fc.record({ issuer: fc.constantFrom('p', 'q'), claims: claimsArb });
  const denyRule = fc.record({ issuer: fc.constantFrom('p', 'q'), claims: claimsArb });
  const token = fc.dictionary(claimName, fc.oneof(value, fc.constant(null)), { maxKeys: 3 });

  it('gives the same decision as explain\'s scan of every binding', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.array(binding, { minLength: 1, maxLength: 12 }),
        fc.array(denyRule, { maxLength: 2 }),
        fc.array(fc.tuple(token, fc.constantFrom('p', 'q')), { minLength: 1, maxLength: 8 }),
        (allow, deny, tokens) => {
          const policy = policyOf({
            issuers: { p: { url: 'https://p.example.com', audiences: AUD }, q: { url: 'https://q.example.com', audiences: AUD } },
            roles: { deploy: { arn: ARN, session_name: 'ci-{a}', source_identity: 'ci-{b}', tags: {}, allow, deny } },
          });
          for (const [claims, issuer] of tokens) {
            const { decision, deny: denyVerdicts, allow: allowVerdicts } = explain(policy, input(claims, { issuer }));
            const scanned = denyVerdicts.some((v) => v.matched)
              ? 'ERR_POLICY_DENY_RULE'
              : (allowVerdicts.find((v) => v.matched)?.path ?? 'ERR_POLICY_NO_MATCH');
            expect(decision.effect === 'allow' ? decision.binding : decision.reason).toBe(scanned);
            seen.add(scanned.startsWith('roles.') ? (scanned.endsWith('[0]') ? 'first' : 'later') : scanned);
          }
        },
      ),
      { numRuns: 400 },
    );
    // The generator must exercise every outcome, or the comparison proves little.
    expect([...seen].sort()).toEqual(['ERR_POLICY_DENY_RULE', 'ERR_POLICY_NO_MATCH', 'first', 'later']);
  });

  it('distinguishes 1 from "1" through the index', () => {
    const policy = policyOf({
      issuers: { p: { url: 'https://p.example.com', audiences: AUD } },
      roles: { deploy: { arn: ARN, allow: [{ issuer: 'p', claims: { id: 1 } }, { issuer: 'p', claims: { id: { one_of: ['1', 'x'] } } }] } },
    });
    const at = (id: unknown) => {
      const d = evaluate(policy, input({ id }, { issuer: 'p' }));
      return d.effect === 'allow' ? d.binding : d.reason;
    };
    expect(at(1)).toBe('roles.deploy.allow[0]');
    expect(at('1')).toBe('roles.deploy.allow[1]');
    expect(at('x')).toBe('roles.deploy.allow[1]');
    expect(at(true)).toBe('ERR_POLICY_NO_MATCH');
    expect(at(['1'])).toBe('ERR_POLICY_NO_MATCH');
  });
});

describe('evaluate: a deny rule never fails open on a type mismatch', () => {
  const policy = policyOf({
    issuers: { p: { url: 'https://p.example.com', audiences: AUD } },
    roles: {
      deploy: {
        arn: ARN,
        allow: [{ issuer: 'p', claims: { project: 'p1', emergency_freeze: 'false' } }, { issuer: 'p', claims: { project: 'p2' } }],
        deny: [{ issuer: 'p', claims: { emergency_freeze: true } }, { issuer: 'p', claims: { level: { glob: '9*' } } }],
      },
    },
  });
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['denies a token whose "true" meets a deny rule written as true', { project: 'p2', emergency_freeze: 'true' }, 'ERR_POLICY_DENY_RULE'],
    ['denies a token whose boolean meets it exactly', { project: 'p2', emergency_freeze: true }, 'ERR_POLICY_DENY_RULE'],
    ['denies a number that a deny glob matches as text', { project: 'p2', level: 95 }, 'ERR_POLICY_DENY_RULE'],
    ['still compares allow bindings strictly (false is not "false")', { project: 'p1', emergency_freeze: false }, 'ERR_POLICY_NO_MATCH'],
    ['allows when no deny rule matches in any form', { project: 'p2', emergency_freeze: 'false', level: 5 }, 'roles.deploy.allow[1]'],
  ];
  it.each(cases)('%s', (_name, claims, expected) => {
    const d = evaluate(policy, input({ sub: 'x', ...claims }, { issuer: 'p' }));
    expect(d.effect === 'allow' ? d.binding : d.reason).toBe(expected);
  });

  it('marks in the verdict that the deny rule matched as text', () => {
    const d = evaluate(policy, input({ sub: 'x', project: 'p2', emergency_freeze: 'true' }, { issuer: 'p' }));
    expect(d.effect === 'deny' ? d.detail[0]!.conditions[0] : undefined).toMatchObject({ claim: 'emergency_freeze', matched: true, asText: true });
  });
});
