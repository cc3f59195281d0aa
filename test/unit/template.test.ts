// Naming templates: parsing, rendering of claim values of every type, and the naming of an allow
// decision when the claims are hostile.
import { describe, expect, it } from 'vitest';
import { claimText, parseTemplate, renderTemplate, type Template, type TemplateContext } from '../../server/src/core/template.js';
import { evaluate } from '../../server/src/core/policy.js';
import { ConfigError, parseConfig } from '../../server/src/config/load.js';

const parsed = (source: string): Template => {
  const t = parseTemplate(source);
  if ('error' in t) throw new Error(`unexpected template error: ${t.error}`);
  return t;
};

const ctx = (claims: Record<string, unknown>): TemplateContext => ({
  claims,
  issuer: 'gh',
  provider: 'github-actions',
  role: 'deploy',
  tokenHash: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
});

describe('parseTemplate errors', () => {
  const cases: Array<[name: string, source: string, error: RegExp]> = [
    ['rejects an unclosed "{"', 'gh-{run_id', /unclosed "\{" at 3/],
    ['rejects a stray "}"', 'gh-}x', /unmatched "\}" at 3/],
    ['rejects a "}" after a placeholder', '{a}}', /unmatched "\}" at 3/],
    ['rejects an empty placeholder', 'gh-{}', /empty placeholder at 3/],
    ['rejects a nested "{"', '{a{b}', /nested "\{" at 0/],
    ['rejects an unknown built-in', '{@x}', /unknown built-in "\{@x\}"/],
    ['rejects a built-in with wrong case', '{@Role}', /unknown built-in/],
    ['rejects an unknown filter', '{a|upper}', /unknown filter "\|upper" at 0 \(known: \|unbrace\)/],
    ['rejects a filter without a claim', '{|unbrace}', /empty placeholder at 0/],
  ];
  it.each(cases)('%s', (_name, source, error) => {
    const t = parseTemplate(source);
    expect('error' in t).toBe(true);
    if ('error' in t) expect(t.error).toMatch(error);
  });

  it('lists the known built-ins in the error', () => {
    const t = parseTemplate('{@nope}');
    expect('error' in t && t.error).toContain('{@issuer}, {@provider}, {@role}, {@token_hash}');
  });
});

describe('parseTemplate', () => {
  it('takes claim names with dots and slashes literally', () => {
    const t = parsed('cci-{oidc.circleci.com/project-id}');
    expect(t.parts).toEqual([{ literal: 'cci-' }, { claim: 'oidc.circleci.com/project-id' }]);
    expect(t.claims).toEqual(['oidc.circleci.com/project-id']);
  });

  it('separates literals, claims and built-ins, and lists only claims', () => {
    const t = parsed('{@provider}:{repository_id}/{@role}-x');
    expect(t.parts).toEqual([{ builtin: 'provider' }, { literal: ':' }, { claim: 'repository_id' }, { literal: '/' }, { builtin: 'role' }, { literal: '-x' }]);
    expect(t.claims).toEqual(['repository_id']);
  });

  it('reads a filter after the last "|" and lists the claim without it', () => {
    const t = parsed('bb-{repositoryUuid|unbrace}');
    expect(t.parts).toEqual([{ literal: 'bb-' }, { claim: 'repositoryUuid', filter: 'unbrace' }]);
    expect(t.claims).toEqual(['repositoryUuid']);
  });

  it('accepts a template without placeholders', () => {
    expect(parsed('static').parts).toEqual([{ literal: 'static' }]);
  });

  it('accepts an empty template', () => {
    expect(parsed('').parts).toEqual([]);
  });
});

