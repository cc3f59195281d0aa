// `policy diff`: computed from the compiled policies. Named cases for what a reviewer reads, and a
// property: for random pairs of related policies and random tokens, every decision that changes is
// explained by an item of the diff, and an empty diff means no decision changed.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../../server/src/config/load.js';
import { diffMarkdown, diffPolicies, diffIsEmpty, type PolicyDiff } from '../../server/src/core/policy-diff.js';
import { evaluate, type CompiledPolicy } from '../../server/src/core/policy.js';
import { matchCondition, compileCondition } from '../../server/src/core/conditions.js';

const AUD = ['https://broker'];
const ARN = (n: string) => `arn:aws:iam::111122223333:role/${n}`;

function load(cfg: Record<string, unknown>) {
  const { config, warnings } = parseConfig(JSON.stringify(cfg), 'test');
  return { policy: config.policy, warnings };
}

const base = {
  issuers: { gh: { preset: 'github-actions', audiences: AUD }, gl: { preset: 'gitlab', audiences: AUD } },
  roles: {
    deploy: {
      arn: ARN('deploy'),
      allow: [
        { issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '1', ref: 'refs/heads/main' } },
        { issuer: 'gl', claims: { project_id: '20', ref_protected: 'true' } },
      ],
    },
  },
};
const withRole = (edit: (r: Record<string, any>) => void) => {
  const c = JSON.parse(JSON.stringify(base)) as Record<string, any>;
  edit(c.roles.deploy);
  return c;
};

