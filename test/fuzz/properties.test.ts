// Property-based tests (fast-check) for the policy matcher and the AWS sanitizers, checked against
// independent oracles written here rather than against the code's own helpers:
//   - globs: a reference matcher over code points (`*` within one segment, `**` across, `?` one
//     non-"/" character, everything else literal, whole value only);
//   - policy: a plain scan of the configured rules in order with the documented semantics, compared
//     with the indexed evaluation, on random policies loaded through the real config path;
//   - naming: every preset's default session name, source identity and tags, over hostile claim
//     values, always AWS-valid and never throwing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globToRegExp } from '../../server/src/core/conditions.js';
import { parseConfig } from '../../server/src/config/load.js';
import { evaluate, type CompiledPolicy, type EvaluationInput } from '../../server/src/core/policy.js';
import { PRESET_NAMES, type PresetName } from '../../server/src/config/schema.js';
import { MAX_SESSION_TAGS, SESSION_NAME_RE, isValidTagValue, sanitizeSessionName, sanitizeSourceIdentity, tagValue, tagKeyProblem } from '../../server/src/core/sanitize.js';
import { providerClaims, type ProviderFixture } from '../support/fixtures.js';

const SEED = 20261125;

// ---------------------------------------------------------------------------------------------
// Glob reference matcher
// ---------------------------------------------------------------------------------------------
type GlobToken = { any: true } | { segment: true } | { one: true } | { literal: string };

function tokens(pattern: string): GlobToken[] {
  const cps = Array.from(pattern);
  const out: GlobToken[] = [];
  for (let i = 0; i < cps.length; i++) {
    if (cps[i] === '*' && cps[i + 1] === '*') {
      out.push({ any: true });
      i++;
    } else if (cps[i] === '*') out.push({ segment: true });
    else if (cps[i] === '?') out.push({ one: true });
    else out.push({ literal: cps[i]! });
  }
  return out;
}

