// Claim conditions: exact typed match, anchored globs, any-of, presence, contains — and the
// compile-time type checks that come from the issuer preset.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileCondition, globToRegExp, matchCondition, type Condition, type Mismatch } from '../../server/src/core/conditions.js';
import type { ConditionInput } from '../../server/src/config/schema.js';
import type { ClaimType } from '../../server/src/core/presets.js';
import { ConfigError, parseConfig } from '../../server/src/config/load.js';

function compiled(input: ConditionInput, expected?: ClaimType): Condition {
  const c = compileCondition(input, expected);
  if ('error' in c) throw new Error(`unexpected compile error: ${c.error}`);
  return c;
}

function judge(input: ConditionInput, value: unknown, expected?: ClaimType) {
  const claims: Record<string, unknown> = value === undefined ? {} : { c: value };
  return matchCondition('c', compiled(input, expected), claims);
}

type Case = [name: string, condition: ConditionInput, value: unknown, matched: boolean, mismatch?: Mismatch];

describe('exact match', () => {
  const cases: Case[] = [
    ['matches an equal string', 'refs/heads/main', 'refs/heads/main', true],
    ['does not match a longer string that starts with the expected value', 'repo:org/app', 'repo:org/app-evil', false, 'value'],
    ['does not match a string that merely contains the expected value', 'user@example.com', 'evil-user@example.com', false, 'value'],
    ['is case-sensitive', 'Production', 'production', false, 'value'],
    ['matches an equal number', 20, 20, true],
    ['does not match the string form of a configured number', 1, '1', false, 'type'],
    ['does not match the number form of a configured string', '1', 1, false, 'type'],
    ['does not match the string "true" for a configured true without a preset', true, 'true', false, 'type'],
    ['matches boolean false', false, false, true],
    ['reports a missing claim', 'x', undefined, false, 'missing'],
    ['treats a null claim as missing', 'x', null, false, 'missing'],
    ['does not match an array value by type', 'a', ['a'], false, 'type'],
    ['matches via { equals }', { equals: 'main' }, 'main', true],
    ['matches any of a list', ['main', 'release'], 'release', true],
    ['does not match a value outside the list', ['main', 'release'], 'dev', false, 'value'],
    ['matches any of { one_of }', { one_of: ['a', 'b'] }, 'b', true],
    ['matches a typed value in a mixed one_of list', { one_of: ['1', 2] }, 2, true],
    ['rejects a value whose type is in no list entry', { one_of: ['1', '2'] }, 1, false, 'type'],
  ];
  it.each(cases)('%s', (_name, condition, value, matched, mismatch) => {
    const r = judge(condition, value);
    expect(r.matched).toBe(matched);
    expect(r.mismatch).toBe(mismatch);
  });
});

describe('anchored glob', () => {
  const cases: Array<[name: string, pattern: string | string[], value: string, matched: boolean]> = [
    ['matches the whole value', 'repo:org/app', 'repo:org/app', true],
    ['does not match a longer value (no implicit trailing wildcard)', 'repo:org/app', 'repo:org/app-evil', false],
    ['does not match a value with a prefix (no implicit leading wildcard)', 'user@example.com', 'evil-user@example.com', false],
    ['lets * match within a segment', 'refs/heads/*', 'refs/heads/main', true],
    ['does not let * cross "/"', 'refs/heads/*', 'refs/heads/feature/x', false],
    ['lets * match the empty string', 'refs/heads/*', 'refs/heads/', true],
    ['lets ** cross "/"', 'refs/heads/**', 'refs/heads/feature/x/y', true],
    ['anchors ** at the start too', 'refs/heads/**', 'xrefs/heads/main', false],
    ['lets ? match exactly one character', 'v?', 'v1', true],
    ['does not let ? match two characters', 'v?', 'v12', false],
    ['does not let ? match zero characters', 'v?', 'v', false],
    ['does not let ? match "/"', 'a?b', 'a/b', false],
    ['lets ? match one astral code point', 'x?', 'x😀', true],
    ['treats "." literally', 'a.b', 'axb', false],
    ['treats "+" literally', 'a+', 'aaa', false],
    ['treats "(" "|" ")" literally', '(a|b)', 'a', false],
    ['matches the literal "(a|b)"', '(a|b)', '(a|b)', true],
    ['treats "[...]" literally', '[ab]', 'a', false],
    ['treats "^" and "$" literally', '^a$', '^a$', true],
    ['treats "\\" literally', 'a\\d', 'a1', false],
    ['treats "{n}" literally', 'a{2}', 'aa', false],
    ['does not match a value with a trailing newline', 'main', 'main\n', false],
    ['matches any of a list of patterns', ['refs/heads/main', 'refs/tags/v*'], 'refs/tags/v1.2', true],
    ['matches none of a list of patterns', ['refs/heads/main', 'refs/tags/v*'], 'refs/tags/x', false],
  ];
  it.each(cases)('%s', (_name, pattern, value, matched) => {
    const r = judge({ glob: pattern }, value);
    expect(r.matched).toBe(matched);
    expect(r.mismatch).toBe(matched ? undefined : 'value');
  });

  it('reports a type mismatch when the claim is not a string', () => {
    expect(judge({ glob: '1*' }, 12)).toMatchObject({ matched: false, mismatch: 'type' });
  });

  it('reports a missing claim', () => {
    expect(judge({ glob: '*' }, undefined)).toMatchObject({ matched: false, mismatch: 'missing', actual: '(absent)' });
  });
});

