// Session name, source identity and tag value sanitizers fed hostile claim values: the output is
// always valid for AWS and the sanitizers never throw.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  isValidTagValue,
  sanitizeSessionName,
  sanitizeSourceIdentity,
  tagValue,
  tagKeyProblem,
} from '../../server/src/core/sanitize.js';

// AWS's own rules, written out independently of the implementation's constants.
const AWS_SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const AWS_TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const validSessionName = (s: string) => AWS_SESSION_NAME.test(s);
const validSourceIdentity = (s: string) => AWS_SESSION_NAME.test(s) && !/^aws:/i.test(s);
const validTagValue = (s: string) => AWS_TAG_VALUE.test(s) && Array.from(s).length <= 256;

const hostile: Array<[name: string, raw: string]> = [
  ['plain ascii', 'gh-487920697-16055869479-1'],
  ['unicode letters', 'déploiement-é-ü-ß-中文'],
  ['emoji', '🚀deploy💥'],
  ['colons', 'repo:octo-org/octo-repo:ref:refs/heads/main'],
  ['slashes', 'a/b/c'],
  ['a newline', 'line1\nline2'],
  ['a carriage return and tab', 'a\r\tb'],
  ['300 characters', 'x'.repeat(300)],
  ['300 emoji', '😀'.repeat(300)],
  ['empty', ''],
  ['one valid character', 'a'],
  ['an aws: prefix', 'aws:federated'],
  ['an AWS: prefix in capitals', 'AWS:x'],
  ['only invalid characters', ':::///'],
  ['only spaces', '   '],
  ['only dashes', '----'],
  ['a NUL byte', 'a\u0000b'],
  ['a lone surrogate', 'a\uD800b'],
  ['combining marks', 'e\u0301\u0301'],
  ['right-to-left override', '\u202Eevil'],
  ['braces', '{1de489be-ce6a-42a0-a8c8-eadbf1174ac7}'],
  ['64 valid characters then an emoji', `${'a'.repeat(64)}😀`],
];

describe('sanitizeSessionName', () => {
  it.each(hostile)('gives a valid RoleSessionName for %s', (_name, raw) => {
    const out = sanitizeSessionName(raw);
    expect(out).toMatch(AWS_SESSION_NAME);
  });

  const exact: Array<[name: string, raw: string, expected: string]> = [
    ['keeps a valid name as it is', 'gh-487920697-16055869479-1', 'gh-487920697-16055869479-1'],
    ['replaces ":" and "/" with "-"', 'a:b/c', 'a-b-c'],
    ['collapses runs of replaced characters', 'a::://b', 'a-b'],
    ['replaces unicode letters (AWS allows ASCII only)', 'café', 'caf-'],
    ['falls back when nothing valid remains', ':::', 'credbroker'],
    ['falls back for an empty value', '', 'credbroker'],
    ['pads a one-character value to two', 'a', 'a-'],
    ['keeps exactly 64 valid characters', 'b'.repeat(64), 'b'.repeat(64)],
  ];
  it.each(exact)('%s', (_name, raw, expected) => {
    expect(sanitizeSessionName(raw)).toBe(expected);
  });

  it('keeps two different 300-character values distinct', () => {
    const a = sanitizeSessionName(`${'x'.repeat(299)}a`);
    const b = sanitizeSessionName(`${'x'.repeat(299)}b`);
    expect(a).toHaveLength(64);
    expect(b).toHaveLength(64);
    expect(a).not.toBe(b);
    expect(a.startsWith('x'.repeat(53))).toBe(true);
  });

  it('keeps long values that differ only in characters it replaces distinct', () => {
    const a = sanitizeSessionName(`${'x'.repeat(100)}ü${'y'.repeat(100)}`);
    const b = sanitizeSessionName(`${'x'.repeat(100)}é${'y'.repeat(100)}`);
    expect(a).not.toBe(b);
  });
});

describe('sanitizeSourceIdentity', () => {
  it.each(hostile)('gives a valid SourceIdentity for %s', (_name, raw) => {
    const out = sanitizeSourceIdentity(raw);
    expect(validSourceIdentity(out)).toBe(true);
  });

  it('never starts with "aws:"', () => {
    expect(sanitizeSourceIdentity('aws:x')).toBe('aws-x');
    expect(sanitizeSourceIdentity('aws:')).toBe('aws-');
  });

  it('keeps two different 300-character values distinct', () => {
    expect(sanitizeSourceIdentity('s'.repeat(300))).not.toBe(sanitizeSourceIdentity(`${'s'.repeat(299)}t`));
  });
});