function referenceGlob(pattern: string, value: string): boolean {
  const p = tokens(pattern);
  const v = Array.from(value);
  const memo = new Map<number, boolean>();
  const match = (i: number, j: number): boolean => {
    const key = i * (v.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    const t = p[i];
    if (t === undefined) result = j === v.length;
    else if ('any' in t) {
      result = false;
      for (let k = j; k <= v.length && !result; k++) result = match(i + 1, k);
    } else if ('segment' in t) {
      result = false;
      for (let k = j; k <= v.length && !result; k++) {
        if (k > j && v[k - 1] === '/') break;
        result = match(i + 1, k);
      }
    } else if ('one' in t) result = j < v.length && v[j] !== '/' && match(i + 1, j + 1);
    else result = v[j] === t.literal && match(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return match(0, 0);
}

describe('glob matching', () => {
  // Small alphabets so patterns and values actually overlap; regex metacharacters and astral
  // characters included so escaping and code-point handling are exercised.
  const valueChar = fc.constantFrom('a', 'b', '/', '.', '-', '(', '[', ']', '+', '^', '$', '|', '\\', '{', '}', '\n', 'é', '😀');
  const patternChar = fc.oneof(valueChar, fc.constantFrom('*', '?', '**'));
  const pattern = fc.array(patternChar, { minLength: 1, maxLength: 8 }).map((parts) => parts.join(''));
  const value = fc.string({ unit: valueChar, maxLength: 10 });

  it('agrees with a reference matcher on every pattern and value', () => {
    fc.assert(
      fc.property(pattern, value, (p, v) => {
        expect(globToRegExp(p).test(v)).toBe(referenceGlob(p, v));
      }),
      { numRuns: 5000, seed: SEED },
    );
  });

  it('agrees with the reference matcher on values built from the pattern itself (mostly matches)', () => {
    // Random values rarely match; instantiate the pattern's wildcards to get the matching side too.
    const instantiate = (p: string, fill: string[]): string => {
      let k = 0;
      return tokens(p)
        .map((t) => ('literal' in t ? t.literal : (fill[k++ % fill.length] ?? '')))
        .join('');
    };
    let matched = 0;
    fc.assert(
      fc.property(pattern, fc.array(fc.string({ unit: valueChar, maxLength: 3 }), { minLength: 1, maxLength: 4 }), (p, fill) => {
        const v = instantiate(p, fill);
        const expected = referenceGlob(p, v);
        if (expected) matched++;
        expect(globToRegExp(p).test(v)).toBe(expected);
      }),
      { numRuns: 3000, seed: SEED },
    );
    expect(matched).toBeGreaterThan(500);
  });
});

// ---------------------------------------------------------------------------------------------
// Indexed evaluation vs a plain scan
// ---------------------------------------------------------------------------------------------
type Scalar = string | number | boolean;
type ConditionInput =
  | Scalar
  | Scalar[]
  | { equals: Scalar }
  | { one_of: Scalar[] }
  | { glob: string | string[] }
  | { present: boolean }
  | { contains: Scalar | Scalar[] };
type Rule = { issuer?: string; claims: Array<[string, ConditionInput]> };

// Claim names include Object.prototype members: a claim the token lacks must never be read from
// the prototype.
const CLAIM_NAMES = ['a', 'b', 'c', 'constructor', 'toString'] as const;
const SCALARS: Scalar[] = ['1', 1, 0, '', 'x', 'x/y', 'true', true, false];
const scalar = fc.constantFrom(...SCALARS);
const globPattern = fc.string({ unit: fc.constantFrom('x', 'y', '/', '1', '*', '?'), minLength: 1, maxLength: 4 });
const condition: fc.Arbitrary<ConditionInput> = fc.oneof(
  scalar,
  fc.array(scalar, { minLength: 1, maxLength: 3 }),
  fc.record({ equals: scalar }),
  fc.record({ one_of: fc.array(scalar, { minLength: 1, maxLength: 3 }) }),
  fc.record({ glob: fc.oneof(globPattern, fc.array(globPattern, { minLength: 1, maxLength: 2 })) }),
  fc.record({ present: fc.boolean() }),
  fc.record({ contains: fc.oneof(scalar, fc.array(scalar, { minLength: 1, maxLength: 2 })) }),
);
const ruleClaims = fc.uniqueArray(fc.tuple(fc.constantFrom(...CLAIM_NAMES), condition), { minLength: 1, maxLength: 3, selector: ([k]) => k });
const binding = fc.record({ issuer: fc.constantFrom('p', 'q'), claims: ruleClaims });
const denyRule = fc.record({ issuer: fc.option(fc.constantFrom('p', 'q'), { nil: undefined }), claims: ruleClaims });
const claimValue = fc.oneof(scalar, fc.constant(null), fc.array(scalar, { maxLength: 3 }), fc.constant({ x: 1 }));
const tokenClaims = fc.uniqueArray(fc.tuple(fc.constantFrom(...CLAIM_NAMES), claimValue), { maxLength: 5, selector: ([k]) => k });

/** JSON text → object, so names like "constructor" become own properties exactly as in a token. */
const objectOf = (entries: Array<[string, unknown]>): Record<string, unknown> =>
  JSON.parse(`{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`) as Record<string, unknown>;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function policyOf(allow: Rule[], roleDeny: Rule[], globalDeny: Rule[]): CompiledPolicy {
  const rule = (r: Rule) => ({ ...(r.issuer ? { issuer: r.issuer } : {}), claims: objectOf(r.claims) });
  const text = JSON.stringify({
    issuers: { p: { url: 'https://p.example.com', audiences: ['aud'] }, q: { url: 'https://q.example.com', audiences: ['aud'] } },
    roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/deploy', session_name: 'ci-{a}', source_identity: 'ci-{b}', tags: {}, allow: allow.map(rule), deny: roleDeny.map(rule) } },
    deny: globalDeny.map(rule),
  });
  return parseConfig(text, 'property').config.policy;
}

/**
 * The documented semantics of one condition, written independently of conditions.ts. Allow
 * bindings compare typed values strictly; deny rules (`asText`) also match a scalar that differs
 * only in type, compared as text.
 */
function oracleMatch(name: string, c: ConditionInput, claims: Record<string, unknown>, asText: boolean): boolean {
  const value = Object.hasOwn(claims, name) ? claims[name] : undefined;
  const present = value !== undefined && value !== null;
  const scalarValue = (v: unknown) => ['string', 'number', 'boolean'].includes(typeof v);
  const same = (want: Scalar, got: unknown) => want === got || (asText && scalarValue(got) && String(want) === String(got));
  if (typeof c === 'object' && !Array.isArray(c) && 'present' in c) return present === c.present;
  if (!present) return false;
  if (typeof c !== 'object') return same(c, value);
  if (Array.isArray(c)) return c.some((v) => same(v, value));
  if ('equals' in c) return same(c.equals, value);
  if ('one_of' in c) return c.one_of.some((v) => same(v, value));
  if ('glob' in c) {
    const text = typeof value === 'string' ? value : asText && scalarValue(value) ? String(value) : undefined;
    return text !== undefined && (Array.isArray(c.glob) ? c.glob : [c.glob]).some((p) => referenceGlob(p, text));
  }
  const wanted = Array.isArray(c.contains) ? c.contains : [c.contains];
  return Array.isArray(value) && wanted.some((v) => value.some((el) => same(v, el)));
}

function oracleDecision(allow: Rule[], roleDeny: Rule[], globalDeny: Rule[], issuer: string, claims: Record<string, unknown>): string {
  const holds = (r: Rule, asText = false) => r.claims.every(([name, c]) => oracleMatch(name, c, claims, asText));
  if ([...globalDeny, ...roleDeny].some((r) => (r.issuer === undefined || r.issuer === issuer) && holds(r, true))) return 'ERR_POLICY_DENY_RULE';
  const i = allow.findIndex((r) => r.issuer === issuer && holds(r));
  return i >= 0 ? `roles.deploy.allow[${i}]` : 'ERR_POLICY_NO_MATCH';
}

const evaluationInput = (issuer: string, claims: Record<string, unknown>, role = 'deploy'): EvaluationInput => ({
  issuer,
  claims,
  role,
  requestedDuration: undefined,
  tokenHash: 'f'.repeat(64),
  roleChaining: false,
  now: new Date('2026-01-01T00:00:00Z'),
});

describe('policy evaluation', () => {
  it('decides exactly like an in-order scan of every rule, for random policies and tokens', () => {
    const outcomes = new Set<string>();
    fc.assert(
      fc.property(
        fc.array(binding, { minLength: 1, maxLength: 12 }),
        fc.array(denyRule, { maxLength: 2 }),
        fc.array(denyRule, { maxLength: 1 }),
        fc.array(fc.tuple(fc.constantFrom('p', 'q'), tokenClaims), { minLength: 1, maxLength: 6 }),
        (allow, roleDeny, globalDeny, tokensIn) => {
          const policy = policyOf(allow, roleDeny, globalDeny);
          for (const [issuer, entries] of tokensIn) {
            const claims = deepFreeze(objectOf(entries)); // evaluation must not mutate the claims
            const expected = oracleDecision(allow, roleDeny, globalDeny, issuer, claims);
            const decision = evaluate(policy, evaluationInput(issuer, claims));
            expect(decision.effect === 'allow' ? decision.binding : decision.reason).toBe(expected);
            if (decision.effect === 'allow') {
              expect(decision.sessionName).toMatch(SESSION_NAME_RE);
              expect(decision.sourceIdentity).toMatch(SESSION_NAME_RE);
            }
            outcomes.add(expected.startsWith('roles.') ? (expected.endsWith('[0]') ? 'first binding' : 'later binding') : expected);
          }
        },
      ),
      { numRuns: 600, seed: SEED },
    );
    // The generators must reach every outcome, or agreement proves little.
    expect([...outcomes].sort()).toEqual(['ERR_POLICY_DENY_RULE', 'ERR_POLICY_NO_MATCH', 'first binding', 'later binding']);
  });

  it('denies an unknown role whatever the claims', () => {
    const policy = policyOf([{ issuer: 'p', claims: [['a', { present: true }]] }], [], []);
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }).filter((r) => r !== 'deploy'), tokenClaims, (role, entries) => {
        const d = evaluate(policy, evaluationInput('p', objectOf(entries), role));
        expect(d.effect === 'deny' && d.reason).toBe('ERR_POLICY_UNKNOWN_ROLE');
      }),
      { numRuns: 300, seed: SEED },
    );
  });

  // A condition on a claim named "__proto__" used to vanish while the config was loaded (the record
  // was rebuilt by assignment, which sets the prototype instead), widening the binding.
  it('never drops a condition on a claim named "__proto__": refused at load, or enforced', () => {
    const text = JSON.stringify({
      issuers: { p: { url: 'https://p.example.com', audiences: ['aud'] } },
      roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/deploy', allow: [{ issuer: 'p', claims: objectOf([['__proto__', 'x'], ['a', '1']]) }] } },
    });
    let policy: CompiledPolicy;
    try {
      policy = parseConfig(text, 'property').config.policy;
    } catch {
      return; // refused at load (what the broker does now)
    }
    expect(evaluate(policy, evaluationInput('p', objectOf([['a', '1']]))).effect).toBe('deny');
  });
});