describe('renderTemplate', () => {
  const cases: Array<[name: string, source: string, claims: Record<string, unknown>, expected: string]> = [
    ['renders a string claim as it is', 'gh-{run_id}', { run_id: '16055869479' }, 'gh-16055869479'],
    ['renders an absent claim as empty', 'gh-{run_id}-x', {}, 'gh--x'],
    ['renders a null claim as empty', 'bk-{build_tag}', { build_tag: null }, 'bk-'],
    ['renders a number', 'bk-{build_number}', { build_number: 1 }, 'bk-1'],
    ['renders a boolean', 'r-{ssh}', { ssh: false }, 'r-false'],
    ['joins an array with ","', 'c-{ids}', { ids: ['a', 'b', 1] }, 'c-a,b,1'],
    ['renders an object as JSON', 'o-{o}', { o: { k: 'v' } }, 'o-{"k":"v"}'],
    ['reads a claim name with dots and slashes', '{oidc.circleci.com/project-id}', { 'oidc.circleci.com/project-id': 'p1' }, 'p1'],
    ['renders built-ins', '{@issuer}/{@provider}/{@role}', {}, 'gh/github-actions/deploy'],
    ['renders the first 12 hex digits of the token hash, never more', '{@token_hash}', {}, '0123456789ab'],
    ['does not re-expand braces inside a claim value', '{a}', { a: '{b}' }, '{b}'],
    ['unbrace drops one pair of surrounding braces', 'u-{id|unbrace}', { id: '{1de489be-ce6a}' }, 'u-1de489be-ce6a'],
    ['unbrace leaves a value without surrounding braces as it is', '{id|unbrace}', { id: 'a{b}' }, 'a{b}'],
  ];
  it.each(cases)('%s', (_name, source, claims, expected) => {
    expect(renderTemplate(parsed(source), ctx(claims))).toBe(expected);
  });

  it('renders an absent claim named like an Object.prototype member as empty', () => {
    expect(renderTemplate(parsed('x-{__proto__}-{constructor}'), ctx({}))).toBe('x--');
  });

  it('claimText prints every JSON type', () => {
    expect([claimText(undefined), claimText(null), claimText(''), claimText(0), claimText(true), claimText([]), claimText([null, 'a'])]).toEqual(['', '', '', '0', 'true', '', ',a']);
  });
});

describe('naming of an allow decision with hostile claims', () => {
  const { config } = parseConfig(
    JSON.stringify({
      issuers: { p: { url: 'https://p.example.com', audiences: ['https://credbroker.example.com'] } },
      roles: {
        deploy: {
          arn: 'arn:aws:iam::111122223333:role/deploy',
          session_name: '{name}',
          source_identity: '{name}',
          tags: { value: '{name}' },
          allow: [{ issuer: 'p', claims: { project: 'p1' } }],
        },
      },
    }),
  );
  const hostile: Array<[string, unknown]> = [
    ['unicode', 'déploiement 中文'],
    ['emoji', '🚀💥'],
    ['colons and slashes', 'repo:o/r:ref:refs/heads/x'],
    ['a newline', 'a\nb'],
    ['300 characters', 'z'.repeat(300)],
    ['empty', ''],
    ['absent', undefined],
    ['an aws: prefix', 'aws:x'],
    ['only invalid characters', '///:::'],
    ['a number', 7],
    ['an array', ['a:b', 'c']],
  ];
  it.each(hostile)('issues valid AWS names for a claim with %s', (_name, value) => {
    const claims: Record<string, unknown> = { project: 'p1' };
    if (value !== undefined) claims.name = value;
    const d = evaluate(config.policy, {
      issuer: 'p', claims, role: 'deploy', requestedDuration: undefined, tokenHash: 'f'.repeat(64), roleChaining: false, now: new Date(0),
    });
    expect(d.effect).toBe('allow');
    if (d.effect !== 'allow') return;
    expect(d.sessionName).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(d.sourceIdentity).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(d.sourceIdentity).not.toMatch(/^aws:/i);
    // The tag is there with a valid value, or left out (and named as such) — never altered.
    expect(d.tags.length + d.omittedTags.length).toBe(1);
    for (const tag of d.tags) {
      expect(tag.Key).toBe('value');
      expect(tag.Value).toMatch(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u);
    }
    for (const omitted of d.omittedTags) expect(omitted.key).toBe('value');
  });

  it('reports a template error in config with its path', () => {
    try {
      parseConfig(
        JSON.stringify({
          issuers: { p: { url: 'https://p.example.com', audiences: ['a'] } },
          roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', session_name: 'x-{@nope}', source_identity: 'x-{a', allow: [{ issuer: 'p', claims: { project: 'p1' } }] } },
        }),
      );
      expect.unreachable('parseConfig should throw');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.map((p) => p.path).sort()).toEqual(['roles.deploy.session_name', 'roles.deploy.source_identity']);
    }
  });
});