describe('tagValue', () => {
  const exact: Array<[name: string, raw: string, expected: ReturnType<typeof tagValue>]> = [
    ['keeps letters of any script, spaces, digits and _.:/=+-@', 'refs/heads/main café 中文 a_b.c:d=e+f-g@h', { value: 'refs/heads/main café 中文 a_b.c:d=e+f-g@h' }],
    ['keeps an empty value empty', '', { value: '' }],
    ['keeps a 256-character value', 'v'.repeat(256), { value: 'v'.repeat(256) }],
    ['counts characters, not UTF-16 units', '𝐀'.repeat(256), { value: '𝐀'.repeat(256) }],
    ['leaves out a value with an emoji', 'a😀b', { omitted: 'characters' }],
    ['leaves out a value with a newline', 'a\nb', { omitted: 'characters' }],
    ['leaves out a value with a lone surrogate', 'a\uD800b', { omitted: 'characters' }],
    ['leaves out a value with braces', '{id}', { omitted: 'characters' }],
    ['leaves out a branch with "#" rather than making it equal to one with "_"', 'refs/heads/release#2024', { omitted: 'characters' }],
    ['leaves out a 257-character value rather than cutting it', 'v'.repeat(257), { omitted: 'length' }],
  ];
  it.each(exact)('%s', (_name, raw, expected) => {
    expect(tagValue(raw)).toEqual(expected);
  });

  it.each(hostile)('gives a valid tag value or an omission for %s', (_name, raw) => {
    const v = tagValue(raw);
    if ('value' in v) expect(validTagValue(v.value)).toBe(true);
  });
});

describe('tag keys', () => {
  const cases: Array<[name: string, key: string, problem: RegExp | undefined]> = [
    ['accepts a plain key', 'repository_id', undefined],
    ['accepts the full tag charset', 'a b:c/d=e+f-g@h_i.j', undefined],
    ['rejects an empty key', '', /1–128/],
    ['rejects a key of 129 characters', 'k'.repeat(129), /1–128/],
    ['accepts a key of 128 characters', 'k'.repeat(128), undefined],
    ['rejects an aws: prefix', 'aws:env', /aws:/],
    ['rejects an AWS: prefix in capitals', 'AWS:env', /aws:/],
    ['rejects a key with an emoji', 'env😀', /only letters/],
    ['rejects a key with a newline', 'a\nb', /only letters/],
  ];
  it.each(cases)('%s', (_name, key, problem) => {
    const p = tagKeyProblem(key);
    if (problem === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(problem);
  });

  it('validates tag values against the same rule', () => {
    expect(isValidTagValue('a'.repeat(256))).toBe(true);
    expect(isValidTagValue('a'.repeat(257))).toBe(false);
    expect(isValidTagValue('a😀')).toBe(false);
  });
});

describe('sanitizer properties', () => {
  const anyString = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.string({ unit: 'grapheme', maxLength: 400 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)), maxLength: 400 }),
    fc.string({ unit: fc.constantFrom('a', ':', '/', '-', 'aws:', ' ', '\n', '😀'), maxLength: 100 }),
  );

  it('always yields a valid session name, source identity and tag value, and never throws', () => {
    fc.assert(
      fc.property(anyString, (raw) => {
        expect(validSessionName(sanitizeSessionName(raw))).toBe(true);
        expect(validSourceIdentity(sanitizeSourceIdentity(raw))).toBe(true);
        const tag = tagValue(raw);
        if ('value' in tag) expect(validTagValue(tag.value)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves an already valid session name unchanged', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_+=,.@]([A-Za-z0-9_+=,.@-]?[A-Za-z0-9_+=,.@]){1,31}$/), (raw) => {
        expect(sanitizeSessionName(raw)).toBe(raw);
      }),
    );
  });

  const longish = fc.string({ unit: fc.constantFrom('a', 'b', '1', ':', 'é', '😀'), minLength: 70, maxLength: 300 });
  it('keeps different long values distinct', () => {
    fc.assert(
      fc.property(longish, longish, (a, b) => {
        fc.pre(a !== b);
        const sa = sanitizeSessionName(a);
        const sb = sanitizeSessionName(b);
        // Only values long enough to be hashed are promised to stay distinct.
        fc.pre(sa.length === 64 && sb.length === 64);
        expect(sa).not.toBe(sb);
      }),
    );
  });
});