// ---------------------------------------------------------------------------------------------
// Naming: presets' default templates over hostile claim values
// ---------------------------------------------------------------------------------------------
const FIXTURE: Record<PresetName, ProviderFixture> = {
  'github-actions': 'github-actions',
  gitlab: 'gitlab',
  circleci: 'circleci',
  buildkite: 'buildkite',
  bitbucket: 'bitbucket',
  jenkins: 'jenkins',
  'azure-devops': 'azure-devops',
  'terraform-cloud': 'terraform-cloud',
};

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.string({ unit: fc.constantFrom('a', ':', '/', '-', 'aws:', 'AWS:', ' ', '\n', '\u0000', '😀', '\ud800', '{', '}', '=', '@'), maxLength: 80 }),
  fc.constantFrom('', 'aws:x', 'AWS:root', '-', '--', 'a'.repeat(300)),
);
const hostileValue = fc.oneof(hostileString, fc.jsonValue({ maxDepth: 3 }), fc.constant(null), fc.double());

function presetPolicy(preset: PresetName): { policy: CompiledPolicy; templateClaims: string[] } {
  const text = JSON.stringify({
    issuers: { ci: { preset, url: 'https://ci.example.com/oidc', audiences: ['aud'] } },
    roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/deploy', allow: [{ issuer: 'ci', claims: { bind_marker: 'yes' } }] } },
  });
  const policy = parseConfig(text, 'property').config.policy;
  const naming = policy.roles.get('deploy')!.naming.get('ci')!;
  const templateClaims = [...new Set([naming.sessionName, naming.sourceIdentity, ...naming.tags.map(([, t]) => t)].flatMap((t) => t.claims))];
  return { policy, templateClaims };
}