describe('policy diff: what a reviewer reads', () => {
  it('finds nothing between a policy and itself, even with bindings and conditions reordered', () => {
    const reordered = withRole((r) => {
      r.allow.reverse();
      r.allow[1].claims = { ref: 'refs/heads/main', repository_id: '1', repository_owner_id: '9919' };
    });
    const d = diffPolicies(load(base), load(reordered));
    expect(diffIsEmpty(d)).toBe(true);
    expect(diffMarkdown(d, { old: 'a', new: 'b' })).toMatch(/No change to who may assume which role/);
  });

  it('reports a new repository as access gained, and its removal as access lost', () => {
    const more = withRole((r) => r.allow.push({ issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '2' } }));
    const d = diffPolicies(load(base), load(more));
    expect(d.gained).toEqual([
      { role: 'deploy', issuer: 'gh', path: 'roles.deploy.allow[2]', conditions: { repository_owner_id: '"9919"', repository_id: '"2"' } },
    ]);
    expect(d.lost).toEqual([]);
    expect(diffPolicies(load(more), load(base)).lost.map((l) => l.path)).toEqual(['roles.deploy.allow[2]']);
  });

  it('reports widening a condition as a gain and narrowing it as a loss of the old pattern', () => {
    const wider = withRole((r) => (r.allow[0].claims.ref = { glob: 'refs/heads/*' }));
    const d = diffPolicies(load(base), load(wider));
    expect(d.gained.map((g) => g.conditions.ref)).toEqual(['glob "refs/heads/*"']);
    // The old exact ref is accepted by the new glob: nothing is lost.
    expect(d.lost).toEqual([]);
    const back = diffPolicies(load(wider), load(base));
    expect(back.gained).toEqual([]);
    expect(back.lost.map((l) => l.conditions.ref)).toEqual(['glob "refs/heads/*"']);
  });

  it('does not report a new binding that an existing one already covers', () => {
    const narrower = withRole((r) => r.allow.push({ issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '1', ref: 'refs/heads/main', environment: 'production' } }));
    expect(diffPolicies(load(base), load(narrower)).gained).toEqual([]);
  });

  it('reports deny rules added and removed, with their scope', () => {
    const denied = { ...withRole((r) => (r.deny = [{ issuer: 'gh', claims: { event_name: 'pull_request_target' } }])), deny: [{ claims: { runner_environment: 'self-hosted' } }] };
    const d = diffPolicies(load(base), load(denied));
    expect(d.denyAdded).toEqual([
      { role: '*', issuer: undefined, path: 'deny[0]', conditions: { runner_environment: '"self-hosted"' } },
      { role: 'deploy', issuer: 'gh', path: 'roles.deploy.deny[0]', conditions: { event_name: '"pull_request_target"' } },
    ]);
    expect(diffPolicies(load(denied), load(base)).denyRemoved.map((r) => r.path)).toEqual(['deny[0]', 'roles.deploy.deny[0]']);
  });

  it('reports session changes of an unchanged identity, and role changes', () => {
    const changed = withRole((r) => {
      r.allow[0].max_duration_seconds = 900;
      r.arn = ARN('deploy-v2');
      r.tags = { repo: '{repository_id}' };
    });
    const d = diffPolicies(load(base), load(changed));
    expect(d.gained).toEqual([]);
    expect(d.sessions).toEqual([expect.objectContaining({ path: 'roles.deploy.allow[0]', fields: { max_duration_seconds: [null, 900] } })]);
    expect(d.roles).toEqual([{ role: 'deploy', change: 'changed', fields: expect.objectContaining({ arn: [ARN('deploy'), ARN('deploy-v2')], naming: expect.any(Array) }) }]);
  });

  it('reports lint warnings that appear and go', () => {
    const risky = withRole((r) => r.allow.push({ issuer: 'gh', claims: { repository: 'octo-org/octo-repo' } }));
    const d = diffPolicies(load(base), load(risky));
    expect(d.warningsAdded.some((w) => w.startsWith('roles.deploy.allow[2]: binds on mutable name(s) repository'))).toBe(true);
    expect(diffPolicies(load(risky), load(base)).warningsRemoved.length).toBe(d.warningsAdded.length);
  });

  it('renders markdown a pull request can show, with table cells escaped', () => {
    const more = withRole((r) => r.allow.push({ issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '2', workflow: 'a|b`c' } }));
    const md = diffMarkdown(diffPolicies(load(base), load(more)), { old: 'origin/main:credbroker.yaml', new: 'credbroker.yaml' });
    expect(md).toContain('## Policy change: `origin/main:credbroker.yaml` → `credbroker.yaml`');
    expect(md).toContain('### Access gained (1)');
    expect(md).toContain('`workflow: "a\\|bˋc"`');
    for (const line of md.split('\n').filter((l) => l.startsWith('|'))) expect(line.split(/(?<!\\)\|/).length).toBe(6);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: every changed decision is explained
// ---------------------------------------------------------------------------------------------
type Scalar = string | number | boolean;
const SCALARS: Scalar[] = ['a', 'b', 'a/b', '1', 1, true, 'true'];
const scalar = fc.constantFrom(...SCALARS);
const condition = fc.oneof(
  scalar,
  fc.array(scalar, { minLength: 1, maxLength: 3 }),
  fc.record({ glob: fc.constantFrom('a*', '*', 'a/*', '**', 'b', '?') }),
  fc.record({ present: fc.boolean() }),
  fc.record({ contains: scalar }),
);
const claims = fc.dictionary(fc.constantFrom('x', 'y'), condition, { minKeys: 1, maxKeys: 2 });
const rule = (issuers: fc.Arbitrary<string | undefined>) => fc.record({ issuer: issuers, claims });
const roleArb = fc.record({
  allow: fc.array(rule(fc.constantFrom('p', 'q')), { minLength: 1, maxLength: 4 }),
  deny: fc.array(rule(fc.constantFrom('p', 'q', undefined)), { maxLength: 2 }),
});
const policyArb = fc.record({
  roles: fc.dictionary(fc.constantFrom('r1', 'r2'), roleArb, { minKeys: 1, maxKeys: 2 }),
  deny: fc.array(rule(fc.constantFrom('p', 'q', undefined)), { maxLength: 2 }),
});
const clean = (r: { issuer: string | undefined; claims: Record<string, unknown> }) => (r.issuer === undefined ? { claims: r.claims } : r);
const toConfig = (p: { roles: any; deny: any }) => ({
  issuers: { p: { url: 'https://p.example.com', audiences: AUD }, q: { url: 'https://q.example.com', audiences: AUD } },
  roles: Object.fromEntries(
    Object.entries(p.roles as Record<string, { allow: any[]; deny: any[] }>).map(([name, r]) => [name, { arn: ARN(name), allow: r.allow.map(clean), deny: r.deny.map(clean) }]),
  ),
  deny: (p.deny as any[]).map(clean),
});
const valueArb = fc.oneof(scalar, fc.constant(null), fc.array(scalar, { maxLength: 2 }));
const token = fc.dictionary(fc.constantFrom('x', 'y'), valueArb, { maxKeys: 2 });

/** Whether a rule summary (conditions rendered) matches the claims: re-check from the policy. */
function ruleMatches(policy: CompiledPolicy, path: string, claimSet: Record<string, unknown>, asText: boolean): boolean {
  const all = [...policy.globalDeny, ...[...policy.roles.values()].flatMap((r) => [...r.bindings, ...r.deny])];
  const r = all.find((x) => x.path === path)!;
  return r.conditions.every((c) => matchCondition(c.claim, c.condition, claimSet, { asText }).matched);
}

function explained(d: PolicyDiff, old: CompiledPolicy, next: CompiledPolicy, role: string, issuer: string, claimSet: Record<string, unknown>, change: 'gain' | 'loss'): boolean {
  const roleItem = d.roles.some((r) => r.role === role && r.change !== 'changed');
  if (change === 'gain') {
    return (
      roleItem ||
      d.gained.some((g) => g.role === role && g.issuer === issuer && ruleMatches(next, g.path, claimSet, false)) ||
      d.denyRemoved.some((r) => (r.role === role || r.role === '*') && (r.issuer === undefined || r.issuer === issuer) && ruleMatches(old, r.path, claimSet, true))
    );
  }
  return (
    roleItem ||
    d.lost.some((l) => l.role === role && l.issuer === issuer && ruleMatches(old, l.path, claimSet, false)) ||
    d.denyAdded.some((r) => (r.role === role || r.role === '*') && (r.issuer === undefined || r.issuer === issuer) && ruleMatches(next, r.path, claimSet, true))
  );
}

type PolicyInput = { roles: any; deny: any };

/** A small edit of a policy, the way a pull request changes one: a condition, a binding, a rule. */
const edited = (p: PolicyInput): fc.Arbitrary<PolicyInput> =>
  fc.tuple(fc.nat(), fc.nat(), fc.constantFrom('x', 'y'), condition, rule(fc.constantFrom('p', 'q')), rule(fc.constantFrom('p', 'q', undefined)), fc.integer({ min: 0, max: 5 })).map(
    ([i, j, claim, cond, newRule, newDeny, kind]) => {
      const copy = JSON.parse(JSON.stringify(p)) as { roles: Record<string, { allow: any[]; deny: any[] }>; deny: any[] };
      const roles = Object.values(copy.roles);
      const role = roles[i % roles.length]!;
      const binding = role.allow[j % role.allow.length]!;
      if (kind === 0) binding.claims[claim] = cond; // change or add one condition
      else if (kind === 1 && Object.keys(binding.claims).length > 1) delete binding.claims[Object.keys(binding.claims)[j % Object.keys(binding.claims).length]!];
      else if (kind === 2) role.allow.push(newRule);
      else if (kind === 3 && role.allow.length > 1) role.allow.splice(j % role.allow.length, 1);
      else if (kind === 4) (j % 2 === 0 ? role.deny : copy.deny).push(newDeny);
      else if (role.deny.length > 0) role.deny.splice(j % role.deny.length, 1);
      else copy.deny.splice(0, 1);
      return copy as PolicyInput;
    },
  );
const policyPair = fc.oneof(
  policyArb.chain((a) => fc.tuple(fc.constant(a), edited(a))),
  policyArb.chain((a) => fc.tuple(fc.constant(a), edited(a).chain(edited))),
  fc.tuple(policyArb, policyArb),
);

describe('policy diff: property', () => {
  it('explains every decision that changes between two policies, for random policies and tokens', () => {
    void compileCondition; // (conditions are compiled by parseConfig)
    let changes = 0;
    fc.assert(
      fc.property(policyPair, fc.array(token, { minLength: 8, maxLength: 16 }), ([a, b], tokens) => {
        const old = load(toConfig(a));
        const next = load(toConfig(b));
        const d = diffPolicies(old, next);
        for (const claimSet of tokens) {
          for (const role of ['r1', 'r2']) {
            for (const issuer of ['p', 'q']) {
              const input = { issuer, role, claims: claimSet, requestedDuration: undefined, tokenHash: '0'.repeat(64), roleChaining: false, now: new Date(0) };
              const before = evaluate(old.policy, input).effect;
              const after = evaluate(next.policy, input).effect;
              if (before === after) continue;
              changes++;
              const kind = after === 'allow' ? 'gain' : 'loss';
              expect(explained(d, old.policy, next.policy, role, issuer, claimSet, kind), `${kind} for ${role}/${issuer} ${JSON.stringify(claimSet)} unexplained`).toBe(true);
            }
          }
        }
        if (diffIsEmpty(d)) {
          for (const claimSet of tokens) for (const role of ['r1', 'r2']) for (const issuer of ['p', 'q']) {
            const input = { issuer, role, claims: claimSet, requestedDuration: undefined, tokenHash: '0'.repeat(64), roleChaining: false, now: new Date(0) };
            expect(evaluate(next.policy, input).effect).toBe(evaluate(old.policy, input).effect);
          }
        }
      }),
      { numRuns: 800, seed: 4242 },
    );
    expect(changes).toBeGreaterThan(100); // the generators do produce changes to explain
  });
});