describe('presence', () => {
  const cases: Case[] = [
    ['present: true matches a present string', { present: true }, 'x', true],
    ['present: true matches an empty string', { present: true }, '', true],
    ['present: true matches false', { present: true }, false, true],
    ['present: true does not match an absent claim', { present: true }, undefined, false, 'present'],
    ['present: true does not match null (null counts as absent)', { present: true }, null, false, 'present'],
    ['present: false matches an absent claim', { present: false }, undefined, true],
    ['present: false matches null', { present: false }, null, true],
    ['present: false does not match a present claim', { present: false }, 'x', false, 'present'],
  ];
  it.each(cases)('%s', (_name, condition, value, matched, mismatch) => {
    const r = judge(condition, value);
    expect(r.matched).toBe(matched);
    expect(r.mismatch).toBe(mismatch);
  });
});

describe('contains (array claims)', () => {
  const contextIds = ['05ad3418-d221-484f-99fb-46dc6b0f569b', '11111111-2222-4333-8444-555555555555'];
  const cases: Case[] = [
    ['matches an array holding the value', { contains: '05ad3418-d221-484f-99fb-46dc6b0f569b' }, contextIds, true],
    ['matches when any listed value is held', { contains: ['nope', '11111111-2222-4333-8444-555555555555'] }, contextIds, true],
    ['does not match an array without the value', { contains: 'nope' }, contextIds, false, 'value'],
    ['does not match a prefix of an element', { contains: '05ad3418' }, contextIds, false, 'value'],
    ['does not match a string claim', { contains: 'a' }, 'a', false, 'type'],
    ['does not match an empty array', { contains: 'a' }, [], false, 'value'],
    ['is typed: 1 is not "1"', { contains: 1 }, ['1'], false, 'value'],
    ['reports a missing claim', { contains: 'a' }, undefined, false, 'missing'],
  ];
  it.each(cases)('%s', (_name, condition, value, matched, mismatch) => {
    const r = judge(condition, value, 'array');
    expect(r.matched).toBe(matched);
    expect(r.mismatch).toBe(mismatch);
  });
});