describe('session naming for every preset', () => {
  it.each(PRESET_NAMES)('%s: session name, source identity and tags are valid for AWS whatever the claims hold', (preset) => {
    const { policy, templateClaims } = presetPolicy(preset);
    expect(templateClaims.length).toBeGreaterThan(0);
    const base = providerClaims(FIXTURE[preset]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...templateClaims), fc.option(hostileValue, { nil: undefined })), { maxLength: templateClaims.length }), (overrides) => {
        const claims: Record<string, unknown> = { ...base, bind_marker: 'yes' };
        for (const [name, v] of overrides) {
          if (v === undefined) delete claims[name];
          else claims[name] = v;
        }
        const d = evaluate(policy, evaluationInput('ci', claims));
        if (d.effect !== 'allow') throw new Error(`expected allow, got ${d.reason}`);
        expect(d.sessionName).toMatch(SESSION_NAME_RE);
        expect(d.sourceIdentity).toMatch(SESSION_NAME_RE);
        expect(d.sourceIdentity).not.toMatch(/^aws:/i);
        expect(d.tags.length).toBeLessThanOrEqual(MAX_SESSION_TAGS);
        for (const tag of d.tags) {
          expect(tagKeyProblem(tag.Key)).toBeUndefined();
          expect(isValidTagValue(tag.Value)).toBe(true);
        }
      }),
      { numRuns: 300, seed: SEED },
    );
  });
});

describe('sanitizers', () => {
  it('turn any string into a valid session name, source identity and tag value without throwing', () => {
    fc.assert(
      fc.property(hostileString, (raw) => {
        expect(sanitizeSessionName(raw)).toMatch(SESSION_NAME_RE);
        const si = sanitizeSourceIdentity(raw);
        expect(si).toMatch(SESSION_NAME_RE);
        expect(si).not.toMatch(/^aws:/i);
        const tag = tagValue(raw);
        if ('value' in tag) expect(isValidTagValue(tag.value)).toBe(true);
      }),
      { numRuns: 5000, seed: SEED },
    );
  });

  it('keep a tag value exactly or leave it out: two different values never give the same tag', () => {
    const tagChar = fc.constantFrom('a', 'Z', '0', ' ', '_', '.', ':', '/', '=', '+', '-', '@', 'é', '日', '٣', '#', '😀', '\n');
    const value = fc.string({ unit: tagChar, maxLength: 300 });
    fc.assert(
      fc.property(value, value, (a, b) => {
        const ta = tagValue(a);
        const tb = tagValue(b);
        if ('value' in ta) expect(ta.value).toBe(a);
        if ('value' in ta && 'value' in tb && ta.value === tb.value) expect(a).toBe(b);
      }),
      { numRuns: 2000, seed: SEED },
    );
  });
});