describe('compiling with provider types', () => {
  it('turns a configured true into "true" when the provider sends strings', () => {
    const c = compiled(true, 'string');
    expect(c).toEqual({ op: 'equals', values: ['true'] });
    expect(matchCondition('c', c, { c: 'true' }).matched).toBe(true);
    expect(matchCondition('c', c, { c: true }).mismatch).toBe('type');
  });

  it('turns configured numbers into strings when the provider sends strings', () => {
    expect(compiled({ one_of: [487920697, '9919'] }, 'string')).toEqual({ op: 'equals', values: ['487920697', '9919'] });
  });

  it('rejects a number that cannot be an exact string for a string claim (lossy)', () => {
    expect(compileCondition(12345678901234567890, 'string')).toHaveProperty('error');
  });

  const errors: Array<[name: string, input: ConditionInput, expected: ClaimType, message: RegExp]> = [
    ['rejects a string for a number claim', '1', 'number', /sends number values/],
    ['rejects a string for a boolean claim', 'false', 'boolean', /sends boolean values/],
    ['rejects a number for a boolean claim', 0, 'boolean', /sends boolean values/],
    ['rejects an equality condition on an array claim', 'x', 'array', /use \{ contains/],
    ['rejects a glob on a number claim', { glob: '1*' }, 'number', /glob needs a string claim/],
    ['rejects contains on a string claim', { contains: 'x' }, 'string', /contains needs an array claim/],
    ['rejects one bad entry of a one_of list', { one_of: [1, '2'] }, 'number', /sends number values/],
  ];
  it.each(errors)('%s', (_name, input, expected, message) => {
    const c = compileCondition(input, expected);
    expect('error' in c).toBe(true);
    if ('error' in c) expect(c.error).toMatch(message);
  });
});

describe('typed values through a preset (config → policy)', () => {
  const base = (issuer: Record<string, unknown>, claims: Record<string, unknown>) =>
    JSON.stringify({
      issuers: { ci: { audiences: ['https://credbroker.example.com'], ...issuer } },
      roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'ci', claims }] } },
    });
  const decide = (issuer: Record<string, unknown>, claims: Record<string, unknown>, token: Record<string, unknown>) => {
    const { config } = parseConfig(base(issuer, claims));
    const b = config.policy.roles.get('deploy')!.bindings[0]!;
    return b.conditions.every(({ claim, condition }) => matchCondition(claim, condition, token).matched);
  };

  it('matches config true against GitHub\'s "true" with the github-actions preset', () => {
    expect(decide({ preset: 'github-actions' }, { repository_id: '1', ref_protected: true }, { repository_id: '1', ref_protected: 'true' })).toBe(true);
  });

  it('does not match config true against "true" without a preset', () => {
    expect(decide({ url: 'https://issuer.example.com' }, { repository_id: '1', ref_protected: true }, { repository_id: '1', ref_protected: 'true' })).toBe(false);
  });

  it('reports a string for GitLab runner_id (a number claim) as a compile problem with its path', () => {
    try {
      parseConfig(base({ preset: 'gitlab' }, { project_id: '20', ref_protected: 'true', runner_id: '1' }));
      expect.unreachable('parseConfig should throw');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const problems = (e as ConfigError).problems;
      expect(problems).toHaveLength(1);
      expect(problems[0]!.path).toBe('roles.deploy.allow[0].claims.runner_id');
      expect(problems[0]!.message).toMatch(/number/);
    }
  });

  it('accepts a number for GitLab runner_id and matches the token\'s number', () => {
    expect(decide({ preset: 'gitlab' }, { project_id: '20', ref_protected: 'true', runner_id: 1 }, { project_id: '20', ref_protected: 'true', runner_id: 1 })).toBe(true);
  });

  it('reports a string for CircleCI ssh-rerun (a boolean claim) as a compile problem', () => {
    expect(() =>
      parseConfig(base({ preset: 'circleci', org_id: 'o1' }, { 'oidc.circleci.com/project-id': 'p', 'oidc.circleci.com/ssh-rerun': 'false' })),
    ).toThrow(ConfigError);
  });
});

describe('detail of a condition result', () => {
  it('names the claim, the expectation, the actual value and the mismatch kind', () => {
    expect(judge(['main', 'release'], 'dev')).toEqual({ claim: 'c', op: 'equals', expected: 'one of ["main","release"]', actual: '"dev"', matched: false, mismatch: 'value' });
    expect(judge({ glob: 'refs/heads/*' }, 'refs/tags/v1')).toEqual({ claim: 'c', op: 'glob', expected: 'glob "refs/heads/*"', actual: '"refs/tags/v1"', matched: false, mismatch: 'value' });
  });

  it('cuts a very long actual value to 200 characters', () => {
    expect(judge('x', 'y'.repeat(1000)).actual).toHaveLength(200);
  });
});

describe('glob properties', () => {
  const anyString = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: fc.constantFrom('*', '?', '/', '.', '\\', '[', ']', '(', ')', '{', '}', '^', '$', '|', '+', 'a', '\n') }),
    // Lone surrogates and other odd UTF-16 units.
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)) }),
  );
  const noWildcards = anyString.map((s) => s.replace(/[*?]/g, ''));

  it('never throws when compiling or matching any pattern against any value', () => {
    fc.assert(
      fc.property(anyString, anyString, (pattern, value) => {
        const re = globToRegExp(pattern);
        expect(typeof re.test(value)).toBe('boolean');
        expect(() => matchCondition('c', compiled({ glob: pattern.length > 0 ? pattern : 'x' }), { c: value })).not.toThrow();
      }),
      { numRuns: 2000 },
    );
  });

  it('matches a pattern without wildcards only against itself', () => {
    fc.assert(
      fc.property(noWildcards, anyString, (pattern, value) => {
        const re = globToRegExp(pattern);
        expect(re.test(pattern)).toBe(true);
        expect(re.test(value)).toBe(value === pattern);
        expect(re.test(`${pattern}x`)).toBe(false);
        expect(re.test(`x${pattern}`)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('never lets a single * match a value containing "/" in its place', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(globToRegExp('x/*').test(`x/${a}/${b}`)).toBe(false);
        expect(globToRegExp('x/**').test(`x/${a}/${b}`)).toBe(true);
      }),
    );
  });
});
